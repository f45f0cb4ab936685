//! Values bound from the URL (path variables, query parameters), at the wire level: whether
//! the body's encoding already sets their field, whether it sets the same value, and their
//! encoding under their field paths.
//!
//! The request message is the body's encoding followed by the URL values it does not set:
//! protobuf parsers merge concatenated encodings (a singular field keeps its last value,
//! repeated fields append, sub-messages merge), so no message tree is built.
use super::fast::wire::length_delimited;
use super::field_path::FieldPath;
use super::field_value::WireValue;
use super::schema::{Field, Kind, Scalar};
use super::wire::{self, fields, read_varint, RawField, FIXED32, FIXED64, LEN, VARINT};

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

    /// The occurrences of the leaf field in `bytes` (through every occurrence of its parents).
    fn occurrences<'a>(&self, bytes: &'a [u8]) -> Vec<RawField<'a>> {
        let (Some(leaf), Some(parents)) =
            (self.leaf(), wire::descend(bytes, self.path.parents().iter().map(|f| f.number)))
        else {
            return Vec::new();
        };
        parents.iter().flat_map(|c| fields(c)).filter_map(|f| f.ok().filter(|f| f.number == leaf.number)).collect()
    }

    /// The values of the map entries in `bytes` whose key is this binding's key.
    fn entry_values<'a>(&self, bytes: &'a [u8], key: &MapKey) -> Vec<Option<RawField<'a>>> {
        self.occurrences(bytes)
            .into_iter()
            .filter(|entry| entry.wire_type == LEN)
            .filter_map(|entry| {
                let (mut k, mut v) = (None, None);
                for f in fields(entry.value).flatten() {
                    match f.number {
                        1 => k = Some(f),
                        2 => v = Some(f),
                        _ => {}
                    }
                }
                let same_key = match k {
                    Some(k) => same(Kind::Scalar(key.kind), k, &key.value),
                    None => is_default(Kind::Scalar(key.kind), &key.value),
                };
                same_key.then_some(v)
            })
            .collect()
    }

    /// Whether the body's encoding sets this binding's field (for a map binding: its key).
    pub fn set_in(&self, body: &[u8]) -> bool {
        match &self.map_key {
            Some(key) => !self.entry_values(body, key).is_empty(),
            None => !self.occurrences(body).is_empty(),
        }
    }

    /// Whether the body's encoding holds this binding's value: the field's value (the last
    /// occurrence; sub-messages merged), one of a repeated field's values, or the value of
    /// the map entry with this key.
    pub fn same_in(&self, body: &[u8]) -> bool {
        let Some(leaf) = self.leaf() else { return false };
        if let Some(key) = &self.map_key {
            return match self.entry_values(body, key).last() {
                Some(Some(v)) => same(self.kind, *v, &self.value),
                Some(None) => is_default(self.kind, &self.value),
                None => false,
            };
        }
        let occurrences = self.occurrences(body);
        if leaf.is_list() {
            return occurrences
                .iter()
                .any(|o| elements(self.kind, *o).iter().any(|e| same(self.kind, *e, &self.value)));
        }
        match self.kind {
            Kind::Message(_) => {
                let merged: Vec<u8> = occurrences.iter().flat_map(|o| o.value.iter().copied()).collect();
                self.value.wire_type == LEN && merged == self.value.bytes
            }
            _ => occurrences.last().is_some_and(|o| same(self.kind, *o, &self.value)),
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
    let mut kept: Vec<(Vec<u32>, &Bound)> = Vec::with_capacity(bound.len());
    for (i, b) in bound.iter().enumerate() {
        let replaced = bound.iter().skip(i + 1).any(|later| {
            later.path == b.path
                && match (&later.map_key, &b.map_key) {
                    (Some(k1), Some(k2)) => k1.value == k2.value,
                    (None, None) => !b.leaf().is_some_and(Field::is_list),
                    _ => false,
                }
        });
        if !replaced {
            // Stable insertion by path (few bindings; a sort routine would cost .wasm size).
            let key: Vec<u32> = b.path.fields().iter().map(|f| f.number).collect();
            let at = kept.partition_point(|(k, _)| *k <= key);
            kept.insert(at, (key, b));
        }
    }
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
            length_delimited(field.number, out, |o| encode_level(&deeper, depth + 1, o));
        }
    }
}

fn write_leaves(field: &Field, leaves: &[&Bound], out: &mut Vec<u8>) {
    if field.packed && !leaves.is_empty() {
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
                b.value.write(field.number, out);
            }
            None => {}
        }
    }
}

/// Appends the encoding of field `leaf`'s default value, for a field whose presence must
/// show though it holds no value (a message field: empty; a scalar: zero; an enum: its first
/// value).
pub fn write_default(leaf: &Field, first_enum_value: i32, out: &mut Vec<u8>) {
    let value = match leaf.kind {
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
    value.write(leaf.number, out);
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::field_path::Names;
    use crate::core::field_value::parse_value;
    use crate::core::schema::Schema;
    use crate::core::testutil::schema;

    /// A binding of `text` to `path` of test.v1.Everything (`path[key]` for a map).
    fn bound(schema: &Schema, path: &str, key: Option<&str>, text: &str) -> Bound {
        let root = schema.message_index("test.v1.Everything").unwrap();
        let path = FieldPath::resolve(schema, root, path, Names::Proto).unwrap();
        let leaf = path.leaf().unwrap().clone();
        let (kind, keep_default, map_key) = match (key, leaf.kind) {
            (Some(key), Kind::Message(entry)) => {
                let entry = schema.message(entry).unwrap();
                let (k, v) = (entry.map_key().unwrap(), entry.map_value().unwrap());
                let Kind::Scalar(scalar) = k.kind else { panic!() };
                let value = parse_value(schema, k.kind, key, false).unwrap();
                (v.kind, v.presence, Some(MapKey { value, kind: scalar, keep_default: k.presence }))
            }
            _ => (leaf.kind, leaf.presence, None),
        };
        let value = parse_value(schema, kind, text, false).unwrap();
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
            (b.set_in(&body), b.same_in(&body))
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
    }
}
