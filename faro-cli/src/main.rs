//! The `faro` program.
fn main() {}
