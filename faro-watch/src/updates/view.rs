//! The kept form of an object and the diff against it: [`ObjectView`] is
//! what of an object Faro keeps (what an UPDATED can change), [`encode`]
//! writes it in a compact binary form of its JSON (keys in order, long
//! strings as hashes unless the whole document is needed), and [`diff`]
//! walks that form and the new object side by side, allocating only for the
//! paths it reports.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::io::Write as _;
use std::sync::LazyLock;

use faro_core::DynamicObject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

/// An object as Faro keeps it for diffs, borrowed: what an UPDATED of the
/// same object can change. Left out are `managedFields` and
/// `resourceVersion` (they change with every write and are not reported),
/// and what cannot change while the key and uid stay: `apiVersion` and
/// `kind` (one watch's), `name`, `namespace`, `uid`, `generateName`,
/// `creationTimestamp` and `selfLink`.
pub(crate) struct ObjectView<'a> {
    object: &'a DynamicObject,
    meta: MetaView<'a>,
}

/// The changeable part of `ObjectMeta`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_grace_period_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_timestamp: Option<&'a Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finalizers: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_references: Option<&'a Vec<OwnerReference>>,
}

impl<'a> MetaView<'a> {
    fn new(m: &'a ObjectMeta) -> Self {
        Self {
            annotations: m.annotations.as_ref(),
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp.as_ref(),
            finalizers: m.finalizers.as_ref(),
            generation: m.generation,
            labels: m.labels.as_ref(),
            owner_references: m.owner_references.as_ref(),
        }
    }
}

/// Top-level keys that are not the object's own data.
fn is_data(key: &str) -> bool {
    !matches!(key, "apiVersion" | "kind" | "metadata")
}

impl<'a> ObjectView<'a> {
    pub fn new(object: &'a DynamicObject) -> Self {
        Self {
            object,
            meta: MetaView::new(&object.metadata),
        }
    }

    /// The object's own fields: all but the type and the metadata.
    fn data(&self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.object
            .data
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
            .filter(|(k, _)| is_data(k))
    }
}

impl Serialize for ObjectView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("metadata", &self.meta)?;
        for (k, v) in self.data() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// How much of an object the kept form holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// Every value: the document can be read back whole (for patches).
    Whole,
    /// Strings longer than a hash as their 64-bit hash: enough to tell
    /// which paths changed, in a fraction of the memory.
    Hashed,
}

/// Strings longer than this are kept as hashes in [`Form::Hashed`].
const HASHED_OVER: usize = 8;

/// Writes the kept form of `now` (the encoding below) into `out`.
pub(crate) fn encode(now: &ObjectView<'_>, form: Form, out: &mut Vec<u8>) {
    let mut e = Encoder { out, form };
    let data = now.object.data.as_object();
    let count = now.data().count() + 1;
    e.tag(OBJECT);
    e.varint(count as u64);
    let mut meta = Some(&now.meta);
    let mut entries = |entries: &mut dyn Iterator<Item = (&str, &Value)>| {
        for (k, v) in entries.filter(|(k, _)| is_data(k)) {
            if k > "metadata"
                && let Some(m) = meta.take()
            {
                e.key("metadata");
                e.meta(m);
            }
            e.key(k);
            e.value(v);
        }
    };
    match data {
        Some(m) => sorted(m, &mut entries),
        None => entries(&mut std::iter::empty()),
    }
    if let Some(m) = meta {
        e.key("metadata");
        e.meta(m);
    }
}

/// Appends to `out` the JSON pointers where two kept forms differ, exactly
/// as [`super::changed_paths`] finds them on both documents parsed.
pub(crate) fn diff(before: &[u8], now: &[u8], out: &mut Vec<String>) -> Result<(), Corrupt> {
    let mut at = Vec::with_capacity(128);
    diff_value(&mut Reader(before), &mut Reader(now), &mut at, out)
}

/// A kept form parsed back into JSON; only a [`Form::Whole`] one can be.
pub(crate) fn decode(kept: &[u8]) -> Result<Value, Corrupt> {
    Reader(kept).value()
}

/// The kept bytes are not what [`encode`] wrote.
#[derive(Debug)]
pub(crate) struct Corrupt;

