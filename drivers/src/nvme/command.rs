//! Submission and completion queue entries (64 and 16 bytes).

use bit_field::BitField;
use core::fmt;

use super::status::Status;

/// The commands this driver issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    // Admin command set.
    DeleteIoSq,
    CreateIoSq,
    DeleteIoCq,
    CreateIoCq,
    Identify,
    SetFeatures,
    // NVM command set (I/O queues): reads only, the driver never writes media.
    Read,
}

impl Opcode {
    pub fn code(self) -> u8 {
        match self {
            Opcode::DeleteIoSq => 0x00,
            Opcode::CreateIoSq => 0x01,
            Opcode::DeleteIoCq => 0x04,
            Opcode::CreateIoCq => 0x05,
            Opcode::Identify => 0x06,
            Opcode::SetFeatures => 0x09,
            Opcode::Read => 0x02,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Opcode::DeleteIoSq => "Delete I/O Submission Queue",
            Opcode::CreateIoSq => "Create I/O Submission Queue",
            Opcode::DeleteIoCq => "Delete I/O Completion Queue",
            Opcode::CreateIoCq => "Create I/O Completion Queue",
            Opcode::Identify => "Identify",
            Opcode::SetFeatures => "Set Features",
            Opcode::Read => "Read",
        }
    }
}

/// Identify CNS values used here.
pub mod cns {
    pub const NAMESPACE: u32 = 0x00;
    pub const CONTROLLER: u32 = 0x01;
    pub const ACTIVE_NAMESPACES: u32 = 0x02;
}

/// Feature identifier for Set Features.
pub const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// A 64-byte submission queue entry as sixteen dwords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Command {
    pub dw: [u32; 16],
}

impl Command {
    /// CDW0: opcode, FUSE = 0, PSDT = 0 (PRPs), command identifier.
    pub fn new(opcode: Opcode, cid: u16) -> Self {
        let mut dw = [0u32; 16];
        dw[0].set_bits(0..8, opcode.code() as u32);
        dw[0].set_bits(16..32, cid as u32);
        Self { dw }
    }

    pub fn opcode(&self) -> u8 {
        self.dw[0] as u8
    }

    pub fn cid(&self) -> u16 {
        (self.dw[0] >> 16) as u16
    }

    pub fn set_cid(&mut self, cid: u16) {
        self.dw[0].set_bits(16..32, cid as u32);
    }

    pub fn nsid(&self) -> u32 {
        self.dw[1]
    }

    pub fn with_nsid(mut self, nsid: u32) -> Self {
        self.dw[1] = nsid;
        self
    }

    /// Data pointer: PRP entry 1 and 2 (DW6..9).
    pub fn with_prps(mut self, prp1: u64, prp2: u64) -> Self {
        self.dw[6] = prp1 as u32;
        self.dw[7] = (prp1 >> 32) as u32;
        self.dw[8] = prp2 as u32;
        self.dw[9] = (prp2 >> 32) as u32;
        self
    }

    pub fn prp1(&self) -> u64 {
        self.dw[6] as u64 | (self.dw[7] as u64) << 32
    }

    pub fn prp2(&self) -> u64 {
        self.dw[8] as u64 | (self.dw[9] as u64) << 32
    }

    pub fn identify(cid: u16, cns: u32, nsid: u32, buffer_phys: u64) -> Self {
        let mut c = Self::new(Opcode::Identify, cid).with_nsid(nsid).with_prps(buffer_phys, 0);
        c.dw[10] = cns;
        c
    }

    /// Physically contiguous, interrupts disabled (we poll).
    pub fn create_io_cq(cid: u16, qid: u16, entries: u32, queue_phys: u64) -> Self {
        let mut c = Self::new(Opcode::CreateIoCq, cid).with_prps(queue_phys, 0);
        c.dw[10].set_bits(0..16, qid as u32);
        c.dw[10].set_bits(16..32, entries - 1);
        c.dw[11].set_bit(0, true); // PC
        c.dw[11].set_bit(1, false); // IEN
        c
    }

