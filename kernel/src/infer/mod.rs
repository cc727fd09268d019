//! Inference mode: the kernel's reason to exist.
//!
//! The BSP finds the NVMe namespace, reads the packed GGUF image's header,
//! plans the tensor region (weight pool, KV slabs, activations) from the
//! memory budget, loads and verifies the globals (and, in resident mode,
//! every layer), then answers the prompt: the compute cores run the engine's
//! `generate` in lockstep while the I/O core streams layer extents into the
//! weight slot ring. Per-core timings, `@io` and `@summary` follow each
//! answer. With `interactive=1` prompts keep coming from the serial line.
//!
//! Files: `args` (command line), `image` (header), `pool` (the region and
//! slot memory), `io` (the streamer), `team` (the compute cores' engine
//! worker), `session` (one answer, launched on the cores), `report`
//! (telemetry).

mod args;
mod image;
mod io;
mod pool;
mod report;
mod session;
mod team;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_drivers::nvme::ControllerOptions;
use axiom_engine::image::ExtentId;
use axiom_engine::matmul::{pack_into, packed_bytes, Kernels, Matrix, PackedView};
use axiom_engine::model::Model;
use axiom_engine::state::{SharedState, StateConfig};
use axiom_kernel::bootinfo::Rsdp;
use axiom_kernel::cmdline::Cmdline;
use axiom_kernel::line_reader::{Line, LineReader};
use axiom_kernel::slot_ring::{Slot, SlotRing};
use axiom_kernel::tensor_plan::{self, Mib, Mode, PlanError, PlanInput};

use crate::{console, power, println, smp, storage, telemetry, tsc};
pub use args::InferArgs;
use io::{IoWake, Streamer};
use pool::TensorRegion;
use session::{Session, Team};

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
        crate::cpu::instr::halt_forever();
    }
    telemetry::error(format_args!("{msg}"));
    power::fail()
}

