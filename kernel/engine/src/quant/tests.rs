//! Quantization tests: the layouts, the reference quantizers' defining
//! properties (checked against independently written formulas), and round trips.

use super::activation::{quantize_block_q8, quantize_row_q8_0, quantize_row_q8_1};
use super::*;
use std::vec;
use std::vec::Vec;

/// Small deterministic generator (xorshift) for test data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    pub(crate) fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Values with a spread of magnitudes and some exact ties/zeros.
    pub(crate) fn weights(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match self.next_u64() % 16 {
                0 => 0.0,
                1 => 0.5 * (i % 3) as f32,
                2 => self.f32() * 100.0,
                3 => self.f32() * 1e-4,
                _ => self.f32(),
            })
            .collect()
    }
}

#[test]
fn block_sizes_match_ggml_type_table() {
    use crate::ggml_type::GgmlType;
    assert_eq!(BlockQ4_0::BYTES, GgmlType::Q4_0.block_bytes());
    assert_eq!(BlockQ4_1::BYTES, GgmlType::Q4_1.block_bytes());
    assert_eq!(BlockQ8_0::BYTES, GgmlType::Q8_0.block_bytes());
    assert_eq!(BlockQ8_1::BYTES, GgmlType::Q8_1.block_bytes());
}

#[test]
fn blocks_round_trip_through_bytes() {
    let mut rng = Rng::new(1);
    let mut buf = [0u8; 36];
    for _ in 0..100 {
        for b in buf.iter_mut() {
            *b = rng.next_u64() as u8;
        }
        let mut out = [0u8; 36];
        BlockQ4_0::read(&buf).write(&mut out);
        assert_eq!(out[..18], buf[..18]);
        BlockQ4_1::read(&buf).write(&mut out);
        assert_eq!(out[..20], buf[..20]);
        BlockQ8_0::read(&buf).write(&mut out);
        assert_eq!(out[..34], buf[..34]);
        BlockQ8_1::read(&buf).write(&mut out);
        assert_eq!(out[..36], buf[..36]);
    }
}

/// Hand-computed Q4_0 block: the element of largest magnitude maps to
/// nibble 0 (value -8 * d with d = max / -8), zero maps to 8.
#[test]
fn q4_0_known_block() {
    let mut x = [0.0f32; 32];
    x[0] = -4.0; // the max-magnitude element, negative: d = 0.5
    x[1] = 1.0; // 1 / 0.5 * -1 ... id = 1/d = 2 -> 2 + 8.5 = 10.5 -> 10
    x[16] = 3.9; // 7.8 + 8.5 = 16.3 -> 16 -> clamped to 15
    x[17] = -0.26; // -0.52 + 8.5 = 7.98 -> 7
    let b = reference::quantize_block_q4_0(&x);
    assert_eq!(f16_to_f32(b.d), 0.5);
    assert_eq!(b.qs[0], 15 << 4); // element 0 is 0, element 16 is 15
    assert_eq!(b.qs[1], 10 | (7 << 4));
    assert_eq!(b.qs[2], 8 | (8 << 4));
}

#[test]
fn q4_1_known_block() {
    let mut x = [1.0f32; 32];
    x[0] = -0.5; // min
    x[31] = 2.5; // max: d = 3 / 15 = 0.2
    let b = reference::quantize_block_q4_1(&x);
    assert_eq!(b.d, f32_to_f16(0.2));
    assert_eq!(f16_to_f32(b.m), -0.5);
    // (1 - -0.5) / 0.2 = 7.5 (in f32 7.4999995 or 7.5000005) + 0.5 -> 7 or 8
    let id = 1.0f32 / ((2.5f32 - -0.5) / 15.0);
    let expect_mid = ((1.0f32 + 0.5) * id + 0.5) as u8;
    assert_eq!(b.qs[1] & 0x0f, expect_mid);
    assert_eq!(b.qs[0] & 0x0f, 0);
    assert_eq!(b.qs[15] >> 4, 15);
}

#[test]
fn q8_0_known_block() {
    let mut x = [0.0f32; 32];
    x[0] = 2.54; // amax: d = 0.02, id = 50
    x[1] = -0.01; // -0.5 rounds away from zero -> -1 (roundf)
    x[2] = 0.03; // 1.5 -> 2
    let b = reference::quantize_block_q8_0(&x);
    assert_eq!(b.d, f32_to_f16(2.54 / 127.0));
    assert_eq!(b.qs[0], 127);
    let id = 1.0 / (2.54f32 / 127.0);
    assert_eq!(b.qs[1] as f32, libm::roundf(-0.01 * id));
    assert_eq!(b.qs[2] as f32, libm::roundf(0.03 * id));
}

