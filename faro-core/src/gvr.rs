//! Group/version/resource names and resource scope.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use faro_filter::{is_dns_label, is_dns_subdomain};

/// A resource type on the API server: `v1/configmaps` (core group),
/// `apps/v1/deployments`, `hypershift.openshift.io/v1beta1/hostedclusters`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvr {
    group: String,
    version: String,
    resource: String,
}

/// A string that is not a GVR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a GVR; expected <version>/<resource> for the core group (v1/configmaps) or <group>/<version>/<resource> (apps/v1/deployments){hint}"
)]
pub struct GvrError {
    text: String,
    hint: &'static str,
}

impl Gvr {
    /// Builds a GVR from its parts; the core group is `""`.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }

    /// Parses `version/resource` (core group) or `group/version/resource`.
    pub fn parse(text: &str) -> Result<Self, GvrError> {
        let fail = |hint: &'static str| GvrError {
            text: text.to_string(),
            hint,
        };
        let parts: Vec<&str> = text.split('/').collect();
        let (group, version, resource) = match parts.as_slice() {
            [version, resource] => {
                if !is_kube_version(version) {
                    return Err(fail(
                        "; the core group's versions look like v1, so a two-part GVR must start with one",
                    ));
                }
                ("", *version, *resource)
            }
            [group, version, resource] => {
                if !is_dns_subdomain(group) {
                    return Err(fail(
                        "; the group must be a DNS subdomain such as apps or example.com",
                    ));
                }
                (*group, *version, *resource)
            }
            _ => return Err(fail("")),
        };
        if !is_version(version) {
            return Err(fail(
                "; the version must be a lowercase name such as v1 or v1beta1",
            ));
        }
        if !is_dns_label(resource) {
            return Err(fail(
                "; the resource must be the lowercase plural name, such as configmaps",
            ));
        }
        Ok(Self::new(group, version, resource))
    }

    /// The API group; `""` for the core group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The API version within the group, such as `v1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The plural resource name, such as `configmaps`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// True for the core (legacy, `/api`) group.
    pub fn is_core(&self) -> bool {
        self.group.is_empty()
    }

    /// `v1` for the core group, `group/version` otherwise, as in `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.is_core() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

fn is_version(text: &str) -> bool {
    is_dns_label(text) && text.starts_with(|c: char| c.is_ascii_lowercase())
}

/// `v1`, `v2beta1`, `v1alpha3`: the Kubernetes version convention.
fn is_kube_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.starts_with('0') {
        return false;
    }
    let rest = &rest[digits..];
    if rest.is_empty() {
        return true;
    }
    let Some(n) = rest
        .strip_prefix("alpha")
        .or_else(|| rest.strip_prefix("beta"))
    else {
        return false;
    };
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
}

impl fmt::Display for Gvr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_core() {
            write!(f, "{}/{}", self.version, self.resource)
        } else {
            write!(f, "{}/{}/{}", self.group, self.version, self.resource)
        }
    }
}

impl FromStr for Gvr {
    type Err = GvrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for Gvr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Gvr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether a resource's objects live in namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Cluster-scoped, such as `v1/namespaces` or `v1/nodes`.
    Cluster,
    /// Namespaced, such as `v1/configmaps`.
    Namespaced,
}

/// A string that is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a scope; expected Cluster or Namespaced")]
pub struct ScopeError(String);

impl Scope {
    /// Case-insensitive: `Cluster`, `cluster`, `NAMESPACED`, …
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        if text.eq_ignore_ascii_case("cluster") {
            Ok(Scope::Cluster)
        } else if text.eq_ignore_ascii_case("namespaced") {
            Ok(Scope::Namespaced)
        } else {
            Err(ScopeError(text.to_string()))
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Cluster => "Cluster",
            Scope::Namespaced => "Namespaced",
        })
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Built-in resources known to be cluster-scoped, so that a configuration
/// asking for them per namespace fails at load rather than at the server.
pub(crate) const CLUSTER_SCOPED_BUILTINS: &[&str] = &[
    "v1/namespaces",
    "v1/nodes",
    "v1/persistentvolumes",
    "v1/componentstatuses",
    "apiextensions.k8s.io/v1/customresourcedefinitions",
    "apiregistration.k8s.io/v1/apiservices",
    "rbac.authorization.k8s.io/v1/clusterroles",
    "rbac.authorization.k8s.io/v1/clusterrolebindings",
    "storage.k8s.io/v1/storageclasses",
    "storage.k8s.io/v1/csidrivers",
    "storage.k8s.io/v1/csinodes",
    "storage.k8s.io/v1/volumeattachments",
    "scheduling.k8s.io/v1/priorityclasses",
    "node.k8s.io/v1/runtimeclasses",
    "networking.k8s.io/v1/ingressclasses",
    "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    "certificates.k8s.io/v1/certificatesigningrequests",
];

impl Gvr {
    /// `Some(Scope::Cluster)` for a built-in known to be cluster-scoped;
    /// `None` where only discovery can tell.
    pub fn known_scope(&self) -> Option<Scope> {
        let name = self.to_string();
        CLUSTER_SCOPED_BUILTINS
            .contains(&name.as_str())
            .then_some(Scope::Cluster)
    }
}
