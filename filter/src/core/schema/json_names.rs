//! Default JSON names out of a descriptor set, in place. protoc writes every field's
//! `json_name`, though for almost all it is what the link computes from the name (`page_size` →
//! `pageSize`): 105 KB of the 200-service benchmark's 841 KB set. Every worker's VM holds the
//! whole set while it declares the set's types, which is the link's peak and never given back
//! (a Wasm VM's linear memory does not shrink), so the filter removes them first. A `json_name`
//! that differs from the default (`json_name = "x"` in the .proto) is kept.
//!
//! Two passes over the set: the first checks that every rewritten message parses and records
//! each file's and message's new length (in the order the second needs them); the second
//! writes over the set from its start (the output never overtakes the input) and measures each
//! field again. Linear time; the only allocation is one length per file and message.
use crate::core::codec::wire::{fields, read_varint, varint_len, LEN};

/// What a length-delimited field holds, for the fields this rewrite descends into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Set,
    File,
    Message,
    Field,
}

/// `FieldDescriptorProto.name` and `.json_name`.
const NAME: u32 = 1;
const JSON_NAME: u32 = 10;

/// Messages nested deeper than this are copied as they are (the link refuses sets nested
/// deeper than the protobuf runtimes do; this only bounds the recursion).
const MAX_DEPTH: usize = 64;

impl Kind {
    /// What field `number` of a `self` holds, if this rewrite descends into it.
    fn child(self, number: u32) -> Option<Kind> {
        match (self, number) {
            (Kind::Set, 1) => Some(Kind::File),
            // FileDescriptorProto.message_type, .extension.
            (Kind::File, 4) | (Kind::Message, 3) => Some(Kind::Message),
            (Kind::File, 7) => Some(Kind::Field),
            // DescriptorProto.field, .extension.
            (Kind::Message, 2 | 6) => Some(Kind::Field),
            _ => None,
        }
    }
}

/// Removes every field's `json_name` that equals the default JSON name of its name, keeping
/// everything else byte for byte; no change if any message it would rewrite is malformed (the
/// link reports that).
pub fn strip_default_json_names(set: &mut Vec<u8>) {
    let mut lengths = Vec::new();
    match measure(set, Kind::Set, 0, &mut lengths) {
        Some(new_len) if new_len < set.len() => {}
        _ => return,
    }
    let mut next = 0;
    let end = set.len();
    match write(set, 0..end, 0, (Kind::Set, false), 0, (&lengths, &mut next)) {
        Some(written) => {
            set.truncate(written);
            set.shrink_to_fit();
        }
        // Cannot happen (the first pass parsed every byte it rewrites); if it did, a set that
        // cannot link (a field whose length runs past the end), never an empty one, which links.
        None => {
            set.clear();
            set.extend_from_slice(&[0x0a, 0x7f]);
        }
    }
}

/// A `FieldDescriptorProto` once rewritten: its length, and whether its `json_name`s go (it has
/// one name and every `json_name` it has is that name's default).
fn rewrite_field(field: &[u8]) -> Option<(usize, bool)> {
    let mut name = None;
    let mut json_bytes = 0;
    let mut rest = fields(field);
    let mut at = 0;
    let mut keep = false;
    while let Some(f) = rest.next() {
        let f = f.ok()?;
        let end = field.len() - rest.rest().len();
        match (f.number, f.wire_type) {
            (NAME, LEN) if name.is_none() => name = Some(f.value),
            (JSON_NAME, LEN) => json_bytes += end - at,
            (NAME | JSON_NAME, _) => keep = true,
            _ => {}
        }
        at = end;
    }
    if keep {
        return Some((field.len(), false));
    }
    let Some(name) = name.filter(|n| std::str::from_utf8(n).is_ok()) else { return Some((field.len(), false)) };
    let strip = json_bytes > 0
        && fields(field).flatten().filter(|f| f.number == JSON_NAME).all(|j| is_default_json_name(name, j.value));
    Some(if strip { (field.len() - json_bytes, true) } else { (field.len(), false) })
}

/// Whether `json` is [`json_name`](crate::core::schema::json_name) of `name`, compared byte by byte without building it (the
/// same bytes: only ASCII letters change case, and a byte of a multi-byte character is never
/// `_` nor an ASCII letter).
fn is_default_json_name(name: &[u8], json: &[u8]) -> bool {
    let mut upper = false;
    let mut expected = name.iter().filter_map(|&b| match b {
        b'_' => {
            upper = true;
            None
        }
        _ if std::mem::take(&mut upper) => Some(b.to_ascii_uppercase()),
        _ => Some(b),
    });
    json.iter().all(|&b| expected.next() == Some(b)) && expected.next().is_none()
}

