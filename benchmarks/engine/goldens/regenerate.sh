#!/usr/bin/env bash
# Regenerates the llama.cpp reference data under kernel/engine/testdata/ (each folder's README says
# which part of this script wrote it). Idempotent: the same llama.cpp build and inputs give the same
# files; quiet on success.
#
#   benchmarks/engine/goldens/regenerate.sh [PART...]
#
# PART: gemma3        kernel/engine/testdata/gemma3-270m/     (Gemma 3 270M Q4_K_M goldens)
#       requant       kernel/engine/testdata/smollm2-requant/ (SmolLM2 requantized by llama-quantize)
#       synthetic     kernel/engine/testdata/synthetic/       (llama3 / qwen2 / qwen3 synthetic models)
#       quants        kernel/engine/testdata/ggml-quants/     (ggml blocks, dequantization, vec_dot)
#       perplexity    kernel/engine/testdata/perplexity/      (llama-perplexity, several minutes)
#       verify-smollm2 [DIR]  regenerates the default model's goldens into a temporary folder and
#                     compares them with DIR (default kernel/engine/testdata/smollm2): the proof
#                     that make-goldens.sh is the script that made them
# Default: all parts but verify-smollm2.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
testdata="$repo/kernel/engine/testdata"
REQUANT_TYPES=(Q4_K_M Q5_K_M Q6_K Q3_K_M Q2_K Q2_K_PURE Q5_0 Q5_1 IQ4_NL)

# Command substitutions are assigned first: set -e does not see them fail inside an argument list.
part_gemma3() {
    local model
    model="$("$repo/tools/fetch-model.sh" --model gemma3-270m)"
    "$here/make-goldens.sh" "$model" "$here/cases-gemma3.json" "$testdata/gemma3-270m" q4_k_m
}

part_requant() {
    local t paths models
    paths="$("$here/requantize.sh" "${REQUANT_TYPES[@]}")"
    mapfile -t models <<<"$paths"
    for i in "${!REQUANT_TYPES[@]}"; do
        t="${REQUANT_TYPES[$i]}"
        "$here/make-goldens.sh" "${models[$i]}" "$here/cases-smollm2.json" "$testdata/smollm2-requant" "${t,,}"
    done
}

part_synthetic() {
    local name cases model
    for name in llama3 qwen2 qwen3; do
        cases="$here/cases-qwen.json"
        [[ "$name" == llama3 ]] && cases="$here/cases-llama3.json"
        model="$("$here/synth-models.sh" "$name")"
        "$here/make-goldens.sh" "$model" "$cases" "$testdata/synthetic/$name" f32
    done
}

part_quants() {
    local paths m bin py
    paths="$("$here/requantize.sh" Q4_K_M Q5_K_M Q6_K Q2_K Q2_K_PURE Q5_0 Q5_1 IQ4_NL)"
    mapfile -t m <<<"$paths"
    bin="$("$here/build-tool.sh" ggml-quants)"
    py="$("$repo/tools/gguf-py.sh")"
    mkdir -p "$testdata/ggml-quants"
    "$bin" "$testdata/ggml-quants" "q4_K=${m[0]}" "q5_K=${m[1]}" "q6_K=${m[2]}" "q3_K=${m[3]}" \
        "q2_K=${m[4]}" "q5_0=${m[5]}" "q5_1=${m[6]}" "iq4_nl=${m[7]}"
    "$py" "$here/check-quants.py" "$testdata/ggml-quants"
}

part_perplexity() {
    python3 "$here/perplexity.py" "$testdata/perplexity/gpl-3.0.txt" "$testdata/perplexity/llama-perplexity.json"
}

verify_smollm2() {
    local dir="${1:-$testdata/smollm2}" tmp model
    model="$("$repo/tools/fetch-model.sh")"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    "$here/make-goldens.sh" "$model" "$here/cases-smollm2.json" "$tmp" q4_1
    cmp "$tmp/tokenize.inp" "$dir/tokenize.inp"
    cmp "$tmp/tokenize.out" "$dir/tokenize.out"
    python3 "$here/compare-goldens.py" "$dir/goldens-q4_1.json" "$tmp/goldens-q4_1.json" --tolerance 0
}

[[ $# -gt 0 ]] || set -- gemma3 requant synthetic quants perplexity
while [[ $# -gt 0 ]]; do
    case "$1" in
        gemma3 | requant | synthetic | quants | perplexity) "part_$1"; shift ;;
        verify-smollm2)
            if [[ $# -ge 2 && -d "$2" ]]; then verify_smollm2 "$2"; shift 2; else verify_smollm2; shift; fi ;;
        *) echo "regenerate: unknown part $1 (gemma3 requant synthetic quants perplexity verify-smollm2 [DIR])" >&2; exit 2 ;;
    esac
done
