//! Comments out of a descriptor set, in place. `protoc --include_source_info` (what Envoy's
//! transcoder docs show) adds each file's `source_code_info`, often as large as the rest of the
//! file; only the OpenAPI document reads it. Without one to serve, the filter removes it before
//! linking: every worker's VM holds the set while the schema is built, and its linear memory
//! never shrinks below that peak.
use std::ops::Range;

use crate::core::codec::wire::{fields, write_varint, LEN};

/// `FileDescriptorSet.file`.
const FILE: u32 = 1;
/// `FileDescriptorProto.source_code_info`.
const SOURCE_CODE_INFO: u32 = 9;

/// Removes every file's `source_code_info` from the encoded FileDescriptorSet `set`, keeping
/// everything else byte for byte; no change if any of it is malformed (the link reports that).
/// Linear time, no allocation larger than one file's list of fields: the output never
/// overtakes the input, so it is written over it.
pub fn strip_source_info(set: &mut Vec<u8>) {
    if !has_source_info(set) {
        return;
    }
    let (mut read, mut written) = (0, 0);
    while read < set.len() {
        // (Parsed whole above; what is left to read is untouched, so this cannot fail.)
        let Some((field, spans)) = next_field(set, read) else {
            set.clear();
            return;
        };
        let (header, keep) = match spans {
            // A file: its tag, then its fields but the comments, under the new length.
            Some((_, kept)) => {
                let len: usize = kept.iter().map(Range::len).sum();
                let mut header = Vec::with_capacity(12);
                write_varint(u64::from(FILE << 3 | u32::from(LEN)), &mut header);
                write_varint(len as u64, &mut header);
                (header, kept)
            }
            None => (Vec::new(), vec![field.clone()]),
        };
        for span in std::iter::once(None).chain(keep.into_iter().map(Some)) {
            let len = match span {
                None => match set.get_mut(written..written + header.len()) {
                    Some(to) => {
                        to.copy_from_slice(&header);
                        header.len()
                    }
                    None => {
                        set.clear();
                        return;
                    }
                },
                Some(span) => {
                    let len = span.len();
                    // Always true (the output never overtakes the input); checked, not assumed.
                    if span.end > set.len() || written + len > span.end {
                        set.clear();
                        return;
                    }
                    set.copy_within(span, written);
                    len
                }
            };
            written += len;
        }
        read = field.end;
    }
    set.truncate(written);
    set.shrink_to_fit();
}

/// Whether some file has comments, and the whole set parses down to the files' fields.
fn has_source_info(set: &[u8]) -> bool {
    let mut found = false;
    let mut read = 0;
    while read < set.len() {
        let Some((field, file)) = next_field(set, read) else { return false };
        if let Some((payload, kept)) = file {
            // The fields kept add up to less than the file's payload: comments were left out.
            found |= kept.iter().map(Range::len).sum::<usize>() < payload;
        }
        read = field.end;
    }
    found
}

