//! SPMD launch: the BSP (or any one launcher) runs one function on a set of
//! cores, each getting its team index and the team size, and waits for all
//! of them. Inside, cores meet at a [`SenseBarrier`]; each core's barrier
//! wait cycles and parks are recorded (per worker and in its per-CPU stats).
//!
//! Idle APs wait in their [`Mailbox`]: spin briefly, then `hlt` until the
//! launcher's wake-up IPI. No timer is involved anywhere.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use axiom_kernel::barrier::{Member, SenseBarrier, WaitOutcome, Waiter};
use crossbeam_utils::CachePadded;

use super::lapic::send_wake;
use super::percpu::{self, PerCpu};
use crate::cpu::instr::{mwait_on, rdtsc, sleep_until_interrupt};
use crate::tsc;

/// How a waiting core sleeps once its spin budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkMethod {
    /// `sti; hlt`, woken by the wake-up IPI.
    Hlt,
    /// `monitor` the line, `mwait`; the IPI is still sent.
    Mwait,
}

impl ParkMethod {
    pub fn name(self) -> &'static str {
        match self {
            ParkMethod::Hlt => "hlt",
            ParkMethod::Mwait => "mwait",
        }
    }
}

/// Launch-wide settings (from the command line).
#[derive(Clone, Copy, Debug)]
pub struct LaunchConfig {
    /// Barrier spin budget before parking, in TSC cycles.
    pub spin_cycles: u64,
    pub park: ParkMethod,
}

static CONFIG_SPIN: AtomicU64 = AtomicU64::new(0);
static CONFIG_MWAIT: AtomicBool = AtomicBool::new(false);
/// Spin budget of an idle AP before it halts (cycles).
static IDLE_SPIN: AtomicU64 = AtomicU64::new(0);
static LAUNCHING: AtomicBool = AtomicBool::new(false);

pub fn configure(c: LaunchConfig) {
    CONFIG_SPIN.store(c.spin_cycles, Ordering::Relaxed);
    CONFIG_MWAIT.store(c.park == ParkMethod::Mwait, Ordering::Relaxed);
    IDLE_SPIN.store(c.spin_cycles.min(tsc::us_to_cycles(100)), Ordering::Relaxed);
}

pub fn config() -> LaunchConfig {
    LaunchConfig {
        spin_cycles: CONFIG_SPIN.load(Ordering::Relaxed),
        park: if CONFIG_MWAIT.load(Ordering::Relaxed) { ParkMethod::Mwait } else { ParkMethod::Hlt },
    }
}

/// An AP's inbox. The launcher writes the job and team index, then bumps
/// `generation`; the AP runs the job when it sees the change.
pub struct Mailbox {
    generation: CachePadded<AtomicU64>,
    job: AtomicPtr<Job>,
    team_index: AtomicUsize,
    /// The owner is (about to be) halted and needs an IPI.
    parked: AtomicBool,
}

impl Mailbox {
    pub const fn new() -> Self {
        Mailbox {
            generation: CachePadded::new(AtomicU64::new(0)),
            job: AtomicPtr::new(core::ptr::null_mut()),
            team_index: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
        }
    }
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

/// One launch, shared by its workers (lives on the launcher's stack).
struct Job {
    run: unsafe fn(*const (), &mut Worker),
    data: *const (),
    barrier: SenseBarrier,
    /// APIC ids of the barrier members (the team, without helpers).
    apic_ids: Vec<u32>,
    /// Every launched CPU: the team first, then helpers.
    cpus: Vec<usize>,
    /// Team size: members `0..team` meet at the barrier, the rest are helpers.
    team: usize,
    remaining: AtomicUsize,
    launcher: usize,
    park: ParkMethod,
}

/// The barrier's platform hooks on kernel cores.
struct KernelWaiter<'a> {
    job: &'a Job,
}

impl Waiter for KernelWaiter<'_> {
    fn now(&self) -> u64 {
        rdtsc()
    }

    fn park(&self, watch: *const u8, still_waiting: &dyn Fn() -> bool) {
        park(self.job.park, watch, still_waiting);
    }

    fn wake(&self, member: usize) {
        send_wake(self.job.apic_ids[member]);
    }
}

