//! Text → field value, for values bound from the URL path and query string. Numbers, bools,
//! enums (name or number), bytes (base64, both alphabets) and the well-known types with a
//! string form (Timestamp, Duration, FieldMask, wrappers) follow proto3 JSON's string forms.
//! Values come out encoded, ready to be written under their field's number.
use crate::core::codec::plan::{well_known, Plans, WellKnown};
use crate::core::codec::wire::{write_tag, write_varint};
use crate::core::codec::wire::{zigzag32, zigzag64};
use crate::core::codec::wire::{FIXED32, FIXED64, LEN, VARINT};
use crate::core::codec::wkt_text;
use crate::core::config::decode_base64;
use crate::core::schema::{Field, Kind, Scalar, Schema};

/// One encoded value: its wire type and payload (the varint's bytes, the fixed-size bytes, or
/// a length-delimited value's content without its length).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireValue {
    pub wire_type: u8,
    pub bytes: Vec<u8>,
}

impl WireValue {
    fn varint(v: u64) -> WireValue {
        let mut bytes = Vec::with_capacity(10);
        write_varint(v, &mut bytes);
        WireValue { wire_type: VARINT, bytes }
    }

    fn len(bytes: Vec<u8>) -> WireValue {
        WireValue { wire_type: LEN, bytes }
    }

    /// Appends the value as field `number`.
    pub fn write(&self, number: u32, out: &mut Vec<u8>) {
        write_tag(number, self.wire_type, out);
        if self.wire_type == LEN {
            write_varint(self.bytes.len() as u64, out);
        }
        out.extend_from_slice(&self.bytes);
    }

    /// Appends the value as `field`: a message value of a delimited field (a group, or
    /// `message_encoding = DELIMITED`) in the group wire format.
    pub fn write_as(&self, field: &Field, out: &mut Vec<u8>) {
        if field.delimited() && self.wire_type == LEN && matches!(field.kind(), Kind::Message(_)) {
            write_tag(field.number, 3, out);
            out.extend_from_slice(&self.bytes);
            write_tag(field.number, 4, out);
        } else {
            self.write(field.number, out);
        }
    }

    /// Whether this is the type's default value (a zero number, false, empty text or bytes).
    /// Floats compare with `==`, so -0.0 is a default too.
    fn is_default(&self, kind: Scalar) -> bool {
        match kind {
            Scalar::Double => self.bytes.get(..8).and_then(|b| b.try_into().ok()).map(f64::from_le_bytes) == Some(0.0),
            Scalar::Float => self.bytes.get(..4).and_then(|b| b.try_into().ok()).map(f32::from_le_bytes) == Some(0.0),
            _ if self.wire_type == LEN => self.bytes.is_empty(),
            _ => self.bytes.iter().all(|&b| b == 0),
        }
    }
}

/// Parses `text` as a value of `kind`; the error says what was expected.
/// Enum names are looked up in the codec's `plans` (hash maps), not by a scan of the values: a
/// query string may hold up to `max_query_parameters` of them.
pub fn parse_value(
    schema: &Schema,
    plans: &Plans,
    kind: Kind,
    text: &str,
    case_insensitive_enums: bool,
) -> Result<WireValue, String> {
    match kind {
        Kind::Scalar(s) => parse_scalar(s, text),
        Kind::Enum(e) => {
            let e = plans.enumeration(e).ok_or("unknown enum type")?;
            let number = match e.number(text.as_bytes(), case_insensitive_enums) {
                Some(n) => n,
                None => text.parse::<i32>().map_err(|_| format!("{text:?} is not a value of enum {}", e.full_name))?,
            };
            Ok(WireValue::varint(number as i64 as u64))
        }
        Kind::Message(m) => parse_well_known(schema, plans, m, text, case_insensitive_enums),
    }
}

