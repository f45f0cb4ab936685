//! `conformance-testee`: the program the official protobuf `conformance_test_runner` drives,
//! answering with json2grpc's codec (with `--reflection`, its prost-reflect reference).
//!
//! Protocol (protobuf's `conformance/conformance.proto`): on stdin, repeatedly a 4-byte
//! little-endian length and a serialized `conformance.ConformanceRequest`; on stdout, the same
//! framing around a `conformance.ConformanceResponse`. End of input ends the program.
//!
//! No protobuf sources or generated code are embedded: at startup the schemas are compiled with
//! protox from a protobuf source tree given by `--proto-root DIR` or `PROTOBUF_SRC_DIR`
//! (the directory holding `conformance/` and `src/google/protobuf/`), and every message,
//! including the requests and responses themselves, is handled as a `DynamicMessage`.
//!
//! protox and prost-reflect do not read editions files: the editions test messages come from a
//! FileDescriptorSet protoc made (`--editions-set FILE`, as scripts/build-conformance.sh
//! writes it), loaded by the filter's own descriptor reader and served by the fast path alone
//! (the reflection path skips them).
//!
//! Every input gets an answer as a value (`parse_error`, `serialize_error`, `skipped`, …):
//! the only exits are end of input, an I/O error on the pipe, or schemas that cannot be loaded.
use std::borrow::Cow;
use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use json2grpc::core::codec::json::{ParseOptions, MAX_SUPPORTED_DEPTH};
use json2grpc::core::codec::Codec;
use json2grpc::core::config::PrintOptions;
use json2grpc::testing::reflect_json;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};

mod canonical;

/// The schemas, relative to the include directories `<root>` and `<root>/src`.
const PROTO_FILES: [&str; 3] = [
    "conformance/conformance.proto",
    "google/protobuf/test_messages_proto3.proto",
    "google/protobuf/test_messages_proto2.proto",
];

const REQUEST_TYPE: &str = "conformance.ConformanceRequest";
const RESPONSE_TYPE: &str = "conformance.ConformanceResponse";

/// Largest request accepted (the suite's biggest is a few MB).
const MAX_REQUEST_LEN: usize = 64 << 20;

/// What one request comes to; each variant is a field of `ConformanceResponse.result`.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    ParseError(String),
    SerializeError(String),
    RuntimeError(String),
    Protobuf(Vec<u8>),
    Json(String),
    Skipped(String),
}

impl Outcome {
    fn into_field(self) -> (&'static str, Value) {
        match self {
            Outcome::ParseError(s) => ("parse_error", Value::String(s)),
            Outcome::SerializeError(s) => ("serialize_error", Value::String(s)),
            Outcome::RuntimeError(s) => ("runtime_error", Value::String(s)),
            Outcome::Protobuf(b) => ("protobuf_payload", Value::Bytes(b.into())),
            Outcome::Json(s) => ("json_payload", Value::String(s)),
            Outcome::Skipped(s) => ("skipped", Value::String(s)),
        }
    }
}

struct Testee {
    pool: DescriptorPool,
    request: MessageDescriptor,
    response: MessageDescriptor,
    skip_all: bool,
    /// The fast path (what the filter runs); `None` with `--reflection`.
    codec: Option<Codec>,
    /// The fast path's codec of the `--editions-set` message types (prost-reflect cannot load
    /// them).
    editions: Option<Codec>,
}

