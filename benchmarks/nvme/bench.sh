#!/usr/bin/env bash
# Sequential read throughput of AXIOM's polled NVMe driver (QEMU TCG, its
# emulated NVMe device backed by a host file opened with O_DIRECT) against
#   - the host reading the same file with direct I/O at a large block size,
#   - the host reading it with direct I/O, 4 KiB blocks, one at a time,
#   - (if fio is installed) the host with io_uring, 512 KiB blocks, 128 deep,
#   - our driver issuing a Linux-style pattern: 4 KiB commands at queue depth 1.
# Each case runs RUNS times (default 5); we print the median and the spread
# and append the medians to benchmarks/results/nvme.csv.
#
#   benchmarks/nvme/bench.sh            # 256 MiB image, 5 runs
#   SIZE_MIB=64 RUNS=3 benchmarks/nvme/bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-5}
SMP=${SMP:-2}
RESULTS=benchmarks/results
IMG=${IMG:-$RESULTS/nvme-bench-${SIZE_MIB}m.img}
mkdir -p "$RESULTS"

if [ ! -f "$IMG" ] || [ "$(stat -c %s "$IMG")" -ne $((SIZE_MIB * 1048576)) ]; then
    echo "creating $IMG ($SIZE_MIB MiB of random bytes)"
    head -c $((SIZE_MIB * 1048576)) /dev/urandom > "$IMG"
fi

# Build once so that no run pays for compilation.
cargo build --quiet --release -p axiom-tools >/dev/null
cargo axiom run --help >/dev/null

median_spread() { # reads numbers, prints "median min max"
    sort -g | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.3f %.3f %.3f", m, v[1], v[NR]}'
}

host_dd() { # block size -> MiB/s
    dd if="$IMG" of=/dev/null bs="$1" iflag=direct 2>&1 | awk '/copied/ {for (i=1;i<=NF;i++) if ($i=="s,") t=$(i-1); b=$1} END {printf "%.1f\n", b/1048576/t}'
}

host_fio() { # the host's best case: as deep and as large as the guest's commands
    fio --name=seq --filename="$IMG" --rw=read --bs=512k --iodepth=128 --ioengine=io_uring --direct=1 --readonly \
        --output-format=terse 2>/dev/null | awk -F';' '{printf "%.1f\n", $7/1024}'
}

# One kernel run; prints "mib_per_s busy_fraction driver_busy_fraction queue_depth max_in_flight".
kernel_read() { # cmdline
    local out
    out=$(cargo axiom run --smp "$SMP" --disk "$IMG" --timeout 600 --cmdline "selftest=nvme $1" 2>&1) || { echo "$out" | tail -20 >&2; return 1; }
    echo "$out" | grep '^@nvme_read ' | sed 's/^@nvme_read //' | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(r["mib_per_s"], r["busy_fraction"], r["driver_busy_fraction"], r["queue_depth"], r["max_in_flight"])'
}

run_case() { # name, command...
    local name=$1; shift
    local vals=() busy=() dbusy=() extra=""
    for i in $(seq "$RUNS"); do
        local line
        line=$("$@")
        read -r mib b db qd inflight <<<"$line"
        vals+=("$mib")
        if [ -n "${b:-}" ]; then
            busy+=("$b"); dbusy+=("$db"); extra="qd $qd, max in flight $inflight"
        fi
    done
    local stats busy_med=""
    stats=$(printf '%s\n' "${vals[@]}" | median_spread)
    if [ ${#busy[@]} -gt 0 ]; then
        busy_med="busy $(printf '%s\n' "${busy[@]}" | median_spread | cut -d' ' -f1 | awk '{printf "%.2f", $1/1}')"
        busy_med="$busy_med (driver $(printf '%s\n' "${dbusy[@]}" | median_spread | cut -d' ' -f1 | awk '{printf "%.2f", $1/1}')), $extra"
    fi
    read -r med lo hi <<<"$stats"
    printf '%-44s median %8.1f MiB/s  (min %.1f, max %.1f)  %s\n' "$name" "$med" "$lo" "$hi" "$busy_med"
    echo "$(date -u +%FT%TZ),\"$name\",$SIZE_MIB,$RUNS,$med,$lo,$hi,\"$busy_med\"" >> "$RESULTS/nvme.csv"
}

[ -f "$RESULTS/nvme.csv" ] || echo "time,case,size_mib,runs,median_mib_s,min_mib_s,max_mib_s,io_core" > "$RESULTS/nvme.csv"
echo "image $IMG, $RUNS runs each, host $(nproc) cores; the I/O core busy fraction is the median over runs"
run_case "host dd iflag=direct bs=4M"                 host_dd 4M
run_case "host dd iflag=direct bs=4k"                 host_dd 4k
if command -v fio >/dev/null; then
    run_case "host fio direct io_uring bs=512k QD128"  host_fio
fi
run_case "axiom polled, deepest queue, no CRC"        kernel_read "nvme_crc=off"
run_case "axiom polled, deepest queue, CRC32C"        kernel_read ""
run_case "axiom polled, 4 KiB commands, QD1, no CRC"  kernel_read "nvme_qd=1 nvme_xfer=4096 nvme_crc=off"
