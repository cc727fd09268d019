//! The tensor-native memory plan: how one physically contiguous region is
//! carved into the weight pool (globals, pinned layers, streaming slots), the
//! KV-cache pool and the activations, and which layers stay in memory.
//!
//! ```text
//!   region: [ globals | pinned 0 .. P-1 | slot 0 .. K-1 | packed head ][ KV slabs (per layer) | activations ]
//!            \_______________________ weight pool ____________________/ \________ inference state _________/
//! ```
//!
//! *Resident* (every layer fits): the weight pool is the image's data
//! section as it is on disk (globals followed by every layer extent, back to
//! back), so the slots are the layer extents in place. *Streaming*
//! otherwise: `P` layers are *pinned* (read once at boot, kept) and the other
//! `n - P` are *streamed* every token through `K` slots, each as large as
//! the largest layer extent. The pinned layers are spread evenly over the
//! layer order ([`is_pinned`]) so that every streamed layer's read overlaps
//! the compute of the pinned layers before it (see docs/architecture.md).
//! The packed head is the output matrix repacked at boot into the engine's
//! faster row-interleaved layout (it is used every token in both modes).
//! Pure arithmetic, tested on the host; every size is checked.

use core::fmt;

/// Alignment of every part of the region (huge-page friendly).
pub const PART_ALIGN: u64 = 2 << 20;

/// Streaming slots a plan keeps when the budget allows (fewer when fewer
/// layers stream, down to two): one slot being computed on, one landed and
/// one in flight keep the I/O core busy through the gap of pinned layers
/// between two streamed ones; every further slot would cost a layer that
/// could be pinned instead (a pinned layer is never read again).
pub const DEFAULT_STREAM_SLOTS: usize = 3;

/// What the plan is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanInput {
    /// Bytes of the globals extent (embedding, output norm, output head).
    pub globals_bytes: u64,
    /// Sum of every layer extent.
    pub layers_bytes: u64,
    /// The largest layer extent: the size of one streaming slot (and of
    /// one pinned layer's place, rounded up to 4 KiB).
    pub max_layer_bytes: u64,
    /// The repacked output head (0: not repacked).
    pub head_bytes: u64,
    /// A repacked copy of every layer (0: none wanted). Resident mode adds
    /// it when the budget holds it too; streaming never does.
    pub packed_layers_bytes: u64,
    pub n_layers: usize,
    /// The inference state: KV cache (all layers) and shared activations.
    pub kv_bytes: u64,
    pub activation_bytes: u64,
    /// Memory allowed for weights (`budget=`); `None`: whatever is free.
    pub budget: Option<u64>,
    /// `slots=K`: stream with exactly K slots (and, without `pin=`, pin
    /// nothing: every layer streams).
    pub force_slots: Option<usize>,
    /// `pin=N`: stream with exactly N pinned layers.
    pub force_pinned: Option<usize>,
    /// The largest contiguous free physical range.
    pub free_bytes: u64,
    /// The next largest free ranges (0: none): pinned layers that do not
    /// fit beside the rest in the largest range go there, whole spans each
    /// (on a 4 GiB machine, the RAM above 4 GiB beside the 3 GiB below).
    pub spill_bytes: [u64; MAX_SPILL],
}

/// Most free ranges besides the largest that a plan puts pinned layers in.
pub const MAX_SPILL: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Resident,
    Streaming,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Resident => "resident",
            Mode::Streaming => "streaming",
        }
    }
}

/// The carved region, offsets relative to its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorPlan {
    pub mode: Mode,
    pub n_layers: usize,
    /// Layers kept in memory (`n_layers` when resident).
    pub pinned: usize,
    /// Where the pinned layers start (streaming), each `pinned_span` bytes.
    pub pinned_offset: u64,
    pub pinned_span: u64,
    /// Streaming slots (`n_layers` when resident: the extents in place).
    pub slots: usize,
    /// Where the streaming slots start.
    pub slots_offset: u64,
    /// Bytes per slot (streaming; resident slots are the extents in place).
    pub slot_bytes: u64,
    pub weight_pool_bytes: u64,
    /// Where the packed head starts (4 KiB aligned).
    pub head_offset: u64,
    /// Resident layers also have a repacked copy, at this offset.
    pub packed_layers_offset: Option<u64>,
    pub kv_offset: u64,
    pub kv_bytes: u64,
    pub activation_offset: u64,
    pub activation_bytes: u64,
    pub region_bytes: u64,
    /// The weight budget the plan was made for (spill ranges included).
    pub budget: u64,
    /// Pinned layers placed in each spill range (`spill_bytes` order):
    /// pinned ranks `pinned - spilled() ..` in order, `pinned_span` each.
    pub spill: [usize; MAX_SPILL],
}

