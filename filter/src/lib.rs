//! json2grpc: a JSON/REST ⇄ gRPC transcoder for Envoy, as a proxy-wasm HTTP filter.
//!
//! - [`core`] is the whole transcoder as plain Rust (no host calls): configuration, routing by
//!   `google.api.http`, JSON ⇄ protobuf, gRPC framing and status mapping. It is tested natively
//!   and on wasm32.
//! - [`wasm`] is the proxy-wasm layer: a small state machine per request that moves headers and
//!   bytes between Envoy and the core.
pub mod alloc;
pub mod core;
#[cfg(any(test, feature = "reflection"))]
pub mod testing;
#[cfg(feature = "proxy")]
pub mod wasm;
