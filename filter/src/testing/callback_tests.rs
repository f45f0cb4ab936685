//! The proxy-wasm callbacks driven the way Envoy drives them, against the fake Envoy of
//! [`mock_host`](crate::testing::mock_host): what the client sees (local replies, response headers and
//! bodies) and what the upstream receives (request headers and body, callouts).
// Host-side only: on wasm32 the ABI functions are the runtime's imports, not the mock's.
#![cfg(not(target_arch = "wasm32"))]

use crate::wasm::abi::{Action, HttpContext, RootContext};
use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{json, Value};

use crate::testing::fixtures::TEST_DESCRIPTOR_SET;
use crate::testing::mock_host::{self, with, HttpCall, LocalReply, INTERNAL_FAILURE};
use crate::testing::reflect_pool::load_pool;
use crate::wasm::host::{Buffer, Map};
use crate::wasm::root::Root;

mod rest;

// --- fixtures ---------------------------------------------------------------------------------

fn pool() -> DescriptorPool {
    load_pool(TEST_DESCRIPTOR_SET).unwrap()
}

/// The unit-test schema's config, with `extra` keys merged in.
fn config(extra: Value) -> Value {
    let mut config = json!({
        "proto_descriptor_bin": base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET),
        "services": ["test.v1.Things"],
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut config, extra) {
        base.extend(extra);
    }
    config
}

/// A fresh Envoy for this test, with the filter's logger on `proxy_log`.
fn setup() {
    mock_host::reset();
    crate::wasm::logger::install();
}

/// Delivers `config` as the plugin configuration and calls `on_configure`.
fn configure(root: &mut Root, config: &Value) -> bool {
    let text = serde_json::to_vec(config).unwrap();
    with(|h| h.set_buffer(Buffer::PluginConfiguration, &text));
    root.on_configure(text.len())
}

/// A root configured with the test config plus `extra`.
fn root_with(extra: Value) -> Root {
    setup();
    let mut root = Root::default();
    assert!(configure(&mut root, &config(extra)), "{:?}", logs(0));
    root
}

fn root() -> Root {
    root_with(json!({}))
}

/// A new request with these request headers.
fn request(root: &Root, headers: &[(&str, &str)]) -> Box<dyn HttpContext> {
    with(|h| h.set_map(Map::RequestHeaders, headers));
    root.create_http_context(2)
}

/// One request body chunk, buffered as Envoy does while the filter pauses.
fn request_chunk(ctx: &mut dyn HttpContext, chunk: &[u8], end: bool) -> Action {
    let size = with(|h| h.append_buffer(Buffer::HttpRequestBody, chunk));
    ctx.on_http_request_body(size, end)
}

fn response_chunk(ctx: &mut dyn HttpContext, chunk: &[u8], end: bool) -> Action {
    let size = with(|h| h.append_buffer(Buffer::HttpResponseBody, chunk));
    ctx.on_http_response_body(size, end)
}

fn response_headers(ctx: &mut dyn HttpContext, headers: &[(&str, &str)], end: bool) -> Action {
    with(|h| h.set_map(Map::ResponseHeaders, headers));
    ctx.on_http_response_headers(headers.len(), end)
}

fn response_trailers(ctx: &mut dyn HttpContext, trailers: &[(&str, &str)]) -> Action {
    with(|h| h.set_map(Map::ResponseTrailers, trailers));
    ctx.on_http_response_trailers(trailers.len())
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn map(map: Map) -> Vec<(String, String)> {
    with(|h| h.map(map).to_vec())
}

fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

fn buffer(buffer: Buffer) -> Option<Vec<u8>> {
    with(|h| h.buffer(buffer).map(<[u8]>::to_vec))
}

fn replies() -> Vec<LocalReply> {
    with(|h| h.local_replies.clone())
}

/// The one local reply sent so far.
fn reply() -> LocalReply {
    let replies = replies();
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.into_iter().next().unwrap()
}

fn calls() -> Vec<HttpCall> {
    with(|h| h.http_calls.clone())
}

fn call() -> HttpCall {
    let calls = calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls.into_iter().next().unwrap()
}

fn logs(level: u32) -> Vec<String> {
    with(|h| h.logs_at(level))
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// Asserts a local JSON error reply: HTTP status, gRPC code; returns its message.
fn assert_error_reply(reply: &LocalReply, http_status: u32, code: i64) -> String {
    assert_eq!(reply.status, http_status, "{reply:?}");
    assert_eq!(reply.headers, pairs(&[("content-type", "application/json")]));
    let body = json_body(&reply.body);
    assert_eq!(body["code"], json!(code), "{body}");
    assert_eq!(body["details"], json!([]), "{body}");
    body["message"].as_str().unwrap().to_string()
}

fn message(name: &str, json: Value) -> DynamicMessage {
    let desc = pool().get_message_by_name(name).unwrap();
    DynamicMessage::deserialize(desc, json).unwrap()
}

/// A message in gRPC's 5-byte framing.
fn framed(name: &str, json: Value) -> Vec<u8> {
    let bytes = message(name, json).encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&bytes);
    out
}

/// A message as proto3 JSON, for comparisons (map order does not matter; the `Debug` of a
/// `DynamicMessage` of a recursive type overflows the stack, so never compare those directly).
fn to_json(message: &DynamicMessage) -> Value {
    serde_json::to_value(message).unwrap()
}

/// `json` as a `name` would print it (defaults dropped, names canonical).
fn canonical(name: &str, json: Value) -> Value {
    to_json(&message(name, json))
}

/// Decodes exactly one uncompressed gRPC frame holding a `name`, as JSON.
fn unframe(name: &str, bytes: &[u8]) -> Value {
    assert!(bytes.len() >= 5, "{bytes:?}");
    assert_eq!(bytes[0], 0, "compressed flag");
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    assert_eq!(len, bytes.len() - 5, "frame length");
    let desc = pool().get_message_by_name(name).unwrap();
    to_json(&DynamicMessage::decode(desc, &bytes[5..]).unwrap())
}

/// A `google.rpc.Status` as `grpc-status-details-bin` (unpadded base64, as gRPC sends it).
fn details_bin(status: Value) -> String {
    let bytes = message("google.rpc.Status", status).encode_to_vec();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

const POST_HEADERS: &[(&str, &str)] = &[
    (":method", "POST"),
    (":path", "/v1/things"),
    (":authority", "api.example.com"),
    (":scheme", "http"),
    ("content-type", "application/json"),
    ("content-length", "40"),
    ("x-request-id", "r1"),
];

const CREATE_BODY: &[u8] = br#"{"id":"t1","tags":["a","b"],"labels":{}}"#;

/// A POST whose headers and body were transcoded: the request went upstream as gRPC.
fn transcoded_post(root: &Root) -> Box<dyn HttpContext> {
    transcoded_post_with(root, Action::Continue)
}

/// [`transcoded_post`], the headers callback answering `headers` (Pause when held).
fn transcoded_post_with(root: &Root, headers: Action) -> Box<dyn HttpContext> {
    let mut ctx = request(root, POST_HEADERS);
    assert_eq!(ctx.on_http_request_headers(7, false), headers);
    with(|h| h.release(Map::RequestHeaders));
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    assert!(replies().is_empty());
    ctx
}

// --- configuration ----------------------------------------------------------------------------

#[test]
fn invalid_config_is_refused_naming_the_field_and_requests_pass_through() {
    setup();
    let mut root = Root::default();
    assert!(!configure(&mut root, &config(json!({"max_request_body_size": "lots"}))));
    let errors = logs(4);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("field `max_request_body_size`"), "{errors:?}");

    // Nothing configured: requests are not touched.
    let mut ctx = request(&root, POST_HEADERS);
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
    assert_eq!(map(Map::RequestHeaders), pairs(POST_HEADERS));
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    assert_eq!(buffer(Buffer::HttpRequestBody), Some(CREATE_BODY.to_vec()));
    assert!(replies().is_empty() && calls().is_empty());
}

#[test]
fn a_refused_update_keeps_the_previous_configuration_serving() {
    setup();
    let mut root = Root::default();
    assert!(!configure(&mut root, &config(json!({"json2grpc": {"callout": {"timeout": 5}}}))));
    assert!(logs(4)[0].contains("field `json2grpc.callout.timeout`: unknown field"), "{:?}", logs(4));

    assert!(configure(&mut root, &config(json!({}))));
    assert!(logs(2).iter().any(|l| l.starts_with("configured 1 service(s), ")), "{:?}", logs(2));

    with(|h| h.logs.clear());
    assert!(!configure(&mut root, &json!({"services": ["test.v1.Things"]})));
    let errors = logs(4);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("`proto_descriptor_bin`"), "{errors:?}");

    // The next request is still transcoded with the accepted configuration.
    let mut ctx = request(&root, POST_HEADERS);
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
    assert_eq!(
        with(|h| h.get(Map::RequestHeaders, ":path").map(str::to_string)),
        Some("/test.v1.Things/Create".to_string())
    );
}

// --- request body path ------------------------------------------------------------------------

