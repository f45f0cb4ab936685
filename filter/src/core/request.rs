//! The request translator: from an HTTP request (method, path, query, body) to the gRPC
//! request message, per the matched binding.
//!
//! Order of precedence: path variables, then query parameters, then the body. A field the
//! body sets wins over a path/query value for it (or, with
//! `reject_binding_body_field_collisions`, a differing value is a 400). Every singular field is
//! written once, so the service never sees a field twice.
use std::sync::Arc;

use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage, Value};

use super::config::Config;
use super::error::{Error, Result};
use super::fast::Codec;
use super::field_path::{FieldPath, Names};
use super::field_value::parse_value;
use super::json::ParseOptions;
use super::percent::decode_query_component;
use super::router::{bindable_message, BodyRule, HttpBinding, HTTP_BODY};

/// A value bound from the URL.
#[derive(Debug, Clone)]
struct Bound {
    path: FieldPath,
    map_key: Option<MapKey>,
    value: Value,
}

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
    bound: Vec<Bound>,
    /// Query parameters captured for an HttpBody request (`capture_unknown_query_parameters`).
    unknown_query: Vec<(String, String)>,
}

impl RequestPlan {
    pub fn method(&self) -> &super::router::MethodInfo {
        &self.binding.method
    }
}

/// Matches the URL parts of a request against the binding's variables and the query string.
pub(crate) fn plan(
    config: &Config,
    binding: Arc<HttpBinding>,
    path_values: Vec<(usize, Vec<u8>)>,
    query: Option<&str>,
) -> Decision {
    let mut bound = Vec::with_capacity(path_values.len());
    for (index, bytes) in path_values {
        let Some(path) = binding.variables.get(index) else {
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Decision::Reject(Error::bad_request(format!("path variable \"{path}\" is not valid UTF-8")));
        };
        let Some(leaf) = path.leaf() else { continue };
        match parse_value(&leaf.kind(), &text, config.case_insensitive_enum_parsing) {
            Ok(value) => bound.push(Bound { path: path.clone(), map_key: None, value }),
            Err(e) => return Decision::Reject(Error::bad_request(format!("path variable \"{path}\": {e}"))),
        }
    }
    let path_bound = bound.len();
    let mut unknown_query = Vec::new();
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Decision::Transcode(RequestPlan { binding, bound, unknown_query });
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
        if config.ignored_query_parameters.contains(&name) {
            continue;
        }
        let (field_name, map_key_text) = split_map_key(&name);
        let path = match FieldPath::resolve(&binding.method.input, field_name, Names::ProtoOrJson) {
            Ok(path) if settable_from_query(&path, map_key_text.is_some()) => path,
            _ => {
                if config.capture_unknown_query_parameters && binding.body_is_http_body {
                    unknown_query.push((name, value));
                    continue;
                }
                if config.ignore_unknown_query_parameters {
                    continue;
                }
                if config.request_validation_options.reject_unknown_query_parameters {
                    return Decision::Reject(Error::bad_request(format!(
                        "query parameter \"{name}\" does not name a field of {}",
                        binding.method.input.full_name()
                    )));
                }
                return Decision::PassThrough(PassReason::UnknownQueryParameter);
            }
        };
        // The path names the resource; a query parameter cannot re-target it.
        if bound.iter().take(path_bound).any(|b| b.path == path) {
            continue;
        }
        let Some(leaf) = path.leaf() else { continue };
        let map_key = match (map_key_text, leaf.is_map()) {
            (Some(key), true) => match map_key(leaf, key) {
                Ok(k) => Some(k),
                Err(e) => return Decision::Reject(Error::bad_request(format!("query parameter \"{name}\": {e}"))),
            },
            _ => None,
        };
        let kind = value_kind(leaf);
        match parse_value(&kind, &value, config.case_insensitive_enum_parsing) {
            Ok(value) => bound.push(Bound { path, map_key, value }),
            Err(e) => return Decision::Reject(Error::bad_request(format!("query parameter \"{name}\": {e}"))),
        }
    }
    Decision::Transcode(RequestPlan { binding, bound, unknown_query })
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

