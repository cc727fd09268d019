#!/usr/bin/env python3
"""Conversation turns with and without the KV cache of earlier turns.

Runs the same conversation (LINES, greedy, --tokens N) on the host engine two
ways, REPS times, interleaved:
  reuse:  `axiom generate --chat --interactive`, one process, the turns in a
          row: each turn evaluates only its new tokens (the kernel's
          `interactive=1` does the same);
  whole:  `axiom generate --chat --messages` per turn, the conversation so far
          evaluated from an empty cache (what a chat without memory of its
          cache pays).
Prints, per turn, the tokens evaluated and the median [min..max] of the time
to the first answer token (ttft_ms: prefill) for both, and checks that both
give the same token ids.

Usage: benchmarks/chat/reuse.py AXIOM_BINARY MODEL [--reps N] [--tokens N] [--threads N]
Measure on a quiet machine.
"""
import argparse
import json
import statistics
import subprocess

LINES = [
    "Hi! I am planning a trip to Paris in spring.",
    "What should I see on the first day?",
    "And where can I eat well near the Louvre?",
    "Thanks. How do I get there from the airport?",
]


def stats_lines(stderr):
    return [json.loads(l) for l in stderr.splitlines() if l.startswith('{"prefill_tokens"')]


def run(cmd, stdin=None):
    """stdout (the answers' text) and the statistics lines of one run."""
    p = subprocess.run(cmd, input=stdin, capture_output=True, check=True)
    return p.stdout.decode(errors="replace"), stats_lines(p.stderr.decode(errors="replace"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("axiom")
    ap.add_argument("model")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    base = [a.axiom, "generate", "--model", a.model, "--chat", "--temp", "0", "--tokens", str(a.tokens), "--threads", str(a.threads)]
    reuse = [[] for _ in LINES]
    whole = [[] for _ in LINES]
    for rep in range(a.reps):
        _, turns = run(base + ["--interactive"], stdin=("\n".join(LINES) + "\n/quit\n").encode())
        assert len(turns) == len(LINES), turns
        messages = []
        for i, line in enumerate(LINES):
            messages.append({"role": "user", "content": line})
            text, (w,) = run(base + ["--messages", json.dumps(messages)])
            assert w["ids"] == turns[i]["ids"], f"turn {i}: {w['ids']} != {turns[i]['ids']}"
            reuse[i].append(turns[i])
            whole[i].append(w)
            # The answer's text (one newline ends the streamed answer).
            messages.append({"role": "assistant", "content": text[:-1] if text.endswith("\n") else text})
    print(f"conversation of {len(LINES)} turns, {a.tokens} tokens per answer, {a.threads} thread(s), {a.reps} reps; "
          "ttft_ms median [min..max]")
    print("| turn | context | evaluated (reuse) | ttft reuse | evaluated (whole) | ttft whole |")
    print("|---|---|---|---|---|---|")
    for i in range(len(LINES)):
        def cell(rs):
            v = [r["ttft_ms"] for r in rs]
            return f"{statistics.median(v):.1f} [{min(v):.1f}..{max(v):.1f}]"
        r, w = reuse[i][0], whole[i][0]
        print(f"| {i + 1} | {r['context_tokens']} | {r['prefill_tokens']} | {cell(reuse[i])} | {w['prefill_tokens']} | {cell(whole[i])} |")


if __name__ == "__main__":
    main()
