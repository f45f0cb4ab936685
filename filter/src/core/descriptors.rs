//! Loading the user's FileDescriptorSet into a pool (once per configuration) and reading
//! each method's `google.api.http` rule from its options.
use prost::Message;
use prost_reflect::{DescriptorPool, MethodDescriptor};

use super::config::ConfigError;
use super::wire;

/// google.rpc.Status, its standard detail types and google.api.HttpBody, compiled by build.rs.
const BUILTIN_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin.pb"));

/// Field number of the `google.api.http` extension of `google.protobuf.MethodOptions`.
pub const HTTP_RULE_EXTENSION: u32 = 72295728;

const FIELD: &str = "proto_descriptor_bin";

/// Decodes a FileDescriptorSet into a pool and adds the built-in error/HttpBody types the set
/// lacks, so error details and HttpBody work whatever the user compiled.
pub fn load_pool(descriptor_set: &[u8]) -> Result<DescriptorPool, ConfigError> {
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)
        .map_err(|e| ConfigError::new(FIELD, format!("not a FileDescriptorSet: {e}")))?;
    for file in &set.file {
        // prost-reflect panics (index out of bounds) on edition files instead of failing;
        // a panic would kill the Wasm VM, so refuse them here.
        // Present-but-empty is not "absent": prost-reflect panics on it too.
        if !matches!(file.syntax.as_deref(), None | Some("proto2" | "proto3")) {
            return Err(ConfigError::new(
                FIELD,
                format!("{}: syntax \"{}\" is not supported (use proto2 or proto3)", file.name(), file.syntax()),
            ));
        }
    }
    check_bytes_defaults(&set)?;
    let mut pool = DescriptorPool::decode(descriptor_set)
        .map_err(|e| ConfigError::new(FIELD, format!("invalid descriptor set: {e}")))?;
    check_map_entries(&pool)?;
    add_builtins(&mut pool)?;
    Ok(pool)
}

