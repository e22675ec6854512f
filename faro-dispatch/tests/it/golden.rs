//! The plugin ABI's wire formats and layout, fixed by golden files: an
//! accidental change to the envelope, the manifest or the `repr(C)` types
//! fails here. A deliberate change updates the files and `ABI_VERSION`.

use std::path::PathBuf;

use faro_core::EventType;
use faro_dispatch::{PluginManifest, envelope};
use faro_plugin_abi as abi;
use serde_json::json;

use crate::event_with;

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
