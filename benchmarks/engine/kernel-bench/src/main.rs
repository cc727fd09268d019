//! `kernel-bench`: times AXIOM's matmul kernels on every weight matrix of a
//! GGUF model, the way one decode step (batch 1) or one prefill batch uses
//! them, on 1..N threads that split each matrix's rows and meet at a barrier
//! after each matmul (as the forward pass does). Also measures read bandwidth.
//!
//! ```text
//! kernel-bench bw [--threads T] [--mib N] [--samples N] [--small-pages] [--streams S] [--prefetch BYTES] [--width 32|64]
//! kernel-bench weights --model FILE
//! kernel-bench matmuls --model FILE [--threads T] [--batch B] [--iters N] [--isa NAME] [--packed] [--only NAME] [--as TYPE]
//! ```
//! Prints one JSON line per measurement (medians and spread over iterations).
//! Environment: `AXIOM_PF=BYTES` sets the kernels' software prefetch distance;
//! `AXIOM_NO_HUGE=1` keeps large allocations (the packed copies) off 2 MiB pages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axiom_engine::gguf::Gguf;
use axiom_engine::matmul::{ActBuf, Isa, Kernels, Matrix, PackedMatrix, WeightMatrix};

/// Large allocations (the packed weight copies) are 2 MiB aligned and advised
/// to use transparent huge pages, as a loader should do: the AXIOM kernel maps
/// its tensor region with 2 MiB pages, and 4 KiB pages cost the hardware
/// prefetcher a restart at every page boundary.
struct HugePageAlloc;

const HUGE: usize = 2 << 20;

// SAFETY: forwards to the system allocator with a stricter alignment for
// large blocks; dealloc recomputes the same layout.
unsafe impl std::alloc::GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() >= HUGE && std::env::var_os("AXIOM_NO_HUGE").is_none() {
            let l = std::alloc::Layout::from_size_align(layout.size(), HUGE.max(layout.align())).unwrap();
            // SAFETY: non-zero size layout.
            let p = unsafe { std::alloc::System.alloc(l) };
            if !p.is_null() {
                // SAFETY: advice on memory we own; failure only means small pages.
                unsafe { libc::madvise(p as *mut libc::c_void, layout.size(), libc::MADV_HUGEPAGE) };
            }
            p
        } else {
            // SAFETY: forwarded.
            unsafe { std::alloc::System.alloc(layout) }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if layout.size() >= HUGE && std::env::var_os("AXIOM_NO_HUGE").is_none() {
            let l = std::alloc::Layout::from_size_align(layout.size(), HUGE.max(layout.align())).unwrap();
            // SAFETY: allocated above with this layout.
            unsafe { std::alloc::System.dealloc(ptr, l) }
        } else {
            // SAFETY: forwarded.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOC: HugePageAlloc = HugePageAlloc;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}")))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("bw") => bandwidth(&args),
        Some("matmuls") => matmuls(&args),
        Some("weights") => weights(&args),
        _ => {
            eprintln!("usage: kernel-bench bw [--threads T] [--mib N] [--samples N] [--small-pages] [--streams S] [--prefetch BYTES] [--width 32|64] | weights --model FILE | matmuls --model FILE [--threads T] [--batch B] [--iters N] [--isa NAME] [--packed] [--only NAME] [--as TYPE]");
            std::process::exit(2);
        }
    }
}

/// CPU time consumed by the calling thread (immune to time slices lost to
/// other processes on a busy machine), in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass; the clock id is valid.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Median, min and max of a sample.
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// A sense-reversing spin barrier for `n` threads.
struct Barrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl Barrier {
    fn new(n: usize) -> Self {
        Barrier {
            n,
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }
    fn wait(&self) {
        let gen = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            while self.generation.load(Ordering::Acquire) == gen {
                std::hint::spin_loop();
            }
        }
    }
}

