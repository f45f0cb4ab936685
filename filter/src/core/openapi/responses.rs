//! What an operation answers: its message (or a field of it, or raw HttpBody bytes), a stream
//! of them in the configured format, and the JSON `google.rpc.Status` errors with every HTTP
//! status json2grpc gives them (the gRPC code's, Envoy's table, and the filter's own).
use serde_json::{json, Map, Value};

use super::schemas::Schemas;
use crate::core::response::StreamFormat;
use crate::core::router::{HttpBinding, HTTP_BODY};
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

/// The `responses` object of an operation.
pub fn responses(schemas: &mut Schemas<'_>, binding: &HttpBinding, format: StreamFormat, head: bool) -> Value {
    let mut out = Map::new();
    let mut ok = Map::new();
    ok.insert("description".into(), json!("OK"));
    if !head {
        ok.insert("content".into(), Value::Object(success(schemas, binding, format)));
    }
    out.insert("200".into(), Value::Object(ok));
    let takes_body = binding.body != crate::core::router::BodyRule::None;
    for (status, when) in ERRORS {
        if *status == 413 && !takes_body {
            continue;
        }
        out.insert(status.to_string(), json!({"$ref": "#/components/responses/Error", "description": when}));
    }
    Value::Object(out)
}

/// The `content` of the 200 response.
fn success(schemas: &mut Schemas<'_>, binding: &HttpBinding, format: StreamFormat) -> Map<String, Value> {
    let mut content = Map::new();
    let printed = match &binding.response_body {
        Some(path) => path.leaf().map(|f| (f.kind, schemas.field(f, false))),
        None => Some((Kind::Message(binding.method.output), schemas.message(binding.method.output, false))),
    };
    let Some((kind, item)) = printed else { return content };
    let raw = matches!(kind, Kind::Message(m) if schemas.schema.message_name(m) == HTTP_BODY);
    if raw {
        // google.api.HttpBody: its data, with its content_type.
        content.insert(
            "*/*".into(),
            json!({"schema": {"description": "The google.api.HttpBody's data, with its content_type"}}),
        );
        return content;
    }
    if !binding.method.server_streaming {
        content.insert("application/json".into(), json!({ "schema": item }));
        return content;
    }
    let error = json!({"type": "object", "required": ["error"], "properties": {"error": error_schema(schemas)},
        "description": "The stream failed after messages were sent: the last element"});
    match format {
        StreamFormat::JsonArray => {
            content.insert(
                "application/json".into(),
                json!({"schema": {"type": "array", "items": {"anyOf": [item, error]},
                    "description": "The stream's messages, as they arrive; an error after them is a last `{\"error\": …}` element"}}),
            );
        }
        StreamFormat::NewlineDelimited => {
            content.insert(
                "application/x-ndjson".into(),
                json!({"schema": {"type": "string", "description": "One JSON value per line: each message, as they arrive; an error after them is a last `{\"error\": …}` line"},
                    "x-json2grpc-item-schema": {"anyOf": [item, error]}}),
            );
        }
        StreamFormat::ServerSentEvents => {
            content.insert(
                "text/event-stream".into(),
                json!({"schema": {"type": "string", "description": "Server-sent events: `data: <message JSON>` per message; an error after them is an `event: error` whose data is a google.rpc.Status"},
                    "x-json2grpc-item-schema": item}),
            );
        }
    }
    content
}

/// The schema of errors: the google.rpc.Status message (json2grpc always prints its three
/// fields), or the same inline when the descriptors lack it.
pub fn error_schema(schemas: &mut Schemas<'_>) -> Value {
    schemas.message_named("google.rpc.Status").unwrap_or_else(|| {
        json!({"type": "object", "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}}}})
    })
}

/// `components.responses`: the error response every operation refers to.
pub fn components(schemas: &mut Schemas<'_>) -> Value {
    let status = error_schema(schemas);
    json!({"Error": {
        "description": "A JSON google.rpc.Status: the gRPC code, a message and details",
        "content": {"application/json": {"schema": status}}}})
}
