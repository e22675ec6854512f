//! The zero-loss proof: thousands of writes while the server drops watches,
//! compacts its history, fails requests and freezes streams; afterwards the
//! delivered events match the server's history object by object.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use faro_sim::{ErrorFault, Sim, SimConfig};
use faro_watch::{Controller, WatchOptions};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::{Recorder, Seen, client, config, create, fast, namespace, object, sim_with};

const OPS: usize = 2_400;
const NAMESPACES: [&str; 3] = ["z1", "z2", "z3"];
/// Secrets are watched in these namespaces only (one watch each).
const SECRET_NAMESPACES: [&str; 2] = ["z1", "z2"];

/// One lifetime (uid) of an object, as the server recorded it.
#[derive(Debug)]
struct Lifetime {
    gvr: &'static str,
    key: String,
    /// Every resourceVersion it had, in order: create, updates, delete.
    versions: Vec<String>,
    deleted: bool,
    /// How many history compactions had happened when it was created.
    compactions_at_create: usize,
}

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"].as_str().unwrap().to_owned()
}

#[derive(Default)]
struct Faults {
    compactions: usize,
    drops: usize,
    errors: usize,
    freezes: usize,
}

fn inject(sim: &Sim, rng: &mut fastrand::Rng, faults: &mut Faults, compaction: bool) {
    let mut kind = rng.usize(0..5);
    if kind == 1 && !compaction {
        kind = 0;
    }
    match kind {
        0 => {
            sim.close_watches();
            faults.drops += 1;
        }
        1 => {
            // Drop the watches and forget the history they would resume from.
            sim.compact();
            sim.close_watches();
            faults.compactions += 1;
        }
        2 => {
            sim.inject_errors(ErrorFault {
                count: rng.u64(2..6),
                status: 500,
                verbs: vec!["watch".into(), "list".into()],
                ..ErrorFault::default()
            });
            sim.close_watches();
            faults.errors += 1;
        }
        3 => {
            sim.inject_errors(ErrorFault {
                count: rng.u64(1..4),
                status: 429,
                retry_after_seconds: 0,
                verbs: vec!["watch".into(), "list".into()],
                ..ErrorFault::default()
            });
            sim.close_watches();
            faults.errors += 1;
        }
        _ => {
            // Longer than the stall timeout: the watch must notice by itself.
            sim.freeze_watches(Duration::from_millis(700));
            faults.freezes += 1;
        }
    }
}

