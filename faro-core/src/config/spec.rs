//! Resource rules (what the configuration asks for) and watch specs (what
//! Faro opens on the server), and the normalisation from one to the other.

use std::collections::BTreeMap;
use std::fmt;

use faro_filter::{
    ClientFilter, FieldSelector, FilterSet, LabelPattern, LabelSelector, NamespaceMatcher,
    ObjectView, Pattern, ServerSelectors,
};

use super::error::ConfigError;
use crate::{Gvr, Scope};

/// Which namespaces a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NamespaceSelection {
    /// Every namespace (and the only choice for cluster-scoped resources).
    #[default]
    All,
    /// Exactly these namespaces: one watch each.
    Names(Vec<String>),
    /// Names and patterns checked by Faro over one watch across all namespaces.
    Matching(NamespaceMatcher),
}

/// One thing the configuration asks to watch, whichever format it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRule {
    /// The resource type.
    pub gvr: Gvr,
    /// The declared scope; `None` leaves it to discovery.
    pub scope: Option<Scope>,
    /// The namespaces covered.
    pub namespaces: NamespaceSelection,
    /// Sent to the server.
    pub label_selector: LabelSelector,
    /// Sent to the server; includes `metadata.name=` from `name_selector`.
    pub field_selector: FieldSelector,
    /// Checked by Faro on `metadata.name`.
    pub name_pattern: Option<Pattern>,
    /// Checked by Faro on label values.
    pub label_patterns: Vec<LabelPattern>,
    /// How this GVR's UPDATEDs are treated; `None` takes the top-level
    /// `updates:` block. Rules of one GVR that set one must agree.
    pub updates: Option<super::UpdatePolicy>,
    /// Where the rule was written, such as `resources[2]`, for messages.
    pub origin: String,
}

impl ResourceRule {
    /// A rule for every object of `gvr` in every namespace.
    pub fn new(gvr: Gvr) -> Self {
        Self {
            scope: gvr.known_scope(),
            gvr,
            namespaces: NamespaceSelection::All,
            label_selector: LabelSelector::everything(),
            field_selector: FieldSelector::everything(),
            name_pattern: None,
            label_patterns: Vec::new(),
            updates: None,
            origin: String::new(),
        }
    }

    /// Restricts the rule to exact namespaces.
    #[must_use]
    pub fn in_namespaces<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.namespaces = NamespaceSelection::Names(names.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the server-side label selector.
    #[must_use]
    pub fn with_labels(mut self, selector: LabelSelector) -> Self {
        self.label_selector = selector;
        self
    }

    /// Sets the server-side field selector.
    #[must_use]
    pub fn with_fields(mut self, selector: FieldSelector) -> Self {
        self.field_selector = selector;
        self
    }

    /// Sets the client-side name pattern.
    #[must_use]
    pub fn with_name_pattern(mut self, pattern: Pattern) -> Self {
        self.name_pattern = Some(pattern);
        self
    }

    fn client_filter(&self, namespaces: NamespaceMatcher) -> ClientFilter {
        ClientFilter {
            namespaces,
            name: self.name_pattern.clone(),
            labels: self.label_patterns.clone(),
        }
    }

    fn server(&self, namespace: Option<String>) -> ServerSelectors {
        ServerSelectors {
            namespace,
            labels: self.label_selector.clone(),
            fields: self.field_selector.clone(),
        }
    }
}

/// One watch on the API server and the client-side filters of every rule it serves.
///
/// Faro opens exactly one watch per distinct (GVR, namespace, label selector,
/// field selector); an object passes when any of `filters` accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// The resource type.
    pub gvr: Gvr,
    /// The declared scope; `None` leaves it to discovery.
    pub scope: Option<Scope>,
    /// What the server evaluates.
    pub server: ServerSelectors,
    /// What Faro evaluates; never empty, and `[*]` when everything passes.
    pub filters: Vec<ClientFilter>,
}

impl WatchSpec {
    /// Whether an object the server sent for this watch passes the client-side
    /// filters, checked filter by filter; to check many objects, index them
    /// once with [`WatchSpec::filter_set`].
    pub fn matches(&self, object: &ObjectView<'_>) -> bool {
        self.filters.iter().any(|f| f.matches(object))
    }

    /// The client-side filters indexed for evaluation per object, however many rules share the watch.
    pub fn filter_set(&self) -> FilterSet {
        FilterSet::new(self.filters.clone())
    }

    /// True when Faro needs no client-side check at all.
    pub fn is_server_only(&self) -> bool {
        self.filters.iter().any(ClientFilter::is_unconstrained)
    }
}

