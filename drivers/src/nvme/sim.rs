//! A software model of an NVMe controller, for running the real driver on
//! the host: registers, doorbells that make the model fetch and execute
//! commands from queues in (model) physical memory, PRP walking, Identify,
//! queue creation, reads from in-memory namespaces, and injectable faults
//! (error statuses for LBA ranges, fatal status, lost commands, commands
//! completed out of order or held back, bogus command ids, never-ready).
//!
//! Physical memory is simulated by [`SimDma`]: allocations and registered
//! buffers get fake physical addresses (registered buffers page by page, in
//! scattered order) so virt/phys mix-ups and PRP mistakes show up as wrong
//! data or model-reported errors.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::command::{Command, Completion};
use super::regs;
use super::status::Status;
use crate::hw::{Clock, Dma, DmaAllocError, DmaRegion, Registers};

const PAGE: u64 = 4096;

/// Host memory with fake physical addresses, 4 KiB granular.
#[derive(Default)]
pub struct SimDma {
    virt_to_phys: RefCell<BTreeMap<u64, u64>>,
    phys_to_virt: RefCell<BTreeMap<u64, u64>>,
    arenas: RefCell<Vec<Vec<u64>>>,
    next_phys: Cell<u64>,
    next_scattered: Cell<u64>,
    /// Total bytes handed out by `alloc`.
    pub allocated: Cell<usize>,
}

impl SimDma {
    pub fn new() -> Self {
        let d = Self::default();
        d.next_phys.set(0x1_0000_0000);
        d.next_scattered.set(0x80_0000_0000);
        d
    }

    fn map_page(&self, virt: u64, phys: u64) {
        self.virt_to_phys.borrow_mut().insert(virt, phys);
        self.phys_to_virt.borrow_mut().insert(phys, virt);
    }

    /// Makes `buf` DMA-able with every 4 KiB page at an unrelated physical
    /// page (descending addresses), like user memory in a paged OS. The
    /// buffer must outlive every use of its addresses.
    pub fn map_scattered(&self, buf: &mut [u8]) {
        let start = buf.as_ptr() as u64 & !(PAGE - 1);
        let end = (buf.as_ptr() as u64 + buf.len() as u64).div_ceil(PAGE) * PAGE;
        let mut v = start;
        while v < end {
            let p = self.next_scattered.get();
            self.next_scattered.set(p - 3 * PAGE);
            self.map_page(v, p);
            v += PAGE;
        }
    }

    /// Makes `buf` DMA-able as physically contiguous memory (identity-like).
    pub fn map_contiguous(&self, buf: &mut [u8]) {
        let start = buf.as_ptr() as u64 & !(PAGE - 1);
        let end = (buf.as_ptr() as u64 + buf.len() as u64).div_ceil(PAGE) * PAGE;
        // Keep the offset within 2 MiB, as an identity or large-page mapping does.
        let phys = self.next_phys.get().div_ceil(2 << 20) * (2 << 20) + start % (2 << 20);
        self.next_phys.set(phys + (end - start) + PAGE);
        for i in 0..(end - start) / PAGE {
            self.map_page(start + i * PAGE, phys + i * PAGE);
        }
    }

    fn phys_to_ptr(&self, phys: u64) -> Option<*mut u8> {
        let page = phys & !(PAGE - 1);
        self.phys_to_virt.borrow().get(&page).map(|v| (v + (phys - page)) as *mut u8)
    }

    /// Device-side copy out of physical memory; `None` if any byte is unmapped.
    pub fn read_phys(&self, phys: u64, out: &mut [u8]) -> Option<()> {
        let mut done = 0usize;
        while done < out.len() {
            let p = phys + done as u64;
            let n = ((PAGE - p % PAGE) as usize).min(out.len() - done);
            let src = self.phys_to_ptr(p)?;
            // SAFETY: the page is in our map, so it belongs to an arena we own
            // or a buffer the test registered and keeps alive; n stays within it.
            unsafe { core::ptr::copy_nonoverlapping(src, out[done..].as_mut_ptr(), n) };
            done += n;
        }
        Some(())
    }

    /// Device-side copy into physical memory; `None` if any byte is unmapped.
    pub fn write_phys(&self, phys: u64, data: &[u8]) -> Option<()> {
        let mut done = 0usize;
        while done < data.len() {
            let p = phys + done as u64;
            let n = ((PAGE - p % PAGE) as usize).min(data.len() - done);
            let dst = self.phys_to_ptr(p)?;
            // SAFETY: as in read_phys; the model is the simulated device, the
            // only writer while a command owns the buffer.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), dst, n) };
            done += n;
        }
        Some(())
    }

