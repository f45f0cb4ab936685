//! The routing table: every `google.api.http` binding (and auto-mapped method) of the
//! configured services, resolved against the descriptors once per configuration.
use std::sync::Arc;

use super::config::{Config, ConfigError};
use super::descriptors::{http_rule, HttpRule};
use super::field_path::{FieldPath, Names};
use super::path_matcher::{MatcherOptions, PathMatcher, PathMatcherBuilder};
use super::schema::{Kind, Schema};
use super::template;

pub const HTTP_BODY: &str = "google.api.HttpBody";

/// One gRPC method json2grpc can call.
#[derive(Debug)]
pub struct MethodInfo {
    /// `pkg.Service/Method`, the gRPC `:path` without the leading slash.
    pub grpc_path: String,
    pub service: String,
    /// `pkg.Service.Method`.
    pub full_name: String,
    /// The request and response types: schema (and codec plan) indices, and full names.
    pub input: usize,
    pub output: usize,
    pub input_name: String,
    pub output_name: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

impl MethodInfo {
    /// The HTTP/2 `:path` of the gRPC call.
    pub fn path(&self) -> String {
        format!("/{}", self.grpc_path)
    }
}

/// Where the request body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// `body` unset: no body is expected.
    None,
    /// `body: "*"`: the body is the request message.
    Whole,
    /// `body: "a.b"`: the body is that field.
    Field(FieldPath),
}

/// One HTTP method + path template bound to a gRPC method.
#[derive(Debug)]
pub struct HttpBinding {
    pub method: Arc<MethodInfo>,
    pub http_method: String,
    pub template: String,
    /// The field of each template variable, by variable index.
    pub variables: Vec<FieldPath>,
    pub body: BodyRule,
    pub response_body: Option<FieldPath>,
    /// The body is raw bytes for a `google.api.HttpBody` (whole request or the body field).
    pub body_is_http_body: bool,
}

#[cfg(test)]
impl HttpBinding {
    /// A copy, for tests that vary one part of a binding.
    pub(crate) fn for_tests(&self) -> HttpBinding {
        HttpBinding {
            method: self.method.clone(),
            http_method: self.http_method.clone(),
            template: self.template.clone(),
            variables: self.variables.clone(),
            body: self.body.clone(),
            response_body: self.response_body.clone(),
            body_is_http_body: self.body_is_http_body,
        }
    }
}

pub struct Router {
    matcher: PathMatcher<Arc<HttpBinding>>,
    /// Bindings that could not be registered (duplicates); logged by the filter at configure.
    pub warnings: Vec<String>,
    pub methods: Vec<Arc<MethodInfo>>,
}

impl Router {
    pub fn build(config: &Config, schema: &Schema) -> Result<Router, ConfigError> {
        let mut builder = PathMatcherBuilder::new();
        let mut warnings = Vec::new();
        let mut methods = Vec::new();
        for (i, service_name) in config.services.iter().enumerate() {
            let field = format!("services[{i}]");
            let service = schema.service(service_name).ok_or_else(|| {
                ConfigError::new(&field, format!("service \"{service_name}\" is not in proto_descriptor_bin"))
            })?;
            for method in &service.methods {
                let info = Arc::new(MethodInfo {
                    grpc_path: format!("{}/{}", service.full_name, method.name),
                    service: service.full_name.to_string(),
                    full_name: method.full_name.to_string(),
                    input: method.input,
                    output: method.output,
                    input_name: schema.message_name(method.input).to_string(),
                    output_name: schema.message_name(method.output).to_string(),
                    client_streaming: method.client_streaming,
                    server_streaming: method.server_streaming,
                });
                let err = |message: String| ConfigError::new(&field, format!("{}: {message}", method.full_name));
                let rule = http_rule(method).map_err(err)?;
                let rules = match rule {
                    Some(rule) => flatten(rule),
                    None if config.auto_mapping => vec![HttpRule {
                        pattern: Some(super::descriptors::Pattern::Post(info.path())),
                        body: "*".to_string(),
                        ..Default::default()
                    }],
                    None => Vec::new(),
                };
                for rule in rules {
                    let Some((http_method, template_text)) = rule.method_and_template() else {
                        return Err(err("google.api.http rule without a pattern".to_string()));
                    };
                    let binding = bind(schema, &info, http_method, template_text, &rule).map_err(err)?;
                    let parsed = template::parse(template_text).map_err(|e| err(e.to_string()))?;
                    let http_method = binding.http_method.clone();
                    if builder.register(&http_method, &parsed, Arc::new(binding)).is_err() {
                        warnings.push(format!(
                            "{http_method} {template_text} of {} is bound more than once; requests to it \
                             are not transcoded",
                            method.full_name
                        ));
                    }
                }
                methods.push(info);
            }
        }
        let matcher = builder.build(MatcherOptions {
            url_unescape_spec: config.url_unescape_spec,
            match_unregistered_custom_verb: config.match_unregistered_custom_verb,
        });
        Ok(Router { matcher, warnings, methods })
    }