/// The length of `message` (a `kind`) once rewritten; pushes the new length of each rewritten
/// file and message it holds (not fields: leaves, measured again by [`write`]), in the order
/// [`write`] reads them (a parent's before its children's).
fn measure(message: &[u8], kind: Kind, depth: usize, lengths: &mut Vec<u32>) -> Option<usize> {
    if kind == Kind::Field {
        return rewrite_field(message).map(|(len, _)| len);
    }
    let mut len = 0;
    let mut rest = fields(message);
    let mut at = 0;
    while let Some(field) = rest.next() {
        let field = field.ok()?;
        let end = message.len() - rest.rest().len();
        let whole = end - at;
        let tag_len = read_varint(message.get(at..)?)?.1;
        at = end;
        let child = kind.child(field.number).filter(|_| field.wire_type == LEN && depth < MAX_DEPTH);
        len += match child {
            Some(child) => {
                let slot = lengths.len();
                if child != Kind::Field {
                    lengths.push(0);
                }
                let inner = measure(field.value, child, depth + 1, lengths)?;
                if child != Kind::Field {
                    *lengths.get_mut(slot)? = u32::try_from(inner).ok()?;
                }
                // The tag as written, then the new length.
                tag_len + varint_len(inner as u64) + inner
            }
            None => whole,
        };
    }
    Some(len)
}

