//! The `scale` subresource: an `autoscaling/v1` `Scale` view of a
//! workload's `spec.replicas`, read, replaced or patched as kubectl does.

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ops::{self, Target};
use crate::shared::Shared;
use crate::status::ApiError;
use crate::store::Stored;

/// `matchLabels` and `matchExpressions` as a selector string.
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str() {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("DoesNotExist") => format!("!{key}"),
            _ => key.to_string(),
        });
    }
    parts.sort();
    parts.join(",")
}

fn scale_of(stored: &Stored) -> Value {
    let meta = &stored.value["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": stored.rv.to_string(), "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": stored.value["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": {
            "replicas": stored.value["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&stored.value["spec"]["selector"]),
        },
    })
}

fn answer(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

/// GET, PUT or PATCH of `<workload>/scale`.
pub(crate) fn serve(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    target: &Target,
    body: &[u8],
) -> Result<Response, ApiError> {
    let parent = Target {
        subresource: None,
        ..target.clone()
    };
    let existing = ops::get(shared, &parent)?;
    let current = scale_of(&existing);
    let wanted = match *method {
        Method::GET => return Ok(answer(&current)),
        Method::PUT => crate::protobuf::decode_scale(headers, body)?,
        Method::PATCH => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let mut doc = current.clone();
            ops::apply_patch(&mut doc, &parent, content_type, body)?;
            doc
        }
        ref m => return Err(ApiError::method_not_allowed(m.as_str(), "scale")),
    };
    let replicas = wanted["spec"]["replicas"].as_i64().ok_or_else(|| {
        ApiError::invalid("Scale", &existing.name, "spec.replicas: Required value")
    })?;
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            &existing.name,
            format!("spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    let mut updated = existing.value.clone();
    updated["spec"]["replicas"] = json!(replicas);
    let rv = wanted["metadata"]["resourceVersion"]
        .as_str()
        .filter(|r| !r.is_empty())
        .map_or_else(|| existing.rv.to_string(), str::to_string);
    updated["metadata"]["resourceVersion"] = json!(rv);
    let stored = ops::update(shared, &parent, updated)?;
    Ok(answer(&scale_of(&stored)))
}
