#!/usr/bin/env bash
# The one test command: install what is missing (tools/setup.sh), then run
# every test of the workspace: host unit tests, engine goldens and the QEMU
# integration tests under tools/tests/ (they build and boot the kernel).
# Extra arguments go to `cargo test` (e.g. `./tools/test.sh -p axiom-kernel`).
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/setup.sh
command -v cargo >/dev/null || { echo "test.sh: cargo (Rust stable) is required" >&2; exit 1; }

echo "test.sh: cargo test --release --workspace $*" >&2
exec cargo test --release --workspace "$@"