/// Rewrites the `kind` message at `from` (a range of `set` not yet overwritten) to `to`
/// (`to <= from.start`); the end of what it wrote. `strip`: a field's decision, made by the
/// caller; `next`: the next of `lengths` to use.
fn write(
    set: &mut [u8],
    from: std::ops::Range<usize>,
    to: usize,
    (kind, strip): (Kind, bool),
    depth: usize,
    (lengths, next): (&[u32], &mut usize),
) -> Option<usize> {
    let (mut read, mut written) = (from.start, to);
    // Fields kept as they are, from `run` to `read`: copied together.
    let mut run = read;
    let flush = |set: &mut [u8], run: usize, read: usize, written: &mut usize| {
        if *written != run {
            set.copy_within(run..read, *written);
        }
        *written += read - run;
    };
    while read < from.end {
        // Parsed from the bytes not yet overwritten (everything at or after `read`).
        let rest = set.get(read..from.end)?;
        let mut one = fields(rest);
        let field = one.next()?.ok()?;
        let (number, wire_type, value_len) = (field.number, field.wire_type, field.value.len());
        let whole = rest.len() - one.rest().len();
        let tag_len = read_varint(rest)?.1;
        let child = kind.child(number).filter(|_| wire_type == LEN && depth < MAX_DEPTH);
        match child {
            _ if strip && number == JSON_NAME => flush(set, run, read, &mut written),
            Some(child) => {
                flush(set, run, read, &mut written);
                let payload = read + whole - value_len..read + whole;
                let (new_len, strip) = match child {
                    // A leaf: decided and measured here (most rewritten messages are fields).
                    Kind::Field => rewrite_field(set.get(payload.clone())?)?,
                    _ => {
                        *next += 1;
                        (usize::try_from(*lengths.get(*next - 1)?).ok()?, false)
                    }
                };
                let mut prefix = [0u8; 20];
                let tag = set.get(read..read + tag_len)?;
                prefix.get_mut(..tag_len)?.copy_from_slice(tag);
                let mut len = new_len as u64;
                let mut at = tag_len;
                loop {
                    let more = len >= 0x80;
                    *prefix.get_mut(at)? = (len as u8 & 0x7f) | if more { 0x80 } else { 0 };
                    at += 1;
                    len >>= 7;
                    if !more {
                        break;
                    }
                }
                set.get_mut(written..written + at)?.copy_from_slice(prefix.get(..at)?);
                written += at;
                written = write(set, payload, written, (child, strip), depth + 1, (lengths, &mut *next))?;
            }
            None => {
                read += whole;
                continue;
            }
        }
        read += whole;
        run = read;
        if written > read {
            return None;
        }
    }
    flush(set, run, read, &mut written);
    (written <= read).then_some(written)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::codec::wire::{write_tag, write_varint};
    use crate::core::schema::descriptors::load_schema;
    use crate::testing::fixtures::OPENAPI_TEST_SET;

    fn len_field(number: u32, value: &[u8], out: &mut Vec<u8>) {
        write_tag(number, LEN, out);
        write_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    /// Each message's fields as (name, json name) by message, from the linked set.
    fn json_names(set: &[u8]) -> Vec<(String, Vec<(String, String)>)> {
        let schema = load_schema(set).unwrap();
        schema
            .messages
            .iter()
            .map(|m| {
                let fields = m.fields.iter().map(|f| (f.name().to_string(), f.json_name().to_string())).collect();
                (m.full_name.to_string(), fields)
            })
            .collect()
    }

    #[test]
    fn a_protoc_set_links_the_same_without_its_default_json_names() {
        let mut set = OPENAPI_TEST_SET.to_vec();
        let before = json_names(&set);
        strip_default_json_names(&mut set);
        assert!(set.len() < OPENAPI_TEST_SET.len(), "protoc writes every json_name");
        assert_eq!(json_names(&set), before);
        // Nothing left to strip the second time.
        let once = set.clone();
        strip_default_json_names(&mut set);
        assert_eq!(set, once);
    }

    /// A set of one file `f.proto`, package `p`, with message `M` holding `fields` (each an
    /// encoded FieldDescriptorProto) and a nested message `N` holding `nested`.
    fn set_with(fields: &[Vec<u8>], nested: &[Vec<u8>]) -> Vec<u8> {
        let mut n = Vec::new();
        len_field(1, b"N", &mut n);
        nested.iter().for_each(|f| len_field(2, f, &mut n));
        let mut m = Vec::new();
        len_field(1, b"M", &mut m);
        fields.iter().for_each(|f| len_field(2, f, &mut m));
        len_field(3, &n, &mut m);
        let mut file = Vec::new();
        len_field(1, b"f.proto", &mut file);
        len_field(2, b"p", &mut file);
        len_field(4, &m, &mut file);
        len_field(12, b"proto3", &mut file);
        let mut set = Vec::new();
        len_field(1, &file, &mut set);
        set
    }

    fn field(name: &str, number: u8, json: &[&str]) -> Vec<u8> {
        let mut f = Vec::new();
        len_field(1, name.as_bytes(), &mut f);
        f.extend_from_slice(&[3 << 3, number, 4 << 3, 1, 5 << 3, 9]);
        json.iter().for_each(|j| len_field(JSON_NAME, j.as_bytes(), &mut f));
        f
    }

    #[test]
    fn only_json_names_equal_to_the_default_are_removed() {
        let long_name = format!("long_{}", "x".repeat(200));
        let long_json = format!("long{}", "X".to_string() + &"x".repeat(199));
        let mut set = set_with(
            &[
                field("page_size", 1, &["pageSize"]),
                field("custom", 2, &["renamed"]),
                field("twice", 3, &["twice", "twice"]),
                field("mixed", 4, &["mixed", "other"]),
                field(&long_name, 5, &[&long_json]),
            ],
            &[field("inner_field", 1, &["innerField"]), field("kept", 2, &["KEPT"])],
        );
        let before = json_names(&set);
        let expected = set_with(
            &[
                field("page_size", 1, &[]),
                field("custom", 2, &["renamed"]),
                field("twice", 3, &[]),
                field("mixed", 4, &["mixed", "other"]),
                field(&long_name, 5, &[]),
            ],
            &[field("inner_field", 1, &[]), field("kept", 2, &["KEPT"])],
        );
        strip_default_json_names(&mut set);
        assert_eq!(set, expected, "lengths shrink across varint sizes (the 200-byte name)");
        assert_eq!(json_names(&set), before);
    }

    #[test]
    fn a_malformed_set_is_left_as_it_is() {
        let good = set_with(&[field("a_b", 1, &["aB"])], &[]);
        for cut in 1..good.len() {
            let mut set = good[..cut].to_vec();
            strip_default_json_names(&mut set);
            assert_eq!(set, &good[..cut], "cut at {cut}");
        }
        // A field message that does not parse, inside a file that does.
        let mut set = set_with(&[vec![0x0a, 0x05, b'a']], &[]);
        let before = set.clone();
        strip_default_json_names(&mut set);
        assert_eq!(set, before);
    }

    #[test]
    fn a_field_with_a_bad_name_and_a_malformed_tail_leaves_the_set_as_it_is() {
        // `name` as a varint (refused by the link), then a tag of wire type 7: the field does
        // not parse, and the first field's default json_name would otherwise be stripped.
        let mut set = set_with(&[field("a_b", 1, &["aB"]), vec![0x08, 0x05, 0x0f]], &[]);
        let before = set.clone();
        strip_default_json_names(&mut set);
        assert_eq!(set, before);
    }
}
