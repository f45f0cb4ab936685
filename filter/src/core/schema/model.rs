//! The descriptor model json2grpc works with: the messages, enums and services of a
//! FileDescriptorSet, linked (type names resolved to indices) and checked once per
//! configuration, so nothing later can meet a dangling or ill-formed type.
//!
//! Types are referred to by index ([`Kind::Message`], [`Method::input`], …); the fast codec's
//! plans use the same indices. Checked here: syntax (proto2, proto3 or edition 2023), imports
//! present, names unique, every referenced type present and of the right sort, field numbers
//! valid and unique, map entries shaped as protoc makes them, feature values known. Derived
//! here: json_name when absent, and from the resolved features (proto2 and proto3 are
//! editions with their own defaults): packed encoding, presence, delimited (group) encoding,
//! UTF-8 checks, closed enums.
use std::sync::Arc;

use crate::core::schema::descriptor_proto::{
    self, EnumProto, FieldBehavior, FieldProto, FileProto, MessageProto, Parts, ServiceProto,
};
use crate::core::schema::encoded_files::EncodedFiles;
use crate::core::schema::name_table::{Def, NameTable, Types};
use crate::core::seeded_hash::SeededMap;

/// The scalar kinds of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

impl Scalar {
    /// The wire type of one value of this kind.
    pub fn wire_type(self) -> u8 {
        use Scalar::*;
        match self {
            Double | Fixed64 | Sfixed64 => 1,
            Float | Fixed32 | Sfixed32 => 5,
            String | Bytes => 2,
            Int32 | Int64 | Uint32 | Uint64 | Sint32 | Sint64 | Bool => 0,
        }
    }

    /// Kinds allowed as map keys (protoc's rule).
    pub fn is_map_key(self) -> bool {
        !matches!(self, Scalar::Double | Scalar::Float | Scalar::Bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Proto2,
    Proto3,
    /// `edition = "2023"`.
    Edition2023,
}

/// `google.protobuf.Edition` numbers.
const EDITION_PROTO2: i32 = 998;
const EDITION_PROTO3: i32 = 999;
const EDITION_2023: i32 = 1000;
const EDITION_2024: i32 = 1001;

/// Whether a singular field's set/unset state is observable (`features.field_presence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Explicit,
    Implicit,
    LegacyRequired,
}

/// The features (`google.protobuf.FeatureSet`) that change how a field is encoded, resolved
/// for one element: the defaults of its file's edition (proto2 and proto3 are editions with
/// their own defaults), then what the file, each enclosing message, its oneof and the element
/// itself set. Only editions files set features; in proto2/proto3 files the syntax decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    editions: bool,
    pub presence: Presence,
    /// `enum_type = CLOSED`: a number the enum does not declare is an unknown field.
    pub closed_enum: bool,
    /// `repeated_field_encoding = PACKED`.
    pub packed: bool,
    /// `utf8_validation = VERIFY`: a string that is not UTF-8 is an invalid message.
    pub verify_utf8: bool,
    /// `message_encoding = DELIMITED`: message fields use the group wire format.
    pub delimited: bool,
}

impl Features {
    /// The defaults of a syntax or edition (descriptor.proto's `edition_defaults`).
    pub fn defaults(syntax: Syntax) -> Features {
        let proto3 = syntax == Syntax::Proto3;
        Features {
            editions: syntax == Syntax::Edition2023,
            presence: if proto3 { Presence::Implicit } else { Presence::Explicit },
            closed_enum: syntax == Syntax::Proto2,
            packed: syntax != Syntax::Proto2,
            verify_utf8: syntax != Syntax::Proto2,
            delimited: false,
        }
    }

    /// These features with what `set` sets applied (in editions files; proto2/proto3 files
    /// cannot set features). A value descriptor.proto does not define is an error.
    pub fn with(self, set: &descriptor_proto::FeatureSet) -> Result<Features, String> {
        if !self.editions {
            return Ok(self);
        }
        let bad = |name: &str, v: i32| format!("invalid value {v} for features.{name}");
        let mut f = self;
        if let Some(v) = set.field_presence {
            f.presence = match v {
                1 => Presence::Explicit,
                2 => Presence::Implicit,
                3 => Presence::LegacyRequired,
                _ => return Err(bad("field_presence", v)),
            };
        }
        if let Some(v) = set.enum_type {
            f.closed_enum = match v {
                1 => false,
                2 => true,
                _ => return Err(bad("enum_type", v)),
            };
        }
        if let Some(v) = set.repeated_field_encoding {
            f.packed = match v {
                1 => true,
                2 => false,
                _ => return Err(bad("repeated_field_encoding", v)),
            };
        }
        if let Some(v) = set.utf8_validation {
            f.verify_utf8 = match v {
                2 => true,
                3 => false,
                _ => return Err(bad("utf8_validation", v)),
            };
        }
        if let Some(v) = set.message_encoding {
            f.delimited = match v {
                1 => false,
                2 => true,
                _ => return Err(bad("message_encoding", v)),
            };
        }
        // json_format: ALLOW or LEGACY_BEST_EFFORT only relax checks json2grpc does not make
        // (JSON name conflicts); both are accepted.
        if let Some(v) = set.json_format.filter(|v| !matches!(v, 1 | 2)) {
            return Err(bad("json_format", v));
        }
        Ok(f)
    }
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar(Scalar),
    /// Index into [`Schema::enums`].
    Enum(usize),
    /// Index into [`Schema::messages`] (also for groups).
    Message(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    Optional,
    Required,
    Repeated,
}

/// A field's proto and JSON names. Interned as a pair: every worker's VM holds every field of
/// the schema (12,000 for a 200-service API), and one pointer is 12 bytes less per field than
/// two `Arc<str>` on wasm32 (a field is 32 bytes).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FieldNames {
    /// Shared (`Arc`): the codec's plans hold the same names.
    pub name: Arc<str>,
    pub json_name: Arc<str>,
}

/// A field: its names, number and kind, and its [`Traits`] packed into 48 bits. Every worker's
/// VM holds every field of the schema (12,000 for a 200-service API): 16 bytes on wasm32 (20
/// with the kind as an enum, 28 with the traits as separate bytes, 32 with an `Option<u16>`
/// oneof and two names).
#[derive(Clone, PartialEq, Eq)]
pub struct Field {
    pub names: Arc<FieldNames>,
    pub number: u32,
    /// [`Field::kind`]: the scalar or the index; which of the three is in `bits`.
    kind: u32,
    /// [`Traits`] but the oneof: cardinality in bits 0-1, then one bit per flag, then the
    /// kind's variant ([`KIND_ENUM`], [`KIND_MESSAGE`]; neither: a scalar).
    bits: u16,
    /// [`Traits::oneof`]; [`NO_ONEOF`] for none.
    oneof: u16,
}

/// What a field is besides its names, number and kind (unpacked: [`Field::new`] packs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    pub cardinality: Cardinality,
    /// A repeated field of a map entry type.
    pub map: bool,
    /// A message field written with the group wire format (wire types 3 and 4): a proto2
    /// group, or `features.message_encoding = DELIMITED`.
    pub delimited: bool,
    /// Repeated scalars written as one length-delimited run.
    pub packed: bool,
    /// Set/unset is observable: message fields, proto2 optional fields, proto3 `optional`,
    /// oneof members, editions fields with explicit presence.
    pub presence: bool,
    /// A string field that must hold UTF-8 (`utf8_validation = VERIFY`: proto3, editions by
    /// default); proto2 strings and `NONE` may hold any bytes.
    pub verify_utf8: bool,
    /// Index into the message's `oneofs` (synthetic ones included), below [`NO_ONEOF`].
    pub oneof: Option<u16>,
    /// Its `google.api.field_behavior` (REQUIRED, OUTPUT_ONLY).
    pub behavior: FieldBehavior,
}

/// The packed oneof index of a field in none; also the number of oneofs a message may have.
pub const NO_ONEOF: u16 = u16::MAX;

const MAP: u16 = 1 << 2;
const DELIMITED: u16 = 1 << 3;
const PACKED: u16 = 1 << 4;
const PRESENCE: u16 = 1 << 5;
const VERIFY_UTF8: u16 = 1 << 6;
const BEHAVIOR_REQUIRED: u16 = 1 << 7;
const BEHAVIOR_OUTPUT_ONLY: u16 = 1 << 8;
const KIND_ENUM: u16 = 1 << 9;
const KIND_MESSAGE: u16 = 1 << 10;

/// Every scalar, in declaration order (`Scalar as u32` is an index).
const SCALARS: [Scalar; 15] = [
    Scalar::Double,
    Scalar::Float,
    Scalar::Int32,
    Scalar::Int64,
    Scalar::Uint32,
    Scalar::Uint64,
    Scalar::Sint32,
    Scalar::Sint64,
    Scalar::Fixed32,
    Scalar::Fixed64,
    Scalar::Sfixed32,
    Scalar::Sfixed64,
    Scalar::Bool,
    Scalar::String,
    Scalar::Bytes,
];

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field")
            .field("names", &self.names)
            .field("number", &self.number)
            .field("kind", &self.kind())
            .field("traits", &self.traits())
            .finish()
    }
}

