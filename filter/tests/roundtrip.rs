//! Property test: random messages of the example schemas survive binary → JSON → binary.
//!
//! Messages are generated with a small seeded PRNG (fixed seed: every run checks the same
//! cases), encoded, printed with `binary_to_json` under every `print_options` combination,
//! parsed back with `json_to_binary` under several `ParseOptions`, and the result is decoded and
//! compared field by field with the original decoding (not bytes: map order varies; NaN
//! equals NaN there, and float zero signs must survive). The JSON is also printed a second time
//! from the round-tripped message and must be the same JSON value.
//!
//! Schemas: `testdata/transcode_test.proto` (the unit-test schema: every field kind and the
//! well-known types), `bench/proto/bench.proto` (the peer benchmark's flash-sale Order) and the
//! example `proto/flashsale/v1/*.proto`, compiled here with protox (integration tests have no
//! build-script output).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use json2grpc::core::codec::json::ParseOptions;
use json2grpc::core::config::PrintOptions;
use json2grpc::testing::reflect_json::{binary_to_json, json_to_binary, parse_message};
use prost::bytes::Bytes;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};

/// Number of random messages checked. Each is printed once, with one of the 16 print option
/// combinations (in turn) and parsed with one of four parse settings.
const CASES: usize = 4000;
const SEED: u64 = 0x6a73_6f6e_3267_7270; // "json2grp"
/// Deepest nesting of generated messages (a message field at this depth is left unset).
const MAX_DEPTH: u32 = 4;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pool() -> DescriptorPool {
    let root = manifest();
    let includes = [root.join("testdata"), root.join("../bench/proto"), root.join("../proto")];
    let mut compiler = protox::Compiler::new(&includes).unwrap();
    compiler.include_imports(true);
    compiler.include_source_info(false);
    for file in ["transcode_test.proto", "bench.proto", "flashsale/v1/inventory.proto", "flashsale/v1/orders.proto"] {
        compiler.open_file(file).unwrap_or_else(|e| panic!("{file}: {e:?}"));
    }
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}

/// The message types generated at the top level and packed into `Any`: every message of the
/// example packages, `google.api.HttpBody` and the well-known types.
fn root_types(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    let mut roots: Vec<MessageDescriptor> = pool
        .all_messages()
        .filter(|m| !m.is_map_entry())
        .filter(|m| {
            let package = m.package_name();
            matches!(package, "test.v1" | "flashsale.v1" | "bench.v1")
                || m.full_name() == "google.api.HttpBody"
                || is_well_known(m.full_name())
        })
        .collect();
    roots.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    roots
}

