//! Shared fixtures of the unit tests.
use prost_reflect::{DescriptorPool, MessageDescriptor};

use crate::core::schema::descriptors::load_schema;
use crate::core::schema::Schema;
use crate::core::transcoder::Transcoder;
use base64::Engine as _;

/// The descriptor set of `filter/testdata/transcode_test.proto`, `lenient_test.proto` and
/// `rest_test.proto` (checked in; `tests/checked_in_descriptors.rs` keeps it current).
pub const TEST_DESCRIPTOR_SET: &[u8] = include_bytes!("../../testdata/testdata.pb");

/// The OpenAPI generator's test schema (`filter/testdata/openapi_test.proto`, with its
/// comments).
pub const OPENAPI_TEST_SET: &[u8] = include_bytes!("../../testdata/openapi_test.pb");

/// The test set as the filter loads it (built-ins added).
pub fn schema() -> Schema {
    load_schema(TEST_DESCRIPTOR_SET).unwrap()
}

/// The test set in a prost-reflect pool (the reference), built-ins added.
pub fn pool() -> DescriptorPool {
    crate::testing::reflect_pool::load_pool(TEST_DESCRIPTOR_SET).unwrap()
}

/// A transcoder for test.v1.Things with extra config keys (a JSON object body without braces).
pub fn things_transcoder(extra: &str) -> Transcoder {
    let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
    let sep = if extra.is_empty() { "" } else { "," };
    let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Things"]{sep}{extra}}}"#);
    Transcoder::from_json(config.as_bytes()).unwrap()
}

pub fn message(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).unwrap()
}

/// Editions fixtures: descriptor protos built in code (protox, which compiles the other test
/// protos, does not read `edition = "2023"` files) and encoded as protoc writes them.
pub mod editions {
    use crate::core::codec::wire::write_varint;
    use crate::core::schema::descriptor_proto::{
        EnumProto, FeatureSet, FieldProto, FileProto, MessageProto, MethodProto, ServiceProto,
    };
    use crate::core::schema::descriptors::{HttpRule, Pattern, HTTP_RULE_EXTENSION};

    pub const EDITION_2023: i32 = 1000;
    /// `FieldDescriptorProto.Type` and `.Label` numbers.
    pub const INT32: i32 = 5;
    pub const STRING: i32 = 9;
    pub const GROUP: i32 = 10;
    pub const MESSAGE: i32 = 11;
    pub const ENUM: i32 = 14;
    pub const OPTIONAL: i32 = 1;
    pub const REPEATED: i32 = 3;

    pub fn field<'a>(name: &'a str, number: i32, label: i32, kind: i32, type_name: &'a str) -> FieldProto<'a> {
        FieldProto {
            name: name.into(),
            number,
            label: Some(label),
            kind: Some(kind),
            type_name: type_name.into(),
            ..Default::default()
        }
    }

