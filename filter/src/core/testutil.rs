//! Shared fixtures of the unit tests.
use prost_reflect::{DescriptorPool, MessageDescriptor};

/// The descriptor set of `filter/testdata/transcode_test.proto`, compiled by build.rs.
pub const TEST_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/testdata.pb"));

pub fn pool() -> DescriptorPool {
    DescriptorPool::decode(TEST_DESCRIPTOR_SET).unwrap()
}

pub fn message(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).unwrap()
}
