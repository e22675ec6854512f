//! The kept form of an object and the diff against it: [`ObjectView`] is an
//! object as Faro keeps it (no `managedFields`, no `resourceVersion`),
//! [`encode`] writes it in a compact binary form of its JSON (keys in order,
//! each container prefixed by its length), and [`diff`] walks that form and
//! the new object side by side, skipping nothing it must compare and
//! allocating only for the paths it reports.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::LazyLock;

use faro_core::DynamicObject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

/// An object as Faro keeps it for diffs, borrowed.
pub(crate) struct ObjectView<'a> {
    object: &'a DynamicObject,
    meta: MetaView<'a>,
}

/// `ObjectMeta` without `managedFields` and `resourceVersion`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_timestamp: Option<&'a Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_grace_period_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_timestamp: Option<&'a Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finalizers: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generate_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_references: Option<&'a Vec<OwnerReference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    self_link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

impl<'a> MetaView<'a> {
    fn new(m: &'a ObjectMeta) -> Self {
        Self {
            annotations: m.annotations.as_ref(),
            creation_timestamp: m.creation_timestamp.as_ref(),
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp.as_ref(),
            finalizers: m.finalizers.as_ref(),
            generate_name: m.generate_name.as_deref(),
            generation: m.generation,
            labels: m.labels.as_ref(),
            name: m.name.as_deref(),
            namespace: m.namespace.as_deref(),
            owner_references: m.owner_references.as_ref(),
            self_link: m.self_link.as_deref(),
            uid: m.uid.as_deref(),
        }
    }
}

impl<'a> ObjectView<'a> {
    pub fn new(object: &'a DynamicObject) -> Self {
        Self {
            object,
            meta: MetaView::new(&object.metadata),
        }
    }

    fn types(&self) -> [(&'static str, Option<&'a str>); 2] {
        let types = self.object.types.as_ref();
        [
            ("apiVersion", types.map(|t| t.api_version.as_str())),
            ("kind", types.map(|t| t.kind.as_str())),
        ]
    }

    /// The object's own fields besides the type and metadata.
    fn data(&self) -> Option<&'a Map<String, Value>> {
        self.object.data.as_object()
    }
}

impl Serialize for ObjectView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in self.types() {
            if let Some(v) = v {
                map.serialize_entry(k, v)?;
            }
        }
        map.serialize_entry("metadata", &self.meta)?;
        for (k, v) in self.data().into_iter().flatten() {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// The kept form of `now`: a compact binary encoding of its JSON (below),
/// written into `out`.
pub(crate) fn encode(now: &ObjectView<'_>, out: &mut Vec<u8>) -> Result<(), Corrupt> {
    let meta = serde_json::to_value(&now.meta).map_err(|_| Corrupt)?;
    let types = now
        .types()
        .map(|(k, v)| (k, v.map(|v| Value::String(v.to_owned()))));
    let root = root_entries(&types, &meta, now.data());
    encode_object(root.iter().map(|(k, v)| (*k, *v)), root.len(), out);
    Ok(())
}

/// Appends to `out` the JSON pointers where the kept state `before` and the
/// object `now` differ, exactly as [`super::changed_paths`] finds them on
/// both documents parsed.
pub(crate) fn diff(
    before: &[u8],
    now: &ObjectView<'_>,
    out: &mut Vec<String>,
) -> Result<(), Corrupt> {
    let meta = serde_json::to_value(&now.meta).map_err(|_| Corrupt)?;
    let types = now
        .types()
        .map(|(k, v)| (k, v.map(|v| Value::String(v.to_owned()))));
    let root = root_entries(&types, &meta, now.data());
    let mut reader = Reader(before);
    let mut at = Vec::with_capacity(128);
    if reader.u8()? != OBJECT {
        return Err(Corrupt);
    }
    diff_object(
        &mut reader,
        &mut root.iter().map(|(k, v)| (*k, *v)),
        &mut at,
        out,
    )
}

/// The kept state parsed back into JSON.
pub(crate) fn decode(before: &[u8]) -> Result<Value, Corrupt> {
    Reader(before).value()
}

/// The kept bytes are not what [`encode`] wrote.
#[derive(Debug)]
pub(crate) struct Corrupt;

// The encoding: one tag byte per value, then
// - null, false, true: nothing;
// - an integer: zigzag varint (INT) or varint (UINT, above i64::MAX); a float: 8 bytes;
// - a string: varint length, bytes;
// - an array: varint count, the items;
// - an object: varint count, then (varint key length, key bytes, value) for
//   each key in byte order, as a JSON map keeps them.
const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// The top level's entries in key order: type, metadata, then the data.
fn root_entries<'a>(
    types: &'a [(&'static str, Option<Value>); 2],
    meta: &'a Value,
    data: Option<&'a Map<String, Value>>,
) -> Vec<(&'a str, &'a Value)> {
    let mut entries: Vec<(&str, &Value)> = types
        .iter()
        .filter_map(|(k, v)| Some((*k, v.as_ref()?)))
        .chain(std::iter::once(("metadata", meta)))
        .chain(
            data.into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v))
                .filter(|(k, _)| !matches!(*k, "apiVersion" | "kind" | "metadata")),
        )
        .collect();
    entries.sort_unstable_by_key(|(k, _)| *k);
    entries
}

