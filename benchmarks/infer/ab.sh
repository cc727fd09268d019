#!/usr/bin/env bash
# A/B of the inference kernel under QEMU TCG: the working tree (B) against a
# git revision (A), each side booted by its own `axiom run` (its own kernel and
# runner, so a telemetry change between them cannot break the other side's
# reader), runs interleaved A, B, A, B ... so that drift of a busy host hits
# both alike. Cases: resident and streaming (2 slots) at --smp SMP, greedy,
# TOKENS tokens of PROMPT. Prints and writes the medians, spread and B/A
# ratios (ab.py) to benchmarks/results/infer/ab-REV-<time>.md; serial logs
# beside it.
#
#   benchmarks/infer/ab.sh REV
#   RUNS=3 SMP=3 TOKENS=16 benchmarks/infer/ab.sh 9dfad92
#
# A is built from a copy of REV (`git archive`, the working tree untouched)
# in ${AB_BASE_DIR:-/tmp/axiom-infer-ab-REV}, kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -eq 1 ]] || { echo "usage: $0 REV" >&2; exit 2; }
rev="$(git rev-parse --short "$1")"
RUNS=${RUNS:-3}
SMP=${SMP:-3}
TOKENS=${TOKENS:-16}
PROMPT=${PROMPT:-The capital of France is}
MEM=${MEM:-1G}
stamp=$(date -u +%Y%m%d-%H%M%S)
out="benchmarks/results/infer/ab-$rev-$stamp"
mkdir -p "$out/A" "$out/B"

model="$(tools/fetch-model.sh | tail -n 1)"
base="${AB_BASE_DIR:-/tmp/axiom-infer-ab-$rev}"
if [[ ! -d "$base/src" ]]; then
    mkdir -p "$base/src"
    git archive "$rev" | tar -x -C "$base/src"
fi
echo "ab: building A ($rev) in $base" >&2
(cd "$base/src" && CARGO_TARGET_DIR="$base/target" cargo build --quiet --release -p axiom-tools)
echo "ab: building B (working tree)" >&2
cargo build --quiet --release -p axiom-tools
declare -A axiom=([A]="$base/target/release/axiom" [B]="${CARGO_TARGET_DIR:-target}/release/axiom")
declare -A target=([A]="$base/target" [B]="${CARGO_TARGET_DIR:-target}")

for run in $(seq "$RUNS"); do
    for side in A B; do
        for mode in resident streaming; do
            extra=()
            [[ "$mode" == streaming ]] && extra=(--slots 2)
            log="$out/$side/$mode-smp$SMP-run$run.log"
            echo "ab: run $run/$RUNS: $side, $mode" >&2
            CARGO_TARGET_DIR="${target[$side]}" "${axiom[$side]}" run --smp "$SMP" --mem "$MEM" --model "$model" \
                --prompt "$PROMPT" --tokens "$TOKENS" --temp 0 --telemetry token "${extra[@]}" >"$log" 2>&1 \
                || echo "ab: $log: run failed (kept in the log)" >&2
        done
    done
done

python3 benchmarks/infer/ab.py "$out/A" "$out/B" --out "$out.md" \
    --meta "A=$rev" "B=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- kernel drivers proto || echo ' + working tree')" \
    "host_cores=$(nproc)" "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" "qemu=$(qemu-system-x86_64 --version | head -n 1)" \
    "runs=$RUNS" "smp=$SMP" "tokens=$TOKENS" "prompt=$PROMPT" "mem=$MEM"
echo "ab: table in $out.md" >&2
