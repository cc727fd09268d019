//! x86 port I/O: the only place `in`/`out` instructions are written.

use core::arch::asm;

pub fn outb(port: u16, value: u8) {
    // SAFETY: port writes cannot break Rust's memory safety; the ports the
    // kernel touches (COM1, PIT, PIC, debug exit) are fixed legacy devices.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) }
}

pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading a legacy I/O port has no memory effects.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags)) }
    value
}
