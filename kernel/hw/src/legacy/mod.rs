//! Fixed legacy devices, each owning its I/O ports (the `x86_64` crate's
//! port types): COM1 ([`serial`]), the PIT's channel 2 (`pit`, for TSC
//! calibration), the 8259 PICs (`pic`, masked at boot), QEMU's
//! `isa-debug-exit` (`debug_exit`), the PCI configuration ports
//! ([`pci_config`]) and the PS/2 keyboard controller ([`i8042`]). There is no general port write: port I/O can program
//! devices (even start bus-master DMA), so every port the kernel uses is
//! named here, with the values written to it.

use x86_64::instructions::port::Port;

/// Reads `port`.
///
/// # Safety
/// `port` is one of the fixed legacy ports this module owns, and reading it
/// has no effect on memory.
unsafe fn inb(port: u16) -> u8 {
    // SAFETY: per the function contract.
    unsafe { Port::<u8>::new(port).read() }
}

/// Writes `value` to `port`.
///
/// # Safety
/// `port` is one of the fixed legacy ports this module owns, and `value`
/// programs that device without memory effects (no DMA).
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: per the function contract.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// COM1: the serial console (115200 baud, 8N1, polled).
pub mod serial {
    use core::fmt;

    use super::{inb, outb};

    const COM1: u16 = 0x3F8;
    const DATA: u16 = COM1;
    const INTERRUPT_ENABLE: u16 = COM1 + 1;
    const LINE_CONTROL: u16 = COM1 + 3;
    const MODEM_CONTROL: u16 = COM1 + 4;
    const LINE_STATUS: u16 = COM1 + 5;

    /// Program COM1 for 115200 baud, 8N1, interrupts off. The FIFO control
    /// register is left as firmware set it: switching the FIFOs on or off
    /// discards received bytes, and input may already be waiting (a host
    /// that pipes prompts into `interactive=1` before we boot). Without
    /// FIFOs the receiver holds one byte and the sender waits for us to read it.
    pub fn init() {
        // SAFETY: COM1's registers; these writes only configure the UART.
        unsafe {
            outb(INTERRUPT_ENABLE, 0x00); // no interrupts: we poll
            outb(LINE_CONTROL, 0x80); // DLAB on
            outb(DATA, 0x01); // divisor 1 = 115200 baud
            outb(INTERRUPT_ENABLE, 0x00);
            outb(LINE_CONTROL, 0x03); // 8 bits, no parity, one stop bit
            outb(MODEM_CONTROL, 0x03); // DTR | RTS
        }
    }

    fn line_status() -> u8 {
        // SAFETY: reading COM1's line status has no side effects.
        unsafe { inb(LINE_STATUS) }
    }

