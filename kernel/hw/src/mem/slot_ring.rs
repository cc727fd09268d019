//! The weight slot ring: the lock-free hand-off of layer weights from the I/O
//! core (one producer, filling slots by NVMe DMA) to the compute cores (a
//! fixed number of consumers), together with the slots' memory, which only
//! the ring's state words give access to.
//!
//! The weight pool holds `K` slots. Layer loads are numbered by a *ticket*:
//! in streaming mode ([`Reuse::Recycle`]) ticket `t = pass * n_layers +
//! layer` lives in slot `t % K`; in resident mode ([`Reuse::Keep`]) `K ==
//! n_layers` and the ticket is the layer itself, loaded once. Each slot
//! carries one atomic word with its state and the ticket it holds:
//!
//! ```text
//!   Unloaded ──producer: begin(t)──▶ Streaming(t) ──finish──▶ Resident(t)
//!       ▲                                 │ fail                  │ first acquire
//!       │                                 ▼                       ▼
//!       └──last release (Recycle)──   Failed(t)           Computing(t)
//!                    Resident(t) ◀──last release (Keep)──────┘
//! ```
//!
//! Tickets make the hand-off ABA-free: a consumer waiting for ticket `t`
//! never mistakes the slot's previous content (`t - K`) for its own, and the
//! producer never overwrites a slot until every consumer has released the
//! ticket it holds.
//!
//! Memory access follows the states. The producer's side is typed: claiming
//! a slot gives a [`Filling`] token, which becomes the device's read buffer
//! and an [`InFlight`] token; only the driver's completion of *that* buffer
//! turns it into [`Filled`], whose bytes can be read (to check the CRC)
//! before it is finished. Consumers read a slot while they hold its ticket
//! (`acquire` .. `release`); since the engine's layer API cannot tie a borrow
//! to the release, that read is [`SlotRing::bytes`], `unsafe` with the
//! contract written down. Resident slots are never written again, so their
//! bytes are safe to read ([`SlotRing::resident_bytes`]).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use axiom_drivers::nvme::{ReadBuffer, ReadCompletion};
use crossbeam_utils::{Backoff, CachePadded};

use crate::cpu::Watch;

/// The state of one weight slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Holds nothing usable (initially, or released after compute).
    Unloaded,
    /// The producer is reading a layer extent into it.
    Streaming,
    /// The extent is in memory and verified; compute may use it.
    Resident,
    /// Compute cores are using it.
    Computing,
    /// The read or its checksum failed; consumers must stop.
    Failed,
}

const STATE_BITS: u32 = 3;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;
/// Largest ticket the state word can hold.
pub const MAX_TICKET: u64 = u64::MAX >> STATE_BITS;

fn encode(state: SlotState, ticket: u64) -> u64 {
    debug_assert!(ticket <= MAX_TICKET);
    let s = match state {
        SlotState::Unloaded => 0,
        SlotState::Streaming => 1,
        SlotState::Resident => 2,
        SlotState::Computing => 3,
        SlotState::Failed => 4,
    };
    (ticket << STATE_BITS) | s
}

fn decode(word: u64) -> (SlotState, u64) {
    let state = match word & STATE_MASK {
        0 => SlotState::Unloaded,
        1 => SlotState::Streaming,
        2 => SlotState::Resident,
        3 => SlotState::Computing,
        _ => SlotState::Failed,
    };
    (state, word >> STATE_BITS)
}

/// A misuse of the ring or a failed load, with what the slot held instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// The producer's load of `ticket` failed (read error or checksum mismatch).
    LoadFailed { ticket: u64 },
    /// A transition was asked from the wrong state: the slot held `found` with `found_ticket`.
    WrongState { slot: usize, ticket: u64, found: SlotState, found_ticket: u64 },
    /// The waiter gave up (its `keep_waiting` hook returned false).
    GaveUp { ticket: u64, found: SlotState, found_ticket: u64 },
    /// A read longer than the slot.
    TooLong { slot: usize, len: usize, capacity: usize },
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SlotError::LoadFailed { ticket } => write!(f, "weight load {ticket} failed"),
            SlotError::WrongState { slot, ticket, found, found_ticket } => write!(
                f,
                "weight slot {slot}: expected ticket {ticket}, found {found:?} holding ticket {found_ticket}"
            ),
            SlotError::GaveUp { ticket, found, found_ticket } => write!(
                f,
                "gave up waiting for weight load {ticket}: its slot is {found:?} holding ticket {found_ticket}"
            ),
            SlotError::TooLong { slot, len, capacity } => write!(f, "weight slot {slot}: {len} bytes do not fit its {capacity}"),
        }
    }
}

