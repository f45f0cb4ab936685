//! One request's state machine. Decisions are the core's; this moves headers and bytes.
//!
//! The request and the response side have their own state: a server may answer before the
//! request body ended (bidirectional streams, early errors), so both can be in flight at once.
//!
//! ```text
//! request:  headers ─┬─ pass-through (gRPC already, no route, …)
//!                    ├─ reject → local JSON reply
//!                    ├─ body follows → rewrite headers → Body (buffered) ─ end → framed message
//!                    │                                 → Stream (client stream, per element)
//!                    └─ no body → Callout (our own gRPC call) → local reply with the JSON
//! response: headers ─┬─ not gRPC → pass through unchanged
//!                    ├─ trailers-only → local reply (mapped status, JSON error)
//!                    ├─ unary → body buffered → trailers → JSON (or JSON error) body
//!                    └─ server stream → each message translated and flushed → trailers → close
//! ```
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use super::abi::{self, Action, HttpContext};
use super::callout;
use super::header_map::Headers;
use super::host::{self, Buffer, Map};
use super::metrics::{now_micros, ErrorKind};
use super::rest;
use super::root::{Filter, Flush, Flusher};
use crate::core::error::Error;
use crate::core::request::client_headers;
use crate::core::request::{Decision, RequestPlan};
use crate::core::response::frame::encode_frame;
use crate::core::response::grpc_status::GrpcStatus;
use crate::core::response::status::Code;
use crate::core::response::ResponseTranscoder;
use crate::core::rest::success_status::{has_no_body, STATUS_METADATA};
use crate::core::route::router::HttpBinding;
use crate::core::schema::descriptor_source::BeforeLoad;
use crate::core::transcoder::{is_grpc_content_type, RequestStream, Transcoder};

enum RequestState {
    /// Not transcoding this request side (pass-through, or already done).
    Idle,
    /// The body is buffered by Envoy until its end.
    Body { plan: RequestPlan, content_type: Option<String> },
    /// A client stream: each JSON element goes upstream as a frame once complete.
    Stream { plan: RequestPlan, stream: Box<RequestStream> },
    /// Our own gRPC call for a bodyless request is in flight; `loopback`: sent back into
    /// Envoy (json2grpc.callout.loopback_cluster), where the router answers for the route.
    Callout { token: u32, loopback: bool },
}

enum ResponseState {
    /// Not translating (request not transcoded, not gRPC, or done).
    Idle,
    /// A unary response: its body is buffered by Envoy until the trailers.
    /// `held`: the headers are held too (`allow_on_headers_stop_iteration`). `success`: the
    /// status if the call succeeds (json2grpc.rest; sent already unless `held`).
    Unary { response: Box<ResponseTranscoder>, held: bool, success: u16 },
    /// A server stream (shared with the root's flusher while its resume is pending).
    Stream(Rc<RefCell<ServerStream>>),
    /// A server stream whose translation failed mid-way: the rest of the body is dropped.
    Failed,
}

pub struct Http {
    transcoder: Option<Rc<Filter>>,
    context_id: u32,
    flusher: Rc<Flusher>,
    /// The binding of a transcoded request; the response side needs it too.
    binding: Option<Arc<HttpBinding>>,
    request: RequestState,
    response: ResponseState,
    /// A local reply was sent: every later callback (including for that reply) continues.
    replied: bool,
    /// Time spent in the core for this request (the `transcode_us` histogram).
    timing: Rc<Timing>,
    /// Set while live descriptors are loading (no transcoder yet).
    loading: Option<BeforeLoad>,
    /// The request's origin, allowed by `json2grpc.rest.cors`: responses get CORS headers.
    cors_origin: Option<String>,
    /// The size of the response body Envoy held at the last body callback.
    response_body_size: usize,
}

/// Times the core for a sample of requests: reading the clock is a host call, two per step.
struct Timing {
    on: bool,
    spent_us: Cell<u64>,
}

impl Timing {
    fn start(&self) -> u64 {
        if self.on {
            now_micros()
        } else {
            0
        }
    }

    fn stop(&self, start: u64) {
        if self.on {
            self.spent_us.set(self.spent_us.get().saturating_add(now_micros().saturating_sub(start)));
        }
    }
}

/// A server stream's response side. Its chunks' JSON waits in Envoy's paused buffer for the
/// root's flush (see [`Flusher`]), which resumes the stream; chunks that arrive meanwhile are
/// left there as gRPC bytes behind it (`raw`) and translated by the flush in one pass
/// ([`Flush`]): translating each on arrival would rewrite all the JSON held before it,
/// quadratic in a burst that no flush can interrupt (one upstream read can hold thousands of
/// messages: measured 220 µs of Envoy CPU per 100-byte message, bench/stream.py).
pub struct ServerStream {
    transcoder: Rc<Filter>,
    response: Box<ResponseTranscoder>,
    timing: Rc<Timing>,
    /// Bytes of our own output at the front of Envoy's buffer, not yet flushed.
    unflushed: usize,
    /// Untranslated gRPC bytes follow them.
    raw: bool,
    /// The translation failed (its error ends the body): the rest of the stream is dropped.
    failed: bool,
    /// JSON bytes per gRPC byte, in sixteenths (rounded up): the most a translation has made
    /// so far; 0 until one did (then 8 bytes per byte are assumed). Raw bytes are left for the
    /// flush only while their JSON will fit the budget.
    expansion16: usize,
    /// Flushes in a row that could not read the body.
    unreadable: u32,
    /// The size of the body Envoy holds for it (at its last callback; 0 once flushed).
    buffered: usize,
}

/// What [`ServerStream::translate`] left in Envoy's buffer.
enum Translated {
    /// Our output (this many bytes), to be held or sent on.
    Held(usize),
    /// The whole stream, ended (the body's end of stream came without trailers).
    Ended,
    /// The stream's error element: the stream failed.
    Failed,
    /// Nothing: the body could not be read (the VM has no room for it).
    Unreadable(Error),
}

/// Raw gRPC bytes a stream gathers behind its held JSON before a body callback translates them
/// itself instead of leaving them to the flush (then at least as many as it holds, so that the
/// rewrites of the held JSON stay linear in total), while their JSON fits the budget.
const TRANSLATE_AT: usize = 64 << 10;

