//! Local APIC register encodings for both APIC modes: the interrupt command
//! register (ICR), the ID register and the x2APIC MSR numbers.
//!
//! Architecturally (SDM vol. 3, 11.6.1 and 11.12.9) the 64-bit ICR holds the
//! destination in bits 56..63 in xAPIC mode (8-bit APIC id, written through
//! the high dword at offset 0x310) and in bits 32..63 in x2APIC mode (MSR
//! 0x830). (The `x2apic` crate 0.5 puts it at bit 32 in both modes, which
//! addresses the wrong CPU in xAPIC mode; this module replaced it.)

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicMode {
    XApic,
    X2Apic,
}

impl ApicMode {
    pub fn name(self) -> &'static str {
        match self {
            ApicMode::XApic => "xapic",
            ApicMode::X2Apic => "x2apic",
        }
    }
}

/// ICR delivery modes used by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Fixed = 0b000,
    Nmi = 0b100,
    Init = 0b101,
    StartUp = 0b110,
}

/// Who receives the interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// One CPU by (physical) APIC id.
    Apic(u32),
    SelfOnly,
    AllIncludingSelf,
    AllExcludingSelf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcrError {
    pub apic_id: u32,
}

impl fmt::Display for IcrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "APIC id {} does not fit xAPIC's 8-bit destination", self.apic_id)
    }
}

const LEVEL_ASSERT: u64 = 1 << 14;

/// The architectural 64-bit ICR value (xAPIC: high dword << 32 | low dword).
pub fn encode(mode: ApicMode, vector: u8, delivery: Delivery, dest: Destination) -> Result<u64, IcrError> {
    let mut icr = vector as u64 | (delivery as u64) << 8 | LEVEL_ASSERT;
    match dest {
        Destination::Apic(id) => match mode {
            ApicMode::X2Apic => icr |= (id as u64) << 32,
            ApicMode::XApic => {
                if id > 0xFF {
                    return Err(IcrError { apic_id: id });
                }
                icr |= (id as u64) << 56;
            }
        },
        Destination::SelfOnly => icr |= 0b01 << 18,
        Destination::AllIncludingSelf => icr |= 0b10 << 18,
        Destination::AllExcludingSelf => icr |= 0b11 << 18,
    }
    Ok(icr)
}

/// The APIC id in the ID register's value: x2APIC holds all 32 bits, xAPIC
/// the 8-bit id in bits 24..31.
pub fn apic_id_from_register(mode: ApicMode, raw: u32) -> u32 {
    match mode {
        ApicMode::X2Apic => raw,
        ApicMode::XApic => raw >> 24,
    }
}

/// The x2APIC MSR of the register at xAPIC MMIO offset `offset`
/// (SDM vol. 3, 11.12.1.2: MSR 0x800 + offset / 16).
pub fn x2apic_msr(offset: u32) -> u32 {
    0x800 + (offset >> 4)
}

/// How the 64-bit value reaches the hardware in xAPIC mode: high dword to
/// offset 0x310, then low dword to 0x300 (which sends).
pub fn xapic_register_writes(icr: u64) -> (u32, u32) {
    ((icr >> 32) as u32, icr as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x2apic_encoding() {
        let icr = encode(ApicMode::X2Apic, 0xF0, Delivery::Fixed, Destination::Apic(300)).unwrap();
        assert_eq!(icr, 0x0000_012C_0000_40F0);
        assert_eq!(encode(ApicMode::X2Apic, 0x08, Delivery::StartUp, Destination::Apic(1)).unwrap(), 0x1_0000_4608);
        assert_eq!(encode(ApicMode::X2Apic, 0, Delivery::Init, Destination::Apic(2)).unwrap(), 0x2_0000_4500);
        assert_eq!(encode(ApicMode::X2Apic, 0, Delivery::Nmi, Destination::AllExcludingSelf).unwrap(), 0xC4400);
    }

    #[test]
    fn xapic_encoding_puts_destination_in_bits_56_to_63() {
        let icr = encode(ApicMode::XApic, 0xF0, Delivery::Fixed, Destination::Apic(3)).unwrap();
        assert_eq!(icr, 0x0300_0000_0000_40F0);
        let (high, low) = xapic_register_writes(icr);
        assert_eq!(high, 0x0300_0000, "ICR high dword: destination field is bits 24..31");
        assert_eq!(low, 0x40F0);
        assert_eq!(encode(ApicMode::XApic, 1, Delivery::Fixed, Destination::Apic(256)), Err(IcrError { apic_id: 256 }));
        assert_eq!(encode(ApicMode::XApic, 0, Delivery::Nmi, Destination::AllExcludingSelf).unwrap(), 0xC4400);
    }

    #[test]
    fn id_register_decoding() {
        assert_eq!(apic_id_from_register(ApicMode::XApic, 0x0500_0000), 5);
        assert_eq!(apic_id_from_register(ApicMode::X2Apic, 513), 513);
    }

    #[test]
    fn x2apic_registers_are_msrs_at_offset_over_16() {
        assert_eq!(x2apic_msr(0x20), 0x802, "ID");
        assert_eq!(x2apic_msr(0xB0), 0x80B, "EOI (isr.s writes this MSR)");
        assert_eq!(x2apic_msr(0xF0), 0x80F, "spurious-interrupt vector");
        assert_eq!(x2apic_msr(0x300), 0x830, "ICR (one 64-bit MSR)");
        assert_eq!(x2apic_msr(0x350), 0x835, "LVT LINT0");
        assert_eq!(x2apic_msr(0x360), 0x836, "LVT LINT1");
    }
}
