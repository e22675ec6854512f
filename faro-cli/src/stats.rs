//! The periodic runtime statistics line: events per minute by type,
//! informers by state, tracked objects, queue depths, dropped events, log
//! streams open and waiting, RSS.

use std::time::Duration;

use faro_dispatch::Dispatcher;
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

/// Logs one statistics line every `interval` until aborted.
pub async fn every(interval: Duration, watching: Watching, dispatcher: Dispatcher) {
    let controller = &watching;
    let mut last = events_by_type(&watching);
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = events_by_type(&watching);
        let before = std::mem::replace(&mut last, now);
        let per_minute =
            |i: usize| (now[i].saturating_sub(before[i])) as f64 * 60.0 / interval.as_secs_f64();
        let infos = controller.active_informers();
        let count = |s: InformerState| infos.iter().filter(|i| i.state == s).count();
        let tracked: usize = infos.iter().map(|i| i.tracked_objects).sum();
        let queued: usize = dispatcher.queue_depths().iter().map(|(_, d)| d).sum();
        let streams = controller.log_streams().unwrap_or_default();
        tracing::info!(
            added_per_min = per_minute(0),
            updated_per_min = per_minute(1),
            deleted_per_min = per_minute(2),
            watching = count(InformerState::Watching),
            listing = count(InformerState::Listing),
            backoff = count(InformerState::Backoff),
            parked = count(InformerState::Parked),
            tracked,
            queued,
            dropped = dispatcher.dropped_total(),
            log_streams_open = streams.open,
            log_streams_waiting = streams.waiting,
            rss_bytes = crate::http::resident_bytes(),
            "stats"
        );
    }
}