    fn read_u32(&self, phys: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read_phys(phys, &mut b)?;
        Some(u32::from_le_bytes(b))
    }

    fn read_u64(&self, phys: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_phys(phys, &mut b)?;
        Some(u64::from_le_bytes(b))
    }
}

impl Dma for SimDma {
    fn alloc(&self, bytes: usize, align: usize) -> Result<DmaRegion, DmaAllocError> {
        let align = (align as u64).max(PAGE);
        let padded = bytes.div_ceil(PAGE as usize) * PAGE as usize;
        let mut arena = vec![0u64; (padded + align as usize) / 8 + 1];
        let base = arena.as_mut_ptr() as u64;
        let virt = base.div_ceil(align) * align;
        let phys = self.next_phys.get().div_ceil(align) * align;
        self.next_phys.set(phys + padded as u64 + PAGE); // leave a hole between regions
        for i in 0..padded as u64 / PAGE {
            self.map_page(virt + i * PAGE, phys + i * PAGE);
        }
        self.arenas.borrow_mut().push(arena);
        self.allocated.set(self.allocated.get() + bytes);
        // SAFETY: the arena is kept alive in self.arenas (its heap block never
        // moves), virt..virt+bytes lies inside it, and the fake phys pages map
        // back to exactly these bytes.
        Ok(unsafe { DmaRegion::from_raw(virt as *mut u8, phys, bytes) })
    }

    fn virt_to_phys(&self, virt: usize) -> Option<u64> {
        let page = virt as u64 & !(PAGE - 1);
        self.virt_to_phys.borrow().get(&page).map(|p| p + (virt as u64 - page))
    }
}

/// A clock that advances by `step_ns` on every reading (so timeouts expire
/// in tests without waiting).
pub struct SimClock {
    now: Cell<u64>,
    pub step_ns: Cell<u64>,
}

impl SimClock {
    pub fn new(step_ns: u64) -> Self {
        Self { now: Cell::new(0), step_ns: Cell::new(step_ns) }
    }

    pub fn advance(&self, ns: u64) {
        self.now.set(self.now.get() + ns);
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        let t = self.now.get() + self.step_ns.get();
        self.now.set(t);
        t
    }
}

/// Controller parameters and injected faults.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// CAP.MQES (0-based maximum queue entries).
    pub mqes: u16,
    pub dstrd: u8,
    pub mpsmin: u8,
    /// CAP.TO in 500 ms units.
    pub timeout_units: u8,
    /// Identify Controller MDTS (0 = unlimited).
    pub mdts: u8,
    pub version: u32,
    pub io_queue_pairs: u16,
    pub model: &'static str,
    pub serial: &'static str,
    /// Never set CSTS.RDY after enable.
    pub never_ready: bool,
    /// Reads touching this LBA range of any namespace fail with the status.
    pub fail_lbas: Option<(u64, u64, Status)>,
    /// Set CSTS.CFS (and stop executing) after this many I/O commands.
    pub fatal_after_io_commands: Option<u64>,
    /// Fetch I/O commands but never complete them.
    pub lose_io_commands: bool,
    /// Post each doorbell's batch of completions in reverse order.
    pub reverse_completions: bool,
    /// Keep completions until `release_completions`.
    pub hold_completions: bool,
    /// Post one completion with a command id nobody issued.
    pub bogus_cid: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            mqes: 2047,
            dstrd: 0,
            mpsmin: 0,
            timeout_units: 2,
            mdts: 7,
            version: 0x0001_0400,
            io_queue_pairs: 4,
            model: "AXIOM simulated NVMe",
            serial: "SIM0001",
            never_ready: false,
            fail_lbas: None,
            fatal_after_io_commands: None,
            lose_io_commands: false,
            reverse_completions: false,
            hold_completions: false,
            bogus_cid: false,
        }
    }
}

/// One namespace's contents and format.
pub struct SimNamespace {
    pub block_shift: u8,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Default)]
struct SimSq {
    base: u64,
    entries: u16,
    head: u16,
    tail: u16,
    cqid: u16,
}

