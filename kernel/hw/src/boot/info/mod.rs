//! Boot information from Multiboot1 or Multiboot2, copied into one owned,
//! fixed-size [`BootInfo`] (no heap exists yet when it is parsed).
//!
//! Parsing reads memory through [`PhysMem`], so the same code runs on the
//! kernel's identity map and, in host tests, on fixture bytes.

mod multiboot1;
mod multiboot2;
mod rsdp;

pub use multiboot1::MULTIBOOT1_MAGIC;
pub use multiboot2::MULTIBOOT2_MAGIC;
pub use rsdp::{parse_rsdp, scan_bios_for_rsdp, Rsdp, RsdpError, RsdpSource};

use core::fmt;

/// Most memory-map entries kept (firmware maps have tens).
pub const MAX_REGIONS: usize = 128;
/// Longest command line kept, in bytes.
pub const MAX_CMDLINE: usize = 1024;
/// Most boot modules kept.
pub const MAX_MODULES: usize = 8;

/// Read-only access to physical memory during boot.
pub trait PhysMem {
    /// `len` bytes at physical address `addr`, or `None` if not readable.
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

/// What a memory-map entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Usable,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Defective,
    Other(u32),
}

impl RegionKind {
    /// Multiboot (and E820) type codes.
    pub fn from_multiboot(code: u32) -> Self {
        match code {
            1 => RegionKind::Usable,
            2 => RegionKind::Reserved,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::Defective,
            other => RegionKind::Other(other),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RegionKind::Usable => "usable",
            RegionKind::Reserved => "reserved",
            RegionKind::AcpiReclaimable => "acpi-reclaimable",
            RegionKind::AcpiNvs => "acpi-nvs",
            RegionKind::Defective => "defective",
            RegionKind::Other(_) => "other",
        }
    }
}

/// One memory-map entry: `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub len: u64,
    pub kind: RegionKind,
}

impl MemoryRegion {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A boot module (loaded file) the bootloader placed in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    pub end: u64,
}

/// A linear framebuffer set up by the bootloader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framebuffer {
    pub addr: u64,
    pub pitch: u32,
    pub width: u32,
    pub height: u32,
    pub bpp: u8,
    /// 0 = indexed, 1 = direct RGB, 2 = EGA text.
    pub kind: u8,
    /// Where red, green and blue sit in a pixel (direct RGB only).
    pub rgb: Option<RgbFields>,
}

/// Bit position and width of each colour channel in a direct-RGB pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RgbFields {
    pub red: (u8, u8),
    pub green: (u8, u8),
    pub blue: (u8, u8),
}

impl RgbFields {
    /// Read from the six bytes both Multiboot versions use (position, size
    /// for red, green, blue), for a framebuffer of `kind` 1 (direct RGB).
    fn parse(kind: u8, b: &[u8]) -> Option<RgbFields> {
        (kind == 1 && b.len() >= 6).then(|| RgbFields { red: (b[0], b[1]), green: (b[2], b[3]), blue: (b[4], b[5]) })
    }
}

/// Which boot protocol delivered the information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Multiboot1,
    Multiboot2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Multiboot1 => "multiboot1",
            Protocol::Multiboot2 => "multiboot2",
        }
    }
}

/// Everything the kernel keeps from the bootloader.
#[derive(Clone, Debug)]
pub struct BootInfo {
    pub protocol: Protocol,
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    /// Entries beyond [`MAX_REGIONS`] that had to be dropped.
    pub regions_dropped: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// The command line was longer than [`MAX_CMDLINE`] and was cut.
    pub cmdline_truncated: bool,
    /// RSDP handed over by the bootloader (Multiboot2 tags 14/15).
    pub rsdp: Option<Rsdp>,
    pub framebuffer: Option<Framebuffer>,
    modules: [Module; MAX_MODULES],
    module_count: usize,
}

/// Why the boot information could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// EAX held neither Multiboot magic value.
    BadMagic(u32),
    /// A structure the flags or tags promise could not be read.
    Unreadable { what: &'static str, addr: u64 },
    /// A Multiboot2 tag runs past the end of the information block.
    BadTag { offset: usize, tag: u32, size: u32 },
    /// The bootloader gave no memory map.
    NoMemoryMap,
    /// A memory-map entry has an impossible size.
    BadMemoryMap { entry_size: u32 },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::BadMagic(m) => write!(
                f,
                "not started by a Multiboot loader (magic {m:#x}, expected {MULTIBOOT1_MAGIC:#x} or {MULTIBOOT2_MAGIC:#x})"
            ),
            BootInfoError::Unreadable { what, addr } => {
                write!(f, "boot information: cannot read the {what} at {addr:#x}")
            }
            BootInfoError::BadTag { offset, tag, size } => write!(
                f,
                "boot information: Multiboot2 tag {tag} at offset {offset} has size {size}, past the end of the block"
            ),
            BootInfoError::NoMemoryMap => write!(f, "boot information: the bootloader gave no memory map"),
            BootInfoError::BadMemoryMap { entry_size } => {
                write!(f, "boot information: memory-map entry size {entry_size} is invalid")
            }
        }
    }
}

