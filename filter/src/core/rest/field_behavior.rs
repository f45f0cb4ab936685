//! `google.api.field_behavior` in requests (`json2grpc.rest.field_behavior`): fields marked
//! OUTPUT_ONLY are dropped from the message a client made, and every field marked REQUIRED must
//! be set once the path, the query and the body are bound, or the request is a 400 naming each
//! missing field (a `google.rpc.BadRequest`), before the service is called.
//!
//! Both work on the encoded message and descend only into message types that can reach a
//! marked field. "Set" is protobuf's: a field without presence holding its default value (`0`,
//! `""`) is not on the wire, so it is missing; a message field is set even when empty. The
//! fields of a sub-message are checked only where it is set.
use std::cell::OnceCell;
use std::collections::BTreeMap;

use crate::core::codec::plan::{FieldPlan, MessagePlan, Plans, Scalar, Shape, ValueKind};
use crate::core::codec::wire::nested;
use crate::core::codec::wire::{fields, read_varint, write_tag, RawField, LEN, START_GROUP, VARINT};
use crate::core::error::{Error, Result};
use crate::core::reach::reaching;
use crate::core::rest::body_keys::{MAX_LISTED, MAX_LISTED_BYTES};

/// Nesting followed at most: above any JSON depth the config allows (`max_json_depth` ≤ 127),
/// so no level a client can write goes unexamined; a deeper message is a 400.
const MAX_DEPTH: usize = 128;

/// A map key longer than this is cut in a missing field's path.
const MAX_KEY_LABEL: usize = 64;

/// What the checks need per message type (plan index), computed once per config so that a
/// request costs its own size, not the size of the message types it touches.
#[derive(Debug, Default)]
pub struct Behaviors {
    reaches_output_only: Vec<bool>,
    reaches_required: Vec<bool>,
    /// The indices (into the plan's fields, ascending) of each message's REQUIRED fields.
    required: Vec<Box<[u16]>>,
}

impl Behaviors {
    pub fn build(plans: &Plans) -> Behaviors {
        let required = plans
            .iter()
            .map(|m| (0u16..).zip(&m.fields).filter(|(_, f)| f.required).map(|(i, _)| i).collect())
            .collect();
        Behaviors {
            reaches_output_only: reaches(plans, |f| f.output_only),
            reaches_required: reaches(plans, |f| f.required),
            required,
        }
    }

    /// The request message `message` of type `index` with its OUTPUT_ONLY fields dropped, or a
    /// 400 naming its missing REQUIRED fields. `update`: (the resource field, the FieldMask
    /// field) of an update (see [`update_fields`]): when the request carries a mask, a REQUIRED
    /// field of the resource must be set only if the mask covers it (AIP-203: a partial update
    /// may omit a required field the mask leaves unchanged).
    pub fn apply(&self, plans: &Plans, index: usize, message: Vec<u8>, update: Option<(u32, u32)>) -> Result<Vec<u8>> {
        let message = if self.reaches(&self.reaches_output_only, index) {
            let mut out = Vec::with_capacity(message.len());
            self.drop_output_only(plans, index, &message, &mut out, 0)?;
            out
        } else {
            message
        };
        if self.reaches(&self.reaches_required, index) {
            let mask = update.and_then(|(resource, number)| Some((resource, mask_tree(&message, number)?)));
            let place = match &mask {
                Some((resource, root)) => Place::Request { resource: *resource, mask: root },
                None => Place::Everything,
            };
            let mut walk = Walk { path: String::new(), missing: Missing::default() };
            self.check(plans, index, &[&message], &mut walk, 0, place)?;
            let missing = walk.missing;
            if missing.count > 0 {
                let violations: Vec<(String, String)> =
                    missing.listed.into_iter().map(|p| (p, "required field is missing".to_string())).collect();
                let names = violations.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ");
                let more = if missing.count > violations.len() { ", …" } else { "" };
                return Err(Error::bad_request_fields(
                    format!("missing required field(s): {names}{more}"),
                    &violations,
                ));
            }
        }
        Ok(message)
    }

