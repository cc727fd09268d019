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

use axiom_drivers::nvme::{Namespace, ReadCompletion};
use axiom_engine::image::{Extent, ExtentId, PackedLayout};
use axiom_hw::mem::slot_ring::{Filled, InFlight, Reuse, SlotRing, SlotState};
use axiom_hw::time as tsc;
use crossbeam_utils::CachePadded;

use crate::smp::launch;
use crate::storage::NvmeQueuePair;

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
            launch::wake_cpu(self.apic_id);
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
    /// The layers this streamer reads into `ring`, in ticket order: ticket
    /// `t` is layer `order[t % order.len()]` (the pinned layers once at
    /// boot, then the streamed layers every pass).
    order: Vec<usize>,
    ring: &'r SlotRing,
    verify_always: bool,
    verified: Vec<bool>,
    /// Next ticket to start streaming.
    next_ticket: u64,
    /// Reads in flight, by slot.
    in_flight: Vec<Option<InFlight<'r>>>,
    reads_in_flight: usize,
    /// Completions delivered by one poll (capacity: one per slot, so
    /// polling never allocates).
    done: Vec<ReadCompletion>,
    /// While [`Streamer::load_reporting`] runs: `(reads, bytes)` after each
    /// landed read (capacity one per slot, so landing never allocates).
    landings: Option<Vec<(u64, u64)>>,
    pub stats: IoStats,
}

impl<'r> Streamer<'r> {
    /// A streamer that reads the layers `order` into `ring`.
    pub fn new(qp: NvmeQueuePair, ns: Namespace, base: u64, image: &PackedLayout, ring: &'r SlotRing, order: Vec<usize>, verify_always: bool) -> Self {
        let n = image.layers.len();
        Streamer {
            qp,
            ns,
            base,
            layers: image.layers.clone(),
            order,
            ring,
            verify_always,
            verified: alloc::vec![false; n],
            next_ticket: 0,
            in_flight: (0..ring.len()).map(|_| None).collect(),
            reads_in_flight: 0,
            done: Vec::with_capacity(ring.len().max(16)),
            landings: None,
            stats: IoStats::default(),
        }
    }

