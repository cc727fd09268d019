//! Identify Controller and Identify Namespace data (4096-byte pages).

use core::fmt;

/// An ASCII field of the Identify data, space padded by the device.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AsciiField<const N: usize>(pub [u8; N]);

impl<const N: usize> AsciiField<N> {
    /// The field without trailing spaces/NULs; non-printable bytes become '?'.
    pub fn trimmed(&self) -> impl Iterator<Item = char> + '_ {
        let end = self.0.iter().rposition(|&b| b != b' ' && b != 0).map_or(0, |p| p + 1);
        let start = self.0[..end].iter().position(|&b| b != b' ').unwrap_or(end);
        self.0[start..end].iter().map(|&b| if (0x20..0x7F).contains(&b) { b as char } else { '?' })
    }
}

impl<const N: usize> fmt::Display for AsciiField<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.trimmed() {
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for AsciiField<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The Identify Controller fields the driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerIdentity {
    pub vendor_id: u16,
    pub serial: AsciiField<20>,
    pub model: AsciiField<40>,
    pub firmware: AsciiField<8>,
    /// Maximum Data Transfer Size as a power of two in units of CAP.MPSMIN
    /// pages; 0 means no limit.
    pub mdts: u8,
    pub controller_id: u16,
    pub version: u32,
    /// Required and maximum SQ/CQ entry sizes, log2 bytes (SQES, CQES).
    pub sqes: (u8, u8),
    pub cqes: (u8, u8),
    pub namespaces: u32,
}

impl ControllerIdentity {
    pub fn parse(page: &[u8; 4096]) -> Self {
        Self {
            vendor_id: le16(page, 0),
            serial: AsciiField(page[4..24].try_into().unwrap()),
            model: AsciiField(page[24..64].try_into().unwrap()),
            firmware: AsciiField(page[64..72].try_into().unwrap()),
            mdts: page[77],
            controller_id: le16(page, 78),
            version: le32(page, 80),
            sqes: (page[512] & 0xF, page[512] >> 4),
            cqes: (page[513] & 0xF, page[513] >> 4),
            namespaces: le32(page, 516),
        }
    }

    /// MDTS in bytes for a controller whose minimum page size is
    /// `min_page_size`, or `None` for "no limit".
    pub fn mdts_bytes(&self, min_page_size: usize) -> Option<usize> {
        (self.mdts != 0).then(|| min_page_size << self.mdts.min(20))
    }
}

/// One LBA format descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LbaFormat {
    pub metadata_bytes: u16,
    /// log2 of the data size (LBADS); 9 = 512 bytes.
    pub data_shift: u8,
    pub relative_performance: u8,
}

/// The Identify Namespace fields the driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceIdentity {
    /// Namespace size in logical blocks (NSZE).
    pub size_blocks: u64,
    pub capacity_blocks: u64,
    /// Index of the formatted LBA format (FLBAS bits 3:0 plus 6:5).
    pub lba_format_index: u8,
    /// Metadata is transferred at the end of each block (FLBAS bit 4).
    pub extended_lba: bool,
    pub lba_format: LbaFormat,
    /// Optimal I/O boundary in blocks (NOIOB), 0 if not reported.
    pub optimal_io_boundary: u16,
}

impl NamespaceIdentity {
    pub fn parse(page: &[u8; 4096]) -> Self {
        let flbas = page[26];
        let index = (flbas & 0xF) | ((flbas >> 5) & 0x3) << 4;
        let off = 128 + 4 * index as usize;
        let lbaf = le32(page, off);
        Self {
            size_blocks: le64(page, 0),
            capacity_blocks: le64(page, 8),
            lba_format_index: index,
            extended_lba: flbas & 0x10 != 0,
            lba_format: LbaFormat { metadata_bytes: lbaf as u16, data_shift: (lbaf >> 16) as u8, relative_performance: ((lbaf >> 24) & 3) as u8 },
            optimal_io_boundary: le16(page, 102),
        }
    }
}