// The encoding: one tag byte per value, then
// - null, false, true: nothing;
// - an integer: zigzag varint (INT) or varint (UINT, above i64::MAX); a float: 8 bytes;
// - a string: varint length, bytes; or (HASH) its 64-bit hash, 8 bytes;
// - an array: varint count, the items;
// - an object: varint count, then (varint key length, key bytes, value) for
//   each key in byte order.
const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;
const HASH: u8 = 9;

fn hash(s: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6661_726f).hash_one(s)
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

struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    form: Form,
}

impl Encoder<'_> {
    fn tag(&mut self, tag: u8) {
        self.out.push(tag);
    }

    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    fn key(&mut self, k: &str) {
        self.varint(k.len() as u64);
        self.out.extend_from_slice(k.as_bytes());
    }

    fn str(&mut self, s: &str) {
        if self.form == Form::Hashed && s.len() > HASHED_OVER {
            self.tag(HASH);
            self.out.extend_from_slice(&hash(s).to_le_bytes());
        } else {
            self.tag(STRING);
            self.key(s);
        }
    }

    fn int(&mut self, i: i64) {
        self.tag(INT);
        self.varint(((i << 1) ^ (i >> 63)) as u64);
    }

    fn bool(&mut self, b: bool) {
        self.tag(if b { TRUE } else { FALSE });
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(NULL),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => match (n.is_f64(), n.as_i64(), n.as_u64()) {
                (false, Some(i), _) => self.int(i),
                (false, None, Some(u)) => {
                    self.tag(UINT);
                    self.varint(u);
                }
                _ => {
                    self.tag(FLOAT);
                    self.out
                        .extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
                }
            },
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.tag(ARRAY);
                self.varint(items.len() as u64);
                items.iter().for_each(|v| self.value(v));
            }
            Value::Object(m) => {
                self.tag(OBJECT);
                self.varint(m.len() as u64);
                sorted(m, |entries| {
                    for (k, v) in entries {
                        self.key(k);
                        self.value(v);
                    }
                });
            }
        }
    }

    fn strings(&mut self, m: &BTreeMap<String, String>) {
        self.tag(OBJECT);
        self.varint(m.len() as u64);
        for (k, v) in m {
            self.key(k);
            self.str(v);
        }
    }

    /// The metadata, as its JSON would be encoded, without making the JSON.
    fn meta(&mut self, m: &MetaView<'_>) {
        let count = [
            m.annotations.is_some(),
            m.deletion_grace_period_seconds.is_some(),
            m.deletion_timestamp.is_some(),
            m.finalizers.is_some(),
            m.generation.is_some(),
            m.labels.is_some(),
            m.owner_references.is_some(),
        ]
        .into_iter()
        .filter(|present| *present)
        .count();
        self.tag(OBJECT);
        self.varint(count as u64);
        // In key order.
        if let Some(a) = m.annotations {
            self.key("annotations");
            self.strings(a);
        }
        if let Some(g) = m.deletion_grace_period_seconds {
            self.key("deletionGracePeriodSeconds");
            self.int(g);
        }
        if let Some(t) = m.deletion_timestamp {
            self.key("deletionTimestamp");
            self.value(&serde_json::to_value(t).unwrap_or(Value::Null));
        }
        if let Some(f) = m.finalizers {
            self.key("finalizers");
            self.tag(ARRAY);
            self.varint(f.len() as u64);
            f.iter().for_each(|s| self.str(s));
        }
        if let Some(g) = m.generation {
            self.key("generation");
            self.int(g);
        }
        if let Some(l) = m.labels {
            self.key("labels");
            self.strings(l);
        }
        if let Some(refs) = m.owner_references {
            self.key("ownerReferences");
            self.tag(ARRAY);
            self.varint(refs.len() as u64);
            for r in refs {
                let count = 4
                    + usize::from(r.block_owner_deletion.is_some())
                    + usize::from(r.controller.is_some());
                self.tag(OBJECT);
                self.varint(count as u64);
                self.key("apiVersion");
                self.str(&r.api_version);
                if let Some(b) = r.block_owner_deletion {
                    self.key("blockOwnerDeletion");
                    self.bool(b);
                }
                if let Some(c) = r.controller {
                    self.key("controller");
                    self.bool(c);
                }
                self.key("kind");
                self.str(&r.kind);
                self.key("name");
                self.str(&r.name);
                self.key("uid");
                self.str(&r.uid);
            }
        }
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
    Hash(u64),
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

    fn u64(&mut self) -> Result<u64, Corrupt> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| Corrupt)?))
    }

    fn key(&mut self) -> Result<&'a [u8], Corrupt> {
        let len = self.len()?;
        self.bytes(len)
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
            FLOAT => Leaf::Float(self.u64()?),
            STRING => Leaf::Str(self.key()?),
            HASH => Leaf::Hash(self.u64()?),
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
                    let key = std::str::from_utf8(self.key()?).map_err(|_| Corrupt)?;
                    m.insert(key.to_owned(), self.value()?);
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
                Leaf::Hash(_) => return Err(Corrupt),
            },
        })
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

