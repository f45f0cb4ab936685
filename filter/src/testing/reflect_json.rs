//! The reflection path for proto3 JSON: prost-reflect's serde mapping (it passes the protobuf
//! conformance suite's JSON tests with serde_json's `float_roundtrip`), with the strictness a
//! proxy needs: a nesting limit checked before parsing, unknown fields dropped (as Envoy does),
//! trailing garbage and duplicate keys rejected, unknown enum names refused. The filter runs
//! the fast path; this is the reference it is tested against (feature `reflection`).
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::core::codec::json::{check_depth, ParseOptions};
use crate::core::config::PrintOptions;
use crate::core::error::{Error, Result};

/// Parses proto3 JSON into a message of type `desc`. An empty body is an empty message.
///
/// Two passes for now: a strict JSON tree first (duplicate keys refused, enum names checked
/// against the schema), then prost-reflect. prost-reflect alone cannot drop unknown fields
/// while refusing unknown enum names, and keeps the last of duplicate keys silently.
pub fn parse_message(desc: &MessageDescriptor, json: &[u8], options: &ParseOptions) -> Result<DynamicMessage> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(desc.clone()));
    }
    check_depth(json, options.max_depth)?;
    let mut de = serde_json::Deserializer::from_slice(json);
    let StrictValue(mut value) = StrictValue::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(json_error)?;
    if !options.ignore_unknown_enum_names || options.case_insensitive_enums {
        check_message(desc, &mut value, options, &mut Vec::new())?;
    }
    let deserialize_options = DeserializeOptions::new().deny_unknown_fields(!options.ignore_unknown_fields);
    DynamicMessage::deserialize_with_options(desc.clone(), value, &deserialize_options).map_err(json_error)
}

/// Parses proto3 JSON straight to protobuf bytes.
pub fn json_to_binary(desc: &MessageDescriptor, json: &[u8], options: &ParseOptions) -> Result<Vec<u8>> {
    Ok(parse_message(desc, json, options)?.encode_to_vec())
}

fn json_error(e: serde_json::Error) -> Error {
    Error::bad_request(format!("invalid JSON body: {e}"))
}

/// Checks every enum name against the schema (unknown names are a 400, not silently
/// dropped), and with case-insensitive parsing rewrites names to their declared spelling. Depth is
/// bounded by `check_depth` before this runs.
fn check_enums(
    desc: &MessageDescriptor,
    value: &mut Value,
    options: &ParseOptions,
    path: &mut Vec<String>,
) -> Result<()> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (key, item) in map.iter_mut() {
        let field = desc.get_field_by_json_name(key).or_else(|| desc.get_field_by_name(key));
        let Some(field) = field else { continue };
        let kind = if field.is_map() {
            match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            }
        } else {
            field.kind()
        };
        if !matches!(kind, Kind::Enum(_) | Kind::Message(_)) {
            continue;
        }
        path.push(key.clone());
        let check = |v: &mut Value, path: &mut Vec<String>| -> Result<()> {
            match &kind {
                Kind::Enum(e) => {
                    let Value::String(name) = v else {
                        return Ok(());
                    };
                    match find_enum_value(e, name, options.case_insensitive_enums) {
                        Some(number) => {
                            if let Some(found) = e.get_value(number) {
                                if found.name() != name {
                                    *name = found.name().to_string();
                                }
                            }
                            Ok(())
                        }
                        None if options.ignore_unknown_enum_names => Ok(()),
                        None => Err(Error::bad_request(format!(
                            "invalid JSON body: field \"{}\": \"{name}\" is not a value of enum {}",
                            path.join("."),
                            e.full_name()
                        ))),
                    }
                }
                Kind::Message(m) => check_message(m, v, options, path),
                _ => Ok(()),
            }
        };
        match item {
            Value::Array(items) if field.is_list() => {
                for v in items.iter_mut() {
                    check(v, path)?;
                }
            }
            Value::Object(entries) if field.is_map() => {
                for v in entries.values_mut() {
                    check(v, path)?;
                }
            }
            other => check(other, path)?,
        }
        path.pop();
    }
    Ok(())
}

/// Checks the enums of one message value: user messages field by field, and an `Any` as the
/// message its `@type` names (its fields inline, or under `"value"` for a well-known type), so
/// an enum name packed in an `Any` is held to the same rule as everywhere else.
fn check_message(
    desc: &MessageDescriptor,
    value: &mut Value,
    options: &ParseOptions,
    path: &mut Vec<String>,
) -> Result<()> {
    if desc.full_name() != "google.protobuf.Any" {
        if desc.full_name().starts_with("google.protobuf.") {
            return Ok(());
        }
        return check_enums(desc, value, options, path);
    }
    let Value::Object(map) = value else {
        return Ok(());
    };
    let Some(packed) = map
        .get("@type")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit('/').next())
        .and_then(|name| desc.parent_pool().get_message_by_name(name))
    else {
        return Ok(());
    };
    if packed.full_name().starts_with("google.protobuf.") {
        return match map.get_mut("value") {
            Some(inner) => check_message(&packed, inner, options, path),
            None => Ok(()),
        };
    }
    check_enums(&packed, value, options, path)
}

/// A JSON tree that refuses duplicate object keys (`{"id":1,"id":2}` is ambiguous: different
/// parsers keep different ones).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            let StrictValue(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

/// The serializer settings for `print_options`.
pub fn serialize_options(print: &PrintOptions) -> SerializeOptions {
    SerializeOptions::new()
        .stringify_64_bit_integers(true)
        .use_enum_numbers(print.always_print_enums_as_ints)
        .use_proto_field_name(print.preserve_proto_field_names)
        .skip_default_fields(!print.always_print_primitive_fields)
}

/// Prints a message as proto3 JSON, appending to `out`.
pub fn print_message(message: &DynamicMessage, print: &PrintOptions, out: &mut Vec<u8>) -> Result<()> {
    let options = serialize_options(print);
    let result = if print.add_whitespace {
        let mut ser = serde_json::Serializer::pretty(&mut *out);
        message.serialize_with_options(&mut ser, &options)
    } else {
        let mut ser = serde_json::Serializer::new(&mut *out);
        message.serialize_with_options(&mut ser, &options)
    };
    result.map_err(|e| Error::bad_upstream(format!("response message cannot be printed as JSON: {e}")))
}

/// Decodes protobuf bytes of type `desc` and prints them as JSON, appending to `out`.
pub fn binary_to_json(desc: &MessageDescriptor, bytes: &[u8], print: &PrintOptions, out: &mut Vec<u8>) -> Result<()> {
    let message = DynamicMessage::decode(desc.clone(), bytes)
        .map_err(|e| Error::bad_upstream(format!("response is not a valid {} message: {e}", desc.full_name())))?;
    print_message(&message, print, out)
}

