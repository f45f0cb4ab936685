//! A header map read with one host call and written back with one. Every host call is a
//! crossing between V8 and Envoy (and each read is two: Envoy calls back into the VM to
//! allocate the result), which for a small request costs as much as transcoding it; reading
//! four headers and editing seven one by one took eleven.
//!
//! The map stays in the bytes the host wrote: names and values are ranges of that buffer, and
//! a header set here appends its bytes to it. A request's three maps used to cost two
//! allocations per header (about 40 per request) plus their frees, a third of the filter's
//! own Wasm time on a small request (callgrind of the callback loop).
use std::borrow::Cow;
use std::ops::Range;

use super::host::{self, Map};

pub struct Headers {
    map: Map,
    /// The host's encoding of the map, then the names and values set since.
    bytes: Vec<u8>,
    /// Each header's name and value, in order, as ranges of `bytes`.
    entries: Vec<(Range<usize>, Range<usize>)>,
    changed: bool,
}

impl Headers {
    /// The map as Envoy holds it now (empty if it is not available in this callback).
    pub fn read(map: Map) -> Headers {
        Headers::from_bytes(map, host::header_map_bytes(map))
    }

    /// A map from its ABI encoding.
    pub fn from_bytes(map: Map, bytes: Vec<u8>) -> Headers {
        let entries = host::pair_spans(&bytes);
        Headers { map, bytes, entries, changed: false }
    }

    fn slice(&self, range: &Range<usize>) -> &[u8] {
        self.bytes.get(range.clone()).unwrap_or_default()
    }

    /// Every (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|(k, v)| (self.slice(k), self.slice(v)))
    }

    /// The first value of `name` (Envoy's keys are lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// The first value of `name` as text (lossy for non-UTF-8 bytes).
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The first value of `name` as text, borrowed when it is UTF-8.
    pub fn get_text(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(String::from_utf8_lossy)
    }

    /// Appends `data` to the buffer; the range it occupies.
    fn append(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }

    /// Replaces every value of `name` with `value` (added at the end if absent).
    pub fn set(&mut self, name: &str, value: &[u8]) {
        let name_bytes = name.as_bytes();
        let first = self.entries.iter().position(|(k, _)| self.slice(k).eq_ignore_ascii_case(name_bytes));
        let value = self.append(value);
        match first {
            Some(first) => {
                if let Some((_, v)) = self.entries.get_mut(first) {
                    *v = value;
                }
                let bytes = &self.bytes;
                let mut index = 0usize;
                self.entries.retain(|(k, _)| {
                    index += 1;
                    index - 1 == first || !bytes.get(k.clone()).unwrap_or_default().eq_ignore_ascii_case(name_bytes)
                });
            }
            None => {
                let key = self.append(name_bytes);
                self.entries.push((key, value));
            }
        }
        self.changed = true;
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.retain_names(|k| !k.eq_ignore_ascii_case(name.as_bytes()));
    }

    /// Keeps only the headers whose (lower-case) name `keep` accepts.
    pub fn retain_names(&mut self, keep: impl Fn(&[u8]) -> bool) {
        let before = self.entries.len();
        let bytes = &self.bytes;
        self.entries.retain(|(k, _)| keep(bytes.get(k.clone()).unwrap_or_default()));
        self.changed |= self.entries.len() != before;
    }

    /// The map in the ABI's encoding: count, (name length, value length) pairs, then each
    /// name and value followed by a NUL.
    fn encode(&self) -> Vec<u8> {
        let size = 4 + self.iter().map(|(k, v)| 10 + k.len() + v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        out.extend_from_slice(&len(self.entries.len()));
        for (k, v) in self.iter() {
            out.extend_from_slice(&len(k.len()));
            out.extend_from_slice(&len(v.len()));
        }
        for (k, v) in self.iter() {
            out.extend_from_slice(k);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    /// Writes the edited map back in one call; true if nothing changed or the host took it.
    pub fn write(&self) -> bool {
        !self.changed || host::set_header_map_bytes(self.map, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::from_bytes(Map::RequestHeaders, Vec::new());
        for (k, v) in pairs {
            let key = h.append(k.as_bytes());
            let value = h.append(v.as_bytes());
            h.entries.push((key, value));
        }
        h
    }

    fn pairs(h: &Headers) -> Vec<(String, String)> {
        h.iter().map(|(k, v)| (String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v).into())).collect()
    }

    #[test]
    fn edits_keep_order_and_round_trip_through_the_encoding() {
        let mut h = map(&[(":path", "/a"), ("te", "x"), ("accept", "1"), ("te", "y"), ("content-length", "3")]);
        h.set("te", b"trailers");
        h.set("content-type", b"application/grpc");
        h.remove("content-length");
        h.set(":path", b"/pkg.S/M");
        let want = [(":path", "/pkg.S/M"), ("te", "trailers"), ("accept", "1"), ("content-type", "application/grpc")];
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(pairs(&h), want);
        assert!(h.changed);
        let back = Headers::from_bytes(Map::RequestHeaders, h.encode());
        assert_eq!(pairs(&back), want);
        assert_eq!(back.get("CONTENT-TYPE"), Some(&b"application/grpc"[..]));
        assert_eq!(back.get_text("accept").as_deref(), Some("1"));
        assert_eq!(back.get("content-length"), None);
    }

    #[test]
    fn removing_an_absent_header_changes_nothing() {
        let mut h = map(&[("a", "1")]);
        h.remove("b");
        assert!(!h.changed);
    }

    #[test]
    fn malformed_encodings_read_as_far_as_they_hold() {
        // A count the bytes cannot hold: nothing (and nothing reserved for it).
        assert_eq!(Headers::from_bytes(Map::RequestHeaders, vec![255, 255, 255, 255]).entries.len(), 0);
        // One pair whose value runs past the end.
        let cut = [1, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, b'a', 0, b'x'];
        assert_eq!(Headers::from_bytes(Map::RequestHeaders, cut.to_vec()).entries.len(), 0);
        // Two pairs, the second cut short: the first one stays.
        let mut two = vec![2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0];
        two.extend_from_slice(b"a\x001\x00b\x00xy");
        assert_eq!(pairs(&Headers::from_bytes(Map::RequestHeaders, two)), [("a".to_string(), "1".to_string())]);
    }
}
