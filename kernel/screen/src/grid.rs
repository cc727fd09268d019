//! The character grid: what every cell of the text area holds, the cursor,
//! and which rows changed since they were last drawn. Text wraps at the
//! right edge and the area scrolls up one row when the cursor moves past the
//! bottom; the bottom row of the screen is a separate status line that
//! never scrolls. Changes are tracked per row as a span of columns, so a
//! new character or a changed status figure redraws only those cells (the
//! framebuffer is uncached memory: every pixel written costs).

use alloc::vec;
use alloc::vec::Vec;

/// How a cell is drawn (its colours: [`Style::colors`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The kernel's messages and the model's answers.
    Text,
    /// What the user typed.
    User,
    /// Warnings and errors.
    Alert,
    /// The status line.
    Status,
}

impl Style {
    /// (foreground, background) as 0x00RRGGBB.
    pub const fn colors(self) -> (u32, u32) {
        match self {
            Style::Text => (0x00D8_D8D8, crate::render::BACKGROUND),
            Style::User => (0x00FF_D75F, crate::render::BACKGROUND),
            Style::Alert => (0x00FF_7F6F, crate::render::BACKGROUND),
            Style::Status => (0x0010_1010, 0x008F_D0E0),
        }
    }
}

/// One character cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub style: Style,
}

impl Cell {
    pub const BLANK: Cell = Cell { ch: ' ', style: Style::Text };
}

/// Columns a tab advances to (multiples of).
const TAB: usize = 4;

pub struct TextGrid {
    cols: usize,
    /// Text rows (the status line is below them).
    rows: usize,
    cells: Vec<Cell>,
    status: Vec<Cell>,
    col: usize,
    row: usize,
    /// Per text row, then the status line last: the columns `[from, to)`
    /// changed since the row was last drawn.
    dirty: Vec<Option<(usize, usize)>>,
}

impl TextGrid {
    /// A blank grid of `cols` x `screen_rows` cells: `screen_rows - 1` text
    /// rows and the status line (`screen_rows` >= 2, `cols` >= 1).
    pub fn new(cols: usize, screen_rows: usize) -> TextGrid {
        assert!(cols >= 1 && screen_rows >= 2, "a grid needs a text row, a status row and a column");
        let rows = screen_rows - 1;
        TextGrid {
            cols,
            rows,
            cells: vec![Cell::BLANK; cols * rows],
            status: vec![Cell { ch: ' ', style: Style::Status }; cols],
            col: 0,
            row: 0,
            dirty: vec![Some((0, cols)); screen_rows],
        }
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Text rows (without the status line).
    pub fn text_rows(&self) -> usize {
        self.rows
    }

    /// (column, row) of the cursor.
    pub fn cursor(&self) -> (usize, usize) {
        (self.col, self.row)
    }

    /// The cursor is at the start of a row.
    pub fn at_line_start(&self) -> bool {
        self.col == 0
    }

    /// The cells of screen row `row` (the text rows, then the status line
    /// at `text_rows()`).
    pub fn row(&self, row: usize) -> &[Cell] {
        if row == self.rows {
            &self.status
        } else {
            &self.cells[row * self.cols..(row + 1) * self.cols]
        }
    }

    /// Screen row `row` as text, trailing blanks cut (for tests and logs).
    pub fn row_text(&self, row: usize) -> alloc::string::String {
        let s: alloc::string::String = self.row(row).iter().map(|c| c.ch).collect();
        alloc::string::String::from(s.trim_end())
    }

    /// Writes `text` at the cursor: `\n` ends the row, `\r` returns to
    /// its start, `\t` advances to the next multiple of four columns,
    /// other control characters are dropped.
    pub fn write(&mut self, text: &str, style: Style) {
        for c in text.chars() {
            self.put(c, style);
        }
    }

    /// One character at the cursor.
    pub fn put(&mut self, c: char, style: Style) {
        match c {
            '\n' => self.newline(),
            '\r' => self.col = 0,
            '\t' => {
                let next = (self.col / TAB + 1) * TAB;
                while self.col < next.min(self.cols) {
                    self.put(' ', style);
                }
            }
            c if c.is_control() => {}
            c => {
                if self.col == self.cols {
                    self.newline();
                }
                let (col, row) = (self.col, self.row);
                self.cells[row * self.cols + col] = Cell { ch: c, style };
                self.mark_cells(row, col, col + 1);
                self.col += 1;
            }
        }
    }

    /// Moves to the start of the next row, scrolling at the bottom.
    pub fn newline(&mut self) {
        self.col = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            self.scroll();
        }
    }

