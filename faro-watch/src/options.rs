//! How informers list, watch and recover.

use std::time::Duration;

/// How an informer gets its initial (and every later full) list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListStrategy {
    /// Streaming lists where the server supports them, paged lists where it
    /// refuses `sendInitialEvents`; found out on the first list and remembered.
    #[default]
    Auto,
    /// Always a watch with `sendInitialEvents=true`.
    Streaming,
    /// Always `limit`/`continue` pages.
    Paged,
}

/// Tuning of every informer of a controller. The defaults follow client-go.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Streaming or paged lists.
    pub list_strategy: ListStrategy,
    /// `limit` of each page of a paged list.
    pub page_size: u32,
    /// A watch on which nothing arrives for this long, not even a bookmark,
    /// is restarted and counted as a stall.
    pub stall_timeout: Duration,
    /// First reconnect delay; doubled on each failure, with jitter.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// `timeoutSeconds` of each watch request; the server ends it then and
    /// the informer resumes from the last resourceVersion.
    pub watch_timeout: Duration,
    /// How often a parked informer asks discovery again, besides on every
    /// CRD change.
    pub rediscovery_interval: Duration,
    /// How container logs are read, when the configuration follows them.
    pub logs: crate::logs::LogOptions,
    /// Checkpoints of progress, for resuming after a restart; `None`: off.
    pub checkpoint: Option<crate::CheckpointOptions>,
    /// The cluster's name, set on every record when Faro watches clusters
    /// by name; `None` for a single unnamed cluster.
    pub cluster: Option<std::sync::Arc<str>>,
    /// This replica's identity and the number of shards, set on every
    /// event (with its shard) when replicas share the work; `None` alone.
    pub writer: Option<(std::sync::Arc<str>, u32)>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            list_strategy: ListStrategy::Auto,
            page_size: 500,
            stall_timeout: Duration::from_secs(180),
            backoff_initial: Duration::from_millis(800),
            backoff_max: Duration::from_secs(30),
            watch_timeout: Duration::from_secs(290),
            rediscovery_interval: Duration::from_secs(30),
            logs: crate::logs::LogOptions::default(),
            checkpoint: None,
            cluster: None,
            writer: None,
        }
    }
}

/// Capped exponential backoff with jitter (client-go's reflector: 800 ms
/// doubling to 30 s, each delay stretched by up to 100 %, never past the cap).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(options: &WatchOptions) -> Self {
        Self {
            initial: options.backoff_initial,
            max: options.backoff_max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(1.0 + fastrand::f64()).min(self.max)
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(&WatchOptions::default());
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(
            delays[0] >= Duration::from_millis(800) && delays[0] <= Duration::from_millis(1600)
        );
        assert!(
            delays[1] >= Duration::from_millis(1600) && delays[1] <= Duration::from_millis(3200)
        );
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert_eq!(delays[9], Duration::from_secs(30));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1600));
    }
}
