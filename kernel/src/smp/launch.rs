//! SPMD launch: the BSP (or any one launcher) runs one function on a set of
//! cores, each getting its team index and the team size, and waits for all
//! of them. Inside, cores meet at a [`SenseBarrier`]; each core's barrier
//! wait cycles and parks are recorded (per launched CPU and in its per-CPU
//! statistics).
//!
//! Idle APs wait on their [`Mailbox`]: spin briefly, then `hlt` until the
//! launcher's wake-up IPI. No timer is involved anywhere. A launch hands
//! each AP a shared reference to the job (`Arc`), so the function and what
//! it captures must be `'static`: the inference mode keeps its set-up for
//! the rest of the run, and per-answer data travels in an `Arc`.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use axiom_hw::cpu::{percpu as hwcpu, rdtsc, Cpu, Watch};
use axiom_hw::time;
use crossbeam_utils::CachePadded;

use super::barrier::{park, wake, CoreWaiter, Member, ParkMethod, SenseBarrier, WaitOutcome};
use super::percpu;

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
    IDLE_SPIN.store(c.spin_cycles.min(time::us_to_cycles(100)), Ordering::Relaxed);
}

pub fn config() -> LaunchConfig {
    LaunchConfig {
        spin_cycles: CONFIG_SPIN.load(Ordering::Relaxed),
        park: if CONFIG_MWAIT.load(Ordering::Relaxed) { ParkMethod::Mwait } else { ParkMethod::Hlt },
    }
}

/// An AP's inbox. The launcher stores the job and team index, then bumps
/// `generation`; the AP runs the job when it sees the change.
pub struct Mailbox {
    generation: CachePadded<AtomicU64>,
    job: spin::Mutex<Option<(Arc<Job>, usize)>>,
    /// The owner is (about to be) halted and needs an IPI.
    parked: AtomicBool,
}

impl Mailbox {
    pub const fn new() -> Self {
        Mailbox { generation: CachePadded::new(AtomicU64::new(0)), job: spin::Mutex::new(None), parked: AtomicBool::new(false) }
    }
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

type JobFn = dyn Fn(&mut LaunchedCpu) + Send + Sync;

/// One launch, shared by its CPUs.
pub struct Job {
    run: Box<JobFn>,
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

/// Parks the calling core (the configured method) until `still_waiting()`
/// may have changed; another core wakes it with [`wake_cpu`] after changing
/// the condition. For cores outside a team barrier (the I/O core when idle).
pub fn park_while(watch: Watch<'_>, still_waiting: &dyn Fn() -> bool) {
    park(config().park, watch, still_waiting)
}

/// Wakes a core parked in [`park_while`] (or anywhere else).
pub fn wake_cpu(apic_id: u32) {
    wake(apic_id)
}

/// One CPU's view of a launch.
pub struct LaunchedCpu<'j> {
    index: usize,
    job: &'j Job,
    member: Member,
    /// Cycles this CPU spent in barrier waits.
    pub wait_cycles: u64,
    pub barriers: u64,
    pub parks: u64,
}

impl LaunchedCpu<'_> {
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

    /// CPU index of this launched CPU.
    pub fn cpu(&self) -> usize {
        self.job.cpus[self.index]
    }

    /// Wait for the whole team. Returns this wait's outcome (cycles, parked).
    pub fn barrier(&mut self) -> WaitOutcome {
        assert!(!self.is_helper(), "a helper CPU never joins the team barrier");
        let waiter = CoreWaiter { apic_ids: &self.job.apic_ids, park: self.job.park };
        let out = self.job.barrier.wait(&mut self.member, &waiter);
        self.wait_cycles += out.cycles;
        self.barriers += 1;
        self.parks += out.parked as u64;
        out
    }
}

fn run_job(job: &Job, index: usize) {
    // Helpers get a member handle too (never used: `barrier` refuses them).
    let member = job.barrier.member(index.min(job.team - 1));
    let mut me = LaunchedCpu { index, job, member, wait_cycles: 0, barriers: 0, parks: 0 };
    (job.run)(&mut me);
    let stats = &percpu::this().stats;
    stats.barrier_wait_cycles.fetch_add(me.wait_cycles, Ordering::Relaxed);
    stats.barriers.fetch_add(me.barriers, Ordering::Relaxed);
}

fn online(index: usize) -> Cpu {
    hwcpu::get(index).filter(|c| c.is_online()).unwrap_or_else(|| panic!("launch on CPU {index}, which is not online"))
}

