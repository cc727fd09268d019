#!/usr/bin/env bash
# Print the path of a Python interpreter that has llama.cpp's `gguf` package
# (PyPI gguf==0.19.0, which brings numpy), installed on first use into a cached
# virtualenv (${AXIOM_CACHE:-$HOME/.cache/axiom}/venv-gguf). Used by the pack
# tests (tools/tests/pack_check.py) and benchmarks.
exec "$(dirname "$0")/py-venv.sh" gguf gguf 0.19.0
