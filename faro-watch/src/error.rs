//! What can go wrong when resolving and starting watches.

use faro_core::Scope;

/// Why a watch could not be set up. Each message is one line naming the GVR.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The group/version is served but has no resource of that name.
    #[error("{gvr}: the server has no such resource{}", did_you_mean(.suggestions))]
    UnknownResource {
        /// The GVR asked for.
        gvr: String,
        /// Close matches, as GVR strings.
        suggestions: Vec<String>,
    },
    /// The resource does not support `watch`.
    #[error(
        "{gvr}: the resource cannot be watched (verbs: {verbs}); expected one with the watch verb"
    )]
    NotWatchable {
        /// The GVR asked for.
        gvr: String,
        /// The verbs it supports, comma-separated.
        verbs: String,
    },
    /// The configuration says one scope and discovery another.
    #[error(
        "{gvr}: scope is {configured} in the configuration but the server serves it {discovered}"
    )]
    ScopeMismatch {
        /// The GVR asked for.
        gvr: String,
        /// The scope written in the configuration.
        configured: Scope,
        /// The scope discovery reports.
        discovered: Scope,
    },
    /// Discovery itself failed (connection, authorisation, server error).
    #[error("discovery of {api_version} failed: {source}")]
    Discovery {
        /// The group/version being discovered.
        api_version: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The rules do not form a valid configuration.
    #[error("{0}")]
    Config(String),
    /// The controller was started twice, or used after `stop()`.
    #[error("the controller is {0}")]
    State(&'static str),
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        many => format!("; did you mean one of {}?", many.join(", ")),
    }
}
