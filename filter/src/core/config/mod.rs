//! The filter configuration: Envoy's `GrpcJsonTranscoder` (v3) in proto3-JSON form, so an
//! existing `envoy.filters.http.grpc_json_transcoder` config works unchanged, plus
//! json2grpc's own options under the `json2grpc` key.
//!
//! Keys are accepted in snake_case and lowerCamelCase (proto3 JSON parsers accept both).
//! Unknown keys and wrong types are errors naming the field, never silently ignored. Values are
//! read as leniently as Envoy reads the native filter's config (protobuf's JSON parser): `null`
//! is the default, booleans may be strings (`"true"`, `"yes"`, `"1"`, …), integers may be
//! strings or integral floats (`"1e3"`, `1024.0`), enum names ignore letter case, a lone value
//! stands for a one-element list, and the UInt32Value options may be wrapper objects.
use std::fmt;

use crate::core::schema::descriptor_source::{parse_sha256, BeforeLoad, DescriptorSource, Origin};

use base64::Engine;
use serde_json::{Map, Value};

use crate::core::route::percent::UrlUnescapeSpec;

mod openapi;
mod rest;
mod streamed;
mod top_level;

pub use openapi::OpenApiOptions;
pub use rest::RestOptions;
use top_level::Descriptor;

/// A configuration the filter refuses; `field` is the dotted path of the offending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid json2grpc config: {}", self.message)
        } else {
            write!(f, "invalid json2grpc config: field `{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// `print_options` of the native filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintOptions {
    pub add_whitespace: bool,
    pub always_print_primitive_fields: bool,
    pub always_print_enums_as_ints: bool,
    pub preserve_proto_field_names: bool,
    pub stream_newline_delimited: bool,
    pub stream_sse_style_delimited: bool,
    /// Not Envoy's: `json2grpc.rest.int64_as_numbers` (set by the transcoder from it).
    pub int64_as_numbers: bool,
}

/// `request_validation_options` of the native filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestValidation {
    pub reject_unknown_method: bool,
    pub reject_unknown_query_parameters: bool,
    pub reject_binding_body_field_collisions: bool,
}

/// json2grpc-only limits (the `json2grpc.limits` key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest JSON nesting accepted in a request (objects and arrays both count).
    pub max_json_depth: u32,
    /// Most query parameters accepted on one request.
    pub max_query_parameters: u32,
    /// Largest single gRPC message accepted from the upstream, in bytes.
    pub max_frame_size: u32,
    /// Envoy's buffer limit for a request (the listener's `per_connection_buffer_limit_bytes`,
    /// 1 MiB by default). The filter never puts more than this in a body Envoy holds: Envoy
    /// resets a stream whose held body outgrows it.
    pub envoy_buffer_bytes: u32,
    /// Most JSON written for one response message (and for one batch of a stream's messages, and
    /// for a bodyless call's whole answer): printing can amplify (an empty sub-message is 2
    /// bytes on the wire, a whole object in JSON), so this is checked while printing.
    pub max_response_json_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        // 100 is where the native filter stops accepting nested Structs.
        Limits {
            max_json_depth: 100,
            max_query_parameters: 1000,
            max_frame_size: 4 * 1024 * 1024,
            envoy_buffer_bytes: 1024 * 1024,
            max_response_json_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Everything the filter is configured with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub proto_descriptor_bin: Vec<u8>,
    pub services: Vec<String>,
    pub print_options: PrintOptions,
    pub match_incoming_request_route: bool,
    /// Sorted and without repeats when read from JSON: looked up by binary search for each
    /// query parameter of each request ([`Config::ignores_query_parameter`]).
    pub ignored_query_parameters: Vec<String>,
    pub auto_mapping: bool,
    pub ignore_unknown_query_parameters: bool,
    pub convert_grpc_status: bool,
    pub url_unescape_spec: UrlUnescapeSpec,
    pub query_param_unescape_plus: bool,
    pub match_unregistered_custom_verb: bool,
    pub request_validation_options: RequestValidation,
    pub case_insensitive_enum_parsing: bool,
    pub max_request_body_size: Option<u32>,
    pub max_response_body_size: Option<u32>,
    pub capture_unknown_query_parameters: bool,
    pub limits: Limits,
    pub callout: CalloutOptions,
    /// Envoy's Wasm config has `allow_on_headers_stop_iteration: true`: the filter may hold the
    /// response headers until the gRPC status is known, so errors get their exact HTTP status.
    pub allow_on_headers_stop_iteration: bool,
    /// `json2grpc.descriptor`: descriptors from a live source instead of `proto_descriptor_bin`.
    pub descriptor: Option<DescriptorSource>,
    /// `json2grpc.strict_config`: a binding that cannot transcode requests (a path variable
    /// naming no field or a message, an HttpRule without a pattern, a duplicate) refuses the
    /// whole config instead of being logged at `warn` and handled as Envoy handles it.
    pub strict_config: bool,
    /// `json2grpc.rest`: the REST contract controls (PATCH masks, statuses, CORS, …).
    pub rest: RestOptions,
    /// `json2grpc.openapi`: the OpenAPI document of this API, served by the filter.
    pub openapi: OpenApiOptions,
}

