//! The plugin ABI's wire formats and layout, fixed by golden files: an
//! accidental change to the envelope, the manifest or the `repr(C)` types
//! fails here. A deliberate change updates the files and `ABI_VERSION`.

use std::path::PathBuf;

use faro_core::EventType;
use faro_dispatch::{PluginManifest, envelope, log_envelope};
use faro_plugin_abi as abi;
use serde_json::json;

use crate::{event_with, log_line};

fn golden(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim_end()
        .to_owned()
}

fn sample() -> faro_core::MatchedEvent {
    event_with(
        EventType::Updated,
        "apps/v1/deployments",
        Some("shop"),
        "web",
        4711,
        json!({
            "kind": "Deployment",
            "metadata": { "labels": { "app": "web" } },
            "spec": { "replicas": 3 }
        }),
    )
}

#[test]
fn the_event_envelope_is_byte_for_byte_v1() {
    let bytes = envelope(&sample());
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        golden("envelope-v1.json")
    );
}

#[test]
fn the_sdk_reads_the_envelope_the_host_writes() {
    let event: faro_plugin_sdk::Event = serde_json::from_str(&golden("envelope-v1.json")).unwrap();
    assert_eq!(event.v, abi::ENVELOPE_VERSION);
    assert_eq!(
        (
            event.event_type.as_str(),
            event.gvr.as_str(),
            event.namespace.as_deref(),
            event.name.as_str()
        ),
        ("UPDATED", "apps/v1/deployments", Some("shop"), "web")
    );
    assert_eq!(event.resource_version, "4711");
    assert_eq!(event.object["spec"]["replicas"], 3);
    assert!(!event.inferred);
}

#[test]
fn the_manifest_format_is_v1() {
    let manifest = faro_plugin_sdk::Manifest::new(
        "pod-lifecycle",
        "1.2.3",
        ["v1/pods", "apps/v1/deployments"],
    );
    let text = serde_json::to_string(&manifest).unwrap();
    assert_eq!(text, golden("manifest-v1.json"));
    let (parsed, _) = PluginManifest::parse(&text).unwrap();
    assert_eq!(parsed.name, "pod-lifecycle");
    assert_eq!(
        PluginManifest::parse(r#"{"name":"Bad Name","version":"1","gvrs":["*"]}"#).unwrap_err(),
        "name \"Bad Name\" is not a plugin name; expected lowercase letters, digits and '-'"
    );
}

#[test]
fn the_log_envelope_is_byte_for_byte_v1_and_the_sdk_reads_it() {
    let record = faro_core::LogRecord::builder(
        log_line("app", "x").source().clone(),
        2,
        "2026-12-01T10:00:00.123456789Z",
        "GET /healthz 200 \"ok\"",
    )
    .observed_at(jiff::Timestamp::from_second(1_800_000_000).unwrap())
    .previous(true)
    .build();
    let text = String::from_utf8(log_envelope(&record)).unwrap();
    assert_eq!(text, golden("envelope-log-v1.json"));
    let line: faro_plugin_sdk::LogLine = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            line.v,
            line.namespace.as_str(),
            line.pod.as_str(),
            line.container.as_str(),
            line.container_type.as_str(),
            line.restart_count,
            line.previous,
            line.truncated,
            line.line.as_str()
        ),
        (
            abi::ENVELOPE_VERSION,
            "shop",
            "web-1",
            "app",
            "regular",
            2,
            true,
            false,
            "GET /healthz 200 \"ok\""
        )
    );
}

#[test]
fn a_manifest_without_records_gets_events_only_and_one_with_logs_gets_both() {
    let (old, _) = PluginManifest::parse(&golden("manifest-v1.json")).unwrap();
    assert!(old.wants_events() && !old.wants_logs());
    let manifest = faro_plugin_sdk::Manifest::new("tail", "1.0.0", ["v1/pods"]).with_logs();
    let text = serde_json::to_string(&manifest).unwrap();
    assert_eq!(text, golden("manifest-logs-v1.json"));
    let (parsed, _) = PluginManifest::parse(&text).unwrap();
    assert!(parsed.wants_events() && parsed.wants_logs());
    let logs_only = serde_json::to_string(
        &faro_plugin_sdk::Manifest::new("tail", "1.0.0", Vec::<String>::new()).logs_only(),
    )
    .unwrap();
    let (parsed, handles) = PluginManifest::parse(&logs_only).unwrap();
    assert!(!parsed.wants_events() && parsed.wants_logs());
    assert_eq!(handles, faro_dispatch::Handles::Only(Vec::new()));
    assert_eq!(
        PluginManifest::parse(r#"{"name":"x","version":"1","gvrs":["*"],"records":["metrics"]}"#)
            .unwrap_err(),
        "records has \"metrics\"; expected events and/or logs"
    );
}

#[test]
fn the_abi_layout_is_v1() {
    use std::mem::{offset_of, size_of};
    let layout = format!(
        "ABI_VERSION {}\nENVELOPE_VERSION {}\nsymbols {} {}\nstatus ok={} bad_config={} failed={} panicked={} invalid_argument={}\n\
         FaroStr size={} ptr@{} len@{}\nErrorBuf size={} ptr@{} cap@{} len@{}\nHost size={} struct_size@{} context@{} log@{}\n\
         PluginV1 size={} struct_size@{} manifest_json@{} instance@{} on_event@{} free@{} shutdown@{}",
        abi::ABI_VERSION,
        abi::ENVELOPE_VERSION,
        String::from_utf8_lossy(abi::SYMBOL_ABI_VERSION).trim_end_matches('\0'),
        String::from_utf8_lossy(abi::SYMBOL_INIT_V1).trim_end_matches('\0'),
        abi::STATUS_OK,
        abi::STATUS_BAD_CONFIG,
        abi::STATUS_FAILED,
        abi::STATUS_PANICKED,
        abi::STATUS_INVALID_ARGUMENT,
        size_of::<abi::FaroStr>(),
        offset_of!(abi::FaroStr, ptr),
        offset_of!(abi::FaroStr, len),
        size_of::<abi::ErrorBuf>(),
        offset_of!(abi::ErrorBuf, ptr),
        offset_of!(abi::ErrorBuf, cap),
        offset_of!(abi::ErrorBuf, len),
        size_of::<abi::Host>(),
        offset_of!(abi::Host, struct_size),
        offset_of!(abi::Host, context),
        offset_of!(abi::Host, log),
        size_of::<abi::PluginV1>(),
        offset_of!(abi::PluginV1, struct_size),
        offset_of!(abi::PluginV1, manifest_json),
        offset_of!(abi::PluginV1, instance),
        offset_of!(abi::PluginV1, on_event),
        offset_of!(abi::PluginV1, free),
        offset_of!(abi::PluginV1, shutdown),
    );
    assert_eq!(layout, golden("abi-v1.txt"));
}
