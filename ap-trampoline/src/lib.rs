//! AXIOM's application-processor (AP) start-up code: the 16 -> 32 -> 64-bit
//! trampoline (`trampoline.s`) and the layout of its patch area, shared by the
//! kernel's AP bring-up (`kernel/src/smp/startup.rs`) and host tests.
//!
//! The BSP copies [`image`] to [`LOAD_ADDRESS`] with [`write_image`], which
//! fills in the page-table root, the AP's stack, its 64-bit entry point and
//! its CPU index; then it sends INIT-SIPI-SIPI with [`SIPI_VECTOR`]. The AP
//! records how far it got in the progress byte, so a CPU that never answers
//! can be reported with the stage it reached.

#![no_std]

use core::fmt;

core::arch::global_asm!(include_str!("trampoline.s"), options(att_syntax));

/// Physical address the image runs at (page aligned, below 1 MiB).
pub const LOAD_ADDRESS: u64 = 0x8000;
/// The start-up IPI vector: the page number of [`LOAD_ADDRESS`].
pub const SIPI_VECTOR: u8 = (LOAD_ADDRESS >> 12) as u8;

/// Byte offsets inside the image (mirrors `trampoline.s`).
pub mod offsets {
    pub const PATCH: usize = 0x200;
    pub const MAGIC: usize = PATCH;
    pub const CR3: usize = PATCH + 0x08;
    pub const STACK_TOP: usize = PATCH + 0x10;
    pub const ENTRY: usize = PATCH + 0x18;
    pub const CPU_INDEX: usize = PATCH + 0x20;
    pub const PROGRESS: usize = PATCH + 0x28;
    /// Total image size.
    pub const END: usize = PATCH + 0x30;
}

/// The patch-area marker, checked before patching.
pub const MAGIC: &[u8; 8] = b"AXTRAMP1";

/// How far an AP got (the progress byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    NotStarted,
    RealMode,
    ProtectedMode,
    LongMode,
    Unknown(u8),
}

impl Progress {
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Progress::NotStarted,
            1 => Progress::RealMode,
            2 => Progress::ProtectedMode,
            3 => Progress::LongMode,
            x => Progress::Unknown(x),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Progress::NotStarted => "never started (no response to SIPI)",
            Progress::RealMode => "stopped in real mode",
            Progress::ProtectedMode => "stopped in protected mode",
            Progress::LongMode => "reached long mode but not the kernel",
            Progress::Unknown(_) => "unknown progress value",
        }
    }
}