#[test]
fn post_headers_are_rewritten_and_the_body_becomes_a_framed_message() {
    let root = root();
    let mut ctx = request(&root, POST_HEADERS);
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
    assert_eq!(
        sorted(map(Map::RequestHeaders)),
        sorted(pairs(&[
            (":method", "POST"),
            (":path", "/test.v1.Things/Create"),
            (":authority", "api.example.com"),
            (":scheme", "http"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-request-id", "r1"),
            ("x-envoy-original-path", "/v1/things"),
            ("x-envoy-original-method", "POST"),
        ]))
    );
    // Envoy released the headers when the callback returned Continue.
    with(|h| h.release(Map::RequestHeaders));

    let (first, rest) = CREATE_BODY.split_at(10);
    assert_eq!(request_chunk(ctx.as_mut(), first, false), Action::Pause);
    assert_eq!(request_chunk(ctx.as_mut(), rest, false), Action::Pause);
    assert_eq!(buffer(Buffer::HttpRequestBody), Some(CREATE_BODY.to_vec()));
    // The last callback may carry no new bytes.
    assert_eq!(request_chunk(ctx.as_mut(), b"", true), Action::Continue);

    let body = buffer(Buffer::HttpRequestBody).unwrap();
    assert_eq!(
        unframe("test.v1.Everything", &body),
        canonical("test.v1.Everything", json!({"id": "t1", "tags": ["a", "b"]}))
    );
    assert!(replies().is_empty() && calls().is_empty());
}

#[test]
fn path_variables_and_a_body_field_make_one_message() {
    let root = root();
    let mut ctx = request(
        &root,
        &[(":method", "PATCH"), (":path", "/v1/things/t9?update_mask=tags"), ("content-type", "application/json")],
    );
    assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(
        with(|h| h.get(Map::RequestHeaders, ":path").map(str::to_string)),
        Some("/test.v1.Things/Update".to_string())
    );
    assert_eq!(request_chunk(ctx.as_mut(), br#"{"tags":["x"]}"#, true), Action::Continue);
    assert_eq!(
        unframe("test.v1.UpdateRequest", &buffer(Buffer::HttpRequestBody).unwrap()),
        canonical("test.v1.UpdateRequest", json!({"id": "t9", "item": {"tags": ["x"]}, "updateMask": "tags"}))
    );
}

#[test]
fn request_trailers_end_the_body() {
    let root = root();
    let mut ctx = request(&root, POST_HEADERS);
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, false), Action::Pause);
    with(|h| h.set_map(Map::RequestTrailers, &[("x-checksum", "1")]));
    assert_eq!(ctx.on_http_request_trailers(1), Action::Continue);
    assert_eq!(
        unframe("test.v1.Everything", &buffer(Buffer::HttpRequestBody).unwrap()),
        canonical("test.v1.Everything", json!({"id": "t1", "tags": ["a", "b"]}))
    );
}

#[test]
fn malformed_json_gets_a_400_and_the_body_is_not_replaced() {
    let root = root();
    let mut ctx = request(&root, POST_HEADERS);
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), br#"{"id": "#, true), Action::Pause);
    let message = assert_error_reply(&reply(), 400, 3);
    assert!(!message.is_empty());
    assert_eq!(buffer(Buffer::HttpRequestBody), Some(br#"{"id": "#.to_vec()));
    // Envoy runs the response callbacks for the local reply: untouched.
    assert_eq!(
        response_headers(ctx.as_mut(), &[(":status", "400"), ("content-type", "application/json")], false),
        Action::Continue
    );
    assert_eq!(map(Map::ResponseHeaders), pairs(&[(":status", "400"), ("content-type", "application/json")]));
    assert_eq!(response_chunk(ctx.as_mut(), b"{}", true), Action::Continue);
    assert_eq!(replies().len(), 1);
}

#[test]
fn a_declared_length_over_max_request_body_size_gets_413_at_the_headers() {
    let root = root_with(json!({"max_request_body_size": 16}));
    let headers =
        [(":method", "POST"), (":path", "/v1/things"), ("content-type", "application/json"), ("content-length", "17")];
    let mut ctx = request(&root, &headers);
    assert_eq!(ctx.on_http_request_headers(4, false), Action::Pause);
    assert_error_reply(&reply(), 413, 8);
    assert_eq!(map(Map::RequestHeaders), pairs(&headers));
    // The body callbacks of the refused request change nothing.
    assert_eq!(request_chunk(ctx.as_mut(), &[b'x'; 17], true), Action::Continue);
    assert_eq!(replies().len(), 1);
}

#[test]
fn a_body_at_the_limit_passes_and_one_growing_over_it_gets_413() {
    let root = root_with(json!({"max_request_body_size": 16}));
    let body = br#"{"id":"abcdefg"}"#;
    assert_eq!(body.len(), 16);
    let mut ctx = request(&root, &[(":method", "POST"), (":path", "/v1/things"), ("content-length", "16")]);
    assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), body, true), Action::Continue);
    assert!(replies().is_empty());
    assert_eq!(
        unframe("test.v1.Everything", &buffer(Buffer::HttpRequestBody).unwrap()),
        canonical("test.v1.Everything", json!({"id": "abcdefg"}))
    );

    mock_host::reset();
    let mut ctx = request(&root, &[(":method", "POST"), (":path", "/v1/things")]);
    assert_eq!(ctx.on_http_request_headers(2, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), br#"{"id":"ab"#, false), Action::Pause);
    assert!(replies().is_empty());
    assert_eq!(request_chunk(ctx.as_mut(), br#"cdefgh"}"#, false), Action::Pause);
    assert_error_reply(&reply(), 413, 8);
    assert_eq!(buffer(Buffer::HttpRequestBody), Some(br#"{"id":"abcdefgh"}"#.to_vec()));
}

// --- pass-through -----------------------------------------------------------------------------

#[test]
fn grpc_requests_pass_through_untouched() {
    let root = root();
    let headers = [
        (":method", "POST"),
        (":path", "/test.v1.Things/Create"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    let mut ctx = request(&root, &headers);
    assert_eq!(ctx.on_http_request_headers(4, false), Action::Continue);
    assert_eq!(map(Map::RequestHeaders), pairs(&headers));
    let grpc = framed("test.v1.Everything", json!({"id": "g"}));
    assert_eq!(request_chunk(ctx.as_mut(), &grpc, true), Action::Continue);
    assert_eq!(buffer(Buffer::HttpRequestBody), Some(grpc.clone()));
    let grpc_response = [(":status", "200"), ("content-type", "application/grpc")];
    assert_eq!(response_headers(ctx.as_mut(), &grpc_response, false), Action::Continue);
    assert_eq!(map(Map::ResponseHeaders), pairs(&grpc_response));
    assert_eq!(response_chunk(ctx.as_mut(), &grpc, false), Action::Continue);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
    assert_eq!(map(Map::ResponseTrailers), pairs(&[("grpc-status", "0")]));
    assert_eq!(buffer(Buffer::HttpResponseBody), Some(grpc));
    assert!(replies().is_empty() && calls().is_empty());
}

#[test]
fn unknown_paths_pass_through_untouched() {
    let root = root();
    for (headers, end) in [
        (&[(":method", "GET"), (":path", "/healthz"), (":authority", "a")][..], true),
        (&[(":method", "POST"), (":path", "/v2/things"), ("content-type", "application/json")][..], false),
    ] {
        mock_host::reset();
        with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
        let mut ctx = request(&root, headers);
        assert_eq!(ctx.on_http_request_headers(3, end), Action::Continue);
        assert_eq!(map(Map::RequestHeaders), pairs(headers));
        if !end {
            assert_eq!(request_chunk(ctx.as_mut(), b"{}", true), Action::Continue);
            assert_eq!(buffer(Buffer::HttpRequestBody), Some(b"{}".to_vec()));
        }
        assert!(replies().is_empty() && calls().is_empty());
    }
}

#[test]
fn reject_unknown_method_answers_404_json() {
    let root = root_with(json!({"request_validation_options": {"reject_unknown_method": true}}));
    let mut ctx = request(&root, &[(":method", "GET"), (":path", "/v1/nothing/here")]);
    assert_eq!(ctx.on_http_request_headers(2, true), Action::Pause);
    assert_error_reply(&reply(), 404, 5);
    assert!(calls().is_empty());
}

// --- bodyless requests: the callout -----------------------------------------------------------

const GET_HEADERS: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/v1/things/a1?page_size=3"),
    (":authority", "api.example.com"),
    (":scheme", "https"),
    ("authorization", "Bearer tok"),
    ("x-request-id", "req-7"),
    ("cookie", "session=secret"),
    ("user-agent", "curl/8"),
    ("x-tenant", "acme"),
];

/// A bodyless GET /v1/things/a1 whose callout is in flight; returns the call.
fn get_in_flight(root: &Root) -> (Box<dyn HttpContext>, HttpCall) {
    with(|h| h.set_property(&["xds", "cluster_name"], b"things-cluster"));
    let mut ctx = request(root, GET_HEADERS);
    assert_eq!(ctx.on_http_request_headers(9, true), Action::Pause);
    assert!(replies().is_empty(), "{:?}", replies());
    (ctx, call())
}

/// The callout's response arrives.
fn callout_response(
    ctx: &mut dyn HttpContext,
    token: u32,
    headers: &[(&str, &str)],
    body: &[u8],
    trailers: &[(&str, &str)],
) {
    with(|h| {
        h.set_map(Map::HttpCallResponseHeaders, headers);
        h.set_map(Map::HttpCallResponseTrailers, trailers);
        h.set_buffer(Buffer::HttpCallResponseBody, body);
    });
    ctx.on_http_call_response(token, headers.len(), body.len(), trailers.len());
}

const GRPC_OK: &[(&str, &str)] = &[(":status", "200"), ("content-type", "application/grpc")];

#[test]
fn bodyless_get_calls_the_route_cluster_with_a_grpc_request() {
    let root = root();
    let (mut ctx, call) = get_in_flight(&root);
    assert_eq!(call.upstream, "things-cluster");
    assert_eq!(
        call.headers,
        pairs(&[
            (":method", "POST"),
            (":path", "/test.v1.Things/Get"),
            (":authority", "api.example.com"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "15000m"),
            ("x-envoy-original-method", "GET"),
            ("x-envoy-original-path", "/v1/things/a1?page_size=3"),
            // Every request header a POST would carry upstream (not the pseudo-headers).
            ("authorization", "Bearer tok"),
            ("x-request-id", "req-7"),
            ("cookie", "session=secret"),
            ("user-agent", "curl/8"),
            ("x-tenant", "acme"),
        ])
    );
    assert_eq!(
        unframe("test.v1.GetRequest", &call.body),
        canonical("test.v1.GetRequest", json!({"id": "a1", "pageSize": 3}))
    );
    assert!(call.trailers.is_empty());
    assert_eq!(call.timeout_ms, 15_000);
    // The downstream request is left as it was.
    assert_eq!(map(Map::RequestHeaders), pairs(GET_HEADERS));

    let body = framed(
        "test.v1.Everything",
        json!({"id": "a1", "tags": ["x"], "scalars": {"fInt64": "5"}, "labels": {"k": "v"}}),
    );
    callout_response(ctx.as_mut(), call.token, GRPC_OK, &body, &[("grpc-status", "0"), ("grpc-message", "")]);
    let reply = reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers, pairs(&[("content-type", "application/json")]));
    assert_eq!(
        json_body(&reply.body),
        json!({"id": "a1", "tags": ["x"], "scalars": {"fInt64": "5"}, "labels": {"k": "v"}})
    );
    assert_eq!(calls().len(), 1);
}

#[test]
fn configured_cluster_timeout_and_dropped_headers_win() {
    let root = root_with(json!({"json2grpc": {"callout": {
        "clusters": {"test.v1.Things": "pinned"},
        "timeout_ms": 2500,
        "forward_headers": ["X-Tenant"],
        "drop_headers": ["Cookie", "user-agent"],
    }}}));
    let (_ctx, call) = get_in_flight(&root);
    assert_eq!(call.upstream, "pinned");
    assert_eq!(call.timeout_ms, 2500);
    let get = |name: &str| call.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("grpc-timeout"), ["2500m"]);
    assert_eq!(get("x-tenant"), ["acme"]);
    assert_eq!(get("authorization"), ["Bearer tok"]);
    assert!(get("cookie").is_empty() && get("user-agent").is_empty());
}

#[test]
fn the_services_metadata_of_a_bodyless_call_becomes_reply_headers() {
    let root = root();
    let answer: &[(&str, &str)] = &[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("x-resp", "one"),
        ("grpc-accept-encoding", "gzip"),
        ("location", "/v1/things/a1"),
    ];
    let (mut ctx, call) = get_in_flight(&root);
    let body = framed("test.v1.Everything", json!({"id": "a1"}));
    callout_response(ctx.as_mut(), call.token, answer, &body, &[("grpc-status", "0"), ("x-trailing", "t")]);
    let ok = reply();
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers,
        pairs(&[("content-type", "application/json"), ("x-resp", "one"), ("location", "/v1/things/a1")])
    );
    // A trailers-only error keeps the service's metadata too; its grpc-* headers do not show.
    mock_host::reset();
    let (mut ctx, call) = get_in_flight(&root);
    let error: &[(&str, &str)] =
        &[(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "5"), ("x-resp", "two")];
    callout_response(ctx.as_mut(), call.token, error, b"", &[]);
    let failed = reply();
    assert_eq!(failed.status, 404);
    assert_eq!(failed.headers, pairs(&[("content-type", "application/json"), ("x-resp", "two")]));
}

#[test]
fn callout_grpc_error_becomes_its_http_status() {
    let root = root();
    let (mut ctx, call) = get_in_flight(&root);
    callout_response(
        ctx.as_mut(),
        call.token,
        GRPC_OK,
        b"",
        &[("grpc-status", "5"), ("grpc-message", "thing%20a1%20not%20found")],
    );
    let reply = reply();
    assert_eq!(assert_error_reply(&reply, 404, 5), "thing a1 not found");
}

#[test]
fn callout_trailers_only_error() {
    let root = root();
    let (mut ctx, call) = get_in_flight(&root);
    callout_response(
        ctx.as_mut(),
        call.token,
        &[(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "7"), ("grpc-message", "denied")],
        b"",
        &[],
    );
    assert_eq!(assert_error_reply(&reply(), 403, 7), "denied");
}

#[test]
fn callout_error_details_reach_the_json() {
    let root = root();
    let (mut ctx, call) = get_in_flight(&root);
    let detail = json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "STOCK",
        "domain": "shop.example",
        "metadata": {"sku": "A1"},
    });
    let bin = details_bin(json!({"code": 9, "message": "out of stock", "details": [detail.clone()]}));
    callout_response(
        ctx.as_mut(),
        call.token,
        GRPC_OK,
        b"",
        &[("grpc-status", "9"), ("grpc-message", "ignored%20for%20details"), ("grpc-status-details-bin", &bin)],
    );
    let reply = reply();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.headers, pairs(&[("content-type", "application/json")]));
    assert_eq!(json_body(&reply.body), json!({"code": 9, "message": "out of stock", "details": [detail]}));
}

