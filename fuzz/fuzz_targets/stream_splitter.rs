//! Arbitrary bytes as a client-streaming request body → `json_stream::ElementSplitter` (JSON
//! array or NDJSON framing, a small `max_element`, a `max_depth`), fed one byte at a time, in
//! one piece and in random chunks. The splitter only delimits elements (the codec parses each
//! one later), so the checks are about structure and resources, not JSON validity:
//! - resources: no element handed to `emit` is longer than `max_element`, and `buffered()`
//!   never exceeds it, after every `push` (an error included): memory is bounded by the
//!   largest element, whatever the upload;
//! - chunking: the three feeds give the same elements, the same element count and the same
//!   outcome (Ok, or the same HTTP status and message);
//! - elements are the input's own bytes: fed byte by byte, each element is emitted by the byte
//!   that ends it (a container's closing bracket or a string's closing quote, or the delimiter
//!   after a bare scalar: at most one per byte) and is exactly the input bytes before it, after
//!   the previous element;
//! - JSON array: each element is one balanced unit (a container whose brackets, outside
//!   strings, first return to depth 0 at its last byte, and nest at most `max_depth - 1`
//!   levels: the stream's array is one; a string from quote to quote; a scalar without
//!   delimiter or whitespace);
//! - NDJSON: the elements are exactly the input's lines (split at `\n`), trimmed, empty ones
//!   skipped; no element contains `\n`; a line (untrimmed) longer than `max_element` is a 413;
//! - differential with serde_json (JSON array): when serde_json parses the input as an array
//!   whose items are each at most `max_element` bytes and nest at most `max_depth - 1` levels,
//!   the splitter succeeds and its elements are exactly the items' texts; conversely, when the
//!   splitter succeeds on a body that is not blank and has no form feed (which the splitter
//!   takes as whitespace and JSON does not) and every element parses, serde_json parses the
//!   whole body as an array of as many items, equal to the elements.
//!
//! Input: `[framing_depth, max_hi, max_lo, seed, body…]`: bit 0 of byte 0 picks NDJSON, the
//! other bits `max_depth` (1..=100); `max_element` is 1..=4096; `seed` (with the rest) seeds
//! the random chunk sizes.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use json2grpc::core::request::json_stream::{ElementSplitter, Framing};
use json2grpc_fuzz::{chunks, Rng};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

/// What a feed produced.
#[derive(Debug, PartialEq)]
struct Split {
    elements: Vec<Vec<u8>>,
    count: u64,
    /// Ok, or the error's HTTP status and message.
    outcome: Result<(), (u16, String)>,
}

struct Limits {
    framing: Framing,
    max_element: usize,
    max_depth: u32,
}

/// Feeds `pieces`; after each push, `after_push(bytes fed so far, elements emitted by it)`.
fn split(limits: &Limits, pieces: &[&[u8]], mut after_push: impl FnMut(usize, &[Vec<u8>])) -> Split {
    let mut s = ElementSplitter::new(limits.framing, limits.max_element, limits.max_depth);
    let mut elements: Vec<Vec<u8>> = Vec::new();
    let mut fed = 0;
    let check = |s: &ElementSplitter, elements: &[Vec<u8>]| {
        assert!(
            s.buffered() <= limits.max_element,
            "buffered {} bytes, max_element {}",
            s.buffered(),
            limits.max_element
        );
        if let Some(e) = elements.iter().find(|e| e.len() > limits.max_element) {
            panic!("emitted an element of {} bytes, max_element {}: {:?}", e.len(), limits.max_element, lossy(e));
        }
    };
    let mut outcome = Ok(());
    for piece in pieces {
        let before = elements.len();
        let result = s.push(piece, &mut |e| {
            elements.push(e.to_vec());
            Ok(())
        });
        fed += piece.len();
        check(&s, &elements);
        after_push(fed, &elements[before..]);
        if let Err(e) = result {
            outcome = Err((e.http_status, e.message.clone()));
            break;
        }
    }
    if outcome.is_ok() {
        let before = elements.len();
        outcome = s
            .finish(&mut |e| {
                elements.push(e.to_vec());
                Ok(())
            })
            .map_err(|e| (e.http_status, e.message.clone()));
        check(&s, &elements);
        after_push(fed, &elements[before..]);
    }
    assert_eq!(s.count(), elements.len() as u64, "count() is not the number of elements emitted");
    Split { count: s.count(), elements, outcome }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fuzz_target!(init: json2grpc_fuzz::init(), |data: &[u8]| {
    let [flags, max_hi, max_lo, _seed, body @ ..] = data else { return };
    let limits = Limits {
        framing: if flags & 1 == 0 { Framing::JsonArray } else { Framing::NewlineDelimited },
        max_element: 1 + (usize::from(*max_hi) << 8 | usize::from(*max_lo)) % 4096,
        max_depth: 1 + u32::from(flags >> 1) % 100,
    };

    // Byte by byte: where each element ends is known exactly.
    let mut end_of_last = 0;
    let bytewise: Vec<&[u8]> = body.chunks(1).collect();
    let one_by_one = split(&limits, &bytewise, |fed, new| {
        assert!(new.len() <= 1, "one byte completed {} elements: {:?}", new.len(), new);
        let Some(e) = new.first() else { return };
        // The element ends at the byte just fed (a closing bracket or quote), or just before
        // it (a scalar ended by a delimiter; at the end of the body, `finish`).
        let ends_at = [fed, fed - 1]
            .into_iter()
            .filter(|&end| end >= e.len() && end - e.len() >= end_of_last)
            .find(|&end| body[end - e.len()..end] == e[..]);
        match (ends_at, limits.framing) {
            (Some(end), Framing::JsonArray) => end_of_last = end,
            // NDJSON: checked against the lines below.
            (_, Framing::NewlineDelimited) => {}
            (None, Framing::JsonArray) => panic!(
                "element {:?} is not the input bytes ending at {fed} (after the previous element, at {end_of_last})",
                lossy(e)
            ),
        }
    });
    let whole = split(&limits, &[body], |_, _| {});
    assert_eq!(whole, one_by_one, "one piece and one byte at a time differ");
    let mut rng = Rng::new(data);
    let chunked = split(&limits, &chunks(body, &mut rng), |_, _| {});
    assert_eq!(chunked, one_by_one, "random chunks and one byte at a time differ");

    match limits.framing {
        Framing::NewlineDelimited => check_lines(&limits, body, &whole),
        Framing::JsonArray => {
            for e in &whole.elements {
                check_element(&limits, e);
            }
            differential(&limits, body, &whole);
        }
    }
});

/// NDJSON: the reference is the lines themselves.
fn check_lines(limits: &Limits, body: &[u8], split: &Split) {
    let mut expected = Vec::new();
    let mut outcome = Ok(());
    for line in body.split(|&b| b == b'\n') {
        if line.len() > limits.max_element {
            outcome = Err(413);
            break;
        }
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            expected.push(trimmed.to_vec());
        }
    }
    for e in &split.elements {
        assert!(!e.contains(&b'\n'), "NDJSON element with a newline: {:?}", lossy(e));
    }
    assert_eq!(split.elements, expected, "NDJSON elements are not the trimmed lines");
    assert_eq!(split.outcome.as_ref().map(|_| ()).map_err(|(status, _)| *status), outcome, "NDJSON outcome");
}

