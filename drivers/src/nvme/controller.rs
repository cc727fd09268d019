//! Controller bring-up and the admin queue (NVMe base spec, "Controller
//! Initialization"): reset, admin queues, enable, Identify, I/O queue creation.

use super::command::{cns, Command, CommandInfo, Completion, Opcode};
use super::error::NvmeError;
use super::identify::{ControllerIdentity, NamespaceIdentity};
use super::qpair::{IoQueuePair, QueuePairOptions};
use super::queue::{CompletionQueue, SubmissionQueue, CQ_ENTRY_BYTES, SQ_ENTRY_BYTES};
use super::regs::{self, csts, Capabilities};
use crate::hw::{Clock, Dma, DmaRegion, Registers};

/// Transfers per command are capped here when the controller reports no
/// MDTS limit (MDTS = 0), so PRP lists stay small and pre-allocatable.
pub const UNLIMITED_MDTS_CAP: usize = 2 << 20;

#[derive(Clone, Copy, Debug)]
pub struct ControllerOptions {
    /// Admin queue entries (2..=4096, capped by CAP.MQES).
    pub admin_entries: u16,
    /// Timeout for one admin command.
    pub admin_timeout_ms: u64,
    /// Timeout for one I/O command (inherited by queue pairs).
    pub io_timeout_ms: u64,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self { admin_entries: 32, admin_timeout_ms: 10_000, io_timeout_ms: 10_000 }
    }
}

/// A namespace as the read path needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub nsid: u32,
    pub block_size: u32,
    pub blocks: u64,
    /// Largest transfer per command (MDTS, capped), a multiple of `block_size`.
    pub max_transfer_bytes: usize,
    pub identity: NamespaceIdentity,
}

impl Namespace {
    pub fn bytes(&self) -> u64 {
        self.blocks * self.block_size as u64
    }

    pub fn max_blocks_per_command(&self) -> u32 {
        (self.max_transfer_bytes / self.block_size as usize) as u32
    }
}

pub(crate) struct AdminQueue {
    sq: SubmissionQueue,
    cq: CompletionQueue,
    next_cid: u16,
}

/// An initialized, enabled controller with its admin queue.
pub struct Controller<R: Registers + Clone, D: Dma + Clone, C: Clock + Clone> {
    hw: Hw<R, D, C>,
    version: u32,
    options: ControllerOptions,
    admin: AdminQueue,
    identify_page: DmaRegion,
    identity: ControllerIdentity,
    /// I/O queue pairs granted by Set Features (Number of Queues).
    io_queues_granted: u16,
    next_io_qid: u16,
}

/// The controller's hardware handles, shared (cloned) by its queue pairs.
#[derive(Clone)]
pub(crate) struct Hw<R, D, C> {
    pub regs: R,
    pub dma: D,
    pub clock: C,
    pub cap: Capabilities,
    /// Controller memory page size in use (CC.MPS = CAP.MPSMIN).
    pub page_size: usize,
}

/// Polls `done` until it returns true, failing after `timeout_ms` or when the
/// controller reports a fatal status.
pub(crate) fn wait_csts<R: Registers, C: Clock>(regs: &R, clock: &C, timeout_ms: u64, want_ready: bool) -> Result<(), NvmeError> {
    let start = clock.now_ns();
    loop {
        let s = regs.read32(regs::CSTS);
        if s == !0 {
            return Err(NvmeError::DeviceGone);
        }
        if (s & csts::RDY != 0) == want_ready {
            return Ok(());
        }
        // A fatal status while enabling will never become ready; while
        // disabling, CFS may legitimately stay set until the reset completes.
        if want_ready && s & csts::CFS != 0 {
            return Err(NvmeError::ControllerFatal { csts: s, during: "controller enable" });
        }
        let waited = (clock.now_ns() - start) / 1_000_000;
        if waited > timeout_ms {
            return Err(NvmeError::ReadyTimeout { enable: want_ready, waited_ms: waited });
        }
        core::hint::spin_loop();
    }
}

