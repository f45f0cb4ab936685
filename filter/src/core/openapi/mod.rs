//! The OpenAPI 3.1 description of what a configuration serves, made from the same transcoder
//! that serves it: the bindings (`router`), the types (`schema`, printed and parsed as proto3
//! JSON under the configured print options), the comments and field behaviors in the
//! descriptor set (`docs`). `json2grpc-tool openapi` prints it; the filter serves it at
//! `json2grpc.openapi.path`.
//!
//! - [`document`]: the whole; [`operation`]: one per binding; [`path`]: templates as OpenAPI
//!   paths; [`query`]: query parameters; [`responses`]: success, streams and errors;
//!   [`links`]: links between operations;
//! - [`schemas`]: component schemas; [`wkt`]: the well-known types; [`url`]: values in URLs;
//!   [`docs`]: comments and `google.api.field_behavior`.
mod docs;
mod document;
mod json;
mod links;
mod operation;
mod path;
mod query;
mod responses;
mod schemas;
#[cfg(test)]
mod tests;
mod url;
mod wkt;

pub use document::{generate, generate_within};

use super::error::Error;
use super::transcoder::Transcoder;

/// The document as (compact) JSON text, refused over `max_bytes` (while it is built).
pub fn render(t: &Transcoder, max_bytes: usize) -> Result<Vec<u8>, Error> {
    let over = |size: usize, what: &str| {
        Error::internal(format!(
            "the OpenAPI document ({what}{size} bytes) is over json2grpc.openapi.max_bytes ({max_bytes})"
        ))
    };
    let document = generate_within(t, max_bytes).map_err(|size| over(size, "over "))?;
    let text = serde_json::to_vec(&document).map_err(|e| Error::internal(format!("the OpenAPI document: {e}")))?;
    if text.len() > max_bytes {
        return Err(over(text.len(), ""));
    }
    Ok(text)
}