impl Field {
    /// `traits.oneof` must be below [`NO_ONEOF`] (a larger one is read as none).
    pub fn new(names: Arc<FieldNames>, number: u32, kind: Kind, traits: Traits) -> Field {
        let cardinality = match traits.cardinality {
            Cardinality::Optional => 0,
            Cardinality::Required => 1,
            Cardinality::Repeated => 2,
        };
        let flag = |on: bool, bit: u16| if on { bit } else { 0 };
        let bits = cardinality
            | flag(traits.map, MAP)
            | flag(traits.delimited, DELIMITED)
            | flag(traits.packed, PACKED)
            | flag(traits.presence, PRESENCE)
            | flag(traits.verify_utf8, VERIFY_UTF8)
            | flag(traits.behavior.required, BEHAVIOR_REQUIRED)
            | flag(traits.behavior.output_only, BEHAVIOR_OUTPUT_ONLY);
        // Indices are below 2^30 (the name table's limit); a larger one would find no type.
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let (kind, variant) = match kind {
            Kind::Scalar(s) => (s as u32, 0),
            Kind::Enum(e) => (index(e), KIND_ENUM),
            Kind::Message(m) => (index(m), KIND_MESSAGE),
        };
        Field { names, number, kind, bits: bits | variant, oneof: traits.oneof.unwrap_or(NO_ONEOF) }
    }

    pub fn kind(&self) -> Kind {
        let index = usize::try_from(self.kind).unwrap_or(usize::MAX);
        if self.has(KIND_MESSAGE) {
            Kind::Message(index)
        } else if self.has(KIND_ENUM) {
            Kind::Enum(index)
        } else {
            Kind::Scalar(SCALARS.get(index).copied().unwrap_or(Scalar::Bytes))
        }
    }

    pub fn traits(&self) -> Traits {
        Traits {
            cardinality: self.cardinality(),
            map: self.map(),
            delimited: self.delimited(),
            packed: self.packed(),
            presence: self.presence(),
            verify_utf8: self.verify_utf8(),
            oneof: self.oneof(),
            behavior: self.behavior(),
        }
    }

    fn has(&self, bit: u16) -> bool {
        self.bits & bit != 0
    }

    fn set(&mut self, bit: u16, on: bool) {
        self.bits = if on { self.bits | bit } else { self.bits & !bit };
    }

    pub fn cardinality(&self) -> Cardinality {
        match self.bits & 3 {
            0 => Cardinality::Optional,
            1 => Cardinality::Required,
            _ => Cardinality::Repeated,
        }
    }

    /// See [`Traits`] for each.
    pub fn map(&self) -> bool {
        self.has(MAP)
    }

    pub fn delimited(&self) -> bool {
        self.has(DELIMITED)
    }

    pub fn packed(&self) -> bool {
        self.has(PACKED)
    }

    pub fn presence(&self) -> bool {
        self.has(PRESENCE)
    }

    pub fn verify_utf8(&self) -> bool {
        self.has(VERIFY_UTF8)
    }

    pub fn oneof(&self) -> Option<u16> {
        (self.oneof != NO_ONEOF).then_some(self.oneof)
    }

    pub fn behavior(&self) -> FieldBehavior {
        FieldBehavior { required: self.has(BEHAVIOR_REQUIRED), output_only: self.has(BEHAVIOR_OUTPUT_ONLY) }
    }

    pub fn set_map(&mut self, map: bool) {
        self.set(MAP, map);
    }

    pub fn set_presence(&mut self, presence: bool) {
        self.set(PRESENCE, presence);
    }

    pub fn name(&self) -> &str {
        &self.names.name
    }

    pub fn json_name(&self) -> &str {
        &self.names.json_name
    }

    /// Repeated and not a map.
    pub fn is_list(&self) -> bool {
        self.is_repeated() && !self.map()
    }

    pub fn is_repeated(&self) -> bool {
        self.cardinality() == Cardinality::Repeated
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oneof {
    pub name: Box<str>,
    /// The one-field oneof protoc makes for a proto3 `optional` field: not a real choice.
    pub synthetic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Not shared (a name table entry is an index; a plan copies it): every worker's VM holds
    /// one per message, and an `Arc`'s counts were 8 bytes more each.
    pub full_name: Box<str>,
    /// In declaration order.
    pub fields: Box<[Field]>,
    /// The synthetic entry type of a map field (fields `key = 1`, `value = 2`).
    pub map_entry: bool,
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }

    pub fn field_by_name(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name() == name)
    }

