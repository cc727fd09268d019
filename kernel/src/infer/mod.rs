//! Inference mode: the kernel's reason to exist.
//!
//! [`run`] reads top-down: find the model image (its GPT partition, or a
//! namespace and offset), read the packed
//! GGUF image's header, plan the tensor region (weight pool, KV slabs,
//! activations) from the memory budget, load and verify the globals (and,
//! in resident mode, every layer), then answer: the compute cores run the
//! engine's `generate` in lockstep while the I/O core streams layer extents
//! into the weight slot ring. Per-core timings, `@io` and `@summary` follow
//! each answer. With `interactive=1` prompts keep coming from the serial line
//! and the PS/2 keyboard (`crate::input`), all one conversation (the KV
//! cache of earlier turns reused); `screen_view` shows the answer on the
//! screen.
//!
//! Files: `args` (command line), `locate` (the image's partition or
//! offset), `image` (header), `pool` (the region and its parts), `io` (the
//! streamer), `team` (the compute cores' engine worker), `session` (the
//! conversation, one answer at a time, launched on the cores), `report`
//! (telemetry). What the answers share is set up once and kept for the rest
//! of the run (the launch hands it to other CPUs as `'static`).

mod args;
mod image;
mod io;
mod locate;
mod pool;
mod report;
mod screen_view;
mod session;
mod team;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_drivers::nvme::{ControllerOptions, Namespace};
use axiom_engine::image::ExtentId;
use axiom_engine::matmul::{pack_into, packed_bytes, Kernels, Matrix, PackedView};
use axiom_engine::model::Model;
use axiom_engine::state::{SharedState, StateBytes, StateConfig};
use axiom_hw::mem::slot_ring::SlotRing;
use axiom_hw::{cpu, mem, power, time as tsc};
use axiom_proto::telemetry::Hex;

use crate::boot::Context;
use crate::input::{InputLine, Lines};
use crate::smp::{self, Role};
use crate::storage::{self, NvmeQueuePair};
use crate::tensor_plan::{self, Mib, Mode, PlanError, PlanInput, TensorPlan};
use crate::telemetry::{self, events};
use crate::println;
pub use args::InferArgs;
use image::Image;
use io::{IoWake, Streamer};
use locate::ModelPlace;
use pool::{PackedLayer, TensorRegion};
use session::{AnswerError, Flow, Session, Team};
use team::{Place, TeamShared};

/// Largest prompt prefill chunk (tokens per forward call), as on the host.
const MAX_BATCH: usize = 64;
/// Longest serial input line in interactive mode.
const MAX_LINE: usize = 512;

static FAILED: AtomicBool = AtomicBool::new(false);

/// Reports `msg` as the run's `@error` and stops the machine with a failing
/// exit code. Only the first core to fail reports; a later one halts quietly
/// so it cannot stop the reporter mid-message.
pub fn stop_with_error(msg: &str) -> ! {
    if FAILED.swap(true, Ordering::SeqCst) {
        cpu::halt_forever();
    }
    telemetry::error(format_args!("{msg}"));
    power::fail()
}

/// Keeps `value` for the rest of the run.
fn keep<T>(value: T) -> &'static mut T {
    Box::leak(Box::new(value))
}

/// Runs the inference mode (the boot has checked `args` and given the CPUs
/// their roles from them).
pub fn run(ctx: &Context, args: InferArgs) -> Result<(), String> {
    let (mut qp, place) = open_model_disk(ctx, &args)?;
    let image: &'static Image = keep(image::read(&mut qp, &place)?);
    let ns = place.ns;
    let kernels = Kernels::detect();
    report_model(image, &place, &kernels);
    let memory = plan_memory(image, &args)?;
    let mut region = TensorRegion::reserve(&memory.plan)?;
    report_memory(&memory, image, &region);

    let t0 = tsc::now_ns();
    let model = load_globals(&mut qp, &ns, place.offset, image, &mut region, memory.head_bytes, kernels)?;
    let cpus = TeamCpus::from_roles();
    let rings = region.layer_rings(&image.extents.globals, &image.extents.layers, cpus.compute.len())?;
    let rings = Rings { pinned: rings.pinned.map(|r| &*keep(r)), streamed: rings.streamed.map(|r| &*keep(r)) };
    let (pinned_order, streamed_order) = layer_orders(&memory.plan);
    let (first_ring, first_order) = match (rings.pinned, rings.streamed) {
        (Some(r), _) => (r, pinned_order),
        (None, Some(r)) => (r, streamed_order.clone()),
        (None, None) => return Err(String::from("the memory plan holds no layer")),
    };
    let mut streamer = Streamer::new(qp, ns, place.offset, &image.extents, first_ring, first_order, args.verify_always);
    let packed = load_pinned_layers(&memory.plan, image, &mut region, &mut streamer, rings.pinned)?;
    report_load(&memory.plan, image, tsc::now_ns() - t0, &streamer);
    let streamer = match (rings.pinned, rings.streamed) {
        (Some(_), Some(ring)) => streamer.retarget(ring, streamed_order)?,
        _ => streamer,
    };

    let state = keep(SharedState::new(model, memory.state_cfg, region.state()?).map_err(|e| format!("{e}"))?);
    let team = assemble_team(cpus, &memory.plan, model, state, memory.state_cfg, image, rings, packed, streamer);
    answer_prompts(team, &args)
}

