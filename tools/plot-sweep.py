#!/usr/bin/env python3
"""Plot an `axiom sweep` CSV: decode tokens/s (median, min-max error bars)
against vCPUs. Points with more vCPUs than the host has logical cores are
drawn apart and labelled "oversubscribed (host has N cores)": QEMU's vCPU
threads then share host cores, so they measure the host, not the kernel.

Usage: plot-sweep.py SWEEP.csv OUT.png  (run with tools/plot-py.sh's python)
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    meta, rows = {}, []
    with open(path, newline="") as f:
        body = []
        for line in f:
            if line.startswith("#"):
                key, _, value = line[1:].strip().partition("=")
                if value:
                    meta[key.strip()] = value.strip()
            else:
                body.append(line)
    for r in csv.DictReader(body):
        rows.append(r)
    return meta, rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    meta, rows = read(sys.argv[1])
    host = int(meta.get("host_cores", "0"))
    stats = {}
    for r in rows:
        if r["run"] in ("median", "min", "max") and r["decode_tok_s"] != "":
            stats.setdefault(int(r["smp"]), {})[r["run"]] = float(r["decode_tok_s"])
    points = sorted((s, v) for s, v in stats.items() if {"median", "min", "max"} <= v.keys())
    if not points:
        sys.exit(f"plot-sweep: no successful runs in {sys.argv[1]}")

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    label_over = f"oversubscribed (host has {host} cores)"
    for over in (False, True):
        pts = [(s, v) for s, v in points if (s > host) == over]
        if not pts:
            continue
        xs = [s for s, _ in pts]
        med = [v["median"] for _, v in pts]
        err = [[v["median"] - v["min"] for _, v in pts], [v["max"] - v["median"] for _, v in pts]]
        ax.errorbar(xs, med, yerr=err, fmt="s" if over else "o", color="tab:red" if over else "tab:blue",
                    capsize=4, markersize=7, label=label_over if over else f"vCPUs <= host cores ({host})")
        if over:
            for x, y in zip(xs, med):
                ax.annotate("oversubscribed", (x, y), textcoords="offset points", xytext=(0, 10),
                            ha="center", fontsize=8, color="tab:red")
    ax.plot([s for s, _ in points], [v["median"] for _, v in points], color="gray", linewidth=0.8, zorder=0)
    if host and points[-1][0] > host:
        ax.axvspan(host + 0.5, points[-1][0] + 0.5, color="tab:red", alpha=0.07)
    ax.set_xticks([s for s, _ in points])
    ax.set_xlabel("vCPUs (QEMU -smp; the last one is the I/O core)")
    ax.set_ylabel("decode tokens/s (median, min-max)")
    ax.set_ylim(0, max(v["max"] for _, v in points) * 1.25)
    mode = meta.get("mode", "?")
    ax.set_title(f"AXIOM decode speed vs vCPUs, {mode} mode, QEMU TCG\n"
                 f"{meta.get('model', '')}, {meta.get('runs', '?')} runs per point, host: {host} logical cores",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.text(0.01, 0.01, meta.get("qemu", ""), fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
