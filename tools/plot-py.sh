#!/usr/bin/env bash
# Print the path of a Python interpreter that has matplotlib (PyPI
# matplotlib==3.9.2, Agg backend: no display or system fonts needed),
# installing it on first use into a cached virtualenv:
# ${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-plot.
# Used by `cargo axiom sweep` (tools/plot-sweep.py). Never writes into the repo.
set -euo pipefail

MPL_VERSION="3.9.2"
venv="${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-plot"
py="$venv/bin/python3"

have_mpl() {
    [ -x "$py" ] && "$py" - "$MPL_VERSION" <<'PY' 2>/dev/null
import sys, importlib.metadata as m
import matplotlib
sys.exit(m.version("matplotlib") != sys.argv[1])
PY
}

if have_mpl; then
    echo "$py"
    exit 0
fi

command -v python3 >/dev/null || { echo "plot-py: python3 is required" >&2; exit 1; }
mkdir -p "$(dirname "$venv")"
if ! python3 -m venv --clear "$venv" >&2; then
    echo "plot-py: cannot create a virtualenv (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi
echo "plot-py: installing matplotlib==$MPL_VERSION into $venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check --only-binary :all: "matplotlib==$MPL_VERSION" >&2
have_mpl || { echo "plot-py: matplotlib==$MPL_VERSION did not install" >&2; exit 1; }
echo "$py"
