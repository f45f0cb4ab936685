//! Plugin configurations → a transcoder, as the filter builds one (`Config::from_pieces`,
//! `Transcoder::for_serving`) and as the tool and tests do (`Config::from_json`,
//! `Transcoder::new`), which must agree (what Envoy hands the filter at configure time: a bad
//! config must be an error, never a panic that kills the VM). Byte 0 picks the mode:
//! 0. the rest is the config JSON as is;
//! 1. the rest, base64-encoded, is `proto_descriptor_bin` of an otherwise valid config;
//! 2. the fixture descriptor set (unit-test schema + flash-sale) with byte edits from the input
//!    (overwrite / insert / delete at chosen offsets), so decoding goes deep before failing;
//! 3. a structured descriptor set generated from the input: a file with arbitrary syntax and
//!    edition (editions files included), messages, maps, oneofs, enums, services and methods
//!    whose `google.api.http` rules are generated (templates from a grammar-ish dictionary,
//!    bodies, response bodies, additional bindings, custom patterns, raw malformed option
//!    bytes), with the well-known types and HttpBody available; plus random config options.
//!    When the transcoder builds, a few generated requests are routed and transcoded, and
//!    random response bytes are decoded with each matched binding; one time in four its OpenAPI
//!    document is made.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use json2grpc::core::config::Config;
use json2grpc::core::request::Decision;
use json2grpc::core::response::grpc_status::GrpcStatus;
use json2grpc::core::response::ResponseTranscoder;
use json2grpc::core::schema::descriptors::{CustomHttpPattern, HttpRule, Pattern, HTTP_RULE_EXTENSION};
use json2grpc::core::transcoder::Transcoder;
use json2grpc_fuzz::{base64, compile, descriptor_set, SERVICES};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(init: json2grpc_fuzz::init(), |data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    match mode % 4 {
        0 => {
            let _ = configure(rest);
        }
        1 => {
            if !known_crash(rest) {
                let _ = configure(config_with(rest, &SERVICES, "").as_bytes());
            }
        }
        2 => {
            let set = mutate(descriptor_set(), rest);
            let config = config_with(&set, &SERVICES, "");
            if let Some(path) = std::env::var_os("JSON2GRPC_FUZZ_DUMP") {
                std::fs::write(path, &config).expect("JSON2GRPC_FUZZ_DUMP");
            }
            if !known_crash(&set) {
                let _ = configure(config.as_bytes());
            }
        }
        _ => {
            let mut u = Unstructured::new(rest);
            let _ = structured(&mut u);
        }
    }
});