/// How requests without a body reach the service (json2grpc's own call to the upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutOptions {
    /// Deadline of the call, in milliseconds.
    pub timeout_ms: u32,
    /// Cluster per fully-qualified service; otherwise the request's own route cluster. Sorted
    /// by service, each once (looked up per call).
    pub clusters: Vec<(String, String)>,
    /// A cluster that leads back into Envoy (an internal listener, or the listener itself):
    /// calls sent there are routed by their gRPC path like a request with a body, so the
    /// route's policy (timeout, retries, traffic split, …) and the listener's filters apply.
    pub loopback_cluster: Option<String>,
    /// Accepted for older configs: every request header is forwarded now.
    pub forward_headers: Vec<String>,
    /// Request headers never forwarded as gRPC metadata of the call (lower case; sorted, each
    /// once: looked up per header of each call).
    pub drop_headers: Vec<String>,
    /// Most bytes of a server stream buffered for a bodyless streaming call.
    pub max_stream_bytes: u32,
}

impl Default for CalloutOptions {
    fn default() -> Self {
        CalloutOptions {
            timeout_ms: 15_000,
            clusters: Vec::new(),
            loopback_cluster: None,
            forward_headers: Vec::new(),
            drop_headers: Vec::new(),
            max_stream_bytes: 1024 * 1024,
        }
    }
}

/// `max_request_body_size` when the config leaves it unset. The native filter has no limit of
/// its own (only Envoy's buffer limit for buffered bodies); a client stream is not buffered, so
/// without a default one never-ending element would grow inside the VM. 4 MiB is gRPC's default
/// largest message.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u32 = 4 * 1024 * 1024;

impl Config {
    /// Whether `ignored_query_parameters` names `name` (percent-decoded).
    pub fn ignores_query_parameter(&self, name: &[u8]) -> bool {
        sorted_contains(&self.ignored_query_parameters, name)
    }

    /// The largest request body (and client-stream element) accepted.
    pub fn request_body_limit(&self) -> u32 {
        self.max_request_body_size.unwrap_or(DEFAULT_MAX_REQUEST_BODY_SIZE)
    }

    /// Parses the plugin configuration (JSON text).
    pub fn from_json(text: &[u8]) -> Result<Config, ConfigError> {
        let mut top = Self::top_level(text)?;
        top.decode_copies(text);
        Self::from_top_level(top)
    }

    /// Like [`Config::from_json`], and `proto_descriptor_bin` is decoded in `text`'s memory
    /// (base64 is longer than what it encodes): what the filter does, so a VM never holds the
    /// text and the descriptor set at once. `text` is left empty if it held a descriptor set.
    pub fn from_json_in_place(text: &mut Vec<u8>) -> Result<Config, ConfigError> {
        let mut top = Self::top_level(text)?;
        top.decode_in_place(text);
        Self::from_top_level(top)
    }

    /// Like [`Config::from_json_in_place`] for a text of `total` bytes read in pieces by
    /// `read(start, len)` (the host's buffer): the filter's way, so that a VM holds the decoded
    /// descriptor set but not its base64 (see `streamed`). A text that is not plain is read
    /// whole (`read(0, usize::MAX)`: everything), as is one `read` fails to give; so is one
    /// that does not parse, whose error names its line and column.
    pub fn from_pieces(total: usize, read: impl FnMut(usize, usize) -> Option<Vec<u8>>) -> Result<Config, ConfigError> {
        // Small against a configuration with a descriptor set, whose base64 is the most of it.
        Config::from_pieces_of(64 * 1024, total, read)
    }

    fn from_pieces_of(
        piece: usize,
        total: usize,
        mut read: impl FnMut(usize, usize) -> Option<Vec<u8>>,
    ) -> Result<Config, ConfigError> {
        let mut pieces = streamed::Pieces::new(total);
        let mut start = 0;
        while start < total {
            let Some(piece) = read(start, piece.min(total - start)).filter(|p| !p.is_empty()) else { break };
            start = start.saturating_add(piece.len());
            if pieces.push(&piece).is_err() {
                break;
            }
        }
        // A host with more than it said: read whole, as the text it has would be.
        let more = start == total && read(start, 1).is_some_and(|more| !more.is_empty());
        match pieces.finish().ok().filter(|_| !more) {
            Some(config) => config,
            None => {
                let mut text = read(0, usize::MAX).unwrap_or_default();
                Config::from_json_in_place(&mut text)
            }
        }
    }

    fn top_level(text: &[u8]) -> Result<top_level::TopLevel, ConfigError> {
        let top = top_level::parse(text).map_err(|e| ConfigError::new("", format!("not valid JSON: {e}")))?;
        top.ok_or_else(|| ConfigError::new("", "expected a JSON object"))
    }

