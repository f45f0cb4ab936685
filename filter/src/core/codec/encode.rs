//! JSON → protobuf wire format, straight from JSON tokens to bytes with the compiled plans: no
//! message tree is built or freed. Semantics follow the reflection path (prost-reflect + our
//! strictness: unknown enum names and duplicate keys are errors); a differential test keeps
//! both paths in agreement.
use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr;

use crate::core::codec::json::ParseOptions;
use crate::core::codec::plan::{FieldPlan, MessagePlan, Plans, Scalar, Shape, ValueKind, WellKnown};
use crate::core::codec::reader::{Number, Reader};
use crate::core::codec::wire::{message_field, nested, zigzag32, zigzag64};
use crate::core::codec::wire::{write_tag, write_varint};
use crate::core::codec::wkt_text;
use crate::core::config::decode_base64;
use crate::core::error::{Error, Result};

/// Field numbers of the well-known types' fields.
mod wkt {
    pub const VALUE_NULL: u32 = 1;
    pub const VALUE_NUMBER: u32 = 2;
    pub const VALUE_STRING: u32 = 3;
    pub const VALUE_BOOL: u32 = 4;
    pub const VALUE_STRUCT: u32 = 5;
    pub const VALUE_LIST: u32 = 6;
}

/// Encodes the JSON `json` as a message of plan `message` into `out`.
pub fn encode(plans: &Plans, message: usize, json: &[u8], options: &ParseOptions, out: &mut Vec<u8>) -> Result<()> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let mut encoder = Encoder { plans, options, reader: Reader::new(json, options.max_depth)? };
    encoder.message(message, out, false)?;
    encoder.reader.end()
}

/// Encodes the JSON `json` as the value of field `number` of message `message` (the
/// `body: "field"` binding), appended to `out` as that field's occurrences. The body must be
/// exactly one JSON value: nothing after it can reach the field's siblings.
pub fn encode_field(
    plans: &Plans,
    message: usize,
    number: u32,
    json: &[u8],
    options: &ParseOptions,
    out: &mut Vec<u8>,
) -> Result<()> {
    let plan = plans.message(message).ok_or_else(|| Error::internal("message plan missing"))?;
    let (_, field) = plan.field_by_number(number).ok_or_else(|| Error::internal("body field missing from its plan"))?;
    let mut encoder = Encoder { plans, options, reader: Reader::new(json, options.max_depth)? };
    if encoder.reader.null()? {
        encoder.null_value(field, out)?;
    } else {
        encoder.field(field, out)?;
    }
    encoder.reader.end()
}

struct Encoder<'p, 'a> {
    plans: &'p Plans,
    options: &'p ParseOptions,
    reader: Reader<'a>,
}

/// Which fields an object set, for duplicate and oneof checks (no allocation up to 128 fields).
struct Seen {
    small: u128,
    large: Vec<u64>,
}

impl Seen {
    fn new(fields: usize) -> Seen {
        Seen { small: 0, large: if fields > 128 { vec![0; fields.div_ceil(64)] } else { Vec::new() } }
    }

    /// Marks `i`; false if it was already marked.
    fn insert(&mut self, i: usize) -> bool {
        if self.large.is_empty() {
            let bit = 1u128.checked_shl(u32::try_from(i).unwrap_or(u32::MAX)).unwrap_or(0);
            let fresh = self.small & bit == 0;
            self.small |= bit;
            return fresh;
        }
        match self.large.get_mut(i / 64) {
            Some(word) => {
                let bit = 1u64 << (i % 64);
                let fresh = *word & bit == 0;
                *word |= bit;
                fresh
            }
            None => true,
        }
    }
}

impl Encoder<'_, '_> {
    fn plan(&self, index: usize) -> Result<&MessagePlan> {
        self.plans.message(index).ok_or_else(|| Error::internal("message plan missing"))
    }

