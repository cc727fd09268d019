#!/usr/bin/env bash
# Tests the engine's AVX-512 kernels on an emulated CPU, for hosts without
# AVX-512: builds the freestanding check image (src/main.rs) and runs it on
# Bochs's CPU model through the `bochscpu` Python package (PyPI), which
# implements AVX-512 F/BW/VL. The package compiles its CPU model (Bochs's
# corei7_skylake_x) into its parameter table and offers no way to pick
# another, so VNNI, which other Bochs models have, cannot be checked this
# way (docs/engine.md, "How each ISA path is verified"). Prints one line per ISA; exit 0 when
# every output matched the scalar reference bit for bit, 1 on a mismatch,
# 77 when the emulator cannot be installed (no network, unsupported host).
#
# Cache: ${AXIOM_CACHE:-~/.cache/axiom}/bochscpu (venv); image build dir:
# ${CARGO_TARGET_DIR:-target}/avx512-check.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${AXIOM_CACHE:-$HOME/.cache/axiom}/bochscpu"
venv="$cache/venv"
mkdir -p "$cache"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('bochscpu') is None)" 2>/dev/null; then
    echo "avx512-check: installing bochscpu-python into $venv" >&2
    python3 -m venv "$venv" >&2 || exit 77
    "$venv/bin/pip" install --quiet --only-binary :all: "bochscpu-python==0.4.0" >&2 || exit 77
fi

# The wheel is built against glibc 2.38 and uses two C23 aliases older glibcs
# (Debian 12 has 2.36) lack; a two-function shim provides them.
preload=""
if ! "$venv/bin/python" -c "import bochscpu" 2>/dev/null; then
    shim="$cache/glibc-c23-shim.so"
    if [[ ! -f "$shim" ]]; then
        cat > "$cache/shim.c" <<'C'
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
int __isoc23_sscanf(const char *s, const char *f, ...) {
    va_list ap; va_start(ap, f); int r = vsscanf(s, f, ap); va_end(ap); return r;
}
C
        cc -shared -fPIC -O2 -o "$shim" "$cache/shim.c" || exit 77
    fi
    preload="$shim"
    LD_PRELOAD="$preload" "$venv/bin/python" -c "import bochscpu" || exit 77
fi

target="${CARGO_TARGET_DIR:-$here/../../../target}/avx512-check"
(cd "$here" && CARGO_TARGET_DIR="$target" cargo build --quiet --release)
LD_PRELOAD="$preload" "$venv/bin/python" "$here/check.py" "$target/release/axiom-avx512-check"