    fn from_top_level(top: top_level::TopLevel) -> Result<Config, ConfigError> {
        let top_level::TopLevel { map, mut descriptors } = top;
        let mut config = Config::default();
        let mut descriptor_seen = false;
        for (field, value) in Fields::new(&map, "")? {
            let f = field.as_str();
            match field.name.as_str() {
                "proto_descriptor" => {
                    return Err(ConfigError::new(
                        f,
                        "a descriptor file path cannot be read inside the Wasm sandbox; \
                         put the FileDescriptorSet in `proto_descriptor_bin` (base64)",
                    ))
                }
                "proto_descriptor_bin" => {
                    config.proto_descriptor_bin = descriptor(f, std::mem::take(&mut descriptors))?;
                    descriptor_seen = true;
                }
                "services" => config.services = strings(f, value)?,
                "print_options" => config.print_options = print_options(f, value)?,
                "match_incoming_request_route" => config.match_incoming_request_route = boolean(f, value)?,
                "ignored_query_parameters" => {
                    let mut names = strings(f, value)?;
                    names.sort_unstable();
                    names.dedup();
                    config.ignored_query_parameters = names;
                }
                "auto_mapping" => config.auto_mapping = boolean(f, value)?,
                "ignore_unknown_query_parameters" => config.ignore_unknown_query_parameters = boolean(f, value)?,
                "convert_grpc_status" => config.convert_grpc_status = boolean(f, value)?,
                "url_unescape_spec" => config.url_unescape_spec = unescape_spec(f, value)?,
                "query_param_unescape_plus" => config.query_param_unescape_plus = boolean(f, value)?,
                "match_unregistered_custom_verb" => config.match_unregistered_custom_verb = boolean(f, value)?,
                "request_validation_options" => config.request_validation_options = validation(f, value)?,
                "case_insensitive_enum_parsing" => config.case_insensitive_enum_parsing = boolean(f, value)?,
                // UInt32Value in Envoy's proto, validated `gt: 0`.
                "max_request_body_size" => config.max_request_body_size = Some(positive_wrapper(f, value)?),
                "max_response_body_size" => config.max_response_body_size = Some(positive_wrapper(f, value)?),
                "capture_unknown_query_parameters" => config.capture_unknown_query_parameters = boolean(f, value)?,
                "json2grpc" => json2grpc(f, value, &mut config)?,
                _ => return Err(unknown(f)),
            }
        }
        match (descriptor_seen, &config.descriptor) {
            (false, None) => {
                return Err(ConfigError::new(
                    "proto_descriptor_bin",
                    "required: a base64 FileDescriptorSet (e.g. from `json2grpc-tool descriptor`), or a live \
                     source in json2grpc.descriptor",
                ))
            }
            (true, Some(_)) => {
                return Err(ConfigError::new(
                    "json2grpc.descriptor",
                    "a live descriptor source and proto_descriptor_bin exclude each other",
                ))
            }
            (false, Some(DescriptorSource { origin: Origin::Url { .. }, .. })) if config.services.is_empty() => {
                return Err(ConfigError::new(
                    "services",
                    "required with json2grpc.descriptor.url: the services to transcode",
                ))
            }
            (false, Some(DescriptorSource { origin: Origin::Reflection { all_services: false, .. }, .. }))
                if config.services.is_empty() =>
            {
                return Err(ConfigError::new(
                    "services",
                    "required with json2grpc.descriptor.reflection, unless all_services is true",
                ))
            }
            _ => {}
        }
        Ok(config)
    }
}

/// A key of a JSON object, normalised to snake_case, with its full dotted path for errors.
struct Field {
    name: String,
    path: String,
}

impl Field {
    fn as_str(&self) -> &str {
        &self.path
    }
}

/// Iterates an object's keys in snake_case, leaving out `null` values (proto3 JSON: the
/// default). Both spellings of one key with different values is an error: Envoy keeps the one
/// written last, but a JSON object's key order is not part of its meaning.
struct Fields;

impl Fields {
    #[allow(clippy::new_ret_no_self)]
    fn new<'a>(map: &'a Map<String, Value>, parent: &str) -> Result<Vec<(Field, &'a Value)>, ConfigError> {
        let mut out: Vec<(Field, &Value)> = Vec::with_capacity(map.len());
        // Name → its place in `out`: a scan of `out` per key cost keys² on an object of many.
        let mut taken: std::collections::HashMap<String, usize> = std::collections::HashMap::with_capacity(map.len());
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            let name = snake_case(key);
            let path = if parent.is_empty() { name.clone() } else { format!("{parent}.{name}") };
            if let Some((_, earlier)) = taken.get(&name).and_then(|&i| out.get(i)) {
                if *earlier == value {
                    continue;
                }
                return Err(ConfigError::new(
                    path,
                    "given twice (snake_case and lowerCamelCase) with different values",
                ));
            }
            taken.insert(name.clone(), out.len());
            out.push((Field { name, path }, value));
        }
        Ok(out)
    }
}

/// `maxRequestBodySize` → `max_request_body_size`; snake_case stays as it is.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn unknown(field: &str) -> ConfigError {
    ConfigError::new(field, "unknown field")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &str, value: &Value) -> ConfigError {
    ConfigError::new(field, format!("expected {expected}, got {}", type_name(value)))
}

fn boolean(field: &str, value: &Value) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        // As protobuf's JSON parser (absl::SimpleAtob), which Envoy's config loading uses.
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Ok(true),
            "false" | "f" | "no" | "n" | "0" => Ok(false),
            _ => Err(ConfigError::new(field, format!("expected true or false, got {value}"))),
        },
        other => Err(wrong_type(field, "true or false", other)),
    }
}

fn uint32(field: &str, value: &Value) -> Result<u32, ConfigError> {
    let n = match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(integral)),
        // proto3 JSON also writes integers as strings, exponents included ("1e3").
        Value::String(s) => s.parse::<u64>().ok().or_else(|| s.parse::<f64>().ok().and_then(integral)),
        other => return Err(wrong_type(field, "an unsigned 32-bit integer", other)),
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ConfigError::new(field, format!("expected an unsigned 32-bit integer, got {value}")))
}

/// A float that is a whole non-negative number (`1024.0`, `1e3`), as protobuf reads integers.
fn integral(f: f64) -> Option<u64> {
    // 2^64 as f64: larger values do not fit (the cast would saturate).
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0).then_some(f as u64)
}

