//! Weights repacked at load time into a row-interleaved layout that lets the
//! SIMD kernels share every activation load and every scale conversion across
//! 8 rows and sum nibble products in 16 bits before widening.
//!
//! Packing is optional and happens only at load: GGUF files (and streamed
//! weight slots) keep ggml's layout, which [`super::Kernels::matmul`] also
//! computes with, and both layouts give bit-identical results.
//!
//! # Layout
//!
//! Rows are taken in groups of [`GROUP_ROWS`] = 8 (the last group repeats its
//! last row to fill up). Group `g` starts at `g * group_bytes` (a multiple of
//! 64) and holds `nb = cols / 32` block records back to back, so a kernel
//! streams one contiguous range and one software prefetch stream covers it.
//! Record `b` is:
//! 1. 8 f16 scales `d` of the 8 rows' block `b` (16 bytes, row order);
//! 2. Q4_1, Q5_1 only: their 8 f16 minimums `m` (16 bytes);
//! 3. Q5_0, Q5_1 only: the fifth-bit planes (32 bytes, below);
//! 4. the quants: 128 bytes (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) or 256 bytes (Q8_0).
//!
//! Records are 144 (Q4_0, IQ4_NL), 160 (Q4_1), 176 (Q5_0), 192 (Q5_1) or 272
//! (Q8_0) bytes, so every 16-byte half of a vector load stays inside one cache line.
//!
//! The quants are 32-byte vectors, each holding one 8-byte chunk of four
//! rows' block data: rows `0,1,4,5` (set A) or `2,3,6,7` (set B), so that after
//! the per-row sums a horizontal add of set A's and set B's vectors yields the
//! 8 rows in order. Q4 (and IQ4_NL) quants are `[A c0, A c1, B c0, B c1]`
//! where chunk `c` is nibble bytes `8c..8c+8` of ggml's `qs` (elements
//! `8c..8c+8` in the low nibbles, `16+8c..` in the high ones); Q8_0 quants are `[A c0..c3, B c0..c3]`
//! with chunk `c` = quants `8c..8c+8`.
//!
//! Q5_0 and Q5_1 store their low four bits as Q4 quants (the nibble vectors
//! above) and their fifth bits (ggml's `qh`) as bit planes, one per nibble
//! vector a kernel unpacks: vector `k = 4 * set + 2 * c + h` is set `set`'s
//! chunk `c`, low (`h = 0`) or high (`h = 1`) nibbles. Byte `p` of the
//! 32-byte planes lines up with byte `p` of those 32-byte nibble vectors, and
//! its bit `k` is the fifth bit of vector `k`'s element at byte `p`. One
//! vector load then serves all eight nibble vectors of a record: for vector
//! `k` a kernel shifts the planes by `4 - k` bits (16-bit shifts; bits that
//! cross a byte land outside bit 4) and keeps bit 4 (`0x10`), which it ORs
//! into the nibbles.

use alloc::vec;
use alloc::vec::Vec;

use super::{KernelError, WeightMatrix};
use crate::ggml_type::GgmlType;
use crate::quant::kquants::{Q5_0_QH_AT, Q5_1_QH_AT};
use crate::quant::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

/// Rows per interleaved group.
pub const GROUP_ROWS: usize = 8;

/// Row order of a 32-byte vector's four 8-byte lanes, per set.
pub(super) const SET_ROWS: [[usize; 4]; 2] = [[0, 1, 4, 5], [2, 3, 6, 7]];

/// Byte geometry of one packed type, from its ggml block layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    /// Quant bytes per record: the block's quants for each of the 8 rows.
    pub quant: usize,
    /// 16-byte scale vectors per record (1: `d`; 2: `d` and `m`), each the
    /// 8 rows' f16 values.
    pub scales: usize,
    /// Offset of the quants inside a ggml block.
    pub qs_at: usize,
    /// Q5_0, Q5_1: offset of the 4-byte `qh` (fifth bits) inside a ggml
    /// block, stored as the record's bit planes; `None` for the other types.
    pub qh_at: Option<usize>,
}