fn parse_scalar(kind: Scalar, text: &str) -> Result<WireValue, String> {
    let fixed = |wire_type, bytes: &[u8]| WireValue { wire_type, bytes: bytes.to_vec() };
    Ok(match kind {
        Scalar::Double => fixed(FIXED64, &parse_float(text)?.to_le_bytes()),
        Scalar::Float => {
            let v = parse_float(text)?;
            if v.is_finite() && (v as f32).is_infinite() {
                return Err(format!("{text:?} is out of range for float"));
            }
            fixed(FIXED32, &(v as f32).to_le_bytes())
        }
        Scalar::Int32 => WireValue::varint(parse_int::<i32>(text, "int32")? as i64 as u64),
        Scalar::Sint32 => WireValue::varint(zigzag32(parse_int(text, "int32")?)),
        Scalar::Sfixed32 => fixed(FIXED32, &parse_int::<i32>(text, "int32")?.to_le_bytes()),
        Scalar::Int64 => WireValue::varint(parse_int::<i64>(text, "int64")? as u64),
        Scalar::Sint64 => WireValue::varint(zigzag64(parse_int(text, "int64")?)),
        Scalar::Sfixed64 => fixed(FIXED64, &parse_int::<i64>(text, "int64")?.to_le_bytes()),
        Scalar::Uint32 => WireValue::varint(u64::from(parse_int::<u32>(text, "uint32")?)),
        Scalar::Fixed32 => fixed(FIXED32, &parse_int::<u32>(text, "uint32")?.to_le_bytes()),
        Scalar::Uint64 => WireValue::varint(parse_int(text, "uint64")?),
        Scalar::Fixed64 => fixed(FIXED64, &parse_int::<u64>(text, "uint64")?.to_le_bytes()),
        Scalar::Bool => match text {
            "true" => WireValue::varint(1),
            "false" => WireValue::varint(0),
            _ => return Err(format!("expected true or false, got {text:?}")),
        },
        Scalar::String => WireValue::len(text.as_bytes().to_vec()),
        Scalar::Bytes => WireValue::len(decode_base64(text).ok_or_else(|| format!("{text:?} is not valid base64"))?),
    })
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

/// Messages bindable from text: the wrappers, and types whose JSON form is a string. The
/// encoding is canonical (fields in number order, zero values left out), as the JSON codec
/// writes these types, so values from the URL and from a body compare byte for byte.
fn parse_well_known(
    schema: &Schema,
    plans: &Plans,
    message: usize,
    text: &str,
    case_insensitive_enums: bool,
) -> Result<WireValue, String> {
    let desc = schema.message(message).ok_or("unknown message type")?;
    let name = &*desc.full_name;
    let invalid = |e: String| format!("{text:?} is not a valid {name}: {e}");
    let mut out = Vec::new();
    match well_known(name) {
        Some(WellKnown::Wrapper(_)) => {
            let field = desc.field(1).ok_or("malformed wrapper type")?;
            let value = parse_value(schema, plans, field.kind(), text, case_insensitive_enums)?;
            let default = match field.kind() {
                Kind::Scalar(s) => value.is_default(s),
                _ => false,
            };
            if !default {
                value.write(1, &mut out);
            }
        }
        Some(known @ (WellKnown::Timestamp | WellKnown::Duration)) => {
            let parsed = if known == WellKnown::Timestamp {
                wkt_text::parse_timestamp(text)
            } else {
                wkt_text::parse_duration(text)
            };
            let (seconds, nanos) = parsed.map_err(invalid)?;
            if seconds != 0 {
                WireValue::varint(seconds as u64).write(1, &mut out);
            }
            if nanos != 0 {
                WireValue::varint(nanos as i64 as u64).write(2, &mut out);
            }
        }
        Some(WellKnown::FieldMask) => {
            for path in wkt_text::parse_field_mask(text).map_err(invalid)? {
                WireValue::len(path.into_bytes()).write(1, &mut out);
            }
        }
        // A Value from text is a string value.
        Some(WellKnown::Value) => WireValue::len(text.as_bytes().to_vec()).write(3, &mut out),
        _ => return Err(format!("a {name} message cannot be set from a URL value")),
    }
    Ok(WireValue::len(out))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use prost_reflect::{DynamicMessage, Value};

    use super::*;
    use crate::testing::fixtures::{message, schema};

    fn plans() -> Plans {
        Plans::lazy(std::sync::Arc::new(schema()))
    }

    fn kind(msg: &str, field: &str) -> Kind {
        schema().message_by_name(msg).unwrap().field_by_name(field).unwrap().kind()
    }

    fn message_and_field(field: &str) -> (&'static str, &str) {
        if field.starts_with("f_") {
            ("test.v1.Scalars", field)
        } else {
            ("test.v1.Everything", field)
        }
    }

    /// The parsed value, decoded back by prost-reflect as that field of its message.
    fn parse(field: &str, text: &str) -> Result<Value, String> {
        let (msg, name) = message_and_field(field);
        let value = parse_value(&schema(), &plans(), kind(msg, name), text, false)?;
        let desc = message(msg);
        let number = desc.get_field_by_name(name).unwrap().number();
        let mut bytes = Vec::new();
        value.write(number, &mut bytes);
        let decoded = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
        Ok(decoded.get_field_by_number(number).unwrap().into_owned())
    }

    #[test]
    fn integers_at_their_limits() {
        assert_eq!(parse("f_int32", "-2147483648"), Ok(Value::I32(i32::MIN)));
        assert_eq!(parse("f_sint32", "-2147483648"), Ok(Value::I32(i32::MIN)));
        assert_eq!(parse("f_sfixed32", "-7"), Ok(Value::I32(-7)));
        assert_eq!(parse("f_sint64", "-9223372036854775808"), Ok(Value::I64(i64::MIN)));
        assert_eq!(parse("f_sfixed64", "-9223372036854775808"), Ok(Value::I64(i64::MIN)));
        assert_eq!(parse("f_int64", "-1"), Ok(Value::I64(-1)));
        assert_eq!(parse("f_uint64", "18446744073709551615"), Ok(Value::U64(u64::MAX)));
        assert_eq!(parse("f_fixed64", "18446744073709551615"), Ok(Value::U64(u64::MAX)));
        assert_eq!(parse("f_fixed32", "4294967295"), Ok(Value::U32(u32::MAX)));
        assert_eq!(parse("f_uint32", "4294967295"), Ok(Value::U32(u32::MAX)));
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
        assert_eq!(parse("f_bool", "false"), Ok(Value::Bool(false)));
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
        assert_eq!(parse("f_enum", "-3"), Ok(Value::EnumNumber(-3)));
        assert!(parse("f_enum", "green").unwrap_err().contains("test.v1.Color"));
        let ci = parse_value(&schema(), &plans(), kind("test.v1.Scalars", "f_enum"), "green", true);
        assert_eq!(ci, Ok(WireValue::varint(2)));
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
        let Value::Message(v) = parse("val", "text").unwrap() else { panic!() };
        assert_eq!(v.get_field_by_name("string_value").unwrap().as_str(), Some("text"));
        for (field, text) in [("ts", "yesterday"), ("dur", "5m"), ("w_int32", "x"), ("w_bool", "1"), ("nested", "x")] {
            assert!(parse(field, text).is_err(), "{field}={text}");
        }
        assert!(parse("nested", "x").unwrap_err().contains("test.v1.Nested"));
        assert!(parse("ts", "yesterday").unwrap_err().contains("google.protobuf.Timestamp"));
    }

    #[test]
    fn well_known_encodings_are_canonical() {
        let parse =
            |field: &str, text: &str| parse_value(&schema(), &plans(), kind("test.v1.Everything", field), text, false);
        // Zero values are left out, as the JSON codec writes them.
        assert_eq!(parse("w_int32", "0"), Ok(WireValue::len(vec![])));
        assert_eq!(parse("w_double", "-0"), Ok(WireValue::len(vec![])));
        assert_eq!(parse("ts", "1970-01-01T00:00:00Z"), Ok(WireValue::len(vec![])));
        assert_eq!(parse("dur", "1s"), Ok(WireValue::len(vec![0x08, 0x01])));
        assert_eq!(parse("val", ""), Ok(WireValue::len(vec![0x1a, 0x00])));
    }
}
