//! Arbitrary strings → `template::parse`; valid templates are registered in a
//! `PathMatcherBuilder`, then arbitrary paths are looked up. Checks beyond "no panic":
//! - a parsed template prints (`Display`) to text that parses back to the same template;
//! - a lookup's bindings are exactly the variables of the template it returns;
//! - when no registration was a duplicate, a path built from each registered template (its
//!   literals, `x` for `*`, zero or two segments for `**`, its verb) finds a template
//!   ("every template can be matched", template.rs).
//!
//! Input (lines): `OPTIONS`, then templates `METHOD TEMPLATE` (or just `TEMPLATE`: GET) up to an
//! empty line, then lookups `METHOD PATH`. OPTIONS byte 0: bit 0 match_unregistered_custom_verb,
//! bits 1-2 url_unescape_spec; all of it seeds the `**` choices.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use json2grpc::core::route::path_matcher::{MatcherOptions, PathMatcherBuilder, ANY_METHOD};
use json2grpc::core::route::percent::UrlUnescapeSpec;
use json2grpc::core::route::template::{parse, PathTemplate, Segment};
use json2grpc_fuzz::Rng;
use libfuzzer_sys::fuzz_target;

fn method_and_text(line: &str) -> (&str, &str) {
    match line.split_once(' ') {
        Some((method, text)) => (method, text),
        None => ("GET", line),
    }
}

fuzz_target!(init: json2grpc_fuzz::init(), |data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let options = lines.next().unwrap_or("").as_bytes();
    let flags = options.first().copied().unwrap_or(0);
    let matcher_options = MatcherOptions {
        match_unregistered_custom_verb: flags & 1 != 0,
        url_unescape_spec: match (flags >> 1) & 3 {
            0 => UrlUnescapeSpec::AllCharactersExceptReserved,
            1 => UrlUnescapeSpec::AllCharactersExceptSlash,
            _ => UrlUnescapeSpec::AllCharacters,
        },
    };
    let mut rng = Rng::new(options);

    let mut builder = PathMatcherBuilder::new();
    let mut registered: Vec<(String, PathTemplate)> = Vec::new();
    let mut duplicates = false;
    for line in lines.by_ref().take(16) {
        if line.is_empty() {
            break;
        }
        let (method, template_text) = method_and_text(line);
        let Ok(template) = parse(template_text) else { continue };
        let printed = template.to_string();
        match parse(&printed) {
            Ok(again) => assert!(
                again == template,
                "{template_text:?} prints as {printed:?}, which parses differently:\n{template:?}\n{again:?}"
            ),
            Err(e) => panic!("{template_text:?} prints as {printed:?}, which does not parse: {e}"),
        }
        if builder.register(method, &template, registered.len()).is_err() {
            duplicates = true;
        } else {
            registered.push((method.to_string(), template));
        }
    }
    let matcher = builder.build(matcher_options);

    let check = |method: &str, path: &str| -> bool {
        let Some(found) = matcher.lookup(method, path) else { return false };
        let (_, template) = &registered[*found.value];
        assert_eq!(
            found.bindings.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..template.variables.len()).collect::<Vec<_>>(),
            "{method} {path:?} matched {template} with bindings {:?}",
            found.bindings
        );
        true
    };

    for line in lines.take(16) {
        let (method, path) = method_and_text(line);
        check(method, path);
    }

    if duplicates || matcher_options.match_unregistered_custom_verb {
        return;
    }
    for (method, template) in &registered {
        let mut parts: Vec<String> = Vec::new();
        for segment in &template.segments {
            match segment {
                Segment::Literal(text) => parts.push(text.clone()),
                Segment::Wildcard => parts.push("x".into()),
                Segment::DoubleWildcard => {
                    if rng.next() % 2 == 1 {
                        parts.push("y".into());
                        parts.push("z".into());
                    }
                }
            }
        }
        // A `?` (literal or verb) would start the query of the built path.
        if parts.iter().chain(&template.verb).any(|p| p.contains('?')) {
            continue;
        }
        // Known finding (reported): a last-segment literal with ':' inside a variable
        // (`/{x=a:b}`) is unreachable once another template registers the verb after it.
        if template.verb.is_none()
            && parts.last().is_some_and(|p| p.contains(':'))
            && std::env::var_os("JSON2GRPC_FUZZ_NO_GUARDS").is_none()
        {
            continue;
        }
        let mut path = format!("/{}", parts.join("/"));
        if let Some(verb) = &template.verb {
            path.push(':');
            path.push_str(verb);
        }
        let method = if method == ANY_METHOD { "GET" } else { method.as_str() };
        assert!(
            check(method, &path),
            "{method} {path:?} built from the registered template {template} matches nothing"
        );
    }
});
