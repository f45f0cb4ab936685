//! Runs the json2grpc-tool binary on the flash-sale protos.

use std::path::PathBuf;
use std::process::Command;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_json2grpc-tool"))
}

fn proto_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto")
}

#[test]
fn descriptor_then_config() {
    let out = std::env::temp_dir().join(format!("json2grpc-tool-{}.pb", std::process::id()));
    let status = tool()
        .arg("descriptor")
        .arg("-I")
        .arg(proto_dir())
        .arg("-o")
        .arg(&out)
        .args(["flashsale/v1/inventory.proto", "flashsale/v1/orders.proto"])
        .status()
        .expect("run");
    assert!(status.success());

    let bytes = std::fs::read(&out).expect("pb");
    let pool = prost_reflect::DescriptorPool::decode(bytes.as_slice()).expect("pool");
    assert!(pool.get_extension_by_name("google.api.http").is_some());
    assert!(pool.get_service_by_name("flashsale.v1.Orders").is_some());

    let output = tool()
        .args(["config", "--descriptor"])
        .arg(&out)
        .args(["--service", "flashsale.v1.Inventory"])
        .args(["--set", "auto_mapping=true"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["services"], serde_json::json!(["flashsale.v1.Inventory"]));
    assert_eq!(json["auto_mapping"], true);
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(json["proto_descriptor_bin"].as_str().expect("string"))
        .expect("base64");
    assert_eq!(decoded, bytes);

    let output = tool()
        .args(["config", "--descriptor"])
        .arg(&out)
        .args(["--service", "flashsale.v1.Nope"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("flashsale.v1.Nope"));
    let _ = std::fs::remove_file(&out);
}

#[test]
fn syntax_error_is_located() {
    let dir = std::env::temp_dir().join(format!("json2grpc-tool-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("bad.proto"), "syntax = \"proto3\";\nmessage A { int32 x = 1 }\n").expect("write");
    let output = tool()
        .arg("descriptor")
        .arg("-I")
        .arg(&dir)
        .arg("-o")
        .arg(dir.join("bad.pb"))
        .arg("bad.proto")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.proto:2:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An edition 2023 descriptor set (protoc 27's encoding of `edition = "2023"; package ed;
/// service S { rpc Get(M) returns (M); } message M { int32 a = 1; }`), which prost-reflect
/// cannot read: `config` checks it with the filter's own loader.
#[test]
fn config_reads_edition_2023_sets() {
    // FileDescriptorSet { file { name: "ed.proto" package: "ed" message_type { name: "M"
    //   field { name: "a" number: 1 label: OPTIONAL type: TYPE_INT32 json_name: "a" } }
    //   service { name: "S" method { name: "Get" input_type: ".ed.M" output_type: ".ed.M" } }
    //   syntax: "editions" edition: EDITION_2023 } }
    let mut file = Vec::new();
    let len = |number: u8, value: &[u8], out: &mut Vec<u8>| {
        out.push(number << 3 | 2);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    };
    let mut field = Vec::new();
    len(1, b"a", &mut field);
    field.extend_from_slice(&[0x18, 0x01, 0x20, 0x01, 0x28, 0x05]);
    len(10, b"a", &mut field);
    let mut message = Vec::new();
    len(1, b"M", &mut message);
    len(2, &field, &mut message);
    let mut method = Vec::new();
    len(1, b"Get", &mut method);
    len(2, b".ed.M", &mut method);
    len(3, b".ed.M", &mut method);
    let mut service = Vec::new();
    len(1, b"S", &mut service);
    len(2, &method, &mut service);
    len(1, b"ed.proto", &mut file);
    len(2, b"ed", &mut file);
    len(4, &message, &mut file);
    len(6, &service, &mut file);
    len(12, b"editions", &mut file);
    file.extend_from_slice(&[0x70, 0xe8, 0x07]); // edition: 1000
    let mut set = Vec::new();
    len(1, &file, &mut set);
    let path = std::env::temp_dir().join(format!("json2grpc-tool-ed-{}.pb", std::process::id()));
    std::fs::write(&path, &set).expect("write");
    let output = tool().args(["config", "--descriptor"]).arg(&path).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["services"], serde_json::json!(["ed.S"]));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn openapi_prints_the_document_with_the_protos_comments() {
    let out = std::env::temp_dir().join(format!("json2grpc-tool-openapi-{}.pb", std::process::id()));
    let status = tool()
        .args(["descriptor", "--include_source_info", "-I"])
        .arg(proto_dir())
        .arg("-o")
        .arg(&out)
        .args(["flashsale/v1/inventory.proto", "flashsale/v1/orders.proto"])
        .status()
        .expect("run");
    assert!(status.success());
    let output = tool()
        .args(["openapi", "--descriptor"])
        .arg(&out)
        .args(["--service", "flashsale.v1.Inventory", "--service", "flashsale.v1.Orders"])
        .args(["--set", r#"print_options={"preserve_proto_field_names":true}"#])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let get = &doc["paths"]["/v1/inventory/{sku}"]["get"];
    assert_eq!(get["operationId"], "flashsale.v1.Inventory.GetItem");
    assert_eq!(get["description"], "Reads one item.");
    let item = &doc["components"]["schemas"]["flashsale.v1.Item"];
    assert_eq!(item["description"], "One item on sale.");
    assert!(item["properties"]["updated_at"].is_object(), "preserve_proto_field_names: {item:#}");
    // The same options as `config`: a bad one is the filter's error.
    let output = tool()
        .args(["openapi", "--descriptor"])
        .arg(&out)
        .args(["--set", r#"json2grpc={"openapi":{"path":"x"}}"#])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("json2grpc.openapi.path"));
    let _ = std::fs::remove_file(&out);
}