const WRAPPERS: [&str; 9] = [
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

fn is_well_known(name: &str) -> bool {
    WRAPPERS.contains(&name)
        || matches!(
            name,
            "google.protobuf.Timestamp"
                | "google.protobuf.Duration"
                | "google.protobuf.FieldMask"
                | "google.protobuf.Struct"
                | "google.protobuf.Value"
                | "google.protobuf.ListValue"
                | "google.protobuf.Any"
                | "google.protobuf.Empty"
        )
}

// ---- PRNG ---------------------------------------------------------------------------------------

/// splitmix64: tiny, seedable, good enough to spread test inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    /// Uniform in `lo..=hi`.
    fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        (lo as i128 + (self.next_u64() as u128 % span) as i128) as i64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---- generator ----------------------------------------------------------------------------------

struct Gen {
    rng: Rng,
    any_types: Vec<MessageDescriptor>,
    /// Fields (full names) that were set at least once: to a non-default value, or at all when
    /// the field has presence.
    fields_set: BTreeSet<String>,
    /// How often each special value or shape was generated.
    seen: BTreeMap<&'static str, usize>,
    /// Also generate the inputs of the known bugs (see `known_bug_*` below); off by default so
    /// that the property test guards everything else. `ROUNDTRIP_KNOWN_BUGS=1` turns it on.
    known_bugs: bool,
}

impl Gen {
    fn note(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    fn set(&mut self, msg: &mut DynamicMessage, field: &FieldDescriptor, value: Value) {
        // A field with presence counts even at its default (Value.null_value has only 0).
        if field.supports_presence() || !value.is_default_for_field(field) {
            self.fields_set.insert(field.full_name().to_string());
        }
        msg.set_field(field, value);
    }

    fn set_by_name(&mut self, msg: &mut DynamicMessage, name: &str, value: Value) {
        let field = msg.descriptor().get_field_by_name(name).unwrap();
        self.set(msg, &field, value);
    }

    fn message(&mut self, desc: &MessageDescriptor, depth: u32) -> DynamicMessage {
        if is_well_known(desc.full_name()) {
            return self.well_known(desc, depth);
        }
        let mut msg = DynamicMessage::new(desc.clone());
        for oneof in desc.oneofs().filter(|o| !o.is_synthetic()) {
            if self.rng.chance(1, 4) {
                continue;
            }
            let fields: Vec<FieldDescriptor> = oneof.fields().collect();
            let field = self.rng.pick(&fields).clone();
            if let Some(v) = self.single(&field.kind(), depth) {
                self.note("oneof member set");
                self.set(&mut msg, &field, v);
            }
        }
        for field in desc.fields() {
            if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) || self.rng.chance(1, 3) {
                continue;
            }
            let value = if field.is_map() {
                self.map(&field, depth)
            } else if field.is_list() {
                self.list(&field.kind(), depth)
            } else {
                self.single(&field.kind(), depth)
            };
            if let Some(v) = value {
                if field.supports_presence() && v.is_default_for_field(&field) {
                    self.note("explicit-presence field set to its default");
                }
                self.set(&mut msg, &field, v);
            }
        }
        msg
    }

    fn len(&mut self) -> usize {
        if self.rng.chance(1, 20) {
            8 + self.rng.below(8) as usize
        } else {
            self.rng.below(4) as usize
        }
    }

    fn list(&mut self, kind: &Kind, depth: u32) -> Option<Value> {
        if matches!(kind, Kind::Message(_)) && depth >= MAX_DEPTH {
            return None;
        }
        let n = self.len();
        Some(Value::List((0..n).filter_map(|_| self.single(kind, depth)).collect()))
    }

    fn map(&mut self, field: &FieldDescriptor, depth: u32) -> Option<Value> {
        let Kind::Message(entry) = field.kind() else { unreachable!() };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        if matches!(value_kind, Kind::Message(_)) && depth >= MAX_DEPTH {
            return None;
        }
        let mut map = HashMap::new();
        for _ in 0..self.len() {
            let key = self.scalar(&key_kind).into_map_key().unwrap();
            if let Some(v) = self.single(&value_kind, depth) {
                map.insert(key, v);
            }
        }
        Some(Value::Map(map))
    }

    /// One value of `kind`; `None` for a message too deep to generate.
    fn single(&mut self, kind: &Kind, depth: u32) -> Option<Value> {
        match kind {
            Kind::Message(m) if depth >= MAX_DEPTH => {
                // Empty is a leaf: keep it reachable at any depth.
                (m.full_name() == "google.protobuf.Empty").then(|| Value::Message(DynamicMessage::new(m.clone())))
            }
            Kind::Message(m) => Some(Value::Message(self.message(m, depth + 1))),
            Kind::Enum(e) => {
                let values: Vec<i32> = e.values().map(|v| v.number()).collect();
                Some(Value::EnumNumber(*self.rng.pick(&values)))
            }
            other => Some(self.scalar(other)),
        }
    }

    fn scalar(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => Value::F64(self.double(true)),
            Kind::Float => Value::F32(self.float()),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                let (random, small) = (self.rng.next_u64() as i32, self.small());
                let v = *self.rng.pick(&[0, 1, -1, i32::MIN, i32::MAX, random, small]);
                if v == i32::MIN {
                    self.note("int32 min");
                }
                Value::I32(v)
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                let (random, small) = (self.rng.next_u64() as i64, self.small() as i64);
                let v = *self.rng.pick(&[0, -1, i64::MIN, i64::MAX, (1 << 53) + 1, -(1 << 53) - 1, random, small]);
                match v {
                    i64::MIN => self.note("int64 min"),
                    i64::MAX => self.note("int64 max"),
                    _ => {}
                }
                Value::I64(v)
            }
            Kind::Uint32 | Kind::Fixed32 => {
                let (random, small) = (self.rng.next_u64() as u32, self.small().unsigned_abs());
                Value::U32(*self.rng.pick(&[0, 1, u32::MAX, random, small]))
            }
            Kind::Uint64 | Kind::Fixed64 => {
                let (random, small) = (self.rng.next_u64(), self.small().unsigned_abs() as u64);
                let v = *self.rng.pick(&[0, u64::MAX, (1 << 53) + 1, random, small]);
                if v == u64::MAX {
                    self.note("uint64 max");
                }
                Value::U64(v)
            }
            Kind::Bool => Value::Bool(self.rng.chance(1, 2)),
            Kind::String => Value::String(self.string()),
            Kind::Bytes => {
                let n = self.rng.below(20);
                Value::Bytes(Bytes::from((0..n).map(|_| self.rng.next_u64() as u8).collect::<Vec<u8>>()))
            }
            Kind::Enum(_) | Kind::Message(_) => unreachable!("not a scalar: {kind:?}"),
        }
    }

    fn small(&mut self) -> i32 {
        self.rng.range_i64(-1000, 1000) as i32
    }

    /// A double: special values (NaN and infinities only if `special`), extremes, random bits.
    fn double(&mut self, special: bool) -> f64 {
        let v = match self.rng.below(if special { 16 } else { 13 }) {
            0 => 0.0,
            1 => -0.0,
            2 => f64::MAX,
            3 => f64::MIN,
            4 => f64::MIN_POSITIVE,
            5 => f64::from_bits(1), // smallest subnormal
            6 => 0.1,
            7 => 1e21,
            8 => -1.5e-7,
            9 => self.small() as f64,
            10..=12 => loop {
                let v = f64::from_bits(self.rng.next_u64());
                if v.is_finite() {
                    break v;
                }
            },
            13 => f64::NAN,
            14 => f64::INFINITY,
            _ => f64::NEG_INFINITY,
        };
        if v.is_nan() {
            self.note("double NaN");
        } else if v.is_infinite() {
            self.note("double infinity");
        } else if v == 0.0 && v.is_sign_negative() {
            self.note("double -0");
        }
        v
    }

    fn float(&mut self) -> f32 {
        let v = self.float_any();
        if !self.known_bugs && v.abs() == f32::MAX {
            // Known bug: ±f32::MAX prints as ±3.4028235e+38, which the parser rejects.
            self.note("float ±MAX avoided (known bug)");
            return 3.4028233e38_f32.copysign(v);
        }
        v
    }

    fn float_any(&mut self) -> f32 {
        let v = match self.rng.below(14) {
            0 => 0.0,
            1 => -0.0,
            2 => f32::MAX,
            3 => f32::MIN,
            4 => f32::MIN_POSITIVE,
            5 => f32::from_bits(1),
            6 => 0.1,
            7 => 16_777_217.0,
            8..=10 => f32::from_bits(self.rng.next_u64() as u32), // NaN payloads included
            11 => f32::NAN,
            12 => f32::INFINITY,
            _ => f32::NEG_INFINITY,
        };
        if v.is_nan() {
            self.note("float NaN");
        } else if v.is_infinite() {
            self.note("float infinity");
        }
        v
    }

    fn string(&mut self) -> String {
        const SPECIAL: [char; 24] = [
            '"',
            '\\',
            '/',
            '\n',
            '\r',
            '\t',
            '\u{0}',
            '\u{1}',
            '\u{1f}',
            '\u{7f}',
            '\u{80}',
            'é',
            '中',
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{fffd}',
            '\u{ffff}',
            '😀',
            '\u{10ffff}',
            '<',
            '&',
            '\'',
            ' ',
        ];
        let n = self.rng.below(12);
        let mut s = String::new();
        for _ in 0..n {
            let c = match self.rng.below(4) {
                0 => *self.rng.pick(&SPECIAL),
                1 => loop {
                    if let Some(c) = char::from_u32(self.rng.below(0x11_0000) as u32) {
                        break c;
                    }
                },
                _ => *self.rng.pick(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") as char,
            };
            s.push(c);
        }
        s
    }

    fn well_known(&mut self, desc: &MessageDescriptor, depth: u32) -> DynamicMessage {
        let mut msg = DynamicMessage::new(desc.clone());
        let name = desc.full_name();
        self.note(match name {
            "google.protobuf.Timestamp" => "WKT Timestamp",
            "google.protobuf.Duration" => "WKT Duration",
            "google.protobuf.FieldMask" => "WKT FieldMask",
            "google.protobuf.Struct" => "WKT Struct",
            "google.protobuf.Value" => "WKT Value",
            "google.protobuf.ListValue" => "WKT ListValue",
            "google.protobuf.Any" => "WKT Any",
            "google.protobuf.Empty" => "WKT Empty",
            _ => "WKT wrapper",
        });
        match name {
            "google.protobuf.Timestamp" => {
                // 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z
                const MIN: i64 = -62_135_596_800;
                const MAX: i64 = 253_402_300_799;
                let (seconds, nanos) = match self.rng.below(8) {
                    0 => (MIN, 0),
                    1 => (MAX, 999_999_999),
                    2 => (-1, 500_000_000),
                    _ => (self.rng.range_i64(MIN, MAX), self.nanos()),
                };
                self.set_by_name(&mut msg, "seconds", Value::I64(seconds));
                self.set_by_name(&mut msg, "nanos", Value::I32(nanos));
            }
            "google.protobuf.Duration" => {
                // ±10,000 years; nanos carry the sign of seconds.
                const MAX: i64 = 315_576_000_000;
                let (seconds, mut nanos) = match self.rng.below(8) {
                    0 => (MAX, 0),
                    1 => (-MAX, 0),
                    2 => (0, self.nanos()),
                    _ => (self.rng.range_i64(-MAX + 1, MAX - 1), self.nanos()),
                };
                if seconds < 0 || (seconds == 0 && self.rng.chance(1, 2)) {
                    nanos = -nanos;
                }
                self.set_by_name(&mut msg, "seconds", Value::I64(seconds));
                self.set_by_name(&mut msg, "nanos", Value::I32(nanos));
            }
            "google.protobuf.FieldMask" => {
                let paths = (0..self.rng.below(4)).map(|_| Value::String(self.mask_path())).collect();
                self.set_by_name(&mut msg, "paths", Value::List(paths));
            }
            "google.protobuf.Struct" => {
                let s = self.struct_fields(depth);
                self.set_by_name(&mut msg, "fields", s);
            }
            "google.protobuf.ListValue" => {
                let items = (0..self.len()).map(|_| Value::Message(self.json_value(depth + 1))).collect();
                self.set_by_name(&mut msg, "values", Value::List(items));
            }
            "google.protobuf.Value" => return self.json_value(depth),
            "google.protobuf.Any" => {
                let types = self.any_types.clone();
                let packed_type = self.rng.pick(&types).clone();
                // An Any at the depth limit packs a leaf.
                let packed = if depth >= MAX_DEPTH {
                    DynamicMessage::new(desc.parent_pool().get_message_by_name("google.protobuf.Empty").unwrap())
                } else {
                    self.message(&packed_type, depth + 1)
                };
                let url = format!("type.googleapis.com/{}", packed.descriptor().full_name());
                self.set_by_name(&mut msg, "type_url", Value::String(url));
                self.set_by_name(&mut msg, "value", Value::Bytes(packed.encode_to_vec().into()));
            }
            "google.protobuf.Empty" => {}
            wrapper => {
                let field = desc.get_field_by_name("value").unwrap();
                if self.rng.chance(1, 4) {
                    self.note("wrapper holding its default");
                    return msg; // present, holding the default
                }
                let mut v = self.scalar(&field.kind());
                assert!(WRAPPERS.contains(&wrapper));
                let finite = match v {
                    Value::F64(x) => x.is_finite(),
                    Value::F32(x) => x.is_finite(),
                    _ => true,
                };
                if !finite && !self.known_bugs {
                    // Known bug: a wrapper holding NaN or ±Infinity prints as `null`.
                    self.note("non-finite wrapper avoided (known bug)");
                    v = Value::default_value(&field.kind());
                }
                self.set(&mut msg, &field, v);
            }
        }
        msg
    }

    fn nanos(&mut self) -> i32 {
        match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(1000) as i32 * 1_000_000,
            2 => self.rng.below(1_000_000) as i32 * 1000,
            _ => self.rng.below(1_000_000_000) as i32,
        }
    }

    /// A FieldMask path whose JSON (lowerCamelCase) form maps back to it: segments of lower
    /// case letters and digits, each `_` followed by a letter.
    fn mask_path(&mut self) -> String {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        let mut path = String::new();
        for i in 0..1 + self.rng.below(3) {
            if i > 0 {
                path.push('.');
            }
            path.push(*self.rng.pick(LETTERS) as char);
            for _ in 0..self.rng.below(7) {
                match self.rng.below(4) {
                    0 => {
                        path.push('_');
                        path.push(*self.rng.pick(LETTERS) as char);
                    }
                    1 => path.push(*self.rng.pick(b"0123456789") as char),
                    _ => path.push(*self.rng.pick(LETTERS) as char),
                }
            }
        }
        path
    }

    fn struct_fields(&mut self, depth: u32) -> Value {
        let mut fields = HashMap::new();
        for _ in 0..self.len() {
            let key = self.string();
            fields.insert(MapKey::String(key), Value::Message(self.json_value(depth + 1)));
        }
        Value::Map(fields)
    }

    /// A `google.protobuf.Value` with its kind set (an unset kind has no JSON form).
    fn json_value(&mut self, depth: u32) -> DynamicMessage {
        let desc = self.any_types.iter().find(|m| m.full_name() == "google.protobuf.Value").unwrap().clone();
        let pool = desc.parent_pool().clone();
        let mut msg = DynamicMessage::new(desc);
        let choices = if depth >= MAX_DEPTH { 4 } else { 6 };
        match self.rng.below(choices) {
            0 => {
                self.note("Value null");
                self.set_by_name(&mut msg, "null_value", Value::EnumNumber(0));
            }
            1 => {
                let v = self.double(false); // NaN and infinities have no JSON number form
                self.set_by_name(&mut msg, "number_value", Value::F64(v));
            }
            2 => {
                let v = self.string();
                self.set_by_name(&mut msg, "string_value", Value::String(v));
            }
            3 => {
                let v = self.rng.chance(1, 2);
                self.set_by_name(&mut msg, "bool_value", Value::Bool(v));
            }
            4 => {
                let mut s = DynamicMessage::new(pool.get_message_by_name("google.protobuf.Struct").unwrap());
                let fields = self.struct_fields(depth);
                self.set_by_name(&mut s, "fields", fields);
                self.set_by_name(&mut msg, "struct_value", Value::Message(s));
            }
            _ => {
                let mut l = DynamicMessage::new(pool.get_message_by_name("google.protobuf.ListValue").unwrap());
                let items = (0..self.len()).map(|_| Value::Message(self.json_value(depth + 1))).collect();
                self.set_by_name(&mut l, "values", Value::List(items));
                self.set_by_name(&mut msg, "list_value", Value::Message(l));
            }
        }
        msg
    }
}

