//! The GGUF reader against a corrupted real model: truncations at every header
//! item boundary and random bit flips in the header give errors, never a panic
//! or an out-of-bounds read (and the model loader after it stays panic-free).
//! Every check runs twice: on the default model (Q4_1) and on the same model
//! retyped (`retyped`) so that its matrices have every other block type the
//! engine runs: the K-quants on the 1536-wide `ffn_down`, Q5_0, Q5_1, IQ4_NL,
//! Q8_0 and BF16 on the 576-wide ones.
//!
//! `AXIOM_FUZZ_ITERS=N` raises the number of random mutations for a long run
//! (see docs/engine.md).

mod common;

use axiom_engine::ggml_type::GgmlType;
use axiom_engine::gguf::{Gguf, GgufError};
use axiom_engine::matmul::{ActBuf, Kernels, WeightMatrix};
use axiom_testkit::default_model_bytes;
use common::Rng;

/// Offsets of the header items (every field start), and the subset that are
/// structural (lengths, counts, type ids, dims, offsets), found by walking the
/// header independently of the reader. Array elements are sampled.
struct Walk {
    boundaries: Vec<usize>,
    structural: Vec<usize>,
    header_len: usize,
    /// Per tensor: where its dimensions, type id and offset are.
    tensors: Vec<TensorAt>,
}

struct TensorAt {
    dims_at: usize,
    n_dims: usize,
    type_at: usize,
    offset_at: usize,
}

fn walk(b: &[u8]) -> Walk {
    let u32_at = |p: usize| u32::from_le_bytes(b[p..p + 4].try_into().unwrap());
    let u64_at = |p: usize| u64::from_le_bytes(b[p..p + 8].try_into().unwrap()) as usize;
    let mut boundaries = vec![0, 4, 8, 16];
    let mut structural = vec![4, 8, 16];
    let n_tensors = u64_at(8);
    let n_kv = u64_at(16);
    let mut p = 24;
    let fixed = |t: u32| match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => 0,
    };
    for _ in 0..n_kv {
        boundaries.push(p);
        structural.push(p);
        p += 8 + u64_at(p); // key
        boundaries.push(p);
        structural.push(p);
        let t = u32_at(p);
        p += 4;
        boundaries.push(p);
        match t {
            8 => {
                structural.push(p);
                p += 8 + u64_at(p);
            }
            9 => {
                structural.push(p);
                let et = u32_at(p);
                p += 4;
                boundaries.push(p);
                structural.push(p);
                let n = u64_at(p);
                p += 8;
                for i in 0..n {
                    let sample = i < 8 || i + 8 >= n || i % 499 == 0;
                    if sample {
                        boundaries.push(p);
                    }
                    if et == 8 {
                        if sample {
                            structural.push(p);
                        }
                        p += 8 + u64_at(p);
                    } else {
                        p += fixed(et);
                    }
                }
            }
            t => p += fixed(t),
        }
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        boundaries.push(p);
        structural.push(p);
        p += 8 + u64_at(p);
        boundaries.push(p);
        structural.push(p);
        let nd = u32_at(p) as usize;
        p += 4;
        let dims_at = p;
        tensors.push(TensorAt { dims_at, n_dims: nd, type_at: p + 8 * nd, offset_at: p + 8 * nd + 4 });
        for _ in 0..nd {
            boundaries.push(p);
            structural.push(p);
            p += 8;
        }
        boundaries.push(p);
        structural.push(p);
        p += 4;
        boundaries.push(p);
        structural.push(p);
        p += 8;
    }
    boundaries.push(p);
    Walk { boundaries, structural, header_len: p, tensors }
}