/// Bytes of a record's fifth-bit planes (Q5_0, Q5_1).
pub(super) const PLANES: usize = 32;

/// Bytes of one f16 per row of a group: one scale vector.
pub(super) const SCALE_VECTOR: usize = 2 * GROUP_ROWS;

impl Geometry {
    /// Q4_0: `d`, then 8 rows of 16 nibble bytes (144-byte records).
    pub(super) const Q4_0: Geometry = Geometry { quant: GROUP_ROWS * BlockQ4_0::QS_BYTES, scales: 1, qs_at: BlockQ4_0::QS_AT, qh_at: None };
    /// Q4_1: `d`, `m`, then 8 rows of 16 nibble bytes (160-byte records).
    pub(super) const Q4_1: Geometry = Geometry { quant: GROUP_ROWS * BlockQ4_1::QS_BYTES, scales: 2, qs_at: BlockQ4_1::QS_AT, qh_at: None };
    /// Q5_0: `d`, the fifth-bit planes, then 8 rows of 16 nibble bytes
    /// (176-byte records; ggml's block is `d`, `qh[4]`, `qs[16]`).
    pub(super) const Q5_0: Geometry = Geometry { quant: GROUP_ROWS * QK / 2, scales: 1, qs_at: Q5_0_QH_AT + 4, qh_at: Some(Q5_0_QH_AT) };
    /// Q5_1: `d`, `m`, the fifth-bit planes, then 8 rows of 16 nibble bytes
    /// (192-byte records; ggml's block is `d`, `m`, `qh[4]`, `qs[16]`).
    pub(super) const Q5_1: Geometry = Geometry { quant: GROUP_ROWS * QK / 2, scales: 2, qs_at: Q5_1_QH_AT + 4, qh_at: Some(Q5_1_QH_AT) };
    /// IQ4_NL: as Q4_0 (the nibbles index the non-linear levels).
    pub(super) const IQ4_NL: Geometry = Geometry { quant: GROUP_ROWS * QK / 2, scales: 1, qs_at: 2, qh_at: None };
    /// Q8_0: `d`, then 8 rows of 32 quants (272-byte records).
    pub(super) const Q8_0: Geometry = Geometry { quant: GROUP_ROWS * BlockQ8_0::QS_BYTES, scales: 1, qs_at: BlockQ8_0::QS_AT, qh_at: None };

    pub(super) fn of(ty: GgmlType) -> Option<Geometry> {
        match ty {
            GgmlType::Q4_0 => Some(Geometry::Q4_0),
            GgmlType::Q4_1 => Some(Geometry::Q4_1),
            GgmlType::Q5_0 => Some(Geometry::Q5_0),
            GgmlType::Q5_1 => Some(Geometry::Q5_1),
            GgmlType::Q8_0 => Some(Geometry::Q8_0),
            GgmlType::IQ4_NL => Some(Geometry::IQ4_NL),
            _ => None,
        }
    }

    /// Bytes per block record.
    pub(super) const fn record(&self) -> usize {
        self.quants_at() + self.quant
    }

    /// Offset of the fifth-bit planes inside a record (after the scale vectors).
    pub(super) const fn planes_at(&self) -> usize {
        SCALE_VECTOR * self.scales
    }

    /// Offset of the quants inside a record (after the scale vectors and planes).
    pub(super) const fn quants_at(&self) -> usize {
        self.planes_at() + if self.qh_at.is_some() { PLANES } else { 0 }
    }
}

/// Byte `p` (0..32) of nibble vector `k` (0..8) of a Q5 record: the row of
/// the group it belongs to and the element (0..32) of that row's block (see
/// the module doc).
fn plane_element(k: usize, p: usize) -> (usize, usize) {
    let (set, c, h) = (k / 4, (k / 2) % 2, k % 2);
    (SET_ROWS[set][p / 8], 16 * h + 8 * c + p % 8)
}

