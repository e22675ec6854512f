//! Everything that talks to the Kubernetes API server: discovery, shared
//! ref-counted informers over any GVR, classification of the watch stream
//! into ADDED / UPDATED / DELETED, and resilience to the server's faults.
//!
//! It sits above `faro-core` (vocabulary, configuration) and `faro-filter`
//! (compiled selectors), and hands matched events to every
//! `faro_core::EventHandler` registered on its controller.
//!
//! Not built yet: this crate holds only its place in the workspace.