/// Both ways of building a transcoder from `text`: the filter's (read in pieces, the descriptor
/// set decoded as it is read, or in the text's memory when read whole; comments and default
/// JSON names stripped, the set freed as it is linked, the schema's services freed as the
/// router reads them) must read the same configuration as the copying one and accept or refuse it alike. The
/// copying one's transcoder is returned (it keeps the descriptor bytes, for the OpenAPI document).
fn configure(text: &[u8]) -> Option<Transcoder> {
    let copied = Config::from_json(text);
    // The filter's reading: in pieces of a size from the text's first byte.
    let piece = usize::from(text.first().copied().unwrap_or(0) % 16) + 1;
    let mut whole = 0;
    let in_place = Config::from_pieces(text.len(), |start, len| {
        whole += usize::from(len == usize::MAX);
        // The host gives what is asked (clamped at the end); pieces shorter than asked here.
        let len = if len == usize::MAX { len } else { len.min(piece) };
        let len = len.min(text.len().saturating_sub(start));
        text.get(start..start + len).map(<[u8]>::to_vec)
    });
    assert!(whole <= 1, "read whole {whole} times");
    assert_eq!(format!("{copied:?}"), format!("{in_place:?}"), "from_pieces reads another configuration");
    let (Ok(copied), Ok(in_place)) = (copied, in_place) else { return None };
    let built = Transcoder::new(copied);
    let serving = Transcoder::for_serving(in_place);
    let error = |t: &Result<Transcoder, json2grpc::core::config::ConfigError>| t.as_ref().err().map(|e| e.to_string());
    // The same answer; the same error text unless the set fails with the built-in google
    // types: the copying build then tries it without them (and may fail elsewhere), which the
    // serving one cannot once the set is partly freed.
    assert_eq!(
        built.is_ok(),
        serving.is_ok(),
        "for_serving accepts or refuses otherwise: {:?}",
        (error(&built), error(&serving))
    );
    if let (Ok(b), Ok(s)) = (&built, &serving) {
        assert_eq!(b.router.warnings, s.router.warnings);
        // A serving VM keeps a template's text only for the OpenAPI document.
        let templates = s.config.openapi.path.is_some();
        let bindings = |t: &Transcoder| {
            t.router
                .bindings
                .iter()
                .map(|b| format!("{} {} {}", b.http_method, if templates { &*b.template } else { "" }, b.method.path()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bindings(b), bindings(s));
        // The same types and fields, however the serving build read the set (comments and
        // default JSON names stripped, linked as it is freed).
        let fields = |t: &Transcoder| {
            t.schema.messages.iter().map(|m| format!("{} {:?}", m.full_name, m.fields)).collect::<Vec<_>>()
        };
        assert_eq!(fields(b), fields(s), "the serving build links another schema");
        assert!(templates || s.router.bindings.iter().all(|b| b.template.is_empty()));
    }
    built.ok()
}

/// Guard for known configure-time panics, so that the fuzzer can go on past one while it is
/// being fixed (JSON2GRPC_FUZZ_NO_GUARDS=1 disables it). Empty now: the empty-syntax, map-entry
/// and octal-default panics it used to skip are fixed (filter/tests/fuzz_regressions.rs).
fn known_crash(_set: &[u8]) -> bool {
    false
}

fn config_with(set: &[u8], services: &[&str], extra: &str) -> String {
    let services = services.iter().map(|s| serde_json::to_string(s).unwrap()).collect::<Vec<_>>().join(",");
    let sep = if extra.is_empty() { "" } else { "," };
    format!(r#"{{"proto_descriptor_bin":"{}","services":[{services}]{sep}{extra}}}"#, base64(set))
}

/// Up to 8 edits `[offset_hi, offset_lo, op, byte]`.
fn mutate(set: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut set = set.to_vec();
    for edit in edits.chunks_exact(4).take(8) {
        if set.is_empty() {
            break;
        }
        // Spread 16-bit offsets over the whole set.
        let at = (usize::from(edit[0]) << 8 | usize::from(edit[1])) * set.len() / 65536;
        match edit[2] % 4 {
            0 | 1 => set[at] = edit[3],
            2 => set.insert(at, edit[3]),
            _ => {
                set.remove(at);
            }
        }
    }
    set
}

// ---- structured descriptor sets -------------------------------------------------------------

/// The subset of descriptor.proto written here. Options are raw bytes so that malformed ones
/// can be produced, and `google.api.http` needs no extension registry.
#[derive(Clone, PartialEq, Message)]
struct FileProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    package: Option<String>,
    #[prost(string, repeated, tag = "3")]
    dependency: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    message_type: Vec<MessageProto>,
    #[prost(message, repeated, tag = "5")]
    enum_type: Vec<EnumProto>,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceProto>,
    #[prost(string, optional, tag = "12")]
    syntax: Option<String>,
    #[prost(int32, optional, tag = "14")]
    edition: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct MessageProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    field: Vec<FieldProto>,
    #[prost(message, repeated, tag = "3")]
    nested_type: Vec<MessageProto>,
    #[prost(bytes, optional, tag = "7")]
    options: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "8")]
    oneof_decl: Vec<OneofProto>,
}

#[derive(Clone, PartialEq, Message)]
struct FieldProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(int32, optional, tag = "3")]
    number: Option<i32>,
    #[prost(int32, optional, tag = "4")]
    label: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    r#type: Option<i32>,
    #[prost(string, optional, tag = "6")]
    type_name: Option<String>,
    #[prost(string, optional, tag = "7")]
    default_value: Option<String>,
    #[prost(int32, optional, tag = "9")]
    oneof_index: Option<i32>,
    #[prost(string, optional, tag = "10")]
    json_name: Option<String>,
    #[prost(bool, optional, tag = "17")]
    proto3_optional: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct OneofProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct EnumProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    value: Vec<EnumValueProto>,
}

#[derive(Clone, PartialEq, Message)]
struct EnumValueProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(int32, optional, tag = "2")]
    number: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    method: Vec<MethodProto>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    input_type: Option<String>,
    #[prost(string, optional, tag = "3")]
    output_type: Option<String>,
    #[prost(bytes, optional, tag = "4")]
    options: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "5")]
    client_streaming: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    server_streaming: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct FileSet {
    #[prost(message, repeated, tag = "1")]
    file: Vec<FileProto>,
}

