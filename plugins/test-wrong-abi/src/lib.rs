//! A test plugin built against ABI version 2, which this Faro does not
//! speak: the host must refuse it before calling anything else.

use faro_plugin_sdk::serde_json::Value;
use faro_plugin_sdk::{Event, Host, Manifest, Plugin, export_plugin};

/// Never initialised by a correct host.
pub struct TestWrongAbi;

impl Plugin for TestWrongAbi {
    fn manifest() -> Manifest {
        Manifest::new("test-wrong-abi", env!("CARGO_PKG_VERSION"), ["*"])
    }

    fn init(_config: Value, _host: Host) -> Result<Self, String> {
        Ok(Self)
    }

    fn on_event(&mut self, _event: &Event) -> Result<(), String> {
        Ok(())
    }
}

export_plugin!(TestWrongAbi, abi_version = 2);
