//! A path template as an OpenAPI path and its path parameters.
//!
//! OpenAPI path parameters are single segments, so a variable over several segments is spread
//! over the path: `/v1/{name=shelves/*/books/*}` is `/v1/shelves/{name_1}/books/{name_2}` (the
//! field gets `shelves/…/books/…`, the matched text), `{name=shelves/*}` is `shelves/{name}`. A
//! `**` is one parameter marked `x-json2grpc-multi-segment`: it may hold `/`, but clients encode
//! it as `%2F`, which the field receives as is unless `url_unescape_spec` is `ALL_CHARACTERS`
//! (and the zero-segment match cannot be described). A custom verb is a literal `:verb` suffix.
//!
//! Parameter names are the field paths with `_` for `.` (`{order.order_id}` is
//! `{order_order_id}`): RFC 6570 allows dots, but tools that fill paths with Python's
//! `str.format` (schemathesis) read `{a.b}` as an attribute. `x-json2grpc-field` names the field.
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::json::{put, set, string, text};

use super::schemas::Schemas;
use super::url;
use crate::core::route::router::PathVariable;
use crate::core::route::template::{self, Segment};
use crate::core::schema::{Kind, Scalar};

/// One path parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct PathParam {
    pub name: String,
    /// The field a whole `{field}` variable sets (not a segment of a longer one).
    pub sets: Option<String>,
    /// The parameter object (`in: path`) without its name.
    pub object: Map<String, Value>,
}

/// The OpenAPI path of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenApiPath {
    pub path: String,
    pub params: Vec<PathParam>,
}

impl OpenApiPath {
    /// The path with every parameter as `{}`: paths with the same shape are one path to OpenAPI.
    pub fn shape(&self) -> String {
        let mut shape = String::with_capacity(self.path.len());
        let mut depth = 0usize;
        for c in self.path.chars() {
            match c {
                '{' => {
                    depth += 1;
                    shape.push_str("{}");
                }
                '}' => depth = depth.saturating_sub(1),
                _ if depth > 0 => {}
                _ => shape.push(c),
            }
        }
        shape
    }

    /// Renames the parameters (in path order) to `names`, keeping what they set: a path of the
    /// same shape as another is written with that one's names. The path is written anew, so
    /// names that swap places stay right.
    pub fn rename(&mut self, names: &[String]) {
        let mut path = String::with_capacity(self.path.len());
        let mut placeholders = 0usize;
        let mut inside = false;
        for c in self.path.chars() {
            match c {
                '{' => {
                    inside = true;
                    let name = names.get(placeholders).or(self.params.get(placeholders).map(|p| &p.name));
                    path.push('{');
                    path.push_str(name.map_or("", String::as_str));
                    path.push('}');
                    placeholders += 1;
                }
                '}' => inside = false,
                _ if inside => {}
                _ => path.push(c),
            }
        }
        self.path = path;
        for (param, name) in self.params.iter_mut().zip(names) {
            param.name.clone_from(name);
        }
    }
}

