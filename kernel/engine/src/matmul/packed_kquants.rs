//! The packed (row-interleaved) layout of the K-quants Q2_K..Q6_K: the
//! same idea as [`super::packed`] (8 rows per group, 4 rows per 32-byte
//! vector, one activation broadcast shared by them), per 256-weight
//! super-block, with the scales decoded at pack time into the form the
//! kernels read directly ([`super::avx2_packed_kquants`]).
//!
//! Packing is lossless: [`read_super`] rebuilds ggml's super-block bit for
//! bit, and every path computes the exact integer sums and float sequence
//! of [`super::scalar::super_dot`], so packed and ggml layouts give the same
//! bits.
//!
//! # Layout
//!
//! Rows are taken in groups of [`GROUP_ROWS`] = 8 (the last group repeats its
//! last row). Group `g` starts at `g * group_bytes` (a multiple of 64) and
//! holds one record per super-block, back to back. "Block `j`" below is
//! elements `32j..32j + 32` of the super-block; "chunk `c`" of it is its
//! elements `8c..8c + 8`. A quant vector is 32 bytes: four 8-byte lanes
//! holding one chunk of rows `0,1,4,5` (set A) or `2,3,6,7` (set B), as in
//! [`super::packed`]. Per-row values are listed rows 0..8 ("x 8").
//!
//! Q4_K record (1184 bytes):
//! - `0`: `d` x 8 (f16); `16`: `dmin` x 8 (f16);
//! - `32`: the 6-bit scales as bytes, pair-interleaved: byte `32 + 16p + 2i + h`
//!   is row `i`'s scale of block `2p + h` (`p` in 0..4);
//! - `96`: the 6-bit minimums, in the same order;
//! - `160`: 32 quant vectors, vector `(2p + s) * 4 + c` for block pair `p`,
//!   set `s`, chunk `c`: the low nibbles are block `2p`'s chunk `c`, the high
//!   nibbles block `2p + 1`'s (that is ggml's `qs[32p + 8c..][..8]`, copied).
//!
//! Q5_K record (1440 bytes): Q4_K's record (the low four bits of each
//! quant, from ggml's `qs`), then
//! - `1184`: 8 vectors of fifth bits, vector `s * 4 + c` for set `s`, chunk
//!   `c`: each lane is its row's ggml `qh[8c..8c + 8]` (bit `j` of byte `x`
//!   is the fifth bit of element `x` of block `j`'s chunk `c`).
//!
//! Q6_K record (1680 bytes):
//! - `0`: `d` x 8 (f16);
//! - `16`: the 16 i8 scales (one per 16 elements), pair-interleaved: byte
//!   `16 + 16j + 2i + h` is row `i`'s scale of elements `32j + 16h..32j + 16h + 16`;
//! - `144`: 48 quant vectors of the 6-bit levels `u = q + 32` (0..63), 12 per
//!   half `n` (blocks `4n..4n + 4`) and set `s`, starting at vector
//!   `(2n + s) * 12`: vectors `+4P + c` (`P` in 0..2) hold chunk `c` of
//!   block `4n + 2P` in their low nibbles and of block `4n + 2P + 1` in their
//!   high ones; vectors `+8 + c` hold the high two bits of chunk `c` of block
//!   `4n + h` in bits `2h..2h + 2`.
//!
//! Q2_K record (672 bytes, as the file's 8 x 84):
//! - `0`: `d` x 8 (f16); `16`: `dmin` x 8 (f16);
//! - `32`: ggml's 16 scale bytes (scale in the low nibble, minimum in the
//!   high one), pair-interleaved as Q6_K's scales;
//! - `160`: 16 vectors of the 2-bit quants, vector `(2n + s) * 4 + c` for
//!   half `n`, set `s`, chunk `c`: each lane is its row's ggml
//!   `qs[32n + 8c..][..8]` (bits `2h..2h + 2` for block `4n + h`).
//!
//! Q3_K record (912 bytes; levels `u = q + 4`, 0..7):
//! - `0`: `d` x 8 (f16);
//! - `16`: the 16 scales minus 32 as i8, pair-interleaved as Q6_K's;
//! - `144`: 16 vectors of the low two bits, vector `(2n + s) * 4 + c` for half
//!   `n`, set `s`, chunk `c`: each lane is its row's ggml `qs[32n + 8c..][..8]`
//!   (bits `2h..2h + 2` for block `4n + h`);
//! - `656`: 8 vectors of the third bits, vector `s * 4 + c`: each lane is its
//!   row's ggml `hmask[8c..8c + 8]` (bit `j` for block `j`).
//!
//! Records are multiples of 16 bytes and the quants start at 16-byte
//! offsets, so every 16-byte half of a vector load stays in a cache line.

