//! Binary → binary for the message types only the fast path loads (editions files, which
//! prost-reflect cannot read): the message re-encoded as protobuf's serializers write it, from
//! json2grpc's plans. Known fields in number order (a singular field's last value, the
//! occurrences of a sub-message merged, only the last member of a oneof, defaults of fields
//! without presence left out, repeated scalars packed or expanded and sub-messages
//! length-prefixed or delimited as their features say), then the unknown fields as they came
//! (a closed enum's unknown numbers among them).
//!
//! The filter itself never writes protobuf from protobuf; the suite's binary-to-binary tests
//! need it. The input is checked by the fast codec's validator first.
use json2grpc::core::codec::plan::{FieldPlan, Plans, Scalar, Shape, ValueKind};
use json2grpc::core::codec::wire::{fields, read_varint, write_varint, RawField};

/// Protobuf's recursion limit.
const MAX_DEPTH: u32 = 100;

/// The canonical encoding of `bytes`, a message of plan `index`.
pub fn reencode(plans: &Plans, index: usize, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    message(plans, index, &[bytes], 0, &mut out)?;
    Ok(out)
}

fn message(plans: &Plans, index: usize, chunks: &[&[u8]], depth: u32, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("message nested too deeply".into());
    }
    let plan = plans.message(index).ok_or("message plan missing")?;
    let mut known: Vec<Vec<RawField<'_>>> = vec![Vec::new(); plan.fields.len()];
    let mut unknown: Vec<RawField<'_>> = Vec::new();
    let mut oneof_last: Vec<Option<usize>> = vec![None; usize::from(plan.oneofs)];
    for chunk in chunks {
        for f in fields(chunk) {
            let f = f.map_err(|()| format!("malformed {}", plan.full_name))?;
            let Some((i, field)) = plan.field_by_number(f.number) else {
                unknown.push(f);
                continue;
            };
            if !matches!(field.shape, Shape::Map { .. }) && f.wire_type == 0 && !accepts(plans, field.kind, f.value) {
                // A closed enum's unknown number: an unknown field.
                unknown.push(f);
                continue;
            }
            if let Some(slot) = field.oneof.and_then(|o| oneof_last.get_mut(usize::from(o))) {
                *slot = Some(i);
            }
            if let Some(list) = known.get_mut(i) {
                list.push(f);
            }
        }
    }
    let mut order: Vec<usize> = (0..plan.fields.len()).collect();
    order.sort_by_key(|&i| plan.fields.get(i).map_or(0, |f| f.number));
    for i in order {
        let (Some(field), Some(occurrences)) = (plan.fields.get(i), known.get(i)) else { continue };
        if occurrences.is_empty() {
            continue;
        }
        if field.oneof.is_some_and(|o| oneof_last.get(usize::from(o)).copied().flatten() != Some(i)) {
            continue;
        }
        match field.shape {
            Shape::Single { presence } => match (field.kind, occurrences.last()) {
                (ValueKind::Message(m), _) => {
                    let parts: Vec<&[u8]> = occurrences.iter().map(|f| f.value).collect();
                    let mut body = Vec::new();
                    message(plans, m, &parts, depth + 1, &mut body)?;
                    write_message(field, &body, out);
                }
                (kind, Some(last)) => {
                    let value = scalar(kind, last)?;
                    if presence || !is_default(kind, &value) {
                        write_tagged(field.number, kind, &value, out);
                    }
                }
                (_, None) => {}
            },
            Shape::Repeated { packed } => {
                repeated(plans, field, packed, occurrences, depth, out, &mut unknown)?;
            }
            Shape::Map { key, value } => {
                for entry in occurrences {
                    map_entry(plans, field, key, value, entry, depth, out, &mut unknown)?;
                }
            }
        }
    }
    for f in unknown {
        f.write(out);
    }
    Ok(())
}

