//! The whole document: one operation per binding under its OpenAPI path, the services as tags,
//! the component schemas, and what OpenAPI cannot express listed under
//! `x-json2grpc-unexpressed` (methods outside OpenAPI's fixed set, bindings that do not
//! transcode, paths OpenAPI cannot tell apart).
use std::collections::HashMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::docs::Docs;
use super::json::{obj, put, string};
use super::links;
use super::operation::operation;
use super::path;
use super::responses;
use super::schemas::{Schemas, Style};
use crate::core::route::router::PathVariable;
use crate::core::transcoder::Transcoder;

/// The methods of an OpenAPI path item.
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"];

const DESCRIPTION: &str = "The JSON/REST API json2grpc serves for these gRPC services, made from the \
    descriptors it loaded: the google.api.http bindings (and auto-mapped methods), proto3 JSON as json2grpc \
    prints and parses it, and the errors it answers (google.rpc.Status). `info.version` is the start of the \
    descriptor set's SHA-256.";

/// The OpenAPI 3.1 document of what `t` serves.
pub fn generate(t: &Transcoder) -> Value {
    generate_within(t, usize::MAX).unwrap_or(Value::Null)
}

/// The document, or `Err(size so far)` as soon as its operations' JSON passes `max_bytes`:
/// the bound applies while it is built, not after (thousands of bindings with wide requests
/// make a document of tens of MB, and its tree takes several times that).
pub fn generate_within(t: &Transcoder, max_bytes: usize) -> Result<Value, usize> {
    let config = &t.config;
    let docs = Docs::read(&config.proto_descriptor_bin);
    let style = Style {
        proto_names: config.print_options.preserve_proto_field_names,
        enums_as_ints: config.print_options.always_print_enums_as_ints,
        closed: config.rest.reject_unknown_fields,
    };
    let mut schemas = Schemas::new(&t.schema, &docs, style);
    let mut paths: Map<String, Value> = Map::new();
    // Shape (parameters as `{}`) → the path written for it and its parameter names.
    let mut shapes: HashMap<String, (String, Vec<String>)> = HashMap::new();
    // Bindings come method by method: the count of the current method's.
    let mut ids: (Option<&str>, usize) = (None, 0);
    let mut unexpressed = Vec::new();
    let mut placed = Vec::new();
    // The operations' JSON so far, in bytes; with the query walk's work.
    let mut size = 0usize;
    let mut counted = 0usize;
    for binding in &t.router.bindings {
        let skip = |why: &str| {
            obj(vec![
                ("method", string(&binding.http_method)),
                ("template", string(&binding.template)),
                ("rpc", Value::String(binding.method.path())),
                ("reason", string(why)),
            ])
        };
        if !METHODS.contains(&&*binding.http_method) {
            unexpressed.push(skip(&format!("OpenAPI 3.1 has no {} operation", binding.http_method)));
            continue;
        }
        // A variable naming no field is dropped with ignore_unknown_query_parameters (its
        // requests transcode); otherwise, like one naming a message, no request transcodes.
        let ignored =
            |v: &PathVariable| matches!(v, PathVariable::Unknown(_)) && config.ignore_unknown_query_parameters;
        if let Some(v) = binding.variables.iter().find(|v| !matches!(v, PathVariable::Field(_)) && !ignored(v)) {
            unexpressed.push(skip(&format!(
                "path variable \"{v}\" cannot be set from the URL: requests are not transcoded (see the filter's warnings)"
            )));
            continue;
        }
        let mut path = match path::describe(&binding.template, &binding.variables, &mut schemas) {
            Ok(path) => path,
            Err(e) => {
                unexpressed.push(skip(&e));
                continue;
            }
        };
        let (key, names) = shapes
            .entry(path.shape())
            .or_insert_with(|| (path.path.clone(), path.params.iter().map(|p| p.name.clone()).collect()));
        path.rename(names);
        let method = binding.http_method.to_ascii_lowercase();
        let item = paths.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
        let Some(item) = item.as_object_mut() else { continue };
        if item.contains_key(&method) {
            unexpressed.push(skip(&format!(
                "OpenAPI cannot tell it from the {} {} binding (the same path once parameters are named alike)",
                binding.http_method, key
            )));
            continue;
        }
        let name = &*binding.method.full_name;
        ids = if ids.0 == Some(name) { (ids.0, ids.1 + 1) } else { (Some(name), 1) };
        let id = match ids.1 {
            1 => name.to_string(),
            n => format!("{name}_{n}"),
        };
        let op = operation(&mut schemas, config, binding, &path, id);
        size = size.saturating_add(json_size(&op)).saturating_add(key.len());
        // The query walk's work that wrote nothing counts too: thousands of operations may
        // each look at thousands of fields that yield no parameter.
        counted = size.saturating_add(schemas.query_unused);
        if counted > max_bytes {
            return Err(counted);
        }
        put(item, &method, op);
        placed.push((key.clone(), method, binding.clone(), path));
    }
    links::add(&mut paths, &placed, &schemas, max_bytes.saturating_sub(counted));
    let error_responses = responses::components(&mut schemas);
    let tags: Vec<Value> = config
        .services
        .iter()
        .map(|s| match docs.comment(s) {
            Some(text) => obj(vec![("name", string(s)), ("description", string(text))]),
            None => obj(vec![("name", string(s))]),
        })
        .collect();
    let info = obj(vec![
        ("title", Value::String(config.services.join(", "))),
        ("version", Value::String(version(&config.proto_descriptor_bin))),
        ("description", Value::String(format!("{DESCRIPTION} {}", unknown_query_parameters(config)))),
    ]);
    let components = obj(vec![("schemas", Value::Object(schemas.finish())), ("responses", error_responses)]);
    let mut doc = Map::new();
    put(&mut doc, "openapi", string("3.1.0"));
    put(&mut doc, "info", info);
    put(&mut doc, "tags", Value::Array(tags));
    put(&mut doc, "paths", Value::Object(paths));
    put(&mut doc, "components", components);
    if !unexpressed.is_empty() {
        put(&mut doc, "x-json2grpc-unexpressed", Value::Array(unexpressed));
    }
    Ok(Value::Object(doc))
}

/// The size of `value` as compact JSON, without writing it.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// What a query parameter naming no field does under this configuration (not expressible per
/// operation).
fn unknown_query_parameters(config: &crate::core::config::Config) -> &'static str {
    if config.ignore_unknown_query_parameters {
        "A query parameter naming no field is ignored (ignore_unknown_query_parameters)."
    } else if config.request_validation_options.reject_unknown_query_parameters {
        "A query parameter naming no field is a 400 (reject_unknown_query_parameters)."
    } else {
        "A query parameter naming no field passes the request through untranscoded, as Envoy's transcoder \
         does (set ignore_unknown_query_parameters or reject_unknown_query_parameters to change it)."
    }
}

/// The first 12 hex digits of the descriptor set's SHA-256: changes with the API.
fn version(set: &[u8]) -> String {
    Sha256::digest(set).iter().take(6).map(|b| format!("{b:02x}")).collect()
}
