#!/usr/bin/env bash
# Print the path of a Python interpreter that has matplotlib (PyPI
# matplotlib==3.9.2, Agg backend: no display or system fonts needed), installed
# on first use into a cached virtualenv (${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-plot).
# Used by `cargo axiom sweep` (tools/plot-sweep.py).
exec "$(dirname "$0")/py-venv.sh" plot matplotlib 3.9.2 --only-binary :all:
