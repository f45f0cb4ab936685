//! The response translator: gRPC response messages → the JSON (or raw HttpBody) body the
//! client gets. Unary methods print one message; server streams print each message as soon as
//! it is complete, as a JSON array (default), NDJSON or server-sent events.
//!
//! Output is produced incrementally into caller-provided buffers, so the filter holds at most
//! one message at a time whatever the stream length.
use std::borrow::Cow;
use std::sync::Arc;

use prost::Message;

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value};

use super::config::PrintOptions;
use super::error::{Error, Result};
use super::fast::Codec;
use super::field_path::FieldPath;
use super::frame::FrameDecoder;
use super::grpc_status::GrpcStatus;
use super::router::{HttpBinding, HTTP_BODY};

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
    output: MessageDescriptor,
    response_body: Option<FieldPath>,
    /// The printed value is a google.api.HttpBody: its `data` is the body, unprinted.
    raw: bool,
    print: PrintOptions,
    streaming: bool,
    format: StreamFormat,
    decoder: FrameDecoder,
    messages: u64,
    /// Total upstream message bytes accepted so far, against `max_response_body_size`.
    received: u64,
    max_body: Option<u32>,
    /// `content_type` of the first HttpBody message.
    raw_content_type: Option<String>,
    /// The fast printer and the output type's plan, when it covers this response.
    fast: Option<(Arc<Codec>, usize)>,
    /// The codec, for what the fast path does not print directly (`response_body`).
    codec: Option<Arc<Codec>>,
}

impl ResponseTranscoder {
    pub fn new(
        binding: &HttpBinding,
        print: &PrintOptions,
        max_frame_size: u32,
        max_body: Option<u32>,
        grpc_encoding: Option<&str>,
    ) -> Self {
        let output = binding.method.output.clone();
        let printed_type = match binding.response_body.as_ref().and_then(FieldPath::leaf).map(|f| f.kind()) {
            Some(Kind::Message(m)) => Some(m),
            Some(_) => None,
            None => Some(output.clone()),
        };
        let raw = printed_type.is_some_and(|m| m.full_name() == HTTP_BODY);
        // The frame limit never exceeds the body limit: one frame is buffered whole.
        let decoder = match max_body {
            Some(body) if body < max_frame_size => {
                FrameDecoder::new(body, grpc_encoding).limit_named("max_response_body_size", 500)
            }
            _ => FrameDecoder::new(max_frame_size, grpc_encoding),
        };
        ResponseTranscoder {
            output,
            response_body: binding.response_body.clone(),
            raw,
            print: print.clone(),
            streaming: binding.method.server_streaming,
            format: StreamFormat::from_print_options(print),
            decoder,
            messages: 0,
            received: 0,
            max_body,
            raw_content_type: None,
            fast: None,
            codec: None,
        }
    }

    /// Prints messages with the fast codec when it covers the output type (every response
    /// except `response_body` selections and HttpBody, which go through reflection).
    pub fn with_codec(mut self, codec: &Arc<Codec>) -> Self {
        if self.response_body.is_none() && !self.raw {
            self.fast = codec.index(&self.output).map(|i| (codec.clone(), i));
        }
        self.codec = Some(codec.clone());
        self
    }

    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Whether the response body is raw HttpBody data rather than JSON.
    pub fn is_raw(&self) -> bool {
        self.raw
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
        if self.raw {
            return Cow::Borrowed(self.raw_content_type.as_deref().unwrap_or("application/octet-stream"));
        }
        Cow::Borrowed(match (self.streaming, self.format) {
            (true, StreamFormat::ServerSentEvents) => "text/event-stream",
            (true, StreamFormat::NewlineDelimited) => "application/x-ndjson",
            _ => "application/json",
        })
    }

