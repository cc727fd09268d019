#!/usr/bin/env bash
# A/B of the host command: the working tree (B) against a git revision (A),
# interleaved runs of `axiom generate` on the default model, decode and
# prefill tokens/s at 1 and 2 threads, median and spread; first checks that
# both compute byte-identical `score` logits and greedy text (ab.py).
#
# Usage: benchmarks/engine/ab.sh REV [--reps N] [--threads 1,2]
# The table also goes to benchmarks/results/engine/ab-REV-<time>.md.
# A is built from a copy of REV (`git archive`, the working tree untouched)
# with its own target directory, in ${AB_BASE_DIR:-/tmp/axiom-ab-REV}, kept
# for the next run.
# Measure on a quiet machine: other jobs on the same cores distort both.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -ge 1 ]] || { echo "usage: $0 REV [--reps N] [--threads 1,2]" >&2; exit 2; }
rev="$(git rev-parse --short "$1")"; shift
model="$(tools/fetch-model.sh)"
base="${AB_BASE_DIR:-/tmp/axiom-ab-$rev}"
if [[ ! -d "$base/src" ]]; then
    mkdir -p "$base/src"
    git archive "$rev" | tar -x -C "$base/src"
fi
echo "ab: building A ($rev) in $base" >&2
(cd "$base/src" && CARGO_TARGET_DIR="$base/target" cargo build --quiet --release -p axiom-tools)
echo "ab: building B (working tree)" >&2
cargo build --quiet --release -p axiom-tools
out="benchmarks/results/engine/ab-$rev-$(date -u +%Y%m%d-%H%M%S).md"
python3 benchmarks/engine/ab.py --a "$base/target/release/axiom" --b "${CARGO_TARGET_DIR:-target}/release/axiom" --model "$model" --out "$out" "$@"
echo "ab: table in $out" >&2
