//! The descriptor model json2grpc works with: the messages, enums and services of a
//! FileDescriptorSet, linked (type names resolved to indices) and checked once per
//! configuration, so nothing later can meet a dangling or ill-formed type.
//!
//! Types are referred to by index ([`Kind::Message`], [`Method::input`], …); the fast codec's
//! plans use the same indices. Checked here: syntax (proto2/proto3 only: editions change
//! field semantics through features this model does not read), imports present, names unique,
//! every referenced type present and of the right sort, field numbers valid and unique, map
//! entries shaped as protoc makes them. Derived here: json_name when absent, packed encoding,
//! presence.
use super::descriptor_proto::{EnumProto, FieldProto, FileProto, MessageProto};
use super::fnv::FnvMap;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Box<str>,
    pub json_name: Box<str>,
    pub number: u32,
    pub kind: Kind,
    pub cardinality: Cardinality,
    /// A repeated field of a map entry type.
    pub map: bool,
    /// A proto2 group (wire types 3 and 4), which the fast codec does not handle.
    pub group: bool,
    /// Repeated scalars written as one length-delimited run.
    pub packed: bool,
    /// Set/unset is observable: message fields, proto2 optional fields, proto3 `optional`,
    /// oneof members.
    pub presence: bool,
    /// Index into the message's `oneofs` (synthetic ones included).
    pub oneof: Option<usize>,
}

impl Field {
    /// Repeated and not a map.
    pub fn is_list(&self) -> bool {
        self.cardinality == Cardinality::Repeated && !self.map
    }

    pub fn is_repeated(&self) -> bool {
        self.cardinality == Cardinality::Repeated
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
    pub full_name: Box<str>,
    /// In declaration order.
    pub fields: Vec<Field>,
    pub oneofs: Vec<Oneof>,
    /// The synthetic entry type of a map field (fields `key = 1`, `value = 2`).
    pub map_entry: bool,
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }

    pub fn field_by_name(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| &*f.name == name)
    }

    pub fn field_by_json_name(&self, json_name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| &*f.json_name == json_name)
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
    pub full_name: Box<str>,
    /// Declared values (aliases included), in order.
    pub values: Vec<(Box<str>, i32)>,
}

