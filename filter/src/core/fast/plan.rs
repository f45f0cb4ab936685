//! Per-message plans compiled once per configuration: everything the fast transcoder needs to
//! go between JSON tokens and wire format without consulting descriptors on the hot path.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use prost_reflect::{Cardinality, DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

/// FNV-1a: field names are short; SipHash would cost more than the lookup.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// The scalar kinds of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

impl Scalar {
    /// The wire type of one value of this kind.
    pub fn wire_type(self) -> u8 {
        use Scalar::*;
        match self {
            Double | Fixed64 | Sfixed64 => 1,
            Float | Fixed32 | Sfixed32 => 5,
            String | Bytes => 2,
            Int32 | Int64 | Uint32 | Uint64 | Sint32 | Sint64 | Bool => 0,
        }
    }
}

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
    pub json_name: Box<str>,
    /// `"json_name"` as it appears in JSON without escapes (None if the name needs escapes).
    pub quoted_json_name: Option<Box<[u8]>>,
    pub proto_name: Box<str>,
    pub kind: ValueKind,
    pub shape: Shape,
    /// Index of the (real) oneof among the message's oneofs.
    pub oneof: Option<u16>,
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
    pub full_name: Box<str>,
    /// The fast path handles this message and everything it contains (no proto2 groups).
    pub supported: bool,
    pub well_known: Option<WellKnown>,
    /// In declaration order (the JSON output order).
    pub fields: Vec<FieldPlan>,
    /// JSON and proto names → index into `fields`.
    pub by_name: FnvMap<Box<[u8]>, u16>,
    /// Field number → index into `fields`.
    pub by_number: FnvMap<u32, u16>,
    pub oneofs: u16,
}

impl MessagePlan {
    pub fn field_by_number(&self, number: u32) -> Option<(usize, &FieldPlan)> {
        let i = usize::from(*self.by_number.get(&number)?);
        self.fields.get(i).map(|f| (i, f))
    }
}

#[derive(Debug, Clone)]
pub struct EnumPlan {
    pub full_name: Box<str>,
    /// `google.protobuf.NullValue`: JSON `null`.
    pub is_null_value: bool,
    pub by_name: FnvMap<Box<[u8]>, i32>,
    /// Number → name (the first declared name of an aliased number).
    pub by_number: FnvMap<i32, Box<str>>,
    /// Declared names, for case-insensitive lookup.
    pub names: Vec<(Box<str>, i32)>,
}

impl EnumPlan {
    pub fn number(&self, name: &[u8], case_insensitive: bool) -> Option<i32> {
        if let Some(n) = self.by_name.get(name) {
            return Some(*n);
        }
        if case_insensitive {
            return self.names.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|(_, v)| *v);
        }
        None
    }
}

/// Every message and enum of a descriptor pool, compiled.
#[derive(Debug, Clone, Default)]
pub struct Plans {
    pub messages: Vec<MessagePlan>,
    pub enums: Vec<EnumPlan>,
    pub message_index: FnvMap<Box<str>, usize>,
}

