//! The team's own barrier, built on core atomics only.
//!
//! Every barrier of the forward pass goes through it, whatever the platform
//! does to wait ([`super::Worker::wait_for_team`]: the kernel parks its cores
//! on its own barrier): a member *arrives* here, lets the platform wait, then
//! *departs* only once this barrier has seen every arrival. So the memory
//! ordering the forward pass's shared writes rely on never depends on code
//! outside the engine; a correct platform barrier just means the departure
//! finds the generation already advanced.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Keeps each hot atomic on its own cache line.
#[repr(align(64))]
struct Line<T>(T);

/// Sense-free central barrier: arrivals count up; the last one resets the
/// count and bumps the generation that the others wait on.
pub(crate) struct SpinBarrier {
    count: usize,
    arrived: Line<AtomicUsize>,
    generation: Line<AtomicUsize>,
    poisoned: AtomicBool,
}

/// One member's arrival at a barrier: the generation it waits to see end.
#[must_use = "an arrival must be followed by `depart`"]
pub(crate) struct Arrival {
    generation: usize,
    last: bool,
}

impl SpinBarrier {
    pub(crate) fn new(count: usize) -> Self {
        assert!(count > 0);
        SpinBarrier {
            count,
            arrived: Line(AtomicUsize::new(0)),
            generation: Line(AtomicUsize::new(0)),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Counts this member in (release: its earlier writes are published).
    pub(crate) fn arrive(&self) -> Arrival {
        let generation = self.generation.0.load(Ordering::Acquire);
        if self.arrived.0.fetch_add(1, Ordering::AcqRel) + 1 == self.count {
            // Last to arrive: nobody touches `arrived` again until they have
            // seen the new generation, so the reset happens before their next
            // arrival.
            self.arrived.0.store(0, Ordering::Relaxed);
            self.generation.0.fetch_add(1, Ordering::Release);
            return Arrival { generation, last: true };
        }
        Arrival { generation, last: false }
    }

    /// Returns once every member has arrived (acquire: their writes before
    /// arriving are visible). `relax(spins)` is called on every spin. Panics
    /// if the barrier is poisoned (a member died) rather than waiting forever.
    pub(crate) fn depart(&self, arrival: Arrival, mut relax: impl FnMut(u32)) {
        if arrival.last {
            return;
        }
        let mut spins = 0u32;
        while self.generation.0.load(Ordering::Acquire) == arrival.generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("barrier poisoned: another worker stopped");
            }
            relax(spins);
            spins = spins.wrapping_add(1);
        }
    }

    /// Marks the barrier dead: every waiter (now and later) panics instead of
    /// waiting for a participant that will never come.
    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn barrier_orders_phases() {
        for n in 1..=4 {
            let b = SpinBarrier::new(n);
            let counter = AtomicU64::new(0);
            let wait = || b.depart(b.arrive(), |_| std::thread::yield_now());
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        for round in 0..1000u64 {
                            counter.fetch_add(1, Ordering::Relaxed);
                            wait();
                            // Everyone has added for this round.
                            assert!(counter.load(Ordering::Relaxed) >= (round + 1) * n as u64);
                            wait();
                        }
                    });
                }
            });
            assert_eq!(counter.load(Ordering::Relaxed), 1000 * n as u64);
        }
    }

    #[test]
    fn a_poisoned_barrier_stops_its_waiters() {
        let b = SpinBarrier::new(2);
        let arrival = b.arrive();
        b.poison();
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.depart(arrival, |_| {})));
        assert!(waited.is_err(), "a waiter on a poisoned barrier must stop");
    }
}
