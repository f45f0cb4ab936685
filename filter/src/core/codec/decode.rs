//! Protobuf wire format → JSON, straight from wire fields to JSON text with the compiled
//! plans. Output follows the reflection path (prost-reflect's serializer with our print
//! options): declaration order, int64 as strings, enum names, base64 bytes, default values
//! omitted unless `always_print_primitive_fields`.
use std::collections::HashSet;

use base64::Engine;

use crate::core::codec::plan::{FieldPlan, MessagePlan, Plans, Scalar, Shape, ValueKind, WellKnown};
pub(super) use crate::core::codec::wire::read_varint;
use crate::core::codec::wire::{group_extent, MAX_FIELD_NUMBER};
use crate::core::codec::wkt_text;
use crate::core::config::PrintOptions;
use crate::core::error::{Error, Result};

/// Nested messages deeper than this are refused (prost's own recursion limit).
const MAX_DEPTH: u32 = 100;

/// The most JSON one call may append, and the option that sets it (named in the error).
///
/// Printing can amplify: an empty sub-message is 2 bytes on the wire and may print as a whole
/// object (`always_print_primitive_fields`). The limit is checked while printing (at every
/// member, element and string), so the output never grows far past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Bytes this call may still append.
    pub remaining: usize,
    /// The configured limit and its option, for the error.
    pub configured: usize,
    pub option: &'static str,
}

impl OutputLimit {
    pub const NONE: OutputLimit = OutputLimit { remaining: usize::MAX, configured: usize::MAX, option: "" };

    pub fn new(bytes: usize, option: &'static str) -> OutputLimit {
        OutputLimit { remaining: bytes, configured: bytes, option }
    }

    /// The same limit with `used` bytes of it spent already.
    pub fn spent(self, used: usize) -> OutputLimit {
        OutputLimit { remaining: self.remaining.saturating_sub(used), ..self }
    }

    pub fn exceeded(&self) -> Error {
        Error::internal(format!("the JSON response exceeds {} ({} bytes)", self.option, self.configured))
    }
}

/// Appends the JSON of `bytes`, a message of plan `message`, to `out`.
pub fn decode(
    plans: &Plans,
    message: usize,
    bytes: &[u8],
    print: &PrintOptions,
    limit: OutputLimit,
    out: &mut Vec<u8>,
) -> Result<()> {
    let bytes = crate::core::codec::groups::length_prefixed(plans, message, bytes)?;
    let end = out.len().saturating_add(limit.remaining);
    let mut d = Decoder { plans, print, out, indent: 0, depth: 0, end, limit };
    d.message(message, &[&bytes])?;
    d.check()
}

/// Appends the JSON value of field `number` of `bytes`, a message of plan `message` holding
/// only that field (`response_body`); `null` when the field would not be printed.
pub fn decode_field(
    plans: &Plans,
    message: usize,
    number: u32,
    bytes: &[u8],
    print: &PrintOptions,
    limit: OutputLimit,
    out: &mut Vec<u8>,
) -> Result<()> {
    let plan = plans.message(message).ok_or_else(|| Error::internal("message plan missing"))?;
    let (index, field) = plan.field_by_number(number).ok_or_else(|| Error::internal("field missing from its plan"))?;
    let index = u16::try_from(index).unwrap_or(u16::MAX);
    let bytes = crate::core::codec::groups::length_prefixed(plans, message, bytes)?;
    let bytes: &[u8] = &bytes;
    let occurrences =
        collect_runs(plan, &[bytes], |raw| (raw.number == number && counts(plans, field, raw)).then_some(index))?;
    let end = out.len().saturating_add(limit.remaining);
    let mut d = Decoder { plans, print, out, indent: 0, depth: 0, end, limit };
    if !d.field(plan, field, &occurrences, None)? {
        d.out.extend_from_slice(b"null");
    }
    d.check()
}

/// One wire field: number, wire type, and payload (LEN: without length; varint: its bytes;
/// a group: its body, without the end-group tag).
#[derive(Clone, Copy)]
pub(super) struct Raw<'b> {
    pub number: u32,
    pub wire_type: u8,
    pub value: &'b [u8],
    /// The bytes of the field after `value`: a group's end-group tag (0 for other fields).
    pub end_tag: usize,
}

impl Raw<'_> {
    /// One value of the wire type its kind has (no end tag after it).
    pub(super) fn of(number: u32, wire_type: u8, value: &[u8]) -> Raw<'_> {
        Raw { number, wire_type, value, end_tag: 0 }
    }
}

/// Whether an occurrence of `field` counts as the field: not when it is a number a closed
/// enum does not declare (protobuf's parsers keep it as an unknown field). Packed runs count;
/// their unknown numbers are left out one by one.
pub(super) fn counts(plans: &Plans, field: &FieldPlan, raw: &Raw<'_>) -> bool {
    match field.kind {
        ValueKind::Enum(e) if raw.wire_type == 0 && !matches!(field.shape, Shape::Map { .. }) => {
            let n = read_varint(raw.value).map_or(0, |(v, _)| v as i32);
            plans.enumeration(e).is_none_or(|e| e.accepts(n))
        }
        _ => true,
    }
}

pub(super) fn invalid(plan: &MessagePlan, what: &str) -> Error {
    Error::bad_upstream(format!("response is not a valid {} message: {what}", plan.full_name))
}

