#!/usr/bin/env bash
# The default model (SmolLM2-135M-Instruct Q4_1, tools/fetch-model.sh) requantized by llama.cpp's
# own `llama-quantize --allow-requantize` (benchmarks/engine/build-llama.sh) into other types:
# real llama.cpp encodings of every block type on an architecture the engine already runs.
# Outputs are cached as ${AXIOM_CACHE:-~/.cache/axiom}/models/SmolLM2-135M-Instruct.TYPE.gguf and
# checked against the SHA-256 pinned below (llama-quantize is deterministic: the same bytes for 1
# and 2 threads and on every run). Prints the path of each requested file, in order.
#
#   requantize.sh [TYPE...]   TYPE: Q4_K_M Q5_K_M Q6_K Q3_K_M Q2_K Q2_K_PURE Q5_0 Q5_1 IQ4_NL
#                             (default: all). Q2_K_PURE is `--pure Q2_K`: the Q2_K mix holds no
#                             Q2_K tensor at all (its ffn_down is Q3_K).
#
# SmolLM2's rows are 576 wide, not a multiple of the K-quants' 256, so llama-quantize falls back
# for every tensor but ffn_down (rows of 1536): Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, Q2_K/Q3_K->Q4_0.
# See kernel/engine/testdata/smollm2-requant/README.md for the tensor types of each file.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"

declare -A SHA256=(
    [Q4_K_M]=dc0f3a02e821146247a0af6895adf9872124f368682cb110cb9ed09ff2a9f9f1
    [Q5_K_M]=8170c7ef444692b3b2fe63459c326def0358807ef9be6e3cb020efb86a71015e
    [Q6_K]=a969ae2086dd4945a7c61594bf72b2bcc3b7df8571c92aed8f213918673a7f80
    [Q3_K_M]=01045a8fee6c962e4f7b0f80dccf937503738f61f987c305378fd3f527eac9d4
    [Q2_K]=1733ab14bc423774519aa464e0d74e190617e877c9d0aa07a698b500d1788895
    [Q5_0]=2f90a7511cf340144dda963a9fd73f708601517f0f8038d31c9069654526be44
    [Q5_1]=d0fe3cbb20771ac9dab0f4dd5aaa259785158177f6503d4dca32f4495dcffaea
    [IQ4_NL]=b4d1842a26d8952bd7b609eb2062f7352aeb609c1ac5017542be18f83bc1776e
    [Q2_K_PURE]=dc183fb648339d62e10b7f7a2cbafa8a502ff5e6c8c284b821c1d890426777a2
)
# llama-quantize's type argument (and options) for each name; the name itself by default.
declare -A ARGS=([Q2_K_PURE]="--pure Q2_K")
ALL=(Q4_K_M Q5_K_M Q6_K Q3_K_M Q2_K Q2_K_PURE Q5_0 Q5_1 IQ4_NL)

types=("$@")
[[ ${#types[@]} -gt 0 ]] || types=("${ALL[@]}")
for t in "${types[@]}"; do
    [[ -n "${SHA256[$t]:-}" ]] || { echo "requantize: unknown type $t (known: ${ALL[*]})" >&2; exit 2; }
done

# shellcheck source=checked.sh
source "$here/checked.sh"
source_model="$("$repo/tools/fetch-model.sh")"
models="$(dirname "$source_model")"

quantize=
for t in "${types[@]}"; do
    out="$models/SmolLM2-135M-Instruct.$t.gguf"
    if ! sha_ok "$out" "${SHA256[$t]}"; then
        [[ -n "$quantize" ]] || quantize="$("$repo/benchmarks/engine/build-llama.sh" llama-quantize)"
        log="$(mktemp)"
        read -r -a args <<<"${ARGS[$t]:-$t}"
        type_arg="${args[-1]}"
        unset 'args[-1]'
        if ! "$quantize" --allow-requantize "${args[@]}" "$source_model" "$out.tmp" "$type_arg" "$(nproc)" >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log" "$out.tmp"
            echo "requantize: llama-quantize failed for $t" >&2
            exit 1
        fi
        rm -f "$log"
        install_checked "$out.tmp" "$out" "${SHA256[$t]}" "requantize: $t"
    fi
    echo "$out"
done
