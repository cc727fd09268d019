//! How the forward pass is split across cores: the SPMD lockstep model.
//!
//! Every worker (a kernel compute core, or a host thread) runs the *same*
//! forward function from its own [`Seat`] of a [`Team`]. Each phase of a
//! layer is cut into tiles (row ranges of a matmul, heads of attention); a
//! worker computes its tile, then all workers meet at a barrier before the
//! next phase reads what the others wrote.
//!
//! Tiles are computed by [`tile`]: contiguous, near-equal, and the same on
//! every worker. Since each output element is computed by exactly one worker
//! with code that does not depend on the tile bounds, results are
//! bit-identical for every worker count.
//!
//! # Where soundness lives
//!
//! The workers write shared buffers ([`SharedBuf`]) at once, each in its own
//! tile. That is free of data races only if the seats are distinct, all use
//! the same model, state, team size and batch, and every barrier orders
//! memory. All of it is established here, by engine code, so the code above
//! the engine needs no `unsafe` to run a team:
//!
//! - [`Team::new`] binds one model and one state (refusing a state another
//!   team is using) and fixes the team size;
//! - [`Team::seat`] hands out each index at most once;
//! - the barrier is the team's own (`team/barrier.rs`); the platform's
//!   [`Worker::wait_for_team`] only decides how to wait;
//! - [`crate::forward::forward`] first checks that every seat was given the
//!   same batch (one extra barrier per call).
//!
//! What the platform supplies through [`Worker`] (layer weights, how to wait,
//! telemetry) is ordinary safe code: a wrong answer there costs time or
//! gives wrong logits, never undefined behaviour.

mod barrier;
#[allow(unsafe_code)] // SharedBuf: views into memory the whole team shares
mod shared;

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use barrier::SpinBarrier;
pub use shared::SharedBuf;

use crate::model::{LayerSource, LayerWeights, Model};
use crate::state::SharedState;

/// A phase of the forward pass, for telemetry marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Embedding lookup of the batch's tokens.
    Embed,
    /// A layer's attention half: norm, Q/K/V, RoPE, attention, output projection.
    Attention { layer: usize },
    /// A layer's FFN half: norm, gate/up, SwiGLU, down projection.
    Ffn { layer: usize },
    /// Final norm and the output head over the vocabulary.
    Output,
}

/// What a platform supplies to one member of a team: the weights of each
/// layer (which may have to be waited for, when the kernel streams them),
/// how to wait at a barrier, and telemetry marks. Safe to implement: the
/// engine does not trust it for memory safety (see the module comment).
pub trait Worker {
    /// The weights of layer `layer`: typically
    /// [`crate::model::LayerWeights::from_extent`] over the layer's extent
    /// bytes (a streamed slot), or a [`crate::model::LayerSource`] when all
    /// layers are resident. Called by every member at the start of each
    /// layer; the kernel may wait here for its I/O core.
    fn acquire_layer(&self, layer: usize) -> LayerWeights<'_>;

    /// This member is done with layer `layer`'s weights (until the next
    /// token): called by every member after its last use of them, before the
    /// layer's last barrier.
    fn release_layer(&self, _layer: usize) {}

    /// At a barrier, after this member arrived at the team's own barrier:
    /// wait for the others the platform's way (the kernel's cores meet at
    /// their launch barrier, which parks them). Afterwards the engine waits
    /// on its own barrier until everyone has arrived, calling [`Self::relax`]
    /// while it spins, so returning early only costs spinning.
    fn wait_for_team(&self) {}

    /// Called on every spin of the team's barrier (`spins` so far in this
    /// wait): e.g. a yield to the OS after many spins.
    fn relax(&self, _spins: u32) {
        core::hint::spin_loop()
    }

    /// Telemetry: this member starts `phase`.
    fn phase_begin(&self, _phase: Phase) {}

    /// Telemetry: this member ends `phase` (before the phase's final barrier,
    /// so barrier time is not counted as compute).
    fn phase_end(&self, _phase: Phase) {}
}

/// A worker over resident layers (the host's threads, tests, a kernel that
/// holds the whole model): one value can serve every seat of a team.
pub struct ResidentWorker<'a> {
    layers: &'a dyn LayerSource,
    /// Called after [`YIELD_AFTER_SPINS`] fruitless spins at a barrier.
    yield_now: Option<fn()>,
}

/// Spins at a barrier before a [`ResidentWorker`] starts yielding.
pub const YIELD_AFTER_SPINS: u32 = 2_000;

