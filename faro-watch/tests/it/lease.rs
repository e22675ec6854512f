//! Leader election on Leases against faro-sim: one leader at a time, a
//! standby that waits out a dead leader's Lease, takes a released one at
//! once, and a leader that cannot renew steps down before anyone else
//! could take over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faro_watch::{ElectionConfig, LeaderElector};
use tokio::sync::watch;

use crate::{client, namespace, sim};

fn config(identity: &str) -> ElectionConfig {
    ElectionConfig {
        namespace: "faro".into(),
        name: "faro".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(250),
        labels: Default::default(),
    }
}

/// One replica: its elector running, whether it leads, and how to stop it.
struct Replica {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn replica(client: kube::Client, identity: &str) -> Replica {
    let elector = LeaderElector::new(client, config(identity));
    let leading = elector.leading();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(elector.run(stop_rx));
    Replica {
        leading,
        stop,
        task,
    }
}

fn leads(r: &Replica) -> bool {
    *r.leading.borrow()
}

/// Waits until `which` leads; panics past `within`.
async fn until_leading(r: &Replica, within: Duration) -> Duration {
    let t = Instant::now();
    let mut leading = r.leading.clone();
    tokio::time::timeout(within, leading.wait_for(|l| *l))
        .await
        .expect("leads in time")
        .unwrap();
    t.elapsed()
}

/// Samples both replicas for `for_` and fails if both ever lead at once.
async fn never_both(a: &Replica, b: &Replica, for_: Duration) {
    let end = Instant::now() + for_;
    while Instant::now() < end {
        assert!(!(leads(a) && leads(b)), "two leaders at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn holder(sim: &faro_sim::Sim) -> Option<String> {
    sim.get("coordination.k8s.io/v1", "Lease", Some("faro"), "faro")
        .ok()
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leader_s_lease_is_waited_out_and_a_released_one_taken_at_once() {
    let sim = sim().await;
    sim.create(namespace("faro")).unwrap();
    let a = replica(client(&sim), "a");
    until_leading(&a, Duration::from_secs(5)).await;
    let b = replica(client(&sim), "b");
    never_both(&a, &b, Duration::from_secs(3)).await;
    assert!(leads(&a) && !leads(&b), "the first keeps its Lease");
    assert_eq!(holder(&sim).as_deref(), Some("a"));

    // A crash: no release. The standby waits out the Lease it last saw renewed.
    a.task.abort();
    let waited = until_leading(&b, Duration::from_secs(6)).await;
    assert!(
        waited >= Duration::from_millis(1500),
        "taken after {waited:?}, before the Lease could expire"
    );
    assert_eq!(holder(&sim).as_deref(), Some("b"));
    let lease = sim
        .get("coordination.k8s.io/v1", "Lease", Some("faro"), "faro")
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);

    // A graceful stop releases: the next replica leads at its next try.
    let c = replica(client(&sim), "c");
    never_both(&b, &c, Duration::from_millis(800)).await;
    b.stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), b.task)
        .await
        .unwrap()
        .unwrap();
    let waited = until_leading(&c, Duration::from_secs(5)).await;
    assert!(
        waited < Duration::from_millis(1000),
        "a released Lease is taken within a retry period, not after {waited:?}"
    );
    assert_eq!(holder(&sim).as_deref(), Some("c"));
    c.stop.send_replace(true);
    c.task.await.unwrap();
    assert_eq!(holder(&sim), None, "released on stop");
}

/// A TCP forwarder to the sim that can be cut, so that one replica loses
/// the API server while the other keeps it.
async fn cuttable_proxy(target: std::net::SocketAddr) -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let flag = flag.clone();
            tokio::spawn(async move {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                tokio::pin!(copy);
                loop {
                    tokio::select! {
                        _ = &mut copy => return,
                        () = tokio::time::sleep(Duration::from_millis(20)) => {
                            if flag.load(Ordering::SeqCst) {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (url, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_the_standby_takes_over() {
    let sim = sim().await;
    sim.create(namespace("faro")).unwrap();
    let (url, cut) = cuttable_proxy(sim.addr()).await;
    let cut_off = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let a = replica(cut_off, "a");
    until_leading(&a, Duration::from_secs(5)).await;
    let b = replica(client(&sim), "b");
    never_both(&a, &b, Duration::from_secs(1)).await;
    cut.store(true, Ordering::SeqCst);
    let cut_at = Instant::now();
    // The leader steps down by its renew deadline; the standby leads only
    // once the Lease it saw renewed last has expired, and never both.
    let mut stepped_down = None;
    let mut took_over = None;
    while took_over.is_none() && cut_at.elapsed() < Duration::from_secs(8) {
        assert!(!(leads(&a) && leads(&b)), "two leaders at once");
        if stepped_down.is_none() && !leads(&a) {
            stepped_down = Some(cut_at.elapsed());
        }
        if leads(&b) {
            took_over = Some(cut_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (Some(down), Some(over)) = (stepped_down, took_over) else {
        panic!("stepped down {stepped_down:?}, taken over {took_over:?}");
    };
    assert!(
        down <= Duration::from_millis(1800),
        "stepped down after {down:?}"
    );
    assert!(
        down < over,
        "stepped down at {down:?}, taken over at {over:?}"
    );
    assert_eq!(holder(&sim).as_deref(), Some("b"));
    b.stop.send_replace(true);
    a.task.abort();
}
