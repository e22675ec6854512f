//! flag > environment > YAML > default.

use std::collections::HashMap;
use std::path::PathBuf;

use faro_core::Config;
use faro_core::config::{LogLevel, Overrides};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn config_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn flag_beats_environment_beats_yaml_beats_default() {
    let file = config_file(
        "precedence.yaml",
        "output_dir: /from-yaml\nlog_level: error\n",
    );
    let path = file.to_str().unwrap();
    let env_all = Overrides::from_env(env(&[
        ("FARO_CONFIG", path),
        ("FARO_OUTPUT_DIR", "/from-env"),
        ("FARO_LOG_LEVEL", "debug"),
    ]))
    .unwrap();
    let flags = Overrides {
        output_dir: Some(PathBuf::from("/from-flag")),
        ..Overrides::default()
    };

    let c = Config::resolve(&flags, &env_all).unwrap();
    assert_eq!(c.output_dir, PathBuf::from("/from-flag"));
    assert_eq!(c.log_level, LogLevel::Debug, "environment beats YAML");

    let c = Config::resolve(&Overrides::default(), &env_all).unwrap();
    assert_eq!(c.output_dir, PathBuf::from("/from-env"));

    let env_file_only = Overrides::from_env(env(&[("FARO_CONFIG", path)])).unwrap();
    let c = Config::resolve(&Overrides::default(), &env_file_only).unwrap();
    assert_eq!(c.output_dir, PathBuf::from("/from-yaml"));
    assert_eq!(c.log_level, LogLevel::Error);

    let c = Config::resolve(&Overrides::default(), &Overrides::default()).unwrap();
    assert_eq!(c.output_dir, PathBuf::from("./output"));
    assert_eq!(c.log_level, LogLevel::Info);
}

#[test]
fn the_config_flag_beats_the_config_environment_variable() {
    let a = config_file("a.yaml", "output_dir: /a\n");
    let b = config_file("b.yaml", "output_dir: /b\n");
    let env = Overrides::from_env(env(&[("FARO_CONFIG", a.to_str().unwrap())])).unwrap();
    let flags = Overrides {
        config_file: Some(b),
        ..Overrides::default()
    };
    assert_eq!(
        Config::resolve(&flags, &env).unwrap().output_dir,
        PathBuf::from("/b")
    );
}

#[test]
fn bad_environment_values_name_the_variable() {
    let cases = [
        (
            "FARO_LOG_LEVEL",
            "loud",
            r#"FARO_LOG_LEVEL: "loud" is not a log level; expected one of debug, info, warning, warn, error, fatal"#,
        ),
        (
            "FARO_AUTO_SHUTDOWN_SEC",
            "soon",
            r#"FARO_AUTO_SHUTDOWN_SEC: "soon" is not a number of seconds; expected a whole number such as 300"#,
        ),
        (
            "FARO_JSON_EXPORT",
            "y",
            r#"FARO_JSON_EXPORT: "y" is not a boolean; expected true or false"#,
        ),
    ];
    for (name, value, expected) in cases {
        let e = Overrides::from_env(env(&[(name, value)])).unwrap_err();
        assert_eq!(e.to_string(), expected);
    }
}

#[test]
fn auto_shutdown_zero_means_never() {
    let mut c = Config::from_yaml("auto_shutdown_sec: 30\n", "x").unwrap();
    c.apply(&Overrides {
        auto_shutdown_sec: Some(0),
        ..Overrides::default()
    });
    assert_eq!(c.auto_shutdown_sec, None);
}