    /// Encodes the fields of one message (without tag and length) from the next JSON value.
    /// `skip_type_key`: the object is an Any's, whose `@type` was read already.
    fn message(&mut self, index: usize, out: &mut Vec<u8>, skip_type_key: bool) -> Result<()> {
        let plans = self.plans;
        let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
        if let Some(wk) = plan.well_known.filter(|w| w.custom_json()) {
            return self.well_known(wk, plan, out);
        }
        self.reader.object_start()?;
        let mut seen = Seen::new(plan.fields.len());
        let mut oneofs = Seen::new(usize::from(plan.oneofs));
        let mut first = true;
        // Ignored unknown keys, kept only to refuse their duplicates (allocated on first use).
        let mut unknown: HashSet<String> = HashSet::new();
        let mut hint = 0usize;
        loop {
            // Fields usually come in declaration order, written plainly: try the next one's
            // exact bytes before reading and looking up a key.
            let expected = plan.fields.get(hint).and_then(|f| f.quoted_json_name.as_deref());
            let index = if expected.is_some_and(|quoted| self.reader.key_is(&mut first, quoted)) {
                if !seen.insert(hint) {
                    let name = plan.fields.get(hint).map_or("", |f| &f.json_name);
                    return Err(Error::bad_request(format!("invalid JSON body: duplicate key \"{name}\"")));
                }
                hint
            } else {
                let Some(key) = self.reader.next_key(&mut first)? else { break };
                if skip_type_key && key == "@type" {
                    self.reader.skip()?;
                    continue;
                }
                let Some(index) = plan.by_name.get(key.as_bytes()).map(|i| usize::from(*i)) else {
                    if self.options.ignore_unknown_fields {
                        if unknown.contains(&*key) {
                            return Err(Error::bad_request(format!("invalid JSON body: duplicate key \"{key}\"")));
                        }
                        unknown.insert(key.into_owned());
                        self.reader.skip()?;
                        continue;
                    }
                    return Err(Error::bad_request(format!(
                        "invalid JSON body: unknown field \"{key}\" in {}",
                        plan.full_name
                    )));
                };
                if !seen.insert(index) {
                    return Err(Error::bad_request(format!("invalid JSON body: duplicate key \"{key}\"")));
                }
                index
            };
            hint = index + 1;
            let Some(field) = plan.fields.get(index) else { continue };
            if self.reader.null()? {
                // null means "absent", except where null is a value (Value, NullValue).
                if let Some(written) = self.null_value(field, out)? {
                    if written {
                        self.oneof_set(field, &mut oneofs)?;
                    }
                }
                continue;
            }
            if field.oneof.is_some() {
                self.oneof_set(field, &mut oneofs)?;
            }
            self.field(field, out)?;
        }
        Ok(())
    }

    fn oneof_set(&self, field: &FieldPlan, oneofs: &mut Seen) -> Result<()> {
        if let Some(o) = field.oneof {
            if !oneofs.insert(usize::from(o)) {
                return Err(field_error(field, "another member of its oneof is already set"));
            }
        }
        Ok(())
    }

    /// A JSON null for `field`: Some(true) if something was written.
    fn null_value(&mut self, field: &FieldPlan, out: &mut Vec<u8>) -> Result<Option<bool>> {
        if !matches!(field.shape, Shape::Single { .. }) {
            return Ok(Some(false));
        }
        match field.kind {
            ValueKind::Message(m) if self.plan(m)?.well_known == Some(WellKnown::Value) => {
                message_field(field.number, field.delimited, out, |o| {
                    write_tag(wkt::VALUE_NULL, 0, o);
                    o.push(0);
                    Ok::<(), Error>(())
                })?;
                Ok(Some(true))
            }
            ValueKind::Enum(e) if self.plans.enumeration(e).is_some_and(|e| e.is_null_value) => {
                if matches!(field.shape, Shape::Single { presence: true }) {
                    write_tag(field.number, 0, out);
                    out.push(0);
                    return Ok(Some(true));
                }
                Ok(Some(false))
            }
            _ => Ok(Some(false)),
        }
    }

    fn field(&mut self, field: &FieldPlan, out: &mut Vec<u8>) -> Result<()> {
        match field.shape {
            Shape::Single { presence } => self.single(field, field.kind, presence, out),
            Shape::Repeated { packed } => self.repeated(field, packed, out),
            Shape::Map { key, value } => self.map(field, key, value, out),
        }
    }

