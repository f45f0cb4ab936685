//! A JSON tokenizer over a byte slice, built for transcoding: no tree, no allocation for
//! strings without escapes, strict RFC 8259 syntax, a nesting limit, and UTF-8 validation
//! (of the whole input at once: one fast pass instead of one call per string).
use std::borrow::Cow;
use std::collections::HashSet;

use crate::core::error::{Error, Result};

/// A JSON number's text and whether it is written as an integer (no fraction or exponent).
#[derive(Debug, Clone, Copy)]
pub struct Number<'a> {
    pub text: &'a str,
    pub integer: bool,
}

pub struct Reader<'a> {
    /// The input, valid UTF-8; `buf` is the same bytes.
    text: &'a str,
    buf: &'a [u8],
    pos: usize,
    depth: u32,
    max_depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which must be UTF-8 (JSON text is, RFC 8259 §8.1).
    pub fn new(buf: &'a [u8], max_depth: u32) -> Result<Self> {
        let text = std::str::from_utf8(buf)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: invalid UTF-8 at byte {}", e.valid_up_to())))?;
        Ok(Reader { text, buf, pos: 0, depth: 0, max_depth })
    }

    /// `text[start..end]`; both ends are next to ASCII delimiters, so always char boundaries.
    #[inline]
    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or("")
    }

    pub fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::bad_request(format!("invalid JSON body: {what} at byte {}", self.pos))
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Result<u8> {
        self.ws();
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// Only whitespace may remain.
    pub fn end(&mut self) -> Result<()> {
        self.ws();
        if self.pos < self.buf.len() {
            return Err(self.error("trailing characters"));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Error::bad_request(format!("invalid JSON body: nested deeper than {} levels", self.max_depth)));
        }
        Ok(())
    }

    /// Consumes `{`.
    pub fn object_start(&mut self) -> Result<()> {
        if self.peek()? != b'{' {
            return Err(self.error("expected an object"));
        }
        self.pos += 1;
        self.enter()
    }

    /// Consumes the next key and its `:` if the key is written exactly as `quoted` (`"name"`,
    /// the usual case: no escapes); otherwise consumes nothing. Saves scanning and looking up
    /// keys that come in the expected order.
    #[inline]
    pub fn key_is(&mut self, first: &mut bool, quoted: &[u8]) -> bool {
        let b = self.buf;
        let skip_ws = |mut i: usize| {
            while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
                i += 1;
            }
            i
        };
        let mut i = skip_ws(self.pos);
        if !*first {
            if b.get(i) != Some(&b',') {
                return false;
            }
            i = skip_ws(i + 1);
        }
        if !b.get(i..).is_some_and(|rest| rest.starts_with(quoted)) {
            return false;
        }
        i = skip_ws(i + quoted.len());
        if b.get(i) != Some(&b':') {
            return false;
        }
        self.pos = i + 1;
        *first = false;
        true
    }

    /// The next key of an object (and its `:`), or `None` at `}`.
    pub fn next_key(&mut self, first: &mut bool) -> Result<Option<Cow<'a, str>>> {
        let mut b = self.peek()?;
        if b == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(None);
        }
        if !*first {
            if b != b',' {
                return Err(self.error("expected ',' or '}'"));
            }
            self.pos += 1;
            b = self.peek()?;
        }
        *first = false;
        if b != b'"' {
            return Err(self.error("expected a string key"));
        }
        let key = self.string()?;
        if self.peek()? != b':' {
            return Err(self.error("expected ':'"));
        }
        self.pos += 1;
        Ok(Some(key))
    }

    /// Consumes `[`.
    pub fn array_start(&mut self) -> Result<()> {
        if self.peek()? != b'[' {
            return Err(self.error("expected an array"));
        }
        self.pos += 1;
        self.enter()
    }

    /// Whether another element follows (consuming `,`), or `]` was reached.
    pub fn next_element(&mut self, first: &mut bool) -> Result<bool> {
        let b = self.peek()?;
        if b == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        if !*first {
            if b != b',' {
                return Err(self.error("expected ',' or ']'"));
            }
            self.pos += 1;
        }
        *first = false;
        Ok(true)
    }

    /// Consumes `null` if it is next.
    #[inline]
    pub fn null(&mut self) -> Result<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        let end = self.pos.saturating_add(word.len());
        if self.buf.get(self.pos..end) != Some(word) {
            return Err(self.error("invalid literal"));
        }
        self.pos = end;
        Ok(())
    }

    pub fn boolean(&mut self) -> Result<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => Err(self.error("expected true or false")),
        }
    }

    /// A string value; borrowed unless it has escapes.
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return Err(self.error("expected a string"));
        }
        self.pos += 1;
        let start = self.pos;
        let rest = self.buf.get(start..).unwrap_or(&[]);
        let Some(run) = special_byte(rest) else {
            self.pos = self.buf.len();
            return Err(self.error("unterminated string"));
        };
        let end = start + run;
        if rest.get(run) == Some(&b'"') {
            self.pos = end + 1;
            return Ok(Cow::Borrowed(self.slice(start, end)));
        }
        self.pos = end;
        self.escaped_string(start).map(Cow::Owned)
    }

    /// The slow path of [`string`](Self::string): escapes (or a control character).
    fn escaped_string(&mut self, start: usize) -> Result<String> {
        let mut out: Vec<u8> = self.buf.get(start..self.pos).unwrap_or(&[]).to_vec();
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.buf.get(self.pos) else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                0..=0x1f => return Err(self.error("control character in a string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 in a string"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits =
            self.buf.get(self.pos..self.pos.saturating_add(4)).ok_or_else(|| self.error("short \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            v = v << 4 | u32::from(n);
        }
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by an escaped low surrogate.
            if self.buf.get(self.pos..self.pos.saturating_add(2)) != Some(b"\\u") {
                return Err(self.error("lone surrogate in \\u escape"));
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("invalid surrogate pair"));
            }
            0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00..0xE000).contains(&first) {
            return Err(self.error("lone surrogate in \\u escape"));
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    /// A number token (RFC 8259 grammar).
    pub fn number(&mut self) -> Result<Number<'a>> {
        self.ws();
        let start = self.pos;
        let at = |i: usize| self.buf.get(i).copied().unwrap_or(0);
        let mut i = start;
        if at(i) == b'-' {
            i += 1;
        }
        match at(i) {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while at(i).is_ascii_digit() {
                    i += 1;
                }
            }
            _ => return Err(self.error("expected a number")),
        }
        let mut integer = true;
        if at(i) == b'.' {
            integer = false;
            i += 1;
            if !at(i).is_ascii_digit() {
                return Err(self.error("invalid number"));
            }
            while at(i).is_ascii_digit() {
                i += 1;
            }
        }
        if matches!(at(i), b'e' | b'E') {
            integer = false;
            i += 1;
            if matches!(at(i), b'+' | b'-') {
                i += 1;
            }
            if !at(i).is_ascii_digit() {
                return Err(self.error("invalid number"));
            }
            while at(i).is_ascii_digit() {
                i += 1;
            }
        }
        self.pos = i;
        Ok(Number { text: self.slice(start, i), integer })
    }

    /// Skips one value of any type, checking its syntax.
    pub fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            b'{' => {
                self.object_start()?;
                let mut first = true;
                // Skipped objects follow the same rule as read ones: no duplicate keys.
                let mut keys: HashSet<Cow<'a, str>> = HashSet::new();
                while let Some(key) = self.next_key(&mut first)? {
                    if keys.contains(&key) {
                        return Err(Error::bad_request(format!("invalid JSON body: duplicate key \"{key}\"")));
                    }
                    keys.insert(key);
                    self.skip()?;
                }
                Ok(())
            }
            b'[' => {
                self.array_start()?;
                let mut first = true;
                while self.next_element(&mut first)? {
                    self.skip()?;
                }
                Ok(())
            }
            b'"' => self.string().map(drop),
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// A reader over the same input, positioned at `pos` (to read a value twice, as Any needs).
    pub fn fork(&self, pos: usize) -> Reader<'a> {
        Reader { text: self.text, buf: self.buf, pos, depth: self.depth, max_depth: self.max_depth }
    }

    /// Continues after a forked reader finished.
    pub fn resume_at(&mut self, pos: usize) {
        self.pos = pos;
    }
}

