#!/usr/bin/env python3
"""Independent checks of `axiom pack` images with llama.cpp's own Python GGUF
package (`gguf` on PyPI): its reader must load the image, and every tensor
must be either byte-identical to the source or equal to the `gguf` package's
numpy reference quantizers applied to the dequantized source.

Usage:
  pack_check.py check SOURCE.gguf PACKED.gguf...  verify each PACKED against SOURCE
  pack_check.py synthetic OUT.gguf              write a small model with f32,
                                                f16 and q8_0 tensors (edge cases
                                                included) to pack in tests
  pack_check.py unsupported OUT.gguf            write a model with an iq2_xs tensor
  pack_check.py mixed OUT.gguf FIXTURES         write a two-layer model with a tensor of
                                                every type of FIXTURES (the AXQF files of
                                                kernel/engine/testdata/ggml-quants: blocks
                                                llama.cpp encoded) in each layer

Exit status 0 on success; failures are printed one per line.
"""

import glob
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

ALIGN = 4096
OWNED_KEYS = ("general.alignment", "general.file_type", "general.quantization_version")


def field_value(field):
    """A metadata value as plain Python data, for comparison."""
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        if field.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]) for i in field.data]
        return [field.parts[i].tolist() for i in field.data]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[-1])
    return field.parts[-1].tolist()


def tensor_bytes(t):
    return np.ascontiguousarray(t.data).view(np.uint8).tobytes()


def zero_block_signs(raw, qtype):
    """Clears the sign bit of every f16 scale (and Q4_1 minimum) that is zero.
    Where a block's scale or minimum is zero, llama.cpp's C reference
    quantizer (which pack reproduces) takes the sign of that zero from its
    scan order (Q4_0: `d = 0.0f / -8` = -0 for an all-zero block; Q4_1: `min`
    is the first of the smallest elements, +0 or -0), while the `gguf`
    package's numpy quantizer takes it from argmax/min over signed zeros;
    either sign decodes to the same values. Sources that dequantize to -0.0
    (a zero level times a negative scale) have such blocks."""
    fields = {Q.Q4_0: (0,), Q.Q4_1: (0, 2)}.get(qtype)
    if fields is None:
        return raw
    size = {Q.Q4_0: 18, Q.Q4_1: 20}[qtype]
    blocks = raw.reshape(-1, size)
    for f in fields:
        zero = (blocks[:, f] == 0) & ((blocks[:, f + 1] & 0x7F) == 0)
        blocks[zero, f + 1] &= 0x7F
    return raw


def check(src, packed_path):
    out = gguf.GGUFReader(packed_path)  # loading at all is the first check
    errors = []

    # Metadata: every source key survives with its value and type (except the
    # keys pack owns), and the layout keys are present.
    for key, field in src.fields.items():
        if key.startswith("GGUF.") or key.startswith("axiom.") or key in OWNED_KEYS:
            continue
        if key not in out.fields:
            errors.append(f"metadata {key} missing")
        elif field.types != out.fields[key].types or field_value(field) != field_value(out.fields[key]):
            errors.append(f"metadata {key} differs")
    if field_value(out.fields["general.alignment"]) != [ALIGN]:
        errors.append("general.alignment is not 4096")
    for key in ("axiom.pack.version", "axiom.globals.offset", "axiom.globals.size", "axiom.globals.crc32c",
                "axiom.layer.count", "axiom.layer.offset", "axiom.layer.size", "axiom.layer.crc32c"):
        if key not in out.fields:
            errors.append(f"metadata {key} missing")

    # Tensors.
    src_tensors = {t.name: t for t in src.tensors}
    if sorted(src_tensors) != sorted(t.name for t in out.tensors):
        errors.append("tensor names differ")
    converted = 0
    for t in out.tensors:
        s = src_tensors.get(t.name)
        if s is None:
            continue
        if t.data_offset % ALIGN:
            errors.append(f"{t.name}: data at {t.data_offset}, not 4 KiB aligned")
        if list(s.shape) != list(t.shape):
            errors.append(f"{t.name}: shape {list(t.shape)} != {list(s.shape)}")
            continue
        if s.tensor_type == t.tensor_type:
            if tensor_bytes(s) != tensor_bytes(t):
                errors.append(f"{t.name}: copied bytes differ")
            continue
        converted += 1
        rows = int(np.prod(s.shape[1:]))
        values = dequantize(np.asarray(s.data), s.tensor_type).reshape(rows, int(s.shape[0])).astype(np.float32)
        expected = quantize(values, t.tensor_type)
        got = np.asarray(t.data).reshape(expected.shape)
        expected_u8 = np.ascontiguousarray(expected).view(np.uint8).reshape(-1)
        got_u8 = np.ascontiguousarray(got).view(np.uint8).reshape(-1).copy()
        expected_u8 = zero_block_signs(expected_u8.copy(), t.tensor_type)
        got_u8 = zero_block_signs(got_u8, t.tensor_type)
        expected_bytes = expected_u8.tobytes()
        got_bytes = got_u8.tobytes()
        if expected_bytes != got_bytes:
            diff = sum(a != b for a, b in zip(expected_bytes, got_bytes))
            errors.append(f"{t.name}: {s.tensor_type.name} -> {t.tensor_type.name} differs from the reference in {diff} bytes")
    for e in errors:
        print(f"{packed_path}: {e}")
    print(f"pack_check: {packed_path}: {len(out.tensors)} tensors, {converted} requantized checked against "
          f"the gguf-py reference, {len(errors)} errors")
    return 0 if not errors else 1


