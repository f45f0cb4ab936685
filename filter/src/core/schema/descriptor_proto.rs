//! FileDescriptorSet bytes → the parts of descriptor.proto json2grpc uses, read with the core's
//! own wire reader (prost-types' generated decoders for the whole of descriptor.proto would
//! be most of the filter's configure-time code, for a dozen fields).
//!
//! Protobuf's parsing rules apply: unknown fields are skipped, a singular field given twice
//! keeps its last value, a sub-message given twice merges. Truncated input, wrong wire types
//! and invalid UTF-8 in the fields read are errors. Nothing is checked for meaning here: that
//! is [`schema`](crate::core::schema)'s job.
use std::borrow::Cow;

use crate::core::codec::wire::{fields, RawField, LEN, VARINT};

/// Sub-messages nested deeper than this are refused (prost's recursion limit).
const MAX_DEPTH: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileProto<'a> {
    pub name: Cow<'a, str>,
    pub package: Cow<'a, str>,
    pub dependencies: Vec<Cow<'a, str>>,
    pub messages: Vec<MessageProto<'a>>,
    pub enums: Vec<EnumProto<'a>>,
    pub services: Vec<ServiceProto<'a>>,
    /// Extensions declared at file level.
    pub extensions: Vec<FieldProto<'a>>,
    /// As written: None when absent (proto2); editions files say "editions".
    pub syntax: Option<Cow<'a, str>>,
    /// `FileDescriptorProto.edition` (an `Edition` number: 1000 is EDITION_2023), when given.
    pub edition: Option<i32>,
    /// `options.features`: the file's own feature settings (editions).
    pub features: FeatureSet,
}

/// A `google.protobuf.FeatureSet` as written on one element (file, message, field, oneof,
/// enum): only the features it sets, as their enum numbers. Resolution (defaults of the
/// edition, inheritance from the enclosing element) is [`schema`](crate::core::schema)'s job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureSet {
    pub field_presence: Option<i32>,
    pub enum_type: Option<i32>,
    pub repeated_field_encoding: Option<i32>,
    pub utf8_validation: Option<i32>,
    pub message_encoding: Option<i32>,
    pub json_format: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageProto<'a> {
    pub name: Cow<'a, str>,
    pub fields: Vec<FieldProto<'a>>,
    pub nested: Vec<MessageProto<'a>>,
    pub enums: Vec<EnumProto<'a>>,
    pub oneofs: Vec<Cow<'a, str>>,
    /// Extensions declared inside this message (of any message).
    pub extensions: Vec<FieldProto<'a>>,
    /// `options.map_entry`: the synthetic entry type of a map field.
    pub map_entry: bool,
    /// `options.message_set_wire_format`: extensions are written as MessageSet items.
    pub message_set: bool,
    /// `options.features`, boxed as a field's are: only editions files set them, and inline
    /// they were a third of every decoded message (a file of many empty messages is decoded
    /// whole, once per pass; see [`MessageProto::features`]).
    pub features_set: Option<Box<FeatureSet>>,
    /// The oneofs that set `options.features`: (oneof index, its set), by index. Sparse: a
    /// set per oneof made each 5-byte oneof 60 bytes decoded (see [`MessageProto::oneof_features`]).
    pub oneof_features: Vec<(u32, FeatureSet)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldProto<'a> {
    pub name: Cow<'a, str>,
    /// 0 when absent (an invalid number).
    pub number: i32,
    /// `FieldDescriptorProto.Label` and `.Type` numbers, as written.
    pub label: Option<i32>,
    pub kind: Option<i32>,
    pub type_name: Cow<'a, str>,
    /// An extension's extended message type, as written.
    pub extendee: Cow<'a, str>,
    pub json_name: Option<Cow<'a, str>>,
    pub oneof_index: Option<i32>,
    pub proto3_optional: bool,
    /// `options.packed`, when given.
    pub packed: Option<bool>,
    /// `options.features`, boxed: only editions files set them, and an inline set would be a
    /// third of every decoded field (see [`FieldProto::features`]).
    pub features_set: Option<Box<FeatureSet>>,
    /// `options.(google.api.field_behavior)`: `google.api.FieldBehavior` numbers (REQUIRED is
    /// 2), read from the encoded options whether or not the set includes field_behavior.proto.
    pub field_behavior: Vec<i32>,
}

