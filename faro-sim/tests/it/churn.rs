//! The churn generator is reproducible and makes objects of realistic size.

use faro_sim::churn::{Churn, ChurnConfig};

use crate::start;

fn config(seed: u64) -> ChurnConfig {
    ChurnConfig {
        seed,
        namespaces: vec!["c1".into(), "c2".into()],
        configmaps_per_namespace: 5,
        pods_per_namespace: 3,
        deployments_per_namespace: 2,
        operations_per_second: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_operations() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start().await;
        let mut churn = Churn::new(config(7));
        assert_eq!(churn.populate(&sim).unwrap(), 20);
        let ops: Vec<_> = (0..300).map(|_| churn.step(&sim).unwrap()).collect();
        runs.push(ops);
    }
    assert_eq!(runs[0], runs[1]);
    let verbs = |v: &str| runs[0].iter().filter(|o| o.verb == v).count();
    assert!(verbs("update") > verbs("create") && verbs("create") > 0 && verbs("delete") > 0);

    let sim = start().await;
    let mut other = Churn::new(config(8));
    other.populate(&sim).unwrap();
    let ops: Vec<_> = (0..300).map(|_| other.step(&sim).unwrap()).collect();
    assert_ne!(ops, runs[0], "another seed, another sequence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_have_realistic_sizes() {
    let sim = start().await;
    let mut churn = Churn::new(config(3));
    churn.populate(&sim).unwrap();
    let size = |api: &str, kind: &str, name: &str| {
        serde_json::to_vec(&sim.get(api, kind, Some("c1"), name).unwrap())
            .unwrap()
            .len()
    };
    let cm = size("v1", "ConfigMap", "configmap-1");
    assert!((1000..2600).contains(&cm), "ConfigMap of {cm} bytes");
    let pod = size("v1", "Pod", "pod-6");
    // 4–8 KB as written, plus the fields the API server defaults.
    assert!((4000..9800).contains(&pod), "Pod of {pod} bytes");
    let containers = sim.get("v1", "Pod", Some("c1"), "pod-6").unwrap()["spec"]["containers"]
        .as_array()
        .unwrap()
        .len();
    assert!(containers >= 2);
}