/// How one thread reads its part of the buffer: `streams` independent
/// sequential streams (equal sub-parts read in lockstep, so several DRAM pages
/// and hardware prefetch streams are open at once), a software prefetch
/// `prefetch` bytes ahead of each stream (0: none), and loads of `width`
/// bytes (32: AVX2, 64: AVX-512).
#[derive(Clone, Copy, Debug, PartialEq)]
struct ReadConfig {
    streams: usize,
    prefetch: usize,
    width: usize,
}

/// Stream counts the reader is compiled for.
const STREAM_COUNTS: [usize; 5] = [1, 2, 4, 8, 16];
/// Software prefetch distances tried by the sweep (bytes ahead).
const PREFETCH_DISTANCES: [usize; 4] = [0, 512, 1024, 4096];

impl ReadConfig {
    fn json(&self) -> String {
        format!("\"streams\":{},\"prefetch\":{},\"width\":{}", self.streams, self.prefetch, self.width)
    }
}

/// Streaming read bandwidth over a buffer much larger than the caches, each
/// thread reading its own contiguous part, on 2 MiB pages when the OS grants
/// them (as the kernel maps memory) unless `--small-pages`; wall-clock time
/// of all threads together, median (min, max) of `--samples` passes (and the
/// median by CPU time, `cpu_gb_s`).
///
/// Without `--streams`/`--prefetch`/`--width` it searches for the ceiling:
/// every combination of 1-16 streams per thread, prefetch distances 0-4096
/// and AVX2 / AVX-512 loads, one JSON line each (`read_bandwidth_config`),
/// then the best median as `read_bandwidth` (with its configuration, the
/// one-stream AVX2 baseline and the worst configuration's median). Given
/// any of those options it measures that one configuration (the others
/// default to 1 stream, no prefetch, 32-byte loads).
fn bandwidth(args: &[String]) {
    let threads: usize = arg(args, "--threads", 1);
    let mib: usize = arg(args, "--mib", 1024);
    let samples: usize = arg(args, "--samples", 5).max(1);
    let huge = !args.iter().any(|a| a == "--small-pages");
    let avx512 = std::is_x86_feature_detected!("avx512f");
    let fixed = ["--streams", "--prefetch", "--width"].iter().any(|o| args.iter().any(|a| a == o));
    let configs: Vec<ReadConfig> = if fixed {
        let c = ReadConfig {
            streams: arg(args, "--streams", 1),
            prefetch: arg(args, "--prefetch", 0),
            width: arg(args, "--width", 32),
        };
        assert!(STREAM_COUNTS.contains(&c.streams), "--streams must be one of {STREAM_COUNTS:?}");
        assert!(c.width == 32 || (c.width == 64 && avx512), "--width must be 32, or 64 with AVX-512");
        vec![c]
    } else {
        let widths: &[usize] = if avx512 { &[32, 64] } else { &[32] };
        let mut v = Vec::new();
        for &width in widths {
            for &streams in &STREAM_COUNTS {
                for &prefetch in &PREFETCH_DISTANCES {
                    v.push(ReadConfig { streams, prefetch, width });
                }
            }
        }
        v
    };
    let buf = HugeBuf::new(mib << 20, huge);
    // Every thread's part holds a whole number of 128-byte steps per stream.
    let step = 128 * STREAM_COUNTS[STREAM_COUNTS.len() - 1];
    let part = buf.len() / threads / step * step;
    // GB/s of one pass over the whole buffer by wall-clock time (the rate
    // of all threads reading at once, what the decode's bound needs and
    // what the engines' tokens/s are timed by), and by the slowest thread's
    // CPU time (time slices lost to other processes do not count, but on a
    // shared machine threads that did not run at the same time each had the
    // memory to themselves: only a hint of what a quiet machine would give).
    let pass = |cfg: ReadConfig| -> (f64, f64) {
        let t0 = Instant::now();
        let (sum, cpu) = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|i| {
                    let mine = &buf.as_slice()[i * part..(i + 1) * part];
                    s.spawn(move || {
                        let c0 = thread_cpu_secs();
                        let sum = read_streams(mine, cfg);
                        (sum, thread_cpu_secs() - c0)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).fold((0u64, 0f64), |(s, c), (s1, c1)| (s.wrapping_add(s1), c.max(c1)))
        });
        let wall = t0.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        let bytes = (part * threads) as f64;
        (bytes / wall / 1e9, bytes / cpu / 1e9)
    };
    // One untimed pass (TLB and page tables warm), then the configurations
    // round-robin, one pass each per sample: a drift of the machine's load
    // during the sweep hits every configuration alike.
    pass(configs[0]);
    let mut gb_s = vec![Vec::with_capacity(samples); configs.len()];
    let mut cpu_gb_s = vec![Vec::with_capacity(samples); configs.len()];
    for _ in 0..samples {
        for (i, &cfg) in configs.iter().enumerate() {
            let (by_wall, by_cpu) = pass(cfg);
            gb_s[i].push(by_wall);
            cpu_gb_s[i].push(by_cpu);
        }
    }
    let mut results = Vec::new();
    for ((&cfg, g), c) in configs.iter().zip(&mut gb_s).zip(&mut cpu_gb_s) {
        let (med, lo, hi) = stats(g);
        let cpu = stats(c).0;
        if !fixed {
            println!("{{\"bench\":\"read_bandwidth_config\",\"threads\":{threads},{},\"gb_s\":{med:.2},\"min\":{lo:.2},\"max\":{hi:.2},\"cpu_gb_s\":{cpu:.2}}}", cfg.json());
        }
        results.push((cfg, med, lo, hi, cpu));
    }
    let (best, med, lo, hi, cpu) = *results.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let mut extra = String::new();
    if !fixed {
        let baseline = results.iter().find(|r| r.0 == ReadConfig { streams: 1, prefetch: 0, width: 32 }).unwrap().1;
        let worst = results.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
        extra = format!(",\"configs\":{},\"baseline_gb_s\":{baseline:.2},\"worst_gb_s\":{worst:.2}", results.len());
    }
    println!(
        "{{\"bench\":\"read_bandwidth\",\"threads\":{threads},\"mib\":{mib},\"huge_pages\":{huge},\"samples\":{samples},{},\"gb_s\":{med:.2},\"min\":{lo:.2},\"max\":{hi:.2},\"cpu_gb_s\":{cpu:.2}{extra}}}",
        best.json()
    );
}

