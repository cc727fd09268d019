//! The GUID Partition Table (UEFI 2.10, section 5.3), as the kernel reads it
//! to find the model image's partition and as `axiom disk` writes it: the
//! header at LBA 1 (checked by its CRC32 and its bounds) and the partition
//! entry array (checked by its CRC32; every used entry must lie inside the
//! usable blocks). Pure functions over byte slices, tested on the host.
//!
//! The model partition is found by its name, [`MODEL_PARTITION`] unless the
//! command line names another (`model=part:NAME`), or by AXIOM's partition
//! type GUID, [`MODEL_TYPE`].

use core::fmt;

/// The partition name the kernel looks for when `model=` is not given.
pub const MODEL_PARTITION: &str = "axiom-model";

/// AXIOM's partition type GUID for a packed model image.
pub const MODEL_TYPE: Guid = Guid::from_fields(0xa3eab47b, 0xc1c8, 0x46c2, [0x90, 0x1c, 0xda, 0xab, 0x76, 0x86, 0x0c, 0x48]);

/// The Linux filesystem data type (what `axiom disk` gives its data partition).
pub const LINUX_DATA_TYPE: Guid = Guid::from_fields(0x0fc63daf, 0x8483, 0x4772, [0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4]);

/// `EFI PART`.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// The primary header's block.
pub const HEADER_LBA: u64 = 1;
/// The header's size in revision 1.0.
pub const HEADER_SIZE: usize = 92;
pub const REVISION: u32 = 0x0001_0000;
/// The size of an entry every GPT writer uses.
pub const ENTRY_SIZE: usize = 128;
/// Characters of a partition name (UTF-16 code units).
pub const NAME_UNITS: usize = 36;
/// Largest entry array accepted (the usual is 128 entries of 128 bytes).
pub const MAX_ENTRIES_BYTES: usize = 1 << 20;

/// A GUID as it is stored on disk (the first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);

    /// The GUID written `d1-d2-d3-d4[0..2]-d4[2..8]`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(f, "{:08x}-{:04x}-{:04x}-", u32::from_le_bytes([g[0], g[1], g[2], g[3]]), u16::from_le_bytes([g[4], g[5]]), u16::from_le_bytes([g[6], g[7]]))?;
        for b in &g[8..10] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("-")?;
        for b in &g[10..] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// CRC-32 (IEEE 802.3, reflected, as GPT and zlib use it).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0, bytes)
}

/// Continues a CRC-32 over more bytes.
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in bytes {
        c = CRC32_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Why a disk's GPT cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptError {
    /// No `EFI PART` at LBA 1: the disk has no GPT.
    NoSignature,
    /// Fewer bytes than a header or an entry array needs were given.
    Short { need: usize, have: usize },
    BadRevision(u32),
    BadHeaderSize(u32),
    HeaderCrc { stored: u32, computed: u32 },
    /// A header field points outside the disk or contradicts another.
    Bounds(&'static str),
    BadEntrySize(u32),
    EntriesTooLarge { bytes: u64 },
    EntriesCrc { stored: u32, computed: u32 },
    /// A used entry lies outside the usable blocks (or ends before it starts).
    EntryOutOfBounds { index: u32, first_lba: u64, last_lba: u64 },
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GptError::NoSignature => f.write_str("no GPT (no \"EFI PART\" signature at LBA 1)"),
            GptError::Short { need, have } => write!(f, "GPT: {need} bytes needed, {have} given"),
            GptError::BadRevision(r) => write!(f, "GPT header revision {r:#x} is not 1.0"),
            GptError::BadHeaderSize(s) => write!(f, "GPT header size {s} is not between {HEADER_SIZE} and the block size"),
            GptError::HeaderCrc { stored, computed } => {
                write!(f, "GPT header is corrupt: its CRC32 is {stored:#010x}, its bytes give {computed:#010x} (the backup header is not consulted: repair the table)")
            }
            GptError::Bounds(what) => write!(f, "GPT header is inconsistent: {what}"),
            GptError::BadEntrySize(s) => write!(f, "GPT partition entry size {s} is not 128 times a power of two"),
            GptError::EntriesTooLarge { bytes } => write!(f, "GPT partition entry array of {bytes} bytes is larger than {MAX_ENTRIES_BYTES}"),
            GptError::EntriesCrc { stored, computed } => {
                write!(f, "GPT partition entry array is corrupt: its CRC32 is {stored:#010x}, its bytes give {computed:#010x}")
            }
            GptError::EntryOutOfBounds { index, first_lba, last_lba } => {
                write!(f, "GPT partition {} spans LBA {first_lba}..={last_lba}, outside the disk's usable blocks", index + 1)
            }
        }
    }
}