    pub fn field_by_json_name(&self, json_name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.json_name() == json_name)
    }

    /// A map entry's key and value fields.
    pub fn map_key(&self) -> Option<&Field> {
        self.field(1)
    }

    pub fn map_value(&self) -> Option<&Field> {
        self.field(2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// As [`Message::full_name`].
    pub full_name: Box<str>,
    /// Declared values (aliases included), in order.
    pub values: Vec<(Box<str>, i32)>,
    /// A closed enum (proto2, `enum_type = CLOSED`): on the wire, a number it does not
    /// declare is an unknown field, not a value.
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub full_name: Box<str>,
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Its own name (the full name is the service's, a dot and this: the link does not refuse a
    /// name with a dot, which protoc would, so the last dot is not always the split). Not the
    /// full name: the services are held with the descriptor set while linking, at the peak.
    pub name: Box<str>,
    /// Indices into [`Schema::messages`].
    pub input: usize,
    pub output: usize,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// The encoded `MethodOptions` (for the `google.api.http` rule).
    pub options: Vec<u8>,
}

/// Every message, enum and service of a descriptor set, linked and checked.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub messages: Vec<Message>,
    pub enums: Vec<Enum>,
    /// Emptied once the router is built ([`Schema::drop_services`]).
    pub services: Vec<Service>,
    /// Full name → message, enum or service.
    names: NameTable,
    /// While linking: the indices of the first built-in message and enum, when built-in files
    /// were added after the user's.
    first_builtin: Option<(usize, usize)>,
    /// The oneofs of the messages that have any, by message index (sorted): most have none,
    /// and a list in every message was 8 bytes more each in every worker's VM.
    oneofs: Vec<(usize, Box<[Oneof]>)>,
}

impl Schema {
    pub fn message(&self, index: usize) -> Option<&Message> {
        self.messages.get(index)
    }

    pub fn enumeration(&self, index: usize) -> Option<&Enum> {
        self.enums.get(index)
    }

    /// The index of a message type by full name (no leading dot).
    pub fn message_index(&self, full_name: &str) -> Option<usize> {
        match self.names.get(full_name, self.types()) {
            Some(Def::Message(i)) => Some(i),
            _ => None,
        }
    }

    pub fn message_by_name(&self, full_name: &str) -> Option<&Message> {
        self.message_index(full_name).and_then(|i| self.messages.get(i))
    }

    pub fn service(&self, full_name: &str) -> Option<&Service> {
        self.services.iter().find(|s| &*s.full_name == full_name)
    }

    /// The full name of a message type, "" for a bad index.
    pub fn message_name(&self, index: usize) -> &str {
        self.messages.get(index).map_or("", |m| &m.full_name)
    }

    /// Links and checks decoded files (any order); the error says what is wrong and where.
    pub fn link(files: &[FileProto]) -> Result<Schema, String> {
        Schema::link_set(&mut &*files)
    }

    /// [`Schema::link`] for any [`FileSet`]: files are read once per pass (the header check,
    /// declarations, extensions at file level, then in messages, and last the fields and
    /// services), one at a time, each pass reading only the parts it needs. The last pass
    /// builds most of the schema; a draining set is freed as it reads it (`EncodedFiles`).
    pub fn link_set(files: &mut (impl FileSet + ?Sized)) -> Result<Schema, String> {
        check_files(files)?;
        let mut schema = Schema::default();
        // Pass 1: every type gets its full name and index, so fields can refer to any type.
        // What the next passes need of each message is kept by index, and where each file's
        // messages start (the last pass reads the files last to first).
        let mut declared = Declared::default();
        // Sized first: the declare pass runs while the whole set is in memory (a worker's VM
        // at its peak), where doubling lists left their old halves behind (for 3,846 messages
        // the list of messages alone reached 114 KB beside its 57 KB predecessor).
        let (messages, enums, services) = count_types(files)?;
        schema.messages.reserve_exact(messages);
        schema.enums.reserve_exact(enums);
        schema.names.reserve(messages + enums + services);
        declared.features.reserve_exact(messages);
        declared.message_sets.reserve_exact(messages);
        let set_files = files.set_files();
        files.each(DECLARE, &mut |file| {
            if declared.file_starts.len() == set_files {
                schema.first_builtin = Some((schema.messages.len(), schema.enums.len()));
            }
            declared.file_starts.push(schema.messages.len());
            let features = file_features(file)?;
            for message in &file.messages {
                schema.declare_message(message, &file.package, features, &mut declared)?;
            }
            for e in &file.enums {
                schema.declare_enum(e, &file.package, features)?;
            }
            for s in &file.services {
                let full_name = join(&file.package, &s.name);
                schema.names.insert(Def::Service, Some(full_name.into()))?;
            }
            Ok(())
        })?;
        let types = Types { messages: &schema.messages, enums: &schema.enums };
        schema.names.seal(types).map_err(|name| format!("\"{name}\" is defined more than once"))?;
        let mut names = Interner::default();
        let mut extensions = Extensions::default();
        // Extensions become fields of the messages they extend, named `[full.name]` (their
        // JSON key); their features are their declaring scope's. They are added before the
        // messages' own fields, which go first (see `link_message`).
        let message_sets = &declared.message_sets;
        // Read again rather than kept from pass 1 (a set can be mostly extensions of nothing but
        // a name, each 5 bytes encoded and ~100 decoded): those declared at file level first,
        // then those in messages, in message order.
        files.each(FILE_EXTENSIONS, &mut |file| {
            let features = file_features(file)?;
            for f in &file.extensions {
                schema.link_extension(f, &file.package, features, message_sets, &mut names, &mut extensions)?;
            }
            Ok(())
        })?;
        let mut next = 0;
        files.each(MESSAGE_EXTENSIONS, &mut |file| {
            for message in &file.messages {
                schema.link_message_extensions(
                    message,
                    &mut next,
                    (&declared.features, message_sets),
                    &mut names,
                    &mut extensions,
                )?;
            }
            Ok(())
        })?;
        // Last pass, files last to first: fields, message by message (message i is the i-th
        // declared), and services (each file's listed backwards, the whole list reversed after).
        let changed = || "the descriptor set changed between passes".to_string();
        let messages = declared.features.len();
        files.each_last(LAST, &mut |index, file| {
            let mut next = declared.file_starts.get(index).copied().ok_or_else(changed)?;
            for message in &file.messages {
                schema.link_message(message, &mut next, &declared.features, &mut names, &mut extensions)?;
            }
            if next != declared.file_starts.get(index + 1).copied().unwrap_or(messages) {
                return Err(changed());
            }
            for s in file.services.iter().rev() {
                let service = schema.link_service(s, &file.package)?;
                schema.services.push(service);
            }
            Ok(())
        })?;
        schema.services.reverse();
        // Added files last to first: by message index for the lookup.
        schema.oneofs.sort_unstable_by_key(|(m, _)| *m);
        schema.oneofs.shrink_to_fit();
        schema.link_maps()?;
        // Sized by the count (a set that changed between passes aside); every worker's VM
        // keeps them.
        schema.messages.shrink_to_fit();
        schema.enums.shrink_to_fit();
        schema.first_builtin = None;
        Ok(schema)
    }

    fn link_service(&self, s: &ServiceProto, package: &str) -> Result<Service, String> {
        let full_name = join(package, &s.name);
        let mut methods = Vec::with_capacity(s.methods.len());
        for m in &s.methods {
            let method_name = format!("{full_name}.{}", m.name);
            let message = |type_name: &str, what: &str| match self.resolve(type_name, &full_name) {
                Some(Def::Message(i)) => Ok(i),
                _ => Err(format!("{method_name}: {what} type \"{type_name}\" is not a message in the set")),
            };
            methods.push(Method {
                input: message(&m.input_type, "input")?,
                output: message(&m.output_type, "output")?,
                name: (*m.name).into(),
                client_streaming: m.client_streaming,
                server_streaming: m.server_streaming,
                options: m.options.clone(),
            });
        }
        Ok(Service { full_name: full_name.into(), methods })
    }

    /// Links the extensions declared in a message and in those it nests, in declaration order;
    /// `next` is the index of the next message.
    fn link_message_extensions(
        &mut self,
        proto: &MessageProto,
        next: &mut usize,
        (features, message_sets): (&[Features], &[bool]),
        names: &mut Interner,
        extensions: &mut Extensions,
    ) -> Result<(), String> {
        let index = *next;
        *next += 1;
        if !proto.extensions.is_empty() {
            let resolved = features.get(index).copied().ok_or("the descriptor set changed between passes")?;
            let scope = self.message_name(index).to_string();
            for f in &proto.extensions {
                self.link_extension(f, &scope, resolved, message_sets, names, extensions)?;
            }
        }
        for nested in &proto.nested {
            self.link_message_extensions(nested, next, (features, message_sets), names, extensions)?;
        }
        Ok(())
    }

    /// Links the fields of a message declared in pass 1 and of those it nests, in declaration
    /// order; `next` is the index of the next message.
    fn link_message(
        &mut self,
        proto: &MessageProto,
        next: &mut usize,
        features: &[Features],
        names: &mut Interner,
        extensions: &mut Extensions,
    ) -> Result<(), String> {
        let index = *next;
        *next += 1;
        let resolved = features.get(index).copied().ok_or("the descriptor set changed between passes")?;
        let mut fields = self.link_fields(index, proto, resolved, names)?;
        // A oneof is synthetic when its only member is a proto3 `optional` field: members counted
        // in one pass over the fields (per oneof, it cost oneofs x fields).
        let mut members: Vec<(u32, bool)> = vec![(0, false); proto.oneofs.len()];
        for f in &proto.fields {
            if let Some(m) = f.oneof_index.and_then(|o| usize::try_from(o).ok()).and_then(|o| members.get_mut(o)) {
                *m = (m.0.saturating_add(1), f.proto3_optional);
            }
        }
        let synthetic = members.into_iter().map(|(count, optional)| count == 1 && optional);
        if let Some(m) = self.messages.get_mut(index) {
            // Its extensions, linked before: after its own fields, as declared. Their numbers
            // differ from each other's (`link_extension`) and the fields' from each other's.
            fields.extend(extensions.by_message.remove(&index).unwrap_or_default());
            // The codec's plans index a message's fields in 16 bits (u16::MAX: none).
            if fields.len() > usize::from(u16::MAX) {
                return Err(format!(
                    "{}: a message with more than 65,535 fields (extensions included) is not supported",
                    m.full_name
                ));
            }
            if let Some(clash) = first_duplicate(&fields, |f| i64::from(f.number)).and_then(|i| fields.get(i)) {
                let name = clash.name().trim_start_matches('[').trim_end_matches(']');
                return Err(format!(
                    "extension {name}: field number {} of {} is used twice",
                    clash.number, m.full_name
                ));
            }
            m.fields = fields.into_boxed_slice();
            if !proto.oneofs.is_empty() {
                let oneofs = proto.oneofs.iter().zip(synthetic);
                self.oneofs.push((
                    index,
                    oneofs.map(|(name, synthetic)| Oneof { name: (**name).into(), synthetic }).collect(),
                ));
            }
        }
        for nested in &proto.nested {
            self.link_message(nested, next, features, names, extensions)?;
        }
        Ok(())
    }

    /// The types whose names the name table holds.
    fn types(&self) -> Types<'_> {
        Types { messages: &self.messages, enums: &self.enums }
    }

    /// The oneofs of message `index` (synthetic ones included), in declaration order.
    pub fn oneofs(&self, index: usize) -> &[Oneof] {
        match self.oneofs.binary_search_by_key(&index, |(m, _)| *m) {
            Ok(at) => self.oneofs.get(at).map_or(&[], |(_, o)| o),
            Err(_) => &[],
        }
    }

    /// Frees the services (their methods and options): the router copies what requests need
    /// of them, and nothing reads them after it is built.
    pub fn drop_services(&mut self) {
        self.services = Vec::new();
    }

    /// Declares a message and what it nests; `features`: those of the enclosing scope.
    fn declare_message(
        &mut self,
        proto: &MessageProto,
        scope: &str,
        features: Features,
        declared: &mut Declared,
    ) -> Result<(), String> {
        let full_name = join(scope, &proto.name);
        let features = features.with(proto.features()).map_err(|e| format!("{full_name}: {e}"))?;
        // [`NameTable::seal`] refuses a name defined twice, once every type is declared.
        self.names.insert(Def::Message(self.messages.len()), None)?;
        self.messages.push(Message {
            full_name: full_name.as_str().into(),
            fields: Box::default(),
            map_entry: proto.map_entry,
        });
        declared.features.push(features);
        declared.message_sets.push(proto.message_set);
        for nested in &proto.nested {
            self.declare_message(nested, &full_name, features, declared)?;
        }
        for e in &proto.enums {
            self.declare_enum(e, &full_name, features)?;
        }
        Ok(())
    }

    fn declare_enum(&mut self, proto: &EnumProto, scope: &str, features: Features) -> Result<(), String> {
        let full_name = join(scope, &proto.name);
        let closed = features.with(&proto.features).map_err(|e| format!("{full_name}: {e}"))?.closed_enum;
        self.names.insert(Def::Enum(self.enums.len()), None)?;
        // protoc and Envoy's descriptor pool refuse it, and the body's lookup (the codec's) and
        // the URL's would each pick a different one.
        if let Some((name, _)) = first_duplicate(&proto.values, |(n, _)| &**n).and_then(|i| proto.values.get(i)) {
            return Err(format!("{full_name}.{name}: the value name is used twice"));
        }
        let values = proto.values.iter().map(|(n, v)| ((**n).into(), *v)).collect();
        self.enums.push(Enum { full_name: full_name.as_str().into(), values, closed });
        Ok(())
    }

    /// A type name as written in a descriptor: `.pkg.Type` (what protoc writes), or relative
    /// to `scope` (searched outwards, as protoc resolves names).
    fn resolve(&self, name: &str, scope: &str) -> Option<Def> {
        if let Some(absolute) = name.strip_prefix('.') {
            return self.names.get(absolute, self.types());
        }
        // The user's own types first: a built-in type the set lacks must not change what a
        // name finds (so the built-ins never make a set that links alone fail).
        self.resolve_relative(name, scope, &|def| !self.builtin(*def))
            .or_else(|| self.first_builtin.and_then(|_| self.resolve_relative(name, scope, &|_| true)))
    }

    /// While linking: `def` comes from a built-in file, not the user's set.
    fn builtin(&self, def: Def) -> bool {
        match (def, self.first_builtin) {
            (Def::Message(i), Some((messages, _))) => i >= messages,
            (Def::Enum(i), Some((_, enums))) => i >= enums,
            _ => false,
        }
    }

    /// The first definition `accept`s of `name` relative to `scope`, searched outwards.
    fn resolve_relative(&self, name: &str, scope: &str, accept: &dyn Fn(&Def) -> bool) -> Option<Def> {
        let mut scope = scope;
        loop {
            let candidate = join(scope, name);
            if let Some(def) = self.names.get(candidate.as_str(), self.types()).filter(accept) {
                return Some(def);
            }
            if scope.is_empty() {
                return None;
            }
            scope = scope.rsplit_once('.').map_or("", |(outer, _)| outer);
        }
    }

    /// The fields of message `index`; `features`: the message's resolved features.
    fn link_fields(
        &self,
        index: usize,
        proto: &MessageProto,
        features: Features,
        names: &mut Interner,
    ) -> Result<Vec<Field>, String> {
        let message_name = self.message_name(index);
        // The first field to repeat a number or a name, found by sorting, not pairwise: a
        // message may declare any number of fields, and linking must cost n log n in them
        // (40,000 fields took 3.4 s compared pairwise). The errors come in field order, as
        // protoc's do: a field before it that does not link is named first.
        let number = first_duplicate(&proto.fields, |f| i64::from(f.number));
        let name = first_duplicate(&proto.fields, |f| &*f.name);
        let mut fields: Vec<Field> = Vec::with_capacity(proto.fields.len());
        for (i, f) in proto.fields.iter().enumerate() {
            let at = |e: String| format!("{message_name}.{}: {e}", f.name);
            let field = self.link_field(f, message_name, proto, features, names).map_err(at)?;
            if number == Some(i) {
                return Err(at(format!("field number {} is used twice", field.number)));
            }
            if name == Some(i) {
                return Err(at("the name is used twice".to_string()));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// A field of `message` (named `scope`), whose resolved features are `features`.
    fn link_field(
        &self,
        f: &FieldProto,
        scope: &str,
        message: &MessageProto,
        features: Features,
        names: &mut Interner,
    ) -> Result<Field, String> {
        let number = u32::try_from(f.number)
            .ok()
            .filter(|n| (1..=MAX_FIELD_NUMBER).contains(n) && !RESERVED_FIELD_NUMBERS.contains(n))
            .ok_or_else(|| format!("invalid field number {}", f.number))?;
        let oneof = match f.oneof_index {
            None => None,
            Some(i) => {
                let index =
                    usize::try_from(i).ok().filter(|i| *i < message.oneofs.len()).ok_or("invalid oneof index")?;
                let index = u16::try_from(index).ok().filter(|&i| i < NO_ONEOF);
                Some(index.ok_or("a message with more than 65,535 oneofs is not supported")?)
            }
        };
        let oneof_features = oneof.map_or(descriptor_proto::NO_FEATURES, |o| message.oneof_features(usize::from(o)));
        let features = features.with(oneof_features)?.with(f.features())?;
        let mut cardinality = match f.label {
            None | Some(1) => Cardinality::Optional,
            Some(2) => Cardinality::Required,
            Some(3) => Cardinality::Repeated,
            Some(other) => return Err(format!("invalid label {other}")),
        };
        let (kind, group) = self.field_kind(f, scope)?;
        let delimited = if features.editions {
            // What protoc refuses in editions files (their features replace them).
            if group {
                return Err(
                    "group types are not allowed in editions (use features.message_encoding = DELIMITED)".into()
                );
            }
            if cardinality == Cardinality::Required {
                return Err(
                    "required is not allowed in editions (use features.field_presence = LEGACY_REQUIRED)".into()
                );
            }
            if features.presence == Presence::LegacyRequired && cardinality == Cardinality::Optional {
                cardinality = Cardinality::Required;
            }
            // A map field, and the fields of a map entry, are always length-prefixed.
            let is_map = matches!(kind, Kind::Message(m) if self.messages.get(m).is_some_and(|e| e.map_entry))
                && cardinality == Cardinality::Repeated;
            if is_map && f.features().message_encoding.is_some() {
                return Err("a map field cannot set features.message_encoding (maps are length-prefixed)".into());
            }
            features.delimited && matches!(kind, Kind::Message(_)) && !is_map && !message.map_entry
        } else {
            group
        };
        let packable = match kind {
            Kind::Scalar(s) => s.wire_type() != 2,
            Kind::Enum(_) => true,
            Kind::Message(_) => false,
        };
        let repeated = cardinality == Cardinality::Repeated;
        let json = match &f.json_name {
            Some(given) => names.get(given),
            None => names.get(&json_name(&f.name)),
        };
        let name = names.get(&f.name);
        let traits = Traits {
            cardinality,
            map: false,
            delimited,
            packed: repeated && packable && f.packed.unwrap_or(features.packed),
            presence: f.proto3_optional
                || oneof.is_some()
                || (!repeated && (matches!(kind, Kind::Message(_)) || features.presence != Presence::Implicit)),
            verify_utf8: features.verify_utf8,
            oneof,
            behavior: f.behavior(),
        };
        Ok(Field::new(names.pair(name, json), number, kind, traits))
    }

    /// Adds extension `f`, declared in `scope` (whose features are `features`), to the message it
    /// extends. An extendee missing from the set, or a MessageSet (`message_set_wire_format`,
    /// whose extensions have their own wire format), leaves it out: it stays an unknown field.
    fn link_extension(
        &mut self,
        f: &FieldProto,
        scope: &str,
        features: Features,
        message_sets: &[bool],
        names: &mut Interner,
        extensions: &mut Extensions,
    ) -> Result<(), String> {
        let full_name = join(scope, &f.name);
        let Some(Def::Message(extendee)) = self.resolve(&f.extendee, scope) else {
            log::debug!("extension {full_name}: extendee {:?} is not in the set", f.extendee);
            return Ok(());
        };
        if message_sets.get(extendee).copied().unwrap_or(false) {
            return Ok(());
        }
        let at = |e: String| format!("extension {full_name}: {e}");
        // (protoc refuses it too: a map entry declares no extension range.) Refused here, before
        // the last pass frees the set: a built-in map entry extended would otherwise fail after
        // it, when the set can no longer be linked without the built-ins.
        if self.messages.get(extendee).is_some_and(|m| m.map_entry) {
            return Err(at(format!("extends the map entry {}, which cannot be extended", self.message_name(extendee))));
        }
        let mut field = self.link_field(f, scope, &MessageProto::default(), features, names).map_err(at)?;
        let key: Arc<str> = format!("[{full_name}]").into();
        field.names = names.pair(key.clone(), key);
        // A singular extension has presence (protobuf: always explicit).
        field.set_presence(!field.is_repeated());
        let Some(message) = self.messages.get(extendee) else { return Ok(()) };
        if !extensions.numbers.insert((extendee, field.number)) {
            return Err(at(format!("field number {} of {} is used twice", field.number, message.full_name)));
        }
        extensions.by_message.entry(extendee).or_default().push(field);
        Ok(())
    }

    /// The field's kind, and whether it is a group.
    fn field_kind(&self, f: &FieldProto, scope: &str) -> Result<(Kind, bool), String> {
        const MESSAGE: i32 = 11;
        const GROUP: i32 = 10;
        const ENUM: i32 = 14;
        if f.type_name.is_empty() {
            let scalar = match f.kind {
                Some(1) => Scalar::Double,
                Some(2) => Scalar::Float,
                Some(3) => Scalar::Int64,
                Some(4) => Scalar::Uint64,
                Some(5) => Scalar::Int32,
                Some(6) => Scalar::Fixed64,
                Some(7) => Scalar::Fixed32,
                Some(8) => Scalar::Bool,
                Some(9) => Scalar::String,
                Some(12) => Scalar::Bytes,
                Some(13) => Scalar::Uint32,
                Some(15) => Scalar::Sfixed32,
                Some(16) => Scalar::Sfixed64,
                Some(17) => Scalar::Sint32,
                Some(18) => Scalar::Sint64,
                Some(MESSAGE | GROUP | ENUM) => return Err("no type_name for a message or enum field".into()),
                Some(other) => return Err(format!("invalid type {other}")),
                None => return Err("no type".into()),
            };
            return Ok((Kind::Scalar(scalar), false));
        }
        // A built-in type of the wrong kind: as if absent, as it is from the set alone (the
        // error is then the same with or without the built-ins).
        let found = self.resolve(&f.type_name, scope).filter(|def| {
            !self.builtin(*def)
                || matches!(
                    (f.kind, def),
                    (Some(MESSAGE | GROUP) | None, Def::Message(_)) | (Some(ENUM) | None, Def::Enum(_))
                )
        });
        match (f.kind, found) {
            (Some(MESSAGE) | None, Some(Def::Message(m))) => Ok((Kind::Message(m), false)),
            (Some(GROUP), Some(Def::Message(m))) => Ok((Kind::Message(m), true)),
            (Some(ENUM) | None, Some(Def::Enum(e))) => Ok((Kind::Enum(e), false)),
            (_, None) => Err(format!("type \"{}\" is not in the set", f.type_name)),
            (Some(MESSAGE | GROUP | ENUM) | None, Some(_)) => {
                let expected = if f.kind == Some(ENUM) { "an enum" } else { "a message" };
                Err(format!("type \"{}\" is not {expected}", f.type_name))
            }
            (Some(other), Some(_)) => Err(format!("type {other} cannot have a type_name")),
        }
    }

    /// Marks map fields and checks every map entry type: exactly `key = 1` (an integer,
    /// bool or string) and `value = 2`, both singular.
    fn link_maps(&mut self) -> Result<(), String> {
        for m in &self.messages {
            if !m.map_entry {
                continue;
            }
            let key = m.field(1).filter(|k| k.name() == "key");
            let value = m.field(2);
            let bad = |what: &str| format!("{}: {what}", m.full_name);
            let (Some(key), Some(value), 2) = (key, value, m.fields.len()) else {
                return Err(bad("a map entry must have exactly the fields key = 1 and value = 2"));
            };
            if key.is_repeated() || value.is_repeated() {
                return Err(bad("a map entry's key and value cannot be repeated"));
            }
            if !matches!(key.kind(), Kind::Scalar(s) if s.is_map_key()) {
                return Err(bad("a map key must be an integer, bool or string"));
            }
        }
        let entries: Vec<bool> = self.messages.iter().map(|m| m.map_entry).collect();
        for m in &mut self.messages {
            for f in &mut m.fields {
                if let (Kind::Message(entry), Cardinality::Repeated) = (f.kind(), f.cardinality()) {
                    f.set_map(entries.get(entry).copied().unwrap_or(false) && !f.delimited());
                }
            }
        }
        Ok(())
    }
}

/// Field names shared while linking: a name (and a json_name equal to one) is one allocation
/// however many messages use it. `name`, `id`, `page_size`… recur across an API's messages,
/// and every worker's VM keeps the schema (a third of the 200-service benchmark's fields'
/// memory).
#[derive(Default)]
struct Interner {
    names: crate::core::seeded_hash::SeededSet<Arc<str>>,
    pairs: SeededMap<(Arc<str>, Arc<str>), Arc<FieldNames>>,
}

impl Interner {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = name.into();
        self.names.insert(shared.clone());
        shared
    }

    /// The pair of (interned) names, one allocation per distinct pair.
    fn pair(&mut self, name: Arc<str>, json_name: Arc<str>) -> Arc<FieldNames> {
        self.pairs
            .entry((name.clone(), json_name.clone()))
            .or_insert_with(|| Arc::new(FieldNames { name, json_name }))
            .clone()
    }
}

/// Extensions linked before the fields of the messages they extend (`link_message` adds them).
#[derive(Default)]
struct Extensions {
    by_message: SeededMap<usize, Vec<Field>>,
    /// (extendee, number) of each: one extension per number, checked in O(1).
    numbers: crate::core::seeded_hash::SeededSet<(usize, u32)>,
}

/// The index of the first field (in order) whose `key` an earlier one has; n log n.
fn first_duplicate<'f, T, K: Ord>(fields: &'f [T], key: impl Fn(&'f T) -> K) -> Option<usize> {
    let mut keyed: Vec<(K, usize)> = fields.iter().map(&key).zip(0..).collect();
    // Equal keys sort by index: the later of two is the duplicate.
    keyed.sort_unstable();
    keyed.windows(2).filter_map(|w| if let [(a, _), (b, i)] = w { (a == b).then_some(*i) } else { None }).min()
}

/// The largest field number, and the numbers protobuf keeps for itself.
const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;
const RESERVED_FIELD_NUMBERS: std::ops::RangeInclusive<u32> = 19_000..=19_999;

/// How many messages, enums and services the set defines.
fn count_types(files: &(impl FileSet + ?Sized)) -> Result<(usize, usize, usize), String> {
    fn count(message: &MessageProto, counts: &mut (usize, usize, usize)) {
        counts.0 += 1;
        counts.1 += message.enums.len();
        for nested in &message.nested {
            count(nested, counts);
        }
    }
    let mut counts = (0, 0, 0);
    files.each(COUNT, &mut |file| {
        for message in &file.messages {
            count(message, &mut counts);
        }
        counts.1 += file.enums.len();
        counts.2 += file.services.len();
        Ok(())
    })?;
    Ok(counts)
}

/// Refuses unsupported syntaxes and editions, duplicate file names and missing imports.
fn check_files(files: &(impl FileSet + ?Sized)) -> Result<(), String> {
    let mut names: SeededMap<String, ()> = SeededMap::default();
    files.each(Parts::HEADER, &mut |file| {
        syntax_of(file)?;
        if names.insert(file.name.to_string(), ()).is_some() {
            return Err(format!("{}: the file is in the set twice", file.name));
        }
        Ok(())
    })?;
    // Each file's imports checked as it is read again, nothing kept: copied out of every file
    // first, a set of millions of one-letter imports was millions of strings.
    files.each(Parts::HEADER, &mut |file| match file
        .dependencies
        .iter()
        .find(|d| !names.contains_key(d.as_ref() as &str))
    {
        Some(missing) => Err(format!("{}: imports \"{missing}\", which is not in the set", file.name)),
        None => Ok(()),
    })
}

/// Files [`Schema::link_set`] reads, once per pass; a pass reads at least `parts` of each
/// (decoded files give all of them).
pub trait FileSet {
    /// Each file, in order.
    fn each(&self, parts: Parts, f: &mut dyn FnMut(&FileProto<'_>) -> Result<(), String>) -> Result<(), String>;

    /// The last pass: each file with its index, last to first (a draining set is freed as it
    /// is read).
    fn each_last(
        &mut self,
        parts: Parts,
        f: &mut dyn FnMut(usize, &FileProto<'_>) -> Result<(), String>,
    ) -> Result<(), String>;

    /// How many files, from the first, are the user's: the others are built-ins, whose names
    /// a user's relative type names find only when none of the user's match.
    fn set_files(&self) -> usize;
}

impl FileSet for &[FileProto<'_>] {
    fn each(&self, _: Parts, f: &mut dyn FnMut(&FileProto<'_>) -> Result<(), String>) -> Result<(), String> {
        self.iter().try_for_each(f)
    }

    fn each_last(
        &mut self,
        _: Parts,
        f: &mut dyn FnMut(usize, &FileProto<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        self.iter().enumerate().rev().try_for_each(|(i, file)| f(i, file))
    }

    fn set_files(&self) -> usize {
        self.len()
    }
}

impl FileSet for EncodedFiles<'_> {
    fn each(&self, parts: Parts, f: &mut dyn FnMut(&FileProto<'_>) -> Result<(), String>) -> Result<(), String> {
        self.parts(parts).try_for_each(|file| f(&file?))
    }

    fn each_last(
        &mut self,
        parts: Parts,
        f: &mut dyn FnMut(usize, &FileProto<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        EncodedFiles::each_last(self, parts, f)
    }

    fn set_files(&self) -> usize {
        EncodedFiles::set_files(self)
    }
}

/// What each pass of [`Schema::link_set`] reads.
const COUNT: Parts = Parts { messages: true, enums: true, services: true, ..Parts::HEADER };
const DECLARE: Parts = Parts { fields: false, extensions: false, ..Parts::ALL };
const LAST: Parts = Parts { messages: true, fields: true, services: true, ..Parts::HEADER };
const FILE_EXTENSIONS: Parts = Parts { extensions: true, ..Parts::HEADER };
const MESSAGE_EXTENSIONS: Parts = Parts { messages: true, extensions: true, ..Parts::HEADER };

/// What pass 1 of [`Schema::link_set`] leaves for the next ones.
#[derive(Default)]
struct Declared {
    /// Index of each file's first message.
    file_starts: Vec<usize>,
    /// Each message's resolved features, by index.
    features: Vec<Features>,
    /// Whether each message is a MessageSet (`message_set_wire_format`), by index.
    message_sets: Vec<bool>,
}

/// The file's syntax (or edition); the error names the file and what it says.
pub fn syntax_of(file: &FileProto) -> Result<Syntax, String> {
    match (file.syntax.as_deref(), file.edition) {
        (None | Some("proto2"), _) => Ok(Syntax::Proto2),
        (Some("proto3"), _) => Ok(Syntax::Proto3),
        (Some("editions"), Some(EDITION_2023)) => Ok(Syntax::Edition2023),
        (Some("editions"), Some(edition)) => Err(format!(
            "{}: edition {} is not supported (json2grpc reads proto2, proto3 and edition 2023)",
            file.name,
            edition_name(edition)
        )),
        (Some("editions"), None) => Err(format!("{}: syntax \"editions\" without an edition", file.name)),
        (Some(other), _) => {
            Err(format!("{}: syntax \"{other}\" is not supported (use proto2, proto3 or edition 2023)", file.name))
        }
    }
}

/// An `Edition` number as protoc spells it in `edition = "…"`.
fn edition_name(edition: i32) -> String {
    match edition {
        EDITION_PROTO2 => "\"proto2\"".into(),
        EDITION_PROTO3 => "\"proto3\"".into(),
        EDITION_2023 => "\"2023\"".into(),
        EDITION_2024 => "\"2024\"".into(),
        other => format!("number {other}"),
    }
}

/// The file's features: its edition's defaults and what its options set.
fn file_features(file: &FileProto) -> Result<Features, String> {
    Features::defaults(syntax_of(file)?).with(&file.features).map_err(|e| format!("{}: {e}", file.name))
}

/// Every full name a file defines (messages, enums and services, nested ones included).
pub fn defined_names(file: &FileProto) -> Vec<String> {
    fn message(m: &MessageProto, scope: &str, out: &mut Vec<String>) {
        let name = join(scope, &m.name);
        for nested in &m.nested {
            message(nested, &name, out);
        }
        out.extend(m.enums.iter().map(|e| join(&name, &e.name)));
        out.push(name);
    }
    let mut out = Vec::new();
    for m in &file.messages {
        message(m, &file.package, &mut out);
    }
    out.extend(file.enums.iter().map(|e| join(&file.package, &e.name)));
    out.extend(file.services.iter().map(|s| join(&file.package, &s.name)));
    out
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// protoc's default json_name: `foo_bar_baz` → `fooBarBaz`.
pub fn json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::schema::descriptor_proto::{decode_file_set, FeatureSet, ServiceProto};
    use crate::testing::fixtures::editions::field;
    use crate::testing::fixtures::{editions, TEST_DESCRIPTOR_SET};

    fn file<'a>(syntax: Option<&'a str>, messages: Vec<MessageProto<'a>>) -> FileProto<'a> {
        FileProto {
            name: "f.proto".into(),
            package: "p".into(),
            messages,
            syntax: syntax.map(Into::into),
            ..Default::default()
        }
    }

    fn message<'a>(name: &'a str, fields: Vec<FieldProto<'a>>) -> MessageProto<'a> {
        MessageProto { name: name.into(), fields, ..Default::default() }
    }

    #[test]
    fn a_field_keeps_its_kind_and_traits_packed_in_16_bytes_on_wasm32() {
        let names = Arc::new(FieldNames { name: "f".into(), json_name: "f".into() });
        let traits = Traits {
            cardinality: Cardinality::Repeated,
            map: true,
            delimited: true,
            packed: true,
            presence: true,
            verify_utf8: true,
            oneof: Some(3),
            behavior: FieldBehavior { required: true, output_only: true },
        };
        let mut kinds: Vec<Kind> = SCALARS.iter().map(|&s| Kind::Scalar(s)).collect();
        kinds.extend([0, 1, 7, (1 << 30) - 1].into_iter().flat_map(|i| [Kind::Enum(i), Kind::Message(i)]));
        for kind in kinds {
            let field = Field::new(names.clone(), 536_870_911, kind, traits);
            assert_eq!((field.kind(), field.traits(), field.number), (kind, traits, 536_870_911));
        }
        // Every scalar is in the table at its own index (a new one would read as another).
        for (i, &s) in SCALARS.iter().enumerate() {
            assert_eq!(s as usize, i);
        }
        #[cfg(target_arch = "wasm32")]
        assert_eq!(std::mem::size_of::<Field>(), 16);
    }

    fn link_one(syntax: Option<&str>, messages: Vec<MessageProto>) -> Result<Schema, String> {
        Schema::link(&[file(syntax, messages)])
    }

    #[test]
    fn links_the_test_schema() {
        let schema = Schema::link(&decode_file_set(TEST_DESCRIPTOR_SET).unwrap()).unwrap();
        let everything = schema.message_by_name("test.v1.Everything").unwrap();
        let labels = everything.field_by_name("labels").unwrap();
        assert!(labels.map() && !labels.is_list());
        let Kind::Message(entry) = labels.kind() else { panic!() };
        assert!(schema.messages[entry].map_entry);
        assert_eq!(everything.field_by_name("renamed").unwrap().json_name(), "customName");
        assert_eq!(everything.field_by_name("by_number").unwrap().json_name(), "byNumber");
        assert!(everything.field_by_name("colors").unwrap().packed());
        assert!(!everything.field_by_name("tags").unwrap().packed(), "strings are never packed");
        let choice = everything.field_by_name("choice_text").unwrap();
        assert!(
            choice.presence()
                && choice.oneof() == Some(0)
                && !schema.oneofs(schema.message_index("test.v1.Everything").unwrap())[0].synthetic
        );
        let scalars = schema.message_by_name("test.v1.Scalars").unwrap();
        let optional = scalars.field_by_name("f_optional").unwrap();
        assert!(optional.presence());
        let scalars_oneofs = schema.oneofs(schema.message_index("test.v1.Scalars").unwrap());
        assert!(scalars_oneofs[usize::from(optional.oneof().unwrap())].synthetic);
        assert!(!scalars.field_by_name("f_int32").unwrap().presence());
        let things = schema.service("test.v1.Things").unwrap();
        let get = things.methods.iter().find(|m| &*m.name == "Get").unwrap();
        assert_eq!(format!("{}.{}", things.full_name, get.name), "test.v1.Things.Get");
        assert_eq!(schema.message_name(get.input), "test.v1.GetRequest");
        assert_eq!(schema.message_name(get.output), "test.v1.Everything");
        let color = schema.enums.iter().find(|e| &*e.full_name == "test.v1.Color").unwrap();
        assert!(color.values.iter().any(|(n, v)| &**n == "GREEN" && *v == 2));
    }

    #[test]
    fn json_name_falls_back_to_lower_camel_case() {
        assert_eq!(json_name("foo_bar_baz"), "fooBarBaz");
        assert_eq!(json_name("_x__y1_z"), "XY1Z");
        assert_eq!(json_name("already"), "already");
        let schema = link_one(
            Some("proto3"),
            vec![message(
                "M",
                vec![
                    field("a_b", 1, 1, 9, ""),
                    FieldProto { json_name: Some("x".into()), ..field("c_d", 2, 1, 9, "") },
                ],
            )],
        )
        .unwrap();
        let m = &schema.messages[0];
        assert_eq!(m.fields[0].json_name(), "aB");
        assert_eq!(m.fields[1].json_name(), "x");
    }

    #[test]
    fn packed_and_presence_follow_the_syntax() {
        let fields = || {
            vec![
                field("r", 1, 3, 5, ""),
                FieldProto { packed: Some(false), ..field("unpacked", 2, 3, 5, "") },
                FieldProto { packed: Some(true), ..field("packed", 3, 3, 5, "") },
                field("s", 4, 1, 5, ""),
                field("m", 5, 1, 11, ".p.M"),
                FieldProto { proto3_optional: true, oneof_index: Some(0), ..field("o", 6, 1, 5, "") },
                field("strings", 7, 3, 9, ""),
            ]
        };
        let with_oneof = |fields| MessageProto { oneofs: vec!["_o".into()], ..message("M", fields) };
        let proto3 = link_one(Some("proto3"), vec![with_oneof(fields())]).unwrap();
        let f = &proto3.messages[0].fields;
        assert_eq!(f.iter().map(|f| f.packed()).collect::<Vec<_>>(), [true, false, true, false, false, false, false]);
        assert_eq!(f.iter().map(|f| f.presence()).collect::<Vec<_>>(), [false, false, false, false, true, true, false]);
        assert!(proto3.oneofs(0)[0].synthetic);
        for syntax in [None, Some("proto2")] {
            let proto2 = link_one(syntax, vec![with_oneof(fields())]).unwrap();
            let f = &proto2.messages[0].fields;
            assert_eq!(
                f.iter().map(|f| f.packed()).collect::<Vec<_>>(),
                [false, false, true, false, false, false, false]
            );
            assert_eq!(
                f.iter().map(|f| f.presence()).collect::<Vec<_>>(),
                [false, false, false, true, true, true, false]
            );
        }
    }

    #[test]
    fn type_names_resolve_absolutely_or_relatively() {
        let inner = message("Inner", vec![]);
        let outer = MessageProto {
            nested: vec![inner],
            ..message("Outer", vec![field("a", 1, 1, 11, "Inner"), field("b", 2, 1, 11, "Outer.Inner")])
        };
        let other = message("Other", vec![field("c", 1, 1, 11, ".p.Outer.Inner"), field("d", 2, 1, 0, "Outer")]);
        let other = MessageProto {
            fields: vec![other.fields[0].clone(), FieldProto { kind: None, ..other.fields[1].clone() }],
            ..other
        };
        let schema = link_one(Some("proto3"), vec![outer, other]).unwrap();
        let inner = schema.message_index("p.Outer.Inner").unwrap();
        let outer = schema.message_index("p.Outer").unwrap();
        let fields =
            |name: &str| schema.message_by_name(name).unwrap().fields.iter().map(|f| f.kind()).collect::<Vec<_>>();
        assert_eq!(fields("p.Outer"), [Kind::Message(inner), Kind::Message(inner)]);
        assert_eq!(fields("p.Other"), [Kind::Message(inner), Kind::Message(outer)]);
    }

    #[test]
    fn bad_schemas_are_errors_naming_the_problem() {
        let entry = |fields| MessageProto { map_entry: true, ..message("E", fields) };
        let map_of = |e: MessageProto<'static>| MessageProto {
            nested: vec![e],
            ..message("M", vec![field("m", 1, 3, 11, ".p.M.E")])
        };
        let cases: Vec<(Vec<MessageProto>, &str)> = vec![
            (vec![message("M", vec![field("x", 1, 1, 11, ".p.Missing")])], "\".p.Missing\" is not in the set"),
            (vec![message("M", vec![field("x", 1, 1, 14, ".p.M")])], "is not an enum"),
            (vec![message("M", vec![field("x", 1, 1, 11, "")])], "no type_name"),
            (vec![message("M", vec![field("x", 1, 1, 19, "")])], "invalid type 19"),
            (vec![message("M", vec![field("x", 1, 4, 9, "")])], "invalid label 4"),
            (vec![message("M", vec![field("x", 0, 1, 9, "")])], "invalid field number 0"),
            (vec![message("M", vec![field("x", 1 << 29, 1, 9, "")])], "invalid field number"),
            (vec![message("M", vec![field("x", 19_500, 1, 9, "")])], "invalid field number 19500"),
            (vec![message("M", vec![field("x", 1, 1, 9, ""), field("y", 1, 1, 9, "")])], "number 1 is used twice"),
            (vec![message("M", vec![field("x", 1, 1, 9, ""), field("x", 2, 1, 9, "")])], "used twice"),
            (vec![message("M", vec![FieldProto { oneof_index: Some(0), ..field("x", 1, 1, 9, "") }])], "oneof index"),
            (vec![message("M", vec![]), message("M", vec![])], "\"p.M\" is defined more than once"),
            (
                vec![map_of(entry(vec![field("key", 1, 1, 9, ""), field("value", 3, 1, 9, "")]))],
                "key = 1 and value = 2",
            ),
            (vec![map_of(entry(vec![field("key", 1, 1, 9, "")]))], "key = 1 and value = 2"),
            (vec![map_of(entry(vec![field("k", 1, 1, 9, ""), field("value", 2, 1, 9, "")]))], "key = 1 and value = 2"),
            (vec![map_of(entry(vec![field("key", 1, 1, 2, ""), field("value", 2, 1, 9, "")]))], "map key"),
            (vec![map_of(entry(vec![field("key", 1, 1, 9, ""), field("value", 2, 3, 9, "")]))], "cannot be repeated"),
        ];
        for (messages, expected) in cases {
            let e = link_one(Some("proto3"), messages.clone()).unwrap_err();
            assert!(e.contains(expected), "{messages:?}: {e}");
        }
        // An enum value name declared twice (protoc and Envoy refuse it); an alias is a number
        // declared twice, which stays allowed.
        let values = |names: &[(&'static str, i32)]| EnumProto {
            name: "E".into(),
            values: names.iter().map(|&(n, v)| (n.into(), v)).collect(),
            ..Default::default()
        };
        let with = |e| Schema::link(&[FileProto { enums: vec![e], ..file(Some("proto3"), vec![]) }]);
        let e = with(values(&[("ZERO", 0), ("A", 1), ("B", 2), ("A", 2)])).unwrap_err();
        assert_eq!(e, "p.E.A: the value name is used twice");
        assert!(with(values(&[("ZERO", 0), ("A", 1), ("B", 1)])).is_ok());
    }

    #[test]
    fn bad_files_are_errors() {
        for syntax in ["editions", "", "proto4"] {
            let e = link_one(Some(syntax), vec![]).unwrap_err();
            assert!(e.contains("f.proto") && e.contains(&format!("\"{syntax}\"")), "{e}");
        }
        for (edition, name) in
            [(1001, "edition \"2024\""), (998, "edition \"proto2\""), (99_999, "edition number 99999")]
        {
            let f = FileProto { edition: Some(edition), ..file(Some("editions"), vec![]) };
            let e = Schema::link(&[f]).unwrap_err();
            assert!(e.contains("f.proto") && e.contains(name) && e.contains("not supported"), "{e}");
        }
        let importer = FileProto { dependencies: vec!["missing.proto".into()], ..file(None, vec![]) };
        assert!(Schema::link(&[importer]).unwrap_err().contains("missing.proto"));
        let e = Schema::link(&[file(None, vec![]), file(None, vec![])]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let service = ServiceProto {
            name: "S".into(),
            methods: vec![crate::core::schema::descriptor_proto::MethodProto {
                name: "Call".into(),
                input_type: ".p.Nope".into(),
                output_type: ".p.M".into(),
                ..Default::default()
            }],
        };
        let with_service = FileProto { services: vec![service], ..file(None, vec![message("M", vec![])]) };
        let e = Schema::link(&[with_service]).unwrap_err();
        assert!(e.contains("p.S.Call") && e.contains("input type \".p.Nope\""), "{e}");
    }

    fn edition_file(messages: Vec<MessageProto>, features: FeatureSet) -> FileProto {
        FileProto { edition: Some(1000), features, ..file(Some("editions"), messages) }
    }

    fn fields_of<'s>(schema: &'s Schema, message: &str) -> Vec<&'s Field> {
        schema.message_by_name(message).unwrap().fields.iter().collect()
    }

    #[test]
    fn edition_2023_defaults_and_per_field_features() {
        let schema = Schema::link(&[editions::file_proto()]).unwrap();
        let m = schema.message_by_name("ed.M").unwrap();
        let f = |name: &str| m.field_by_name(name).unwrap();
        // field_presence: EXPLICIT by default.
        assert!(f("explicit_int").presence() && !f("implicit_int").presence());
        assert!(f("required_int").presence() && f("required_int").cardinality() == Cardinality::Required);
        // repeated_field_encoding: PACKED by default.
        assert!(f("packed").packed() && !f("expanded").packed());
        assert!(f("closed_list").packed() && !f("closed_expanded").packed());
        // utf8_validation: VERIFY by default; a map's key and value get the map's features.
        assert!(f("verified").verify_utf8() && !f("raw").verify_utf8());
        let Kind::Message(raw_entry) = f("raw_map").kind() else { panic!() };
        assert!(schema.messages[raw_entry].fields.iter().all(|f| !f.verify_utf8()));
        // message_encoding: LENGTH_PREFIXED by default.
        assert!(f("delimited").delimited() && f("delimited_list").delimited() && !f("prefixed").delimited());
        let inner = schema.message_by_name("ed.M.Inner").unwrap();
        assert!(inner.field_by_name("child").unwrap().delimited());
        assert!(f("inners").map() && !f("inners").delimited());
        // enum_type: OPEN by default.
        let closed = |name: &str| schema.enums.iter().find(|e| &*e.full_name == name).unwrap().closed;
        assert!(closed("ed.Closed") && !closed("ed.Open"));
    }

    #[test]
    fn features_are_inherited_from_file_message_and_oneof() {
        let file_features = FeatureSet {
            field_presence: Some(2),
            utf8_validation: Some(3),
            message_encoding: Some(2),
            enum_type: Some(2),
            ..Default::default()
        };
        let inner = MessageProto {
            features_set: Some(Box::new(FeatureSet { utf8_validation: Some(2), ..Default::default() })),
            enums: vec![editions::enumeration("E", &[("E0", 0)], FeatureSet::default())],
            ..message("Inner", vec![field("s", 1, 1, 9, ""), field("i", 2, 1, 5, "")])
        };
        let outer = MessageProto {
            nested: vec![inner],
            features_set: Some(Box::new(FeatureSet { repeated_field_encoding: Some(2), ..Default::default() })),
            oneofs: vec!["o".into()],
            oneof_features: vec![(0, FeatureSet { message_encoding: Some(1), ..Default::default() })],
            ..message(
                "Outer",
                vec![
                    field("s", 1, 1, 9, ""),
                    field("i", 2, 1, 5, ""),
                    field("list", 3, 3, 5, ""),
                    field("m", 4, 1, 11, ".p.Outer.Inner"),
                    FieldProto { oneof_index: Some(0), ..field("in_oneof", 5, 1, 11, ".p.Outer.Inner") },
                    editions::with(field("explicit", 6, 1, 5, ""), editions::presence(1)),
                ],
            )
        };
        let schema = Schema::link(&[edition_file(vec![outer], file_features)]).unwrap();
        let outer = fields_of(&schema, "p.Outer");
        // From the file: implicit presence, no UTF-8 check, delimited messages.
        assert!(!outer[0].verify_utf8() && !outer[1].presence() && outer[3].delimited());
        // From the message: expanded repeated fields.
        assert!(!outer[2].packed());
        // From the oneof: length-prefixed; oneof members always have presence.
        assert!(!outer[4].delimited() && outer[4].presence());
        assert!(outer[5].presence());
        // A nested message inherits the enclosing message's features, then sets its own.
        let inner = fields_of(&schema, "p.Outer.Inner");
        assert!(inner[0].verify_utf8() && !inner[1].presence());
        assert!(schema.enums[0].closed, "enum_type from the file");
    }

    #[test]
    fn proto2_and_proto3_map_to_their_edition_defaults() {
        let m = || MessageProto {
            enums: vec![editions::enumeration("E", &[("E0", 0)], FeatureSet::default())],
            ..message("M", vec![field("s", 1, 1, 9, ""), field("g", 2, 1, 10, ".p.M")])
        };
        let proto2 = link_one(Some("proto2"), vec![m()]).unwrap();
        let f = fields_of(&proto2, "p.M");
        assert!(!f[0].verify_utf8() && f[0].presence() && f[1].delimited() && proto2.enums[0].closed);
        // Features written in a proto2/proto3 file are ignored (protoc refuses them there).
        let with_features = FileProto { features: editions::utf8_none(), ..file(Some("proto3"), vec![]) };
        let proto3 = Schema::link(&[FileProto {
            messages: vec![message("M", vec![field("s", 1, 1, 9, "")])],
            enums: vec![editions::enumeration("E", &[("E0", 0)], editions::closed())],
            ..with_features
        }])
        .unwrap();
        assert!(fields_of(&proto3, "p.M")[0].verify_utf8() && !proto3.enums[0].closed);
    }

    #[test]
    fn maps_stay_length_prefixed_under_delimited() {
        let entry = MessageProto {
            map_entry: true,
            ..message("VEntry", vec![field("key", 1, 1, 9, ""), field("value", 2, 1, 11, ".p.M")])
        };
        let m = |map_field: FieldProto<'static>| MessageProto {
            nested: vec![entry.clone()],
            ..message("M", vec![map_field, field("child", 2, 1, 11, ".p.M")])
        };
        let schema =
            Schema::link(&[edition_file(vec![m(field("v", 1, 3, 11, ".p.M.VEntry"))], editions::delimited())]).unwrap();
        let fields = fields_of(&schema, "p.M");
        assert!(fields[0].map() && !fields[0].delimited(), "the map field");
        assert!(fields[1].delimited(), "a message field");
        assert!(!fields_of(&schema, "p.M.VEntry")[1].delimited(), "the entry's message value");
        let explicit = editions::with(field("v", 1, 3, 11, ".p.M.VEntry"), editions::delimited());
        let e = Schema::link(&[edition_file(vec![m(explicit)], FeatureSet::default())]).unwrap_err();
        assert!(e.contains("p.M.v") && e.contains("map field"), "{e}");
    }

    #[test]
    fn invalid_features_and_proto2_forms_in_editions_are_errors() {
        let cases: Vec<(FieldProto, &str)> = vec![
            (
                editions::with(field("x", 1, 1, 5, ""), editions::presence(7)),
                "invalid value 7 for features.field_presence",
            ),
            (
                editions::with(field("x", 1, 1, 5, ""), FeatureSet { utf8_validation: Some(1), ..Default::default() }),
                "features.utf8_validation",
            ),
            (
                editions::with(field("x", 1, 1, 5, ""), FeatureSet { json_format: Some(0), ..Default::default() }),
                "features.json_format",
            ),
            (field("x", 1, 2, 5, ""), "required is not allowed in editions"),
            (field("x", 1, 1, 10, ".p.M"), "group types are not allowed in editions"),
        ];
        for (f, expected) in cases {
            let e =
                Schema::link(&[edition_file(vec![message("M", vec![f.clone()])], FeatureSet::default())]).unwrap_err();
            assert!(e.contains("p.M.x") && e.contains(expected), "{f:?}: {e}");
        }
        let bad_file = FeatureSet { enum_type: Some(3), ..Default::default() };
        let e = Schema::link(&[edition_file(vec![], bad_file)]).unwrap_err();
        assert!(e.contains("f.proto") && e.contains("features.enum_type"), "{e}");
        // json_format = LEGACY_BEST_EFFORT is accepted.
        let legacy = FeatureSet { json_format: Some(2), ..Default::default() };
        assert!(Schema::link(&[edition_file(vec![message("M", vec![])], legacy)]).is_ok());
    }

    #[test]
    fn extensions_become_bracketed_fields_of_the_messages_they_extend() {
        let ext = |name: &'static str, number, extendee: &'static str| FieldProto {
            extendee: extendee.into(),
            ..field(name, number, 1, 5, "")
        };
        let holder = MessageProto { extensions: vec![ext("inner", 101, "M")], ..message("Holder", vec![]) };
        let set = MessageProto { message_set: true, ..message("Set", vec![]) };
        let f = FileProto {
            extensions: vec![ext("top", 100, ".p.M"), ext("lost", 102, ".p.Missing"), ext("to_set", 5, ".p.Set")],
            ..file(Some("proto3"), vec![message("M", vec![field("x", 1, 1, 5, "")]), holder, set])
        };
        let schema = Schema::link(std::slice::from_ref(&f)).unwrap();
        let m = schema.message_by_name("p.M").unwrap();
        let top = m.field_by_json_name("[p.top]").unwrap();
        assert_eq!((top.name(), top.number, top.presence()), ("[p.top]", 100, true));
        assert_eq!(m.field(101).map(|f| f.json_name()), Some("[p.Holder.inner]"));
        assert!(schema.message_by_name("p.Set").unwrap().fields.is_empty(), "MessageSet extensions stay unknown");
        let clash = FileProto { extensions: vec![ext("clash", 1, ".p.M")], ..f };
        let e = Schema::link(&[clash]).unwrap_err();
        assert!(e.contains("extension p.clash") && e.contains("used twice"), "{e}");
    }

    #[test]
    fn a_message_of_more_than_65535_fields_is_refused() {
        let numbers = (1..).filter(|n| !(19_000..20_000).contains(n));
        let names: Vec<String> = (0..65_536).map(|i| format!("f{i}")).collect();
        let fields = |n: usize| {
            names.iter().zip(numbers.clone()).take(n).map(|(name, number)| field(name, number, 1, 9, "")).collect()
        };
        assert!(link_one(Some("proto3"), vec![message("M", fields(65_535))]).is_ok());
        let e = link_one(Some("proto3"), vec![message("M", fields(65_536))]).unwrap_err();
        assert_eq!(e, "p.M: a message with more than 65,535 fields (extensions included) is not supported");
    }

    #[test]
    fn the_first_field_to_repeat_a_number_or_name_is_named() {
        let s = |name, number| field(name, number, 1, 9, "");
        let cases = [
            (vec![s("a", 1), s("b", 2), s("c", 2), s("d", 1)], "p.M.c: field number 2 is used twice"),
            (vec![s("a", 1), s("b", 2), s("a", 3), s("d", 2)], "p.M.a: the name is used twice"),
            (vec![s("a", 1), s("b", 1), s("b", 3)], "p.M.b: field number 1 is used twice"),
            // In field order, as protoc: a duplicate before a field that does not link, and after.
            (vec![s("a", 1), s("a", 2), field("c", 3, 1, 11, ".p.Missing")], "p.M.a: the name is used twice"),
            (
                vec![field("c", 3, 1, 11, ".p.Missing"), s("a", 1), s("a", 2)],
                "p.M.c: type \".p.Missing\" is not in the set",
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(link_one(Some("proto3"), vec![message("M", fields)]).unwrap_err(), expected);
        }
        // Two extensions of one message with one number, as protoc refuses.
        let ext = |name: &'static str| FieldProto { extendee: ".p.M".into(), ..field(name, 7, 1, 5, "") };
        let f =
            FileProto { extensions: vec![ext("one"), ext("two")], ..file(Some("proto2"), vec![message("M", vec![])]) };
        assert_eq!(Schema::link(&[f]).unwrap_err(), "extension p.two: field number 7 of p.M is used twice");
    }

    #[test]
    fn groups_are_marked() {
        let group = message("G", vec![]);
        let m = MessageProto { nested: vec![group], ..message("M", vec![field("g", 1, 1, 10, ".p.M.G")]) };
        let schema = link_one(None, vec![m]).unwrap();
        let g = &schema.message_by_name("p.M").unwrap().fields[0];
        assert!(g.delimited() && g.presence());
    }
}
