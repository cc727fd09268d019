//! The kernel command line: whitespace-separated `key=value` words (a bare
//! `key` means `key=`), checked against one table of valid keys. An unknown
//! key or a key given twice is an error whose message lists the valid keys.

use core::fmt;

/// One accepted key and what it does (shown when a key is wrong).
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub help: &'static str,
}

/// Most words kept.
pub const MAX_WORDS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    UnknownKey { key: &'a str, valid: &'static [KeySpec] },
    Duplicate { key: &'a str },
    TooManyWords,
    BadValue { key: &'a str, value: &'a str, expected: &'static str },
}

impl PartialEq for KeySpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for KeySpec {}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnknownKey { key, valid } => {
                write!(f, "unknown command-line key '{key}'; valid keys: ")?;
                for (i, k) in valid.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{} ({})", k.name, k.help)?;
                }
                Ok(())
            }
            CmdlineError::Duplicate { key } => write!(f, "command-line key '{key}' is given more than once"),
            CmdlineError::TooManyWords => write!(f, "command line has more than {MAX_WORDS} words"),
            CmdlineError::BadValue { key, value, expected } => {
                write!(f, "command-line key '{key}': value '{value}' is not {expected}")
            }
        }
    }
}

/// A parsed, validated command line borrowing the original text.
#[derive(Clone, Debug)]
pub struct Cmdline<'a> {
    words: [(&'a str, &'a str); MAX_WORDS],
    count: usize,
}

impl<'a> Cmdline<'a> {
    /// Parse `text` and check every key against `keys`. A leading word
    /// without `=` that looks like a file path (has a `/` or ends in `.elf` or
    /// `axiom-kernel`) is the kernel image, which QEMU's `-kernel` and GRUB put
    /// first; it is skipped.
    pub fn parse(text: &'a str, keys: &'static [KeySpec]) -> Result<Cmdline<'a>, CmdlineError<'a>> {
        let mut out = Cmdline { words: [("", ""); MAX_WORDS], count: 0 };
        for (i, word) in text.split_ascii_whitespace().enumerate() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, v),
                None => (word, ""),
            };
            let known = keys.iter().any(|k| k.name == key);
            if i == 0 && !known && is_image_path(word) {
                continue; // the image path
            }
            if !known {
                return Err(CmdlineError::UnknownKey { key, valid: keys });
            }
            if out.words[..out.count].iter().any(|(k, _)| *k == key) {
                return Err(CmdlineError::Duplicate { key });
            }
            if out.count == MAX_WORDS {
                return Err(CmdlineError::TooManyWords);
            }
            out.words[out.count] = (key, value);
            out.count += 1;
        }
        Ok(out)
    }

    /// The value of `key`, if given (`""` for a bare key).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.words[..self.count].iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// An unsigned integer (decimal or `0x` hex), or `default` when absent.
    pub fn u64_or(&self, key: &'a str, default: u64) -> Result<u64, CmdlineError<'a>> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_u64(v).ok_or(CmdlineError::BadValue { key, value: v, expected: "an unsigned integer" }),
        }
    }

    /// A byte size with an optional K/M/G suffix (powers of 1024).
    pub fn size_or(&self, key: &'a str, default: u64) -> Result<u64, CmdlineError<'a>> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_size(v).ok_or(CmdlineError::BadValue { key, value: v, expected: "a size like 512M or 2G" }),
        }
    }

    /// One of `choices`, or `default` when absent.
    pub fn choice_or(
        &self,
        key: &'a str,
        choices: &'static [&'static str],
        expected: &'static str,
        default: &'a str,
    ) -> Result<&'a str, CmdlineError<'a>> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if choices.contains(&v) => Ok(v),
            Some(v) => Err(CmdlineError::BadValue { key, value: v, expected }),
        }
    }

    /// `(key, value)` pairs in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.words[..self.count].iter().copied()
    }
}