/// Query parameters may set scalars, repeated scalars, map entries (`m[k]=v`) and the
/// well-known types with a string form.
fn settable_from_query(path: &FieldPath, has_key: bool) -> bool {
    let Some(leaf) = path.leaf() else {
        return false;
    };
    if leaf.is_map() != has_key {
        return false;
    }
    match value_kind(leaf) {
        Kind::Message(m) => bindable_message(m.full_name()),
        _ => true,
    }
}

/// The kind of one value: a map's value kind, else the field's.
fn value_kind(field: &prost_reflect::FieldDescriptor) -> Kind {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
        other => other,
    }
}

fn map_key(field: &prost_reflect::FieldDescriptor, text: &str) -> Result<MapKey, String> {
    let Kind::Message(entry) = field.kind() else {
        return Err("not a map".into());
    };
    let key_kind = entry.map_entry_key_field().kind();
    let value = parse_value(&key_kind, text, false).map_err(|e| format!("map key: {e}"))?;
    match value {
        Value::Bool(b) => Ok(MapKey::Bool(b)),
        Value::I32(v) => Ok(MapKey::I32(v)),
        Value::I64(v) => Ok(MapKey::I64(v)),
        Value::U32(v) => Ok(MapKey::U32(v)),
        Value::U64(v) => Ok(MapKey::U64(v)),
        Value::String(v) => Ok(MapKey::String(v)),
        _ => Err("unsupported map key type".into()),
    }
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
    if let Some(bytes) = fast_message(config, parse, codec, plan, body)? {
        return Ok(bytes);
    }
    let input = &plan.binding.method.input;
    let mut message = DynamicMessage::new(input.clone());
    match &plan.binding.body {
        BodyRule::Whole if plan.binding.body_is_http_body => {
            fill_http_body(&mut message, body, content_type, &plan.unknown_query);
        }
        // Without `body`, Envoy still reads a sent body as the message.
        BodyRule::Whole | BodyRule::None => message = decode_json(codec, input, body, parse)?,
        BodyRule::Field(path) => set_body_field(codec, &mut message, path, body, content_type, plan, parse)?,
    }
    let collisions = config.request_validation_options.reject_binding_body_field_collisions;
    // Decide for every binding before applying any: "set by the body" must not see values
    // the URL itself just wrote (repeated query parameters append).
    // Without a `body` rule a stray body cannot re-target the URL's resource: the URL wins
    // (as Envoy does). With one, the body wins.
    let body_wins = plan.binding.body != BodyRule::None;
    let body_has: Vec<bool> = plan.bound.iter().map(|b| body_wins && body_sets(&message, b)).collect();
    for (bound, body_has) in plan.bound.iter().zip(body_has) {
        if body_has {
            if collisions && !same_value(&message, bound) {
                return Err(Error::bad_request(format!(
                    "field \"{}\" is set by both the URL and the body, with different values",
                    bound.path
                )));
            }
            continue;
        }
        bound
            .path
            .set(&mut message, bound.value.clone(), bound.map_key.clone())
            .map_err(|e| Error::bad_request(format!("field \"{}\": {e}", bound.path)))?;
    }
    Ok(message.encode_to_vec())
}

/// JSON → a message tree, through the fast codec (for the cases that edit the message).
fn decode_json(codec: &Codec, desc: &MessageDescriptor, json: &[u8], parse: &ParseOptions) -> Result<DynamicMessage> {
    let index = codec.index(desc).ok_or_else(|| {
        Error::bad_request(format!("{} uses proto2 groups, which json2grpc does not transcode", desc.full_name()))
    })?;
    let mut bytes = Vec::with_capacity(json.len() / 2 + 16);
    codec.json_to_binary(index, json, parse, &mut bytes)?;
    DynamicMessage::decode(desc.clone(), bytes.as_slice())
        .map_err(|e| Error::internal(format!("the transcoded request does not decode: {e}")))
}

