#!/usr/bin/env bash
# Builds llama.cpp (native CPU build) from the llama.cpp sources vendored in the
# PyPI sdist of llama-cpp-python, with cmake and ninja from PyPI: the tools
# llama-bench, llama-quantize, llama-perplexity and the static libraries
# (libllama, libggml*) that the golden generators in benchmarks/engine/goldens/
# link against. The sdist is checked against a pinned SHA-256. The build is
# cached outside the repo; a second run only prints the requested path.
#
# Usage: benchmarks/engine/build-llama.sh            -> path of llama-bench
#        benchmarks/engine/build-llama.sh TOOL       -> path of TOOL (llama-bench,
#                                                       llama-quantize, llama-perplexity)
#        benchmarks/engine/build-llama.sh --build-dir -> the cmake build directory
#        benchmarks/engine/build-llama.sh --src-dir   -> the unpacked sdist (vendor/llama.cpp inside),
#                                                       downloaded if needed but not built
# Env:   AXIOM_LLAMA_CACHE (default ~/.cache/axiom/llama.cpp)
set -euo pipefail

VERSION="0.3.36"
SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CACHE="${AXIOM_LLAMA_CACHE:-$HOME/.cache/axiom/llama.cpp}"
SRC="$CACHE/src-$VERSION"
# "-noamx": built without Intel AMX (below); a cache of an earlier AMX build is not reused.
BUILD="$CACHE/build-$VERSION-noamx"
TOOLS=(llama-bench llama-quantize llama-perplexity)
LIBS=(src/libllama.a ggml/src/libggml.a ggml/src/libggml-base.a ggml/src/libggml-cpu.a)

want="${1:-llama-bench}"
case "$want" in
    --build-dir) answer="$BUILD" ;;
    --src-dir) answer="$SRC" ;;
    llama-bench | llama-quantize | llama-perplexity) answer="$BUILD/bin/$want" ;;
    *) echo "usage: $0 [llama-bench|llama-quantize|llama-perplexity|--build-dir|--src-dir]" >&2; exit 2 ;;
esac

built() {
    local f
    [[ -f "$BUILD/.sdist-sha256" && "$(cat "$BUILD/.sdist-sha256")" == "$SDIST_SHA256" ]] || return 1
    for f in "${TOOLS[@]}"; do [[ -x "$BUILD/bin/$f" ]] || return 1; done
    for f in "${LIBS[@]}"; do [[ -f "$BUILD/$f" ]] || return 1; done
}

src_ok() { [[ -f "$SRC/.sdist-sha256" && "$(cat "$SRC/.sdist-sha256")" == "$SDIST_SHA256" ]]; }
log() { echo "build-llama: $*" >&2; }

if [[ "$want" == --src-dir ]]; then
    src_ok && { echo "$answer"; exit 0; }
elif built; then
    echo "$answer"
    exit 0
fi

mkdir -p "$CACHE"
# Build tools from PyPI, in a private venv (no system packages touched).
if [[ ! -x "$CACHE/venv/bin/cmake" ]] || ! "$CACHE/venv/bin/python" -c "import scikit_build_core" 2>/dev/null; then
    log "creating venv with cmake + ninja from PyPI"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet --upgrade pip >&2
    # scikit-build-core lets pip read the sdist's metadata without an isolated
    # build environment (which would compile cmake from source).
    "$CACHE/venv/bin/pip" install --quiet --only-binary :all: cmake ninja scikit-build-core >&2
fi
export PATH="$CACHE/venv/bin:$PATH"

if ! src_ok; then
    sdist="$CACHE/dl/llama_cpp_python-$VERSION.tar.gz"
    if ! echo "$SDIST_SHA256  $sdist" | sha256sum --check --status 2>/dev/null; then
        log "downloading llama-cpp-python==$VERSION sdist"
        rm -rf "$CACHE/dl" && mkdir -p "$CACHE/dl"
        pip download --quiet --no-deps --no-build-isolation --no-binary llama-cpp-python \
            -d "$CACHE/dl" "llama-cpp-python==$VERSION" >&2
        got="$(sha256sum "$sdist" | cut -d' ' -f1)"
        if [[ "$got" != "$SDIST_SHA256" ]]; then
            log "SHA-256 mismatch for $sdist: got $got, expected $SDIST_SHA256"
            exit 1
        fi
    fi
    rm -rf "$SRC" && mkdir -p "$SRC"
    tar -xzf "$sdist" -C "$SRC" --strip-components=1
    echo "$SDIST_SHA256" >"$SRC/.sdist-sha256"
fi

[[ "$want" == --src-dir ]] && { echo "$SRC"; exit 0; }

# Native, but without AMX: on a virtual machine that reports AMX (seen: a Xeon
# guest), ggml's AMX matmul crashes llama-bench and llama-perplexity with
# SIGSEGV on the first batch; llama.cpp then uses its AVX-512/AVX2 kernels.
log "configuring llama.cpp (native CPU build, no AMX) in $BUILD"
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON \
    -DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
    -DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
    -DGGML_OPENMP=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DBUILD_SHARED_LIBS=OFF >"$CACHE/build.log" 2>&1 || { tail -n 30 "$CACHE/build.log" >&2; exit 1; }
log "building ${TOOLS[*]} and the static libraries (several minutes)"
nice -n 19 cmake --build "$BUILD" --target "${TOOLS[@]}" llama ggml ggml-base ggml-cpu -j "$(nproc)" \
    >>"$CACHE/build.log" 2>&1 || { tail -n 30 "$CACHE/build.log" >&2; exit 1; }
echo "$SDIST_SHA256" >"$BUILD/.sdist-sha256"
built || { log "a tool or library is missing after the build"; exit 1; }
echo "$answer"