def synthetic(path, unsupported=False):
    """A two-layer llama-shaped model with f32 / f16 / q8_0 tensors, values
    chosen to hit quantizer edge cases (zero blocks, ties, huge ranges)."""
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(path, "llama")
    n_embd, n_ff, n_vocab = 64, 96, 40
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([chr(0x21 + i) for i in range(n_vocab)])

    def matrix(rows, cols):
        m = rng.standard_normal((rows, cols)).astype(np.float32)
        if rows >= 4 and cols >= 32:
            m[0, :32] = 0.0                       # an all-zero block
            m[1, :32] = 1.0                       # a constant block
            m[2, 5] = 1e4                         # a huge outlier
            m[3, :32] = np.linspace(-8, 8, 32)    # exact ties at the quantizer's steps
        return m

    w.add_tensor("token_embd.weight", matrix(n_vocab, n_embd).astype(np.float16))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    for layer in range(2):
        p = f"blk.{layer}."
        w.add_tensor(p + "attn_norm.weight", rng.standard_normal(n_embd).astype(np.float32))
        w.add_tensor(p + "ffn_norm.weight", rng.standard_normal(n_embd).astype(np.float32))
        w.add_tensor(p + "attn_q.weight", matrix(n_embd, n_embd))                       # f32
        w.add_tensor(p + "attn_k.weight", matrix(n_embd // 2, n_embd).astype(np.float16))  # f16
        w.add_tensor(p + "attn_v.weight", matrix(n_embd // 2, n_embd).astype(np.float16))
        q8 = quantize(matrix(n_embd, n_embd), Q.Q8_0)
        w.add_tensor(p + "attn_output.weight", q8, raw_dtype=Q.Q8_0)
        w.add_tensor(p + "ffn_gate.weight", matrix(n_ff, n_embd))
        w.add_tensor(p + "ffn_up.weight", matrix(n_ff, n_embd).astype(np.float16))
        w.add_tensor(p + "ffn_down.weight", matrix(n_embd, n_ff))
        # A matrix whose rows are not whole blocks: pack must keep its type.
        w.add_tensor(p + "attn_odd.weight", matrix(3, 20))
    if unsupported:
        # IQ2_XS (74-byte super-blocks of 256), a type AXIOM does not run.
        raw = rng.integers(0, 256, size=(4, 74), dtype=np.uint8)
        raw[:, :2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
        w.add_tensor("blk.1.ffn_extra.weight", raw, raw_dtype=Q.IQ2_XS)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


def read_axqf(path):
    """(type, rows, weights as uint8 rows) of an AXQF fixture (format:
    benchmarks/engine/goldens/README.md)."""
    data = open(path, "rb").read()
    magic, version, qtype, blck, bsize, rows, cols = struct.unpack_from("<4s6I", data)
    if magic != b"AXQF" or version != 1:
        raise ValueError(f"{path}: not an AXQF v1 file")
    n = rows * cols // blck * bsize
    return Q(qtype), np.frombuffer(data[40:40 + n], np.uint8).reshape(rows, -1)


def mixed(path, fixtures):
    """Two layers, each with one 8 x 512 matrix of every fixture type (named
    `blk.N.ffn_<type>.weight`), f32 norms, and a Q6_K token embedding."""
    files = sorted(glob.glob(os.path.join(fixtures, "*.bin")))
    if not files:
        raise ValueError(f"no AXQF fixtures in {fixtures}")
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(2)
    w.add_embedding_length(512)
    for layer in range(2):
        w.add_tensor(f"blk.{layer}.attn_norm.weight", np.ones(512, dtype=np.float32))
        for f in files:
            qtype, raw = read_axqf(f)
            w.add_tensor(f"blk.{layer}.ffn_{qtype.name.lower()}.weight", raw.copy(), raw_dtype=qtype)
    qtype, raw = read_axqf(os.path.join(fixtures, "q6_K.bin"))
    w.add_tensor("token_embd.weight", raw.copy(), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "check":
        src = gguf.GGUFReader(argv[2])
        return max(check(src, packed) for packed in argv[3:])
    if len(argv) == 3 and argv[1] == "synthetic":
        return synthetic(argv[2])
    if len(argv) == 4 and argv[1] == "mixed":
        return mixed(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "unsupported":
        return synthetic(argv[2], unsupported=True)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
