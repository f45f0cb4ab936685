//! JSON ⇄ protobuf wire format, straight from tokens to bytes: per-message plans compiled once
//! per configuration ([`plan`]), JSON read into bytes ([`encode`], [`reader`], [`validate`]),
//! bytes printed as JSON ([`decode`], [`wkt_text`], [`groups`]), the proto3 JSON options
//! ([`json`]) and the wire format itself ([`wire`]). The prost-reflect path in
//! [`testing::reflect_json`](crate::testing) is its reference; a differential test keeps both
//! in agreement.
pub mod decode;
pub mod encode;
pub mod groups;
pub mod json;
pub mod plan;
pub mod reader;
pub mod validate;
pub mod wire;
pub mod wkt_text;

use std::sync::Arc;

use super::config::PrintOptions;
use super::error::Result;
use super::schema::Schema;
use crate::core::codec::json::ParseOptions;
pub use decode::OutputLimit;
use plan::Plans;

/// The fast JSON ⇄ binary codec for one schema.
#[derive(Debug, Default)]
pub struct Codec {
    plans: Plans,
}

impl Codec {
    /// Every plan built now.
    pub fn new(schema: &Schema) -> Codec {
        Codec { plans: Plans::build(schema) }
    }

    /// Each message's plan built on its first use (see [`Plans`]).
    pub fn lazy(schema: Arc<Schema>) -> Codec {
        Codec { plans: Plans::lazy(schema) }
    }

    /// The codec of a prost-reflect pool (the reflection path's tests and tools).
    #[cfg(feature = "reflection")]
    pub fn from_pool(pool: &prost_reflect::DescriptorPool) -> std::result::Result<Codec, String> {
        let encoded = pool.encode_to_vec();
        let files = crate::core::schema::descriptor_proto::decode_file_set(&encoded)?;
        Ok(Codec::new(&Schema::link(&files)?))
    }

    /// The plan index of a message type.
    #[cfg(feature = "reflection")]
    pub fn index(&self, desc: &prost_reflect::MessageDescriptor) -> Option<usize> {
        self.index_of(desc.full_name())
    }

    /// The plan index of a message type by full name.
    pub fn index_of(&self, full_name: &str) -> Option<usize> {
        self.plans.index_of(full_name)
    }

    /// The compiled plans.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// JSON → protobuf bytes, appended to `out`.
    pub fn json_to_binary(&self, index: usize, json: &[u8], options: &ParseOptions, out: &mut Vec<u8>) -> Result<()> {
        encode::encode(&self.plans, index, json, options, out)
    }

    /// The JSON value of one field (`number`) of message `index` → that field's encoding,
    /// appended to `out`. Exactly one JSON value is accepted.
    pub fn json_field_to_binary(
        &self,
        index: usize,
        number: u32,
        json: &[u8],
        options: &ParseOptions,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        encode::encode_field(&self.plans, index, number, json, options, out)
    }

    /// Checks protobuf bytes as a message of `index` without printing them.
    pub fn validate(&self, index: usize, bytes: &[u8]) -> Result<()> {
        validate::validate(&self.plans, index, bytes)
    }

    /// Protobuf bytes → JSON, appended to `out`.
    pub fn binary_to_json(&self, index: usize, bytes: &[u8], print: &PrintOptions, out: &mut Vec<u8>) -> Result<()> {
        decode::decode(&self.plans, index, bytes, print, OutputLimit::NONE, out)
    }

    /// Protobuf bytes → JSON, appended to `out`, refused once the JSON outgrows `limit`.
    pub fn binary_to_json_limited(
        &self,
        index: usize,
        bytes: &[u8],
        print: &PrintOptions,
        limit: OutputLimit,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        decode::decode(&self.plans, index, bytes, print, limit, out)
    }