/// What happens to a slot once every consumer released it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Resident mode: it stays `Resident` for the next pass and is never
    /// written again.
    Keep,
    /// Streaming mode: it goes back to `Unloaded` for the producer.
    Recycle,
}

/// One slot's memory, owned by the ring that holds it (made by
/// [`super::Region::carve_slots`]).
#[derive(Debug)]
pub struct SlotMemory {
    ptr: NonNull<u8>,
    len: usize,
}

impl SlotMemory {
    /// # Safety
    /// `[ptr, ptr + len)` must be writable, identity-mapped RAM that nothing
    /// else uses for the rest of the program.
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize) -> SlotMemory {
        SlotMemory { ptr: NonNull::new(ptr).expect("slot memory at address 0"), len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct Slot {
    /// State and ticket, alone on its cache line.
    word: CachePadded<AtomicU64>,
    /// Consumers done with the current ticket.
    releases: CachePadded<AtomicU32>,
    mem: SlotMemory,
}

/// The ring over its slots (see the module docs).
pub struct SlotRing {
    slots: Box<[Slot]>,
    consumers: u32,
    reuse: Reuse,
}

// SAFETY: the slot memory is shared between the producer and the consumers
// only as the state words allow: the producer writes (by DMA) only slots it
// claimed (`Streaming`), and readers read only slots that are `Resident` or
// `Computing` (or the producer's own `Filled` slot). Everything else is atomic.
unsafe impl Sync for SlotRing {}
// SAFETY: the ring owns its slot memory; moving it moves that ownership.
unsafe impl Send for SlotRing {}

impl SlotRing {
    /// A ring over `memory` (all slots `Unloaded`), whose tickets are each
    /// used by `consumers` consumers (every one acquires and releases it).
    pub fn new(memory: Vec<SlotMemory>, consumers: usize, reuse: Reuse) -> SlotRing {
        assert!(!memory.is_empty(), "a slot ring needs at least one slot");
        assert!(consumers > 0 && consumers <= crate::MAX_CPUS, "a slot ring needs 1..={} consumers", crate::MAX_CPUS);
        let slots = memory
            .into_iter()
            .map(|mem| Slot { word: CachePadded::new(AtomicU64::new(0)), releases: CachePadded::new(AtomicU32::new(0)), mem })
            .collect();
        SlotRing { slots, consumers: consumers as u32, reuse }
    }

    /// Number of slots (`K`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn reuse(&self) -> Reuse {
        self.reuse
    }

    /// The slot that holds `ticket`.
    pub fn slot_of(&self, ticket: u64) -> usize {
        (ticket % self.slots.len() as u64) as usize
    }

    /// Bytes slot `slot` can hold.
    pub fn capacity(&self, slot: usize) -> usize {
        self.slots[slot].mem.len
    }

    /// `slot`'s state word, to `monitor`/`mwait` on.
    pub fn watch(&self, slot: usize) -> Watch<'_> {
        Watch::of(&*self.slots[slot].word)
    }

    /// Current state of `slot` and the ticket it holds (for telemetry and tests).
    pub fn state(&self, slot: usize) -> (SlotState, u64) {
        decode(self.slots[slot].word.load(Ordering::Acquire))
    }

    fn word(&self, ticket: u64) -> &AtomicU64 {
        &self.slots[self.slot_of(ticket)].word
    }

    /// Producer: claims `ticket`'s slot for streaming if the consumers are
    /// done with its previous content. `Ok(None)`: not free yet (try again
    /// later, e.g. after polling the device); an error if the slot holds a
    /// newer or the same ticket, which means the producer lost count.
    pub fn try_begin_stream(&self, ticket: u64) -> Result<Option<Filling<'_>>, SlotError> {
        assert!(ticket <= MAX_TICKET, "ticket {ticket} beyond the state word");
        let slot = self.slot_of(ticket);
        let word = self.word(ticket);
        let current = word.load(Ordering::Acquire);
        let (state, held) = decode(current);
        let fresh = current == 0;
        if !fresh && held >= ticket {
            return Err(SlotError::WrongState { slot, ticket, found: state, found_ticket: held });
        }
        if state != SlotState::Unloaded {
            return Ok(None);
        }
        // Acquire pairs with the consumers' Release in `release`: their reads
        // of the old weights happen before we overwrite the buffer.
        match word.compare_exchange(current, encode(SlotState::Streaming, ticket), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(Some(Filling { owner: Owner { ring: self, ticket } })),
            Err(now) => {
                let (found, found_ticket) = decode(now);
                Err(SlotError::WrongState { slot, ticket, found, found_ticket })
            }
        }
    }

    fn transition(&self, ticket: u64, from: SlotState, to: SlotState) -> Result<(), SlotError> {
        self.word(ticket)
            .compare_exchange(encode(from, ticket), encode(to, ticket), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|now| {
                let (found, found_ticket) = decode(now);
                SlotError::WrongState { slot: self.slot_of(ticket), ticket, found, found_ticket }
            })
    }

    /// Consumer: waits until `ticket` is usable and marks it `Computing`.
    /// `keep_waiting` runs between backoff rounds once spinning is no longer
    /// cheap (the kernel checks a deadline and parks there); returning false
    /// gives up. Returns the number of backoff rounds waited (0 = was ready).
    pub fn acquire(&self, ticket: u64, mut keep_waiting: impl FnMut() -> bool) -> Result<u64, SlotError> {
        let slot = self.slot_of(ticket);
        let word = self.word(ticket);
        let backoff = Backoff::new();
        let mut rounds = 0u64;
        loop {
            let current = word.load(Ordering::Acquire);
            let (state, held) = decode(current);
            if held == ticket {
                match state {
                    SlotState::Computing => return Ok(rounds),
                    SlotState::Resident => {
                        // Several consumers race here; whoever wins, the slot is Computing(ticket).
                        let _ = word.compare_exchange(current, encode(SlotState::Computing, ticket), Ordering::AcqRel, Ordering::Acquire);
                        continue;
                    }
                    SlotState::Failed => return Err(SlotError::LoadFailed { ticket }),
                    SlotState::Streaming | SlotState::Unloaded => {}
                }
            } else if held > ticket && current != 0 {
                return Err(SlotError::WrongState { slot, ticket, found: state, found_ticket: held });
            }
            rounds += 1;
            if backoff.is_completed() {
                if !keep_waiting() {
                    return Err(SlotError::GaveUp { ticket, found: state, found_ticket: held });
                }
            } else {
                backoff.snooze();
            }
        }
    }

    /// The first `len` bytes of `ticket`'s slot, for a consumer that holds
    /// it. Panics unless the slot is `Computing(ticket)` and `len` fits.
    ///
    /// # Safety
    /// The caller acquired `ticket` and must not use the slice after the
    /// ticket's last release: every consumer calls [`SlotRing::release`]
    /// exactly once per ticket it acquired, and only after it is done with
    /// the bytes (after the last release the producer may overwrite them).
    pub unsafe fn bytes(&self, ticket: u64, len: usize) -> &[u8] {
        let slot = &self.slots[self.slot_of(ticket)];
        let (state, held) = decode(slot.word.load(Ordering::Acquire));
        assert!(state == SlotState::Computing && held == ticket, "weight ticket {ticket} read while its slot is {state:?} holding {held}");
        assert!(len <= slot.mem.len, "{len} bytes of a {}-byte slot", slot.mem.len);
        // SAFETY: the slot is Computing(ticket): the producer does not write it
        // until every consumer released the ticket, which the caller promises
        // happens after this slice is dead.
        unsafe { core::slice::from_raw_parts(slot.mem.ptr.as_ptr(), len) }
    }

    /// Consumer: done with `ticket`. The last of the ring's consumers to
    /// release it ends its use: the slot becomes `Resident` again
    /// ([`Reuse::Keep`]) or `Unloaded` for the producer ([`Reuse::Recycle`]).
    /// Returns whether this was that last release.
    pub fn release(&self, ticket: u64) -> Result<bool, SlotError> {
        let slot = &self.slots[self.slot_of(ticket)];
        let (state, held) = decode(slot.word.load(Ordering::Acquire));
        if state != SlotState::Computing || held != ticket {
            return Err(SlotError::WrongState { slot: self.slot_of(ticket), ticket, found: state, found_ticket: held });
        }
        // AcqRel: every consumer's reads happen before the last one's release.
        if slot.releases.fetch_add(1, Ordering::AcqRel) + 1 < self.consumers {
            return Ok(false);
        }
        slot.releases.store(0, Ordering::Relaxed);
        let to = match self.reuse {
            Reuse::Keep => SlotState::Resident,
            Reuse::Recycle => SlotState::Unloaded,
        };
        self.transition(ticket, SlotState::Computing, to).map(|()| true)
    }

    /// The first `len` bytes of a resident slot holding `ticket` (resident
    /// mode only: such a slot is never written again).
    pub fn resident_bytes(&self, ticket: u64, len: usize) -> Option<&[u8]> {
        let slot = &self.slots[self.slot_of(ticket)];
        let (state, held) = decode(slot.word.load(Ordering::Acquire));
        let loaded = matches!(state, SlotState::Resident | SlotState::Computing) && held == ticket;
        if self.reuse != Reuse::Keep || !loaded || len > slot.mem.len {
            return None;
        }
        // SAFETY: in Keep mode a Resident or Computing slot only moves between
        // those two states: no release sends it back to the producer, so its
        // bytes never change again and live as long as the ring.
        Some(unsafe { core::slice::from_raw_parts(slot.mem.ptr.as_ptr(), len) })
    }
}

