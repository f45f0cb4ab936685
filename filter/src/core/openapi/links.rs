//! Links between operations, for clients and stateful testers: when an operation's response
//! has a top-level field named like the field each path variable of another operation of the
//! same service sets (`Order.order_id` → `GET /v1/orders/{order_id}`), the response links to
//! it with `$response.body#/<key>`.
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::json::{obj, put};

use super::path::{OpenApiPath, PathParam};
use super::schemas::Schemas;
use crate::core::route::field_index::FieldIndex;
use crate::core::route::field_path::Names;
use crate::core::route::router::HttpBinding;
use crate::core::schema::Kind;

/// Links per response, at most.
const MAX_LINKS: usize = 16;
/// Candidate operations looked at per response, at most.
const MAX_CANDIDATES: usize = 256;
/// Response fields and target parameters looked at, all operations together, at most: links
/// are hints, so past it the rest of the document has none (a descriptor set can make every
/// response a candidate for hundreds of operations with hundreds of parameters each).
const MAX_WORK: usize = 1 << 20;

/// Adds the links between the operations `placed` (path key, method, binding, path) in `paths`.
/// `budget`: the bytes the document may still grow by (`max_bytes` less what it holds); links
/// stop before they would pass it.
pub fn add(
    paths: &mut Map<String, Value>,
    placed: &[(String, String, Arc<HttpBinding>, OpenApiPath)],
    schemas: &Schemas<'_>,
    mut budget: usize,
) {
    let id = |paths: &Map<String, Value>, key: &str, method: &str| {
        paths.get(key).and_then(|i| i.get(method)).and_then(|o| o.get("operationId")).cloned()
    };
    // The operations by service and the field their first path parameter sets: a response
    // looks only at those its top-level fields can fill (not at every operation: quadratic).
    let mut targets: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (n, (_, _, to, to_path)) in placed.iter().enumerate() {
        let first = to_path.params.first().and_then(|p| p.sets.as_deref());
        if let Some(field) = first {
            let leaf = field.rsplit('.').next().unwrap_or(field);
            targets.entry((to.method.service(), leaf)).or_default().push(n);
        }
    }
    // Per service and response type, once: its candidates (thousands of operations may share
    // a response type of thousands of fields), and its fields by name.
    let mut gathered: HashMap<(&str, usize), Vec<usize>> = HashMap::new();
    let mut names = FieldIndex::default();
    let mut work = 0usize;
    'operations: for (key, method, from, _) in placed {
        let output = from.method.output;
        let printed_whole = from.response_body.is_none() && !from.method.server_streaming;
        let Some(message) = schemas.schema.message(output).filter(|_| printed_whole) else { continue };
        let service = from.method.service();
        if !gathered.contains_key(&(service, output)) {
            work = work.saturating_add(message.fields.len());
            if work > MAX_WORK {
                break;
            }
        }
        let candidates = gathered.entry((service, output)).or_insert_with(|| {
            let mut candidates: Vec<usize> =
                message.fields.iter().filter_map(|f| targets.get(&(service, f.name()))).flatten().copied().collect();
            candidates.sort_unstable();
            candidates.dedup();
            candidates.truncate(MAX_CANDIDATES);
            candidates
        });
        let mut links = Map::new();
        for (to_key, to_method, to, to_path) in candidates.iter().filter_map(|n| placed.get(*n)) {
            if links.len() >= MAX_LINKS {
                break;
            }
            if Arc::ptr_eq(from, to) {
                continue;
            }
            work = work.saturating_add(to_path.params.len());
            if work > MAX_WORK {
                break 'operations;
            }
            // Every parameter's field found first: nothing is written for a target that fails.
            let mut source = |p: &PathParam| {
                let leaf = p.sets.as_deref().map(|f| f.rsplit('.').next().unwrap_or(f))?;
                names
                    .find(output, message, leaf, Names::Proto)
                    .filter(|f| matches!(f.kind(), Kind::Scalar(_)) && !f.is_repeated())
            };
            if !to_path.params.iter().all(|p| source(p).is_some()) {
                continue;
            }
            let mut parameters = Map::new();
            let mut bytes = 0usize;
            for p in &to_path.params {
                if let Some(f) = source(p) {
                    let value = format!("$response.body#/{}", schemas.key(f));
                    bytes = bytes.saturating_add(p.name.len() + value.len() + 6);
                    put(&mut parameters, &p.name, Value::String(value));
                }
            }
            // The link's JSON, about: its key and operationId (the target's id), the parameters.
            let id_len = to_key.len().saturating_add(to.method.full_name.len());
            bytes = bytes.saturating_add(2 * id_len + 48);
            if bytes > budget {
                break 'operations;
            }
            budget -= bytes;
            if parameters.len() != to_path.params.len() {
                continue;
            }
            if let Some(Value::String(to_id)) = id(paths, to_key, to_method) {
                let link =
                    obj(vec![("operationId", Value::String(to_id.clone())), ("parameters", Value::Object(parameters))]);
                put(&mut links, &to_id.replace('.', "_"), link);
            }
        }
        if links.is_empty() {
            continue;
        }
        // The success with content (200, or the configured success status unless it is 204).
        let responses = paths.get_mut(key).and_then(|i| i.get_mut(method)).and_then(|o| o.get_mut("responses"));
        let ok = responses
            .and_then(Value::as_object_mut)
            .and_then(|r| r.iter_mut().find(|(code, r)| code.starts_with('2') && r.get("content").is_some()));
        if let Some((_, Value::Object(ok))) = ok {
            put(ok, "links", Value::Object(links));
        }
    }
}