/// Case-insensitive enum lookup of the reflection path.
pub fn find_enum_value(e: &prost_reflect::EnumDescriptor, name: &str, case_insensitive: bool) -> Option<i32> {
    if let Some(v) = e.get_value_by_name(name) {
        return Some(v.number());
    }
    if case_insensitive {
        return e.values().find(|v| v.name().eq_ignore_ascii_case(name)).map(|v| v.number());
    }
    None
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::Value;

    use super::*;
    use crate::testing::fixtures::message;

    fn to_json(name: &str, json: &str) -> Result<String> {
        to_json_with(name, json, &ParseOptions::default(), &PrintOptions::default())
    }

    fn to_json_with(name: &str, json: &str, parse: &ParseOptions, print: &PrintOptions) -> Result<String> {
        let desc = message(name);
        let bytes = json_to_binary(&desc, json.as_bytes(), parse)?;
        let mut out = Vec::new();
        binary_to_json(&desc, &bytes, print, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn scalars_round_trip_in_canonical_form() {
        let out = to_json(
            "test.v1.Scalars",
            r#"{"fDouble": 1.5, "fFloat": "NaN", "fInt32": "-7", "fInt64": 9007199254740993,
                "fUint64": "18446744073709551615", "fSint64": "-9223372036854775808",
                "fBool": true, "fString": "é", "fBytes": "-_8", "fEnum": "GREEN", "fOptional": 0}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"fDouble":1.5,"fFloat":"NaN","fInt32":-7,"fInt64":"9007199254740993","fUint64":"18446744073709551615","fSint64":"-9223372036854775808","fBool":true,"fString":"é","fBytes":"+/8=","fEnum":"GREEN","fOptional":0}"#
        );
    }

    #[test]
    fn well_known_types_use_their_json_forms() {
        let out = to_json(
            "test.v1.Everything",
            r#"{"ts": "2024-01-02T03:04:05.5Z", "dur": "1.5s", "mask": "a.b,cD", "wInt64": "5",
                "wBool": false, "st": {"a": [1, "x", null, {"b": true}]}, "val": 3,
                "any": {"@type": "type.googleapis.com/test.v1.Nested", "name": "n"}, "empty": {}}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ts"], "2024-01-02T03:04:05.500Z");
        assert_eq!(v["dur"], "1.500s");
        assert_eq!(v["mask"], "a.b,cD");
        assert_eq!(v["wInt64"], "5");
        assert_eq!(v["wBool"], false);
        assert_eq!(v["st"], serde_json::json!({"a": [1.0, "x", null, {"b": true}]}));
        assert_eq!(v["val"], 3.0);
        assert_eq!(v["any"], serde_json::json!({"@type": "type.googleapis.com/test.v1.Nested", "name": "n"}));
        assert_eq!(v["empty"], serde_json::json!({}));
    }

    #[test]
    fn maps_oneofs_and_json_names() {
        let out = to_json(
            "test.v1.Everything",
            r#"{"labels": {"k": "v"}, "byNumber": {"7": {"name": "x"}}, "flags": {"true": "1"},
                "choiceText": "t", "customName": "c"}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["labels"]["k"], "v");
        assert_eq!(v["byNumber"]["7"]["name"], "x");
        assert_eq!(v["flags"]["true"], "1");
        assert_eq!(v["choiceText"], "t");
        assert_eq!(v["customName"], "c");
        // proto field names accepted on input too
        let out = to_json("test.v1.Everything", r#"{"renamed": "r", "choice_text": "t"}"#).unwrap();
        assert_eq!(out, r#"{"choiceText":"t","customName":"r"}"#);
    }

    #[test]
    fn print_options_are_honoured() {
        let print = PrintOptions {
            add_whitespace: true,
            always_print_primitive_fields: true,
            always_print_enums_as_ints: true,
            preserve_proto_field_names: true,
            ..Default::default()
        };
        let out = to_json_with("test.v1.Scalars", r#"{"fEnum": "RED"}"#, &ParseOptions::default(), &print).unwrap();
        assert!(out.contains("\n  \"f_enum\": 1"), "{out}");
        assert!(out.contains("\"f_int64\": \"0\""), "{out}");
        assert!(out.contains("\"f_bool\": false"), "{out}");
        assert!(!out.contains("f_optional"), "unset optional fields stay absent: {out}");
    }

    #[test]
    fn unknown_enum_names_are_rejected_everywhere() {
        for json in [r#"{"colors": ["RED", "PURPLE"]}"#, r#"{"items": [{"child": {}}], "scalars": {"fEnum": "X"}}"#] {
            let e = to_json("test.v1.Everything", json).unwrap_err();
            assert_eq!(e.http_status, 400, "{json}");
            assert!(e.message.contains("not a value of enum test.v1.Color"), "{json}: {e}");
        }
        // Numbers are accepted (proto3 enums are open), names are canonical on output.
        assert_eq!(
            to_json("test.v1.Everything", r#"{"colors": [1, "GREEN"]}"#).unwrap(),
            r#"{"colors":["RED","GREEN"]}"#
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = to_json("test.v1.Nested", r#"{"name": "a", "name": "b"}"#).unwrap_err();
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("duplicate key \"name\""), "{e}");
        let e = to_json("test.v1.Everything", r#"{"st": {"k": 1, "k": 2}}"#).unwrap_err();
        assert!(e.message.contains("duplicate key"), "{e}");
    }

    #[test]
    fn unknown_fields_are_dropped() {
        assert_eq!(to_json("test.v1.Nested", r#"{"name": "a", "bogus": {"x": [1]}}"#).unwrap(), r#"{"name":"a"}"#);
    }

    #[test]
    fn empty_body_is_an_empty_message() {
        assert_eq!(to_json("test.v1.Nested", "").unwrap(), "{}");
        assert_eq!(to_json("test.v1.Nested", " \n").unwrap(), "{}");
    }

    #[test]
    fn bad_json_is_a_400_naming_the_problem() {
        let cases = [
            (r#"{"name": }"#, "invalid JSON body"),
            (r#"{"name": "a""#, "EOF"),
            (r#"{"name": "a"} x"#, "trailing characters"),
            (r#"{"value": "abc"}"#, "invalid"),
            (r#"{"value": 2147483648}"#, ""),
            (r#"{"value": 1.5}"#, ""),
            (r#"{"name": 5}"#, ""),
            (r#"[1]"#, ""),
            (r#""str""#, ""),
        ];
        for (json, text) in cases {
            let e = to_json("test.v1.Nested", json).unwrap_err();
            assert_eq!(e.http_status, 400, "{json}");
            assert!(e.message.contains(text), "{json}: {e}");
        }
    }

    #[test]
    fn wrong_values_per_kind_are_rejected() {
        let cases = [
            r#"{"fInt32": "x"}"#,
            r#"{"fUint32": -1}"#,
            r#"{"fUint64": "-1"}"#,
            r#"{"fInt64": "9223372036854775808"}"#,
            r#"{"fBool": "true"}"#,
            r#"{"fBytes": "!!"}"#,
            r#"{"fEnum": "PURPLE"}"#,
            r#"{"fDouble": "abc"}"#,
            r#"{"fString": 1}"#,
        ];
        for json in cases {
            assert_eq!(to_json("test.v1.Scalars", json).map_err(|e| e.http_status), Err(400), "{json}");
        }
        for json in [r#"{"ts": "yesterday"}"#, r#"{"dur": "5 min"}"#, r#"{"mask": 5}"#] {
            assert_eq!(to_json("test.v1.Everything", json).map_err(|e| e.http_status), Err(400), "{json}");
        }
    }

    #[test]
    fn case_insensitive_enums_only_when_enabled() {
        let json = r#"{"scalars": {"fEnum": "blue_green"}, "colors": ["red", "Green"]}"#;
        let e = to_json("test.v1.Everything", json).unwrap_err();
        assert!(e.message.contains("field \"colors\": \"red\" is not a value of enum test.v1.Color"), "{e}");
        let parse = ParseOptions { case_insensitive_enums: true, ..Default::default() };
        let out = to_json_with("test.v1.Everything", json, &parse, &PrintOptions::default()).unwrap();
        assert_eq!(out, r#"{"scalars":{"fEnum":"BLUE_GREEN"},"colors":["RED","GREEN"]}"#);
    }

    #[test]
    fn nesting_limit_is_enforced_before_parsing() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let json = format!(r#"{{"val": {deep}}}"#);
        let e = to_json("test.v1.Everything", &json).unwrap_err();
        assert_eq!(e.http_status, 400);
        assert!(e.message.contains("nested deeper than 100"), "{e}");
        // Brackets inside strings do not count.
        let text = format!(r#"{{"id": "{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(to_json("test.v1.Everything", &text).is_ok());
        // Just at the limit is fine.
        let parse = ParseOptions { max_depth: 3, ..Default::default() };
        assert!(to_json_with("test.v1.Everything", r#"{"st": {"a": {}}}"#, &parse, &PrintOptions::default()).is_ok());
        assert!(to_json_with("test.v1.Everything", r#"{"st": {"a": {"b": []}}}"#, &parse, &PrintOptions::default())
            .is_err());
    }

    #[test]
    fn undecodable_upstream_bytes_are_a_502() {
        let mut out = Vec::new();
        let e = binary_to_json(&message("test.v1.Nested"), &[0x0a, 0x05, b'a'], &PrintOptions::default(), &mut out)
            .unwrap_err();
        assert_eq!(e.http_status, 502);
        assert!(e.message.contains("test.v1.Nested"), "{e}");
    }
}
