"""Build Longdesk's one-folder application bundle with PyInstaller, pack it, and check it starts.

    python3 packaging/bootstrap.py bundle [--no-smoke] [--keep-build]   # the usual way
    .venv/bin/python packaging/bundle.py --python .venv/bin/python       # what bootstrap runs

On Linux the result is ``dist/longdesk-VERSION-linux-ARCH.tar.gz``: the PyInstaller folder
(``longdesk/longdesk`` and its ``_internal/``) with the menu entry, icons, AppStream metadata
and ``install.sh`` beside it. On macOS and Windows the same spec makes ``Longdesk.app`` or the
``longdesk\\`` folder, and the recipes in packaging/macos and packaging/windows wrap them in a
.dmg or an installer (docs/packaging.md).

After building, the bundle is started the way a user starts it (offscreen, and under Xvfb when
``Xvfb`` is installed) until its window shows, and the figures are printed: folder and
tarball size, and start-to-window time (process start to the main window exposed).

PyInstaller's work folder is kept in ``~/.cache/longdesk/pyinstaller/KEY``, KEY a hash of the
spec, the launcher, pyproject.toml and the exact installed packages: a second build with the
same inputs reuses its analysis of the dependencies.

Standard library only (PyInstaller runs in the venv given by ``--python``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "pyinstaller" / "longdesk.spec"
LAUNCHER = ROOT / "packaging" / "pyinstaller" / "launcher.py"
LINUX = ROOT / "packaging" / "linux"
ICONS = ROOT / "assets" / "icons"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
DESKTOP_FILE = "longdesk.desktop"
METAINFO_FILE = "org.longdesk.Longdesk.metainfo.xml"
SMOKE_ENV = "LONGDESK_SMOKE_WINDOW"
SMOKE_TIMEOUT_S = 180.0


def _say(msg: str) -> None:
    print(f"[longdesk bundle] {msg}", flush=True)


def version() -> str:
    for line in (ROOT / "app" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise SystemExit("no __version__ in app/__init__.py")


def platform_tag() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "longdesk" / "pyinstaller"


def work_key(python: str, accel: str) -> str:
    """A hash of everything PyInstaller's dependency analysis depends on, but Longdesk's own code."""
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    h = hashlib.sha256()
    for part in (SPEC.read_bytes(), LAUNCHER.read_bytes(), (ROOT / "pyproject.toml").read_bytes()):
        h.update(part)
    h.update("\n".join(sorted(freeze.splitlines())).encode())
    h.update(f"{accel}|{platform_tag()}|{sys.version_info[:2]}".encode())
    return h.hexdigest()[:16]


def build(python: str, accel: str, dist: Path) -> Path:
    """Run PyInstaller; return the one-folder bundle (``dist/longdesk``)."""
    key = work_key(python, accel)
    work = cache_root() / key
    work.mkdir(parents=True, exist_ok=True)
    # Keep only this key's work folder: an old one is hundreds of megabytes of stale copies.
    for old in cache_root().iterdir():
        if old.is_dir() and old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    _say(f"PyInstaller ({accel} build), work folder {work}")
    env = {**os.environ, "LONGDESK_ACCEL": accel}
    cmd = [
        python,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    _say(f"PyInstaller finished in {time.monotonic() - t0:.0f} s")
    folder = dist / "longdesk"
    exe = folder / ("longdesk.exe" if os.name == "nt" else "longdesk")
    if not exe.is_file():
        raise SystemExit(f"PyInstaller made no {exe}")
    return folder


def stage_linux(folder: Path, stage: Path) -> None:
    """Lay out the tarball's contents: the bundle, the menu entry, icons, metadata, installer."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    shutil.copytree(folder, stage / "longdesk", symlinks=True)
    share = stage / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copy2(LINUX / DESKTOP_FILE, share / "applications" / DESKTOP_FILE)
    (share / "metainfo").mkdir()
    shutil.copy2(LINUX / METAINFO_FILE, share / "metainfo" / METAINFO_FILE)
    scalable = share / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copy2(ICONS / "longdesk.svg", scalable / "longdesk.svg")
    for size in ICON_SIZES:
        target = share / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copy2(ICONS / f"longdesk-{size}.png", target / "longdesk.png")
    shutil.copy2(LINUX / "install.sh", stage / "install.sh")
    (stage / "install.sh").chmod(0o755)


