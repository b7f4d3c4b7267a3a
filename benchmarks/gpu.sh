#!/usr/bin/env bash
# The headline on one GPU, in one call of at most 9 minutes, from a fresh machine without internet:
# `python -m tuner fashion --trials 100` on N worker processes sharing the GPU, then an export of the best
# model, with the figures (wall time, trials complete/pruned, best CV, test accuracy, GPU utilisation,
# images/s) written to $OUT: gpu.json, gpu.log, gpu-util.csv, the model card, the study's summary and its
# journal (journal.log.gz). $OUT defaults to gpu-out/ in the repository.
#
#   bash benchmarks/gpu.sh --prepare          # here, with internet: wheels into .whl/, Fashion-MNIST into .gpu-data/
#   bash benchmarks/gpu.sh                    # there, on the GPU machine, with .whl/ and .gpu-data/ carried along
#   bash benchmarks/gpu.sh --cpu --trials 3   # a rehearsal on a CPU (JAX): tiny study, same steps, same figures
#
# Options: --trials N (100), --workers N (8 on a GPU, 2 with --cpu), --deadline S (540: the whole call),
# --final-epochs E (0: the folds' mean best epoch), and after `--` more flags for `tuner run`.
# The GPU machine is assumed to have Python 3.12, JAX with CUDA, numpy, scikit-learn, matplotlib, pillow,
# h5py, rich, absl-py, ml-dtypes, PyYAML, tqdm (and no TensorFlow): the rest travels as wheels (WHEELS).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEEL_DIR="$REPO/.whl"
DATA_DIR="$REPO/.gpu-data/fashion-mnist"
DEBIAN_FASHION=/usr/share/datasets/fashion-mnist
FASHION_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
# What a JAX + PyTorch GPU image lacks of tuner's needs, at the versions tested here (pure Python but for
# optree and SQLAlchemy, fetched as CPython 3.12 x86-64 wheels).
WHEELS="optuna==5.0.0 optuna-dashboard==0.21.0 keras==3.15.1 alembic==1.20.1 sqlalchemy==2.1.9 colorlog==6.12.0
mako==1.4.3 namex==0.1.0 optree==0.20.0 bottle==0.13.4"
CARRY_LIMIT_MIB=64

TRIALS=100 WORKERS="" DEADLINE=540 FINAL_EPOCHS=0 CPU=0 PREPARE=0 EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --trials) TRIALS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --deadline) DEADLINE=$2; shift 2 ;;
        --final-epochs) FINAL_EPOCHS=$2; shift 2 ;;
        --cpu) CPU=1; shift ;;
        --prepare) PREPARE=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "gpu.sh: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done

