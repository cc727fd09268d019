#!/usr/bin/env python3
"""Compare two directories of `axiom run` logs (benchmarks/infer/ab.sh): per
case, the median (min, max) over runs of decode and prefill tokens/s and time
to first token for A and B, and B/A of the medians. Writes a Markdown table.

Usage: ab.py DIR_A DIR_B --out OUT.md [--meta key=value ...]
Standard library only; run parsing from summarize.py.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import kernel_run, spread  # noqa: E402

METRICS = (("decode_tok_s", "decode tok/s"), ("prefill_tok_s", "prefill tok/s"), ("ttft_ms", "first token ms"))


def runs(log_dir):
    cases, failed = {}, []
    for name in sorted(os.listdir(log_dir)):
        m = re.match(r"^(\w[\w-]*)-smp(\d+)-run\d+\.log$", name)
        if not m:
            continue
        r = kernel_run(os.path.join(log_dir, name))
        if r is None:
            failed.append(name)
        else:
            cases.setdefault(f"{m.group(1)}-smp{m.group(2)}", []).append(r)
    return cases, failed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--out", required=True)
    p.add_argument("--meta", nargs="*", default=[])
    args = p.parse_args()
    (a, fa), (b, fb) = runs(args.a), runs(args.b)
    lines = ["# Inference kernel A/B under QEMU TCG", ""]
    lines += [f"- {m}" for m in args.meta]
    lines += ["", "| case | metric | A median (min, max) | B median (min, max) | B/A |", "|---|---|---|---|---|"]
    for case in sorted(set(a) | set(b)):
        for key, label in METRICS:
            sa = spread([r.get(key) for r in a.get(case, [])])
            sb = spread([r.get(key) for r in b.get(case, [])])
            cell = lambda s: f"{s[0]:.3f} ({s[1]:.3f}, {s[2]:.3f}), n={s[3]}" if s else "n/a"
            ratio = f"{sb[0] / sa[0]:.3f}" if sa and sb and sa[0] else "n/a"
            lines.append(f"| {case} | {label} | {cell(sa)} | {cell(sb)} | {ratio} |")
    for side, failed in (("A", fa), ("B", fb)):
        if failed:
            lines.append(f"\nFailed runs on {side}: {', '.join(failed)}")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
