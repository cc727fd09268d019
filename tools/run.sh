#!/usr/bin/env bash
# The one setup + run command: install what is missing (tools/setup.sh), fetch
# the default model (SmolLM2-135M-Instruct), build the kernel, boot it in QEMU
# on 4 CPUs (3 compute cores + the I/O core) with the model packed onto an
# NVMe disk, and generate a short answer to a prompt over the serial line.
#
#   ./tools/run.sh                                  # the default question
#   ./tools/run.sh "Why is the sky blue?"           # your prompt
#   ./tools/run.sh "Hello" --tokens 64 --smp 3      # then any `cargo axiom run` flag
#   ./tools/run.sh --interactive                    # chat: one prompt per line
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/setup.sh
command -v cargo >/dev/null || { echo "run.sh: cargo (Rust stable) is required" >&2; exit 1; }
./tools/fetch-model.sh >/dev/null

prompt="What is the capital of France? Answer in one sentence."
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    prompt=$1
    shift
fi
# Defaults for what the caller did not set (clap refuses a flag given twice).
has() { local a; for a in "${@:2}"; do [ "$a" = "$1" ] || [ "${a%%=*}" = "$1" ] && return 0; done; return 1; }
args=()
has --smp "$@" || args+=(--smp 4)
has --tokens "$@" || args+=(--tokens 48)
has --chat "$@" || args+=(--chat)
has --interactive "$@" || has --prompt "$@" || args+=(--prompt "$prompt")
exec cargo axiom run "${args[@]}" "$@"
