//! The configuration's top-level JSON object, read with `proto_descriptor_bin` decoded straight
//! from the text. As a JSON string value it would be a second copy of the largest part of the
//! text (1.1 MB of base64 for a 200-service API), held with the text and the decoded bytes at
//! once in every VM that configures (a VM's linear memory grows to its peak and never shrinks).
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{decode_base64, snake_case};

/// A `proto_descriptor_bin` value (under either spelling of the key).
#[derive(Debug, PartialEq)]
pub(super) enum Descriptor {
    /// `null`: as if absent.
    Null,
    Bytes(Vec<u8>),
    /// A string that is not base64.
    NotBase64,
    /// Not a string: its JSON type, for the error.
    Other(&'static str),
}

/// The object's keys (as `serde_json` reads them; a non-null `proto_descriptor_bin` with the
/// placeholder `true`, so it is read in its turn), and each spelling of `proto_descriptor_bin`
/// given, with its value. `None`: the text is JSON but not an object.
pub(super) struct TopLevel {
    pub map: Map<String, Value>,
    pub descriptors: Vec<(String, Descriptor)>,
}

pub(super) fn parse(text: &[u8]) -> serde_json::Result<Option<TopLevel>> {
    Ok(serde_json::from_slice::<MaybeTopLevel>(text)?.0)
}

struct MaybeTopLevel(Option<TopLevel>);

impl<'de> Deserialize<'de> for MaybeTopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopLevelVisitor).map(MaybeTopLevel)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = Option<TopLevel>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut top = TopLevel { map: Map::new(), descriptors: Vec::new() };
        while let Some(key) = access.next_key::<String>()? {
            if snake_case(&key) == "proto_descriptor_bin" {
                let value = access.next_value::<Descriptor>()?;
                // A key given twice in the text: the last one wins, as for the other keys.
                top.descriptors.retain(|(k, _)| *k != key);
                match value {
                    Descriptor::Null => top.map.remove(&key),
                    _ => top.map.insert(key.clone(), Value::Bool(true)),
                };
                top.descriptors.push((key, value));
            } else {
                let value = access.next_value::<Value>()?;
                top.map.insert(key, value);
            }
        }
        Ok(Some(top))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl<'de> Deserialize<'de> for Descriptor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DescriptorVisitor)
    }
}

struct DescriptorVisitor;

impl<'de> Visitor<'de> for DescriptorVisitor {
    type Value = Descriptor;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a base64 string")
    }

    /// Borrowed from the text when it has no escapes (base64 never needs one); else from the
    /// parser's scratch buffer. Either way only the decoded bytes are allocated.
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Descriptor, E> {
        Ok(decode_base64(text.trim()).map_or(Descriptor::NotBase64, Descriptor::Bytes))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Descriptor, E> {
        Ok(Descriptor::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Descriptor, E> {
        Ok(Descriptor::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Descriptor, E> {
        Ok(Descriptor::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Descriptor, E> {
        Ok(Descriptor::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Descriptor, E> {
        Ok(Descriptor::Other("a number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Descriptor, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Descriptor::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Descriptor, A::Error> {
        while access.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Descriptor::Other("an object"))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn descriptors(text: &str) -> Vec<(String, Descriptor)> {
        parse(text.as_bytes()).unwrap().unwrap().descriptors
    }

    #[test]
    fn the_descriptor_is_decoded_and_kept_apart_from_the_other_keys() {
        let top = parse(br#"{"services": ["a.B"], "proto_descriptor_bin": " AAEC "}"#).unwrap().unwrap();
        assert_eq!(top.descriptors, [("proto_descriptor_bin".to_string(), Descriptor::Bytes(vec![0, 1, 2]))]);
        assert_eq!(top.map.keys().collect::<Vec<_>>(), ["proto_descriptor_bin", "services"]);
        assert_eq!(top.map["proto_descriptor_bin"], Value::Bool(true));
    }

    #[test]
    fn escaped_text_is_decoded_too() {
        assert_eq!(descriptors(r#"{"protoDescriptorBin": "AA\u0045C"}"#)[0].1, Descriptor::Bytes(vec![0, 1, 2]));
    }

    #[test]
    fn each_kind_of_value() {
        for (value, expected) in [
            ("null", Descriptor::Null),
            ("\"not base64!\"", Descriptor::NotBase64),
            ("true", Descriptor::Other("a boolean")),
            ("-1", Descriptor::Other("a number")),
            ("1.5", Descriptor::Other("a number")),
            ("[\"AAEC\"]", Descriptor::Other("an array")),
            ("{\"a\": [1]}", Descriptor::Other("an object")),
        ] {
            assert_eq!(descriptors(&format!(r#"{{"proto_descriptor_bin": {value}}}"#))[0].1, expected, "{value}");
        }
    }

    #[test]
    fn a_key_repeated_in_the_text_keeps_its_last_value_and_both_spellings_are_kept() {
        let d = descriptors(
            r#"{"proto_descriptor_bin": "AA", "protoDescriptorBin": "AAEC", "proto_descriptor_bin": "AAE"}"#,
        );
        assert_eq!(
            d,
            [
                ("protoDescriptorBin".to_string(), Descriptor::Bytes(vec![0, 1, 2])),
                ("proto_descriptor_bin".to_string(), Descriptor::Bytes(vec![0, 1])),
            ]
        );
    }

    #[test]
    fn not_an_object() {
        for text in ["[1, {}]", "null", "true", "3", "\"x\""] {
            assert!(parse(text.as_bytes()).unwrap().is_none(), "{text}");
        }
        assert!(parse(b"{} x").is_err());
        assert!(parse(b"{\"proto_descriptor_bin\": \"AA").is_err());
    }
}
