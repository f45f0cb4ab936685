//! Arbitrary HTTP method and path-with-query → `Transcoder::route`; for `Transcode` plans the
//! rest of the input is the body: `request_message` for unary/server-streaming methods, the
//! client-stream splitter (`request_stream` / `push_request_stream` / `finish_request_stream`)
//! for client-streaming ones. Checks beyond "no panic":
//! - every request message built decodes as the method's input type;
//! - where the body is the whole message and the URL binds nothing, the filter's request (fast
//!   codec) equals the reflection reference's (`reflect_json::parse_message`): same message, or both
//!   refused with the same HTTP status;
//! - a client stream gives the same frames (or the same error status) whether the body arrives
//!   whole or in random chunks, and every frame decodes as the input type.
//!
//! Input (lines): `OPTIONS\nMETHOD\nPATH?QUERY\nBODY…`. OPTIONS byte 0 picks the transcoder
//! configuration, byte 1 the content-type, all of it seeds the chunk sizes.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use json2grpc::core::error::Error;
use json2grpc::testing::reflect_json::parse_message;
use json2grpc::core::request::{Decision, RequestPlan};
use json2grpc::core::route::router::BodyRule;
use json2grpc::core::transcoder::Transcoder;
use json2grpc_fuzz::{chunks, known_finding, message, pool, same_message, transcoder, Rng};
use libfuzzer_sys::fuzz_target;
use prost_reflect::{DynamicMessage, MessageDescriptor};

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-ndjson"),
    Some("application/grpc+proto"),
    Some("text/csv; charset=utf-8"),
    Some("application/jsonl"),
];

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(init: json2grpc_fuzz::init(), |data: &[u8]| {
    let (options, rest) = split_line(data);
    let (method, rest) = split_line(rest);
    let (path, body) = split_line(rest);
    let t = transcoder(usize::from(options.first().copied().unwrap_or(0)));
    let ct = CONTENT_TYPES[usize::from(options.get(1).copied().unwrap_or(0)) % CONTENT_TYPES.len()];
    let method = String::from_utf8_lossy(method);
    let path = String::from_utf8_lossy(path);
    let Decision::Transcode(plan) = t.route(&method, &path, ct) else { return };
    let input = message(t.schema.message_name(plan.method().input));
    if plan.method().client_streaming {
        let mut rng = Rng::new(options);
        let whole = client_stream(t, &plan, ct, &[body]);
        let pieces = chunks(body, &mut rng);
        let chunked = client_stream(t, &plan, ct, &pieces);
        match (&whole, &chunked) {
            (Ok(a), Ok(b)) => {
                assert!(a == b, "client stream frames depend on chunking: {} vs {} bytes", a.len(), b.len());
                check_frames(&input, a);
            }
            (Err(a), Err(b)) => assert_eq!(
                (a.http_status, a.code),
                (b.http_status, b.code),
                "client stream errors depend on chunking: {a} / {b}"
            ),
            _ => panic!(
                "client stream result depends on chunking: whole {:?} vs chunked {:?}",
                whole.as_ref().map(Vec::len).map_err(ToString::to_string),
                chunked.as_ref().map(Vec::len).map_err(ToString::to_string)
            ),
        }
    } else {
        let filter = t.request_message(&plan, body, ct);
        if let Ok(bytes) = &filter {
            if let Err(e) = DynamicMessage::decode(input.clone(), bytes.as_slice()) {
                panic!("request message does not decode as {}: {e}", input.full_name());
            }
        }
        // Differential with the reflection reference where the body is the whole message and
        // the URL binds nothing. A body of only whitespace is refused by the request layer (as
        // Envoy does), not by the codec the reference models.
        let binding = &plan.binding;
        let only_whitespace =
            !binding.body_is_http_body && !body.is_empty() && body.iter().all(u8::is_ascii_whitespace);
        if only_whitespace {
            assert!(filter.is_err(), "a body of only whitespace is a 400");
        }
        // With json2grpc.rest.field_behavior the filter drops and requires fields the reference
        // knows nothing of.
        if binding.variables.is_empty()
            && !t.config.rest.field_behavior
            && !only_whitespace
            && !path.contains('?')
            && binding.body == BodyRule::Whole
            && !binding.body_is_http_body
        {
            let reference = parse_message(&input, body, &t.parse_options);
            match (&filter, &reference) {
                (Ok(a), Ok(b)) => {
                    let a = DynamicMessage::decode(input.clone(), a.as_slice()).unwrap();
                    if let Err(diff) = same_message(pool(), &a, b) {
                        panic!("filter and reflection requests differ: {diff}");
                    }
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.http_status, b.http_status, "different refusals: filter {a} / reflection {b}")
                }
                (Ok(_), Err(e)) | (Err(e), Ok(_)) if known_finding(&e.message) => {}
                (Ok(_), Err(e)) => panic!("filter accepts a request the reflection path refuses: {e}"),
                (Err(e), Ok(_)) => panic!("filter refuses a request the reflection path accepts: {e}"),
            }
        }
    }
});

fn client_stream(t: &Transcoder, plan: &RequestPlan, ct: Option<&str>, pieces: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let mut stream = t.request_stream(ct);
    let mut out = Vec::new();
    for piece in pieces {
        t.push_request_stream(&mut stream, plan, piece, &mut out)?;
    }
    t.finish_request_stream(&mut stream, plan, &mut out)?;
    Ok(out)
}

fn check_frames(input: &MessageDescriptor, mut framed: &[u8]) {
    while !framed.is_empty() {
        assert!(framed.len() >= 5 && framed[0] == 0, "bad frame header");
        let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        let message = &framed[5..5 + len];
        if let Err(e) = DynamicMessage::decode(input.clone(), message) {
            panic!("client stream frame does not decode as {}: {e}", input.full_name());
        }
        framed = &framed[5 + len..];
    }
}
