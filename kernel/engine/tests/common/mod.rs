//! Shared helpers of the engine's integration tests (test data and models:
//! `axiom_testkit`).
#![allow(dead_code)]

pub mod goldens;

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

use axiom_engine::model::{LayerSource, Model};
use axiom_engine::state::SharedState;
use axiom_engine::team::{ResidentWorker, Seat, Team};

/// Runs `f` from every seat of a team of `count` std threads (seat 0 on the
/// calling thread) running `model` on `state`, and returns seat 0's result. A
/// panicking member poisons the team so the others stop too instead of
/// waiting forever.
pub fn run_team<R, S: Send>(model: &Model<'_>, state: &SharedState<'_>, count: usize, layers: &dyn LayerSource, scratches: &mut [S], f: impl Fn(&mut Seat<'_, ResidentWorker<'_>>, &mut S) -> R + Sync) -> R {
    assert!(scratches.len() >= count);
    let team = Team::new(model, state, count).unwrap();
    struct PoisonOnPanic<'b, 'a>(&'b Team<'a>);
    impl Drop for PoisonOnPanic<'_, '_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.poison();
            }
        }
    }
    let worker = ResidentWorker::yielding(layers, std::thread::yield_now);
    let mut seats = team.seats(&worker).unwrap().into_iter();
    let mut lead = seats.next().unwrap();
    let (first, rest) = scratches.split_at_mut(1);
    std::thread::scope(|s| {
        for (mut seat, scratch) in seats.zip(rest.iter_mut()) {
            let (team, f) = (&team, &f);
            s.spawn(move || {
                let _guard = PoisonOnPanic(team);
                f(&mut seat, scratch);
            });
        }
        let _guard = PoisonOnPanic(&team);
        f(&mut lead, &mut first[0])
    })
}
