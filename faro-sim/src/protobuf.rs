//! Request bodies: JSON, and Kubernetes protobuf for the built-in kinds
//! kubectl's imperative commands send (`create namespace|configmap|secret|
//! deployment|job|cronjob|service`, `run`, `expose`, `scale`). A protobuf
//! body is the `k8s\0` magic and a `runtime.Unknown` whose `raw` is the
//! object; it is decoded with k8s-pb's types and turned into the JSON the
//! server stores. A field this server does not convert is refused (415)
//! rather than dropped; malformed bytes are a 400.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use k8s_pb::api::{apps, autoscaling, batch, core};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value};

use crate::resources::ResourceDef;
use crate::status::ApiError;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

fn media(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request is not valid JSON: {e}"))
    })
}

/// A field this server cannot turn into JSON.
struct Unsupported(&'static str);

type Converted = Result<Option<Value>, Unsupported>;

/// Protobuf message → the JSON the API server writes (`None`: omitted).
trait ToJson {
    fn to_json(&self) -> Converted;
}

// Go's protobuf writes every non-pointer field, empty or not; the JSON the
// server writes leaves empty strings and false out (omitempty). Integers
// are kept, because a pointer field set to zero is meaningful; the few
// non-pointer ones whose zero means unset are listed per message.
impl ToJson for String {
    fn to_json(&self) -> Converted {
        Ok((!self.is_empty()).then(|| Value::String(self.clone())))
    }
}

impl ToJson for i32 {
    fn to_json(&self) -> Converted {
        Ok(Some(Value::from(*self)))
    }
}

impl ToJson for i64 {
    fn to_json(&self) -> Converted {
        Ok(Some(Value::from(*self)))
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Converted {
        Ok(self.then_some(Value::Bool(true)))
    }
}

impl ToJson for Vec<u8> {
    fn to_json(&self) -> Converted {
        Ok(Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(self),
        )))
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Converted {
        match self {
            Some(v) => v.to_json(),
            None => Ok(None),
        }
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Converted {
        if self.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.len());
        for item in self {
            out.push(item.to_json()?.unwrap_or(Value::Null));
        }
        Ok(Some(Value::Array(out)))
    }
}

impl<T: ToJson> ToJson for BTreeMap<String, T> {
    fn to_json(&self) -> Converted {
        if self.is_empty() {
            return Ok(None);
        }
        let mut out = Map::new();
        for (k, v) in self {
            out.insert(k.clone(), v.to_json()?.unwrap_or(Value::Null));
        }
        Ok(Some(Value::Object(out)))
    }
}

impl ToJson for meta::Time {
    fn to_json(&self) -> Converted {
        let at = jiff::Timestamp::from_second(self.seconds.unwrap_or(0))
            .map_err(|_| Unsupported("a time out of range"))?;
        Ok(Some(Value::String(at.to_string())))
    }
}

impl ToJson for IntOrString {
    fn to_json(&self) -> Converted {
        Ok(Some(match self.r#type {
            Some(1) => Value::String(self.str_val.clone().unwrap_or_default()),
            _ => Value::from(self.int_val.unwrap_or(0)),
        }))
    }
}

impl ToJson for Quantity {
    fn to_json(&self) -> Converted {
        self.string.to_json()
    }
}

/// True when a field holds anything but its default.
fn is_set<T: Default + PartialEq>(value: &T) -> bool {
    *value != T::default()
}

/// `ToJson` for a message: its converted fields by JSON name, and the
/// fields it refuses when set.
macro_rules! to_json {
    ($ty:ty { $($field:ident => $name:literal),* $(,)? }
     $(refuse { $($bad:ident => $bad_name:literal),* $(,)? })?
     $(zero_unset { $($zero:literal),* $(,)? })?) => {
        impl ToJson for $ty {
            fn to_json(&self) -> Converted {
                $($(
                    if is_set(&self.$bad) {
                        return Err(Unsupported($bad_name));
                    }
                )*)?
                let mut out = Map::new();
                $(
                    if let Some(v) = self.$field.to_json()? {
                        out.insert($name.to_string(), v);
                    }
                )*
                $($(
                    if out.get($zero).is_some_and(|v| v == 0) {
                        out.remove($zero);
                    }
                )*)?
                Ok(Some(Value::Object(out)))
            }
        }
    };
}

