"""Memory planner vs measured RSS of the default model at 4K, 16K and 32K context.

Each context is loaded in a fresh child process through the engine (``LocalBackend``), 512
tokens are evaluated so that every weight and buffer has been touched, and the RSS is set
against the planner's estimate. Run: ``.venv/bin/python -m bench.local_memory``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys
from pathlib import Path
import psutil
from longdesk.engine.backends.local import LocalBackend, LocalSettings
b = LocalBackend(Path(sys.argv[1]), LocalSettings(n_ctx=int(sys.argv[2])))
b._llm.eval(list(range(1000, 1512)))
m = b.placement.memory
print(json.dumps({"rss": psutil.Process().memory_info().rss, "plan": m.total, "kv": m.kv_cache}))
"""


def main() -> int:
    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    worst = 0.0
    print(f"{'context':>8} {'measured MiB':>13} {'estimate MiB':>13} {'KV MiB':>7} {'error':>7}")
    for n_ctx in (4096, 16384, 32768):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(model), str(n_ctx)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        f = json.loads(out.stdout.strip().splitlines()[-1])
        err = (f["plan"] - f["rss"]) / f["rss"]
        worst = max(worst, abs(err))
        rss, plan, kv = (f[k] / 2**20 for k in ("rss", "plan", "kv"))
        print(f"{n_ctx:>8,} {rss:>13,.0f} {plan:>13,.0f} {kv:>7,.0f} {err:>+7.1%}")
    print(f"worst error {worst:.1%} (limit 15%): {'OK' if worst <= 0.15 else 'FAIL'}")
    return 0 if worst <= 0.15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
