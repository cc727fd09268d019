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

/// The rings the layers live in: pinned layers (ticket = the layer's rank
/// among the pinned ones; every layer when resident; none with `pin=0`) and
/// the streaming slots (none when resident).
pub struct LayerRings {
    pub pinned: Option<SlotRing>,
    pub streamed: Option<SlotRing>,
}

/// The reserved region and the plan it is carved by.
pub struct TensorRegion {
    region: Region,
    /// Regions in other free ranges holding the spilled pinned layers.
    spill: Vec<Region>,
    plan: TensorPlan,
}

fn carve_error(what: &str, e: impl core::fmt::Display) -> String {
    format!("tensor region ({what}): {e}")
}

impl TensorRegion {
    /// Reserves the plan's region (2 MiB aligned).
    pub fn reserve(plan: &TensorPlan) -> Result<TensorRegion, String> {
        let region = mem::reserve_region(plan.region_bytes, tensor_plan::PART_ALIGN).map_err(|e| format!("tensor region: {e}"))?;
        let mut spill = Vec::new();
        for &count in plan.spill.iter().filter(|&&c| c > 0) {
            let bytes = count as u64 * plan.pinned_span;
            spill.push(mem::reserve_region(bytes, 4096).map_err(|e| format!("spill region for {count} pinned layers: {e}"))?);
        }
        Ok(TensorRegion { region, spill, plan: *plan })
    }

    /// Physical addresses of the spill regions.
    pub fn spill_phys(&self) -> Vec<axiom_proto::telemetry::Hex> {
        self.spill.iter().map(|r| axiom_proto::telemetry::Hex(r.phys())).collect()
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

    /// The layer rings, read by `consumers` compute cores: the pinned
    /// layers (loaded once, kept) and, when streaming, the slots the other
    /// layers stream through every token (recycled). Resident: every layer
    /// extent in place, at its offset from the globals (the data section as
    /// it is on disk). Streaming: each pinned layer in its own span after the
    /// globals, then the plan's slots.
    pub fn layer_rings(&mut self, globals: &Extent, layers: &[Extent], consumers: usize) -> Result<LayerRings, String> {
        let plan = self.plan;
        let carve_error = |e| carve_error("layer slots", e);
        if plan.mode == Mode::Resident {
            let parts: Vec<(u64, u64)> = layers.iter().map(|e| (e.offset - globals.offset, e.size)).collect();
            let memory = self.region.carve_slots(parts).map_err(carve_error)?;
            return Ok(LayerRings { pinned: Some(SlotRing::new(memory, consumers, Reuse::Keep)), streamed: None });
        }
        // Pinned ranks 0.. in the region, the rest in the spill regions in order.
        let sizes: Vec<u64> = (0..layers.len()).filter(|&l| plan.is_pinned(l)).map(|l| layers[l].size).collect();
        let (here, mut spilled) = sizes.split_at(plan.pinned_in_region());
        let parts = here.iter().enumerate().map(|(j, &size)| (plan.pinned_offset + j as u64 * plan.pinned_span, size));
        let mut pinned = self.region.carve_slots(parts).map_err(carve_error)?;
        for (region, &count) in self.spill.iter_mut().zip(plan.spill.iter().filter(|&&c| c > 0)) {
            let (these, rest) = spilled.split_at(count.min(spilled.len()));
            spilled = rest;
            let parts = these.iter().enumerate().map(|(j, &size)| (j as u64 * plan.pinned_span, size));
            pinned.extend(region.carve_slots(parts).map_err(carve_error)?);
        }
        let slot = plan.slot_bytes;
        let slots = self.region.carve_slots((0..plan.slots as u64).map(|i| (plan.slots_offset + i * slot, slot))).map_err(carve_error)?;
        Ok(LayerRings {
            pinned: (!pinned.is_empty()).then(|| SlotRing::new(pinned, consumers, Reuse::Keep)),
            streamed: Some(SlotRing::new(slots, consumers, Reuse::Recycle)),
        })
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
            if plan.bytes == 0 {
                // No matrix of this layer has a packed form (K-quants, F32, ...):
                // the cores read them from the extent, and the region has no part for it.
                out.push(PackedLayer { plan, bytes: &[] });
                continue;
            }
            let area = self.region.carve(at, plan.bytes as u64).map_err(|e| carve_error("repacked layers", e))?;
            let source = ring.resident_bytes(i as u64, extent.size as usize).ok_or_else(|| format!("layer {i} is not resident"))?;
            pack_layer(layout, &plan, source, area).map_err(|e| format!("repacking layer {i}: {e}"))?;
            at += packed_layer_span(&plan);
            out.push(PackedLayer { plan, bytes: area });
        }
        Ok(out)
    }
}
