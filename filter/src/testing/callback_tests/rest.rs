//! `json2grpc.rest` in the proxy layer, driven as Envoy drives it: CORS preflights and headers,
//! success statuses from the service's metadata or the config, bodyless 204s.
use super::*;

const ORIGIN: &str = "https://app.test";

fn cors_root(extra: Value) -> Root {
    let mut rest = json!({"cors": {"allow_origins": [ORIGIN, "http://localhost:*"],
        "allow_headers": ["content-type", "x-trace"], "expose_headers": ["location"], "max_age": 600}});
    if let (Value::Object(base), Value::Object(extra)) = (&mut rest, extra) {
        base.extend(extra);
    }
    root_with(json!({"json2grpc": {"rest": rest}}))
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn preflight(root: &Root, origin: &str, path: &str) -> Action {
    let mut ctx = request(
        root,
        &[
            (":method", "OPTIONS"),
            (":path", path),
            ("origin", origin),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "content-type, x-trace"),
        ],
    );
    ctx.on_http_request_headers(5, true)
}

#[test]
fn a_preflight_for_a_bound_path_is_answered_with_the_methods_it_takes() {
    let root = cors_root(json!({}));
    assert_eq!(preflight(&root, ORIGIN, "/v1/things/7?x=1"), Action::Pause);
    let answer = reply();
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
    assert_eq!(
        sorted(answer.headers),
        sorted(pairs(&[
            ("access-control-allow-origin", ORIGIN),
            ("access-control-allow-methods", "GET, POST, PATCH, DELETE"),
            ("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            ("access-control-allow-headers", "content-type, x-trace"),
            ("access-control-max-age", "600"),
        ]))
    );
    assert!(calls().is_empty());
    // A wildcard origin.
    mock_host::reset();
    assert_eq!(preflight(&root, "http://localhost:5173", "/v1/things"), Action::Pause);
    assert_eq!(get(&reply().headers, "access-control-allow-origin"), Some("http://localhost:5173"));
}

#[test]
fn a_preflight_from_another_origin_is_refused_without_cors_headers() {
    let root = cors_root(json!({}));
    assert_eq!(preflight(&root, "https://evil.test", "/v1/things/7"), Action::Pause);
    let refused = reply();
    assert_eq!(assert_error_reply(&refused, 403, 7), "this origin may not call the API (json2grpc.rest.cors)");
}

#[test]
fn options_requests_that_are_not_preflights_for_the_api_pass() {
    let root = cors_root(json!({}));
    assert_eq!(preflight(&root, ORIGIN, "/not/the/api"), Action::Continue);
    // Without Access-Control-Request-Method it is no preflight: no binding, passed through.
    let mut ctx = request(&root, &[(":method", "OPTIONS"), (":path", "/v1/things/7"), ("origin", ORIGIN)]);
    assert_eq!(ctx.on_http_request_headers(3, true), Action::Continue);
    // Without a policy, a preflight is any OPTIONS request.
    let plain = root_with(json!({}));
    assert_eq!(preflight(&plain, ORIGIN, "/v1/things/7"), Action::Continue);
    assert!(replies().is_empty() && calls().is_empty());
}

#[test]
fn responses_and_error_replies_to_an_allowed_origin_carry_cors_headers() {
    let root = cors_root(json!({}));
    let headers: Vec<(&str, &str)> = POST_HEADERS.iter().copied().chain([("origin", ORIGIN)]).collect();
    let mut ctx = request(&root, &headers);
    assert_eq!(ctx.on_http_request_headers(8, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    let upstream: Vec<(&str, &str)> = UPSTREAM_HEADERS.iter().copied().chain([("vary", "accept-encoding")]).collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    let sent = map(Map::ResponseHeaders);
    assert_eq!(get(&sent, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(get(&sent, "access-control-expose-headers"), Some("location"));
    assert_eq!(get(&sent, "vary"), Some("accept-encoding, Origin"));

    // The filter's own error reply.
    mock_host::reset();
    let mut ctx = request(&root, &headers);
    assert_eq!(ctx.on_http_request_headers(8, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), b"{", true), Action::Pause);
    let error = reply();
    assert_eq!(error.status, 400);
    assert_eq!(get(&error.headers, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(get(&error.headers, "vary"), Some("Origin"));

    // Envoy's own answer (not gRPC) to a transcoded request.
    mock_host::reset();
    let mut ctx = request(&root, &headers);
    assert_eq!(ctx.on_http_request_headers(8, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    assert_eq!(
        response_headers(ctx.as_mut(), &[(":status", "503"), ("content-type", "text/plain")], false),
        Action::Continue
    );
    assert_eq!(get(&map(Map::ResponseHeaders), "access-control-allow-origin"), Some(ORIGIN));

    // Another origin: nothing added.
    mock_host::reset();
    let other: Vec<(&str, &str)> = POST_HEADERS.iter().copied().chain([("origin", "https://evil.test")]).collect();
    let mut ctx = request(&root, &other);
    assert_eq!(ctx.on_http_request_headers(8, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Continue);
    assert!(!map(Map::ResponseHeaders).iter().any(|(k, _)| k.starts_with("access-control-")));
}

#[test]
fn bodyless_calls_get_cors_headers_and_the_services_status() {
    let root = cors_root(json!({"status_from_metadata": true}));
    with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
    let mut ctx = request(&root, &[(":method", "GET"), (":path", "/v1/things/a1"), ("origin", ORIGIN)]);
    assert_eq!(ctx.on_http_request_headers(3, true), Action::Pause);
    let call = call();
    let answer: &[(&str, &str)] = &[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("x-http-code", "201"),
        ("location", "/v1/things/a1"),
        ("access-control-allow-origin", "*"),
    ];
    let body = framed("test.v1.Everything", json!({"id": "a1"}));
    callout_response(ctx.as_mut(), call.token, answer, &body, &[("grpc-status", "0")]);
    let created = reply();
    assert_eq!(created.status, 201);
    assert_eq!(
        created.headers,
        pairs(&[
            ("content-type", "application/json"),
            ("location", "/v1/things/a1"),
            ("access-control-allow-origin", ORIGIN),
            ("vary", "Origin"),
            ("access-control-expose-headers", "location"),
        ])
    );
    assert_eq!(json_body(&created.body), json!({"id": "a1"}));

    // 204: no body, no content-type.
    mock_host::reset();
    with(|h| h.set_property(&["xds", "cluster_name"], b"things"));
    let mut ctx = request(&root, &[(":method", "DELETE"), (":path", "/v1/things/a1")]);
    assert_eq!(ctx.on_http_request_headers(2, true), Action::Pause);
    let call = self::call();
    let answer: &[(&str, &str)] = &[(":status", "200"), ("content-type", "application/grpc"), ("x-http-code", "204")];
    callout_response(ctx.as_mut(), call.token, answer, &[0, 0, 0, 0, 0], &[("grpc-status", "0")]);
    let deleted = reply();
    assert_eq!((deleted.status, deleted.headers, deleted.body), (204, vec![], vec![]));
}

#[test]
fn x_http_code_sets_the_status_when_the_headers_go_downstream() {
    let root = root_with(json!({"json2grpc": {"rest": {"status_from_metadata": true}}}));
    let mut ctx = transcoded_post(&root);
    let upstream: Vec<(&str, &str)> =
        UPSTREAM_HEADERS.iter().copied().chain([("x-http-code", "202"), ("location", "/v1/things/t1")]).collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    assert_eq!(
        sorted(map(Map::ResponseHeaders)),
        sorted(pairs(&[
            (":status", "202"),
            ("content-type", "application/json"),
            ("x-served-by", "pod-1"),
            ("location", "/v1/things/t1"),
        ]))
    );
    let message = framed("test.v1.Everything", json!({"id": "t1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &message, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
    assert_eq!(json_body(&buffer(Buffer::HttpResponseBody).unwrap()), json!({"id": "t1"}));

    // 204: no content-type, and the JSON is dropped.
    mock_host::reset();
    let mut ctx = transcoded_post(&root);
    let upstream: Vec<(&str, &str)> = UPSTREAM_HEADERS.iter().copied().chain([("x-http-code", "204")]).collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    let sent = map(Map::ResponseHeaders);
    assert_eq!((get(&sent, ":status"), get(&sent, "content-type")), (Some("204"), None));
    assert_eq!(response_chunk(ctx.as_mut(), &message, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
    assert_eq!(buffer(Buffer::HttpResponseBody), Some(vec![]));

    // An invalid value is ignored (removed, logged); the status stays 200.
    mock_host::reset();
    let mut ctx = transcoded_post(&root);
    let upstream: Vec<(&str, &str)> = UPSTREAM_HEADERS.iter().copied().chain([("x-http-code", "2O1")]).collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    let sent = map(Map::ResponseHeaders);
    assert_eq!((get(&sent, ":status"), get(&sent, "x-http-code")), (Some("200"), None));
    assert!(logs(3).iter().any(|l| l.contains("ignored x-http-code \"2O1\"")), "{:?}", logs(3));
}

#[test]
fn without_the_option_x_http_code_is_a_header_like_any_other() {
    let root = root();
    let mut ctx = transcoded_post(&root);
    let upstream: Vec<(&str, &str)> = UPSTREAM_HEADERS.iter().copied().chain([("x-http-code", "201")]).collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    let sent = map(Map::ResponseHeaders);
    assert_eq!((get(&sent, ":status"), get(&sent, "x-http-code")), (Some("200"), Some("201")));
}

#[test]
fn a_configured_success_status_applies_to_successes_only() {
    let rest = json!({"success_status": {"test.v1.Things.Create": 201}});
    // Held headers: the status is decided at the trailers.
    let root = root_with(json!({"json2grpc": {"rest": rest, "allow_on_headers_stop_iteration": true}}));
    let mut ctx = transcoded_post_with(&root, Action::Pause);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Pause);
    let message = framed("test.v1.Everything", json!({"id": "t1"}));
    assert_eq!(response_chunk(ctx.as_mut(), &message, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "0")]), Action::Continue);
    assert_eq!(get(&map(Map::ResponseHeaders), ":status"), Some("201"));
    mock_host::reset();
    let mut ctx = transcoded_post_with(&root, Action::Pause);
    assert_eq!(response_headers(ctx.as_mut(), UPSTREAM_HEADERS, false), Action::Pause);
    assert_eq!(response_chunk(ctx.as_mut(), &message, false), Action::Pause);
    assert_eq!(response_trailers(ctx.as_mut(), &[("grpc-status", "6")]), Action::Continue);
    assert_eq!(get(&map(Map::ResponseHeaders), ":status"), Some("409"));
    // A trailers-only error keeps its status; another method keeps 200.
    mock_host::reset();
    let mut ctx = transcoded_post_with(&root, Action::Pause);
    let error = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "5")];
    assert_eq!(response_headers(ctx.as_mut(), &error, true), Action::Pause);
    assert_eq!(reply().status, 404);
    // An unknown method name is a config error naming it.
    setup();
    let mut bad = Root::default();
    let config = config(json!({"json2grpc": {"rest": {"success_status": {"test.v1.Things.Nope": 201}}}}));
    assert!(!configure(&mut bad, &config));
    assert!(logs(4)[0].contains("json2grpc.rest.success_status.test.v1.Things.Nope"), "{:?}", logs(4));
}

#[test]
fn a_stream_takes_the_success_status_but_not_a_204() {
    let root = root_with(json!({"json2grpc": {"rest": {"status_from_metadata": true}}}));
    for (code, status) in [("201", "201"), ("204", "200")] {
        mock_host::reset();
        let mut ctx =
            request(&root, &[(":method", "POST"), (":path", "/v1/chat"), ("content-type", "application/json")]);
        assert_eq!(ctx.on_http_request_headers(3, false), Action::Continue);
        assert_eq!(request_chunk(ctx.as_mut(), br#"[{"id":"q"}]"#, true), Action::Continue);
        let upstream: Vec<(&str, &str)> = UPSTREAM_HEADERS.iter().copied().chain([("x-http-code", code)]).collect();
        assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
        let sent = map(Map::ResponseHeaders);
        assert_eq!((get(&sent, ":status"), get(&sent, "content-type")), (Some(status), Some("application/json")));
    }
}

/// With a CORS policy, only the policy writes `access-control-*`: a service's own (from its
/// initial metadata) would widen it, e.g. credentials the policy does not allow, or CORS for an
/// origin it refuses. (Found by review: they passed through on the in-stream path.)
#[test]
fn a_services_own_cors_headers_never_reach_the_client() {
    let root = cors_root(json!({}));
    let cors_sent = || -> Vec<(String, String)> {
        map(Map::ResponseHeaders).into_iter().filter(|(k, _)| k.starts_with("access-control-")).collect()
    };
    let headers: Vec<(&str, &str)> = POST_HEADERS.iter().copied().chain([("origin", ORIGIN)]).collect();
    let mut ctx = request(&root, &headers);
    assert_eq!(ctx.on_http_request_headers(8, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    let upstream: Vec<(&str, &str)> = UPSTREAM_HEADERS
        .iter()
        .copied()
        .chain([("access-control-allow-credentials", "true"), ("Access-Control-Allow-Methods", "PUT")])
        .collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    let sent = cors_sent();
    assert!(
        sent.iter().all(|(k, _)| k != "access-control-allow-credentials" && k != "access-control-allow-methods"),
        "{sent:?}"
    );
    assert!(sent.iter().any(|(k, v)| k == "access-control-allow-origin" && v == ORIGIN), "{sent:?}");

    // Another origin: no CORS headers at all, whatever the service says.
    mock_host::reset();
    let other: Vec<(&str, &str)> = POST_HEADERS.iter().copied().chain([("origin", "https://evil.test")]).collect();
    let mut ctx = request(&root, &other);
    assert_eq!(ctx.on_http_request_headers(8, false), Action::Continue);
    assert_eq!(request_chunk(ctx.as_mut(), CREATE_BODY, true), Action::Continue);
    let upstream: Vec<(&str, &str)> =
        UPSTREAM_HEADERS.iter().copied().chain([("access-control-allow-origin", "*")]).collect();
    assert_eq!(response_headers(ctx.as_mut(), &upstream, false), Action::Continue);
    assert_eq!(cors_sent(), Vec::<(String, String)>::new());
}
