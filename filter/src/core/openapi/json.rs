//! Builders of the document's JSON values, kept out of line: the filter crate is built at
//! opt-level 3, where each inlined map insertion (what `serde_json::json!` expands to) costs the
//! .wasm a kilobyte or more. Constant parts are written as JSON text and parsed.
use serde_json::{Map, Value};

/// An object of these keys and values.
#[inline(never)]
pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}

/// Sets `key` of `map`.
#[inline(never)]
pub fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.insert(key.to_string(), value);
}

/// Sets `key` of `object`, if it is an object.
#[inline(never)]
pub fn set(object: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(key.to_string(), value);
    }
}

/// A constant written as JSON text (`Null` if it is not JSON: a bug the tests would show).
/// Parsed from bytes: the configuration's own parser (`from_str` would be a second copy of
/// serde_json's number parsing in the .wasm).
#[inline(never)]
pub fn text(json: &str) -> Value {
    serde_json::from_slice(json.as_bytes()).unwrap_or(Value::Null)
}

#[inline(never)]
pub fn string(text: &str) -> Value {
    Value::String(text.to_string())
}

/// `{"$ref": "#/components/<kind>/<name>"}`.
#[inline(never)]
pub fn reference(kind: &str, name: &str) -> Value {
    obj(vec![("$ref", Value::String(format!("#/components/{kind}/{name}")))])
}
