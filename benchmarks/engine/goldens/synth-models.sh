#!/usr/bin/env bash
# Tiny synthetic models for the architectures with no small real file (synth-model.py beside this
# script): llama3 (Llama 3 rope_freqs), qwen2 (QKV biases), qwen3 (per-head Q/K RMSNorm), F32,
# with the tokenizer of llama.cpp's vocabulary files ggml-vocab-llama-bpe.gguf / ggml-vocab-qwen2.gguf
# (7.8 and 5.9 MB, taken from the pinned llama-cpp-python sdist and checked by SHA-256, never
# committed). Cached in ${AXIOM_CACHE:-~/.cache/axiom}/models/synthetic-NAME.gguf and checked
# against the SHA-256 pinned below; prints the path of each requested model.
#
#   synth-models.sh [llama3|qwen2|qwen3 ...]      (default: all three)
#   synth-models.sh --vocab llama-bpe|qwen2       prints the path of a cached vocabulary file
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${AXIOM_CACHE:-$HOME/.cache/axiom}"

declare -A VOCAB_SHA256=(
    [llama-bpe]=97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e
    [qwen2]=44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c
)
declare -A VOCAB_OF=([llama3]=llama-bpe [qwen2]=qwen2 [qwen3]=qwen2)
declare -A MODEL_SHA256=(
    [llama3]=d0772d1f86310ab3899e0c48198936bfa41d08bb5c536fec699115468023327a
    [qwen2]=b2b4c7be2385caca7695d44fb0e363cf95abfd891f17cc8d845c22f4d466254e
    [qwen3]=7b6c24fdaae745d15419ba582240fff55bdfdefb0a023a0cfb735c5d160ff799
)

# shellcheck source=checked.sh
source "$here/checked.sh"

vocab_file() {
    local name=$1 out="$cache/vocab/ggml-vocab-$1.gguf"
    if ! sha_ok "$out" "${VOCAB_SHA256[$name]}"; then
        local src
        src="$("$repo/benchmarks/engine/build-llama.sh" --src-dir)/vendor/llama.cpp/models/ggml-vocab-$name.gguf"
        sha_ok "$src" "${VOCAB_SHA256[$name]}" || { echo "synth-models: $src missing or not the pinned file" >&2; exit 1; }
        mkdir -p "$cache/vocab"
        cp "$src" "$out.tmp" && mv "$out.tmp" "$out"
    fi
    echo "$out"
}

if [[ "${1:-}" == --vocab ]]; then
    [[ $# -eq 2 && -n "${VOCAB_SHA256[$2]:-}" ]] || { echo "usage: $0 --vocab llama-bpe|qwen2" >&2; exit 2; }
    vocab_file "$2"
    exit 0
fi

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(llama3 qwen2 qwen3)
for name in "${names[@]}"; do
    [[ -n "${MODEL_SHA256[$name]:-}" ]] || { echo "synth-models: unknown model $name (known: llama3 qwen2 qwen3)" >&2; exit 2; }
done

py=
for name in "${names[@]}"; do
    out="$cache/models/synthetic-$name.gguf"
    if ! sha_ok "$out" "${MODEL_SHA256[$name]}"; then
        [[ -n "$py" ]] || py="$("$repo/tools/gguf-py.sh")"
        vocab="$(vocab_file "${VOCAB_OF[$name]}")"
        mkdir -p "$cache/models"
        "$py" "$here/synth-model.py" "$name" "$vocab" "$out.tmp"
        install_checked "$out.tmp" "$out" "${MODEL_SHA256[$name]}" "synth-models: synthetic-$name"
    fi
    echo "$out"
done
