#!/usr/bin/env bash
# Compiles one of the reference generators beside this script (NAME.cpp or NAME.c) against the
# static llama.cpp/ggml build of benchmarks/engine/build-llama.sh and prints the binary's path.
# Cached by the source's SHA-256 in the llama.cpp build directory; quiet on success.
#
#   build-tool.sh goldens | ggml-quants
#
# ggml-quants also links ggml's portable C kernels (ggml-cpu/quants.c, the *_generic functions)
# compiled a second time without auto-vectorization or FMA contraction and renamed portable_*:
# the library's own copy is compiled with -march=native, where GCC 12 turns the portable Q5_0
# dot product into a wrong AVX512-VNNI vpdpbusd (unsigned x signed bytes) on this machine.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
name="${1:-}"
if [[ -f "$here/$name.cpp" ]]; then source_file="$here/$name.cpp" compiler=(c++ -std=c++17)
elif [[ -f "$here/$name.c" ]]; then source_file="$here/$name.c" compiler=(cc -std=c11)
else echo "usage: $0 NAME (a NAME.cpp or NAME.c in $here)" >&2; exit 2
fi
command -v "${compiler[0]}" >/dev/null || { echo "build-tool: ${compiler[0]} is required (apt-get install build-essential)" >&2; exit 1; }

build="$("$here/../build-llama.sh" --build-dir)"
src="$("$here/../build-llama.sh" --src-dir)/vendor/llama.cpp"
key="$(cat "$source_file" "$build/.sdist-sha256" | sha256sum | cut -c1-16)"
bin="$build/axiom-tools/$name-$key"
if [[ ! -x "$bin" ]]; then
    mkdir -p "$build/axiom-tools"
    extra=()
    if [[ "$name" == ggml-quants ]]; then
        obj="$build/axiom-tools/portable-quants-$key.o"
        cc -std=c11 -O2 -fno-tree-vectorize -fno-tree-slp-vectorize -ffp-contract=off \
            -I"$src/ggml/include" -I"$src/ggml/src" -I"$src/ggml/src/ggml-cpu" \
            -c "$src/ggml/src/ggml-cpu/quants.c" -o "$obj.tmp"
        generic=($(nm --defined-only -g "$obj.tmp" | awk '$3 ~ /_generic$/ {print $3}'))
        keep=() rename=()
        for sym in "${generic[@]}"; do keep+=(-G "$sym"); rename+=(--redefine-sym "$sym=portable_$sym"); done
        objcopy "${keep[@]}" "$obj.tmp" && objcopy "${rename[@]}" "$obj.tmp"
        mv "$obj.tmp" "$obj"
        extra=("$obj")
    fi
    "${compiler[@]}" -O2 -I"$src/include" -I"$src/ggml/include" -I"$src/ggml/src" -I"$src/vendor" \
        "$source_file" "${extra[@]}" "$build/src/libllama.a" "$build/ggml/src/libggml.a" \
        "$build/ggml/src/libggml-cpu.a" "$build/ggml/src/libggml-base.a" \
        -fopenmp -lpthread -lm -lstdc++ -o "$bin.tmp"
    mv "$bin.tmp" "$bin"
fi
echo "$bin"
