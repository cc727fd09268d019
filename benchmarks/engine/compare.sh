#!/usr/bin/env bash
# AXIOM vs llama.cpp: decode (128 tokens) and prefill (64-token prompt) tokens/s
# at 1 and 2 threads, median and spread of interleaved runs, for the Q4_1, Q4_0
# and Q8_0 versions of the default model and, when tools/setup.sh has made
# them, Gemma 3 270M Q4_K_M and the default model requantized by llama.cpp's
# llama-quantize into Q4_K_M, Q6_K and Q5_0; plus each engine's fraction of the
# memory-bandwidth bound. Results: benchmarks/results/engine/compare-*.{json,md}.
#
# Depth cells (the default Q4_1 model, F16 KV on both sides): decode after a context of
# 512 / 2048 tokens (llama-bench -d) and prefill of 512 / 2048-token prompts,
# with AXIOM's KV bytes per token; --depths "" skips them.
#
# Usage: benchmarks/engine/compare.sh [--reps N] [--threads 1,2] [--repack] [--depths 512,2048]
#   --repack   re-create the Q4_0 / Q8_0 files with `axiom pack` even if cached
# First run: fetches the model, builds llama.cpp's llama-bench (~7-15 minutes,
# cached in ~/.cache/axiom/llama.cpp) and AXIOM in release mode.
# Measure on a quiet machine: other jobs on the same cores distort both engines.
set -euo pipefail
cd "$(dirname "$0")/../.."

reps=5
threads=1,2
repack=0
depths=512,2048
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repack) repack=1; shift ;;
        --depths) depths="$2"; shift 2 ;;
        *) echo "usage: $0 [--reps N] [--threads 1,2] [--repack] [--depths 512,2048]" >&2; exit 2 ;;
    esac
done

model_q4_1="$(tools/fetch-model.sh)"
models_dir="$(dirname "$model_q4_1")"

echo "compare: building AXIOM (release)" >&2
cargo build --quiet --release -p axiom-tools -p axiom-kernel-bench
bin="${CARGO_TARGET_DIR:-target}/release"

# The Q4_0 and Q8_0 files are made by `axiom pack` (what `cargo axiom pack`
# runs) with llama.cpp's reference quantizers, from the Q4_1 model; the token
# embedding / output head is Q8_0 in both.
for ty in q4_0 q8_0; do
    out="$models_dir/SmolLM2-135M-Instruct.${ty^^}.axiom.gguf"
    if [[ $repack == 1 || ! -s "$out" ]]; then
        echo "compare: axiom pack --type $ty -> $out" >&2
        "$bin/axiom" pack "$model_q4_1" "$out" --type "$ty" >&2
    fi
done

llama_bench="$(benchmarks/engine/build-llama.sh)"

# The new-type models, where cached (tools/setup.sh fetches and makes them).
extra=()
for m in "Gemma3-Q4_K_M=gemma-3-270m-q4_k_m.gguf" "Q4_K_M=SmolLM2-135M-Instruct.Q4_K_M.gguf" \
         "Q6_K=SmolLM2-135M-Instruct.Q6_K.gguf" "Q5_0=SmolLM2-135M-Instruct.Q5_0.gguf"; do
    if [[ -s "$models_dir/${m#*=}" ]]; then
        extra+=(--model "${m%%=*}=$models_dir/${m#*=}")
    else
        echo "compare: $models_dir/${m#*=} is not cached (tools/setup.sh makes it): no ${m%%=*} cells" >&2
    fi
done

python3 benchmarks/engine/compare.py \
    --axiom "$bin/axiom" --kernel-bench "$bin/kernel-bench" --llama-bench "$llama_bench" \
    --model "Q4_1=$model_q4_1" \
    --model "Q4_0=$models_dir/SmolLM2-135M-Instruct.Q4_0.axiom.gguf" \
    --model "Q8_0=$models_dir/SmolLM2-135M-Instruct.Q8_0.axiom.gguf" \
    "${extra[@]}" \
    --threads "$threads" --reps "$reps" --depths "$depths" --kv-type f16 --out benchmarks/results/engine
