//! Routing of an HTTP method and request path to a registered `google.api.http` template, with
//! the values of the template's variables.
//!
//! Semantics (Envoy's grpc_json_transcoder unless noted):
//! - The key is method + template shape + verb; the whole path must match (no prefix match).
//! - At every segment a literal beats `*`, which beats `**`; when the preferred branch fails
//!   deeper, the next one is tried (backtracking).
//! - `**` matches zero or more segments and is followed only by literals; of several templates
//!   sharing a `**`, the one with the most literals after it wins.
//! - The path is split on raw `/` first, then variables are decoded: a single-segment variable
//!   fully, a multi-segment one (several segments or `**`) per `url_unescape_spec`, its segments
//!   joined with `/`. `%2F` therefore never creates a segment boundary.
//! - Literals and verbs are compared with the raw, undecoded text. Decoding before comparing
//!   would make routing depend on the unescape spec and let `%2F`/`%3A` forge structure; Envoy
//!   compares raw too, so templates keep routing the same requests.
//! - Custom verb: the text after the last `:` of the last segment, if some template registers
//!   that verb (or `match_unregistered_custom_verb`). Otherwise the `:` stays in the segment.
//!   As in Envoy, a split verb is never put back: a literal `c:b` in one template cannot be
//!   reached once another template registers the verb `b`.
//!   A trailing `:` with nothing after it is never a verb (Envoy gets this wrong).
//! - `/` and the empty path have zero segments: they match the `/` template, or a template that
//!   is only `/**` (whose `**` then matches nothing).
//! - Trailing slashes are dropped once the verb is split off, as in Envoy: `/v1/things/` and
//!   `/v1/things//` are `/v1/things`; `/v1/things/1:cancel/` has no verb (its last segment is
//!   `1:cancel`), while `/v1/things/1/:cancel` is `/v1/things/1` with the verb `cancel`. Empty
//!   segments in the middle (`/a//b`) stay: they match only a `*` or `**` (which binds "").
//! - A `?` ends the path (the query is not part of matching); a path not starting with `/`
//!   matches nothing.
//! - A method + template registered twice makes that key ambiguous: a lookup that lands on it
//!   finds nothing (it does not fall back to lower-precedence templates).
//! - Method `*` registers for every method; at a given template a specific method wins.
//!
//! Cost: templates live in a trie. Before a `**` every template segment consumes exactly one
//! path segment, so a lookup visits each trie node at most once, and no node deeper than the
//! path; after a `**` only literal suffixes are compared. The explicit stack is bounded by the
//! trie depth, so paths of any length cost linear time and no recursion.
use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::core::route::percent::{self, UrlUnescapeSpec};
use crate::core::route::template::{PathTemplate, Segment, Variable};
use std::num::NonZeroU32;

/// The method that registers a template for every HTTP method.
pub const ANY_METHOD: &str = "*";

/// Options of the matcher (from the filter configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MatcherOptions {
    /// How multi-segment variables are decoded.
    pub url_unescape_spec: UrlUnescapeSpec,
    /// Treat any `:xyz` after the last `/` as a verb, registered or not.
    pub match_unregistered_custom_verb: bool,
}

/// The same method and template (up to variable names) were registered twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRegistration {
    pub http_method: String,
    /// The template as registered, in canonical form.
    pub template: String,
}

impl fmt::Display for DuplicateRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is registered more than once; requests matching it are ambiguous and not routed",
            self.http_method, self.template
        )
    }
}

impl std::error::Error for DuplicateRegistration {}

/// What a trie node holds for one verb and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Value(u32),
    Ambiguous,
}

/// A template ending at a node: its verb (0: none) and HTTP method, as ids of the matcher's
/// name tables.
#[derive(Debug, Clone, Copy)]
struct End {
    verb: u32,
    method: u32,
    slot: Slot,
}

/// A trie node. Kept compact (exactly sized sorted slices, ids instead of names, child ids
/// that are never the root's 0): every worker's VM holds the whole trie, and a 2,000-method API
/// has thousands of nodes, most with one child and at most a few ends (as B-tree maps they were
/// ~1 MB of the 200-service benchmark's router; 28 bytes each on wasm32, was 44 as vectors).
#[derive(Debug, Default)]
struct Node {
    /// Literal children, sorted by text.
    literals: Box<[(Box<str>, u32)]>,
    wildcard: Option<NonZeroU32>,
    double_wildcard: Option<NonZeroU32>,
    /// Templates ending here, sorted by (verb, method).
    ends: Box<[End]>,
    /// On a `**` node: the most literal segments any template has after that `**`.
    max_tail: u32,
}

impl Node {
    fn literal(&self, text: &str) -> Option<u32> {
        let found = self.literals.binary_search_by(|(literal, _)| (**literal).cmp(text)).ok()?;
        self.literals.get(found).map(|&(_, child)| child)
    }

    fn end_for(&self, verb: u32, method: u32) -> Option<Slot> {
        let found = self.ends.binary_search_by(|e| (e.verb, e.method).cmp(&(verb, method))).ok()?;
        self.ends.get(found).map(|e| e.slot)
    }

    /// The slot for a request: its own method's, else the one registered for every method.
    fn end(&self, verb: u32, method: Option<u32>) -> Option<Slot> {
        method.and_then(|m| self.end_for(verb, m)).or_else(|| self.end_for(verb, ANY_METHOD_ID))
    }
}

#[derive(Debug)]
struct Registered<T> {
    value: T,
    variables: Box<[Span]>,
    /// Registered again later: no lookup reaches it.
    ambiguous: bool,
}

/// Which request path segments a template variable covers: a [`Variable`] without its field
/// path (the router keeps what that binds), in 12 bytes instead of 28 on wasm32.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    /// One past the last covered segment; `None` when the variable contains `**`.
    end: Option<u32>,
    /// When `end` is `None`: how many request path segments follow the value.
    tail: u32,
}

impl Span {
    /// `None` for a template of more than 2^32 segments (a configuration that large is refused
    /// long before).
    fn of(variable: &Variable) -> Option<Span> {
        let end = variable.end.map(u32::try_from).transpose().ok()?;
        Some(Span { start: u32::try_from(variable.start).ok()?, end, tail: u32::try_from(variable.tail).ok()? })
    }

    /// [`Variable::path_range`].
    fn path_range(&self, path_segments: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.start).ok()?;
        let end = match self.end {
            Some(end) => usize::try_from(end).ok()?,
            None => path_segments.checked_sub(usize::try_from(self.tail).ok()?)?,
        };
        (start <= end && end <= path_segments).then_some(start..end)
    }

    /// [`Variable::is_multi_segment`].
    fn is_multi_segment(&self) -> bool {
        self.end.is_none_or(|end| end.saturating_sub(self.start) > 1)
    }
}

/// Names (HTTP methods, verbs) by id, sorted by name for lookups.
#[derive(Debug, Default)]
struct Names(Vec<(Box<str>, u32)>);

impl Names {
    fn id(&self, name: &str) -> Option<u32> {
        let found = self.0.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        self.0.get(found).map(|&(_, id)| id)
    }
}

/// The id of [`ANY_METHOD`].
const ANY_METHOD_ID: u32 = 0;

