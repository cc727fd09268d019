//! Repacking a model's matrices at load time into the row-interleaved layout
//! of [`crate::matmul::packed`], which the SIMD kernels read about twice as
//! fast as ggml's (and which gives bit-identical results).
//!
//! Per layer, a [`PackedLayerPlan`] says where each matrix goes inside the
//! layer's packed area; [`pack_layer`] fills an area from the layer's extent
//! bytes. [`PackedLayers`] packs a whole resident model (the host, or a
//! kernel holding the model in memory) into one buffer and serves
//! [`LayerWeights`]; a kernel that streams layers can instead pack each slot
//! after it arrives, with the same two functions.

use core::ops::Range;

use alloc::vec::Vec;

use super::layout::{LayerLayout, ModelLayout, TensorRef};
use super::weights::{ggml, LayerWeights};
use super::{LayerSource, ResidentLayers};
use crate::gguf::GgufError;
use crate::matmul::{pack_into, packed_bytes, Matrix, PackedView};

/// Packed areas and matrices start at multiples of this (a cache line).
pub const PACK_ALIGN: usize = 64;

fn align(x: usize) -> usize {
    x.div_ceil(PACK_ALIGN) * PACK_ALIGN
}

/// The `len` bytes of `buf` that start at the first multiple of `align`
/// (a power of two), if `buf` is long enough: allocate `len + align - 1`
/// bytes to be sure. Safe alignment without a custom allocator.
pub fn aligned_part(buf: &mut [u8], align: usize, len: usize) -> Option<&mut [u8]> {
    let skip = buf.as_ptr().align_offset(align);
    buf.get_mut(skip..skip.checked_add(len)?)
}

/// Where a layer's matrices go in its packed area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLayerPlan {
    /// `wq, wk, wv, wo, w_gate, w_up, w_down`: byte range in the area, or
    /// `None` for a type without a packed form (F32, F16: used as they are).
    pub matrices: [Option<Range<usize>>; 7],
    /// Bytes of the area (a multiple of [`PACK_ALIGN`]).
    pub bytes: usize,
}

impl PackedLayerPlan {
    pub fn new(layer: &LayerLayout) -> Self {
        let mut at = 0;
        let mut place = |t: &TensorRef| {
            let n = packed_bytes(t.ty, t.rows, t.cols)?;
            let r = at..at + n;
            at = align(at + n);
            Some(r)
        };
        let matrices = [
            place(&layer.wq),
            place(&layer.wk),
            place(&layer.wv),
            place(&layer.wo),
            place(&layer.w_gate),
            place(&layer.w_up),
            place(&layer.w_down),
        ];
        PackedLayerPlan { matrices, bytes: at }
    }
}

/// Packs the matrices of one layer from its `extent` bytes into `out`
/// (`plan.bytes` long, [`PACK_ALIGN`]-aligned).
pub fn pack_layer(layer: &LayerLayout, plan: &PackedLayerPlan, extent: &[u8], out: &mut [u8]) -> Result<(), GgufError> {
    let mismatch = |what, expected: usize, found: usize| GgufError::ExtentMismatch { what, expected: expected as u64, found: found as u64 };
    if (extent.len() as u64) < layer.extent.end - layer.extent.start {
        return Err(mismatch("layer extent", (layer.extent.end - layer.extent.start) as usize, extent.len()));
    }
    // An empty area (no matrix of the layer has a packed form) has no alignment to check.
    if out.len() != plan.bytes || (plan.bytes > 0 && !(out.as_ptr() as usize).is_multiple_of(PACK_ALIGN)) {
        return Err(mismatch("packed layer area (length, or 64-byte alignment)", plan.bytes, out.len()));
    }
    let tensors = [&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.w_gate, &layer.w_up, &layer.w_down];
    for (t, range) in tensors.into_iter().zip(plan.matrices.iter()) {
        if let Some(r) = range {
            pack_into(&ggml(t, extent), &mut out[r.clone()]).map_err(|_| mismatch("packed matrix", r.len(), 0))?;
        }
    }
    Ok(())
}