def pack(stage: Path, tarball: Path) -> None:
    tmp = tarball.with_name(tarball.name + ".partial")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(stage, arcname=stage.name)
    tmp.replace(tarball)


def validate_metadata() -> None:
    """Check the .desktop entry and the AppStream file with whichever validators are installed."""
    checks = [
        ("desktop-file-validate", [str(LINUX / DESKTOP_FILE)]),
        ("appstreamcli", ["validate", "--no-net", str(LINUX / METAINFO_FILE)]),
        ("appstream-util", ["validate-relax", "--nonet", str(LINUX / METAINFO_FILE)]),
    ]
    for tool, args in checks:
        path = shutil.which(tool)
        if path is None:
            _say(f"{tool} not installed: not checked")
            continue
        proc = subprocess.run([path, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{tool} rejects the metadata:\n{proc.stdout}{proc.stderr}")
        _say(f"{tool}: valid")


def required_isa(accel: str) -> list[str]:
    """The x86 instruction sets the bundled llama.cpp CPU code was compiled for (recipe + CPU)."""
    sys.path.insert(0, str(ROOT / "packaging"))
    import llama_build

    args = llama_build.cmake_args_for(llama_build.load_recipe(accel))
    return [
        a[len("-DGGML_") : -len("=ON")]
        for a in args
        if a.endswith("=ON") and a[len("-DGGML_") :].startswith(("SSE", "AVX", "FMA", "F16C", "BMI"))
    ]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------------------------- smoke
@contextlib.contextmanager
def xvfb_display() -> Iterator[str]:
    """A private Xvfb server; yields its DISPLAY (``:N``). Needs the ``Xvfb`` program."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise FileNotFoundError("Xvfb is not installed (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            number = pipe.readline().strip()  # Xvfb writes the display number once it listens
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number.decode()}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a user's shell would give the bundle: no venv, no Python path."""
    drop = {
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "QT_PLUGIN_PATH",
        "QT_QPA_PLATFORM_PLUGIN_PATH",
        "LD_LIBRARY_PATH",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST")}
    env["LONGDESK_HOME"] = str(home)
    env.update(extra)
    return env


def start_to_window(command: Path | list[str], env: dict[str, str], screenshot: Path) -> tuple[float, str]:
    """Start the bundle (or ``command``) in smoke mode; return (seconds to the window shown, output)."""
    env = {**env, SMOKE_ENV: str(screenshot)}
    argv = [str(command)] if isinstance(command, Path) else command
    t0 = time.time()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, check=False)
    out = proc.stdout + proc.stderr
    shown = [
        line.split()[2] for line in proc.stdout.splitlines() if line.startswith("LONGDESK_SMOKE window-shown")
    ]
    if proc.returncode != 0 or not shown or not screenshot.is_file():
        raise RuntimeError(f"the bundle did not show its window (exit {proc.returncode}):\n{out}")
    return float(shown[0]) - t0, out


def compare_with_source(folder: Path, python: str, runs: int, out_dir: Path) -> tuple[float, float]:
    """Median start-to-window (offscreen) of the bundle and of the source install, started in turn."""
    exe = folder / ("longdesk.exe" if os.name == "nt" else "longdesk")
    source = [python, str(LAUNCHER)]  # the venv's interpreter running the same entry point, not frozen
    bundled: list[float] = []
    from_source: list[float] = []
    with tempfile.TemporaryDirectory(prefix="longdesk-bundle-home-") as tmp:
        home = Path(tmp)
        source_env = {**os.environ, "LONGDESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
        bundle_env = clean_env(home, QT_QPA_PLATFORM="offscreen")
        start_to_window(exe, bundle_env, out_dir / "warmup.png")  # first start: model assembly, caches
        for _ in range(runs):
            bundled.append(start_to_window(exe, bundle_env, out_dir / "compare-bundle.png")[0])
            from_source.append(start_to_window(source, source_env, out_dir / "compare-source.png")[0])
    (out_dir / "warmup.png").unlink(missing_ok=True)
    return statistics.median(bundled), statistics.median(from_source)


def smoke(folder: Path, runs: int, out_dir: Path) -> dict[str, list[float]]:
    exe = folder / ("longdesk.exe" if os.name == "nt" else "longdesk")
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="longdesk-bundle-home-") as tmp:
        home = Path(tmp)
        version_out = subprocess.run(
            [str(exe), "--version"],
            env=clean_env(home),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
        _say(f"`longdesk --version` from the bundle: {version_out}")
        modes: list[tuple[str, contextlib.AbstractContextManager[str | None]]] = [
            ("offscreen", contextlib.nullcontext(None))
        ]
        if sys.platform.startswith("linux") and shutil.which("Xvfb"):
            modes.append(("xvfb", xvfb_display()))
        elif sys.platform.startswith("linux"):
            _say("Xvfb not installed: the window is checked offscreen only")
        for name, display_cm in modes:
            with display_cm as display:
                extra = (
                    {"QT_QPA_PLATFORM": "offscreen"}
                    if display is None
                    else {"QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
                )
                for i in range(runs):
                    shot = out_dir / f"bundle-window-{name}.png"
                    seconds, _ = start_to_window(exe, clean_env(home, **extra), shot)
                    timings.setdefault(name, []).append(seconds)
                    _say(f"start to window ({name}, run {i + 1}): {seconds:.2f} s; screenshot {shot}")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the venv's python, with PyInstaller")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes")
    parser.add_argument(
        "--accel",
        default=os.environ.get("ACCEL", "cpu"),
        help="cpu, cuda, metal, vulkan (default $ACCEL; set ACCEL instead, so setup builds the same)",
    )
    parser.add_argument("--no-smoke", action="store_true", help="build and pack, but do not start it")
    parser.add_argument("--runs", type=int, default=3, help="starts timed per display (default 3)")
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    if sys.platform.startswith("linux"):
        validate_metadata()
    folder = build(args.python, args.accel, args.dist)
    size = folder_size(folder)
    _say(f"bundle folder: {folder} ({size / 1e6:.0f} MB)")
    artifact = folder
    if sys.platform.startswith("linux"):
        name = f"longdesk-{version()}-{platform_tag()}"
        stage = args.dist / name
        stage_linux(folder, stage)
        tarball = args.dist / f"{name}.tar.gz"
        t_pack = time.monotonic()
        pack(stage, tarball)
        shutil.rmtree(stage)
        packed_s = time.monotonic() - t_pack
        _say(f"tarball: {tarball} ({tarball.stat().st_size / 1e6:.0f} MB, packed in {packed_s:.0f} s)")
        artifact = tarball
    if not args.no_smoke:
        out_dir = ROOT / "test-artifacts" / "bundle"
        out_dir.mkdir(parents=True, exist_ok=True)
        timings = smoke(folder, args.runs, out_dir)
        for mode, values in timings.items():
            _say(
                f"start to window, {mode}: first {values[0]:.2f} s, median {statistics.median(values):.2f} s "
                f"over {len(values)} starts"
            )
        bundled, source = compare_with_source(folder, args.python, args.runs, out_dir)
        _say(
            f"start to window offscreen, started in turn {args.runs}x: bundle {bundled:.2f} s, "
            f"source install {source:.2f} s (bundle/source {bundled / source:.2f})"
        )
    _say(f"bundle size: folder {size / 1e6:.0f} MB; artifact {artifact}")
    isa = required_isa(args.accel) if platform.machine().lower() in {"x86_64", "amd64"} else []
    if isa:
        _say(
            "note: the bundled llama.cpp was compiled for this CPU's instruction sets "
            f"({', '.join(isa)}); it runs only on CPUs that have them all (docs/packaging.md)"
        )
    _say(f"done in {time.monotonic() - t0:.0f} s")
    print(f"LONGDESK_BUNDLE={artifact}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
