//! The routing table: every `google.api.http` binding (and auto-mapped method) of the
//! configured services, resolved against the descriptors once per configuration.
use std::collections::HashSet;
use std::sync::Arc;

use crate::core::codec::plan::{well_known, WellKnown};
use crate::core::config::{Config, ConfigError};
use crate::core::route::field_index::FieldIndex;
use crate::core::route::field_path::{FieldPath, Names};
use crate::core::route::path_matcher::{MatcherOptions, PathMatcher, PathMatcherBuilder};
use crate::core::route::template;
use crate::core::schema::descriptors::{http_rule, HttpRule};
use crate::core::schema::{Kind, Method, Schema, Service};
use crate::core::seeded_hash::{SeededMap, SeededSet};

pub const HTTP_BODY: &str = "google.api.HttpBody";

/// One gRPC method json2grpc can call. Every worker's VM holds one per method of the
/// configured services: the service and `:path` are derived from the full name, not stored.
#[derive(Debug)]
pub struct MethodInfo {
    /// `pkg.Service.Method`.
    pub full_name: Box<str>,
    /// The service's part of `full_name` (a hand-made or live descriptor set may name a method
    /// `a.b`: the last dot is not always the split).
    pub service_len: usize,
    /// The request and response types: schema (and codec plan) indices (their names are the
    /// schema's: [`Schema::message_name`]; a VM holds a `MethodInfo` per method).
    pub input: usize,
    pub output: usize,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

impl MethodInfo {
    /// The HTTP/2 `:path` of the gRPC call: `/pkg.Service/Method`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.service(), self.name())
    }

    /// `pkg.Service`.
    pub fn service(&self) -> &str {
        split_full_name(&self.full_name, self.service_len).0
    }

    /// The method's own name.
    pub fn name(&self) -> &str {
        split_full_name(&self.full_name, self.service_len).1
    }
}

/// A method's full name split into its service's and its own (`len`: the service's length).
fn split_full_name(full_name: &str, len: usize) -> (&str, &str) {
    let service = full_name.get(..len).unwrap_or_default();
    let name = full_name.get(len..).and_then(|rest| rest.strip_prefix('.')).unwrap_or_default();
    (service, name)
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

/// What a template variable binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathVariable {
    /// The field the value sets (a list field gets it appended; through a repeated message
    /// field, it goes into a new element).
    Field(FieldPath),
    /// Names no field of the request message. Envoy accepts the binding and treats the variable
    /// like a query parameter naming no field: the request passes through untranscoded (400
    /// with `reject_unknown_query_parameters`), or the variable is dropped with
    /// `ignore_unknown_query_parameters`.
    Unknown(String),
    /// A field no URL value can set (a message without a string form, a map): every request is
    /// a 400, as in Envoy.
    Unsettable(FieldPath),
}

impl std::fmt::Display for PathVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathVariable::Field(path) | PathVariable::Unsettable(path) => path.fmt(f),
            PathVariable::Unknown(name) => f.write_str(name),
        }
    }
}

/// One HTTP method + path template bound to a gRPC method.
#[derive(Debug)]
pub struct HttpBinding {
    pub method: Arc<MethodInfo>,
    /// Upper case; one allocation shared by the bindings with the same method.
    pub http_method: Arc<str>,
    /// As written. Only the OpenAPI document reads it: empty in a worker's VM that does not
    /// serve it ([`Router::build_draining`]).
    pub template: Box<str>,
    /// What each template variable binds, by variable index.
    pub variables: Box<[PathVariable]>,
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
    /// Bindings that cannot transcode requests but that Envoy accepts (a path variable naming
    /// no field or a message, a rule without a pattern, a duplicate); logged by the filter at
    /// `warn` when it is configured. With `json2grpc.strict_config` each is an error instead.
    pub warnings: Vec<String>,
    pub methods: Vec<Arc<MethodInfo>>,
    /// Every HTTP method some binding uses, once each (CORS preflights ask which a path takes).
    http_methods: Vec<Arc<str>>,
    /// Every binding requests can reach, in registration order (what the OpenAPI document
    /// describes): duplicates, which bind neither, are left out.
    pub bindings: Vec<Arc<HttpBinding>>,
}

