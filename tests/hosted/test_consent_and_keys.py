"""The consent model (what is sent, what is left out, what it costs, per session and endpoint),
the CLI prompt, the local-to-hosted offer, and where API keys come from."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from keyring.backend import KeyringBackend

from longdesk.app import secrets
from longdesk.app.cli.hosted_ask import ask_consent
from longdesk.app.consent import ConsentLedger, fallback_offer, looks_secret, prepare_consent, with_choice
from longdesk.engine.backends.base import AskOptions, FailureKind
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.backends.hosted_presets import make_config
from longdesk.engine.backends.hosted_prices import load_price_table
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment


def doc(doc_id: str, name: str, text: str) -> Document:
    seg = Segment(Anchor(AnchorKind.LINES, 1, max(1, text.count("\n"))), text)
    return Document(doc_id, name, "/src/" + name, DocumentKind.TEXT, "0" * 64, (seg,))


@pytest.fixture
def corpus() -> Corpus:
    return Corpus.of(
        [
            doc("D1", "kitchen.txt", "The kettle is blue.\n"),
            doc("D2", "config/.env", "DB_PASSWORD=hunter2\n"),
            doc("D3", "deploy/notes.md", "Use key -----BEGIN OPENSSH PRIVATE KEY----- abc\n"),
            doc("D4", "garden.txt", "Three apple trees.\n"),
        ]
    )


@pytest.fixture
def backend() -> Iterator[HostedBackend]:
    b = HostedBackend(make_config("deepseek", api_key="sk-consent-test"), prices=load_price_table()[0])
    yield b
    b.close()


def test_secret_looking_files_are_recognised() -> None:
    assert looks_secret(doc("X", "id_ed25519", "x"))
    assert looks_secret(doc("X", "certs/server.pem", "x"))
    assert looks_secret(doc("X", "notes.txt", "aws AKIAABCDEFGHIJKLMNOP here"))
    flagged = Document("X", "a.txt", "/a", DocumentKind.TEXT, "0", (), flags=frozenset({"secret"}))
    assert looks_secret(flagged)
    assert not looks_secret(doc("X", "environment.md", "The environment matters."))
    assert not looks_secret(doc("X", "src/keys.py", "def keys(): ..."))


def test_a_key_deep_in_a_long_document_is_found_and_near_misses_are_not() -> None:
    lines = [Segment(Anchor(AnchorKind.LINES, i, i), f"line {i} of plain prose\n") for i in range(1, 5000)]
    plain = Document("X", "book.txt", "/b", DocumentKind.TEXT, "0", lines)
    assert not looks_secret(plain)
    near = [*lines, Segment(Anchor(AnchorKind.LINES, 5000, 5000), "ask-me and AKIA and xoxo\n")]
    assert not looks_secret(Document("X", "book.txt", "/b", DocumentKind.TEXT, "0", near))
    token = "ghp_" + "a1" * 18
    keyed = [*lines, Segment(Anchor(AnchorKind.LINES, 5000, 5000), f"token = {token}\n")]
    assert looks_secret(Document("X", "book.txt", "/b", DocumentKind.TEXT, "0", keyed))


def test_consent_shows_documents_tokens_left_out_secrets_and_cost(
    corpus: Corpus, backend: HostedBackend
) -> None:
    request = prepare_consent("s1", corpus, backend, AskOptions(max_output_tokens=1000))
    assert [i.doc_id for i in request.included] == ["D1", "D4"]
    assert [(i.doc_id, i.secret) for i in request.left_out] == [("D2", True), ("D3", True)]
    assert "hunter2" not in request.plan.system_text
    assert "PRIVATE KEY" not in request.plan.system_text
    assert all(i.tokens > 0 for i in request.items)
    assert request.fits
    assert request.estimate is not None
    # At most: the whole prompt as a cache miss plus the whole output reserve.
    top = (request.prompt_tokens * 0.30 + 1000 * 1.20) / 1e6
    assert 0 < request.estimate.amount <= top
    text = "\n".join(request.summary_lines())
    assert "Send to api.deepseek.com" in text
    assert "config/.env  looks like a secret" in text
    assert "Estimated cost of the first question: at most $" in text
    assert "prices effective 2026-09-10" in text
    assert "V4.1-Flash" in text

    chosen = with_choice(request, corpus, backend, "D2", send=True)
    assert "hunter2" in chosen.plan.system_text
    assert chosen.prompt_tokens > request.prompt_tokens
    assert chosen.fingerprint != request.fingerprint
    fewer = with_choice(chosen, corpus, backend, "D4", send=False)
    assert [i.doc_id for i in fewer.included] == ["D1", "D2"]


def test_consent_is_per_session_endpoint_and_content(corpus: Corpus, backend: HostedBackend) -> None:
    request = prepare_consent("s1", corpus, backend, AskOptions())
    ledger = ConsentLedger()
    assert not ledger.covers("s1", request.endpoint, request.fingerprint)
    ledger.grant(request, backend)
    assert ledger.covers("s1", request.endpoint, request.fingerprint)
    assert not ledger.covers("s2", request.endpoint, request.fingerprint)
    assert not ledger.covers("s1", "http://127.0.0.1:8000/v1", request.fingerprint)
    other = with_choice(request, corpus, backend, "D4", send=False)
    assert not ledger.covers("s1", request.endpoint, other.fingerprint)
    restored = ConsentLedger.from_json(ledger.to_json())
    assert restored.covers("s1", request.endpoint, request.fingerprint)
    assert "sk-consent-test" not in ledger.to_json()
    restored.revoke("s1", request.endpoint)
    assert not restored.covers("s1", request.endpoint, request.fingerprint)
    assert ConsentLedger.from_json("{not json").grants == {}


def test_a_request_that_does_not_fit_cannot_be_agreed_to(corpus: Corpus) -> None:
    small = HostedBackend(make_config("deepseek", api_key="k", context_window=60))
    request = prepare_consent("s1", corpus, small, AskOptions(max_output_tokens=50))
    assert not request.fits
    assert "takes 60" in request.budget
    with pytest.raises(ValueError, match="does not fit"):
        ConsentLedger().grant(request, small)
    small.close()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_prompt_needs_a_yes(corpus: Corpus, backend: HostedBackend) -> None:
    request = prepare_consent("s1", corpus, backend, AskOptions())
    err = io.StringIO()
    assert ask_consent(request, assume_yes=False, stdin=_Terminal("y\n"), stderr=err)
    assert "send these documents to api.deepseek.com? [y/N]" in err.getvalue()
    assert not ask_consent(request, assume_yes=False, stdin=_Terminal("\n"), stderr=io.StringIO())
    assert not ask_consent(request, assume_yes=False, stdin=io.StringIO("y\n"), stderr=io.StringIO())
    assert ask_consent(request, assume_yes=True, stdin=io.StringIO(""), stderr=io.StringIO())


def test_hosted_is_offered_only_for_failures_it_can_fix() -> None:
    offer = fallback_offer(FailureKind.CONTEXT, "over by 20,000 tokens.", "DeepSeek API")
    assert offer is not None
    assert "over by 20,000 tokens" in offer.message()
    assert "if you agree to send the documents" in offer.message()
    assert fallback_offer(FailureKind.MODEL, "load failed", "DeepSeek API") is not None
    assert fallback_offer(FailureKind.BAD_INPUT, "no such file", "DeepSeek API") is None
    assert fallback_offer(FailureKind.MEMORY, "needs 90 GB", "") is None


class _MemoryKeyring(KeyringBackend):
    """An OS keyring stand-in (this machine has no Secret Service): keyring's backend API."""

    priority = 1

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.store.get((service, user))

    def set_password(self, service: str, user: str, password: str) -> None:
        self.store[(service, user)] = password

    def delete_password(self, service: str, user: str) -> None:
        from keyring.errors import PasswordDeleteError

        if (service, user) not in self.store:
            raise PasswordDeleteError(user)
        del self.store[(service, user)]


