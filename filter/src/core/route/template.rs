//! Parser of `google.api.http` path templates.
//!
//! ```text
//! Template  = "/" Segments [ ":" Verb ] ;      "/" alone is the root (zero segments)
//! Segments  = Segment { "/" Segment } ;
//! Segment   = "*" | "**" | LITERAL | Variable ;
//! Variable  = "{" FieldPath [ "=" Segments ] "}" ;   "{x}" means "{x=*}"
//! FieldPath = IDENT { "." IDENT } ;
//! Verb      = LITERAL ;
//! ```
//!
//! Rules on top of the grammar:
//! - A literal is any text without `/`, `{`, `}` (like Envoy, which does not restrict the
//!   characters further). A segment starting with `*` must be exactly `*` or `**`.
//! - The verb separator is the last `:` that is outside braces and after the last `/`; any other
//!   `:` is an ordinary literal character (`/v1/a:b/c` has the literal `a:b`, `/a:b:c` has the
//!   literal `a:b` and the verb `c`). Request paths are split the same way (last `:` of the last
//!   segment), so every template can be matched.
//! - After a `**` only literal segments may follow, and no variable may start after it (a
//!   variable's position in the request path would then depend on what `**` consumed); at most
//!   [`MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD`] of them (a limit of json2grpc's own).
//! - Variables cannot nest and must be whole segments. One field path may be bound twice
//!   (`/{x}/{x}`): Envoy accepts it, and the last value wins.
//! - Parsing is iterative: no recursion whatever the input.
use std::fmt;
use std::ops::Range;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The segments after the leading `/`, with variables replaced by their patterns.
    pub segments: Vec<Segment>,
    /// The custom verb (`:cancel` → `cancel`), never empty.
    pub verb: Option<String>,
    /// The variables in template order.
    pub variables: Vec<Variable>,
}

/// One `/`-separated piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches a path segment equal to this text (compared with the raw, undecoded segment).
    Literal(String),
    /// `*`: exactly one path segment.
    Wildcard,
    /// `**`: zero or more path segments.
    DoubleWildcard,
}

/// A `{field.path=…}` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The identifiers of the field path (`a.b` → `["a", "b"]`).
    pub field_path: Vec<String>,
    /// Index of the first covered segment. Variables never follow a `**`, so this is also the
    /// index of the first covered segment of a matching request path.
    pub start: usize,
    /// One past the last covered segment (template and request path alike); `None` when the
    /// variable contains `**`, so its end in a request path depends on the path's length.
    pub end: Option<usize>,
    /// When `end` is `None`: how many (literal) template segments follow the variable, i.e.
    /// how many request path segments follow its value. Zero otherwise.
    pub tail: usize,
}

impl Variable {
    /// The range of request path segments bound by this variable in a matching path of
    /// `path_segments` segments (not counting the verb). `None` when that path cannot match.
    pub fn path_range(&self, path_segments: usize) -> Option<Range<usize>> {
        let end = match self.end {
            Some(end) => end,
            None => path_segments.checked_sub(self.tail)?,
        };
        (self.start <= end && end <= path_segments).then_some(self.start..end)
    }

    /// Whether the variable can cover more than one segment: it contains `**` or several
    /// segments. Such values are decoded per `url_unescape_spec`; single-segment ones fully.
    pub fn is_multi_segment(&self) -> bool {
        self.end.is_none_or(|end| end.saturating_sub(self.start) > 1)
    }

    /// The field path joined with dots (`a.b`).
    pub fn field_path_string(&self) -> String {
        self.field_path.join(".")
    }

    /// One past the last covered template segment, given the template's segment count.
    fn template_end(&self, template_segments: usize) -> usize {
        self.end.unwrap_or(template_segments.saturating_sub(self.tail))
    }
}

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub template: String,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid path template {:?}: {}", self.template, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Parses a `google.api.http` path template.
pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
    parse_template(template).map_err(|message| TemplateError { template: template.to_owned(), message })
}

