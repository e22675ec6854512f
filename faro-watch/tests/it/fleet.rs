//! Several clusters in one process: three faro-sims as clusters, one down
//! and one slow; the healthy one is ready and delivers while the others
//! are not, the down one joins when it comes up, and every record and
//! metric names its cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::config::Readiness;
use faro_core::{EventHandler, HandlerError, MatchedEvent};
use faro_watch::{ClusterState, Fleet};

use crate::{client, config, configmap, fast, namespace, sim};

/// Every event as `cluster TYPE key`.
#[derive(Default)]
struct ByCluster(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl EventHandler for ByCluster {
    fn name(&self) -> &str {
        "by-cluster"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let cluster = event.cluster().map_or("-", |c| &**c);
        self.0.lock().unwrap().push(format!(
            "{cluster} {} {}",
            event.event_type().as_str(),
            event.key()
        ));
        Ok(())
    }
}

impl ByCluster {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    async fn wait_for(&self, line: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.seen().iter().any(|s| s == line) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {line:?} within {within:?}; seen {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn state(fleet: &Fleet, name: &str) -> ClusterState {
    fleet
        .clusters()
        .into_iter()
        .find(|c| &*c.name == name)
        .map(|c| c.state)
        .unwrap_or(ClusterState::Stopped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_and_a_slow_cluster_hold_nobody_back_and_join_when_they_can() {
    let (healthy, slow, down) = (sim().await, sim().await, sim().await);
    for s in [&healthy, &slow, &down] {
        s.create(namespace("shop")).unwrap();
        s.create(configmap("shop", "settings", &[])).unwrap();
    }
    slow.set_latency(Duration::from_secs(2));
    down.restart(Duration::from_secs(5));
    // The server closes its listener as it goes down.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let config = config("resources:\n  - gvr: v1/configmaps\n    namespace_names: [shop]\n");
    let fleet = Fleet::new(Readiness::Any);
    let seen = Arc::new(ByCluster::default());
    fleet.add_handler(seen.clone());
    for (name, s) in [("healthy", &healthy), ("slow", &slow), ("down", &down)] {
        fleet.add_cluster(name, client(s), &config, fast()).unwrap();
    }
    assert!(
        fleet
            .add_cluster("slow", client(&slow), &config, fast())
            .is_err()
    );

    // The healthy cluster is ready and delivers while the others are not.
    tokio::time::timeout(Duration::from_secs(10), fleet.ready())
        .await
        .expect("the fleet is ready with one cluster");
    assert_eq!(state(&fleet, "healthy"), ClusterState::Ready);
    assert!(
        matches!(
            state(&fleet, "down"),
            ClusterState::Unreachable(_) | ClusterState::Connecting
        ),
        "{:?}",
        state(&fleet, "down")
    );
    assert_ne!(state(&fleet, "slow"), ClusterState::Ready);
    seen.wait_for("healthy ADDED shop/settings", Duration::from_secs(5))
        .await;
    healthy.create(configmap("shop", "later", &[])).unwrap();
    seen.wait_for("healthy ADDED shop/later", Duration::from_secs(5))
        .await;
    assert!(
        matches!(state(&fleet, "down"), ClusterState::Unreachable(_)),
        "still down while the healthy one delivers: {:?}",
        state(&fleet, "down")
    );
    assert!(!seen.seen().iter().any(|s| s.starts_with("down ")));

    // The down cluster joins when it comes up; the slow one gets there.
    seen.wait_for("down ADDED shop/settings", Duration::from_secs(30))
        .await;
    seen.wait_for("slow ADDED shop/settings", Duration::from_secs(30))
        .await;
    tokio::time::timeout(Duration::from_secs(30), fleet.cluster_ready("down"))
        .await
        .expect("the down cluster becomes ready");
    down.create(configmap("shop", "after", &[])).unwrap();
    seen.wait_for("down ADDED shop/after", Duration::from_secs(10))
        .await;
    // Same names in three clusters are three objects, each named by its cluster.
    let settings: Vec<String> = seen
        .seen()
        .into_iter()
        .filter(|s| s.ends_with("ADDED shop/settings"))
        .collect();
    assert_eq!(settings.len(), 3, "{settings:?}");
    assert!(seen.seen().iter().all(|s| !s.starts_with("- ")));

    // Every cluster's watch metrics carry its name; up is 1 for each.
    let mut registry = prometheus_client::registry::Registry::default();
    fleet.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for name in ["healthy", "slow", "down"] {
        assert!(
            text.contains(&format!("faro_cluster_up{{cluster=\"{name}\"}} 1")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("faro_watch_events_total{")
                    && l.contains(&format!("cluster=\"{name}\""))),
            "{text}"
        );
    }

    // Stopping does not wait on the slow cluster's answers.
    tokio::time::timeout(Duration::from_secs(5), fleet.stop())
        .await
        .expect("the fleet stops at once");
    assert!(fleet.clusters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_all_waits_for_every_cluster_and_a_removed_one_stops() {
    let (a, b) = (sim().await, sim().await);
    for s in [&a, &b] {
        s.create(namespace("shop")).unwrap();
    }
    b.restart(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let config = config("resources:\n  - gvr: v1/configmaps\n    namespace_names: [shop]\n");
    let fleet = Fleet::new(Readiness::All);
    let seen = Arc::new(ByCluster::default());
    fleet.add_handler(seen.clone());
    fleet.add_cluster("a", client(&a), &config, fast()).unwrap();
    fleet.add_cluster("b", client(&b), &config, fast()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), fleet.cluster_ready("a"))
        .await
        .unwrap();
    assert!(!fleet.is_ready(), "{:?}", fleet.clusters());
    tokio::time::timeout(Duration::from_secs(20), fleet.ready())
        .await
        .expect("ready once both are");
    assert!(
        fleet
            .clusters()
            .iter()
            .all(|c| c.state == ClusterState::Ready)
    );
    assert!(fleet.remove_cluster("b").await);
    assert!(!fleet.remove_cluster("b").await);
    b.create(configmap("shop", "unseen", &[])).unwrap();
    a.create(configmap("shop", "seen", &[])).unwrap();
    seen.wait_for("a ADDED shop/seen", Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!seen.seen().iter().any(|s| s.contains("unseen")));
    fleet.stop().await;
}