/// The model with its matrices given other block types: the header's type
/// ids and offsets are rewritten in place (fixed-width fields, so the header
/// keeps its length and item boundaries), and the data section is refilled
/// with the original data bytes (read as blocks of the new types: arbitrary
/// blocks, which must decode without a panic too).
fn retyped(bytes: &[u8]) -> Vec<u8> {
    let w = walk(bytes);
    let g = Gguf::parse(bytes).unwrap();
    let (align, data_offset) = (g.alignment(), g.data_offset() as usize);
    let k_quants = [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q3_K, GgmlType::Q2_K];
    let small = [GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q8_0, GgmlType::BF16];
    let (mut ki, mut si) = (0, 0);
    let mut header = bytes[..data_offset].to_vec();
    let mut next = 0u64;
    for t in &w.tensors {
        let dims: Vec<u64> = (0..t.n_dims).map(|i| u64::from_le_bytes(header[t.dims_at + 8 * i..][..8].try_into().unwrap())).collect();
        let mut ty = GgmlType::from_id(u32::from_le_bytes(header[t.type_at..][..4].try_into().unwrap())).unwrap();
        if t.n_dims >= 2 {
            ty = if dims[0].is_multiple_of(256) {
                ki += 1;
                k_quants[(ki - 1) % k_quants.len()]
            } else {
                si += 1;
                small[(si - 1) % small.len()]
            };
        }
        let size = ty.row_bytes(dims[0]).unwrap() * dims[1..].iter().product::<u64>();
        header[t.type_at..t.type_at + 4].copy_from_slice(&ty.id().to_le_bytes());
        header[t.offset_at..t.offset_at + 8].copy_from_slice(&next.to_le_bytes());
        next = (next + size).div_ceil(align) * align;
    }
    let data = &bytes[data_offset..];
    let mut out = header;
    out.extend((0..next as usize).map(|i| data[i % data.len()]));
    out
}

/// The default model and the retyped one.
fn models() -> Vec<(&'static str, Vec<u8>)> {
    let bytes = default_model_bytes();
    let other = retyped(&bytes);
    vec![("default", bytes), ("retyped", other)]
}

/// Parses `bytes` and, if that succeeds, builds the model config and layouts
/// from it: the whole loading path must fail cleanly on corrupt input.
fn load(bytes: &[u8]) -> Result<(), GgufError> {
    let g = Gguf::parse(bytes)?;
    let cfg = axiom_engine::model::ModelConfig::from_gguf(&g)?;
    let _layout = axiom_engine::model::ModelLayout::from_gguf(&g, &cfg)?;
    Ok(())
}

#[test]
fn walk_matches_reader() {
    for (name, bytes) in models() {
        let w = walk(&bytes);
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(w.header_len as u64, g.header_len());
        load(&bytes).unwrap_or_else(|e| panic!("the {name} model does not load: {e}"));
    }
}