fn parse_template(template: &str) -> Result<PathTemplate, String> {
    let rest = template.strip_prefix('/').ok_or("a template must start with '/'")?;
    if rest.is_empty() {
        return Ok(PathTemplate { segments: Vec::new(), verb: None, variables: Vec::new() });
    }
    let (body, verb) = split_verb(rest)?;
    let mut parser = SegmentsParser { body: body.as_bytes(), pos: 0, segments: Vec::new(), variables: Vec::new() };
    parser.run(body)?;
    let SegmentsParser { segments, mut variables, .. } = parser;
    apply_double_wildcard_rules(&segments, &mut variables)?;
    Ok(PathTemplate { segments, verb, variables })
}

/// Splits `rest` (the template without its leading `/`) into the segments and the verb.
fn split_verb(rest: &str) -> Result<(&str, Option<String>), String> {
    let after_last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let mut depth = 0usize;
    let mut colon = None;
    for (i, byte) in rest.bytes().enumerate() {
        match byte {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && i >= after_last_slash => colon = Some(i),
            _ => {}
        }
    }
    let Some(colon) = colon else {
        return Ok((rest, None));
    };
    let (body, verb) = rest.split_at_checked(colon).ok_or("internal error splitting the verb")?;
    let verb = verb.strip_prefix(':').unwrap_or(verb);
    if verb.is_empty() {
        return Err("empty verb after ':'".into());
    }
    if verb.contains(['{', '}']) {
        return Err(format!("invalid verb {verb:?}: a verb cannot contain '{{' or '}}'"));
    }
    if body.is_empty() || body.ends_with('/') {
        return Err("a verb must follow a path segment".into());
    }
    Ok((body, Some(verb.to_owned())))
}

/// Parses `Segments` iteratively; variables are one level deep, tracked by `open`.
struct SegmentsParser<'b> {
    body: &'b [u8],
    pos: usize,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
}

/// A variable whose `{name=` has been read but not its `}`.
struct OpenVariable {
    field_path: Vec<String>,
    start: usize,
}

impl SegmentsParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    fn run(&mut self, text: &str) -> Result<(), String> {
        let mut open: Option<OpenVariable> = None;
        loop {
            // One segment.
            match self.peek() {
                None if open.is_some() => return Err("unterminated variable".into()),
                None => return Err("a template cannot end with '/'".into()),
                Some(b'/') => return Err("empty segment ('//')".into()),
                Some(b'}') if open.is_some() => return Err("empty segment in a variable".into()),
                Some(b'}') => return Err("unmatched '}'".into()),
                Some(b'{') if open.is_some() => return Err("nested variables are not allowed".into()),
                Some(b'{') => {
                    let (field_path, closed) = self.field_path(text)?;
                    if closed {
                        // `{x}` is `{x=*}`.
                        let start = self.segments.len();
                        self.segments.push(Segment::Wildcard);
                        self.variables.push(Variable { field_path, start, end: Some(start + 1), tail: 0 });
                        if self.after_variable()? {
                            return Ok(());
                        }
                    } else {
                        open = Some(OpenVariable { field_path, start: self.segments.len() });
                    }
                    continue;
                }
                Some(_) => self.plain_segment(text)?,
            }
            // What follows the segment.
            match self.peek() {
                None if open.is_some() => return Err("unterminated variable".into()),
                None => return Ok(()),
                Some(b'/') => self.pos += 1,
                Some(b'}') => {
                    let Some(var) = open.take() else {
                        return Err("unmatched '}'".into());
                    };
                    self.pos += 1;
                    let end = self.segments.len();
                    self.variables.push(Variable {
                        field_path: var.field_path,
                        start: var.start,
                        end: Some(end),
                        tail: 0,
                    });
                    if self.after_variable()? {
                        return Ok(());
                    }
                }
                Some(b'{') => return Err("a variable must be a whole segment".into()),
                Some(other) => return Err(format!("unexpected {:?}", char::from(other))),
            }
        }
    }

    /// Reads `{field.path` up to `=` (consumed: the pattern follows) or `}` (consumed: the
    /// variable is closed). Returns the field path and whether the variable is closed.
    fn field_path(&mut self, text: &str) -> Result<(Vec<String>, bool), String> {
        let start = self.pos + 1;
        let rest = self.body.get(start..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == b'=' || b == b'}') else {
            return Err("unterminated variable".into());
        };
        let path = text.get(start..start + len).ok_or("internal error reading a field path")?;
        let closed = rest.get(len) == Some(&b'}');
        self.pos = start + len + 1;
        Ok((parse_field_path(path)?, closed))
    }

    /// After a variable's `}`: the segment must end there. Returns true at the end of input.
    fn after_variable(&mut self) -> Result<bool, String> {
        match self.peek() {
            None => Ok(true),
            Some(b'/') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b'}') => Err("unmatched '}'".into()),
            Some(_) => Err("a variable must be a whole segment".into()),
        }
    }

    /// `*`, `**` or a literal, up to the next `/`, `{` or `}`.
    fn plain_segment(&mut self, text: &str) -> Result<(), String> {
        let start = self.pos;
        let rest = self.body.get(start..).unwrap_or_default();
        let len = rest.iter().position(|&b| matches!(b, b'/' | b'{' | b'}')).unwrap_or(rest.len());
        let token = text.get(start..start + len).ok_or("internal error reading a segment")?;
        self.pos = start + len;
        let segment = match token {
            "*" => Segment::Wildcard,
            "**" => Segment::DoubleWildcard,
            _ if token.starts_with('*') => {
                return Err(format!("invalid segment {token:?}: '*' and '**' must be whole segments"));
            }
            _ => Segment::Literal(token.to_owned()),
        };
        self.segments.push(segment);
        Ok(())
    }
}