/// The layer rings of the run, kept for good.
#[derive(Clone, Copy)]
struct Rings {
    pinned: Option<&'static SlotRing>,
    streamed: Option<&'static SlotRing>,
}

/// The pinned layers and the streamed layers, each in forward order (the
/// order they are loaded at boot and streamed every pass).
fn layer_orders(plan: &TensorPlan) -> (Vec<usize>, Vec<usize>) {
    (0..plan.n_layers).partition(|&l| plan.is_pinned(l))
}

/// Bytes of the pinned layers' extents and of the streamed ones'.
fn pinned_and_streamed_bytes(plan: &TensorPlan, image: &Image) -> (u64, u64) {
    let (mut pinned, mut streamed) = (0u64, 0u64);
    for (l, e) in image.extents.layers.iter().enumerate() {
        let sum = if plan.is_pinned(l) { &mut pinned } else { &mut streamed };
        *sum = sum.saturating_add(e.size);
    }
    (pinned, streamed)
}

/// Where the image is (`model=`: a GPT partition, by default `axiom-model`
/// on any namespace; or a namespace and offset) and an I/O queue pair at the
/// deepest queue depth.
fn open_model_disk(ctx: &Context, args: &InferArgs) -> Result<(NvmeQueuePair, ModelPlace), String> {
    let mut storage =
        storage::probe(ctx.platform, ControllerOptions::default()).map_err(|e| format!("inference needs the model image on an NVMe namespace: {e}"))?;
    let mut qp = storage.create_io_queue_pair(None, 256, None).map_err(|e| format!("NVMe I/O queue pair: {e}"))?;
    let place = locate::find(&mut storage, &mut qp, &args.model)?;
    if place.partition.is_some() {
        println!("model image: {}", place.describe());
    }
    Ok((qp, place))
}

fn report_model(image: &Image, place: &ModelPlace, kernels: &Kernels) {
    let (cfg, extents) = (&image.config, &image.extents);
    let partition = place.partition_name();
    telemetry::emit(&events::Model {
        arch: image.arch.as_str().into(),
        layers: cfg.n_layers as u64,
        n_embd: cfg.n_embd as u64,
        n_ff: cfg.n_ff as u64,
        n_heads: cfg.n_heads as u64,
        n_kv_heads: cfg.n_kv_heads as u64,
        n_vocab: cfg.n_vocab as u64,
        model_bytes: image.file_size,
        header_bytes: image.header_bytes as u64,
        globals_bytes: extents.globals.size,
        max_layer_bytes: extents.max_layer_size(),
        isa: kernels.isa().name().into(),
        nsid: place.ns.nsid as u64,
        offset: place.offset,
        partition: partition.as_deref().map(Into::into),
        region_bytes: place.len,
    });
}

/// The memory plan and the figures it was made from.
struct MemoryPlan {
    plan: TensorPlan,
    input: PlanInput,
    state_cfg: StateConfig,
    /// The inference state's sizes, from the engine.
    state: StateBytes,
    head_bytes: u64,
}

