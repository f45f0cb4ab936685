//! The configuration read in pieces: every VM that configures holds what it reads, and a VM's
//! linear memory never shrinks below its peak. The text is mostly the descriptor set in base64
//! (4/3 of the set; a set built with `--include_source_info`, as Envoy's docs show, is twice as
//! large again), so each piece is copied except the top-level `proto_descriptor_bin` string,
//! which is decoded as it arrives: the VM holds the set, never the text (2.38 MB of text became
//! 1.79 MB of set for the 200-service API with comments).
//!
//! Only the plain case is read this way: a value with an escape or whitespace, both base64
//! alphabets, anything but trailing padding, or a key spelled with an escape ends it with
//! [`Unusual`], and the caller reads the whole text as before; so does any text that does not
//! parse (its error names a line and column of the whole text). What is read this way must
//! configure exactly as the whole text does: each decoded value is put back where its (now empty)
//! string is, and a value found anywhere else ends it too.
use std::ops::Range;

use base64::Engine;

use super::top_level::{self, Descriptor};
use super::{Config, ConfigError};

/// This text is not read in pieces: read it whole.
#[derive(Debug, PartialEq, Eq)]
pub struct Unusual;

/// Base64 decoded per run of this many characters.
const RUN: usize = 4096;

/// Keys whose string value is decoded as it is read.
const KEYS: [&[u8]; 2] = [b"proto_descriptor_bin", b"protoDescriptorBin"];

/// A configuration being read, piece by piece ([`Pieces::push`]), then [`Pieces::finish`]ed.
#[derive(Debug, Default)]
pub struct Pieces {
    /// The text with each decoded value's string left empty.
    text: Vec<u8>,
    /// Each decoded value: where its empty string is in `text` (after the opening quote).
    values: Vec<(usize, Vec<u8>)>,
    /// The total size of the text (the host says it), to size a value's buffer once.
    total: usize,
    /// How much of it was pushed.
    read: usize,
    lexer: Lexer,
    /// The value being decoded.
    value: Option<Value>,
    /// A piece was [`Unusual`].
    failed: bool,
}

#[derive(Debug, Default)]
struct Lexer {
    depth: usize,
    /// The text is a JSON object (only its own keys matter).
    object: bool,
    in_string: bool,
    escaped: bool,
    /// The string being read is a key of the top-level object; its bytes while they may still
    /// be one of [`KEYS`].
    key: Option<Vec<u8>>,
    /// The last top-level key was one of [`KEYS`], and its `:` was read.
    descriptor_next: bool,
    key_matched: bool,
    /// After a top-level `:`, before the value's end (`,` or `}`).
    after_colon: bool,
}

#[derive(Debug, Default)]
struct Value {
    set: Vec<u8>,
    /// Characters not decoded yet (URL-safe ones as standard), fewer than [`RUN`] + 4.
    pending: Vec<u8>,
    standard: bool,
    url_safe: bool,
    padding: bool,
}

impl Pieces {
    /// `total`: the text's size, as the host gives it.
    pub fn new(total: usize) -> Pieces {
        Pieces { total, ..Pieces::default() }
    }

    /// The next piece of the text.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), Unusual> {
        let pushed = self.read_piece(piece);
        self.failed |= pushed.is_err();
        pushed
    }

    fn read_piece(&mut self, piece: &[u8]) -> Result<(), Unusual> {
        let base = self.read;
        self.read = self.read.saturating_add(piece.len());
        let mut copied = 0;
        for (i, &byte) in piece.iter().enumerate() {
            if let Some(value) = &mut self.value {
                if byte == b'"' {
                    let value = self.value.take().unwrap_or_default();
                    self.values.push((self.text.len(), value.finish()?));
                    copied = i;
                    self.lexer.in_string = false;
                    self.lexer.after_colon = false;
                    continue;
                }
                value.push(byte)?;
                continue;
            }
            if self.lexer.starts_descriptor(byte) {
                // One set: a key given twice, or both spellings, is read whole (each value
                // would be sized for the rest of the text).
                if !self.values.is_empty() {
                    return Err(Unusual);
                }
                // Copy up to and with the opening quote; the value's characters are decoded.
                self.text.extend_from_slice(piece.get(copied..=i).ok_or(Unusual)?);
                copied = i + 1;
                let remaining = self.total.saturating_sub(base + i + 1);
                let mut value = Value::default();
                // At most this many bytes: sized once (grown by doubling, the copy and the
                // original would be held at once). `total` is the host's word: a size it cannot
                // have is not reserved (the read then ends short and the text is read whole).
                let _ = value.set.try_reserve_exact(remaining / 4 * 3 + 3);
                self.value = Some(value);
            }
        }
        if self.value.is_none() {
            self.text.extend_from_slice(piece.get(copied..).ok_or(Unusual)?);
        }
        Ok(())
    }

    /// The configuration, if the text was read whole in pieces and is plain (see the module).
    pub fn finish(self) -> Result<Result<Config, ConfigError>, Unusual> {
        if self.failed || self.value.is_some() || self.read != self.total {
            return Err(Unusual);
        }
        let Ok(Some(mut top)) = top_level::parse(&self.text) else { return Err(Unusual) };
        let mut values = self.values.into_iter().peekable();
        for (_, descriptor) in &mut top.descriptors {
            match descriptor {
                Descriptor::InText(range) if range.start == range.end => {
                    let Some((_, set)) = values.next_if(|(at, _)| *at == range.start) else { return Err(Unusual) };
                    *descriptor = Descriptor::Bytes(set);
                }
                Descriptor::InText(_) | Descriptor::Bytes(_) | Descriptor::NotBase64 => return Err(Unusual),
                Descriptor::Null | Descriptor::Other(_) => {}
            }
        }
        if values.next().is_some() {
            return Err(Unusual);
        }
        Ok(Config::from_top_level(top))
    }
}