    /// The binding for a request and its path variable values (index, decoded bytes).
    #[allow(clippy::type_complexity)]
    pub fn lookup(&self, http_method: &str, path: &str) -> Option<(Arc<HttpBinding>, Vec<(usize, Vec<u8>)>)> {
        let found = self.matcher.lookup(http_method, path)?;
        Some((found.value.clone(), found.bindings))
    }
}

/// The rule and its `additional_bindings` (one level, as the spec allows).
fn flatten(mut rule: HttpRule) -> Vec<HttpRule> {
    let additional = std::mem::take(&mut rule.additional_bindings);
    let mut rules = vec![rule];
    rules.extend(additional.into_iter().map(|mut r| {
        r.additional_bindings.clear();
        r
    }));
    rules
}

fn bind(
    schema: &Schema,
    info: &Arc<MethodInfo>,
    http_method: &str,
    template_text: &str,
    rule: &HttpRule,
) -> Result<HttpBinding, String> {
    let context = |e: String| format!("{http_method} \"{template_text}\": {e}");
    if http_method.is_empty() {
        return Err(context("empty HTTP method in a custom pattern".to_string()));
    }
    let parsed = template::parse(template_text).map_err(|e| e.to_string())?;
    let mut variables = Vec::with_capacity(parsed.variables.len());
    for variable in &parsed.variables {
        let path =
            FieldPath::resolve(schema, info.input, &variable.field_path.join("."), Names::Proto).map_err(context)?;
        if let Some(leaf) = path.leaf() {
            if leaf.is_repeated() {
                return Err(context(format!("path variable \"{path}\" is a repeated or map field")));
            }
            if let Kind::Message(m) = leaf.kind {
                let name = schema.message_name(m);
                if !bindable_message(name) {
                    return Err(context(format!("path variable \"{path}\" is a {name} message")));
                }
            }
        }
        variables.push(path);
    }
    let (body, body_is_http_body) = match rule.body.as_str() {
        "" => (BodyRule::None, false),
        "*" => (BodyRule::Whole, info.input_name == HTTP_BODY),
        field => {
            let path = FieldPath::resolve(schema, info.input, field, Names::Proto)
                .map_err(|e| context(format!("body: {e}")))?;
            let is_http_body =
                matches!(path.leaf().map(|f| f.kind), Some(Kind::Message(m)) if schema.message_name(m) == HTTP_BODY);
            (BodyRule::Field(path), is_http_body)
        }
    };
    let response_body = match rule.response_body.as_str() {
        "" => None,
        field => Some(
            FieldPath::resolve(schema, info.output, field, Names::Proto)
                .map_err(|e| context(format!("response_body: {e}")))?,
        ),
    };
    Ok(HttpBinding {
        method: info.clone(),
        http_method: http_method.to_ascii_uppercase(),
        template: template_text.to_string(),
        variables,
        body,
        response_body,
        body_is_http_body,
    })
}

