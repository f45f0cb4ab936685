//! Requests with many query parameters and large bodies → `Transcoder::route` and, for a
//! `Transcode` plan, `Transcoder::request_message`: the cost of binding URL values next to a
//! body. The parameters are built from the real field paths of each route's input type (proto
//! and JSON names, nested `a.b.c` paths through singular messages, repeated fields, map entries
//! `m[key]`, well-known types, a few unknown names), each repeated up to 1024 times, up to 1100
//! in all (the default `max_query_parameters` is 1000); the body is the rest of the input as
//! is, or generated: a JSON value of the body's type whose repeated field, map, Struct/Value
//! list or string holds a unit repeated up to 1 MiB (the default Envoy buffer).
//!
//! Resource findings are libFuzzer's: `-timeout` and `-report_slow_units` for time (a cost
//! quadratic in parameters × body shows as a slow unit or a timeout), `-rss_limit_mb` and
//! `-malloc_limit_mb` for memory (scripts/fuzz.sh). Checks:
//! - the request message is at most linear in the request: `len ≤ 6·body + 4·url + 1024`.
//!   Body: the largest JSON → binary growth is a google.protobuf.Value list of numbers, `0,`
//!   (2 bytes) → a ListValue entry (tag, length, number_value tag, 8-byte double: 11 bytes),
//!   5.5×; every other form grows less (`-1,` in a packed int64: 10/3; nesting adds at most 8
//!   bytes per `[]`). URL: a bound value is its field's tag and value, from at least
//!   `name=value&`; the largest growth is a FieldMask (`aB` → `a_b`), under 2×; each parent
//!   message is written once per group of paths;
//! - every message up to 64 KiB decodes as the method's input type (prost-reflect; larger
//!   ones are not decoded, so that the harness's own cost does not hide the filter's).
//!
//! Input: `[route, flags, groups, (param, value, repeat_hi, repeat_lo) × groups, body…]`.
//! flags: bit 0 transcoder (0 or 2 of the fixtures: lenient or strict), bit 1 JSON names, bit 2
//! no content-type, bits 4-5 body: 0 and 3 the rest of the input, 1 and 2 generated from
//! `[field, unit, exponent, mantissa, (raw unit: len, bytes…)]` (`mantissa << exponent % 16`
//! units). A parameter value `0xff` is raw: `[len, bytes…]`, percent-encoded. `{i}` in a
//! value, key or unit is the repetition's index (distinct map keys, strings).
//!
//! Seeds (fuzz/corpus/query_binding/): 999 × `id=v` with a generated 1 MiB `{"tags":["",…]}`;
//! 500 distinct `item.labels[k{i}]` + tags + numbers with a 1 MiB map body; a small raw body
//! setting some of the bound fields; 999 × `tags=v{i}` with a 185 KiB raw `{"items":[{},…]}`.
//! Before URL bindings were matched against the body in one pass (each bound value rescanned
//! the body's encoding), the first took 14.5 s natively, the second 6 s, the fourth 2.6 s; from
//! an empty corpus this target found a 3-s slow unit and a timeout (42 s when run alone) in
//! under two minutes.
//!
//! JSON2GRPC_FUZZ_DUMP=<file> writes the request (`METHOD URL`, an empty line, the body) of
//! each input run to <file>, to replay it elsewhere.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::sync::OnceLock;

use json2grpc::core::request::Decision;
use json2grpc::core::route::router::BodyRule;
use json2grpc::core::schema::Kind;
use json2grpc_fuzz::{message, transcoder};
use libfuzzer_sys::fuzz_target;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind as PKind, MessageDescriptor};

/// Requests (method, path without query) of the fixture, one per binding shape that takes URL
/// values: `body: "*"`, no body, `body: "field"` (message, nested message, repeated, HttpBody).
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/things"),
    ("GET", "/v1/query"),
    ("PATCH", "/v1/things/t1"),
    ("PUT", "/v1/things/t1/nested"),
    ("POST", "/v1/things/t1:reserve"),
    ("POST", "/v1/tags"),
    ("GET", "/v1/things/t1"),
    ("POST", "/v1/upload/u1"),
    ("POST", "/v1/raw"),
    ("GET", "/v1/inventory"),
    ("POST", "/v1/inventory/sku-1:reserve"),
    ("POST", "/v1/orders"),
    ("PATCH", "/v1/orders/o-1"),
    ("POST", "/v1/things/t1"),
    ("POST", "/v1/inventory:watch"),
];

/// The transcoders of the fixture used (indexes of `json2grpc_fuzz::CONFIGS`): 0 ignores
/// nothing and passes unknown parameters through; 2 rejects them. Both allow 1000 parameters.
const CONFIGS: [usize; 2] = [0, 2];