/// The index of the first `"`, `\\` or control character: what ends a plain run of a string.
/// Eight bytes at a time (the classic "has a zero byte" word trick; only its lowest hit is
/// exact, and the lowest is the one taken).
#[inline]
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0usize;
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else { break };
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let hits = hits & HIGHS;
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|p| offset + p)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn strings_escapes_and_surrogates() {
        let mut r = Reader::new(br#" "plain" "a\"b\\c\/\n\u00e9\ud83d\ude00" "#, 10).unwrap();
        assert!(matches!(r.string().unwrap(), Cow::Borrowed("plain")));
        assert_eq!(r.string().unwrap(), "a\"b\\c/\né😀");
        r.end().unwrap();
        for bad in [&br#""\ud83d""#[..], br#""\ude00""#, br#""\x""#, b"\"a\nb\"", b"\"\xff\"", br#""abc"#, br#""\u12""#]
        {
            assert!(Reader::new(bad, 10).and_then(|mut r| r.string()).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn numbers() {
        for (text, integer) in [("0", true), ("-12", true), ("1.5", false), ("1e5", false), ("-0.0E-3", false)] {
            let n = Reader::new(text.as_bytes(), 10).unwrap().number().unwrap();
            assert_eq!((n.text, n.integer), (text, integer));
        }
        for bad in ["01", "-", "1.", ".5", "1e", "+1", "1e+"] {
            let mut r = Reader::new(bad.as_bytes(), 10).unwrap();
            assert!(r.number().and_then(|_| r.end()).is_err(), "{bad}");
        }
    }

    #[test]
    fn objects_arrays_and_skipping() {
        let mut r = Reader::new(br#" {"a": [1, {"b": null}, true, "x"], "c": {}} "#, 10).unwrap();
        r.object_start().unwrap();
        let mut first = true;
        assert_eq!(r.next_key(&mut first).unwrap().as_deref(), Some("a"));
        r.skip().unwrap();
        assert_eq!(r.next_key(&mut first).unwrap().as_deref(), Some("c"));
        r.skip().unwrap();
        assert_eq!(r.next_key(&mut first).unwrap(), None);
        r.end().unwrap();
        for bad in
            [&b"{,}"[..], b"{\"a\":1,\"a\":2}", b"{\"a\" 1}", b"{\"a\":1,}", b"[1,]", b"[1 2]", b"{\"a\":tru}", b"nul"]
        {
            assert!(Reader::new(bad, 10).and_then(|mut r| r.skip()).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn special_bytes_are_found_at_every_offset() {
        for len in 0..20 {
            for special in [b'"', b'\\', 0u8, 0x1f] {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    // Bytes that are near the specials in value must not be taken for them.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', b'!', b'#', b'[', b']', 0x20, 0x7f, 0xc3][i % 8];
                    }
                    bytes[at] = special;
                    assert_eq!(special_byte(&bytes), Some(at), "{bytes:?}");
                }
                assert_eq!(special_byte(&vec![b'x'; len]), None);
            }
        }
    }

    #[test]
    fn key_is_matches_only_the_exact_key_and_its_colon() {
        let mut r = Reader::new(br#"{ "a" : 1 , "bb":2, "c\u0063":3, "d" 4}"#, 10).unwrap();
        r.object_start().unwrap();
        let mut first = true;
        assert!(!r.key_is(&mut first, br#""b""#));
        assert!(r.key_is(&mut first, br#""a""#));
        r.skip().unwrap();
        assert!(!r.key_is(&mut first, br#""b""#), "a prefix of the key");
        assert!(r.key_is(&mut first, br#""bb""#));
        r.skip().unwrap();
        assert!(!r.key_is(&mut first, br#""cc""#), "escaped keys take the slow path");
        assert_eq!(r.next_key(&mut first).unwrap().as_deref(), Some("cc"));
        r.skip().unwrap();
        assert!(!r.key_is(&mut first, br#""d""#), "no colon");
    }

    #[test]
    fn invalid_utf8_anywhere_is_refused_up_front() {
        let e = Reader::new(b"{\"a\": 1, \"b\xff\": 2}", 10).err().unwrap();
        assert!(e.message.contains("invalid UTF-8 at byte 11"), "{e}");
    }

    #[test]
    fn depth_limit() {
        assert!(Reader::new(b"[[[1]]]", 3).unwrap().skip().is_ok());
        let e = Reader::new(b"[[[[1]]]]", 3).unwrap().skip().unwrap_err();
        assert!(e.message.contains("nested deeper than 3"), "{e}");
    }
}
