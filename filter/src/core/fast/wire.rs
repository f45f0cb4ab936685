//! Protobuf wire-format writing for the fast transcoder: length-delimited fields whose length
//! is patched in after the payload, and zigzag. Varints and tags are `core::wire`'s.

use crate::core::wire::{write_tag, write_varint};

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
    fn nested_lengths_of_every_size() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut out = vec![9];
            nested::<()>(1, &mut out, |o| {
                o.extend(std::iter::repeat_n(7, len));
                Ok(())
            })
            .unwrap();
            let fields: Vec<_> = crate::core::wire::fields(&out[1..]).map(|f| f.unwrap()).collect();
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
