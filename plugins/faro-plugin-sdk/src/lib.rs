//! Safe plugin authoring for Faro: a `Plugin` trait and the `export_plugin!`
//! macro that emits the symbols of `faro-plugin-abi`.
//!
//! Not built yet: this crate holds only its place in the workspace.
