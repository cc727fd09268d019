//! The text console AXIOM draws on a linear framebuffer: pure logic, no
//! hardware. The kernel keeps a [`TextGrid`] (what each character cell
//! holds, the cursor, which rows changed), renders changed rows with
//! [`render_row`] into 0x00RRGGBB pixel rows and hands those to the
//! hardware layer, which converts them to the framebuffer's pixel format.
//! The host tests render the same strings with the same code to check
//! QEMU screendumps pixel for pixel.
//!
//! - [`font`]: the font (Noto Sans Mono, pre-rasterised) and its size per
//!   screen resolution ([`Layout`]).
//! - [`grid`]: the character grid: wrapping, scrolling, backspace, the
//!   status line on the bottom row.
//! - [`render`]: glyphs to pixels (coverage blended between the cell's
//!   foreground and background colours).

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod font;
pub mod grid;
pub mod render;

pub use font::{Font, Layout};
pub use grid::{Cell, Style, TextGrid};
pub use render::{draw_cursor, render_row, render_text_row, BACKGROUND};