/// What an absent `options.features` sets: nothing.
pub(crate) const NO_FEATURES: &FeatureSet = &FeatureSet {
    field_presence: None,
    enum_type: None,
    repeated_field_encoding: None,
    utf8_validation: None,
    message_encoding: None,
    json_format: None,
};

impl MessageProto<'_> {
    /// `options.features` (none set when absent).
    pub fn features(&self) -> &FeatureSet {
        self.features_set.as_deref().unwrap_or(NO_FEATURES)
    }

    /// Oneof `index`'s `options.features` (none set when absent).
    pub fn oneof_features(&self, index: usize) -> &FeatureSet {
        let found = self.oneof_features.binary_search_by_key(&index, |(i, _)| *i as usize);
        found.ok().and_then(|at| self.oneof_features.get(at)).map_or(NO_FEATURES, |(_, set)| set)
    }
}

impl FieldProto<'_> {
    /// `options.features` (none set when absent).
    pub fn features(&self) -> &FeatureSet {
        self.features_set.as_deref().unwrap_or(NO_FEATURES)
    }

    /// What `json2grpc.rest.field_behavior` acts on, from `field_behavior`.
    pub fn behavior(&self) -> FieldBehavior {
        FieldBehavior {
            required: self.field_behavior.contains(&REQUIRED),
            output_only: self.field_behavior.contains(&OUTPUT_ONLY),
        }
    }
}

/// The `google.api.field_behavior` values (FieldOptions extension 1052, a repeated
/// `google.api.FieldBehavior`) json2grpc acts on with `json2grpc.rest.field_behavior`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldBehavior {
    pub required: bool,
    pub output_only: bool,
}

/// The enum values REQUIRED and OUTPUT_ONLY.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnumProto<'a> {
    pub name: Cow<'a, str>,
    pub values: Vec<(Cow<'a, str>, i32)>,
    /// `options.features`.
    pub features: FeatureSet,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceProto<'a> {
    pub name: Cow<'a, str>,
    pub methods: Vec<MethodProto<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodProto<'a> {
    pub name: Cow<'a, str>,
    pub input_type: Cow<'a, str>,
    pub output_type: Cow<'a, str>,
    /// The encoded `MethodOptions` (every occurrence, concatenated: they merge), where the
    /// `google.api.http` extension lives.
    pub options: Vec<u8>,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// The parts of a file a pass over [`EncodedFiles`](super::encoded_files::EncodedFiles) decodes; the others are skipped unread
/// (their names and nesting are decoded whatever is asked). A pass decoding only what it reads
/// keeps the link's passes near the cost of one whole decoding (configure: 16-17 ms → 19-21 ms in V8
/// for 2,000 methods; decoding whole in every pass took 34 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Message types (their names, options and oneofs).
    pub messages: bool,
    /// The fields of message types.
    pub fields: bool,
    /// Enum types, at file level and in messages.
    pub enums: bool,
    pub services: bool,
    /// Extensions, at file level and in messages.
    pub extensions: bool,
}

impl Parts {
    pub const ALL: Parts = Parts { messages: true, fields: true, enums: true, services: true, extensions: true };
    /// The file's name, package, imports, syntax and options only.
    pub const HEADER: Parts =
        Parts { messages: false, fields: false, enums: false, services: false, extensions: false };
}

/// Decodes an encoded `google.protobuf.FileDescriptorSet`.
pub fn decode_file_set(bytes: &[u8]) -> Result<Vec<FileProto<'_>>, String> {
    let mut files = Vec::new();
    each_field(bytes, "FileDescriptorSet", |f| {
        if f.number == 1 {
            files.push(file(payload(f, "FileDescriptorSet.file")?, Parts::ALL)?);
        }
        Ok(())
    })?;
    Ok(files)
}

/// How many times each field number below `N` occurs in `bytes` (a scan of the tags; a
/// malformed tail ends it): the lists a decoder fills are sized first, so they do not grow by
/// doubling (each old buffer a hole among what the link keeps, in a VM whose linear memory
/// never shrinks).
///
/// Only length-delimited records of at least [`MIN_RECORD`] bytes count: a shorter one has no
/// name and is refused when it is decoded, as is a record of another wire type (so a list of
/// 2-byte empty records, or of varints where records belong, reserves nothing).
fn tag_counts<const N: usize>(bytes: &[u8]) -> impl Fn(usize) -> usize {
    let mut counts = [0usize; N];
    for f in fields(bytes).map_while(Result::ok).filter(|f| f.wire_type == LEN && f.value.len() >= MIN_RECORD) {
        if let Some(n) = usize::try_from(f.number).ok().and_then(|n| counts.get_mut(n)) {
            *n += 1;
        }
    }
    move |n| counts.get(n).copied().unwrap_or(0)
}

