//! The telemetry protocol: every serial line that starts with `@` is one
//! event, `@name {json}`, a JSON object on one line. Each event is a struct
//! in [`events`]; its name and fields are declared once, with
//! [`schema!`](crate::schema), which gives both sides what they need:
//!
//! - the kernel builds the struct (strings and lists borrowed, nothing
//!   allocated) and writes it with [`write_event`] into its fixed buffer;
//! - the host deserializes the same struct with serde (feature `serde`),
//!   ignoring fields it does not know (a newer kernel may add some); a
//!   missing required field is an error, not a silent gap. Optional fields
//!   are `Option`s, left out of the line when `None`.
//!
//! Renaming a field or an event here breaks the build of both the kernel's
//! writer and the host's readers.

pub mod events;

use alloc::borrow::Cow;
use core::fmt::{self, Write};

use crate::json::{JsonObject, ToJson};

/// Longest event line the kernel writes, in bytes.
pub const MAX_EVENT: usize = 4096;

/// Precision of floating-point fields unless the schema says otherwise.
pub const DEFAULT_DECIMALS: usize = 3;

/// Text in an event: borrowed when the kernel writes, owned when the host reads.
pub type Str<'a> = Cow<'a, str>;
/// A list in an event: borrowed when the kernel writes, owned when the host reads.
pub type List<'a, T> = Cow<'a, [T]>;

/// One kind of event: its `@name` and how its fields are written.
pub trait Event {
    /// The name after `@`.
    const NAME: &'static str;
    /// Writes the fields into an open object.
    fn write_fields(&self, o: &mut JsonObject);
}

/// Writes `@NAME {json}` (without the line break).
pub fn write_event<E: Event>(event: &E, out: &mut dyn Write) -> fmt::Result {
    write!(out, "@{} ", E::NAME)?;
    let mut o = JsonObject::new(out);
    event.write_fields(&mut o);
    o.finish()
}

/// Declares telemetry structs: each becomes a `pub struct` (with serde's
/// `Deserialize` under the `serde` feature) that writes itself as a JSON
/// object. `struct Name<'a> = "event" { ... }` is an event (`@event`);
/// without `= "..."` it is an object nested in events. An optional
/// `decimals { field: n, ... }` after the fields sets float precision
/// (default [`DEFAULT_DECIMALS`]); a name there that is not a field is a
/// compile error.
#[macro_export]
macro_rules! schema {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident $(<$lt:lifetime>)? $(= $event:literal)? {
            $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)*
        }
        $(decimals { $($dfield:ident: $dn:literal),* $(,)? })?
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Deserialize))]
        pub struct $name $(<$lt>)? {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            #[allow(unused_variables)]
            fn decimals(field: &str) -> usize {
                $($(if field == stringify!($dfield) { return $dn; })*)?
                $crate::telemetry::DEFAULT_DECIMALS
            }

            /// Writes every field into an open object.
            pub fn write_fields(&self, o: &mut $crate::json::JsonObject) {
                $(o.field(stringify!($field), &self.$field, Self::decimals(stringify!($field)));)*
            }
        }

        // Every name in `decimals` is a field.
        $(const _: fn(&$name) = |s| { $(let _ = &s.$dfield;)* };)?

        impl $(<$lt>)? $crate::json::ToJson for $name $(<$lt>)? {
            fn write_json(&self, out: &mut dyn core::fmt::Write, _: usize) -> core::fmt::Result {
                let mut o = $crate::json::JsonObject::new(out);
                self.write_fields(&mut o);
                o.finish()
            }
        }

        $crate::schema!(@event $name [$($lt)?] $($event)?);
    )*

        /// Checks that `input()` holds an event called `name` as the schema
        /// declares it (any of the events of that name; unknown fields are
        /// allowed). `None` when the schema has no event of that name.
        #[cfg(feature = "serde")]
        pub fn check<'de, D: serde::Deserializer<'de>>(name: &str, input: impl Fn() -> D) -> Option<Result<(), D::Error>> {
            let mut refused = None;
            $($crate::schema!(@check $name name input refused $($event)?);)*
            refused.map(Err)
        }
    };
    (@event $name:ident [$($lt:lifetime)?] $event:literal) => {
        impl $(<$lt>)? $crate::telemetry::Event for $name $(<$lt>)? {
            const NAME: &'static str = $event;
            fn write_fields(&self, o: &mut $crate::json::JsonObject) {
                $name::write_fields(self, o)
            }
        }
    };
    (@event $name:ident [$($lt:lifetime)?]) => {};
    (@check $name:ident $n:ident $input:ident $refused:ident $event:literal) => {
        if $n == $event {
            match <$name as serde::Deserialize>::deserialize($input()) {
                Ok(_) => return Some(Ok(())),
                Err(e) => $refused = Some(e),
            }
        }
    };
    (@check $name:ident $n:ident $input:ident $refused:ident) => {};
}

/// An address or register value, written as `"0x..."` (hex is what people
/// read these in; JSON numbers lose precision past 2^53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub u64);

impl ToJson for Hex {
    fn write_json(&self, out: &mut dyn Write, _: usize) -> fmt::Result {
        write!(out, "\"{:#x}\"", self.0)
    }
}

/// A CRC32C, written as 8 hex digits (`"1a2b3c4d"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc32c(pub u32);

impl ToJson for Crc32c {
    fn write_json(&self, out: &mut dyn Write, _: usize) -> fmt::Result {
        write!(out, "\"{:08x}\"", self.0)
    }
}

#[cfg(feature = "serde")]
mod hex_serde {
    use super::{Crc32c, Hex};
    use alloc::string::String;
    use serde::de::{Deserialize, Deserializer, Error};

    impl<'de> Deserialize<'de> for Hex {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            let digits = s.strip_prefix("0x").ok_or_else(|| D::Error::custom("a hex value must start with 0x"))?;
            u64::from_str_radix(digits, 16).map(Hex).map_err(D::Error::custom)
        }
    }

    impl<'de> Deserialize<'de> for Crc32c {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            if s.len() != 8 {
                return Err(D::Error::custom("a CRC32C is 8 hex digits"));
            }
            u32::from_str_radix(&s, 16).map(Crc32c).map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests;