use alloc::vec;
use core::ops::Range;

use super::packed::{PackedView, GROUP_ROWS, SET_ROWS};
use super::{ActBuf, KernelError, WeightMatrix};
use crate::ggml_type::GgmlType;
use crate::quant::kquants::{at, q3_k_scale, scales_mins_k4, QK_K};

/// Q4_K record offsets and size.
pub(super) mod q4k {
    pub const D: usize = 0;
    pub const DMIN: usize = 16;
    pub const SCALES: usize = 32;
    pub const MINS: usize = 96;
    pub const QUANTS: usize = 160;
    pub const RECORD: usize = QUANTS + 32 * 32;
}

/// Q5_K record offsets and size: Q4_K's ([`q4k`]), then the fifth bits.
pub(super) mod q5k {
    pub const QH: usize = super::q4k::RECORD;
    pub const RECORD: usize = QH + 8 * 32;
}

/// Q2_K record offsets and size.
pub(super) mod q2k {
    pub const D: usize = 0;
    pub const DMIN: usize = 16;
    pub const SCALES: usize = 32;
    pub const QUANTS: usize = 160;
    pub const RECORD: usize = QUANTS + 16 * 32;
}

/// Q3_K record offsets and size.
pub(super) mod q3k {
    pub const D: usize = 0;
    pub const SCALES: usize = 16;
    pub const QUANTS: usize = 144;
    pub const HMASK: usize = QUANTS + 16 * 32;
    pub const RECORD: usize = HMASK + 8 * 32;
}

/// Q6_K record offsets and size.
pub(super) mod q6k {
    pub const D: usize = 0;
    pub const SCALES: usize = 16;
    pub const QUANTS: usize = 144;
    pub const RECORD: usize = QUANTS + 48 * 32;
}

const _: () = assert!(
    q2k::RECORD.is_multiple_of(16) && q2k::QUANTS.is_multiple_of(16) && q3k::RECORD.is_multiple_of(16) && q3k::QUANTS.is_multiple_of(16) && q4k::RECORD.is_multiple_of(16) && q5k::RECORD.is_multiple_of(16) && q6k::RECORD.is_multiple_of(16) && q4k::QUANTS.is_multiple_of(16) && q5k::QH.is_multiple_of(16) && q6k::QUANTS.is_multiple_of(16)
);

/// Whether `ty` has this module's packed form.
pub fn has_layout(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K)
}

/// Bytes per super-block record of `ty`, if it has this packed form.
pub(super) fn record_bytes(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::Q2_K => Some(q2k::RECORD),
        GgmlType::Q3_K => Some(q3k::RECORD),
        GgmlType::Q4_K => Some(q4k::RECORD),
        GgmlType::Q5_K => Some(q5k::RECORD),
        GgmlType::Q6_K => Some(q6k::RECORD),
        _ => None,
    }
}

/// Bytes of one group of a `ty` matrix with `cols` columns (a 64-byte
/// multiple), if `ty` has this packed form.
pub(super) fn group_bytes(ty: GgmlType, cols: usize) -> Option<usize> {
    Some((cols / QK_K * record_bytes(ty)?).div_ceil(64) * 64)
}

