//! What a session watches: one cluster (the single-cluster contract: no
//! `cluster` field, a cluster that fails to start fails the run), or
//! several clusters by name in a [`Fleet`] (each retried on its own).

use faro_core::EventHandler;
use faro_watch::{ClusterState, ClusterStatus, Controller, Fleet, InformerInfo, LogStreamCounts};

/// One controller, or a fleet of them.
#[derive(Clone)]
pub enum Watching {
    One(Controller),
    Fleet(Fleet),
}

impl Watching {
    /// Every running controller.
    pub fn controllers(&self) -> Vec<Controller> {
        match self {
            Self::One(c) => vec![c.clone()],
            Self::Fleet(f) => f
                .clusters()
                .iter()
                .filter_map(|c| f.controller(&c.name))
                .collect(),
        }
    }

    /// The clusters and their states, with a fleet.
    pub fn clusters(&self) -> Option<Vec<ClusterStatus>> {
        match self {
            Self::One(_) => None,
            Self::Fleet(f) => Some(f.clusters()),
        }
    }

    /// Every informer of every running controller.
    pub fn active_informers(&self) -> Vec<InformerInfo> {
        self.controllers()
            .iter()
            .flat_map(Controller::active_informers)
            .collect()
    }

    /// Log streams summed over the clusters; `None` when no logs are followed.
    pub fn log_streams(&self) -> Option<LogStreamCounts> {
        self.controllers()
            .iter()
            .filter_map(Controller::log_streams)
            .reduce(|a, b| LogStreamCounts {
                open: a.open + b.open,
                waiting: a.waiting + b.waiting,
                backoff: a.backoff + b.backoff,
                containers: a.containers + b.containers,
            })
    }

    pub fn add_handler(&self, handler: impl EventHandler) {
        match self {
            Self::One(c) => c.add_handler(handler),
            Self::Fleet(f) => f.add_handler(handler),
        }
    }

    /// One controller: every initial list delivered. A fleet: as its
    /// readiness says.
    pub async fn ready(&self) {
        match self {
            Self::One(c) => c.ready().await,
            Self::Fleet(f) => f.ready().await,
        }
    }

    pub async fn stop(&self) {
        match self {
            Self::One(c) => c.stop().await,
            Self::Fleet(f) => f.stop().await,
        }
    }
}

/// `3 clusters, 2 ready, 1 unreachable (prod-eu: connection refused)`.
pub fn summary(clusters: &[ClusterStatus]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in clusters {
        match counts.iter_mut().find(|(s, _)| *s == c.state.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.state.as_str(), 1)),
        }
    }
    let order = ["ready", "syncing", "connecting", "unreachable", "stopped"];
    counts.sort_by_key(|(s, _)| order.iter().position(|o| o == s));
    let mut out = format!(
        "{} cluster{}",
        clusters.len(),
        if clusters.len() == 1 { "" } else { "s" }
    );
    for (state, n) in counts {
        out.push_str(&format!(", {n} {state}"));
    }
    let why: Vec<String> = clusters
        .iter()
        .filter_map(|c| match &c.state {
            ClusterState::Unreachable(why) => Some(format!("{}: {why}", c.name)),
            _ => None,
        })
        .collect();
    if !why.is_empty() {
        out.push_str(&format!(" ({})", why.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_states_and_says_why_a_cluster_is_unreachable() {
        let c = |name: &str, state| ClusterStatus {
            name: name.into(),
            state,
        };
        assert_eq!(
            summary(&[
                c("a", ClusterState::Ready),
                c(
                    "prod-eu",
                    ClusterState::Unreachable("connection refused".into())
                ),
                c("b", ClusterState::Ready),
            ]),
            "3 clusters, 2 ready, 1 unreachable (prod-eu: connection refused)"
        );
        assert_eq!(
            summary(&[c("a", ClusterState::Syncing)]),
            "1 cluster, 1 syncing"
        );
    }
}