impl Router {
    pub fn build(config: &Config, schema: &Schema) -> Result<Router, ConfigError> {
        let mut building = Building::new(config);
        let found = find_services(&schema.services, &config.services);
        for (i, (service_name, found)) in config.services.iter().zip(found).enumerate() {
            let service = found.and_then(|s| schema.services.get(s)).ok_or_else(|| missing(i, service_name))?;
            for method in &service.methods {
                building.add_method(schema, (i, &service.full_name), method)?;
            }
        }
        Ok(building.finish())
    }

    /// [`Router::build`] for a filter: the schema's services are freed as they are read (their
    /// methods' options hold the `google.api.http` rules), so they and the router are not
    /// held at once: every worker's VM builds one, and its linear memory never shrinks. The
    /// bindings keep their templates' text only for the OpenAPI document.
    pub fn build_draining(config: &Config, schema: &mut Schema) -> Result<Router, ConfigError> {
        // (`&String`: the sort the live descriptor sources already use; one for `&str` would
        // add 9 KB of code.)
        let mut seen: Vec<&String> = config.services.iter().collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w.first() == w.get(1)) {
            // A service listed twice is bound twice (every binding ambiguous, as in Envoy).
            return Router::build(config, schema);
        }
        let mut services = std::mem::take(&mut schema.services);
        let found = find_services(&services, &config.services);
        let mut building = Building::new(config);
        building.templates = config.openapi.path.is_some();
        // Sized first: built last, the matcher's lists were at the linear memory's top, and
        // doubling there left each old half below the new one (the 2,000-method API: 64 KB).
        let rules = found.iter().flatten().filter_map(|&s| services.get(s)).flat_map(|s| &s.methods);
        building.builder.reserve(rules.map(|m| rule_count(m, config.auto_mapping)).sum());
        for (i, (service_name, found)) in config.services.iter().zip(found).enumerate() {
            let service = found.and_then(|s| services.get_mut(s)).ok_or_else(|| missing(i, service_name))?;
            for method in std::mem::take(&mut service.methods) {
                building.add_method(schema, (i, &service.full_name), &method)?;
            }
        }
        Ok(building.finish())
    }

    /// The HTTP methods bound to `path` (no query string), as a CORS preflight answer lists
    /// them; empty when no binding matches it.
    pub fn methods_for(&self, path: &str) -> Vec<&str> {
        // One walk of the trie, then the bindings' order.
        let found = self.matcher.methods_for(path);
        if found.is_empty() {
            return Vec::new();
        }
        self.http_methods.iter().filter(|m| found.binary_search(&&***m).is_ok()).map(|m| &**m).collect()
    }

    /// The binding for a request and its path variable values (index, decoded bytes).
    #[allow(clippy::type_complexity)]
    pub fn lookup(&self, http_method: &str, path: &str) -> Option<(Arc<HttpBinding>, Vec<(usize, Vec<u8>)>)> {
        let found = self.matcher.lookup(http_method, path)?;
        Some((found.value.clone(), found.bindings))
    }
}

/// A router being built, one method at a time.
struct Building<'c> {
    config: &'c Config,
    builder: PathMatcherBuilder<Arc<HttpBinding>>,
    warnings: Vec<String>,
    /// Warnings past [`MAX_WARNINGS`], counted.
    more_warnings: usize,
    methods: Vec<Arc<MethodInfo>>,
    /// Each upper-case HTTP method once, shared by its bindings (a custom pattern's kind is any
    /// text: a descriptor may hold thousands).
    http_methods: SeededSet<Arc<str>>,
    /// Bindings keep their template's text.
    templates: bool,
    /// The bound messages' field names, for the build only.
    fields: FieldIndex,
}

impl<'c> Building<'c> {
    fn new(config: &'c Config) -> Self {
        Building {
            config,
            builder: PathMatcherBuilder::new(),
            warnings: Vec::new(),
            more_warnings: 0,
            methods: Vec::new(),
            http_methods: HashSet::default(),
            templates: true,
            fields: FieldIndex::default(),
        }
    }