fn is_image_path(word: &str) -> bool {
    !word.contains('=') && (word.contains('/') || word.ends_with(".elf") || word.ends_with("axiom-kernel"))
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse().ok()
    }
}

pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    parse_u64(digits)?.checked_mul(1u64 << shift)
}

/// Decodes a percent-encoded value (`%20` for a space: command-line words
/// cannot hold spaces) into `out`; returns the decoded length. Fails on a
/// malformed escape or when `out` is too small.
pub fn percent_decode(s: &str, out: &mut [u8]) -> Result<usize, &'static str> {
    let bytes = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        let b = if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("a '%' must be followed by two hex digits")?;
            let hex = core::str::from_utf8(hex).map_err(|_| "a '%' must be followed by two hex digits")?;
            i += 3;
            u8::from_str_radix(hex, 16).map_err(|_| "a '%' must be followed by two hex digits")?
        } else {
            i += 1;
            bytes[i - 1]
        };
        *out.get_mut(n).ok_or("the decoded value is too long")? = b;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    use std::string::ToString;

    static KEYS: &[KeySpec] = &[
        KeySpec { name: "selftest", help: "diagnostic mode" },
        KeySpec { name: "rounds", help: "barrier rounds" },
        KeySpec { name: "heap", help: "heap size" },
        KeySpec { name: "quiet", help: "fewer lines" },
    ];

    #[test]
    fn parses_keys_and_skips_image_path() {
        let c = Cmdline::parse("/tmp/axiom-kernel selftest=smp rounds=0x10 heap=64M quiet", KEYS).unwrap();
        assert_eq!(c.get("selftest"), Some("smp"));
        assert_eq!(c.u64_or("rounds", 5).unwrap(), 16);
        assert_eq!(c.size_or("heap", 0).unwrap(), 64 << 20);
        assert_eq!(c.get("quiet"), Some(""));
        assert_eq!(c.u64_or("missing", 7).unwrap(), 7);
        assert_eq!(c.iter().count(), 4);
        assert_eq!(Cmdline::parse("", KEYS).unwrap().iter().count(), 0);
        assert_eq!(Cmdline::parse("axiom-kernel rounds=1", KEYS).unwrap().iter().count(), 1);
        // A bare first word that is not a path is checked like any other.
        assert!(Cmdline::parse("bogus rounds=1", KEYS).is_err());
    }

    #[test]
    fn unknown_key_lists_valid_keys() {
        let e = Cmdline::parse("selftest=smp bogus=1", KEYS).unwrap_err();
        assert_eq!(e, CmdlineError::UnknownKey { key: "bogus", valid: KEYS });
        let msg = e.to_string();
        assert!(msg.starts_with("unknown command-line key 'bogus'; valid keys: selftest (diagnostic mode), rounds"));
        assert!(msg.contains("quiet (fewer lines)"));
        // A bare unknown word after the first is an unknown key too.
        assert!(matches!(Cmdline::parse("selftest=smp bogus", KEYS), Err(CmdlineError::UnknownKey { key: "bogus", .. })));
    }

    #[test]
    fn bad_values_and_duplicates() {
        let c = Cmdline::parse("rounds=ten heap=12Q", KEYS).unwrap();
        assert!(c.u64_or("rounds", 1).unwrap_err().to_string().contains("'ten' is not an unsigned integer"));
        assert!(c.size_or("heap", 1).is_err());
        assert_eq!(Cmdline::parse("rounds=1 rounds=2", KEYS).unwrap_err(), CmdlineError::Duplicate { key: "rounds" });
        let c = Cmdline::parse("selftest=smp", KEYS).unwrap();
        assert_eq!(c.choice_or("selftest", &["smp", "fault"], "smp or fault", "none").unwrap(), "smp");
        let c = Cmdline::parse("selftest=nope", KEYS).unwrap();
        assert!(c.choice_or("selftest", &["smp"], "smp", "none").is_err());
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("99999999999999999999G"), None);
    }
}
