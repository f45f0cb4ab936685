//! The transcoding core. Nothing here calls the proxy-wasm host: it is tested natively and on
//! wasm32, and the [`wasm`](crate::wasm) layer moves Envoy's headers and bytes through it.
//!
//! The data path, one folder per stage:
//!
//! ```text
//! once per configuration (transcoder.rs)
//!   plugin config JSON ─► config ─► schema ─► route: the Router     codec: the Plans
//!                                   (descriptors → Schema)
//!
//! per request
//!   HTTP method, path, query, JSON body
//!     │  route: the binding and its path variables
//!     ▼
//!   request: path, query and body bound into one message   ◄─ rest: PATCH masks, strict
//!     │  codec: JSON → protobuf wire                           bodies, required fields
//!     ▼
//!   gRPC frames ─► the service ─► gRPC frames and trailers
//!     │  response: frames read, grpc-status mapped            ◄─ rest: success status, CORS
//!     │  codec: protobuf wire → JSON
//!     ▼
//!   HTTP status, headers, JSON / NDJSON / server-sent events
//! ```
//!
//! [`openapi`] describes the same bindings and options as an OpenAPI document.
pub mod codec;
pub mod config;
pub mod error;
pub mod openapi;
pub mod reach;
pub mod request;
pub mod response;
pub mod rest;
pub mod route;
pub mod schema;
pub mod seeded_hash;
pub mod transcoder;
