//! `grpc_chaos`: a scriptable, misbehaving gRPC upstream for the end-to-end tests.
//!
//! ```text
//! grpc_chaos [--listen 127.0.0.1:0] [--record FILE]
//! ```
//!
//! It speaks HTTP/2 cleartext (prior knowledge) with `h2` directly, so that it can send any
//! sequence of frames, including ones a real gRPC library never would. Every request (any
//! path) is read to its end and then answered as the request header `x-chaos` says:
//!
//! | `x-chaos`                | response                                                        |
//! |--------------------------|-----------------------------------------------------------------|
//! | `ok` (default)           | headers, one message (`x-chaos-message-b64`, default empty), trailers 0 |
//! | `headers-then-error`     | headers, no data, trailers 9 + grpc-message + grpc-status-details-bin |
//! | `message-then-error`     | headers, one message, trailers 13                               |
//! | `trailers-only-ok`       | one HEADERS frame with grpc-status 0 and end of stream          |
//! | `no-trailers`            | headers, one message with end of stream (no grpc-status at all) |
//! | `truncated-frame`        | a frame header announcing 100 bytes, 10 sent, trailers 0        |
//! | `compressed-no-encoding` | a frame with flag 1 but no `grpc-encoding` header, trailers 0   |
//! | `compressed-gzip`        | `grpc-encoding: gzip`, a gzip-compressed frame (flag 1), trailers 0 |
//! | `unknown-flag`           | a frame with flag 0x80, trailers 0                              |
//! | `garbage-message`        | a frame holding `0a ff ff ff ff 0f` (not protobuf), trailers 0  |
//! | `oversized`              | one message of `x-chaos-size` bytes (field 1 as a string), trailers 0 |
//! | `reset-mid-stream`       | headers, one message, then RST_STREAM (INTERNAL_ERROR)          |
//! | `not-grpc`               | `:status 200`, `content-type: text/plain`, body `hello`         |
//! | `slow`                   | sleeps `x-chaos-delay-ms` (default 1000), then `ok`             |
//! | `many`                   | `x-chaos-count` messages (default 3), then trailers 0           |
//! | `unavailable-once`       | the first request with an `x-chaos-key` value: trailers-only 14 (UNAVAILABLE); later ones `ok` |
//! | `repeat`                 | headers, `x-chaos-message-b64` first if given, then one message: `x-chaos-repeat-b64` repeated `x-chaos-repeat-count` times (default 1; protobuf concatenation = more repeated-field elements), trailers 0 |
//!
//! With `--reflection FILE`, `/grpc.reflection.v1[alpha].ServerReflection/ServerReflectionInfo`
//! is answered from that FileDescriptorSet file, read anew per request (tests swap it to change
//! the API); `--reflection-versions v1alpha` makes v1 answer UNIMPLEMENTED.
//! An unknown scenario gets a trailers-only INVALID_ARGUMENT naming it. With
//! `x-chaos-metadata: name=value` (several: `a=1;b=2`, or the header repeated), every answer
//! carries those headers as initial metadata.
//! `/grpc.health.v1.Health/Check` always answers SERVING (Envoy health-checks its clusters).
//! With `--record FILE`, every request except health checks is appended to FILE as one JSON
//! line `{"path", "headers": {name: value}, "messages": [base64, …]}` once it was read, so a
//! test can check what reached the upstream. It prints `grpc_chaos listening on ADDR`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use clap::Parser;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response};
use prost::Message;

use flashsale::errors::any;
use flashsale::pb::google::rpc;
use flashsale::reflection_file;

/// A misbehaving gRPC server (HTTP/2 cleartext) driven by the `x-chaos` request header.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Append one JSON line per received request (health checks excepted) to this file.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Serve gRPC server reflection from this FileDescriptorSet file, read anew per request.
    #[arg(long)]
    reflection: Option<PathBuf>,
    /// The reflection versions served (`v1`, `v1alpha`); others answer UNIMPLEMENTED.
    #[arg(long, value_delimiter = ',', default_value = "v1,v1alpha")]
    reflection_versions: Vec<String>,
}

