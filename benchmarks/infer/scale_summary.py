#!/usr/bin/env python3
"""Summarize benchmarks/infer/scale.sh's logs: per case (default, pin0) the
median, min and max over boots of the time per decode token, bytes read per
token, I/O MiB/s, stream-wait share; the pinned/streamed layers; whether the
tokens equal the host engine's; the pin0/default ratios. Prints a table and
writes a CSV. Standard library only.

Usage: scale_summary.py LOG_DIR OUT.csv [--meta key=value ...]
"""
import csv
import json
import os
import re
import statistics
import sys

# The @event reader shared with bench.sh's summary (same folder).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import events  # noqa: E402


def run(path, host_ids):
    ev = events(path)
    first = lambda name: next((d for n, d in ev if n == name), None)
    s, mem, io = first("summary"), first("mem"), first("io")
    if s is None or mem is None:
        return None
    ids = [d["id"] for n, d in ev if n == "token"]
    return {
        "ms_per_token": s.get("decode_ms_median"),
        "decode_tok_s": s.get("decode_tok_s"),
        "ttft_ms": s.get("ttft_ms"),
        "bytes_per_token": s.get("bytes_per_token"),
        "io_mib_per_s": s.get("io_mib_per_s"),
        "stream_wait_frac": s.get("stream_wait_frac"),
        "pinned_layers": mem.get("pinned_layers"),
        "streamed_layers": mem.get("streamed_layers"),
        "spilled_layers": mem.get("spilled_layers"),
        "streamed_bytes_per_token": mem.get("streamed_bytes_per_token"),
        "io_bytes": io.get("bytes") if io else 0,
        "generated": s.get("generated"),
        "equal_to_host": ids == host_ids,
    }


def spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return (None, None, None)
    return (statistics.median(xs), min(xs), max(xs))


def main():
    logs, out = sys.argv[1], sys.argv[2]
    meta = sys.argv[sys.argv.index("--meta") + 1:] if "--meta" in sys.argv else []
    host = json.load(open(os.path.join(logs, "host.json")))
    host_ids = host["ids"]
    cases = {}
    for name in sorted(os.listdir(logs)):
        m = re.match(r"^(\w+)-run(\d+)\.log$", name)
        if m:
            r = run(os.path.join(logs, name), host_ids)
            cases.setdefault(m.group(1), []).append(r)
    rows = []
    keys = ["ms_per_token", "decode_tok_s", "bytes_per_token", "io_mib_per_s", "stream_wait_frac"]
    for case, runs in cases.items():
        ok = [r for r in runs if r]
        row = {"case": case, "boots": len(runs), "finished": len(ok), "all_equal_to_host": all(r["equal_to_host"] for r in ok) and bool(ok)}
        for k in ("pinned_layers", "streamed_layers", "spilled_layers", "streamed_bytes_per_token"):
            row[k] = ok[0][k] if ok else None
        for k in keys:
            med, lo, hi = spread([r[k] for r in ok])
            row[k + "_median"], row[k + "_min"], row[k + "_max"] = med, lo, hi
        rows.append(row)
    print("host engine ids:", host_ids, "({} threads, {} tok/s decode)".format(host.get("threads"), host.get("decode_tok_s")))
    for row in rows:
        print("{case}: {finished}/{boots} boots finished, equal to host: {all_equal_to_host}; pinned {pinned_layers}, "
              "streamed {streamed_layers} (spilled {spilled_layers})".format(**row))
        for k in keys:
            print("    {:<18} median {}  min {}  max {}".format(k, row[k + "_median"], row[k + "_min"], row[k + "_max"]))
    by = {r["case"]: r for r in rows}
    if "default" in by and "pin0" in by:
        d, p = by["default"], by["pin0"]
        for k in ("bytes_per_token", "ms_per_token"):
            if d[k + "_median"] and p[k + "_median"]:
                print("pin0 / default {}: {:.2f}".format(k, p[k + "_median"] / d[k + "_median"]))
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        for m in meta:
            w.writerow(["#", m])
        if rows:
            w.writerow(list(rows[0].keys()))
            for r in rows:
                w.writerow([r[k] for k in rows[0].keys()])
    print("wrote", out)


if __name__ == "__main__":
    main()