/// The producer's claim on one `Streaming` slot; a token dropped without
/// being finished marks the load failed (its consumers stop).
struct Owner<'r> {
    ring: &'r SlotRing,
    ticket: u64,
}

impl Owner<'_> {
    fn slot(&self) -> &Slot {
        &self.ring.slots[self.ring.slot_of(self.ticket)]
    }

    /// Give up the token without failing the slot; its ticket.
    fn disarm(self) -> u64 {
        let ticket = self.ticket;
        core::mem::forget(self);
        ticket
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        let _ = self.ring.transition(self.ticket, SlotState::Streaming, SlotState::Failed);
    }
}

/// A claimed slot, before its read starts.
pub struct Filling<'r> {
    owner: Owner<'r>,
}

impl<'r> Filling<'r> {
    pub fn ticket(&self) -> u64 {
        self.owner.ticket
    }

    pub fn capacity(&self) -> usize {
        self.owner.slot().mem.len
    }

    /// The slot's first `len` bytes as the device's destination. The slot
    /// is readable again only once the driver delivers this read's
    /// completion ([`InFlight::landed`]).
    pub fn start_read(self, len: usize) -> Result<(InFlight<'r>, ReadBuffer), SlotError> {
        let slot = self.owner.slot();
        if len > slot.mem.len {
            return Err(SlotError::TooLong { slot: self.owner.ring.slot_of(self.owner.ticket), len, capacity: slot.mem.len });
        }
        // SAFETY: the slot is Streaming(ticket) and this token is its only
        // owner: nobody reads or writes its memory until the token turns into
        // `Filled`, which needs this buffer's completion from the driver (the
        // driver delivers it after every command of the read completed, or
        // never, when the queue pair failed and the controller is disabled).
        let buffer = unsafe { ReadBuffer::new(slot.mem.ptr.as_ptr(), len) };
        let target = (slot.mem.ptr.as_ptr() as usize, len);
        Ok((InFlight { owner: self.owner, target }, buffer))
    }