/// `--reflection` and `--reflection-versions`.
static REFLECTION: std::sync::OnceLock<(PathBuf, Vec<String>)> = std::sync::OnceLock::new();

type Recorder = Option<Arc<Mutex<File>>>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(file) = &args.reflection {
        let _ = REFLECTION.set((file.clone(), args.reflection_versions.clone()));
    }
    let recorder: Recorder = match &args.record {
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Some(Arc::new(Mutex::new(f))),
            Err(err) => {
                eprintln!("grpc_chaos: cannot open {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("grpc_chaos: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("grpc_chaos listening on {addr}"),
        Err(_) => println!("grpc_chaos listening on {}", args.listen),
    }
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::handshake(socket).await else {
                return;
            };
            // Polling `accept` also drives the connection (it sends what the streams queued).
            while let Some(Ok((request, respond))) = conn.accept().await {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    if let Err(err) = handle(request, respond, recorder).await {
                        eprintln!("grpc_chaos: {err}");
                    }
                });
            }
        });
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// `x-chaos-key` values already seen by `unavailable-once`.
static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Reads the whole request, then plays the scenario it names.
async fn handle(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, recorder: Recorder) -> Result<()> {
    let (parts, mut body) = request.into_parts();
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let path = parts.uri.path().to_string();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let number = |name: &str, default: u64| header(name).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(default);

    if path == "/grpc.health.v1.Health/Check" {
        // HealthCheckResponse { status: SERVING (1) }.
        let mut send = respond.send_response(grpc_headers(&HeaderMap::new()), false)?;
        send.send_data(frame(0, &[0x08, 0x01]), false)?;
        return Ok(send.send_trailers(status_trailers(0, None))?);
    }
    record(&recorder, &path, &parts.headers, &received);

    if let (Some((file, versions)), true) =
        (REFLECTION.get(), path == reflection_file::V1 || path == reflection_file::V1ALPHA)
    {
        let version = if path == reflection_file::V1 { "v1" } else { "v1alpha" };
        if !versions.iter().any(|v| v == version) {
            let mut response = grpc_headers(&HeaderMap::new());
            response.headers_mut().extend(status_trailers(12, None));
            respond.send_response(response, true)?;
            return Ok(());
        }
        let set = std::fs::read(file).unwrap_or_default();
        let mut send = respond.send_response(grpc_headers(&HeaderMap::new()), false)?;
        for answer in reflection_file::answer(&set, &received) {
            send.send_data(frame(0, &answer), false)?;
        }
        return Ok(send.send_trailers(status_trailers(0, None))?);
    }

    let message = match header("x-chaos-message-b64") {
        Some(b64) => Bytes::from(base64::engine::general_purpose::STANDARD.decode(b64.trim())?),
        None => Bytes::new(), // the empty message: valid for every message type
    };
    // `x-chaos-metadata: name=value[;name=value…]` (the header may repeat): initial metadata of
    // the answer (any scenario).
    let mut meta = HeaderMap::new();
    let pairs =
        parts.headers.get_all("x-chaos-metadata").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';'));
    for (name, value) in pairs.filter_map(|m| m.split_once('=')) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(name.trim()), HeaderValue::from_str(value.trim())) {
            meta.append(name, value);
        }
    }
    let meta = &meta;
    let scenario = header("x-chaos").unwrap_or_else(|| "ok".to_string());
    match scenario.as_str() {
        "ok" => ok(respond, meta, &message),
        "unavailable-once" => {
            // The first request with a given `x-chaos-key` fails UNAVAILABLE (trailers-only),
            // the next ones succeed: a retry policy turns it into a success.
            let key = header("x-chaos-key").unwrap_or_default();
            let first = SEEN.lock().map(|mut seen| seen.insert(key)).unwrap_or(false);
            if first {
                let mut response = grpc_headers(meta);
                response.headers_mut().extend(status_trailers(14, Some("chaos: unavailable once")));
                respond.send_response(response, true)?;
                return Ok(());
            }
            ok(respond, meta, &message)
        }
        "slow" => {
            tokio::time::sleep(Duration::from_millis(number("x-chaos-delay-ms", 1000))).await;
            ok(respond, meta, &message)
        }
        "many" => {
            let mut send = respond.send_response(grpc_headers(meta), false)?;
            for _ in 0..number("x-chaos-count", 3) {
                send.send_data(frame(0, &message), false)?;
            }
            Ok(send.send_trailers(status_trailers(0, None))?)
        }
        "repeat" => {
            // A large message from a small header: the same encoding N times over is a valid
            // message (each copy adds elements to the repeated fields it sets).
            let unit = match header("x-chaos-repeat-b64") {
                Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64.trim())?,
                None => Vec::new(),
            };
            let count = usize::try_from(number("x-chaos-repeat-count", 1)).unwrap_or(usize::MAX);
            let mut send = respond.send_response(grpc_headers(meta), false)?;
            if header("x-chaos-message-b64").is_some() {
                send.send_data(frame(0, &message), false)?;
            }
            send.send_data(frame(0, &unit.repeat(count)), false)?;
            Ok(send.send_trailers(status_trailers(0, None))?)
        }
        "headers-then-error" => {
            let mut send = respond.send_response(grpc_headers(meta), false)?;
            Ok(send.send_trailers(precondition_failure_trailers())?)
        }
        "message-then-error" => {
            let mut send = respond.send_response(grpc_headers(meta), false)?;
            send.send_data(frame(0, &message), false)?;
            Ok(send.send_trailers(status_trailers(13, Some("chaos: failed after one message")))?)
        }
        "trailers-only-ok" => {
            let mut response = grpc_headers(meta);
            response.headers_mut().extend(status_trailers(0, None));
            respond.send_response(response, true)?;
            Ok(())
        }
        "no-trailers" => {
            let mut send = respond.send_response(grpc_headers(meta), false)?;
            Ok(send.send_data(frame(0, &message), true)?)
        }
        "truncated-frame" => {
            // Announces 100 bytes, sends 10 of them.
            let mut data = vec![0u8, 0, 0, 0, 100];
            data.extend_from_slice(&[0x0a, 0x08, b'c', b'h', b'a', b'o', b's', b'-', b'1', b'0']);
            send_one(respond, grpc_headers(meta), Bytes::from(data))
        }
        "compressed-no-encoding" => send_one(respond, grpc_headers(meta), frame(1, &gzip(&message))),
        "compressed-gzip" => {
            let mut response = grpc_headers(meta);
            response.headers_mut().insert("grpc-encoding", HeaderValue::from_static("gzip"));
            send_one(respond, response, frame(1, &gzip(&message)))
        }
        "unknown-flag" => send_one(respond, grpc_headers(meta), frame(0x80, &message)),
        // Field 1, wire type 2, then a length varint that never ends within the message.
        "garbage-message" => send_one(respond, grpc_headers(meta), frame(0, &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])),
        "oversized" => {
            let size = usize::try_from(number("x-chaos-size", 5 << 20)).unwrap_or(usize::MAX);
            send_one(respond, grpc_headers(meta), frame(0, &string_field_message(size)))
        }
        "reset-mid-stream" => {
            let mut send = respond.send_response(grpc_headers(meta), false)?;
            send.send_data(frame(0, &message), false)?;
            // Let the connection write the message before the reset (a reset drops what is
            // still queued for the stream).
            tokio::time::sleep(Duration::from_millis(100)).await;
            send.send_reset(Reason::INTERNAL_ERROR);
            Ok(())
        }
        "not-grpc" => {
            let response = Response::builder().status(200).header("content-type", "text/plain").body(())?;
            let mut send = respond.send_response(response, false)?;
            Ok(send.send_data(Bytes::from_static(b"hello"), true)?)
        }
        other => {
            let mut response = grpc_headers(meta);
            let message = format!("unknown chaos scenario {other:?}");
            response.headers_mut().extend(status_trailers(3, Some(&message)));
            respond.send_response(response, true)?;
            Ok(())
        }
    }
}