/// Anonymous memory, advised to use transparent huge pages, filled with a pattern.
struct HugeBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: HugeBuf owns its mapping; shared access is read-only.
unsafe impl Sync for HugeBuf {}
// SAFETY: as above.
unsafe impl Send for HugeBuf {}

impl HugeBuf {
    fn new(len: usize, huge: bool) -> HugeBuf {
        let len = len.div_ceil(2 << 20) * (2 << 20);
        // SAFETY: a fresh private anonymous mapping; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(ptr != libc::MAP_FAILED, "mmap failed");
        if huge {
            // SAFETY: advice on our own mapping; failure only means small pages.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
        let mut b = HugeBuf {
            ptr: ptr as *mut u8,
            len,
        };
        for (i, v) in b.as_mut_slice().iter_mut().enumerate() {
            *v = i as u8;
        }
        b
    }
    fn len(&self) -> usize {
        self.len
    }
    fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is len bytes, initialized in new().
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for HugeBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in new().
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Reads every byte of `v` (a multiple of `128 * cfg.streams` bytes) as
/// `cfg.streams` equal sub-parts in lockstep, 128 bytes of each per step:
/// the wrapping sum of its little-endian u64 words (so no load can be
/// skipped, and every configuration returns the same value).
fn read_streams(v: &[u8], cfg: ReadConfig) -> u64 {
    assert!(std::is_x86_feature_detected!("avx2"));
    assert_eq!(v.len() % (128 * cfg.streams), 0);
    let wide = cfg.width == 64;
    assert!(!wide || std::is_x86_feature_detected!("avx512f"));
    macro_rules! dispatch {
        ($($s:literal)*) => {
            match cfg.streams {
                // SAFETY: the features each reader enables were checked above.
                $($s => unsafe { if wide { read_avx512::<$s>(v, cfg.prefetch) } else { read_avx2::<$s>(v, cfg.prefetch) } },)*
                n => panic!("{n} streams: not one of {STREAM_COUNTS:?}"),
            }
        };
    }
    dispatch!(1 2 4 8 16)
}

/// The AVX2 reader of `read_streams`: four 32-byte loads per stream and step.
#[target_feature(enable = "avx2")]
unsafe fn read_avx2<const S: usize>(v: &[u8], prefetch: usize) -> u64 {
    use std::arch::x86_64::*;
    let len = v.len() / S;
    let mut acc = [_mm256_setzero_si256(); 4];
    for off in (0..len).step_by(128) {
        for s in 0..S {
            let p = v[s * len + off..][..128].as_ptr();
            if prefetch != 0 {
                // A hint, never a fault: past the end it is simply dropped.
                let ahead = p.wrapping_add(prefetch);
                _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64) as *const i8);
            }
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: p points at 128 readable bytes (the slice above).
                *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(p.add(32 * k) as *const __m256i) });
            }
        }
    }
    let s = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
    let lanes = [_mm256_extract_epi64(s, 0), _mm256_extract_epi64(s, 1), _mm256_extract_epi64(s, 2), _mm256_extract_epi64(s, 3)];
    lanes.iter().fold(0u64, |a, &l| a.wrapping_add(l as u64))
}

