#!/usr/bin/env bash
# Print the path of a Python interpreter with one pinned PyPI package (and its
# dependencies), installing it on first use into a cached virtualenv:
# ${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-NAME. Never writes into the repo.
#
#   tools/py-venv.sh NAME PACKAGE VERSION [pip options...]
#
# Used through tools/gguf-py.sh (the pack tests' GGUF reader) and
# tools/plot-py.sh (the sweep plot).
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 NAME PACKAGE VERSION [pip options...]" >&2; exit 2; }
name=$1 package=$2 version=$3
shift 3
venv="${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-$name"
py="$venv/bin/python3"

have_package() {
    [ -x "$py" ] && "$py" - "$package" "$version" <<'PY' 2>/dev/null
import sys, importlib.metadata as m
sys.exit(m.version(sys.argv[1]) != sys.argv[2])
PY
}

if have_package; then
    echo "$py"
    exit 0
fi

command -v python3 >/dev/null || { echo "py-venv: python3 is required" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
if ! python3 -m venv --clear "$venv" >&2; then
    echo "py-venv: cannot create a virtualenv (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi
echo "py-venv: installing $package==$version into $venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check "$@" "$package==$version" >&2
have_package || { echo "py-venv: $package==$version did not install" >&2; exit 1; }
echo "$py"
