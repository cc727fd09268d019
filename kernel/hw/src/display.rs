//! The linear framebuffer the boot loader set up (Multiboot2 framebuffer
//! tag: VBE on BIOS, GOP on UEFI), as a safe pixel sink: rows of 0x00RRGGBB
//! pixels in, the device's own pixel format out (32 or 24 bits per pixel,
//! channel positions from the boot information).
//!
//! The memory is mapped uncached through [`crate::mem::map_mmio`] and
//! written with its checked volatile 32-bit accesses, so this module holds
//! no `unsafe` of its own. Uncached writes are slow on real hardware (a
//! whole-screen redraw at 1024x768x32 is 3 MiB); the console redraws only
//! the rows that changed.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_drivers::hw::{MmioRegion, Registers};

use crate::boot::info::{Framebuffer, RgbFields};
use crate::mem::{map_mmio, MapError};

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why the framebuffer cannot be drawn on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayError {
    /// Indexed colour or EGA text mode (the boot loader did not set a graphics mode).
    NotDirectRgb { kind: u8 },
    /// A depth other than 24 or 32 bits per pixel.
    Depth { bpp: u8 },
    /// A colour channel wider than 8 bits or outside the pixel.
    Channels,
    /// Pitch smaller than a row, or a size that overflows.
    Geometry { width: u32, height: u32, pitch: u32 },
    Map(MapError),
    /// The framebuffer was already taken.
    Taken,
}

impl fmt::Display for DisplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplayError::NotDirectRgb { kind: 2 } => write!(f, "the framebuffer is in EGA text mode, not graphics"),
            DisplayError::NotDirectRgb { kind } => write!(f, "the framebuffer is not direct RGB (type {kind})"),
            DisplayError::Depth { bpp } => write!(f, "the framebuffer has {bpp} bits per pixel (24 or 32 are supported)"),
            DisplayError::Channels => write!(f, "the framebuffer's colour channels are not 8-bit fields inside a pixel"),
            DisplayError::Geometry { width, height, pitch } => write!(f, "the framebuffer's geometry {width}x{height}, pitch {pitch} is inconsistent"),
            DisplayError::Map(e) => write!(f, "mapping the framebuffer: {e}"),
            DisplayError::Taken => write!(f, "the framebuffer already has an owner"),
        }
    }
}

/// How a 0x00RRGGBB colour becomes a device pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub bytes_per_pixel: usize,
    pub fields: RgbFields,
}

impl PixelFormat {
    /// Checks the boot loader's description.
    pub fn new(bpp: u8, fields: RgbFields) -> Result<PixelFormat, DisplayError> {
        if bpp != 24 && bpp != 32 {
            return Err(DisplayError::Depth { bpp });
        }
        for (pos, size) in [fields.red, fields.green, fields.blue] {
            if size == 0 || size > 8 || pos as u32 + size as u32 > bpp as u32 {
                return Err(DisplayError::Channels);
            }
        }
        Ok(PixelFormat { bytes_per_pixel: bpp as usize / 8, fields })
    }

    /// The device pixel for `rgb` (0x00RRGGBB), in its low bytes.
    pub fn encode(&self, rgb: u32) -> u32 {
        let channel = |value: u32, (pos, size): (u8, u8)| ((value & 0xFF) >> (8 - size)) << pos;
        channel(rgb >> 16, self.fields.red) | channel(rgb >> 8, self.fields.green) | channel(rgb, self.fields.blue)
    }

    /// `pixels` encoded into `out`, packed as the device stores them
    /// (`bytes_per_pixel` little-endian bytes each).
    pub fn encode_row(&self, pixels: &[u32], out: &mut Vec<u8>) {
        out.clear();
        for &p in pixels {
            out.extend_from_slice(&self.encode(p).to_le_bytes()[..self.bytes_per_pixel]);
        }
    }
}

/// The boot loader's framebuffer, mapped, with one owner.
pub struct LinearFramebuffer {
    mmio: MmioRegion,
    pitch: usize,
    width: usize,
    height: usize,
    format: PixelFormat,
    /// One encoded row, reused.
    row: Vec<u8>,
}

