//! Client-side regular expressions: name patterns, namespace matchers, label patterns.
//!
//! Patterns use unanchored `is_match` semantics: `web` matches `my-web-1`;
//! write `^web$` to anchor.

use std::fmt;

use regex::{Regex, RegexSet};

use crate::FilterError;
use crate::label_selector::{Labels, is_label_name};

/// One compiled regular expression that remembers its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`; the error is one line naming what is wrong.
    pub fn new(source: &str) -> Result<Self, FilterError> {
        Regex::new(source)
            .map(|regex| Self { regex })
            .map_err(|e| FilterError::Pattern(regex_error_line(&e)))
    }

    /// The text the pattern was compiled from.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Unanchored match. Allocates nothing once the calling thread has used the pattern.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// How many capture groups the pattern declares (the whole match not counted).
    pub fn group_count(&self) -> usize {
        self.regex.captures_len() - 1
    }

    /// The first capture group of the first match, or the whole match when
    /// the pattern has no group; `None` when it does not match.
    pub fn capture<'t>(&self, text: &'t str) -> Option<&'t str> {
        if self.group_count() == 0 {
            return self.regex.find(text).map(|m| m.as_str());
        }
        self.regex
            .captures(text)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The regex crate reports syntax errors over several lines with a caret
/// diagram; a configuration error must be one line, so keep its last line.
fn regex_error_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let detail = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or("invalid regular expression"));
    detail.to_string()
}

/// Which namespaces an object may be in: exact names plus regular expressions.
/// The empty matcher accepts every namespace (and cluster-scoped objects).
#[derive(Debug, Clone, Default)]
pub struct NamespaceMatcher {
    names: Vec<String>,
    patterns: Vec<String>,
    set: Option<RegexSet>,
}

impl NamespaceMatcher {
    /// Accepts every namespace.
    pub fn any() -> Self {
        Self::default()
    }

    /// Compiles exact names and patterns. `Err((index, error))` names the failing pattern.
    pub fn new<N, P>(names: N, patterns: P) -> Result<Self, (usize, FilterError)>
    where
        N: IntoIterator,
        N::Item: Into<String>,
        P: IntoIterator,
        P::Item: Into<String>,
    {
        let mut names: Vec<String> = names.into_iter().map(Into::into).collect();
        names.sort();
        names.dedup();
        let mut patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        for (i, p) in patterns.iter().enumerate() {
            Pattern::new(p).map_err(|e| (i, e))?;
        }
        patterns.sort();
        patterns.dedup();
        let set = if patterns.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(&patterns)
                    .map_err(|e| (0, FilterError::Pattern(regex_error_line(&e))))?,
            )
        };
        Ok(Self {
            names,
            patterns,
            set,
        })
    }

    /// True when every namespace is accepted.
    pub fn is_any(&self) -> bool {
        self.names.is_empty() && self.set.is_none()
    }

    /// The exact names, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The pattern sources, sorted.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether an object in `namespace` (`None` for cluster-scoped) is accepted.
    pub fn matches(&self, namespace: Option<&str>) -> bool {
        if self.is_any() {
            return true;
        }
        let Some(namespace) = namespace else {
            return false;
        };
        self.names
            .binary_search_by(|n| n.as_str().cmp(namespace))
            .is_ok()
            || self.set.as_ref().is_some_and(|s| s.is_match(namespace))
    }
}

impl PartialEq for NamespaceMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names && self.patterns == other.patterns
    }
}

impl Eq for NamespaceMatcher {}

impl fmt::Display for NamespaceMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for name in &self.names {
            if !first {
                f.write_str("|")?;
            }
            first = false;
            f.write_str(name)?;
        }
        for pattern in &self.patterns {
            if !first {
                f.write_str("|")?;
            }
            first = false;
            write!(f, "/{pattern}/")?;
        }
        Ok(())
    }
}

/// `key=regex`: the object carries label `key` and its value matches `regex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelPattern {
    key: String,
    pattern: Pattern,
}

impl LabelPattern {
    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Whether `labels` carry the key with a matching value.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        labels
            .label(&self.key)
            .is_some_and(|v| self.pattern.is_match(v))
    }

    /// Parses `key=regex[,key=regex...]`.
    ///
    /// A comma separates two patterns only where the text after it starts a
    /// new `key=`, so a regex may itself contain commas (`a{1,3}`).
    pub fn parse_list(text: &str) -> Result<Vec<LabelPattern>, FilterError> {
        let mut out = Vec::new();
        for item in split_label_patterns(text) {
            let Some((key, regex)) = item.split_once('=') else {
                return Err(FilterError::LabelPattern(format!(
                    "{item:?} has no \"=\"; expected key=regex"
                )));
            };
            let key = key.trim();
            if !is_label_key(key) {
                return Err(FilterError::LabelPattern(format!(
                    "{key:?} is not a label key; expected key=regex with a Kubernetes label key"
                )));
            }
            let pattern = Pattern::new(regex)?;
            out.push(LabelPattern {
                key: key.to_string(),
                pattern,
            });
        }
        if out.is_empty() {
            return Err(FilterError::LabelPattern(
                "empty label pattern; expected key=regex".to_string(),
            ));
        }
        Ok(out)
    }
}

impl fmt::Display for LabelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.pattern)
    }
}

fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => crate::is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

fn split_label_patterns(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ',' && starts_with_key_assignment(&text[i + 1..]) {
            items.push(&text[start..i]);
            start = i + 1;
        }
    }
    items.push(&text[start..]);
    items.retain(|item| !item.trim().is_empty());
    items
}

fn starts_with_key_assignment(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.split_once('=')
        .is_some_and(|(key, _)| is_label_key(key.trim_end()))
}
