//! How far a pack run has got, and a one-line display of it on stderr.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Progress of a pack run, reported after every chunk written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackProgress {
    /// The globals' extent (embedding, output head, final norm) is written;
    /// it comes first.
    pub globals_done: bool,
    /// Layers whose extent is fully written.
    pub layers_done: usize,
    pub layers: usize,
    /// Bytes of the data section written so far, and in all.
    pub bytes: u64,
    pub total_bytes: u64,
}

/// Prints [`PackProgress`] on stderr as one line rewritten in place, at most
/// every [`ProgressLine::EVERY`], when stderr is a terminal; a log (CI,
/// a pipe) gets only the final line.
pub struct ProgressLine {
    label: String,
    tty: bool,
    start: Instant,
    last_print: Option<Instant>,
}

impl ProgressLine {
    pub const EVERY: Duration = Duration::from_millis(100);

    pub fn new(label: impl Into<String>) -> Self {
        Self { label: label.into(), tty: std::io::stderr().is_terminal(), start: Instant::now(), last_print: None }
    }

    pub fn update(&mut self, p: PackProgress) {
        if !self.tty || self.last_print.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        self.last_print = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}: {} \x1b[K", self.label, describe(p));
        let _ = err.flush();
    }

    /// Erases the display (on a terminal), for a caller that prints its own
    /// summary line.
    pub fn clear(&mut self) {
        if self.tty && self.last_print.is_some() {
            eprint!("\r\x1b[K");
        }
    }

    /// Ends the display with `outcome` (e.g. "done"), and the time taken.
    pub fn finish(&mut self, outcome: &str) {
        let line = format!("{}: {outcome} in {:.1} s", self.label, self.start.elapsed().as_secs_f64());
        if self.tty {
            eprintln!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}

/// "45% (layer 12 of 30, 44.1 of 98.6 MiB)".
pub fn describe(p: PackProgress) -> String {
    const MIB: f64 = (1 << 20) as f64;
    let percent = (p.bytes * 100).checked_div(p.total_bytes).unwrap_or(100);
    let part = if !p.globals_done {
        "globals".to_string()
    } else if p.layers_done < p.layers {
        format!("layer {} of {}", p.layers_done + 1, p.layers)
    } else {
        format!("{} layers", p.layers)
    };
    format!("{percent:>3}% ({part}, {:.1} of {:.1} MiB)", p.bytes as f64 / MIB, p.total_bytes as f64 / MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_layer_being_written_and_the_share_of_bytes() {
        let at = |globals_done, layers_done, bytes| PackProgress { globals_done, layers_done, layers: 30, bytes, total_bytes: 88 << 20 };
        assert_eq!(describe(at(false, 0, 8 << 20)), "  9% (globals, 8.0 of 88.0 MiB)");
        assert_eq!(describe(at(true, 11, 44 << 20)), " 50% (layer 12 of 30, 44.0 of 88.0 MiB)");
        assert_eq!(describe(at(true, 30, 88 << 20)), "100% (30 layers, 88.0 of 88.0 MiB)");
        let empty = PackProgress { globals_done: true, layers_done: 0, layers: 0, bytes: 0, total_bytes: 0 };
        assert_eq!(describe(empty), "100% (0 layers, 0.0 of 0.0 MiB)");
    }
}