impl core::error::Error for GptError {}

/// The fields of a GPT header that locate things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GptHeader {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    Guid(g)
}

impl GptHeader {
    /// Parses and checks the primary header: `block` is LBA 1 of a disk of
    /// `disk_blocks` blocks of `block.len()` bytes.
    pub fn parse(block: &[u8], disk_blocks: u64) -> Result<GptHeader, GptError> {
        if block.len() < 512 {
            return Err(GptError::Short { need: 512, have: block.len() });
        }
        if block[..8] != SIGNATURE {
            return Err(GptError::NoSignature);
        }
        let revision = u32_at(block, 8);
        if revision != REVISION {
            return Err(GptError::BadRevision(revision));
        }
        let size = u32_at(block, 12);
        if (size as usize) < HEADER_SIZE || size as usize > block.len() {
            return Err(GptError::BadHeaderSize(size));
        }
        let stored = u32_at(block, 16);
        let computed = crc32_update(crc32_update(crc32(&block[..16]), &[0; 4]), &block[20..size as usize]);
        if stored != computed {
            return Err(GptError::HeaderCrc { stored, computed });
        }
        let h = GptHeader {
            my_lba: u64_at(block, 24),
            alternate_lba: u64_at(block, 32),
            first_usable_lba: u64_at(block, 40),
            last_usable_lba: u64_at(block, 48),
            disk_guid: guid_at(block, 56),
            entries_lba: u64_at(block, 72),
            num_entries: u32_at(block, 80),
            entry_size: u32_at(block, 84),
            entries_crc: u32_at(block, 88),
        };
        h.check(block.len() as u64, disk_blocks)?;
        Ok(h)
    }

    fn check(&self, block_size: u64, disk_blocks: u64) -> Result<(), GptError> {
        if self.my_lba != HEADER_LBA {
            return Err(GptError::Bounds("the primary header does not say it is at LBA 1"));
        }
        if self.alternate_lba >= disk_blocks || self.alternate_lba <= HEADER_LBA {
            return Err(GptError::Bounds("the backup header's LBA is outside the disk"));
        }
        if self.first_usable_lba > self.last_usable_lba || self.last_usable_lba >= disk_blocks || self.first_usable_lba <= HEADER_LBA {
            return Err(GptError::Bounds("the usable blocks are not inside the disk"));
        }
        let es = self.entry_size;
        if es < ENTRY_SIZE as u32 || !es.is_multiple_of(ENTRY_SIZE as u32) || !(es / ENTRY_SIZE as u32).is_power_of_two() {
            return Err(GptError::BadEntrySize(es));
        }
        let bytes = self.num_entries as u64 * es as u64;
        if bytes > MAX_ENTRIES_BYTES as u64 {
            return Err(GptError::EntriesTooLarge { bytes });
        }
        let blocks = bytes.div_ceil(block_size);
        let end = self.entries_lba.checked_add(blocks).ok_or(GptError::Bounds("the entry array's LBA overflows"))?;
        if self.entries_lba <= HEADER_LBA || end > disk_blocks {
            return Err(GptError::Bounds("the partition entry array is outside the disk"));
        }
        let overlaps = self.entries_lba <= self.last_usable_lba && end > self.first_usable_lba;
        if overlaps {
            return Err(GptError::Bounds("the partition entry array overlaps the usable blocks"));
        }
        Ok(())
    }

