"""The DeepSeek emulator in a process of its own, for ``bench.million``.

Its memory (it reads and tokenizes every 1M-token request) must not count against the
window's. Prints ``url key`` on its first line; the answer it streams is read from the file
named by ``--answer`` at each request (the harness writes it once the document ids are known);
it stops when its standard input closes.
Run: python -m bench.million_server --answer FILE [--chunk-delay S]
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from tests.hosted import deepseek_emulator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answer", type=Path, required=True)
    ap.add_argument("--chunk-delay", type=float, default=0.002)
    args = ap.parse_args()
    with deepseek_emulator.running() as (url, emu):
        emu.chunk_delay_s = args.chunk_delay
        emu.thinking_text = "The question names verses, a module and a manual; I look them up."
        stop = threading.Event()

        def follow() -> None:
            while not stop.wait(0.1):
                if args.answer.exists():
                    emu.answer_text = args.answer.read_text(encoding="utf-8")

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        print(url, emu.api_key, flush=True)
        sys.stdin.read()
        stop.set()


if __name__ == "__main__":
    main()