/// Whether a JSON map iterates in key order: it does unless serde_json's
/// `preserve_order` feature is on somewhere in the build.
static MAPS_SORTED: LazyLock<bool> = LazyLock::new(|| {
    let m: Map<String, Value> = [("b".to_owned(), Value::Null), ("a".to_owned(), Value::Null)]
        .into_iter()
        .collect();
    m.keys().is_sorted()
});

/// Calls `f` with a map's entries in key order.
fn sorted<'a, R>(
    m: &'a Map<String, Value>,
    f: impl FnOnce(&mut dyn Iterator<Item = (&'a str, &'a Value)>) -> R,
) -> R {
    if *MAPS_SORTED {
        f(&mut m.iter().map(|(k, v)| (k.as_str(), v)))
    } else {
        let mut entries: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
        entries.sort_unstable_by_key(|(k, _)| *k);
        f(&mut entries.into_iter())
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => match Leaf::of(v) {
            Some(Leaf::Int(i)) => {
                out.push(INT);
                varint(((i << 1) ^ (i >> 63)) as u64, out);
            }
            Some(Leaf::Uint(u)) => {
                out.push(UINT);
                varint(u, out);
            }
            _ => {
                out.push(FLOAT);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        },
        Value::String(s) => {
            out.push(STRING);
            varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            out.push(ARRAY);
            varint(items.len() as u64, out);
            items.iter().for_each(|v| encode_value(v, out));
        }
        Value::Object(m) => sorted(m, |entries| encode_object(entries, m.len(), out)),
    }
}

fn encode_object<'a>(
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
    count: usize,
    out: &mut Vec<u8>,
) {
    out.push(OBJECT);
    varint(count as u64, out);
    for (k, v) in entries {
        varint(k.len() as u64, out);
        out.extend_from_slice(k.as_bytes());
        encode_value(v, out);
    }
}

/// A scalar as kept.
#[derive(PartialEq)]
enum Leaf<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(u64),
    Str(&'a [u8]),
}