    /// A binding Envoy accepts but that cannot transcode: a warning, or with strict_config
    /// the config's error.
    fn problem(&mut self, e: ConfigError) -> Result<(), ConfigError> {
        if self.config.strict_config {
            return Err(ConfigError::new(e.field, format!("{} (json2grpc.strict_config)", e.message)));
        }
        if self.warnings.len() < MAX_WARNINGS {
            let mut line = e.message;
            // Names in it (a package, a custom method's kind) may be as long as the set.
            if let Some((end, _)) = line.char_indices().nth(MAX_WARNING_CHARS) {
                line.truncate(end);
                line.push('…');
            }
            self.warnings.push(line);
        } else {
            self.more_warnings += 1;
        }
        Ok(())
    }

    fn http_method(&mut self, name: &str) -> Arc<str> {
        let upper = name.to_ascii_uppercase();
        if let Some(known) = self.http_methods.get(upper.as_str()) {
            return known.clone();
        }
        let new: Arc<str> = upper.into();
        self.http_methods.insert(new.clone());
        new
    }

    /// Registers the bindings of `method`, of the service `name` at `config.services[i]`.
    /// Not inlined: both builds call it, and it is most of the router's code.
    #[inline(never)]
    fn add_method(&mut self, schema: &Schema, (i, service): (usize, &str), method: &Method) -> Result<(), ConfigError> {
        let field = format!("services[{i}]");
        let info = Arc::new(MethodInfo {
            full_name: format!("{service}.{}", method.name).into(),
            service_len: service.len(),
            input: method.input,
            output: method.output,
            client_streaming: method.client_streaming,
            server_streaming: method.server_streaming,
        });
        let err = |message: String| ConfigError::new(&field, format!("{}: {message}", info.full_name));
        let rule = http_rule(method).map_err(err)?;
        let rules = match rule {
            Some(rule) => flatten(rule),
            None if self.config.auto_mapping => vec![HttpRule {
                pattern: Some(crate::core::schema::descriptors::Pattern::Post(info.path())),
                body: "*".to_string(),
                ..Default::default()
            }],
            None => Vec::new(),
        };
        for rule in rules {
            let Some((http_method, template_text)) = rule.method_and_template() else {
                // Envoy registers nothing for it (its additional_bindings still count).
                self.problem(err(format!(
                    "a google.api.http rule without a pattern (body \"{}\") binds no request (as in Envoy)",
                    rule.body
                )))?;
                continue;
            };
            if http_method.is_empty() {
                // Envoy registers it under the empty method, which no request has.
                self.problem(err(format!(
                    "custom pattern \"{template_text}\" without a kind (HTTP method) binds no request (as in Envoy)"
                )))?;
                continue;
            }
            let parsed = template::parse(template_text).map_err(|e| err(e.to_string()))?;
            let shared = self.http_method(http_method);
            let (mut binding, issues) =
                bind(schema, &mut self.fields, &info, (http_method, shared), template_text, &parsed, &rule)
                    .map_err(err)?;
            if !self.templates {
                binding.template = Box::default();
            }
            for issue in issues {
                self.problem(err(issue))?;
            }
            let http_method = binding.http_method.clone();
            // A duplicate makes both unreachable: the matcher leaves them out of its values.
            if self.builder.register(&http_method, &parsed, Arc::new(binding)).is_err() {
                self.problem(err(format!(
                    "{http_method} {template_text} is bound more than once; requests to it are not transcoded \
                     (as in Envoy)"
                )))?;
            }
        }
        self.methods.push(info);
        Ok(())
    }

    fn finish(mut self) -> Router {
        // The bound messages' names are no longer needed: freed before the matcher is built.
        self.fields = FieldIndex::default();
        if self.more_warnings > 0 {
            self.warnings.push(format!(
                "and {} more problems like the above (json2grpc.strict_config refuses the first)",
                self.more_warnings
            ));
        }
        let matcher = self.builder.build(MatcherOptions {
            url_unescape_spec: self.config.url_unescape_spec,
            match_unregistered_custom_verb: self.config.match_unregistered_custom_verb,
        });
        // Counted first (the list is the last thing built: doubling it raised the linear
        // memory's top).
        let mut bindings: Vec<Arc<HttpBinding>> = Vec::with_capacity(matcher.values().count());
        bindings.extend(matcher.values().cloned());
        let mut http_methods: Vec<Arc<str>> = Vec::new();
        let mut seen: SeededSet<&str> = SeededSet::default();
        for b in &bindings {
            if seen.insert(&b.http_method) {
                http_methods.push(b.http_method.clone());
            }
        }
        let mut methods = self.methods;
        methods.shrink_to_fit();
        Router { matcher, warnings: self.warnings, methods, http_methods, bindings }
    }
}