    /// The JSON value of field `number` of `bytes` (a message of `index` holding only that
    /// field), `null` when it would not be printed; refused once it outgrows `limit`.
    pub fn field_to_json(
        &self,
        index: usize,
        number: u32,
        bytes: &[u8],
        print: &PrintOptions,
        limit: OutputLimit,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        decode::decode_field(&self.plans, index, number, bytes, print, limit, out)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// JSON → binary → JSON through the codec, or the HTTP status of the error.
    fn round_trip(name: &str, json: &str) -> std::result::Result<String, u16> {
        let codec = Codec::new(&crate::testing::fixtures::schema());
        let index = codec.index_of(name).unwrap();
        let mut bytes = Vec::new();
        codec
            .json_to_binary(index, json.as_bytes(), &ParseOptions::default(), &mut bytes)
            .map_err(|e| e.http_status)?;
        let mut out = Vec::new();
        codec.binary_to_json(index, &bytes, &PrintOptions::default(), &mut out).unwrap();
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn integers_written_with_fractions_or_exponents_are_exact() {
        let accepted = [
            (r#"{"fInt64": 9223372036854775807.0}"#, r#"{"fInt64":"9223372036854775807"}"#),
            (r#"{"fInt64": -9.223372036854775808e18}"#, r#"{"fInt64":"-9223372036854775808"}"#),
            (r#"{"fUint64": 1.8446744073709551615e19}"#, r#"{"fUint64":"18446744073709551615"}"#),
            (r#"{"fInt32": 1e3, "fUint32": 2.50e1}"#, r#"{"fInt32":1000,"fUint32":25}"#),
            (r#"{"fInt32": -0.0, "fInt64": 0e999999999999}"#, r#"{}"#),
        ];
        for (json, expected) in accepted {
            assert_eq!(round_trip("test.v1.Scalars", json).as_deref(), Ok(expected), "{json}");
        }
        // A double would round these into range (and the value would be clamped).
        for json in [
            r#"{"fInt64": 9.223372036854775808e18}"#,
            r#"{"fUint64": 1.8446744073709552e19}"#,
            r#"{"fInt32": 2147483648.0}"#,
            r#"{"fUint32": -1e0}"#,
            r#"{"fInt32": 1.5}"#,
            r#"{"fInt64": 1e-1}"#,
            r#"{"fInt64": 1e400}"#,
        ] {
            assert_eq!(round_trip("test.v1.Scalars", json), Err(400), "{json}");
        }
    }

    #[test]
    fn duplicate_keys_are_400s_in_messages_maps_structs_and_unknown_fields() {
        for json in [
            r#"{"id": "a", "id": "b"}"#,
            // The second spelling takes the slow key path; still the same field.
            r#"{"id": "a", "i\u0064": "b"}"#,
            r#"{"labels": {"k": "a", "k": "b"}}"#,
            r#"{"byNumber": {"1": {}, "1": {}}}"#,
            r#"{"st": {"k": 1, "k": 2}}"#,
            r#"{"bogus": 1, "bogus": 2}"#,
        ] {
            assert_eq!(round_trip("test.v1.Everything", json), Err(400), "{json}");
        }
        assert_eq!(
            round_trip("test.v1.Everything", r#"{"labels": {"k": "a", "K": "b"}, "bogus": 1, "Bogus": 2}"#).as_deref(),
            Ok(r#"{"labels":{"k":"a","K":"b"}}"#)
        );
    }

    #[test]
    fn int64_as_numbers_prints_64_bit_integers_as_numbers_and_parsing_takes_both() {
        // json2grpc.rest.int64_as_numbers: the legacy format of REST APIs that predate proto3 JSON.
        let codec = Codec::new(&crate::testing::fixtures::schema());
        let print = |name: &str, json: &str, legacy: bool| {
            let index = codec.index_of(name).unwrap();
            let mut bytes = Vec::new();
            codec.json_to_binary(index, json.as_bytes(), &ParseOptions::default(), &mut bytes).unwrap();
            let options = PrintOptions { int64_as_numbers: legacy, ..Default::default() };
            let mut out = Vec::new();
            codec.binary_to_json(index, &bytes, &options, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let scalars = r#"{"fInt64": "-9223372036854775808", "fUint64": 18446744073709551615, "fSint64": "-2",
                          "fFixed64": 3, "fSfixed64": "-4", "fInt32": 5}"#;
        assert_eq!(
            print("test.v1.Scalars", scalars, true),
            r#"{"fInt32":5,"fInt64":-9223372036854775808,"fUint64":18446744073709551615,"fSint64":-2,"fFixed64":3,"fSfixed64":-4}"#
        );
        assert_eq!(
            print("test.v1.Scalars", scalars, false),
            r#"{"fInt32":5,"fInt64":"-9223372036854775808","fUint64":"18446744073709551615","fSint64":"-2","fFixed64":"3","fSfixed64":"-4"}"#
        );
        // Lists, map values and the wrappers; map keys are JSON strings whatever the option.
        let everything = r#"{"numbers": ["1", 2], "flags": {"true": "7"}, "wInt64": "-8", "wUint64": 9}"#;
        assert_eq!(
            print("test.v1.Everything", everything, true),
            r#"{"numbers":[1,2],"flags":{"true":7},"wInt64":-8,"wUint64":9}"#
        );
        assert_eq!(
            print("test.v1.Everything", everything, false),
            r#"{"numbers":["1","2"],"flags":{"true":"7"},"wInt64":"-8","wUint64":"9"}"#
        );
    }

    #[test]
    fn keys_in_any_order_spelling_or_escaping_reach_their_fields() {
        let expected = Ok(r#"{"fInt32":1,"fInt64":"2","fUint32":3}"#);
        for json in [
            r#"{"fInt32": 1, "fInt64": 2, "fUint32": 3}"#,
            r#"{"fUint32": 3, "fInt64": 2, "fInt32": 1}"#,
            r#"{"f_int32": 1, "f_int64": 2, "f_uint32": 3}"#,
            r#"{ "fInt32"  :1 ,"f\u0049nt64":2,	"fUint32"
                : 3 }"#,
        ] {
            assert_eq!(round_trip("test.v1.Scalars", json).as_deref(), expected, "{json}");
        }
    }
}

/// Edition 2023 features (and proto2 groups) through the codec, on `testutil::editions`'
/// `ed.M` (field numbers in its doc).
#[cfg(test)]
mod editions_tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::schema::descriptors::load_schema;
    use crate::testing::fixtures::editions;

    fn codec() -> (Codec, usize) {
        let codec = Codec::new(&load_schema(&editions::descriptor_set()).unwrap());
        let index = codec.index_of("ed.M").unwrap();
        (codec, index)
    }

    fn to_wire(json: &str) -> std::result::Result<Vec<u8>, u16> {
        let (codec, index) = codec();
        let mut out = Vec::new();
        codec.json_to_binary(index, json.as_bytes(), &ParseOptions::default(), &mut out).map_err(|e| e.http_status)?;
        Ok(out)
    }

    fn print_with(bytes: &[u8], print: &PrintOptions) -> std::result::Result<String, u16> {
        let (codec, index) = codec();
        let mut out = Vec::new();
        codec.binary_to_json(index, bytes, print, &mut out).map_err(|e| e.http_status)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn to_json(bytes: &[u8]) -> std::result::Result<String, u16> {
        print_with(bytes, &PrintOptions::default())
    }

    fn validate(bytes: &[u8]) -> std::result::Result<(), u16> {
        let (codec, index) = codec();
        codec.validate(index, bytes).map_err(|e| e.http_status)
    }

    #[test]
    fn explicit_presence_prints_a_zero_that_was_set_implicit_does_not() {
        // explicit_int (1) and implicit_int (2) both set to 0 on the wire.
        assert_eq!(to_json(&[0x08, 0x00, 0x10, 0x00]).as_deref(), Ok(r#"{"explicitInt":0}"#));
        // From JSON: the explicit zero is written, the implicit one is not.
        assert_eq!(to_wire(r#"{"explicitInt": 0, "implicitInt": 0}"#), Ok(vec![0x08, 0x00]));
        // always_print_primitive_fields prints the fields without presence only.
        let always = PrintOptions { always_print_primitive_fields: true, ..Default::default() };
        let printed = print_with(&[], &always).unwrap();
        assert!(printed.contains(r#""implicitInt":0"#) && !printed.contains("explicitInt"), "{printed}");
    }

    #[test]
    fn closed_enum_numbers_it_does_not_declare_are_unknown_fields() {
        // closed (3): CLOSED_ONE, then 5 (not declared): the known value stays.
        assert_eq!(to_json(&[0x18, 0x01, 0x18, 0x05]).as_deref(), Ok(r#"{"closed":"CLOSED_ONE"}"#));
        assert_eq!(to_json(&[0x18, 0x05]).as_deref(), Ok("{}"));
        // closed_list (4), packed [1, 5, 0]; closed_expanded (5): 5, 1.
        assert_eq!(
            to_json(&[0x22, 0x03, 0x01, 0x05, 0x00, 0x28, 0x05, 0x28, 0x01]).as_deref(),
            Ok(r#"{"closedList":["CLOSED_ONE","CLOSED_ZERO"],"closedExpanded":["CLOSED_ONE"]}"#)
        );
        assert_eq!(to_json(&[0x22, 0x01, 0x05]).as_deref(), Ok("{}"), "only unknown elements");
        // closed_map (6): {"a": CLOSED_ONE}, then {"a": 5}: the second entry is unknown.
        let map = [0x32, 0x05, 0x0a, 0x01, b'a', 0x10, 0x01, 0x32, 0x05, 0x0a, 0x01, b'a', 0x10, 0x05];
        assert_eq!(to_json(&map).as_deref(), Ok(r#"{"closedMap":{"a":"CLOSED_ONE"}}"#));
        // An open enum (7) prints the number.
        assert_eq!(to_json(&[0x38, 0x05]).as_deref(), Ok(r#"{"open":5}"#));
        // JSON numbers are written as given (protobuf keeps them as the same varint).
        assert_eq!(to_wire(r#"{"closed": 5}"#), Ok(vec![0x18, 0x05]));
    }

    #[test]
    fn repeated_fields_are_packed_or_expanded_as_their_feature_says() {
        assert_eq!(
            to_wire(r#"{"packed": [1, 2], "expanded": [1, 2]}"#),
            Ok(vec![0x42, 0x02, 0x01, 0x02, 0x48, 0x01, 0x48, 0x02])
        );
        // Either encoding is read for either field.
        let expected = Ok(r#"{"packed":[1,2],"expanded":[1,2]}"#);
        assert_eq!(to_json(&[0x40, 0x01, 0x40, 0x02, 0x4a, 0x02, 0x01, 0x02]).as_deref(), expected);
    }

    #[test]
    fn utf8_validation_none_accepts_any_bytes_and_prints_replacements() {
        // raw (11) = "a\xffb": valid for NONE, printed with U+FFFD.
        assert_eq!(to_json(&[0x5a, 0x03, b'a', 0xff, b'b']).as_deref(), Ok("{\"raw\":\"a\u{fffd}b\"}"));
        assert_eq!(validate(&[0x5a, 0x03, b'a', 0xff, b'b']), Ok(()));
        // raw_map (12) {"\xff": "\xfe"}: the map's key and value have its features.
        let map = [0x62, 0x06, 0x0a, 0x01, 0xff, 0x12, 0x01, 0xfe];
        assert_eq!(to_json(&map).as_deref(), Ok("{\"rawMap\":{\"\u{fffd}\":\"\u{fffd}\"}}"));
        assert_eq!(validate(&map), Ok(()));
        // verified (10), VERIFY (the default): an invalid message.
        assert_eq!(to_json(&[0x52, 0x01, 0xff]), Err(502));
        assert_eq!(validate(&[0x52, 0x01, 0xff]), Err(502));
    }

    #[test]
    fn delimited_message_fields_use_the_group_wire_format() {
        let json = r#"{"delimited":{"a":1,"child":{"a":2}},"delimitedList":[{"a":3},{}],"prefixed":{"a":4},"inners":{"k":{"a":5}}}"#;
        let wire = [
            0x6b, 0x08, 0x01, 0x13, 0x08, 0x02, 0x14, 0x6c, // delimited (13) { a: 1, child (2) { a: 2 } }
            0x73, 0x08, 0x03, 0x74, 0x73, 0x74, // delimited_list (14): { a: 3 }, {}
            0x7a, 0x02, 0x08, 0x04, // prefixed (15): length-prefixed
            0x82, 0x01, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x08, 0x05, // inners (16): maps stay length-prefixed
        ];
        assert_eq!(to_wire(json), Ok(wire.to_vec()));
        assert_eq!(to_json(&wire).as_deref(), Ok(json));
        assert_eq!(validate(&wire), Ok(()));
        // Occurrences of a singular delimited field merge, as length-prefixed ones do.
        assert_eq!(
            to_json(&[0x6b, 0x08, 0x01, 0x6c, 0x6b, 0x1a, 0x01, b'x', 0x6c]).as_deref(),
            Ok(r#"{"delimited":{"a":1,"s":"x"}}"#)
        );
    }

    #[test]
    fn delimited_fields_with_the_wrong_framing_are_invalid() {
        for bytes in [
            &[0x6a, 0x02, 0x08, 0x01][..],   // delimited (13) sent length-prefixed
            &[0x7b, 0x08, 0x01, 0x7c],       // prefixed (15) sent as a group
            &[0x6b, 0x08, 0x01],             // unterminated group
            &[0x6b, 0x08, 0x01, 0x7c],       // ended by another field's end-group tag
            &[0x6c],                         // a stray end-group tag
            &[0x6b, 0x13, 0x08, 0x01, 0x6c], // a nested group left open
        ] {
            assert_eq!(to_json(bytes), Err(502), "{bytes:02x?}");
            assert_eq!(validate(bytes), Err(502), "{bytes:02x?}");
        }
    }

    #[test]
    fn groups_nested_past_100_levels_are_refused_without_recursion() {
        // delimited (13) { child (2) { child { … } } }: 101 levels.
        let mut bytes = vec![0x6b];
        bytes.extend(std::iter::repeat_n(0x13, 100));
        bytes.extend(std::iter::repeat_n(0x14, 100));
        bytes.push(0x6c);
        assert_eq!(to_json(&bytes), Err(502));
        assert_eq!(validate(&bytes), Err(502));
        // 99 levels are fine.
        let mut ok = vec![0x6b];
        ok.extend(std::iter::repeat_n(0x13, 98));
        ok.extend(std::iter::repeat_n(0x14, 98));
        ok.push(0x6c);
        assert!(to_json(&ok).is_ok());
    }

    #[test]
    fn proto2_groups_are_transcoded() {
        // syntax = "proto2"; message P { optional group G = 1 { optional int32 a = 2; } repeated group R = 3 { } }
        let group = editions::message("G", vec![editions::field("a", 2, editions::OPTIONAL, editions::INT32, "")]);
        let p = crate::core::schema::descriptor_proto::MessageProto {
            nested: vec![group, editions::message("R", vec![])],
            ..editions::message(
                "P",
                vec![
                    editions::field("g", 1, editions::OPTIONAL, editions::GROUP, ".p2.P.G"),
                    editions::field("r", 3, editions::REPEATED, editions::GROUP, ".p2.P.R"),
                ],
            )
        };
        let file = crate::core::schema::descriptor_proto::FileProto {
            name: "p2.proto".into(),
            package: "p2".into(),
            messages: vec![p],
            syntax: Some("proto2".into()),
            ..Default::default()
        };
        let codec = Codec::new(&load_schema(&editions::encode_set(&[file])).unwrap());
        let index = codec.index_of("p2.P").unwrap();
        let mut wire = Vec::new();
        codec.json_to_binary(index, br#"{"g":{"a":1},"r":[{},{}]}"#, &ParseOptions::default(), &mut wire).unwrap();
        assert_eq!(wire, [0x0b, 0x10, 0x01, 0x0c, 0x1b, 0x1c, 0x1b, 0x1c]);
        let mut json = Vec::new();
        codec.binary_to_json(index, &wire, &PrintOptions::default(), &mut json).unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), r#"{"g":{"a":1},"r":[{},{}]}"#);
    }
}