/// Byte offset in a record of lane `lane` of quant vector `v`.
fn lane_at(quants: usize, v: usize, lane: usize) -> usize {
    quants + 32 * v + 8 * lane
}

/// Set and lane of row `i` of a group.
fn set_lane(i: usize) -> (usize, usize) {
    for (s, rows) in SET_ROWS.iter().enumerate() {
        if let Some(l) = rows.iter().position(|&x| x == i) {
            return (s, l);
        }
    }
    unreachable!("row {i} of a group of {GROUP_ROWS}")
}

/// Q6_K's levels `u = q + 32` of one ggml super-block, in element order.
fn q6k_levels(b: &[u8]) -> [u8; QK_K] {
    core::array::from_fn(|e| {
        let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = (b[64 * n + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
        let high = (b[at::Q6_K_QH + 32 * n + l] >> (2 * k)) & 3;
        low | (high << 4)
    })
}

/// Writes row `i`'s ggml super-block `src` into record `rec`.
fn pack_super(ty: GgmlType, src: &[u8], i: usize, rec: &mut [u8]) {
    let (s, lane) = set_lane(i);
    match ty {
        GgmlType::Q2_K => {
            rec[q2k::D + 2 * i..][..2].copy_from_slice(&src[at::Q2_K_D..at::Q2_K_D + 2]);
            rec[q2k::DMIN + 2 * i..][..2].copy_from_slice(&src[at::Q2_K_D + 2..at::Q2_K_D + 4]);
            for k in 0..16 {
                rec[q2k::SCALES + 16 * (k / 2) + 2 * i + k % 2] = src[k];
            }
            for c in 0..4 {
                for n in 0..2 {
                    let at = lane_at(q2k::QUANTS, (2 * n + s) * 4 + c, lane);
                    rec[at..at + 8].copy_from_slice(&src[at::Q2_K_QS + 32 * n + 8 * c..][..8]);
                }
            }
        }
        GgmlType::Q3_K => {
            rec[q3k::D + 2 * i..][..2].copy_from_slice(&src[at::Q3_K_D..at::Q3_K_D + 2]);
            let scales = &src[at::Q3_K_SCALES..at::Q3_K_SCALES + 12];
            for k in 0..16 {
                rec[q3k::SCALES + 16 * (k / 2) + 2 * i + k % 2] = (q3_k_scale(k, scales) as i8 - 32) as u8;
            }
            for c in 0..4 {
                for n in 0..2 {
                    let at = lane_at(q3k::QUANTS, (2 * n + s) * 4 + c, lane);
                    rec[at..at + 8].copy_from_slice(&src[at::Q3_K_QS + 32 * n + 8 * c..][..8]);
                }
                let at = lane_at(q3k::HMASK, s * 4 + c, lane);
                rec[at..at + 8].copy_from_slice(&src[8 * c..][..8]);
            }
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            // Q5_K's header and low four bits are laid out as Q4_K's.
            let qs = if ty == GgmlType::Q5_K { at::Q5_K_QS } else { at::Q4_K_QS };
            rec[q4k::D + 2 * i..][..2].copy_from_slice(&src[0..2]);
            rec[q4k::DMIN + 2 * i..][..2].copy_from_slice(&src[2..4]);
            let sm = scales_mins_k4(&src[at::Q4_K_SCALES..at::Q4_K_SCALES + 12]);
            for j in 0..8 {
                rec[q4k::SCALES + 16 * (j / 2) + 2 * i + j % 2] = sm[j];
                rec[q4k::MINS + 16 * (j / 2) + 2 * i + j % 2] = sm[8 + j];
            }
            for p in 0..4 {
                for c in 0..4 {
                    let at = lane_at(q4k::QUANTS, (2 * p + s) * 4 + c, lane);
                    rec[at..at + 8].copy_from_slice(&src[qs + 32 * p + 8 * c..][..8]);
                }
            }
            if ty == GgmlType::Q5_K {
                for c in 0..4 {
                    let at = lane_at(q5k::QH, s * 4 + c, lane);
                    rec[at..at + 8].copy_from_slice(&src[at::Q5_K_QH + 8 * c..][..8]);
                }
            }
        }
        GgmlType::Q6_K => {
            rec[q6k::D + 2 * i..][..2].copy_from_slice(&src[at::Q6_K_D..at::Q6_K_D + 2]);
            for k in 0..16 {
                rec[q6k::SCALES + 16 * (k / 2) + 2 * i + k % 2] = src[at::Q6_K_SCALES + k];
            }
            let u = q6k_levels(src);
            let chunk = |j: usize, c: usize, x: usize| u[32 * j + 8 * c + x];
            for n in 0..2 {
                let base = (2 * n + s) * 12;
                for c in 0..4 {
                    for x in 0..8 {
                        for pair in 0..2 {
                            let j = 4 * n + 2 * pair;
                            rec[lane_at(q6k::QUANTS, base + 4 * pair + c, lane) + x] = (chunk(j, c, x) & 0x0f) | (chunk(j + 1, c, x) & 0x0f) << 4;
                        }
                        rec[lane_at(q6k::QUANTS, base + 8 + c, lane) + x] = (0..4).map(|h| (chunk(4 * n + h, c, x) >> 4) << (2 * h)).sum();
                    }
                }
            }
        }
        _ => unreachable!("has_layout"),
    }
}

/// Repacks `w` (Q2_K..Q6_K) into `out`, exactly [`group_bytes`] times the
/// number of groups long.
pub(super) fn pack_into(w: &WeightMatrix, out: &mut [u8]) -> Result<(), KernelError> {
    let record = record_bytes(w.ty).ok_or(KernelError::UnsupportedType(w.ty))?;
    WeightMatrix::new(w.ty, w.rows, w.cols, w.data)?;
    let gb = group_bytes(w.ty, w.cols).unwrap();
    let needed = gb * w.rows.div_ceil(GROUP_ROWS);
    if out.len() != needed {
        return Err(KernelError::ShortData { needed, got: out.len() });
    }
    let bb = w.ty.block_bytes();
    for (grp, dst) in out.chunks_exact_mut(gb).enumerate() {
        dst.fill(0);
        for i in 0..GROUP_ROWS {
            let row = w.row((grp * GROUP_ROWS + i).min(w.rows - 1));
            for (sb, src) in row.chunks_exact(bb).enumerate() {
                pack_super(w.ty, src, i, &mut dst[sb * record..(sb + 1) * record]);
            }
        }
    }
    Ok(())
}

/// The largest ggml super-block of a type with this packed form.
pub(super) const MAX_SUPER_BYTES: usize = 210;

/// Reads back row `r`'s super-block `sb` of a packed Q2_K..Q6_K matrix in
/// ggml's layout (`out[..ty.block_bytes()]`).
pub(super) fn read_super(p: &PackedView, r: usize, sb: usize, out: &mut [u8; MAX_SUPER_BYTES]) {
    let record = record_bytes(p.ty()).expect("a packed K-quant");
    let rec = &p.group(r / GROUP_ROWS)[sb * record..(sb + 1) * record];
    let i = r % GROUP_ROWS;
    let (s, lane) = set_lane(i);
    out.fill(0);
    match p.ty() {
        GgmlType::Q2_K => {
            out[at::Q2_K_D..at::Q2_K_D + 2].copy_from_slice(&rec[q2k::D + 2 * i..][..2]);
            out[at::Q2_K_D + 2..at::Q2_K_D + 4].copy_from_slice(&rec[q2k::DMIN + 2 * i..][..2]);
            for k in 0..16 {
                out[k] = rec[q2k::SCALES + 16 * (k / 2) + 2 * i + k % 2];
            }
            for c in 0..4 {
                for n in 0..2 {
                    let at = lane_at(q2k::QUANTS, (2 * n + s) * 4 + c, lane);
                    out[at::Q2_K_QS + 32 * n + 8 * c..][..8].copy_from_slice(&rec[at..at + 8]);
                }
            }
        }
        GgmlType::Q3_K => {
            out[at::Q3_K_D..at::Q3_K_D + 2].copy_from_slice(&rec[q3k::D + 2 * i..][..2]);
            // ggml's 12-byte packing of sixteen 6-bit scales (the inverse of
            // `q3_k_scale`; every bit is used, so it is unique).
            for k in 0..16 {
                let v = (rec[q3k::SCALES + 16 * (k / 2) + 2 * i + k % 2] as i8 + 32) as u8;
                let (g, j) = (k / 4, k % 4);
                out[at::Q3_K_SCALES + (g & 1) * 4 + j] |= (v & 0x0f) << (4 * (g >> 1));
                out[at::Q3_K_SCALES + 8 + j] |= (v >> 4) << (2 * g);
            }
            for c in 0..4 {
                for n in 0..2 {
                    let at = lane_at(q3k::QUANTS, (2 * n + s) * 4 + c, lane);
                    out[at::Q3_K_QS + 32 * n + 8 * c..][..8].copy_from_slice(&rec[at..at + 8]);
                }
                let at = lane_at(q3k::HMASK, s * 4 + c, lane);
                out[8 * c..][..8].copy_from_slice(&rec[at..at + 8]);
            }
        }
        ty @ (GgmlType::Q4_K | GgmlType::Q5_K) => {
            let qs = if ty == GgmlType::Q5_K { at::Q5_K_QS } else { at::Q4_K_QS };
            out[0..2].copy_from_slice(&rec[q4k::D + 2 * i..][..2]);
            out[2..4].copy_from_slice(&rec[q4k::DMIN + 2 * i..][..2]);
            let sc: [u8; 8] = core::array::from_fn(|j| rec[q4k::SCALES + 16 * (j / 2) + 2 * i + j % 2]);
            let m: [u8; 8] = core::array::from_fn(|j| rec[q4k::MINS + 16 * (j / 2) + 2 * i + j % 2]);
            // ggml's 12-byte packing of eight 6-bit scales and minimums (the
            // inverse of `get_scale_min_k4`; every bit is used, so it is unique).
            let scales = &mut out[at::Q4_K_SCALES..at::Q4_K_SCALES + 12];
            for j in 0..4 {
                scales[j] = sc[j] | (sc[j + 4] >> 4) << 6;
                scales[j + 4] = m[j] | (m[j + 4] >> 4) << 6;
                scales[j + 8] = (sc[j + 4] & 0x0f) | (m[j + 4] & 0x0f) << 4;
            }
            for pair in 0..4 {
                for c in 0..4 {
                    let at = lane_at(q4k::QUANTS, (2 * pair + s) * 4 + c, lane);
                    out[qs + 32 * pair + 8 * c..][..8].copy_from_slice(&rec[at..at + 8]);
                }
            }
            if ty == GgmlType::Q5_K {
                for c in 0..4 {
                    let at = lane_at(q5k::QH, s * 4 + c, lane);
                    out[at::Q5_K_QH + 8 * c..][..8].copy_from_slice(&rec[at..at + 8]);
                }
            }
        }
        GgmlType::Q6_K => {
            out[at::Q6_K_D..at::Q6_K_D + 2].copy_from_slice(&rec[q6k::D + 2 * i..][..2]);
            for k in 0..16 {
                out[at::Q6_K_SCALES + k] = rec[q6k::SCALES + 16 * (k / 2) + 2 * i + k % 2];
            }
            for e in 0..QK_K {
                let (j, c, x) = (e / 32, (e % 32) / 8, e % 8);
                let (n, h) = (j / 4, j % 4);
                let base = (2 * n + s) * 12;
                let low = (rec[lane_at(q6k::QUANTS, base + 4 * (h / 2) + c, lane) + x] >> (4 * (h % 2))) & 0x0f;
                let high = (rec[lane_at(q6k::QUANTS, base + 8 + c, lane) + x] >> (2 * h)) & 3;
                // ggml: element 128n + 32k + l is nibble k / 2 of
                // ql[64n + 32(k % 2) + l] and bits 2k.. of qh[32n + l].
                let (k, l) = (h, e % 32);
                out[64 * n + 32 * (k & 1) + l] |= low << (4 * (k >> 1));
                out[at::Q6_K_QH + 32 * n + l] |= high << (2 * k);
            }
        }
        _ => unreachable!("record_bytes"),
    }
}

/// Row `r` of a packed Q2_K..Q6_K matrix in ggml's layout, into `row`
/// (`cols / 256` super-blocks).
pub(super) fn read_row(p: &PackedView, r: usize, row: &mut [u8]) {
    let bb = p.ty().block_bytes();
    let mut blk = [0u8; MAX_SUPER_BYTES];
    for (sb, dst) in row.chunks_exact_mut(bb).enumerate() {
        read_super(p, r, sb, &mut blk);
        dst.copy_from_slice(&blk[..bb]);
    }
}

/// The scalar path: each row rebuilt in ggml's layout and computed by the
/// reference [`super::scalar::super_dot`].
pub(super) fn matmul_scalar(p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    let n = rows.len();
    let mut row = vec![0u8; p.cols() / QK_K * p.ty().block_bytes()];
    for r in rows.clone() {
        read_row(p, r, &mut row);
        for t in 0..acts.batch() {
            out[t * n + (r - rows.start)] = super::scalar::super_dot(p.ty(), &row, acts, t);
        }
    }
}

/// Tokens a batched kernel carries through one pass over a group (16 was
/// faster than 4 and 8 for a 64-token prefill of Gemma 3 270M's Q6_K).
pub(super) const TOKEN_TILE: usize = 16;

/// The driver for the SIMD paths: walks the 8-row groups covering `rows`
/// and calls `kernel(group bytes, t0, out)` for tiles of up to
/// [`TOKEN_TILE`] tokens (`out[i]` = the group's 8 rows for token `t0 + i`),
/// keeping the requested rows (the others are computed and discarded).
pub(super) fn walk_groups(p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32], mut kernel: impl FnMut(&[u8], usize, &mut [[f32; GROUP_ROWS]])) {
    let n = rows.len();
    let mut r = rows.start;
    while r < rows.end {
        let g = r / GROUP_ROWS;
        let first = g * GROUP_ROWS;
        let end = (first + GROUP_ROWS).min(rows.end);
        let mut t0 = 0;
        while t0 < acts.batch() {
            let nt = (acts.batch() - t0).min(TOKEN_TILE);
            let mut acc = [[0.0f32; GROUP_ROWS]; TOKEN_TILE];
            kernel(p.group(g), t0, &mut acc[..nt]);
            for (i, a) in acc[..nt].iter().enumerate() {
                out[(t0 + i) * n + (r - rows.start)..][..end - r].copy_from_slice(&a[r - first..end - first]);
            }
            t0 += nt;
        }
        r = end;
    }
}

/// [`super::Kernels::matmul`] for a packed Q2_K..Q6_K matrix on `path`
/// (shapes checked by the caller).
pub(super) fn matmul(path: super::Path, p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::avx2_packed_kquants::Width;
        use super::Path;
        let (simd, width) = match path {
            Path::Scalar => return matmul_scalar(p, acts, rows, out),
            Path::Avx2(a) => (a, Width::Avx2),
            Path::Avx512(a, w) => (a, Width::Avx512(w)),
            Path::Avx512Vnni(a, w) => (a, Width::Avx512Vnni(w)),
        };
        walk_groups(p, acts, rows, out, |grp, t0, tile| simd.packed_kquant_group(width, p.ty(), grp, acts, t0, tile));
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = path;
        matmul_scalar(p, acts, rows, out)
    }
}
