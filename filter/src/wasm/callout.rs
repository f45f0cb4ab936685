//! Requests that end at their headers (GET, DELETE, …): Envoy cannot add a body to them
//! (proxy-wasm spec issue #86), and a gRPC server rejects a call without a message. So the
//! filter makes the gRPC call itself and answers with a local reply.
//!
//! The call is an HTTP/2 request built by hand and sent with `dispatch_http_call`:
//! - it takes a plain cluster name (the gRPC call APIs first try to parse their `upstream`
//!   argument as a serialized GrpcService, and some names crash Envoy that way);
//! - it delivers the response trailers, so `grpc-status-details-bin` survives (the unary gRPC
//!   callout API drops trailing metadata);
//! - Envoy enforces its timeout.
//!
//! Sent straight to a cluster, a call bypasses the route: no route timeout, retries or
//! traffic policy apply. Sent to `json2grpc.callout.loopback_cluster` (an internal listener of
//! the same Envoy), it is routed by its gRPC path like a request with a body.

use crate::core::config::CalloutOptions;
use crate::core::request::client_headers;

/// Request headers that never travel as the call's metadata: the call's own (Envoy's
/// pseudo-headers, the gRPC content-type and `te`, the filter's deadline and original path),
/// hop-by-hop headers (RFC 9110 §7.6.1; `proxy-*`), and the body's length.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "grpc-timeout",
    "x-envoy-original-path",
    "x-envoy-original-method",
];

/// The cluster for a service: its configured override, else the loopback cluster (back into
/// Envoy, routed by the gRPC path), else the REST route's cluster.
pub fn cluster_for(options: &CalloutOptions, service: &str, route_cluster: Option<String>) -> Option<String> {
    let found = options.clusters.binary_search_by(|(s, _)| s.as_str().cmp(service)).ok();
    found
        .and_then(|i| options.clusters.get(i))
        .map(|(_, c)| c.clone())
        .or_else(|| options.loopback_cluster.clone())
        .or(route_cluster)
        .filter(|c| !c.is_empty())
}

/// Whether a downstream request header (lower case) travels as metadata of the call: every
/// header a request with a body would carry upstream, except those above, the client's `grpc-*`
/// headers the filter owns, and `json2grpc.callout.drop_headers`.
pub fn is_forwarded(options: &CalloutOptions, name: &str) -> bool {
    !name.starts_with(':')
        && !name.starts_with("proxy-")
        && !NOT_FORWARDED.contains(&name)
        && client_headers::passes(name.as_bytes())
        && !crate::core::config::sorted_contains(&options.drop_headers, name.as_bytes())
}

/// The HTTP status of Envoy's own answer to a call sent back into Envoy, added by the loopback
/// listener's `local_reply_config` (its answers to a gRPC call are gRPC errors).
pub const LOCAL_REPLY_HEADER: &str = "x-json2grpc-local-reply";

/// Whether a header of the call's answer (the service's initial metadata, or a trailers-only
/// error's) becomes a header of the reply, as it would on the in-stream path: not the
/// pseudo-headers, not the gRPC protocol's (`grpc-*`, its content-type), not the length or
/// hop-by-hop headers (the reply has its own).
pub fn is_returned(name: &[u8]) -> bool {
    !(name.starts_with(b":")
        || name.starts_with(b"grpc-")
        || name == LOCAL_REPLY_HEADER.as_bytes()
        || name.starts_with(b"proxy-")
        || matches!(
            name,
            b"content-type"
                | b"content-length"
                | b"connection"
                | b"keep-alive"
                | b"te"
                | b"trailer"
                | b"transfer-encoding"
                | b"upgrade"
        ))
}

