//! The HTTP front: an accept loop that can drop every connection or refuse
//! them for a while (a restart), request routing on Kubernetes paths,
//! discovery, and the injection of errors and latency.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::ops::{self, ListQuery, Selection, Target};
use crate::shared::{FaultAction, Shared};
use crate::status::ApiError;
use crate::store::Stored;
use crate::validation;
use crate::watch::{self, Origin, WatchQuery};

/// The connection a request arrived on, so a `reset` fault can drop it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnId(pub u64);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    crate::admin::routes().fallback(api).with_state(shared)
}

/// Serves `router` on `listener` until the task is aborted. A restart drops
/// every connection, closes the listener for the down time and binds again.
/// `restart` is subscribed before the task is spawned, so that a restart
/// asked for before the task first runs is not missed.
pub(crate) async fn serve(
    mut listener: TcpListener,
    shared: Arc<Shared>,
    router: Router,
    mut restart: tokio::sync::watch::Receiver<Option<std::time::Duration>>,
) {
    let addr = listener.local_addr().ok();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let id = shared.next_id();
                let router = router.clone();
                let conn_shared = shared.clone();
                let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnId(id));
                    router.clone().oneshot(req.map(Body::new))
                });
                let task = tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    conn_shared.remove_connection(id);
                });
                shared.add_connection(id, task.abort_handle());
            }
            changed = restart.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(down) = *restart.borrow_and_update() else { continue };
                shared.drop_connections();
                if down.is_zero() {
                    continue;
                }
                drop(listener);
                tokio::time::sleep(down).await;
                let Some(addr) = addr else { return };
                listener = loop {
                    match TcpListener::bind(addr).await {
                        Ok(l) => break l,
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    }
                };
            }
        }
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

