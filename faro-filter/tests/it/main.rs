//! Integration tests of faro-filter, linked as one binary.

mod allocation;
mod field_selector;
mod label_selector;
mod patterns;
mod set;

use std::collections::BTreeMap;

/// A label map from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
