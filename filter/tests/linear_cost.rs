//! CPU linear in the size of a descriptor set, however its fields are spread: a message may
//! declare any number of fields (protoc sets no limit), and every worker's VM links the set at
//! start (a live source's set at any time). Pairwise checks made one message of 40,000 fields
//! take 3.4 s to link (natively; 20,000: 0.8 s), 60 times what the same fields cost in 40
//! messages. Compared within one process, so the machine's speed cancels out.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use base64::Engine;
use json2grpc::core::request::Decision;
use json2grpc::core::transcoder::Transcoder;

fn len_field(number: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint_field(number << 3 | 2, payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A FileDescriptorProto's start: its name, package `q` and syntax.
fn file_of(name: &[u8], syntax: &[u8]) -> Vec<u8> {
    let mut file = Vec::new();
    len_field(1, name, &mut file);
    len_field(2, b"q", &mut file);
    len_field(12, syntax, &mut file);
    file
}

/// A tag or a varint field: `key` is the whole tag (number << 3 | wire type).
fn varint_field(key: u32, value: u64, out: &mut Vec<u8>) {
    for mut v in [u64::from(key), value] {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
}

/// A proto2 file `q.proto` with `messages` messages of `fields` string fields each (`M0`, with
/// fields `f1`…, `M1`…),
/// each field in a oneof of its own if `oneofs`, `extensions` extensions of `M0` declared at
/// file level, and a service `q.S` whose method `Get` takes and returns `M0`.
fn config(messages: usize, fields: usize, extensions: usize, oneofs: bool) -> String {
    let mut file = file_of(b"q.proto", b"proto2");
    let numbers = field_numbers();
    for m in 0..messages {
        let mut message = string_fields(m, fields, oneofs);
        if m == 0 {
            // extension_range { start: fields + 1, end: 2^29 }, less protobuf's own numbers.
            let first = numbers.clone().nth(fields).unwrap();
            for (start, end) in [(first, 19_000), (20_000, 1 << 29)] {
                let mut range = Vec::new();
                varint_field(1 << 3, start.min(end), &mut range);
                varint_field(2 << 3, end, &mut range);
                len_field(5, &range, &mut message);
            }
        }
        len_field(4, &message, &mut file);
    }
    for (i, n) in numbers.clone().skip(fields).take(extensions).enumerate() {
        let mut field = Vec::new();
        len_field(1, format!("e{i}").as_bytes(), &mut field);
        len_field(2, b".q.M0", &mut field);
        varint_field(3 << 3, n, &mut field);
        varint_field(4 << 3, 1, &mut field);
        varint_field(5 << 3, 9, &mut field);
        len_field(7, &field, &mut file);
    }
    with_service(file)
}

/// The message `M<m>` of [`config`] without its extension ranges: `fields` optional string
/// fields, numbered from 1 (less protobuf's own numbers), named `f<number>` in `M0`.
fn string_fields(m: usize, fields: usize, oneofs: bool) -> Vec<u8> {
    let mut message = Vec::new();
    len_field(1, format!("M{m}").as_bytes(), &mut message);
    for (i, n) in field_numbers().take(fields).enumerate() {
        // Names distinct across messages, as in one message (each is one allocation).
        let name = if m == 0 { format!("f{n}") } else { format!("m{m}f{n}") };
        let mut field = string_field(&name, n);
        if oneofs {
            varint_field(9 << 3, i as u64, &mut field);
        }
        len_field(2, &field, &mut message);
        if oneofs {
            let mut oneof = Vec::new();
            len_field(1, format!("o{n}").as_bytes(), &mut oneof);
            len_field(8, &oneof, &mut message);
        }
    }
    message
}

/// An optional string field `name` numbered `number` (a FieldDescriptorProto's bytes).
fn string_field(name: &str, number: u64) -> Vec<u8> {
    let mut field = Vec::new();
    len_field(1, name.as_bytes(), &mut field);
    varint_field(3 << 3, number, &mut field);
    varint_field(4 << 3, 1, &mut field);
    varint_field(5 << 3, 9, &mut field);
    field
}

/// Field numbers from 1, less the range protobuf reserves for itself.
fn field_numbers() -> impl Iterator<Item = u64> + Clone {
    (1..).filter(|n| !(19_000..20_000).contains(n))
}

/// The configuration of the file `file` (package `q`) with a service `q.S` added, whose method
/// `Get` takes and returns `q.M0`, auto-mapped.
fn with_service(mut file: Vec<u8>) -> String {
    let mut method = Vec::new();
    len_field(1, b"Get", &mut method);
    len_field(2, b".q.M0", &mut method);
    len_field(3, b".q.M0", &mut method);
    let mut service = Vec::new();
    len_field(1, b"S", &mut service);
    len_field(2, &method, &mut service);
    len_field(6, &service, &mut file);
    let mut set = Vec::new();
    len_field(1, &file, &mut set);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&set);
    format!(r#"{{"services": ["q.S"], "proto_descriptor_bin": "{encoded}", "auto_mapping": true}}"#)
}

/// The fastest of three: a transcoder built for serving and one request through it, both
/// ways (the codec's plans are built on first use).
fn build_and_call(text: &str) -> Duration {
    round_trips(text, br#"{"f1": "a", "f2": "b"}"#, |grpc, json| {
        assert_eq!(grpc, b"\x0a\x01a\x12\x01b");
        assert_eq!(json, br#"{"f1":"a","f2":"b"}"#);
    })
}

/// The fastest of three: the transcoder of `text` built for serving, `body` sent to
/// `q.S/Get` and the message printed back (`check` sees both).
fn round_trips(text: &str, body: &[u8], check: impl Fn(&[u8], &[u8])) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let t =
                Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
            let Decision::Transcode(plan) = t.route("POST", "/q.S/Get", Some("application/json")) else {
                panic!("not routed")
            };
            let grpc = t.request_message(&plan, body, None).unwrap();
            let mut json = Vec::new();
            t.codec.binary_to_json(plan.method().output, &grpc, &t.config.print_options, &mut json).unwrap();
            check(&grpc, &json);
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn linking_costs_time_linear_in_a_message_s_fields_and_extensions() {
    const FIELDS: usize = 40_000;
    let spread = build_and_call(&config(40, FIELDS / 40, 0, false));
    for (what, text) in [
        ("fields", config(1, FIELDS, 0, false)),
        ("extensions", config(1, 10, FIELDS, false)),
        ("fields in oneofs", config(1, FIELDS, 0, true)),
    ] {
        let one = build_and_call(&text);
        eprintln!("{FIELDS} {what} of one message: {one:?}; in 40 messages: {spread:?}");
        // Linear: about the same (one message has fewer names to declare); pairwise: ~60x.
        assert!(one < spread * 6, "{FIELDS} {what} of one message: {one:?}; in 40 messages: {spread:?}");
    }
}

/// The fastest of five: ten requests to `q.S/Get` with `params` query parameters naming the
/// message's last field (the transcoder built and its plans warmed before).
fn route_query(text: &str, fields: usize, params: usize) -> Duration {
    let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
    let last = field_numbers().nth(fields - 1).unwrap();
    let query = vec![format!("f{last}=v"); params].join("&");
    let path = format!("/q.S/Get?{query}");
    let route = || {
        let Decision::Transcode(plan) = t.route("POST", &path, Some("application/json")) else { panic!("not routed") };
        // The last value wins: the field's tag, length 1, "v".
        let grpc = t.request_message(&plan, b"", None).unwrap();
        assert!(grpc.ends_with(b"\x01v") && grpc.len() <= 6, "{grpc:?}");
    };
    route();
    (0..5)
        .map(|_| {
            let start = Instant::now();
            (0..10).for_each(|_| route());
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn query_parameters_cost_time_linear_in_their_count_whatever_the_message_s_fields() {
    // A query string names one field per parameter (up to max_query_parameters, 1,000 by
    // default): each used to be a scan of the message's fields (20,000 fields: 0.2 s a request).
    const PARAMS: usize = 1000;
    let few = route_query(&config(1, 20, 0, false), 20, PARAMS);
    let many = route_query(&config(1, 20_000, 0, false), 20_000, PARAMS);
    eprintln!("{PARAMS} query parameters, 10 requests: 20 fields {few:?}, 20,000 fields {many:?}");
    assert!(many < few * 4, "20 fields: {few:?}; 20,000 fields: {many:?}");
}

/// A proto3 file with a message `q.M` without fields and `services` services (`q.S0`…) of `methods` methods each, every method
/// bound by `google.api.http` to `/s<service>/m<method>`: with `get`, or (if `custom`) with
/// a custom pattern whose kind (HTTP method) is its own.
fn routes_config(services: usize, methods: usize, custom: bool) -> String {
    const HTTP_RULE: u32 = 72295728;
    let mut file = file_of(b"r.proto", b"proto3");
    len_field(
        4,
        &{
            let mut message = Vec::new();
            len_field(1, b"M", &mut message);
            message
        },
        &mut file,
    );
    let mut names = Vec::new();
    for s in 0..services {
        let mut service = Vec::new();
        len_field(1, format!("S{s}").as_bytes(), &mut service);
        for m in 0..methods {
            let path = format!("/s{s}/m{m}");
            let mut rule = Vec::new();
            if custom {
                let mut pattern = Vec::new();
                len_field(1, format!("K{s}x{m}").as_bytes(), &mut pattern);
                len_field(2, path.as_bytes(), &mut pattern);
                len_field(8, &pattern, &mut rule);
            } else {
                len_field(2, path.as_bytes(), &mut rule);
            }
            let mut options = Vec::new();
            len_field(HTTP_RULE, &rule, &mut options);
            let mut method = Vec::new();
            len_field(1, format!("Get{m}").as_bytes(), &mut method);
            len_field(2, b".q.M", &mut method);
            len_field(3, b".q.M", &mut method);
            len_field(4, &options, &mut method);
            len_field(2, &method, &mut service);
        }
        len_field(6, &service, &mut file);
        names.push(format!(r#""q.S{s}""#));
    }
    let mut set = Vec::new();
    len_field(1, &file, &mut set);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&set);
    format!(r#"{{"services": [{}], "proto_descriptor_bin": "{encoded}"}}"#, names.join(","))
}

/// The fastest of three: a transcoder built for serving and its last route called.
fn build_and_route(text: &str, method: &str, path: &str) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let t =
                Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
            let Decision::Transcode(plan) = t.route(method, path, None) else { panic!("{method} {path} not routed") };
            assert_eq!(t.request_message(&plan, b"", None).unwrap(), b"");
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn routing_builds_in_time_linear_in_services_and_custom_methods() {
    // Each configured service was found by a scan of the schema's, each binding's HTTP method
    // by a scan of those seen (10,000 services: 268 ms).
    const N: usize = 20_000;
    let one_service = build_and_route(&routes_config(1, N, false), "GET", &format!("/s0/m{}", N - 1));
    for (what, text, method, path) in [
        ("services", routes_config(N, 1, false), "GET".to_string(), format!("/s{}/m0", N - 1)),
        ("custom HTTP methods", routes_config(1, N, true), format!("K0X{}", N - 1), format!("/s0/m{}", N - 1)),
    ] {
        let took = build_and_route(&text, &method, &path);
        eprintln!("{N} {what}: {took:?}; {N} GET methods of one service: {one_service:?}");
        assert!(took < one_service * 6, "{N} {what}: {took:?}; {N} GET methods of one service: {one_service:?}");
    }
}

/// A method `name` taking `input` and returning `output` (`.q.M0`…), bound by the encoded
/// `google.api.http` rule `rule`.
fn bound_method(name: &str, input: &[u8], output: &[u8], rule: &[u8]) -> Vec<u8> {
    const HTTP_RULE: u32 = 72295728;
    let mut options = Vec::new();
    len_field(HTTP_RULE, rule, &mut options);
    let mut method = Vec::new();
    len_field(1, name.as_bytes(), &mut method);
    len_field(2, input, &mut method);
    len_field(3, output, &mut method);
    len_field(4, &options, &mut method);
    method
}

/// The configuration of `file` (package `q`, its service `q.S` added) in base64; `extra`:
/// more top-level fields (`"json2grpc": …, `).
fn config_of(file: &[u8], extra: &str) -> String {
    let mut set = Vec::new();
    len_field(1, file, &mut set);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&set);
    format!(r#"{{"services": ["q.S"], {extra}"proto_descriptor_bin": "{encoded}"}}"#)
}

/// [`config_of`] with the OpenAPI document served.
const OPENAPI: &str = r#""json2grpc": {"openapi": {"path": "/openapi.json"}}, "#;

/// A proto2 file with [`config`]'s message `M0` of `fields` fields and a service `q.S` of
/// `methods` methods `Get<m>` taking and returning it, each bound to `GET /m<m>/{<field>}`
/// with `response_body: "<field>"`.
fn bound_config(fields: usize, methods: usize, field: &str) -> String {
    let mut file = file_of(b"b.proto", b"proto2");
    len_field(4, &string_fields(0, fields, false), &mut file);
    let mut service = Vec::new();
    len_field(1, b"S", &mut service);
    for m in 0..methods {
        let mut rule = Vec::new();
        len_field(2, format!("/m{m}/{{{field}}}").as_bytes(), &mut rule);
        len_field(12, field.as_bytes(), &mut rule);
        len_field(2, &bound_method(&format!("Get{m}"), b".q.M0", b".q.M0", &rule), &mut service);
    }
    len_field(6, &service, &mut file);
    config_of(&file, "")
}

#[test]
fn bindings_resolve_their_fields_in_time_linear_in_bindings_whatever_the_message_s_fields() {
    // Each binding's path variable and response_body were found by a scan of the message's
    // fields (10,000 bindings of the last of 20,000 fields: 2×10⁸ name comparisons).
    const FIELDS: usize = 20_000;
    const METHODS: usize = 10_000;
    let [first, last] = [1, FIELDS].map(|i| field_numbers().nth(i - 1).unwrap());
    // The fastest of three: the transcoder built, and the last binding's request transcoded
    // (the variable's value "v" in its field).
    let timed = |number: u64| {
        let text = bound_config(FIELDS, METHODS, &format!("f{number}"));
        let path = format!("/m{}/v", METHODS - 1);
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let config = json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap();
                let t = Transcoder::for_serving(config).unwrap();
                let Decision::Transcode(plan) = t.route("GET", &path, None) else { panic!("GET {path} not routed") };
                let mut expected = Vec::new();
                varint_field((number as u32) << 3 | 2, 1, &mut expected);
                expected.push(b'v');
                assert_eq!(t.request_message(&plan, b"", None).unwrap(), expected);
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let first_field = timed(first);
    let last_field = timed(last);
    eprintln!(
        "{METHODS} bindings of a {FIELDS}-field message's first field: {first_field:?}; its last: {last_field:?}"
    );
    assert!(last_field < first_field * 3, "first field: {first_field:?}; last field: {last_field:?}");
}

/// A proto2 file of `n` messages `M0`…: each holds a message field `next` (number 1), of type
/// `M<i+1>` if `chained`, else `G`; the last holds `G` as a group `g` (number 2). A service
/// `q.S` with a method `Get` taking and returning `M0`.
fn chain_config(n: usize, chained: bool) -> String {
    let mut file = file_of(b"c.proto", b"proto2");
    let field = |name: &str, number: u64, kind: u64, type_name: &str| {
        let mut field = Vec::new();
        len_field(1, name.as_bytes(), &mut field);
        varint_field(3 << 3, number, &mut field);
        varint_field(4 << 3, 1, &mut field);
        varint_field(5 << 3, kind, &mut field);
        len_field(6, type_name.as_bytes(), &mut field);
        field
    };
    for i in 0..n {
        let mut message = Vec::new();
        len_field(1, format!("M{i}").as_bytes(), &mut message);
        let next = if chained && i + 1 < n { format!(".q.M{}", i + 1) } else { ".q.G".to_string() };
        len_field(2, &field("next", 1, 11, &next), &mut message);
        if i + 1 == n {
            len_field(2, &field("g", 2, 10, ".q.G"), &mut message);
        }
        len_field(4, &message, &mut file);
    }
    let mut group = Vec::new();
    len_field(1, b"G", &mut group);
    len_field(2, &field("s", 1, 9, ""), &mut group);
    len_field(4, &group, &mut file);
    with_service(file)
}

#[test]
fn finding_the_types_that_reach_a_group_costs_time_linear_in_the_types() {
    // Which messages reach a group field was a fixed point over every message, one pass per
    // link of a chain (32,000 messages: 2.6 s).
    const N: usize = 20_000;
    let flat = build_and_route(&chain_config(N, false), "POST", "/q.S/Get");
    let chained = build_and_route(&chain_config(N, true), "POST", "/q.S/Get");
    eprintln!("{N} messages chained to a group: {chained:?}; each holding another: {flat:?}");
    assert!(chained < flat * 6, "{N} messages chained to a group: {chained:?}; each holding another: {flat:?}");
}

/// The fastest of three: the OpenAPI document of the `config` API rendered.
fn openapi(text: &str) -> Duration {
    let text = text.replacen(
        r#""auto_mapping": true}"#,
        r#""auto_mapping": true, "json2grpc": {"openapi": {"path": "/openapi.json", "maxBytes": "100000000"}}}"#,
        1,
    );
    let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let document = json2grpc::core::openapi::render(&t, 100_000_000).unwrap();
            assert!(document.len() > 100_000);
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn the_openapi_document_costs_time_linear_in_a_message_s_oneofs() {
    // Each oneof's members were found by a scan of the message's fields.
    const FIELDS: usize = 10_000;
    let plain = openapi(&config(1, FIELDS, 0, false));
    let oneofs = openapi(&config(1, FIELDS, 0, true));
    eprintln!("OpenAPI of {FIELDS} fields: {plain:?}; each in a oneof: {oneofs:?}");
    assert!(oneofs < plain * 6, "OpenAPI of {FIELDS} fields: {plain:?}; each in a oneof: {oneofs:?}");
}

/// A proto3 file with an enum `q.E` of `values` values (`V0`…) and a message `M0` with a
/// repeated field `e` of it, parsed case-insensitively.
fn enum_config(values: usize) -> String {
    let mut file = file_of(b"e.proto", b"proto3");
    let mut field = Vec::new();
    len_field(1, b"e", &mut field);
    varint_field(3 << 3, 1, &mut field);
    varint_field(4 << 3, 3, &mut field);
    varint_field(5 << 3, 14, &mut field);
    len_field(6, b".q.E", &mut field);
    let mut message = Vec::new();
    len_field(1, b"M0", &mut message);
    len_field(2, &field, &mut message);
    len_field(4, &message, &mut file);
    let mut enumeration = Vec::new();
    len_field(1, b"E", &mut enumeration);
    for v in 0..values {
        let mut value = Vec::new();
        len_field(1, format!("V{v}").as_bytes(), &mut value);
        varint_field(2 << 3, v as u64, &mut value);
        len_field(2, &value, &mut enumeration);
    }
    len_field(5, &enumeration, &mut file);
    with_service(file).replacen(
        r#""auto_mapping": true}"#,
        r#""auto_mapping": true, "case_insensitive_enum_parsing": true}"#,
        1,
    )
}

/// The fastest of three: a request naming the enum's last value (lower case) 999 times in
/// its query string and 10,000 times in its JSON body (the transcoder built before).
fn enum_names(values: usize) -> Duration {
    let text = enum_config(values);
    let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
    let name = format!("v{}", values - 1);
    let path = format!("/q.S/Get?{}", vec![format!("e={name}"); 999].join("&"));
    let body = format!(r#"{{"e": [{}]}}"#, vec![format!(r#""{name}""#); 10_000].join(","));
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let Decision::Transcode(plan) = t.route("POST", &path, Some("application/json")) else {
                panic!("not routed")
            };
            let grpc = t.request_message(&plan, body.as_bytes(), None).unwrap();
            // Packed: one field of 10,999 varints of the last value.
            assert!(grpc.len() > 10_999, "{}", grpc.len());
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn enum_names_cost_time_linear_in_their_count_whatever_the_enum_s_values() {
    // URL values scanned the enum's values per name (999 against 16,000 values: 0.23 s a
    // request), and case-insensitive body names did on every miss (10,000: 12.5 s).
    let few = enum_names(16);
    let many = enum_names(16_000);
    eprintln!("999 URL and 10,000 body enum names: 16 values {few:?}, 16,000 values {many:?}");
    assert!(many < few * 4, "16 values: {few:?}; 16,000 values: {many:?}");
}

/// A proto2 file with [`config`]'s message `M0` of `fields` fields, a message `In` with the
/// fields `f<last>` (the name of `M0`'s last field) and `zz`, and a service `q.S` of `methods`
/// methods `Get<m>` taking `In` and returning `M0`, bound to `GET /m<m>/{f<last>}/{zz}`: every
/// response holds the field the first variable of every other operation sets, none the second.
fn links_config(fields: usize, methods: usize) -> String {
    let last = format!("f{}", field_numbers().nth(fields - 1).unwrap());
    links_config_with(fields, methods, &[last, "zz".to_string()])
}

/// [`links_config`] with the variables `variables` (in this order), each a field of `In`.
fn links_config_with(fields: usize, methods: usize, variables: &[String]) -> String {
    let mut file = file_of(b"l.proto", b"proto2");
    len_field(4, &string_fields(0, fields, false), &mut file);
    let mut input = Vec::new();
    len_field(1, b"In", &mut input);
    for (number, name) in (1..).zip(variables) {
        len_field(2, &string_field(name, number), &mut input);
    }
    len_field(4, &input, &mut file);
    let template: String = variables.iter().map(|v| format!("/{{{v}}}")).collect();
    let mut service = Vec::new();
    len_field(1, b"S", &mut service);
    for m in 0..methods {
        let mut rule = Vec::new();
        len_field(2, format!("/m{m}{template}").as_bytes(), &mut rule);
        len_field(2, &bound_method(&format!("Get{m}"), b".q.In", b".q.M0", &rule), &mut service);
    }
    len_field(6, &service, &mut file);
    config_of(&file, OPENAPI)
}

#[test]
fn the_openapi_links_cost_time_linear_in_operations_whatever_the_response_s_fields() {
    // Each operation gathered its candidates from every field of its response type, and each
    // candidate's parameters were found by a scan of those fields (500 operations, 256
    // candidates each, two scans of 5,000 fields per candidate: 1.3×10⁹ name comparisons).
    const METHODS: usize = 500;
    let timed = |fields: usize| {
        let text = links_config(fields, METHODS);
        let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let document = json2grpc::core::openapi::render(&t, 8 << 20).unwrap();
                // No link: no response holds `zz`.
                assert!(document.len() > 100_000 && !String::from_utf8_lossy(&document).contains("\"links\""));
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let few = timed(20);
    let many = timed(5_000);
    eprintln!("OpenAPI of {METHODS} operations: responses of 20 fields {few:?}, of 5,000 fields {many:?}");
    assert!(many < few * 6, "20 fields: {few:?}; 5,000 fields: {many:?}");
}

/// A proto2 file with a message `M0` of `fields` string fields and a message `R` whose
/// `fields` fields are repeated `M0`s, and a service `q.S` of `methods` methods `Get<m>`
/// taking `input` (`M0` or `R`) and returning `M0`, each bound to `GET /m<m><template>`;
/// the OpenAPI document served.
fn openapi_config(fields: usize, methods: usize, input: &str, template: &str) -> String {
    let mut file = file_of(b"o.proto", b"proto2");
    len_field(4, &string_fields(0, fields, false), &mut file);
    let mut repeated = Vec::new();
    len_field(1, b"R", &mut repeated);
    for n in field_numbers().take(fields) {
        let mut field = Vec::new();
        len_field(1, format!("r{n}").as_bytes(), &mut field);
        varint_field(3 << 3, n, &mut field);
        varint_field(4 << 3, 3, &mut field);
        varint_field(5 << 3, 11, &mut field);
        len_field(6, b".q.M0", &mut field);
        len_field(2, &field, &mut repeated);
    }
    len_field(4, &repeated, &mut file);
    let mut service = Vec::new();
    len_field(1, b"S", &mut service);
    let input = format!(".q.{input}");
    for m in 0..methods {
        let mut rule = Vec::new();
        len_field(2, format!("/m{m}{template}").as_bytes(), &mut rule);
        len_field(2, &bound_method(&format!("Get{m}"), input.as_bytes(), b".q.M0", &rule), &mut service);
    }
    len_field(6, &service, &mut file);
    config_of(&file, OPENAPI)
}

/// The fastest of three renderings of the document of `text` (within the default 8 MiB), and
/// whether it was made.
fn render_openapi(text: &str) -> (Duration, bool) {
    let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
    let runs: Vec<(Duration, bool)> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let made = json2grpc::core::openapi::render(&t, 8 << 20).is_ok();
            (start.elapsed(), made)
        })
        .collect();
    (runs.iter().map(|r| r.0).min().unwrap(), runs[0].1)
}

#[test]
fn an_openapi_path_costs_time_linear_in_its_variables_even_repeated() {
    // A repeated variable's parameters are named `f1`, `f1_2`, `f1_3`…: each free name was
    // found by trying every number against every parameter (2,000: 1.7 s released, cubic).
    const V: usize = 1_000;
    let repeated = "/{f1}".repeat(V);
    let distinct: String = field_numbers().take(V).map(|n| format!("/{{f{n}}}")).collect();
    let (same, made_same) = render_openapi(&openapi_config(V, 1, "M0", &repeated));
    let (different, made_different) = render_openapi(&openapi_config(V, 1, "M0", &distinct));
    assert!(made_same && made_different);
    // More than 64 path parameters: the operation is listed as not described, with why.
    let text = openapi_config(V, 1, "M0", &repeated);
    let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
    let document = String::from_utf8(json2grpc::core::openapi::render(&t, 8 << 20).unwrap()).unwrap();
    assert!(document.contains("more than 64 path parameters"), "{}", &document[..2000.min(document.len())]);
    eprintln!("OpenAPI of a path of {V} variables: the same field {same:?}, {V} fields {different:?}");
    assert!(same < different * 4, "one field: {same:?}; {V} fields: {different:?}");
}

#[test]
fn the_openapi_query_walk_is_bounded_by_the_document_s_size() {
    // Operations whose input holds thousands of repeated message fields (no query parameter)
    // looked at every one of them, each operation (5,000 × 65,000 fields: 39 s released);
    // each field looked at that yields nothing counts toward the 8 MiB now (4 bytes and the
    // names it joined).
    const FIELDS: usize = 5_000;
    let (few, made_few) = render_openapi(&openapi_config(FIELDS, 40, "R", ""));
    let (many, made_many) = render_openapi(&openapi_config(FIELDS, 4_000, "R", ""));
    eprintln!(
        "OpenAPI of operations walking {FIELDS} fields: 40 {few:?} (made: {made_few}), 4,000 {many:?} ({made_many})"
    );
    assert!(made_few && !made_many, "40 operations: {made_few}; 4,000: {made_many}");
    assert!(many < few * 8, "40 operations: {few:?}; 4,000: {many:?}");
}

#[test]
fn the_openapi_links_stop_at_a_work_bound() {
    // Every response holds the first 60 fields each other operation's path sets, none the
    // last (`zz`): each operation checked 256 candidates of 61 parameters, writing each
    // parameter before the last failed (2,500 operations of 121: 20 s released). The same
    // document with `zz` first, where no response is a candidate, is the baseline.
    const METHODS: usize = 600;
    let mut variables: Vec<String> = field_numbers().take(60).map(|n| format!("f{n}")).collect();
    variables.push("zz".to_string());
    let (checked, made) = render_openapi(&links_config_with(100, METHODS, &variables));
    variables.rotate_right(1);
    let (none, made_none) = render_openapi(&links_config_with(100, METHODS, &variables));
    assert!(made && made_none);
    eprintln!("OpenAPI of {METHODS} operations of 61 path parameters: candidates {checked:?}, none {none:?}");
    assert!(checked < none * 6, "candidates: {checked:?}; none: {none:?}");
}

/// A proto2 file with a message `M0` of one string field named `x` repeated `long` times, and
/// a service `q.S` of 16 methods `T<j>` bound to `GET /t<j>` and 64 segments `/{x…}`, and
/// `sources` methods `S<i>` bound to `POST /s<i>` with `body: "*"`, all taking and returning
/// `M0`: every source's response fills every target's 64 parameters.
fn long_links_config(long: usize, sources: usize) -> String {
    let name = "x".repeat(long);
    let mut file = file_of(b"k.proto", b"proto2");
    let mut message = Vec::new();
    len_field(1, b"M0", &mut message);
    let mut field = Vec::new();
    len_field(1, name.as_bytes(), &mut field);
    varint_field(3 << 3, 1, &mut field);
    varint_field(4 << 3, 1, &mut field);
    varint_field(5 << 3, 9, &mut field);
    len_field(2, &field, &mut message);
    len_field(4, &message, &mut file);
    let mut service = Vec::new();
    len_field(1, b"S", &mut service);
    let segments = format!("/{{{name}}}").repeat(64);
    let rules = (0..16).map(|j| (format!("T{j}"), 2, format!("/t{j}{segments}"), ""));
    let rules = rules.chain((0..sources).map(|i| (format!("S{i}"), 4, format!("/s{i}"), "*")));
    for (method_name, pattern, path, body) in rules {
        let mut rule = Vec::new();
        len_field(pattern, path.as_bytes(), &mut rule);
        if !body.is_empty() {
            len_field(7, body.as_bytes(), &mut rule);
        }
        len_field(2, &bound_method(&method_name, b".q.M0", b".q.M0", &rule), &mut service);
    }
    len_field(6, &service, &mut file);
    config_of(&file, OPENAPI)
}

#[test]
fn the_openapi_links_stay_within_max_bytes() {
    // Links were written after the size check: 256 sources linking to 16 targets of 64
    // parameters named by a 400-character field made a 231 MB document before it was refused
    // (a review's measurement). Links stop where the document would pass max_bytes now.
    let text = long_links_config(400, 256);
    let t = Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
    let start = Instant::now();
    let document = json2grpc::core::openapi::render(&t, 8 << 20).unwrap();
    eprintln!("OpenAPI with links of 64 long parameters: {} bytes in {:?}", document.len(), start.elapsed());
    assert!(document.len() <= 8 << 20);
    let text = String::from_utf8(document).unwrap();
    assert!(text.matches("\"operationId\":\"q.S.T").count() > 16, "links were written up to the bound");
}

/// `2^steps` field names of `1 + 3 * steps` characters (`f`, then blocks of 3 of `a-z0-9`)
/// whose FNV-1a hashes share their low 16 bits: the low bits of FNV's state depend on nothing
/// above them, so two blocks that take one 16-bit state to the same next one can be chosen
/// at every step (Joux's multicollision), found by trying the 46,656 blocks. Hashed as `str`
/// (the schema's name interning: the bytes, then 0xff), or if `as_bytes` as `[u8]` (the
/// codec's plans, which every JSON key is looked up in: the length as 8 bytes, then the bytes).
fn fnv_colliding_names(steps: u32, as_bytes: bool) -> Vec<String> {
    const PRIME: u64 = 0x0100_0000_01b3;
    let step = |state: u64, bytes: &[u8]| bytes.iter().fold(state, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    let alphabet: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = 0xcbf2_9ce4_8422_2325;
    if as_bytes {
        state = step(state, &(1 + 3 * steps as usize).to_ne_bytes());
    }
    state = step(state, b"f");
    let mut names = vec![String::from("f")];
    for _ in 0..steps {
        let mut seen = std::collections::HashMap::new();
        let (a, b, next) = alphabet
            .iter()
            .flat_map(|&x| alphabet.iter().flat_map(move |&y| alphabet.iter().map(move |&z| [x, y, z])))
            .find_map(|block| {
                let next = step(state, &block);
                seen.insert(next & 0xffff, block).and_then(|other| (other != block).then_some((other, block, next)))
            })
            .unwrap();
        // Both blocks reach states equal in their low 16 bits; the rest of the state differs,
        // which the low bits of what follows never see.
        assert_eq!(step(state, &a) & 0xffff, next & 0xffff);
        state = next;
        names = names
            .iter()
            .flat_map(|n| [a, b].map(|block| format!("{n}{}", std::str::from_utf8(&block).unwrap())))
            .collect();
    }
    names
}

/// A proto3 message `q.M0` of string fields named `names`, a body naming every field, and the
/// fastest of three: the transcoder built, the body encoded and the message printed back.
fn named_fields(names: &[String]) -> Duration {
    let mut file = file_of(b"h.proto", b"proto3");
    let mut message = Vec::new();
    len_field(1, b"M0", &mut message);
    for (name, n) in names.iter().zip(field_numbers()) {
        len_field(2, &string_field(name, n), &mut message);
    }
    len_field(4, &message, &mut file);
    let text = with_service(file);
    let body = format!("{{{}}}", names.iter().map(|n| format!(r#""{n}":"v""#)).collect::<Vec<_>>().join(","));
    round_trips(&text, body.as_bytes(), |_, json| assert_eq!(json.len(), body.len()))
}

#[test]
fn names_a_set_chooses_to_collide_cost_what_any_names_cost() {
    // The maps keyed by a set's names hashed them with FNV-1a, unseeded: 32,768 field names
    // sharing the low 16 bits of their hash fell in one chain of buckets. As `str`, the
    // schema's interning walked it while linking; as `[u8]`, the codec plan's build and the
    // lookup of every JSON key a client sends (the chain's length in probes each).
    let plain: Vec<String> = (0..1 << 15).map(|i| format!("f{i:0>45}")).collect();
    let plain_took = named_fields(&plain);
    for (what, as_bytes) in [("str", false), ("[u8]", true)] {
        let colliding = fnv_colliding_names(15, as_bytes);
        assert_eq!((colliding.len(), colliding[0].len()), (plain.len(), plain[0].len()));
        let took = named_fields(&colliding);
        eprintln!("32,768 fields of one message: names colliding under FNV as {what} {took:?}, plain {plain_took:?}");
        assert!(took < plain_took * 3, "colliding as {what}: {took:?}; plain: {plain_took:?}");
    }
}

/// The fastest of three parses of a configuration of `keys` top-level keys none of which is
/// known: every key is read (spellings compared) before the first unknown one is refused.
fn unknown_keys(keys: usize) -> Duration {
    let text = format!("{{{}}}", (0..keys).map(|i| format!(r#""k{i}":1"#)).collect::<Vec<_>>().join(","));
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let error = json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap_err();
            assert!(error.to_string().contains("unknown field"), "{error}");
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn a_configuration_object_costs_time_linear_in_its_keys() {
    // Each key's snake_case spelling was compared with every earlier key's (50,000 keys: 1.25
    // billion comparisons) to find one given in both spellings. Taking turns, the fastest of
    // each: a burst of load elsewhere does not land on one size only.
    let (mut few, mut many) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        few = few.min(unknown_keys(5_000));
        many = many.min(unknown_keys(50_000));
    }
    eprintln!("configuration of unknown keys: 5,000 {few:?}, 50,000 {many:?}");
    assert!(many < few * 30, "5,000 keys: {few:?}; 50,000 keys: {many:?}");
}
