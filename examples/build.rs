//! Compiles the flash-sale protos (and the vendored google.rpc error protos)
//! with protox, generates prost messages plus tonic clients and servers, and
//! writes an annotation-preserving descriptor set for the request recorder.

use std::path::PathBuf;

/// The protos we generate Rust code for.
const PROTOS: &[&str] = &[
    "flashsale/v1/inventory.proto",
    "flashsale/v1/orders.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

/// The protos whose descriptors (with imports) the recorder needs.
const SERVICE_PROTOS: &[&str] = &["flashsale/v1/inventory.proto", "flashsale/v1/orders.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    for dir in ["flashsale/v1", "google/api", "google/rpc"] {
        println!("cargo:rerun-if-changed={}", proto_dir.join(dir).display());
    }

    // Rust code. protox's prost-types descriptors drop the google.api.http
    // extension, which is fine here: code generation does not need it.
    let fds = protox::compile(PROTOS, [&proto_dir])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;

    // Descriptor set with imports and the google.api.http annotations kept.
    let mut compiler = protox::Compiler::new([&proto_dir])?;
    compiler.include_imports(true);
    compiler.open_files(SERVICE_PROTOS)?;
    std::fs::write(out_dir.join("flashsale_descriptor.pb"), compiler.encode_file_descriptor_set())?;
    Ok(())
}
