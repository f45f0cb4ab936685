//! The keys a JSON request body sets, read with the compiled plans before it is encoded:
//! the field mask of a PATCH (`json2grpc.rest.patch_field_mask`) and the unknown keys a strict
//! body is refused for (`json2grpc.rest.reject_unknown_fields`). One pass over the body; syntax
//! errors are the encoder's (the same reader reports them).
//!
//! Mask paths follow grpc-gateway: proto names joined by dots, relative to the body's message;
//! a non-empty object for a singular message field adds its keys' paths, anything else (a
//! scalar, a list, a map, a well-known type, `null`, `{}`) the field's own path.
use crate::core::codec::plan::{FieldPlan, MessagePlan, Plans, Shape, ValueKind, WellKnown};
use crate::core::codec::reader::Reader;
use crate::core::error::{Error, Result};

/// Most unknown keys named in a refusal (all are counted).
pub const MAX_LISTED: usize = 100;
/// Most bytes of unknown paths named in a refusal.
pub const MAX_LISTED_BYTES: usize = 16 * 1024;
/// A mask may hold at most this many bytes of paths per byte of body (and 64 KiB whatever the
/// body): a path repeats its parents' names, so a deeply nested body could otherwise list far
/// more than it is.
const MASK_BYTES_PER_BODY_BYTE: usize = 4;
const MIN_MASK_BYTES: usize = 64 * 1024;

/// What to collect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Collect {
    pub mask: bool,
    pub unknown: bool,
    /// Fields marked OUTPUT_ONLY stay out of the mask (they are dropped from the request).
    pub skip_output_only: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BodyKeys {
    /// Field mask paths, in body order.
    pub mask: Vec<String>,
    /// The unknown keys' paths (the first [`MAX_LISTED`]), from the request message: the body
    /// field's path first (`order.notes2`), `[i]` for list elements, `[key]` for map values.
    pub unknown: Vec<String>,
    pub unknown_count: usize,
}

/// Scans `json`, the value of message `index` (`body: "*"`) or of field `field` of it
/// (`body: "field"`, whose path `prefix` starts the unknown keys' paths).
pub fn scan(
    plans: &Plans,
    index: usize,
    field: Option<(&FieldPlan, &str)>,
    json: &[u8],
    max_depth: u32,
    collect: Collect,
) -> Result<BodyKeys> {
    let mut scan = Scan {
        plans,
        collect,
        reader: Reader::new(json, max_depth)?,
        keys: BodyKeys::default(),
        path: String::new(),
        mask_path: String::new(),
        listed_bytes: 0,
        mask_bytes: 0,
        max_mask_bytes: json.len().saturating_mul(MASK_BYTES_PER_BODY_BYTE).max(MIN_MASK_BYTES),
    };
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(scan.keys);
    }
    match field {
        None => {
            scan.message(index, collect.mask)?;
        }
        Some((field, prefix)) => {
            scan.path.push_str(prefix);
            // The mask is relative to the body field's message: only a singular one has one.
            let mask = collect.mask && matches!(field.shape, Shape::Single { .. });
            match field.kind {
                ValueKind::Message(m) if mask && ordinary(plans.message(m)) && scan.reader.peek()? == b'{' => {
                    scan.message(m, true)?;
                }
                _ => scan.value(field)?,
            }
        }
    }
    scan.reader.end()?;
    Ok(scan.keys)
}

/// A message whose JSON is an object of its fields (not a well-known type's own form).
fn ordinary(plan: Option<&MessagePlan>) -> bool {
    plan.is_some_and(|p| !p.well_known.is_some_and(WellKnown::custom_json))
}

struct Scan<'p, 'a> {
    plans: &'p Plans,
    collect: Collect,
    reader: Reader<'a>,
    keys: BodyKeys,
    /// The unknown keys' path to the current value, as sent.
    path: String,
    /// The mask path to the current message, in proto names.
    mask_path: String,
    listed_bytes: usize,
    mask_bytes: usize,
    max_mask_bytes: usize,
}

impl Scan<'_, '_> {
    /// An object of message `index`; `mask`: its keys are mask paths. Returns how many mask
    /// paths it added, and how many of its keys were left out as OUTPUT_ONLY (their own, or all
    /// of an object under them).
    fn message(&mut self, index: usize, mask: bool) -> Result<(usize, usize)> {
        let plans = self.plans;
        let plan = plans.message(index).ok_or_else(|| Error::internal("message plan missing"))?;
        let added = self.keys.mask.len();
        let mut output_only = 0usize;
        self.reader.object_start()?;
        let mut first = true;
        while let Some(key) = self.reader.next_key(&mut first)? {
            let path_len = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(&key);
            match plan.by_name.get(key.as_bytes()).and_then(|i| plan.fields.get(usize::from(*i))) {
                None => {
                    self.unknown();
                    self.reader.skip()?;
                }
                Some(field) => {
                    let skipped = mask && self.collect.skip_output_only && field.output_only;
                    if mask && !skipped {
                        if self.mask_field(field)? {
                            output_only += 1;
                        }
                    } else {
                        self.value(field)?;
                        output_only += usize::from(skipped);
                    }
                }
            }
            self.path.truncate(path_len);
        }
        Ok((self.keys.mask.len() - added, output_only))
    }

