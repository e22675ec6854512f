//! kube's `DynamicObject`, decoded in one pass.
//!
//! `DynamicObject` derives `Deserialize` with two `#[serde(flatten)]` fields,
//! and serde decodes a struct with flattened fields by first buffering the
//! whole object into an intermediate tree, then decoding that tree again:
//! every string of every object is copied twice. [`WatchedObject`] reads the
//! same JSON straight into the same `DynamicObject` (`apiVersion` and `kind`
//! into `types`, `metadata` into `ObjectMeta`, every other key into `data`),
//! which is what the informer lists and watches through.
//!
//! kube's `WatchEvent<K>` is decoded the same way (an adjacently tagged
//! enum: its `object` is buffered before `K` sees it), so the informer reads
//! watch lines itself: an `ADDED`, `MODIFIED` or `DELETED` line goes straight
//! into a `DynamicObject`; any other line (a bookmark, an error) is handed to
//! kube's decoder, which is exact for those and rare enough not to matter.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

use faro_core::DynamicObject;
use futures_util::{AsyncBufRead, AsyncBufReadExt, Stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, TypeMeta, WatchEvent, WatchParams};
use kube::core::{DynamicResourceScope, Status};
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A `DynamicObject` decoded without serde's flatten buffering.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedObject(pub DynamicObject);

impl kube::Resource for WatchedObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::group(dt)
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::version(dt)
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::kind(dt)
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::api_version(dt)
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl<'de> serde::Deserialize<'de> for WatchedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

enum Key {
    ApiVersion,
    Kind,
    Metadata,
    Other(String),
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "apiVersion" => Key::ApiVersion,
            "kind" => Key::Kind,
            "metadata" => Key::Metadata,
            other => Key::Other(other.to_owned()),
        })
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Key, E> {
        Ok(match key.as_str() {
            "apiVersion" | "kind" | "metadata" => self.visit_str(&key)?,
            _ => Key::Other(key),
        })
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = WatchedObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WatchedObject, A::Error> {
        let mut api_version: Option<String> = None;
        let mut kind: Option<String> = None;
        let mut metadata: Option<ObjectMeta> = None;
        let mut data = serde_json::Map::new();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::ApiVersion => api_version = Some(map.next_value()?),
                Key::Kind => kind = Some(map.next_value()?),
                Key::Metadata => metadata = Some(map.next_value()?),
                Key::Other(key) => {
                    data.insert(key, map.next_value()?);
                }
            }
        }
        // As the derived decoder: the type fields only when both are there
        // (a lone one is dropped, not kept among the other keys).
        let types = match (api_version, kind) {
            (Some(api_version), Some(kind)) => Some(TypeMeta { api_version, kind }),
            _ => None,
        };
        Ok(WatchedObject(DynamicObject {
            types,
            metadata: metadata.unwrap_or_default(),
            data: serde_json::Value::Object(data),
        }))
    }
}

/// A decoded watch line: what kube's watch streams yield.
pub(crate) type Decoded = kube::Result<WatchEvent<DynamicObject>>;

/// One line of a watch stream, read for the three events that carry an object.
#[derive(serde::Deserialize)]
struct FastLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    object: WatchedObject,
}

/// Decodes one line of a watch stream as kube's `Client::request_events`
/// does, errors included (`None` for a truncated last line), reading an
/// object's JSON once.
pub fn decode_watch_line(line: &str) -> Option<kube::Result<WatchEvent<DynamicObject>>> {
    decode_watch_bytes(line.as_bytes())
}

fn decode_watch_bytes(line: &[u8]) -> Option<Decoded> {
    if let Ok(fast) = serde_json::from_slice::<FastLine<'_>>(line) {
        match &*fast.kind {
            "ADDED" => return Some(Ok(WatchEvent::Added(fast.object.0))),
            "MODIFIED" => return Some(Ok(WatchEvent::Modified(fast.object.0))),
            "DELETED" => return Some(Ok(WatchEvent::Deleted(fast.object.0))),
            _ => {}
        }
    }
    match serde_json::from_slice::<WatchEvent<DynamicObject>>(line) {
        Ok(event) => Some(Ok(event)),
        Err(e) if e.is_eof() => None,
        Err(e) => Some(Err(match serde_json::from_slice::<Status>(line) {
            Ok(status) => kube::Error::Api(status.boxed()),
            Err(_) => kube::Error::SerdeError(e),
        })),
    }
}

