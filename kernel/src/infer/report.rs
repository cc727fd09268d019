//! Telemetry after an answer: per-core timings (`@layer` or `@core_token`),
//! the I/O core's `@io`, and `@summary`. Printed after generation so that
//! serial output never sits inside the timed token path (except `@token`).

use alloc::vec::Vec;

use axiom_hw::time as tsc;

use super::args::Telemetry;
use super::io::IoStats;
use super::session::Team;
use super::team::{LayerRecord, PassRecord};
use crate::stats::Summary;
use crate::telemetry;

/// One compute core's records for one answer.
pub struct CoreReport {
    pub cpu: usize,
    pub layers: Vec<LayerRecord>,
    pub passes: Vec<PassRecord>,
}

fn us(cycles: u64) -> u64 {
    tsc::cycles_to_ns_now(cycles) / 1000
}

/// Sums of a set of layer records (cycles).
#[derive(Clone, Copy, Default)]
struct Totals {
    stream_wait: u64,
    attn: u64,
    ffn: u64,
    barrier: u64,
}

impl Totals {
    fn add(&mut self, r: &LayerRecord) {
        self.stream_wait += r.stream_wait;
        self.attn += r.attn;
        self.ffn += r.ffn;
        self.barrier += r.barrier;
    }

    fn absorb(&mut self, t: &Totals) {
        self.stream_wait += t.stream_wait;
        self.attn += t.attn;
        self.ffn += t.ffn;
        self.barrier += t.barrier;
    }

    fn all(&self) -> u64 {
        self.stream_wait + self.attn + self.ffn + self.barrier
    }

    fn write(&self, o: &mut crate::json::JsonObject) {
        o.u64("stream_wait_us", us(self.stream_wait)).u64("attn_us", us(self.attn)).u64("ffn_us", us(self.ffn));
        o.u64("barrier_us", us(self.barrier)).u64("busy_us", us(self.attn + self.ffn));
    }
}

pub fn per_core(mode: Telemetry, cores: &[CoreReport], n_layers: usize) {
    match mode {
        Telemetry::Off => {}
        Telemetry::Layer => {
            for (core, c) in cores.iter().enumerate() {
                for r in &c.layers {
                    telemetry::emit("layer", |o| {
                        o.u64("tok", r.pass as u64).u64("layer", r.layer as u64).u64("core", core as u64).u64("cpu", c.cpu as u64);
                        let mut t = Totals::default();
                        t.add(r);
                        t.write(o);
                    });
                }
            }
        }
        Telemetry::Token => {
            for (core, c) in cores.iter().enumerate() {
                for (pass, chunk) in c.layers.chunks(n_layers).enumerate() {
                    let mut t = Totals::default();
                    chunk.iter().for_each(|r| t.add(r));
                    let outside = c.passes.get(pass).copied().unwrap_or_default();
                    telemetry::emit("core_token", |o| {
                        o.u64("tok", pass as u64).u64("core", core as u64).u64("cpu", c.cpu as u64);
                        t.write(o);
                        o.u64("embed_output_us", us(outside.compute)).u64("outside_barrier_us", us(outside.barrier));
                    });
                }
            }
        }
    }
}

pub fn io(s: &IoStats, elapsed_ns: u64) {
    let secs = elapsed_ns.max(1) as f64 / 1e9;
    telemetry::emit("io", |o| {
        o.u64("bytes", s.bytes).u64("reads", s.reads).u64("layers_streamed", s.reads).u64("verified", s.verified);
        o.f64("mib_per_s", s.bytes as f64 / (1 << 20) as f64 / secs, 1);
        o.f64("busy", s.busy_ns as f64 / elapsed_ns.max(1) as f64, 3).f64("crc_ms", s.crc_ns as f64 / 1e6, 1);
        o.f64("elapsed_ms", elapsed_ns as f64 / 1e6, 1);
    });
}

