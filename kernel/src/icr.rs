//! Local APIC interrupt command register (ICR) encoding for both APIC modes,
//! and the adjustments the `x2apic` crate (0.5) needs in xAPIC mode.
//!
//! Architecturally (SDM vol. 3, 11.6.1 and 11.12.9) the 64-bit ICR holds the
//! destination in bits 56..63 in xAPIC mode (8-bit APIC id, written through
//! the high dword at offset 0x310) and in bits 32..63 in x2APIC mode (MSR 0x830).
//! The crate always puts the destination at bit 32, which in xAPIC mode lands
//! in the wrong bits: [`crate_destination`] pre-shifts it so the write is right.
//! The crate's `id()` likewise returns the raw xAPIC ID register (id in bits
//! 24..31): [`apic_id_from_register`] fixes that.

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

/// The `dest` argument to pass to the `x2apic` crate's `send_*` functions so
/// that the ICR it writes equals [`encode`]'s.
pub fn crate_destination(mode: ApicMode, apic_id: u32) -> Result<u32, IcrError> {
    match mode {
        ApicMode::X2Apic => Ok(apic_id),
        ApicMode::XApic if apic_id <= 0xFF => Ok(apic_id << 24),
        ApicMode::XApic => Err(IcrError { apic_id }),
    }
}

/// The APIC id from the value the crate's `id()` returns.
pub fn apic_id_from_register(mode: ApicMode, raw: u32) -> u32 {
    match mode {
        ApicMode::X2Apic => raw,
        ApicMode::XApic => raw >> 24,
    }
}

/// The ICR the `x2apic` 0.5 crate composes for a physical-destination IPI
/// (`format_icr` then `set_bit_range(32..64, dest)`), as 64 bits.
pub fn crate_icr_model(vector: u8, delivery: Delivery, dest_arg: u32) -> u64 {
    vector as u64 | (delivery as u64) << 8 | LEVEL_ASSERT | (dest_arg as u64) << 32
}

/// How the crate's 64-bit value reaches the hardware in xAPIC mode: high
/// dword to offset 0x310, then low dword to 0x300 (which sends).
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
    fn crate_workaround_matches_architecture_in_both_modes() {
        for mode in [ApicMode::XApic, ApicMode::X2Apic] {
            for id in [0u32, 1, 7, 0x7F, 0xFF] {
                for (vector, delivery) in [(0xF0, Delivery::Fixed), (0x08, Delivery::StartUp), (0, Delivery::Init), (0, Delivery::Nmi)] {
                    let arg = crate_destination(mode, id).unwrap();
                    assert_eq!(
                        crate_icr_model(vector, delivery, arg),
                        encode(mode, vector, delivery, Destination::Apic(id)).unwrap(),
                        "{mode:?} id {id} {delivery:?}"
                    );
                }
            }
        }
        // Without the workaround, xAPIC mode would address APIC id 0 via the
        // wrong (reserved) bits: the crate's bug.
        assert_ne!(crate_icr_model(0xF0, Delivery::Fixed, 3), encode(ApicMode::XApic, 0xF0, Delivery::Fixed, Destination::Apic(3)).unwrap());
        assert_eq!(crate_destination(ApicMode::X2Apic, 1000).unwrap(), 1000);
        assert!(crate_destination(ApicMode::XApic, 1000).is_err());
    }

    #[test]
    fn id_register_decoding() {
        assert_eq!(apic_id_from_register(ApicMode::XApic, 0x0500_0000), 5);
        assert_eq!(apic_id_from_register(ApicMode::X2Apic, 513), 513);
    }
}
