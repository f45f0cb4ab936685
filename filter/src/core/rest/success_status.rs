//! The HTTP status of a successful response: 200, a per-method default
//! (`json2grpc.rest.success_status`), or what the service asks for with the initial metadata
//! `x-http-code` (`json2grpc.rest.status_from_metadata`), as grpc-gateway services do.

/// The initial metadata a service sets the status with; never passed on as a header when
/// `status_from_metadata` is on.
pub const STATUS_METADATA: &str = "x-http-code";

/// Statuses whose responses have no content (RFC 9110 §15.3.5, §15.3.6, §15.4.5): the JSON is
/// dropped, and no content-type is sent.
pub fn has_no_body(status: u16) -> bool {
    matches!(status, 204 | 205 | 304)
}

/// What a service's `x-http-code` value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromMetadata {
    Absent,
    Status(u16),
    /// Not 3 digits from 200 to 599: ignored (and logged by the caller).
    Invalid,
}

/// Reads an `x-http-code` value: digits only, 200 to 599.
pub fn from_metadata(value: Option<&[u8]>) -> FromMetadata {
    let Some(value) = value else { return FromMetadata::Absent };
    let status = (value.len() == 3 && value.iter().all(u8::is_ascii_digit))
        .then(|| value.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
        .filter(|s| (200..=599).contains(s));
    status.map_or(FromMetadata::Invalid, FromMetadata::Status)
}

/// The status of a successful response: the service's valid `x-http-code`, else the method's
/// configured default, else 200.
pub fn choose(from_service: FromMetadata, method_default: Option<u16>) -> u16 {
    match from_service {
        FromMetadata::Status(status) => status,
        FromMetadata::Absent | FromMetadata::Invalid => method_default.unwrap_or(200),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn only_three_digits_from_200_to_599_count() {
        assert_eq!(from_metadata(None), FromMetadata::Absent);
        assert_eq!(from_metadata(Some(b"201")), FromMetadata::Status(201));
        assert_eq!(from_metadata(Some(b"599")), FromMetadata::Status(599));
        for bad in [&b"199"[..], b"600", b"20", b"2010", b" 201", b"+201", b"2x1", b"", b"\xff\xfe\xfd", b"-01"] {
            assert_eq!(from_metadata(Some(bad)), FromMetadata::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn the_service_wins_over_the_default() {
        assert_eq!(choose(FromMetadata::Absent, None), 200);
        assert_eq!(choose(FromMetadata::Absent, Some(201)), 201);
        assert_eq!(choose(FromMetadata::Invalid, Some(201)), 201);
        assert_eq!(choose(FromMetadata::Status(202), Some(201)), 202);
        assert!(has_no_body(204) && has_no_body(304) && !has_no_body(200) && !has_no_body(201));
    }
}
