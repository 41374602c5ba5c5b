#!/usr/bin/env bash
# Live-demo GPU check in one call (about 8 minutes on one H100/H200): the compiled decode path against eager and
# transformers' generate (dynamic and static cache), prompt lookup on the compiled path, the fp16 outlier test of
# every quantization method, and the batch sweep (1..64) of bf16 and torchao weight-only int8/int4. Each step has
# its own time limit (80 + 200 + 3 x 60 s), so the whole check stays under about 8 minutes.
# Installs nothing. Writes JSON, logs and the GPU description to $OUT (or docs/bench_results/).
# Usage: bash bench/gpu_check.sh            (PYTHON=/path/to/python to choose the interpreter)
set -uo pipefail
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
    echo "error: torch sees no CUDA GPU with $PY; nothing to measure" | tee "$DEST/gpu_check.log" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$DEST/gpu_info.csv" 2>/dev/null || true
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, torch.cuda.get_device_name(0)); import importlib.util as u; \
print('torchao', u.find_spec('torchao') is not None, 'bitsandbytes', u.find_spec('bitsandbytes') is not None)" \
    > "$DEST/versions.txt"
git rev-parse --short HEAD >> "$DEST/versions.txt" 2>/dev/null || true

step() {  # step NAME LIMIT_S ARGS...: one `python -m live_demo` call with its own time limit, JSON to NAME.json
    local name="$1" limit="$2"; shift 2
    local start; start=$(date +%s)
    if timeout "$limit" "$PY" -m live_demo "$@" --json > "$DEST/$name.json" 2> "$DEST/$name.log"; then
        echo "$name: done in $(( $(date +%s) - start )) s"
    else
        echo "$name: FAILED or over ${limit} s (rc $?, $(( $(date +%s) - start )) s; see $name.log)"
    fi
}

# 1. Every CUDA code path on the tiny random model, static cache without compilation (seconds each).
ELLM_DECODE_PATH=static step tiny_cuda 80 bench --device cuda --quick --model tiny --no-history \
    --sections quantization,compression,speculative,decode_paths,outliers,sweep
# 2. The real model: eager / static / compiled decoding, transformers generate (dynamic, static), prompt lookup on
#    the copy-heavy prompt, and the fp16 outlier test of every method.
step decode_paths 200 bench --device cuda --sections decode_paths,outliers
# 3. The batch sweep, one call per method so a slow compile loses only its own figures.
#    (Add torchao-fp8wo to the list on a GPU with fp8 when there is time: about 60 s more.)
for method in baseline torchao-int8wo torchao-int4wo; do
    step "sweep_$method" 60 sweep --device cuda --methods "$method" --batches 1,2,4,8,16,32,64 --new-tokens 32
done
echo "results in $DEST"
