//! The kernel command line: whitespace-separated `key=value` words (a bare
//! `key` means `key=`), checked against one typed table of keys,
//! [`keys::KEYS`]. Parsing checks every key *and* every value against its
//! type, so a bad value stops the boot before anything runs; an unknown key
//! or a key given twice is an error too, whose message lists the valid keys.
//!
//! A key is a [`Key<K>`]: its [`KeySpec`] (name, [`Type`] with the default,
//! help, the `cargo axiom run` flag) and its kind `K` ([`Int`], [`Size`],
//! [`Float`], [`Flag`], [`Choice`], [`Text`], [`Location`], [`IntOrMax`], and
//! `Opt...` for the ones without a default), which fixes the Rust type
//! [`Cmdline::get`] returns. The host writes the
//! command line from the same table ([`KeySpec::check`],
//! [`PercentEncoded`]).

pub mod keys;
mod values;

use core::fmt;

pub use values::{parse_size, parse_u64, percent_decode, PercentEncoded, Size as SizeText, BAD_ESCAPE, TOO_LONG};

/// Which part of the kernel reads a key (the README lists them by group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The boot itself: memory, CPUs, barriers.
    Boot,
    /// The diagnostic modes, `selftest=NAME`.
    SelfTest,
    /// The inference mode.
    Inference,
}

/// A float range: `min` (open or closed) to `max` (closed; infinite for none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatRange {
    pub min: f32,
    pub min_open: bool,
    pub max: f32,
}

impl FloatRange {
    fn contains(&self, x: f32) -> bool {
        let above = if self.min_open { x > self.min } else { x >= self.min };
        x.is_finite() && above && x <= self.max
    }
}

/// What a key's value is, with the default applied when the key is absent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Type {
    /// An unsigned integer, decimal or `0x` hex, in `min..=max`.
    Int { min: u64, max: u64, default: Option<u64> },
    /// An unsigned integer in `min..=max`, or the word `max` (the default).
    IntOrMax { min: u64, max: u64 },
    /// A byte size: an integer with an optional K, M or G suffix (1024s).
    Size { default: Option<u64> },
    /// A finite decimal number in `range`.
    Float { range: FloatRange, default: f32 },
    /// On or off: `1`, `on` or the bare key; `0` or `off`.
    Flag { default: bool },
    /// One of `choices`.
    Choice { choices: &'static [&'static str], default: Option<&'static str> },
    /// Free text, percent-encoded, UTF-8 once decoded, at most `max_bytes`.
    Text { max_bytes: usize },
    /// Where the model image is: `ns:N` and/or `offset:BYTES`, comma-separated.
    Location,
}

/// Longest decoded text value (the whole command line is at most 1 KiB).
pub const MAX_TEXT: usize = 1024;

impl Type {
    /// Whether `raw` is a valid value; `Err(Some(why))` for a reason beyond
    /// "not {expected}".
    fn check(&self, raw: &str) -> Result<(), Option<&'static str>> {
        let ok = match *self {
            Type::Int { min, max, .. } => parse_u64(raw).is_some_and(|v| (min..=max).contains(&v)),
            Type::IntOrMax { min, max } => raw == "max" || parse_u64(raw).is_some_and(|v| (min..=max).contains(&v)),
            Type::Size { .. } => parse_size(raw).is_some(),
            Type::Float { range, .. } => raw.parse::<f32>().is_ok_and(|x| range.contains(x)),
            Type::Flag { .. } => flag_value(raw).is_some(),
            Type::Choice { choices, .. } => choices.contains(&raw),
            Type::Text { max_bytes } => {
                let mut buf = [0u8; MAX_TEXT];
                let n = percent_decode(raw, &mut buf[..max_bytes.min(MAX_TEXT)]).map_err(Some)?;
                core::str::from_utf8(&buf[..n]).map_err(|_| Some("not valid UTF-8 after %-decoding"))?;
                true
            }
            Type::Location => ModelLocation::parse(raw).is_some(),
        };
        if ok {
            Ok(())
        } else {
            Err(None)
        }
    }

    /// The values this type accepts, for error messages: "an integer from
    /// 16 to 131072", "layer, token or off".
    pub fn expected(&self) -> Expected<'_> {
        Expected(self)
    }

    /// A placeholder for the value in docs and help (`N`, `SIZE`, `on|off`).
    pub fn placeholder(&self) -> Placeholder<'_> {
        Placeholder(self)
    }

    /// The default as the kernel would read it on the command line, if the
    /// type has one (`32`, `64M`, `token`, `1`).
    pub fn default_text(&self) -> Option<DefaultText> {
        match *self {
            Type::Int { default, .. } => default.map(DefaultText::Int),
            Type::IntOrMax { .. } => Some(DefaultText::Word("max")),
            Type::Size { default } => default.map(DefaultText::Size),
            Type::Float { default, .. } => Some(DefaultText::Float(default)),
            Type::Flag { default } => Some(DefaultText::Word(if default { "1" } else { "0" })),
            Type::Choice { default, .. } => default.map(DefaultText::Word),
            Type::Text { .. } | Type::Location => None,
        }
    }
}

