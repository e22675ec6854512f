//! A lock-free latency histogram with fixed buckets from 100 µs to 10 s,
//! exported as a Prometheus histogram and readable as counts, so that a
//! percentile over a time window can be computed from two readings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds of the buckets, in seconds (the last bucket, +Inf, follows).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The same bounds in nanoseconds, compared on the hot path.
const BOUNDS_NANOS: [u64; LATENCY_BUCKETS.len()] = {
    let mut out = [0; LATENCY_BUCKETS.len()];
    let mut i = 0;
    while i < out.len() {
        // Rounded: 0.00025 × 1e9 is not exactly 250,000 in binary.
        out[i] = (LATENCY_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
};

/// Buckets including +Inf.
const SLOTS: usize = LATENCY_BUCKETS.len() + 1;

/// A histogram of durations. Cloning shares it; observing takes no lock.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Per-bucket (not cumulative) counts.
    buckets: [AtomicU64; SLOTS],
    sum_nanos: AtomicU64,
}

/// A reading of a histogram (or of several, added up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyCounts {
    /// Per-bucket counts, the bounds of [`LATENCY_BUCKETS`] then +Inf.
    pub buckets: [u64; SLOTS],
    /// Sum of the observed durations, in nanoseconds.
    pub sum_nanos: u64,
}

impl LatencyHistogram {
    /// Records one duration.
    #[inline]
    pub fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let slot = BOUNDS_NANOS
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(SLOTS - 1);
        self.inner.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn counts(&self) -> LatencyCounts {
        let mut out = LatencyCounts {
            sum_nanos: self.inner.sum_nanos.load(Ordering::Relaxed),
            ..LatencyCounts::default()
        };
        for (o, b) in out.buckets.iter_mut().zip(&self.inner.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
        out
    }
}

impl LatencyCounts {
    /// How many durations were observed.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &LatencyCounts) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_nanos += other.sum_nanos;
    }

    /// What was observed since `earlier` (a reading of the same histograms).
    pub fn since(&self, earlier: &LatencyCounts) -> LatencyCounts {
        let mut out = LatencyCounts {
            sum_nanos: self.sum_nanos.saturating_sub(earlier.sum_nanos),
            ..LatencyCounts::default()
        };
        for ((o, a), b) in out
            .buckets
            .iter_mut()
            .zip(&self.buckets)
            .zip(&earlier.buckets)
        {
            *o = a.saturating_sub(*b);
        }
        out
    }

    /// The upper bound of the bucket holding quantile `q` (0–1), in
    /// seconds: `None` when nothing was observed, infinity when it lies
    /// beyond the last bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        Some(f64::INFINITY)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let c = self.counts();
        let mut buckets = [(0.0, 0u64); SLOTS];
        for (i, (b, n)) in buckets.iter_mut().zip(c.buckets).enumerate() {
            *b = (LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), n);
        }
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            c.sum_nanos as f64 / 1e9,
            c.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_buckets_and_quantiles_read_back() {
        let h = LatencyHistogram::default();
        for _ in 0..98 {
            h.observe(Duration::from_micros(80));
        }
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let c = h.counts();
        assert_eq!(c.count(), 100);
        assert_eq!(c.buckets[0], 98);
        assert_eq!(c.buckets[5], 1, "3 ms is under the 5 ms bound");
        assert_eq!(c.buckets[16], 1, "20 s is past the last bound");
        assert_eq!(c.quantile(0.5), Some(0.0001));
        assert_eq!(c.quantile(0.99), Some(0.005));
        assert_eq!(c.quantile(1.0), Some(f64::INFINITY));
        let later = {
            h.observe(Duration::from_millis(30));
            h.counts()
        };
        let window = later.since(&c);
        assert_eq!(window.count(), 1);
        assert_eq!(window.quantile(0.99), Some(0.05));
        assert_eq!(LatencyCounts::default().quantile(0.99), None);
    }

    #[test]
    fn the_nanosecond_bounds_are_the_bounds() {
        assert_eq!(BOUNDS_NANOS[0], 100_000);
        assert_eq!(BOUNDS_NANOS[1], 250_000);
        assert_eq!(BOUNDS_NANOS[15], 10_000_000_000);
        for (n, s) in BOUNDS_NANOS.iter().zip(LATENCY_BUCKETS) {
            assert_eq!(*n as f64 / 1e9, s);
        }
    }

    #[test]
    fn exported_as_a_cumulative_histogram() {
        let mut registry = prometheus_client::registry::Registry::default();
        let h = LatencyHistogram::default();
        registry.register("lat", "latency", h.clone());
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(2));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("# TYPE lat histogram"), "{text}");
        assert!(text.contains("lat_count 2"), "{text}");
        assert!(text.contains("lat_bucket{le=\"0.0001\"} 1"), "{text}");
        assert!(text.contains("lat_bucket{le=\"0.0025\"} 2"), "{text}");
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 2"), "{text}");
    }
}
