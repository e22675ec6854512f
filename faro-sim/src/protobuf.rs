//! Request bodies: JSON, and (for built-in kinds) Kubernetes protobuf —
//! the `k8s\0` envelope around a `runtime.Unknown` — decoded into the JSON
//! the server stores.

use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::ApiError;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn media(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request is not valid JSON: {e}"))
    })
}

/// The object a create or replace carries, as JSON.
pub(crate) fn decode_body(
    def: &ResourceDef,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    match media(content_type) {
        "" | "application/json" | "*/*" => json(body),
        m if m.ends_with("+json") => json(body),
        PROTOBUF if !def.custom => Err(ApiError::unsupported_media_type(PROTOBUF)),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// A `Scale` body (JSON or protobuf).
pub(crate) fn decode_scale(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match media(content_type) {
        "" | "application/json" => json(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}
