#!/usr/bin/env python3
"""Summarize benchmarks/infer/bench.sh's logs: median, min and max over runs
of each case's decode tok/s, stream-wait fraction and per-core time split, the
streaming/resident ratio, and the host engine; print a table and write a CSV.

Usage: summarize.py LOG_DIR OUT.csv [--meta key=value ...]
LOG_DIR holds <mode>-smp<N>-run<R>.log (serial output of `axiom run`) and
host-t<T>-run<R>.json (the last stderr line of `axiom generate`).
Standard library only.
"""
import json
import os
import re
import statistics
import sys


def events(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^@(\w+) (\{.*\})\s*$", line)
            if m:
                try:
                    out.append((m.group(1), json.loads(m.group(2))))
                except json.JSONDecodeError:
                    pass
    return out


def kernel_run(path):
    """One run's figures, or None when it did not finish."""
    ev = events(path)
    summaries = [d for n, d in ev if n == "summary"]
    if not summaries or not any(n == "done" and d.get("status") == "ok" for n, d in ev):
        return None
    s = summaries[-1]
    r = {k: s.get(k) for k in ("decode_tok_s", "prefill_tok_s", "ttft_ms", "stream_wait_frac", "attn_frac",
                               "ffn_frac", "barrier_frac", "compute_cores", "mode", "generated")}
    io = [d for n, d in ev if n == "io"]
    if io:
        r["io_mib_per_s"] = io[-1].get("mib_per_s")
        r["io_busy"] = io[-1].get("busy")
    # Per-core split of a decode token: the last generated-1 forward passes.
    per = [d for n, d in ev if n == "core_token"]
    if per and s.get("generated"):
        last = max(d["tok"] for d in per)
        first_decode = last - (s["generated"] - 1) + 1
        cores = sorted({d["core"] for d in per})
        for c in cores:
            rows = [d for d in per if d["core"] == c and d["tok"] >= first_decode]
            if not rows:
                continue
            for f in ("attn_us", "ffn_us", "barrier_us", "stream_wait_us", "busy_us"):
                vals = [d.get(f, 0) for d in rows]
                r[f"core{c}.{f[:-3]}_ms"] = sum(vals) / len(vals) / 1000.0
    return r


def spread(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs), len(xs)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    log_dir, out_csv = args[0], args[1]
    meta = args[3:] if len(args) > 2 and args[2] == "--meta" else []

    cases = {}  # (mode, smp) -> [runs]
    host = {}   # threads -> [decode_tok_s]
    failed = []
    for name in sorted(os.listdir(log_dir)):
        path = os.path.join(log_dir, name)
        m = re.match(r"^(resident|resident-ggml|streaming)-smp(\d+)-run\d+\.log$", name)
        if m:
            r = kernel_run(path)
            if r is None:
                failed.append(name)
            else:
                cases.setdefault((m.group(1), int(m.group(2))), []).append(r)
            continue
        m = re.match(r"^host-t(\d+)-run\d+\.json$", name)
        if m:
            try:
                with open(path) as f:
                    host.setdefault(int(m.group(1)), []).append(json.loads(f.read())["decode_tok_s"])
            except (ValueError, KeyError):
                failed.append(name)

    rows = []  # case, smp, metric, median, min, max, n

    def add(case, smp, metric, values):
        st = spread(values)
        if st:
            rows.append((case, smp, metric) + st)
        return st

    def fmt(st, unit="", prec=3):
        if not st:
            return "n/a"
        med, lo, hi, n = st
        return f"{med:.{prec}f}{unit} (min {lo:.{prec}f}, max {hi:.{prec}f}, n={n})"

    print("AXIOM inference under QEMU TCG: medians over runs (min, max)")
    for line in meta:
        print("  " + line)
    decode = {}
    for (mode, smp), runs in sorted(cases.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        case = f"{mode}-smp{smp}"
        cores = runs[0].get("compute_cores")
        print(f"\n{case} ({cores} compute cores):")
        for key, label, unit in (("decode_tok_s", "decode", " tok/s"), ("prefill_tok_s", "prefill", " tok/s"),
                                 ("ttft_ms", "time to first token", " ms"), ("stream_wait_frac", "stream wait", " of layer time"),
                                 ("attn_frac", "attention", ""), ("ffn_frac", "FFN", ""), ("barrier_frac", "barrier", ""),
                                 ("io_mib_per_s", "I/O core read", " MiB/s"), ("io_busy", "I/O core busy", "")):
            st = add(case, smp, key, [r.get(key) for r in runs])
            if st:
                print(f"  {label:<22} {fmt(st, unit)}")
            if key == "decode_tok_s":
                decode[(mode, smp)] = st
        core_keys = sorted({k for r in runs for k in r if k.startswith("core")},
                           key=lambda k: (int(k[4:k.index(".")]), k))
        if core_keys:
            print("  per compute core, ms per decode token (median over runs):")
            by_core = {}
            for k in core_keys:
                st = add(case, smp, k, [r.get(k) for r in runs])
                c, field = k.split(".")
                by_core.setdefault(c, {})[field] = st[0] if st else float("nan")
            for c, f in by_core.items():
                print(f"    {c:<7} attention {f.get('attn_ms', 0):8.1f}  FFN {f.get('ffn_ms', 0):8.1f}  "
                      f"barrier {f.get('barrier_ms', 0):8.1f}  stream wait {f.get('stream_wait_ms', 0):8.1f}  "
                      f"busy {f.get('busy_ms', 0):8.1f}")
    print()
    for smp in sorted({s for _, s in decode}):
        # Streaming computes on the file layout; resident repacks its layers when
        # memory allows, so the ratio is given against both resident variants.
        for base, label in (("resident", "streaming/resident"), ("resident-ggml", "streaming/resident-ggml")):
            res, stre = decode.get((base, smp)), decode.get(("streaming", smp))
            if res and stre:
                ratio = stre[0] / res[0]
                rows.append((label, smp, "decode_ratio", ratio, stre[1] / res[2], stre[2] / res[1], min(res[3], stre[3])))
                print(f"{label} decode at --smp {smp}: {ratio:.3f} "
                      f"(worst {stre[1] / res[2]:.3f}, best {stre[2] / res[1]:.3f})")
    for threads, vals in sorted(host.items()):
        st = add(f"host-t{threads}", threads + 1, "decode_tok_s", vals)
        print(f"host engine, {threads} thread(s): decode {fmt(st, ' tok/s', 1)}")
        res = decode.get(("resident", threads + 1))
        if st and res:
            print(f"  TCG cost: the kernel (resident, {threads} compute) decodes {st[0] / res[0]:.0f}x slower than the host engine")
    if failed:
        print(f"\nfailed runs (excluded): {', '.join(failed)}")

    with open(out_csv, "w") as f:
        for line in meta:
            f.write(f"# {line}\n")
        f.write(f"# logs={log_dir}\n")
        if failed:
            f.write(f"# failed={' '.join(failed)}\n")
        f.write("case,smp,metric,median,min,max,runs\n")
        for case, smp, metric, med, lo, hi, n in rows:
            f.write(f"{case},{smp},{metric},{med:.6g},{lo:.6g},{hi:.6g},{n}\n")
    print(f"\nwrote {out_csv}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
