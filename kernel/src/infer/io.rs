//! The weight streamer: owns the NVMe queue pair and fills layer slots in
//! ticket order (layer L+1, L+2, ... while L computes, wrapping to layer 0
//! for the next pass), with one read request per layer extent and up to one
//! request per free slot in flight. Each extent is checked against the
//! CRC32C `pack` stored, the first time it is read or every time
//! (`verify=always`), before its slot becomes `Resident`.
//!
//! The I/O core runs [`Streamer::run_until`]; without an I/O core the
//! leading compute core calls [`Streamer::load`] before each layer; at boot
//! the BSP uses the same path to load globals and resident layers.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_drivers::nvme::Namespace;
use axiom_engine::image::{Extent, ExtentId, PackedLayout};
use axiom_kernel::slot_ring::{SlotRing, SlotState};
use crossbeam_utils::CachePadded;

use super::pool::SlotMem;
use crate::storage::NvmeQueuePair;
use crate::{smp, tsc};

/// How an idle I/O core sleeps and gets woken: with nothing in flight and
/// no slot free it parks (`hlt`, or `mwait` on the next slot's word) instead
/// of polling, so it leaves the machine (and, under QEMU, the host CPU) to
/// the compute cores; whoever frees a slot or ends the answer wakes it.
pub struct IoWake {
    parked: CachePadded<AtomicBool>,
    apic_id: u32,
}

impl IoWake {
    pub fn new(apic_id: u32) -> Self {
        IoWake { parked: CachePadded::new(AtomicBool::new(false)), apic_id }
    }

    /// A slot was released or the answer ended: wake the I/O core if it sleeps.
    pub fn notify(&self) {
        if self.parked.load(Ordering::SeqCst) {
            smp::launch::wake(self.apic_id);
        }
    }
}

/// How long an idle I/O core spins before it parks: short, since a parked
/// core is woken by IPI within microseconds and spinning takes a core (under
/// QEMU, a host CPU) that the compute cores could use.
const IDLE_SPIN_NS: u64 = 10_000;

/// Counters for `@io`.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoStats {
    pub bytes: u64,
    pub reads: u64,
    pub verified: u64,
    /// Time spent submitting, completing and checksumming (not idle polling).
    pub busy_ns: u64,
    pub crc_ns: u64,
    /// Times the idle I/O core parked.
    pub parks: u64,
}

impl IoStats {
    /// What happened since `before`.
    pub fn since(&self, before: &IoStats) -> IoStats {
        IoStats {
            bytes: self.bytes - before.bytes,
            reads: self.reads - before.reads,
            verified: self.verified - before.verified,
            busy_ns: self.busy_ns - before.busy_ns,
            crc_ns: self.crc_ns - before.crc_ns,
            parks: self.parks - before.parks,
        }
    }
}

pub struct Streamer<'r> {
    qp: NvmeQueuePair,
    ns: Namespace,
    /// Byte offset of the image in the namespace.
    base: u64,
    layers: Vec<Extent>,
    slots: Vec<SlotMem>,
    ring: &'r SlotRing<'r>,
    resident: bool,
    verify_always: bool,
    verified: Vec<bool>,
    /// Next ticket to start streaming.
    next_ticket: u64,
    in_flight: usize,
    /// Tickets completed by one poll (capacity: one per slot, so polling
    /// never allocates).
    done: Vec<u64>,
    pub stats: IoStats,
}

// SAFETY: the slot addresses are plain numbers into the reserved region; the
// ring's state machine decides who may touch them, wherever the streamer runs.
unsafe impl Send for Streamer<'_> {}

fn layer_of(ticket: u64, n_layers: usize) -> usize {
    (ticket % n_layers as u64) as usize
}

