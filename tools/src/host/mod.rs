//! Running the engine on the host: the model file mapped into memory, a team
//! of std threads in lockstep, and the options every engine subcommand shares.
//!
//! The same forward pass the kernel's compute cores run, with threads in
//! place of cores: each thread takes a seat of one engine team, meeting the
//! others at a spinning barrier; layers are read straight from the mapping.

pub mod team;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use axiom_tools::infer::default_model_path;
use axiom_engine::gguf::Gguf;
use axiom_engine::matmul::{Isa, Kernels};
use axiom_engine::model::packed::aligned_part;
use axiom_engine::model::{extent_bytes, LayerSource, Model, PackedLayers, PackedPlan, ResidentLayers};
use axiom_engine::state::{SharedState, StateConfig};
use axiom_engine::tokenizer::Tokenizer;
use memmap2::Mmap;

pub use team::HostTeam;

/// Options shared by `generate`, `score` and `perplexity`.
#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// GGUF model file, or a name tools/fetch-model.sh knows (smollm2-135m,
    /// gemma3-270m), fetched on first use [default:
    /// ${AXIOM_CACHE:-~/.cache/axiom}/models/SmolLM2-135M-Instruct.Q4_1.gguf]
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Worker threads [default: the number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Force a kernel set (scalar, avx2, avx512, avx512vnni) instead of the
    /// fastest this CPU supports; all give bit-identical results.
    #[arg(long)]
    pub isa: Option<String>,
    /// Tokens per prefill forward call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Do not pin worker threads to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Compute from the file's ggml layout instead of weights repacked at
    /// load for the SIMD kernels (same results, slower).
    #[arg(long)]
    pub no_repack: bool,
}

impl EngineArgs {
    pub fn model_path(&self) -> Result<PathBuf> {
        match &self.model {
            Some(m) => axiom_tools::infer::resolve_model(m),
            None => default_model_path(),
        }
    }

    pub fn threads(&self) -> Result<usize> {
        match self.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(t) if t > 256 => bail!("--threads {t} is more than this tool supports (256)"),
            Some(t) => Ok(t),
            None => Ok(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        }
    }

    pub fn kernels(&self) -> Result<Kernels> {
        match &self.isa {
            None => Ok(Kernels::detect()),
            Some(name) => {
                let isa = Isa::from_name(name).with_context(|| {
                    let names: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
                    format!("unknown --isa {name:?} (one of: {})", names.join(", "))
                })?;
                Kernels::for_isa(isa).map_err(|e| anyhow::anyhow!("--isa {name}: {e}"))
            }
        }
    }

    pub fn batch(&self) -> Result<usize> {
        if self.batch == 0 || self.batch > 4096 {
            bail!("--batch must be between 1 and 4096");
        }
        Ok(self.batch)
    }
}

/// Everything an engine subcommand works with, loaded once from
/// [`EngineArgs`]: see [`with_engine`].
pub struct Engine<'a> {
    pub path: &'a Path,
    pub gguf: &'a Gguf<'a>,
    pub model: Model<'a>,
    pub weights: Weights<'a>,
    pub threads: usize,
    pub batch: usize,
    pin: bool,
}

impl Engine<'_> {
    /// The model's tokenizer.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        Tokenizer::from_gguf(self.gguf).with_context(|| format!("{}: tokenizer", self.path.display()))
    }

    /// Zeroed memory for a [`SharedState`] of `cfg`.
    pub fn state_memory(&self, cfg: &StateConfig) -> Result<Vec<f32>> {
        let floats = SharedState::floats_needed(&self.model.config, cfg).context("the inference state size overflows")?;
        Ok(vec![0f32; floats])
    }

    /// The thread team, with per-thread scratch for states of `cfg`.
    pub fn team(&self, cfg: &StateConfig) -> HostTeam {
        HostTeam::new(self.threads, &self.model.config, cfg, self.pin)
    }
}