/// Well-known types and HttpBody, compiled once; generated files may import them.
fn base_set() -> &'static [u8] {
    static SET: OnceLock<Vec<u8>> = OnceLock::new();
    SET.get_or_init(|| {
        let proto = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
        compile(
            &[proto],
            &[
                "google/api/httpbody.proto",
                "google/protobuf/timestamp.proto",
                "google/protobuf/duration.proto",
                "google/protobuf/struct.proto",
                "google/protobuf/field_mask.proto",
                "google/protobuf/wrappers.proto",
                "google/protobuf/empty.proto",
                "google/protobuf/any.proto",
            ],
        )
    })
}

const BASE_FILES: &[&str] = &[
    "google/api/httpbody.proto",
    "google/protobuf/timestamp.proto",
    "google/protobuf/duration.proto",
    "google/protobuf/struct.proto",
    "google/protobuf/field_mask.proto",
    "google/protobuf/wrappers.proto",
    "google/protobuf/empty.proto",
    "google/protobuf/any.proto",
];

const PACKAGES: &[&str] = &["p", "a.b", "", "v1", "google.protobuf"];
const FIELD_NAMES: &[&str] = &["id", "name", "f2", "nested", "items", "body", "tags", "m", "a_b", "x"];
const WELL_KNOWN: &[&str] = &[
    ".google.protobuf.Timestamp",
    ".google.protobuf.Duration",
    ".google.protobuf.Struct",
    ".google.protobuf.Value",
    ".google.protobuf.FieldMask",
    ".google.protobuf.Int64Value",
    ".google.protobuf.StringValue",
    ".google.protobuf.Empty",
    ".google.protobuf.Any",
    ".google.api.HttpBody",
    ".nowhere.Missing",
];
const LITERALS: &[&str] = &["v1", "things", "a", "b:c", "", "x.y", "%2F", "-", "~"];
const VERBS: &[&str] = &["get", "do", "a:b", "", "x"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", "*", ""];

fn pick<'a>(u: &mut Unstructured, items: &[&'a str]) -> Result<&'a str> {
    Ok(*u.choose(items)?)
}

/// A string: usually from `items`, sometimes arbitrary.
fn text(u: &mut Unstructured, items: &[&str]) -> Result<String> {
    if u.ratio(1, 8)? {
        Ok(u.arbitrary::<String>()?)
    } else {
        Ok(pick(u, items)?.to_string())
    }
}

/// A field path: one to three field names.
fn field_path(u: &mut Unstructured) -> Result<String> {
    let n = u.int_in_range(1..=3)?;
    let parts: Result<Vec<String>> = (0..n).map(|_| text(u, FIELD_NAMES)).collect();
    Ok(parts?.join("."))
}

/// A path template from segments, variables and a verb; sometimes arbitrary text.
fn template(u: &mut Unstructured) -> Result<String> {
    if u.ratio(1, 10)? {
        return u.arbitrary::<String>();
    }
    let mut out = String::new();
    let n = u.int_in_range(0..=5)?;
    for _ in 0..n {
        out.push('/');
        match u.int_in_range(0..=5)? {
            0 | 1 => out.push_str(&text(u, LITERALS)?),
            2 => out.push('*'),
            3 => out.push_str("**"),
            _ => {
                out.push('{');
                out.push_str(&field_path(u)?);
                if u.ratio(1, 3)? {
                    out.push('=');
                    let m = u.int_in_range(1..=3)?;
                    for i in 0..m {
                        if i > 0 {
                            out.push('/');
                        }
                        out.push_str(pick(u, &["*", "**", "v1", "a"])?);
                    }
                }
                out.push('}');
            }
        }
    }
    if n == 0 {
        out.push('/');
    }
    if u.ratio(1, 5)? {
        out.push(':');
        out.push_str(&text(u, VERBS)?);
    }
    Ok(out)
}