/// The index in `services` of each of `names` (the first service of a name, as a scan would
/// find), by hash: a configuration may list thousands. (Not by sorting: that adds 7 KB of code.)
fn find_services(services: &[Service], names: &[String]) -> Vec<Option<usize>> {
    let mut by_name: SeededMap<&str, usize> = SeededMap::default();
    for (i, s) in services.iter().enumerate() {
        by_name.entry(&s.full_name).or_insert(i);
    }
    names.iter().map(|n| by_name.get(n.as_str()).copied()).collect()
}

fn missing(i: usize, name: &str) -> ConfigError {
    ConfigError::new(format!("services[{i}]"), format!("service \"{name}\" is not in proto_descriptor_bin"))
}

/// How many templates `method` registers (at most: a rule may have no pattern).
fn rule_count(method: &Method, auto_mapping: bool) -> usize {
    fn count(rule: &HttpRule) -> usize {
        1 + rule.additional_bindings.iter().map(count).sum::<usize>()
    }
    match http_rule(method) {
        Ok(Some(rule)) => count(&rule),
        Ok(None) => usize::from(auto_mapping),
        Err(_) => 0,
    }
}

/// The rule and its `additional_bindings`, depth first. The spec allows one level; Envoy
/// registers nested ones too (at most 100 levels deep: the descriptor reader's limit).
fn flatten(rule: HttpRule) -> Vec<HttpRule> {
    let mut rules = Vec::new();
    let mut stack = vec![rule];
    while let Some(mut rule) = stack.pop() {
        let additional = std::mem::take(&mut rule.additional_bindings);
        rules.push(rule);
        stack.extend(additional.into_iter().rev());
    }
    rules
}

/// What is wrong with one binding, at most this many lines (then a count).
const MAX_ISSUES: usize = 4;
/// Warnings kept (and logged) per configuration, at most (then a count): each names its
/// binding, and a descriptor set may hold thousands of bindings Envoy accepts that cannot
/// transcode.
const MAX_WARNINGS: usize = 100;
/// A template is quoted in warnings up to this many characters.
const SHOWN_TEMPLATE_CHARS: usize = 200;
/// A warning is kept up to this many characters.
const MAX_WARNING_CHARS: usize = 1024;

/// The binding of one rule, and what is wrong with it that Envoy accepts (one line each).
/// `http_method`: as the rule gives it (for messages), and upper case (shared).
fn bind(
    schema: &Schema,
    fields: &mut FieldIndex,
    info: &Arc<MethodInfo>,
    (http_method, upper): (&str, Arc<str>),
    template_text: &str,
    parsed: &template::PathTemplate,
    rule: &HttpRule,
) -> Result<(HttpBinding, Vec<String>), String> {
    let shown = template_text.char_indices().nth(SHOWN_TEMPLATE_CHARS).and_then(|(end, _)| template_text.get(..end));
    let context = |e: String| match shown {
        Some(start) => format!("{http_method} \"{start}…\": {e}"),
        None => format!("{http_method} \"{template_text}\": {e}"),
    };
    let mut issues = Vec::new();
    // Written out up to MAX_ISSUES, then counted: a template may name a missing field
    // thousands of times (`/{x}/{x}/…`), and each line names the template.
    let mut more = 0usize;
    let mut issue = |line: &dyn Fn() -> String| {
        if issues.len() < MAX_ISSUES {
            issues.push(context(line()));
        } else {
            more += 1;
        }
    };
    let mut variables = Vec::with_capacity(parsed.variables.len());
    for variable in &parsed.variables {
        let name = variable.field_path_string();
        // Envoy resolves variables by proto or JSON name, through repeated message fields too.
        let variable = match FieldPath::resolve_indexed(schema, fields, info.input, &name, Names::ProtoOrJson, true) {
            Err(e) => {
                issue(&|| {
                    format!(
                        "path variable \"{name}\": {e}; requests are passed through untranscoded, as a query \
                         parameter naming no field (as in Envoy)"
                    )
                });
                PathVariable::Unknown(name)
            }
            Ok(path) => match url_settable(schema, &path) {
                Ok(()) => PathVariable::Field(path),
                Err(why) => {
                    issue(&|| {
                        format!(
                            "path variable \"{path}\" is {why}, which a URL value cannot set; requests are \
                             refused with 400 (as in Envoy)"
                        )
                    });
                    PathVariable::Unsettable(path)
                }
            },
        };
        variables.push(variable);
    }
    if more > 0 {
        issues.push(context(format!("{more} more path variables like the above")));
    }
    let (body, body_is_http_body) = match rule.body.as_str() {
        "" => (BodyRule::None, false),
        "*" => (BodyRule::Whole, schema.message_name(info.input) == HTTP_BODY),
        field => {
            let path = FieldPath::resolve_indexed(schema, fields, info.input, field, Names::ProtoOrJson, true)
                .map_err(|e| context(format!("body: {e}")))?;
            let is_http_body =
                matches!(path.leaf().map(|f| f.kind()), Some(Kind::Message(m)) if schema.message_name(m) == HTTP_BODY);
            (BodyRule::Field(path), is_http_body)
        }
    };
    let response_body = match rule.response_body.as_str() {
        "" => None,
        field => Some(
            FieldPath::resolve_indexed(schema, fields, info.output, field, Names::Proto, false)
                .map_err(|e| context(format!("response_body: {e}")))?,
        ),
    };
    let binding = HttpBinding {
        method: info.clone(),
        http_method: upper,
        template: template_text.into(),
        variables: variables.into(),
        body,
        response_body,
        body_is_http_body,
    };
    Ok((binding, issues))
}

