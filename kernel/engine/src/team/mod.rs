//! How the forward pass is split across cores: the SPMD lockstep model.
//!
//! Every worker (a kernel compute core, or a host thread) runs the *same*
//! forward function with its own index. Each phase of a layer is cut into
//! tiles (row ranges of a matmul, heads of attention); a worker computes its
//! tile, then all workers meet at a barrier before the next phase reads what
//! the others wrote. A [`Worker`] gives the forward pass its index, the team
//! size, the barrier, the weights of each layer (which may have to be waited
//! for, when the kernel streams them) and telemetry marks.
//!
//! Tiles are computed by [`tile`]: contiguous, near-equal, and the same on
//! every worker. Since each output element is computed by exactly one worker
//! with code that does not depend on the tile bounds, results are
//! bit-identical for every worker count.

mod barrier;
mod shared;

use core::ops::Range;

pub use barrier::SpinBarrier;
pub use shared::SharedBuf;

use crate::model::{LayerSource, LayerWeights};

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

/// One member of a team running the forward pass in lockstep.
///
/// # Safety
/// The forward pass writes shared buffers from several workers at once, each
/// in its own tile, and reads them after a barrier. That is sound only if an
/// implementation guarantees, for a team of `count()` workers running the same
/// forward call:
/// 1. `index()` is in `0..count()` and differs between workers;
/// 2. `barrier()` returns only once all `count()` workers have entered it,
///    and orders memory: everything a worker wrote before entering is visible
///    to every worker after it returns (release/acquire);
/// 3. the weights returned by `acquire_layer(l)` stay valid and unchanged
///    until this worker calls `release_layer(l)`.
pub unsafe trait Worker {
    /// This worker's index, `0..count()`. Worker 0 leads (samples, streams text).
    fn index(&self) -> usize;

    /// Number of workers in the team.
    fn count(&self) -> usize;

    /// Waits until every worker has arrived (see the safety contract).
    fn barrier(&self);

    /// The weights of layer `layer`: typically
    /// [`crate::model::LayerWeights::from_extent`] over the layer's extent
    /// bytes (a streamed slot), or a [`crate::model::LayerSource`] when all
    /// layers are resident. The kernel may wait here for its I/O core.
    fn acquire_layer(&self, layer: usize) -> crate::model::LayerWeights<'_>;

    /// This worker is done with layer `layer`'s weights (until the next token).
    fn release_layer(&self, _layer: usize) {}

    /// Telemetry: this worker starts `phase`.
    fn phase_begin(&self, _phase: Phase) {}

    /// Telemetry: this worker ends `phase` (before the phase's final barrier,
    /// so barrier time is not counted as compute).
    fn phase_end(&self, _phase: Phase) {}
}

/// A team of one: runs the forward pass on the calling thread, with every
/// layer resident (the kernel's single-core mode, simple host use, tests).
pub struct SoloWorker<'a> {
    layers: &'a dyn LayerSource,
}

impl<'a> SoloWorker<'a> {
    pub fn new(layers: &'a dyn LayerSource) -> Self {
        SoloWorker { layers }
    }
}

// SAFETY: a team of one: index 0 of 1 is unique, the barrier has nobody to
// wait for (program order is the only order), and resident layer bytes never
// change.
unsafe impl Worker for SoloWorker<'_> {
    fn index(&self) -> usize {
        0
    }

    fn count(&self) -> usize {
        1
    }

    fn barrier(&self) {}

    fn acquire_layer(&self, layer: usize) -> LayerWeights<'_> {
        self.layers.layer(layer)
    }
}

/// A member of a team that meets at a shared [`SpinBarrier`] and reads
/// resident layers: the host's threads, tests, and a kernel that holds the
/// whole model in memory. Made only by [`TeamWorker::team`], which hands out
/// each index once, so the [`Worker`] contract holds by construction.
pub struct TeamWorker<'a> {
    index: usize,
    count: usize,
    barrier: &'a SpinBarrier,
    layers: &'a dyn LayerSource,
    /// Called after `yield_after` fruitless spins at the barrier (e.g. the
    /// host's `thread::yield_now`, for teams larger than the core count).
    yield_now: Option<fn()>,
    yield_after: u32,
}

impl<'a> TeamWorker<'a> {
    /// The `barrier.count()` workers of one team, index 0 first. Give each to
    /// its own thread (or core).
    pub fn team(barrier: &'a SpinBarrier, layers: &'a dyn LayerSource, yield_now: Option<fn()>) -> alloc::vec::Vec<TeamWorker<'a>> {
        let count = barrier.count();
        (0..count).map(|index| TeamWorker { index, count, barrier, layers, yield_now, yield_after: 2_000 }).collect()
    }
}

// SAFETY: `team` creates exactly `barrier.count()` workers with the distinct
// indices 0..count sharing one barrier, whose wait has acquire/release
// ordering (SpinBarrier); resident layers are immutable for 'a.
unsafe impl Worker for TeamWorker<'_> {
    fn index(&self) -> usize {
        self.index
    }

    fn count(&self) -> usize {
        self.count
    }

    fn barrier(&self) {
        match self.yield_now {
            None => self.barrier.wait(),
            Some(yield_now) => {
                let after = self.yield_after;
                self.barrier.wait_with(|spins| if spins >= after { yield_now() } else { core::hint::spin_loop() })
            }
        }
    }

    fn acquire_layer(&self, layer: usize) -> LayerWeights<'_> {
        self.layers.layer(layer)
    }
}

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