/// A type's default value, displayed as on the command line.
#[derive(Clone, Copy, Debug)]
pub enum DefaultText {
    Int(u64),
    Size(u64),
    Float(f32),
    Word(&'static str),
}

impl fmt::Display for DefaultText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DefaultText::Int(v) => write!(f, "{v}"),
            DefaultText::Size(v) => write!(f, "{}", SizeText(v)),
            DefaultText::Float(v) => write!(f, "{v}"),
            DefaultText::Word(w) => f.write_str(w),
        }
    }
}

/// See [`Type::expected`].
pub struct Expected<'t>(&'t Type);

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Type::Int { min: 0, max: u64::MAX, .. } => f.write_str("an unsigned integer"),
            Type::Int { min, max: u64::MAX, .. } => write!(f, "an integer >= {min}"),
            Type::Int { min, max, .. } => write!(f, "an integer from {min} to {max}"),
            Type::IntOrMax { min, max } => write!(f, "an integer from {min} to {max} or max"),
            Type::Size { .. } => f.write_str("a size like 512M or 2G"),
            Type::Float { range, .. } => {
                let open = if range.min_open { "(" } else { "[" };
                match (range.min, range.max) {
                    (min, f32::INFINITY) => write!(f, "a number {} {min}", if range.min_open { ">" } else { ">=" }),
                    (min, max) => write!(f, "a number in {open}{min}, {max}]"),
                }
            }
            Type::Flag { .. } => f.write_str("1 or 0"),
            Type::Choice { choices, .. } => write_alternatives(f, choices, ", ", " or "),
            Type::Text { max_bytes } => write!(f, "percent-encoded UTF-8 text of at most {max_bytes} bytes"),
            Type::Location => f.write_str("part:NAME, ns:N and/or offset:BYTES (e.g. model=part:axiom-model or model=ns:1,offset:1M)"),
        }
    }
}

/// See [`Type::placeholder`].
pub struct Placeholder<'t>(&'t Type);

impl fmt::Display for Placeholder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Type::Int { .. } => f.write_str("N"),
            Type::IntOrMax { .. } => f.write_str("N|max"),
            Type::Size { .. } => f.write_str("SIZE"),
            Type::Float { .. } => f.write_str("X"),
            Type::Flag { .. } => f.write_str("1|0"),
            Type::Choice { choices, .. } => write_alternatives(f, choices, "|", "|"),
            Type::Text { .. } => f.write_str("TEXT"),
            Type::Location => f.write_str("part:NAME|ns:N,offset:BYTES"),
        }
    }
}

fn write_alternatives(f: &mut fmt::Formatter<'_>, words: &[&str], sep: &str, last: &str) -> fmt::Result {
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            f.write_str(if i + 1 == words.len() { last } else { sep })?;
        }
        f.write_str(w)?;
    }
    Ok(())
}

fn flag_value(raw: &str) -> Option<bool> {
    match raw {
        "" | "1" | "on" => Some(true),
        "0" | "off" => Some(false),
        _ => None,
    }
}

/// One key of the table, untyped (what lists, messages and the host use).
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub group: Group,
    pub ty: Type,
    /// What the key does (shown when a key is wrong, in `--help` and the README).
    pub help: &'static str,
    /// What applies when the key is absent and the type has no default
    /// value ("on with 2 or more CPUs"), for the docs.
    pub default_note: Option<&'static str>,
    /// The `cargo axiom run --FLAG` that writes this key (`None`: only
    /// through `--cmdline`).
    pub flag: Option<&'static str>,
}