/// A `google.protobuf.UInt32Value` validated `gt: 0` (`max_request_body_size`,
/// `max_response_body_size`): a number, or the wrapper object `{"value": n}` (`{}` holds 0).
fn positive_wrapper(field: &str, value: &Value) -> Result<u32, ConfigError> {
    let Value::Object(map) = value else {
        return positive(field, value);
    };
    let mut n = 0;
    for (field, value) in Fields::new(map, field)? {
        match field.name.as_str() {
            "value" => n = uint32(field.as_str(), value)?,
            _ => return Err(unknown(field.as_str())),
        }
    }
    match n {
        0 => Err(ConfigError::new(field, "must be greater than 0")),
        n => Ok(n),
    }
}

/// Whether `sorted` (a list the config keeps sorted: `ignored_query_parameters`, the callout's
/// `drop_headers`) holds `name`: a binary search, as every query parameter or header of every
/// request is looked up.
pub fn sorted_contains(sorted: &[String], name: &[u8]) -> bool {
    sorted.binary_search_by(|i| i.as_bytes().cmp(name)).is_ok()
}

fn strings(field: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        // A lone value for a repeated field, as protobuf's JSON parser accepts.
        Value::String(_) => std::slice::from_ref(value),
        _ => return Err(wrong_type(field, "an array of strings", value)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong_type(&format!("{field}[{i}]"), "a string", other)),
        })
        .collect()
}

/// `proto_descriptor_bin`, read apart from the other keys (see top_level; its key is in the map
/// with a placeholder value, so its errors come in key order): both spellings must agree.
fn descriptor(field: &str, given: Vec<(String, Descriptor)>) -> Result<Vec<u8>, ConfigError> {
    let mut given = given.into_iter().map(|(_, d)| d).filter(|d| *d != Descriptor::Null);
    let first = given.next().unwrap_or(Descriptor::Null);
    if given.any(|other| other != first) {
        return Err(ConfigError::new(field, "given twice (snake_case and lowerCamelCase) with different values"));
    }
    match first {
        Descriptor::Bytes(bytes) => Ok(bytes),
        Descriptor::NotBase64 => Err(ConfigError::new(field, "not valid base64")),
        Descriptor::Other(kind) => Err(ConfigError::new(field, format!("expected a base64 string, got {kind}"))),
        Descriptor::Null => Ok(Vec::new()),
        // Decoded by `from_json*` before.
        Descriptor::InText(_) => Err(ConfigError::new(field, "not decoded")),
    }
}

/// proto3 JSON `bytes`: standard or URL-safe alphabet, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    base64_engine(text).decode(text).ok()
}

/// The decoder for `text`: URL-safe if it has a character of that alphabet only.
fn base64_engine(text: &str) -> &'static base64::engine::GeneralPurpose {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    // Lenient like protobuf's own parsers: padding optional, non-zero trailing bits accepted.
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    if text.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    }
}

fn object<'a>(field: &str, value: &'a Value) -> Result<Vec<(Field, &'a Value)>, ConfigError> {
    match value {
        Value::Object(map) => Fields::new(map, field),
        other => Err(wrong_type(field, "an object", other)),
    }
}

fn print_options(field: &str, value: &Value) -> Result<PrintOptions, ConfigError> {
    let mut o = PrintOptions::default();
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        let slot = match field.name.as_str() {
            "add_whitespace" => &mut o.add_whitespace,
            "always_print_primitive_fields" => &mut o.always_print_primitive_fields,
            "always_print_enums_as_ints" => &mut o.always_print_enums_as_ints,
            "preserve_proto_field_names" => &mut o.preserve_proto_field_names,
            "stream_newline_delimited" => &mut o.stream_newline_delimited,
            "stream_sse_style_delimited" => &mut o.stream_sse_style_delimited,
            _ => return Err(unknown(f)),
        };
        *slot = boolean(f, value)?;
    }
    Ok(o)
}

fn validation(field: &str, value: &Value) -> Result<RequestValidation, ConfigError> {
    let mut o = RequestValidation::default();
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        let slot = match field.name.as_str() {
            "reject_unknown_method" => &mut o.reject_unknown_method,
            "reject_unknown_query_parameters" => &mut o.reject_unknown_query_parameters,
            "reject_binding_body_field_collisions" => &mut o.reject_binding_body_field_collisions,
            _ => return Err(unknown(f)),
        };
        *slot = boolean(f, value)?;
    }
    Ok(o)
}

fn unescape_spec(field: &str, value: &Value) -> Result<UrlUnescapeSpec, ConfigError> {
    // proto3 JSON enums: the value name, or its number. Envoy reads names in any letter case
    // and numbers written as strings too.
    let name = match value {
        Value::String(s) => s.to_ascii_uppercase(),
        Value::Number(n) => n.to_string(),
        other => return Err(wrong_type(field, "an enum name", other)),
    };
    let spec = match name.as_str() {
        "ALL_CHARACTERS_EXCEPT_RESERVED" | "0" => Some(UrlUnescapeSpec::AllCharactersExceptReserved),
        "ALL_CHARACTERS_EXCEPT_SLASH" | "1" => Some(UrlUnescapeSpec::AllCharactersExceptSlash),
        "ALL_CHARACTERS" | "2" => Some(UrlUnescapeSpec::AllCharacters),
        _ => None,
    };
    spec.ok_or_else(|| {
        ConfigError::new(
            field,
            format!(
                "unknown value {value}; expected ALL_CHARACTERS_EXCEPT_RESERVED, \
                 ALL_CHARACTERS_EXCEPT_SLASH or ALL_CHARACTERS"
            ),
        )
    })
}

