//! Physical Region Page construction.
//!
//! A transfer is described by PRP1 (the first page, may start at any dword
//! offset) and PRP2, which is either the second page (transfer spans exactly
//! two pages) or the physical address of a PRP list: page-aligned entries for
//! every further page. When a list needs more entries than fit in one page,
//! the last entry of each list page points to the next list page.

use core::fmt;

/// The translation granule the `Dma` trait guarantees contiguity for.
const HOST_PAGE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrpError {
    /// The buffer address has no physical mapping.
    Unmapped { virt: usize },
    /// PRP entries must be dword aligned.
    Misaligned { virt: usize },
    /// A controller page of the buffer is not physically contiguous, or a
    /// page after the first does not start on a controller page boundary.
    NotContiguous { virt: usize },
    /// The transfer needs more list pages than were reserved for the command.
    ListTooSmall { needed_pages: usize, reserved_pages: usize },
}

impl fmt::Display for PrpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrpError::Unmapped { virt } => write!(f, "buffer address {virt:#x} is not mapped"),
            PrpError::Misaligned { virt } => write!(f, "buffer address {virt:#x} is not 4-byte aligned (NVMe PRPs need dword alignment)"),
            PrpError::NotContiguous { virt } => write!(f, "buffer page at {virt:#x} is not physically contiguous with the controller page size"),
            PrpError::ListTooSmall { needed_pages, reserved_pages } => write!(f, "transfer needs {needed_pages} PRP list pages, {reserved_pages} reserved"),
        }
    }
}

/// Number of controller pages `[virt, virt+len)` touches.
pub fn pages_spanned(virt: usize, len: usize, page_size: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let first = virt / page_size;
    let last = (virt + len - 1) / page_size;
    last - first + 1
}

/// PRP list pages needed for `entries` list entries (0 when PRP2 is not a list).
pub fn list_pages_for(entries: usize, page_size: usize) -> usize {
    let per_page = page_size / 8;
    match entries {
        0 | 1 => 0, // PRP2 is absent or the second page itself
        n if n <= per_page => 1,
        n => (n - 1).div_ceil(per_page - 1),
    }
}

/// Where a command's PRP list may be written: `pages` physically contiguous
/// controller pages starting at `phys`.
#[derive(Clone, Copy, Debug)]
pub struct ListArea {
    pub phys: u64,
    pub pages: usize,
}

/// Builds PRP1/PRP2 for `len` bytes at virtual address `virt`. List entries
/// are emitted through `write(byte_offset_in_area, entry)`. `entries_after_first`
/// for `list_pages_for` is `pages_spanned - 1`.
pub fn build(
    virt: usize,
    len: usize,
    page_size: usize,
    translate: &dyn Fn(usize) -> Option<u64>,
    area: ListArea,
    mut write: impl FnMut(usize, u64),
) -> Result<(u64, u64), PrpError> {
    assert!(len > 0);
    if !virt.is_multiple_of(4) {
        return Err(PrpError::Misaligned { virt });
    }
    let page_phys = |v: usize| -> Result<u64, PrpError> {
        // v is the first byte of the transfer inside one controller page;
        // check contiguity up to the end of that page (or of the transfer).
        let p = translate(v).ok_or(PrpError::Unmapped { virt: v })?;
        let page_end = (v / page_size + 1) * page_size;
        let end = page_end.min(virt + len);
        let mut host = (v / HOST_PAGE + 1) * HOST_PAGE;
        while host < end {
            let hp = translate(host).ok_or(PrpError::Unmapped { virt: host })?;
            if hp != p + (host - v) as u64 {
                return Err(PrpError::NotContiguous { virt: host });
            }
            host += HOST_PAGE;
        }
        Ok(p)
    };
    let prp1 = page_phys(virt)?;
    if prp1 % 4 != 0 {
        return Err(PrpError::Misaligned { virt });
    }
    let pages = pages_spanned(virt, len, page_size);
    let later_page = |i: usize| -> Result<u64, PrpError> {
        let v = (virt / page_size + i) * page_size;
        let p = page_phys(v)?;
        if p % page_size as u64 != 0 {
            return Err(PrpError::NotContiguous { virt: v });
        }
        Ok(p)
    };
    match pages {
        1 => Ok((prp1, 0)),
        2 => Ok((prp1, later_page(1)?)),
        _ => {
            let entries = pages - 1;
            let needed = list_pages_for(entries, page_size);
            if needed > area.pages {
                return Err(PrpError::ListTooSmall { needed_pages: needed, reserved_pages: area.pages });
            }
            let per_page = page_size / 8;
            let mut slot = 0usize; // entry index within the current list page
            let mut list_page = 0usize;
            for i in 1..pages {
                let remaining = pages - i;
                if slot == per_page - 1 && remaining > 1 {
                    // Last slot of a full page with more than one entry to go: chain.
                    list_page += 1;
                    write((list_page - 1) * page_size + slot * 8, area.phys + (list_page * page_size) as u64);
                    slot = 0;
                }
                write(list_page * page_size + slot * 8, later_page(i)?);
                slot += 1;
            }
            Ok((prp1, area.phys))
        }
    }
}
