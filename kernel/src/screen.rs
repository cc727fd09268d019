//! The screen: the human-readable console on the boot loader's framebuffer
//! (`console=fb|both`), beside or instead of the serial line's text. It
//! shows the kernel's messages, warnings and errors, the prompt being typed,
//! the answer as it streams and a status line (tokens/s, per-core shares)
//! on the bottom row, and an underline cursor where the next character
//! goes. Telemetry `@events` never come here.
//!
//! The grid and the rendering are `axiom_screen` (host-tested); the pixels
//! go out through `axiom_hw::display`. Every call is a no-op while there is
//! no screen, and a CPU that cannot get the screen's lock within a bounded
//! wait (another CPU stopped while drawing) skips the drawing: the serial
//! line still carries everything.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_hw::boot::info::BootInfo;
use axiom_hw::display::LinearFramebuffer;
use axiom_screen::{draw_cursor, render_row, Layout, Style, TextGrid, BACKGROUND};

struct Screen {
    fb: LinearFramebuffer,
    layout: Layout,
    grid: TextGrid,
    /// One character row of pixels, reused (spans use its start).
    pixels: Vec<u32>,
    /// Where the text cursor was drawn.
    cursor: (usize, usize),
}

impl Screen {
    /// Draws the rows that changed, and the text cursor (an underline) where
    /// the next character goes.
    fn flush(&mut self) {
        let cursor = self.grid.cursor();
        if cursor != self.cursor {
            self.grid.mark_cells(self.cursor.1, self.cursor.0, self.cursor.0 + 1);
            self.grid.mark_cells(cursor.1, cursor.0, cursor.0 + 1);
            self.cursor = cursor;
        }
        let Screen { fb, layout, grid, pixels, .. } = self;
        let (cols, cw) = (grid.cols(), layout.font.cell_width());
        grid.draw_dirty(|row, from, cells| {
            // A whole row also paints the margin right of the last column;
            // a span only its cells.
            let (fill, width) = if from == 0 && cells.len() == cols {
                (cells.first().map_or(BACKGROUND, |c| c.style.colors().1), layout.width_px)
            } else {
                (BACKGROUND, cells.len() * cw)
            };
            let block = &mut pixels[..width * layout.font.cell_height()];
            render_row(&layout.font, cells, fill, block, width);
            if row == cursor.1 && (from..from + cells.len()).contains(&cursor.0) {
                draw_cursor(&layout.font, cursor.0 - from, block, width);
            }
            fb.write_block(from * cw, layout.row_y(row), width, block);
        });
    }
}

static SCREEN: spin::Mutex<Option<Screen>> = spin::Mutex::new(None);
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Lock attempts before a drawing is skipped.
const LOCK_TRIES: u32 = 1_000_000;

/// Takes the framebuffer `info` describes and clears it; returns the
/// console's size in characters (columns, rows). `Ok(None)`: the boot
/// loader gave no framebuffer.
pub fn init(info: &BootInfo) -> Result<Option<(usize, usize)>, String> {
    let Some(fb) = info.framebuffer else {
        return Ok(None);
    };
    let mut lfb = LinearFramebuffer::take(&fb).map_err(|e| alloc::format!("{e}"))?;
    let layout = Layout::new(lfb.width(), lfb.height())
        .ok_or_else(|| alloc::format!("a {}x{} framebuffer is too small for a text console", fb.width, fb.height))?;
    lfb.fill_rows(0, lfb.height(), BACKGROUND);
    let mut screen =
        Screen { grid: TextGrid::new(layout.cols, layout.rows), pixels: vec![0; layout.width_px * layout.font.cell_height()], fb: lfb, layout, cursor: (0, 0) };
    screen.flush();
    *SCREEN.lock() = Some(screen);
    ACTIVE.store(true, Ordering::Release);
    Ok(Some((layout.cols, layout.rows)))
}

/// A screen is up.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

/// Runs `f` on the screen and draws what changed (nothing without a screen
/// or when the lock stays taken).
fn with(f: impl FnOnce(&mut TextGrid)) {
    if !is_active() {
        return;
    }
    for _ in 0..LOCK_TRIES {
        if let Some(mut guard) = SCREEN.try_lock() {
            if let Some(screen) = guard.as_mut() {
                f(&mut screen.grid);
                screen.flush();
            }
            return;
        }
        core::hint::spin_loop();
    }
}

/// Text at the cursor.
pub fn write(text: &str, style: Style) {
    with(|g| g.write(text, style));
}

/// Formatted text at the cursor.
pub fn write_fmt(args: fmt::Arguments, style: Style) {
    struct Grid<'a>(&'a mut TextGrid, Style);
    impl Write for Grid<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write(s, self.1);
            Ok(())
        }
    }
    with(|g| {
        let _ = Grid(g, style).write_fmt(args);
    });
}

/// A warning or error, on a line of its own.
pub fn alert(args: fmt::Arguments) {
    with(|g| g.finish_line());
    write_fmt(args, Style::Alert);
    with(|g| g.finish_line());
}

/// Ends the current line unless the cursor is at a line's start.
pub fn finish_line() {
    with(|g| g.finish_line());
}

/// Erases the character before the cursor.
pub fn backspace() {
    with(|g| g.backspace());
}

/// Replaces the status line.
pub fn status(text: &str) {
    with(|g| g.set_status(text));
}
