//! Values in the URL (path variables, query parameters): the proto3 JSON string forms, as the
//! request translator parses them (`field_value.rs`).
use serde_json::Value;

use super::json::text;
use super::schemas::Schemas;
use super::wkt;
use crate::core::schema::{Kind, Scalar};

/// The schema of one URL value of `kind`; `None` when a URL value cannot set it (a message
/// without a string form).
pub fn value(schemas: &mut Schemas<'_>, kind: Kind) -> Option<Value> {
    match kind {
        Kind::Scalar(s) => Some(scalar(s)),
        // Names (in any case with case_insensitive_enum_parsing) or numbers: the enum's schema.
        Kind::Enum(e) => Some(schemas.enumeration(e)),
        Kind::Message(m) => {
            let name = schemas.schema.message_name(m);
            match wkt::wrapped_scalar(name) {
                Some(s) => Some(scalar(s)),
                None => wkt::url_text(name),
            }
        }
    }
}

/// A scalar's text: numbers as digits (64-bit ones too), bools as `true`/`false`, bytes as
/// base64 (either alphabet).
pub fn scalar(s: Scalar) -> Value {
    use Scalar::*;
    match s {
        Int64 | Sint64 | Sfixed64 => text(
            r#"{"type": "integer", "format": "int64", "minimum": -9223372036854775808, "maximum": 9223372036854775807}"#,
        ),
        Uint64 | Fixed64 => text(r#"{"type": "integer", "minimum": 0, "maximum": 18446744073709551615}"#),
        Bytes => text(r#"{"type": "string", "contentEncoding": "base64"}"#),
        other => super::schemas::scalar(other),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::openapi::docs::Docs;
    use crate::core::openapi::schemas::Style;
    use crate::testing::fixtures::schema;
    use serde_json::json;

    #[test]
    fn url_values_are_text_forms() {
        let schema = schema();
        let docs = Docs::default();
        let mut schemas = Schemas::new(&schema, &docs, Style::default());
        let message = |name: &str| Kind::Message(schema.message_index(name).unwrap());
        assert_eq!(value(&mut schemas, Kind::Scalar(Scalar::Int64)).unwrap()["type"], "integer");
        assert_eq!(value(&mut schemas, Kind::Scalar(Scalar::Uint64)).unwrap()["maximum"], u64::MAX);
        assert_eq!(value(&mut schemas, Kind::Scalar(Scalar::Bool)).unwrap(), json!({"type": "boolean"}));
        assert_eq!(value(&mut schemas, Kind::Scalar(Scalar::Bytes)).unwrap()["contentEncoding"], "base64");
        let ts = value(&mut schemas, message("google.protobuf.Timestamp")).unwrap();
        assert_eq!(ts, json!({"type": "string", "format": "date-time"}));
        let wrapper = value(&mut schemas, message("google.protobuf.Int64Value")).unwrap();
        assert_eq!(wrapper["type"], "integer");
        assert_eq!(value(&mut schemas, message("google.protobuf.Value")).unwrap(), json!({"type": "string"}));
        assert!(value(&mut schemas, message("google.protobuf.FieldMask")).unwrap()["pattern"].is_string());
        assert!(value(&mut schemas, message("google.protobuf.Struct")).is_none());
        assert!(value(&mut schemas, message("test.v1.Nested")).is_none());
        let color = schema.enums.iter().position(|e| &*e.full_name == "test.v1.Color").unwrap();
        assert_eq!(
            value(&mut schemas, Kind::Enum(color)).unwrap(),
            json!({"$ref": "#/components/schemas/test.v1.Color"})
        );
    }
}