#[test]
fn callout_answered_by_envoy_instead_of_the_service() {
    type Headers = &'static [(&'static str, &'static str)];
    let cases: [(Headers, u32, i64, &str); 3] = [
        (
            &[(":status", "503"), ("content-type", "text/plain")],
            503,
            14,
            "the upstream answered HTTP 503 instead of gRPC",
        ),
        (
            &[(":status", "504"), ("content-type", "text/plain")],
            504,
            4,
            "the gRPC call timed out (json2grpc.callout.timeout_ms)",
        ),
        // A reset: no response at all.
        (
            &[],
            503,
            14,
            "the gRPC call for the bodyless request failed before an answer: the connection was reset or refused, \
             or the answer was larger than Envoy buffers for a filter's own call (32 MiB)",
        ),
    ];
    for (headers, http, code, text) in cases {
        let root = root();
        let (mut ctx, call) = get_in_flight(&root);
        callout_response(ctx.as_mut(), call.token, headers, b"upstream connect error", &[]);
        assert_eq!(assert_error_reply(&reply(), http, code), text);
    }
}

#[test]
fn no_cluster_answers_503_without_a_call() {
    let root = root();
    let mut ctx = request(&root, GET_HEADERS);
    assert_eq!(ctx.on_http_request_headers(9, true), Action::Pause);
    let message = assert_error_reply(&reply(), 503, 14);
    assert!(message.starts_with("no upstream cluster for test.v1.Things"), "{message}");
    assert!(calls().is_empty());

    // An empty route cluster is no cluster either.
    mock_host::reset();
    with(|h| h.set_property(&["xds", "cluster_name"], b""));
    let mut ctx = request(&root, GET_HEADERS);
    assert_eq!(ctx.on_http_request_headers(9, true), Action::Pause);
    assert_error_reply(&reply(), 503, 14);
    assert!(calls().is_empty());
}

#[test]
fn a_call_envoy_refuses_answers_503() {
    let root = root();
    with(|h| {
        h.set_property(&["xds", "cluster_name"], b"gone");
        h.http_call_status = INTERNAL_FAILURE;
    });
    let mut ctx = request(&root, GET_HEADERS);
    assert_eq!(ctx.on_http_request_headers(9, true), Action::Pause);
    let message = assert_error_reply(&reply(), 503, 14);
    assert!(message.starts_with("cannot call cluster \"gone\""), "{message}");
}

#[test]
fn a_response_to_another_token_is_ignored() {
    let root = root();
    let (mut ctx, call) = get_in_flight(&root);
    let body = framed("test.v1.Everything", json!({"id": "a1"}));
    callout_response(ctx.as_mut(), call.token + 1000, GRPC_OK, &body, &[("grpc-status", "0")]);
    assert!(replies().is_empty());
    callout_response(ctx.as_mut(), call.token, GRPC_OK, &body, &[("grpc-status", "0")]);
    assert_eq!(json_body(&reply().body), json!({"id": "a1"}));
}

#[test]
fn bodyless_delete_answers_empty_json() {
    let root = root();
    with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
    let mut ctx = request(&root, &[(":method", "DELETE"), (":path", "/v1/things/d1")]);
    assert_eq!(ctx.on_http_request_headers(2, true), Action::Pause);
    let call = call();
    assert_eq!(call.headers.get(1), Some(&(":path".to_string(), "/test.v1.Things/Delete".to_string())));
    // The request has no :authority: the cluster name stands in.
    assert_eq!(call.headers.get(2), Some(&(":authority".to_string(), "things".to_string())));
    assert_eq!(unframe("test.v1.GetRequest", &call.body), canonical("test.v1.GetRequest", json!({"id": "d1"})));
    callout_response(ctx.as_mut(), call.token, GRPC_OK, &[0, 0, 0, 0, 0], &[("grpc-status", "0")]);
    let reply = reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"{}");
}

#[test]
fn bodyless_server_stream_is_answered_once_as_an_array() {
    let root = root();
    with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
    let mut ctx = request(&root, &[(":method", "GET"), (":path", "/v1/stream/s1")]);
    assert_eq!(ctx.on_http_request_headers(2, true), Action::Pause);
    let call = call();
    assert_eq!(call.headers.get(1), Some(&(":path".to_string(), "/test.v1.Things/ServerStream".to_string())));
    let mut body = framed("test.v1.Everything", json!({"id": "m1"}));
    body.extend(framed("test.v1.Everything", json!({"id": "m2"})));
    callout_response(ctx.as_mut(), call.token, GRPC_OK, &body, &[("grpc-status", "0")]);
    let reply = reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers, pairs(&[("content-type", "application/json")]));
    assert_eq!(json_body(&reply.body), json!([{"id": "m1"}, {"id": "m2"}]));
}

// --- response path ----------------------------------------------------------------------------

const UPSTREAM_HEADERS: &[(&str, &str)] = &[
    (":status", "200"),
    ("content-type", "application/grpc"),
    ("grpc-encoding", "identity"),
    ("grpc-accept-encoding", "identity,deflate,gzip"),
    ("content-length", "20"),
    ("x-served-by", "pod-1"),
];

