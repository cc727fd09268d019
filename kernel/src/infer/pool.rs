//! The tensor region in memory: the reserved physical range carved by the
//! plan into the weight pool (globals + layer slots) and the inference state
//! (KV slabs + activations). This is the one place that turns raw physical
//! memory into Rust slices; everything above works with the slices and the
//! slot ring's guarantees.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use axiom_engine::model::packed::pack_layer;
use axiom_engine::model::{LayerLayout, PackedLayerPlan};

use axiom_drivers::nvme::ReadBuffer;
use axiom_kernel::tensor_plan::TensorPlan;

use crate::mem::{self, PhysRegion};

/// One layer slot: a fixed byte range of the weight pool, written by NVMe
/// DMA while the slot is `Streaming` and read by the compute cores while it
/// is `Computing`. Kept as an address range, never as a long-lived slice,
/// because the device writes it behind Rust's back.
#[derive(Clone, Copy, Debug)]
pub struct SlotMem {
    addr: usize,
    len: usize,
}

impl SlotMem {
    /// The first `len` bytes as a DMA destination.
    ///
    /// # Safety
    /// The caller must own the slot (ring state `Streaming` for its ticket)
    /// until the read's completion is delivered.
    pub unsafe fn read_buffer(&self, len: usize) -> ReadBuffer {
        assert!(len <= self.len, "read of {len} bytes into a slot of {}", self.len);
        // SAFETY: identity-mapped RAM inside the reserved region, owned by the
        // caller per this function's contract.
        unsafe { ReadBuffer::new(self.addr as *mut u8, len) }
    }

    /// The first `len` bytes, for reading.
    ///
    /// # Safety
    /// Nothing may write the slot while the returned slice lives: the caller
    /// holds it `Computing` (or `Resident` and not reused) for its ticket.
    pub unsafe fn bytes<'a>(&self, len: usize) -> &'a [u8] {
        assert!(len <= self.len, "{len} bytes of a slot of {}", self.len);
        // SAFETY: in the reserved region, which lives forever; no writer per
        // this function's contract.
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, len) }
    }
}

/// The carved region.
pub struct TensorRegion {
    pub region: PhysRegion,
    /// Where the globals extent lands (start of the weight pool).
    pub globals: SlotMem,
    /// The inference state: KV slabs and activations, as the engine's floats.
    pub state: &'static mut [f32],
    head_taken: bool,
    packed_taken: bool,
}

/// A resident layer's repacked matrices.
pub struct PackedLayer {
    pub plan: PackedLayerPlan,
    pub bytes: &'static [u8],
}

/// Bytes `pack_resident` needs for `layouts` (4 KiB per layer boundary).
pub fn packed_layers_bytes(layouts: &[LayerLayout]) -> u64 {
    layouts.iter().map(|l| PackedLayerPlan::new(l).bytes.div_ceil(4096) as u64 * 4096).sum()
}

impl TensorRegion {
    /// Reserves the plan's region and zeroes the state part (the weight pool
    /// is filled by DMA). `globals_bytes` is the globals extent's size.
    pub fn reserve(plan: &TensorPlan, globals_bytes: u64) -> Result<TensorRegion, mem::OutOfMemory> {
        let region = mem::reserve_region(plan.region_bytes, axiom_kernel::tensor_plan::PART_ALIGN)?;
        let base = region.start as usize;
        let state_bytes = (plan.region_bytes - plan.kv_offset) as usize;
        let state_ptr = (base + plan.kv_offset as usize) as *mut f32;
        // SAFETY: the range lies inside the region just reserved for us alone
        // (identity-mapped RAM, 2 MiB aligned so f32-aligned); it is zeroed
        // before the slice is made, and handed out once, for the kernel's life.
        let state = unsafe {
            core::ptr::write_bytes(state_ptr as *mut u8, 0, state_bytes);
            core::slice::from_raw_parts_mut(state_ptr, state_bytes / 4)
        };
        Ok(TensorRegion { region, globals: SlotMem { addr: base, len: globals_bytes as usize }, state, head_taken: false, packed_taken: false })
    }

    /// The globals' bytes, to read them from disk (once: the region hands
    /// them out a single time, after which the engine only reads them).
    pub fn take_globals(&mut self) -> &'static mut [u8] {
        let g = core::mem::replace(&mut self.globals, SlotMem { addr: 0, len: 0 });
        assert!(g.addr != 0, "globals taken twice");
        // SAFETY: the first bytes of our reserved region, never handed out
        // before (the slot is emptied above) and never freed.
        unsafe { core::slice::from_raw_parts_mut(g.addr as *mut u8, g.len) }
    }

    /// The packed output head's bytes (`len` at `offset` in the weight pool),
    /// handed out once, like the globals.
    pub fn take_head(&mut self, offset: u64, len: u64) -> &'static mut [u8] {
        assert!(!self.head_taken, "packed head taken twice");
        self.head_taken = true;
        let addr = self.region.start as usize + offset as usize;
        // SAFETY: inside the weight pool of our reserved region, after every
        // slot (the plan puts the head there), handed out once, never freed.
        unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len as usize) }
    }

    /// Repacks every resident layer (loaded and verified in `slots`) into
    /// the engine's row-interleaved layout at `offset` of the weight pool;
    /// the compute cores then read the matrices from the copies and the
    /// norms from the extents. Runs once at boot, before any core computes.
    pub fn pack_resident(&mut self, offset: u64, layouts: &[LayerLayout], slots: &[SlotMem]) -> Result<Vec<PackedLayer>, String> {
        assert!(!self.packed_taken, "resident layers packed twice");
        self.packed_taken = true;
        let mut at = self.region.start as usize + offset as usize;
        let mut out = Vec::with_capacity(layouts.len());
        for (i, (layout, slot)) in layouts.iter().zip(slots).enumerate() {
            let plan = PackedLayerPlan::new(layout);
            // SAFETY: `at..at + plan.bytes` lies in the weight pool area the
            // plan reserved for the copies (sized by `packed_layers_bytes`),
            // disjoint from the extents; each layer's part is handed out once.
            let area = unsafe { core::slice::from_raw_parts_mut(at as *mut u8, plan.bytes) };
            // SAFETY: resident slots are filled and verified; nothing writes
            // them any more (the ring keeps them Resident for good).
            let extent = unsafe { slot.bytes(slot.len) };
            pack_layer(layout, &plan, extent, area).map_err(|e| format!("repacking layer {i}: {e}"))?;
            at += plan.bytes.div_ceil(4096) * 4096;
            out.push(PackedLayer { plan, bytes: area });
        }
        Ok(out)
    }

    /// Slot memory for resident mode: every layer extent in place, at its
    /// offset from the globals (the data section copied as it is on disk).
    pub fn resident_slots(&self, globals_offset: u64, extents: impl Iterator<Item = (u64, u64)>) -> Vec<SlotMem> {
        let base = self.region.start as usize;
        extents.map(|(offset, size)| SlotMem { addr: base + (offset - globals_offset) as usize, len: size as usize }).collect()
    }

    /// Slot memory for streaming: `count` slots of `slot_bytes` after the globals.
    pub fn streaming_slots(&self, globals_bytes: u64, count: usize, slot_bytes: u64) -> Vec<SlotMem> {
        let first = self.region.start as usize + globals_bytes as usize;
        (0..count).map(|i| SlotMem { addr: first + i * slot_bytes as usize, len: slot_bytes as usize }).collect()
    }
}