    /// One value of a singular field (or one element of a repeated, non-packed field when
    /// `presence` is true: elements are always written).
    fn single(&mut self, field: &FieldPlan, kind: ValueKind, presence: bool, out: &mut Vec<u8>) -> Result<()> {
        match kind {
            ValueKind::Message(m) => message_field(field.number, field.delimited, out, |o| self.message(m, o, false)),
            ValueKind::Enum(e) => {
                let Some(n) = self.enum_value(field, e)? else { return Ok(()) };
                if presence || n != 0 {
                    write_tag(field.number, 0, out);
                    write_varint(n as i64 as u64, out);
                }
                Ok(())
            }
            ValueKind::Scalar(s) => {
                let start = out.len();
                write_tag(field.number, s.wire_type(), out);
                let is_default = self.scalar(field, s, out)?;
                if is_default && !presence {
                    out.truncate(start);
                }
                Ok(())
            }
        }
    }

    fn repeated(&mut self, field: &FieldPlan, packed: bool, out: &mut Vec<u8>) -> Result<()> {
        self.reader.array_start()?;
        let mut first = true;
        let packable = match field.kind {
            ValueKind::Scalar(s) => s.wire_type() != 2,
            ValueKind::Enum(_) => true,
            ValueKind::Message(_) => false,
        };
        if packed && packable {
            write_tag(field.number, 2, out);
            let at = out.len();
            out.push(0);
            while self.reader.next_element(&mut first)? {
                self.element_null_check(field)?;
                match field.kind {
                    ValueKind::Enum(e) => {
                        if let Some(n) = self.enum_value(field, e)? {
                            write_varint(n as i64 as u64, out);
                        }
                    }
                    ValueKind::Scalar(s) => {
                        self.scalar(field, s, out)?;
                    }
                    ValueKind::Message(_) => {}
                }
            }
            if out.len() == at + 1 {
                // No element: no field at all.
                out.truncate(at.saturating_sub(tag_len(field.number)));
            } else {
                crate::core::codec::wire::patch_length(out, at);
            }
            return Ok(());
        }
        while self.reader.next_element(&mut first)? {
            if let ValueKind::Message(m) = field.kind {
                if self.reader.null()? {
                    if self.plan(m)?.well_known == Some(WellKnown::Value) {
                        message_field(field.number, field.delimited, out, |o| {
                            write_tag(wkt::VALUE_NULL, 0, o);
                            o.push(0);
                            Ok::<(), Error>(())
                        })?;
                        continue;
                    }
                    return Err(field_error(field, "null is not a valid element"));
                }
            } else {
                self.element_null_check(field)?;
            }
            self.single(field, field.kind, true, out)?;
        }
        Ok(())
    }

    fn element_null_check(&mut self, field: &FieldPlan) -> Result<()> {
        if self.reader.peek()? == b'n' {
            return Err(field_error(field, "null is not a valid element"));
        }
        Ok(())
    }

    fn map(&mut self, field: &FieldPlan, key_kind: Scalar, value_kind: ValueKind, out: &mut Vec<u8>) -> Result<()> {
        self.reader.object_start()?;
        let mut first = true;
        let mut keys: HashSet<String> = HashSet::new();
        while let Some(key) = self.reader.next_key(&mut first)? {
            let key = key.into_owned();
            if !keys.insert(key.clone()) {
                return Err(field_error(field, format!("duplicate map key {key:?}")));
            }
            if self.reader.peek()? == b'n' {
                // null is a map value only for google.protobuf.Value and NullValue.
                let nullable = match value_kind {
                    ValueKind::Message(m) => self.plan(m)?.well_known == Some(WellKnown::Value),
                    ValueKind::Enum(e) => self.plans.enumeration(e).is_some_and(|e| e.is_null_value),
                    ValueKind::Scalar(_) => false,
                };
                if !nullable {
                    return Err(field_error(field, format!("null is not a valid value for key {key:?}")));
                }
            }
            let entry_start = out.len();
            write_tag(field.number, 2, out);
            let at = out.len();
            out.push(0);
            self.map_key(field, key_kind, &key, out)?;
            match value_kind {
                ValueKind::Enum(e) => match self.enum_value(field, e)? {
                    Some(n) => {
                        write_tag(2, 0, out);
                        write_varint(n as i64 as u64, out);
                    }
                    None => {
                        // An ignored unknown enum name drops the entry.
                        out.truncate(entry_start);
                        continue;
                    }
                },
                ValueKind::Message(m) => nested(2, out, |o| self.message(m, o, false))?,
                ValueKind::Scalar(s) => {
                    write_tag(2, s.wire_type(), out);
                    self.scalar(field, s, out)?;
                }
            }
            crate::core::codec::wire::patch_length(out, at);
        }
        Ok(())
    }

