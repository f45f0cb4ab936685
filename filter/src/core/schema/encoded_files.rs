//! A FileDescriptorSet's files, kept encoded while they are linked: linking reads them in a few
//! passes, one file at a time, decoding only what each pass reads, and never holds the set
//! decoded whole (decoded, the 200-service benchmark's 841 KB set was 2 MB).
//!
//! A set its owner gives up ([`EncodedFiles::draining`], what a worker's VM does) is also freed
//! as it is read: the last pass, which builds most of the schema (the fields, the services),
//! visits the files last to first and cuts each one off the end of the set once read, so the
//! schema grows into the memory the set leaves. A VM's linear memory never shrinks: the set and
//! the whole schema at once were the largest part of its size (1.98 MB of 2.2 for that API).
use std::ops::Range;

use crate::core::schema::descriptor_proto::{each_field, file, payload, FileProto, Parts};

/// The files of a set, plus any built-in files appended after them.
#[derive(Debug)]
pub struct EncodedFiles<'a> {
    set: Set<'a>,
    files: Vec<Source>,
    /// How many of `files` are the set's (built-ins come after).
    set_files: usize,
    /// Some of the set was freed: it cannot be read again.
    drained: bool,
}

#[derive(Debug)]
enum Set<'a> {
    Borrowed(&'a [u8]),
    /// Freed file by file in the last pass.
    Draining(&'a mut Vec<u8>),
}

#[derive(Debug, Clone)]
enum Source {
    /// A file of the set: its bytes' place in it.
    InSet(Range<usize>),
    Static(&'static [u8]),
}

/// Where each file of an encoded set is (field 1 of `FileDescriptorSet`), in order.
pub fn file_ranges(set: &[u8]) -> Result<Vec<Range<usize>>, String> {
    let mut ranges = Vec::new();
    each_field(set, "FileDescriptorSet", |f| {
        if f.number == 1 {
            let bytes = payload(f, "FileDescriptorSet.file")?;
            // The payload is a part of `set`: its offset is the distance between the two.
            let start = (bytes.as_ptr() as usize).wrapping_sub(set.as_ptr() as usize);
            ranges.push(start..start.saturating_add(bytes.len()));
        }
        Ok(())
    })?;
    Ok(ranges)
}

impl<'a> EncodedFiles<'a> {
    /// Splits a set into its files' bytes (decoding none of them).
    pub fn split(set: &'a [u8]) -> Result<EncodedFiles<'a>, String> {
        EncodedFiles::new(Set::Borrowed(set))
    }

    /// Like [`EncodedFiles::split`], and the last pass frees the set file by file: `set` is
    /// empty once it has been read whole (if it has a file).
    pub fn draining(set: &'a mut Vec<u8>) -> Result<EncodedFiles<'a>, String> {
        EncodedFiles::new(Set::Draining(set))
    }

    fn new(set: Set<'a>) -> Result<EncodedFiles<'a>, String> {
        let files: Vec<Source> = file_ranges(set.bytes())?.into_iter().map(Source::InSet).collect();
        Ok(EncodedFiles { set_files: files.len(), set, files, drained: false })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// How many files are the set's; built-in files come after them.
    pub fn set_files(&self) -> usize {
        self.set_files
    }

    /// Appends a built-in file.
    pub fn push_static(&mut self, file: &'static [u8]) {
        self.files.push(Source::Static(file));
    }

    /// Keeps the first `len` files.
    pub fn truncate(&mut self, len: usize) {
        self.files.truncate(len);
    }

    /// Part of the set was freed by a last pass: it cannot be linked again.
    pub fn drained(&self) -> bool {
        self.drained
    }

    fn bytes_of(&self, source: &Source) -> Result<&[u8], String> {
        match source {
            Source::InSet(range) => self.set.bytes().get(range.clone()).ok_or_else(|| "a file was freed".to_string()),
            Source::Static(bytes) => Ok(bytes),
        }
    }

    /// Each file with only `parts` decoded (the rest left empty), in order.
    pub fn parts(&self, parts: Parts) -> impl Iterator<Item = Result<FileProto<'_>, String>> + '_ {
        self.files.iter().map(move |source| file(self.bytes_of(source)?, parts))
    }

    /// Each file with its index, last to first; a draining set is cut before each of its files
    /// once `f` has read it.
    pub fn each_last(
        &mut self,
        parts: Parts,
        f: &mut dyn FnMut(usize, &FileProto<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        for index in (0..self.files.len()).rev() {
            let Some(source) = self.files.get(index).cloned() else { continue };
            f(index, &file(self.bytes_of(&source)?, parts)?)?;
            if let (Set::Draining(set), Source::InSet(range)) = (&mut self.set, &source) {
                // (What is before the first file is its tag and length.)
                set.truncate(if index == 0 { 0 } else { range.start });
                // In place: the allocator makes the tail a free block, which what the pass
                // builds next (this file's predecessors' fields) is allocated from.
                set.shrink_to_fit();
                self.drained = true;
            }
        }
        Ok(())
    }
}

impl Set<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Set::Borrowed(bytes) => bytes,
            Set::Draining(set) => set,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::core::schema::descriptor_proto::{FieldProto, FileProto, MessageProto};
    use crate::core::schema::descriptors::{load_schema, load_schema_draining};
    use crate::core::schema::Kind;
    use crate::testing::fixtures::editions::{encode_set, enumeration, field};
    use crate::testing::fixtures::TEST_DESCRIPTOR_SET;

    fn proto3<'a>(name: &'a str, package: &'a str, messages: Vec<MessageProto<'a>>) -> FileProto<'a> {
        FileProto {
            name: name.into(),
            package: package.into(),
            messages,
            syntax: Some("proto3".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_drained_set_links_as_a_borrowed_one_and_is_freed() {
        let mut set = TEST_DESCRIPTOR_SET.to_vec();
        let drained = load_schema_draining(&mut set).unwrap();
        assert!(set.is_empty(), "{} bytes left", set.len());
        assert_eq!(format!("{drained:?}"), format!("{:?}", load_schema(TEST_DESCRIPTOR_SET).unwrap()));
    }

    #[test]
    fn a_drained_set_s_error_is_the_borrowed_one_s() {
        // Files 1 and 3 of 3 name a type that is not there: the last pass reads the files last to
        // first, and both ways report the same one.
        let bad = |file: &'static str, package: &'static str| {
            proto3(
                file,
                package,
                vec![MessageProto { fields: vec![field("x", 1, 1, 11, ".nowhere.T")], ..message("M") }],
            )
        };
        let files = [bad("a.proto", "a"), proto3("b.proto", "b", vec![message("M")]), bad("c.proto", "c")];
        let set = encode_set(&files);
        let borrowed = load_schema(&set).unwrap_err().to_string();
        let mut owned = set.clone();
        assert_eq!(load_schema_draining(&mut owned).unwrap_err().to_string(), borrowed);
        assert!(borrowed.contains("c.M.x"), "{borrowed}");
    }

    #[test]
    fn a_relative_type_name_finds_the_set_s_own_type_before_a_built_in_one() {
        // `Status` seen from package google.rpc.x: the set's own top-level enum, not the
        // built-in message google.rpc.Status added because the set lacks it (protoc saw only
        // the set). A drained set cannot be linked again without the built-ins.
        // (The file that names it first: the set's later file is freed before it is read.)
        let files = [
            proto3(
                "m.proto",
                "google.rpc.x",
                vec![MessageProto { fields: vec![field("status", 1, 1, 14, "Status")], ..message("M") }],
            ),
            FileProto {
                enums: vec![enumeration("Status", &[("S0", 0)], Default::default())],
                ..proto3("s.proto", "", vec![])
            },
        ];
        let mut set = encode_set(&files);
        let schema = load_schema_draining(&mut set).unwrap();
        let status = schema.message_by_name("google.rpc.x.M").unwrap().field_by_name("status").unwrap();
        let Kind::Enum(e) = status.kind() else { panic!("{:?}", status.kind()) };
        assert_eq!(&*schema.enums[e].full_name, "Status");
        // The built-ins are there for what names them.
        assert!(schema.message_by_name("google.rpc.Status").is_some());
    }

    #[test]
    fn an_error_after_the_set_is_freed_is_the_one_it_has_alone() {
        // The first file is read last, once the second is freed: no second link (without the
        // built-ins) can read it again, and the error must be the one that link would give.
        let bad = MessageProto { fields: vec![field("x", 1, 1, 11, ".nowhere.T")], ..message("M") };
        let files = [proto3("a.proto", "a", vec![bad]), proto3("b.proto", "b", vec![message("M")])];
        let set = encode_set(&files);
        let borrowed = load_schema(&set).unwrap_err().to_string();
        assert!(borrowed.contains("a.M.x"), "{borrowed}");
        assert_eq!(load_schema_draining(&mut set.clone()).unwrap_err().to_string(), borrowed);
        // A built-in type of the wrong kind is as absent as without the built-ins.
        let status = MessageProto { fields: vec![field("st", 1, 1, 14, "Status")], ..message("M") };
        let files = [proto3("m.proto", "google.rpc.x", vec![status]), proto3("n.proto", "n", vec![message("N")])];
        let set = encode_set(&files);
        let borrowed = load_schema(&set).unwrap_err().to_string();
        assert!(borrowed.contains("is not in the set"), "{borrowed}");
        assert_eq!(load_schema_draining(&mut set.clone()).unwrap_err().to_string(), borrowed);
    }

    #[test]
    fn an_extension_of_a_built_in_map_entry_leaves_the_built_ins_out_both_ways() {
        // A map entry cannot be extended (protoc refuses it): refused while the set is whole,
        // so the set is linked again without the built-ins, where the extendee is not there
        // and the extension is left out (an unknown field), as before the last pass frees it.
        let extension =
            FieldProto { extendee: ".google.rpc.ErrorInfo.MetadataEntry".into(), ..field("e", 5, 1, 9, "") };
        let file = FileProto {
            extensions: vec![extension],
            syntax: Some("proto2".into()),
            ..proto3("a.proto", "a", vec![MessageProto { fields: vec![field("s", 1, 1, 9, "")], ..message("M") }])
        };
        let set = encode_set(&[file]);
        let borrowed = load_schema(&set).unwrap();
        assert!(borrowed.message_by_name("google.rpc.ErrorInfo").is_none());
        let drained = load_schema_draining(&mut set.clone()).unwrap();
        assert_eq!(format!("{drained:?}"), format!("{borrowed:?}"));
    }

    fn message(name: &str) -> MessageProto<'_> {
        MessageProto { name: name.into(), ..Default::default() }
    }
}
