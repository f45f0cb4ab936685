//! What an operation answers: its message (or a field of it, or raw HttpBody bytes), a stream
//! of them in the configured format, and the JSON `google.rpc.Status` errors with every HTTP
//! status json2grpc gives them (the gRPC code's, Envoy's table, and the filter's own).
use serde_json::{Map, Value};

use super::json::{obj, put, set, string, text};

use super::schemas::Schemas;
use crate::core::config::RestOptions;
use crate::core::response::StreamFormat;
use crate::core::rest::success_status::has_no_body;
use crate::core::route::router::{BodyRule, HttpBinding, HTTP_BODY};
use crate::core::schema::Kind;

/// The HTTP statuses of errors, and when each is answered.
pub const ERRORS: &[(u16, &str)] = &[
    (400, "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE from the service, or a request json2grpc cannot transcode (invalid JSON, a bad path or query value)"),
    (401, "UNAUTHENTICATED"),
    (403, "PERMISSION_DENIED"),
    (404, "NOT_FOUND (also: no route for the gRPC method, in loopback mode)"),
    (409, "ALREADY_EXISTS or ABORTED"),
    (413, "the request body is over max_request_body_size"),
    (429, "RESOURCE_EXHAUSTED"),
    (499, "CANCELLED"),
    (500, "INTERNAL, UNKNOWN or DATA_LOSS, or a response over a configured limit"),
    (501, "UNIMPLEMENTED"),
    (502, "the service's answer is not a valid gRPC response"),
    (503, "UNAVAILABLE, an answer without a gRPC status, or the API description still loading"),
    (504, "DEADLINE_EXCEEDED, or the call timed out"),
];

/// The `responses` object of an operation. Its success is 200, or the method's
/// `json2grpc.rest.success_status` (no content for 204); with `status_from_metadata` the service
/// may choose another, which a `2XX` entry says.
pub fn responses(
    schemas: &mut Schemas<'_>,
    binding: &HttpBinding,
    format: StreamFormat,
    head: bool,
    rest: &RestOptions,
) -> Value {
    let mut out = Map::new();
    let status = rest.success_status_of(&binding.method.full_name).unwrap_or(200);
    let content = (!head).then(|| Value::Object(success(schemas, binding, format)));
    let mut ok = Map::new();
    put(&mut ok, "description", string(if status == 200 { "OK" } else { "Success (json2grpc.rest.success_status)" }));
    if let Some(content) = content.clone().filter(|_| !has_no_body(status)) {
        put(&mut ok, "content", content);
    }
    put(&mut out, &status.to_string(), Value::Object(ok));
    if rest.status_from_metadata {
        let mut chosen = Map::new();
        let why = "Success with the status the service chose (initial metadata x-http-code, json2grpc.rest.status_from_metadata); 204 and 205 have no content";
        put(&mut chosen, "description", string(why));
        if let Some(content) = content {
            put(&mut chosen, "content", content);
        }
        put(&mut out, "2XX", Value::Object(chosen));
    }
    let takes_body = binding.body != BodyRule::None;
    for (status, when) in ERRORS {
        if *status == 413 && !takes_body {
            continue;
        }
        let error = obj(vec![("$ref", string("#/components/responses/Error")), ("description", string(when))]);
        put(&mut out, &status.to_string(), error);
    }
    Value::Object(out)
}

