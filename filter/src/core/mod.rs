//! The transcoding core. Nothing here calls the proxy-wasm host: it is tested natively and on
//! wasm32, and the [`wasm`](crate::wasm) layer moves Envoy's headers and bytes through it.
//!
//! The data path, one folder per stage:
//!
//! ```text
//!  plugin config ─► config ─► schema ──────────► route ─────────────┐   (once per config:
//!  (JSON)                     (descriptors →     (google.api.http →  │    transcoder.rs)
//!                              Schema)           Router)             │
//!                                                                    ▼
//!  HTTP request ──► route: match method + path ─► request: bind path, query and body
//!  (JSON body)          (a binding)               into the gRPC message ──► codec ──► gRPC frames
//!                                                  (rest: masks, strict bodies,  (JSON → wire)
//!                                                   required fields)
//!  gRPC response ─► response: frames, status, trailers ─► codec (wire → JSON) ─► HTTP response
//!  (frames + trailers)  (rest: success status, CORS)                          (JSON, streams, errors)
//! ```
//!
//! [`openapi`] describes the same bindings and options as an OpenAPI document.
pub mod codec;
pub mod config;
pub mod error;
pub mod fnv;
pub mod openapi;
pub mod request;
pub mod response;
pub mod rest;
pub mod route;
pub mod schema;
pub mod transcoder;
