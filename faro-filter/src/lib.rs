//! Compiled filters for Kubernetes objects: label and field selectors with the
//! exact Kubernetes syntax and semantics, namespace matchers, name and label
//! regular expressions, and the split of a filter into the part the API server
//! evaluates and the part Faro must check itself.
//!
//! This crate is the bottom of Faro's stack: it knows nothing of the API
//! server or of Faro's configuration. `faro-core` compiles the configuration
//! into these types once, `faro-watch` evaluates them on every event, and
//! `faro-sim` uses the selectors to answer list and watch requests.
//! Evaluating a compiled filter allocates nothing.
//!
//! ```
//! use std::collections::BTreeMap;
//! use faro_filter::{ClientFilter, Filter, LabelSelector, ObjectView, Pattern, ServerSelectors};
//!
//! let filter = Filter {
//!     server: ServerSelectors {
//!         labels: LabelSelector::parse("app in (web,api),tier!=cache").unwrap(),
//!         ..ServerSelectors::default()
//!     },
//!     client: ClientFilter {
//!         name: Some(Pattern::new("^web-").unwrap()),
//!         ..ClientFilter::default()
//!     },
//! };
//! let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
//! let object = ObjectView { namespace: Some("prod"), name: "web-1", labels: Some(&labels) };
//! assert!(filter.matches(&object));
//! assert_eq!(filter.server.labels.to_string(), "app in (api,web),tier!=cache");
//! ```

mod error;
mod field_selector;
mod label_selector;
mod pattern;
mod set;

use std::collections::BTreeMap;
use std::fmt;

pub use error::FilterError;
pub use field_selector::{FieldOperator, FieldSelector, FieldTerm, Fields};
pub use label_selector::{
    LabelSelector, Labels, Operator, Requirement, is_dns_label, is_dns_subdomain,
};
pub use pattern::{LabelPattern, NamespaceMatcher, Pattern};
pub use set::FilterSet;

/// The parts of an object a filter looks at, borrowed from wherever the object lives.
#[derive(Debug, Clone, Copy)]
pub struct ObjectView<'a> {
    /// `metadata.namespace`; `None` for cluster-scoped objects.
    pub namespace: Option<&'a str>,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.labels`.
    pub labels: Option<&'a BTreeMap<String, String>>,
}

impl Labels for ObjectView<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.label(key)
    }
}

impl Fields for ObjectView<'_> {
    fn field(&self, path: &str) -> Option<&str> {
        match path {
            "metadata.name" => Some(self.name),
            "metadata.namespace" => Some(self.namespace.unwrap_or("")),
            _ => None,
        }
    }
}

/// What the API server evaluates for a watch: the namespace in the request
/// path and the `labelSelector` / `fieldSelector` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerSelectors {
    /// One namespace, or `None` for all namespaces (and for cluster-scoped resources).
    pub namespace: Option<String>,
    /// The label selector sent as `labelSelector`.
    pub labels: LabelSelector,
    /// The field selector sent as `fieldSelector`.
    pub fields: FieldSelector,
}

impl ServerSelectors {
    /// Whether the server would return `object` for these selectors.
    pub fn matches(&self, object: &ObjectView<'_>) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| object.namespace == Some(ns))
            && self.labels.matches(object)
            && self.fields.matches(object)
    }
}

impl fmt::Display for ServerSelectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "namespace={ns}")?,
            None => f.write_str("namespace=*")?,
        }
        if !self.labels.is_empty() {
            write!(f, " labelSelector={:?}", self.labels.to_string())?;
        }
        if !self.fields.is_empty() {
            write!(f, " fieldSelector={:?}", self.fields.to_string())?;
        }
        Ok(())
    }
}

/// What Faro checks itself, after the server: namespace names and patterns
/// (for watches across namespaces), a name pattern and label patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter {
    /// Namespaces an object may be in; the empty matcher accepts all.
    pub namespaces: NamespaceMatcher,
    /// A regular expression on `metadata.name`.
    pub name: Option<Pattern>,
    /// `key=regex` patterns on label values, all of which must match.
    pub labels: Vec<LabelPattern>,
}

impl ClientFilter {
    /// True when the filter accepts every object.
    pub fn is_unconstrained(&self) -> bool {
        self.namespaces.is_any() && self.name.is_none() && self.labels.is_empty()
    }

    /// Whether `object` passes: namespace, then name pattern, then label patterns.
    pub fn matches(&self, object: &ObjectView<'_>) -> bool {
        self.namespaces.matches(object.namespace) && self.matches_name_and_labels(object)
    }

    pub(crate) fn matches_name_and_labels(&self, object: &ObjectView<'_>) -> bool {
        self.name.as_ref().is_none_or(|p| p.is_match(object.name)) && self.matches_labels(object)
    }

    pub(crate) fn matches_labels(&self, object: &ObjectView<'_>) -> bool {
        self.labels.iter().all(|p| p.matches(object))
    }
}

impl fmt::Display for ClientFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unconstrained() {
            return f.write_str("*");
        }
        let mut parts = Vec::new();
        if !self.namespaces.is_any() {
            parts.push(format!("namespace~{}", self.namespaces));
        }
        if let Some(name) = &self.name {
            parts.push(format!("name~/{name}/"));
        }
        for label in &self.labels {
            parts.push(format!("label~{}=/{}/", label.key(), label.pattern()));
        }
        f.write_str(&parts.join(" "))
    }
}

/// A complete filter: the server's part and the client's part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Evaluated by the API server.
    pub server: ServerSelectors,
    /// Evaluated by Faro.
    pub client: ClientFilter,
}

impl Filter {
    /// Evaluates the whole filter in the order namespace, server-side
    /// selectors, name pattern, label patterns, so the cheapest and most
    /// selective tests run first. Allocates nothing.
    pub fn matches(&self, object: &ObjectView<'_>) -> bool {
        self.client.namespaces.matches(object.namespace)
            && self.server.matches(object)
            && self.client.matches_name_and_labels(object)
    }

    /// The server's part and the client's part, for a watch and its local check.
    pub fn split(self) -> (ServerSelectors, ClientFilter) {
        (self.server, self.client)
    }
}