impl Testee {
    /// Compiles the conformance and test-message schemas found under `root`.
    fn load(root: &Path) -> Result<Testee, String> {
        let includes = [root.to_path_buf(), root.join("src")];
        let mut compiler = protox::Compiler::new(includes).map_err(|e| format!("cannot set up protox: {e}"))?;
        compiler.include_imports(true);
        compiler.open_files(PROTO_FILES).map_err(|e| {
            format!(
                "cannot compile the conformance protos under {} (expected {}): {e}",
                root.display(),
                PROTO_FILES.join(", ")
            )
        })?;
        // As the filter does: decode a serialized FileDescriptorSet. (protox's own
        // `descriptor_pool()` loses the `packed` field option: proto2 `[packed = true]` and
        // proto3 `[packed = false]` fields would be written with the wrong encoding.)
        let set = compiler.encode_file_descriptor_set();
        let pool =
            DescriptorPool::decode(set.as_slice()).map_err(|e| format!("cannot load the compiled descriptors: {e}"))?;
        // The fast path's codec comes from the filter's own descriptor loader.
        let schema = json2grpc::core::schema::descriptors::load_schema(&set).map_err(|e| e.to_string())?;
        let request = pool
            .get_message_by_name(REQUEST_TYPE)
            .ok_or_else(|| format!("{REQUEST_TYPE} not found in conformance.proto"))?;
        let response = pool
            .get_message_by_name(RESPONSE_TYPE)
            .ok_or_else(|| format!("{RESPONSE_TYPE} not found in conformance.proto"))?;
        Ok(Testee { codec: Some(Codec::new(&schema)), pool, request, response, skip_all: false, editions: None })
    }

    /// Loads the message types of a protoc-made FileDescriptorSet (with imports) into the fast
    /// path, with the filter's own loader.
    fn load_editions(&mut self, path: &Path) -> Result<(), String> {
        let set = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let schema =
            json2grpc::core::schema::descriptors::load_schema(&set).map_err(|e| format!("{}: {e}", path.display()))?;
        self.editions = Some(Codec::new(&schema));
        Ok(())
    }

    /// Answers one serialized `ConformanceRequest` with a serialized `ConformanceResponse`.
    fn answer(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let (field, value) = self.handle(request).into_field();
        let mut response = DynamicMessage::new(self.response.clone());
        response
            .try_set_field_by_name(field, value)
            .map_err(|e| format!("cannot set ConformanceResponse.{field}: {e}"))?;
        Ok(response.encode_to_vec())
    }

    fn handle(&self, request: &[u8]) -> Outcome {
        if self.skip_all {
            return Outcome::Skipped("--skip-all".into());
        }
        let request = match DynamicMessage::decode(self.request.clone(), request) {
            Ok(r) => r,
            Err(e) => return Outcome::RuntimeError(format!("bad ConformanceRequest: {e}")),
        };

        let category = enum_name(&request, "test_category");
        if matches!(category.as_str(), "JSPB_TEST" | "TEXT_FORMAT_TEST") {
            return Outcome::Skipped(format!("{category} is not supported"));
        }
        let output = enum_name(&request, "requested_output_format");
        if !matches!(output.as_str(), "PROTOBUF" | "JSON") {
            return Outcome::Skipped(format!("output format {output} is not supported"));
        }

        let type_name = match request.get_field_by_name("message_type").as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let ignore_unknown = category == "JSON_IGNORE_UNKNOWN_PARSING_TEST";
        let options = ParseOptions {
            ignore_unknown_fields: ignore_unknown,
            ignore_unknown_enum_names: ignore_unknown,
            max_depth: MAX_SUPPORTED_DEPTH,
            case_insensitive_enums: false,
        };
        let Some(desc) = self.pool.get_message_by_name(&type_name) else {
            return self.handle_editions(&request, &type_name, &output, &options);
        };

        let fast = self.codec.as_ref().and_then(|c| c.index(&desc).map(|i| (c, i)));
        // The payload as wire bytes: the fast path never builds a message tree for JSON.
        let bytes: Vec<u8> = if let Some(bytes) = oneof_bytes(&request, "protobuf_payload") {
            // Binary input is checked by decoding it (the filter never parses client binary).
            match DynamicMessage::decode(desc.clone(), bytes.as_ref()) {
                Ok(m) if fast.is_some() => m.encode_to_vec(),
                Ok(m) => return self.output_message(&m, &output),
                Err(e) => return Outcome::ParseError(e.to_string()),
            }
        } else if let Some(text) = oneof_string(&request, "json_payload") {
            match fast {
                Some((codec, index)) => {
                    let mut out = Vec::new();
                    if let Err(e) = codec.json_to_binary(index, text.as_bytes(), &options, &mut out) {
                        return Outcome::ParseError(e.message);
                    }
                    out
                }
                None => match reflect_json::parse_message(&desc, text.as_bytes(), &options) {
                    Ok(m) => return self.output_message(&m, &output),
                    Err(e) => return Outcome::ParseError(e.message),
                },
            }
        } else if request.has_field_by_name("jspb_payload") {
            return Outcome::Skipped("JSPB input is not supported".into());
        } else if request.has_field_by_name("text_payload") {
            return Outcome::Skipped("text format input is not supported".into());
        } else {
            return Outcome::RuntimeError("ConformanceRequest has no payload".into());
        };
        let Some((codec, index)) = fast else {
            return Outcome::RuntimeError("fast path lost its codec".into());
        };
        if output == "PROTOBUF" {
            return Outcome::Protobuf(bytes);
        }
        let mut out = Vec::new();
        match codec.binary_to_json(index, &bytes, &PrintOptions::default(), &mut out) {
            Ok(()) => json_outcome(out),
            Err(e) => Outcome::SerializeError(e.message),
        }
    }

