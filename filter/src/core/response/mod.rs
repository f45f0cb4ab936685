//! gRPC response bytes in, the client's HTTP response out: length-prefixed frames
//! ([`frame`]), messages printed as JSON, NDJSON or server-sent events ([`translate`]), and
//! `grpc-status`, `grpc-message` and status details mapped to an HTTP status and a JSON
//! `google.rpc.Status` ([`grpc_status`], [`status`]).
pub mod frame;
pub mod grpc_status;
pub mod status;
pub mod translate;

pub use translate::*;
