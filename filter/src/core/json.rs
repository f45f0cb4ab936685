//! proto3 JSON options and the checks shared by both JSON paths.
//!
//! The filter's JSON path is [`fast`](super::fast) (tokens straight to wire format). The
//! reflection path — prost-reflect's serde mapping, with our strictness added — lives in
//! [`reflect_json`](super::reflect_json) behind the `reflection` feature: it is the reference
//! the fast path is tested against, and is not part of the `.wasm`.
use super::error::{Error, Result};

#[cfg(feature = "reflection")]
pub use super::reflect_json::{binary_to_json, json_to_binary, parse_message, print_message, serialize_options};

/// How request JSON is read.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Deepest nesting of objects and arrays accepted (checked before parsing).
    pub max_depth: u32,
    /// Accept enum names in any letter case (`case_insensitive_enum_parsing`).
    pub case_insensitive_enums: bool,
    /// Drop fields the schema does not know (Envoy's behaviour) instead of failing.
    pub ignore_unknown_fields: bool,
    /// Drop enum names the schema does not know instead of failing (only together with
    /// `ignore_unknown_fields`). Off in the filter: a misspelt enum is a client error worth a
    /// 400, as in Envoy.
    pub ignore_unknown_enum_names: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_depth: 100,
            case_insensitive_enums: false,
            ignore_unknown_fields: true,
            ignore_unknown_enum_names: false,
        }
    }
}

/// serde_json refuses deeper input by itself; our own limit is checked first with a clear
/// message, and configs may not raise it above this.
pub const MAX_SUPPORTED_DEPTH: u32 = 127;

/// Rejects JSON nested deeper than `max` before any recursive parser sees it. Linear, no
/// allocation; strings (and escapes inside them) are skipped so brackets in text don't count.
pub fn check_depth(json: &[u8], max: u32) -> Result<()> {
    let mut depth: u32 = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > max {
                    return Err(Error::bad_request(format!("invalid JSON body: nested deeper than {max} levels")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Case-insensitive enum lookup of the reflection path.
#[cfg(feature = "reflection")]
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
    use crate::core::config::PrintOptions;
    use crate::core::testutil::message;

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
