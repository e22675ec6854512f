//! CPU profiles on demand: sampled with the `pprof` crate (a SIGPROF
//! timer, 99 samples a second, stacks unwound in the signal handler), written in pprof's protobuf format
//! (`profile.proto`), one at a time per process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use prost::Message;

/// Samples per second.
const FREQUENCY: i32 = 99;

/// Why no profile was made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("a profile is being taken already; try again when it is done")]
    Busy,
    #[error("seconds: {0} is out of range; expected 1 to 300")]
    Seconds(u64),
    #[error("profiling failed: {0}")]
    Failed(String),
}

/// Takes CPU profiles, one at a time. Cloning shares the "one at a time".
#[derive(Debug, Clone, Default)]
pub struct CpuProfiler {
    busy: Arc<AtomicBool>,
}

/// Clears the busy flag however the profile ends.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl CpuProfiler {
    /// Samples the whole process for `seconds` (1–300) and returns the
    /// profile as gzip-less pprof protobuf. A second call while one runs
    /// gets [`ProfileError::Busy`].
    pub async fn profile(&self, seconds: u64) -> Result<Vec<u8>, ProfileError> {
        if !(1..=300).contains(&seconds) {
            return Err(ProfileError::Seconds(seconds));
        }
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(ProfileError::Busy);
        }
        let busy = Busy(self.busy.clone());
        tokio::task::spawn_blocking(move || {
            let _busy = busy;
            sample(Duration::from_secs(seconds))
        })
        .await
        .map_err(|e| ProfileError::Failed(e.to_string()))?
    }
}

fn sample(length: Duration) -> Result<Vec<u8>, ProfileError> {
    let failed = |e: pprof::Error| ProfileError::Failed(e.to_string());
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        // Unwinding from a signal handler that interrupted the unwinder
        // itself can deadlock; samples landing there are dropped. (libc is
        // not listed: most of a watcher's time is spent there, in memcpy,
        // malloc and system calls, and its samples matter.)
        .blocklist(&["libgcc", "libgcc_s", "libunwind"])
        .build()
        .map_err(failed)?;
    std::thread::sleep(length);
    let report = guard.report().build().map_err(failed)?;
    Ok(encode(&report).encode_to_vec())
}

/// The report as pprof's `Profile` message.
fn encode(report: &pprof::Report) -> proto::Profile {
    let mut strings = Strings::default();
    let samples_ty = proto::ValueType {
        r#type: strings.id("samples"),
        unit: strings.id("count"),
    };
    let cpu_ty = proto::ValueType {
        r#type: strings.id("cpu"),
        unit: strings.id("nanoseconds"),
    };
    let thread = strings.id("thread");
    let period = 1_000_000_000 / i64::from(report.timing.frequency.max(1));
    let mut functions: HashMap<String, u64> = HashMap::new();
    let mut profile = proto::Profile {
        sample_type: vec![samples_ty, cpu_ty.clone()],
        period_type: Some(cpu_ty),
        period,
        duration_nanos: i64::try_from(report.timing.duration.as_nanos()).unwrap_or(i64::MAX),
        time_nanos: report
            .timing
            .start_time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        ..proto::Profile::default()
    };
    for (frames, count) in &report.data {
        let mut locations = Vec::new();
        for symbol in frames.frames.iter().flatten() {
            let name = symbol.name();
            let id = match functions.get(&name) {
                Some(id) => *id,
                None => {
                    let id = profile.function.len() as u64 + 1;
                    profile.function.push(proto::Function {
                        id,
                        name: strings.id(&name),
                        system_name: strings.id(&symbol.sys_name()),
                        filename: strings.id(&symbol.filename()),
                        start_line: 0,
                    });
                    profile.location.push(proto::Location {
                        id,
                        mapping_id: 0,
                        address: 0,
                        line: vec![proto::Line {
                            function_id: id,
                            line: i64::from(symbol.lineno()),
                        }],
                    });
                    functions.insert(name, id);
                    id
                }
            };
            locations.push(id);
        }
        let count = i64::try_from(*count).unwrap_or(0);
        profile.sample.push(proto::Sample {
            location_id: locations,
            value: vec![count, count * period],
            label: vec![proto::Label {
                key: thread,
                str: strings.id(&frames.thread_name_or_id()),
                num: 0,
                num_unit: 0,
            }],
        });
    }
    profile.string_table = strings.table;
    profile
}

/// The profile's string table; the empty string is entry 0.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Default for Strings {
    fn default() -> Self {
        Self {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// The messages of pprof's `profile.proto` that a CPU profile uses, with
/// their field numbers.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        #[prost(int64, tag = "12")]
        pub period: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(int64, tag = "1")]
        pub key: i64,
        #[prost(int64, tag = "2")]
        pub str: i64,
        #[prost(int64, tag = "3")]
        pub num: i64,
        #[prost(int64, tag = "4")]
        pub num_unit: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        #[prost(uint64, tag = "3")]
        pub address: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
        #[prost(int64, tag = "5")]
        pub start_line: i64,
    }
}
