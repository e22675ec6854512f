//! Everything after a match: routing `MatchedEvent`s by GVR to resource
//! workers over bounded, per-object-ordered queues, the built-in sinks
//! (JSON lines, text log) and the loader of plugins speaking
//! `faro-plugin-abi`.
//!
//! It meets `faro-watch` only through `faro_core::EventHandler`.
//!
//! Not built yet: this crate holds only its place in the workspace.
