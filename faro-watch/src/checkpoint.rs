//! Checkpoints of watch progress: per informer, the resourceVersion up to
//! which every delivered event is durably written by every handler, and the
//! compact known state at that point. One file per GVR in the checkpoint
//! directory, written atomically (temporary file, fsync, rename).
//!
//! A round: flush every handler (their marks tell where the events files
//! stood), take a snapshot of each watching informer between two
//! deliveries, flush again (now everything in the snapshots is durable),
//! and write the snapshots with the marks of the first flush. On resume the
//! events written after those marks are read back and applied to the known
//! state, so an event written before a crash is not delivered twice, and
//! one not written is delivered once.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::{DurableMark, WrittenEvent};
use faro_filter::LabelSelector;
use serde::{Deserialize, Serialize};

use crate::classify::KnownEntry;
use crate::informer::{InformerKey, lock};

/// Where checkpoints are kept and how often they are written.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// The checkpoint directory (created if missing).
    pub directory: PathBuf,
    /// How often progress is recorded; it is also recorded at stop.
    pub interval: Duration,
    /// Ignore the checkpoints found (they are replaced by the first round).
    pub fresh: bool,
}

const VERSION: u32 = 1;

/// One GVR's checkpoint file.
#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    gvr: String,
    informers: Vec<Entry>,
}

/// One informer's progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    /// The informer's key, as displayed.
    pub key: String,
    /// What the informer delivers: its key and the client-side filters of
    /// its handler subscribers. A different fingerprint drops the entry.
    pub fingerprint: String,
    /// Watch from here after a restart.
    pub resource_version: String,
    /// Where the events files stood when the state was durable.
    #[serde(default)]
    pub marks: Vec<DurableMark>,
    /// `[key, uid, resourceVersion, delivered]`.
    pub objects: Vec<(String, String, String, bool)>,
    /// While a resumed watch replays: `[key, uid, resourceVersion]` of the
    /// objects deleted since the checkpoint it resumed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<(String, String, String)>,
}

impl Entry {
    pub fn new(
        key: &InformerKey,
        fingerprint: String,
        resource_version: String,
        known: Vec<KnownEntry>,
        tombstones: Vec<(String, String, String)>,
    ) -> Self {
        Self {
            key: key.to_string(),
            fingerprint,
            resource_version,
            marks: Vec::new(),
            objects: known
                .into_iter()
                .map(|e| (e.key, e.uid, e.resource_version, e.delivered))
                .collect(),
            tombstones,
        }
    }
}

/// What an informer resumes from.
pub(crate) struct Resume {
    pub resource_version: String,
    pub known: Vec<KnownEntry>,
    pub tombstones: Vec<(String, String, String)>,
    /// Events written after the checkpoint that belong to this informer,
    /// in the order written.
    pub written: Vec<WrittenEvent>,
}

/// The events written after one mark, read back once.
type Journal = Arc<Vec<WrittenEvent>>;

/// The checkpoints of one controller: what was loaded at start (taken by
/// informers as they start) and the latest durable entry of each informer.
pub(crate) struct Checkpoints {
    pub options: CheckpointOptions,
    loaded: Mutex<HashMap<String, Entry>>,
    /// GVRs whose files were found at start: rewritten (or removed) by the
    /// first round, so that nothing stale stays.
    found: Mutex<Vec<String>>,
    /// One round at a time.
    round: tokio::sync::Mutex<()>,
    /// Rounds fail now (one warning when they start failing, one when they work again).
    failing: std::sync::atomic::AtomicBool,
    current: Mutex<BTreeMap<String, (String, Arc<Entry>)>>,
    /// Files already read back, by mark.
    journal: Mutex<HashMap<(PathBuf, u64), Journal>>,
    /// The cluster whose lines in shared files are this controller's.
    cluster: Option<Arc<str>>,
}