impl PartialEq for KeySpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl KeySpec {
    /// Whether `raw` is a valid value of this key, as the kernel checks it.
    pub fn check<'a>(&'static self, raw: &'a str) -> Result<(), CmdlineError<'a>> {
        self.ty.check(raw).map_err(|reason| CmdlineError::BadValue { key: self, value: raw, reason })
    }

    /// What the key means when absent: the type's default or the note.
    pub fn default_description(&self) -> Option<DefaultDescription> {
        match (self.ty.default_text(), self.default_note) {
            (_, Some(note)) => Some(DefaultDescription::Note(note)),
            (Some(value), None) => Some(DefaultDescription::Value(value)),
            (None, None) => None,
        }
    }
}

/// See [`KeySpec::default_description`].
#[derive(Clone, Copy, Debug)]
pub enum DefaultDescription {
    Value(DefaultText),
    Note(&'static str),
}

impl fmt::Display for DefaultDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefaultDescription::Value(v) => write!(f, "{v}"),
            DefaultDescription::Note(n) => f.write_str(n),
        }
    }
}

/// A key of kind `K` (one of the kind markers below): its [`KeySpec`] and
/// its default as the Rust type [`Cmdline::get`] reads the key as. Made only
/// by the constructors of its kind, so the spec's [`Type`] always matches.
#[derive(Debug)]
pub struct Key<K: Kind> {
    pub spec: KeySpec,
    default: K::Default,
}

/// How a kind reads a value already checked against its type. A kind with
/// a default reads as a plain value; one without reads as an `Option`.
pub trait Kind {
    type Default: Copy + fmt::Debug;
    type Value<'a>;
    /// The value of `raw` (given, already checked), else `default`.
    fn read(raw: Option<&str>, default: Self::Default) -> Self::Value<'_>;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident: default $default:ty, value<$lt:lifetime> $value:ty = |$raw:ident, $d:ident| $read:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $kind {}
        impl Kind for $kind {
            type Default = $default;
            type Value<$lt> = $value;
            #[allow(unused_variables)]
            fn read<$lt>($raw: Option<&$lt str>, $d: $default) -> $value {
                $read
            }
        }
    )*};
}

kinds! {
    /// [`Type::Int`] with a default, as `u64`.
    Int: default u64, value<'a> u64 = |raw, d| raw.and_then(parse_u64).unwrap_or(d);
    /// [`Type::Int`] without a default, as `Option<u64>`.
    OptInt: default (), value<'a> Option<u64> = |raw, d| raw.and_then(parse_u64);
    /// [`Type::IntOrMax`] as [`OrMax`] (absent: `Max`).
    IntOrMax: default (), value<'a> OrMax = |raw, d| raw.and_then(parse_u64).map_or(OrMax::Max, OrMax::Value);
    /// [`Type::Size`] with a default, as bytes.
    Size: default u64, value<'a> u64 = |raw, d| raw.and_then(parse_size).unwrap_or(d);
    /// [`Type::Size`] without a default, as `Option<u64>` bytes.
    OptSize: default (), value<'a> Option<u64> = |raw, d| raw.and_then(parse_size);
    /// [`Type::Float`] as `f32`.
    Float: default f32, value<'a> f32 = |raw, d| raw.and_then(|r| r.parse().ok()).unwrap_or(d);
    /// [`Type::Flag`] as `bool`.
    Flag: default bool, value<'a> bool = |raw, d| raw.and_then(flag_value).unwrap_or(d);
    /// [`Type::Choice`] with a default, as the chosen word.
    Choice: default &'static str, value<'a> &'a str = |raw, d| raw.unwrap_or(d);
    /// [`Type::Choice`] without a default, as `Option` of the chosen word.
    OptChoice: default (), value<'a> Option<&'a str> = |raw, d| raw;
    /// [`Type::Text`] as `Option<`[`Encoded`]`>` (decoded into the caller's buffer).
    Text: default (), value<'a> Option<Encoded<'a>> = |raw, d| raw.map(Encoded);
    /// [`Type::Location`] as [`ModelLocation`] (absent: [`ModelLocation::DEFAULT`], a partition search).
    Location: default (), value<'a> ModelLocation = |raw, d| raw.and_then(ModelLocation::parse).unwrap_or(ModelLocation::DEFAULT);
}

