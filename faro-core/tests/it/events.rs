//! Events, keys and the handler seam.

use std::sync::{Arc, Mutex};

use faro_core::{
    DynamicObject, EventHandler, EventType, Gvr, HandlerError, MatchedEvent, ObjectKey,
};

fn configmap(ns: Option<&str>, name: &str, rv: &str) -> Arc<DynamicObject> {
    let mut object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "resourceVersion": rv, "uid": "u-1" },
    }))
    .unwrap();
    object.metadata.namespace = ns.map(str::to_string);
    Arc::new(object)
}

#[test]
fn keys_render_and_parse() {
    assert_eq!(ObjectKey::new(Some("ns"), "a").to_string(), "ns/a");
    assert_eq!(ObjectKey::new(None, "node-1").to_string(), "node-1");
    assert_eq!(ObjectKey::parse("ns/a"), ObjectKey::new(Some("ns"), "a"));
    assert_eq!(ObjectKey::parse("node-1"), ObjectKey::new(None, "node-1"));
}

#[test]
fn matched_event_takes_key_and_version_from_the_object() {
    let gvr = Arc::new(Gvr::parse("v1/configmaps").unwrap());
    let event = MatchedEvent::new(
        EventType::Added,
        gvr.clone(),
        configmap(Some("ns"), "a", "42"),
    );
    assert_eq!(event.event_type().to_string(), "ADDED");
    assert_eq!(event.key().to_string(), "ns/a");
    assert_eq!(event.resource_version(), "42");
    assert!(!event.is_inferred());
    // A clone shares the event instead of copying it.
    let clone = event.clone();
    assert!(Arc::ptr_eq(clone.object(), event.object()));

    let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let inferred = MatchedEvent::builder(EventType::Deleted, gvr, configmap(Some("ns"), "a", "42"))
        .inferred("41")
        .observed_at(at)
        .workload(Arc::from("w1"))
        .build();
    assert!(inferred.is_inferred());
    assert_eq!(inferred.resource_version(), "41");
    assert_eq!(inferred.observed_at(), at);
    assert_eq!(inferred.workload(), Some("w1"));
    assert_eq!(
        serde_json::to_string(&EventType::Updated).unwrap(),
        "\"UPDATED\""
    );
}

struct Recorder(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl EventHandler for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        if event.key().name == "bad" {
            return Err(HandlerError::new("refused"));
        }
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", event.event_type(), event.key()));
        Ok(())
    }
}

#[tokio::test]
async fn handlers_are_usable_behind_arc_and_dyn() {
    let gvr = Arc::new(Gvr::parse("v1/configmaps").unwrap());
    let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
    let handlers: Vec<Box<dyn EventHandler>> = vec![Box::new(recorder.clone())];
    for handler in &handlers {
        assert_eq!(handler.name(), "recorder");
        handler
            .on_matched(&MatchedEvent::new(
                EventType::Updated,
                gvr.clone(),
                configmap(Some("ns"), "a", "2"),
            ))
            .await
            .unwrap();
        let e = handler
            .on_matched(&MatchedEvent::new(
                EventType::Added,
                gvr.clone(),
                configmap(None, "bad", "3"),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "refused");
    }
    assert_eq!(*recorder.0.lock().unwrap(), ["UPDATED ns/a"]);
}
