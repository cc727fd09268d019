#!/usr/bin/env bash
# The one setup + run command: install what is missing and fetch the default
# model (SmolLM2-135M-Instruct) with tools/setup.sh, build the kernel, boot it
# in QEMU with the model packed onto an NVMe disk, and generate a short answer
# to a prompt over the serial line, shown as a short progress display (the
# run's phases, then the answer as it is generated).
# The CPU count fits the host: one compute CPU per host core plus the I/O
# core (`cargo axiom run` says what it chose; --smp N overrides).
#
#   ./tools/run.sh                                  # the default question
#   ./tools/run.sh "Why is the sky blue?"           # your prompt
#   ./tools/run.sh "Hello" --tokens 64 --smp 3      # then any `cargo axiom run` flag
#   ./tools/run.sh "Hello" --show lines             # every serial line (telemetry too)
#   ./tools/run.sh --interactive                    # chat: one prompt per line
#   ./tools/run.sh "Why is the sky blue?" --model gemma3-270m   # a model by name (fetched if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/setup.sh
command -v cargo >/dev/null || { echo "run.sh: cargo (Rust stable) is required" >&2; exit 1; }

prompt="What is the capital of France? Answer in one sentence."
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    prompt=$1
    shift
fi
# Defaults for what the caller did not set (clap refuses a flag given twice).
has() { local a; for a in "${@:2}"; do [ "$a" = "$1" ] || [ "${a%%=*}" = "$1" ] && return 0; done; return 1; }
args=()
has --tokens "$@" || args+=(--tokens 48)
has --chat "$@" || args+=(--chat)
has --show "$@" || has --quiet "$@" || args+=(--show progress)
has --interactive "$@" || has --prompt "$@" || args+=(--prompt "$prompt")
# Gemma 3 270M is a base model: greedy, it soon repeats its own sentence
# ("It is a natural phenomenon because it is a natural phenomenon."); the
# repetition penalty llama.cpp long used by default (1.1) keeps it on topic.
if has --model "$@" && ! has --repeat-penalty "$@"; then
    for a in "$@"; do
        case "$a" in gemma3-270m | --model=gemma3-270m) args+=(--repeat-penalty 1.1) ;; esac
    done
fi
# 48 tokens of a model with a large vocabulary (Gemma 3: 262,144 rows in the
# output head, about 10 s a token under TCG on a 2-core host, more when it is
# busy) outlast the runner's 900 s default; the progress display shows it is
# not hung, and Ctrl-C stops it.
has --timeout "$@" || args+=(--timeout 3600)
exec cargo axiom run "${args[@]}" "$@"
