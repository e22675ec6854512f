//! Replicas sharing the work through a Lease: only the leader writes; a
//! SIGKILLed leader's standby takes over within lease_duration +
//! retry_period and the two files together hold every change, with
//! duplicates only from after the leader's last published progress; a
//! SIGTERMed leader hands over with no duplicate at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::run::spawn_run_with;
use crate::{Faro, TempDir, sim};

const NS: &str = "burst";

fn config(dir: &TempDir, identity: &str) -> PathBuf {
    dir.file(
        "faro.yaml",
        &format!(
            "resources:\n  - gvr: v1/configmaps\n    namespace_names: [{NS}]\n    name_pattern: \"^(old|b)-\"\nha:\n  enabled: true\n  lease_namespace: default\n  identity: {identity}\n  lease_duration: 3s\n  renew_deadline: 2s\n  retry_period: 500ms\n"
        ),
    )
}

/// `(TYPE, name, resourceVersion)` of every whole line; a line cut by a
/// kill is not a record.
fn lines(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    whole
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                v["eventType"].as_str().unwrap().to_owned(),
                v["name"].as_str().unwrap().to_owned(),
                v["resourceVersion"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn cm(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": NS}, "data": {"v": value}})
}

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A replica: its process and its events file.
async fn replica(sim: &faro_sim::Sim, dir: &TempDir, identity: &str) -> (Faro, PathBuf) {
    let mut faro = spawn_run_with(sim, &config(dir, identity), dir, &[]);
    let file = PathBuf::from(faro.line("FARO_JSON_FILE:").await);
    faro.line("FARO_READY:").await;
    (faro, file)
}

async fn wait_for(what: &str, within: Duration, done: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < end, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_takeovers_lose_nothing() {
    let sim = std::sync::Arc::new(sim().await);
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    let mut expected: Vec<(String, String, String)> = Vec::new();
    for i in 0..50 {
        let o = sim.create(cm(&format!("old-{i}"), "0")).unwrap();
        expected.push(("ADDED".into(), format!("old-{i}"), rv(&o)));
    }
    let (dir_a, dir_b, dir_c) = (TempDir::new(), TempDir::new(), TempDir::new());
    let (mut a, file_a) = replica(&sim, &dir_a, "replica-a").await;
    a.line("FARO_HA: leading").await;
    let (b, file_b) = replica(&sim, &dir_b, "replica-b").await;
    wait_for(
        "the leader writes the existing objects",
        Duration::from_secs(10),
        || lines(&file_a).len() == 50,
    )
    .await;
    // Give the leader a renewal to publish its progress.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(lines(&file_b).is_empty(), "a standby writes nothing");

    // A burst of 2,000 changes; the leader is SIGKILLed a third of the way in.
    let burst_sim = sim.clone();
    let burst = tokio::spawn(async move {
        let mut done = Vec::new();
        for step in 0..2000 {
            let (i, change) = match step {
                s if s < 700 => (s, "create"),
                s if s < 1400 => (s - 700, "update"),
                s => (s - 1400, "delete"),
            };
            let name = format!("b-{i}");
            match change {
                "create" => {
                    let o = burst_sim.create(cm(&name, "1")).unwrap();
                    done.push(("ADDED".to_owned(), name, rv(&o)));
                }
                "update" => {
                    let o = burst_sim.update(cm(&name, "2")).unwrap();
                    done.push(("UPDATED".to_owned(), name, rv(&o)));
                }
                _ => {
                    burst_sim
                        .delete("v1", "ConfigMap", Some(NS), &name)
                        .unwrap();
                    done.push(("DELETED".to_owned(), name, String::new()));
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        done
    });
    wait_for(
        "the leader writes part of the burst",
        Duration::from_secs(20),
        || lines(&file_a).len() >= 50 + 600,
    )
    .await;
    a.signal("KILL");
    let killed = Instant::now();
    let mut b = b;
    b.line("FARO_HA: leading").await;
    let takeover = killed.elapsed();
    assert!(
        takeover <= Duration::from_millis(3000 + 500 + 1500),
        "the standby took over after {takeover:?}"
    );
    expected.extend(burst.await.unwrap());
    wait_for(
        "the new leader writes the end of the burst",
        Duration::from_secs(20),
        || {
            lines(&file_b)
                .iter()
                .any(|(t, n, _)| t == "DELETED" && n == "b-599")
        },
    )
    .await;

    let (in_a, in_b) = (lines(&file_a), lines(&file_b));
    let union: Vec<&(String, String, String)> = in_a.iter().chain(&in_b).collect();
    for (t, name, rv) in &expected {
        assert!(
            union
                .iter()
                .any(|(t2, n2, rv2)| t2 == t && n2 == name && (rv.is_empty() || rv2 == rv)),
            "{t} {name} {rv} is in neither file"
        );
    }
    let set_a: BTreeSet<_> = in_a.iter().collect();
    let duplicates = in_b.iter().filter(|l| set_a.contains(l)).count();
    // Only what the leader wrote after its last published progress (one
    // renewal, 500 ms, of a burst of about 400 changes a second) comes twice.
    assert!(duplicates <= 400, "{duplicates} duplicates");
    assert!(
        !in_b.iter().any(|(_, n, _)| n.starts_with("old-")),
        "the objects the leader had written are not written again"
    );
    eprintln!(
        "takeover after {takeover:?}; {} lines from the dead leader, {} from the new one, {duplicates} twice",
        in_a.len(),
        in_b.len()
    );

    // A graceful stop hands over with nothing written twice.
    let (mut c, file_c) = replica(&sim, &dir_c, "replica-c").await;
    c.line("FARO_HA: following").await;
    let mut second: Vec<(String, String, String)> = Vec::new();
    for i in 0..100 {
        let o = sim.create(cm(&format!("b-late-{i}"), "1")).unwrap();
        second.push(("ADDED".into(), format!("b-late-{i}"), rv(&o)));
    }
    wait_for("the leader writes them", Duration::from_secs(10), || {
        lines(&file_b).iter().any(|(_, n, _)| n == "b-late-99")
    })
    .await;
    b.signal("TERM");
    let stopped = Instant::now();
    c.line("FARO_HA: leading").await;
    let handover = stopped.elapsed();
    assert!(
        handover <= Duration::from_secs(2),
        "handed over after {handover:?}"
    );
    for i in 0..50 {
        let o = sim.create(cm(&format!("b-after-{i}"), "1")).unwrap();
        second.push(("ADDED".into(), format!("b-after-{i}"), rv(&o)));
    }
    wait_for(
        "the new leader writes them",
        Duration::from_secs(10),
        || lines(&file_c).iter().any(|(_, n, _)| n == "b-after-49"),
    )
    .await;
    let (in_b, in_c) = (lines(&file_b), lines(&file_c));
    let set_b: BTreeSet<_> = in_b.iter().collect();
    let twice: Vec<_> = in_c.iter().filter(|l| set_b.contains(l)).collect();
    assert!(
        twice.is_empty(),
        "written twice after a graceful handover: {twice:?}"
    );
    for e in &second {
        assert!(
            in_b.contains(e) || in_c.contains(e),
            "{e:?} is in neither file"
        );
    }
    let by_writer: BTreeMap<String, usize> = std::fs::read_to_string(&file_c)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .fold(BTreeMap::new(), |mut m, v| {
            *m.entry(format!("{}/{}", v["writer"], v["shard"]))
                .or_default() += 1;
            m
        });
    assert_eq!(
        by_writer.keys().collect::<Vec<_>>(),
        ["\"replica-c\"/0"],
        "every line names its writer and shard"
    );
    let (code, _) = c.stop().await;
    assert_eq!(code, 0);
}

fn sharded_config(dir: &TempDir, identity: &str) -> PathBuf {
    dir.file(
        "faro.yaml",
        &format!(
            "resources:\n  - gvr: v1/configmaps\n    name_pattern: \"^(old|c)-\"\nha:\n  enabled: true\n  lease_namespace: default\n  identity: {identity}\n  lease_duration: 2s\n  renew_deadline: 1500ms\n  retry_period: 250ms\n  shards: 4\n"
        ),
    )
}

/// Who holds each shard's Lease.
fn holders(sim: &faro_sim::Sim) -> Vec<Option<String>> {
    (0..4)
        .map(|s| {
            sim.get(
                "coordination.k8s.io/v1",
                "Lease",
                Some("default"),
                &format!("faro-{s}"),
            )
            .ok()
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
        })
        .collect()
}

/// How many shards each replica holds, sorted; `None` while a shard is free.
fn split(sim: &faro_sim::Sim) -> Option<Vec<(String, usize)>> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for h in holders(sim) {
        *counts.entry(h?).or_default() += 1;
    }
    Some(counts.into_iter().collect())
}

async fn until_split(
    sim: &faro_sim::Sim,
    what: &str,
    within: Duration,
    ok: impl Fn(&[(String, usize)]) -> bool,
) {
    let end = Instant::now() + within;
    loop {
        if let Some(s) = split(sim)
            && ok(&s)
        {
            return;
        }
        assert!(Instant::now() < end, "{what}: {:?}", split(sim));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shares(s: &[(String, usize)]) -> Vec<usize> {
    let mut v: Vec<usize> = s.iter().map(|(_, n)| *n).collect();
    v.sort_unstable();
    v
}

/// `(namespace/name, rv)` → writers, with every line's shard and writer checked.
fn written(files: &[(&str, &Path)]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (identity, path) in files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        for l in whole.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            let ns = v["namespace"].as_str().unwrap();
            assert_eq!(v["writer"], *identity, "{l}");
            assert_eq!(
                v["shard"],
                faro_core::config::shard_of("v1/configmaps", Some(ns), 4),
                "{l}"
            );
            out.entry((
                format!("{ns}/{}", v["name"].as_str().unwrap()),
                v["resourceVersion"].as_str().unwrap().to_owned(),
            ))
            .or_default()
            .push((*identity).to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_spread_over_the_replicas_and_move_when_one_dies() {
    let sim = std::sync::Arc::new(sim().await);
    // Namespaces until every shard has two.
    let mut namespaces: Vec<String> = Vec::new();
    let mut per_shard = [0usize; 4];
    for i in 0.. {
        if per_shard.iter().all(|n| *n >= 2) {
            break;
        }
        let ns = format!("s-{i}");
        let shard = faro_core::config::shard_of("v1/configmaps", Some(&ns), 4) as usize;
        if per_shard[shard] >= 2 {
            continue;
        }
        per_shard[shard] += 1;
        sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
        sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "old-0", "namespace": ns}}))
            .unwrap();
        namespaces.push(ns);
    }
    let dirs = [TempDir::new(), TempDir::new(), TempDir::new()];
    let spawn = |i: usize, identity: &str| {
        spawn_run_with(&sim, &sharded_config(&dirs[i], identity), &dirs[i], &[])
    };
    let mut a = spawn(0, "a");
    let mut b = spawn(1, "b");
    let file_a = PathBuf::from(a.line("FARO_JSON_FILE:").await);
    let file_b = PathBuf::from(b.line("FARO_JSON_FILE:").await);
    until_split(
        &sim,
        "two replicas split 2/2",
        Duration::from_secs(15),
        |s| s.len() == 2 && shares(s) == [2, 2],
    )
    .await;

    // Changes in every namespace, all along.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writer_sim = sim.clone();
    let writer_ns = namespaces.clone();
    let changes = tokio::spawn(async move {
        let mut done = Vec::new();
        let mut k = 0;
        while !*stop_rx.borrow() {
            for ns in &writer_ns {
                let o = writer_sim
                    .create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("c-{k}"), "namespace": ns}}))
                    .unwrap();
                done.push((format!("{ns}/c-{k}"), rv(&o)));
            }
            k += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done
    });
    // A third replica joins: 2/1/1 within a few lease periods.
    let mut c = spawn(2, "c");
    let file_c = PathBuf::from(c.line("FARO_JSON_FILE:").await);
    until_split(
        &sim,
        "three replicas split 2/1/1",
        Duration::from_secs(15),
        |s| s.len() == 3 && shares(s) == [1, 1, 2],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kill = written(&[("a", &file_a), ("b", &file_b), ("c", &file_c)]);
    let twice_before: Vec<_> = before_kill.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(
        twice_before.is_empty(),
        "shards handed over gracefully write nothing twice: {twice_before:?}"
    );

    // The replica holding two dies: its shards move to the others.
    let split_now = split(&sim).unwrap();
    let (victim, _) = split_now.iter().find(|(_, n)| *n == 2).unwrap().clone();
    let killed = match victim.as_str() {
        "a" => &a,
        "b" => &b,
        _ => &c,
    };
    killed.signal("KILL");
    let survivors: Vec<&str> = ["a", "b", "c"]
        .into_iter()
        .filter(|r| *r != victim)
        .collect();
    until_split(
        &sim,
        "the survivors take every shard",
        Duration::from_secs(10),
        |s| s.iter().all(|(h, _)| survivors.contains(&h.as_str())) && shares(s) == [2, 2],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_tx.send_replace(true);
    let done = changes.await.unwrap();
    let all = [("a", file_a.as_path()), ("b", &file_b), ("c", &file_c)];
    wait_for("every change written", Duration::from_secs(15), || {
        let w = written(&all);
        done.iter()
            .all(|(key, rv)| w.contains_key(&(key.clone(), rv.clone())))
    })
    .await;
    let w = written(&all);
    let twice = w.values().filter(|writers| writers.len() > 1).count();
    assert!(twice <= 100, "{twice} changes written twice");
    for (_, writers) in w.iter().filter(|(_, w)| w.len() > 1) {
        assert!(
            writers.contains(&victim),
            "only the dead replica's work is written twice: {writers:?}"
        );
    }
    eprintln!("{} changes, {twice} written twice", done.len());
    for r in [&mut a, &mut b, &mut c] {
        let _ = r.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_over_two_clusters_elect_in_each_and_hand_both_over() {
    let (eu, us) = (sim().await, sim().await);
    for s in [&eu, &us] {
        s.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
            .unwrap();
    }
    let config = |dir: &TempDir, identity: &str| {
        dir.file(
            "faro.yaml",
            &format!(
                "resources:\n  - gvr: v1/configmaps\n    namespace_names: [{NS}]\n    name_pattern: \"^b-\"\nclusters:\n  - name: eu\n    kubeconfig: {}\n  - name: us\n    kubeconfig: {}\nha:\n  enabled: true\n  lease_namespace: default\n  identity: {identity}\n  lease_duration: 3s\n  renew_deadline: 2s\n  retry_period: 500ms\n",
                eu.kubeconfig().display(),
                us.kubeconfig().display()
            ),
        )
    };
    let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
    let mut a = spawn_run_with(&eu, &config(&dir_a, "a"), &dir_a, &[]);
    let file_a = PathBuf::from(a.line("FARO_JSON_FILE:").await);
    a.line("FARO_HA: leading cluster eu").await;
    a.line("FARO_HA: leading cluster us").await;
    let mut b = spawn_run_with(&eu, &config(&dir_b, "b"), &dir_b, &[]);
    let file_b = PathBuf::from(b.line("FARO_JSON_FILE:").await);
    b.line("FARO_READY:").await;
    let mut expected = Vec::new();
    for i in 0..20 {
        for (name, s) in [("eu", &eu), ("us", &us)] {
            let o = s.create(cm(&format!("b-{i}"), name)).unwrap();
            expected.push((name, format!("b-{i}"), rv(&o)));
        }
    }
    wait_for(
        "the leader writes both clusters",
        Duration::from_secs(10),
        || lines(&file_a).len() == 40,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(lines(&file_b).is_empty(), "the standby writes nothing");
    a.signal("KILL");
    b.line("FARO_HA: leading cluster eu").await;
    b.line("FARO_HA: leading cluster us").await;
    for i in 20..30 {
        for (name, s) in [("eu", &eu), ("us", &us)] {
            let o = s.create(cm(&format!("b-{i}"), name)).unwrap();
            expected.push((name, format!("b-{i}"), rv(&o)));
        }
    }
    // Both files, whole lines only.
    let read_both = || -> Vec<Value> {
        [&file_a, &file_b]
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                let whole = text[..text.rfind('\n').map_or(0, |i| i + 1)].to_owned();
                whole
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let written = |records: &[Value], (cluster, name, rv): &(&str, String, String)| {
        records.iter().any(|r| {
            r["cluster"] == *cluster
                && r["name"] == name.as_str()
                && r["resourceVersion"] == rv.as_str()
        })
    };
    // The new leader may first write what it held beyond the old leader's
    // progress: wait (10 s at most) for every change, not for a number of
    // lines, then name any that is missing.
    let end = Instant::now() + Duration::from_secs(10);
    let mut records = read_both();
    while !expected.iter().all(|e| written(&records, e)) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
        records = read_both();
    }
    for e in &expected {
        assert!(
            written(&records, e),
            "{} {} {} is in neither file",
            e.0,
            e.1,
            e.2
        );
    }
    let _ = b.child.start_kill();
}
