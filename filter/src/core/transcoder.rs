//! The core's entry point: one `Transcoder` per configuration, built once (descriptors,
//! routing table) and shared by every request.
use std::sync::Arc;

use crate::core::codec::json::{ParseOptions, MAX_SUPPORTED_DEPTH};
use crate::core::codec::{Codec, OutputLimit};
use crate::core::config::{Config, ConfigError};
use crate::core::error::Result;
use crate::core::request::json_stream::{ElementSplitter, Framing};
use crate::core::request::{self, Decision, PassReason, RequestPlan};
use crate::core::response::frame::encode_frame;
use crate::core::response::ResponseTranscoder;
use crate::core::rest::field_behavior::Behaviors;
use crate::core::rest::patch_mask;
use crate::core::route::router::{HttpBinding, Router};
use crate::core::schema::descriptors::{load_schema, load_schema_draining};
use crate::core::schema::json_names::strip_default_json_names;
use crate::core::schema::source_info::strip_source_info;
use crate::core::schema::Schema;

pub struct Transcoder {
    pub config: Config,
    /// Shared with the codec, which builds each message's plan from it on first use.
    pub schema: Arc<Schema>,
    pub router: Router,
    pub parse_options: ParseOptions,
    /// The fast JSON ⇄ binary codec (plans compiled once per configuration).
    pub codec: Arc<Codec>,
    /// `json2grpc.rest.field_behavior`: which messages reach REQUIRED / OUTPUT_ONLY fields.
    behaviors: Option<Behaviors>,
}

impl Transcoder {
    /// Parses and validates a plugin configuration (JSON) and builds everything requests need.
    pub fn from_json(text: &[u8]) -> Result<Transcoder, ConfigError> {
        Transcoder::new(Config::from_json(text)?)
    }

    pub fn new(config: Config) -> Result<Transcoder, ConfigError> {
        Transcoder::build(config, false)
    }

    /// [`Transcoder::new`] for a filter: what requests never read is freed as soon as it is
    /// used: the descriptor bytes ([`Self::release_build_inputs`]) once the schema is built, so
    /// the router's build does not add to them (a VM's linear memory grows to the build's peak
    /// and never shrinks), and the schema's services as the router reads them.
    pub fn for_serving(config: Config) -> Result<Transcoder, ConfigError> {
        Transcoder::build(config, true)
    }

    fn build(mut config: Config, release: bool) -> Result<Transcoder, ConfigError> {
        if config.limits.max_json_depth > MAX_SUPPORTED_DEPTH {
            return Err(ConfigError::new("json2grpc.limits.max_json_depth", format!("at most {MAX_SUPPORTED_DEPTH}")));
        }
        // Only the OpenAPI document reads the set (and its comments) once the schema is built.
        let set_read_later = !release || config.openapi.path.is_some();
        if !set_read_later {
            strip_source_info(&mut config.proto_descriptor_bin);
            strip_default_json_names(&mut config.proto_descriptor_bin);
        }
        let mut schema = match set_read_later {
            true => load_schema(&config.proto_descriptor_bin)?,
            // A worker's VM: the set is freed as the schema grows (its linear memory never
            // shrinks, and the two at once were most of it).
            false => load_schema_draining(&mut config.proto_descriptor_bin)?,
        };
        if release {
            release_build_inputs(&mut config);
        }
        let router = match release {
            true => Router::build_draining(&config, &mut schema)?,
            false => Router::build(&config, &schema)?,
        };
        if release {
            schema.drop_services();
        }
        let schema = Arc::new(schema);
        let configured: std::collections::HashSet<&str> = match config.rest.success_status.is_empty() {
            true => Default::default(),
            false => router.methods.iter().map(|m| &*m.full_name).collect(),
        };
        for (method, _) in &config.rest.success_status {
            if !configured.contains(method.as_str()) {
                return Err(ConfigError::new(
                    format!("json2grpc.rest.success_status.{method}"),
                    "names no method of the configured services (expected pkg.Service.Method)",
                ));
            }
        }
        config.print_options.int64_as_numbers = config.rest.int64_as_numbers;
        let parse_options = ParseOptions {
            max_depth: config.limits.max_json_depth,
            case_insensitive_enums: config.case_insensitive_enum_parsing,
            // Strict bodies are refused with every unknown key named before encoding; this
            // also refuses those inside an Any, which that scan does not read.
            ignore_unknown_fields: !config.rest.reject_unknown_fields,
            ..ParseOptions::default()
        };
        let codec = Arc::new(Codec::lazy(schema.clone()));
        let behaviors = config.rest.field_behavior.then(|| Behaviors::build(codec.plans()));
        Ok(Transcoder { config, schema, router, parse_options, codec, behaviors })
    }