    /// Bytes of the partition entry array.
    pub fn entries_bytes(&self) -> usize {
        self.num_entries as usize * self.entry_size as usize
    }

    /// Checks the entry array (`bytes`: at least [`Self::entries_bytes`],
    /// read from [`Self::entries_lba`]) and returns its used entries.
    pub fn partitions<'a>(&self, bytes: &'a [u8]) -> Result<Partitions<'a>, GptError> {
        let n = self.entries_bytes();
        if bytes.len() < n {
            return Err(GptError::Short { need: n, have: bytes.len() });
        }
        let computed = crc32(&bytes[..n]);
        if computed != self.entries_crc {
            return Err(GptError::EntriesCrc { stored: self.entries_crc, computed });
        }
        let parts = Partitions { bytes: &bytes[..n], entry_size: self.entry_size as usize, next: 0 };
        for p in parts.clone() {
            if p.first_lba > p.last_lba || p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
                return Err(GptError::EntryOutOfBounds { index: p.index, first_lba: p.first_lba, last_lba: p.last_lba });
            }
        }
        Ok(parts)
    }
}

/// One used partition entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Index in the entry array, from 0 (tools number partitions from 1).
    pub index: u32,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
    /// UTF-16LE, zero-padded.
    pub name: [u16; NAME_UNITS],
}

impl Partition {
    pub fn blocks(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }

    /// Whether the name is `name` exactly.
    pub fn has_name(&self, name: &str) -> bool {
        let mut units = name.encode_utf16();
        for &u in &self.name {
            match units.next() {
                Some(c) if c == u => {}
                Some(_) => return false,
                None => return u == 0,
            }
        }
        units.next().is_none()
    }

    /// The name, undecodable units as U+FFFD.
    pub fn name_chars(&self) -> impl Iterator<Item = char> + '_ {
        let len = self.name.iter().position(|&u| u == 0).unwrap_or(NAME_UNITS);
        char::decode_utf16(self.name[..len].iter().copied()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// The name field for `name` (at most [`NAME_UNITS`] UTF-16 units), or
    /// `None` if it is longer.
    pub fn encode_name(name: &str) -> Option<[u16; NAME_UNITS]> {
        let mut out = [0u16; NAME_UNITS];
        for (i, u) in name.encode_utf16().enumerate() {
            *out.get_mut(i)? = u;
        }
        Some(out)
    }

    /// The 128-byte entry.
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut e = [0u8; ENTRY_SIZE];
        e[..16].copy_from_slice(&self.type_guid.0);
        e[16..32].copy_from_slice(&self.unique_guid.0);
        e[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        e[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (i, u) in self.name.iter().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        e
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.name_chars() {
            write!(f, "{c}")?;
        }
        write!(f, "' (partition {}, LBA {}..={}, type {})", self.index + 1, self.first_lba, self.last_lba, self.type_guid)
    }
}

/// The used entries of an entry array, in order.
#[derive(Clone, Debug)]
pub struct Partitions<'a> {
    bytes: &'a [u8],
    entry_size: usize,
    next: usize,
}

impl Iterator for Partitions<'_> {
    type Item = Partition;

    fn next(&mut self) -> Option<Partition> {
        while (self.next + 1) * self.entry_size <= self.bytes.len() {
            let index = self.next;
            let e = &self.bytes[index * self.entry_size..][..ENTRY_SIZE];
            self.next += 1;
            let type_guid = guid_at(e, 0);
            if type_guid == Guid::ZERO {
                continue;
            }
            let mut name = [0u16; NAME_UNITS];
            for (i, u) in name.iter_mut().enumerate() {
                *u = u16::from_le_bytes([e[56 + 2 * i], e[57 + 2 * i]]);
            }
            return Some(Partition {
                index: index as u32,
                type_guid,
                unique_guid: guid_at(e, 16),
                first_lba: u64_at(e, 32),
                last_lba: u64_at(e, 40),
                attributes: u64_at(e, 48),
                name,
            });
        }
        None
    }
}