    fn reaches(&self, table: &[bool], index: usize) -> bool {
        table.get(index).copied().unwrap_or(false)
    }

    /// Copies `bytes` without OUTPUT_ONLY fields, rewriting the sub-messages that hold some.
    fn drop_output_only(
        &self,
        plans: &Plans,
        index: usize,
        bytes: &[u8],
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<()> {
        let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
        for raw in fields(bytes) {
            let raw = raw.map_err(|()| malformed())?;
            let field = plan.field_by_number(raw.number).map(|(_, f)| f);
            match field {
                Some(f) if f.output_only => {}
                Some(FieldPlan { kind: ValueKind::Message(m), .. }) if self.reaches(&self.reaches_output_only, *m) => {
                    if depth >= MAX_DEPTH {
                        return Err(too_deep());
                    }
                    match raw.wire_type {
                        LEN => nested(raw.number, out, |o| self.drop_output_only(plans, *m, raw.value, o, depth + 1))?,
                        START_GROUP => {
                            write_tag(raw.number, START_GROUP, out);
                            self.drop_output_only(plans, *m, raw.value, out, depth + 1)?;
                            write_tag(raw.number, crate::core::codec::wire::END_GROUP, out);
                        }
                        _ => raw.write(out),
                    }
                }
                _ => raw.write(out),
            }
        }
        Ok(())
    }

    /// Names the REQUIRED fields missing from the message whose encodings are `chunks` (the
    /// occurrences of one singular field merge), at `path`: its own first, then those inside
    /// its sub-messages, field by field in declaration order.
    fn check(
        &self,
        plans: &Plans,
        index: usize,
        chunks: &[&[u8]],
        walk: &mut Walk,
        depth: usize,
        place: Place<'_>,
    ) -> Result<()> {
        let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
        let all = self.required.get(index).map_or(&[][..], |r| &r[..]);
        // The REQUIRED fields that count here: all, or in a partial update those its mask names
        // (found once per mask node, not once per list element).
        let required = match place {
            Place::Partial(node) => node.covered(plan, all),
            Place::Everything | Place::Request { .. } => all,
        };
        let mut present = vec![false; required.len()];
        // The sub-messages to look into: (field index, encoding), in wire order.
        let mut inside: Vec<(usize, &[u8])> = Vec::new();
        for chunk in chunks {
            for raw in fields(chunk) {
                let raw = raw.map_err(|()| malformed())?;
                let Some((i, field)) = plan.field_by_number(raw.number) else { continue };
                if let Some(p) = u16::try_from(i).ok().and_then(|i| required.binary_search(&i).ok()) {
                    if let Some(p) = present.get_mut(p) {
                        *p = true;
                    }
                }
                let target = match (field.shape, field.kind) {
                    (Shape::Map { value: ValueKind::Message(v), .. }, _) => Some(v),
                    (Shape::Map { .. }, _) => None,
                    (_, ValueKind::Message(m)) => Some(m),
                    _ => None,
                };
                let wanted = target.is_some_and(|m| self.reaches(&self.reaches_required, m));
                if wanted && matches!(raw.wire_type, LEN | START_GROUP) && place.child(field).is_some() {
                    if depth >= MAX_DEPTH {
                        return Err(too_deep());
                    }
                    inside.push((i, raw.value));
                }
            }
        }
        for (&i, found) in required.iter().zip(&present) {
            if !found {
                if let Some(field) = plan.fields.get(usize::from(i)) {
                    walk.missing.add(&walk.path, &field.json_name);
                }
            }
            if walk.missing.full() {
                return Ok(());
            }
        }
        // Field by field in declaration order (a stable sort keeps each field's occurrences in
        // order: a list's elements, a singular message's parts that merge).
        inside.sort_by_key(|(i, _)| *i);
        let mut rest = &inside[..];
        while let Some(&(i, _)) = rest.first() {
            let end = rest.iter().position(|(j, _)| *j != i).unwrap_or(rest.len());
            let (group, after) = rest.split_at(end);
            rest = after;
            let Some(field) = plan.fields.get(i) else { continue };
            let Some(place) = place.child(field) else { continue };
            let found: Vec<&[u8]> = group.iter().map(|(_, bytes)| *bytes).collect();
            match (field.shape, field.kind) {
                (Shape::Single { .. }, ValueKind::Message(m)) => {
                    self.descend(plans, m, &found, walk, &field.json_name, depth, place)?;
                }
                (Shape::Repeated { .. }, ValueKind::Message(m)) => {
                    for (n, element) in found.iter().enumerate() {
                        let name = format!("{}[{n}]", field.json_name);
                        self.descend(plans, m, &[element], walk, &name, depth, place)?;
                        if walk.missing.full() {
                            return Ok(());
                        }
                    }
                }
                (Shape::Map { key, value: ValueKind::Message(v) }, _) => {
                    for entry in found {
                        let (label, values) = map_entry(entry, key)?;
                        if !values.is_empty() {
                            let name = format!("{}[{label}]", field.json_name);
                            self.descend(plans, v, &values, walk, &name, depth, place)?;
                        }
                        if walk.missing.full() {
                            return Ok(());
                        }
                    }
                }
                _ => {}
            }
            if walk.missing.full() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Checks a sub-message (`name`: its label in paths, with its index or key) at `place`.
    #[allow(clippy::too_many_arguments)]
    fn descend(
        &self,
        plans: &Plans,
        index: usize,
        chunks: &[&[u8]],
        walk: &mut Walk,
        name: &str,
        depth: usize,
        place: Place<'_>,
    ) -> Result<()> {
        let len = walk.path.len();
        if !walk.path.is_empty() {
            walk.path.push('.');
        }
        walk.path.push_str(name);
        let result = self.check(plans, index, chunks, walk, depth + 1, place);
        walk.path.truncate(len);
        result
    }
}

/// Where the check is: the path of the current message (JSON names, list indices and map keys,
/// for the answer), and what is missing so far.
struct Walk {
    path: String,
    missing: Missing,
}

/// Which REQUIRED fields count at a message (AIP-203: a partial update needs only those of the
/// resource its mask covers).
#[derive(Clone, Copy)]
enum Place<'m> {
    /// All of them: no mask, outside the resource, or under a path the mask names whole.
    Everything,
    /// The request of an update with a mask; its field `resource` is what the mask is about.
    Request { resource: u32, mask: &'m MaskNode },
    /// Inside the resource, where the mask names parts of the message.
    Partial(&'m MaskNode),
}

impl<'m> Place<'m> {
    /// The place of a sub-message held by `field`; None when the mask names nothing below it
    /// (nothing there is looked at).
    fn child(self, field: &FieldPlan) -> Option<Place<'m>> {
        match self {
            Place::Everything => Some(Place::Everything),
            Place::Request { resource, mask } if field.number == resource => Some(mask.place()),
            Place::Request { .. } => Some(Place::Everything),
            Place::Partial(node) => node.children.get(&*field.proto_name).map(MaskNode::place),
        }
    }
}

/// An update's FieldMask as a tree of proto names (`main.quantity`: main → quantity).
#[derive(Default)]
struct MaskNode {
    /// A mask path ends here: everything below is covered.
    whole: bool,
    /// A BTreeMap: the names come from the client (no hash to collide).
    children: BTreeMap<Box<str>, MaskNode>,
    /// The REQUIRED fields (plan indices, ascending) this node's message has among
    /// `children`, found on first use: a list's elements share their node.
    covered: OnceCell<Vec<u16>>,
}

impl MaskNode {
    fn place(&self) -> Place<'_> {
        if self.whole {
            Place::Everything
        } else {
            Place::Partial(self)
        }
    }

    fn covered(&self, plan: &MessagePlan, required: &[u16]) -> &[u16] {
        self.covered.get_or_init(|| {
            let mut covered: Vec<u16> = self
                .children
                .keys()
                .filter_map(|name| plan.by_name.get(name.as_bytes()).copied())
                .filter(|i| required.binary_search(i).is_ok())
                .collect();
            covered.sort_unstable();
            covered.dedup();
            covered
        })
    }
}

/// The request's FieldMask (field `number`, its occurrences merged) as a tree; None when it is
/// absent or empty, or says `*` (a full replacement: every REQUIRED field counts). A path
/// deeper than any message can nest names nothing and is left out.
fn mask_tree(message: &[u8], number: u32) -> Option<MaskNode> {
    let mut root = MaskNode::default();
    let mut any = false;
    for raw in fields(message).flatten().filter(|f| f.number == number && f.wire_type == LEN) {
        for path in fields(raw.value).flatten().filter(|f| f.number == 1 && f.wire_type == LEN) {
            let path = String::from_utf8_lossy(path.value);
            if path == "*" {
                return None;
            }
            if path.split('.').count() > MAX_DEPTH {
                continue;
            }
            any = true;
            let mut node = &mut root;
            for name in path.split('.') {
                node = node.children.entry(name.into()).or_default();
            }
            node.whole = true;
        }
    }
    any.then_some(root)
}

/// The missing fields' paths: the first [`MAX_LISTED`] (at most [`MAX_LISTED_BYTES`] of
/// them), and how many were found. The walk stops once one more than it lists is found: the
/// answer says "…", and the rest of a hostile request is not looked at.
#[derive(Default)]
struct Missing {
    listed: Vec<String>,
    listed_bytes: usize,
    count: usize,
    full: bool,
}

impl Missing {
    fn add(&mut self, path: &str, name: &str) {
        self.count += 1;
        let len = path.len() + 1 + name.len();
        if self.listed.len() < MAX_LISTED && self.listed_bytes.saturating_add(len) <= MAX_LISTED_BYTES {
            self.listed_bytes += len;
            self.listed.push(if path.is_empty() { name.to_string() } else { format!("{path}.{name}") });
        } else {
            self.full = true;
        }
    }

    fn full(&self) -> bool {
        self.full
    }
}

/// Which message types have a field `marked`, or a message field (maps included) of a type
/// that does.
fn reaches(plans: &Plans, marked: impl Fn(&FieldPlan) -> bool) -> Vec<bool> {
    let seeds = plans.iter().map(|m| m.fields.iter().any(&marked)).collect();
    let edges = plans.iter().enumerate().flat_map(|(i, plan)| {
        plan.fields
            .iter()
            .flat_map(|f| [message_of(f.kind), message_of_map_value(f.shape)])
            .flatten()
            .map(move |held| (i, held))
    });
    reaching(seeds, edges)
}

fn message_of(kind: ValueKind) -> Option<usize> {
    match kind {
        ValueKind::Message(m) => Some(m),
        _ => None,
    }
}

fn message_of_map_value(shape: Shape) -> Option<usize> {
    match shape {
        Shape::Map { value, .. } => message_of(value),
        _ => None,
    }
}

/// A map entry's key as text (for the path) and its value's encodings.
fn map_entry(entry: &[u8], key: Scalar) -> Result<(String, Vec<&[u8]>)> {
    let mut label = String::new();
    let mut values = Vec::new();
    for raw in fields(entry) {
        let raw = raw.map_err(|()| malformed())?;
        match raw.number {
            1 => label = cut(key_text(key, raw)),
            2 if matches!(raw.wire_type, LEN | START_GROUP) => values.push(raw.value),
            _ => {}
        }
    }
    Ok((label, values))
}

fn key_text(key: Scalar, raw: RawField<'_>) -> String {
    let varint = || if raw.wire_type == VARINT { read_varint(raw.value).map_or(0, |(v, _)| v) } else { 0 };
    let fixed = |n: usize| raw.value.iter().take(n).rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
    match key {
        Scalar::String => String::from_utf8_lossy(raw.value).into_owned(),
        Scalar::Bool => (varint() != 0).to_string(),
        Scalar::Int32 => (varint() as i32).to_string(),
        Scalar::Int64 => (varint() as i64).to_string(),
        Scalar::Uint32 | Scalar::Uint64 => varint().to_string(),
        Scalar::Sint32 | Scalar::Sint64 => {
            let v = varint();
            ((v >> 1) as i64 ^ -((v & 1) as i64)).to_string()
        }
        Scalar::Fixed32 => fixed(4).to_string(),
        Scalar::Sfixed32 => (fixed(4) as u32 as i32).to_string(),
        Scalar::Fixed64 => fixed(8).to_string(),
        Scalar::Sfixed64 => (fixed(8) as i64).to_string(),
        Scalar::Double | Scalar::Float | Scalar::Bytes => String::new(),
    }
}

/// A map key as a path label: cut after [`MAX_KEY_LABEL`] bytes (at a character boundary).
fn cut(mut label: String) -> String {
    if label.len() > MAX_KEY_LABEL {
        let mut end = MAX_KEY_LABEL;
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        label.truncate(end);
        label.push('…');
    }
    label
}

fn too_deep() -> Error {
    Error::bad_request(format!("the request message is nested deeper than {MAX_DEPTH} levels"))
}

fn malformed() -> Error {
    Error::internal("the request's own encoding is malformed")
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;
    use prost_reflect::DynamicMessage;
    use serde_json::{json, Value as Json};

    use crate::core::error::Error;
    use crate::core::request::Decision;
    use crate::core::transcoder::Transcoder;
    use crate::testing::fixtures::{message as descriptor, TEST_DESCRIPTOR_SET};

    fn transcoder(on: bool) -> Transcoder {
        transcoder_with(&format!(r#""rest":{{"field_behavior":{on}}}"#))
    }

    /// `json2grpc`: the keys of the `json2grpc` object.
    fn transcoder_with(json2grpc: &str) -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
        let config =
            format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Docs"],"json2grpc":{{{json2grpc}}}}}"#);
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

    fn call(t: &Transcoder, method: &str, path: &str, body: &str) -> Result<Json, Error> {
        let Decision::Transcode(plan) = t.route(method, path, None) else { panic!("{path}") };
        let bytes = t.request_message(&plan, body.as_bytes(), None)?;
        let m =
            DynamicMessage::decode(descriptor(t.schema.message_name(plan.method().input)), bytes.as_slice()).unwrap();
        let mut ser = serde_json::Serializer::new(Vec::new());
        m.serialize_with_options(&mut ser, &prost_reflect::SerializeOptions::new().use_proto_field_name(true)).unwrap();
        Ok(serde_json::from_slice(&ser.into_inner()).unwrap())
    }

    fn missing(e: &Error) -> Vec<&str> {
        e.details[0]["fieldViolations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect()
    }

    #[test]
    fn required_fields_are_checked_after_path_query_and_body() {
        let t = transcoder(true);
        // parent from the path, doc from the body; doc.title and doc.priority are REQUIRED.
        let ok = r#"{"title": "t", "priority": 0}"#;
        assert_eq!(
            call(&t, "POST", "/v1/p/docs", ok).unwrap(),
            json!({"parent": "p", "doc": {"title": "t", "priority": 0}})
        );
        let e = call(&t, "POST", "/v1/p/docs", r#"{"note": "n"}"#).unwrap_err();
        assert_eq!(e.http_status, 400);
        assert_eq!(missing(&e), ["doc.title", "doc.priority"]);
        assert!(e.message.contains("doc.title, doc.priority"), "{e}");
        // An empty body still sets doc (an empty message): its fields are missing.
        assert_eq!(missing(&call(&t, "POST", "/v1/p/docs", "").unwrap_err()), ["doc.title", "doc.priority"]);
        // A default value of a field without presence is not set.
        let e = call(&t, "POST", "/v1/p/docs", r#"{"title": "", "priority": 1}"#).unwrap_err();
        assert_eq!(missing(&e), ["doc.title"]);
        // The query can set what the body does not (the occurrences merge).
        assert!(call(&t, "POST", "/v1/p/docs?doc.title=q", r#"{"priority": 1}"#).is_ok());
        // Inside lists, maps and set sub-messages; not inside absent ones.
        let body = r#"{"title": "t", "priority": 1, "lines": [{"sku": "a"}, {"quantity": 1}],
                       "byKey": {"k": {}}, "main": {}, "parent": {"title": "p", "priority": 2}}"#;
        let e = call(&t, "POST", "/v1/p/docs", body).unwrap_err();
        assert_eq!(missing(&e), ["doc.lines[1].sku", "doc.byKey[k].sku", "doc.main.sku"]);
        // A message's own fields first, then those of its sub-messages.
        let e = call(&t, "POST", "/v1/p/docs", r#"{"lines": [{}]}"#).unwrap_err();
        assert_eq!(missing(&e), ["doc.title", "doc.priority", "doc.lines[0].sku"]);
        // Off: nothing is checked.
        assert!(call(&transcoder(false), "POST", "/v1/p/docs", "{}").is_ok());
    }

    #[test]
    fn output_only_fields_are_dropped_at_every_level() {
        let t = transcoder(true);
        let body = r#"{"title": "t", "priority": 1, "version": "7", "main": {"sku": "a", "price": "5"},
                       "lines": [{"sku": "b", "price": "6", "quantity": 2}], "byKey": {"k": {"sku": "c", "price": "1"}},
                       "parent": {"title": "p", "priority": 1, "version": "2", "parent": {"version": "1", "title": "q", "priority": 1}}}"#;
        assert_eq!(
            call(&t, "POST", "/v1/p/docs", body).unwrap(),
            json!({"parent": "p", "doc": {"title": "t", "priority": 1, "main": {"sku": "a"},
                   "lines": [{"sku": "b", "quantity": 2}], "by_key": {"k": {"sku": "c"}},
                   "parent": {"title": "p", "priority": 1, "parent": {"title": "q", "priority": 1}}}})
        );
        // From the URL too.
        assert_eq!(
            call(&t, "GET", "/v1/docs/1?version=3&title=t&priority=1", "").unwrap(),
            json!({"id": "1", "title": "t", "priority": 1})
        );
        assert_eq!(
            call(&transcoder(false), "GET", "/v1/docs/1?version=3", "").unwrap(),
            json!({"id": "1", "version": "3"})
        );
    }

    #[test]
    fn missing_fields_are_listed_within_bounds() {
        let t = transcoder(true);
        let lines = vec!["{}"; 300].join(",");
        let e = call(&t, "POST", "/v1/p/docs", &format!(r#"{{"title": "t", "priority": 1, "lines": [{lines}]}}"#))
            .unwrap_err();
        assert_eq!(missing(&e).len(), super::MAX_LISTED);
        assert_eq!(missing(&e)[99], "doc.lines[99].sku");
        assert!(e.message.ends_with(", …"), "{}", e.message);
    }

    #[test]
    fn long_map_keys_are_cut_in_paths_and_the_listed_paths_are_bounded() {
        let t = transcoder(true);
        let key = "k".repeat(200_000);
        let lines = vec!["{}"; 50].join(",");
        // Every Line under the key lacks its REQUIRED sku: each path would repeat the key.
        let body = format!(r#"{{"title": "t", "priority": 1, "byKey": {{"{key}": {{}}}}, "lines": [{lines}]}}"#);
        let e = call(&t, "POST", "/v1/p/docs", &body).unwrap_err();
        let listed = missing(&e);
        assert_eq!(listed.len(), 51);
        assert_eq!(listed[50], format!("doc.byKey[{}…].sku", "k".repeat(64)));
        assert!(e.message.len() < 4096, "{} bytes", e.message.len());
    }

    #[test]
    fn every_level_a_client_can_write_is_examined() {
        // max_json_depth at its largest (127): an OUTPUT_ONLY field 120 levels down is dropped,
        // a REQUIRED one missing there is named.
        let t = transcoder_with(r#""rest":{"field_behavior":true},"limits":{"max_json_depth":127}"#);
        let depth = 120;
        let inner = r#"{"title": "t", "priority": 1, "version": "42"}"#.to_string();
        let body = (0..depth).fold(inner, |acc, _| format!(r#"{{"title": "t", "priority": 1, "parent": {acc}}}"#));
        // Read on the wire (prost-reflect stops at 100 levels): CreateDocRequest.doc (2), then
        // Doc.parent (12) `depth` times.
        let Decision::Transcode(plan) = t.route("POST", "/v1/p/docs", None) else { panic!() };
        let bytes = t.request_message(&plan, body.as_bytes(), None).unwrap();
        let path = std::iter::once(2).chain(std::iter::repeat_n(12, depth));
        let innermost = crate::core::codec::wire::descend(&bytes, path).unwrap();
        let numbers: Vec<u32> = crate::core::codec::wire::fields(innermost[0]).map(|f| f.unwrap().number).collect();
        assert_eq!(numbers, [2, 10], "title and priority; OUTPUT_ONLY version (6) dropped at depth {depth}");
        let missing_deep = (0..depth).fold(r#"{"priority": 1}"#.to_string(), |acc, _| {
            format!(r#"{{"title": "t", "priority": 1, "parent": {acc}}}"#)
        });
        let e = call(&t, "POST", "/v1/p/docs", &missing_deep).unwrap_err();
        assert_eq!(missing(&e), [format!("doc{}.title", ".parent".repeat(depth))]);
    }

    #[test]
    fn an_update_needs_only_the_required_fields_its_mask_covers() {
        // AIP-203: a partial update may omit a REQUIRED field of the resource that its mask
        // leaves unchanged. UpdateDocRequest { Doc doc (the body); FieldMask update_mask }.
        let t = transcoder(true);
        let patch = |query: &str, body: &str| call(&t, "PATCH", &format!("/v1/docs/1{query}"), body);
        assert!(patch("?updateMask=note", r#"{"note": "n"}"#).is_ok());
        assert_eq!(missing(&patch("?updateMask=note,title", r#"{"note": "n"}"#).unwrap_err()), ["doc.title"]);
        // Inside the resource: a mask path covers the fields below it.
        assert!(patch("?updateMask=main.quantity", r#"{"main": {"quantity": 2}}"#).is_ok());
        assert_eq!(missing(&patch("?updateMask=main", r#"{"main": {"quantity": 2}}"#).unwrap_err()), ["doc.main.sku"]);
        // No mask, or `*`: a full replacement, everything REQUIRED must be set.
        assert_eq!(missing(&patch("", r#"{"note": "n"}"#).unwrap_err()), ["doc.title", "doc.priority"]);
        assert_eq!(missing(&patch("?updateMask=*", r#"{"note": "n"}"#).unwrap_err()), ["doc.title", "doc.priority"]);
        // The mask json2grpc fills from the body (patch_field_mask) counts the same.
        let filled = transcoder_with(r#""rest":{"field_behavior":true,"patch_field_mask":true}"#);
        assert!(call(&filled, "PATCH", "/v1/docs/1", r#"{"note": "n"}"#).is_ok());
        // A request without a mask field is not an update: CreateDoc still needs doc.title.
        assert_eq!(missing(&call(&t, "POST", "/v1/p/docs", r#"{"priority": 1}"#).unwrap_err()), ["doc.title"]);
    }
}