/// An [`IntOrMax`] value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrMax {
    Max,
    Value(u64),
}

/// A percent-encoded [`Text`] value, valid (checked when parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded<'a>(pub &'a str);

impl<'a> Encoded<'a> {
    /// The text, decoded into `buf` ([`MAX_TEXT`] bytes always suffice).
    pub fn decode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, &'static str> {
        let n = percent_decode(self.0, buf)?;
        core::str::from_utf8(&buf[..n]).map_err(|_| "not valid UTF-8 after %-decoding")
    }
}

/// Where the model image is (`model=part:NAME`, `model=ns:N,offset:BYTES`,
/// or absent: found by its GPT partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLocation {
    /// `None`: any namespace when searching for a partition, else the first
    /// active namespace.
    pub nsid: Option<u32>,
    /// Byte offset of the image inside the namespace (a multiple of the
    /// block size), when no partition is looked for.
    pub offset: u64,
    pub part: PartSelect,
}

/// Which GPT partition holds the model image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartSelect {
    /// `model=` not given: the partition named `axiom-model` or of AXIOM's
    /// type GUID on any namespace; on a disk without GPT, the image at the
    /// start of the first namespace.
    Search,
    /// `model=part:NAME`: the partition of that name.
    Named(PartName),
    /// `model=ns:N` and/or `offset:BYTES`: no partition table is read.
    Raw,
}

/// A partition name from the command line (at most 36 characters of
/// `A-Z a-z 0-9 . _ -`, the length a GPT entry holds).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PartName {
    bytes: [u8; crate::gpt::NAME_UNITS],
    len: u8,
}

impl PartName {
    pub fn new(name: &str) -> Option<PartName> {
        let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if name.is_empty() || name.len() > crate::gpt::NAME_UNITS || !name.bytes().all(ok) {
            return None;
        }
        let mut bytes = [0u8; crate::gpt::NAME_UNITS];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(PartName { bytes, len: name.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for PartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl ModelLocation {
    pub const DEFAULT: ModelLocation = ModelLocation { nsid: None, offset: 0, part: PartSelect::Search };

    fn parse(v: &str) -> Option<ModelLocation> {
        let mut loc = ModelLocation { part: PartSelect::Raw, ..ModelLocation::DEFAULT };
        let mut named = None;
        let mut offset = false;
        for part in v.split(',') {
            if let Some(n) = part.strip_prefix("ns:") {
                loc.nsid = Some(parse_u64(n).and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0)?);
            } else if let Some(o) = part.strip_prefix("offset:") {
                loc.offset = parse_size(o)?;
                offset = true;
            } else if let Some(name) = part.strip_prefix("part:") {
                named = Some(PartName::new(name)?);
            } else {
                return None;
            }
        }
        if let Some(name) = named {
            if offset {
                return None; // the partition says where the image starts
            }
            loc.part = PartSelect::Named(name);
        }
        Some(loc)
    }
}

/// The fields every key has, for the constructors below.
#[derive(Clone, Copy, Debug)]
pub struct About {
    pub name: &'static str,
    pub group: Group,
    pub help: &'static str,
    pub default_note: Option<&'static str>,
    pub flag: Option<&'static str>,
}

const fn key<K: Kind>(a: About, ty: Type, default: K::Default) -> Key<K> {
    Key { spec: KeySpec { name: a.name, group: a.group, ty, help: a.help, default_note: a.default_note, flag: a.flag }, default }
}

impl Key<Int> {
    pub const fn new(a: About, min: u64, max: u64, default: u64) -> Self {
        key(a, Type::Int { min, max, default: Some(default) }, default)
    }
}
impl Key<OptInt> {
    pub const fn new(a: About, min: u64, max: u64) -> Self {
        key(a, Type::Int { min, max, default: None }, ())
    }
}
impl Key<IntOrMax> {
    pub const fn new(a: About, min: u64, max: u64) -> Self {
        key(a, Type::IntOrMax { min, max }, ())
    }
}
impl Key<Size> {
    pub const fn new(a: About, default: u64) -> Self {
        key(a, Type::Size { default: Some(default) }, default)
    }
}
impl Key<OptSize> {
    pub const fn new(a: About) -> Self {
        key(a, Type::Size { default: None }, ())
    }
}
impl Key<Float> {
    pub const fn new(a: About, range: FloatRange, default: f32) -> Self {
        key(a, Type::Float { range, default }, default)
    }
}
impl Key<Flag> {
    pub const fn new(a: About, default: bool) -> Self {
        key(a, Type::Flag { default }, default)
    }
}
impl Key<Choice> {
    pub const fn new(a: About, choices: &'static [&'static str], default: &'static str) -> Self {
        key(a, Type::Choice { choices, default: Some(default) }, default)
    }
}
impl Key<OptChoice> {
    pub const fn new(a: About, choices: &'static [&'static str]) -> Self {
        key(a, Type::Choice { choices, default: None }, ())
    }
}
impl Key<Text> {
    pub const fn new(a: About, max_bytes: usize) -> Self {
        key(a, Type::Text { max_bytes }, ())
    }
}
impl Key<Location> {
    pub const fn new(a: About) -> Self {
        key(a, Type::Location, ())
    }
}

/// Most words kept.
pub const MAX_WORDS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CmdlineError<'a> {
    UnknownKey { key: &'a str, valid: &'static [&'static KeySpec] },
    Duplicate { key: &'a str },
    TooManyWords,
    /// `value` is not valid for `key`; `reason` says why when it is more
    /// than "not {expected}".
    BadValue { key: &'static KeySpec, value: &'a str, reason: Option<&'static str> },
}

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
            // Text can be long: the reason, not the value.
            CmdlineError::BadValue { key, reason: Some(why), .. } => write!(f, "command-line key '{}': {why}", key.name),
            CmdlineError::BadValue { key, value, reason: None } => {
                write!(f, "command-line key '{}': value '{value}' is not {}", key.name, key.ty.expected())
            }
        }
    }
}

/// A parsed command line, every key and value checked, borrowing the text.
#[derive(Clone, Debug)]
pub struct Cmdline<'a> {
    words: [(Option<&'static KeySpec>, &'a str); MAX_WORDS],
    count: usize,
}