/// Collects templates; [`PathMatcherBuilder::build`] makes the matcher.
#[derive(Debug)]
pub struct PathMatcherBuilder<T> {
    /// The trie; index 0 is the root. Literal edges and ends are kept in the maps below until
    /// `build` moves them into the nodes, in the maps' order (so registering stays O(log n)
    /// per segment, and the nodes' lists come out sorted).
    nodes: Vec<Node>,
    children: BTreeMap<(u32, Box<str>), u32>,
    /// (node, verb id, method id) → slot.
    ends: BTreeMap<(u32, u32, u32), Slot>,
    /// Name → id; verb ids start at 1 (0: no verb), method 0 is [`ANY_METHOD`].
    verbs: BTreeMap<Box<str>, u32>,
    methods: BTreeMap<Box<str>, u32>,
    registered: Vec<Registered<T>>,
}

impl<T> Default for PathMatcherBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A literal edge (parent node, segment text) as the builder's map keys it: stored owned,
/// looked up as `(u32, &str)` without allocating (every segment of every template is looked up).
trait EdgeKey {
    fn key(&self) -> (u32, &str);
}

impl EdgeKey for (u32, Box<str>) {
    fn key(&self) -> (u32, &str) {
        (self.0, &self.1)
    }
}

impl EdgeKey for (u32, &str) {
    fn key(&self) -> (u32, &str) {
        *self
    }
}

impl<'a> std::borrow::Borrow<dyn EdgeKey + 'a> for (u32, Box<str>) {
    fn borrow(&self) -> &(dyn EdgeKey + 'a) {
        self
    }
}

// The same order as the owned tuple's: parent, then text.
impl PartialEq for dyn EdgeKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn EdgeKey + '_ {}

impl PartialOrd for dyn EdgeKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn EdgeKey + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// The id of `name` in `ids`, added with the next free id when missing.
fn intern(ids: &mut BTreeMap<Box<str>, u32>, name: &str, first: u32) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = first.saturating_add(u32::try_from(ids.len()).unwrap_or(u32::MAX));
    ids.insert(name.into(), id);
    id
}

impl<T> PathMatcherBuilder<T> {
    pub fn new() -> Self {
        let mut methods = BTreeMap::new();
        methods.insert(ANY_METHOD.into(), ANY_METHOD_ID);
        PathMatcherBuilder {
            nodes: vec![Node::default()],
            children: BTreeMap::new(),
            ends: BTreeMap::new(),
            verbs: BTreeMap::new(),
            methods,
            registered: Vec::new(),
        }
    }

    /// Room for `templates` registrations (their nodes: about as many).
    pub fn reserve(&mut self, templates: usize) {
        self.registered.reserve_exact(templates);
        self.nodes.reserve(templates);
    }

    /// Registers `template` for `http_method` (e.g. `"GET"`; [`ANY_METHOD`] for every method;
    /// compared case-sensitively). Registering the same method and an equivalent template
    /// (same segments and verb, whatever the variable names) again returns
    /// `Err(DuplicateRegistration)`, drops `value` and marks the key ambiguous: lookups that
    /// land on it return `None`.
    ///
    /// Templates from [`crate::core::route::template::parse`] follow its rules; a hand-built template with
    /// a non-literal segment after `**` is accepted but never matches.
    pub fn register(
        &mut self,
        http_method: &str,
        template: &PathTemplate,
        value: T,
    ) -> Result<(), DuplicateRegistration> {
        let duplicate =
            || DuplicateRegistration { http_method: http_method.to_owned(), template: template.to_string() };
        let mut node = 0;
        let mut double_wildcard: Option<(u32, u32)> = None; // (node, literals after it)
        for segment in &template.segments {
            node = self.child(node, segment).ok_or_else(duplicate)?;
            match (&mut double_wildcard, segment) {
                (Some((_, tail)), _) => *tail = tail.saturating_add(1),
                (None, Segment::DoubleWildcard) => double_wildcard = Some((node, 0)),
                (None, _) => {}
            }
        }
        if let Some((at, tail)) = double_wildcard {
            if let Some(dw) = self.nodes.get_mut(at as usize) {
                dw.max_tail = dw.max_tail.max(tail);
            }
        }
        let verb = template.verb.as_deref().map_or(0, |verb| intern(&mut self.verbs, verb, 1));
        let method = intern(&mut self.methods, http_method, ANY_METHOD_ID);
        let index = u32::try_from(self.registered.len()).map_err(|_| duplicate())?;
        // Only where each variable is: the router keeps what its field path binds.
        let variables =
            template.variables.iter().map(Span::of).collect::<Option<Box<[Span]>>>().ok_or_else(duplicate)?;
        match self.ends.entry((node, verb, method)) {
            MapEntry::Vacant(slot) => {
                slot.insert(Slot::Value(index));
                self.registered.push(Registered { value, variables, ambiguous: false });
                Ok(())
            }
            MapEntry::Occupied(mut slot) => {
                if let Slot::Value(earlier) = slot.insert(Slot::Ambiguous) {
                    if let Some(earlier) = self.registered.get_mut(earlier as usize) {
                        earlier.ambiguous = true;
                    }
                }
                Err(duplicate())
            }
        }
    }

    /// The child of node `from` for `segment`, created when missing (`None`: more than
    /// 2^32 nodes).
    fn child(&mut self, from: u32, segment: &Segment) -> Option<u32> {
        // Never 0: the root is there from the start.
        let new = NonZeroU32::new(u32::try_from(self.nodes.len()).ok()?)?;
        let node = self.nodes.get_mut(from as usize)?;
        let child = match segment {
            Segment::Literal(text) => match self.children.get(&(from, text.as_str()) as &dyn EdgeKey) {
                Some(&child) => child,
                None => *self.children.entry((from, text.as_str().into())).or_insert(new.get()),
            },
            Segment::Wildcard => node.wildcard.get_or_insert(new).get(),
            Segment::DoubleWildcard => node.double_wildcard.get_or_insert(new).get(),
        };
        if child == new.get() {
            self.nodes.push(Node::default());
        }
        Some(child)
    }

    pub fn build(self, options: MatcherOptions) -> PathMatcher<T> {
        let mut nodes = self.nodes;
        // Both maps are ordered by node first: each node's run, in order, becomes its slice.
        let mut children = self.children.into_iter().peekable();
        let mut ends = self.ends.into_iter().peekable();
        for (index, node) in (0u32..).zip(nodes.iter_mut()) {
            let mut literals = Vec::new();
            while let Some(((_, text), child)) = children.next_if(|((parent, _), _)| *parent == index) {
                literals.push((text, child));
            }
            node.literals = literals.into_boxed_slice();
            let mut mine = Vec::new();
            while let Some(((_, verb, method), slot)) = ends.next_if(|((at, _, _), _)| *at == index) {
                mine.push(End { verb, method, slot });
            }
            node.ends = mine.into_boxed_slice();
        }
        nodes.shrink_to_fit();
        let mut registered = self.registered;
        registered.shrink_to_fit();
        let names = |ids: BTreeMap<Box<str>, u32>| Names(ids.into_iter().collect());
        PathMatcher { nodes, registered, verbs: names(self.verbs), methods: names(self.methods), options }
    }
}

/// A successful lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch<'a, T> {
    pub value: &'a T,
    /// (index into the matched template's `variables`, decoded value) for every variable, in
    /// template order. Values may be invalid UTF-8; the caller decides.
    pub bindings: Vec<(usize, Vec<u8>)>,
}

/// Finds the template of a request; immutable, so it can serve any number of lookups.
#[derive(Debug)]
pub struct PathMatcher<T> {
    nodes: Vec<Node>,
    registered: Vec<Registered<T>>,
    verbs: Names,
    methods: Names,
    options: MatcherOptions,
}

