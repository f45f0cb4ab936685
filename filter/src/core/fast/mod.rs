//! The fast path: JSON ⇄ protobuf wire format straight from tokens to bytes, with per-message
//! plans compiled once per configuration. The reflection path (prost-reflect) stays the
//! reference; a differential test keeps both in agreement.
pub mod decode;
pub mod encode;
pub mod plan;
pub mod reader;
pub mod wire;
pub mod wkt_text;

use prost_reflect::{DescriptorPool, MessageDescriptor};

use super::config::PrintOptions;
use super::error::Result;
use super::json::ParseOptions;
use plan::Plans;

/// The fast JSON ⇄ binary codec for one descriptor pool.
#[derive(Debug, Default)]
pub struct Codec {
    plans: Plans,
}

impl Codec {
    pub fn new(pool: &DescriptorPool) -> Codec {
        Codec { plans: Plans::build(pool) }
    }

    /// The plan index of a message type, if the fast path handles it.
    pub fn index(&self, desc: &MessageDescriptor) -> Option<usize> {
        let index = self.plans.index_of(desc.full_name())?;
        self.plans.message(index).filter(|p| p.supported).map(|_| index)
    }

    /// The plan index of a message type by full name, if the fast path handles it.
    pub fn index_of(&self, full_name: &str) -> Option<usize> {
        let index = self.plans.index_of(full_name)?;
        self.plans.message(index).filter(|p| p.supported).map(|_| index)
    }

    /// JSON → protobuf bytes, appended to `out`.
    pub fn json_to_binary(&self, index: usize, json: &[u8], options: &ParseOptions, out: &mut Vec<u8>) -> Result<()> {
        encode::encode(&self.plans, index, json, options, out)
    }

    /// Protobuf bytes → JSON, appended to `out`.
    pub fn binary_to_json(&self, index: usize, bytes: &[u8], print: &PrintOptions, out: &mut Vec<u8>) -> Result<()> {
        decode::decode(&self.plans, index, bytes, print, out)
    }
}
