//! Loading the user's FileDescriptorSet into a [`Schema`] (once per configuration), with the
//! built-in google.rpc / google.api.HttpBody types added where the set lacks them, and reading
//! each method's `google.api.http` rule from its options.
use crate::core::codec::wire;
use crate::core::config::ConfigError;
use crate::core::schema::descriptor_proto::{decode_file_set, each_field, file, payload, string, Parts};
use crate::core::schema::encoded_files::{file_ranges, EncodedFiles};
use crate::core::schema::{defined_names, syntax_of, Method, Schema};
use crate::core::seeded_hash::SeededMap;

/// google.rpc.Status, its standard detail types and google.api.HttpBody (`filter/descriptors/`,
/// checked in; `tests/checked_in_descriptors.rs` keeps it current).
pub(crate) const BUILTIN_DESCRIPTOR_SET: &[u8] = include_bytes!("../../../descriptors/builtin.pb");

/// Field number of the `google.api.http` extension of `google.protobuf.MethodOptions`.
pub const HTTP_RULE_EXTENSION: u32 = 72295728;

pub(crate) const FIELD: &str = "proto_descriptor_bin";

/// Decodes and links a FileDescriptorSet, adding the built-in error/HttpBody types the set
/// lacks, so error details and HttpBody work whatever the user compiled. Files are decoded one
/// at a time in each pass (see [`EncodedFiles`]).
pub fn load_schema(descriptor_set: &[u8]) -> Result<Schema, ConfigError> {
    link_with_builtins(EncodedFiles::split(descriptor_set).map_err(not_a_set)?)
}

/// [`load_schema`] for a set nothing reads afterwards: it is freed as it is linked (see
/// [`EncodedFiles::draining`]), and is empty after a success.
pub fn load_schema_draining(descriptor_set: &mut Vec<u8>) -> Result<Schema, ConfigError> {
    link_with_builtins(EncodedFiles::draining(descriptor_set).map_err(not_a_set)?)
}

fn not_a_set(e: String) -> ConfigError {
    ConfigError::new(FIELD, format!("not a FileDescriptorSet: {e}"))
}

fn link_with_builtins(mut files: EncodedFiles<'_>) -> Result<Schema, ConfigError> {
    // Every file has a supported syntax before anything is linked; what the built-ins must not
    // clash with is noted on the way. Fields are not decoded here but when they are linked (a
    // malformed one is an invalid set then), so each is decoded once.
    let mut user = UserFiles::default();
    let builtin = builtin_names();
    let invalid = |e: String| ConfigError::new(FIELD, format!("invalid descriptor set: {e}"));
    for file in files.parts(Parts { fields: false, extensions: false, ..Parts::ALL }) {
        // The set's own framing was read (`split`): what fails here is in one of its files.
        let file = file.map_err(invalid)?;
        syntax_of(&file).map_err(|e| ConfigError::new(FIELD, e))?;
        user.names.insert(file.name.to_string(), ());
        for name in defined_names(&file) {
            if builtin.contains_key(name.as_str()) {
                user.taken.insert(name, ());
            }
        }
    }
    let user_files = files.len();
    add_builtins(&mut files, user);
    match Schema::link_set(&mut files) {
        Ok(schema) => Ok(schema),
        // Once part of the set is freed it cannot be linked again, and need not be: the pass
        // that frees it reads the built-in files first, a set's own names are resolved before
        // theirs, a built-in type of the wrong kind counts as absent, and extending a built-in
        // map entry is refused before (Schema::link_set): an error then is the set's own, the
        // one linking it alone gives.
        Err(e) if files.len() > user_files && !files.drained() => {
            // A built-in file that does not fit the user's set is left out; the user's set
            // alone decides whether the configuration is valid.
            log::debug!("built-in descriptors not added: {e}");
            files.truncate(user_files);
            Schema::link_set(&mut files).map_err(invalid)
        }
        Err(e) => Err(invalid(e)),
    }
}

/// What the user's files hold that a built-in file must not clash with.
#[derive(Default)]
struct UserFiles {
    /// File names.
    names: SeededMap<String, ()>,
    /// The names they define that a built-in file also defines.
    taken: SeededMap<String, ()>,
}

/// Every name a built-in file defines.
fn builtin_names() -> SeededMap<String, ()> {
    let files = decode_file_set(BUILTIN_DESCRIPTOR_SET).unwrap_or_default();
    files.iter().flat_map(defined_names).map(|name| (name, ())).collect()
}