/// Runs inference if the command line asks for it. `Ok(false)`: no
/// inference requested.
pub fn run(cmd: &Cmdline, rsdp: Option<&Rsdp>) -> Result<bool, String> {
    let online = smp::online_indices();
    let Some(args) = InferArgs::parse(cmd, online.len())? else {
        return Ok(false);
    };
    let (compute, io_cpu) = if args.io_core { (online[..online.len() - 1].to_vec(), Some(online[online.len() - 1])) } else { (online.clone(), None) };

    let mut storage = storage::probe(rsdp, ControllerOptions::default())
        .map_err(|e| format!("inference needs the model image on an NVMe namespace: {e}"))?;
    let ns = match args.model.nsid {
        None => storage.namespace,
        Some(nsid) => storage.controller.namespace(nsid).map_err(|e| format!("model=ns:{nsid}: {e}"))?,
    };
    let mut qp = storage.create_io_queue_pair(None, 256, None).map_err(|e| format!("NVMe I/O queue pair: {e}"))?;
    let image = image::read(&mut qp, &ns, args.model.offset)?;
    let cfg = image.config.clone();
    let kernels = Kernels::detect();
    let extents = &image.extents;
    let n_layers = cfg.n_layers;
    let layers_bytes: u64 = extents.layers.iter().map(|e| e.size).sum();
    telemetry::emit("model", |o| {
        o.str("arch", &image.arch).u64("layers", n_layers as u64).u64("n_embd", cfg.n_embd as u64).u64("n_ff", cfg.n_ff as u64);
        o.u64("n_heads", cfg.n_heads as u64).u64("n_kv_heads", cfg.n_kv_heads as u64).u64("n_vocab", cfg.n_vocab as u64);
        o.u64("model_bytes", image.file_size).u64("header_bytes", image.header_bytes as u64);
        o.u64("globals_bytes", extents.globals.size).u64("max_layer_bytes", extents.max_layer_size());
        o.str("isa", kernels.isa().name()).u64("nsid", ns.nsid as u64).u64("offset", args.model.offset);
    });

    // The memory plan.
    let n_ctx = args.ctx.min(cfg.n_ctx_train.max(16));
    let state_cfg = StateConfig { n_ctx, max_batch: MAX_BATCH, logit_rows: 1 };
    let floats = SharedState::floats_needed(&cfg, &state_cfg).ok_or("inference state size overflows")?;
    let kv_slab = (n_ctx.next_multiple_of(8) + n_ctx) * cfg.kv_dim() * 4;
    let kv_bytes = (kv_slab * n_layers) as u64;
    let head = image.layout.globals.output;
    let head_bytes = if args.pack_head { packed_bytes(head.ty, head.rows, head.cols).unwrap_or(0) as u64 } else { 0 };
    let input = PlanInput {
        head_bytes,
        packed_layers_bytes: if args.repack { pool::packed_layers_bytes(&image.layout.layers) } else { 0 },
        globals_bytes: extents.globals.size,
        layers_bytes,
        max_layer_bytes: extents.max_layer_size(),
        n_layers,
        kv_bytes,
        activation_bytes: (floats * 4) as u64 - kv_bytes,
        budget: args.budget,
        force_slots: args.slots,
        free_bytes: crate::mem::largest_free(),
    };
    let plan = match tensor_plan::plan(&input) {
        Ok(p) => p,
        Err(e @ PlanError::BudgetTooSmall { min_budget, .. }) => {
            telemetry::emit("error", |o| {
                o.fmt("msg", format_args!("{e}")).u64("min_budget", min_budget);
            });
            power::fail()
        }
        Err(e) => return Err(format!("{e}")),
    };
    let mut region = TensorRegion::reserve(&plan, extents.globals.size).map_err(|e| format!("tensor region: {e}"))?;
    telemetry::emit("mem", |o| {
        o.str("mode", plan.mode.name()).u64("region_bytes", plan.region_bytes).fmt("region_phys", format_args!("{:#x}", region.region.start));
        o.u64("weight_pool_bytes", plan.weight_pool_bytes).u64("globals_bytes", extents.globals.size).u64("packed_head_bytes", head_bytes);
        o.u64("slots", plan.slots as u64).u64("slot_bytes", plan.slot_bytes);
        o.bool("layers_repacked", plan.packed_layers_offset.is_some()).u64("packed_layers_bytes", if plan.packed_layers_offset.is_some() { input.packed_layers_bytes } else { 0 });
        o.u64("kv_bytes", kv_bytes).u64("kv_slab_bytes", kv_slab as u64).u64("kv_slabs", n_layers as u64).u64("n_ctx", n_ctx as u64);
        o.u64("activation_bytes", input.activation_bytes);
        o.u64("model_bytes", input.resident_weights()).u64("budget", plan.budget).u64("min_budget", input.min_budget());
    });
    println!(
        "memory plan: {} with {} slots; weights {}, KV {}, activations {}; budget {}",
        plan.mode.name(),
        plan.slots,
        Mib(plan.weight_pool_bytes),
        Mib(kv_bytes),
        Mib(input.activation_bytes),
        Mib(plan.budget)
    );

    // Globals: read once, always verified.
    let t0 = tsc::now_ns();
    let globals = region.take_globals();
    let lba = (args.model.offset + extents.globals.offset) / ns.block_size as u64;
    qp.read(&ns, lba, globals).map_err(|e| format!("reading the globals: {e}"))?;
    io::verify_extent(&extents.globals, ExtentId::Globals, globals)?;
    let globals: &'static [u8] = globals;
    let mut model = Model::new(cfg.clone(), image.layout.clone(), globals, kernels).map_err(|e| format!("model image: {e}"))?;
    if let (Matrix::Ggml(w), true) = (model.globals.output, head_bytes > 0) {
        // The output head runs every token in both modes: repack it once
        // into the engine's row-interleaved layout (bit-identical results).
        let t = tsc::now_ns();
        let packed = region.take_head(plan.head_offset, head_bytes);
        pack_into(&w, packed).map_err(|e| format!("packing the output head: {e}"))?;
        let view = PackedView::new(w.ty, w.rows, w.cols, packed).map_err(|e| format!("packed output head: {e}"))?;
        model.globals.output = Matrix::Packed(view);
        println!("output head repacked: {} in {} ms", Mib(head_bytes), (tsc::now_ns() - t) / 1_000_000);
    }

    // The ring and the streamer over the slots.
    let resident = plan.mode == Mode::Resident;
    let slot_mem = if resident {
        region.resident_slots(extents.globals.offset, extents.layers.iter().map(|e| (e.offset, e.size)))
    } else {
        region.streaming_slots(extents.globals.size, plan.slots, plan.slot_bytes)
    };
    let slot_words: Vec<Slot> = (0..plan.slots).map(|_| Slot::new()).collect();
    let ring = SlotRing::new(&slot_words);
    let mut streamer = Streamer::new(qp, ns, args.model.offset, extents, slot_mem.clone(), &ring, resident, args.verify_always);
    if resident {
        println!("loading {n_layers} layers ({}) into the weight pool ...", Mib(layers_bytes));
        streamer.load(n_layers as u64 - 1)?;
    }
    let packed_layers = match plan.packed_layers_offset {
        Some(at) => {
            let t = tsc::now_ns();
            let p = region.pack_resident(at, &image.layout.layers, &slot_mem)?;
            println!("{n_layers} resident layers repacked: {} in {} ms", Mib(input.packed_layers_bytes), (tsc::now_ns() - t) / 1_000_000);
            Some(p)
        }
        None => None,
    };
    let load_ns = tsc::now_ns() - t0;
    let loaded = extents.globals.size + if resident { layers_bytes } else { 0 };
    telemetry::emit("load", |o| {
        o.str("mode", plan.mode.name()).u64("layers", if resident { n_layers as u64 } else { 0 }).u64("bytes", loaded);
        o.f64("ms", load_ns as f64 / 1e6, 1).f64("mib_per_s", loaded as f64 / (1 << 20) as f64 / (load_ns.max(1) as f64 / 1e9), 1);
        o.u64("verified", 1 + streamer.stats.verified);
    });

    let state = SharedState::new(&model, state_cfg, region.state).map_err(|e| format!("{e}"))?;
    let extent_bytes: Vec<usize> = extents.layers.iter().map(|e| e.size as usize).collect();
    let streamer = spin::Mutex::new(streamer);
    let io_apic = io_cpu.and_then(smp::percpu::cpu).map(|c| c.apic_id()).unwrap_or(0);
    let io_wake = IoWake::new(io_apic);
    let team = Team {
        compute: &compute,
        io_cpu: if resident { None } else { io_cpu },
        io_core_idle: resident && io_cpu.is_some(),
        model: &model,
        state: &state,
        state_cfg,
        tokenizer: &image.tokenizer,
        ring: &ring,
        slots: &slot_mem,
        extent_bytes: &extent_bytes,
        packed_layers: packed_layers.as_deref(),
        streamer: &streamer,
        io_wake: &io_wake,
        mode: plan.mode,
    };
    let mut session = Session::new(&args);
    if let Some(prompt) = &args.prompt {
        session.answer(&team, prompt)?;
    }
    if args.interactive {
        interactive(&team, &mut session)?;
    }
    Ok(true)
}

/// `interactive=1`: answer prompts read line by line from the serial port
/// until `/quit` or Ctrl-D.
fn interactive(team: &Team, session: &mut Session) -> Result<(), String> {
    let mut reader = LineReader::<MAX_LINE>::new();
    telemetry::emit("ready", |o| {
        o.bool("interactive", true).u64("max_line", MAX_LINE as u64);
    });
    println!("> type a prompt and press Enter (/quit to end)");
    loop {
        let Some(byte) = console::try_read_byte() else {
            core::hint::spin_loop();
            continue;
        };
        let line = match reader.push(byte) {
            None => continue,
            Some(Line::End) => return Ok(()),
            Some(Line::TooLong { len }) => {
                telemetry::warning(format_args!("input line of {len} bytes is longer than {MAX_LINE}: ignored"));
                continue;
            }
            Some(Line::InvalidUtf8 { at }) => {
                telemetry::warning(format_args!("input line is not valid UTF-8 (byte {at}): ignored"));
                continue;
            }
            Some(Line::Text(t)) => String::from(t.trim()),
        };
        if line == "/quit" {
            return Ok(());
        }
        if line.is_empty() {
            continue;
        }
        session.answer(team, &line)?;
        println!("> ");
    }
}
