#!/usr/bin/env python3
"""Writes a tiny synthetic GGUF model of an architecture that has no small real file, with the real
tokenizer of one of llama.cpp's vocabulary files and deterministic random F32 weights at realistic
scales. Run by synth-models.sh with the interpreter of tools/gguf-py.sh:

    synth-model.py ARCH VOCAB.gguf OUT.gguf      ARCH: llama3 | qwen2 | qwen3

The weights come from a counter-based generator (SplitMix64 of the element index, keyed by the
SHA-256 of "<arch>:<tensor name>"), not from numpy's random streams, so the bytes do not depend on
the numpy version: the same file on every machine (synth-models.sh checks its SHA-256).
"""
import hashlib
import math
import sys

import numpy as np
import gguf

# One shape for all three (a GQA model: 4 query heads, 2 KV heads), with per-architecture extras.
COMMON = dict(n_embd=64, n_head=4, n_head_kv=2, n_ff=192, n_layer=3)
ARCHS = {
    # Llama 3.2-style: BOS added, RoPE base 500000 with Llama 3.1's rope_freqs scaling, untied output.
    "llama3": dict(arch="llama", head_dim=16, rope_base=500000.0, eps=1e-5, ctx=8192, add_bos=True,
                   rope_freqs=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_ctx=64),
                   tied=False, qkv_bias=False, qk_norm=False),
    # Qwen 2: biases on Q, K and V, NEOX RoPE base 1e6, no BOS, tied output.
    "qwen2": dict(arch="qwen2", head_dim=16, rope_base=1000000.0, eps=1e-6, ctx=32768, add_bos=False,
                  rope_freqs=None, tied=True, qkv_bias=True, qk_norm=False),
    # Qwen 3: per-head RMSNorm of Q and K, head size 32 != n_embd / n_head, no biases, tied output.
    "qwen3": dict(arch="qwen3", head_dim=32, rope_base=1000000.0, eps=1e-6, ctx=32768, add_bos=False,
                  rope_freqs=None, tied=True, qkv_bias=False, qk_norm=True),
}

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def uniform(key: str, n: int) -> np.ndarray:
    """n values uniform in [-1, 1), from SplitMix64 over the indices, keyed by `key`."""
    seed = np.uint64(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    with np.errstate(over="ignore"):
        z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + seed
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2.0 - 1.0)


def weight(name: str, arch: str, shape, std: float, mean: float = 0.0) -> np.ndarray:
    """A tensor of numpy `shape` (rows, cols = GGUF ne1, ne0), uniform with the given mean and std."""
    n = int(np.prod(shape))
    return (mean + uniform(f"{arch}:{name}", n) * std * math.sqrt(3.0)).astype(np.float32).reshape(shape)


def llama3_rope_factors(head_dim, base, factor, low_freq_factor, high_freq_factor, original_ctx):
    """rope_freqs as convert_hf_to_gguf.py writes them for rope_type "llama3" (one per dimension pair)."""
    low_wavelen = original_ctx / low_freq_factor
    high_wavelen = original_ctx / high_freq_factor
    factors = []
    for i in range(0, head_dim, 2):
        wavelen = 2.0 * math.pi * base ** (i / head_dim)
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1.0 / ((1.0 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ARCHS:
        sys.exit(__doc__)
    name, vocab_path, out_path = sys.argv[1:]
    cfg = {**COMMON, **ARCHS[name]}
    arch, hd = cfg["arch"], cfg["head_dim"]
    n_embd, n_ff, n_head, n_kv = cfg["n_embd"], cfg["n_ff"], cfg["n_head"], cfg["n_head_kv"]

    vocab = gguf.GGUFReader(vocab_path)
    n_vocab = len(vocab.fields["tokenizer.ggml.tokens"].contents())

    w = gguf.GGUFWriter(out_path, arch)
    w.add_name(f"axiom-synthetic-{name}")
    w.add_context_length(cfg["ctx"])
    w.add_embedding_length(n_embd)
    w.add_block_count(cfg["n_layer"])
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(cfg["rope_base"])
    w.add_layer_norm_rms_eps(cfg["eps"])
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, field in vocab.fields.items():
        if key.startswith("tokenizer."):
            sub = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(key, field.contents(), field.types[0], sub)
    w.add_add_bos_token(cfg["add_bos"])
    w.add_add_eos_token(False)

    def add(tname, shape, std, mean=0.0):
        w.add_tensor(tname, weight(tname, name, shape, std, mean))

    # Small embeddings (std 0.1) keep a token's own embedding from dominating the residual stream, so
    # a tied output head does not just repeat the input token: the layers decide. Output norm weights
    # near 8 then give logits of std ~6, with clear margins between the top tokens.
    add("token_embd.weight", (n_vocab, n_embd), 0.1)
    add("output_norm.weight", (n_embd,), 1.0, 8.0)
    if not cfg["tied"]:
        add("output.weight", (n_vocab, n_embd), 0.1)
    if cfg["rope_freqs"]:
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(hd, cfg["rope_base"], **cfg["rope_freqs"]))
    for i in range(cfg["n_layer"]):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (n_embd,), 0.1, 1.0)
        add(p + "attn_q.weight", (n_head * hd, n_embd), 1.0 / math.sqrt(n_embd))
        add(p + "attn_k.weight", (n_kv * hd, n_embd), 1.0 / math.sqrt(n_embd))
        add(p + "attn_v.weight", (n_kv * hd, n_embd), 1.0 / math.sqrt(n_embd))
        add(p + "attn_output.weight", (n_embd, n_head * hd), 1.0 / math.sqrt(n_head * hd))
        if cfg["qkv_bias"]:
            add(p + "attn_q.bias", (n_head * hd,), 0.5)
            add(p + "attn_k.bias", (n_kv * hd,), 0.5)
            add(p + "attn_v.bias", (n_kv * hd,), 0.1)
        if cfg["qk_norm"]:
            add(p + "attn_q_norm.weight", (hd,), 0.2, 1.0)
            add(p + "attn_k_norm.weight", (hd,), 0.2, 1.0)
        add(p + "ffn_norm.weight", (n_embd,), 0.1, 1.0)
        add(p + "ffn_gate.weight", (n_ff, n_embd), 1.0 / math.sqrt(n_embd))
        add(p + "ffn_up.weight", (n_ff, n_embd), 1.0 / math.sqrt(n_embd))
        add(p + "ffn_down.weight", (n_embd, n_ff), 1.0 / math.sqrt(n_ff))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