/// The shortest record that has a name: its tag, its length and one character.
const MIN_RECORD: usize = 3;

/// `error` prefixed with where it is (a file's or a type's name, when it has been read: protoc
/// writes names first).
/// A name is quoted up to [`SHOWN_NAME_CHARS`] characters, and no prefix is added to an error
/// past [`MAX_CONTEXT`] bytes: a name may be as long as the set, and types nest 100 deep.
fn within(name: &str, error: String) -> String {
    if name.is_empty() || error.len() > MAX_CONTEXT {
        return error;
    }
    match name.char_indices().nth(SHOWN_NAME_CHARS) {
        Some((cut, _)) => format!("{}…: {error}", name.get(..cut).unwrap_or_default()),
        None => format!("{name}: {error}"),
    }
}

const SHOWN_NAME_CHARS: usize = 200;
const MAX_CONTEXT: usize = 1024;

/// A type, field, value, service, method or oneof without a name is refused as soon as it is
/// decoded, as protobuf refuses it ("Missing name"; upb: "invalid name: empty part"), and before
/// anything else is spent on the set: decoded, each such 2-byte record is a record of 20 to 130
/// bytes (a set of empty message types grew a VM's linear memory by 95 times its size).
fn named(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} without a name"));
    }
    Ok(())
}

pub(crate) fn file<'a>(bytes: &'a [u8], parts: Parts) -> Result<FileProto<'a>, String> {
    let mut file = FileProto::default();
    // A file may hold all of a set's types: 100,000 empty messages grew a list of 10 MB by
    // doubling (on wasm32), its old halves left as holes. (Imports are names, not records, and
    // one of one or two letters would not be counted: their list grows.)
    let count = tag_counts::<8>(bytes);
    if parts.messages {
        file.messages.reserve_exact(count(4));
    }
    if parts.enums {
        file.enums.reserve_exact(count(5));
    }
    if parts.services {
        file.services.reserve_exact(count(6));
    }
    if parts.extensions {
        file.extensions.reserve_exact(count(7));
    }
    each_field(bytes, "FileDescriptorProto", |f| {
        match f.number {
            1 => file.name = text(f, "FileDescriptorProto.name")?,
            2 => file.package = text(f, "FileDescriptorProto.package")?,
            3 => file.dependencies.push(text(f, "FileDescriptorProto.dependency")?),
            4 if parts.messages => {
                file.messages.push(message(payload(f, "FileDescriptorProto.message_type")?, 1, parts)?)
            }
            5 if parts.enums => file.enums.push(enumeration(payload(f, "FileDescriptorProto.enum_type")?)?),
            6 if parts.services => file.services.push(service(payload(f, "FileDescriptorProto.service")?)?),
            7 if parts.extensions => {
                file.extensions.push(field(payload(f, "FileDescriptorProto.extension")?, "an extension")?)
            }
            8 => each_field(payload(f, "FileDescriptorProto.options")?, "FileOptions", |o| {
                if o.number == 50 {
                    features(payload(o, "FileOptions.features")?, &mut file.features)?;
                }
                Ok(())
            })?,
            12 => file.syntax = Some(text(f, "FileDescriptorProto.syntax")?),
            14 => file.edition = Some(varint(f, "FileDescriptorProto.edition")? as i32),
            _ => {}
        }
        Ok(())
    })
    .map_err(|e| within(&file.name, e))?;
    file.messages.shrink_to_fit();
    file.enums.shrink_to_fit();
    file.services.shrink_to_fit();
    file.extensions.shrink_to_fit();
    Ok(file)
}