/// A header block (`block_size` bytes) for `header`, its CRC filled in.
/// `my_lba`/`alternate_lba` say which copy it is.
pub fn header_block(header: &GptHeader, block_size: usize) -> [u8; 512] {
    debug_assert!(block_size >= 512);
    let mut b = [0u8; 512];
    b[..8].copy_from_slice(&SIGNATURE);
    b[8..12].copy_from_slice(&REVISION.to_le_bytes());
    b[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    b[24..32].copy_from_slice(&header.my_lba.to_le_bytes());
    b[32..40].copy_from_slice(&header.alternate_lba.to_le_bytes());
    b[40..48].copy_from_slice(&header.first_usable_lba.to_le_bytes());
    b[48..56].copy_from_slice(&header.last_usable_lba.to_le_bytes());
    b[56..72].copy_from_slice(&header.disk_guid.0);
    b[72..80].copy_from_slice(&header.entries_lba.to_le_bytes());
    b[80..84].copy_from_slice(&header.num_entries.to_le_bytes());
    b[84..88].copy_from_slice(&header.entry_size.to_le_bytes());
    b[88..92].copy_from_slice(&header.entries_crc.to_le_bytes());
    let crc = crc32(&b[..HEADER_SIZE]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The protective MBR (LBA 0) of a GPT disk of `disk_blocks` blocks.
pub fn protective_mbr(disk_blocks: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    let p = &mut b[446..462];
    p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    p[4] = 0xEE;
    p[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    p[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(disk_blocks - 1).unwrap_or(u32::MAX);
    p[12..16].copy_from_slice(&size.to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const BLOCKS: u64 = 4096;

    fn part(index: u32, name: &str, ty: Guid, first: u64, last: u64) -> Partition {
        Partition { index, type_guid: ty, unique_guid: Guid([index as u8 + 1; 16]), first_lba: first, last_lba: last, attributes: 0, name: Partition::encode_name(name).unwrap() }
    }

    /// A disk image: protective MBR, primary header and entries (128 x 128 bytes).
    fn disk(parts: &[Partition]) -> Vec<u8> {
        let mut d = vec![0u8; (BLOCKS * 512) as usize];
        let mut entries = vec![0u8; 128 * ENTRY_SIZE];
        for p in parts {
            entries[p.index as usize * ENTRY_SIZE..][..ENTRY_SIZE].copy_from_slice(&p.to_bytes());
        }
        let h = GptHeader {
            my_lba: 1,
            alternate_lba: BLOCKS - 1,
            first_usable_lba: 34,
            last_usable_lba: BLOCKS - 34,
            disk_guid: Guid([7; 16]),
            entries_lba: 2,
            num_entries: 128,
            entry_size: ENTRY_SIZE as u32,
            entries_crc: crc32(&entries),
        };
        d[..512].copy_from_slice(&protective_mbr(BLOCKS));
        d[512..1024].copy_from_slice(&header_block(&h, 512));
        d[1024..1024 + entries.len()].copy_from_slice(&entries);
        d
    }

    fn read(d: &[u8]) -> Result<Vec<Partition>, GptError> {
        let h = GptHeader::parse(&d[512..1024], BLOCKS)?;
        let at = h.entries_lba as usize * 512;
        Ok(h.partitions(&d[at..at + h.entries_bytes()])?.collect())
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn guids_print_as_written() {
        assert_eq!(alloc::format!("{MODEL_TYPE}"), "a3eab47b-c1c8-46c2-901c-daab76860c48");
        assert_eq!(alloc::format!("{LINUX_DATA_TYPE}"), "0fc63daf-8483-4772-8e79-3d69d8477de4");
    }

    #[test]
    fn partitions_are_found_by_name_and_type() {
        let d = disk(&[part(0, "data", LINUX_DATA_TYPE, 34, 1000), part(2, MODEL_PARTITION, MODEL_TYPE, 2048, 4000)]);
        let parts = read(&d).unwrap();
        assert_eq!(parts.len(), 2, "empty entries are skipped");
        assert!(parts[1].has_name("axiom-model") && !parts[1].has_name("axiom-mode") && !parts[1].has_name("axiom-model2"));
        assert_eq!((parts[1].index, parts[1].first_lba, parts[1].blocks(), parts[1].type_guid), (2, 2048, 1953, MODEL_TYPE));
        assert_eq!(alloc::format!("{}", parts[0]), "'data' (partition 1, LBA 34..=1000, type 0fc63daf-8483-4772-8e79-3d69d8477de4)");
        assert_eq!(Partition::encode_name(&"x".repeat(37)), None);
        assert!(Partition::encode_name(&"x".repeat(36)).is_some());
    }

    #[test]
    fn a_disk_without_gpt_says_so() {
        assert_eq!(read(&vec![0u8; (BLOCKS * 512) as usize]), Err(GptError::NoSignature));
    }

    #[test]
    fn a_flipped_bit_in_the_header_or_entries_is_caught_by_crc() {
        let good = disk(&[part(0, MODEL_PARTITION, MODEL_TYPE, 100, 200)]);
        let mut d = good.clone();
        d[512 + 40] ^= 1; // first usable LBA
        assert!(matches!(read(&d), Err(GptError::HeaderCrc { .. })), "{:?}", read(&d));
        assert!(alloc::format!("{}", read(&d).unwrap_err()).contains("GPT header is corrupt"));
        let mut d = good.clone();
        d[1024 + 60] ^= 1; // a name character
        assert!(matches!(read(&d), Err(GptError::EntriesCrc { .. })));
    }

    /// A header with valid CRCs but contradictory fields.
    fn with_header(f: impl Fn(&mut GptHeader), parts: &[Partition]) -> Result<Vec<Partition>, GptError> {
        let mut d = disk(parts);
        let mut h = GptHeader::parse(&d[512..1024], BLOCKS).unwrap();
        f(&mut h);
        d[512..1024].copy_from_slice(&header_block(&h, 512));
        read(&d)
    }

    #[test]
    fn bounds_are_checked() {
        let p = [part(0, "a", MODEL_TYPE, 100, 200)];
        assert!(matches!(with_header(|h| h.last_usable_lba = BLOCKS, &p), Err(GptError::Bounds(_))));
        assert!(matches!(with_header(|h| h.first_usable_lba = 2, &p), Err(GptError::Bounds(_))), "entries overlap usable blocks");
        assert!(matches!(with_header(|h| h.my_lba = 2, &p), Err(GptError::Bounds(_))));
        assert!(matches!(with_header(|h| h.entries_lba = BLOCKS - 2, &p), Err(GptError::Bounds(_))));
        assert!(matches!(with_header(|h| h.entry_size = 100, &p), Err(GptError::BadEntrySize(100))));
        assert!(matches!(with_header(|h| h.num_entries = u32::MAX, &p), Err(GptError::EntriesTooLarge { .. })));
        assert!(matches!(with_header(|h| h.alternate_lba = BLOCKS, &p), Err(GptError::Bounds(_))));
        for (first, last) in [(10, 200), (100, BLOCKS - 10), (300, 200)] {
            let r = read(&disk(&[part(3, "a", MODEL_TYPE, first, last)]));
            assert_eq!(r, Err(GptError::EntryOutOfBounds { index: 3, first_lba: first, last_lba: last }));
        }
        assert!(matches!(GptHeader::parse(&[0u8; 100], BLOCKS), Err(GptError::Short { .. })));
    }
}
