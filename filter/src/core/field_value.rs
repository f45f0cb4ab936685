//! Text → field value, for values bound from the URL path and query string. Numbers, bools,
//! enums (name or number), bytes (base64, both alphabets) and the well-known types with a
//! string form (Timestamp, Duration, FieldMask, wrappers) follow proto3 JSON's string forms.
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};

use super::config::decode_base64;
use super::fast::wkt_text;
use super::json::find_enum_value;

/// Parses `text` as a value of `kind`; the error says what was expected.
pub fn parse_value(kind: &Kind, text: &str, case_insensitive_enums: bool) -> Result<Value, String> {
    let value = match kind {
        Kind::Double => Value::F64(parse_float(text)?),
        Kind::Float => {
            let v = parse_float(text)?;
            if v.is_finite() && (v as f32).is_infinite() {
                return Err(format!("{text:?} is out of range for float"));
            }
            Value::F32(v as f32)
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(parse_int(text, "int32")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(parse_int(text, "int64")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(parse_int(text, "uint32")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(parse_int(text, "uint64")?),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("expected true or false, got {text:?}")),
        },
        Kind::String => Value::String(text.to_string()),
        Kind::Bytes => Value::Bytes(decode_base64(text).ok_or_else(|| format!("{text:?} is not valid base64"))?.into()),
        Kind::Enum(e) => {
            let number = match find_enum_value(e, text, case_insensitive_enums) {
                Some(n) => n,
                None => match text.parse::<i32>() {
                    Ok(n) => n,
                    Err(_) => return Err(format!("{text:?} is not a value of enum {}", e.full_name())),
                },
            };
            Value::EnumNumber(number)
        }
        Kind::Message(m) => Value::Message(parse_well_known(m, text, case_insensitive_enums)?),
    };
    Ok(value)
}

/// Digits with an optional sign, as proto3 JSON writes integers in strings. Exponents and
/// fractions are refused: `1.5` in a count is a client bug, not 1.
fn parse_int<T: std::str::FromStr>(text: &str, type_name: &str) -> Result<T, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected an integer ({type_name}), got {text:?}"));
    }
    text.parse::<T>().map_err(|_| format!("{text:?} is out of range for {type_name}"))
}

fn parse_float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => return Ok(f64::NAN),
        "Infinity" => return Ok(f64::INFINITY),
        "-Infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also accepts "inf", "nan" and a leading '+', which proto3 JSON does not.
    let valid = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'E' | b'+'))
        && text.bytes().any(|b| b.is_ascii_digit())
        && !text.starts_with('+');
    match text.parse::<f64>() {
        Ok(v) if valid && v.is_finite() => Ok(v),
        Ok(_) if valid => Err(format!("{text:?} is out of range for double")),
        _ => Err(format!("expected a number, got {text:?}")),
    }
}