fn http_rule(u: &mut Unstructured, depth: u32) -> Result<HttpRule> {
    let t = template(u)?;
    let pattern = match u.int_in_range(0..=6)? {
        0 => Some(Pattern::Get(t)),
        1 => Some(Pattern::Put(t)),
        2 => Some(Pattern::Post(t)),
        3 => Some(Pattern::Delete(t)),
        4 => Some(Pattern::Patch(t)),
        5 => Some(Pattern::Custom(CustomHttpPattern { kind: text(u, METHODS)?, path: t })),
        _ => None,
    };
    let body = match u.int_in_range(0..=3)? {
        0 => String::new(),
        1 => "*".to_string(),
        _ => field_path(u)?,
    };
    let response_body = if u.ratio(1, 4)? { field_path(u)? } else { String::new() };
    let mut additional_bindings = Vec::new();
    if depth < 2 {
        for _ in 0..u.int_in_range(0..=2)? {
            additional_bindings.push(http_rule(u, depth + 1)?);
        }
    }
    Ok(HttpRule { selector: String::new(), pattern, body, response_body, additional_bindings })
}

fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// MethodOptions bytes: zero to two `google.api.http` occurrences (they merge), sometimes
/// followed by arbitrary (likely malformed) bytes.
fn method_options(u: &mut Unstructured) -> Result<Option<Vec<u8>>> {
    if u.ratio(1, 6)? {
        return Ok(None);
    }
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(1..=2)? {
        let rule = http_rule(u, 0)?.encode_to_vec();
        write_varint(u64::from(HTTP_RULE_EXTENSION) << 3 | 2, &mut out);
        write_varint(rule.len() as u64, &mut out);
        out.extend_from_slice(&rule);
    }
    if u.ratio(1, 8)? {
        let n = u.int_in_range(0..=8)?;
        out.extend_from_slice(u.bytes(n)?);
    }
    Ok(Some(out))
}

/// A type reference: a generated message or enum, a well-known type, or a missing one.
fn type_ref(u: &mut Unstructured, prefix: &str, messages: usize, enums: usize) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 if messages > 0 => format!("{prefix}M{}", u.int_in_range(0..=messages - 1)?),
        2 if enums > 0 => format!("{prefix}E{}", u.int_in_range(0..=enums - 1)?),
        _ => pick(u, WELL_KNOWN)?.to_string(),
    })
}

fn message(
    u: &mut Unstructured,
    index: usize,
    prefix: &str,
    messages: usize,
    enums: usize,
    proto3: bool,
) -> Result<MessageProto> {
    let name = format!("M{index}");
    let mut msg = MessageProto { name: Some(name.clone()), ..Default::default() };
    let oneofs = u.int_in_range(0..=1)?;
    for i in 0..oneofs {
        msg.oneof_decl.push(OneofProto { name: Some(format!("o{i}")) });
    }
    let n = u.int_in_range(0..=6)?;
    for i in 0..n {
        let field_name =
            if u.ratio(7, 8)? { FIELD_NAMES[i % FIELD_NAMES.len()].to_string() } else { text(u, FIELD_NAMES)? };
        let mut f = FieldProto {
            name: Some(field_name.clone()),
            number: Some(if u.ratio(7, 8)? { i as i32 + 1 } else { u.arbitrary()? }),
            label: Some(*u.choose(&[1, 1, 1, 3, 2, 0, 4])?),
            ..Default::default()
        };
        // TYPE_DOUBLE=1 … TYPE_SINT64=18; 10 is GROUP, 11 MESSAGE, 14 ENUM.
        let ty: i32 = if u.ratio(1, 16)? {
            u.int_in_range(0..=20)?
        } else {
            *u.choose(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 18, 11, 11, 11, 14, 10])?
        };
        f.r#type = Some(ty);
        if ty == 11 || ty == 10 {
            f.type_name = Some(type_ref(u, prefix, messages, 0)?);
        } else if ty == 14 {
            f.type_name = Some(type_ref(u, prefix, 0, enums)?);
        }
        if u.ratio(1, 8)? && f.label == Some(3) {
            // A map: a nested map-entry type (options: map_entry = true).
            let entry = format!("{}Entry", field_name.replace('_', ""));
            let key_type = *u.choose(&[9, 5, 3, 8, 13, 1, 12])?;
            let value = FieldProto {
                name: Some("value".into()),
                number: Some(2),
                label: Some(1),
                r#type: Some(ty),
                type_name: f.type_name.clone(),
                ..Default::default()
            };
            let key = FieldProto {
                name: Some("key".into()),
                number: Some(1),
                label: Some(1),
                r#type: Some(key_type),
                ..Default::default()
            };
            msg.nested_type.push(MessageProto {
                name: Some(entry.clone()),
                field: vec![key, value],
                options: Some(vec![0x38, 0x01]),
                ..Default::default()
            });
            f.r#type = Some(11);
            f.type_name = Some(format!("{prefix}{name}.{entry}"));
        }
        if oneofs > 0 && f.label == Some(1) && u.ratio(1, 4)? {
            f.oneof_index = Some(0);
        } else if proto3 && f.label == Some(1) && u.ratio(1, 6)? {
            // proto3 `optional`: a synthetic oneof.
            msg.oneof_decl.push(OneofProto { name: Some(format!("_{field_name}")) });
            f.oneof_index = Some(msg.oneof_decl.len() as i32 - 1);
            f.proto3_optional = Some(true);
        }
        if u.ratio(1, 10)? {
            f.json_name = Some(text(u, FIELD_NAMES)?);
        }
        if u.ratio(1, 16)? {
            f.default_value = Some(u.arbitrary()?);
        }
        msg.field.push(f);
    }
    Ok(msg)
}