/// The path of `template` (already accepted by the router); `variables` are the binding's.
/// `Err` for a template no request can use as OpenAPI describes it.
pub fn describe(
    template_text: &str,
    variables: &[PathVariable],
    schemas: &mut Schemas<'_>,
) -> Result<OpenApiPath, String> {
    let template = template::parse(template_text).map_err(|e| e.to_string())?;
    let total = template.segments.len();
    // The first variable starting at each segment, found in one pass (a template may hold
    // thousands of variables).
    let mut starts: Vec<Option<usize>> = vec![None; total];
    for (index, v) in template.variables.iter().enumerate() {
        if let Some(slot @ None) = starts.get_mut(v.start) {
            *slot = Some(index);
        }
    }
    let mut path = String::new();
    let mut params: Vec<PathParam> = Vec::new();
    let mut names = Names::default();
    let mut named = Named(0);
    let mut anonymous = 0usize;
    let mut i = 0usize;
    while let Some(segment) = template.segments.get(i) {
        path.push('/');
        let found = starts.get(i).copied().flatten().and_then(|index| Some((index, template.variables.get(index)?)));
        let Some((index, variable)) = found else {
            match segment {
                Segment::Literal(text) => path.push_str(text),
                wildcard => {
                    anonymous += 1;
                    let name = names.unique(&format!("_{anonymous}"));
                    let what = "a path segment that sets no field";
                    path.push_str(&format!("{{{name}}}"));
                    named.add(&params, name.len())?;
                    params.push(segment_param(name, *wildcard == Segment::DoubleWildcard, what, None));
                }
            }
            i += 1;
            continue;
        };
        let field = variables.get(index).map(ToString::to_string).unwrap_or_else(|| variable.field_path_string());
        let base = field.replace('.', "_");
        let end = variable.end.unwrap_or(total.saturating_sub(variable.tail)).max(i + 1);
        let covered = template.segments.get(i..end).unwrap_or_default();
        if let [Segment::Wildcard] = covered {
            let name = names.unique(&base);
            path.push_str(&format!("{{{name}}}"));
            named.add(&params, name.len() + field.len())?;
            params.push(variable_param(name, &field, variables.get(index), schemas));
            i = end;
            continue;
        }
        // A variable over several segments: literals stay, each wildcard is a parameter.
        let mut sub = covered
            .iter()
            .map(|s| match s {
                Segment::Literal(t) => t.as_str(),
                Segment::Wildcard => "*",
                Segment::DoubleWildcard => "**",
            })
            .collect::<Vec<_>>()
            .join("/");
        // Quoted in each of its parameters: shortened, or a variable of thousands of segments
        // would write its text thousands of times.
        if let Some((end, _)) = sub.char_indices().nth(SHOWN_CHARS) {
            sub.truncate(end);
            sub.push('…');
        }
        let wildcards = covered.iter().filter(|s| !matches!(s, Segment::Literal(_))).count();
        let mut n = 0usize;
        for (k, s) in covered.iter().enumerate() {
            if k > 0 {
                path.push('/');
            }
            match s {
                Segment::Literal(text) => path.push_str(text),
                wildcard => {
                    n += 1;
                    let preferred = if wildcards == 1 { base.clone() } else { format!("{base}_{n}") };
                    let name = names.unique(&preferred);
                    path.push_str(&format!("{{{name}}}"));
                    named.add(&params, name.len() + 2 * field.len())?;
                    let what = format!("a segment of `{{{field}={sub}}}`: the field `{field}` gets the matched text");
                    params.push(segment_param(name, *wildcard == Segment::DoubleWildcard, &what, Some(&field)));
                }
            }
        }
        i = end;
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(verb) = &template.verb {
        path.push(':');
        path.push_str(verb);
    }
    Ok(OpenApiPath { path, params })
}

/// A multi-segment variable's text is quoted in its parameters up to this many characters.
const SHOWN_CHARS: usize = 200;
/// A path with more parameters, or more bytes of their names and fields, is not described
/// (listed among the unexpressed bindings): each of a variable's segments repeats its field's
/// name, so a long name over many segments grew as their product.
pub const MAX_PARAMETERS: usize = 64;
pub const MAX_PARAMETER_BYTES: usize = 64 * 1024;

/// The bytes of a path's parameter names and fields so far.
struct Named(usize);

impl Named {
    /// Counts a parameter about to be added after `params`, or `Err` past the bounds.
    fn add(&mut self, params: &[PathParam], bytes: usize) -> Result<(), String> {
        self.0 = self.0.saturating_add(bytes);
        if params.len() >= MAX_PARAMETERS || self.0 > MAX_PARAMETER_BYTES {
            return Err(format!(
                "more than {MAX_PARAMETERS} path parameters or {MAX_PARAMETER_BYTES} bytes of their names and fields"
            ));
        }
        Ok(())
    }
}

/// The path's parameter names so far, and the number to try next after each name: a
/// template may repeat a variable thousands of times, and trying `x_2`, `x_3`… against every
/// parameter was cubic in them.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
    next: HashMap<String, usize>,
}

impl Names {
    /// `preferred`, or with the lowest number from 2 appended that no parameter has.
    fn unique(&mut self, preferred: &str) -> String {
        if self.taken.insert(preferred.to_string()) {
            return preferred.to_string();
        }
        // Names are only added: every number below the one kept for a name is taken.
        let n = self.next.entry(preferred.to_string()).or_insert(2);
        loop {
            let name = format!("{preferred}_{n}");
            *n += 1;
            if self.taken.insert(name.clone()) {
                return name;
            }
        }
    }
}