impl<'a> Cmdline<'a> {
    /// Parse `text`, checking every key against `keys` and every value
    /// against its key's type. A leading word without `=` that looks like a
    /// file path (has a `/` or ends in `.elf` or `axiom-kernel`) is the
    /// kernel image, which QEMU's `-kernel` and GRUB put first; it is skipped.
    pub fn parse(text: &'a str, keys: &'static [&'static KeySpec]) -> Result<Cmdline<'a>, CmdlineError<'a>> {
        let mut out = Cmdline { words: [(None, ""); MAX_WORDS], count: 0 };
        for (i, word) in text.split_ascii_whitespace().enumerate() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let spec = keys.iter().copied().find(|k| k.name == key);
            let Some(spec) = spec else {
                if i == 0 && is_image_path(word) {
                    continue;
                }
                return Err(CmdlineError::UnknownKey { key, valid: keys });
            };
            if out.spec_index(key).is_some() {
                return Err(CmdlineError::Duplicate { key });
            }
            if out.count == MAX_WORDS {
                return Err(CmdlineError::TooManyWords);
            }
            spec.check(value)?;
            out.words[out.count] = (Some(spec), value);
            out.count += 1;
        }
        Ok(out)
    }

    fn spec_index(&self, name: &str) -> Option<usize> {
        self.words[..self.count].iter().position(|(k, _)| k.is_some_and(|k| k.name == name))
    }

    /// The text given for `key`, if given (`""` for a bare key).
    pub fn raw<K: Kind>(&self, key: &Key<K>) -> Option<&'a str> {
        self.spec_index(key.spec.name).map(|i| self.words[i].1)
    }

    /// Whether the command line has `key`.
    pub fn has<K: Kind>(&self, key: &Key<K>) -> bool {
        self.raw(key).is_some()
    }

    /// The value of `key`: as given, else the table's default (an
    /// `Option` for the kinds without one).
    pub fn get<K: Kind>(&self, key: &Key<K>) -> K::Value<'a> {
        K::read(self.raw(key), key.default)
    }

    /// `(key, value)` pairs in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'a str)> + '_ {
        self.words[..self.count].iter().filter_map(|(k, v)| k.map(|k| (k.name, *v)))
    }
}