#[derive(Clone, Copy, Default)]
struct SimCq {
    base: u64,
    entries: u16,
    tail: u16,
    head: u16,
    phase: bool,
}

/// What the model saw: for assertions in tests.
#[derive(Clone, Default, Debug)]
pub struct SimLog {
    pub io_commands: Vec<Command>,
    pub admin_commands: Vec<Command>,
    pub sq_doorbells: u64,
    pub cq_doorbells: u64,
    /// Most I/O commands fetched and not yet reaped by the host (CQ head).
    pub max_outstanding: usize,
    /// Completions posted per pass around each CQ: phase flips seen.
    pub cq_wraps: u64,
    pub cc_writes: Vec<u32>,
}

struct State {
    cfg: SimConfig,
    cc: u32,
    csts: u32,
    aqa: u32,
    asq: u64,
    acq: u64,
    sqs: BTreeMap<u16, SimSq>,
    cqs: BTreeMap<u16, SimCq>,
    /// Completions waiting for CQ space or release, per CQ.
    pending: VecDeque<(u16, Completion)>,
    held: VecDeque<(u16, Completion)>,
    io_commands_done: u64,
    outstanding: usize,
    log: SimLog,
}

pub struct SimController<'m> {
    mem: &'m SimDma,
    namespaces: RefCell<Vec<SimNamespace>>,
    state: RefCell<State>,
}

impl<'m> SimController<'m> {
    pub fn new(mem: &'m SimDma, cfg: SimConfig, namespaces: Vec<SimNamespace>) -> Self {
        Self {
            mem,
            namespaces: RefCell::new(namespaces),
            state: RefCell::new(State {
                cfg,
                cc: 0,
                csts: 0,
                aqa: 0,
                asq: 0,
                acq: 0,
                sqs: BTreeMap::new(),
                cqs: BTreeMap::new(),
                pending: VecDeque::new(),
                held: VecDeque::new(),
                io_commands_done: 0,
                outstanding: 0,
                log: SimLog::default(),
            }),
        }
    }

    pub fn log(&self) -> SimLog {
        self.state.borrow().log.clone()
    }

