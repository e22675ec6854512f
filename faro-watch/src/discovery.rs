//! Resolving a GVR to the API resource the server serves, through discovery.
//!
//! Each group/version's resource list is fetched once and cached; a lookup
//! that misses the cache fetches that group/version again, so a CRD
//! installed after start is found without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use faro_core::{DynamicObject, Gvr, Scope};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::Client;
use kube::api::Api;
use kube::discovery::ApiResource;

use crate::error::WatchError;
use crate::informer::lock;

/// A resource the server serves, as discovery describes it.
#[derive(Debug, Clone)]
pub struct ResolvedResource {
    /// The GVR asked for.
    pub gvr: Arc<Gvr>,
    /// What `kube::Api` needs to address it.
    pub api_resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
}

impl ResolvedResource {
    /// The API for this resource in `namespace`, or across all namespaces
    /// (always for a cluster-scoped resource).
    pub fn api(&self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        self.api_as(client, namespace)
    }

    /// As [`ResolvedResource::api`], decoding objects as `K`.
    pub fn api_as<K>(&self, client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
    {
        match self.request_namespace(namespace) {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.api_resource),
            None => Api::all_with(client.clone(), &self.api_resource),
        }
    }

    /// The namespace a request for `namespace` names: none for a
    /// cluster-scoped resource.
    pub fn request_namespace<'a>(&self, namespace: Option<&'a str>) -> Option<&'a str> {
        match self.scope {
            Scope::Namespaced => namespace,
            Scope::Cluster => None,
        }
    }
}

/// What discovery says of a GVR.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Served, watchable, and in the configured scope.
    Served(ResolvedResource),
    /// Its group/version is not served (yet): the watch waits for it.
    NotServed,
}