impl<'a> Leaf<'a> {
    fn of(v: &'a Value) -> Option<Self> {
        Some(match v {
            Value::Null => Leaf::Null,
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Number(n) if n.is_f64() => Leaf::Float(n.as_f64().unwrap_or(0.0).to_bits()),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Leaf::Int(i),
                (None, Some(u)) => Leaf::Uint(u),
                (None, None) => Leaf::Float(n.as_f64().unwrap_or(0.0).to_bits()),
            },
            Value::String(s) => Leaf::Str(s.as_bytes()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// Reads the encoding.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, Corrupt> {
        let (&b, rest) = self.0.split_first().ok_or(Corrupt)?;
        self.0 = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Corrupt> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(Corrupt)
    }

    fn len(&mut self) -> Result<usize, Corrupt> {
        usize::try_from(self.varint()?).map_err(|_| Corrupt)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], Corrupt> {
        if len > self.0.len() {
            return Err(Corrupt);
        }
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(b)
    }

    /// A scalar after its tag.
    fn leaf(&mut self, tag: u8) -> Result<Leaf<'a>, Corrupt> {
        Ok(match tag {
            NULL => Leaf::Null,
            FALSE => Leaf::Bool(false),
            TRUE => Leaf::Bool(true),
            INT => {
                let z = self.varint()?;
                Leaf::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            UINT => Leaf::Uint(self.varint()?),
            FLOAT => {
                let b = self.bytes(8)?;
                Leaf::Float(u64::from_le_bytes(b.try_into().map_err(|_| Corrupt)?))
            }
            STRING => {
                let len = self.len()?;
                Leaf::Str(self.bytes(len)?)
            }
            _ => return Err(Corrupt),
        })
    }

    /// Skips the rest of a value whose tag was read.
    fn skip(&mut self, tag: u8) -> Result<(), Corrupt> {
        match tag {
            ARRAY => {
                for _ in 0..self.len()? {
                    let tag = self.u8()?;
                    self.skip(tag)?;
                }
            }
            OBJECT => {
                for _ in 0..self.len()? {
                    self.key()?;
                    let tag = self.u8()?;
                    self.skip(tag)?;
                }
            }
            tag => {
                self.leaf(tag)?;
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, Corrupt> {
        let tag = self.u8()?;
        Ok(match tag {
            ARRAY => {
                let count = self.len()?;
                let mut items = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    items.push(self.value()?);
                }
                Value::Array(items)
            }
            OBJECT => {
                let count = self.len()?;
                let mut m = Map::new();
                for _ in 0..count {
                    let key = self.key()?;
                    let key = std::str::from_utf8(key).map_err(|_| Corrupt)?.to_owned();
                    m.insert(key, self.value()?);
                }
                Value::Object(m)
            }
            tag => match self.leaf(tag)? {
                Leaf::Null => Value::Null,
                Leaf::Bool(b) => Value::Bool(b),
                Leaf::Int(i) => i.into(),
                Leaf::Uint(u) => u.into(),
                Leaf::Float(f) => serde_json::Number::from_f64(f64::from_bits(f))
                    .map_or(Value::Null, Value::Number),
                Leaf::Str(s) => {
                    Value::String(std::str::from_utf8(s).map_err(|_| Corrupt)?.to_owned())
                }
            },
        })
    }

    fn key(&mut self) -> Result<&'a [u8], Corrupt> {
        let len = self.len()?;
        self.bytes(len)
    }
}

/// Appends `/token` to a pointer, escaped as RFC 6901 says.
fn push_token(at: &mut Vec<u8>, token: &[u8]) {
    at.push(b'/');
    for &b in token {
        match b {
            b'~' => at.extend_from_slice(b"~0"),
            b'/' => at.extend_from_slice(b"~1"),
            b => at.push(b),
        }
    }
}

fn report(at: &[u8], out: &mut Vec<String>) {
    out.push(if at.is_empty() {
        "/".to_owned()
    } else {
        // Keys come from strings and escaping keeps UTF-8 whole.
        String::from_utf8(at.to_vec()).unwrap_or_default()
    });
}

/// Compares one kept value (its tag still unread) with `now`.
fn diff_value(
    r: &mut Reader<'_>,
    now: &Value,
    at: &mut Vec<u8>,
    out: &mut Vec<String>,
) -> Result<(), Corrupt> {
    let tag = r.u8()?;
    match (tag, now) {
        (OBJECT, Value::Object(m)) => sorted(m, |entries| diff_object(r, entries, at, out)),
        (ARRAY, Value::Array(items)) => {
            let count = r.len()?;
            let len = at.len();
            for i in 0..count.max(items.len()) {
                let _ = write!(at, "/{i}");
                match (i < count, items.get(i)) {
                    (true, Some(v)) => diff_value(r, v, at, out)?,
                    (true, None) => {
                        let tag = r.u8()?;
                        r.skip(tag)?;
                        report(at, out);
                    }
                    (false, _) => report(at, out),
                }
                at.truncate(len);
            }
            Ok(())
        }
        (ARRAY | OBJECT, _) => {
            r.skip(tag)?;
            report(at, out);
            Ok(())
        }
        (tag, now) => {
            let kept = r.leaf(tag)?;
            if Leaf::of(now).is_none_or(|leaf| leaf != kept) {
                report(at, out);
            }
            Ok(())
        }
    }
}

/// Compares a kept object (after its tag) with `now`'s entries in key order.
fn diff_object<'a>(
    r: &mut Reader<'_>,
    now: &mut dyn Iterator<Item = (&'a str, &'a Value)>,
    at: &mut Vec<u8>,
    out: &mut Vec<String>,
) -> Result<(), Corrupt> {
    let count = r.len()?;
    let len = at.len();
    let mut next = now.next();
    for _ in 0..count {
        let key = r.key()?;
        loop {
            match next.map(|(k, v)| (k.as_bytes().cmp(key), k, v)) {
                // A key only the new object has, before this one.
                Some((Ordering::Less, k, _)) => {
                    push_token(at, k.as_bytes());
                    report(at, out);
                    at.truncate(len);
                    next = now.next();
                }
                Some((Ordering::Equal, _, v)) => {
                    push_token(at, key);
                    diff_value(r, v, at, out)?;
                    next = now.next();
                    break;
                }
                _ => {
                    push_token(at, key);
                    let tag = r.u8()?;
                    r.skip(tag)?;
                    report(at, out);
                    break;
                }
            }
        }
        at.truncate(len);
    }
    // Keys only the new object has, after the last kept one.
    while let Some((k, _)) = next {
        push_token(at, k.as_bytes());
        report(at, out);
        at.truncate(len);
        next = now.next();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::updates::changed_paths;
    use serde_json::json;

    fn random_scalar() -> Value {
        match fastrand::u8(0..7) {
            0 => Value::Null,
            1 => json!(fastrand::bool()),
            2 => json!(fastrand::i64(-3..3)),
            3 => json!(fastrand::u64(u64::MAX - 2..)),
            4 => json!(f64::from(fastrand::u8(0..3)) + 0.5),
            5 => json!(["x", "y\"z", "ü/~"][fastrand::usize(..3)]),
            _ => json!(""),
        }
    }

    fn random_value(depth: u8) -> Value {
        if depth == 0 {
            return random_scalar();
        }
        match fastrand::u8(0..4) {
            0 => Value::Array(
                (0..fastrand::usize(0..4))
                    .map(|_| random_value(depth - 1))
                    .collect(),
            ),
            1 | 2 => Value::Object(
                (0..fastrand::usize(0..4))
                    .map(|_| (random_key(), random_value(depth - 1)))
                    .collect(),
            ),
            _ => random_scalar(),
        }
    }

    fn random_key() -> String {
        ["a", "b", "c/d", "e~f", "g\"h", "\u{e9}", "spec", "status"][fastrand::usize(..8)]
            .to_owned()
    }

    /// Changes one place in `v`, at any depth.
    fn mutate(v: &mut Value, depth: u8) {
        match v {
            Value::Object(m) if !m.is_empty() && fastrand::u8(0..3) > 0 => {
                let key = m.keys().nth(fastrand::usize(..m.len())).unwrap().clone();
                match fastrand::u8(0..4) {
                    0 => {
                        m.remove(&key);
                    }
                    1 => {
                        m.insert(random_key(), random_value(depth));
                    }
                    _ => mutate(m.get_mut(&key).unwrap(), depth.saturating_sub(1)),
                }
            }
            Value::Array(a) if !a.is_empty() && fastrand::u8(0..3) > 0 => {
                match fastrand::u8(0..4) {
                    0 => {
                        a.pop();
                    }
                    1 => a.push(random_value(depth)),
                    _ => {
                        let i = fastrand::usize(..a.len());
                        mutate(&mut a[i], depth.saturating_sub(1));
                    }
                }
            }
            _ => *v = random_value(depth),
        }
    }

    fn object(spec: Value, status: Value, labels: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "t", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                         "labels": labels,
                         "managedFields": [{"manager": "m", "operation": "Update"}]},
            "spec": spec, "status": status,
        })
    }