#[test]
fn all_zero_blocks_quantize_to_zero_scales() {
    let x = [0.0f32; 32];
    assert_eq!(reference::quantize_block_q4_0(&x).d, 0x8000); // 0.0 / -8 = -0.0, as in C
    assert_eq!(reference::quantize_block_q4_0(&x).qs, [0x88; 16]);
    assert_eq!(reference::quantize_block_q4_1(&x).qs, [0; 16]);
    assert_eq!(reference::quantize_block_q8_0(&x).qs, [0; 32]);
    let a = quantize_block_q8(&x);
    assert_eq!((a.d, a.sum, a.qs), (0.0, 0, [0; 32]));
}

/// Activation quantization uses 127/amax and ties-to-even, unlike the reference.
#[test]
fn activation_q8_rounds_half_to_even() {
    let mut x = [0.0f32; 32];
    x[0] = 127.0; // amax = 127 -> id = 1
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 3.5;
    let a = quantize_block_q8(&x);
    assert_eq!(&a.qs[..4], &[127, 2, -2, 4]);
    assert_eq!(a.sum, 131);
    let r = reference::quantize_block_q8_0(&x);
    assert_eq!(&r.qs[..4], &[127, 3, -3, 4]);
}

#[test]
fn activation_rows_in_ggml_layout() {
    let mut rng = Rng::new(7);
    let x = rng.weights(96);
    let mut q0 = vec![0u8; 3 * 34];
    let mut q1 = vec![0u8; 3 * 36];
    quantize_row_q8_0(&x, &mut q0);
    quantize_row_q8_1(&x, &mut q1);
    for b in 0..3 {
        let a = quantize_block_q8(x[b * 32..][..32].try_into().unwrap());
        let b0 = BlockQ8_0::read(&q0[b * 34..]);
        let b1 = BlockQ8_1::read(&q1[b * 36..]);
        assert_eq!((b0.d, b0.qs), (f32_to_f16(a.d), a.qs));
        assert_eq!((b1.d, b1.qs), (f32_to_f16(a.d), a.qs));
        assert_eq!(
            b1.s,
            f32_to_f16(a.d * a.qs.iter().map(|&q| q as i32).sum::<i32>() as f32)
        );
    }
}

/// Dequantizing a quantized row gives values within half a step of the input
/// (the defining accuracy property of each reference quantizer).
#[test]
fn quantize_dequantize_error_is_within_half_a_step() {
    use crate::ggml_type::GgmlType;
    let mut rng = Rng::new(3);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::F16,
        GgmlType::F32,
    ] {
        let x = rng.weights(32 * 40);
        let mut q = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
        quantize_row(ty, &x, &mut q).unwrap();
        let mut y = vec![0.0f32; x.len()];
        dequantize_row(ty, &q, &mut y).unwrap();
        for (blk, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let (lo, hi) = xb.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let amax = xb.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
            let step = match ty {
                GgmlType::Q4_0 => amax / 8.0,
                GgmlType::Q4_1 => (hi - lo) / 15.0,
                GgmlType::Q8_0 => amax / 127.0,
                _ => 0.0,
            };
            for (&xv, &yv) in xb.iter().zip(yb) {
                let err = (xv - yv).abs();
                // Half a step, plus f16 rounding of the scale and min.
                let tol = match ty {
                    GgmlType::F32 => 0.0,
                    GgmlType::F16 => xv.abs() / 2048.0 + 3e-8,
                    GgmlType::Q4_0 => step * 0.5 + amax * 2e-3 + step * 1e-3,
                    _ => step * 0.5 + amax * 2e-3 + 1e-6,
                };
                // Q4_0 spends level 16 (= +8 d) nowhere: the far side clamps to 15 (= +7 d).
                let tol = if ty == GgmlType::Q4_0 {
                    tol.max(step * 1.001 + amax * 2e-3)
                } else {
                    tol
                };
                assert!(err <= tol, "{ty} block {blk}: {xv} -> {yv} (err {err}, tol {tol})");
            }
        }
    }
}

