//! The console font: Noto Sans Mono Regular from `noto-sans-mono-bitmap`,
//! one byte of coverage per pixel, in the raster height that suits the
//! screen (20 px up to 1000 lines, 24 px to 1440, 32 px above).

use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight, RasterizedChar};

/// Drawn for characters the font lacks.
pub const REPLACEMENT: char = '\u{fffd}';

/// One raster height of the console font.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Font {
    height: RasterHeight,
}

impl Font {
    /// The font for a screen `height_px` pixels tall.
    pub fn for_height(height_px: usize) -> Font {
        let height = if height_px >= 1440 {
            RasterHeight::Size32
        } else if height_px >= 1000 {
            RasterHeight::Size24
        } else {
            RasterHeight::Size20
        };
        Font { height }
    }

    /// Width of every character cell, in pixels.
    pub fn cell_width(&self) -> usize {
        get_raster_width(FontWeight::Regular, self.height)
    }

    /// Height of every character cell (the line height), in pixels.
    pub fn cell_height(&self) -> usize {
        self.height.val()
    }

    /// The glyph for `c`; characters outside the font's ranges (Basic
    /// Latin, Latin-1) get U+FFFD.
    pub fn glyph(&self, c: char) -> RasterizedChar {
        get_raster(c, FontWeight::Regular, self.height)
            .or_else(|| get_raster(REPLACEMENT, FontWeight::Regular, self.height))
            .expect("the font has U+FFFD (feature unicode-specials)")
    }

    /// The font has a glyph of its own for `c`.
    pub fn has(&self, c: char) -> bool {
        get_raster(c, FontWeight::Regular, self.height).is_some()
    }
}

/// How a screen of a given size is divided into character cells: text rows
/// above, the status line on the bottom row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub font: Font,
    pub width_px: usize,
    pub height_px: usize,
    /// Character columns.
    pub cols: usize,
    /// Character rows, the status line included.
    pub rows: usize,
}

/// Fewest columns and rows a console is drawn with.
pub const MIN_COLS: usize = 20;
pub const MIN_ROWS: usize = 4;

impl Layout {
    /// The layout of a `width_px` x `height_px` screen, or `None` if fewer
    /// than [`MIN_COLS`] x [`MIN_ROWS`] cells fit.
    pub fn new(width_px: usize, height_px: usize) -> Option<Layout> {
        let font = Font::for_height(height_px);
        let cols = width_px / font.cell_width();
        let rows = height_px / font.cell_height();
        (cols >= MIN_COLS && rows >= MIN_ROWS).then_some(Layout { font, width_px, height_px, cols, rows })
    }

    /// Top pixel line of character row `row`.
    pub fn row_y(&self, row: usize) -> usize {
        row * self.font.cell_height()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_per_resolution() {
        let l = Layout::new(1024, 768).unwrap();
        assert_eq!((l.font.cell_width(), l.font.cell_height(), l.cols, l.rows), (9, 20, 113, 38));
        let l = Layout::new(1920, 1080).unwrap();
        assert_eq!((l.font.cell_width(), l.font.cell_height(), l.cols, l.rows), (11, 24, 174, 45));
        let l = Layout::new(3840, 2160).unwrap();
        assert_eq!((l.font.cell_height(), l.cols, l.rows), (32, 274, 67));
        assert_eq!(Layout::new(100, 60), None, "too small for a console");
    }

    #[test]
    fn glyphs_and_fallback() {
        let f = Font::for_height(768);
        let a = f.glyph('A');
        assert_eq!((a.width(), a.height()), (9, 20));
        assert!(a.pixels().iter().any(|&p| p > 200), "'A' has ink");
        assert!(f.glyph(' ').pixels().iter().all(|&p| p == 0), "space is blank");
        assert!(f.has('é'));
        assert!(!f.has('日'));
        assert_eq!(f.glyph('日'), f.glyph(REPLACEMENT));
    }
}