to_json!(meta::ObjectMeta {
    name => "name", generate_name => "generateName", namespace => "namespace",
    uid => "uid", resource_version => "resourceVersion", generation => "generation",
    creation_timestamp => "creationTimestamp", labels => "labels",
    annotations => "annotations", owner_references => "ownerReferences",
    finalizers => "finalizers",
} refuse { managed_fields => "metadata.managedFields" } zero_unset { "generation" });
to_json!(meta::LabelSelector { match_labels => "matchLabels", match_expressions => "matchExpressions" });
to_json!(meta::LabelSelectorRequirement { key => "key", operator => "operator", values => "values" });
to_json!(meta::OwnerReference {
    api_version => "apiVersion", kind => "kind", name => "name", uid => "uid",
    controller => "controller", block_owner_deletion => "blockOwnerDeletion",
});
to_json!(core::v1::Namespace { metadata => "metadata", spec => "spec" });
to_json!(core::v1::NamespaceSpec { finalizers => "finalizers" });
to_json!(core::v1::ConfigMap {
    metadata => "metadata", immutable => "immutable", data => "data", binary_data => "binaryData",
});
to_json!(core::v1::Secret {
    metadata => "metadata", immutable => "immutable", data => "data",
    string_data => "stringData", r#type => "type",
});
to_json!(core::v1::Service { metadata => "metadata", spec => "spec" });
to_json!(core::v1::ServiceSpec {
    ports => "ports", selector => "selector", cluster_ip => "clusterIP", cluster_ips => "clusterIPs",
    r#type => "type", external_ips => "externalIPs", session_affinity => "sessionAffinity",
    load_balancer_ip => "loadBalancerIP", load_balancer_source_ranges => "loadBalancerSourceRanges",
    external_name => "externalName", external_traffic_policy => "externalTrafficPolicy",
    health_check_node_port => "healthCheckNodePort",
    publish_not_ready_addresses => "publishNotReadyAddresses", ip_families => "ipFamilies",
    ip_family_policy => "ipFamilyPolicy",
    allocate_load_balancer_node_ports => "allocateLoadBalancerNodePorts",
    load_balancer_class => "loadBalancerClass", internal_traffic_policy => "internalTrafficPolicy",
    traffic_distribution => "trafficDistribution",
} refuse { session_affinity_config => "spec.sessionAffinityConfig" } zero_unset { "healthCheckNodePort" });
to_json!(core::v1::ServicePort {
    name => "name", protocol => "protocol", app_protocol => "appProtocol", port => "port",
    target_port => "targetPort", node_port => "nodePort",
} zero_unset { "nodePort" });
to_json!(core::v1::Pod { metadata => "metadata", spec => "spec" });
to_json!(core::v1::PodTemplateSpec { metadata => "metadata", spec => "spec" });
to_json!(core::v1::PodSpec {
    init_containers => "initContainers", containers => "containers",
    restart_policy => "restartPolicy",
    termination_grace_period_seconds => "terminationGracePeriodSeconds",
    active_deadline_seconds => "activeDeadlineSeconds", dns_policy => "dnsPolicy",
    node_selector => "nodeSelector", service_account_name => "serviceAccountName",
    service_account => "serviceAccount",
    automount_service_account_token => "automountServiceAccountToken",
    node_name => "nodeName", host_network => "hostNetwork", host_pid => "hostPID",
    host_ipc => "hostIPC", share_process_namespace => "shareProcessNamespace",
    image_pull_secrets => "imagePullSecrets", hostname => "hostname", subdomain => "subdomain",
    scheduler_name => "schedulerName", tolerations => "tolerations",
    priority_class_name => "priorityClassName", priority => "priority",
    runtime_class_name => "runtimeClassName", enable_service_links => "enableServiceLinks",
    preemption_policy => "preemptionPolicy",
} refuse {
    volumes => "spec.volumes", ephemeral_containers => "spec.ephemeralContainers",
    security_context => "spec.securityContext", affinity => "spec.affinity",
    host_aliases => "spec.hostAliases", dns_config => "spec.dnsConfig",
    readiness_gates => "spec.readinessGates", overhead => "spec.overhead",
    topology_spread_constraints => "spec.topologySpreadConstraints",
    os => "spec.os", scheduling_gates => "spec.schedulingGates",
    resource_claims => "spec.resourceClaims", resources => "spec.resources",
});
to_json!(core::v1::Container {
    name => "name", image => "image", command => "command", args => "args",
    working_dir => "workingDir", ports => "ports", env => "env", resources => "resources",
    restart_policy => "restartPolicy", volume_mounts => "volumeMounts",
    termination_message_path => "terminationMessagePath",
    termination_message_policy => "terminationMessagePolicy",
    image_pull_policy => "imagePullPolicy", stdin => "stdin", stdin_once => "stdinOnce", tty => "tty",
} refuse {
    env_from => "containers[].envFrom", resize_policy => "containers[].resizePolicy",
    volume_devices => "containers[].volumeDevices", liveness_probe => "containers[].livenessProbe",
    readiness_probe => "containers[].readinessProbe", startup_probe => "containers[].startupProbe",
    lifecycle => "containers[].lifecycle", security_context => "containers[].securityContext",
});
to_json!(core::v1::ContainerPort {
    name => "name", host_port => "hostPort", container_port => "containerPort",
    protocol => "protocol", host_ip => "hostIP",
} zero_unset { "hostPort" });
to_json!(core::v1::EnvVar { name => "name", value => "value" } refuse { value_from => "env[].valueFrom" });
to_json!(core::v1::ResourceRequirements { limits => "limits", requests => "requests" } refuse { claims => "resources.claims" });
to_json!(core::v1::VolumeMount {
    name => "name", read_only => "readOnly", mount_path => "mountPath", sub_path => "subPath",
    mount_propagation => "mountPropagation", sub_path_expr => "subPathExpr",
});
to_json!(core::v1::LocalObjectReference { name => "name" });
to_json!(core::v1::Toleration {
    key => "key", operator => "operator", value => "value", effect => "effect",
    toleration_seconds => "tolerationSeconds",
});
to_json!(apps::v1::Deployment { metadata => "metadata", spec => "spec" });
to_json!(apps::v1::DeploymentSpec {
    replicas => "replicas", selector => "selector", template => "template", strategy => "strategy",
    min_ready_seconds => "minReadySeconds", revision_history_limit => "revisionHistoryLimit",
    paused => "paused", progress_deadline_seconds => "progressDeadlineSeconds",
} zero_unset { "minReadySeconds" });
to_json!(apps::v1::DeploymentStrategy { r#type => "type", rolling_update => "rollingUpdate" });
to_json!(apps::v1::RollingUpdateDeployment { max_unavailable => "maxUnavailable", max_surge => "maxSurge" });
to_json!(batch::v1::Job { metadata => "metadata", spec => "spec" });
to_json!(batch::v1::JobSpec {
    parallelism => "parallelism", completions => "completions",
    active_deadline_seconds => "activeDeadlineSeconds", backoff_limit => "backoffLimit",
    backoff_limit_per_index => "backoffLimitPerIndex", max_failed_indexes => "maxFailedIndexes",
    selector => "selector", manual_selector => "manualSelector", template => "template",
    ttl_seconds_after_finished => "ttlSecondsAfterFinished", completion_mode => "completionMode",
    suspend => "suspend", pod_replacement_policy => "podReplacementPolicy", managed_by => "managedBy",
} refuse { pod_failure_policy => "spec.podFailurePolicy", success_policy => "spec.successPolicy" });
to_json!(batch::v1::CronJob { metadata => "metadata", spec => "spec" });
to_json!(batch::v1::CronJobSpec {
    schedule => "schedule", time_zone => "timeZone",
    starting_deadline_seconds => "startingDeadlineSeconds",
    concurrency_policy => "concurrencyPolicy", suspend => "suspend", job_template => "jobTemplate",
    successful_jobs_history_limit => "successfulJobsHistoryLimit",
    failed_jobs_history_limit => "failedJobsHistoryLimit",
});
to_json!(batch::v1::JobTemplateSpec { metadata => "metadata", spec => "spec" });
to_json!(autoscaling::v1::Scale { metadata => "metadata", spec => "spec" });
to_json!(autoscaling::v1::ScaleSpec { replicas => "replicas" });

fn decode<T: Message + Default + ToJson>(raw: &[u8]) -> Result<Value, ApiError> {
    let message = T::decode(raw).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        ))
    })?;
    match message.to_json() {
        Ok(v) => Ok(v.unwrap_or_else(|| Value::Object(Map::new()))),
        Err(Unsupported(field)) => Err(ApiError::unsupported_media_type_because(
            PROTOBUF,
            &format!("faro-sim does not decode {field} from protobuf; send the object as JSON"),
        )),
    }
}