impl fmt::Display for WatchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.gvr)?;
        if let Some(scope) = self.scope {
            write!(f, " ({scope})")?;
        }
        match (&self.server.namespace, self.scope) {
            (Some(ns), _) => write!(f, " namespace={ns}")?,
            (None, Some(Scope::Cluster)) => {}
            (None, _) => f.write_str(" namespace=*")?,
        }
        if !self.server.labels.is_empty() {
            write!(f, " labels={:?}", self.server.labels.to_string())?;
        }
        if !self.server.fields.is_empty() {
            write!(f, " fields={:?}", self.server.fields.to_string())?;
        }
        f.write_str(" filter=")?;
        for (i, filter) in self.filters.iter().enumerate() {
            if i > 0 {
                f.write_str(" OR ")?;
            }
            write!(f, "[{filter}]")?;
        }
        Ok(())
    }
}

/// Turns rules into the smallest set of watches that serves them all.
///
/// - Exact namespace names give one watch per namespace; patterns, or no
///   namespace keys at all, give one watch across namespaces filtered here.
/// - Rules that need the same watch share it, their client-side filters OR-ed;
///   identical filters are kept once, and a filter that accepts everything
///   absorbs the others.
/// - A per-namespace watch is folded into a watch across all namespaces with
///   the same selectors, so no object is delivered twice.
/// - Two rules that declare different scopes for one GVR are an error.
pub fn normalise(rules: &[ResourceRule]) -> Result<Vec<WatchSpec>, ConfigError> {
    let mut scopes: BTreeMap<&Gvr, (Scope, &str)> = BTreeMap::new();
    for rule in rules {
        if let Some(scope) = rule.scope {
            match scopes.get(&rule.gvr) {
                Some((seen, origin)) if *seen != scope => {
                    return Err(ConfigError::invalid(
                        format!("{}.scope", rule.origin),
                        format!(
                            "{} is {scope} here but {seen} in {origin}; expected one scope per GVR",
                            rule.gvr
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    scopes.insert(&rule.gvr, (scope, &rule.origin));
                }
            }
        }
    }

    let mut watches: BTreeMap<(Gvr, ServerSelectors), Vec<ClientFilter>> = BTreeMap::new();
    for rule in rules {
        let namespaced = rule.scope != Some(Scope::Cluster);
        match &rule.namespaces {
            NamespaceSelection::Names(names) if namespaced => {
                for ns in names {
                    watches
                        .entry((rule.gvr.clone(), rule.server(Some(ns.clone()))))
                        .or_default()
                        .push(rule.client_filter(NamespaceMatcher::any()));
                }
            }
            NamespaceSelection::Matching(matcher) if namespaced => watches
                .entry((rule.gvr.clone(), rule.server(None)))
                .or_default()
                .push(rule.client_filter(matcher.clone())),
            _ => watches
                .entry((rule.gvr.clone(), rule.server(None)))
                .or_default()
                .push(rule.client_filter(NamespaceMatcher::any())),
        }
    }

    // Fold per-namespace watches into a watch across namespaces with the same selectors.
    let named: Vec<(Gvr, ServerSelectors)> = watches
        .keys()
        .filter(|(_, server)| server.namespace.is_some())
        .cloned()
        .collect();
    for key in named {
        let all = (
            key.0.clone(),
            ServerSelectors {
                namespace: None,
                ..key.1.clone()
            },
        );
        if !watches.contains_key(&all) {
            continue;
        }
        let namespace = key.1.namespace.clone().unwrap_or_default();
        let folded = watches.remove(&key).unwrap_or_default();
        let target = watches.entry(all).or_default();
        for mut filter in folded {
            filter.namespaces = NamespaceMatcher::new([namespace.clone()], Vec::<String>::new())
                .unwrap_or_default();
            target.push(filter);
        }
    }

    Ok(watches
        .into_iter()
        .map(|((gvr, server), filters)| WatchSpec {
            scope: scopes.get(&gvr).map(|(s, _)| *s),
            gvr,
            server,
            filters: simplify(filters),
        })
        .collect())
}

fn simplify(filters: Vec<ClientFilter>) -> Vec<ClientFilter> {
    if filters.iter().any(ClientFilter::is_unconstrained) {
        return vec![ClientFilter::default()];
    }
    let mut kept: Vec<ClientFilter> = Vec::with_capacity(filters.len());
    for filter in filters {
        if !kept.contains(&filter) {
            kept.push(filter);
        }
    }
    kept.sort_by_cached_key(ToString::to_string);
    kept
}