/// Headers, `message` in one frame, trailers 0.
fn ok(respond: SendResponse<Bytes>, meta: &HeaderMap, message: &[u8]) -> Result<()> {
    send_one(respond, grpc_headers(meta), frame(0, message))
}

/// `response` headers, `data` as the whole body, trailers with grpc-status 0.
fn send_one(mut respond: SendResponse<Bytes>, response: Response<()>, data: Bytes) -> Result<()> {
    let mut send: SendStream<Bytes> = respond.send_response(response, false)?;
    send.send_data(data, false)?;
    Ok(send.send_trailers(status_trailers(0, None))?)
}

/// gRPC response headers with `meta` as initial metadata.
fn grpc_headers(meta: &HeaderMap) -> Response<()> {
    let mut response = Response::new(());
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    response.headers_mut().extend(meta.clone());
    response
}

fn status_trailers(code: u32, message: Option<&str>) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if let Some(message) = message.and_then(|m| HeaderValue::from_str(&percent_encode(m)).ok()) {
        trailers.insert("grpc-message", message);
    }
    trailers
}

/// FAILED_PRECONDITION (9) with a google.rpc.Status carrying an ErrorInfo detail.
fn precondition_failure_trailers() -> HeaderMap {
    let text = "chaos: failed precondition";
    let mut trailers = status_trailers(9, Some(text));
    let info = rpc::ErrorInfo {
        reason: "CHAOS".into(),
        domain: "chaos.example".into(),
        metadata: [("scenario".to_string(), "headers-then-error".to_string())].into(),
    };
    let status = rpc::Status { code: 9, message: text.into(), details: vec![any("google.rpc.ErrorInfo", &info)] };
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status.encode_to_vec());
    if let Ok(value) = HeaderValue::from_str(&b64) {
        trailers.insert("grpc-status-details-bin", value);
    }
    trailers
}