/// Message types a URL value can set (their JSON form is a string or a scalar).
pub fn bindable_message(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.Value"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::descriptors::load_schema;
    use crate::core::testutil::TEST_DESCRIPTOR_SET;

    fn config(services: &[&str], auto_mapping: bool) -> Config {
        Config { services: services.iter().map(|s| s.to_string()).collect(), auto_mapping, ..Default::default() }
    }

    fn router(services: &[&str], auto_mapping: bool) -> Router {
        Router::build(&config(services, auto_mapping), &load_schema(TEST_DESCRIPTOR_SET).unwrap()).unwrap()
    }

    fn target(r: &Router, method: &str, path: &str) -> Option<String> {
        r.lookup(method, path).map(|(b, _)| b.method.grpc_path.clone())
    }

    #[test]
    fn routes_every_binding_kind() {
        let r = router(&["test.v1.Things"], false);
        assert_eq!(target(&r, "GET", "/v1/things/7").as_deref(), Some("test.v1.Things/Get"));
        assert_eq!(target(&r, "GET", "/v1/nested/n/things/7").as_deref(), Some("test.v1.Things/Get"));
        assert_eq!(target(&r, "POST", "/v1/things").as_deref(), Some("test.v1.Things/Create"));
        assert_eq!(target(&r, "PATCH", "/v1/things/7").as_deref(), Some("test.v1.Things/Update"));
        assert_eq!(target(&r, "DELETE", "/v1/things/7").as_deref(), Some("test.v1.Things/Delete"));
        assert_eq!(target(&r, "POST", "/v1/things/7:reserve").as_deref(), Some("test.v1.Things/Reserve"));
        assert_eq!(target(&r, "HEAD", "/v1/custom/7").as_deref(), Some("test.v1.Things/Custom"));
        assert_eq!(target(&r, "GET", "/v1/shelves/1/books/2").as_deref(), Some("test.v1.Things/Paths"));
        assert_eq!(target(&r, "GET", "/v2/files/a/b/c").as_deref(), Some("test.v1.Things/Paths"));
        assert_eq!(target(&r, "PUT", "/v1/things/7"), None);
        assert_eq!(target(&r, "GET", "/v1/ping"), None, "Other service not configured");
        assert_eq!(target(&r, "POST", "/test.v1.Things/Unannotated"), None, "auto_mapping off");
    }

    #[test]
    fn binding_details_are_resolved() {
        let r = router(&["test.v1.Things"], false);
        let (b, vars) = r.lookup("GET", "/v1/nested/n/things/7").unwrap();
        assert_eq!(b.variables.iter().map(|v| v.to_string()).collect::<Vec<_>>(), vec!["nested.name", "id"]);
        assert_eq!(vars.len(), 2);
        assert_eq!(b.body, BodyRule::None);
        let (b, _) = r.lookup("PUT", "/v1/things/7/nested").unwrap();
        assert!(matches!(&b.body, BodyRule::Field(p) if p.to_string() == "item.nested"));
        let (b, _) = r.lookup("GET", "/v1/nested-response/1").unwrap();
        assert_eq!(b.response_body.as_ref().map(|p| p.to_string()).as_deref(), Some("nested"));
        let (b, _) = r.lookup("POST", "/v1/upload/1").unwrap();
        assert!(b.body_is_http_body);
        let (b, _) = r.lookup("POST", "/v1/raw").unwrap();
        assert!(b.body_is_http_body && b.body == BodyRule::Whole);
        let (b, _) = r.lookup("POST", "/v1/things").unwrap();
        assert!(!b.body_is_http_body);
        assert_eq!(b.method.path(), "/test.v1.Things/Create");
        assert!(!b.method.server_streaming);
        let (b, _) = r.lookup("POST", "/v1/chat").unwrap();
        assert!(b.method.client_streaming && b.method.server_streaming);
    }

    #[test]
    fn auto_mapping_adds_post_for_unannotated_methods_only() {
        let r = router(&["test.v1.Things", "test.v1.Other"], true);
        let (b, _) = r.lookup("POST", "/test.v1.Things/Unannotated").unwrap();
        assert_eq!(b.body, BodyRule::Whole);
        assert_eq!(target(&r, "POST", "/test.v1.Things/Get"), None, "annotated methods keep only their rules");
        assert_eq!(target(&r, "GET", "/v1/ping").as_deref(), Some("test.v1.Other/Ping"));
    }

    #[test]
    fn no_services_means_nothing_is_routed() {
        let r = router(&[], true);
        assert_eq!(target(&r, "GET", "/v1/things/1"), None);
    }

    #[test]
    fn unknown_service_is_a_config_error_naming_it() {
        let e = Router::build(
            &config(&["test.v1.Things", "test.v1.Nope"], false),
            &load_schema(TEST_DESCRIPTOR_SET).unwrap(),
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "services[1]");
        assert!(e.message.contains("test.v1.Nope"), "{e}");
    }

    #[test]
    fn invalid_rules_are_config_errors() {
        // Build descriptor sets with a single bad rule each, via a patched copy of the test set.
        let cases = [
            ("/v1/{nope}", "", "", "no field \"nope\""),
            ("/v1/{tags}", "", "", "repeated"),
            ("/v1/{nested}", "", "", "test.v1.Nested message"),
            ("/v1/{id", "", "", "invalid path template"),
            ("/v1/x", "nope", "", "body: no field"),
            ("/v1/x", "", "nope", "response_body: no field"),
        ];
        for (template_text, body, response_body, expected) in cases {
            let rule = HttpRule {
                pattern: Some(super::super::descriptors::Pattern::Get(template_text.into())),
                body: body.into(),
                response_body: response_body.into(),
                ..Default::default()
            };
            let set = with_rule_on_query(rule.encode_to_vec());
            let schema = load_schema(&set).unwrap();
            let e = Router::build(&config(&["test.v1.Things"], false), &schema).err().unwrap();
            assert_eq!(e.field, "services[0]");
            assert!(e.message.contains("test.v1.Things.Query"), "{e}");
            assert!(e.message.contains(expected), "{template_text} {body} {response_body}: {e}");
        }
    }

    #[test]
    fn duplicate_bindings_are_reported_and_not_routed() {
        let rule = HttpRule {
            pattern: Some(super::super::descriptors::Pattern::Get("/v1/things/{id}".into())),
            ..Default::default()
        };
        let set = with_rule_on_query(rule.encode_to_vec());
        let r = Router::build(&config(&["test.v1.Things"], false), &load_schema(&set).unwrap()).unwrap();
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("/v1/things/{id}"));
        assert_eq!(target(&r, "GET", "/v1/things/1"), None);
    }

    /// The test descriptor set with `Things.Query`'s options replaced by one google.api.http
    /// rule, rewritten at the wire level.
    fn with_rule_on_query(rule: Vec<u8>) -> Vec<u8> {
        use crate::core::wire::{fields, write_varint};
        fn field(number: u32, value: &[u8], out: &mut Vec<u8>) {
            write_varint(u64::from(number) << 3 | 2, out);
            write_varint(value.len() as u64, out);
            out.extend_from_slice(value);
        }
        // Rewrites LEN field `number` of `msg` with `f`, copying everything else.
        fn rewrite(msg: &[u8], number: u32, f: &mut dyn FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
            let mut out = Vec::new();
            let mut rest = msg;
            for raw in fields(msg) {
                let raw = raw.unwrap();
                let consumed = encoded_len(rest, &raw);
                let (this, tail) = rest.split_at(consumed);
                rest = tail;
                if raw.number == number && raw.wire_type == 2 {
                    field(number, &f(raw.value), &mut out);
                } else {
                    out.extend_from_slice(this);
                }
            }
            out
        }
        // Bytes taken by `raw` at the front of `buf`.
        fn encoded_len(buf: &[u8], raw: &crate::core::wire::RawField<'_>) -> usize {
            let value_start = raw.value.as_ptr() as usize - buf.as_ptr() as usize;
            value_start + raw.value.len()
        }
        let name_is = |msg: &[u8], name: &str| {
            fields(msg).any(|f| f.map(|f| f.number == 1 && f.value == name.as_bytes()).unwrap_or(false))
        };
        let mut options = Vec::new();
        field(crate::core::descriptors::HTTP_RULE_EXTENSION, &rule, &mut options);
        rewrite(TEST_DESCRIPTOR_SET, 1, &mut |file| {
            rewrite(file, 6, &mut |service| {
                if !name_is(service, "Things") {
                    return service.to_vec();
                }
                rewrite(service, 2, &mut |method| {
                    if !name_is(method, "Query") {
                        return method.to_vec();
                    }
                    rewrite(method, 4, &mut |_| options.clone())
                })
            })
        })
    }
}
