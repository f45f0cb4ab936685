//! The descriptor sets the crate embeds are checked in (no protoc or protox in the `.wasm`
//! build); this test compiles their protos with protox and requires the same bytes, so a
//! changed proto cannot leave a stale set behind. After changing one:
//!
//! ```sh
//! JSON2GRPC_BLESS_DESCRIPTORS=1 cargo test -p json2grpc --test checked_in_descriptors
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

struct Set {
    /// Where the set is checked in, relative to `filter/`.
    path: &'static str,
    /// Include directories, relative to `filter/`.
    includes: &'static [&'static str],
    files: &'static [&'static str],
    /// Keep comments (the OpenAPI generator's test schema reads them).
    source_info: bool,
}

const SETS: &[Set] = &[
    // google.rpc.Status + error details + google.api.HttpBody: added to every user pool that
    // lacks them, so `grpc-status-details-bin` always prints as JSON.
    Set {
        path: "descriptors/builtin.pb",
        includes: &["../proto"],
        files: &["google/rpc/status.proto", "google/rpc/error_details.proto", "google/api/httpbody.proto"],
        source_info: false,
    },
    // The unit tests' schema (also on wasm32, where tests cannot read files).
    Set {
        path: "testdata/testdata.pb",
        includes: &["testdata", "../proto"],
        files: &["transcode_test.proto", "lenient_test.proto", "rest_test.proto"],
        source_info: false,
    },
    Set {
        path: "testdata/openapi_test.pb",
        includes: &["testdata", "../proto"],
        files: &["openapi_test.proto"],
        source_info: true,
    },
];

fn compile(root: &Path, set: &Set) -> Vec<u8> {
    let includes: Vec<PathBuf> = set.includes.iter().map(|i| root.join(i)).collect();
    let mut compiler = protox::Compiler::new(&includes).unwrap();
    compiler.include_imports(true);
    compiler.include_source_info(set.source_info);
    for f in set.files {
        compiler.open_file(f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
    // encode_file_descriptor_set keeps extensions such as google.api.http (the prost-types
    // structs would drop them).
    compiler.encode_file_descriptor_set()
}

#[test]
fn checked_in_descriptor_sets_match_their_protos() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var("JSON2GRPC_BLESS_DESCRIPTORS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for set in SETS {
        let fresh = compile(&root, set);
        let path = root.join(set.path);
        if std::fs::read(&path).ok().as_deref() == Some(fresh.as_slice()) {
            continue;
        }
        if bless {
            std::fs::write(&path, &fresh).unwrap();
        } else {
            stale.push(set.path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale descriptor sets {stale:?}: run JSON2GRPC_BLESS_DESCRIPTORS=1 cargo test -p json2grpc --test checked_in_descriptors"
    );
}
