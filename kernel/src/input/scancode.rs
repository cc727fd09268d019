//! PS/2 scancodes to keys, US layout: set 1 (what the i8042 delivers with
//! translation on, the firmware default) and set 2 (translation off),
//! tracking Shift, Ctrl and Caps Lock. Set 2 codes are mapped to their set 1
//! equivalents, so one key table serves both.

use axiom_hw::legacy::i8042::ScancodeSet;

/// What a key press means to the line editor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    /// Ctrl-D.
    EndOfInput,
}

/// Set 1 make codes 0x00..=0x39: (unshifted, shifted); '\0' = no character.
const SET1: [(char, char); 0x3A] = [
    ('\0', '\0'), ('\0', '\0'), ('1', '!'), ('2', '@'), ('3', '#'), ('4', '$'), ('5', '%'), ('6', '^'), // 0x00
    ('7', '&'), ('8', '*'), ('9', '('), ('0', ')'), ('-', '_'), ('=', '+'), ('\0', '\0'), (' ', ' '), // 0x08: 0x0E backspace, 0x0F tab
    ('q', 'Q'), ('w', 'W'), ('e', 'E'), ('r', 'R'), ('t', 'T'), ('y', 'Y'), ('u', 'U'), ('i', 'I'), // 0x10
    ('o', 'O'), ('p', 'P'), ('[', '{'), (']', '}'), ('\0', '\0'), ('\0', '\0'), ('a', 'A'), ('s', 'S'), // 0x18: 0x1C enter, 0x1D ctrl
    ('d', 'D'), ('f', 'F'), ('g', 'G'), ('h', 'H'), ('j', 'J'), ('k', 'K'), ('l', 'L'), (';', ':'), // 0x20
    ('\'', '"'), ('`', '~'), ('\0', '\0'), ('\\', '|'), ('z', 'Z'), ('x', 'X'), ('c', 'C'), ('v', 'V'), // 0x28: 0x2A left shift
    ('b', 'B'), ('n', 'N'), ('m', 'M'), (',', '<'), ('.', '>'), ('/', '?'), ('\0', '\0'), ('*', '*'), // 0x30: 0x36 right shift, 0x37 keypad *
    ('\0', '\0'), (' ', ' '), // 0x38 alt, 0x39 space
];

const BACKSPACE: u8 = 0x0E;
const ENTER: u8 = 0x1C;
const CTRL: u8 = 0x1D;
const LEFT_SHIFT: u8 = 0x2A;
const RIGHT_SHIFT: u8 = 0x36;
const CAPS_LOCK: u8 = 0x3A;
const KEYPAD_MINUS: u8 = 0x4A;
const KEYPAD_PLUS: u8 = 0x4E;
/// After 0xE0: keypad Enter (0x1C), right Ctrl (0x1D), keypad / (0x35).
const EXTENDED: u8 = 0xE0;
/// Set 2: the next code is a release.
const SET2_RELEASE: u8 = 0xF0;

/// Set 2 code to set 1 code, for the keys [`SET1`] and the modifiers know.
fn set2_to_set1(code: u8) -> Option<u8> {
    const MAP: &[(u8, u8)] = &[
        (0x16, 0x02), (0x1E, 0x03), (0x26, 0x04), (0x25, 0x05), (0x2E, 0x06), (0x36, 0x07), (0x3D, 0x08), (0x3E, 0x09),
        (0x46, 0x0A), (0x45, 0x0B), (0x4E, 0x0C), (0x55, 0x0D), (0x66, 0x0E), (0x0D, 0x0F), (0x15, 0x10), (0x1D, 0x11),
        (0x24, 0x12), (0x2D, 0x13), (0x2C, 0x14), (0x35, 0x15), (0x3C, 0x16), (0x43, 0x17), (0x44, 0x18), (0x4D, 0x19),
        (0x54, 0x1A), (0x5B, 0x1B), (0x5A, 0x1C), (0x14, 0x1D), (0x1C, 0x1E), (0x1B, 0x1F), (0x23, 0x20), (0x2B, 0x21),
        (0x34, 0x22), (0x33, 0x23), (0x3B, 0x24), (0x42, 0x25), (0x4B, 0x26), (0x4C, 0x27), (0x52, 0x28), (0x0E, 0x29),
        (0x12, 0x2A), (0x5D, 0x2B), (0x1A, 0x2C), (0x22, 0x2D), (0x21, 0x2E), (0x2A, 0x2F), (0x32, 0x30), (0x31, 0x31),
        (0x3A, 0x32), (0x41, 0x33), (0x49, 0x34), (0x4A, 0x35), (0x59, 0x36), (0x7C, 0x37), (0x11, 0x38), (0x29, 0x39),
        (0x58, 0x3A), (0x7B, 0x4A), (0x79, 0x4E),
    ];
    MAP.iter().find(|(s2, _)| *s2 == code).map(|&(_, s1)| s1)
}

/// Turns the controller's bytes into keys.
pub struct Decoder {
    set: ScancodeSet,
    extended: bool,
    releasing: bool,
    left_shift: bool,
    right_shift: bool,
    ctrl: bool,
    caps_lock: bool,
}

impl Decoder {
    pub fn new(set: ScancodeSet) -> Decoder {
        Decoder { set, extended: false, releasing: false, left_shift: false, right_shift: false, ctrl: false, caps_lock: false }
    }