/// Compares one value of each form, tags still unread.
fn diff_value<'k>(
    a: &mut Reader<'k>,
    b: &mut Reader<'k>,
    at: &mut Vec<u8>,
    out: &mut Vec<String>,
) -> Result<(), Corrupt> {
    let (ta, tb) = (a.u8()?, b.u8()?);
    match (ta, tb) {
        (OBJECT, OBJECT) => diff_object(a, b, at, out),
        (ARRAY, ARRAY) => {
            let (ca, cb) = (a.len()?, b.len()?);
            let len = at.len();
            for i in 0..ca.max(cb) {
                let _ = write!(at, "/{i}");
                if i < ca && i < cb {
                    diff_value(a, b, at, out)?;
                } else {
                    // An item only one of them has.
                    let r = if i < ca { &mut *a } else { &mut *b };
                    let tag = r.u8()?;
                    r.skip(tag)?;
                    report(at, out);
                }
                at.truncate(len);
            }
            Ok(())
        }
        (ARRAY | OBJECT, _) | (_, ARRAY | OBJECT) => {
            a.skip(ta)?;
            b.skip(tb)?;
            report(at, out);
            Ok(())
        }
        (ta, tb) => {
            if a.leaf(ta)? != b.leaf(tb)? {
                report(at, out);
            }
            Ok(())
        }
    }
}

