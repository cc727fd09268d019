//! The serial console (COM1, through the hardware layer). Every line is
//! written whole under one lock, so lines from different CPUs never
//! interleave. Human-readable text (`print!`, `println!`) also goes to the
//! screen when there is one, and only there with `console=fb`; telemetry
//! events always go to serial alone (`telemetry::emit` writes through
//! [`lock`]).
//!
//! The lock remembers its owner CPU: a CPU that faults or panics while
//! printing re-enters instead of deadlocking, and a lock held by a CPU that
//! died is taken over after a bounded wait, so a failure report always gets out.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axiom_hw::legacy::serial;

const NO_OWNER: usize = usize::MAX;
/// Spins before a lock held by another CPU is considered abandoned.
const TAKEOVER_SPINS: u64 = 200_000_000;

static OWNER: AtomicUsize = AtomicUsize::new(NO_OWNER);
/// Human-readable text goes to serial (off with `console=fb` and a screen).
static SERIAL_TEXT: AtomicBool = AtomicBool::new(true);

/// Whether `print!`/`println!` text goes to the serial line.
pub fn set_serial_text(on: bool) {
    SERIAL_TEXT.store(on, Ordering::Relaxed);
}

/// One received byte, if COM1 has one (never waits).
pub fn try_read_byte() -> Option<u8> {
    serial::try_read_byte()
}

/// Holds the console; released on drop unless it was a re-entry.
pub struct ConsoleGuard {
    reentered: bool,
}

impl ConsoleGuard {
    pub fn write_fmt(&mut self, args: fmt::Arguments) {
        let _ = serial::Writer.write_fmt(args);
    }
}

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        if !self.reentered {
            OWNER.store(NO_OWNER, Ordering::Release);
        }
    }
}

/// Take the console for a sequence of writes that must stay together.
pub fn lock() -> ConsoleGuard {
    let me = axiom_hw::cpu::percpu::current_index();
    if OWNER.load(Ordering::Relaxed) == me {
        return ConsoleGuard { reentered: true };
    }
    let mut spins = 0u64;
    loop {
        if OWNER.compare_exchange_weak(NO_OWNER, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return ConsoleGuard { reentered: false };
        }
        spins += 1;
        if spins > TAKEOVER_SPINS {
            // The owner is stuck (stopped mid-line): take the console over.
            OWNER.store(me, Ordering::Release);
            return ConsoleGuard { reentered: false };
        }
        core::hint::spin_loop();
    }
}

/// Human-readable text for the serial line only (where the screen draws
/// its own version, e.g. the interactive prompt marker).
pub fn print_serial_only(args: fmt::Arguments) {
    if SERIAL_TEXT.load(Ordering::Relaxed) {
        lock().write_fmt(args);
    }
}

#[doc(hidden)]
pub fn print_args(args: fmt::Arguments) {
    if SERIAL_TEXT.load(Ordering::Relaxed) {
        lock().write_fmt(args);
    }
    crate::screen::write_fmt(args, axiom_screen::Style::Text);
}

/// Print human-readable text to the console (no newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_args(format_args!($($arg)*)) };
}

/// Print one whole line of human-readable text to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print_args(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print_args(format_args!("{}\n", format_args!($($arg)*))) };
}
