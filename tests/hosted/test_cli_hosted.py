"""`longdesk ask --backend hosted` as a user runs it: consent, streamed answer, thinking, cache hits,
cost, each fault's message with the partial answer kept, the local-to-hosted fallback, and a key
that never lands in any file Longdesk writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hosted.deepseek_emulator import Emulator

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]


def longdesk(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("longdesk")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "longdesk.ui.main", *args]
    full_env = {**os.environ, **(env or {})}
    for name in ("DEEPSEEK_API_KEY", "LONGDESK_API_KEY"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kitchen.txt").write_text("The kettle is blue.\nThe oven is broken.\n")
    (folder / ".env").write_text("DATABASE_PASSWORD=hunter2-very-secret\n")
    return folder


def deepseek(url: str, notes: Path, *extra: str) -> list[str]:
    return [
        "ask", str(notes), "-q", "What colour is the kettle?",
        "--preset", "deepseek", "--base-url", url, *extra,  # hosted is implied by --preset
    ]  # fmt: skip


@pytest.mark.model
def test_streams_an_answer_from_llama_cpp_pythons_server(
    llama_server: str, longdesk_home: Path, notes: Path
) -> None:
    r = longdesk(
        "ask", str(notes), "-q", "What colour is the kettle?",
        "--backend", "hosted", "--base-url", llama_server, "--max-tokens", "8", "--yes",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "no answer was streamed"
    assert "Send to 127.0.0.1" in r.stderr
    assert ".env  looks like a secret" in r.stderr
    assert "counted here: the server sent no usage" in r.stderr


def test_nothing_is_sent_without_consent(
    emulator: tuple[str, Emulator], longdesk_home: Path, notes: Path
) -> None:
    url, emu = emulator
    r = longdesk(*deepseek(url, notes), env={"DEEPSEEK_API_KEY": emu.api_key})
    assert r.returncode == 5
    assert "nothing was sent to 127.0.0.1" in r.stderr
    assert "Estimated cost of the first question: at most $" in r.stderr
    assert "V4.1-Flash" in r.stderr
    assert emu.requests == []
    assert r.stdout == ""


def test_missing_key_is_a_clear_error(
    emulator: tuple[str, Emulator], longdesk_home: Path, notes: Path
) -> None:
    url, emu = emulator
    r = longdesk(*deepseek(url, notes, "--yes"))
    assert r.returncode == 5
    assert "no API key" in r.stderr
    assert "DEEPSEEK_API_KEY" in r.stderr
    assert emu.requests == []


def test_deepseek_preset_shows_thinking_answer_cache_hits_and_cost(
    emulator: tuple[str, Emulator], longdesk_home: Path, notes: Path
) -> None:
    url, emu = emulator
    env = {"DEEPSEEK_API_KEY": emu.api_key}
    first = longdesk(*deepseek(url, notes, "--thinking", "high", "--yes"), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == emu.answer_text
    assert f"thinking: {emu.thinking_text}" in first.stderr
    # The hosted answer's citation is checked against the corpus, as a local answer's is: the
    # emulator's canned answer names a document "D1" that this corpus does not have (its ids
    # come from the content), and the answer's words are found in kitchen.txt, line 1.
    assert "longdesk: citations: 1 citation, 0 verified, 1 unverified" in first.stderr, first.stderr
    assert "UNVERIFIED [D1, line 1]  no document D1" in first.stderr
    assert re.search(r"located +\[\w+, line 1\] +\w+ notes/kitchen\.txt line 1", first.stderr), first.stderr
    assert re.search(r"cost \$0\.0000\d\d \((off-)?peak rates\), session \$0\.0000\d\d", first.stderr)
    assert "hunter2" not in json.dumps(emu.requests)  # the .env file was left out
    second = longdesk(*deepseek(url, notes, "--thinking", "high", "--yes"), env=env)
    assert second.returncode == 0, second.stderr
    hit = re.search(r"cache hit ([\d,]+), miss ([\d,]+)", second.stderr)
    assert hit, second.stderr
    assert int(hit.group(1).replace(",", "")) > 0
    assert emu.requests[-1]["reasoning_effort"] == "high"


@pytest.mark.model
def test_local_model_that_cannot_hold_the_corpus_offers_hosted_through_consent(
    emulator: tuple[str, Emulator], longdesk_home: Path, tmp_path: Path
) -> None:
    url, emu = emulator
    big = tmp_path / "big"
    big.mkdir()
    (big / "shelf.txt").write_text(
        "".join(f"Jar {i} on the shelf holds {i % 7} beans.\n" for i in range(2500))
    )
    args = ["ask", str(big), "-q", "How many jars?", "--backend", "local", "--preset", "deepseek"]
    r = on_terminal([*args, "--base-url", url], {"DEEPSEEK_API_KEY": emu.api_key}, "y\n")
    assert r.returncode == 0, r.stderr
    assert "the local model cannot serve this: the corpus does not fit" in r.stderr
    assert "offering DeepSeek API" in r.stderr
    assert f"send these documents to {url.removeprefix('http://')}? [y/N]" in r.stderr  # through the consent
    assert r.stdout.strip() == emu.answer_text
    assert len(emu.requests) == 1


def test_faults_give_clear_messages_and_the_key_never_lands_in_any_file(
    emulator: tuple[str, Emulator], longdesk_home: Path, notes: Path
) -> None:
    url, emu = emulator
    emu.thinking_text = ""
    env = {"DEEPSEEK_API_KEY": emu.api_key}
    outputs = []
    for faults, message in (
        (["402"], "the account balance is exhausted"),
        (["cut"], "dropped in the middle of the answer"),
    ):
        emu.faults += faults
        r = longdesk(*deepseek(url, notes, "--thinking", "max", "--yes"), env=env)
        assert r.returncode == 5, r.stderr
        assert message in r.stderr
        if faults == ["cut"]:  # the part received is kept on stdout and marked incomplete
            assert r.stdout.strip()
            assert emu.answer_text.startswith(r.stdout.strip())
            assert "INCOMPLETE" in r.stderr
        else:
            assert r.stdout.strip() == ""
        outputs += [r.stdout, r.stderr]
    written = [p for p in longdesk_home.rglob("*") if p.is_file() and not p.is_symlink()]
    ledger = longdesk_home / "logs" / "hosted-usage.jsonl"
    assert ledger in written  # the app did write: usage of the request that streamed
    records = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["endpoint"] for r in records] == [url]
    secret = emu.api_key.encode()
    for path in written:
        data = path.read_bytes()
        assert secret not in data, f"the API key was written to {path}"
        assert secret[-8:] not in data, f"part of the API key was written to {path}"
    assert all(emu.api_key not in text for text in outputs)


def on_terminal(args: list[str], env: dict[str, str], typed: str) -> subprocess.CompletedProcess[str]:
    """Run ``longdesk`` with a terminal as stdin on which the user types ``typed``."""
    import pty

    exe = Path(sys.executable).with_name("longdesk")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "longdesk.ui.main", *args]
    master, slave = pty.openpty()
    try:
        os.write(master, typed.encode())
        full_env = {**os.environ, **env}
        full_env.pop("LONGDESK_API_KEY", None)
        return subprocess.run(
            cmd, stdin=slave, capture_output=True, text=True, timeout=120, env=full_env, cwd=ROOT, check=False
        )
    finally:
        os.close(slave)
        os.close(master)


def test_terminal_prompts_for_consent_and_offers_to_continue_a_cut_answer(
    emulator: tuple[str, Emulator], longdesk_home: Path, notes: Path
) -> None:
    url, emu = emulator
    emu.thinking_text = ""
    env = {"DEEPSEEK_API_KEY": emu.api_key}
    declined = on_terminal(deepseek(url, notes), env, "n\n")
    assert declined.returncode == 5
    assert "send these documents to 127.0.0.1" in declined.stderr
    assert "nothing was sent" in declined.stderr
    assert emu.requests == []

    emu.faults.append("cut")
    r = on_terminal(deepseek(url, notes), env, "y\ny\n")
    assert r.returncode == 0, r.stderr
    assert "dropped in the middle of the answer" in r.stderr
    assert "continue the answer? [y/N]" in r.stderr
    assert len(emu.requests) == 2
    cut_part = emu.requests[1]["messages"][-2]["content"]
    assert cut_part
    assert emu.answer_text.startswith(cut_part)
    assert r.stdout.strip() == cut_part + emu.answer_text  # the kept part, then its continuation


def test_a_key_kept_in_the_keyring_is_used_and_never_written_by_longdesk(
    emulator: tuple[str, Emulator], longdesk_home: Path, notes: Path, tmp_path: Path
) -> None:
    url, emu = emulator
    store = tmp_path / "os-keyring.json"
    env = {
        "PYTHON_KEYRING_BACKEND": "tests.hosted.file_keyring.FileKeyring",
        "LONGDESK_TEST_KEYRING": str(store),
        "PYTHONPATH": str(ROOT),
    }
    exe = Path(sys.executable).with_name("longdesk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "longdesk.ui.main"]
    saved = subprocess.run(
        [*cmd, "key", "set", "--preset", "deepseek", "--base-url", url],
        input=emu.api_key + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert saved.returncode == 0, saved.stderr
    assert emu.api_key not in saved.stdout + saved.stderr
    assert json.loads(store.read_text()) == {f"longdesk|{url}": emu.api_key}
    r = longdesk(*deepseek(url, notes, "--yes"), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == emu.answer_text
    assert emu.headers[-1]["authorization"] == f"Bearer {emu.api_key}"
    for path in longdesk_home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert emu.api_key.encode() not in path.read_bytes(), f"the API key was written to {path}"