    /// Ends the current row unless the cursor is at a row's start.
    pub fn finish_line(&mut self) {
        if self.col != 0 {
            self.newline();
        }
    }

    /// Every text row moves up one; the bottom row is blank.
    fn scroll(&mut self) {
        self.cells.copy_within(self.cols.., 0);
        let last = (self.rows - 1) * self.cols;
        self.cells[last..].fill(Cell::BLANK);
        self.dirty[..self.rows].fill(Some((0, self.cols)));
    }

    /// Erases the character before the cursor (back across a wrapped row
    /// edge): the line editor's backspace. Nothing at the grid's top left.
    pub fn backspace(&mut self) {
        if self.col == 0 {
            if self.row == 0 {
                return;
            }
            self.row -= 1;
            self.col = self.cols;
        }
        self.col -= 1;
        self.cells[self.row * self.cols + self.col] = Cell::BLANK;
        self.mark_cells(self.row, self.col, self.col + 1);
    }

    /// Replaces the status line with `text` (cut at the width; control
    /// characters dropped).
    pub fn set_status(&mut self, text: &str) {
        let mut cells = text.chars().filter(|c| !c.is_control());
        for col in 0..self.cols {
            let new = Cell { ch: cells.next().unwrap_or(' '), style: Style::Status };
            if self.status[col] != new {
                self.status[col] = new;
                self.mark_cells(self.rows, col, col + 1);
            }
        }
    }

    /// Columns `[from, to)` of screen row `row` are drawn again at the next
    /// [`Self::draw_dirty`] (rows or columns outside the grid are ignored).
    pub fn mark_cells(&mut self, row: usize, from: usize, to: usize) {
        let to = to.min(self.cols);
        let Some(d) = self.dirty.get_mut(row) else { return };
        if from >= to {
            return;
        }
        *d = Some(match *d {
            Some((a, b)) => (a.min(from), b.max(to)),
            None => (from, to),
        });
    }

    /// Screen row `row` is drawn again at the next [`Self::draw_dirty`]
    /// (e.g. the text cursor moved off it).
    pub fn mark_dirty(&mut self, row: usize) {
        self.mark_cells(row, 0, self.cols);
    }