    /// A field's value inside a masked message: its keys' paths if it is a non-empty object of
    /// a singular ordinary message, else the field's own path.
    /// Returns true when it added nothing because the object held only OUTPUT_ONLY keys (a
    /// resource read and sent back: its output fields must not mask, and clear, the field).
    fn mask_field(&mut self, field: &FieldPlan) -> Result<bool> {
        let mask_len = self.mask_path.len();
        if !self.mask_path.is_empty() {
            self.mask_path.push('.');
        }
        self.mask_path.push_str(&field.proto_name);
        let nested = match (field.shape, field.kind) {
            (Shape::Single { .. }, ValueKind::Message(m)) if ordinary(self.plans.message(m)) => {
                self.reader.peek()? == b'{'
            }
            _ => false,
        };
        let (added, output_only) = match (nested, field.kind) {
            (true, ValueKind::Message(m)) => self.message(m, true)?,
            _ => {
                self.value(field)?;
                (0, 0)
            }
        };
        let only_output = added == 0 && output_only > 0;
        if added == 0 && !only_output {
            self.mask_bytes = self.mask_bytes.saturating_add(self.mask_path.len());
            if self.mask_bytes > self.max_mask_bytes {
                return Err(Error::bad_request(format!(
                    "the body sets too many fields for an update mask (over {} bytes of field paths)",
                    self.max_mask_bytes
                )));
            }
            self.keys.mask.push(self.mask_path.clone());
        }
        self.mask_path.truncate(mask_len);
        Ok(only_output)
    }

    /// A field's value, walked for unknown keys only where it holds messages.
    fn value(&mut self, field: &FieldPlan) -> Result<()> {
        let message = match field.kind {
            ValueKind::Message(m) if self.collect.unknown && ordinary(self.plans.message(m)) => m,
            _ => return self.reader.skip(),
        };
        match (field.shape, self.reader.peek()?) {
            (Shape::Single { .. }, b'{') => self.message(message, false).map(drop),
            (Shape::Repeated { .. }, b'[') => {
                self.reader.array_start()?;
                let mut first = true;
                let mut i = 0usize;
                while self.reader.next_element(&mut first)? {
                    self.element(message, &i.to_string())?;
                    i += 1;
                }
                Ok(())
            }
            (Shape::Map { value: ValueKind::Message(m), .. }, b'{') if ordinary(self.plans.message(m)) => {
                self.reader.object_start()?;
                let mut first = true;
                while let Some(key) = self.reader.next_key(&mut first)? {
                    self.element(m, &key)?;
                }
                Ok(())
            }
            // Wrong types are the encoder's to report.
            _ => self.reader.skip(),
        }
    }

    /// A list element or map value `[label]` of message type `index`.
    fn element(&mut self, index: usize, label: &str) -> Result<()> {
        if self.reader.peek()? != b'{' {
            return self.reader.skip();
        }
        let path_len = self.path.len();
        self.path.push('[');
        self.path.push_str(label);
        self.path.push(']');
        self.message(index, false)?;
        self.path.truncate(path_len);
        Ok(())
    }