fn json2grpc(field: &str, value: &Value, config: &mut Config) -> Result<(), ConfigError> {
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        match field.name.as_str() {
            "limits" => {
                for (field, value) in object(f, value)? {
                    let f = field.as_str();
                    let slot = match field.name.as_str() {
                        "max_json_depth" => &mut config.limits.max_json_depth,
                        "max_query_parameters" => &mut config.limits.max_query_parameters,
                        "max_frame_size" => &mut config.limits.max_frame_size,
                        "envoy_buffer_bytes" => &mut config.limits.envoy_buffer_bytes,
                        "max_response_json_bytes" => &mut config.limits.max_response_json_bytes,
                        _ => return Err(unknown(f)),
                    };
                    *slot = positive(f, value)?;
                }
            }
            "callout" => callout(f, value, &mut config.callout)?,
            "descriptor" => config.descriptor = Some(descriptor_source(f, value)?),
            "allow_on_headers_stop_iteration" => config.allow_on_headers_stop_iteration = boolean(f, value)?,
            "strict_config" => config.strict_config = boolean(f, value)?,
            "rest" => config.rest = rest::parse(f, value)?,
            "openapi" => config.openapi = openapi::parse(f, value)?,
            _ => return Err(unknown(f)),
        }
    }
    Ok(())
}

