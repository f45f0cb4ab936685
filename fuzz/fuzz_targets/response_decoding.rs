//! Arbitrary bytes as a gRPC response body → `ResponseTranscoder` as the filter makes it
//! (`Transcoder::response`: fast codec where it applies) for unary, `response_body`,
//! HttpBody, server streams in the three stream formats and bidi, fed whole and in random chunks,
//! then `finish` with a status read by `GrpcStatus::from_metadata` from arbitrary
//! `grpc-status` / `grpc-message` / `grpc-status-details-bin` values. Checks beyond "no panic":
//! - the output and the outcome do not depend on the chunking;
//! - a JSON response (unary, JSON array, each NDJSON line, each SSE event) is valid JSON, and so
//!   is every error body;
//! - differential, for plain unary responses: each message printed by the filter and by the
//!   reflection reference (`reflect_json::binary_to_json`) gives the same outcome and, on
//!   success, the same JSON values.
//!
//! Input: `[binding, flags, n_status, n_message, n_details_hi, n_details_lo, status…, message…,
//! details…, body…]`. `flags`: bits 0-1 transcoder (stream format), bits 2-3 grpc-encoding,
//! bits 4-6 which status headers are present, bit 7 the body is one unframed message (callout).
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use json2grpc::core::error::Error;
use json2grpc::core::response::grpc_status::GrpcStatus;
use json2grpc::testing::reflect_json::binary_to_json;
use json2grpc::core::response::{ResponseTranscoder, StreamFormat};
use json2grpc_fuzz::{
    body_messages, chunks, json_value, known_finding, map_field_with_wrong_wire_type, message, same_json, transcoder,
    Rng,
};
use libfuzzer_sys::fuzz_target;

/// Requests whose bindings are used: unary, response_body, HttpBody, server stream, bidi,
/// Empty, flash-sale stream and HttpBody, flash-sale unary.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/things/1"),
    ("GET", "/v1/nested-response/1"),
    ("GET", "/v1/download/1"),
    ("GET", "/v1/stream/1"),
    ("POST", "/v1/chat"),
    ("DELETE", "/v1/things/1"),
    ("GET", "/v1/inventory:watch"),
    ("GET", "/v1/inventory:export"),
    ("GET", "/v1/inventory/sku-1"),
    ("GET", "/v1/orders/o-1"),
];

const ENCODINGS: &[Option<&str>] = &[None, Some("identity"), Some("gzip"), None];

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

