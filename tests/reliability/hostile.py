"""Generators of hostile inputs: made by the tests, never committed as binaries.

Each function writes one file (or folder entry) into a directory and returns its path. The
reliability tests drop them, together with good files, into one folder and check that every
good file is read and every bad one costs exactly one entry with a clear reason.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path


def good_pdf(folder: Path, name: str = "good.pdf", pages: int = 3) -> Path:
    import pymupdf

    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page()
        page.insert_text((72, 72), f"Good page {i + 1}: the lighthouse keeper counts {i + 7} ships.")
    path = folder / name
    doc.save(str(path))
    doc.close()
    return path


def truncated_pdf(folder: Path) -> Path:
    data = good_pdf(folder, "tmp-trunc-src.pdf").read_bytes()
    (folder / "tmp-trunc-src.pdf").unlink()
    path = folder / "truncated.pdf"
    path.write_bytes(data[: len(data) // 3])
    return path


def garbage_pdf(folder: Path) -> Path:
    path = folder / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(4096))
    return path


def deep_nesting_pdf(folder: Path, depth: int = 100_000) -> Path:
    """An object whose array nests ``depth`` levels (parser recursion)."""
    body = b"[" * depth + b"]" * depth
    pdf = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Deep " + body + b" >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    path = folder / "deep-nesting.pdf"
    path.write_bytes(pdf)
    return path


def cyclic_outline_pdf(folder: Path) -> Path:
    """Outline items whose /Next points back at each other (CVE-2025-46206 shape)."""
    pdf = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Outlines 4 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n"
        b"4 0 obj\n<< /Type /Outlines /First 5 0 R /Last 6 0 R >>\nendobj\n"
        b"5 0 obj\n<< /Title (a) /Parent 4 0 R /Next 6 0 R /First 6 0 R >>\nendobj\n"
        b"6 0 obj\n<< /Title (b) /Parent 4 0 R /Next 5 0 R /First 5 0 R >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    path = folder / "cyclic-outline.pdf"
    path.write_bytes(pdf)
    return path


def encrypted_pdf(folder: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Secret text behind a password.")
    path = folder / "encrypted.pdf"
    doc.save(str(path), encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="open-sesame", owner_pw="owner")
    doc.close()
    return path


def scanned_pdf(folder: Path) -> Path:
    """A page that is only an image: no text layer."""
    import pymupdf

    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 100), False)
    pix.clear_with(200)
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 72, 272, 172), pixmap=pix)
    path = folder / "scanned.pdf"
    doc.save(str(path))
    doc.close()
    return path


def broken_epub(folder: Path) -> Path:
    """Starts like an EPUB zip, then the central directory is gone."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("META-INF/container.xml", "<container/>" * 100)
    data = buf.getvalue()
    path = folder / "broken.epub"
    path.write_bytes(data[: len(data) - 40])
    return path


def zip_bomb(folder: Path, members: int = 4, member_mb: int = 64) -> Path:
    """High-ratio members: each 64 MB of zeros compresses to ~64 KB (ratio ~1000:1)."""
    path = folder / "bomb.zip"
    chunk = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(members):
            with zf.open(f"zeros-{i}.txt", "w", force_zip64=True) as fh:
                for _ in range(member_mb):
                    fh.write(chunk)
    return path


def traversal_zip(folder: Path) -> Path:
    path = folder / "traversal.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../escaped.txt", "I should never be written anywhere.\n")
        zf.writestr("/etc/absolute.txt", "absolute path member\n")
        zf.writestr("fine/inside.txt", "A fine member inside the archive.\n")
        link = zipfile.ZipInfo("link-to-passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return path


def traversal_tar(folder: Path) -> Path:
    path = folder / "traversal.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in (("../evil.txt", "up and out\n"), ("ok/readme.txt", "A fine tar member.\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("sym")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    return path


def long_single_line(folder: Path, size_mb: int = 100) -> Path:
    path = folder / "one-line.txt"
    with path.open("wb") as fh:
        block = b"word " * (1024 * 1024 // 5)
        for _ in range(size_mb):
            fh.write(block)
    return path


def binary_with_text_extension(folder: Path) -> Path:
    path = folder / "looks-like-text.md"
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 16)
    return path


def fifo(folder: Path) -> Path:
    path = folder / "pipe.txt"
    os.mkfifo(path)
    return path


def symlink_out_of_root(folder: Path) -> Path:
    path = folder / "passwd-link.txt"
    path.symlink_to("/etc/passwd")
    return path
