//! Controller registers (NVMe base specification, "Controller Registers").

use bit_field::BitField;

pub const CAP: usize = 0x00;
pub const VS: usize = 0x08;
pub const INTMS: usize = 0x0C;
pub const CC: usize = 0x14;
pub const CSTS: usize = 0x1C;
pub const AQA: usize = 0x24;
pub const ASQ: usize = 0x28;
pub const ACQ: usize = 0x30;
/// Doorbells start here; their spacing is `4 << CAP.DSTRD` bytes.
pub const DOORBELL_BASE: usize = 0x1000;

/// Decoded Controller Capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Maximum queue entries supported (MQES + 1; the field is 0-based).
    pub max_queue_entries: u32,
    pub contiguous_queues_required: bool,
    /// Worst-case time for CSTS.RDY to follow CC.EN, in milliseconds (CAP.TO × 500).
    pub ready_timeout_ms: u64,
    /// Doorbell stride in bytes (4 << DSTRD).
    pub doorbell_stride: usize,
    /// Bit 0 of CAP.CSS: the NVM command set.
    pub nvm_command_set: bool,
    /// CAP.MPSMIN / MPSMAX as byte sizes (2 ^ (12 + field)).
    pub min_page_size: usize,
    pub max_page_size: usize,
    pub raw: u64,
}

impl Capabilities {
    pub fn decode(raw: u64) -> Self {
        Self {
            max_queue_entries: raw.get_bits(0..16) as u32 + 1,
            contiguous_queues_required: raw.get_bit(16),
            ready_timeout_ms: raw.get_bits(24..32) * 500,
            doorbell_stride: 4 << raw.get_bits(32..36),
            nvm_command_set: raw.get_bit(37),
            min_page_size: 1 << (12 + raw.get_bits(48..52)),
            max_page_size: 1 << (12 + raw.get_bits(52..56)),
            raw,
        }
    }

    /// Submission queue `qid`'s tail doorbell.
    pub fn sq_tail_doorbell(&self, qid: u16) -> usize {
        DOORBELL_BASE + (2 * qid as usize) * self.doorbell_stride
    }

    /// Completion queue `qid`'s head doorbell.
    pub fn cq_head_doorbell(&self, qid: u16) -> usize {
        DOORBELL_BASE + (2 * qid as usize + 1) * self.doorbell_stride
    }
}

/// Controller Configuration value for enabling: NVM command set, round-robin
/// arbitration, memory page size `page_size`, 64-byte SQ and 16-byte CQ entries.
pub fn cc_enable(page_size: usize) -> u32 {
    let mut cc = 0u32;
    cc.set_bit(0, true); // EN
    cc.set_bits(4..7, 0); // CSS: NVM command set
    cc.set_bits(7..11, page_size.trailing_zeros() - 12); // MPS
    cc.set_bits(11..14, 0); // AMS: round robin
    cc.set_bits(14..16, 0); // SHN: none
    cc.set_bits(16..20, 6); // IOSQES: 2^6 = 64 bytes
    cc.set_bits(20..24, 4); // IOCQES: 2^4 = 16 bytes
    cc
}

/// Controller Status bits.
pub mod csts {
    pub const RDY: u32 = 1 << 0;
    pub const CFS: u32 = 1 << 1;
    pub const SHST_MASK: u32 = 0b11 << 2;
}

/// Admin Queue Attributes: both sizes are 0-based.
pub fn aqa(sq_entries: u32, cq_entries: u32) -> u32 {
    let mut v = 0u32;
    v.set_bits(0..12, sq_entries - 1);
    v.set_bits(16..28, cq_entries - 1);
    v
}

/// Version register as (major, minor, tertiary).
pub fn version(vs: u32) -> (u16, u8, u8) {
    ((vs >> 16) as u16, (vs >> 8) as u8, vs as u8)
}
