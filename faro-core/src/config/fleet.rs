//! The `clusters:` block (several clusters in one process) and `readiness:`.

use std::path::PathBuf;
use std::time::Duration;

use super::ResourceRule;
use super::error::ConfigError;
use super::raw::{RawCluster, RawHa, boolean, whole_number};

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
    faro_filter::is_dns_label(name)
}

/// The shard of `(gvr, namespace)` among `shards`: FNV-1a over
/// `gvr` `/` `namespace`, the same in every replica and every version.
pub fn shard_of(gvr: &str, namespace: Option<&str>, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in gvr
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(namespace.unwrap_or("").bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(h % u64::from(shards)).unwrap_or(0)
}

/// The `ha:` block: replicas that share the work through Leases, with
/// client-go's leader election timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// Elect a leader (per shard) before writing.
    pub enabled: bool,
    /// The Leases' namespace; `None`: the pod's (`POD_NAMESPACE`), else `default`.
    pub lease_namespace: Option<String>,
    /// The Lease's name (`<name>-<shard>` with several shards).
    pub lease_name: String,
    /// This replica's identity; `None`: the pod name (`POD_NAME`), else the host name.
    pub identity: Option<String>,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down.
    pub renew_deadline: Duration,
    /// How often a Lease is tried (renewed, or taken when free).
    pub retry_period: Duration,
    /// Watch specs split into this many shards, one Lease each.
    pub shards: u32,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_namespace: None,
            lease_name: "faro".to_owned(),
            identity: None,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            shards: 1,
        }
    }
}

pub(crate) fn ha_config(raw: RawHa) -> Result<HaConfig, ConfigError> {
    let mut out = HaConfig::default();
    if let Some(v) = &raw.enabled {
        out.enabled = boolean("ha.enabled", v)?;
    }
    if let Some(ns) = raw.lease_namespace {
        if !faro_filter::is_dns_label(&ns) {
            return Err(ConfigError::invalid(
                "ha.lease_namespace",
                format!(
                    "{ns:?} is not a namespace name; expected a DNS-1123 label (lowercase letters, digits and '-')"
                ),
            ));
        }
        out.lease_namespace = Some(ns);
    }
    if let Some(name) = raw.lease_name {
        if !faro_filter::is_dns_subdomain(&name) || name.len() > 240 {
            return Err(ConfigError::invalid(
                "ha.lease_name",
                format!(
                    "{name:?} is not a Lease name; expected a DNS-1123 subdomain of at most 240 characters"
                ),
            ));
        }
        out.lease_name = name;
    }
    if let Some(identity) = raw.identity {
        if identity.trim().is_empty() {
            return Err(ConfigError::invalid(
                "ha.identity",
                "\"\" is empty; expected this replica's name",
            ));
        }
        out.identity = Some(identity);
    }
    for (key, text, slot) in [
        (
            "ha.lease_duration",
            &raw.lease_duration,
            &mut out.lease_duration,
        ),
        (
            "ha.renew_deadline",
            &raw.renew_deadline,
            &mut out.renew_deadline,
        ),
        ("ha.retry_period", &raw.retry_period, &mut out.retry_period),
    ] {
        if let Some(text) = text {
            *slot = super::story::duration(key, text)?;
        }
    }
    if out.renew_deadline >= out.lease_duration {
        return Err(ConfigError::invalid(
            "ha.renew_deadline",
            format!(
                "{:?} is not below ha.lease_duration ({:?}); expected a shorter deadline",
                out.renew_deadline, out.lease_duration
            ),
        ));
    }
    if out.retry_period.mul_f64(1.2) >= out.renew_deadline {
        return Err(ConfigError::invalid(
            "ha.retry_period",
            format!(
                "{:?} leaves no retry before ha.renew_deadline ({:?}); expected under 1/1.2 of it",
                out.retry_period, out.renew_deadline
            ),
        ));
    }
    if let Some(v) = &raw.shards {
        let n = whole_number("ha.shards", v, 1024, "a number of shards")?;
        if n == 0 {
            return Err(ConfigError::invalid(
                "ha.shards",
                "0 is not a number of shards; expected 1 or more",
            ));
        }
        out.shards = u32::try_from(n).unwrap_or(1);
    }
    Ok(out)
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
