//! The GGUF reader against a corrupted real model: truncations at every header
//! item boundary and random bit flips in the header give errors, never a panic
//! or an out-of-bounds read (and the model loader after it stays panic-free).
//!
//! `AXIOM_FUZZ_ITERS=N` raises the number of random mutations for a long run
//! (see docs/engine.md).

mod common;

use axiom_engine::gguf::{Gguf, GgufError};
use axiom_testkit::default_model_bytes;
use common::Rng;

/// Offsets of the header items (every field start), and the subset that are
/// structural (lengths, counts, type ids, dims, offsets), found by walking the
/// header independently of the reader. Array elements are sampled.
struct Walk {
    boundaries: Vec<usize>,
    structural: Vec<usize>,
    header_len: usize,
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
    for _ in 0..n_tensors {
        boundaries.push(p);
        structural.push(p);
        p += 8 + u64_at(p);
        boundaries.push(p);
        structural.push(p);
        let nd = u32_at(p) as usize;
        p += 4;
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
    Walk { boundaries, structural, header_len: p }
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
    let bytes = default_model_bytes();
    let w = walk(&bytes);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(w.header_len as u64, g.header_len());
    load(&bytes).expect("the real model loads");
}

#[test]
fn truncation_at_every_header_boundary_is_an_error() {
    let bytes = default_model_bytes();
    let w = walk(&bytes);
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
    let bytes = default_model_bytes();
    let w = walk(&bytes);
    let iters: usize = std::env::var("AXIOM_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut header = bytes[..w.header_len].to_vec();
    let (mut ok, mut err) = (0usize, 0usize);
    // Only the header is mutated; the data section is shared (the reader
    // checks tensor ranges against the file size, not the data).
    let mut file = bytes.clone();
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