    pub fn config_mut(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.state.borrow_mut().cfg)
    }

    /// Posts held completions (up to `n`, 0 = all).
    pub fn release_completions(&self, n: usize) {
        let mut s = self.state.borrow_mut();
        let count = if n == 0 { s.held.len() } else { n.min(s.held.len()) };
        for _ in 0..count {
            let c = s.held.pop_front().unwrap();
            s.pending.push_back(c);
        }
        drop(s);
        self.post_pending();
    }

    pub fn held_completions(&self) -> usize {
        self.state.borrow().held.len()
    }

    fn cap(cfg: &SimConfig) -> u64 {
        let mut cap = cfg.mqes as u64;
        cap |= 1 << 16; // CQR
        cap |= (cfg.timeout_units as u64) << 24;
        cap |= (cfg.dstrd as u64) << 32;
        cap |= 1 << 37; // CSS: NVM
        cap |= (cfg.mpsmin as u64) << 48;
        cap |= ((cfg.mpsmin as u64) + 4) << 52;
        cap
    }

    fn doorbell(&self, offset: usize) -> Option<(u16, bool)> {
        let stride = 4usize << self.state.borrow().cfg.dstrd;
        if offset < regs::DOORBELL_BASE || !(offset - regs::DOORBELL_BASE).is_multiple_of(stride) {
            return None;
        }
        let index = (offset - regs::DOORBELL_BASE) / stride;
        Some(((index / 2) as u16, index % 2 == 1))
    }

    fn write_cc(&self, value: u32) {
        let mut s = self.state.borrow_mut();
        s.log.cc_writes.push(value);
        let was = s.cc & 1;
        s.cc = value;
        if was == 0 && value & 1 == 1 {
            let mps = (value >> 7) & 0xF;
            let good = s.asq != 0 && s.acq != 0 && (value >> 16) & 0xF == 6 && (value >> 20) & 0xF == 4 && mps >= s.cfg.mpsmin as u32;
            if !good {
                s.csts |= regs::csts::CFS;
            }
            let asqs = (s.aqa & 0xFFF) as u16 + 1;
            let acqs = ((s.aqa >> 16) & 0xFFF) as u16 + 1;
            let (asq, acq) = (s.asq, s.acq);
            s.sqs.insert(0, SimSq { base: asq, entries: asqs, head: 0, tail: 0, cqid: 0 });
            s.cqs.insert(0, SimCq { base: acq, entries: acqs, tail: 0, head: 0, phase: true });
            if !s.cfg.never_ready {
                s.csts |= regs::csts::RDY;
            }
        } else if was == 1 && value & 1 == 0 {
            // Controller reset: queues gone, status cleared.
            s.sqs.clear();
            s.cqs.clear();
            s.pending.clear();
            s.held.clear();
            s.outstanding = 0;
            s.csts = 0;
        }
        if (value >> 14) & 3 != 0 {
            s.csts = (s.csts & !regs::csts::SHST_MASK) | (0b10 << 2);
        }
    }

    fn ring_sq(&self, qid: u16, tail: u16) {
        {
            let mut s = self.state.borrow_mut();
            s.log.sq_doorbells += 1;
            if s.csts & regs::csts::CFS != 0 || s.cc & 1 == 0 {
                return;
            }
            match s.sqs.get_mut(&qid) {
                Some(sq) if tail < sq.entries => sq.tail = tail,
                _ => {
                    s.csts |= regs::csts::CFS; // invalid doorbell write
                    return;
                }
            }
        }
        let mut batch = Vec::new();
        loop {
            let (sq, entry) = {
                let mut s = self.state.borrow_mut();
                let sq = s.sqs.get_mut(&qid).unwrap();
                if sq.head == sq.tail {
                    break;
                }
                let at = sq.base + sq.head as u64 * 64;
                sq.head = (sq.head + 1) % sq.entries;
                (*sq, at)
            };
            let mut cmd = Command::default();
            for i in 0..16 {
                cmd.dw[i] = self.mem.read_u32(entry + i as u64 * 4).expect("model: SQ entry not in DMA memory");
            }
            let (result, status) = if qid == 0 { self.admin(&cmd) } else { self.io(&cmd) };
            let mut s = self.state.borrow_mut();
            if qid != 0 {
                s.io_commands_done += 1;
                if s.cfg.fatal_after_io_commands.is_some_and(|n| s.io_commands_done > n) {
                    s.csts |= regs::csts::CFS;
                    return;
                }
                if s.cfg.lose_io_commands {
                    continue;
                }
                s.outstanding += 1;
                s.log.max_outstanding = s.log.max_outstanding.max(s.outstanding);
            }
            let mut cid = cmd.cid();
            if qid != 0 && s.cfg.bogus_cid {
                s.cfg.bogus_cid = false;
                cid = cid.wrapping_add(0x7000);
            }
            batch.push((sq.cqid, Completion::new(result, sq.head, qid, cid, false, status)));
        }
        {
            let mut s = self.state.borrow_mut();
            if s.cfg.reverse_completions {
                batch.reverse();
            }
            let hold = s.cfg.hold_completions && qid != 0;
            for c in batch {
                if hold {
                    s.held.push_back(c);
                } else {
                    s.pending.push_back(c);
                }
            }
        }
        self.post_pending();
    }

    /// Writes pending completions into their CQs while there is room.
    fn post_pending(&self) {
        let mut s = self.state.borrow_mut();
        let mut keep = VecDeque::new();
        while let Some((cqid, mut c)) = s.pending.pop_front() {
            let Some(cq) = s.cqs.get_mut(&cqid) else { continue };
            if (cq.tail + 1) % cq.entries == cq.head {
                keep.push_back((cqid, c));
                continue;
            }
            c.dw[3] = (c.dw[3] & !(1 << 16)) | (cq.phase as u32) << 16;
            let at = cq.base + cq.tail as u64 * 16;
            cq.tail += 1;
            let wrapped = cq.tail == cq.entries;
            if wrapped {
                cq.tail = 0;
                cq.phase = !cq.phase;
            }
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&c.dw[i].to_le_bytes());
            }
            self.mem.write_phys(at, &bytes).expect("model: CQ not in DMA memory");
            if wrapped {
                s.log.cq_wraps += 1;
            }
        }
        s.pending = keep;
    }

    fn ring_cq(&self, qid: u16, head: u16) {
        {
            let mut s = self.state.borrow_mut();
            s.log.cq_doorbells += 1;
            let Some(cq) = s.cqs.get_mut(&qid) else {
                s.csts |= regs::csts::CFS;
                return;
            };
            let consumed = (head + cq.entries - cq.head) % cq.entries;
            cq.head = head;
            if qid != 0 {
                s.outstanding = s.outstanding.saturating_sub(consumed as usize);
            }
        }
        self.post_pending();
    }

    fn admin(&self, cmd: &Command) -> (u32, Status) {
        let mut s = self.state.borrow_mut();
        s.log.admin_commands.push(*cmd);
        let page = 4096u64 << s.cfg.mpsmin;
        match cmd.opcode() {
            0x06 => {
                let mut data = [0u8; 4096];
                let nss = self.namespaces.borrow();
                match cmd.dw[10] & 0xFF {
                    0x01 => {
                        data[0..2].copy_from_slice(&0x1B36u16.to_le_bytes());
                        pad(&mut data[4..24], s.cfg.serial);
                        pad(&mut data[24..64], s.cfg.model);
                        pad(&mut data[64..72], "1.0");
                        data[77] = s.cfg.mdts;
                        data[80..84].copy_from_slice(&s.cfg.version.to_le_bytes());
                        data[512] = 0x66;
                        data[513] = 0x44;
                        data[516..520].copy_from_slice(&(nss.len() as u32).to_le_bytes());
                    }
                    0x00 => {
                        let nsid = cmd.nsid();
                        if nsid == 0 || nsid as usize > nss.len() {
                            return (0, Status::new(0, 0x0B));
                        }
                        let ns = &nss[nsid as usize - 1];
                        let blocks = (ns.data.len() >> ns.block_shift) as u64;
                        data[0..8].copy_from_slice(&blocks.to_le_bytes());
                        data[8..16].copy_from_slice(&blocks.to_le_bytes());
                        data[25] = 1; // two formats
                        data[26] = 1; // formatted with format 1
                        data[128..132].copy_from_slice(&(9u32 << 16).to_le_bytes());
                        data[132..136].copy_from_slice(&((ns.block_shift as u32) << 16).to_le_bytes());
                    }
                    0x02 => {
                        for i in 0..nss.len() {
                            data[i * 4..i * 4 + 4].copy_from_slice(&(i as u32 + 1).to_le_bytes());
                        }
                    }
                    _ => return (0, Status::new(0, 0x02)),
                }
                if !cmd.prp1().is_multiple_of(page) || self.mem.write_phys(cmd.prp1(), &data).is_none() {
                    return (0, Status::new(0, 0x04));
                }
                (0, Status::SUCCESS)
            }
            0x09 if cmd.dw[10] & 0xFF == 0x07 => {
                let n = s.cfg.io_queue_pairs as u32 - 1;
                (n | n << 16, Status::SUCCESS)
            }
            0x05 | 0x01 => {
                let qid = (cmd.dw[10] & 0xFFFF) as u16;
                let entries = (cmd.dw[10] >> 16) + 1;
                if qid == 0 || qid > s.cfg.io_queue_pairs {
                    return (0, Status::new(1, 0x01));
                }
                if entries < 2 || entries > s.cfg.mqes as u32 + 1 {
                    return (0, Status::new(1, 0x02));
                }
                if cmd.dw[11] & 1 == 0 || !cmd.prp1().is_multiple_of(page) {
                    return (0, Status::new(0, 0x02));
                }
                if cmd.opcode() == 0x05 {
                    if s.cqs.contains_key(&qid) {
                        return (0, Status::new(1, 0x01));
                    }
                    s.cqs.insert(qid, SimCq { base: cmd.prp1(), entries: entries as u16, tail: 0, head: 0, phase: true });
                } else {
                    let cqid = (cmd.dw[11] >> 16) as u16;
                    if !s.cqs.contains_key(&cqid) {
                        return (0, Status::new(1, 0x00));
                    }
                    if s.sqs.contains_key(&qid) {
                        return (0, Status::new(1, 0x01));
                    }
                    s.sqs.insert(qid, SimSq { base: cmd.prp1(), entries: entries as u16, head: 0, tail: 0, cqid });
                }
                (0, Status::SUCCESS)
            }
            _ => (0, Status::new(0, 0x01)),
        }
    }

    fn io(&self, cmd: &Command) -> (u32, Status) {
        let (mdts, fail, page) = {
            let mut s = self.state.borrow_mut();
            s.log.io_commands.push(*cmd);
            (s.cfg.mdts, s.cfg.fail_lbas, 4096u64 << s.cfg.mpsmin)
        };
        if cmd.opcode() != 0x02 {
            return (0, Status::new(0, 0x01));
        }
        let nss = self.namespaces.borrow();
        let nsid = cmd.nsid();
        if nsid == 0 || nsid as usize > nss.len() {
            return (0, Status::new(0, 0x0B));
        }
        let ns = &nss[nsid as usize - 1];
        let (slba, blocks) = cmd.lba_range();
        let ns_blocks = (ns.data.len() >> ns.block_shift) as u64;
        if slba + blocks as u64 > ns_blocks {
            return (0, Status::new(0, 0x80));
        }
        let len = (blocks as u64) << ns.block_shift;
        if mdts != 0 && len > page << mdts {
            return (0, Status::new(0, 0x02));
        }
        if let Some((first, last, status)) = fail {
            if slba <= last && slba + blocks as u64 > first {
                return (0, status);
            }
        }
        // Walk the PRPs exactly as a controller does.
        let mut pages = Vec::new();
        let prp1 = cmd.prp1();
        if !prp1.is_multiple_of(4) {
            return (0, Status::new(0, 0x13));
        }
        let first_len = (page - prp1 % page).min(len);
        pages.push((prp1, first_len));
        let mut left = len - first_len;
        if left > 0 {
            let prp2 = cmd.prp2();
            if left <= page {
                if !prp2.is_multiple_of(page) {
                    return (0, Status::new(0, 0x13));
                }
                pages.push((prp2, left));
            } else {
                let mut list = prp2;
                if !list.is_multiple_of(8) {
                    return (0, Status::new(0, 0x13));
                }
                while left > 0 {
                    let at_last_slot = (list + 8).is_multiple_of(page);
                    let Some(entry) = self.mem.read_u64(list) else { return (0, Status::new(0, 0x04)) };
                    if at_last_slot && left > page {
                        list = entry; // chain to the next list page
                        if !list.is_multiple_of(page) {
                            return (0, Status::new(0, 0x13));
                        }
                        continue;
                    }
                    if entry % page != 0 {
                        return (0, Status::new(0, 0x13));
                    }
                    let n = left.min(page);
                    pages.push((entry, n));
                    left -= n;
                    list += 8;
                }
            }
        }
        let mut off = (slba << ns.block_shift) as usize;
        for (p, n) in pages {
            if self.mem.write_phys(p, &ns.data[off..off + n as usize]).is_none() {
                return (0, Status::new(0, 0x04));
            }
            off += n as usize;
        }
        (0, Status::SUCCESS)
    }
}