impl Enum {
    /// The number of a value name; in any letter case if `case_insensitive`.
    pub fn number(&self, name: &str, case_insensitive: bool) -> Option<i32> {
        let exact = self.values.iter().find(|(n, _)| &**n == name);
        let found = exact.or_else(|| match case_insensitive {
            true => self.values.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)),
            false => None,
        });
        found.map(|(_, v)| *v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub full_name: Box<str>,
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub name: Box<str>,
    /// `pkg.Service.Method`.
    pub full_name: Box<str>,
    /// Indices into [`Schema::messages`].
    pub input: usize,
    pub output: usize,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// The encoded `MethodOptions` (for the `google.api.http` rule).
    pub options: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Def {
    Message(usize),
    Enum(usize),
    Service,
}

/// Every message, enum and service of a descriptor set, linked and checked.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub messages: Vec<Message>,
    pub enums: Vec<Enum>,
    pub services: Vec<Service>,
    names: FnvMap<Box<str>, Def>,
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
        match self.names.get(full_name) {
            Some(Def::Message(i)) => Some(*i),
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
        check_files(files)?;
        let mut schema = Schema::default();
        // Pass 1: every type gets its full name and index, so fields can refer to any type.
        let mut pending: Vec<(&MessageProto, Syntax)> = Vec::new();
        for file in files {
            let syntax = syntax_of(file)?;
            for message in &file.messages {
                schema.declare_message(message, &file.package, syntax, &mut pending)?;
            }
            for e in &file.enums {
                schema.declare_enum(e, &file.package)?;
            }
            for s in &file.services {
                let full_name = join(&file.package, &s.name);
                schema.declare(&full_name, Def::Service)?;
            }
        }
        // Pass 2: fields (pending[i] is messages[i]).
        for (index, (proto, syntax)) in pending.iter().enumerate() {
            let fields = schema.link_fields(index, proto, *syntax)?;
            let synthetic: Vec<bool> = (0..proto.oneofs.len())
                .map(|o| {
                    let mut members = proto.fields.iter().filter(|f| f.oneof_index == i32::try_from(o).ok());
                    matches!((members.next(), members.next()), (Some(only), None) if only.proto3_optional)
                })
                .collect();
            if let Some(m) = schema.messages.get_mut(index) {
                m.fields = fields;
                m.oneofs = proto
                    .oneofs
                    .iter()
                    .zip(synthetic)
                    .map(|(name, synthetic)| Oneof { name: name.as_str().into(), synthetic })
                    .collect();
            }
        }
        schema.link_maps()?;
        // Pass 3: services.
        for file in files {
            for s in &file.services {
                let full_name = join(&file.package, &s.name);
                let mut methods = Vec::with_capacity(s.methods.len());
                for m in &s.methods {
                    let method_name = format!("{full_name}.{}", m.name);
                    let message = |type_name: &str, what: &str| match schema.resolve(type_name, &full_name) {
                        Some(Def::Message(i)) => Ok(i),
                        _ => Err(format!("{method_name}: {what} type \"{type_name}\" is not a message in the set")),
                    };
                    methods.push(Method {
                        name: m.name.as_str().into(),
                        input: message(&m.input_type, "input")?,
                        output: message(&m.output_type, "output")?,
                        full_name: method_name.into(),
                        client_streaming: m.client_streaming,
                        server_streaming: m.server_streaming,
                        options: m.options.clone(),
                    });
                }
                schema.services.push(Service { full_name: full_name.into(), methods });
            }
        }
        Ok(schema)
    }

    fn declare(&mut self, full_name: &str, def: Def) -> Result<(), String> {
        if self.names.insert(full_name.into(), def).is_some() {
            return Err(format!("\"{full_name}\" is defined more than once"));
        }
        Ok(())
    }

    fn declare_message<'f>(
        &mut self,
        proto: &'f MessageProto,
        scope: &str,
        syntax: Syntax,
        pending: &mut Vec<(&'f MessageProto, Syntax)>,
    ) -> Result<(), String> {
        let full_name = join(scope, &proto.name);
        self.declare(&full_name, Def::Message(self.messages.len()))?;
        self.messages.push(Message {
            full_name: full_name.as_str().into(),
            fields: Vec::new(),
            oneofs: Vec::new(),
            map_entry: proto.map_entry,
        });
        pending.push((proto, syntax));
        for nested in &proto.nested {
            self.declare_message(nested, &full_name, syntax, pending)?;
        }
        for e in &proto.enums {
            self.declare_enum(e, &full_name)?;
        }
        Ok(())
    }

    fn declare_enum(&mut self, proto: &EnumProto, scope: &str) -> Result<(), String> {
        let full_name = join(scope, &proto.name);
        self.declare(&full_name, Def::Enum(self.enums.len()))?;
        let values = proto.values.iter().map(|(n, v)| (n.as_str().into(), *v)).collect();
        self.enums.push(Enum { full_name: full_name.into(), values });
        Ok(())
    }

    /// A type name as written in a descriptor: `.pkg.Type` (what protoc writes), or relative
    /// to `scope` (searched outwards, as protoc resolves names).
    fn resolve(&self, name: &str, scope: &str) -> Option<Def> {
        if let Some(absolute) = name.strip_prefix('.') {
            return self.names.get(absolute).copied();
        }
        let mut scope = scope;
        loop {
            let candidate = join(scope, name);
            if let Some(def) = self.names.get(candidate.as_str()) {
                return Some(*def);
            }
            if scope.is_empty() {
                return None;
            }
            scope = scope.rsplit_once('.').map_or("", |(outer, _)| outer);
        }
    }

    fn link_fields(&self, index: usize, proto: &MessageProto, syntax: Syntax) -> Result<Vec<Field>, String> {
        let message_name = self.message_name(index);
        let mut fields: Vec<Field> = Vec::with_capacity(proto.fields.len());
        for f in &proto.fields {
            let at = |e: String| format!("{message_name}.{}: {e}", f.name);
            let field = self.link_field(f, message_name, proto.oneofs.len(), syntax).map_err(at)?;
            if fields.iter().any(|other| other.number == field.number) {
                return Err(at(format!("field number {} is used twice", field.number)));
            }
            if fields.iter().any(|other| other.name == field.name) {
                return Err(at("the name is used twice".to_string()));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn link_field(&self, f: &FieldProto, scope: &str, oneofs: usize, syntax: Syntax) -> Result<Field, String> {
        let number = u32::try_from(f.number)
            .ok()
            .filter(|n| (1..=MAX_FIELD_NUMBER).contains(n) && !RESERVED_FIELD_NUMBERS.contains(n))
            .ok_or_else(|| format!("invalid field number {}", f.number))?;
        let cardinality = match f.label {
            None | Some(1) => Cardinality::Optional,
            Some(2) => Cardinality::Required,
            Some(3) => Cardinality::Repeated,
            Some(other) => return Err(format!("invalid label {other}")),
        };
        let (kind, group) = self.field_kind(f, scope)?;
        let oneof = match f.oneof_index {
            None => None,
            Some(i) => Some(usize::try_from(i).ok().filter(|i| *i < oneofs).ok_or("invalid oneof index")?),
        };
        let packable = match kind {
            Kind::Scalar(s) => s.wire_type() != 2,
            Kind::Enum(_) => true,
            Kind::Message(_) => false,
        };
        let repeated = cardinality == Cardinality::Repeated;
        Ok(Field {
            name: f.name.as_str().into(),
            json_name: f.json_name.clone().unwrap_or_else(|| json_name(&f.name)).into(),
            number,
            kind,
            cardinality,
            map: false,
            group,
            packed: repeated && packable && f.packed.unwrap_or(syntax == Syntax::Proto3),
            presence: f.proto3_optional
                || oneof.is_some()
                || (!repeated && (matches!(kind, Kind::Message(_)) || syntax == Syntax::Proto2)),
            oneof,
        })
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
        let found = self.resolve(&f.type_name, scope);
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
            let key = m.field(1).filter(|k| &*k.name == "key");
            let value = m.field(2);
            let bad = |what: &str| format!("{}: {what}", m.full_name);
            let (Some(key), Some(value), 2) = (key, value, m.fields.len()) else {
                return Err(bad("a map entry must have exactly the fields key = 1 and value = 2"));
            };
            if key.is_repeated() || value.is_repeated() {
                return Err(bad("a map entry's key and value cannot be repeated"));
            }
            if !matches!(key.kind, Kind::Scalar(s) if s.is_map_key()) {
                return Err(bad("a map key must be an integer, bool or string"));
            }
        }
        let entries: Vec<bool> = self.messages.iter().map(|m| m.map_entry).collect();
        for m in &mut self.messages {
            for f in &mut m.fields {
                if let (Kind::Message(entry), Cardinality::Repeated) = (f.kind, f.cardinality) {
                    f.map = entries.get(entry).copied().unwrap_or(false) && !f.group;
                }
            }
        }
        Ok(())
    }
}

/// The largest field number, and the numbers protobuf keeps for itself.
const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;
const RESERVED_FIELD_NUMBERS: std::ops::RangeInclusive<u32> = 19_000..=19_999;

/// Refuses syntaxes other than proto2/proto3, duplicate file names and missing imports.
fn check_files(files: &[FileProto]) -> Result<(), String> {
    let mut names: FnvMap<&str, ()> = FnvMap::default();
    for file in files {
        syntax_of(file)?;
        if names.insert(&file.name, ()).is_some() {
            return Err(format!("{}: the file is in the set twice", file.name));
        }
    }
    for file in files {
        if let Some(missing) = file.dependencies.iter().find(|d| !names.contains_key(d.as_str())) {
            return Err(format!("{}: imports \"{missing}\", which is not in the set", file.name));
        }
    }
    Ok(())
}

/// The file's syntax; the error names the file and what it says.
pub fn syntax_of(file: &FileProto) -> Result<Syntax, String> {
    match file.syntax.as_deref() {
        None | Some("proto2") => Ok(Syntax::Proto2),
        Some("proto3") => Ok(Syntax::Proto3),
        Some(other) => Err(format!("{}: syntax \"{other}\" is not supported (use proto2 or proto3)", file.name)),
    }
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
    use crate::core::descriptor_proto::{decode_file_set, ServiceProto};
    use crate::core::testutil::TEST_DESCRIPTOR_SET;

    fn field(name: &str, number: i32, label: i32, kind: i32, type_name: &str) -> FieldProto {
        FieldProto {
            name: name.into(),
            number,
            label: Some(label),
            kind: Some(kind),
            type_name: type_name.into(),
            ..Default::default()
        }
    }

    fn file(syntax: Option<&str>, messages: Vec<MessageProto>) -> FileProto {
        FileProto {
            name: "f.proto".into(),
            package: "p".into(),
            messages,
            syntax: syntax.map(Into::into),
            ..Default::default()
        }
    }

    fn message(name: &str, fields: Vec<FieldProto>) -> MessageProto {
        MessageProto { name: name.into(), fields, ..Default::default() }
    }

    fn link_one(syntax: Option<&str>, messages: Vec<MessageProto>) -> Result<Schema, String> {
        Schema::link(&[file(syntax, messages)])
    }

    #[test]
    fn links_the_test_schema() {
        let schema = Schema::link(&decode_file_set(TEST_DESCRIPTOR_SET).unwrap()).unwrap();
        let everything = schema.message_by_name("test.v1.Everything").unwrap();
        let labels = everything.field_by_name("labels").unwrap();
        assert!(labels.map && !labels.is_list());
        let Kind::Message(entry) = labels.kind else { panic!() };
        assert!(schema.messages[entry].map_entry);
        assert_eq!(&*everything.field_by_name("renamed").unwrap().json_name, "customName");
        assert_eq!(&*everything.field_by_name("by_number").unwrap().json_name, "byNumber");
        assert!(everything.field_by_name("colors").unwrap().packed);
        assert!(!everything.field_by_name("tags").unwrap().packed, "strings are never packed");
        let choice = everything.field_by_name("choice_text").unwrap();
        assert!(choice.presence && choice.oneof == Some(0) && !everything.oneofs[0].synthetic);
        let scalars = schema.message_by_name("test.v1.Scalars").unwrap();
        let optional = scalars.field_by_name("f_optional").unwrap();
        assert!(optional.presence);
        assert!(scalars.oneofs[optional.oneof.unwrap()].synthetic);
        assert!(!scalars.field_by_name("f_int32").unwrap().presence);
        let things = schema.service("test.v1.Things").unwrap();
        let get = things.methods.iter().find(|m| &*m.name == "Get").unwrap();
        assert_eq!(&*get.full_name, "test.v1.Things.Get");
        assert_eq!(schema.message_name(get.input), "test.v1.GetRequest");
        assert_eq!(schema.message_name(get.output), "test.v1.Everything");
        let color = schema.enums.iter().find(|e| &*e.full_name == "test.v1.Color").unwrap();
        assert_eq!(color.number("GREEN", false), Some(2));
        assert_eq!(color.number("green", false), None);
        assert_eq!(color.number("green", true), Some(2));
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
        assert_eq!(&*m.fields[0].json_name, "aB");
        assert_eq!(&*m.fields[1].json_name, "x");
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
        assert_eq!(f.iter().map(|f| f.packed).collect::<Vec<_>>(), [true, false, true, false, false, false, false]);
        assert_eq!(f.iter().map(|f| f.presence).collect::<Vec<_>>(), [false, false, false, false, true, true, false]);
        assert!(proto3.messages[0].oneofs[0].synthetic);
        for syntax in [None, Some("proto2")] {
            let proto2 = link_one(syntax, vec![with_oneof(fields())]).unwrap();
            let f = &proto2.messages[0].fields;
            assert_eq!(
                f.iter().map(|f| f.packed).collect::<Vec<_>>(),
                [false, false, true, false, false, false, false]
            );
            assert_eq!(
                f.iter().map(|f| f.presence).collect::<Vec<_>>(),
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
            |name: &str| schema.message_by_name(name).unwrap().fields.iter().map(|f| f.kind).collect::<Vec<_>>();
        assert_eq!(fields("p.Outer"), [Kind::Message(inner), Kind::Message(inner)]);
        assert_eq!(fields("p.Other"), [Kind::Message(inner), Kind::Message(outer)]);
    }

    #[test]
    fn bad_schemas_are_errors_naming_the_problem() {
        let entry = |fields| MessageProto { map_entry: true, ..message("E", fields) };
        let map_of =
            |e: MessageProto| MessageProto { nested: vec![e], ..message("M", vec![field("m", 1, 3, 11, ".p.M.E")]) };
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
    }

    #[test]
    fn bad_files_are_errors() {
        for syntax in ["editions", "", "proto4"] {
            let e = link_one(Some(syntax), vec![]).unwrap_err();
            assert!(e.contains("f.proto") && e.contains(&format!("\"{syntax}\"")), "{e}");
        }
        let importer = FileProto { dependencies: vec!["missing.proto".into()], ..file(None, vec![]) };
        assert!(Schema::link(&[importer]).unwrap_err().contains("missing.proto"));
        let e = Schema::link(&[file(None, vec![]), file(None, vec![])]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let service = ServiceProto {
            name: "S".into(),
            methods: vec![crate::core::descriptor_proto::MethodProto {
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

    #[test]
    fn groups_are_marked() {
        let group = message("G", vec![]);
        let m = MessageProto { nested: vec![group], ..message("M", vec![field("g", 1, 1, 10, ".p.M.G")]) };
        let schema = link_one(None, vec![m]).unwrap();
        let g = &schema.message_by_name("p.M").unwrap().fields[0];
        assert!(g.group && g.presence);
    }
}
