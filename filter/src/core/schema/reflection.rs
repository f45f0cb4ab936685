//! gRPC server reflection (`grpc.reflection.v1`, or `v1alpha`) as a client: the request bodies
//! that gather the FileDescriptorProtos of some services and of everything they import, and the
//! reading of the answers, round by round, into one FileDescriptorSet.
//!
//! Host-free: the filter sends each body as one call (a client stream of request messages,
//! ended at once; the server answers each in order) and feeds back the answer's body.
//!
//! A reflection answer is input from the network: the total size of the files, their number and
//! the rounds are bounded, and a malformed answer is an error (never a panic); the caller keeps
//! its last good descriptors on any error.
// Hash maps rather than B-trees: B-tree code costs tens of KB of .wasm, and the set is sorted
// once at the end.
use std::collections::{HashMap, HashSet};

use crate::core::codec::wire::length_delimited;
use crate::core::codec::wire::{fields, LEN, VARINT};
use crate::core::codec::wire::{write_tag, write_varint};
use crate::core::error::{Error, Result};
use crate::core::response::frame::{encode_frame, FrameDecoder};

/// The reflection method of each version, newest first.
pub const PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The services a reflection server lists that are never transcoded.
const INFRASTRUCTURE: &[&str] =
    &["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "grpc.health.v1.Health"];

/// Bounds of one gathering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of the files gathered (and of one answer).
    pub max_bytes: usize,
    pub max_files: usize,
    /// Rounds of requests (each follows the imports found in the previous one).
    pub max_rounds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 16 * 1024 * 1024, max_files: 4096, max_rounds: 32 }
    }
}

/// Which services to gather.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// These (fully-qualified) services.
    Services(Vec<String>),
    /// Every service the server lists, except these (and reflection and health themselves).
    All { except: Vec<String> },
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this body (framed request messages) and feed the answer to [`Gathering::answer`].
    Send(Vec<u8>),
    /// Done: the services found and the FileDescriptorSet (files sorted by name).
    Done { services: Vec<String>, descriptor_set: Vec<u8> },
}

/// One gathering of descriptors from one server.
#[derive(Debug)]
pub struct Gathering {
    wanted: Wanted,
    limits: Limits,
    /// The services to transcode, once known (All: after the server listed them).
    services: Option<Vec<String>>,
    /// File name → FileDescriptorProto bytes.
    files: HashMap<String, Vec<u8>>,
    /// Imports of this round's files neither gathered nor asked for, each once (a file leaves
    /// it when it comes): a file's imports are looked at once, when it arrives (kept, and all
    /// looked at again every round, they were 519 MB natively for an answer of 8 million
    /// empty imports, and a lookup each per round).
    pending: HashSet<String>,
    /// File names asked for, found or not.
    asked: HashSet<String>,
    bytes: usize,
    rounds: u32,
}

impl Gathering {
    pub fn new(wanted: Wanted, limits: Limits) -> Gathering {
        let services = match &wanted {
            Wanted::Services(s) => Some(s.clone()),
            Wanted::All { .. } => None,
        };
        Gathering {
            wanted,
            limits,
            services,
            files: HashMap::new(),
            pending: HashSet::new(),
            asked: HashSet::new(),
            bytes: 0,
            rounds: 0,
        }
    }

    /// The first body: the files defining the wanted services, or the list of services.
    pub fn start(&mut self) -> Result<Step> {
        self.rounds = 1;
        match &self.services {
            Some(services) => Ok(Step::Send(self.symbol_requests(services)?)),
            None => Ok(Step::Send(request(7, "*")?)),
        }
    }

