//! The request translator as it was built on prost-reflect message trees (the body decoded
//! into a `DynamicMessage`, URL values set on it, the tree encoded), kept as the reference the
//! wire-level translator is compared with: both must give the service the same message, or
//! the same error status, for every request below.
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value};
use serde_json::Value as Json;

use crate::core::codec::json::ParseOptions;
use crate::core::codec::Codec;
use crate::core::error::{Error, Result};
use crate::core::request::{build_message, Decision, RequestPlan};
use crate::core::route::router::{BodyRule, HTTP_BODY};
use crate::core::transcoder::Transcoder;
use crate::testing::fixtures::{pool, TEST_DESCRIPTOR_SET};

/// A URL binding with prost-reflect types.
struct RefBound {
    path: Vec<FieldDescriptor>,
    map_key: Option<MapKey>,
    value: Value,
}

/// From one pool: descriptors of different pools never compare equal.
fn descriptor(name: &str) -> MessageDescriptor {
    static POOL: std::sync::OnceLock<prost_reflect::DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(pool).get_message_by_name(name).unwrap()
}

/// The plan's bindings, their wire values decoded back by prost-reflect.
fn ref_bounds(t: &Transcoder, plan: &RequestPlan) -> Vec<RefBound> {
    plan.bound_for_tests()
        .iter()
        .map(|b| {
            let mut desc = descriptor(t.schema.message_name(plan.method().input));
            let mut path = Vec::new();
            for f in b.path.fields() {
                let field = desc.get_field(f.number).unwrap();
                if let Kind::Message(m) = field.kind() {
                    desc = m;
                }
                path.push(field);
            }
            let leaf = path.last().unwrap().clone();
            let parent = leaf.parent_message().clone();
            let mut bytes = Vec::new();
            let (map_key, value) = match &b.map_key {
                Some(key) => {
                    let mut entry = Vec::new();
                    key.value.write(1, &mut entry);
                    b.value.write(2, &mut entry);
                    crate::core::request::field_value::WireValue { wire_type: 2, bytes: entry }
                        .write(leaf.number(), &mut bytes);
                    let m = DynamicMessage::decode(parent, bytes.as_slice()).unwrap();
                    let map = m.get_field(&leaf).as_map().unwrap().clone();
                    let (k, v) = map.into_iter().next().unwrap();
                    (Some(k), v)
                }
                None => {
                    b.value.write(leaf.number(), &mut bytes);
                    let m = DynamicMessage::decode(parent, bytes.as_slice()).unwrap();
                    let value = m.get_field(&leaf).into_owned();
                    let value = match value {
                        Value::List(mut items) if leaf.is_list() => items.remove(0),
                        other => other,
                    };
                    (None, value)
                }
            };
            RefBound { path, map_key, value }
        })
        .collect()
}

fn parent<'m>(path: &[FieldDescriptor], root: &'m DynamicMessage) -> Option<&'m DynamicMessage> {
    let (_, parents) = path.split_last()?;
    let mut current = root;
    for field in parents {
        if !current.has_field(field) {
            return None;
        }
        current = match current.get_field(field) {
            std::borrow::Cow::Borrowed(Value::Message(m)) => m,
            _ => return None,
        };
    }
    Some(current)
}

fn parent_mut<'m>(path: &[FieldDescriptor], root: &'m mut DynamicMessage) -> &'m mut DynamicMessage {
    let (_, parents) = path.split_last().unwrap();
    let mut current = root;
    for field in parents {
        current = match current.get_field_mut(field) {
            Value::Message(m) => m,
            _ => panic!("not a message"),
        };
    }
    current
}

fn set(path: &[FieldDescriptor], root: &mut DynamicMessage, value: Value, key: Option<MapKey>) {
    let leaf = path.last().unwrap().clone();
    let parent = parent_mut(path, root);
    if leaf.is_map() {
        if let Value::Map(map) = parent.get_field_mut(&leaf) {
            map.insert(key.unwrap(), value);
        }
    } else if leaf.is_list() {
        if let Value::List(list) = parent.get_field_mut(&leaf) {
            list.push(value);
        }
    } else {
        parent.set_field(&leaf, value);
    }
}

fn body_sets(message: &DynamicMessage, b: &RefBound) -> bool {
    let leaf = b.path.last().unwrap();
    match (&b.map_key, parent(&b.path, message)) {
        (Some(key), Some(p)) => p.get_field(leaf).as_map().is_some_and(|m| m.contains_key(key)),
        (None, Some(p)) => p.has_field(leaf),
        _ => false,
    }
}