/// A `{field}` variable: the field's URL value.
fn variable_param(name: String, field: &str, variable: Option<&PathVariable>, schemas: &mut Schemas<'_>) -> PathParam {
    let leaf = match variable {
        Some(PathVariable::Field(path)) => path.leaf().cloned(),
        _ => None,
    };
    let mut schema = match &leaf {
        Some(f) => url::value(schemas, f.kind()).unwrap_or_else(string_schema),
        None => string_schema(),
    };
    // An empty segment is no segment: `/v1/items/` is `/v1/items`.
    if let Some(Kind::Scalar(Scalar::String | Scalar::Bytes)) = leaf.as_ref().map(|f| f.kind()) {
        set(&mut schema, "minLength", Value::from(1));
    }
    let mut object = Map::new();
    put(&mut object, "in", string("path"));
    put(&mut object, "required", Value::Bool(true));
    put(&mut object, "schema", schema);
    if leaf.is_none() {
        // Names no field, dropped (ignore_unknown_query_parameters).
        let what = format!("Any segment: `{field}` names no field, and its value is dropped");
        put(&mut object, "description", Value::String(what));
        return PathParam { name, sets: None, object };
    }
    put(&mut object, "x-json2grpc-field", string(field));
    PathParam { name, sets: Some(field.to_string()), object }
}

