//! Completion status decoding (NVMe base spec, "Status Field Definition").

use bit_field::BitField;
use core::fmt;

/// The 15-bit status field of a completion (phase bit excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// Status Code Type: 0 generic, 1 command specific, 2 media/data
    /// integrity, 3 path related, 7 vendor specific.
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Command Retry Delay index.
    pub crd: u8,
    /// More: a log page holds details.
    pub more: bool,
    /// Do Not Retry.
    pub dnr: bool,
}

impl Status {
    pub const SUCCESS: Status = Status { sct: 0, sc: 0, crd: 0, more: false, dnr: false };

    /// Decodes completion DW3 bits 31:17 (passed as bits 14:0).
    pub fn from_field(field: u16) -> Self {
        Self {
            sc: field.get_bits(0..8) as u8,
            sct: field.get_bits(8..11) as u8,
            crd: field.get_bits(11..13) as u8,
            more: field.get_bit(13),
            dnr: field.get_bit(14),
        }
    }

    pub fn to_field(self) -> u16 {
        let mut f = 0u16;
        f.set_bits(0..8, self.sc as u16);
        f.set_bits(8..11, self.sct as u16 & 7);
        f.set_bits(11..13, self.crd as u16 & 3);
        f.set_bit(13, self.more);
        f.set_bit(14, self.dnr);
        f
    }

    /// A status with the given type and code (no retry hints).
    pub const fn new(sct: u8, sc: u8) -> Self {
        Self { sct, sc, crd: 0, more: false, dnr: false }
    }

    pub fn is_success(&self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self.sct {
            0 => "Generic Command Status",
            1 => "Command Specific Status",
            2 => "Media and Data Integrity Error",
            3 => "Path Related Status",
            7 => "Vendor Specific",
            _ => "Reserved Status Code Type",
        }
    }

    /// The specification's name for this code, or "unknown status code".
    pub fn code_name(&self) -> &'static str {
        match (self.sct, self.sc) {
            (0, 0x00) => "Successful Completion",
            (0, 0x01) => "Invalid Command Opcode",
            (0, 0x02) => "Invalid Field in Command",
            (0, 0x03) => "Command ID Conflict",
            (0, 0x04) => "Data Transfer Error",
            (0, 0x05) => "Commands Aborted due to Power Loss Notification",
            (0, 0x06) => "Internal Error",
            (0, 0x07) => "Command Abort Requested",
            (0, 0x08) => "Command Aborted due to SQ Deletion",
            (0, 0x09) => "Command Aborted due to Failed Fused Command",
            (0, 0x0A) => "Command Aborted due to Missing Fused Command",
            (0, 0x0B) => "Invalid Namespace or Format",
            (0, 0x0C) => "Command Sequence Error",
            (0, 0x0D) => "Invalid SGL Segment Descriptor",
            (0, 0x0E) => "Invalid Number of SGL Descriptors",
            (0, 0x0F) => "Data SGL Length Invalid",
            (0, 0x10) => "Metadata SGL Length Invalid",
            (0, 0x11) => "SGL Descriptor Type Invalid",
            (0, 0x12) => "Invalid Use of Controller Memory Buffer",
            (0, 0x13) => "PRP Offset Invalid",
            (0, 0x14) => "Atomic Write Unit Exceeded",
            (0, 0x15) => "Operation Denied",
            (0, 0x16) => "SGL Offset Invalid",
            (0, 0x18) => "Host Identifier Inconsistent Format",
            (0, 0x19) => "Keep Alive Timer Expired",
            (0, 0x1A) => "Keep Alive Timeout Invalid",
            (0, 0x1B) => "Command Aborted due to Preempt and Abort",
            (0, 0x1C) => "Sanitize Failed",
            (0, 0x1D) => "Sanitize In Progress",
            (0, 0x1E) => "SGL Data Block Granularity Invalid",
            (0, 0x1F) => "Command Not Supported for Queue in CMB",
            (0, 0x20) => "Namespace is Write Protected",
            (0, 0x21) => "Command Interrupted",
            (0, 0x22) => "Transient Transport Error",
            (0, 0x80) => "LBA Out of Range",
            (0, 0x81) => "Capacity Exceeded",
            (0, 0x82) => "Namespace Not Ready",
            (0, 0x83) => "Reservation Conflict",
            (0, 0x84) => "Format In Progress",
            (1, 0x00) => "Completion Queue Invalid",
            (1, 0x01) => "Invalid Queue Identifier",
            (1, 0x02) => "Invalid Queue Size",
            (1, 0x03) => "Abort Command Limit Exceeded",
            (1, 0x05) => "Asynchronous Event Request Limit Exceeded",
            (1, 0x06) => "Invalid Firmware Slot",
            (1, 0x07) => "Invalid Firmware Image",
            (1, 0x08) => "Invalid Interrupt Vector",
            (1, 0x09) => "Invalid Log Page",
            (1, 0x0A) => "Invalid Format",
            (1, 0x0C) => "Invalid Queue Deletion",
            (1, 0x0D) => "Feature Identifier Not Saveable",
            (1, 0x0E) => "Feature Not Changeable",
            (1, 0x0F) => "Feature Not Namespace Specific",
            (1, 0x80) => "Conflicting Attributes",
            (1, 0x81) => "Invalid Protection Information",
            (1, 0x82) => "Attempted Write to Read Only Range",
            (2, 0x80) => "Write Fault",
            (2, 0x81) => "Unrecovered Read Error",
            (2, 0x82) => "End-to-end Guard Check Error",
            (2, 0x83) => "End-to-end Application Tag Check Error",
            (2, 0x84) => "End-to-end Reference Tag Check Error",
            (2, 0x85) => "Compare Failure",
            (2, 0x86) => "Access Denied",
            (2, 0x87) => "Deallocated or Unwritten Logical Block",
            (3, 0x00) => "Internal Path Error",
            (3, 0x01) => "Asymmetric Access Persistent Loss",
            (3, 0x02) => "Asymmetric Access Inaccessible",
            (3, 0x03) => "Asymmetric Access Transition",
            (3, 0x60) => "Controller Pathing Error",
            (3, 0x70) => "Host Pathing Error",
            (3, 0x71) => "Command Aborted By Host",
            _ => "unknown status code",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {} (SCT {:#x}, SC {:#04x}", self.type_name(), self.code_name(), self.sct, self.sc)?;
        if self.dnr {
            write!(f, ", do not retry")?;
        }
        if self.more {
            write!(f, ", more info in log")?;
        }
        write!(f, ")")
    }
}
