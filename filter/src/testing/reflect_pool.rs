//! The descriptor loader of the reflection reference: the set in a prost-reflect pool, with the
//! built-in google protos the filter adds (feature `reflection`; not in the .wasm).
use crate::core::config::ConfigError;
use crate::core::schema::descriptor_proto::decode_file_set;
use crate::core::schema::descriptors::{load_schema, BUILTIN_DESCRIPTOR_SET, FIELD};

/// The reference loader of the reflection path: the same set in a prost-reflect pool, with
/// the same built-ins (not in the .wasm).
pub fn load_pool(descriptor_set: &[u8]) -> Result<prost_reflect::DescriptorPool, ConfigError> {
    use prost::Message as _;
    // Our own checks first: prost-reflect panics on some sets they refuse (empty syntax, map
    // entries without key = 1 / value = 2), and on the editions files the filter reads.
    load_schema(descriptor_set)?;
    let files = decode_file_set(descriptor_set).map_err(|e| ConfigError::new(FIELD, e))?;
    if let Some(file) = files.iter().find(|f| f.syntax.as_deref() == Some("editions")) {
        return Err(ConfigError::new(
            FIELD,
            format!("{}: editions files are not supported by the reflection reference (prost-reflect)", file.name),
        ));
    }
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)
        .map_err(|e| ConfigError::new(FIELD, format!("not a FileDescriptorSet: {e}")))?;
    check_bytes_defaults(&set)?;
    let mut pool = prost_reflect::DescriptorPool::decode(descriptor_set)
        .map_err(|e| ConfigError::new(FIELD, format!("invalid descriptor set: {e}")))?;
    let builtin = prost_types::FileDescriptorSet::decode(BUILTIN_DESCRIPTOR_SET)
        .map_err(|e| ConfigError::new("", format!("built-in descriptors: {e}")))?;
    for file in builtin.file {
        let present = pool.get_file_by_name(file.name()).is_some()
            || file
                .message_type
                .iter()
                .any(|m| pool.get_message_by_name(&format!("{}.{}", file.package(), m.name())).is_some());
        if !present {
            if let Err(e) = pool.add_file_descriptor_proto(file) {
                log::debug!("built-in descriptor not added: {e}");
            }
        }
    }
    Ok(pool)
}

/// prost-reflect unescapes proto2 `bytes` defaults with arithmetic that overflows on an octal
/// escape above `\377` and slicing that panics on a `\x` before a multi-byte character; such
/// defaults are refused before it sees them (protoc writes only valid escapes). The filter's
/// own loader does not read defaults.
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

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::fixtures::editions;

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
    fn editions_sets_are_refused_not_a_panic() {
        // prost-reflect cannot read editions.
        let e = load_pool(&editions::descriptor_set()).unwrap_err();
        assert!(e.message.contains("ed.proto") && e.message.contains("prost-reflect"), "{e}");
    }
}
