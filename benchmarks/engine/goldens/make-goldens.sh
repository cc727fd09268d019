#!/usr/bin/env bash
# llama.cpp's reference outputs for one GGUF model and a list of prompts: the golden generator
# of the engine's tests (kernel/engine/testdata/*/). Builds goldens.cpp (beside this script)
# against the llama.cpp of benchmarks/engine/build-llama.sh, then writes into OUT_DIR:
#
#   tokenize.inp         llama.cpp's tokenizer test strings (models/ggml-vocab-gpt-2.gguf.inp of
#                        the sdist; cases separated by "\n__ggml_vocab_test__\n")
#   tokenize.out         their tokenization with MODEL's vocabulary, llama.cpp's `.out` format:
#                        one line per case, " id id ...", add_special=false, parse_special=false
#   goldens-TAG.json     for each prompt of CASES: prompt_ids, greedy_ids/greedy_text (N_PREDICT
#                        tokens, default 32, stopping before an end-of-generation token),
#                        teacher-forced top-5 ids and logits at every position of prompt +
#                        continuation, confident_tokens/confident_text (see the README of a
#                        fixture folder for the precise format)
#
#   make-goldens.sh MODEL.gguf CASES.json OUT_DIR TAG [N_PREDICT]
#   make-goldens.sh --tokenize-only MODEL.gguf OUT_DIR
#
# CASES.json: [{"name": "...", "prompt": "..."}] (special tokens in prompts are parsed).
# Quiet on success; the build of goldens.cpp is cached beside the llama.cpp build.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
usage() {
    echo "usage: $0 MODEL.gguf CASES.json OUT_DIR TAG [N_PREDICT] | --tokenize-only MODEL.gguf OUT_DIR" >&2
    exit 2
}

tokenize_only=
if [[ "${1:-}" == --tokenize-only ]]; then
    [[ $# -eq 3 ]] || usage
    tokenize_only=1 model=$2 out_dir=$3
else
    [[ $# -eq 4 || $# -eq 5 ]] || usage
    model=$1 cases=$2 out_dir=$3 tag=$4 n_predict=${5:-32}
    [[ -f "$cases" ]] || { echo "make-goldens: no cases file $cases" >&2; exit 1; }
fi
[[ -f "$model" ]] || { echo "make-goldens: no model file $model" >&2; exit 1; }

build="$("$repo/benchmarks/engine/build-llama.sh" --build-dir)"
src="$("$repo/benchmarks/engine/build-llama.sh" --src-dir)/vendor/llama.cpp"
bin="$("$here/build-tool.sh" goldens)"

mkdir -p "$out_dir"
cp "$src/models/ggml-vocab-gpt-2.gguf.inp" "$out_dir/tokenize.inp"
"$bin" tokenize "$model" "$out_dir/tokenize.inp" >"$out_dir/tokenize.out.tmp"
mv "$out_dir/tokenize.out.tmp" "$out_dir/tokenize.out"
[[ -n "$tokenize_only" ]] && exit 0

commit="$(sed -n 's/.*LLAMA_COMMIT = "\(.*\)";/\1/p' "$build/common/build-info.cpp")"
header="$(printf '{"reference": "llama.cpp %s (vendored in llama-cpp-python %s), CPU, greedy, made by benchmarks/engine/goldens/make-goldens.sh", "model": {"file": "%s", "bytes": %d, "sha256": "%s"}}' \
    "$commit" "$(basename "$build" | sed 's/^build-//')" "$(basename "$model")" \
    "$(stat -c %s "$model")" "$(sha256sum "$model" | cut -d' ' -f1)")"
"$bin" run "$model" "$cases" "$n_predict" "$header" >"$out_dir/goldens-$tag.json.tmp"
mv "$out_dir/goldens-$tag.json.tmp" "$out_dir/goldens-$tag.json"