// ---- comparison ---------------------------------------------------------------------------------

/// The first difference between two messages of the same type, as `path: left vs right`.
/// Floats compare by bits (so -0.0 ≠ 0.0), any NaN equals any NaN; `Any` compares its packed
/// message decoded (its bytes may differ in map order).
fn diff_message(a: &DynamicMessage, b: &DynamicMessage, path: &str) -> Option<String> {
    let desc = a.descriptor();
    if desc.full_name() == "google.protobuf.Any" {
        let url = |m: &DynamicMessage| m.get_field_by_name("type_url").unwrap().as_str().unwrap().to_string();
        let (ua, ub) = (url(a), url(b));
        if ua != ub {
            return Some(format!("{path}.type_url: {ua:?} vs {ub:?}"));
        }
        let packed = ua.rsplit('/').next().and_then(|name| desc.parent_pool().get_message_by_name(name));
        if let Some(packed) = packed {
            let decode = |m: &DynamicMessage| {
                let bytes = m.get_field_by_name("value").unwrap().as_bytes().unwrap().clone();
                DynamicMessage::decode(packed.clone(), bytes).unwrap()
            };
            return diff_message(&decode(a), &decode(b), &format!("{path}({})", packed.full_name()));
        }
    }
    for field in desc.fields() {
        let p = format!("{path}.{}", field.name());
        if field.supports_presence() && a.has_field(&field) != b.has_field(&field) {
            return Some(format!("{p}: present {} vs {}", a.has_field(&field), b.has_field(&field)));
        }
        if field.supports_presence() && !a.has_field(&field) {
            continue; // unset in both (and a recursive type's default would recurse forever)
        }
        if let Some(d) = diff_value(&a.get_field(&field), &b.get_field(&field), &p) {
            return Some(d);
        }
    }
    let (ua, ub) = (a.unknown_fields().count(), b.unknown_fields().count());
    (ua != ub).then(|| format!("{path}: {ua} vs {ub} unknown fields"))
}

