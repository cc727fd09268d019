//! Multiboot1 information structure (what QEMU's `-kernel` and GRUB's
//! `multiboot` command hand over). Its fields point to scattered structures,
//! read through [`PhysMem`].

use super::{le_u32, le_u64, read_c_string, BootInfo, BootInfoError, Framebuffer, PhysMem, Protocol, RegionKind, RgbFields};

pub const MULTIBOOT1_MAGIC: u32 = 0x2BAD_B002;

const FLAG_MEM: u32 = 1 << 0;
const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODS: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;
const FLAG_FRAMEBUFFER: u32 = 1 << 12;
const INFO_LEN: usize = 116;

pub(super) fn parse(info: u64, mem: &dyn PhysMem) -> Result<BootInfo, BootInfoError> {
    let b = mem.read(info, INFO_LEN).ok_or(BootInfoError::Unreadable { what: "Multiboot1 information", addr: info })?;
    let flags = le_u32(b, 0);
    let mut out = BootInfo::empty(Protocol::Multiboot1);

    if flags & FLAG_CMDLINE != 0 {
        let addr = le_u32(b, 16) as u64;
        let s = read_c_string(mem, addr, super::MAX_CMDLINE + 1)
            .ok_or(BootInfoError::Unreadable { what: "command line", addr })?;
        out.set_cmdline(s);
    }

    if flags & FLAG_MODS != 0 {
        let count = le_u32(b, 20) as usize;
        let addr = le_u32(b, 24) as u64;
        let n = count.min(super::MAX_MODULES);
        if n > 0 {
            let mods = mem.read(addr, n * 16).ok_or(BootInfoError::Unreadable { what: "module list", addr })?;
            for i in 0..n {
                out.push_module(le_u32(mods, i * 16) as u64, le_u32(mods, i * 16 + 4) as u64);
            }
        }
    }

    if flags & FLAG_MMAP != 0 {
        let len = le_u32(b, 44) as usize;
        let addr = le_u32(b, 48) as u64;
        let map = mem.read(addr, len).ok_or(BootInfoError::Unreadable { what: "memory map", addr })?;
        let mut off = 0;
        while off + 4 <= map.len() {
            let size = le_u32(map, off) as usize;
            if size < 20 || off + 4 + size > map.len() {
                return Err(BootInfoError::BadMemoryMap { entry_size: size as u32 });
            }
            let e = &map[off + 4..off + 4 + size];
            out.push_region(le_u64(e, 0), le_u64(e, 8), RegionKind::from_multiboot(le_u32(e, 16)));
            off += 4 + size;
        }
    } else if flags & FLAG_MEM != 0 {
        // No map: fall back to the two basic figures (the boot warns: under
        // UEFI mem_upper was seen to report only 7 MiB).
        let lower_kib = le_u32(b, 4) as u64;
        let upper_kib = le_u32(b, 8) as u64;
        out.push_region(0, lower_kib * 1024, RegionKind::Usable);
        out.push_region(0x10_0000, upper_kib * 1024, RegionKind::Usable);
    }
    if out.memory_map().is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }

    if flags & FLAG_FRAMEBUFFER != 0 {
        out.framebuffer = Some(Framebuffer {
            addr: le_u64(b, 88),
            pitch: le_u32(b, 96),
            width: le_u32(b, 100),
            height: le_u32(b, 104),
            bpp: b[108],
            kind: b[109],
            rgb: RgbFields::parse(b[109], &b[110..116]),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::info::fixture::{put_u32, put_u64, FakeMem};
    use std::vec::Vec;

    fn mmap_entry(v: &mut Vec<u8>, base: u64, len: u64, kind: u32) {
        put_u32(v, 20);
        put_u64(v, base);
        put_u64(v, len);
        put_u32(v, kind);
    }

    /// A Multiboot1 block like QEMU's: flags, command line, memory map.
    fn qemu_like(with_mmap: bool) -> FakeMem {
        let mut info = std::vec![0u8; INFO_LEN];
        let flags = FLAG_MEM | FLAG_CMDLINE | if with_mmap { FLAG_MMAP } else { 0 } | FLAG_MODS;
        info[0..4].copy_from_slice(&flags.to_le_bytes());
        info[4..8].copy_from_slice(&639u32.to_le_bytes());
        info[8..12].copy_from_slice(&(7 * 1024u32).to_le_bytes());
        info[16..20].copy_from_slice(&0x9000u32.to_le_bytes());
        info[20..24].copy_from_slice(&1u32.to_le_bytes());
        info[24..28].copy_from_slice(&0x9400u32.to_le_bytes());
        let mut map = Vec::new();
        mmap_entry(&mut map, 0, 0x9FC00, 1);
        mmap_entry(&mut map, 0x9FC00, 0x400, 2);
        mmap_entry(&mut map, 0x10_0000, 0x7FEE_0000, 1);
        mmap_entry(&mut map, 0x7FFE_0000, 0x20000, 3);
        mmap_entry(&mut map, 0xFFFC_0000, 0x40000, 2);
        info[44..48].copy_from_slice(&(map.len() as u32).to_le_bytes());
        info[48..52].copy_from_slice(&0x9800u32.to_le_bytes());
        let mut mods = Vec::new();
        put_u32(&mut mods, 0x20_0000);
        put_u32(&mut mods, 0x20_1000);
        put_u64(&mut mods, 0);
        let mut mem = FakeMem::default();
        mem.place(0x9500, info);
        mem.place(0x9000, b"selftest=smp rounds=10\0".to_vec());
        mem.place(0x9400, mods);
        mem.place(0x9800, map);
        mem
    }

    #[test]
    fn parses_memory_map_cmdline_and_modules() {
        let mem = qemu_like(true);
        let info = BootInfo::parse(MULTIBOOT1_MAGIC, 0x9500, &mem).unwrap();
        assert_eq!(info.protocol, Protocol::Multiboot1);
        assert_eq!(info.cmdline(), "selftest=smp rounds=10");
        let map = info.memory_map();
        assert_eq!(map.len(), 5);
        assert_eq!(map[2].start, 0x10_0000);
        assert_eq!(map[2].kind, RegionKind::Usable);
        assert_eq!(map[3].kind, RegionKind::AcpiReclaimable);
        assert_eq!(info.usable_bytes(), 0x9FC00 + 0x7FEE_0000);
        assert_eq!(info.modules().len(), 1);
        assert_eq!(info.modules()[0].end, 0x20_1000);
        assert!(info.rsdp.is_none());
        assert!(info.framebuffer.is_none());
    }

    #[test]
    fn parses_a_vbe_framebuffer_with_its_channels() {
        let mut mem = qemu_like(true);
        let info = &mut mem.chunks.iter_mut().find(|c| c.0 == 0x9500).unwrap().1;
        let flags = u32::from_le_bytes(info[0..4].try_into().unwrap()) | FLAG_FRAMEBUFFER;
        info[0..4].copy_from_slice(&flags.to_le_bytes());
        info[88..96].copy_from_slice(&0xFD00_0000u64.to_le_bytes());
        info[96..100].copy_from_slice(&3072u32.to_le_bytes());
        info[100..104].copy_from_slice(&1024u32.to_le_bytes());
        info[104..108].copy_from_slice(&768u32.to_le_bytes());
        info[108] = 24;
        info[109] = 1;
        info[110..116].copy_from_slice(&[16, 8, 8, 8, 0, 8]);
        let fb = BootInfo::parse(MULTIBOOT1_MAGIC, 0x9500, &mem).unwrap().framebuffer.unwrap();
        assert_eq!((fb.addr, fb.pitch, fb.width, fb.height, fb.bpp), (0xFD00_0000, 3072, 1024, 768, 24));
        assert_eq!(fb.rgb, Some(RgbFields { red: (16, 8), green: (8, 8), blue: (0, 8) }));
        // EGA text mode has no RGB fields.
        let info = &mut mem.chunks.iter_mut().find(|c| c.0 == 0x9500).unwrap().1;
        info[109] = 2;
        assert_eq!(BootInfo::parse(MULTIBOOT1_MAGIC, 0x9500, &mem).unwrap().framebuffer.unwrap().rgb, None);
    }

    #[test]
    fn falls_back_to_mem_upper_without_a_map() {
        let mem = qemu_like(false);
        let info = BootInfo::parse(MULTIBOOT1_MAGIC, 0x9500, &mem).unwrap();
        let map = info.memory_map();
        assert_eq!(map.len(), 2);
        assert_eq!(map[1], super::super::MemoryRegion { start: 0x10_0000, len: 7 << 20, kind: RegionKind::Usable });
    }

    #[test]
    fn rejects_truncated_and_corrupt_input() {
        let mem = FakeMem::default();
        assert!(matches!(
            BootInfo::parse(MULTIBOOT1_MAGIC, 0x9500, &mem),
            Err(BootInfoError::Unreadable { .. })
        ));
        let mut mem = qemu_like(true);
        // Corrupt the first entry's size field.
        let map = &mut mem.chunks.iter_mut().find(|c| c.0 == 0x9800).unwrap().1;
        map[0] = 3;
        assert_eq!(
            BootInfo::parse(MULTIBOOT1_MAGIC, 0x9500, &mem).unwrap_err(),
            BootInfoError::BadMemoryMap { entry_size: 3 }
        );
        assert_eq!(BootInfo::parse(0x1234, 0x9500, &mem).unwrap_err(), BootInfoError::BadMagic(0x1234));
    }
}
