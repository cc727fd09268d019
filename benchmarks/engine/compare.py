#!/usr/bin/env python3
"""AXIOM vs llama.cpp on the same model files, one run, interleaved.

For every repetition, thread count and model, runs llama.cpp's `llama-bench`
once (pp64 + tg128) and AXIOM's `axiom generate` once (a 64-token prompt, then
128 greedy tokens past EOS), so both engines see the same machine conditions.
Prints per cell the median and spread (min..max) of decode and prefill
tokens/s, the ratio AXIOM / llama.cpp, and each engine's fraction of the
memory-bandwidth bound (weight bytes read per decode token vs the measured
read bandwidth for that thread count). Called by compare.sh.

Read bandwidth: `kernel-bench bw --threads T` first searches the best way to
read memory on T threads (streams per thread, software prefetch distance,
AVX2 / AVX-512 loads); every repetition then measures that configuration
once, interleaved with the decode runs (so both see the same machine), and
the bound is the median of those measurements over the repetitions.
`sysbench memory` (sequential reads, when installed) is run once per thread
count as a known tool's figure beside it; it does not enter the bound.

Depth cells (`--depths 512,2048`, first model only, F16 KV cache on both
sides): `llama-bench -p D -n 0` (prefill of D tokens) and `llama-bench -p 0
-n G -d D` (G decode tokens after a context of D) against one `axiom generate
--kv-type f16` run of a D-token prompt then G tokens, interleaved the same
way; each row also gives AXIOM's KV cache bytes per token.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def prompt_of(axiom, model, n_tokens):
    """A plain-text prompt that the model tokenizes to exactly n_tokens."""
    words = ("The history of the city begins with a small harbour where fishermen "
             "traded salt and grain with merchants from the islands, and over the "
             "centuries it grew into a busy port with markets, temples, schools, "
             "bridges and long stone walls that still stand along the river today "
             "while visitors walk the old streets every summer evening").split()
    text = ""
    for i in range(400):
        cand = (text + " " + words[i % len(words)]).strip()
        ids = json.loads(run([axiom, "tokenize", "--model", model, "--text", cand]).stdout)
        if len(ids) > n_tokens:
            break
        text = cand
        if len(ids) == n_tokens:
            return text
    sys.exit(f"compare: could not build a {n_tokens}-token prompt")


def prompt_of_length(axiom, model, text_file, n_tokens):
    """A prefix of text_file that the model tokenizes to exactly n_tokens."""
    pieces = json.loads(run([axiom, "tokenize", "--model", model, "--file", text_file, "--pieces"]).stdout)
    for k in range(n_tokens, min(n_tokens + 8, len(pieces)) + 1):
        text = "".join(p["piece"] for p in pieces[:k] if not p["piece"].startswith("<|"))
        if len(json.loads(run([axiom, "tokenize", "--model", model, "--text", text]).stdout)) == n_tokens:
            return text
    sys.exit(f"compare: could not build a {n_tokens}-token prompt from {text_file}")


def llama_depth_once(llama_bench, model, threads, depth, n_gen, kv):
    base = [llama_bench, "-m", model, "-r", "1", "-t", str(threads), "-ctk", kv, "-ctv", kv, "-o", "jsonl"]
    pp = tg = None
    for d in json_lines(run(base + ["-p", str(depth), "-n", "0"]).stdout):
        if d.get("n_prompt") == depth and d.get("n_gen") == 0:
            pp = d["avg_ts"]
    for d in json_lines(run(base + ["-p", "0", "-n", str(n_gen), "-d", str(depth)]).stdout):
        if d.get("n_gen") == n_gen:
            tg = d["avg_ts"]
    return pp, tg


def axiom_depth_once(axiom, model, threads, prompt, depth, n_gen, kv):
    r = run([axiom, "generate", "--model", model, "--prompt", prompt, "--tokens", str(n_gen), "--ctx", str(depth + n_gen),
             "--temp", "0", "--ignore-eos", "--threads", str(threads), "--kv-type", kv])
    st = json_lines(r.stderr)[-1]
    if st.get("prefill_tokens") != depth or st.get("decode_tokens") != n_gen:
        sys.exit(f"compare: axiom ran {st.get('prefill_tokens')}+{st.get('decode_tokens')} tokens at depth {depth}")
    return st["prefill_tok_s"], st["decode_tok_s"], st["kv_bytes_per_token"]


def depth_cells(a, label, path, threads, log):
    """Decode at depth and prefill of long prompts: (markdown lines, cells)."""
    depths = [int(d) for d in a.depths.split(",") if d]
    if not depths:
        return [], []
    prompts = {d: prompt_of_length(a.axiom, path, a.depth_text, d) for d in depths}
    samples = {}
    for rep in range(a.reps):
        for t in threads:
            for d in depths:
                lpp, ltg = llama_depth_once(a.llama_bench, path, t, d, a.depth_gen, a.kv_type)
                app, atg, kvb = axiom_depth_once(a.axiom, path, t, prompts[d], d, a.depth_gen, a.kv_type)
                s = samples.setdefault((d, t), {"llama_pp": [], "llama_tg": [], "axiom_pp": [], "axiom_tg": []})
                for k, v in (("llama_pp", lpp), ("llama_tg", ltg), ("axiom_pp", app), ("axiom_tg", atg)):
                    s[k].append(v)
                log(f"compare: rep {rep + 1}/{a.reps} {label} depth {d} t={t}: decode axiom {atg:.1f} llama {ltg:.1f}, "
                    f"prefill axiom {app:.1f} llama {lpp:.1f}")
    cells = []
    lines = [
        f"| {label}, KV {a.kv_type} | threads | decode after D: AXIOM | llama.cpp | ratio | prefill of D: AXIOM | llama.cpp | ratio | AXIOM KV bytes/token |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (d, t), s in sorted(samples.items()):
        c = {"model": label, "depth": d, "threads": t, "kv_type": a.kv_type, "axiom_kv_bytes_per_token": kvb}
        for k, v in s.items():
            c[k] = summary(v)
        c["decode_ratio"] = c["axiom_tg"]["median"] / c["llama_tg"]["median"]
        c["prefill_ratio"] = c["axiom_pp"]["median"] / c["llama_pp"]["median"]
        cells.append(c)
        f = lambda x: f"{x['median']:.1f} ({x['min']:.1f}-{x['max']:.1f})"
        lines.append(f"| D = {d} | {t} | {f(c['axiom_tg'])} | {f(c['llama_tg'])} | {c['decode_ratio']:.2f}x "
                     f"| {f(c['axiom_pp'])} | {f(c['llama_pp'])} | {c['prefill_ratio']:.2f}x | {kvb} |")
    return lines, cells


def llama_once(llama_bench, model, threads, n_prompt, n_gen):
    r = run([llama_bench, "-m", model, "-p", str(n_prompt), "-n", str(n_gen), "-r", "1",
             "-t", str(threads), "-o", "jsonl"])
    pp = tg = None
    for d in json_lines(r.stdout):
        if d.get("n_prompt") == n_prompt and d.get("n_gen") == 0:
            pp = d["avg_ts"]
        if d.get("n_gen") == n_gen and d.get("n_prompt") == 0:
            tg = d["avg_ts"]
    return pp, tg


def axiom_once(axiom, model, threads, prompt, n_gen):
    r = run([axiom, "generate", "--model", model, "--prompt", prompt, "--tokens", str(n_gen),
             "--temp", "0", "--ignore-eos", "--threads", str(threads)])
    stats = json_lines(r.stderr)[-1]
    return stats["prefill_tok_s"], stats["decode_tok_s"], stats


def bandwidth_sweep(kernel_bench, threads):
    """The best reading configuration on `threads` threads: kernel-bench's summary line."""
    lines = json_lines(run([kernel_bench, "bw", "--threads", str(threads)]).stdout)
    return [d for d in lines if d.get("bench") == "read_bandwidth"][0]


