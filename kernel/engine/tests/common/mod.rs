//! Shared helpers of the engine's integration tests (test data and models:
//! `axiom_testkit`).
#![allow(dead_code)]

/// A small deterministic PRNG for randomized tests (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

use axiom_engine::model::LayerSource;
use axiom_engine::plan::{SpinBarrier, TeamWorker};

/// Runs `f` on a team of `count` std threads (worker 0 on the calling thread)
/// and returns worker 0's result. A panicking worker poisons the barrier so
/// the others stop too instead of waiting forever.
pub fn run_team<R, S: Send>(count: usize, layers: &dyn LayerSource, scratches: &mut [S], f: impl Fn(&TeamWorker<'_>, &mut S) -> R + Sync) -> R {
    assert!(scratches.len() >= count);
    let barrier = SpinBarrier::new(count);
    struct PoisonOnPanic<'b>(&'b SpinBarrier);
    impl Drop for PoisonOnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.poison();
            }
        }
    }
    let mut workers = TeamWorker::team(&barrier, layers, Some(std::thread::yield_now)).into_iter();
    let lead = workers.next().unwrap();
    let (first, rest) = scratches.split_at_mut(1);
    std::thread::scope(|s| {
        for (w, scratch) in workers.zip(rest.iter_mut()) {
            let (barrier, f) = (&barrier, &f);
            s.spawn(move || {
                let _guard = PoisonOnPanic(barrier);
                f(&w, scratch);
            });
        }
        let _guard = PoisonOnPanic(&barrier);
        f(&lead, &mut first[0])
    })
}
