//! Dotted field paths (`item.nested.name`) resolved against a message type once, and used
//! to read and write fields of dynamic messages.
use std::borrow::Cow;
use std::fmt;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

/// A resolved path of fields from a root message type. Every field but the last is a singular
/// message field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    fields: Vec<FieldDescriptor>,
}

/// How names in a path are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// proto field names only (templates, `body`, `response_body`).
    Proto,
    /// proto names or json_names (query parameters).
    ProtoOrJson,
}

impl FieldPath {
    pub fn resolve(root: &MessageDescriptor, path: &str, names: Names) -> Result<FieldPath, String> {
        let mut fields = Vec::new();
        let mut current = root.clone();
        let mut parts = path.split('.').peekable();
        while let Some(name) = parts.next() {
            let field = current
                .get_field_by_name(name)
                .or_else(|| match names {
                    Names::ProtoOrJson => current.get_field_by_json_name(name),
                    Names::Proto => None,
                })
                .ok_or_else(|| format!("no field \"{name}\" in {}", current.full_name()))?;
            if parts.peek().is_some() {
                match field.kind() {
                    Kind::Message(m) if !field.is_list() && !field.is_map() => current = m,
                    _ => return Err(format!("\"{name}\" in {} is not a singular message field", current.full_name())),
                }
            }
            fields.push(field);
        }
        if fields.is_empty() {
            return Err("empty field path".to_string());
        }
        Ok(FieldPath { fields })
    }

    /// The field the path ends at.
    pub fn leaf(&self) -> Option<&FieldDescriptor> {
        self.fields.last()
    }

    pub fn fields(&self) -> &[FieldDescriptor] {
        &self.fields
    }

    /// The message holding the leaf, created on the way if absent.
    pub fn parent_mut<'m>(&self, root: &'m mut DynamicMessage) -> Option<&'m mut DynamicMessage> {
        let (_, parents) = self.fields.split_last()?;
        let mut current = root;
        for field in parents {
            current = match current.get_field_mut(field) {
                Value::Message(m) => m,
                _ => return None,
            };
        }
        Some(current)
    }

    /// The message holding the leaf, if every parent is set.
    pub fn parent<'m>(&self, root: &'m DynamicMessage) -> Option<&'m DynamicMessage> {
        let (_, parents) = self.fields.split_last()?;
        let mut current = root;
        for field in parents {
            if !current.has_field(field) {
                return None;
            }
            current = match current.get_field(field) {
                Cow::Borrowed(Value::Message(m)) => m,
                _ => return None,
            };
        }
        Some(current)
    }

    /// Whether the leaf is set (for repeated/map fields: non-empty).
    pub fn is_set(&self, root: &DynamicMessage) -> bool {
        match (self.parent(root), self.leaf()) {
            (Some(parent), Some(leaf)) => parent.has_field(leaf),
            _ => false,
        }
    }

    /// Sets the leaf to `value`; for a repeated leaf the value is appended, for a map leaf
    /// `key` selects the entry.
    pub fn set(&self, root: &mut DynamicMessage, value: Value, key: Option<MapKey>) -> Result<(), String> {
        let leaf = self.leaf().ok_or("empty field path")?.clone();
        let parent = self.parent_mut(root).ok_or("cannot reach the field")?;
        if leaf.is_map() {
            let key = key.ok_or_else(|| format!("map field \"{}\" needs a key: {}[key]", leaf.name(), leaf.name()))?;
            match parent.get_field_mut(&leaf) {
                Value::Map(map) => {
                    map.insert(key, value);
                    Ok(())
                }
                _ => Err("not a map".to_string()),
            }
        } else if leaf.is_list() {
            match parent.get_field_mut(&leaf) {
                Value::List(list) => {
                    list.push(value);
                    Ok(())
                }
                _ => Err("not a list".to_string()),
            }
        } else {
            parent.try_set_field(&leaf, value).map_err(|e| e.to_string())
        }
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
    use crate::core::testutil::message;

    #[test]
    fn resolves_proto_and_json_names() {
        let root = message("test.v1.Everything");
        let p = FieldPath::resolve(&root, "scalars.f_int32", Names::Proto).unwrap();
        assert_eq!(p.to_string(), "scalars.f_int32");
        assert!(FieldPath::resolve(&root, "scalars.fInt32", Names::Proto).is_err());
        let p = FieldPath::resolve(&root, "scalars.fInt32", Names::ProtoOrJson).unwrap();
        assert_eq!(p.to_string(), "scalars.f_int32");
        let p = FieldPath::resolve(&root, "customName", Names::ProtoOrJson).unwrap();
        assert_eq!(p.to_string(), "renamed");
    }

    #[test]
    fn rejects_unknown_and_non_message_parents() {
        let root = message("test.v1.Everything");
        for path in ["nope", "scalars.nope", "id.x", "items.name", "labels.k", "", "scalars."] {
            assert!(FieldPath::resolve(&root, path, Names::ProtoOrJson).is_err(), "{path}");
        }
        let e = FieldPath::resolve(&root, "items.name", Names::Proto).unwrap_err();
        assert!(e.contains("not a singular message"), "{e}");
    }

    #[test]
    fn sets_nested_repeated_and_map_leaves() {
        let root = message("test.v1.Everything");
        let mut m = DynamicMessage::new(root.clone());
        let nested = FieldPath::resolve(&root, "nested.child.name", Names::Proto).unwrap();
        assert!(!nested.is_set(&m));
        nested.set(&mut m, Value::String("x".into()), None).unwrap();
        assert!(nested.is_set(&m));
        let tags = FieldPath::resolve(&root, "tags", Names::Proto).unwrap();
        tags.set(&mut m, Value::String("a".into()), None).unwrap();
        tags.set(&mut m, Value::String("b".into()), None).unwrap();
        let labels = FieldPath::resolve(&root, "labels", Names::Proto).unwrap();
        labels.set(&mut m, Value::String("v".into()), Some(MapKey::String("k".into()))).unwrap();
        assert!(labels.set(&mut m, Value::String("v".into()), None).unwrap_err().contains("needs a key"));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"nested":{"child":{"name":"x"}},"tags":["a","b"],"labels":{"k":"v"}}"#);
    }
}
