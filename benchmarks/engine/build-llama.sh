#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` (native CPU build) from the llama.cpp sources
# vendored in the PyPI sdist of llama-cpp-python, with cmake and ninja from PyPI.
# The build is cached outside the repo; a second run only prints the binary path.
#
# Usage: benchmarks/engine/build-llama.sh      -> prints the path of llama-bench
# Env:   AXIOM_LLAMA_CACHE (default ~/.cache/axiom/llama.cpp)
#        LLAMA_CPP_PYTHON_VERSION (default pinned below)
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${AXIOM_LLAMA_CACHE:-$HOME/.cache/axiom/llama.cpp}"
STAMP="$CACHE/build-$VERSION/bin/llama-bench"

if [[ -x "$STAMP" ]]; then
    echo "$STAMP"
    exit 0
fi

mkdir -p "$CACHE"
log() { echo "build-llama: $*" >&2; }

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

SRC="$CACHE/src-$VERSION"
if [[ ! -d "$SRC/vendor/llama.cpp" ]]; then
    log "downloading llama-cpp-python==$VERSION sdist"
    rm -rf "$CACHE/dl" && mkdir -p "$CACHE/dl"
    pip download --quiet --no-deps --no-build-isolation --no-binary llama-cpp-python \
        -d "$CACHE/dl" "llama-cpp-python==$VERSION" >&2
    rm -rf "$SRC" && mkdir -p "$SRC"
    tar -xzf "$CACHE"/dl/llama_cpp_python-*.tar.gz -C "$SRC" --strip-components=1
fi

BUILD="$CACHE/build-$VERSION"
log "configuring llama.cpp (native CPU build) in $BUILD"
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON \
    -DGGML_OPENMP=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DBUILD_SHARED_LIBS=OFF >&2
log "building llama-bench (several minutes)"
nice -n 19 cmake --build "$BUILD" --target llama-bench -j "$(nproc)" >&2
[[ -x "$STAMP" ]] || { log "llama-bench not found after build"; exit 1; }
echo "$STAMP"
