//! The generator feature by feature, on the unit tests' schema (transcode_test.proto: every
//! mapping shape) and its own (openapi_test.proto: comments, field behaviors, odd bindings).
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use base64::Engine;
use serde_json::{json, Value};

use super::{generate, render};
use crate::core::transcoder::Transcoder;
use crate::testing::fixtures::{OPENAPI_TEST_SET, TEST_DESCRIPTOR_SET};

fn transcoder(set: &[u8], services: &[&str], extra: &str) -> Transcoder {
    let b64 = base64::engine::general_purpose::STANDARD.encode(set);
    let services = serde_json::to_string(services).unwrap();
    let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":{services}{extra}}}"#);
    Transcoder::from_json(config.as_bytes()).unwrap()
}

fn things(extra: &str) -> Value {
    generate(&transcoder(TEST_DESCRIPTOR_SET, &["test.v1.Things"], extra))
}

fn library() -> Value {
    generate(&transcoder(OPENAPI_TEST_SET, &["doc.v1.Library"], ""))
}

fn op<'d>(doc: &'d Value, path: &str, method: &str) -> &'d Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path} in {:#}", doc["paths"]);
    op
}

/// name → parameter object.
fn params(op: &Value) -> Vec<(String, Value)> {
    op["parameters"]
        .as_array()
        .map_or(Vec::new(), |ps| ps.iter().map(|p| (p["name"].as_str().unwrap().to_string(), p.clone())).collect())
}

fn param(op: &Value, name: &str) -> Value {
    params(op).into_iter().find(|(n, _)| n == name).map(|(_, p)| p).unwrap_or_else(|| panic!("no {name}: {op:#}"))
}

fn names(op: &Value) -> Vec<String> {
    params(op).into_iter().map(|(n, _)| n).collect()
}

fn schema<'d>(doc: &'d Value, name: &str) -> &'d Value {
    &doc["components"]["schemas"][name]
}

