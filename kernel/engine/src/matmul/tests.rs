//! Every ISA path against the scalar reference, bit for bit, on random data
//! and odd shapes; plus range/batch independence and a float sanity check.
//! The checks are functions of the kernels under test; `isa_tests!` makes
//! one test per check and ISA, ignored (with the reason) on a machine that
//! lacks the ISA (cfgs from build.rs).

use super::*;
use crate::quant::tests::Rng;
use crate::quant::{dequantize_row, f32_to_f16, quantize_row};
use std::vec;
use std::vec::Vec;

const TYPES: [GgmlType; 14] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q8_0,
    GgmlType::F16,
    GgmlType::F32,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::IQ4_NL,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::BF16,
];

/// The types with a packed layout of 32-weight blocks (Q4_K / Q6_K pack
/// 256-weight super-blocks: their own shapes below).
const PACKED_TYPES: [GgmlType; 6] = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL];

/// Byte offsets of the f16 scale fields inside a block of `ty`.
fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[0],
    }
}

/// Whether the engine has a quantizer for `ty` (the other types get random blocks).
fn can_quantize(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// Random weights of type `ty`: half the time quantized from floats (realistic
/// blocks), otherwise random bytes with sane scales (every quant value,
/// including Q8_0's -128, appears).
pub(crate) fn random_matrix(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut data = vec![0u8; rows * rb];
    for row in data.chunks_exact_mut(rb) {
        if ty == GgmlType::BF16 {
            let x = rng.weights(cols);
            for (b, &v) in row.chunks_exact_mut(2).zip(&x) {
                b.copy_from_slice(&crate::quant::kquants::f32_to_bf16(v).to_le_bytes());
            }
        } else if matches!(ty, GgmlType::F32 | GgmlType::F16) || (can_quantize(ty) && rng.next_u64().is_multiple_of(2)) {
            let x = rng.weights(cols);
            quantize_row(ty, &x, row).unwrap();
        } else {
            for b in row.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            let bb = ty.block_bytes();
            for blk in row.chunks_exact_mut(bb) {
                for &at in scale_offsets(ty) {
                    let v = rng.f32() * 0.05;
                    blk[at..at + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
                }
            }
        }
    }
    data
}

/// The kernels of `isa` for a test that build.rs found the machine can run.
pub(crate) fn isa_kernels(isa: Isa) -> Kernels {
    Kernels::for_isa(isa).unwrap_or_else(|_| panic!("this test was built on a machine with {isa}, but this CPU lacks it: rebuild the tests here (cargo clean -p axiom-engine)"))
}

fn run(k: &Kernels, w: &WeightMatrix, x: &[f32], batch: usize, rows: Range<usize>) -> Vec<f32> {
    let mut acts = ActBuf::new(w.cols, batch);
    k.quantize_activations(w.ty, x, batch, &mut acts);
    let mut out = vec![f32::NAN; batch * rows.len()];
    k.matmul(w, &acts, rows, &mut out);
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn matches_scalar_bit_for_bit(k: Kernels) {
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let mut rng = Rng::new(11);
    for ty in TYPES {
        let col_choices: &[usize] = if ty.block_elems() == 1 {
            &[1, 3, 8, 31, 32, 37, 64, 100, 576]
        } else if ty.block_elems() == 256 {
            &[256, 512, 1536]
        } else {
            &[32, 64, 96, 224, 576, 1536]
        };
        for &cols in col_choices {
            for rows in [1usize, 3, 7, 8, 9, 16, 17, 61] {
                for batch in [1usize, 2, 5] {
                    let data = random_matrix(&mut rng, ty, rows, cols);
                    let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
                    let x = rng.weights(cols * batch);
                    let want = run(&scalar, &w, &x, batch, 0..rows);
                    assert!(want.iter().all(|v| v.is_finite()));
                    let got = run(&k, &w, &x, batch, 0..rows);
                    assert_eq!(bits(&got), bits(&want), "{} {ty} {rows}x{cols} batch {batch}", k.isa());
                }
            }
        }
    }
}

/// Packed weights give the same bits as ggml-layout weights (computed by
/// the scalar reference), for any row range (including ranges that cut
/// through a group).
fn packed_layout_matches_ggml_layout_bit_for_bit(k: Kernels) {
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let mut rng = Rng::new(31);
    for ty in PACKED_TYPES.into_iter().chain([GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K]) {
        let shapes: &[(usize, usize)] = if ty.block_elems() == 256 {
            &[(1, 256), (7, 512), (8, 256), (13, 1536), (40, 768), (17, 256)]
        } else {
            &[(1, 32), (7, 64), (8, 96), (13, 576), (40, 224), (17, 1536)]
        };
        for &(rows, cols) in shapes {
            // 17 and 19: a full tile of 16 tokens, then 1 or 3.
            for batch in [1usize, 3, 17, 19] {
                let data = random_matrix(&mut rng, ty, rows, cols);
                let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
                let p = PackedMatrix::pack(&w).unwrap();
                assert_eq!(p.bytes().len(), packed_bytes(ty, rows, cols).unwrap());
                let x = rng.weights(cols * batch);
                let want = run(&scalar, &w, &x, batch, 0..rows);
                for range in [0..rows, rows / 3..rows, 0..rows.div_ceil(2), rows - 1..rows] {
                    let mut acts = ActBuf::new(cols, batch);
                    k.quantize_activations(ty, &x, batch, &mut acts);
                    let mut got = vec![f32::NAN; batch * range.len()];
                    k.matmul(&p, &acts, range.clone(), &mut got);
                    for t in 0..batch {
                        for r in range.clone() {
                            assert_eq!(
                                got[t * range.len() + r - range.start].to_bits(),
                                want[t * rows + r].to_bits(),
                                "{} packed {ty} {rows}x{cols} row {r} of {range:?} token {t}",
                                k.isa()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn packing_keeps_every_block() {
    let mut rng = Rng::new(4);
    for ty in PACKED_TYPES {
        let (rows, cols) = (19, 160);
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
        let p = PackedMatrix::pack(&w).unwrap();
        assert_eq!(p.bytes().as_ptr() as usize % 64, 0, "groups start on cache lines");
        let copy = p.clone();
        assert_eq!(copy.bytes(), p.bytes());
        assert_eq!(copy.bytes().as_ptr() as usize % 64, 0, "a copy is aligned too");
        let bb = ty.block_bytes();
        for r in 0..rows {
            for b in 0..cols / 32 {
                let mut blk = [0u8; packed::MAX_BLOCK_BYTES];
                packed::read_block(&p.view(), r, b, &mut blk);
                assert_eq!(blk[..bb], w.row(r)[b * bb..(b + 1) * bb], "{ty} row {r} block {b}");
            }
            let (mut from_ggml, mut from_packed) = (vec![0f32; cols], vec![0f32; cols]);
            Matrix::from(&w).dequantize_row(r, &mut from_ggml).unwrap();
            Matrix::from(&p).dequantize_row(r, &mut from_packed).unwrap();
            assert_eq!(bits(&from_packed), bits(&from_ggml), "{ty} row {r} dequantized");
        }
    }
    let f = [0u8; 64];
    let w = WeightMatrix::new(GgmlType::F32, 2, 8, &f).unwrap();
    assert_eq!(
        PackedMatrix::pack(&w).unwrap_err(),
        KernelError::UnsupportedType(GgmlType::F32)
    );
    assert!(matches!(
        PackedView::new(GgmlType::Q4_0, 9, 32, &[0; 100]),
        Err(KernelError::ShortData { .. })
    ));
}

/// Packed Q2_K..Q6_K (not in [`PACKED_TYPES`], whose blocks are 32 weights) read back as ggml's super-blocks, bit for bit, so
/// packing loses nothing (every scale and minimum bit, every quant).
#[test]
fn packing_keeps_every_kquant_super_block() {
    let mut rng = Rng::new(6);
    for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        let (rows, cols) = (19, 768);
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
        let p = PackedMatrix::pack(&w).unwrap();
        assert_eq!(p.bytes().len(), packed_bytes(ty, rows, cols).unwrap());
        assert_eq!(p.bytes().as_ptr() as usize % 64, 0, "groups start on cache lines");
        let bb = ty.block_bytes();
        for r in 0..rows {
            for sb in 0..cols / 256 {
                let mut blk = [0u8; packed_kquants::MAX_SUPER_BYTES];
                packed_kquants::read_super(&p.view(), r, sb, &mut blk);
                assert_eq!(blk[..bb], w.row(r)[sb * bb..(sb + 1) * bb], "{ty} row {r} super-block {sb}");
            }
            let (mut from_ggml, mut from_packed) = (vec![0f32; cols], vec![0f32; cols]);
            Matrix::from(&w).dequantize_row(r, &mut from_ggml).unwrap();
            Matrix::from(&p).dequantize_row(r, &mut from_packed).unwrap();
            assert_eq!(bits(&from_packed), bits(&from_ggml), "{ty} row {r} dequantized");
        }
    }
    assert!(matches!(PackedView::new(GgmlType::Q4_K, 8, 128, &[0; 4096]), Err(KernelError::RaggedRow { .. })));
}

fn quantized_activations_match_scalar(k: Kernels) {
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let mut rng = Rng::new(5);
    for batch in [1, 3] {
        let x = rng.weights(640 * batch);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1] {
            let mut want = ActBuf::new(640, 3);
            scalar.quantize_activations(ty, &x, batch, &mut want);
            let mut got = ActBuf::new(640, 3);
            k.quantize_activations(ty, &x, batch, &mut got);
            assert_eq!(got.qs[..640 * batch], want.qs[..640 * batch]);
            assert_eq!(bits(&got.d[..20 * batch]), bits(&want.d[..20 * batch]));
            assert_eq!(bits(&got.s[..20 * batch]), bits(&want.s[..20 * batch]));
            assert_eq!(got.sum[..20 * batch], want.sum[..20 * batch]);
        }
    }
}

/// A row's output is the same whatever range and batch it is computed in
/// (so every thread count gives identical logits).
fn rows_do_not_depend_on_range_or_batch(k: Kernels) {
    let mut rng = Rng::new(23);
    for ty in TYPES {
        let (rows, cols, batch) = (45, if ty.block_elems() == 256 { 512 } else { 96 }, 3);
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
        let x = rng.weights(cols * batch);
        let full = run(&k, &w, &x, batch, 0..rows);
        for range in [0..1, 5..6, 3..20, 7..45, 44..45, 9..17, 0..45] {
            let part = run(&k, &w, &x, batch, range.clone());
            for t in 0..batch {
                for r in range.clone() {
                    let got = part[t * range.len() + r - range.start];
                    assert_eq!(
                        got.to_bits(),
                        full[t * rows + r].to_bits(),
                        "{} {ty} row {r} in {range:?}",
                        k.isa()
                    );
                }
            }
        }
        for t in 0..batch {
            let single = run(&k, &w, &x[t * cols..(t + 1) * cols], 1, 0..rows);
            assert_eq!(
                bits(&single),
                bits(&full[t * rows..(t + 1) * rows]),
                "{} {ty} token {t}",
                k.isa()
            );
        }
    }
}

/// The quantized matmul approximates the float product of the dequantized
/// weights and the original activations (catches a wrong formula that all ISAs
/// might share).
#[test]
fn results_approximate_the_float_product() {
    let k = Kernels::detect();
    let mut rng = Rng::new(99);
    for ty in TYPES {
        let (rows, cols) = (20, if ty.block_elems() == 256 { 512 } else { 192 });
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
        let x = rng.weights(cols);
        let got = run(&k, &w, &x, 1, 0..rows);
        for (r, &got) in got.iter().enumerate() {
            let mut row = vec![0.0f32; cols];
            dequantize_row(ty, w.row(r), &mut row).unwrap();
            let exact: f64 = row.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
            let mag: f64 = row.iter().zip(&x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
            // Q8 activations are off by at most half a step (amax / 254) per
            // element of their block; F16 activations by 2^-11 relative.
            // K-quants: Q8_K activations, one scale per 256.
            let act_block = if ty.block_elems() == 256 { 256 } else { 32 };
            let act_err: f64 = row
                .chunks(act_block)
                .zip(x.chunks(act_block))
                .map(|(wb, xb)| {
                    let amax = xb.iter().fold(0.0f32, |m, &v| m.max(v.abs())) as f64;
                    wb.iter().map(|&v| v.abs() as f64).sum::<f64>() * amax / 254.0
                })
                .sum();
            let tol = match ty {
                GgmlType::F32 => 1e-5 * mag,
                GgmlType::F16 => 1e-3 * mag + 1e-5 * mag,
                // BF16 activations: 2^-8 relative.
                GgmlType::BF16 => 4e-3 * mag + 1e-5 * mag,
                _ => act_err * 1.01 + 1e-4 * mag + 1e-6,
            };
            assert!(
                (got as f64 - exact).abs() <= tol,
                "{ty} row {r}: {} vs {exact} (tol {tol})",
                got
            );
        }
    }
}

fn vector_helpers_match_scalar(k: Kernels) {
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let mut rng = Rng::new(8);
    for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 100, 576] {
        let a = rng.weights(n);
        let b = rng.weights(n);
        assert_eq!(
            k.dot_f32(&a, &b).to_bits(),
            scalar.dot_f32(&a, &b).to_bits(),
            "{} dot n={n}",
            k.isa()
        );
        let mut y1 = b.clone();
        let mut y2 = b.clone();
        k.axpy(&mut y1, 0.37, &a);
        scalar.axpy(&mut y2, 0.37, &a);
        assert_eq!(bits(&y1), bits(&y2));
        k.scale(&mut y1, -1.5);
        scalar.scale(&mut y2, -1.5);
        assert_eq!(bits(&y1), bits(&y2));
        k.add(&mut y1, &a);
        scalar.add(&mut y2, &a);
        assert_eq!(bits(&y1), bits(&y2));
        k.mul(&mut y1, &a);
        scalar.mul(&mut y2, &a);
        assert_eq!(bits(&y1), bits(&y2));
        let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        assert!((scalar.dot_f32(&a, &b) as f64 - exact).abs() <= 1e-4 * (1.0 + exact.abs()));
    }
}

/// The attention helpers (KV rows read back, dot products against a tile,
/// weighted sums) give the scalar bits on every path, for head sizes that
/// are and are not multiples of the vector widths, and match f64 sums.
#[test]
fn attention_helpers_match_scalar_on_every_path() {
    use crate::state::KvType;
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let mut rng = Rng::new(13);
    for k in Isa::ALL.into_iter().filter_map(|i| Kernels::for_isa(i).ok()) {
        for (hd, rows) in [(32usize, 1usize), (64, 128), (128, 37), (96, 5), (20, 9), (80, 3), (7, 4), (64, 71), (64, 100)] {
            let q = rng.weights(hd);
            let raw = rng.weights(hd * rows);
            for kv in KvType::ALL {
                let Some(row_bytes) = kv.row_bytes(hd) else { continue };
                let mut bytes = vec![0u8; row_bytes * rows];
                for (r, b) in raw.chunks(hd).zip(bytes.chunks_mut(row_bytes)) {
                    kv.encode(r, b);
                }
                let (mut t1, mut t2) = (vec![0f32; hd * rows], vec![0f32; hd * rows]);
                k.decode_kv(kv, &bytes, &mut t1);
                kv.decode(&bytes, &mut t2);
                assert_eq!(bits(&t1), bits(&t2), "{} decode {kv} hd {hd}", k.isa());
                // The keys transposed into a tile of `stride` positions, scored
                // over a range that starts inside it.
                let stride = rows + 5;
                let mut kt = vec![0f32; hd * stride];
                for r in 0..rows {
                    for d in 0..hd {
                        kt[d * stride + 3 + r] = t1[r * hd + d];
                    }
                }
                let (mut s1, mut s2) = (vec![0f32; rows], vec![0f32; rows]);
                k.dots_t(&q, &kt, stride, 3..3 + rows, &mut s1);
                scalar.dots_t(&q, &kt, stride, 3..3 + rows, &mut s2);
                assert_eq!(bits(&s1), bits(&s2), "{} dots_t hd {hd}", k.isa());
                for (r, &s) in s1.iter().enumerate() {
                    let exact: f64 = (0..hd).map(|d| q[d] as f64 * t1[r * hd + d] as f64).sum();
                    assert!((s as f64 - exact).abs() <= 1e-4 * (1.0 + exact.abs()), "dot {r}");
                }
                let probs: Vec<f32> = (0..rows).map(|r| (r as f32 + 1.0) / (rows * rows) as f32).collect();
                let (mut o1, mut o2) = (vec![0f32; hd], vec![1f32; hd]);
                k.weighted_sum(&probs, &t1, &mut o1);
                scalar.weighted_sum(&probs, &t1, &mut o2);
                assert_eq!(bits(&o1), bits(&o2), "{} weighted sum hd {hd}", k.isa());
                if kv == KvType::F16 {
                    // Straight from f16 bytes: the bits of decoding first.
                    let kt16: Vec<u8> = kt.iter().flat_map(|&v| crate::quant::f32_to_f16(v).to_le_bytes()).collect();
                    let mut s3 = vec![0f32; rows];
                    for kk in [k, scalar] {
                        kk.dots_t_f16(&q, &kt16, stride, 3..3 + rows, &mut s3);
                        assert_eq!(bits(&s3), bits(&s1), "{} dots_t_f16 hd {hd}", kk.isa());
                        let mut o3 = vec![2f32; hd];
                        kk.weighted_sum_f16(&probs, &bytes, &mut o3);
                        assert_eq!(bits(&o3), bits(&o1), "{} weighted_sum_f16 hd {hd}", kk.isa());
                    }
                }
                for (d, &o) in o1.iter().enumerate() {
                    let exact: f64 = (0..rows).map(|r| probs[r] as f64 * t1[r * hd + d] as f64).sum();
                    assert!((o as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()), "sum {d}");
                }
            }
        }
    }
}

/// Each path is offered exactly when the CPU has its instructions, as std
/// detects them, and `detect` picks the fastest.
#[test]
fn paths_follow_the_cpu_as_std_sees_it() {
    use std::is_x86_feature_detected as has;
    let avx2 = has!("avx2") && has!("fma") && has!("f16c");
    let avx512 = avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl");
    let vnni = avx512 && has!("avx512vnni");
    for (isa, has_it) in [(Isa::Scalar, true), (Isa::Avx2, avx2), (Isa::Avx512, avx512), (Isa::Avx512Vnni, vnni)] {
        match Kernels::for_isa(isa) {
            Ok(k) => {
                assert!(has_it, "{isa} offered on a CPU without it");
                assert_eq!(k.isa(), isa);
            }
            Err(e) => {
                assert!(!has_it, "{isa} refused on a CPU that has it");
                assert_eq!(e, KernelError::IsaUnavailable(isa));
            }
        }
        assert_eq!(Isa::from_name(isa.name()), Some(isa));
    }
    let fastest = [(vnni, Isa::Avx512Vnni), (avx512, Isa::Avx512), (avx2, Isa::Avx2)].into_iter().find(|&(yes, _)| yes).map_or(Isa::Scalar, |(_, isa)| isa);
    assert_eq!(Kernels::detect().isa(), fastest);
}

#[test]
fn bad_matrices_are_rejected() {
    assert_eq!(
        WeightMatrix::new(GgmlType::IQ2_XS, 1, 256, &[0; 74]).unwrap_err(),
        KernelError::UnsupportedType(GgmlType::IQ2_XS)
    );
    assert!(matches!(
        WeightMatrix::new(GgmlType::Q4_K, 1, 288, &[0; 288]),
        Err(KernelError::RaggedRow { .. })
    ));
    assert!(matches!(
        WeightMatrix::new(GgmlType::Q6_K, 2, 256, &[0; 419]),
        Err(KernelError::ShortData { .. })
    ));
    assert!(matches!(
        WeightMatrix::new(GgmlType::Q4_0, 1, 48, &[0; 64]),
        Err(KernelError::RaggedRow { .. })
    ));
    assert!(matches!(
        WeightMatrix::new(GgmlType::Q8_0, 2, 32, &[0; 67]),
        Err(KernelError::ShortData { .. })
    ));
    assert!(WeightMatrix::new(GgmlType::Q8_0, 2, 32, &[0; 68]).is_ok());
}

#[test]
#[should_panic(expected = "activations not quantized for q4_1")]
fn mismatched_activations_panic() {
    let k = Kernels::detect();
    let data = vec![0u8; 20];
    let w = WeightMatrix::new(GgmlType::Q4_1, 1, 32, &data).unwrap();
    let mut acts = ActBuf::new(32, 1);
    k.quantize_activations(GgmlType::Q8_0, &[0.0; 32], 1, &mut acts);
    k.matmul(w, &acts, 0..1, &mut [0.0]);
}

/// On a machine without AVX-512 (QEMU TCG, the AVX2-only CI machines), runs
/// the AVX-512 kernels on an emulated CPU instead (Bochs's CPU model through
/// `benchmarks/engine/avx512-check/check.sh`, which installs it from PyPI).
/// Fails if the emulator cannot be installed: set `AXIOM_NO_EMULATION=1` to
/// have it ignored instead.
#[test]
#[cfg_attr(axiom_cpu_avx512, ignore = "this machine runs the AVX-512 kernels natively (matmul::tests::avx512)")]
#[cfg_attr(all(not(axiom_cpu_avx512), axiom_no_emulation), ignore = "AXIOM_NO_EMULATION is set")]
fn avx512_kernels_match_scalar_on_an_emulated_cpu() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../benchmarks/engine/avx512-check/check.sh");
    let out = std::process::Command::new(script).output().expect("run avx512-check/check.sh");
    let text = std::string::String::from_utf8_lossy(&out.stdout);
    std::eprintln!("{text}{}", std::string::String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => assert!(text.contains("avx512: ") && text.contains(" 0 differ")),
        Some(77) => panic!("this machine lacks AVX-512 and the emulator (bochscpu from PyPI) could not be installed: the AVX-512 kernels are unchecked. Set AXIOM_NO_EMULATION=1 to ignore this test"),
        other => panic!("AVX-512 kernels differ from scalar on the emulated CPU (exit {other:?})"),
    }
}

/// One test per check for each SIMD path, ignored with the reason on a
/// machine without it (cfgs from build.rs).
macro_rules! isa_tests {
    ($name:ident, $isa:expr, $cpu:ident, $lacks:literal) => {
        mod $name {
            use super::*;

            #[test]
            #[cfg_attr(not($cpu), ignore = $lacks)]
            fn matches_scalar_bit_for_bit() {
                super::matches_scalar_bit_for_bit(isa_kernels($isa))
            }

            #[test]
            #[cfg_attr(not($cpu), ignore = $lacks)]
            fn packed_layout_matches_ggml_layout_bit_for_bit() {
                super::packed_layout_matches_ggml_layout_bit_for_bit(isa_kernels($isa))
            }

            #[test]
            #[cfg_attr(not($cpu), ignore = $lacks)]
            fn quantized_activations_match_scalar() {
                super::quantized_activations_match_scalar(isa_kernels($isa))
            }

            #[test]
            #[cfg_attr(not($cpu), ignore = $lacks)]
            fn rows_do_not_depend_on_range_or_batch() {
                super::rows_do_not_depend_on_range_or_batch(isa_kernels($isa))
            }

            #[test]
            #[cfg_attr(not($cpu), ignore = $lacks)]
            fn vector_helpers_match_scalar() {
                super::vector_helpers_match_scalar(isa_kernels($isa))
            }
        }
    };
}

isa_tests!(avx2, Isa::Avx2, axiom_cpu_avx2, "this machine lacks AVX2+FMA+F16C");
isa_tests!(avx512, Isa::Avx512, axiom_cpu_avx512, "this machine lacks AVX-512 F/BW/VL (avx512_kernels_match_scalar_on_an_emulated_cpu checks them on an emulated CPU)");
isa_tests!(avx512vnni, Isa::Avx512Vnni, axiom_cpu_avx512vnni, "this machine lacks AVX-512 VNNI (no emulator here offers it: see docs/engine.md)");

/// The scalar path is the reference; these are the checks that still say
/// something about it (its packed reader, and independence of range and batch).
mod scalar {
    use super::*;

    #[test]
    fn packed_layout_matches_ggml_layout_bit_for_bit() {
        super::packed_layout_matches_ggml_layout_bit_for_bit(Kernels::for_isa(Isa::Scalar).unwrap())
    }

    #[test]
    fn rows_do_not_depend_on_range_or_batch() {
        super::rows_do_not_depend_on_range_or_batch(Kernels::for_isa(Isa::Scalar).unwrap())
    }
}