impl<R: Registers + Clone, D: Dma + Clone, C: Clock + Clone> Controller<R, D, C> {
    /// Resets and enables the controller, then identifies it.
    pub fn init(regs: R, dma: D, clock: C, options: ControllerOptions) -> Result<Self, NvmeError> {
        let cap_raw = regs.read64(regs::CAP);
        if cap_raw == !0 {
            return Err(NvmeError::DeviceGone);
        }
        let cap = Capabilities::decode(cap_raw);
        if !cap.nvm_command_set {
            return Err(NvmeError::Unsupported { what: "NVM command set not in CAP.CSS", value: cap_raw });
        }
        // Ready timeout: CAP.TO, but never less than 500 ms (TO = 0 is seen on
        // sloppy emulations).
        let ready_ms = cap.ready_timeout_ms.max(500);
        let page_size = cap.min_page_size;
        let version = regs.read32(regs::VS);

        // Reset: if an enable is in progress let it finish, then disable.
        let cc = regs.read32(regs::CC);
        if cc & 1 != 0 {
            if regs.read32(regs::CSTS) & csts::RDY == 0 {
                // Ignore the result: a failed enable is cleared by the disable below.
                let _ = wait_csts(&regs, &clock, ready_ms, true);
            }
            regs.write32(regs::CC, cc & !1);
        }
        wait_csts(&regs, &clock, ready_ms, false)?;

        let admin_entries = options.admin_entries.clamp(2, cap.max_queue_entries.min(4096) as u16);
        let sq_mem = dma.alloc(admin_entries as usize * SQ_ENTRY_BYTES, page_size)?;
        let cq_mem = dma.alloc(admin_entries as usize * CQ_ENTRY_BYTES, page_size)?;
        let admin = AdminQueue { sq: SubmissionQueue::new(sq_mem, admin_entries), cq: CompletionQueue::new(cq_mem, admin_entries), next_cid: 0 };
        regs.write32(regs::AQA, regs::aqa(admin_entries as u32, admin_entries as u32));
        regs.write64(regs::ASQ, admin.sq.phys());
        regs.write64(regs::ACQ, admin.cq.phys());
        regs.write32(regs::INTMS, !0); // we poll: mask every vector
        regs.write32(regs::CC, regs::cc_enable(page_size));
        wait_csts(&regs, &clock, ready_ms, true)?;

        let identify_page = dma.alloc(4096, page_size.max(4096))?;
        let mut ctrl = Self {
            hw: Hw { regs, dma, clock, cap, page_size },
            version,
            options,
            admin,
            identify_page,
            identity: ControllerIdentity::parse(&[0; 4096]),
            io_queues_granted: 0,
            next_io_qid: 1,
        };
        let page = ctrl.identify(cns::CONTROLLER, 0)?;
        ctrl.identity = ControllerIdentity::parse(&page);
        let id = ctrl.identity;
        if id.sqes.0 > 6 || (id.sqes.1 != 0 && id.sqes.1 < 6) {
            return Err(NvmeError::Unsupported { what: "64-byte submission queue entries (SQES)", value: id.sqes.0 as u64 | (id.sqes.1 as u64) << 4 });
        }
        if id.cqes.0 > 4 || (id.cqes.1 != 0 && id.cqes.1 < 4) {
            return Err(NvmeError::Unsupported { what: "16-byte completion queue entries (CQES)", value: id.cqes.0 as u64 | (id.cqes.1 as u64) << 4 });
        }
        // Ask for one I/O queue pair; the grant comes back 0-based in DW0.
        let cpl = ctrl.admin_command(Command::set_number_of_queues(0, 1, 1), None)?;
        let granted_sq = (cpl.result() & 0xFFFF) as u16 + 1;
        let granted_cq = (cpl.result() >> 16) as u16 + 1;
        ctrl.io_queues_granted = granted_sq.min(granted_cq);
        Ok(ctrl)
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.hw.cap
    }

    pub fn identity(&self) -> &ControllerIdentity {
        &self.identity
    }

    pub fn version(&self) -> (u16, u8, u8) {
        regs::version(self.version)
    }

