//! What `json2grpc.rest` asks of a JSON request body before it is encoded: no unknown keys
//! (`reject_unknown_fields`: a 400 with a `google.rpc.BadRequest` naming each), and the field
//! mask of a PATCH (`patch_field_mask`). One scan of the body serves both; nothing is scanned
//! when neither is on.
use crate::core::codec::Codec;
use crate::core::config::RestOptions;
use crate::core::error::{Error, Result};
use crate::core::request::RequestPlan;
use crate::core::rest::body_keys::{self, Collect};
use crate::core::rest::patch_mask;
use crate::core::route::router::BodyRule;
use crate::core::schema::Kind;

/// The mask to add to the request: its field number and paths.
pub type Mask = (u32, Vec<String>);

/// Checks `body` (JSON, non-empty) against the options; the mask to add, if any.
pub fn check(
    rest: &RestOptions,
    codec: &Codec,
    plan: &RequestPlan,
    body: &[u8],
    max_depth: u32,
) -> Result<Option<Mask>> {
    let binding = &plan.binding;
    let mask_field = if rest.patch_field_mask {
        patch_mask::mask_field(codec.plans(), binding).filter(|number| !plan.url_sets_field(*number))
    } else {
        None
    };
    let collect = Collect {
        mask: mask_field.is_some(),
        unknown: rest.reject_unknown_fields,
        skip_output_only: rest.field_behavior,
    };
    if !(collect.mask || collect.unknown) || binding.body_is_http_body || body.is_empty() {
        return Ok(None);
    }
    let plans = codec.plans();
    let input = binding.method.input;
    let keys = match &binding.body {
        BodyRule::Whole | BodyRule::None => body_keys::scan(plans, input, None, body, max_depth, collect)?,
        BodyRule::Field(path) => {
            let (Some(leaf), parent) = (path.leaf(), path.parents().last()) else {
                return Ok(None);
            };
            let parent = match parent.map(|p| p.kind()) {
                Some(Kind::Message(m)) => m,
                _ => input,
            };
            let field = plans.message(parent).and_then(|p| p.field_by_number(leaf.number)).map(|(_, f)| f);
            let Some(field) = field else { return Ok(None) };
            // Unknown keys are named from the request message, in JSON names.
            let prefix = path.fields().iter().map(|f| f.json_name()).collect::<Vec<_>>().join(".");
            body_keys::scan(plans, parent, Some((field, &prefix)), body, max_depth, collect)?
        }
    };
    if keys.unknown_count > 0 {
        let violations: Vec<(String, String)> =
            keys.unknown.iter().map(|p| (p.clone(), "unknown field".to_string())).collect();
        let listed = violations.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ");
        let more = if keys.unknown_count > violations.len() { ", …" } else { "" };
        return Err(Error::bad_request_fields(
            format!("invalid JSON body: {} unknown field(s): {listed}{more}", keys.unknown_count),
            &violations,
        ));
    }
    Ok(mask_field.map(|number| (number, keys.mask)))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;
    use prost_reflect::DynamicMessage;
    use serde_json::{json, Value as Json};

    use crate::core::request::Decision;
    use crate::core::transcoder::Transcoder;
    use crate::testing::fixtures::{message as descriptor, TEST_DESCRIPTOR_SET};

    fn transcoder(rest: &str) -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(TEST_DESCRIPTOR_SET);
        let config = format!(
            r#"{{"proto_descriptor_bin":"{b64}","services":["test.v1.Docs","test.v1.Things"],
                "json2grpc": {{"rest": {rest}}}}}"#
        );
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

    /// What the service receives (JSON, proto names), or the error.
    fn call(t: &Transcoder, method: &str, path: &str, body: &str) -> Result<Json, crate::core::error::Error> {
        let Decision::Transcode(plan) = t.route(method, path, Some("application/json")) else { panic!("{path}") };
        let bytes = t.request_message(&plan, body.as_bytes(), None)?;
        let m =
            DynamicMessage::decode(descriptor(t.schema.message_name(plan.method().input)), bytes.as_slice()).unwrap();
        let mut ser = serde_json::Serializer::new(Vec::new());
        m.serialize_with_options(&mut ser, &prost_reflect::SerializeOptions::new().use_proto_field_name(true)).unwrap();
        Ok(serde_json::from_slice(&ser.into_inner()).unwrap())
    }

    /// The update_mask's paths as they are on the wire (JSON would print them in lowerCamelCase).
    fn mask_paths(t: &Transcoder, path: &str, body: &str) -> Vec<String> {
        let Decision::Transcode(plan) = t.route("PATCH", path, None) else { panic!("{path}") };
        let bytes = t.request_message(&plan, body.as_bytes(), None).unwrap();
        let m =
            DynamicMessage::decode(descriptor(t.schema.message_name(plan.method().input)), bytes.as_slice()).unwrap();
        let mask = m.get_field_by_name("update_mask").unwrap();
        let paths = mask.as_message().unwrap().get_field_by_name("paths").unwrap();
        paths.as_list().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
    }

    fn violations(e: &crate::core::error::Error) -> Vec<String> {
        e.details[0]["fieldViolations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["field"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn unknown_fields_are_dropped_unless_strict() {
        let body = r#"{"title": "t", "notes2": "x", "main": {"sku": "a", "qty": 1}}"#;
        let lenient = transcoder("{}");
        assert_eq!(
            call(&lenient, "PATCH", "/v1/docs/1", body).unwrap(),
            json!({"doc": {"id": "1", "title": "t", "main": {"sku": "a"}}})
        );
        let strict = transcoder(r#"{"reject_unknown_fields": true}"#);
        let e = call(&strict, "PATCH", "/v1/docs/1", body).unwrap_err();
        assert_eq!(e.http_status, 400);
        assert_eq!(violations(&e), ["doc.notes2", "doc.main.qty"]);
        assert_eq!(e.details[0]["@type"], "type.googleapis.com/google.rpc.BadRequest");
        assert!(e.message.contains("2 unknown field(s): doc.notes2, doc.main.qty"), "{e}");
        // Known keys in either spelling pass; so do unknown keys of a Struct (any key is valid).
        assert!(call(&strict, "PATCH", "/v1/docs/1", r#"{"title": "t", "by_key": {"k": {"sku": "s"}}}"#).is_ok());
        assert!(call(&strict, "POST", "/v1/things", r#"{"st": {"free": 1}, "customName": "x"}"#).is_ok());
        // Unknown keys inside an Any are refused too (by the encoder, without a detail).
        let any = r#"{"any": {"@type": "type.googleapis.com/test.v1.Nested", "bogus": 1}}"#;
        assert_eq!(call(&strict, "POST", "/v1/things", any).unwrap_err().http_status, 400);
        assert!(call(&lenient, "POST", "/v1/things", any).is_ok());
        // body "*": paths from the message itself.
        let e = call(&strict, "POST", "/v1/things", r#"{"items": [{"name": "a"}, {"nmae": "b"}]}"#).unwrap_err();
        assert_eq!(violations(&e), ["items[1].nmae"]);
    }

    #[test]
    fn a_patch_gets_the_mask_of_its_body_keys() {
        let t = transcoder(r#"{"patch_field_mask": true}"#);
        let body = r#"{"title": "t", "main": {"quantity": 2}, "lines": [], "byKey": {}, "note": null, "wInt64": 5}"#;
        assert_eq!(
            call(&t, "PATCH", "/v1/docs/1", body).unwrap(),
            json!({"doc": {"id": "1", "title": "t", "main": {"quantity": 2}, "w_int64": "5"},
                   "update_mask": "title,main.quantity,lines,byKey,note,wInt64"})
        );
        assert_eq!(
            mask_paths(&t, "/v1/docs/1", body),
            ["title", "main.quantity", "lines", "by_key", "note", "w_int64"]
        );
        // An explicit mask from the query wins.
        assert_eq!(
            call(&t, "PATCH", "/v1/docs/1?updateMask=title", r#"{"title": "t", "note": "n"}"#).unwrap(),
            json!({"doc": {"id": "1", "title": "t", "note": "n"}, "update_mask": "title"})
        );
        // Not a PATCH, no body keys, or the option off: no mask.
        assert_eq!(
            call(&t, "PUT", "/v1/docs/1", r#"{"title": "t"}"#).unwrap(),
            json!({"doc": {"id": "1", "title": "t"}})
        );
        assert_eq!(call(&t, "PATCH", "/v1/docs/1", "{}").unwrap(), json!({"doc": {"id": "1"}}));
        assert_eq!(call(&t, "PATCH", "/v1/docs/1", "").unwrap(), json!({"doc": {"id": "1"}}));
        let off = transcoder("{}");
        assert_eq!(
            call(&off, "PATCH", "/v1/docs/1", r#"{"title": "t"}"#).unwrap(),
            json!({"doc": {"id": "1", "title": "t"}})
        );
        // The path variable doc.id is not a body key: not in the mask.
        assert_eq!(
            call(&t, "PATCH", "/v1/docs/1", r#"{"id": "1", "parent": {"title": "p"}}"#).unwrap()["update_mask"],
            "id,parent.title"
        );
    }

    #[test]
    fn output_only_fields_stay_out_of_the_mask_when_they_are_dropped() {
        let t = transcoder(r#"{"patch_field_mask": true, "field_behavior": true}"#);
        let body = r#"{"title": "t", "priority": 1, "version": "3", "main": {"sku": "s", "price": 9}}"#;
        assert_eq!(
            call(&t, "PATCH", "/v1/docs/1", body).unwrap(),
            json!({"doc": {"id": "1", "title": "t", "priority": 1, "main": {"sku": "s"}},
                   "update_mask": "title,priority,main.sku"})
        );
    }
}
