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
