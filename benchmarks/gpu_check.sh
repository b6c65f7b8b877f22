#!/usr/bin/env bash
# The first GPU's checklist, in one run of under 8 minutes on one GPU:
#
#     benchmarks/gpu_check.sh [DATA_DIR]        (default: /tmp/cifar10_data)
#
#   1. the tests that need a GPU (pytest -m gpu);
#   2. benchmarks/benchmark.py in float16 and float32: our step alone, the trainer as
#      cifar10_train.py runs it, and Keras model.fit;
#   3. 2 towers on 2 logical GPUs of the first GPU (benchmarks/logical_gpus.py), beside
#      1 tower: they share one physical GPU, so this proves the tower path, not scaling;
#   4. a 2,000-step run of --recipe=fast in the default precision (float16 on a GPU),
#      and cifar10_eval.py's precision @ 1 of it.
#
# Then it prints one table, and exits 1 if any part failed (its log is named there).
# DATA_DIR is the trainers' --data_dir: the data is downloaded there if missing.
#
# On a machine without a GPU it skips the GPU tests and runs every other part at a tiny
# size on the CPU instead (the tests run it that way, on their own small data): that
# proves the commands, and its figures measure nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${1:-/tmp/cifar10_data}
WORK=$(mktemp -d -t cifar10_gpu_check.XXXXXX)
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
GPUS=$(python -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null)
if [[ "$GPUS" -gt 0 ]]; then
    MODE="on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo "$GPUS GPU(s)")"
    BATCH=128
    BENCHMARK_FLAGS=(--windows=7 --window_steps=100)
    TOWER_STEPS=600
    FAST_STEPS=2000
else
    MODE="CPU dry run: no GPU, every part at a tiny size; these figures measure nothing"
    BATCH=8
    BENCHMARK_FLAGS=(--windows=1 --window_steps=10 --rows=step,trainer --precisions=float32 --eval_batch_size=100)
    TOWER_STEPS=20
    FAST_STEPS=20
fi

TABLE=()
FAILED=0

# row PART RESULT SECONDS
row() { TABLE+=("$(printf '| %-62s | %-64s | %6s |' "$1" "$2" "$3")"); }

trim() { local text=$1; text=${text#"${text%%[![:space:]]*}"}; echo "${text%"${text##*[![:space:]]}"}"; }

# part NAME LOG COMMAND...: runs COMMAND with its output in $WORK/LOG; on failure adds
# the failure's row and returns 1. Sets SECONDS_TAKEN.
part() {
    local name=$1 log=$WORK/$2
    shift 2
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local status=$?
    SECONDS_TAKEN=$((SECONDS - start))
    if [[ $status -ne 0 ]]; then
        row "$name" "FAILED, exit status $status: see $log" "$SECONDS_TAKEN"
        FAILED=1
        return 1
    fi
}

# The median examples/sec of a trainer's log lines, leaving out the first three (warm-up).
median_rate() {
    python - "$1" <<'EOF'
import re, statistics, sys
rates = [float(r) for r in re.findall(r"\(([\d.]+) examples/sec;", open(sys.argv[1]).read())]
print(f"{statistics.median(rates[3:] or rates):.0f}" if rates else "no log lines")
EOF
}

if part "the data, checked (cifar10_input.py)" data.log python cifar10_input.py --data_dir="$DATA_DIR"; then
    row "the data, checked (cifar10_input.py)" "$DATA_DIR" "$SECONDS_TAKEN"
fi

if [[ "$GPUS" -eq 0 ]]; then
    row "tests that need a GPU (pytest -m gpu)" "skipped: no GPU" ""
elif part "tests that need a GPU (pytest -m gpu)" tests.log python -m pytest -q -m gpu tests; then
    row "tests that need a GPU (pytest -m gpu)" "$(tail -1 "$WORK/tests.log" | tr -d '=' | xargs)" "$SECONDS_TAKEN"
fi

if part "benchmark" benchmark.log python -m benchmarks.benchmark --data_dir="$DATA_DIR" --batch_size=$BATCH \
        "${BENCHMARK_FLAGS[@]}"; then
    # Its Markdown rows: what | examples/sec | sec/batch | vs the bare step | vs Keras | note
    while IFS='|' read -r _ what rate _ vs_step vs_keras note _; do
        result="$(trim "$rate") examples/sec"
        [[ -n "$(trim "$vs_step")" ]] && result+="; $(trim "$vs_step") of the bare step"
        [[ -n "$(trim "$vs_keras")" ]] && result+="; $(trim "$vs_keras") Keras model.fit"
        [[ -n "$(trim "$note")" ]] && result+="; $(trim "$note")"
        row "$(trim "$what")" "$result" ""
    done < <(grep -E '^\| (training: |input pipeline|evaluation, )' "$WORK/benchmark.log")
    row "(the benchmark's whole run)" "batch $BATCH; windows: ${BENCHMARK_FLAGS[*]}" "$SECONDS_TAKEN"
fi

TOWER_FLAGS=(--data_dir="$DATA_DIR" --batch_size=$BATCH --max_steps=$TOWER_STEPS --save_summaries_steps=0)
if [[ "$GPUS" -gt 0 ]]; then
    TWO_TOWERS=(python -m benchmarks.logical_gpus 2 cifar10_multi_gpu_train.py --num_gpus=2)
else
    TWO_TOWERS=(python cifar10_multi_gpu_train.py --num_gpus=2)  # on 2 logical CPUs
fi
if part "1 tower" one_tower.log python cifar10_train.py --train_dir="$WORK/one_tower" "${TOWER_FLAGS[@]}" &&
        part "2 towers on 2 logical devices" two_towers.log "${TWO_TOWERS[@]}" --train_dir="$WORK/two_towers" \
            "${TOWER_FLAGS[@]}"; then
    one=$(median_rate "$WORK/one_tower.log")
    two=$(median_rate "$WORK/two_towers.log")
    row "2 towers on 2 logical devices of one, $TOWER_STEPS steps" \
        "$two examples/sec (2 x batch $BATCH); 1 tower: $one examples/sec" "$SECONDS_TAKEN"
fi

if part "--recipe=fast, $FAST_STEPS steps" fast.log python cifar10_train.py --recipe=fast --data_dir="$DATA_DIR" \
        --train_dir="$WORK/fast" --max_steps=$FAST_STEPS; then
    trained=$SECONDS_TAKEN
    compute=$(grep -o '[a-z0-9]* compute)' "$WORK/fast.log" | head -1 | tr -d ')')
    rate=$(median_rate "$WORK/fast.log")
    if part "--recipe=fast, evaluated" fast_eval.log python cifar10_eval.py --data_dir="$DATA_DIR" \
            --checkpoint_dir="$WORK/fast" --eval_dir="$WORK/fast_eval" --run_once; then
        precision=$(grep -o 'precision @ 1 = .*' "$WORK/fast_eval.log" | head -1)
        row "--recipe=fast, $FAST_STEPS steps ($compute), test_batch.bin" \
            "$precision; training $rate examples/sec" "$trained"
    fi
fi

echo
echo "benchmarks/gpu_check.sh $MODE; logs in $WORK"
printf '| %-62s | %-64s | %6s |\n' "check" "result" "sec"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..64})" "$(printf -- '-%.0s' {1..66})" "$(printf -- '-%.0s' {1..8})"
printf '%s\n' "${TABLE[@]}"
exit $FAILED