impl BootInfo {
    fn empty(protocol: Protocol) -> Self {
        BootInfo {
            protocol,
            regions: [MemoryRegion { start: 0, len: 0, kind: RegionKind::Reserved }; MAX_REGIONS],
            region_count: 0,
            regions_dropped: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            cmdline_truncated: false,
            rsdp: None,
            framebuffer: None,
            modules: [Module { start: 0, end: 0 }; MAX_MODULES],
            module_count: 0,
        }
    }

    /// Parse the information a Multiboot loader left: `magic` is EAX at entry,
    /// `info` the physical address from EBX.
    pub fn parse(magic: u32, info: u64, mem: &dyn PhysMem) -> Result<BootInfo, BootInfoError> {
        match magic {
            MULTIBOOT1_MAGIC => multiboot1::parse(info, mem),
            MULTIBOOT2_MAGIC => multiboot2::parse(info, mem),
            other => Err(BootInfoError::BadMagic(other)),
        }
    }

    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// The command line as text (invalid UTF-8 is cut at the first bad byte).
    pub fn cmdline(&self) -> &str {
        let bytes = &self.cmdline[..self.cmdline_len];
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }

    /// Total bytes of usable RAM in the map.
    pub fn usable_bytes(&self) -> u64 {
        self.memory_map().iter().filter(|r| r.kind == RegionKind::Usable).map(|r| r.len).sum()
    }

    fn push_region(&mut self, start: u64, len: u64, kind: RegionKind) {
        if len == 0 {
            return;
        }
        if self.region_count == MAX_REGIONS {
            self.regions_dropped += 1;
            return;
        }
        self.regions[self.region_count] = MemoryRegion { start, len, kind };
        self.region_count += 1;
    }

    fn set_cmdline(&mut self, bytes: &[u8]) {
        let bytes = match bytes.iter().position(|&b| b == 0) {
            Some(nul) => &bytes[..nul],
            None => bytes,
        };
        let n = bytes.len().min(MAX_CMDLINE);
        self.cmdline[..n].copy_from_slice(&bytes[..n]);
        self.cmdline_len = n;
        self.cmdline_truncated = bytes.len() > MAX_CMDLINE;
    }

    fn push_module(&mut self, start: u64, end: u64) {
        if self.module_count < MAX_MODULES && end > start {
            self.modules[self.module_count] = Module { start, end };
            self.module_count += 1;
        }
    }
}

/// Read a NUL-terminated string of at most `max` bytes at `addr` (cut at
/// `max` or where memory stops being readable).
fn read_c_string(mem: &dyn PhysMem, addr: u64, max: usize) -> Option<&[u8]> {
    let mut len = 0;
    while len < max {
        match mem.read(addr + len as u64, 1) {
            Some([0]) | None => break,
            Some(_) => len += 1,
        }
    }
    if len == 0 {
        return mem.read(addr, 1).map(|_| &[][..]);
    }
    mem.read(addr, len)
}

fn le_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    (le_u32(b, off) as u64) | ((le_u32(b, off + 4) as u64) << 32)
}

#[cfg(test)]
pub(crate) mod fixture {
    use super::PhysMem;
    use std::vec::Vec;

    /// Fixture "physical memory": byte blobs placed at chosen addresses.
    #[derive(Default)]
    pub struct FakeMem {
        pub chunks: Vec<(u64, Vec<u8>)>,
    }

    impl FakeMem {
        pub fn place(&mut self, addr: u64, bytes: Vec<u8>) {
            self.chunks.push((addr, bytes));
        }
    }

    impl PhysMem for FakeMem {
        fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
            for (base, bytes) in &self.chunks {
                if addr >= *base && addr + len as u64 <= *base + bytes.len() as u64 {
                    let off = (addr - base) as usize;
                    return Some(&bytes[off..off + len]);
                }
            }
            None
        }
    }

    pub fn put_u16(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    pub fn put_u32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    pub fn put_u64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_le_bytes());
    }
}