impl TensorPlan {
    /// Layers read from disk every token.
    pub fn streamed(&self) -> usize {
        self.n_layers - self.pinned
    }

    /// Pinned layers outside the main region.
    pub fn spilled(&self) -> usize {
        self.spill.iter().sum()
    }

    /// Pinned layers inside the main region (the first ranks).
    pub fn pinned_in_region(&self) -> usize {
        self.pinned - self.spilled()
    }

    /// Whether `layer` stays in memory (every layer when resident).
    pub fn is_pinned(&self, layer: usize) -> bool {
        self.mode == Mode::Resident || is_pinned(layer, self.n_layers, self.pinned)
    }
}

/// Which layers a plan with `pinned` of `n_layers` pinned layers keeps:
/// spread evenly over the layer order (layer `i` is pinned when
/// `floor((i+1)·P/n) > floor(i·P/n)`), so the streamed layers alternate
/// with runs of pinned ones of equal length and every streamed read
/// overlaps the compute of the pinned run before it. Layer 0 streams and
/// the last layer is pinned whenever `0 < P < n`: the output head's compute
/// at the token boundary covers the read of the next token's layer 0.
pub fn is_pinned(layer: usize, n_layers: usize, pinned: usize) -> bool {
    if n_layers == 0 || layer >= n_layers {
        return false;
    }
    let (l, n, p) = (layer as u128, n_layers as u128, pinned.min(n_layers) as u128);
    (l + 1) * p / n > l * p / n
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// Not even two layer slots fit in the budget.
    BudgetTooSmall { budget: u64, min_budget: u64 },
    /// `slots=K` outside `2..=n_layers`.
    BadSlotCount { slots: usize, n_layers: usize },
    /// `pin=N` not below the layer count, or more pinned layers than the
    /// budget holds beside the slots.
    BadPinCount { pinned: usize, max_pinned: usize, n_layers: usize },
    /// The machine has no contiguous range large enough even for streaming.
    OutOfMemory { needed: u64, free: u64 },
    /// A size of the model does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlanError::BudgetTooSmall { budget, min_budget } => write!(
                f,
                "budget {} ({budget} bytes) is too small: streaming needs at least {min_budget} bytes ({}: the globals and two layer slots)",
                Mib(budget),
                Mib(min_budget)
            ),
            PlanError::BadSlotCount { slots, n_layers } => {
                write!(f, "slots={slots}: streaming needs between 2 and {n_layers} (the model's layer count) slots")
            }
            PlanError::BadPinCount { pinned, max_pinned, n_layers } => write!(
                f,
                "pin={pinned}: the model has {n_layers} layers and at least one must stream; the budget holds at most {max_pinned} pinned layers beside the slots"
            ),
            PlanError::OutOfMemory { needed, free } => write!(
                f,
                "not enough memory: the smallest plan needs {needed} bytes ({}) in one piece, the largest free range is {free} bytes ({})",
                Mib(needed),
                Mib(free)
            ),
            PlanError::Overflow => write!(f, "the model's sizes overflow 64-bit arithmetic: the image is corrupt"),
        }
    }
}

/// Bytes shown as MiB with one decimal.
pub struct Mib(pub u64);

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = self.0 as u128 * 10 / (1 << 20);
        write!(f, "{}.{} MiB", tenths / 10, tenths % 10)
    }
}

fn round_up(v: u64, to: u64) -> Option<u64> {
    v.checked_next_multiple_of(to)
}

fn page(v: u64) -> Option<u64> {
    round_up(v, 4096)
}

fn align(v: u64) -> Option<u64> {
    round_up(v, PART_ALIGN)
}

/// `a + b·c`, checked.
fn add_mul(a: u64, b: u64, c: u64) -> Option<u64> {
    a.checked_add(b.checked_mul(c)?)
}

impl PlanInput {
    /// Weight bytes of a resident model (the whole data section).
    pub fn resident_weights(&self) -> Option<u64> {
        page(self.globals_bytes.checked_add(self.layers_bytes)?)?.checked_add(self.head_bytes)
    }

    /// The place of one pinned layer.
    pub fn pinned_span(&self) -> Option<u64> {
        page(self.max_layer_bytes)
    }

    fn pinned_offset(&self) -> Option<u64> {
        page(self.globals_bytes)
    }

