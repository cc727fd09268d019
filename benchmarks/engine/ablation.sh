#!/usr/bin/env bash
# The kernel measurements behind docs/performance.md's "what was tried":
# kernel-bench on the default model's matrices (and in-memory requantized
# Q4_0 / Q8_0 copies), one thread, thread CPU time (robust to other load):
#   1. compute only: one 576x576 matrix (blk.0.attn_q) that stays in cache,
#      ggml layout vs packed layout, per type  -> ns per 32-weight row block
#   2. the whole decode step's matmuls (all layers + output head), Q4_1:
#      ggml vs packed, software prefetch distance 0 / 1 / 4 / 8 / 16 KiB,
#      2 MiB pages on / off for the packed copies
#   3. prefill: 64 tokens in one batch vs one at a time
#   4. the new block types (Q4_K, Q5_0, Q6_K) on Gemma 3 270M Q4_K_M, if cached: packed Q5_0 on it and
#      on SmolLM2 Q5_0; packed Q2_K..Q6_K vs their ggml layout on it and on the default model's
#      Q4_K_M / Q5_K_M / Q6_K / Q2_K / Q2_K pure requantizations
# Usage: benchmarks/engine/ablation.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:-$(tools/fetch-model.sh)}"
cargo build --quiet --release -p axiom-kernel-bench
kb="${CARGO_TARGET_DIR:-target}/release/kernel-bench"
field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }

echo "## compute only (blk.0.attn_q, in cache): ns per row block (CPU time, best of 400)"
for ty in q4_0 q4_1 q8_0; do
    g=$("$kb" matmuls --model "$model" --as "$ty" --only blk.0.attn_q --iters 400 | field ns_per_row_block_cpu)
    p=$("$kb" matmuls --model "$model" --as "$ty" --only blk.0.attn_q --iters 400 --packed | field ns_per_row_block_cpu)
    echo "$ty: ggml layout $g, packed $p"
done

echo "## whole decode step matmuls, Q4_1, 1 thread: ms (CPU time, min of 30)"
for layout in "" --packed; do
    for pf in 0 1024 4096 8192 16384; do
        ms=$(AXIOM_PF=$pf "$kb" matmuls --model "$model" --iters 30 $layout | field cpu_ms_min)
        echo "layout=${layout:-ggml} prefetch=$pf: $ms"
    done
done
ms=$(AXIOM_NO_HUGE=1 "$kb" matmuls --model "$model" --iters 30 --packed | field cpu_ms_min)
echo "layout=packed prefetch=8192 4KiB pages: $ms"

echo "## prefill, packed: ms per token (CPU time, min of 5)"
for ty in q4_0 q4_1 q8_0; do
    one=$("$kb" matmuls --model "$model" --as "$ty" --iters 5 --packed --batch 1 | field cpu_ms_min)
    b64=$("$kb" matmuls --model "$model" --as "$ty" --iters 5 --packed --batch 64 | field cpu_ms_min)
    echo "$ty: batch 1 $one, batch 64 $(python3 -c "print(round($b64/64, 3))")"
done

# 4. The new block types in ggml's layout (docs/performance.md), on a real
#    Q4_K_M file when it is cached (tools/fetch-model.sh --model gemma3-270m):
#    blk.0.attn_output is Q4_K, ffn_gate Q5_0, ffn_down Q6_K, attn_v Q8_0.
gemma="${AXIOM_CACHE:-$HOME/.cache/axiom}/models/gemma-3-270m-q4_k_m.gguf"
if [[ -f "$gemma" ]]; then
    echo "## new types, compute only (Gemma 3 270M Q4_K_M blk.0, in cache): ns per row block (CPU time, best of 400)"
    for isa in avx2 avx512 avx512vnni; do
        "$kb" matmuls --model "$gemma" --only blk.0.attn_output --iters 1 --isa "$isa" >/dev/null 2>&1 || continue
        line="$isa:"
        for t in attn_output ffn_gate ffn_down; do
            line="$line $t $("$kb" matmuls --model "$gemma" --only "blk.0.$t" --iters 400 --isa "$isa" | field ns_per_row_block_cpu)"
        done
        line="$line ffn_gate-packed $("$kb" matmuls --model "$gemma" --only blk.0.ffn_gate --iters 400 --isa "$isa" --packed | field ns_per_row_block_cpu)"
        echo "$line"
    done
    echo "## new types, all layers' matrices, 64-token prefill: ms (CPU time, min of 5)"
    echo "ggml layout (Q4_K_M as is): $("$kb" matmuls --model "$gemma" --only blk. --iters 5 --batch 64 | field cpu_ms_min)"
    echo "packed (the types with a packed form; the rest as is): $("$kb" matmuls --model "$gemma" --only blk. --iters 5 --batch 64 --packed | field cpu_ms_min)"
    echo "requantized to packed q4_0: $("$kb" matmuls --model "$gemma" --only blk. --iters 5 --batch 64 --packed --as q4_0 | field cpu_ms_min)"
    echo "## decode step, all layers' matrices: ms (CPU time, min of 30)"
    echo "ggml layout: $("$kb" matmuls --model "$gemma" --only blk. --iters 30 | field cpu_ms_min), packed: $("$kb" matmuls --model "$gemma" --only blk. --iters 30 --packed | field cpu_ms_min)"
