//! The fast path: JSON ⇄ protobuf wire format straight from tokens to bytes, with per-message
//! plans compiled once per configuration. The reflection path (prost-reflect) stays the
//! reference; a differential test keeps both in agreement.
pub mod decode;
pub mod encode;
pub mod plan;
pub mod reader;
pub mod validate;
pub mod wire;
pub mod wkt_text;

use super::config::PrintOptions;
use super::error::Result;
use super::json::ParseOptions;
use super::schema::Schema;
pub use decode::OutputLimit;
use plan::Plans;

/// The fast JSON ⇄ binary codec for one schema.
#[derive(Debug, Default)]
pub struct Codec {
    plans: Plans,
}

impl Codec {
    pub fn new(schema: &Schema) -> Codec {
        Codec { plans: Plans::build(schema) }
    }

    /// The codec of a prost-reflect pool (the reflection path's tests and tools).
    #[cfg(feature = "reflection")]
    pub fn from_pool(pool: &prost_reflect::DescriptorPool) -> std::result::Result<Codec, String> {
        let files = super::descriptor_proto::decode_file_set(&pool.encode_to_vec())?;
        Ok(Codec::new(&Schema::link(&files)?))
    }

    /// The plan index of a message type, if the fast path handles it.
    #[cfg(feature = "reflection")]
    pub fn index(&self, desc: &prost_reflect::MessageDescriptor) -> Option<usize> {
        self.index_of(desc.full_name())
    }

    /// The plan index of a message type by full name, if the fast path handles it.
    pub fn index_of(&self, full_name: &str) -> Option<usize> {
        let index = self.plans.index_of(full_name)?;
        self.supported(index).then_some(index)
    }

    /// Whether the fast path handles the message with plan (= schema) index `index`.
    pub fn supported(&self, index: usize) -> bool {
        self.plans.message(index).is_some_and(|p| p.supported)
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
        let codec = Codec::new(&crate::core::testutil::schema());
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