impl LinearFramebuffer {
    /// Maps the framebuffer `fb` describes (once per run).
    pub fn take(fb: &Framebuffer) -> Result<LinearFramebuffer, DisplayError> {
        let fields = match (fb.kind, fb.rgb) {
            (1, Some(fields)) => fields,
            (kind, _) => return Err(DisplayError::NotDirectRgb { kind }),
        };
        let format = PixelFormat::new(fb.bpp, fields)?;
        let (width, height, pitch) = (fb.width as usize, fb.height as usize, fb.pitch as usize);
        let geometry = DisplayError::Geometry { width: fb.width, height: fb.height, pitch: fb.pitch };
        let len = pitch.checked_mul(height).ok_or(geometry)?;
        if width == 0 || height == 0 || pitch < width * format.bytes_per_pixel || !pitch.is_multiple_of(4) || !fb.addr.is_multiple_of(4) {
            return Err(geometry);
        }
        if TAKEN.swap(true, Ordering::SeqCst) {
            return Err(DisplayError::Taken);
        }
        let mmio = map_mmio(fb.addr, len).map_err(DisplayError::Map)?;
        Ok(LinearFramebuffer { mmio, pitch, width, height, format, row: Vec::with_capacity(pitch + 4) })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Draws `pixels` (0x00RRGGBB, whole rows of `width()` pixels) from
    /// pixel line `y` down; lines past the bottom are cut.
    pub fn write_rows(&mut self, y: usize, pixels: &[u32]) {
        for (i, line) in pixels.chunks_exact(self.width).enumerate() {
            if y + i >= self.height {
                break;
            }
            let mut row = core::mem::take(&mut self.row);
            self.format.encode_row(line, &mut row);
            self.write_line(y + i, &row);
            self.row = row;
        }
    }

    /// Fills pixel lines `[y, y + lines)` with `rgb`.
    pub fn fill_rows(&mut self, y: usize, lines: usize, rgb: u32) {
        let mut row = core::mem::take(&mut self.row);
        self.format.encode_row(&alloc::vec![rgb; self.width], &mut row);
        for line in y..(y + lines).min(self.height) {
            self.write_line(line, &row);
        }
        self.row = row;
    }

    /// One encoded line as aligned 32-bit writes; a tail shorter than a
    /// word keeps the bytes after it (read, merged, written back).
    fn write_line(&self, line: usize, bytes: &[u8]) {
        let base = line * self.pitch;
        let words = bytes.chunks_exact(4);
        let tail = words.remainder();
        let mut offset = base;
        for w in words {
            self.mmio.write32(offset, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            offset += 4;
        }
        if !tail.is_empty() {
            let mut word = self.mmio.read32(offset).to_le_bytes();
            word[..tail.len()].copy_from_slice(tail);
            self.mmio.write32(offset, u32::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const BGRX: RgbFields = RgbFields { red: (16, 8), green: (8, 8), blue: (0, 8) };

    #[test]
    fn encodes_bgrx_rgbx_and_24_bit() {
        let f = PixelFormat::new(32, BGRX).unwrap();
        assert_eq!(f.encode(0x00123456), 0x00123456);
        let rgbx = PixelFormat::new(32, RgbFields { red: (0, 8), green: (8, 8), blue: (16, 8) }).unwrap();
        assert_eq!(rgbx.encode(0x00123456), 0x00563412);
        let f24 = PixelFormat::new(24, BGRX).unwrap();
        let mut out = Vec::new();
        f24.encode_row(&[0x00AABBCC, 0x00112233], &mut out);
        assert_eq!(out, [0xCC, 0xBB, 0xAA, 0x33, 0x22, 0x11]);
        // 5-6-5 style narrower channels keep the high bits.
        let narrow = PixelFormat::new(32, RgbFields { red: (11, 5), green: (5, 6), blue: (0, 5) }).unwrap();
        assert_eq!(narrow.encode(0x00FFFFFF), 0xFFFF);
    }

    #[test]
    fn rejects_formats_it_cannot_draw() {
        assert_eq!(PixelFormat::new(16, BGRX), Err(DisplayError::Depth { bpp: 16 }));
        assert_eq!(PixelFormat::new(24, RgbFields { red: (24, 8), ..BGRX }), Err(DisplayError::Channels));
        assert_eq!(PixelFormat::new(32, RgbFields { red: (16, 10), ..BGRX }), Err(DisplayError::Channels));
        let text = Framebuffer { addr: 0xB8000, pitch: 160, width: 80, height: 25, bpp: 16, kind: 2, rgb: None };
        assert_eq!(LinearFramebuffer::take(&text).err(), Some(DisplayError::NotDirectRgb { kind: 2 }));
        let bad = Framebuffer { addr: 0xFD00_0000, pitch: 100, width: 1024, height: 768, bpp: 32, kind: 1, rgb: Some(BGRX) };
        assert!(matches!(LinearFramebuffer::take(&bad), Err(DisplayError::Geometry { .. })));
    }
}