/// Reads the fields of concatenated chunks (protobuf merge semantics), skipping groups.
pub(super) fn read_fields<'b>(
    plan: &MessagePlan,
    chunks: &[&'b [u8]],
    mut each: impl FnMut(Raw<'b>) -> Result<()>,
) -> Result<()> {
    for chunk in chunks {
        let mut rest: &'b [u8] = chunk;
        while !rest.is_empty() {
            let (key, n) = read_varint(rest).ok_or_else(|| invalid(plan, "truncated field key"))?;
            rest = rest.get(n..).unwrap_or(&[]);
            // Field numbers are 1..=2^29-1; anything else is not a protobuf message.
            let number = u32::try_from(key >> 3)
                .ok()
                .filter(|n| (1..=MAX_FIELD_NUMBER).contains(n))
                .ok_or_else(|| invalid(plan, "invalid field number"))?;
            let wire_type = (key & 7) as u8;
            let (value, tail) = match wire_type {
                0 => {
                    let (_, n) = read_varint(rest).ok_or_else(|| invalid(plan, "truncated varint"))?;
                    rest.split_at_checked(n).ok_or_else(|| invalid(plan, "truncated varint"))?
                }
                1 => rest.split_at_checked(8).ok_or_else(|| invalid(plan, "truncated fixed64"))?,
                5 => rest.split_at_checked(4).ok_or_else(|| invalid(plan, "truncated fixed32"))?,
                2 => {
                    let (len, n) = read_varint(rest).ok_or_else(|| invalid(plan, "truncated length"))?;
                    let len = usize::try_from(len).map_err(|_| invalid(plan, "length too large"))?;
                    let body = rest.get(n..).unwrap_or(&[]);
                    body.split_at_checked(len).ok_or_else(|| invalid(plan, "truncated length-delimited field"))?
                }
                3 => {
                    // A group: its body (nested groups matched) up to its end-group tag.
                    let (body, whole) =
                        group_extent(rest, number).ok_or_else(|| invalid(plan, "unterminated group"))?;
                    let (value, tail) =
                        rest.split_at_checked(whole).ok_or_else(|| invalid(plan, "unterminated group"))?;
                    rest = tail;
                    each(Raw {
                        number,
                        wire_type,
                        value: value.get(..body).unwrap_or(&[]),
                        end_tag: whole.saturating_sub(body),
                    })?;
                    continue;
                }
                _ => return Err(invalid(plan, "invalid wire type")),
            };
            rest = tail;
            each(Raw::of(number, wire_type, value))?;
        }
    }
    Ok(())
}

/// Consecutive occurrences of one field in one chunk: the first, and the bytes of the others
/// (read again when printed). Memory goes by field changes on the wire, not by occurrences: a
/// message of 2M empty repeated elements (4 MB) is one run, not a 2M-entry list.
#[derive(Clone, Copy)]
struct Run<'b> {
    first: Raw<'b>,
    /// The occurrences after `first`, tags included; empty if there are none.
    more: &'b [u8],
}

