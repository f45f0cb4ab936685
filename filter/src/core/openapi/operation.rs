//! One operation per binding: its id, documentation, parameters, request body and responses.
use serde_json::{Map, Value};

use super::json::{obj, put, set, string, text};

use super::path::OpenApiPath;
use super::query;
use super::responses;
use super::schemas::Schemas;
use crate::core::config::Config;
use crate::core::response::StreamFormat;
use crate::core::route::router::{BodyRule, HttpBinding};

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
    put(&mut op, "operationId", Value::String(id));
    put(&mut op, "tags", Value::Array(vec![string(method.service())]));
    if let Some(text) = schemas.docs.comment(&method.full_name) {
        let summary = text.lines().next().unwrap_or_default().trim_end_matches('.');
        put(&mut op, "summary", string(summary));
        put(&mut op, "description", string(text));
    }
    let mut parameters: Vec<Value> = path
        .params
        .iter()
        .map(|p| {
            let mut object = p.object.clone();
            put(&mut object, "name", string(&p.name));
            Value::Object(object)
        })
        .collect();
    parameters.extend(query::parameters(schemas, binding, &config.ignored_query_parameters));
    if !parameters.is_empty() {
        put(&mut op, "parameters", Value::Array(parameters));
    }
    if let Some(body) = request_body(schemas, binding) {
        put(&mut op, "requestBody", body);
    }
    let format = StreamFormat::from_print_options(&config.print_options);
    let head = &*binding.http_method == "HEAD";
    put(&mut op, "responses", responses::responses(schemas, binding, format, head, &config.rest));
    put(&mut op, "x-json2grpc-rpc", Value::String(method.path()));
    put(&mut op, "x-json2grpc-template", string(&binding.template));
    let streaming = match (method.client_streaming, method.server_streaming) {
        (true, true) => Some("bidirectional (needs HTTP/2 downstream)"),
        (true, false) => Some("client"),
        (false, true) => Some("server"),
        (false, false) => None,
    };
    if let Some(kind) = streaming {
        put(&mut op, "x-json2grpc-streaming", string(kind));
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
            return Some(text(
                r#"{"description": "The raw body (google.api.HttpBody), with its content-type",
                    "content": {"*/*": {"schema": {}}, "application/octet-stream": {"schema": {}}}}"#,
            ));
        }
        BodyRule::Whole => schemas.message(method.input, true),
        BodyRule::Field(path) => schemas.field(path.leaf()?, true),
    };
    let description = match &binding.body {
        BodyRule::Field(path) => format!("The request's field `{path}`"),
        _ => format!("The request, {}", schemas.schema.message_name(method.input)),
    };
    let content = if method.client_streaming {
        let mut array = text(
            r#"{"type": "array", "description": "The stream's messages, each sent on as soon as it is complete"}"#,
        );
        set(&mut array, "items", item.clone());
        let lines = obj(vec![
            ("schema", text(r#"{"type": "string", "description": "One message per line"}"#)),
            ("x-json2grpc-item-schema", item),
        ]);
        obj(vec![("application/json", obj(vec![("schema", array)])), ("application/x-ndjson", lines)])
    } else {
        obj(vec![("application/json", obj(vec![("schema", item)]))])
    };
    Some(obj(vec![("description", Value::String(description)), ("content", content)]))
}
