//! `json2grpc.openapi`: the OpenAPI document the filter serves (README "OpenAPI"); off unless
//! a path is set.
use serde_json::Value;

use super::{object, positive, string, unknown, ConfigError};

/// `json2grpc.openapi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApiOptions {
    /// The request path a GET of which the filter answers with the document (off when unset).
    pub path: Option<String>,
    /// The largest document served (a bigger one is a 500 JSON error).
    pub max_bytes: u32,
}

impl Default for OpenApiOptions {
    fn default() -> Self {
        OpenApiOptions { path: None, max_bytes: 8 * 1024 * 1024 }
    }
}

/// `json2grpc.openapi`: `path` (an absolute path without query or fragment) and `max_bytes`.
pub(super) fn parse(field: &str, value: &Value) -> Result<OpenApiOptions, ConfigError> {
    let mut o = OpenApiOptions::default();
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        match field.name.as_str() {
            "path" => {
                let path = string(f, value)?;
                if !path.starts_with('/') || path.contains(['?', '#']) || path.bytes().any(|b| b <= b' ') {
                    return Err(ConfigError::new(f, "expected a path starting with '/', without query or spaces"));
                }
                o.path = Some(path);
            }
            "max_bytes" => o.max_bytes = positive(f, value)?,
            _ => return Err(unknown(f)),
        }
    }
    Ok(o)
}
