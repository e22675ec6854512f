//! A test plugin that panics on demand: on every event whose object name
//! contains its `panic_on` setting (default `panic`). Other events are
//! counted in its `output` file when one is set, one line per event, after
//! `sleep_ms` milliseconds when set (a slow worker).

use std::fs::File;
use std::io::Write;

use faro_plugin_sdk::serde_json::Value;
use faro_plugin_sdk::{Event, Host, Manifest, Plugin, export_plugin};

/// Panics when told to.
pub struct TestPanic {
    panic_on: String,
    out: Option<File>,
    sleep: std::time::Duration,
}

impl Plugin for TestPanic {
    fn manifest() -> Manifest {
        Manifest::new("test-panic", env!("CARGO_PKG_VERSION"), ["*"])
    }

    fn init(config: Value, _host: Host) -> Result<Self, String> {
        let out = match config["output"].as_str() {
            Some(path) => Some(File::create(path).map_err(|e| format!("output {path}: {e}"))?),
            None => None,
        };
        Ok(Self {
            panic_on: config["panic_on"].as_str().unwrap_or("panic").to_owned(),
            out,
            sleep: std::time::Duration::from_millis(config["sleep_ms"].as_u64().unwrap_or(0)),
        })
    }

    fn on_event(&mut self, event: &Event) -> Result<(), String> {
        assert!(
            !event.name.contains(&self.panic_on),
            "asked to panic on {}",
            event.name
        );
        std::thread::sleep(self.sleep);
        if let Some(out) = &mut self.out {
            writeln!(out, "{} {}", event.event_type, event.name).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

export_plugin!(TestPanic);
