//! The kustomize manifests render, and grant Faro reading only.

use std::path::Path;

use serde_json::Value;

fn render(dir: &str) -> Option<Vec<Value>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = match std::process::Command::new("kubectl")
        .args(["kustomize"])
        .arg(root.join(dir))
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            eprintln!("SKIPPED: kubectl is not on the PATH; kustomize rendering needs it");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(serde_saphyr::from_str_multiple::<Value, _>(&text).expect("rendered YAML parses"))
}

fn rules(docs: &[Value]) -> Vec<Value> {
    docs.iter()
        .filter(|d| d["kind"] == "ClusterRole")
        .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_base_renders_and_grants_only_get_list_watch_without_secrets() {
    let Some(docs) = render("deploy") else { return };
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let rules = rules(&docs);
    assert!(!rules.is_empty());
    for rule in &rules {
        for verb in strings(&rule["verbs"]) {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str()),
                "verb {verb} in {rule}"
            );
        }
        let resources = strings(&rule["resources"]);
        assert!(
            !resources.iter().any(|r| r == "secrets" || r == "*"),
            "{rule}"
        );
        assert!(
            !strings(&rule["apiGroups"]).iter().any(|g| g == "*"),
            "{rule}"
        );
    }
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    // The sample configuration in the ConfigMap is one Faro accepts.
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let yaml = config["data"]["faro.yaml"].as_str().unwrap();
    faro_core::Config::from_yaml(yaml, "deploy ConfigMap").expect("the sample configuration loads");
}

#[test]
fn the_read_secrets_overlay_adds_secrets_and_nothing_else() {
    let Some(docs) = render("deploy/overlays/read-secrets") else {
        return;
    };
    let rules = rules(&docs);
    let secrets: Vec<&Value> = rules
        .iter()
        .filter(|r| strings(&r["resources"]).contains(&"secrets".to_owned()))
        .collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(strings(&secrets[0]["verbs"]), ["get", "list", "watch"]);
}

#[test]
fn the_container_logs_overlay_adds_get_on_pods_log_and_a_logs_block() {
    let Some(docs) = render("deploy/overlays/container-logs") else {
        return;
    };
    let rules = rules(&docs);
    let logs: Vec<&Value> = rules
        .iter()
        .filter(|r| strings(&r["resources"]).contains(&"pods/log".to_owned()))
        .collect();
    assert_eq!(logs.len(), 1);
    assert_eq!(strings(&logs[0]["resources"]), ["pods/log"]);
    assert_eq!(strings(&logs[0]["verbs"]), ["get"]);
    assert!(
        !rules
            .iter()
            .any(|r| strings(&r["resources"]).contains(&"secrets".to_owned()))
    );
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let yaml = config["data"]["faro.yaml"].as_str().unwrap();
    let config = faro_core::Config::from_yaml(yaml, "overlay ConfigMap").expect("it loads");
    let logs = config.logs.expect("a logs block");
    assert_eq!(logs.max_streams, 1000);
    assert!(!logs.container_matches("istio-proxy") && logs.container_matches("app"));
}

#[test]
fn the_ha_overlay_runs_two_replicas_with_a_lease_role_in_faro_s_namespace_only() {
    let Some(docs) = render("deploy/overlays/ha") else {
        return;
    };
    let base = render("deploy").expect("the base renders too");
    assert_eq!(rules(&docs), rules(&base), "the ClusterRole is the base's");
    let roles: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Role").collect();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["metadata"]["namespace"], "faro");
    let role_rules = roles[0]["rules"].as_array().unwrap();
    assert_eq!(role_rules.len(), 1);
    assert_eq!(
        strings(&role_rules[0]["apiGroups"]),
        ["coordination.k8s.io"]
    );
    assert_eq!(strings(&role_rules[0]["resources"]), ["leases"]);
    assert_eq!(
        strings(&role_rules[0]["verbs"]),
        ["get", "list", "create", "update"]
    );
    let binding = docs.iter().find(|d| d["kind"] == "RoleBinding").unwrap();
    assert_eq!(binding["roleRef"]["name"], roles[0]["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], "faro");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let env = strings(
        &deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect::<Value>(),
    );
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);
    assert!(!docs.iter().any(|d| d["kind"] == "PersistentVolumeClaim"));
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let yaml = config["data"]["faro.yaml"].as_str().unwrap();
    let config = faro_core::Config::from_yaml(yaml, "overlay ConfigMap").expect("it loads");
    assert!(config.ha.enabled);
    assert_eq!(config.ha.lease_name, "faro");
}
