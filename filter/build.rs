//! Compiles the protos json2grpc needs at run time into descriptor sets embedded in the
//! binary, with protox (pure Rust, no protoc):
//! - `builtin.pb`: google.rpc.Status + error details + google.api.HttpBody, added to every
//!   user pool that lacks them so `grpc-status-details-bin` always prints as JSON;
//! - `testdata.pb`: the schema of the unit tests (also on wasm32, where there are no files);
//! - `openapi_test.pb`: the OpenAPI generator's test schema, with source info (comments).
use std::error::Error;
use std::path::{Path, PathBuf};

fn compile(includes: &[&Path], files: &[&str], out: &Path, source_info: bool) -> Result<(), Box<dyn Error>> {
    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(true);
    compiler.include_source_info(source_info);
    for f in files {
        compiler.open_file(f).map_err(|e| format!("{f}: {e:?}"))?;
    }
    // encode_file_descriptor_set keeps extensions such as google.api.http; the
    // prost-types structs from file_descriptor_set() would drop them.
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let proto = manifest.join("../proto");
    let testdata = manifest.join("testdata");
    println!("cargo:rerun-if-changed={}", proto.join("google").display());
    println!("cargo:rerun-if-changed={}", testdata.display());
    compile(
        &[&proto],
        &["google/rpc/status.proto", "google/rpc/error_details.proto", "google/api/httpbody.proto"],
        &out_dir.join("builtin.pb"),
        false,
    )?;
    compile(
        &[&testdata, &proto],
        &["transcode_test.proto", "lenient_test.proto", "rest_test.proto"],
        &out_dir.join("testdata.pb"),
        false,
    )?;
    // The OpenAPI document's test schema keeps its comments.
    compile(&[&testdata, &proto], &["openapi_test.proto"], &out_dir.join("openapi_test.pb"), true)
}