    fn slots_offset(&self, pinned: usize) -> Option<u64> {
        add_mul(self.pinned_offset()?, pinned as u64, self.pinned_span()?)
    }

    /// Weight bytes of streaming with `pinned` layers kept and `k` slots.
    pub fn streaming_weights(&self, pinned: usize, k: usize) -> Option<u64> {
        page(add_mul(self.slots_offset(pinned)?, k as u64, self.max_layer_bytes)?)?.checked_add(self.head_bytes)
    }

    /// Bytes read from disk per token with `pinned` layers kept (every
    /// layer's extent is at most `max_layer_bytes`; this is the sum of
    /// the streamed ones for equal layers, an upper bound otherwise).
    pub fn streamed_bytes_per_token(&self, pinned: usize) -> u64 {
        (self.n_layers.saturating_sub(pinned) as u64).saturating_mul(self.max_layer_bytes).min(self.layers_bytes)
    }

    /// The smallest budget that runs at all (nothing pinned, two slots).
    pub fn min_budget(&self) -> u64 {
        self.streaming_weights(0, 2).unwrap_or(u64::MAX)
    }

    fn state_bytes(&self) -> Option<u64> {
        align(self.kv_bytes)?.checked_add(align(self.activation_bytes)?)
    }

    /// Pinned layers the spill ranges hold.
    fn spill_capacity(&self) -> usize {
        let span = self.pinned_span().unwrap_or(u64::MAX).max(1);
        self.spill_bytes.iter().map(|&b| (b / span) as usize).sum()
    }

    /// How `pinned` layers split between the spill ranges (as many as they
    /// hold, in order) and the main region.
    fn spill_of(&self, pinned: usize) -> [usize; MAX_SPILL] {
        let span = self.pinned_span().unwrap_or(u64::MAX).max(1);
        let mut left = pinned;
        let mut out = [0; MAX_SPILL];
        for (o, &b) in out.iter_mut().zip(&self.spill_bytes) {
            *o = ((b / span) as usize).min(left);
            left -= *o;
        }
        out
    }

    /// Whether `pinned` layers and `k` slots fit: the main region's weights
    /// within `limits.main`, everything within `limits.total`.
    fn fits(&self, pinned: usize, k: usize, limits: Limits) -> bool {
        let spilled: usize = self.spill_of(pinned).iter().sum();
        let Some(main) = self.streaming_weights(pinned - spilled, k) else {
            return false;
        };
        let spill = (spilled as u64).checked_mul(self.pinned_span().unwrap_or(u64::MAX));
        main <= limits.main && spill.and_then(|s| s.checked_add(main)).is_some_and(|t| t <= limits.total)
    }

    /// The most layers that can be pinned beside `k` slots (or as many
    /// slots as layers stream, when fewer), at most `n - 1`.
    fn max_pinned(&self, k: usize, limits: Limits) -> Option<usize> {
        let n = self.n_layers;
        // Few candidates (layer counts are small): walk down from n - 1.
        (0..n).rev().find(|&p| self.fits(p, k.min(n - p), limits))
    }
}

/// Weight memory limits: of the main region, and in all (spill included).
#[derive(Clone, Copy, Debug)]
struct Limits {
    main: u64,
    total: u64,
}

/// [`plan`], with the packed head optional: when no plan holds it (a model
/// whose output head is a large part of it, such as Gemma 3 270M's tied
/// 640x262144 Q8_0 head, 170 MiB of 253), the plan without it (the head
/// read in place from the globals, in ggml's layout: same results, slower)
/// is taken. Returns the plan and the input it was made for (`head_bytes`
/// 0 when the head stays unpacked). When neither fits, the error is the
/// one without the head (its smaller minimum budget is the true one).
pub fn plan_head_optional(input: &PlanInput) -> Result<(TensorPlan, PlanInput), PlanError> {
    match plan(input) {
        Err(PlanError::BudgetTooSmall { .. } | PlanError::OutOfMemory { .. }) if input.head_bytes > 0 => {
            let unpacked = PlanInput { head_bytes: 0, ..*input };
            plan(&unpacked).map(|p| (p, unpacked))
        }
        other => other.map(|p| (p, *input)),
    }
}

