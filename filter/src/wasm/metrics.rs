//! The filter's Envoy stats (proxy-wasm metrics). Envoy shows them as `wasmcustom.<name>`;
//! Istio exports that prefix only when `proxyStatsMatcher` includes it. Defined once per
//! configuration, except per-method counters: those are defined on a method's first request,
//! so an API of 2,000 methods neither costs 6,000 host calls in `on_configure` nor adds 6,000
//! stats per worker for methods nobody calls.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::host::{self, MetricKind};
use crate::core::error::Error;
use crate::core::route::router::MethodInfo;

/// A defined metric (None if the host refused it: then it is simply not recorded).
#[derive(Debug, Clone, Copy, Default)]
pub struct Metric(Option<u32>);

impl Metric {
    pub(crate) fn define(kind: MetricKind, name: &str) -> Metric {
        Metric(host::define_metric(kind, name))
    }

    pub fn add(self, n: u64) {
        if let Some(id) = self.0 {
            host::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    pub fn inc(self) {
        self.add(1);
    }

    pub fn record(self, value: u64) {
        if let Some(id) = self.0 {
            host::record_metric(id, value);
        }
    }
}

/// What went wrong, for the `errors.<kind>` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client's request cannot be transcoded (bad JSON, bad URL value, unknown method…).
    InvalidRequest,
    /// A configured size limit was exceeded.
    Limit,
    /// The service answered with a non-OK gRPC status.
    UpstreamStatus,
    /// The service's response is not valid gRPC (bad frame, undecodable message, no status).
    UpstreamInvalid,
    /// The filter's own call for a bodyless request failed (timeout, no cluster, reset).
    Callout,
}

impl ErrorKind {
    /// The kind of an error the core produced on the request side.
    pub fn of_request(error: &Error) -> ErrorKind {
        match error.http_status {
            413 => ErrorKind::Limit,
            _ => ErrorKind::InvalidRequest,
        }
    }

    /// The kind of an error found while translating a response.
    pub fn of_response(error: &Error) -> ErrorKind {
        match error.http_status {
            502 => ErrorKind::UpstreamInvalid,
            500 if error.message.contains("max_response_body_size") => ErrorKind::Limit,
            _ => ErrorKind::UpstreamStatus,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct MethodMetrics {
    /// Requests transcoded in-stream (they had a body).
    pub requests: Metric,
    /// Bodyless requests sent by the filter's own call.
    pub callouts: Metric,
    /// Responses translated to JSON (OK status).
    pub responses: Metric,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub passthrough: Metric,
    pub invalid_request: Metric,
    pub limit: Metric,
    pub upstream_status: Metric,
    pub upstream_invalid: Metric,
    pub callout_failed: Metric,
    statuses: Vec<(u16, Metric)>,
    other_status: Metric,
    pub request_json_bytes: Metric,
    pub request_grpc_bytes: Metric,
    pub response_grpc_bytes: Metric,
    pub response_json_bytes: Metric,
    pub transcode_micros: Metric,
    /// Requests seen, to time one in [`TIMING_SAMPLE`].
    requests_seen: Cell<u32>,
    /// Per-method counters defined so far, by `pkg.Service/Method`.
    methods: RefCell<HashMap<String, MethodMetrics>>,
}

/// One request in this many is timed for `transcode_us`: a sample keeps the histogram's shape
/// without two clock reads (host calls) per step of every request.
pub const TIMING_SAMPLE: u32 = 8;

const STATUSES: [u16; 10] = [400, 401, 403, 404, 409, 413, 429, 500, 502, 503];

impl Metrics {
    /// Defines the stats of a configuration (names documented in README "Observability").
    pub fn define() -> Metrics {
        let counter = |name: &str| Metric::define(MetricKind::Counter, &format!("json2grpc.{name}"));
        Metrics {
            passthrough: counter("passthrough"),
            invalid_request: counter("errors.invalid_request"),
            limit: counter("errors.limit"),
            upstream_status: counter("errors.upstream_status"),
            upstream_invalid: counter("errors.upstream_invalid"),
            callout_failed: counter("errors.callout"),
            statuses: STATUSES.iter().map(|s| (*s, counter(&format!("errors.status_{s}")))).collect(),
            other_status: counter("errors.status_other"),
            request_json_bytes: counter("bytes.request_json"),
            request_grpc_bytes: counter("bytes.request_grpc"),
            response_grpc_bytes: counter("bytes.response_grpc"),
            response_json_bytes: counter("bytes.response_json"),
            transcode_micros: Metric::define(MetricKind::Histogram, "json2grpc.transcode_us"),
            requests_seen: Cell::new(0),
            methods: RefCell::new(HashMap::new()),
        }
    }

    /// Whether to time the next request (one in [`TIMING_SAMPLE`]; the first one always).
    pub fn sample_timing(&self) -> bool {
        let seen = self.requests_seen.get();
        self.requests_seen.set(seen.wrapping_add(1));
        seen % TIMING_SAMPLE == 0
    }

    /// The counters of a gRPC method, defined on first use.
    pub fn method(&self, method: &MethodInfo) -> MethodMetrics {
        // No re-entrance is possible here; a failed borrow just skips the count.
        let Ok(mut methods) = self.methods.try_borrow_mut() else {
            return MethodMetrics::default();
        };
        if let Some(m) = methods.get(&*method.full_name) {
            return *m;
        }
        let counter = |name: &str| {
            let name = format!("json2grpc.method.{}.{name}", method.full_name);
            Metric::define(MetricKind::Counter, &name)
        };
        let metrics = MethodMetrics {
            requests: counter("requests"),
            callouts: counter("callouts"),
            responses: counter("responses"),
        };
        methods.insert(method.full_name.to_string(), metrics);
        metrics
    }

    /// Counts an error answered to the client, by kind and HTTP status.
    pub fn error(&self, kind: ErrorKind, http_status: u16) {
        match kind {
            ErrorKind::InvalidRequest => self.invalid_request,
            ErrorKind::Limit => self.limit,
            ErrorKind::UpstreamStatus => self.upstream_status,
            ErrorKind::UpstreamInvalid => self.upstream_invalid,
            ErrorKind::Callout => self.callout_failed,
        }
        .inc();
        self.statuses.iter().find(|(s, _)| *s == http_status).map_or(self.other_status, |(_, m)| *m).inc();
    }
}

/// Microseconds since an arbitrary origin, from the host clock (no WASI clock import: Envoy
/// does not provide one).
pub fn now_micros() -> u64 {
    host::now_nanos() / 1000
}
