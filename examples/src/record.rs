//! Request recorder: one JSON line per received request message.
//!
//! Line format:
//! `{"method":"/flashsale.v1.Inventory/GetItem","message":{...},"metadata":{...}}`
//! where `message` is the proto3 JSON of the request (proto field names,
//! default values omitted) and `metadata` maps each lowercase request header
//! name to its value (several values of one header are joined with ", ").

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value};
use tonic::metadata::MetadataMap;

pub struct Recorder {
    pool: DescriptorPool,
    out: Mutex<File>,
}

impl Recorder {
    /// Opens `path` for appending (creating it if needed).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("descriptor set: {e}")))?;
        let out = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Recorder { pool, out: Mutex::new(out) })
    }

    fn input_of(&self, method: &str) -> Option<MessageDescriptor> {
        let (service, name) = method.strip_prefix('/')?.split_once('/')?;
        let service = self.pool.get_service_by_name(service)?;
        let method = service.methods().find(|m| m.name() == name)?;
        Some(method.input())
    }

    /// The JSON line for one request message (without the newline).
    pub fn line<M: prost::Message>(&self, method: &str, message: &M, metadata: &MetadataMap) -> Result<String, String> {
        let desc = self.input_of(method).ok_or_else(|| format!("unknown method {method}"))?;
        let dynamic = DynamicMessage::decode(desc, message.encode_to_vec().as_slice())
            .map_err(|e| format!("decode {method} request: {e}"))?;
        let options = SerializeOptions::new().use_proto_field_name(true);
        let json = dynamic
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| format!("serialize {method} request: {e}"))?;

        let mut headers = Map::new();
        for (name, value) in metadata.clone().into_headers().iter() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_string(), Value::String(value));
                }
            }
        }

        let mut line = Map::new();
        line.insert("method".into(), Value::String(method.to_string()));
        line.insert("message".into(), json);
        line.insert("metadata".into(), Value::Object(headers));
        serde_json::to_string(&Value::Object(line)).map_err(|e| e.to_string())
    }

    /// Appends one line for `message`; errors are reported on stderr only.
    pub fn record<M: prost::Message>(&self, method: &str, message: &M, metadata: &MetadataMap) {
        let result = self.line(method, message, metadata).and_then(|mut line| {
            line.push('\n');
            let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
            out.write_all(line.as_bytes()).and_then(|()| out.flush()).map_err(|e| e.to_string())
        });
        if let Err(err) = result {
            eprintln!("flashsale: recording {method}: {err}");
        }
    }
}

/// Records through an optional recorder.
pub(crate) fn record<M: prost::Message>(
    recorder: &Option<std::sync::Arc<Recorder>>,
    method: &str,
    message: &M,
    metadata: &MetadataMap,
) {
    if let Some(r) = recorder {
        r.record(method, message, metadata);
    }
}
