//! The lockstep barrier: centralized and sense-reversing, with its arrival
//! counter, its sense flag and its parked-core mask each on their own cache
//! line. A waiting core spins on the sense line for a bounded number of
//! cycles, then parks (the kernel halts with `hlt` or `mwait`); the last core
//! to arrive flips the sense and wakes exactly the cores that parked (the
//! kernel sends them an IPI).
//!
//! Platform hooks ([`Waiter`]) give the clock, parking and waking, so the
//! same logic runs on kernel cores and, in tests, on std threads. The
//! kernel's parking and waking ([`park`], [`wake`]) live here too: every
//! core that waits (barrier members, idle APs, a waiting launcher, the idle
//! I/O core) sleeps the same way.
//!
//! Missed wake-ups are impossible: a parking core publishes its parked bit
//! and then re-reads the sense (both sequentially consistent); the releaser
//! publishes the sense and then reads the parked bits. At least one of them
//! sees the other's write, so either the core does not sleep or it is woken.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use axiom_hw::cpu::{self as hwcpu, Watch};
use crossbeam_utils::CachePadded;

use crate::MAX_CPUS;

const MASK_WORDS: usize = MAX_CPUS / 64;

/// What the barrier needs from the platform.
pub trait Waiter {
    /// A monotonic cycle counter (the TSC in the kernel).
    fn now(&self) -> u64;
    /// Sleep until woken, unless `still_waiting()` is already false. Must not
    /// lose a wake-up sent after `still_waiting()` was checked (the kernel
    /// checks with interrupts off and then runs `sti; hlt`). May return
    /// spuriously. `sense` is the flag whose change ends the wait (for
    /// `monitor`/`mwait`).
    fn park(&self, sense: &AtomicBool, still_waiting: &dyn Fn() -> bool);
    /// Wake `member`, which has parked or is about to.
    fn wake(&self, member: usize);
}

/// The result of one barrier wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOutcome {
    /// Cycles from arriving to being released.
    pub cycles: u64,
    /// The core slept at least once.
    pub parked: bool,
    /// This core arrived last and released the others.
    pub released: bool,
}

/// A member's private barrier state: its sense and index.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    index: usize,
    sense: bool,
}

impl Member {
    pub fn index(&self) -> usize {
        self.index
    }
}

/// A reusable barrier for a fixed number of members.
pub struct SenseBarrier {
    arrived: CachePadded<AtomicU32>,
    sense: CachePadded<AtomicBool>,
    parked: CachePadded<[AtomicU64; MASK_WORDS]>,
    members: u32,
    spin_cycles: u64,
}

impl SenseBarrier {
    /// A barrier for `members` cores (1..=MAX_CPUS) that spin for up to
    /// `spin_cycles` before parking (`u64::MAX`: never park; 0: park at once).
    pub fn new(members: usize, spin_cycles: u64) -> Self {
        assert!((1..=MAX_CPUS).contains(&members), "barrier members must be 1..={MAX_CPUS}");
        SenseBarrier {
            arrived: CachePadded::new(AtomicU32::new(0)),
            sense: CachePadded::new(AtomicBool::new(false)),
            parked: CachePadded::new([const { AtomicU64::new(0) }; MASK_WORDS]),
            members: members as u32,
            spin_cycles,
        }
    }

    pub fn members(&self) -> usize {
        self.members as usize
    }

    /// The private state for member `index` (each member takes exactly one).
    pub fn member(&self, index: usize) -> Member {
        assert!(index < self.members as usize);
        Member { index, sense: self.sense.load(Ordering::Acquire) }
    }

    /// Wait until all members have arrived.
    pub fn wait(&self, me: &mut Member, waiter: &dyn Waiter) -> WaitOutcome {
        let target = !me.sense;
        me.sense = target;
        let start = waiter.now();

        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.members {
            // Last to arrive: nobody touches `arrived` again until the sense
            // flips, so resetting it first is race-free.
            self.arrived.store(0, Ordering::Relaxed);
            self.sense.store(target, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            for (w, word) in self.parked.iter().enumerate() {
                let mut bits = word.load(Ordering::SeqCst);
                while bits != 0 {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    waiter.wake(w * 64 + bit);
                }
            }
            return WaitOutcome { cycles: waiter.now().wrapping_sub(start), parked: false, released: true };
        }

        let released = || self.sense.load(Ordering::Acquire) == target;
        let mut parked = false;
        // Spin phase.
        while !released() {
            if waiter.now().wrapping_sub(start) >= self.spin_cycles {
                parked = self.park_until_released(me.index, target, waiter);
                break;
            }
            core::hint::spin_loop();
        }
        WaitOutcome { cycles: waiter.now().wrapping_sub(start), parked, released: false }
    }

    fn park_until_released(&self, index: usize, target: bool, waiter: &dyn Waiter) -> bool {
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let mut slept = false;
        loop {
            self.parked[word].fetch_or(bit, Ordering::SeqCst);
            if self.sense.load(Ordering::SeqCst) == target {
                self.parked[word].fetch_and(!bit, Ordering::SeqCst);
                return slept;
            }
            waiter.park(&self.sense, &|| self.sense.load(Ordering::Acquire) != target);
            slept = true;
            self.parked[word].fetch_and(!bit, Ordering::SeqCst);
            if self.sense.load(Ordering::Acquire) == target {
                return slept;
            }
        }
    }
}

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

/// Sleep until `still_waiting()` may have changed (interrupts are masked
/// around the check, so a wake-up IPI cannot slip in between). Counts the
/// park in this CPU's statistics.
pub fn park(method: ParkMethod, watch: Watch<'_>, still_waiting: &dyn Fn() -> bool) {
    super::percpu::this().stats.parks.fetch_add(1, Ordering::Relaxed);
    match method {
        ParkMethod::Hlt => {
            if still_waiting() {
                hwcpu::sleep_until_interrupt();
            }
        }
        ParkMethod::Mwait => hwcpu::mwait_on(watch, still_waiting),
    }
}

/// Wake the core with `apic_id`, parked in [`park`] (or about to be).
pub fn wake(apic_id: u32) {
    axiom_hw::apic::send_wake(apic_id)
}

/// The barrier's hooks on kernel cores: the TSC, [`park`], and a wake-up IPI
/// to the member's APIC id.
pub struct CoreWaiter<'a> {
    pub apic_ids: &'a [u32],
    pub park: ParkMethod,
}

