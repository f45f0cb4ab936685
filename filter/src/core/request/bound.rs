//! Values bound from the URL (path variables, query parameters), at the wire level: whether
//! the body's encoding already sets their field, whether it sets the same value, and their
//! encoding under their field paths.
//!
//! The request message is the body's encoding followed by the URL values it does not set:
//! protobuf parsers merge concatenated encodings (a singular field keeps its last value,
//! repeated fields append, sub-messages merge), so no message tree is built.
use std::collections::HashMap;

use crate::core::codec::wire::sub_message;
use crate::core::codec::wire::{self, fields, read_varint, RawField, FIXED32, FIXED64, LEN, START_GROUP, VARINT};
use crate::core::request::field_value::WireValue;
use crate::core::route::field_path::FieldPath;
use crate::core::schema::{Field, Kind, Scalar};

/// A value bound from the URL to the field at `path`.
#[derive(Debug, Clone)]
pub struct Bound {
    pub path: FieldPath,
    pub value: WireValue,
    /// The kind of `value`: the field's, or its map's value kind.
    pub kind: Kind,
    /// Whether `value` is written even when it is its type's default (presence fields, map
    /// values in proto2); defaults are left out otherwise, as protobuf encoders do.
    pub keep_default: bool,
    /// For a map field (`field[key]=value`), the entry's key.
    pub map_key: Option<MapKey>,
}

#[derive(Debug, Clone)]
pub struct MapKey {
    pub value: WireValue,
    pub kind: Scalar,
    pub keep_default: bool,
}

impl Bound {
    fn leaf(&self) -> Option<&Field> {
        self.path.leaf()
    }
}

/// What the body's encoding holds for one URL binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InBody {
    /// The body sets the binding's field (for a map binding: its key).
    pub set: bool,
    /// The body holds the binding's value: the field's last value (sub-messages merged), one
    /// of a repeated field's values, or the value of the last map entry with this key.
    /// Only computed when asked for (`reject_binding_body_field_collisions`).
    pub same: bool,
}

/// Reads the body's encoding once for all the bindings, however many there are: a scan per
/// binding made 999 query parameters on a 1 MB body cost seconds. The bindings' paths form a
/// trie; the walk descends only into fields on a path, so each body byte is read at most once
/// per level of the deepest path (at most 100). `compare`: also work out [`InBody::same`].
pub fn in_body(bound: &[Bound], body: &[u8], compare: bool) -> Vec<InBody> {
    let mut trie = Trie::default();
    let leaves: Vec<usize> = bound.iter().map(|b| trie.insert(b, compare)).collect();
    trie.walk(ROOT, body, compare);
    bound
        .iter()
        .zip(leaves)
        .map(|(b, leaf)| trie.nodes.get(leaf).map_or_else(InBody::default, |node| node.result(b, compare)))
        .collect()
}

const ROOT: usize = 0;

/// A comparable form of a wire value: varints by number (however long their encoding), floats
/// by `==` (both zeros alike; NaN equal to nothing: no key), everything else by bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Number(u8, u64),
    Bytes(u8, &'a [u8]),
}

fn key_of(kind: Kind, wire_type: u8, bytes: &[u8]) -> Option<Key<'_>> {
    match (kind, wire_type) {
        (_, VARINT) => read_varint(bytes).map(|(v, _)| Key::Number(VARINT, v)),
        (Kind::Scalar(Scalar::Float), FIXED32) => {
            let f = float32(bytes)?;
            (!f.is_nan()).then(|| Key::Number(FIXED32, u64::from(if f == 0.0 { 0 } else { f.to_bits() })))
        }
        (Kind::Scalar(Scalar::Double), FIXED64) => {
            let f = float64(bytes)?;
            (!f.is_nan()).then(|| Key::Number(FIXED64, if f == 0.0 { 0 } else { f.to_bits() }))
        }
        _ => Some(Key::Bytes(wire_type, bytes)),
    }
}

/// The key of a map entry without a key field: its kind's default.
fn default_key(kind: Scalar) -> Key<'static> {
    match kind.wire_type() {
        LEN => Key::Bytes(LEN, &[]),
        wire => Key::Number(wire, 0),
    }
}