    /// Feeds one byte; returns the key a press completed.
    pub fn push(&mut self, byte: u8) -> Option<Key> {
        if byte == EXTENDED {
            self.extended = true;
            return None;
        }
        let (code, pressed) = match self.set {
            ScancodeSet::One => (byte & 0x7F, byte & 0x80 == 0),
            ScancodeSet::Two => {
                if byte == SET2_RELEASE {
                    self.releasing = true;
                    return None;
                }
                let pressed = !core::mem::take(&mut self.releasing);
                match set2_to_set1(byte) {
                    Some(code) => (code, pressed),
                    None => {
                        self.extended = false;
                        return None;
                    }
                }
            }
        };
        let extended = core::mem::take(&mut self.extended);
        self.key(code, pressed, extended)
    }

    fn key(&mut self, code: u8, pressed: bool, extended: bool) -> Option<Key> {
        match code {
            CTRL => self.ctrl = pressed,
            LEFT_SHIFT if !extended => self.left_shift = pressed,
            RIGHT_SHIFT if !extended => self.right_shift = pressed,
            CAPS_LOCK if pressed => self.caps_lock = !self.caps_lock,
            _ if !pressed => {}
            ENTER => return Some(Key::Enter),
            BACKSPACE => return Some(Key::Backspace),
            0x35 if extended => return Some(Key::Char('/')),
            KEYPAD_MINUS => return Some(Key::Char('-')),
            KEYPAD_PLUS => return Some(Key::Char('+')),
            // Extended codes are the cursor block and the like: not text.
            _ if extended => {}
            code => {
                let &(plain, shifted) = SET1.get(code as usize)?;
                if plain == '\0' {
                    return None;
                }
                if self.ctrl {
                    return (plain == 'd').then_some(Key::EndOfInput);
                }
                let shift = self.left_shift || self.right_shift;
                // Caps Lock inverts Shift for letters only.
                let shifted_now = if plain.is_ascii_lowercase() { shift != self.caps_lock } else { shift };
                let c = if shifted_now { shifted } else { plain };
                return Some(Key::Char(c));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn decode(set: ScancodeSet, bytes: &[u8]) -> Vec<Key> {
        let mut d = Decoder::new(set);
        bytes.iter().filter_map(|&b| d.push(b)).collect()
    }

    fn text(keys: &[Key]) -> String {
        keys.iter().filter_map(|k| if let Key::Char(c) = k { Some(*c) } else { None }).collect()
    }

    #[test]
    fn set1_letters_shift_and_releases() {
        // h i (press, release), Shift+1, space, Enter.
        let keys = decode(ScancodeSet::One, &[0x23, 0xA3, 0x17, 0x97, 0x2A, 0x02, 0x82, 0xAA, 0x39, 0xB9, 0x1C, 0x9C]);
        assert_eq!(text(&keys), "hi! ");
        assert_eq!(keys.last(), Some(&Key::Enter));
        // Right shift, punctuation.
        assert_eq!(text(&decode(ScancodeSet::One, &[0x36, 0x27, 0x28, 0xB6, 0x33, 0x34, 0x35])), ":\",./");
    }

    #[test]
    fn set2_the_same_keys() {
        // h i, Shift+1, space, Enter, each released with F0.
        let keys = decode(ScancodeSet::Two, &[0x33, 0xF0, 0x33, 0x43, 0xF0, 0x43, 0x12, 0x16, 0xF0, 0x16, 0xF0, 0x12, 0x29, 0xF0, 0x29, 0x5A, 0xF0, 0x5A]);
        assert_eq!(text(&keys), "hi! ");
        assert_eq!(keys.last(), Some(&Key::Enter));
        assert_eq!(decode(ScancodeSet::Two, &[0x66, 0xF0, 0x66]), [Key::Backspace]);
        // An unknown code (F1 = 0x05) and its release do not leave state behind.
        assert_eq!(text(&decode(ScancodeSet::Two, &[0x05, 0xF0, 0x05, 0x1C])), "a");
    }

    #[test]
    fn caps_lock_ctrl_d_and_extended_keys() {
        // Caps Lock, a, Shift+a, Caps Lock, a.
        assert_eq!(text(&decode(ScancodeSet::One, &[0x3A, 0xBA, 0x1E, 0x2A, 0x1E, 0xAA, 0x3A, 0xBA, 0x1E])), "Aaa");
        assert_eq!(decode(ScancodeSet::One, &[0x1D, 0x20, 0xA0, 0x9D]), [Key::EndOfInput]);
        // Ctrl+c is not text.
        assert!(decode(ScancodeSet::One, &[0x1D, 0x2E]).is_empty());
        // Keypad Enter and keypad / are keys; cursor-up (E0 48) is not text.
        assert_eq!(decode(ScancodeSet::One, &[0xE0, 0x1C, 0xE0, 0x35, 0xE0, 0x48, 0xE0, 0xC8]), [Key::Enter, Key::Char('/')]);
        // Right Ctrl (E0 1D) works as Ctrl; E0 2A (fake shift) does not shift.
        assert_eq!(decode(ScancodeSet::One, &[0xE0, 0x1D, 0x20, 0xE0, 0x9D, 0xE0, 0x2A, 0x20]), [Key::EndOfInput, Key::Char('d')]);
    }
}