/// The fast path: the body goes straight from JSON to wire format, and URL values the body
/// did not set are appended (concatenated protobuf messages merge). Cases it does not cover
/// (HttpBody, a body field, map keys from the query, collision checks) return `None`.
fn fast_message(
    config: &Config,
    parse: &ParseOptions,
    codec: &Codec,
    plan: &RequestPlan,
    body: &[u8],
) -> Result<Option<Vec<u8>>> {
    let binding = &plan.binding;
    if binding.body_is_http_body
        || !matches!(binding.body, BodyRule::Whole | BodyRule::None)
        || config.request_validation_options.reject_binding_body_field_collisions
        || plan.bound.iter().any(|b| b.map_key.is_some())
    {
        return Ok(None);
    }
    let input = &binding.method.input;
    let Some(index) = codec.index(input) else { return Ok(None) };
    let mut out = Vec::with_capacity(body.len() / 2 + 16);
    codec.json_to_binary(index, body, parse, &mut out)?;
    if plan.bound.is_empty() {
        return Ok(Some(out));
    }
    let body_wins = binding.body != BodyRule::None;
    let mut url = DynamicMessage::new(input.clone());
    for bound in &plan.bound {
        if body_wins && wire_has_path(&out, bound.path.fields()) {
            continue;
        }
        bound
            .path
            .set(&mut url, bound.value.clone(), None)
            .map_err(|e| Error::bad_request(format!("field \"{}\": {e}", bound.path)))?;
    }
    url.encode(&mut out).map_err(|e| Error::internal(format!("encoding URL values: {e}")))?;
    Ok(Some(out))
}

/// Whether encoded `bytes` set the field at `path` (a nested path descends into every
/// occurrence of each parent, as merging would).
fn wire_has_path(bytes: &[u8], path: &[prost_reflect::FieldDescriptor]) -> bool {
    let Some((first, rest)) = path.split_first() else { return false };
    crate::core::wire::fields(bytes).any(|f| match f {
        Ok(f) if f.number == first.number() => rest.is_empty() || wire_has_path(f.value, rest),
        _ => false,
    })
}

fn body_sets(message: &DynamicMessage, bound: &Bound) -> bool {
    match (&bound.map_key, bound.path.parent(message), bound.path.leaf()) {
        (Some(key), Some(parent), Some(leaf)) => {
            parent.get_field(leaf).as_map().is_some_and(|map| map.contains_key(key))
        }
        _ => bound.path.is_set(message),
    }
}

fn same_value(message: &DynamicMessage, bound: &Bound) -> bool {
    let (Some(parent), Some(leaf)) = (bound.path.parent(message), bound.path.leaf()) else {
        return false;
    };
    let current = parent.get_field(leaf);
    match (&bound.map_key, current.as_ref()) {
        (Some(key), Value::Map(map)) => map.get(key) == Some(&bound.value),
        (None, Value::List(items)) => items.contains(&bound.value),
        (None, value) => *value == bound.value,
        _ => false,
    }
}

