//! Dotted field paths (`item.nested.name`) resolved against a message type once per
//! configuration.
use std::fmt;

use crate::core::route::field_index::FieldIndex;
use crate::core::schema::{Field, Kind, Message, Schema};

/// A resolved path of fields from a root message type. Every field but the last is a message
/// field: singular, or (for URL bindings and `body`, as Envoy allows) repeated, in which case a
/// value is written into a new element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// Exactly sized: the router keeps a path per bound template variable and body, in every
    /// worker's VM (grown by `push`, a one-field path would hold room for four).
    fields: Box<[Field]>,
}

/// How names in a path are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// proto field names only (templates, `body`, `response_body`).
    Proto,
    /// proto names or json_names (query parameters).
    ProtoOrJson,
}

/// Paths longer than this are refused: protobuf parsers refuse messages nested deeper than
/// 100 levels, and the request builder recurses once per level.
pub const MAX_FIELDS: usize = 100;

impl FieldPath {
    /// Resolves `path` from the message type with schema index `root`; every field but the last
    /// must be a singular message field. (The filter resolves through a [`FieldIndex`] it keeps
    /// for the router's build: [`FieldPath::resolve_indexed`].)
    #[cfg(test)]
    pub fn resolve(schema: &Schema, root: usize, path: &str, names: Names) -> Result<FieldPath, String> {
        Self::resolve_indexed(schema, &mut FieldIndex::default(), root, path, names, false)
    }

    /// Like [`FieldPath::resolve`], and a field before the last may also be a repeated message
    /// field (not a map): Envoy accepts `items.name` in templates, query parameters and `body`,
    /// and writes the value into a new element of `items`.
    #[cfg(test)]
    pub fn resolve_through_lists(schema: &Schema, root: usize, path: &str, names: Names) -> Result<FieldPath, String> {
        Self::resolve_indexed(schema, &mut FieldIndex::default(), root, path, names, true)
    }

    /// Resolves `path` from the message type with schema index `root`, each name found through
    /// `index` (a router's build resolves every binding's paths): every field but the last must
    /// be a singular message field, or with `through_lists` a repeated message field (not a
    /// map): Envoy accepts `items.name` in templates, query parameters and `body`, and writes
    /// the value into a new element of `items`.
    pub fn resolve_indexed(
        schema: &Schema,
        index: &mut FieldIndex,
        root: usize,
        path: &str,
        names: Names,
        through_lists: bool,
    ) -> Result<FieldPath, String> {
        Self::resolve_by(schema, root, path, through_lists, |i, message, name| index.find(i, message, name, names))
    }

    /// Like [`FieldPath::resolve_indexed`] through lists with [`Names::ProtoOrJson`], each name found by
    /// `find(message index, message, name)` rather than by scanning the message's fields: the
    /// request path resolves every query parameter, so it looks names up in the codec's plans.
    pub fn resolve_by<'s>(
        schema: &'s Schema,
        root: usize,
        path: &str,
        through_lists: bool,
        mut find: impl FnMut(usize, &'s Message, &str) -> Option<&'s Field>,
    ) -> Result<FieldPath, String> {
        let count = path.split('.').take(MAX_FIELDS + 1).count();
        if count > MAX_FIELDS {
            return Err(format!("field path of more than {MAX_FIELDS} fields"));
        }
        // Sized exactly, so the boxing below moves no bytes (query parameters resolve per request).
        let mut fields = Vec::with_capacity(count);
        let mut index = root;
        let mut current = schema.message(root).ok_or("unknown message type")?;
        let mut parts = path.split('.').peekable();
        while let Some(name) = parts.next() {
            let field =
                find(index, current, name).ok_or_else(|| format!("no field \"{name}\" in {}", current.full_name))?;
            if parts.peek().is_some() {
                let into = !field.is_repeated() || (through_lists && field.is_list());
                (index, current) = match field.kind() {
                    Kind::Message(m) if into => (m, schema.message(m).ok_or("unknown message type")?),
                    _ if through_lists => {
                        return Err(format!("\"{name}\" in {} is not a message field", current.full_name))
                    }
                    _ => return Err(format!("\"{name}\" in {} is not a singular message field", current.full_name)),
                };
            }
            fields.push(field.clone());
        }
        if fields.is_empty() {
            return Err("empty field path".to_string());
        }
        Ok(FieldPath { fields: fields.into_boxed_slice() })
    }

