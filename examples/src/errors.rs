//! gRPC errors with `google.rpc` details in `grpc-status-details-bin`.

use bytes::Bytes;
use prost::Message;
use tonic::{Code, Status};

use crate::pb::google::rpc;

/// Packs a detail message as a `google.protobuf.Any`.
pub fn any<M: Message>(full_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any { type_url: format!("type.googleapis.com/{full_name}"), value: message.encode_to_vec() }
}

/// A status whose `grpc-status-details-bin` trailer carries a
/// `google.rpc.Status` with the same code and message plus `details`.
pub fn with_details(code: Code, message: impl Into<String>, details: Vec<prost_types::Any>) -> Status {
    let message = message.into();
    let status = rpc::Status { code: code as i32, message: message.clone(), details };
    Status::with_details(code, message, Bytes::from(status.encode_to_vec()))
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` listing `violations`
/// (field, description) pairs.
pub fn bad_request(message: impl Into<String>, violations: Vec<(String, String)>) -> Status {
    let detail = rpc::BadRequest {
        field_violations: violations
            .into_iter()
            .map(|(field, description)| rpc::bad_request::FieldViolation { field, description, ..Default::default() })
            .collect(),
    };
    with_details(Code::InvalidArgument, message, vec![any("google.rpc.BadRequest", &detail)])
}

/// The `google.rpc.Status` in a status's details, if any.
pub fn decode_details(status: &Status) -> Option<rpc::Status> {
    if status.details().is_empty() {
        return None;
    }
    rpc::Status::decode(status.details()).ok()
}

/// Decodes the first detail of type `full_name` in a `google.rpc.Status`.
pub fn find_detail<M: Message + Default>(status: &rpc::Status, full_name: &str) -> Option<M> {
    let url = format!("type.googleapis.com/{full_name}");
    status.details.iter().find(|a| a.type_url == url).and_then(|a| M::decode(a.value.as_slice()).ok())
}