fn structured(u: &mut Unstructured) -> Result<()> {
    let package = pick(u, PACKAGES)?;
    let prefix = if package.is_empty() { ".".to_string() } else { format!(".{package}.") };
    let (syntax, edition) = match u.int_in_range(0..=7)? {
        0..=2 => (Some("proto3".to_string()), None),
        3 => (Some("proto2".to_string()), None),
        4 => (None, None),
        5 => (Some("editions".to_string()), Some(*u.choose(&[1000, 1001, 998, 999, 0, 2, 99997])?)),
        6 => (Some("proto3".to_string()), Some(1000)),
        _ => (Some(u.arbitrary()?), u.arbitrary()?),
    };
    let proto3 = syntax.as_deref() == Some("proto3");
    let messages = u.int_in_range(1..=4)?;
    let enums = u.int_in_range(0..=2)?;
    let mut file = FileProto {
        name: Some(text(u, &["gen.proto", "gen/v1/gen.proto", "google/api/httpbody.proto"])?),
        package: (!package.is_empty()).then(|| package.to_string()),
        dependency: BASE_FILES.iter().map(|s| s.to_string()).collect(),
        syntax,
        edition,
        ..Default::default()
    };
    if u.ratio(1, 10)? {
        file.dependency.pop();
    }
    for i in 0..messages {
        file.message_type.push(message(u, i, &prefix, messages, enums, proto3)?);
    }
    for i in 0..enums {
        let mut e = EnumProto { name: Some(format!("E{i}")), ..Default::default() };
        for j in 0..u.int_in_range(0..=3)? {
            let number = if proto3 && j == 0 && u.ratio(7, 8)? { 0 } else { u.int_in_range(-2..=5)? };
            e.value.push(EnumValueProto { name: Some(format!("E{i}_V{j}")), number: Some(number) });
        }
        file.enum_type.push(e);
    }
    let services = u.int_in_range(1..=2)?;
    for s in 0..services {
        let mut svc = ServiceProto { name: Some(format!("S{s}")), ..Default::default() };
        for m in 0..u.int_in_range(0..=4)? {
            let msg_ref = |u: &mut Unstructured| -> Result<String> {
                Ok(if u.ratio(5, 6)? {
                    format!("{prefix}M{}", u.int_in_range(0..=messages - 1)?)
                } else {
                    pick(u, WELL_KNOWN)?.to_string()
                })
            };
            svc.method.push(MethodProto {
                name: Some(format!("Call{m}")),
                input_type: Some(msg_ref(u)?),
                output_type: Some(msg_ref(u)?),
                options: method_options(u)?,
                client_streaming: Some(u.ratio(1, 6)?),
                server_streaming: Some(u.ratio(1, 4)?),
            });
        }
        file.service.push(svc);
    }
    let mut set = base_set().to_vec();
    set.extend_from_slice(&FileSet { file: vec![file] }.encode_to_vec());

    let qualified = |s: usize| if package.is_empty() { format!("S{s}") } else { format!("{package}.S{s}") };
    let mut names: Vec<String> = (0..services).map(qualified).collect();
    if u.ratio(1, 10)? {
        names.push("nowhere.Service".into());
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let extra = options(u)?;
    let config = config_with(&set, &names, &extra);
    // Reproducing a finding: JSON2GRPC_FUZZ_DUMP=<file> saves the generated config.
    if let Some(path) = std::env::var_os("JSON2GRPC_FUZZ_DUMP") {
        std::fs::write(path, &config).expect("JSON2GRPC_FUZZ_DUMP");
    }
    if known_crash(&set) {
        return Ok(());
    }
    let Some(t) = configure(config.as_bytes()) else { return Ok(()) };
    // The OpenAPI document of any configuration that loads: made, bounded, never a panic.
    if u.ratio(1, 4)? {
        let _ = json2grpc::core::openapi::render(&t, 8 << 20);
    }
    exercise(u, &t)
}

/// Random config options (valid keys, mostly valid values).
fn options(u: &mut Unstructured) -> Result<String> {
    let mut parts = Vec::new();
    for (key, values) in [
        ("auto_mapping", &["true", "false"][..]),
        ("case_insensitive_enum_parsing", &["true"]),
        ("match_unregistered_custom_verb", &["true"]),
        ("ignore_unknown_query_parameters", &["true"]),
        ("capture_unknown_query_parameters", &["true"]),
        ("query_param_unescape_plus", &["true"]),
        ("url_unescape_spec", &["\"ALL_CHARACTERS\"", "\"ALL_CHARACTERS_EXCEPT_SLASH\"", "2", "7"]),
        ("max_request_body_size", &["0", "16", "4294967295"]),
        ("max_response_body_size", &["0", "16", "4294967295"]),
        (
            "print_options",
            &[
                r#"{"stream_newline_delimited": true}"#,
                r#"{"stream_sse_style_delimited": true, "always_print_primitive_fields": true}"#,
            ],
        ),
        (
            "request_validation_options",
            &[
                r#"{"reject_unknown_method": true, "reject_unknown_query_parameters": true, "reject_binding_body_field_collisions": true}"#,
            ],
        ),
        (
            "json2grpc",
            &[
                r#"{"limits": {"max_json_depth": 1, "max_frame_size": 1, "max_query_parameters": 1}}"#,
                r#"{"limits": {"max_json_depth": 128}}"#,
            ],
        ),
    ] {
        if u.ratio(1, 4)? {
            parts.push(format!("\"{key}\": {}", pick(u, values)?));
        }
    }
    Ok(parts.join(","))
}

/// Routes a few generated requests through a generated transcoder.
fn exercise(u: &mut Unstructured, t: &Transcoder) -> Result<()> {
    for _ in 0..u.int_in_range(1..=4)? {
        let method = text(u, METHODS)?;
        let mut path = template(u)?.replace(['{', '}', '='], "");
        if u.ratio(1, 3)? {
            path.push('?');
            path.push_str(&field_path(u)?);
            path.push('=');
            path.push_str(&text(u, &["1", "x", "true", "-1", "%zz", "1.5", "RED"])?);
        }
        let ct = *u.choose(&[None, Some("application/json"), Some("application/x-ndjson"), Some("text/plain")])?;
        let body: Vec<u8> = if u.ratio(1, 2)? {
            text(
                u,
                &["{}", "[]", "[{}]", r#"{"id": "1"}"#, "{\"name\": 1}", "", "null", "{\"nested\": {\"id\": \"2\"}}"],
            )?
            .into_bytes()
        } else {
            u.arbitrary()?
        };
        let Decision::Transcode(plan) = t.route(&method, &path, ct) else { continue };
        if plan.method().client_streaming {
            let mut stream = t.request_stream(ct);
            let mut out = Vec::new();
            if t.push_request_stream(&mut stream, &plan, &body, &mut out).is_ok() {
                let _ = t.finish_request_stream(&mut stream, &plan, &mut out);
            }
        } else {
            let _ = t.request_message(&plan, &body, ct);
        }
        let frames: Vec<u8> = u.arbitrary()?;
        let mut r = ResponseTranscoder::new(
            &t.codec,
            &plan.binding,
            &t.config.print_options,
            t.config.limits.max_frame_size,
            t.config.max_response_body_size,
            None,
        );
        let mut out = Vec::new();
        let mut result = r.push_framed(&frames, &mut out);
        if result.is_ok() {
            let message: Vec<u8> = u.arbitrary()?;
            result = r.push_message(&message, &mut out);
        }
        if result.is_ok() {
            let status = GrpcStatus::from_metadata(&t.codec, Some(pick(u, &["0", "5", "x"])?.as_bytes()), None, None);
            result = r.finish(status, &mut out);
        }
        if let Err(e) = result {
            r.abort(&e, &mut out);
        }
    }
    Ok(())
}