/// The `content` of the 200 response.
fn success(schemas: &mut Schemas<'_>, binding: &HttpBinding, format: StreamFormat) -> Map<String, Value> {
    let mut content = Map::new();
    let printed = match &binding.response_body {
        Some(path) => path.leaf().map(|f| (f.kind(), schemas.field(f, false))),
        None => Some((Kind::Message(binding.method.output), schemas.message(binding.method.output, false))),
    };
    let Some((kind, item)) = printed else { return content };
    if matches!(kind, Kind::Message(m) if schemas.schema.message_name(m) == HTTP_BODY) {
        let raw = text(r#"{"schema": {"description": "The google.api.HttpBody's data, with its content_type"}}"#);
        put(&mut content, "*/*", raw);
        return content;
    }
    if !binding.method.server_streaming {
        put(&mut content, "application/json", obj(vec![("schema", item)]));
        return content;
    }
    let mut error = text(
        r#"{"type": "object", "required": ["error"],
            "description": "The stream failed after messages were sent: the last element"}"#,
    );
    set(&mut error, "properties", obj(vec![("error", error_schema(schemas))]));
    let either = obj(vec![("anyOf", Value::Array(vec![item.clone(), error]))]);
    let (media_type, mut schema, item_schema) = match format {
        StreamFormat::JsonArray => (
            "application/json",
            text(
                r#"{"type": "array", "description":
                    "The stream's messages, as they arrive; an error after them is a last `{\"error\": …}` element. A stream that ends or fails before its first message, after the service sent its headers, is 200 with an empty body (Envoy gives the filter no body to write to)"}"#,
            ),
            None,
        ),
        StreamFormat::NewlineDelimited => (
            "application/x-ndjson",
            text(
                r#"{"type": "string", "description":
                    "One JSON value per line: each message as it arrives; an error after them is a last `{\"error\": …}` line; one that ends or fails before its first message may be an empty body"}"#,
            ),
            Some(either.clone()),
        ),
        StreamFormat::ServerSentEvents => {
            // Before OpenAPI 3.2 (`itemSchema`), the schema of an event stream describes one
            // event, as the parsed fields `event` and `data` (schemathesis reads it so).
            let status = error_schema(schemas);
            let events = Value::Array(vec![sse_event("message", item), sse_event("error", status)]);
            let mut schema = text(
                r#"{"description": "Server-sent events: `data: <message JSON>` per message; an error after them is an `event: error` whose data is a google.rpc.Status; a stream that ends or fails before its first message may be an empty body"}"#,
            );
            set(&mut schema, "anyOf", events);
            put(&mut content, "text/event-stream", obj(vec![("schema", schema)]));
            return content;
        }
    };
    let mut media = Map::new();
    match item_schema {
        // NDJSON is text to OpenAPI 3.1: the schema of each line is an extension.
        Some(each) => put(&mut media, "x-json2grpc-item-schema", each),
        None => set(&mut schema, "items", either),
    }
    put(&mut media, "schema", schema);
    put(&mut content, media_type, Value::Object(media));
    content
}

/// One server-sent event of type `event` (`message` when the stream does not name it) whose
/// `data` is JSON matching `data`.
fn sse_event(event: &str, data: Value) -> Value {
    let mut payload = text(r#"{"type": "string", "contentMediaType": "application/json"}"#);
    set(&mut payload, "contentSchema", data);
    let properties = obj(vec![("event", obj(vec![("const", string(event))])), ("data", payload)]);
    obj(vec![("type", string("object")), ("required", Value::Array(vec![string("data")])), ("properties", properties)])
}

/// The schema of errors: the google.rpc.Status message (json2grpc always prints its three
/// fields), or the same inline when the descriptors lack it.
pub fn error_schema(schemas: &mut Schemas<'_>) -> Value {
    schemas.message_named("google.rpc.Status").unwrap_or_else(|| {
        text(
            r#"{"type": "object", "properties": {"code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"}, "details": {"type": "array", "items": {"type": "object"}}}}"#,
        )
    })
}

/// `components.responses`: the error response every operation refers to.
pub fn components(schemas: &mut Schemas<'_>) -> Value {
    let status = error_schema(schemas);
    let json = obj(vec![("application/json", obj(vec![("schema", status)]))]);
    let error = obj(vec![
        ("description", string("A JSON google.rpc.Status: the gRPC code, a message and details")),
        ("content", json),
    ]);
    obj(vec![("Error", error)])
}
