//! A team of std threads running the engine in lockstep.
//!
//! `run` forms an engine [`Team`] and starts `count - 1` scoped threads plus
//! the calling thread as seat 0, each with its [`Seat`] and its own
//! [`Scratch`] (allocated once, kept across runs). A whole generation is one run (the SPMD loop in
//! `axiom_engine::forward::generate`), so thread start-up is paid once, not
//! per token. Threads are pinned one per CPU when there are enough CPUs.

use axiom_engine::model::{LayerSource, Model, ModelConfig};
use axiom_engine::state::{Scratch, SharedState, StateConfig};
use axiom_engine::team::{ResidentWorker, Seat, Team};

pub struct HostTeam {
    count: usize,
    scratches: Vec<Scratch>,
    /// CPUs to pin worker `i` to (`cpus[i]`), or empty: no pinning.
    cpus: Vec<usize>,
}

impl HostTeam {
    /// A team of `count` workers with scratch sized for `state`.
    pub fn new(count: usize, model: &ModelConfig, state: &StateConfig, pin: bool) -> HostTeam {
        let allowed = affinity::allowed_cpus();
        let cpus = if pin && count <= allowed.len() { allowed[..count].to_vec() } else { Vec::new() };
        HostTeam { count, scratches: (0..count).map(|_| Scratch::new(model, state)).collect(), cpus }
    }

    /// Runs `f` from every seat of a team running `model` on `state`;
    /// returns seat 0's result once all are done. A member that panics
    /// poisons the team, so the others stop too.
    pub fn run<R>(&mut self, model: &Model<'_>, state: &SharedState<'_>, layers: &dyn LayerSource, f: impl Fn(&mut Seat<'_, ResidentWorker<'_>>, &mut Scratch) -> R + Sync) -> R {
        // Past the core count, a spinning waiter would hold the CPU the
        // member it waits for needs: yield after a while.
        let worker = ResidentWorker::yielding(layers, std::thread::yield_now);
        let team = Team::new(model, state, self.count).unwrap_or_else(|e| panic!("host team: {e}"));
        let mut seats = team.seats(&worker).expect("a fresh team has every seat free").into_iter();
        let mut lead = seats.next().expect("a team has a seat 0");
        let (first, rest) = self.scratches.split_at_mut(1);
        let cpus = &self.cpus;
        std::thread::scope(|s| {
            for (i, (mut seat, scratch)) in seats.zip(rest.iter_mut()).enumerate() {
                let (team, f) = (&team, &f);
                std::thread::Builder::new()
                    .name(format!("axiom-worker-{}", i + 1))
                    .spawn_scoped(s, move || {
                        if let Some(&cpu) = cpus.get(i + 1) {
                            affinity::pin(cpu);
                        }
                        let _guard = PoisonOnPanic(team);
                        f(&mut seat, scratch);
                    })
                    .expect("cannot spawn a worker thread");
            }
            let saved = cpus.first().map(|&cpu| {
                let saved = affinity::current();
                affinity::pin(cpu);
                saved
            });
            let _guard = PoisonOnPanic(&team);
            let r = f(&mut lead, &mut first[0]);
            if let Some(mask) = saved {
                affinity::restore(&mask);
            }
            r
        })
    }
}

struct PoisonOnPanic<'b, 'a>(&'b Team<'a>);

impl Drop for PoisonOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison();
        }
    }
}

/// Thread-to-CPU binding through `sched_setaffinity` (best effort: a
/// failure leaves the thread unpinned; pinning only steadies timings).
mod affinity {
    /// The calling thread's CPU mask.
    pub fn current() -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is plain data (all-zero is the empty set);
        // sched_getaffinity(0, ..) writes at most size_of::<cpu_set_t>() bytes into it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            set
        }
    }

    /// The CPUs the process may run on, in order.
    pub fn allowed_cpus() -> Vec<usize> {
        let set = current();
        // SAFETY: CPU_ISSET reads bit `c` of the set, c < CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
    }

    /// Binds the calling thread to `cpu`.
    pub fn pin(cpu: usize) {
        if cpu >= libc::CPU_SETSIZE as usize {
            return;
        }
        // SAFETY: an all-zero cpu_set_t is empty; CPU_SET sets bit `cpu` <
        // CPU_SETSIZE; sched_setaffinity only reads the set.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }

    /// Gives the calling thread back a mask saved by [`current`].
    pub fn restore(set: &libc::cpu_set_t) {
        // SAFETY: sched_setaffinity only reads the set.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
        }
    }
}
