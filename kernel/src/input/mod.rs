//! Interactive input from two sources at once, polled: bytes from the
//! serial line (assembled by [`LineReader`]) and keys from the PS/2
//! keyboard ([`scancode`] and [`line_editor`]). Whichever source finishes a
//! line first hands it over; the other keeps its partial line. What the
//! keyboard types is echoed on the screen as it is typed; a serial line
//! appears there when it is complete.

pub mod line_editor;
pub mod scancode;

use alloc::string::String;

use axiom_hw::legacy::i8042;
use axiom_screen::Style;

use crate::line_reader::{Line, LineReader};
use crate::{console, screen};
use line_editor::{Edit, LineEditor};
use scancode::Decoder;

/// One input event (owned: the session keeps the line).
#[derive(Debug, PartialEq, Eq)]
pub enum InputLine {
    Text(String),
    /// A serial line longer than the limit (discarded).
    TooLong { len: usize },
    /// A serial line that is not UTF-8 (discarded).
    InvalidUtf8 { at: usize },
    /// Ctrl-D (either source).
    End,
}

/// The interactive prompt's input: serial and, if present, the keyboard.
pub struct Lines<const N: usize> {
    serial: LineReader<N>,
    keyboard: Option<(Decoder, LineEditor)>,
    /// The screen shows the "> " marker of the line being typed.
    marked: bool,
}

impl<const N: usize> Lines<N> {
    /// Serial input, plus the keyboard if an i8042 answers.
    pub fn new() -> Self {
        let keyboard = i8042::probe().map(|set| (Decoder::new(set), LineEditor::new(N)));
        Lines { serial: LineReader::new(), keyboard, marked: false }
    }

    pub fn has_keyboard(&self) -> bool {
        self.keyboard.is_some()
    }

    /// The next finished line from either source, if one is ready now
    /// (never waits; call it in a polling loop).
    pub fn poll(&mut self) -> Option<InputLine> {
        if !self.marked {
            screen::finish_line();
            screen::write("> ", Style::User);
            self.marked = true;
        }
        let line = self.poll_serial().or_else(|| self.poll_keyboard());
        if line.is_some() {
            self.marked = false;
        }
        line
    }

    fn poll_serial(&mut self) -> Option<InputLine> {
        let byte = console::try_read_byte()?;
        let line = match self.serial.push(byte)? {
            Line::Text(t) => {
                screen::write(t, Style::User);
                InputLine::Text(String::from(t))
            }
            Line::TooLong { len } => InputLine::TooLong { len },
            Line::InvalidUtf8 { at } => InputLine::InvalidUtf8 { at },
            Line::End => InputLine::End,
        };
        screen::write("\n", Style::User);
        Some(line)
    }

    fn poll_keyboard(&mut self) -> Option<InputLine> {
        let (decoder, editor) = self.keyboard.as_mut()?;
        let key = decoder.push(i8042::try_read_key_byte()?)?;
        match editor.push(key) {
            Edit::Inserted(c) => {
                let mut utf8 = [0; 4];
                screen::write(c.encode_utf8(&mut utf8), Style::User);
                None
            }
            Edit::Erased => {
                screen::backspace();
                None
            }
            Edit::Nothing => None,
            Edit::Line(text) => {
                screen::write("\n", Style::User);
                Some(InputLine::Text(text))
            }
            Edit::End => {
                screen::write("\n", Style::User);
                Some(InputLine::End)
            }
        }
    }
}

impl<const N: usize> Default for Lines<N> {
    fn default() -> Self {
        Self::new()
    }
}