/// The leader's clock marks for one answer.
pub struct Timing<'a> {
    pub start_ns: u64,
    pub prefill_ns: Option<u64>,
    /// When each generated token was sampled.
    pub token_ns: &'a [u64],
    pub prompt_tokens: usize,
}

/// Most bytes of the answer repeated in `@summary` (the event has a size limit).
const SUMMARY_TEXT: usize = 1536;

pub fn summary(team: &Team, t: &Timing, cores: &[CoreReport], generated: usize, stop: &str, text: &str) {
    let ms = |ns: u64| ns as f64 / 1e6;
    let prefill = t.prefill_ns.map(|p| p - t.start_ns).unwrap_or(0);
    let first = t.token_ns.first().copied();
    let decode_steps = t.token_ns.len().saturating_sub(1);
    let decode_ns = match (first, t.token_ns.last()) {
        (Some(a), Some(&b)) => b - a,
        _ => 0,
    };
    let mut intervals: Vec<u64> = t.token_ns.windows(2).map(|w| w[1] - w[0]).collect();
    let spread = if intervals.is_empty() { None } else { Some(Summary::of(&mut intervals)) };
    // Layer-time split over the decode passes (prefill passes are batched
    // and would dominate a short run).
    let prefill_passes = t.prompt_tokens.div_ceil(team.state_cfg.max_batch.min(t.prompt_tokens).max(1));
    let mut all = Totals::default();
    let mut per_core: Vec<(usize, Totals, usize)> = Vec::with_capacity(cores.len());
    for c in cores {
        let mut mine = Totals::default();
        let mut passes = 0;
        for r in c.layers.iter().filter(|r| r.pass as usize >= prefill_passes) {
            mine.add(r);
            if r.layer == 0 {
                passes += 1;
            }
        }
        all.absorb(&mine);
        per_core.push((c.cpu, mine, passes));
    }
    let frac = |x: u64| if all.all() == 0 { 0.0 } else { x as f64 / all.all() as f64 };
    let mut cut = text.len().min(SUMMARY_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    telemetry::emit("summary", |o| {
        o.str("mode", team.mode.name()).u64("compute_cores", team.compute.len() as u64);
        o.bool("io_core", team.io_cpu.is_some()).bool("io_core_idle", team.io_core_idle);
        o.str("layers", if team.shared.packed.is_some() { "repacked" } else { "ggml" });
        o.u64("prompt_tokens", t.prompt_tokens as u64).u64("generated", generated as u64).str("stop", stop);
        o.f64("ttft_ms", first.map(|f| ms(f - t.start_ns)).unwrap_or(0.0), 1);
        o.f64("prefill_ms", ms(prefill), 1);
        o.f64("prefill_tok_s", if prefill > 0 { t.prompt_tokens as f64 / (prefill as f64 / 1e9) } else { 0.0 }, 3);
        o.f64("decode_tok_s", if decode_ns > 0 { decode_steps as f64 / (decode_ns as f64 / 1e9) } else { 0.0 }, 3);
        if let Some(s) = &spread {
            o.f64("decode_ms_median", ms(s.median), 2).f64("decode_ms_min", ms(s.min), 2).f64("decode_ms_max", ms(s.max), 2);
        }
        o.f64("stream_wait_frac", frac(all.stream_wait), 4).f64("attn_frac", frac(all.attn), 4);
        o.f64("ffn_frac", frac(all.ffn), 4).f64("barrier_frac", frac(all.barrier), 4);
        o.array("per_core_ms_per_token", |a| {
            for (cpu, tot, passes) in &per_core {
                let per = |c: u64| us(c) as f64 / 1e3 / (*passes).max(1) as f64;
                a.object(|x| {
                    x.u64("cpu", *cpu as u64).f64("stream_wait", per(tot.stream_wait), 2).f64("attn", per(tot.attn), 2);
                    x.f64("ffn", per(tot.ffn), 2).f64("barrier", per(tot.barrier), 2);
                });
            }
        });
        o.str("text", &text[..cut]);
    });
}