/// The AVX-512 reader of `read_streams`: two 64-byte loads per stream and step.
#[target_feature(enable = "avx512f")]
unsafe fn read_avx512<const S: usize>(v: &[u8], prefetch: usize) -> u64 {
    use std::arch::x86_64::*;
    let len = v.len() / S;
    let mut acc = [_mm512_setzero_si512(); 2];
    for off in (0..len).step_by(128) {
        for s in 0..S {
            let p = v[s * len + off..][..128].as_ptr();
            if prefetch != 0 {
                // A hint, never a fault: past the end it is simply dropped.
                let ahead = p.wrapping_add(prefetch);
                _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64) as *const i8);
            }
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: p points at 128 readable bytes (the slice above).
                *a = _mm512_add_epi64(*a, unsafe { _mm512_loadu_si512(p.add(64 * k) as *const __m512i) });
            }
        }
    }
    _mm512_reduce_add_epi64(_mm512_add_epi64(acc[0], acc[1])) as u64
}

/// Bytes of weights one decode step reads: every 2-D matrix of the layers
/// plus the output head (`output.weight`, or `token_embd.weight` when tied),
/// plus one embedding row and the 1-D tensors (norms), as one JSON line.
fn weights(args: &[String]) {
    let path: String = arg(args, "--model", String::new());
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: the model file is not modified while mapped (benchmark input).
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let gguf = Gguf::parse(&map).unwrap_or_else(|e| panic!("{path}: {e}"));
    let has_output = gguf.tensor("output.weight").is_some();
    let mut bytes = 0u64;
    for t in gguf.tensors() {
        if t.name == "token_embd.weight" {
            // One row for the lookup; the whole matrix again if it is the head.
            bytes += t.size / t.dims[1];
            if !has_output {
                bytes += t.size;
            }
        } else {
            bytes += t.size;
        }
    }
    println!(
        "{{\"bench\":\"weights\",\"model\":\"{}\",\"bytes_per_token\":{bytes}}}",
        path.rsplit('/').next().unwrap()
    );
}

