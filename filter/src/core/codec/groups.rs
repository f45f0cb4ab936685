//! Delimited message fields (proto2 groups, editions' `message_encoding = DELIMITED`) rewritten
//! as length-prefixed ones, before a message is printed or checked.
//!
//! A group's end is only found by reading its body: the printer, which reads a message's
//! fields before its sub-messages', would read a group nested N deep N times. Here the
//! message is read once, recursively (a group's body up to its end tag), in two passes: the
//! first measures every rewritten sub-message, the second writes them with their lengths.
//! Both passes are linear; the printer and the validator then meet length-prefixed
//! sub-messages only (unknown groups stay as they are: skipped whole, never descended).
//! Messages that cannot reach a delimited field are not copied.
use std::borrow::Cow;

use crate::core::codec::decode::{invalid, read_varint};
use crate::core::codec::plan::{FieldPlan, MessagePlan, Plans, ValueKind};
use crate::core::codec::wire::{group_extent, varint_len, write_tag, write_varint, MAX_FIELD_NUMBER};
use crate::core::error::{Error, Result};

/// Nested messages deeper than this are refused (as by the printer).
const MAX_DEPTH: u32 = 100;

/// `bytes`, a message of plan `index`, with its delimited sub-messages (at any depth) written
/// length-prefixed; borrowed when the message type cannot reach one. A delimited field sent
/// length-prefixed, or a length-prefixed one sent as a group, is an invalid message.
pub fn length_prefixed<'b>(plans: &Plans, index: usize, bytes: &'b [u8]) -> Result<Cow<'b, [u8]>> {
    if !plans.message(index).is_some_and(|p| p.reaches_groups) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut sizes = Vec::new();
    let (_, size) = walk(plans, index, bytes, None, 1, &mut Pass::Measure(&mut sizes))?;
    let mut out = Vec::with_capacity(size);
    walk(plans, index, bytes, None, 1, &mut Pass::Write { sizes: &sizes, next: 0, out: &mut out })?;
    Ok(Cow::Owned(out))
}

enum Pass<'s> {
    /// The size of each rewritten sub-message, in the order they start.
    Measure(&'s mut Vec<usize>),
    Write {
        sizes: &'s [usize],
        next: usize,
        out: &'s mut Vec<u8>,
    },
}

/// Reads the fields of a message of plan `index` from `buf`: all of it, or up to the end-group
/// tag of field `group` (then consumed). Returns the bytes read and the rewritten size.
fn walk(
    plans: &Plans,
    index: usize,
    buf: &[u8],
    group: Option<u32>,
    depth: u32,
    pass: &mut Pass<'_>,
) -> Result<(usize, usize)> {
    if depth > MAX_DEPTH {
        return Err(Error::bad_upstream("response message nested too deeply"));
    }
    let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
    let mut pos = 0usize;
    let mut size = 0usize;
    loop {
        let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) else {
            if group.is_some() {
                return Err(invalid(plan, "unterminated group"));
            }
            return Ok((pos, size));
        };
        let start = pos;
        let (key, n) = read_varint(rest).ok_or_else(|| invalid(plan, "truncated field key"))?;
        pos += n;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..=MAX_FIELD_NUMBER).contains(n))
            .ok_or_else(|| invalid(plan, "invalid field number"))?;
        let wire_type = (key & 7) as u8;
        let rest = buf.get(pos..).unwrap_or(&[]);
        let message = plan.field_by_number(number).and_then(|(_, f)| match f.kind {
            ValueKind::Message(m) => Some((f, m)),
            _ => None,
        });
        match (wire_type, message) {
            (4, _) if group == Some(number) => return Ok((pos, size)),
            (3, Some((field, m))) if field.delimited => {
                let reaches = plans.message(m).is_some_and(|p| p.reaches_groups);
                pos += sub_message(plans, m, rest, Some(number), reaches, field.number, depth, pass, &mut size)?;
            }
            (2, Some((field, m))) => {
                if field.delimited {
                    return Err(wrong_type(plan, field));
                }
                let (len, n) = read_varint(rest).ok_or_else(|| invalid(plan, "truncated length"))?;
                let len = usize::try_from(len).map_err(|_| invalid(plan, "length too large"))?;
                let payload = rest
                    .get(n..)
                    .and_then(|p| p.get(..len))
                    .ok_or_else(|| invalid(plan, "truncated length-delimited field"))?;
                if plans.message(m).is_some_and(|p| p.reaches_groups) {
                    sub_message(plans, m, payload, None, true, field.number, depth, pass, &mut size)?;
                    pos += n + len;
                } else {
                    pos += n + len;
                    copy(buf, start, pos, pass, &mut size);
                }
            }
            (3, Some((field, _))) => return Err(wrong_type(plan, field)),
            (3, None) => {
                let (_, whole) = group_extent(rest, number).ok_or_else(|| invalid(plan, "unterminated group"))?;
                pos += whole;
                copy(buf, start, pos, pass, &mut size);
            }
            (0, _) => {
                pos += read_varint(rest).ok_or_else(|| invalid(plan, "truncated varint"))?.1;
                copy(buf, start, pos, pass, &mut size);
            }
            (1 | 5, _) => {
                pos += if wire_type == 1 { 8 } else { 4 };
                if pos > buf.len() {
                    return Err(invalid(plan, "truncated fixed-size field"));
                }
                copy(buf, start, pos, pass, &mut size);
            }
            (2, None) => {
                let (len, n) = read_varint(rest).ok_or_else(|| invalid(plan, "truncated length"))?;
                let len = usize::try_from(len).map_err(|_| invalid(plan, "length too large"))?;
                if rest.len().saturating_sub(n) < len {
                    return Err(invalid(plan, "truncated length-delimited field"));
                }
                pos += n + len;
                copy(buf, start, pos, pass, &mut size);
            }
            _ => return Err(invalid(plan, "invalid wire type")),
        }
    }
}

