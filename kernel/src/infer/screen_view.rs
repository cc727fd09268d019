//! The answer on the screen (see `crate::screen`): the prompt, the tokens
//! as they stream, and a status line refreshed on every token with the
//! decode speed and each compute core's busy / barrier / stream-wait shares
//! since the answer began.
//!
//! The shares come from per-core meters ([`meter`]) that every compute
//! core adds its own cycles to (one cache line each, relaxed atomics) as its
//! engine worker records them; the leader reads them when a token is out.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use axiom_screen::Style;

use crate::screen;

/// Cycles one compute core spent, by kind, for the whole run.
#[repr(align(64))]
pub struct CoreMeter {
    busy: AtomicU64,
    barrier: AtomicU64,
    stream_wait: AtomicU64,
}

impl CoreMeter {
    const fn new() -> CoreMeter {
        CoreMeter { busy: AtomicU64::new(0), barrier: AtomicU64::new(0), stream_wait: AtomicU64::new(0) }
    }

    fn read(&self) -> Shares {
        Shares { busy: self.busy.load(Ordering::Relaxed), barrier: self.barrier.load(Ordering::Relaxed), stream_wait: self.stream_wait.load(Ordering::Relaxed) }
    }
}

/// The per-core meters, by compute-team index.
pub mod meter {
    use super::*;

    static METERS: [CoreMeter; crate::MAX_CPUS] = [const { CoreMeter::new() }; crate::MAX_CPUS];

    fn at(core: usize) -> Option<&'static CoreMeter> {
        METERS.get(core)
    }

    /// Attention, FFN, embedding or output-head work.
    pub fn busy(core: usize, cycles: u64) {
        if let Some(m) = at(core) {
            m.busy.fetch_add(cycles, Ordering::Relaxed);
        }
    }

    /// Waiting at the team's barrier.
    pub fn barrier(core: usize, cycles: u64) {
        if let Some(m) = at(core) {
            m.barrier.fetch_add(cycles, Ordering::Relaxed);
        }
    }

    /// Waiting for a layer's weights to arrive.
    pub fn stream_wait(core: usize, cycles: u64) {
        if let Some(m) = at(core) {
            m.stream_wait.fetch_add(cycles, Ordering::Relaxed);
        }
    }

    pub(super) fn read(core: usize) -> Shares {
        at(core).map(|m| m.read()).unwrap_or_default()
    }
}

/// Cycles by kind (a meter reading, or the difference of two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shares {
    pub busy: u64,
    pub barrier: u64,
    pub stream_wait: u64,
}

impl Shares {
    fn since(&self, start: &Shares) -> Shares {
        Shares {
            busy: self.busy.saturating_sub(start.busy),
            barrier: self.barrier.saturating_sub(start.barrier),
            stream_wait: self.stream_wait.saturating_sub(start.stream_wait),
        }
    }

    /// Whole percentages of the total (0, 0, 0 before anything was measured).
    pub fn percent(&self) -> (u64, u64, u64) {
        let total = self.busy + self.barrier + self.stream_wait;
        if total == 0 {
            return (0, 0, 0);
        }
        let pct = |x: u64| (x as u128 * 100 / total as u128) as u64;
        (pct(self.busy), pct(self.barrier), pct(self.stream_wait))
    }
}

/// The status line: `AXIOM | N tokens | X.XX tok/s | busy/barrier/wait %
/// c0 81/12/7 c1 ...` (cut by the screen at its width).
pub fn status_line(tokens: usize, tokens_per_s: Option<f64>, cores: &[Shares]) -> String {
    let mut s = String::with_capacity(64 + cores.len() * 12);
    let _ = write!(s, "AXIOM | {tokens} tokens | ");
    match tokens_per_s {
        Some(r) => {
            let _ = write!(s, "{r:.2} tok/s");
        }
        None => s.push_str("-- tok/s"),
    }
    s.push_str(" | busy/barrier/wait %");
    for (i, c) in cores.iter().enumerate() {
        let (b, w, sw) = c.percent();
        let _ = write!(s, " c{i} {b}/{w}/{sw}");
    }
    s
}