    /// The same streamer (queue pair, counters, checksums seen) reading
    /// the layers `order` into `ring` from ticket 0: after the pinned layers
    /// are loaded, the streamed ones. Nothing may be in flight.
    pub fn retarget(self, ring: &'r SlotRing, order: Vec<usize>) -> Result<Streamer<'r>, String> {
        if self.reads_in_flight != 0 {
            return Err(format!("weight streamer: {} reads still in flight", self.reads_in_flight));
        }
        Ok(Streamer {
            in_flight: (0..ring.len()).map(|_| None).collect(),
            done: Vec::with_capacity(ring.len().max(16)),
            next_ticket: 0,
            order,
            ring,
            ..self
        })
    }

    fn layer_of(&self, ticket: u64) -> usize {
        self.order[(ticket % self.order.len() as u64) as usize]
    }

    fn last_ticket(&self) -> u64 {
        match self.ring.reuse() {
            Reuse::Keep => self.order.len() as u64,
            Reuse::Recycle => u64::MAX,
        }
    }

    /// Starts reads for as many tickets below `limit` as there are free
    /// slots, then handles finished reads. Returns whether anything happened.
    fn pump(&mut self, limit: u64) -> Result<bool, String> {
        let start = tsc::now_ns();
        let mut progressed = false;
        let limit = limit.min(self.last_ticket());
        while self.next_ticket < limit && self.reads_in_flight < self.ring.len() {
            let ticket = self.next_ticket;
            let layer = self.layer_of(ticket);
            let Some(filling) = self.ring.try_begin_stream(ticket).map_err(|e| format!("weight slot ring: {e}"))? else {
                break;
            };
            let extent = self.layers[layer];
            let (flight, dst) = filling.start_read(extent.size as usize).map_err(|e| format!("layer {layer}: {e}"))?;
            // In the namespace (checked when the image was read); checked again
            // rather than wrapped.
            let Some(at) = self.base.checked_add(extent.offset) else {
                return Err(format!("layer {layer}: offset {} + {} overflows", self.base, extent.offset));
            };
            let lba = at / self.ns.block_size as u64;
            // On an error the token is dropped: the slot is marked failed.
            self.qp.submit_read(&self.ns, lba, dst, ticket).map_err(|e| format!("layer {layer}: {e}"))?;
            self.in_flight[self.ring.slot_of(ticket)] = Some(flight);
            self.next_ticket += 1;
            self.reads_in_flight += 1;
            progressed = true;
        }
        if progressed {
            self.qp.flush();
        }
        let mut done = core::mem::take(&mut self.done);
        self.qp.process_completions(0, |c| done.push(c)).map_err(|e| format!("NVMe queue pair failed: {e}"))?;
        let mut result = Ok(());
        for c in done.drain(..) {
            if result.is_ok() {
                result = self.land(c);
            }
            progressed = true;
        }
        self.done = done;
        result?;
        if progressed {
            self.stats.busy_ns += tsc::now_ns() - start;
        }
        Ok(progressed)
    }

    /// One finished read: its slot's bytes are checked and handed to the
    /// compute cores, or the slot is failed (and so are they).
    fn land(&mut self, c: ReadCompletion) -> Result<(), String> {
        let ticket = c.tag;
        let layer = self.layer_of(ticket);
        let flight = self.in_flight.get_mut(self.ring.slot_of(ticket)).and_then(Option::take).filter(|f| f.ticket() == ticket);
        let Some(flight) = flight else {
            return Err(format!("NVMe completion for layer {layer} (ticket {ticket}) that is not in flight"));
        };
        self.reads_in_flight -= 1;
        if let Err(e) = c.result {
            flight.fail();
            return Err(format!("layer {layer}: read failed: {e}"));
        }
        let filled = match flight.landed(c) {
            Ok(filled) => filled,
            Err(mismatch) => {
                mismatch.0.fail();
                return Err(format!("layer {layer}: the NVMe completion names another buffer"));
            }
        };
        self.complete(layer, filled)
    }

    fn complete(&mut self, layer: usize, filled: Filled) -> Result<(), String> {
        let extent = self.layers[layer];
        self.stats.bytes += extent.size;
        self.stats.reads += 1;
        if self.verify_always || !self.verified[layer] {
            let t = tsc::now_ns();
            let ok = verify_extent(&extent, ExtentId::Layer(layer), filled.bytes());
            self.stats.crc_ns += tsc::now_ns() - t;
            if let Err(msg) = ok {
                filled.fail();
                return Err(msg);
            }
            self.verified[layer] = true;
            self.stats.verified += 1;
        }
        filled.finish().map_err(|e| format!("weight slot ring: {e}"))?;
        if let Some(l) = &mut self.landings {
            l.push((self.stats.reads, self.stats.bytes));
        }
        Ok(())
    }

    /// Streams until `ticket` is loaded (the synchronous path: boot loads
    /// and compute without an I/O core). Reads ahead only up to `ticket`.
    pub fn load(&mut self, ticket: u64) -> Result<(), String> {
        self.load_until(ticket, &mut |_, _| {})
    }

    /// [`Streamer::load`], calling `landed(reads, bytes)` after each read
    /// lands and is verified (counted from this call), in completion order.
    pub fn load_reporting(&mut self, ticket: u64, landed: &mut dyn FnMut(u64, u64)) -> Result<(), String> {
        self.landings = Some(Vec::with_capacity(self.ring.len().max(16)));
        let result = self.load_until(ticket, landed);
        self.landings = None;
        result
    }

    fn load_until(&mut self, ticket: u64, landed: &mut dyn FnMut(u64, u64)) -> Result<(), String> {
        let deadline = tsc::deadline_us(30_000_000);
        let (reads, bytes) = (self.stats.reads, self.stats.bytes);
        while self.next_ticket <= ticket || self.reads_in_flight > 0 {
            let progressed = self.pump(ticket + 1)?;
            if let Some(l) = &mut self.landings {
                for (r, b) in l.drain(..) {
                    landed(r - reads, b - bytes);
                }
            }
            if progressed {
                continue;
            }
            if tsc::passed(deadline) {
                return Err(format!("timed out loading layer {} (no NVMe progress for 30 s)", self.layer_of(ticket)));
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
            if stopping && self.reads_in_flight == 0 {
                return Ok(());
            }
            let limit = if stopping { self.next_ticket } else { u64::MAX };
            if self.pump(limit)? {
                last_progress = tsc::now_ns();
                idle_since = None;
            } else if self.reads_in_flight > 0 {
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
                launch::park_while(self.ring.watch(slot), &|| !stop.load(Ordering::SeqCst) && !next_free());
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