if [ "$PREPARE" = 1 ]; then  # here, with internet: what the GPU machine cannot fetch
    mkdir -p "$WHEEL_DIR" "$DATA_DIR"
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEEL_DIR" $WHEELS
    for name in $FASHION_FILES; do
        [ -f "$DEBIAN_FASHION/$name" ] || { echo "gpu.sh: $DEBIAN_FASHION/$name missing: apt-get install dataset-fashion-mnist" >&2; exit 2; }
        cp "$DEBIAN_FASHION/$name" "$DATA_DIR/"
    done
    # what travels: tracked and untracked-not-ignored files, and the two carried folders
    carried=$(cd "$REPO" && { git ls-files -co --exclude-standard; find .whl .gpu-data -type f; } | python3 -c "
import os, sys
print(sum(os.path.getsize(p) for p in sys.stdin.read().splitlines() if os.path.isfile(p)))")
    echo "wheels: $(ls "$WHEEL_DIR" | wc -l) files, $(du -sh "$WHEEL_DIR" | cut -f1); data: $(du -sh "$DATA_DIR" | cut -f1)"
    echo "carried with the repository: $((carried / 1024 / 1024)) MiB ($carried bytes) of at most $CARRY_LIMIT_MIB MiB"
    [ $((carried / 1024 / 1024)) -lt $CARRY_LIMIT_MIB ] || { echo "gpu.sh: over $CARRY_LIMIT_MIB MiB" >&2; exit 1; }
    exit 0
fi

START_MS=$(( $(date +%s%N) / 1000000 ))
since() { local ms=$(( $(date +%s%N) / 1000000 - $1 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
elapsed() { since "$START_MS"; }  # seconds since the start, with milliseconds
left() { echo $(( DEADLINE - ($(date +%s%N) / 1000000 - START_MS) / 1000 )); }  # whole seconds to the deadline
OUT=${OUT:-$REPO/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
echo "gpu.sh: $(date -u +%FT%TZ) on $(uname -n), $(nproc) cores; deadline ${DEADLINE}s; trials $TRIALS"

# 1. Install: the repository itself on PYTHONPATH, and what is missing from the carried wheels.
export PYTHONUNBUFFERED=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import optuna, optuna_dashboard, keras, sqlalchemy, alembic" 2>/dev/null; then
    [ -d "$WHEEL_DIR" ] || { echo "gpu.sh: optuna/keras missing and no $WHEEL_DIR: run 'bash benchmarks/gpu.sh --prepare' where there is internet" >&2; exit 2; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEEL_DIR"/*.whl
    export PYTHONPATH="$REPO:/tmp/site${PYTHONPATH#"$REPO"}"
    INSTALLED=wheels
else
    INSTALLED=present
fi
INSTALL_SECONDS=$(elapsed)

# 2. The data: the carried copy, else Debian's.
if [ -f "$DATA_DIR/train-images-idx3-ubyte.gz" ]; then DATA=$DATA_DIR; else DATA=$DEBIAN_FASHION; fi

# 3. The backend: tuner chooses JAX itself when it sees a GPU (that is checked here); --cpu runs JAX on the CPU.
if [ "$CPU" = 1 ]; then
    export KERAS_BACKEND=${KERAS_BACKEND:-jax}
    WORKERS=${WORKERS:-2}
    SMALL=(--subset 1500 --folds 2 --epochs 1)  # a CPU has minutes for the whole rehearsal, not hours
else
    WORKERS=${WORKERS:-8}
    SMALL=()
fi
CHOICE=$(python3 -c "
from tuner.distributed import worker_devices as devices
import os
print(devices.choose_backend(os.environ, devices.visible_gpus(), devices.jax_support()))")
echo "backend choice: $CHOICE"
if [ "$CPU" = 0 ] && [ -z "${KERAS_BACKEND:-}" ] && [[ "$CHOICE" != "('jax',"* ]]; then
    echo "gpu.sh: tuner did not choose JAX by itself; setting KERAS_BACKEND=jax to go on"
    export KERAS_BACKEND=jax
fi

# 4. GPU samples, once a second, for the whole call.
MONITOR=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L || true
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,memory.total,power.draw \
        --format=csv,noheader,nounits -l 1 > "$OUT/gpu-util.csv" 2>/dev/null &
    MONITOR=$!
fi
WORK=$(mktemp -d /tmp/tuner-gpu.XXXXXX)
SEARCH_GROUP=""
cleanup() {
    [ -n "$MONITOR" ] && kill "$MONITOR" 2>/dev/null || true
    [ -n "$SEARCH_GROUP" ] && kill -KILL -- "-$SEARCH_GROUP" 2>/dev/null || true
}
trap cleanup EXIT
cd "$WORK"
STORAGE="journal://$WORK/journal.log"  # journal:///tmp/...: WORK is absolute
cache_files() { { find "${TUNER_COMPILATION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tuner/jax-compilation}" -type f 2>/dev/null || true; } | wc -l; }
CACHE_FILES_BEFORE=$(cache_files)

# 5. The search: no new trial after SEARCH_TIMEOUT, stopped (its trials in flight failed) at SEARCH_LIMIT,
#    leaving EXPORT_RESERVE seconds for the export.
EXPORT_RESERVE=110 LAST_TRIAL=70
SEARCH_LIMIT=$(( $(left) - EXPORT_RESERVE ))
SEARCH_TIMEOUT=$(( SEARCH_LIMIT - LAST_TRIAL ))
[ "$SEARCH_TIMEOUT" -gt 30 ] || { echo "gpu.sh: only $(left)s left before the search: raise --deadline" >&2; exit 2; }
RUN=(python3 -m tuner fashion --trials "$TRIALS" --workers "$WORKERS" --timeout "$SEARCH_TIMEOUT"
     --storage "$STORAGE" --data-dir "$DATA" --no-progress "${SMALL[@]}" "${EXTRA[@]}")
echo "search: ${RUN[*]} (stopped at ${SEARCH_LIMIT}s)"
SEARCH_START=$(( $(date +%s%N) / 1000000 ))
set +e
# its own process group (setsid), so that no worker outlives it; timeout signals the parent only, which
# passes SIGTERM on to each worker once (each fails its trial in flight cleanly)
setsid timeout --foreground --signal=TERM --kill-after=20 "$SEARCH_LIMIT" "${RUN[@]}" &
SEARCH_GROUP=$!
wait "$SEARCH_GROUP"
SEARCH_CODE=$?
set -e
kill -KILL -- "-$SEARCH_GROUP" 2>/dev/null || true  # no worker may outlive the search and slow the export
SEARCH_GROUP=""
SEARCH_SECONDS=$(since "$SEARCH_START")
python3 -m tuner report fashion --storage "$STORAGE" --markdown "$OUT/summary.md" > /dev/null 2>&1 || true

# 6. The export of the best trial: its final training fits FINAL_BUDGET at the speed its folds measured.
EXPORT_LIMIT=$(( $(left) - 15 ))
FINAL_BUDGET=$(( EXPORT_LIMIT > 100 ? 60 : EXPORT_LIMIT - 40 ))
[ "$FINAL_BUDGET" -ge 5 ] || FINAL_BUDGET=5
EXPORT=(python3 -m tuner export fashion --top 1 --storage "$STORAGE" --out "$WORK/export" --data-dir "$DATA"
        --final-budget "$FINAL_BUDGET" --final-epochs "$FINAL_EPOCHS")
echo "export: ${EXPORT[*]} (stopped at ${EXPORT_LIMIT}s)"
EXPORT_START=$(( $(date +%s%N) / 1000000 ))
set +e
timeout --signal=TERM --kill-after=10 "$EXPORT_LIMIT" "${EXPORT[@]}"
EXPORT_CODE=$?
set -e
EXPORT_SECONDS=$(since "$EXPORT_START")
TOTAL_SECONDS=$(elapsed)
cleanup
MONITOR=""

# 7. The figures.
cp "$WORK"/export/*.card.json "$WORK"/export/*.card.md "$OUT/" 2>/dev/null || true
gzip -c "$WORK/journal.log" > "$OUT/journal.log.gz" 2>/dev/null || true  # every trial, for a later look
cat > "$WORK/phases.json" <<EOF
{"install": "$INSTALLED", "install_seconds": $INSTALL_SECONDS, "search_seconds": $SEARCH_SECONDS,
 "search_exit": $SEARCH_CODE, "search_timeout": $SEARCH_TIMEOUT, "search_limit": $SEARCH_LIMIT,
 "export_seconds": $EXPORT_SECONDS, "export_exit": $EXPORT_CODE, "final_budget": $FINAL_BUDGET,
 "total_seconds": $TOTAL_SECONDS, "deadline": $DEADLINE, "trials_asked": $TRIALS, "workers": $WORKERS,
 "cpu_rehearsal": $([ "$CPU" = 1 ] && echo true || echo false), "backend_choice": "${CHOICE//\"/\'}",
 "keras_backend_env": "${KERAS_BACKEND:-}", "compilation_cache_files_before": $CACHE_FILES_BEFORE,
 "compilation_cache_files_after": $(cache_files),
 "gpu": "$({ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true; } | head -1)",
 "command": "$(echo "${RUN[*]}" | sed "s|$WORK|WORK|g; s|$REPO|REPO|g")"}
EOF
python3 "$REPO/benchmarks/gpu_figures.py" --storage "$STORAGE" --export "$WORK/export" --util "$OUT/gpu-util.csv" \
    --phases "$WORK/phases.json" > "$OUT/gpu.json"
cat "$OUT/gpu.json"
cd "$REPO" && rm -rf "$WORK"  # what is worth keeping is in $OUT
echo "gpu.sh: done in $(elapsed)s; figures in $OUT"