/// Work left on the lookup's explicit stack.
enum Step {
    /// Match the path from segment `depth` on at trie node `node`.
    Node { node: u32, depth: usize },
    /// A `**` node reached with `depth` segments consumed: compare the literal suffixes.
    Tail { node: u32, depth: usize },
}

impl<T> PathMatcher<T> {
    pub fn options(&self) -> MatcherOptions {
        self.options
    }

    /// The values lookups can return (not those registered twice), in registration order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.registered.iter().filter(|r| !r.ambiguous).map(|r| &r.value)
    }

    /// The template registered for `http_method` that `path` (without the query string; a `?`
    /// ends it anyway) matches, with its variables' values.
    pub fn lookup(&self, http_method: &str, path: &str) -> Option<PathMatch<'_, T>> {
        let (parts, verb) = self.split(path)?;
        let method = self.methods.id(http_method);
        let mut found = None;
        self.walk(&parts, &mut |node| {
            found = node.end(verb, method);
            found.is_some()
        });
        let Slot::Value(index) = found? else {
            return None;
        };
        let registered = self.registered.get(index as usize)?;
        let bindings = registered
            .variables
            .iter()
            .enumerate()
            .map(|(i, variable)| Some((i, self.bind(variable, &parts)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(PathMatch { value: &registered.value, bindings })
    }

    /// Every HTTP method [`PathMatcher::lookup`] finds a template of for `path`, sorted: one
    /// walk of the trie, however many methods the templates use (a custom pattern's kind is
    /// any text; a CORS preflight asks for them all).
    pub fn methods_for(&self, path: &str) -> Vec<&str> {
        let Some((parts, verb)) = self.split(path) else { return Vec::new() };
        // What a lookup of each method finds: the first node in precedence order that ends a
        // template for it, or for every method (which decides every method not yet decided).
        let mut decided: HashMap<u32, Slot> = HashMap::new();
        let mut any = None;
        self.walk(&parts, &mut |node| {
            for end in node.ends.iter().filter(|e| e.verb == verb) {
                if end.method == ANY_METHOD_ID {
                    any = Some(end.slot);
                } else {
                    decided.entry(end.method).or_insert(end.slot);
                }
            }
            any.is_some()
        });
        let reached = |slot: Option<&Slot>| match slot {
            Some(Slot::Value(index)) => self
                .registered
                .get(*index as usize)
                .is_some_and(|r| r.variables.iter().all(|v| v.path_range(parts.len()).is_some())),
            _ => false,
        };
        self.methods
            .0
            .iter()
            .filter(|(_, id)| {
                let own = if *id == ANY_METHOD_ID { None } else { decided.get(id) };
                reached(own.or(any.as_ref()))
            })
            .map(|(name, _)| &**name)
            .collect()
    }

    /// `path`'s segments (without the query string, the custom verb and trailing slashes) and
    /// its verb's id (0: none); None when no template can match it.
    fn split<'p>(&self, path: &'p str) -> Option<(Vec<&'p str>, u32)> {
        let path = path.split_once('?').map_or(path, |(path, _query)| path);
        let rest = match path.strip_prefix('/') {
            Some(rest) => rest,
            None if path.is_empty() => "",
            None => return None,
        };
        let (body, verb) = self.split_verb(rest);
        // A verb no template registers (split off by `match_unregistered_custom_verb`) ends
        // no template.
        let verb = match verb {
            Some(verb) => self.verbs.id(verb)?,
            None => 0,
        };
        let body = body.trim_end_matches('/');
        let parts: Vec<&str> = if body.is_empty() { Vec::new() } else { body.split('/').collect() };
        Some((parts, verb))
    }

    /// Splits a custom verb off `rest` (the path without its leading `/`).
    fn split_verb<'p>(&self, rest: &'p str) -> (&'p str, Option<&'p str>) {
        let last_segment = rest.rfind('/').map_or(0, |slash| slash + 1);
        let colon = rest.get(last_segment..).and_then(|segment| segment.rfind(':'));
        let Some((body, verb)) = colon.and_then(|colon| rest.split_at_checked(last_segment + colon)) else {
            return (rest, None);
        };
        let verb = verb.strip_prefix(':').unwrap_or(verb);
        if !verb.is_empty() && (self.options.match_unregistered_custom_verb || self.verbs.id(verb).is_some()) {
            (body, Some(verb))
        } else {
            (rest, None)
        }
    }

    /// Depth-first search in precedence order (literal, `*`, `**`) with an explicit stack:
    /// `at_end` is called with each node a template for the whole path may end at, in that
    /// order, until it returns true. Each trie node is visited at most once.
    fn walk<'m>(&'m self, parts: &[&str], at_end: &mut dyn FnMut(&'m Node) -> bool) {
        let mut stack = vec![Step::Node { node: 0, depth: 0 }];
        while let Some(step) = stack.pop() {
            match step {
                Step::Node { node, depth } => {
                    let Some(node) = self.nodes.get(node as usize) else { continue };
                    let part = parts.get(depth);
                    if part.is_none() && at_end(node) {
                        return;
                    }
                    // Pushed in reverse order of precedence.
                    if let Some(dw) = node.double_wildcard {
                        stack.push(Step::Tail { node: dw.get(), depth });
                    }
                    if let Some(part) = part {
                        if let Some(wildcard) = node.wildcard {
                            stack.push(Step::Node { node: wildcard.get(), depth: depth + 1 });
                        }
                        if let Some(literal) = node.literal(part) {
                            stack.push(Step::Node { node: literal, depth: depth + 1 });
                        }
                    }
                }
                // At a `**` node: the literal suffixes that match the end of the path, longest
                // first (`**` takes the rest, possibly nothing).
                Step::Tail { node, depth } => {
                    let remaining = parts.get(depth..).unwrap_or_default();
                    let Some(dw) = self.nodes.get(node as usize) else { continue };
                    let max_tail = usize::try_from(dw.max_tail).unwrap_or(usize::MAX);
                    for tail in (0..=max_tail.min(remaining.len())).rev() {
                        let Some(suffix) = remaining.get(remaining.len() - tail..) else { continue };
                        let end = suffix
                            .iter()
                            .try_fold(dw, |at, part| at.literal(part).and_then(|child| self.nodes.get(child as usize)));
                        if end.is_some_and(&mut *at_end) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The decoded value of `variable` in a path split into `parts`.
    fn bind(&self, variable: &Span, parts: &[&str]) -> Option<Vec<u8>> {
        let segments = parts.get(variable.path_range(parts.len())?)?;
        let spec =
            if variable.is_multi_segment() { self.options.url_unescape_spec } else { UrlUnescapeSpec::AllCharacters };
        let mut value = Vec::with_capacity(segments.iter().map(|s| s.len() + 1).sum());
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                value.push(b'/');
            }
            value.extend_from_slice(&percent::decode(segment, spec));
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::route::template::parse;
    use UrlUnescapeSpec::*;

    type Matcher = PathMatcher<&'static str>;

    fn template(text: &str) -> PathTemplate {
        parse(text).unwrap()
    }

    /// A matcher whose values are the registered template texts.
    fn matcher_with(options: MatcherOptions, routes: &[(&str, &'static str)]) -> Matcher {
        let mut builder = PathMatcherBuilder::new();
        for &(method, text) in routes {
            builder.register(method, &template(text), text).unwrap();
        }
        builder.build(options)
    }

    fn matcher(routes: &[(&str, &'static str)]) -> Matcher {
        matcher_with(MatcherOptions::default(), routes)
    }

    fn spec(url_unescape_spec: UrlUnescapeSpec) -> MatcherOptions {
        MatcherOptions { url_unescape_spec, ..MatcherOptions::default() }
    }

    /// The matched template and its bindings as `field.path=value` (value as UTF-8).
    fn get(m: &Matcher, method: &str, path: &str) -> Option<(&'static str, Vec<String>)> {
        let found = m.lookup(method, path)?;
        let vars = template(found.value).variables;
        let bindings = found
            .bindings
            .iter()
            .map(|(i, value)| format!("{}={}", vars[*i].field_path_string(), String::from_utf8(value.clone()).unwrap()))
            .collect();
        Some((*found.value, bindings))
    }

    /// Only the matched template.
    fn route(m: &Matcher, method: &str, path: &str) -> Option<&'static str> {
        m.lookup(method, path).map(|found| *found.value)
    }

    fn binding(m: &Matcher, method: &str, path: &str) -> Vec<u8> {
        let found = m.lookup(method, path).unwrap_or_else(|| panic!("{path:?} should match"));
        assert_eq!(found.bindings.len(), 1);
        found.bindings[0].1.clone()
    }

    // ---- whole-path literal matching ----

    #[test]
    fn literal_template_matches_only_the_whole_path() {
        let m = matcher(&[("GET", "/v1/shelves")]);
        assert_eq!(get(&m, "GET", "/v1/shelves"), Some(("/v1/shelves", vec![])));
        for path in [
            "/v1",
            "/v1/shelves/1",
            "/v1/shelve",
            "/v1/shelvesx",
            "/v2/shelves",
            "/V1/shelves",
            "/shelves",
            "/v1//shelves",
        ] {
            assert_eq!(route(&m, "GET", path), None, "{path:?}");
        }
    }

    #[test]
    fn empty_matcher_matches_nothing() {
        let m: Matcher = PathMatcherBuilder::new().build(MatcherOptions::default());
        for path in ["", "/", "/a", "/a:b"] {
            assert!(m.lookup("GET", path).is_none());
        }
        let m: Matcher = PathMatcherBuilder::default().build(MatcherOptions::default());
        assert!(m.lookup("GET", "/").is_none());
    }

    #[test]
    fn single_variable_binding() {
        let m = matcher(&[("GET", "/v1/shelves/{shelf}/books/{book.id}")]);
        assert_eq!(
            get(&m, "GET", "/v1/shelves/s1/books/b2"),
            Some(("/v1/shelves/{shelf}/books/{book.id}", vec!["shelf=s1".into(), "book.id=b2".into()]))
        );
        assert_eq!(route(&m, "GET", "/v1/shelves/s1/books"), None);
        assert_eq!(route(&m, "GET", "/v1/shelves/s1/books/b2/x"), None);
    }

    #[test]
    fn bindings_carry_the_index_of_the_template_variable() {
        let m = matcher(&[("GET", "/{a}/{b=x/*}/{c=**}")]);
        let found = m.lookup("GET", "/1/x/2/3/4").unwrap();
        assert_eq!(found.bindings, vec![(0, b"1".to_vec()), (1, b"x/2".to_vec()), (2, b"3/4".to_vec())]);
    }

    #[test]
    fn multi_segment_variable_with_literals_inside() {
        let m = matcher(&[("GET", "/v1/{name=shelves/*/books/*}")]);
        assert_eq!(get(&m, "GET", "/v1/shelves/a/books/b").unwrap().1, vec!["name=shelves/a/books/b"]);
        assert_eq!(route(&m, "GET", "/v1/shelves/a/novels/b"), None);
        assert_eq!(route(&m, "GET", "/v1/shelves/a/books"), None);
    }

    // ---- precedence and backtracking ----

    #[test]
    fn literal_beats_wildcard_beats_double_wildcard() {
        let m =
            matcher(&[("GET", "/v1/shelves/{rest=**}"), ("GET", "/v1/shelves/{id}"), ("GET", "/v1/shelves/special")]);
        assert_eq!(route(&m, "GET", "/v1/shelves/special"), Some("/v1/shelves/special"));
        assert_eq!(get(&m, "GET", "/v1/shelves/x"), Some(("/v1/shelves/{id}", vec!["id=x".into()])));
        assert_eq!(get(&m, "GET", "/v1/shelves/x/y"), Some(("/v1/shelves/{rest=**}", vec!["rest=x/y".into()])));
        assert_eq!(
            get(&m, "GET", "/v1/shelves/special/y"),
            Some(("/v1/shelves/{rest=**}", vec!["rest=special/y".into()]))
        );
        assert_eq!(get(&m, "GET", "/v1/shelves"), Some(("/v1/shelves/{rest=**}", vec!["rest=".into()])));
    }

    #[test]
    fn registration_order_does_not_change_precedence() {
        let a = matcher(&[("GET", "/a/{x}"), ("GET", "/a/b"), ("GET", "/a/**")]);
        let b = matcher(&[("GET", "/a/**"), ("GET", "/a/b"), ("GET", "/a/{x}")]);
        for path in ["/a/b", "/a/c", "/a/b/c", "/a"] {
            assert_eq!(route(&a, "GET", path), route(&b, "GET", path), "{path:?}");
        }
    }

    #[test]
    fn failed_literal_branch_backtracks_to_wildcard() {
        let m = matcher(&[("GET", "/a/b/c"), ("GET", "/a/{x}/d")]);
        assert_eq!(get(&m, "GET", "/a/b/d"), Some(("/a/{x}/d", vec!["x=b".into()])));
        assert_eq!(route(&m, "GET", "/a/b/c"), Some("/a/b/c"));
        assert_eq!(route(&m, "GET", "/a/b/e"), None);
    }

    #[test]
    fn failed_wildcard_branch_backtracks_to_double_wildcard() {
        let m = matcher(&[("GET", "/a/b/c/d"), ("GET", "/a/*/c/e"), ("GET", "/a/{p=**}/f")]);
        assert_eq!(route(&m, "GET", "/a/b/c/d"), Some("/a/b/c/d"));
        assert_eq!(route(&m, "GET", "/a/b/c/e"), Some("/a/*/c/e"));
        assert_eq!(get(&m, "GET", "/a/b/c/f"), Some(("/a/{p=**}/f", vec!["p=b/c".into()])));
        assert_eq!(route(&m, "GET", "/a/b/c/g"), None);
    }

    #[test]
    fn backtracking_across_several_levels() {
        let m = matcher(&[
            ("GET", "/x/a/a/a/a/END1"),
            ("GET", "/x/a/*/a/*/END2"),
            ("GET", "/x/*/*/*/*/END3"),
            ("GET", "/x/**/END4"),
        ]);
        assert_eq!(route(&m, "GET", "/x/a/a/a/a/END1"), Some("/x/a/a/a/a/END1"));
        assert_eq!(route(&m, "GET", "/x/a/a/a/a/END2"), Some("/x/a/*/a/*/END2"));
        assert_eq!(route(&m, "GET", "/x/a/a/a/a/END3"), Some("/x/*/*/*/*/END3"));
        assert_eq!(route(&m, "GET", "/x/a/a/a/a/END4"), Some("/x/**/END4"));
        assert_eq!(route(&m, "GET", "/x/a/a/a/END4"), Some("/x/**/END4"));
        assert_eq!(route(&m, "GET", "/x/a/a/a/a/END5"), None);
    }

    #[test]
    fn wildcard_is_preferred_over_double_wildcard_even_when_it_fails_later() {
        // `*` branch is tried first and fails at the end; `**` then matches.
        let m = matcher(&[("GET", "/a/*"), ("GET", "/a/**")]);
        assert_eq!(route(&m, "GET", "/a/b"), Some("/a/*"));
        assert_eq!(route(&m, "GET", "/a/b/c"), Some("/a/**"));
    }

    #[test]
    fn double_wildcard_matches_zero_or_more_segments() {
        let m = matcher(&[("GET", "/v1/{p=**}/meta")]);
        assert_eq!(get(&m, "GET", "/v1/meta").unwrap().1, vec!["p="]);
        assert_eq!(get(&m, "GET", "/v1/a/meta").unwrap().1, vec!["p=a"]);
        assert_eq!(get(&m, "GET", "/v1/a/b/c/meta").unwrap().1, vec!["p=a/b/c"]);
        assert_eq!(get(&m, "GET", "/v1/meta/meta").unwrap().1, vec!["p=meta"]);
        assert_eq!(route(&m, "GET", "/v1/a/b"), None);
        assert_eq!(route(&m, "GET", "/v1"), None);
        assert_eq!(route(&m, "GET", "/v2/meta"), None);
    }

    #[test]
    fn longest_literal_suffix_after_double_wildcard_wins() {
        let m = matcher(&[("GET", "/a/**"), ("GET", "/a/**/b"), ("GET", "/a/**/b/c")]);
        assert_eq!(route(&m, "GET", "/a/x/b/c"), Some("/a/**/b/c"));
        assert_eq!(route(&m, "GET", "/a/b/c"), Some("/a/**/b/c"));
        assert_eq!(route(&m, "GET", "/a/x/b"), Some("/a/**/b"));
        assert_eq!(route(&m, "GET", "/a/b"), Some("/a/**/b"));
        assert_eq!(route(&m, "GET", "/a/x/c"), Some("/a/**"));
        assert_eq!(route(&m, "GET", "/a"), Some("/a/**"));
    }

    #[test]
    fn double_wildcard_suffix_respects_method_and_verb() {
        let m = matcher(&[("GET", "/a/**/b"), ("POST", "/a/**"), ("GET", "/a/**:run")]);
        assert_eq!(route(&m, "POST", "/a/x/b"), Some("/a/**"));
        assert_eq!(route(&m, "GET", "/a/x/b"), Some("/a/**/b"));
        assert_eq!(route(&m, "GET", "/a/x/c"), None);
        assert_eq!(route(&m, "GET", "/a/x/b:run"), Some("/a/**:run"));
    }

    // ---- methods ----

    #[test]
    fn method_is_part_of_the_key() {
        let m = matcher(&[("GET", "/v1/{name}"), ("DELETE", "/v1/{id}"), ("POST", "/v1")]);
        assert_eq!(route(&m, "GET", "/v1/a"), Some("/v1/{name}"));
        assert_eq!(get(&m, "DELETE", "/v1/a"), Some(("/v1/{id}", vec!["id=a".into()])));
        assert_eq!(route(&m, "POST", "/v1/a"), None);
        assert_eq!(route(&m, "PUT", "/v1/a"), None);
        assert_eq!(route(&m, "GET", "/v1"), None);
        assert_eq!(route(&m, "POST", "/v1"), Some("/v1"));
    }

    /// `methods_for` against a lookup of each method, over random templates (literals, `*`,
    /// `**`, variables, verbs, the any-method registration, duplicates) and paths.
    #[test]
    fn methods_for_a_path_are_those_a_lookup_of_each_finds() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const SEGMENTS: [&str; 7] = ["a", "b", "*", "**", "{x}", "{y=a/*}", "{z=**}"];
        const METHODS: [&str; 5] = ["GET", "POST", "*", "X", "PATCH"];
        let mut compared = 0;
        for _ in 0..300 {
            let mut builder = PathMatcherBuilder::new();
            for _ in 0..1 + next(8) {
                let segments: Vec<&str> = (0..next(4)).map(|_| SEGMENTS[next(SEGMENTS.len())]).collect();
                let verb = [":v", ""][next(2)];
                let text = format!("/{}{verb}", segments.join("/"));
                if let Ok(t) = parse(&text) {
                    let _ = builder.register(METHODS[next(METHODS.len())], &t, ());
                }
            }
            let options = MatcherOptions { match_unregistered_custom_verb: next(2) == 0, ..Default::default() };
            let m = builder.build(options);
            for _ in 0..20 {
                let parts: Vec<&str> = (0..next(5)).map(|_| ["a", "b", "c"][next(3)]).collect();
                let path = format!("/{}{}", parts.join("/"), ["", ":v", ":w", "/"][next(4)]);
                let each: Vec<&str> =
                    m.methods.0.iter().map(|(n, _)| &**n).filter(|n| m.lookup(n, &path).is_some()).collect();
                assert_eq!(m.methods_for(&path), each, "{path}");
                compared += usize::from(!each.is_empty());
            }
        }
        assert!(compared > 1000, "{compared} paths some method matched");
        // A method's first end in precedence order decides it, even when that end is ambiguous
        // (registered twice) and a later one matches (review of 9aab945).
        let mut builder = PathMatcherBuilder::new();
        for (method, text) in [("GET", "/a"), ("GET", "/a"), ("GET", "/*"), ("POST", "/*"), ("*", "/**")] {
            let _ = builder.register(method, &template(text), text);
        }
        let m: Matcher = builder.build(MatcherOptions::default());
        assert_eq!(route(&m, "GET", "/a"), None);
        assert_eq!(m.methods_for("/a"), ["*", "POST"]);
        assert_eq!(m.methods_for("/b"), ["*", "GET", "POST"]);
    }

    #[test]
    fn methods_are_case_sensitive() {
        let m = matcher(&[("GET", "/a")]);
        assert_eq!(route(&m, "get", "/a"), None);
        assert_eq!(route(&m, "", "/a"), None);
    }

    #[test]
    fn any_method_registration() {
        let m = matcher(&[("*", "/v1/{name}"), ("GET", "/v1/{id}")]);
        assert_eq!(get(&m, "GET", "/v1/x"), Some(("/v1/{id}", vec!["id=x".into()])), "a specific method wins");
        for method in ["POST", "PATCH", "DELETE", "OPTIONS", "CUSTOM"] {
            assert_eq!(get(&m, method, "/v1/x"), Some(("/v1/{name}", vec!["name=x".into()])), "{method}");
        }
        assert_eq!(route(&m, "POST", "/v1"), None);
    }

    #[test]
    fn any_method_on_a_more_specific_template_beats_a_method_on_a_less_specific_one() {
        // Precedence is decided per template first, then per method at that template.
        let m = matcher(&[("GET", "/v1/{name}"), ("*", "/v1/special")]);
        assert_eq!(route(&m, "GET", "/v1/special"), Some("/v1/special"));
        assert_eq!(route(&m, "GET", "/v1/other"), Some("/v1/{name}"));
        // A template registered for another method only falls back to the next template.
        let m = matcher(&[("GET", "/v1/{name}"), ("POST", "/v1/special")]);
        assert_eq!(route(&m, "GET", "/v1/special"), Some("/v1/{name}"));
    }

    // ---- duplicates ----

    #[test]
    fn duplicate_registration_is_an_error_and_makes_the_key_ambiguous() {
        let mut b = PathMatcherBuilder::new();
        b.register("GET", &template("/v1/{name}"), 1).unwrap();
        let err = b.register("GET", &template("/v1/{id}"), 2).unwrap_err();
        assert_eq!(err, DuplicateRegistration { http_method: "GET".into(), template: "/v1/{id}".into() });
        assert_eq!(
            err.to_string(),
            "GET /v1/{id} is registered more than once; requests matching it are ambiguous and not routed"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.to_string().contains("more than once"));
        // A third time is still a duplicate.
        assert!(b.register("GET", &template("/v1/*"), 3).is_err());
        b.register("POST", &template("/v1/{name}"), 4).unwrap();
        b.register("GET", &template("/v1/{name}/x"), 5).unwrap();
        let m = b.build(MatcherOptions::default());
        assert!(m.lookup("GET", "/v1/a").is_none());
        assert_eq!(m.lookup("POST", "/v1/a").map(|f| *f.value), Some(4));
        assert_eq!(m.lookup("GET", "/v1/a/x").map(|f| *f.value), Some(5));
    }

    #[test]
    fn equivalent_templates_ignore_variable_names_but_not_shape_or_verb() {
        let mut b = PathMatcherBuilder::new();
        b.register("GET", &template("/v1/{a=**}"), 1).unwrap();
        assert!(b.register("GET", &template("/v1/**"), 2).is_err());
        assert!(b.register("GET", &template("/v1/{b=**}"), 3).is_err());
        b.register("GET", &template("/v1/{a=**}:run"), 4).unwrap();
        assert!(b.register("GET", &template("/v1/**:run"), 5).is_err());
        b.register("GET", &template("/v1/{a=*}"), 6).unwrap();
        b.register("GET", &template("/v1/x"), 7).unwrap();
        b.register("GET", &template("/v1/{a=x}/y"), 8).unwrap();
        assert!(b.register("GET", &template("/v1/x/y"), 9).is_err());
    }

    #[test]
    fn ambiguous_key_does_not_fall_back_to_other_templates() {
        let mut b = PathMatcherBuilder::new();
        b.register("GET", &template("/v1/{name}"), "first").unwrap();
        assert!(b.register("GET", &template("/v1/{id}"), "second").is_err());
        b.register("GET", &template("/v1/**"), "catch-all").unwrap();
        let m = b.build(MatcherOptions::default());
        assert!(m.lookup("GET", "/v1/a").is_none());
        assert_eq!(m.lookup("GET", "/v1/a/b").map(|f| *f.value), Some("catch-all"));
    }

    #[test]
    fn ambiguous_specific_method_is_not_rescued_by_any_method() {
        let mut b = PathMatcherBuilder::new();
        b.register("GET", &template("/a"), 1).unwrap();
        assert!(b.register("GET", &template("/a"), 2).is_err());
        b.register("*", &template("/a"), 3).unwrap();
        assert!(b.register("*", &template("/a"), 4).is_err());
        b.register("*", &template("/b"), 5).unwrap();
        assert!(b.register("*", &template("/b"), 6).is_err());
        let m = b.build(MatcherOptions::default());
        assert!(m.lookup("GET", "/a").is_none());
        assert!(m.lookup("POST", "/a").is_none());
        assert!(m.lookup("GET", "/b").is_none());
    }

    // ---- custom verbs ----

    #[test]
    fn registered_verb_is_split_off() {
        let m = matcher(&[("POST", "/v1/{name}:cancel"), ("GET", "/v1/{name}")]);
        assert_eq!(get(&m, "POST", "/v1/op1:cancel"), Some(("/v1/{name}:cancel", vec!["name=op1".into()])));
        assert_eq!(route(&m, "POST", "/v1/op1"), None);
        assert_eq!(get(&m, "GET", "/v1/op1"), Some(("/v1/{name}", vec!["name=op1".into()])));
        // The verb belongs to this template shape only.
        assert_eq!(route(&m, "GET", "/v1/op1:cancel"), None);
        assert_eq!(route(&m, "POST", "/v1/op1:undo"), None);
    }

    #[test]
    fn verb_on_literals_wildcards_and_double_wildcards() {
        let m = matcher(&[("POST", "/v1/books:batchGet"), ("POST", "/v1/{path=**}:undelete"), ("POST", "/v1/*/x:go")]);
        assert_eq!(route(&m, "POST", "/v1/books:batchGet"), Some("/v1/books:batchGet"));
        assert_eq!(get(&m, "POST", "/v1/a/b:undelete").unwrap().1, vec!["path=a/b"]);
        assert_eq!(get(&m, "POST", "/v1:undelete").unwrap().1, vec!["path="]);
        assert_eq!(route(&m, "POST", "/v1/q/x:go"), Some("/v1/*/x:go"));
        assert_eq!(route(&m, "POST", "/v1/books:batchget"), None, "verbs are case-sensitive");
    }

    #[test]
    fn unregistered_verb_stays_part_of_the_segment() {
        let m = matcher(&[("GET", "/v1/{name}"), ("GET", "/v1/files/{file}")]);
        assert_eq!(get(&m, "GET", "/v1/a:b").unwrap().1, vec!["name=a:b"]);
        assert_eq!(get(&m, "GET", "/v1/files/x:y:z").unwrap().1, vec!["file=x:y:z"]);
    }

    #[test]
    fn verb_registered_by_another_template_is_split_off_everywhere() {
        // As in Envoy: the verb set is global, so `/v1/x:cancel` has the verb `cancel` and no
        // longer matches `/v1/{name}`.
        let m = matcher(&[("GET", "/v1/{name}"), ("POST", "/ops/{op}:cancel")]);
        assert_eq!(route(&m, "GET", "/v1/x:cancel"), None);
        assert_eq!(get(&m, "GET", "/v1/x:other").unwrap().1, vec!["name=x:other"]);
    }

    #[test]
    fn match_unregistered_custom_verb_splits_any_verb() {
        let options = MatcherOptions { match_unregistered_custom_verb: true, ..MatcherOptions::default() };
        let m = matcher_with(options, &[("GET", "/v1/{name}"), ("GET", "/v1/{name}:get")]);
        assert_eq!(route(&m, "GET", "/v1/a:zzz"), None, "`zzz` is a verb no template has");
        assert_eq!(get(&m, "GET", "/v1/a:get"), Some(("/v1/{name}:get", vec!["name=a".into()])));
        assert_eq!(get(&m, "GET", "/v1/a"), Some(("/v1/{name}", vec!["name=a".into()])));
    }

    #[test]
    fn trailing_colon_is_never_a_verb() {
        for unregistered in [false, true] {
            let options = MatcherOptions { match_unregistered_custom_verb: unregistered, ..MatcherOptions::default() };
            let m = matcher_with(options, &[("GET", "/v1/{name}"), ("GET", "/v2/{name}:x")]);
            assert_eq!(get(&m, "GET", "/v1/a:").unwrap().1, vec!["name=a:"], "{unregistered}");
            assert_eq!(get(&m, "GET", "/v1/a:x:").unwrap().1, vec!["name=a:x:"], "{unregistered}");
            assert_eq!(get(&m, "GET", "/v1/:").unwrap().1, vec!["name=:"], "{unregistered}");
            assert_eq!(route(&m, "GET", "/v2/a:"), None, "{unregistered}");
        }
    }

    #[test]
    fn colon_in_a_middle_segment_is_not_a_verb() {
        let m = matcher(&[("GET", "/v1/{x}/b"), ("POST", "/z:cancel")]);
        assert_eq!(get(&m, "GET", "/v1/a:cancel/b").unwrap().1, vec!["x=a:cancel"]);
        let options = MatcherOptions { match_unregistered_custom_verb: true, ..MatcherOptions::default() };
        let m = matcher_with(options, &[("GET", "/v1/{x}/b")]);
        assert_eq!(get(&m, "GET", "/v1/a:q/b").unwrap().1, vec!["x=a:q"]);
    }

    #[test]
    fn only_the_last_colon_separates_the_verb() {
        let m = matcher(&[("POST", "/v1/{name}:cancel"), ("POST", "/v1/a:b:cancel")]);
        assert_eq!(get(&m, "POST", "/v1/x:y:cancel").unwrap().1, vec!["name=x:y"]);
        assert_eq!(route(&m, "POST", "/v1/a:b:cancel"), Some("/v1/a:b:cancel"));
    }

    #[test]
    fn empty_segment_before_a_verb() {
        // The slash before the verb is a trailing slash once the verb is split off: dropped.
        let m = matcher(&[("POST", "/v1/{name}:cancel"), ("POST", "/{x}:run"), ("POST", "/v1:cancel")]);
        assert_eq!(route(&m, "POST", "/v1/:cancel"), Some("/v1:cancel"));
        assert_eq!(route(&m, "POST", "/:run"), None);
        assert_eq!(route(&m, "POST", "/v1//:cancel"), Some("/v1:cancel"));
        assert_eq!(get(&m, "POST", "/v1/a/:cancel").unwrap().1, vec!["name=a"]);
    }

    #[test]
    fn escaped_colon_is_data_not_a_verb_separator() {
        let m = matcher(&[("POST", "/v1/{name}:cancel"), ("GET", "/v1/{name}")]);
        assert_eq!(get(&m, "GET", "/v1/a%3Acancel").unwrap().1, vec!["name=a:cancel"]);
        // Verbs are compared raw: an escaped verb is not the registered one.
        assert_eq!(get(&m, "GET", "/v1/a:c%61ncel").unwrap().1, vec!["name=a:cancel"]);
        assert_eq!(route(&m, "POST", "/v1/a:c%61ncel"), None);
    }

    // ---- percent-decoding of bindings ----

    #[test]
    fn single_segment_variables_are_fully_decoded_under_every_spec() {
        for s in [AllCharactersExceptReserved, AllCharactersExceptSlash, AllCharacters] {
            let m = matcher_with(spec(s), &[("GET", "/v1/{name}"), ("GET", "/v2/{name=lit%2Fx}")]);
            assert_eq!(binding(&m, "GET", "/v1/a%2Fb%3A%20c%25"), b"a/b: c%", "{s:?}");
            assert_eq!(binding(&m, "GET", "/v1/%2f"), b"/", "{s:?}");
            assert_eq!(binding(&m, "GET", "/v2/lit%2Fx"), b"lit/x", "{s:?}");
        }
    }

    #[test]
    fn double_wildcard_variables_follow_the_spec() {
        let path = "/v1/a%2Fb/c%3Ad%20e/f%2fg";
        let cases = [
            (AllCharactersExceptReserved, "a%2Fb/c%3Ad e/f%2fg"),
            (AllCharactersExceptSlash, "a%2Fb/c:d e/f%2fg"),
            (AllCharacters, "a/b/c:d e/f/g"),
        ];
        for (s, expected) in cases {
            let m = matcher_with(spec(s), &[("GET", "/v1/{name=**}")]);
            assert_eq!(String::from_utf8(binding(&m, "GET", path)).unwrap(), expected, "{s:?}");
        }
    }

    #[test]
    fn double_wildcard_matching_one_segment_is_still_multi_segment() {
        let m = matcher_with(spec(AllCharactersExceptReserved), &[("GET", "/v1/{name=**}")]);
        assert_eq!(binding(&m, "GET", "/v1/a%2Fb%20c"), b"a%2Fb c");
    }

    #[test]
    fn fixed_multi_segment_variables_follow_the_spec() {
        let cases = [
            (AllCharactersExceptReserved, "shelves/a%2Fb%2B c"),
            (AllCharactersExceptSlash, "shelves/a%2Fb+ c"),
            (AllCharacters, "shelves/a/b+ c"),
        ];
        for (s, expected) in cases {
            let m = matcher_with(spec(s), &[("GET", "/v1/{name=shelves/*}")]);
            assert_eq!(String::from_utf8(binding(&m, "GET", "/v1/shelves/a%2Fb%2B%20c")).unwrap(), expected, "{s:?}");
        }
    }

    #[test]
    fn escaped_slash_never_splits_a_segment() {
        let m = matcher(&[("GET", "/v1/*/*"), ("GET", "/v1/{one}")]);
        assert_eq!(get(&m, "GET", "/v1/a%2Fb"), Some(("/v1/{one}", vec!["one=a/b".into()])));
        assert_eq!(route(&m, "GET", "/v1/a/b"), Some("/v1/*/*"));
    }

    #[test]
    fn literals_are_compared_with_the_raw_segment() {
        let m = matcher(&[("GET", "/v1/books"), ("GET", "/v1/a%20b")]);
        assert_eq!(route(&m, "GET", "/v1/b%6Foks"), None);
        assert_eq!(route(&m, "GET", "/v1/a%20b"), Some("/v1/a%20b"));
        assert_eq!(route(&m, "GET", "/v1/a%2520b"), None);
        assert_eq!(route(&m, "GET", "/v1/a b"), None);
    }

    #[test]
    fn invalid_utf8_comes_out_as_bytes() {
        let m = matcher(&[("GET", "/v1/{name}"), ("GET", "/v2/{p=**}")]);
        assert_eq!(binding(&m, "GET", "/v1/%FF%C3"), [0xFF, 0xC3]);
        assert_eq!(binding(&m, "GET", "/v2/%FE/x"), [0xFE, b'/', b'x']);
        assert_eq!(binding(&m, "GET", "/v1/%00"), [0]);
    }

    #[test]
    fn malformed_escapes_are_kept() {
        let m = matcher(&[("GET", "/v1/{name}")]);
        assert_eq!(binding(&m, "GET", "/v1/100%"), b"100%");
        assert_eq!(binding(&m, "GET", "/v1/%zz%4"), b"%zz%4");
    }

    // ---- root, empty segments, odd paths ----

    #[test]
    fn root_path_matches_the_root_template() {
        let m = matcher(&[("GET", "/"), ("GET", "/*")]);
        assert_eq!(route(&m, "GET", "/"), Some("/"));
        assert_eq!(route(&m, "GET", ""), Some("/"));
        assert_eq!(route(&m, "GET", "/?x=1"), Some("/"));
        assert_eq!(route(&m, "GET", "/a"), Some("/*"));
        assert_eq!(route(&m, "POST", "/"), None);
    }

    #[test]
    fn root_path_does_not_match_a_single_wildcard() {
        let m = matcher(&[("GET", "/{x}")]);
        assert_eq!(route(&m, "GET", "/"), None);
        assert_eq!(route(&m, "GET", ""), None);
    }

    #[test]
    fn root_path_matches_a_lone_double_wildcard_with_nothing() {
        let m = matcher(&[("GET", "/{p=**}")]);
        assert_eq!(get(&m, "GET", "/").unwrap().1, vec!["p="]);
        assert_eq!(get(&m, "GET", "/a/b").unwrap().1, vec!["p=a/b"]);
        let m = matcher(&[("GET", "/"), ("GET", "/{p=**}")]);
        assert_eq!(route(&m, "GET", "/"), Some("/"));
    }

    #[test]
    fn root_template_matches_nothing_else() {
        let m = matcher(&[("GET", "/")]);
        for path in ["/a", "/:x", "x", "/a/"] {
            assert_eq!(route(&m, "GET", path), None, "{path:?}");
        }
        // Trailing slashes are dropped: only the root is left.
        for path in ["/?", "//", "///"] {
            assert_eq!(route(&m, "GET", path), Some("/"), "{path:?}");
        }
    }

    #[test]
    fn trailing_slashes_are_dropped_after_the_verb_is_split_off() {
        // As Envoy: `/v1/things/` is `/v1/things`, however many slashes.
        let m = matcher(&[("GET", "/v1/things"), ("GET", "/v1/things/{id}")]);
        assert_eq!(route(&m, "GET", "/v1/things"), Some("/v1/things"));
        assert_eq!(route(&m, "GET", "/v1/things/"), Some("/v1/things"));
        assert_eq!(route(&m, "GET", "/v1/things//"), Some("/v1/things"));
        assert_eq!(get(&m, "GET", "/v1/things/7/"), Some(("/v1/things/{id}", vec!["id=7".into()])));
        let m = matcher(&[("GET", "/v1/{p=**}")]);
        assert_eq!(get(&m, "GET", "/v1/things/").unwrap().1, vec!["p=things"]);
        assert_eq!(get(&m, "GET", "/v1/").unwrap().1, vec!["p="]);
        // A verb is split off first: after a trailing slash there is none (the last segment
        // is `1:cancel`), and a slash before it is dropped like any trailing slash.
        let m = matcher(&[("POST", "/v1/things/{id}:cancel"), ("GET", "/v1/things/{id}")]);
        assert_eq!(route(&m, "POST", "/v1/things/1:cancel/"), None);
        assert_eq!(route(&m, "POST", "/v1/things/1:cancel//"), None);
        assert_eq!(get(&m, "POST", "/v1/things/1/:cancel"), Some(("/v1/things/{id}:cancel", vec!["id=1".into()])));
        assert_eq!(get(&m, "GET", "/v1/things/1:cancel/"), Some(("/v1/things/{id}", vec!["id=1:cancel".into()])));
    }

    #[test]
    fn empty_middle_segments_match_only_wildcards() {
        let m = matcher(&[("GET", "/a/{x}/b"), ("GET", "/c/d/e")]);
        assert_eq!(get(&m, "GET", "/a//b").unwrap().1, vec!["x="]);
        assert_eq!(route(&m, "GET", "/c//d/e"), None);
        assert_eq!(route(&m, "GET", "//c/d/e"), None);
    }

    #[test]
    fn query_string_is_not_part_of_matching() {
        let m = matcher(&[("GET", "/v1/{name}"), ("POST", "/v1/{name}:run")]);
        assert_eq!(get(&m, "GET", "/v1/a?x=1&y=/b:c").unwrap().1, vec!["name=a"]);
        assert_eq!(get(&m, "POST", "/v1/a:run?q").unwrap().1, vec!["name=a"]);
        assert_eq!(get(&m, "GET", "/v1/a?").unwrap().1, vec!["name=a"]);
    }

    #[test]
    fn paths_not_starting_with_a_slash_match_nothing() {
        let m = matcher(&[("GET", "/{p=**}"), ("GET", "/")]);
        for path in ["a", "*", "v1/a", "http://host/a", "a/b?x=/a"] {
            assert_eq!(route(&m, "GET", path), None, "{path:?}");
        }
        // Only a query: the path itself is empty, like "/".
        assert_eq!(route(&m, "GET", "?x=/a"), Some("/"));
    }

    // ---- size and cost ----

    #[test]
    fn path_of_64k_segments_against_a_double_wildcard() {
        let m = matcher(&[("GET", "/v1/{p=**}/end"), ("GET", "/v1/{q=**}")]);
        let body = "/seg".repeat(64_000);
        let found = m.lookup("GET", &format!("/v1{body}/end")).unwrap();
        assert_eq!(*found.value, "/v1/{p=**}/end");
        assert_eq!(found.bindings[0].1.len(), body.len() - 1);
        let found = m.lookup("GET", &format!("/v1{body}")).unwrap();
        assert_eq!(*found.value, "/v1/{q=**}");
        assert!(found.bindings[0].1.starts_with(b"seg/seg/"));
        // Empty segments are segments too; trailing ones are dropped.
        let slashes = "/".repeat(64_000);
        assert_eq!(m.lookup("GET", &format!("/v1{slashes}x")).unwrap().bindings[0].1.len(), 64_000);
        assert_eq!(m.lookup("GET", &format!("/v1{slashes}")).unwrap().bindings[0].1.len(), 0);
    }

    #[test]
    fn path_of_64k_segments_against_many_literal_templates() {
        let mut b = PathMatcherBuilder::new();
        let mut templates = Vec::new();
        for depth in 1..=60 {
            templates.push(format!("/a{}", "/a".repeat(depth)));
            templates.push(format!("/a{}/{{x}}/b", "/*".repeat(depth)));
            templates.push(format!("/a{}/**/c/d", "/a".repeat(depth)));
        }
        for (i, text) in templates.iter().enumerate() {
            b.register("GET", &template(text), i).unwrap();
        }
        let m = b.build(MatcherOptions::default());
        let long = "/a".repeat(64_000);
        assert!(m.lookup("GET", &long).is_none());
        assert!(m.lookup("GET", &format!("{long}/b")).is_none());
        let found = m.lookup("GET", &format!("{long}/c/d")).unwrap();
        assert_eq!(templates[*found.value], format!("/a{}/**/c/d", "/a".repeat(60)));
        assert_eq!(
            m.lookup("GET", &"/a".repeat(61)).map(|f| templates[*f.value].clone()),
            Some(templates[177].clone())
        );
        // Repeated lookups stay fast (a quadratic matcher would take minutes here).
        for _ in 0..20 {
            assert!(m.lookup("GET", &long).is_none());
        }
    }

    #[test]
    fn path_of_64k_colons_and_verbs() {
        let options = MatcherOptions { match_unregistered_custom_verb: true, ..MatcherOptions::default() };
        let m = matcher_with(options, &[("GET", "/{p=**}:v"), ("GET", "/{q}")]);
        let colons = ":".repeat(64_000);
        assert_eq!(route(&m, "GET", &format!("/{colons}v")), Some("/{p=**}:v"));
        assert_eq!(route(&m, "GET", &format!("/{colons}")), Some("/{q}"));
    }

    #[test]
    fn options_are_kept() {
        let options = MatcherOptions { url_unescape_spec: AllCharacters, match_unregistered_custom_verb: true };
        assert_eq!(matcher_with(options, &[]).options(), options);
        assert_eq!(MatcherOptions::default().url_unescape_spec, AllCharactersExceptReserved);
        assert!(!MatcherOptions::default().match_unregistered_custom_verb);
    }
}
