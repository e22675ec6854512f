//! How the program ends: exit codes and the one line on stderr.

use std::fmt;
use std::process::ExitCode;

/// A failure with the exit code it earns.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags, configuration or GVR: exit 2.
    Usage(String),
    /// The server cannot be reached, refuses, or something broke: exit 1.
    Runtime(String),
}

impl Failure {
    pub fn code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime(_) => ExitCode::from(1),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) => f.write_str(m),
        }
    }
}

/// Maps a watch-layer error to its exit code: a GVR the server does not
/// have is the user's mistake (2); anything else happened at run time (1).
pub fn from_watch(error: faro_watch::WatchError) -> Failure {
    use faro_watch::WatchError as E;
    match error {
        E::UnknownResource { .. }
        | E::NotWatchable { .. }
        | E::ScopeMismatch { .. }
        | E::Config(_) => Failure::Usage(error.to_string()),
        E::Discovery {
            api_version,
            source,
        } => Failure::Runtime(format!(
            "cannot reach the API server (discovery of {api_version}): {}",
            one_line(&source.to_string())
        )),
        other => Failure::Runtime(other.to_string()),
    }
}

/// The first line of a message, so that every failure is one line.
pub fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}
