//! The machine-readable protocol on the serial line: every line starting
//! with `@` is one event, `@name {json}`. Events are built in a fixed buffer
//! (no heap needed, usable from fault handlers) and written as one line.
//!
//! ```text
//! @boot {"cpus_found":4,"cpus_online":4,"apic":"x2apic","tsc_mhz":2995.1,...}
//! @cpu {"id":1,"apic_id":1,"role":"compute"}
//! @error {"msg":"..."}
//! @done {"status":"ok"}
//! ```

use crate::json::{FixedBuf, JsonObject};

/// Longest event line, in bytes.
pub const MAX_EVENT: usize = 4096;

/// Emit `@name {json}`, the object filled by `fill`.
pub fn emit(name: &str, fill: impl FnOnce(&mut JsonObject)) {
    let mut buf = FixedBuf::<MAX_EVENT>::new();
    let mut obj = JsonObject::new(&mut buf);
    fill(&mut obj);
    if obj.finish().is_err() || buf.overflowed {
        let mut c = crate::console::lock();
        c.write_fmt(format_args!(
            "@error {{\"msg\":\"telemetry event '{}' exceeds {} bytes and was dropped\"}}\n",
            name.escape_default(),
            MAX_EVENT
        ));
        return;
    }
    let mut c = crate::console::lock();
    c.write_fmt(format_args!("@{} {}\n", name, buf.as_str()));
}

/// `@error {"msg": ...}` with a formatted message.
pub fn error(msg: core::fmt::Arguments) {
    emit("error", |o| {
        o.fmt("msg", msg);
    });
}

/// `@warning {"msg": ...}`: something is wrong but the run goes on.
pub fn warning(msg: core::fmt::Arguments) {
    emit("warning", |o| {
        o.fmt("msg", msg);
    });
}

/// `@done {"status":"ok"}`: the last line of a successful run.
pub fn done_ok() {
    emit("done", |o| {
        o.str("status", "ok");
    });
}
