#!/usr/bin/env bash
# The one setup + run command: install what is missing (tools/setup.sh), build
# the kernel and boot it in QEMU on 4 CPUs with the barrier self-test.
# Extra arguments go to `cargo axiom run` (e.g. `./tools/run.sh --xapic`).
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/setup.sh
command -v cargo >/dev/null || { echo "run.sh: cargo (Rust stable) is required" >&2; exit 1; }

exec cargo axiom run --smp 4 --cmdline "selftest=smp" "$@"
