//! The well-known types, whose JSON is not an object of their fields (proto3 JSON mapping).
use serde_json::Value;

use super::json::{obj, set, string, text};
use super::schemas::{scalar, Schemas};
use crate::core::schema::Scalar;

/// The schema of a well-known type, `None` for other messages.
pub fn schema(schemas: &mut Schemas<'_>, full_name: &str) -> Option<Value> {
    let name = full_name.strip_prefix("google.protobuf.")?;
    if let Some(s) = wrapped_scalar(full_name) {
        let mut v = scalar(s);
        set(&mut v, "description", string(&format!("google.protobuf.{name}: the wrapped value itself")));
        return Some(v);
    }
    let any_value = |schemas: &mut Schemas<'_>| schemas.message_named("google.protobuf.Value").unwrap_or(Value::Null);
    Some(match name {
        "Struct" => obj(vec![
            ("type", string("object")),
            ("additionalProperties", any_value(schemas)),
            ("description", string("Any JSON object")),
        ]),
        "ListValue" => obj(vec![
            ("type", string("array")),
            ("items", any_value(schemas)),
            ("description", string("Any JSON array")),
        ]),
        "Timestamp" => text(
            r#"{"type": "string", "format": "date-time", "description":
                "RFC 3339, `Z` or an offset, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"}"#,
        ),
        "Duration" => text(
            r#"{"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                "description": "Seconds with an `s` suffix, e.g. `1.5s`, at most ±315576000000s"}"#,
        ),
        "FieldMask" => text(
            r#"{"type": "string", "pattern": "^([a-zA-Z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*)*(,[a-zA-Z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*)*)*)?$",
                "description": "Comma-separated field paths in lowerCamelCase, e.g. `user.displayName,photo`"}"#,
        ),
        "Value" => text(r#"{"description": "Any JSON value"}"#),
        "Any" => text(
            r#"{"type": "object",
                "properties": {"@type": {"type": "string", "description": "type URL: `type.googleapis.com/` and the full name"}},
                "description": "A message of any type in the descriptors: `@type` and its fields, or `@type` and `value` for a well-known type whose JSON is not an object"}"#,
        ),
        "Empty" => text(r#"{"type": "object", "description": "An empty message: `{}`"}"#),
        _ => return None,
    })
}

/// The text form of a well-known type in a URL (path variable or query parameter), `None` for
/// types a URL value cannot set. (The wrappers are their scalar's text: [`wrapped_scalar`].)
pub fn url_text(full_name: &str) -> Option<Value> {
    Some(text(match full_name.strip_prefix("google.protobuf.")? {
        "Timestamp" => r#"{"type": "string", "format": "date-time"}"#,
        "Duration" => r#"{"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"}"#,
        "FieldMask" => {
            r#"{"type": "string", "pattern": "^([a-zA-Z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*)*(,[a-zA-Z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*)*)*)?$"}"#
        }
        // A Value from a URL is a string value.
        "Value" => r#"{"type": "string"}"#,
        _ => return None,
    }))
}

/// The scalar a wrapper type wraps.
pub fn wrapped_scalar(full_name: &str) -> Option<Scalar> {
    Some(match full_name.strip_prefix("google.protobuf.")? {
        "DoubleValue" => Scalar::Double,
        "FloatValue" => Scalar::Float,
        "Int64Value" => Scalar::Int64,
        "UInt64Value" => Scalar::Uint64,
        "Int32Value" => Scalar::Int32,
        "UInt32Value" => Scalar::Uint32,
        "BoolValue" => Scalar::Bool,
        "StringValue" => Scalar::String,
        "BytesValue" => Scalar::Bytes,
        _ => return None,
    })
}
