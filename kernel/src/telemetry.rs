//! The machine-readable protocol on the serial line: every line starting
//! with `@` is one event, `@name {json}`, whose name and fields are the
//! structs of `axiom_proto::telemetry::events` (the host reads the same
//! structs). Events are built in a fixed buffer (no heap needed, usable from
//! fault handlers) and written as one line.
//!
//! ```text
//! @boot {"cpus_found":4,"cpus_online":4,"apic":"x2apic","tsc_mhz":2995.1,...}
//! @cpu {"id":1,"apic_id":1,"role":"compute"}
//! @error {"msg":"..."}
//! @done {"status":"ok"}
//! ```

use axiom_proto::json::{FixedBuf, Truncating};
use axiom_proto::telemetry::events::{Done, Error, Warning};
use axiom_proto::telemetry::{write_event, Event, MAX_EVENT};

pub use axiom_proto::telemetry::events;

/// Longest formatted message of `@error` and `@warning` (longer ones are
/// cut, marked with `...`).
pub const MAX_MSG: usize = 2048;

/// Emit `event` as `@name {json}`.
pub fn emit<E: Event>(event: &E) {
    let mut buf = FixedBuf::<MAX_EVENT>::new();
    if write_event(event, &mut buf).is_err() || buf.overflowed {
        let mut c = crate::console::lock();
        c.write_fmt(format_args!(
            "@error {{\"msg\":\"telemetry event '{}' exceeds {} bytes and was dropped\"}}\n",
            E::NAME.escape_default(),
            MAX_EVENT
        ));
        return;
    }
    let mut c = crate::console::lock();
    c.write_fmt(format_args!("{}\n", buf.as_str()));
}

/// A formatted message, cut to [`MAX_MSG`] bytes (no heap needed).
pub type Message = Truncating<MAX_MSG>;

/// `@error {"msg": ...}` with a formatted message (also on the screen).
pub fn error(msg: core::fmt::Arguments) {
    let msg = Message::format(msg);
    emit(&Error::msg(msg.as_str()));
    crate::screen::alert(format_args!("error: {}", msg.as_str()));
}

/// `@warning {"msg": ...}`: something is wrong but the run goes on (also
/// on the screen).
pub fn warning(msg: core::fmt::Arguments) {
    let msg = Message::format(msg);
    emit(&Warning::msg(msg.as_str()));
    crate::screen::alert(format_args!("warning: {}", msg.as_str()));
}

/// `@done {"status":"ok"}`: the last line of a successful run.
pub fn done_ok() {
    emit(&Done { status: "ok".into() });
}