/// Compares two objects (after their tags), merging their keys in order.
fn diff_object<'k>(
    a: &mut Reader<'k>,
    b: &mut Reader<'k>,
    at: &mut Vec<u8>,
    out: &mut Vec<String>,
) -> Result<(), Corrupt> {
    let (mut ca, mut cb) = (a.len()?, b.len()?);
    let len = at.len();
    let mut ka = if ca > 0 { Some(a.key()?) } else { None };
    let mut kb = if cb > 0 { Some(b.key()?) } else { None };
    loop {
        let order = match (ka, kb) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        };
        match order {
            Ordering::Equal => {
                push_token(at, ka.unwrap_or_default());
                diff_value(a, b, at, out)?;
            }
            Ordering::Less => {
                // Only the previous state has it: removed.
                push_token(at, ka.unwrap_or_default());
                let tag = a.u8()?;
                a.skip(tag)?;
                report(at, out);
            }
            Ordering::Greater => {
                // Only the new state has it: added.
                push_token(at, kb.unwrap_or_default());
                let tag = b.u8()?;
                b.skip(tag)?;
                report(at, out);
            }
        }
        at.truncate(len);
        if order != Ordering::Greater {
            ca -= 1;
            ka = if ca > 0 { Some(a.key()?) } else { None };
        }
        if order != Ordering::Less {
            cb -= 1;
            kb = if cb > 0 { Some(b.key()?) } else { None };
        }
    }
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
            5 => json!(
                [
                    "x",
                    "y\"z",
                    "ü/~",
                    "nine-char",
                    "eight-ch",
                    "a-longer-string-value",
                    "a-longer-string-valuf"
                ][fastrand::usize(..7)]
            ),
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

    /// Sets, changes or removes one of the metadata fields a kept form holds.
    fn random_metadata(meta: &mut Value) {
        let m = meta.as_object_mut().unwrap();
        let owner = |controller: Option<bool>| {
            let mut r = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                               "name": "a-long-owner-name", "uid": "u-1"});
            if let Some(c) = controller {
                r["controller"] = json!(c);
                r["blockOwnerDeletion"] = json!(!c);
            }
            r
        };
        let (key, value) = match fastrand::u8(0..7) {
            0 => (
                "annotations",
                json!({"a": "1", "long/annotation": random_scalar().to_string()}),
            ),
            1 => ("deletionGracePeriodSeconds", json!(fastrand::i64(0..40))),
            2 => ("deletionTimestamp", json!("2026-01-01T00:00:07Z")),
            3 => (
                "finalizers",
                json!(["a", "example.com/a-long-finalizer"][..fastrand::usize(0..3)]),
            ),
            4 => ("generation", json!(fastrand::i64(1..4))),
            5 => (
                "labels",
                json!({"app": "x", "tier": random_scalar().to_string()}),
            ),
            _ => (
                "ownerReferences",
                json!([owner([None, Some(true), Some(false)][fastrand::usize(..3)])]),
            ),
        };
        if fastrand::u8(0..4) == 0 {
            m.remove(key);
        } else {
            m.insert(key.to_owned(), value);
        }
    }

    /// The paths found on the kept form, whole or hashed, are exactly those
    /// found on both documents parsed, over 2,000 random pairs with nested
    /// arrays and objects, changed types, escaped keys, long strings that
    /// differ in one byte and every kind of scalar.
    #[test]
    fn the_diff_on_kept_bytes_agrees_with_the_diff_of_parsed_values() {
        fastrand::seed(7);
        for round in 0..2000 {
            let mut a = object(random_value(4), random_value(3), json!({"app": "x"}));
            for _ in 0..fastrand::usize(0..4) {
                random_metadata(&mut a["metadata"]);
            }
            let before_obj: DynamicObject = serde_json::from_value(a.clone()).unwrap();
            let mut kept = Vec::new();
            encode(&ObjectView::new(&before_obj), Form::Whole, &mut kept);
            let mut hashed = Vec::new();
            encode(&ObjectView::new(&before_obj), Form::Hashed, &mut hashed);
            assert!(hashed.len() <= kept.len());
            let before = decode(&kept).unwrap();
            assert_eq!(
                before,
                serde_json::to_value(ObjectView::new(&before_obj)).unwrap(),
                "round {round}: the kept form reads back as it was"
            );
            for _ in 0..fastrand::usize(0..4) {
                match fastrand::u8(0..5) {
                    4 => random_metadata(&mut a["metadata"]),
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
            let (mut now_whole, mut now_hashed) = (Vec::new(), Vec::new());
            encode(&view, Form::Whole, &mut now_whole);
            encode(&view, Form::Hashed, &mut now_hashed);
            let mut got = Vec::new();
            diff(&kept, &now_whole, &mut got).unwrap();
            got.sort();
            let mut got_hashed = Vec::new();
            diff(&hashed, &now_hashed, &mut got_hashed).unwrap();
            got_hashed.sort();
            let mut expected = Vec::new();
            let now = serde_json::to_value(&view).unwrap();
            assert_eq!(decode(&now_whole).unwrap(), now, "round {round}");
            changed_paths(&before, &now, &mut String::new(), &mut expected);
            expected.sort();
            assert_eq!(got, expected, "round {round}: {before} → {now}");
            assert_eq!(
                got_hashed, expected,
                "round {round} hashed: {before} → {now}"
            );
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
        encode(&view, Form::Whole, &mut kept);
        let mut paths = Vec::new();
        diff(&kept, &kept, &mut paths).unwrap();
        assert!(paths.is_empty(), "{paths:?}");
        for cut in 0..kept.len() {
            assert!(decode(&kept[..cut]).is_err(), "cut at {cut}");
            let _ = diff(&kept[..cut], &kept, &mut paths);
            let _ = diff(&kept, &kept[..cut], &mut paths);
        }
        for i in 0..kept.len() {
            let mut damaged = kept.clone();
            damaged[i] ^= 0xa5;
            let _ = decode(&damaged);
            let _ = diff(&damaged, &kept, &mut paths);
        }
    }

    #[test]
    fn the_kept_form_holds_only_what_an_update_can_change() {
        let mut o = object(json!({"x": 1}), json!({}), json!({}));
        o["metadata"]["generateName"] = json!("t-");
        o["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        o["metadata"]["generation"] = json!(3);
        o["metadata"]["finalizers"] = json!(["f"]);
        let o: DynamicObject = serde_json::from_value(o).unwrap();
        let kept = serde_json::to_value(ObjectView::new(&o)).unwrap();
        assert_eq!(
            kept,
            json!({"metadata": {"labels": {}, "generation": 3, "finalizers": ["f"]},
                   "spec": {"x": 1}, "status": {}})
        );
    }
}
