//! Pushing a registry's families to a Prometheus Pushgateway: a PUT of the
//! whole group under its grouping key, in the Prometheus text format, with
//! retries and back-off, bounded in time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// Who pushes: credentials read from files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PushCredentials {
    #[default]
    None,
    /// HTTP basic authentication with the password in a file.
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// `Authorization: Bearer` with the token in a file.
    Bearer { token_file: PathBuf },
}

/// Where and how to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The Pushgateway's base URL, `http://` or `https://`.
    pub url: String,
    /// The grouping key's `job`.
    pub job: String,
    /// The grouping key's other labels.
    pub grouping: BTreeMap<String, String>,
    pub credentials: PushCredentials,
    /// Bounds one push, its retries included.
    pub timeout: Duration,
    /// Further tries after a failure, with back-off, within `timeout`.
    pub retries: u32,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{url}: {message}")]
    Setup { url: String, message: String },
    #[error("cannot read {path}: {source}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("push to {url} failed: {message}")]
    Failed { url: String, message: String },
    #[error("push to {url} did not finish within {timeout:?}")]
    TimedOut { url: String, timeout: Duration },
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Pushes to one grouping key of a Pushgateway. Cloning shares it.
#[derive(Clone)]
pub struct Pusher {
    client: HttpsClient,
    /// The group's URL: base, `/metrics/job/…` and the grouping labels.
    group_url: hyper::Uri,
    shown: String,
    authorization: Option<hyper::header::HeaderValue>,
    timeout: Duration,
    retries: u32,
    failures: Counter,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("group", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A grouping-key path segment pair: plain when the value is safe in a
/// path, else the Pushgateway's `@base64` form.
fn segment(out: &mut String, label: &str, value: &str) {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if plain {
        out.push_str(&format!("/{label}/{value}"));
    } else {
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
        // An empty value is written as `=`, which the Pushgateway reads as "".
        let encoded = if encoded.is_empty() {
            "=".to_owned()
        } else {
            encoded
        };
        out.push_str(&format!("/{label}@base64/{encoded}"));
    }
}

impl Pusher {
    /// Reads the credentials and prepares the client.
    pub fn new(target: &PushTarget) -> Result<Self, PushError> {
        let mut path = String::from("/metrics");
        segment(&mut path, "job", &target.job);
        for (label, value) in &target.grouping {
            segment(&mut path, label, value);
        }
        let shown = format!("{}{path}", target.url.trim_end_matches('/'));
        let group_url: hyper::Uri = shown.parse().map_err(|e| PushError::Setup {
            url: shown.clone(),
            message: format!("not a URL: {e}"),
        })?;
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .map_err(|source| PushError::Credentials {
                    path: p.clone(),
                    source,
                })
        };
        let authorization = match &target.credentials {
            PushCredentials::None => None,
            PushCredentials::Basic {
                username,
                password_file,
            } => {
                let password = read(password_file)?;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Some(format!("Basic {token}"))
            }
            PushCredentials::Bearer { token_file } => Some(format!("Bearer {}", read(token_file)?)),
        };
        let authorization = authorization
            .map(|v| {
                let mut v =
                    hyper::header::HeaderValue::from_str(&v).map_err(|_| PushError::Setup {
                        url: shown.clone(),
                        message: "the credentials hold characters not allowed in a header".into(),
                    })?;
                v.set_sensitive(true);
                Ok(v)
            })
            .transpose()?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| PushError::Setup {
                url: shown.clone(),
                message: format!("no TLS roots: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            group_url,
            shown,
            authorization,
            timeout: target.timeout,
            retries: target.retries,
            failures: Counter::default(),
        })
    }

    /// The group's URL.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// `faro_push_failures_total`: pushes that failed, retries included.
    pub fn failures(&self) -> &Counter {
        &self.failures
    }

    /// Registers `faro_push_failures_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "faro_push_failures",
            "Pushes to the Pushgateway that failed after their retries",
            self.failures.clone(),
        );
    }

    /// Replaces the group with `registry`'s families.
    pub async fn push_registry(&self, registry: &Registry) -> Result<(), PushError> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).map_err(|e| {
            PushError::Failed {
                url: self.shown.clone(),
                message: format!("encoding the metrics: {e}"),
            }
        })?;
        self.push(&text).await
    }

    /// Replaces the group with these families (OpenMetrics text, as
    /// `/metrics` serves it): tries `1 + retries` times with back-off, all
    /// within the timeout; a failure is counted.
    pub async fn push(&self, openmetrics: &str) -> Result<(), PushError> {
        let body = Bytes::from(to_prometheus_text(openmetrics));
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, self.put(body.clone())).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(message)) => last = message,
                Err(_) => {
                    self.failures.inc();
                    return Err(PushError::TimedOut {
                        url: self.shown.clone(),
                        timeout: self.timeout,
                    });
                }
            }
            if attempt < self.retries {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(backoff.min(left)).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        self.failures.inc();
        if last.is_empty() {
            return Err(PushError::TimedOut {
                url: self.shown.clone(),
                timeout: self.timeout,
            });
        }
        Err(PushError::Failed {
            url: self.shown.clone(),
            message: last,
        })
    }

    async fn put(&self, body: Bytes) -> Result<(), String> {
        let mut request = hyper::Request::put(self.group_url.clone())
            .header(
                hyper::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        if let Some(a) = &self.authorization {
            request
                .headers_mut()
                .insert(hyper::header::AUTHORIZATION, a.clone());
        }
        let response = self.client.request(request).await.map_err(|e| {
            match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        Err(format!("{status}: {text}"))
    }
}

/// OpenMetrics text (as prometheus-client writes it) in the Prometheus
/// text format 0.0.4 that every Pushgateway reads: counter and info
/// families named as their samples are (`_total`, `_info`), no `# UNIT`,
/// no `# EOF`, no exemplars.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        // A sample, without its exemplar.
        let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP faro_events Events.\n# TYPE faro_events counter\nfaro_events_total{gvr=\"v1/pods\"} 3\n# HELP faro_build Build.\n# TYPE faro_build info\nfaro_build_info{version=\"0.1\"} 1\n# HELP up_seconds Up.\n# TYPE up_seconds gauge\n# UNIT up_seconds seconds\nup_seconds 2.5\n# HELP lat Lat.\n# TYPE lat histogram\nlat_sum 1.0\nlat_count 2\nlat_bucket{le=\"+Inf\"} 2 # {a=\"b\"} 1.0\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP faro_events_total Events.\n# TYPE faro_events_total counter\nfaro_events_total{gvr=\"v1/pods\"} 3\n# HELP faro_build_info Build.\n# TYPE faro_build_info gauge\nfaro_build_info{version=\"0.1\"} 1\n# HELP up_seconds Up.\n# TYPE up_seconds gauge\nup_seconds 2.5\n# HELP lat Lat.\n# TYPE lat histogram\nlat_sum 1.0\nlat_count 2\nlat_bucket{le=\"+Inf\"} 2\n"
        );
    }

    #[test]
    fn grouping_values_unsafe_in_a_path_are_base64() {
        let mut p = String::new();
        segment(&mut p, "job", "faro");
        segment(&mut p, "instance", "10.0.0.1:80/x");
        segment(&mut p, "empty", "");
        assert_eq!(
            p,
            "/job/faro/instance@base64/MTAuMC4wLjE6ODAveA==/empty@base64/="
        );
    }
}