/// The headers of the gRPC call: pseudo-headers, gRPC's own, a deadline, and the forwarded
/// request headers.
pub fn call_headers(
    grpc_path: &str,
    authority: &str,
    timeout_ms: u32,
    original_method: &str,
    original_path: &str,
    forwarded: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), grpc_path.to_string()),
        (":authority".to_string(), authority.to_string()),
        ("content-type".to_string(), "application/grpc".to_string()),
        // Without `te: trailers` gRPC servers reset the stream.
        ("te".to_string(), "trailers".to_string()),
        // The service learns its deadline (Envoy also enforces the same timeout on the call).
        ("grpc-timeout".to_string(), format!("{timeout_ms}m")),
        ("x-envoy-original-method".to_string(), original_method.to_string()),
        ("x-envoy-original-path".to_string(), original_path.to_string()),
    ];
    headers.extend(forwarded);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_cluster_wins_over_the_route() {
        let mut options = CalloutOptions::default();
        assert_eq!(cluster_for(&options, "a.B", Some("route".into())).as_deref(), Some("route"));
        assert_eq!(cluster_for(&options, "a.B", None), None);
        assert_eq!(cluster_for(&options, "a.B", Some(String::new())), None);
        options.loopback_cluster = Some("json2grpc_loopback".into());
        assert_eq!(cluster_for(&options, "a.B", Some("route".into())).as_deref(), Some("json2grpc_loopback"));
        options.clusters.push(("a.B".into(), "pinned".into()));
        assert_eq!(cluster_for(&options, "a.B", Some("route".into())).as_deref(), Some("pinned"));
        assert_eq!(cluster_for(&options, "c.D", Some("route".into())).as_deref(), Some("json2grpc_loopback"));
    }

    #[test]
    fn every_header_but_the_calls_own_is_forwarded() {
        let mut options = CalloutOptions::default();
        for name in ["authorization", "x-request-id", "traceparent", "x-user", "x-tenant", "cookie", "grpc-trace-bin"] {
            assert!(is_forwarded(&options, name), "{name}");
        }
        for name in [
            ":path",
            ":authority",
            "te",
            "connection",
            "keep-alive",
            "upgrade",
            "transfer-encoding",
            "proxy-authorization",
            "content-length",
            "content-type",
            "grpc-timeout",
            "grpc-encoding",
            "grpc-accept-encoding",
            "x-envoy-original-path",
        ] {
            assert!(!is_forwarded(&options, name), "{name}");
        }
        options.drop_headers.push("cookie".into());
        assert!(!is_forwarded(&options, "cookie"));
        // From the config, in any order and case, repeated: kept sorted for the binary search.
        let config = crate::core::config::Config::from_json(
            br#"{"proto_descriptor_bin": "", "json2grpc": {"callout": {"drop_headers": ["X-B", "cookie", "x-a", "Cookie"],
                "clusters": {"z.Z": "z", "a.A": "a", "m.M": "m"}}}}"#,
        )
        .unwrap();
        let options = &config.callout;
        for name in ["x-b", "cookie", "x-a"] {
            assert!(!is_forwarded(options, name), "{name}");
        }
        assert!(is_forwarded(options, "x-c"));
        for (service, cluster) in [("z.Z", "z"), ("a.A", "a"), ("m.M", "m")] {
            assert_eq!(cluster_for(options, service, None).as_deref(), Some(cluster));
        }
        assert_eq!(cluster_for(options, "b.B", None), None);
    }

    #[test]
    fn the_answers_metadata_becomes_reply_headers_but_grpc_and_framing() {
        for name in ["x-resp", "location", "x-envoy-upstream-service-time", "set-cookie"] {
            assert!(is_returned(name.as_bytes()), "{name}");
        }
        for name in [":status", "grpc-status", "grpc-message", "grpc-encoding", "content-type", "content-length"] {
            assert!(!is_returned(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn call_headers_carry_grpc_essentials_and_deadline() {
        let h = call_headers("/a.B/C", "svc", 1500, "GET", "/v1/x?y=1", vec![("x-request-id".into(), "r".into())]);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get(":method"), Some("POST"));
        assert_eq!(get(":path"), Some("/a.B/C"));
        assert_eq!(get("te"), Some("trailers"));
        assert_eq!(get("content-type"), Some("application/grpc"));
        assert_eq!(get("grpc-timeout"), Some("1500m"));
        assert_eq!(get("x-envoy-original-path"), Some("/v1/x?y=1"));
        assert_eq!(get("x-request-id"), Some("r"));
    }
}