    pub fn with(field: FieldProto<'_>, features: FeatureSet) -> FieldProto<'_> {
        FieldProto { features_set: (features != FeatureSet::default()).then(|| Box::new(features)), ..field }
    }

    pub fn message<'a>(name: &'a str, fields: Vec<FieldProto<'a>>) -> MessageProto<'a> {
        MessageProto { name: name.into(), fields, ..Default::default() }
    }

    /// The entry type protoc makes for `map<key, value> <field> = …`.
    pub fn map_entry<'a>(name: &'a str, key: i32, value: i32, value_type: &'a str) -> MessageProto<'a> {
        MessageProto {
            map_entry: true,
            ..message(name, vec![field("key", 1, OPTIONAL, key, ""), field("value", 2, OPTIONAL, value, value_type)])
        }
    }

    pub fn enumeration<'a>(name: &'a str, values: &[(&'a str, i32)], features: FeatureSet) -> EnumProto<'a> {
        EnumProto { name: name.into(), values: values.iter().map(|(n, v)| ((*n).into(), *v)).collect(), features }
    }

    pub fn file<'a>(
        name: &'a str,
        messages: Vec<MessageProto<'a>>,
        enums: Vec<EnumProto<'a>>,
        features: FeatureSet,
    ) -> FileProto<'a> {
        FileProto {
            name: name.into(),
            package: "ed".into(),
            messages,
            enums,
            syntax: Some("editions".into()),
            edition: Some(EDITION_2023),
            features,
            ..Default::default()
        }
    }

    pub fn presence(v: i32) -> FeatureSet {
        FeatureSet { field_presence: Some(v), ..Default::default() }
    }

    pub fn closed() -> FeatureSet {
        FeatureSet { enum_type: Some(2), ..Default::default() }
    }

    pub fn expanded() -> FeatureSet {
        FeatureSet { repeated_field_encoding: Some(2), ..Default::default() }
    }

    pub fn utf8_none() -> FeatureSet {
        FeatureSet { utf8_validation: Some(3), ..Default::default() }
    }

    pub fn delimited() -> FeatureSet {
        FeatureSet { message_encoding: Some(2), ..Default::default() }
    }

    /// `ed.proto` (edition 2023, package `ed`):
    ///
    /// ```proto
    /// enum Open { OPEN_ZERO = 0; OPEN_ONE = 1; }
    /// enum Closed { option features.enum_type = CLOSED; CLOSED_ZERO = 0; CLOSED_ONE = 1; }
    /// message M {
    ///   message Inner { int32 a = 1; Inner child = 2 [features.message_encoding = DELIMITED]; string s = 3; }
    ///   int32 explicit_int = 1;
    ///   int32 implicit_int = 2 [features.field_presence = IMPLICIT];
    ///   Closed closed = 3;
    ///   repeated Closed closed_list = 4;
    ///   repeated Closed closed_expanded = 5 [features.repeated_field_encoding = EXPANDED];
    ///   map<string, Closed> closed_map = 6;
    ///   Open open = 7;
    ///   repeated int32 packed = 8;
    ///   repeated int32 expanded = 9 [features.repeated_field_encoding = EXPANDED];
    ///   string verified = 10;
    ///   string raw = 11 [features.utf8_validation = NONE];
    ///   map<string, string> raw_map = 12 [features.utf8_validation = NONE];  // copied to key and value
    ///   Inner delimited = 13 [features.message_encoding = DELIMITED];
    ///   repeated Inner delimited_list = 14 [features.message_encoding = DELIMITED];
    ///   Inner prefixed = 15;
    ///   map<string, Inner> inners = 16;
    ///   int32 required_int = 17 [features.field_presence = LEGACY_REQUIRED];
    /// }
    /// service S {
    ///   rpc Get(M) returns (M) { option (google.api.http) = { get: "/v1/{delimited.s}" }; }
    ///   rpc Put(M) returns (M) { option (google.api.http) = { put: "/v1/put", body: "delimited" response_body: "delimited" }; }
    /// }
    /// ```
    pub fn file_proto() -> FileProto<'static> {
        let inner = message(
            "Inner",
            vec![
                field("a", 1, OPTIONAL, INT32, ""),
                with(field("child", 2, OPTIONAL, MESSAGE, ".ed.M.Inner"), delimited()),
                field("s", 3, OPTIONAL, STRING, ""),
            ],
        );
        let utf8_none_string =
            |name: &'static str, number| with(field(name, number, OPTIONAL, STRING, ""), utf8_none());
        let raw_map_entry = MessageProto {
            fields: vec![utf8_none_string("key", 1), utf8_none_string("value", 2)],
            ..map_entry("RawMapEntry", STRING, STRING, "")
        };
        let m = MessageProto {
            nested: vec![
                inner,
                map_entry("ClosedMapEntry", STRING, ENUM, ".ed.Closed"),
                raw_map_entry,
                map_entry("InnersEntry", STRING, MESSAGE, ".ed.M.Inner"),
            ],
            ..message(
                "M",
                vec![
                    field("explicit_int", 1, OPTIONAL, INT32, ""),
                    with(field("implicit_int", 2, OPTIONAL, INT32, ""), presence(2)),
                    field("closed", 3, OPTIONAL, ENUM, ".ed.Closed"),
                    field("closed_list", 4, REPEATED, ENUM, ".ed.Closed"),
                    with(field("closed_expanded", 5, REPEATED, ENUM, ".ed.Closed"), expanded()),
                    field("closed_map", 6, REPEATED, MESSAGE, ".ed.M.ClosedMapEntry"),
                    field("open", 7, OPTIONAL, ENUM, ".ed.Open"),
                    field("packed", 8, REPEATED, INT32, ""),
                    with(field("expanded", 9, REPEATED, INT32, ""), expanded()),
                    field("verified", 10, OPTIONAL, STRING, ""),
                    utf8_none_string("raw", 11),
                    with(field("raw_map", 12, REPEATED, MESSAGE, ".ed.M.RawMapEntry"), utf8_none()),
                    with(field("delimited", 13, OPTIONAL, MESSAGE, ".ed.M.Inner"), delimited()),
                    with(field("delimited_list", 14, REPEATED, MESSAGE, ".ed.M.Inner"), delimited()),
                    field("prefixed", 15, OPTIONAL, MESSAGE, ".ed.M.Inner"),
                    field("inners", 16, REPEATED, MESSAGE, ".ed.M.InnersEntry"),
                    with(field("required_int", 17, OPTIONAL, INT32, ""), presence(3)),
                ],
            )
        };
        let rule = |pattern, body: &str, response_body: &str| {
            let rule = HttpRule {
                pattern: Some(pattern),
                body: body.into(),
                response_body: response_body.into(),
                ..Default::default()
            };
            let mut options = Vec::new();
            write_varint(u64::from(HTTP_RULE_EXTENSION) << 3 | 2, &mut options);
            let encoded = rule.encode_to_vec();
            write_varint(encoded.len() as u64, &mut options);
            options.extend_from_slice(&encoded);
            options
        };
        let method = |name: &'static str, options| MethodProto {
            name: name.into(),
            input_type: ".ed.M".into(),
            output_type: ".ed.M".into(),
            options,
            ..Default::default()
        };
        let service = ServiceProto {
            name: "S".into(),
            methods: vec![
                method("Get", rule(Pattern::Get("/v1/{delimited.s}".into()), "", "")),
                method("Put", rule(Pattern::Put("/v1/put".into()), "delimited", "delimited")),
            ],
        };
        let enums = vec![
            enumeration("Open", &[("OPEN_ZERO", 0), ("OPEN_ONE", 1)], FeatureSet::default()),
            enumeration("Closed", &[("CLOSED_ZERO", 0), ("CLOSED_ONE", 1)], closed()),
        ];
        FileProto { services: vec![service], ..file("ed.proto", vec![m], enums, FeatureSet::default()) }
    }

    /// [`file_proto`] as an encoded FileDescriptorSet.
    pub fn descriptor_set() -> Vec<u8> {
        encode_set(&[file_proto()])
    }

    // ---- encoding, as protoc writes descriptors -----------------------------------------

    fn len(number: u32, value: &[u8], out: &mut Vec<u8>) {
        write_varint(u64::from(number) << 3 | 2, out);
        write_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    fn text(number: u32, value: &str, out: &mut Vec<u8>) {
        len(number, value.as_bytes(), out);
    }

    fn int(number: u32, value: i64, out: &mut Vec<u8>) {
        write_varint(u64::from(number) << 3, out);
        write_varint(value as u64, out);
    }

    /// `options { features { … } }` (options field `options`, features field `features`),
    /// nothing when no feature is set; `extra` is more of the options message.
    fn options(options: u32, features: u32, set: &FeatureSet, extra: &[u8], out: &mut Vec<u8>) {
        let mut f = Vec::new();
        let values = [
            set.field_presence,
            set.enum_type,
            set.repeated_field_encoding,
            set.utf8_validation,
            set.message_encoding,
            set.json_format,
        ];
        for (number, value) in (1..).zip(values) {
            if let Some(v) = value {
                int(number, i64::from(v), &mut f);
            }
        }
        let mut o = extra.to_vec();
        if !f.is_empty() {
            len(features, &f, &mut o);
        }
        if !o.is_empty() {
            len(options, &o, out);
        }
    }

    fn encode_field(f: &FieldProto) -> Vec<u8> {
        let mut out = Vec::new();
        text(1, &f.name, &mut out);
        int(3, i64::from(f.number), &mut out);
        if let Some(label) = f.label {
            int(4, i64::from(label), &mut out);
        }
        if let Some(kind) = f.kind {
            int(5, i64::from(kind), &mut out);
        }
        if !f.extendee.is_empty() {
            text(2, &f.extendee, &mut out);
        }
        if !f.type_name.is_empty() {
            text(6, &f.type_name, &mut out);
        }
        let mut extra = Vec::new();
        if let Some(packed) = f.packed {
            int(2, i64::from(packed), &mut extra);
        }
        options(8, 21, f.features(), &extra, &mut out);
        if let Some(o) = f.oneof_index {
            int(9, i64::from(o), &mut out);
        }
        if let Some(json_name) = &f.json_name {
            text(10, json_name, &mut out);
        }
        if f.proto3_optional {
            int(17, 1, &mut out);
        }
        out
    }

    fn encode_enum(e: &EnumProto) -> Vec<u8> {
        let mut out = Vec::new();
        text(1, &e.name, &mut out);
        for (name, number) in &e.values {
            let mut v = Vec::new();
            text(1, name, &mut v);
            int(2, i64::from(*number), &mut v);
            len(2, &v, &mut out);
        }
        options(3, 7, &e.features, &[], &mut out);
        out
    }

    fn encode_message(m: &MessageProto) -> Vec<u8> {
        let mut out = Vec::new();
        text(1, &m.name, &mut out);
        for f in &m.fields {
            len(2, &encode_field(f), &mut out);
        }
        for n in &m.nested {
            len(3, &encode_message(n), &mut out);
        }
        for e in &m.enums {
            len(4, &encode_enum(e), &mut out);
        }
        let mut extra = Vec::new();
        if m.map_entry {
            int(7, 1, &mut extra);
        }
        options(7, 12, m.features(), &extra, &mut out);
        for (i, name) in m.oneofs.iter().enumerate() {
            let mut o = Vec::new();
            text(1, name, &mut o);
            options(2, 1, m.oneof_features(i), &[], &mut o);
            len(8, &o, &mut out);
        }
        out
    }

    pub fn encode_file(file: &FileProto) -> Vec<u8> {
        let mut out = Vec::new();
        text(1, &file.name, &mut out);
        if !file.package.is_empty() {
            text(2, &file.package, &mut out);
        }
        for d in &file.dependencies {
            text(3, d, &mut out);
        }
        for m in &file.messages {
            len(4, &encode_message(m), &mut out);
        }
        for e in &file.enums {
            len(5, &encode_enum(e), &mut out);
        }
        for e in &file.extensions {
            len(7, &encode_field(e), &mut out);
        }
        for s in &file.services {
            let mut service = Vec::new();
            text(1, &s.name, &mut service);
            for m in &s.methods {
                let mut method = Vec::new();
                text(1, &m.name, &mut method);
                text(2, &m.input_type, &mut method);
                text(3, &m.output_type, &mut method);
                if !m.options.is_empty() {
                    len(4, &m.options, &mut method);
                }
                len(2, &method, &mut service);
            }
            len(6, &service, &mut out);
        }
        options(8, 50, &file.features, &[], &mut out);
        if let Some(syntax) = &file.syntax {
            text(12, syntax, &mut out);
        }
        if let Some(edition) = file.edition {
            int(14, i64::from(edition), &mut out);
        }
        out
    }

    pub fn encode_set(files: &[FileProto]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in files {
            len(1, &encode_file(f), &mut out);
        }
        out
    }
}