const MAX_PARAMS: usize = 1100;
const MAX_BODY: usize = 1 << 20;
/// Messages up to this size are decoded by the reference.
const MAX_DECODED: usize = 64 << 10;

/// A query parameter name (proto and JSON spelling) and the values it is given.
struct Param {
    proto: String,
    json: String,
    values: Vec<&'static str>,
}

/// What the body of a route is.
enum Shape {
    /// A JSON object of this type (`body: "*"`, a message field, or the message a body-less
    /// binding still reads).
    Object(MessageDescriptor),
    /// A JSON array (a repeated `body` field).
    Array,
    /// Raw bytes (HttpBody).
    Raw,
    /// One JSON scalar (a scalar `body` field).
    Scalar,
}

struct Route {
    method: &'static str,
    path: &'static str,
    params: Vec<Param>,
    body: Shape,
}

fn routes() -> &'static [Route] {
    static ROUTES_: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES_.get_or_init(|| {
        let t = transcoder(0);
        ROUTES
            .iter()
            .map(|&(method, path)| {
                let (binding, _) =
                    t.router.lookup(method, path).unwrap_or_else(|| panic!("fixture route {method} {path}"));
                let input = message(t.schema.message_name(binding.method.input));
                let mut params = Vec::new();
                collect_params(&input, "", "", 0, &mut params);
                for name in UNKNOWN_NAMES {
                    params.push(Param { proto: name.to_string(), json: name.to_string(), values: vec!["x", "{i}"] });
                }
                let body = match &binding.body {
                    _ if binding.body_is_http_body => Shape::Raw,
                    BodyRule::Whole | BodyRule::None => Shape::Object(input),
                    BodyRule::Field(path) => {
                        let leaf = path.leaf().unwrap();
                        match leaf.kind() {
                            _ if leaf.is_list() => Shape::Array,
                            Kind::Message(m) => Shape::Object(message(t.schema.message_name(m))),
                            _ => Shape::Scalar,
                        }
                    }
                };
                Route { method, path, params, body }
            })
            .collect()
    })
}

/// Names that bind nothing: unknown, ignored in config 1, a map key on a non-map, a path
/// through a scalar, percent-encoded spellings of real names.
const UNKNOWN_NAMES: &[&str] = &["nope", "api_key", "id[k]", "id.x", "%69d", "tags%5Bk%5D", "a.b.c.d.e"];

const BINDABLE: &[&str] = &[
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Value",
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

/// Every query parameter of `desc` (fields through singular messages, 4 levels at most).
fn collect_params(desc: &MessageDescriptor, proto: &str, json: &str, depth: usize, out: &mut Vec<Param>) {
    for field in desc.fields() {
        let (p, j) = (format!("{proto}{}", field.name()), format!("{json}{}", field.json_name()));
        if field.is_map() {
            let PKind::Message(entry) = field.kind() else { continue };
            let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            for k in key_texts(&key) {
                out.push(Param { proto: format!("{p}[{k}]"), json: format!("{j}[{k}]"), values: values(&value) });
            }
            continue;
        }
        match field.kind() {
            PKind::Message(m) if !BINDABLE.contains(&m.full_name()) && !field.is_list() && depth < 3 => {
                // The message itself cannot be bound (not a well-known type with a text form).
                out.push(Param { proto: p.clone(), json: j.clone(), values: vec!["x"] });
                collect_params(&m, &format!("{p}."), &format!("{j}."), depth + 1, out);
            }
            _ => out.push(Param { proto: p, json: j, values: values(&field) }),
        }
    }
}

fn key_texts(key: &FieldDescriptor) -> Vec<&'static str> {
    match key.kind() {
        PKind::String => vec!["k", "k{i}", "", "%5D"],
        PKind::Bool => vec!["true", "false", "1"],
        _ => vec!["{i}", "-1", "x"],
    }
}

