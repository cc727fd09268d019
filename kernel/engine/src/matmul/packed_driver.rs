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

/// One group of a packed matrix with the activations it was checked
/// against: its type has a packed form and the group holds one record per
/// block of the activations' rows. Made only by [`matmul_packed`], which
/// checks the whole matrix once; the fields are private to this module.
pub(super) struct Group<'a> {
    ty: GgmlType,
    bytes: &'a [u8],
    acts: &'a ActBuf,
}

impl<'a> Group<'a> {
    pub(super) fn ty(&self) -> GgmlType {
        self.ty
    }

    /// The group's first byte (records follow, see [`super::packed`]).
    pub(super) fn ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    pub(super) fn acts(&self) -> &'a ActBuf {
        self.acts
    }
}

/// One ISA's kernels for one [`Group`]. Implemented by the ISA's capability
/// type, so a value proves the CPU can run them.
pub(super) trait GroupKernels: Copy {
    /// Token 0 of the activations against the group: its 8 rows' outputs.
    fn single(self, group: Group<'_>) -> [f32; GROUP_ROWS];

    /// Tokens `t0..t0 + out.len()` of the activations against the group
    /// (`out.len() <= TOKEN_TILE`). Panics if they are not tokens of them.
    fn batch(self, group: Group<'_>, t0: usize, out: &mut [[f32; GROUP_ROWS]]);
}

/// Implements [`GroupKernels`] for an ISA's capability type `$token` with its
/// `unsafe` group kernels `$single` and `$batch` (`(ty, group pointer, acts)`
/// and `(ty, group pointer, acts, t0, out)`), which need the ISA `$isa` and
/// read the group's records and the activations' blocks.
macro_rules! impl_group_kernels {
    ($token:ty, $isa:literal, $single:ident, $batch:ident) => {
        impl GroupKernels for $token {
            fn single(self, g: Group<'_>) -> [f32; GROUP_ROWS] {
                // SAFETY: `self` exists only on a CPU that runs the ISA named
                // in the impl; a `Group` holds a record for every block of
                // its activations (checked by `matmul_packed`), which hold
                // at least one token.
                unsafe { $single(g.ty(), g.ptr(), g.acts()) }
            }

            fn batch(self, g: Group<'_>, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                assert!(t0 + out.len() <= g.acts().batch() && out.len() <= TOKEN_TILE, "tokens {t0}.. of {}", g.acts().batch());
                // SAFETY: as in `single`, for tokens t0..t0 + out.len() of
                // the activations (asserted above).
                unsafe { $batch(g.ty(), g.ptr(), g.acts(), t0, out) }
            }
        }
    };
}
pub(super) use impl_group_kernels;

/// `out[t * rows.len() + (r - rows.start)]` = row `r` of `p` against token
/// `t` of `acts`, for the rows in `rows` (shapes checked by the caller,
/// [`super::check_shapes`]).
pub(super) fn matmul_packed(kernels: impl GroupKernels, p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    // What every `Group` promises its kernels.
    let ty = p.ty();
    let record = Geometry::of(ty).unwrap_or_else(|| panic!("{ty} has no packed form")).record();
    let group_bytes = p.group(0).len();
    assert!(group_bytes >= acts.blocks() * record && acts.batch() >= 1, "a {ty} group of {group_bytes} bytes for {} blocks", acts.blocks());
    let n = rows.len();
    let mut r = rows.start;
    while r < rows.end {
        let g = r / GROUP_ROWS;
        let first = g * GROUP_ROWS;
        let end = (first + GROUP_ROWS).min(rows.end);
        let group = || Group { ty, bytes: p.group(g), acts };
        let mut store = |t: usize, v: &[f32; GROUP_ROWS]| {
            out[t * n + (r - rows.start)..][..end - r].copy_from_slice(&v[r - first..end - first]);
        };
        if acts.batch() == 1 {
            store(0, &kernels.single(group()));
        } else {
            let mut t0 = 0;
            while t0 < acts.batch() {
                let nt = (acts.batch() - t0).min(TOKEN_TILE);
                let mut acc = [[0.0f32; GROUP_ROWS]; TOKEN_TILE];
                kernels.batch(group(), t0, &mut acc[..nt]);
                for (i, a) in acc[..nt].iter().enumerate() {
                    store(t0 + i, a);
                }
                t0 += nt;
            }
        }
        r = end;
    }
}
