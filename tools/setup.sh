#!/usr/bin/env bash
# Install what AXIOM needs on a fresh Debian 12 machine (idempotent, one line when all is present,
# one line per step otherwise; apt's full output only when it fails):
# QEMU 10 from bookworm-backports (7.2 lacks x2APIC under TCG), GRUB for BIOS and UEFI ISOs,
# xorriso + mtools for grub-mkrescue, OVMF for UEFI boots, python3-venv for the cached Python
# tools (gguf reader for the pack tests, the AVX-512 emulator check, the sweep plot); then the default model,
# Gemma 3 270M, the synthetic architecture models, the default model's llama.cpp requantizations
# (benchmarks/engine/goldens/requantize.sh, which builds llama-quantize once) and the test data the
# repository cannot carry (tools/fetch-testdata.sh).
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null || return 1
    local major
    major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ "${major:-0}" -ge 10 ]
}
for p in grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools ovmf unzip python3-venv; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done

# apt's output goes to a log: one line per step here, the whole log when a step fails.
apt_log=$(mktemp "${TMPDIR:-/tmp}/axiom-setup.XXXXXX")
trap 'rm -f "$apt_log"' EXIT
apt_step() {
    local what=$1 start=$SECONDS rc=0
    shift
    printf 'setup: %s ... ' "$what" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive "$@" >"$apt_log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "failed (exit $rc): $*" >&2
        cat "$apt_log" >&2
        exit "$rc"
    fi
    local installed
    installed=$(grep -c '^Setting up ' "$apt_log" || true)
    if [ "$installed" -gt 0 ]; then
        echo "done ($installed set up, $((SECONDS - start)) s)" >&2
    else
        echo "done in $((SECONDS - start)) s" >&2
    fi
}

if ! qemu_ok || [ ${#need_pkgs[@]} -gt 0 ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        src=/etc/apt/sources.list.d/debian.sources
        if [ -f "$src" ] && grep -q '^Suites: bookworm bookworm-updates$' "$src"; then
            echo "setup: adding bookworm-backports to $src" >&2
            $SUDO sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' "$src"
        else
            echo "setup: adding bookworm-backports in /etc/apt/sources.list.d/axiom-backports.list" >&2
            echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/axiom-backports.list >/dev/null
        fi
    fi
    apt_step "apt-get update" apt-get update
    if ! qemu_ok; then
        apt_step "installing qemu-system-x86 (QEMU 10) from bookworm-backports" \
            apt-get install -y -t bookworm-backports qemu-system-x86
    fi
    if [ ${#need_pkgs[@]} -gt 0 ]; then
        apt_step "installing ${need_pkgs[*]}" apt-get install -y "${need_pkgs[@]}"
    fi
fi
qemu_ok || { echo "setup: QEMU >= 10 is required and could not be installed" >&2; exit 1; }

"$(dirname "$0")/fetch-model.sh" >/dev/null
# Gemma 3 270M (Q4_K_M, 253 MB) for its goldens and perplexity tests.
"$(dirname "$0")/fetch-model.sh" --model gemma3-270m >/dev/null
# The synthetic llama3/qwen2/qwen3 models of the architecture tests (about 10 s each the first time,
# then a SHA-256 check): llama.cpp's vocabulary files from the pinned sdist, weights from a seed.
"$(dirname "$0")/../benchmarks/engine/goldens/synth-models.sh" >/dev/null
# Test data whose licence keeps it out of the repository (tools/fetch-testdata.sh says which).
"$(dirname "$0")/fetch-testdata.sh" >/dev/null
# The default model requantized by llama.cpp's llama-quantize into Q4_K_M, Q5_K_M, Q6_K, Q3_K_M, Q2_K,
# Q2_K (pure), Q5_0, Q5_1 and IQ4_NL, for kernel/engine/tests/requant_goldens.rs (SHA-256 pinned). The
# first time this builds llama.cpp from the pinned sdist (benchmarks/engine/build-llama.sh, cached) and
# quantizes for about a minute; afterwards it is a checksum of each file.
if ! "$(dirname "$0")/../benchmarks/engine/goldens/requantize.sh" >/dev/null; then
    echo "setup: making the requantized models failed (benchmarks/engine/goldens/requantize.sh)" >&2
    exit 1
fi
echo "setup: ok ($(qemu-system-x86_64 --version | head -n1))" >&2