    /// The paths found on the kept form are exactly those found on both
    /// documents parsed, over 2,000 random pairs with nested arrays and
    /// objects, changed types, escaped keys and every kind of scalar.
    #[test]
    fn the_diff_on_kept_bytes_agrees_with_the_diff_of_parsed_values() {
        fastrand::seed(7);
        for round in 0..2000 {
            let mut a = object(random_value(4), random_value(3), json!({"app": "x"}));
            let before_obj: DynamicObject = serde_json::from_value(a.clone()).unwrap();
            let mut kept = Vec::new();
            encode(&ObjectView::new(&before_obj), &mut kept).unwrap();
            let before = decode(&kept).unwrap();
            assert_eq!(
                before,
                serde_json::to_value(ObjectView::new(&before_obj)).unwrap(),
                "round {round}: the kept form reads back as it was"
            );
            for _ in 0..fastrand::usize(0..4) {
                match fastrand::u8(0..4) {
                    0 => mutate(&mut a["spec"], 4),
                    1 => mutate(&mut a["status"], 3),
                    2 => mutate(&mut a["metadata"]["labels"], 1),
                    _ => {
                        let top = a.as_object_mut().unwrap();
                        if fastrand::bool() {
                            top.remove("status");
                        } else {
                            top.insert(random_key(), random_value(2));
                        }
                    }
                }
            }
            a["metadata"]["resourceVersion"] = json!("8");
            let Ok(after_obj) = serde_json::from_value::<DynamicObject>(a.clone()) else {
                continue;
            };
            let view = ObjectView::new(&after_obj);
            let mut got = Vec::new();
            diff(&kept, &view, &mut got).unwrap();
            got.sort();
            let mut expected = Vec::new();
            let now = serde_json::to_value(&view).unwrap();
            changed_paths(&before, &now, &mut String::new(), &mut expected);
            expected.sort();
            assert_eq!(got, expected, "round {round}: {before} → {now}");
            assert!(
                !got.iter()
                    .any(|p| p.starts_with("/metadata/resourceVersion")
                        || p.starts_with("/metadata/managedFields")),
                "{got:?}"
            );
        }
    }

