#!/usr/bin/env bash
# Print the path of a Python interpreter that has llama.cpp's `gguf` package
# (PyPI gguf==0.19.0, which brings numpy), installing it on first use into a
# cached virtualenv: ${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-gguf.
# Used by the pack tests (tools/tests/pack_check.py). Never writes into the repo.
set -euo pipefail

GGUF_VERSION="0.19.0"
venv="${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-gguf"
py="$venv/bin/python3"

have_gguf() {
    [ -x "$py" ] && "$py" - "$GGUF_VERSION" <<'PY' 2>/dev/null
import sys, importlib.metadata as m
import gguf, numpy
sys.exit(m.version("gguf") != sys.argv[1])
PY
}

if have_gguf; then
    echo "$py"
    exit 0
fi

command -v python3 >/dev/null || { echo "gguf-py: python3 is required" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
if ! python3 -m venv --clear "$venv" >&2; then
    echo "gguf-py: cannot create a virtualenv (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi
echo "gguf-py: installing gguf==$GGUF_VERSION into $venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check "gguf==$GGUF_VERSION" >&2
have_gguf || { echo "gguf-py: gguf==$GGUF_VERSION did not install" >&2; exit 1; }
echo "$py"