#[test]
fn grpc_response_becomes_json() {
    let root = root();
    let mut ctx = transcoded_post(&root);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    assert_eq!(
        map(Map::ResponseHeaders),
        pairs(&[(":status", "200"), ("content-type", "application/json"), ("x-served-by", "pod-1"),])
    );
    let body = framed(
        "test.v1.Everything",
        json!({"id": "t1", "colors": ["RED", "BLUE_GREEN"], "ts": "2024-01-02T03:04:05Z"}),
    );
    let (first, rest) = body.split_at(3);
    assert_eq!(response_chunk(ctx.as_mut(), first, false), Action::Pause);
    assert_eq!(response_chunk(ctx.as_mut(), rest, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0"), ("x-trace", "t")]), Action::Continue);
    assert_eq!(
        json_body(&buffer(Buffer::HttpResponseBody).unwrap()),
        json!({"id": "t1", "colors": ["RED", "BLUE_GREEN"], "ts": "2024-01-02T03:04:05Z"})
    );
    assert_eq!(map(Map::ResponseTrailers), pairs(&[("x-trace", "t")]));
    assert!(replies().is_empty());
}

#[test]
fn grpc_error_in_trailers_travels_in_the_body() {
    let root = root();
    let mut ctx = transcoded_post(&root);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    // A message, then the error: the error wins.
    let message = framed("test.v1.Everything", json!({"id": "t1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &message, false), Action::Pause);
    assert_eq!(
        response_trailers(ctx.as_mut(), &[("grpc-status", "6"), ("grpc-message", "t1%20exists"), ("x-trace", "t")]),
        Action::Continue
    );
    // The 200 went downstream with the headers; the body carries the error.
    assert_eq!(with(|h| h.get(Map::ResponseHeaders, ":status").map(str::to_string)), Some("200".to_string()));
    assert_eq!(
        json_body(&buffer(Buffer::HttpResponseBody).unwrap()),
        json!({"code": 6, "message": "t1 exists", "details": []})
    );
    assert_eq!(map(Map::ResponseTrailers), pairs(&[("x-trace", "t")]));
    assert!(replies().is_empty());
}

#[test]
fn client_stream_elements_go_upstream_as_frames_chunk_by_chunk() {
    let root = root();
    let mut ctx = request(&root, &[(":method", "POST"), (":path", "/v1/chat"), ("content-type", "application/json")]);
    assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(
        with(|h| h.get(Map::RequestHeaders, ":path").map(str::to_string)),
        Some("/test.v1.Things/Bidi".to_string())
    );
    // Each chunk continues at once with the frames of the elements it completed.
    assert_eq!(request_chunk(ctx.as_mut(), br#"[{"id":"q1"},{"id""#, false), Action::Continue);
    let first = with(|h| h.drain(Buffer::HttpRequestBody));
    assert_eq!(unframe("test.v1.Everything", &first), json!({"id": "q1"}));
    assert_eq!(request_chunk(ctx.as_mut(), br#":"q2"}]"#, true), Action::Continue);
    let second = with(|h| h.drain(Buffer::HttpRequestBody));
    assert_eq!(unframe("test.v1.Everything", &second), json!({"id": "q2"}));
    assert!(replies().is_empty(), "{:?}", replies());
}

/// A server stream's first chunk is translated in its callback and held (Pause); the root
/// resumes it from `proxy_on_queue_ready` (`wake`: the queue's wake-up, or the tick when Envoy
/// has no shared queues). Chunks that arrive before that stay gRPC bytes behind the held JSON
/// until the flush translates them in one pass.
fn server_stream_flushes(queues: bool, wake: fn(&mut Root)) {
    setup();
    with(|h| h.queues_enabled = queues);
    let mut root = Root::default();
    assert!(configure(&mut root, &config(json!({}))));
    let mut ctx = request(&root, &[(":method", "POST"), (":path", "/v1/chat"), ("content-type", "application/json")]);
    assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), br#"[{"id":"q"}]"#, true), Action::Continue);
    with(|h| h.drain(Buffer::HttpRequestBody));
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    assert_eq!(
        map(Map::ResponseHeaders),
        pairs(&[(":status", "200"), ("content-type", "application/json"), ("x-served-by", "pod-1"),])
    );
    let mut downstream = Vec::new();
    // A message arrives: its JSON replaces it in Envoy's (paused) buffer.
    let m1 = framed("test.v1.Everything", json!({"id": "m1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &m1, false), Action::Pause);
    assert_eq!(buffer(Buffer::HttpResponseBody), Some(br#"[{"id":"m1"}"#.to_vec()));
    // Another before the flush: left as it came, behind the held JSON.
    let m2 = framed("test.v1.Everything", json!({"id": "m2"}));
    assert_eq!(response_chunk(ctx.as_mut(), &m2, false), Action::Pause);
    assert_eq!(buffer(Buffer::HttpResponseBody), Some([&br#"[{"id":"m1"}"#[..], &m2].concat()));
    wake(&mut root);
    // The flush translated it, then resumed this request's response (context 2, type 1).
    assert_eq!(with(|h| h.resumed.clone()), vec![(2, 1)]);
    assert_eq!(with(|h| h.queued()), 0);
    downstream.extend(with(|h| h.drain(Buffer::HttpResponseBody)));
    assert_eq!(downstream, br#"[{"id":"m1"},{"id":"m2"}"#.to_vec());
    // Two more messages, split across chunks, and no flush before the error trailers.
    let mut rest = framed("test.v1.Everything", json!({"id": "m3"}));
    rest.extend(framed("test.v1.Everything", json!({"id": "m4"})));
    let (a, b) = rest.split_at(7);
    assert_eq!(response_chunk(ctx.as_mut(), a, false), Action::Pause);
    assert_eq!(response_chunk(ctx.as_mut(), b, false), Action::Pause);
    assert_eq!(
        response_trailers(ctx.as_mut(), &[("grpc-status", "14"), ("grpc-message", "going%20away")]),
        Action::Continue
    );
    downstream.extend(with(|h| h.drain(Buffer::HttpResponseBody)));
    assert_eq!(
        json_body(&downstream),
        json!([
            {"id": "m1"},
            {"id": "m2"},
            {"id": "m3"},
            {"id": "m4"},
            {"error": {"code": 14, "message": "going away", "details": []}}
        ])
    );
    assert_eq!(map(Map::ResponseTrailers), pairs(&[]));
    assert!(replies().is_empty());
    // The flush still due for the ended stream has nothing left to translate: it does not
    // touch the body.
    with(|h| h.host_calls.clear());
    wake(&mut root);
    let calls = with(|h| h.host_calls.clone());
    assert!(!calls.iter().any(|c| c.contains("buffer_bytes")), "{calls:?}");
}

#[test]
fn server_stream_is_flushed_when_its_queue_wakes_the_root() {
    server_stream_flushes(true, |root| {
        // One wake-up on the root's queue; the tick only as a slow watchdog.
        assert_eq!(with(|h| (h.queued(), h.tick_period_ms)), (1, 20));
        // Another queue's item is not ours.
        let resumed = with(|h| h.resumed.len());
        root.on_queue_ready(999);
        assert_eq!(with(|h| (h.queued(), h.resumed.len())), (1, resumed));
        root.on_queue_ready(100);
        // The watchdog stays armed: it goes idle on its own tick once nothing waits.
        assert_eq!(with(|h| h.tick_period_ms), 20);
        root.on_tick();
        assert_eq!(with(|h| h.tick_period_ms), 0);
    });
}

#[test]
fn a_lost_wake_up_is_covered_by_the_watchdog_tick() {
    let root = root();
    let mut ctx = request(&root, &[(":method", "POST"), (":path", "/v1/chat"), ("content-type", "application/json")]);
    assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), br#"[{"id":"q"}]"#, true), Action::Continue);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    let m1 = framed("test.v1.Everything", json!({"id": "m1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &m1, false), Action::Pause);
    assert_eq!(with(|h| (h.queued(), h.tick_period_ms)), (1, 20));
    // Envoy never delivers the wake-up: the watchdog tick flushes instead…
    let mut root = root;
    root.on_tick();
    assert_eq!(with(|h| (h.resumed.clone(), h.tick_period_ms)), (vec![(2, 1)], 0));
    assert_eq!(with(|h| h.drain(Buffer::HttpResponseBody)), br#"[{"id":"m1"}"#.to_vec());
    // …and the next chunk posts a new one (the lost one is not waited for).
    let m2 = framed("test.v1.Everything", json!({"id": "m2"}));
    assert_eq!(response_chunk(ctx.as_mut(), &m2, false), Action::Pause);
    assert_eq!(with(|h| h.queued()), 2);
}

/// Raw bytes wait for the flush only while their JSON fits: a burst of messages whose JSON is
/// 8x their gRPC size (packed enums) never makes Envoy hold more than its buffer limit (past it,
/// Envoy resets the stream), and every message arrives.
#[test]
fn a_burst_of_expanding_messages_stays_within_envoys_buffer_limit() {
    let root = root_with(json!({"json2grpc": {"limits": {"envoy_buffer_bytes": 2048}}}));
    let mut ctx = request(&root, &[(":method", "POST"), (":path", "/v1/chat"), ("content-type", "application/json")]);
    assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), br#"[{"id":"q"}]"#, true), Action::Continue);
    with(|h| h.drain(Buffer::HttpRequestBody));
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    let message = framed("test.v1.Everything", json!({"colors": vec!["GREEN"; 40]}));
    let mut downstream = Vec::new();
    let mut most = 0;
    for _ in 0..200 {
        let action = response_chunk(ctx.as_mut(), &message, false);
        most = most.max(buffer(Buffer::HttpResponseBody).map_or(0, |b| b.len()));
        if action == Action::Continue {
            downstream.extend(with(|h| h.drain(Buffer::HttpResponseBody)));
        }
    }
    let mut root = root;
    root.on_queue_ready(100);
    downstream.extend(with(|h| h.drain(Buffer::HttpResponseBody)));
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Pause);
    root.on_queue_ready(100);
    downstream.extend(with(|h| h.drain(Buffer::HttpResponseBody)));
    assert!(most <= 2048, "Envoy held {most} bytes");
    let items = json_body(&downstream);
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 200);
    assert!(items.iter().all(|i| i["colors"].as_array().map(Vec::len) == Some(40)));
}

#[test]
fn server_stream_is_flushed_on_the_tick_without_shared_queues() {
    server_stream_flushes(false, |root| {
        assert_eq!(with(|h| (h.queued(), h.tick_period_ms)), (0, 1));
        root.on_tick();
        assert_eq!(with(|h| h.tick_period_ms), 0);
    });
}

#[test]
fn grpc_error_in_trailers_after_an_empty_body_is_logged() {
    // Headers then trailers, no DATA: Envoy buffered no body, so none can be replaced and the
    // client keeps the 200 with an empty body (a limit of the non-held mode).
    let root = root();
    let mut ctx = transcoded_post(&root);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    with(|h| h.logs.clear());
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "5")]), Action::Continue);
    assert_eq!(buffer(Buffer::HttpResponseBody), None);
    assert!(replies().is_empty());
    assert_eq!(logs(3), ["the end of the response could not be added (Envoy holds no body to write to)"]);
}

#[test]
fn trailers_only_error_becomes_a_local_reply() {
    let root = root();
    let mut ctx = transcoded_post(&root);
    let headers = [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "5"),
        ("grpc-message", "no%20such%20thing"),
    ];
    assert_eq!(response_headers(ctx.as_mut(), &headers, true), Action::Pause);
    assert_eq!(assert_error_reply(&reply(), 404, 5), "no such thing");
    // The local reply passes through the filter again, untouched.
    let local = [(":status", "404"), ("content-type", "application/json")];
    assert_eq!(response_headers(ctx.as_mut(), &local, false), Action::Continue);
    assert_eq!(map(Map::ResponseHeaders), pairs(&local));
    assert_eq!(response_chunk(ctx.as_mut(), b"{}", true), Action::Continue);
    assert_eq!(replies().len(), 1);
}

#[test]
fn non_grpc_response_passes_through_unchanged() {
    let root = root();
    let mut ctx = transcoded_post(&root);
    let headers = [(":status", "503"), ("content-type", "text/plain"), ("content-length", "19")];
    assert_eq!(response_headers(ctx.as_mut(), &headers, false), Action::Continue);
    assert_eq!(map(Map::ResponseHeaders), pairs(&headers));
    assert_eq!(response_chunk(ctx.as_mut(), b"no healthy upstream", true), Action::Continue);
    assert_eq!(buffer(Buffer::HttpResponseBody), Some(b"no healthy upstream".to_vec()));
    assert!(replies().is_empty());
}

#[test]
fn a_grpc_response_ending_without_trailers_is_an_upstream_error() {
    let root = root();
    let mut ctx = transcoded_post(&root);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    let body = framed("test.v1.Everything", json!({"id": "t1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &body, true), Action::Continue);
    let body = json_body(&buffer(Buffer::HttpResponseBody).unwrap());
    assert_eq!(body["code"], json!(2), "{body}");
    assert_eq!(body["message"], json!("upstream gRPC response has no grpc-status"));
}

fn held_root() -> Root {
    root_with(json!({"json2grpc": {"allow_on_headers_stop_iteration": true}}))
}

#[test]
fn held_headers_keep_a_refused_body_from_opening_the_upstream_call() {
    let root = held_root();
    let mut ctx = request(&root, POST_HEADERS);
    // Held (not Continue): the router opens the gRPC stream only when the body callback
    // continues, so a refused body never reaches the service.
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Pause);
    assert_eq!(
        map(Map::RequestHeaders).iter().find(|(k, _)| k == ":path").map(|(_, v)| v.as_str()),
        Some("/test.v1.Things/Create")
    );
    assert_eq!(request_chunk(ctx.as_mut(), br#"{"id":"#, false), Action::Pause);
    assert_eq!(request_chunk(ctx.as_mut(), b"", true), Action::Pause);
    let reply = reply();
    assert_eq!(reply.status, 400);
}

#[test]
fn held_headers_get_the_exact_status_and_length() {
    let root = held_root();
    let mut ctx = transcoded_post_with(&root, Action::Pause);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Pause);
    assert_eq!(map(Map::ResponseHeaders), pairs(UPSTREAM_HEADERS));
    let body = framed("test.v1.Everything", json!({"id": "t1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &body, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
    assert_eq!(buffer(Buffer::HttpResponseBody), Some(br#"{"id":"t1"}"#.to_vec()));
    assert_eq!(
        sorted(map(Map::ResponseHeaders)),
        sorted(pairs(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-length", "11"),
            ("x-served-by", "pod-1"),
        ]))
    );
}

#[test]
fn held_headers_carry_the_error_status() {
    let root = held_root();
    let mut ctx = transcoded_post_with(&root, Action::Pause);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Pause);
    let message = framed("test.v1.Everything", json!({"id": "t1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &message, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "5"), ("grpc-message", "gone")]), Action::Continue);
    let body = buffer(Buffer::HttpResponseBody).unwrap();
    assert_eq!(json_body(&body), json!({"code": 5, "message": "gone", "details": []}));
    let headers = map(Map::ResponseHeaders);
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(get(":status"), Some("404"));
    assert_eq!(get("content-type"), Some("application/json"));
    assert_eq!(get("x-served-by"), Some("pod-1"));
    for gone in ["grpc-encoding", "grpc-accept-encoding", "grpc-status"] {
        assert_eq!(get(gone), None, "{gone}");
    }
    assert!(replies().is_empty());
}

#[test]
fn held_headers_without_a_body_get_a_local_reply() {
    let root = held_root();
    let mut ctx = transcoded_post_with(&root, Action::Pause);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "16"), ("grpc-message", "who%3F")]), Action::Continue);
    assert_eq!(assert_error_reply(&reply(), 401, 16), "who?");
}

// --- a released map ---------------------------------------------------------------------------

fn release_all() {
    with(|h| {
        for m in [
            Map::RequestHeaders,
            Map::RequestTrailers,
            Map::ResponseHeaders,
            Map::ResponseTrailers,
            Map::HttpCallResponseHeaders,
            Map::HttpCallResponseTrailers,
        ] {
            h.release(m);
        }
    });
}

#[test]
fn released_maps_never_panic() {
    // Every map gone from the start: nothing can be read, so nothing is transcoded.
    let root = root();
    let mut ctx = request(&root, POST_HEADERS);
    release_all();
    assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    assert_eq!(ctx.on_http_request_trailers(0), Action::Continue);
    assert_eq!(ctx.on_http_response_headers(3, false), Action::Continue);
    assert_eq!(response_chunk(ctx.as_mut(), b"x", true), Action::Continue);
    assert_eq!(ctx.on_http_response_trailers(1), Action::Continue);
    assert_eq!(buffer(Buffer::HttpRequestBody), Some(CREATE_BODY.to_vec()));

    // Response maps gone after a transcoded request: the response is not recognised as gRPC.
    mock_host::reset();
    let mut ctx = transcoded_post(&root);
    with(|h| h.set_map(Map::ResponseHeaders, UPSTREAM_HEADERS));
    release_all();
    assert_eq!(ctx.on_http_response_headers(6, false), Action::Continue);
    assert_eq!(response_chunk(ctx.as_mut(), b"x", true), Action::Continue);
    assert_eq!(buffer(Buffer::HttpResponseBody), Some(b"x".to_vec()));

    // Trailers gone: the status is unreadable, the body says so.
    mock_host::reset();
    let mut ctx = transcoded_post(&root);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    assert_eq!(response_chunk(ctx.as_mut(), &framed("test.v1.Everything", json!({})), false), Action::Pause);
    release_all();
    assert_eq!(ctx.on_http_response_trailers(1), Action::Continue);
    let body = json_body(&buffer(Buffer::HttpResponseBody).unwrap());
    assert_eq!(body["code"], json!(2), "{body}");

    // Held headers gone at the trailers: a local reply replaces the response.
    let held = held_root();
    let mut ctx = transcoded_post_with(&held, Action::Pause);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Pause);
    assert_eq!(response_chunk(ctx.as_mut(), &framed("test.v1.Everything", json!({"id": "z"})), false), Action::Pause);
    with(|h| h.release(Map::ResponseHeaders));
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
    let local = reply();
    assert_eq!(local.status, 200);
    assert_eq!(json_body(&local.body), json!({"id": "z"}));

    // A callout whose response maps are gone: answered like a reset.
    let r = root_with(json!({}));
    let (mut ctx, call) = get_in_flight(&r);
    release_all();
    ctx.on_http_call_response(call.token, 2, 0, 1);
    assert_error_reply(&reply(), 503, 14);
}

// --- stats ------------------------------------------------------------------------------------

fn stat(name: &str) -> i64 {
    with(|h| h.metrics.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| *v))
        .unwrap_or_else(|| panic!("stat {name} is not defined"))
}

#[test]
fn stats_count_transcoding_errors_passthrough_and_bytes() {
    let root = root();
    // One transcoded POST with its response.
    let mut ctx = transcoded_post(&root);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    let body = framed("test.v1.Everything", json!({"id": "t1"}));
    response_chunk(ctx.as_mut(), &body, false);
    response_trailers(ctx.as_mut(), &[("grpc-status", "0")]);
    ctx.on_end();
    assert_eq!(stat("json2grpc.method.test.v1.Things.Create.requests"), 1);
    assert_eq!(stat("json2grpc.method.test.v1.Things.Create.responses"), 1);
    assert_eq!(stat("json2grpc.bytes.request_json"), CREATE_BODY.len() as i64);
    assert_eq!(stat("json2grpc.bytes.response_grpc"), body.len() as i64);
    assert_eq!(stat("json2grpc.bytes.response_json"), br#"{"id":"t1"}"#.len() as i64);
    assert!(stat("json2grpc.bytes.request_grpc") > 5);
    // A malformed body: an invalid-request error answered 400.
    with(|h| h.new_stream());
    let mut bad = request(&root, POST_HEADERS);
    assert_eq!(bad.on_http_request_headers(7, false), Action::Continue);
    request_chunk(bad.as_mut(), b"{nope", true);
    assert_eq!(stat("json2grpc.errors.invalid_request"), 1);
    assert_eq!(stat("json2grpc.errors.status_400"), 1);
    // An upstream gRPC error in trailers.
    with(|h| h.new_stream());
    let mut failed = transcoded_post(&root);
    response_headers(failed.as_mut(), UPSTREAM_HEADERS, false);
    response_trailers(failed.as_mut(), &[("grpc-status", "5")]);
    assert_eq!(stat("json2grpc.errors.upstream_status"), 1);
    assert_eq!(stat("json2grpc.errors.status_404"), 1);
    // A request that is not ours.
    with(|h| h.new_stream());
    let mut pass = request(&root, &[(":method", "GET"), (":path", "/elsewhere"), (":authority", "x")]);
    assert_eq!(pass.on_http_request_headers(3, true), Action::Continue);
    assert_eq!(stat("json2grpc.passthrough"), 1);
    // The histogram is defined (its value is the host's business).
    with(|h| assert!(h.metrics.iter().any(|(n, kind, _)| n == "json2grpc.transcode_us" && *kind == 2)));
}

// --- cost -------------------------------------------------------------------------------------

/// Each host call is a crossing between V8 and Envoy, which for a small request costs about
/// as much as transcoding it. A unary exchange (POST in one chunk, one response message, OK)
/// makes this many; the test pins the count so a new call per request is a decision.
#[test]
fn a_unary_exchange_costs_few_host_calls() {
    assert_unary_exchange_host_calls(&root());
}

/// The host calls of unary exchanges (POST, response) on `root`, pinned.
fn assert_unary_exchange_host_calls(root: &Root) {
    let exchange = || {
        with(|h| {
            h.new_stream();
            h.host_calls.clear();
        });
        let mut ctx = request(root, POST_HEADERS);
        assert_eq!(ctx.on_http_request_headers(7, false), Action::Continue);
        with(|h| h.release(Map::RequestHeaders));
        assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
        assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
        let body = framed("test.v1.Everything", json!({"id": "t1"}));
        assert_eq!(response_chunk(ctx.as_mut(), &body, false), Action::Pause);
        assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
        ctx.on_end();
        assert_eq!(json_body(&buffer(Buffer::HttpResponseBody).unwrap()), json!({"id": "t1"}));
        with(|h| std::mem::take(&mut h.host_calls))
    };
    // Reading and writing each header map once, the bodies once, and the counters.
    let expected = [
        "proxy_get_header_map_pairs",
        "proxy_increment_metric",
        "proxy_set_header_map_pairs",
        "proxy_get_buffer_bytes",
        "proxy_increment_metric",
        "proxy_increment_metric",
        "proxy_set_buffer_bytes",
        "proxy_get_header_map_pairs",
        "proxy_set_header_map_pairs",
        "proxy_get_header_map_pairs",
        "proxy_get_buffer_bytes",
        "proxy_increment_metric",
        "proxy_increment_metric",
        "proxy_increment_metric",
        "proxy_set_buffer_bytes",
        "proxy_set_header_map_pairs",
    ];
    // The first request of a VM is timed (one in TIMING_SAMPLE is: two clock reads per
    // transcoding step and the histogram) and defines its method's three counters.
    let first = exchange();
    assert_eq!(first.len(), expected.len() + 5 + 3, "{first:?}");
    assert_eq!(first.iter().filter(|c| **c == "proxy_define_metric").count(), 3);
    for _ in 1..crate::wasm::metrics::TIMING_SAMPLE {
        assert_eq!(exchange(), expected);
    }
    assert_eq!(exchange().len(), expected.len() + 5);
}

// --- hostile input: client gRPC headers, deadlines, ignored parameters, allocation ----------

#[test]
fn client_grpc_headers_follow_the_policy_in_stream() {
    let root = root_with(json!({"ignored_query_parameters": ["api_key"]}));
    let mut ctx = request(
        &root,
        &[
            (":method", "POST"),
            (":path", "/v1/things?api_key=secret"),
            ("content-type", "application/json"),
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "gzip"),
            ("grpc-status", "3"),
            ("grpc-timeout", "5S"),
            ("grpc-trace-bin", "AAAA"),
            ("x-user", "alice"),
        ],
    );
    assert_eq!(ctx.on_http_request_headers(9, false), Action::Continue);
    let sent = map(Map::RequestHeaders);
    let get = |name: &str| sent.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for gone in ["grpc-encoding", "grpc-accept-encoding", "grpc-status"] {
        assert_eq!(get(gone), None, "{gone}: {sent:?}");
    }
    assert_eq!(get("grpc-timeout"), Some("5S"));
    assert_eq!(get("grpc-trace-bin"), Some("AAAA"));
    assert_eq!(get("x-user"), Some("alice"));
    assert_eq!(get("x-envoy-original-path"), Some("/v1/things"), "the ignored api_key stays out");
}

#[test]
fn an_invalid_client_deadline_is_a_400_before_any_call() {
    let root = root();
    for (method, end) in [("POST", false), ("GET", true)] {
        mock_host::reset();
        with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
        let path = if method == "GET" { "/v1/things/a1" } else { "/v1/things" };
        let mut ctx = request(&root, &[(":method", method), (":path", path), ("grpc-timeout", "123456789S")]);
        assert_eq!(ctx.on_http_request_headers(3, end), Action::Pause);
        let message = assert_error_reply(&reply(), 400, 3);
        assert!(message.contains("invalid grpc-timeout"), "{message}");
        assert!(calls().is_empty());
    }
}

#[test]
fn the_client_deadline_bounds_the_callout() {
    let root = root_with(json!({"ignored_query_parameters": ["api_key"]}));
    with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
    let mut ctx = request(
        &root,
        &[
            (":method", "GET"),
            (":path", "/v1/things/a1?api_key=secret&page_size=3"),
            ("grpc-timeout", "250m"),
            ("grpc-encoding", "gzip"),
        ],
    );
    assert_eq!(ctx.on_http_request_headers(4, true), Action::Pause);
    let sent = call();
    assert_eq!(sent.timeout_ms, 250);
    let get = |name: &str| sent.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(get("grpc-timeout"), Some("250m"));
    assert_eq!(get("grpc-encoding"), None);
    assert_eq!(get("x-envoy-original-path"), Some("/v1/things/a1?page_size=3"));
    // A longer client deadline does not lengthen the configured one (15 s).
    mock_host::reset();
    with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
    let mut ctx = request(&root, &[(":method", "GET"), (":path", "/v1/things/a1"), ("grpc-timeout", "1H")]);
    assert_eq!(ctx.on_http_request_headers(3, true), Action::Pause);
    assert_eq!(call().timeout_ms, 15_000);
}

#[test]
fn an_allocation_the_vm_cannot_hold_is_refused_not_a_trap() {
    assert!(crate::wasm::abi::proxy_on_memory_allocate(usize::MAX).is_null());
    assert!(crate::wasm::abi::proxy_on_memory_allocate(isize::MAX as usize).is_null());
    let ptr = crate::wasm::abi::proxy_on_memory_allocate(16);
    assert!(!ptr.is_null());
    // SAFETY: 16 bytes allocated above as a Vec<u8> of capacity 16.
    drop(unsafe { Vec::from_raw_parts(ptr, 0, 16) });
}

#[test]
fn an_oversized_or_second_callout_message_is_refused_from_the_frame_header() {
    let root = root_with(json!({"json2grpc": {"limits": {"max_frame_size": 100}}}));
    // A frame announcing 1,000 bytes: refused from its header, as in-stream.
    let mut body = vec![0, 0, 0, 0x03, 0xe8];
    body.extend_from_slice(&[0x0a; 1000]);
    let (mut ctx, call) = get_in_flight(&root);
    callout_response(ctx.as_mut(), call.token, GRPC_OK, &body, &[("grpc-status", "0")]);
    let message = assert_error_reply(&reply(), 502, 13);
    assert_eq!(message, "invalid gRPC response: frame of 1000 bytes exceeds the limit of 100");
    // Two messages for a unary method.
    mock_host::reset();
    let one = framed("test.v1.Everything", json!({"id": "x"}));
    let (mut ctx, call) = get_in_flight(&root);
    callout_response(ctx.as_mut(), call.token, GRPC_OK, &[one.clone(), one].concat(), &[("grpc-status", "0")]);
    let message = assert_error_reply(&reply(), 502, 13);
    assert_eq!(message, "invalid gRPC response: more than one message for a unary method");
}

#[test]
fn loopback_calls_keep_the_status_of_envoys_own_answers() {
    let root = root_with(json!({"json2grpc": {"callout": {"loopback_cluster": "json2grpc_loopback"}}}));
    let (mut ctx, call) = get_in_flight(&root);
    assert_eq!(call.upstream, "json2grpc_loopback");
    // The router found no route for the gRPC path: UNIMPLEMENTED, the local reply's 404 kept.
    let no_route: &[(&str, &str)] = &[
        (":status", "200"),
        ("x-json2grpc-local-reply", "404"),
        ("content-type", "application/grpc"),
        ("grpc-status", "12"),
    ];
    callout_response(ctx.as_mut(), call.token, no_route, b"", &[]);
    let failed = reply();
    assert_eq!(assert_error_reply(&failed, 404, 12), "no route for /test.v1.Things/Get");
    assert_eq!(failed.headers, pairs(&[("content-type", "application/json")]), "the marker is not returned");
    // A route timeout: DEADLINE_EXCEEDED, 504.
    mock_host::reset();
    let (mut ctx, call) = get_in_flight(&root);
    let timeout: &[(&str, &str)] = &[
        (":status", "200"),
        ("x-json2grpc-local-reply", "504"),
        ("content-type", "application/grpc"),
        ("grpc-status", "14"),
        ("grpc-message", "upstream request timeout"),
    ];
    callout_response(ctx.as_mut(), call.token, timeout, b"", &[]);
    let message = assert_error_reply(&reply(), 504, 4);
    assert!(message.contains("the route's timeout"), "{message}");
    // Without loopback the header means nothing (a service could send it).
    let direct = crate::testing::callback_tests::root();
    let (mut ctx, call) = get_in_flight(&direct);
    callout_response(ctx.as_mut(), call.token, no_route, b"", &[]);
    assert_error_reply(&reply(), 501, 12);
}

#[test]
fn a_host_that_adds_bodies_to_headers_only_requests_gets_them_in_stream() {
    let root = root();
    // A host with a writable body for a request that ended at its headers (proxy-wasm spec
    // issue #86; not Envoy 1.40).
    with(|h| h.set_buffer(Buffer::HttpRequestBody, b""));
    let mut ctx = request(&root, GET_HEADERS);
    assert_eq!(ctx.on_http_request_headers(9, true), Action::Continue);
    assert!(calls().is_empty() && replies().is_empty(), "no call of the filter's own");
    let sent = map(Map::RequestHeaders);
    let get = |name: &str| sent.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!((get(":method"), get(":path")), (Some("POST"), Some("/test.v1.Things/Get")));
    assert_eq!(get("content-type"), Some("application/grpc"));
    assert_eq!(get("x-envoy-original-path"), Some("/v1/things/a1?page_size=3"));
    assert_eq!(
        unframe("test.v1.GetRequest", &buffer(Buffer::HttpRequestBody).unwrap()),
        canonical("test.v1.GetRequest", json!({"id": "a1", "pageSize": 3}))
    );
    // The response is translated as for a POST.
    let body = framed("test.v1.Everything", json!({"id": "a1"}));
    assert_eq!(response_headers(ctx.as_mut(), GRPC_OK, false), Action::Continue);
    assert_eq!(response_chunk(ctx.as_mut(), &body, false), Action::Pause);
    response_trailers(ctx.as_mut(), &[("grpc-status", "0")]);
    assert_eq!(json_body(&buffer(Buffer::HttpResponseBody).unwrap()), json!({"id": "a1"}));
}

#[test]
fn a_host_that_refuses_is_asked_once() {
    let root = root();
    let (_ctx, _call) = get_in_flight(&root);
    let tries = || with(|h| h.host_calls.iter().filter(|c| **c == "proxy_set_buffer_bytes").count());
    assert_eq!(tries(), 1, "the first bodyless request tries to add its body");
    mock_host::reset();
    let (_ctx, _call) = get_in_flight(&root);
    assert_eq!(tries(), 0, "later ones go straight to the filter's own call");
}

// --- live descriptors (json2grpc.descriptor) -----------------------------------------------

mod live {
    use super::*;
    use crate::core::codec::wire::length_delimited;
    use crate::core::response::frame::encode_frame;
    use sha2::Digest;

    const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

    /// The test config without a descriptor, with `descriptor` as json2grpc.descriptor.
    fn live_config(descriptor: Value) -> Value {
        json!({"services": ["test.v1.Things"], "json2grpc": {"descriptor": descriptor}})
    }

    /// A fresh Envoy (shared data too) and a configured root (a VM) for it.
    /// A fresh Envoy (shared data too) and a configured root (a VM) after its first tick:
    /// fetching starts on ticks, never at configure time.
    fn vm(descriptor: Value) -> Root {
        setup();
        mock_host::reset_shared_data();
        let mut root = another_vm(descriptor);
        assert!(calls().is_empty(), "no fetch at configure time");
        root.on_tick();
        root
    }

    /// Another VM of the same Envoy: the shared data stays.
    fn another_vm(descriptor: Value) -> Root {
        let mut root = Root::default();
        assert!(configure(&mut root, &live_config(descriptor)), "{:?}", logs(0));
        root
    }

    fn framed_all(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            encode_frame(m, &mut out).unwrap();
        }
        out
    }

    fn list_services(names: &[&str]) -> Vec<u8> {
        let mut m = Vec::new();
        length_delimited(6, &mut m, |o| {
            for n in names {
                length_delimited(1, o, |o| length_delimited(1, o, |o| o.extend_from_slice(n.as_bytes())));
            }
        });
        m
    }

    /// A FileDescriptorResponse with every file of `set`.
    fn files(set: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        length_delimited(4, &mut m, |o| {
            for f in crate::core::codec::wire::fields(set).flatten() {
                length_delimited(1, o, |o| o.extend_from_slice(f.value));
            }
        });
        m
    }

    /// The answer to the call with `token`, as Envoy hands it to the root.
    fn answer(root: &mut Root, token: u32, headers: &[(&str, &str)], body: &[u8], trailers: &[(&str, &str)]) {
        with(|h| {
            h.set_map(Map::HttpCallResponseHeaders, headers);
            h.set_map(Map::HttpCallResponseTrailers, trailers);
            h.set_buffer(Buffer::HttpCallResponseBody, body);
        });
        root.on_http_call_response(token, headers.len(), body.len(), trailers.len());
    }

    const GRPC: &[(&str, &str)] = &[(":status", "200"), ("content-type", "application/grpc")];
    const OK: &[(&str, &str)] = &[("grpc-status", "0")];

    fn last_call() -> HttpCall {
        calls().pop().expect("a call")
    }

    fn path_of(call: &HttpCall) -> String {
        call.headers.iter().find(|(k, _)| k == ":path").map(|(_, v)| v.clone()).unwrap()
    }

    /// Serves the reflection exchange of a root that just started a fetch: the service list,
    /// then every file of the test set.
    fn serve_reflection(root: &mut Root) {
        let call = last_call();
        assert_eq!((call.upstream.as_str(), path_of(&call)), ("svc", V1.to_string()));
        answer(root, call.token, GRPC, &framed_all(&[list_services(&["test.v1.Things", "grpc.health.v1.Health"])]), OK);
        let call = last_call();
        answer(root, call.token, GRPC, &framed_all(&[files(TEST_DESCRIPTOR_SET)]), OK);
    }

    fn get_thing(root: &Root) -> Action {
        with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
        let mut ctx = request(root, &[(":method", "GET"), (":path", "/v1/things/a1")]);
        ctx.on_http_request_headers(2, true)
    }

    #[test]
    fn no_descriptor_then_reflection_then_transcoding() {
        let mut root = vm(json!({"reflection": {"cluster": "svc"}}));
        // Before the first descriptors: 503 JSON, and a gRPC request passes.
        assert_eq!(get_thing(&root), Action::Pause);
        let message = assert_error_reply(&reply(), 503, 14);
        assert!(message.contains("loading"), "{message}");
        let mut grpc =
            request(&root, &[(":method", "POST"), (":path", "/x.Y/Z"), ("content-type", "application/grpc")]);
        assert_eq!(grpc.on_http_request_headers(3, false), Action::Continue);
        // The fetch started at configure time: list the services, then their files.
        serve_reflection(&mut root);
        assert_eq!(stat("json2grpc.descriptor.reloads"), 1);
        assert_eq!(stat("json2grpc.descriptor.version"), 1);
        // Now the API is known: the GET is transcoded (the filter's own call to its cluster).
        with(|h| h.local_replies.clear());
        let calls_before = calls().len();
        assert_eq!(get_thing(&root), Action::Pause);
        assert!(replies().is_empty(), "{:?}", replies());
        assert_eq!(path_of(calls().get(calls_before).unwrap()), "/test.v1.Things/Get");
    }

    #[test]
    fn v1alpha_when_the_server_has_no_v1() {
        let mut root = vm(json!({"reflection": {"cluster": "svc"}}));
        let first = last_call();
        answer(
            &mut root,
            first.token,
            &[(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12")],
            b"",
            &[],
        );
        let second = last_call();
        assert_eq!(path_of(&second), V1ALPHA);
        assert_eq!(second.body, first.body, "the same request again");
        answer(&mut root, second.token, GRPC, &framed_all(&[list_services(&["test.v1.Things"])]), OK);
        let call = last_call();
        assert_eq!(path_of(&call), V1ALPHA, "the server's version is kept for the next rounds");
        answer(&mut root, call.token, GRPC, &framed_all(&[files(TEST_DESCRIPTOR_SET)]), OK);
        assert_eq!(stat("json2grpc.descriptor.version"), 1);
    }

    #[test]
    fn one_fetch_per_envoy_and_every_vm_swaps_once() {
        let mut first = vm(json!({"reflection": {"cluster": "svc"}}));
        // A second VM configured meanwhile does not fetch: the lease is taken.
        let calls_before = calls().len();
        let mut second = another_vm(json!({"reflection": {"cluster": "svc"}}));
        second.on_tick();
        assert_eq!(calls().len(), calls_before);
        serve_reflection(&mut first);
        // The second VM takes the published set on its next tick, without a call of its own.
        let calls_before = calls().len();
        with(|h| h.now_ns += 300_000_000);
        second.on_tick();
        assert_eq!(calls().len(), calls_before);
        assert_eq!(get_thing(&second), Action::Pause);
        assert!(replies().is_empty());
        // A third VM started later has it at once.
        let third = another_vm(json!({"reflection": {"cluster": "svc"}}));
        assert_eq!(get_thing(&third), Action::Pause);
        assert!(replies().is_empty());
    }

    #[test]
    fn a_failed_or_invalid_fetch_keeps_the_last_good_descriptors() {
        let mut root = vm(json!({"reflection": {"cluster": "svc"}, "refresh_ms": 1000}));
        serve_reflection(&mut root);
        for (headers, body, trailers, counter) in [
            // A reset.
            (&[][..], Vec::new(), &[][..], "unreachable"),
            // An error status.
            (GRPC, Vec::new(), &[("grpc-status", "5"), ("grpc-message", "gone")][..], "refused"),
            // Envoy's own UNAVAILABLE (no healthy upstream).
            (GRPC, Vec::new(), &[("grpc-status", "14"), ("grpc-message", "no healthy upstream")][..], "unreachable"),
            // Garbage.
            (GRPC, vec![0, 0, 0, 0, 3, 0xff, 0xff, 0xff], OK, "invalid"),
        ] {
            // The next poll is due after refresh_ms (or the retry delay after a failure).
            with(|h| h.now_ns += 3_000_000_000);
            root.on_tick();
            let call = last_call();
            answer(&mut root, call.token, headers, &body, trailers);
            assert!(stat(&format!("json2grpc.descriptor.failures.{counter}")) >= 1, "{counter}");
            assert_eq!(stat("json2grpc.descriptor.version"), 1);
            with(|h| h.local_replies.clear());
            assert_eq!(get_thing(&root), Action::Pause);
            assert!(replies().is_empty(), "still transcoding after {counter}");
        }
        // A set that does not link (the files without their imports) is refused too.
        with(|h| h.now_ns += 3_000_000_000);
        root.on_tick();
        let call = last_call();
        answer(&mut root, call.token, GRPC, &framed_all(&[list_services(&["test.v1.Things"])]), OK);
        let call = last_call();
        let mut only_first = Vec::new();
        let first_file = crate::core::codec::wire::fields(TEST_DESCRIPTOR_SET).flatten().last().unwrap();
        first_file.write(&mut only_first);
        answer(&mut root, call.token, GRPC, &framed_all(&[files(&only_first)]), OK);
        let call = last_call();
        // It asks for the missing imports; they are not found: the set does not load.
        let not_found = {
            let mut m = Vec::new();
            length_delimited(7, &mut m, |o| length_delimited(2, o, |o| o.extend_from_slice(b"not found")));
            m
        };
        let requests = call.body.len();
        assert!(requests > 0);
        let mut decoder = crate::core::response::frame::FrameDecoder::new(1 << 20, None);
        decoder.push(&call.body);
        let mut answers = Vec::new();
        while decoder.next_frame().unwrap().is_some() {
            answers.push(not_found.clone());
        }
        answer(&mut root, call.token, GRPC, &framed_all(&answers), OK);
        assert!(stat("json2grpc.descriptor.failures.invalid") >= 2);
        assert_eq!(stat("json2grpc.descriptor.version"), 1);
        // Unchanged on the next good poll: nothing published.
        with(|h| h.now_ns += 3_000_000_000);
        root.on_tick();
        serve_reflection(&mut root);
        assert_eq!((stat("json2grpc.descriptor.unchanged"), stat("json2grpc.descriptor.version")), (1, 1));
    }

    #[test]
    fn by_reference_pinned_by_sha256() {
        let sha = hex(&sha2::Sha256::digest(TEST_DESCRIPTOR_SET));
        let mut wrong = sha.clone();
        wrong.replace_range(0..1, if sha.starts_with('0') { "1" } else { "0" });
        let mut root = vm(json!({"url": {"cluster": "files", "path": "/api.pb", "sha256": wrong}}));
        let call = last_call();
        assert_eq!((call.upstream.as_str(), path_of(&call)), ("files", "/api.pb".to_string()));
        answer(&mut root, call.token, &[(":status", "200")], TEST_DESCRIPTOR_SET, &[]);
        assert_eq!(stat("json2grpc.descriptor.failures.sha256_mismatch"), 1);
        assert_eq!(get_thing(&root), Action::Pause);
        assert_error_reply(&reply(), 503, 14);

        let mut root = vm(json!({"url": {"cluster": "files", "path": "/api.pb", "sha256": sha}}));
        let call = last_call();
        answer(&mut root, call.token, &[(":status", "200")], TEST_DESCRIPTOR_SET, &[]);
        assert_eq!(stat("json2grpc.descriptor.version"), 1);
        with(|h| h.local_replies.clear());
        assert_eq!(get_thing(&root), Action::Pause);
        assert!(replies().is_empty());
    }

    #[test]
    fn live_descriptors_cost_the_request_path_nothing() {
        // Once loaded, a request makes exactly the host calls it makes with a descriptor in the
        // config: the polling lives in the root's tick, not on the request path.
        let mut root = vm(json!({"reflection": {"cluster": "svc"}}));
        serve_reflection(&mut root);
        assert_unary_exchange_host_calls(&root);
    }

    #[test]
    fn pass_through_before_load_by_option() {
        let root = vm(json!({"reflection": {"cluster": "svc"}, "before_load": "pass_through"}));
        assert_eq!(get_thing(&root), Action::Continue);
        assert!(replies().is_empty());
    }

    #[test]
    fn configs_with_a_source_are_checked() {
        setup();
        for (bad, field) in [
            (json!({"json2grpc": {"descriptor": {"reflection": {"cluster": "svc"}}}}), "services"),
            (json!({"services": ["a.B"], "json2grpc": {"descriptor": {}}}), "json2grpc.descriptor"),
            (
                json!({"services": ["a.B"], "json2grpc": {"descriptor": {"reflection": {}}}}),
                "json2grpc.descriptor.reflection",
            ),
            (
                json!({"services": ["a.B"], "json2grpc": {"descriptor": {"url": {"cluster": "c", "path": "/x", "sha256": "abc"}}}}),
                "json2grpc.descriptor.url.sha256",
            ),
            (
                json!({"services": ["a.B"], "json2grpc": {"descriptor": {"url": {"cluster": "c", "path": "/x"}, "reflection": {"cluster": "c"}}}}),
                "json2grpc.descriptor",
            ),
        ] {
            let mut root = Root::default();
            assert!(!configure(&mut root, &bad), "{bad}");
            let errors = logs(4);
            assert!(errors.last().unwrap().contains(&format!("field `{field}`")), "{bad}: {errors:?}");
        }
        // With proto_descriptor_bin too: they exclude each other.
        let mut both = config(json!({}));
        both["json2grpc"] = json!({"descriptor": {"reflection": {"cluster": "svc"}}});
        let mut root = Root::default();
        assert!(!configure(&mut root, &both));
        let all = json!({"json2grpc": {"descriptor": {"reflection": {"cluster": "svc", "all_services": true}}}});
        assert!(configure(&mut Root::default(), &all));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

mod live_lease {
    use super::*;

    #[test]
    fn a_vm_that_stops_blocks_the_others_for_one_call_at_most() {
        setup();
        mock_host::reset_shared_data();
        let config = json!({"services": ["test.v1.Things"], "json2grpc": {"descriptor": {
            "reflection": {"cluster": "svc"}, "timeout_ms": 2000}}});
        let mut gone = Root::default();
        assert!(configure(&mut gone, &config));
        gone.on_tick();
        assert_eq!(calls().len(), 1, "the first VM fetches");
        // It never sees the answer (Envoy replaced it). Another VM waits out its lease.
        let mut other = Root::default();
        assert!(configure(&mut other, &config));
        other.on_tick();
        assert_eq!(calls().len(), 1);
        with(|h| h.now_ns += 2_500_000_000);
        other.on_tick();
        assert_eq!(calls().len(), 1, "2.5 s: the lease (2 s + 1 s) still holds");
        with(|h| h.now_ns += 1_000_000_000);
        other.on_tick();
        assert_eq!(calls().len(), 2, "3.5 s: taken over");
    }
}

// --- the OpenAPI document ---------------------------------------------------------------------

mod openapi {
    use super::*;
    use crate::core::transcoder::Transcoder;
    use crate::testing::fixtures::editions;

    fn get(root: &Root, method: &str, path: &str) -> Action {
        let mut ctx = request(root, &[(":method", method), (":path", path)]);
        ctx.on_http_request_headers(2, true)
    }

    /// The document `generate` makes for `config`.
    fn expected(config: &Value) -> Value {
        let t = Transcoder::from_json(&serde_json::to_vec(config).unwrap()).unwrap();
        crate::core::openapi::generate(&t)
    }

    #[test]
    fn a_get_of_the_path_is_answered_with_the_document() {
        let extra = json!({"json2grpc": {"openapi": {"path": "/.well-known/openapi.json"}}});
        let root = root_with(extra.clone());
        assert_eq!(get(&root, "GET", "/.well-known/openapi.json?x=1"), Action::Pause);
        let first = reply();
        assert_eq!((first.status, first.headers.clone()), (200, pairs(&[("content-type", "application/json")])));
        assert_eq!(json_body(&first.body), expected(&config(extra)));
        // Made once per transcoder: later requests (HEAD too) get the same bytes.
        with(|h| h.local_replies.clear());
        assert_eq!(get(&root, "HEAD", "/.well-known/openapi.json"), Action::Pause);
        assert_eq!(reply().body, first.body);
        // Other methods and paths are requests like any other.
        with(|h| h.local_replies.clear());
        assert_eq!(get(&root, "POST", "/.well-known/openapi.json"), Action::Continue);
        assert_eq!(get(&root, "GET", "/.well-known/openapi.json/x"), Action::Continue);
        assert!(replies().is_empty());
    }

    #[test]
    fn the_descriptor_bytes_are_kept_only_for_the_document() {
        // Requests never read them once the transcoder is built: freed (0.84 MB of a
        // 200-service API), unless the document is made from them on its first request.
        let without = root();
        assert!(without.transcoder().unwrap().config.proto_descriptor_bin.is_empty());
        let with_document = root_with(json!({"json2grpc": {"openapi": {"path": "/openapi"}}}));
        assert_eq!(with_document.transcoder().unwrap().config.proto_descriptor_bin, TEST_DESCRIPTOR_SET);
        // The schema's services (methods and their options) are the router's input only.
        for root in [&without, &with_document] {
            let t = root.transcoder().unwrap();
            assert!(t.schema.services.is_empty());
            assert!(!t.router.methods.is_empty() && !t.router.bindings.is_empty());
        }
    }

    #[test]
    fn off_unless_configured_and_bounded() {
        let root = root();
        with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
        assert_eq!(get(&root, "GET", "/.well-known/openapi.json"), Action::Continue, "no route: passes through");
        assert!(replies().is_empty());
        let root = root_with(json!({"json2grpc": {"openapi": {"path": "/openapi", "max_bytes": 100}}}));
        get(&root, "GET", "/openapi");
        let message = assert_error_reply(&reply(), 500, 13);
        assert!(message.contains("json2grpc.openapi.max_bytes (100)"), "{message}");
    }

    #[test]
    fn the_document_follows_a_live_descriptor_swap() {
        setup();
        mock_host::reset_shared_data();
        let config = json!({"services": ["test.v1.Things"], "json2grpc": {
            "descriptor": {"url": {"cluster": "files", "path": "/api.pb"}, "refresh_ms": 1000},
            "openapi": {"path": "/openapi"}}});
        let mut root = Root::default();
        assert!(configure(&mut root, &config));
        // Loading: the document is not known yet either.
        assert_eq!(get(&root, "GET", "/openapi"), Action::Pause);
        assert_error_reply(&reply(), 503, 14);
        let serve = |root: &mut Root, set: &[u8]| {
            root.on_tick();
            let call = calls().pop().expect("a fetch");
            with(|h| {
                h.set_map(Map::HttpCallResponseHeaders, &[(":status", "200")]);
                h.set_map(Map::HttpCallResponseTrailers, &[]);
                h.set_buffer(Buffer::HttpCallResponseBody, set);
            });
            root.on_http_call_response(call.token, 1, set.len(), 0);
            with(|h| h.local_replies.clear());
            get(root, "GET", "/openapi");
            json_body(&reply().body)
        };
        let with_set = |set: &[u8]| {
            let mut c = config.clone();
            c["json2grpc"].as_object_mut().unwrap().remove("descriptor");
            c["proto_descriptor_bin"] = json!(base64::engine::general_purpose::STANDARD.encode(set));
            expected(&c)
        };
        let first = serve(&mut root, TEST_DESCRIPTOR_SET);
        assert_eq!(first, with_set(TEST_DESCRIPTOR_SET));
        // A new set (one more file) is swapped in: the document is the new transcoder's.
        let mut grown = TEST_DESCRIPTOR_SET.to_vec();
        let extra = editions::file("extra.proto", vec![editions::message("Extra", vec![])], vec![], Default::default());
        grown.extend(editions::encode_set(&[extra]));
        with(|h| h.now_ns += 3_000_000_000);
        let second = serve(&mut root, &grown);
        assert_ne!(second["info"]["version"], first["info"]["version"]);
        assert_eq!(second, with_set(&grown));
    }
}