/// URL-encoded texts for a field (or a map's value field) of this kind.
fn values(field: &FieldDescriptor) -> Vec<&'static str> {
    match field.kind() {
        PKind::Double | PKind::Float => vec!["0", "-0", "1.5", "{i}", "NaN", "-Infinity", "1e308", "3.5e38", "x"],
        PKind::Int32 | PKind::Sint32 | PKind::Sfixed32 | PKind::Int64 | PKind::Sint64 | PKind::Sfixed64 => {
            vec!["0", "-1", "{i}", "2147483647", "-9223372036854775808", "1.5", ""]
        }
        PKind::Uint32 | PKind::Fixed32 | PKind::Uint64 | PKind::Fixed64 => {
            vec!["0", "{i}", "4294967295", "18446744073709551615", "-1"]
        }
        PKind::Bool => vec!["true", "false", "1"],
        PKind::String => vec!["", "v", "v{i}", "%E2%82%AC", "a+b%20c", "%FF", "%2"],
        PKind::Bytes => vec!["", "AAAA", "_-8", "%2B%2F%3D%3D", "!"],
        PKind::Enum(_) => vec!["RED", "1", "-1", "red", "IN_STOCK", "PENDING", "NOPE", "{i}"],
        PKind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => {
                vec!["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2024-02-30T00:00:00Z"]
            }
            "google.protobuf.Duration" => vec!["1s", "-0.000000001s", "315576000001s", "{i}s"],
            "google.protobuf.FieldMask" => vec!["aB,cD.eF", "a_b", "", "aBBBBBBBBBBBBBBBBBBB,{i}"],
            "google.protobuf.Value" => vec!["x", "1", "{i}"],
            "google.protobuf.BoolValue" => vec!["true", "false"],
            "google.protobuf.StringValue" | "google.protobuf.BytesValue" => vec!["", "AAAA", "v{i}"],
            name if name.starts_with("google.protobuf.") && name.ends_with("Value") => vec!["0", "-1", "{i}", "1.5"],
            _ => vec!["x"],
        },
    }
}

/// Units of a generated body: JSON values of many kinds.
const UNITS: &[&str] = &[
    "\"\"",
    "0",
    "-1",
    "{}",
    "[]",
    "null",
    "true",
    "\"x{i}\"",
    "{i}",
    "\"RED\"",
    "\"AAAA\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"1s\"",
    "1.5e300",
    "\"-1\"",
    "{\"name\":\"n{i}\",\"value\":{i}}",
    "[0,0]",
    "{\"sku\":\"s{i}\",\"quantity\":1}",
];

/// Units of a generated string.
const STRING_UNITS: &[&str] = &["a", "{i}", "\\u00e9", "AAAA", "\\\"", "\\n", "\u{e9}"];

/// A byte reader that yields zeros once the input is used up.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }
}

fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
}

fn with_index(text: &str, i: usize, out: &mut Vec<u8>) {
    match text.split_once("{i}") {
        Some((a, b)) => {
            out.extend_from_slice(a.as_bytes());
            write!(Cursor(out), "{i}").unwrap();
            with_index(b, i, out);
        }
        None => out.extend_from_slice(text.as_bytes()),
    }
}

/// `fmt::Write` into a byte vector.
struct Cursor<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn dump_path() -> Option<&'static std::path::Path> {
    static DUMP: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    DUMP.get_or_init(|| std::env::var_os("JSON2GRPC_FUZZ_DUMP").map(Into::into)).as_deref()
}

fuzz_target!(init: json2grpc_fuzz::init(), |data: &[u8]| {
    let mut input = Input(data);
    let routes = routes();
    let route = &routes[usize::from(input.byte()) % routes.len()];
    let flags = input.byte();
    let t = transcoder(CONFIGS[usize::from(flags & 1)]);
    let json_names = flags & 2 != 0;
    let ct = if flags & 4 == 0 { Some("application/json") } else { None };

    let mut url = String::from(route.path);
    let mut count = 0;
    for _ in 0..input.byte() % 17 {
        let param = &route.params[usize::from(input.byte()) % route.params.len()];
        let value = input.byte();
        let raw = if value == 0xff {
            let n = usize::from(input.byte());
            let mut text = String::new();
            percent_encode(input.bytes(n), &mut text);
            Some(text)
        } else {
            None
        };
        let value = raw.as_deref().unwrap_or(param.values[usize::from(value) % param.values.len()]);
        let repeat = (usize::from(input.byte()) << 8 | usize::from(input.byte())) % 1024 + 1;
        let name = if json_names { &param.json } else { &param.proto };
        for _ in 0..repeat.min(MAX_PARAMS - count) {
            url.push(if count == 0 { '?' } else { '&' });
            let mut pair = Vec::new();
            with_index(name, count, &mut pair);
            pair.push(b'=');
            with_index(value, count, &mut pair);
            url.push_str(std::str::from_utf8(&pair).unwrap());
            count += 1;
        }
    }

    let body = match flags >> 4 & 3 {
        1 | 2 => generate_body(&route.body, &mut input),
        _ => input.0.to_vec(),
    };
    if let Some(path) = dump_path() {
        let mut dump = format!("{} {url}\n\n", route.method).into_bytes();
        dump.extend_from_slice(&body);
        std::fs::write(path, dump).expect("JSON2GRPC_FUZZ_DUMP");
    }

    let Decision::Transcode(plan) = t.route(route.method, &url, ct) else { return };
    let Ok(bytes) = t.request_message(&plan, &body, ct) else { return };
    let bound = 6 * body.len() + 4 * url.len() + 1024;
    assert!(
        bytes.len() <= bound,
        "{} {}: a request message of {} bytes from a {}-byte URL and a {}-byte body (bound {bound})",
        route.method,
        route.path,
        bytes.len(),
        url.len(),
        body.len()
    );
    if bytes.len() <= MAX_DECODED {
        let input = message(t.schema.message_name(plan.method().input));
        if let Err(e) = DynamicMessage::decode(input.clone(), bytes.as_slice()) {
            panic!("request message does not decode as {}: {e}", input.full_name());
        }
    }
});