/// A sub-message of plan `m` read from `buf` (a group's body up to its end tag when `group`,
/// else a whole payload), written length-prefixed as field `number`; its fields are rewritten
/// too if they can hold a delimited field (`descend`), else copied. Returns the bytes read.
#[allow(clippy::too_many_arguments)]
fn sub_message(
    plans: &Plans,
    m: usize,
    buf: &[u8],
    group: Option<u32>,
    descend: bool,
    number: u32,
    depth: u32,
    pass: &mut Pass<'_>,
    size: &mut usize,
) -> Result<usize> {
    // The slot of this sub-message's size, taken before its own sub-messages'.
    let slot = match pass {
        Pass::Measure(sizes) => {
            sizes.push(0);
            sizes.len() - 1
        }
        Pass::Write { sizes, next, out } => {
            let len = sizes.get(*next).copied().ok_or_else(|| Error::internal("group sizes out of step"))?;
            *next += 1;
            write_tag(number, 2, out);
            write_varint(len as u64, out);
            *next - 1
        }
    };
    let (read, body) = if descend {
        walk(plans, m, buf, group, depth + 1, pass)?
    } else {
        // The body needs no rewriting: only its end is looked for.
        let (body, whole) = match group {
            Some(g) => group_extent(buf, g).ok_or_else(|| group_error(plans, m))?,
            None => (buf.len(), buf.len()),
        };
        if let (Pass::Write { out, .. }, Some(b)) = (&mut *pass, buf.get(..body)) {
            out.extend_from_slice(b);
        }
        (whole, body)
    };
    if let Pass::Measure(sizes) = pass {
        if let Some(s) = sizes.get_mut(slot) {
            *s = body;
        }
        *size += tag_len(number) + varint_len(body as u64) + body;
    }
    Ok(read)
}

fn copy(buf: &[u8], start: usize, end: usize, pass: &mut Pass<'_>, size: &mut usize) {
    match pass {
        Pass::Measure(_) => *size += end - start,
        Pass::Write { out, .. } => out.extend_from_slice(buf.get(start..end).unwrap_or(&[])),
    }
}

fn wrong_type(plan: &MessagePlan, field: &FieldPlan) -> Error {
    invalid(plan, &format!("field \"{}\" has the wrong wire type", field.proto_name))
}

fn group_error(plans: &Plans, m: usize) -> Error {
    match plans.message(m) {
        Some(plan) => invalid(plan, "unterminated group"),
        None => Error::internal("message plan missing"),
    }
}

fn tag_len(number: u32) -> usize {
    varint_len(u64::from(number) << 3)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::schema::descriptors::load_schema;
    use crate::testing::fixtures::{editions, schema};

    fn rewrite(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let plans = Plans::build(&load_schema(&editions::descriptor_set()).unwrap());
        let index = plans.index_of("ed.M").unwrap();
        length_prefixed(&plans, index, bytes).map(Cow::into_owned).map_err(|e| e.message)
    }

    #[test]
    fn delimited_fields_are_rewritten_at_every_depth_and_the_rest_is_kept() {
        let input = [
            0x6b, 0x08, 0x01, 0x13, 0x08, 0x02, 0x14, 0x6c, // delimited (13) { a: 1, child (2) { a: 2 } }
            0x93, 0x03, 0x08, 0x05, 0x94, 0x03, // an unknown group (50): kept as it is
            0x7a, 0x04, 0x13, 0x08, 0x03, 0x14, // prefixed (15) { child (2) { a: 3 } }: rewritten inside
            0x08, 0x07, // explicit_int (1)
        ];
        let expected = [
            0x6a, 0x06, 0x08, 0x01, 0x12, 0x02, 0x08, 0x02, // delimited, length-prefixed
            0x93, 0x03, 0x08, 0x05, 0x94, 0x03, //
            0x7a, 0x04, 0x12, 0x02, 0x08, 0x03, //
            0x08, 0x07,
        ];
        assert_eq!(rewrite(&input), Ok(expected.to_vec()));
        // Long bodies get longer length prefixes.
        let mut long = vec![0x6b, 0x1a, 0xc8, 0x01];
        long.extend([b'x'; 200]);
        long.push(0x6c);
        let mut expected = vec![0x6a, 0xcb, 0x01, 0x1a, 0xc8, 0x01];
        expected.extend([b'x'; 200]);
        assert_eq!(rewrite(&long), Ok(expected));
    }

    #[test]
    fn wrong_framing_is_an_invalid_message() {
        for (bytes, expected) in [
            (&[0x6a, 0x00][..], "\"delimited\" has the wrong wire type"),
            (&[0x7b, 0x7c], "\"prefixed\" has the wrong wire type"),
            (&[0x6b, 0x08, 0x01], "unterminated group"),
            (&[0x6b, 0x6b, 0x6c], "unterminated group"),
            (&[0x6c], "invalid wire type"),
            (&[0x6b, 0x14], "invalid wire type"),
        ] {
            let e = rewrite(bytes).unwrap_err();
            assert!(e.contains(expected), "{bytes:02x?}: {e}");
        }
    }

    #[test]
    fn messages_without_delimited_fields_are_not_copied() {
        let schema = schema();
        let plans = Plans::build(&schema);
        let index = plans.index_of("test.v1.Everything").unwrap();
        assert!(!plans.message(index).unwrap().reaches_groups);
        let bytes = [0x0a, 0x01, b'x'];
        assert!(matches!(length_prefixed(&plans, index, &bytes), Ok(Cow::Borrowed(_))));
    }
}
