#!/usr/bin/env bash
# One short run of every CUDA path that has never run, for a session that is lent a GPU (issue 13):
# bench run on cuda (float32 and --amp), the training loop's and the ensembles' throughput, batched
# scoring, and a 3D build rendered through the GPU's EGL. About 8 minutes on one H200.
#
#   benchmarks/device_check.sh DATA OUT [DEVICE]
#
# DATA: a K=5 spritegen file with quick evaluation sets (built on a CPU machine: the GPU machines
# here have no pycairo), OUT: a folder for the logs, DEVICE: cuda (default) or cpu (to try the
# script itself; TRY=1 also shrinks every step to seconds). Each step has its own time limit and a failed step does not stop the others;
# OUT/summary.txt has one line per step (exit status, seconds) and OUT/device_check.log every
# step's output. Where the machine has no pip registry, unpack the .deb files of .gl/ and install
# the wheels of .whl/ first (docs/performance.md, "Checking the GPU paths").
set -uo pipefail

DATA=${1:?usage: device_check.sh DATA OUT [DEVICE]}
OUT=${2:?usage: device_check.sh DATA OUT [DEVICE]}
DEVICE=${3:-cuda}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LOG="$OUT/device_check.log"
SUMMARY="$OUT/summary.txt"
: >"$LOG"
: >"$SUMMARY"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYOPENGL_PLATFORM=egl

# step NAME SECONDS COMMAND...: run it under a time limit, log it, note its status and time.
step() {
    local name=$1 limit=$2
    shift 2
    echo "===== $name: $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    local cmd="$*"
    cmd=${cmd//$'\n'/ }
    printf '%-14s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - t0))" "${cmd:0:110}" \
        | tee -a "$SUMMARY"
}

if [ "${TRY:-0}" = 1 ]; then  # a trial of the script: every step a few seconds
    RUN_SIZE=(--steps 20 --score-preset none) TRAIN_ARGS=(--steps 5 --trials 1)
    ENSEMBLE_ARGS=(--preset small --steps 2 --trials 1) RENDER=(--n 16 --eval-preset none)
else
    RUN_SIZE=(--score-preset quick) TRAIN_ARGS=(--steps 200 --trials 3)
    ENSEMBLE_ARGS=(--preset quick --steps 100 --trials 1) RENDER=(--n 2000 --eval-preset tiny)
fi
RUN=(-m benchmark.cli run --model betavae --beta 4 --data "$DATA" --latent-dim 10 --epochs 2
    --device "$DEVICE" "${RUN_SIZE[@]}" --final-preset quick --quiet --force)

step environment 60 "$PY" -c "
import torch, sys
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory // 2**30, 'GiB')
"
step run-fp32 150 "$PY" "${RUN[@]}" --out "$OUT/run-fp32"
if [ "$DEVICE" = cuda ]; then
    step run-amp 150 "$PY" "${RUN[@]}" --amp --out "$OUT/run-amp"
fi
step train-loop 120 "$PY" benchmarks/bench_train.py --device "$DEVICE" "${TRAIN_ARGS[@]}" \
    --data "$DATA"
step ensemble 240 "$PY" benchmarks/bench_ensemble.py --device "$DEVICE" "${ENSEMBLE_ARGS[@]}" \
    --data "$DATA"
step render-3d 120 "$PY" -m spritegen.cli build --factors 7 "${RENDER[@]}" \
    --workers 8 --quiet --force --out "$OUT/k7-3d.h5"
step render-3d-info 30 "$PY" -m spritegen.cli info --json "$OUT/k7-3d.h5"

# what comes back: the two text files, and each run's per-epoch record (step times, scores)
for run in run-fp32 run-amp; do
    [ -f "$OUT/$run/metrics.jsonl" ] && cp "$OUT/$run/metrics.jsonl" "$OUT/$run.metrics.jsonl"
    rm -rf "${OUT:?}/$run"
done
rm -f "$OUT/k7-3d.h5"
cat "$SUMMARY"