/// prost-reflect unescapes proto2 `bytes` defaults with arithmetic that overflows on an octal
/// escape above `\377` and slicing that panics on a `\x` before a multi-byte character; such
/// defaults are refused before it sees them (protoc writes only valid escapes).
fn check_bytes_defaults(set: &prost_types::FileDescriptorSet) -> Result<(), ConfigError> {
    fn fields(m: &prost_types::DescriptorProto) -> Box<dyn Iterator<Item = &prost_types::FieldDescriptorProto> + '_> {
        Box::new(m.field.iter().chain(&m.extension).chain(m.nested_type.iter().flat_map(fields)))
    }
    let all = set.file.iter().flat_map(|f| f.extension.iter().chain(f.message_type.iter().flat_map(fields)));
    for field in all {
        let is_bytes = field.r#type == Some(prost_types::field_descriptor_proto::Type::Bytes as i32);
        match &field.default_value {
            Some(default) if is_bytes && !valid_c_escapes(default) => {
                return Err(ConfigError::new(
                    FIELD,
                    format!("field {}: invalid escape in the bytes default {default:?}", field.name()),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `text` uses only the C escapes protobuf writes for bytes defaults.
fn valid_c_escapes(text: &str) -> bool {
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            continue;
        }
        match bytes.next() {
            Some(b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'\\' | b'?' | b'\'' | b'"') => {}
            Some(first @ b'0'..=b'7') => {
                // Up to three octal digits, at most \377.
                let mut value = u32::from(first - b'0');
                let mut rest = bytes.clone();
                for _ in 0..2 {
                    match rest.next() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                if value > 0o377 {
                    return false;
                }
            }
            Some(b'x' | b'X') => {
                let hex = (bytes.next(), bytes.next());
                if !matches!(hex, (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// prost-reflect accepts a map entry without fields `key = 1` and `value = 2`, then panics
/// when asked for them (at configure time while compiling plans, or per request); protoc
/// never produces such an entry, so it is refused here.
fn check_map_entries(pool: &DescriptorPool) -> Result<(), ConfigError> {
    for message in pool.all_messages().filter(|m| m.is_map_entry()) {
        let mut numbers: Vec<u32> = message.fields().map(|f| f.number()).collect();
        numbers.sort_unstable();
        if numbers != [1, 2] || message.get_field_by_name("key").map(|f| f.number()) != Some(1) {
            return Err(ConfigError::new(
                FIELD,
                format!("{}: a map entry must have exactly the fields key = 1 and value = 2", message.full_name()),
            ));
        }
    }
    Ok(())
}

fn add_builtins(pool: &mut DescriptorPool) -> Result<(), ConfigError> {
    let builtin = prost_types::FileDescriptorSet::decode(BUILTIN_DESCRIPTOR_SET)
        .map_err(|e| ConfigError::new("", format!("built-in descriptors: {e}")))?;
    for file in builtin.file {
        let present = pool.get_file_by_name(file.name()).is_some()
            || file
                .message_type
                .iter()
                .any(|m| pool.get_message_by_name(&format!("{}.{}", file.package(), m.name())).is_some());
        if present {
            continue;
        }
        // A user set that defines some of these names differently wins; we only fill gaps.
        if let Err(e) = pool.add_file_descriptor_proto(file) {
            log::debug!("built-in descriptor not added: {e}");
        }
    }
    Ok(())
}

/// `google.api.HttpRule` (the fields json2grpc reads).
#[derive(Clone, PartialEq, Message)]
pub struct HttpRule {
    #[prost(string, tag = "1")]
    pub selector: String,
    #[prost(oneof = "Pattern", tags = "2, 3, 4, 5, 6, 8")]
    pub pattern: Option<Pattern>,
    #[prost(string, tag = "7")]
    pub body: String,
    #[prost(string, tag = "12")]
    pub response_body: String,
    #[prost(message, repeated, tag = "11")]
    pub additional_bindings: Vec<HttpRule>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Pattern {
    #[prost(string, tag = "2")]
    Get(String),
    #[prost(string, tag = "3")]
    Put(String),
    #[prost(string, tag = "4")]
    Post(String),
    #[prost(string, tag = "5")]
    Delete(String),
    #[prost(string, tag = "6")]
    Patch(String),
    #[prost(message, tag = "8")]
    Custom(CustomHttpPattern),
}

#[derive(Clone, PartialEq, Message)]
pub struct CustomHttpPattern {
    #[prost(string, tag = "1")]
    pub kind: String,
    #[prost(string, tag = "2")]
    pub path: String,
}

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
}

/// Reads the method's `google.api.http` option. It is read from the encoded options, so it
/// works whether or not the set includes google/api/annotations.proto.
pub fn http_rule(method: &MethodDescriptor) -> Result<Option<HttpRule>, String> {
    let options = method.options().encode_to_vec();
    let mut rule: Option<HttpRule> = None;
    for field in wire::fields(&options) {
        let field = field.map_err(|()| "malformed method options".to_string())?;
        if field.number == HTTP_RULE_EXTENSION && field.wire_type == wire::LEN {
            // Repeated occurrences of a message field merge, as protobuf parsers do.
            let target = rule.get_or_insert_with(HttpRule::default);
            target.merge(field.value).map_err(|e| format!("malformed google.api.http option: {e}"))?;
        }
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::testutil::TEST_DESCRIPTOR_SET;

    fn method(pool: &DescriptorPool, service: &str, name: &str) -> MethodDescriptor {
        pool.get_service_by_name(service).unwrap().methods().find(|m| m.name() == name).unwrap()
    }

    #[test]
    fn bytes_defaults_must_use_valid_c_escapes() {
        for ok in ["", "abc", r#"\0\001\a\b\f\n\r\t\v\\\'\"\xfe\?"#, r"\377", r"\12x", "é"] {
            assert!(valid_c_escapes(ok), "{ok}");
        }
        for bad in [r"\664", r"\400", r"\x", r"\x1", "\\x\u{e9}", r"\w", "\\"] {
            assert!(!valid_c_escapes(bad), "{bad}");
        }
    }

    #[test]
    fn reads_rules_with_additional_bindings_body_and_custom_methods() {
        let pool = load_pool(TEST_DESCRIPTOR_SET).unwrap();
        let get = http_rule(&method(&pool, "test.v1.Things", "Get")).unwrap().unwrap();
        assert_eq!(get.method_and_template(), Some(("GET", "/v1/things/{id}")));
        assert_eq!(get.additional_bindings.len(), 1);
        assert_eq!(
            get.additional_bindings[0].method_and_template(),
            Some(("GET", "/v1/nested/{nested.name}/things/{id}"))
        );
        let update = http_rule(&method(&pool, "test.v1.Things", "Update")).unwrap().unwrap();
        assert_eq!(update.method_and_template(), Some(("PATCH", "/v1/things/{id}")));
        assert_eq!(update.body, "item");
        let custom = http_rule(&method(&pool, "test.v1.Things", "Custom")).unwrap().unwrap();
        assert_eq!(custom.method_and_template(), Some(("HEAD", "/v1/custom/{id}")));
        let nested = http_rule(&method(&pool, "test.v1.Things", "Nested")).unwrap().unwrap();
        assert_eq!(nested.response_body, "nested");
        assert_eq!(http_rule(&method(&pool, "test.v1.Things", "Unannotated")).unwrap(), None);
    }

    #[test]
    fn builtin_error_types_are_always_available() {
        let pool = load_pool(TEST_DESCRIPTOR_SET).unwrap();
        for name in ["google.rpc.Status", "google.rpc.BadRequest", "google.rpc.ErrorInfo", "google.api.HttpBody"] {
            assert!(pool.get_message_by_name(name).is_some(), "{name}");
        }
        // An empty set still gets them.
        let pool = load_pool(&[]).unwrap();
        assert!(pool.get_message_by_name("google.rpc.PreconditionFailure").is_some());
    }

    #[test]
    fn rejects_garbage_and_edition_files() {
        let e = load_pool(b"\x0a\x05hello").unwrap_err();
        assert_eq!(e.field, "proto_descriptor_bin");
        let e = load_pool(&[0xff, 0xff]).unwrap_err();
        assert!(e.message.contains("not a FileDescriptorSet"), "{e}");
        let file = prost_types::FileDescriptorProto {
            name: Some("e.proto".into()),
            syntax: Some("editions".into()),
            ..Default::default()
        };
        let set = prost_types::FileDescriptorSet { file: vec![file] }.encode_to_vec();
        let e = load_pool(&set).unwrap_err();
        assert!(e.message.contains("e.proto") && e.message.contains("editions"), "{e}");
    }

    #[test]
    fn rejects_sets_with_missing_dependencies() {
        let file = prost_types::FileDescriptorProto {
            name: Some("a.proto".into()),
            dependency: vec!["missing.proto".into()],
            ..Default::default()
        };
        let set = prost_types::FileDescriptorSet { file: vec![file] }.encode_to_vec();
        let e = load_pool(&set).unwrap_err();
        assert!(e.message.contains("invalid descriptor set"), "{e}");
    }
}
