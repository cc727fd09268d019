//! Submission/completion ring bookkeeping over DMA memory: tail and head
//! indices, wrap-around and the completion phase tag.

use core::sync::atomic::{fence, Ordering};

use super::command::{Command, Completion};
use crate::hw::DmaRegion;

pub const SQ_ENTRY_BYTES: usize = 64;
pub const CQ_ENTRY_BYTES: usize = 16;

/// A submission queue: the host writes entries at `tail` and tells the
/// controller the new tail through the doorbell.
#[derive(Debug)]
pub struct SubmissionQueue {
    mem: DmaRegion,
    entries: u16,
    tail: u16,
    /// Last head reported by the controller in a completion (SQHD).
    head: u16,
}

impl SubmissionQueue {
    pub fn new(mem: DmaRegion, entries: u16) -> Self {
        assert!(entries >= 2 && mem.len() >= entries as usize * SQ_ENTRY_BYTES);
        Self { mem, entries, tail: 0, head: 0 }
    }

    pub fn phys(&self) -> u64 {
        self.mem.phys()
    }

    pub fn entries(&self) -> u16 {
        self.entries
    }

    pub fn tail(&self) -> u16 {
        self.tail
    }

    pub fn head(&self) -> u16 {
        self.head
    }

    /// Entries written but not yet consumed by the controller (as far as we know).
    pub fn occupied(&self) -> u16 {
        (self.tail + self.entries - self.head) % self.entries
    }

    /// One slot always stays empty so that full and empty differ.
    pub fn is_full(&self) -> bool {
        self.occupied() == self.entries - 1
    }

    /// Writes `cmd` at the tail and advances it. The caller rings the doorbell
    /// later (once per batch).
    pub fn push(&mut self, cmd: &Command) {
        assert!(!self.is_full(), "submission queue overflow: the queue depth must stay below the queue size");
        let base = self.tail as usize * SQ_ENTRY_BYTES;
        for (i, dw) in cmd.dw.iter().enumerate() {
            self.mem.write_u32(base + i * 4, *dw);
        }
        self.tail = (self.tail + 1) % self.entries;
    }

    pub fn set_head(&mut self, head: u16) {
        if head < self.entries {
            self.head = head;
        }
    }

    /// Makes the entries visible before the doorbell write that publishes them.
    pub fn publish(&self) -> u16 {
        fence(Ordering::SeqCst);
        self.tail
    }
}

/// A completion queue: the controller posts entries, flipping the phase tag
/// on each pass around the ring; the host consumes at `head`.
#[derive(Debug)]
pub struct CompletionQueue {
    mem: DmaRegion,
    entries: u16,
    head: u16,
    /// The phase tag value that marks a new entry on the current pass.
    phase: bool,
}

impl CompletionQueue {
    pub fn new(mem: DmaRegion, entries: u16) -> Self {
        assert!(entries >= 2 && mem.len() >= entries as usize * CQ_ENTRY_BYTES);
        Self { mem, entries, head: 0, phase: true }
    }

    pub fn phys(&self) -> u64 {
        self.mem.phys()
    }

    pub fn entries(&self) -> u16 {
        self.entries
    }

    pub fn head(&self) -> u16 {
        self.head
    }

    pub fn phase(&self) -> bool {
        self.phase
    }

    /// The entry at `head` if the controller has posted it (its phase tag
    /// matches the current pass).
    pub fn peek(&self) -> Option<Completion> {
        let base = self.head as usize * CQ_ENTRY_BYTES;
        let dw3 = self.mem.read_u32(base + 12);
        if (dw3 >> 16) & 1 != self.phase as u32 {
            return None;
        }
        // The phase tag is written with the entry; read the rest only after it.
        fence(Ordering::Acquire);
        Some(Completion { dw: [self.mem.read_u32(base), self.mem.read_u32(base + 4), self.mem.read_u32(base + 8), dw3] })
    }

    /// Consumes the entry at `head`; flips the expected phase on wrap-around.
    pub fn advance(&mut self) {
        self.head += 1;
        if self.head == self.entries {
            self.head = 0;
            self.phase = !self.phase;
        }
    }
}