/// A field on some binding's path, and what the body holds for it.
#[derive(Default)]
struct Node<'a> {
    /// The field is a map (bound as `field[key]`) with keys of this kind.
    map_key: Option<Scalar>,
    /// The kind of the bound values at this node, when it is some binding's leaf.
    kind: Option<Kind>,
    list: bool,
    /// Some binding's path goes deeper.
    parent: bool,
    /// The body sets this field.
    set: bool,
    /// Singular field: its last occurrence.
    last: Option<RawField<'a>>,
    /// Message-typed singular field (compare only): its occurrences merged.
    merged: Vec<u8>,
    /// Map: the bound keys → the value of the last entry with that key (`Some(None)`: an
    /// entry without value), `None` until the body has one.
    entries: HashMap<Key<'a>, Option<Option<RawField<'a>>>>,
    /// Repeated field (compare only): the bound values → whether the body holds each.
    values: HashMap<Key<'a>, bool>,
}

impl<'a> Node<'a> {
    fn record(&mut self, field: RawField<'a>, compare: bool) {
        self.set = true;
        let Some(kind) = self.kind else { return };
        if let Some(key_kind) = self.map_key {
            if field.wire_type != LEN {
                return;
            }
            let (mut k, mut v) = (None, None);
            for f in fields(field.value).flatten() {
                match f.number {
                    1 => k = Some(f),
                    2 => v = Some(f),
                    _ => {}
                }
            }
            let key = match k {
                Some(k) => key_of(Kind::Scalar(key_kind), k.wire_type, k.value),
                None => Some(default_key(key_kind)),
            };
            if let Some(slot) = key.and_then(|key| self.entries.get_mut(&key)) {
                *slot = Some(v);
            }
            return;
        }
        if !compare {
            return;
        }
        if self.list {
            for e in elements(kind, field) {
                if let Some(found) = key_of(kind, e.wire_type, e.value).and_then(|k| self.values.get_mut(&k)) {
                    *found = true;
                }
            }
        } else if matches!(kind, Kind::Message(_)) {
            self.merged.extend_from_slice(field.value);
        } else {
            self.last = Some(field);
        }
    }

    fn result(&self, b: &Bound, compare: bool) -> InBody {
        if let Some(key) = &b.map_key {
            let entry = key_of(Kind::Scalar(key.kind), key.value.wire_type, &key.value.bytes)
                .and_then(|k| self.entries.get(&k).copied().flatten());
            let same = compare
                && match entry {
                    Some(Some(v)) => same(b.kind, v, &b.value),
                    Some(None) => is_default(b.kind, &b.value),
                    None => false,
                };
            return InBody { set: entry.is_some(), same };
        }
        let same = compare
            && self.set
            && if self.list {
                key_of(b.kind, b.value.wire_type, &b.value.bytes)
                    .is_some_and(|k| self.values.get(&k).copied().unwrap_or(false))
            } else if matches!(b.kind, Kind::Message(_)) {
                b.value.wire_type == LEN && self.merged == b.value.bytes
            } else {
                self.last.is_some_and(|o| same(b.kind, o, &b.value))
            };
        InBody { set: self.set, same }
    }
}

#[derive(Default)]
struct Trie<'a> {
    nodes: Vec<Node<'a>>,
    /// (parent node, field number) → child node.
    children: HashMap<(usize, u32), usize>,
}

impl<'a> Trie<'a> {
    /// Adds `b`'s path; returns its leaf node.
    fn insert(&mut self, b: &'a Bound, compare: bool) -> usize {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = ROOT;
        for field in b.path.fields() {
            if let Some(node) = self.nodes.get_mut(at) {
                node.parent = true;
            }
            let next = self.nodes.len();
            at = *self.children.entry((at, field.number)).or_insert(next);
            if at == next {
                self.nodes.push(Node::default());
            }
        }
        let list = b.leaf().is_some_and(Field::is_list);
        if let Some(node) = self.nodes.get_mut(at) {
            node.kind = Some(b.kind);
            node.list = list;
            match &b.map_key {
                Some(key) => {
                    node.map_key = Some(key.kind);
                    if let Some(k) = key_of(Kind::Scalar(key.kind), key.value.wire_type, &key.value.bytes) {
                        node.entries.insert(k, None);
                    }
                }
                None if compare && list => {
                    if let Some(k) = key_of(b.kind, b.value.wire_type, &b.value.bytes) {
                        node.values.insert(k, false);
                    }
                }
                None => {}
            }
        }
        at
    }

    /// Records the fields of `bytes` (a message at `node`) that lie on a path, and descends
    /// into those with deeper paths. Recursion is as deep as the longest path (at most 100).
    fn walk(&mut self, node: usize, bytes: &'a [u8], compare: bool) {
        for field in fields(bytes).flatten() {
            let Some(&child) = self.children.get(&(node, field.number)) else { continue };
            let Some(n) = self.nodes.get_mut(child) else { continue };
            n.record(field, compare);
            if n.parent && matches!(field.wire_type, LEN | START_GROUP) {
                self.walk(child, field.value, compare);
            }
        }
    }
}