def bandwidth_once(kernel_bench, threads, cfg):
    """GB/s of `cfg` (a sweep's best configuration) on `threads` threads, median of 3 passes:
    by wall-clock time, and by the slowest thread's CPU time (the same on a quiet machine)."""
    cmd = [kernel_bench, "bw", "--threads", str(threads), "--samples", "3"]
    for k in ("streams", "prefetch", "width"):
        cmd += [f"--{k}", str(cfg[k])]
    d = json_lines(run(cmd).stdout)[0]
    return d["gb_s"], d["cpu_gb_s"]


def sysbench_read(sysbench, threads):
    """`sysbench memory` sequential read rate on `threads` threads (1 GiB block per thread), GB/s."""
    r = run([sysbench, "memory", "--memory-block-size=1G", "--memory-total-size=32G", "--memory-oper=read",
             "--memory-access-mode=seq", f"--threads={threads}", "run"])
    m = re.search(r"transferred \(([0-9.]+) MiB/sec\)", r.stdout)
    return float(m.group(1)) * (1 << 20) / 1e9 if m else None


def summary(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--axiom", required=True)
    ap.add_argument("--kernel-bench", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--model", action="append", required=True, help="LABEL=PATH, repeatable")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--depths", default="512,2048", help="context depths for the depth cells ('' for none)")
    ap.add_argument("--depth-gen", type=int, default=64, help="decode tokens measured after each depth")
    ap.add_argument("--depth-text", default="kernel/engine/testdata/perplexity/gpl-3.0.txt")
    ap.add_argument("--kv-type", default="f16")
    ap.add_argument("--out", required=True, help="directory for the JSON and Markdown results")
    a = ap.parse_args()

    models = [m.split("=", 1) for m in a.model]
    threads = [int(t) for t in a.threads.split(",")]
    log = lambda *x: print(*x, file=sys.stderr, flush=True)

    # One prompt per model: its own tokenizer must give exactly prompt_tokens
    # (Gemma's adds a BOS, SmolLM2's does not).
    prompts = {label: prompt_of(a.axiom, path, a.prompt_tokens) for label, path in models}
    prompt = prompts[models[0][0]]
    log(f"compare: {a.prompt_tokens}-token prompts ready")
    bw_config, sysbench_gb_s = {}, {}
    sysbench = shutil.which("sysbench")
    for t in threads:
        d = bw_config[t] = bandwidth_sweep(a.kernel_bench, t)
        log(f"compare: read bandwidth, {t} thread(s): best of {d['configs']} configurations {d['gb_s']} GB/s "
            f"({d['streams']} streams/thread, prefetch {d['prefetch']}, {d['width']}-byte loads; one-stream AVX2 "
            f"{d['baseline_gb_s']}, worst {d['worst_gb_s']})")
        if sysbench:
            sysbench_gb_s[t] = sysbench_read(sysbench, t)
            log(f"compare: sysbench memory read, {t} thread(s): {sysbench_gb_s[t]:.2f} GB/s")
    bytes_per_token = {}
    for label, path in models:
        bytes_per_token[label] = json_lines(run([a.kernel_bench, "weights", "--model", path]).stdout)[0]["bytes_per_token"]

    samples = {}
    bw_runs = {t: [] for t in threads}
    bw_cpu_runs = {t: [] for t in threads}
    isa = None
    load_before = os.getloadavg()
    for rep in range(a.reps):
        for t in threads:
            by_wall, by_cpu = bandwidth_once(a.kernel_bench, t, bw_config[t])
            bw_runs[t].append(by_wall)
            bw_cpu_runs[t].append(by_cpu)
            log(f"compare: rep {rep + 1}/{a.reps} read bandwidth t={t}: {by_wall:.2f} GB/s (by CPU time {by_cpu:.2f})")
            for label, path in models:
                pp, tg = llama_once(a.llama_bench, path, t, a.prompt_tokens, a.gen_tokens)
                app, atg, st = axiom_once(a.axiom, path, t, prompts[label], a.gen_tokens)
                isa = st.get("isa", isa)
                if st.get("prefill_tokens") != a.prompt_tokens or st.get("decode_tokens") != a.gen_tokens:
                    sys.exit(f"compare: axiom ran {st.get('prefill_tokens')}+{st.get('decode_tokens')} tokens")
                s = samples.setdefault((label, t), {"llama_pp": [], "llama_tg": [], "axiom_pp": [], "axiom_tg": []})
                s["llama_pp"].append(pp)
                s["llama_tg"].append(tg)
                s["axiom_pp"].append(app)
                s["axiom_tg"].append(atg)
                log(f"compare: rep {rep + 1}/{a.reps} {label} t={t}: decode axiom {atg:.1f} llama {tg:.1f}, "
                    f"prefill axiom {app:.1f} llama {pp:.1f}")
    depth_lines, depth_results = depth_cells(a, models[0][0], models[0][1], threads, log)
    load_after = os.getloadavg()
    bw_summary = {t: summary(v) for t, v in bw_runs.items()}
    bw = {t: v["median"] for t, v in bw_summary.items()}

    cells = []
    for (label, t), s in samples.items():
        c = {"model": label, "threads": t}
        for k, v in s.items():
            c[k] = summary(v)
        bound = bw[t] * 1e9 / bytes_per_token[label]
        c["bandwidth_gb_s"] = bw[t]
        c["bytes_per_token"] = bytes_per_token[label]
        c["bound_tok_s"] = bound
        c["decode_ratio"] = c["axiom_tg"]["median"] / c["llama_tg"]["median"]
        c["prefill_ratio"] = c["axiom_pp"]["median"] / c["llama_pp"]["median"]
        c["axiom_bound_fraction"] = c["axiom_tg"]["median"] / bound
        c["llama_bound_fraction"] = c["llama_tg"]["median"] / bound
        cells.append(c)

    def fmt(s):
        return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"

    lines = [
        "| model | threads | decode AXIOM | decode llama.cpp | ratio | prefill AXIOM | prefill llama.cpp | ratio | AXIOM / bw bound | llama.cpp / bw bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c['model']} | {c['threads']} | {fmt(c['axiom_tg'])} | {fmt(c['llama_tg'])} | {c['decode_ratio']:.2f}x "
            f"| {fmt(c['axiom_pp'])} | {fmt(c['llama_pp'])} | {c['prefill_ratio']:.2f}x "
            f"| {100 * c['axiom_bound_fraction']:.0f}% of {c['bound_tok_s']:.0f} | {100 * c['llama_bound_fraction']:.0f}% |"
        )
    if depth_lines:
        lines += ["", f"Depth cells (decode {a.depth_gen} tokens after a context of D; prefill of a D-token prompt):", ""] + depth_lines
    table = "\n".join(lines)
    header = (f"tokens/s, median (min-max) of {a.reps} interleaved runs; decode = {a.gen_tokens} tokens, "
              f"prefill = {a.prompt_tokens}-token prompt; AXIOM isa={isa}; read bandwidth "
              + ", ".join(f"{t} thread(s) {bw[t]:.1f} GB/s ({bw_summary[t]['min']:.1f}-{bw_summary[t]['max']:.1f}; "
                          f"{bw_config[t]['streams']} streams, prefetch {bw_config[t]['prefetch']}, {bw_config[t]['width']}-byte loads)"
                          for t in threads)
              + (" [interleaved with the runs; sysbench memory read " + ", ".join(f"{t} thread(s) {v:.1f} GB/s" for t, v in sysbench_gb_s.items() if v) + "]"
                 if sysbench_gb_s else "")
              + f"; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(header)
    print(table)

    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    result = {"header": header, "cells": cells, "depth_cells": depth_results, "bandwidth_gb_s": bw,
              "bandwidth_runs": bw_summary,
              "bandwidth_cpu_time_runs": {t: summary(v) for t, v in bw_cpu_runs.items()}, "bandwidth_config": bw_config, "sysbench_read_gb_s": sysbench_gb_s, "prompt": prompt,
              "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
              "load_before": load_before, "load_after": load_after}
    with open(os.path.join(a.out, f"compare-{stamp}.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(a.out, f"compare-{stamp}.md"), "w") as f:
        f.write(header + "\n\n" + table + "\n")
    log(f"compare: results in {a.out}/compare-{stamp}.{{json,md}}")


if __name__ == "__main__":
    main()
