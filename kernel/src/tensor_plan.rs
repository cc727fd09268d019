//! The tensor-native memory plan: how one physically contiguous region is
//! carved into the weight pool (globals + layer slots), the KV-cache pool and
//! the activations, and whether the model runs *resident* (every layer loaded
//! once) or *streaming* (K slots refilled every token by the I/O core).
//!
//! ```text
//!   region: [ globals | slot 0 | ... | slot K-1 | packed head ][ KV slabs (per layer) | activations ]
//!            \__________________ weight pool _______________/ \________ inference state _________/
//! ```
//!
//! In resident mode the weight pool is the image's data section as it is on
//! disk (globals followed by every layer extent, back to back), so the slots
//! are the layer extents in place; in streaming mode every slot is as large
//! as the largest layer extent. The packed head is the output matrix
//! repacked at boot into the engine's faster row-interleaved layout (it is
//! used every token in both modes). Pure arithmetic, tested on the host.

use core::fmt;

/// Alignment of every part of the region (huge-page friendly).
pub const PART_ALIGN: u64 = 2 << 20;

/// What the plan is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanInput {
    /// Bytes of the globals extent (embedding, output norm, output head).
    pub globals_bytes: u64,
    /// Sum of every layer extent.
    pub layers_bytes: u64,
    /// The largest layer extent: the size of one streaming slot.
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
    /// `slots=K`: stream with exactly K slots.
    pub force_slots: Option<usize>,
    /// The largest contiguous free physical range.
    pub free_bytes: u64,
}

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
    /// Layer slots (`n_layers` when resident).
    pub slots: usize,
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
    /// The weight budget the plan was made for.
    pub budget: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// Not even two layer slots fit in the budget.
    BudgetTooSmall { budget: u64, min_budget: u64 },
    /// `slots=K` outside `2..=n_layers`.
    BadSlotCount { slots: usize, n_layers: usize },
    /// The machine has no contiguous range large enough even for streaming.
    OutOfMemory { needed: u64, free: u64 },
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
            PlanError::OutOfMemory { needed, free } => write!(
                f,
                "not enough memory: the smallest plan needs {needed} bytes ({}) in one piece, the largest free range is {free} bytes ({})",
                Mib(needed),
                Mib(free)
            ),
        }
    }
}

/// Bytes shown as MiB with one decimal.
pub struct Mib(pub u64);

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = self.0 * 10 / (1 << 20);
        write!(f, "{}.{} MiB", tenths / 10, tenths % 10)
    }
}

fn page(v: u64) -> u64 {
    v.div_ceil(4096) * 4096
}

fn align(v: u64) -> u64 {
    v.div_ceil(PART_ALIGN) * PART_ALIGN
}

impl PlanInput {
    /// Weight bytes of a resident model (the whole data section).
    pub fn resident_weights(&self) -> u64 {
        page(self.globals_bytes + self.layers_bytes) + self.head_bytes
    }

    /// Weight bytes of streaming with `k` slots.
    pub fn streaming_weights(&self, k: usize) -> u64 {
        page(self.globals_bytes + k as u64 * self.max_layer_bytes) + self.head_bytes
    }

    /// The smallest budget that runs at all (two slots).
    pub fn min_budget(&self) -> u64 {
        self.streaming_weights(2)
    }

    fn state_bytes(&self) -> u64 {
        align(self.kv_bytes) + align(self.activation_bytes)
    }
}

