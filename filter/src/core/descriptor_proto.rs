//! FileDescriptorSet bytes → the parts of descriptor.proto json2grpc uses, read with the core's
//! own wire reader (prost-types' generated decoders for the whole of descriptor.proto would
//! be most of the filter's configure-time code, for a dozen fields).
//!
//! Protobuf's parsing rules apply: unknown fields are skipped, a singular field given twice
//! keeps its last value, a sub-message given twice merges. Truncated input, wrong wire types
//! and invalid UTF-8 in the fields read are errors. Nothing is checked for meaning here: that
//! is [`schema`](super::schema)'s job.
use super::wire::{fields, RawField, LEN, VARINT};

/// Sub-messages nested deeper than this are refused (prost's recursion limit).
const MAX_DEPTH: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileProto {
    pub name: String,
    pub package: String,
    pub dependencies: Vec<String>,
    pub messages: Vec<MessageProto>,
    pub enums: Vec<EnumProto>,
    pub services: Vec<ServiceProto>,
    /// As written: None when absent (proto2); editions files say "editions".
    pub syntax: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageProto {
    pub name: String,
    pub fields: Vec<FieldProto>,
    pub nested: Vec<MessageProto>,
    pub enums: Vec<EnumProto>,
    pub oneofs: Vec<String>,
    /// `options.map_entry`: the synthetic entry type of a map field.
    pub map_entry: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldProto {
    pub name: String,
    /// 0 when absent (an invalid number).
    pub number: i32,
    /// `FieldDescriptorProto.Label` and `.Type` numbers, as written.
    pub label: Option<i32>,
    pub kind: Option<i32>,
    pub type_name: String,
    pub json_name: Option<String>,
    pub oneof_index: Option<i32>,
    pub proto3_optional: bool,
    /// `options.packed`, when given.
    pub packed: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnumProto {
    pub name: String,
    pub values: Vec<(String, i32)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceProto {
    pub name: String,
    pub methods: Vec<MethodProto>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodProto {
    pub name: String,
    pub input_type: String,
    pub output_type: String,
    /// The encoded `MethodOptions` (every occurrence, concatenated: they merge), where the
    /// `google.api.http` extension lives.
    pub options: Vec<u8>,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// Decodes an encoded `google.protobuf.FileDescriptorSet`.
pub fn decode_file_set(bytes: &[u8]) -> Result<Vec<FileProto>, String> {
    let mut files = Vec::new();
    each_field(bytes, "FileDescriptorSet", |f| {
        if f.number == 1 {
            files.push(file(payload(f, "FileDescriptorSet.file")?)?);
        }
        Ok(())
    })?;
    Ok(files)
}

fn file(bytes: &[u8]) -> Result<FileProto, String> {
    let mut file = FileProto::default();
    each_field(bytes, "FileDescriptorProto", |f| {
        match f.number {
            1 => file.name = string(f, "FileDescriptorProto.name")?,
            2 => file.package = string(f, "FileDescriptorProto.package")?,
            3 => file.dependencies.push(string(f, "FileDescriptorProto.dependency")?),
            4 => file.messages.push(message(payload(f, "FileDescriptorProto.message_type")?, 1)?),
            5 => file.enums.push(enumeration(payload(f, "FileDescriptorProto.enum_type")?)?),
            6 => file.services.push(service(payload(f, "FileDescriptorProto.service")?)?),
            12 => file.syntax = Some(string(f, "FileDescriptorProto.syntax")?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(file)
}

fn message(bytes: &[u8], depth: u32) -> Result<MessageProto, String> {
    if depth > MAX_DEPTH {
        return Err(format!("message types nested deeper than {MAX_DEPTH} levels"));
    }
    let mut message = MessageProto::default();
    each_field(bytes, "DescriptorProto", |f| {
        match f.number {
            1 => message.name = string(f, "DescriptorProto.name")?,
            2 => message.fields.push(field(payload(f, "DescriptorProto.field")?)?),
            3 => message.nested.push(self::message(payload(f, "DescriptorProto.nested_type")?, depth + 1)?),
            4 => message.enums.push(enumeration(payload(f, "DescriptorProto.enum_type")?)?),
            7 => each_field(payload(f, "DescriptorProto.options")?, "MessageOptions", |o| {
                if o.number == 7 {
                    message.map_entry = varint(o, "MessageOptions.map_entry")? != 0;
                }
                Ok(())
            })?,
            8 => {
                // A oneof without a name still counts: fields refer to oneofs by index.
                let mut name = String::new();
                each_field(payload(f, "DescriptorProto.oneof_decl")?, "OneofDescriptorProto", |o| {
                    if o.number == 1 {
                        name = string(o, "OneofDescriptorProto.name")?;
                    }
                    Ok(())
                })?;
                message.oneofs.push(name);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(message)
}

fn field(bytes: &[u8]) -> Result<FieldProto, String> {
    let mut field = FieldProto::default();
    each_field(bytes, "FieldDescriptorProto", |f| {
        match f.number {
            1 => field.name = string(f, "FieldDescriptorProto.name")?,
            3 => field.number = varint(f, "FieldDescriptorProto.number")? as i32,
            4 => field.label = Some(varint(f, "FieldDescriptorProto.label")? as i32),
            5 => field.kind = Some(varint(f, "FieldDescriptorProto.type")? as i32),
            6 => field.type_name = string(f, "FieldDescriptorProto.type_name")?,
            8 => each_field(payload(f, "FieldDescriptorProto.options")?, "FieldOptions", |o| {
                if o.number == 2 {
                    field.packed = Some(varint(o, "FieldOptions.packed")? != 0);
                }
                Ok(())
            })?,
            9 => field.oneof_index = Some(varint(f, "FieldDescriptorProto.oneof_index")? as i32),
            10 => field.json_name = Some(string(f, "FieldDescriptorProto.json_name")?),
            17 => field.proto3_optional = varint(f, "FieldDescriptorProto.proto3_optional")? != 0,
            _ => {}
        }
        Ok(())
    })?;
    Ok(field)
}

fn enumeration(bytes: &[u8]) -> Result<EnumProto, String> {
    let mut e = EnumProto::default();
    each_field(bytes, "EnumDescriptorProto", |f| {
        match f.number {
            1 => e.name = string(f, "EnumDescriptorProto.name")?,
            2 => {
                let (mut name, mut number) = (String::new(), 0);
                each_field(payload(f, "EnumDescriptorProto.value")?, "EnumValueDescriptorProto", |v| {
                    match v.number {
                        1 => name = string(v, "EnumValueDescriptorProto.name")?,
                        2 => number = varint(v, "EnumValueDescriptorProto.number")? as i32,
                        _ => {}
                    }
                    Ok(())
                })?;
                e.values.push((name, number));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(e)
}

fn service(bytes: &[u8]) -> Result<ServiceProto, String> {
    let mut s = ServiceProto::default();
    each_field(bytes, "ServiceDescriptorProto", |f| {
        match f.number {
            1 => s.name = string(f, "ServiceDescriptorProto.name")?,
            2 => s.methods.push(method(payload(f, "ServiceDescriptorProto.method")?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn method(bytes: &[u8]) -> Result<MethodProto, String> {
    let mut m = MethodProto::default();
    each_field(bytes, "MethodDescriptorProto", |f| {
        match f.number {
            1 => m.name = string(f, "MethodDescriptorProto.name")?,
            2 => m.input_type = string(f, "MethodDescriptorProto.input_type")?,
            3 => m.output_type = string(f, "MethodDescriptorProto.output_type")?,
            4 => m.options.extend_from_slice(payload(f, "MethodDescriptorProto.options")?),
            5 => m.client_streaming = varint(f, "MethodDescriptorProto.client_streaming")? != 0,
            6 => m.server_streaming = varint(f, "MethodDescriptorProto.server_streaming")? != 0,
            _ => {}
        }
        Ok(())
    })?;
    Ok(m)
}

// ---- wire helpers ------------------------------------------------------------------------

/// Calls `each` for every field of `bytes`; `what` names the message in errors.
pub(crate) fn each_field<'a>(
    bytes: &'a [u8],
    what: &str,
    mut each: impl FnMut(RawField<'a>) -> Result<(), String>,
) -> Result<(), String> {
    for field in fields(bytes) {
        each(field.map_err(|()| format!("malformed {what} (truncated or invalid wire format)"))?)?;
    }
    Ok(())
}

fn wire_type(f: RawField<'_>, expected: u8, what: &str) -> Result<(), String> {
    if f.wire_type == expected {
        Ok(())
    } else {
        Err(format!("{what} has wire type {}, expected {expected}", f.wire_type))
    }
}

/// A length-delimited field's payload.
pub(crate) fn payload<'a>(f: RawField<'a>, what: &str) -> Result<&'a [u8], String> {
    wire_type(f, LEN, what)?;
    Ok(f.value)
}

pub(crate) fn string(f: RawField<'_>, what: &str) -> Result<String, String> {
    let bytes = payload(f, what)?;
    std::str::from_utf8(bytes).map(str::to_string).map_err(|_| format!("{what} is not valid UTF-8"))
}

pub(crate) fn varint(f: RawField<'_>, what: &str) -> Result<u64, String> {
    wire_type(f, VARINT, what)?;
    super::wire::read_varint(f.value).map(|(v, _)| v).ok_or_else(|| format!("{what} is a malformed varint"))
}

#[cfg(test)]
pub(crate) mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::testutil::TEST_DESCRIPTOR_SET;
    use crate::core::wire::write_varint;

    /// Appends field `number` as a length-delimited value.
    pub fn len_field(number: u32, value: &[u8], out: &mut Vec<u8>) {
        write_varint(u64::from(number) << 3 | 2, out);
        write_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    pub fn varint_field(number: u32, value: u64, out: &mut Vec<u8>) {
        write_varint(u64::from(number) << 3, out);
        write_varint(value, out);
    }

    #[test]
    fn reads_the_test_schema() {
        let files = decode_file_set(TEST_DESCRIPTOR_SET).unwrap();
        let test = files.iter().find(|f| f.name == "transcode_test.proto").unwrap();
        assert_eq!(test.package, "test.v1");
        assert_eq!(test.syntax.as_deref(), Some("proto3"));
        assert!(test.dependencies.contains(&"google/api/annotations.proto".to_string()));
        let everything = test.messages.iter().find(|m| m.name == "Everything").unwrap();
        let renamed = everything.fields.iter().find(|f| f.name == "renamed").unwrap();
        assert_eq!((renamed.number, renamed.json_name.as_deref()), (13, Some("customName")));
        assert_eq!(everything.oneofs, vec!["choice".to_string()]);
        let labels = everything.nested.iter().find(|m| m.name == "LabelsEntry").unwrap();
        assert!(labels.map_entry);
        let things = test.services.iter().find(|s| s.name == "Things").unwrap();
        let get = things.methods.iter().find(|m| m.name == "Get").unwrap();
        assert_eq!((get.input_type.as_str(), get.output_type.as_str()), (".test.v1.GetRequest", ".test.v1.Everything"));
        assert!(!get.options.is_empty());
        let chat = things.methods.iter().find(|m| m.name == "Bidi").unwrap();
        assert!(chat.client_streaming && chat.server_streaming);
    }

    #[test]
    fn later_values_win_and_options_merge() {
        // FieldDescriptorProto { name: "a", name: "b", options { packed: true }, options {} }
        let mut field = Vec::new();
        len_field(1, b"a", &mut field);
        len_field(1, b"b", &mut field);
        let mut packed = Vec::new();
        varint_field(2, 1, &mut packed);
        len_field(8, &packed, &mut field);
        len_field(8, &[], &mut field);
        let mut message = Vec::new();
        len_field(2, &field, &mut message);
        let mut file = Vec::new();
        len_field(4, &message, &mut file);
        let mut set = Vec::new();
        len_field(1, &file, &mut set);
        let files = decode_file_set(&set).unwrap();
        let f = &files[0].messages[0].fields[0];
        assert_eq!((f.name.as_str(), f.packed), ("b", Some(true)));
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let deep = {
            // 101 nested DescriptorProto.nested_type levels.
            let mut m = Vec::new();
            for _ in 0..=MAX_DEPTH {
                let mut outer = Vec::new();
                len_field(3, &m, &mut outer);
                m = outer;
            }
            let mut file = Vec::new();
            len_field(4, &m, &mut file);
            let mut set = Vec::new();
            len_field(1, &file, &mut set);
            set
        };
        let cases: [(&[u8], &str); 6] = [
            (&[0xff, 0xff], "malformed FileDescriptorSet"),
            (&[0x0a, 0x05, 0x0a], "malformed FileDescriptorSet"),
            // file given as a varint
            (&[0x08, 0x01], "wire type 0, expected 2"),
            // FileDescriptorProto.name not UTF-8
            (&[0x0a, 0x03, 0x0a, 0x01, 0xff], "not valid UTF-8"),
            // FieldDescriptorProto.number as a string, inside message_type.field
            (&[0x0a, 0x08, 0x22, 0x06, 0x12, 0x04, 0x1a, 0x02, b'1', b'2'], "FieldDescriptorProto.number"),
            (&deep, "nested deeper"),
        ];
        for (bytes, expected) in cases {
            let e = decode_file_set(bytes).unwrap_err();
            assert!(e.contains(expected), "{bytes:02x?}: {e}");
        }
        assert_eq!(decode_file_set(&[]), Ok(vec![]));
    }
}