/// The discovery cache of one API server.
#[derive(Clone)]
pub struct Discovery {
    client: Client,
    cache: Arc<Mutex<HashMap<String, Arc<Vec<APIResource>>>>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

impl Discovery {
    /// An empty cache over `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Arc::default(),
        }
    }

    /// Resolves `gvr`, checking the `watch` verb and the configured `scope`.
    ///
    /// A group/version that is served but has no such resource is an error
    /// naming close matches; one that is not served at all is `NotServed`.
    pub async fn resolve(&self, gvr: &Gvr, scope: Option<Scope>) -> Result<Resolution, WatchError> {
        let api_version = gvr.api_version();
        let mut resources = self.cached(&api_version);
        let mut fresh = false;
        let found = loop {
            if let Some(list) = &resources
                && let Some(found) = list.iter().find(|r| r.name == gvr.resource())
            {
                break Some(found.clone());
            }
            if fresh {
                break None;
            }
            resources = self.fetch(&api_version).await?;
            fresh = true;
        };
        let Some(resource) = found else {
            return match resources {
                None => Ok(Resolution::NotServed),
                Some(list) => Err(WatchError::UnknownResource {
                    gvr: gvr.to_string(),
                    suggestions: self.suggestions(gvr, &list).await,
                }),
            };
        };
        if !resource.verbs.iter().any(|v| v == "watch") {
            return Err(WatchError::NotWatchable {
                gvr: gvr.to_string(),
                verbs: resource.verbs.join(","),
            });
        }
        let discovered = if resource.namespaced {
            Scope::Namespaced
        } else {
            Scope::Cluster
        };
        if let Some(configured) = scope
            && configured != discovered
        {
            return Err(WatchError::ScopeMismatch {
                gvr: gvr.to_string(),
                configured,
                discovered,
            });
        }
        Ok(Resolution::Served(ResolvedResource {
            gvr: Arc::new(gvr.clone()),
            api_resource: ApiResource {
                group: gvr.group().to_owned(),
                version: gvr.version().to_owned(),
                api_version,
                kind: resource.kind.clone(),
                plural: resource.name.clone(),
            },
            scope: discovered,
        }))
    }

    /// The watchable resource whose kind is `kind` in `api_version`
    /// (`apps/v1`, `Deployment`), as an owner reference names it; `None`
    /// when the server serves no such kind.
    pub async fn resolve_kind(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ResolvedResource>, WatchError> {
        let find = |list: &Arc<Vec<APIResource>>| {
            list.iter()
                .find(|r| r.kind == kind && !r.name.contains('/'))
                .cloned()
        };
        let found = match self.cached(api_version).as_ref().and_then(find) {
            Some(found) => Some(found),
            None => self.fetch(api_version).await?.as_ref().and_then(find),
        };
        let Some(resource) = found else {
            return Ok(None);
        };
        let Ok(gvr) = Gvr::parse(&format!("{api_version}/{}", resource.name)) else {
            return Ok(None);
        };
        match self.resolve(&gvr, None).await {
            Ok(Resolution::Served(r)) => Ok(Some(r)),
            Ok(Resolution::NotServed) | Err(WatchError::NotWatchable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets what is cached for `api_version`, so the next lookup asks the server.
    pub fn invalidate(&self, api_version: &str) {
        lock(&self.cache).remove(api_version);
    }

    fn cached(&self, api_version: &str) -> Option<Arc<Vec<APIResource>>> {
        lock(&self.cache).get(api_version).cloned()
    }

    /// The resource list of `api_version`, or `None` when it is not served.
    async fn fetch(&self, api_version: &str) -> Result<Option<Arc<Vec<APIResource>>>, WatchError> {
        let result = if api_version.contains('/') {
            self.client.list_api_group_resources(api_version).await
        } else {
            self.client.list_core_api_resources(api_version).await
        };
        match result {
            Ok(list) => {
                let list = Arc::new(list.resources);
                lock(&self.cache).insert(api_version.to_owned(), list.clone());
                Ok(Some(list))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                lock(&self.cache).remove(api_version);
                Ok(None)
            }
            Err(source) => Err(WatchError::Discovery {
                api_version: api_version.to_owned(),
                source: Box::new(source),
            }),
        }
    }

    /// Close names in the same group/version, then the same resource in other groups.
    async fn suggestions(&self, gvr: &Gvr, list: &[APIResource]) -> Vec<String> {
        let wanted = gvr.resource().to_ascii_lowercase();
        let prefix = |name: &str| match gvr.group() {
            "" => format!("{}/{name}", gvr.version()),
            group => format!("{group}/{}/{name}", gvr.version()),
        };
        let mut out: Vec<String> = list
            .iter()
            .filter(|r| !r.name.contains('/'))
            .filter(|r| {
                edit_distance(&wanted, &r.name) <= 2
                    || r.singular_name == wanted
                    || r.kind.to_ascii_lowercase() == wanted
                    || r.short_names.as_ref().is_some_and(|s| s.contains(&wanted))
            })
            .map(|r| prefix(&r.name))
            .collect();
        if out.is_empty()
            && let Ok(groups) = self.client.list_api_groups().await
        {
            let mut versions: Vec<String> = vec!["v1".to_owned()];
            versions.extend(groups.groups.iter().filter_map(|g| {
                g.preferred_version
                    .as_ref()
                    .map(|v| v.group_version.clone())
            }));
            for api_version in versions {
                if api_version == gvr.api_version() {
                    continue;
                }
                if let Ok(Some(list)) = self.fetch(&api_version).await
                    && list.iter().any(|r| r.name == wanted)
                {
                    out.push(format!("{api_version}/{wanted}"));
                }
            }
        }
        out
    }
}

/// Levenshtein distance over bytes; names here are short ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("configmap", "configmaps"), 1);
        assert_eq!(edit_distance("pods", "pods"), 0);
        assert_eq!(edit_distance("deploymnets", "deployments"), 2);
        assert_eq!(edit_distance("nodes", "pods"), 2);
        assert!(edit_distance("secrets", "services") > 2);
    }
}
