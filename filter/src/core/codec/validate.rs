//! Checks that bytes are a valid message of a plan, as protobuf's parser would (field keys,
//! wire types of known fields, UTF-8 of strings, nested messages and map entries), without
//! printing anything. For the responses only partly printed (`response_body`) or not printed
//! (HttpBody data): an invalid message is still a 502, wherever the fault is.
use crate::core::codec::decode::{invalid, read_fields, read_varint, Raw};
use crate::core::codec::plan::{FieldPlan, MessagePlan, Plans, Scalar, Shape, ValueKind};
use crate::core::error::{Error, Result};

/// Nested messages deeper than this are refused (as by the printer).
const MAX_DEPTH: u32 = 100;

/// Checks `bytes` as a message of plan `index`.
pub fn validate(plans: &Plans, index: usize, bytes: &[u8]) -> Result<()> {
    message(plans, index, &crate::core::codec::groups::length_prefixed(plans, index, bytes)?, 1)
}

fn message(plans: &Plans, index: usize, bytes: &[u8], depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::bad_upstream("response message nested too deeply"));
    }
    let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
    read_fields(plan, &[bytes], |raw| {
        let Some((_, field)) = plan.field_by_number(raw.number) else { return Ok(()) };
        occurrence(plans, plan, field, raw, depth)
    })
}

/// Checks one occurrence of `field` of `plan` at nesting `depth`: also used by the printer for
/// occurrences it does not print (a oneof member a later member replaced), which protobuf's
/// parser still checks.
pub(super) fn occurrence(plans: &Plans, plan: &MessagePlan, field: &FieldPlan, raw: Raw<'_>, depth: u32) -> Result<()> {
    match field.shape {
        Shape::Map { key, value } => {
            if raw.wire_type != 2 {
                return Err(invalid(plan, &format!("field \"{}\" has the wrong wire type", field.proto_name)));
            }
            read_fields(plan, &[raw.value], |r| match r.number {
                1 => value_of(plans, plan, field, ValueKind::Scalar(key), r, false, depth),
                2 => value_of(plans, plan, field, value, r, false, depth),
                _ => Ok(()),
            })
        }
        Shape::Repeated { .. } => value_of(plans, plan, field, field.kind, raw, true, depth),
        Shape::Single { .. } => value_of(plans, plan, field, field.kind, raw, false, depth),
    }
}

/// One occurrence of `field` (or of its map's key or value), of kind `kind`; `repeated`
/// scalars may come packed.
fn value_of(
    plans: &Plans,
    plan: &MessagePlan,
    field: &FieldPlan,
    kind: ValueKind,
    raw: Raw<'_>,
    repeated: bool,
    depth: u32,
) -> Result<()> {
    let name = &field.proto_name;
    let wrong_type = || invalid(plan, &format!("field \"{name}\" has the wrong wire type"));
    let expected = kind.wire_type();
    match (kind, raw.wire_type) {
        // Delimited sub-messages were rewritten length-prefixed (groups.rs).
        (ValueKind::Message(m), 2) => message(plans, m, raw.value, depth + 1),
        (ValueKind::Message(_), _) => Err(wrong_type()),
        (ValueKind::Scalar(Scalar::String), 2) => match std::str::from_utf8(raw.value) {
            Err(_) if field.verify_utf8 => Err(invalid(plan, &format!("field \"{name}\" is not valid UTF-8"))),
            _ => Ok(()),
        },
        (_, wire_type) if wire_type == expected => Ok(()),
        (_, 2) if repeated && expected != 2 => {
            // Packed: a run of whole values.
            let mut rest = raw.value;
            while !rest.is_empty() {
                let n = match expected {
                    0 => read_varint(rest).map(|(_, n)| n),
                    1 => Some(8),
                    _ => Some(4),
                };
                let n = n.filter(|n| *n <= rest.len()).ok_or_else(wrong_type)?;
                rest = rest.get(n..).unwrap_or(&[]);
            }
            Ok(())
        }
        _ => Err(wrong_type()),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::fixtures::schema;

    fn check(name: &str, bytes: &[u8]) -> std::result::Result<(), String> {
        let schema = schema();
        let plans = Plans::build(&schema);
        validate(&plans, schema.message_index(name).unwrap(), bytes).map_err(|e| {
            assert_eq!(e.http_status, 502);
            e.message
        })
    }

    #[test]
    fn valid_messages_pass() {
        // Everything { id: "x", numbers: [1, 2] packed, numbers: 3, labels {k: v}, nested {child {name: "n"}}, 99: 1 }
        let bytes = [
            0x0a, 0x01, b'x', 0x2a, 0x02, 0x01, 0x02, 0x28, 0x03, 0x42, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v', 0x1a,
            0x05, 0x1a, 0x03, 0x0a, 0x01, b'n', 0x98, 0x06, 0x01,
        ];
        assert_eq!(check("test.v1.Everything", &bytes), Ok(()));
        assert_eq!(check("test.v1.Everything", &[]), Ok(()));
    }

    #[test]
    fn invalid_messages_are_502s_naming_the_problem() {
        let cases: [(&[u8], &str); 7] = [
            (&[0x0a, 0x01, 0xff], "\"id\" is not valid UTF-8"),
            // nested { child { name: 0xff } }
            (&[0x1a, 0x05, 0x1a, 0x03, 0x0a, 0x01, 0xff], "not valid UTF-8"),
            (&[0x08, 0x01], "\"id\" has the wrong wire type"),
            (&[0x0a, 0x05, b'a'], "test.v1.Everything"),
            // numbers: packed run with a truncated varint
            (&[0x2a, 0x01, 0x80], "\"numbers\" has the wrong wire type"),
            // labels entry whose value is a varint
            (&[0x42, 0x02, 0x10, 0x01], "\"labels\" has the wrong wire type"),
            (&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00], "invalid field number"),
        ];
        for (bytes, expected) in cases {
            let e = check("test.v1.Everything", bytes).unwrap_err();
            assert!(e.contains(expected), "{bytes:02x?}: {e}");
        }
        // 101 levels of Nested.child.
        let mut deep = Vec::new();
        for _ in 0..101 {
            let mut outer = vec![0x1a];
            crate::core::codec::wire::write_varint(deep.len() as u64, &mut outer);
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        assert!(check("test.v1.Nested", &deep).unwrap_err().contains("nested too deeply"));
    }
}
