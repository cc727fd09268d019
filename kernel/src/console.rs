//! COM1 serial console: the only output device. Every line is written whole
//! under one lock, so lines from different CPUs never interleave.
//!
//! The lock remembers its owner CPU: a CPU that faults or panics while
//! printing re-enters instead of deadlocking, and a lock held by a CPU that
//! died is taken over after a bounded wait, so a failure report always gets out.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::cpu::port;

const COM1: u16 = 0x3F8;
const NO_OWNER: usize = usize::MAX;
/// Spins before a lock held by another CPU is considered abandoned.
const TAKEOVER_SPINS: u64 = 200_000_000;

static OWNER: AtomicUsize = AtomicUsize::new(NO_OWNER);

/// Program COM1 for 115200 baud, 8N1, interrupts off. The FIFO control
/// register is left as firmware set it: switching the FIFOs on or off
/// discards received bytes, and input may already be waiting (a host that
/// pipes prompts into `interactive=1` before we boot). Without FIFOs the
/// receiver holds one byte and the sender waits for us to read it.
pub fn init() {
    port::outb(COM1 + 1, 0x00); // no interrupts: we poll
    port::outb(COM1 + 3, 0x80); // DLAB on
    port::outb(COM1, 0x01); // divisor 1 = 115200 baud
    port::outb(COM1 + 1, 0x00);
    port::outb(COM1 + 3, 0x03); // 8 bits, no parity, one stop bit
    port::outb(COM1 + 4, 0x03); // DTR | RTS
}

fn write_byte(byte: u8) {
    // Bounded wait for the transmitter: a board without COM1 reads 0xFF (ready)
    // or 0x00 forever; either way we never hang here.
    for _ in 0..100_000 {
        if port::inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    port::outb(COM1, byte);
}

/// One received byte, if COM1 has one (never waits). A missing UART reads
/// 0xFF from the line-status register; that is treated as "no data".
pub fn try_read_byte() -> Option<u8> {
    let status = port::inb(COM1 + 5);
    if status != 0xFF && status & 0x01 != 0 {
        Some(port::inb(COM1))
    } else {
        None
    }
}

struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                write_byte(b'\r');
            }
            write_byte(b);
        }
        Ok(())
    }
}

/// Holds the console; released on drop unless it was a re-entry.
pub struct ConsoleGuard {
    reentered: bool,
}

impl ConsoleGuard {
    pub fn write_fmt(&mut self, args: fmt::Arguments) {
        let _ = Serial.write_fmt(args);
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
    let me = crate::smp::percpu::current_index();
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

#[doc(hidden)]
pub fn print_args(args: fmt::Arguments) {
    lock().write_fmt(args);
}

/// Print to the serial console (no newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_args(format_args!($($arg)*)) };
}

/// Print one whole line to the serial console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print_args(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print_args(format_args!("{}\n", format_args!($($arg)*))) };
}
