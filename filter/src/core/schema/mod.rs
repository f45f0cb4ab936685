//! Descriptors in, a linked [`Schema`] out: the FileDescriptorSet's wire format read without a
//! protobuf runtime ([`descriptor_proto`]), the built-in google protos added ([`descriptors`]),
//! every type linked and checked ([`model`]). Live descriptors come from gRPC server reflection
//! ([`reflection`]) or a URL ([`descriptor_source`]).
pub mod descriptor_proto;
pub mod descriptor_source;
pub mod descriptors;
pub mod encoded_files;
pub mod json_names;
pub mod model;
mod name_table;
pub mod reflection;
pub mod source_info;

pub use model::*;
