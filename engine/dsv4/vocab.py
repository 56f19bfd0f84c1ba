"""A tiny byte-level BPE vocabulary that carries DeepSeek-V4's special tokens (for tiny GGUFs)."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
DSML = "｜DSML｜"
# BOS = 0 and EOS = 1 as in the V4 config; the rest in the order of the reference notes.
SPECIAL_TOKENS = (
    BOS,
    EOS,
    USER,
    ASSISTANT,
    "<｜latest_reminder｜>",
    THINK_OPEN,
    THINK_CLOSE,
    DSML,
    "<｜action｜>",
    "<｜query｜>",
    "<｜authority｜>",
    "<｜domain｜>",
    "<｜title｜>",
    "<｜read_url｜>",
    "<｜extracted_url｜>",
)
CONTROL, USER_DEFINED, NORMAL = 3, 4, 1  # llama.cpp token types

# Text the merges are learnt from: enough English for a few dozen frequent pairs.
_MERGE_TEXT = (
    "the reader reads the whole book in one context and then answers the question with the "
    "page and the line where the answer is written; thinking comes first, then the answer. "
    "There is no retrieval, there is the entire corpus in the context of the model."
)


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(printable)
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


@dataclass(frozen=True, slots=True)
class TinyVocab:
    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    merges: tuple[str, ...]
    bos_id: int = 0
    eos_id: int = 1


def _learn_merges(n_merges: int, byte_map: dict[int, str]) -> list[tuple[str, str]]:
    words = [
        [byte_map[b] for b in (" " + w if i else w).encode()] for i, w in enumerate(_MERGE_TEXT.split(" "))
    ]
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs = Counter((a, b) for w in words for a, b in itertools.pairwise(w))
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        joined = best[0] + best[1]
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i : i + 2] = [joined]
                i += 1
    return merges


def tiny_vocab(n_vocab: int) -> TinyVocab:
    """Special tokens, the 256 byte tokens, then learnt merges up to ``n_vocab`` entries."""
    byte_map = _byte_to_unicode()
    base = len(SPECIAL_TOKENS) + 256
    if n_vocab < base:
        raise ValueError(f"a V4 byte-level vocabulary needs at least {base} tokens, not {n_vocab}")
    merges = _learn_merges(n_vocab - base, byte_map)
    tokens = list(SPECIAL_TOKENS) + [byte_map[b] for b in range(256)] + [a + b for a, b in merges]
    types = [CONTROL if t in (BOS, EOS) else USER_DEFINED for t in SPECIAL_TOKENS] + [NORMAL] * (
        len(tokens) - len(SPECIAL_TOKENS)
    )
    n = 0
    while len(tokens) < n_vocab:  # the merge text ran out of pairs: pad with unused tokens
        tokens.append(f"[PAD{n}]")
        types.append(USER_DEFINED)
        n += 1
    return TinyVocab(tuple(tokens), tuple(types), tuple(f"{a} {b}" for a, b in merges))