/// Whether URL values can set the field at `path`: scalars, enums, lists of them and the
/// well-known types with a string form; not other messages, nor maps (a map entry needs a key).
pub fn url_settable(schema: &Schema, path: &FieldPath) -> Result<(), String> {
    let Some(leaf) = path.leaf() else { return Err("an empty field path".to_string()) };
    if leaf.map() {
        return Err("a map field".to_string());
    }
    match leaf.kind() {
        Kind::Message(m) if !bindable_message(schema.message_name(m)) => {
            Err(format!("a {} message field", schema.message_name(m)))
        }
        _ => Ok(()),
    }
}

/// Message types a URL value can set (their JSON form is a string or a scalar).
pub fn bindable_message(full_name: &str) -> bool {
    matches!(
        well_known(full_name),
        Some(
            WellKnown::Timestamp
                | WellKnown::Duration
                | WellKnown::FieldMask
                | WellKnown::Value
                | WellKnown::Wrapper(_)
        )
    )
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::schema::descriptors::load_schema;
    use crate::testing::fixtures::TEST_DESCRIPTOR_SET;

    fn config(services: &[&str], auto_mapping: bool) -> Config {
        Config { services: services.iter().map(|s| s.to_string()).collect(), auto_mapping, ..Default::default() }
    }

    fn router(services: &[&str], auto_mapping: bool) -> Router {
        Router::build(&config(services, auto_mapping), &load_schema(TEST_DESCRIPTOR_SET).unwrap()).unwrap()
    }

    fn serving_openapi(mut config: Config) -> Config {
        config.openapi.path = Some("/openapi.json".into());
        config
    }

    fn clone_info(m: &MethodInfo) -> MethodInfo {
        MethodInfo {
            full_name: m.full_name.clone(),
            service_len: m.service_len,
            input: m.input,
            output: m.output,
            client_streaming: m.client_streaming,
            server_streaming: m.server_streaming,
        }
    }

    fn target(r: &Router, method: &str, path: &str) -> Option<String> {
        r.lookup(method, path).map(|(b, _)| b.method.path().trim_start_matches('/').to_string())
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
    fn methods_for_a_path_are_every_method_bound_to_it() {
        let r = router(&["test.v1.Things"], false);
        // GET /v1/things/{id}, POST /v1/things/{id} (CreateWithId), PATCH, DELETE.
        assert_eq!(r.methods_for("/v1/things/7"), ["GET", "POST", "PATCH", "DELETE"]);
        assert_eq!(r.methods_for("/v1/things/7:reserve"), ["POST"]);
        assert_eq!(r.methods_for("/v1/custom/7"), ["HEAD"]);
        assert!(r.methods_for("/nowhere").is_empty());
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

    fn rule(pattern: Option<crate::core::schema::descriptors::Pattern>, body: &str, response_body: &str) -> HttpRule {
        HttpRule { pattern, body: body.into(), response_body: response_body.into(), ..Default::default() }
    }

    fn get(template_text: &str) -> Option<crate::core::schema::descriptors::Pattern> {
        Some(crate::core::schema::descriptors::Pattern::Get(template_text.into()))
    }

    fn build_with(rule: &HttpRule, strict: bool) -> Result<Router, ConfigError> {
        let schema = load_schema(&with_rule_on_query(rule.encode_to_vec())).unwrap();
        Router::build(&Config { strict_config: strict, ..config(&["test.v1.Things"], false) }, &schema)
    }

    #[test]
    fn rules_envoy_refuses_are_config_errors() {
        // What the native filter refuses too (`envoy --mode validate` fails).
        let cases = [
            (get("/v1/{id"), "", "", "invalid path template"),
            (get("v1/x"), "", "", "must start with '/'"),
            (get(""), "", "", "must start with '/'"),
            (get("/v1/x"), "nope", "", "body: no field"),
            (get("/v1/x"), "", "nope", "response_body: no field"),
        ];
        for (pattern, body, response_body, expected) in cases {
            for strict in [false, true] {
                let e = build_with(&rule(pattern.clone(), body, response_body), strict).err().unwrap();
                assert_eq!(e.field, "services[0]");
                assert!(e.message.contains("test.v1.Things.Query"), "{e}");
                assert!(e.message.contains(expected), "{pattern:?} {body} {response_body}: {e}");
            }
        }
    }

    #[test]
    fn bindings_envoy_accepts_but_cannot_transcode_are_warnings_or_strict_errors() {
        use crate::core::schema::descriptors::{CustomHttpPattern, Pattern};
        let custom = |kind: &str| Some(Pattern::Custom(CustomHttpPattern { kind: kind.into(), path: "/v1/c".into() }));
        let cases = [
            (rule(get("/v1/x/{nope}"), "", ""), "path variable \"nope\": no field \"nope\""),
            (rule(get("/v1/x/{nested.nope}"), "", ""), "no field \"nope\" in test.v1.Nested"),
            (rule(get("/v1/x/{nested}"), "", ""), "is a test.v1.Nested message field"),
            (rule(get("/v1/x/{labels}"), "", ""), "is a map field"),
            (rule(get("/v1/x/{items}"), "", ""), "is a test.v1.Nested message field"),
            (rule(None, "*", ""), "rule without a pattern"),
            (rule(custom(""), "", ""), "without a kind"),
            (rule(get("/v1/things/{id}"), "", ""), "bound more than once"),
        ];
        for (rule, expected) in cases {
            let r = build_with(&rule, false).unwrap();
            assert_eq!(r.warnings.len(), 1, "{rule:?}: {:?}", r.warnings);
            assert!(r.warnings[0].contains("test.v1.Things.Query"), "{}", r.warnings[0]);
            assert!(r.warnings[0].contains(expected), "{rule:?}: {}", r.warnings[0]);
            let e = build_with(&rule, true).err().unwrap();
            assert_eq!(e.field, "services[0]");
            assert!(e.message.contains(expected) && e.message.contains("strict_config"), "{rule:?}: {e}");
        }
    }

    #[test]
    fn warnings_are_bounded_whatever_the_bindings_and_templates() {
        // A template naming a missing field 2,000 times: each warning quoted the template
        // (2,000 × 14 KB kept for the VM's life); a few lines and a count now.
        let long = format!("/v1/x{}", "/{nope}".repeat(2000));
        let r = build_with(&rule(get(&long), "", ""), false).unwrap();
        assert_eq!(r.warnings.len(), MAX_ISSUES + 1, "{:?}", r.warnings);
        assert!(r.warnings.iter().map(String::len).sum::<usize>() < 4_000, "{:?}", r.warnings);
        assert!(r.warnings[MAX_ISSUES].ends_with(&format!("{} more path variables like the above", 2000 - MAX_ISSUES)));
        assert!(r.warnings[0].contains("GET \"/v1/x/{nope}/{nope}") && r.warnings[0].contains("…\": path variable"));
        // 300 bindings with a problem each: MAX_WARNINGS of them, then a count.
        let mut many = rule(get("/v1/y/{nope}"), "", "");
        many.additional_bindings = (0..299).map(|i| rule(get(&format!("/v1/y{i}/{{nope}}")), "", "")).collect();
        let r = build_with(&many, false).unwrap();
        assert_eq!(r.warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(
            r.warnings.last().map(String::as_str),
            Some("and 200 more problems like the above (json2grpc.strict_config refuses the first)")
        );
        let e = build_with(&many, true).err().unwrap();
        assert!(e.message.contains("/v1/y/{nope}") && e.message.contains("strict_config"), "{e}");
        // A custom method's kind (or a package) as long as the set: each line cut.
        use crate::core::schema::descriptors::{CustomHttpPattern, Pattern};
        let kind = "K".repeat(100_000);
        let custom = Some(Pattern::Custom(CustomHttpPattern { kind: kind.clone(), path: "/v1/c/{nope}".into() }));
        let r = build_with(&rule(custom, "", ""), false).unwrap();
        assert!(r.warnings.len() == 1 && r.warnings[0].chars().count() == MAX_WARNING_CHARS + 1, "{:?}", r.warnings);
    }

    #[test]
    fn bindings_that_cannot_transcode_keep_their_routes() {
        // Envoy registers them: a request to one is matched (then refused or passed through by
        // the request translator), not routed elsewhere.
        for template_text in ["/v1/x/{nope}", "/v1/x/{nested}"] {
            let r = build_with(&rule(get(template_text), "", ""), false).unwrap();
            let (b, _) = r.lookup("GET", "/v1/x/1").unwrap();
            assert!(matches!(b.variables[0], PathVariable::Unknown(_) | PathVariable::Unsettable(_)), "{b:?}");
        }
        // A rule without a pattern registers nothing, but its additional bindings do.
        let mut r = rule(None, "*", "");
        r.additional_bindings.push(rule(
            Some(crate::core::schema::descriptors::Pattern::Post("/v1/np".into())),
            "*",
            "",
        ));
        let router = build_with(&r, false).unwrap();
        assert_eq!(target(&router, "POST", "/v1/np").as_deref(), Some("test.v1.Things/Query"));
    }

    #[test]
    fn variables_and_body_resolve_json_names_and_repeated_parents() {
        // As Envoy: `{customName}` is `renamed`; `items.name` goes into a new element.
        let r = build_with(&rule(get("/v1/x/{customName}/{items.name}/{tags}/{x}/{x}"), "", ""), true);
        assert!(r.is_err(), "no field x");
        let r = build_with(&rule(get("/v1/x/{customName}/{items.name}/{tags}/{id}/{id}"), "items.child", ""), true)
            .unwrap();
        let (b, _) = r.lookup("GET", "/v1/x/a/b/c/d/e").unwrap();
        let names: Vec<String> = b.variables.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["renamed", "items.name", "tags", "id", "id"]);
        assert!(matches!(&b.body, BodyRule::Field(p) if p.to_string() == "items.child"));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn nested_additional_bindings_are_registered_as_envoy_does() {
        let mut inner = rule(get("/v1/nested-2"), "", "");
        inner.additional_bindings.push(rule(get("/v1/nested-3"), "", ""));
        let mut r = rule(get("/v1/nested-1"), "", "");
        r.additional_bindings.push(inner);
        let router = build_with(&r, true).unwrap();
        for path in ["/v1/nested-1", "/v1/nested-2", "/v1/nested-3"] {
            assert_eq!(target(&router, "GET", path).as_deref(), Some("test.v1.Things/Query"), "{path}");
        }
    }

    #[test]
    fn duplicate_bindings_are_reported_and_not_routed() {
        let rule = HttpRule {
            pattern: Some(crate::core::schema::descriptors::Pattern::Get("/v1/things/{id}".into())),
            ..Default::default()
        };
        let set = with_rule_on_query(rule.encode_to_vec());
        let r = Router::build(&config(&["test.v1.Things"], false), &load_schema(&set).unwrap()).unwrap();
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("/v1/things/{id}"));
        assert_eq!(target(&r, "GET", "/v1/things/1"), None);
        // Neither is described (OpenAPI), and the filter's build agrees.
        let described = |r: &Router| r.bindings.iter().map(|b| format!("{} {}", b.http_method, b.template)).collect();
        let listed: Vec<String> = described(&r);
        assert!(!listed.iter().any(|b| b == "GET /v1/things/{id}"), "{listed:?}");
        assert!(listed.contains(&"POST /v1/things".to_string()), "{listed:?}");
        let mut schema = load_schema(&set).unwrap();
        let drained =
            Router::build_draining(&serving_openapi(config(&["test.v1.Things"], false)), &mut schema).unwrap();
        assert_eq!(described(&drained), listed);
        assert_eq!(drained.warnings, r.warnings);
    }

    #[test]
    fn the_filter_build_frees_the_services_and_routes_the_same() {
        for services in [&["test.v1.Things", "test.v1.Other"][..], &["test.v1.Other", "test.v1.Things"]] {
            let config = serving_openapi(config(services, true));
            let mut schema = load_schema(TEST_DESCRIPTOR_SET).unwrap();
            let expected = Router::build(&config, &schema).unwrap();
            let drained = Router::build_draining(&config, &mut schema).unwrap();
            assert!(schema.services.is_empty(), "freed");
            let names = |r: &Router| r.methods.iter().map(|m| m.full_name.to_string()).collect::<Vec<_>>();
            assert_eq!(names(&drained), names(&expected));
            assert_eq!(drained.bindings.len(), expected.bindings.len());
            for (a, b) in drained.bindings.iter().zip(&expected.bindings) {
                assert_eq!(
                    (&a.http_method, &a.template, &a.method.full_name),
                    (&b.http_method, &b.template, &b.method.full_name)
                );
            }
            assert_eq!(target(&drained, "GET", "/v1/things/7").as_deref(), Some("test.v1.Things/Get"));
            // Without the OpenAPI document, nothing reads a template's text: not kept.
            let mut config = config;
            config.openapi.path = None;
            let mut schema = load_schema(TEST_DESCRIPTOR_SET).unwrap();
            let lean = Router::build_draining(&config, &mut schema).unwrap();
            assert!(lean.bindings.iter().all(|b| b.template.is_empty()));
            assert_eq!(lean.bindings.len(), expected.bindings.len());
            assert_eq!(target(&lean, "GET", "/v1/things/7").as_deref(), Some("test.v1.Things/Get"));
        }
        // A service listed twice binds everything twice: nothing is routed, as in Envoy.
        let config = config(&["test.v1.Things", "test.v1.Things"], false);
        let mut schema = load_schema(TEST_DESCRIPTOR_SET).unwrap();
        let twice = Router::build_draining(&config, &mut schema).unwrap();
        assert_eq!(target(&twice, "GET", "/v1/things/7"), None);
        assert!(twice.bindings.is_empty(), "{}", twice.bindings.len());
        assert_eq!(twice.warnings.len(), Router::build(&config, &schema).unwrap().warnings.len());
    }

    #[test]
    fn a_method_s_service_name_and_path_come_from_its_full_name() {
        let r = router(&["test.v1.Things"], false);
        let (b, _) = r.lookup("POST", "/v1/things").unwrap();
        assert_eq!((b.method.service(), b.method.name()), ("test.v1.Things", "Create"));
        assert_eq!(b.method.path(), "/test.v1.Things/Create");
        // A name with a dot (no protoc writes one; a hand-made set can): split where it was joined.
        let dotted = MethodInfo { full_name: "p.S.a.b".into(), service_len: 3, ..clone_info(&b.method) };
        assert_eq!((dotted.service(), dotted.name(), dotted.path()), ("p.S", "a.b", "/p.S/a.b".to_string()));
    }

    /// The test descriptor set with `Things.Query`'s options replaced by one google.api.http
    /// rule, rewritten at the wire level.
    fn with_rule_on_query(rule: Vec<u8>) -> Vec<u8> {
        use crate::core::codec::wire::{fields, write_varint};
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
        fn encoded_len(buf: &[u8], raw: &crate::core::codec::wire::RawField<'_>) -> usize {
            let value_start = raw.value.as_ptr() as usize - buf.as_ptr() as usize;
            value_start + raw.value.len()
        }
        let name_is = |msg: &[u8], name: &str| {
            fields(msg).any(|f| f.map(|f| f.number == 1 && f.value == name.as_bytes()).unwrap_or(false))
        };
        let mut options = Vec::new();
        field(crate::core::schema::descriptors::HTTP_RULE_EXTENSION, &rule, &mut options);
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
