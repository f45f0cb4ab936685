//! Query parameters: every field a query parameter can set that the path and the body do not
//! (with `body: "*"` the body carries everything): scalars, enums, the well-known types with a
//! string form, lists of them (repeated keys, `explode`), and maps as `field[key]=value`
//! (`style: deepObject`), by dotted name through singular message fields.
//!
//! Not described, though accepted: proto names where the document uses JSON names (or the
//! reverse), values through repeated message fields (`items.name` adds an element), and fields
//! deeper than [`MAX_DEPTH`] or past a type already on the way (recursion).
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::json::{obj, put, set, string};

use super::docs::REQUIRED;
use super::schemas::Schemas;
use super::url;
use crate::core::config::sorted_contains;
use crate::core::reach::reaching;
use crate::core::route::router::{bindable_message, BodyRule, HttpBinding, PathVariable};
use crate::core::schema::{Field, Kind, Schema};

/// Message fields followed at most this deep (`a.b.c…`).
pub const MAX_DEPTH: usize = 8;
/// At most this many parameters per operation.
pub const MAX_PARAMETERS: usize = 256;
/// At most this many fields looked at per operation: with [`reach`] every message walked
/// into holds a parameter, so this only bounds schemas built to be wide and deep. Across the
/// document, a field looked at that yields no parameter (a repeated message, an excluded one)
/// counts toward its size (`max_bytes`) as [`VISIT_BYTES`] and the names it joined and looked
/// up: it adds nothing to the text, and thousands of operations may each look at thousands.
const MAX_VISITS: usize = 1 << 16;
const VISIT_BYTES: usize = 4;
/// Documentation is looked up for the fields of messages whose full name is at most this long.
const MAX_DOCS_NAME: usize = 1024;

/// The query parameters of `binding`, as OpenAPI parameter objects.
pub fn parameters(schemas: &mut Schemas<'_>, binding: &HttpBinding, ignored: &[String]) -> Vec<Value> {
    if binding.body == BodyRule::Whole {
        return Vec::new();
    }
    let mut excluded: HashSet<String> = binding
        .variables
        .iter()
        .filter_map(|v| match v {
            PathVariable::Field(p) | PathVariable::Unsettable(p) => Some(p.to_string()),
            PathVariable::Unknown(_) => None,
        })
        .collect();
    let body = match &binding.body {
        BodyRule::Field(p) => Some(p.to_string()),
        _ => None,
    };
    excluded.extend(body);
    let mut walk = Walk { schemas, excluded, ignored, out: Vec::new(), types: Vec::new(), visits: 0, unused: 0 };
    walk.message(binding.method.input, "", "", true);
    walk.schemas.query_unused = walk.schemas.query_unused.saturating_add(walk.unused);
    walk.out
}

struct Walk<'s, 'a> {
    schemas: &'s mut Schemas<'a>,
    /// Proto field paths set by the path or the body (their subtrees too); a set, as a
    /// template may hold thousands of variables.
    excluded: HashSet<String>,
    /// `ignored_query_parameters`, sorted.
    ignored: &'s [String],
    out: Vec<Value>,
    /// The message types on the way down (recursion stops at one already there).
    types: Vec<usize>,
    /// Fields looked at so far (bounded by [`MAX_VISITS`]).
    visits: usize,
    /// What the visits that wrote no parameter cost, in bytes (see [`VISIT_BYTES`]).
    unused: usize,
}

impl Walk<'_, '_> {
    /// The fields of message `m`, reached by `proto` (proto names) and `name` (document names);
    /// `required`: every field on the way is REQUIRED.
    fn message(&mut self, m: usize, proto: &str, name: &str, required: bool) {
        let schema = self.schemas.schema;
        let Some(message) = schema.message(m) else { return };
        if self.types.len() >= MAX_DEPTH || self.types.contains(&m) {
            return;
        }
        self.types.push(m);
        // Descriptions and behaviors are looked up by the field's full name: not for a message
        // whose own name is longer than any real one (each lookup hashes it).
        let docs_name = Some(&*message.full_name).filter(|n| n.len() <= MAX_DOCS_NAME);
        for f in &message.fields {
            if self.out.len() >= MAX_PARAMETERS || self.visits >= MAX_VISITS {
                break;
            }
            self.visits += 1;
            let proto = join(proto, f.name());
            let name = join(name, self.schemas.key(f));
            let before = self.out.len();
            self.field(f, docs_name, &proto, name.clone(), required);
            if self.out.len() == before {
                // Work that wrote nothing: counted toward max_bytes (what a parameter costs is
                // in its JSON).
                let cost = VISIT_BYTES + proto.len() + name.len() + docs_name.map_or(0, str::len);
                self.unused = self.unused.saturating_add(cost);
            }
        }
        self.types.pop();
    }