    fn map_key(&self, field: &FieldPlan, kind: Scalar, key: &str, out: &mut Vec<u8>) -> Result<()> {
        let bad = || field_error(field, format!("invalid map key {key:?}"));
        write_tag(1, kind.wire_type(), out);
        match kind {
            Scalar::String => {
                write_varint(key.len() as u64, out);
                out.extend_from_slice(key.as_bytes());
            }
            Scalar::Bool => match key {
                "true" => out.push(1),
                "false" => out.push(0),
                _ => return Err(bad()),
            },
            Scalar::Int32 | Scalar::Sfixed32 | Scalar::Sint32 => {
                let v = i32::from_str(key).map_err(|_| bad())?;
                write_i32(kind, v, out);
            }
            Scalar::Int64 | Scalar::Sfixed64 | Scalar::Sint64 => {
                let v = i64::from_str(key).map_err(|_| bad())?;
                write_i64(kind, v, out);
            }
            Scalar::Uint32 | Scalar::Fixed32 => {
                let v = u32::from_str(key).map_err(|_| bad())?;
                write_u32(kind, v, out);
            }
            Scalar::Uint64 | Scalar::Fixed64 => {
                let v = u64::from_str(key).map_err(|_| bad())?;
                write_u64(kind, v, out);
            }
            Scalar::Double | Scalar::Float | Scalar::Bytes => return Err(bad()),
        }
        Ok(())
    }

    /// An enum value by name or number; None when an unknown name is ignored.
    fn enum_value(&mut self, field: &FieldPlan, e: usize) -> Result<Option<i32>> {
        let plan = self.plans.enumeration(e).ok_or_else(|| Error::internal("enum plan missing"))?;
        match self.reader.peek()? {
            b'"' => {
                let name = self.reader.string()?;
                match plan.number(name.as_bytes(), self.options.case_insensitive_enums) {
                    Some(n) => Ok(Some(n)),
                    // Dropping unknown names is part of ignoring unknown fields.
                    None if self.options.ignore_unknown_enum_names && self.options.ignore_unknown_fields => Ok(None),
                    None => Err(field_error(field, format!("\"{name}\" is not a value of enum {}", plan.full_name))),
                }
            }
            b'n' if plan.is_null_value => {
                self.reader.null()?;
                Ok(Some(0))
            }
            _ => {
                let n = self.reader.number()?;
                parse_i32_number(n).map(Some).map_err(|e| field_error(field, e))
            }
        }
    }

