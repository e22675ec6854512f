//! Several client filters OR-ed together, evaluated through one index.
//!
//! A watch shared by many rules carries one [`ClientFilter`] per rule, and an
//! object passes when any of them accepts it. Checking them one by one costs
//! a namespace match per rule; [`FilterSet`] instead puts every exact
//! namespace in one map, every namespace pattern in one multi-pattern regex
//! and, for rules open to every namespace, every name pattern in another, so
//! one scan of the namespace (and one of the name) finds the few rules worth
//! checking further, however many rules there are.

use std::cell::RefCell;
use std::collections::HashMap;

use regex_automata::{Input, MatchKind, PatternSet, meta};

use crate::{ClientFilter, ObjectView};

/// Any of several [`ClientFilter`]s; built once, evaluated per object without allocating.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    filters: Vec<ClientFilter>,
    index: Index,
}

#[derive(Debug, Clone, Default)]
enum Index {
    /// No filter: nothing passes.
    #[default]
    Empty,
    /// One filter is unconstrained: everything passes.
    All,
    /// The combined regexes could not be built (a size limit): filter by filter.
    Linear,
    Indexed(Box<Indexed>),
}

#[derive(Debug, Clone)]
struct Indexed {
    /// Exact namespace → the namespace-constrained filters naming it.
    exact: HashMap<String, Vec<u32>>,
    /// Every namespace pattern, and for each the filters using it.
    namespace_patterns: Option<Multi>,
    /// The name patterns of filters open to every namespace.
    name_patterns: Option<Multi>,
    /// Filters open to every namespace without a name pattern: labels decide.
    labels_only: Vec<u32>,
}

#[derive(Debug, Clone)]
struct Multi {
    /// Leftmost-first: finds one matching pattern fast.
    first: meta::Regex,
    /// Every pattern that matches, for when the first one's filters refuse.
    all: meta::Regex,
    filters: Vec<Vec<u32>>,
}

thread_local! {
    /// Which patterns matched, reused across evaluations on this thread.
    static MATCHED: RefCell<PatternSet> = RefCell::new(PatternSet::new(0));
}

impl Multi {
    fn build(patterns: Vec<(String, u32)>) -> Result<Option<Self>, ()> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut sources: Vec<String> = Vec::new();
        let mut filters: Vec<Vec<u32>> = Vec::new();
        for (source, filter) in patterns {
            match sources.iter().position(|s| *s == source) {
                Some(i) => filters[i].push(filter),
                None => {
                    sources.push(source);
                    filters.push(vec![filter]);
                }
            }
        }
        let first = meta::Regex::new_many(&sources).map_err(|_| ())?;
        let all = meta::Regex::builder()
            .configure(meta::Regex::config().match_kind(MatchKind::All))
            .build_many(&sources)
            .map_err(|_| ())?;
        Ok(Some(Self {
            first,
            all,
            filters,
        }))
    }

    /// Calls `check` for each filter owning a pattern that matches `text`,
    /// until one returns true.
    fn any(&self, text: &str, mut check: impl FnMut(u32) -> bool) -> bool {
        let input = Input::new(text);
        let Some(found) = self.first.search(&input) else {
            return false;
        };
        let first = found.pattern().as_usize();
        if self.filters[first].iter().any(|&f| check(f)) {
            return true;
        }
        if self.filters.len() == 1 {
            return false;
        }
        MATCHED.with(|cell| {
            let mut matched = cell.borrow_mut();
            if matched.capacity() < self.all.pattern_len() {
                *matched = PatternSet::new(self.all.pattern_len());
            } else {
                matched.clear();
            }
            self.all.which_overlapping_matches(&input, &mut matched);
            matched
                .iter()
                .map(|p| p.as_usize())
                .filter(|&p| p != first)
                .any(|p| self.filters[p].iter().any(|&f| check(f)))
        })
    }
}

impl FilterSet {
    /// Indexes `filters`. An empty list accepts nothing; a list holding an
    /// unconstrained filter accepts everything.
    pub fn new(filters: Vec<ClientFilter>) -> Self {
        let index = if filters.is_empty() {
            Index::Empty
        } else if filters.iter().any(ClientFilter::is_unconstrained) {
            Index::All
        } else if filters.len() == 1 {
            Index::Linear
        } else {
            Indexed::build(&filters).map_or(Index::Linear, |i| Index::Indexed(Box::new(i)))
        };
        Self { filters, index }
    }

    /// The filters, in the order given.
    pub fn filters(&self) -> &[ClientFilter] {
        &self.filters
    }

    /// True when every object passes.
    pub fn accepts_all(&self) -> bool {
        matches!(self.index, Index::All)
    }

    /// Whether any filter accepts `object`; the same answer as
    /// `filters().iter().any(|f| f.matches(object))`.
    pub fn matches(&self, object: &ObjectView<'_>) -> bool {
        match &self.index {
            Index::Empty => false,
            Index::All => true,
            Index::Linear => self.filters.iter().any(|f| f.matches(object)),
            Index::Indexed(index) => index.matches(&self.filters, object),
        }
    }
}

impl Indexed {
    fn build(filters: &[ClientFilter]) -> Result<Self, ()> {
        let mut exact: HashMap<String, Vec<u32>> = HashMap::new();
        let mut namespace_patterns = Vec::new();
        let mut name_patterns = Vec::new();
        let mut labels_only = Vec::new();
        for (i, filter) in filters.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| ())?;
            if filter.namespaces.is_any() {
                match &filter.name {
                    Some(name) => name_patterns.push((name.as_str().to_string(), id)),
                    None => labels_only.push(id),
                }
                continue;
            }
            for name in filter.namespaces.names() {
                exact.entry(name.clone()).or_default().push(id);
            }
            for pattern in filter.namespaces.patterns() {
                namespace_patterns.push((pattern.clone(), id));
            }
        }
        Ok(Self {
            exact,
            namespace_patterns: Multi::build(namespace_patterns)?,
            name_patterns: Multi::build(name_patterns)?,
            labels_only,
        })
    }

    fn matches(&self, filters: &[ClientFilter], object: &ObjectView<'_>) -> bool {
        let filter = |id: u32| &filters[id as usize];
        if let Some(namespace) = object.namespace {
            if !self.exact.is_empty()
                && self.exact.get(namespace).is_some_and(|ids| {
                    ids.iter()
                        .any(|&id| filter(id).matches_name_and_labels(object))
                })
            {
                return true;
            }
            if self
                .namespace_patterns
                .as_ref()
                .is_some_and(|m| m.any(namespace, |id| filter(id).matches_name_and_labels(object)))
            {
                return true;
            }
        }
        let labels_match = |id: u32| filter(id).matches_labels(object);
        self.labels_only.iter().any(|&id| labels_match(id))
            || self
                .name_patterns
                .as_ref()
                .is_some_and(|m| m.any(object.name, labels_match))
    }
}

impl PartialEq for FilterSet {
    fn eq(&self, other: &Self) -> bool {
        self.filters == other.filters
    }
}

impl Eq for FilterSet {}

impl From<Vec<ClientFilter>> for FilterSet {
    fn from(filters: Vec<ClientFilter>) -> Self {
        Self::new(filters)
    }
}