/// `IDENT { "." IDENT }` with `IDENT = [A-Za-z_][A-Za-z0-9_]*`.
fn parse_field_path(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Err("empty field path in a variable".into());
    }
    let valid_ident = |ident: &str| {
        let mut chars = ident.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    path.split('.')
        .map(|ident| {
            if valid_ident(ident) {
                Ok(ident.to_owned())
            } else {
                Err(format!("invalid field path {path:?}: {ident:?} is not an identifier"))
            }
        })
        .collect()
}

/// Enforces "after `**` only literals" and marks the variables that contain `**`.
/// The most literal segments a template may have after `**`. A lookup compares each suffix of
/// the request's path with them, longest first: up to this number squared steps for a path of
/// any length (4,000 took 0.5 s a request in a debug build), where Envoy sets no limit.
pub const MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD: usize = 100;

fn apply_double_wildcard_rules(segments: &[Segment], variables: &mut [Variable]) -> Result<(), String> {
    let Some(at) = segments.iter().position(|s| *s == Segment::DoubleWildcard) else {
        return Ok(());
    };
    let after = segments.get(at + 1..).unwrap_or_default();
    if after.iter().any(|s| !matches!(s, Segment::Literal(_))) {
        return Err("only literal segments may follow '**'".into());
    }
    if after.len() > MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD {
        return Err(format!(
            "more than {MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD} segments follow '**' (json2grpc's limit: a lookup \
             tries each suffix of the path against them)"
        ));
    }
    for var in variables.iter_mut() {
        if var.start > at {
            return Err(format!(
                "variable {:?} follows '**': only literal segments may follow it",
                var.field_path_string()
            ));
        }
        if let Some(end) = var.end.filter(|&end| end > at) {
            var.end = None;
            var.tail = segments.len().saturating_sub(end);
        }
    }
    Ok(())
}

