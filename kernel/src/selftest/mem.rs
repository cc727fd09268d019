//! `selftest=mem`: exercises the memory API the rest of the kernel uses:
//! DMA buffers (zeroed, contiguous, phys == virt), `virt_to_phys`, uncached
//! MMIO mappings (and the refusal to map RAM or the Local APIC), and the one
//! large reserved region with its checked carving; then writes and reads
//! back every free 4 KiB frame (above 4 GiB too). Reports `@mem`.

use alloc::format;
use alloc::string::String;

use axiom_hw::mem::{self, dma, CarveError, MapError};
use axiom_proto::telemetry::events::MemSelfTest;
use axiom_proto::telemetry::Hex;

use crate::boot::Context;
use crate::telemetry;

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("memory selftest: {what}"))
    }
}

pub fn run(_ctx: &Context) -> Result<(), String> {
    // DMA: odd size, page alignment, zeroed, identity-mapped.
    let mut buf = dma::alloc(3 * 4096 + 5, 4096).map_err(|e| format!("{e}"))?;
    check(buf.phys() % 4096 == 0, "DMA buffer is page aligned")?;
    check(buf.as_slice().as_ptr() as u64 == buf.phys(), "DMA buffer is identity-mapped")?;
    check(buf.as_slice().iter().all(|&b| b == 0), "DMA buffer is zeroed")?;
    buf.as_mut_slice().iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    check(core::hint::black_box(buf.as_slice())[4096 * 3 + 4] == (4096 * 3 + 4) as u8, "DMA buffer is writable to its end")?;
    for off in [0u64, 4096, 3 * 4096 + 4] {
        check(mem::virt_to_phys(buf.phys() + off) == Some(buf.phys() + off), "virt_to_phys inside the DMA buffer")?;
    }
    let big = dma::alloc(1 << 20, 1 << 20).map_err(|e| format!("{e}"))?;
    check(big.phys() % (1 << 20) == 0, "1 MiB DMA buffer is 1 MiB aligned")?;
    check(mem::virt_to_phys(0x7F00_DEAD_0000).is_none(), "an unmapped address has no physical address")?;

    // MMIO: the IOAPIC page (uncached); remapping is idempotent; RAM and the
    // Local APIC's registers are refused.
    let mmio = mem::map_mmio(0xFEC0_0000, 4096).map_err(|e| format!("{e}"))?;
    check(mmio.base_address() as u64 == 0xFEC0_0000, "MMIO is identity-mapped")?;
    mem::map_mmio(0xFEC0_0000, 4096).map_err(|e| format!("second map_mmio: {e}"))?;
    check(matches!(mem::map_mmio(buf.phys(), 4096), Err(MapError::OverlapsRam { .. })), "map_mmio refuses RAM (it stays write-back)")?;
    check(matches!(mem::map_mmio(0xFEE0_0000, 4096), Err(MapError::Reserved { .. })), "map_mmio refuses the Local APIC page")?;

    // Every free frame, below and above 4 GiB, is usable RAM of its own.
    let frames = mem::check_free_frames();
    if let Some(bad) = frames.first_bad {
        return Err(format!("memory selftest: the frame at {bad:#x} does not hold what was written to it"));
    }
    check(frames.frames > 0, "free frames exist")?;

    // The large contiguous region the inference engine carves its pools from.
    let before = mem::largest_free();
    let want = (before / 2) & !((2 << 20) - 1);
    let mut region = mem::reserve_region(want, 2 << 20).map_err(|e| format!("{e}"))?;
    check(region.phys() % (2 << 20) == 0 && region.len() == want, "region size and 2 MiB alignment")?;
    for at in [0, region.len() / 2, region.len() - 8] {
        let word = region.carve(at, 8).map_err(|e| format!("{e}"))?;
        let value = (region.phys() + at) ^ 0xA5A5;
        word.copy_from_slice(&value.to_le_bytes());
        check(core::hint::black_box(&*word) == value.to_le_bytes(), "region is usable RAM")?;
    }
    check(matches!(region.carve(region.len() / 2 + 4, 8), Err(CarveError::Overlaps { .. })), "region parts never overlap")?;
    check(matches!(region.carve(region.len() - 4, 8), Err(CarveError::OutOfBounds { .. })), "region parts stay inside")?;
    let (rs, re) = (region.phys(), region.phys() + region.len());
    check(buf.phys() + buf.len() as u64 <= rs || buf.phys() >= re, "DMA and region disjoint")?;
    check(mem::reserve_region(u64::MAX / 2, 4096).is_err(), "an impossible reservation fails cleanly")?;
    telemetry::emit(&MemSelfTest {
        dma_phys: Hex(buf.phys()),
        dma_bytes: buf.len() as u64,
        region_phys: Hex(rs),
        region_mib: region.len() >> 20,
        largest_free_before_mib: before >> 20,
        largest_free_after_mib: mem::largest_free() >> 20,
        frames_checked: frames.frames,
        frames_above_4g: frames.frames_above_4g,
        highest_frame_end: Hex(frames.highest),
    });
    Ok(())
}