fi
smol_q5="${AXIOM_CACHE:-$HOME/.cache/axiom}/models/SmolLM2-135M-Instruct.Q5_0.gguf"
if [[ -f "$smol_q5" ]]; then
    echo "## SmolLM2 Q5_0 (benchmarks/engine/goldens/requantize.sh q5_0): ggml layout vs packed"
    echo "compute only, blk.0.ffn_gate, ns per row block: $("$kb" matmuls --model "$smol_q5" --only blk.0.ffn_gate --iters 400 | field ns_per_row_block_cpu) vs $("$kb" matmuls --model "$smol_q5" --only blk.0.ffn_gate --iters 400 --packed | field ns_per_row_block_cpu)"
    echo "64-token prefill, all layers, ms: $("$kb" matmuls --model "$smol_q5" --only blk. --iters 5 --batch 64 | field cpu_ms_min) vs $("$kb" matmuls --model "$smol_q5" --only blk. --iters 5 --batch 64 --packed | field cpu_ms_min)"
    echo "decode step, all layers, ms: $("$kb" matmuls --model "$smol_q5" --only blk. --iters 30 | field cpu_ms_min) vs $("$kb" matmuls --model "$smol_q5" --only blk. --iters 30 --packed | field cpu_ms_min)"
fi

# 4b. Packed Q2_K..Q6_K (matmul/packed_kquants.rs) against their ggml layout, on Gemma 3 270M
#     Q4_K_M and the default model requantized to Q4_K_M, Q5_K_M, Q6_K, Q2_K (its ffn_down: Q3_K) and
#     Q2_K pure (ffn_down: Q2_K) (requantize.sh), when cached:
#     compute only for one matrix in cache (attn_output: Q4_K in the Q4_K_M files; ffn_down: Q6_K in
#     layer 0 of the Q4_K_M and Q5_K_M files; everything in the Q6_K file; blk.3.ffn_down: Q5_K in the
#     Q5_K_M file, whose other matrices are Q5_1/Q8_0/Q6_K), then a 64-token prefill of all
#     layers' matrices. Without --packed every matrix keeps ggml's layout (for Gemma that includes
#     its Q8_0 matrices, a small part of the prefill).
smol="${AXIOM_CACHE:-$HOME/.cache/axiom}/models/SmolLM2-135M-Instruct"
for m in "$gemma" "$smol.Q4_K_M.gguf" "$smol.Q5_K_M.gguf" "$smol.Q6_K.gguf" "$smol.Q2_K.gguf" "$smol.Q2_K_PURE.gguf"; do
    [[ -f "$m" ]] || continue
    echo "## $(basename "$m"): ggml layout vs packed, ns per row block (CPU time, best of 400) and 64-token prefill ms (min of 5)"
    tensors="blk.0.attn_output blk.0.ffn_down"
    [[ "$m" == *Q5_K_M* ]] && tensors="$tensors blk.3.ffn_down"
    for t in $tensors; do
        g=$("$kb" matmuls --model "$m" --only "$t" --iters 400 | field ns_per_row_block_cpu)
        p=$("$kb" matmuls --model "$m" --only "$t" --iters 400 --packed | field ns_per_row_block_cpu)
        echo "$t: ggml $g, packed $p"
    done
    g=$("$kb" matmuls --model "$m" --only blk. --iters 5 --batch 64 | field cpu_ms_min)
    p=$("$kb" matmuls --model "$m" --only blk. --iters 5 --batch 64 --packed | field cpu_ms_min)
    echo "prefill 64, all layers: ggml $g, packed $p"
done