fn is_image_path(word: &str) -> bool {
    !word.contains('=') && (word.contains('/') || word.ends_with(".elf") || word.ends_with("axiom-kernel"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const fn about(name: &'static str, help: &'static str) -> About {
        About { name, group: Group::Boot, help, default_note: None, flag: None }
    }
    static SELFTEST: Key<OptChoice> = Key::<OptChoice>::new(about("selftest", "diagnostic mode"), &["smp", "fault"]);
    static ROUNDS: Key<Int> = Key::<Int>::new(about("rounds", "barrier rounds"), 0, u64::MAX, 5);
    static HEAP: Key<Size> = Key::<Size>::new(about("heap", "heap size"), 64 << 20);
    static QUIET: Key<Flag> = Key::<Flag>::new(about("quiet", "fewer lines"), false);
    static CTX: Key<Int> = Key::<Int>::new(about("ctx", "context"), 16, 1 << 17, 512);
    static TEMP: Key<Float> = Key::<Float>::new(about("temp", "temperature"), FloatRange { min: 0.0, min_open: false, max: f32::INFINITY }, 0.0);
    static TOP_P: Key<Float> = Key::<Float>::new(about("top_p", "nucleus"), FloatRange { min: 0.0, min_open: true, max: 1.0 }, 1.0);
    static PROMPT: Key<Text> = Key::<Text>::new(about("prompt", "the prompt"), 16);
    static MODEL: Key<Location> = Key::<Location>::new(about("model", "where"));
    static QD: Key<IntOrMax> = Key::<IntOrMax>::new(about("qd", "depth"), 1, 1023);
    static KEYS: &[&KeySpec] =
        &[&SELFTEST.spec, &ROUNDS.spec, &HEAP.spec, &QUIET.spec, &CTX.spec, &TEMP.spec, &TOP_P.spec, &PROMPT.spec, &MODEL.spec, &QD.spec];

    #[test]
    fn parses_keys_and_skips_image_path() {
        let c = Cmdline::parse("/tmp/axiom-kernel selftest=smp rounds=0x10 heap=64M quiet", KEYS).unwrap();
        assert_eq!(c.get(&SELFTEST), Some("smp"));
        assert_eq!(c.get(&ROUNDS), 16);
        assert_eq!(c.get(&HEAP), 64 << 20);
        assert_eq!(c.raw(&QUIET), Some(""));
        assert!(c.get(&QUIET), "a bare flag is on");
        assert_eq!(c.iter().count(), 4);
        assert_eq!(Cmdline::parse("", KEYS).unwrap().iter().count(), 0);
        assert_eq!(Cmdline::parse("axiom-kernel rounds=1", KEYS).unwrap().iter().count(), 1);
        // A bare first word that is not a path is checked like any other.
        assert!(Cmdline::parse("bogus rounds=1", KEYS).is_err());
    }

    #[test]
    fn absent_keys_read_as_the_table_default() {
        let c = Cmdline::parse("", KEYS).unwrap();
        assert_eq!(c.get(&ROUNDS), 5);
        assert_eq!(c.get(&HEAP), 64 << 20);
        assert!(!c.get(&QUIET));
        assert_eq!(c.get(&SELFTEST), None, "no default");
        assert_eq!(c.get(&PROMPT), None);
        assert_eq!(c.get(&MODEL), ModelLocation::DEFAULT);
        assert_eq!(c.get(&QD), OrMax::Max);
        assert!(!c.has(&ROUNDS));
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
        let e = Cmdline::parse("rounds=ten", KEYS).unwrap_err();
        assert!(e.to_string().contains("'ten' is not an unsigned integer"), "{e}");
        assert!(Cmdline::parse("heap=12Q", KEYS).unwrap_err().to_string().contains("is not a size like 512M or 2G"));
        assert_eq!(Cmdline::parse("rounds=1 rounds=2", KEYS).unwrap_err(), CmdlineError::Duplicate { key: "rounds" });
        let e = Cmdline::parse("selftest=nope", KEYS).unwrap_err();
        assert_eq!(e.to_string(), "command-line key 'selftest': value 'nope' is not smp or fault");
        assert!(Cmdline::parse("quiet=maybe", KEYS).unwrap_err().to_string().ends_with("is not 1 or 0"));
        assert!(Cmdline::parse("ctx=8", KEYS).unwrap_err().to_string().ends_with("'8' is not an integer from 16 to 131072"));
        assert!(Cmdline::parse("temp=-1", KEYS).unwrap_err().to_string().ends_with("is not a number >= 0"));
        assert!(Cmdline::parse("temp=nan", KEYS).is_err(), "finite numbers only");
        assert!(Cmdline::parse("top_p=0", KEYS).unwrap_err().to_string().ends_with("'0' is not a number in (0, 1]"));
        assert!(Cmdline::parse("top_p=1", KEYS).is_ok());
        assert!(Cmdline::parse("qd=0", KEYS).unwrap_err().to_string().ends_with("is not an integer from 1 to 1023 or max"));
        assert_eq!(Cmdline::parse("qd=7", KEYS).unwrap().get(&QD), OrMax::Value(7));
    }

    #[test]
    fn text_values_are_checked_when_parsed_and_decoded_on_demand() {
        let c = Cmdline::parse("prompt=caf%C3%A9%20ok", KEYS).unwrap();
        let mut buf = [0u8; MAX_TEXT];
        assert_eq!(c.get(&PROMPT).unwrap().decode(&mut buf), Ok("café ok"));
        let bad = |text: &str| Cmdline::parse(text, KEYS).unwrap_err().to_string();
        assert_eq!(bad("prompt=50%"), "command-line key 'prompt': a '%' must be followed by two hex digits");
        assert_eq!(bad("prompt=%FF"), "command-line key 'prompt': not valid UTF-8 after %-decoding");
        assert_eq!(bad("prompt=seventeen_bytes_x"), "command-line key 'prompt': the decoded value is too long");
    }

    #[test]
    fn model_locations() {
        fn at(v: &str) -> Result<ModelLocation, std::string::String> {
            Cmdline::parse(v, KEYS).map(|c| c.get(&MODEL)).map_err(|e| e.to_string())
        }
        let raw = |nsid, offset| ModelLocation { nsid, offset, part: PartSelect::Raw };
        assert_eq!(at("model=ns:2"), Ok(raw(Some(2), 0)));
        assert_eq!(at("model=ns:1,offset:1M"), Ok(raw(Some(1), 1 << 20)));
        assert_eq!(at("model=offset:4096"), Ok(raw(None, 4096)));
        assert_eq!(at(""), Ok(ModelLocation::DEFAULT));
        assert_eq!(ModelLocation::DEFAULT.part, PartSelect::Search);
        let named = |nsid, name| ModelLocation { nsid, offset: 0, part: PartSelect::Named(PartName::new(name).unwrap()) };
        assert_eq!(at("model=part:my-model_2.v1"), Ok(named(None, "my-model_2.v1")));
        assert_eq!(at("model=ns:2,part:m"), Ok(named(Some(2), "m")));
        let long = std::format!("model=part:{}", "x".repeat(37));
        for bad in ["model=ns:0", "model=disk:1", "model=ns:x", "model=ns:1,offset:1Q", "model=part:", "model=part:a/b", "model=part:m,offset:1M", &long] {
            let e = at(bad).unwrap_err();
            assert!(e.ends_with("is not part:NAME, ns:N and/or offset:BYTES (e.g. model=part:axiom-model or model=ns:1,offset:1M)"), "{bad}: {e}");
        }
    }

    #[test]
    fn expected_placeholders_and_defaults() {
        assert_eq!(SELFTEST.spec.ty.placeholder().to_string(), "smp|fault");
        assert_eq!(HEAP.spec.default_description().unwrap().to_string(), "64M");
        assert_eq!(TOP_P.spec.default_description().unwrap().to_string(), "1");
        assert_eq!(QUIET.spec.default_description().unwrap().to_string(), "0");
        assert!(PROMPT.spec.default_description().is_none());
        assert_eq!(ROUNDS.spec.check("7"), Ok(()));
        assert!(ROUNDS.spec.check("x").is_err());
    }
}
