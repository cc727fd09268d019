//! The I/O queue pair: deep-queue reads straight into caller buffers.
//!
//! Modelled on SPDK's queue-pair API: one core owns the pair; it submits
//! reads (`submit_read`, no doorbell yet), rings the doorbell once per batch
//! (`flush`, or implicitly in `process_completions`), and polls completions
//! (`process_completions`), which also refills the submission queue from
//! requests that were larger than what fits in flight. A read of any size is
//! split into commands of at most the controller's MDTS; each command gets
//! its PRP list in memory reserved at creation, indexed by command id, so the
//! read path allocates nothing.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::command::{Command, CommandInfo, Opcode};
use super::controller::Namespace;
use super::error::{BufferError, NvmeError};
use super::prp::{self, ListArea};
use super::queue::{CompletionQueue, SubmissionQueue};
use super::controller::Hw;
use super::regs::{self, csts};
pub use crate::hw::ReadBuffer;
use crate::hw::{Clock, Dma, DmaRegion, Registers};

/// How often (at most) an idle poll reads CSTS and checks command ages.
const HEALTH_CHECK_INTERVAL_NS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug)]
pub struct QueuePairOptions {
    /// Queue entries for both rings (capped by CAP.MQES).
    pub entries: u32,
    /// Most commands in flight at once (capped at entries - 1). Can be lowered
    /// later with `set_queue_depth`.
    pub queue_depth: u32,
    /// Request table size: reads accepted but not yet completed.
    pub max_requests: u32,
    /// Per-command transfer cap below MDTS (0 = MDTS).
    pub max_transfer_bytes: usize,
}

impl Default for QueuePairOptions {
    fn default() -> Self {
        Self { entries: 256, queue_depth: 255, max_requests: 256, max_transfer_bytes: 0 }
    }
}

/// A finished read request, as delivered by `process_completions`. Only the
/// driver makes one, after every command of the read completed, and it is
/// not `Clone`: holding the completion of a buffer proves the device is done
/// writing it (the kernel's weight slots rely on this).
#[derive(Debug, PartialEq, Eq)]
pub struct ReadCompletion {
    /// The caller's tag from `submit_read`.
    pub tag: u64,
    pub lba: u64,
    pub bytes: usize,
    /// `Err` names the first failed command (its LBA range and status).
    pub result: Result<(), NvmeError>,
    /// The read buffer's address and length.
    target: (usize, usize),
}

impl ReadCompletion {
    /// The buffer this read wrote: (address, length) of its `ReadBuffer`.
    pub fn target(&self) -> (usize, usize) {
        self.target
    }
}