def test_keys_come_from_the_keyring_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    monkeypatch.delenv("LONGDESK_API_KEY", raising=False)
    env_names = ("DEEPSEEK_API_KEY", "LONGDESK_API_KEY")
    previous = keyring.get_keyring()
    try:
        # Without a keyring (as here): nothing stored, a clear reason, then the environment.
        keyring.set_keyring(NoKeyring())
        none = secrets.find_key("https://api.deepseek.com", env_names)
        assert not none
        assert "keyring is not available" in none.warning
        assert "could not be saved" in secrets.store_key("https://api.deepseek.com", "sk-x")
        monkeypatch.setenv("LONGDESK_API_KEY", "sk-generic")
        monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-from-env")
        found = secrets.find_key("https://api.deepseek.com/v1", env_names)
        assert (found.value, found.origin) == ("sk-from-env", "env DEEPSEEK_API_KEY")
        assert "sk-from-env" not in repr(found) + str(found)

        memory = _MemoryKeyring()
        keyring.set_keyring(memory)
        assert secrets.store_key("https://api.deepseek.com/v1", "sk-stored ") == ""
        stored = secrets.find_key("https://api.deepseek.com", env_names)
        assert (stored.value, stored.origin) == ("sk-stored", "keyring")
        assert memory.store == {("longdesk", "https://api.deepseek.com"): "sk-stored"}
        assert secrets.forget_key("https://api.deepseek.com") == ""
        assert secrets.find_key("https://api.deepseek.com", env_names).origin == "env DEEPSEEK_API_KEY"
    finally:
        keyring.set_keyring(previous)