impl Lexer {
    /// Reads `byte`; true when it opens the string value of a top-level [`KEYS`] key.
    fn starts_descriptor(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
                // A key with an escape is read as it is: not one of KEYS here.
                self.key = None;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                if let Some(key) = self.key.take() {
                    self.key_matched = KEYS.contains(&key.as_slice());
                }
            } else if let Some(key) = &mut self.key {
                key.push(byte);
                if key.len() > KEYS.iter().map(|k| k.len()).max().unwrap_or(0) {
                    self.key = None;
                }
            }
            return false;
        }
        let top = self.object && self.depth == 1;
        match byte {
            b'"' => {
                self.in_string = true;
                if top && !self.after_colon {
                    self.key = Some(Vec::new());
                    self.key_matched = false;
                } else if top && self.descriptor_next {
                    self.descriptor_next = false;
                    return true;
                }
            }
            b'{' | b'[' => {
                if self.depth == 0 {
                    self.object = byte == b'{';
                }
                self.depth = self.depth.saturating_add(1);
                self.descriptor_next = false;
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth <= 1 {
                    self.after_colon = self.depth == 1;
                }
                if self.depth == 0 {
                    self.after_colon = false;
                }
            }
            b':' if top => {
                self.after_colon = true;
                self.descriptor_next = self.key_matched;
                self.key_matched = false;
            }
            b',' if top => {
                self.after_colon = false;
                self.descriptor_next = false;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => self.descriptor_next = false,
        }
        false
    }
}

impl Value {
    fn push(&mut self, byte: u8) -> Result<(), Unusual> {
        let byte = match byte {
            b'=' => {
                self.padding = true;
                b'='
            }
            _ if self.padding => return Err(Unusual),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => byte,
            b'+' | b'/' => {
                self.standard = true;
                byte
            }
            b'-' => {
                self.url_safe = true;
                b'+'
            }
            b'_' => {
                self.url_safe = true;
                b'/'
            }
            _ => return Err(Unusual),
        };
        if self.standard && self.url_safe {
            return Err(Unusual);
        }
        self.pending.push(byte);
        if self.pending.len() >= RUN + 4 {
            self.decode(0..RUN)?;
        }
        Ok(())
    }

    /// Decodes `pending[range]` (whole 4-character groups but at the end) onto the set.
    fn decode(&mut self, range: Range<usize>) -> Result<(), Unusual> {
        let run = self.pending.get(range.clone()).ok_or(Unusual)?;
        let engine = super::base64_engine("");
        let mut out = [0u8; RUN / 4 * 3 + 3];
        let n = engine.decode_slice(run, &mut out).map_err(|_| Unusual)?;
        self.set.extend_from_slice(out.get(..n).ok_or(Unusual)?);
        self.pending.drain(range);
        Ok(())
    }

