//! The weight slot ring: the lock-free hand-off of layer weights from the I/O
//! core (one producer) to the compute cores (many consumers).
//!
//! The weight pool holds `K` slots, each big enough for the largest layer
//! extent. Layer loads are numbered by a *ticket*: in streaming mode ticket
//! `t = pass * n_layers + layer` (a pass is one forward call over all layers)
//! and lives in slot `t % K`; in resident mode `K == n_layers` and the ticket
//! is the layer itself, loaded once. Each slot carries one atomic word with
//! its state and the ticket it holds:
//!
//! ```text
//!   Unloaded ──producer: begin_stream(t)──▶ Streaming(t) ──finish_stream──▶ Resident(t)
//!       ▲                                        │ fail                        │ first consumer
//!       │                                        ▼                             ▼
//!       └──────release(keep = false)──────  Failed(t)        Computing(t) ◀───┘
//!                      Resident(t) ◀──release(keep = true)──────┘
//! ```
//!
//! Tickets make the hand-off ABA-free: a consumer waiting for ticket `t`
//! never mistakes the slot's previous content (`t - K`) for its own, and the
//! producer never overwrites a slot until the consumers have released the
//! ticket it holds. Everything is `core` atomics plus `crossbeam-utils`
//! (`CachePadded` so slots never share a cache line, `Backoff` for waiting).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use crossbeam_utils::{Backoff, CachePadded};

/// The state of one weight slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Holds nothing usable (initially, or released after compute).
    Unloaded,
    /// The I/O core is reading a layer extent into it.
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
        }
    }
}

/// One slot's state word, alone on its cache line.
pub struct Slot {
    word: CachePadded<AtomicU64>,
}

impl Slot {
    pub const fn new() -> Self {
        Slot { word: CachePadded::new(AtomicU64::new(0)) }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// The ring over caller-provided slots (the kernel keeps them in its tensor
/// region's bookkeeping; tests on the stack).
pub struct SlotRing<'a> {
    slots: &'a [Slot],
}

impl<'a> SlotRing<'a> {
    /// A ring over `slots`, all of which must be `Unloaded` (fresh).
    pub fn new(slots: &'a [Slot]) -> Self {
        assert!(!slots.is_empty(), "a slot ring needs at least one slot");
        SlotRing { slots }
    }

    /// Number of slots (`K`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The slot that holds `ticket`.
    pub fn slot_of(&self, ticket: u64) -> usize {
        (ticket % self.slots.len() as u64) as usize
    }

    /// Address of `slot`'s state word (to `monitor`/`mwait` on it).
    pub fn word_addr(&self, slot: usize) -> *const u8 {
        &*self.slots[slot].word as *const AtomicU64 as *const u8
    }

    /// Current state of `slot` and the ticket it holds (for telemetry and tests).
    pub fn state(&self, slot: usize) -> (SlotState, u64) {
        decode(self.slots[slot].word.load(Ordering::Acquire))
    }

    /// Producer: claims `ticket`'s slot for streaming if the consumers are
    /// done with its previous content. `Ok(false)`: not free yet (try again
    /// later, e.g. after polling the device); an error if the slot holds a
    /// newer or the same ticket, which means the producer lost count.
    pub fn try_begin_stream(&self, ticket: u64) -> Result<bool, SlotError> {
        let slot = self.slot_of(ticket);
        let word = &self.slots[slot].word;
        let current = word.load(Ordering::Acquire);
        let (state, held) = decode(current);
        let fresh = current == 0;
        if !fresh && held >= ticket {
            return Err(SlotError::WrongState { slot, ticket, found: state, found_ticket: held });
        }
        if state != SlotState::Unloaded {
            return Ok(false);
        }
        // Acquire pairs with the consumers' Release in `release`: their reads
        // of the old weights happen before we overwrite the buffer.
        match word.compare_exchange(current, encode(SlotState::Streaming, ticket), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(true),
            Err(now) => {
                let (found, found_ticket) = decode(now);
                Err(SlotError::WrongState { slot, ticket, found, found_ticket })
            }
        }
    }

