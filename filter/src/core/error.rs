//! The one error type of the core: every failure carries the gRPC code, the HTTP status the
//! client gets, and a message, and renders as a `google.rpc.Status`-shaped JSON body.
use std::fmt;

use crate::core::response::status::Code;

/// A request or response the core refuses, or an upstream failure it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: Code,
    pub http_status: u16,
    pub message: String,
    /// `google.rpc.Status.details`, already printed as JSON (`{"@type": …, …}`).
    pub details: Vec<serde_json::Value>,
}

impl Error {
    /// An error whose HTTP status follows the gRPC → HTTP table.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, http_status: code.http_status(), message: message.into(), details: Vec::new() }
    }

    /// 400 INVALID_ARGUMENT: the client sent something that cannot be transcoded.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// 404 NOT_FOUND: no method matches (`reject_unknown_method`).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// 413: the request body is over `max_request_body_size`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Error { http_status: 413, ..Self::new(Code::ResourceExhausted, message) }
    }

    /// 502: the upstream answered with something that is not a valid gRPC response.
    pub fn bad_upstream(message: impl Into<String>) -> Self {
        Error { http_status: 502, ..Self::new(Code::Internal, message) }
    }

    /// 500 INTERNAL: a limit on the response side, or a bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// 400 INVALID_ARGUMENT with a `google.rpc.BadRequest` detail: one field violation per
    /// `(field path, description)`.
    pub fn bad_request_fields(message: impl Into<String>, violations: &[(String, String)]) -> Self {
        let violations: Vec<serde_json::Value> = violations
            .iter()
            .map(|(field, description)| serde_json::json!({"field": field, "description": description}))
            .collect();
        let detail = serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": violations,
        });
        Error { details: vec![detail], ..Self::bad_request(message) }
    }

    pub fn with_http_status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    /// Prefixes the message with where the problem is (`field "a.b": …`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The body sent to the client: `{"code":3,"message":"…","details":[…]}`.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            code: i32,
            message: &'a str,
            details: &'a [serde_json::Value],
        }
        let body = Body { code: self.code as i32, message: &self.message, details: &self.details };
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"code\":13}".to_vec())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}): {}", self.http_status, self.code, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn renders_google_rpc_status_json() {
        let e = Error::bad_request("field \"id\": expected a string");
        assert_eq!(e.http_status, 400);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"code": 3, "message": "field \"id\": expected a string", "details": []}));
    }

    #[test]
    fn field_violations_are_a_bad_request_detail() {
        let e = Error::bad_request_fields("2 unknown fields", &[("a.b".into(), "unknown".into())]);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": 3, "message": "2 unknown fields", "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "a.b", "description": "unknown"}]}]})
        );
    }

    #[test]
    fn special_statuses_keep_their_grpc_code() {
        assert_eq!(Error::payload_too_large("x").http_status, 413);
        assert_eq!(Error::payload_too_large("x").code, Code::ResourceExhausted);
        assert_eq!(Error::bad_upstream("x").http_status, 502);
        assert_eq!(Error::not_found("x").http_status, 404);
    }
}
