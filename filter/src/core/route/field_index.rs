//! Field names looked up while a router is built. Every binding's path variables, `body` and
//! `response_body` name fields of its method's messages; a scan of a message's fields for each
//! made a build cost bindings × fields (10,000 methods bound by a variable to the last of
//! 20,000 fields: 2×10⁸ name comparisons). A message with more than [`SCANNED`] fields gets, on
//! its first lookup, its field positions sorted by name: 4 bytes a field and name kind, kept
//! for the build only (every worker's VM builds, and its linear memory never shrinks). Sorted,
//! not hashed: the names come from the descriptor set, and a set chosen for colliding hashes
//! would make a table quadratic again.
use crate::core::route::field_path::Names;
use crate::core::schema::{Field, Message};

/// Messages with at most this many fields are scanned, as [`Message::field_by_name`] does:
/// most messages are small, and a sorted index would only add to the build's peak. Small, as
/// a scan compares the name with each field's: names sharing a long prefix cost this many
/// times the name's length per lookup (a lookup in the index costs about what a scan of 250
/// short names does, natively: nanoseconds either way).
pub const SCANNED: usize = 32;

/// The sorted field positions of the large messages looked up so far, by schema message index
/// (a list, grown to the index on first use: a map of its own was 2 KB more of .wasm).
#[derive(Default)]
pub struct FieldIndex {
    messages: Vec<Option<Box<Sorted>>>,
}

/// A message's field positions by proto name and by JSON name; ties in declaration order.
struct Sorted {
    proto: Box<[u32]>,
    json: Box<[u32]>,
}

impl FieldIndex {
    /// The field of `message` (schema index `index`) named `name`: by proto name first, then
    /// (with [`Names::ProtoOrJson`]) by JSON name; the first declared when several match, as
    /// [`Message::field_by_name`] and [`Message::field_by_json_name`] find it.
    pub fn find<'s>(&mut self, index: usize, message: &'s Message, name: &str, names: Names) -> Option<&'s Field> {
        let fields = &message.fields;
        if fields.len() <= SCANNED {
            return message.field_by_name(name).or_else(|| match names {
                Names::ProtoOrJson => message.field_by_json_name(name),
                Names::Proto => None,
            });
        }
        if self.messages.len() <= index {
            self.messages.resize_with(index.saturating_add(1), || None);
        }
        let sorted = self.messages.get_mut(index)?.get_or_insert_with(|| {
            Box::new(Sorted { proto: by(fields, Field::name), json: by(fields, Field::json_name) })
        });
        let at = first(fields, &sorted.proto, name, Field::name).or_else(|| match names {
            Names::ProtoOrJson => first(fields, &sorted.json, name, Field::json_name),
            Names::Proto => None,
        })?;
        fields.get(at)
    }
}

/// Positions of `fields` sorted by `key`, equal keys by position. (A message's field count
/// fits in u32: a descriptor set is at most `max_descriptor_bytes`.) Sorted as (name,
/// position) pairs, as the schema's duplicate check sorts its own, so the two share one sort's
/// code: positions sorted through a comparator made the sort a new instance, 21 KB of .wasm.
fn by(fields: &[Field], key: fn(&Field) -> &str) -> Box<[u32]> {
    let mut keyed: Vec<(&str, usize)> = fields.iter().map(key).zip(0..).collect();
    keyed.sort_unstable();
    keyed.into_iter().filter_map(|(_, i)| u32::try_from(i).ok()).collect()
}

/// The first position in `sorted` whose field's `key` is `name`.
fn first(fields: &[Field], sorted: &[u32], name: &str, key: fn(&Field) -> &str) -> Option<usize> {
    let of = |i: u32| fields.get(i as usize).map_or("", key);
    let at = sorted.partition_point(|&i| of(i) < name);
    let &i = sorted.get(at)?;
    (of(i) == name).then_some(i as usize)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use std::sync::Arc;

    use crate::core::schema::descriptor_proto::FieldBehavior;
    use crate::core::schema::{Cardinality, FieldNames, Kind, Scalar, Traits};

    fn field(number: u32, name: &str, json_name: &str) -> Field {
        let names = Arc::new(FieldNames { name: name.into(), json_name: json_name.into() });
        let traits = Traits {
            cardinality: Cardinality::Optional,
            map: false,
            delimited: false,
            packed: false,
            presence: false,
            verify_utf8: true,
            oneof: None,
            behavior: FieldBehavior::default(),
        };
        Field::new(names, number, Kind::Scalar(Scalar::String), traits)
    }

    /// A message of `n` fields `f<i>` (JSON names `j<i>`), then the given ones.
    fn message(n: usize, extra: &[Field]) -> Message {
        let mut fields: Vec<Field> = (0..n).map(|i| field(i as u32 + 1, &format!("f{i}"), &format!("j{i}"))).collect();
        fields.extend_from_slice(extra);
        Message { full_name: "t.M".into(), fields: fields.into(), map_entry: false }
    }

    #[test]
    fn a_large_message_s_fields_are_found_as_a_scan_finds_them() {
        // Proto names before JSON names, the first declared of equal names; `f3`'s JSON name
        // is another field's proto name, and `dup` is declared twice.
        let extra =
            [field(900, "dup", "first"), field(901, "dup", "second"), field(902, "x", "f3"), field(903, "y", "dup")];
        for n in [0, 10, SCANNED, SCANNED + 1, 300] {
            let m = message(n, &extra);
            let mut index = FieldIndex::default();
            let mut names: Vec<String> = (0..n + 2).flat_map(|i| [format!("f{i}"), format!("j{i}")]).collect();
            names.extend(["dup", "first", "second", "x", "y", "f3", "", "zzz", "F1"].map(String::from));
            for name in &names {
                for kinds in [Names::Proto, Names::ProtoOrJson] {
                    let scanned = m.field_by_name(name).or_else(|| match kinds {
                        Names::ProtoOrJson => m.field_by_json_name(name),
                        Names::Proto => None,
                    });
                    let found = index.find(7, &m, name, kinds);
                    assert_eq!(found.map(|f| f.number), scanned.map(|f| f.number), "{n} fields, {name:?}, {kinds:?}");
                }
            }
            assert_eq!(index.find(7, &m, "dup", Names::Proto).map(|f| f.number), Some(900));
            assert_eq!(
                index.find(7, &m, "f3", Names::ProtoOrJson).map(|f| f.number),
                (n > 3).then_some(4).or(Some(902))
            );
            // Only large messages are indexed.
            assert_eq!(index.messages.iter().flatten().count(), usize::from(m.fields.len() > SCANNED), "{n} fields");
        }
    }
}