fn message<'a>(bytes: &'a [u8], depth: u32, parts: Parts) -> Result<MessageProto<'a>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("message types nested deeper than {MAX_DEPTH} levels"));
    }
    let mut message = MessageProto::default();
    let count = tag_counts::<7>(bytes);
    if parts.fields {
        message.fields.reserve_exact(count(2));
    }
    message.nested.reserve_exact(count(3));
    if parts.enums {
        message.enums.reserve_exact(count(4));
    }
    if parts.extensions {
        message.extensions.reserve_exact(count(6));
    }
    each_field(bytes, "DescriptorProto", |f| {
        match f.number {
            1 => message.name = text(f, "DescriptorProto.name")?,
            2 if parts.fields => message.fields.push(field(payload(f, "DescriptorProto.field")?, "a field")?),
            3 => message.nested.push(self::message(payload(f, "DescriptorProto.nested_type")?, depth + 1, parts)?),
            4 if parts.enums => message.enums.push(enumeration(payload(f, "DescriptorProto.enum_type")?)?),
            6 if parts.extensions => {
                message.extensions.push(field(payload(f, "DescriptorProto.extension")?, "an extension")?)
            }
            7 => each_field(payload(f, "DescriptorProto.options")?, "MessageOptions", |o| {
                match o.number {
                    1 => message.message_set = varint(o, "MessageOptions.message_set_wire_format")? != 0,
                    7 => message.map_entry = varint(o, "MessageOptions.map_entry")? != 0,
                    12 => {
                        features(payload(o, "MessageOptions.features")?, message.features_set.get_or_insert_default())?
                    }
                    _ => {}
                }
                Ok(())
            })?,
            8 => {
                let mut name = Cow::Borrowed("");
                let mut set = FeatureSet::default();
                each_field(payload(f, "DescriptorProto.oneof_decl")?, "OneofDescriptorProto", |o| {
                    match o.number {
                        1 => name = text(o, "OneofDescriptorProto.name")?,
                        2 => each_field(payload(o, "OneofDescriptorProto.options")?, "OneofOptions", |p| {
                            if p.number == 1 {
                                features(payload(p, "OneofOptions.features")?, &mut set)?;
                            }
                            Ok(())
                        })?,
                        _ => {}
                    }
                    Ok(())
                })?;
                named(&name, "a oneof")?;
                if set != FeatureSet::default() {
                    let index = u32::try_from(message.oneofs.len()).map_err(|_| "too many oneofs".to_string())?;
                    message.oneof_features.push((index, set));
                }
                message.oneofs.push(name);
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|e| within(&message.name, e))?;
    named(&message.name, "a message type")?;
    // The vectors grew by doubling; their slack was a quarter of the decoded set.
    message.fields.shrink_to_fit();
    message.nested.shrink_to_fit();
    message.enums.shrink_to_fit();
    message.extensions.shrink_to_fit();
    Ok(message)
}

/// `what`: "a field" or "an extension", for the error of one without a name.
fn field<'a>(bytes: &'a [u8], what: &str) -> Result<FieldProto<'a>, String> {
    let mut field = FieldProto::default();
    each_field(bytes, "FieldDescriptorProto", |f| {
        match f.number {
            1 => field.name = text(f, "FieldDescriptorProto.name")?,
            2 => field.extendee = text(f, "FieldDescriptorProto.extendee")?,
            3 => field.number = varint(f, "FieldDescriptorProto.number")? as i32,
            4 => field.label = Some(varint(f, "FieldDescriptorProto.label")? as i32),
            5 => field.kind = Some(varint(f, "FieldDescriptorProto.type")? as i32),
            6 => field.type_name = text(f, "FieldDescriptorProto.type_name")?,
            8 => each_field(payload(f, "FieldDescriptorProto.options")?, "FieldOptions", |o| {
                match o.number {
                    2 => field.packed = Some(varint(o, "FieldOptions.packed")? != 0),
                    21 => features(payload(o, "FieldOptions.features")?, field.features_set.get_or_insert_default())?,
                    FIELD_BEHAVIOR_EXTENSION => {
                        repeated_int32(o, "FieldOptions.field_behavior", &mut field.field_behavior)?
                    }
                    _ => {}
                }
                Ok(())
            })?,
            9 => field.oneof_index = Some(varint(f, "FieldDescriptorProto.oneof_index")? as i32),
            10 => field.json_name = Some(text(f, "FieldDescriptorProto.json_name")?),
            17 => field.proto3_optional = varint(f, "FieldDescriptorProto.proto3_optional")? != 0,
            _ => {}
        }
        Ok(())
    })?;
    named(&field.name, what)?;
    Ok(field)
}