/// The envelope's `runtime.Unknown`: (apiVersion, kind, raw object).
fn envelope(body: &[u8]) -> Result<(String, String, Vec<u8>), ApiError> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request(
            "the body of the request is not a Kubernetes protobuf envelope (no k8s\\0 prefix)",
        )
    })?;
    let unknown = Unknown::decode(inner).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        ))
    })?;
    if unknown
        .content_encoding
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(ApiError::unsupported_media_type(PROTOBUF));
    }
    let meta = unknown.type_meta.unwrap_or_default();
    Ok((
        meta.api_version.unwrap_or_default(),
        meta.kind.unwrap_or_default(),
        unknown.raw.unwrap_or_default(),
    ))
}

/// Decodes a protobuf body of one of the kinds kubectl sends.
fn object(body: &[u8], def: &ResourceDef) -> Result<Value, ApiError> {
    let (api_version, kind, raw) = envelope(body)?;
    if kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            def.kind
        )));
    }
    let mut object = match (def.group.as_str(), kind.as_str()) {
        ("", "Namespace") => decode::<core::v1::Namespace>(&raw)?,
        ("", "ConfigMap") => decode::<core::v1::ConfigMap>(&raw)?,
        ("", "Secret") => decode::<core::v1::Secret>(&raw)?,
        ("", "Service") => decode::<core::v1::Service>(&raw)?,
        ("", "Pod") => decode::<core::v1::Pod>(&raw)?,
        ("apps", "Deployment") => decode::<apps::v1::Deployment>(&raw)?,
        ("batch", "Job") => decode::<batch::v1::Job>(&raw)?,
        ("batch", "CronJob") => decode::<batch::v1::CronJob>(&raw)?,
        _ => {
            return Err(ApiError::unsupported_media_type_because(
                PROTOBUF,
                &format!("faro-sim decodes no {kind} from protobuf; send it as JSON"),
            ));
        }
    };
    object["apiVersion"] = Value::String(if api_version.is_empty() {
        def.api_version()
    } else {
        api_version
    });
    object["kind"] = Value::String(kind);
    Ok(object)
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
        PROTOBUF if !def.custom => object(body, def),
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
        PROTOBUF => {
            let (_, kind, raw) = envelope(body)?;
            if kind != "Scale" {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({kind}) does not match the expected kind (Scale)"
                )));
            }
            decode::<autoscaling::v1::Scale>(&raw)
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(kind: &str, api_version: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    fn def(group: &str, plural: &str) -> ResourceDef {
        crate::resources::builtins()
            .into_iter()
            .find(|d| d.group == group && d.plural == plural)
            .unwrap()
    }

    #[test]
    fn a_deployment_becomes_the_json_the_server_stores() {
        let d = apps::v1::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                labels: BTreeMap::from([("app".into(), "web".into())]),
                ..Default::default()
            }),
            spec: Some(apps::v1::DeploymentSpec {
                replicas: Some(2),
                selector: Some(meta::LabelSelector {
                    match_labels: BTreeMap::from([("app".into(), "web".into())]),
                    ..Default::default()
                }),
                strategy: Some(apps::v1::DeploymentStrategy {
                    rolling_update: Some(apps::v1::RollingUpdateDeployment {
                        max_surge: Some(IntOrString {
                            r#type: Some(1),
                            int_val: None,
                            str_val: Some("25%".into()),
                        }),
                        max_unavailable: Some(IntOrString {
                            r#type: Some(0),
                            int_val: Some(1),
                            str_val: None,
                        }),
                    }),
                    ..Default::default()
                }),
                template: Some(core::v1::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels: BTreeMap::from([("app".into(), "web".into())]),
                        ..Default::default()
                    }),
                    spec: Some(core::v1::PodSpec {
                        containers: vec![core::v1::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx".into()),
                            resources: Some(core::v1::ResourceRequirements {
                                limits: BTreeMap::from([(
                                    "cpu".into(),
                                    Quantity {
                                        string: Some("500m".into()),
                                    },
                                )]),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        };
        let body = wrap("Deployment", "apps/v1", d.encode_to_vec());
        let json = decode_body(&def("apps", "deployments"), PROTOBUF, &body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "labels": { "app": "web" } },
                "spec": {
                    "replicas": 2,
                    "selector": { "matchLabels": { "app": "web" } },
                    "strategy": { "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": 1 } },
                    "template": {
                        "metadata": { "labels": { "app": "web" } },
                        "spec": { "containers": [{ "name": "nginx", "image": "nginx",
                            "resources": { "limits": { "cpu": "500m" } } }] },
                    },
                },
            })
        );
    }

    #[test]
    fn secret_bytes_are_base64_and_bad_bodies_are_refused() {
        let s = core::v1::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            }),
            data: BTreeMap::from([("k".into(), b"secret".to_vec())]),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let secrets = def("", "secrets");
        let json =
            decode_body(&secrets, PROTOBUF, &wrap("Secret", "v1", s.encode_to_vec())).unwrap();
        assert_eq!(json["data"]["k"], "c2VjcmV0");
        assert_eq!(json["type"], "Opaque");
        let wrong = decode_body(
            &secrets,
            PROTOBUF,
            &wrap("ConfigMap", "v1", s.encode_to_vec()),
        )
        .unwrap_err();
        assert_eq!((wrong.code, wrong.reason), (400, "BadRequest"));
        let garbage = decode_body(&secrets, PROTOBUF, b"k8s\0\xff\xff\xff").unwrap_err();
        assert_eq!((garbage.code, garbage.reason), (400, "BadRequest"));
        let no_magic = decode_body(&secrets, PROTOBUF, b"{}").unwrap_err();
        assert_eq!(no_magic.code, 400);
        let events = def("", "events");
        let other = decode_body(&events, PROTOBUF, &wrap("Event", "v1", vec![])).unwrap_err();
        assert_eq!((other.code, other.reason), (415, "UnsupportedMediaType"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let defs = crate::resources::builtins();
        let mut rng = fastrand::Rng::with_seed(7);
        for case in 0..20_000 {
            let len = rng.usize(0..256);
            let mut body: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if case % 2 == 0 {
                let mut framed = MAGIC.to_vec();
                framed.append(&mut body);
                body = framed;
            }
            let def = &defs[case % defs.len()];
            let media = if case % 3 == 0 {
                "application/json"
            } else {
                PROTOBUF
            };
            if let Err(e) = decode_body(def, media, &body) {
                assert!(matches!(e.code, 400 | 415), "{e}");
            }
        }
    }
}
