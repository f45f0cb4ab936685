//! `bench_upstream`: the gRPC upstream of the end-to-end benchmark (`make bench`, bench/e2e.py).
//!
//! ```text
//! bench_upstream --payloads DIR [--listen 127.0.0.1:0] [--threads 1]
//! ```
//!
//! Service `bench.v1.Bench` of bench/proto/bench.proto, answered with fixed bytes so that the
//! upstream costs next to nothing and never becomes the bottleneck:
//!
//! | path                          | request           | response                                      |
//! |-------------------------------|-------------------|-----------------------------------------------|
//! | `/bench.v1.Bench/SubmitOrder` | `Order`           | `Ack { received_bytes, status: "ACCEPTED" }`  |
//! | `/bench.v1.Bench/SubmitBulk`  | `BulkOrders`      | same                                          |
//! | `/bench.v1.Bench/FetchOrder`  | `PayloadQuery`    | `DIR/<payload>.binpb` as is (an `Order`)      |
//! | `/bench.v1.Bench/FetchBulk`   | `PayloadQuery`    | `DIR/<payload>.binpb` as is (a `BulkOrders`)  |
//!
//! The request message is never decoded: only its length is taken from the gRPC frame header
//! (`received_bytes`, so the driver can check that a transcoder sent the whole message), and the
//! `payload` string of a `PayloadQuery` (field 1) is read off its first bytes. Anything else is a
//! trailers-only error. HTTP/2 cleartext with `h2` directly, on a current-thread runtime by
//! default (one core). It prints `bench_upstream listening on ADDR`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Request, Response};

/// Fixed-answer gRPC upstream for the bench.v1.Bench service.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Directory with small.binpb, medium.binpb, large.binpb (the peer benchmark's payloads).
    #[arg(long)]
    payloads: PathBuf,
    /// Runtime worker threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// The fetch responses (already framed), by payload name.
type Answers = Arc<HashMap<String, Bytes>>;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let args = Args::parse();
    let mut answers = HashMap::new();
    for name in ["small", "medium", "large"] {
        let path = args.payloads.join(format!("{name}.binpb"));
        match std::fs::read(&path) {
            Ok(message) => {
                answers.insert(name.to_string(), frame(&message));
            }
            Err(err) => {
                eprintln!("bench_upstream: {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("bench_upstream: runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args.listen, Arc::new(answers)))
}

async fn serve(listen: String, answers: Answers) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("bench_upstream: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("bench_upstream listening on {addr}"),
        Err(_) => println!("bench_upstream listening on {listen}"),
    }
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let answers = answers.clone();
        tokio::spawn(async move {
            // Large windows: a 1 MB request must not wait for window updates.
            let handshake = h2::server::Builder::new()
                .initial_window_size(16 << 20)
                .initial_connection_window_size(64 << 20)
                .max_frame_size(1 << 20)
                .max_concurrent_streams(4096)
                .handshake(socket);
            let Ok(mut conn) = handshake.await else {
                return;
            };
            // Polling `accept` also drives the connection (it sends what the streams queued).
            while let Some(Ok((request, respond))) = conn.accept().await {
                let answers = answers.clone();
                tokio::spawn(async move {
                    if let Err(err) = handle(request, respond, answers).await {
                        eprintln!("bench_upstream: {err}");
                    }
                });
            }
        });
    }
}

/// Reads the whole request, then answers it with fixed bytes.
async fn handle(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, answers: Answers) -> Result<()> {
    let (parts, mut body) = request.into_parts();
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    // One uncompressed gRPC message: flag byte, 4-byte big-endian length, the message.
    let message = match received.get(..5) {
        Some([0, a, b, c, d]) => {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            received.get(5..5 + len).filter(|_| received.len() == 5 + len)
        }
        _ => None,
    };
    let Some(message) = message else {
        return error(respond, 3, "expected one uncompressed gRPC message");
    };
    let answer = match parts.uri.path() {
        "/bench.v1.Bench/SubmitOrder" | "/bench.v1.Bench/SubmitBulk" => ack(message.len()),
        "/bench.v1.Bench/FetchOrder" | "/bench.v1.Bench/FetchBulk" => {
            match payload_name(message).and_then(|name| answers.get(name)) {
                Some(answer) => answer.clone(),
                None => return error(respond, 5, "unknown payload (small, medium, large)"),
            }
        }
        _ => return error(respond, 12, "unknown method"),
    };
    let mut send = respond.send_response(grpc_headers(), false)?;
    send.send_data(answer, false)?;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    Ok(send.send_trailers(trailers)?)
}

/// `PayloadQuery.payload` (field 1, a string shorter than 128 bytes) when it is the first field.
fn payload_name(message: &[u8]) -> Option<&str> {
    match message {
        [0x0a, len, rest @ ..] if usize::from(*len) <= rest.len() && *len < 0x80 => {
            std::str::from_utf8(rest.get(..usize::from(*len))?).ok()
        }
        _ => None,
    }
}

/// `Ack { received_bytes = 1; status = 2 ("ACCEPTED") }`, framed.
fn ack(received_bytes: usize) -> Bytes {
    let mut message = vec![0x08];
    let mut n = received_bytes as u64;
    while n >= 0x80 {
        message.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    message.push(n as u8);
    message.extend_from_slice(&[0x12, 8]);
    message.extend_from_slice(b"ACCEPTED");
    frame(&message)
}

fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.extend_from_slice(message);
    out.freeze()
}

fn grpc_headers() -> Response<()> {
    let mut response = Response::new(());
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// A trailers-only gRPC error.
fn error(mut respond: SendResponse<Bytes>, code: u8, message: &'static str) -> Result<()> {
    let mut response = grpc_headers();
    response.headers_mut().insert("grpc-status", HeaderValue::from(u16::from(code)));
    response.headers_mut().insert("grpc-message", HeaderValue::from_static(message));
    respond.send_response(response, true)?;
    Ok(())
}