    /// Feeds gRPC-framed response bytes; appends the translation of every completed message.
    pub fn push_framed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.decoder.push(data);
        while let Some(message) = self.decoder.next_frame()? {
            self.push_message(&message, out)?;
        }
        Ok(())
    }

    /// Feeds one whole (unframed) response message, as a gRPC callout delivers them.
    pub fn push_message(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<()> {
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
        if let Some((codec, index)) = &self.fast {
            let (codec, index) = (codec.clone(), *index);
            return self.push_fast(&codec, index, message, out);
        }
        let decoded = DynamicMessage::decode(self.output.clone(), message).map_err(|e| {
            Error::bad_upstream(format!("response is not a valid {} message: {e}", self.output.full_name()))
        })?;
        let first = self.messages == 0;
        self.messages = self.messages.saturating_add(1);
        if self.raw {
            return self.write_raw(&decoded, out);
        }
        if self.streaming {
            match self.format {
                StreamFormat::JsonArray => out.push(if first { b'[' } else { b',' }),
                StreamFormat::ServerSentEvents => out.extend_from_slice(b"data: "),
                StreamFormat::NewlineDelimited => {}
            }
        }
        self.write_json(&decoded, out)?;
        if self.streaming {
            match self.format {
                StreamFormat::JsonArray => {}
                StreamFormat::ServerSentEvents => out.extend_from_slice(b"\n\n"),
                StreamFormat::NewlineDelimited => out.push(b'\n'),
            }
        }
        Ok(())
    }

    /// Wire bytes straight to JSON, framed for streams like the reflection path.
    fn push_fast(&mut self, codec: &Codec, index: usize, message: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let first = self.messages == 0;
        let mark = out.len();
        if self.streaming {
            match self.format {
                StreamFormat::JsonArray => out.push(if first { b'[' } else { b',' }),
                StreamFormat::ServerSentEvents => out.extend_from_slice(b"data: "),
                StreamFormat::NewlineDelimited => {}
            }
        }
        if let Err(e) = codec.binary_to_json(index, message, &self.print, out) {
            // Nothing half-written reaches the client.
            out.truncate(mark);
            return Err(e);
        }
        self.messages = self.messages.saturating_add(1);
        if self.streaming {
            match self.format {
                StreamFormat::JsonArray => {}
                StreamFormat::ServerSentEvents => out.extend_from_slice(b"\n\n"),
                StreamFormat::NewlineDelimited => out.push(b'\n'),
            }
        }
        Ok(())
    }

    fn write_json(&self, message: &DynamicMessage, out: &mut Vec<u8>) -> Result<()> {
        let Some(path) = &self.response_body else {
            return self.print_whole(message, &self.print, out);
        };
        // `response_body`: print the field alone. The parent is printed with only that field
        // set (so its JSON mapping is exact), then the value is taken out of the object.
        let (Some(parent), Some(leaf)) = (path.parent(message), path.leaf()) else {
            return print_field_default(path, out);
        };
        let mut holder = DynamicMessage::new(parent.descriptor());
        holder.set_field(leaf, parent.get_field(leaf).into_owned());
        let print = PrintOptions { add_whitespace: false, ..self.print.clone() };
        let mut text = Vec::new();
        self.print_whole(&holder, &print, &mut text)?;
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&text).map_err(|e| Error::internal(format!("response_body: {e}")))?;
        let key = if self.print.preserve_proto_field_names { leaf.name() } else { leaf.json_name() };
        let value = object.remove(key).unwrap_or(serde_json::Value::Null);
        let written = if self.print.add_whitespace {
            serde_json::to_writer_pretty(&mut *out, &value)
        } else {
            serde_json::to_writer(&mut *out, &value)
        };
        written.map_err(|e| Error::internal(format!("response_body: {e}")))
    }

    /// A whole message as JSON: with the codec when there is one (the filter always has it),
    /// else with reflection (tests, fuzzing).
    fn print_whole(&self, message: &DynamicMessage, print: &PrintOptions, out: &mut Vec<u8>) -> Result<()> {
        let desc = message.descriptor();
        if let Some(codec) = &self.codec {
            let index = codec.index(&desc).ok_or_else(|| {
                Error::bad_upstream(format!(
                    "{} uses proto2 groups, which json2grpc does not transcode",
                    desc.full_name()
                ))
            })?;
            return codec.binary_to_json(index, &message.encode_to_vec(), print, out);
        }
        #[cfg(feature = "reflection")]
        return super::json::print_message(message, print, out);
        #[cfg(not(feature = "reflection"))]
        Err(Error::internal(format!("no JSON printer for {}", desc.full_name())))
    }

    fn write_raw(&mut self, message: &DynamicMessage, out: &mut Vec<u8>) -> Result<()> {
        let body = match &self.response_body {
            None => Some(message),
            Some(path) => match (path.parent(message), path.leaf()) {
                (Some(parent), Some(leaf)) if parent.has_field(leaf) => match parent.get_field(leaf) {
                    Cow::Borrowed(Value::Message(m)) => Some(m),
                    _ => None,
                },
                _ => None,
            },
        };
        let Some(body) = body else { return Ok(()) };
        if self.raw_content_type.is_none() {
            let ct = body.get_field_by_name("content_type");
            if let Some(ct) = ct.as_deref().and_then(Value::as_str).filter(|ct| !ct.is_empty()) {
                self.raw_content_type = Some(ct.to_string());
            }
        }
        if let Some(data) = body.get_field_by_name("data").as_deref().and_then(Value::as_bytes) {
            out.extend_from_slice(data);
        }
        Ok(())
    }

    /// The end of the gRPC response. `status` is its final status. Appends what closes the
    /// body (`]`, a final error element/event); returns the error to send instead when nothing
    /// was sent yet (the caller decides whether it can still change the HTTP status).
    pub fn finish(&mut self, status: GrpcStatus, out: &mut Vec<u8>) -> Result<()> {
        self.decoder.finish()?;
        if !status.is_ok() {
            let error = status.into_error();
            if self.streaming && self.messages > 0 && !self.raw {
                self.write_stream_error(&error, out);
                return Ok(());
            }
            return Err(error);
        }
        if self.streaming {
            if self.format == StreamFormat::JsonArray && !self.raw {
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
        if self.streaming && self.messages > 0 && !self.raw {
            self.write_stream_error(error, out);
            return true;
        }
        false
    }
}

/// `response_body` naming a field of an unset parent: the field's default value.
fn print_field_default(path: &FieldPath, out: &mut Vec<u8>) -> Result<()> {
    let value = match path.leaf().map(|f| (f.is_list(), f.is_map(), f.kind())) {
        Some((true, _, _)) => "[]",
        Some((_, true, _)) | Some((_, _, Kind::Message(_))) => "{}",
        _ => "null",
    };
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;
    use prost::Message;

    use super::*;
    use crate::core::frame::encode_frame;
    use crate::core::request::Decision;
    use crate::core::status::Code;
    use crate::core::testutil::TEST_DESCRIPTOR_SET;
    use crate::core::transcoder::Transcoder;

    fn transcoder(extra: &str) -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
        let sep = if extra.is_empty() { "" } else { "," };
        let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Things"]{sep}{extra}}}"#);
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

    fn response(t: &Transcoder, method: &str, path: &str) -> ResponseTranscoder {
        let Decision::Transcode(plan) = t.route(method, path, None) else { panic!("no route") };
        ResponseTranscoder::new(&plan.binding, &t.config.print_options, 1 << 20, t.config.max_response_body_size, None)
    }

    /// Encodes a JSON message of `type_name` as a gRPC frame.
    fn frame(t: &Transcoder, type_name: &str, json: &str) -> Vec<u8> {
        let desc = t.pool.get_message_by_name(type_name).unwrap();
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
        let data = frame(&t, "test.v1.Everything", r#"{"id": "1", "numbers": ["5"], "scalars": {"fEnum": "RED"}}"#);
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
        let data = frame(&t, "test.v1.Everything", r#"{"scalars": {"fEnum": "RED"}}"#);
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
        let two = [frame(&t, "test.v1.Everything", "{}"), frame(&t, "test.v1.Everything", "{}")].concat();
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &two, 100, ok()).unwrap_err();
        assert!(e.message.contains("more than one message"), "{e}");
        // Truncated frame, undecodable message.
        let data = frame(&t, "test.v1.Everything", r#"{"id": "1"}"#);
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
        let small = frame(&t, "test.v1.Everything", r#"{"id": "12345678"}"#); // 10-byte message
        assert!(run(&mut response(&t, "GET", "/v1/things/1"), &small, 100, ok()).is_ok());
        let big = frame(&t, "test.v1.Everything", r#"{"id": "123456789"}"#);
        let e = run(&mut response(&t, "GET", "/v1/things/1"), &big, 100, ok()).unwrap_err();
        assert_eq!(e.http_status, 500, "{e}");
        assert!(e.message.contains("max_response_body_size"), "{e}");
    }

    #[test]
    fn response_body_selects_a_field() {
        let t = transcoder("");
        let data = frame(&t, "test.v1.Everything", r#"{"id": "1", "nested": {"name": "n", "value": 2}}"#);
        let out = run(&mut response(&t, "GET", "/v1/nested-response/1"), &data, 7, ok()).unwrap();
        assert_eq!(out, r#"{"name":"n","value":2}"#);
        let data = frame(&t, "test.v1.Everything", r#"{"id": "1"}"#);
        let out = run(&mut response(&t, "GET", "/v1/nested-response/1"), &data, 7, ok()).unwrap();
        assert_eq!(out, "{}");
    }

    #[test]
    fn http_body_response_is_raw() {
        let t = transcoder("");
        let data = frame(&t, "google.api.HttpBody", r#"{"contentType": "text/csv", "data": "YSxiCg=="}"#);
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
            [frame(&t, "test.v1.Everything", r#"{"id": "1"}"#), frame(&t, "test.v1.Everything", r#"{"id": "2"}"#)]
                .concat();
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
        let first = frame(&t, "test.v1.Everything", r#"{"id": "1"}"#);
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
        let data = frame(&t, "test.v1.Everything", r#"{"id": "1"}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 100, status(Code::NotFound, "gone")).unwrap();
        assert_eq!(out, r#"[{"id":"1"},{"error":{"code":5,"message":"gone","details":[]}}]"#);
        let t = transcoder(r#""print_options": {"stream_sse_style_delimited": true}"#);
        let out = run(&mut response(&t, "GET", "/v1/stream/1"), &data, 100, status(Code::Internal, "boom")).unwrap();
        assert!(out.ends_with("event: error\ndata: {\"code\":13,\"message\":\"boom\",\"details\":[]}\n\n"), "{out}");
        // Before any message, the error replaces the response.
        let e = run(&mut response(&t, "GET", "/v1/stream/1"), &[], 100, status(Code::Internal, "boom")).unwrap_err();
        assert_eq!(e.http_status, 500);
    }
}