/// The values of one occurrence of a repeated field: a packed run split into its elements.
fn elements(kind: Kind, raw: RawField<'_>) -> Vec<RawField<'_>> {
    let element_wire = match kind {
        Kind::Scalar(s) => s.wire_type(),
        Kind::Enum(_) => VARINT,
        Kind::Message(_) => LEN,
    };
    if raw.wire_type != LEN || element_wire == LEN {
        return vec![raw];
    }
    let mut out = Vec::new();
    let mut rest = raw.value;
    while !rest.is_empty() {
        let n = match element_wire {
            VARINT => read_varint(rest).map_or(rest.len(), |(_, n)| n),
            FIXED64 => 8,
            _ => 4,
        };
        let (value, tail) = rest.split_at(n.min(rest.len()));
        out.push(RawField { number: raw.number, wire_type: element_wire, value });
        rest = tail;
    }
    out
}

/// Whether an encoded value equals `value`, both of kind `kind`: varints by number (however
/// long their encoding), floats by `==`, everything else by bytes.
fn same(kind: Kind, raw: RawField<'_>, value: &WireValue) -> bool {
    if raw.wire_type != value.wire_type {
        return false;
    }
    match (kind, raw.wire_type) {
        (_, VARINT) => read_varint(raw.value).map(|v| v.0) == read_varint(&value.bytes).map(|v| v.0),
        (Kind::Scalar(Scalar::Float), FIXED32) => float32(raw.value) == float32(&value.bytes),
        (Kind::Scalar(Scalar::Double), FIXED64) => float64(raw.value) == float64(&value.bytes),
        _ => raw.value == value.bytes.as_slice(),
    }
}

fn float32(b: &[u8]) -> Option<f32> {
    b.try_into().ok().map(f32::from_le_bytes)
}

fn float64(b: &[u8]) -> Option<f64> {
    b.try_into().ok().map(f64::from_le_bytes)
}

/// Whether `value` is the default of `kind` (zero, false, empty; -0.0 too).
pub fn is_default(kind: Kind, value: &WireValue) -> bool {
    match kind {
        Kind::Scalar(Scalar::Float) => float32(&value.bytes) == Some(0.0),
        Kind::Scalar(Scalar::Double) => float64(&value.bytes) == Some(0.0),
        Kind::Message(_) => false,
        _ if value.wire_type == LEN => value.bytes.is_empty(),
        _ => value.bytes.iter().all(|&b| b == 0),
    }
}

/// Appends the encoding of `bound` (the URL values the body did not set), each message of the
/// paths written once, fields in number order. A singular field bound twice keeps its last
/// value, as does a map key; repeated values keep their order (packed fields as one run).
pub fn encode(bound: &[&Bound], out: &mut Vec<u8>) {
    let keys: Vec<Vec<u32>> = bound.iter().map(|b| b.path.fields().iter().map(|f| f.number).collect()).collect();
    // The last binding of a singular field or of a map key replaces the earlier ones.
    let mut last: HashMap<(&[u32], Option<&WireValue>), usize> = HashMap::with_capacity(bound.len());
    for (i, (b, key)) in bound.iter().zip(&keys).enumerate() {
        if b.map_key.is_some() || !b.leaf().is_some_and(Field::is_list) {
            last.insert((key.as_slice(), b.map_key.as_ref().map(|k| &k.value)), i);
        }
    }
    let mut kept: Vec<(&[u32], &Bound)> = bound
        .iter()
        .zip(&keys)
        .enumerate()
        .filter(|(i, (b, key))| {
            last.get(&(key.as_slice(), b.map_key.as_ref().map(|k| &k.value))).is_none_or(|at| at == i)
        })
        .map(|(_, (b, key))| (key.as_slice(), *b))
        .collect();
    // Stable: repeated values keep their order.
    kept.sort_by(|a, b| a.0.cmp(b.0));
    let items: Vec<&Bound> = kept.into_iter().map(|(_, b)| b).collect();
    encode_level(&items, 0, out);
}

/// Writes the items whose paths share the first `depth` fields, grouped by field at `depth`.
fn encode_level(items: &[&Bound], depth: usize, out: &mut Vec<u8>) {
    let mut rest = items;
    while let Some(first) = rest.first() {
        let Some(field) = first.path.fields().get(depth) else { return };
        let same_field =
            rest.iter().take_while(|b| b.path.fields().get(depth).map(|f| f.number) == Some(field.number)).count();
        let (group, tail) = rest.split_at(same_field);
        rest = tail;
        let (leaves, deeper): (Vec<&Bound>, Vec<&Bound>) =
            group.iter().partition(|b| b.path.fields().len() == depth + 1);
        write_leaves(field, &leaves, out);
        if !deeper.is_empty() {
            sub_message(field.number, field.delimited(), out, |o| encode_level(&deeper, depth + 1, o));
        }
    }
}

fn write_leaves(field: &Field, leaves: &[&Bound], out: &mut Vec<u8>) {
    if field.packed() && !leaves.is_empty() {
        // One packed run, as protobuf encoders write a packed field.
        let run: Vec<u8> = leaves.iter().flat_map(|b| b.value.bytes.iter().copied()).collect();
        WireValue { wire_type: LEN, bytes: run }.write(field.number, out);
        return;
    }
    for b in leaves {
        match &b.map_key {
            Some(key) => {
                let mut entry = Vec::new();
                if key.keep_default || !is_default(Kind::Scalar(key.kind), &key.value) {
                    key.value.write(1, &mut entry);
                }
                if b.keep_default || !is_default(b.kind, &b.value) {
                    b.value.write(2, &mut entry);
                }
                WireValue { wire_type: LEN, bytes: entry }.write(field.number, out);
            }
            None if field.is_list() || b.keep_default || !is_default(b.kind, &b.value) => {
                b.value.write_as(field, out);
            }
            None => {}
        }
    }
}

/// Appends the encoding of field `leaf`'s default value, for a field whose presence must
/// show though it holds no value (a message field: empty; a scalar: zero; an enum: its first
/// value).
pub fn write_default(leaf: &Field, first_enum_value: i32, out: &mut Vec<u8>) {
    let value = match leaf.kind() {
        Kind::Message(_) => WireValue { wire_type: LEN, bytes: Vec::new() },
        Kind::Enum(_) => {
            let mut bytes = Vec::new();
            wire::write_varint(first_enum_value as i64 as u64, &mut bytes);
            WireValue { wire_type: VARINT, bytes }
        }
        Kind::Scalar(s) => match s.wire_type() {
            FIXED64 => WireValue { wire_type: FIXED64, bytes: vec![0; 8] },
            FIXED32 => WireValue { wire_type: FIXED32, bytes: vec![0; 4] },
            LEN => WireValue { wire_type: LEN, bytes: Vec::new() },
            _ => WireValue { wire_type: VARINT, bytes: vec![0] },
        },
    };
    value.write_as(leaf, out);
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::request::field_value::parse_value;
    use crate::core::route::field_path::Names;
    use crate::core::schema::Schema;
    use crate::testing::fixtures::schema;

    /// A binding of `text` to `path` of test.v1.Everything (`path[key]` for a map).
    fn bound(schema: &Schema, path: &str, key: Option<&str>, text: &str) -> Bound {
        let root = schema.message_index("test.v1.Everything").unwrap();
        let path = FieldPath::resolve(schema, root, path, Names::Proto).unwrap();
        let leaf = path.leaf().unwrap().clone();
        let plans = &crate::core::codec::plan::Plans::lazy(std::sync::Arc::new(schema.clone()));
        let (kind, keep_default, map_key) = match (key, leaf.kind()) {
            (Some(key), Kind::Message(entry)) => {
                let entry = schema.message(entry).unwrap();
                let (k, v) = (entry.map_key().unwrap(), entry.map_value().unwrap());
                let Kind::Scalar(scalar) = k.kind() else { panic!() };
                let value = parse_value(schema, plans, k.kind(), key, false).unwrap();
                (v.kind(), v.presence(), Some(MapKey { value, kind: scalar, keep_default: k.presence() }))
            }
            _ => (leaf.kind(), leaf.presence(), None),
        };
        let value = parse_value(schema, plans, kind, text, false).unwrap();
        Bound { path, value, kind, keep_default, map_key }
    }

    fn encoded(bound: &[Bound]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&bound.iter().collect::<Vec<_>>(), &mut out);
        out
    }

    #[test]
    fn paths_merge_in_field_number_order_and_last_values_win() {
        let s = schema();
        let bytes = encoded(&[
            bound(&s, "nested.value", None, "7"),
            bound(&s, "id", None, "a"),
            bound(&s, "nested.name", None, "n"),
            bound(&s, "id", None, "b"),
            bound(&s, "nested.child.value", None, "0"),
        ]);
        // id: "b", nested { name: "n", value: 7, child {} } (a zero without presence is left out)
        assert_eq!(bytes, [0x0a, 0x01, b'b', 0x1a, 0x07, 0x0a, 0x01, b'n', 0x10, 0x07, 0x1a, 0x00]);
    }

    #[test]
    fn repeated_values_keep_their_order_packed_where_the_field_is() {
        let s = schema();
        let bytes = encoded(&[
            bound(&s, "numbers", None, "1"),
            bound(&s, "tags", None, "x"),
            bound(&s, "numbers", None, "0"),
            bound(&s, "tags", None, ""),
            bound(&s, "numbers", None, "-1"),
        ]);
        let mut expected = vec![0x22, 0x01, b'x', 0x22, 0x00, 0x2a, 0x0c, 0x01, 0x00];
        expected.extend_from_slice(&[0xff; 9]);
        expected.push(0x01);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn map_keys_keep_their_last_value() {
        let s = schema();
        let bytes = encoded(&[
            bound(&s, "labels", Some("k"), "1"),
            bound(&s, "labels", Some("j"), ""),
            bound(&s, "labels", Some("k"), "2"),
        ]);
        // labels { key: "j" } (empty value left out), labels { key: "k", value: "2" }
        assert_eq!(bytes, [0x42, 0x03, 0x0a, 0x01, b'j', 0x42, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'2']);
    }

    #[test]
    fn set_in_and_same_in_read_the_body_on_the_wire() {
        let s = schema();
        // numbers: [5] packed, numbers: 300 unpacked, nested { value: 7 }, labels { k: "v" },
        // scalars { f_double: -0.0 }
        let mut body = vec![0x2a, 0x01, 0x05, 0x28, 0xac, 0x02, 0x1a, 0x02, 0x10, 0x07];
        body.extend_from_slice(&[0x42, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v', 0x12, 0x09, 0x09]);
        body.extend_from_slice(&(-0.0f64).to_le_bytes());
        let check = |path: &str, key: Option<&str>, text: &str| {
            let b = bound(&s, path, key, text);
            let found = in_body(std::slice::from_ref(&b), &body, true)[0];
            assert!(!in_body(std::slice::from_ref(&b), &body, false)[0].same, "same is only worked out on request");
            (found.set, found.same)
        };
        assert_eq!(check("numbers", None, "300"), (true, true));
        assert_eq!(check("numbers", None, "5"), (true, true));
        assert_eq!(check("numbers", None, "6"), (true, false));
        assert_eq!(check("nested.value", None, "7"), (true, true));
        assert_eq!(check("nested.name", None, "7"), (false, false));
        assert_eq!(check("labels", Some("k"), "v"), (true, true));
        assert_eq!(check("labels", Some("k"), "w"), (true, false));
        assert_eq!(check("labels", Some("j"), "v"), (false, false));
        assert_eq!(check("scalars.f_double", None, "0"), (true, true), "-0.0 == 0.0, as in protobuf");
        assert_eq!(check("id", None, "x"), (false, false));

        // All at once (one pass over the body) is the same as each alone.
        let all: Vec<Bound> = [
            ("numbers", None, "300"),
            ("numbers", None, "6"),
            ("numbers", None, "5"),
            ("nested.value", None, "7"),
            ("nested.name", None, "7"),
            ("labels", Some("k"), "w"),
            ("labels", Some("k"), "v"),
            ("labels", Some("j"), "v"),
            ("scalars.f_double", None, "0"),
            ("id", None, "x"),
        ]
        .into_iter()
        .map(|(p, k, t)| bound(&s, p, k, t))
        .collect();
        let together = in_body(&all, &body, true);
        let alone: Vec<InBody> = all.iter().map(|b| in_body(std::slice::from_ref(b), &body, true)[0]).collect();
        assert_eq!(together, alone);
        let sets: Vec<bool> = together.iter().map(|f| f.set).collect();
        assert_eq!(sets, [true, true, true, true, false, true, true, false, true, false]);
    }

    #[test]
    fn encode_drops_replaced_values_whatever_their_number() {
        let s = schema();
        // 1,000 values of one singular field and one map key: only the last of each is written.
        let mut many: Vec<Bound> = (0..1000).map(|i| bound(&s, "id", None, &i.to_string())).collect();
        many.extend((0..1000).map(|i| bound(&s, "labels", Some("k"), &i.to_string())));
        let bytes = encoded(&many);
        assert_eq!(bytes, [0x0a, 0x03, b'9', b'9', b'9', 0x42, 0x08, 0x0a, 0x01, b'k', 0x12, 0x03, b'9', b'9', b'9']);
    }
}