/// Chooses resident or streaming and lays out the tensor region. A budget
/// below two layer slots ends the run with `@error` and the minimum.
fn plan_memory(image: &Image, args: &InferArgs) -> Result<MemoryPlan, String> {
    let (cfg, extents) = (&image.config, &image.extents);
    let n_layers = cfg.n_layers;
    let n_ctx = args.ctx.min(cfg.n_ctx_train.max(16));
    if n_ctx < args.ctx {
        println!("ctx={} is longer than this model's training context: using ctx={n_ctx}", args.ctx);
    }
    if args.kv_type.row_bytes(cfg.head_dim).is_none() {
        return Err(format!("kv_type={}: this model's head size {} is not a multiple of 32; use kv_type=f16 or f32", args.kv_type, cfg.head_dim));
    }
    let state_cfg = StateConfig { n_ctx, max_batch: MAX_BATCH, logit_rows: 1, kv_type: args.kv_type };
    let state = StateBytes::new(cfg, &state_cfg).ok_or_else(|| {
        format!("the inference state (KV cache and activations) for ctx={n_ctx} and this model does not fit in the address space: lower ctx=")
    })?;
    let head = image.layout.globals.output;
    let head_bytes = if args.pack_head { packed_bytes(head.ty, head.rows, head.cols).unwrap_or(0) as u64 } else { 0 };
    let input = PlanInput {
        head_bytes,
        packed_layers_bytes: if args.repack { pool::packed_layers_bytes(&image.layout.layers) } else { 0 },
        globals_bytes: extents.globals.size,
        layers_bytes: extents.layers.iter().try_fold(0u64, |sum, e| sum.checked_add(e.size)).ok_or("the layer extents' sizes overflow 64 bits")?,
        max_layer_bytes: extents.max_layer_size(),
        n_layers,
        kv_bytes: state.kv as u64,
        activation_bytes: state.other as u64,
        budget: args.budget,
        force_slots: args.slots,
        force_pinned: args.pin,
        free_bytes: mem::largest_free(),
        spill_bytes: spill_ranges(),
    };
    let (plan, input) = match tensor_plan::plan_head_optional(&input) {
        Ok(p) => p,
        Err(e @ PlanError::BudgetTooSmall { min_budget, .. }) => {
            let msg = telemetry::Message::format(format_args!("{e}"));
            telemetry::emit(&events::Error { min_budget: Some(min_budget), ..events::Error::msg(msg.as_str()) });
            power::fail()
        }
        Err(e @ PlanError::OutOfMemory { .. }) => {
            return Err(format!(
                "{e}; of that, the KV cache for ctx={n_ctx} takes {} bytes ({}) and the activations {} bytes: lower ctx= (the model allows up to {})",
                input.kv_bytes,
                Mib(input.kv_bytes),
                input.activation_bytes,
                cfg.n_ctx_train
            ))
        }
        Err(e) => return Err(format!("{e}")),
    };
    if input.head_bytes < head_bytes {
        println!("output head: no room for its packed copy ({}) in this budget: read in place (slower)", Mib(head_bytes));
    }
    Ok(MemoryPlan { plan, head_bytes: input.head_bytes, input, state_cfg, state })
}

/// The free ranges after the largest (where pinned layers can spill), largest first.
fn spill_ranges() -> [u64; tensor_plan::MAX_SPILL] {
    let mut out = [0; tensor_plan::MAX_SPILL];
    for (o, r) in out.iter_mut().zip(mem::free_ranges().iter().skip(1)) {
        *o = r.len();
    }
    out
}

fn report_memory(m: &MemoryPlan, image: &Image, region: &TensorRegion) {
    let (plan, input) = (&m.plan, &m.input);
    let repacked = plan.packed_layers_offset.is_some();
    let (pinned_bytes, streamed_bytes) = pinned_and_streamed_bytes(plan, image);
    telemetry::emit(&events::MemPlan {
        mode: plan.mode.name().into(),
        region_bytes: plan.region_bytes,
        region_phys: Hex(region.phys()),
        weight_pool_bytes: plan.weight_pool_bytes,
        globals_bytes: input.globals_bytes,
        packed_head_bytes: m.head_bytes,
        slots: plan.slots as u64,
        slot_bytes: plan.slot_bytes,
        pinned_layers: plan.pinned as u64,
        spilled_layers: plan.spilled() as u64,
        spill_phys: region.spill_phys().as_slice().into(),
        streamed_layers: plan.streamed() as u64,
        pinned_bytes,
        streamed_bytes_per_token: streamed_bytes,
        layers_repacked: repacked,
        packed_layers_bytes: if repacked { input.packed_layers_bytes } else { 0 },
        kv_bytes: input.kv_bytes,
        kv_slab_bytes: m.state.kv_per_layer as u64,
        kv_slabs: m.state.layers as u64,
        kv_type: m.state_cfg.kv_type.name().into(),
        kv_bytes_per_token: m.state.kv_per_token as u64,
        n_ctx: m.state_cfg.n_ctx as u64,
        activation_bytes: input.activation_bytes,
        model_bytes: input.resident_weights().unwrap_or(u64::MAX),
        budget: plan.budget,
        min_budget: input.min_budget(),
    });
    println!(
        "memory plan: {} with {} slots, {} of {} layers pinned ({}), {} streamed per token; weights {}, KV {} ({}, {} positions, {} bytes each), activations {}; budget {}",
        plan.mode.name(),
        plan.slots,
        plan.pinned,
        plan.n_layers,
        Mib(pinned_bytes),
        Mib(streamed_bytes),
        Mib(plan.weight_pool_bytes),
        Mib(input.kv_bytes),
        m.state_cfg.kv_type,
        m.state_cfg.n_ctx,
        m.state.kv_per_token,
        Mib(input.activation_bytes),
        Mib(plan.budget)
    );
}

