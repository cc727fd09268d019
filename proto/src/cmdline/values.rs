//! The value syntaxes of the command line: integers, sizes, percent-encoded
//! text. Used by the kernel to read values and by the host to write them.

use core::fmt;

/// An unsigned integer, decimal or `0x` hex.
pub fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// A byte size: an integer with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    parse_u64(digits)?.checked_mul(1u64 << shift)
}

/// A size the way [`parse_size`] reads it, with the largest exact suffix
/// (`64M`, `4K`, `1000`).
#[derive(Clone, Copy, Debug)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
            if v != 0 && v.is_multiple_of(1 << shift) {
                return write!(f, "{}{suffix}", v >> shift);
            }
        }
        write!(f, "{v}")
    }
}

/// Why a percent-encoded value does not decode.
pub const BAD_ESCAPE: &str = "a '%' must be followed by two hex digits";
pub const TOO_LONG: &str = "the decoded value is too long";

/// Decodes a percent-encoded value (`%20` for a space: command-line words
/// cannot hold spaces) into `out`; returns the decoded length. Fails on a
/// malformed escape or when `out` is too small.
pub fn percent_decode(s: &str, out: &mut [u8]) -> Result<usize, &'static str> {
    let bytes = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        let b = if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(BAD_ESCAPE)?;
            let hex = core::str::from_utf8(hex).map_err(|_| BAD_ESCAPE)?;
            i += 3;
            u8::from_str_radix(hex, 16).map_err(|_| BAD_ESCAPE)?
        } else {
            i += 1;
            bytes[i - 1]
        };
        *out.get_mut(n).ok_or(TOO_LONG)? = b;
        n += 1;
    }
    Ok(n)
}

/// Percent-encodes text for the command line as it is displayed: every
/// byte outside `[A-Za-z0-9._~-]` becomes `%XX` (so spaces, `=`, `%` and
/// UTF-8 survive the space-separated `key=value` syntax).
#[derive(Clone, Copy, Debug)]
pub struct PercentEncoded<'a>(pub &'a str);

impl fmt::Display for PercentEncoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.as_bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-') {
                fmt::Write::write_char(f, b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn percent_decoding() {
        let mut buf = [0u8; 64];
        let n = percent_decode("The%20capital%20of%20France%20is%3F%25", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"The capital of France is?%");
        let n = percent_decode("caf%C3%A9", &mut buf).unwrap();
        assert_eq!(core::str::from_utf8(&buf[..n]), Ok("café"));
        assert!(percent_decode("bad%2", &mut buf).is_err());
        assert!(percent_decode("bad%zz", &mut buf).is_err());
        assert!(percent_decode("toolong", &mut buf[..3]).is_err());
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(PercentEncoded("The capital of France is").to_string(), "The%20capital%20of%20France%20is");
        assert_eq!(PercentEncoded("a=b%c").to_string(), "a%3Db%25c");
        assert_eq!(PercentEncoded("A-z0._~9").to_string(), "A-z0._~9");
        assert_eq!(PercentEncoded("é\n").to_string(), "%C3%A9%0A");
        let text = "Why is the sky blue? 100% «sure»\n";
        let encoded = PercentEncoded(text).to_string();
        let mut buf = [0u8; 128];
        let n = percent_decode(&encoded, &mut buf).unwrap();
        assert_eq!(&buf[..n], text.as_bytes(), "decoding undoes encoding");
    }

    #[test]
    fn integers_and_sizes() {
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("ten"), None);
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("40m"), Some(40 << 20));
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(parse_size("12Q"), None);
        for (bytes, text) in [(64 << 20, "64M"), (4096, "4K"), (1000, "1000"), (3 << 30, "3G"), (0, "0")] {
            assert_eq!(Size(bytes).to_string(), text);
            assert_eq!(parse_size(text), Some(bytes));
        }
    }
}