/// One answer's view on the screen, driven by the leader's token sink.
pub struct ScreenView {
    /// Write the tokens' text (off when the serial text already carries it
    /// to the screen: `telemetry=off` prints tokens with `print!`).
    echo: bool,
    start: Vec<Shares>,
    now: Vec<Shares>,
    first_token_ns: Option<u64>,
    tokens: usize,
}

impl ScreenView {
    /// Starts an answer to a prompt of `prompt_tokens` tokens, computed by
    /// `cores` compute cores (the status line says the prompt is being read:
    /// on a slow machine that is the long wait before the first token).
    pub fn begin(cores: usize, prompt_tokens: usize, echo: bool) -> ScreenView {
        if screen::is_active() {
            screen::finish_line();
            screen::status(&alloc::format!("AXIOM | reading the prompt ({prompt_tokens} tokens) ..."));
        }
        let start: Vec<Shares> = (0..cores).map(meter::read).collect();
        ScreenView { echo, now: start.clone(), start, first_token_ns: None, tokens: 0 }
    }

    /// A token's text is out at `now_ns`.
    pub fn token(&mut self, text: &str, now_ns: u64) {
        self.tokens += 1;
        let first = *self.first_token_ns.get_or_insert(now_ns);
        if !screen::is_active() {
            return;
        }
        if self.echo {
            screen::write(text, Style::Text);
        }
        let rate = (self.tokens > 1 && now_ns > first).then(|| (self.tokens - 1) as f64 * 1e9 / (now_ns - first) as f64);
        for (i, s) in self.now.iter_mut().enumerate() {
            *s = meter::read(i).since(&self.start[i]);
        }
        screen::status(&status_line(self.tokens, rate, &self.now));
    }
}

/// The prompt of a command-line answer (typed prompts are echoed as typed).
pub fn show_prompt(prompt: &str) {
    screen::finish_line();
    screen::write("> ", Style::User);
    screen::write(prompt, Style::User);
    screen::write("\n", Style::User);
}

/// The answer is complete.
pub fn answer_done() {
    screen::finish_line();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_whole_percentages_of_the_total() {
        let s = Shares { busy: 810, barrier: 120, stream_wait: 70 };
        assert_eq!(s.percent(), (81, 12, 7));
        assert_eq!(Shares::default().percent(), (0, 0, 0));
        let later = Shares { busy: 1810, barrier: 220, stream_wait: 70 };
        assert_eq!(later.since(&s), Shares { busy: 1000, barrier: 100, stream_wait: 0 });
    }

    #[test]
    fn the_status_line() {
        let cores = [Shares { busy: 81, barrier: 12, stream_wait: 7 }, Shares { busy: 1, barrier: 1, stream_wait: 2 }];
        assert_eq!(status_line(12, Some(3.4159), &cores), "AXIOM | 12 tokens | 3.42 tok/s | busy/barrier/wait % c0 81/12/7 c1 25/25/50");
        assert_eq!(status_line(1, None, &cores[..1]), "AXIOM | 1 tokens | -- tok/s | busy/barrier/wait % c0 81/12/7");
    }

    #[test]
    fn meters_add_per_core_and_ignore_unknown_cores() {
        // Core indices near the end, unused by other tests.
        let core = crate::MAX_CPUS - 1;
        let before = meter::read(core);
        meter::busy(core, 10);
        meter::barrier(core, 5);
        meter::stream_wait(core, 1);
        meter::busy(crate::MAX_CPUS + 7, 99);
        assert_eq!(meter::read(core).since(&before), Shares { busy: 10, barrier: 5, stream_wait: 1 });
        assert_eq!(meter::read(crate::MAX_CPUS + 7), Shares::default());
    }
}