/// A wildcard segment (of a variable's sub-template, or of none).
fn segment_param(name: String, multi: bool, what: &str, field: Option<&str>) -> PathParam {
    let mut object = Map::new();
    put(&mut object, "in", string("path"));
    put(&mut object, "required", Value::Bool(true));
    put(&mut object, "schema", text(r#"{"type": "string", "minLength": 1}"#));
    let mut description = format!("Matches {what}.");
    if multi {
        description.push_str(
            " `**`: any number of segments (at least one here). A `/` sent percent-encoded as `%2F` reaches \
             the field encoded unless url_unescape_spec is ALL_CHARACTERS.",
        );
        put(&mut object, "x-json2grpc-multi-segment", Value::Bool(true));
    }
    put(&mut object, "description", Value::String(description));
    if let Some(field) = field {
        put(&mut object, "x-json2grpc-field", string(field));
    }
    PathParam { name, sets: None, object }
}

/// A string: what any URL value is.
fn string_schema() -> Value {
    text(r#"{"type": "string"}"#)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::openapi::docs::Docs;
    use crate::core::openapi::schemas::Style;
    use crate::core::route::field_path::{FieldPath, Names};
    use crate::testing::fixtures::schema;
    use serde_json::json;

    /// The path and parameter names of `template` on test.v1.PathRequest / GetRequest fields.
    fn path(template: &str, request: &str) -> (String, Vec<String>, Vec<Value>) {
        let schema = schema();
        let docs = Docs::default();
        let mut schemas = Schemas::new(&schema, &docs, Style::default());
        let root = schema.message_index(request).unwrap();
        let parsed = template::parse(template).unwrap();
        let variables: Vec<PathVariable> = parsed
            .variables
            .iter()
            .map(|v| {
                let name = v.field_path_string();
                match FieldPath::resolve(&schema, root, &name, Names::Proto) {
                    Ok(p) => PathVariable::Field(p),
                    Err(_) => PathVariable::Unknown(name),
                }
            })
            .collect();
        let p = describe(template, &variables, &mut schemas).unwrap();
        let names = p.params.iter().map(|p| p.name.clone()).collect();
        let objects = p.params.iter().map(|p| Value::Object(p.object.clone())).collect();
        (p.path, names, objects)
    }

    #[test]
    fn single_segment_variables_are_parameters_named_by_their_field() {
        let (p, names, objects) = path("/v1/things/{id}", "test.v1.GetRequest");
        assert_eq!((p.as_str(), names), ("/v1/things/{id}", vec!["id".to_string()]));
        assert_eq!(objects[0]["schema"], json!({"type": "string", "minLength": 1}));
        assert_eq!(objects[0]["required"], true);
        let (p, names, objects) = path("/v1/nested/{nested.name}/things/{id}", "test.v1.GetRequest");
        assert_eq!(p, "/v1/nested/{nested_name}/things/{id}");
        assert_eq!(names, ["nested_name", "id"]);
        assert_eq!(objects[0]["x-json2grpc-field"], "nested.name");
        // A typed field: its URL form; `{x=*}` is `{x}`.
        let (p, _, objects) = path("/v1/size/{page_size=*}", "test.v1.GetRequest");
        assert_eq!(p, "/v1/size/{page_size}");
        assert_eq!(objects[0]["schema"]["type"], "integer");
    }

    #[test]
    fn verbs_are_literal_suffixes() {
        assert_eq!(path("/v1/things/{id}:reserve", "test.v1.GetRequest").0, "/v1/things/{id}:reserve");
        assert_eq!(path("/v1/things:batch", "test.v1.GetRequest").0, "/v1/things:batch");
        assert_eq!(path("/", "test.v1.GetRequest").0, "/");
    }

    #[test]
    fn multi_segment_variables_are_spread_over_the_path() {
        let (p, names, objects) = path("/v1/{name=shelves/*/books/*}", "test.v1.PathRequest");
        assert_eq!(p, "/v1/shelves/{name_1}/books/{name_2}");
        assert_eq!(names, ["name_1", "name_2"]);
        assert_eq!(objects[1]["x-json2grpc-field"], "name");
        assert!(objects[1]["description"].as_str().unwrap().contains("`{name=shelves/*/books/*}`"));
        let (p, names, _) = path("/v1/{name=shelves/*}/x", "test.v1.PathRequest");
        assert_eq!((p.as_str(), names), ("/v1/shelves/{name}/x", vec!["name".to_string()]));
        let (p, names, objects) = path("/v2/files/{rest=**}:get", "test.v1.PathRequest");
        assert_eq!((p.as_str(), names), ("/v2/files/{rest}:get", vec!["rest".to_string()]));
        assert_eq!(objects[0]["x-json2grpc-multi-segment"], true);
        let (p, _, _) = path("/v2/{rest=files/**}/tail", "test.v1.PathRequest");
        assert_eq!(p, "/v2/files/{rest}/tail");
    }

    #[test]
    fn bare_wildcards_and_repeated_names_get_names_of_their_own() {
        let (p, names, objects) = path("/v1/*/{name}/**", "test.v1.PathRequest");
        assert_eq!(p, "/v1/{_1}/{name}/{_2}");
        assert_eq!(names, ["_1", "name", "_2"]);
        assert!(objects[0].get("x-json2grpc-field").is_none());
        let (p, names, _) = path("/v1/{name}/{name}", "test.v1.PathRequest");
        assert_eq!((p.as_str(), names), ("/v1/{name}/{name_2}", vec!["name".to_string(), "name_2".to_string()]));
    }

    #[test]
    fn shapes_and_renames() {
        let schema = schema();
        let docs = Docs::default();
        let mut schemas = Schemas::new(&schema, &docs, Style::default());
        let root = schema.message_index("test.v1.PathRequest").unwrap();
        let field = |name: &str| PathVariable::Field(FieldPath::resolve(&schema, root, name, Names::Proto).unwrap());
        let mut p = describe("/v1/{name}/x/{other}:v", &[field("name"), field("other")], &mut schemas).unwrap();
        assert_eq!(p.shape(), "/v1/{}/x/{}:v");
        p.rename(&["c".into(), "d".into()]);
        assert_eq!(p.path, "/v1/{c}/x/{d}:v");
        assert_eq!(p.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["c", "d"]);
        assert_eq!(p.params[0].object["x-json2grpc-field"], "name", "still sets its own field");
        // Names that swap places.
        p.rename(&["d".into(), "c".into()]);
        assert_eq!(p.path, "/v1/{d}/x/{c}:v");
        // A variable naming no field (dropped with ignore_unknown_query_parameters) sets nothing.
        let p = describe("/v1/{missing}", &[PathVariable::Unknown("missing".into())], &mut schemas).unwrap();
        assert!(p.params[0].sets.is_none() && p.params[0].object.get("x-json2grpc-field").is_none());
    }
}