/// `json2grpc.descriptor`: exactly one of `reflection` and `url`, and their options.
fn descriptor_source(field: &str, value: &Value) -> Result<DescriptorSource, ConfigError> {
    let fields = object(field, value)?;
    let mut origin = None;
    for (f, value) in &fields {
        let path = f.as_str();
        let found = match f.name.as_str() {
            "reflection" => {
                let (mut clusters, mut authority, mut all_services, mut exclude) =
                    (Vec::new(), None, false, Vec::new());
                for (f, value) in object(path, value)? {
                    let p = f.as_str();
                    match f.name.as_str() {
                        "cluster" => clusters = vec![string(p, value)?],
                        "clusters" => clusters = strings(p, value)?,
                        "authority" => authority = Some(string(p, value)?),
                        "all_services" => all_services = boolean(p, value)?,
                        "exclude" => exclude = strings(p, value)?,
                        _ => return Err(unknown(p)),
                    }
                }
                if clusters.is_empty() || clusters.iter().any(String::is_empty) {
                    return Err(ConfigError::new(path, "needs `cluster` or `clusters` (cluster names)"));
                }
                Origin::Reflection { clusters, authority, all_services, exclude }
            }
            "url" => {
                let (mut cluster, mut url_path, mut authority, mut sha256) = (String::new(), String::new(), None, None);
                for (f, value) in object(path, value)? {
                    let p = f.as_str();
                    match f.name.as_str() {
                        "cluster" => cluster = string(p, value)?,
                        "path" => url_path = string(p, value)?,
                        "authority" => authority = Some(string(p, value)?),
                        "sha256" => {
                            let text = string(p, value)?;
                            sha256 = Some(parse_sha256(&text.to_ascii_lowercase()).ok_or_else(|| {
                                ConfigError::new(p, "expected 64 hexadecimal digits (the set's SHA-256)")
                            })?)
                        }
                        _ => return Err(unknown(p)),
                    }
                }
                if cluster.is_empty() || !url_path.starts_with('/') {
                    return Err(ConfigError::new(path, "needs `cluster` and a `path` starting with '/'"));
                }
                Origin::Url { cluster, path: url_path, authority, sha256 }
            }
            "refresh_ms" | "timeout_ms" | "before_load" | "max_bytes" => continue,
            _ => return Err(unknown(path)),
        };
        if origin.replace(found).is_some() {
            return Err(ConfigError::new(field, "one source only: `reflection` or `url`"));
        }
    }
    let origin = origin.ok_or_else(|| ConfigError::new(field, "needs a source: `reflection` or `url`"))?;
    let mut source = DescriptorSource::new(origin);
    for (f, value) in &fields {
        let path = f.as_str();
        match f.name.as_str() {
            "refresh_ms" => source.refresh_ms = positive(path, value)?.max(1_000),
            "timeout_ms" => source.timeout_ms = positive(path, value)?,
            "max_bytes" => {
                source.limits.max_bytes = usize::try_from(positive(path, value)?).unwrap_or(usize::MAX);
            }
            "before_load" => {
                source.before_load = match string(path, value)?.to_ascii_lowercase().as_str() {
                    "unavailable" => BeforeLoad::Unavailable,
                    "pass_through" => BeforeLoad::PassThrough,
                    other => {
                        return Err(ConfigError::new(
                            path,
                            format!("unknown value {other:?}; expected \"unavailable\" or \"pass_through\""),
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(source)
}

fn string(field: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type(field, "a string", other)),
    }
}

fn positive(field: &str, value: &Value) -> Result<u32, ConfigError> {
    match uint32(field, value)? {
        0 => Err(ConfigError::new(field, "must be greater than 0")),
        n => Ok(n),
    }
}

fn callout(field: &str, value: &Value, o: &mut CalloutOptions) -> Result<(), ConfigError> {
    for (field, value) in object(field, value)? {
        let f = field.as_str();
        match field.name.as_str() {
            "timeout_ms" => o.timeout_ms = positive(f, value)?,
            "max_stream_bytes" => o.max_stream_bytes = positive(f, value)?,
            "forward_headers" => {
                o.forward_headers = strings(f, value)?.into_iter().map(|h| h.to_ascii_lowercase()).collect()
            }
            "loopback_cluster" => match value {
                Value::String(c) if !c.is_empty() => o.loopback_cluster = Some(c.clone()),
                other => return Err(wrong_type(f, "a cluster name", other)),
            },
            "drop_headers" => {
                let mut names: Vec<String> = strings(f, value)?.into_iter().map(|h| h.to_ascii_lowercase()).collect();
                names.sort_unstable();
                names.dedup();
                o.drop_headers = names;
            }
            "clusters" => {
                // Keys are service names: not normalised to snake_case.
                let Value::Object(map) = value else {
                    return Err(wrong_type(f, "an object of service name to cluster name", value));
                };
                o.clusters = map
                    .iter()
                    .map(|(service, cluster)| match cluster {
                        Value::String(c) if !c.is_empty() => Ok((service.clone(), c.clone())),
                        other => Err(wrong_type(&format!("{f}.{service}"), "a cluster name", other)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // A JSON object's keys are unique.
                o.clusters.sort_unstable();
            }
            _ => return Err(unknown(f)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(json.as_bytes())
    }

    fn err(json: &str) -> ConfigError {
        parse(json).unwrap_err()
    }

    #[test]
    fn accepts_every_envoy_option_in_snake_case() {
        let c = parse(
            r#"{
            "proto_descriptor_bin": "AAEC",
            "services": ["a.B"],
            "print_options": {"add_whitespace": true, "always_print_primitive_fields": true,
              "always_print_enums_as_ints": true, "preserve_proto_field_names": true,
              "stream_newline_delimited": true, "stream_sse_style_delimited": true},
            "match_incoming_request_route": true,
            "ignored_query_parameters": ["api_key"],
            "auto_mapping": true,
            "ignore_unknown_query_parameters": true,
            "convert_grpc_status": true,
            "url_unescape_spec": "ALL_CHARACTERS",
            "query_param_unescape_plus": true,
            "match_unregistered_custom_verb": true,
            "request_validation_options": {"reject_unknown_method": true,
              "reject_unknown_query_parameters": true, "reject_binding_body_field_collisions": true},
            "case_insensitive_enum_parsing": true,
            "max_request_body_size": 1024,
            "max_response_body_size": "2048",
            "capture_unknown_query_parameters": true
        }"#,
        )
        .unwrap();
        assert_eq!(c.proto_descriptor_bin, vec![0, 1, 2]);
        assert_eq!(c.services, vec!["a.B"]);
        assert!(c.print_options.add_whitespace && c.print_options.stream_sse_style_delimited);
        assert!(c.print_options.always_print_enums_as_ints && c.print_options.preserve_proto_field_names);
        assert!(c.match_incoming_request_route && c.auto_mapping && c.convert_grpc_status);
        assert_eq!(c.ignored_query_parameters, vec!["api_key"]);
        assert_eq!(c.url_unescape_spec, UrlUnescapeSpec::AllCharacters);
        assert!(c.query_param_unescape_plus && c.match_unregistered_custom_verb);
        assert!(c.request_validation_options.reject_unknown_method);
        assert!(c.request_validation_options.reject_binding_body_field_collisions);
        assert!(c.case_insensitive_enum_parsing && c.capture_unknown_query_parameters);
        assert_eq!(c.max_request_body_size, Some(1024));
        assert_eq!(c.max_response_body_size, Some(2048));
    }

    #[test]
    fn accepts_lower_camel_case() {
        let c = parse(
            r#"{"protoDescriptorBin": "AAEC", "services": [], "printOptions": {"addWhitespace": true},
                "requestValidationOptions": {"rejectUnknownMethod": true}, "urlUnescapeSpec": 1,
                "maxRequestBodySize": 7}"#,
        )
        .unwrap();
        assert!(c.print_options.add_whitespace);
        assert!(c.request_validation_options.reject_unknown_method);
        assert_eq!(c.url_unescape_spec, UrlUnescapeSpec::AllCharactersExceptSlash);
        assert_eq!(c.max_request_body_size, Some(7));
    }

    #[test]
    fn defaults_match_envoy() {
        let c = parse(r#"{"proto_descriptor_bin": ""}"#).unwrap();
        assert!(c.services.is_empty());
        assert_eq!(c.url_unescape_spec, UrlUnescapeSpec::AllCharactersExceptReserved);
        assert!(!c.auto_mapping && !c.convert_grpc_status && !c.query_param_unescape_plus);
        assert_eq!(c.max_request_body_size, None);
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn base64_in_both_alphabets_with_or_without_padding() {
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            let c = parse(&format!(r#"{{"proto_descriptor_bin": "{text}"}}"#)).unwrap();
            assert_eq!(c.proto_descriptor_bin, vec![0xfb, 0xff], "{text}");
        }
    }

    #[test]
    fn the_descriptor_under_both_spellings_agreeing_or_beside_null() {
        for text in [
            r#"{"proto_descriptor_bin": "AAEC", "protoDescriptorBin": "AAEC"}"#,
            r#"{"proto_descriptor_bin": "AAEC", "protoDescriptorBin": null}"#,
            r#"{"proto_descriptor_bin": null, "protoDescriptorBin": "AAEC"}"#,
            r#"{"proto_descriptor_bin": "AA==", "proto_descriptor_bin": "AAEC"}"#,
        ] {
            assert_eq!(parse(text).unwrap().proto_descriptor_bin, vec![0, 1, 2], "{text}");
        }
    }

    #[test]
    fn a_descriptor_path_is_rejected_with_a_hint() {
        let e = err(r#"{"proto_descriptor": "/etc/envoy/api.pb", "services": ["a.B"]}"#);
        assert_eq!(e.field, "proto_descriptor");
        assert!(e.message.contains("proto_descriptor_bin"), "{e}");
    }

    #[test]
    fn errors_name_the_offending_field() {
        let cases = [
            (r#"{"proto_descriptor_bin": "AAEC", "servics": []}"#, "servics", "unknown field"),
            (r#"{"proto_descriptor_bin": "AAEC", "services": 5}"#, "services", "expected an array"),
            (r#"{"proto_descriptor_bin": "AAEC", "services": ["a", 1]}"#, "services[1]", "expected a string"),
            (r#"{"proto_descriptor_bin": "AAEC", "auto_mapping": "maybe"}"#, "auto_mapping", "true or false"),
            (
                r#"{"proto_descriptor_bin": "AAEC", "print_options": {"add_whitespace": 1}}"#,
                "print_options.add_whitespace",
                "true or false",
            ),
            (
                r#"{"proto_descriptor_bin": "AAEC", "printOptions": {"bogus": true}}"#,
                "print_options.bogus",
                "unknown field",
            ),
            (
                r#"{"proto_descriptor_bin": "AAEC", "request_validation_options": {"x": true}}"#,
                "request_validation_options.x",
                "unknown field",
            ),
            (r#"{"proto_descriptor_bin": "AAEC", "url_unescape_spec": "SOME"}"#, "url_unescape_spec", "unknown value"),
            (r#"{"proto_descriptor_bin": "AAEC", "url_unescape_spec": 7}"#, "url_unescape_spec", "unknown value"),
            (r#"{"proto_descriptor_bin": "AAEC", "max_request_body_size": -1}"#, "max_request_body_size", "unsigned"),
            (
                r#"{"proto_descriptor_bin": "AAEC", "max_request_body_size": 4294967296}"#,
                "max_request_body_size",
                "unsigned",
            ),
            (
                r#"{"proto_descriptor_bin": "AAEC", "max_response_body_size": 1.5}"#,
                "max_response_body_size",
                "unsigned",
            ),
            (r#"{"proto_descriptor_bin": "!!"}"#, "proto_descriptor_bin", "base64"),
            (r#"{"proto_descriptor_bin": 5}"#, "proto_descriptor_bin", "expected a base64 string, got a number"),
            (r#"{"protoDescriptorBin": ["AAEC"]}"#, "proto_descriptor_bin", "expected a base64 string, got an array"),
            (r#"{"proto_descriptor_bin": "AAEC", "protoDescriptorBin": "AAED"}"#, "proto_descriptor_bin", "twice"),
            (r#"{"proto_descriptor_bin": "AAEC", "protoDescriptorBin": 1}"#, "proto_descriptor_bin", "twice"),
            (r#"[{"proto_descriptor_bin": "AAEC"}]"#, "", "expected a JSON object"),
            (r#"{"proto_descriptor_bin": null}"#, "proto_descriptor_bin", "required"),
            // Keys are read in order, the descriptor's too.
            (r#"{"proto_descriptor_bin": 5, "auto_mapping": 5}"#, "auto_mapping", "true or false"),
            (r#"{"proto_descriptor_bin": 5, "proto_descriptor": "/x"}"#, "proto_descriptor", "Wasm sandbox"),
            (
                r#"{"proto_descriptor_bin": "AAEC", "auto_mapping": true, "autoMapping": false}"#,
                "auto_mapping",
                "twice",
            ),
            (r#"{"proto_descriptor_bin": "AAEC", "auto_mapping": "on"}"#, "auto_mapping", "true or false"),
            (
                r#"{"proto_descriptor_bin": "AAEC", "max_request_body_size": 0}"#,
                "max_request_body_size",
                "greater than 0",
            ),
            (
                r#"{"proto_descriptor_bin": "AAEC", "max_response_body_size": "0"}"#,
                "max_response_body_size",
                "greater than 0",
            ),
            (
                r#"{"proto_descriptor_bin": "AAEC", "max_response_body_size": {}}"#,
                "max_response_body_size",
                "greater than 0",
            ),
            (
                r#"{"proto_descriptor_bin": "AAEC", "max_request_body_size": {"value": 1, "x": 2}}"#,
                "max_request_body_size.x",
                "unknown field",
            ),
            (r#"{"proto_descriptor_bin": "AAEC", "services": [null]}"#, "services[0]", "expected a string"),
            (r#"{"proto_descriptor_bin": "AAEC", "url_unescape_spec": "3"}"#, "url_unescape_spec", "unknown value"),
            (
                r#"{"proto_descriptor_bin": "AAEC", "json2grpc": {"limits": {"max_json_depth": 0}}}"#,
                "json2grpc.limits.max_json_depth",
                "greater than 0",
            ),
            (r#"{"proto_descriptor_bin": "AAEC", "json2grpc": {"limit": {}}}"#, "json2grpc.limit", "unknown field"),
            (
                r#"{"proto_descriptor_bin": "AAEC", "json2grpc": {"callout": {"clusters": {"a.B": 3}}}}"#,
                "json2grpc.callout.clusters.a.B",
                "cluster name",
            ),
            (r#"{"services": []}"#, "proto_descriptor_bin", "required"),
        ];
        for (json, field, text) in cases {
            let e = err(json);
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.message.contains(text), "{json}: {e}");
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn values_are_read_as_leniently_as_envoy_reads_them() {
        // What Envoy's config loading (protobuf's JSON parser) accepts for the native filter.
        let c = parse(
            r#"{"proto_descriptor_bin": "AAEC", "services": "a.B", "ignored_query_parameters": "api_key",
                "auto_mapping": "yes", "convert_grpc_status": "True", "case_insensitive_enum_parsing": "1",
                "match_unregistered_custom_verb": "n", "url_unescape_spec": "all_characters_except_slash",
                "max_request_body_size": "1e3", "max_response_body_size": {"value": 2048.0},
                "print_options": null, "request_validation_options": {"reject_unknown_method": null},
                "capture_unknown_query_parameters": null}"#,
        )
        .unwrap();
        assert_eq!(c.services, vec!["a.B"]);
        assert_eq!(c.ignored_query_parameters, vec!["api_key"]);
        assert!(c.auto_mapping && c.convert_grpc_status && c.case_insensitive_enum_parsing);
        assert!(!c.match_unregistered_custom_verb && !c.capture_unknown_query_parameters);
        assert_eq!(c.url_unescape_spec, UrlUnescapeSpec::AllCharactersExceptSlash);
        assert_eq!(c.max_request_body_size, Some(1000));
        assert_eq!(c.max_response_body_size, Some(2048));
        assert_eq!(c.print_options, PrintOptions::default());
        let c = parse(r#"{"proto_descriptor_bin": "AAEC", "url_unescape_spec": "2", "max_request_body_size": 1024.0}"#)
            .unwrap();
        assert_eq!(c.url_unescape_spec, UrlUnescapeSpec::AllCharacters);
        assert_eq!(c.max_request_body_size, Some(1024));
        // Both spellings of a key with the same value are one key.
        assert!(parse(r#"{"proto_descriptor_bin": "AAEC", "auto_mapping": true, "autoMapping": true}"#).is_ok());
        // null is the default, not a value: a missing descriptor is still missing.
        assert_eq!(err(r#"{"proto_descriptor_bin": null}"#).field, "proto_descriptor_bin");
    }

    #[test]
    fn strict_config_is_a_json2grpc_option() {
        assert!(!parse(r#"{"proto_descriptor_bin": ""}"#).unwrap().strict_config);
        let c = parse(r#"{"proto_descriptor_bin": "", "json2grpc": {"strictConfig": true}}"#).unwrap();
        assert!(c.strict_config);
    }

    #[test]
    fn openapi_is_off_unless_a_path_is_set() {
        assert_eq!(parse(r#"{"proto_descriptor_bin": ""}"#).unwrap().openapi, OpenApiOptions::default());
        let c = parse(
            r#"{"proto_descriptor_bin": "", "json2grpc": {"openapi": {"path": "/.well-known/openapi.json",
                "maxBytes": "1000"}}}"#,
        )
        .unwrap();
        assert_eq!(c.openapi, OpenApiOptions { path: Some("/.well-known/openapi.json".into()), max_bytes: 1000 });
        for (openapi, field, message) in [
            (r#"{"path": "openapi.json"}"#, "json2grpc.openapi.path", "starting with '/'"),
            (r#"{"path": "/a?b"}"#, "json2grpc.openapi.path", "without query"),
            (r#"{"path": "/a b"}"#, "json2grpc.openapi.path", "spaces"),
            (r#"{"path": 7}"#, "json2grpc.openapi.path", "expected a string"),
            (r#"{"max_bytes": 0}"#, "json2grpc.openapi.max_bytes", "greater than 0"),
            (r#"{"format": "yaml"}"#, "json2grpc.openapi.format", "unknown field"),
            (r#""/x""#, "json2grpc.openapi", "expected an object"),
        ] {
            let e = err(&format!(r#"{{"proto_descriptor_bin": "", "json2grpc": {{"openapi": {openapi}}}}}"#));
            assert_eq!(e.field, field, "{openapi}");
            assert!(e.message.contains(message), "{openapi}: {e}");
        }
    }

    #[test]
    fn non_objects_and_bad_json_are_rejected() {
        assert!(err("[]").message.contains("object"));
        assert!(err("{").message.contains("not valid JSON"));
        assert!(err("").message.contains("not valid JSON"));
    }

    #[test]
    fn json2grpc_options() {
        let c = parse(
            r#"{"proto_descriptor_bin": "", "json2grpc": {
                "limits": {"maxJsonDepth": 10, "max_query_parameters": 5, "max_frame_size": 99},
                "callout": {"timeout_ms": 250, "clusters": {"pkg.Svc": "svc_cluster"},
                            "forward_headers": ["X-Tenant"], "max_stream_bytes": 1000}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                max_json_depth: 10,
                max_query_parameters: 5,
                max_frame_size: 99,
                envoy_buffer_bytes: 1024 * 1024,
                max_response_json_bytes: 8 * 1024 * 1024
            }
        );
        assert_eq!(c.callout.timeout_ms, 250);
        assert_eq!(c.callout.clusters, vec![("pkg.Svc".to_string(), "svc_cluster".to_string())]);
        assert_eq!(c.callout.forward_headers, vec!["x-tenant"]);
        assert_eq!(c.callout.max_stream_bytes, 1000);
        assert!(!c.allow_on_headers_stop_iteration);
        let c = parse(r#"{"proto_descriptor_bin": "", "json2grpc": {"allowOnHeadersStopIteration": true}}"#).unwrap();
        assert!(c.allow_on_headers_stop_iteration);
    }
}