/// Maps the model, checks it, repacks its weights (unless `--no-repack`)
/// and runs `f` with the result.
pub fn with_engine<R>(args: &EngineArgs, f: impl FnOnce(&Engine<'_>) -> Result<R>) -> Result<R> {
    let threads = args.threads()?;
    let kernels = args.kernels()?;
    let batch = args.batch()?;
    let mapped = MappedModel::open(&args.model_path()?)?;
    let gguf = mapped.gguf()?;
    let mut model = mapped.model(&gguf, kernels)?;
    let mut storage = Vec::new();
    let weights = Weights::new(&mapped, &mut model, &mut storage, !args.no_repack)?;
    f(&Engine { path: &mapped.path, gguf: &gguf, model, weights, threads, batch, pin: !args.no_pin })
}

/// A model file mapped read-only.
pub struct MappedModel {
    pub path: PathBuf,
    pub map: Mmap,
}

impl MappedModel {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            if default_model_path().is_ok_and(|d| d == path) {
                bail!("the default model is not at {}: run tools/fetch-model.sh to download it", path.display());
            }
            bail!("model file {} does not exist", path.display());
        }
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the mapping is read-only and private to this process; the
        // model file is not modified while we run (like every mmap-based
        // inference tool, we rely on that). The engine bounds-checks every
        // access against the parsed header.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
        Ok(MappedModel { path: path.to_path_buf(), map })
    }

    pub fn gguf(&self) -> Result<Gguf<'_>> {
        Gguf::parse(&self.map).with_context(|| format!("{}", self.path.display()))
    }

    pub fn model<'a>(&'a self, gguf: &Gguf<'a>, kernels: Kernels) -> Result<Model<'a>> {
        Model::from_gguf(gguf, kernels).with_context(|| format!("{}", self.path.display()))
    }
}

/// The layer weights the workers read: the mapped file, or (by default) a
/// copy with every matrix repacked for the SIMD kernels.
pub struct Weights<'a> {
    resident: ResidentLayers<'a>,
    packed: Option<PackedLayers<'a>>,
}

impl<'a> Weights<'a> {
    /// Prepares the weights of `model` (from `mapped`); with `repack`, packs
    /// them into `storage` and points the model's output head at its packed
    /// copy.
    pub fn new(mapped: &'a MappedModel, model: &mut Model<'a>, storage: &'a mut Vec<u8>, repack: bool) -> Result<Weights<'a>> {
        let resident = ResidentLayers::new(&mapped.map, &model.layout)?;
        if !repack {
            return Ok(Weights { resident, packed: None });
        }
        const HUGE_PAGE: usize = 2 << 20;
        let plan = PackedPlan::new(&model.layout);
        let len = plan.bytes();
        storage.clear();
        storage.resize(len + HUGE_PAGE, 0);
        let buf = aligned_part(storage, HUGE_PAGE, len).context("packed weight buffer")?;
        advise_huge_pages(buf);
        let globals = extent_bytes(&mapped.map, &model.layout.globals.extent).context("globals extent outside the file")?;
        let packed = PackedLayers::pack(resident.clone(), &model.layout, globals, plan, buf)?;
        if let Some(output) = packed.output() {
            model.globals.output = output;
        }
        Ok(Weights { resident, packed: Some(packed) })
    }

    pub fn source(&self) -> &dyn LayerSource {
        match &self.packed {
            Some(p) => p,
            None => &self.resident,
        }
    }
}

/// Asks Linux to back `buf` (2 MiB aligned) with transparent huge pages: the
/// hardware prefetcher stops at every 4 KiB page boundary, and the matmuls
/// stream the weights. Best effort.
fn advise_huge_pages(buf: &mut [u8]) {
    // SAFETY: madvise only changes how the kernel backs this range, which is
    // memory we own for as long as the slice; it never invalidates contents.
    unsafe {
        libc::madvise(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MADV_HUGEPAGE);
    }
}
