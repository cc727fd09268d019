#!/usr/bin/env python3
"""Cross-checks the ggml-quants fixtures (kernel/engine/testdata/ggml-quants/*.bin, written by
ggml-quants.c) against the `gguf` Python package's dequantizer (an independent implementation in
numpy), and reports how far ggml's SIMD and portable dot products are from an f64 dot product of
the dequantized values. Run with the interpreter of tools/gguf-py.sh:

    $(tools/gguf-py.sh) benchmarks/engine/goldens/check-quants.py DIR [--verbose]

Exits 1 if a dequantized value differs from gguf's, or a file is malformed.
"""
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, quants

HEADER = struct.Struct("<4s9I")


def read_fixture(path):
    data = path.read_bytes()
    magic, version, qtype, blck, bsize, rows, cols, atype, ablck, absize = HEADER.unpack_from(data)
    if magic != b"AXQF" or version != 1:
        raise ValueError(f"{path}: not an AXQF v1 file")
    off = HEADER.size
    def take(n):
        nonlocal off
        chunk = data[off:off + n]
        if len(chunk) != n:
            raise ValueError(f"{path}: truncated")
        off += n
        return chunk
    f = {"type": qtype, "act_type": atype, "rows": rows, "cols": cols}
    f["weights"] = np.frombuffer(take(rows * cols // blck * bsize), np.uint8).reshape(rows, -1)
    f["dequant"] = np.frombuffer(take(rows * cols * 4), "<f4").reshape(rows, cols)
    f["act"] = np.frombuffer(take(cols * 4), "<f4")
    f["act_q"] = np.frombuffer(take(cols // ablck * absize), np.uint8)
    f["dot"] = np.frombuffer(take(rows * 4), "<f4")
    f["dot_generic"] = np.frombuffer(take(rows * 4), "<f4")
    if off != len(data):
        raise ValueError(f"{path}: {len(data) - off} trailing bytes")
    return f


def dequantize(raw, qtype):
    if qtype == GGMLQuantizationType.Q8_1:  # gguf has no Q8_1: d (f16), s (f16), 32 x i8
        blocks = raw.reshape(-1, 36)
        d = blocks[:, :2].copy().view("<f2").astype(np.float32)
        return (d * blocks[:, 4:].view(np.int8).astype(np.float32)).reshape(-1)
    if qtype == GGMLQuantizationType.Q8_K:  # gguf has no Q8_K: d (f32), 256 x i8, 16 x i16 sums
        blocks = raw.reshape(-1, 292)
        d = blocks[:, :4].copy().view("<f4")
        return (d * blocks[:, 4:260].view(np.int8).astype(np.float32)).reshape(-1)
    return quants.dequantize(raw, qtype).reshape(-1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verbose = "--verbose" in sys.argv
    if len(args) != 1:
        sys.exit(__doc__)
    failed = False
    for path in sorted(Path(args[0]).glob("*.bin")):
        f = read_fixture(path)
        qtype = GGMLQuantizationType(f["type"])
        ours = quants.dequantize(f["weights"], qtype).reshape(f["rows"], f["cols"])
        same = (ours.view(np.uint32) == f["dequant"].view(np.uint32))
        if not same.all():
            failed = True
            r, c = np.argwhere(~same)[0]
            print(f"{path.name}: {np.count_nonzero(~same)} dequantized values differ from gguf's; "
                  f"first at row {r} col {c}: ggml {f['dequant'][r, c]!r} gguf {ours[r, c]!r}")
        act = dequantize(f["act_q"], GGMLQuantizationType(f["act_type"]))
        exact = f["dequant"].astype(np.float64) @ act.astype(np.float64)
        scale = np.abs(f["dequant"].astype(np.float64)) @ np.abs(act.astype(np.float64))
        rel = lambda d: np.max(np.abs(d.astype(np.float64) - exact) / np.maximum(scale, 1e-30))
        line = (f"{path.name}: {f['rows']}x{f['cols']} {qtype.name} dequant {'==' if same.all() else '!='} gguf; "
                f"dot vs f64: simd {rel(f['dot']):.2e}, generic {rel(f['dot_generic']):.2e} (relative to sum|w*a|); "
                f"simd == generic in {np.count_nonzero(f['dot'] == f['dot_generic'])}/{f['rows']} rows")
        if verbose or not same.all():
            print(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
