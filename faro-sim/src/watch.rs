//! Watch streams: chunked JSON lines, replayed from the history window.
//!
//! Each watch pulls batches of history entries after the last version it
//! sent, so a slow reader costs no memory; a reader that falls out of the
//! window gets the `410 Expired` ERROR event a real server sends. Selector
//! transitions follow the watch cache: an object that starts matching is
//! ADDED, one that stops matching is DELETED (with its previous content at
//! the event's version).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ops::{Selection, Target};
use crate::shared::{OpenWatch, Shared};
use crate::status::ApiError;
use crate::store::{Change, HistoryEntry, Stored};

/// The watch options of a request.
#[derive(Debug, Default)]
pub(crate) struct WatchQuery {
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout: Option<Duration>,
}

/// Where a request came from, for `/faro-sim/v1/watches`.
pub(crate) struct Origin {
    pub path: String,
    pub query: String,
    pub user_agent: String,
}

enum Start {
    /// Synthetic ADDED events for the current state, then live.
    Initial { bookmark_end: bool },
    /// Live from a version (exclusive).
    From(u64),
}

const BATCH: usize = 2048;

pub(crate) fn watch(
    shared: Arc<Shared>,
    target: Target,
    selection: Selection,
    q: WatchQuery,
    origin: Origin,
) -> Result<Response, ApiError> {
    let rv = q.resource_version.as_deref().filter(|s| !s.is_empty());
    let start = match q.send_initial_events {
        Some(true) => {
            if !shared.config.streaming_lists {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                ));
            }
            if q.resource_version_match.as_deref() != Some("NotOlderThan") {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !q.allow_bookmarks {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
            Start::Initial { bookmark_end: true }
        }
        _ => match rv {
            None | Some("0") => Start::Initial {
                bookmark_end: false,
            },
            Some(text) => Start::From(text.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {text:?}"))
            })?),
        },
    };

    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let last_rv = Arc::new(AtomicU64::new(0));
    let id = shared.register_watch(OpenWatch {
        path: origin.path,
        query: origin.query,
        user_agent: origin.user_agent,
        last_rv: last_rv.clone(),
    });
    let stream = WatchStream {
        shared: shared.clone(),
        storage: target.def.storage_key(),
        target,
        selection,
        bookmarks: q.allow_bookmarks,
        deadline: q.timeout.map(|t| Instant::now() + t),
        tx,
        last_rv,
    };
    tokio::spawn(async move {
        stream.run(start).await;
        shared.unregister_watch(id);
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|chunk| chunk.map(Ok::<_, Infallible>))
    }));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

struct WatchStream {
    shared: Arc<Shared>,
    /// The target's storage key, computed once: every history entry is compared with it.
    storage: String,
    target: Target,
    selection: Selection,
    bookmarks: bool,
    deadline: Option<Instant>,
    tx: mpsc::Sender<Bytes>,
    last_rv: Arc<AtomicU64>,
}

fn line(kind: &str, object: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    out
}

impl WatchStream {
    fn matches(&self, object: &Stored) -> bool {
        self.target
            .namespace
            .as_deref()
            .is_none_or(|ns| object.namespace.as_deref() == Some(ns))
            && self.selection.matches(object)
    }

