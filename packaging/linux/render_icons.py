"""Render Longdesk's icon files from assets/icons/longdesk.svg.

    python3 packaging/linux/render_icons.py

Writes, beside the SVG:
* longdesk-N.png for the sizes desktops look for (16 … 512), for the hicolor icon theme and
  the Linux bundle,
* longdesk.ico (Windows: 16 … 256, PNG-compressed entries, as Windows Vista and later read),
* longdesk.icns (macOS: 16 … 1024, PNG entries of the types Finder reads since 10.7).

The rendering is rsvg-convert's (Debian: librsvg2-bin); the ICO and ICNS containers are
written here with the standard library. The rendered files are committed, so building a bundle
does not need rsvg-convert; run this again after changing the SVG.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ICONS = Path(__file__).resolve().parents[2] / "assets" / "icons"
SVG = ICONS / "longdesk.svg"
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types holding PNG data, by pixel size (the @2x types share sizes with others).
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
)


def render(size: int, out: Path) -> bytes:
    subprocess.run(
        ["rsvg-convert", "--width", str(size), "--height", str(size), "--output", str(out), str(SVG)],
        check=True,
    )
    return out.read_bytes()


def ico(pngs: dict[int, bytes]) -> bytes:
    """An ICO file whose entries are PNG images (one per size)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        data = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset + len(blobs))
        blobs += data
    return header + entries + blobs


def icns(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file whose elements are PNG images."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size] for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    if shutil.which("rsvg-convert") is None:
        print("rsvg-convert is missing: apt-get install librsvg2-bin", file=sys.stderr)
        return 1
    pngs: dict[int, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted({*PNG_SIZES, *ICO_SIZES, *(s for _, s in ICNS_TYPES)}):
            pngs[size] = render(size, Path(tmp) / f"{size}.png")
    for size in PNG_SIZES:
        (ICONS / f"longdesk-{size}.png").write_bytes(pngs[size])
    (ICONS / "longdesk.ico").write_bytes(ico({s: pngs[s] for s in ICO_SIZES}))
    (ICONS / "longdesk.icns").write_bytes(icns(pngs))
    print(f"wrote {len(PNG_SIZES)} PNGs, longdesk.ico and longdesk.icns in {ICONS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
