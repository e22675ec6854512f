//! The performance monitor's view of a run (a source of its snapshots), and
//! the periodic statistics line as a hook on its collections: events per
//! minute by type, informers by state, tracked objects, queue depths,
//! dropped events, log streams open and waiting, RSS.

use std::time::{Duration, Instant};

use faro_dispatch::Dispatcher;
use faro_monitor::Snapshot;
use faro_watch::InformerState;

use crate::watching::Watching;

/// Events handed over so far, by type, summed over GVRs and clusters.
pub fn events_by_type(watching: &Watching) -> [u64; 3] {
    let mut out = [0u64; 3];
    for controller in watching.controllers() {
        let infos = controller.active_informers();
        let mut gvrs: Vec<String> = infos.iter().map(|i| i.key.gvr.to_string()).collect();
        gvrs.sort();
        gvrs.dedup();
        for gvr in gvrs {
            for (total, n) in out.iter_mut().zip(controller.metrics().events_of(&gvr)) {
                *total += n;
            }
        }
    }
    out
}

/// The watches and the dispatcher as a source of the monitor's snapshots.
pub fn source(watching: Watching, dispatcher: Dispatcher) -> impl Fn(&mut Snapshot) + Send + Sync {
    move |s: &mut Snapshot| {
        let infos = watching.active_informers();
        for i in &infos {
            *s.informers.entry(i.state.as_str().to_owned()).or_default() += 1;
        }
        s.tracked_objects = infos.iter().map(|i| i.tracked_objects as u64).sum();
        s.events_handled = events_by_type(&watching).iter().sum();
        s.unwatched = infos
            .iter()
            .filter(|i| matches!(i.state, InformerState::Listing | InformerState::Backoff))
            .map(|i| (i.key.to_string(), i.in_state_for))
            .collect();
        s.queue_depths = dispatcher.queue_depths().into_iter().collect();
        s.errors = dispatcher.errors_total();
        s.event_latency = dispatcher.latency_counts();
        s.log_streams_open = watching.log_streams().map(|l| l.open);
    }
}

/// The statistics line, as a hook on the monitor's periodic collections
/// (made every `collected`; a line about every `interval`): events per
/// minute by type, informers by state, tracked objects, queued and dropped
/// events, log streams, resident memory.
pub fn hook(
    watching: Watching,
    dispatcher: Dispatcher,
    interval: Duration,
    collected: Duration,
) -> impl Fn(&str, &Snapshot) + Send + Sync {
    let last = std::sync::Mutex::new((Instant::now(), events_by_type(&watching)));
    move |event: &str, s: &Snapshot| {
        if event != "metrics_collection" {
            return;
        }
        let now = events_by_type(&watching);
        let (elapsed, before) = {
            let mut l = last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let elapsed = l.0.elapsed();
            if elapsed + collected / 2 < interval {
                return;
            }
            let before = std::mem::replace(&mut *l, (Instant::now(), now)).1;
            (elapsed, before)
        };
        let per_minute =
            |i: usize| (now[i].saturating_sub(before[i])) as f64 * 60.0 / elapsed.as_secs_f64();
        let count = |state: InformerState| s.informers.get(state.as_str()).copied().unwrap_or(0);
        let streams = watching.log_streams().unwrap_or_default();
        tracing::info!(
            added_per_min = per_minute(0),
            updated_per_min = per_minute(1),
            deleted_per_min = per_minute(2),
            watching = count(InformerState::Watching),
            listing = count(InformerState::Listing),
            backoff = count(InformerState::Backoff),
            parked = count(InformerState::Parked),
            tracked = s.tracked_objects,
            queued = s.queue_depths.values().sum::<usize>(),
            dropped = dispatcher.dropped_total(),
            log_streams_open = streams.open,
            log_streams_waiting = streams.waiting,
            rss_bytes = s.resident_bytes,
            "stats"
        );
    }
}