/// Flushes that may fail to read a stream's body (no room in the VM) before it ends with an error.
const UNREADABLE_FLUSHES: u32 = 100;

impl ServerStream {
    /// Translates the gRPC bytes after the first `held` bytes (our output) of Envoy's buffer
    /// (`size` bytes, `usize::MAX`: all), in place.
    fn translate(&mut self, size: usize, held: usize, end_of_stream: bool) -> Translated {
        let t = self.transcoder.clone();
        let data = match read_body(Buffer::HttpResponseBody, size) {
            Ok(data) => data,
            Err(error) => return Translated::Unreadable(error),
        };
        let start = self.timing.start();
        let kept = held.min(data.len());
        let (previous, fresh) = data.split_at(kept);
        let mut out = previous.to_vec();
        let mut result = self.response.push_framed(fresh, &mut out);
        if result.is_ok() && end_of_stream {
            // Ended without trailers: no status, an upstream error.
            result = self.response.finish(GrpcStatus::from_metadata(&t.codec, None, None, None), &mut out);
        }
        self.timing.stop(start);
        let produced = out.len().saturating_sub(kept);
        if !fresh.is_empty() {
            self.expansion16 = self.expansion16.max(produced.saturating_mul(16).div_ceil(fresh.len()));
        }
        t.metrics.response_grpc_bytes.add(fresh.len() as u64);
        t.metrics.response_json_bytes.add(produced as u64);
        self.raw = false;
        if let Err(error) = result {
            log::debug!("server stream failed: {error}");
            t.metrics.error(ErrorKind::of_response(&error), error.http_status);
            if !self.response.abort(&error, &mut out) {
                out.extend_from_slice(&error.to_json());
            }
            host::set_buffer(Buffer::HttpResponseBody, 0, data.len(), &out);
            self.failed = true;
            return Translated::Failed;
        }
        host::set_buffer(Buffer::HttpResponseBody, 0, data.len(), &out);
        if end_of_stream {
            Translated::Ended
        } else {
            Translated::Held(out.len())
        }
    }

    /// Ends the stream with the error that its chunk could not be read.
    fn fail_unreadable(&mut self, error: &Error, body_size: usize) {
        self.transcoder.metrics.error(ErrorKind::Limit, error.http_status);
        let mut out = Vec::new();
        if !self.response.abort(error, &mut out) {
            out = error.to_json();
        }
        host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &out);
        self.failed = true;
    }
}

impl Flush for RefCell<ServerStream> {
    /// The flush: what gathered behind the held JSON is translated, then everything flows on.
    fn before_resume(&self) -> bool {
        // Never busy (flushes do not run inside a stream's callbacks); if it were, its raw
        // bytes must not flow: not resumed.
        let Ok(mut stream) = self.try_borrow_mut() else { return false };
        if stream.raw && !stream.failed {
            let held = stream.unflushed;
            if let Translated::Unreadable(error) = stream.translate(usize::MAX, held, false) {
                // The gRPC bytes must not reach the client as they are: retried on the tick,
                // a while, then the stream ends with the error in their place.
                stream.unreadable += 1;
                if stream.unreadable < UNREADABLE_FLUSHES {
                    log::debug!("server stream: {error}; retried on the next tick");
                    return false;
                }
                let size = stream.buffered;
                stream.fail_unreadable(&error, size);
            }
        }
        stream.unreadable = 0;
        stream.unflushed = 0;
        stream.buffered = 0;
        true
    }
}

impl Http {
    pub fn new(transcoder: Option<Rc<Filter>>, context_id: u32, flusher: Rc<Flusher>) -> Self {
        let timed = transcoder.as_ref().is_some_and(|f| f.metrics.sample_timing());
        Http {
            transcoder,
            context_id,
            flusher,
            binding: None,
            request: RequestState::Idle,
            response: ResponseState::Idle,
            replied: false,
            timing: Rc::new(Timing { on: timed, spent_us: Cell::new(0) }),
            loading: None,
            cors_origin: None,
            response_body_size: 0,
        }
    }

    /// No descriptors yet (live descriptors still loading): what requests get meanwhile.
    pub fn loading(mut self, before_load: Option<BeforeLoad>) -> Self {
        self.loading = before_load;
        self
    }

    fn metrics(&self) -> Option<&super::metrics::Metrics> {
        self.transcoder.as_ref().map(|f| &f.metrics)
    }

    /// Answers the client with a JSON error and stops the stream.
    fn reply_error(&mut self, kind: ErrorKind, error: &Error) -> Action {
        self.reply_error_with(kind, error, &[])
    }

    /// A JSON error with the service's `metadata` as headers (an error the service sent).
    fn reply_error_with(&mut self, kind: ErrorKind, error: &Error, metadata: &[(Vec<u8>, Vec<u8>)]) -> Action {
        log::debug!("answering {error} ({kind:?})");
        if let Some(f) = &self.transcoder {
            f.metrics.error(kind, error.http_status);
        }
        self.reply_with(error.http_status, "application/json", metadata, &error.to_json())
    }

    fn reply(&mut self, status: u16, content_type: &str, body: &[u8]) -> Action {
        self.reply_with(status, content_type, &[], body)
    }

