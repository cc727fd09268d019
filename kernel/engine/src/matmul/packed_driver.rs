//! The matmul driver for the packed (row-interleaved) layout, shared by every
//! SIMD ISA: it walks the 8-row groups that cover a row range, hands each
//! group to the ISA's [`GroupKernels`] (one token, or tiles of
//! [`TOKEN_TILE`] tokens when prefilling) and keeps the requested rows. Rows
//! of a group outside the range are computed and discarded, so tiles aligned
//! to [`GROUP_ROWS`] waste nothing.

use core::ops::Range;

use super::packed::{Geometry, PackedView, GROUP_ROWS};
use super::ActBuf;
use crate::ggml_type::GgmlType;

/// Tokens a batched packed kernel carries through one pass over a group.
pub(super) const TOKEN_TILE: usize = 16;

/// One ISA's kernels for one group of a packed matrix (`group`: the group's
/// bytes, see [`super::packed`]). Implemented by the ISA's capability type,
/// so a value proves the CPU can run them.
pub(super) trait GroupKernels: Copy {
    /// Token 0 of `acts` against the group: its 8 rows' outputs.
    fn single(self, ty: GgmlType, group: &[u8], acts: &ActBuf) -> [f32; GROUP_ROWS];

    /// Tokens `t0..t0 + out.len()` of `acts` against the group
    /// (`out.len() <= TOKEN_TILE`).
    fn batch(self, ty: GgmlType, group: &[u8], acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]);
}

/// What the group kernels' raw loads rely on, asserted once per group by
/// every implementation: `ty` has a packed form, `group` holds one record per
/// block of the activations' row, and `tokens` are tokens of `acts`.
pub(super) fn check_group(ty: GgmlType, group: &[u8], acts: &ActBuf, tokens: Range<usize>) {
    let record = Geometry::of(ty).unwrap_or_else(|| panic!("{ty} has no packed form")).record();
    assert!(group.len() >= acts.blocks() * record, "a {ty} group of {} bytes for {} blocks", group.len(), acts.blocks());
    assert!(tokens.end <= acts.batch() && tokens.len() <= TOKEN_TILE, "tokens {tokens:?} of {}", acts.batch());
}

/// Implements [`GroupKernels`] for an ISA's capability type `$token` with its
/// `unsafe` group kernels `$single` and `$batch` (`(ty, group pointer, acts)`
/// and `(ty, group pointer, acts, t0, out)`), which need the ISA `$isa` and
/// read only inside what [`check_group`] checked.
macro_rules! impl_group_kernels {
    ($token:ty, $isa:literal, $single:ident, $batch:ident) => {
        impl GroupKernels for $token {
            fn single(self, ty: GgmlType, group: &[u8], acts: &ActBuf) -> [f32; GROUP_ROWS] {
                check_group(ty, group, acts, 0..1);
                // SAFETY: `self` exists only on a CPU that runs the ISA named
                // in the impl; `check_group` bounds every record and
                // activation block the kernel reads.
                unsafe { $single(ty, group.as_ptr(), acts) }
            }

            fn batch(self, ty: GgmlType, group: &[u8], acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                check_group(ty, group, acts, t0..t0 + out.len());
                // SAFETY: as in `single`, for tokens t0..t0 + out.len().
                unsafe { $batch(ty, group.as_ptr(), acts, t0, out) }
            }
        }
    };
}
pub(super) use impl_group_kernels;

/// `out[t * rows.len() + (r - rows.start)]` = row `r` of `p` against token
/// `t` of `acts`, for the rows in `rows` (shapes checked by the caller,
/// [`super::check_shapes`]).
pub(super) fn matmul_packed(kernels: impl GroupKernels, p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    let n = rows.len();
    let mut r = rows.start;
    while r < rows.end {
        let g = r / GROUP_ROWS;
        let first = g * GROUP_ROWS;
        let end = (first + GROUP_ROWS).min(rows.end);
        let group = p.group(g);
        let mut store = |t: usize, v: &[f32; GROUP_ROWS]| {
            out[t * n + (r - rows.start)..][..end - r].copy_from_slice(&v[r - first..end - first]);
        };
        if acts.batch() == 1 {
            store(0, &kernels.single(p.ty(), group, acts));
        } else {
            let mut t0 = 0;
            while t0 < acts.batch() {
                let nt = (acts.batch() - t0).min(TOKEN_TILE);
                let mut acc = [[0.0f32; GROUP_ROWS]; TOKEN_TILE];
                kernels.batch(p.ty(), group, acts, t0, &mut acc[..nt]);
                for (i, a) in acc[..nt].iter().enumerate() {
                    store(t0 + i, a);
                }
                t0 += nt;
            }
        }
        r = end;
    }
}
