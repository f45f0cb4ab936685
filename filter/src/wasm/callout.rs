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
//! Callouts bypass the route: no route timeout, retries or traffic policy apply.
use crate::core::config::CalloutOptions;

/// Request headers copied into the call as gRPC metadata. Nothing is copied by Envoy itself,
/// and copying everything would break the call (`te`, `content-type`, `:path`, … are Envoy's).
pub const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "grpc-trace-bin",
];

/// The cluster for a service: the configured override, else the request route's cluster.
pub fn cluster_for(options: &CalloutOptions, service: &str, route_cluster: Option<String>) -> Option<String> {
    options
        .clusters
        .iter()
        .find(|(s, _)| s == service)
        .map(|(_, c)| c.clone())
        .or(route_cluster)
        .filter(|c| !c.is_empty())
}

/// Whether a downstream request header is forwarded as metadata.
pub fn is_forwarded(options: &CalloutOptions, name: &str) -> bool {
    FORWARDED_HEADERS.contains(&name) || options.forward_headers.iter().any(|h| h == name)
}

/// The headers of the gRPC call: pseudo-headers, gRPC's own, a deadline, and the whitelisted
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
        options.clusters.push(("a.B".into(), "pinned".into()));
        assert_eq!(cluster_for(&options, "a.B", Some("route".into())).as_deref(), Some("pinned"));
        assert_eq!(cluster_for(&options, "c.D", Some("route".into())).as_deref(), Some("route"));
    }

    #[test]
    fn only_whitelisted_headers_are_forwarded() {
        let mut options = CalloutOptions::default();
        for name in ["authorization", "x-request-id", "traceparent", "x-b3-traceid"] {
            assert!(is_forwarded(&options, name), "{name}");
        }
        for name in ["te", "content-type", ":path", "connection", "grpc-timeout", "cookie", "x-tenant"] {
            assert!(!is_forwarded(&options, name), "{name}");
        }
        options.forward_headers.push("x-tenant".into());
        assert!(is_forwarded(&options, "x-tenant"));
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