fn enumeration<'a>(bytes: &'a [u8]) -> Result<EnumProto<'a>, String> {
    let mut e = EnumProto::default();
    each_field(bytes, "EnumDescriptorProto", |f| {
        match f.number {
            1 => e.name = text(f, "EnumDescriptorProto.name")?,
            2 => {
                let (mut name, mut number) = (Cow::Borrowed(""), 0);
                each_field(payload(f, "EnumDescriptorProto.value")?, "EnumValueDescriptorProto", |v| {
                    match v.number {
                        1 => name = text(v, "EnumValueDescriptorProto.name")?,
                        2 => number = varint(v, "EnumValueDescriptorProto.number")? as i32,
                        _ => {}
                    }
                    Ok(())
                })?;
                named(&name, "an enum value")?;
                e.values.push((name, number));
            }
            3 => each_field(payload(f, "EnumDescriptorProto.options")?, "EnumOptions", |o| {
                if o.number == 7 {
                    features(payload(o, "EnumOptions.features")?, &mut e.features)?;
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })
    .map_err(|error| within(&e.name, error))?;
    named(&e.name, "an enum type")?;
    e.values.shrink_to_fit();
    Ok(e)
}

fn service<'a>(bytes: &'a [u8]) -> Result<ServiceProto<'a>, String> {
    let mut s = ServiceProto::default();
    each_field(bytes, "ServiceDescriptorProto", |f| {
        match f.number {
            1 => s.name = text(f, "ServiceDescriptorProto.name")?,
            2 => s.methods.push(method(payload(f, "ServiceDescriptorProto.method")?)?),
            _ => {}
        }
        Ok(())
    })
    .map_err(|e| within(&s.name, e))?;
    named(&s.name, "a service")?;
    s.methods.shrink_to_fit();
    Ok(s)
}

fn method<'a>(bytes: &'a [u8]) -> Result<MethodProto<'a>, String> {
    let mut m = MethodProto::default();
    each_field(bytes, "MethodDescriptorProto", |f| {
        match f.number {
            1 => m.name = text(f, "MethodDescriptorProto.name")?,
            2 => m.input_type = text(f, "MethodDescriptorProto.input_type")?,
            3 => m.output_type = text(f, "MethodDescriptorProto.output_type")?,
            4 => m.options.extend_from_slice(payload(f, "MethodDescriptorProto.options")?),
            5 => m.client_streaming = varint(f, "MethodDescriptorProto.client_streaming")? != 0,
            6 => m.server_streaming = varint(f, "MethodDescriptorProto.server_streaming")? != 0,
            _ => {}
        }
        Ok(())
    })?;
    named(&m.name, "a method")?;
    Ok(m)
}

/// Field number of the `google.api.field_behavior` extension of `google.protobuf.FieldOptions`.
pub const FIELD_BEHAVIOR_EXTENSION: u32 = 1052;

/// One occurrence of a repeated int32 or enum field: a value, or a packed run of them.
fn repeated_int32(f: RawField<'_>, what: &str, into: &mut Vec<i32>) -> Result<(), String> {
    if f.wire_type != LEN {
        into.push(varint(f, what)? as i32);
        return Ok(());
    }
    let mut rest = f.value;
    while !rest.is_empty() {
        let (value, used) = crate::core::codec::wire::read_varint(rest).ok_or_else(|| format!("malformed {what}"))?;
        into.push(value as i32);
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(())
}

/// One `SourceCodeInfo.Location` with a comment: the element's path (field numbers and
/// indices from the FileDescriptorProto, e.g. `[4, 0, 2, 1]` for field 1 of message 0) and its
/// leading comment (else its trailing one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommentProto {
    pub path: Vec<i32>,
    pub text: String,
}

/// The comments of each file of an encoded FileDescriptorSet (`source_code_info`, present when
/// the set was made with source info), by file name. Read apart from [`decode_file_set`]: only
/// the OpenAPI document needs them, and configuring should not pay for them.
pub fn decode_comments(bytes: &[u8]) -> Result<Vec<(String, Vec<CommentProto>)>, String> {
    let mut files = Vec::new();
    each_field(bytes, "FileDescriptorSet", |f| {
        if f.number != 1 {
            return Ok(());
        }
        let (mut name, mut comments) = (String::new(), Vec::new());
        each_field(payload(f, "FileDescriptorSet.file")?, "FileDescriptorProto", |f| {
            match f.number {
                1 => name = string(f, "FileDescriptorProto.name")?,
                9 => each_field(payload(f, "FileDescriptorProto.source_code_info")?, "SourceCodeInfo", |l| {
                    if l.number == 1 {
                        if let Some(c) = location(payload(l, "SourceCodeInfo.location")?)? {
                            comments.push(c);
                        }
                    }
                    Ok(())
                })?,
                _ => {}
            }
            Ok(())
        })?;
        files.push((name, comments));
        Ok(())
    })?;
    Ok(files)
}

