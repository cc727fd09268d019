//! Driver errors. Every variant names what failed well enough for an `@error`
//! line: the command, its queue and LBA range, and the decoded status.

use core::fmt;

use super::command::CommandInfo;
use super::prp::PrpError;
use super::status::Status;
use crate::hw::DmaAllocError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmeError {
    /// Registers read as all ones: no device answers at this BAR.
    DeviceGone,
    /// CSTS.RDY did not follow CC.EN within CAP.TO.
    ReadyTimeout { enable: bool, waited_ms: u64 },
    /// The controller reported Controller Fatal Status (CSTS.CFS).
    ControllerFatal { csts: u32, during: &'static str },
    /// A command did not complete within the timeout.
    Timeout { command: CommandInfo, waited_ms: u64 },
    /// A command completed with an error status.
    Command { command: CommandInfo, status: Status },
    /// A completion carried a command id that is not outstanding.
    UnexpectedCompletion { qid: u16, cid: u16, sq_id: u16 },
    /// A read beyond the namespace (refused before submission).
    OutOfRange { nsid: u32, lba: u64, blocks: u64, namespace_blocks: u64 },
    /// The destination buffer is unusable (length, alignment, mapping).
    Buffer { lba: u64, reason: BufferError },
    /// The request table is full: poll for completions first.
    QueueFull { requests: usize },
    /// A blocking call needs an idle queue pair.
    Busy { active_requests: usize },
    /// The controller lacks something the driver needs.
    Unsupported { what: &'static str, value: u64 },
    /// No active namespace with the given id (or none at all).
    NoNamespace { nsid: u32 },
    Dma(DmaAllocError),
    /// An earlier fatal error stopped this queue pair; the first one is kept.
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferError {
    Empty,
    NotBlockMultiple { len: usize, block_size: u32 },
    Prp(PrpError),
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferError::Empty => write!(f, "empty buffer"),
            BufferError::NotBlockMultiple { len, block_size } => write!(f, "length {len} is not a multiple of the {block_size}-byte block size"),
            BufferError::Prp(e) => write!(f, "{e}"),
        }
    }
}

impl From<DmaAllocError> for NvmeError {
    fn from(e: DmaAllocError) -> Self {
        NvmeError::Dma(e)
    }
}

impl NvmeError {
    /// Errors after which the controller cannot be trusted (the queue pair is
    /// stopped and the controller disabled so no DMA lands later).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            NvmeError::DeviceGone | NvmeError::ControllerFatal { .. } | NvmeError::Timeout { .. } | NvmeError::UnexpectedCompletion { .. } | NvmeError::ReadyTimeout { .. } | NvmeError::Failed
        )
    }
}

impl fmt::Display for NvmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NvmeError::DeviceGone => write!(f, "NVMe controller registers read as all ones: the device is gone or its BAR is not mapped"),
            NvmeError::ReadyTimeout { enable, waited_ms } => {
                write!(f, "NVMe controller did not become {} within {waited_ms} ms (CAP.TO)", if *enable { "ready after enable" } else { "disabled after reset" })
            }
            NvmeError::ControllerFatal { csts, during } => write!(f, "NVMe controller fatal status (CSTS.CFS, CSTS={csts:#x}) during {during}"),
            NvmeError::Timeout { command, waited_ms } => write!(f, "NVMe {command} timed out after {waited_ms} ms"),
            NvmeError::Command { command, status } => write!(f, "NVMe {command} failed: {status}"),
            NvmeError::UnexpectedCompletion { qid, cid, sq_id } => write!(f, "NVMe queue {qid}: completion for command id {cid} (SQ {sq_id}) that is not outstanding"),
            NvmeError::OutOfRange { nsid, lba, blocks, namespace_blocks } => write!(
                f,
                "NVMe read of LBAs {lba}..{} ({blocks} blocks) is beyond namespace {nsid} ({namespace_blocks} blocks): refused",
                lba.saturating_add(*blocks).saturating_sub(1)
            ),
            NvmeError::Buffer { lba, reason } => write!(f, "NVMe read at LBA {lba}: unusable destination buffer: {reason}"),
            NvmeError::QueueFull { requests } => write!(f, "NVMe queue pair has all {requests} request slots in use"),
            NvmeError::Busy { active_requests } => write!(f, "NVMe queue pair busy with {active_requests} requests (blocking read needs an idle queue pair)"),
            NvmeError::Unsupported { what, value } => write!(f, "NVMe controller unsupported: {what} ({value:#x})"),
            NvmeError::NoNamespace { nsid: 0 } => write!(f, "NVMe controller has no active namespace"),
            NvmeError::NoNamespace { nsid } => write!(f, "NVMe namespace {nsid} is not active"),
            NvmeError::Dma(e) => write!(f, "NVMe: {e}"),
            NvmeError::Failed => write!(f, "NVMe queue pair stopped after an earlier fatal error"),
        }
    }
}
