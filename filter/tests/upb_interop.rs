//! Interop with Python protobuf (upb): JSON written by `json_format.MessageToJson` in several
//! settings (`scripts/upb-interop.py`, run by `make interop`) parses with json2grpc to exactly
//! the message of the peer benchmark's `.binpb` payloads (filter/testdata/bench).
//!
//! Runs only with `UPB_JSON_DIR` set to the script's output directory; then the directory must
//! hold JSON for every payload.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use json2grpc::core::codec::json::ParseOptions;
use json2grpc::testing::reflect_json::parse_message;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

const PAYLOADS: [(&str, &str); 3] =
    [("small", "bench.v1.Order"), ("medium", "bench.v1.Order"), ("large", "bench.v1.BulkOrders")];

#[test]
fn upb_json_parses_to_the_binary_message() {
    let Some(dir) = std::env::var_os("UPB_JSON_DIR") else {
        eprintln!("skipped: UPB_JSON_DIR is not set (run `make interop`)");
        return;
    };
    let dir = PathBuf::from(dir);
    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bench");
    let pool = DescriptorPool::decode(std::fs::read(bench.join("bench.pb")).unwrap().as_slice()).unwrap();

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("UPB_JSON_DIR={}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "UPB_JSON_DIR={} holds no .json files", dir.display());

    let mut per_payload: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let payload = file.split('.').next().unwrap();
        let Some(&(name, type_name)) = PAYLOADS.iter().find(|(name, _)| *name == payload) else {
            panic!("{file}: not named after a payload (small, medium, large)");
        };
        let desc = pool.get_message_by_name(type_name).unwrap();
        let binary = std::fs::read(bench.join(format!("{name}.binpb"))).unwrap();
        let expected = DynamicMessage::decode(desc.clone(), binary.as_slice()).unwrap();
        let json = std::fs::read(path).unwrap();
        match parse_message(&desc, &json, &ParseOptions { ignore_unknown_fields: false, ..Default::default() }) {
            // Compared after an encode/decode, so fields set to their default in the JSON
            // (always_print_fields_with_no_presence) count as absent, as on the wire.
            Ok(parsed) => {
                let got = DynamicMessage::decode(desc.clone(), parsed.encode_to_vec().as_slice()).unwrap();
                if got != expected {
                    failures.push(format!("{file}: parsed message differs from {name}.binpb"));
                }
            }
            Err(e) => failures.push(format!("{file}: {e}")),
        }
        *per_payload.entry(name).or_default() += 1;
    }
    for (name, _) in PAYLOADS {
        assert!(per_payload.contains_key(name), "no JSON for payload {name} in {}", dir.display());
    }
    assert!(failures.is_empty(), "{} of {} files:\n{}", failures.len(), files.len(), failures.join("\n"));
    eprintln!("{} upb JSON files parsed to their .binpb messages: {per_payload:?}", files.len());
}