    /// Writes one scalar value (strings and bytes length-prefixed); true if it is the type's
    /// default value.
    fn scalar(&mut self, field: &FieldPlan, kind: Scalar, out: &mut Vec<u8>) -> Result<bool> {
        let r = &mut self.reader;
        let result: std::result::Result<bool, String> = match kind {
            Scalar::String => {
                if r.peek()? == b'"' {
                    let s = r.string()?;
                    write_varint(s.len() as u64, out);
                    out.extend_from_slice(s.as_bytes());
                    Ok(s.is_empty())
                } else {
                    Err("expected a string".to_string())
                }
            }
            Scalar::Bytes => {
                if r.peek()? == b'"' {
                    let s = r.string()?;
                    match decode_base64(&s) {
                        Some(bytes) => {
                            write_varint(bytes.len() as u64, out);
                            out.extend_from_slice(&bytes);
                            Ok(bytes.is_empty())
                        }
                        None => Err("invalid base64".to_string()),
                    }
                } else {
                    Err("expected a base64 string".to_string())
                }
            }
            Scalar::Bool => match r.peek()? {
                b't' | b'f' => {
                    let b = r.boolean()?;
                    out.push(u8::from(b));
                    Ok(!b)
                }
                _ => Err("expected true or false".to_string()),
            },
            // -0.0 is not the default: it is written (as libprotobuf does).
            Scalar::Double => number_or_string(r)?.and_then(|t| parse_f64(&t)).map(|v| {
                out.extend_from_slice(&v.to_le_bytes());
                v.to_bits() == 0
            }),
            Scalar::Float => number_or_string(r)?.and_then(|t| parse_f32(&t)).map(|v| {
                out.extend_from_slice(&v.to_le_bytes());
                v.to_bits() == 0
            }),
            Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => {
                number_or_string(r)?.and_then(|t| parse_i32(&t)).map(|v| {
                    write_i32(kind, v, out);
                    v == 0
                })
            }
            Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => {
                number_or_string(r)?.and_then(|t| parse_i64(&t)).map(|v| {
                    write_i64(kind, v, out);
                    v == 0
                })
            }
            Scalar::Uint32 | Scalar::Fixed32 => number_or_string(r)?.and_then(|t| parse_u32(&t)).map(|v| {
                write_u32(kind, v, out);
                v == 0
            }),
            Scalar::Uint64 | Scalar::Fixed64 => number_or_string(r)?.and_then(|t| parse_u64(&t)).map(|v| {
                write_u64(kind, v, out);
                v == 0
            }),
        };
        result.map_err(|e| field_error(field, e))
    }

    // ---- well-known types --------------------------------------------------------------

    fn well_known(&mut self, wk: WellKnown, plan: &MessagePlan, out: &mut Vec<u8>) -> Result<()> {
        let what = || format!("invalid JSON body: {}", plan.full_name);
        match wk {
            WellKnown::Timestamp | WellKnown::Duration => {
                let text = self.expect_string(plan)?;
                let parsed = if wk == WellKnown::Timestamp {
                    wkt_text::parse_timestamp(&text)
                } else {
                    wkt_text::parse_duration(&text)
                };
                let (seconds, nanos) = parsed.map_err(|e| Error::bad_request(format!("{}: {e}", what())))?;
                if seconds != 0 {
                    write_tag(1, 0, out);
                    write_varint(seconds as u64, out);
                }
                if nanos != 0 {
                    write_tag(2, 0, out);
                    write_varint(nanos as i64 as u64, out);
                }
                Ok(())
            }
            WellKnown::FieldMask => {
                let text = self.expect_string(plan)?;
                let paths =
                    wkt_text::parse_field_mask(&text).map_err(|e| Error::bad_request(format!("{}: {e}", what())))?;
                for p in paths {
                    write_tag(1, 2, out);
                    write_varint(p.len() as u64, out);
                    out.extend_from_slice(p.as_bytes());
                }
                Ok(())
            }
            WellKnown::Wrapper(s) => {
                let field = plan.fields.first().ok_or_else(|| Error::internal("wrapper without field"))?;
                self.single(field, ValueKind::Scalar(s), false, out)
            }
            WellKnown::Struct => self.struct_fields(out),
            WellKnown::ListValue => self.list_values(out),
            WellKnown::Value => self.value(out),
            WellKnown::Any => self.any(out),
            WellKnown::Empty => Ok(()),
        }
    }

