//! The time-stamp counter as the kernel's clock: calibrated once on the BSP
//! (CPUID 0x15 when it names the crystal, else the HPET, else the PIT, else
//! CPUID 0x16's nominal frequency), then read with `rdtsc` on any core.
//! The HPET goes before the PIT: under OVMF the PIT channel-2 measurement
//! was seen 50% off, and a PIT whose three runs disagree is not used.

use core::sync::atomic::{AtomicU64, Ordering};

use axiom_kernel::stats::cycles_to_ns;

use crate::cpu::instr::{cpuid, rdtsc};
use crate::cpu::port::{inb, outb};
use crate::mem;

static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
/// Frequency assumed for timeouts before calibration.
const GUESS_KHZ: u64 = 3_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Cpuid15,
    Pit,
    Hpet,
    Cpuid16,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Cpuid15 => "cpuid-0x15",
            Source::Pit => "pit",
            Source::Hpet => "hpet",
            Source::Cpuid16 => "cpuid-0x16",
        }
    }
}

pub fn khz() -> u64 {
    match TSC_KHZ.load(Ordering::Relaxed) {
        0 => GUESS_KHZ,
        k => k,
    }
}

pub fn mhz() -> f64 {
    khz() as f64 / 1000.0
}

#[allow(dead_code)] // the clock behind drivers' timeouts (NVMe glue)
pub fn now_ns() -> u64 {
    cycles_to_ns(rdtsc(), khz())
}

pub fn cycles_to_ns_now(cycles: u64) -> u64 {
    cycles_to_ns(cycles, khz())
}

pub fn us_to_cycles(us: u64) -> u64 {
    us.saturating_mul(khz()) / 1000
}

/// TSC value `us` microseconds from now.
pub fn deadline_us(us: u64) -> u64 {
    rdtsc().saturating_add(us_to_cycles(us))
}

pub fn passed(deadline: u64) -> bool {
    rdtsc() >= deadline
}

pub fn delay_us(us: u64) {
    let end = deadline_us(us);
    while !passed(end) {
        core::hint::spin_loop();
    }
}

/// Calibrate; `hpet` is the HPET base from ACPI, if any.
pub fn calibrate(hpet: Option<u64>) -> Result<Source, &'static str> {
    let (khz, source) = from_cpuid_15()
        .map(|k| (k, Source::Cpuid15))
        .or_else(|| hpet.and_then(from_hpet).map(|k| (k, Source::Hpet)))
        .or_else(|| from_pit().map(|k| (k, Source::Pit)))
        .or_else(|| from_cpuid_16().map(|k| (k, Source::Cpuid16)))
        .ok_or("cannot calibrate the TSC: no CPUID frequency, PIT or HPET")?;
    TSC_KHZ.store(khz, Ordering::Relaxed);
    Ok(source)
}

fn from_cpuid_15() -> Option<u64> {
    if cpuid(0, 0).eax < 0x15 {
        return None;
    }
    let l = cpuid(0x15, 0);
    let (den, num, crystal_hz) = (l.eax as u64, l.ebx as u64, l.ecx as u64);
    if den == 0 || num == 0 || crystal_hz == 0 {
        return None;
    }
    Some(crystal_hz * num / den / 1000)
}

fn from_cpuid_16() -> Option<u64> {
    if cpuid(0, 0).eax < 0x16 {
        return None;
    }
    let mhz = cpuid(0x16, 0).eax as u64 & 0xFFFF;
    (mhz != 0).then_some(mhz * 1000)
}

const PIT_HZ: u64 = 1_193_182;

/// One 10 ms measurement with PIT channel 2 (gate on port 0x61), or None if
/// the PIT does not count.
fn pit_once() -> Option<u64> {
    const MS: u64 = 10;
    let latch = (PIT_HZ * MS / 1000) as u16;
    outb(0x61, (inb(0x61) & !0x02) | 0x01); // gate high, speaker off
    outb(0x43, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
    outb(0x42, latch as u8);
    outb(0x42, (latch >> 8) as u8);
    let start = rdtsc();
    let mut spins = 0u64;
    while inb(0x61) & 0x20 == 0 {
        spins += 1;
        if spins > 50_000_000 {
            return None;
        }
    }
    let cycles = rdtsc() - start;
    Some(cycles / MS)
}

fn from_pit() -> Option<u64> {
    let mut runs = [0u64; 3];
    for r in runs.iter_mut() {
        *r = pit_once()?;
    }
    runs.sort_unstable();
    // Three runs within 2% of each other, or the PIT is not trustworthy.
    let consistent = runs[2] - runs[0] <= runs[1] / 50;
    (runs[1] > 1000 && consistent).then_some(runs[1])
}

fn from_hpet(base: u64) -> Option<u64> {
    let regs = mem::map_mmio(base, 1024).ok()?;
    let read = |off: usize| -> u64 {
        // SAFETY: the HPET block was just mapped uncached; 64-bit reads of
        // its capability and counter registers have no side effects.
        unsafe { core::ptr::read_volatile(regs.virt.add(off) as *const u64) }
    };
    let period_fs = read(0) >> 32;
    if period_fs == 0 || period_fs > 100_000_000 {
        return None;
    }
    // SAFETY: setting ENABLE_CNF (bit 0) of the configuration register starts the main counter.
    unsafe { core::ptr::write_volatile(regs.virt.add(0x10) as *mut u64, read(0x10) | 1) };
    let ticks = 10_000_000_000_000 / period_fs; // 10 ms
    let mut runs = [0u64; 3];
    for run in runs.iter_mut() {
        let c0 = read(0xF0);
        let t0 = rdtsc();
        let mut spins = 0u64;
        let c1 = loop {
            let c = read(0xF0);
            if c.wrapping_sub(c0) >= ticks {
                break c;
            }
            spins += 1;
            if spins > 100_000_000 {
                return None;
            }
        };
        let cycles = rdtsc() - t0;
        // kHz = cycles / elapsed ms, elapsed from the ticks actually counted.
        let elapsed_fs = (c1.wrapping_sub(c0) as u128) * period_fs as u128;
        *run = (cycles as u128 * 1_000_000_000_000 / elapsed_fs) as u64;
    }
    runs.sort_unstable();
    Some(runs[1])
}
