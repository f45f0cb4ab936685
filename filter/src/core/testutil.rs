//! Shared fixtures of the unit tests.
use prost_reflect::{DescriptorPool, MessageDescriptor};

use super::descriptors::load_schema;
use super::schema::Schema;

/// The descriptor set of `filter/testdata/transcode_test.proto` and `lenient_test.proto`,
/// compiled by build.rs.
pub const TEST_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/testdata.pb"));

/// The test set as the filter loads it (built-ins added).
pub fn schema() -> Schema {
    load_schema(TEST_DESCRIPTOR_SET).unwrap()
}

/// The test set in a prost-reflect pool (the reference), built-ins added.
pub fn pool() -> DescriptorPool {
    super::descriptors::load_pool(TEST_DESCRIPTOR_SET).unwrap()
}

pub fn message(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).unwrap()
}