/// A body of `shape` whose bulk is one unit repeated, up to [`MAX_BODY`] bytes.
fn generate_body(shape: &Shape, input: &mut Input) -> Vec<u8> {
    let field = input.byte();
    let unit_choice = usize::from(input.byte());
    // Sizes spread over every scale: `mantissa << exponent`, up to 8 M units (the body stops at
    // MAX_BODY).
    let exponent = input.byte() % 16;
    let n = usize::from(input.byte()) << exponent;
    let raw_unit = |input: &mut Input| {
        let len = usize::from(input.byte());
        String::from_utf8_lossy(input.bytes(len)).into_owned()
    };
    // One choice past the dictionary: a unit from the input.
    let unit = match UNITS.get(unit_choice % (UNITS.len() + 1)) {
        Some(u) => u.to_string(),
        None => raw_unit(input),
    };
    let string_unit = match STRING_UNITS.get(unit_choice % (STRING_UNITS.len() + 1)) {
        Some(u) => u.to_string(),
        None => raw_unit(input),
    };
    let mut out = Vec::new();
    match shape {
        Shape::Raw => repeat(&unit, "", n, &mut out),
        Shape::Scalar => out.extend_from_slice(unit.as_bytes()),
        Shape::Array => {
            out.push(b'[');
            repeat(&unit, ",", n, &mut out);
            out.push(b']');
        }
        Shape::Object(desc) => object(desc, field, &unit, &string_unit, n, 0, &mut out),
    }
    out
}

/// `{"<field>": …}` with the unit repeated inside the field's value (a list, a map, a Struct,
/// a string) or, for a singular message field, inside a field of that message.
fn object(desc: &MessageDescriptor, field: u8, unit: &str, string_unit: &str, n: usize, depth: u32, out: &mut Vec<u8>) {
    let fields: Vec<FieldDescriptor> = desc.fields().collect();
    let Some(f) = fields.get(usize::from(field) % fields.len().max(1)) else {
        out.extend_from_slice(b"{}");
        return;
    };
    write!(Cursor(out), "{{\"{}\":", f.json_name()).unwrap();
    let wkt = match f.kind() {
        PKind::Message(m) => m.full_name().to_string(),
        _ => String::new(),
    };
    if f.is_map() || wkt == "google.protobuf.Struct" {
        let key = match f.kind() {
            PKind::Message(entry) if f.is_map() && entry.map_entry_key_field().kind() == PKind::Bool => "true",
            _ if f.is_map() => "{i}",
            _ => "k{i}",
        };
        out.push(b'{');
        repeat(&format!("\"{key}\":{unit}"), ",", n, out);
        out.push(b'}');
    } else if f.is_list() || wkt == "google.protobuf.Value" || wkt == "google.protobuf.ListValue" {
        out.push(b'[');
        repeat(unit, ",", n, out);
        out.push(b']');
    } else if matches!(f.kind(), PKind::String | PKind::Bytes) {
        out.push(b'"');
        repeat(string_unit, "", n, out);
        out.push(b'"');
    } else if let (PKind::Message(m), true) = (f.kind(), depth < 3 && !wkt.starts_with("google.")) {
        // One level down, the next field along.
        object(&m, field / 3, unit, string_unit, n, depth + 1, out);
    } else {
        out.extend_from_slice(unit.as_bytes());
    }
    out.push(b'}');
}

/// `unit` (with `{i}` numbered) `n` times, separated, while the body stays under MAX_BODY.
fn repeat(unit: &str, separator: &str, n: usize, out: &mut Vec<u8>) {
    if unit.is_empty() && separator.is_empty() {
        return;
    }
    for i in 0..n {
        if out.len() + unit.len() + separator.len() + 16 > MAX_BODY {
            break;
        }
        if i > 0 {
            out.extend_from_slice(separator.as_bytes());
        }
        with_index(unit, i, out);
    }
}
