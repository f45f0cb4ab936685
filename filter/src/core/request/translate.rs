//! The request translator: from an HTTP request (method, path, query, body) to the gRPC
//! request message, per the matched binding.
//!
//! As in Envoy's transcoder (compared in `tests/e2e/test_fidelity.py`): path variables, then
//! query parameters, then the body. A singular field (or map key) the body sets keeps the
//! body's value (with `reject_binding_body_field_collisions` a differing URL value is a 400),
//! except a path variable of a rule without `body`; a list gets the body's values, then the
//! URL's. The message is the body's encoding followed by the URL values it does not set (see
//! [`bound`](crate::core::request::bound)): protobuf parsers merge concatenated encodings.
use std::sync::Arc;

use crate::core::codec::groups;
use crate::core::codec::json::ParseOptions;
use crate::core::codec::plan::{FieldPlan, Plans, ValueKind};
use crate::core::codec::wire::LEN;
use crate::core::codec::wire::{length_delimited, sub_message};
use crate::core::codec::wire::{write_tag, write_varint};
use crate::core::codec::Codec;
use crate::core::config::Config;
use crate::core::error::{Error, Result};
use crate::core::request::bound::{self, Bound, MapKey};
use crate::core::request::field_value::parse_value;
use crate::core::rest::patch_mask;
use crate::core::route::field_path::FieldPath;
use crate::core::route::percent::decode_query_component;
use crate::core::route::router::{bindable_message, url_settable, BodyRule, HttpBinding, PathVariable, HTTP_BODY};
use crate::core::schema::{Field, Kind, Message, Scalar, Schema};

/// Why a request is not transcoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    /// Already a gRPC request.
    Grpc,
    /// No binding matches the method and path.
    NoRoute,
    /// A query parameter names no field (Envoy's behaviour without
    /// `reject_unknown_query_parameters` / `ignore_unknown_query_parameters`).
    UnknownQueryParameter,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Decision {
    PassThrough(PassReason),
    Reject(Error),
    Transcode(RequestPlan),
}

/// A matched request: the binding and the values from the URL, parsed and checked.
#[derive(Debug)]
pub struct RequestPlan {
    pub binding: Arc<HttpBinding>,
    /// The URL's values: the path variables' first, then the query parameters'.
    bound: Vec<Bound>,
    /// How many of `bound` come from path variables.
    path_bound: usize,
    /// Query parameters captured for an HttpBody request (`capture_unknown_query_parameters`).
    unknown_query: Vec<(String, String)>,
}

impl RequestPlan {
    pub fn method(&self) -> &crate::core::route::router::MethodInfo {
        &self.binding.method
    }

    /// Whether a path variable or query parameter sets top-level field `number` (or inside it).
    pub fn url_sets_field(&self, number: u32) -> bool {
        self.bound.iter().any(|b| b.path.fields().first().is_some_and(|f| f.number == number))
    }

    #[cfg(test)]
    pub(crate) fn bound_for_tests(&self) -> &[Bound] {
        &self.bound
    }

    #[cfg(test)]
    pub(crate) fn path_bound_for_tests(&self) -> usize {
        self.path_bound
    }

    #[cfg(test)]
    pub(crate) fn unknown_query_for_tests(&self) -> &[(String, String)] {
        &self.unknown_query
    }
}

/// Matches the URL parts of a request against the binding's variables and the query string.
pub(crate) fn plan(
    config: &Config,
    schema: &Schema,
    plans: &Plans,
    binding: Arc<HttpBinding>,
    path_values: Vec<(usize, Vec<u8>)>,
    query: Option<&str>,
) -> Decision {
    let ci = config.case_insensitive_enum_parsing;
    let mut bound = Vec::with_capacity(path_values.len());
    for (index, bytes) in path_values {
        let path = match binding.variables.get(index) {
            Some(PathVariable::Field(path)) => path,
            Some(PathVariable::Unknown(name)) => match unknown_field(config, schema, &binding, "path variable", name) {
                Some(decision) => return decision,
                None => continue,
            },
            Some(PathVariable::Unsettable(path)) => {
                let why = url_settable(schema, path).err().unwrap_or_default();
                return Decision::Reject(Error::bad_request(format!(
                    "path variable \"{path}\" is {why}, which a URL value cannot set"
                )));
            }
            None => continue,
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Decision::Reject(Error::bad_request(format!("path variable \"{path}\" is not valid UTF-8")));
        };
        let Some(leaf) = path.leaf() else { continue };
        match parse_value(schema, plans, leaf.kind(), &text, ci) {
            Ok(value) => bound.push(Bound {
                value,
                kind: leaf.kind(),
                keep_default: leaf.presence(),
                map_key: None,
                path: path.clone(),
            }),
            Err(e) => return Decision::Reject(Error::bad_request(format!("path variable \"{path}\": {e}"))),
        }
    }
    let path_bound = bound.len();
    let mut unknown_query = Vec::new();
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Decision::Transcode(RequestPlan { binding, bound, path_bound, unknown_query });
    };
    // Counted up front, so the limit holds whatever the parameters are (an unknown one would
    // otherwise pass the request through before the count is reached).
    let max = usize::try_from(config.limits.max_query_parameters).unwrap_or(usize::MAX);
    if query.split('&').nth(max).is_some() {
        return Decision::Reject(Error::bad_request(format!("more than {max} query parameters")));
    }
    for pair in query.split('&') {
        // Envoy skips parameters without '=' and with an empty name.
        let Some((raw_name, raw_value)) = pair.split_once('=') else {
            continue;
        };
        if raw_name.is_empty() {
            continue;
        }
        let name = decode_query_component(raw_name, config.query_param_unescape_plus);
        let value = decode_query_component(raw_value, config.query_param_unescape_plus);
        let (Ok(name), Ok(value)) = (String::from_utf8(name), String::from_utf8(value)) else {
            return Decision::Reject(Error::bad_request(format!(
                "query parameter \"{raw_name}\" is not valid UTF-8 once percent-decoded"
            )));
        };
        if config.ignores_query_parameter(name.as_bytes()) {
            continue;
        }
        let Some((path, map_key_text)) = query_field(schema, plans, binding.method.input, raw_name, &name) else {
            if config.capture_unknown_query_parameters && binding.body_is_http_body {
                unknown_query.push((name, value));
                continue;
            }
            match unknown_field(config, schema, &binding, "query parameter", &name) {
                Some(decision) => return decision,
                None => continue,
            }
        };
        let target = match query_target(schema, &path, map_key_text.is_some()) {
            Ok(target) => target,
            // A field Envoy finds but cannot set from a string (a message, a map): 400.
            Err(why) => {
                return Decision::Reject(Error::bad_request(format!(
                    "query parameter \"{name}\" names {why}, which a URL value cannot set"
                )))
            }
        };
        // The path names the resource; a query parameter cannot re-target it (Envoy lets the
        // query's value win). A list takes both.
        if !path.in_list() && bound.iter().take(path_bound).any(|b| b.path == path) {
            continue;
        }
        let map_key = match (map_key_text, target.key) {
            (Some(text), Some((kind, presence))) => match parse_value(schema, plans, Kind::Scalar(kind), text, false) {
                Ok(value) => Some(MapKey { value, kind, keep_default: presence }),
                Err(e) => {
                    return Decision::Reject(Error::bad_request(format!("query parameter \"{name}\": map key: {e}")))
                }
            },
            _ => None,
        };
        match parse_value(schema, plans, target.kind, &value, ci) {
            Ok(value) => bound.push(Bound { value, kind: target.kind, keep_default: target.presence, map_key, path }),
            Err(e) => return Decision::Reject(Error::bad_request(format!("query parameter \"{name}\": {e}"))),
        }
    }
    Decision::Transcode(RequestPlan { binding, bound, path_bound, unknown_query })
}

