//! The well-known types, whose JSON is not an object of their fields (proto3 JSON mapping).
use serde_json::{json, Value};

use super::schemas::{scalar, Schemas};
use crate::core::schema::Scalar;

/// `-1.5s`: seconds with up to 9 fractional digits.
const DURATION: &str = "^-?[0-9]+(\\.[0-9]{1,9})?s$";
/// `a.fooBar,b`: comma-separated field paths in lowerCamelCase.
const FIELD_MASK: &str =
    "^([a-zA-Z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*)*(,[a-zA-Z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*)*)*)?$";

/// The schema of a well-known type, `None` for other messages.
pub fn schema(schemas: &mut Schemas<'_>, full_name: &str) -> Option<Value> {
    let wrapped = |s: Scalar, name: &str| {
        let mut v = scalar(s);
        if let Some(o) = v.as_object_mut() {
            o.insert("description".into(), json!(format!("google.protobuf.{name}: the wrapped value itself")));
        }
        v
    };
    Some(match full_name.strip_prefix("google.protobuf.")? {
        "Timestamp" => json!({"type": "string", "format": "date-time",
            "description": "RFC 3339, UTC `Z` or an offset, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"}),
        "Duration" => json!({"type": "string", "pattern": DURATION,
            "description": "Seconds with an `s` suffix, e.g. `1.5s`, at most ±315576000000s"}),
        "FieldMask" => json!({"type": "string", "pattern": FIELD_MASK,
            "description": "Comma-separated field paths in lowerCamelCase, e.g. `user.displayName,photo`"}),
        "Struct" => {
            let value = schemas.message_named("google.protobuf.Value").unwrap_or(json!({}));
            json!({"type": "object", "additionalProperties": value, "description": "Any JSON object"})
        }
        "Value" => json!({"description": "Any JSON value"}),
        "ListValue" => {
            let value = schemas.message_named("google.protobuf.Value").unwrap_or(json!({}));
            json!({"type": "array", "items": value, "description": "Any JSON array"})
        }
        "Any" => json!({"type": "object",
            "properties": {"@type": {"type": "string", "description": "type URL, `type.googleapis.com/` and the full name"}},
            "description": "A message of any type in the descriptors: `@type` and its fields, or `@type` and \
                            `value` for a well-known type whose JSON is not an object"}),
        "Empty" => json!({"type": "object", "description": "An empty message: `{}`"}),
        "DoubleValue" => wrapped(Scalar::Double, "DoubleValue"),
        "FloatValue" => wrapped(Scalar::Float, "FloatValue"),
        "Int64Value" => wrapped(Scalar::Int64, "Int64Value"),
        "UInt64Value" => wrapped(Scalar::Uint64, "UInt64Value"),
        "Int32Value" => wrapped(Scalar::Int32, "Int32Value"),
        "UInt32Value" => wrapped(Scalar::Uint32, "UInt32Value"),
        "BoolValue" => wrapped(Scalar::Bool, "BoolValue"),
        "StringValue" => wrapped(Scalar::String, "StringValue"),
        "BytesValue" => wrapped(Scalar::Bytes, "BytesValue"),
        _ => return None,
    })
}

/// The text form of a well-known type in a URL (path variable or query parameter), `None` for
/// types a URL value cannot set.
/// (The wrappers are their scalar's text: [`wrapped_scalar`].)
pub fn url_text(full_name: &str) -> Option<Value> {
    Some(match full_name.strip_prefix("google.protobuf.")? {
        "Timestamp" => json!({"type": "string", "format": "date-time"}),
        "Duration" => json!({"type": "string", "pattern": DURATION}),
        "FieldMask" => json!({"type": "string", "pattern": FIELD_MASK}),
        // A Value from a URL is a string value.
        "Value" => json!({"type": "string"}),
        _ => return None,
    })
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
