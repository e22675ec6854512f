//! Continuity across restarts: checkpoints, resume without a flood or a
//! loss, a changed configuration and a corrupt checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::run::{spawn_run, spawn_run_with};
use crate::{Faro, TempDir, sim};

/// Every line of every events file under `out/logs`, in file order,
/// without the `kube-root-ca.crt` ConfigMap every namespace gets.
fn all_events(out: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(out.join("logs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("events-"))
    });
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            if v["name"] != "kube-root-ca.crt" {
                lines.push(v);
            }
        }
    }
    lines
}

/// Waits (up to 20 s) until `out` holds at least `n` event lines.
async fn wait_lines(out: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lines = all_events(out);
        if lines.len() >= n || tokio::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cm(ns: &str, name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns}, "data": {"k": value}})
}

fn short(v: &Value) -> String {
    format!(
        "{} {}{}",
        v["eventType"].as_str().unwrap(),
        v["name"].as_str().unwrap(),
        if v["inferred"] == true {
            " inferred"
        } else {
            ""
        }
    )
}

async fn restart_delivers_exactly_the_changes(compacted: bool) {
    let sim = sim().await;
    let ns = "cont";
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .unwrap();
    for i in 0..200 {
        sim.create(cm(ns, &format!("cm-{i}"), "0")).unwrap();
    }
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [cont]\ncheckpoint:\n  interval: 1s\n",
    );
    let out = dir.path().join("out");
    let mut faro = spawn_run(&sim, &config, &dir);
    faro.line("FARO_READY:").await;
    assert_eq!(wait_lines(&out, 200).await.len(), 200);
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);

    // 300 changes while Faro is down.
    let mut expected = Vec::new();
    for i in 0..100 {
        sim.update(cm(ns, &format!("cm-{i}"), "1")).unwrap();
        expected.push(format!("UPDATED cm-{i}"));
        sim.delete("v1", "ConfigMap", Some(ns), &format!("cm-{}", 100 + i))
            .unwrap();
        expected.push(format!(
            "DELETED cm-{}{}",
            100 + i,
            if compacted { " inferred" } else { "" }
        ));
        sim.create(cm(ns, &format!("new-{i}"), "0")).unwrap();
        expected.push(format!("ADDED new-{i}"));
    }
    if compacted {
        sim.compact();
    }
    expected.sort();

    let mut faro = spawn_run(&sim, &config, &dir);
    faro.line("FARO_READY:").await;
    let lines = wait_lines(&out, 500).await;
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    let lines = if all_events(&out).len() > lines.len() {
        all_events(&out)
    } else {
        lines
    };
    let mut got: Vec<String> = lines[200..].iter().map(short).collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(summary["added"], 100);
    // Each UPDATED carries the version the object has now.
    for line in &lines[200..] {
        if line["eventType"] == "UPDATED" {
            let now = sim
                .get("v1", "ConfigMap", Some(ns), line["name"].as_str().unwrap())
                .unwrap();
            assert_eq!(line["resourceVersion"], now["metadata"]["resourceVersion"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_delivers_exactly_what_changed_while_down() {
    restart_delivers_exactly_the_changes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_compaction_relists_and_delivers_only_the_difference() {
    restart_delivers_exactly_the_changes(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_nothing_and_repeats_nothing() {
    let sim = sim().await;
    let ns = "kill";
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .unwrap();
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [kill]\ncheckpoint:\n  interval: 1s\n",
    );
    let out = dir.path().join("out");
    // Every version of every object the burst made, and the deleted keys.
    let mut versions: BTreeSet<(String, String)> = BTreeSet::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut live: Vec<String> = Vec::new();
    let mut next = 0;
    let mut change = |sim: &faro_sim::Sim, versions: &mut BTreeSet<(String, String)>| {
        let r = fastrand::u32(0..10);
        if live.len() < 5 || r < 5 {
            let name = format!("c-{next}");
            next += 1;
            let made = sim.create(cm(ns, &name, "0")).unwrap();
            versions.insert((name.clone(), rv(&made)));
            live.push(name);
        } else if r < 8 {
            let name = live[fastrand::usize(..live.len())].clone();
            let made = sim
                .update(cm(ns, &name, &fastrand::u32(..).to_string()))
                .unwrap();
            versions.insert((name, rv(&made)));
        } else {
            let name = live.swap_remove(fastrand::usize(..live.len()));
            sim.delete("v1", "ConfigMap", Some(ns), &name).unwrap();
            deleted.insert(name);
        }
    };
    for round in 0..6 {
        let mut faro = spawn_run(&sim, &config, &dir);
        faro.line("FARO_READY:").await;
        let until = tokio::time::Instant::now()
            + Duration::from_millis(u64::from(fastrand::u32(300..2500)));
        while tokio::time::Instant::now() < until {
            for _ in 0..5 {
                change(&sim, &mut versions);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if round < 5 {
            faro.signal("KILL");
            let _ = faro.child.wait().await;
            // Changes while it is down, too.
            for _ in 0..20 {
                change(&sim, &mut versions);
            }
        } else {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let (code, _) = faro.stop().await;
            assert_eq!(code, 0);
        }
    }
    let lines = all_events(&out);
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut deletes: BTreeSet<String> = BTreeSet::new();
    for l in &lines {
        let name = l["name"].as_str().unwrap().to_owned();
        let rv = l["resourceVersion"].as_str().unwrap().to_owned();
        if l["eventType"] == "DELETED" {
            deletes.insert(name.clone());
        }
        *seen.entry((name, rv)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        for l in &lines {
            if twice
                .iter()
                .any(|((n, _), _)| l["name"].as_str() == Some(n.as_str()))
            {
                eprintln!("{l}");
            }
        }
    }
    assert!(twice.is_empty(), "written twice: {twice:?}");
    let missing: Vec<_> = versions
        .iter()
        .filter(|(name, rv)| {
            // A version replaced while Faro was down may be folded into a later one.
            !seen.contains_key(&(name.clone(), rv.clone())) && !seen.keys().any(|(n, _)| n == name)
        })
        .collect();
    assert!(missing.is_empty(), "never written: {missing:?}");
    let lost_deletes: Vec<_> = deleted.difference(&deletes).collect();
    assert!(
        lost_deletes.is_empty(),
        "deletes never written: {lost_deletes:?}"
    );
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_rule_resets_only_its_gvr_and_a_corrupt_checkpoint_starts_afresh() {
    let sim = sim().await;
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cfg"}}))
        .unwrap();
    for i in 0..3 {
        sim.create(cm("cfg", &format!("cm-{i}"), "0")).unwrap();
        sim.create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("s-{i}"), "namespace": "cfg"}, "data": {}}))
            .unwrap();
    }
    let dir = TempDir::new();
    let out = dir.path().join("out");
    let base = "resources:\n  - gvr: v1/configmaps\n    namespace_names: [cfg]\n  - gvr: v1/secrets\n    namespace_names: [cfg]\n";
    let config = dir.file("faro.yaml", base);
    let run = |config: std::path::PathBuf| {
        let dir = &dir;
        let sim = &sim;
        async move {
            let mut faro: Faro = spawn_run(sim, &config, dir);
            faro.line("FARO_READY:").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (code, _) = faro.stop().await;
            assert_eq!(code, 0);
        }
    };
    run(config.clone()).await;
    let first = all_events(&out).len();
    assert_eq!(first, 6);
    // The secrets rule changes (a name pattern): only secrets start afresh.
    let changed = dir.file("faro2.yaml", &format!("{base}    name_pattern: ^s-\n"));
    run(changed.clone()).await;
    let lines = all_events(&out);
    let mut again: Vec<String> = lines[first..]
        .iter()
        .map(|l| format!("{} {}", short(l), l["gvr"].as_str().unwrap()))
        .collect();
    again.sort();
    assert_eq!(
        again,
        [
            "ADDED s-0 v1/secrets",
            "ADDED s-1 v1/secrets",
            "ADDED s-2 v1/secrets"
        ]
    );
    // A corrupt checkpoint: a warning and a fresh start for its GVR.
    let state = out.join("state").join("v1_configmaps.json");
    assert!(state.exists(), "the configmaps checkpoint is written");
    std::fs::write(&state, "{not json").unwrap();
    let before = all_events(&out).len();
    run(changed).await;
    let lines = all_events(&out);
    let mut fresh: Vec<String> = lines[before..].iter().map(short).collect();
    fresh.sort();
    assert_eq!(fresh, ["ADDED cm-0", "ADDED cm-1", "ADDED cm-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_ignores_the_checkpoints() {
    let sim = sim().await;
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fr"}}))
        .unwrap();
    sim.create(cm("fr", "a", "0")).unwrap();
    let dir = TempDir::new();
    let out = dir.path().join("out");
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [fr]\n",
    );
    for (args, expected) in [(&[][..], 1), (&[][..], 1), (&["--fresh"][..], 2)] {
        let mut faro = spawn_run_with(&sim, &config, &dir, args);
        faro.line("FARO_READY:").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (code, _) = faro.stop().await;
        assert_eq!(code, 0);
        assert_eq!(all_events(&out).len(), expected, "after {args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_carry_what_changed_and_no_ops_are_suppressed() {
    let sim = sim().await;
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "up"}}))
        .unwrap();
    let dir = TempDir::new();
    let out = dir.path().join("out");
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [up]\n    updates:\n      diff: patch\n      suppress: [metadata_only]\n",
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let metrics = faro.line("FARO_METRICS_URL:").await;
    faro.line("FARO_READY:").await;
    sim.create(cm("up", "a", "1")).unwrap();
    wait_lines(&out, 1).await;
    // Labels only: suppressed. Then the data: delivered, with what changed.
    let mut labelled = cm("up", "a", "1");
    labelled["metadata"]["labels"] = json!({"team": "x"});
    sim.update(labelled.clone()).unwrap();
    labelled["data"]["k"] = json!("2");
    sim.update(labelled).unwrap();
    let lines = wait_lines(&out, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = crate::run::get(&metrics).await;
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
    drop(lines);
    let lines = all_events(&out);
    assert_eq!(
        lines.iter().map(short).collect::<Vec<_>>(),
        ["ADDED a", "UPDATED a"]
    );
    assert_eq!(lines[1]["changedPaths"], json!(["/data/k"]));
    assert_eq!(
        lines[1]["patch"],
        json!([{"op": "replace", "path": "/data/k", "value": "2"}])
    );
    assert_eq!(status, 200);
    assert!(
        body.lines()
            .any(|l| l.starts_with("faro_updates_suppressed_total{")
                && l.contains("reason=\"metadata_only\"")
                && l.ends_with(" 1")),
        "{body}"
    );
}
