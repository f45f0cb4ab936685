//! gRPC server reflection answered from a FileDescriptorSet file, read anew for every request:
//! the end-to-end tests replace the file to change the API a server describes (a new method, a
//! changed message, a broken or oversized set) without restarting it. `grpc_chaos --reflection`
//! serves it.
//!
//! The request stream's messages are answered one by one, in order, as a reflection server does:
//! `list_services`, `file_containing_symbol` (a service, method, message or enum) and
//! `file_by_filename`; anything else, or a name the set lacks, gets an `ErrorResponse`
//! (NOT_FOUND).
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The reflection methods (v1 and v1alpha share their messages).
pub const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
pub const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

#[derive(Clone, PartialEq, Message)]
struct Request {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(string, optional, tag = "3")]
    file_by_filename: Option<String>,
    #[prost(string, optional, tag = "4")]
    file_containing_symbol: Option<String>,
    #[prost(string, optional, tag = "7")]
    list_services: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Response {
    #[prost(string, tag = "1")]
    valid_host: String,
    #[prost(message, optional, tag = "2")]
    original_request: Option<Request>,
    #[prost(message, optional, tag = "4")]
    file_descriptor_response: Option<FileDescriptorResponse>,
    #[prost(message, optional, tag = "6")]
    list_services_response: Option<ListServiceResponse>,
    #[prost(message, optional, tag = "7")]
    error_response: Option<ErrorResponse>,
}

#[derive(Clone, PartialEq, Message)]
struct FileDescriptorResponse {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file_descriptor_proto: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct ListServiceResponse {
    #[prost(message, repeated, tag = "1")]
    service: Vec<ServiceResponse>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceResponse {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, Message)]
struct ErrorResponse {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// The answers (unframed messages) to the framed request messages of `body`, from `set` (the
/// raw bytes of a FileDescriptorSet file: served as they are, even when they do not decode).
pub fn answer(set_bytes: &[u8], body: &[u8]) -> Vec<Vec<u8>> {
    let set = FileDescriptorSet::decode(set_bytes).unwrap_or_default();
    let raw_files = raw_files(set_bytes);
    let mut out = Vec::new();
    let mut rest = body;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(message) = rest.get(5..5 + len) else { break };
        rest = &rest[5 + len..];
        let request = Request::decode(message).unwrap_or_default();
        let mut response = Response { original_request: Some(request.clone()), ..Default::default() };
        let found = if request.list_services.is_some() {
            let service = set
                .file
                .iter()
                .flat_map(|f| f.service.iter().map(move |s| qualified(f, s.name())))
                .map(|name| ServiceResponse { name })
                .collect();
            response.list_services_response = Some(ListServiceResponse { service });
            true
        } else {
            let index = match (&request.file_containing_symbol, &request.file_by_filename) {
                (Some(symbol), _) => set.file.iter().position(|f| defines(f, symbol)),
                (_, Some(name)) => set.file.iter().position(|f| f.name() == name),
                _ => None,
            };
            match index.and_then(|i| raw_files.get(i)) {
                Some(raw) => {
                    response.file_descriptor_response =
                        Some(FileDescriptorResponse { file_descriptor_proto: vec![raw.clone()] });
                    true
                }
                None => false,
            }
        };
        if !found {
            response.error_response =
                Some(ErrorResponse { error_code: 5, error_message: "not found in the descriptor set".into() });
        }
        out.push(response.encode_to_vec());
    }
    out
}

/// The encoded FileDescriptorProtos of a set, as they are in the file (field 1 of the set).
fn raw_files(set: &[u8]) -> Vec<Vec<u8>> {
    #[derive(Clone, PartialEq, Message)]
    struct RawSet {
        #[prost(bytes = "vec", repeated, tag = "1")]
        file: Vec<Vec<u8>>,
    }
    RawSet::decode(set).map(|s| s.file).unwrap_or_default()
}

fn qualified(file: &FileDescriptorProto, name: &str) -> String {
    if file.package().is_empty() {
        name.to_string()
    } else {
        format!("{}.{name}", file.package())
    }
}

/// Whether `file` defines `symbol`: a service (or one of its methods), a message (nested
/// too) or an enum.
fn defines(file: &FileDescriptorProto, symbol: &str) -> bool {
    let services = file.service.iter().any(|s| {
        let name = qualified(file, s.name());
        name == symbol || s.method.iter().any(|m| format!("{name}.{}", m.name()) == symbol)
    });
    let enums = file.enum_type.iter().any(|e| qualified(file, e.name()) == symbol);
    services || enums || file.message_type.iter().any(|m| message_defines(&qualified(file, m.name()), m, symbol))
}

fn message_defines(name: &str, message: &DescriptorProto, symbol: &str) -> bool {
    name == symbol
        || message.enum_type.iter().any(|e| format!("{name}.{}", e.name()) == symbol)
        || message.nested_type.iter().any(|n| message_defines(&format!("{name}.{}", n.name()), n, symbol))
}
