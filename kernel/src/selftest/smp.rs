//! `selftest=smp [rounds=R]`: every online CPU runs R rounds of "a small,
//! uneven unit of work, add 1 to the round's counter, meet at the barrier,
//! check the counter is exactly right". Then R rounds of barrier alone
//! measure the round trip. Reports `@barrier` per core (wait min / median /
//! p99 / max in ns) and `@summary`.
//!
//! Two counters alternate by round parity: a core can only add to round r+2's
//! counter after every core passed round r+1's barrier, i.e. after every
//! core checked round r.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use axiom_hw::cpu::{percpu as hwcpu, rdtsc};
use axiom_hw::time as tsc;
use crossbeam_utils::CachePadded;
use spin::Mutex;

use axiom_proto::cmdline::keys;
use axiom_proto::telemetry::events::{Barrier, SmpSummary, Spread};

use crate::boot::Context;
use crate::smp::{self, launch};
use crate::stats::Summary;
use crate::{println, telemetry};

struct CoreResult {
    waits: Vec<u64>,
    parks: u64,
    errors: u64,
    first_error: Option<(u64, u64, u64)>,
    round_trips: Vec<u64>,
}

/// A few hundred cycles of integer work whose length depends on the round
/// and the core, so the arrival order changes from round to round.
fn work(round: u64, core: usize) -> u64 {
    let mut x = round ^ (core as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..(32 + (round as usize * 7 + core * 13) % 96) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    x
}

pub fn run(ctx: &Context) -> Result<(), String> {
    // At least 1: the key table says so.
    let rounds = ctx.cmd.get(&keys::ROUNDS);
    let team = smp::online_indices();
    let n = team.len();
    let cfg = launch::config();
    println!(
        "selftest smp: {n} CPUs, {rounds} rounds, spin {} us then {}",
        tsc::cycles_to_ns_now(cfg.spin_cycles) / 1000,
        cfg.park.name()
    );
    let counters = [CachePadded::new(AtomicU64::new(0)), CachePadded::new(AtomicU64::new(0))];
    let results: Arc<Mutex<Vec<Option<CoreResult>>>> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let start = rdtsc();

    let results_in = results.clone();
    smp::run_on(&team, move |w| {
        let results = &results_in;
        let me = w.index();
        let count = w.count() as u64;
        let mut waits = Vec::with_capacity(rounds as usize);
        let mut errors = 0;
        let mut first_error = None;
        let mut sink = 0u64;
        for r in 0..rounds {
            sink ^= work(r, me);
            counters[(r % 2) as usize].fetch_add(1, Ordering::Relaxed);
            let out = w.barrier();
            waits.push(out.cycles);
            let expect = (r / 2 + 1) * count;
            let got = counters[(r % 2) as usize].load(Ordering::Relaxed);
            if got != expect {
                errors += 1;
                first_error.get_or_insert((r, expect, got));
            }
        }
        core::hint::black_box(sink);
        // Round trip: barrier alone, timed between consecutive releases.
        let mut round_trips = Vec::new();
        if me == 0 {
            round_trips.reserve(rounds as usize);
        }
        w.barrier();
        let mut last = rdtsc();
        for _ in 0..rounds {
            w.barrier();
            if me == 0 {
                let now = rdtsc();
                round_trips.push(now - last);
                last = now;
            }
        }
        results.lock()[me] = Some(CoreResult { waits, parks: w.parks, errors, first_error, round_trips });
    });

    let elapsed_ns = tsc::cycles_to_ns_now(rdtsc() - start);
    let mut results = core::mem::take(&mut *results.lock());
    let mut total_errors = 0;
    let mut first_error = None;
    let mut round_trip = Summary::default();
    for (i, slot) in results.iter_mut().enumerate() {
        let r = slot.as_mut().ok_or_else(|| format!("CPU {} returned no result", team[i]))?;
        let cpu = hwcpu::get(team[i]).expect("team CPUs are registered");
        let wait = Summary::of(&mut r.waits).map(tsc::cycles_to_ns_now);
        total_errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error.map(|e| (team[i], e));
        }
        if i == 0 {
            round_trip = Summary::of(&mut r.round_trips).map(tsc::cycles_to_ns_now);
        }
        telemetry::emit(&Barrier {
            cpu: team[i] as u64,
            apic_id: cpu.apic_id() as u64,
            role: smp::role(team[i]).name().into(),
            rounds,
            wait_ns: spread(&wait),
            parks: r.parks,
            counter_errors: r.errors,
        });
    }
    telemetry::emit(&SmpSummary {
        test: "smp".into(),
        cpus: n as u64,
        rounds,
        counter_ok: total_errors == 0,
        counter_errors: total_errors,
        round_trip_ns: spread(&round_trip),
        spin_us: tsc::cycles_to_ns_now(cfg.spin_cycles) / 1000,
        park: cfg.park.name().into(),
        elapsed_ms: elapsed_ns / 1_000_000,
    });
    match first_error {
        None => Ok(()),
        Some((cpu, (round, expect, got))) => Err(format!(
            "barrier counter wrong {total_errors} times; first on CPU {cpu} in round {round}: expected {expect}, found {got}"
        )),
    }
}

fn spread(s: &Summary) -> Spread {
    Spread { min: s.min, median: s.median, p99: s.p99, max: s.max, mean: s.mean }
}
