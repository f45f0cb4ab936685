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
//! | `/bench.v1.Bench/StreamTicks` | `StreamQuery`     | a stream of `count` `Tick`s of about `size` bytes, `batch` per DATA frame, `interval_us` apart |
//!
//! The request message is never decoded: only its length is taken from the gRPC frame header
//! (`received_bytes`, so the driver can check that a transcoder sent the whole message), and the
//! `payload` string of a `PayloadQuery` (field 1) is read off its first bytes; a `StreamQuery`'s
//! varints are read (its messages are written as the h2 send window allows, so the upstream never
//! buffers more than a window of a long stream). Anything else is a
//! trailers-only error. HTTP/2 cleartext with `h2` directly, on a current-thread runtime by
//! default (one core). It prints `bench_upstream listening on ADDR`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
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
    if parts.uri.path() == "/bench.v1.Bench/StreamTicks" {
        return match StreamQuery::parse(message) {
            Some(query) => stream_ticks(respond, query).await,
            None => error(respond, 3, "bad StreamQuery (count <= 10,000,000, size <= 65536, batch <= 4096)"),
        };
    }
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

/// `StreamQuery` (bench.proto): every field a varint.
#[derive(Debug, Default)]
struct StreamQuery {
    count: u64,
    size: u64,
    batch: u64,
    interval_us: u64,
}

impl StreamQuery {
    fn parse(mut message: &[u8]) -> Option<StreamQuery> {
        let mut query = StreamQuery::default();
        while !message.is_empty() {
            let (key, rest) = varint(message)?;
            let (value, rest) = varint(rest)?;
            message = rest;
            match key {
                0x08 => query.count = value,
                0x10 => query.size = value,
                0x18 => query.batch = value,
                0x20 => query.interval_us = value,
                _ => return None,
            }
        }
        query.batch = query.batch.max(1);
        (query.count <= 10_000_000 && query.size <= 65536 && query.batch <= 4096).then_some(query)
    }
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..)?));
        }
    }
    None
}

fn put_varint(out: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        out.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

fn varint_len(n: u64) -> u64 {
    (u64::BITS - (n | 1).leading_zeros()).div_ceil(7).into()
}

/// Answers a `StreamTicks` call: `Tick { seq = i (from 1), data = "x"… }` frames, `batch` per
/// DATA frame, each batch sent when the stream's send window has room for it.
async fn stream_ticks(mut respond: SendResponse<Bytes>, query: StreamQuery) -> Result<()> {
    let mut send = respond.send_response(grpc_headers(), false)?;
    let filler = vec![b'x'; query.size as usize];
    let mut seq = 0u64;
    while seq < query.count {
        let mut chunk = BytesMut::new();
        for _ in 0..query.batch.min(query.count - seq) {
            seq += 1;
            let data_len = query.size.saturating_sub(2 + varint_len(seq) + varint_len(query.size));
            let len = 2 + varint_len(seq) + varint_len(data_len) + data_len;
            chunk.put_u8(0);
            chunk.put_u32(len as u32);
            chunk.put_u8(0x08);
            put_varint(&mut chunk, seq);
            chunk.put_u8(0x12);
            put_varint(&mut chunk, data_len);
            chunk.extend_from_slice(filler.get(..data_len as usize).unwrap_or_default());
        }
        send_paced(&mut send, chunk.freeze()).await?;
        if query.interval_us > 0 && seq < query.count {
            tokio::time::sleep(std::time::Duration::from_micros(query.interval_us)).await;
        }
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    Ok(send.send_trailers(trailers)?)
}

/// Queues `data` once h2 gives the stream send capacity for it (h2 caps what a stream may hold
/// at its max send buffer, 400 KiB by default: a batch is at most 4096 * 64 KiB, so wait for
/// 256 KiB at most and let h2 hold the rest).
async fn send_paced(send: &mut SendStream<Bytes>, data: Bytes) -> Result<()> {
    let wanted = data.len().min(256 << 10);
    send.reserve_capacity(data.len());
    while send.capacity() < wanted {
        match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => return Err("stream closed while sending".into()),
        }
    }
    Ok(send.send_data(data, false)?)
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
