//! Buffers that several workers write at once, each in its own tile.
//!
//! A [`SharedBuf`] is a `&mut [f32]` handed to a team. Shared access goes
//! through [`SharedBuf::read`] and [`SharedBuf::write`], which are `unsafe`:
//! the compiler cannot see that the ranges of different workers are disjoint,
//! so the caller promises it. The forward pass (the only caller) keeps one
//! discipline, which is what every `SAFETY` comment there refers to:
//!
//! - **Phases.** Between two team barriers, each buffer is either only read
//!   (by anyone) or only written, each element by exactly one worker: the
//!   owner of the tile it lies in ([`super::tile`] over the seat's index,
//!   disjoint between the distinct seats of a [`super::Team`]).
//! - **Barriers.** The team's barrier orders every write of a phase before
//!   every read of the next one (release/acquire, [`super::Seat`]).
//! - **One view at a time.** A worker never holds two overlapping views.

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
// SAFETY: through `&SharedBuf`, the memory is reached only by the unsafe
// `read`/`write`, whose contracts forbid any unordered access to one element
// by two threads with at least one write.
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

    /// `range` of the buffer, read-only. Panics if it is out of bounds.
    ///
    /// # Safety
    /// While the returned slice lives, no thread writes any element of
    /// `range`, and every write to it before was ordered before this call (by
    /// program order or by a barrier).
    #[inline]
    pub(crate) unsafe fn read(&self, range: Range<usize>) -> &[f32] {
        assert!(range.start <= range.end && range.end <= self.len, "SharedBuf read {range:?} of {}", self.len);
        // SAFETY: in bounds (checked above) of memory borrowed for 'm; no
        // concurrent or unordered write (the caller's contract).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().add(range.start), range.len()) }
    }

    /// `range` of the buffer, writable. Panics if it is out of bounds.
    ///
    /// # Safety
    /// While the returned slice lives, no other reference to any element of
    /// `range` is used (no other thread reads or writes it, and the caller
    /// holds no other view of it), and every access to it before was ordered
    /// before this call (by program order or by a barrier).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn write(&self, range: Range<usize>) -> &mut [f32] {
        assert!(range.start <= range.end && range.end <= self.len, "SharedBuf write {range:?} of {}", self.len);
        // SAFETY: in bounds (checked above); the only live reference to these
        // elements (the caller's contract).
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().add(range.start), range.len()) }
    }

    /// Bytes `range` of the buffer (its floats' memory, for caches that
    /// store other element types), read-only. Panics if out of bounds.
    ///
    /// # Safety
    /// As [`Self::read`], for the floats these bytes lie in.
    #[inline]
    pub(crate) unsafe fn read_bytes(&self, range: Range<usize>) -> &[u8] {
        assert!(range.start <= range.end && range.end <= self.len * 4, "SharedBuf read bytes {range:?} of {}", self.len * 4);
        // SAFETY: in bounds of memory borrowed for 'm (checked above); any
        // initialized bytes are valid u8; no concurrent or unordered write
        // (the caller's contract).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>().add(range.start), range.len()) }
    }

    /// Bytes `range` of the buffer, writable. Panics if out of bounds.
    ///
    /// # Safety
    /// As [`Self::write`], for the floats these bytes lie in.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn write_bytes(&self, range: Range<usize>) -> &mut [u8] {
        assert!(range.start <= range.end && range.end <= self.len * 4, "SharedBuf write bytes {range:?} of {}", self.len * 4);
        // SAFETY: in bounds (checked above); the only live reference to these
        // bytes (the caller's contract); any bytes written leave the floats
        // valid (every bit pattern is an f32).
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>().add(range.start), range.len()) }
    }
}
