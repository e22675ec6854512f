//! The only types a Faro plugin shares with its host: `#[repr(C)]` structs,
//! the two exported symbols and the ABI version number. No dependencies, so
//! host and plugin can be built by different compilers and crate graphs.
//!
//! Not built yet: this crate holds only its place in the workspace.