    /// A local reply with `metadata` (the service's, for a bodyless call) as extra headers
    /// (no content-type when `content_type` is empty), and the request's CORS headers.
    fn reply_with(&mut self, status: u16, content_type: &str, metadata: &[(Vec<u8>, Vec<u8>)], body: &[u8]) -> Action {
        self.replied = true;
        self.request = RequestState::Idle;
        self.response = ResponseState::Idle;
        let rest = self.transcoder.as_ref().map(|t| &t.config.rest);
        let vary = metadata.iter().find(|(k, _)| k == b"vary").map(|(_, v)| v.as_slice());
        let cors = rest.map(|r| rest::cors_headers(r, self.cors_origin.as_deref(), vary)).unwrap_or_default();
        let mut headers: Vec<(&[u8], &[u8])> = Vec::with_capacity(metadata.len() + cors.len() + 1);
        if !content_type.is_empty() {
            headers.push((b"content-type", content_type.as_bytes()));
        }
        match rest {
            Some(rest) => headers.extend(
                rest::reply_metadata(rest, metadata, !cors.is_empty()).map(|(k, v)| (k.as_slice(), v.as_slice())),
            ),
            None => headers.extend(metadata.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))),
        }
        headers.extend(cors.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())));
        if !host::send_response(status, &headers, body) {
            log::warn!("the local reply ({status}) could not be sent");
        }
        Action::Pause
    }

    /// A successful answer as a local reply: `status`, and no body (nor content-type) for a 204.
    fn reply_success(
        &mut self,
        status: u16,
        response: &ResponseTranscoder,
        metadata: &[(Vec<u8>, Vec<u8>)],
        body: &[u8],
    ) -> Action {
        if has_no_body(status) {
            return self.reply_with(status, "", metadata, b"");
        }
        let content_type = response.content_type().into_owned();
        self.reply_with(status, &content_type, metadata, body)
    }

    fn max_request_body(&self) -> Option<usize> {
        let t = self.transcoder.as_ref()?;
        usize::try_from(t.config.request_body_limit()).ok()
    }

    fn too_large(&self) -> Error {
        let limit = self.transcoder.as_ref().map_or(0, |t| t.config.request_body_limit());
        Error::payload_too_large(format!("request body exceeds max_request_body_size ({limit} bytes)"))
    }

    // ---- request -------------------------------------------------------------------------

    fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(t) = self.transcoder.clone() else {
            return self.while_loading();
        };
        let mut headers = Headers::read(Map::RequestHeaders);
        let method = headers.get_str(":method").unwrap_or_default();
        let path = headers.get_str(":path").unwrap_or_default();
        if let Some(policy) = &t.config.rest.cors {
            self.cors_origin = policy.allowed_origin(headers.get("origin")).map(str::to_string);
            let preflight = method == "OPTIONS"
                && headers.get("origin").is_some()
                && headers.get("access-control-request-method").is_some();
            if preflight {
                if let Some(action) = self.preflight(&t, &headers, &path) {
                    return action;
                }
            }
        }
        let content_type = headers.get_str("content-type");
        if let Some(document) = super::openapi::answer(&t, &method, &path) {
            return match document {
                Ok(text) => self.reply(200, "application/json", &text),
                Err(error) => self.reply_error(ErrorKind::Limit, &error),
            };
        }
        let plan = match t.route(&method, &path, content_type.as_deref()) {
            Decision::PassThrough(reason) => {
                log::trace!("pass-through {method} {path}: {reason:?}");
                t.metrics.passthrough.inc();
                return Action::Continue;
            }
            Decision::Reject(error) => return self.reply_error(ErrorKind::of_request(&error), &error),
            Decision::Transcode(plan) => plan,
        };
        // The client's deadline: passed on when valid, refused (as the service would) when not.
        let deadline = match headers.get("grpc-timeout").map(client_headers::parse_grpc_timeout) {
            Some(Ok(nanos)) => Some(nanos),
            Some(Err(error)) => return self.reply_error(ErrorKind::InvalidRequest, &error),
            None => None,
        };
        let original_path = client_headers::original_path(
            &path,
            &t.config.ignored_query_parameters,
            t.config.query_param_unescape_plus,
        );
        let length = headers.get_str("content-length");
        if let (Some(max), Some(length)) = (self.max_request_body(), length) {
            if length.trim().parse::<usize>().is_ok_and(|l| l > max) {
                return self.reply_error(ErrorKind::Limit, &self.too_large());
            }
        }
        self.binding = Some(plan.binding.clone());
        let method_metrics = t.metrics.method(plan.method());
        if end_of_stream {
            // A host that lets a filter add a body to a headers-only request gets the call
            // in-stream, like a POST; Envoy 1.40 does not (the filter's own call then).
            if t.adds_bodies_to_headers_only.get() != Some(false) {
                match Self::body_for_headers_only(&t, &plan) {
                    Ok(true) => {
                        t.adds_bodies_to_headers_only.set(Some(true));
                        method_metrics.requests.inc();
                        rewrite_request_headers(&mut headers, &plan, &method, &original_path);
                        return Action::Continue;
                    }
                    Ok(false) => {
                        log::debug!(
                            "the host adds no body to a headers-only request: json2grpc calls the service itself"
                        );
                        t.adds_bodies_to_headers_only.set(Some(false));
                    }
                    Err(error) => return self.reply_error(ErrorKind::of_request(&error), &error),
                }
            }
            method_metrics.callouts.inc();
            return self.start_callout(&t, plan, &headers, &method, &original_path, deadline);
        }
        method_metrics.requests.inc();
        rewrite_request_headers(&mut headers, &plan, &method, &original_path);
        if plan.method().client_streaming && !plan.binding.body_is_http_body {
            let stream = Box::new(t.request_stream(content_type.as_deref()));
            self.request = RequestState::Stream { plan, stream };
            // A client stream opens the call now: its frames follow element by element.
            return Action::Continue;
        }
        self.request = RequestState::Body { plan, content_type };
        if t.config.allow_on_headers_stop_iteration {
            // Only with Envoy's allow_on_headers_stop_iteration do body callbacks arrive while
            // the headers are held. Held, the gRPC stream opens only once the body transcoded:
            // a refused body never reaches the service, not even as a stream opened then reset
            // (a flood of those can make a gRPC server close the connection, see README).
            return Action::Pause;
        }
        // Otherwise Pause would be StopAllIterationAndWatermark: no body callbacks, a hang.
        Action::Continue
    }

    /// A CORS preflight (`json2grpc.rest.cors`) for a path bound to the API: answered here
    /// with the methods bound to it, or 403 for an origin the policy does not allow (Envoy's
    /// CORS filter would pass that one on; the gRPC service behind has no answer for it).
    /// None for other paths, which pass through.
    fn preflight(&mut self, t: &Transcoder, headers: &Headers, path: &str) -> Option<Action> {
        let policy = t.config.rest.cors.as_ref()?;
        let path_only = path.split_once('?').map_or(path, |(p, _)| p);
        let methods = t.router.methods_for(path_only);
        if methods.is_empty() {
            return None;
        }
        let Some(origin) = self.cors_origin.clone() else {
            let error = Error::new(Code::PermissionDenied, "this origin may not call the API (json2grpc.rest.cors)");
            return Some(self.reply_error(ErrorKind::InvalidRequest, &error));
        };
        let answer = policy.preflight_headers(&origin, &methods, headers.get("access-control-request-headers"));
        let answer: Vec<(&[u8], &[u8])> = answer.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())).collect();
        self.replied = true;
        if !host::send_response(200, &answer, b"") {
            log::warn!("the CORS preflight answer could not be sent");
        }
        Some(Action::Pause)
    }

    /// A request before the first live descriptors arrived: the API is not known yet, so
    /// every request that is not gRPC already gets 503 (or passes through, by option).
    fn while_loading(&mut self) -> Action {
        if self.loading != Some(BeforeLoad::Unavailable) {
            return Action::Continue;
        }
        let content_type = host::header_str(Map::RequestHeaders, "content-type");
        if content_type.as_deref().is_some_and(is_grpc_content_type) {
            return Action::Continue;
        }
        let error = Error::new(
            Code::Unavailable,
            "the API description is loading (json2grpc.descriptor): no descriptors yet; retry shortly",
        );
        log::debug!("answering {error} (loading)");
        self.reply(error.http_status, "application/json", &error.to_json())
    }

    fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match &self.request {
            RequestState::Stream { .. } => self.on_request_stream_body(body_size, end_of_stream),
            RequestState::Body { .. } => {
                if self.max_request_body().is_some_and(|max| body_size > max) {
                    return self.reply_error(ErrorKind::Limit, &self.too_large());
                }
                if !end_of_stream {
                    // Pause buffers the chunks in Envoy (413 from Envoy past its buffer limit).
                    return Action::Pause;
                }
                self.finish_request_body(body_size)
            }
            RequestState::Idle | RequestState::Callout { .. } => Action::Continue,
        }
    }

    /// The whole body is here (`body_size` bytes, `usize::MAX`: all Envoy holds): replace it
    /// with the framed gRPC message.
    fn finish_request_body(&mut self, body_size: usize) -> Action {
        let Some(t) = self.transcoder.clone() else {
            return Action::Continue;
        };
        let RequestState::Body { plan, content_type } = std::mem::replace(&mut self.request, RequestState::Idle) else {
            return Action::Continue;
        };
        let body = match read_body(Buffer::HttpRequestBody, body_size) {
            Ok(body) => body,
            Err(error) => return self.reply_error(ErrorKind::Limit, &error),
        };
        let body_size = body.len();
        let start = self.timing.start();
        let framed = t.request_message(&plan, &body, content_type.as_deref()).and_then(|message| {
            let mut framed = Vec::with_capacity(message.len().saturating_add(5));
            encode_frame(&message, &mut framed)?;
            Ok(framed)
        });
        self.timing.stop(start);
        if let Ok(framed) = &framed {
            t.metrics.request_json_bytes.add(body.len() as u64);
            t.metrics.request_grpc_bytes.add(framed.len() as u64);
        }
        match framed {
            // (0, size) replaces everything; Envoy supports no other splice.
            Ok(framed) if host::set_buffer(Buffer::HttpRequestBody, 0, body_size, &framed) => Action::Continue,
            Ok(_) => {
                self.reply_error(ErrorKind::InvalidRequest, &Error::internal("could not replace the request body"))
            }
            Err(error) => self.reply_error(ErrorKind::of_request(&error), &error),
        }
    }

    /// A client stream: this chunk is replaced by the frames of the elements it completes and
    /// sent on at once (Continue), so the upload is never held whole.
    fn on_request_stream_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(t) = self.transcoder.clone() else {
            return Action::Continue;
        };
        let RequestState::Stream { plan, stream } = &mut self.request else {
            return Action::Continue;
        };
        let data = match read_body(Buffer::HttpRequestBody, body_size) {
            Ok(data) => data,
            Err(error) => return self.reply_error(ErrorKind::Limit, &error),
        };
        let body_size = data.len();
        let start = self.timing.start();
        let mut out = Vec::new();
        let mut result = t.push_request_stream(stream, plan, &data, &mut out);
        if result.is_ok() && end_of_stream {
            result = t.finish_request_stream(stream, plan, &mut out);
        }
        self.timing.stop(start);
        t.metrics.request_json_bytes.add(data.len() as u64);
        t.metrics.request_grpc_bytes.add(out.len() as u64);
        if let Err(error) = result {
            // The call is already open upstream: the local reply resets it, so the service
            // sees a cancelled stream, never a half-translated message.
            return self.reply_error(ErrorKind::of_request(&error), &error);
        }
        if !host::set_buffer(Buffer::HttpRequestBody, 0, body_size, &out) {
            return self.reply_error(ErrorKind::InvalidRequest, &Error::internal("could not replace the request body"));
        }
        if end_of_stream {
            self.request = RequestState::Idle;
        }
        Action::Continue
    }

    fn on_request_trailers(&mut self) -> Action {
        // A body followed by trailers ends here, not in the body callback.
        match &self.request {
            RequestState::Body { .. } => self.finish_request_body(usize::MAX),
            RequestState::Stream { .. } => self.on_request_stream_body(usize::MAX, true),
            RequestState::Idle | RequestState::Callout { .. } => Action::Continue,
        }
    }

    /// Writes the framed request message as the body of a request that ended at its headers:
    /// true if the host took it (false: Envoy 1.40 has no body to write to).
    fn body_for_headers_only(t: &Transcoder, plan: &RequestPlan) -> Result<bool, Error> {
        let mut framed = Vec::new();
        if !plan.method().client_streaming {
            encode_frame(&t.request_message(plan, &[], None)?, &mut framed)?;
        }
        Ok(host::set_buffer(Buffer::HttpRequestBody, 0, 0, &framed))
    }

    // ---- callout (requests without a body) -----------------------------------------------

    fn start_callout(
        &mut self,
        t: &Transcoder,
        plan: RequestPlan,
        request_headers: &Headers,
        method: &str,
        original_path: &str,
        deadline: Option<u64>,
    ) -> Action {
        let info = plan.method();
        let mut framed = Vec::new();
        // A client stream without a body is an empty stream; other methods get one message.
        if !info.client_streaming {
            let message = match t.request_message(&plan, &[], None) {
                Ok(m) => m,
                Err(e) => return self.reply_error(ErrorKind::of_request(&e), &e),
            };
            if let Err(e) = encode_frame(&message, &mut framed) {
                return self.reply_error(ErrorKind::of_request(&e), &e);
            }
        }
        // Read before any header change: afterwards it may name another route's cluster.
        let route_cluster = host::property(&["xds", "cluster_name"]).and_then(|v| String::from_utf8(v).ok());
        let Some(cluster) = callout::cluster_for(&t.config.callout, info.service(), route_cluster) else {
            return self.reply_error(
                ErrorKind::Callout,
                &Error::new(
                    Code::Unavailable,
                    format!(
                        "no upstream cluster for {}: the request's route has none and \
                     json2grpc.callout.clusters does not name one",
                        info.service()
                    ),
                ),
            );
        };
        let authority = request_headers.get_str(":authority").unwrap_or_else(|| cluster.clone());
        let forwarded: Vec<(String, String)> = request_headers
            .iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k.to_vec()).ok()?, String::from_utf8(v.to_vec()).ok()?)))
            .filter(|(k, _)| callout::is_forwarded(&t.config.callout, k))
            .collect();
        let timeout_ms = client_headers::callout_timeout_ms(t.config.callout.timeout_ms, deadline);
        let headers = callout::call_headers(&info.path(), &authority, timeout_ms, method, original_path, forwarded);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match host::http_call(&cluster, &headers, &framed, timeout_ms) {
            Ok(token) => {
                abi::register_callout(token, self.context_id);
                let loopback = t.config.callout.loopback_cluster.as_deref() == Some(cluster.as_str());
                self.request = RequestState::Callout { token, loopback };
                // Paused until the call's response arrives in on_http_call_response.
                Action::Pause
            }
            Err(status) => self.reply_error(
                ErrorKind::Callout,
                &Error::new(Code::Unavailable, format!("cannot call cluster \"{cluster}\" (host status {status})")),
            ),
        }
    }

    fn on_callout_response(&mut self, token: u32, body_size: usize) {
        let (Some(t), Some(binding)) = (self.transcoder.clone(), self.binding.clone()) else {
            return;
        };
        let RequestState::Callout { token: expected, loopback } = self.request else { return };
        if expected != token {
            return;
        }
        let headers = host::headers(Map::HttpCallResponseHeaders);
        let trailers = host::headers(Map::HttpCallResponseTrailers);
        let find = |name: &str| {
            trailers.iter().chain(headers.iter()).find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice())
        };
        let content_type = find("content-type").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
        if headers.is_empty() {
            // No answer: Envoy reset the call. Envoy 1.40 reports an answer over its async
            // client's buffer (32 MiB, drained) as a reset too (status message "reset").
            self.reply_error(ErrorKind::Callout, &callout_reset());
            return;
        }
        if !is_grpc_content_type(content_type) {
            // Envoy's own answer (no healthy upstream, timeout, …), not gRPC.
            let status = find(":status").and_then(|v| std::str::from_utf8(v).ok()).and_then(|s| s.parse().ok());
            self.reply_error(ErrorKind::Callout, &callout_failure(status));
            return;
        }
        // The service's initial metadata (or a trailers-only error's) becomes reply headers, as
        // on the in-stream path; trailing metadata does not (the native filter drops it too).
        let metadata: Vec<(Vec<u8>, Vec<u8>)> =
            headers.iter().filter(|(k, _)| callout::is_returned(k)).cloned().collect();
        let mut status = GrpcStatus::from_metadata(
            &t.codec,
            find("grpc-status"),
            find("grpc-message"),
            find("grpc-status-details-bin"),
        );
        // Envoy answers an expired call itself, as gRPC: UNAVAILABLE "upstream request timeout".
        if status.code == Code::Unavailable && find("grpc-message") == Some(b"upstream request timeout".as_slice()) {
            status.code = Code::DeadlineExceeded;
            status.message = if loopback {
                "the gRPC call timed out (the route's timeout, or json2grpc.callout.timeout_ms)"
            } else {
                "the gRPC call timed out (json2grpc.callout.timeout_ms)"
            }
            .to_string();
        }
        // Back in Envoy, the router's own answers (no route, timeout, no healthy upstream, a
        // filter's denial) to a gRPC call are gRPC errors; the loopback listener's
        // local_reply_config keeps their HTTP status in a header (see envoy/envoy.yaml.in), so
        // the client gets the status a request with a body gets (404 for no route, …).
        let local_reply = find(callout::LOCAL_REPLY_HEADER)
            .filter(|_| loopback && !status.is_ok())
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
            .filter(|s| (400..=599).contains(s));
        if local_reply == Some(404) && status.message.is_empty() {
            status.message = format!("no route for {}", binding.method.path());
        }
        let streaming = binding.method.server_streaming;
        let max_body = match (streaming, t.config.max_response_body_size) {
            // A bodyless call to a server stream cannot stream: it is buffered whole, capped.
            (true, limit) => {
                Some(limit.map_or(t.config.callout.max_stream_bytes, |l| l.min(t.config.callout.max_stream_bytes)))
            }
            (false, limit) => limit,
        };
        if let (true, Some(max)) = (streaming, max_body) {
            if u64::try_from(body_size).unwrap_or(u64::MAX) > u64::from(max) {
                self.reply_error(
                    ErrorKind::Limit,
                    &Error::internal(format!(
                        "server stream of {body_size} bytes exceeds the {max} bytes a bodyless request may buffer \
                     (json2grpc.callout.max_stream_bytes); send the request with a body to stream it"
                    )),
                );
                return;
            }
        }
        let encoding = find("grpc-encoding").and_then(|v| std::str::from_utf8(v).ok());
        let mut response = t.response(&binding, max_body, encoding);
        let mut out = Vec::new();
        // A unary answer is one frame: its 5-byte header tells whether it fits before the rest
        // is copied into the VM (the decoder refuses an oversized frame from its header alone).
        let (head_size, rest_size) =
            if streaming { (0, body_size) } else { (body_size.min(5), body_size.saturating_sub(5)) };
        let head = match read_body_at(Buffer::HttpCallResponseBody, 0, head_size) {
            Ok(head) => head,
            Err(error) => {
                self.reply_error(ErrorKind::Limit, &error);
                return;
            }
        };
        if let Err(error) = response.push_framed(&head, &mut out) {
            self.reply_error(ErrorKind::of_response(&error), &error);
            return;
        }
        if let Ok(&[_, a, b, c, d]) = <&[u8; 5]>::try_from(head.as_slice()) {
            let declared = u64::from(u32::from_be_bytes([a, b, c, d]));
            if u64::try_from(rest_size).unwrap_or(u64::MAX) > declared {
                let error = Error::bad_upstream("invalid gRPC response: more than one message for a unary method");
                self.reply_error(ErrorKind::of_response(&error), &error);
                return;
            }
        }
        let body = match read_body_at(Buffer::HttpCallResponseBody, head_size, rest_size) {
            Ok(body) => body,
            Err(error) => {
                self.reply_error(ErrorKind::Limit, &error);
                return;
            }
        };
        let start = self.timing.start();
        let result = response.push_framed(&body, &mut out).and_then(|()| response.finish(status, &mut out));
        self.timing.stop(start);
        t.metrics.response_grpc_bytes.add(body.len() as u64);
        match result {
            Ok(()) => {
                t.metrics.response_json_bytes.add(out.len() as u64);
                t.metrics.method(&binding.method).responses.inc();
                let value = metadata.iter().find(|(k, _)| k == STATUS_METADATA.as_bytes()).map(|(_, v)| v.as_slice());
                let success = rest::success_status(&t.config.rest, &binding.method.full_name, value);
                self.reply_success(success, &response, &metadata, &out);
            }
            Err(error) => {
                let error = match local_reply {
                    Some(http_status) => error.with_http_status(http_status),
                    None => error,
                };
                self.reply_error_with(ErrorKind::of_response(&error), &error, &metadata);
            }
        }
    }

    // ---- response ------------------------------------------------------------------------

    fn on_response_headers(&mut self, end_of_stream: bool) -> Action {
        let (Some(t), Some(binding)) = (self.transcoder.clone(), self.binding.clone()) else {
            return Action::Continue;
        };
        if self.replied {
            return Action::Continue;
        }
        let mut headers = Headers::read(Map::ResponseHeaders);
        // CORS headers go on every response to a transcoded request (Envoy's own answers too),
        // and only the policy's: a service's own `access-control-*` would widen it (credentials
        // for every origin, or CORS for an origin the policy refuses).
        if t.config.rest.cors.is_some() {
            headers.retain_names(|k| !rest::is_cors_header(k));
        }
        for (name, value) in rest::cors_headers(&t.config.rest, self.cors_origin.as_deref(), headers.get("vary")) {
            headers.set(name, &value);
        }
        let content_type = headers.get_str("content-type").unwrap_or_default();
        if !is_grpc_content_type(&content_type) {
            // Not gRPC (Envoy's own 503/404/413, a REST upstream): passed on as it is.
            headers.write();
            return Action::Continue;
        }
        // The status of a success is known now, from the initial metadata (json2grpc.rest).
        let method = &binding.method.full_name;
        let success = rest::success_status(&t.config.rest, method, headers.get(STATUS_METADATA));
        if t.config.rest.status_from_metadata {
            headers.remove(STATUS_METADATA);
        }
        let encoding = headers.get_str("grpc-encoding");
        let mut response = t.response(&binding, t.config.max_response_body_size, encoding.as_deref());
        if !binding.method.server_streaming {
            // Envoy holds a unary body whole: its JSON must fit Envoy's buffer too.
            response = response.with_json_limit(t.json_limit(true));
        }
        if end_of_stream {
            // Trailers-only: the status is in these headers and no body can be added here,
            // but a local reply can still replace the response (keeping the service's metadata).
            let status = read_status(&t, &headers);
            let metadata: Vec<(Vec<u8>, Vec<u8>)> = headers
                .iter()
                .filter(|(k, _)| callout::is_returned(k))
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            let mut out = Vec::new();
            return match response.finish(status, &mut out) {
                Ok(()) => {
                    t.metrics.method(&binding.method).responses.inc();
                    self.reply_success(success, &response, &metadata, &out)
                }
                Err(error) => self.reply_error_with(ErrorKind::of_response(&error), &error, &metadata),
            };
        }
        let response = Box::new(response);
        // A stream's status is decided by its first message (200, or the success status); only
        // unary responses wait.
        if response.is_streaming() {
            if has_no_body(success) {
                log::warn!("{method}: ignored success status {success} for a server stream (a stream has a body)");
            } else if success != 200 {
                headers.set(":status", success.to_string().as_bytes());
            }
            set_json_headers(&mut headers, &response.content_type());
            self.response = ResponseState::Stream(Rc::new(RefCell::new(ServerStream {
                transcoder: t.clone(),
                response,
                timing: self.timing.clone(),
                unflushed: 0,
                raw: false,
                failed: false,
                expansion16: 0,
                unreadable: 0,
                buffered: 0,
            })));
            return Action::Continue;
        }
        if t.config.allow_on_headers_stop_iteration {
            // Envoy keeps delivering the body while the headers are held (only with
            // allow_on_headers_stop_iteration; otherwise Pause here would stop everything).
            headers.write();
            self.response = ResponseState::Unary { response, held: true, success };
            return Action::Pause;
        }
        // Headers go downstream when this returns Continue: the status (200, or the success
        // status) is final from here on, so a later gRPC error can only travel in the body.
        if success != 200 {
            headers.set(":status", success.to_string().as_bytes());
        }
        let content_type = if has_no_body(success) { Default::default() } else { response.content_type() };
        set_json_headers(&mut headers, &content_type);
        self.response = ResponseState::Unary { response, held: false, success };
        Action::Continue
    }

    fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.response_body_size = body_size;
        match &self.response {
            ResponseState::Idle => Action::Continue,
            ResponseState::Failed => {
                host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &[]);
                Action::Continue
            }
            ResponseState::Stream { .. } => self.on_response_stream_body(body_size, end_of_stream),
            ResponseState::Unary { .. } if !end_of_stream => {
                // Buffered until the trailers carry the status.
                Action::Pause
            }
            ResponseState::Unary { .. } => {
                // A gRPC response that ends without trailers has no status: an upstream error.
                self.finish_response(None);
                Action::Continue
            }
        }
    }

    /// A server stream: every complete message is translated before it goes downstream. The
    /// body callback returns Pause, which keeps a buffer this filter can still write to in the
    /// trailers callback (to append `]` or a final error; after Continue, Envoy offers none),
    /// and the root resumes the stream once Envoy is done with this upstream read (see
    /// [`Flusher`]).
    fn on_response_stream_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let ResponseState::Stream(shared) = &self.response else {
            return Action::Continue;
        };
        let shared = shared.clone();
        let Ok(mut stream) = shared.try_borrow_mut() else {
            // Never busy here; if it were, its bytes stay held (not sent untranslated).
            return Action::Pause;
        };
        stream.buffered = body_size;
        if stream.failed {
            // The flush's translation failed: its error ended the body.
            host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &[]);
            drop(stream);
            self.response = ResponseState::Failed;
            return Action::Continue;
        }
        let pending = self.flusher.is_pending(self.context_id);
        let held = if pending { stream.unflushed.min(body_size) } else { 0 };
        // Pausing keeps Envoy's buffer for the end of the stream, but Envoy resets a stream
        // whose paused buffer outgrows its limit: a burst over the budget, or a large message
        // on its way (its JSON will not fit either), is sent on now instead.
        // Half of Envoy's limit: the next chunk's output must still fit beside it.
        let budget = usize::try_from(stream.transcoder.config.limits.envoy_buffer_bytes / 2).unwrap_or(usize::MAX);
        // Raw bytes wait for the flush only while their JSON (at the most this stream's
        // messages have expanded so far) fits beside the held JSON within the budget.
        let expansion16 = match stream.expansion16 {
            0 => 8 * 16,
            measured => measured,
        };
        let room = budget.saturating_sub(held).saturating_mul(16) / expansion16;
        if pending && !end_of_stream && body_size - held <= held.max(TRANSLATE_AT).min(room) {
            // The flush, due after this upstream read, translates these with whatever else
            // arrives meanwhile.
            stream.raw = true;
            return Action::Pause;
        }
        match stream.translate(body_size, held, end_of_stream) {
            Translated::Held(len) => {
                if len > budget || stream.response.message_in_progress() > budget / 2 {
                    log::trace!("stream chunk of {body_size} B: {len} B of JSON sent on now");
                    stream.unflushed = 0;
                    stream.buffered = 0;
                    return Action::Continue;
                }
                log::trace!("stream chunk of {body_size} B: {len} B of JSON held until the flush");
                stream.unflushed = len;
                drop(stream);
                let flush: Rc<dyn Flush> = shared;
                self.flusher.schedule(self.context_id, Some(flush));
                Action::Pause
            }
            Translated::Ended => {
                drop(stream);
                self.response = ResponseState::Idle;
                Action::Continue
            }
            Translated::Unreadable(error) => {
                // The chunk cannot be read: the stream cannot go on without a gap.
                stream.fail_unreadable(&error, body_size);
                drop(stream);
                self.response = ResponseState::Failed;
                Action::Continue
            }
            Translated::Failed => {
                drop(stream);
                self.response = ResponseState::Failed;
                Action::Continue
            }
        }
    }

    fn on_response_trailers(&mut self) -> Action {
        match self.response {
            ResponseState::Idle => return Action::Continue,
            ResponseState::Failed => {}
            ResponseState::Unary { .. } | ResponseState::Stream { .. } => {
                let stream_flushed =
                    matches!(self.response, ResponseState::Stream(_)) && !self.flusher.is_pending(self.context_id);
                let mut trailers = Headers::read(Map::ResponseTrailers);
                self.finish_response(Some(&trailers));
                strip_grpc_trailers(&mut trailers);
                if stream_flushed {
                    // The stream was flushed already: Envoy sends what the trailers callback
                    // appends only on a resume, so hold the trailers until the next flush.
                    self.flusher.schedule(self.context_id, None);
                    return Action::Pause;
                }
                return Action::Continue;
            }
        }
        strip_grpc_trailers(&mut Headers::read(Map::ResponseTrailers));
        Action::Continue
    }

    /// The gRPC status arrived: the body becomes the JSON (or the JSON error); a stream ends
    /// with its closing bytes.
    fn finish_response(&mut self, trailers: Option<&Headers>) {
        let Some(t) = self.transcoder.clone() else {
            return;
        };
        let pending = self.flusher.is_pending(self.context_id);
        let mut state = std::mem::replace(&mut self.response, ResponseState::Idle);
        let mut guard = None;
        let (response, held, unflushed, success, known_size) = match &mut state {
            ResponseState::Unary { response, held, success } => {
                (response.as_mut(), *held, 0, *success, self.response_body_size)
            }
            ResponseState::Stream(shared) => {
                let Ok(stream) = shared.try_borrow_mut() else { return };
                let stream = &mut **guard.insert(stream);
                if stream.failed {
                    // The flush's translation failed: its error ended the body already.
                    return;
                }
                // Translated here, to the end: a flush still due has nothing left to do.
                stream.raw = false;
                (stream.response.as_mut(), false, stream.unflushed, 200, stream.buffered)
            }
            ResponseState::Idle | ResponseState::Failed => return,
        };
        let status = match trailers {
            Some(trailers) => read_status(&t, trailers),
            None => GrpcStatus::from_metadata(&t.codec, None, None, None),
        };
        // What Envoy holds now: the whole unary body, or (streams) our output not flushed yet
        // and whatever followed it. If the VM has no room to read it, all of it is replaced by
        // the error (never left as gRPC bytes behind an ending).
        let (body, body_size, unreadable) = match read_body(Buffer::HttpResponseBody, usize::MAX) {
            Ok(body) => {
                let size = body.len();
                (body, size, None)
            }
            Err(error) => (Vec::new(), known_size, Some(error)),
        };
        let start = self.timing.start();
        let kept = if pending { unflushed.min(body.len()) } else { 0 };
        let (previous, fresh) = body.split_at(kept);
        let mut out = previous.to_vec();
        let mut result = match unreadable {
            Some(error) => Err(error),
            None => response.push_framed(fresh, &mut out).and_then(|()| response.finish(status, &mut out)),
        };
        self.timing.stop(start);
        // Envoy resets a stream whose held body outgrows its buffer limit: a translation that
        // large is answered with an error instead (streams flush long before that).
        let limit = usize::try_from(t.config.limits.envoy_buffer_bytes).unwrap_or(usize::MAX);
        if result.is_ok() && out.len() > limit {
            result = Err(Error::internal(format!(
                "the JSON response ({} bytes) exceeds Envoy's buffer limit (json2grpc.limits.envoy_buffer_bytes = \
                 {limit}); raise the listener's per_connection_buffer_limit_bytes and this limit",
                out.len()
            )));
            out.truncate(kept);
        }
        t.metrics.response_grpc_bytes.add(fresh.len() as u64);
        t.metrics.response_json_bytes.add(out.len().saturating_sub(kept) as u64);
        let (http_status, content_type) = match result {
            Ok(()) => {
                if let Some(binding) = &self.binding {
                    t.metrics.method(&binding.method).responses.inc();
                }
                (success, response.content_type().into_owned())
            }
            Err(error) => {
                log::debug!("upstream error after response headers: {error}");
                t.metrics.error(ErrorKind::of_response(&error), error.http_status);
                // A stream that already sent messages ends with an error element.
                if !response.abort(&error, &mut out) {
                    out = error.to_json();
                }
                (error.http_status, "application/json".to_string())
            }
        };
        if has_no_body(if held { http_status } else { success }) {
            // A 204 (json2grpc.rest) has no body: not even an error that came after it was sent.
            if !held && http_status != success {
                log::warn!("the gRPC error after a {success} response went downstream cannot be sent: it has no body");
            }
            out.clear();
        }
        if held {
            // The headers are still ours: give the exact status and length.
            let mut headers = Headers::read(Map::ResponseHeaders);
            strip_grpc_headers(&mut headers);
            headers.set(":status", http_status.to_string().as_bytes());
            if has_no_body(http_status) {
                headers.remove("content-type");
            } else {
                headers.set("content-type", content_type.as_bytes());
                headers.set("content-length", out.len().to_string().as_bytes());
            }
            if headers.write() && host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &out) {
                return;
            }
            // No body was buffered (headers then trailers): a local reply still can replace it.
            let content_type = if has_no_body(http_status) { "" } else { content_type.as_str() };
            self.reply(http_status, content_type, &out);
            return;
        }
        if !host::set_buffer(Buffer::HttpResponseBody, 0, body_size, &out) && !out.is_empty() {
            // No body to write to: headers and trailers without data, or a stream whose last
            // burst was too large to hold (json2grpc.limits.envoy_buffer_bytes).
            log::warn!("the end of the response could not be added (Envoy holds no body to write to)");
        }
    }
}

