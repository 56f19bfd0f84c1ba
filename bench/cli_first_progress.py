"""When does `longdesk inspect BIG.pdf` first say how far it is, how fast, and how long still?

Runs the real command on a generated book (or on the PDF given), in a fresh LONGDESK_HOME (so
the parse cache is empty), and prints each progress line with the seconds since the process
started::

    python -m bench.cli_first_progress [BOOK.pdf]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from longdesk.engine.models.default_model import DEFAULT_MODEL_NAME
from tests.engine.test_corpus_progress import make_big_pdf


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(sys.argv[1]) if len(sys.argv) > 1 else make_big_pdf(Path(tmp) / "big.pdf", 1_500, 30)
        home = Path(tmp) / "home"
        (home / "models").mkdir(parents=True)
        model = Path.home() / ".cache" / "longdesk" / "models" / DEFAULT_MODEL_NAME
        (home / "models" / DEFAULT_MODEL_NAME).symlink_to(model)
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "longdesk.ui.main", "inspect", str(pdf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "LONGDESK_HOME": str(home)},
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            print(f"{time.monotonic() - start:6.2f} s  {line.rstrip()}")
        proc.wait()
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
