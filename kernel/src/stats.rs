//! Order statistics of timing samples (nearest-rank percentiles).

/// min / median / p99 / max / mean of a sample set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    pub count: usize,
    pub min: u64,
    pub median: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

impl Summary {
    /// Summarise `samples` (sorted in place). Empty input gives all zeros.
    pub fn of(samples: &mut [u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let sum: u128 = samples.iter().map(|&x| x as u128).sum();
        Summary {
            count: n,
            min: samples[0],
            median: percentile_sorted(samples, 50),
            p99: percentile_sorted(samples, 99),
            max: samples[n - 1],
            mean: (sum / n as u128) as u64,
        }
    }

    /// The same summary with every value mapped (e.g. cycles to ns).
    pub fn map(&self, f: impl Fn(u64) -> u64) -> Summary {
        Summary {
            count: self.count,
            min: f(self.min),
            median: f(self.median),
            p99: f(self.p99),
            max: f(self.max),
            mean: f(self.mean),
        }
    }
}

/// Nearest-rank percentile `p` (0..=100) of sorted, non-empty `sorted`.
pub fn percentile_sorted(sorted: &[u64], p: u32) -> u64 {
    let n = sorted.len();
    let rank = (p as usize * n).div_ceil(100); // ceil(p/100 * n)
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn summary_of_known_samples() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&mut v);
        assert_eq!(s, Summary { count: 100, min: 1, median: 50, p99: 99, max: 100, mean: 50 });
        let mut one = [7u64];
        assert_eq!(Summary::of(&mut one).p99, 7);
        assert_eq!(Summary::of(&mut []).count, 0);
        let mut v: Vec<u64> = (0..1000).collect();
        assert_eq!(Summary::of(&mut v).p99, 989);
    }

    #[test]
    fn summary_maps_every_figure() {
        let s = Summary::of(&mut [2000, 4000]).map(|c| axiom_hw::time::cycles_to_ns(c, 2_000_000));
        assert_eq!((s.min, s.median, s.max, s.mean), (1000, 1000, 2000, 1500));
    }
}
