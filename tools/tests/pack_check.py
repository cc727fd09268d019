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
  pack_check.py unsupported OUT.gguf            write a model with a bf16 tensor

Exit status 0 on success; failures are printed one per line.
"""

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
        expected_bytes = np.ascontiguousarray(expected).view(np.uint8).tobytes()
        got_bytes = np.ascontiguousarray(got).view(np.uint8).tobytes()
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
        bf16 = (matrix(4, 32).view(np.uint32) >> 16).astype(np.uint16)
        w.add_tensor("blk.1.ffn_extra.weight", bf16.view(np.uint8), raw_dtype=Q.BF16)
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
    if len(argv) == 3 and argv[1] == "unsupported":
        return synthetic(argv[2], unsupported=True)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