/// JSON array: one balanced unit, nested no deeper than the limit.
fn check_element(limits: &Limits, e: &[u8]) {
    let (&first, &last) = (e.first().unwrap_or_else(|| panic!("empty element")), e.last().unwrap());
    assert!(
        !first.is_ascii_whitespace() && !last.is_ascii_whitespace(),
        "element with whitespace around: {:?}",
        lossy(e)
    );
    match first {
        b'{' | b'[' => {
            let (mut depth, mut deepest, mut in_string, mut escaped) = (0u32, 0u32, false, false);
            for (i, &b) in e.iter().enumerate() {
                if in_string {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        deepest = deepest.max(depth);
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            assert_eq!(i, e.len() - 1, "element {:?} is balanced before its end", lossy(e));
                        }
                    }
                    _ => {}
                }
            }
            assert_eq!(depth, 0, "element {:?} is not balanced", lossy(e));
            assert!(
                deepest < limits.max_depth,
                "element {:?} nests {deepest} levels in a stream of max_depth {}",
                lossy(e),
                limits.max_depth
            );
        }
        b'"' => {
            assert!(e.len() >= 2 && last == b'"', "string element {:?} is not closed", lossy(e));
            let mut escaped = false;
            for (i, &b) in e.iter().enumerate().skip(1) {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => assert_eq!(i, e.len() - 1, "string element {:?} ends before its end", lossy(e)),
                    _ => {}
                }
            }
        }
        _ => assert!(
            !e.iter().any(|&b| b == b',' || b == b']' || b.is_ascii_whitespace()),
            "scalar element {:?} holds a delimiter",
            lossy(e)
        ),
    }
}

/// Nesting depth of a valid JSON text: brackets outside strings; 0 for a scalar.
fn nesting(text: &[u8]) -> u32 {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0u32, 0u32, false, false);
    for &b in text {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn differential(limits: &Limits, body: &[u8], split: &Split) {
    // serde_json → splitter.
    if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(body) {
        // Depth from the text: an item may be JSON that serde_json cannot hold in a Value
        // (`3e3311`: number out of range).
        let fits = items
            .iter()
            .all(|raw| raw.get().len() <= limits.max_element && nesting(raw.get().as_bytes()) < limits.max_depth);
        if fits {
            assert!(
                split.outcome.is_ok(),
                "serde_json reads an array of {} items within the limits, the splitter refuses it: {:?}",
                items.len(),
                split.outcome
            );
            let texts: Vec<&[u8]> = items.iter().map(|raw| raw.get().as_bytes()).collect();
            assert_eq!(
                split.elements.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                texts,
                "the splitter's elements are not serde_json's items"
            );
        }
    }
    // Splitter → serde_json.
    if split.outcome.is_err() || body.trim_ascii().is_empty() || body.contains(&0x0c) {
        return;
    }
    let Ok(values) =
        split.elements.iter().map(|e| serde_json::from_slice::<serde_json::Value>(e)).collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => {
            assert_eq!(items, values, "the splitter's elements are not serde_json's items")
        }
        Ok(other) => panic!("the splitter accepts a body serde_json reads as {other}"),
        Err(e) => panic!(
            "the splitter accepts a body whose every element is JSON, serde_json refuses it ({e}): {:?}",
            lossy(body)
        ),
    }
}
