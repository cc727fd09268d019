//! A small JSON writer for telemetry lines (`@name {json}`): correct string
//! escaping, no allocation, output to any `core::fmt::Write` (the kernel's
//! is a fixed buffer, [`FixedBuf`]). Values are written through [`ToJson`],
//! which the telemetry schema implements for every field type.

use alloc::borrow::Cow;
use core::fmt::{self, Write};

/// A value that writes itself as JSON. `decimals` is the precision of
/// floating-point values (each field of the schema says its own).
pub trait ToJson {
    fn write_json(&self, out: &mut dyn Write, decimals: usize) -> fmt::Result;

    /// An absent optional value: its field is left out of the object.
    fn is_absent(&self) -> bool {
        false
    }
}

/// Writes one JSON object field by field. Formatting errors are remembered
/// and reported by [`JsonObject::finish`].
pub struct JsonObject<'w> {
    out: &'w mut dyn Write,
    first: bool,
    err: fmt::Result,
}

impl<'w> JsonObject<'w> {
    /// Start an object: writes `{`.
    pub fn new(out: &'w mut dyn Write) -> Self {
        let err = out.write_char('{');
        JsonObject { out, first: true, err }
    }

    fn put(&mut self, f: impl FnOnce(&mut dyn Write) -> fmt::Result) {
        if self.err.is_ok() {
            self.err = f(self.out);
        }
    }

    /// `"key":value`, unless the value is absent.
    pub fn field<T: ToJson + ?Sized>(&mut self, key: &str, value: &T, decimals: usize) -> &mut Self {
        if value.is_absent() {
            return self;
        }
        if !self.first {
            self.put(|o| o.write_char(','));
        }
        self.first = false;
        self.put(|o| write_escaped(o, key));
        self.put(|o| o.write_char(':'));
        self.put(|o| value.write_json(o, decimals));
        self
    }

    /// Close the object; `Err` if any write failed (e.g. a full buffer).
    pub fn finish(mut self) -> fmt::Result {
        self.put(|o| o.write_char('}'));
        self.err
    }
}

macro_rules! integer_to_json {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut dyn Write, _: usize) -> fmt::Result {
                write!(out, "{self}")
            }
        }
    )*};
}
integer_to_json!(u8, u16, u32, u64, usize, i32, i64);

impl ToJson for bool {
    fn write_json(&self, out: &mut dyn Write, _: usize) -> fmt::Result {
        out.write_str(if *self { "true" } else { "false" })
    }
}

/// A float with `decimals` digits after the point; NaN and infinities (not
/// representable in JSON) become `null`.
impl ToJson for f64 {
    fn write_json(&self, out: &mut dyn Write, decimals: usize) -> fmt::Result {
        if self.is_finite() {
            write!(out, "{self:.decimals$}")
        } else {
            out.write_str("null")
        }
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut dyn Write, _: usize) -> fmt::Result {
        write_escaped(out, self)
    }
}

impl ToJson for Cow<'_, str> {
    fn write_json(&self, out: &mut dyn Write, d: usize) -> fmt::Result {
        self.as_ref().write_json(out, d)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut dyn Write, decimals: usize) -> fmt::Result {
        out.write_char('[')?;
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.write_char(',')?;
            }
            v.write_json(out, decimals)?;
        }
        out.write_char(']')
    }
}

impl<T: ToJson + Clone> ToJson for Cow<'_, [T]> {
    fn write_json(&self, out: &mut dyn Write, d: usize) -> fmt::Result {
        self.as_ref().write_json(out, d)
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut dyn Write, d: usize) -> fmt::Result {
        match self {
            Some(v) => v.write_json(out, d),
            None => out.write_str("null"),
        }
    }

    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

/// Write `s` as a JSON string literal.
pub fn write_escaped(o: &mut dyn Write, s: &str) -> fmt::Result {
    o.write_char('"')?;
    Escaper(o).write_str(s)?;
    o.write_char('"')
}

/// Escapes what passes through it (quotes, backslashes, control characters).
struct Escaper<'a>(&'a mut dyn Write);

impl Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                _ => None,
            };
            if esc.is_some() || (c as u32) < 0x20 || c == '\u{7f}' {
                self.0.write_str(&s[start..i])?;
                match esc {
                    Some(e) => self.0.write_str(e)?,
                    None => write!(self.0, "\\u{:04x}", c as u32)?,
                }
                start = i + c.len_utf8();
            }
        }
        self.0.write_str(&s[start..])
    }
}

