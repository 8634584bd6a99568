//! Pure statistics over measured samples: percentiles and summaries. Nearest-rank
//! percentiles on the sorted samples, so a reported p99 is a latency that really occurred.

use serde::Serialize;

/// Summary of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentile (`q` in 0..=100) of sorted samples; 0 for no samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples_ms: &[f64]) -> Summary {
    let mut s: Vec<f64> = samples_ms
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return Summary::default();
    }
    Summary {
        n: s.len(),
        mean_ms: s.iter().sum::<f64>() / s.len() as f64,
        p50_ms: percentile(&s, 50.0),
        p95_ms: percentile(&s, 95.0),
        p99_ms: percentile(&s, 99.0),
        max_ms: s[s.len() - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        let s = summarize(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.n, s.p50_ms, s.max_ms, s.mean_ms), (3, 2.0, 3.0, 2.0));
    }
}