/// The largest ggml block of a packed type (a buffer for [`read_block`]).
pub(super) const MAX_BLOCK_BYTES: usize = BlockQ8_0::BYTES;
const _: () = assert!(BlockQ4_0::BYTES <= MAX_BLOCK_BYTES && BlockQ4_1::BYTES <= MAX_BLOCK_BYTES && Q5_1_QH_AT + 4 + QK / 2 <= MAX_BLOCK_BYTES);

/// Bytes of one group of a `ty` matrix with `cols` columns (64-byte multiple).
pub fn group_bytes(ty: GgmlType, cols: usize) -> Option<usize> {
    if let Some(gb) = super::packed_kquants::group_bytes(ty, cols) {
        return Some(gb);
    }
    let g = Geometry::of(ty)?;
    let nb = cols / QK;
    Some((nb * g.record()).div_ceil(64) * 64)
}

/// Bytes needed to pack a `rows x cols` matrix of type `ty`, or `None` if the
/// type has no packed form (F32, F16 stay as they are).
pub fn packed_bytes(ty: GgmlType, rows: usize, cols: usize) -> Option<usize> {
    Some(group_bytes(ty, cols)? * rows.div_ceil(GROUP_ROWS))
}

/// A borrowed packed matrix (bytes written by [`pack_into`]).
#[derive(Clone, Copy, Debug)]
pub struct PackedView<'a> {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    group_bytes: usize,
    data: &'a [u8],
}

impl<'a> PackedView<'a> {
    /// Views `data` (from [`pack_into`] with the same shape) as a packed matrix.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, KernelError> {
        let gb = group_bytes(ty, cols).ok_or(KernelError::UnsupportedType(ty))?;
        if !cols.is_multiple_of(ty.block_elems()) {
            return Err(KernelError::RaggedRow { ty, cols });
        }
        let needed = gb * rows.div_ceil(GROUP_ROWS);
        if data.len() < needed {
            return Err(KernelError::ShortData {
                needed,
                got: data.len(),
            });
        }
        Ok(PackedView {
            ty,
            rows,
            cols,
            group_bytes: gb,
            data: &data[..needed],
        })
    }

    /// Element type of the original matrix.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Rows of the original matrix.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the original matrix.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The bytes of group `g`.
    pub(super) fn group(&self, g: usize) -> &'a [u8] {
        &self.data[g * self.group_bytes..(g + 1) * self.group_bytes]
    }
}

/// Repacks `w` into `out` (exactly [`packed_bytes`] long).
pub fn pack_into(w: &WeightMatrix, out: &mut [u8]) -> Result<(), KernelError> {
    if super::packed_kquants::has_layout(w.ty) {
        return super::packed_kquants::pack_into(w, out);
    }
    let g = Geometry::of(w.ty).ok_or(KernelError::UnsupportedType(w.ty))?;
    WeightMatrix::new(w.ty, w.rows, w.cols, w.data)?;
    let gb = group_bytes(w.ty, w.cols).unwrap();
    let needed = gb * w.rows.div_ceil(GROUP_ROWS);
    if out.len() != needed {
        return Err(KernelError::ShortData { needed, got: out.len() });
    }
    let nb = w.cols / QK;
    let bb = w.ty.block_bytes();
    let chunks = g.quant / 64; // 8-byte chunks per row per block: 2 (Q4) or 4 (Q8)
    for (grp, dst) in out.chunks_exact_mut(gb).enumerate() {
        dst.fill(0);
        let row = |i: usize| w.row((grp * GROUP_ROWS + i).min(w.rows - 1));
        for b in 0..nb {
            let rec = &mut dst[b * g.record()..(b + 1) * g.record()];
            for k in 0..g.scales {
                for i in 0..GROUP_ROWS {
                    let src = &row(i)[b * bb + 2 * k..][..2];
                    rec[SCALE_VECTOR * k + 2 * i..][..2].copy_from_slice(src);
                }
            }
            if let Some(qh_at) = g.qh_at {
                let qh: [u32; GROUP_ROWS] = core::array::from_fn(|i| u32::from_le_bytes(row(i)[b * bb + qh_at..][..4].try_into().unwrap()));
                for p in 0..PLANES {
                    rec[g.planes_at() + p] = (0..8).map(|k| {
                        let (i, e) = plane_element(k, p);
                        (((qh[i] >> e) & 1) as u8) << k
                    }).fold(0, |x, y| x | y);
                }
            }
            let quants = &mut rec[g.quants_at()..];
            for (s, set) in SET_ROWS.iter().enumerate() {
                for c in 0..chunks {
                    for (lane, &i) in set.iter().enumerate() {
                        let src = &row(i)[b * bb + g.qs_at + 8 * c..][..8];
                        let at = ((s * chunks + c) * 4 + lane) * 8;
                        quants[at..at + 8].copy_from_slice(src);
                    }
                }
            }
        }
    }
    Ok(())
}