    /// Physically contiguous, medium priority (ignored under round robin), bound to `cqid`.
    pub fn create_io_sq(cid: u16, qid: u16, entries: u32, queue_phys: u64, cqid: u16) -> Self {
        let mut c = Self::new(Opcode::CreateIoSq, cid).with_prps(queue_phys, 0);
        c.dw[10].set_bits(0..16, qid as u32);
        c.dw[10].set_bits(16..32, entries - 1);
        c.dw[11].set_bit(0, true); // PC
        c.dw[11].set_bits(1..3, 0b10); // QPRIO medium
        c.dw[11].set_bits(16..32, cqid as u32);
        c
    }

    pub fn delete_io_sq(cid: u16, qid: u16) -> Self {
        let mut c = Self::new(Opcode::DeleteIoSq, cid);
        c.dw[10] = qid as u32;
        c
    }

    pub fn delete_io_cq(cid: u16, qid: u16) -> Self {
        let mut c = Self::new(Opcode::DeleteIoCq, cid);
        c.dw[10] = qid as u32;
        c
    }

    /// Number of Queues: both counts are 0-based.
    pub fn set_number_of_queues(cid: u16, sq: u16, cq: u16) -> Self {
        let mut c = Self::new(Opcode::SetFeatures, cid);
        c.dw[10] = FEATURE_NUMBER_OF_QUEUES;
        c.dw[11] = (sq as u32 - 1) | ((cq as u32 - 1) << 16);
        c
    }

    /// Read `blocks` logical blocks (1..=65536) starting at `slba`.
    pub fn read(cid: u16, nsid: u32, slba: u64, blocks: u32, prp1: u64, prp2: u64) -> Self {
        assert!((1..=65536).contains(&blocks), "NLB is a 16-bit 0-based count");
        let mut c = Self::new(Opcode::Read, cid).with_nsid(nsid).with_prps(prp1, prp2);
        c.dw[10] = slba as u32;
        c.dw[11] = (slba >> 32) as u32;
        c.dw[12].set_bits(0..16, blocks - 1);
        c
    }

    /// Starting LBA and block count of a read (CDW10..12).
    pub fn lba_range(&self) -> (u64, u32) {
        (self.dw[10] as u64 | (self.dw[11] as u64) << 32, self.dw[12].get_bits(0..16) + 1)
    }
}

/// A 16-byte completion queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Completion {
    pub dw: [u32; 4],
}

impl Completion {
    /// Command-specific result (DW0), e.g. the queues granted by Set Features.
    pub fn result(&self) -> u32 {
        self.dw[0]
    }

    pub fn sq_head(&self) -> u16 {
        self.dw[2] as u16
    }

    pub fn sq_id(&self) -> u16 {
        (self.dw[2] >> 16) as u16
    }

    pub fn cid(&self) -> u16 {
        self.dw[3] as u16
    }

    pub fn phase(&self) -> bool {
        self.dw[3].get_bit(16)
    }

    pub fn status(&self) -> Status {
        Status::from_field(self.dw[3].get_bits(17..32) as u16)
    }

    /// Builds an entry (used by the software controller model and tests).
    pub fn new(result: u32, sq_head: u16, sq_id: u16, cid: u16, phase: bool, status: Status) -> Self {
        let mut dw3 = cid as u32;
        dw3.set_bit(16, phase);
        dw3.set_bits(17..32, status.to_field() as u32);
        Self { dw: [result, 0, sq_head as u32 | (sq_id as u32) << 16, dw3] }
    }
}

/// What a failed or timed-out command was: enough to name it in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    pub opcode: Opcode,
    pub qid: u16,
    pub cid: u16,
    pub nsid: u32,
    /// For reads and writes: first LBA and block count.
    pub lba_range: Option<(u64, u32)>,
}

impl fmt::Display for CommandInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (queue {}, cid {}", self.opcode.name(), self.qid, self.cid)?;
        if let Some((slba, n)) = self.lba_range {
            write!(f, ", nsid {}, LBAs {}..{} ({} blocks)", self.nsid, slba, slba + n as u64 - 1, n)?;
        }
        write!(f, ")")
    }
}