/// A query parameter or path variable naming no field of the request: dropped with
/// `ignore_unknown_query_parameters` (`None`), else a 400 with
/// `reject_unknown_query_parameters`, else the request passes through untranscoded (Envoy's
/// default).
fn unknown_field(config: &Config, schema: &Schema, binding: &HttpBinding, what: &str, name: &str) -> Option<Decision> {
    if config.ignore_unknown_query_parameters {
        return None;
    }
    if config.request_validation_options.reject_unknown_query_parameters {
        return Some(Decision::Reject(Error::bad_request(format!(
            "{what} \"{name}\" does not name a field of {}",
            schema.message_name(binding.method.input)
        ))));
    }
    Some(Decision::PassThrough(PassReason::UnknownQueryParameter))
}

/// The field a query parameter names, and its map key: the name as sent, then percent-decoded
/// (Envoy's order: a field whose JSON name is `search%5Bx%5D` or `search[x]` is found before
/// any decoding or map syntax), then json2grpc's map syntax `field[key]` on the decoded name.
fn query_field<'s, 'n>(
    schema: &'s Schema,
    plans: &Plans,
    input: usize,
    raw_name: &str,
    name: &'n str,
) -> Option<(FieldPath, Option<&'n str>)> {
    // Names::ProtoOrJson, each found in a hash lookup: a query string holds up to
    // `max_query_parameters` names, a message up to 65,535 fields.
    let find = |index: usize, message: &'s Message, name: &str| -> Option<&'s Field> {
        let i = plans.message(index)?.field_by_url_name(name.as_bytes())?;
        message.fields.get(i)
    };
    let resolve = |n: &str| FieldPath::resolve_by(schema, input, n, true, find).ok();
    if let Some(path) = resolve(raw_name).or_else(|| if name == raw_name { None } else { resolve(name) }) {
        return Some((path, None));
    }
    let (field_name, key) = split_map_key(name);
    let key = key?;
    resolve(field_name).filter(|p| p.leaf().is_some_and(|f| f.map())).map(|p| (p, Some(key)))
}

/// `labels[key]` → (`labels`, `key`).
fn split_map_key(name: &str) -> (&str, Option<&str>) {
    if let Some(stripped) = name.strip_suffix(']') {
        if let Some((field, key)) = stripped.split_once('[') {
            return (field, Some(key));
        }
    }
    (name, None)
}

/// What a query parameter sets: a value of `kind` (a map's value kind), with or without
/// presence, and for a map the key's kind.
struct QueryTarget {
    kind: Kind,
    presence: bool,
    key: Option<(Scalar, bool)>,
}

/// Query parameters may set scalars, repeated scalars, map entries (`m[k]=v`) and the
/// well-known types with a string form; for anything else, what the field is.
fn query_target(schema: &Schema, path: &FieldPath, has_key: bool) -> Result<QueryTarget, String> {
    let leaf = path.leaf().ok_or("an empty field path")?;
    if !has_key {
        url_settable(schema, path)?;
        return Ok(QueryTarget { kind: leaf.kind(), presence: leaf.presence(), key: None });
    }
    // `query_field` gives a key only for a map.
    let entry = match leaf.kind() {
        Kind::Message(entry) => schema.message(entry),
        _ => None,
    };
    let (key, value) = entry.and_then(|e| Some((e.map_key()?, e.map_value()?))).ok_or("a malformed map field")?;
    let Kind::Scalar(scalar) = key.kind() else { return Err("a map field with a non-scalar key".to_string()) };
    if let Kind::Message(m) = value.kind() {
        if !bindable_message(schema.message_name(m)) {
            return Err(format!("a map field of {} messages", schema.message_name(m)));
        }
    }
    Ok(QueryTarget { kind: value.kind(), presence: value.presence(), key: Some((scalar, key.presence())) })
}