/// A packed matrix that owns its (64-byte aligned) bytes.
#[derive(Debug)]
pub struct PackedMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    /// `len + ALIGN - 1` bytes, of which `start..start + len` are aligned.
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

/// Alignment of a [`PackedMatrix`]'s bytes: groups start on cache lines.
const ALIGN: usize = 64;

impl PackedMatrix {
    /// Repacks a Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q8_0, Q4_K or Q6_K matrix
    /// (other types have no packed form).
    pub fn pack(w: &WeightMatrix) -> Result<PackedMatrix, KernelError> {
        let len = packed_bytes(w.ty, w.rows, w.cols).ok_or(KernelError::UnsupportedType(w.ty))?;
        let mut m = PackedMatrix::zeroed(w.ty, w.rows, w.cols, len);
        pack_into(w, m.bytes_mut())?;
        Ok(m)
    }

    fn zeroed(ty: GgmlType, rows: usize, cols: usize, len: usize) -> PackedMatrix {
        let storage = vec![0u8; len + ALIGN - 1];
        // A byte pointer can always be aligned; the heap buffer stays put
        // when the Vec moves.
        let start = storage.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN);
        PackedMatrix { ty, rows, cols, storage, start, len }
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    /// A view for [`super::Kernels::matmul`].
    pub fn view(&self) -> PackedView<'_> {
        PackedView::new(self.ty, self.rows, self.cols, self.bytes()).expect("packed by pack()")
    }
}

impl Clone for PackedMatrix {
    /// A copy in its own aligned storage.
    fn clone(&self) -> Self {
        let mut m = PackedMatrix::zeroed(self.ty, self.rows, self.cols, self.len);
        m.bytes_mut().copy_from_slice(self.bytes());
        m
    }
}

/// Reads back row `r`'s block `b` from a packed matrix in ggml's block layout
/// (the scalar path computes from this; tests check it inverts packing).
pub(super) fn read_block(p: &PackedView, r: usize, b: usize, out: &mut [u8; MAX_BLOCK_BYTES]) {
    let g = Geometry::of(p.ty).unwrap();
    let grp = p.group(r / GROUP_ROWS);
    let i = r % GROUP_ROWS;
    let (set, lane) = if let Some(l) = SET_ROWS[0].iter().position(|&x| x == i) {
        (0, l)
    } else {
        (1, SET_ROWS[1].iter().position(|&x| x == i).unwrap())
    };
    let chunks = g.quant / 64;
    let rec = &grp[b * g.record()..(b + 1) * g.record()];
    for k in 0..g.scales {
        out[2 * k..2 * k + 2].copy_from_slice(&rec[SCALE_VECTOR * k + 2 * i..][..2]);
    }
    for c in 0..chunks {
        let at = g.quants_at() + ((set * chunks + c) * 4 + lane) * 8;
        out[g.qs_at + 8 * c..g.qs_at + 8 * c + 8].copy_from_slice(&rec[at..at + 8]);
    }
    if let Some(qh_at) = g.qh_at {
        let mut qh = 0u32;
        for k in 0..8 {
            for p in 0..PLANES {
                let (row, e) = plane_element(k, p);
                if row == i {
                    qh |= u32::from((rec[g.planes_at() + p] >> k) & 1) << e;
                }
            }
        }
        out[qh_at..qh_at + 4].copy_from_slice(&qh.to_le_bytes());
    }
}