fn repeated<'b>(
    plans: &Plans,
    field: &FieldPlan,
    packed: bool,
    occurrences: &[RawField<'b>],
    depth: u32,
    out: &mut Vec<u8>,
    unknown: &mut Vec<RawField<'b>>,
) -> Result<(), String> {
    if let ValueKind::Message(m) = field.kind {
        for element in occurrences {
            let mut body = Vec::new();
            message(plans, m, &[element.value], depth + 1, &mut body)?;
            write_message(field, &body, out);
        }
        return Ok(());
    }
    let element_wire = field.kind.wire_type();
    let mut values: Vec<Vec<u8>> = Vec::new();
    for occurrence in occurrences {
        if occurrence.wire_type == 2 && element_wire != 2 {
            let mut rest = occurrence.value;
            while !rest.is_empty() {
                let n = match element_wire {
                    0 => read_varint(rest).map(|(_, n)| n),
                    1 => Some(8),
                    _ => Some(4),
                }
                .filter(|n| *n <= rest.len())
                .ok_or("malformed packed field")?;
                let (one, tail) = rest.split_at(n);
                rest = tail;
                let element = RawField { number: field.number, wire_type: element_wire, value: one };
                if element_wire == 0 && !accepts(plans, field.kind, one) {
                    unknown.push(element);
                    continue;
                }
                values.push(scalar(field.kind, &element)?);
            }
        } else {
            values.push(scalar(field.kind, occurrence)?);
        }
    }
    if packed && element_wire != 2 {
        if !values.is_empty() {
            let run: Vec<u8> = values.concat();
            write_varint(u64::from(field.number) << 3 | 2, out);
            write_varint(run.len() as u64, out);
            out.extend_from_slice(&run);
        }
    } else {
        for v in &values {
            write_tagged(field.number, field.kind, v, out);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn map_entry<'b>(
    plans: &Plans,
    field: &FieldPlan,
    key_kind: Scalar,
    value_kind: ValueKind,
    entry: &RawField<'b>,
    depth: u32,
    out: &mut Vec<u8>,
    unknown: &mut Vec<RawField<'b>>,
) -> Result<(), String> {
    let mut key: Option<RawField<'_>> = None;
    let mut values: Vec<RawField<'_>> = Vec::new();
    for f in fields(entry.value) {
        let f = f.map_err(|()| format!("malformed entry of {}", field.proto_name))?;
        match f.number {
            1 => key = Some(f),
            2 => values.push(f),
            _ => {}
        }
    }
    let key_kind = ValueKind::Scalar(key_kind);
    let key_bytes = match key {
        Some(k) => scalar(key_kind, &k)?,
        None => default_value(key_kind),
    };
    let mut body = Vec::new();
    write_tagged(1, key_kind, &key_bytes, &mut body);
    match value_kind {
        ValueKind::Message(m) => {
            let parts: Vec<&[u8]> = values.iter().map(|f| f.value).collect();
            let mut value = Vec::new();
            message(plans, m, &parts, depth + 1, &mut value)?;
            write_varint(2 << 3 | 2, &mut body);
            write_varint(value.len() as u64, &mut body);
            body.extend_from_slice(&value);
        }
        kind => {
            let value = match values.last() {
                Some(v) if v.wire_type == 0 && !accepts(plans, kind, v.value) => {
                    // A closed enum's unknown number: the whole entry is an unknown field.
                    unknown.push(*entry);
                    return Ok(());
                }
                Some(v) => scalar(kind, v)?,
                None => default_value(kind),
            };
            write_tagged(2, kind, &value, &mut body);
        }
    }
    write_varint(u64::from(field.number) << 3 | 2, out);
    write_varint(body.len() as u64, out);
    out.extend_from_slice(&body);
    Ok(())
}

/// Whether a varint is a value of `kind`: not for a number a closed enum does not declare.
fn accepts(plans: &Plans, kind: ValueKind, varint: &[u8]) -> bool {
    match kind {
        ValueKind::Enum(e) => {
            let n = read_varint(varint).map_or(0, |(v, _)| v as i32);
            plans.enumeration(e).is_none_or(|e| e.accepts(n))
        }
        _ => true,
    }
}

/// A scalar's canonical payload (varint bytes, fixed bytes, or a string's bytes).
fn scalar(kind: ValueKind, f: &RawField<'_>) -> Result<Vec<u8>, String> {
    if f.wire_type != kind.wire_type() {
        return Err(format!("field {} has the wrong wire type", f.number));
    }
    if f.wire_type != 0 {
        return Ok(f.value.to_vec());
    }
    let v = read_varint(f.value).map(|(v, _)| v).ok_or("malformed varint")?;
    let canonical = match kind {
        ValueKind::Enum(_) | ValueKind::Scalar(Scalar::Int32) => i64::from(v as i32) as u64,
        ValueKind::Scalar(Scalar::Uint32) => u64::from(v as u32),
        ValueKind::Scalar(Scalar::Sint32) => u64::from(v as u32),
        ValueKind::Scalar(Scalar::Bool) => u64::from(v != 0),
        _ => v,
    };
    let mut out = Vec::new();
    write_varint(canonical, &mut out);
    Ok(out)
}

fn default_value(kind: ValueKind) -> Vec<u8> {
    match kind.wire_type() {
        0 => vec![0],
        1 => vec![0; 8],
        5 => vec![0; 4],
        _ => Vec::new(),
    }
}

/// A field without presence is left out at its default: zero (as bits: -0.0 is written),
/// false, empty.
fn is_default(kind: ValueKind, value: &[u8]) -> bool {
    match kind.wire_type() {
        2 => value.is_empty(),
        0 => value == [0],
        _ => value.iter().all(|b| *b == 0),
    }
}

fn write_tagged(number: u32, kind: ValueKind, value: &[u8], out: &mut Vec<u8>) {
    let wire_type = kind.wire_type();
    write_varint(u64::from(number) << 3 | u64::from(wire_type), out);
    if wire_type == 2 {
        write_varint(value.len() as u64, out);
    }
    out.extend_from_slice(value);
}

fn write_message(field: &FieldPlan, body: &[u8], out: &mut Vec<u8>) {
    if field.delimited {
        write_varint(u64::from(field.number) << 3 | 3, out);
        out.extend_from_slice(body);
        write_varint(u64::from(field.number) << 3 | 4, out);
    } else {
        write_varint(u64::from(field.number) << 3 | 2, out);
        write_varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }
}