async fn zero_loss(seed: u64, compaction: bool) {
    let sim = sim_with(SimConfig::default()).await;
    for ns in NAMESPACES {
        create(&sim, namespace(ns));
    }
    let cfg = config(
        r#"
resources:
  - gvr: v1/configmaps
    name_pattern: "^zl-"
  - gvr: v1/secrets
    namespace_names: [z1, z2]
    name_pattern: "^zl-"
"#,
    );
    let controller = Controller::with_options(
        client(&sim),
        &cfg,
        WatchOptions {
            stall_timeout: Duration::from_millis(400),
            ..fast()
        },
    );
    let mut registry = Registry::default();
    controller.register_metrics(&mut registry);
    let recorder = Recorder::new();
    controller.add_handler(recorder.clone());
    controller.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), controller.ready())
        .await
        .expect("ready");

    let mut rng = fastrand::Rng::with_seed(seed);
    let mut faults = Faults::default();
    let mut lifetimes: HashMap<String, Lifetime> = HashMap::new();
    // Live objects: (gvr, key) -> (uid, latest object).
    let mut live: BTreeMap<(&'static str, String), (String, Value)> = BTreeMap::new();
    let mut names = 0usize;
    for op in 0..OPS {
        if rng.usize(0..80) == 0 {
            let compactions = faults.compactions;
            inject(&sim, &mut rng, &mut faults, compaction);
            if faults.compactions > compactions {
                // Let every informer get past the lost history (a marker it
                // watches arrives) before writing on: what was written before
                // may be unseen, what comes after must all be delivered.
                let marker = format!("zl-marker-{compactions}");
                let mut expected = Vec::new();
                for (kind, gvr, ns) in [
                    ("ConfigMap", "v1/configmaps", "z1"),
                    ("Secret", "v1/secrets", "z1"),
                    ("Secret", "v1/secrets", "z2"),
                ] {
                    let created = create(&sim, object("v1", kind, Some(ns), &marker, &[]));
                    let key = format!("{ns}/{marker}");
                    lifetimes.insert(
                        uid(&created),
                        Lifetime {
                            gvr,
                            key: key.clone(),
                            versions: vec![rv(&created)],
                            deleted: false,
                            compactions_at_create: faults.compactions,
                        },
                    );
                    expected.push(format!("ADDED {gvr} {key}"));
                }
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                recorder.wait_for(&expected).await;
            }
        }
        let choice = rng.usize(0..10);
        if live.len() < 20 || choice < 3 {
            // Create: a new name, or a name used before (a new lifetime under an old key).
            let (gvr, kind): (&'static str, &str) = if rng.bool() {
                ("v1/configmaps", "ConfigMap")
            } else {
                ("v1/secrets", "Secret")
            };
            let ns = NAMESPACES[rng.usize(0..NAMESPACES.len())];
            let name = if names > 0 && rng.usize(0..4) == 0 {
                format!("zl-{}", rng.usize(0..names))
            } else {
                names += 1;
                format!("zl-{names}")
            };
            let key = format!("{ns}/{name}");
            if live.contains_key(&(gvr, key.clone())) {
                continue;
            }
            let created = create(
                &sim,
                object("v1", kind, Some(ns), &name, &[("op", &op.to_string())]),
            );
            lifetimes.insert(
                uid(&created),
                Lifetime {
                    gvr,
                    key: key.clone(),
                    versions: vec![rv(&created)],
                    deleted: false,
                    compactions_at_create: faults.compactions,
                },
            );
            live.insert((gvr, key), (uid(&created), created));
        } else if choice < 8 {
            let index = rng.usize(0..live.len());
            let (_, (id, latest)) = live.iter_mut().nth(index).unwrap();
            let mut next = latest.clone();
            next["metadata"]["labels"]["op"] = Value::String(op.to_string());
            let updated = sim.update(next).unwrap();
            lifetimes
                .get_mut(id.as_str())
                .unwrap()
                .versions
                .push(rv(&updated));
            *latest = updated;
        } else {
            let index = rng.usize(0..live.len());
            let k = live.keys().nth(index).unwrap().clone();
            let (id, latest) = live.remove(&k).unwrap();
            let ns = latest["metadata"]["namespace"].as_str().unwrap();
            let name = latest["metadata"]["name"].as_str().unwrap();
            let kind = latest["kind"].as_str().unwrap();
            let deleted = sim.delete("v1", kind, Some(ns), name).unwrap();
            let l = lifetimes.get_mut(&id).unwrap();
            l.versions.push(rv(&deleted));
            l.deleted = true;
        }
        if op % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    let watched = |l: &Lifetime| {
        l.gvr == "v1/configmaps"
            || SECRET_NAMESPACES
                .iter()
                .any(|ns| l.key.starts_with(&format!("{ns}/")))
    };
    // Wait until every watched lifetime's final state has been delivered.
    let done = |seen: &[Seen]| {
        let mut last: HashMap<&str, &Seen> = HashMap::new();
        for s in seen {
            last.insert(s.uid.as_str(), s);
        }
        lifetimes
            .iter()
            .filter(|(_, l)| watched(l))
            .all(|(id, l)| match last.get(id.as_str()) {
                Some(s) if l.deleted => s.event_type == "DELETED",
                Some(s) => s.rv == *l.versions.last().unwrap(),
                None => l.deleted,
            })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&recorder.all()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "seed {seed}: the final state never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    controller.stop().await;

    // Now the proof, lifetime by lifetime.
    let seen = recorder.all();
    let mut by_uid: HashMap<&str, Vec<&Seen>> = HashMap::new();
    let mut pairs = HashSet::new();
    for s in &seen {
        by_uid.entry(s.uid.as_str()).or_default().push(s);
        if !s.inferred {
            assert!(
                pairs.insert((s.gvr.clone(), s.key.clone(), s.rv.clone())),
                "seed {seed}: ({} {}, {}) delivered twice",
                s.gvr,
                s.key,
                s.rv
            );
        }
    }
    let mut missing = 0;
    let mut inferred = 0;
    for (id, l) in &lifetimes {
        let events = by_uid.remove(id.as_str()).unwrap_or_default();
        if !watched(l) {
            assert!(
                events.is_empty(),
                "seed {seed}: {} is not watched: {events:?}",
                l.key
            );
            continue;
        }
        // Unless the server lost its history after this object was created
        // (and before the informers were past it), every version it had is
        // in the history Faro resumes from.
        let history_kept = l.compactions_at_create == faults.compactions;
        if events.is_empty() {
            assert!(
                l.deleted && !history_kept,
                "seed {seed}: {} {} ({id}) never delivered: {l:?}",
                l.gvr,
                l.key
            );
            missing += 1;
            continue;
        }
        let what = format!(
            "seed {seed}: {} {} ({id}): {events:?} vs {:?}",
            l.gvr, l.key, l.versions
        );
        assert!(
            events.iter().all(|e| e.gvr == l.gvr && e.key == l.key),
            "{what}"
        );
        assert_eq!(events[0].event_type, "ADDED", "{what}");
        assert_eq!(
            events.iter().filter(|e| e.event_type == "ADDED").count(),
            1,
            "{what}"
        );
        let deletes = events.iter().filter(|e| e.event_type == "DELETED").count();
        assert_eq!(deletes, usize::from(l.deleted), "{what}");
        if l.deleted {
            assert_eq!(events.last().unwrap().event_type, "DELETED", "{what}");
        }
        let mut previous: Option<u64> = None;
        for e in &events {
            let v: u64 = e.rv.parse().unwrap();
            if e.inferred {
                inferred += 1;
                assert_eq!(
                    previous,
                    Some(v),
                    "{what}: an inferred DELETED carries the last version seen"
                );
                continue;
            }
            assert!(
                l.versions.contains(&e.rv),
                "{what}: {} is not a version it had",
                e.rv
            );
            assert!(
                previous.is_none_or(|p| p < v),
                "{what}: versions must increase"
            );
            previous = Some(v);
        }
        if history_kept {
            let delivered: Vec<&str> = events.iter().map(|e| e.rv.as_str()).collect();
            assert_eq!(delivered, l.versions, "{what}: every version, in order");
        }
        let last = events.last().unwrap();
        if !last.inferred {
            assert_eq!(
                &last.rv,
                l.versions.last().unwrap(),
                "{what}: the last event carries the final version"
            );
        }
    }
    assert!(
        by_uid.is_empty(),
        "seed {seed}: events for objects never written: {by_uid:?}"
    );

    // The faults really happened, and the watch layer saw them.
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let restarts: f64 = text
        .lines()
        .filter(|l| l.starts_with("faro_watch_restarts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        faults.drops + faults.compactions + faults.errors + faults.freezes >= 10,
        "seed {seed}: too few faults"
    );
    assert!(restarts >= 10.0, "seed {seed}: restarts {restarts}\n{text}");
    if faults.compactions > 0 {
        assert!(
            text.contains("faro_watch_relists_total{gvr=\"v1/configmaps\"}"),
            "{text}"
        );
    } else {
        // Without a lost history every gap is replayed by the server: no
        // relist, so nothing is inferred and nothing is unseen.
        assert_eq!((missing, inferred), (0, 0), "seed {seed}");
    }
    let versions: usize = lifetimes
        .values()
        .filter(|l| watched(l))
        .map(|l| l.versions.len())
        .sum();
    eprintln!(
        "seed {seed}: {} lifetimes, {versions} versions watched, {} events, {inferred} inferred deletes, {missing} unseen in compacted gaps; faults: {} drops, {} compactions, {} error bursts, {} freezes; {restarts} restarts",
        lifetimes.len(),
        seen.len(),
        faults.drops,
        faults.compactions,
        faults.errors,
        faults.freezes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_under_faults_seed_1() {
    zero_loss(1, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_under_faults_seed_2() {
    zero_loss(2, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_loss_under_faults_seed_3() {
    zero_loss(3, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_is_delivered_when_no_history_is_lost() {
    zero_loss(4, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_stream_is_detected_as_a_stall_and_restarted() {
    let sim = sim_with(SimConfig::default()).await;
    create(&sim, namespace("app"));
    let controller = Controller::with_options(
        client(&sim),
        &config("resources:\n  - gvr: v1/configmaps\n    namespace_names: [app]\n"),
        WatchOptions {
            stall_timeout: Duration::from_millis(300),
            ..fast()
        },
    );
    let recorder = Recorder::new();
    controller.add_handler(recorder.clone());
    controller.start().await.unwrap();
    controller.ready().await;
    sim.freeze_watches(Duration::from_millis(1000));
    create(&sim, crate::configmap("app", "during-freeze", &[]));
    recorder
        .wait_for(&["ADDED v1/configmaps app/during-freeze"])
        .await;
    let stalls = controller
        .metrics()
        .stalls
        .get_or_create(&[("gvr", "v1/configmaps".to_owned())])
        .get();
    assert!(
        stalls >= 1,
        "the frozen watch was restarted as a stall ({stalls})"
    );
    controller.stop().await;
}
