//! Integration tests of faro-core, linked as one binary.

mod config_errors;
mod config_shapes;
mod dispatch_config;
mod events;
mod fleet_config;
mod gvr;
mod logs_config;
mod monitor_config;
mod precedence;
mod story_config;
mod workload;

/// The rendered watch specs of a YAML configuration.
pub fn specs(yaml: &str) -> Vec<String> {
    faro_core::Config::from_yaml(yaml, "faro.yaml")
        .unwrap_or_else(|e| panic!("configuration should load: {e}"))
        .watch_specs
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Each YAML configuration fails with one line starting as given.
pub fn refused(cases: &[(&str, &str)]) {
    for (yaml, start) in cases {
        let e = error(yaml);
        assert!(
            e.starts_with(start),
            "{yaml}\n  got: {e}\n  expected it to start with: {start}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

/// The error text of a YAML configuration that must fail.
pub fn error(yaml: &str) -> String {
    match faro_core::Config::from_yaml(yaml, "faro.yaml") {
        Ok(config) => panic!("configuration should fail, got {:?}", config.watch_specs),
        Err(e) => e.to_string(),
    }
}