/// The runs of the fields `index` selects (it gives their plan index; None skips a field), in
/// wire order.
fn collect_runs<'b>(
    plan: &MessagePlan,
    chunks: &[&'b [u8]],
    mut index: impl FnMut(&Raw<'b>) -> Option<u16>,
) -> Result<Vec<(u16, Run<'b>)>> {
    let mut runs: Vec<(u16, Run<'b>)> = Vec::with_capacity(8);
    for &chunk in chunks {
        let base = chunk.as_ptr() as usize;
        let offset_after = |r: &Raw<'_>| {
            (r.value.as_ptr() as usize).saturating_sub(base).saturating_add(r.value.len()).saturating_add(r.end_tag)
        };
        // The selected field just before on the wire (None after any other field).
        let mut previous: Option<u16> = None;
        read_fields(plan, &[chunk], |raw| {
            let Some(i) = index(&raw) else {
                previous = None;
                return Ok(());
            };
            match runs.last_mut() {
                Some((j, run)) if previous == Some(i) && *j == i => {
                    let start = offset_after(&run.first);
                    run.more = chunk.get(start..offset_after(&raw)).unwrap_or_default();
                }
                _ => runs.push((i, Run { first: raw, more: &[] })),
            }
            previous = Some(i);
            Ok(())
        })?;
    }
    Ok(runs)
}

/// Every occurrence of `runs`, in order.
fn each_occurrence<'b>(
    plan: &MessagePlan,
    runs: &[(u16, Run<'b>)],
    mut f: impl FnMut(Raw<'b>) -> Result<()>,
) -> Result<()> {
    for (_, run) in runs {
        f(run.first)?;
        if !run.more.is_empty() {
            read_fields(plan, &[run.more], &mut f)?;
        }
    }
    Ok(())
}

fn fixed32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(a)
}

fn fixed64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(a)
}

/// A decoded scalar value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    I(i64),
    U(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
}

struct Decoder<'p, 'o> {
    plans: &'p Plans,
    print: &'p PrintOptions,
    out: &'o mut Vec<u8>,
    indent: usize,
    depth: u32,
    /// `out` may not grow past this length.
    end: usize,
    limit: OutputLimit,
}

impl Decoder<'_, '_> {
    fn plan(&self, index: usize) -> Result<&MessagePlan> {
        self.plans.message(index).ok_or_else(|| Error::internal("message plan missing"))
    }

    // ---- JSON writing -------------------------------------------------------------------

    fn newline(&mut self) {
        if self.print.add_whitespace {
            self.out.push(b'\n');
            for _ in 0..self.indent {
                self.out.extend_from_slice(b"  ");
            }
        }
    }

    /// The output limit, checked before each member and element: past it, nothing more is
    /// written than the value in progress.
    fn check(&self) -> Result<()> {
        if self.out.len() > self.end {
            return Err(self.limit.exceeded());
        }
        Ok(())
    }

    /// Writes `,` (unless first) and the key of an object member.
    fn key(&mut self, first: &mut bool, name: &str) -> Result<()> {
        // (`reserve` is `check` with room for the name.)
        self.reserve(name.len())?;
        if !*first {
            self.out.push(b',');
        }
        *first = false;
        self.newline();
        string(self.out, name);
        self.out.push(b':');
        if self.print.add_whitespace {
            self.out.push(b' ');
        }
        Ok(())
    }

    fn element(&mut self, first: &mut bool) -> Result<()> {
        self.check()?;
        if !*first {
            self.out.push(b',');
        }
        *first = false;
        self.newline();
        Ok(())
    }

    /// A string of `len` bytes prints as at least `len` bytes: refused before it is written.
    fn reserve(&self, len: usize) -> Result<()> {
        if self.out.len().saturating_add(len) > self.end {
            return Err(self.limit.exceeded());
        }
        Ok(())
    }

    fn open(&mut self, c: u8) {
        self.out.push(c);
        self.indent += 1;
    }

    fn close(&mut self, c: u8, empty: bool) {
        self.indent = self.indent.saturating_sub(1);
        if !empty {
            self.newline();
        }
        self.out.push(c);
    }

    fn field_name<'f>(&self, f: &'f FieldPlan) -> &'f str {
        if self.print.preserve_proto_field_names {
            &f.proto_name
        } else {
            &f.json_name
        }
    }

    // ---- messages -----------------------------------------------------------------------

    fn message(&mut self, index: usize, chunks: &[&[u8]]) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::bad_upstream("response message nested too deeply"));
        }
        let plans = self.plans;
        let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
        let result = match plan.well_known.filter(|w| w.custom_json()) {
            Some(wk) => self.well_known(wk, plan, chunks),
            None => {
                self.open(b'{');
                let mut first = true;
                self.fields(plan, chunks, &mut first)?;
                self.close(b'}', first);
                Ok(())
            }
        };
        self.depth -= 1;
        result
    }

    /// Writes the members of a message's object (after `{`, possibly after `@type`).
    fn fields(&mut self, plan: &MessagePlan, chunks: &[&[u8]], first: &mut bool) -> Result<()> {
        // Per oneof, the member set last (later members replace earlier ones); on the stack for
        // the usual few oneofs (this runs for every message printed).
        let oneofs = usize::from(plan.oneofs);
        let mut few = [None; 4];
        let mut many = Vec::new();
        let oneof_last: &mut [Option<u16>] = match few.get_mut(..oneofs) {
            Some(few) => few,
            None => {
                many.resize(oneofs, None);
                &mut many
            }
        };
        // Every field's occurrences (as runs), grouped by field in declaration order afterwards.
        let plans = self.plans;
        let mut found = collect_runs(plan, chunks, |raw| {
            let (i, f) = plan.field_by_number(raw.number)?;
            if !counts(plans, f, raw) {
                // A closed enum's unknown number: an unknown field, as protobuf parses it.
                return None;
            }
            let i = u16::try_from(i).unwrap_or(u16::MAX);
            if let Some(slot) = f.oneof.and_then(|o| oneof_last.get_mut(usize::from(o))) {
                *slot = Some(i);
            }
            Some(i)
        })?;
        // Grouped by field, in wire order within a field. Encoders write fields in order, so
        // this is usually sorted already; otherwise an in-place sort (no scratch memory the size
        // of the list): every occurrence lies in the one response buffer, so its address is
        // its wire order.
        if !found.is_sorted_by_key(|(i, _)| *i) {
            found.sort_unstable_by_key(|(i, run)| (*i, run.first.value.as_ptr() as usize));
        }
        let mut next = 0usize;
        for (i, field) in plan.fields.iter().enumerate() {
            let start = next;
            while found.get(next).is_some_and(|(j, _)| usize::from(*j) == i) {
                next += 1;
            }
            let occurrences = found.get(start..next).unwrap_or(&[]);
            if let Some(o) = field.oneof {
                let last = oneof_last.get(usize::from(o)).copied().flatten();
                if last != u16::try_from(i).ok() {
                    // Replaced by a later member: not printed, but still checked as protobuf does.
                    let (plans, depth) = (self.plans, self.depth);
                    each_occurrence(plan, occurrences, |raw| {
                        crate::core::codec::validate::occurrence(plans, plan, field, raw, depth)
                    })?;
                    continue;
                }
            }
            self.field(plan, field, occurrences, Some(&mut *first))?;
        }
        Ok(())
    }

    /// Writes a field of `parent`: its key (unless `first` is None: the value alone) and its
    /// value. False when the field is not printed (absent, or a default not asked for).
    fn field(
        &mut self,
        parent: &MessagePlan,
        field: &FieldPlan,
        occurrences: &[(u16, Run<'_>)],
        first: Option<&mut bool>,
    ) -> Result<bool> {
        let always = self.print.always_print_primitive_fields;
        match field.shape {
            Shape::Single { presence } => {
                if let ValueKind::Message(m) = field.kind {
                    if occurrences.is_empty() {
                        return Ok(false);
                    }
                    // Every occurrence merges into the one message (usually there is one).
                    if let [(_, Run { first: only, more: [] })] = occurrences {
                        if only.wire_type != 2 {
                            return Err(self.wrong_type(field));
                        }
                        self.field_key(field, first)?;
                        self.message(m, &[only.value])?;
                        return Ok(true);
                    }
                    let mut chunks: Vec<&[u8]> = Vec::new();
                    let mut wrong = false;
                    each_occurrence(parent, occurrences, |r| {
                        wrong |= r.wire_type != 2;
                        chunks.push(r.value);
                        Ok(())
                    })?;
                    if wrong {
                        return Err(self.wrong_type(field));
                    }
                    self.field_key(field, first)?;
                    self.message(m, &chunks)?;
                    return Ok(true);
                }
                // Overwritten occurrences must still be valid (type, UTF-8), as protobuf's
                // parser checks every one; duplicates are rare, so this costs nothing usually.
                let mut last = None;
                each_occurrence(parent, occurrences, |raw| {
                    if let Some(earlier) = last.replace(raw) {
                        self.scalar_value(field, field.kind, earlier)?;
                    }
                    Ok(())
                })?;
                let value = match last {
                    Some(raw) => Some(self.scalar_value(field, field.kind, raw)?),
                    None => None,
                };
                let print = match &value {
                    Some(v) => presence || !is_default(v) || always,
                    None => always && !presence,
                };
                if !print {
                    return Ok(false);
                }
                self.field_key(field, first)?;
                match value {
                    Some(v) => self.write_value(field.kind, &v)?,
                    None => self.write_default(field.kind)?,
                }
                Ok(true)
            }
            Shape::Repeated { .. } => {
                // Printed as read, element by element: no list of values is built (a packed
                // run of one-byte varints would take 20x its size as a list).
                // (Stops at the first element: usually the first occurrence.)
                let mut empty = true;
                for (_, run) in occurrences {
                    empty = !self.has_element(field, &run.first);
                    if empty && !run.more.is_empty() {
                        read_fields(parent, &[run.more], |r| {
                            empty &= !self.has_element(field, &r);
                            Ok(())
                        })?;
                    }
                    if !empty {
                        break;
                    }
                }
                if empty && !always {
                    return Ok(false);
                }
                self.field_key(field, first)?;
                self.open(b'[');
                let mut first_element = true;
                each_occurrence(parent, occurrences, |raw| self.repeated_values(field, raw, &mut first_element))?;
                self.close(b']', first_element);
                Ok(true)
            }
            Shape::Map { key, value } => {
                if occurrences.is_empty() && !always {
                    return Ok(false);
                }
                let mut entries = Vec::new();
                each_occurrence(parent, occurrences, |raw| {
                    entries.push(raw);
                    Ok(())
                })?;
                self.field_key(field, first)?;
                self.map(field, key, value, &entries)?;
                Ok(true)
            }
        }
    }

    fn field_key(&mut self, field: &FieldPlan, first: Option<&mut bool>) -> Result<()> {
        match first {
            Some(first) => {
                let name = self.field_name(field);
                self.key(first, name)
            }
            None => Ok(()),
        }
    }

    fn wrong_type(&self, field: &FieldPlan) -> Error {
        Error::bad_upstream(format!("response field \"{}\" has the wrong wire type", field.proto_name))
    }

    /// Whether an occurrence of a repeated field holds an element to print: not an empty
    /// packed run, nor one made only of a closed enum's unknown numbers.
    fn has_element(&self, field: &FieldPlan, raw: &Raw<'_>) -> bool {
        let packed = !matches!(field.kind, ValueKind::Message(_)) && field.kind.wire_type() != 2 && raw.wire_type == 2;
        if !packed {
            return true;
        }
        let closed = match field.kind {
            ValueKind::Enum(e) => self.plans.enumeration(e).filter(|e| e.closed),
            _ => None,
        };
        let Some(closed) = closed else { return !raw.value.is_empty() };
        let mut rest = raw.value;
        while !rest.is_empty() {
            let Some((v, n)) = read_varint(rest) else {
                // Malformed: printing it reports the error.
                return true;
            };
            if closed.accepts(v as i32) {
                return true;
            }
            rest = rest.get(n..).unwrap_or(&[]);
        }
        false
    }

    /// Prints the elements of one occurrence of a repeated field (a packed run: each value).
    fn repeated_values(&mut self, field: &FieldPlan, raw: Raw<'_>, first: &mut bool) -> Result<()> {
        match field.kind {
            ValueKind::Message(m) => {
                if raw.wire_type != 2 {
                    return Err(self.wrong_type(field));
                }
                self.element(first)?;
                self.message(m, &[raw.value])?;
            }
            kind => {
                let plans = self.plans;
                let known = |v: &Value<'_>| match (kind, v) {
                    (ValueKind::Enum(e), Value::Num(Num::I(n))) => {
                        plans.enumeration(e).is_none_or(|e| e.accepts(*n as i32))
                    }
                    _ => true,
                };
                let element_wire = kind.wire_type();
                if raw.wire_type == 2 && element_wire != 2 {
                    // Packed: a run of values.
                    let mut rest = raw.value;
                    while !rest.is_empty() {
                        let n = match element_wire {
                            0 => read_varint(rest).map(|(_, n)| n),
                            1 => Some(8),
                            _ => Some(4),
                        };
                        let n = n.filter(|n| *n <= rest.len()).ok_or_else(|| self.wrong_type(field))?;
                        let (one, tail) = rest.split_at(n);
                        rest = tail;
                        let value = self.scalar_value(field, kind, Raw::of(raw.number, element_wire, one))?;
                        // A closed enum's unknown number is an unknown field, not an element.
                        if known(&value) {
                            self.element(first)?;
                            self.write_value(kind, &value)?;
                        }
                    }
                } else {
                    let value = self.scalar_value(field, kind, raw)?;
                    if known(&value) {
                        self.element(first)?;
                        self.write_value(kind, &value)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn map(
        &mut self,
        field: &FieldPlan,
        key_kind: Scalar,
        value_kind: ValueKind,
        occurrences: &[Raw<'_>],
    ) -> Result<()> {
        let plans = self.plans;
        let entry_plan = MessagePlan { full_name: std::sync::Arc::from(&*field.proto_name), ..MessagePlan::empty() };
        // (key text, value occurrence, the entry) in wire order; duplicates keep the last value.
        let mut entries: Vec<(String, Option<Raw<'_>>, Raw<'_>)> = Vec::with_capacity(occurrences.len());
        let closed_enum = match value_kind {
            ValueKind::Enum(e) => plans.enumeration(e).filter(|e| e.closed),
            _ => None,
        };
        for raw in occurrences {
            if raw.wire_type != 2 {
                return Err(self.wrong_type(field));
            }
            let mut key: Option<Raw<'_>> = None;
            let mut value: Option<Raw<'_>> = None;
            let this = &*self;
            read_fields(&entry_plan, &[raw.value], |r| {
                // An overwritten key or scalar value must still be valid, as protobuf checks.
                match r.number {
                    1 => {
                        if let Some(earlier) = key.replace(r) {
                            this.map_key_text(field, key_kind, earlier)?;
                        }
                    }
                    2 => {
                        if let (Some(earlier), false) = (value.replace(r), matches!(value_kind, ValueKind::Message(_)))
                        {
                            this.scalar_value(field, value_kind, earlier)?;
                        }
                    }
                    _ => {}
                }
                Ok(())
            })?;
            let key_text = match key {
                Some(k) => self.map_key_text(field, key_kind, k)?,
                None => default_key_text(key_kind),
            };
            if let (Some(e), Some(v)) = (closed_enum, value.filter(|v| v.wire_type == 0)) {
                if !e.accepts(read_varint(v.value).map_or(0, |(n, _)| n as i32)) {
                    // A closed enum's unknown number: protobuf keeps the whole entry as an
                    // unknown field (it replaces no earlier entry).
                    continue;
                }
            }
            entries.push((key_text, value, *raw));
        }
        // Duplicate keys: the last entry wins (as a decoded map would hold).
        let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
        let mut keep = vec![false; entries.len()];
        for (i, (k, _, _)) in entries.iter().enumerate().rev() {
            if seen.insert(k.as_str()) {
                if let Some(slot) = keep.get_mut(i) {
                    *slot = true;
                }
            }
        }
        self.open(b'{');
        let mut first = true;
        for ((key, value, raw), keep) in entries.iter().zip(keep) {
            if !keep {
                // Replaced by a later entry with the same key: not printed, still checked.
                crate::core::codec::validate::occurrence(plans, &entry_plan, field, *raw, self.depth)?;
                continue;
            }
            self.key(&mut first, key)?;
            match (value_kind, value) {
                (ValueKind::Message(m), Some(v)) => {
                    if v.wire_type != 2 {
                        return Err(self.wrong_type(field));
                    }
                    self.message(m, &[v.value])?;
                }
                (ValueKind::Message(m), None) => self.message(m, &[])?,
                (kind, Some(v)) => {
                    let v = self.scalar_value(field, kind, *v)?;
                    self.write_value(kind, &v)?;
                }
                (kind, None) => self.write_default(kind)?,
            }
        }
        self.close(b'}', first);
        Ok(())
    }

    fn map_key_text(&self, field: &FieldPlan, kind: Scalar, raw: Raw<'_>) -> Result<String> {
        let v = self.scalar_value(field, ValueKind::Scalar(kind), raw)?;
        Ok(match v {
            Value::Str(s) => s.to_string(),
            Value::Lossy(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Num(Num::I(i)) => i.to_string(),
            Value::Num(Num::U(u)) => u.to_string(),
            Value::Num(Num::Bool(b)) => b.to_string(),
            _ => return Err(self.wrong_type(field)),
        })
    }

    /// One scalar or enum value from its wire bytes.
    fn scalar_value<'b>(&self, field: &FieldPlan, kind: ValueKind, raw: Raw<'b>) -> Result<Value<'b>> {
        let expected = kind.wire_type();
        if raw.wire_type != expected {
            return Err(self.wrong_type(field));
        }
        let varint = || read_varint(raw.value).map(|(v, _)| v).unwrap_or(0);
        Ok(match kind {
            ValueKind::Enum(_) => Value::Num(Num::I(i64::from(varint() as i32))),
            ValueKind::Message(_) => return Err(self.wrong_type(field)),
            ValueKind::Scalar(s) => match s {
                Scalar::Int32 => Value::Num(Num::I(i64::from(varint() as i32))),
                Scalar::Int64 => Value::Num(Num::I(varint() as i64)),
                Scalar::Uint32 => Value::Num(Num::U(u64::from(varint() as u32))),
                Scalar::Uint64 => Value::Num(Num::U(varint())),
                Scalar::Sint32 => {
                    let v = varint() as u32;
                    Value::Num(Num::I(i64::from((v >> 1) as i32 ^ -((v & 1) as i32))))
                }
                Scalar::Sint64 => {
                    let v = varint();
                    Value::Num(Num::I((v >> 1) as i64 ^ -((v & 1) as i64)))
                }
                Scalar::Fixed32 => Value::Num(Num::U(u64::from(fixed32(raw.value)))),
                Scalar::Sfixed32 => Value::Num(Num::I(i64::from(fixed32(raw.value) as i32))),
                Scalar::Fixed64 => Value::Num(Num::U(fixed64(raw.value))),
                Scalar::Sfixed64 => Value::Num(Num::I(fixed64(raw.value) as i64)),
                Scalar::Float => Value::Num(Num::F32(f32::from_bits(fixed32(raw.value)))),
                Scalar::Double => Value::Num(Num::F64(f64::from_bits(fixed64(raw.value)))),
                Scalar::Bool => Value::Num(Num::Bool(varint() != 0)),
                Scalar::String => match std::str::from_utf8(raw.value) {
                    Ok(s) => Value::Str(s),
                    // utf8_validation = NONE (proto2): any bytes; printed with U+FFFD for each
                    // invalid sequence (as Java's JsonFormat does).
                    Err(_) if !field.verify_utf8 => Value::Lossy(raw.value),
                    Err(_) => {
                        return Err(Error::bad_upstream(format!(
                            "response field \"{}\" is not valid UTF-8",
                            field.proto_name
                        )))
                    }
                },
                Scalar::Bytes => Value::Bytes(raw.value),
            },
        })
    }

    fn write_value(&mut self, kind: ValueKind, v: &Value<'_>) -> Result<()> {
        match (kind, v) {
            (ValueKind::Enum(e), Value::Num(Num::I(n))) => {
                let n = *n as i32;
                let plan = self.plans.enumeration(e);
                if plan.is_some_and(|p| p.is_null_value) {
                    self.out.extend_from_slice(b"null");
                } else if self.print.always_print_enums_as_ints {
                    self.out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                } else if let Some(name) = plan.and_then(|p| p.by_number.get(&n)) {
                    string(self.out, name);
                } else {
                    self.out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                }
            }
            (ValueKind::Scalar(s), Value::Num(Num::I(i))) => {
                if matches!(s, Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64) && !self.print.int64_as_numbers {
                    self.out.push(b'"');
                    self.out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
                    self.out.push(b'"');
                } else {
                    self.out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
                }
            }
            (ValueKind::Scalar(s), Value::Num(Num::U(u))) => {
                if matches!(s, Scalar::Uint64 | Scalar::Fixed64) && !self.print.int64_as_numbers {
                    self.out.push(b'"');
                    self.out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes());
                    self.out.push(b'"');
                } else {
                    self.out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes());
                }
            }
            (_, Value::Num(Num::F32(f))) => {
                if f.is_finite() {
                    self.out.extend_from_slice(zmij::Buffer::new().format_finite(*f).as_bytes());
                } else {
                    non_finite(self.out, f.is_nan(), *f > 0.0);
                }
            }
            (_, Value::Num(Num::F64(f))) => {
                if f.is_finite() {
                    self.out.extend_from_slice(zmij::Buffer::new().format_finite(*f).as_bytes());
                } else {
                    non_finite(self.out, f.is_nan(), *f > 0.0);
                }
            }
            (_, Value::Num(Num::Bool(b))) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
            (_, Value::Str(s)) => {
                self.reserve(s.len())?;
                string(self.out, s)
            }
            (_, Value::Lossy(b)) => {
                self.reserve(b.len())?;
                string(self.out, &String::from_utf8_lossy(b))
            }
            (_, Value::Bytes(b)) => {
                self.reserve(b.len())?;
                self.out.push(b'"');
                let encoded = base64::engine::general_purpose::STANDARD.encode(b);
                self.out.extend_from_slice(encoded.as_bytes());
                self.out.push(b'"');
            }
            _ => return Err(Error::internal("value does not match its kind")),
        }
        Ok(())
    }

    fn write_default(&mut self, kind: ValueKind) -> Result<()> {
        let v = match kind {
            ValueKind::Enum(_) => Value::Num(Num::I(0)),
            ValueKind::Message(m) => return self.message(m, &[]),
            ValueKind::Scalar(s) => match s {
                Scalar::Int32
                | Scalar::Int64
                | Scalar::Sint32
                | Scalar::Sint64
                | Scalar::Sfixed32
                | Scalar::Sfixed64 => Value::Num(Num::I(0)),
                Scalar::Uint32 | Scalar::Uint64 | Scalar::Fixed32 | Scalar::Fixed64 => Value::Num(Num::U(0)),
                Scalar::Float => Value::Num(Num::F32(0.0)),
                Scalar::Double => Value::Num(Num::F64(0.0)),
                Scalar::Bool => Value::Num(Num::Bool(false)),
                Scalar::String => Value::Str(""),
                Scalar::Bytes => Value::Bytes(&[]),
            },
        };
        self.write_value(kind, &v)
    }

    // ---- well-known types ---------------------------------------------------------------

    fn well_known(&mut self, wk: WellKnown, plan: &MessagePlan, chunks: &[&[u8]]) -> Result<()> {
        match wk {
            WellKnown::Timestamp | WellKnown::Duration => {
                let (mut seconds, mut nanos) = (0i64, 0i32);
                read_fields(plan, chunks, |r| {
                    match (r.number, r.wire_type) {
                        (1, 0) => seconds = read_varint(r.value).map_or(0, |(v, _)| v as i64),
                        (2, 0) => nanos = read_varint(r.value).map_or(0, |(v, _)| v as i32),
                        (1 | 2, _) => return Err(invalid(plan, "wrong wire type")),
                        _ => {}
                    }
                    Ok(())
                })?;
                self.out.push(b'"');
                let formatted = if wk == WellKnown::Timestamp {
                    wkt_text::format_timestamp(seconds, nanos, self.out)
                } else {
                    wkt_text::format_duration(seconds, nanos, self.out)
                };
                formatted.map_err(|e| Error::bad_upstream(format!("response {}: {e}", plan.full_name)))?;
                self.out.push(b'"');
                Ok(())
            }
            WellKnown::FieldMask => {
                let mut paths: Vec<&str> = Vec::new();
                read_fields(plan, chunks, |r| {
                    if r.number == 1 {
                        if r.wire_type != 2 {
                            return Err(invalid(plan, "wrong wire type"));
                        }
                        paths.push(std::str::from_utf8(r.value).map_err(|_| invalid(plan, "invalid UTF-8"))?);
                    }
                    Ok(())
                })?;
                let mut text = Vec::new();
                for (i, p) in paths.iter().enumerate() {
                    if i > 0 {
                        text.push(b',');
                    }
                    wkt_text::field_mask_path_to_json(p, &mut text)
                        .map_err(|e| Error::bad_upstream(format!("response {}: {e}", plan.full_name)))?;
                }
                // Paths may hold quotes or control characters: written as an escaped string.
                let text = std::str::from_utf8(&text).map_err(|_| invalid(plan, "invalid UTF-8"))?;
                string(self.out, text);
                Ok(())
            }
            WellKnown::Wrapper(s) => {
                let field = plan.fields.first().ok_or_else(|| Error::internal("wrapper without field"))?;
                let mut last = None;
                let this = &*self;
                read_fields(plan, chunks, |r| {
                    if r.number == 1 {
                        // An overwritten value must still be valid, as protobuf checks.
                        if let Some(earlier) = last.replace(r) {
                            this.scalar_value(field, ValueKind::Scalar(s), earlier)?;
                        }
                    }
                    Ok(())
                })?;
                match last {
                    Some(raw) => {
                        let v = self.scalar_value(field, ValueKind::Scalar(s), raw)?;
                        self.write_value(ValueKind::Scalar(s), &v)
                    }
                    None => self.write_default(ValueKind::Scalar(s)),
                }
            }
            WellKnown::Struct => {
                let mut entries: Vec<&[u8]> = Vec::new();
                read_fields(plan, chunks, |r| {
                    match (r.number, r.wire_type) {
                        (1, 2) => entries.push(r.value),
                        (1, _) => return Err(invalid(plan, "wrong wire type")),
                        _ => {}
                    }
                    Ok(())
                })?;
                self.struct_object(plan, &entries)
            }
            WellKnown::ListValue => {
                let mut values: Vec<&[u8]> = Vec::new();
                read_fields(plan, chunks, |r| {
                    match (r.number, r.wire_type) {
                        (1, 2) => values.push(r.value),
                        (1, _) => return Err(invalid(plan, "wrong wire type")),
                        _ => {}
                    }
                    Ok(())
                })?;
                self.list(plan, &values)
            }
            WellKnown::Value => self.value(plan, chunks),
            WellKnown::Any => self.any(plan, chunks),
            WellKnown::Empty => Ok(()),
        }
    }

    fn value_plan(&self, plan: &MessagePlan) -> Result<usize> {
        let index = match plan.well_known {
            Some(WellKnown::Value) => self.plans.index_of(&plan.full_name),
            _ => self.plans.index_of("google.protobuf.Value"),
        };
        index.ok_or_else(|| Error::internal("google.protobuf.Value plan missing"))
    }

    fn struct_object(&mut self, plan: &MessagePlan, entries: &[&[u8]]) -> Result<()> {
        let value = self.value_plan(plan)?;
        let plans = self.plans;
        // Values not printed (replaced by a later one) are still checked, as protobuf does.
        let check = |bytes: &[u8]| crate::core::codec::validate::validate(plans, value, bytes);
        let mut items: Vec<(&str, Option<&[u8]>)> = Vec::with_capacity(entries.len());
        for e in entries {
            let mut key = "";
            let mut val = None;
            read_fields(plan, &[e], |r| {
                match (r.number, r.wire_type) {
                    (1, 2) => key = std::str::from_utf8(r.value).map_err(|_| invalid(plan, "invalid UTF-8"))?,
                    (2, 2) => {
                        if let Some(earlier) = val.replace(r.value) {
                            check(earlier)?;
                        }
                    }
                    (1 | 2, _) => return Err(invalid(plan, "wrong wire type")),
                    _ => {}
                }
                Ok(())
            })?;
            items.push((key, val));
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(items.len());
        let mut keep = vec![false; items.len()];
        for (i, (k, _)) in items.iter().enumerate().rev() {
            if seen.insert(k) {
                if let Some(slot) = keep.get_mut(i) {
                    *slot = true;
                }
            }
        }
        self.open(b'{');
        let mut first = true;
        for ((k, v), keep) in items.iter().zip(keep) {
            if !keep {
                if let Some(v) = v {
                    check(v)?;
                }
                continue;
            }
            self.key(&mut first, k)?;
            match v {
                Some(v) => self.message(value, &[v])?,
                None => self.message(value, &[])?,
            }
        }
        self.close(b'}', first);
        Ok(())
    }

    fn list(&mut self, plan: &MessagePlan, values: &[&[u8]]) -> Result<()> {
        let value = self.value_plan(plan)?;
        self.open(b'[');
        let mut first = true;
        for v in values {
            self.element(&mut first)?;
            self.message(value, &[v])?;
        }
        self.close(b']', values.is_empty());
        Ok(())
    }

    fn value(&mut self, plan: &MessagePlan, chunks: &[&[u8]]) -> Result<()> {
        // The oneof `kind`: the member set last wins; sub-messages merge. Replaced members are
        // not printed but still checked, as protobuf's parser checks every occurrence.
        let (plans, depth) = (self.plans, self.depth);
        let check = |r: Raw<'_>| match plan.field_by_number(r.number) {
            Some((_, field)) => crate::core::codec::validate::occurrence(plans, plan, field, r, depth),
            None => Ok(()),
        };
        let mut kind: Option<Raw<'_>> = None;
        let mut merged: Vec<Raw<'_>> = Vec::new();
        read_fields(plan, chunks, |r| {
            if (1..=6).contains(&r.number) {
                if kind.is_some_and(|k| k.number != r.number) || !matches!(r.number, 5 | 6) {
                    if let Some(k) = kind.filter(|k| !matches!(k.number, 5 | 6)) {
                        check(k)?;
                    }
                    for m in merged.drain(..) {
                        check(m)?;
                    }
                }
                if matches!(r.number, 5 | 6) {
                    merged.push(r);
                }
                kind = Some(r);
            }
            Ok(())
        })?;
        if merged.iter().any(|m| m.wire_type != 2) {
            return Err(invalid(plan, "wrong wire type in Value"));
        }
        let parts = || merged.iter().map(|m| m.value).collect::<Vec<&[u8]>>();
        let Some(k) = kind else {
            // A Value with no kind set prints as null, as protobuf's printer does.
            self.out.extend_from_slice(b"null");
            return Ok(());
        };
        match (k.number, k.wire_type) {
            (1, 0) => self.out.extend_from_slice(b"null"),
            (2, 1) => {
                let f = f64::from_bits(fixed64(k.value));
                if !f.is_finite() {
                    return Err(Error::bad_upstream("response google.protobuf.Value holds a non-finite number"));
                }
                self.out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes());
            }
            (3, 2) => {
                self.reserve(k.value.len())?;
                string(self.out, std::str::from_utf8(k.value).map_err(|_| invalid(plan, "invalid UTF-8"))?)
            }
            (4, 0) => {
                let b = read_varint(k.value).is_some_and(|(v, _)| v != 0);
                self.out.extend_from_slice(if b { b"true" } else { b"false" });
            }
            (5, 2) => {
                let s = self
                    .plans
                    .index_of("google.protobuf.Struct")
                    .ok_or_else(|| Error::internal("Struct plan missing"))?;
                self.message(s, &parts())?;
            }
            (6, 2) => {
                let l = self
                    .plans
                    .index_of("google.protobuf.ListValue")
                    .ok_or_else(|| Error::internal("ListValue plan missing"))?;
                self.message(l, &parts())?;
            }
            _ => return Err(invalid(plan, "wrong wire type in Value")),
        }
        Ok(())
    }

    fn any(&mut self, plan: &MessagePlan, chunks: &[&[u8]]) -> Result<()> {
        let mut type_url = "";
        let mut value: Vec<&[u8]> = Vec::new();
        read_fields(plan, chunks, |r| {
            match (r.number, r.wire_type) {
                (1, 2) => type_url = std::str::from_utf8(r.value).map_err(|_| invalid(plan, "invalid UTF-8"))?,
                // Bytes fields do not merge: the last occurrence wins.
                (2, 2) => value = vec![r.value],
                (1 | 2, _) => return Err(invalid(plan, "wrong wire type")),
                _ => {}
            }
            Ok(())
        })?;
        if type_url.is_empty() && value.is_empty() {
            self.out.extend_from_slice(b"{}");
            return Ok(());
        }
        let Some((_, name)) = type_url.rsplit_once('/') else {
            return Err(Error::bad_upstream(format!("response Any type URL {type_url:?} has no '/'")));
        };
        let target = self.plans.index_of(name).ok_or_else(|| {
            Error::bad_upstream(format!("response Any type {type_url:?} is not in the descriptor set"))
        })?;
        let target_plan = self.plan(target)?;
        let is_wkt = target_plan.well_known.is_some();
        // The value is the encoding of a message of the target type: its delimited fields are
        // rewritten as the whole response's were.
        let normalized = match value.first() {
            Some(v) => Some(crate::core::codec::groups::length_prefixed(self.plans, target, v)?),
            None => None,
        };
        let value: Vec<&[u8]> = normalized.iter().map(|v| v.as_ref()).collect();
        self.open(b'{');
        let mut first = true;
        self.key(&mut first, "@type")?;
        self.reserve(type_url.len())?;
        string(self.out, type_url);
        if is_wkt {
            self.key(&mut first, "value")?;
            self.message(target, &value)?;
        } else {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(Error::bad_upstream("response message nested too deeply"));
            }
            let plans = self.plans;
            let target_plan = plans.message(target).ok_or_else(|| Error::internal("message plan missing"))?;
            self.fields(target_plan, &value, &mut first)?;
            self.depth -= 1;
        }
        self.close(b'}', false);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'b> {
    Num(Num),
    Str(&'b str),
    /// A string field's bytes that are not UTF-8 (allowed by `utf8_validation = NONE`).
    Lossy(&'b [u8]),
    Bytes(&'b [u8]),
}

fn is_default(v: &Value<'_>) -> bool {
    match v {
        Value::Num(Num::I(i)) => *i == 0,
        Value::Num(Num::U(u)) => *u == 0,
        Value::Num(Num::F32(f)) => f.to_bits() == 0,
        Value::Num(Num::F64(f)) => f.to_bits() == 0,
        Value::Num(Num::Bool(b)) => !*b,
        Value::Str(s) => s.is_empty(),
        Value::Lossy(b) => b.is_empty(),
        Value::Bytes(b) => b.is_empty(),
    }
}

fn default_key_text(kind: Scalar) -> String {
    match kind {
        Scalar::Bool => "false".to_string(),
        Scalar::String => String::new(),
        _ => "0".to_string(),
    }
}

fn non_finite(out: &mut Vec<u8>, nan: bool, positive: bool) {
    out.extend_from_slice(if nan {
        b"\"NaN\""
    } else if positive {
        b"\"Infinity\""
    } else {
        b"\"-Infinity\""
    });
}

/// A JSON string with serde_json's escaping (quotes, backslash, control characters).
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            8 => b"\\b",
            12 => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or(&[]));
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
            out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or(&[]));
    out.push(b'"');
}
