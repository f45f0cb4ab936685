//! PATCH → FieldMask (`json2grpc.rest.patch_field_mask`), as grpc-gateway does: a PATCH whose
//! body is a message field, to a method whose request has one `google.protobuf.FieldMask`
//! field, gets that mask filled from the keys of the body (see [`body_keys`](crate::core::rest::body_keys))
//! unless the URL sets it. Off by default: Envoy's native transcoder sends no mask, and a service
//! may read a missing mask differently from one naming the fields sent.
use crate::core::codec::plan::{Plans, Shape, ValueKind, WellKnown};
use crate::core::codec::wire::length_delimited;
use crate::core::codec::wire::{write_tag, write_varint, LEN};
use crate::core::route::router::{BodyRule, HttpBinding};

/// The number of the request's FieldMask field if `binding` gets a mask from its body: a PATCH
/// whose body is one singular message field, and exactly one singular top-level FieldMask.
pub fn mask_field(plans: &Plans, binding: &HttpBinding) -> Option<u32> {
    if &*binding.http_method != "PATCH" {
        return None;
    }
    update_fields(plans, binding).map(|(_, mask)| mask)
}

/// An update's (resource field, FieldMask field) numbers: a binding whose body is one singular
/// message field of the request (not HttpBody), and a request with exactly one singular
/// top-level FieldMask. Its mask is relative to that field (AIP-161).
pub fn update_fields(plans: &Plans, binding: &HttpBinding) -> Option<(u32, u32)> {
    if binding.body_is_http_body {
        return None;
    }
    let BodyRule::Field(path) = &binding.body else { return None };
    let leaf = path.leaf()?;
    if leaf.is_repeated() || !matches!(leaf.kind(), crate::core::schema::Kind::Message(_)) {
        return None;
    }
    let input = plans.message(binding.method.input)?;
    let mut masks = input.fields.iter().filter(|f| {
        matches!(f.shape, Shape::Single { .. })
            && matches!(f.kind, ValueKind::Message(m) if plans.message(m).and_then(|p| p.well_known) == Some(WellKnown::FieldMask))
    });
    let mask = masks.next()?;
    let resource = path.fields().first().filter(|_| path.fields().len() == 1)?.number;
    masks.next().is_none().then_some((resource, mask.number))
}

/// Writes field `number` as a FieldMask of `paths` (nothing for no paths: no mask at all).
pub fn write(number: u32, paths: &[String], out: &mut Vec<u8>) {
    if paths.is_empty() {
        return;
    }
    length_delimited(number, out, |mask| {
        for path in paths {
            write_tag(1, LEN, mask);
            write_varint(path.len() as u64, mask);
            mask.extend_from_slice(path.as_bytes());
        }
    });
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;

    use super::*;
    use crate::core::request::Decision;
    use crate::core::transcoder::Transcoder;

    fn transcoder() -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(crate::testing::fixtures::TEST_DESCRIPTOR_SET);
        let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Docs","test.v1.Things"]}}"#);
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

    fn field(t: &Transcoder, method: &str, path: &str) -> Option<u32> {
        match t.route(method, path, None) {
            Decision::Transcode(plan) => mask_field(t.codec.plans(), &plan.binding),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn only_a_patch_of_a_message_field_with_one_mask_gets_one() {
        let t = transcoder();
        assert_eq!(field(&t, "PATCH", "/v1/docs/1"), Some(2));
        assert_eq!(field(&t, "PATCH", "/v1/things/1"), Some(3), "test.v1.UpdateRequest.update_mask");
        assert_eq!(field(&t, "PUT", "/v1/docs/1"), None, "not a PATCH");
        assert_eq!(field(&t, "PATCH", "/v1/whole/1"), None, "body \"*\"");
        assert_eq!(field(&t, "PATCH", "/v1/two/1"), None, "two masks: which one is not known");
    }

    #[test]
    fn writes_a_field_mask_or_nothing() {
        let mut out = Vec::new();
        write(2, &[], &mut out);
        assert!(out.is_empty());
        write(2, &["a".into(), "b.c".into()], &mut out);
        assert_eq!(out, [0x12, 0x08, 0x0a, 0x01, b'a', 0x0a, 0x03, b'b', b'.', b'c']);
    }
}
