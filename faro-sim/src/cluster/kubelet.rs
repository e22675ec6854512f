//! A kubelet stand-in for every simulated node: pods bound to a node go
//! through image pulls, init containers (sidecars among them), running
//! containers that write log lines, readiness, exits and restarts with
//! CrashLoopBackOff's back-off, and graceful termination.
//!
//! Pod annotations drive failures: `faro-sim.io/exit-after` with
//! `faro-sim.io/exit-code` (a crash or a completion), `faro-sim.io/oom-after`
//! (`OOMKilled`, exit 137), `faro-sim.io/image-pull: fail` (`ErrImagePull`,
//! then `ImagePullBackOff`), `faro-sim.io/exit-container` (only these
//! containers), `faro-sim.io/log-rate` (lines per second per container) and
//! `faro-sim.io/shutdown-seconds` (how long a container takes to stop).
//!
//! A container with a log rate above zero also writes a line when it
//! starts, when it exits and when it shuts down; at zero it writes nothing
//! by itself, so that tests appending lines see exactly theirs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::events::Occurrence;
use super::scheduler::set_condition;
use super::{Api, Key, Manager, NODES, PODS, Source, deleting, now_rfc3339, seconds};
use crate::ops::DeleteOptions;
use crate::shared::{ContainerLog, Shared};

/// How often running containers write their log lines.
pub(crate) const LOG_TICK: Duration = Duration::from_millis(100);
/// CrashLoopBackOff and image pull back-off: 10 s doubling to 5 min.
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long without exiting starts its back-off anew.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How long an image pull, and an init container's work, take.
const PULL: Duration = Duration::from_millis(150);
const INIT_WORK: Duration = Duration::from_millis(200);
/// A batch container (restartPolicy Never or OnFailure) with no exit
/// annotation finishes its work after this long, with exit code 0.
const BATCH_WORK: Duration = Duration::from_secs(2);
/// How long a container takes to stop after SIGTERM, unless annotated.
const SHUTDOWN: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    Sidecar,
    Regular,
    Ephemeral,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Not started yet (`PodInitializing` / `ContainerCreating`).
    Created,
    Waiting {
        reason: &'static str,
        message: String,
    },
    Running,
    Terminated {
        code: i64,
        reason: &'static str,
        finished: String,
    },
}

