//! The kernel's serial protocol: lines `@name {json}` are events; anything
//! else is for humans. [`RunResult`] collects both and judges the run.
//! Events are read as the structs of `axiom_proto::telemetry::events`, the
//! schema the kernel writes with: each line is checked against it when it
//! arrives (a field the schema requires and the line lacks, or a value of
//! the wrong type, is a protocol error that fails the run); fields the
//! schema does not know, and events it does not know, are tolerated (a newer
//! kernel may add some).

use axiom_proto::telemetry::{self, events};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

use super::EXIT_SUCCESS_STATUS;

/// One `@name {json}` line, checked against the telemetry schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: String,
    data: Value,
}

impl Event {
    /// Parse a serial line; `None` if it is not an event, `Some(Err)` if it
    /// looks like one but its JSON is broken or does not match the schema's
    /// event of that name.
    pub fn parse(line: &str) -> Option<Result<Event, String>> {
        let rest = line.strip_prefix('@')?;
        let (name, json) = rest.split_once(' ').unwrap_or((rest, ""));
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Some(Err(format!("malformed event name in {line:?}")));
        }
        Some(match serde_json::from_str::<Value>(json) {
            Ok(data @ Value::Object(_)) => match events::check(name, || &data) {
                Some(Err(e)) => Err(format!("event @{name} does not match the telemetry schema ({e}): {line:?}")),
                Some(Ok(())) | None => Ok(Event { name: name.to_string(), data }),
            },
            Ok(_) => Err(format!("event @{name} is not a JSON object: {line:?}")),
            Err(e) => Err(format!("event @{name} has invalid JSON ({e}): {line:?}")),
        })
    }

    /// This event as `E`, if it is one (its name, and its fields: `@summary`
    /// and `@mem` each have a self-test and an inference form).
    pub fn read<E: telemetry::Event + DeserializeOwned>(&self) -> Option<E> {
        if self.name != E::NAME {
            return None;
        }
        E::deserialize(&self.data).ok()
    }

    /// The event's JSON object, as the kernel wrote it.
    pub fn json(&self) -> String {
        self.data.to_string()
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    pub lines: Vec<String>,
    pub events: Vec<Event>,
    /// Lines that looked like events but did not parse.
    pub protocol_errors: Vec<String>,
    /// QEMU's exit status (`None` if killed at the timeout).
    pub exit_status: Option<i32>,
    pub timed_out: bool,
    pub timeout: Duration,
    pub stderr: String,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// `@done {"status":"ok"}` and QEMU exited through the kernel's success code.
    Success,
    /// The kernel reported failure (`@error`) or exited without `@done`.
    KernelFailed(String),
    /// Killed at the runner's timeout (the last resort: the kernel hung).
    Timeout(Duration),
    /// QEMU itself failed (bad arguments, missing firmware, crash).
    QemuFailed(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Success => write!(f, "kernel reported success"),
            Verdict::KernelFailed(m) => write!(f, "kernel failed: {m}"),
            Verdict::Timeout(d) => write!(f, "TIMEOUT: no result within {} s; QEMU was killed (the kernel hung)", d.as_secs()),
            Verdict::QemuFailed(m) => write!(f, "QEMU failed: {m}"),
        }
    }
}

impl RunResult {
    /// Adds one serial line (parsed as an event if it is one).
    pub fn push_line(&mut self, line: String) {
        match Event::parse(&line) {
            Some(Ok(e)) => self.events.push(e),
            Some(Err(msg)) => self.protocol_errors.push(msg),
            None => {}
        }
        self.lines.push(line);
    }

