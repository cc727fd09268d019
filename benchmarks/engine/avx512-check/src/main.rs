//! Runs the engine's AVX-512 and AVX-512 VNNI matmul kernels against the
//! scalar reference on random data, with no OS: `check.py` loads this image
//! into an emulated CPU that implements AVX-512 (Bochs, via bochscpu), jumps
//! to `ek_main`, and reads `EK_REPORT` when the CPU halts.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use axiom_engine::ggml_type::GgmlType;
use axiom_engine::matmul::{ActBuf, Isa, Kernels, PackedMatrix, WeightMatrix};
use axiom_engine::quant::quantize_row;

/// What the run found, read by the harness from this symbol.
#[repr(C)]
pub struct Report {
    /// 0x600d when the run completed; 0xdead after a panic.
    pub magic: u64,
    /// Per ISA (avx512, avx512vnni): 1 when `Kernels::for_isa` accepted it.
    pub available: [u64; 2],
    /// Outputs compared, per ISA.
    pub compared: [u64; 2],
    /// Outputs whose bits differ from the scalar reference, per ISA.
    pub mismatches: [u64; 2],
    /// Progress marker (last case started), for diagnosing a fault.
    pub case: u64,
    /// CPUID leaf 7 sub-leaf 0: EBX in the low half, ECX in the high half.
    pub cpuid7: u64,
}

#[no_mangle]
pub static mut EK_REPORT: Report = Report {
    magic: 0,
    available: [0; 2],
    compared: [0; 2],
    mismatches: [0; 2],
    case: 0,
    cpuid7: 0,
};

// ------------------------------------------------------------ runtime support

struct Bump;

const HEAP: usize = 16 << 20;
static mut HEAP_MEM: [u8; HEAP] = [0; HEAP];
static NEXT: AtomicUsize = AtomicUsize::new(0);

// SAFETY: a bump allocator over a static array; single-threaded image.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let base = &raw mut HEAP_MEM as *mut u8 as usize;
        let addr = (base + NEXT.load(Ordering::Relaxed) + l.align() - 1) & !(l.align() - 1);
        let start = addr - base;
        if start + l.size() > HEAP {
            return core::ptr::null_mut();
        }
        NEXT.store(start + l.size(), Ordering::Relaxed);
        // SAFETY: start + size lies inside HEAP_MEM.
        unsafe { (&raw mut HEAP_MEM as *mut u8).add(start) }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: Bump = Bump;

fn halt() -> ! {
    loop {
        // SAFETY: the emulation harness stops at the first HLT.
        unsafe { core::arch::asm!("hlt") };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let report = &raw mut EK_REPORT;
    // SAFETY: single-threaded; the harness reads the report after the halt.
    unsafe { (*report).magic = 0xdead };
    halt()
}

#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// # Safety
/// Standard C contract: non-overlapping valid ranges.
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: caller's contract.
        unsafe { *d.add(i) = *s.add(i) };
    }
    d
}

/// # Safety
/// Standard C contract.
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) < (s as usize) {
        for i in 0..n {
            // SAFETY: caller's contract.
            unsafe { *d.add(i) = *s.add(i) };
        }
    } else {
        for i in (0..n).rev() {
            // SAFETY: caller's contract.
            unsafe { *d.add(i) = *s.add(i) };
        }
    }
    d
}

/// # Safety
/// Standard C contract.
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: caller's contract.
        unsafe { *d.add(i) = c as u8 };
    }
    d
}

/// # Safety
/// Standard C contract.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: caller's contract.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// Standard C contract.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded.
    unsafe { memcmp(a, b, n) }
}

// ---------------------------------------------------------------- the check

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn matrix(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut data = vec![0u8; rows * rb];
    let mut x = vec![0.0f32; cols];
    for (r, row) in data.chunks_exact_mut(rb).enumerate() {
        // The engine quantizes only Q4_0, Q4_1 and Q8_0: the other types' rows are all random.
        let quantizable = matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0);
        if r % 2 == 0 && quantizable {
            for v in x.iter_mut() {
                *v = rng.f32();
            }
            quantize_row(ty, &x, row).unwrap();
        } else {
            // Random quants (every value, Q8_0's -128 included) with sane scales.
            for b in row.iter_mut() {
                *b = rng.next() as u8;
            }
            // Byte offsets of the f16 scales in a block.
            let scales: &[usize] = match ty {
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
                GgmlType::Q2_K => &[80, 82],
                GgmlType::Q3_K => &[108],
                GgmlType::Q6_K => &[208],
                _ => &[0],
            };
            for blk in row.chunks_exact_mut(ty.block_bytes()) {
                for &at in scales {
                    let h = axiom_engine::quant::f32_to_f16(rng.f32() * 0.05);
                    blk[at..at + 2].copy_from_slice(&h.to_le_bytes());
                }
            }
        }
    }
    data
}

fn run(
    k: &Kernels,
    ty: GgmlType,
    w: &WeightMatrix,
    packed: Option<&PackedMatrix>,
    x: &[f32],
    batch: usize,
) -> Vec<u32> {
    let mut acts = ActBuf::new(w.cols, batch);
    k.quantize_activations(ty, x, batch, &mut acts);
    let mut out = vec![0.0f32; batch * w.rows];
    match packed {
        Some(p) => k.matmul(p, &acts, 0..w.rows, &mut out),
        None => k.matmul(w, &acts, 0..w.rows, &mut out),
    }
    out.iter().map(|v| v.to_bits()).collect()
}

#[no_mangle]
pub extern "C" fn ek_main() -> ! {
    let report = &raw mut EK_REPORT;
    // SAFETY: single-threaded; nothing else touches the report until the halt.
    let report = unsafe { &mut *report };
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    report.cpuid7 = leaf7.ebx as u64 | (leaf7.ecx as u64) << 32;
    let scalar = Kernels::for_isa(Isa::Scalar).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (i, isa) in [Isa::Avx512, Isa::Avx512Vnni].into_iter().enumerate() {
        let Ok(k) = Kernels::for_isa(isa) else { continue };
        report.available[i] = 1;
        let mut case = 0;
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::IQ4_NL,
            GgmlType::Q2_K,
            GgmlType::Q3_K,
            GgmlType::Q4_K,
            GgmlType::Q5_K,
            GgmlType::Q6_K,
        ] {
            // Odd and even block counts, partial last groups.
            let shapes = if ty.block_elems() == 256 { [(8usize, 256usize), (13, 512), (5, 256), (17, 768), (24, 256)] } else { [(8, 64), (13, 96), (5, 32), (17, 224), (24, 576)] };
            for (rows, cols) in shapes {
                for batch in [1usize, 3] {
                    case += 1;
                    report.case = (i as u64) << 32 | case;
                    let data = matrix(&mut rng, ty, rows, cols);
                    let w = WeightMatrix::new(ty, rows, cols, &data).unwrap();
                    let p = PackedMatrix::pack(&w).unwrap();
                    let x: Vec<f32> = (0..cols * batch).map(|_| rng.f32()).collect();
                    let want = run(&scalar, ty, &w, None, &x, batch);
                    for got in [run(&k, ty, &w, Some(&p), &x, batch), run(&k, ty, &w, None, &x, batch)] {
                        report.compared[i] += want.len() as u64;
                        report.mismatches[i] += want.iter().zip(&got).filter(|(a, b)| a != b).count() as u64;
                    }
                }
            }
        }
    }
    report.magic = 0x600d;
    halt()
}