fn diff_value(a: &Value, b: &Value, path: &str) -> Option<String> {
    let same = match (a, b) {
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        // ±0 alike for floats only: text that underflows even a double (`-2.8e-355`) loses its
        // sign in the reference (serde_json gives +0); the fast codec keeps it, as strtod does
        // (pinned in fuzz_regressions.rs). Doubles keep the exact comparison.
        (Value::F32(x), Value::F32(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) || (*x == 0.0 && *y == 0.0)
        }
        (Value::Message(x), Value::Message(y)) => return diff_message(x, y, path),
        (Value::List(x), Value::List(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} vs {} items", x.len(), y.len()));
            }
            return x.iter().zip(y).enumerate().find_map(|(i, (x, y))| diff_value(x, y, &format!("{path}[{i}]")));
        }
        (Value::Map(x), Value::Map(y)) => {
            if let Some(k) = x.keys().find(|k| !y.contains_key(*k)).or_else(|| y.keys().find(|k| !x.contains_key(*k))) {
                return Some(format!("{path}: key {k:?} in one map only"));
            }
            return x.iter().find_map(|(k, v)| diff_value(v, &y[k], &format!("{path}[{k:?}]")));
        }
        (x, y) => x == y,
    };
    (!same).then(|| format!("{path}: {a:?} vs {b:?}"))
}

// ---- the tests ----------------------------------------------------------------------------------

fn print_options(combo: usize) -> PrintOptions {
    PrintOptions {
        add_whitespace: combo & 1 != 0,
        always_print_primitive_fields: combo & 2 != 0,
        always_print_enums_as_ints: combo & 4 != 0,
        preserve_proto_field_names: combo & 8 != 0,
        ..Default::default()
    }
}

