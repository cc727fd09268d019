//! The new block types against llama.cpp's own encodings:
//! `kernel/engine/testdata/ggml-quants/<type>.bin` (AXQF, written by
//! `benchmarks/engine/goldens/ggml-quants.c` from ggml itself; format in
//! `benchmarks/engine/goldens/README.md`) hold blocks ggml encoded (including
//! real `llama-quantize` output), ggml's dequantization of them, an activation
//! row and ggml's dot products.
//!
//! - dequantization equals ggml's bit for bit (`==` on the f32 bits);
//! - the matmul gives the same bits on every ISA this CPU has, and is within
//!   the bound of its Q8 activation rounding of the exact product of ggml's
//!   dequantized weights and the float activations (ggml's own dot, with its
//!   coarser per-256 Q8_K activations for the K-quants, is held to the same
//!   kind of bound, so both are close to the truth and to each other).

use axiom_engine::ggml_type::GgmlType;
use axiom_engine::matmul::{ActBuf, Isa, Kernels, WeightMatrix};
use axiom_engine::quant::{dequantize_row, f16_to_f32};

struct Fixture {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    act_block: usize,
    weights: Vec<u8>,
    dequant: Vec<f32>,
    act: Vec<f32>,
    /// The activation as ggml quantized it (Q8_K for the K-quants).
    act_q: Vec<u8>,
    dot: Vec<f32>,
    dot_generic: Vec<f32>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn read(name: &str) -> Fixture {
    let path = axiom_testkit::testdata(&format!("ggml-quants/{name}.bin"));
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[..4], b"AXQF", "{name}: magic");
    assert_eq!(u32_at(&data, 4), 1, "{name}: version");
    let ty = GgmlType::from_id(u32_at(&data, 8)).expect("known type");
    let (blck, bsize) = (u32_at(&data, 12) as usize, u32_at(&data, 16) as usize);
    assert_eq!((blck, bsize), (ty.block_elems(), ty.block_bytes()), "{name}: block geometry agrees with GgmlType");
    let (rows, cols) = (u32_at(&data, 20) as usize, u32_at(&data, 24) as usize);
    let (act_block, act_bytes) = (u32_at(&data, 32) as usize, u32_at(&data, 36) as usize);
    let mut off = 40;
    let mut take = |n: usize| {
        let s = data[off..off + n].to_vec();
        off += n;
        s
    };
    let weights = take(rows * cols / blck * bsize);
    let dequant = f32s(&take(rows * cols * 4));
    let act = f32s(&take(cols * 4));
    let act_q = take(cols / act_block * act_bytes);
    let dot = f32s(&take(rows * 4));
    let dot_generic = f32s(&take(rows * 4));
    assert_eq!(off, data.len(), "{name}: trailing bytes");
    Fixture { ty, rows, cols, act_block, weights, dequant, act, act_q, dot, dot_generic }
}

const NAMES: [&str; 9] = ["q5_0", "q4_K", "q6_K", "q5_1", "iq4_nl", "q5_K", "q3_K", "q2_K", "bf16"];

#[test]
fn dequantization_equals_ggml_bit_for_bit() {
    for name in NAMES {
        let f = read(name);
        assert_eq!(f.ty.name(), name);
        assert!(f.ty.is_supported(), "{name}");
        let rb = f.ty.row_bytes(f.cols as u64).unwrap() as usize;
        for r in 0..f.rows {
            let mut out = vec![0f32; f.cols];
            dequantize_row(f.ty, &f.weights[r * rb..(r + 1) * rb], &mut out).unwrap();
            let want = &f.dequant[r * f.cols..(r + 1) * f.cols];
            for (c, (got, want)) in out.iter().zip(want).enumerate() {
                assert_eq!(got.to_bits(), want.to_bits(), "{name} row {r} col {c}: {got} vs ggml {want}");
            }
        }
    }
}

/// The K-quants' activations are quantized exactly as ggml's Q8_K: scale,
/// quants and sums of 16, bit for bit, against the fixtures' `act_q`.
#[test]
fn q8_k_activations_equal_ggml() {
    use axiom_engine::quant::activation::{quantize_block_q8_k, QK_K};
    for name in ["q4_K", "q6_K", "q2_K"] {
        let f = read(name);
        assert_eq!(f.act_block, QK_K);
        for (b, (x, q)) in f.act.chunks_exact(QK_K).zip(f.act_q.chunks_exact(292)).enumerate() {
            let ours = quantize_block_q8_k(x.try_into().unwrap());
            assert_eq!(ours.d.to_bits(), u32::from_le_bytes(q[0..4].try_into().unwrap()), "{name} block {b}: d");
            let qs: Vec<i8> = q[4..260].iter().map(|&v| v as i8).collect();
            assert_eq!(&ours.qs[..], &qs[..], "{name} block {b}: quants");
            let bsums: Vec<i32> = q[260..292].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as i32).collect();
            assert_eq!(&ours.bsums[..], &bsums[..], "{name} block {b}: sums");
        }
    }
}

