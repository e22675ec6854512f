//! The `clusters:` block (several clusters in one process) and `readiness:`.

use std::path::PathBuf;

use super::ResourceRule;
use super::error::ConfigError;
use super::raw::RawCluster;

/// One cluster of the `clusters:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Its name: on every record as `"cluster"`, in metrics as `cluster`.
    pub name: String,
    /// The kubeconfig file; `None`: KUBECONFIG, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None`: the file's current context.
    pub context: Option<String>,
    /// This cluster's own rules, when it sets `resources` or `namespaces`;
    /// `None`: the shared ones.
    pub rules: Option<Vec<ResourceRule>>,
}

/// When a run with several clusters counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// As soon as one cluster is ready (a broken cluster holds nobody back).
    #[default]
    Any,
    /// Once every cluster is ready.
    All,
}

impl std::str::FromStr for Readiness {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(Self::Any),
            "all" => Ok(Self::All),
            other => Err(format!("{other:?} is not a readiness; expected any or all")),
        }
    }
}

/// Whether `name` is a DNS label: lowercase letters, digits and `-`, at most
/// 63, starting and ending with a letter or digit. Cluster names become
/// directory names and metric labels.
pub fn is_cluster_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Checks a cluster's name against the rule and the names before it.
pub(crate) fn check_name(
    origin: &str,
    name: &str,
    before: &[ClusterConfig],
) -> Result<(), ConfigError> {
    if !is_cluster_name(name) {
        return Err(ConfigError::invalid(
            format!("{origin}.name"),
            format!(
                "{name:?} is not a cluster name; expected lowercase letters, digits and '-' (a DNS label)"
            ),
        ));
    }
    if let Some(i) = before.iter().position(|c| c.name == name) {
        return Err(ConfigError::invalid(
            format!("{origin}.name"),
            format!("{name:?} is already the name of clusters[{i}]; expected unique names"),
        ));
    }
    Ok(())
}

/// The `clusters:` block; `rules_of` turns a cluster's own `namespaces` and
/// `resources` into rules (origins under `clusters[i].`).
pub(crate) fn clusters_config(
    raw: Vec<RawCluster>,
    mut rules_of: impl FnMut(
        &str,
        Vec<super::raw::RawNamespace>,
        Vec<super::raw::RawResource>,
    ) -> Result<Vec<ResourceRule>, ConfigError>,
) -> Result<Vec<ClusterConfig>, ConfigError> {
    let mut out: Vec<ClusterConfig> = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let origin = format!("clusters[{i}]");
        let Some(name) = c.name else {
            return Err(ConfigError::invalid(
                format!("{origin}.name"),
                "is missing; expected a name for the cluster",
            ));
        };
        check_name(&origin, &name, &out)?;
        let path = |key: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
            match v {
                Some(v) if v.trim().is_empty() => Err(ConfigError::invalid(
                    format!("{origin}.{key}"),
                    format!("\"\" is empty; expected a {key}"),
                )),
                v => Ok(v),
            }
        };
        let kubeconfig = path("kubeconfig", c.kubeconfig)?.map(PathBuf::from);
        let context = path("context", c.context)?;
        let rules = if c.namespaces.is_some() || c.resources.is_some() {
            Some(rules_of(
                &format!("{origin}."),
                c.namespaces.unwrap_or_default(),
                c.resources.unwrap_or_default(),
            )?)
        } else {
            None
        };
        out.push(ClusterConfig {
            name,
            kubeconfig,
            context,
            rules,
        });
    }
    Ok(out)
}