    /// Calls `draw(row, first_col, cells)` for every screen row changed
    /// since the last call, with the changed cells (starting at column
    /// `first_col`; the whole row is `first_col == 0` and `cells.len() ==
    /// cols()`), and marks them drawn.
    pub fn draw_dirty(&mut self, mut draw: impl FnMut(usize, usize, &[Cell])) {
        for row in 0..=self.rows {
            if let Some((from, to)) = self.dirty[row].take() {
                draw(row, from, &self.row(row)[from..to]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn texts(g: &TextGrid) -> Vec<String> {
        (0..g.text_rows()).map(|r| g.row_text(r)).collect()
    }

    fn dirty_rows(g: &mut TextGrid) -> Vec<usize> {
        dirty_spans(g).into_iter().map(|(row, _, _)| row).collect()
    }

    fn dirty_spans(g: &mut TextGrid) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        g.draw_dirty(|row, from, cells| out.push((row, from, cells.iter().map(|c| c.ch).collect())));
        out
    }

    #[test]
    fn writes_wrap_at_the_right_edge() {
        let mut g = TextGrid::new(5, 4);
        g.write("hello world", Style::Text);
        assert_eq!(texts(&g), ["hello", " worl", "d"]);
        assert_eq!(g.cursor(), (1, 2));
        // Exactly filling a row leaves the cursor at its end, not on a blank row.
        let mut g = TextGrid::new(5, 4);
        g.write("abcde", Style::Text);
        assert_eq!(g.cursor(), (5, 0));
        g.write("\nx", Style::Text);
        assert_eq!(texts(&g), ["abcde", "x", ""]);
    }

    #[test]
    fn scrolls_up_at_the_bottom_and_keeps_the_status_line() {
        let mut g = TextGrid::new(8, 4);
        g.set_status("tok/s 1");
        g.write("one\ntwo\nthree\nfour", Style::Text);
        assert_eq!(texts(&g), ["two", "three", "four"]);
        assert_eq!(g.row_text(3), "tok/s 1");
        assert_eq!(g.cursor(), (4, 2));
        let _ = dirty_rows(&mut g);
        g.write("\nfive", Style::User);
        assert_eq!(texts(&g), ["three", "four", "five"]);
        assert_eq!(dirty_rows(&mut g), [0, 1, 2], "a scroll redraws every text row, not the status line");
        assert_eq!(g.row(2)[0], Cell { ch: 'f', style: Style::User });
    }

    #[test]
    fn control_characters_tabs_and_carriage_return() {
        let mut g = TextGrid::new(10, 3);
        g.write("a\tb\x07c\rZ", Style::Text);
        assert_eq!(g.row_text(0), "Z   bc");
        g.finish_line();
        assert_eq!(g.cursor(), (0, 1));
        g.finish_line();
        assert_eq!(g.cursor(), (0, 1), "finish_line at a row start does nothing");
    }

    #[test]
    fn backspace_crosses_wrapped_rows_and_stops_at_the_top() {
        let mut g = TextGrid::new(4, 4);
        g.write("abcdef", Style::User);
        g.backspace();
        g.backspace();
        g.backspace();
        assert_eq!(texts(&g), ["abc", "", ""]);
        assert_eq!(g.cursor(), (3, 0));
        for _ in 0..10 {
            g.backspace();
        }
        assert_eq!(g.cursor(), (0, 0));
        assert_eq!(texts(&g), ["", "", ""]);
    }

    #[test]
    fn only_changed_rows_are_redrawn() {
        let mut g = TextGrid::new(10, 4);
        assert_eq!(dirty_rows(&mut g), [0, 1, 2, 3], "everything is drawn the first time");
        assert!(dirty_rows(&mut g).is_empty());
        g.write("x", Style::Text);
        g.set_status("s");
        assert_eq!(dirty_rows(&mut g), [0, 3]);
        g.set_status("s");
        assert!(dirty_rows(&mut g).is_empty(), "an unchanged status is not redrawn");
        g.set_status("a status longer than the row");
        assert_eq!(g.row_text(3), "a status l");
        let _ = dirty_rows(&mut g);
        g.mark_dirty(1);
        g.mark_dirty(99);
        assert_eq!(dirty_rows(&mut g), [1]);
    }

    #[test]
    fn only_changed_cells_are_redrawn() {
        let mut g = TextGrid::new(10, 3);
        let _ = dirty_spans(&mut g);
        g.write("ab", Style::Text);
        g.write("c", Style::Text);
        assert_eq!(dirty_spans(&mut g), [(0, 0, String::from("abc"))]);
        g.write("d", Style::Text);
        assert_eq!(dirty_spans(&mut g), [(0, 3, String::from("d"))], "a new character is one cell");
        g.set_status("1.25 tok/s");
        let _ = dirty_spans(&mut g);
        g.set_status("1.75 tok/s");
        assert_eq!(dirty_spans(&mut g), [(2, 2, String::from("7"))], "one changed figure");
        g.set_status("9.25 tok/z");
        assert_eq!(dirty_spans(&mut g), [(2, 0, String::from("9.25 tok/z"))], "first to last change");
        g.backspace();
        assert_eq!(dirty_spans(&mut g), [(0, 3, String::from(" "))]);
        g.mark_cells(1, 4, 99);
        g.mark_cells(1, 2, 3);
        g.mark_cells(1, 5, 5);
        assert_eq!(dirty_spans(&mut g), [(1, 2, String::from("        "))], "spans merge and are cut at the width");
    }
}