    /// Every event of type `E`, in order.
    pub fn all<'a, E: telemetry::Event + DeserializeOwned + 'a>(&'a self) -> impl Iterator<Item = E> + 'a {
        self.events.iter().filter_map(Event::read::<E>)
    }

    /// The first event of type `E`.
    pub fn first<E: telemetry::Event + DeserializeOwned>(&self) -> Option<E> {
        self.all::<E>().next()
    }

    /// The last event of type `E`.
    pub fn last<E: telemetry::Event + DeserializeOwned>(&self) -> Option<E> {
        self.all::<E>().last()
    }

    /// `@done {"status":"ok"}` was the last event.
    pub fn done_ok(&self) -> bool {
        self.events.last().and_then(Event::read::<events::Done>).is_some_and(|d| d.status == "ok")
    }

    /// The `msg` of every `@error`.
    pub fn errors(&self) -> Vec<String> {
        self.all::<events::Error>().map(|e| e.msg.into_owned()).collect()
    }

    pub fn verdict(&self) -> Verdict {
        if self.timed_out {
            return Verdict::Timeout(self.timeout);
        }
        let status = self.exit_status;
        let kernel_exited = matches!(status, Some(s) if s & 1 == 1 && s > 1);
        if !kernel_exited && self.events.is_empty() {
            let stderr = self.stderr.trim();
            return Verdict::QemuFailed(format!(
                "exit status {}{}",
                status.map_or("unknown".into(), |s| s.to_string()),
                if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
            ));
        }
        let errors = self.errors();
        if let Some(first) = errors.first() {
            return Verdict::KernelFailed(first.clone());
        }
        if let Some(p) = self.protocol_errors.first() {
            return Verdict::KernelFailed(format!("telemetry protocol error: {p}"));
        }
        if !self.done_ok() {
            return Verdict::KernelFailed(format!(
                "no @done {{\"status\":\"ok\"}} as the last event (exit status {})",
                status.map_or("unknown".into(), |s| s.to_string())
            ));
        }
        if status != Some(EXIT_SUCCESS_STATUS) {
            return Verdict::KernelFailed(format!(
                "@done was printed but QEMU exited with status {} instead of {EXIT_SUCCESS_STATUS}",
                status.map_or("unknown".into(), |s| s.to_string())
            ));
        }
        Verdict::Success
    }

    pub fn success(&self) -> bool {
        self.verdict() == Verdict::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(lines: &[&str], status: Option<i32>) -> RunResult {
        let mut r = RunResult { exit_status: status, timeout: Duration::from_secs(5), ..Default::default() };
        for l in lines {
            r.push_line(l.to_string());
        }
        r
    }

    #[test]
    fn parses_events_and_ignores_prose() {
        let r = result(&["AXIOM booting", r#"@cpu {"id":1,"apic_id":2,"role":"compute"}"#, "@done {\"status\":\"ok\"}"], Some(33));
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.first::<events::Cpu>().unwrap().apic_id, 2);
        assert_eq!(r.verdict(), Verdict::Success);
    }

    #[test]
    fn events_are_checked_against_the_schema() {
        // A field the host does not know is fine (a newer kernel), so is an unknown event.
        let r = result(&[r#"@cpu {"id":1,"apic_id":2,"role":"io","numa":0}"#, r#"@future {"x":1}"#, r#"@done {"status":"ok"}"#], Some(33));
        assert_eq!(r.verdict(), Verdict::Success);
        assert_eq!(r.first::<events::Cpu>().unwrap().role, "io");
        // A renamed or missing field is a protocol error, not a silent gap.
        let r = result(&[r#"@cpu {"id":1,"apicid":2,"role":"io"}"#, r#"@done {"status":"ok"}"#], Some(33));
        assert!(matches!(r.verdict(), Verdict::KernelFailed(m) if m.contains("does not match the telemetry schema") && m.contains("apic_id")), "{}", r.verdict());
        assert!(r.first::<events::Cpu>().is_none());
    }

    #[test]
    fn judges_failures() {
        let r = result(&["@error {\"msg\":\"boom\"}"], Some(35));
        assert_eq!(r.verdict(), Verdict::KernelFailed("boom".into()));
        let r = result(&["@ready {\"interactive\":true,\"max_line\":512}"], Some(33));
        assert!(matches!(r.verdict(), Verdict::KernelFailed(m) if m.contains("no @done")));
        let r = result(&["@done {\"status\":\"ok\"}"], Some(1));
        assert!(matches!(r.verdict(), Verdict::KernelFailed(m) if m.contains("instead of 33")));
        let r = result(&["@boot {broken"], Some(33));
        assert!(matches!(r.verdict(), Verdict::KernelFailed(m) if m.contains("invalid JSON")));
        let mut r = result(&[], None);
        r.stderr = "qemu: bad option".into();
        assert!(matches!(r.verdict(), Verdict::QemuFailed(m) if m.contains("bad option")));
        let mut r = result(&["@ready {\"interactive\":true,\"max_line\":512}"], None);
        r.timed_out = true;
        assert!(r.verdict().to_string().starts_with("TIMEOUT"));
    }
}
