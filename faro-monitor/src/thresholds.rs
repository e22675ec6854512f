//! Thresholds on a run's figures, checked at each periodic collection: a
//! violation starts when a figure passes its limit and ends when it is back
//! within it (one transition each way, never one per sample).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::Snapshot;
use crate::latency::LatencyCounts;

/// Limits on what a snapshot shows; `None` checks nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Resident memory, in bytes.
    pub max_resident_bytes: Option<u64>,
    /// Events waiting or being handled by any one worker.
    pub max_queue_depth: Option<usize>,
    /// The 99th percentile of `faro_event_latency_seconds` over `window`.
    pub max_event_latency: Option<Duration>,
    /// Handler and worker errors per event handled, over `window`.
    pub max_error_rate: Option<f64>,
    /// How long an informer may stay out of the watching state (listing,
    /// backing off) before it counts as stalled.
    pub stall: Option<Duration>,
    /// The window of the latency percentile and the error rate.
    pub window: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_resident_bytes: None,
            max_queue_depth: None,
            max_event_latency: None,
            max_error_rate: None,
            stall: None,
            window: Duration::from_secs(60),
        }
    }
}

/// The thresholds' names, as in the `monitor:` block and the `threshold`
/// label.
pub const THRESHOLD_NAMES: [&str; 5] = [
    "max_resident_mb",
    "max_queue_depth",
    "max_event_latency_seconds",
    "max_error_rate",
    "stall_seconds",
];

impl Thresholds {
    /// The names of the thresholds that are set.
    pub fn names(&self) -> Vec<&'static str> {
        let set = [
            self.max_resident_bytes.is_some(),
            self.max_queue_depth.is_some(),
            self.max_event_latency.is_some(),
            self.max_error_rate.is_some(),
            self.stall.is_some(),
        ];
        THRESHOLD_NAMES
            .iter()
            .zip(set)
            .filter_map(|(n, s)| s.then_some(*n))
            .collect()
    }
}

/// A threshold passing or coming back: its name, the figure, the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub threshold: &'static str,
    pub started: bool,
    pub value: f64,
    pub limit: f64,
    /// What the figure is about (the worker, the informer), when one.
    pub subject: Option<String>,
}

/// One reading kept for the window.
struct Reading {
    at: Instant,
    latency: LatencyCounts,
    errors: u64,
    events: u64,
}

/// Checks snapshots against thresholds and remembers which are exceeded.
pub(crate) struct Watchdog {
    thresholds: Thresholds,
    history: VecDeque<Reading>,
    exceeded: BTreeMap<&'static str, f64>,
}

