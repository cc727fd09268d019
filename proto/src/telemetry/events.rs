//! Every event the kernel writes, and the objects nested in them.
//! docs/architecture.md ("Telemetry protocol", "Inference telemetry") says
//! when each is written.

use super::{Crc32c, Hex, List, Str};
use crate::schema;

schema! {
    // --- Any run ----------------------------------------------------------

    /// `@boot`: after bring-up, what the machine is.
    pub struct Boot<'a> = "boot" {
        pub cpus_found: u64,
        pub cpus_online: u64,
        pub cpus_disabled: u64,
        pub cpus_unanswered: u64,
        /// The CPUs that did not answer the start-up IPIs (only when some did not).
        pub unanswered: Option<List<'a, Unanswered<'a>>>,
        /// `x2apic` or `xapic`.
        pub apic: Str<'a>,
        pub tsc_mhz: f64,
        /// `cpuid-0x15`, `hpet`, `pit` or `cpuid-0x16`.
        pub tsc_source: Str<'a>,
        pub tsc_invariant: bool,
        /// `multiboot1` or `multiboot2`.
        pub boot: Str<'a>,
        /// Whether the MADT was found.
        pub acpi: bool,
        /// Where the RSDP came from, if found.
        pub rsdp: Option<Str<'a>>,
        pub mem_usable_mib: u64,
        pub mem_free_mib: u64,
        pub heap_mib: u64,
        pub largest_free_mib: u64,
        pub avx: bool,
        pub avx2: bool,
        pub fma: bool,
        pub avx512f: bool,
        /// XCR0 (0 without XSAVE).
        pub xcr0: Hex,
        pub framebuffer: Option<Framebuffer>,
        pub cmdline: Str<'a>,
    }
    decimals { tsc_mhz: 1 }

    /// A CPU that did not come online.
    pub struct Unanswered<'a> {
        pub apic_id: u64,
        /// How far its trampoline got.
        pub stage: Str<'a>,
    }

    pub struct Framebuffer {
        pub width: u64,
        pub height: u64,
        pub bpp: u64,
    }

    /// `@cpu`: one per online CPU.
    pub struct Cpu<'a> = "cpu" {
        pub id: u64,
        pub apic_id: u64,
        /// `bsp`, `compute` or `io`.
        pub role: Str<'a>,
    }

    /// `@warning`: something is missing or wrong, but the run goes on.
    pub struct Warning<'a> = "warning" {
        pub msg: Str<'a>,
    }

    /// `@error`: the run stops, failing. Exceptions and panics add their
    /// details; a refused budget adds the smallest that would do.
    pub struct Error<'a> = "error" {
        pub msg: Str<'a>,
        /// `exception` or `panic`.
        pub kind: Option<Str<'a>>,
        pub cpu: Option<u64>,
        pub vector: Option<u64>,
        pub error_code: Option<u64>,
        pub rip: Option<Hex>,
        pub cr2: Option<Hex>,
        /// `file:line` of a panic.
        pub location: Option<Str<'a>>,
        pub min_budget: Option<u64>,
    }

    /// `@done`: the last line of a successful run.
    pub struct Done<'a> = "done" {
        /// `ok`.
        pub status: Str<'a>,
    }

    // --- Self-tests -------------------------------------------------------

    /// `@barrier`: `selftest=smp`, one per CPU.
    pub struct Barrier<'a> = "barrier" {
        pub cpu: u64,
        pub apic_id: u64,
        pub role: Str<'a>,
        pub rounds: u64,
        pub wait_ns: Spread,
        pub parks: u64,
        pub counter_errors: u64,
    }

    /// Order statistics of a set of durations.
    pub struct Spread {
        pub min: u64,
        pub median: u64,
        pub p99: u64,
        pub max: u64,
        pub mean: u64,
    }

    /// `@summary` of `selftest=smp`.
    pub struct SmpSummary<'a> = "summary" {
        /// `smp`.
        pub test: Str<'a>,
        pub cpus: u64,
        pub rounds: u64,
        pub counter_ok: bool,
        pub counter_errors: u64,
        /// Barrier round trip, timed by CPU 0.
        pub round_trip_ns: Spread,
        pub spin_us: u64,
        /// `hlt` or `mwait`.
        pub park: Str<'a>,
        pub elapsed_ms: u64,
    }

    /// `@mem` of `selftest=mem`.
    pub struct MemSelfTest = "mem" {
        pub dma_phys: Hex,
        pub dma_bytes: u64,
        pub region_phys: Hex,
        pub region_mib: u64,
        pub largest_free_before_mib: u64,
        pub largest_free_after_mib: u64,
        /// Every free 4 KiB frame written and read back (tagged words at
        /// both ends), of them at or above 4 GiB, and the end of the
        /// highest one.
        pub frames_checked: u64,
        pub frames_above_4g: u64,
        pub highest_frame_end: Hex,
    }

    /// `@nvme` of `selftest=nvme`: the controller and namespace.
    pub struct Nvme<'a> = "nvme" {
        pub model: Str<'a>,
        pub serial: Str<'a>,
        pub firmware: Str<'a>,
        /// Bus:device.function.
        pub pci: Str<'a>,
        /// `ecam` or `ports`.
        pub pci_config: Str<'a>,
        pub bar0: Hex,
        pub version: Str<'a>,
        pub nsid: u64,
        pub lba_size: u64,
        pub lbas: u64,
        pub mdts_bytes: u64,
        pub max_queue_entries: u64,
        pub page_size: u64,
    }

    /// `@nvme_read` of `selftest=nvme`: the whole namespace read.
    pub struct NvmeRead = "nvme_read" {
        pub bytes: u64,
        /// Of the namespace's bytes (`nvme_crc=on`).
        pub crc32c: Option<Crc32c>,
        pub mib_per_s: f64,
        pub queue_depth: u64,
        pub max_in_flight: u64,
        pub xfer_bytes: u64,
        pub buffer_bytes: u64,
        pub requests: u64,
        pub commands: u64,
        pub doorbells: u64,
        pub elapsed_ms: f64,
        pub busy_fraction: f64,
        pub driver_busy_fraction: f64,
    }
    decimals { mib_per_s: 1 }

    // --- Inference --------------------------------------------------------

    /// `@model`: the packed image's model.
    pub struct Model<'a> = "model" {
        pub arch: Str<'a>,
        pub layers: u64,
        pub n_embd: u64,
        pub n_ff: u64,
        pub n_heads: u64,
        pub n_kv_heads: u64,
        pub n_vocab: u64,
        /// The image's size.
        pub model_bytes: u64,
        pub header_bytes: u64,
        pub globals_bytes: u64,
        pub max_layer_bytes: u64,
        /// The engine's kernels (`scalar`, `avx2`, ...).
        pub isa: Str<'a>,
        pub nsid: u64,
        pub offset: u64,
    }

    /// `@mem` of the inference mode: the tensor region's plan.
    pub struct MemPlan<'a> = "mem" {
        /// `resident` or `streaming`.
        pub mode: Str<'a>,
        pub region_bytes: u64,
        pub region_phys: Hex,
        pub weight_pool_bytes: u64,
        pub globals_bytes: u64,
        pub packed_head_bytes: u64,
        pub slots: u64,
        pub slot_bytes: u64,
        /// Layers kept in memory (all when resident) and streamed every token.
        pub pinned_layers: u64,
        /// Pinned layers placed outside the region, in other free ranges
        /// (e.g. above 4 GiB), and where those ranges start.
        pub spilled_layers: u64,
        pub spill_phys: List<'a, Hex>,
        pub streamed_layers: u64,
        /// Bytes of the pinned layers' extents, read once at boot.
        pub pinned_bytes: u64,
        /// Bytes of the streamed layers' extents: read from disk every token.
        pub streamed_bytes_per_token: u64,
        pub layers_repacked: bool,
        pub packed_layers_bytes: u64,
        pub kv_bytes: u64,
        pub kv_slab_bytes: u64,
        pub kv_slabs: u64,
        pub n_ctx: u64,
        pub activation_bytes: u64,
        /// Weights resident in memory.
        pub model_bytes: u64,
        pub budget: u64,
        pub min_budget: u64,
    }

    /// `@load_progress`: resident mode, after each layer read and verified
    /// at boot (`layer` of `layers` done so far, in completion order).
    pub struct LoadProgress = "load_progress" {
        pub layer: u64,
        pub layers: u64,
        /// Bytes of the layers loaded so far, and of all of them.
        pub bytes: u64,
        pub total_bytes: u64,
    }

    /// `@load`: the boot's load of the globals (and, resident, every layer).
    pub struct Load<'a> = "load" {
        pub mode: Str<'a>,
        /// Layers loaded (0 when streaming).
        pub layers: u64,
        pub bytes: u64,
        pub ms: f64,
        pub mib_per_s: f64,
        /// Extents whose CRC32C was checked.
        pub verified: u64,
    }
    decimals { ms: 1, mib_per_s: 1 }

    /// `@ready`: interactive mode reads prompts now.
    pub struct Ready = "ready" {
        pub interactive: bool,
        /// Longest input line.
        pub max_line: u64,
    }

    /// `@prompt`: an answer starts.
    pub struct Prompt<'a> = "prompt" {
        /// Answer number of the run, from 0.
        pub answer: u64,
        /// Prompt tokens.
        pub tokens: u64,
        /// Most tokens this answer generates.
        pub max_new: u64,
        pub chat: bool,
        pub text: Str<'a>,
        /// The prompt's token ids (up to 256 of them).
        pub ids: Option<List<'a, u32>>,
    }

    /// `@token`: one generated token.
    pub struct Token<'a> = "token" {
        /// Position in the answer, from 0.
        pub i: u64,
        pub id: u32,
        /// The text it completes (whole UTF-8 characters only).
        pub text: Str<'a>,
        /// Microseconds since the previous token (the first: since the answer started).
        pub us: u64,
    }

    /// `@layer` (`telemetry=layer`): one compute core, one layer, one forward pass.
    pub struct Layer = "layer" {
        /// Forward pass of this answer (0 = the first prefill pass).
        pub tok: u64,
        pub layer: u64,
        /// Index among the compute cores.
        pub core: u64,
        pub cpu: u64,
        pub stream_wait_us: u64,
        pub attn_us: u64,
        pub ffn_us: u64,
        pub barrier_us: u64,
        pub busy_us: u64,
    }

    /// `@core_token` (`telemetry=token`, the default): one compute core, one
    /// forward pass, its layers summed.
    pub struct CoreToken = "core_token" {
        pub tok: u64,
        pub core: u64,
        pub cpu: u64,
        pub stream_wait_us: u64,
        pub attn_us: u64,
        pub ffn_us: u64,
        pub barrier_us: u64,
        pub busy_us: u64,
        /// Outside the layers: embedding and output head, and their barriers.
        pub embed_output_us: u64,
        pub outside_barrier_us: u64,
    }

    /// `@io`: the weight reads of one answer (the I/O core's, or compute
    /// worker 0's without one).
    pub struct Io = "io" {
        pub bytes: u64,
        pub reads: u64,
        pub layers_streamed: u64,
        pub verified: u64,
        pub mib_per_s: f64,
        /// Fraction of the answer's time spent submitting, completing and checksumming.
        pub busy: f64,
        pub crc_ms: f64,
        /// Times the idle I/O core parked.
        pub parks: u64,
        pub elapsed_ms: f64,
    }
    decimals { mib_per_s: 1, crc_ms: 1, elapsed_ms: 1 }

    /// `@summary` of an answer.
    pub struct Summary<'a> = "summary" {
        /// `resident` or `streaming`.
        pub mode: Str<'a>,
        pub compute_cores: u64,
        /// Whether an I/O core streamed.
        pub io_core: bool,
        /// An I/O core exists but had nothing to stream (resident).
        pub io_core_idle: bool,
        /// `repacked` or `ggml`.
        pub layers: Str<'a>,
        pub prompt_tokens: u64,
        pub generated: u64,
        /// `limit`, `eos` or `context`.
        pub stop: Str<'a>,
        pub ttft_ms: f64,
        pub prefill_ms: f64,
        pub prefill_tok_s: f64,
        pub decode_tok_s: f64,
        /// Time per decode token (absent with fewer than two tokens).
        pub decode_ms_median: Option<f64>,
        pub decode_ms_min: Option<f64>,
        pub decode_ms_max: Option<f64>,
        /// Shares of the decode passes' layer time, all cores.
        pub stream_wait_frac: f64,
        pub attn_frac: f64,
        pub ffn_frac: f64,
        pub barrier_frac: f64,
        /// Weight bytes read from disk per forward pass of the answer (0
        /// when resident), and the I/O core's read rate over the answer.
        pub bytes_per_token: u64,
        pub io_mib_per_s: f64,
        pub per_core_ms_per_token: List<'a, CoreShare>,
        /// The answer (its first 1.5 KiB).
        pub text: Str<'a>,
    }
    decimals {
        ttft_ms: 1, prefill_ms: 1, decode_ms_median: 2, decode_ms_min: 2, decode_ms_max: 2,
        stream_wait_frac: 4, attn_frac: 4, ffn_frac: 4, barrier_frac: 4, io_mib_per_s: 1,
    }

    /// One compute core's milliseconds per decode token.
    pub struct CoreShare {
        pub cpu: u64,
        pub stream_wait: f64,
        pub attn: f64,
        pub ffn: f64,
        pub barrier: f64,
    }
    decimals { stream_wait: 2, attn: 2, ffn: 2, barrier: 2 }
}

impl<'a> Error<'a> {
    /// An `@error` with only a message.
    pub fn msg(msg: &'a str) -> Self {
        Error { msg: msg.into(), kind: None, cpu: None, vector: None, error_code: None, rip: None, cr2: None, location: None, min_budget: None }
    }
}

impl<'a> Warning<'a> {
    pub fn msg(msg: &'a str) -> Self {
        Warning { msg: msg.into() }
    }
}
