#!/usr/bin/env bash
# Longdesk's DeepSeek-V4 ops on an NVIDIA GPU: build, op tests against the CPU reference, A/B benchmark.
#
# Two steps, because the GPU machine reaches nothing outside itself (no PyPI, no downloads):
#
#   bench/gpu_ops.sh prepare     # HERE: pack what the GPU machine needs into bench/out/gpu-carry/
#                                #   llama-src.tar.xz  the vendored llama.cpp tree (trimmed, ~3 MB)
#                                #   v4-mid.gguf       a generated V4-shaped file (Flash attention shapes,
#                                #                     2 layers CSA + HCA, Q8_0, ~52 MB)
#   bench/gpu_ops.sh run         # ON THE GPU MACHINE (carry bench/out/gpu-carry):
#       1. applies engine/kernels/patches/0*,1* and copies engine/kernels/{cpu,cuda} into the tree
#       2. builds test-backend-ops and llama-bench with CUDA for the one GPU's architecture
#          (nvidia-smi's compute capability) on all cores
#       3. test-backend-ops test -b CUDA0 for our ops and the upstream ops they replace (the reference
#          is the CPU backend with use_ref)
#       4. test-backend-ops perf for the same ops
#       5. llama-bench on v4-mid.gguf, all layers on the GPU, ours vs upstream's path in one run
#          (LONGDESK_DSV4_OPS=1 / 0 on the same binary), prefill 512 and decode 16 at depths
#          0, 16K, 64K
#   bench/gpu_ops.sh build | check  # the same in two calls (steps 1-2, then 3-5), each under 10 minutes
#   bench/gpu_ops.sh configure   # HERE, no GPU: steps 1-2 up to CMake's configure with the PyPI
#                                # toolkit (packaging/cuda_toolkit.py): checks the script's own logic
#
# Environment: CUDA_HOME or nvcc on PATH (else /usr/local/cuda); GPU_OPS_ARCH (e.g. 90) overrides
# the detected architecture; GPU_OPS_DEPTHS (default "0,16384,65536"); GPU_OPS_WORK (scratch,
# default bench/out/gpu-work). Prints everything to stdout; the build log goes to $WORK/build.log.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CARRY="$ROOT/bench/out/gpu-carry"
WORK="${GPU_OPS_WORK:-$ROOT/bench/out/gpu-work}"  # ignored by git: kept between calls on a warm machine
DEPTHS="${GPU_OPS_DEPTHS:-0,16384,65536}"
OPS_TESTED=(DSV4_INDEXER_TOPK DSV4_SPARSE_ATTN LIGHTNING_INDEXER TOP_K TOPK_MOE)
OPS_PERF=(DSV4_INDEXER_TOPK LIGHTNING_INDEXER TOP_K DSV4_SPARSE_ATTN FLASH_ATTN_EXT)

say() { printf '[gpu_ops] %s\n' "$*"; }
die() { printf '[gpu_ops] ERROR: %s\n' "$*" >&2; exit 1; }

python_bin() {
  if [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

prepare() {
  mkdir -p "$CARRY"
  local py; py="$(python_bin)"
  say "unpacking llama-cpp-python's sdist (cached) and packing the vendored tree"
  local tmp; tmp="$(mktemp -d)"
  "$py" - "$tmp" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "packaging")
import cuda_toolkit
print(cuda_toolkit.unpack_sdist(Path(sys.argv[1])))
EOF
  local tree="$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp"
  tar -C "$tree" -cJf "$CARRY/llama-src.tar.xz" \
    --exclude='*.gguf' --exclude='ggml/src/ggml-vulkan' --exclude='ggml/src/ggml-sycl' \
    --exclude='ggml/src/ggml-cann' --exclude='ggml/src/ggml-webgpu' --exclude='ggml/src/ggml-opencl' \
    --exclude='ggml/src/ggml-hexagon' --exclude='ggml/src/ggml-musa' --exclude='ggml/src/ggml-zdnn' \
    --exclude='tools/ui' --exclude='tools/server/public*' --exclude='tools/server/webui' \
    CMakeLists.txt cmake common ggml include src tests tools app vendor licenses LICENSE
  rm -rf "$tmp"
  say "generating the V4-shaped file"
  "$py" - "$CARRY/v4-mid.gguf" <<'EOF'
import sys
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, ".")
from longdesk.engine.dsv4.config import flash_like_mid
from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4
cfg = replace(flash_like_mid(n_layer=2, n_expert=8, dim=1024), q_lora_rank=64, o_lora_rank=64)
path = write_tiny_v4(Path(sys.argv[1]), cfg, wtype="q8_0")
print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB, ratios {cfg.compress_ratios}, "
      f"heads {cfg.n_head}x{cfg.head_dim}, indexer {cfg.index_n_heads}x{cfg.index_head_dim} top-{cfg.index_topk}")
