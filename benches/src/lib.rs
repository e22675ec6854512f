//! Shared fixtures for Faro's criterion benchmarks.
