//! Splits a streamed request body into the JSON values of a client stream, as the bytes
//! arrive: the elements of a top-level JSON array, or the lines of NDJSON. Each element is
//! handed out as soon as its last byte arrived, so a long upload is never held whole: memory is
//! bounded by the largest element.
use crate::core::error::{Error, Result};

/// How the elements are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `[ {…}, {…} ]`
    JsonArray,
    /// One JSON value per line (`application/x-ndjson`, `application/jsonl`, …).
    NewlineDelimited,
}

impl Framing {
    /// NDJSON when the request's content-type says so, else a JSON array.
    pub fn from_content_type(content_type: Option<&str>) -> Framing {
        let ct = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match ct.as_str() {
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/json-seq" => Framing::NewlineDelimited,
            _ => Framing::JsonArray,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[` or `,`: an element (or `]` right after `[`).
    BeforeElement { first: bool },
    /// Inside an element.
    InElement,
    /// After an element: `,` or `]`.
    AfterElement,
    /// After the closing `]`: only whitespace may follow.
    Done,
}

/// The incremental splitter.
#[derive(Debug)]
pub struct ElementSplitter {
    framing: Framing,
    state: State,
    /// Bytes of the element in progress.
    element: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The element is a bare scalar (number, literal): it ends at a delimiter.
    scalar: bool,
    max_element: usize,
    max_depth: u32,
    elements: u64,
}

impl ElementSplitter {
    pub fn new(framing: Framing, max_element: usize, max_depth: u32) -> Self {
        ElementSplitter {
            framing,
            state: State::Start,
            element: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: false,
            max_element,
            max_depth,
            elements: 0,
        }
    }

    /// Elements completed so far.
    pub fn count(&self) -> u64 {
        self.elements
    }

    /// Bytes held for the element in progress.
    pub fn buffered(&self) -> usize {
        self.element.len()
    }

    /// Feeds bytes; calls `emit` with each element completed by them.
    pub fn push(&mut self, data: &[u8], emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        match self.framing {
            Framing::NewlineDelimited => self.push_lines(data, emit),
            Framing::JsonArray => {
                for &b in data {
                    self.push_byte(b, emit)?;
                }
                Ok(())
            }
        }
    }

    fn push_lines(&mut self, data: &[u8], emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            self.append(line)?;
            self.emit_line(emit)?;
            rest = tail.get(1..).unwrap_or(&[]);
        }
        self.append(rest)
    }

    fn emit_line(&mut self, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let line = std::mem::take(&mut self.element);
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            self.elements = self.elements.saturating_add(1);
            emit(trimmed)?;
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.element.len().saturating_add(bytes.len()) > self.max_element {
            return Err(Error::payload_too_large(format!(
                "a stream element exceeds max_request_body_size ({} bytes)",
                self.max_element
            )));
        }
        self.element.extend_from_slice(bytes);
        Ok(())
    }

    fn push_byte(&mut self, b: u8, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let unexpected = |what: &str| {
            Error::bad_request(format!(
                "invalid JSON body: expected {what}, found {:?} (a client-streaming method takes a JSON array)",
                char::from(b)
            ))
        };
        match self.state {
            State::Start => match b {
                b'[' => self.state = State::BeforeElement { first: true },
                _ if b.is_ascii_whitespace() => {}
                _ => return Err(unexpected("'['")),
            },
            State::BeforeElement { first } => match b {
                _ if b.is_ascii_whitespace() => {}
                b']' if first => self.state = State::Done,
                b',' | b']' => return Err(unexpected("a value")),
                _ => {
                    self.state = State::InElement;
                    self.scalar = !matches!(b, b'{' | b'[' | b'"');
                    self.depth = 0;
                    return self.element_byte(b, emit);
                }
            },
            State::InElement => return self.element_byte(b, emit),
            State::AfterElement => match b {
                b',' => self.state = State::BeforeElement { first: false },
                b']' => self.state = State::Done,
                _ if b.is_ascii_whitespace() => {}
                _ => return Err(unexpected("',' or ']'")),
            },
            State::Done => {
                if !b.is_ascii_whitespace() {
                    return Err(unexpected("the end of the body after ']'"));
                }
            }
        }
        Ok(())
    }

    fn element_byte(&mut self, b: u8, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if self.scalar {
            // A number or literal ends at the next delimiter, which belongs to the array.
            if b == b',' || b == b']' || b.is_ascii_whitespace() {
                self.complete(emit)?;
                self.state = State::AfterElement;
                return self.push_byte(b, emit);
            }
            return self.append(&[b]);
        }
        self.append(&[b])?;
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 0 {
                    self.complete(emit)?;
                }
            }
            return Ok(());
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                self.depth = self.depth.saturating_add(1);
                // +1: the enclosing array of the stream itself.
                if self.depth.saturating_add(1) > self.max_depth {
                    return Err(Error::bad_request(format!(
                        "invalid JSON body: nested deeper than {} levels",
                        self.max_depth
                    )));
                }
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.complete(emit)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn complete(&mut self, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let element = std::mem::take(&mut self.element);
        self.state = State::AfterElement;
        self.elements = self.elements.saturating_add(1);
        emit(&element)
    }

    /// The end of the body: the array must be closed (NDJSON: a last line without newline is
    /// an element).
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        match self.framing {
            Framing::NewlineDelimited => self.emit_line(emit),
            Framing::JsonArray => match self.state {
                State::Done => Ok(()),
                // An empty body is an empty stream.
                State::Start => Ok(()),
                State::InElement if self.scalar => {
                    self.complete(emit)?;
                    Err(Error::bad_request("invalid JSON body: the array is not closed with ']'"))
                }
                _ => Err(Error::bad_request("invalid JSON body: the array is not closed with ']'")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn split(framing: Framing, body: &[u8], chunk: usize) -> Result<Vec<String>> {
        let mut s = ElementSplitter::new(framing, 1 << 20, 100);
        let mut out = Vec::new();
        let mut emit = |e: &[u8]| {
            out.push(String::from_utf8(e.to_vec()).unwrap());
            Ok(())
        };
        for piece in body.chunks(chunk.max(1)) {
            s.push(piece, &mut emit)?;
        }
        s.finish(&mut emit)?;
        Ok(out)
    }

    #[test]
    fn splits_arrays_at_any_chunk_boundary() {
        let body = br#" [ {"a": "x,]}\"{"}, {"b": [1, {"c": 2}]} ,"s\"tr", 12.5e3, true, null ] "#;
        let expected = vec![r#"{"a": "x,]}\"{"}"#, r#"{"b": [1, {"c": 2}]}"#, r#""s\"tr""#, "12.5e3", "true", "null"];
        for chunk in 1..body.len() {
            assert_eq!(split(Framing::JsonArray, body, chunk).unwrap(), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn empty_streams() {
        assert!(split(Framing::JsonArray, b"[]", 1).unwrap().is_empty());
        assert!(split(Framing::JsonArray, b"  [ \n ]  ", 2).unwrap().is_empty());
        assert!(split(Framing::JsonArray, b"", 1).unwrap().is_empty());
        assert!(split(Framing::NewlineDelimited, b"\n\n", 1).unwrap().is_empty());
    }

    #[test]
    fn elements_are_emitted_as_soon_as_complete() {
        let mut s = ElementSplitter::new(Framing::JsonArray, 1 << 20, 100);
        let mut seen = 0;
        s.push(br#"[{"a":1},{"b""#, &mut |_| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(s.buffered(), 4);
    }

    #[test]
    fn malformed_arrays_are_rejected() {
        for body in [&b"{}"[..], b"[{},]", b"[,{}]", b"[{} {}]", b"[{}", b"[{}] x", b"[{\"a\":1}", b"[1", b"]"] {
            let e = split(Framing::JsonArray, body, 3).unwrap_err();
            assert_eq!(e.http_status, 400, "{}", String::from_utf8_lossy(body));
        }
        let e = split(Framing::JsonArray, b"{\"a\": 1}", 100).unwrap_err();
        assert!(e.message.contains("JSON array"), "{e}");
    }

    #[test]
    fn ndjson_lines() {
        let body = b"{\"a\":1}\n\n  {\"b\":\"x\\ny\"}  \r\n{\"c\":3}";
        for chunk in 1..body.len() {
            assert_eq!(
                split(Framing::NewlineDelimited, body, chunk).unwrap(),
                vec!["{\"a\":1}", "{\"b\":\"x\\ny\"}", "{\"c\":3}"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn limits() {
        let mut s = ElementSplitter::new(Framing::JsonArray, 8, 100);
        let e = s.push(br#"[{"a":"123456789"}]"#, &mut |_| Ok(())).unwrap_err();
        assert_eq!(e.http_status, 413);
        let mut s = ElementSplitter::new(Framing::JsonArray, 1 << 20, 3);
        assert!(s.push(b"[[[1]]]", &mut |_| Ok(())).is_ok());
        let mut s = ElementSplitter::new(Framing::JsonArray, 1 << 20, 3);
        assert!(s.push(b"[[[[1]]]]", &mut |_| Ok(())).is_err());
        // Deeply nested input never recurses: 100k levels are just counted.
        let deep = [vec![b'['; 100_000], vec![b']'; 100_000]].concat();
        let mut s = ElementSplitter::new(Framing::JsonArray, usize::MAX, u32::MAX);
        let mut n = 0;
        s.push(&deep, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn content_types() {
        assert_eq!(Framing::from_content_type(Some("application/x-ndjson; charset=utf-8")), Framing::NewlineDelimited);
        assert_eq!(Framing::from_content_type(Some("application/json")), Framing::JsonArray);
        assert_eq!(Framing::from_content_type(None), Framing::JsonArray);
    }
}
