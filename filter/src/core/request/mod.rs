//! A matched request in, the gRPC request message out: path variables, query parameters and
//! the body bound into one message in Envoy's order ([`translate`], [`bound`],
//! [`field_value`]); client streams split into messages ([`json_stream`]); which client headers
//! may reach the service ([`client_headers`]).
pub mod bound;
pub mod client_headers;
pub mod field_value;
pub mod json_stream;
pub mod translate;

pub use translate::*;