/// Builds the gRPC request message (protobuf bytes, unframed) from the plan and the body.
pub fn build_message(
    config: &Config,
    parse: &ParseOptions,
    codec: &Codec,
    plan: &RequestPlan,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Vec<u8>> {
    let binding = &plan.binding;
    let input = binding.method.input;
    // An empty body is no body; one of only whitespace is not JSON (Envoy: 400).
    if !binding.body_is_http_body && !body.is_empty() && body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request("invalid JSON body: only whitespace, no JSON value"));
    }
    // json2grpc.rest: unknown keys refused, a PATCH's field mask from the body's keys.
    let mask = crate::core::rest::body::check(&config.rest, codec, plan, body, parse.max_depth)?;
    let mut out = Vec::with_capacity(body.len() / 2 + 16);
    match &binding.body {
        BodyRule::Whole if binding.body_is_http_body => {
            http_body(codec, input, body, content_type, &plan.unknown_query, &mut out);
        }
        // Without `body`, Envoy still reads a sent body as the message.
        BodyRule::Whole | BodyRule::None => json_message(codec, input, body, parse, &mut out)?,
        BodyRule::Field(path) => body_field(codec, input, path, body, content_type, plan, parse, &mut out)?,
    }
    if let Some((number, paths)) = &mask {
        patch_mask::write(*number, paths, &mut out);
    }
    if plan.bound.is_empty() {
        return Ok(out);
    }
    // Decided for every binding before any is written: "set by the body" must not see the
    // URL's own values. As in Envoy, the body wins over a URL value for a singular field (or a
    // map key), and a URL value for a list field (or inside a repeated message field: a new
    // element) is appended after the body's. One exception: without `body` in the rule, a
    // path variable wins (Envoy lets a body the rule does not declare re-target the resource
    // the path names, e.g. DELETE /v1/orders/1 with {"orderId": "2"}).
    let collisions = config.request_validation_options.reject_binding_body_field_collisions;
    let found = if out.is_empty() {
        Vec::new()
    } else {
        // Read with its delimited sub-messages length-prefixed: a group is only skipped by
        // reading it, once per level of a binding's path otherwise.
        let body = groups::length_prefixed(codec.plans(), input, &out)
            .map_err(|e| Error::internal(format!("the request's own encoding: {}", e.message)))?;
        bound::in_body(&plan.bound, &body, collisions)
    };
    let path_wins = binding.body == BodyRule::None;
    let mut from_url = Vec::with_capacity(plan.bound.len());
    for (i, b) in plan.bound.iter().enumerate() {
        let in_body = found.get(i).copied().unwrap_or_default();
        if in_body.set && !b.path.in_list() {
            if collisions && !in_body.same {
                return Err(Error::bad_request(format!(
                    "field \"{}\" is set by both the URL and the body, with different values",
                    b.path
                )));
            }
            if !(path_wins && i < plan.path_bound) {
                continue;
            }
        }
        from_url.push(b);
    }
    bound::encode(&from_url, &mut out);
    Ok(out)
}

/// JSON → the message's encoding, through the fast codec.
fn json_message(codec: &Codec, index: usize, json: &[u8], parse: &ParseOptions, out: &mut Vec<u8>) -> Result<()> {
    codec.json_to_binary(index, json, parse, out)
}

/// `body: "field"`: the body is that field's JSON value (or raw HttpBody bytes), written
/// inside its parents. The parents are present even if the value is empty, and a field with
/// presence is present with its default value when the body has none (JSON `null`).
#[allow(clippy::too_many_arguments)]
fn body_field(
    codec: &Codec,
    input: usize,
    path: &FieldPath,
    body: &[u8],
    content_type: Option<&str>,
    plan: &RequestPlan,
    parse: &ParseOptions,
    out: &mut Vec<u8>,
) -> Result<()> {
    let leaf = path.leaf().ok_or_else(|| Error::internal("empty body field path"))?;
    let parent_type = match path.parents().last().map(|p| p.kind()) {
        Some(Kind::Message(m)) => m,
        _ => input,
    };
    let mut value = Vec::new();
    if plan.binding.body_is_http_body {
        let Kind::Message(http_body_type) = leaf.kind() else {
            return Err(Error::internal("HttpBody field is not a message"));
        };
        sub_message(leaf.number, leaf.delimited(), &mut value, |o| {
            http_body(codec, http_body_type, body, content_type, &plan.unknown_query, o)
        });
    } else if body.is_empty() {
        empty_body_field(leaf, &mut value)?;
    } else {
        // The body is the field's JSON value, and only that: encoded as the field itself, so a
        // body that closes the value and goes on (`{…}, "sibling": …`) is invalid JSON, not a
        // way to set the fields the path and query bind.
        codec.json_field_to_binary(parent_type, leaf.number, body, parse, &mut value)?;
        // A field with presence set to its default (`0` for an `optional int32`) is present;
        // `null` is the field's absence, as in Envoy.
        if leaf.presence() && value.is_empty() && body.trim_ascii() != b"null" {
            bound::write_default(leaf, first_enum_value(codec, leaf), &mut value);
        }
    }
    wrap(path.parents(), &value, out);
    Ok(())
}

/// An empty body for `body: "field"` is read as Envoy reads it, as `{}` given to the field: a
/// message field is present and empty (a repeated one gets one empty element), a map stays
/// empty, and any other field cannot take an object (400).
fn empty_body_field(leaf: &Field, out: &mut Vec<u8>) -> Result<()> {
    match leaf.kind() {
        Kind::Message(_) if leaf.map() => Ok(()),
        Kind::Message(_) => {
            bound::write_default(leaf, 0, out);
            Ok(())
        }
        _ => Err(Error::bad_request(format!(
            "an empty body cannot set field \"{}\": it is not a message field",
            leaf.name()
        ))),
    }
}

/// Writes `value` inside the (singular message) fields `parents`.
fn wrap(parents: &[Field], value: &[u8], out: &mut Vec<u8>) {
    match parents.split_first() {
        None => out.extend_from_slice(value),
        Some((first, rest)) => sub_message(first.number, first.delimited(), out, |o| wrap(rest, value, o)),
    }
}

/// The number of an enum field's first value (its default), 0 for other kinds.
pub(crate) fn first_enum_value(codec: &Codec, field: &Field) -> i32 {
    match field.kind() {
        Kind::Enum(e) => codec.plans().enumeration(e).and_then(|e| e.names.first()).map_or(0, |(_, n)| *n),
        _ => 0,
    }
}

/// A google.api.HttpBody's fields: the content-type (if any), the raw bytes, the captured
/// query parameters. Nothing for a type that is not google.api.HttpBody.
fn http_body(
    codec: &Codec,
    index: usize,
    body: &[u8],
    content_type: Option<&str>,
    unknown_query: &[(String, String)],
    out: &mut Vec<u8>,
) {
    let Some(message) = codec.plans().message(index).filter(|m| &*m.full_name == HTTP_BODY) else { return };
    let field = |name: &str| message.fields.iter().find(|f| &*f.proto_name == name);
    let scalar = |name: &str, kind| field(name).filter(|f| f.kind == ValueKind::Scalar(kind));
    if let (Some(f), Some(ct)) = (scalar("content_type", Scalar::String), content_type) {
        write_len(f, ct.as_bytes(), out);
    }
    if let Some(f) = scalar("data", Scalar::Bytes) {
        write_len(f, body, out);
    }
    if unknown_query.is_empty() {
        return;
    }
    let Some((f, any)) = field("extensions").and_then(|f| match f.kind {
        ValueKind::Message(any) => codec.plans().message(any).map(|any| (f, any)),
        _ => None,
    }) else {
        return;
    };
    let any_field = |name: &str| any.fields.iter().find(|f| &*f.proto_name == name);
    let (Some(type_url), Some(value)) = (any_field("type_url"), any_field("value")) else { return };
    sub_message(f.number, f.delimited, out, |o| {
        write_len(type_url, UNKNOWN_QUERY_PARAMS_TYPE_URL.as_bytes(), o);
        write_len(value, &unknown_query_params(unknown_query), o);
    });
}