    fn unknown(&mut self) {
        if !self.collect.unknown {
            return;
        }
        self.keys.unknown_count += 1;
        if self.keys.unknown.len() < MAX_LISTED && self.listed_bytes.saturating_add(self.path.len()) <= MAX_LISTED_BYTES
        {
            self.listed_bytes += self.path.len();
            self.keys.unknown.push(self.path.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::codec::Codec;

    fn codec() -> Codec {
        Codec::new(&crate::testing::fixtures::schema())
    }

    const ALL: Collect = Collect { mask: true, unknown: true, skip_output_only: false };

    fn scan_message(name: &str, json: &str, collect: Collect) -> Result<BodyKeys> {
        let c = codec();
        scan(c.plans(), c.index_of(name).unwrap(), None, json.as_bytes(), 100, collect)
    }

    fn scan_field(name: &str, field: &str, json: &str) -> Result<BodyKeys> {
        let c = codec();
        let index = c.index_of(name).unwrap();
        let plan = c.plans().message(index).unwrap();
        let f = plan.fields.iter().find(|f| &*f.proto_name == field).unwrap();
        scan(c.plans(), index, Some((f, field)), json.as_bytes(), 100, ALL)
    }

    #[test]
    fn mask_paths_are_proto_names_of_the_keys_sent() {
        // test.v1.UpdateRequest.item: Everything { nested: Nested {name, value, child}, … }.
        let k = scan_field(
            "test.v1.UpdateRequest",
            "item",
            r#"{"id": "x", "nested": {"name": "n", "child": {"value": 1}}, "tags": ["a"], "labels": {"k": "v"},
                "scalars": {}, "customName": null}"#,
        )
        .unwrap();
        assert_eq!(k.mask, ["id", "nested.name", "nested.child.value", "tags", "labels", "scalars", "renamed"]);
        assert_eq!(k.unknown_count, 0);
    }

    #[test]
    fn output_only_keys_never_mask_their_field() {
        // A resource read and sent back: `main` holds only its OUTPUT_ONLY `price`, `parent`
        // only a `main` like that. Neither may mask (and so clear) the field.
        let c = codec();
        let index = c.index_of("test.v1.UpdateDocRequest").unwrap();
        let plan = c.plans().message(index).unwrap();
        let doc = plan.fields.iter().find(|f| &*f.proto_name == "doc").unwrap();
        let collect = Collect { mask: true, unknown: false, skip_output_only: true };
        let mask = |json: &str| scan(c.plans(), index, Some((doc, "doc")), json.as_bytes(), 100, collect).unwrap().mask;
        assert_eq!(mask(r#"{"main": {"price": "5"}, "note": "n"}"#), ["note"]);
        assert_eq!(mask(r#"{"parent": {"main": {"price": "5"}}, "version": "3"}"#), Vec::<String>::new());
        assert_eq!(mask(r#"{"main": {"price": "5", "quantity": 2}}"#), ["main.quantity"]);
        // An empty object still means the whole field.
        assert_eq!(mask(r#"{"main": {}}"#), ["main"]);
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let k = scan_field(
            "test.v1.UpdateRequest",
            "item",
            r#"{"id": "x", "bogus": 1, "nested": {"nmae": "n", "child": {"x": {"deep": 1}}},
                "items": [{"name": "a"}, {"nope": 2}], "st": {"free": 1}}"#,
        )
        .unwrap();
        assert_eq!(k.unknown, ["item.bogus", "item.nested.nmae", "item.nested.child.x", "item.items[1].nope"]);
        // An object of only unknown keys is an empty one: its field's own path.
        assert_eq!(k.mask, ["id", "nested.child", "items", "st"]);
        let k = scan_message("test.v1.Everything", r#"{"items": [{}, {"nope": 2}], "byNumber": {"1": {"z": 1}}}"#, ALL);
        let k = k.unwrap();
        assert_eq!(k.unknown, ["items[1].nope", "byNumber[1].z"]);
        assert_eq!(k.unknown_count, 2);
    }

    #[test]
    fn unknown_keys_are_listed_within_bounds_and_all_counted() {
        let body = format!("{{{}}}", (0..150).map(|i| format!(r#""u{i}": 1"#)).collect::<Vec<_>>().join(","));
        let k = scan_message("test.v1.Scalars", &body, ALL).unwrap();
        assert_eq!((k.unknown.len(), k.unknown_count), (MAX_LISTED, 150));
        let long = "k".repeat(10_000);
        let body = format!(r#"{{"{long}1": 1, "{long}2": 1, "{long}3": 1}}"#);
        let k = scan_message("test.v1.Scalars", &body, ALL).unwrap();
        assert_eq!((k.unknown.len(), k.unknown_count), (1, 3));
    }

    #[test]
    fn a_mask_cannot_outgrow_the_body_much() {
        // Paths repeat their parents: 100 levels over many leaves would list far more.
        let mut body = String::new();
        for _ in 0..90 {
            body.push_str(r#"{"child": "#);
        }
        let leaves: Vec<String> = (0..20_000).map(|_| r#""value": 1"#.to_string()).collect();
        body.push_str(&format!("{{{}}}", leaves.join(",")));
        body.push_str(&"}".repeat(90));
        let e = scan_message("test.v1.Nested", &body, ALL).unwrap_err();
        assert!(e.message.contains("too many fields"), "{e}");
    }

    #[test]
    fn only_what_is_asked_is_collected_and_syntax_errors_are_reported() {
        let none = Collect::default();
        assert_eq!(scan_message("test.v1.Scalars", r#"{"x": 1, "fInt32": 2}"#, none).unwrap(), BodyKeys::default());
        assert!(scan_message("test.v1.Scalars", r#"{"x": }"#, ALL).is_err());
        assert!(scan_message("test.v1.Scalars", r#"{} x"#, ALL).is_err());
        assert_eq!(scan_message("test.v1.Scalars", "  ", ALL).unwrap(), BodyKeys::default());
        // A body field that is not a message has no mask and no keys of its own.
        assert_eq!(scan_field("test.v1.Everything", "tags", r#"["a"]"#).unwrap(), BodyKeys::default());
    }
}