    /// Controller memory page size in use (CC.MPS = CAP.MPSMIN).
    pub fn page_size(&self) -> usize {
        self.hw.page_size
    }

    /// Largest transfer per command: MDTS, or [`UNLIMITED_MDTS_CAP`].
    pub fn max_transfer_bytes(&self) -> usize {
        self.identity.mdts_bytes(self.hw.cap.min_page_size).unwrap_or(UNLIMITED_MDTS_CAP).min(UNLIMITED_MDTS_CAP.max(self.hw.page_size))
    }

    pub fn options(&self) -> &ControllerOptions {
        &self.options
    }

    fn check_fatal(&self, during: &'static str) -> Result<(), NvmeError> {
        let s = self.hw.regs.read32(regs::CSTS);
        if s == !0 {
            return Err(NvmeError::DeviceGone);
        }
        if s & csts::CFS != 0 {
            return Err(NvmeError::ControllerFatal { csts: s, during });
        }
        Ok(())
    }

    /// Issues one admin command and waits for its completion.
    fn admin_command(&mut self, mut cmd: Command, nsid_range: Option<(u64, u32)>) -> Result<Completion, NvmeError> {
        let cid = self.admin.next_cid;
        self.admin.next_cid = self.admin.next_cid.wrapping_add(1);
        cmd.set_cid(cid);
        let info = CommandInfo { opcode: opcode_of_admin(cmd.opcode()), qid: 0, cid, nsid: cmd.nsid(), lba_range: nsid_range };
        self.admin.sq.push(&cmd);
        let tail = self.admin.sq.publish();
        self.hw.regs.write32(self.hw.cap.sq_tail_doorbell(0), tail as u32);
        let start = self.hw.clock.now_ns();
        let mut spins = 0u32;
        loop {
            if let Some(cpl) = self.admin.cq.peek() {
                self.admin.cq.advance();
                self.hw.regs.write32(self.hw.cap.cq_head_doorbell(0), self.admin.cq.head() as u32);
                self.admin.sq.set_head(cpl.sq_head());
                if cpl.cid() != cid || cpl.sq_id() != 0 {
                    return Err(NvmeError::UnexpectedCompletion { qid: 0, cid: cpl.cid(), sq_id: cpl.sq_id() });
                }
                let status = cpl.status();
                if !status.is_success() {
                    return Err(NvmeError::Command { command: info, status });
                }
                return Ok(cpl);
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                self.check_fatal(info.opcode.name())?;
                let waited = (self.hw.clock.now_ns() - start) / 1_000_000;
                if waited > self.options.admin_timeout_ms {
                    return Err(NvmeError::Timeout { command: info, waited_ms: waited });
                }
            }
            core::hint::spin_loop();
        }
    }

    fn identify(&mut self, cns: u32, nsid: u32) -> Result<[u8; 4096], NvmeError> {
        self.identify_page.zero();
        self.admin_command(Command::identify(0, cns, nsid, self.identify_page.phys()), None)?;
        let mut page = [0u8; 4096];
        self.identify_page.read_bytes(0, &mut page);
        Ok(page)
    }