    /// Reads the answer to the last body: the next body, or the gathered set.
    pub fn answer(&mut self, body: &[u8]) -> Result<Step> {
        if body.len() > self.limits.max_bytes {
            return Err(too_large(self.limits.max_bytes));
        }
        let max_frame = u32::try_from(self.limits.max_bytes).unwrap_or(u32::MAX);
        let mut decoder = FrameDecoder::new(max_frame, None);
        decoder.push(body);
        let mut listed = None;
        while let Some(message) = decoder.next_frame()? {
            match read_response(&message)? {
                Response::Files(files) => {
                    for file in files {
                        self.add_file(file)?;
                    }
                }
                Response::Services(names) => listed = Some(names),
                Response::Error { code, message, symbol } => {
                    // A wanted service the server does not know is an error; an import it
                    // cannot give shows when the set does not link.
                    if let Some(service) = symbol {
                        return Err(Error::new(
                            crate::core::response::status::Code::Unavailable,
                            format!("reflection does not know {service}: {message} (code {code})"),
                        ));
                    }
                }
            }
        }
        decoder.finish()?;
        if self.services.is_none() {
            let Wanted::All { except } = &self.wanted else { return Err(Error::internal("reflection state")) };
            let names = listed.ok_or_else(|| invalid("no list of services"))?;
            let services: Vec<String> =
                names.into_iter().filter(|s| !INFRASTRUCTURE.contains(&s.as_str()) && !except.contains(s)).collect();
            let body = self.symbol_requests(&services)?;
            self.services = Some(services);
            return self.next_round(body);
        }
        // Each missing name once, and no more of them than files may still come: a set of
        // more files is refused when they arrive anyway.
        let (files, asked) = (&self.files, &self.asked);
        let missing = self.pending.drain().filter(|name| !files.contains_key(name) && !asked.contains(name));
        let mut missing: Vec<String> = missing.collect();
        if missing.len() > self.limits.max_files.saturating_sub(self.files.len()) {
            return Err(invalid(&format!("more than {} files", self.limits.max_files)));
        }
        missing.sort_unstable();
        if missing.is_empty() {
            return Ok(self.done());
        }
        let mut body = Vec::new();
        for name in &missing {
            self.asked.insert(name.clone());
            body.extend_from_slice(&request(3, name)?);
        }
        self.next_round(body)
    }

    fn next_round(&mut self, body: Vec<u8>) -> Result<Step> {
        self.rounds = self.rounds.saturating_add(1);
        if self.rounds > self.limits.max_rounds {
            return Err(invalid(&format!("imports nested deeper than {} rounds", self.limits.max_rounds)));
        }
        if body.is_empty() {
            return Ok(self.done());
        }
        Ok(Step::Send(body))
    }

    fn symbol_requests(&self, services: &[String]) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        for service in services {
            body.extend_from_slice(&request(4, service)?);
        }
        Ok(body)
    }

    fn add_file(&mut self, bytes: &[u8]) -> Result<()> {
        let (name, imports) = file_name_and_imports(bytes, self.limits.max_files)?;
        if self.files.contains_key(&name) {
            return Ok(());
        }
        self.bytes = self.bytes.saturating_add(bytes.len());
        if self.bytes > self.limits.max_bytes {
            return Err(too_large(self.limits.max_bytes));
        }
        if self.files.len() >= self.limits.max_files {
            return Err(invalid(&format!("more than {} files", self.limits.max_files)));
        }
        // No longer missing: `pending` never holds a gathered file, so its size is exact.
        self.pending.remove(&name);
        self.asked.insert(name.clone());
        self.files.insert(name, bytes.to_vec());
        let room = self.limits.max_files.saturating_sub(self.files.len());
        for import in imports {
            if self.files.contains_key(import) || self.asked.contains(import) || self.pending.contains(import) {
                continue;
            }
            if self.pending.len() >= room {
                return Err(invalid(&format!("more than {} files", self.limits.max_files)));
            }
            self.pending.insert(import.to_owned());
        }
        Ok(())
    }

    fn done(&self) -> Step {
        let mut set = Vec::with_capacity(self.bytes.saturating_add(self.files.len() * 4));
        let mut names: Vec<&String> = self.files.keys().collect();
        names.sort_unstable();
        for bytes in names.into_iter().filter_map(|n| self.files.get(n)) {
            write_tag(1, LEN, &mut set);
            write_varint(bytes.len() as u64, &mut set);
            set.extend_from_slice(bytes);
        }
        Step::Done { services: self.services.clone().unwrap_or_default(), descriptor_set: set }
    }
}

/// One framed ServerReflectionRequest with `field` (3 file_by_filename, 4
/// file_containing_symbol, 7 list_services) set to `value`.
fn request(field: u32, value: &str) -> Result<Vec<u8>> {
    let mut message = Vec::new();
    length_delimited(field, &mut message, |o| o.extend_from_slice(value.as_bytes()));
    let mut framed = Vec::with_capacity(message.len() + 5);
    encode_frame(&message, &mut framed)?;
    Ok(framed)
}

enum Response<'a> {
    Files(Vec<&'a [u8]>),
    Services(Vec<String>),
    /// An error answer; `symbol`: the service it was about, when it asked for one.
    Error {
        code: i64,
        message: String,
        symbol: Option<String>,
    },
}

