//! The response translator: gRPC response messages → the JSON (or raw HttpBody) body the
//! client gets. Unary methods print one message; server streams print each message as soon as
//! it is complete, as a JSON array (default), NDJSON or server-sent events.
//!
//! Output is produced incrementally into caller-provided buffers, so the filter holds at most
//! one message at a time whatever the stream length.
use std::borrow::Cow;
use std::sync::Arc;

use crate::core::codec::plan::{Scalar, ValueKind};
use crate::core::codec::wire::{self, fields};
use crate::core::codec::{Codec, OutputLimit};
use crate::core::config::PrintOptions;
use crate::core::error::{Error, Result};
use crate::core::request::bound::write_default;
use crate::core::request::first_enum_value;
use crate::core::response::frame::FrameDecoder;
use crate::core::response::grpc_status::GrpcStatus;
use crate::core::route::field_path::FieldPath;
use crate::core::route::router::{HttpBinding, HTTP_BODY};
use crate::core::schema::Kind;

/// How a server stream is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `[{…},{…}]`, `[]` when empty.
    JsonArray,
    /// One JSON object per line (`stream_newline_delimited`).
    NewlineDelimited,
    /// `data: {…}\n\n` events (`stream_sse_style_delimited`).
    ServerSentEvents,
}

impl StreamFormat {
    pub fn from_print_options(print: &PrintOptions) -> StreamFormat {
        if print.stream_sse_style_delimited {
            StreamFormat::ServerSentEvents
        } else if print.stream_newline_delimited {
            StreamFormat::NewlineDelimited
        } else {
            StreamFormat::JsonArray
        }
    }
}

/// Translates one response.
#[derive(Debug)]
pub struct ResponseTranscoder {
    /// The response type (codec plan index).
    output: usize,
    response_body: Option<FieldPath>,
    /// The printed value is a google.api.HttpBody (this plan index): its `data` is the body,
    /// unprinted.
    raw: Option<usize>,
    print: PrintOptions,
    streaming: bool,
    format: StreamFormat,
    decoder: FrameDecoder,
    messages: u64,
    /// Total upstream message bytes accepted so far, against `max_response_body_size`.
    received: u64,
    max_body: Option<u32>,
    /// `content_type` of the first HttpBody message, if it is a valid header value.
    raw_content_type: Option<String>,
    /// The most JSON written per message and per `push_framed` call.
    max_json: OutputLimit,
    codec: Arc<Codec>,
}

impl ResponseTranscoder {
    pub fn new(
        codec: &Arc<Codec>,
        binding: &HttpBinding,
        print: &PrintOptions,
        max_frame_size: u32,
        max_body: Option<u32>,
        grpc_encoding: Option<&str>,
    ) -> Self {
        let output = binding.method.output;
        let printed_type = match binding.response_body.as_ref().and_then(FieldPath::leaf).map(|f| f.kind()) {
            Some(Kind::Message(m)) => Some(m),
            Some(_) => None,
            None => Some(output),
        };
        let raw = printed_type.filter(|m| codec.plans().message(*m).is_some_and(|p| &*p.full_name == HTTP_BODY));
        // The frame limit never exceeds the body limit: one frame is buffered whole.
        let decoder = match max_body {
            Some(body) if body < max_frame_size => {
                FrameDecoder::new(body, grpc_encoding).limit_named("max_response_body_size", 500)
            }
            _ => FrameDecoder::new(max_frame_size, grpc_encoding),
        };
        let streaming = binding.method.server_streaming;
        let format = StreamFormat::from_print_options(print);
        // NDJSON and SSE frame each message as one line: indentation would split it.
        let print = PrintOptions {
            add_whitespace: print.add_whitespace && !(streaming && format != StreamFormat::JsonArray),
            ..print.clone()
        };
        ResponseTranscoder {
            output,
            response_body: binding.response_body.clone(),
            raw,
            print,
            streaming,
            format,
            decoder,
            messages: 0,
            received: 0,
            max_body,
            raw_content_type: None,
            max_json: OutputLimit::NONE,
            codec: codec.clone(),
        }
    }