    /// Active namespace ids (up to the first 1024), in increasing order.
    pub fn active_namespaces(&mut self) -> Result<alloc::vec::Vec<u32>, NvmeError> {
        let supports_list = self.version >= 0x0001_0100;
        if supports_list {
            let page = self.identify(cns::ACTIVE_NAMESPACES, 0)?;
            return Ok(page.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).take_while(|&n| n != 0).collect());
        }
        // NVMe 1.0: probe every namespace id the controller reports.
        let mut ids = alloc::vec::Vec::new();
        for nsid in 1..=self.identity.namespaces.min(1024) {
            let page = self.identify(cns::NAMESPACE, nsid)?;
            if NamespaceIdentity::parse(&page).size_blocks != 0 {
                ids.push(nsid);
            }
        }
        Ok(ids)
    }

    /// Identifies namespace `nsid` and checks the read path can use it.
    pub fn namespace(&mut self, nsid: u32) -> Result<Namespace, NvmeError> {
        let page = self.identify(cns::NAMESPACE, nsid)?;
        let identity = NamespaceIdentity::parse(&page);
        if identity.size_blocks == 0 {
            return Err(NvmeError::NoNamespace { nsid });
        }
        let fmt = identity.lba_format;
        if !(9..=16).contains(&fmt.data_shift) {
            return Err(NvmeError::Unsupported { what: "LBA data size outside 512 B..64 KiB (LBADS)", value: fmt.data_shift as u64 });
        }
        if fmt.metadata_bytes != 0 && identity.extended_lba {
            return Err(NvmeError::Unsupported { what: "LBA format with interleaved metadata bytes", value: fmt.metadata_bytes as u64 });
        }
        let block_size = 1u32 << fmt.data_shift;
        let max_blocks = (self.max_transfer_bytes() / block_size as usize).clamp(1, 65536);
        Ok(Namespace { nsid, block_size, blocks: identity.size_blocks, max_transfer_bytes: max_blocks * block_size as usize, identity })
    }

    /// The first active namespace.
    pub fn first_namespace(&mut self) -> Result<Namespace, NvmeError> {
        let ids = self.active_namespaces()?;
        let nsid = *ids.first().ok_or(NvmeError::NoNamespace { nsid: 0 })?;
        self.namespace(nsid)
    }

    /// Creates an I/O completion queue and submission queue pair for one
    /// polling core (interrupts off) with pre-allocated PRP lists.
    pub fn create_io_queue_pair(&mut self, opts: QueuePairOptions) -> Result<IoQueuePair<R, D, C>, NvmeError> {
        let qid = self.next_io_qid;
        if qid > self.io_queues_granted {
            return Err(NvmeError::Unsupported { what: "more I/O queue pairs than the controller granted", value: self.io_queues_granted as u64 });
        }
        let entries = opts.entries.clamp(2, self.hw.cap.max_queue_entries.min(65536)) as u16;
        let cq_mem = self.hw.dma.alloc(entries as usize * CQ_ENTRY_BYTES, self.hw.page_size)?;
        let sq_mem = self.hw.dma.alloc(entries as usize * SQ_ENTRY_BYTES, self.hw.page_size)?;
        let (cq_phys, sq_phys) = (cq_mem.phys(), sq_mem.phys());
        self.admin_command(Command::create_io_cq(0, qid, entries as u32, cq_phys), None)?;
        self.admin_command(Command::create_io_sq(0, qid, entries as u32, sq_phys, qid), None)?;
        self.next_io_qid += 1;
        IoQueuePair::new(
            self.hw.clone(),
            qid,
            self.max_transfer_bytes(),
            (SubmissionQueue::new(sq_mem, entries), CompletionQueue::new(cq_mem, entries)),
            opts,
            self.options.io_timeout_ms,
        )
    }

    /// Normal shutdown (CC.SHN = 01b), waiting for CSTS.SHST = complete.
    pub fn shutdown(&mut self) -> Result<(), NvmeError> {
        let cc = self.hw.regs.read32(regs::CC);
        self.hw.regs.write32(regs::CC, (cc & !(0b11 << 14)) | (0b01 << 14));
        let start = self.hw.clock.now_ns();
        loop {
            let s = self.hw.regs.read32(regs::CSTS);
            if s == !0 {
                return Err(NvmeError::DeviceGone);
            }
            if s & csts::SHST_MASK == 0b10 << 2 {
                return Ok(());
            }
            let waited = (self.hw.clock.now_ns() - start) / 1_000_000;
            if waited > self.hw.cap.ready_timeout_ms.max(500) {
                return Err(NvmeError::ReadyTimeout { enable: false, waited_ms: waited });
            }
            core::hint::spin_loop();
        }
    }
}

fn opcode_of_admin(code: u8) -> Opcode {
    match code {
        0x00 => Opcode::DeleteIoSq,
        0x01 => Opcode::CreateIoSq,
        0x04 => Opcode::DeleteIoCq,
        0x05 => Opcode::CreateIoCq,
        0x06 => Opcode::Identify,
        _ => Opcode::SetFeatures,
    }
}