/// A ServerReflectionResponse (the same in v1 and v1alpha).
fn read_response(message: &[u8]) -> Result<Response<'_>> {
    let mut original_symbol = None;
    let mut response = None;
    for f in fields(message) {
        let f = f.map_err(|()| invalid("not a ServerReflectionResponse"))?;
        match (f.number, f.wire_type) {
            // original_request: which symbol an error is about.
            (2, LEN) => {
                for r in fields(f.value).flatten() {
                    if (r.number, r.wire_type) == (4, LEN) {
                        original_symbol = Some(text(r.value)?);
                    }
                }
            }
            (4, LEN) => {
                let mut files = Vec::new();
                for d in fields(f.value) {
                    let d = d.map_err(|()| invalid("bad FileDescriptorResponse"))?;
                    if (d.number, d.wire_type) == (1, LEN) {
                        files.push(d.value);
                    }
                }
                response = Some(Response::Files(files));
            }
            (6, LEN) => {
                let mut names = Vec::new();
                for s in fields(f.value) {
                    let s = s.map_err(|()| invalid("bad ListServiceResponse"))?;
                    if (s.number, s.wire_type) == (1, LEN) {
                        for n in fields(s.value).flatten() {
                            if (n.number, n.wire_type) == (1, LEN) {
                                names.push(text(n.value)?);
                            }
                        }
                    }
                }
                response = Some(Response::Services(names));
            }
            (7, LEN) => {
                let (mut code, mut text_message) = (0i64, String::new());
                for e in fields(f.value).flatten() {
                    match (e.number, e.wire_type) {
                        (1, VARINT) => {
                            code = crate::core::codec::wire::read_varint(e.value).map_or(0, |(v, _)| v as i32 as i64);
                        }
                        (2, LEN) => text_message = text(e.value)?,
                        _ => {}
                    }
                }
                response = Some(Response::Error { code, message: text_message, symbol: None });
            }
            _ => {}
        }
    }
    match response {
        Some(Response::Error { code, message, .. }) => Ok(Response::Error { code, message, symbol: original_symbol }),
        Some(r) => Ok(r),
        None => Err(invalid("a ServerReflectionResponse without an answer")),
    }
}