/// Reads and verifies the globals (always), builds the model over them and
/// repacks the output head into the engine's row-interleaved layout (it
/// runs every token in both modes; bit-identical results).
fn load_globals(
    qp: &mut NvmeQueuePair,
    ns: &Namespace,
    image_offset: u64,
    image: &'static Image,
    region: &mut TensorRegion,
    head_bytes: u64,
    kernels: Kernels,
) -> Result<&'static Model<'static>, String> {
    let extent = &image.extents.globals;
    let globals = region.globals(extent.size)?;
    let at = image_offset.checked_add(extent.offset).ok_or("the globals' offset overflows")?;
    let lba = at / ns.block_size as u64;
    qp.read(ns, lba, globals).map_err(|e| format!("reading the globals: {e}"))?;
    io::verify_extent(extent, ExtentId::Globals, globals)?;
    let globals: &'static [u8] = globals;
    let model = keep(Model::new(image.config.clone(), image.layout.clone(), globals, kernels).map_err(|e| format!("model image: {e}"))?);
    if let (Matrix::Ggml(w), true) = (model.globals.output, head_bytes > 0) {
        let t = tsc::now_ns();
        let packed = region.packed_head(head_bytes)?;
        pack_into(&w, packed).map_err(|e| format!("packing the output head: {e}"))?;
        let view = PackedView::new(w.ty, w.rows, w.cols, packed).map_err(|e| format!("packed output head: {e}"))?;
        model.globals.output = Matrix::Packed(view);
        println!("output head repacked: {} in {} ms", Mib(head_bytes), (tsc::now_ns() - t) / 1_000_000);
    }
    Ok(model)
}

/// Every pinned layer (every layer when resident) is read now, all
/// requests in flight at once, each verified; resident layers are then
/// repacked if the plan holds the copies.
fn load_pinned_layers(
    plan: &TensorPlan,
    image: &Image,
    region: &mut TensorRegion,
    streamer: &mut Streamer,
    pinned: Option<&SlotRing>,
) -> Result<Option<&'static [PackedLayer]>, String> {
    let Some(ring) = pinned else {
        return Ok(None);
    };
    let n_layers = plan.pinned;
    let (layers_bytes, _) = pinned_and_streamed_bytes(plan, image);
    let what = if plan.mode == Mode::Resident { "" } else { " pinned" };
    println!("loading {n_layers}{what} layers ({}) into the weight pool ...", Mib(layers_bytes));
    streamer.load_reporting(n_layers as u64 - 1, &mut |layer, bytes| {
        telemetry::emit(&events::LoadProgress { layer, layers: n_layers as u64, bytes, total_bytes: layers_bytes });
    })?;
    if plan.packed_layers_offset.is_none() {
        return Ok(None);
    }
    let t = tsc::now_ns();
    let packed = region.repack_resident(&image.layout.layers, &image.extents.layers, ring)?;
    println!("{n_layers} resident layers repacked: {} in {} ms", Mib(pool::packed_layers_bytes(&image.layout.layers)), (tsc::now_ns() - t) / 1_000_000);
    Ok(Some(keep(packed).as_slice()))
}

fn report_load(plan: &TensorPlan, image: &Image, load_ns: u64, streamer: &Streamer) {
    let (pinned_bytes, _) = pinned_and_streamed_bytes(plan, image);
    let loaded = image.extents.globals.size.saturating_add(pinned_bytes);
    telemetry::emit(&events::Load {
        mode: plan.mode.name().into(),
        layers: plan.pinned as u64,
        bytes: loaded,
        ms: load_ns as f64 / 1e6,
        mib_per_s: loaded as f64 / (1 << 20) as f64 / (load_ns.max(1) as f64 / 1e9),
        verified: 1 + streamer.stats.verified,
    });
}

