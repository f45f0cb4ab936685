//! The client's request headers that concern the gRPC call: which `grpc-*` headers reach the
//! service, the client's deadline, and the original path the service is told about.
//!
//! The filter owns the gRPC framing: it sends uncompressed messages and reads only
//! uncompressed ones, so a client's `grpc-encoding` (its frames are not compressed) or
//! `grpc-accept-encoding` (the service could compress what the filter cannot read) would only
//! break the call; the other `grpc-*` names are the protocol's own (status, message, …). The
//! client's deadline (`grpc-timeout`) is honoured once validated, and tracing
//! (`grpc-trace-bin`, `grpc-tags-bin`) passes.
use crate::core::error::{Error, Result};
use crate::core::route::percent::decode_query_component;

/// `grpc-*` request headers that pass to the service; every other `grpc-*` header is removed.
const KEPT_GRPC_HEADERS: &[&str] = &["grpc-timeout", "grpc-trace-bin", "grpc-tags-bin"];

/// Whether a client request header (lower case) may reach the service.
pub fn passes(name: &[u8]) -> bool {
    !name.starts_with(b"grpc-") || KEPT_GRPC_HEADERS.iter().any(|k| k.as_bytes() == name)
}

/// The client's deadline from `grpc-timeout`, in nanoseconds: at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`), as the gRPC HTTP/2 protocol defines it. Anything else is a
/// 400: the service would refuse the call.
pub fn parse_grpc_timeout(value: &[u8]) -> Result<u64> {
    let invalid = || {
        Error::bad_request(format!(
            "invalid grpc-timeout header {:?}: expected 1 to 8 digits and a unit (H, M, S, m, u, n)",
            String::from_utf8_lossy(value.get(..value.len().min(32)).unwrap_or_default())
        ))
    };
    let (unit, digits) = value.split_last().ok_or_else(invalid)?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let nanos_per_unit: u64 = match unit {
        b'H' => 3_600_000_000_000,
        b'M' => 60_000_000_000,
        b'S' => 1_000_000_000,
        b'm' => 1_000_000,
        b'u' => 1_000,
        b'n' => 1,
        _ => return Err(invalid()),
    };
    Ok(n.saturating_mul(nanos_per_unit))
}

/// The deadline of the filter's own call: the configured timeout, or the client's if sooner
/// (rounded up to a whole millisecond: Envoy's timer has no finer grain, and 0 would mean none).
pub fn callout_timeout_ms(configured_ms: u32, client_nanos: Option<u64>) -> u32 {
    let Some(nanos) = client_nanos else { return configured_ms };
    let ms = u32::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u32::MAX);
    configured_ms.min(ms.max(1))
}

/// `path` (with its query) without the query parameters the config ignores
/// (`ignored_query_parameters`, e.g. `api_key`): the service is told the original path in
/// `x-envoy-original-path`, and a credential the config keeps from it must not travel there.
/// `ignored` is sorted, as the config keeps it.
pub fn original_path(path: &str, ignored: &[String], unescape_plus: bool) -> String {
    let Some((path_only, query)) = path.split_once('?') else { return path.to_string() };
    if ignored.is_empty() {
        return path.to_string();
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let raw_name = pair.split_once('=').map_or(*pair, |(n, _)| n);
            let name = decode_query_component(raw_name, unescape_plus);
            !crate::core::config::sorted_contains(ignored, &name)
        })
        .collect();
    if kept.is_empty() {
        return path_only.to_string();
    }
    format!("{path_only}?{}", kept.join("&"))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn only_deadline_and_tracing_grpc_headers_pass() {
        for name in ["grpc-timeout", "grpc-trace-bin", "grpc-tags-bin", "x-user", "authorization", "grpcx"] {
            assert!(passes(name.as_bytes()), "{name}");
        }
        for name in ["grpc-encoding", "grpc-accept-encoding", "grpc-status", "grpc-message", "grpc-status-details-bin"]
        {
            assert!(!passes(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn grpc_timeout_values() {
        assert_eq!(parse_grpc_timeout(b"1n").unwrap(), 1);
        assert_eq!(parse_grpc_timeout(b"5S").unwrap(), 5_000_000_000);
        assert_eq!(parse_grpc_timeout(b"250m").unwrap(), 250_000_000);
        assert_eq!(parse_grpc_timeout(b"99999999H").unwrap(), u64::MAX, "saturates: 11,000 years");
        for bad in [&b""[..], b"S", b"5", b"123456789S", b"5s", b"-5S", b"5 S", b" 5S", b"5SS", b"\xff"] {
            let e = parse_grpc_timeout(bad).unwrap_err();
            assert_eq!(e.http_status, 400, "{bad:?}");
            assert!(e.message.contains("grpc-timeout"), "{e}");
        }
    }

    #[test]
    fn the_sooner_deadline_bounds_the_call() {
        assert_eq!(callout_timeout_ms(15_000, None), 15_000);
        assert_eq!(callout_timeout_ms(15_000, Some(5_000_000_000)), 5_000);
        assert_eq!(callout_timeout_ms(15_000, Some(60_000_000_000)), 15_000);
        assert_eq!(callout_timeout_ms(15_000, Some(1)), 1, "1n is a deadline, not none");
        assert_eq!(callout_timeout_ms(15_000, Some(1_500_001)), 2);
        assert_eq!(callout_timeout_ms(u32::MAX, Some(u64::MAX)), u32::MAX);
    }

    #[test]
    fn ignored_query_parameters_leave_the_original_path() {
        let ignored = vec!["api_key".to_string()];
        assert_eq!(original_path("/v1/x?api_key=secret&a=1", &ignored, false), "/v1/x?a=1");
        assert_eq!(original_path("/v1/x?a=1&api%5Fkey=s&api_key&b=2", &ignored, false), "/v1/x?a=1&b=2");
        assert_eq!(original_path("/v1/x?api_key=s", &ignored, false), "/v1/x");
        assert_eq!(original_path("/v1/x?a=1", &ignored, false), "/v1/x?a=1");
        assert_eq!(original_path("/v1/x", &ignored, false), "/v1/x");
        assert_eq!(original_path("/v1/x?api_key=s", &[], false), "/v1/x?api_key=s");
    }
}