/// A location's path and comment; `None` without a comment.
fn location(bytes: &[u8]) -> Result<Option<CommentProto>, String> {
    const WHAT: &str = "SourceCodeInfo.Location";
    let (mut path, mut leading, mut trailing) = (Vec::new(), String::new(), String::new());
    each_field(bytes, WHAT, |f| {
        match f.number {
            1 => repeated_int32(f, "SourceCodeInfo.Location.path", &mut path)?,
            3 => leading = string(f, "SourceCodeInfo.Location.leading_comments")?,
            4 => trailing = string(f, "SourceCodeInfo.Location.trailing_comments")?,
            _ => {}
        }
        Ok(())
    })?;
    let text = if leading.trim().is_empty() { trailing } else { leading };
    Ok((!text.trim().is_empty()).then_some(CommentProto { path, text }))
}

/// Merges an encoded `FeatureSet` into `into` (later values win, as protobuf merges). Its
/// extensions (language-specific features such as `pb.cpp`) are skipped.
fn features(bytes: &[u8], into: &mut FeatureSet) -> Result<(), String> {
    each_field(bytes, "FeatureSet", |f| {
        let slot = match f.number {
            1 => &mut into.field_presence,
            2 => &mut into.enum_type,
            3 => &mut into.repeated_field_encoding,
            4 => &mut into.utf8_validation,
            5 => &mut into.message_encoding,
            6 => &mut into.json_format,
            _ => return Ok(()),
        };
        *slot = Some(varint(f, "FeatureSet")? as i32);
        Ok(())
    })
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

/// A string field, borrowed from the encoded set (the decoded files are only the build's
/// input, and owned copies of every name were most of the configure-time peak).
pub(crate) fn text<'a>(f: RawField<'a>, what: &str) -> Result<Cow<'a, str>, String> {
    let bytes = payload(f, what)?;
    std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|_| format!("{what} is not valid UTF-8"))
}

pub(crate) fn string(f: RawField<'_>, what: &str) -> Result<String, String> {
    let bytes = payload(f, what)?;
    std::str::from_utf8(bytes).map(str::to_string).map_err(|_| format!("{what} is not valid UTF-8"))
}

pub(crate) fn varint(f: RawField<'_>, what: &str) -> Result<u64, String> {
    wire_type(f, VARINT, what)?;
    crate::core::codec::wire::read_varint(f.value)
        .map(|(v, _)| v)
        .ok_or_else(|| format!("{what} is a malformed varint"))
}