/// `GET …?watch=1` for `resource`, read line by line with [`decode_watch_line`]:
/// what `Api::<DynamicObject>::watch` returns, without decoding each object twice.
pub(crate) async fn watch(
    client: &kube::Client,
    api_resource: &ApiResource,
    namespace: Option<&str>,
    params: &WatchParams,
    resource_version: &str,
) -> kube::Result<impl Stream<Item = Decoded> + use<>> {
    let url = <DynamicObject as kube::Resource>::url_path(api_resource, namespace);
    let mut request = kube::core::Request::new(url)
        .watch(params, resource_version)
        .map_err(kube::Error::BuildRequest)?;
    // As kube's own watch: no read timeout for a watch, no compression
    // (one gzip member per event is not decoded past the first).
    request.extensions_mut().insert("watch");
    request.headers_mut().insert(
        http::header::ACCEPT_ENCODING,
        http::HeaderValue::from_static("identity"),
    );
    let body = client.request_stream(request).await?;
    let lines = Lines::new(body);
    Ok(futures_util::stream::unfold(
        lines,
        |mut lines| async move { lines.next().await.map(|event| (event, lines)) },
    ))
}

/// Splits a watch body into lines and decodes each where it lies in the
/// body's buffer; only a line cut between two reads is copied.
struct Lines<R> {
    body: std::pin::Pin<Box<R>>,
    /// The start of a line whose end has not arrived yet.
    pending: Vec<u8>,
    ready: VecDeque<Decoded>,
    done: bool,
}

impl<R: AsyncBufRead> Lines<R> {
    fn new(body: R) -> Self {
        Self {
            body: Box::pin(body),
            pending: Vec::new(),
            ready: VecDeque::new(),
            done: false,
        }
    }

