#!/usr/bin/env bash
# Live-demo benchmark on a CUDA machine, in one short run (well under 10 minutes on one H100-class GPU).
# Installs nothing. Writes the JSON, the log and the GPU description to $OUT (or docs/bench_results/).
# Usage: bash bench/gpu_check.sh            (PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
DEST="${OUT:-docs/bench_results}"
mkdir -p "$DEST"
# Keep the 269 MB fp16 model cache and the history out of $OUT so they are not copied back.
export ELLM_CACHE_DIR="${ELLM_CACHE_DIR:-/tmp/ellm-cache}"
export ELLM_HISTORY_DB="${ELLM_HISTORY_DB:-/tmp/ellm-gpu-history.sqlite}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: torch sees no CUDA GPU with $PY; nothing to measure" | tee "$DEST/live_demo_bench_cuda.log" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$DEST/gpu_info.csv" 2>/dev/null || true
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, torch.cuda.get_device_name(0))" > "$DEST/versions.txt"

# 1. Every technique on a tiny random model on the GPU (seconds): the CUDA code paths work at all.
start=$(date +%s)
if timeout 120 "$PY" -m live_demo bench --json --device cuda --quick --model tiny --no-history \
        > "$DEST/tiny_cuda.json" 2> "$DEST/tiny_cuda.log"; then
    echo "tiny-model CUDA smoke passed in $(( $(date +%s) - start )) s"
else
    echo "tiny-model CUDA smoke FAILED (see tiny_cuda.log); going on with the real model"
fi

# 2. The real default model, full preset (the CPU figures in docs/BENCHMARKS.md are full runs too); if that does
#    not finish in FULL_LIMIT_S, the quick preset.
start=$(date +%s)
if timeout "${FULL_LIMIT_S:-360}" "$PY" -m live_demo bench --json --device cuda \
        > "$DEST/live_demo_bench_cuda.json" 2> "$DEST/live_demo_bench_cuda.log"; then
    echo "full live_demo bench on CUDA finished in $(( $(date +%s) - start )) s"
else
    echo "full bench did not finish (rc $?, $(( $(date +%s) - start )) s); running the quick preset"
    timeout 150 "$PY" -m live_demo bench --json --device cuda --quick \
        > "$DEST/live_demo_bench_cuda_quick.json" 2> "$DEST/live_demo_bench_cuda_quick.log" || true
fi
echo "results in $DEST"
