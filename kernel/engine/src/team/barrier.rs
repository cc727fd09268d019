//! A spinning barrier for a fixed team, built on core atomics only, so the
//! host's threads and (if it wishes) the kernel's cores can share it.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Keeps each hot atomic on its own cache line.
#[repr(align(64))]
struct Line<T>(T);

/// Sense-free central barrier: arrivals count up; the last one resets the
/// count and bumps the generation that the others spin on.
pub struct SpinBarrier {
    count: usize,
    arrived: Line<AtomicUsize>,
    generation: Line<AtomicUsize>,
    poisoned: AtomicBool,
}

impl SpinBarrier {
    pub fn new(count: usize) -> Self {
        assert!(count > 0);
        SpinBarrier {
            count,
            arrived: Line(AtomicUsize::new(0)),
            generation: Line(AtomicUsize::new(0)),
            poisoned: AtomicBool::new(false),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Waits for all `count` participants, spinning.
    pub fn wait(&self) {
        self.wait_with(|_| core::hint::spin_loop())
    }

    /// Waits for all participants; `relax(spins)` is called on every spin
    /// (e.g. `spin_loop`, or a yield to the OS after many spins). Panics if the
    /// barrier is poisoned (a participant died), rather than waiting forever.
    pub fn wait_with(&self, mut relax: impl FnMut(u32)) {
        let gen = self.generation.0.load(Ordering::Acquire);
        if self.arrived.0.fetch_add(1, Ordering::AcqRel) + 1 == self.count {
            // Last to arrive: nobody touches `arrived` again until they have
            // seen the new generation, so the reset happens before their next
            // arrival.
            self.arrived.0.store(0, Ordering::Relaxed);
            self.generation.0.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.0.load(Ordering::Acquire) == gen {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("barrier poisoned: another worker stopped");
            }
            relax(spins);
            spins = spins.wrapping_add(1);
        }
    }

    /// Marks the barrier dead: every waiter (now and later) panics instead of
    /// waiting for a participant that will never come.
    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
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
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        for round in 0..1000u64 {
                            counter.fetch_add(1, Ordering::Relaxed);
                            b.wait_with(|_| std::thread::yield_now());
                            // Everyone has added for this round.
                            assert!(counter.load(Ordering::Relaxed) >= (round + 1) * n as u64);
                            b.wait_with(|_| std::thread::yield_now());
                        }
                    });
                }
            });
            assert_eq!(counter.load(Ordering::Relaxed), 1000 * n as u64);
        }
    }
}
