"""Set Longdesk up in ./.venv and start it, or run its test suite: the README's two commands.

    python3 packaging/bootstrap.py run [ARGS...]   # set up, then start the app (ARGS go to longdesk)
    python3 packaging/bootstrap.py test [PYTEST ARGS...]   # set up, then run the quality gates and tests
    python3 packaging/bootstrap.py bundle [ARGS...]  # set up, then build the app bundle (packaging/bundle.py)

Setup is idempotent and fast the second time: the virtual environment is kept, the compiled
llama-cpp-python wheel comes from the cache (packaging/llama_build.py), and the project's
dependencies are reinstalled only when pyproject.toml changed. ``ACCEL=cuda`` (or metal,
vulkan) picks the accelerator recipe; the default is cpu.

Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("LONGDESK_VENV", ROOT / ".venv"))
MIN_PYTHON = (3, 11)

sys.path.insert(0, str(ROOT / "packaging"))
import llama_build  # noqa: E402


def _say(msg: str) -> None:
    print(f"[longdesk setup] {msg}", flush=True)


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def ensure_venv() -> Path:
    py = _venv_python()
    if not py.exists():
        _say(f"creating virtual environment {VENV}")
        _run([sys.executable, "-m", "venv", str(VENV)])
        _run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip>=24"])
    return py


def ensure_project(py: Path, extras: str) -> None:
    """pip install -e .[extras] when pyproject.toml (or the extras) changed since last time."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".longdesk-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    _say(f"installing Longdesk and its dependencies ({extras or 'app'})")
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    _run([str(py), "-m", "pip", "install", "-q", "-e", target])
    stamp.write_text(digest)


def ensure_default_model(py: Path) -> None:
    code = (
        "from longdesk.app.models import default_model_path; from longdesk.app.paths import Paths; "
        "print(default_model_path(Paths.default()))"
    )
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    _say(f"default model ready: {out.stdout.strip()}")


def setup(extras: str) -> Path:
    if sys.version_info < MIN_PYTHON:
        raise SystemExit(
            f"Longdesk needs Python {'.'.join(map(str, MIN_PYTHON))}+, this is {sys.version.split()[0]}"
        )
    t0 = time.monotonic()
    py = ensure_venv()
    llama_build.ensure(str(py), os.environ.get("ACCEL", "cpu"), llama_build.default_cache_dir())
    ensure_project(py, extras)
    ensure_default_model(py)
    _say(f"set up in {time.monotonic() - t0:.0f} s")
    return py


def run_tests(py: Path, pytest_args: list[str]) -> int:
    """The quality gates, then the suite. Each gate's failure fails the command."""
    bindir = py.parent
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    gates = [
        ("ruff", [str(bindir / "ruff"), "check", "."]),
        ("mypy", [str(py), "-m", "mypy"]),
        ("import contracts", [str(bindir / "lint-imports")]),
    ]
    for name, cmd in gates:
        _say(f"gate: {name}")
        t0 = time.monotonic()
        if subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode != 0:
            _say(f"gate failed: {name}")
            return 1
        _say(f"gate passed: {name} ({time.monotonic() - t0:.0f} s)")
    _say("tests: pytest")
    return subprocess.run([str(py), "-m", "pytest", *pytest_args], cwd=ROOT, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "setup", "bundle"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    py = setup({"test": "dev", "bundle": "bundle"}.get(command, ""))
    if command == "setup":
        return 0
    if command == "bundle":
        bundle = [str(py), str(ROOT / "packaging" / "bundle.py"), "--python", str(py), *rest]
        return subprocess.run(bundle, check=False).returncode
    if command == "test":
        return run_tests(py, rest)
    launcher = py.parent / ("longdesk.exe" if os.name == "nt" else "longdesk")
    return subprocess.run([str(launcher), *rest], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