#[cfg(test)]
pub(crate) mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::codec::wire::write_varint;
    use crate::testing::fixtures::TEST_DESCRIPTOR_SET;

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
        assert!(test.dependencies.iter().any(|d| d == "google/api/annotations.proto"));
        let everything = test.messages.iter().find(|m| m.name == "Everything").unwrap();
        let renamed = everything.fields.iter().find(|f| f.name == "renamed").unwrap();
        assert_eq!((renamed.number, renamed.json_name.as_deref()), (13, Some("customName")));
        assert_eq!(everything.oneofs, vec!["choice".to_string()]);
        let labels = everything.nested.iter().find(|m| m.name == "LabelsEntry").unwrap();
        assert!(labels.map_entry);
        let things = test.services.iter().find(|s| s.name == "Things").unwrap();
        let get = things.methods.iter().find(|m| m.name == "Get").unwrap();
        assert_eq!((&*get.input_type, &*get.output_type), (".test.v1.GetRequest", ".test.v1.Everything"));
        assert!(!get.options.is_empty());
        let chat = things.methods.iter().find(|m| m.name == "Bidi").unwrap();
        assert!(chat.client_streaming && chat.server_streaming);
    }

    #[test]
    fn errors_say_where_in_a_bounded_prefix() {
        // A type named by 100,000 letters, nested 100 deep, holding a nameless field: the
        // error names where, each name cut at 200 characters, no prefix past 1 KiB.
        let name = "N".repeat(100_000);
        let mut message = Vec::new();
        len_field(1, name.as_bytes(), &mut message);
        len_field(2, b"", &mut message);
        for _ in 0..99 {
            let mut outer = Vec::new();
            len_field(1, name.as_bytes(), &mut outer);
            len_field(3, &message, &mut outer);
            message = outer;
        }
        let mut file = Vec::new();
        len_field(1, b"deep.proto", &mut file);
        len_field(4, &message, &mut file);
        let error = super::file(&file, Parts::ALL).unwrap_err();
        assert!(error.ends_with("a field without a name"), "{error}");
        assert!(error.len() < 2 * 1024, "{}", error.len());
        assert!(error.starts_with(&format!("{}…: ", "N".repeat(200))), "{}", &error[..300]);
        let short = super::file(&[0x0a, 0x01, b'f', 0x22, 0x00], Parts::ALL).unwrap_err();
        assert_eq!(short, "f: a message type without a name");
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
        len_field(1, b"M", &mut message);
        len_field(2, &field, &mut message);
        let mut file = Vec::new();
        len_field(4, &message, &mut file);
        let mut set = Vec::new();
        len_field(1, &file, &mut set);
        let files = decode_file_set(&set).unwrap();
        let f = &files[0].messages[0].fields[0];
        assert_eq!((&*f.name, f.packed), ("b", Some(true)));
    }

    #[test]
    fn field_behavior_is_read_unpacked_packed_and_across_occurrences() {
        let behavior = |options: &[u8]| {
            let mut field = Vec::new();
            len_field(8, options, &mut field);
            field_bytes(&field)
        };
        // [(google.api.field_behavior) = REQUIRED]: one unpacked value (protoc's form).
        let mut required = Vec::new();
        varint_field(FIELD_BEHAVIOR_EXTENSION, 2, &mut required);
        assert_eq!(behavior(&required), FieldBehavior { required: true, output_only: false });
        // Packed OUTPUT_ONLY and IMMUTABLE, then an unpacked REQUIRED in a second options.
        let mut packed = Vec::new();
        len_field(FIELD_BEHAVIOR_EXTENSION, &[3, 5], &mut packed);
        let mut twice = Vec::new();
        len_field(8, &packed, &mut twice);
        len_field(8, &required, &mut twice);
        assert_eq!(field_bytes(&twice), FieldBehavior { required: true, output_only: true });
        assert_eq!(named_field(&twice).1, [3, 5, 2], "every value, for the OpenAPI document");
        // Other values are accepted and ignored; a malformed packed run is an error.
        let mut others = Vec::new();
        varint_field(FIELD_BEHAVIOR_EXTENSION, 8, &mut others);
        assert_eq!(behavior(&others), FieldBehavior::default());
        let mut bad = Vec::new();
        len_field(FIELD_BEHAVIOR_EXTENSION, &[0x80], &mut bad);
        let mut f = Vec::new();
        len_field(8, &bad, &mut f);
        assert!(super::field(&f, "a field").unwrap_err().contains("field_behavior"));
        // The test schema, as protox compiles it.
        let files = decode_file_set(TEST_DESCRIPTOR_SET).unwrap();
        let rest = files.iter().find(|f| f.name == "rest_test.proto").unwrap();
        let doc = rest.messages.iter().find(|m| m.name == "Doc").unwrap();
        let get = |name: &str| doc.fields.iter().find(|f| f.name == name).unwrap().behavior();
        assert_eq!(get("title"), FieldBehavior { required: true, output_only: false });
        assert_eq!(get("version"), FieldBehavior { required: false, output_only: true });
        assert_eq!(get("note"), FieldBehavior::default());
    }

    fn field_bytes(bytes: &[u8]) -> FieldBehavior {
        named_field(bytes).0
    }

    /// The behavior and `field_behavior` of the field of `bytes` given a name (a field without
    /// one is refused).
    fn named_field(bytes: &[u8]) -> (FieldBehavior, Vec<i32>) {
        let mut named = Vec::new();
        len_field(1, b"f", &mut named);
        named.extend_from_slice(bytes);
        let field = super::field(&named, "a field").unwrap();
        (field.behavior(), field.field_behavior)
    }

    #[test]
    fn reads_the_edition_and_features_at_every_level() {
        use crate::testing::fixtures::editions;
        let mut file = editions::file_proto();
        file.features = FeatureSet { json_format: Some(2), utf8_validation: Some(3), ..Default::default() };
        if let Some(m) = file.messages.first_mut() {
            m.features_set = Some(Box::new(editions::expanded()));
            m.oneofs = vec!["o".into()];
            m.oneof_features = vec![(0, editions::delimited())];
        }
        let encoded = editions::encode_set(std::slice::from_ref(&file));
        let decoded = decode_file_set(&encoded).unwrap();
        assert_eq!(decoded, vec![file.clone()]);
        assert_eq!((decoded[0].syntax.as_deref(), decoded[0].edition), (Some("editions"), Some(1000)));
        let m = &decoded[0].messages[0];
        assert_eq!(m.fields[1].features().field_presence, Some(2));
        assert_eq!(m.oneof_features(0).message_encoding, Some(2));
        assert_eq!(decoded[0].enums[1].features.enum_type, Some(2));
    }

    #[test]
    fn comments_are_read_from_source_code_info() {
        // file "a.proto" { source_code_info { location { path: [4, 0] leading: " M. " }
        //   location { path: [4, 0, 2, 1] (packed) trailing: "f" } location { path: [4] } } }
        let location = |path: &[u8], leading: Option<&str>, trailing: Option<&str>| {
            let mut l = Vec::new();
            len_field(1, path, &mut l);
            if let Some(text) = leading {
                len_field(3, text.as_bytes(), &mut l);
            }
            if let Some(text) = trailing {
                len_field(4, text.as_bytes(), &mut l);
            }
            l
        };
        let mut info = Vec::new();
        len_field(1, &location(&[4, 0], Some(" M. "), None), &mut info);
        len_field(1, &location(&[4, 0, 2, 1], Some("  "), Some("f")), &mut info);
        len_field(1, &location(&[4], None, None), &mut info);
        let mut file = Vec::new();
        len_field(1, b"a.proto", &mut file);
        len_field(9, &info, &mut file);
        let mut set = Vec::new();
        len_field(1, &file, &mut set);
        let files = decode_comments(&set).unwrap();
        assert_eq!(
            files,
            [(
                "a.proto".to_string(),
                vec![
                    CommentProto { path: vec![4, 0], text: " M. ".into() },
                    CommentProto { path: vec![4, 0, 2, 1], text: "f".into() }
                ]
            )]
        );
        assert!(decode_comments(&[0x0a, 0x05, 0x4a]).is_err(), "truncated");
    }

    #[test]
    fn features_given_twice_merge_and_extensions_are_skipped() {
        // FieldOptions { features { field_presence: 2, [pb.cpp] (1000) { 1: 1 } },
        //                features { utf8_validation: 3 } }
        let mut first = Vec::new();
        varint_field(1, 2, &mut first);
        len_field(1000, &[0x08, 0x01], &mut first);
        let mut second = Vec::new();
        varint_field(4, 3, &mut second);
        let mut options = Vec::new();
        len_field(21, &first, &mut options);
        len_field(21, &second, &mut options);
        let mut field = Vec::new();
        len_field(1, b"f", &mut field);
        len_field(8, &options, &mut field);
        let mut message = Vec::new();
        len_field(1, b"M", &mut message);
        len_field(2, &field, &mut message);
        let mut file = Vec::new();
        len_field(4, &message, &mut file);
        let mut set = Vec::new();
        len_field(1, &file, &mut set);
        let files = decode_file_set(&set).unwrap();
        let f = files[0].messages[0].fields[0].features();
        assert_eq!(*f, FeatureSet { field_presence: Some(2), utf8_validation: Some(3), ..Default::default() });
        // A feature written as a string is malformed.
        let mut bad = Vec::new();
        len_field(
            8,
            &{
                let mut o = Vec::new();
                len_field(
                    50,
                    &{
                        let mut f = Vec::new();
                        len_field(1, b"x", &mut f);
                        f
                    },
                    &mut o,
                );
                o
            },
            &mut bad,
        );
        let mut set = Vec::new();
        len_field(1, &bad, &mut set);
        assert!(decode_file_set(&set).unwrap_err().contains("FeatureSet"));
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