fn pad(field: &mut [u8], s: &str) {
    field.fill(b' ');
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

impl Registers for SimController<'_> {
    fn read32(&self, offset: usize) -> u32 {
        let s = self.state.borrow();
        match offset {
            regs::CAP => Self::cap(&s.cfg) as u32,
            o if o == regs::CAP + 4 => (Self::cap(&s.cfg) >> 32) as u32,
            regs::VS => s.cfg.version,
            regs::CC => s.cc,
            regs::CSTS => s.csts,
            regs::AQA => s.aqa,
            regs::ASQ => s.asq as u32,
            o if o == regs::ASQ + 4 => (s.asq >> 32) as u32,
            regs::ACQ => s.acq as u32,
            o if o == regs::ACQ + 4 => (s.acq >> 32) as u32,
            _ => 0,
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        match offset {
            regs::CC => self.write_cc(value),
            regs::AQA => self.state.borrow_mut().aqa = value,
            regs::ASQ => {
                let mut s = self.state.borrow_mut();
                s.asq = (s.asq & !0xFFFF_FFFF) | value as u64;
            }
            o if o == regs::ASQ + 4 => {
                let mut s = self.state.borrow_mut();
                s.asq = (s.asq & 0xFFFF_FFFF) | (value as u64) << 32;
            }
            regs::ACQ => {
                let mut s = self.state.borrow_mut();
                s.acq = (s.acq & !0xFFFF_FFFF) | value as u64;
            }
            o if o == regs::ACQ + 4 => {
                let mut s = self.state.borrow_mut();
                s.acq = (s.acq & 0xFFFF_FFFF) | (value as u64) << 32;
            }
            regs::INTMS => {}
            o => match self.doorbell(o) {
                Some((qid, false)) => self.ring_sq(qid, value as u16),
                Some((qid, true)) => self.ring_cq(qid, value as u16),
                None => {}
            },
        }
    }
}