EOF
  du -sh "$CARRY"/*
  say "carry bench/out/gpu-carry to the GPU machine and run: bench/gpu_ops.sh run"
}

find_nvcc() {
  if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then echo "$CUDA_HOME/bin/nvcc"; return; fi
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then echo "$d/nvcc"; return; fi
  done
  return 1
}

# Unpack the tree, apply our patches, copy our kernels. $1: the source tarball.
make_tree() {
  local tarball="$1"
  rm -rf "$WORK/src"; mkdir -p "$WORK/src"
  tar -C "$WORK/src" -xJf "$tarball"
  local p applied=0
  for p in "$ROOT"/engine/kernels/patches/0*.patch "$ROOT"/engine/kernels/patches/1*.patch; do
    [ -e "$p" ] || continue
    if command -v git >/dev/null 2>&1; then
      (cd "$WORK/src" && git apply --whitespace=nowarn "$p") || die "patch $(basename "$p") does not apply"
    else
      (cd "$WORK/src" && patch -p1 --forward --quiet < "$p") || die "patch $(basename "$p") does not apply"
    fi
    say "applied $(basename "$p")"; applied=$((applied + 1))
  done
  [ "$applied" -gt 0 ] || die "no patches under engine/kernels/patches"
  if [ -d "$ROOT/engine/kernels/cpu" ]; then
    mkdir -p "$WORK/src/ggml/src/ggml-cpu/longdesk"
    cp "$ROOT"/engine/kernels/cpu/* "$WORK/src/ggml/src/ggml-cpu/longdesk/"
  fi
  cp "$ROOT"/engine/kernels/cuda/*.cu "$ROOT"/engine/kernels/cuda/*.cuh "$WORK/src/ggml/src/ggml-cuda/"
}

configure() {  # $1: nvcc, $2: architecture list, rest: extra cmake args
  local nvcc="$1" archs="$2"; shift 2
  local gen=(); command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  cmake -S "$WORK/src" -B "$WORK/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$archs" \
    -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_APP=OFF -DGGML_CCACHE=OFF "$@" > "$WORK/configure.log" 2>&1 \
    || { tail -40 "$WORK/configure.log"; die "CMake configure failed (log: $WORK/configure.log)"; }
  grep -E "CUDA Toolkit found|CMAKE_CUDA_ARCHITECTURES|Including CUDA backend" "$WORK/configure.log" || true
}

configure_here() {
  local py; py="$(python_bin)"
  local nvcc; nvcc="$("$py" -c 'import sys; sys.path.insert(0, "packaging"); import cuda_toolkit; print(cuda_toolkit.ensure("full").nvcc)')"
  local tarball="$CARRY/llama-src.tar.xz"
  [ -f "$tarball" ] || die "run 'bench/gpu_ops.sh prepare' first"
  make_tree "$tarball"
  local root; root="$(dirname "$(dirname "$nvcc")")"
  PATH="$root/bin:$PATH" configure "$nvcc" "90-real" -DGGML_CUDA_NO_VMM=ON -DGGML_NATIVE=OFF -DCUDAToolkit_ROOT="$root"
  say "configure OK (no build here: the full ggml-cuda build is ~31 min on 2 cores)"
}

build() {
  local t0; t0=$(date +%s)
  [ -f "$CARRY/llama-src.tar.xz" ] && [ -f "$CARRY/v4-mid.gguf" ] || die "bench/out/gpu-carry is missing: run 'bench/gpu_ops.sh prepare' where PyPI is reachable and carry it"
  command -v nvidia-smi >/dev/null 2>&1 || die "no nvidia-smi: not a GPU machine"
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
  local nvcc; nvcc="$(find_nvcc)" || die "no nvcc (set CUDA_HOME)"
  say "nvcc: $nvcc ($("$nvcc" --version | tail -1))"
  local arch="${GPU_OPS_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.[:space:]')}"
  say "architecture: ${arch}-real; cores: $(nproc)"

  make_tree "$CARRY/llama-src.tar.xz"
  configure "$nvcc" "${arch}-real" -DGGML_NATIVE=ON
  say "building test-backend-ops and llama-bench ($(nproc) jobs)"
  local b0; b0=$(date +%s)
  cmake --build "$WORK/build" -j "$(nproc)" --target test-backend-ops llama-bench > "$WORK/build.log" 2>&1 \
    || { grep -E "error|Error" "$WORK/build.log" | head -40; die "build failed (log: $WORK/build.log)"; }
  say "built in $(( $(date +%s) - b0 )) s"
}

check() {
  local t0; t0=$(date +%s)
  local bin="$WORK/build/bin"
  [ -x "$bin/test-backend-ops" ] && [ -x "$bin/llama-bench" ] || die "nothing built in $WORK/build: run 'bench/gpu_ops.sh build' first"

  say "op tests: CUDA0 against the CPU reference"
  local op fails=0
  for op in "${OPS_TESTED[@]}"; do
    if "$bin/test-backend-ops" test -b CUDA0 -o "$op" > "$WORK/test-$op.log" 2>&1; then
      say "  $op: $(grep -E "tests passed" "$WORK/test-$op.log" | tail -1)"
    else
      fails=$((fails + 1)); say "  $op: FAILED"; grep -E "FAIL|NMSE|err" "$WORK/test-$op.log" | head -20
    fi
  done

  say "op perf on CUDA0"
  for op in "${OPS_PERF[@]}"; do
    "$bin/test-backend-ops" perf -b CUDA0 -o "$op" 2>&1 | grep -E "^\s+$op|us/run" | head -20 || true
  done

  say "A/B on v4-mid.gguf: ours (LONGDESK_DSV4_OPS=1) vs upstream (LONGDESK_DSV4_OPS=0), depths $DEPTHS"
  local mode
  for mode in 1 0; do
    say "LONGDESK_DSV4_OPS=$mode"
    LONGDESK_DSV4_OPS=$mode "$bin/llama-bench" -m "$CARRY/v4-mid.gguf" -ngl 99 -fa 1 -ub 512 -b 512 \
      -p 512 -n 16 -d "$DEPTHS" -r 2 -o md 2>&1 | grep -E "^\|" || say "llama-bench failed for mode $mode"
  done
  say "done in $(( $(date +%s) - t0 )) s; op test failures: $fails"
  [ "$fails" -eq 0 ]
}

case "${1:-}" in
  prepare) prepare ;;
  configure) configure_here ;;
  run) build; check ;;
  build) build ;;
  check) check ;;
  *) sed -n '2,27p' "$0"; exit 2 ;;
esac