/// Run `f` on the CPUs with indices `cpus` (each online; the calling CPU may
/// be one of them) and return when every one has finished. Each gets its
/// team index (its position in `cpus`) and the team size.
///
/// Launches do not nest and only one runs at a time.
pub fn run_on<F: Fn(&mut LaunchedCpu) + Send + Sync + 'static>(cpus: &[usize], f: F) {
    run_with_helpers(cpus, &[], f)
}

/// As [`run_on`], plus `helpers`: CPUs that run `f` at the same time with
/// team indices `cpus.len()..` ([`LaunchedCpu::is_helper`]) but are not
/// members of the barrier (e.g. the I/O core streaming weights beside the
/// compute team).
pub fn run_with_helpers<F: Fn(&mut LaunchedCpu) + Send + Sync + 'static>(team: &[usize], helpers: &[usize], f: F) {
    assert!(!team.is_empty(), "a launch needs at least one CPU");
    assert!(!LAUNCHING.swap(true, Ordering::SeqCst), "SPMD launches do not nest");
    let me = hwcpu::current_index();
    let cpus: Vec<usize> = team.iter().chain(helpers).copied().collect();
    let apic_ids: Vec<u32> = team.iter().map(|&c| online(c).apic_id()).collect();
    let cfg = config();
    let job = Arc::new(Job {
        run: Box::new(f),
        barrier: SenseBarrier::new(team.len(), cfg.spin_cycles),
        apic_ids,
        cpus: cpus.clone(),
        team: team.len(),
        remaining: AtomicUsize::new(cpus.len()),
        launcher: me,
        park: cfg.park,
    });
    let mut my_slot = None;
    for (i, &c) in cpus.iter().enumerate() {
        if c == me {
            my_slot = Some(i);
            continue;
        }
        let apic_id = online(c).apic_id();
        let mb = &percpu::state(c).mailbox;
        *mb.job.lock() = Some((job.clone(), i));
        mb.generation.fetch_add(1, Ordering::SeqCst);
        if mb.parked.load(Ordering::SeqCst) {
            wake(apic_id);
        }
    }
    if let Some(i) = my_slot {
        run_job(&job, i);
        job.remaining.fetch_sub(1, Ordering::SeqCst);
    }
    // Wait for the others: spin, then halt until the last one's IPI.
    let mine = &percpu::state(me).mailbox;
    let spin_end = rdtsc().saturating_add(cfg.spin_cycles);
    while job.remaining.load(Ordering::SeqCst) != 0 {
        if rdtsc() < spin_end {
            core::hint::spin_loop();
            continue;
        }
        mine.parked.store(true, Ordering::SeqCst);
        park(cfg.park, Watch::of(&job.remaining), &|| job.remaining.load(Ordering::SeqCst) != 0);
        mine.parked.store(false, Ordering::SeqCst);
    }
    LAUNCHING.store(false, Ordering::SeqCst);
}

/// The mailbox generation an AP starts its idle loop from: read before the
/// AP is marked online, so no launch can slip in between.
pub fn first_generation(me: usize) -> u64 {
    percpu::state(me).mailbox.generation.load(Ordering::SeqCst)
}

/// An AP's life after start-up: wait for jobs and run them, forever.
pub fn idle_loop(me: usize, mut seen: u64) -> ! {
    let mb = &percpu::state(me).mailbox;
    loop {
        let spin_end = rdtsc().saturating_add(IDLE_SPIN.load(Ordering::Relaxed));
        while mb.generation.load(Ordering::SeqCst) == seen {
            if rdtsc() < spin_end {
                core::hint::spin_loop();
                continue;
            }
            mb.parked.store(true, Ordering::SeqCst);
            park(config().park, Watch::of(&*mb.generation), &|| mb.generation.load(Ordering::SeqCst) == seen);
            mb.parked.store(false, Ordering::SeqCst);
        }
        seen = mb.generation.load(Ordering::SeqCst);
        let (job, index) = mb.job.lock().take().expect("a launch stores its job before bumping the generation");
        run_job(&job, index);
        // The launcher's APIC id, read before the decrement can end the launch.
        let launcher_apic = online(job.launcher).apic_id();
        let launcher_parked = &percpu::state(job.launcher).mailbox.parked;
        if job.remaining.fetch_sub(1, Ordering::SeqCst) == 1 && launcher_parked.load(Ordering::SeqCst) {
            wake(launcher_apic);
        }
    }
}