    /// The decoded set: what `decode_base64` makes of the whole string.
    fn finish(mut self) -> Result<Vec<u8>, Unusual> {
        // (The last run holds the padding, if any: it is decoded whole, as the text would be.)
        self.decode(0..self.pending.len())?;
        self.set.shrink_to_fit();
        Ok(self.set)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// `text` read by `Config::from_pieces` in pieces of `size` bytes, and whether it was read
    /// in pieces (not whole after an [`Unusual`] piece).
    fn in_pieces(text: &str, size: usize) -> (Result<Config, ConfigError>, bool) {
        let mut whole = false;
        let config = Config::from_pieces_of(size, text.len(), |start, len| {
            whole |= len == usize::MAX;
            text.as_bytes().get(start..start + len.min(text.len() - start)).map(<[u8]>::to_vec)
        });
        (config, !whole)
    }

    fn same(text: &str) -> bool {
        let expected = format!("{:?}", Config::from_json(text.as_bytes()));
        let mut pieced = true;
        for size in [1, 2, 3, 5, 7, 64, 4095, 4096, 4097, 1 << 16] {
            let (config, in_pieces) = in_pieces(text, size);
            assert_eq!(format!("{config:?}"), expected, "pieces of {size}: {text}");
            pieced &= in_pieces || size >= text.len();
        }
        pieced
    }

    const SET: &str = "CgNhLnByb3RvEgFh"; // a set-like run of base64

    #[test]
    fn a_plain_configuration_is_read_in_pieces_as_it_is_read_whole() {
        let long: String = SET.repeat(1000);
        for text in [
            format!(r#"{{"proto_descriptor_bin": "{long}", "services": ["a.B"]}}"#),
            format!(r#"{{"services": ["a.B"], "protoDescriptorBin":"{SET}"}}"#),
            format!(
                r#"{{"print_options": {{"add_whitespace": true}}, "proto_descriptor_bin": "{SET}", "services": "a.B"}}"#
            ),
            // Padding, both alphabets alone, an empty value, a key in a nested object.
            format!(r#"{{"proto_descriptor_bin": "{SET}AA==", "services": ["a.B"]}}"#),
            r#"{"proto_descriptor_bin": "-_-_", "services": ["a.B"]}"#.to_string(),
            r#"{"proto_descriptor_bin": "+/+/", "services": ["a.B"]}"#.to_string(),
            r#"{"proto_descriptor_bin": "", "services": ["a.B"]}"#.to_string(),
            format!(
                r#"{{"json2grpc": {{"x": {{"proto_descriptor_bin": "{SET}"}}}}, "proto_descriptor_bin": "{SET}"}}"#
            ),
            format!(r#"{{"proto_descriptor_bin": null, "protoDescriptorBin": "{SET}", "services": ["a.B"]}}"#),
            format!(r#"{{"services": ["a\"proto_descriptor_bin\":\""], "proto_descriptor_bin": "{SET}"}}"#),
        ] {
            assert!(same(&text), "read whole: {text}");
        }
    }

    #[test]
    fn an_unusual_configuration_is_read_whole_with_the_same_result() {
        for text in [
            // Escapes, whitespace, both alphabets, padding mid-text, not base64.
            format!(r#"{{"proto_descriptor_bin": "{SET}\u0041AAA", "services": ["a.B"]}}"#),
            format!(r#"{{"proto_descriptor_bin": " {SET} ", "services": ["a.B"]}}"#),
            r#"{"proto_descriptor_bin": "+/-_", "services": ["a.B"]}"#.to_string(),
            format!(r#"{{"proto_descriptor_bin": "AA=={SET}", "services": ["a.B"]}}"#),
            r#"{"proto_descriptor_bin": "A", "services": ["a.B"]}"#.to_string(),
            r#"{"proto_descriptor_bin": "A!", "services": ["a.B"]}"#.to_string(),
            // The key twice, another spelling, an escaped key.
            format!(r#"{{"proto_descriptor_bin": "AAAA", "proto_descriptor_bin": "{SET}", "services": ["a.B"]}}"#),
            format!(r#"{{"proto_descriptorBin": "{SET}", "services": ["a.B"]}}"#),
            format!(r#"{{"proto\u005fdescriptor_bin": "{SET}", "services": ["a.B"]}}"#),
            // Not JSON, not an object, cut off.
            format!(r#"{{"proto_descriptor_bin": "{SET}", }}"#),
            format!(r#"["proto_descriptor_bin", "{SET}"]"#),
            format!(r#"{{"proto_descriptor_bin": "{SET}"#),
            String::new(),
        ] {
            same(&text);
        }
    }

    #[test]
    fn a_host_that_misstates_the_size_gets_the_whole_text_read() {
        let text = format!(r#"{{"services": ["a.B"], "proto_descriptor_bin": "{SET}"}}"#);
        let expected = format!("{:?}", Config::from_json(text.as_bytes()));
        let read = |start: usize, len: usize| {
            let len = len.min(text.len().saturating_sub(start));
            text.as_bytes().get(start..start + len).map(<[u8]>::to_vec)
        };
        // Larger than the text (a size no buffer can have is not reserved), smaller.
        for total in [usize::MAX, isize::MAX as usize, text.len() + 1, text.len() - 1, 10] {
            assert_eq!(format!("{:?}", Config::from_pieces_of(8, total, read)), expected, "total {total}");
        }
        // Smaller, and what follows makes it invalid: the text the host has is read.
        let trailing = format!("{text} trailing");
        let read = |start: usize, len: usize| {
            let len = len.min(trailing.len().saturating_sub(start));
            trailing.as_bytes().get(start..start + len).map(<[u8]>::to_vec)
        };
        let expected = format!("{:?}", Config::from_json(trailing.as_bytes()));
        assert!(expected.contains("trailing characters"), "{expected}");
        assert_eq!(format!("{:?}", Config::from_pieces_of(8, text.len(), read)), expected);
    }

    #[test]
    fn a_short_read_is_read_again_whole() {
        let text = format!(r#"{{"proto_descriptor_bin": "{SET}", "services": ["a.B"]}}"#);
        let mut calls = Vec::new();
        let config = Config::from_pieces_of(8, text.len(), |start, len| {
            calls.push((start, len));
            // The host fails the second piece.
            (calls.len() != 2).then(|| text.as_bytes()[start..start + len.min(text.len() - start)].to_vec())
        });
        assert_eq!(format!("{config:?}"), format!("{:?}", Config::from_json(text.as_bytes())));
        assert_eq!(calls.last(), Some(&(0, usize::MAX)), "{calls:?}");
    }
}