/// A resident model's layers with their matrices packed into one buffer
/// (plus, when it has a packed form, the output head).
pub struct PackedLayers<'a> {
    file: ResidentLayers<'a>,
    plans: Vec<PackedLayerPlan>,
    /// Offset of each layer's area in `packed`.
    starts: Vec<usize>,
    /// The packed output head: its range in `packed` and its shape.
    output: Option<(Range<usize>, TensorRef)>,
    packed: &'a [u8],
}

/// Sizes of a [`PackedLayers`] buffer, computed before allocating it.
pub struct PackedPlan {
    plans: Vec<PackedLayerPlan>,
    starts: Vec<usize>,
    output: Option<Range<usize>>,
    bytes: usize,
}

impl PackedPlan {
    pub fn new(layout: &ModelLayout) -> Self {
        let plans: Vec<PackedLayerPlan> = layout.layers.iter().map(PackedLayerPlan::new).collect();
        let mut starts = Vec::with_capacity(plans.len());
        let mut at = 0;
        for p in &plans {
            starts.push(at);
            at += p.bytes;
        }
        let o = &layout.globals.output;
        let output = packed_bytes(o.ty, o.rows, o.cols).map(|n| at..at + n);
        if let Some(r) = &output {
            at = align(r.end);
        }
        PackedPlan { plans, starts, output, bytes: at }
    }

    /// Bytes of the buffer [`PackedLayers::pack`] needs.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<'a> PackedLayers<'a> {
    /// Packs every layer (and the output head) of `file` into `buf`
    /// (`plan.bytes()` long, [`PACK_ALIGN`]-aligned; the kernel passes part
    /// of its weight pool, the host an allocation).
    pub fn pack(file: ResidentLayers<'a>, layout: &ModelLayout, globals: &[u8], plan: PackedPlan, buf: &'a mut [u8]) -> Result<Self, GgufError> {
        if buf.len() != plan.bytes || !(buf.as_ptr() as usize).is_multiple_of(PACK_ALIGN) {
            return Err(GgufError::ExtentMismatch { what: "packed buffer (length, or 64-byte alignment)", expected: plan.bytes as u64, found: buf.len() as u64 });
        }
        for (l, (p, &start)) in plan.plans.iter().zip(&plan.starts).enumerate() {
            pack_layer(&layout.layers[l], p, file.extent(l), &mut buf[start..start + p.bytes])?;
        }
        if let Some(r) = &plan.output {
            let g = &layout.globals;
            if (globals.len() as u64) < g.extent.end - g.extent.start {
                return Err(GgufError::ExtentMismatch { what: "globals extent", expected: g.extent.end - g.extent.start, found: globals.len() as u64 });
            }
            pack_into(&ggml(&g.output, globals), &mut buf[r.clone()])
                .map_err(|_| GgufError::ExtentMismatch { what: "packed output head", expected: r.len() as u64, found: 0 })?;
        }
        let output = plan.output.map(|r| (r, layout.globals.output));
        Ok(PackedLayers { file, plans: plan.plans, starts: plan.starts, output, packed: buf })
    }

    /// The packed output head, if its type has a packed form: put it in
    /// [`super::GlobalWeights::output`].
    pub fn output(&self) -> Option<Matrix<'a>> {
        let (r, o) = self.output.clone()?;
        PackedView::new(o.ty, o.rows, o.cols, &self.packed[r]).ok().map(Matrix::Packed)
    }

    /// The packed bytes (e.g. to advise the OS to back them with huge pages).
    pub fn bytes(&self) -> &'a [u8] {
        self.packed
    }
}

impl LayerSource for PackedLayers<'_> {
    fn layer(&self, layer: usize) -> LayerWeights<'_> {
        let (p, start) = (&self.plans[layer], self.starts[layer]);
        match LayerWeights::from_packed(self.file.layout(layer), p, self.file.extent(layer), &self.packed[start..start + p.bytes]) {
            Ok(w) => w,
            Err(e) => panic!("packed layer {layer}: {e}"),
        }
    }
}