    /// The field the path ends at.
    pub fn leaf(&self) -> Option<&Field> {
        self.fields.last()
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The (message) fields leading to the leaf.
    pub fn parents(&self) -> &[Field] {
        self.fields.split_last().map_or(&[], |(_, parents)| parents)
    }

    /// A value for this path adds to a list rather than replacing a value: the leaf is a
    /// repeated field (not a map), or a field before it is (the value goes into a new element).
    /// Such URL values are appended to what the body holds, as protobuf merges messages.
    pub fn in_list(&self) -> bool {
        self.fields.iter().any(Field::is_list)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(field.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::fixtures::schema;

    fn resolve(path: &str, names: Names) -> Result<FieldPath, String> {
        let schema = schema();
        let root = schema.message_index("test.v1.Everything").unwrap();
        FieldPath::resolve(&schema, root, path, names)
    }

    #[test]
    fn resolves_proto_and_json_names() {
        let p = resolve("scalars.f_int32", Names::Proto).unwrap();
        assert_eq!(p.to_string(), "scalars.f_int32");
        assert_eq!(p.parents().len(), 1);
        assert_eq!(p.leaf().map(|f| f.number), Some(3));
        assert!(resolve("scalars.fInt32", Names::Proto).is_err());
        let p = resolve("scalars.fInt32", Names::ProtoOrJson).unwrap();
        assert_eq!(p.to_string(), "scalars.f_int32");
        let p = resolve("customName", Names::ProtoOrJson).unwrap();
        assert_eq!(p.to_string(), "renamed");
    }

    #[test]
    fn repeated_message_parents_only_where_asked_for() {
        let schema = schema();
        let root = schema.message_index("test.v1.Everything").unwrap();
        let p = FieldPath::resolve_through_lists(&schema, root, "items.child.name", Names::Proto).unwrap();
        assert_eq!(p.to_string(), "items.child.name");
        assert!(p.in_list());
        assert!(resolve("items.name", Names::Proto).is_err());
        // Maps and scalar lists are no parents.
        for path in ["labels.key", "by_number.value", "tags.x", "timestamps.seconds.x"] {
            assert!(FieldPath::resolve_through_lists(&schema, root, path, Names::Proto).is_err(), "{path}");
        }
        assert!(resolve("tags", Names::Proto).unwrap().in_list());
        assert!(!resolve("labels", Names::Proto).unwrap().in_list(), "a map is not a list");
        assert!(!resolve("nested.name", Names::Proto).unwrap().in_list());
    }

    #[test]
    fn rejects_unknown_and_non_message_parents() {
        for path in ["nope", "scalars.nope", "id.x", "items.name", "labels.k", "", "scalars."] {
            assert!(resolve(path, Names::ProtoOrJson).is_err(), "{path}");
        }
        let e = resolve("items.name", Names::Proto).unwrap_err();
        assert!(e.contains("not a singular message"), "{e}");
        let e = resolve("nested.nope", Names::Proto).unwrap_err();
        assert_eq!(e, "no field \"nope\" in test.v1.Nested");
        // Recursive types allow any depth; protobuf does not.
        let deep = |n: usize| format!("nested{}.name", ".child".repeat(n));
        assert_eq!(resolve(&deep(MAX_FIELDS - 2), Names::Proto).unwrap().fields().len(), MAX_FIELDS);
        assert!(resolve(&deep(MAX_FIELDS - 1), Names::Proto).unwrap_err().contains("more than 100 fields"));
    }
}
