//! The tensor region: one physically contiguous block reserved from the
//! hardware layer and carved by the memory plan into the weight pool
//! (globals, layer slots, the repacked head and layers) and the inference
//! state (KV slabs and activations). Every part comes from
//! [`axiom_hw::mem::Region`], which checks that it lies inside the block and
//! overlaps no other part; the layer slots go to the slot ring, which alone
//! gives access to them.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use axiom_engine::image::Extent;
use axiom_engine::model::packed::pack_layer;
use axiom_engine::model::{LayerLayout, PackedLayerPlan};
use axiom_hw::mem::slot_ring::{Reuse, SlotRing};
use axiom_hw::mem::{self, Region};

use crate::tensor_plan::{self, Mode, TensorPlan};

/// Bytes each repacked layer takes in the region (4 KiB per layer boundary).
fn packed_layer_span(plan: &PackedLayerPlan) -> u64 {
    plan.bytes.div_ceil(4096) as u64 * 4096
}

/// Bytes [`TensorRegion::repack_resident`] needs for `layouts`.
pub fn packed_layers_bytes(layouts: &[LayerLayout]) -> u64 {
    layouts.iter().map(|l| packed_layer_span(&PackedLayerPlan::new(l))).sum()
}

/// A resident layer's repacked matrices.
pub struct PackedLayer {
    pub plan: PackedLayerPlan,
    pub bytes: &'static [u8],
}

/// The reserved region and the plan it is carved by.
pub struct TensorRegion {
    region: Region,
    plan: TensorPlan,
}

fn carve_error(what: &str, e: impl core::fmt::Display) -> String {
    format!("tensor region ({what}): {e}")
}

impl TensorRegion {
    /// Reserves the plan's region (2 MiB aligned).
    pub fn reserve(plan: &TensorPlan) -> Result<TensorRegion, String> {
        let region = mem::reserve_region(plan.region_bytes, tensor_plan::PART_ALIGN).map_err(|e| format!("tensor region: {e}"))?;
        Ok(TensorRegion { region, plan: *plan })
    }

    /// Physical address of the region.
    pub fn phys(&self) -> u64 {
        self.region.phys()
    }

    /// Where the globals extent is read to: the start of the weight pool.
    pub fn globals(&mut self, bytes: u64) -> Result<&'static mut [u8], String> {
        self.region.carve(0, bytes).map_err(|e| carve_error("globals", e))
    }

    /// The repacked output head's `bytes`, after every slot.
    pub fn packed_head(&mut self, bytes: u64) -> Result<&'static mut [u8], String> {
        self.region.carve(self.plan.head_offset, bytes).map_err(|e| carve_error("packed output head", e))
    }

    /// The inference state (KV slabs and activations) as the engine's
    /// floats, zeroed.
    pub fn state(&mut self) -> Result<&'static mut [f32], String> {
        let floats = ((self.plan.region_bytes - self.plan.kv_offset) / 4) as usize;
        self.region.carve_f32_zeroed(self.plan.kv_offset, floats).map_err(|e| carve_error("inference state", e))
    }

    /// The layer slots as a slot ring read by `consumers` compute cores.
    /// Resident: every layer extent in place, at its offset from the
    /// globals (the data section as it is on disk), kept once loaded.
    /// Streaming: the plan's slots after the globals, recycled.
    pub fn slot_ring(&mut self, globals: &Extent, layers: &[Extent], consumers: usize) -> Result<SlotRing, String> {
        let (parts, reuse): (Vec<(u64, u64)>, Reuse) = match self.plan.mode {
            Mode::Resident => (layers.iter().map(|e| (e.offset - globals.offset, e.size)).collect(), Reuse::Keep),
            Mode::Streaming => {
                let slot = self.plan.slot_bytes;
                ((0..self.plan.slots as u64).map(|i| (globals.size + i * slot, slot)).collect(), Reuse::Recycle)
            }
        };
        let memory = self.region.carve_slots(parts).map_err(|e| carve_error("layer slots", e))?;
        Ok(SlotRing::new(memory, consumers, reuse))
    }

    /// Repacks every resident layer (loaded and verified in `ring`) into the
    /// engine's row-interleaved layout at the plan's offset of the weight
    /// pool; the compute cores then read the matrices from the copies and
    /// the norms from the extents. Runs once at boot, before any core
    /// computes.
    pub fn repack_resident(&mut self, layouts: &[LayerLayout], extents: &[Extent], ring: &SlotRing) -> Result<Vec<PackedLayer>, String> {
        let mut at = self.plan.packed_layers_offset.ok_or("the plan holds no repacked layers")?;
        let mut out = Vec::with_capacity(layouts.len());
        for (i, (layout, extent)) in layouts.iter().zip(extents).enumerate() {
            let plan = PackedLayerPlan::new(layout);
            // A layer none of whose matrices has a packed form (K-quants,
            // Q5_0, ...) takes no room: nothing to carve.
            let area: &'static mut [u8] = if plan.bytes == 0 { &mut [] } else { self.region.carve(at, plan.bytes as u64).map_err(|e| carve_error("repacked layers", e))? };
            let source = ring.resident_bytes(i as u64, extent.size as usize).ok_or_else(|| format!("layer {i} is not resident"))?;
            pack_layer(layout, &plan, source, area).map_err(|e| format!("repacking layer {i}: {e}"))?;
            at += packed_layer_span(&plan);
            out.push(PackedLayer { plan, bytes: area });
        }
        Ok(out)
    }
}