/// Rewrites the request into a gRPC call. Only possible in the headers callback: once it
/// returned Continue, Envoy releases the header map (later edits fail).
fn rewrite_request_headers(headers: &mut Headers, plan: &RequestPlan, method: &str, original_path: &str) {
    let grpc_path = plan.method().path();
    // The client's gRPC protocol headers (encodings, statuses) are the filter's to set.
    headers.retain_names(client_headers::passes);
    let edits: [(&str, &[u8]); 6] = [
        ("x-envoy-original-path", original_path.as_bytes()),
        ("x-envoy-original-method", method.as_bytes()),
        (":method", b"POST"),
        // Changing :path makes Envoy re-match the route on the gRPC path.
        (":path", grpc_path.as_bytes()),
        ("content-type", b"application/grpc"),
        // Without te: trailers gRPC servers reset the stream (Envoy then answers 503).
        ("te", b"trailers"),
    ];
    for (name, value) in edits {
        headers.set(name, value);
    }
    // The framed message has another length; Envoy recomputes it on the wire.
    headers.remove("content-length");
    if !headers.write() {
        log::warn!("could not rewrite the request headers");
    }
}

/// The headers of a translated response that goes downstream now (no content-type when
/// `content_type` is empty: a response without a body).
fn set_json_headers(headers: &mut Headers, content_type: &str) {
    if content_type.is_empty() {
        headers.remove("content-type");
    } else {
        headers.set("content-type", content_type.as_bytes());
    }
    strip_grpc_headers(headers);
    if !headers.write() {
        log::warn!("could not rewrite the response headers");
    }
}

