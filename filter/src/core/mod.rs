//! The transcoding core. Nothing here calls the proxy-wasm host.
pub mod body_keys;
pub mod bound;
pub mod client_headers;
pub mod config;
pub mod cors;
pub mod descriptor_proto;
pub mod descriptor_source;
pub mod descriptors;
pub mod error;
pub mod fast;
pub mod field_behavior;
pub mod field_path;
pub mod field_value;
pub mod fnv;
pub mod frame;
pub mod grpc_status;
pub mod json;
pub mod json_stream;
pub mod openapi;
pub mod patch_mask;
pub mod path_matcher;
pub mod percent;
#[cfg(feature = "reflection")]
pub mod reflect_json;
pub mod reflection;
pub mod request;
#[cfg(test)]
mod request_reference;
pub mod response;
pub mod rest_body;
pub mod router;
pub mod schema;
pub mod status;
pub mod success_status;
pub mod template;
pub mod transcoder;
pub mod wire;

#[cfg(test)]
pub(crate) mod testutil;