    /// Limits the JSON written per message and per [`push_framed`](Self::push_framed) call
    /// (none by default).
    pub fn with_json_limit(mut self, limit: OutputLimit) -> Self {
        self.max_json = limit;
        self
    }

    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Whether the response body is raw HttpBody data rather than JSON.
    pub fn is_raw(&self) -> bool {
        self.raw.is_some()
    }

    /// The size of the upstream message being received, if one is (0 between messages).
    pub fn message_in_progress(&self) -> usize {
        self.decoder.frame_in_progress()
    }

    /// Messages translated so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// The `content-type` of the translated response. For HttpBody responses it is known only
    /// once the first message arrived (`application/octet-stream` before).
    pub fn content_type(&self) -> Cow<'_, str> {
        if self.is_raw() {
            return Cow::Borrowed(self.raw_content_type.as_deref().unwrap_or(DEFAULT_RAW_CONTENT_TYPE));
        }
        Cow::Borrowed(match (self.streaming, self.format) {
            (true, StreamFormat::ServerSentEvents) => "text/event-stream",
            (true, StreamFormat::NewlineDelimited) => "application/x-ndjson",
            _ => "application/json",
        })
    }

    /// Feeds gRPC-framed response bytes; appends the translation of every completed message.
    /// The JSON of one call is limited as a whole (`max_response_json_bytes`): a batch of many
    /// small messages (what a stream gathered before its flush) cannot amplify past it either.
    pub fn push_framed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.decoder.push(data);
        let start = out.len();
        while let Some(message) = self.decoder.next_frame()? {
            let limit = self.max_json.spent(out.len().saturating_sub(start));
            self.push_message_within(&message, limit, out)?;
        }
        Ok(())
    }

    /// Feeds one whole (unframed) response message.
    pub fn push_message(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.push_message_within(message, self.max_json, out)
    }

    /// Feeds one whole (unframed) response message; its JSON may take `limit`.
    fn push_message_within(&mut self, message: &[u8], limit: OutputLimit, out: &mut Vec<u8>) -> Result<()> {
        let len = u64::try_from(message.len()).unwrap_or(u64::MAX);
        self.received = self.received.saturating_add(len);
        if let Some(max) = self.max_body {
            // A stream is limited per message (it is never buffered whole); a unary response whole.
            let size = if self.streaming { len } else { self.received };
            if size > u64::from(max) {
                return Err(Error::internal(format!(
                    "upstream response of {size} bytes exceeds max_response_body_size ({max})"
                )));
            }
        }
        if !self.streaming && self.messages > 0 {
            return Err(Error::bad_upstream("invalid gRPC response: more than one message for a unary method"));
        }
        if self.response_body.is_none() && self.raw.is_none() {
            return self.push_whole(message, limit, out);
        }
        // Printed in part or not at all: still a valid message as a whole, or a 502.
        self.codec.validate(self.output, message)?;
        let first = self.messages == 0;
        self.messages = self.messages.saturating_add(1);
        if let Some(raw) = self.raw {
            return self.write_raw(raw, message, out);
        }
        self.open_element(first, out);
        self.write_selected(message, limit, out)?;
        self.close_element(out);
        Ok(())
    }

    /// What comes before a stream's message: `[` or `,` in a JSON array, `data: ` for an event.
    fn open_element(&self, first: bool, out: &mut Vec<u8>) {
        if self.streaming {
            match self.format {
                StreamFormat::JsonArray => out.push(if first { b'[' } else { b',' }),
                StreamFormat::ServerSentEvents => out.extend_from_slice(b"data: "),
                StreamFormat::NewlineDelimited => {}
            }
        }
    }

    /// What ends a stream's message: the event's blank line, or NDJSON's newline.
    fn close_element(&self, out: &mut Vec<u8>) {
        if self.streaming {
            match self.format {
                StreamFormat::JsonArray => {}
                StreamFormat::ServerSentEvents => out.extend_from_slice(b"\n\n"),
                StreamFormat::NewlineDelimited => out.push(b'\n'),
            }
        }
    }

    /// The whole message: wire bytes straight to JSON, framed for streams.
    fn push_whole(&mut self, message: &[u8], limit: OutputLimit, out: &mut Vec<u8>) -> Result<()> {
        let first = self.messages == 0;
        let mark = out.len();
        self.open_element(first, out);
        if let Err(e) = self.codec.binary_to_json_limited(self.output, message, &self.print, limit, out) {
            // Nothing half-written reaches the client.
            out.truncate(mark);
            return Err(e);
        }
        self.messages = self.messages.saturating_add(1);
        self.close_element(out);
        Ok(())
    }

    /// `response_body`: the field alone, printed from its parent's occurrences of it.
    fn write_selected(&self, message: &[u8], limit: OutputLimit, out: &mut Vec<u8>) -> Result<()> {
        let Some(path) = &self.response_body else { return Ok(()) };
        let (Some(parents), Some(leaf)) =
            (wire::descend(message, path.parents().iter().map(|f| f.number)), path.leaf())
        else {
            return print_field_default(path, out);
        };
        let parent_type = match path.parents().last().map(|p| p.kind()) {
            Some(Kind::Message(m)) => m,
            _ => self.output,
        };
        let mut holder = Vec::new();
        for f in parents.iter().flat_map(|c| fields(c)).flatten().filter(|f| f.number == leaf.number) {
            f.write(&mut holder);
        }
        // As a decoded message would give it: a field with presence reads as its default.
        if holder.is_empty() && leaf.presence() {
            write_default(leaf, first_enum_value(&self.codec, leaf), &mut holder);
        }
        self.codec.field_to_json(parent_type, leaf.number, &holder, &self.print, limit, out)
    }

    /// HttpBody: its `data` is the body; the first message's `content_type` the content-type.
    fn write_raw(&mut self, http_body: usize, message: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let body = match &self.response_body {
            None => Some(vec![message]),
            Some(path) => wire::descend(message, path.fields().iter().map(|f| f.number)),
        };
        let (Some(body), Some(plan)) = (body, self.codec.plans().message(http_body)) else { return Ok(()) };
        let last = |name: &str, kind: Scalar| {
            let number =
                plan.fields.iter().find(|f| &*f.proto_name == name && f.kind == ValueKind::Scalar(kind))?.number;
            body.iter().flat_map(|c| fields(c)).flatten().filter(|f| f.number == number).last().map(|f| f.value)
        };
        if self.raw_content_type.is_none() {
            // It becomes a response header: a value that is not a valid header (CR, LF, NUL,
            // other control bytes, or very long) could inject header lines; it is replaced.
            let ct = last("content_type", Scalar::String).and_then(|ct| std::str::from_utf8(ct).ok());
            match ct.filter(|ct| !ct.is_empty()) {
                Some(ct) if is_header_value(ct) => self.raw_content_type = Some(ct.to_string()),
                Some(ct) => log::debug!(
                    "HttpBody.content_type of {} bytes is not a valid header value: sent as {DEFAULT_RAW_CONTENT_TYPE}",
                    ct.len()
                ),
                None => {}
            }
        }
        if let Some(data) = last("data", Scalar::Bytes) {
            out.extend_from_slice(data);
        }
        Ok(())
    }

    /// The end of the gRPC response. `status` is its final status. Appends what closes the
    /// body (`]`, a final error element/event); returns the error to send instead when nothing
    /// was sent yet (the caller decides whether it can still change the HTTP status).
    pub fn finish(&mut self, status: GrpcStatus, out: &mut Vec<u8>) -> Result<()> {
        self.decoder.finish()?;
        let raw = self.is_raw();
        if !status.is_ok() {
            let error = status.into_error();
            if self.streaming && self.messages > 0 && !raw {
                self.write_stream_error(&error, out);
                return Ok(());
            }
            return Err(error);
        }
        if self.streaming {
            if self.format == StreamFormat::JsonArray && !raw {
                out.extend_from_slice(if self.messages == 0 { b"[]" } else { b"]" });
            }
            return Ok(());
        }
        if self.messages == 0 {
            return Err(Error::bad_upstream("invalid gRPC response: OK status without a response message"));
        }
        Ok(())
    }

    /// An error after stream messages were sent: the HTTP status is gone, so the error travels
    /// in the body as a last element `{"error": {"code", "message", "details"}}`.
    fn write_stream_error(&self, error: &Error, out: &mut Vec<u8>) {
        let body = error.to_json();
        match self.format {
            StreamFormat::JsonArray => {
                out.extend_from_slice(b",{\"error\":");
                out.extend_from_slice(&body);
                out.extend_from_slice(b"}]");
            }
            StreamFormat::NewlineDelimited => {
                out.extend_from_slice(b"{\"error\":");
                out.extend_from_slice(&body);
                out.extend_from_slice(b"}\n");
            }
            StreamFormat::ServerSentEvents => {
                out.extend_from_slice(b"event: error\ndata: ");
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    /// For errors found mid-stream by the filter itself (bad frame, limit): the bytes that
    /// close the body with that error, when messages were already sent.
    pub fn abort(&self, error: &Error, out: &mut Vec<u8>) -> bool {
        if self.streaming && self.messages > 0 && !self.is_raw() {
            self.write_stream_error(error, out);
            return true;
        }
        false
    }
}

/// The content-type of an HttpBody response that names none (or an invalid one).
const DEFAULT_RAW_CONTENT_TYPE: &str = "application/octet-stream";

/// The longest content-type taken from an upstream HttpBody.
const MAX_CONTENT_TYPE_LEN: usize = 1024;

/// A header value safe to send (RFC 9110 field-value: visible ASCII, spaces and tabs inside;
/// no CR, LF, NUL or other control bytes), of sane length.
fn is_header_value(v: &str) -> bool {
    v.len() <= MAX_CONTENT_TYPE_LEN
        && v.trim_matches([' ', '\t']) == v
        && v.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

/// `response_body` naming a field of an unset parent: the field's default value.
fn print_field_default(path: &FieldPath, out: &mut Vec<u8>) -> Result<()> {
    let value = match path.leaf() {
        Some(f) if f.is_list() => "[]",
        Some(f) if f.map() || matches!(f.kind(), Kind::Message(_)) => "{}",
        _ => "null",
    };
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use prost::Message;
    use prost_reflect::DynamicMessage;

    use super::*;
    use crate::core::request::Decision;
    use crate::core::response::frame::encode_frame;
    use crate::core::response::status::Code;
    use crate::core::transcoder::Transcoder;
    use crate::testing::fixtures::things_transcoder as transcoder;

    fn response(t: &Transcoder, method: &str, path: &str) -> ResponseTranscoder {
        let Decision::Transcode(plan) = t.route(method, path, None) else { panic!("no route") };
        ResponseTranscoder::new(
            &t.codec,
            &plan.binding,
            &t.config.print_options,
            1 << 20,
            t.config.max_response_body_size,
            None,
        )
    }

    /// Encodes a JSON message of `type_name` as a gRPC frame.
    fn frame(type_name: &str, json: &str) -> Vec<u8> {
        let desc = crate::testing::fixtures::message(type_name);
        let msg = DynamicMessage::deserialize(desc, &mut serde_json::Deserializer::from_str(json)).unwrap();
        let mut out = Vec::new();
        encode_frame(&msg.encode_to_vec(), &mut out).unwrap();
        out
    }

    fn ok() -> GrpcStatus {
        GrpcStatus { code: Code::Ok, message: String::new(), details: vec![], status_missing: false }
    }

    fn status(code: Code, message: &str) -> GrpcStatus {
        GrpcStatus { code, message: message.into(), details: vec![], status_missing: false }
    }

    /// Feeds `data` in chunks of `chunk` bytes and finishes with `end`.
    fn run(r: &mut ResponseTranscoder, data: &[u8], chunk: usize, end: GrpcStatus) -> Result<String> {
        let mut out = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            r.push_framed(piece, &mut out)?;
        }
        r.finish(end, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn unary_message_becomes_json() {
        let t = transcoder("");
        let data = frame("test.v1.Everything", r#"{"id": "1", "numbers": ["5"], "scalars": {"fEnum": "RED"}}"#);
        for chunk in [1, 3, 1000] {
            let mut r = response(&t, "GET", "/v1/things/1");
            assert_eq!(r.content_type(), "application/json");
            let out = run(&mut r, &data, chunk, ok()).unwrap();
            assert_eq!(out, r#"{"id":"1","scalars":{"fEnum":"RED"},"numbers":["5"]}"#);
        }
    }

    #[test]
    fn print_options_apply() {
        let t =
            transcoder(r#""print_options": {"preserve_proto_field_names": true, "always_print_enums_as_ints": true}"#);
        let data = frame("test.v1.Everything", r#"{"scalars": {"fEnum": "RED"}}"#);
        let out = run(&mut response(&t, "GET", "/v1/things/1"), &data, 100, ok()).unwrap();
        assert_eq!(out, r#"{"scalars":{"f_enum":1}}"#);
    }

    #[test]
    fn unary_errors() {
        let t = transcoder("");
        let e =
            run(&mut response(&t, "GET", "/v1/things/1"), &[], 1, status(Code::NotFound, "no such thing")).unwrap_err();
        assert_eq!((e.http_status, e.message.as_str()), (404, "no such thing"));
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &[], 1, ok()).unwrap_err();
        assert_eq!(e.http_status, 502);
        let two = [frame("test.v1.Everything", "{}"), frame("test.v1.Everything", "{}")].concat();
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &two, 100, ok()).unwrap_err();
        assert!(e.message.contains("more than one message"), "{e}");
        // Truncated frame, undecodable message.
        let data = frame("test.v1.Everything", r#"{"id": "1"}"#);
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &data[..data.len() - 1], 100, ok()).unwrap_err();
        assert!(e.message.contains("truncated"), "{e}");
        let bad = [0u8, 0, 0, 0, 2, 0x0a, 0x05];
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &bad, 100, ok()).unwrap_err();
        assert_eq!(e.http_status, 502);
        assert!(e.message.contains("test.v1.Everything"), "{e}");
    }

    #[test]
    fn response_size_limit() {
        let t = transcoder(r#""max_response_body_size": 10"#);
        let small = frame("test.v1.Everything", r#"{"id": "12345678"}"#); // 10-byte message
        assert!(run(&mut response(&t, "GET", "/v1/things/1"), &small, 100, ok()).is_ok());
        let big = frame("test.v1.Everything", r#"{"id": "123456789"}"#);
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &big, 100, ok()).unwrap_err();
        assert_eq!(e.http_status, 500, "{e}");
        assert!(e.message.contains("max_response_body_size"), "{e}");
    }

    #[test]
    fn response_body_selects_a_field() {
        let t = transcoder("");
        let data = frame("test.v1.Everything", r#"{"id": "1", "nested": {"name": "n", "value": 2}}"#);
        let out = run(&mut response(&t, "GET", "/v1/nested-response/1"), &data, 7, ok()).unwrap();
        assert_eq!(out, r#"{"name":"n","value":2}"#);
        let data = frame("test.v1.Everything", r#"{"id": "1"}"#);
        let out = run(&mut response(&t, "GET", "/v1/nested-response/1"), &data, 7, ok()).unwrap();
        assert_eq!(out, "{}");
    }

    #[test]
    fn http_body_response_is_raw() {
        let t = transcoder("");
        let data = frame("google.api.HttpBody", r#"{"contentType": "text/csv", "data": "YSxiCg=="}"#);
        let mut r = response(&t, "GET", "/v1/download/1");
        assert!(r.is_raw());
        let out = run(&mut r, &data, 3, ok()).unwrap();
        assert_eq!(out, "a,b\n");
        assert_eq!(r.content_type(), "text/csv");
    }

    #[test]
    fn server_stream_formats() {
        let t = transcoder("");
        let data =
            [frame("test.v1.Everything", r#"{"id": "1"}"#), frame("test.v1.Everything", r#"{"id": "2"}"#)].concat();
        let mut r = response(&t, "GET", "/v1/stream/1");
        assert_eq!(run(&mut r, &data, 4, ok()).unwrap(), r#"[{"id":"1"},{"id":"2"}]"#);
        assert_eq!(run(&mut response(&t, "GET", "/v1/stream/1"), &[], 4, ok()).unwrap(), "[]");
        let t = transcoder(r#""print_options": {"stream_newline_delimited": true}"#);
        let mut r = response(&t, "GET", "/v1/stream/1");
        assert_eq!(r.content_type(), "application/x-ndjson");
        assert_eq!(run(&mut r, &data, 4, ok()).unwrap(), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n");
        let t =
            transcoder(r#""print_options": {"stream_newline_delimited": true, "stream_sse_style_delimited": true}"#);
        let mut r = response(&t, "GET", "/v1/stream/1");
        assert_eq!(r.content_type(), "text/event-stream");
        assert_eq!(run(&mut r, &data, 4, ok()).unwrap(), "data: {\"id\":\"1\"}\n\ndata: {\"id\":\"2\"}\n\n");
    }

    #[test]
    fn stream_messages_are_written_as_soon_as_complete() {
        let t = transcoder("");
        let first = frame("test.v1.Everything", r#"{"id": "1"}"#);
        let mut r = response(&t, "GET", "/v1/stream/1");
        let mut out = Vec::new();
        r.push_framed(&first[..first.len() - 1], &mut out).unwrap();
        assert!(out.is_empty());
        r.push_framed(&first[first.len() - 1..], &mut out).unwrap();
        assert_eq!(out, br#"[{"id":"1"}"#);
    }

    #[test]
    fn stream_errors_after_messages_are_visible() {
        let t = transcoder("");
        let data = frame("test.v1.Everything", r#"{"id": "1"}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 100, status(Code::NotFound, "gone")).unwrap();
        assert_eq!(out, r#"[{"id":"1"},{"error":{"code":5,"message":"gone","details":[]}}]"#);
        let t = transcoder(r#""print_options": {"stream_sse_style_delimited": true}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 100, status(Code::Internal, "boom")).unwrap();
        assert!(out.ends_with("event: error\ndata: {\"code\":13,\"message\":\"boom\",\"details\":[]}\n\n"), "{out}");
        // Before any message, the error replaces the response.
        let e = run(&mut response(&t, "GET", "/v1/stream/1"), &[], 100, status(Code::Internal, "boom")).unwrap_err();
        assert_eq!(e.http_status, 500);
    }

    /// A message of `count` empty `items` (field 7): 2 bytes each on the wire, a whole object
    /// each in JSON with `always_print_primitive_fields`.
    fn empty_items(count: usize) -> Vec<u8> {
        let mut data = Vec::new();
        encode_frame(&[0x3a, 0x00].repeat(count), &mut data).unwrap();
        data
    }

    fn limited(extra: &str) -> Transcoder {
        let limits = r#""json2grpc": {"limits": {"max_response_json_bytes": 10000}}"#;
        transcoder(&format!(r#""print_options": {{"always_print_primitive_fields": true{extra}}}, {limits}"#))
    }

    #[test]
    fn json_output_is_limited_while_printing() {
        let t = limited("");
        let data = empty_items(20_000);
        let unlimited = run(&mut response(&t, "GET", "/v1/things/1"), &data, 1 << 20, ok()).unwrap();
        assert!(unlimited.len() > 10 * data.len(), "{} bytes of JSON from {}", unlimited.len(), data.len());
        let Decision::Transcode(plan) = t.route("GET", "/v1/things/1", None) else { panic!() };
        let mut r = t.response(&plan.binding, None, None);
        let mut out = Vec::new();
        let e = r.push_framed(&data, &mut out).unwrap_err();
        assert_eq!(e.http_status, 500);
        assert_eq!(e.message, "the JSON response exceeds json2grpc.limits.max_response_json_bytes (10000 bytes)");
        assert!(out.is_empty(), "nothing half-written");
        // Printing stops at the limit, not after the whole message: past it by one element at most.
        let everything = t.schema.message_index("test.v1.Everything").unwrap();
        let mut partial = Vec::new();
        let limit = OutputLimit::new(10_000, "x");
        t.codec
            .binary_to_json_limited(everything, &data[5..], &t.config.print_options, limit, &mut partial)
            .unwrap_err();
        let element = unlimited.len() / 20_000;
        assert!(partial.len() <= 10_000 + 2 * element, "{} bytes written", partial.len());
        // A unary response Envoy holds is limited by its buffer too.
        assert_eq!(t.json_limit(true).option, "json2grpc.limits.max_response_json_bytes");
        let t = transcoder(r#""json2grpc": {"limits": {"envoy_buffer_bytes": 100}}"#);
        assert_eq!(t.json_limit(true), OutputLimit::new(100, "json2grpc.limits.envoy_buffer_bytes"));
        assert_eq!(t.json_limit(false).option, "json2grpc.limits.max_response_json_bytes");
    }

    #[test]
    fn a_stream_is_limited_per_message_and_per_upstream_read() {
        let t = limited("");
        let Decision::Transcode(plan) = t.route("GET", "/v1/stream/1", None) else { panic!() };
        let message = frame("test.v1.Everything", "{}");
        let one = run(&mut response(&t, "GET", "/v1/stream/1"), &message, 100, ok()).unwrap().len();
        // Read one by one, many messages are fine; a read of all at once would amplify past it.
        let many = message.repeat(2 * 10_000 / one + 2);
        let mut r = t.response(&plan.binding, None, None);
        let mut out = Vec::new();
        for m in many.chunks(message.len()) {
            let before = out.len();
            r.push_framed(m, &mut out).unwrap();
            assert!(out.len() - before <= 10_000);
        }
        let mut r = t.response(&plan.binding, None, None);
        let e = r.push_framed(&many, &mut Vec::new()).unwrap_err();
        assert!(e.message.contains("max_response_json_bytes"), "{e}");
        // One message over it alone.
        let mut r = t.response(&plan.binding, None, None);
        assert!(r.push_framed(&empty_items(20_000), &mut Vec::new()).is_err());
    }

    #[test]
    fn response_messages_nested_past_100_levels_are_refused() {
        // Everything.nested (3), then Nested.child (3) again and again: `levels` messages deep.
        let nested = |levels: usize| {
            let mut bytes = Vec::new();
            for _ in 0..levels {
                let mut outer = vec![0x1a];
                crate::core::codec::wire::write_varint(bytes.len() as u64, &mut outer);
                outer.extend_from_slice(&bytes);
                bytes = outer;
            }
            let mut data = Vec::new();
            encode_frame(&bytes, &mut data).unwrap();
            data
        };
        let t = transcoder("");
        assert!(run(&mut response(&t, "GET", "/v1/things/1"), &nested(99), 100, ok()).is_ok());
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &nested(5000), 100, ok()).unwrap_err();
        assert_eq!((e.http_status, e.message.as_str()), (502, "response message nested too deeply"));
    }

    #[test]
    fn ndjson_and_sse_lines_stay_one_line_with_add_whitespace() {
        let data = [
            frame("test.v1.Everything", r#"{"id": "1", "nested": {"name": "n"}}"#),
            frame("test.v1.Everything", r#"{"id": "2"}"#),
        ]
        .concat();
        let t = transcoder(r#""print_options": {"add_whitespace": true, "stream_newline_delimited": true}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 5, ok()).unwrap();
        assert_eq!(out, "{\"id\":\"1\",\"nested\":{\"name\":\"n\"}}\n{\"id\":\"2\"}\n");
        let t = transcoder(r#""print_options": {"add_whitespace": true, "stream_sse_style_delimited": true}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 5, ok()).unwrap();
        assert_eq!(out, "data: {\"id\":\"1\",\"nested\":{\"name\":\"n\"}}\n\ndata: {\"id\":\"2\"}\n\n");
        // JSON arrays and unary responses keep the whitespace.
        let t = transcoder(r#""print_options": {"add_whitespace": true}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 5, ok()).unwrap();
        assert!(out.contains("\n  \"id\": \"1\""), "{out}");
    }

    #[test]
    fn an_invalid_http_body_content_type_is_not_a_header() {
        let t = transcoder("");
        for (ct, expected) in [
            ("text/csv\r\nx-injected: 1", "application/octet-stream"),
            ("text/csv\nx-injected: 1", "application/octet-stream"),
            ("text/csv\u{0}", "application/octet-stream"),
            (" text/csv", "application/octet-stream"),
            ("text/csv; charset=\"utf-8\"", "text/csv; charset=\"utf-8\""),
        ] {
            let json = serde_json::json!({"contentType": ct, "data": "YQ=="}).to_string();
            let data = frame("google.api.HttpBody", &json);
            let mut r = response(&t, "GET", "/v1/download/1");
            assert_eq!(run(&mut r, &data, 3, ok()).unwrap(), "a");
            assert_eq!(r.content_type(), expected, "{ct:?}");
        }
        let long = format!("text/{}", "x".repeat(2000));
        let data = frame("google.api.HttpBody", &serde_json::json!({"contentType": long, "data": "YQ=="}).to_string());
        let mut r = response(&t, "GET", "/v1/download/1");
        run(&mut r, &data, 100, ok()).unwrap();
        assert_eq!(r.content_type(), "application/octet-stream");
    }

    /// `response_body` as the message-tree implementation printed it (decoded message, the
    /// parent holding only the selected field, printed, the value taken out), the reference
    /// of the wire-level selection.
    fn reference_selection(t: &Transcoder, path: &FieldPath, message: &[u8], print: &PrintOptions) -> String {
        use prost_reflect::{ReflectMessage, Value};
        let desc = crate::testing::fixtures::message("test.v1.Everything");
        let decoded = DynamicMessage::decode(desc, message).unwrap();
        let mut parent = &decoded;
        for f in path.parents() {
            let field = parent.descriptor().get_field(f.number).unwrap();
            if !parent.has_field(&field) {
                let mut out = Vec::new();
                print_field_default(path, &mut out).unwrap();
                return String::from_utf8(out).unwrap();
            }
            parent = match parent.get_field(&field) {
                Cow::Borrowed(Value::Message(m)) => m,
                _ => panic!(),
            };
        }
        let leaf = parent.descriptor().get_field(path.leaf().unwrap().number).unwrap();
        let mut holder = DynamicMessage::new(parent.descriptor());
        holder.set_field(&leaf, parent.get_field(&leaf).into_owned());
        let index = t.codec.index(&parent.descriptor()).unwrap();
        let mut text = Vec::new();
        let compact = PrintOptions { add_whitespace: false, ..print.clone() };
        t.codec.binary_to_json(index, &holder.encode_to_vec(), &compact, &mut text).unwrap();
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&text).unwrap();
        let key = if print.preserve_proto_field_names { leaf.name() } else { leaf.json_name() };
        let value = object.remove(key).unwrap_or(serde_json::Value::Null);
        if print.add_whitespace {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        }
    }

    #[test]
    fn response_body_selections_match_the_message_tree_reference() {
        let messages = [
            "{}",
            r#"{"id": "1", "nested": {"name": "n", "value": 2, "child": {"value": 3}}}"#,
            r#"{"scalars": {"fInt32": 5, "fOptional": 0, "fEnum": "RED"}, "tags": ["a", "b"], "labels": {"k": "v"}}"#,
            r#"{"choiceNested": {"name": "c"}, "ts": "2024-01-02T03:04:05Z", "st": {"b": 1, "a": [true, null]}}"#,
            r#"{"scalars": {}, "items": [{"name": "x"}, {}], "byNumber": {"2": {"value": 1}}, "wInt32": 0}"#,
        ];
        let paths = [
            "id",
            "nested",
            "nested.name",
            "nested.child",
            "nested.child.value",
            "scalars",
            "scalars.f_int32",
            "scalars.f_optional",
            "scalars.f_enum",
            "scalars.f_string",
            "tags",
            "labels",
            "items",
            "by_number",
            "choice_text",
            "choice_nested",
            "ts",
            "st",
            "w_int32",
            "w_bool",
            "any",
            "val",
        ];
        let prints = [
            PrintOptions::default(),
            PrintOptions { add_whitespace: true, always_print_primitive_fields: true, ..Default::default() },
            PrintOptions { preserve_proto_field_names: true, always_print_enums_as_ints: true, ..Default::default() },
        ];
        let t = transcoder("");
        let Decision::Transcode(plan) = t.route("GET", "/v1/nested-response/1", None) else { panic!() };
        let everything = t.schema.message_index("test.v1.Everything").unwrap();
        let mut compared = 0;
        for json in messages {
            let message = frame("test.v1.Everything", json);
            for path in paths {
                let path =
                    FieldPath::resolve(&t.schema, everything, path, crate::core::route::field_path::Names::Proto)
                        .unwrap();
                for print in &prints {
                    let binding = HttpBinding { response_body: Some(path.clone()), ..plan.binding.for_tests() };
                    let mut r = ResponseTranscoder::new(&t.codec, &binding, print, 1 << 20, None, None);
                    let got = run(&mut r, &message, 7, ok()).unwrap();
                    let expected = reference_selection(&t, &path, &message[5..], print);
                    // The reference goes through serde_json's map (keys sorted); the filter
                    // prints members in declaration order, as everywhere else.
                    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
                    assert_eq!(parse(&got), parse(&expected), "{json} {path} {print:?}");
                    assert_eq!(got.contains('\n'), expected.contains('\n'), "{json} {path} {print:?}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 5 * 22 * 3);
    }
}
