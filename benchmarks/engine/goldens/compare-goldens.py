#!/usr/bin/env python3
"""Compares two goldens JSON files of make-goldens.sh (same prompts): token ids must be equal,
logits are compared where both files list the same id at the same rank. Prints the largest
logit difference; exits 1 if any id differs or a difference exceeds --tolerance (default 1e-3).

    compare-goldens.py REFERENCE.json CANDIDATE.json [--tolerance T]
"""
import argparse
import json
import sys

ID_FIELDS = ("name", "prompt", "prompt_ids", "greedy_ids", "greedy_text", "confident_tokens", "confident_text")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("candidate")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    args = ap.parse_args()
    ref = json.load(open(args.reference, encoding="utf-8"))["cases"]
    got = json.load(open(args.candidate, encoding="utf-8"))["cases"]
    problems = []
    if len(ref) != len(got):
        problems.append(f"{len(ref)} cases against {len(got)}")
    max_diff, where, positions = 0.0, None, 0
    for a, b in zip(ref, got):
        problems += [f"{a['name']}: {k} differs" for k in ID_FIELDS if a.get(k) != b.get(k)]
        if len(a["teacher_forced"]) != len(b["teacher_forced"]):
            problems.append(f"{a['name']}: teacher_forced lengths differ")
        for ta, tb in zip(a["teacher_forced"], b["teacher_forced"]):
            positions += 1
            if ta["top_ids"] != tb["top_ids"]:
                problems.append(f"{a['name']} pos {ta['pos']}: top ids {ta['top_ids']} against {tb['top_ids']}")
            for rank, (ia, ib, la, lb) in enumerate(zip(ta["top_ids"], tb["top_ids"], ta["top_logits"], tb["top_logits"])):
                if ia == ib and abs(la - lb) > max_diff:
                    max_diff, where = abs(la - lb), f"{a['name']} pos {ta['pos']} rank {rank}"
    print(f"{len(ref)} cases, {positions} positions, max |logit difference| {max_diff:.4g}" + (f" ({where})" if where else ""))
    if max_diff > args.tolerance:
        problems.append(f"max logit difference {max_diff:.4g} exceeds {args.tolerance}")
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
