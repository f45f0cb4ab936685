//! One request's state machine. Decisions are the core's; this moves headers and bytes.
//!
//! ```text
//!            ┌─ pass-through (gRPC already, no route, …)
//! headers ───┼─ reject → local JSON reply
//!            ├─ body follows → rewrite headers → RequestBody ─ end → framed message → Upstream
//!            └─ no body → Callout (our own gRPC call) → local reply with the JSON
//! Upstream: response headers ─┬─ not gRPC → pass through unchanged
//!                             ├─ trailers-only → local reply (mapped status, JSON error)
//!                             └─ Response → body buffered → trailers → JSON body
//! ```
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::callout;
use super::host::{self, Buffer, Map};
use crate::core::error::Error;
use crate::core::frame::encode_frame;
use crate::core::grpc_status::GrpcStatus;
use crate::core::request::{Decision, RequestPlan};
use crate::core::response::ResponseTranscoder;
use crate::core::router::HttpBinding;
use crate::core::transcoder::{is_grpc_content_type, Transcoder};

enum State {
    /// Not ours: every callback continues.
    PassThrough,
    /// A local reply was sent; later callbacks (including for that reply) continue.
    Replied,
    /// The request body is being buffered until its end.
    RequestBody {
        plan: RequestPlan,
        content_type: Option<String>,
    },
    /// The request went upstream as gRPC; waiting for the response headers.
    Upstream { binding: Arc<HttpBinding> },
    /// A gRPC response is being translated; its body is buffered by Envoy until the trailers.
    /// `held`: the response headers are held too (`allow_on_headers_stop_iteration`).
    Response {
        response: Box<ResponseTranscoder>,
        body_size: usize,
        held: bool,
    },
    /// Our own gRPC call for a bodyless request is in flight.
    Callout {
        token: u32,
        binding: Arc<HttpBinding>,
    },
}

pub struct Http {
    transcoder: Option<Rc<Transcoder>>,
    state: State,
}

impl Http {
    pub fn new(transcoder: Option<Rc<Transcoder>>) -> Self {
        Http {
            transcoder,
            state: State::PassThrough,
        }
    }

    /// Answers the client with a JSON error and stops the stream.
    fn reply_error(&mut self, error: &Error) -> Action {
        log::debug!("rejecting request: {error}");
        self.reply(error.http_status, "application/json", &error.to_json())
    }

    fn reply(&mut self, status: u16, content_type: &str, body: &[u8]) -> Action {
        self.state = State::Replied;
        if !host::send_response(status, &[("content-type", content_type)], body) {
            log::warn!("the local reply ({status}) could not be sent");
        }
        Action::Pause
    }

    fn max_request_body(&self) -> Option<usize> {
        let t = self.transcoder.as_ref()?;
        t.config
            .max_request_body_size
            .and_then(|m| usize::try_from(m).ok())
    }

    fn too_large() -> Error {
        Error::payload_too_large("request body exceeds max_request_body_size")
    }

    /// Rewrites the request into a gRPC call. Only possible here: once the headers callback
    /// returned Continue, Envoy releases the header map (later edits fail).
    fn rewrite_request_headers(plan: &RequestPlan, method: &str, path: &str) {
        let grpc_path = plan.method().path();
        let edits: [(&str, &[u8]); 6] = [
            ("x-envoy-original-path", path.as_bytes()),
            ("x-envoy-original-method", method.as_bytes()),
            (":method", b"POST"),
            // Changing :path makes Envoy re-match the route on the gRPC path.
            (":path", grpc_path.as_bytes()),
            ("content-type", b"application/grpc"),
            // Without te: trailers gRPC servers reset the stream (Envoy then answers 503).
            ("te", b"trailers"),
        ];
        for (name, value) in edits {
            if !host::set_header(Map::RequestHeaders, name, value) {
                log::warn!("could not set request header {name}");
            }
        }
        // The framed message has another length; Envoy recomputes it on the wire.
        host::remove_header(Map::RequestHeaders, "content-length");
    }

    fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(t) = self.transcoder.clone() else {
            return Action::Continue;
        };
        let method = host::header_str(Map::RequestHeaders, ":method").unwrap_or_default();
        let path = host::header_str(Map::RequestHeaders, ":path").unwrap_or_default();
        let content_type = host::header_str(Map::RequestHeaders, "content-type");
        let plan = match t.route(&method, &path, content_type.as_deref()) {
            Decision::PassThrough(reason) => {
                log::trace!("pass-through {method} {path}: {reason:?}");
                return Action::Continue;
            }
            Decision::Reject(error) => return self.reply_error(&error),
            Decision::Transcode(plan) => plan,
        };
        if let (Some(max), Some(length)) = (
            self.max_request_body(),
            host::header_str(Map::RequestHeaders, "content-length"),
        ) {
            if length.trim().parse::<usize>().is_ok_and(|l| l > max) {
                return self.reply_error(&Self::too_large());
            }
        }
        if end_of_stream {
            return self.start_callout(&t, plan, &method, &path);
        }
        Self::rewrite_request_headers(&plan, &method, &path);
        self.state = State::RequestBody { plan, content_type };
        Action::Continue
    }

    fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let State::RequestBody { .. } = &self.state else {
            return Action::Continue;
        };
        if self.max_request_body().is_some_and(|max| body_size > max) {
            return self.reply_error(&Self::too_large());
        }
        if !end_of_stream {
            // Pause buffers the chunks in Envoy (413 from Envoy past its buffer limit).
            return Action::Pause;
        }
        self.finish_request_body(body_size)
    }

    /// The whole body is here: replace it with the framed gRPC message.
    fn finish_request_body(&mut self, body_size: usize) -> Action {
        let Some(t) = self.transcoder.clone() else {
            return Action::Continue;
        };
        let State::RequestBody { plan, content_type } =
            std::mem::replace(&mut self.state, State::PassThrough)
        else {
            return Action::Continue;
        };
        let body = host::buffer(Buffer::HttpRequestBody, 0, body_size);
        let framed = t
            .request_message(&plan, &body, content_type.as_deref())
            .and_then(|message| {
                let mut framed = Vec::with_capacity(message.len().saturating_add(5));
                encode_frame(&message, &mut framed)?;
                Ok(framed)
            });
        match framed {
            Ok(framed) => {
                // (0, size) replaces everything; Envoy supports no other splice.
                if !host::set_buffer(Buffer::HttpRequestBody, 0, body_size, &framed) {
                    return self
                        .reply_error(&Error::internal("could not replace the request body"));
                }
                self.state = State::Upstream {
                    binding: plan.binding,
                };
                Action::Continue
            }
            Err(error) => self.reply_error(&error),
        }
    }

    fn start_callout(
        &mut self,
        t: &Transcoder,
        plan: RequestPlan,
        method: &str,
        path: &str,
    ) -> Action {
        let message = match t.request_message(&plan, &[], None) {
            Ok(m) => m,
            Err(e) => return self.reply_error(&e),
        };
        let mut framed = Vec::with_capacity(message.len().saturating_add(5));
        if let Err(e) = encode_frame(&message, &mut framed) {
            return self.reply_error(&e);
        }
        let info = plan.method();
        // Read before any header change: afterwards it may name another route's cluster.
        let route_cluster =
            host::property(&["xds", "cluster_name"]).and_then(|v| String::from_utf8(v).ok());
        let Some(cluster) = callout::cluster_for(&t.config.callout, &info.service, route_cluster)
        else {
            return self.reply_error(
                &Error::new(crate::core::status::Code::Unavailable, format!(
                    "no upstream cluster for {}: the request's route has none and json2grpc.callout.clusters does not name one",
                    info.service
                )),
            );
        };
        let authority =
            host::header_str(Map::RequestHeaders, ":authority").unwrap_or_else(|| cluster.clone());
        let forwarded: Vec<(String, String)> = host::headers(Map::RequestHeaders)
            .into_iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?)))
            .filter(|(k, _)| callout::is_forwarded(&t.config.callout, k))
            .collect();
        let headers = callout::call_headers(
            &info.path(),
            &authority,
            t.config.callout.timeout_ms,
            method,
            path,
            forwarded,
        );
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let timeout = Duration::from_millis(u64::from(t.config.callout.timeout_ms));
        match self.dispatch_http_call(&cluster, headers, Some(&framed), vec![], timeout) {
            Ok(token) => {
                self.state = State::Callout {
                    token,
                    binding: plan.binding,
                };
                // Paused until the call's response arrives in on_http_call_response.
                Action::Pause
            }
            Err(status) => self.reply_error(&Error::new(
                crate::core::status::Code::Unavailable,
                format!("cannot call cluster \"{cluster}\" ({status:?})"),
            )),
        }
    }

    fn on_callout_response(&mut self, token: u32, body_size: usize) {
        let Some(t) = self.transcoder.clone() else {
            return;
        };
        let State::Callout {
            token: expected,
            binding,
        } = &self.state
        else {
            return;
        };
        if *expected != token {
            return;
        }
        let binding = binding.clone();
        let headers = host::headers(Map::HttpCallResponseHeaders);
        let trailers = host::headers(Map::HttpCallResponseTrailers);
        let find = |name: &str| {
            trailers
                .iter()
                .chain(headers.iter())
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        let content_type = find("content-type")
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or("");
        if headers.is_empty() || !is_grpc_content_type(content_type) {
            // Envoy's own answer (no healthy upstream, timeout, reset, …), not gRPC.
            let status = find(":status")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse::<u16>().ok());
            let error = callout_failure(status);
            self.reply_error(&error);
            return;
        }
        let status = GrpcStatus::from_metadata(
            &t.pool,
            find("grpc-status"),
            find("grpc-message"),
            find("grpc-status-details-bin"),
        );
        let max_body = match (
            binding.method.server_streaming,
            t.config.max_response_body_size,
        ) {
            // A bodyless call to a server stream cannot stream: it is buffered whole, capped.
            (true, limit) => Some(limit.map_or(t.config.callout.max_stream_bytes, |l| {
                l.min(t.config.callout.max_stream_bytes)
            })),
            (false, limit) => limit,
        };
        let mut response = ResponseTranscoder::new(
            &binding,
            &t.config.print_options,
            t.config.limits.max_frame_size,
            max_body,
            None,
        );
        if binding.method.server_streaming
            && max_body.is_some_and(|m| u64::try_from(body_size).unwrap_or(u64::MAX) > u64::from(m))
        {
            self.reply_error(&Error::internal(format!(
                "server stream of {body_size} bytes exceeds the {} bytes a bodyless request may buffer \
                 (json2grpc.callout.max_stream_bytes); send the request with a body to stream it",
                max_body.unwrap_or(0)
            )));
            return;
        }
        let body = host::buffer(Buffer::HttpCallResponseBody, 0, body_size);
        let mut out = Vec::new();
        let result = response
            .push_framed(&body, &mut out)
            .and_then(|()| response.finish(status, &mut out));
        match result {
            Ok(()) => {
                let content_type = response.content_type().into_owned();
                self.reply(200, &content_type, &out);
            }
            Err(error) => {
                self.reply_error(&error);
            }
        }
    }

    fn on_response_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(t) = self.transcoder.clone() else {
            return Action::Continue;
        };
        let binding = match &self.state {
            State::Upstream { binding } => binding.clone(),
            State::RequestBody { plan, .. } => plan.binding.clone(),
            _ => return Action::Continue,
        };
        let content_type =
            host::header_str(Map::ResponseHeaders, "content-type").unwrap_or_default();
        if !is_grpc_content_type(&content_type) {
            // Not gRPC (Envoy's own 503/404/413, a REST upstream): pass through unchanged.
            self.state = State::PassThrough;
            return Action::Continue;
        }
        if end_of_stream {
            // Trailers-only: the status is in these headers and no body can be added here,
            // but a local reply can still replace the response.
            let status = read_status(&t, Map::ResponseHeaders);
            let mut response = ResponseTranscoder::new(
                &binding,
                &t.config.print_options,
                t.config.limits.max_frame_size,
                t.config.max_response_body_size,
                None,
            );
            let mut out = Vec::new();
            return match response.finish(status, &mut out) {
                Ok(()) => {
                    let content_type = response.content_type().into_owned();
                    self.reply(200, &content_type, &out)
                }
                Err(error) => self.reply_error(&error),
            };
        }
        let encoding = host::header_str(Map::ResponseHeaders, "grpc-encoding");
        let response = ResponseTranscoder::new(
            &binding,
            &t.config.print_options,
            t.config.limits.max_frame_size,
            t.config.max_response_body_size,
            encoding.as_deref(),
        );
        if t.config.allow_on_headers_stop_iteration {
            // Envoy keeps delivering the body while the headers are held (only with
            // allow_on_headers_stop_iteration; otherwise Pause here would stop everything).
            self.state = State::Response {
                response: Box::new(response),
                body_size: 0,
                held: true,
            };
            return Action::Pause;
        }
        // Headers go downstream when this returns Continue: the status (200) is final from
        // here on, so a later gRPC error can only travel in the body.
        let content_type = response.content_type().into_owned();
        host::set_header(
            Map::ResponseHeaders,
            "content-type",
            content_type.as_bytes(),
        );
        strip_grpc_headers();
        self.state = State::Response {
            response: Box::new(response),
            body_size: 0,
            held: false,
        };
        Action::Continue
    }

    fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let State::Response {
            body_size: size, ..
        } = &mut self.state
        else {
            return Action::Continue;
        };
        *size = body_size;
        if !end_of_stream {
            // Buffered until the trailers carry the status.
            return Action::Pause;
        }
        // A gRPC response that ends without trailers has no status: an upstream error.
        self.finish_response(None);
        Action::Continue
    }

    fn on_response_trailers(&mut self) -> Action {
        let State::Response { .. } = &self.state else {
            return Action::Continue;
        };
        self.finish_response(Some(Map::ResponseTrailers));
        for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            host::remove_header(Map::ResponseTrailers, name);
        }
        Action::Continue
    }

    /// Replaces the buffered gRPC body with its JSON (or the JSON error).
    fn finish_response(&mut self, status_map: Option<Map>) {
        let Some(t) = self.transcoder.clone() else {
            return;
        };
        let State::Response {
            mut response,
            body_size,
            held,
        } = std::mem::replace(&mut self.state, State::PassThrough)
        else {
            return;
        };
        let status = match status_map {
            Some(map) => read_status(&t, map),
            None => GrpcStatus::from_metadata(&t.pool, None, None, None),
        };
        let body = host::buffer(Buffer::HttpResponseBody, 0, body_size);
        let mut out = Vec::new();
        let result = response
            .push_framed(&body, &mut out)
            .and_then(|()| response.finish(status, &mut out));
        let (http_status, content_type, out) = match result {
            Ok(()) => (200, response.content_type().into_owned(), out),
            Err(error) => {
                log::debug!("upstream error after response headers: {error}");
                (
                    error.http_status,
                    "application/json".to_string(),
                    error.to_json(),
                )
            }
        };
        if held {
            // The headers are still ours: give the exact status and length.
            let edits = [
                (":status", http_status.to_string()),
                ("content-type", content_type.clone()),
                ("content-length", out.len().to_string()),
            ];
            let mut ok = true;
            for (name, value) in &edits {
                ok &= host::set_header(Map::ResponseHeaders, name, value.as_bytes());
            }
            strip_grpc_headers();
            if ok && host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &out) {
                return;
            }
            // No body was buffered (headers then trailers): a local reply still can replace it.
            self.reply(http_status, &content_type, &out);
            return;
        }
        if !host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &out) {
            log::warn!("could not replace the response body (no body was buffered)");
        }
    }
}