impl<'r> Streamer<'r> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(qp: NvmeQueuePair, ns: Namespace, base: u64, image: &PackedLayout, slots: Vec<SlotMem>, ring: &'r SlotRing<'r>, resident: bool, verify_always: bool) -> Self {
        let n = image.layers.len();
        Streamer {
            qp,
            ns,
            base,
            layers: image.layers.clone(),
            slots,
            ring,
            resident,
            verify_always,
            verified: alloc::vec![false; n],
            next_ticket: 0,
            in_flight: 0,
            done: Vec::with_capacity(n.max(16)),
            stats: IoStats::default(),
        }
    }

    fn last_ticket(&self) -> u64 {
        if self.resident {
            self.layers.len() as u64
        } else {
            u64::MAX
        }
    }

    /// Starts reads for as many tickets below `limit` as there are free
    /// slots, then handles finished reads. Returns whether anything happened.
    fn pump(&mut self, limit: u64) -> Result<bool, String> {
        let start = tsc::now_ns();
        let mut progressed = false;
        let limit = limit.min(self.last_ticket());
        while self.next_ticket < limit && self.in_flight < self.slots.len() {
            let ticket = self.next_ticket;
            if !self.ring.try_begin_stream(ticket).map_err(|e| format!("weight slot ring: {e}"))? {
                break;
            }
            let extent = self.layers[layer_of(ticket, self.layers.len())];
            let slot = &self.slots[self.ring.slot_of(ticket)];
            // SAFETY: the ring just gave this slot to us (Streaming(ticket)) and
            // nobody reads it until we finish the stream below.
            let dst = unsafe { slot.read_buffer(extent.size as usize) };
            let lba = (self.base + extent.offset) / self.ns.block_size as u64;
            self.qp.submit_read(&self.ns, lba, dst, ticket).map_err(|e| format!("layer {}: {e}", layer_of(ticket, self.layers.len())))?;
            self.next_ticket += 1;
            self.in_flight += 1;
            progressed = true;
        }
        if progressed {
            self.qp.flush();
        }
        let mut done = core::mem::take(&mut self.done);
        done.clear();
        let mut first_error = None;
        self.qp
            .process_completions(0, |c| {
                if let Err(e) = c.result {
                    first_error.get_or_insert((c.tag, e));
                } else {
                    done.push(c.tag);
                }
            })
            .map_err(|e| format!("NVMe queue pair failed: {e}"))?;
        if let Some((ticket, e)) = first_error {
            let layer = layer_of(ticket, self.layers.len());
            let _ = self.ring.fail(ticket);
            return Err(format!("layer {layer}: read failed: {e}"));
        }
        for &ticket in &done {
            self.complete(ticket)?;
            progressed = true;
        }
        self.done = done;
        if progressed {
            self.stats.busy_ns += tsc::now_ns() - start;
        }
        Ok(progressed)
    }

    fn complete(&mut self, ticket: u64) -> Result<(), String> {
        let layer = layer_of(ticket, self.layers.len());
        let extent = self.layers[layer];
        self.in_flight -= 1;
        self.stats.bytes += extent.size;
        self.stats.reads += 1;
        if self.verify_always || !self.verified[layer] {
            let t = tsc::now_ns();
            // SAFETY: the slot is still Streaming(ticket): ours alone.
            let bytes = unsafe { self.slots[self.ring.slot_of(ticket)].bytes(extent.size as usize) };
            let ok = verify_extent(&extent, ExtentId::Layer(layer), bytes);
            self.stats.crc_ns += tsc::now_ns() - t;
            if let Err(msg) = ok {
                let _ = self.ring.fail(ticket);
                return Err(msg);
            }
            self.verified[layer] = true;
            self.stats.verified += 1;
        }
        self.ring.finish_stream(ticket).map_err(|e| format!("weight slot ring: {e}"))
    }

    /// Streams until `ticket` is loaded (the synchronous path: boot loads
    /// and compute without an I/O core). Reads ahead only up to `ticket`.
    pub fn load(&mut self, ticket: u64) -> Result<(), String> {
        let deadline = tsc::deadline_us(30_000_000);
        while self.next_ticket <= ticket || self.in_flight > 0 {
            if self.pump(ticket + 1)? {
                continue;
            }
            if tsc::passed(deadline) {
                return Err(format!("timed out loading layer {} (no NVMe progress for 30 s)", layer_of(ticket, self.layers.len())));
            }
            core::hint::spin_loop();
        }
        Ok(())
    }

    /// The I/O core's loop: keep every slot busy in ticket order until
    /// `stop` is set, then let the reads in flight finish. A read that makes
    /// no progress for 30 s is an error.
    pub fn run_until(&mut self, stop: &AtomicBool, wake: &IoWake) -> Result<(), String> {
        let mut last_progress = tsc::now_ns();
        let mut idle_since: Option<u64> = None;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if stopping && self.in_flight == 0 {
                return Ok(());
            }
            let limit = if stopping { self.next_ticket } else { u64::MAX };
            if self.pump(limit)? {
                last_progress = tsc::now_ns();
                idle_since = None;
            } else if self.in_flight > 0 {
                // Reads in flight: poll the completion queue (no interrupts).
                if tsc::now_ns() - last_progress > 30_000_000_000 {
                    return Err(String::from("NVMe reads made no progress for 30 s"));
                }
                core::hint::spin_loop();
            } else if tsc::now_ns() - *idle_since.get_or_insert_with(tsc::now_ns) < IDLE_SPIN_NS {
                core::hint::spin_loop();
            } else {
                // Every slot is full and nothing is in flight: sleep until a
                // compute core frees the next slot or the answer ends.
                let slot = self.ring.slot_of(self.next_ticket);
                let next_free = || self.ring.state(slot).0 == SlotState::Unloaded;
                wake.parked.store(true, Ordering::SeqCst);
                let watch = self.ring.word_addr(slot);
                smp::launch::park_while(watch, &|| !stop.load(Ordering::SeqCst) && !next_free());
                wake.parked.store(false, Ordering::SeqCst);
                self.stats.parks += 1;
                idle_since = None;
            }
        }
    }
}

/// Checks an extent's bytes against the stored CRC32C.
pub fn verify_extent(extent: &Extent, id: ExtentId, bytes: &[u8]) -> Result<(), String> {
    let found = axiom_engine::crc32c::crc32c(bytes);
    if found != extent.crc32c {
        return Err(format!("{id}: CRC32C mismatch (stored {:#010x}, computed {found:#010x}): the model image is corrupt", extent.crc32c));
    }
    Ok(())
}
