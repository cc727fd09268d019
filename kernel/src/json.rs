//! A small JSON object writer for telemetry lines (`@name {json}`): correct
//! string escaping, no allocation, output to any `core::fmt::Write`.

use core::fmt::{self, Write};

/// Writes one JSON object (or array) field by field. Formatting errors are
/// remembered and reported by [`JsonObject::finish`].
pub struct JsonObject<'w> {
    out: &'w mut dyn Write,
    first: bool,
    err: fmt::Result,
    close: char,
}

impl<'w> JsonObject<'w> {
    /// Start an object: writes `{`.
    pub fn new(out: &'w mut dyn Write) -> Self {
        let err = out.write_char('{');
        JsonObject { out, first: true, err, close: '}' }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.put(|o| o.write_char(','));
        }
        self.first = false;
        self.put(|o| write_escaped(o, key));
        self.put(|o| o.write_char(':'));
    }

    fn separator(&mut self) {
        if !self.first {
            self.put(|o| o.write_char(','));
        }
        self.first = false;
    }

    fn put(&mut self, f: impl FnOnce(&mut dyn Write) -> fmt::Result) {
        if self.err.is_ok() {
            self.err = f(self.out);
        }
    }

    pub fn u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.key(key);
        self.put(|o| write!(o, "{v}"));
        self
    }

    pub fn i64(&mut self, key: &str, v: i64) -> &mut Self {
        self.key(key);
        self.put(|o| write!(o, "{v}"));
        self
    }

    /// A float with `decimals` digits after the point; NaN and infinities
    /// (not representable in JSON) become `null`.
    pub fn f64(&mut self, key: &str, v: f64, decimals: usize) -> &mut Self {
        self.key(key);
        self.put(|o| write_f64(o, v, decimals));
        self
    }

    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.key(key);
        self.put(|o| o.write_str(if v { "true" } else { "false" }));
        self
    }

    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.key(key);
        self.put(|o| write_escaped(o, v));
        self
    }

    /// A string produced by formatting (`format_args!`), escaped as it is written.
    pub fn fmt(&mut self, key: &str, args: fmt::Arguments) -> &mut Self {
        self.key(key);
        self.put(|o| {
            o.write_char('"')?;
            Escaper(o).write_fmt(args)?;
            o.write_char('"')
        });
        self
    }

    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.put(|o| o.write_str("null"));
        self
    }

    /// A nested object filled by `fill`.
    pub fn object(&mut self, key: &str, fill: impl FnOnce(&mut JsonObject)) -> &mut Self {
        self.key(key);
        if self.err.is_ok() {
            let mut inner = JsonObject::new(&mut *self.out);
            fill(&mut inner);
            self.err = inner.finish();
        }
        self
    }

    /// An array of unsigned integers.
    pub fn u64_array(&mut self, key: &str, values: &[u64]) -> &mut Self {
        self.key(key);
        self.put(|o| {
            o.write_char('[')?;
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    o.write_char(',')?;
                }
                write!(o, "{v}")?;
            }
            o.write_char(']')
        });
        self
    }

    /// An array whose elements `fill` writes through a [`JsonArray`].
    pub fn array(&mut self, key: &str, fill: impl FnOnce(&mut JsonArray)) -> &mut Self {
        self.key(key);
        if self.err.is_ok() {
            let err = self.out.write_char('[');
            let mut inner = JsonArray(JsonObject { out: &mut *self.out, first: true, err, close: ']' });
            fill(&mut inner);
            self.err = inner.0.finish();
        }
        self
    }

    /// Close the object; `Err` if any write failed (e.g. a full buffer).
    pub fn finish(mut self) -> fmt::Result {
        let close = self.close;
        self.put(|o| o.write_char(close));
        self.err
    }
}

/// Elements of a JSON array under construction.
pub struct JsonArray<'w>(JsonObject<'w>);

impl JsonArray<'_> {
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.separator();
        self.0.put(|o| write!(o, "{v}"));
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.0.separator();
        self.0.put(|o| write_escaped(o, v));
        self
    }

    pub fn object(&mut self, fill: impl FnOnce(&mut JsonObject)) -> &mut Self {
        self.0.separator();
        if self.0.err.is_ok() {
            let mut inner = JsonObject::new(&mut *self.0.out);
            fill(&mut inner);
            self.0.err = inner.finish();
        }
        self
    }
}

fn write_f64(o: &mut dyn Write, v: f64, decimals: usize) -> fmt::Result {
    if v.is_finite() {
        write!(o, "{v:.decimals$}")
    } else {
        o.write_str("null")
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

    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so the bytes are valid UTF-8.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

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
            o.u64("cpus_found", 4).str("apic", "x2apic").f64("tsc_mhz", 2999.9376, 1).bool("ok", true).i64("d", -3);
            o.object("wait_ns", |w| {
                w.u64("min", 1).u64("p99", 9);
            });
            o.u64_array("ids", &[0, 1, 2]).null("none");
            o.array("cpus", |a| {
                a.object(|c| {
                    c.u64("id", 0);
                })
                .u64(7)
                .str("x");
            });
        });
        assert_eq!(
            s,
            r#"{"cpus_found":4,"apic":"x2apic","tsc_mhz":2999.9,"ok":true,"d":-3,"wait_ns":{"min":1,"p99":9},"ids":[0,1,2],"none":null,"cpus":[{"id":0},7,"x"]}"#
        );
    }

    #[test]
    fn escapes_strings() {
        let s = object(|o| {
            o.str("msg", "a \"quoted\" \\ path\nline\ttab\u{1}\u{7f} é ✓");
            o.fmt("f", format_args!("{}\"{}", 1, "\n"));
        });
        assert_eq!(s, r#"{"msg":"a \"quoted\" \\ path\nline\ttab\u0001\u007f é ✓","f":"1\"\n"}"#);
        // Keys are escaped too.
        assert_eq!(object(|o| { o.u64("a\"b", 1); }), r#"{"a\"b":1}"#);
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(object(|o| { o.f64("x", f64::NAN, 2).f64("y", f64::INFINITY, 0); }), r#"{"x":null,"y":null}"#);
    }

    #[test]
    fn fixed_buffer_reports_overflow() {
        let mut b = FixedBuf::<16>::new();
        let mut o = JsonObject::new(&mut b);
        o.str("message", "too long for sixteen bytes");
        assert!(o.finish().is_err());
        assert!(b.overflowed);
        let mut b = FixedBuf::<16>::new();
        let mut o = JsonObject::new(&mut b);
        o.u64("a", 1);
        o.finish().unwrap();
        assert_eq!(b.as_str(), r#"{"a":1}"#);
    }
}