    /// Field `f` of a message (`docs_name`: its full name, to look up documentation), reached
    /// by `proto` and `name`.
    fn field(&mut self, f: &Field, docs_name: Option<&str>, proto: &str, name: String, required: bool) {
        if self.excluded.contains(proto) || sorted_contains(self.ignored, name.as_bytes()) {
            return;
        }
        let docs = self.schemas.docs;
        let behavior = docs_name.map_or(0, |m| docs.behavior(m, f.name()));
        let required = required && behavior & REQUIRED != 0;
        let description = docs_name.and_then(|m| docs.comment(&format!("{m}.{}", f.name()))).map(str::to_string);
        if f.map() {
            self.map(f, &name, description);
            return;
        }
        match url::value(self.schemas, f.kind()) {
            Some(value) => self.leaf(f, name, value, required, description),
            // A message without a string form: its fields, unless it is a list.
            None => match f.kind() {
                Kind::Message(sub) if !f.is_list() && self.schemas.query_reach.get(sub) == Some(&true) => {
                    self.message(sub, proto, &name, required)
                }
                _ => {}
            },
        }
    }

    fn leaf(&mut self, f: &Field, name: String, value: Value, required: bool, description: Option<String>) {
        let mut p = param(name, description);
        if f.is_list() {
            put(&mut p, "schema", obj(vec![("type", string("array")), ("items", value)]));
            put(&mut p, "style", string("form"));
            put(&mut p, "explode", Value::Bool(true));
        } else {
            put(&mut p, "schema", value);
        }
        if required {
            put(&mut p, "required", Value::Bool(true));
        }
        self.out.push(Value::Object(p));
    }

    /// `field[key]=value` for maps whose values a URL can set.
    fn map(&mut self, f: &Field, name: &str, description: Option<String>) {
        let Some((_, value)) = self.schemas.map_entry(f) else { return };
        let Some(value) = url::value(self.schemas, value.kind()) else { return };
        let mut object = self.schemas.field(f, false);
        set(&mut object, "additionalProperties", value);
        let mut p = param(name.to_string(), description);
        put(&mut p, "schema", object);
        put(&mut p, "style", string("deepObject"));
        put(&mut p, "explode", Value::Bool(true));
        self.out.push(Value::Object(p));
    }
}

fn param(name: String, description: Option<String>) -> Map<String, Value> {
    let mut p = Map::new();
    put(&mut p, "name", Value::String(name));
    put(&mut p, "in", string("query"));
    if let Some(text) = description {
        put(&mut p, "description", Value::String(text));
    }
    p
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Which message types hold a field a query parameter can set, themselves or through singular
/// message fields: the walk goes only into those (a schema of nested messages without such a
/// field would otherwise cost its fan-out to the power of [`MAX_DEPTH`] per operation). Linear:
/// settable types first, then their holders along the reversed field edges.
pub fn reach(schema: &Schema) -> Vec<bool> {
    let settable = |kind: Kind| match kind {
        Kind::Scalar(_) | Kind::Enum(_) => true,
        Kind::Message(m) => bindable_message(schema.message_name(m)),
    };
    let leaf = |f: &Field| match (f.map(), f.kind()) {
        (true, Kind::Message(entry)) => {
            schema.message(entry).and_then(|e| e.map_value()).is_some_and(|v| settable(v.kind()))
        }
        (true, _) => false,
        (false, kind) => settable(kind),
    };
    let seeds = schema.messages.iter().map(|m| m.fields.iter().any(leaf)).collect();
    let edges = schema.messages.iter().enumerate().flat_map(|(i, m)| {
        m.fields.iter().filter_map(move |f| match (f.map(), f.is_list(), f.kind()) {
            (false, false, Kind::Message(sub)) => Some((i, sub)),
            _ => None,
        })
    });
    reaching(seeds, edges)
}