fn same_value(message: &DynamicMessage, b: &RefBound) -> bool {
    let Some(p) = parent(&b.path, message) else { return false };
    let current = p.get_field(b.path.last().unwrap());
    match (&b.map_key, current.as_ref()) {
        (Some(key), Value::Map(map)) => map.get(key) == Some(&b.value),
        (None, Value::List(items)) => items.contains(&b.value),
        (None, value) => *value == b.value,
        _ => false,
    }
}

fn decode_json(codec: &Codec, desc: &MessageDescriptor, json: &[u8], parse: &ParseOptions) -> Result<DynamicMessage> {
    let index =
        codec.index(desc).ok_or_else(|| Error::internal(format!("{} is not in the codec", desc.full_name())))?;
    let mut bytes = Vec::new();
    codec.json_to_binary(index, json, parse, &mut bytes)?;
    Ok(DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap())
}

fn fill_http_body(message: &mut DynamicMessage, body: &[u8], content_type: Option<&str>, unknown: &[(String, String)]) {
    if message.descriptor().full_name() != HTTP_BODY {
        return;
    }
    if let Some(ct) = content_type {
        message.set_field_by_name("content_type", Value::String(ct.to_string()));
    }
    message.set_field_by_name("data", Value::Bytes(body.to_vec().into()));
    if !unknown.is_empty() {
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
        for (name, value) in unknown {
            captured.key.entry(name.clone()).or_default().values.push(value.clone());
        }
        let mut any = DynamicMessage::new(descriptor("google.protobuf.Any"));
        any.set_field_by_name(
            "type_url",
            Value::String(
                "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.UnknownQueryParams".into(),
            ),
        );
        any.set_field_by_name("value", Value::Bytes(captured.encode_to_vec().into()));
        message.set_field_by_name("extensions", Value::List(vec![Value::Message(any)]));
    }
}

/// The reference translation.
fn reference(t: &Transcoder, plan: &RequestPlan, body: &[u8], content_type: Option<&str>) -> Result<Vec<u8>> {
    let codec = &t.codec;
    let parse = &t.parse_options;
    let input = descriptor(t.schema.message_name(plan.method().input));
    let mut message = DynamicMessage::new(input.clone());
    let unknown = plan.unknown_query_for_tests();
    if !plan.binding.body_is_http_body && !body.is_empty() && body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request("only whitespace"));
    }
    match &plan.binding.body {
        BodyRule::Whole if plan.binding.body_is_http_body => fill_http_body(&mut message, body, content_type, unknown),
        BodyRule::Whole | BodyRule::None => message = decode_json(codec, &input, body, parse)?,
        BodyRule::Field(path) => {
            let mut fields = Vec::new();
            let mut desc = input.clone();
            for f in path.fields() {
                let field = desc.get_field(f.number).unwrap();
                if let Kind::Message(m) = field.kind() {
                    desc = m;
                }
                fields.push(field);
            }
            let leaf = fields.last().unwrap().clone();
            if plan.binding.body_is_http_body {
                let Kind::Message(http_body) = leaf.kind() else { panic!() };
                let mut value = DynamicMessage::new(http_body);
                fill_http_body(&mut value, body, content_type, unknown);
                set(&fields, &mut message, Value::Message(value), None);
            } else if body.is_empty() {
                // Envoy reads it as `{}` given to the field.
                match leaf.kind() {
                    Kind::Message(_) if leaf.is_map() => {}
                    Kind::Message(m) => set(&fields, &mut message, Value::Message(DynamicMessage::new(m)), None),
                    _ => return Err(Error::bad_request("an empty body for a non-message field")),
                }
            } else if body.trim_ascii() == b"null" {
                // The field is absent, its parents present (as in Envoy).
                let _ = parent_mut(&fields, &mut message);
            } else {
                let wrapped = [b"{\"", leaf.name().as_bytes(), b"\":", body, b"\n}"].concat();
                let deeper = ParseOptions { max_depth: parse.max_depth + 1, ..parse.clone() };
                let parsed = decode_json(codec, &leaf.parent_message().clone(), &wrapped, &deeper)?;
                let value = parsed.get_field(&leaf).into_owned();
                parent_mut(&fields, &mut message).set_field(&leaf, value);
            }
        }
    }
    let bounds = ref_bounds(t, plan);
    let collisions = t.config.request_validation_options.reject_binding_body_field_collisions;
    // Lists (and values inside repeated messages) append; otherwise the body wins, but over a
    // path variable only when the rule declares a body.
    let body_has: Vec<bool> =
        bounds.iter().map(|b| !b.path.iter().any(|f| f.is_list()) && body_sets(&message, b)).collect();
    let path_bound = plan.path_bound_for_tests();
    for (i, (b, has)) in bounds.into_iter().zip(body_has).enumerate() {
        if has {
            if collisions && !same_value(&message, &b) {
                return Err(Error::bad_request("collision"));
            }
            if plan.binding.body != BodyRule::None || i >= path_bound {
                continue;
            }
        }
        set(&b.path, &mut message, b.value, b.map_key);
    }
    Ok(message.encode_to_vec())
}

