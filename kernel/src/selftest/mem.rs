//! `selftest=mem`: exercises the memory API other parts of the kernel use:
//! DMA buffers (zeroed, contiguous, phys == virt), `virt_to_phys`, uncached
//! MMIO mappings (and the refusal to remap RAM), and the one large reserved
//! region. Reports `@mem`.

use alloc::format;
use alloc::string::String;

use axiom_kernel::cmdline::Cmdline;

use crate::mem::{self, dma, paging::MapError};
use crate::telemetry;

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("memory selftest: {what}"))
    }
}

pub fn run(_cmd: &Cmdline) -> Result<(), String> {
    // DMA: odd size, page alignment, zeroed, identity-mapped.
    let buf = dma::alloc(3 * 4096 + 5, 4096).map_err(|e| format!("{e}"))?;
    check(buf.phys % 4096 == 0, "DMA buffer is page aligned")?;
    check(buf.virt as u64 == buf.phys, "DMA buffer is identity-mapped")?;
    // SAFETY: the buffer is ours, `len` bytes long, mapped.
    let bytes = unsafe { core::slice::from_raw_parts_mut(buf.virt, buf.len) };
    check(bytes.iter().all(|&b| b == 0), "DMA buffer is zeroed")?;
    bytes.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    check(bytes[4096 * 3 + 4] == (4096 * 3 + 4) as u8, "DMA buffer is writable to its end")?;
    for off in [0u64, 4096, 3 * 4096 + 4] {
        check(mem::virt_to_phys(buf.phys + off) == Some(buf.phys + off), "virt_to_phys inside the DMA buffer")?;
    }
    let big = dma::alloc(1 << 20, 1 << 20).map_err(|e| format!("{e}"))?;
    check(big.phys % (1 << 20) == 0, "1 MiB DMA buffer is 1 MiB aligned")?;
    check(mem::virt_to_phys(0x7F00_DEAD_0000).is_none(), "an unmapped address has no physical address")?;

    // MMIO: the IOAPIC page (uncached); remapping is idempotent; RAM is refused.
    let mmio = mem::map_mmio(0xFEC0_0000, 4096).map_err(|e| format!("{e}"))?;
    check(mmio.virt as u64 == 0xFEC0_0000, "MMIO is identity-mapped")?;
    mem::map_mmio(0xFEC0_0000, 4096).map_err(|e| format!("second map_mmio: {e}"))?;
    check(
        matches!(mem::map_mmio(buf.phys, 4096), Err(MapError::OverlapsRam { .. })),
        "map_mmio refuses RAM (it stays write-back)",
    )?;

    // The large contiguous region the inference engine carves its pools from.
    let before = mem::largest_free();
    let want = (before / 2) & !((2 << 20) - 1);
    let region = mem::reserve_region(want, 2 << 20).map_err(|e| format!("{e}"))?;
    check(region.start % (2 << 20) == 0 && region.len == want, "region size and 2 MiB alignment")?;
    let last = region.start + region.len - 8;
    for addr in [region.start, region.start + region.len / 2, last] {
        // SAFETY: inside the region just reserved for us, identity-mapped RAM.
        unsafe {
            core::ptr::write_volatile(addr as *mut u64, addr ^ 0xA5A5);
            check(core::ptr::read_volatile(addr as *const u64) == addr ^ 0xA5A5, "region is usable RAM")?;
        }
    }
    check(buf.phys + buf.len as u64 <= region.start || buf.phys >= region.start + region.len, "DMA and region disjoint")?;
    check(mem::reserve_region(u64::MAX / 2, 4096).is_err(), "an impossible reservation fails cleanly")?;
    telemetry::emit("mem", |o| {
        o.fmt("dma_phys", format_args!("{:#x}", buf.phys)).u64("dma_bytes", buf.len as u64);
        o.fmt("region_phys", format_args!("{:#x}", region.start)).u64("region_mib", region.len >> 20);
        o.u64("largest_free_before_mib", before >> 20).u64("largest_free_after_mib", mem::largest_free() >> 20);
    });
    Ok(())
}
