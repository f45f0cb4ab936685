//! The configuration's top-level JSON object, read with `proto_descriptor_bin` kept apart: as a
//! JSON string value it would be a second copy of the largest part of the text (1.1 MB of base64
//! for a 200-service API). Its place in the text is noted instead, and it is decoded from there
//! once the object is read: into a new buffer, or (the filter) into the text's own memory, which
//! then becomes the descriptor set. Every VM that configures holds the text, and a VM's linear
//! memory grows to its peak and never shrinks: the text and the decoded bytes at once would add
//! 0.84 MB to that peak for the 200-service API.
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{decode_base64, snake_case};

/// A `proto_descriptor_bin` value (under either spelling of the key).
#[derive(Debug, PartialEq)]
pub(super) enum Descriptor {
    /// `null`: as if absent.
    Null,
    Bytes(Vec<u8>),
    /// Base64 at these bytes of the text (trimmed), not decoded yet: a string without escapes.
    InText(Range<usize>),
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

/// The object, its descriptors possibly [`Descriptor::InText`].
pub(super) fn parse(text: &[u8]) -> serde_json::Result<Option<TopLevel>> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let top = TopLevelVisitor(TextSpan::of(text)).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(top)
}

impl TopLevel {
    /// Decodes each descriptor still in `text` into a buffer of its own.
    pub fn decode_copies(&mut self, text: &[u8]) {
        for (_, descriptor) in &mut self.descriptors {
            if let Descriptor::InText(range) = descriptor {
                *descriptor = decode(text.get(range.clone()));
            }
        }
    }

    /// Decodes the last descriptor still in `text` in place: `text` becomes its bytes (other
    /// ones, if both spellings were given, get buffers of their own). `text` is left as it was
    /// when no descriptor is in it.
    pub fn decode_in_place(&mut self, text: &mut Vec<u8>) {
        let last = self.descriptors.iter().rposition(|(_, d)| matches!(d, Descriptor::InText(_)));
        for (i, (_, descriptor)) in self.descriptors.iter_mut().enumerate() {
            let Descriptor::InText(range) = descriptor else { continue };
            *descriptor = if Some(i) != last {
                decode(text.get(range.clone()))
            } else if decode_base64_in_place(text, range.clone()) {
                Descriptor::Bytes(std::mem::take(text))
            } else {
                Descriptor::NotBase64
            };
        }
    }
}

fn decode(text: Option<&[u8]>) -> Descriptor {
    let text = text.and_then(|t| std::str::from_utf8(t).ok());
    text.and_then(decode_base64).map_or(Descriptor::NotBase64, Descriptor::Bytes)
}

/// Decodes the base64 at `range` of `buffer` into the buffer's first bytes and shrinks it to
/// them (the rest of the buffer is lost); false if it is not base64 (the buffer is then
/// garbage). The same rules as [`decode_base64`], which decodes in runs of whole 4-character
/// groups here: the `base64` crate's decoder cannot write over its input, and the output of a
/// run is never longer than the input it consumed, so it never overtakes what is still unread.
fn decode_base64_in_place(buffer: &mut Vec<u8>, range: Range<usize>) -> bool {
    const RUN: usize = 4096;
    let Some(text) = buffer.get(range.clone()).and_then(|t| std::str::from_utf8(t).ok()) else { return false };
    let engine = super::base64_engine(text);
    let mut out = [0u8; RUN / 4 * 3];
    let (mut read, mut written) = (range.start, 0);
    while read < range.end {
        let end = range.end.min(read + RUN);
        let Some(run) = buffer.get(read..end) else { return false };
        // Padding only at the very end (a run ending in `==` would otherwise be accepted mid-text).
        if end < range.end && run.contains(&b'=') {
            return false;
        }
        let Ok(n) = base64::Engine::decode_slice(engine, run, &mut out) else { return false };
        let (Some(to), Some(from)) = (buffer.get_mut(written..written + n), out.get(..n)) else { return false };
        to.copy_from_slice(from);
        (read, written) = (end, written + n);
    }
    buffer.truncate(written);
    buffer.shrink_to_fit();
    true
}

/// Where the text is in memory: a string value borrowed from it is found by its address.
#[derive(Clone, Copy)]
struct TextSpan {
    start: usize,
    len: usize,
}

impl TextSpan {
    fn of(text: &[u8]) -> TextSpan {
        TextSpan { start: text.as_ptr() as usize, len: text.len() }
    }

    /// The range of `part` in the text, if it is part of it.
    fn range_of(self, part: &str) -> Option<Range<usize>> {
        let start = (part.as_ptr() as usize).checked_sub(self.start)?;
        let end = start.checked_add(part.len())?;
        (end <= self.len).then_some(start..end)
    }
}

struct TopLevelVisitor(TextSpan);