/// The CPUs of the run, from the roles the boot gave them (from `io_core=`).
struct TeamCpus {
    /// The BSP (compute worker 0) and the compute cores.
    compute: Vec<usize>,
    io: Option<usize>,
}

impl TeamCpus {
    fn from_roles() -> TeamCpus {
        let mut compute = smp::cpus_with_role(Role::Bsp);
        compute.extend(smp::cpus_with_role(Role::Compute));
        TeamCpus { compute, io: smp::cpus_with_role(Role::Io).first().copied() }
    }
}

/// What the compute team and the I/O core share for the rest of the run.
#[allow(clippy::too_many_arguments)]
fn assemble_team(
    cpus: TeamCpus,
    plan: &TensorPlan,
    model: &'static Model<'static>,
    state: &'static SharedState<'static>,
    state_cfg: StateConfig,
    image: &'static Image,
    rings: Rings,
    packed: Option<&'static [PackedLayer]>,
    streamer: Streamer<'static>,
) -> &'static Team {
    let TeamCpus { compute, io: io_cpu } = cpus;
    let mode = plan.mode;
    let resident = mode == Mode::Resident;
    let (mut pinned_rank, mut streamed_rank) = (0, 0);
    let places: Vec<Place> = (0..plan.n_layers)
        .map(|l| {
            let (rank, place): (&mut usize, fn(usize) -> Place) =
                if plan.is_pinned(l) { (&mut pinned_rank, Place::Pinned) } else { (&mut streamed_rank, Place::Streamed) };
            *rank += 1;
            place(*rank - 1)
        })
        .collect();
    let io_apic = io_cpu.and_then(axiom_hw::cpu::percpu::get).map(|c| c.apic_id()).unwrap_or(0);
    let io_wake: &'static IoWake = keep(IoWake::new(io_apic));
    let streamer: &'static spin::Mutex<Streamer<'static>> = keep(spin::Mutex::new(streamer));
    // The I/O core streams in streaming mode; without one, compute worker 0
    // loads each layer itself right before using it.
    let streams = !resident && io_cpu.is_some();
    let shared = TeamShared {
        pinned: rings.pinned,
        streamed: rings.streamed,
        places,
        n_streamed: plan.streamed(),
        layouts: &model.layout.layers,
        extent_bytes: image.extents.layers.iter().map(|e| e.size as usize).collect(),
        packed,
        sync_loader: (!resident && io_cpu.is_none()).then_some(streamer),
        io_wake: streams.then_some(io_wake),
    };
    keep(Team {
        compute,
        io_cpu: if streams { io_cpu } else { None },
        io_core_idle: resident && io_cpu.is_some(),
        model,
        state,
        state_cfg,
        tokenizer: &image.tokenizer,
        shared,
        streamer,
        io_wake,
        mode,
    })
}

/// The prompt from the command line, then (`interactive=1`) lines read from
/// the serial port or the keyboard, all one conversation, until `/quit` or Ctrl-D: `/reset`
/// starts a new conversation, `/stats` reports the speeds.
fn answer_prompts(team: &'static Team, args: &InferArgs) -> Result<(), String> {
    let mut session = Session::new(args, team)?;
    if let Some(prompt) = &args.prompt {
        screen_view::show_prompt(prompt);
        match session.answer(team, prompt) {
            Ok(()) => {}
            Err(AnswerError::Input(msg) | AnswerError::Fatal(msg)) => return Err(msg),
        }
    }
    if !args.interactive {
        return Ok(());
    }
    let mut input = Lines::<MAX_LINE>::new();
    telemetry::emit(&events::Ready { interactive: true, max_line: MAX_LINE as u64 });
    println!("> type a prompt and press Enter (/reset starts over, /stats, /quit ends)");
    loop {
        // Serial and keyboard lines, whichever comes first (crate::input).
        let Some(event) = input.poll() else {
            core::hint::spin_loop();
            continue;
        };
        let line = match event {
            InputLine::End => return Ok(()),
            InputLine::TooLong { len } => {
                telemetry::warning(format_args!("input line of {len} bytes is longer than {MAX_LINE}: ignored"));
                continue;
            }
            InputLine::InvalidUtf8 { at } => {
                telemetry::warning(format_args!("input line is not valid UTF-8 (byte {at}): ignored"));
                continue;
            }
            InputLine::Text(t) => String::from(t.trim()),
        };
        match session.line(team, &line)? {
            Flow::Quit => return Ok(()),
            Flow::Idle => continue,
            Flow::Done => {}
        }
        // The screen draws its own marker for the next line (crate::input).
        crate::console::print_serial_only(format_args!("> \n"));
    }
}
