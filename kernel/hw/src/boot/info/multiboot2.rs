//! Multiboot2 information (GRUB's `multiboot2` command): one block of
//! 8-byte-aligned tags.

use super::{le_u32, le_u64, parse_rsdp, BootInfo, BootInfoError, Framebuffer, PhysMem, Protocol, RegionKind, RgbFields, RsdpSource};

pub const MULTIBOOT2_MAGIC: u32 = 0x36D7_6289;

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_MODULE: u32 = 3;
const TAG_BASIC_MEMINFO: u32 = 4;
const TAG_MMAP: u32 = 6;
const TAG_FRAMEBUFFER: u32 = 8;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;
/// Sanity bound on the information block.
const MAX_INFO_LEN: usize = 1 << 20;

pub(super) fn parse(info: u64, mem: &dyn PhysMem) -> Result<BootInfo, BootInfoError> {
    let head = mem.read(info, 8).ok_or(BootInfoError::Unreadable { what: "Multiboot2 information", addr: info })?;
    let total = le_u32(head, 0) as usize;
    if !(16..=MAX_INFO_LEN).contains(&total) {
        return Err(BootInfoError::BadTag { offset: 0, tag: 0, size: total as u32 });
    }
    let b = mem.read(info, total).ok_or(BootInfoError::Unreadable { what: "Multiboot2 information", addr: info })?;
    let mut out = BootInfo::empty(Protocol::Multiboot2);
    let mut basic: Option<(u64, u64)> = None;
    let mut rsdp_new = None;
    let mut rsdp_old = None;

    let mut off = 8;
    loop {
        if off + 8 > total {
            return Err(BootInfoError::BadTag { offset: off, tag: 0, size: 0 });
        }
        let tag = le_u32(b, off);
        let size = le_u32(b, off + 4) as usize;
        if size < 8 || off + size > total {
            return Err(BootInfoError::BadTag { offset: off, tag, size: size as u32 });
        }
        let body = &b[off + 8..off + size];
        match tag {
            TAG_END => break,
            TAG_CMDLINE => out.set_cmdline(body),
            TAG_MODULE if body.len() >= 8 => out.push_module(le_u32(body, 0) as u64, le_u32(body, 4) as u64),
            TAG_BASIC_MEMINFO if body.len() >= 8 => basic = Some((le_u32(body, 0) as u64, le_u32(body, 4) as u64)),
            TAG_MMAP if body.len() >= 8 => {
                let entry_size = le_u32(body, 0) as usize;
                if entry_size < 24 {
                    return Err(BootInfoError::BadMemoryMap { entry_size: entry_size as u32 });
                }
                let mut e = 8;
                while e + entry_size <= body.len() {
                    let entry = &body[e..e + entry_size];
                    out.push_region(le_u64(entry, 0), le_u64(entry, 8), RegionKind::from_multiboot(le_u32(entry, 16)));
                    e += entry_size;
                }
            }
            TAG_FRAMEBUFFER if body.len() >= 22 => {
                out.framebuffer = Some(Framebuffer {
                    addr: le_u64(body, 0),
                    pitch: le_u32(body, 8),
                    width: le_u32(body, 12),
                    height: le_u32(body, 16),
                    bpp: body[20],
                    kind: body[21],
                    rgb: body.get(24..30).and_then(|c| RgbFields::parse(body[21], c)),
                });
            }
            TAG_ACPI_NEW => rsdp_new = parse_rsdp(body, RsdpSource::Multiboot2Tag).ok(),
            TAG_ACPI_OLD => rsdp_old = parse_rsdp(body, RsdpSource::Multiboot2Tag).ok(),
            _ => {}
        }
        off += (size + 7) & !7;
    }

    if out.memory_map().is_empty() {
        match basic {
            Some((lower_kib, upper_kib)) => {
                out.push_region(0, lower_kib * 1024, RegionKind::Usable);
                out.push_region(0x10_0000, upper_kib * 1024, RegionKind::Usable);
            }
            None => return Err(BootInfoError::NoMemoryMap),
        }
    }
    out.rsdp = rsdp_new.or(rsdp_old);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::info::fixture::{put_u16, put_u32, put_u64, FakeMem};
    use crate::boot::info::rsdp::tests::make_rsdp;
    use std::vec::Vec;

    fn tag(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        put_u32(out, kind);
        put_u32(out, 8 + body.len() as u32);
        out.extend_from_slice(body);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
    }

    /// A block like GRUB's on OVMF: cmdline, mmap, framebuffer, both RSDPs.
    fn grub_like(corrupt_new_rsdp: bool) -> Vec<u8> {
        let mut tags = Vec::new();
        tag(&mut tags, TAG_CMDLINE, b"selftest=smp\0");
        tag(&mut tags, 2, b"GRUB 2.06\0");
        let mut meminfo = Vec::new();
        put_u32(&mut meminfo, 640);
        put_u32(&mut meminfo, 7 * 1024);
        tag(&mut tags, TAG_BASIC_MEMINFO, &meminfo);
        let mut mmap = Vec::new();
        put_u32(&mut mmap, 24);
        put_u32(&mut mmap, 0);
        for (base, len, kind) in [(0u64, 0xA0000u64, 1u32), (0x10_0000, 0x700000, 1), (0x80_0000, 0x8000, 4), (0x100_0000, 0x1_0000_0000, 1)] {
            put_u64(&mut mmap, base);
            put_u64(&mut mmap, len);
            put_u32(&mut mmap, kind);
            put_u32(&mut mmap, 0);
        }
        tag(&mut tags, TAG_MMAP, &mmap);
        let mut fb = Vec::new();
        put_u64(&mut fb, 0x8000_0000);
        put_u32(&mut fb, 4096);
        put_u32(&mut fb, 1024);
        put_u32(&mut fb, 768);
        fb.push(32);
        fb.push(1);
        put_u16(&mut fb, 0);
        fb.extend_from_slice(&[16, 8, 8, 8, 0, 8]); // BGRx, as OVMF's GOP
        tag(&mut tags, TAG_FRAMEBUFFER, &fb);
        tag(&mut tags, TAG_ACPI_OLD, &make_rsdp(0, 0x7FE_0000, 0));
        let mut new = make_rsdp(2, 0x7FE_0000, 0x7FE_1000);
        if corrupt_new_rsdp {
            new[30] ^= 0x55;
        }
        tag(&mut tags, TAG_ACPI_NEW, &new);
        tag(&mut tags, TAG_END, &[]);
        let mut block = Vec::new();
        put_u32(&mut block, 8 + tags.len() as u32);
        put_u32(&mut block, 0);
        block.extend_from_slice(&tags);
        block
    }

    #[test]
    fn parses_grub_block() {
        let mut mem = FakeMem::default();
        mem.place(0x10000, grub_like(false));
        let info = BootInfo::parse(MULTIBOOT2_MAGIC, 0x10000, &mem).unwrap();
        assert_eq!(info.protocol, Protocol::Multiboot2);
        assert_eq!(info.cmdline(), "selftest=smp");
        assert_eq!(info.memory_map().len(), 4);
        assert_eq!(info.memory_map()[2].kind, RegionKind::AcpiNvs);
        assert_eq!(info.memory_map()[3].end(), 0x1_0100_0000);
        let rsdp = info.rsdp.unwrap();
        assert_eq!(rsdp.root_table(), (2, 0x7FE_1000), "the ACPI 2.0 RSDP (XSDT) wins");
        let fb = info.framebuffer.unwrap();
        assert_eq!((fb.width, fb.height, fb.bpp, fb.pitch), (1024, 768, 32, 4096));
        assert_eq!(fb.rgb, Some(RgbFields { red: (16, 8), green: (8, 8), blue: (0, 8) }));
    }

    #[test]
    fn corrupt_new_rsdp_falls_back_to_old() {
        let mut mem = FakeMem::default();
        mem.place(0x10000, grub_like(true));
        let info = BootInfo::parse(MULTIBOOT2_MAGIC, 0x10000, &mem).unwrap();
        assert_eq!(info.rsdp.unwrap().root_table(), (0, 0x7FE_0000));
    }

    #[test]
    fn rejects_truncated_and_overlong_tags() {
        let block = grub_like(false);
        // total_size claims more than is readable.
        let mut mem = FakeMem::default();
        mem.place(0x10000, block[..block.len() - 16].to_vec());
        assert!(BootInfo::parse(MULTIBOOT2_MAGIC, 0x10000, &mem).is_err());
        // A tag whose size runs past the block.
        let mut bad = block.clone();
        bad[12..16].copy_from_slice(&4096u32.to_le_bytes());
        let mut mem = FakeMem::default();
        mem.place(0x10000, bad);
        assert!(matches!(
            BootInfo::parse(MULTIBOOT2_MAGIC, 0x10000, &mem),
            Err(BootInfoError::BadTag { offset: 8, tag: 1, size: 4096 })
        ));
        // A block with no end tag.
        let mut no_end = block.clone();
        let n = no_end.len();
        no_end.truncate(n - 8);
        let total = no_end.len() as u32;
        no_end[0..4].copy_from_slice(&total.to_le_bytes());
        let mut mem = FakeMem::default();
        mem.place(0x10000, no_end);
        assert!(BootInfo::parse(MULTIBOOT2_MAGIC, 0x10000, &mem).is_err());
    }
}
