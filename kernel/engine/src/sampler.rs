//! Choosing the next token from the logits: greedy, or random with
//! temperature, top-k, top-p and a repetition penalty.
//!
//! Deterministic everywhere: the RNG is pure integer arithmetic (PCG32), the
//! softmax uses `libm`, and candidates are ordered by a total order (probability,
//! then token id), so a seed gives the same tokens in the kernel and on the
//! host. The sampler allocates its buffers once; sampling allocates nothing.
//!
//! Order of operations (as Hugging Face's and llama2.c's samplers): repetition
//! penalty, then temperature (0 = greedy), then top-k, then top-p, then a draw.

use alloc::vec::Vec;

/// Sampling parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 = greedy (argmax); otherwise logits are divided by it.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `top_p`; 1.0 = all.
    pub top_p: f32,
    /// llama.cpp's repetition penalty: a recent token's positive logit is
    /// divided by it, a negative one multiplied; 1.0 = off.
    pub repetition_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, repeat_last_n: 64, seed: 0 }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        Self::default()
    }
}

/// PCG32 (XSH-RR), integer only: the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    inc: u64,
}

impl Rng {
    const MUL: u64 = 6364136223846793005;

    pub fn new(seed: u64) -> Self {
        let mut rng = Rng { state: 0, inc: (0xda3e_39cb_94b9_5bdb << 1) | 1 };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MUL).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in [0, 1) with 24 bits: exact in f32.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }
}

/// A token with its (penalized, tempered) logit, then probability.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u32,
    p: f32,
}

/// Picks tokens; remembers recent ones for the repetition penalty.
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
    n_vocab: usize,
    candidates: Vec<Candidate>,
    /// Ring of the last `repeat_last_n` accepted tokens.
    recent: Vec<u32>,
    recent_next: usize,
    recent_len: usize,
}

impl Sampler {
    /// Allocates the candidate and history buffers once, for `n_vocab` tokens.
    pub fn new(cfg: SamplerConfig, n_vocab: usize) -> Self {
        Sampler {
            cfg,
            rng: Rng::new(cfg.seed),
            n_vocab,
            candidates: Vec::with_capacity(n_vocab),
            recent: alloc::vec![0; cfg.repeat_last_n],
            recent_next: 0,
            recent_len: 0,
        }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Forgets the history and restarts the RNG from the seed.
    pub fn reset(&mut self) {
        self.rng = Rng::new(self.cfg.seed);
        self.recent_len = 0;
        self.recent_next = 0;
    }

    /// Records a token of the context (prompt or generated) for the penalty.
    pub fn accept(&mut self, token: u32) {
        if self.recent.is_empty() {
            return;
        }
        self.recent[self.recent_next] = token;
        self.recent_next = (self.recent_next + 1) % self.recent.len();
        self.recent_len = (self.recent_len + 1).min(self.recent.len());
    }

    /// The next token for `logits` (one row of the output head). The logits
    /// are modified by the repetition penalty.
    pub fn sample(&mut self, logits: &mut [f32]) -> u32 {
        debug_assert_eq!(logits.len(), self.n_vocab);
        self.apply_repetition_penalty(logits);
        let cfg = self.cfg;
        if cfg.temperature <= 0.0 || cfg.top_k == 1 {
            return argmax(logits);
        }
        let inv_t = 1.0 / cfg.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);

        // Softmax over the whole vocabulary (tempered).
        self.candidates.clear();
        let mut sum = 0.0f32;
        for (id, &l) in logits.iter().enumerate() {
            let p = libm::expf((l - max) * inv_t);
            sum += p;
            self.candidates.push(Candidate { id: id as u32, p });
        }
        let inv_sum = 1.0 / sum;
        for c in &mut self.candidates {
            c.p *= inv_sum;
        }

        let mut n = self.candidates.len();
        let by_prob = |a: &Candidate, b: &Candidate| b.p.total_cmp(&a.p).then(a.id.cmp(&b.id));
        if cfg.top_k > 0 && cfg.top_k < n {
            self.candidates.select_nth_unstable_by(cfg.top_k - 1, by_prob);
            n = cfg.top_k;
            self.candidates.truncate(n);
        }
        if cfg.top_p < 1.0 {
            // Tokens below (1 - top_p) / (n - 1) cannot be in the nucleus
            // (llama2.c's cut): drop them before sorting.
            if n > 1 {
                let cutoff = (1.0 - cfg.top_p) / (n - 1) as f32;
                self.candidates.retain(|c| c.p >= cutoff);
            }
            self.candidates.sort_unstable_by(by_prob);
            let mut cum = 0.0f32;
            let mut keep = self.candidates.len();
            for (i, c) in self.candidates.iter().enumerate() {
                cum += c.p;
                if cum >= cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            self.candidates.truncate(keep.max(1));
        } else if cfg.top_k > 0 {
            self.candidates.sort_unstable_by(by_prob);
        }
        if self.candidates.is_empty() {
            return argmax(logits);
        }

        let total: f32 = self.candidates.iter().map(|c| c.p).sum();
        let r = self.rng.next_f32() * total;
        let mut cum = 0.0f32;
        for c in &self.candidates {
            cum += c.p;
            if r < cum {
                return c.id;
            }
        }
        self.candidates[self.candidates.len() - 1].id
    }

    fn apply_repetition_penalty(&self, logits: &mut [f32]) {
        let penalty = self.cfg.repetition_penalty;
        if penalty == 1.0 || self.recent_len == 0 {
            return;
        }
        // Each distinct recent token is penalized once (as llama.cpp).
        let recent = &self.recent[..self.recent_len];
        for (i, &t) in recent.iter().enumerate() {
            if recent[..i].contains(&t) {
                continue;
            }
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
            }
        }
    }
}

