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