/// Appends the built-in files whose names, and every name they define, are free, and whose
/// imports are there. A user set that defines some of these types differently wins; only
/// gaps are filled.
fn add_builtins(files: &mut EncodedFiles<'_>, user: UserFiles) {
    let builtin = match file_ranges(BUILTIN_DESCRIPTOR_SET) {
        Ok(builtin) => builtin,
        Err(e) => {
            log::debug!("built-in descriptors: {e}");
            return;
        }
    };
    let UserFiles { names: mut file_names, mut taken } = user;
    for range in builtin {
        let Some(bytes) = BUILTIN_DESCRIPTOR_SET.get(range) else { continue };
        let Ok(file) = file(bytes, Parts::ALL) else { continue };
        let names = defined_names(&file);
        let fits = !file_names.contains_key(&*file.name)
            && !names.iter().any(|n| taken.contains_key(n))
            && file.dependencies.iter().all(|d| file_names.contains_key(&**d));
        if fits {
            taken.extend(names.into_iter().map(|n| (n, ())));
            file_names.insert(file.name.to_string(), ());
            files.push_static(bytes);
        }
    }
}

/// `google.api.HttpRule` (the fields json2grpc reads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpRule {
    pub selector: String,
    pub pattern: Option<Pattern>,
    pub body: String,
    pub response_body: String,
    pub additional_bindings: Vec<HttpRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    Get(String),
    Put(String),
    Post(String),
    Delete(String),
    Patch(String),
    Custom(CustomHttpPattern),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomHttpPattern {
    pub kind: String,
    pub path: String,
}

/// Rules nested deeper than this in `additional_bindings` are refused (prost's limit).
const MAX_RULE_DEPTH: u32 = 100;

impl HttpRule {
    /// The HTTP method and template of this rule, if it has a pattern.
    pub fn method_and_template(&self) -> Option<(&str, &str)> {
        Some(match self.pattern.as_ref()? {
            Pattern::Get(t) => ("GET", t.as_str()),
            Pattern::Put(t) => ("PUT", t.as_str()),
            Pattern::Post(t) => ("POST", t.as_str()),
            Pattern::Delete(t) => ("DELETE", t.as_str()),
            Pattern::Patch(t) => ("PATCH", t.as_str()),
            Pattern::Custom(c) => (c.kind.as_str(), c.path.as_str()),
        })
    }