/// `body: "field"`: the body is that field's JSON value (or raw HttpBody bytes).
fn set_body_field(
    codec: &Codec,
    message: &mut DynamicMessage,
    path: &FieldPath,
    body: &[u8],
    content_type: Option<&str>,
    plan: &RequestPlan,
    parse: &ParseOptions,
) -> Result<()> {
    let leaf = path.leaf().ok_or_else(|| Error::internal("empty body field path"))?;
    if plan.binding.body_is_http_body {
        let Kind::Message(http_body) = leaf.kind() else {
            return Err(Error::internal("HttpBody field is not a message"));
        };
        let mut value = DynamicMessage::new(http_body);
        fill_http_body(&mut value, body, content_type, &plan.unknown_query);
        return path
            .set(message, Value::Message(value), None)
            .map_err(|e| Error::internal(format!("body field \"{path}\": {e}")));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    // Parse `{"<field>": <body>}` as the parent type: the field's JSON mapping (repeated,
    // map, well-known types) comes for free and errors name the field.
    let parent_type = leaf.parent_message().clone();
    let mut wrapped = Vec::with_capacity(body.len() + leaf.name().len() + 8);
    wrapped.extend_from_slice(b"{\"");
    wrapped.extend_from_slice(leaf.name().as_bytes());
    wrapped.extend_from_slice(b"\":");
    wrapped.extend_from_slice(body);
    wrapped.extend_from_slice(b"\n}");
    let parsed = decode_json(codec, &parent_type, &wrapped, &nested_depth(parse))?;
    let value = parsed.get_field(leaf).into_owned();
    let parent = path.parent_mut(message).ok_or_else(|| Error::internal("body field parent"))?;
    parent.set_field(leaf, value);
    Ok(())
}

/// The wrapper object adds one level of nesting that the client did not send.
fn nested_depth(parse: &ParseOptions) -> ParseOptions {
    ParseOptions { max_depth: parse.max_depth.saturating_add(1), ..parse.clone() }
}

/// Fills a google.api.HttpBody: raw bytes, the request content-type, captured query parameters.
fn fill_http_body(
    message: &mut DynamicMessage,
    body: &[u8],
    content_type: Option<&str>,
    unknown_query: &[(String, String)],
) {
    if message.descriptor().full_name() != HTTP_BODY {
        return;
    }
    if let Some(ct) = content_type {
        message.set_field_by_name("content_type", Value::String(ct.to_string()));
    }
    message.set_field_by_name("data", Value::Bytes(body.to_vec().into()));
    if !unknown_query.is_empty() {
        let any = unknown_query_params_any(&message.descriptor(), unknown_query);
        if let Some(any) = any {
            message.set_field_by_name("extensions", Value::List(vec![Value::Message(any)]));
        }
    }
}

/// `envoy.extensions.filters.http.grpc_json_transcoder.v3.UnknownQueryParams` as the native
/// filter sends it: `map<string, Values> key = 1; message Values { repeated string values = 1; }`.
fn unknown_query_params_any(http_body: &MessageDescriptor, params: &[(String, String)]) -> Option<DynamicMessage> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Values {
        #[prost(string, repeated, tag = "1")]
        values: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct UnknownQueryParams {
        #[prost(btree_map = "string, message", tag = "1")]
        key: std::collections::BTreeMap<String, Values>,
    }
    let mut captured = UnknownQueryParams::default();
    for (name, value) in params {
        captured.key.entry(name.clone()).or_default().values.push(value.clone());
    }
    let any_type = http_body.get_field_by_name("extensions")?.kind();
    let Kind::Message(any_type) = any_type else {
        return None;
    };
    let mut any = DynamicMessage::new(any_type);
    any.set_field_by_name(
        "type_url",
        Value::String(
            "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.UnknownQueryParams".into(),
        ),
    );
    any.set_field_by_name("value", Value::Bytes(captured.encode_to_vec().into()));
    Some(any)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;
    use serde_json::{json, Value as Json};

    use super::*;
    use crate::core::testutil::TEST_DESCRIPTOR_SET;
    use crate::core::transcoder::Transcoder;

    /// A transcoder for test.v1.Things with extra config keys (a JSON object body without braces).
    fn transcoder(extra: &str) -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
        let sep = if extra.is_empty() { "" } else { "," };
        let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Things"]{sep}{extra}}}"#);
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

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
        let message = DynamicMessage::decode(plan.method().input.clone(), bytes.as_slice()).unwrap();
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
        let t = transcoder("");
        assert_eq!(message(&t, "GET", "/v1/things/a?id=b&page_size=3", ""), json!({"id": "a", "page_size": 3}));
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
        // Message-typed fields cannot be set from the query: treated as unknown.
        assert!(matches!(decision(&t, "GET", "/v1/query?nested=1"), Decision::PassThrough(_)));
        assert!(matches!(decision(&t, "GET", "/v1/query?by_number[3]=x"), Decision::PassThrough(_)));
        assert!(matches!(decision(&t, "GET", "/v1/query?labels=x"), Decision::PassThrough(_)), "a map needs [key]");
        let t = transcoder(r#""ignored_query_parameters": ["api_key"]"#);
        assert_eq!(message(&t, "GET", "/v1/query?api_key=s&id=1", ""), json!({"id": "1"}));
        let t = transcoder(r#""ignore_unknown_query_parameters": true"#);
        assert_eq!(message(&t, "GET", "/v1/query?bogus=1&id=1", ""), json!({"id": "1"}));
        let t = transcoder(r#""request_validation_options": {"reject_unknown_query_parameters": true}"#);
        let e = error(&t, "GET", "/v1/query?bogus=1", "");
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("\"bogus\"") && e.message.contains("test.v1.Everything"), "{e}");
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
        let m = DynamicMessage::decode(plan.method().input.clone(), bytes.as_slice()).unwrap();
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
