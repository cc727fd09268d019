//! Telemetry after an answer: per-core timings (`@layer` or `@core_token`),
//! the I/O core's `@io`, and `@summary`. Printed after generation so that
//! serial output never sits inside the timed token path (except `@token`).

use alloc::vec::Vec;

use axiom_hw::time as tsc;

use super::args::Telemetry;
use super::io::IoStats;
use super::session::Team;
use super::team::{LayerRecord, PassRecord};
use crate::stats::Summary as Spread;
use crate::telemetry;
use crate::telemetry::events::{CoreShare, CoreToken, Io, Layer, Summary};

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

    /// A `@layer` event of these sums.
    fn layer(&self, tok: u64, layer: u64, core: u64, cpu: u64) -> Layer {
        let (stream_wait_us, attn_us, ffn_us, barrier_us, busy_us) = self.micros();
        Layer { tok, layer, core, cpu, stream_wait_us, attn_us, ffn_us, barrier_us, busy_us }
    }

    /// Stream wait, attention, FFN, barrier and busy (attention + FFN) in µs.
    fn micros(&self) -> (u64, u64, u64, u64, u64) {
        (us(self.stream_wait), us(self.attn), us(self.ffn), us(self.barrier), us(self.attn + self.ffn))
    }
}

pub fn per_core(mode: Telemetry, cores: &[CoreReport], n_layers: usize) {
    match mode {
        Telemetry::Off => {}
        Telemetry::Layer => {
            for (core, c) in cores.iter().enumerate() {
                for r in &c.layers {
                    let mut t = Totals::default();
                    t.add(r);
                    telemetry::emit(&t.layer(r.pass as u64, r.layer as u64, core as u64, c.cpu as u64));
                }
            }
        }
        Telemetry::Token => {
            for (core, c) in cores.iter().enumerate() {
                for (pass, chunk) in c.layers.chunks(n_layers).enumerate() {
                    let mut t = Totals::default();
                    chunk.iter().for_each(|r| t.add(r));
                    let outside = c.passes.get(pass).copied().unwrap_or_default();
                    let (stream_wait_us, attn_us, ffn_us, barrier_us, busy_us) = t.micros();
                    telemetry::emit(&CoreToken {
                        tok: pass as u64,
                        core: core as u64,
                        cpu: c.cpu as u64,
                        stream_wait_us,
                        attn_us,
                        ffn_us,
                        barrier_us,
                        busy_us,
                        embed_output_us: us(outside.compute),
                        outside_barrier_us: us(outside.barrier),
                    });
                }
            }
        }
    }
}

pub fn io(s: &IoStats, elapsed_ns: u64) {
    let secs = elapsed_ns.max(1) as f64 / 1e9;
    telemetry::emit(&Io {
        bytes: s.bytes,
        reads: s.reads,
        layers_streamed: s.reads,
        verified: s.verified,
        mib_per_s: s.bytes as f64 / (1 << 20) as f64 / secs,
        busy: s.busy_ns as f64 / elapsed_ns.max(1) as f64,
        crc_ms: s.crc_ns as f64 / 1e6,
        parks: s.parks,
        elapsed_ms: elapsed_ns as f64 / 1e6,
    });
}

/// The leader's clock marks for one answer.
pub struct Timing<'a> {
    pub start_ns: u64,
    pub prefill_ns: Option<u64>,
    /// When each generated token was sampled.
    pub token_ns: &'a [u64],
    pub prompt_tokens: usize,
    /// Forward passes of the answer.
    pub passes: usize,
    /// The weight reads of the answer (streaming) and its length.
    pub io: Option<(IoStats, u64)>,
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
    let spread = if intervals.is_empty() { None } else { Some(Spread::of(&mut intervals)) };
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
    let shares: Vec<CoreShare> = per_core
        .iter()
        .map(|(cpu, tot, passes)| {
            let per = |c: u64| us(c) as f64 / 1e3 / (*passes).max(1) as f64;
            CoreShare { cpu: *cpu as u64, stream_wait: per(tot.stream_wait), attn: per(tot.attn), ffn: per(tot.ffn), barrier: per(tot.barrier) }
        })
        .collect();
    telemetry::emit(&Summary {
        mode: team.mode.name().into(),
        compute_cores: team.compute.len() as u64,
        io_core: team.io_cpu.is_some(),
        io_core_idle: team.io_core_idle,
        layers: if team.shared.packed.is_some() { "repacked" } else { "ggml" }.into(),
        prompt_tokens: t.prompt_tokens as u64,
        generated: generated as u64,
        stop: stop.into(),
        ttft_ms: first.map(|f| ms(f - t.start_ns)).unwrap_or(0.0),
        prefill_ms: ms(prefill),
        prefill_tok_s: if prefill > 0 { t.prompt_tokens as f64 / (prefill as f64 / 1e9) } else { 0.0 },
        decode_tok_s: if decode_ns > 0 { decode_steps as f64 / (decode_ns as f64 / 1e9) } else { 0.0 },
        decode_ms_median: spread.as_ref().map(|s| ms(s.median)),
        decode_ms_min: spread.as_ref().map(|s| ms(s.min)),
        decode_ms_max: spread.as_ref().map(|s| ms(s.max)),
        stream_wait_frac: frac(all.stream_wait),
        attn_frac: frac(all.attn),
        ffn_frac: frac(all.ffn),
        barrier_frac: frac(all.barrier),
        bytes_per_token: t.io.map(|(io, _)| io.bytes / t.passes.max(1) as u64).unwrap_or(0),
        io_mib_per_s: t.io.map(|(io, ns)| io.bytes as f64 / (1 << 20) as f64 / (ns.max(1) as f64 / 1e9)).unwrap_or(0.0),
        per_core_ms_per_token: shares.as_slice().into(),
        text: text[..cut].into(),
    });
}
