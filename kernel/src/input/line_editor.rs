//! The keyboard's line editor: characters are inserted at the end, Backspace
//! removes the last one, Enter hands the line over, Ctrl-D on an empty line
//! ends the input. The caller echoes each [`Edit`] on the screen.

use alloc::string::String;

use super::scancode::Key;

/// What one key did to the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// `c` was appended (echo it).
    Inserted(char),
    /// The last character was removed (erase it).
    Erased,
    /// Enter: the finished line (the editor is empty again).
    Line(String),
    /// Ctrl-D on an empty line.
    End,
    /// Nothing changed (Backspace on an empty line, Ctrl-D mid-line, or
    /// a character past the length limit).
    Nothing,
}

/// A line of at most `max` bytes (UTF-8).
pub struct LineEditor {
    line: String,
    max: usize,
}

impl LineEditor {
    pub fn new(max: usize) -> LineEditor {
        LineEditor { line: String::with_capacity(max), max }
    }

    /// The line typed so far.
    pub fn text(&self) -> &str {
        &self.line
    }

    pub fn push(&mut self, key: Key) -> Edit {
        match key {
            Key::Char(c) if self.line.len() + c.len_utf8() <= self.max => {
                self.line.push(c);
                Edit::Inserted(c)
            }
            Key::Char(_) => Edit::Nothing,
            Key::Backspace => match self.line.pop() {
                Some(_) => Edit::Erased,
                None => Edit::Nothing,
            },
            Key::Enter => Edit::Line(core::mem::replace(&mut self.line, String::with_capacity(self.max))),
            Key::EndOfInput if self.line.is_empty() => Edit::End,
            Key::EndOfInput => Edit::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(e: &mut LineEditor, s: &str) {
        for c in s.chars() {
            assert_eq!(e.push(Key::Char(c)), Edit::Inserted(c));
        }
    }

    #[test]
    fn type_erase_and_enter() {
        let mut e = LineEditor::new(16);
        typed(&mut e, "helo");
        assert_eq!(e.push(Key::Backspace), Edit::Erased);
        typed(&mut e, "lo");
        assert_eq!(e.text(), "hello");
        assert_eq!(e.push(Key::Enter), Edit::Line(String::from("hello")));
        assert_eq!(e.text(), "");
        assert_eq!(e.push(Key::Backspace), Edit::Nothing, "backspace on an empty line");
        assert_eq!(e.push(Key::Enter), Edit::Line(String::new()), "an empty line is a line");
    }

    #[test]
    fn length_limit_and_end_of_input() {
        let mut e = LineEditor::new(3);
        typed(&mut e, "abc");
        assert_eq!(e.push(Key::Char('d')), Edit::Nothing, "past the limit");
        assert_eq!(e.push(Key::EndOfInput), Edit::Nothing, "Ctrl-D mid-line");
        assert_eq!(e.push(Key::Enter), Edit::Line(String::from("abc")));
        assert_eq!(e.push(Key::EndOfInput), Edit::End);
    }
}
