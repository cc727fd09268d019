#!/usr/bin/env python3
"""llama-perplexity's numbers on one text for the engine's perplexity tests: runs llama.cpp's
`llama-perplexity` (benchmarks/engine/build-llama.sh) for each model and context below, with an F16
KV cache and flash attention off and on, and writes OUT.json (format: the README beside the text).

    perplexity.py TEXT OUT.json        (run by regenerate.sh)

Quiet on success. Models come from tools/fetch-model.sh and requantize.sh.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
GOLDENS = REPO / "benchmarks/engine/goldens"

# (model name, how to get its path, contexts)
RUNS = [
    ("gemma3-270m Q4_K_M", ["tools/fetch-model.sh", "--model", "gemma3-270m"], [512, 2048]),
    ("smollm2-135m Q4_K_M", ["benchmarks/engine/goldens/requantize.sh", "Q4_K_M"], [512]),
    ("smollm2-135m Q4_1", ["tools/fetch-model.sh"], [512, 2048]),
]


def run(cmd, **kw):
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        sys.exit(f"perplexity: {' '.join(map(str, cmd))} failed")
    return done


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    text, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    perplexity = run(["benchmarks/engine/build-llama.sh", "llama-perplexity"]).stdout.strip()
    build = Path(run(["benchmarks/engine/build-llama.sh", "--build-dir"]).stdout.strip())
    counter = run([str(GOLDENS / "build-tool.sh"), "goldens"]).stdout.strip()
    commit = re.search(r'LLAMA_COMMIT = "(\w+)"', (build / "common/build-info.cpp").read_text()).group(1)
    threads = os.cpu_count() or 1

    results = []
    for name, fetch, contexts in RUNS:
        model = Path(run(fetch).stdout.strip().splitlines()[-1])
        n_tokens = int(run([counter, "count", str(model), str(text)]).stdout)
        for n_ctx in contexts:
            for flash_attn in ("off", "on"):
                args = ["-c", str(n_ctx), "-ctk", "f16", "-ctv", "f16", "-fa", flash_attn]
                done = run([perplexity, "-m", str(model), "-f", str(text), *args, "-t", str(threads)],
                           env={**os.environ, "LLAMA_LOG_COLORS": "0"})
                log = done.stdout + done.stderr
                final = re.search(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", log)
                header = re.search(r"perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), n_seq=(\d+)", log)
                if not final or not header:
                    sys.exit(f"perplexity: cannot read llama-perplexity's output for {name} at {n_ctx}:\n{log[-2000:]}")
                n_chunks = int(header.group(1))
                results.append({
                    "model": name,
                    "file": model.name,
                    "sha256": sha256(model),
                    "n_ctx": n_ctx,
                    "type_k": "f16",
                    "type_v": "f16",
                    "flash_attn": flash_attn,
                    "command": " ".join(["llama-perplexity", "-m", model.name, "-f", text.name, *args, "-t", "N"]),
                    "text_tokens": n_tokens,
                    "n_chunks": n_chunks,
                    "n_batch": int(header.group(3)),
                    "n_seq": int(header.group(4)),
                    "scored_tokens": n_chunks * (n_ctx - n_ctx // 2 - 1),
                    "ppl": float(final.group(1)),
                    "ppl_stderr": float(final.group(2)),
                    "running_ppl": [float(v) for v in re.findall(r"\[\d+\]([\d.]+),", log)],
                })

    doc = {
        "reference": f"llama.cpp {commit} (vendored in llama-cpp-python "
                     f"{build.name.removeprefix('build-')}), llama-perplexity, CPU, made by "
                     "benchmarks/engine/goldens/perplexity.py",
        "text": {"file": text.name, "bytes": text.stat().st_size, "sha256": sha256(text)},
        "runs": results,
    }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