/// The top-level field at `at`: its span, and for a file its payload's length and the spans of
/// its fields without `source_code_info`; `None` if malformed.
#[allow(clippy::type_complexity)]
fn next_field(set: &[u8], at: usize) -> Option<(Range<usize>, Option<(usize, Vec<Range<usize>>)>)> {
    let rest = set.get(at..)?;
    let mut top = fields(rest);
    let field = top.next()?.ok()?;
    let end = at + (rest.len() - top.rest().len());
    if field.number != FILE || field.wire_type != LEN {
        return Some((at..end, None));
    }
    // The payload ends the field: it starts `value.len()` before the end.
    let start = end - field.value.len();
    // Adjacent spans merged as they are found: fewer, longer copies, and a span per run of
    // fields between comments, not per field (a file of a million empty message types took
    // two lists of a million spans: 32 MB natively).
    let mut kept: Vec<Range<usize>> = Vec::new();
    let mut inner = fields(field.value);
    let mut from = 0;
    while let Some(f) = inner.next() {
        let f = f.ok()?;
        let to = field.value.len() - inner.rest().len();
        if f.number != SOURCE_CODE_INFO {
            let span = start + from..start + to;
            match kept.last_mut() {
                Some(last) if last.end == span.start => last.end = span.end,
                _ => kept.push(span),
            }
        }
        from = to;
    }
    Some((at..end, Some((field.value.len(), kept))))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::codec::wire::write_tag;
    use crate::core::schema::descriptor_proto::decode_comments;
    use crate::core::schema::descriptors::load_schema;
    use crate::testing::fixtures::OPENAPI_TEST_SET;

    fn len_field(number: u32, value: &[u8], out: &mut Vec<u8>) {
        write_tag(number, LEN, out);
        write_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    /// A file of the given fields (number, payload).
    fn file(parts: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in parts {
            len_field(*number, value, &mut out);
        }
        out
    }

    #[test]
    fn comments_go_and_everything_else_stays_byte_for_byte() {
        // Two files with comments around other fields (the first over 127 bytes with them,
        // under without: its length takes one byte less), one without, and a field that is
        // not a file.
        let comments = vec![7u8; 150];
        let a = file(&[(1, b"a.proto".to_vec()), (9, comments.clone()), (2, b"pkg".to_vec()), (9, vec![1, 2])]);
        let b = file(&[(1, b"b.proto".to_vec()), (2, b"other".to_vec())]);
        let c = file(&[(9, comments), (1, b"c.proto".to_vec())]);
        let mut set = Vec::new();
        len_field(1, &a, &mut set);
        len_field(1, &b, &mut set);
        write_tag(5, 0, &mut set);
        set.push(42);
        len_field(1, &c, &mut set);
        let mut expected = Vec::new();
        len_field(1, &file(&[(1, b"a.proto".to_vec()), (2, b"pkg".to_vec())]), &mut expected);
        len_field(1, &b, &mut expected);
        write_tag(5, 0, &mut expected);
        expected.push(42);
        len_field(1, &file(&[(1, b"c.proto".to_vec())]), &mut expected);
        strip_source_info(&mut set);
        assert_eq!(set, expected);
        // Nothing to remove, or malformed: unchanged (not even re-encoded: an overlong length
        // stays as it is).
        let mut again = expected.clone();
        strip_source_info(&mut again);
        assert_eq!(again, expected);
        let mut overlong = vec![0x0a, 0x82, 0x00];
        overlong.extend_from_slice(&[0x12, 0x00]);
        let before = overlong.clone();
        strip_source_info(&mut overlong);
        assert_eq!(overlong, before);
        let mut truncated = Vec::new();
        len_field(1, &a, &mut truncated);
        truncated.pop();
        let before = truncated.clone();
        strip_source_info(&mut truncated);
        assert_eq!(truncated, before);
        let mut bad_inner = Vec::new();
        len_field(1, &[0x0a, 0x05, b'x'], &mut bad_inner); // a name longer than its file
        len_field(1, &a, &mut bad_inner);
        let before = bad_inner.clone();
        strip_source_info(&mut bad_inner);
        assert_eq!(bad_inner, before);
    }

    #[test]
    fn a_real_set_links_the_same_without_its_comments() {
        let comments = decode_comments(OPENAPI_TEST_SET).unwrap();
        assert!(comments.iter().any(|(_, c)| !c.is_empty()), "the fixture has comments");
        let mut set = OPENAPI_TEST_SET.to_vec();
        strip_source_info(&mut set);
        assert!(set.len() < OPENAPI_TEST_SET.len());
        assert!(decode_comments(&set).unwrap().iter().all(|(_, c)| c.is_empty()));
        let (before, after) = (load_schema(OPENAPI_TEST_SET).unwrap(), load_schema(&set).unwrap());
        assert_eq!(format!("{:?}", before.messages), format!("{:?}", after.messages));
        assert_eq!(format!("{:?}", before.services), format!("{:?}", after.services));
    }
}