/// Renders the template canonically (`{x=*}` as `{x}`); parsing the result gives it back.
impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.segments.len();
        if total == 0 {
            return f.write_str("/");
        }
        let mut open_until = None;
        for (i, segment) in self.segments.iter().enumerate() {
            f.write_str("/")?;
            if let Some(var) = self.variables.iter().find(|v| v.start == i) {
                let end = var.template_end(total);
                write!(f, "{{{}", var.field_path_string())?;
                if end == i + 1 && *segment == Segment::Wildcard {
                    f.write_str("}")?;
                    continue;
                }
                f.write_str("=")?;
                open_until = Some(end);
            }
            match segment {
                Segment::Literal(text) => f.write_str(text)?,
                Segment::Wildcard => f.write_str("*")?,
                Segment::DoubleWildcard => f.write_str("**")?,
            }
            if open_until == Some(i + 1) {
                f.write_str("}")?;
                open_until = None;
            }
        }
        if let Some(verb) = &self.verb {
            write!(f, ":{verb}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use Segment::{DoubleWildcard as DW, Wildcard as W};

    fn lit(text: &str) -> Segment {
        Segment::Literal(text.to_owned())
    }

    fn var(path: &str, start: usize, end: Option<usize>, tail: usize) -> Variable {
        Variable { field_path: path.split('.').map(str::to_owned).collect(), start, end, tail }
    }

    fn ok(template: &str) -> PathTemplate {
        match parse(template) {
            Ok(t) => t,
            Err(e) => panic!("{template:?} should parse: {e}"),
        }
    }

    /// The message of the error for `template`, checking the rest of the error too.
    fn err(template: &str) -> String {
        match parse(template) {
            Ok(t) => panic!("{template:?} should be rejected, got {t:?}"),
            Err(e) => {
                assert_eq!(e.template, template);
                assert_eq!(e.to_string(), format!("invalid path template {template:?}: {}", e.message));
                e.message
            }
        }
    }

    fn assert_err(template: &str, expected: &str) {
        let message = err(template);
        assert!(message.contains(expected), "{template:?}: {message:?} should contain {expected:?}");
    }

    // ---- valid templates ----

    #[test]
    fn root_template_has_no_segments() {
        assert_eq!(ok("/"), PathTemplate { segments: vec![], verb: None, variables: vec![] });
    }

    #[test]
    fn literal_segments() {
        let t = ok("/v1/shelves");
        assert_eq!(t.segments, vec![lit("v1"), lit("shelves")]);
        assert_eq!(t.verb, None);
        assert!(t.variables.is_empty());
    }

    #[test]
    fn single_wildcards_and_double_wildcards_without_variables() {
        assert_eq!(ok("/v1/*/b").segments, vec![lit("v1"), W, lit("b")]);
        assert_eq!(ok("/v1/**").segments, vec![lit("v1"), DW]);
        assert_eq!(ok("/**").segments, vec![DW]);
        assert_eq!(ok("/*").segments, vec![W]);
        assert_eq!(ok("/*/*").segments, vec![W, W]);
        assert_eq!(ok("/v1/**/a/b").segments, vec![lit("v1"), DW, lit("a"), lit("b")]);
    }

    #[test]
    fn bare_variable_means_single_wildcard() {
        let short = ok("/v1/{name}");
        let long = ok("/v1/{name=*}");
        assert_eq!(short, long);
        assert_eq!(short.segments, vec![lit("v1"), W]);
        assert_eq!(short.variables, vec![var("name", 1, Some(2), 0)]);
    }

    #[test]
    fn multi_segment_variable() {
        let t = ok("/v1/{name=shelves/*/books/*}:get");
        assert_eq!(t.segments, vec![lit("v1"), lit("shelves"), W, lit("books"), W]);
        assert_eq!(t.variables, vec![var("name", 1, Some(5), 0)]);
        assert_eq!(t.verb.as_deref(), Some("get"));
    }

    #[test]
    fn variable_with_a_literal_pattern() {
        let t = ok("/v1/{kind=books}/{id}");
        assert_eq!(t.segments, vec![lit("v1"), lit("books"), W]);
        assert_eq!(t.variables, vec![var("kind", 1, Some(2), 0), var("id", 2, Some(3), 0)]);
    }

    #[test]
    fn several_variables_keep_template_order() {
        let t = ok("/shelves/{shelf}/books/{book.id}");
        assert_eq!(t.variables, vec![var("shelf", 1, Some(2), 0), var("book.id", 3, Some(4), 0)]);
    }

    #[test]
    fn double_wildcard_variable_runs_to_the_end() {
        let t = ok("/v1/{path=**}");
        assert_eq!(t.segments, vec![lit("v1"), DW]);
        assert_eq!(t.variables, vec![var("path", 1, None, 0)]);
        let t = ok("/{path=objects/**}");
        assert_eq!(t.variables, vec![var("path", 0, None, 0)]);
    }

    #[test]
    fn double_wildcard_variable_followed_by_literals_counts_them() {
        let t = ok("/v1/{path=**}/meta/data:list");
        assert_eq!(t.segments, vec![lit("v1"), DW, lit("meta"), lit("data")]);
        assert_eq!(t.variables, vec![var("path", 1, None, 2)]);
        assert_eq!(t.verb.as_deref(), Some("list"));
        // Literals inside the variable after `**` belong to it.
        let t = ok("/{path=**/x}/y");
        assert_eq!(t.segments, vec![DW, lit("x"), lit("y")]);
        assert_eq!(t.variables, vec![var("path", 0, None, 1)]);
    }

    #[test]
    fn variable_before_a_double_wildcard_keeps_its_end() {
        let t = ok("/{a}/{b=**}");
        assert_eq!(t.variables, vec![var("a", 0, Some(1), 0), var("b", 1, None, 0)]);
        let t = ok("/{a}/**");
        assert_eq!(t.variables, vec![var("a", 0, Some(1), 0)]);
    }

    #[test]
    fn field_paths_are_dotted_identifiers() {
        let t = ok("/{a.b.c}/{_x1.Y_2}");
        assert_eq!(t.variables[0].field_path, vec!["a", "b", "c"]);
        assert_eq!(t.variables[1].field_path, vec!["_x1", "Y_2"]);
        assert_eq!(t.variables[0].field_path_string(), "a.b.c");
    }

    #[test]
    fn sibling_and_parent_field_paths_are_distinct() {
        // Same leaf names under different parents, and a parent with its child: both allowed
        // here (the transcoder decides about conflicting fields).
        assert_eq!(ok("/{a.x}/{b.x}").variables.len(), 2);
        assert_eq!(ok("/{a}/{a.b}").variables.len(), 2);
    }

    #[test]
    fn verbs() {
        let t = ok("/v1/books:cancel");
        assert_eq!(t.segments, vec![lit("v1"), lit("books")]);
        assert_eq!(t.verb.as_deref(), Some("cancel"));
        assert_eq!(ok("/v1/{name}:undelete").verb.as_deref(), Some("undelete"));
        assert_eq!(ok("/v1/*:x").segments, vec![lit("v1"), W]);
        assert_eq!(ok("/v1/**:x").verb.as_deref(), Some("x"));
        assert_eq!(ok("/v1/{name=x/*}:v").verb.as_deref(), Some("v"));
        assert_eq!(ok("/a:*").verb.as_deref(), Some("*"));
    }

    #[test]
    fn colon_before_the_last_slash_is_part_of_a_literal() {
        let t = ok("/v1/a:b/c");
        assert_eq!(t.segments, vec![lit("v1"), lit("a:b"), lit("c")]);
        assert_eq!(t.verb, None);
        let t = ok("/projects/p:1/{name}:run");
        assert_eq!(t.segments, vec![lit("projects"), lit("p:1"), W]);
        assert_eq!(t.verb.as_deref(), Some("run"));
    }

    #[test]
    fn only_the_last_colon_of_the_last_segment_is_the_verb() {
        let t = ok("/v1/a:b:c");
        assert_eq!(t.segments, vec![lit("v1"), lit("a:b")]);
        assert_eq!(t.verb.as_deref(), Some("c"));
    }

    #[test]
    fn colon_inside_braces_is_not_a_verb() {
        let t = ok("/v1/{name=a:b}");
        assert_eq!(t.segments, vec![lit("v1"), lit("a:b")]);
        assert_eq!(t.verb, None);
        let t = ok("/{name=x/a:b}:go");
        assert_eq!(t.segments, vec![lit("x"), lit("a:b")]);
        assert_eq!(t.verb.as_deref(), Some("go"));
    }

    #[test]
    fn literals_may_contain_any_other_character() {
        for literal in ["a%20b", "a=b", "a*", "a**", "@me", "caf\u{e9}", "v1.2", "~x", "a!$&'()+,;", "a b", "x?y"] {
            let t = ok(&format!("/{literal}/z"));
            assert_eq!(t.segments, vec![lit(literal), lit("z")], "{literal:?}");
        }
    }

    #[test]
    fn long_templates_parse_without_recursion() {
        let template = "/a".repeat(20_000) + "/{x=**}/b:v";
        let t = parse(&template).map_err(|e| e.message).unwrap();
        assert_eq!(t.segments.len(), 20_002);
        assert_eq!(t.variables, vec![var("x", 20_000, None, 1)]);
    }

    // ---- invalid templates ----

    #[test]
    fn error_display_quotes_the_template() {
        let e = parse("/a/{x").unwrap_err();
        assert_eq!(e.to_string(), r#"invalid path template "/a/{x": unterminated variable"#);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().starts_with("invalid path template"));
    }

    #[test]
    fn must_start_with_a_slash() {
        for t in ["", "v1/books", "*", "{x}", " /a", ":verb"] {
            assert_err(t, "must start with '/'");
        }
    }

    #[test]
    fn trailing_slash_is_invalid() {
        for t in ["/a/", "/a/b/", "/{x}/", "/**/"] {
            assert_err(t, "cannot end with '/'");
        }
    }

    #[test]
    fn empty_segments_are_invalid() {
        for t in ["//", "/a//b", "//a", "/{x}//a", "/a///"] {
            assert_err(t, "empty segment");
        }
        for t in ["/{x=}", "/{x=a/}", "/{x=a//b}"] {
            assert_err(t, "empty segment");
        }
    }

    #[test]
    fn unterminated_variables() {
        for t in ["/a/{x", "/{", "/{x=*", "/{x=a/", "/{x=a/b", "/{x.y", "/{x=**"] {
            assert_eq!(err(t), "unterminated variable", "{t:?}");
        }
    }

    #[test]
    fn nested_variables_are_invalid() {
        for t in ["/{x={y}}", "/{x=a/{y}}", "/{x={y=*}}"] {
            assert_eq!(err(t), "nested variables are not allowed", "{t:?}");
        }
    }

    #[test]
    fn variable_must_be_a_whole_segment() {
        for t in ["/a{x}", "/{x}b", "/{x}{y}", "/{x=*}b/c", "/a/b{x=*}", "/{x=a}b"] {
            assert_eq!(err(t), "a variable must be a whole segment", "{t:?}");
        }
    }

    #[test]
    fn unmatched_closing_brace() {
        for t in ["/}", "/a}", "/a/}/b", "/{x}}", "/{x=a}}"] {
            assert_eq!(err(t), "unmatched '}'", "{t:?}");
        }
    }

    #[test]
    fn empty_field_paths() {
        for t in ["/{}", "/{=*}", "/a/{=b/c}"] {
            assert_eq!(err(t), "empty field path in a variable", "{t:?}");
        }
    }

    #[test]
    fn invalid_field_paths() {
        for (t, bad) in [
            ("/{1a}", "\"1a\""),
            ("/{a..b}", "\"\""),
            ("/{a.}", "\"\""),
            ("/{.a}", "\"\""),
            ("/{a-b}", "\"a-b\""),
            ("/{a b}", "\"a b\""),
            ("/{caf\u{e9}}", "\"caf\u{e9}\""),
            ("/{a/b}", "\"a/b\""),
            ("/{a.2b=*}", "\"2b\""),
            ("/{*}", "\"*\""),
        ] {
            let message = err(t);
            assert!(message.starts_with("invalid field path"), "{t:?}: {message}");
            assert!(message.contains(&format!("{bad} is not an identifier")), "{t:?}: {message}");
        }
    }

    #[test]
    fn the_same_field_path_may_be_bound_twice() {
        // Envoy accepts it (the request then sets the field twice: the last value wins).
        let t = ok("/{x}/{x}");
        assert_eq!(t.variables.len(), 2);
        assert_eq!((t.variables[0].start, t.variables[1].start), (0, 1));
        assert_eq!(ok("/{a.b}/c/{a.b=d/*}").variables.len(), 2);
        assert_eq!(ok("/{x}/{y}/{x=**}").variables.len(), 3);
    }

    #[test]
    fn empty_verb_is_invalid() {
        for t in ["/a:", "/a/{x}:", "/a:b:", "/**:"] {
            assert_eq!(err(t), "empty verb after ':'", "{t:?}");
        }
    }

    #[test]
    fn verb_needs_a_segment_before_it() {
        for t in ["/:verb", "/a/:verb", "/:"] {
            let message = err(t);
            assert!(
                message == "a verb must follow a path segment" || message == "empty verb after ':'",
                "{t:?}: {message}"
            );
        }
        assert_eq!(err("/:verb"), "a verb must follow a path segment");
        assert_eq!(err("/a/:verb"), "a verb must follow a path segment");
    }

    #[test]
    fn verb_cannot_hold_a_variable() {
        assert_err("/a:{x}", "a verb cannot contain");
        assert_err("/a:b}", "a verb cannot contain");
    }

    #[test]
    fn colon_right_after_a_variable_with_more_text_is_invalid() {
        // The last ':' is the verb separator, so `{x}:a` is a variable glued to text.
        assert_eq!(err("/{x}:a:b"), "a variable must be a whole segment");
    }

    #[test]
    fn only_literals_may_follow_a_double_wildcard() {
        for t in ["/**/*", "/**/**", "/a/**/b/*", "/{x=**}/{y}", "/{x=**/*}", "/**/{x}", "/{x=**/**}"] {
            assert_eq!(err(t), "only literal segments may follow '**'", "{t:?}");
        }
    }

    #[test]
    fn at_most_a_hundred_segments_may_follow_a_double_wildcard() {
        let tail = |n: usize| vec!["a"; n].join("/");
        let t = parse(&format!("/{{p=**}}/{}:v", tail(MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD))).unwrap();
        assert_eq!(t.segments.len(), MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD + 1);
        let e = err(&format!("/x/**/{}", tail(MAX_SEGMENTS_AFTER_DOUBLE_WILDCARD + 1)));
        assert!(e.starts_with("more than 100 segments follow '**'"), "{e}");
        // Before `**`, any number.
        assert!(parse(&format!("/{}/**", tail(10_000))).is_ok());
    }

    #[test]
    fn variables_cannot_follow_a_double_wildcard() {
        assert_eq!(err("/**/{x=a}"), r#"variable "x" follows '**': only literal segments may follow it"#);
        assert_eq!(err("/{p=**}/{q=b/c}"), r#"variable "q" follows '**': only literal segments may follow it"#);
    }

    #[test]
    fn stars_must_be_whole_segments() {
        for t in ["/***", "/*a", "/**b", "/a/*x/c", "/{x=*y}", "/{x=***}"] {
            assert_err(t, "'*' and '**' must be whole segments");
        }
    }

    #[test]
    fn many_opening_braces_fail_fast() {
        let template = "/".to_owned() + &"{".repeat(100_000);
        assert!(parse(&template).is_err());
        let template = "/{x=".to_owned() + &"{".repeat(100_000);
        assert_eq!(err(&template), "nested variables are not allowed");
    }

    // ---- helpers on the result ----

    #[test]
    fn path_range_of_fixed_and_double_wildcard_variables() {
        let t = ok("/v1/{name=shelves/*}/books/{rest=**}/x/y");
        let name = &t.variables[0];
        let rest = &t.variables[1];
        assert_eq!(name.path_range(10), Some(1..3));
        assert_eq!(rest.path_range(10), Some(4..8));
        assert_eq!(rest.path_range(6), Some(4..4), "`**` may match nothing");
        assert_eq!(rest.path_range(5), None, "too short to match");
        assert_eq!(rest.path_range(1), None);
        assert_eq!(name.path_range(2), None);
    }

    #[test]
    fn multi_segment_variables() {
        let t = ok("/{a}/{b=x}/{c=x/*}/{d=**}");
        let multi: Vec<bool> = t.variables.iter().map(Variable::is_multi_segment).collect();
        assert_eq!(multi, vec![false, false, true, true]);
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (input, canonical) in [
            ("/", "/"),
            ("/v1/shelves", "/v1/shelves"),
            ("/v1/{name=*}", "/v1/{name}"),
            ("/v1/{name}:cancel", "/v1/{name}:cancel"),
            ("/v1/{name=shelves/*/books/*}", "/v1/{name=shelves/*/books/*}"),
            ("/v1/{a.b=x}/{c}", "/v1/{a.b=x}/{c}"),
            ("/{p=**}/meta:get", "/{p=**}/meta:get"),
            ("/{p=a/**/b}/c", "/{p=a/**/b}/c"),
            ("/a:b/**", "/a:b/**"),
            ("/v1/a:b:c", "/v1/a:b:c"),
            ("/*/**", "/*/**"),
        ] {
            let t = ok(input);
            assert_eq!(t.to_string(), canonical, "{input:?}");
            assert_eq!(ok(canonical), t, "{input:?}");
        }
    }
}