/// gRPC's grpc-message encoding: bytes outside printable ASCII and `%` as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A gRPC length-prefixed message with the given flag byte.
fn frame(flag: u8, message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(flag);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

/// A message of exactly `size` bytes (≥ 2): field 1 (wire type 2) holding `x` repeated — a
/// valid string field 1 of flashsale's Item, Reservation and Order.
fn string_field_message(size: usize) -> Vec<u8> {
    let varint_len = |mut n: usize| {
        let mut len = 1;
        while n >= 0x80 {
            n >>= 7;
            len += 1;
        }
        len
    };
    let mut len = size.saturating_sub(2);
    while len > 0 && 1 + varint_len(len) + len > size {
        len -= 1;
    }
    let mut out = vec![0x0a];
    let mut n = len;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.resize(out.len() + len, b'x');
    out
}

/// A valid gzip member holding `data` in stored (uncompressed) deflate blocks: enough for a
/// compressed-looking gRPC message without a compression library.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]); // one empty final stored block
    }
    while let Some(chunk) = chunks.next() {
        let len = chunk.len() as u16;
        out.push(u8::from(chunks.peek().is_none())); // BFINAL on the last block, BTYPE 00
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Appends `{"path", "headers", "messages"}` for one request to the record file.
fn record(recorder: &Recorder, path: &str, headers: &HeaderMap, body: &[u8]) {
    let Some(file) = recorder else { return };
    let mut names = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match names.get_mut(name.as_str()) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                names.insert(name.as_str().to_string(), value.into());
            }
        }
    }
    // The request's gRPC messages (a body that is not well framed is recorded whole).
    let mut messages = Vec::new();
    let mut rest = body;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if rest.len() < 5 + len {
            break;
        }
        messages.push(base64::engine::general_purpose::STANDARD.encode(&rest[5..5 + len]));
        rest = &rest[5 + len..];
    }
    if !rest.is_empty() {
        messages.push(base64::engine::general_purpose::STANDARD.encode(rest));
    }
    let line = serde_json::json!({"path": path, "headers": names, "messages": messages});
    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(file, "{line}").and_then(|()| file.flush());
}