impl<'de> DeserializeSeed<'de> for TopLevelVisitor {
    type Value = Option<TopLevel>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = Option<TopLevel>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut top = TopLevel { map: Map::new(), descriptors: Vec::new() };
        while let Some(key) = access.next_key::<String>()? {
            if snake_case(&key) == "proto_descriptor_bin" {
                let value = access.next_value_seed(DescriptorVisitor(self.0))?;
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

struct DescriptorVisitor(TextSpan);

impl<'de> DeserializeSeed<'de> for DescriptorVisitor {
    type Value = Descriptor;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DescriptorVisitor {
    type Value = Descriptor;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a base64 string")
    }

    /// Borrowed from the text when it has no escapes (base64 never needs one): decoded later.
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Descriptor, E> {
        match self.0.range_of(text.trim()) {
            Some(range) => Ok(Descriptor::InText(range)),
            None => self.visit_str(text),
        }
    }

    /// With escapes, from the parser's scratch buffer: decoded now.
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
        let mut top = parse(text.as_bytes()).unwrap().unwrap();
        top.decode_copies(text.as_bytes());
        top.descriptors
    }

    /// What `decode_in_place` makes of `text`: the descriptors, and what is left of the text.
    fn in_place(text: &str) -> (Vec<(String, Descriptor)>, Vec<u8>) {
        let mut text = text.as_bytes().to_vec();
        let mut top = parse(&text).unwrap().unwrap();
        top.decode_in_place(&mut text);
        (top.descriptors, text)
    }

    #[test]
    fn the_descriptor_is_decoded_and_kept_apart_from_the_other_keys() {
        let text = br#"{"services": ["a.B"], "proto_descriptor_bin": " AAEC "}"#;
        let mut top = parse(text).unwrap().unwrap();
        assert_eq!(top.descriptors, [("proto_descriptor_bin".to_string(), Descriptor::InText(48..52))]);
        top.decode_copies(text);
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
    fn in_place_the_text_becomes_the_descriptor_set() {
        let (d, text) = in_place(r#"{"services": ["a.B"], "proto_descriptor_bin": " AAEC "}"#);
        assert_eq!(d, [("proto_descriptor_bin".to_string(), Descriptor::Bytes(vec![0, 1, 2]))]);
        assert!(text.is_empty(), "the bytes were moved out");
        // No descriptor: the text is untouched (live descriptor sources hash it).
        let config = r#"{"services": ["a.B"], "proto_descriptor_bin": null}"#;
        assert_eq!(in_place(config), (vec![("proto_descriptor_bin".to_string(), Descriptor::Null)], config.into()));
        // Both spellings: the other one gets a copy.
        let (d, _) = in_place(r#"{"protoDescriptorBin": "AAEC", "proto_descriptor_bin": "AAE"}"#);
        assert_eq!(
            d,
            [
                ("protoDescriptorBin".to_string(), Descriptor::Bytes(vec![0, 1, 2])),
                ("proto_descriptor_bin".to_string(), Descriptor::Bytes(vec![0, 1])),
            ]
        );
    }

    #[test]
    fn in_place_decoding_is_decode_base64_for_any_length_and_alphabet() {
        // Runs of 4,096 characters: lengths around one and two runs, padded or not, both
        // alphabets; a bad character or padding anywhere, at a run's end included.
        let bytes: Vec<u8> = (0..7000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for len in [0, 1, 2, 3, 3071, 3072, 3073, 3074, 6143, 6144, 6145, 7000] {
            for url_safe in [false, true] {
                let engine = match url_safe {
                    true => base64::engine::general_purpose::URL_SAFE,
                    false => base64::engine::general_purpose::STANDARD,
                };
                let encoded = base64::Engine::encode(&engine, &bytes[..len]);
                let mut variants = vec![encoded.clone(), encoded.trim_end_matches('=').to_string()];
                for at in [0, 4092, 4095, 4096, encoded.len().saturating_sub(1)] {
                    if at < encoded.len() {
                        let mut bad = encoded.clone().into_bytes();
                        bad[at] = b'!';
                        variants.push(String::from_utf8(bad).unwrap());
                    }
                }
                if encoded.len() > 4100 {
                    // Padding that ends the first run: whole, the text is not base64.
                    let mut padded = encoded.clone().into_bytes();
                    padded[4094] = b'=';
                    padded[4095] = b'=';
                    variants.push(String::from_utf8(padded).unwrap());
                }
                for text in variants {
                    let expected = decode_base64(&text).map_or(Descriptor::NotBase64, Descriptor::Bytes);
                    let (d, _) = in_place(&format!(r#"{{"proto_descriptor_bin": "{text}"}}"#));
                    assert_eq!(d[0].1, expected, "length {len}, url_safe {url_safe}: {text:.40}");
                }
            }
        }
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
