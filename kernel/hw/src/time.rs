//! The time-stamp counter as the kernel's clock: calibrated once on the BSP
//! (CPUID 0x15 when it names the crystal, else the HPET, else the PIT, else
//! CPUID 0x16's nominal frequency), then read with `rdtsc` on any core.
//! The HPET goes before the PIT: under OVMF the PIT channel-2 measurement
//! was seen 50% off, and a PIT that never gives three agreeing runs is not used.

use core::sync::atomic::{AtomicU64, Ordering};

use axiom_drivers::hw::{Clock, Registers};

use crate::cpu::{facts, rdtsc};
use crate::legacy::pit;
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

/// Nanoseconds since the TSC started (boot).
#[inline]
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
    facts::get().tsc_khz
}

fn from_cpuid_16() -> Option<u64> {
    facts::get().base_mhz.map(|mhz| mhz as u64 * 1000)
}

/// One 10 ms measurement with PIT channel 2, or None if the PIT does not count.
fn pit_once() -> Option<u64> {
    const MS: u64 = 10;
    pit::start_one_shot((pit::HZ * MS / 1000) as u16);
    let start = rdtsc();
    let mut spins = 0u64;
    while !pit::expired() {
        spins += 1;
        if spins > 50_000_000 {
            return None;
        }
    }
    let cycles = rdtsc() - start;
    Some(cycles / MS)
}

/// PIT measurements taken at most; three of them must agree.
const PIT_RUNS: usize = 9;

fn from_pit() -> Option<u64> {
    let mut runs = [0u64; PIT_RUNS];
    for taken in 0..PIT_RUNS {
        runs[taken] = pit_once()?;
        // Stop as soon as three runs agree (the usual case on a quiet machine).
        if taken >= 2 {
            if let Some(khz) = agreeing_three(&mut runs[..=taken]) {
                return Some(khz);
            }
        }
    }
    None
}

/// The median of the three closest measurements, if they lie within 2% of
/// each other (and are plausible), else `None`: a run stretched because the
/// CPU was taken away mid-measurement (a loaded emulator host) is outvoted
/// instead of failing the calibration, and a PIT that never agrees with
/// itself is not trusted.
fn agreeing_three(runs: &mut [u64]) -> Option<u64> {
    runs.sort_unstable();
    runs.windows(3)
        .filter(|w| w[1] > 1000 && w[2] - w[0] <= w[1] / 50)
        .min_by_key(|w| w[2] - w[0])
        .map(|w| w[1])
}

/// HPET registers (32-bit accesses): the counter period in femtoseconds is
/// the high half of the capabilities, ENABLE_CNF is bit 0 of the
/// configuration, and the main counter's low half is read (10 ms spans no
/// 32-bit wrap at any HPET rate).
const HPET_PERIOD: usize = 0x04;
const HPET_CONFIG: usize = 0x10;
const HPET_COUNTER_LOW: usize = 0xF0;

fn from_hpet(base: u64) -> Option<u64> {
    let regs = mem::map_mmio(base, 1024).ok()?;
    let period_fs = regs.read32(HPET_PERIOD) as u64;
    if period_fs == 0 || period_fs > 100_000_000 {
        return None;
    }
    // Start the main counter.
    regs.write32(HPET_CONFIG, regs.read32(HPET_CONFIG) | 1);
    let ticks = (10_000_000_000_000 / period_fs) as u32; // 10 ms
    let mut runs = [0u64; 3];
    for run in runs.iter_mut() {
        let c0 = regs.read32(HPET_COUNTER_LOW);
        let t0 = rdtsc();
        let mut spins = 0u64;
        let c1 = loop {
            let c = regs.read32(HPET_COUNTER_LOW);
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

/// Cycles to nanoseconds for a counter running at `khz` kHz.
pub fn cycles_to_ns(cycles: u64, khz: u64) -> u64 {
    if khz == 0 {
        return 0;
    }
    ((cycles as u128 * 1_000_000) / khz as u128) as u64
}

/// The calibrated TSC as the drivers' clock.
#[derive(Clone, Copy, Debug)]
pub struct TscClock;

impl Clock for TscClock {
    fn now_ns(&self) -> u64 {
        now_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_runs_need_three_that_agree() {
        assert_eq!(agreeing_three(&mut [3_000_000, 3_010_000, 2_995_000]), Some(3_000_000));
        // One run stretched by a descheduled CPU is outvoted.
        assert_eq!(agreeing_three(&mut [3_000_000, 4_700_000, 3_010_000, 2_995_000]), Some(3_000_000));
        // No three within 2%: not trusted.
        assert_eq!(agreeing_three(&mut [3_000_000, 3_200_000, 3_400_000, 3_600_000]), None);
        assert_eq!(agreeing_three(&mut [3_000_000, 3_000_000]), None);
        // Implausibly small counts are refused.
        assert_eq!(agreeing_three(&mut [500, 500, 500]), None);
        // The tightest cluster wins.
        assert_eq!(agreeing_three(&mut [2_000_000, 2_030_000, 2_039_000, 3_000_000, 3_001_000, 3_002_000]), Some(3_001_000));
    }

    #[test]
    fn cycle_conversion() {
        assert_eq!(cycles_to_ns(3000, 3_000_000), 1000);
        assert_eq!(cycles_to_ns(1, 1_000), 1_000);
        assert_eq!(cycles_to_ns(5, 0), 0);
    }
}
