"""Archives: read in memory member by member; traversal, links and bombs refused."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

from longdesk.engine.corpus.load import LoadOptions, load_sources
from longdesk.engine.corpus.options import ArchiveLimits
from tests.engine.corpus_files import make_pdf


def _zip(path: Path) -> Path:
    pdf = make_pdf(path.parent / "inner.pdf", ["Inside the zip."])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("docs/readme.md", "# Read me\n")
        zf.write(pdf, "docs/inner.pdf")
        zf.writestr("../escape.txt", "x\n")
        zf.writestr("/etc/abs.txt", "x\n")
        zf.writestr("c:/win.txt", "x\n")
        link = zipfile.ZipInfo("docs/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("nested.zip", "PK\x05\x06" + "\x00" * 18)
        zf.writestr("node_modules/x.js", "x\n")
        zf.writestr("bomb.txt", "0" * (3 << 20))  # 3 MiB of zeros: ratio about 1000:1
    pdf.unlink()
    return path


def test_zip_members_in_memory_with_refusals(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    _zip(root / "bundle.zip")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    corpus = load_sources([root], options=LoadOptions(global_excludes=False))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted
    names = [d.name for d in corpus.documents]
    assert names == ["proj/bundle.zip!docs/inner.pdf", "proj/bundle.zip!docs/readme.md"]
    pdf = corpus.documents[0]
    assert pdf.source == f"{root / 'bundle.zip'}!docs/inner.pdf"
    assert "Inside the zip." in pdf.text
    reasons = {i.source.split("!", 1)[1]: i.reason for i in corpus.issues}
    assert reasons["../escape.txt"] == "path leaves the archive (..)"
    assert reasons["/etc/abs.txt"] == "absolute path"
    assert reasons["c:/win.txt"] == "absolute path"
    assert reasons["docs/link"] == "symbolic link"
    assert reasons["nested.zip"] == "archive inside an archive (not opened)"
    assert reasons["node_modules/x.js"].startswith("excluded by default")
    assert reasons["bomb.txt"] == "compression ratio above 100:1 (zip bomb?)"


def test_zip_caps_on_members_and_size(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i:02}.txt", f"file {i}\n" * 100)
    (tmp_path / "ok.txt").write_text("fine\n")
    few = ArchiveLimits(max_members=10)
    (issue,) = load_sources([tmp_path], options=LoadOptions(archive_limits=few)).issues
    assert issue.reason == "30 members, more than the cap (10)"
    small = ArchiveLimits(max_total_bytes=5000)
    corpus = load_sources([path], options=LoadOptions(archive_limits=small))
    assert 1 <= len(corpus.documents) < 30
    assert any("archive expands past the cap" in i.reason for i in corpus.issues)


def test_tar_gz_members_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "src.tar.gz"
    with tarfile.open(path, "w:gz") as tf:

        def add(name: str, data: bytes, kind: bytes = tarfile.REGTYPE, target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("./pkg/mod.py", b"def f():\n    return 1\n")
        add("../../etc/passwd", b"x\n")
        add("pkg/link", b"", tarfile.SYMTYPE, "/etc/passwd")
        add("pkg/hard", b"", tarfile.LNKTYPE, "pkg/mod.py")
        add("pkg/dev", b"", tarfile.CHRTYPE)
    corpus = load_sources([path])
    assert [d.name for d in corpus.documents] == ["src.tar.gz!pkg/mod.py"]
    assert corpus.documents[0].language == "python"
    reasons = {i.source.split("!", 1)[1]: i.reason for i in corpus.issues}
    assert reasons == {
        "../../etc/passwd": "path leaves the archive (..)",
        "pkg/link": "link",
        "pkg/hard": "link",
        "pkg/dev": "not a regular file (device or FIFO)",
    }


def test_corrupt_archive_is_one_issue(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04garbage" + bytes(range(256)))
    (tmp_path / "bad.tar.xz").write_bytes(b"\xfd7zXZ\x00" + bytes(range(200)))
    (tmp_path / "ok.md").write_text("fine\n")
    corpus = load_sources([tmp_path])
    assert [d.name.split("/")[-1] for d in corpus.documents] == ["ok.md"]
    assert {Path(i.source).name: i.reason.split(":")[0] for i in corpus.issues} == {
        "bad.zip": "corrupt or unreadable archive",
        "bad.tar.xz": "corrupt or unreadable archive",
    }