#[derive(Debug)]
struct Container {
    name: String,
    image: String,
    kind: Kind,
    state: State,
    started_at: String,
    started: Option<Instant>,
    last_state: Value,
    restarts: u64,
    /// When the state changes by itself: an exit, a back-off's end, a pull retry.
    next: Option<Instant>,
    exit: (i64, &'static str),
    backoff_steps: u32,
    pull_failures: u32,
    ready_at: Option<Instant>,
    container_id: String,
    log_credit: f64,
    line_no: u64,
}

#[derive(Debug)]
struct PodRuntime {
    uid: String,
    node: String,
    ip: String,
    start_time: String,
    policy: String,
    containers: Vec<Container>,
    stop_at: Option<(Instant, bool)>,
    log_rate: f64,
    sandbox_at: Instant,
}

/// Every pod the kubelets run, by (namespace, name).
#[derive(Debug, Default)]
pub(crate) struct Kubelet {
    pods: HashMap<(String, String), PodRuntime>,
    pulled: HashSet<(String, String)>,
    next_ip: u32,
    pub round_robin: usize,
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod["metadata"]["annotations"][key].as_str()
}

fn hex_id(seed: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut out = String::with_capacity(64);
    for round in 0u64..4 {
        for b in seed.bytes().chain(round.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

fn containers_of(pod: &Value) -> Vec<Container> {
    let mut out = Vec::new();
    let mut add = |list: &Value, kind: Kind| {
        for c in list.as_array().into_iter().flatten() {
            let kind = if kind == Kind::Init && c["restartPolicy"] == "Always" {
                Kind::Sidecar
            } else {
                kind
            };
            out.push(Container {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                image: c["image"].as_str().unwrap_or_default().to_string(),
                kind,
                state: State::Created,
                started_at: String::new(),
                started: None,
                last_state: json!({}),
                restarts: 0,
                next: None,
                exit: (0, "Completed"),
                backoff_steps: 0,
                pull_failures: 0,
                ready_at: None,
                container_id: String::new(),
                log_credit: 0.0,
                line_no: 0,
            });
        }
    };
    add(&pod["spec"]["initContainers"], Kind::Init);
    add(&pod["spec"]["containers"], Kind::Regular);
    add(&pod["spec"]["ephemeralContainers"], Kind::Ephemeral);
    out
}

/// Appends lines to a container's log (creating it for a container that
/// appeared later, like an ephemeral one) and wakes followers.
pub(crate) fn append_lines(
    shared: &Shared,
    ns: &str,
    pod: &str,
    uid: &str,
    c: &str,
    lines: &[String],
) {
    {
        let mut logs = shared.logs();
        let log = logs
            .entry((ns.to_string(), pod.to_string(), c.to_string()))
            .or_insert_with(|| ContainerLog::for_pod(uid));
        let limit = shared.config.log_bytes_per_container;
        for line in lines {
            log.push(jiff::Timestamp::now(), line.clone(), limit);
        }
        log.appended.send_modify(|n| *n += 1);
    }
}

/// Marks a container's current instance as exited: followers end.
fn end_log(shared: &Shared, ns: &str, pod: &str, c: &str) {
    if let Some(log) = shared
        .logs()
        .get_mut(&(ns.to_string(), pod.to_string(), c.to_string()))
    {
        log.terminated = true;
    }
    shared.logs_tx.send_modify(|g| *g += 1);
}

fn rotate_log(shared: &Shared, ns: &str, pod: &str, uid: &str, c: &str) {
    {
        let mut logs = shared.logs();
        let log = logs
            .entry((ns.to_string(), pod.to_string(), c.to_string()))
            .or_insert_with(|| ContainerLog::for_pod(uid));
        log.rotate();
    }
    shared.logs_tx.send_modify(|g| *g += 1);
}

/// What one sync of a pod records and writes.
struct Sync<'a, 'b> {
    m: &'a mut Manager,
    api: &'a Api<'b>,
    pod: Value,
    ns: String,
    name: String,
    now: Instant,
}

impl Sync<'_, '_> {
    fn event(&mut self, c: Option<&Container>, warning: bool, reason: &str, message: String) {
        let field_path = c.map(|c| {
            let list = match c.kind {
                Kind::Init | Kind::Sidecar => "initContainers",
                Kind::Regular => "containers",
                Kind::Ephemeral => "ephemeralContainers",
            };
            format!("spec.{list}{{{}}}", c.name)
        });
        let node = self.pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.m.recorder.record(
            self.api,
            Source {
                component: "kubelet",
                host: Some(&node),
            },
            Occurrence {
                involved: &self.pod,
                field_path,
                warning,
                reason,
                message,
                action: "",
            },
        );
    }

    fn log(&self, uid: &str, c: &str, lines: &[String]) {
        append_lines(self.api.shared, &self.ns, &self.name, uid, c, lines);
    }

    fn backoff(steps: u32) -> Duration {
        let factor = 1u32 << steps.min(8);
        (BACKOFF_INITIAL * factor / 2).clamp(BACKOFF_INITIAL, BACKOFF_MAX)
    }

    /// Pulls the image and starts the container; false while the pull fails.
    fn start(&mut self, rt: &mut PodRuntime, i: usize) -> bool {
        let clock = self.m.clock;
        let pull_fails = annotation(&self.pod, "faro-sim.io/image-pull") == Some("fail");
        let c = &rt.containers[i];
        let image = c.image.clone();
        let pull_always = self
            .pod_container(c)
            .is_some_and(|s| s["imagePullPolicy"] == "Always");
        let present = self
            .m
            .kubelet
            .pulled
            .contains(&(rt.node.clone(), image.clone()));
        if pull_fails {
            let c = &rt.containers[i];
            let message = format!(
                "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
            );
            self.event(
                Some(c),
                false,
                "Pulling",
                format!("Pulling image \"{image}\""),
            );
            self.event(Some(c), true, "Failed", message.clone());
            self.event(Some(c), true, "Failed", "Error: ErrImagePull".into());
            let c = &mut rt.containers[i];
            c.pull_failures += 1;
            c.state = State::Waiting {
                reason: "ErrImagePull",
                message,
            };
            c.next = Some(clock.after(Duration::from_secs(1)));
            return false;
        }
        if present && !pull_always {
            let c = &rt.containers[i];
            self.event(
                Some(c),
                false,
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            );
        } else {
            let c = &rt.containers[i];
            self.event(
                Some(c),
                false,
                "Pulling",
                format!("Pulling image \"{image}\""),
            );
            let size = 10_000_000 + (hex_id(&image).len() as u64 * 123_457) % 90_000_000;
            self.event(
                Some(c),
                false,
                "Pulled",
                format!(
                    "Successfully pulled image \"{image}\" in {ms}ms ({ms}ms including waiting). Image size: {size} bytes.",
                    ms = PULL.as_millis()
                ),
            );
            self.m
                .kubelet
                .pulled
                .insert((rt.node.clone(), image.clone()));
        }
        let c = &rt.containers[i];
        let name = c.name.clone();
        self.event(
            Some(c),
            false,
            "Created",
            format!("Created container: {name}"),
        );
        self.event(
            Some(c),
            false,
            "Started",
            format!("Started container {name}"),
        );
        let restarts = rt.containers[i].restarts;
        let kind = rt.containers[i].kind;
        let spec = self
            .pod_container(&rt.containers[i])
            .cloned()
            .unwrap_or_default();
        let c = &mut rt.containers[i];
        c.state = State::Running;
        c.started = Some(self.now);
        c.started_at = now_rfc3339();
        c.pull_failures = 0;
        c.container_id = format!(
            "containerd://{}",
            hex_id(&format!("{}/{}/{restarts}", rt.uid, c.name))
        );
        let delay = seconds(&spec["readinessProbe"]["initialDelaySeconds"]).unwrap_or_default();
        c.ready_at = Some(self.now + clock.real(delay));
        // When (and how) this instance ends by itself.
        let applies = annotation(&self.pod, "faro-sim.io/exit-container")
            .is_none_or(|list| list.split(',').any(|n| n.trim() == name));
        let exit_after =
            annotation(&self.pod, "faro-sim.io/exit-after").and_then(|v| seconds(&json!(v)));
        let oom_after =
            annotation(&self.pod, "faro-sim.io/oom-after").and_then(|v| seconds(&json!(v)));
        let code: i64 = annotation(&self.pod, "faro-sim.io/exit-code")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        c.next = None;
        match kind {
            Kind::Init => {
                c.exit = (0, "Completed");
                c.next = Some(clock.after(INIT_WORK));
            }
            Kind::Regular if applies && oom_after.is_some() => {
                c.exit = (137, "OOMKilled");
                c.next = oom_after.map(|d| clock.after(d));
            }
            Kind::Regular if applies && exit_after.is_some() => {
                c.exit = (code, if code == 0 { "Completed" } else { "Error" });
                c.next = exit_after.map(|d| clock.after(d));
            }
            Kind::Regular if rt.policy != "Always" => {
                c.exit = (0, "Completed");
                c.next = Some(clock.after(BATCH_WORK));
            }
            _ => {}
        }
        let first = match kind {
            Kind::Init => vec![format!("init {name}: preparing")],
            _ => vec![format!(
                "starting {name} (image {image}, restart {restarts})"
            )],
        };
        let uid = rt.uid.clone();
        if rt.log_rate > 0.0 {
            self.log(&uid, &name, &first);
        }
        true
    }

    fn pod_container<'p>(&'p self, c: &Container) -> Option<&'p Value> {
        let list = match c.kind {
            Kind::Init | Kind::Sidecar => "initContainers",
            Kind::Regular => "containers",
            Kind::Ephemeral => "ephemeralContainers",
        };
        self.pod["spec"][list]
            .as_array()?
            .iter()
            .find(|s| s["name"] == c.name.as_str())
    }

    fn terminate(&mut self, rt: &mut PodRuntime, i: usize, code: i64, reason: &'static str) {
        let c = &mut rt.containers[i];
        let finished = now_rfc3339();
        c.state = State::Terminated {
            code,
            reason,
            finished,
        };
        c.next = None;
        let line = match reason {
            "OOMKilled" => None,
            "Completed" if c.kind == Kind::Init => Some(format!("init {}: done", c.name)),
            "Completed" => Some(format!("{}: work done, exiting with 0", c.name)),
            _ => Some(format!("{}: fatal error, exiting with {code}", c.name)),
        };
        let (uid, name) = (rt.uid.clone(), c.name.clone());
        if let Some(line) = line.filter(|_| rt.log_rate > 0.0) {
            self.log(&uid, &name, &[line]);
        }
        end_log(self.api.shared, &self.ns, &self.name, &name);
    }

    /// A terminated container is started again when the policy says so,
    /// after CrashLoopBackOff's back-off from the second restart on.
    fn maybe_restart(&mut self, rt: &mut PodRuntime, i: usize) {
        let c = &rt.containers[i];
        let State::Terminated { code, .. } = c.state else {
            return;
        };
        let restart = match c.kind {
            Kind::Sidecar => true,
            Kind::Init => code != 0 && rt.policy != "Never",
            Kind::Regular => match rt.policy.as_str() {
                "Never" => false,
                "OnFailure" => code != 0,
                _ => true,
            },
            Kind::Ephemeral => false,
        };
        if !restart {
            return;
        }
        let clock = self.m.clock;
        let ran_long = c
            .started
            .is_some_and(|s| self.now.duration_since(s) >= clock.real(BACKOFF_RESET));
        let c = &mut rt.containers[i];
        if ran_long {
            c.backoff_steps = 0;
        }
        if c.backoff_steps == 0 {
            c.backoff_steps = 1;
            self.restart_now(rt, i);
            return;
        }
        let delay = Self::backoff(c.backoff_steps);
        c.backoff_steps += 1;
        let message = format!(
            "back-off {} restarting failed container={} pod={}_{}({})",
            human(delay),
            c.name,
            self.name,
            self.ns,
            rt.uid
        );
        c.state = State::Waiting {
            reason: "CrashLoopBackOff",
            message,
        };
        c.next = Some(clock.after(delay));
        let (name, pod, ns, uid) = (
            c.name.clone(),
            self.name.clone(),
            self.ns.clone(),
            rt.uid.clone(),
        );
        let c = &rt.containers[i];
        self.event(
            Some(c),
            true,
            "BackOff",
            format!("Back-off restarting failed container {name} in pod {pod}_{ns}({uid})"),
        );
    }

    fn restart_now(&mut self, rt: &mut PodRuntime, i: usize) {
        let c = &mut rt.containers[i];
        if let State::Terminated {
            code,
            reason,
            finished,
        } = &c.state
        {
            c.last_state = json!({ "terminated": {
                "exitCode": code, "reason": reason, "startedAt": c.started_at,
                "finishedAt": finished, "containerID": c.container_id,
            }});
        }
        c.restarts += 1;
        let (uid, name) = (rt.uid.clone(), c.name.clone());
        rotate_log(self.api.shared, &self.ns, &self.name, &uid, &name);
        self.start(rt, i);
    }

    /// Moves every container as far as time allows; returns true when the
    /// pod's containers have all stopped because it is being deleted.
    fn advance(&mut self, rt: &mut PodRuntime) -> bool {
        if deleting(&self.pod) {
            return self.stop(rt);
        }
        let clock = self.m.clock;
        // Due exits and back-off ends.
        for i in 0..rt.containers.len() {
            let due = rt.containers[i].next.is_some_and(|n| n <= self.now);
            if !due {
                continue;
            }
            match rt.containers[i].state.clone() {
                State::Running => {
                    let (code, reason) = rt.containers[i].exit;
                    self.terminate(rt, i, code, reason);
                    self.maybe_restart(rt, i);
                }
                State::Waiting {
                    reason: "ErrImagePull",
                    ..
                } => {
                    let c = &mut rt.containers[i];
                    let delay = Self::backoff(c.pull_failures);
                    let image = c.image.clone();
                    c.state = State::Waiting {
                        reason: "ImagePullBackOff",
                        message: format!("Back-off pulling image \"{image}\""),
                    };
                    c.next = Some(clock.after(delay));
                    let c = &rt.containers[i];
                    self.event(
                        Some(c),
                        false,
                        "BackOff",
                        format!("Back-off pulling image \"{image}\""),
                    );
                    self.event(Some(c), true, "Failed", "Error: ImagePullBackOff".into());
                }
                State::Waiting {
                    reason: "ImagePullBackOff",
                    ..
                } => {
                    rt.containers[i].next = None;
                    if rt.containers[i].restarts > 0 || rt.containers[i].started.is_some() {
                        self.restart_now(rt, i);
                    } else {
                        self.start(rt, i);
                    }
                }
                State::Waiting { .. } => self.restart_now(rt, i),
                _ => rt.containers[i].next = None,
            }
        }
        // Init containers in order; a sidecar needs only to have started.
        for i in 0..rt.containers.len() {
            match (rt.containers[i].kind, &rt.containers[i].state) {
                (Kind::Init, State::Terminated { code: 0, .. }) => continue,
                (Kind::Sidecar, State::Running | State::Terminated { .. }) => continue,
                (Kind::Init | Kind::Sidecar, State::Created) => {
                    if self.start(rt, i) && rt.containers[i].kind == Kind::Sidecar {
                        continue;
                    }
                    return false;
                }
                (Kind::Init | Kind::Sidecar, _) => return false,
                _ => {}
            }
        }
        for i in 0..rt.containers.len() {
            if matches!(rt.containers[i].kind, Kind::Regular | Kind::Ephemeral)
                && rt.containers[i].state == State::Created
            {
                self.start(rt, i);
            }
        }
        false
    }

    /// Graceful termination: Killing, the containers' last lines, their exit.
    fn stop(&mut self, rt: &mut PodRuntime) -> bool {
        let clock = self.m.clock;
        let Some((stop_at, killed)) = rt.stop_at else {
            let grace = seconds(&self.pod["metadata"]["deletionGracePeriodSeconds"])
                .unwrap_or(Duration::from_secs(30));
            let shutdown = annotation(&self.pod, "faro-sim.io/shutdown-seconds")
                .and_then(|v| seconds(&json!(v)))
                .unwrap_or(SHUTDOWN);
            for i in 0..rt.containers.len() {
                if rt.containers[i].state == State::Running {
                    let name = rt.containers[i].name.clone();
                    let c = &rt.containers[i];
                    self.event(
                        Some(c),
                        false,
                        "Killing",
                        format!("Stopping container {name}"),
                    );
                }
            }
            let at = self.now + clock.real(shutdown.min(grace));
            rt.stop_at = Some((at, shutdown > grace));
            return false;
        };
        if self.now < stop_at {
            return false;
        }
        for i in 0..rt.containers.len() {
            match rt.containers[i].state {
                State::Running => {
                    let name = rt.containers[i].name.clone();
                    let mut lines = vec![format!("{name}: received SIGTERM, shutting down")];
                    if !killed {
                        lines.push(format!("{name}: shutdown complete"));
                    }
                    let uid = rt.uid.clone();
                    if rt.log_rate > 0.0 {
                        self.log(&uid, &name, &lines);
                    }
                    let (code, reason) = if killed {
                        (137, "Error")
                    } else {
                        (0, "Completed")
                    };
                    let c = &mut rt.containers[i];
                    c.state = State::Terminated {
                        code,
                        reason,
                        finished: now_rfc3339(),
                    };
                    c.next = None;
                    end_log(self.api.shared, &self.ns, &self.name, &name);
                }
                State::Created | State::Waiting { .. } => {
                    rt.containers[i].state = State::Terminated {
                        code: 0,
                        reason: "ContainerStatusUnknown",
                        finished: now_rfc3339(),
                    };
                }
                State::Terminated { .. } => {}
            }
        }
        true
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn container_status(c: &Container, now: Instant) -> Value {
    let state = match &c.state {
        State::Created => {
            let reason = if c.kind == Kind::Regular && c.restarts == 0 {
                "ContainerCreating"
            } else {
                "PodInitializing"
            };
            json!({ "waiting": { "reason": reason } })
        }
        State::Waiting { reason, message } => {
            json!({ "waiting": { "reason": reason, "message": message } })
        }
        State::Running => json!({ "running": { "startedAt": c.started_at } }),
        State::Terminated {
            code,
            reason,
            finished,
        } => json!({ "terminated": {
            "exitCode": code, "reason": reason, "startedAt": c.started_at,
            "finishedAt": finished, "containerID": c.container_id,
        }}),
    };
    let running = c.state == State::Running;
    let ready = running && c.ready_at.is_some_and(|r| r <= now);
    let mut status = json!({
        "name": c.name,
        "state": state,
        "lastState": c.last_state,
        "ready": ready,
        "restartCount": c.restarts,
        "image": c.image,
        "imageID": format!("{}@sha256:{}", c.image.split(':').next().unwrap_or_default(), hex_id(&c.image)),
        "started": running,
    });
    if !c.container_id.is_empty() {
        status["containerID"] = json!(c.container_id);
    }
    status
}

fn pod_status(rt: &PodRuntime, pod: &Value, now: Instant) -> Value {
    let mut status = pod["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    let at = now_rfc3339();
    let of = |kind: Kind| -> Vec<&Container> {
        rt.containers
            .iter()
            .filter(|c| c.kind == kind || (kind == Kind::Init && c.kind == Kind::Sidecar))
            .collect()
    };
    let inits = of(Kind::Init);
    let regular = of(Kind::Regular);
    let initialized = inits.iter().all(|c| {
        matches!(
            (&c.kind, &c.state),
            (Kind::Init, State::Terminated { code: 0, .. }) | (Kind::Sidecar, State::Running)
        )
    });
    let ready = initialized
        && !deleting(pod)
        && regular
            .iter()
            .all(|c| c.state == State::Running && c.ready_at.is_some_and(|r| r <= now))
        && inits
            .iter()
            .filter(|c| c.kind == Kind::Sidecar)
            .all(|c| c.state == State::Running);
    let any_running = regular.iter().any(|c| c.state == State::Running);
    let all_done = !regular.is_empty()
        && regular
            .iter()
            .all(|c| matches!(c.state, State::Terminated { .. }));
    let restarting = rt.stop_at.is_none()
        && regular.iter().any(|c| match c.state {
            State::Terminated { code, .. } => match rt.policy.as_str() {
                "Never" => false,
                "OnFailure" => code != 0,
                _ => true,
            },
            _ => false,
        });
    let phase = if all_done && !restarting {
        let ok = regular
            .iter()
            .all(|c| matches!(c.state, State::Terminated { code: 0, .. }));
        if ok { "Succeeded" } else { "Failed" }
    } else if initialized && (any_running || regular.iter().any(|c| c.restarts > 0)) {
        "Running"
    } else {
        "Pending"
    };
    status["phase"] = json!(phase);
    let tf = |b: bool| if b { "True" } else { "False" };
    set_condition(
        &mut status,
        "PodReadyToStartContainers",
        tf(phase != "Succeeded" && phase != "Failed" || !all_done),
        None,
        &at,
    );
    let not_init = (!initialized).then_some((
        "ContainersNotInitialized",
        "containers with incomplete status: [init]",
    ));
    set_condition(
        &mut status,
        "Initialized",
        tf(initialized),
        not_init.map(|(r, _)| (r, "")),
        &at,
    );
    let unready = (!ready).then_some(if phase == "Succeeded" {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    });
    set_condition(
        &mut status,
        "Ready",
        tf(ready),
        unready.map(|r| (r, "")),
        &at,
    );
    set_condition(
        &mut status,
        "ContainersReady",
        tf(ready),
        unready.map(|r| (r, "")),
        &at,
    );
    set_condition(&mut status, "PodScheduled", "True", None, &at);
    status["hostIP"] = json!(rt.node_ip());
    status["hostIPs"] = json!([{ "ip": rt.node_ip() }]);
    status["podIP"] = json!(rt.ip);
    status["podIPs"] = json!([{ "ip": rt.ip }]);
    status["startTime"] = json!(rt.start_time);
    if status.get("qosClass").is_none() {
        status["qosClass"] = json!("BestEffort");
    }
    let list = |kind: Kind| -> Value {
        Value::Array(
            rt.containers
                .iter()
                .filter(|c| c.kind == kind || (kind == Kind::Init && c.kind == Kind::Sidecar))
                .map(|c| container_status(c, now))
                .collect(),
        )
    };
    if !inits.is_empty() {
        status["initContainerStatuses"] = list(Kind::Init);
    }
    status["containerStatuses"] = list(Kind::Regular);
    if rt.containers.iter().any(|c| c.kind == Kind::Ephemeral) {
        status["ephemeralContainerStatuses"] = list(Kind::Ephemeral);
    }
    status
}

impl PodRuntime {
    fn node_ip(&self) -> String {
        let index: u32 = self
            .node
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        format!("10.0.0.{}", index + 1)
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let ready = self
            .containers
            .iter()
            .filter(|c| c.state == State::Running)
            .filter_map(|c| c.ready_at)
            .filter(|r| *r > now);
        self.containers
            .iter()
            .filter_map(|c| c.next)
            .chain(ready)
            .chain(self.stop_at.map(|(at, _)| at))
            .min()
    }

    /// Takes over what the status says happened outside the kubelet (a
    /// container restarted through the admin API).
    fn adopt(&mut self, pod: &Value) {
        for s in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                pod["status"]["initContainerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
        {
            let Some(c) = self
                .containers
                .iter_mut()
                .find(|c| s["name"] == c.name.as_str())
            else {
                continue;
            };
            let restarts = s["restartCount"].as_u64().unwrap_or(0);
            if restarts > c.restarts {
                c.restarts = restarts;
                c.last_state = s["lastState"].clone();
                c.state = State::Running;
                c.started_at = s["state"]["running"]["startedAt"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                c.next = None;
            }
        }
    }
}

/// Runs the pod `ns/name` on its node, if it is bound to a simulated one.
pub(crate) fn sync(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let key = (ns.to_string(), name.to_string());
    let Some(pod) = api.get(PODS, ns, name) else {
        m.kubelet.pods.remove(&key);
        return;
    };
    let node = pod.value["spec"]["nodeName"].as_str().unwrap_or_default();
    if node.is_empty() || api.get(NODES, "", node).is_none() {
        return;
    }
    let uid = super::uid_of(&pod.value).to_string();
    let mut rt = match m.kubelet.pods.remove(&key) {
        Some(rt) if rt.uid == uid => rt,
        _ => {
            if matches!(
                pod.value["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            ) && !deleting(&pod.value)
            {
                return;
            }
            m.kubelet.next_ip = m.kubelet.next_ip.wrapping_add(1);
            let n = m.kubelet.next_ip;
            let node_index: u32 = node
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let rate = annotation(&pod.value, "faro-sim.io/log-rate")
                .and_then(|r| r.parse().ok())
                .unwrap_or(m.config.log_lines_per_second);
            PodRuntime {
                uid: uid.clone(),
                node: node.to_string(),
                ip: format!("10.244.{node_index}.{}", n % 250 + 2),
                start_time: now_rfc3339(),
                policy: pod.value["spec"]["restartPolicy"]
                    .as_str()
                    .unwrap_or("Always")
                    .to_string(),
                containers: containers_of(&pod.value),
                stop_at: None,
                log_rate: rate,
                sandbox_at: m.clock.after(PULL),
            }
        }
    };
    // Containers added since (ephemeral ones).
    for c in containers_of(&pod.value) {
        if !rt.containers.iter().any(|have| have.name == c.name) {
            rt.containers.push(c);
        }
    }
    rt.adopt(&pod.value);
    let now = Instant::now();
    let mut sync = Sync {
        m,
        api,
        pod: pod.value.clone(),
        ns: ns.to_string(),
        name: name.to_string(),
        now,
    };
    // A pod just bound needs a moment for its sandbox before containers start.
    let stopped = if now < rt.sandbox_at && !deleting(&pod.value) {
        let at = rt.sandbox_at;
        sync.m
            .wake_at(at, Key::Pod(ns.to_string(), name.to_string()));
        false
    } else {
        sync.advance(&mut rt)
    };
    let status = pod_status(&rt, &pod.value, now);
    let unchanged = pod.value["status"] == status;
    let written = api.modify_status(&pod, PODS, |p| p["status"] = status);
    if written.is_none() && !unchanged {
        // A concurrent write: look again soon.
        m.wake_after(
            Duration::from_millis(50),
            Key::Pod(ns.to_string(), name.to_string()),
        );
    }
    if stopped {
        api.delete(
            PODS,
            ns,
            name,
            &DeleteOptions {
                grace_period: Some(0),
                ..DeleteOptions::default()
            },
        );
        return;
    }
    if let Some(at) = rt.next_wake(Instant::now()) {
        m.wake_at(at, Key::Pod(ns.to_string(), name.to_string()));
    }
    m.kubelet.pods.insert(key, rt);
}

/// Running containers write `log_rate` lines per second each.
pub(crate) fn produce_logs(m: &mut Manager, shared: &Shared) {
    let tick = LOG_TICK.as_secs_f64();
    let mut batches: Vec<(String, String, String, String, Vec<String>)> = Vec::new();
    for ((ns, pod), rt) in &mut m.kubelet.pods {
        if rt.log_rate <= 0.0 || rt.stop_at.is_some() {
            continue;
        }
        for c in rt
            .containers
            .iter_mut()
            .filter(|c| c.state == State::Running)
        {
            c.log_credit += rt.log_rate * tick;
            let n = c.log_credit.floor() as u64;
            if n == 0 {
                continue;
            }
            c.log_credit -= n as f64;
            let lines = (0..n)
                .map(|_| {
                    c.line_no += 1;
                    let seq = c.line_no;
                    let path = ["/api/items", "/api/orders", "/healthz", "/api/users"][(seq % 4) as usize];
                    let status = if seq % 17 == 0 { 500 } else { 200 };
                    format!(
                        "level=info container={} seq={seq} msg=\"GET {path}/{} {status}\" duration_ms={}",
                        c.name,
                        seq % 997,
                        seq % 47 + 1
                    )
                })
                .collect();
            batches.push((
                ns.clone(),
                pod.clone(),
                rt.uid.clone(),
                c.name.clone(),
                lines,
            ));
        }
    }
    for (ns, pod, uid, c, lines) in batches {
        append_lines(shared, &ns, &pod, &uid, &c, &lines);
    }
}
