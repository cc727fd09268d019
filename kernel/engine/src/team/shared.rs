//! Buffers that several workers write at once, each in its own tile.
//!
//! This is the engine's one module of `unsafe` for threading. A [`SharedBuf`]
//! is a `&mut [f32]` handed to a team: during a phase, each worker writes only
//! the ranges of its own tile (from [`super::tile`], disjoint by
//! construction), and reads only ranges nobody writes in that phase; the
//! barrier between phases (a [`super::Worker`] guarantee) orders the writes
//! before the next phase's reads. The forward pass follows that discipline;
//! these accessors are crate-private so nothing else can break it.

use core::marker::PhantomData;
use core::ops::Range;
use core::ptr::NonNull;

/// An `f32` buffer shared by a team, written by disjoint tiles.
pub struct SharedBuf<'m> {
    ptr: NonNull<f32>,
    len: usize,
    _borrow: PhantomData<&'m mut [f32]>,
}

// SAFETY: a SharedBuf is a unique borrow of its memory (taken in `new`), so
// moving it to another thread is like moving the `&mut [f32]`.
unsafe impl Send for SharedBuf<'_> {}
// SAFETY: shared use from several threads goes through `read`/`write`, whose
// callers (the forward pass) write disjoint tiles and separate writes from
// reads of the same range by a barrier, so no two threads ever access one
// element with at least one write unordered.
unsafe impl Sync for SharedBuf<'_> {}

impl<'m> SharedBuf<'m> {
    /// Takes over `mem` for the lifetime of the buffer.
    pub fn new(mem: &'m mut [f32]) -> Self {
        let len = mem.len();
        SharedBuf { ptr: NonNull::from(mem).cast(), len, _borrow: PhantomData }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole buffer, when no team is running (exclusive borrow).
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: `&mut self` excludes every other access; ptr/len come from
        // the `&'m mut [f32]` given to `new`, which is still borrowed.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The whole buffer, read-only, when no team is running.
    pub fn as_slice(&mut self) -> &[f32] {
        self.as_mut_slice()
    }

    /// Reads `range` during a phase in which no worker writes it.
    #[inline]
    pub(crate) fn read(&self, range: Range<usize>) -> &[f32] {
        assert!(range.start <= range.end && range.end <= self.len, "SharedBuf read {range:?} of {}", self.len);
        // SAFETY: in bounds (checked above) of memory borrowed for 'm. No
        // worker writes this range in the current phase (forward-pass
        // discipline, see the module comment), and writes of earlier phases
        // are ordered before this read by the barrier in between.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().add(range.start), range.end - range.start) }
    }

    /// Writes `range`, which belongs to this worker's tile in the current
    /// phase: no other worker reads or writes it until the next barrier.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn write(&self, range: Range<usize>) -> &mut [f32] {
        assert!(range.start <= range.end && range.end <= self.len, "SharedBuf write {range:?} of {}", self.len);
        // SAFETY: in bounds (checked above). The range is part of this
        // worker's tile: tiles of different workers are disjoint (`tile`),
        // and the forward pass never holds two overlapping views from one
        // worker, so this is the only live reference to these elements
        // until the barrier that ends the phase.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().add(range.start), range.end - range.start) }
    }
}