/// Values the BSP fills in for one AP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Physical address of the PML4; must be below 4 GiB (CR3 is loaded in 32-bit mode).
    pub cr3: u64,
    /// Initial RSP (16-byte aligned).
    pub stack_top: u64,
    /// 64-bit entry point, called with EDI = `cpu_index`.
    pub entry: u64,
    pub cpu_index: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchError {
    DestinationTooSmall { need: usize, have: usize },
    Cr3AboveFourGiB(u64),
    StackMisaligned(u64),
    BadImage,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::DestinationTooSmall { need, have } => {
                write!(f, "trampoline needs {need} bytes, destination has {have}")
            }
            PatchError::Cr3AboveFourGiB(a) => write!(f, "page-table root {a:#x} is above 4 GiB"),
            PatchError::StackMisaligned(a) => write!(f, "AP stack top {a:#x} is not 16-byte aligned"),
            PatchError::BadImage => write!(f, "trampoline image has no patch-area marker"),
        }
    }
}

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// The assembled trampoline bytes.
pub fn image() -> &'static [u8] {
    // SAFETY: both symbols label the same read-only section emitted by the
    // global_asm above; the bytes between them are the image.
    unsafe {
        let start = core::ptr::addr_of!(ap_trampoline_start);
        let end = core::ptr::addr_of!(ap_trampoline_end);
        core::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

/// Copy the image into `dst` (the memory at [`LOAD_ADDRESS`]) and patch it.
pub fn write_image(dst: &mut [u8], patch: &Patch) -> Result<(), PatchError> {
    let img = image();
    if img.len() != offsets::END || &img[offsets::MAGIC..offsets::MAGIC + 8] != MAGIC {
        return Err(PatchError::BadImage);
    }
    if dst.len() < img.len() {
        return Err(PatchError::DestinationTooSmall { need: img.len(), have: dst.len() });
    }
    if patch.cr3 >= 1 << 32 {
        return Err(PatchError::Cr3AboveFourGiB(patch.cr3));
    }
    if !patch.stack_top.is_multiple_of(16) {
        return Err(PatchError::StackMisaligned(patch.stack_top));
    }
    dst[..img.len()].copy_from_slice(img);
    let mut put = |off: usize, v: u64| dst[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(offsets::CR3, patch.cr3);
    put(offsets::STACK_TOP, patch.stack_top);
    put(offsets::ENTRY, patch.entry);
    put(offsets::CPU_INDEX, patch.cpu_index as u64);
    put(offsets::PROGRESS, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn image_layout_matches_constants() {
        let img = image();
        assert_eq!(img.len(), offsets::END);
        assert_eq!(&img[offsets::MAGIC..offsets::MAGIC + 8], MAGIC);
        assert_eq!(img[0], 0xFA, "starts with cli");
        const { assert!(offsets::PATCH <= 4096 && LOAD_ADDRESS.is_multiple_of(4096) && LOAD_ADDRESS < 0x10_0000) };
        assert_eq!(SIPI_VECTOR, 0x08);
        // The code before the patch area must not run into it.
        let code_end = img[..offsets::PATCH].iter().rposition(|&b| b != 0).unwrap();
        assert!(code_end < offsets::PATCH);
        // The GDT pointer's base is LOAD + offset of the GDT (its first entry is null,
        // followed by the 32-bit code descriptor).
        let code32 = 0x00CF9A000000FFFFu64.to_le_bytes();
        let gdt = img.windows(8).position(|w| w == code32).unwrap() - 8;
        let base_bytes = (LOAD_ADDRESS as u32 + gdt as u32).to_le_bytes();
        assert!(img.windows(4).any(|w| w == base_bytes), "GDT pointer holds LOAD + gdt offset");
    }

    #[test]
    fn patch_writes_every_field() {
        let mut page = [0xAAu8; 4096];
        let p = Patch { cr3: 0x1234_5000, stack_top: 0x8_0000_0000, entry: 0x10_2030, cpu_index: 7 };
        write_image(&mut page, &p).unwrap();
        let read = |off: usize| u64::from_le_bytes(page[off..off + 8].try_into().unwrap());
        assert_eq!(read(offsets::CR3), 0x1234_5000);
        assert_eq!(read(offsets::STACK_TOP), 0x8_0000_0000);
        assert_eq!(read(offsets::ENTRY), 0x10_2030);
        assert_eq!(read(offsets::CPU_INDEX), 7);
        assert_eq!(Progress::from_byte(page[offsets::PROGRESS]), Progress::NotStarted);
        assert_eq!(&page[..offsets::PATCH], &image()[..offsets::PATCH]);
        assert_eq!(page[offsets::END], 0xAA, "nothing written past the image");
    }

    #[test]
    fn patch_rejects_bad_values() {
        let mut page = [0u8; 4096];
        let ok = Patch { cr3: 0x1000, stack_top: 0x2000, entry: 0x10_0000, cpu_index: 1 };
        assert_eq!(write_image(&mut page, &Patch { cr3: 1 << 32, ..ok }), Err(PatchError::Cr3AboveFourGiB(1 << 32)));
        assert_eq!(write_image(&mut page, &Patch { stack_top: 0x2008, ..ok }), Err(PatchError::StackMisaligned(0x2008)));
        let mut small = [0u8; 16];
        assert!(matches!(write_image(&mut small, &ok), Err(PatchError::DestinationTooSmall { .. })));
        assert_eq!(Progress::from_byte(2), Progress::ProtectedMode);
    }
}
