//! The linear framebuffer the boot loader set up (Multiboot2 framebuffer
//! tag: VBE on BIOS, GOP on UEFI), as a safe pixel sink: rows of 0x00RRGGBB
//! pixels in, the device's own pixel format out (32 or 24 bits per pixel,
//! channel positions from the boot information).
//!
//! The memory is mapped uncached through [`crate::mem::map_mmio`] and
//! written with its checked volatile 32-bit accesses, so this module holds
//! no `unsafe` of its own (its tests map host memory). Uncached writes are
//! slow on real hardware (a whole-screen redraw at 1024x768x32 is 3 MiB);
//! the console redraws only the cells that changed ([`LinearFramebuffer::write_block`]).

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
        self.write_block(0, y, self.width, pixels);
    }

    /// Draws a block `block_width` pixels wide whose top left corner is at
    /// (`x`, `y`): `pixels` holds its lines one after the other. What falls
    /// outside the screen is cut.
    pub fn write_block(&mut self, x: usize, y: usize, block_width: usize, pixels: &[u32]) {
        if block_width == 0 || x >= self.width {
            return;
        }
        let visible = block_width.min(self.width - x);
        for (i, line) in pixels.chunks_exact(block_width).enumerate() {
            if y + i >= self.height {
                break;
            }
            let mut bytes = core::mem::take(&mut self.row);
            self.format.encode_row(&line[..visible], &mut bytes);
            self.write_bytes((y + i) * self.pitch + x * self.format.bytes_per_pixel, &bytes);
            self.row = bytes;
        }
    }

    /// Fills pixel lines `[y, y + lines)` with `rgb`.
    pub fn fill_rows(&mut self, y: usize, lines: usize, rgb: u32) {
        let mut bytes = core::mem::take(&mut self.row);
        self.format.encode_row(&alloc::vec![rgb; self.width], &mut bytes);
        for line in y..(y + lines).min(self.height) {
            self.write_bytes(line * self.pitch, &bytes);
        }
        self.row = bytes;
    }

    /// `bytes` at byte `offset` of the framebuffer, as aligned 32-bit
    /// writes; a partial word at either end keeps its other bytes (read,
    /// merged, written back).
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        let mut word_at = offset & !3;
        let mut skip = offset - word_at;
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (4 - skip).min(rest.len());
            let value = if skip == 0 && take == 4 {
                u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]])
            } else {
                let mut word = self.mmio.read32(word_at).to_le_bytes();
                word[skip..skip + take].copy_from_slice(&rest[..take]);
                u32::from_le_bytes(word)
            };
            self.mmio.write32(word_at, value);
            rest = &rest[take..];
            word_at += 4;
            skip = 0;
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

    /// A framebuffer over host memory (`words` backs it).
    fn host_fb(words: &mut [u32], width: usize, height: usize, pitch: usize, bpp: u8) -> LinearFramebuffer {
        assert!(words.len() * 4 >= pitch * height);
        // SAFETY: `words` is live, exclusively borrowed memory for the
        // framebuffer's whole use in the test; volatile 32-bit accesses to
        // ordinary memory are sound.
        let mmio = unsafe { MmioRegion::new(words.as_mut_ptr().cast::<u8>(), words.len() * 4) };
        LinearFramebuffer { mmio, pitch, width, height, format: PixelFormat::new(bpp, BGRX).unwrap(), row: Vec::new() }
    }

    fn bytes(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn blocks_land_at_their_place_and_nothing_else_changes() {
        // 24 bits per pixel: a block at x = 1 starts mid-word.
        let mut words = std::vec![0xEEEE_EEEEu32; 8];
        let mut fb = host_fb(&mut words, 5, 2, 16, 24);
        fb.write_block(1, 1, 2, &[0x00112233, 0x00445566, 0x00778899, 0x00AABBCC]);
        drop(fb);
        let b = bytes(&words);
        assert!(b[..19].iter().all(|&x| x == 0xEE), "line 0 and pixel 0 of line 1 untouched");
        assert_eq!(&b[19..25], &[0x33, 0x22, 0x11, 0x66, 0x55, 0x44], "two BGR pixels at (1,1)");
        assert!(b[25..].iter().all(|&x| x == 0xEE), "the rest untouched; the block's second line is past the bottom");
        // 32 bits per pixel, clipped at the right edge.
        let mut words = std::vec![0u32; 8];
        let mut fb = host_fb(&mut words, 4, 2, 16, 32);
        fb.write_block(3, 0, 2, &[0x010203, 0x040506, 0x070809, 0x0A0B0C]);
        fb.fill_rows(1, 5, 0x00FFFFFF);
        drop(fb);
        assert_eq!(words, [0, 0, 0, 0x010203, 0xFFFFFF, 0xFFFFFF, 0xFFFFFF, 0xFFFFFF]);
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