/// The retyped model has every new type, and its arbitrary blocks (the Q4_1
/// model's bytes) dequantize and multiply without a panic on every ISA.
#[test]
fn retyped_model_has_every_type_and_its_blocks_decode() {
    let bytes = retyped(&default_model_bytes());
    let g = Gguf::parse(&bytes).unwrap();
    let types: std::collections::BTreeSet<&str> = g.tensors().iter().map(|t| t.ty.name()).collect();
    for ty in ["q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q5_0", "q5_1", "iq4_nl", "q8_0", "bf16", "f32"] {
        assert!(types.contains(ty), "no {ty} tensor in {types:?}");
    }
    let isas: Vec<Kernels> = axiom_engine::matmul::Isa::ALL.iter().filter_map(|&i| Kernels::for_isa(i).ok()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for t in g.tensors().iter().filter(|t| t.n_dims == 2) {
        if !seen.insert(t.ty.id()) {
            continue;
        }
        let (cols, rows) = (t.dims[0] as usize, 16.min(t.dims[1] as usize));
        let data = g.tensor_bytes(t).unwrap();
        let w = WeightMatrix::new(t.ty, rows, cols, data).unwrap();
        let mut row = vec![0f32; cols];
        for r in 0..rows {
            axiom_engine::quant::dequantize_row(t.ty, w.row(r), &mut row).unwrap();
        }
        let x: Vec<f32> = (0..cols).map(|i| ((i * 7919) % 61) as f32 / 30.0 - 1.0).collect();
        let mut first: Option<Vec<u32>> = None;
        for k in &isas {
            let mut acts = ActBuf::new(cols, 1);
            k.quantize_activations(t.ty, &x, 1, &mut acts);
            let mut out = vec![0f32; rows];
            k.matmul(w, &acts, 0..rows, &mut out);
            // Arbitrary BF16/F16 bytes include NaNs, whose payload and sign
            // depend on which NaN operand an instruction propagates: compare
            // NaN as NaN, everything else bit for bit.
            let bits: Vec<u32> = out.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect();
            match &first {
                None => first = Some(bits),
                Some(want) => assert_eq!(&bits, want, "{}: {} differs from scalar", t.ty, k.isa()),
            }
        }
    }
}

#[test]
fn truncation_at_every_header_boundary_is_an_error() {
    for (name, bytes) in models() {
        eprintln!("{name} model:");
        truncations(&bytes);
    }
}

fn truncations(bytes: &[u8]) {
    let w = walk(bytes);
    let size = bytes.len() as u64;
    let mut cuts: Vec<usize> = w.boundaries.iter().flat_map(|&b| [b.saturating_sub(1), b, b + 1]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    for &cut in &cuts {
        let prefix = &bytes[..cut.min(bytes.len())];
        // As the whole file: truncated.
        match Gguf::parse(prefix) {
            Err(GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. } | GgufError::AbsurdCount { .. }) => {}
            Err(e) => panic!("cut at {cut}: unexpected error kind: {e}"),
            Ok(_) => panic!("cut at {cut}: a truncated file parsed"),
        }
        // As a prefix of the real file: ask for more inside the header.
        match Gguf::parse_header(prefix, size) {
            Err(GgufError::NeedMore { bytes: n }) => assert!(cut < w.header_len && n > cut as u64 && n <= size),
            Ok(_) => assert!(cut >= w.header_len),
            Err(e) => panic!("cut at {cut} (prefix): {e}"),
        }
    }
    // Cuts inside the data section: the header parses but a tensor is out of bounds.
    for cut in [w.header_len + 64, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(Gguf::parse(&bytes[..cut]), Err(GgufError::TensorOutOfBounds { .. })));
    }
    eprintln!("{} truncation points checked", cuts.len());
}

#[test]
fn random_bit_flips_never_panic() {
    for (name, bytes) in models() {
        eprintln!("{name} model:");
        bit_flips(&bytes);
    }
}

fn bit_flips(bytes: &[u8]) {
    let w = walk(bytes);
    let iters: usize = std::env::var("AXIOM_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut header = bytes[..w.header_len].to_vec();
    let (mut ok, mut err) = (0usize, 0usize);
    // Only the header is mutated; the data section is shared (the reader
    // checks tensor ranges against the file size, not the data).
    let mut file = bytes.to_vec();
    for _ in 0..iters {
        header.copy_from_slice(&bytes[..w.header_len]);
        let flips = 1 + rng.below(4) as usize;
        let mut touched = Vec::with_capacity(flips);
        for _ in 0..flips {
            // Half the flips hit structural fields (lengths, counts, types,
            // dims, offsets), where a flip changes the parse.
            let at = if rng.below(2) == 0 {
                w.structural[rng.below(w.structural.len() as u64) as usize] + rng.below(8) as usize
            } else {
                rng.below(w.header_len as u64) as usize
            }
            .min(w.header_len - 1);
            header[at] ^= 1 << rng.below(8);
            touched.push(at);
        }
        for &at in &touched {
            file[at] = header[at];
        }
        match load(&file) {
            Ok(()) => ok += 1,
            Err(e) => {
                // Every error renders a message.
                assert!(!format!("{e}").is_empty());
                err += 1;
            }
        }
        // Also as a header prefix of random length.
        let cut = rng.below(w.header_len as u64 + 1) as usize;
        let _ = Gguf::parse_header(&file[..cut], bytes.len() as u64);
        for &at in &touched {
            file[at] = bytes[at];
        }
    }
    eprintln!("{iters} mutated headers: {ok} still load, {err} rejected with an error");
    assert!(err > iters / 4, "too few mutations were detected ({err} of {iters})");
}