impl Waiter for CoreWaiter<'_> {
    fn now(&self) -> u64 {
        hwcpu::rdtsc()
    }

    fn park(&self, sense: &AtomicBool, still_waiting: &dyn Fn() -> bool) {
        park(self.park, Watch::of(sense), still_waiting);
    }

    fn wake(&self, member: usize) {
        wake(self.apic_ids[member]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::thread::{self, Thread};
    use std::time::Instant;
    use std::vec::Vec;

    /// std-thread hooks: nanoseconds as "cycles", park/unpark for sleeping.
    struct ThreadWaiter {
        epoch: Instant,
        threads: Mutex<Vec<Option<Thread>>>,
        wakes: AtomicUsize,
    }

    impl Waiter for ThreadWaiter {
        fn now(&self) -> u64 {
            self.epoch.elapsed().as_nanos() as u64
        }
        fn park(&self, _sense: &AtomicBool, still_waiting: &dyn Fn() -> bool) {
            // std's park token makes an unpark that raced ahead return at once.
            if still_waiting() {
                thread::park();
            }
        }
        fn wake(&self, member: usize) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = &self.threads.lock().unwrap()[member] {
                t.unpark();
            }
        }
    }

    /// `threads` members run `rounds` rounds: each adds to the counter of
    /// the round's parity, waits, and checks the counter is exactly right.
    fn run(threads: usize, rounds: u64, spin: u64) -> (usize, Vec<u64>) {
        let barrier = Arc::new(SenseBarrier::new(threads, spin));
        let waiter = Arc::new(ThreadWaiter {
            epoch: Instant::now(),
            threads: Mutex::new(std::vec![None; threads]),
            wakes: AtomicUsize::new(0),
        });
        let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let ready = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (barrier, waiter, counters, ready) = (barrier.clone(), waiter.clone(), counters.clone(), ready.clone());
                thread::spawn(move || {
                    waiter.threads.lock().unwrap()[i] = Some(thread::current());
                    ready.wait();
                    let mut me = barrier.member(i);
                    let mut parked = 0u64;
                    for r in 0..rounds {
                        // Uneven work so arrival order changes every round.
                        let mut x = r.wrapping_mul(i as u64 + 1);
                        for _ in 0..((r as usize * 7 + i * 13) % 50) {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                        counters[(r % 2) as usize].fetch_add(1, Ordering::Relaxed);
                        let out = barrier.wait(&mut me, &*waiter);
                        parked += out.parked as u64;
                        let expect = (r / 2 + 1) * threads as u64;
                        assert_eq!(counters[(r % 2) as usize].load(Ordering::Relaxed), expect, "round {r} member {i}");
                    }
                    parked
                })
            })
            .collect();
        let parked = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (waiter.wakes.load(Ordering::Relaxed), parked)
    }

    #[test]
    fn spinning_barrier_keeps_lockstep() {
        let (_, parked) = run(2, 2000, u64::MAX);
        assert!(parked.iter().all(|&p| p == 0), "never parks with unlimited spin");
    }

    #[test]
    fn parking_barrier_keeps_lockstep_and_wakes_sleepers() {
        let (wakes, parked) = run(4, 500, 0);
        assert!(parked.iter().sum::<u64>() > 0, "cores with no spin budget park");
        assert!(wakes > 0, "parked cores are woken by the releaser");
    }

    #[test]
    fn mixed_spin_then_park() {
        run(3, 1000, 20_000);
        run(1, 100, 0);
        run(8, 300, 5_000);
    }

    #[test]
    fn wait_outcome_flags_the_releaser() {
        let b = SenseBarrier::new(1, 0);
        let w = ThreadWaiter { epoch: Instant::now(), threads: Mutex::new(std::vec![None]), wakes: AtomicUsize::new(0) };
        let mut m = b.member(0);
        for _ in 0..3 {
            let o = b.wait(&mut m, &w);
            assert!(o.released && !o.parked);
        }
    }
}
