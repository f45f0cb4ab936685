//! The protobuf wire format, once for the whole crate: varints and tags; reading fields out of
//! encoded messages without decoding them whole (descriptors, method options, status details,
//! field paths of requests and responses); and the codec's writing of length-delimited fields
//! whose length is patched in after the payload, and zigzag.

/// Wire types of the protobuf encoding.
pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const START_GROUP: u8 = 3;
pub const END_GROUP: u8 = 4;
pub const FIXED32: u8 = 5;

/// Groups nested deeper than this are refused (protobuf's recursion limit).
pub const MAX_GROUP_DEPTH: usize = 100;

/// The largest field number protobuf allows.
pub const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;

/// Reads a base-128 varint; `None` if truncated or longer than 10 bytes. The one varint reader
/// (descriptors, frames, bound fields and the fast codec all use it).
#[inline]
pub fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends a base-128 varint. The one varint writer.
#[inline]
pub fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a field's tag (number and wire type).
#[inline]
pub fn write_tag(number: u32, wire_type: u8, out: &mut Vec<u8>) {
    write_varint(u64::from(number) << 3 | u64::from(wire_type), out);
}

/// How many bytes `write_varint(value)` appends.
#[inline]
pub fn varint_len(mut value: u64) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

/// One field of an encoded message: number, wire type and the raw value bytes
/// (for LEN fields, the payload without its length prefix; for a group, START_GROUP, its
/// body without the end-group tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawField<'a> {
    pub number: u32,
    pub wire_type: u8,
    pub value: &'a [u8],
}

/// Iterates the fields of an encoded message; yields `Err(())` once and stops at malformed input.
pub struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { rest: buf, failed: false }
}

impl<'a> Fields<'a> {
    /// What is left after the fields yielded so far: `buf.len() - rest().len()` is where the
    /// last one ends.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<RawField<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let parsed = parse_field(self.rest);
        match parsed {
            Some((field, rest)) => {
                self.rest = rest;
                Some(Ok(field))
            }
            None => {
                self.failed = true;
                Some(Err(()))
            }
        }
    }
}

impl RawField<'_> {
    /// Appends the field as it was encoded (tag, length if any, value).
    pub fn write(&self, out: &mut Vec<u8>) {
        write_varint(u64::from(self.number) << 3 | u64::from(self.wire_type), out);
        if self.wire_type == LEN {
            write_varint(self.value.len() as u64, out);
        }
        out.extend_from_slice(self.value);
        if self.wire_type == START_GROUP {
            write_varint(u64::from(self.number) << 3 | u64::from(END_GROUP), out);
        }
    }
}

/// The payloads of every length-delimited (or group) occurrence of field `number` in
/// `chunks` (the encodings of one message, merged as protobuf merges repeated occurrences).
pub fn payloads<'a>(chunks: &[&'a [u8]], number: u32) -> Vec<&'a [u8]> {
    chunks
        .iter()
        .flat_map(|chunk| fields(chunk))
        .filter_map(|f| {
            f.ok().filter(|f| f.number == number && matches!(f.wire_type, LEN | START_GROUP)).map(|f| f.value)
        })
        .collect()
}

/// The extent of a group whose start-group tag (field `number`) came just before `buf`: the
/// length of its body, and of the body and end-group tag. Nested groups are matched (up to
/// [`MAX_GROUP_DEPTH`] levels, without recursion); `None` if unterminated or malformed.
pub fn group_extent(buf: &[u8], number: u32) -> Option<(usize, usize)> {
    let mut pos = 0usize;
    let mut open = vec![number];
    loop {
        let tag_start = pos;
        let (key, n) = read_varint(buf.get(pos..)?)?;
        pos = pos.checked_add(n)?;
        let field = u32::try_from(key >> 3).ok().filter(|n| (1..=MAX_FIELD_NUMBER).contains(n))?;
        match (key & 7) as u8 {
            VARINT => pos = pos.checked_add(read_varint(buf.get(pos..)?)?.1)?,
            FIXED64 => pos = pos.checked_add(8)?,
            FIXED32 => pos = pos.checked_add(4)?,
            LEN => {
                let (len, n) = read_varint(buf.get(pos..)?)?;
                pos = pos.checked_add(n)?.checked_add(usize::try_from(len).ok()?)?;
            }
            START_GROUP => {
                if open.len() >= MAX_GROUP_DEPTH {
                    return None;
                }
                open.push(field);
            }
            END_GROUP if open.last() == Some(&field) => {
                open.pop();
                if open.is_empty() {
                    return Some((tag_start, pos));
                }
            }
            _ => return None,
        }
        if pos > buf.len() {
            return None;
        }
    }
}

/// The sub-message at the end of a path of singular message fields, as the payloads of its
/// occurrences (they merge); None when a field of the path is absent.
pub fn descend(bytes: &[u8], numbers: impl IntoIterator<Item = u32>) -> Option<Vec<&[u8]>> {
    let mut chunks = vec![bytes];
    for number in numbers {
        chunks = payloads(&chunks, number);
        if chunks.is_empty() {
            return None;
        }
    }
    Some(chunks)
}