/// Messages bindable from text: the wrappers, and types whose JSON form is a string.
fn parse_well_known(
    desc: &MessageDescriptor,
    text: &str,
    case_insensitive_enums: bool,
) -> Result<DynamicMessage, String> {
    match desc.full_name() {
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => {
            let field = desc.get_field(1).ok_or("malformed wrapper type")?;
            let value = parse_value(&field.kind(), text, case_insensitive_enums)?;
            let mut message = DynamicMessage::new(desc.clone());
            message.set_field(&field, value);
            Ok(message)
        }
        "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
            let parsed = if desc.full_name() == "google.protobuf.Timestamp" {
                wkt_text::parse_timestamp(text)
            } else {
                wkt_text::parse_duration(text)
            };
            let (seconds, nanos) = parsed.map_err(|e| format!("{text:?} is not a valid {}: {e}", desc.full_name()))?;
            let mut message = DynamicMessage::new(desc.clone());
            message.set_field_by_number(1, Value::I64(seconds));
            message.set_field_by_number(2, Value::I32(nanos));
            Ok(message)
        }
        "google.protobuf.FieldMask" => {
            let paths = wkt_text::parse_field_mask(text)
                .map_err(|e| format!("{text:?} is not a valid {}: {e}", desc.full_name()))?;
            let mut message = DynamicMessage::new(desc.clone());
            message.set_field_by_number(1, Value::List(paths.into_iter().map(Value::String).collect()));
            Ok(message)
        }
        // A Value from text is a string value.
        "google.protobuf.Value" => {
            let mut message = DynamicMessage::new(desc.clone());
            message.set_field_by_number(3, Value::String(text.to_string()));
            Ok(message)
        }
        other => Err(format!("a {other} message cannot be set from a URL value")),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::testutil::message;

    fn kind(msg: &str, field: &str) -> Kind {
        message(msg).get_field_by_name(field).unwrap().kind()
    }

    fn parse(field: &str, text: &str) -> Result<Value, String> {
        let (msg, name) =
            if field.starts_with("f_") { ("test.v1.Scalars", field) } else { ("test.v1.Everything", field) };
        parse_value(&kind(msg, name), text, false)
    }

    #[test]
    fn integers_at_their_limits() {
        assert_eq!(parse("f_int32", "-2147483648"), Ok(Value::I32(i32::MIN)));
        assert_eq!(parse("f_sint64", "-9223372036854775808"), Ok(Value::I64(i64::MIN)));
        assert_eq!(parse("f_uint64", "18446744073709551615"), Ok(Value::U64(u64::MAX)));
        assert_eq!(parse("f_fixed32", "4294967295"), Ok(Value::U32(u32::MAX)));
        for (field, text) in [
            ("f_int32", "2147483648"),
            ("f_uint32", "-1"),
            ("f_uint64", "18446744073709551616"),
            ("f_int64", "9223372036854775808"),
            ("f_sfixed32", "1.5"),
            ("f_int32", "1e3"),
            ("f_int32", ""),
            ("f_int32", "-"),
            ("f_int32", " 1"),
            ("f_int32", "+1"),
            ("f_int32", "0x10"),
        ] {
            assert!(parse(field, text).is_err(), "{field}={text}");
        }
        assert!(parse("f_int32", "2147483648").unwrap_err().contains("out of range"));
        assert!(parse("f_int32", "abc").unwrap_err().contains("expected an integer"));
    }

    #[test]
    fn floats_accept_json_forms_only() {
        assert_eq!(parse("f_double", "1.5e3"), Ok(Value::F64(1500.0)));
        assert_eq!(parse("f_double", "-Infinity"), Ok(Value::F64(f64::NEG_INFINITY)));
        assert!(matches!(parse("f_double", "NaN"), Ok(Value::F64(v)) if v.is_nan()));
        assert_eq!(parse("f_float", "0.25"), Ok(Value::F32(0.25)));
        for text in ["inf", "nan", "+1", "1e999", "x", "", "."] {
            assert!(parse("f_double", text).is_err(), "{text}");
        }
        assert!(parse("f_float", "1e39").unwrap_err().contains("out of range"));
    }

    #[test]
    fn bools_strings_bytes() {
        assert_eq!(parse("f_bool", "true"), Ok(Value::Bool(true)));
        assert!(parse("f_bool", "yes").is_err());
        assert!(parse("f_bool", "True").is_err());
        assert_eq!(parse("f_string", "a b"), Ok(Value::String("a b".into())));
        assert_eq!(parse("f_bytes", "-_8"), Ok(Value::Bytes(vec![0xfb, 0xff].into())));
        assert_eq!(parse("f_bytes", "+/8="), Ok(Value::Bytes(vec![0xfb, 0xff].into())));
        assert!(parse("f_bytes", "***").unwrap_err().contains("base64"));
    }

    #[test]
    fn enums_by_name_or_number() {
        assert_eq!(parse("f_enum", "GREEN"), Ok(Value::EnumNumber(2)));
        assert_eq!(parse("f_enum", "3"), Ok(Value::EnumNumber(3)));
        assert!(parse("f_enum", "green").unwrap_err().contains("test.v1.Color"));
        assert_eq!(parse_value(&kind("test.v1.Scalars", "f_enum"), "green", true), Ok(Value::EnumNumber(2)));
        assert!(parse("f_enum", "PURPLE").is_err());
        assert!(parse("f_enum", "99999999999").is_err());
    }

    #[test]
    fn well_known_types_from_their_string_forms() {
        let Value::Message(ts) = parse("ts", "2024-05-06T07:08:09Z").unwrap() else { panic!() };
        assert_eq!(ts.get_field_by_name("seconds").unwrap().as_i64(), Some(1714979289));
        let Value::Message(d) = parse("dur", "-1.5s").unwrap() else { panic!() };
        assert_eq!(d.get_field_by_name("seconds").unwrap().as_i64(), Some(-1));
        assert_eq!(d.get_field_by_name("nanos").unwrap().as_i32(), Some(-500_000_000));
        let Value::Message(m) = parse("mask", "a,bC.d").unwrap() else { panic!() };
        let paths = m.get_field_by_name("paths").unwrap();
        let paths: Vec<_> = paths.as_list().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(paths, vec!["a", "b_c.d"]);
        let Value::Message(w) = parse("w_int64", "-5").unwrap() else { panic!() };
        assert_eq!(w.get_field_by_name("value").unwrap().as_i64(), Some(-5));
        let Value::Message(w) = parse("w_bool", "false").unwrap() else { panic!() };
        assert_eq!(w.get_field_by_name("value").unwrap().as_bool(), Some(false));
        for (field, text) in [("ts", "yesterday"), ("dur", "5m"), ("w_int32", "x"), ("w_bool", "1"), ("nested", "x")] {
            assert!(parse(field, text).is_err(), "{field}={text}");
        }
        assert!(parse("nested", "x").unwrap_err().contains("test.v1.Nested"));
    }
}
