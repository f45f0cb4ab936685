//! Compiles the protos json2grpc needs at run time into descriptor sets embedded in the
//! binary, with protox (pure Rust, no protoc):
//! - `builtin.pb`: google.rpc.Status + error details + google.api.HttpBody, added to every
//!   user pool that lacks them so `grpc-status-details-bin` always prints as JSON;
//! - `testdata.pb`: the schema of the unit tests (also on wasm32, where there are no files).
use std::path::PathBuf;

fn compile(includes: &[PathBuf], files: &[&str], out: &str) {
    let mut compiler = match protox::Compiler::new(includes) {
        Ok(c) => c,
        Err(e) => panic!("protox: {e}"),
    };
    compiler.include_imports(true);
    compiler.include_source_info(false);
    for f in files {
        if let Err(e) = compiler.open_file(f) {
            panic!("protox: cannot compile {f}: {e:?}");
        }
    }
    // encode_file_descriptor_set keeps extensions such as google.api.http; the
    // prost-types structs from file_descriptor_set() would drop them.
    let bytes = compiler.encode_file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join(out), bytes) {
        panic!("cannot write {out}: {e}");
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let proto = manifest.join("../proto");
    let testdata = manifest.join("testdata");
    println!("cargo:rerun-if-changed={}", proto.join("google").display());
    println!("cargo:rerun-if-changed={}", testdata.display());
    compile(
        &[proto.clone()],
        &[
            "google/rpc/status.proto",
            "google/rpc/error_details.proto",
            "google/api/httpbody.proto",
        ],
        "builtin.pb",
    );
    compile(&[testdata, proto], &["transcode_test.proto"], "testdata.pb");
}
