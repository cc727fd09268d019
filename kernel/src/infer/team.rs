//! The compute cores' side of the engine's [`Worker`] contract: team index
//! and size from the SPMD launch, the launch's lockstep barrier, layer
//! weights from the slot ring (waiting for the I/O core only at a layer
//! boundary), and per-core, per-layer timings in TSC cycles.

use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use axiom_engine::model::{LayerLayout, LayerWeights};
use axiom_engine::team::{Phase, Worker};
use axiom_hw::cpu::{halt_forever, rdtsc};
use axiom_hw::mem::slot_ring::{Reuse, SlotError, SlotRing};
use axiom_hw::{power, time as tsc};

use super::io::{IoWake, Streamer};
use super::pool::PackedLayer;
use super::screen_view::meter;
use super::stop_with_error;
use crate::smp::LaunchedCpu;

/// How long a compute core waits for a layer before calling it a failure.
const LAYER_WAIT_LIMIT_US: u64 = 60_000_000;

/// What every compute core shares (read-only but for atomics), for the
/// whole run.
pub struct TeamShared {
    /// The pinned layers (every layer when resident), loaded at boot.
    pub pinned: Option<&'static SlotRing>,
    /// The slots the other layers stream through (streaming mode).
    pub streamed: Option<&'static SlotRing>,
    /// Where each layer lives and its rank in that ring.
    pub places: Vec<Place>,
    /// Layers streamed per pass.
    pub n_streamed: usize,
    pub layouts: &'static [LayerLayout],
    /// Bytes of each layer extent.
    pub extent_bytes: Vec<usize>,
    /// Repacked copies of the resident layers (matrices read from there).
    pub packed: Option<&'static [PackedLayer]>,
    /// Without an I/O core: the streamer that worker 0 drives itself.
    pub sync_loader: Option<&'static spin::Mutex<Streamer<'static>>>,
    /// The streaming I/O core, woken when a slot frees up.
    pub io_wake: Option<&'static IoWake>,
}

/// Where a layer's weights live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Loaded once, kept: ticket = this rank among the pinned layers.
    Pinned(usize),
    /// Read every pass: ticket = pass × streamed layers + this rank.
    Streamed(usize),
}

impl TeamShared {
    /// The ring that holds `layer` in forward pass `pass`, and its ticket.
    fn ticket(&self, pass: u64, layer: usize) -> (&'static SlotRing, u64) {
        let (ring, rank) = match self.places[layer] {
            Place::Pinned(rank) => (self.pinned, rank as u64),
            Place::Streamed(rank) => (self.streamed, pass * self.n_streamed as u64 + rank as u64),
        };
        match ring {
            Some(r) => (r, rank),
            None => stop_with_error(&alloc::format!("layer {layer} has no weight ring")),
        }
    }
}

/// One core's timings for one layer of one forward pass (TSC cycles).
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerRecord {
    pub pass: u32,
    pub layer: u32,
    pub stream_wait: u64,
    pub attn: u64,
    pub ffn: u64,
    pub barrier: u64,
}

/// One core's timings outside the layers for one pass (embedding, output head).
#[derive(Clone, Copy, Debug, Default)]
pub struct PassRecord {
    pub compute: u64,
    pub barrier: u64,
}

pub struct KernelWorker<'w, 'j> {
    cpu: RefCell<&'w mut LaunchedCpu<'j>>,
    shared: &'w TeamShared,
    /// Absolute forward-pass number of the current pass.
    pass: Cell<u64>,
    /// Passes started by this worker in this launch.
    passes: Cell<usize>,
    in_layer: Cell<bool>,
    phase_start: Cell<u64>,
    pub layers: RefCell<Vec<LayerRecord>>,
    pub passes_out: RefCell<Vec<PassRecord>>,
}

impl<'w, 'j> KernelWorker<'w, 'j> {
    /// `first_pass`: the forward-pass number this launch starts at (tickets
    /// continue across answers); `max_passes` sizes the records up front.
    pub fn new(cpu: &'w mut LaunchedCpu<'j>, shared: &'w TeamShared, first_pass: u64, max_passes: usize) -> Self {
        let n_layers = shared.layouts.len();
        KernelWorker {
            cpu: RefCell::new(cpu),
            shared,
            pass: Cell::new(first_pass.wrapping_sub(1)),
            passes: Cell::new(0),
            in_layer: Cell::new(false),
            phase_start: Cell::new(0),
            layers: RefCell::new(Vec::with_capacity(max_passes * n_layers)),
            passes_out: RefCell::new(Vec::with_capacity(max_passes)),
        }
    }

    /// This core's index in the compute team (its engine seat).
    pub fn index(&self) -> usize {
        self.cpu.borrow().index()
    }