    fn still_served(&self) -> bool {
        let d = &self.target.def;
        self.shared
            .registry()
            .find(&d.group, &d.version, &d.plural)
            .is_some()
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Vec<u8> {
        let mut object = json!({
            "kind": self.target.def.kind,
            "apiVersion": self.target.def.api_version(),
            "metadata": { "resourceVersion": rv.to_string() },
        });
        if initial_end {
            object["metadata"]["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        line("BOOKMARK", &serde_json::to_vec(&object).unwrap_or_default())
    }

    /// Sends a chunk, first waiting out a freeze. False when the stream must end.
    async fn send(&self, chunk: Vec<u8>, close: &mut tokio::sync::watch::Receiver<u64>) -> bool {
        while let Some(until) = self.shared.frozen_until() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                _ = close.changed() => return false,
                () = self.tx.closed() => return false,
            }
        }
        if chunk.is_empty() {
            return true;
        }
        tokio::select! {
            sent = self.tx.send(Bytes::from(chunk)) => sent.is_ok(),
            _ = close.changed() => false,
        }
    }

    /// The object as this watch's resource shows it.
    fn json_of(&self, object: &Stored) -> Bytes {
        object.json_for(&self.target.def)
    }

    /// Appends what this watcher sees of one history entry.
    fn render(&self, entry: &HistoryEntry, out: &mut Vec<u8>) {
        if *entry.storage != *self.storage {
            return;
        }
        let now = self.matches(&entry.object);
        let before = entry.prev.as_deref().is_some_and(|p| self.matches(p));
        match entry.change {
            Change::Added if now => out.extend(line("ADDED", &self.json_of(&entry.object))),
            Change::Modified => match (before, now) {
                (true, true) => out.extend(line("MODIFIED", &self.json_of(&entry.object))),
                (false, true) => out.extend(line("ADDED", &self.json_of(&entry.object))),
                (true, false) => {
                    let prev = entry.prev.as_deref().map(|p| p.at_rv(entry.rv));
                    if let Some(prev) = prev {
                        out.extend(line("DELETED", &self.json_of(&prev)));
                    }
                }
                (false, false) => {}
            },
            Change::Deleted if before || now => {
                out.extend(line("DELETED", &self.json_of(&entry.object)));
            }
            _ => {}
        }
    }

    async fn run(self, start: Start) {
        let mut close = self.shared.close_tx.subscribe();
        close.mark_unchanged();
        let mut rv_rx = self.shared.rv_tx.subscribe();
        let mut last = match start {
            Start::From(rv) => rv,
            Start::Initial { bookmark_end } => {
                let (objects, rv) = {
                    let store = self.shared.store();
                    let objects = store.list(&self.storage, self.target.namespace.as_deref());
                    (objects, store.rv())
                };
                let mut out = Vec::new();
                for object in objects.iter().filter(|o| self.matches(o)) {
                    out.extend(line("ADDED", &self.json_of(object)));
                    if out.len() > 1 << 20 && !self.send(std::mem::take(&mut out), &mut close).await
                    {
                        return;
                    }
                }
                if bookmark_end {
                    out.extend(self.bookmark(rv, true));
                }
                if !self.send(out, &mut close).await {
                    return;
                }
                self.last_rv.store(rv, Ordering::Relaxed);
                rv
            }
        };
        let interval = self.shared.config.bookmark_interval;
        let mut next_bookmark = Instant::now() + interval;
        loop {
            let batch = self.shared.store().events_after(last, BATCH);
            let batch = match batch {
                Ok(batch) => batch,
                Err(expired) => {
                    let status = ApiError::expired(format!(
                        "too old resource version: {last} ({})",
                        expired.oldest
                    ))
                    .to_status();
                    let _ = self
                        .send(
                            line("ERROR", &serde_json::to_vec(&status).unwrap_or_default()),
                            &mut close,
                        )
                        .await;
                    return;
                }
            };
            if let Some(newest) = batch.last() {
                let mut out = Vec::new();
                for entry in &batch {
                    self.render(entry, &mut out);
                }
                last = newest.rv;
                if !self.send(out, &mut close).await {
                    return;
                }
                self.last_rv.store(last, Ordering::Relaxed);
                continue;
            }
            // Caught up. A resource no longer served (its CRD deleted) ends
            // here, after its objects' DELETED events went out.
            if !self.still_served() {
                return;
            }
            // Wait for a write, a bookmark, the deadline or the end.
            let deadline = self
                .deadline
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let wake_bookmark = if self.bookmarks {
                next_bookmark
            } else {
                deadline
            };
            rv_rx.mark_unchanged();
            if self.shared.store().rv() > last {
                continue;
            }
            tokio::select! {
                _ = rv_rx.changed() => {}
                () = tokio::time::sleep_until(wake_bookmark.min(deadline)) => {
                    if Instant::now() >= deadline {
                        return;
                    }
                    if self.bookmarks && Instant::now() >= next_bookmark {
                        if !self.send(self.bookmark(last, false), &mut close).await {
                            return;
                        }
                        self.last_rv.store(last, Ordering::Relaxed);
                        next_bookmark = Instant::now() + interval;
                    }
                }
                _ = close.changed() => return,
                () = self.tx.closed() => return,
            }
        }
    }
}
