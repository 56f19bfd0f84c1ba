"""A tiny line-plot writer (PNG from numpy and zlib), so the harness needs no plotting library."""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# 3x5 bitmap glyphs, drawn at SCALE.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "011100101101011", "H": "101101111101101", "I": "111010010010111", "J": "001001001101010",
    "K": "101101110101101", "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111", "V": "101101101101010",
    "W": "101101111111101", "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    "%": "101001010100101", ".": "000000000000010", "-": "000000111000000", " ": "000000000000000",
    ":": "000010000010000", "_": "000000000000111", "/": "001001010100100", "(": "010100100100010",
    ")": "010001001001010",
}  # fmt: skip
SCALE = 2
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def _text(img: np.ndarray, x: int, y: int, text: str, colour: tuple[int, int, int] = (0, 0, 0)) -> None:
    for ch in text.upper():
        glyph = _GLYPHS.get(ch, _GLYPHS[" "])
        for k, bit in enumerate(glyph):
            if bit == "1":
                r, c = divmod(k, 3)
                y0, x0 = y + r * SCALE, x + c * SCALE
                img[y0 : y0 + SCALE, x0 : x0 + SCALE] = colour
        x += 4 * SCALE


def _line(
    img: np.ndarray, p: tuple[float, float], q: tuple[float, float], colour: tuple[int, int, int]
) -> None:
    n = int(max(abs(q[0] - p[0]), abs(q[1] - p[1]))) + 1
    xs = np.linspace(p[0], q[0], n).round().astype(int)
    ys = np.linspace(p[1], q[1], n).round().astype(int)
    for dx in (0, 1):
        for dy in (0, 1):
            yy = np.clip(ys + dy, 0, img.shape[0] - 1)
            xx = np.clip(xs + dx, 0, img.shape[1] - 1)
            img[yy, xx] = colour


def write_png(path: Path, img: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as an 8-bit RGB PNG."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[row].tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)


def line_plot(
    path: Path,
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    width: int = 720,
    height: int = 400,
) -> None:
    """Values in 0..1 against evenly spaced categories; ``None`` leaves a gap."""
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right, top, bottom = 60, 220, 40, 50
    pw, ph = width - left - right, height - top - bottom
    _text(img, left, 12, title)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + ph - round(frac * ph)
        img[y, left : left + pw] = (220, 220, 220)
        _text(img, 14, y - 5, f"{frac:.0%}".rjust(4))
    img[top : top + ph + 1, left] = (0, 0, 0)
    img[top + ph, left : left + pw + 1] = (0, 0, 0)
    n = len(x_labels)

    def xpos(i: int) -> float:
        return left + (pw * (i + 0.5) / n if n else 0)

    for i, label in enumerate(x_labels):
        _text(img, round(xpos(i)) - len(label) * 4 * SCALE // 2, top + ph + 12, label)
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [(xpos(i), top + ph - v * ph) for i, v in enumerate(values) if v is not None]
        for p, q in itertools.pairwise(points):
            _line(img, p, q, colour)
        for x, y in points:
            img[round(y) - 3 : round(y) + 4, round(x) - 3 : round(x) + 4] = colour
        ly = top + 10 + k * 22
        img[ly : ly + 8, left + pw + 16 : left + pw + 36] = colour
        _text(img, left + pw + 42, ly, name[:20])
    write_png(path, img)
