//! The whole document: one operation per binding under its OpenAPI path, the services as tags,
//! the component schemas, and what OpenAPI cannot express listed under
//! `x-json2grpc-unexpressed` (methods outside OpenAPI's fixed set, bindings that do not
//! transcode, paths OpenAPI cannot tell apart).
use std::collections::HashMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::docs::Docs;
use super::links;
use super::operation::operation;
use super::path;
use super::responses;
use super::schemas::{Schemas, Style};
use crate::core::router::PathVariable;
use crate::core::transcoder::Transcoder;

/// The methods of an OpenAPI path item.
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"];

/// The OpenAPI 3.1 document of what `t` serves.
pub fn generate(t: &Transcoder) -> Value {
    let config = &t.config;
    let docs = Docs::read(&config.proto_descriptor_bin);
    let style = Style {
        proto_names: config.print_options.preserve_proto_field_names,
        enums_as_ints: config.print_options.always_print_enums_as_ints,
    };
    let mut schemas = Schemas::new(&t.schema, &docs, style);
    let mut paths: Map<String, Value> = Map::new();
    // Shape (parameters as `{}`) → the path written for it and its parameter names.
    let mut shapes: HashMap<String, (String, Vec<String>)> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut unexpressed = Vec::new();
    let mut placed = Vec::new();
    for binding in &t.router.bindings {
        let skip = |why: &str| {
            json!({"method": binding.http_method, "template": binding.template,
                   "rpc": binding.method.path(), "reason": why})
        };
        if !METHODS.contains(&binding.http_method.as_str()) {
            unexpressed.push(skip(&format!("OpenAPI 3.1 has no {} operation", binding.http_method)));
            continue;
        }
        if let Some(v) = binding.variables.iter().find(|v| !matches!(v, PathVariable::Field(_))) {
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
        let item = paths.entry(key.clone()).or_insert_with(|| json!({}));
        let Some(item) = item.as_object_mut() else { continue };
        if item.contains_key(&method) {
            unexpressed.push(skip(&format!(
                "OpenAPI cannot tell it from the {} {} binding (the same path once parameters are named alike)",
                binding.http_method, key
            )));
            continue;
        }
        let count = ids.entry(binding.method.full_name.clone()).or_insert(0);
        *count += 1;
        let id = match *count {
            1 => binding.method.full_name.clone(),
            n => format!("{}_{n}", binding.method.full_name),
        };
        let op = operation(&mut schemas, config, binding, &path, id);
        item.insert(method.clone(), op);
        placed.push((key.clone(), method, binding.clone(), path));
    }
    links::add(&mut paths, &placed, &mut schemas);
    let error_responses = responses::components(&mut schemas);
    let tags: Vec<Value> = config
        .services
        .iter()
        .map(|s| match docs.comment(s) {
            Some(text) => json!({"name": s, "description": text}),
            None => json!({"name": s}),
        })
        .collect();
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": config.services.join(", "),
            "version": version(&config.proto_descriptor_bin),
            "description": "The JSON/REST API json2grpc serves for these gRPC services, made from the descriptors it \
                            loaded: the google.api.http bindings (and auto-mapped methods), proto3 JSON as json2grpc \
                            prints and parses it, and the errors it answers (google.rpc.Status). `info.version` is \
                            the start of the descriptor set's SHA-256."
        },
        "tags": tags,
        "paths": paths,
        "components": {"schemas": schemas.finish(), "responses": error_responses},
    });
    if let (false, Some(o)) = (unexpressed.is_empty(), doc.as_object_mut()) {
        o.insert("x-json2grpc-unexpressed".into(), Value::Array(unexpressed));
    }
    doc
}

/// The first 12 hex digits of the descriptor set's SHA-256: changes with the API.
fn version(set: &[u8]) -> String {
    Sha256::digest(set).iter().take(6).map(|b| format!("{b:02x}")).collect()
}
