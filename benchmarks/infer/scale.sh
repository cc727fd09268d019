#!/usr/bin/env bash
# A model larger than the machine (issue 10's benchmark, not CI): the
# `llama3-8b`-shaped synthetic Q4_0 model (`axiom synth`, 4.05 GiB: Q4_0
# blocks, Q8_0 embedding and untied head, SmolLM2's vocabulary) in a QEMU
# guest with --mem 4G and --smp 3 (2 compute cores + the I/O core), greedy:
#   - CASES (default "default pin0"): the kernel's own plan (partial
#     residency: as many layers pinned as fit, the rest streamed every
#     token) and pin=0 (every layer streamed every token);
#   - per run: tokens equal to the host engine's (`axiom generate` on the
#     same file), time per decode token, bytes read from disk per token,
#     I/O MiB/s, stream-wait share, pinned/streamed layers.
# RUNS boots per case (default 1: under TCG one boot of the 8B shape takes
# many minutes), cases interleaved; medians and spread printed, CSV written
# to benchmarks/results/infer/scale-<UTC time>.csv, serial logs beside it.
#
#   benchmarks/infer/scale.sh
#   RUNS=3 TOKENS=3 CASES="default pin0" MEM=4G SMP=3 benchmarks/infer/scale.sh
#   SHAPE=llama-1b MEM=512M benchmarks/infer/scale.sh     # the 1B shape in 512 MiB
# Do not compile or run anything else meanwhile: the host has few cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-1}
TOKENS=${TOKENS:-3}
SHAPE=${SHAPE:-llama3-8b}
TYPE=${TYPE:-q4_0}
SEED=${SEED:-1}
MEM=${MEM:-4G}
SMP=${SMP:-3}
CASES=${CASES:-default pin0}
PROMPT=${PROMPT:-Hi}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${OUT:-benchmarks/results/infer}
LOGS=$OUT/logs-scale-$STAMP
mkdir -p "$LOGS"
CACHE=${AXIOM_CACHE:-$HOME/.cache/axiom}
model=$CACHE/synth/$SHAPE-$TYPE-seed$SEED.gguf

cargo build --quiet --release -p axiom-tools
if [ ! -f "$model" ]; then
    mkdir -p "$(dirname "$model")"
    cargo axiom synth --shape "$SHAPE" --type "$TYPE" --seed "$SEED" "$model"
fi
# The reference: the host engine on the same file (it fits this machine's RAM).
cargo axiom generate --model "$model" --prompt "$PROMPT" --tokens "$TOKENS" --temp 0 2>&1 >/dev/null | tail -n 1 >"$LOGS/host.json"

for run in $(seq "$RUNS"); do
    for case in $CASES; do
        extra=()
        [ "$case" = pin0 ] && extra=(--pin 0)
        log="$LOGS/$case-run$run.log"
        echo "scale: run $run/$RUNS: $case ($SHAPE in --mem $MEM --smp $SMP)" >&2
        cargo axiom run --smp "$SMP" --mem "$MEM" --model "$model" --prompt "$PROMPT" --tokens "$TOKENS" --temp 0 \
            --telemetry token "${extra[@]}" >"$log" 2>&1 || echo "scale: $log: run failed (kept in the log)" >&2
    done
done

python3 benchmarks/infer/scale_summary.py "$LOGS" "$OUT/scale-$STAMP.csv" \
    --meta "host_cores=$(nproc)" "qemu=$(qemu-system-x86_64 --version | head -n 1)" "commit=$(git rev-parse --short HEAD)" \
    "shape=$SHAPE" "type=$TYPE" "seed=$SEED" "mem=$MEM" "smp=$SMP" "runs=$RUNS" "tokens=$TOKENS" "prompt=$PROMPT"
