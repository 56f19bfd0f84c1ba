"""The request body written block by block (``engine.backends.hosted_body``) is the JSON the
``openai`` client writes for the joined messages, byte for byte, at a fraction of the memory."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from longdesk.engine.backends.hosted_body import LeadContent, body_of, joined, post_chat

# Quotes, backslashes, control characters, line breaks, a BMP and an astral character.
BLOCKS = (
    "<corpus>\n",
    '<doc id="D1" name="a \\ b.txt" kind="text">\n<L1>\n"quoted"\ttab\x01\n</doc>\n',
    '<doc id="D2" name=\'é.pdf\' kind="pdf">\n<p1>\nﬁne 𝑥 ∑\u2028\n</doc>\n',
    "</corpus>\n",
)


def _params(**extra: Any) -> dict[str, Any]:
    return {
        "model": "deepseek-chat",
        "messages": [
            {"role": "system", "content": "Cite as [D1, p. 2]."},
            {"role": "user", "content": LeadContent(BLOCKS, "Question: what is 𝑥?")},
            {"role": "assistant", "content": 'It is "x".'},
            {"role": "user", "content": "Question: and ∑?"},
        ],
        "stream": True,
        "max_tokens": 100,
        **extra,
    }


def reference_body(params: dict[str, Any]) -> bytes:
    """What the client sends: the joined messages, ``extra_body`` merged, its own JSON encoder."""
    from openai._utils._json import openapi_dumps

    plain = joined(params)
    extra = plain.pop("extra_body", None) or {}
    return openapi_dumps({**plain, **extra})


def test_the_body_is_the_clients_json_byte_for_byte() -> None:
    params = _params(extra_body={"thinking": {"type": "disabled"}, "user_id": "u1"})
    body = body_of(params)
    assert body == reference_body(params)
    sent = json.loads(body)
    assert sent["messages"][1]["content"] == "".join(BLOCKS) + "Question: what is 𝑥?"
    assert sent["thinking"] == {"type": "disabled"}


def test_a_priming_body_without_tail_and_plain_messages() -> None:
    priming = {"model": "m", "messages": [{"role": "user", "content": LeadContent(BLOCKS)}]}
    assert body_of(priming) == reference_body(priming)
    plain = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "extra_body": None}
    assert body_of(plain) == reference_body(plain)
    assert LeadContent(BLOCKS, "t").text() == "".join(BLOCKS) + "t"
    assert len(LeadContent(BLOCKS, "t")) == len("".join(BLOCKS)) + 1


def test_a_wide_corpus_is_encoded_in_a_fraction_of_the_memory() -> None:
    # 4 MB of text and one astral character: joined, every character takes 4 bytes.
    text = "In the beginning God created.\n" * 1400
    blocks = tuple(f'<doc id="D{i}">\n{text}</doc>\n' for i in range(100))
    blocks += ("𝑥\n",)
    params = {"model": "m", "messages": [{"role": "user", "content": LeadContent(blocks, "Question: q")}]}
    tracemalloc.start()
    try:
        body = body_of(params)
        _, ours = tracemalloc.get_traced_memory()
        del body
        tracemalloc.reset_peak()
        reference = reference_body(params)
        _, theirs = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ours < 2.5 * len(reference)  # the body, and its pieces while they are joined
    assert theirs > 8 * len(reference)  # the joined text, its escaped copy, the JSON string...


class _OldClient:
    """A client whose ``post`` takes no raw ``content`` (older ``openai`` releases)."""

    def __init__(self) -> None:
        self.sent: dict[str, Any] = {}
        self.chat = self
        self.completions = self

    def post(self, path: str, *, cast_to: type, body: object = None) -> None:
        raise AssertionError("not used")

    def create(self, **params: Any) -> str:
        self.sent = params
        return "stream"


def test_an_older_client_gets_the_joined_messages() -> None:
    client = _OldClient()
    params = _params()
    assert post_chat(client, params) == "stream"
    assert client.sent["messages"][1]["content"] == "".join(BLOCKS) + "Question: what is 𝑥?"
    assert client.sent["messages"][3] == params["messages"][3]
