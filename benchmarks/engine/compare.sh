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
# Scale cells (--shapes 1b,8b; none by default): synthetic models of real
# sizes (`axiom synth`, SmolLM2's vocabulary, random weights, seed 1), where the
# matmuls' weight streaming dominates rather than the per-token overheads the
# 135M model measures: 1B-shaped (Llama 3.2 1B: 16 layers, width 2048, tied
# Q8_0 embedding) Q4_0 and Q8_0 (0.61 / 1.06 GiB), a 1B-shaped Q4_K_M made by
# llama.cpp's `llama-quantize --allow-requantize` from that Q8_0, and an
# 8B-shaped (Llama 3 8B) Q4_0 (4.06 GiB). They are made once into the models
# cache directory (deterministic: same seed, same bytes; never committed).
# How long they take: docs/performance.md ("Scale cells and the read-bandwidth ceiling").
#
# Read bandwidth: `kernel-bench bw` first searches each thread count's best
# reading configuration (streams per thread, software prefetch, AVX2 / AVX-512
# loads), then measures that configuration once per repetition, interleaved
# with the decode runs; the bound uses the median of those. `sysbench memory`
# (installed with apt-get when missing and possible) is run once beside it as
# a known tool's figure.
#
# Usage: benchmarks/engine/compare.sh [--reps N] [--threads 1,2] [--repack] [--depths 512,2048] [--shapes 1b,8b]
#   --repack   re-create the Q4_0 / Q8_0 and synthesized files even if cached
#   --shapes   scale cells to add: 1b (1B Q4_0, Q8_0, Q4_K_M), 8b (8B Q4_0)
# First run: fetches the model, builds llama.cpp's llama-bench (~7-15 minutes,
# cached in ~/.cache/axiom/llama.cpp) and AXIOM in release mode.
# Measure on a quiet machine: other jobs on the same cores distort both engines.
set -euo pipefail
cd "$(dirname "$0")/../.."

reps=5
threads=1,2
repack=0
depths=512,2048
shapes=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repack) repack=1; shift ;;
        --depths) depths="$2"; shift 2 ;;
        --shapes) shapes="$2"; shift 2 ;;
        *) echo "usage: $0 [--reps N] [--threads 1,2] [--repack] [--depths 512,2048] [--shapes 1b,8b]" >&2; exit 2 ;;
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

# The scale cells: synthesized (and, for Q4_K_M, requantized by llama.cpp) once.
synth() { # SHAPE TYPE -> path of the cached synthetic model
    local out="$models_dir/synth-$1-$2-seed1.gguf"
    if [[ $repack == 1 || ! -s "$out" ]]; then
        echo "compare: axiom synth --shape $1 --type $2 -> $out" >&2
        local t0=$SECONDS
        "$bin/axiom" synth --shape "$1" --type "$2" --seed 1 "$out.tmp" >&2 || exit 1
        mv "$out.tmp" "$out" || exit 1
        echo "compare: synthesized $out in $((SECONDS - t0)) s" >&2
    fi
    echo "$out"
}
IFS=, read -r -a shape_list <<<"$shapes"
for shape in "${shape_list[@]}"; do
    case "$shape" in
        1b)
            q4="$(synth llama-1b q4_0)"
            q8="$(synth llama-1b q8_0)"
            extra+=(--model "1B-Q4_0=$q4")
            extra+=(--model "1B-Q8_0=$q8")
            q4km="$models_dir/synth-llama-1b-q4_k_m-seed1.gguf"
            if [[ $repack == 1 || ! -s "$q4km" ]]; then
                echo "compare: llama-quantize --allow-requantize $q8 -> $q4km (Q4_K_M)" >&2
                t0=$SECONDS
                log="$(mktemp)"
                if ! "$(benchmarks/engine/build-llama.sh llama-quantize)" --allow-requantize "$q8" "$q4km.tmp" Q4_K_M "$(nproc)" >"$log" 2>&1; then
                    tail -n 20 "$log" >&2
                    rm -f "$log" "$q4km.tmp"
                    echo "compare: llama-quantize failed" >&2
                    exit 1
                fi
                rm -f "$log"
                mv "$q4km.tmp" "$q4km"
                echo "compare: requantized $q4km in $((SECONDS - t0)) s" >&2
            fi
            extra+=(--model "1B-Q4_K_M=$q4km")
            ;;
        8b)
            q4_8b="$(synth llama3-8b q4_0)"
            extra+=(--model "8B-Q4_0=$q4_8b")
            ;;
        "") ;;
        *) echo "compare: unknown shape $shape (use 1b, 8b)" >&2; exit 2 ;;
    esac
done

# A known tool's read bandwidth beside kernel-bench's (optional: without it the
# results only lack that figure).
if ! command -v sysbench >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "compare: installing sysbench (apt-get)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q sysbench >/dev/null 2>&1 ||
            echo "compare: apt-get install sysbench failed: no sysbench figure" >&2
    else
        echo "compare: sysbench is not installed (apt-get install sysbench): no sysbench figure" >&2
    fi
fi

python3 benchmarks/engine/compare.py \
    --axiom "$bin/axiom" --kernel-bench "$bin/kernel-bench" --llama-bench "$llama_bench" \
    --model "Q4_1=$model_q4_1" \
    --model "Q4_0=$models_dir/SmolLM2-135M-Instruct.Q4_0.axiom.gguf" \
    --model "Q8_0=$models_dir/SmolLM2-135M-Instruct.Q8_0.axiom.gguf" \
    "${extra[@]}" \
    --threads "$threads" --reps "$reps" --depths "$depths" --kv-type f16 --out benchmarks/results/engine