    /// Producer: the extent for `ticket` is fully in its slot and verified.
    pub fn finish_stream(&self, ticket: u64) -> Result<(), SlotError> {
        self.transition(ticket, SlotState::Streaming, SlotState::Resident)
    }

    /// Producer: the load of `ticket` failed; consumers waiting for it stop.
    pub fn fail(&self, ticket: u64) -> Result<(), SlotError> {
        self.transition(ticket, SlotState::Streaming, SlotState::Failed)
    }

    /// Consumer: waits until `ticket` is usable and marks it `Computing`.
    /// `keep_waiting` runs between backoff rounds once spinning is no longer
    /// cheap (the kernel checks a deadline and parks there); returning false
    /// gives up. Returns the number of backoff rounds waited (0 = was ready).
    pub fn acquire(&self, ticket: u64, mut keep_waiting: impl FnMut() -> bool) -> Result<u64, SlotError> {
        let slot = self.slot_of(ticket);
        let word = &self.slots[slot].word;
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
                        let _ = word.compare_exchange(
                            current,
                            encode(SlotState::Computing, ticket),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
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

    /// Consumers' leader, after every consumer is done with `ticket` (after
    /// the layer's final barrier): `keep` leaves it Resident for the next
    /// pass (resident mode), otherwise the producer may reuse the slot.
    pub fn release(&self, ticket: u64, keep: bool) -> Result<(), SlotError> {
        let to = if keep { SlotState::Resident } else { SlotState::Unloaded };
        self.transition(ticket, SlotState::Computing, to)
    }

    fn transition(&self, ticket: u64, from: SlotState, to: SlotState) -> Result<(), SlotError> {
        let slot = self.slot_of(ticket);
        self.slots[slot]
            .word
            .compare_exchange(encode(from, ticket), encode(to, ticket), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|now| {
                let (found, found_ticket) = decode(now);
                SlotError::WrongState { slot, ticket, found, found_ticket }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Barrier;
    use std::vec::Vec;

    #[test]
    fn state_word_round_trips() {
        for state in [SlotState::Unloaded, SlotState::Streaming, SlotState::Resident, SlotState::Computing, SlotState::Failed] {
            for ticket in [0, 1, 7, 12345, MAX_TICKET] {
                assert_eq!(decode(encode(state, ticket)), (state, ticket));
            }
        }
    }

    #[test]
    fn single_thread_lifecycle_and_misuse() {
        let slots = [Slot::new(), Slot::new()];
        let ring = SlotRing::new(&slots);
        assert_eq!(ring.try_begin_stream(0), Ok(true));
        assert_eq!(ring.try_begin_stream(1), Ok(true));
        // Slot 0 still holds ticket 0 (streaming): ticket 2 must wait.
        assert_eq!(ring.try_begin_stream(2), Ok(false));
        assert_eq!(ring.finish_stream(0), Ok(()));
        assert_eq!(ring.acquire(0, || panic!("ticket 0 is ready")), Ok(0));
        assert_eq!(ring.state(0), (SlotState::Computing, 0));
        // Still in use: no reuse.
        assert_eq!(ring.try_begin_stream(2), Ok(false));
        assert_eq!(ring.release(0, false), Ok(()));
        assert_eq!(ring.try_begin_stream(2), Ok(true));
        // A consumer asking for an old ticket after the slot moved on is an error, not a wrong answer.
        assert!(matches!(ring.acquire(0, || false), Err(SlotError::WrongState { found_ticket: 2, .. })));
        // Double finish is refused.
        assert_eq!(ring.finish_stream(1), Ok(()));
        assert!(matches!(ring.finish_stream(1), Err(SlotError::WrongState { found: SlotState::Resident, .. })));
        // A failed load is reported to its consumers.
        assert_eq!(ring.fail(2), Ok(()));
        assert_eq!(ring.acquire(2, || true), Err(SlotError::LoadFailed { ticket: 2 }));
        // Waiting on a ticket nobody streams gives up through the hook.
        let mut asked = 0;
        let r = ring.acquire(3, || {
            asked += 1;
            asked < 3
        });
        assert!(matches!(r, Err(SlotError::GaveUp { ticket: 3, .. })));
        assert_eq!(asked, 3);
    }

    #[test]
    fn resident_mode_keeps_slots_across_passes() {
        let slots = [Slot::new(), Slot::new(), Slot::new()];
        let ring = SlotRing::new(&slots);
        for layer in 0..3 {
            assert_eq!(ring.try_begin_stream(layer), Ok(true));
            assert_eq!(ring.finish_stream(layer), Ok(()));
        }
        for _pass in 0..4 {
            for layer in 0..3 {
                assert_eq!(ring.acquire(layer, || panic!("resident layers never wait")), Ok(0));
                assert_eq!(ring.release(layer, true), Ok(()));
            }
        }
        // A resident slot is never handed back to the producer.
        assert_eq!(ring.try_begin_stream(3), Ok(false));
    }

    /// One producer, several consumers in lockstep, fewer slots than layers,
    /// several passes: every consumer sees exactly the bytes produced for its
    /// ticket, and the producer never overwrites a slot in use.
    fn stream_under_threads(n_slots: usize, n_layers: u64, passes: u64, consumers: usize) {
        const WORDS: usize = 64;
        let slots: Vec<Slot> = (0..n_slots).map(|_| Slot::new()).collect();
        let ring = SlotRing::new(&slots);
        // The "weights": each slot's buffer, written non-atomically in spirit
        // (relaxed stores), so a premature read or overwrite shows up as a mismatch.
        let buffers: Vec<Vec<AtomicU64>> = (0..n_slots).map(|_| (0..WORDS).map(|_| AtomicU64::new(0)).collect()).collect();
        let pattern = |ticket: u64, i: usize| ticket.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
        let total = n_layers * passes;
        let layer_done = Barrier::new(consumers);
        std::thread::scope(|s| {
            s.spawn(|| {
                for ticket in 0..total {
                    while !ring.try_begin_stream(ticket).unwrap() {
                        std::hint::spin_loop();
                    }
                    let buf = &buffers[ring.slot_of(ticket)];
                    for (i, w) in buf.iter().enumerate() {
                        w.store(pattern(ticket, i), Ordering::Relaxed);
                    }
                    ring.finish_stream(ticket).unwrap();
                }
            });
            for c in 0..consumers {
                let (ring, buffers, layer_done) = (&ring, &buffers, &layer_done);
                s.spawn(move || {
                    for ticket in 0..total {
                        ring.acquire(ticket, || true).unwrap();
                        let buf = &buffers[ring.slot_of(ticket)];
                        for (i, w) in buf.iter().enumerate() {
                            assert_eq!(w.load(Ordering::Relaxed), pattern(ticket, i), "consumer {c} ticket {ticket} word {i}");
                        }
                        // Lockstep: the leader releases after everyone has read.
                        if layer_done.wait().is_leader() {
                            ring.release(ticket, false).unwrap();
                        }
                    }
                });
            }
        });
        for slot in 0..n_slots {
            assert_eq!(ring.state(slot).0, SlotState::Unloaded);
        }
    }

    #[test]
    fn two_slots_many_layers_wrap_around() {
        stream_under_threads(2, 5, 40, 3);
    }

    #[test]
    fn one_slot_degenerates_to_synchronous_loading() {
        stream_under_threads(1, 3, 30, 2);
    }

    #[test]
    fn more_slots_than_needed() {
        stream_under_threads(7, 4, 25, 1);
    }
}
