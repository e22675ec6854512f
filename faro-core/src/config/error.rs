//! Configuration errors: one line each, naming the key path, the value and what was expected.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML.
    #[error("{origin}:{line}:{column}: YAML syntax error: {message}")]
    Syntax {
        /// The file name, or `<config>` for text not read from a file.
        origin: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What the parser found.
        message: String,
    },
    /// A key or value is wrong.
    #[error("{0}")]
    Invalid(Invalid),
}

/// A key or value that is wrong: `path: message`, with the position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key path, such as `resources[2].label_pattern`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// Line and column in the YAML text, when known.
    pub position: Option<(u64, u64)>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// An error at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid(Invalid {
            path: path.into(),
            message: message.into(),
            position: None,
        })
    }
}
