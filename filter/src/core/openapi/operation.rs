//! One operation per binding: its id, documentation, parameters, request body and responses.
use serde_json::{json, Map, Value};

use super::path::OpenApiPath;
use super::query;
use super::responses;
use super::schemas::Schemas;
use crate::core::config::Config;
use crate::core::response::StreamFormat;
use crate::core::router::{BodyRule, HttpBinding};

/// The operation object of `binding` at `path`; `id`: its operationId.
pub fn operation(
    schemas: &mut Schemas<'_>,
    config: &Config,
    binding: &HttpBinding,
    path: &OpenApiPath,
    id: String,
) -> Value {
    let method = &binding.method;
    let mut op = Map::new();
    op.insert("operationId".into(), json!(id));
    op.insert("tags".into(), json!([method.service]));
    if let Some(text) = schemas.docs.comment(&method.full_name) {
        let summary = text.lines().next().unwrap_or_default().trim_end_matches('.');
        op.insert("summary".into(), json!(summary));
        op.insert("description".into(), json!(text));
    }
    let mut parameters: Vec<Value> = path
        .params
        .iter()
        .map(|p| {
            let mut object = p.object.clone();
            object.insert("name".into(), json!(p.name));
            Value::Object(object)
        })
        .collect();
    parameters.extend(query::parameters(schemas, binding, &config.ignored_query_parameters));
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = request_body(schemas, binding) {
        op.insert("requestBody".into(), body);
    }
    let format = StreamFormat::from_print_options(&config.print_options);
    let head = binding.http_method == "HEAD";
    op.insert("responses".into(), responses::responses(schemas, binding, format, head));
    op.insert("x-json2grpc-rpc".into(), json!(method.path()));
    op.insert("x-json2grpc-template".into(), json!(binding.template));
    let streaming = match (method.client_streaming, method.server_streaming) {
        (true, true) => Some("bidirectional (needs HTTP/2 downstream)"),
        (true, false) => Some("client"),
        (false, true) => Some("server"),
        (false, false) => None,
    };
    if let Some(kind) = streaming {
        op.insert("x-json2grpc-streaming".into(), json!(kind));
    }
    Value::Object(op)
}

/// The request body per `body`: the request message (`*`), one of its fields, or the raw bytes
/// of a google.api.HttpBody; a client stream sends a JSON array (or NDJSON) of them.
fn request_body(schemas: &mut Schemas<'_>, binding: &HttpBinding) -> Option<Value> {
    let method = &binding.method;
    let item = match &binding.body {
        BodyRule::None => return None,
        _ if binding.body_is_http_body => {
            return Some(json!({"description": "The raw body (google.api.HttpBody), with its content-type",
                "content": {"*/*": {"schema": {}}, "application/octet-stream": {"schema": {}}}}));
        }
        BodyRule::Whole => schemas.message(method.input, true),
        BodyRule::Field(path) => schemas.field(path.leaf()?, true),
    };
    let description = match &binding.body {
        BodyRule::Field(path) => format!("The request's field `{path}`"),
        _ => format!("The request, {}", method.input_name),
    };
    let content = if method.client_streaming {
        json!({
            "application/json": {"schema": {"type": "array", "items": item,
                "description": "The stream's messages, each sent on as soon as it is complete"}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One message per line"},
                "x-json2grpc-item-schema": item}
        })
    } else {
        json!({"application/json": {"schema": item}})
    };
    Some(json!({"description": description, "content": content}))
}