    fn expect_string(&mut self, plan: &MessagePlan) -> Result<Cow<'_, str>> {
        if self.reader.peek()? != b'"' {
            return Err(Error::bad_request(format!("invalid JSON body: expected a string for {}", plan.full_name)));
        }
        self.reader.string()
    }

    /// google.protobuf.Struct: `map<string, Value> fields = 1`.
    fn struct_fields(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.reader.object_start()?;
        let mut first = true;
        let mut keys: HashSet<String> = HashSet::new();
        while let Some(key) = self.reader.next_key(&mut first)? {
            if keys.contains(&*key) {
                return Err(Error::bad_request(format!("invalid JSON body: duplicate key \"{key}\"")));
            }
            let key = key.into_owned();
            nested(1, out, |entry| {
                write_tag(1, 2, entry);
                write_varint(key.len() as u64, entry);
                entry.extend_from_slice(key.as_bytes());
                nested(2, entry, |v| self.value(v))
            })?;
            keys.insert(key);
        }
        Ok(())
    }

    /// google.protobuf.ListValue: `repeated Value values = 1`.
    fn list_values(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.reader.array_start()?;
        let mut first = true;
        while self.reader.next_element(&mut first)? {
            nested(1, out, |v| self.value(v))?;
        }
        Ok(())
    }

    /// google.protobuf.Value: any JSON value.
    fn value(&mut self, out: &mut Vec<u8>) -> Result<()> {
        match self.reader.peek()? {
            b'n' => {
                self.reader.null()?;
                write_tag(wkt::VALUE_NULL, 0, out);
                out.push(0);
            }
            b't' | b'f' => {
                let b = self.reader.boolean()?;
                write_tag(wkt::VALUE_BOOL, 0, out);
                out.push(u8::from(b));
            }
            b'"' => {
                let s = self.reader.string()?;
                write_tag(wkt::VALUE_STRING, 2, out);
                write_varint(s.len() as u64, out);
                out.extend_from_slice(s.as_bytes());
            }
            b'{' => nested(wkt::VALUE_STRUCT, out, |o| self.struct_fields(o))?,
            b'[' => nested(wkt::VALUE_LIST, out, |o| self.list_values(o))?,
            _ => {
                let n = self.reader.number()?;
                let v = json_f64(n.text).map_err(|e| self.reader.error(e))?;
                write_tag(wkt::VALUE_NUMBER, 1, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(())
    }

    /// google.protobuf.Any: `{"@type": url, …fields}` or `{"@type": url, "value": …}` for
    /// well-known types. `@type` may come anywhere, so the object is scanned for it first.
    fn any(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.reader.peek()? != b'{' {
            return Err(self.reader.error("expected an object for google.protobuf.Any"));
        }
        let start = self.reader.position();
        let mut scan = self.reader.fork(start);
        scan.object_start()?;
        let mut first = true;
        let mut type_url: Option<String> = None;
        let mut empty = true;
        while let Some(key) = scan.next_key(&mut first)? {
            empty = false;
            if key == "@type" {
                if scan.peek()? != b'"' {
                    return Err(scan.error("\"@type\" must be a string"));
                }
                if type_url.is_some() {
                    return Err(scan.error("duplicate key \"@type\""));
                }
                type_url = Some(scan.string()?.into_owned());
            } else {
                scan.skip()?;
            }
        }
        let end = scan.position();
        let Some(type_url) = type_url else {
            if empty {
                self.reader.resume_at(end);
                return Ok(());
            }
            return Err(Error::bad_request("invalid JSON body: google.protobuf.Any without \"@type\""));
        };
        // A type URL must contain a '/' (any.proto); Java's unpack refuses a bare name.
        let Some((_, name)) = type_url.rsplit_once('/') else {
            return Err(Error::bad_request(format!(
                "invalid JSON body: Any type URL {type_url:?} has no '/' (e.g. \"type.googleapis.com/{type_url}\")"
            )));
        };
        let target = self.plans.index_of(name).ok_or_else(|| {
            Error::bad_request(format!("invalid JSON body: Any type {type_url:?} is not in the descriptor set"))
        })?;
        let mut value = Vec::new();
        if self.plan(target)?.well_known.is_some() {
            // {"@type": …, "value": <the well-known type's JSON>}
            self.reader.object_start()?;
            let mut first = true;
            let mut seen: HashSet<String> = HashSet::new();
            while let Some(key) = self.reader.next_key(&mut first)? {
                if seen.contains(&*key) {
                    return Err(Error::bad_request(format!("invalid JSON body: duplicate key \"{key}\"")));
                }
                seen.insert(key.clone().into_owned());
                match &*key {
                    "@type" => self.reader.skip()?,
                    "value" => self.message(target, &mut value, false)?,
                    // Other keys are unknown fields of the Any, ignored like any unknown field.
                    _ if self.options.ignore_unknown_fields => self.reader.skip()?,
                    other => {
                        return Err(Error::bad_request(format!("invalid JSON body: unexpected key \"{other}\" in Any")))
                    }
                }
            }
            if !seen.contains("value") {
                return Err(Error::bad_request(format!("invalid JSON body: Any of {type_url:?} needs a \"value\"")));
            }
        } else {
            self.message(target, &mut value, true)?;
        }
        write_tag(1, 2, out);
        write_varint(type_url.len() as u64, out);
        out.extend_from_slice(type_url.as_bytes());
        if !value.is_empty() {
            write_tag(2, 2, out);
            write_varint(value.len() as u64, out);
            out.extend_from_slice(&value);
        }
        Ok(())
    }
}

fn field_error(field: &FieldPlan, what: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("invalid JSON body: field \"{}\": {what}", field.json_name))
}

fn tag_len(number: u32) -> usize {
    let mut v = u64::from(number) << 3;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A numeric field's JSON: a number, or a string holding one.
fn number_or_string<'a>(r: &mut Reader<'a>) -> Result<std::result::Result<Text<'a>, String>> {
    match r.peek()? {
        b'"' => Ok(Ok(Text::Quoted(r.string()?))),
        b'-' | b'0'..=b'9' => Ok(Ok(Text::Number(r.number()?))),
        _ => Ok(Err("expected a number".to_string())),
    }
}

