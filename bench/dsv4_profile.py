"""Long-context CPU profile of DeepSeek-V4 on a synthetic mid-size V4 file: Longdesk's own ops
against upstream llama.cpp's decomposition, side by side in one run.

The file has V4-Flash's attention shapes (64 heads x 512, a 64 x 128 lightning indexer with
top-k 512, one CSA layer of ratio 4 and one HCA layer of ratio 128, 4 hyper-connection
streams) but few layers and experts and narrow q/o LoRA ranks, so that it fits and runs here.

For each context length the sequence is prefilled once (on our path, the fast one) up to
L - 512 tokens and its state saved; then, for each path (``LONGDESK_DSV4_OPS`` = 1 and 0, a
fresh context each, the state restored), one 512-token chunk is timed (the prefill rate at L),
then a few single-token decode steps, and one more decode step counts the graph nodes the
scheduler runs. With --shares the timed chunk is measured node by node (llama.cpp's scheduler
eval callback, the same overhead on both paths) and the time is split per mechanism.

    .venv/bin/python bench/dsv4_profile.py --contexts 1024 4096 16384 65536 --shares --repeat 3

With --repeat N each path's chunk and decode steps are timed N times, the paths alternated, and
the best of each path kept (the same rule for both, so a load spike costs a try, not the ratio).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from longdesk.engine.dsv4.config import flash_like_mid  # noqa: E402
from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4  # noqa: E402
from longdesk.engine.kernels import RUNTIME_SWITCH, active_ops  # noqa: E402

_NAME_OFFSET = 256  # offsetof(struct ggml_tensor, name) on 64-bit (ggml.h, GGML_MAX_SRC 10)
# ops the CPU backend skips (no work, no thread barrier): views of other tensors' memory
_EMPTY_OPS = {"NONE", "VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"}
CHUNK = 512

# Tensor-name prefixes (the cb() names of src/models/deepseek4.cpp) → mechanism.
_CATEGORIES = (
    ("lid_top_k", "indexer + top-k"),
    ("lid_score", "indexer + top-k"),
    ("lid_kq", "indexer + top-k"),
    ("lid_state", "compressors"),
    ("csa_state", "compressors"),
    ("hca_state", "compressors"),
    ("lid_", "indexer q/k/weights"),
    ("hc_", "hyper-connections"),
    ("l_last", "hyper-connections"),
    ("ffn_", "MoE + shared expert"),
    ("result_", "head"),
    ("kq", "attention"),
    ("__fattn__", "attention"),
    ("csa_", "attention"),
    ("hca_", "attention"),
    ("attn_csa", "attention"),
    ("attn_hca", "attention"),
    ("attn_raw", "attention"),
    ("q", "attention projections"),
    ("kv", "attention projections"),
    ("attn_", "attention projections"),
)


def _category(name: str, previous: str) -> str:
    base = name.split(" (", maxsplit=1)[0]
    if not base or base.startswith("node_") or base.startswith("leaf_"):
        return previous  # unnamed intermediate: belongs to the mechanism being built
    for prefix, cat in _CATEGORIES:
        if base.startswith(prefix):
            return cat
    return previous


def _lib_dir() -> Path:
    """The libraries llama_cpp loads (LLAMA_CPP_LIB_PATH, as llama_cpp itself reads it)."""
    import llama_cpp

    return Path(os.environ.get("LLAMA_CPP_LIB_PATH") or Path(llama_cpp.__file__).parent / "lib")


class Profiler:
    """Times every graph node through the scheduler's eval callback when ``on`` is set; counts
    the nodes it is asked about when ``count`` is set."""

    def __init__(self) -> None:
        import llama_cpp

        self.on = False
        self.count = False
        self.nodes = 0
        self.compute_nodes = 0
        base = ctypes.CDLL(str(_lib_dir() / "libggml-base.so"))
        base.ggml_op_desc.restype = ctypes.c_char_p
        base.ggml_op_desc.argtypes = [ctypes.c_void_p]
        self.times: dict[str, float] = defaultdict(float)
        self._last = 0.0
        self._cat = "other"

        @llama_cpp.ggml_backend_sched_eval_callback  # type: ignore[untyped-decorator,misc]
        def callback(tensor: int, ask: bool, _user: int) -> bool:
            if self.count and ask:
                self.nodes += 1
                if base.ggml_op_desc(tensor).decode() not in _EMPTY_OPS:
                    self.compute_nodes += 1
                return False
            if not self.on:
                return False
            if ask:
                return True
            now = time.perf_counter()
            name = ctypes.string_at(tensor + _NAME_OFFSET).decode("utf-8", errors="replace")
            self._cat = _category(name, self._cat)
            self.times[self._cat] += now - self._last
            self._last = now
            return True

        self.callback = callback

    def start(self) -> None:
        self.times.clear()
        self._cat = "other"
        self._last = time.perf_counter()
        self.on = True

    def stop(self) -> dict[str, float]:
        self.on = False
        return dict(self.times)


class Session:
    """One llama.cpp context on a loaded model (low-level API, so the eval callback can be set)."""

    def __init__(self, model: int, n_ctx: int, threads: int, profiler: Profiler) -> None:
        import llama_cpp

        self.lib = llama_cpp
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = CHUNK
        cparams.n_ubatch = CHUNK
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.swa_full = False
        cparams.flash_attn_type = 1
        cparams.cb_eval = profiler.callback
        cparams.cb_eval_user_data = None
        self.ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not self.ctx:
            raise RuntimeError("llama_init_from_model failed")

    def decode(self, tokens: list[int]) -> None:
        for i in range(0, len(tokens), CHUNK):
            chunk = tokens[i : i + CHUNK]
            arr = (self.lib.llama_token * len(chunk))(*chunk)
            batch = self.lib.llama_batch_get_one(arr, len(chunk))
            if self.lib.llama_decode(self.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")

    def save(self) -> bytes:
        size = self.lib.llama_state_seq_get_size(self.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = self.lib.llama_state_seq_get_data(self.ctx, buf, size, 0)
        return bytes(buf[:n])

    def restore(self, state: bytes) -> None:
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if self.lib.llama_state_seq_set_data(self.ctx, buf, len(state), 0) != len(state):
            raise RuntimeError("llama_state_seq_set_data failed")

    def close(self) -> None:
        self.lib.llama_free(self.ctx)


@dataclass
class PathResult:
    prefill: float  # tok/s of the 512-token chunk at L
    decode: float  # tok/s
    nodes: int  # graph nodes per decoded token
    compute_nodes: int  # of those, the ones the CPU runs (not views/reshapes): one barrier each
    shares: dict[str, float]


def _best(tries: list[PathResult]) -> PathResult:
    """The fastest prefill of the tries (with its shares) and the fastest decode."""
    best = max(tries, key=lambda r: r.prefill)
    return replace(best, decode=max(r.decode for r in tries))


def _with_path(ours: bool) -> None:
    os.environ[RUNTIME_SWITCH] = "1" if ours else "0"


def _run_path(
    model: int,
    n_ctx: int,
    args: argparse.Namespace,
    profiler: Profiler,
    state: bytes | None,
    chunk: list[int],
    steps: list[int],
    ours: bool,
) -> PathResult:
    _with_path(ours)
    s = Session(model, n_ctx, args.threads, profiler)
    try:
        if state is not None:
            s.restore(state)
        if args.shares:
            profiler.start()
        t0 = time.perf_counter()
        s.decode(chunk)
        prefill = len(chunk) / (time.perf_counter() - t0)
        shares = profiler.stop() if args.shares else {}
        t0 = time.perf_counter()
        for tok in steps[:-1]:
            s.decode([tok])
        decode = (len(steps) - 1) / (time.perf_counter() - t0)
        profiler.count, profiler.nodes, profiler.compute_nodes = True, 0, 0
        s.decode(steps[-1:])
        profiler.count = False
        return PathResult(prefill, decode, profiler.nodes, profiler.compute_nodes, shares)
    finally:
        s.close()


def op_level_indexer(contexts: list[int], threads: int) -> list[tuple[int, float, float]]:
    """Indexer + top-k alone on one 512-token chunk at each context (random F16 keys, 64 heads x
    128, top-512): upstream's lightning_indexer + top_k against our fused op, same inputs."""
    from tests.kernels.ggml_ctypes import F16, I32, Ggml, Graph

    g = Ggml()
    rng = np.random.default_rng(3)
    out = []
    for ctx_len in contexts:
        n = ctx_len // 4
        pos = ctx_len - CHUNK + np.arange(CHUNK)
        n_vis = np.minimum(n, (pos + 1) // 4).astype(np.int32)[None]
        q = rng.standard_normal((1, CHUNK, 64, 128)).astype(np.float32)
        k = rng.standard_normal((1, n, 1, 128)).astype(np.float32)
        w = (rng.standard_normal((1, 1, CHUNK, 64)) / 90.5).astype(np.float32)
        mask = np.where(np.arange(n)[None, :] < n_vis[0][:, None], 0.0, -np.inf).astype(np.float32)
        times = []
        for ours in (True, False):
            with Graph(g, mem_mb=64 + 2 * (n * CHUNK * 4 >> 20)) as gr:
                tq, tk, tw = gr.tensor(q), gr.tensor(k, F16), gr.tensor(w)
                if ours:
                    node = g.base.ggml_dsv4_indexer_topk(gr.ctx, tq, tk, tw, gr.tensor(n_vis, I32), 512)
                else:
                    score = g.base.ggml_lightning_indexer(
                        gr.ctx, tq, tk, tw, gr.tensor(mask[None, None], F16)
                    )
                    node = g.base.ggml_top_k(gr.ctx, score, min(n, 512))
                t0 = time.perf_counter()
                gr.compute(node, threads=threads)
                times.append(time.perf_counter() - t0)
        out.append((ctx_len, times[0], times[1]))
        print(
            f"[op] indexer + top-k at {ctx_len:,}: ours {times[0]:.3f} s, upstream {times[1]:.3f} s "
            f"({times[1] / times[0]:.2f}x)",
            flush=True,
        )
    return out


def _fmt_shares(times: dict[str, float]) -> str:
    total = sum(times.values()) or 1.0
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(times.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument(
        "--threads", type=int, default=1, help="1 on a shared machine: spinning thread barriers stall"
    )
    ap.add_argument("--decode", type=int, default=4, help="decode steps timed at each context length")
    ap.add_argument("--shares", action="store_true", help="also measure per-mechanism time shares")
    ap.add_argument(
        "--repeat", type=int, default=1, help="timed tries per path, alternated; the best of each is kept"
    )
    ap.add_argument("--rank", type=int, default=256, help="q/o LoRA rank (Flash: 1024)")
    ap.add_argument("--ops-only", action="store_true", help="only the op-level indexer + top-k comparison")
    args = ap.parse_args(argv)

    import llama_cpp

    status = active_ops()
    if not status.built:
        print("this llama-cpp-python build has no Longdesk ops: nothing to compare", file=sys.stderr)
        return 2
    op_rows = op_level_indexer(sorted(args.contexts), args.threads)
    if args.ops_only:
        return 0
    mid = flash_like_mid(n_layer=2, n_expert=8, dim=1024)
    cfg = replace(mid, q_lora_rank=args.rank, o_lora_rank=args.rank)
    print(
        f"config: D={cfg.dim}, layers ratios {cfg.compress_ratios}, heads {cfg.n_head}x{cfg.head_dim}, "
        f"indexer {cfg.index_n_heads}x{cfg.index_head_dim} top-{cfg.index_topk}, window {cfg.window}, "
        f"q/o rank {cfg.q_lora_rank}, experts {cfg.n_expert_used}/{cfg.n_expert} x {cfg.moe_ff}, "
        f"F16 weights, {args.threads} thread(s), flash attention on, F16 KV"
    )
    print(f"ops built in: {', '.join(status.built)}")
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dsv4-profile-") as tmp:
        path = write_tiny_v4(Path(tmp) / "mid-v4.gguf", cfg, wtype="f16")
        print(f"file: {path.stat().st_size / 2**20:.0f} MiB")
        profiler = Profiler()
        mparams = llama_cpp.llama_model_default_params()
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        n_ctx = max(args.contexts) + 2 * CHUNK
        _with_path(True)
        base = Session(model, n_ctx, args.threads, profiler)
        done = 0
        try:
            for ctx_len in sorted(args.contexts):
                head = ctx_len - CHUNK
                t0 = time.perf_counter()
                _with_path(True)  # the previous row's upstream run left the switch at 0
                base.decode([int(t) for t in rng.integers(2, cfg.n_vocab, head - done)])
                done = head
                state = base.save() if head > 0 else None
                print(f"[{ctx_len:,}] prefilled to {head:,} in {time.perf_counter() - t0:.0f} s", flush=True)
                chunk = [int(t) for t in rng.integers(2, cfg.n_vocab, CHUNK)]
                steps = [int(t) for t in rng.integers(2, cfg.n_vocab, args.decode + 1)]
                # Alternate the paths and keep each one's best of --repeat: a load spike on this
                # shared machine then costs one try, not the row's ratio.
                tries: dict[bool, list[PathResult]] = {True: [], False: []}
                for _ in range(args.repeat):
                    for path in (True, False):
                        tries[path].append(
                            _run_path(model, n_ctx, args, profiler, state, chunk, steps, ours=path)
                        )
                ours, up = _best(tries[True]), _best(tries[False])
                rows.append((ctx_len, ours, up))
                print(
                    f"[{ctx_len:,}] prefill {ours.prefill:.1f} vs {up.prefill:.1f} tok/s "
                    f"({ours.prefill / up.prefill:.2f}x), decode {ours.decode:.2f} vs {up.decode:.2f} "
                    f"({ours.decode / up.decode:.2f}x), nodes {ours.nodes} vs {up.nodes} "
                    f"(computed {ours.compute_nodes} vs {up.compute_nodes})",
                    flush=True,
                )
        finally:
            base.close()
            llama_cpp.llama_model_free(model)
    print()
    print(
        "| context | prefill ours | prefill upstream | ratio | decode ours | decode upstream | ratio "
        "| nodes/token ours | upstream | fewer | computed nodes ours | upstream | fewer |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ctx_len, o, u in rows:
        print(
            f"| {ctx_len:,} | {o.prefill:.1f} | {u.prefill:.1f} | {o.prefill / u.prefill:.2f}x "
            f"| {o.decode:.2f} | {u.decode:.2f} | {o.decode / u.decode:.2f}x | {o.nodes} | {u.nodes} "
            f"| {1 - o.nodes / u.nodes:.0%} | {o.compute_nodes} | {u.compute_nodes} "
            f"| {1 - o.compute_nodes / u.compute_nodes:.0%} |"
        )
    if args.shares:
        print()
        print("| context | path | indexer + top-k s | prefill time shares (512-token chunk) |")
        print("|---:|---|---:|---|")
        for ctx_len, o, u in rows:
            for label, r in (("ours", o), ("upstream", u)):
                idx = r.shares.get("indexer + top-k", 0.0)
                print(f"| {ctx_len:,} | {label} | {idx:.2f} | {_fmt_shares(r.shares)} |")
    print()
    print("| context | indexer + top-k ours s | upstream s | ratio |")
    print("|---:|---:|---:|---:|")
    for ctx_len, o_s, u_s in op_rows:
        print(f"| {ctx_len:,} | {o_s:.3f} | {u_s:.3f} | {u_s / o_s:.2f}x |")
    first = rows[0][1].prefill
    print()
    print(f"our prefill rate at the longest context / at the shortest: {rows[-1][1].prefill / first:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