/// Index of the largest logit (the first one on ties; NaN never wins).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn pcg32_matches_reference_sequence() {
        // PCG32 reference (pcg32_srandom(42, 54)) first outputs.
        let mut rng = Rng { state: 0, inc: (54u64 << 1) | 1 };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(42);
        rng.next_u32();
        let got: Vec<u32> = (0..6).map(|_| rng.next_u32()).collect();
        assert_eq!(got, vec![0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
    }

    #[test]
    fn greedy_picks_argmax_first_on_ties() {
        let mut s = Sampler::new(SamplerConfig::greedy(), 5);
        assert_eq!(s.sample(&mut [0.1, 3.0, -1.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0, 0.5]), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_temperature_spreads() {
        let cfg = SamplerConfig { temperature: 1.0, seed: 7, ..Default::default() };
        let logits: Vec<f32> = (0..100).map(|i| (i % 7) as f32 * 0.3).collect();
        let run = |cfg| {
            let mut s = Sampler::new(cfg, 100);
            (0..50).map(|_| s.sample(&mut logits.clone())).collect::<Vec<_>>()
        };
        assert_eq!(run(cfg), run(cfg));
        let distinct = {
            let mut v = run(cfg);
            v.sort();
            v.dedup();
            v.len()
        };
        assert!(distinct > 5);
        assert_ne!(run(cfg), run(SamplerConfig { seed: 8, ..cfg }));
    }

    #[test]
    fn top_k_and_top_p_restrict_the_draw() {
        let logits: Vec<f32> = vec![5.0, 4.9, 4.8, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_k: 2, seed: 1, ..Default::default() }, 8);
        for _ in 0..200 {
            assert!(s.sample(&mut logits.clone()) < 2);
        }
        let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_p: 0.9, seed: 1, ..Default::default() }, 8);
        let mut seen = [0usize; 8];
        for _ in 0..500 {
            seen[s.sample(&mut logits.clone()) as usize] += 1;
        }
        assert!(seen[..3].iter().all(|&c| c > 0));
        assert!(seen[3..].iter().all(|&c| c == 0), "{seen:?}");
        // top_p tiny: the single most likely token.
        let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_p: 0.01, seed: 1, ..Default::default() }, 8);
        assert!((0..50).all(|_| s.sample(&mut logits.clone()) == 0));
    }

    #[test]
    fn repetition_penalty_discourages_recent_tokens() {
        let mut s = Sampler::new(SamplerConfig { repetition_penalty: 2.0, ..Default::default() }, 3);
        let mut logits = vec![2.0, 1.5, -1.0];
        s.accept(0);
        s.accept(0);
        s.accept(2);
        assert_eq!(s.sample(&mut logits), 1);
        assert_eq!(logits, vec![1.0, 1.5, -2.0]);
    }

    #[test]
    fn distribution_follows_probabilities() {
        // logits ln(1), ln(3): token 1 three times as likely.
        let logits = [0.0f32, libm::logf(3.0)];
        let mut s = Sampler::new(SamplerConfig { temperature: 1.0, seed: 3, ..Default::default() }, 2);
        let n = 20000;
        let ones = (0..n).filter(|_| s.sample(&mut logits.clone()) == 1).count();
        let frac = ones as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.02, "{frac}");
    }
}