/// A fixed-capacity text buffer; writes past the end fail (and are flagged).
pub struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    pub overflowed: bool,
}

impl<const N: usize> FixedBuf<N> {
    pub const fn new() -> Self {
        FixedBuf { buf: [0; N], len: 0, overflowed: false }
    }

    /// What was written (whole `&str`s only, so always valid UTF-8).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.overflowed || self.len + s.len() > N {
            self.overflowed = true;
            return Err(fmt::Error);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// Formats into a fixed buffer and keeps what fits, cut at a character
/// boundary and marked with `...` (for messages whose length the writer
/// does not control, such as a panic's).
pub struct Truncating<const N: usize> {
    buf: FixedBuf<N>,
    cut: bool,
}

impl<const N: usize> Truncating<N> {
    pub fn format(args: fmt::Arguments) -> Self {
        let mut t = Truncating { buf: FixedBuf::new(), cut: false };
        let _ = t.write_fmt(args);
        t
    }

    pub fn as_str(&self) -> &str {
        self.buf.as_str()
    }
}

impl<const N: usize> Write for Truncating<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        const MARK: &str = "...";
        let room = N.saturating_sub(self.buf.len + MARK.len());
        if s.len() <= room {
            return self.buf.write_str(s);
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.cut = true;
        self.buf.write_str(&s[..end])?;
        self.buf.write_str(MARK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    struct Nested;
    impl ToJson for Nested {
        fn write_json(&self, out: &mut dyn Write, _: usize) -> fmt::Result {
            let mut o = JsonObject::new(out);
            o.field("min", &1u64, 0).field("p99", &9u64, 0);
            o.finish()
        }
    }

    fn object(fill: impl FnOnce(&mut JsonObject)) -> String {
        let mut s = String::new();
        let mut o = JsonObject::new(&mut s);
        fill(&mut o);
        o.finish().unwrap();
        s
    }

    #[test]
    fn writes_fields_and_nesting() {
        let s = object(|o| {
            o.field("cpus_found", &4u64, 0).field("apic", "x2apic", 0).field("tsc_mhz", &2999.9376f64, 1).field("ok", &true, 0).field("d", &-3i64, 0);
            o.field("wait_ns", &Nested, 0);
            o.field("ids", &[0u64, 1, 2][..], 0).field("none", &None::<u64>, 0).field("some", &Some(5u32), 0);
            o.field("cpus", &[Nested, Nested][..], 0);
        });
        assert_eq!(
            s,
            r#"{"cpus_found":4,"apic":"x2apic","tsc_mhz":2999.9,"ok":true,"d":-3,"wait_ns":{"min":1,"p99":9},"ids":[0,1,2],"some":5,"cpus":[{"min":1,"p99":9},{"min":1,"p99":9}]}"#
        );
    }

    #[test]
    fn escapes_strings() {
        let s = object(|o| {
            o.field("msg", "a \"quoted\" \\ path\nline\ttab\u{1}\u{7f} é ✓", 0);
            o.field("cow", &Cow::Borrowed("1\"\n"), 0);
        });
        assert_eq!(s, r#"{"msg":"a \"quoted\" \\ path\nline\ttab\u0001\u007f é ✓","cow":"1\"\n"}"#);
        // Keys are escaped too.
        assert_eq!(object(|o| { o.field("a\"b", &1u64, 0); }), r#"{"a\"b":1}"#);
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(object(|o| { o.field("x", &f64::NAN, 2).field("y", &f64::INFINITY, 0); }), r#"{"x":null,"y":null}"#);
    }

    #[test]
    fn fixed_buffer_reports_overflow() {
        let mut b = FixedBuf::<16>::new();
        let mut o = JsonObject::new(&mut b);
        o.field("message", "too long for sixteen bytes", 0);
        assert!(o.finish().is_err());
        assert!(b.overflowed);
        let mut b = FixedBuf::<16>::new();
        let mut o = JsonObject::new(&mut b);
        o.field("a", &1u64, 0);
        o.finish().unwrap();
        assert_eq!(b.as_str(), r#"{"a":1}"#);
    }

    #[test]
    fn truncating_keeps_what_fits_at_a_char_boundary() {
        assert_eq!(Truncating::<16>::format(format_args!("{}", "short")).as_str(), "short");
        assert_eq!(Truncating::<16>::format(format_args!("{}{}", "0123456789", "abcdef")).as_str(), "0123456789abc...");
        // é is two bytes: the cut never splits it.
        assert_eq!(Truncating::<8>::format(format_args!("abcdéfgh")).as_str(), "abcd...");
    }
}
