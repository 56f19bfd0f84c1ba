"""The installed distribution claims one import name, ``longdesk``, whatever the repository's folders."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("app", "ui", "engine", "assets")


def _declared_packages() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["tool"]["setuptools"]["packages"])


def test_every_source_package_is_declared_under_longdesk() -> None:
    found = {"longdesk"}
    for top in FOLDERS:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            found.add("longdesk." + ".".join(rel.parts))
    declared = set(_declared_packages())
    assert found - declared == set(), "folders with __init__.py missing from pyproject's packages"
    assert declared - found == set(), "packages declared in pyproject that have no folder"


@pytest.mark.slow
def test_pip_install_adds_exactly_one_top_level_package(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
            "--target", str(target), str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    ours = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert ours == {"longdesk"}
    installed = target / "longdesk"
    assert {p.name for p in installed.iterdir() if p.is_dir() and p.name != "__pycache__"} >= set(FOLDERS)
    # Data files travel with the code, and the installed copy imports on its own.
    assert (installed / "assets" / "prompts" / "system.txt").is_file()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import longdesk.engine.context.pack as p; "
        "print(p.__file__); print(len(p.default_instructions()) > 0)"
    )
    r = subprocess.run(
        [sys.executable, "-I", "-c", code, str(target)], capture_output=True, text=True, check=True,
        cwd=tmp_path,
    )
    where, has_prompt = r.stdout.splitlines()
    assert where.startswith(str(installed))
    assert has_prompt == "True"