impl Checkpoints {
    /// Reads every checkpoint file in the directory (unless `fresh`). A file
    /// that cannot be read or parsed is one warning; its GVR starts afresh.
    pub fn open(options: CheckpointOptions, cluster: Option<Arc<str>>) -> std::io::Result<Self> {
        std::fs::create_dir_all(&options.directory)?;
        let mut loaded = HashMap::new();
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&options.directory)?.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && let Some(stem) = name.strip_suffix(".json")
                && !name.starts_with('.')
            {
                found.push(stem.to_owned());
            }
        }
        if !options.fresh {
            for entry in std::fs::read_dir(&options.directory)?.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                match read(&path) {
                    Ok(file) => {
                        for e in file.informers {
                            loaded.insert(e.key.clone(), e);
                        }
                    }
                    Err(why) => tracing::warn!(
                        path = %path.display(),
                        "the checkpoint cannot be used ({why}); its resources start afresh"
                    ),
                }
            }
        } else {
            tracing::info!(
                directory = %options.directory.display(),
                "starting afresh: the checkpoints found are ignored and replaced"
            );
        }
        Ok(Self {
            options,
            loaded: Mutex::new(loaded),
            found: Mutex::new(found),
            round: tokio::sync::Mutex::new(()),
            failing: std::sync::atomic::AtomicBool::new(false),
            current: Mutex::default(),
            journal: Mutex::default(),
            cluster,
        })
    }

    /// The progress an informer with `key` and `fingerprint` resumes from,
    /// with the events written since; `None` for a fresh start (no entry, or
    /// a changed configuration, which is one info line).
    pub fn resume(&self, key: &InformerKey, fingerprint: &str) -> Option<Resume> {
        let label = key.to_string();
        let entry = lock(&self.loaded).remove(&label)?;
        if entry.fingerprint != fingerprint {
            tracing::info!(
                informer = %label,
                "the configuration of this watch changed since its checkpoint; it starts afresh"
            );
            return None;
        }
        let selector = LabelSelector::parse(&key.label_selector).ok();
        let gvr = key.gvr.to_string();
        let mut written = Vec::new();
        for mark in &entry.marks {
            for w in self.read_since(mark).iter() {
                let ours = w.gvr == gvr
                    && w.cluster.as_deref() == self.cluster.as_deref()
                    && key
                        .namespace
                        .as_ref()
                        .is_none_or(|ns| w.namespace.as_ref() == Some(ns))
                    && selector.as_ref().is_none_or(|s| s.matches(&w.labels));
                if ours {
                    written.push(w.clone());
                }
            }
        }
        // Kept as it is until the informer's first snapshot replaces it.
        let known = entry
            .objects
            .iter()
            .map(|(k, uid, rv, delivered)| KnownEntry {
                key: k.clone(),
                uid: uid.clone(),
                resource_version: rv.clone(),
                delivered: *delivered,
            })
            .collect();
        let resource_version = entry.resource_version.clone();
        let tombstones = entry.tombstones.clone();
        lock(&self.current).insert(label, (gvr, Arc::new(entry)));
        Some(Resume {
            resource_version,
            known,
            tombstones,
            written,
        })
    }

    fn read_since(&self, mark: &DurableMark) -> Arc<Vec<WrittenEvent>> {
        let id = (mark.path.clone(), mark.offset);
        if let Some(found) = lock(&self.journal).get(&id) {
            return found.clone();
        }
        let lines = Arc::new(WrittenEvent::read_since(mark));
        lock(&self.journal).insert(id, lines.clone());
        lines
    }

    /// Records new durable entries and forgets informers no longer running
    /// (`running`: their labels). Returns the GVRs whose files changed.
    pub fn update(&self, fresh: Vec<(String, Entry)>, running: &[String]) -> Vec<String> {
        let mut current = lock(&self.current);
        let mut changed: Vec<String> = Vec::new();
        current.retain(|label, (gvr, _)| {
            let keep = running.contains(label);
            if !keep {
                changed.push(gvr.clone());
            }
            keep
        });
        for (gvr, entry) in fresh {
            changed.push(gvr.clone());
            current.insert(entry.key.clone(), (gvr, Arc::new(entry)));
        }
        let mut stems: Vec<String> = changed.iter().map(|g| stem(g)).collect();
        stems.append(&mut lock(&self.found));
        stems.sort();
        stems.dedup();
        stems
    }

    /// Writes the files `stems` atomically; a GVR with no entry left loses its file.
    pub fn write(&self, stems: &[String]) -> std::io::Result<()> {
        for file_stem in stems {
            let mut gvr = String::new();
            let informers: Vec<Entry> = lock(&self.current)
                .values()
                .filter(|(g, _)| stem(g) == *file_stem)
                .map(|(g, e)| {
                    gvr.clone_from(g);
                    (**e).clone()
                })
                .collect();
            let path = self.options.directory.join(format!("{file_stem}.json"));
            if informers.is_empty() {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let file = File {
                version: VERSION,
                gvr,
                informers,
            };
            write_atomically(&path, &serde_json::to_vec(&file)?)?;
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<File, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let file: File = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if file.version != VERSION {
        return Err(format!(
            "version {} is not {VERSION}, the one this Faro writes",
            file.version
        ));
    }
    Ok(file)
}

/// `apps/v1/deployments` → `apps_v1_deployments` (the file's name without `.json`).
fn stem(gvr: &str) -> String {
    gvr.replace('/', "_")
}

/// Flushes every handler; the marks of the events files they wrote.
async fn flush(
    handlers: &[Arc<dyn faro_core::EventHandler>],
) -> Result<Vec<DurableMark>, faro_core::HandlerError> {
    let mut marks = Vec::new();
    for h in handlers {
        marks.extend(h.flush().await?);
    }
    Ok(marks)
}

/// How long a round waits for a watching informer's snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

/// One checkpoint round over `informers` (every informer that runs; at
/// stop, those just stopped, whose last snapshots are waiting).
pub(crate) async fn round(
    env: &crate::informer::Env,
    informers: &[Arc<crate::informer::InformerShared>],
    at_stop: bool,
) {
    let Some(cp) = env.checkpoints.clone() else {
        return;
    };
    let _one = cp.round.lock().await;
    let handlers = env.handlers();
    let result = async {
        let marks = flush(&handlers).await.map_err(|e| e.to_string())?;
        let mut fresh = Vec::new();
        let mut running = Vec::with_capacity(informers.len());
        for shared in informers {
            running.push(shared.key.to_string());
            if !at_stop {
                if shared.status().state != crate::InformerState::Watching {
                    continue;
                }
                let mut request = 0;
                shared.snapshot_request.send_modify(|n| {
                    *n += 1;
                    request = *n;
                });
                let mut done = shared.snapshot_done.subscribe();
                let answered =
                    tokio::time::timeout(SNAPSHOT_WAIT, done.wait_for(|d| *d >= request)).await;
                if !matches!(answered, Ok(Ok(_))) {
                    continue;
                }
            }
            if let Some(mut entry) = lock(&shared.snapshot).take() {
                entry.marks.clone_from(&marks);
                fresh.push((shared.key.gvr.to_string(), entry));
            }
        }
        // Everything in the snapshots is durable after this.
        flush(&handlers).await.map_err(|e| e.to_string())?;
        let stems = cp.update(fresh, &running);
        let writer = cp.clone();
        tokio::task::spawn_blocking(move || writer.write(&stems))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("writing {}: {e}", writer_dir(&cp)))
    }
    .await;
    use std::sync::atomic::Ordering;
    match result {
        Ok(()) => {
            env.metrics.checkpoints.inc();
            if cp.failing.swap(false, Ordering::Relaxed) {
                tracing::warn!("checkpoints are written again");
            }
        }
        Err(e) => {
            env.metrics.checkpoint_failures.inc();
            if !cp.failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the checkpoint is not written: {e}; the last one stays until writing works"
                );
            }
        }
    }
}

fn writer_dir(cp: &Checkpoints) -> String {
    cp.options.directory.display().to_string()
}

/// A temporary file beside `path`, synced, then renamed over it, then the
/// directory synced: a reader sees the old file or the new one, whole.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint")
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Applies written events to a resumed known state, in the order written.
pub(crate) fn apply(known: &mut crate::classify::KnownState, written: &[WrittenEvent]) {
    for w in written {
        let key = match &w.namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}/{}", w.name),
            _ => w.name.clone(),
        };
        known.apply_written(w.event_type, &key, &w.uid, &w.resource_version);
    }
}