/// gRPC response headers a JSON client has no use for.
fn strip_grpc_headers() {
    for name in [
        "content-length",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-status",
        "grpc-message",
    ] {
        host::remove_header(Map::ResponseHeaders, name);
    }
}

/// The gRPC status in a header or trailer map.
fn read_status(t: &Transcoder, map: Map) -> GrpcStatus {
    let status = host::header(map, "grpc-status");
    let message = host::header(map, "grpc-message");
    let details = host::header(map, "grpc-status-details-bin");
    GrpcStatus::from_metadata(
        &t.pool,
        status.as_deref(),
        message.as_deref(),
        details.as_deref(),
    )
}

/// A callout answered by Envoy instead of the service.
fn callout_failure(status: Option<u16>) -> Error {
    use crate::core::status::Code;
    match status {
        Some(504) => Error::new(
            Code::DeadlineExceeded,
            "the gRPC call timed out (json2grpc.callout.timeout_ms)",
        ),
        Some(s) => Error::new(
            Code::Unavailable,
            format!("the upstream answered HTTP {s} instead of gRPC"),
        ),
        None => Error::new(
            Code::Unavailable,
            "the gRPC call failed (connection reset or refused)",
        ),
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.on_callout_response(token_id, body_size);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.on_request_headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body followed by trailers ends here, not in the body callback.
        if let State::RequestBody { .. } = self.state {
            let size = host::buffer(Buffer::HttpRequestBody, 0, usize::MAX).len();
            return self.finish_request_body(size);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.on_response_headers(end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_response_body(body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_response_trailers()
    }
}