fn parse_field(buf: &[u8]) -> Option<(RawField<'_>, &[u8])> {
    let (key, n) = read_varint(buf)?;
    let rest = buf.get(n..)?;
    let number = u32::try_from(key >> 3).ok().filter(|n| (1..=MAX_FIELD_NUMBER).contains(n))?;
    let wire_type = (key & 7) as u8;
    let len = match wire_type {
        VARINT => read_varint(rest)?.1,
        FIXED64 => 8,
        FIXED32 => 4,
        LEN => {
            let (len, n) = read_varint(rest)?;
            let len = usize::try_from(len).ok()?;
            let payload = rest.get(n..)?;
            let value = payload.get(..len)?;
            let rest = payload.get(len..)?;
            return Some((RawField { number, wire_type, value }, rest));
        }
        START_GROUP => {
            let (body, whole) = group_extent(rest, number)?;
            return Some((RawField { number, wire_type, value: rest.get(..body)? }, rest.get(whole..)?));
        }
        _ => return None,
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((RawField { number, wire_type, value }, rest))
}

// ---- writing ------------------------------------------------------------------------------

#[inline]
pub fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline]
pub fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes a length-delimited field whose payload `body` appends to `out`: the length is
/// patched in afterwards (one byte reserved; longer lengths shift the payload once).
#[inline]
pub fn nested<E>(number: u32, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
    write_tag(number, 2, out);
    let at = out.len();
    out.push(0);
    body(out)?;
    patch_length(out, at);
    Ok(())
}

/// Writes a message field whose fields `body` appends to `out`: length-delimited, or in the
/// group wire format (start-group tag, the fields, end-group tag) when `delimited`.
#[inline]
pub fn message_field<E>(
    number: u32,
    delimited: bool,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    if !delimited {
        return nested(number, out, body);
    }
    write_tag(number, 3, out);
    body(out)?;
    write_tag(number, 4, out);
    Ok(())
}

/// Writes a message field whose fields `body` appends to `out` (infallible): length-delimited,
/// or in the group wire format when `delimited`.
pub fn sub_message(number: u32, delimited: bool, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    if delimited {
        write_tag(number, 3, out);
        body(out);
        write_tag(number, 4, out);
    } else {
        length_delimited(number, out, body);
    }
}

/// Writes a length-delimited field whose payload `body` appends to `out` (infallible).
pub fn length_delimited(number: u32, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    write_tag(number, 2, out);
    let at = out.len();
    out.push(0);
    body(out);
    patch_length(out, at);
}

/// The payload starts at `at + 1`; byte `at` is the reserved length.
pub fn patch_length(out: &mut Vec<u8>, at: usize) {
    let len = out.len().saturating_sub(at).saturating_sub(1);
    if len < 0x80 {
        if let Some(b) = out.get_mut(at) {
            *b = len as u8;
        }
        return;
    }
    let mut prefix = Vec::with_capacity(5);
    write_varint(len as u64, &mut prefix);
    let end = at.saturating_add(1).min(out.len());
    out.splice(at..end, prefix);
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn varints_round_trip_including_u64_max() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            assert_eq!(read_varint(&out), Some((v, out.len())));
        }
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0xff; 11]), None);
    }

    #[test]
    fn iterates_fields_of_every_wire_type() {
        // 1: varint 150, 2: "hi", 3: fixed32, 4: fixed64
        let buf = [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8];
        let got: Vec<_> = fields(&buf).map(|f| f.unwrap()).collect();
        assert_eq!(got.len(), 4);
        assert_eq!((got[0].number, got[0].wire_type, got[0].value), (1, VARINT, &[0x96, 0x01][..]));
        assert_eq!((got[1].number, got[1].value), (2, &b"hi"[..]));
        assert_eq!(got[2].value.len(), 4);
        assert_eq!(got[3].value.len(), 8);
    }

    #[test]
    fn descends_through_every_occurrence() {
        // 1: {2: "a"}, 3: 7, 1: {2: "b", 4: {}}
        let buf = [0x0a, 0x03, 0x12, 0x01, b'a', 0x18, 0x07, 0x0a, 0x05, 0x12, 0x01, b'b', 0x22, 0x00];
        assert_eq!(descend(&buf, [1, 2]), Some(vec![&b"a"[..], &b"b"[..]]));
        assert_eq!(descend(&buf, [1, 4]), Some(vec![&[][..]]));
        assert_eq!(descend(&buf, [3]), None, "not length-delimited");
        assert_eq!(descend(&buf, []), Some(vec![&buf[..]]));
        let mut out = Vec::new();
        for f in fields(&buf) {
            f.unwrap().write(&mut out);
        }
        assert_eq!(out, buf);
    }

    #[test]
    fn malformed_input_yields_one_error() {
        for buf in [
            &[0x12, 0x05, b'a'][..],
            &[0x08][..],
            &[0x00, 0x01][..],
            &[0x0b][..],
            &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        ] {
            let got: Vec<_> = fields(buf).collect();
            assert_eq!(got.last(), Some(&Err(())), "{buf:?}");
        }
    }

    #[test]
    fn nested_lengths_of_every_size() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut out = vec![9];
            nested::<()>(1, &mut out, |o| {
                o.extend(std::iter::repeat_n(7, len));
                Ok(())
            })
            .unwrap();
            let fields: Vec<_> = fields(&out[1..]).map(|f| f.unwrap()).collect();
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].value.len(), len);
            assert_eq!(out[0], 9);
        }
    }

    #[test]
    fn zigzag() {
        assert_eq!(zigzag32(0), 0);
        assert_eq!(zigzag32(-1), 1);
        assert_eq!(zigzag32(1), 2);
        assert_eq!(zigzag32(i32::MIN), u64::from(u32::MAX));
        assert_eq!(zigzag64(i64::MIN), u64::MAX);
    }
}