fn parse_options(variant: usize) -> ParseOptions {
    let default = ParseOptions::default();
    match variant {
        0 => default,
        1 => ParseOptions { ignore_unknown_fields: false, ..default },
        2 => ParseOptions { case_insensitive_enums: true, ..default },
        _ => ParseOptions { ignore_unknown_enum_names: true, ignore_unknown_fields: false, ..default },
    }
}

/// One case: `Err` describes the failure.
fn round_trip(
    root: &MessageDescriptor,
    bytes: &[u8],
    print: &PrintOptions,
    parse: &ParseOptions,
) -> Result<(), String> {
    let expected = DynamicMessage::decode(root.clone(), bytes).unwrap();
    let mut json = Vec::new();
    binary_to_json(root, bytes, print, &mut json).map_err(|e| format!("binary_to_json failed: {e}"))?;
    let text = String::from_utf8(json.clone()).map_err(|e| format!("JSON is not UTF-8: {e}"))?;
    let first: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("invalid JSON {text}: {e}"))?;
    if print.add_whitespace && first.as_object().is_some_and(|o| !o.is_empty()) && !text.contains('\n') {
        return Err(format!("add_whitespace printed no newline: {text}"));
    }
    let back = json_to_binary(root, &json, parse).map_err(|e| format!("json_to_binary failed: {e}\n  JSON: {text}"))?;
    let got = DynamicMessage::decode(root.clone(), back.as_slice()).map_err(|e| format!("re-encoded bytes: {e}"))?;
    if let Some(d) = diff_message(&expected, &got, root.name()) {
        return Err(format!("changed: {d}\n  JSON: {text}"));
    }
    let mut again = Vec::new();
    binary_to_json(root, &back, print, &mut again).map_err(|e| format!("second binary_to_json failed: {e}"))?;
    let second: serde_json::Value = serde_json::from_slice(&again).unwrap();
    if first != second {
        return Err(format!("printed differently the second time:\n  {text}\n  {}", String::from_utf8_lossy(&again)));
    }
    Ok(())
}