    /// A message type of the `--editions-set` (fast path only): binary input is checked by the
    /// fast codec's validator; binary output is re-encoded from its plans.
    fn handle_editions(
        &self,
        request: &DynamicMessage,
        type_name: &str,
        output: &str,
        options: &ParseOptions,
    ) -> Outcome {
        let found = self.editions.as_ref().and_then(|c| c.index_of(type_name).map(|i| (c, i)));
        let Some((codec, index)) = found else {
            return Outcome::Skipped(format!("message type {type_name:?} is not loaded"));
        };
        if self.codec.is_none() {
            return Outcome::Skipped("the reflection path (prost-reflect) does not read editions files".into());
        }
        let bytes: Vec<u8> = if let Some(bytes) = oneof_bytes(request, "protobuf_payload") {
            if let Err(e) = codec.validate(index, &bytes) {
                return Outcome::ParseError(e.message);
            }
            if output == "PROTOBUF" {
                return match canonical::reencode(codec.plans(), index, &bytes) {
                    Ok(b) => Outcome::Protobuf(b),
                    Err(e) => Outcome::ParseError(e),
                };
            }
            bytes.to_vec()
        } else if let Some(text) = oneof_string(request, "json_payload") {
            let mut out = Vec::new();
            if let Err(e) = codec.json_to_binary(index, text.as_bytes(), options, &mut out) {
                return Outcome::ParseError(e.message);
            }
            if output == "PROTOBUF" {
                return Outcome::Protobuf(out);
            }
            out
        } else if request.has_field_by_name("jspb_payload") || request.has_field_by_name("text_payload") {
            return Outcome::Skipped("JSPB and text format input are not supported".into());
        } else {
            return Outcome::RuntimeError("ConformanceRequest has no payload".into());
        };
        let mut out = Vec::new();
        match codec.binary_to_json(index, &bytes, &PrintOptions::default(), &mut out) {
            Ok(()) => json_outcome(out),
            Err(e) => Outcome::SerializeError(e.message),
        }
    }

    /// The reflection path's output for a decoded message.
    fn output_message(&self, message: &DynamicMessage, output: &str) -> Outcome {
        if output == "PROTOBUF" {
            return Outcome::Protobuf(message.encode_to_vec());
        }
        let mut out = Vec::new();
        match reflect_json::print_message(message, &PrintOptions::default(), &mut out) {
            Ok(()) => json_outcome(out),
            Err(e) => Outcome::SerializeError(e.message),
        }
    }
}

