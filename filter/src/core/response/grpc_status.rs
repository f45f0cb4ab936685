//! A gRPC call's final status (`grpc-status`, `grpc-message`, `grpc-status-details-bin`)
//! turned into the JSON error the REST client gets.
use serde_json::Value;

use crate::core::codec::wire::{write_tag, write_varint};
use crate::core::codec::Codec;
use crate::core::config::{decode_base64, PrintOptions};
use crate::core::error::Error;
use crate::core::response::status::Code;
use crate::core::schema::descriptor_proto::{each_field, payload, string, varint};

const STATUS_MESSAGE: &str = "google.rpc.Status";

/// Percent-decodes a `grpc-message` header value (gRPC over HTTP/2: `%` followed by two hex
/// digits, either case, is one byte). A `%` not followed by two hex digits is kept as is; bytes
/// that do not form UTF-8 are replaced by U+FFFD.
pub fn decode_grpc_message(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'%' {
            let hi = value.get(i.saturating_add(1)).and_then(|&c| hex_value(c));
            let lo = value.get(i.saturating_add(2)).and_then(|&c| hex_value(c));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i = i.saturating_add(3);
                continue;
            }
        }
        out.push(b);
        i = i.saturating_add(1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The final status of a gRPC call, ready to become the client's error body.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcStatus {
    pub code: Code,
    pub message: String,
    /// `google.rpc.Status.details`, each printed as proto3 JSON (`{"@type": …, …}`).
    pub details: Vec<Value>,
    /// `grpc-status` was absent or not a number: the upstream is not speaking gRPC properly.
    /// `code` is then UNKNOWN and [`into_error`](Self::into_error) answers HTTP 503, as Envoy
    /// does for such responses.
    pub status_missing: bool,
}

impl GrpcStatus {
    /// Reads the status from the response trailers (or the headers of a trailers-only response).
    ///
    /// - `grpc-status`: the code (numbers outside 0..=16 are UNKNOWN); missing or not a number
    ///   → UNKNOWN with `status_missing` set.
    /// - `grpc-message`: percent-decoded.
    /// - `grpc-status-details-bin`: base64 (standard or URL-safe, padded or not) of a
    ///   `google.rpc.Status`, decoded with the pool's `google.rpc.Status`. When valid, its
    ///   message replaces `grpc-message` (unless empty) and its `details` are printed. The code
    ///   always comes from `grpc-status` (a disagreeing code in the details is only logged).
    ///   Undecodable details are ignored (logged at debug level).
    ///
    /// Each detail `Any` is printed on its own, with the default print options (lowerCamelCase
    /// JSON names, enums as names, default values omitted) whatever the route's `print_options`,
    /// so error bodies have one stable shape. A detail whose type is not in the pool (or cannot
    /// be printed) becomes `{"@type": "<type url>", "value": "<base64 of its bytes>"}`; the
    /// other details are unaffected.
    pub fn from_metadata(
        codec: &Codec,
        grpc_status: Option<&[u8]>,
        grpc_message: Option<&[u8]>,
        details_bin: Option<&[u8]>,
    ) -> GrpcStatus {
        let parsed = grpc_status.and_then(Code::from_header);
        let mut message = grpc_message.map(decode_grpc_message).unwrap_or_default();
        let mut details = Vec::new();
        if let Some(status) = details_bin.and_then(|bin| decode_status(codec, bin)) {
            if let Some(code) = parsed {
                if status.code != code as i32 {
                    log::debug!(
                        "grpc-status-details-bin code {} disagrees with grpc-status {}; using grpc-status",
                        status.code,
                        code as i32
                    );
                }
            }
            if !status.message.is_empty() {
                message = status.message;
            }
            details = status.details;
        }
        let status_missing = parsed.is_none();
        if status_missing && message.is_empty() {
            message = match grpc_status {
                None => "upstream gRPC response has no grpc-status".to_string(),
                Some(v) => {
                    format!("upstream gRPC response has an invalid grpc-status \"{}\"", String::from_utf8_lossy(v))
                }
            };
        }
        GrpcStatus { code: parsed.unwrap_or(Code::Unknown), message, details, status_missing }
    }

    /// True for a well-formed OK status.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok && !self.status_missing
    }

    /// The error sent to the client; its HTTP status follows the gRPC → HTTP table (503 when
    /// `grpc-status` was missing or invalid).
    pub fn into_error(self) -> Error {
        let http_status = if self.status_missing { 503 } else { self.code.http_status() };
        Error { code: self.code, http_status, message: self.message, details: self.details }
    }
}

/// The parts of a decoded `grpc-status-details-bin`.
struct DetailsStatus {
    code: i32,
    message: String,
    details: Vec<Value>,
}