#[test]
fn bad_rows_are_rejected() {
    use crate::ggml_type::GgmlType;
    let mut out = [0.0f32; 32];
    assert_eq!(
        dequantize_row(GgmlType::IQ2_XS, &[0; 74], &mut out),
        Err(QuantError::Unsupported(GgmlType::IQ2_XS))
    );
    // A K-quant row must be whole super-blocks of 256, and exactly as long as its blocks.
    assert_eq!(
        dequantize_row(GgmlType::Q4_K, &[0; 144], &mut out),
        Err(QuantError::RaggedRow { ty: GgmlType::Q4_K, elems: 32 })
    );
    let mut long = [0.0f32; 256];
    assert_eq!(
        dequantize_row(GgmlType::Q6_K, &[0; 209], &mut long),
        Err(QuantError::WrongByteLength { ty: GgmlType::Q6_K, elems: 256, expected: 210, got: 209 })
    );
    assert_eq!(
        quantize_row(GgmlType::Q4_K, &long, &mut [0; 144]),
        Err(QuantError::Unsupported(GgmlType::Q4_K))
    );
    assert!(matches!(
        dequantize_row(GgmlType::Q4_0, &[0; 17], &mut out),
        Err(QuantError::WrongByteLength { .. })
    ));
    let mut out = [0.0f32; 33];
    assert!(matches!(
        dequantize_row(GgmlType::Q8_0, &[0; 34], &mut out),
        Err(QuantError::RaggedRow { .. })
    ));
    assert!(matches!(
        quantize_row(GgmlType::Q4_1, &[0.0; 32], &mut [0; 18]),
        Err(QuantError::WrongByteLength { .. })
    ));
    assert!(std::format!("{}", QuantError::Unsupported(GgmlType::Q4_K)).contains("pack --type"));
}

/// `gen_ggml_goldens.c`'s input: the same LCG, block scales from 1e-3 to 3e4,
/// all-zero blocks and blocks of exact quarter values (rounding ties).
fn golden_input() -> Vec<f32> {
    let mut s: u64 = 0x243F_6A88_85A3_08D3;
    let scale = [1.0f32, 100.0, 1e-3, 0.5, 3e4];
    (0..4096)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let b = i / 32;
            let u = (s >> 40) as f32 / 16777216.0 * 2.0 - 1.0;
            match b % 11 {
                4 => 0.0,
                7 => ((s >> 60) as i32 - 8) as f32 * 0.25,
                _ => u * scale[b % 5],
            }
        })
        .collect()
}

/// Bit-exact against ggml itself: `testdata/ggml_goldens.bin` was written by
/// llama.cpp's own quantizers (ggml-base's `quantize_row_*_ref`, the x86 CPU
/// backend's run-time `quantize_row_q8_0/1`, `ggml_fp32_to_fp16`), see
/// `testdata/gen_ggml_goldens.c`.
#[test]
fn quantizers_match_ggml_bit_for_bit() {
    use crate::ggml_type::GgmlType;
    let golden: &[u8] = include_bytes!("testdata/ggml_goldens.bin");
    let x = golden_input();
    let nb = x.len() / 32;
    let mut at = 0;
    let mut section = |len: usize| {
        let s = &golden[at..at + len];
        at += len;
        s
    };
    for (ty, bytes) in [(GgmlType::Q4_0, 18), (GgmlType::Q4_1, 20), (GgmlType::Q8_0, 34)] {
        let want = section(nb * bytes);
        let mut got = vec![0u8; nb * bytes];
        quantize_row(ty, &x, &mut got).unwrap();
        for b in 0..nb {
            assert_eq!(got[b * bytes..][..bytes], want[b * bytes..][..bytes], "{ty} reference quantizer, block {b}");
        }
    }
    let want = section(nb * 34);
    let mut got = vec![0u8; nb * 34];
    quantize_row_q8_0(&x, &mut got);
    assert_eq!(got, want, "run-time Q8_0 activation quantizer");
    let want = section(nb * 36);
    let mut got = vec![0u8; nb * 36];
    quantize_row_q8_1(&x, &mut got);
    assert_eq!(got, want, "run-time Q8_1 activation quantizer");
    let want = section(x.len() * 2);
    for (i, &v) in x.iter().enumerate() {
        assert_eq!(f32_to_f16(v).to_le_bytes(), want[2 * i..2 * i + 2], "f16 of {v}");
    }
    assert_eq!(at, golden.len());
}

#[test]
fn q4_k_scales_branch_free_equals_get_scale_min_k4() {
    use super::kquants::{scale_min_k4, scales_mins_k4};
    let mut rng = Rng::new(77);
    for _ in 0..2000 {
        let s: [u8; 12] = core::array::from_fn(|_| rng.next_u64() as u8);
        let all = scales_mins_k4(&s);
        for j in 0..8 {
            assert_eq!((all[j], all[8 + j]), scale_min_k4(j, &s), "{s:?} j {j}");
        }
    }
}