    /// Merges an encoded rule into this one, as protobuf parsers do: later singular values
    /// win, `additional_bindings` append, the pattern is the last one given (a custom
    /// pattern given twice merges).
    fn merge(&mut self, bytes: &[u8], depth: u32) -> Result<(), String> {
        if depth > MAX_RULE_DEPTH {
            return Err(format!("additional_bindings nested deeper than {MAX_RULE_DEPTH} levels"));
        }
        each_field(bytes, "HttpRule", |f| {
            let text = |what| string(f, what);
            match f.number {
                1 => self.selector = text("HttpRule.selector")?,
                2 => self.pattern = Some(Pattern::Get(text("HttpRule.get")?)),
                3 => self.pattern = Some(Pattern::Put(text("HttpRule.put")?)),
                4 => self.pattern = Some(Pattern::Post(text("HttpRule.post")?)),
                5 => self.pattern = Some(Pattern::Delete(text("HttpRule.delete")?)),
                6 => self.pattern = Some(Pattern::Patch(text("HttpRule.patch")?)),
                7 => self.body = text("HttpRule.body")?,
                8 => {
                    let mut custom = match self.pattern.take() {
                        Some(Pattern::Custom(c)) => c,
                        _ => CustomHttpPattern::default(),
                    };
                    each_field(payload(f, "HttpRule.custom")?, "CustomHttpPattern", |c| {
                        match c.number {
                            1 => custom.kind = string(c, "CustomHttpPattern.kind")?,
                            2 => custom.path = string(c, "CustomHttpPattern.path")?,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    self.pattern = Some(Pattern::Custom(custom));
                }
                11 => {
                    let mut rule = HttpRule::default();
                    rule.merge(payload(f, "HttpRule.additional_bindings")?, depth + 1)?;
                    self.additional_bindings.push(rule);
                }
                12 => self.response_body = text("HttpRule.response_body")?,
                _ => {}
            }
            Ok(())
        })
    }

    /// The rule's encoding (tests and tools build descriptor sets with it).
    pub fn encode_to_vec(&self) -> Vec<u8> {
        fn text(number: u32, value: &str, out: &mut Vec<u8>) {
            if !value.is_empty() {
                bytes(number, value.as_bytes(), out);
            }
        }
        fn bytes(number: u32, value: &[u8], out: &mut Vec<u8>) {
            wire::write_varint(u64::from(number) << 3 | 2, out);
            wire::write_varint(value.len() as u64, out);
            out.extend_from_slice(value);
        }
        let mut out = Vec::new();
        text(1, &self.selector, &mut out);
        match &self.pattern {
            Some(Pattern::Get(t)) => bytes(2, t.as_bytes(), &mut out),
            Some(Pattern::Put(t)) => bytes(3, t.as_bytes(), &mut out),
            Some(Pattern::Post(t)) => bytes(4, t.as_bytes(), &mut out),
            Some(Pattern::Delete(t)) => bytes(5, t.as_bytes(), &mut out),
            Some(Pattern::Patch(t)) => bytes(6, t.as_bytes(), &mut out),
            Some(Pattern::Custom(c)) => {
                let mut custom = Vec::new();
                text(1, &c.kind, &mut custom);
                text(2, &c.path, &mut custom);
                bytes(8, &custom, &mut out);
            }
            None => {}
        }
        text(7, &self.body, &mut out);
        for rule in &self.additional_bindings {
            bytes(11, &rule.encode_to_vec(), &mut out);
        }
        text(12, &self.response_body, &mut out);
        out
    }
}

/// Reads the method's `google.api.http` option. It is read from the encoded options, so it
/// works whether or not the set includes google/api/annotations.proto.
pub fn http_rule(method: &Method) -> Result<Option<HttpRule>, String> {
    let mut rule: Option<HttpRule> = None;
    for field in wire::fields(&method.options) {
        let field = field.map_err(|()| "malformed method options".to_string())?;
        if field.number == HTTP_RULE_EXTENSION && field.wire_type == wire::LEN {
            // Repeated occurrences of a message field merge, as protobuf parsers do.
            let target = rule.get_or_insert_with(HttpRule::default);
            target.merge(field.value, 1).map_err(|e| format!("malformed google.api.http option: {e}"))?;
        }
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::schema::descriptor_proto::tests::{len_field, varint_field};
    use crate::testing::fixtures::{editions, TEST_DESCRIPTOR_SET};

    fn method<'s>(schema: &'s Schema, service: &str, name: &str) -> &'s Method {
        schema.service(service).unwrap().methods.iter().find(|m| &*m.name == name).unwrap()
    }

    /// An encoded FileDescriptorSet of one file with the given FileDescriptorProto fields.
    fn set_of(file: &[u8]) -> Vec<u8> {
        let mut set = Vec::new();
        len_field(1, file, &mut set);
        set
    }

    #[test]
    fn reads_rules_with_additional_bindings_body_and_custom_methods() {
        let schema = load_schema(TEST_DESCRIPTOR_SET).unwrap();
        let get = http_rule(method(&schema, "test.v1.Things", "Get")).unwrap().unwrap();
        assert_eq!(get.method_and_template(), Some(("GET", "/v1/things/{id}")));
        assert_eq!(get.additional_bindings.len(), 1);
        assert_eq!(
            get.additional_bindings[0].method_and_template(),
            Some(("GET", "/v1/nested/{nested.name}/things/{id}"))
        );
        let update = http_rule(method(&schema, "test.v1.Things", "Update")).unwrap().unwrap();
        assert_eq!(update.method_and_template(), Some(("PATCH", "/v1/things/{id}")));
        assert_eq!(update.body, "item");
        let custom = http_rule(method(&schema, "test.v1.Things", "Custom")).unwrap().unwrap();
        assert_eq!(custom.method_and_template(), Some(("HEAD", "/v1/custom/{id}")));
        let nested = http_rule(method(&schema, "test.v1.Things", "Nested")).unwrap().unwrap();
        assert_eq!(nested.response_body, "nested");
        assert_eq!(http_rule(method(&schema, "test.v1.Things", "Unannotated")).unwrap(), None);
    }

    #[test]
    fn rules_given_twice_merge_and_round_trip() {
        let first = HttpRule {
            pattern: Some(Pattern::Custom(CustomHttpPattern { kind: "HEAD".into(), path: String::new() })),
            body: "a".into(),
            additional_bindings: vec![HttpRule { pattern: Some(Pattern::Get("/x".into())), ..Default::default() }],
            ..Default::default()
        };
        let second = HttpRule {
            pattern: Some(Pattern::Custom(CustomHttpPattern { kind: String::new(), path: "/y".into() })),
            response_body: "r".into(),
            additional_bindings: vec![HttpRule { pattern: Some(Pattern::Post("/z".into())), ..Default::default() }],
            ..Default::default()
        };
        let mut options = Vec::new();
        len_field(HTTP_RULE_EXTENSION, &first.encode_to_vec(), &mut options);
        len_field(HTTP_RULE_EXTENSION, &second.encode_to_vec(), &mut options);
        let m =
            Method { name: "M".into(), input: 0, output: 0, client_streaming: false, server_streaming: false, options };
        let rule = http_rule(&m).unwrap().unwrap();
        assert_eq!(rule.method_and_template(), Some(("HEAD", "/y")));
        assert_eq!((rule.body.as_str(), rule.response_body.as_str()), ("a", "r"));
        assert_eq!(rule.additional_bindings.len(), 2);
        let mut one = Vec::new();
        len_field(HTTP_RULE_EXTENSION, &first.encode_to_vec(), &mut one);
        assert_eq!(http_rule(&Method { options: one, ..m.clone() }).unwrap(), Some(first));
        // Malformed options and rules are errors, not panics.
        let mut wrong_type = Vec::new();
        len_field(HTTP_RULE_EXTENSION, &[0x10, 0x01], &mut wrong_type); // `get` as a varint
        for options in [vec![0x0a], wrong_type] {
            assert!(http_rule(&Method { options, ..m.clone() }).is_err());
        }
    }

    #[test]
    fn builtin_error_types_are_always_available() {
        let schema = load_schema(TEST_DESCRIPTOR_SET).unwrap();
        for name in ["google.rpc.Status", "google.rpc.BadRequest", "google.rpc.ErrorInfo", "google.api.HttpBody"] {
            assert!(schema.message_index(name).is_some(), "{name}");
        }
        // An empty set still gets them.
        let schema = load_schema(&[]).unwrap();
        assert!(schema.message_index("google.rpc.PreconditionFailure").is_some());
        assert!(schema.message_index("google.protobuf.Any").is_some());
    }

    #[test]
    fn a_user_type_with_a_builtin_name_wins() {
        // package google.rpc; message Status { string text = 1; } in "mine.proto".
        let mut field = Vec::new();
        len_field(1, b"text", &mut field);
        varint_field(3, 1, &mut field);
        varint_field(4, 1, &mut field);
        varint_field(5, 9, &mut field);
        let mut status = Vec::new();
        len_field(1, b"Status", &mut status);
        len_field(2, &field, &mut status);
        let mut file = Vec::new();
        len_field(1, b"mine.proto", &mut file);
        len_field(2, b"google.rpc", &mut file);
        len_field(4, &status, &mut file);
        len_field(12, b"proto3", &mut file);
        let schema = load_schema(&set_of(&file)).unwrap();
        let status = schema.message_by_name("google.rpc.Status").unwrap();
        assert_eq!(status.fields.len(), 1);
        assert_eq!(status.fields[0].name(), "text");
        // The other built-in files still fill the gaps.
        assert!(schema.message_index("google.api.HttpBody").is_some());
    }

    #[test]
    fn rejects_garbage_and_unsupported_editions() {
        let e = load_schema(b"\x0a\x05hello").unwrap_err();
        assert_eq!(e.field, "proto_descriptor_bin");
        let e = load_schema(&[0xff, 0xff]).unwrap_err();
        assert!(e.message.contains("not a FileDescriptorSet"), "{e}");
        let mut file = Vec::new();
        len_field(1, b"e.proto", &mut file);
        len_field(12, b"editions", &mut file);
        let e = load_schema(&set_of(&file)).unwrap_err();
        assert_eq!(e.field, "proto_descriptor_bin");
        assert!(e.message.contains("e.proto") && e.message.contains("editions"), "{e}");
        // edition = "2024"
        varint_field(14, 1001, &mut file);
        let e = load_schema(&set_of(&file)).unwrap_err();
        assert_eq!(e.field, "proto_descriptor_bin");
        assert!(e.message.contains("e.proto: edition \"2024\" is not supported"), "{e}");
    }

    #[test]
    fn loads_edition_2023_sets_with_their_rules() {
        let schema = load_schema(&editions::descriptor_set()).unwrap();
        assert!(schema.message_by_name("ed.M").unwrap().field_by_name("delimited").unwrap().delimited());
        let put = http_rule(method(&schema, "ed.S", "Put")).unwrap().unwrap();
        assert_eq!((put.body.as_str(), put.response_body.as_str()), ("delimited", "delimited"));
        // The built-ins are still added next to an editions file.
        assert!(schema.message_index("google.rpc.Status").is_some());
    }

    #[test]
    fn rejects_sets_with_missing_dependencies() {
        let mut file = Vec::new();
        len_field(1, b"a.proto", &mut file);
        len_field(3, b"missing.proto", &mut file);
        let e = load_schema(&set_of(&file)).unwrap_err();
        assert!(e.message.contains("invalid descriptor set") && e.message.contains("missing.proto"), "{e}");
    }
}