    /// Decides what to do with a request from its headers alone.
    /// `path` is the request's `:path` including the query string.
    pub fn route(&self, http_method: &str, path: &str, content_type: Option<&str>) -> Decision {
        if content_type.is_some_and(is_grpc_content_type) {
            return Decision::PassThrough(PassReason::Grpc);
        }
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        // A fragment is never sent by conforming clients; do not let it reach a field.
        let query = query.map(|q| q.split_once('#').map_or(q, |(q, _)| q));
        let Some((binding, values)) = self.router.lookup(http_method, path_only) else {
            if self.config.request_validation_options.reject_unknown_method {
                return Decision::Reject(super::error::Error::not_found(format!(
                    "no method is bound to {http_method} {path_only}"
                )));
            }
            return Decision::PassThrough(PassReason::NoRoute);
        };
        request::plan(&self.config, &self.schema, self.codec.plans(), binding, values, query)
    }

    /// A translator for the response to `binding`'s call. `max_body` overrides
    /// `max_response_body_size` (bodyless server streams are capped lower). Its JSON is limited
    /// by `json2grpc.limits.max_response_json_bytes` per message and per batch translated together.
    pub fn response(
        &self,
        binding: &HttpBinding,
        max_body: Option<u32>,
        grpc_encoding: Option<&str>,
    ) -> ResponseTranscoder {
        ResponseTranscoder::new(
            &self.codec,
            binding,
            &self.config.print_options,
            self.config.limits.max_frame_size,
            max_body,
            grpc_encoding,
        )
        .with_json_limit(self.json_limit(false))
    }

    /// The limit of the JSON written at once. `held_by_envoy`: a unary response body Envoy
    /// holds whole, which Envoy resets past its buffer limit (`envoy_buffer_bytes`).
    pub fn json_limit(&self, held_by_envoy: bool) -> OutputLimit {
        let limits = &self.config.limits;
        let bytes = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        if held_by_envoy && limits.envoy_buffer_bytes < limits.max_response_json_bytes {
            return OutputLimit::new(bytes(limits.envoy_buffer_bytes), "json2grpc.limits.envoy_buffer_bytes");
        }
        OutputLimit::new(bytes(limits.max_response_json_bytes), "json2grpc.limits.max_response_json_bytes")
    }

    /// Frees what requests never read once the transcoder is built: the descriptor set's bytes
    /// (0.84 MB of the 7.5 MB a 200-service API keeps on wasm32), unless the OpenAPI document, made from them on
    /// its first request, is served.
    pub fn release_build_inputs(&mut self) {
        release_build_inputs(&mut self.config);
    }

    /// The gRPC request message (protobuf bytes, unframed) for a planned request and its body.
    pub fn request_message(&self, plan: &RequestPlan, body: &[u8], content_type: Option<&str>) -> Result<Vec<u8>> {
        let message = request::build_message(&self.config, &self.parse_options, &self.codec, plan, body, content_type)?;
        match &self.behaviors {
            Some(behaviors) => {
                let update = patch_mask::update_fields(self.codec.plans(), &plan.binding);
                behaviors.apply(self.codec.plans(), plan.method().input, message, update)
            }
            None => Ok(message),
        }
    }
}

fn release_build_inputs(config: &mut Config) {
    if config.openapi.path.is_none() {
        config.proto_descriptor_bin = Vec::new();
    }
}

/// `application/grpc`, `application/grpc+proto`, … (not `application/grpc-web`, which
/// Envoy's grpc_web filter handles).
pub fn is_grpc_content_type(content_type: &str) -> bool {
    let ct = content_type.trim_start();
    let Some(rest) = ct.get(..16).filter(|p| p.eq_ignore_ascii_case("application/grpc")).and_then(|_| ct.get(16..))
    else {
        return false;
    };
    rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')
}

