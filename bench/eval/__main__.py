"""``python -m bench.eval``: see bench/eval/run.py."""

from bench.eval.run import main

raise SystemExit(main())
