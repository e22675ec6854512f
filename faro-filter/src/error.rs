//! Errors raised while compiling selectors and patterns.

/// Why a selector or pattern could not be compiled.
///
/// The message is one line and says what was expected; the caller adds
/// where the text came from (a configuration key, a query parameter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A label selector that is not valid Kubernetes syntax.
    #[error("{0}")]
    LabelSelector(String),
    /// A field selector that is not valid Kubernetes syntax.
    #[error("{0}")]
    FieldSelector(String),
    /// A regular expression that does not compile.
    #[error("{0}")]
    Pattern(String),
    /// A `key=regex` label pattern without a key or without `=`.
    #[error("{0}")]
    LabelPattern(String),
}