    #[test]
    fn a_cut_or_damaged_kept_form_is_an_error_never_a_panic() {
        let o: DynamicObject = serde_json::from_value(object(
            json!({"x": [1, "two", {"3": 4.5}]}),
            json!({}),
            json!({"a": "b"}),
        ))
        .unwrap();
        let view = ObjectView::new(&o);
        let mut kept = Vec::new();
        encode(&view, &mut kept).unwrap();
        let mut paths = Vec::new();
        diff(&kept, &view, &mut paths).unwrap();
        assert!(paths.is_empty(), "{paths:?}");
        for cut in 0..kept.len() {
            assert!(decode(&kept[..cut]).is_err(), "cut at {cut}");
            let _ = diff(&kept[..cut], &view, &mut paths);
        }
        for i in 0..kept.len() {
            let mut damaged = kept.clone();
            damaged[i] ^= 0xa5;
            let _ = decode(&damaged);
            let _ = diff(&damaged, &view, &mut paths);
        }
    }

    #[test]
    fn the_kept_form_has_no_managed_fields_or_resource_version() {
        let o: DynamicObject =
            serde_json::from_value(object(json!({"x": 1}), json!({}), json!({}))).unwrap();
        let kept = serde_json::to_value(ObjectView::new(&o)).unwrap();
        assert_eq!(
            kept,
            json!({"apiVersion": "v1", "kind": "Thing",
                   "metadata": {"name": "t", "namespace": "ns", "uid": "u", "labels": {}},
                   "spec": {"x": 1}, "status": {}})
        );
    }
}