/// gRPC response headers a JSON client has no use for.
fn strip_grpc_headers(headers: &mut Headers) {
    for name in ["content-length", "grpc-encoding", "grpc-accept-encoding", "grpc-status", "grpc-message"] {
        headers.remove(name);
    }
}

/// The gRPC status trailers, once translated into the body.
fn strip_grpc_trailers(trailers: &mut Headers) {
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        trailers.remove(name);
    }
    trailers.write();
}

/// The gRPC status in a header or trailer map.
fn read_status(t: &Transcoder, map: &Headers) -> GrpcStatus {
    GrpcStatus::from_metadata(
        &t.codec,
        map.get("grpc-status"),
        map.get("grpc-message"),
        map.get("grpc-status-details-bin"),
    )
}

/// `size` bytes of a body Envoy holds (`usize::MAX`: all of it). An error when the host could
/// not hand them over (the VM has no room for them): treating that as an empty body would send
/// the service a message without the client's data.
fn read_body(buffer: Buffer, size: usize) -> Result<Vec<u8>, Error> {
    read_body_at(buffer, 0, size)
}

/// [`read_body`] from byte `start`.
fn read_body_at(buffer: Buffer, start: usize, size: usize) -> Result<Vec<u8>, Error> {
    if size == 0 {
        return Ok(Vec::new());
    }
    match host::try_buffer(buffer, start, size) {
        Some(bytes) if size == usize::MAX || bytes.len() == size => Ok(bytes),
        _ => Err(Error::internal(format!("json2grpc could not read the {size}-byte body Envoy holds (out of memory)"))),
    }
}

/// A callout Envoy reset before any answer.
fn callout_reset() -> Error {
    Error::new(
        Code::Unavailable,
        "the gRPC call for the bodyless request failed before an answer: the connection was reset or \
         refused, or the answer was larger than Envoy buffers for a filter's own call (32 MiB)",
    )
}

/// A callout answered by Envoy instead of the service.
fn callout_failure(status: Option<u16>) -> Error {
    match status {
        Some(504) => Error::new(Code::DeadlineExceeded, "the gRPC call timed out (json2grpc.callout.timeout_ms)"),
        Some(s) => Error::new(Code::Unavailable, format!("the upstream answered HTTP {s} instead of gRPC")),
        None => callout_reset(),
    }
}

impl HttpContext for Http {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        self.on_callout_response(token_id, body_size);
    }

    fn on_end(&mut self) {
        // The end of the request: record the time it spent in the core, if it was ours.
        if self.binding.is_some() && self.timing.on {
            if let Some(m) = self.metrics() {
                m.transcode_micros.record(self.timing.spent_us.get());
            }
        }
    }

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.on_request_headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_request_trailers()
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