/// A FileDescriptorProto's `name` (1) and its `dependency` list (3). Counted before anything is
/// kept: a file imports at most `max_imports` files (a set holds no more; protobuf refuses an
/// import listed twice), each named (no file is named "").
fn file_name_and_imports(bytes: &[u8], max_imports: usize) -> Result<(String, Vec<&str>)> {
    let is_import = |f: &crate::core::codec::wire::RawField<'_>| (f.number, f.wire_type) == (3, LEN);
    let count = fields(bytes).map_while(|f| f.ok()).filter(is_import).count();
    if count > max_imports {
        return Err(invalid(&format!("a FileDescriptorProto importing more than {max_imports} files")));
    }
    let mut name = None;
    let mut imports = Vec::with_capacity(count);
    for f in fields(bytes) {
        let f = f.map_err(|()| invalid("not a FileDescriptorProto"))?;
        match (f.number, f.wire_type) {
            (1, LEN) => name = Some(text(f.value)?),
            (3, LEN) => {
                let import = std::str::from_utf8(f.value).map_err(|_| invalid("invalid UTF-8"))?;
                if import.is_empty() {
                    return Err(invalid("a FileDescriptorProto importing a file without a name"));
                }
                imports.push(import);
            }
            _ => {}
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or_else(|| invalid("a FileDescriptorProto without a name"))?;
    Ok((name, imports))
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid("invalid UTF-8"))
}

fn invalid(what: &str) -> Error {
    Error::bad_upstream(format!("invalid reflection answer: {what}"))
}

fn too_large(max: usize) -> Error {
    Error::bad_upstream(format!("reflection answers exceed {max} bytes"))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn file(name: &str, imports: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        length_delimited(1, &mut out, |o| o.extend_from_slice(name.as_bytes()));
        for i in imports {
            length_delimited(3, &mut out, |o| o.extend_from_slice(i.as_bytes()));
        }
        out
    }

    /// A framed ServerReflectionResponse carrying `files`.
    fn files_answer(files: &[Vec<u8>]) -> Vec<u8> {
        let mut message = Vec::new();
        length_delimited(4, &mut message, |o| {
            for f in files {
                length_delimited(1, o, |o| o.extend_from_slice(f));
            }
        });
        let mut framed = Vec::new();
        encode_frame(&message, &mut framed).unwrap();
        framed
    }

    fn list_answer(names: &[&str]) -> Vec<u8> {
        let mut message = Vec::new();
        length_delimited(6, &mut message, |o| {
            for n in names {
                length_delimited(1, o, |o| length_delimited(1, o, |o| o.extend_from_slice(n.as_bytes())));
            }
        });
        let mut framed = Vec::new();
        encode_frame(&message, &mut framed).unwrap();
        framed
    }

    /// An error answer to the request that set `field` (4: a symbol, 3: a file name) to `value`.
    fn error_answer(field: u32, value: &str, code: u64, text: &str) -> Vec<u8> {
        let mut message = Vec::new();
        length_delimited(2, &mut message, |o| length_delimited(field, o, |o| o.extend_from_slice(value.as_bytes())));
        length_delimited(7, &mut message, |o| {
            write_tag(1, VARINT, o);
            write_varint(code, o);
            length_delimited(2, o, |o| o.extend_from_slice(text.as_bytes()));
        });
        let mut framed = Vec::new();
        encode_frame(&message, &mut framed).unwrap();
        framed
    }

    /// The requests of a body: (field, value) per framed message.
    fn requests(body: &[u8]) -> Vec<(u32, String)> {
        let mut decoder = FrameDecoder::new(1 << 20, None);
        decoder.push(body);
        let mut out = Vec::new();
        while let Some(m) = decoder.next_frame().unwrap() {
            let f = fields(&m).next().unwrap().unwrap();
            out.push((f.number, String::from_utf8(f.value.to_vec()).unwrap()));
        }
        out
    }

    fn files_of(set: &[u8]) -> Vec<String> {
        fields(set).map(|f| file_name_and_imports(f.unwrap().value, 4096).unwrap().0).collect()
    }

    #[test]
    fn gathers_the_services_files_and_their_imports_round_by_round() {
        let mut g = Gathering::new(Wanted::Services(vec!["a.v1.A".into(), "b.v1.B".into()]), Limits::default());
        let Step::Send(body) = g.start().unwrap() else { panic!() };
        assert_eq!(requests(&body), [(4, "a.v1.A".to_string()), (4, "b.v1.B".to_string())]);
        // The server answers each with the defining file and (as servers may) some imports.
        let answer = [
            files_answer(&[file("a.proto", &["common.proto", "google/api/annotations.proto"])]),
            files_answer(&[file("b.proto", &["common.proto"]), file("common.proto", &[])]),
        ]
        .concat();
        let Step::Send(body) = g.answer(&answer).unwrap() else { panic!() };
        assert_eq!(requests(&body), [(3, "google/api/annotations.proto".to_string())]);
        let answer = files_answer(&[file("google/api/annotations.proto", &["google/api/http.proto"])]);
        let Step::Send(body) = g.answer(&answer).unwrap() else { panic!() };
        assert_eq!(requests(&body), [(3, "google/api/http.proto".to_string())]);
        let Step::Done { services, descriptor_set } =
            g.answer(&files_answer(&[file("google/api/http.proto", &[])])).unwrap()
        else {
            panic!()
        };
        assert_eq!(services, ["a.v1.A", "b.v1.B"]);
        assert_eq!(
            files_of(&descriptor_set),
            ["a.proto", "b.proto", "common.proto", "google/api/annotations.proto", "google/api/http.proto"]
        );
    }

    #[test]
    fn every_listed_service_but_the_infrastructure_and_the_excluded() {
        let mut g = Gathering::new(Wanted::All { except: vec!["c.v1.C".into()] }, Limits::default());
        let Step::Send(body) = g.start().unwrap() else { panic!() };
        assert_eq!(requests(&body), [(7, "*".to_string())]);
        let listed = list_answer(&["a.v1.A", "grpc.health.v1.Health", "c.v1.C", "grpc.reflection.v1.ServerReflection"]);
        let Step::Send(body) = g.answer(&listed).unwrap() else { panic!() };
        assert_eq!(requests(&body), [(4, "a.v1.A".to_string())]);
        let Step::Done { services, .. } = g.answer(&files_answer(&[file("a.proto", &[])])).unwrap() else { panic!() };
        assert_eq!(services, ["a.v1.A"]);
    }

    #[test]
    fn an_unknown_service_is_an_error_naming_it() {
        let mut g = Gathering::new(Wanted::Services(vec!["x.v1.X".into()]), Limits::default());
        g.start().unwrap();
        let e = g.answer(&error_answer(4, "x.v1.X", 5, "symbol not found")).unwrap_err();
        assert!(e.message.contains("x.v1.X") && e.message.contains("symbol not found"), "{e}");
    }

    #[test]
    fn hostile_answers_are_bounded_errors() {
        let limits = Limits { max_bytes: 1000, max_files: 3, max_rounds: 4 };
        // Too many bytes.
        let mut g = Gathering::new(Wanted::Services(vec!["a.A".into()]), limits);
        g.start().unwrap();
        let big = file("a.proto", &[&"x".repeat(2000)]);
        assert!(g.answer(&files_answer(&[big])).is_err());
        // Too many files.
        let mut g = Gathering::new(Wanted::Services(vec!["a.A".into()]), limits);
        g.start().unwrap();
        let many: Vec<Vec<u8>> = (0..4).map(|i| file(&format!("{i}.proto"), &[])).collect();
        assert!(g.answer(&files_answer(&many)).unwrap_err().message.contains("more than 3 files"));
        // An import chain longer than the rounds allowed.
        let mut g = Gathering::new(Wanted::Services(vec!["a.A".into()]), Limits { max_files: 100, ..limits });
        g.start().unwrap();
        let mut result = g.answer(&files_answer(&[file("0.proto", &["1.proto"])]));
        for i in 1..10 {
            match result {
                Ok(Step::Send(_)) => {
                    result = g.answer(&files_answer(&[file(&format!("{i}.proto"), &[&format!("{}.proto", i + 1)])]))
                }
                _ => break,
            }
        }
        assert!(result.unwrap_err().message.contains("rounds"));
        // Garbage, a file without a name, a truncated frame.
        for garbage in [vec![0, 0, 0, 0, 2, 0xff, 0xff], files_answer(&[file("", &[])]), vec![0, 0, 0, 9, 0]] {
            let mut g = Gathering::new(Wanted::Services(vec!["a.A".into()]), limits);
            g.start().unwrap();
            assert_eq!(g.answer(&garbage).unwrap_err().http_status, 502, "{garbage:?}");
        }
        // A file the server does not send again is not asked for twice.
        let mut g = Gathering::new(Wanted::Services(vec!["a.A".into()]), limits);
        g.start().unwrap();
        let Step::Send(_) = g.answer(&files_answer(&[file("a.proto", &["gone.proto"])])).unwrap() else { panic!() };
        let Step::Done { .. } = g.answer(&error_answer(3, "gone.proto", 5, "not found")).unwrap() else { panic!() };
    }

    #[test]
    fn imports_are_counted_before_they_are_kept_and_never_asked_for_beyond_the_file_bound() {
        // Imports were kept as strings, every one, then cloned: one answer of 8 million empty
        // imports took 519 MB (natively; a review's measurement).
        let limits = Limits { max_bytes: 1 << 20, max_files: 3, max_rounds: 4 };
        let started = || {
            let mut g = Gathering::new(Wanted::Services(vec!["a.A".into()]), limits);
            g.start().unwrap();
            g
        };
        let many: Vec<String> = (0..4).map(|i| format!("{i}.proto")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let error = started().answer(&files_answer(&[file("a.proto", &many)])).unwrap_err();
        assert!(error.message.contains("importing more than 3 files"), "{}", error.message);
        let error = started().answer(&files_answer(&[file("a.proto", &[""])])).unwrap_err();
        assert!(error.message.contains("importing a file without a name"), "{}", error.message);
        // Three files may still come, one is here: two missing imports are asked for, three
        // (however often each is listed) are more files than the set may hold.
        let Step::Send(body) = started().answer(&files_answer(&[file("a.proto", &many[..2])])).unwrap() else {
            panic!()
        };
        assert_eq!(requests(&body), [(3, "0.proto".to_string()), (3, "1.proto".to_string())]);
        // A file that comes is no longer missing: a chain of three files fits three.
        let chain = [file("a.proto", &["b.proto"]), file("b.proto", &["c.proto"]), file("c.proto", &[])];
        let Step::Done { descriptor_set, .. } = started().answer(&files_answer(&chain)).unwrap() else { panic!() };
        assert_eq!(files_of(&descriptor_set), ["a.proto", "b.proto", "c.proto"]);
        let twice = [many[0], many[1], many[0]];
        let error = started().answer(&files_answer(&[file("a.proto", &many[1..4]), file("b.proto", &twice)]));
        assert_eq!(error.unwrap_err().message, "invalid reflection answer: more than 3 files");
    }
}
