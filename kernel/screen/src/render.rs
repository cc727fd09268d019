//! Glyphs to pixels: each pixel of a cell is its glyph's coverage blended
//! between the cell's foreground and background colours, per channel,
//! rounded to nearest (integer arithmetic: the same bytes on every CPU).

use alloc::vec;
use alloc::vec::Vec;

use crate::font::Font;
use crate::grid::{Cell, Style};

/// The screen's background colour (0x00RRGGBB).
pub const BACKGROUND: u32 = 0x0010_1418;

/// `fg` over `bg` at coverage `alpha` (0..=255).
pub fn blend(fg: u32, bg: u32, alpha: u8) -> u32 {
    let a = alpha as u32;
    let mut out = 0;
    for shift in [0, 8, 16] {
        let f = (fg >> shift) & 0xFF;
        let b = (bg >> shift) & 0xFF;
        out |= ((f * a + b * (255 - a) + 127) / 255) << shift;
    }
    out
}

/// Renders one row of `cells` into `out`, which holds `font.cell_height()`
/// pixel lines of `width_px` pixels each; pixels right of the last cell get
/// `fill`. Cells that do not fit in `width_px` are not drawn.
pub fn render_row(font: &Font, cells: &[Cell], fill: u32, out: &mut [u32], width_px: usize) {
    let (cw, ch) = (font.cell_width(), font.cell_height());
    assert!(out.len() >= width_px * ch, "the row buffer holds {} pixels, not {} lines of {width_px}", out.len(), ch);
    let drawn = cells.len().min(width_px / cw);
    for (i, cell) in cells[..drawn].iter().enumerate() {
        let glyph = font.glyph(cell.ch);
        let (fg, bg) = cell.style.colors();
        for (y, line) in glyph.rows().enumerate() {
            let start = y * width_px + i * cw;
            for (px, &alpha) in out[start..start + cw].iter_mut().zip(line) {
                *px = blend(fg, bg, alpha);
            }
        }
    }
    for y in 0..ch {
        out[y * width_px + drawn * cw..(y + 1) * width_px].fill(fill);
    }
}

/// The text cursor's colour and height (an underline, in pixel lines).
pub const CURSOR: u32 = 0x00FF_D75F;
pub const CURSOR_LINES: usize = 2;

/// Draws the text cursor (an underline) under cell `col` of a row rendered
/// by [`render_row`] into `out`; nothing if the cell is past `width_px`.
pub fn draw_cursor(font: &Font, col: usize, out: &mut [u32], width_px: usize) {
    let (cw, ch) = (font.cell_width(), font.cell_height());
    if (col + 1) * cw > width_px {
        return;
    }
    for y in ch - CURSOR_LINES..ch {
        out[y * width_px + col * cw..y * width_px + (col + 1) * cw].fill(CURSOR);
    }
}

/// The pixels of a whole screen row showing `text` in `style` (padded with
/// blank cells to `cols`): what the host tests expect to find in a screendump.
pub fn render_text_row(font: &Font, text: &str, style: Style, cols: usize, width_px: usize) -> Vec<u32> {
    let mut cells: Vec<Cell> = text.chars().map(|ch| Cell { ch, style }).take(cols).collect();
    let blank = if style == Style::Status { Cell { ch: ' ', style } } else { Cell::BLANK };
    cells.resize(cols, blank);
    let mut out = vec![0; width_px * font.cell_height()];
    let fill = if style == Style::Status { style.colors().1 } else { BACKGROUND };
    render_row(font, &cells, fill, &mut out, width_px);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_ends_and_midpoint() {
        assert_eq!(blend(0xFFFFFF, 0x000000, 255), 0xFFFFFF);
        assert_eq!(blend(0xFFFFFF, 0x102030, 0), 0x102030);
        assert_eq!(blend(0xFF0000, 0x0000FF, 128), 0x80007F);
    }

    #[test]
    fn a_row_is_its_glyphs_side_by_side() {
        let font = Font::for_height(768);
        let (cw, ch) = (font.cell_width(), font.cell_height());
        let width = 4 * cw + 3; // three pixels of fill on the right
        let cells = [Cell { ch: 'H', style: Style::Text }, Cell { ch: 'i', style: Style::User }, Cell::BLANK, Cell { ch: '!', style: Style::Text }];
        let mut out = vec![0xDEAD; width * ch];
        render_row(&font, &cells, 0x00ABCDEF, &mut out, width);
        for (i, cell) in cells.iter().enumerate() {
            let g = font.glyph(cell.ch);
            let (fg, bg) = cell.style.colors();
            for y in 0..ch {
                for x in 0..cw {
                    assert_eq!(out[y * width + i * cw + x], blend(fg, bg, g.pixel(x, y).unwrap()), "cell {i} pixel ({x},{y})");
                }
            }
        }
        for y in 0..ch {
            assert_eq!(&out[y * width + 4 * cw..(y + 1) * width], &[0x00ABCDEF; 3]);
        }
        let text = render_text_row(&font, "Hi", Style::Text, 4, width);
        assert_eq!(&text[..cw], &out[..cw], "the first cell matches");
    }

    #[test]
    fn the_cursor_underlines_one_cell() {
        let font = Font::for_height(768);
        let (cw, ch) = (font.cell_width(), font.cell_height());
        let width = 3 * cw;
        let mut out = vec![0; width * ch];
        render_row(&font, &[Cell::BLANK; 3], 0, &mut out, width);
        draw_cursor(&font, 1, &mut out, width);
        for y in 0..ch {
            for x in 0..width {
                let under = y >= ch - CURSOR_LINES && (cw..2 * cw).contains(&x);
                assert_eq!(out[y * width + x], if under { CURSOR } else { BACKGROUND }, "({x},{y})");
            }
        }
        let before = out.clone();
        draw_cursor(&font, 3, &mut out, width);
        assert_eq!(out, before, "a cursor past the row's end is not drawn");
    }

    #[test]
    fn cells_past_the_width_are_not_drawn() {
        let font = Font::for_height(768);
        let width = font.cell_width() * 2;
        let mut out = vec![0; width * font.cell_height()];
        render_row(&font, &[Cell::BLANK; 5], 0, &mut out, width);
        assert!(out.iter().all(|&p| p == BACKGROUND));
    }
}
