//! A header map read with one host call and written back with one. Every host call is a
//! crossing between V8 and Envoy (and each read is two: Envoy calls back into the VM to
//! allocate the result), which for a small request costs as much as transcoding it; reading
//! four headers and editing seven one by one took eleven.
use super::host::{self, Map};

pub struct Headers {
    map: Map,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    changed: bool,
}

impl Headers {
    /// The map as Envoy holds it now (empty if it is not available in this callback).
    pub fn read(map: Map) -> Headers {
        Headers { map, pairs: host::headers(map), changed: false }
    }

    /// The first value of `name` (Envoy's keys are lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text (lossy for non-UTF-8 bytes).
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn pairs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.pairs
    }

    /// Replaces every value of `name` with `value` (added at the end if absent).
    pub fn set(&mut self, name: &str, value: &[u8]) {
        match self.pairs.iter().position(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())) {
            Some(first) => {
                if let Some((_, v)) = self.pairs.get_mut(first) {
                    *v = value.to_vec();
                }
                let mut index = 0usize;
                self.pairs.retain(|(k, _)| {
                    index += 1;
                    index - 1 == first || !k.eq_ignore_ascii_case(name.as_bytes())
                });
            }
            None => self.pairs.push((name.as_bytes().to_vec(), value.to_vec())),
        }
        self.changed = true;
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        let before = self.pairs.len();
        self.pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(name.as_bytes()));
        self.changed |= self.pairs.len() != before;
    }

    /// Keeps only the headers whose (lower-case) name `keep` accepts.
    pub fn retain_names(&mut self, keep: impl Fn(&[u8]) -> bool) {
        let before = self.pairs.len();
        self.pairs.retain(|(k, _)| keep(k));
        self.changed |= self.pairs.len() != before;
    }

    /// Writes the edited map back in one call; true if nothing changed or the host took it.
    pub fn write(&self) -> bool {
        !self.changed || host::set_headers(self.map, &self.pairs)
    }
}
