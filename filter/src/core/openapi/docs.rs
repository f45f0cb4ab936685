//! What the document says beyond the types: the protos' comments (when the descriptor set
//! carries source info) and `google.api.field_behavior`, read from the set's bytes when the
//! document is made (the transcoder itself keeps neither).
use std::collections::HashMap;

use crate::core::schema::descriptor_proto::{decode_comments, decode_file_set, EnumProto, FileProto, MessageProto};
use crate::core::seeded_hash::SeededMap;

/// `google.api.FieldBehavior` values the document uses, as bits.
pub const REQUIRED: u8 = 1;
pub const OUTPUT_ONLY: u8 = 2;
pub const INPUT_ONLY: u8 = 4;

/// Comments and field behaviors by full name (`pkg.Message`, `pkg.Message.field`,
/// `pkg.Enum.VALUE`, `pkg.Service`, `pkg.Service.Method`).
#[derive(Debug, Default)]
pub struct Docs {
    by_name: HashMap<String, Doc>,
}

#[derive(Debug, Default)]
struct Doc {
    comment: Option<String>,
    behavior: u8,
}

impl Docs {
    /// Reads an encoded FileDescriptorSet. The transcoder was built from it, so it decodes; if it
    /// does not, the document just has no comments.
    pub fn read(set: &[u8]) -> Docs {
        let mut docs = Docs::default();
        let Ok(files) = decode_file_set(set) else { return docs };
        for file in &files {
            for m in &file.messages {
                docs.add_behaviors(&join(&file.package, &m.name), m);
            }
        }
        // By name: a set may hold thousands of files, each with comments.
        let by_name: SeededMap<&str, &FileProto> = files.iter().map(|f| (&*f.name, f)).rev().collect();
        for (name, comments) in decode_comments(set).unwrap_or_default() {
            let Some(&file) = by_name.get(&*name) else { continue };
            for c in comments {
                if let Some(element) = element_name(file, &c.path) {
                    docs.by_name.entry(element).or_default().comment = Some(tidy(&c.text));
                }
            }
        }
        docs
    }

    fn add_behaviors(&mut self, full_name: &str, m: &MessageProto) {
        for f in &m.fields {
            let bits = f.field_behavior.iter().fold(0, |bits, b| match b {
                2 => bits | REQUIRED,
                3 => bits | OUTPUT_ONLY,
                4 => bits | INPUT_ONLY,
                _ => bits,
            });
            if bits != 0 {
                self.by_name.entry(join(full_name, &f.name)).or_default().behavior = bits;
            }
        }
        for nested in &m.nested {
            self.add_behaviors(&join(full_name, &nested.name), nested);
        }
    }

    pub fn comment(&self, full_name: &str) -> Option<&str> {
        self.by_name.get(full_name).and_then(|d| d.comment.as_deref())
    }

    /// The behavior bits of field `field` (proto name) of message `message` (full name).
    pub fn behavior(&self, message: &str, field: &str) -> u8 {
        self.by_name.get(&join(message, field)).map_or(0, |d| d.behavior)
    }
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// A comment as Markdown: the one space after `//` dropped from each line, outer blank lines
/// trimmed.
fn tidy(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end()).collect();
    lines.join("\n").trim().to_string()
}

/// The full name of the element at a `SourceCodeInfo.Location` path: FileDescriptorProto's
/// message_type (4), enum_type (5), service (6), and below them fields (2), nested types (3),
/// nested enums (4), enum values (2) and methods (2), each followed by its index.
fn element_name(file: &FileProto, path: &[i32]) -> Option<String> {
    let at = |i: &i32| usize::try_from(*i).ok();
    match path {
        [4, i, rest @ ..] => {
            let m = file.messages.get(at(i)?)?;
            message_element(m, join(&file.package, &m.name), rest)
        }
        [5, i, rest @ ..] => {
            let e = file.enums.get(at(i)?)?;
            enum_element(e, &file.package, rest)
        }
        [6, i] => Some(join(&file.package, &file.services.get(at(i)?)?.name)),
        [6, i, 2, j] => {
            let s = file.services.get(at(i)?)?;
            Some(join(&join(&file.package, &s.name), &s.methods.get(at(j)?)?.name))
        }
        _ => None,
    }
}

/// Within message `m` (full name `full_name`); nesting is bounded by the descriptor reader.
fn message_element(m: &MessageProto, full_name: String, rest: &[i32]) -> Option<String> {
    let at = |i: &i32| usize::try_from(*i).ok();
    match rest {
        [] => Some(full_name),
        [2, j] => Some(join(&full_name, &m.fields.get(at(j)?)?.name)),
        [3, j, deeper @ ..] => {
            let nested = m.nested.get(at(j)?)?;
            let name = join(&full_name, &nested.name);
            message_element(nested, name, deeper)
        }
        [4, j, deeper @ ..] => enum_element(m.enums.get(at(j)?)?, &full_name, deeper),
        _ => None,
    }
}

fn enum_element(e: &EnumProto, scope: &str, rest: &[i32]) -> Option<String> {
    let name = join(scope, &e.name);
    match rest {
        [] => Some(name),
        [2, k] => Some(join(&name, &e.values.get(usize::try_from(*k).ok()?)?.0)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::fixtures::OPENAPI_TEST_SET;

    #[test]
    fn comments_and_behaviors_come_from_the_set() {
        let docs = Docs::read(OPENAPI_TEST_SET);
        assert_eq!(docs.comment("doc.v1.Library"), Some("The library: shelves of books."));
        assert_eq!(docs.comment("doc.v1.Library.GetBook"), Some("Reads one book.\n\nBy its full name."));
        assert_eq!(docs.comment("doc.v1.Book"), Some("A book on a shelf."));
        assert_eq!(docs.comment("doc.v1.Book.title"), Some("The title, as printed."));
        assert_eq!(docs.comment("doc.v1.Book.Chapter"), Some("A nested message."));
        assert_eq!(docs.comment("doc.v1.Genre.FICTION"), Some("Made up."));
        assert_eq!(docs.comment("doc.v1.Book.Format"), Some("A nested enum."));
        assert_eq!(docs.behavior("doc.v1.Book", "title"), REQUIRED);
        assert_eq!(docs.behavior("doc.v1.Book", "name"), OUTPUT_ONLY | REQUIRED);
        assert_eq!(docs.behavior("doc.v1.Book", "secret"), INPUT_ONLY);
        assert_eq!(docs.behavior("doc.v1.Book.Chapter", "number"), REQUIRED);
        assert_eq!(docs.behavior("doc.v1.Book", "pages"), 0);
    }

    #[test]
    fn a_set_without_source_info_or_garbage_has_no_comments() {
        let docs = Docs::read(crate::testing::fixtures::TEST_DESCRIPTOR_SET);
        assert!(docs.by_name.values().all(|d| d.comment.is_none()));
        let docs = Docs::read(b"\x0a\x05garbage");
        assert!(docs.by_name.is_empty());
    }
}
