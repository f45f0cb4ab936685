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
    let mut file = Vec::new();
    len_field(1, b"q.proto", &mut file);
    len_field(2, b"q", &mut file);
    len_field(12, b"proto2", &mut file);
    let numbers = (1..).filter(|n| !(19_000..20_000).contains(n));
    for m in 0..messages {
        let mut message = Vec::new();
        len_field(1, format!("M{m}").as_bytes(), &mut message);
        for (i, n) in numbers.clone().take(fields).enumerate() {
            let mut field = Vec::new();
            // Names distinct across messages, as in one message (each is one allocation).
            let name = if m == 0 { format!("f{n}") } else { format!("m{m}f{n}") };
            len_field(1, name.as_bytes(), &mut field);
            varint_field(3 << 3, n, &mut field);
            varint_field(4 << 3, 1, &mut field);
            varint_field(5 << 3, 9, &mut field);
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
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let t =
                Transcoder::for_serving(json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap()).unwrap();
            let Decision::Transcode(plan) = t.route("POST", "/q.S/Get", Some("application/json")) else {
                panic!("not routed")
            };
            let grpc = t.request_message(&plan, br#"{"f1": "a", "f2": "b"}"#, None).unwrap();
            assert_eq!(grpc, b"\x0a\x01a\x12\x01b");
            let mut json = Vec::new();
            t.codec.binary_to_json(plan.method().output, &grpc, &t.config.print_options, &mut json).unwrap();
            assert_eq!(json, br#"{"f1":"a","f2":"b"}"#);
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
    let last = (1..).filter(|n| !(19_000..20_000).contains(n)).nth(fields - 1).unwrap();
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
