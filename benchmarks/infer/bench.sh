#!/usr/bin/env bash
# Inference speed of the AXIOM kernel under QEMU TCG, and of the same engine
# on the host (issue 5's benchmark):
#   - decode tokens/s, resident (layers repacked at boot), resident on the
#     file layout (repack=off, as streaming computes) and streaming, at --smp 2 (1 compute core +
#     the I/O core) and --smp 3 (2 compute + I/O),
#   - the streaming / resident ratio, the stream-wait fraction of layer time,
#   - time per decode token split per compute core into attention / FFN /
#     barrier / stream wait (from @core_token),
#   - the host engine (`cargo axiom generate`) with as many threads as the
#     kernel has compute cores.
# Each case runs RUNS times (default 5), the cases interleaved so that drift
# of the host hits them alike; we print medians and spread and write
# benchmarks/results/infer/bench-<UTC time>.csv (serial logs beside it).
#
#   benchmarks/infer/bench.sh
#   RUNS=3 TOKENS=16 SMPS="2 3" benchmarks/infer/bench.sh
#   SLOTS=4 benchmarks/infer/bench.sh          # streaming through 4 slots (default 2)
#   BUDGET=40M benchmarks/infer/bench.sh       # streaming chosen by a budget instead
# Do not compile or run anything else meanwhile: the host has few cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
TOKENS=${TOKENS:-32}
SMPS=${SMPS:-2 3}
SLOTS=${SLOTS:-2}
BUDGET=${BUDGET:-}
PROMPT=${PROMPT:-The capital of France is}
# The host engine decodes ~100x faster: more tokens (past end-of-text) for a stable rate.
HOST_TOKENS=${HOST_TOKENS:-128}
MEM=${MEM:-1G}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${OUT:-benchmarks/results/infer}
LOGS=$OUT/logs-$STAMP
mkdir -p "$LOGS"

model=$(./tools/fetch-model.sh | tail -n 1)
# The speeds come from the kernel's own telemetry (TSC), so the first run's
# build and packing do not count; build anyway so that no compile overlaps a run.
cargo build --quiet --release -p axiom-tools

if [ -n "$BUDGET" ]; then streaming=(--budget "$BUDGET"); else streaming=(--slots "$SLOTS"); fi

for run in $(seq "$RUNS"); do
    for smp in $SMPS; do
        for mode in resident resident-ggml streaming; do
            extra=()
            [ "$mode" = streaming ] && extra=("${streaming[@]}")
            # Resident on the file layout, as streaming computes (same-layout ratio).
            [ "$mode" = resident-ggml ] && extra=(--cmdline "repack=off")
            log="$LOGS/$mode-smp$smp-run$run.log"
            echo "bench: run $run/$RUNS: $mode, --smp $smp" >&2
            cargo axiom run --smp "$smp" --mem "$MEM" --model "$model" --prompt "$PROMPT" --tokens "$TOKENS" --temp 0 \
                --telemetry token "${extra[@]}" >"$log" 2>&1 || echo "bench: $log: run failed (kept in the log)" >&2
        done
        threads=$((smp - 1))
        cargo axiom generate --model "$model" --prompt "$PROMPT" --tokens "$HOST_TOKENS" --ignore-eos --temp 0 --threads "$threads" \
            2>&1 >/dev/null | tail -n 1 >"$LOGS/host-t$threads-run$run.json"
    done
done

python3 benchmarks/infer/summarize.py "$LOGS" "$OUT/bench-$STAMP.csv" \
    --meta "host_cores=$(nproc)" "qemu=$(qemu-system-x86_64 --version | head -n 1)" \
    "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- kernel drivers || echo ' (kernel/drivers modified)')" \
    "kernel=${AXIOM_KERNEL:-built from this checkout}" "runs=$RUNS" "tokens=$TOKENS" "host_tokens=$HOST_TOKENS" "prompt=$PROMPT" \
    "streaming=${streaming[*]}" "mem=$MEM"