impl Plans {
    pub fn build(pool: &DescriptorPool) -> Plans {
        let mut message_index = FnvMap::default();
        for (i, m) in pool.all_messages().enumerate() {
            message_index.insert(Box::from(m.full_name()), i);
        }
        let mut enum_index: FnvMap<Box<str>, usize> = FnvMap::default();
        let enums: Vec<EnumPlan> = pool
            .all_enums()
            .enumerate()
            .map(|(i, e)| {
                enum_index.insert(Box::from(e.full_name()), i);
                enum_plan(&e)
            })
            .collect();
        let mut messages: Vec<MessagePlan> =
            pool.all_messages().map(|m| message_plan(&m, &message_index, &enum_index)).collect();
        // A message with a group field, or reaching one, goes through the reflection path.
        let direct: Vec<bool> = pool.all_messages().map(|m| !m.fields().any(|f| f.is_group())).collect();
        let mut supported = direct.clone();
        loop {
            let mut changed = false;
            for (i, plan) in messages.iter().enumerate() {
                if !supported.get(i).copied().unwrap_or(false) {
                    continue;
                }
                let reaches_unsupported = plan.fields.iter().any(|f| {
                    let nested = match (f.kind, f.shape) {
                        (ValueKind::Message(m), _) | (_, Shape::Map { value: ValueKind::Message(m), .. }) => Some(m),
                        _ => None,
                    };
                    nested.is_some_and(|m| !supported.get(m).copied().unwrap_or(false))
                });
                if reaches_unsupported {
                    if let Some(s) = supported.get_mut(i) {
                        *s = false;
                    }
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (plan, ok) in messages.iter_mut().zip(supported) {
            plan.supported = ok;
        }
        Plans { messages, enums, message_index }
    }

    pub fn message(&self, index: usize) -> Option<&MessagePlan> {
        self.messages.get(index)
    }

    pub fn index_of(&self, full_name: &str) -> Option<usize> {
        self.message_index.get(full_name).copied()
    }
}

fn enum_plan(e: &EnumDescriptor) -> EnumPlan {
    let mut by_name = FnvMap::default();
    let mut by_number = FnvMap::default();
    let mut names = Vec::new();
    for v in e.values() {
        by_name.insert(Box::from(v.name().as_bytes()), v.number());
        by_number.entry(v.number()).or_insert_with(|| Box::from(v.name()));
        names.push((Box::from(v.name()), v.number()));
    }
    EnumPlan {
        full_name: Box::from(e.full_name()),
        is_null_value: e.full_name() == "google.protobuf.NullValue",
        by_name,
        by_number,
        names,
    }
}

fn scalar(kind: &Kind) -> Option<Scalar> {
    Some(match kind {
        Kind::Double => Scalar::Double,
        Kind::Float => Scalar::Float,
        Kind::Int32 => Scalar::Int32,
        Kind::Int64 => Scalar::Int64,
        Kind::Uint32 => Scalar::Uint32,
        Kind::Uint64 => Scalar::Uint64,
        Kind::Sint32 => Scalar::Sint32,
        Kind::Sint64 => Scalar::Sint64,
        Kind::Fixed32 => Scalar::Fixed32,
        Kind::Fixed64 => Scalar::Fixed64,
        Kind::Sfixed32 => Scalar::Sfixed32,
        Kind::Sfixed64 => Scalar::Sfixed64,
        Kind::Bool => Scalar::Bool,
        Kind::String => Scalar::String,
        Kind::Bytes => Scalar::Bytes,
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}

fn value_kind(kind: &Kind, messages: &FnvMap<Box<str>, usize>, enums: &FnvMap<Box<str>, usize>) -> ValueKind {
    match kind {
        Kind::Message(m) => ValueKind::Message(messages.get(m.full_name()).copied().unwrap_or(usize::MAX)),
        Kind::Enum(e) => ValueKind::Enum(enums.get(e.full_name()).copied().unwrap_or(usize::MAX)),
        other => ValueKind::Scalar(scalar(other).unwrap_or(Scalar::Bytes)),
    }
}

fn well_known(m: &MessageDescriptor) -> Option<WellKnown> {
    Some(match m.full_name() {
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

fn message_plan(
    m: &MessageDescriptor,
    messages: &FnvMap<Box<str>, usize>,
    enums: &FnvMap<Box<str>, usize>,
) -> MessagePlan {
    let real_oneofs: Vec<String> =
        m.oneofs().filter(|o| !o.is_synthetic()).map(|o| o.full_name().to_string()).collect();
    let mut fields = Vec::new();
    let mut by_name = FnvMap::default();
    let mut by_number = FnvMap::default();
    for f in m.fields() {
        let index = u16::try_from(fields.len()).unwrap_or(u16::MAX);
        by_name.entry(Box::from(f.json_name().as_bytes())).or_insert(index);
        by_name.entry(Box::from(f.name().as_bytes())).or_insert(index);
        by_number.insert(f.number(), index);
        fields.push(field_plan(&f, &real_oneofs, messages, enums));
    }
    MessagePlan {
        full_name: Box::from(m.full_name()),
        supported: true,
        well_known: well_known(m),
        fields,
        by_name,
        by_number,
        oneofs: u16::try_from(real_oneofs.len()).unwrap_or(u16::MAX),
    }
}

fn field_plan(
    f: &FieldDescriptor,
    real_oneofs: &[String],
    messages: &FnvMap<Box<str>, usize>,
    enums: &FnvMap<Box<str>, usize>,
) -> FieldPlan {
    let kind = f.kind();
    let shape = if f.is_map() {
        match &kind {
            Kind::Message(entry) => {
                let key = scalar(&entry.map_entry_key_field().kind()).unwrap_or(Scalar::String);
                let value = value_kind(&entry.map_entry_value_field().kind(), messages, enums);
                Shape::Map { key, value }
            }
            _ => Shape::Repeated { packed: false },
        }
    } else if f.cardinality() == Cardinality::Repeated {
        Shape::Repeated { packed: f.is_packed() }
    } else {
        Shape::Single { presence: f.supports_presence() }
    };
    let oneof = f
        .containing_oneof()
        .filter(|o| !o.is_synthetic())
        .and_then(|o| real_oneofs.iter().position(|n| n == o.full_name()))
        .and_then(|i| u16::try_from(i).ok());
    FieldPlan {
        number: f.number(),
        json_name: Box::from(f.json_name()),
        quoted_json_name: quoted(f.json_name()),
        proto_name: Box::from(f.name()),
        kind: value_kind(&kind, messages, enums),
        shape,
        oneof,
    }
}

fn quoted(name: &str) -> Option<Box<[u8]>> {
    if name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    Some(format!("\"{name}\"").into_bytes().into_boxed_slice())
}