#[test]
fn every_binding_is_an_operation() {
    let doc = things(r#","auto_mapping":true"#);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(op(&doc, "/v1/things/{id}", "get")["operationId"], "test.v1.Things.Get");
    // additional_bindings: their own operation, numbered.
    let nested = op(&doc, "/v1/nested/{nested_name}/things/{id}", "get");
    assert_eq!(nested["operationId"], "test.v1.Things.Get_2");
    assert_eq!(nested["x-json2grpc-rpc"], "/test.v1.Things/Get");
    assert_eq!(nested["x-json2grpc-template"], "/v1/nested/{nested.name}/things/{id}");
    for (path, method) in [
        ("/v1/things/{id}", "post"),
        ("/v1/things/{id}", "patch"),
        ("/v1/things/{id}", "delete"),
        ("/v1/things/{id}:reserve", "post"),
        ("/v1/shelves/{name_1}/books/{name_2}", "get"),
        ("/v2/files/{rest}", "get"),
        ("/v3/{name}/x/{other}", "get"),
        ("/v1/custom/{id}", "head"),
        // auto_mapping
        ("/test.v1.Things/Unannotated", "post"),
    ] {
        op(&doc, path, method);
    }
    assert_eq!(op(&doc, "/v1/things/{id}", "get")["tags"], json!(["test.v1.Things"]));
    // HEAD answers no body.
    assert!(op(&doc, "/v1/custom/{id}", "head")["responses"]["200"].get("content").is_none());
    assert!(doc.get("x-json2grpc-unexpressed").is_none());
    assert!(things("")["paths"].get("/test.v1.Things/Unannotated").is_none(), "auto_mapping off");
    // What a query parameter naming no field does is said once, for the whole API.
    let info = |extra: &str| things(extra)["info"]["description"].as_str().unwrap().to_string();
    assert!(info("").contains("passes the request through untranscoded"));
    assert!(info(r#","ignore_unknown_query_parameters":true"#).contains("is ignored"));
    assert!(info(r#","request_validation_options":{"reject_unknown_query_parameters":true}"#).contains("is a 400"));
}

#[test]
fn path_parameters_name_their_fields() {
    let doc = things("");
    let p = param(op(&doc, "/v1/nested/{nested_name}/things/{id}", "get"), "nested_name");
    assert_eq!(p["in"], "path");
    assert_eq!(p["required"], true);
    assert_eq!(p["x-json2grpc-field"], "nested.name");
    assert_eq!(p["schema"], json!({"type": "string", "minLength": 1}));
    let files = param(op(&doc, "/v2/files/{rest}", "get"), "rest");
    assert_eq!(files["x-json2grpc-multi-segment"], true);
    let shelves = param(op(&doc, "/v1/shelves/{name_1}/books/{name_2}", "get"), "name_2");
    assert_eq!(shelves["x-json2grpc-field"], "name");
}

#[test]
fn query_parameters_cover_every_leaf_the_path_and_body_leave() {
    let doc = things("");
    let query = op(&doc, "/v1/query", "get");
    let all = names(query);
    for name in [
        "id",
        "scalars.fDouble",
        "scalars.fInt64",
        "scalars.fBytes",
        "scalars.fEnum",
        "scalars.fOptional",
        "nested.name",
        "nested.value",
        "tags",
        "numbers",
        "colors",
        "labels",
        "flags",
        "choiceText",
        "choiceNested.name",
        "customName",
        "ts",
        "dur",
        "mask",
        "wInt32",
        "wBytes",
        "val",
        "timestamps",
    ] {
        assert!(all.contains(&name.to_string()), "{name} missing from {all:?}");
    }
    // Not settable from a URL: messages without a string form, lists of messages, maps of
    // messages; recursion stops at a type already on the way.
    for name in ["items", "items.name", "byNumber", "st", "list", "any", "empty", "nested.child.name"] {
        assert!(!all.contains(&name.to_string()), "{name} in {all:?}");
    }
    assert_eq!(param(query, "scalars.fInt64")["schema"]["type"], "integer");
    assert_eq!(param(query, "scalars.fInt64")["schema"]["format"], "int64");
    assert_eq!(param(query, "scalars.fBool").get("schema"), Some(&json!({"type": "boolean"})));
    assert_eq!(param(query, "scalars.fEnum")["schema"], json!({"$ref": "#/components/schemas/test.v1.Color"}));
    let tags = param(query, "tags");
    assert_eq!(
        (&tags["schema"]["type"], &tags["style"], &tags["explode"]),
        (&json!("array"), &json!("form"), &json!(true))
    );
    let labels = param(query, "labels");
    assert_eq!(labels["style"], "deepObject");
    assert_eq!(labels["schema"]["additionalProperties"], json!({"type": "string"}));
    let flags = param(query, "flags");
    assert_eq!(flags["schema"]["propertyNames"], json!({"enum": ["true", "false"]}));
    assert_eq!(flags["schema"]["additionalProperties"]["type"], "integer");
    assert_eq!(param(query, "ts")["schema"], json!({"type": "string", "format": "date-time"}));
    assert!(param(query, "dur")["schema"]["pattern"].as_str().unwrap().ends_with("s$"));
    assert_eq!(param(query, "wBytes")["schema"]["contentEncoding"], "base64");
    assert_eq!(param(query, "timestamps")["schema"]["items"]["format"], "date-time");
    // Path-bound fields are not query parameters; others of the same message are.
    assert_eq!(
        names(op(&doc, "/v1/things/{id}", "get")),
        ["id", "nested.name", "nested.value", "pageToken", "pageSize"]
    );
    assert_eq!(
        names(op(&doc, "/v1/nested/{nested_name}/things/{id}", "get")),
        ["nested_name", "id", "nested.value", "pageToken", "pageSize"]
    );
    // body "*": no query parameters; body "item": what is outside it.
    assert_eq!(names(op(&doc, "/v1/things/{id}", "post")), ["id"]);
    assert_eq!(names(op(&doc, "/v1/things/{id}", "patch")), ["id", "updateMask"]);
    // Proto names with preserve_proto_field_names; ignored_query_parameters are left out.
    let doc =
        things(r#","print_options":{"preserve_proto_field_names":true},"ignored_query_parameters":["page_token"]"#);
    let get = names(op(&doc, "/v1/things/{id}", "get"));
    assert_eq!(get, ["id", "nested.name", "nested.value", "page_size"]);
    assert!(names(op(&doc, "/v1/query", "get")).contains(&"scalars.f_int64".to_string()));
}

#[test]
fn request_bodies_follow_the_body_rule() {
    let doc = things("");
    let body = |path: &str, method: &str| op(&doc, path, method)["requestBody"]["content"].clone();
    assert_eq!(
        body("/v1/things", "post")["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/test.v1.Everything"})
    );
    assert_eq!(
        body("/v1/things/{id}", "patch")["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/test.v1.Everything"})
    );
    assert_eq!(
        body("/v1/things/{id}/nested", "put")["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/test.v1.Nested"})
    );
    assert_eq!(
        body("/v1/tags", "post")["application/json"]["schema"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert!(body("/v1/upload/{id}", "post")["*/*"].is_object(), "HttpBody field: any content type");
    assert!(body("/v1/raw", "post")["*/*"].is_object(), "HttpBody request");
    let stream = body("/v1/bulk", "post");
    assert_eq!(stream["application/json"]["schema"]["type"], "array");
    assert_eq!(stream["application/json"]["schema"]["items"]["$ref"], "#/components/schemas/test.v1.Everything");
    assert!(stream["application/x-ndjson"].is_object());
    assert!(op(&doc, "/v1/things/{id}", "get").get("requestBody").is_none());
}

#[test]
fn responses_follow_response_body_and_the_stream_format() {
    let doc = things("");
    let ok = |doc: &Value, path: &str, method: &str| op(doc, path, method)["responses"]["200"]["content"].clone();
    assert_eq!(
        ok(&doc, "/v1/things/{id}", "get")["application/json"]["schema"]["$ref"],
        "#/components/schemas/test.v1.Everything"
    );
    assert_eq!(
        ok(&doc, "/v1/nested-response/{id}", "get")["application/json"]["schema"]["$ref"],
        "#/components/schemas/test.v1.Nested"
    );
    assert!(ok(&doc, "/v1/download/{id}", "get")["*/*"].is_object(), "HttpBody response");
    let array = &ok(&doc, "/v1/stream/{id}", "get")["application/json"]["schema"];
    assert_eq!(array["type"], "array");
    assert_eq!(array["items"]["anyOf"][0]["$ref"], "#/components/schemas/test.v1.Everything");
    assert_eq!(array["items"]["anyOf"][1]["properties"]["error"]["$ref"], "#/components/schemas/google.rpc.Status");
    let ndjson = things(r#","print_options":{"stream_newline_delimited":true}"#);
    let lines = ok(&ndjson, "/v1/stream/{id}", "get");
    assert!(lines["application/x-ndjson"]["x-json2grpc-item-schema"]["anyOf"].is_array(), "{lines:#}");
    let sse = things(r#","print_options":{"stream_sse_style_delimited":true}"#);
    // An event stream's schema is one event (OpenAPI before 3.2): its `event` and its JSON
    // `data` (schemathesis found the whole stream described as a string).
    let events = &ok(&sse, "/v1/stream/{id}", "get")["text/event-stream"]["schema"]["anyOf"];
    assert_eq!(events[0]["properties"]["event"], json!({"const": "message"}));
    assert_eq!(events[0]["properties"]["data"]["contentMediaType"], "application/json");
    assert_eq!(events[0]["properties"]["data"]["contentSchema"]["$ref"], "#/components/schemas/test.v1.Everything");
    assert_eq!(events[1]["properties"]["event"], json!({"const": "error"}));
    assert_eq!(events[1]["properties"]["data"]["contentSchema"]["$ref"], "#/components/schemas/google.rpc.Status");
    assert_eq!(events[1]["required"], json!(["data"]));
    // Errors: google.rpc.Status with every status json2grpc answers; 413 only with a body.
    let responses = &op(&doc, "/v1/things/{id}", "get")["responses"];
    let statuses: Vec<&String> = responses.as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["200", "400", "401", "403", "404", "409", "429", "499", "500", "501", "502", "503", "504"]);
    assert_eq!(responses["404"]["$ref"], "#/components/responses/Error");
    assert!(op(&doc, "/v1/things", "post")["responses"]["413"].is_object());
    let error = &doc["components"]["responses"]["Error"]["content"]["application/json"]["schema"];
    assert_eq!(error["$ref"], "#/components/schemas/google.rpc.Status");
    let status = schema(&doc, "google.rpc.Status");
    assert_eq!(status["properties"]["details"]["items"]["$ref"], "#/components/schemas/google.protobuf.Any");
}

#[test]
fn schemas_follow_proto3_json() {
    let doc = things("");
    let scalars = &schema(&doc, "test.v1.Scalars")["properties"];
    assert_eq!(
        scalars["fInt32"],
        json!({"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX})
    );
    assert_eq!(scalars["fInt64"]["type"], json!(["string", "integer"]));
    assert_eq!(scalars["fUint64"]["pattern"], "^[0-9]+$");
    assert_eq!(scalars["fDouble"]["oneOf"][1]["enum"], json!(["NaN", "Infinity", "-Infinity"]));
    assert_eq!(scalars["fBytes"], json!({"type": "string", "contentEncoding": "base64"}));
    assert_eq!(scalars["fBool"], json!({"type": "boolean"}));
    assert_eq!(scalars["fEnum"]["$ref"], "#/components/schemas/test.v1.Color");
    let everything = schema(&doc, "test.v1.Everything");
    let props = &everything["properties"];
    assert!(props["customName"].is_object() && props.get("renamed").is_none(), "json_name");
    assert_eq!(props["tags"], json!({"type": "array", "items": {"type": "string"}}));
    assert_eq!(props["labels"]["additionalProperties"], json!({"type": "string"}));
    assert_eq!(props["byNumber"]["propertyNames"], json!({"pattern": "^-?[0-9]+$"}));
    assert_eq!(props["byNumber"]["additionalProperties"]["$ref"], "#/components/schemas/test.v1.Nested");
    // A oneof: at most one of its members.
    assert_eq!(everything["not"], json!({"anyOf": [{"required": ["choiceText", "choiceNested"]}]}));
    assert_eq!(everything["x-json2grpc-oneofs"], json!({"choice": ["choiceText", "choiceNested"]}));
    // Recursion is a reference.
    assert_eq!(schema(&doc, "test.v1.Nested")["properties"]["child"]["$ref"], "#/components/schemas/test.v1.Nested");
    let color = schema(&doc, "test.v1.Color");
    assert_eq!(color["anyOf"][0]["enum"], json!(["COLOR_UNSPECIFIED", "RED", "GREEN", "BLUE_GREEN"]));
    assert_eq!(color["anyOf"][1]["type"], "integer");
    let ints = things(r#","print_options":{"always_print_enums_as_ints":true,"preserve_proto_field_names":true}"#);
    assert_eq!(schema(&ints, "test.v1.Color")["anyOf"][0]["type"], "integer");
    assert!(schema(&ints, "test.v1.Everything")["properties"]["renamed"].is_object());
}

#[test]
fn every_well_known_type_has_its_json_form() {
    let doc = things("");
    let wkt = |name: &str| schema(&doc, &format!("google.protobuf.{name}")).clone();
    assert_eq!(wkt("Timestamp")["format"], "date-time");
    assert_eq!(wkt("Duration")["pattern"], "^-?[0-9]+(\\.[0-9]{1,9})?s$");
    assert_eq!(wkt("FieldMask")["type"], "string");
    assert_eq!(wkt("Struct")["additionalProperties"]["$ref"], "#/components/schemas/google.protobuf.Value");
    assert_eq!(wkt("ListValue")["items"]["$ref"], "#/components/schemas/google.protobuf.Value");
    assert!(wkt("Value").get("type").is_none(), "any JSON value");
    assert_eq!(wkt("Any")["properties"]["@type"]["type"], "string");
    assert_eq!(wkt("Empty")["type"], "object");
    assert_eq!(wkt("Int32Value")["type"], "integer");
    assert_eq!(wkt("Int64Value")["type"], json!(["string", "integer"]));
    assert_eq!(wkt("UInt64Value")["pattern"], "^[0-9]+$");
    assert_eq!(wkt("UInt32Value")["maximum"], u32::MAX);
    assert_eq!(wkt("BoolValue")["type"], "boolean");
    assert_eq!(wkt("StringValue")["type"], "string");
    assert_eq!(wkt("BytesValue")["contentEncoding"], "base64");
    assert!(wkt("DoubleValue")["oneOf"].is_array() && wkt("FloatValue")["oneOf"][0]["format"] == "float");
}

#[test]
fn comments_become_descriptions_and_field_behavior_required() {
    let doc = library();
    assert_eq!(doc["tags"], json!([{"name": "doc.v1.Library", "description": "The library: shelves of books."}]));
    let get = op(&doc, "/v1/shelves/{name_1}/books/{name_2}", "get");
    assert_eq!(get["summary"], "Reads one book");
    assert_eq!(get["description"], "Reads one book.\n\nBy its full name.");
    let book = schema(&doc, "doc.v1.Book");
    assert_eq!(book["description"], "A book on a shelf.");
    assert_eq!(book["properties"]["title"]["description"], "The title, as printed.");
    assert_eq!(book["properties"]["name"]["readOnly"], true);
    assert_eq!(book["properties"]["secret"]["writeOnly"], true);
    assert!(book.get("required").is_none(), "responses leave default values out");
    // The request side requires REQUIRED fields (not output-only ones), in nested types too.
    let create = op(&doc, "/v1/shelves/{parent}/books", "post");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/doc.v1.Book-Input"
    );
    let input = schema(&doc, "doc.v1.Book-Input");
    assert_eq!(input["required"], json!(["title"]));
    assert_eq!(input["properties"]["chapters"]["items"]["$ref"], "#/components/schemas/doc.v1.Book.Chapter-Input");
    assert_eq!(schema(&doc, "doc.v1.Book.Chapter-Input")["required"], json!(["number"]));
    let format = schema(&doc, "doc.v1.Book.Format");
    assert!(format["description"].as_str().unwrap().starts_with("A nested enum."));
    assert!(schema(&doc, "doc.v1.Genre")["description"].as_str().unwrap().contains("- `FICTION` (1): Made up."));
    // A REQUIRED query parameter.
    assert_eq!(param(get, "format")["required"], true);
    let response = &get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(response, "#/components/schemas/doc.v1.Book");
}

#[test]
fn what_openapi_cannot_express_is_listed() {
    let doc = library();
    let unexpressed: Vec<(String, String)> = doc["x-json2grpc-unexpressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["method"].as_str().unwrap().to_string(), u["template"].as_str().unwrap().to_string()))
        .collect();
    let expected = [
        ("PURGE", "/v1/{name=shelves/*/books/*}"),
        ("*", "/v1/any/{name}"),
        ("GET", "/v1/wild/{a}"),
        ("GET", "/v1/gone/{missing}"),
    ];
    assert_eq!(unexpressed, expected.map(|(m, t)| (m.to_string(), t.to_string())));
    // With ignore_unknown_query_parameters, a variable naming no field is dropped: the binding
    // transcodes, and its parameter sets nothing.
    let lenient =
        generate(&transcoder(OPENAPI_TEST_SET, &["doc.v1.Library"], r#","ignore_unknown_query_parameters":true"#));
    let gone = param(op(&lenient, "/v1/gone/{missing}", "get"), "missing");
    assert!(
        gone.get("x-json2grpc-field").is_none() && gone["description"].as_str().unwrap().contains("names no field")
    );
    op(&doc, "/v1/options/{name}", "options");
    op(&doc, "/v1/books/{name}:read", "get");
    op(&doc, "/", "get");
    // The same variable twice, and a segment that sets nothing.
    let odd = op(&doc, "/v1/odd/{a}/{_1}/{a_2}", "get");
    assert_eq!(param(odd, "a_2")["x-json2grpc-field"], "a");
    assert!(param(odd, "_1").get("x-json2grpc-field").is_none());
    // Two templates of one shape: the later one is written with the first one's names.
    let patch = op(&doc, "/v1/odd/{b}/x", "patch");
    assert_eq!(param(patch, "b")["x-json2grpc-field"], "a");
    assert_eq!(param(op(&doc, "/v1/odd/{b}/x", "delete"), "b")["x-json2grpc-field"], "b");
}

#[test]
fn responses_link_to_operations_their_fields_address() {
    let doc = things("");
    let links = &op(&doc, "/v1/things", "post")["responses"]["200"]["links"];
    assert_eq!(
        links["test_v1_Things_Get"],
        json!({"operationId": "test.v1.Things.Get", "parameters": {"id": "$response.body#/id"}})
    );
    assert!(links.get("test_v1_Things_Get_2").is_none(), "nested.name has no source in Everything");
}

#[test]
fn the_document_is_bounded() {
    let t = transcoder(TEST_DESCRIPTOR_SET, &["test.v1.Things"], "");
    let text = render(&t, usize::MAX).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&text).unwrap(), generate(&t));
    let e = render(&t, 1000).unwrap_err();
    assert_eq!(e.http_status, 500);
    assert!(e.message.contains("json2grpc.openapi.max_bytes"), "{e}");
    // Refused while the operations are made: the size it stopped at is just over the bound.
    let e = super::generate_within(&t, 5000).unwrap_err();
    assert!((5000..20_000).contains(&e), "stopped at {e} bytes");
}

#[test]
fn the_query_walk_goes_only_where_parameters_are() {
    let t = transcoder(TEST_DESCRIPTOR_SET, &["test.v1.Things"], "");
    let reach = super::query::reach(&t.schema);
    let of = |name: &str| reach[t.schema.message_index(name).unwrap()];
    assert!(of("test.v1.Everything") && of("test.v1.Nested"));
    assert!(of("google.protobuf.Timestamp"), "its own fields are scalars");
    assert!(!of("google.protobuf.Empty"), "nothing a query parameter can set");
}

#[test]
fn success_statuses_follow_the_rest_options() {
    let doc =
        things(r#","json2grpc":{"rest":{"success_status":{"test.v1.Things.Create":201,"test.v1.Things.Get":204}}}"#);
    let created = &op(&doc, "/v1/things", "post")["responses"];
    assert!(created.get("200").is_none(), "{created:#}");
    assert_eq!(
        created["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/test.v1.Everything"
    );
    assert!(created["201"]["links"].is_object(), "links move with the success");
    assert!(created.get("2XX").is_none());
    let gone = &op(&doc, "/v1/things/{id}", "get")["responses"];
    assert!(gone["204"].is_object() && gone["204"].get("content").is_none(), "{gone:#}");
    // The service may choose: a 2XX entry besides the default.
    let chosen = things(r#","json2grpc":{"rest":{"status_from_metadata":true}}"#);
    let responses = &op(&chosen, "/v1/things", "post")["responses"];
    assert!(responses["200"]["content"].is_object());
    assert_eq!(responses["2XX"]["content"], responses["200"]["content"]);
}

#[test]
fn strict_bodies_close_the_message_schemas() {
    let open = things("");
    assert!(schema(&open, "test.v1.Everything").get("additionalProperties").is_none());
    let strict = things(r#","json2grpc":{"rest":{"reject_unknown_fields":true}}"#);
    assert_eq!(schema(&strict, "test.v1.Everything")["additionalProperties"], false);
    // Maps and well-known types keep their own forms.
    let labels = &schema(&strict, "test.v1.Everything")["properties"]["labels"];
    assert_eq!(labels["additionalProperties"], json!({"type": "string"}));
    assert_ne!(schema(&strict, "google.protobuf.Struct")["additionalProperties"], false);
}