/// Parks the calling core (the configured method) until `still_waiting()`
/// may have changed; another core wakes it with [`wake`] after changing the
/// condition. For cores outside a team barrier (the I/O core when idle).
pub fn park_while(watch: *const u8, still_waiting: &dyn Fn() -> bool) {
    park(config().park, watch, still_waiting)
}

/// Wakes a core parked in [`park_while`] (or anywhere else).
pub fn wake(apic_id: u32) {
    send_wake(apic_id)
}

/// Sleep until `still_waiting()` may have changed (interrupts are masked
/// around the check, so a wake-up IPI cannot slip in between).
fn park(method: ParkMethod, watch: *const u8, still_waiting: &dyn Fn() -> bool) {
    if let Some(me) = percpu::try_current() {
        me.stats.parks.fetch_add(1, Ordering::Relaxed);
    }
    match method {
        ParkMethod::Hlt => {
            if still_waiting() {
                sleep_until_interrupt();
            }
        }
        ParkMethod::Mwait => mwait_on(watch, still_waiting),
    }
}

/// One core's view of a launch.
pub struct Worker<'j> {
    index: usize,
    job: &'j Job,
    member: Member,
    /// Cycles this worker spent in barrier waits.
    pub wait_cycles: u64,
    pub barriers: u64,
    pub parks: u64,
}

impl Worker<'_> {
    /// Team index, 0..count.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Team size (helpers not counted).
    pub fn count(&self) -> usize {
        self.job.team
    }

    /// A helper runs beside the team and never meets it at the barrier
    /// (the I/O core).
    pub fn is_helper(&self) -> bool {
        self.index >= self.job.team
    }

    /// CPU index of this worker.
    #[allow(dead_code)] // API for per-core telemetry in the inference integration
    pub fn cpu(&self) -> usize {
        self.job.cpus[self.index]
    }

    /// Wait for the whole team. Returns this wait's outcome (cycles, parked).
    pub fn barrier(&mut self) -> WaitOutcome {
        assert!(!self.is_helper(), "a helper CPU never joins the team barrier");
        let out = self.job.barrier.wait(&mut self.member, &KernelWaiter { job: self.job });
        self.wait_cycles += out.cycles;
        self.barriers += 1;
        self.parks += out.parked as u64;
        out
    }
}

fn run_worker(job: &Job, index: usize) {
    // Helpers get a member handle too (never used: `barrier` refuses them).
    let member = job.barrier.member(index.min(job.team - 1));
    let mut w = Worker { index, job, member, wait_cycles: 0, barriers: 0, parks: 0 };
    // SAFETY: `run` and `data` were built together by `run_on` from the
    // same closure type, which outlives the launch.
    unsafe { (job.run)(job.data, &mut w) };
    let stats = &percpu::current().stats;
    stats.barrier_wait_cycles.fetch_add(w.wait_cycles, Ordering::Relaxed);
    stats.barriers.fetch_add(w.barriers, Ordering::Relaxed);
}

unsafe fn call<F: Fn(&mut Worker) + Sync>(data: *const (), w: &mut Worker) {
    // SAFETY: `data` points to the `F` that `run_on` borrowed for the launch.
    let f = unsafe { &*(data as *const F) };
    f(w)
}

/// Run `f` on the CPUs with indices `cpus` (each online; the calling CPU may
/// be one of them) and return when every one has finished. Each worker gets
/// its team index (its position in `cpus`) and the team size.
///
/// Launches do not nest and only one runs at a time.
pub fn run_on<F: Fn(&mut Worker) + Sync>(cpus: &[usize], f: F) {
    run_with_helpers(cpus, &[], f)
}