impl Watchdog {
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            history: VecDeque::new(),
            exceeded: BTreeMap::new(),
        }
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// The thresholds exceeded now, with their figures.
    pub fn exceeded(&self) -> BTreeMap<String, f64> {
        self.exceeded
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    }

    /// Checks `s`, taken at `now`; returns what started or ended.
    pub fn check(&mut self, now: Instant, s: &Snapshot) -> Vec<Transition> {
        let t = &self.thresholds;
        self.history.push_back(Reading {
            at: now,
            latency: s.event_latency.clone(),
            errors: s.errors,
            events: s.events_handled,
        });
        // Keep one reading at least `window` old as the window's start.
        while self.history.len() > 1
            && self
                .history
                .get(1)
                .is_some_and(|r| now.duration_since(r.at) >= t.window)
        {
            self.history.pop_front();
        }
        let (first, last) = match (self.history.front(), self.history.back()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Vec::new(),
        };
        // (name, figure, limit, subject); figure None: nothing to judge.
        let mut figures: Vec<(&'static str, Option<f64>, f64, Option<String>)> = Vec::new();
        if let Some(limit) = t.max_resident_bytes {
            figures.push((
                THRESHOLD_NAMES[0],
                Some(s.resident_bytes as f64 / 1_048_576.0),
                limit as f64 / 1_048_576.0,
                None,
            ));
        }
        if let Some(limit) = t.max_queue_depth {
            let deepest = s.queue_depths.iter().max_by_key(|(_, d)| **d);
            figures.push((
                THRESHOLD_NAMES[1],
                Some(deepest.map_or(0.0, |(_, d)| *d as f64)),
                limit as f64,
                deepest.map(|(w, _)| w.clone()),
            ));
        }
        if let Some(limit) = t.max_event_latency {
            let p99 = last.latency.since(&first.latency).quantile(0.99);
            figures.push((THRESHOLD_NAMES[2], p99, limit.as_secs_f64(), None));
        }
        if let Some(limit) = t.max_error_rate {
            let errors = last.errors.saturating_sub(first.errors);
            let events = last.events.saturating_sub(first.events);
            let rate = match (errors, events) {
                (0, _) => Some(0.0),
                (_, 0) => Some(f64::INFINITY),
                (e, n) => Some(e as f64 / n as f64),
            };
            figures.push((THRESHOLD_NAMES[3], rate, limit, None));
        }
        if let Some(limit) = t.stall {
            let longest = s.unwatched.iter().max_by_key(|(_, d)| **d);
            figures.push((
                THRESHOLD_NAMES[4],
                Some(longest.map_or(0.0, |(_, d)| d.as_secs_f64())),
                limit.as_secs_f64(),
                longest.map(|(i, _)| i.clone()),
            ));
        }
        let mut out = Vec::new();
        for (name, figure, limit, subject) in figures {
            let Some(value) = figure else { continue };
            let over = value > limit;
            let was = self.exceeded.contains_key(name);
            if over {
                self.exceeded.insert(name, value);
            } else {
                self.exceeded.remove(name);
            }
            if over != was {
                out.push(Transition {
                    threshold: name,
                    started: over,
                    value,
                    limit,
                    subject,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(depth: usize) -> Snapshot {
        Snapshot {
            queue_depths: [("slow".to_owned(), depth)].into_iter().collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_violation_starts_once_and_ends_once() {
        let mut w = Watchdog::new(Thresholds {
            max_queue_depth: Some(10),
            ..Thresholds::default()
        });
        let t0 = Instant::now();
        let mut seen = Vec::new();
        for (i, depth) in [0, 5, 11, 50, 30, 12, 3, 0, 0].into_iter().enumerate() {
            for tr in w.check(t0 + Duration::from_secs(i as u64), &queue(depth)) {
                seen.push((i, tr.started, tr.value, tr.subject));
            }
        }
        assert_eq!(
            seen,
            vec![
                (2, true, 11.0, Some("slow".to_owned())),
                (6, false, 3.0, Some("slow".to_owned())),
            ]
        );
        assert!(w.exceeded().is_empty());
    }

    #[test]
    fn latency_and_error_rate_are_judged_over_the_window() {
        let mut w = Watchdog::new(Thresholds {
            max_event_latency: Some(Duration::from_millis(100)),
            max_error_rate: Some(0.1),
            window: Duration::from_secs(60),
            ..Thresholds::default()
        });
        let h = crate::LatencyHistogram::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let snap = |h: &crate::LatencyHistogram, errors: u64, events: u64| Snapshot {
            event_latency: h.counts(),
            errors,
            events_handled: events,
            ..Snapshot::default()
        };
        assert!(w.check(at(0), &snap(&h, 0, 0)).is_empty());
        for _ in 0..100 {
            h.observe(Duration::from_millis(1));
        }
        assert!(w.check(at(10), &snap(&h, 1, 100)).is_empty());
        // Slow events and many errors within the minute.
        for _ in 0..10 {
            h.observe(Duration::from_secs(1));
        }
        let started = w.check(at(20), &snap(&h, 30, 110));
        let names: Vec<_> = started.iter().map(|t| (t.threshold, t.started)).collect();
        assert_eq!(
            names,
            vec![
                ("max_event_latency_seconds", true),
                ("max_error_rate", true)
            ]
        );
        // Nothing new: still exceeded, nothing starts again.
        assert!(w.check(at(30), &snap(&h, 30, 110)).is_empty());
        // Many fast, clean events: both come back, once.
        for _ in 0..1000 {
            h.observe(Duration::from_millis(1));
        }
        let ended = w.check(at(50), &snap(&h, 30, 1110));
        let names: Vec<_> = ended.iter().map(|t| (t.threshold, t.started)).collect();
        assert_eq!(
            names,
            vec![
                ("max_event_latency_seconds", false),
                ("max_error_rate", false)
            ]
        );
        assert!(w.exceeded().is_empty());
        // Later readings drop the old ones: a window holds only the last minute.
        assert!(w.check(at(200), &snap(&h, 30, 1110)).is_empty());
        assert_eq!(w.history.len(), 2);
    }

    #[test]
    fn a_stalled_informer_is_named() {
        let mut w = Watchdog::new(Thresholds {
            stall: Some(Duration::from_secs(30)),
            ..Thresholds::default()
        });
        let mut s = Snapshot::default();
        s.unwatched
            .insert("v1/pods".to_owned(), Duration::from_secs(31));
        let t = w.check(Instant::now(), &s);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].subject.as_deref(), Some("v1/pods"));
        assert_eq!(Thresholds::default().names(), Vec::<&str>::new());
    }
}