/// Chooses the mode and slot count and lays out the region.
pub fn plan(input: &PlanInput) -> Result<TensorPlan, PlanError> {
    let state = input.state_bytes();
    let n = input.n_layers;
    let budget = match input.budget {
        Some(b) => b,
        None => input.free_bytes.saturating_sub(state + PART_ALIGN),
    };
    let (mode, slots, weights) = match input.force_slots {
        Some(k) if k < 2 || k > n => return Err(PlanError::BadSlotCount { slots: k, n_layers: n }),
        Some(k) => (Mode::Streaming, k, input.streaming_weights(k)),
        None if input.resident_weights() <= budget => (Mode::Resident, n, input.resident_weights()),
        None => {
            if budget < input.min_budget() {
                if input.budget.is_none() {
                    return Err(PlanError::OutOfMemory { needed: align(input.min_budget()) + state, free: input.free_bytes });
                }
                return Err(PlanError::BudgetTooSmall { budget, min_budget: input.min_budget() });
            }
            let k = ((budget - input.globals_bytes - input.head_bytes) / input.max_layer_bytes.max(1)) as usize;
            (Mode::Streaming, k.min(n), input.streaming_weights(k.min(n)))
        }
    };
    let head_offset = weights - input.head_bytes;
    // Resident with room to spare: add the repacked layer copies.
    let with_packed = page(weights) + input.packed_layers_bytes;
    let packed_layers_offset = (mode == Mode::Resident
        && input.packed_layers_bytes > 0
        && with_packed <= budget
        && align(with_packed) + state <= input.free_bytes)
        .then_some(page(weights));
    let weights = if packed_layers_offset.is_some() { with_packed } else { weights };
    let weight_pool_bytes = align(weights);
    let kv_offset = weight_pool_bytes;
    let activation_offset = kv_offset + align(input.kv_bytes);
    let region_bytes = activation_offset + align(input.activation_bytes);
    if region_bytes > input.free_bytes {
        return Err(PlanError::OutOfMemory { needed: region_bytes, free: input.free_bytes });
    }
    Ok(TensorPlan {
        mode,
        slots,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

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
            free_bytes: 900 * MIB,
        }
    }

    #[test]
    fn resident_when_everything_fits() {
        let p = plan(&input()).unwrap();
        assert_eq!(p.mode, Mode::Resident);
        assert_eq!(p.slots, 30);
        assert_eq!(p.weight_pool_bytes, 90 * MIB);
        assert_eq!(p.kv_offset, 90 * MIB);
        assert_eq!(p.activation_offset, 90 * MIB + 24 * MIB);
        assert_eq!(p.region_bytes, 90 * MIB + 24 * MIB + 4 * MIB);
        assert!(p.kv_offset.is_multiple_of(PART_ALIGN) && p.activation_offset.is_multiple_of(PART_ALIGN));
    }

    #[test]
    fn budget_below_the_model_streams_with_as_many_slots_as_fit() {
        let p = plan(&PlanInput { budget: Some(30 * MIB + 9 * MIB), ..input() }).unwrap();
        assert_eq!(p.mode, Mode::Streaming);
        assert_eq!(p.slots, 4);
        assert_eq!(p.weight_pool_bytes, align(38 * MIB));
        // Exactly the model: resident.
        assert_eq!(plan(&PlanInput { budget: Some(90 * MIB), ..input() }).unwrap().mode, Mode::Resident);
    }

    #[test]
    fn the_minimum_budget_gives_two_slots_and_less_is_refused_with_the_minimum() {
        let min = input().min_budget();
        assert_eq!(min, 34 * MIB);
        let p = plan(&PlanInput { budget: Some(min), ..input() }).unwrap();
        assert_eq!((p.mode, p.slots), (Mode::Streaming, 2));
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
    fn forced_slot_counts_are_checked() {
        let p = plan(&PlanInput { force_slots: Some(2), ..input() }).unwrap();
        assert_eq!((p.mode, p.slots), (Mode::Streaming, 2));
        assert_eq!(plan(&PlanInput { force_slots: Some(30), ..input() }).unwrap().slots, 30);
        for k in [0, 1, 31] {
            assert_eq!(plan(&PlanInput { force_slots: Some(k), ..input() }).unwrap_err(), PlanError::BadSlotCount { slots: k, n_layers: 30 });
        }
    }

    #[test]
    fn a_small_machine_streams_and_a_tiny_one_is_refused() {
        // 100 MiB free: state 28 MiB + 2 MiB margin leaves 70 MiB for weights.
        let p = plan(&PlanInput { free_bytes: 100 * MIB, ..input() }).unwrap();
        assert_eq!((p.mode, p.slots), (Mode::Streaming, 20));
        assert!(p.region_bytes <= 100 * MIB);
        let e = plan(&PlanInput { free_bytes: 40 * MIB, ..input() }).unwrap_err();
        assert!(matches!(e, PlanError::OutOfMemory { .. }), "{e:?}");
        // An explicit budget larger than the machine.
        let e = plan(&PlanInput { budget: Some(800 * MIB), free_bytes: 100 * MIB, ..input() }).unwrap_err();
        assert!(matches!(e, PlanError::OutOfMemory { .. }), "{e:?}");
    }
}
