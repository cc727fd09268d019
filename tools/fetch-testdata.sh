#!/usr/bin/env bash
# Test data the repository does not carry because its licence does not let us ship it as we could:
# llama.cpp's test vocabularies `ggml-vocab-llama-spm.gguf` (Meta's Llama 2 tokenizer, Llama 2
# Community License) and `ggml-vocab-gpt-2.gguf` (OpenAI's GPT-2 tokenizer, a modified MIT licence
# that wants its notice with every copy), with their test strings and expected ids (.inp/.out),
# as kernel/engine/testdata/README.md explains. They are taken
# from the llama.cpp sources vendored in the pinned llama-cpp-python sdist, which
# benchmarks/engine/build-llama.sh downloads and checks by SHA-256, and each file is checked
# against the SHA-256 pinned below. Cache: ${AXIOM_CACHE:-$HOME/.cache/axiom}/testdata/, where
# axiom_testkit::fetched_testdata finds them. Idempotent: one line when something is fetched,
# nothing otherwise. Prints the cache folder on stdout.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${AXIOM_CACHE:-$HOME/.cache/axiom}/testdata"

# Path under $out (and under the sdist's vendor/llama.cpp/models/) -> SHA-256.
declare -A SHA256=(
    [vocab/ggml-vocab-llama-spm.gguf]=16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69
    [vocab/ggml-vocab-llama-spm.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
    [vocab/ggml-vocab-llama-spm.gguf.out]=ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29
    [vocab/ggml-vocab-gpt-2.gguf]=cedc56ca6e2e89f63e781696d1fd76b4b1d49e6720dee86463e915f6e90016ac
    [vocab/ggml-vocab-gpt-2.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
    [vocab/ggml-vocab-gpt-2.gguf.out]=48e8c4cb3ad5c37915b225f872222567c1c4dd4d66951aa53460c8d152ff6d60
)

# shellcheck source=../benchmarks/engine/goldens/checked.sh
source "$repo/benchmarks/engine/goldens/checked.sh"

missing=()
for rel in "${!SHA256[@]}"; do
    sha_ok "$out/$rel" "${SHA256[$rel]}" || missing+=("$rel")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "fetch-testdata: ${missing[*]} from the pinned llama-cpp-python sdist (first time: downloads it, ~75 MB)" >&2
    src="$("$repo/benchmarks/engine/build-llama.sh" --src-dir)/vendor/llama.cpp/models"
    for rel in "${missing[@]}"; do
        mkdir -p "$(dirname "$out/$rel")"
        cp "$src/$(basename "$rel")" "$out/$rel.tmp"
        install_checked "$out/$rel.tmp" "$out/$rel" "${SHA256[$rel]}" "$rel from the llama-cpp-python sdist"
    done
fi
echo "$out"