/// Chooses the mode, the pinned layers and the slot count and lays out the
/// region.
pub fn plan(input: &PlanInput) -> Result<TensorPlan, PlanError> {
    let state = input.state_bytes().ok_or(PlanError::Overflow)?;
    let n = input.n_layers;
    let resident_weights = input.resident_weights().ok_or(PlanError::Overflow)?;
    let min_budget = input.min_budget();
    // An explicit budget counts every weight byte, wherever it lies; by
    // default the main region gets what the state leaves of the largest
    // range and the spill ranges add the pinned spans they hold.
    let spill_room = (input.spill_capacity() as u64).saturating_mul(input.pinned_span().unwrap_or(u64::MAX));
    let limits = match input.budget {
        Some(b) => Limits { main: b, total: b },
        None => {
            let main = input.free_bytes.saturating_sub(state.saturating_add(PART_ALIGN));
            Limits { main, total: main.saturating_add(spill_room) }
        }
    };
    let budget = limits.total;
    let too_small = || {
        if input.budget.is_none() {
            let needed = align(min_budget).and_then(|m| m.checked_add(state)).unwrap_or(u64::MAX);
            PlanError::OutOfMemory { needed, free: input.free_bytes }
        } else {
            PlanError::BudgetTooSmall { budget, min_budget }
        }
    };
    let forced = input.force_slots.is_some() || input.force_pinned.is_some();
    let (mode, pinned, slots) = if !forced && resident_weights <= limits.main {
        (Mode::Resident, n, n)
    } else {
        if let Some(p) = input.force_pinned.filter(|&p| p >= n) {
            return Err(PlanError::BadPinCount { pinned: p, max_pinned: n.saturating_sub(1), n_layers: n });
        }
        let pinned_fixed = input.force_pinned.or(input.force_slots.map(|_| 0));
        if let Some(k) = input.force_slots.filter(|&k| k < 2 || k > n) {
            return Err(PlanError::BadSlotCount { slots: k, n_layers: n });
        }
        if limits.main < min_budget {
            return Err(too_small());
        }
        // The most slots up to the default (or the forced count) that fit
        // beside nothing pinned; then as many pinned layers as fit beside them.
        let want_slots = input.force_slots.unwrap_or(DEFAULT_STREAM_SLOTS);
        let slots = (2..=want_slots.max(2)).rev().find(|&k| input.streaming_weights(0, k.min(n)).is_some_and(|w| w <= limits.main)).ok_or_else(too_small)?;
        if input.force_slots.is_some() && slots != want_slots {
            return Err(PlanError::BudgetTooSmall { budget, min_budget: input.streaming_weights(0, want_slots).unwrap_or(u64::MAX) });
        }
        let max_pinned = input.max_pinned(slots, limits).ok_or_else(too_small)?;
        let pinned = match pinned_fixed {
            Some(p) if p > max_pinned => return Err(PlanError::BadPinCount { pinned: p, max_pinned, n_layers: n }),
            Some(p) => p,
            None => max_pinned,
        };
        (Mode::Streaming, pinned, slots.min(n - pinned))
    };
    let spill = if mode == Mode::Streaming { input.spill_of(pinned) } else { [0; MAX_SPILL] };
    let pinned_in_region = pinned - spill.iter().sum::<usize>();
    let weights = match mode {
        Mode::Resident => resident_weights,
        Mode::Streaming => input.streaming_weights(pinned_in_region, slots).ok_or(PlanError::Overflow)?,
    };
    let head_offset = weights - input.head_bytes;
    // Resident with room to spare: add the repacked layer copies.
    let with_packed = page(weights).and_then(|w| w.checked_add(input.packed_layers_bytes)).ok_or(PlanError::Overflow)?;
    let packed_layers_offset = (mode == Mode::Resident
        && input.packed_layers_bytes > 0
        && with_packed <= limits.main
        && align(with_packed).and_then(|w| w.checked_add(state)).is_some_and(|r| r <= input.free_bytes))
    .then(|| page(weights).unwrap_or(weights));
    let weights = if packed_layers_offset.is_some() { with_packed } else { weights };
    let weight_pool_bytes = align(weights).ok_or(PlanError::Overflow)?;
    let kv_offset = weight_pool_bytes;
    let activation_offset = align(input.kv_bytes).and_then(|kv| kv_offset.checked_add(kv)).ok_or(PlanError::Overflow)?;
    let region_bytes = align(input.activation_bytes).and_then(|a| activation_offset.checked_add(a)).ok_or(PlanError::Overflow)?;
    if region_bytes > input.free_bytes {
        return Err(PlanError::OutOfMemory { needed: region_bytes, free: input.free_bytes });
    }
    let (pinned_offset, slots_offset) = match mode {
        Mode::Resident => (0, 0),
        Mode::Streaming => (
            input.pinned_offset().ok_or(PlanError::Overflow)?,
            input.slots_offset(pinned_in_region).ok_or(PlanError::Overflow)?,
        ),
    };
    Ok(TensorPlan {
        mode,
        n_layers: n,
        pinned,
        pinned_offset,
        pinned_span: input.pinned_span().ok_or(PlanError::Overflow)?,
        slots,
        slots_offset,
        slot_bytes: input.max_layer_bytes,
        weight_pool_bytes,
        head_offset,
        packed_layers_offset,
        kv_offset,
        kv_bytes: input.kv_bytes,
        activation_offset,
        activation_bytes: input.activation_bytes,
        region_bytes,
        budget,
        spill,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;

    fn input() -> PlanInput {
        PlanInput {
            globals_bytes: 30 * MIB,
            layers_bytes: 30 * 2 * MIB,
            max_layer_bytes: 2 * MIB,
            head_bytes: 0,
            packed_layers_bytes: 0,
            n_layers: 30,
            kv_bytes: 23 * MIB,
            activation_bytes: 3 * MIB,
            budget: None,
            force_slots: None,
            force_pinned: None,
            free_bytes: 900 * MIB,
            spill_bytes: [0; MAX_SPILL],
        }
    }

    fn pinned_set(p: &TensorPlan) -> Vec<usize> {
        (0..p.n_layers).filter(|&l| p.is_pinned(l)).collect()
    }

    #[test]
    fn resident_when_everything_fits() {
        let p = plan(&input()).unwrap();
        assert_eq!((p.mode, p.pinned, p.streamed()), (Mode::Resident, 30, 0));
        assert_eq!(p.slots, 30);
        assert_eq!(p.weight_pool_bytes, 90 * MIB);
        assert_eq!(p.kv_offset, 90 * MIB);
        assert_eq!(p.activation_offset, 90 * MIB + 24 * MIB);
        assert_eq!(p.region_bytes, 90 * MIB + 24 * MIB + 4 * MIB);
        assert!(p.kv_offset.is_multiple_of(PART_ALIGN) && p.activation_offset.is_multiple_of(PART_ALIGN));
        assert_eq!(pinned_set(&p).len(), 30);
    }

    #[test]
    fn budget_below_the_model_pins_what_fits_beside_the_default_slots() {
        // 30 MiB globals + 20 MiB: three 2 MiB slots and seven pinned layers.
        let p = plan(&PlanInput { budget: Some(50 * MIB), ..input() }).unwrap();
        assert_eq!((p.mode, p.slots, p.pinned, p.streamed()), (Mode::Streaming, DEFAULT_STREAM_SLOTS, 7, 23));
        assert_eq!((p.pinned_offset, p.slots_offset), (30 * MIB, 44 * MIB));
        assert_eq!(p.weight_pool_bytes, 50 * MIB);
        // Exactly the model: resident.
        assert_eq!(plan(&PlanInput { budget: Some(90 * MIB), ..input() }).unwrap().mode, Mode::Resident);
        // One byte less: the default slots stay and 26 layers are pinned.
        let p = plan(&PlanInput { budget: Some(90 * MIB - 1), ..input() }).unwrap();
        assert_eq!((p.mode, p.pinned, p.slots), (Mode::Streaming, 26, 3));
    }

    /// Every budget from the minimum to the whole model: pinned + streamed
    /// layers are all layers, the pinned ones are the documented spread,
    /// the parts are disjoint and add up, the budget holds them and one
    /// more pinned layer would not fit.
    #[test]
    fn every_budget_from_the_minimum_to_the_whole_model() {
        for head in [0, 5 * MIB + 123] {
            let base = PlanInput { head_bytes: head, globals_bytes: 30 * MIB + 512, max_layer_bytes: 2 * MIB - 4096, ..input() };
            let resident = base.resident_weights().unwrap();
            let mut budget = base.min_budget();
            let mut last_pinned = 0;
            while budget <= resident + MIB {
                let p = plan(&PlanInput { budget: Some(budget), ..base }).unwrap();
                let pinned = pinned_set(&p);
                assert_eq!(pinned.len(), p.pinned, "budget {budget}");
                assert_eq!(p.pinned + p.streamed(), 30);
                if p.mode == Mode::Streaming {
                    assert!(p.streamed() >= 1 && p.slots >= 1 && p.slots <= p.streamed());
                    assert!(p.slots >= 2 || p.streamed() == 1);
                    // Disjoint parts in order, inside the pool and the region.
                    assert!(p.pinned_offset >= base.globals_bytes);
                    assert_eq!(p.spilled(), 0);
                    assert_eq!(p.slots_offset, p.pinned_offset + p.pinned as u64 * p.pinned_span);
                    assert!(p.pinned_span >= base.max_layer_bytes);
                    assert!(p.slots_offset + p.slots as u64 * p.slot_bytes <= p.head_offset);
                    assert_eq!(p.head_offset + head, base.streaming_weights(p.pinned, p.slots).unwrap());
                    assert!(p.head_offset + head <= p.budget, "budget {budget}");
                    if p.pinned < 29 {
                        assert!(base.streaming_weights(p.pinned + 1, p.slots.min(29 - p.pinned)).unwrap() > budget);
                    }
                    assert!(p.pinned >= last_pinned, "more memory never pins fewer layers");
                    last_pinned = p.pinned;
                } else {
                    assert!(budget >= resident);
                }
                assert!(p.weight_pool_bytes <= p.kv_offset && p.kv_offset + align(p.kv_bytes).unwrap() == p.activation_offset);
                assert_eq!(p.region_bytes, p.activation_offset + align(p.activation_bytes).unwrap());
                assert!(p.region_bytes <= base.free_bytes);
                budget += 777 * 1024;
            }
        }
    }

    #[test]
    fn pinned_layers_are_spread_evenly_starting_with_a_streamed_layer() {
        for n in 1..40 {
            for p in 0..n {
                let pinned: Vec<usize> = (0..n).filter(|&l| is_pinned(l, n, p)).collect();
                assert_eq!(pinned.len(), p, "n={n} p={p}");
                assert!(!is_pinned(0, n, p), "layer 0 streams (n={n} p={p})");
                if p > 0 {
                    assert!(is_pinned(n - 1, n, p), "the last layer is pinned (n={n} p={p})");
                }
                // Runs of pinned layers between streamed ones differ by at most one.
                let streamed: Vec<usize> = (0..n).filter(|&l| !is_pinned(l, n, p)).collect();
                let runs: Vec<usize> = streamed.iter().enumerate().map(|(i, &s)| streamed.get(i + 1).copied().unwrap_or(n) - s - 1).collect();
                let (lo, hi) = (runs.iter().min().unwrap(), runs.iter().max().unwrap());
                assert!(hi - lo <= 1, "n={n} p={p} runs {runs:?}");
            }
        }
        // Llama 3 8B in a 4 GiB box (say 20 of 32 pinned): 12 streamed
        // layers, one or two pinned ones after each.
        let streamed: Vec<usize> = (0..32).filter(|&l| !is_pinned(l, 32, 20)).collect();
        assert_eq!(streamed, [0, 2, 5, 8, 10, 13, 16, 18, 21, 24, 26, 29]);
    }

    #[test]
    fn the_minimum_budget_gives_two_slots_and_less_is_refused_with_the_minimum() {
        let min = input().min_budget();
        assert_eq!(min, 34 * MIB);
        let p = plan(&PlanInput { budget: Some(min), ..input() }).unwrap();
        assert_eq!((p.mode, p.slots, p.pinned), (Mode::Streaming, 2, 0));
        let e = plan(&PlanInput { budget: Some(min - 1), ..input() }).unwrap_err();
        assert_eq!(e, PlanError::BudgetTooSmall { budget: min - 1, min_budget: min });
        let msg = e.to_string();
        assert!(msg.contains("at least 35651584 bytes"), "{msg}");
    }

    #[test]
    fn the_packed_head_follows_the_slots_in_both_modes() {
        let with_head = PlanInput { head_bytes: 29 * MIB, ..input() };
        let p = plan(&with_head).unwrap();
        assert_eq!((p.mode, p.head_offset, p.weight_pool_bytes), (Mode::Resident, 90 * MIB, 120 * MIB));
        assert_eq!(with_head.min_budget(), 34 * MIB + 29 * MIB);
        let p = plan(&PlanInput { budget: Some(with_head.min_budget()), ..with_head }).unwrap();
        assert_eq!((p.mode, p.slots, p.head_offset), (Mode::Streaming, 2, 34 * MIB));
    }

    /// Gemma 3 270M's shape: the tied head is most of the globals; packed,
    /// it would double them and no budget below the model would stream.
    #[test]
    fn a_budget_without_room_for_the_packed_head_streams_with_the_head_in_place() {
        let gemma = PlanInput {
            globals_bytes: 170 * MIB,
            layers_bytes: 18 * 4 * MIB,
            max_layer_bytes: 4 * MIB,
            n_layers: 18,
            head_bytes: 170 * MIB,
            ..input()
        };
        let (p, used) = plan_head_optional(&PlanInput { budget: Some(200 * MIB), ..gemma }).unwrap();
        assert_eq!((p.mode, p.slots, p.pinned, used.head_bytes), (Mode::Streaming, 3, 4, 0));
        assert!(p.weight_pool_bytes <= 200 * MIB);
        // Room for the packed head beside the slots: it is kept.
        let (p, used) = plan_head_optional(&PlanInput { budget: Some(400 * MIB), ..gemma }).unwrap();
        assert_eq!((p.mode, p.slots, p.pinned, used.head_bytes), (Mode::Streaming, 3, 12, 170 * MIB));
        assert_eq!(p.head_offset, 170 * MIB + 12 * 4 * MIB + 3 * 4 * MIB);
        let (p, used) = plan_head_optional(&gemma).unwrap();
        assert_eq!((p.mode, used), (Mode::Resident, gemma));
        // Too small even without it: the minimum named is the one without.
        let e = plan_head_optional(&PlanInput { budget: Some(170 * MIB), ..gemma }).unwrap_err();
        assert_eq!(e, PlanError::BudgetTooSmall { budget: 170 * MIB, min_budget: 178 * MIB });
    }

    #[test]
    fn resident_layers_get_a_packed_copy_only_when_it_fits() {
        let want = PlanInput { packed_layers_bytes: 62 * MIB, head_bytes: 1000, ..input() };
        let p = plan(&want).unwrap();
        assert_eq!((p.mode, p.packed_layers_offset, p.weight_pool_bytes), (Mode::Resident, Some(90 * MIB + 4096), 154 * MIB));
        assert_eq!(p.head_offset, 90 * MIB);
        // A budget that holds the model but not the copy: resident, unpacked.
        let p = plan(&PlanInput { budget: Some(100 * MIB), ..want }).unwrap();
        assert_eq!((p.mode, p.packed_layers_offset, p.weight_pool_bytes, p.head_offset), (Mode::Resident, None, 92 * MIB, 90 * MIB));
        // Streaming never copies.
        let p = plan(&PlanInput { force_slots: Some(4), ..want }).unwrap();
        assert_eq!((p.mode, p.packed_layers_offset), (Mode::Streaming, None));
    }

    #[test]
    fn forced_slot_counts_stream_every_layer_and_are_checked() {
        let p = plan(&PlanInput { force_slots: Some(2), ..input() }).unwrap();
        assert_eq!((p.mode, p.slots, p.pinned), (Mode::Streaming, 2, 0));
        assert_eq!(plan(&PlanInput { force_slots: Some(30), ..input() }).unwrap().slots, 30);
        for k in [0, 1, 31] {
            assert_eq!(plan(&PlanInput { force_slots: Some(k), ..input() }).unwrap_err(), PlanError::BadSlotCount { slots: k, n_layers: 30 });
        }
        // More slots than the budget holds.
        let e = plan(&PlanInput { force_slots: Some(8), budget: Some(40 * MIB), ..input() }).unwrap_err();
        assert_eq!(e, PlanError::BudgetTooSmall { budget: 40 * MIB, min_budget: 46 * MIB });
    }

    #[test]
    fn forced_pin_counts_are_kept_and_checked() {
        let p = plan(&PlanInput { force_pinned: Some(0), ..input() }).unwrap();
        assert_eq!((p.mode, p.pinned, p.slots), (Mode::Streaming, 0, DEFAULT_STREAM_SLOTS));
        let p = plan(&PlanInput { force_pinned: Some(29), ..input() }).unwrap();
        assert_eq!((p.mode, p.pinned, p.slots, p.streamed()), (Mode::Streaming, 29, 1, 1));
        let p = plan(&PlanInput { force_pinned: Some(10), force_slots: Some(5), ..input() }).unwrap();
        assert_eq!((p.pinned, p.slots), (10, 5));
        assert_eq!(
            plan(&PlanInput { force_pinned: Some(30), ..input() }).unwrap_err(),
            PlanError::BadPinCount { pinned: 30, max_pinned: 29, n_layers: 30 }
        );
        let e = plan(&PlanInput { force_pinned: Some(12), budget: Some(50 * MIB), ..input() }).unwrap_err();
        assert_eq!(e, PlanError::BadPinCount { pinned: 12, max_pinned: 7, n_layers: 30 });
        assert!(e.to_string().contains("at most 7 pinned"), "{e}");
    }

    #[test]
    fn a_small_machine_pins_what_fits_and_a_tiny_one_is_refused() {
        // 100 MiB free: state 28 MiB + 2 MiB margin leaves 70 MiB for weights:
        // 30 MiB globals, 3 slots and 17 pinned layers.
        let p = plan(&PlanInput { free_bytes: 100 * MIB, ..input() }).unwrap();
        assert_eq!((p.mode, p.slots, p.pinned), (Mode::Streaming, 3, 17));
        assert!(p.region_bytes <= 100 * MIB);
        let e = plan(&PlanInput { free_bytes: 40 * MIB, ..input() }).unwrap_err();
        assert!(matches!(e, PlanError::OutOfMemory { .. }), "{e:?}");
        // An explicit budget larger than the machine.
        let e = plan(&PlanInput { budget: Some(800 * MIB), free_bytes: 100 * MIB, ..input() }).unwrap_err();
        assert!(matches!(e, PlanError::OutOfMemory { .. }), "{e:?}");
    }

    /// A 4 GiB machine: 3 GiB below the PCI hole, 1 GiB above 4 GiB. The
    /// pinned layers that do not fit beside the rest in the largest range go
    /// to the next ranges, whole spans each.
    #[test]
    fn pinned_layers_spill_into_the_other_free_ranges() {
        let span = 117 * MIB;
        let big = PlanInput {
            globals_bytes: 400 * MIB,
            layers_bytes: 32 * span,
            max_layer_bytes: span,
            head_bytes: 0,
            n_layers: 32,
            kv_bytes: 64 * MIB,
            activation_bytes: 8 * MIB,
            free_bytes: 2900 * MIB,
            spill_bytes: [1000 * MIB, 200 * MIB, 100 * MIB, 0],
            ..input()
        };
        let alone = plan(&PlanInput { spill_bytes: [0; MAX_SPILL], ..big }).unwrap();
        let p = plan(&big).unwrap();
        assert_eq!(p.mode, Mode::Streaming);
        // 1000 MiB holds 8 spans, 200 MiB one, 100 MiB none.
        assert_eq!(p.spill, [8, 1, 0, 0]);
        assert_eq!((p.pinned, p.pinned_in_region(), p.slots), (alone.pinned + 9, alone.pinned, alone.slots));
        assert_eq!(p.slots_offset, p.pinned_offset + p.pinned_in_region() as u64 * p.pinned_span);
        assert_eq!(p.region_bytes, alone.region_bytes, "the main region is laid out as without the spill");
        assert_eq!(p.budget, alone.budget + 9 * span);
        // An explicit budget counts the spilled layers too.
        let p = plan(&PlanInput { budget: Some(alone.budget), ..big }).unwrap();
        assert_eq!(p.pinned, alone.pinned, "same weight bytes, placed partly above 4 GiB");
        assert!(p.spilled() > 0);
        assert!(p.weight_pool_bytes + p.spilled() as u64 * span <= alone.budget + PART_ALIGN);
        // A forced count beyond what the ranges hold is refused.
        let e = plan(&PlanInput { force_pinned: Some(31), ..big }).unwrap_err();
        assert!(matches!(e, PlanError::BadPinCount { max_pinned, .. } if max_pinned == alone.pinned + 9), "{e:?}");
    }

    #[test]
    fn sizes_beyond_64_bits_are_refused_not_wrapped() {
        let huge = PlanInput { max_layer_bytes: u64::MAX / 3, layers_bytes: u64::MAX - 10, ..input() };
        assert_eq!(plan(&huge).unwrap_err(), PlanError::Overflow);
        let huge_kv = PlanInput { kv_bytes: u64::MAX - 5, ..input() };
        assert_eq!(plan(&huge_kv).unwrap_err(), PlanError::Overflow);
        // Multi-GiB models plan like small ones (an 8B shape: 32 x 117 MiB).
        let big = PlanInput {
            globals_bytes: 600 * MIB,
            layers_bytes: 32 * 117 * MIB,
            max_layer_bytes: 117 * MIB,
            head_bytes: 0,
            n_layers: 32,
            free_bytes: 3900 * MIB,
            ..input()
        };
        let p = plan(&big).unwrap();
        assert_eq!(p.mode, Mode::Streaming);
        assert!(p.pinned > 15 && p.pinned < 32, "{p:?}");
        assert!(p.region_bytes <= 3900 * MIB);
    }
}