    /// Send one byte. Bounded wait for the transmitter: a board without COM1
    /// reads 0xFF (ready) or 0x00 forever; either way this never hangs.
    pub fn write_byte(byte: u8) {
        for _ in 0..100_000 {
            if line_status() & 0x20 != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: COM1's transmit register: sends the byte.
        unsafe { outb(DATA, byte) }
    }

    /// One received byte, if COM1 has one (never waits). A missing UART
    /// reads 0xFF from the line-status register; that is "no data".
    pub fn try_read_byte() -> Option<u8> {
        let status = line_status();
        if status != 0xFF && status & 0x01 != 0 {
            // SAFETY: COM1's receive register: takes the byte that is there.
            Some(unsafe { inb(DATA) })
        } else {
            None
        }
    }

    /// Text to COM1 with `\n` as CR LF, unlocked: the kernel's console
    /// keeps lines whole; this is for reports before it exists or while it
    /// cannot be trusted (faults, the final exit line).
    pub struct Writer;

    impl fmt::Write for Writer {
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
}

/// The i8042 PS/2 controller's keyboard side, polled (interrupts stay
/// masked): firmware also emulates it for USB keyboards on most PCs. Only
/// the data port (0x60) is read and only the "read configuration byte"
/// command is written (0x64), so the keyboard stays as firmware set it up.
pub mod i8042 {
    use super::{inb, outb};

    const DATA: u16 = 0x60;
    const STATUS_COMMAND: u16 = 0x64;
    /// Status: the output buffer holds a byte for us.
    const OUTPUT_FULL: u8 = 0x01;
    /// Status: that byte came from the auxiliary (mouse) port.
    const FROM_AUX: u8 = 0x20;
    const READ_CONFIG: u8 = 0x20;
    /// Configuration: the controller translates set-2 scancodes to set 1.
    const TRANSLATE: u8 = 0x40;
    /// Bounded waits (each poll is an I/O port read, about a microsecond).
    const WAIT_POLLS: u32 = 100_000;

    /// Which scancode set the keyboard's bytes arrive in.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ScancodeSet {
        /// Set 1 (the controller translates; what firmware sets up).
        One,
        /// Set 2 (translation off).
        Two,
    }

    fn status() -> u8 {
        // SAFETY: reading the i8042 status register has no side effects.
        unsafe { inb(STATUS_COMMAND) }
    }

    fn data() -> u8 {
        // SAFETY: the i8042 data register: takes the byte that is there.
        unsafe { inb(DATA) }
    }

    /// The controller is present (a missing one reads 0xFF); stale bytes
    /// are drained and the scancode set is read from its configuration byte
    /// (set 1 if that read gets no answer: translation is the firmware default).
    pub fn probe() -> Option<ScancodeSet> {
        if status() == 0xFF {
            return None;
        }
        for _ in 0..64 {
            if status() & OUTPUT_FULL == 0 {
                break;
            }
            data();
        }
        for _ in 0..WAIT_POLLS {
            if status() & 0x02 == 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: the i8042 command register: "read configuration byte" only
        // puts that byte in the output buffer.
        unsafe { outb(STATUS_COMMAND, READ_CONFIG) };
        for _ in 0..WAIT_POLLS {
            let s = status();
            if s & OUTPUT_FULL != 0 && s & FROM_AUX == 0 {
                let config = data();
                return Some(if config & TRANSLATE != 0 { ScancodeSet::One } else { ScancodeSet::Two });
            }
            core::hint::spin_loop();
        }
        Some(ScancodeSet::One)
    }

    /// One byte from the keyboard, if there is one (never waits); bytes
    /// from the mouse port are read and dropped.
    pub fn try_read_key_byte() -> Option<u8> {
        let s = status();
        if s == 0xFF || s & OUTPUT_FULL == 0 {
            return None;
        }
        let byte = data();
        (s & FROM_AUX == 0).then_some(byte)
    }
}

/// The 8259 PICs: masked, since all interrupts come through the LAPIC.
pub(crate) mod pic {
    use super::outb;

    const MASTER_DATA: u16 = 0x21;
    const SLAVE_DATA: u16 = 0xA1;

    /// Mask every line of both PICs (the BIOS left the PIT ticking into them).
    pub fn mask_all() {
        // SAFETY: the PICs' interrupt mask registers; masking has no memory effects.
        unsafe {
            outb(MASTER_DATA, 0xFF);
            outb(SLAVE_DATA, 0xFF);
        }
    }
}

/// PIT channel 2, gated through port 0x61, as a 10 ms reference for the TSC.
pub(crate) mod pit {
    use super::{inb, outb};

    pub const HZ: u64 = 1_193_182;
    const CHANNEL2: u16 = 0x42;
    const COMMAND: u16 = 0x43;
    /// Bit 0: channel 2 gate; bit 1: speaker; bit 5: channel 2 output.
    const GATE: u16 = 0x61;

    /// Start a one-shot count of `ticks` on channel 2 (speaker off).
    pub fn start_one_shot(ticks: u16) {
        // SAFETY: PIT channel 2 and its gate: programs a countdown, no memory effects.
        unsafe {
            outb(GATE, (inb(GATE) & !0x02) | 0x01); // gate high, speaker off
            outb(COMMAND, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
            outb(CHANNEL2, ticks as u8);
            outb(CHANNEL2, (ticks >> 8) as u8);
        }
    }

    /// Channel 2 finished its count.
    pub fn expired() -> bool {
        // SAFETY: reading the gate port has no side effects.
        unsafe { inb(GATE) & 0x20 != 0 }
    }
}

/// QEMU's `isa-debug-exit` device (port 0xF4): a write of `v` ends QEMU
/// with status `(v << 1) | 1`.
pub(crate) mod debug_exit {
    use super::outb;

    const PORT: u16 = 0xF4;

    pub fn exit(code: u8) {
        // SAFETY: the debug-exit port (present under QEMU, checked by the
        // caller); the write ends the virtual machine.
        unsafe { outb(PORT, code) }
    }
}

/// The PCI configuration ports (0xCF8 address, 0xCFC data), handed out once.
pub mod pci_config {
    use core::sync::atomic::{AtomicBool, Ordering};

    use axiom_drivers::hw::ConfigPorts;
    use axiom_drivers::pci::{CONFIG_ADDRESS, CONFIG_DATA};
    use x86_64::instructions::port::Port;

    static TAKEN: AtomicBool = AtomicBool::new(false);

    /// The sole owner of the configuration ports.
    #[derive(Debug)]
    pub struct Ports {
        _owner: (),
    }

    /// The ports, the first time (`None` after that: one owner).
    pub fn take() -> Option<Ports> {
        (!TAKEN.swap(true, Ordering::SeqCst)).then_some(Ports { _owner: () })
    }

    impl ConfigPorts for Ports {
        fn read_address(&self) -> u32 {
            // SAFETY: CONFIG_ADDRESS, owned by this value; reading has no effects.
            unsafe { Port::<u32>::new(CONFIG_ADDRESS).read() }
        }

        fn write_address(&self, value: u32) {
            // SAFETY: CONFIG_ADDRESS, owned by this value: selects a register.
            unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(value) }
        }

        fn read_data(&self) -> u32 {
            // SAFETY: CONFIG_DATA, owned by this value: reads the selected register.
            unsafe { Port::<u32>::new(CONFIG_DATA).read() }
        }

        fn write_data(&self, value: u32) {
            // SAFETY: CONFIG_DATA, owned by this value: writes the selected
            // register. PCI configuration programs devices; the PCI driver
            // using these ports is trusted with that, as with their registers.
            unsafe { Port::<u32>::new(CONFIG_DATA).write(value) }
        }
    }
}