fn json_outcome(out: Vec<u8>) -> Outcome {
    match String::from_utf8(out) {
        Ok(s) => Outcome::Json(s),
        Err(e) => Outcome::SerializeError(format!("printed JSON is not UTF-8: {e}")),
    }
}

/// The name of the enum value in `field`, or its number when the schema has no such value.
fn enum_name(message: &DynamicMessage, field: &str) -> String {
    let number = match message.get_field_by_name(field).as_deref() {
        Some(Value::EnumNumber(n)) => *n,
        _ => 0,
    };
    message
        .descriptor()
        .get_field_by_name(field)
        .and_then(|f| f.kind().as_enum().cloned())
        .and_then(|e| e.get_value(number))
        .map_or_else(|| number.to_string(), |v| v.name().to_owned())
}

fn oneof_bytes(message: &DynamicMessage, field: &str) -> Option<prost::bytes::Bytes> {
    if !message.has_field_by_name(field) {
        return None;
    }
    match message.get_field_by_name(field).as_deref() {
        Some(Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    }
}

fn oneof_string(message: &DynamicMessage, field: &str) -> Option<String> {
    if !message.has_field_by_name(field) {
        return None;
    }
    match message.get_field_by_name(field).map(Cow::into_owned) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Command line: `--proto-root DIR` (else `$PROTOBUF_SRC_DIR`), `--editions-set FILE`,
/// `--skip-all`, `--reflection`.
#[derive(Debug, Default)]
struct Args {
    proto_root: Option<PathBuf>,
    /// A FileDescriptorSet (protoc's, with imports) of the editions test messages.
    editions_set: Option<PathBuf>,
    /// Answer every request with `skipped`: the runner then names every test it has
    /// (`--verbose`), which is how `scripts/conformance.sh` counts tests per category.
    skip_all: bool,
    /// Run the reflection path (prost-reflect) instead of the fast path.
    reflection: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        if arg == "--proto-root" {
            let dir = args.next().ok_or("--proto-root needs a directory")?;
            parsed.proto_root = Some(PathBuf::from(dir));
        } else if let Some(dir) = arg.strip_prefix("--proto-root=") {
            parsed.proto_root = Some(PathBuf::from(dir));
        } else if arg == "--editions-set" {
            let file = args.next().ok_or("--editions-set needs a file")?;
            parsed.editions_set = Some(PathBuf::from(file));
        } else if let Some(file) = arg.strip_prefix("--editions-set=") {
            parsed.editions_set = Some(PathBuf::from(file));
        } else if arg == "--skip-all" {
            parsed.skip_all = true;
        } else if arg == "--reflection" {
            parsed.reflection = true;
        } else if arg == "--help" || arg == "-h" {
            return Err(usage());
        } else {
            return Err(format!("unknown argument {arg:?}\n{}", usage()));
        }
    }
    if parsed.proto_root.is_none() {
        parsed.proto_root = std::env::var_os("PROTOBUF_SRC_DIR").filter(|d| !d.is_empty()).map(PathBuf::from);
    }
    if parsed.proto_root.is_none() {
        return Err(usage());
    }
    Ok(parsed)
}

fn usage() -> String {
    "usage: conformance-testee [--proto-root DIR] [--editions-set FILE] [--skip-all] [--reflection]\n\
     (or PROTOBUF_SRC_DIR=DIR). DIR is a protobuf source tree: DIR/conformance/conformance.proto\n\
     and DIR/src/google/protobuf/test_messages_proto{2,3}.proto. FILE is a FileDescriptorSet\n\
     (with imports) of the editions test messages, made by protoc. Speaks the conformance\n\
     suite's length-prefixed protocol on stdin/stdout. --skip-all answers `skipped`\n\
     to every request (to list the suite's tests). --reflection runs prost-reflect instead\n\
     of the fast path the filter uses (editions messages are skipped)."
        .to_owned()
}

/// Fills `buf`, or returns `Ok(false)` on end of input before its first byte.
fn read_frame_start(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        match input.read(rest) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "truncated length")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn serve(testee: &Testee, input: &mut impl Read, output: &mut impl Write) -> Result<(), String> {
    let mut len = [0u8; 4];
    while read_frame_start(input, &mut len).map_err(|e| format!("reading stdin: {e}"))? {
        let len = usize::try_from(u32::from_le_bytes(len)).unwrap_or(usize::MAX);
        if len > MAX_REQUEST_LEN {
            return Err(format!("request of {len} bytes is over {MAX_REQUEST_LEN}"));
        }
        let mut request = vec![0u8; len];
        input.read_exact(&mut request).map_err(|e| format!("reading a request of {len} bytes: {e}"))?;
        let response = testee.answer(&request)?;
        let response_len =
            u32::try_from(response.len()).map_err(|_| format!("response of {} bytes is too long", response.len()))?;
        output
            .write_all(&response_len.to_le_bytes())
            .and_then(|()| output.write_all(&response))
            .and_then(|()| output.flush())
            .map_err(|e| format!("writing stdout: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let (root, editions_set, skip_all, reflection) = match parse_args(std::env::args().skip(1)) {
        Ok(Args { proto_root: Some(root), editions_set, skip_all, reflection }) => {
            (root, editions_set, skip_all, reflection)
        }
        Ok(_) => {
            eprintln!("conformance-testee: {}", usage());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("conformance-testee: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = Testee::load(&root).and_then(|mut t| {
        if let Some(set) = &editions_set {
            t.load_editions(set)?;
        }
        Ok(t)
    });
    let testee = match loaded {
        Ok(t) => Testee { skip_all, codec: if reflection { None } else { t.codec }, ..t },
        Err(e) => {
            eprintln!("conformance-testee: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut input = io::stdin().lock();
    let mut output = BufWriter::new(io::stdout().lock());
    match serve(&testee, &mut input, &mut output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance-testee: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    //! These need the protobuf sources: they run when `PROTOBUF_SRC_DIR` is set (as
    //! `scripts/conformance.sh` does) and pass trivially otherwise.
    use super::*;

    fn testee() -> Option<Testee> {
        let root = std::env::var_os("PROTOBUF_SRC_DIR")?;
        match Testee::load(Path::new(&root)) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("skipping: {e}");
                None
            }
        }
    }

    fn request(t: &Testee, fields: &[(&str, Value)]) -> Vec<u8> {
        let mut m = DynamicMessage::new(t.request.clone());
        for (name, value) in fields {
            m.try_set_field_by_name(name, value.clone()).unwrap();
        }
        m.encode_to_vec()
    }

    const PROTO3: &str = "protobuf_test_messages.proto3.TestAllTypesProto3";
    const EDITION2023: &str = "protobuf_test_messages.editions.TestAllTypesEdition2023";

    /// The testee with the editions set of scripts/build-conformance.sh's cache
    /// (`<cache>/src` is PROTOBUF_SRC_DIR, the set is `<cache>/bin/editions.pb`).
    fn editions_testee() -> Option<Testee> {
        let mut t = testee()?;
        let set = Path::new(&std::env::var_os("PROTOBUF_SRC_DIR")?).join("../bin/editions.pb");
        if !set.exists() {
            eprintln!("skipping: no {}", set.display());
            return None;
        }
        t.load_editions(&set).unwrap();
        Some(t)
    }

    #[test]
    fn editions_messages_are_served_by_the_fast_path() {
        let Some(t) = editions_testee() else { return };
        let binary = |payload: &[u8], output: i32| {
            request(
                &t,
                &[
                    ("protobuf_payload", Value::Bytes(payload.to_vec().into())),
                    ("message_type", Value::String(EDITION2023.into())),
                    ("requested_output_format", Value::EnumNumber(output)),
                    ("test_category", Value::EnumNumber(1)),
                ],
            )
        };
        // groupliketype (201) is delimited: a group in, a group out, printed as JSON.
        let group = [0xcb, 0x0c, 0xd0, 0x0c, 0x63, 0xcc, 0x0c];
        assert_eq!(t.handle(&binary(&group, 1)), Outcome::Protobuf(group.to_vec()));
        assert_eq!(t.handle(&binary(&group, 2)), Outcome::Json(r#"{"groupliketype":{"groupInt32":99}}"#.into()));
        // repeated_int32 (31) is packed by default: expanded input, packed output.
        assert_eq!(
            t.handle(&binary(&[0xf8, 0x01, 0x01, 0xf8, 0x01, 0x02], 1)),
            Outcome::Protobuf(vec![0xfa, 0x01, 0x02, 0x01, 0x02])
        );
        // An unterminated group is a parse error.
        assert!(matches!(t.handle(&binary(&[0xcb, 0x0c], 1)), Outcome::ParseError(_)));
    }

    #[test]
    fn json_to_json_and_errors() {
        let Some(t) = testee() else { return };
        let json_out = Value::EnumNumber(2);
        let r = request(
            &t,
            &[
                ("json_payload", Value::String(r#"{"optionalInt32": 5}"#.into())),
                ("message_type", Value::String(PROTO3.into())),
                ("requested_output_format", json_out.clone()),
                ("test_category", Value::EnumNumber(2)),
            ],
        );
        assert_eq!(t.handle(&r), Outcome::Json(r#"{"optionalInt32":5}"#.into()));

        let r = request(
            &t,
            &[
                ("json_payload", Value::String(r#"{"unknownField": 5}"#.into())),
                ("message_type", Value::String(PROTO3.into())),
                ("requested_output_format", json_out.clone()),
                ("test_category", Value::EnumNumber(2)),
            ],
        );
        assert!(matches!(t.handle(&r), Outcome::ParseError(_)));

        let r = request(
            &t,
            &[
                ("json_payload", Value::String(r#"{"unknownField": 5}"#.into())),
                ("message_type", Value::String(PROTO3.into())),
                ("requested_output_format", json_out),
                ("test_category", Value::EnumNumber(3)),
            ],
        );
        assert_eq!(t.handle(&r), Outcome::Json("{}".into()));
    }

    #[test]
    fn skips_what_it_does_not_support_and_survives_garbage() {
        let Some(t) = testee() else { return };
        let r = request(
            &t,
            &[
                ("text_payload", Value::String("optional_int32: 5".into())),
                ("message_type", Value::String(PROTO3.into())),
                ("requested_output_format", Value::EnumNumber(1)),
                ("test_category", Value::EnumNumber(5)),
            ],
        );
        assert!(matches!(t.handle(&r), Outcome::Skipped(_)));
        assert!(matches!(t.handle(&[0xff, 0xff, 0xff]), Outcome::RuntimeError(_)));
        assert!(t.answer(&[0xff]).is_ok());
    }

    #[test]
    fn framing_round_trip() {
        let Some(t) = testee() else { return };
        let r = request(
            &t,
            &[
                ("protobuf_payload", Value::Bytes(vec![0x08, 0x05].into())),
                ("message_type", Value::String(PROTO3.into())),
                ("requested_output_format", Value::EnumNumber(1)),
                ("test_category", Value::EnumNumber(1)),
            ],
        );
        let mut input = (r.len() as u32).to_le_bytes().to_vec();
        input.extend_from_slice(&r);
        let mut out = Vec::new();
        serve(&t, &mut input.as_slice(), &mut out).unwrap();
        let resp = DynamicMessage::decode(t.response.clone(), out.get(4..).unwrap()).unwrap();
        assert_eq!(resp.get_field_by_name("protobuf_payload").unwrap().as_bytes().unwrap().as_ref(), &[0x08, 0x05]);
    }
}
