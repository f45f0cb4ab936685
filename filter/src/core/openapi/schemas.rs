//! Component schemas: each message and enum as json2grpc prints and parses it (proto3 JSON):
//! `json_name` keys (proto names with `preserve_proto_field_names`), 64-bit integers as
//! strings (numbers accepted), bytes as base64, enums by name (numbers with
//! `always_print_enums_as_ints`; both accepted), maps as objects, oneofs as "at most one of",
//! the well-known types in their own forms ([`wkt`](super::wkt)). Recursive types are `$ref`s.
//!
//! A message with a `google.api.field_behavior` REQUIRED field (or one below it) has a second,
//! request-side schema `<name>-Input` listing them in `required`: responses omit fields with
//! default values, so the shared schema cannot require them.

use serde_json::{Map, Value};

use super::docs::{Docs, INPUT_ONLY, OUTPUT_ONLY, REQUIRED};
use super::json::{obj, put, reference, set, string, text};
use super::wkt;
use crate::core::schema::{Field, Kind, Scalar, Schema};

/// Oneofs with more members than this get their rule in `x-json2grpc-oneofs` only (the
/// pairwise constraint grows with the square of the members).
const MAX_ONEOF_CONSTRAINT: usize = 8;

/// The print options that change the JSON form.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub proto_names: bool,
    pub enums_as_ints: bool,
    /// `json2grpc.rest.reject_unknown_fields`: message objects are closed
    /// (`additionalProperties: false`), as the filter refuses keys naming no field.
    pub closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    /// A message; `true`: its request-side variant.
    Message(usize, bool),
    Enum(usize),
}

/// The component schemas a document refers to, made as they are first referred to.
pub struct Schemas<'a> {
    pub schema: &'a Schema,
    pub docs: &'a Docs,
    pub style: Style,
    /// By message index: whether the request side differs (a REQUIRED field in it or below).
    input_variant: Vec<bool>,
    /// By message index: whether it holds a query-settable field ([`super::query::reach`]).
    pub query_reach: Vec<bool>,
    /// Queued already: by message index (shared, request-side), by enum index.
    queued_messages: Vec<[bool; 2]>,
    queued_enums: Vec<bool>,
    queue: Vec<Component>,
    out: Map<String, Value>,
    /// What the query walk's visits that wrote no parameter cost so far, in bytes, all
    /// operations together ([`super::query`]).
    pub query_unused: usize,
}

