#!/usr/bin/env bash
# Install what AXIOM needs on a fresh Debian 12 machine (idempotent, quiet when all is present):
# QEMU 10 from bookworm-backports (7.2 lacks x2APIC under TCG), GRUB for BIOS and UEFI ISOs,
# xorriso + mtools for grub-mkrescue, OVMF for UEFI boots, python3-venv for the cached Python
# tools (gguf reader for the pack tests, the AVX-512 emulator check, the sweep plot); then the default model.
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

if ! qemu_ok || [ ${#need_pkgs[@]} -gt 0 ]; then
    src=/etc/apt/sources.list.d/debian.sources
    if [ -f "$src" ] && ! grep -q 'bookworm-backports' "$src"; then
        echo "setup: adding bookworm-backports to $src" >&2
        $SUDO sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' "$src"
    fi
    if [ -f "$src" ] && ! grep -q 'bookworm-backports' "$src"; then
        echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/axiom-backports.list >/dev/null
    fi
    echo "setup: apt-get update" >&2
    $SUDO apt-get update -qq >&2
    if ! qemu_ok; then
        echo "setup: installing qemu-system-x86 from bookworm-backports" >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports qemu-system-x86 >&2
    fi
    if [ ${#need_pkgs[@]} -gt 0 ]; then
        echo "setup: installing ${need_pkgs[*]}" >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
    fi
fi
qemu_ok || { echo "setup: QEMU >= 10 is required and could not be installed" >&2; exit 1; }

"$(dirname "$0")/fetch-model.sh" >/dev/null
echo "setup: ok ($(qemu-system-x86_64 --version | head -n1))" >&2