/// A client-streaming request body being translated: each JSON element (array item or NDJSON
/// line) becomes one gRPC frame as soon as it is complete.
#[derive(Debug)]
pub struct RequestStream {
    splitter: ElementSplitter,
    content_type: Option<String>,
}

impl Transcoder {
    /// Starts translating the body of a client-streaming request.
    pub fn request_stream(&self, content_type: Option<&str>) -> RequestStream {
        let max_element = usize::try_from(self.config.request_body_limit()).unwrap_or(usize::MAX);
        RequestStream {
            splitter: ElementSplitter::new(
                Framing::from_content_type(content_type),
                max_element,
                self.parse_options.max_depth,
            ),
            content_type: content_type.map(str::to_string),
        }
    }

    /// Feeds request body bytes; appends the frames of every element they complete.
    pub fn push_request_stream(
        &self,
        stream: &mut RequestStream,
        plan: &RequestPlan,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let RequestStream { splitter, content_type } = stream;
        splitter.push(data, &mut |element| self.frame_element(plan, element, content_type.as_deref(), out))
    }

    /// The end of the request body.
    pub fn finish_request_stream(
        &self,
        stream: &mut RequestStream,
        plan: &RequestPlan,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let RequestStream { splitter, content_type } = stream;
        splitter.finish(&mut |element| self.frame_element(plan, element, content_type.as_deref(), out))
    }

    fn frame_element(
        &self,
        plan: &RequestPlan,
        element: &[u8],
        content_type: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let message = self.request_message(plan, element, content_type)?;
        encode_frame(&message, out)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use base64::Engine;

    use super::*;
    use crate::core::response::frame::encode_frame;
    use crate::core::response::grpc_status::GrpcStatus;
    use crate::testing::fixtures::editions;

    fn transcoder() -> Transcoder {
        let b64 = base64::engine::general_purpose::STANDARD.encode(editions::descriptor_set());
        let config = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["ed.S"],"auto_mapping":true}}"#);
        Transcoder::from_json(config.as_bytes()).unwrap()
    }

    fn plan(t: &Transcoder, method: &str, path: &str) -> RequestPlan {
        match t.route(method, path, Some("application/json")) {
            Decision::Transcode(plan) => plan,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn url_bindings_and_body_fields_reach_delimited_fields() {
        let t = transcoder();
        // GET /v1/{delimited.s} and a query parameter under the same delimited field.
        let get = plan(&t, "GET", "/v1/x?delimited.a=7&prefixed.a=8");
        assert_eq!(
            t.request_message(&get, b"", None).unwrap(),
            [0x6b, 0x08, 0x07, 0x1a, 0x01, b'x', 0x6c, 0x7a, 0x02, 0x08, 0x08]
        );
        // body: "delimited": the body is the group's fields.
        let put = plan(&t, "PUT", "/v1/put");
        assert_eq!(t.request_message(&put, br#"{"a": 1}"#, None).unwrap(), [0x6b, 0x08, 0x01, 0x6c]);
        // A JSON null leaves the field absent (as the native filter reads it).
        assert!(t.request_message(&put, b"null", None).unwrap().is_empty());
        // The body sets what a query parameter binds: the body wins (found inside the group).
        let put = plan(&t, "PUT", "/v1/put?delimited.a=2&delimited.s=y");
        assert_eq!(
            t.request_message(&put, br#"{"a": 1}"#, None).unwrap(),
            [0x6b, 0x08, 0x01, 0x6c, 0x6b, 0x1a, 0x01, b'y', 0x6c]
        );
    }

    #[test]
    fn response_body_descends_into_a_delimited_field() {
        let t = transcoder();
        let put = plan(&t, "PUT", "/v1/put");
        let mut r = t.response(&put.binding, None, None);
        let mut frames = Vec::new();
        // M { delimited { a: 1 }, delimited { s: "x" }, explicit_int: 3 }
        encode_frame(&[0x6b, 0x08, 0x01, 0x6c, 0x6b, 0x1a, 0x01, b'x', 0x6c, 0x08, 0x03], &mut frames).unwrap();
        let mut out = Vec::new();
        r.push_framed(&frames, &mut out).unwrap();
        r.finish(GrpcStatus::from_metadata(&t.codec, Some(b"0"), None, None), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":1,"s":"x"}"#);
    }
}