fn transcoder(extra: &str) -> Transcoder {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
    let sep = if extra.is_empty() { "" } else { "," };
    let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Things"]{sep}{extra}}}"#);
    Transcoder::from_json(config.as_bytes()).unwrap()
}

/// The message as JSON with proto names (maps compare regardless of order); the decoded and
/// re-encoded bytes when it has no JSON form (an Any of an unknown type).
fn as_json(desc: &MessageDescriptor, bytes: &[u8]) -> std::result::Result<Json, Vec<u8>> {
    let message = DynamicMessage::decode(desc.clone(), bytes).unwrap();
    let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
    let mut ser = serde_json::Serializer::new(Vec::new());
    match message.serialize_with_options(&mut ser, &options) {
        Ok(()) => Ok(serde_json::from_slice(&ser.into_inner()).unwrap()),
        Err(_) => Err(message.encode_to_vec()),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// (method, path, body, content type) of requests covering every way URL values and the
    /// body meet.
    const REQUESTS: &[(&str, &str, &str, Option<&str>)] = &[
        ("GET", "/v1/things/a", "", None),
        ("GET", "/v1/nested/n/things/7?page_size=3&page_token=t&page_size=4", "", None),
        ("GET", "/v1/nested/n/things/7?nested.value=2&nested.child.name=c&nested.value=0", "", None),
        ("GET", "/v1/query?id=q&scalars.f_int32=-5&scalars.f_enum=GREEN&colors=RED&colors=2&tags=a&tags=", "", None),
        ("GET", "/v1/query?numbers=1&numbers=-2&numbers=0&scalars.f_double=-0&scalars.f_float=NaN", "", None),
        ("GET", "/v1/query?ts=2024-01-02T03:04:05.5Z&dur=1.5s&mask=a,bC&w_int32=0&wBool=false&val=x", "", None),
        ("GET", "/v1/query?labels[k]=v&labels[k]=w&labels[]=e&flags[true]=9&flags[false]=0&by_number[3]=x", "", None),
        ("GET", "/v1/query?scalars.f_optional=0&choice_text=c&timestamps=2024-01-02T03:04:05Z&timestamps=1970-01-01T00:00:00Z", "", None),
        ("GET", "/v1/query?id=1&id=&scalars.f_string=x&scalars.f_string=", "", None),
        ("POST", "/v1/things", r#"{"id": "b", "scalars": {"fInt32": 1}}"#, None),
        ("POST", "/v1/things/p", r#"{"id": "b"}"#, None),
        ("POST", "/v1/things/p", r#"{"id": ""}"#, None),
        ("POST", "/v1/things/p", r#"{"tags": ["x"]}"#, None),
        ("POST", "/v1/things/p?tags=u&tags=v&labels[k]=q&labels[j]=r", r#"{"tags": ["x"], "labels": {"k": "body"}}"#, None),
        ("POST", "/v1/things/p?nested.name=u&nested.value=5", r#"{"nested": {"value": 7}}"#, None),
        ("POST", "/v1/things/p?ts=2024-01-02T03:04:05Z&colors=GREEN", r#"{"ts": "2024-01-02T03:04:05Z", "colors": ["RED", "GREEN"]}"#, None),
        ("POST", "/v1/things/p?numbers=5&scalars.f_int32=3", r#"{"numbers": ["1", "5"], "scalars": {"fInt32": 3}}"#, None),
        ("POST", "/v1/things/p?customName=q", r#"{"renamed": "b"}"#, None),
        ("POST", "/v1/things/p?flags[true]=1&by_number[-3]=x", r#"{"flags": {"true": "1"}}"#, None),
        ("POST", "/v1/things/p?choice_text=t", r#"{"choiceNested": {"name": "n"}}"#, None),
        ("POST", "/v1/things/7:reserve?page_size=2", r#"{"id": "x", "pageSize": 2}"#, None),
        ("PATCH", "/v1/things/7?update_mask=id,scalars.fInt32", r#"{"id": "i", "scalars": {"fInt32": 2}}"#, None),
        ("PATCH", "/v1/things/7?item.id=u&item.tags=t", r#"{"id": "i"}"#, None),
        ("PATCH", "/v1/things/7?id=8", "null", None),
        ("PATCH", "/v1/things/7", "  ", None),
        ("PUT", "/v1/things/7/nested?item.nested.value=3&item.id=z", r#"{"name": "n", "child": {"value": 3}}"#, None),
        ("PUT", "/v1/things/7/nested", "null", None),
        ("POST", "/v1/tags?tags=q", r#"["a", "b"]"#, None),
        ("POST", "/v1/tags?tags=a", r#"[]"#, None),
        ("POST", "/v1/raw", "a,b\n1,2", Some("text/csv")),
        ("POST", "/v1/raw", "", Some("")),
        ("POST", "/v1/upload/9?x=1&x=2&y=z&id=3", "not json {", Some("application/octet-stream")),
        ("POST", "/v1/upload/9", "", None),
        ("GET", "/v1/things/a", r#"{"page_size": 3, "nested": {"name": "b"}}"#, None),
        ("GET", "/v1/nested/n/things/a", r#"{"nested": {"value": 3}}"#, None),
        ("GET", "/v1/things/a", r#"{"bogus": 1}"#, None),
        ("GET", "/v1/things/a?page_size=2&page_token=t", r#"{"id": "b", "page_size": 3}"#, None),
        ("DELETE", "/v1/things/a", r#"{"id": "a", "nested": {"name": "b"}}"#, None),
        ("PATCH", "/v1/things/7?item.tags=t", "", None),
        ("PUT", "/v1/things/7/nested?item.nested.value=3", "", None),
        ("POST", "/v1/tags?tags=q", "", None),
        ("POST", "/v1/things?tags=q", " \n", None),
        ("GET", "/v1/things/a", "\t", None),
        ("POST", "/v1/things", r#"{"id": }"#, None),
        ("PATCH", "/v1/things/7", r#"{"id": 5}"#, None),
    ];

    const CONFIGS: &[&str] = &[
        "",
        r#""request_validation_options": {"reject_binding_body_field_collisions": true}"#,
        r#""capture_unknown_query_parameters": true, "ignore_unknown_query_parameters": true"#,
    ];

    #[test]
    fn wire_level_requests_match_the_message_tree_reference() {
        let mut wrong = Vec::new();
        let mut compared = 0;
        for extra in CONFIGS {
            let t = transcoder(extra);
            for (method, path, body, content_type) in REQUESTS {
                let plan = match t.route(method, path, Some("application/json")) {
                    Decision::Transcode(plan) => plan,
                    _ => continue,
                };
                let got = build_message(&t.config, &t.parse_options, &t.codec, &plan, body.as_bytes(), *content_type);
                let expected = reference(&t, &plan, body.as_bytes(), *content_type);
                let desc = descriptor(t.schema.message_name(plan.method().input));
                let (got, expected) = match (got, expected) {
                    (Ok(a), Ok(b)) => (Ok(as_json(&desc, &a)), Ok(as_json(&desc, &b))),
                    (a, b) => (
                        a.map(|_| Ok(Json::Null)).map_err(|e| e.http_status),
                        b.map(|_| Ok(Json::Null)).map_err(|e| e.http_status),
                    ),
                };
                compared += 1;
                if got != expected {
                    wrong.push(format!(
                        "[{extra}] {method} {path} {body}:\n  got      {got:?}\n  expected {expected:?}"
                    ));
                }
            }
        }
        assert!(compared > 80, "{compared}");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Fields with presence keep it through the body-field and URL paths (the JSON above
    /// cannot show an explicit default).
    #[test]
    fn presence_matches_the_reference() {
        let t = transcoder("");
        for (method, path, body) in [
            ("GET", "/v1/query?scalars.f_optional=0", ""),
            ("PUT", "/v1/things/7/nested", "null"),
            ("PATCH", "/v1/things/7", "{}"),
        ] {
            let Decision::Transcode(plan) = t.route(method, path, None) else { panic!() };
            let got = build_message(&t.config, &t.parse_options, &t.codec, &plan, body.as_bytes(), None).unwrap();
            let expected = reference(&t, &plan, body.as_bytes(), None).unwrap();
            let desc = descriptor(t.schema.message_name(plan.method().input));
            let (a, b) = (
                DynamicMessage::decode(desc.clone(), got.as_slice()).unwrap(),
                DynamicMessage::decode(desc, expected.as_slice()).unwrap(),
            );
            assert!(a == b, "{method} {path} {body}: {:?} / {:?}", a.encode_to_vec(), b.encode_to_vec());
        }
    }
}
