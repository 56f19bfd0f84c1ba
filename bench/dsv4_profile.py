"""Long-context CPU profile of llama.cpp's DeepSeek-V4 ops on a synthetic mid-size V4 file.

The file has V4-Flash's attention shapes (64 heads x 512, a 64 x 128 lightning indexer with
top-k 512, one CSA layer of ratio 4 and one HCA layer of ratio 128, 4 hyper-connection
streams) but few layers and experts and narrow q/o LoRA ranks, so that it fits and runs here.
One sequence is prefilled in steps up to each context length; at each step it prints the
prefill rate of the last chunk, the decode rate, and (with --shares) the share of compute
time per mechanism, measured node by node with llama.cpp's scheduler eval callback.

    .venv/bin/python bench/dsv4_profile.py --contexts 4096 8192 16384 --shares
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from longdesk.engine.dsv4.config import flash_like_mid  # noqa: E402
from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4  # noqa: E402

_NAME_OFFSET = 256  # offsetof(struct ggml_tensor, name) on 64-bit (ggml.h, GGML_MAX_SRC 10)

# Tensor-name prefixes (the cb() names of src/models/deepseek4.cpp) → mechanism.
_CATEGORIES = (
    ("lid_top_k", "indexer top-k"),
    ("lid_state", "compressors"),
    ("csa_state", "compressors"),
    ("hca_state", "compressors"),
    ("lid_", "lightning indexer"),
    ("hc_", "hyper-connections"),
    ("l_last", "hyper-connections"),
    ("ffn_", "MoE + shared expert"),
    ("result_", "head"),
    ("kq", "attention (softmax over keys)"),
    ("__fattn__", "attention (softmax over keys)"),
    ("csa_", "attention (softmax over keys)"),
    ("hca_", "attention (softmax over keys)"),
    ("attn_csa", "attention (softmax over keys)"),
    ("attn_hca", "attention (softmax over keys)"),
    ("attn_raw", "attention (softmax over keys)"),
    ("q", "attention projections"),
    ("kv", "attention projections"),
    ("attn_", "attention projections"),
)


def _category(name: str, previous: str) -> str:
    base = name.split(" (", maxsplit=1)[0]
    if not base or base.startswith("node_") or base.startswith("leaf_"):
        return previous  # unnamed intermediate: belongs to the mechanism being built
    for prefix, cat in _CATEGORIES:
        if base.startswith(prefix):
            return cat
    return previous


class Profiler:
    """Times every graph node through the scheduler's eval callback when ``on`` is set."""

    def __init__(self) -> None:
        import llama_cpp

        self.on = False
        self.times: dict[str, float] = defaultdict(float)
        self._last = 0.0
        self._cat = "other"

        @llama_cpp.ggml_backend_sched_eval_callback  # type: ignore[untyped-decorator,misc]
        def callback(tensor: int, ask: bool, _user: int) -> bool:
            if not self.on:
                return False
            if ask:
                return True
            now = time.perf_counter()
            name = ctypes.string_at(tensor + _NAME_OFFSET).decode("utf-8", errors="replace")
            self._cat = _category(name, self._cat)
            self.times[self._cat] += now - self._last
            self._last = now
            return True

        self.callback = callback

    def start(self) -> None:
        self.times.clear()
        self._cat = "other"
        self._last = time.perf_counter()
        self.on = True

    def stop(self) -> dict[str, float]:
        self.on = False
        return dict(self.times)


class Session:
    """One llama.cpp context (low-level API, so the eval callback can be set)."""

    def __init__(self, path: Path, n_ctx: int, threads: int, profiler: Profiler, flash_attn: bool) -> None:
        import llama_cpp

        self.lib = llama_cpp
        mparams = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = 512
        cparams.n_ubatch = 512
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.swa_full = False
        cparams.flash_attn_type = 1 if flash_attn else 0
        cparams.cb_eval = profiler.callback
        cparams.cb_eval_user_data = None
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        self.n_past = 0

    def decode(self, tokens: list[int]) -> None:
        for i in range(0, len(tokens), 512):
            chunk = tokens[i : i + 512]
            arr = (self.lib.llama_token * len(chunk))(*chunk)
            batch = self.lib.llama_batch_get_one(arr, len(chunk))
            if self.lib.llama_decode(self.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            self.n_past += len(chunk)

    def close(self) -> None:
        self.lib.llama_free(self.ctx)
        self.lib.llama_model_free(self.model)


def _shares(times: dict[str, float]) -> str:
    total = sum(times.values()) or 1.0
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(times.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, nargs="+", default=[4096, 8192, 16384])
    ap.add_argument(
        "--threads", type=int, default=1, help="1 on a shared machine: spinning thread barriers stall"
    )
    ap.add_argument("--decode", type=int, default=8, help="tokens decoded at each context length")
    ap.add_argument("--shares", action="store_true", help="also measure per-mechanism time shares")
    ap.add_argument("--no-flash-attn", action="store_true")
    ap.add_argument("--rank", type=int, default=256, help="q/o LoRA rank (Flash: 1024)")
    args = ap.parse_args(argv)

    mid = flash_like_mid(n_layer=2, n_expert=8, dim=1024)
    cfg = replace(mid, q_lora_rank=args.rank, o_lora_rank=args.rank)
    print(
        f"config: D={cfg.dim}, layers ratios {cfg.compress_ratios}, heads {cfg.n_head}x{cfg.head_dim}, "
        f"indexer {cfg.index_n_heads}x{cfg.index_head_dim} top-{cfg.index_topk}, window {cfg.window}, "
        f"q/o rank {cfg.q_lora_rank}, experts {cfg.n_expert_used}/{cfg.n_expert} x {cfg.moe_ff}, F16 weights"
    )
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="dsv4-profile-") as tmp:
        path = write_tiny_v4(Path(tmp) / "mid-v4.gguf", cfg, wtype="f16")
        print(f"file: {path.stat().st_size / 2**20:.0f} MiB")
        profiler = Profiler()
        n_ctx = max(args.contexts) + 64 + (512 + args.decode) * len(args.contexts)
        session = Session(path, n_ctx, args.threads, profiler, not args.no_flash_attn)
        print("| context | prefill tok/s (last chunk) | decode tok/s | prefill time shares |")
        print("|---:|---:|---:|---|")
        try:
            for ctx_len in sorted(args.contexts):
                todo = ctx_len - session.n_past
                tokens = [int(t) for t in rng.integers(2, cfg.n_vocab, todo)]
                head, last = tokens[:-512], tokens[-512:]
                session.decode(head)
                t0 = time.perf_counter()
                session.decode(last)
                prefill = len(last) / (time.perf_counter() - t0)
                t0 = time.perf_counter()
                for _ in range(args.decode):
                    session.decode([int(rng.integers(2, cfg.n_vocab))])
                decode = args.decode / (time.perf_counter() - t0)
                shares = ""
                if args.shares:  # one more 512-token chunk, node by node
                    profiler.start()
                    session.decode([int(t) for t in rng.integers(2, cfg.n_vocab, 512)])
                    shares = _shares(profiler.stop())
                print(f"| {ctx_len:,} | {prefill:.1f} | {decode:.2f} | {shares} |", flush=True)
        finally:
            session.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