enum Text<'a> {
    Number(Number<'a>),
    Quoted(Cow<'a, str>),
}

/// A JSON number as a double, correctly rounded (as strtod, which protobuf uses): overflow is
/// an error, and an underflow to zero keeps its sign (`-5e-515` is -0).
fn json_f64(text: &str) -> std::result::Result<f64, String> {
    let v = f64::from_str(text).map_err(|e| e.to_string())?;
    if !v.is_finite() {
        return Err("number out of range".to_string());
    }
    Ok(v)
}

fn parse_f64(t: &Text<'_>) -> std::result::Result<f64, String> {
    match t {
        Text::Number(n) => json_f64(n.text),
        Text::Quoted(s) => match f64::from_str(s) {
            Ok(v) => Ok(v),
            Err(_) if s == "Infinity" => Ok(f64::INFINITY),
            Err(_) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            Err(_) if s == "NaN" => Ok(f64::NAN),
            Err(e) => Err(e.to_string()),
        },
    }
}

fn parse_f32(t: &Text<'_>) -> std::result::Result<f32, String> {
    match t {
        Text::Number(n) => {
            let v = json_f64(n.text)?;
            if v < f64::from(f32::MIN) || v > f64::from(f32::MAX) {
                // The shortest text of ±f32::MAX (3.4028235e38) is a hair above it as a
                // double: accept what rounds to a finite float (the reflection path does not).
                return match f32::from_str(n.text) {
                    Ok(f) if f.is_finite() => Ok(f),
                    _ => Err("float value out of range".to_string()),
                };
            }
            Ok(v as f32)
        }
        Text::Quoted(s) => match f32::from_str(s) {
            Ok(v) => Ok(v),
            Err(_) if s == "Infinity" => Ok(f32::INFINITY),
            Err(_) if s == "-Infinity" => Ok(f32::NEG_INFINITY),
            Err(_) if s == "NaN" => Ok(f32::NAN),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// An integer written as a non-integer JSON number (`1e3`, `5.0`).
/// The exact integer that a JSON number written with a fraction or an exponent denotes
/// (`1.0`, `1e3`, `-2.50e1`). Exact, not through a double: a double would round
/// `9.223372036854775808e18` down into the int64 range and let it be clamped.
fn exact_integer(text: &str) -> std::result::Result<i128, String> {
    let not_integer = || "expected integer value".to_string();
    let out_of_range = || "number out of range".to_string();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    let exponent = match exponent {
        Some(e) => i64::from_str(e).map_err(|_| out_of_range())?,
        None => 0,
    };
    // value = significant × 10^scale
    let trailing_zeros = i64::try_from(digits.len() - significant.len()).map_err(|_| out_of_range())?;
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| out_of_range())?;
    let scale = exponent.saturating_add(trailing_zeros).saturating_sub(frac_len);
    if scale < 0 {
        return Err(not_integer());
    }
    let magnitude_digits = i64::try_from(significant.len()).unwrap_or(i64::MAX).saturating_add(scale);
    if magnitude_digits > 39 {
        return Err(out_of_range());
    }
    let mut v = i128::from_str(significant).map_err(|_| out_of_range())?;
    for _ in 0..scale {
        v = v.checked_mul(10).ok_or_else(out_of_range)?;
    }
    Ok(if negative { -v } else { v })
}

fn parse_i32_number(n: Number<'_>) -> std::result::Result<i32, String> {
    parse_i32(&Text::Number(n))
}

fn parse_i32(t: &Text<'_>) -> std::result::Result<i32, String> {
    match t {
        Text::Number(n) if n.integer => {
            let v = i64::from_str(n.text).map_err(|e| e.to_string())?;
            i32::try_from(v).map_err(|e| e.to_string())
        }
        Text::Number(n) => i32::try_from(exact_integer(n.text)?).map_err(|e| e.to_string()),
        Text::Quoted(s) => i32::from_str(s).map_err(|e| e.to_string()),
    }
}

fn parse_i64(t: &Text<'_>) -> std::result::Result<i64, String> {
    match t {
        Text::Number(n) if n.integer => i64::from_str(n.text).map_err(|e| e.to_string()),
        Text::Number(n) => i64::try_from(exact_integer(n.text)?).map_err(|e| e.to_string()),
        Text::Quoted(s) => i64::from_str(s).map_err(|e| e.to_string()),
    }
}

fn parse_u32(t: &Text<'_>) -> std::result::Result<u32, String> {
    match t {
        Text::Number(n) if n.integer => {
            let v = i128::from_str(n.text).map_err(|e| e.to_string())?;
            u32::try_from(v).map_err(|e| e.to_string())
        }
        Text::Number(n) => u32::try_from(exact_integer(n.text)?).map_err(|e| e.to_string()),
        Text::Quoted(s) => u32::from_str(s).map_err(|e| e.to_string()),
    }
}

fn parse_u64(t: &Text<'_>) -> std::result::Result<u64, String> {
    match t {
        Text::Number(n) if n.integer => {
            let v = i128::from_str(n.text).map_err(|e| e.to_string())?;
            u64::try_from(v).map_err(|e| e.to_string())
        }
        Text::Number(n) => u64::try_from(exact_integer(n.text)?).map_err(|e| e.to_string()),
        Text::Quoted(s) => u64::from_str(s).map_err(|e| e.to_string()),
    }
}

fn write_i32(kind: Scalar, v: i32, out: &mut Vec<u8>) {
    match kind {
        Scalar::Sint32 => write_varint(zigzag32(v), out),
        Scalar::Sfixed32 => out.extend_from_slice(&v.to_le_bytes()),
        _ => write_varint(i64::from(v) as u64, out),
    }
}

fn write_i64(kind: Scalar, v: i64, out: &mut Vec<u8>) {
    match kind {
        Scalar::Sint64 => write_varint(zigzag64(v), out),
        Scalar::Sfixed64 => out.extend_from_slice(&v.to_le_bytes()),
        _ => write_varint(v as u64, out),
    }
}

fn write_u32(kind: Scalar, v: u32, out: &mut Vec<u8>) {
    match kind {
        Scalar::Fixed32 => out.extend_from_slice(&v.to_le_bytes()),
        _ => write_varint(u64::from(v), out),
    }
}

fn write_u64(kind: Scalar, v: u64, out: &mut Vec<u8>) {
    match kind {
        Scalar::Fixed64 => out.extend_from_slice(&v.to_le_bytes()),
        _ => write_varint(v, out),
    }
}