    /// The load failed before its read started.
    pub fn fail(self) {
        drop(self.owner);
    }
}

/// A slot whose read the device is performing.
pub struct InFlight<'r> {
    owner: Owner<'r>,
    target: (usize, usize),
}

impl<'r> InFlight<'r> {
    pub fn ticket(&self) -> u64 {
        self.owner.ticket
    }

    /// The driver's completion of this slot's read (consumed: one
    /// completion lands one read). Another read's completion is handed back
    /// with the token, unchanged.
    pub fn landed(self, completion: ReadCompletion) -> Result<Filled<'r>, Box<(InFlight<'r>, ReadCompletion)>> {
        if completion.target() != self.target {
            return Err(Box::new((self, completion)));
        }
        Ok(Filled { owner: self.owner, len: self.target.1 })
    }

    /// The read failed (or will never complete): consumers stop.
    pub fn fail(self) {
        drop(self.owner);
    }
}

/// A slot whose read completed: the producer may check the bytes, then
/// finish (consumers may use it) or fail it.
pub struct Filled<'r> {
    owner: Owner<'r>,
    len: usize,
}

impl Filled<'_> {
    pub fn ticket(&self) -> u64 {
        self.owner.ticket
    }

    /// The bytes the device wrote.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the slot is Streaming(ticket), owned by this token, and the
        // device's write completed (`landed`): nothing else touches it.
        unsafe { core::slice::from_raw_parts(self.owner.slot().mem.ptr.as_ptr(), self.len) }
    }

    /// The extent is complete and verified: consumers may use it.
    pub fn finish(self) -> Result<(), SlotError> {
        let ring = self.owner.ring;
        let ticket = self.owner.disarm();
        ring.transition(ticket, SlotState::Streaming, SlotState::Resident)
    }

    /// The extent is wrong (e.g. its checksum): consumers stop.
    pub fn fail(self) {
        drop(self.owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::Region;
    use axiom_drivers::nvme::sim::{SimClock, SimConfig, SimController, SimDma, SimNamespace};
    use axiom_drivers::nvme::{Controller, ControllerOptions, QueuePairOptions};
    use std::boxed::Box;
    use std::vec::Vec;

    #[test]
    fn state_word_round_trips() {
        for state in [SlotState::Unloaded, SlotState::Streaming, SlotState::Resident, SlotState::Computing, SlotState::Failed] {
            for ticket in [0, 1, 7, 12345, MAX_TICKET] {
                assert_eq!(decode(encode(state, ticket)), (state, ticket));
            }
        }
    }

    /// `n` slots of `len` bytes carved from a region over leaked host
    /// memory, and that memory's address.
    fn slots(n: usize, len: usize) -> (Vec<SlotMemory>, usize) {
        let block: &'static mut [u8] = Box::leak(std::vec![0u8; n * len + 4096].into_boxed_slice());
        let base = (block.as_mut_ptr() as usize).next_multiple_of(4096);
        // SAFETY: leaked host memory, used by this region alone.
        let mut region = unsafe { Region::new(base as u64, (n * len) as u64) };
        (region.carve_slots((0..n).map(|i| ((i * len) as u64, len as u64))).unwrap(), base)
    }

    /// Claims and finishes `ticket` without a device (the bytes stay as they are).
    fn load_without_device(ring: &SlotRing, ticket: u64) {
        let filling = ring.try_begin_stream(ticket).unwrap().expect("slot free");
        let t = filling.owner.disarm();
        ring.transition(t, SlotState::Streaming, SlotState::Resident).unwrap();
    }

    #[test]
    fn single_thread_lifecycle_and_misuse() {
        let (mem, _) = slots(2, 64);
        let ring = SlotRing::new(mem, 1, Reuse::Recycle);
        let f0 = ring.try_begin_stream(0).unwrap().unwrap();
        let f1 = ring.try_begin_stream(1).unwrap().unwrap();
        // Slot 0 still holds ticket 0 (streaming): ticket 2 must wait.
        assert!(ring.try_begin_stream(2).unwrap().is_none());
        let t = f0.owner.disarm();
        ring.transition(t, SlotState::Streaming, SlotState::Resident).unwrap();
        assert_eq!(ring.acquire(0, || panic!("ticket 0 is ready")), Ok(0));
        assert_eq!(ring.state(0), (SlotState::Computing, 0));
        // Still in use: no reuse.
        assert!(ring.try_begin_stream(2).unwrap().is_none());
        assert_eq!(ring.release(0), Ok(true));
        assert!(matches!(ring.release(0), Err(SlotError::WrongState { found: SlotState::Unloaded, .. })), "a second release is refused");
        let f2 = ring.try_begin_stream(2).unwrap().unwrap();
        // A consumer asking for an old ticket after the slot moved on is an error, not a wrong answer.
        assert!(matches!(ring.acquire(0, || false), Err(SlotError::WrongState { found_ticket: 2, .. })));
        // The producer losing count is an error.
        assert!(matches!(ring.try_begin_stream(1), Err(SlotError::WrongState { found: SlotState::Streaming, found_ticket: 1, .. })));
        // A claim given up (dropped) fails the load; its consumers are told.
        drop(f2);
        assert_eq!(ring.acquire(2, || true), Err(SlotError::LoadFailed { ticket: 2 }));
        assert!(matches!(f1.start_read(65), Err(SlotError::TooLong { slot: 1, len: 65, capacity: 64 })));
        assert_eq!(ring.state(1), (SlotState::Failed, 1), "a refused read fails the load");
        // Waiting on a ticket nobody streams gives up through the hook.
        let (mem, _) = slots(2, 64);
        let ring = SlotRing::new(mem, 1, Reuse::Recycle);
        let mut asked = 0;
        let r = ring.acquire(3, || {
            asked += 1;
            asked < 3
        });
        assert!(matches!(r, Err(SlotError::GaveUp { ticket: 3, .. })));
        assert_eq!(asked, 3);
    }

    #[test]
    fn the_last_of_the_consumers_frees_the_slot() {
        let (mem, _) = slots(1, 64);
        let ring = SlotRing::new(mem, 3, Reuse::Recycle);
        load_without_device(&ring, 0);
        for _ in 0..3 {
            ring.acquire(0, || true).unwrap();
        }
        assert_eq!(ring.release(0), Ok(false));
        assert_eq!(ring.release(0), Ok(false));
        assert!(ring.try_begin_stream(1).unwrap().is_none(), "one consumer still reads");
        assert_eq!(ring.release(0), Ok(true));
        assert!(ring.try_begin_stream(1).unwrap().is_some());
    }

    #[test]
    fn resident_mode_keeps_slots_across_passes() {
        let (mem, _) = slots(3, 64);
        let ring = SlotRing::new(mem, 2, Reuse::Keep);
        assert_eq!(ring.resident_bytes(0, 64), None, "not loaded yet");
        for layer in 0..3 {
            load_without_device(&ring, layer);
        }
        for _pass in 0..4 {
            for layer in 0..3 {
                for _consumer in 0..2 {
                    assert_eq!(ring.acquire(layer, || panic!("resident layers never wait")), Ok(0));
                }
                assert_eq!(ring.release(layer), Ok(false));
                assert_eq!(ring.release(layer), Ok(true));
                assert_eq!(ring.state(layer as usize), (SlotState::Resident, layer));
            }
        }
        // A resident slot is never handed back to the producer, so its bytes stay readable.
        assert!(ring.try_begin_stream(3).unwrap().is_none());
        assert_eq!(ring.resident_bytes(1, 64).map(|b| b.len()), Some(64));
        assert_eq!(ring.resident_bytes(1, 65), None, "longer than the slot");
        let (mem, _) = slots(1, 64);
        let streaming = SlotRing::new(mem, 1, Reuse::Recycle);
        load_without_device(&streaming, 0);
        assert_eq!(streaming.resident_bytes(0, 8), None, "streamed slots are recycled: never resident bytes");
    }

    /// Bytes that differ at every offset and between seeds.
    fn pattern(len: usize, seed: u64) -> Vec<u8> {
        (0..len as u64).map(|i| (i.wrapping_add(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect()
    }

    /// The real NVMe driver, on the simulated controller, streams `n_layers`
    /// extents through `n_slots` slots for `passes` passes while `consumers`
    /// threads read every ticket: each consumer sees exactly its ticket's
    /// bytes (so no slot is overwritten while in use), and a completion
    /// never lands a slot other than its own.
    fn stream_under_threads(n_slots: usize, n_layers: u64, passes: u64, consumers: usize) {
        const EXTENT: usize = 8192;
        let disk = pattern(EXTENT * n_layers as usize, 7);
        let (mem, base) = slots(n_slots, EXTENT);
        let dma = SimDma::new();
        {
            // SAFETY: (test) a short-lived view of the slots' block, only to
            // register its pages with the simulated device's address space.
            let block = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, n_slots * EXTENT) };
            dma.map_contiguous(block);
        }
        let clock = SimClock::new(1000);
        let sim = SimController::new(&dma, SimConfig::default(), std::vec![SimNamespace { block_shift: 9, data: disk.clone() }]);
        let mut ctrl = Controller::init(&sim, &dma, &clock, ControllerOptions::default()).unwrap();
        let ns = ctrl.first_namespace().unwrap();
        let mut qp = ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();

        let ring = SlotRing::new(mem, consumers, Reuse::Recycle);
        let total = n_layers * passes;
        let layer_bytes = |ticket: u64| &disk[(ticket % n_layers) as usize * EXTENT..][..EXTENT];
        let mut refused = 0;
        std::thread::scope(|s| {
            for c in 0..consumers {
                let ring = &ring;
                s.spawn(move || {
                    for ticket in 0..total {
                        ring.acquire(ticket, || true).unwrap();
                        // SAFETY: acquired above; released below, after the last use.
                        let bytes = unsafe { ring.bytes(ticket, EXTENT) };
                        assert!(bytes == layer_bytes(ticket), "consumer {c} ticket {ticket}");
                        ring.release(ticket).unwrap();
                    }
                });
            }
            // The producer runs here (the device model is single-threaded).
            let mut in_flight: Vec<InFlight> = Vec::new();
            let (mut next, mut finished) = (0u64, 0u64);
            while finished < total {
                while next < total {
                    let Some(filling) = ring.try_begin_stream(next).unwrap() else { break };
                    let (flight, buf) = filling.start_read(EXTENT).unwrap();
                    qp.submit_read(&ns, (next % n_layers) * (EXTENT as u64 / 512), buf, next).unwrap();
                    in_flight.push(flight);
                    next += 1;
                }
                let mut done = Vec::new();
                qp.process_completions(0, |c| done.push(c)).unwrap();
                for mut c in done {
                    c.result.unwrap();
                    let own = in_flight.swap_remove(in_flight.iter().position(|f| f.ticket() == c.tag).unwrap());
                    if let Some(other) = in_flight.pop() {
                        let (back, c_back) = *other.landed(c).err().expect("a completion lands only its own slot");
                        in_flight.push(back);
                        c = c_back;
                        refused += 1;
                    }
                    let filled = own.landed(c).ok().expect("its own completion lands");
                    assert!(filled.bytes() == layer_bytes(filled.ticket()));
                    filled.finish().unwrap();
                    finished += 1;
                }
                std::thread::yield_now();
            }
        });
        if n_slots > 1 {
            assert!(refused > 0, "the wrong-slot case was exercised");
        }
        for slot in 0..n_slots {
            assert_eq!(ring.state(slot).0, SlotState::Unloaded);
        }
    }

    #[test]
    fn two_slots_many_layers_wrap_around() {
        stream_under_threads(2, 5, 8, 3);
    }

    #[test]
    fn one_slot_degenerates_to_synchronous_loading() {
        stream_under_threads(1, 3, 6, 2);
    }

    #[test]
    fn more_slots_than_needed() {
        stream_under_threads(7, 4, 5, 1);
    }
}