fuzz_target!(init: json2grpc_fuzz::init(), |data: &[u8]| {
    let [route, flags, n_status, n_message, d_hi, d_lo, rest @ ..] = data else { return };
    let mut rest = rest;
    let status_header = take(&mut rest, usize::from(*n_status % 8));
    let message_header = take(&mut rest, usize::from(*n_message));
    let details_header = take(&mut rest, (usize::from(*d_hi) << 8 | usize::from(*d_lo)) % 2048);
    let body = rest;

    let t = transcoder(usize::from(flags & 3));
    let (method, path) = ROUTES[usize::from(*route) % ROUTES.len()];
    let (binding, _) = t.router.lookup(method, path).unwrap_or_else(|| panic!("fixture route {method} {path}"));
    let encoding = ENCODINGS[usize::from(flags >> 2 & 3)];

    let status = || {
        GrpcStatus::from_metadata(
            &t.codec,
            (flags & 0x10 != 0).then_some(status_header),
            (flags & 0x20 != 0).then_some(message_header),
            (flags & 0x40 != 0).then_some(details_header),
        )
    };
    let error_body = status().into_error().to_json();
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&error_body) {
        panic!("error body is not JSON ({e}): {}", String::from_utf8_lossy(&error_body));
    }

    let output = message(t.schema.message_name(binding.method.output));
    if body_messages(body, flags & 0x80 == 0).into_iter().any(|m| map_field_with_wrong_wire_type(&output, m)) {
        return;
    }
    let filter = || t.response(&binding, t.config.max_response_body_size, encoding);
    // As the filter does: the first error stops the response; a stream that already sent
    // messages is closed with an error element (`abort`), otherwise the error replaces it.
    let run = |new: &dyn Fn() -> ResponseTranscoder, pieces: &[&[u8]]| -> (Vec<u8>, Result<(), Error>, bool) {
        let mut r = new();
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in pieces {
            result = if flags & 0x80 != 0 { r.push_message(piece, &mut out) } else { r.push_framed(piece, &mut out) };
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = r.finish(status(), &mut out);
        }
        let aborted = match &result {
            Err(e) => r.abort(e, &mut out),
            Ok(()) => false,
        };
        (out, result, aborted)
    };

    let whole = run(&filter, &[body]);
    if flags & 0x80 == 0 {
        let mut rng = Rng::new(data);
        let chunked = run(&filter, &chunks(body, &mut rng));
        assert!(
            whole.0 == chunked.0,
            "output depends on chunking:\nwhole:   {:?}\nchunked: {:?}",
            String::from_utf8_lossy(&whole.0),
            String::from_utf8_lossy(&chunked.0)
        );
        assert_eq!(
            whole.1.as_ref().map_err(|e| (e.http_status, e.code)),
            chunked.1.as_ref().map_err(|e| (e.http_status, e.code)),
            "outcome depends on chunking"
        );
        assert_eq!(whole.2, chunked.2, "abort depends on chunking");
    }

    // Differential with the reflection reference (prost-reflect decoding, serde printing),
    // message by message, for plain unary responses: the same outcome, and on success the same
    // JSON values. No limits on the filter's side: the reference has none.
    let r = filter();
    if !binding.method.server_streaming && binding.response_body.is_none() && !r.is_raw() {
        let ok = || GrpcStatus::from_metadata(&t.codec, Some(b"0"), None, None);
        for m in body_messages(body, flags & 0x80 == 0) {
            let mut unlimited =
                ResponseTranscoder::new(&t.codec, &binding, &t.config.print_options, u32::MAX, None, None);
            let mut a = Vec::new();
            let fast = unlimited.push_message(m, &mut a).and_then(|()| unlimited.finish(ok(), &mut a));
            let mut b = Vec::new();
            let reference = binary_to_json(&output, m, &t.config.print_options, &mut b);
            match (&fast, &reference) {
                (Err(e), _) | (_, Err(e)) if known_finding(&e.message) => {}
                (Ok(()), Ok(())) => {
                    let (a, b) = (json_value(&a).unwrap(), json_value(&b).unwrap());
                    if let Err(diff) = same_json(&a, &b) {
                        panic!("filter and reflection print differently: {diff}\nfilter:     {a}\nreflection: {b}");
                    }
                }
                (Err(_), Err(_)) => {}
                (Ok(()), Err(e)) => panic!("filter prints a message the reflection reference refuses: {e}"),
                (Err(e), Ok(())) => panic!("filter refuses a message the reflection reference prints: {e}"),
            }
        }
    }
    let (out, result, aborted) = whole;
    if let Err(e) = &result {
        check_json("error body", &e.to_json(), &[]);
        // Not aborted: the error body replaces the output. Aborted: the stream output must
        // still be well-formed, checked below.
        if !aborted {
            return;
        }
    }
    if r.is_raw() {
        return;
    }
    json_output(&r, t.config.print_options.add_whitespace, &out);
});

fn check_json(what: &str, text: &[u8], all: &[u8]) -> serde_json::Value {
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(v) => v,
        Err(e) => panic!(
            "{what} is not valid JSON ({e}): {:?}\nwhole output: {:?}",
            String::from_utf8_lossy(text),
            String::from_utf8_lossy(all)
        ),
    }
}

/// The JSON values of a response (one for unary, the elements of a stream), checking the
/// stream format. Pretty-printed NDJSON/SSE (one element spans lines) is not split.
fn json_output(r: &ResponseTranscoder, pretty: bool, out: &[u8]) -> Vec<serde_json::Value> {
    if !r.is_streaming() {
        return vec![check_json("unary response", out, out)];
    }
    let format = match &*r.content_type() {
        "text/event-stream" => StreamFormat::ServerSentEvents,
        "application/x-ndjson" => StreamFormat::NewlineDelimited,
        _ => StreamFormat::JsonArray,
    };
    match format {
        StreamFormat::JsonArray => match check_json("JSON-array stream", out, out) {
            serde_json::Value::Array(items) => items,
            other => panic!("JSON-array stream is not an array: {other}"),
        },
        // An empty stream is no line / no event.
        _ if pretty || out.is_empty() => Vec::new(),
        StreamFormat::NewlineDelimited => {
            let text = out.strip_suffix(b"\n").unwrap_or_else(|| {
                panic!("NDJSON output does not end with a newline: {:?}", String::from_utf8_lossy(out))
            });
            text.split(|&b| b == b'\n').map(|line| check_json("NDJSON line", line, out)).collect()
        }
        StreamFormat::ServerSentEvents => {
            let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("SSE output is not UTF-8: {e}"));
            let text = text
                .strip_suffix("\n\n")
                .unwrap_or_else(|| panic!("SSE output does not end with a blank line: {text:?}"));
            text.split("\n\n")
                .map(|event| {
                    let data = event.strip_prefix("event: error\n").unwrap_or(event);
                    let json =
                        data.strip_prefix("data: ").unwrap_or_else(|| panic!("SSE event without data: {event:?}"));
                    assert!(!json.contains('\n'), "SSE data spans several lines: {event:?}");
                    check_json("SSE event data", json.as_bytes(), out)
                })
                .collect()
        }
    }
}
