//! Per-message plans compiled once per configuration: everything the fast transcoder needs to
//! go between JSON tokens and wire format without consulting descriptors on the hot path.
use std::sync::{Arc, OnceLock};

use crate::core::schema::{self, Enum, Field, Kind, Message, Schema};

pub use crate::core::schema::Scalar;
use crate::core::seeded_hash::SeededMap;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Scalar(Scalar),
    /// Index into [`Plans::enums`].
    Enum(usize),
    /// Index into [`Plans::messages`].
    Message(usize),
}

impl ValueKind {
    pub fn wire_type(self) -> u8 {
        match self {
            ValueKind::Scalar(s) => s.wire_type(),
            ValueKind::Enum(_) => 0,
            ValueKind::Message(_) => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A singular field; `presence`: set/unset is observable (message, optional, oneof member).
    Single {
        presence: bool,
    },
    Repeated {
        packed: bool,
    },
    /// A map; the entry's key and value kinds.
    Map {
        key: Scalar,
        value: ValueKind,
    },
}

#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub number: u32,
    /// The schema's names, shared with it.
    pub json_name: Arc<str>,
    /// `"json_name"` as it appears in JSON without escapes (None if the name needs escapes).
    pub quoted_json_name: Option<Box<[u8]>>,
    pub proto_name: Arc<str>,
    pub kind: ValueKind,
    pub shape: Shape,
    /// Index of the (real) oneof among the message's oneofs.
    pub oneof: Option<u16>,
    /// A message field in the group wire format (start-group tag, fields, end-group tag): a
    /// proto2 group or `message_encoding = DELIMITED`. Never a map.
    pub delimited: bool,
    /// Strings (for a map: its keys and values) must be UTF-8 (`utf8_validation = VERIFY`);
    /// otherwise any bytes are valid, and invalid UTF-8 is printed with U+FFFD replacements.
    pub verify_utf8: bool,
    /// `google.api.field_behavior = REQUIRED` (checked with `json2grpc.rest.field_behavior`).
    pub required: bool,
    /// `google.api.field_behavior = OUTPUT_ONLY` (dropped from requests with that option).
    pub output_only: bool,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellKnown {
    Any,
    Timestamp,
    Duration,
    FieldMask,
    Struct,
    Value,
    ListValue,
    /// The wrapper types: their JSON is the wrapped scalar.
    Wrapper(Scalar),
    /// An ordinary `{}`, but embedded in Any as `"value": {}` like the others.
    Empty,
}

impl WellKnown {
    /// Whether the JSON form differs from an object of the fields.
    pub fn custom_json(self) -> bool {
        self != WellKnown::Empty
    }
}

#[derive(Debug, Clone)]
pub struct MessagePlan {
    pub full_name: Arc<str>,
    /// A delimited (group-encoded) field is this message's or a sub-message's (map values
    /// included): its encoding is rewritten length-prefixed before it is printed or checked.
    pub reaches_groups: bool,
    pub well_known: Option<WellKnown>,
    /// In declaration order (the JSON output order).
    pub fields: Vec<FieldPlan>,
    /// JSON and proto names → index into `fields` (keys share the fields' names); a name that
    /// is one field's JSON name and a later field's proto name finds the first field.
    pub by_name: SeededMap<Arc<[u8]>, u16>,
    /// The proto names `by_name` finds another field for (empty but for unusual proto2
    /// schemas): URL names look proto names up first, as Envoy does.
    pub(crate) proto_shadowed: SeededMap<Arc<[u8]>, u16>,
    /// Field number → index into `fields`.
    pub by_number: SeededMap<u32, u16>,
    pub oneofs: u16,
}

impl MessagePlan {
    pub(crate) fn empty() -> MessagePlan {
        MessagePlan {
            full_name: Arc::from(""),
            reaches_groups: false,
            well_known: None,
            fields: Vec::new(),
            by_name: SeededMap::default(),
            proto_shadowed: SeededMap::default(),
            by_number: SeededMap::default(),
            oneofs: 0,
        }
    }

    /// The field a URL name (a query parameter's path segment) names: by proto name, else by
    /// JSON name — what scanning the fields for each would find, in a hash lookup: a query
    /// string's parameters are each looked up, in messages of up to 65,535 fields.
    pub fn field_by_url_name(&self, name: &[u8]) -> Option<usize> {
        self.proto_shadowed.get(name).or_else(|| self.by_name.get(name)).map(|i| usize::from(*i))
    }

    pub fn field_by_number(&self, number: u32) -> Option<(usize, &FieldPlan)> {
        let i = usize::from(*self.by_number.get(&number)?);
        self.fields.get(i).map(|f| (i, f))
    }
}

#[derive(Debug, Clone)]
pub struct EnumPlan {
    pub full_name: Arc<str>,
    /// `google.protobuf.NullValue`: JSON `null`.
    pub is_null_value: bool,
    pub by_name: SeededMap<Box<[u8]>, i32>,
    /// Number → name (the first declared name of an aliased number).
    pub by_number: SeededMap<i32, Box<str>>,
    /// Declared names, in order (the first value is the default).
    pub names: Vec<(Box<str>, i32)>,
    /// Lower-case name → the first declared value of that name in any case: built on the
    /// first case-insensitive lookup a name misses (`case_insensitive_enum_parsing`), where a
    /// scan of the values per name would cost names × values.
    by_lower: OnceLock<SeededMap<Box<[u8]>, i32>>,
    /// A closed enum: a number it does not declare, read from the wire, is an unknown field.
    pub closed: bool,
}

impl EnumPlan {
    pub fn number(&self, name: &[u8], case_insensitive: bool) -> Option<i32> {
        if let Some(n) = self.by_name.get(name) {
            return Some(*n);
        }
        if !case_insensitive {
            return None;
        }
        let by_lower = self.by_lower.get_or_init(|| {
            let mut map = SeededMap::default();
            for (n, v) in &self.names {
                map.entry(Box::from(n.to_ascii_lowercase().as_bytes())).or_insert(*v);
            }
            map
        });
        by_lower.get(name.to_ascii_lowercase().as_slice()).copied()
    }

    /// Whether a number read from the wire is a value of this enum (always, for an open one).
    pub fn accepts(&self, number: i32) -> bool {
        !self.closed || self.by_number.contains_key(&number)
    }
}

/// Every message and enum of a descriptor pool, compiled.
///
/// Message plans are built on first use when the plans keep their schema ([`Plans::lazy`], what
/// the filter does): every worker's VM holds its own copy of everything a configuration keeps,
/// and an API's messages are mostly reached by a few of its methods per sidecar (the plans of a
/// 200-service API are 2.75 MB of the 7.4 MB it keeps on wasm32).
#[derive(Debug, Default)]
pub struct Plans {
    /// Boxed: a slot of a message no request reaches costs 8 bytes, not a plan's ~64.
    messages: Vec<OnceLock<Box<MessagePlan>>>,
    /// Where lazy plans come from (None: every plan was built up front).
    schema: Option<Arc<Schema>>,
    /// Which messages reach a delimited (group-encoded) field, from the schema.
    reaches_groups: Vec<bool>,
    /// Built on first use too: three maps of value names each (130 KB for the 217 enums of a
    /// 200-service API, in every worker's VM).
    enums: Vec<OnceLock<Box<EnumPlan>>>,
    /// Full name → index, when there is no schema to ask (plans built up front).
    message_index: SeededMap<Arc<str>, usize>,
}

impl Plans {
    /// Compiles every message and enum of the schema; plan indices are the schema's.
    pub fn build(schema: &Schema) -> Plans {
        let mut plans = Plans::empty(schema);
        for (i, m) in schema.messages.iter().enumerate() {
            let plan = plans.compile(schema, i, m);
            if let Some(cell) = plans.messages.get_mut(i) {
                *cell = OnceLock::from(Box::new(plan));
            }
        }
        plans.enums = schema.enums.iter().map(|e| OnceLock::from(Box::new(enum_plan(e)))).collect();
        plans.message_index = schema.messages.iter().enumerate().map(|(i, m)| (Arc::from(&*m.full_name), i)).collect();
        plans
    }

    /// Compiles each message and enum on its first use.
    pub fn lazy(schema: Arc<Schema>) -> Plans {
        let mut plans = Plans::empty(&schema);
        plans.schema = Some(schema);
        plans
    }

    fn empty(schema: &Schema) -> Plans {
        Plans {
            messages: schema.messages.iter().map(|_| OnceLock::new()).collect(),
            schema: None,
            reaches_groups: reaches_groups(schema),
            enums: schema.enums.iter().map(|_| OnceLock::new()).collect(),
            message_index: SeededMap::default(),
        }
    }

    fn compile(&self, schema: &Schema, index: usize, m: &Message) -> MessagePlan {
        let mut plan = message_plan(schema, index, m);
        plan.reaches_groups = self.reaches_groups.get(index).copied().unwrap_or(false);
        plan
    }

    pub fn message(&self, index: usize) -> Option<&MessagePlan> {
        let cell = self.messages.get(index)?;
        if let Some(plan) = cell.get() {
            return Some(plan);
        }
        let schema = self.schema.as_deref()?;
        let m = schema.messages.get(index)?;
        Some(cell.get_or_init(|| Box::new(self.compile(schema, index, m))))
    }

    pub fn enumeration(&self, index: usize) -> Option<&EnumPlan> {
        let cell = self.enums.get(index)?;
        if let Some(plan) = cell.get() {
            return Some(plan);
        }
        let e = self.schema.as_deref()?.enums.get(index)?;
        Some(cell.get_or_init(|| Box::new(enum_plan(e))))
    }

    /// The number of message types (plan indices are `0..len`).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Every message plan, in index order (building the lazy ones): the n-th item is plan n
    /// (an index without a plan, which a schema cannot produce, yields an empty one).
    pub fn iter(&self) -> impl Iterator<Item = &MessagePlan> {
        static NONE: OnceLock<MessagePlan> = OnceLock::new();
        (0..self.messages.len()).map(|i| self.message(i).unwrap_or_else(|| NONE.get_or_init(MessagePlan::empty)))
    }

    pub fn index_of(&self, full_name: &str) -> Option<usize> {
        match &self.schema {
            Some(schema) => schema.message_index(full_name),
            None => self.message_index.get(full_name).copied(),
        }
    }
}

/// Which messages reach a delimited field: those with one, then (to a fixed point) those with
/// a sub-message (map entries included) that does.
fn reaches_groups(schema: &Schema) -> Vec<bool> {
    let delimited = |f: &Field| f.delimited() && !f.map() && matches!(f.kind(), Kind::Message(_));
    let marked: Vec<bool> = schema.messages.iter().map(|m| m.fields.iter().any(delimited)).collect();
    // Most APIs (proto3, editions without DELIMITED) have none: no graph to build.
    if !marked.contains(&true) {
        return marked;
    }
    let edges = schema.messages.iter().enumerate().flat_map(|(holder, m)| {
        m.fields.iter().filter_map(move |f| match f.kind() {
            Kind::Message(held) => Some((holder, held)),
            _ => None,
        })
    });
    crate::core::reach::reaching(marked, edges)
}

fn enum_plan(e: &Enum) -> EnumPlan {
    let mut by_name = SeededMap::default();
    let mut by_number = SeededMap::default();
    for (name, number) in &e.values {
        by_name.insert(Box::from(name.as_bytes()), *number);
        by_number.entry(*number).or_insert_with(|| name.clone());
    }
    EnumPlan {
        full_name: Arc::from(&*e.full_name),
        is_null_value: &*e.full_name == "google.protobuf.NullValue",
        by_name,
        by_number,
        names: e.values.clone(),
        by_lower: OnceLock::new(),
        closed: e.closed,
    }
}

fn value_kind(kind: Kind) -> ValueKind {
    match kind {
        Kind::Scalar(s) => ValueKind::Scalar(s),
        Kind::Enum(e) => ValueKind::Enum(e),
        Kind::Message(m) => ValueKind::Message(m),
    }
}

/// The well-known type a message's full name is, if any: the one table of them.
pub fn well_known(full_name: &str) -> Option<WellKnown> {
    Some(match full_name {
        "google.protobuf.Any" => WellKnown::Any,
        "google.protobuf.Timestamp" => WellKnown::Timestamp,
        "google.protobuf.Duration" => WellKnown::Duration,
        "google.protobuf.FieldMask" => WellKnown::FieldMask,
        "google.protobuf.Struct" => WellKnown::Struct,
        "google.protobuf.Value" => WellKnown::Value,
        "google.protobuf.ListValue" => WellKnown::ListValue,
        "google.protobuf.DoubleValue" => WellKnown::Wrapper(Scalar::Double),
        "google.protobuf.FloatValue" => WellKnown::Wrapper(Scalar::Float),
        "google.protobuf.Int64Value" => WellKnown::Wrapper(Scalar::Int64),
        "google.protobuf.UInt64Value" => WellKnown::Wrapper(Scalar::Uint64),
        "google.protobuf.Int32Value" => WellKnown::Wrapper(Scalar::Int32),
        "google.protobuf.UInt32Value" => WellKnown::Wrapper(Scalar::Uint32),
        "google.protobuf.BoolValue" => WellKnown::Wrapper(Scalar::Bool),
        "google.protobuf.StringValue" => WellKnown::Wrapper(Scalar::String),
        "google.protobuf.BytesValue" => WellKnown::Wrapper(Scalar::Bytes),
        "google.protobuf.Empty" => WellKnown::Empty,
        _ => return None,
    })
}

fn message_plan(schema: &Schema, index: usize, m: &Message) -> MessagePlan {
    // Real oneofs are numbered among themselves (a proto3 `optional` is no choice).
    let real_oneof: Vec<Option<u16>> = {
        let mut next = 0u16;
        schema
            .oneofs(index)
            .iter()
            .map(|o| {
                (!o.synthetic).then(|| {
                    next = next.saturating_add(1);
                    next - 1
                })
            })
            .collect()
    };
    let mut fields = Vec::new();
    let mut by_name = SeededMap::default();
    let mut proto_shadowed = SeededMap::default();
    let mut by_number = SeededMap::default();
    for f in &m.fields {
        let index = u16::try_from(fields.len()).unwrap_or(u16::MAX);
        by_name.entry(Arc::<[u8]>::from(f.names.json_name.clone())).or_insert(index);
        let name = Arc::<[u8]>::from(f.names.name.clone());
        // A name already there is an earlier field's JSON name, or its proto name (an extension
        // is `[pkg.name]`, which a declared field's name may also be): the first proto name wins.
        let earlier = by_name.get(&name).and_then(|&first| Some((first, m.fields.get(usize::from(first))?)));
        match earlier {
            Some((first, earlier)) if first != index && *earlier.names.name != *f.names.name => {
                proto_shadowed.entry(name).or_insert(index);
            }
            Some(_) => {}
            None => {
                by_name.insert(name, index);
            }
        }
        by_number.insert(f.number, index);
        let oneof = f.oneof().and_then(|o| real_oneof.get(usize::from(o)).copied().flatten());
        fields.push(field_plan(schema, f, oneof));
    }
    MessagePlan {
        full_name: Arc::from(&*m.full_name),
        reaches_groups: false,
        well_known: well_known(&m.full_name),
        fields,
        by_name,
        proto_shadowed,
        by_number,
        oneofs: u16::try_from(real_oneof.iter().flatten().count()).unwrap_or(u16::MAX),
    }
}

fn field_plan(schema: &Schema, f: &Field, oneof: Option<u16>) -> FieldPlan {
    // A map's key and value get the map field's features (protoc copies them to both).
    let mut verify_utf8 = f.verify_utf8();
    let shape = match (f.map(), f.kind()) {
        (true, Kind::Message(entry)) => {
            let entry = schema.message(entry);
            if let Some(value) = entry.and_then(schema::Message::map_value) {
                verify_utf8 = value.verify_utf8();
            }
            let key = match entry.and_then(schema::Message::map_key).map(|k| k.kind()) {
                Some(Kind::Scalar(s)) => s,
                _ => Scalar::String,
            };
            let value = entry
                .and_then(schema::Message::map_value)
                .map_or(ValueKind::Scalar(Scalar::Bytes), |v| value_kind(v.kind()));
            Shape::Map { key, value }
        }
        _ if f.is_repeated() => Shape::Repeated { packed: f.packed() },
        _ => Shape::Single { presence: f.presence() },
    };
    FieldPlan {
        number: f.number,
        json_name: f.names.json_name.clone(),
        quoted_json_name: quoted(f.json_name()),
        proto_name: f.names.name.clone(),
        kind: value_kind(f.kind()),
        shape,
        oneof,
        delimited: f.delimited() && !f.map() && matches!(f.kind(), Kind::Message(_)),
        verify_utf8,
        required: f.behavior().required,
        output_only: f.behavior().output_only,
    }
}

fn quoted(name: &str) -> Option<Box<[u8]>> {
    if name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    Some(format!("\"{name}\"").into_bytes().into_boxed_slice())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::schema::descriptor_proto::{FeatureSet, FieldProto};
    use crate::testing::fixtures::editions::{field, file, message, OPTIONAL, STRING};

    /// What scanning a message's fields finds for a URL name: a proto name, else a JSON name.
    fn scanned(m: &Message, name: &str) -> Option<usize> {
        let by_proto = m.fields.iter().position(|f| f.name() == name);
        by_proto.or_else(|| m.fields.iter().position(|f| f.json_name() == name))
    }

    fn every_url_name_finds_what_a_scan_finds(schema: &Schema) -> usize {
        let plans = Plans::lazy(Arc::new(schema.clone()));
        let mut checked = 0;
        for (i, m) in schema.messages.iter().enumerate() {
            let plan = plans.message(i).unwrap();
            let names = m.fields.iter().flat_map(|f| [f.name(), f.json_name()]);
            for name in names.chain(["", "nope", "A"]) {
                assert_eq!(plan.field_by_url_name(name.as_bytes()), scanned(m, name), "{}: {name:?}", m.full_name);
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn enum_names_in_any_case_find_the_first_declared_value_of_that_name() {
        let values = [("ZERO", 0), ("Red", 1), ("RED_X", 2), ("red", 3), ("rEd_x", 4)];
        let e = Enum {
            full_name: "ed.E".into(),
            values: values.iter().map(|&(n, v)| (Box::from(n), v)).collect(),
            closed: false,
        };
        let plan = enum_plan(&e);
        let scan = |name: &str| values.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
        for name in ["ZERO", "zero", "Red", "RED", "red", "rEd", "RED_X", "red_x", "rEd_x", "redx", "", "r"] {
            let exact = values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            assert_eq!(plan.number(name.as_bytes(), false), exact, "{name}");
            assert_eq!(plan.number(name.as_bytes(), true), exact.or_else(|| scan(name)), "{name}");
        }
        assert_eq!(plan.number(b"RED", true), Some(1), "the first declared, not the last");
    }

    #[test]
    fn url_names_find_what_a_scan_of_the_fields_finds() {
        let named = |name, number, json: &'static str| FieldProto {
            json_name: Some(json.into()),
            ..field(name, number, OPTIONAL, STRING, "")
        };
        // JSON names that are other fields' proto names, before and after them, and repeated.
        let fields = vec![
            named("a", 1, "b"),
            named("b", 2, "a"),
            named("c", 3, "x"),
            named("d", 4, "x"),
            field("e_f", 5, OPTIONAL, STRING, ""),
            named("g", 6, "e_f"),
            named("h", 7, "i"),
            named("i", 8, "h"),
            named("j", 9, "j"),
        ];
        // A declared field named as an extension's key (`[ed.e]`) and that extension, after a
        // field whose JSON name it also is: the first proto name wins (review of fa30c30).
        let e_fields = vec![named("j", 1, "[ed.e]"), field("[ed.e]", 2, OPTIONAL, STRING, ""), named("k", 3, "[ed.f]")];
        let extends =
            |name, number| FieldProto { extendee: ".ed.E".into(), ..field(name, number, OPTIONAL, STRING, "") };
        let mut f = file("f.proto", vec![message("M", fields), message("E", e_fields)], vec![], FeatureSet::default());
        f.extensions = vec![extends("e", 100), extends("f", 101)];
        let schema = Schema::link(&[f]).unwrap();
        let plans = Plans::lazy(Arc::new(schema.clone()));
        let plan = plans.message(0).unwrap();
        assert_eq!(plan.field_by_url_name(b"b"), Some(1), "b's proto name, not a's JSON name");
        assert_eq!(plan.field_by_url_name(b"x"), Some(2), "the first of two JSON names");
        assert_eq!(plan.field_by_url_name(b"eF"), Some(4));
        let e = &schema.messages[1];
        assert_eq!(e.fields.len(), 5, "{:?}", e.fields.iter().map(Field::name).collect::<Vec<_>>());
        let plan = plans.message(1).unwrap();
        assert_eq!(plan.field_by_url_name(b"[ed.e]"), Some(1), "the declared field, not the extension");
        assert_eq!(plan.field_by_url_name(b"[ed.f]"), Some(4), "the extension, not k's JSON name");
        assert_eq!(every_url_name_finds_what_a_scan_finds(&schema), 9 * 2 + 3 + 5 * 2 + 3);
        assert!(every_url_name_finds_what_a_scan_finds(&crate::testing::fixtures::schema()) > 100);
    }
}