impl<'a> ResidentWorker<'a> {
    /// Spins at barriers (one member per core).
    pub fn new(layers: &'a dyn LayerSource) -> Self {
        ResidentWorker { layers, yield_now: None }
    }

    /// Calls `yield_now` (e.g. the host's `thread::yield_now`) after a while
    /// at a barrier: for teams that may be larger than the core count, where
    /// a spinning waiter would hold the CPU of the member it waits for.
    pub fn yielding(layers: &'a dyn LayerSource, yield_now: fn()) -> Self {
        ResidentWorker { layers, yield_now: Some(yield_now) }
    }
}

impl Worker for ResidentWorker<'_> {
    fn acquire_layer(&self, layer: usize) -> LayerWeights<'_> {
        self.layers.layer(layer)
    }

    fn relax(&self, spins: u32) {
        match self.yield_now {
            Some(yield_now) if spins >= YIELD_AFTER_SPINS => yield_now(),
            _ => core::hint::spin_loop(),
        }
    }
}

/// Why a team or a seat could not be formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamError {
    /// A team needs at least one member.
    Empty,
    /// The state was sized for a different model.
    StateMismatch,
    /// Another team is running on this state.
    StateInUse,
    /// The index is not below the team size.
    NoSuchSeat { index: usize, count: usize },
    /// The seat was already taken.
    SeatTaken { index: usize },
}

impl fmt::Display for TeamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TeamError::Empty => write!(f, "a team needs at least one member"),
            TeamError::StateMismatch => write!(f, "the inference state was sized for a different model"),
            TeamError::StateInUse => write!(f, "another team is running on this inference state"),
            TeamError::NoSuchSeat { index, count } => write!(f, "seat {index} does not exist in a team of {count}"),
            TeamError::SeatTaken { index } => write!(f, "seat {index} is already taken"),
        }
    }
}

impl core::error::Error for TeamError {}

/// The members that run one model on one state in lockstep. While it lives,
/// no other team can use the state.
pub struct Team<'a> {
    model: &'a Model<'a>,
    state: &'a SharedState<'a>,
    barrier: SpinBarrier,
    taken: Vec<AtomicBool>,
    /// The leader's words, checked by every seat (see `Seat::agree_on`).
    agreed: [AtomicU64; AGREED_WORDS],
}

impl<'a> Team<'a> {
    /// A team of `count` members running `model` on `state`.
    pub fn new(model: &'a Model<'a>, state: &'a SharedState<'a>, count: usize) -> Result<Team<'a>, TeamError> {
        if count == 0 {
            return Err(TeamError::Empty);
        }
        if !state.fits(&model.config) {
            return Err(TeamError::StateMismatch);
        }
        if state.team_running.swap(true, Ordering::Acquire) {
            return Err(TeamError::StateInUse);
        }
        Ok(Team { model, state, barrier: SpinBarrier::new(count), taken: (0..count).map(|_| AtomicBool::new(false)).collect(), agreed: Default::default() })
    }

    /// Team size.
    pub fn count(&self) -> usize {
        self.taken.len()
    }

    /// Seat `index` (`0..count`; seat 0 leads: samples, streams text), run
    /// by `worker`. Each seat can be taken once per team.
    pub fn seat<'t, W: Worker + ?Sized>(&'t self, index: usize, worker: &'t W) -> Result<Seat<'t, W>, TeamError> {
        let count = self.count();
        let flag = self.taken.get(index).ok_or(TeamError::NoSuchSeat { index, count })?;
        if flag.swap(true, Ordering::AcqRel) {
            return Err(TeamError::SeatTaken { index });
        }
        Ok(Seat { team: self, index, worker })
    }

    /// Every seat, in order, each run by `worker` (e.g. one
    /// [`ResidentWorker`] shared by all).
    pub fn seats<'t, W: Worker + ?Sized>(&'t self, worker: &'t W) -> Result<Vec<Seat<'t, W>>, TeamError> {
        (0..self.count()).map(|index| self.seat(index, worker)).collect()
    }

    /// Marks the team dead (a member stopped): every member waiting at a
    /// barrier, now or later, panics instead of waiting forever.
    pub fn poison(&self) {
        self.barrier.poison();
    }
}

impl Drop for Team<'_> {
    fn drop(&mut self) {
        self.state.team_running.store(false, Ordering::Release);
    }
}

/// One member's place in a [`Team`]: its index, and the worker that runs it.
pub struct Seat<'t, W: Worker + ?Sized> {
    team: &'t Team<'t>,
    index: usize,
    worker: &'t W,
}

