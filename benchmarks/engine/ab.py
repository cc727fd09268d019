#!/usr/bin/env python3
"""Two builds of the host command, A and B, on the same model, interleaved.

For every repetition and thread count, runs `axiom generate` (a 64-token
prompt, then 128 greedy tokens past EOS) once with each binary, in the order
A B on even repetitions and B A on odd ones, so drift in the machine's load
hits both alike. Prints per thread count the median and spread (min..max) of
decode and prefill tokens/s for A and B, the ratio B/A of the medians, and
the median of the per-repetition ratios (each B run against the A run next
to it, which cancels slow drift in the machine's load).

Before timing, checks that both builds compute the same thing: `axiom score`
(top-20 logits of every position, shortest round-trip floats) and the greedy
text must be byte-identical, at every thread count.

Usage: ab.py --a BIN_A --b BIN_B --model M [--threads 1,2] [--reps 9] [--out FILE.md]
Called by ab.sh, which builds B from the working tree and A from a git
revision.
"""

import argparse
import statistics
import sys

from compare import json_lines, prompt_of, run


def log(*x):
    print(*x, file=sys.stderr, flush=True)


def generate(axiom, model, threads, prompt, n_gen):
    r = run([axiom, "generate", "--model", model, "--prompt", prompt, "--tokens", str(n_gen),
             "--temp", "0", "--ignore-eos", "--threads", str(threads)])
    stats = json_lines(r.stderr)[-1]
    return r.stdout, stats


def summary(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def fmt(s):
    return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="baseline axiom binary")
    p.add_argument("--b", required=True, help="candidate axiom binary")
    p.add_argument("--model", required=True)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--gen-tokens", type=int, default=128)
    p.add_argument("--out", help="also write the table to this file")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    prompt = prompt_of(a.b, a.model, a.prompt_tokens)
    bins = {"A": a.a, "B": a.b}

    for t in threads:
        score = {k: run([b, "score", "--model", a.model, "--prompt", prompt, "--top", "20", "--threads", str(t)]).stdout
                 for k, b in bins.items()}
        text = {k: generate(b, a.model, t, prompt, 16)[0] for k, b in bins.items()}
        if score["A"] != score["B"] or text["A"] != text["B"]:
            sys.exit(f"ab: A and B compute different results at {t} threads (score equal: "
                     f"{score['A'] == score['B']}, text equal: {text['A'] == text['B']})")
        log(f"ab: {t} threads: score ({len(score['A'].splitlines())} positions, top 20) and greedy text identical")

    results = {(k, t): {"tg": [], "pp": []} for k in bins for t in threads}
    for rep in range(a.reps):
        for t in threads:
            for k in (("A", "B") if rep % 2 == 0 else ("B", "A")):
                _, st = generate(bins[k], a.model, t, prompt, a.gen_tokens)
                if st.get("prefill_tokens") != a.prompt_tokens or st.get("decode_tokens") != a.gen_tokens:
                    sys.exit(f"ab: {k} ran {st.get('prefill_tokens')}+{st.get('decode_tokens')} tokens")
                results[(k, t)]["tg"].append(st["decode_tok_s"])
                results[(k, t)]["pp"].append(st["prefill_tok_s"])
                log(f"ab: rep {rep + 1}/{a.reps} t={t} {k}: decode {st['decode_tok_s']:.1f}, prefill {st['prefill_tok_s']:.1f}")

    lines = [f"tokens/s, median (min-max) of {a.reps} interleaved runs; decode = {a.gen_tokens} tokens, "
             f"prefill = {a.prompt_tokens}-token prompt; paired = median of per-repetition B/A",
             "| threads | decode A | decode B | B/A | paired | prefill A | prefill B | B/A | paired |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in threads:
        ra, rb = results[("A", t)], results[("B", t)]
        cells = []
        for key in ("tg", "pp"):
            sa, sb = summary(ra[key]), summary(rb[key])
            paired = statistics.median(b / a for a, b in zip(ra[key], rb[key]))
            cells.append(f"{fmt(sa)} | {fmt(sb)} | {sb['median'] / sa['median']:.3f} | {paired:.3f}")
        lines.append(f"| {t} | {cells[0]} | {cells[1]} |")
    print("\n".join(lines))
    if a.out:
        with open(a.out, "w") as f:
            f.write(f"A: {a.a}\nB: {a.b}\nmodel: {a.model}\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