/// Every 2-D matrix of the model (the output head is `output.weight` or the
/// tied `token_embd.weight`), timed as one decode step or one prefill batch.
fn matmuls(args: &[String]) {
    let path: String = arg(args, "--model", String::new());
    let threads: usize = arg(args, "--threads", 1);
    let batch: usize = arg(args, "--batch", 1);
    let iters: usize = arg(args, "--iters", 20);
    let isa: String = arg(args, "--isa", String::new());
    let packed = args.iter().any(|a| a == "--packed");
    if let Ok(v) = std::env::var("AXIOM_PF") {
        axiom_engine::matmul::set_prefetch_distance(v.parse().unwrap());
    }
    // Only tensors whose name contains this (e.g. `blk.0.attn_q` for a
    // cache-resident compute-bound measurement).
    let only: String = arg(args, "--only", String::new());
    let kernels = if isa.is_empty() {
        Kernels::detect()
    } else {
        Kernels::for_isa(Isa::from_name(&isa).expect("unknown --isa")).expect("ISA not available")
    };
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: the model file is not modified while mapped (benchmark input).
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let gguf = Gguf::parse(&map).unwrap_or_else(|e| panic!("{path}: {e}"));
    let has_output = gguf.tensor("output.weight").is_some();
    // `--as q4_0|q8_0|...`: requantize the layer matrices in memory (the
    // output head keeps its type), to time other weight types from one file.
    let as_ty: String = arg(args, "--as", String::new());
    let as_ty = (!as_ty.is_empty()).then(|| {
        axiom_engine::ggml_type::GgmlType::ALL
            .into_iter()
            .find(|t| t.name() == as_ty)
            .expect("unknown --as type")
    });
    let mut owned: Vec<(String, axiom_engine::ggml_type::GgmlType, usize, usize, Vec<u8>)> = Vec::new();
    let mut borrowed: Vec<(String, WeightMatrix)> = Vec::new();
    for t in gguf.tensors() {
        if t.n_dims != 2 || (t.name == "token_embd.weight" && has_output) || !t.name.contains(only.as_str()) {
            continue;
        }
        let data = gguf.tensor_bytes(t).unwrap();
        let (rows, cols) = (t.dims[1] as usize, t.dims[0] as usize);
        match as_ty {
            Some(ty) if t.name.starts_with("blk.") && ty != t.ty => {
                let src = WeightMatrix::new(t.ty, rows, cols, data).unwrap();
                let mut f = vec![0.0f32; cols];
                let rb = ty.row_bytes(cols as u64).unwrap() as usize;
                let mut q = vec![0u8; rows * rb];
                for r in 0..rows {
                    axiom_engine::quant::dequantize_row(t.ty, src.row(r), &mut f).unwrap();
                    axiom_engine::quant::quantize_row(ty, &f, &mut q[r * rb..(r + 1) * rb]).unwrap();
                }
                owned.push((t.name.to_string(), ty, rows, cols, q));
            }
            _ => borrowed.push((t.name.to_string(), WeightMatrix::new(t.ty, rows, cols, data).unwrap())),
        }
    }
    let mut mats: Vec<(String, WeightMatrix)> = borrowed;
    for (name, ty, rows, cols, q) in &owned {
        mats.push((name.clone(), WeightMatrix::new(*ty, *rows, *cols, q).unwrap()));
    }
    // Repacked copies (as a loader would make them), when asked for.
    let packs: Vec<Option<PackedMatrix>> = mats
        .iter()
        .map(|(_, w)| if packed { PackedMatrix::pack(w).ok() } else { None })
        .collect();
    let views: Vec<Matrix> = mats
        .iter()
        .zip(&packs)
        .map(|((_, w), p)| match p {
            Some(p) => Matrix::from(p),
            None => Matrix::from(w),
        })
        .collect();
    let max_cols = mats.iter().map(|(_, w)| w.cols).max().unwrap();
    let max_rows = mats.iter().map(|(_, w)| w.rows).max().unwrap();
    let bytes: usize = mats.iter().map(|(_, w)| w.rows * w.row_bytes()).sum();
    // Activations: a fixed pseudo-random vector per token.
    let x: Vec<f32> = (0..max_cols * batch)
        .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let barrier = Barrier::new(threads);
    let mut per_iter = Vec::new();
    let mut per_iter_cpu = Vec::new();
    let mut per_class: std::collections::BTreeMap<String, f64> = Default::default();
    let class = |name: &str| -> String {
        let n = name.trim_end_matches(".weight");
        n.rsplit('.').next().unwrap_or(n).to_string()
    };
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<(Vec<(usize, f64)>, f64)>();
        let mats = &mats;
        let views = &views;
        let barrier = &barrier;
        let x = &x;
        for tid in 0..threads {
            let tx = tx.clone();
            s.spawn(move || {
                let mut acts = ActBuf::new(max_cols, batch);
                let mut out = vec![0.0f32; max_rows * batch];
                for _ in 0..iters + 2 {
                    let mut times = Vec::with_capacity(mats.len() + 1);
                    let t_all = Instant::now();
                    let cpu0 = thread_cpu_secs();
                    for (i, (_, w)) in mats.iter().enumerate() {
                        let t0 = Instant::now();
                        // Every thread quantizes its own copy (tiny; the forward
                        // pass shares one), then computes its share of rows.
                        kernels.quantize_activations(w.ty, &x[..w.cols * batch], batch, &mut acts);
                        let per = w.rows.div_ceil(threads).div_ceil(8) * 8;
                        let lo = (tid * per).min(w.rows);
                        let hi = ((tid + 1) * per).min(w.rows);
                        kernels.matmul(views[i], &acts, lo..hi, &mut out[..(hi - lo) * batch]);
                        barrier.wait();
                        times.push((i, t0.elapsed().as_secs_f64()));
                    }
                    times.push((usize::MAX, t_all.elapsed().as_secs_f64()));
                    let cpu = thread_cpu_secs() - cpu0;
                    if tid == 0 {
                        tx.send((times, cpu)).unwrap();
                    }
                }
            });
        }
        drop(tx);
        for (n, (times, cpu)) in rx.iter().enumerate() {
            if n < 2 {
                continue; // warm-up
            }
            per_iter_cpu.push(cpu);
            for (i, t) in times {
                if i == usize::MAX {
                    per_iter.push(t);
                } else {
                    *per_class.entry(class(&mats[i].0)).or_default() += t / iters as f64;
                }
            }
        }
    });
    let row_blocks: usize = mats.iter().map(|(_, w)| w.rows * w.cols / 32).sum();
    let (med, lo, hi) = stats(&mut per_iter);
    let (cpu_med, cpu_lo, _) = stats(&mut per_iter_cpu);
    let toks = batch as f64 / med;
    println!(
        "{{\"bench\":\"matmuls\",\"model\":\"{}\",\"isa\":\"{}\",\"packed\":{packed},\"threads\":{threads},\"batch\":{batch},\"iters\":{iters},\"ms_median\":{:.3},\"ms_min\":{:.3},\"ms_max\":{:.3},\"cpu_ms_median\":{:.3},\"cpu_ms_min\":{:.3},\"tok_s\":{toks:.1},\"ns_per_row_block_cpu\":{:.3},\"weight_mb\":{:.1},\"gb_s\":{:.2}}}",
        path.rsplit('/').next().unwrap(),
        kernels.isa(),
        med * 1e3,
        lo * 1e3,
        hi * 1e3,
        cpu_med * 1e3,
        cpu_lo * 1e3,
        cpu_lo * 1e9 / (row_blocks * batch) as f64 * threads as f64,
        bytes as f64 / 1e6,
        bytes as f64 / med / 1e9
    );
    let parts: Vec<String> = per_class
        .iter()
        .map(|(k, v)| format!("\"{k}\":{:.3}", v * 1e3))
        .collect();
    println!("{{\"bench\":\"matmuls_by_tensor_ms\",{}}}", parts.join(","));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every configuration reads every word exactly once: the same sum as a
    /// plain loop over the words.
    #[test]
    fn every_read_configuration_sums_every_word_once() {
        let len = 128 * 16 * 5;
        let buf: Vec<u8> = (0..len).map(|i| (i * 7 + i / 256) as u8).collect();
        let expected = buf.chunks_exact(8).fold(0u64, |a, w| a.wrapping_add(u64::from_le_bytes(w.try_into().unwrap())));
        let widths: &[usize] = if std::is_x86_feature_detected!("avx512f") { &[32, 64] } else { &[32] };
        for &width in widths {
            for streams in STREAM_COUNTS {
                for prefetch in PREFETCH_DISTANCES {
                    let cfg = ReadConfig { streams, prefetch, width };
                    assert_eq!(read_streams(&buf, cfg), expected, "{cfg:?}");
                }
            }
        }
    }
}