/// `sum over blocks of sum|w| * amax / 254`: the most that rounding the
/// activations to Q8 with per-`block` scales can move a dot product.
fn q8_rounding_bound(w: &[f32], x: &[f32], block: usize) -> f64 {
    w.chunks(block)
        .zip(x.chunks(block))
        .map(|(wb, xb)| {
            let amax = xb.iter().fold(0f32, |m, &v| m.max(v.abs())) as f64;
            wb.iter().map(|&v| v.abs() as f64).sum::<f64>() * amax / 254.0
        })
        .sum()
}

#[test]
fn matmul_is_the_same_on_every_isa_and_close_to_ggml() {
    let isas: Vec<Isa> = Isa::ALL.iter().copied().filter(|&i| Kernels::for_isa(i).is_ok()).collect();
    eprintln!("ISAs on this CPU: {isas:?}");
    for name in NAMES {
        let f = read(name);
        let w = WeightMatrix::new(f.ty, f.rows, f.cols, &f.weights).unwrap();
        let mut results = Vec::new();
        for &isa in &isas {
            let k = Kernels::for_isa(isa).unwrap();
            let mut acts = ActBuf::new(f.cols, 1);
            k.quantize_activations(f.ty, &f.act, 1, &mut acts);
            let mut out = vec![f32::NAN; f.rows];
            k.matmul(w, &acts, 0..f.rows, &mut out);
            results.push((isa, out));
        }
        let (_, want) = &results[0];
        for (isa, got) in &results[1..] {
            let (a, b): (Vec<u32>, Vec<u32>) = (got.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
            assert_eq!(a, b, "{name}: {isa} differs from scalar");
        }
        let rb = f.ty.row_bytes(f.cols as u64).unwrap() as usize;
        for (r, &ours) in want.iter().enumerate() {
            let ours = ours as f64;
            let wr = &f.dequant[r * f.cols..(r + 1) * f.cols];
            if wr.iter().any(|v| !v.is_finite()) {
                continue;
            }
            let exact: f64 = wr.iter().zip(&f.act).map(|(&a, &b)| a as f64 * b as f64).sum();
            let mag: f64 = wr.iter().zip(&f.act).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
            let mut tol = match f.ty {
                GgmlType::BF16 => 2f64.powi(-8) * mag,
                _ => q8_rounding_bound(wr, &f.act, f.act_block) * 1.01,
            } + 1e-5 * mag
                + 1e-30;
            if f.ty == GgmlType::Q5_1 {
                // Q8_1's `s = d * sum(q)` is kept in f16 (as ggml does): it
                // moves the offset term by up to 2^-11 of |m * s| per block.
                let row = &f.weights[r * rb..(r + 1) * rb];
                tol += row
                    .chunks_exact(24)
                    .zip(f.act.chunks(32))
                    .map(|(blk, xb)| {
                        let m = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]])).abs() as f64;
                        let amax = xb.iter().fold(0f32, |m, &v| m.max(v.abs())) as f64;
                        m * (xb.iter().map(|v| v.abs() as f64).sum::<f64>() + 16.0 * amax / 127.0) * 2f64.powi(-11)
                    })
                    .sum::<f64>()
                    * 1.01;
            }
            assert!((ours - exact).abs() <= tol, "{name} row {r}: ours {ours} vs exact {exact} (tolerance {tol})");
            // ggml's dot against its own activation rounding (Q8_K: per 256).
            let ggml_tol = match f.ty {
                GgmlType::BF16 => 2f64.powi(-8) * mag,
                GgmlType::Q5_1 => 1.2e-3 * mag + q8_rounding_bound(wr, &f.act, f.act_block) * 1.01,
                _ => q8_rounding_bound(wr, &f.act, f.act_block) * 1.01,
            } + 1e-5 * mag
                + 1e-30;
            for (kind, g) in [("x86", f.dot[r]), ("generic", f.dot_generic[r])] {
                assert!((g as f64 - exact).abs() <= ggml_tol, "{name} row {r}: ggml {kind} dot {g} vs exact {exact} (tolerance {ggml_tol})");
            }
        }
    }
}
