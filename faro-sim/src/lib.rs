//! A Kubernetes-compatible API server held in memory, with fault injection,
//! for Faro's tests, its demo and its benchmarks.
//!
//! It uses `faro-filter` to evaluate selectors exactly as Faro does, and is
//! driven by kubectl and kube-rs in tests as a real server would be.
//!
//! Not built yet: this crate holds only its place in the workspace.
