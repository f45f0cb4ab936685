//! Regression tests for what the cargo-fuzz targets (fuzz/, `make fuzz`) found, each reduced
//! to its smallest input, inline. A test here fails (or panics) until its finding is fixed.
//!
//! The schema is filter/testdata/transcode_test.proto, compiled here with protox (as in
//! tests/roundtrip.rs).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use base64::Engine;
use json2grpc::core::descriptors::load_pool;
use json2grpc::core::grpc_status::GrpcStatus;
use json2grpc::core::request::Decision;
use json2grpc::core::response::ResponseTranscoder;
use json2grpc::core::transcoder::Transcoder;

fn test_descriptor_set() -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let includes = [root.join("testdata"), root.join("../proto")];
    let mut compiler = protox::Compiler::new(includes).unwrap();
    compiler.include_imports(true);
    compiler.include_source_info(false);
    compiler.open_file("transcode_test.proto").unwrap();
    compiler.encode_file_descriptor_set()
}

fn config(descriptor_set: &[u8], services: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(descriptor_set);
    format!(r#"{{"proto_descriptor_bin":"{b64}","services":[{services}]}}"#)
}

fn things() -> Transcoder {
    Transcoder::from_json(config(&test_descriptor_set(), r#""test.v1.Things""#).as_bytes()).unwrap()
}

/// Target `config` (structured descriptor sets). A FileDescriptorProto whose `syntax` field is
/// present but empty passes `load_pool`'s guard (`file.syntax()` is "" for both absent and
/// empty, and "" is accepted), then prost-reflect 0.16.5 `DescriptorPool::decode` panics:
/// "index out of bounds: the len is 0 but the index is 0" in `Label::new`
/// (prost-reflect src/descriptor/error.rs:782), called from `NameVisitor::visit_file`
/// (build/names.rs) for the unknown-syntax error before the file is in the pool. Any syntax
/// other than absent/"proto2"/"proto3" does this (hence the guard); "" slips through.
/// At configure time this kills the Wasm VM instead of rejecting the config.
#[test]
fn descriptor_with_empty_syntax_is_an_error_not_a_panic() {
    // FileDescriptorSet { file: [ { name: "a", syntax: "" } ] }
    let set = [0x0a, 0x05, 0x0a, 0x01, b'a', 0x62, 0x00];
    assert!(load_pool(&set).is_err());
    let e = Transcoder::from_json(config(&set, "").as_bytes()).err().expect("config must be refused");
    assert_eq!(e.field, "proto_descriptor_bin");
}

/// Target `json_to_message`. An empty `google.protobuf.Any` (no type URL, no value) cannot be
/// printed: "response message cannot be printed as JSON: unsupported type url '': missing at
/// least one '/'" (prost-reflect's Any serializer). The request side accepts it (an empty body
/// for an Any is an empty Any), so it round-trips JSON → binary but not back. Upstream, any
/// response with an `Any` field set to the default message is answered 502; protobuf's own
/// JSON printer writes `{}` for an empty Any.
#[test]
fn empty_any_in_a_response_prints_as_an_empty_object() {
    let t = things();
    let Decision::Transcode(plan) = t.route("GET", "/v1/things/1", None) else { panic!("no route") };
    let mut r = ResponseTranscoder::new(&plan.binding, &t.config.print_options, 1 << 20, None, None);
    // One frame: test.v1.Everything { any (35): {} }
    let frame = [0, 0, 0, 0, 3, 0x9a, 0x02, 0x00];
    let mut out = Vec::new();
    r.push_framed(&frame, &mut out).unwrap();
    let ok = GrpcStatus::from_metadata(&t.pool, Some(b"0"), None, None);
    r.finish(ok, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), r#"{"any":{}}"#);
}

/// Target `json_to_message` (round-trip check). `-0.0` in a proto3 `float`/`double` field
/// without presence is encoded (the request side keeps it), but the JSON printer treats it as
/// the default and omits it: `binary_to_json` of `Scalars { f_float: -0.0 }` is `{}`, so the
/// client reads `0` and the sign is lost. protobuf's printer (C++ reflection compares the bits)
/// prints `-0`. Low impact, but a silent change of the value in responses.
#[test]
fn negative_zero_is_printed_in_responses() {
    let t = things();
    let Decision::Transcode(plan) = t.route("GET", "/v1/things/1", None) else { panic!("no route") };
    let mut r = ResponseTranscoder::new(&plan.binding, &t.config.print_options, 1 << 20, None, None);
    // One frame: test.v1.Everything { scalars (2): Scalars { f_float (2): -0.0 } }
    let frame = [0, 0, 0, 0, 7, 0x12, 0x05, 0x15, 0, 0, 0, 0x80];
    let mut out = Vec::new();
    r.push_framed(&frame, &mut out).unwrap();
    r.finish(GrpcStatus::from_metadata(&t.pool, Some(b"0"), None, None), &mut out).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let value = json["scalars"]["fFloat"].as_f64();
    assert!(value.is_some_and(|v| v == 0.0 && v.is_sign_negative()), "-0.0 lost: {json}");
}

/// Target `path_template` ("every template can be matched", template.rs). In `/{x=c:b}` the
/// `:` is inside braces, so the template has the literal `c:b` and no verb. Once another
/// template registers the verb `b` (`/a:b`), the request path `/c:b` is split as segment `c`
/// + verb `b` and `/{x=c:b}` can no longer be reached by any path.
#[test]
fn literal_with_a_colon_stays_reachable_when_its_suffix_is_a_verb() {
    use json2grpc::core::path_matcher::{MatcherOptions, PathMatcherBuilder};
    use json2grpc::core::template::parse;
    let mut builder = PathMatcherBuilder::new();
    builder.register("GET", &parse("/a:b").unwrap(), "verb").unwrap();
    builder.register("GET", &parse("/{x=c:b}").unwrap(), "colon literal").unwrap();
    let matcher = builder.build(MatcherOptions::default());
    assert_eq!(matcher.lookup("GET", "/a:b").map(|m| *m.value), Some("verb"));
    let found = matcher.lookup("GET", "/c:b");
    assert_eq!(found.map(|m| (*m.value, m.bindings)), Some(("colon literal", vec![(0, b"c:b".to_vec())])));
}

/// Runs one response (frames, then OK) through `t.response` (the filter: fast codec where it
/// applies) or through the reflection-only translator; the JSON body or the HTTP status.
fn respond(t: &Transcoder, path: &str, frames: &[u8], fast: bool) -> Result<String, u16> {
    let Decision::Transcode(plan) = t.route("GET", path, None) else { panic!("no route") };
    let mut r = if fast {
        t.response(&plan.binding, None, None)
    } else {
        ResponseTranscoder::new(&plan.binding, &t.config.print_options, 1 << 20, None, None)
    };
    let mut out = Vec::new();
    r.push_framed(frames, &mut out).map_err(|e| e.http_status)?;
    r.finish(GrpcStatus::from_metadata(&t.pool, Some(b"0"), None, None), &mut out).map_err(|e| e.http_status)?;
    Ok(String::from_utf8(out).unwrap())
}

/// Target `json_to_message` (fast/reflection differential) and `response_decoding`. A
/// `google.protobuf.Value` with no kind set: the reflection printer writes `null`, the fast
/// printer (core/fast/decode.rs: "response google.protobuf.Value has no kind") fails, so the
/// filter answers 502 for a response whose `Value` field is present but empty, where the
/// reflection path (and `response_body` selections, which use it) answer 200.
#[test]
fn kindless_value_prints_the_same_on_both_paths() {
    let t = things();
    // test.v1.Everything { val (33): Value {} }
    let frame = [0, 0, 0, 0, 3, 0x8a, 0x02, 0x00];
    let reflection = respond(&t, "/v1/things/1", &frame, false);
    assert_eq!(reflection.as_deref(), Ok(r#"{"val":null}"#));
    assert_eq!(respond(&t, "/v1/things/1", &frame, true), reflection);
}

/// Target `request_routing` (filter/reflection differential). The fast codec accepts a body
/// that repeats an unknown key (`{"x":1,"x":2}`), the reflection path refuses it ("invalid
/// JSON body: duplicate key \"x\"", 400). Duplicate keys are documented as 400s, and the fast
/// path's own doc says it follows the reflection path's strictness; unknown keys are skipped
/// before the duplicate check.
#[test]
fn duplicate_unknown_keys_are_refused_on_the_fast_path_too() {
    let t = things();
    let Decision::Transcode(plan) = t.route("POST", "/v1/things", None) else { panic!("no route") };
    let body = br#"{"x": 1, "x": 2}"#;
    let reflection = json2grpc::core::request::build_message(
        &t.config,
        &t.parse_options,
        &json2grpc::core::fast::Codec::default(),
        &plan,
        body,
        None,
    );
    assert_eq!(reflection.map_err(|e| e.http_status), Err(400));
    assert_eq!(t.request_message(&plan, body, None).map_err(|e| e.http_status), Err(400));
}

/// Target `response_decoding` (filter/reflection differential). Response bytes `43 00`
/// (field 8 with wire type 3, start-group, then a zero tag) are refused by the fast decoder
/// ("unterminated group", 502) but decoded by prost-reflect, so the reflection path (used for
/// `response_body` selections and HttpBody) accepts a malformed message the filter otherwise
/// refuses.
#[test]
fn malformed_group_is_refused_on_both_paths() {
    let t = things();
    let frame = [0, 0, 0, 0, 2, 0x43, 0x00];
    assert_eq!(respond(&t, "/v1/things/1", &frame, true).map(|_| ()), Err(502));
    assert_eq!(respond(&t, "/v1/things/1", &frame, false).map(|_| ()), Err(502));
}