#[test]
fn random_messages_round_trip_through_json() {
    let pool = pool();
    let roots = root_types(&pool);
    assert!(roots.len() > 40, "{} root types", roots.len());
    let mut gen = Gen {
        rng: Rng(SEED),
        any_types: roots.clone(),
        fields_set: BTreeSet::new(),
        seen: BTreeMap::new(),
        known_bugs: std::env::var_os("ROUNDTRIP_KNOWN_BUGS").is_some(),
    };
    let mut failures = Vec::new();
    let mut per_root: BTreeMap<String, usize> = BTreeMap::new();
    for case in 0..CASES {
        let root = gen.rng.pick(&roots).clone();
        // Every fourth case is one of the two big schemas' richest types.
        let root = match case % 8 {
            0 => pool.get_message_by_name("test.v1.Everything").unwrap(),
            4 => pool.get_message_by_name("bench.v1.Order").unwrap(),
            _ => root,
        };
        *per_root.entry(root.full_name().to_string()).or_default() += 1;
        let message = gen.message(&root, 0);
        let bytes = message.encode_to_vec();
        let print = print_options(case % 16);
        let parse = parse_options(case / 16 % 4);
        if let Err(e) = round_trip(&root, &bytes, &print, &parse) {
            failures.push(format!(
                "case {case} ({}, {print:?}, {parse:?}): {e}\n  binary: {}",
                root.full_name(),
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ));
        }
    }

    // Not vacuous: every root type was generated, every field of every generated type was set
    // (to a non-default value unless it has presence), and every special value showed up.
    assert_eq!(per_root.len(), roots.len(), "root types never generated");
    let mut missing = Vec::new();
    for m in &roots {
        for f in m.fields() {
            if !gen.fields_set.contains(f.full_name()) {
                missing.push(f.full_name().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "fields never set: {missing:?}");
    for what in [
        "double NaN",
        "double infinity",
        "double -0",
        "float NaN",
        "float infinity",
        "int32 min",
        "int64 min",
        "int64 max",
        "uint64 max",
        "oneof member set",
        "explicit-presence field set to its default",
        "wrapper holding its default",
        "Value null",
        "WKT Timestamp",
        "WKT Duration",
        "WKT FieldMask",
        "WKT Struct",
        "WKT Value",
        "WKT ListValue",
        "WKT Any",
        "WKT Empty",
        "WKT wrapper",
    ] {
        assert!(gen.seen.get(what).copied().unwrap_or(0) > 0, "never generated: {what}");
    }
    eprintln!("{CASES} cases over {} types; generated: {:?}", roots.len(), gen.seen);

    if !failures.is_empty() {
        // ROUNDTRIP_SHOW=n prints more of them.
        let show = std::env::var("ROUNDTRIP_SHOW").ok().and_then(|n| n.parse().ok()).unwrap_or(5);
        let shown: Vec<&String> = failures.iter().take(show).collect();
        panic!(
            "{} of {CASES} cases did not round-trip; the first ones:\n{}",
            failures.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
}

/// The peer benchmark's canonical JSON payloads parse to exactly their `.binpb` messages, and
/// print back to JSON that parses to the same message.
#[test]
fn bench_payloads_match_their_binary_form() {
    let pool = pool();
    let dir = manifest().join("testdata/bench");
    for (name, type_name) in
        [("small", "bench.v1.Order"), ("medium", "bench.v1.Order"), ("large", "bench.v1.BulkOrders")]
    {
        let desc = pool.get_message_by_name(type_name).unwrap();
        let json = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
        let binary = std::fs::read(dir.join(format!("{name}.binpb"))).unwrap();
        let expected = DynamicMessage::decode(desc.clone(), binary.as_slice()).unwrap();
        let parsed = parse_message(&desc, &json, &ParseOptions::default()).unwrap();
        assert_eq!(diff_message(&expected, &parsed, name), None, "{name}.json");
        let mut printed = Vec::new();
        binary_to_json(&desc, &binary, &PrintOptions::default(), &mut printed).unwrap();
        let reparsed = parse_message(&desc, &printed, &ParseOptions::default()).unwrap();
        assert_eq!(diff_message(&expected, &reparsed, name), None, "{name}: printed JSON");
    }
}

/// `bench/proto/bench.proto` (the one copy of the bench schema in this repository) declares
/// the peers' messages and enums unchanged: each one in the peers' own descriptor set
/// (`testdata/bench/bench.pb`, made by protoc) is equal to ours, so their payloads are valid
/// requests and responses of the benchmark service.
#[test]
fn bench_schema_is_the_peers() {
    let ours = pool();
    let bytes = std::fs::read(manifest().join("testdata/bench/bench.pb")).unwrap();
    let peers = prost_types::FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    let file = peers.file.iter().find(|f| f.package() == "bench.v1").expect("bench.v1 in bench.pb");
    assert!(!file.message_type.is_empty() && !file.enum_type.is_empty());
    for message in &file.message_type {
        let name = format!("bench.v1.{}", message.name());
        let mine = ours.get_message_by_name(&name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(mine.descriptor_proto(), message, "{name} differs from the peers'");
    }
    for e in &file.enum_type {
        let name = format!("bench.v1.{}", e.name());
        let mine = ours.get_enum_by_name(&name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(mine.enum_descriptor_proto(), e, "{name} differs from the peers'");
    }
}

/// The comparison itself must see differences (else the property test could not fail).
#[test]
fn diff_sees_differences() {
    let pool = pool();
    let desc = pool.get_message_by_name("test.v1.Scalars").unwrap();
    let mut a = DynamicMessage::new(desc.clone());
    a.set_field_by_name("f_float", Value::F32(f32::NAN));
    let b = a.clone();
    assert_eq!(diff_message(&a, &b, "s"), None, "NaN equals NaN");
    let mut c = a.clone();
    c.set_field_by_name("f_int64", Value::I64(1));
    assert!(diff_message(&a, &c, "s").unwrap().contains("s.f_int64"));
    let mut neg = DynamicMessage::new(desc.clone());
    neg.set_field_by_name("f_double", Value::F64(-0.0));
    let mut pos = DynamicMessage::new(desc);
    pos.set_field_by_name("f_double", Value::F64(0.0));
    assert!(diff_message(&neg, &pos, "s").is_some(), "-0.0 differs from 0.0");
    let everything = pool.get_message_by_name("test.v1.Everything").unwrap();
    let mut m1 = DynamicMessage::new(everything.clone());
    m1.set_field_by_name(
        "labels",
        Value::Map(HashMap::from([(MapKey::String("k".into()), Value::String("v".into()))])),
    );
    let mut m2 = DynamicMessage::new(everything);
    m2.set_field_by_name(
        "labels",
        Value::Map(HashMap::from([(MapKey::String("k".into()), Value::String("w".into()))])),
    );
    assert!(diff_message(&m1, &m2, "e").unwrap().contains("labels"));
}

// ---- known bugs (found by the property test; `cargo test --test roundtrip -- --ignored`) ------

fn print_default(desc: &MessageDescriptor, message: &DynamicMessage) -> String {
    let mut json = Vec::new();
    binary_to_json(desc, &message.encode_to_vec(), &PrintOptions::default(), &mut json).unwrap();
    String::from_utf8(json).unwrap()
}

/// `float` ±f32::MAX prints as the shortest f32 form `±3.4028235e+38`; read back as a double
/// that is a little above f32::MAX, and the parser refuses it: "float value out of range".
#[test]
#[ignore = "known bug of the reflection path only (prost-reflect's float range check); the fast path the filter uses is right"]
fn known_bug_float_max_round_trips() {
    let pool = pool();
    for (type_name, field) in [("test.v1.Scalars", "f_float"), ("google.protobuf.FloatValue", "value")] {
        let desc = pool.get_message_by_name(type_name).unwrap();
        for v in [f32::MAX, f32::MIN] {
            let mut m = DynamicMessage::new(desc.clone());
            m.set_field_by_name(field, Value::F32(v));
            let json = print_default(&desc, &m);
            let back = json_to_binary(&desc, json.as_bytes(), &ParseOptions::default())
                .unwrap_or_else(|e| panic!("{type_name} {v}: {json} does not parse back: {e}"));
            let got = DynamicMessage::decode(desc.clone(), back.as_slice()).unwrap();
            assert_eq!(diff_message(&m, &got, type_name), None);
        }
    }
}

/// `google.protobuf.FloatValue` / `DoubleValue` holding NaN or ±Infinity print as JSON `null`
/// (not "NaN", "Infinity", "-Infinity"): as a field, `null` reads back as an unset wrapper; at
/// the top level or packed in Any it is refused.
#[test]
#[ignore = "known bug of the reflection path only (prost-reflect's wrapper serializer); the fast path the filter uses is right"]
fn known_bug_non_finite_wrappers_print_as_strings() {
    let pool = pool();
    let everything = pool.get_message_by_name("test.v1.Everything").unwrap();
    for (field, wrapper, value) in [
        ("w_double", "google.protobuf.DoubleValue", Value::F64(f64::NAN)),
        ("w_double", "google.protobuf.DoubleValue", Value::F64(f64::NEG_INFINITY)),
        ("w_float", "google.protobuf.FloatValue", Value::F32(f32::INFINITY)),
    ] {
        let mut w = DynamicMessage::new(pool.get_message_by_name(wrapper).unwrap());
        w.set_field_by_name("value", value);
        let top = print_default(&w.descriptor(), &w);
        assert!(matches!(top.as_str(), r#""NaN""# | r#""Infinity""# | r#""-Infinity""#), "{wrapper}: {top}");
        let mut m = DynamicMessage::new(everything.clone());
        m.set_field_by_name(field, Value::Message(w));
        let json = print_default(&everything, &m);
        let back = json_to_binary(&everything, json.as_bytes(), &ParseOptions::default()).unwrap();
        let got = DynamicMessage::decode(everything.clone(), back.as_slice()).unwrap();
        assert_eq!(diff_message(&m, &got, "Everything"), None, "{json}");
    }
}

// --- the fast path against the reflection path -----------------------------------------------

use json2grpc::core::codec::Codec;

/// Decodes with the reflection parser (the reference), or the error message.
fn slow_parse(root: &MessageDescriptor, json: &[u8], parse: &ParseOptions) -> Result<DynamicMessage, String> {
    parse_message(root, json, parse).map_err(|e| e.message)
}

fn fast_parse(
    codec: &Codec,
    root: &MessageDescriptor,
    json: &[u8],
    parse: &ParseOptions,
) -> Result<DynamicMessage, String> {
    let index = codec.index(root).expect("fast path supports the example schemas");
    let mut out = Vec::new();
    codec.json_to_binary(index, json, parse, &mut out).map_err(|e| e.message)?;
    DynamicMessage::decode(root.clone(), out.as_slice()).map_err(|e| format!("fast path wrote invalid bytes: {e}"))
}

/// `m` with every DoubleValue / FloatValue of -0.0 made 0.0. A known reference quirk: prost-reflect
/// parses a wrapper's JSON `-0.0` as 0.0 (it goes through prost's wrapper type, which skips a
/// zero by value, and -0.0 == 0.0), where protobuf keeps -0.0 (a float field is written unless
/// its bits are zero), as the fast path does.
fn wrapper_zero_unsigned(mut m: DynamicMessage) -> DynamicMessage {
    fn walk(value: &mut Value) {
        match value {
            Value::Message(m) => unsign(m),
            Value::List(items) => items.iter_mut().for_each(walk),
            Value::Map(entries) => entries.values_mut().for_each(walk),
            _ => {}
        }
    }
    fn unsign(m: &mut DynamicMessage) {
        if matches!(m.descriptor().full_name(), "google.protobuf.DoubleValue" | "google.protobuf.FloatValue") {
            // (fields_mut skips a -0.0: prost-reflect counts it as the default)
            let zero = match m.get_field_by_name("value").as_deref() {
                Some(Value::F64(v)) if *v == 0.0 => Some(Value::F64(0.0)),
                Some(Value::F32(v)) if *v == 0.0 => Some(Value::F32(0.0)),
                _ => None,
            };
            if let Some(zero) = zero {
                m.set_field_by_name("value", zero);
            }
            return;
        }
        for (_, value) in m.fields_mut() {
            walk(value);
        }
    }
    unsign(&mut m);
    m
}

/// One random mutation of a JSON text: delete, duplicate or replace a byte, or insert a
/// syntax-relevant one.
fn mutate(rng: &mut Rng, json: &[u8]) -> Vec<u8> {
    let mut m = json.to_vec();
    if m.is_empty() {
        return m;
    }
    let at = (rng.next_u64() % m.len() as u64) as usize;
    const BYTES: &[u8] = b"{}[],:\"\\0123456789-+.eEtrufalsn \x00\xff";
    let b = BYTES[(rng.next_u64() % BYTES.len() as u64) as usize];
    match rng.next_u64() % 4 {
        0 => {
            m.remove(at);
        }
        1 => m.insert(at, m[at]),
        2 => m[at] = b,
        _ => m.insert(at, b),
    }
    m
}

/// The fast path prints and parses what the reflection path does: both printed forms decode to
/// the original message, and on JSON that is valid or mutated into something else, both paths
/// accept the same inputs and produce the same messages.
#[test]
fn fast_and_reflection_paths_agree() {
    let pool = pool();
    let codec = Codec::from_pool(&pool).unwrap();
    let roots = root_types(&pool);
    let mut gen = Gen {
        rng: Rng(SEED ^ 0xfa57),
        any_types: roots.clone(),
        fields_set: BTreeSet::new(),
        seen: BTreeMap::new(),
        known_bugs: false,
    };
    let mut failures = Vec::new();
    let mut mutated_accepted = 0usize;
    for case in 0..CASES {
        let root = gen.rng.pick(&roots).clone();
        let root = match case % 8 {
            0 => pool.get_message_by_name("test.v1.Everything").unwrap(),
            4 => pool.get_message_by_name("bench.v1.Order").unwrap(),
            _ => root,
        };
        let bytes = gen.message(&root, 0).encode_to_vec();
        // The reference: what the bytes decode to (encoding drops e.g. an implicit -0.0).
        let message = DynamicMessage::decode(root.clone(), bytes.as_slice()).unwrap();
        let print = print_options(case % 16);
        let parse = parse_options(case / 16 % 4);
        let index = codec.index(&root).expect("supported");
        let mut slow_json = Vec::new();
        binary_to_json(&root, &bytes, &print, &mut slow_json).unwrap();
        let mut fast_json = Vec::new();
        if let Err(e) = codec.binary_to_json(index, &bytes, &print, &mut fast_json) {
            failures.push(format!("case {case} ({}): fast binary_to_json failed: {e}", root.full_name()));
            continue;
        }
        let fast_text = String::from_utf8_lossy(&fast_json).to_string();
        // What the fast path printed means the original message (read by the reference parser).
        match slow_parse(&root, &fast_json, &parse) {
            Ok(m) => {
                if let Some(d) = diff_message(&message, &m, root.name()) {
                    failures.push(format!(
                        "case {case} ({}): fast JSON changed the message: {d}\n  {fast_text}",
                        root.full_name()
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "case {case} ({}): fast JSON rejected by the reference: {e}\n  {fast_text}",
                root.full_name()
            )),
        }
        // Both printers agree as JSON values.
        let a: serde_json::Value = serde_json::from_slice(&slow_json).unwrap();
        match serde_json::from_slice::<serde_json::Value>(&fast_json) {
            Ok(b) if json_equal(&a, &b) => {}
            Ok(_) => failures.push(format!(
                "case {case} ({}, {print:?}): printers differ:\n  slow {}\n  fast {fast_text}",
                root.full_name(),
                String::from_utf8_lossy(&slow_json)
            )),
            Err(e) => failures.push(format!("case {case}: fast JSON is not JSON: {e}\n  {fast_text}")),
        }
        // Parsing: the fast parser reads both printed forms back to the original message.
        for json in [&slow_json, &fast_json] {
            match fast_parse(&codec, &root, json, &parse) {
                Ok(m) => {
                    if let Some(d) = diff_message(&message, &m, root.name()) {
                        failures.push(format!(
                            "case {case} ({}): fast parse changed the message: {d}\n  {}",
                            root.full_name(),
                            String::from_utf8_lossy(json)
                        ));
                    }
                }
                Err(e) => failures.push(format!(
                    "case {case} ({}, {parse:?}): fast parse failed: {e}\n  {}",
                    root.full_name(),
                    String::from_utf8_lossy(json)
                )),
            }
        }
        // Mutated JSON: both accept or both reject, and agree on the result.
        for _ in 0..3 {
            let bad = mutate(&mut gen.rng, &slow_json);
            let slow = slow_parse(&root, &bad, &parse);
            let fast = fast_parse(&codec, &root, &bad, &parse);
            match (&slow, &fast) {
                (Ok(a), Ok(b)) => {
                    mutated_accepted += 1;
                    let (a, b) = (&wrapper_zero_unsigned(a.clone()), &wrapper_zero_unsigned(b.clone()));
                    if let Some(d) = diff_message(a, b, root.name()) {
                        failures.push(format!(
                            "case {case} ({}): mutated JSON parsed differently: {d}\n  {}",
                            root.full_name(),
                            String::from_utf8_lossy(&bad)
                        ));
                    }
                }
                (Err(_), Err(_)) => {}
                _ => failures.push(format!(
                    "case {case} ({}, {parse:?}): one path accepts mutated JSON: slow {:?} fast {:?}\n  {}",
                    root.full_name(),
                    slow.as_ref().map(|_| "ok"),
                    fast.as_ref().map(|_| "ok"),
                    String::from_utf8_lossy(&bad)
                )),
            }
        }
    }
    eprintln!("{CASES} cases; {mutated_accepted} mutated inputs accepted by both paths");
    assert!(mutated_accepted > 100, "mutations too destructive to compare results");
    if !failures.is_empty() {
        let show = std::env::var("ROUNDTRIP_SHOW").ok().and_then(|n| n.parse().ok()).unwrap_or(8);
        panic!(
            "{} disagreements; the first ones:\n{}",
            failures.len(),
            failures.iter().take(show).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

/// JSON equality where numbers compare by value (1 and 1.0 are equal).
fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The fast path (what the filter runs) does not have the reflection path's two float bugs.
#[test]
fn fast_path_round_trips_float_extremes_and_non_finite_wrappers() {
    let pool = pool();
    let codec = Codec::from_pool(&pool).unwrap();
    let fast_round_trip = |desc: &MessageDescriptor, m: &DynamicMessage| -> (String, DynamicMessage) {
        let index = codec.index(desc).unwrap();
        let mut json = Vec::new();
        codec.binary_to_json(index, &m.encode_to_vec(), &PrintOptions::default(), &mut json).unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        let back = fast_parse(&codec, desc, &json, &ParseOptions::default()).unwrap_or_else(|e| panic!("{text}: {e}"));
        (text, back)
    };
    for (type_name, field) in [("test.v1.Scalars", "f_float"), ("google.protobuf.FloatValue", "value")] {
        let desc = pool.get_message_by_name(type_name).unwrap();
        for v in [f32::MAX, f32::MIN, f32::MIN_POSITIVE, -f32::MIN_POSITIVE] {
            let mut m = DynamicMessage::new(desc.clone());
            m.set_field_by_name(field, Value::F32(v));
            let (text, back) = fast_round_trip(&desc, &m);
            assert_eq!(diff_message(&m, &back, type_name), None, "{text}");
        }
    }
    let everything = pool.get_message_by_name("test.v1.Everything").unwrap();
    for (field, wrapper, value, printed) in [
        ("w_double", "google.protobuf.DoubleValue", Value::F64(f64::NAN), r#""NaN""#),
        ("w_double", "google.protobuf.DoubleValue", Value::F64(f64::NEG_INFINITY), r#""-Infinity""#),
        ("w_float", "google.protobuf.FloatValue", Value::F32(f32::INFINITY), r#""Infinity""#),
    ] {
        let wrapper_desc = pool.get_message_by_name(wrapper).unwrap();
        let mut w = DynamicMessage::new(wrapper_desc.clone());
        w.set_field_by_name("value", value);
        let (top, back) = fast_round_trip(&wrapper_desc, &w);
        assert_eq!(top, printed);
        assert_eq!(diff_message(&w, &back, wrapper), None);
        let mut m = DynamicMessage::new(everything.clone());
        m.set_field_by_name(field, Value::Message(w));
        let (text, back) = fast_round_trip(&everything, &m);
        assert_eq!(diff_message(&m, &back, "Everything"), None, "{text}");
    }
}
