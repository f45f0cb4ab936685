//! The generator's test schema (filter/testdata/openapi_test.proto, with source info).
pub const OPENAPI_TEST_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi_test.pb"));