impl<'t, W: Worker + ?Sized> Seat<'t, W> {
    /// This member's index, `0..count()`. Seat 0 leads.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Team size.
    pub fn count(&self) -> usize {
        self.team.count()
    }

    /// The worker running this seat.
    pub fn worker(&self) -> &'t W {
        self.worker
    }

    /// The logits of this seat's last forward call (rows of `n_vocab`, see
    /// [`SharedState::logits`]), for the leader between forward calls;
    /// `None` on the other seats.
    #[allow(unsafe_code)] // the leader's view of a SharedBuf between phases
    pub fn leader_logits(&mut self) -> Option<&mut [f32]> {
        if self.index != 0 {
            return None;
        }
        let state = self.team.state;
        // SAFETY: every member's writes to the logits (the output phase) end
        // before the barrier that ends this seat's forward call; the next
        // ones come after the barrier that starts the next forward call,
        // which this seat must enter, ending this exclusive borrow first.
        // Seat 0 exists once per team, and one team per state.
        Some(unsafe { state.logits.write(0..state.logits.len()) })
    }

    pub(crate) fn model(&self) -> &'t Model<'t> {
        self.team.model
    }

    pub(crate) fn state(&self) -> &'t SharedState<'t> {
        self.team.state
    }

    /// This seat's part of `0..n` in units of `granule` (see [`tile`]).
    pub(crate) fn tile(&self, n: usize, granule: usize) -> Range<usize> {
        tile(n, granule, self.index, self.count())
    }

    /// Waits until every member of the team has arrived. Release/acquire:
    /// everything any member wrote before arriving is visible to every member
    /// afterwards.
    pub(crate) fn barrier(&self) {
        let arrival = self.team.barrier.arrive();
        self.worker.wait_for_team();
        self.team.barrier.depart(arrival, |spins| self.worker.relax(spins));
    }

    /// Checks that every member passes the same `words`, compared exactly
    /// (one barrier; none in a team of one). A member that disagrees with the
    /// leader poisons the team and panics before anything is written:
    /// different batches would give overlapping tiles.
    pub(crate) fn agree_on(&self, words: [u64; AGREED_WORDS]) {
        if self.count() == 1 {
            return;
        }
        let agreed = &self.team.agreed;
        if self.index == 0 {
            // Read by the others after the barrier below; rewritten only
            // after the next one, which they reach after reading.
            for (slot, w) in agreed.iter().zip(words) {
                slot.store(w, Ordering::Relaxed);
            }
        }
        self.barrier();
        if agreed.iter().zip(words).any(|(slot, w)| slot.load(Ordering::Relaxed) != w) {
            self.team.poison();
            panic!("seat {} was given another batch than seat 0: every member must run the same forward call", self.index);
        }
    }
}

/// Words the seats compare in [`Seat::agree_on`].
pub(crate) const AGREED_WORDS: usize = 5;

/// The `index`-th of `count` contiguous, near-equal parts of `0..n`, cut at
/// multiples of `granule` (except at `n`). The same on every worker, disjoint
/// between workers, and together they cover `0..n`.
pub fn tile(n: usize, granule: usize, index: usize, count: usize) -> Range<usize> {
    debug_assert!(granule > 0 && count > 0 && index < count);
    let units = n.div_ceil(granule);
    let start = units * index / count * granule;
    let end = units * (index + 1) / count * granule;
    start.min(n)..end.min(n)
}

/// Rows per tile unit of a matmul: SIMD kernels work on a few rows at a time,
/// and ranges aligned to this keep every tile on their fast path.
pub const ROW_GRANULE: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_and_do_not_overlap() {
        for n in [0usize, 1, 5, 9, 15, 64, 576, 1000, 49152] {
            for granule in [1usize, 16, 32, 64] {
                for count in 1..=8 {
                    let mut next = 0;
                    for i in 0..count {
                        let r = tile(n, granule, i, count);
                        assert_eq!(r.start, next, "n {n} g {granule} c {count}");
                        assert!(r.end >= r.start);
                        if r.end < n {
                            assert_eq!(r.end % granule, 0);
                        }
                        next = r.end;
                    }
                    assert_eq!(next, n);
                }
            }
        }
        // Balanced: 576 rows over 2 workers in units of 16.
        assert_eq!(tile(576, 16, 0, 2), 0..288);
        assert_eq!(tile(576, 16, 1, 2), 288..576);
    }
}
