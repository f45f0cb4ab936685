//! proto3 JSON options and the checks shared by both JSON paths.
//!
//! The filter's JSON path is the [codec](crate::core::codec) (tokens straight to wire format).
//! Its reference, prost-reflect's serde mapping with our strictness added, is test-only code
//! (`testing::reflect_json`, feature `reflection`), not part of the `.wasm`.
use crate::core::error::{Error, Result};

/// How request JSON is read.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Deepest nesting of objects and arrays accepted (checked before parsing).
    pub max_depth: u32,
    /// Accept enum names in any letter case (`case_insensitive_enum_parsing`).
    pub case_insensitive_enums: bool,
    /// Drop fields the schema does not know (Envoy's behaviour) instead of failing.
    pub ignore_unknown_fields: bool,
    /// Drop enum names the schema does not know instead of failing (only together with
    /// `ignore_unknown_fields`). Off in the filter: a misspelt enum is a client error worth a
    /// 400, as in Envoy.
    pub ignore_unknown_enum_names: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_depth: 100,
            case_insensitive_enums: false,
            ignore_unknown_fields: true,
            ignore_unknown_enum_names: false,
        }
    }
}

/// serde_json refuses deeper input by itself; our own limit is checked first with a clear
/// message, and configs may not raise it above this.
pub const MAX_SUPPORTED_DEPTH: u32 = 127;

/// Rejects JSON nested deeper than `max` before any recursive parser sees it. Linear, no
/// allocation; strings (and escapes inside them) are skipped so brackets in text don't count.
pub fn check_depth(json: &[u8], max: u32) -> Result<()> {
    let mut depth: u32 = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > max {
                    return Err(Error::bad_request(format!("invalid JSON body: nested deeper than {max} levels")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