impl<'a> Schemas<'a> {
    pub fn new(schema: &'a Schema, docs: &'a Docs, style: Style) -> Schemas<'a> {
        let input_variant = input_variants(schema, docs);
        Schemas {
            schema,
            docs,
            style,
            input_variant,
            query_reach: super::query::reach(schema),
            queued_messages: vec![[false; 2]; schema.messages.len()],
            queued_enums: vec![false; schema.enums.len()],
            queue: Vec::new(),
            out: Map::new(),
            query_unused: 0,
        }
    }

    /// The JSON key of a field.
    pub fn key<'f>(&self, field: &'f Field) -> &'f str {
        if self.style.proto_names {
            field.name()
        } else {
            field.json_name()
        }
    }

    /// `{"$ref": …}` to message `m`'s schema (`input`: as a request carries it).
    pub fn message(&mut self, m: usize, input: bool) -> Value {
        let input = input && self.input_variant.get(m).copied().unwrap_or(false);
        self.reference(Component::Message(m, input))
    }

    pub fn enumeration(&mut self, e: usize) -> Value {
        self.reference(Component::Enum(e))
    }

    /// A reference to a message by full name (the well-known types refer to each other).
    pub fn message_named(&mut self, full_name: &str) -> Option<Value> {
        self.schema.message_index(full_name).map(|m| self.message(m, false))
    }

    fn reference(&mut self, c: Component) -> Value {
        let name = self.name(c);
        let slot = match c {
            Component::Message(m, input) => self.queued_messages.get_mut(m).and_then(|q| q.get_mut(usize::from(input))),
            Component::Enum(e) => self.queued_enums.get_mut(e),
        };
        if let Some(queued) = slot.filter(|q| !**q) {
            *queued = true;
            self.queue.push(c);
        }
        reference("schemas", &name)
    }

    fn name(&self, c: Component) -> String {
        match c {
            Component::Message(m, false) => self.schema.message_name(m).to_string(),
            // A proto name has no '-': the variant's name cannot be another type's.
            Component::Message(m, true) => format!("{}-Input", self.schema.message_name(m)),
            Component::Enum(e) => self.schema.enumeration(e).map_or(String::new(), |e| e.full_name.to_string()),
        }
    }

    /// The schema of a field's JSON value: a list is an array, a map an object.
    pub fn field(&mut self, field: &Field, input: bool) -> Value {
        if field.map() {
            if let Some((key, value)) = self.map_entry(field) {
                let value = self.value(value.kind(), input);
                return obj(vec![
                    ("type", string("object")),
                    ("additionalProperties", value),
                    ("propertyNames", map_key(key)),
                ]);
            }
        }
        let value = self.value(field.kind(), input);
        if field.is_list() {
            return obj(vec![("type", string("array")), ("items", value)]);
        }
        value
    }

    /// A map field's key kind and value field.
    pub fn map_entry(&self, field: &Field) -> Option<(Scalar, &'a Field)> {
        let Kind::Message(entry) = field.kind() else { return None };
        let entry = self.schema.message(entry)?;
        match (entry.map_key()?.kind(), entry.map_value()?) {
            (Kind::Scalar(key), value) => Some((key, value)),
            _ => None,
        }
    }

    /// The schema of one JSON value of `kind`.
    pub fn value(&mut self, kind: Kind, input: bool) -> Value {
        match kind {
            Kind::Scalar(s) => scalar(s),
            Kind::Enum(e) => self.enumeration(e),
            Kind::Message(m) => self.message(m, input),
        }
    }

    /// Makes every schema referred to (and what they refer to); by name.
    pub fn finish(mut self) -> Map<String, Value> {
        while let Some(c) = self.queue.pop() {
            let schema = match c {
                Component::Message(m, input) => self.message_schema(m, input),
                Component::Enum(e) => self.enum_schema(e),
            };
            let name = self.name(c);
            put(&mut self.out, &name, schema);
        }
        self.out
    }

    fn message_schema(&mut self, m: usize, input: bool) -> Value {
        let Some(message) = self.schema.message(m) else { return Value::Null };
        let description = self.docs.comment(&message.full_name).map(string);
        let mut schema = match wkt::schema(self, &message.full_name) {
            Some(schema) => schema,
            None => self.object(m, input),
        };
        if let Some(description) = description {
            set(&mut schema, "description", description);
        }
        schema
    }

    /// An ordinary message: an object of its fields.
    fn object(&mut self, m: usize, input: bool) -> Value {
        let Some(message) = self.schema.message(m) else { return Value::Null };
        let mut properties = Map::new();
        let mut required = Vec::new();
        for f in &message.fields {
            let mut schema = self.field(f, input);
            let behavior = self.docs.behavior(&message.full_name, f.name());
            if let Some(text) = self.docs.comment(&format!("{}.{}", message.full_name, f.name())) {
                set(&mut schema, "description", string(text));
            }
            if behavior & OUTPUT_ONLY != 0 {
                set(&mut schema, "readOnly", Value::Bool(true));
            }
            if behavior & INPUT_ONLY != 0 {
                set(&mut schema, "writeOnly", Value::Bool(true));
            }
            // An output-only field is not the client's to send, however required.
            if input && behavior & REQUIRED != 0 && behavior & OUTPUT_ONLY == 0 {
                required.push(string(self.key(f)));
            }
            put(&mut properties, self.key(f), schema);
        }
        let mut object = Map::new();
        put(&mut object, "type", string("object"));
        put(&mut object, "properties", Value::Object(properties));
        if self.style.closed {
            put(&mut object, "additionalProperties", Value::Bool(false));
        }
        if !required.is_empty() {
            put(&mut object, "required", Value::Array(required));
        }
        let (mut rules, notes) = self.oneofs(m);
        if rules.len() > 1 {
            let all = rules.into_iter().map(|r| obj(vec![("not", r)])).collect();
            put(&mut object, "allOf", Value::Array(all));
        } else if let Some(rule) = rules.pop() {
            put(&mut object, "not", rule);
        }
        if !notes.is_empty() {
            put(&mut object, "x-json2grpc-oneofs", Value::Object(notes));
        }
        Value::Object(object)
    }

    /// Per real oneof: what its values must not match (two members at once), and its members.
    fn oneofs(&self, m: usize) -> (Vec<Value>, Map<String, Value>) {
        let (mut rules, mut notes) = (Vec::new(), Map::new());
        let Some(message) = self.schema.message(m) else { return (rules, notes) };
        // Members by oneof in one pass over the fields (a message may have thousands of both).
        let oneofs = self.schema.oneofs(m);
        let mut by_oneof: Vec<Vec<&str>> = vec![Vec::new(); oneofs.len()];
        for f in &message.fields {
            if let Some(members) = f.oneof().and_then(|o| by_oneof.get_mut(usize::from(o))) {
                members.push(self.key(f));
            }
        }
        for (oneof, members) in oneofs.iter().zip(by_oneof) {
            if oneof.synthetic {
                continue;
            }
            put(&mut notes, &oneof.name, Value::Array(members.iter().map(|m| string(m)).collect()));
            if members.len() < 2 || members.len() > MAX_ONEOF_CONSTRAINT {
                continue;
            }
            let mut pairs = Vec::new();
            for (a, first) in members.iter().enumerate() {
                for second in members.iter().skip(a + 1) {
                    pairs.push(obj(vec![("required", Value::Array(vec![string(first), string(second)]))]));
                }
            }
            rules.push(obj(vec![("anyOf", Value::Array(pairs))]));
        }
        (rules, notes)
    }

    fn enum_schema(&self, e: usize) -> Value {
        let Some(en) = self.schema.enumeration(e) else { return Value::Null };
        if &*en.full_name == "google.protobuf.NullValue" {
            return text(r#"{"type": "null", "description": "JSON null (google.protobuf.NullValue)"}"#);
        }
        let names: Vec<Value> = en.values.iter().map(|(n, _)| string(n)).collect();
        let by_name = obj(vec![("type", string("string")), ("enum", Value::Array(names))]);
        let by_number = text(r#"{"type": "integer", "format": "int32"}"#);
        let (first, second, printed) = match self.style.enums_as_ints {
            false => (
                by_name,
                by_number,
                "by name; numbers are accepted too, and a number the enum does not declare is printed as a number",
            ),
            true => (by_number, by_name, "as numbers (always_print_enums_as_ints); names are accepted too"),
        };
        let mut description = format!("Enum {}, {printed}.", en.full_name);
        if let Some(text) = self.docs.comment(&en.full_name) {
            description = format!("{text}\n\n{description}");
        }
        let values: Vec<String> = en
            .values
            .iter()
            .filter_map(|(n, v)| {
                let comment = self.docs.comment(&format!("{}.{n}", en.full_name))?;
                Some(format!("- `{n}` ({v}): {comment}"))
            })
            .collect();
        if !values.is_empty() {
            description = format!("{description}\n\n{}", values.join("\n"));
        }
        obj(vec![("anyOf", Value::Array(vec![first, second])), ("description", Value::String(description))])
    }
}

/// The JSON form of a scalar, as printed and as parsed.
pub fn scalar(s: Scalar) -> Value {
    use Scalar::*;
    text(match s {
        Double => {
            r#"{"oneOf": [{"type": "number", "format": "double"},
                {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}"#
        }
        Float => {
            r#"{"oneOf": [{"type": "number", "format": "float"},
                {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}"#
        }
        Int32 | Sint32 | Sfixed32 => {
            r#"{"type": "integer", "format": "int32", "minimum": -2147483648, "maximum": 2147483647}"#
        }
        Uint32 | Fixed32 => r#"{"type": "integer", "minimum": 0, "maximum": 4294967295}"#,
        // Printed as strings (JSON numbers lose precision past 2^53); numbers are accepted.
        Int64 | Sint64 | Sfixed64 => {
            r#"{"type": ["string", "integer"], "format": "int64", "pattern": "^-?[0-9]+$",
                "minimum": -9223372036854775808, "maximum": 9223372036854775807}"#
        }
        Uint64 | Fixed64 => {
            r#"{"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0,
                "maximum": 18446744073709551615}"#
        }
        Bool => r#"{"type": "boolean"}"#,
        String => r#"{"type": "string"}"#,
        Bytes => r#"{"type": "string", "contentEncoding": "base64"}"#,
    })
}

/// A map's keys are object keys: the key's text.
fn map_key(key: Scalar) -> Value {
    text(match key {
        Scalar::Bool => r#"{"enum": ["true", "false"]}"#,
        Scalar::String => r#"{"type": "string"}"#,
        Scalar::Uint32 | Scalar::Uint64 | Scalar::Fixed32 | Scalar::Fixed64 => r#"{"pattern": "^[0-9]+$"}"#,
        _ => r#"{"pattern": "^-?[0-9]+$"}"#,
    })
}

/// Which messages need a request-side variant: those with a REQUIRED field, and every message
/// that reaches one through its fields (found backwards from them, linear in the fields).
fn input_variants(schema: &Schema, docs: &Docs) -> Vec<bool> {
    let seeds = schema
        .messages
        .iter()
        .map(|m| m.fields.iter().any(|f| docs.behavior(&m.full_name, f.name()) & REQUIRED != 0))
        .collect();
    let edges = schema.messages.iter().enumerate().flat_map(|(i, m)| {
        m.fields.iter().filter_map(move |f| match f.kind() {
            Kind::Message(target) => Some((i, target)),
            _ => None,
        })
    });
    crate::core::reach::reaching(seeds, edges)
}