/// A string or bytes field, left out when empty (proto3 fields without presence).
fn write_len(field: &FieldPlan, value: &[u8], out: &mut Vec<u8>) {
    if !value.is_empty() {
        write_tag(field.number, LEN, out);
        write_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }
}

const UNKNOWN_QUERY_PARAMS_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.UnknownQueryParams";

/// `envoy.extensions.filters.http.grpc_json_transcoder.v3.UnknownQueryParams` as the native
/// filter sends it: `map<string, Values> key = 1; message Values { repeated string values = 1; }`,
/// entries sorted by name.
fn unknown_query_params(params: &[(String, String)]) -> Vec<u8> {
    // Sorted by insertion (a sort routine would be a few KB of .wasm for a cold path).
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in params {
        if let Err(at) = names.binary_search(&name.as_str()) {
            names.insert(at, name);
        }
    }
    let mut out = Vec::new();
    for name in names {
        let mut values = Vec::new();
        for (_, v) in params.iter().filter(|(n, _)| n == name) {
            write_tag(1, LEN, &mut values);
            write_varint(v.len() as u64, &mut values);
            values.extend_from_slice(v.as_bytes());
        }
        length_delimited(1, &mut out, |entry| {
            if !name.is_empty() {
                write_tag(1, LEN, entry);
                write_varint(name.len() as u64, entry);
                entry.extend_from_slice(name.as_bytes());
            }
            write_tag(2, LEN, entry);
            write_varint(values.len() as u64, entry);
            entry.extend_from_slice(&values);
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;
    use prost_reflect::DynamicMessage;
    use serde_json::{json, Value as Json};

    use super::*;
    use crate::core::transcoder::Transcoder;
    use crate::testing::fixtures::{message as descriptor, things_transcoder as transcoder, TEST_DESCRIPTOR_SET};

    /// What the service would receive, as JSON with proto field names.
    fn call_with(
        t: &Transcoder,
        method: &str,
        path: &str,
        body: &str,
        content_type: Option<&str>,
    ) -> Result<(String, Json)> {
        let plan = match t.route(method, path, Some("application/json")) {
            Decision::Transcode(plan) => plan,
            Decision::Reject(e) => return Err(e),
            Decision::PassThrough(reason) => return Err(Error::internal(format!("pass-through: {reason:?}"))),
        };
        let bytes = t.request_message(&plan, body.as_bytes(), content_type)?;
        let message =
            DynamicMessage::decode(descriptor(t.schema.message_name(plan.method().input)), bytes.as_slice()).unwrap();
        let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
        let mut ser = serde_json::Serializer::new(Vec::new());
        message.serialize_with_options(&mut ser, &options).unwrap();
        Ok((plan.method().path(), serde_json::from_slice(&ser.into_inner()).unwrap()))
    }

    fn call(t: &Transcoder, method: &str, path: &str, body: &str) -> Result<(String, Json)> {
        call_with(t, method, path, body, None)
    }

    fn message(t: &Transcoder, method: &str, path: &str, body: &str) -> Json {
        call(t, method, path, body).unwrap().1
    }

    fn error(t: &Transcoder, method: &str, path: &str, body: &str) -> Error {
        call(t, method, path, body).unwrap_err()
    }

    fn decision(t: &Transcoder, method: &str, path: &str) -> Decision {
        t.route(method, path, Some("application/json"))
    }

    #[test]
    fn path_variables_fill_fields() {
        let t = transcoder("");
        let (grpc_path, m) = call(&t, "GET", "/v1/nested/a%20b/things/x%2Fy", "").unwrap();
        assert_eq!(grpc_path, "/test.v1.Things/Get");
        assert_eq!(m, json!({"id": "x/y", "nested": {"name": "a b"}}));
        assert_eq!(message(&t, "GET", "/v1/shelves/1/books/2", ""), json!({"name": "shelves/1/books/2"}));
        assert_eq!(message(&t, "GET", "/v2/files/a/b%2Fc", ""), json!({"rest": "a/b%2Fc"}));
    }

    #[test]
    fn query_parameters_fill_fields_of_every_kind() {
        let t = transcoder("");
        let m = message(
            &t,
            "GET",
            "/v1/query?id=q&scalars.f_int32=-5&scalars.fInt64=9007199254740993&scalars.f_uint64=18446744073709551615\
             &scalars.f_double=1.5&scalars.f_float=NaN&scalars.f_bool=true&scalars.f_bytes=-_8\
             &scalars.f_enum=GREEN&colors=RED&colors=2&tags=a&tags=b%20c&numbers=1&numbers=-2\
             &ts=2024-01-02T03:04:05Z&dur=1.5s&mask=a,bC&w_int32=7&wBool=false&labels[k]=v\
             &flags[true]=9&customName=r",
            "",
        );
        assert_eq!(m["id"], "q");
        assert_eq!(
            m["scalars"],
            json!({"f_int32": -5, "f_int64": "9007199254740993", "f_uint64": "18446744073709551615",
                   "f_double": 1.5, "f_float": "NaN", "f_bool": true, "f_bytes": "+/8=", "f_enum": "GREEN"})
        );
        assert_eq!(m["colors"], json!(["RED", "GREEN"]));
        assert_eq!(m["tags"], json!(["a", "b c"]));
        assert_eq!(m["numbers"], json!(["1", "-2"]));
        assert_eq!(m["ts"], "2024-01-02T03:04:05Z");
        assert_eq!(m["dur"], "1.500s");
        assert_eq!(m["mask"], "a,bC");
        assert_eq!(m["w_int32"], 7);
        assert_eq!(m["w_bool"], false);
        assert_eq!(m["labels"], json!({"k": "v"}));
        assert_eq!(m["flags"], json!({"true": "9"}));
        assert_eq!(m["renamed"], "r");
    }

    #[test]
    fn query_syntax_edge_cases() {
        let t = transcoder("");
        // No '=', empty name: skipped. Empty value: an empty string. Last singular value wins.
        assert_eq!(message(&t, "GET", "/v1/query?id&=x&tags=&id=1&id=2", ""), json!({"id": "2", "tags": [""]}));
        // '+' is a plus unless query_param_unescape_plus.
        assert_eq!(message(&t, "GET", "/v1/query?id=a+b", ""), json!({"id": "a+b"}));
        let t = transcoder(r#""query_param_unescape_plus": true"#);
        assert_eq!(message(&t, "GET", "/v1/query?id=a+b%2B", ""), json!({"id": "a b+"}));
        // Percent-decoded names as a fallback.
        assert_eq!(message(&t, "GET", "/v1/query?scalars%2Ef_int32=3", ""), json!({"scalars": {"f_int32": 3}}));
    }

    #[test]
    fn a_query_parameter_cannot_override_a_path_variable() {
        // Envoy lets the query's value win: a deliberate difference (the path names the
        // resource routes and authorization look at).
        let t = transcoder("");
        assert_eq!(message(&t, "GET", "/v1/things/a?id=b&page_size=3", ""), json!({"id": "a", "page_size": 3}));
    }

    #[test]
    fn a_custom_verb_is_not_split_off_after_a_trailing_slash() {
        // As Envoy: `/v1/things/7:reserve/` has no verb (the last segment is `7:reserve`);
        // `/v1/things/7/:reserve` is `/v1/things/7` with the verb.
        let t = transcoder("");
        let (grpc_path, m) = call(&t, "POST", "/v1/things/7:reserve/", "{}").unwrap();
        assert_eq!((grpc_path.as_str(), m), ("/test.v1.Things/CreateWithId", json!({"id": "7:reserve"})));
        assert!(matches!(decision(&t, "POST", "/v1/nested/7:reserve/"), Decision::PassThrough(PassReason::NoRoute)));
        assert_eq!(call(&t, "POST", "/v1/things/7/:reserve", "{}").unwrap().0, "/test.v1.Things/Reserve");
        assert_eq!(call(&t, "POST", "/v1/things/7:reserve", "{}").unwrap().0, "/test.v1.Things/Reserve");
        // Trailing slashes name the same resource.
        assert_eq!(message(&t, "GET", "/v1/things/7//?page_size=1", ""), json!({"id": "7", "page_size": 1}));
    }

    #[test]
    fn bad_url_values_are_400s_naming_the_parameter() {
        let t = transcoder("");
        let cases = [
            ("/v1/query?scalars.f_int32=x", "query parameter \"scalars.f_int32\""),
            ("/v1/query?scalars.f_int32=2147483648", "out of range"),
            ("/v1/query?scalars.f_uint32=-1", "f_uint32"),
            ("/v1/query?scalars.f_enum=PURPLE", "test.v1.Color"),
            ("/v1/query?scalars.f_bytes=%%%", "base64"),
            ("/v1/query?scalars.f_bool=1", "true or false"),
            ("/v1/query?ts=yesterday", "Timestamp"),
            ("/v1/query?dur=3", "Duration"),
            ("/v1/query?id=%FF", "UTF-8"),
            ("/v1/query?flags[maybe]=1", "map key"),
            ("/v1/things/%FF", "path variable \"id\" is not valid UTF-8"),
        ];
        for (path, text) in cases {
            let e = error(&t, "GET", path, "");
            assert_eq!(e.http_status, 400, "{path}");
            assert!(e.message.contains(text), "{path}: {e}");
        }
    }

    #[test]
    fn case_insensitive_enums_apply_to_the_query_too() {
        let t = transcoder(r#""case_insensitive_enum_parsing": true"#);
        assert_eq!(message(&t, "GET", "/v1/query?colors=blue_green", ""), json!({"colors": ["BLUE_GREEN"]}));
    }

    #[test]
    fn unknown_query_parameters_pass_through_unless_configured() {
        let t = transcoder("");
        assert!(matches!(
            decision(&t, "GET", "/v1/query?bogus=1"),
            Decision::PassThrough(PassReason::UnknownQueryParameter)
        ));
        // A key on a field that is no map: no field is named.
        assert!(matches!(decision(&t, "GET", "/v1/query?id[k]=x"), Decision::PassThrough(_)));
        assert!(matches!(decision(&t, "GET", "/v1/query?nested[k]=x"), Decision::PassThrough(_)));
        let t = transcoder(r#""ignored_query_parameters": ["api_key"]"#);
        assert_eq!(message(&t, "GET", "/v1/query?api_key=s&id=1", ""), json!({"id": "1"}));
        // In any order, repeated: the config keeps them sorted for its binary search.
        let t = transcoder(r#""ignored_query_parameters": ["zz", "api_key", "m", "zz", "a"]"#);
        let sent = "/v1/query?zz=1&api_key=s&m=2&a=3&id=1&b=4";
        assert!(matches!(decision(&t, "GET", sent), Decision::PassThrough(_)), "b names no field");
        assert_eq!(message(&t, "GET", "/v1/query?zz=1&api_key=s&m=2&a=3&id=1", ""), json!({"id": "1"}));
        let t = transcoder(r#""ignore_unknown_query_parameters": true"#);
        assert_eq!(message(&t, "GET", "/v1/query?bogus=1&id=1", ""), json!({"id": "1"}));
        let t = transcoder(r#""request_validation_options": {"reject_unknown_query_parameters": true}"#);
        let e = error(&t, "GET", "/v1/query?bogus=1", "");
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("\"bogus\"") && e.message.contains("test.v1.Everything"), "{e}");
    }

    #[test]
    fn query_parameters_naming_messages_or_maps_are_400s() {
        // Envoy finds the field, cannot set it from a string, and refuses the request.
        for path in ["/v1/query?nested=1", "/v1/query?labels=x", "/v1/query?items=x", "/v1/query?by_number[3]=x"] {
            for t in [transcoder(""), transcoder(r#""ignore_unknown_query_parameters": true"#)] {
                let e = error(&t, "GET", path, "");
                assert_eq!(e.http_status, 400, "{path}");
                assert!(e.message.contains("which a URL value cannot set"), "{path}: {e}");
            }
        }
    }

    /// A transcoder for the test.v1.Lenient service (bindings Envoy accepts though they cannot
    /// transcode every request) with extra config keys.
    fn lenient(extra: &str) -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
        let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Lenient"]{extra}}}"#);
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

    #[test]
    fn query_names_are_looked_up_as_sent_then_decoded_then_as_map_keys() {
        let t = lenient("");
        // json_name "search[decoded]": as sent, or percent-decoded.
        assert_eq!(message(&t, "GET", "/v1/names?search[decoded]=a", ""), json!({"search": "a"}));
        assert_eq!(message(&t, "GET", "/v1/names?search%5Bdecoded%5D=a", ""), json!({"search": "a"}));
        // json_name "search%5Bencoded%5D": as sent, or once decoded from a double encoding; its
        // decoded form names nothing.
        assert_eq!(message(&t, "GET", "/v1/names?search%5Bencoded%5D=b", ""), json!({"encoded": "b"}));
        assert_eq!(message(&t, "GET", "/v1/names?search%255Bencoded%255D=b", ""), json!({"encoded": "b"}));
        assert!(matches!(decision(&t, "GET", "/v1/names?search[encoded]=b"), Decision::PassThrough(_)));
        // A field's JSON name wins over the map syntax; other keys are map entries.
        assert_eq!(
            message(&t, "GET", "/v1/names?filter[raw]=r&filter[k]=v&filter%5Bj%5D=w", ""),
            json!({"filter_raw": "r", "filter": {"k": "v", "j": "w"}})
        );
    }

    #[test]
    fn unknown_path_variables_are_unknown_query_parameters() {
        // Envoy accepts `/v1/lenient/unknown/{nope}`: its requests pass through untranscoded,
        // are refused with reject_unknown_query_parameters, or drop the variable with
        // ignore_unknown_query_parameters.
        let t = lenient("");
        assert!(matches!(
            decision(&t, "GET", "/v1/lenient/unknown/1?id=2"),
            Decision::PassThrough(PassReason::UnknownQueryParameter)
        ));
        let t = lenient(r#","request_validation_options": {"reject_unknown_query_parameters": true}"#);
        let e = error(&t, "GET", "/v1/lenient/unknown/1", "");
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("path variable \"nope\""), "{e}");
        let t = lenient(r#","ignore_unknown_query_parameters": true"#);
        assert_eq!(message(&t, "GET", "/v1/lenient/unknown/1?id=2", ""), json!({"id": "2"}));
    }

    #[test]
    fn unsettable_path_variables_are_400s() {
        for extra in ["", r#","ignore_unknown_query_parameters": true"#] {
            let e = error(&lenient(extra), "GET", "/v1/lenient/message/x", "");
            assert_eq!(e.http_status, 400);
            assert!(e.message.contains("test.v1.Nested message field"), "{e}");
        }
    }

    #[test]
    fn a_rule_without_a_pattern_binds_only_its_additional_bindings() {
        let t = lenient("");
        assert_eq!(call(&t, "POST", "/v1/lenient/additional", r#"{"id": "a"}"#).unwrap().1, json!({"id": "a"}));
        assert!(matches!(decision(&t, "POST", "/test.v1.Lenient/NoPattern"), Decision::PassThrough(_)));
    }

    #[test]
    fn list_fields_take_url_values_after_the_bodys() {
        // Protobuf merge semantics, as Envoy: a list gets the body's values, then the path's,
        // then the query's; inside a repeated message field, the URL's values go into one new
        // element after the body's.
        let t = lenient("");
        let m = message(
            &t,
            "POST",
            "/v1/lenient/list/p/n?tags=q&tags=r&items.value=2&items.name=ignored-path-wins",
            r#"{"tags": ["b"], "items": [{"name": "b"}]}"#,
        );
        assert_eq!(m["tags"], json!(["b", "p", "q", "r"]));
        assert_eq!(m["items"], json!([{"name": "b"}, {"name": "ignored-path-wins", "value": 2}]));
        let t = transcoder("");
        assert_eq!(
            message(&t, "POST", "/v1/things/p?tags=q&numbers=2&colors=RED", r#"{"tags": ["b"], "numbers": ["1"]}"#),
            json!({"id": "p", "tags": ["b", "q"], "numbers": ["1", "2"], "colors": ["RED"]})
        );
        assert_eq!(message(&t, "POST", "/v1/tags?tags=q", r#"["a"]"#), json!({"tags": ["a", "q"]}));
        // Singular fields and map keys: the body wins.
        assert_eq!(
            message(
                &t,
                "POST",
                "/v1/things/p?nested.name=u&labels[k]=u&labels[j]=v",
                r#"{"nested": {"name": "b"}, "labels": {"k": "b"}}"#
            ),
            json!({"id": "p", "nested": {"name": "b"}, "labels": {"k": "b", "j": "v"}})
        );
        // Lists never collide.
        let t = transcoder(r#""request_validation_options": {"reject_binding_body_field_collisions": true}"#);
        assert_eq!(
            message(&t, "POST", "/v1/things/p?tags=q", r#"{"tags": ["b"]}"#),
            json!({"id": "p", "tags": ["b", "q"]})
        );
    }

    #[test]
    fn a_body_field_inside_a_list_is_a_new_element() {
        let t = lenient("");
        assert_eq!(
            message(&t, "POST", "/v1/lenient/body-in-list", r#"{"name": "c"}"#),
            json!({"items": [{"child": {"name": "c"}}]})
        );
    }

    #[test]
    fn without_a_body_rule_a_sent_body_is_read_and_wins_over_the_query() {
        // As Envoy: GET /v1/things/{id} (no `body`) reads a sent body as the message; the body
        // wins over the query for a singular field, lists append. The path variable wins
        // (Envoy: the body's): a body the rule does not declare cannot re-target the resource.
        let t = transcoder("");
        assert_eq!(
            message(&t, "GET", "/v1/things/1?page_size=2", r#"{"id": "7", "pageSize": 5, "nested": {"value": 1}}"#),
            json!({"id": "1", "page_size": 5, "nested": {"value": 1}})
        );
        assert_eq!(
            message(&t, "DELETE", "/v1/things/1?page_size=2", r#"{"id": "7", "pageSize": 5}"#),
            json!({"id": "1", "page_size": 5})
        );
        // With body "*" the body is declared, and wins (as in Envoy).
        assert_eq!(message(&t, "POST", "/v1/things/1", r#"{"id": "7"}"#), json!({"id": "7"}));
        assert_eq!(message(&t, "GET", "/v1/things/1?page_size=2", ""), json!({"id": "1", "page_size": 2}));
        let t = transcoder(r#""request_validation_options": {"reject_binding_body_field_collisions": true}"#);
        assert_eq!(error(&t, "GET", "/v1/things/1", r#"{"id": "7"}"#).http_status, 400);
        assert_eq!(message(&t, "GET", "/v1/things/1", r#"{"id": "1"}"#), json!({"id": "1"}));
    }

    #[test]
    fn a_body_of_only_whitespace_is_a_400_an_empty_one_is_no_body() {
        let t = transcoder("");
        for (method, path) in
            [("POST", "/v1/things"), ("GET", "/v1/things/1"), ("PATCH", "/v1/things/7"), ("POST", "/v1/tags")]
        {
            for body in [" ", "\n", " \r\n\t "] {
                let e = error(&t, method, path, body);
                assert_eq!(e.http_status, 400, "{method} {path} {body:?}");
                assert!(e.message.starts_with("invalid JSON body"), "{e}");
            }
        }
        assert_eq!(message(&t, "POST", "/v1/things", ""), json!({}));
        assert_eq!(message(&t, "GET", "/v1/things/1", ""), json!({"id": "1"}));
        // Raw HttpBody bytes are not JSON: whitespace is data.
        let m = call_with(&t, "POST", "/v1/raw", " ", Some("text/plain")).unwrap().1;
        assert_eq!(m, json!({"content_type": "text/plain", "data": "IA=="}));
    }

    #[test]
    fn an_empty_body_for_a_body_field_is_read_as_envoy_reads_it() {
        // Envoy gives `{}` to the field: a message field is present and empty (through its
        // parents), other fields cannot take it.
        let t = transcoder("");
        assert_eq!(message(&t, "PATCH", "/v1/things/7", ""), json!({"id": "7", "item": {}}));
        assert_eq!(message(&t, "PUT", "/v1/things/7/nested", ""), json!({"id": "7", "item": {"nested": {}}}));
        let e = error(&t, "POST", "/v1/tags", "");
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("empty body"), "{e}");
        assert_eq!(message(&lenient(""), "POST", "/v1/lenient/body-in-list", ""), json!({"items": [{"child": {}}]}));
    }

    #[test]
    fn url_enum_numbers_are_open_as_in_a_body() {
        // proto3 enums are open: an undeclared number reaches the service, from the URL as from
        // a JSON body (Envoy refuses it in the URL only: a deliberate difference).
        let t = transcoder("");
        assert_eq!(message(&t, "GET", "/v1/query?colors=2&colors=9", ""), json!({"colors": ["GREEN", 9]}));
        assert_eq!(message(&t, "POST", "/v1/things", r#"{"colors": [9]}"#), json!({"colors": [9]}));
    }

    #[test]
    fn field_paths_deeper_than_protobuf_allows_name_no_field() {
        let path = format!("/v1/query?nested{}.name=x", ".child".repeat(5000));
        assert!(matches!(decision(&transcoder(""), "GET", &path), Decision::PassThrough(_)));
        let t = transcoder(r#""request_validation_options": {"reject_unknown_query_parameters": true}"#);
        assert_eq!(error(&t, "GET", &path, "").http_status, 400);
        let ok = format!("/v1/query?nested{}.name=x", ".child".repeat(98));
        assert!(call(&t, "GET", &ok, "").is_ok());
    }

    #[test]
    fn too_many_query_parameters_are_refused() {
        let t = transcoder(r#""json2grpc": {"limits": {"max_query_parameters": 3}}"#);
        assert!(call(&t, "GET", "/v1/query?tags=1&tags=2&tags=3", "").is_ok());
        let e = error(&t, "GET", "/v1/query?tags=1&tags=2&tags=3&tags=4", "");
        assert!(e.message.contains("more than 3 query parameters"), "{e}");
        // Also when an unknown parameter (which passes a request through) comes first.
        let e = error(&t, "GET", "/v1/query?bogus=1&tags=2&tags=3&tags=4", "");
        assert!(e.message.contains("more than 3 query parameters"), "{e}");
        // 10,000 parameters under the default limit of 1,000.
        let path = format!("/v1/query?{}", vec!["tags=x"; 10_000].join("&"));
        assert_eq!(error(&transcoder(""), "GET", &path, "").http_status, 400);
    }

    #[test]
    fn body_star_is_the_message_and_wins_over_path_and_query() {
        let t = transcoder("");
        let (path, m) =
            call(&t, "POST", "/v1/things", r#"{"id": "b", "scalars": {"fInt32": 1}, "unknown": 1}"#).unwrap();
        assert_eq!(path, "/test.v1.Things/Create");
        assert_eq!(m, json!({"id": "b", "scalars": {"f_int32": 1}}));
        assert_eq!(message(&t, "POST", "/v1/things/p", r#"{"id": "b"}"#), json!({"id": "b"}));
        assert_eq!(message(&t, "POST", "/v1/things/p", r#"{"tags": ["x"]}"#), json!({"id": "p", "tags": ["x"]}));
        assert_eq!(message(&t, "POST", "/v1/things", ""), json!({}));
    }

    #[test]
    fn collisions_are_rejected_when_configured() {
        let t = transcoder(r#""request_validation_options": {"reject_binding_body_field_collisions": true}"#);
        let e = error(&t, "POST", "/v1/things/p", r#"{"id": "b"}"#);
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("\"id\""), "{e}");
        // The same value twice is not a collision; camelCase keys are compared too.
        assert_eq!(message(&t, "POST", "/v1/things/p", r#"{"id": "p"}"#), json!({"id": "p"}));
        let e = error(&t, "POST", "/v1/things/p?customName=q", r#"{"renamed": "b"}"#);
        assert!(e.message.contains("\"renamed\""), "{e}");
    }

    #[test]
    fn body_field_receives_the_json_value() {
        let t = transcoder("");
        let m = message(
            &t,
            "PATCH",
            "/v1/things/7?update_mask=id,scalars.fInt32",
            r#"{"id": "ignored-by-mask", "scalars": {"fInt32": 2}}"#,
        );
        assert_eq!(
            m,
            json!({"id": "7", "item": {"id": "ignored-by-mask", "scalars": {"f_int32": 2}}, "update_mask": "id,scalars.fInt32"})
        );
        let m = message(&t, "PUT", "/v1/things/7/nested", r#"{"name": "n", "child": {"value": 3}}"#);
        assert_eq!(m, json!({"id": "7", "item": {"nested": {"name": "n", "child": {"value": 3}}}}));
        // A repeated field as the body takes a JSON array.
        assert_eq!(message(&t, "POST", "/v1/tags", r#"["a", "b"]"#), json!({"tags": ["a", "b"]}));
        let e = error(&t, "POST", "/v1/tags", r#"{"a": 1}"#);
        assert_eq!(e.http_status, 400);
    }

    #[test]
    fn a_body_field_binding_takes_exactly_one_json_value() {
        let t = transcoder("");
        // Closing the field's value and going on must not reach the sibling `id` (the path's).
        for body in [
            r#"{"scalars": {"fInt32": 2}}, "id": "999""#,
            r#"{"scalars": {"fInt32": 2}}, "id": "999"}"#,
            r#"{"scalars": {"fInt32": 2}} {"id": "999"}"#,
            r#"null, "id": "999""#,
        ] {
            let e = error(&t, "PATCH", "/v1/things/7", body);
            assert_eq!(e.http_status, 400, "{body}");
            assert!(e.message.contains("trailing characters"), "{body}: {e}");
        }
        let e = error(&t, "POST", "/v1/tags", r#"["a"], "id": "x""#);
        assert_eq!(e.http_status, 400);
        // The same body without the tail binds the field, and the path's value stays.
        assert_eq!(
            message(&t, "PATCH", "/v1/things/7", r#" {"scalars": {"fInt32": 2}} "#),
            json!({"id": "7", "item": {"scalars": {"f_int32": 2}}})
        );
        // null is the field's absence (its parents are present), as in Envoy.
        assert_eq!(message(&t, "PATCH", "/v1/things/7", "null"), json!({"id": "7"}));
        assert_eq!(message(&t, "PUT", "/v1/things/7/nested", "null"), json!({"id": "7", "item": {}}));
    }

    #[test]
    fn bad_bodies_are_400s() {
        let t = transcoder("");
        for body in [r#"{"id": }"#, r#"{"id": "a"} trailing"#, r#"{"scalars": {"fInt32": "x"}}"#, "[1]", "\u{1}", "nul"]
        {
            let e = error(&t, "POST", "/v1/things", body);
            assert_eq!(e.http_status, 400, "{body}");
            assert!(e.message.starts_with("invalid JSON body"), "{body}: {e}");
        }
        let deep = format!(r#"{{"val": {}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(error(&t, "POST", "/v1/things", &deep).message.contains("nested deeper"));
        let Decision::Transcode(plan) = decision(&t, "POST", "/v1/things") else { panic!() };
        let e = t.request_message(&plan, b"{\"id\": \"\xff\"}", None).unwrap_err();
        assert_eq!(e.http_status, 400);
    }

    #[test]
    fn http_body_requests_carry_raw_bytes_and_content_type() {
        let t = transcoder("");
        let m = call_with(&t, "POST", "/v1/raw", "a,b\n1,2", Some("text/csv")).unwrap().1;
        assert_eq!(m, json!({"content_type": "text/csv", "data": "YSxiCjEsMg=="}));
        let m = call_with(&t, "POST", "/v1/upload/9", "not json {", Some("application/octet-stream")).unwrap().1;
        assert_eq!(
            m,
            json!({"id": "9", "file": {"content_type": "application/octet-stream", "data": "bm90IGpzb24gew=="}})
        );
    }

    #[test]
    fn unknown_query_parameters_are_captured_for_http_body() {
        let t = transcoder(r#""capture_unknown_query_parameters": true"#);
        let plan = match t.route("POST", "/v1/upload/9?x=1&x=2&y=z", None) {
            Decision::Transcode(p) => p,
            other => panic!("{other:?}"),
        };
        let bytes = t.request_message(&plan, b"raw", Some("text/plain")).unwrap();
        let m =
            DynamicMessage::decode(descriptor(t.schema.message_name(plan.method().input)), bytes.as_slice()).unwrap();
        let file = m.get_field_by_name("file").unwrap();
        let ext = file.as_message().unwrap().get_field_by_name("extensions").unwrap();
        let any = ext.as_list().unwrap()[0].as_message().unwrap().clone();
        assert_eq!(
            any.get_field_by_name("type_url").unwrap().as_str(),
            Some("type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.UnknownQueryParams")
        );
        // map<string, Values{repeated string values = 1}> key = 1, sorted by key.
        let value = any.get_field_by_name("value").unwrap().as_bytes().unwrap().to_vec();
        let expected = [
            &[0x0a, 0x0b, 0x0a, 0x01, b'x', 0x12, 0x06, 0x0a, 0x01, b'1', 0x0a, 0x01, b'2'][..],
            &[0x0a, 0x08, 0x0a, 0x01, b'y', 0x12, 0x03, 0x0a, 0x01, b'z'][..],
        ]
        .concat();
        assert_eq!(value, expected);
    }

    #[test]
    fn routing_decisions() {
        let t = transcoder("");
        assert!(matches!(
            t.route("POST", "/test.v1.Things/Create", Some("application/grpc")),
            Decision::PassThrough(PassReason::Grpc)
        ));
        assert!(matches!(
            t.route("POST", "/v1/things", Some("application/grpc+proto")),
            Decision::PassThrough(PassReason::Grpc)
        ));
        assert!(matches!(decision(&t, "GET", "/nothing/here"), Decision::PassThrough(PassReason::NoRoute)));
        let t = transcoder(r#""request_validation_options": {"reject_unknown_method": true}"#);
        match decision(&t, "GET", "/nothing/here?x=1") {
            Decision::Reject(e) => {
                assert_eq!(e.http_status, 404);
                assert!(e.message.contains("GET /nothing/here"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plan_exposes_the_grpc_method() {
        let t = transcoder("");
        let Decision::Transcode(plan) = decision(&t, "GET", "/v1/stream/1") else { panic!() };
        assert!(plan.method().server_streaming);
        assert_eq!(plan.method().path(), "/test.v1.Things/ServerStream");
    }
}