    async fn next(&mut self) -> Option<Decoded> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            let Self {
                body,
                pending,
                ready,
                done,
            } = self;
            let buf = match body.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => {
                    *done = true;
                    // The server or a proxy cut the stream: it ends, to be resumed.
                    if ends_stream(&e) || e.kind() == std::io::ErrorKind::TimedOut {
                        return None;
                    }
                    return Some(Err(kube::Error::ReadEvents(e)));
                }
            };
            if buf.is_empty() {
                *done = true;
                if !pending.is_empty() {
                    ready.extend(decode_watch_bytes(trim_cr(pending)));
                    pending.clear();
                }
                continue;
            }
            let read = buf.len();
            let mut start = 0;
            while let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
                let end = start + i;
                if pending.is_empty() {
                    ready.extend(decode_watch_bytes(trim_cr(&buf[start..end])));
                } else {
                    pending.extend_from_slice(&buf[start..end]);
                    ready.extend(decode_watch_bytes(trim_cr(pending)));
                    pending.clear();
                }
                start = end + 1;
            }
            pending.extend_from_slice(&buf[start..]);
            body.as_mut().consume(read);
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// An unexpected end of the body, however deep the transport nested it.
fn ends_stream(e: &std::io::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = next {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
            || error.to_string().contains("unexpected EOF during chunk")
        {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `json` both ways and requires the same `DynamicObject`.
    fn same(json: &str) -> DynamicObject {
        let derived: DynamicObject = serde_json::from_str(json).expect("kube decodes");
        let ours: WatchedObject = serde_json::from_str(json).expect("faro decodes");
        assert_eq!(ours.0, derived, "for {json}");
        derived
    }

    #[test]
    fn decodes_as_the_derived_decoder_does() {
        let o = same(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"7","labels":{"x":"y"},"managedFields":[{"manager":"m","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:data":{}}}]},"data":{"k":"v\n\"q\"","n":"1"},"immutable":false}"#,
        );
        assert_eq!(o.data["data"]["k"], "v\n\"q\"");
        assert_eq!(o.types.expect("types").kind, "ConfigMap");
        // Keys in another order, escaped keys, nested objects and numbers.
        same(
            r#"{"spec":{"replicas":3,"template":{"a":[1,2.5,null,true]}},"metadata":{"name":"b"},"kind":"Deployment","apiVersion":"apps/v1","status":{"k\u00e9y":"x"}}"#,
        );
        // List items usually lack the type fields; no metadata at all.
        same(r#"{"metadata":{"name":"c"},"data":{}}"#);
        same(r#"{"data":{"a":"b"}}"#);
        same(r#"{}"#);
    }

    #[test]
    fn a_lone_type_field_is_dropped_as_by_the_derived_decoder() {
        let o = same(r#"{"kind":"X","metadata":{"name":"d"}}"#);
        assert_eq!(o.types, None);
        same(r#"{"apiVersion":"v9","data":{}}"#);
    }

    #[test]
    fn watch_lines_decode_as_kube_decodes_them() {
        let object = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"},"data":{"k":"v"}}"#;
        for kind in ["ADDED", "MODIFIED", "DELETED"] {
            let line = format!(r#"{{"type":"{kind}","object":{object}}}"#);
            let ours = decode_watch_line(&line).expect("a line").expect("decodes");
            let kube: WatchEvent<DynamicObject> = serde_json::from_str(&line).expect("decodes");
            match (ours, kube) {
                (WatchEvent::Added(a), WatchEvent::Added(b))
                | (WatchEvent::Modified(a), WatchEvent::Modified(b))
                | (WatchEvent::Deleted(a), WatchEvent::Deleted(b)) => assert_eq!(a, b),
                (a, b) => panic!("{kind}: {a:?} vs {b:?}"),
            }
        }
        // The object before the type.
        let line = format!(r#"{{"object":{object},"type":"MODIFIED"}}"#);
        assert!(matches!(
            decode_watch_line(&line),
            Some(Ok(WatchEvent::Modified(_)))
        ));
        let bookmark = r#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        match decode_watch_line(bookmark) {
            Some(Ok(WatchEvent::Bookmark(b))) => {
                assert_eq!(b.metadata.resource_version, "12");
                assert_eq!(b.metadata.annotations["k8s.io/initial-events-end"], "true");
            }
            other => panic!("{other:?}"),
        }
        let error = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#;
        match decode_watch_line(error) {
            Some(Ok(WatchEvent::Error(status))) => assert_eq!(status.code, 410),
            other => panic!("{other:?}"),
        }
        // A truncated last line is dropped; garbage is an error.
        assert!(
            decode_watch_line(&format!(r#"{{"type":"ADDED","object":{}"#, &object[..20])).is_none()
        );
        assert!(matches!(decode_watch_line("{\"type\":1}"), Some(Err(_))));
    }

    /// Lines cut anywhere between reads, CRLF endings, blank lines and a
    /// last line without its newline all come out whole, in order.
    #[test]
    fn a_body_read_in_pieces_gives_every_line_once() {
        use futures_util::TryStreamExt;
        let line = |name: &str, kind: &str| {
            format!(
                r#"{{"type":"{kind}","object":{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"{}"}}}}}}"#,
                name.repeat(40)
            )
        };
        let body = format!(
            "{}\n{}\r\n\n{}\n{}",
            line("a", "ADDED"),
            line("b", "MODIFIED"),
            line("c", "DELETED"),
            line("d", "ADDED")
        );
        for piece in [1, 7, 64, 333, body.len()] {
            let chunks: Vec<std::io::Result<Vec<u8>>> = body
                .as_bytes()
                .chunks(piece)
                .map(|c| Ok(c.to_vec()))
                .collect();
            let reader = futures_util::stream::iter(chunks).into_async_read();
            let mut lines = Lines::new(reader);
            let names: Vec<String> = block_on(async {
                let mut names = Vec::new();
                while let Some(event) = lines.next().await {
                    names.push(match event.expect("decodes") {
                        WatchEvent::Added(o) => format!("+{}", o.metadata.name.unwrap()),
                        WatchEvent::Modified(o) => format!("~{}", o.metadata.name.unwrap()),
                        WatchEvent::Deleted(o) => format!("-{}", o.metadata.name.unwrap()),
                        other => panic!("{other:?}"),
                    });
                }
                names
            });
            assert_eq!(
                names,
                ["+a", "~b", "-c", "+d"],
                "read {piece} bytes at a time"
            );
        }
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for bad in [
            r#"[1]"#,
            r#""x""#,
            r#"{"metadata":"x"}"#,
            r#"{"metadata":{"name":"a"}"#,
        ] {
            assert!(serde_json::from_str::<WatchedObject>(bad).is_err(), "{bad}");
        }
    }
}
