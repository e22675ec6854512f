//! Server-side field validation of built-in kinds, as `fieldValidation`
//! asks: the body is decoded into the kind's type (k8s-openapi), a field
//! of the wrong type is refused, and an unknown field is refused
//! (`Strict`), warned about (`Warn`, the default) or dropped in silence
//! (`Ignore`) — never stored, as the real server prunes it. Custom
//! resources are stored as sent.

use k8s_openapi::api;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::ApiError;

/// What to do with unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    Strict,
    Warn,
    Ignore,
}

impl Directive {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Invalid value: \"{other}\": fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\""
            ))),
        }
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            segments(parent, out);
            out.push(Segment::Index(*index));
        }
        Path::Map { parent, key } => {
            segments(parent, out);
            out.push(Segment::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent, out),
    }
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn prune(value: &mut Value, path: &[Segment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for s in parents {
        at = match s {
            Segment::Key(k) => match at.get_mut(k.as_str()) {
                Some(v) => v,
                None => return,
            },
            Segment::Index(i) => match at.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
        };
    }
    if let (Segment::Key(k), Some(map)) = (last, at.as_object_mut()) {
        map.remove(k);
    }
}

fn unknown_fields<T: DeserializeOwned>(value: &Value) -> Result<Vec<Vec<Segment>>, String> {
    let mut unknown = Vec::new();
    let decoded: Result<T, _> = serde_ignored::deserialize(value, |path| {
        let mut s = Vec::new();
        segments(&path, &mut s);
        unknown.push(s);
    });
    decoded.map(|_| unknown).map_err(|e| e.to_string())
}

/// Checks (and prunes) `object` of `def`'s kind; returns the warnings to send.
pub(crate) fn check(
    def: &ResourceDef,
    object: &mut Value,
    directive: Directive,
) -> Result<Vec<String>, ApiError> {
    let mut typed = object.clone();
    typed["apiVersion"] = Value::String(def.api_version());
    typed["kind"] = Value::String(def.kind.clone());
    let found = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => unknown_fields::<api::core::v1::Namespace>(&typed),
        ("", "ConfigMap") => unknown_fields::<api::core::v1::ConfigMap>(&typed),
        ("", "Secret") => unknown_fields::<api::core::v1::Secret>(&typed),
        ("", "Service") => unknown_fields::<api::core::v1::Service>(&typed),
        ("", "Pod") => unknown_fields::<api::core::v1::Pod>(&typed),
        ("", "Event") => unknown_fields::<api::core::v1::Event>(&typed),
        ("", "ServiceAccount") => unknown_fields::<api::core::v1::ServiceAccount>(&typed),
        ("", "Node") => unknown_fields::<api::core::v1::Node>(&typed),
        ("events.k8s.io", "Event") => unknown_fields::<api::events::v1::Event>(&typed),
        ("apps", "Deployment") => unknown_fields::<api::apps::v1::Deployment>(&typed),
        ("apps", "ReplicaSet") => unknown_fields::<api::apps::v1::ReplicaSet>(&typed),
        ("apps", "StatefulSet") => unknown_fields::<api::apps::v1::StatefulSet>(&typed),
        ("apps", "DaemonSet") => unknown_fields::<api::apps::v1::DaemonSet>(&typed),
        ("batch", "Job") => unknown_fields::<api::batch::v1::Job>(&typed),
        ("batch", "CronJob") => unknown_fields::<api::batch::v1::CronJob>(&typed),
        ("coordination.k8s.io", "Lease") => unknown_fields::<api::coordination::v1::Lease>(&typed),
        _ => return Ok(Vec::new()),
    };
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}",
            kind = def.kind,
            version = def.version
        ))
    };
    let unknown = found.map_err(cannot)?;
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{}\"", render(p)))
        .collect();
    if directive == Directive::Strict {
        return Err(cannot(format!(
            "strict decoding error: {}",
            messages.join(", ")
        )));
    }
    for path in &unknown {
        prune(object, path);
    }
    Ok(if directive == Directive::Warn {
        messages
    } else {
        Vec::new()
    })
}