/// `google.protobuf.Any`: a detail of the status.
#[derive(Debug, Clone, Default, PartialEq)]
struct Any {
    type_url: String,
    value: Vec<u8>,
}

impl Any {
    /// The canonical encoding (empty fields left out).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.type_url.len() + self.value.len() + 8);
        for (number, bytes) in [(1, self.type_url.as_bytes()), (2, self.value.as_slice())] {
            if !bytes.is_empty() {
                write_tag(number, 2, &mut out);
                write_varint(bytes.len() as u64, &mut out);
                out.extend_from_slice(bytes);
            }
        }
        out
    }
}

/// `google.rpc.Status` as it travels in `grpc-status-details-bin`: `int32 code = 1; string
/// message = 2; repeated google.protobuf.Any details = 3;`, read as protobuf parses it.
fn decode_rpc_status(bytes: &[u8]) -> Result<(i32, String, Vec<Any>), String> {
    let (mut code, mut message, mut details) = (0, String::new(), Vec::new());
    each_field(bytes, STATUS_MESSAGE, |f| {
        match f.number {
            1 => code = varint(f, "code")? as i32,
            2 => message = string(f, "message")?,
            3 => {
                let mut any = Any::default();
                each_field(payload(f, "details")?, "google.protobuf.Any", |a| {
                    match a.number {
                        1 => any.type_url = string(a, "type_url")?,
                        2 => any.value = payload(a, "value")?.to_vec(),
                        _ => {}
                    }
                    Ok(())
                })?;
                details.push(any);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok((code, message, details))
}

fn decode_status(codec: &Codec, bin: &[u8]) -> Option<DetailsStatus> {
    let Some(bytes) = std::str::from_utf8(bin).ok().and_then(|text| decode_base64(text.trim())) else {
        log::debug!("grpc-status-details-bin ignored: not valid base64");
        return None;
    };
    let (code, message, details) = match decode_rpc_status(&bytes) {
        Ok(status) => status,
        Err(e) => {
            log::debug!("grpc-status-details-bin ignored: not a {STATUS_MESSAGE}: {e}");
            return None;
        }
    };
    let details = details.iter().map(|any| print_any(codec, any)).collect();
    Some(DetailsStatus { code, message, details })
}

/// Prints one `google.protobuf.Any` as proto3 JSON, or as type URL + base64 bytes when its
/// type is unknown to the descriptors or its bytes do not decode.
fn print_any(codec: &Codec, any: &Any) -> Value {
    let printed = codec.index_of("google.protobuf.Any").and_then(|index| {
        let mut out = Vec::new();
        match codec.binary_to_json(index, &any.encode(), &PrintOptions::default(), &mut out) {
            Ok(()) => serde_json::from_slice(&out).ok(),
            Err(e) => {
                log::debug!("status detail {} printed as bytes: {e}", any.type_url);
                None
            }
        }
    });
    printed.unwrap_or_else(|| {
        use base64::Engine as _;
        let value = base64::engine::general_purpose::STANDARD.encode(&any.value);
        serde_json::json!({"@type": any.type_url, "value": value})
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine as _;
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage};
    use serde_json::json;

    use super::*;
    use crate::testing::fixtures::TEST_DESCRIPTOR_SET;
    use crate::testing::reflect_pool::load_pool;

    fn pool() -> DescriptorPool {
        load_pool(TEST_DESCRIPTOR_SET).unwrap()
    }

    /// Encodes `json` as a message of type `name` from the pool.
    fn encode(pool: &DescriptorPool, name: &str, json: Value) -> Vec<u8> {
        let desc = pool.get_message_by_name(name).unwrap();
        DynamicMessage::deserialize(desc, json).unwrap().encode_to_vec()
    }

    fn any(pool: &DescriptorPool, name: &str, json: Value) -> prost_types::Any {
        prost_types::Any { type_url: format!("type.googleapis.com/{name}"), value: encode(pool, name, json) }
    }

    /// A `google.rpc.Status` as the bytes of `grpc-status-details-bin`.
    fn status_bytes(code: i32, message: &str, details: Vec<prost_types::Any>) -> Vec<u8> {
        #[derive(Clone, PartialEq, Message)]
        struct Status {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
            #[prost(message, repeated, tag = "3")]
            details: Vec<prost_types::Any>,
        }
        Status { code, message: message.to_string(), details }.encode_to_vec()
    }

    fn unpadded(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    }

    fn status(code: &str, message: Option<&str>, details_bin: Option<&str>) -> GrpcStatus {
        GrpcStatus::from_metadata(
            &Codec::from_pool(&pool()).unwrap(),
            Some(code.as_bytes()),
            message.map(str::as_bytes),
            details_bin.map(str::as_bytes),
        )
    }

    fn error_details(pool: &DescriptorPool) -> Vec<prost_types::Any> {
        vec![
            any(
                pool,
                "google.rpc.ErrorInfo",
                json!({"reason": "STOCK", "domain": "shop.example", "metadata": {"sku": "A1"}}),
            ),
            any(
                pool,
                "google.rpc.PreconditionFailure",
                json!({"violations": [{"type": "STOCK", "subject": "sku/A1", "description": "none left"}]}),
            ),
        ]
    }

    #[test]
    fn percent_decoding() {
        let cases: [(&[u8], &str); 14] = [
            (b"plain text", "plain text"),
            (b"a%20b", "a b"),
            (b"100%25", "100%"),
            (b"caf%C3%A9", "café"),
            (b"caf%c3%a9", "café"),
            (b"%", "%"),
            (b"50% off", "50% off"),
            (b"%G0", "%G0"),
            (b"%0G", "%0G"),
            (b"end%2", "end%2"),
            (b"%%41", "%A"),
            (b"%FF", "\u{FFFD}"),
            (b"raw \xff byte", "raw \u{FFFD} byte"),
            (b"", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_grpc_message(input), expected, "{}", String::from_utf8_lossy(input));
        }
        // Envoy's suffix on local gRPC errors survives
        assert_eq!(decode_grpc_message(b"no%20healthy%20upstream{via_upstream}"), "no healthy upstream{via_upstream}");
    }

    #[test]
    fn status_from_headers_only() {
        let s = status("9", Some("out%20of%20stock"), None);
        assert_eq!(
            s,
            GrpcStatus {
                code: Code::FailedPrecondition,
                message: "out of stock".into(),
                details: vec![],
                status_missing: false
            }
        );
        let e = s.into_error();
        assert_eq!(e.http_status, 400);
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v, json!({"code": 9, "message": "out of stock", "details": []}));
    }

    #[test]
    fn every_code_maps_to_its_http_status() {
        for (code, http) in [(0, 200), (1, 499), (5, 404), (7, 403), (8, 429), (14, 503), (16, 401)] {
            let e = status(&code.to_string(), None, None).into_error();
            assert_eq!(e.code as i32, code);
            assert_eq!(e.http_status, http);
        }
        assert!(status("0", None, None).is_ok());
        assert!(!status("2", None, None).is_ok());
    }

    #[test]
    fn out_of_range_codes_are_unknown() {
        for code in ["99", "-1", "17", " 99 "] {
            let e = status(code, Some("boom"), None).into_error();
            assert_eq!((e.code, e.http_status, e.message.as_str()), (Code::Unknown, 500, "boom"), "{code}");
        }
    }

    #[test]
    fn missing_or_invalid_grpc_status_is_503() {
        let s = GrpcStatus::from_metadata(&Codec::from_pool(&pool()).unwrap(), None, None, None);
        assert!(s.status_missing);
        assert!(!s.is_ok());
        let e = s.into_error();
        assert_eq!((e.code, e.http_status), (Code::Unknown, 503));
        assert_eq!(e.message, "upstream gRPC response has no grpc-status");

        for bad in ["", "abc", "1.5", "0x5", "99999999999"] {
            let e = status(bad, None, None).into_error();
            assert_eq!((e.code, e.http_status), (Code::Unknown, 503), "{bad:?}");
            assert_eq!(e.message, format!("upstream gRPC response has an invalid grpc-status \"{bad}\""));
        }
        // a grpc-message is still reported
        let e = GrpcStatus::from_metadata(&Codec::from_pool(&pool()).unwrap(), None, Some(b"went%20away"), None)
            .into_error();
        assert_eq!((e.http_status, e.message.as_str()), (503, "went away"));
    }

    #[test]
    fn details_bin_is_printed_as_json() {
        let pool = pool();
        let bin = status_bytes(9, "out of stock", error_details(&pool));
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(&bin),
            unpadded(&bin),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bin),
        ] {
            let s = GrpcStatus::from_metadata(
                &Codec::from_pool(&pool).unwrap(),
                Some(b"9"),
                Some(b"header%20text"),
                Some(encoded.as_bytes()),
            );
            let v: Value = serde_json::from_slice(&s.into_error().to_json()).unwrap();
            assert_eq!(
                v,
                json!({
                    "code": 9,
                    "message": "out of stock",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "STOCK",
                            "domain": "shop.example",
                            "metadata": {"sku": "A1"}
                        },
                        {
                            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
                            "violations": [{"type": "STOCK", "subject": "sku/A1", "description": "none left"}]
                        }
                    ]
                })
            );
        }
    }

    #[test]
    fn unknown_detail_types_keep_their_bytes_and_do_not_hide_others() {
        let pool = pool();
        let mut details = error_details(&pool);
        let unknown = prost_types::Any { type_url: "type.googleapis.com/acme.Secret".into(), value: vec![8, 1, 0xff] };
        details.insert(1, unknown);
        // a known type whose bytes do not decode as that type
        details.push(prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: vec![0x0a, 0x05, b'a'],
        });
        let bin = unpadded(&status_bytes(9, "out of stock", details));
        let s = status("9", None, Some(&bin));
        assert_eq!(s.details.len(), 4);
        assert_eq!(s.details[0]["reason"], "STOCK");
        assert_eq!(s.details[1], json!({"@type": "type.googleapis.com/acme.Secret", "value": "CAH/"}));
        assert_eq!(s.details[2]["@type"], "type.googleapis.com/google.rpc.PreconditionFailure");
        assert_eq!(s.details[3], json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "value": "CgVh"}));
    }

    #[test]
    fn details_of_the_users_types_and_well_known_types() {
        let pool = pool();
        let details = vec![
            any(&pool, "test.v1.Nested", json!({"name": "n"})),
            any(&pool, "google.protobuf.Duration", json!("1.5s")),
            prost_types::Any { type_url: "no-slash".into(), value: vec![] },
        ];
        let bin = unpadded(&status_bytes(3, "bad", details));
        let s = status("3", None, Some(&bin));
        assert_eq!(
            s.details,
            vec![
                json!({"@type": "type.googleapis.com/test.v1.Nested", "name": "n"}),
                json!({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.500s"}),
                json!({"@type": "no-slash", "value": ""}),
            ]
        );
    }

    #[test]
    fn details_code_does_not_override_grpc_status() {
        let bin = unpadded(&status_bytes(5, "from details", vec![]));
        let e = status("9", Some("from header"), Some(&bin)).into_error();
        assert_eq!((e.code, e.http_status, e.message.as_str()), (Code::FailedPrecondition, 400, "from details"));
    }

    #[test]
    fn empty_details_message_keeps_grpc_message() {
        let bin = unpadded(&status_bytes(9, "", vec![]));
        let s = status("9", Some("from%20header"), Some(&bin));
        assert_eq!(s.message, "from header");
        // an empty details-bin is a valid empty Status
        let s = status("9", Some("m"), Some(""));
        assert_eq!((s.message.as_str(), s.details.len()), ("m", 0));
    }

    #[test]
    fn details_with_missing_grpc_status_still_answer_503() {
        let pool = pool();
        let bin = unpadded(&status_bytes(9, "out of stock", error_details(&pool)));
        let e =
            GrpcStatus::from_metadata(&Codec::from_pool(&pool).unwrap(), None, None, Some(bin.as_bytes())).into_error();
        assert_eq!((e.code, e.http_status, e.message.as_str()), (Code::Unknown, 503, "out of stock"));
        assert_eq!(e.details.len(), 2);
    }

    #[test]
    fn invalid_details_bin_falls_back_to_headers() {
        let garbage_proto = unpadded(&[0xff, 0xff, 0xff]);
        let truncated = unpadded(&status_bytes(9, "out of stock", vec![])[..4]);
        let wrong_type = unpadded(&[0x08, 0x01, 0x12, 0x02, 0xc3, 0x28]); // message not UTF-8
        let bad: [&[u8]; 6] = [
            b"!!not base64!!",
            b"QUJD=x",
            b"\xff\xfe",
            garbage_proto.as_bytes(),
            truncated.as_bytes(),
            wrong_type.as_bytes(),
        ];
        for bin in bad {
            let s = GrpcStatus::from_metadata(
                &Codec::from_pool(&pool()).unwrap(),
                Some(b"8"),
                Some(b"slow%20down"),
                Some(bin),
            );
            assert_eq!(
                s,
                GrpcStatus {
                    code: Code::ResourceExhausted,
                    message: "slow down".into(),
                    details: vec![],
                    status_missing: false
                },
                "{}",
                String::from_utf8_lossy(bin)
            );
        }
    }

    #[test]
    fn detail_types_unknown_to_the_descriptors_print_as_bytes() {
        // google.rpc.Status itself needs no descriptor; details whose type is unknown (or an
        // empty pool without even google.protobuf.Any) still reach the client, as bytes.
        let empty = DescriptorPool::new();
        let detail = prost_types::Any { type_url: "type.googleapis.com/x.Y".into(), value: vec![1, 2] };
        let bin = unpadded(&status_bytes(9, "from details", vec![detail]));
        let s = GrpcStatus::from_metadata(
            &Codec::from_pool(&empty).unwrap(),
            Some(b"9"),
            Some(b"hdr"),
            Some(bin.as_bytes()),
        );
        assert_eq!((s.code, s.message.as_str()), (Code::FailedPrecondition, "from details"));
        assert_eq!(s.details, vec![serde_json::json!({"@type": "type.googleapis.com/x.Y", "value": "AQI="})]);
    }
}
