//! What the AXIOM kernel and the host tools must agree on, in one place:
//!
//! - [`cmdline`]: the kernel command line. One typed table of keys
//!   ([`cmdline::keys::KEYS`]: name, type, default, help, the `cargo axiom
//!   run` flag that sets it) from which the kernel parses and validates its
//!   command line, the unknown-key message is written, the host builds its
//!   flags and writes the command line, and the README's key list is made.
//! - [`telemetry`]: the serial protocol, `@name {json}` lines. Every event is
//!   a struct here; the kernel writes it with the no-heap JSON writer of
//!   [`json`] into a fixed buffer, the host reads it with serde (feature
//!   `serde`). A field renamed here is a compile error in both.
//!
//! `no_std` (with `alloc` for the owned strings and lists the host reads
//! into); no dependency but the optional serde.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod cmdline;
pub mod gpt;
pub mod json;
pub mod telemetry;