    /// Forward passes this worker ran.
    pub fn passes_run(&self) -> usize {
        self.passes.get()
    }

    fn with_layer(&self, f: impl FnOnce(&mut LayerRecord)) {
        if let Some(r) = self.layers.borrow_mut().last_mut() {
            f(r)
        }
    }

    fn with_pass(&self, f: impl FnOnce(&mut PassRecord)) {
        if let Some(r) = self.passes_out.borrow_mut().last_mut() {
            f(r)
        }
    }

    fn push_layer(&self, r: LayerRecord) {
        let mut v = self.layers.borrow_mut();
        // Records beyond the planned capacity are dropped rather than
        // allocating on the token path.
        if v.len() < v.capacity() {
            v.push(r);
        }
    }
}

impl Worker for KernelWorker<'_, '_> {
    /// The launch's barrier (spin, then park until the IPI), timed.
    fn wait_for_team(&self) {
        let out = self.cpu.borrow_mut().barrier();
        meter::barrier(self.index(), out.cycles);
        if self.in_layer.get() {
            self.with_layer(|r| r.barrier += out.cycles);
        } else {
            self.with_pass(|r| r.barrier += out.cycles);
        }
    }

    fn acquire_layer(&self, layer: usize) -> LayerWeights<'_> {
        let s = self.shared;
        let (ring, ticket) = s.ticket(self.pass.get(), layer);
        let start = rdtsc();
        let streamed = matches!(s.places[layer], Place::Streamed(_));
        if let (Some(loader), 0, true) = (s.sync_loader, self.index(), streamed) {
            if let Err(msg) = loader.lock().load(ticket) {
                stop_with_error(&msg);
            }
        }
        let deadline = tsc::deadline_us(LAYER_WAIT_LIMIT_US);
        let got = ring.acquire(ticket, || {
            if power::stop_requested() {
                halt_forever();
            }
            !tsc::passed(deadline)
        });
        if let Err(SlotError::LoadFailed { .. }) = got {
            // The producer reports why (read error, checksum) and stops the machine.
            halt_forever();
        }
        if let Err(e) = got {
            stop_with_error(&alloc::format!("compute core waiting for layer {layer}: {e}"));
        }
        let waited = rdtsc() - start;
        meter::stream_wait(self.index(), waited);
        self.push_layer(LayerRecord { pass: self.passes.get().saturating_sub(1) as u32, layer: layer as u32, stream_wait: waited, ..Default::default() });
        self.in_layer.set(true);
        #[allow(unsafe_code)]
        // SAFETY: acquired above: the slot stays `Computing` for this ticket
        // until every member of the team has called `release_layer`, which
        // the engine does only after its last use of these weights, once per
        // acquired layer; the producer writes only slots it claimed from
        // `Unloaded`.
        let bytes = unsafe { ring.bytes(ticket, s.extent_bytes[layer]) };
        let weights = match s.packed {
            Some(p) => LayerWeights::from_packed(&s.layouts[layer], &p[layer].plan, bytes, p[layer].bytes),
            None => LayerWeights::from_extent(&s.layouts[layer], bytes),
        };
        match weights {
            Ok(w) => w,
            Err(e) => stop_with_error(&alloc::format!("layer {layer}: {e}")),
        }
    }

    fn release_layer(&self, layer: usize) {
        let s = self.shared;
        let (ring, ticket) = s.ticket(self.pass.get(), layer);
        match ring.release(ticket) {
            Ok(true) if ring.reuse() == Reuse::Recycle => {
                if let Some(w) = s.io_wake {
                    w.notify();
                }
            }
            Ok(_) => {}
            Err(e) => stop_with_error(&alloc::format!("releasing layer {layer}: {e}")),
        }
    }

    fn phase_begin(&self, phase: Phase) {
        if phase == Phase::Embed {
            self.pass.set(self.pass.get().wrapping_add(1));
            self.passes.set(self.passes.get() + 1);
            let mut v = self.passes_out.borrow_mut();
            if v.len() < v.capacity() {
                v.push(PassRecord::default());
            }
        }
        if phase == Phase::Output {
            self.in_layer.set(false);
        }
        self.phase_start.set(rdtsc());
    }

    fn phase_end(&self, phase: Phase) {
        let took = rdtsc() - self.phase_start.get();
        meter::busy(self.index(), took);
        match phase {
            Phase::Attention { .. } => self.with_layer(|r| r.attn += took),
            Phase::Ffn { .. } => self.with_layer(|r| r.ffn += took),
            Phase::Embed | Phase::Output => self.with_pass(|r| r.compute += took),
        }
    }
}