/// As [`run_on`], plus `helpers`: CPUs that run `f` at the same time with
/// team indices `cpus.len()..` ([`Worker::is_helper`]) but are not members of
/// the barrier (e.g. the I/O core streaming weights beside the compute team).
pub fn run_with_helpers<F: Fn(&mut Worker) + Sync>(team: &[usize], helpers: &[usize], f: F) {
    assert!(!team.is_empty(), "a launch needs at least one CPU");
    let cpus: Vec<usize> = team.iter().chain(helpers).copied().collect();
    let cpus = &cpus[..];
    assert!(!LAUNCHING.swap(true, Ordering::SeqCst), "SPMD launches do not nest");
    let me = percpu::current();
    let mut apic_ids = Vec::with_capacity(cpus.len());
    for &c in cpus {
        let cpu = percpu::cpu(c).filter(|p| p.is_online()).unwrap_or_else(|| panic!("launch on CPU {c}, which is not online"));
        apic_ids.push(cpu.apic_id());
    }
    let cfg = config();
    let job = Job {
        run: call::<F>,
        data: &f as *const F as *const (),
        barrier: SenseBarrier::new(team.len(), cfg.spin_cycles),
        apic_ids: apic_ids[..team.len()].to_vec(),
        cpus: cpus.to_vec(),
        team: team.len(),
        remaining: AtomicUsize::new(cpus.len()),
        launcher: me.index(),
        park: cfg.park,
    };
    let mut my_slot = None;
    for (i, &c) in cpus.iter().enumerate() {
        if c == me.index() {
            my_slot = Some(i);
            continue;
        }
        let cpu = percpu::cpu(c).expect("checked above");
        let mb = &cpu.mailbox;
        mb.job.store(&job as *const Job as *mut Job, Ordering::Relaxed);
        mb.team_index.store(i, Ordering::Relaxed);
        mb.generation.fetch_add(1, Ordering::SeqCst);
        if mb.parked.load(Ordering::SeqCst) {
            send_wake(cpu.apic_id());
        }
    }
    if let Some(i) = my_slot {
        run_worker(&job, i);
        job.remaining.fetch_sub(1, Ordering::SeqCst);
    }
    // Wait for the others: spin, then halt until the last one's IPI.
    let spin_end = rdtsc().saturating_add(cfg.spin_cycles);
    while job.remaining.load(Ordering::SeqCst) != 0 {
        if rdtsc() < spin_end {
            core::hint::spin_loop();
            continue;
        }
        me.mailbox.parked.store(true, Ordering::SeqCst);
        let watch = &job.remaining as *const AtomicUsize as *const u8;
        park(cfg.park, watch, &|| job.remaining.load(Ordering::SeqCst) != 0);
        me.mailbox.parked.store(false, Ordering::SeqCst);
    }
    LAUNCHING.store(false, Ordering::SeqCst);
}

/// An AP's life after start-up: wait for jobs and run them, forever.
pub fn idle_loop(me: &'static PerCpu) -> ! {
    let mb = &me.mailbox;
    let mut seen = mb.generation.load(Ordering::SeqCst);
    loop {
        let spin_end = rdtsc().saturating_add(IDLE_SPIN.load(Ordering::Relaxed));
        while mb.generation.load(Ordering::SeqCst) == seen {
            if rdtsc() < spin_end {
                core::hint::spin_loop();
                continue;
            }
            mb.parked.store(true, Ordering::SeqCst);
            let watch = &*mb.generation as *const AtomicU64 as *const u8;
            park(config().park, watch, &|| mb.generation.load(Ordering::SeqCst) == seen);
            mb.parked.store(false, Ordering::SeqCst);
        }
        seen = mb.generation.load(Ordering::SeqCst);
        let job_ptr = mb.job.load(Ordering::Acquire);
        // SAFETY: the launcher stored a pointer to a Job on its stack before
        // bumping the generation, and keeps it alive until `remaining` is 0,
        // which cannot happen before this worker's decrement below.
        let job = unsafe { &*job_ptr };
        let index = mb.team_index.load(Ordering::Acquire);
        run_worker(job, index);
        // Read what we need from the job before the decrement lets it go.
        let launcher = percpu::cpu(job.launcher).expect("launcher is registered");
        if job.remaining.fetch_sub(1, Ordering::SeqCst) == 1 && launcher.mailbox.parked.load(Ordering::SeqCst) {
            send_wake(launcher.apic_id());
        }
    }
}