/// Adds a `Warning: 299` header per warning, as the real server does.
fn warn(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

fn stored_response(code: StatusCode, json: Bytes) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

fn query_map(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn truthy(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true" | "1"))
}

/// Every request that is not an admin route.
async fn api(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<ConnId>().copied();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let params = query_map(&query);
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();

    let latency = shared.faults().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let verb = verb_of(&parts.method, &segments, &params);
    if let Some(fault) = shared.take_fault(verb, &user_agent, &path) {
        match fault {
            FaultAction::Fail(e) => return e.into_response(),
            FaultAction::Reset => {
                if let Some(ConnId(id)) = conn {
                    shared.drop_connection(id);
                    // The abort lands at the next await: park here so that
                    // nothing is written before the connection goes.
                    std::future::pending::<()>().await;
                }
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    }
    // The real server's limit on a request body.
    const MAX_BODY: usize = 3 << 20;
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError::too_large(MAX_BODY).into_response(),
    };
    match route(
        &shared,
        &parts.method,
        &parts.headers,
        &segments,
        &params,
        body,
        Origin {
            path: path.clone(),
            query,
            user_agent,
        },
    ) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The Kubernetes verb of a request, for fault scoping.
fn verb_of(method: &Method, segments: &[&str], params: &HashMap<String, String>) -> &'static str {
    // Discovery documents are non-resource URLs: RBAC and faults see a get.
    let discovery = match segments.first() {
        Some(&"api") => segments.len() <= 2,
        Some(&"apis") => segments.len() <= 3,
        _ => false,
    };
    if discovery {
        return "get";
    }
    let named = match segments.first() {
        Some(&"api") => {
            segments.len() >= 4 && !(segments.len() == 5 && segments[2] == "namespaces")
        }
        Some(&"apis") => {
            segments.len() >= 5 && !(segments.len() == 6 && segments[3] == "namespaces")
        }
        _ => true,
    };
    match *method {
        Method::GET if !named && truthy(params.get("watch")) => "watch",
        Method::GET if !named => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "get",
    }
}

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    segments: &[&str],
    params: &HashMap<String, String>,
    body: Bytes,
    origin: Origin,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::no_route(&origin.path);
    let (group, version, rest) = match segments {
        ["version"] => {
            return Ok(json_response(
                StatusCode::OK,
                &json!({
                    "major": "1", "minor": "33", "gitVersion": "v1.33.0-faro-sim",
                    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
                    "platform": "linux/amd64",
                }),
            ));
        }
        ["healthz"] | ["readyz"] | ["livez"] => return Ok((StatusCode::OK, "ok").into_response()),
        ["api"] => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            return Ok(json_response(
                StatusCode::OK,
                &shared.registry().api_versions(host),
            ));
        }
        ["apis"] => {
            return Ok(json_response(
                StatusCode::OK,
                &shared.registry().api_group_list(),
            ));
        }
        ["apis", group] => {
            return shared
                .registry()
                .api_group(group)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(not_found);
        }
        ["openapi", "v3"] => {
            return Ok(json_response(
                StatusCode::OK,
                &crate::openapi::index(&shared.registry()),
            ));
        }
        ["openapi", "v3", "api", version] => {
            return crate::openapi::document(&shared.registry(), "", version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(not_found);
        }
        ["openapi", "v3", "apis", group, version] => {
            return crate::openapi::document(&shared.registry(), group, version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(not_found);
        }
        ["api", version] => ("", *version, &segments[2..]),
        ["apis", group, version, ..] => (*group, *version, &segments[3..]),
        ["api", version, ..] => ("", *version, &segments[2..]),
        _ => return Err(not_found()),
    };
    if rest.is_empty() {
        return shared
            .registry()
            .api_resource_list(group, version)
            .map(|d| json_response(StatusCode::OK, &d))
            .ok_or_else(not_found);
    }
    let registry = shared.registry().clone();
    let find = |plural: &str| registry.find(group, version, plural).cloned();
    // namespaces/<ns>/<plural>[/<name>[/<sub>]] addresses namespaced objects;
    // namespaces/<name>[/<sub>] addresses the namespace itself.
    let (def, namespace, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|d| d.namespaced) => {
            (find(plural), Some((*ns).to_string()), tail)
        }
        [plural, tail @ ..] => (find(plural), None, tail),
        [] => return Err(not_found()),
    };
    // After the resource: at most a name and a subresource.
    if tail.len() > 2 {
        return Err(not_found());
    }
    let target = Target {
        def: def.ok_or_else(not_found)?,
        namespace,
        name: tail.first().map(|s| (*s).to_string()),
        subresource: tail.get(1).map(|s| (*s).to_string()),
    };
    if let Some(sub) = &target.subresource {
        if !target.def.subresources.iter().any(|s| s == sub) {
            return Err(not_found());
        }
        if sub == "log" {
            return crate::logs::pod_log(shared.clone(), &target, params, &origin.query);
        }
        if sub == "scale" {
            return crate::scale::serve(shared, method, headers, &target, &body);
        }
    }
    let events_v1 = target.def.is_events_v1();
    // events.k8s.io reads and writes the stored core Events.
    let write_target = if events_v1 {
        Target {
            def: registry
                .find("", "v1", "events")
                .cloned()
                .ok_or_else(not_found)?,
            ..target.clone()
        }
    } else {
        target.clone()
    };
    let field_selector = params.get("fieldSelector").map(|f| {
        if events_v1 {
            f.replace("regarding.", "involvedObject.")
                .replace("reportingController", "reportingComponent")
        } else {
            f.clone()
        }
    });
    let selection = || {
        Selection::parse(
            &target.def,
            params.get("labelSelector").map(String::as_str),
            field_selector.as_deref(),
        )
    };
    let present = |code: StatusCode, stored: &Stored| -> Response {
        stored_response(code, stored.json_for(&target.def))
    };
    let from_view = |v: Value| -> Value {
        if events_v1 {
            crate::cluster::from_events_v1(&v)
        } else {
            v
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let directive =
        validation::Directive::parse(params.get("fieldValidation").map(String::as_str))?;
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    match (method.clone(), target.name.is_some()) {
        (Method::GET, true) => {
            let stored = ops::get(shared, &target)?;
            if wants_table {
                return Ok(json_response(
                    StatusCode::OK,
                    &crate::table::table(
                        &target.def,
                        std::slice::from_ref(&stored),
                        stored.rv,
                        None,
                    ),
                ));
            }
            Ok(present(StatusCode::OK, &stored))
        }
        (Method::GET, false) if truthy(params.get("watch")) => watch::watch(
            shared.clone(),
            target.clone(),
            selection()?,
            WatchQuery {
                resource_version: params.get("resourceVersion").cloned(),
                resource_version_match: params.get("resourceVersionMatch").cloned(),
                allow_bookmarks: truthy(params.get("allowWatchBookmarks")),
                send_initial_events: params.get("sendInitialEvents").map(|v| v == "true"),
                timeout: params
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(std::time::Duration::from_secs),
            },
            origin,
        ),
        (Method::GET, false) => {
            let q = ListQuery {
                resource_version: params.get("resourceVersion").cloned(),
                resource_version_match: params.get("resourceVersionMatch").cloned(),
                limit: params.get("limit").and_then(|l| l.parse().ok()),
                continue_token: params.get("continue").filter(|c| !c.is_empty()).cloned(),
            };
            let page = ops::list(shared, &target, &q, &selection()?)?;
            if wants_table {
                return Ok(json_response(
                    StatusCode::OK,
                    &crate::table::table(
                        &target.def,
                        &page.items,
                        page.rv,
                        page.continue_token
                            .as_deref()
                            .map(|c| (c, page.remaining.unwrap_or(0))),
                    ),
                ));
            }
            Ok(list_response(&target, &page))
        }
        (Method::POST, false) => {
            let mut body = crate::protobuf::decode_body(&target.def, &content_type, &body)?;
            let warnings = validation::check(&target.def, &mut body, directive)?;
            let stored = ops::create(shared, &write_target, from_view(body))?;
            Ok(warn(present(StatusCode::CREATED, &stored), &warnings))
        }
        (Method::PUT, true) => {
            let mut body = crate::protobuf::decode_body(&target.def, &content_type, &body)?;
            let warnings = validation::check(&target.def, &mut body, directive)?;
            let stored = ops::update(shared, &write_target, from_view(body))?;
            Ok(warn(present(StatusCode::OK, &stored), &warnings))
        }
        (Method::PATCH, true) => {
            type Convert = fn(&Value) -> Value;
            let (view, store_as): (Convert, Convert) = if events_v1 {
                (crate::cluster::to_events_v1, crate::cluster::from_events_v1)
            } else {
                (Value::clone, Value::clone)
            };
            let mut warnings = Vec::new();
            let stored = ops::patch_view(
                shared,
                &write_target,
                &content_type,
                &body,
                view,
                |patched| {
                    warnings = validation::check(&target.def, patched, directive)?;
                    Ok(store_as(patched))
                },
            )?;
            Ok(warn(present(StatusCode::OK, &stored), &warnings))
        }
        (Method::DELETE, true) => {
            let options = ops::DeleteOptions::parse(
                &body,
                params.get("propagationPolicy").map(String::as_str),
                params.get("gracePeriodSeconds").map(String::as_str),
            )?;
            let stored = ops::delete(shared, &target, &options)?;
            Ok(present(StatusCode::OK, &stored))
        }
        (Method::DELETE, false) => {
            if !target.def.verbs.iter().any(|v| v == "deletecollection") {
                return Err(ApiError::method_not_allowed(
                    "deletecollection",
                    &target.def.plural,
                ));
            }
            let options = ops::DeleteOptions::parse(
                &body,
                params.get("propagationPolicy").map(String::as_str),
                params.get("gracePeriodSeconds").map(String::as_str),
            )?;
            ops::delete_collection(shared, &target, &selection()?, &options)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                }),
            ))
        }
        (m, _) => Err(ApiError::method_not_allowed(m.as_str(), &target.def.plural)),
    }
}

fn list_response(target: &Target, page: &ops::ListPage) -> Response {
    let mut out =
        Vec::with_capacity(page.items.iter().map(|i| i.json.len() + 1).sum::<usize>() + 256);
    let mut metadata = json!({ "resourceVersion": page.rv.to_string() });
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
            target.def.kind,
            target.def.api_version(),
            metadata
        )
        .as_bytes(),
    );
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item.json_for(&target.def));
    }
    out.extend_from_slice(b"]}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

/// The address a listener is bound to, for messages.
pub(crate) fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