/// Counters for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuePairStats {
    pub requests: u64,
    pub commands: u64,
    pub bytes: u64,
    pub doorbells: u64,
    pub completions: u64,
    pub polls: u64,
    pub empty_polls: u64,
    /// Most commands in flight at any time.
    pub max_in_flight: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct CommandSlot {
    in_flight: bool,
    request: u32,
    lba: u64,
    blocks: u32,
    submitted_ns: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Request {
    active: bool,
    tag: u64,
    nsid: u32,
    block_size: u32,
    max_blocks: u32,
    start_lba: u64,
    end_lba: u64,
    /// Next block to submit; == end_lba when everything is submitted.
    next_lba: u64,
    buf: usize,
    in_flight: u32,
    error: Option<NvmeError>,
}

impl Request {
    fn submission_done(&self) -> bool {
        self.next_lba == self.end_lba || self.error.is_some()
    }
}

pub struct IoQueuePair<R: Registers, D: Dma, C: Clock> {
    hw: Hw<R, D, C>,
    qid: u16,
    max_transfer_bytes: usize,
    sq: SubmissionQueue,
    cq: CompletionQueue,
    slots: Vec<CommandSlot>,
    free_cids: Vec<u16>,
    prp_lists: DmaRegion,
    list_pages_per_slot: usize,
    requests: Vec<Request>,
    free_requests: Vec<u32>,
    /// Requests with blocks left to submit, oldest first.
    pending: VecDeque<u32>,
    /// Requests finished but not yet delivered to the caller.
    done: VecDeque<u32>,
    queue_depth: u32,
    in_flight: u32,
    doorbell_pending: bool,
    io_timeout_ns: u64,
    last_health_check_ns: u64,
    failure: Option<NvmeError>,
    stats: QueuePairStats,
}

impl<R: Registers, D: Dma, C: Clock> IoQueuePair<R, D, C> {
    pub(crate) fn new(hw: Hw<R, D, C>, qid: u16, controller_max_transfer: usize, rings: (SubmissionQueue, CompletionQueue), opts: QueuePairOptions, io_timeout_ms: u64) -> Result<Self, NvmeError> {
        let (sq, cq) = rings;
        let page_size = hw.page_size;
        let max_qd = (sq.entries() - 1) as u32;
        let depth = opts.queue_depth.clamp(1, max_qd);
        let max_transfer = match opts.max_transfer_bytes {
            0 => controller_max_transfer,
            n => n.min(controller_max_transfer).max(512),
        };
        // Worst case: an unaligned buffer touches one page more than the size.
        let max_pages = max_transfer / page_size + 1;
        let list_pages = prp::list_pages_for(max_pages - 1, page_size);
        let prp_lists = hw.dma.alloc((depth as usize * list_pages).max(1) * page_size, page_size)?;
        let max_requests = opts.max_requests.max(1);
        let now = hw.clock.now_ns();
        Ok(Self {
            hw,
            qid,
            max_transfer_bytes: max_transfer,
            sq,
            cq,
            slots: alloc::vec![CommandSlot::default(); depth as usize],
            free_cids: (0..depth as u16).rev().collect(),
            prp_lists,
            list_pages_per_slot: list_pages,
            requests: alloc::vec![Request::default(); max_requests as usize],
            free_requests: (0..max_requests).rev().collect(),
            pending: VecDeque::with_capacity(max_requests as usize),
            done: VecDeque::with_capacity(max_requests as usize),
            queue_depth: depth,
            in_flight: 0,
            doorbell_pending: false,
            io_timeout_ns: io_timeout_ms * 1_000_000,
            last_health_check_ns: now,
            failure: None,
            stats: QueuePairStats::default(),
        })
    }

    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Current limit on commands in flight.
    pub fn queue_depth(&self) -> u32 {
        self.queue_depth
    }

    /// The deepest queue this pair was created for (entries - 1 at most).
    pub fn max_queue_depth(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Lowers (or restores) the in-flight limit, 1..=max_queue_depth.
    pub fn set_queue_depth(&mut self, depth: u32) {
        self.queue_depth = depth.clamp(1, self.max_queue_depth());
    }

    /// Bytes per command after MDTS (and option) capping.
    pub fn max_transfer_bytes(&self) -> usize {
        self.max_transfer_bytes
    }

    pub fn commands_in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Requests accepted and not yet delivered.
    pub fn active_requests(&self) -> usize {
        self.requests.len() - self.free_requests.len()
    }

    pub fn free_request_slots(&self) -> usize {
        self.free_requests.len()
    }

    pub fn is_idle(&self) -> bool {
        self.active_requests() == 0
    }

    /// The clock the pair times commands with (for callers' own timing).
    pub fn clock(&self) -> &C {
        &self.hw.clock
    }

    pub fn stats(&self) -> QueuePairStats {
        self.stats
    }

    /// The fatal error that stopped this pair, if any.
    pub fn failure(&self) -> Option<NvmeError> {
        self.failure
    }

    /// Queues a read of `dst.len()` bytes from `lba` of `ns`. Commands are
    /// written to the submission queue as far as the queue depth allows; the
    /// doorbell is rung by `flush` or `process_completions`, so many calls
    /// share one doorbell write. Refused before submission: reads past the
    /// namespace, lengths that are not whole blocks, a full request table.
    pub fn submit_read(&mut self, ns: &Namespace, lba: u64, dst: ReadBuffer, tag: u64) -> Result<(), NvmeError> {
        if self.failure.is_some() {
            return Err(NvmeError::Failed);
        }
        if dst.is_empty() {
            return Err(NvmeError::Buffer { lba, reason: BufferError::Empty });
        }
        if !dst.len().is_multiple_of(ns.block_size as usize) {
            return Err(NvmeError::Buffer { lba, reason: BufferError::NotBlockMultiple { len: dst.len(), block_size: ns.block_size } });
        }
        let blocks = (dst.len() / ns.block_size as usize) as u64;
        if lba.checked_add(blocks).is_none_or(|end| end > ns.blocks) {
            return Err(NvmeError::OutOfRange { nsid: ns.nsid, lba, blocks, namespace_blocks: ns.blocks });
        }
        let Some(index) = self.free_requests.pop() else {
            return Err(NvmeError::QueueFull { requests: self.requests.len() });
        };
        let max_blocks = ((self.max_transfer_bytes / ns.block_size as usize) as u32).clamp(1, 65536);
        self.requests[index as usize] = Request {
            active: true,
            tag,
            nsid: ns.nsid,
            block_size: ns.block_size,
            max_blocks,
            start_lba: lba,
            end_lba: lba + blocks,
            next_lba: lba,
            buf: dst.addr(),
            in_flight: 0,
            error: None,
        };
        self.pending.push_back(index);
        self.stats.requests += 1;
        self.fill();
        Ok(())
    }

    /// Rings the submission doorbell if commands were queued since the last ring.
    pub fn flush(&mut self) {
        if self.doorbell_pending {
            let tail = self.sq.publish();
            self.hw.regs.write32(self.hw.cap.sq_tail_doorbell(self.qid), tail as u32);
            self.doorbell_pending = false;
            self.stats.doorbells += 1;
        }
    }

    /// Moves blocks of pending requests into the submission queue while the
    /// queue depth allows.
    fn fill(&mut self) {
        while self.in_flight < self.queue_depth {
            let Some(&index) = self.pending.front() else { break };
            let req = self.requests[index as usize];
            if req.submission_done() {
                self.pending.pop_front();
                continue;
            }
            let Some(cid) = self.free_cids.pop() else { break };
            let blocks = (req.end_lba - req.next_lba).min(req.max_blocks as u64) as u32;
            let offset = ((req.next_lba - req.start_lba) * req.block_size as u64) as usize;
            let len = blocks as usize * req.block_size as usize;
            let area_off = cid as usize * self.list_pages_per_slot * self.hw.page_size;
            let area = ListArea { phys: self.prp_lists.phys() + area_off as u64, pages: self.list_pages_per_slot };
            let dma = &self.hw.dma;
            let lists = &mut self.prp_lists;
            let built = prp::build(req.buf + offset, len, self.hw.page_size, &|v| dma.virt_to_phys(v), area, |off, entry| lists.write_u64(area_off + off, entry));
            let (prp1, prp2) = match built {
                Ok(p) => p,
                Err(e) => {
                    self.free_cids.push(cid);
                    let r = &mut self.requests[index as usize];
                    r.error = Some(NvmeError::Buffer { lba: req.next_lba, reason: BufferError::Prp(e) });
                    self.pending.pop_front();
                    if r.in_flight == 0 {
                        self.done.push_back(index);
                    }
                    continue;
                }
            };
            let now = self.hw.clock.now_ns();
            self.sq.push(&Command::read(cid, req.nsid, req.next_lba, blocks, prp1, prp2));
            self.slots[cid as usize] = CommandSlot { in_flight: true, request: index, lba: req.next_lba, blocks, submitted_ns: now };
            let r = &mut self.requests[index as usize];
            r.next_lba += blocks as u64;
            r.in_flight += 1;
            if r.next_lba == r.end_lba {
                self.pending.pop_front();
            }
            self.in_flight += 1;
            self.stats.commands += 1;
            self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight);
            self.doorbell_pending = true;
        }
    }

    /// Reaps completed commands (at most `max_commands`, 0 = all available),
    /// matches them to requests by command id, refills the submission queue,
    /// rings each doorbell at most once, and calls `on_complete` for every
    /// request whose commands have all completed. Returns the number of
    /// requests delivered. A fatal condition (CSTS.CFS, a command past its
    /// timeout, a completion for an unknown command id) stops the queue pair,
    /// disables the controller so no DMA can land later, and returns the error.
    pub fn process_completions(&mut self, max_commands: u32, mut on_complete: impl FnMut(ReadCompletion)) -> Result<usize, NvmeError> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        self.flush();
        self.stats.polls += 1;
        let mut reaped = 0u32;
        while max_commands == 0 || reaped < max_commands {
            let Some(cpl) = self.cq.peek() else { break };
            let cid = cpl.cid();
            let slot = match self.slots.get(cid as usize) {
                Some(s) if s.in_flight && cpl.sq_id() == self.qid => *s,
                _ => return Err(self.fail(NvmeError::UnexpectedCompletion { qid: self.qid, cid, sq_id: cpl.sq_id() })),
            };
            self.cq.advance();
            self.sq.set_head(cpl.sq_head());
            self.slots[cid as usize].in_flight = false;
            self.free_cids.push(cid);
            self.in_flight -= 1;
            reaped += 1;
            let r = &mut self.requests[slot.request as usize];
            r.in_flight -= 1;
            let status = cpl.status();
            if !status.is_success() && r.error.is_none() {
                let command = CommandInfo { opcode: Opcode::Read, qid: self.qid, cid, nsid: r.nsid, lba_range: Some((slot.lba, slot.blocks)) };
                r.error = Some(NvmeError::Command { command, status });
            }
            if r.in_flight == 0 && r.submission_done() {
                self.done.push_back(slot.request);
            }
        }
        if reaped > 0 {
            self.hw.regs.write32(self.hw.cap.cq_head_doorbell(self.qid), self.cq.head() as u32);
            self.stats.completions += reaped as u64;
        } else {
            self.stats.empty_polls += 1;
        }
        self.fill();
        self.flush();
        let delivered = self.done.len();
        while let Some(index) = self.done.pop_front() {
            let r = &mut self.requests[index as usize];
            let bytes = ((r.end_lba - r.start_lba) * r.block_size as u64) as usize;
            if r.error.is_none() {
                self.stats.bytes += bytes as u64;
            }
            let completion = ReadCompletion { tag: r.tag, lba: r.start_lba, bytes, result: r.error.map_or(Ok(()), Err), target: (r.buf, bytes) };
            r.active = false;
            self.free_requests.push(index);
            on_complete(completion);
        }
        if reaped == 0 && self.in_flight > 0 {
            self.health_check()?;
        }
        Ok(delivered)
    }

    /// Reads CSTS and the oldest command's age, at most once per interval.
    fn health_check(&mut self) -> Result<(), NvmeError> {
        let now = self.hw.clock.now_ns();
        if now.saturating_sub(self.last_health_check_ns) < HEALTH_CHECK_INTERVAL_NS {
            return Ok(());
        }
        self.last_health_check_ns = now;
        let s = self.hw.regs.read32(regs::CSTS);
        if s == !0 {
            return Err(self.fail(NvmeError::DeviceGone));
        }
        if s & csts::CFS != 0 {
            return Err(self.fail(NvmeError::ControllerFatal { csts: s, during: "I/O" }));
        }
        let oldest = self.slots.iter().enumerate().filter(|(_, s)| s.in_flight).min_by_key(|(_, s)| s.submitted_ns);
        if let Some((cid, slot)) = oldest {
            let age = now.saturating_sub(slot.submitted_ns);
            if age > self.io_timeout_ns {
                let nsid = self.requests[slot.request as usize].nsid;
                let command = CommandInfo { opcode: Opcode::Read, qid: self.qid, cid: cid as u16, nsid, lba_range: Some((slot.lba, slot.blocks)) };
                return Err(self.fail(NvmeError::Timeout { command, waited_ms: age / 1_000_000 }));
            }
        }
        Ok(())
    }

    /// Records a fatal error and disables the controller (CC.EN = 0), which
    /// aborts every outstanding command: after this no DMA lands in caller
    /// buffers, so they may be reused.
    fn fail(&mut self, error: NvmeError) -> NvmeError {
        if self.failure.is_none() {
            self.failure = Some(error);
            let cc = self.hw.regs.read32(regs::CC);
            if cc != !0 {
                self.hw.regs.write32(regs::CC, cc & !1);
                let _ = super::controller::wait_csts(&self.hw.regs, &self.hw.clock, self.hw.cap.ready_timeout_ms.max(500), false);
            }
        }
        error
    }

    /// Reads `dst.len()` bytes from `lba` and waits: the simple path for
    /// headers and tests. Needs an idle queue pair (no other request's
    /// completion may be swallowed here).
    pub fn read(&mut self, ns: &Namespace, lba: u64, dst: &mut [u8]) -> Result<(), NvmeError> {
        if self.failure.is_some() {
            return Err(NvmeError::Failed);
        }
        if !self.is_idle() {
            return Err(NvmeError::Busy { active_requests: self.active_requests() });
        }
        // SAFETY: `dst` is exclusively borrowed for this whole call, and the
        // call returns only after the request completed or the pair failed
        // (which disables the controller, ending all DMA).
        let buf = unsafe { ReadBuffer::new(dst.as_mut_ptr(), dst.len()) };
        self.submit_read(ns, lba, buf, 0)?;
        let mut result = None;
        while result.is_none() {
            self.process_completions(0, |c| result = Some(c.result))?;
            core::hint::spin_loop();
        }
        result.unwrap()
    }

    /// Waits until every accepted request has been delivered to `on_complete`.
    pub fn drain(&mut self, mut on_complete: impl FnMut(ReadCompletion)) -> Result<(), NvmeError> {
        while !self.is_idle() {
            self.process_completions(0, &mut on_complete)?;
            core::hint::spin_loop();
        }
        Ok(())
    }
}
