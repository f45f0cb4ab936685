//! The core's speed, natively and inside V8 (as wasm32-wasip1 under Node, bench/wasm-core/run.mjs):
//!
//! ```text
//! json2grpc-bench-core DIR [--runtime NAME] [--min-time S] [--rounds N]
//!                          [--configure FILE] [--configure-runs N]
//! json2grpc-bench-core DIR --memory FILE [--runtime NAME]
//! ```
//!
//! DIR holds `plugin.json` (a plugin configuration for the bench schema) and the peer
//! benchmark's payloads (`{small,medium,large}.{json,binpb}`). The conversions are the filter's:
//! `Transcoder::from_json(plugin.json)`, then its `codec` (the fast path) with the transcoder's
//! parse options and print options, as in filter/benches/transcode.rs. Each output is checked
//! against the `.binpb` first.
//!
//! Timing follows the peer benchmark: one op is one whole conversion of one payload into a fresh
//! buffer; after a warm-up, batches double until one takes at least `--min-time`; the cell keeps
//! its best round of `--rounds` interleaved rounds. Throughput is MB/s of JSON (1 MB = 1e6 B) both
//! ways. Inside wasm the clock is WASI's `clock_time_get` (monotonic), which Node provides.
//!
//! `--configure FILE` also times `Config::from_json(FILE)` and `Transcoder::for_serving` (what a
//! worker's `on_configure` does, but reading the text whole and without the host calls): the
//! first call (cold: in V8 it includes the lazy compilation of
//! the code it runs) and the median of `--configure-runs` more.
//!
//! `--memory FILE` (alone, in a fresh process) reports what a configuration costs in memory, built
//! as the filter builds it (`MEMORY`): the peak heap while the configuration is read (in
//! pieces, as the filter reads the host's buffer) and while the transcoder is built (a Wasm VM's linear memory grows to its
//! peak and never shrinks), the heap it keeps serving, and inside wasm the linear memory's size
//! afterwards; then (`MEMORY_PARTS`) what holds it, each part freed in turn: the router, the
//! codec (its per-message plan slots and enum plans), the schema and the rest (the
//! configuration).
//!
//! Output lines: `RESULT impl=json2grpc runtime=… payload=… dir=json2bin|bin2json …`,
//! `CONFIGURE runtime=… …` and `MEMORY runtime=… …`, parsed by bench/report.py.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use json2grpc::core::config::Config;
use json2grpc::core::transcoder::Transcoder;
use prost_reflect::DynamicMessage;
use sha2::Digest;

/// The filter's allocator on wasm32 (`json2grpc::alloc`: blocks of slots for small
/// allocations), the system's natively.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
static INNER: json2grpc::alloc::SmallSlots<System> = json2grpc::alloc::SmallSlots::new(System);
#[cfg(not(all(target_arch = "wasm32", not(target_feature = "atomics"))))]
static INNER: System = System;

/// Runs `f` as the filter runs a configuration's build (its small allocations in slots).
fn building<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    return INNER.building(f);
    #[cfg(not(all(target_arch = "wasm32", not(target_feature = "atomics"))))]
    f()
}

/// The filter's allocator, counting the bytes live now and their peak, and the live allocations
/// (each costs the allocator's header and rounding besides its bytes).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the inner allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        COUNT.fetch_add(1, Ordering::Relaxed);
        unsafe { INNER.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        COUNT.fetch_sub(1, Ordering::Relaxed);
        unsafe { INNER.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The linear memory's size inside wasm (0 natively).
fn linear_memory() -> usize {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

struct Args {
    dir: PathBuf,
    runtime: String,
    min_time: Duration,
    rounds: usize,
    configure: Option<PathBuf>,
    configure_runs: usize,
    memory: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        dir: PathBuf::new(),
        runtime: if cfg!(target_arch = "wasm32") { "wasm".into() } else { "native".into() },
        min_time: Duration::from_millis(300),
        rounds: 2,
        configure: None,
        configure_runs: 9,
        memory: None,
    };
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runtime" => out.runtime = value("--runtime")?,
            "--min-time" => {
                let s: f64 = value("--min-time")?.parse().map_err(|e| format!("--min-time: {e}"))?;
                out.min_time = Duration::from_secs_f64(s);
            }
            "--rounds" => out.rounds = value("--rounds")?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--configure" => out.configure = Some(PathBuf::from(value("--configure")?)),
            "--memory" => out.memory = Some(PathBuf::from(value("--memory")?)),
            "--configure-runs" => {
                out.configure_runs = value("--configure-runs")?.parse().map_err(|e| format!("--configure-runs: {e}"))?
            }
            _ if dir.is_none() && !arg.starts_with("--") => dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    out.dir = dir.ok_or("usage: json2grpc-bench-core DIR [--runtime NAME] [--min-time S] [--rounds N] [--configure FILE] [--configure-runs N]")?;
    Ok(out)
}

struct Payload {
    name: &'static str,
    index: usize,
    json: Vec<u8>,
    binary: Vec<u8>,
    /// Length of the JSON that binary_to_json prints (its throughput is counted in it).
    json_out: usize,
}

/// Runs `op` in doubling batches until one batch takes `min_time`; ns per op of that batch.
fn time_op(min_time: Duration, mut op: impl FnMut()) -> (u64, f64) {
    for _ in 0..3 {
        op();
    }
    let mut iters: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        let elapsed = start.elapsed();
        if elapsed >= min_time || iters >= 1 << 30 {
            return (iters, elapsed.as_nanos() as f64 / iters as f64);
        }
        iters *= 2;
    }
}

/// `--memory FILE`: in a fresh process, what a transcoder of FILE costs built as the filter
/// builds it (`Config::from_pieces` reading the file in pieces, as the filter reads the host's
/// buffer; `Transcoder::for_serving`): the peak heap of reading the configuration and of the
/// build, what it keeps serving, the linear memory then, and what holds it.
fn memory(runtime: &str, path: &PathBuf) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let config_bytes = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len() as usize;
    let live = || LIVE.load(Ordering::Relaxed);
    let peak_since = |base: usize| PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let start = live();
    let start_count = COUNT.load(Ordering::Relaxed);
    // Each piece is a new allocation, as the host's are (proxy_on_memory_allocate).
    let read = |from: usize, len: usize| {
        let mut file = std::fs::File::open(path).ok()?;
        file.seek(SeekFrom::Start(from as u64)).ok()?;
        let mut piece = Vec::with_capacity(len.min(config_bytes.saturating_sub(from)));
        file.take(len as u64).read_to_end(&mut piece).ok()?;
        Some(piece)
    };
    PEAK.store(live(), Ordering::Relaxed);
    let config = building(|| Config::from_pieces(config_bytes, black_box(read))).map_err(|e| e.to_string())?;
    let parse_peak = peak_since(start);
    let descriptor_bytes = config.proto_descriptor_bin.len();
    PEAK.store(live(), Ordering::Relaxed);
    let mut t = building(|| Transcoder::for_serving(config)).map_err(|e| e.to_string())?;
    let build_peak = peak_since(start);
    let serving = live() - start;
    let count = || COUNT.load(Ordering::Relaxed);
    println!(
        "MEMORY runtime={runtime} config_bytes={config_bytes} descriptor_bytes={descriptor_bytes} methods={} parse_peak_bytes={parse_peak} build_peak_bytes={build_peak} serving_bytes={serving} serving_allocations={} linear_memory_bytes={}",
        t.router.methods.len(),
        count().saturating_sub(start_count),
        linear_memory(),
    );
    // What holds it: each part freed in turn (the codec shares the schema, so it goes first).
    let freed = |part: &mut dyn FnMut()| {
        let (before, allocations) = (live(), count());
        part();
        (before.saturating_sub(live()), allocations.saturating_sub(count()))
    };
    let (router, router_n) = freed(&mut || drop(std::mem::replace(&mut t.router, empty_router())));
    let (codec, codec_n) = freed(&mut || t.codec = std::sync::Arc::new(json2grpc::core::codec::Codec::default()));
    let (schema, schema_n) = freed(&mut || t.schema = std::sync::Arc::new(Default::default()));
    let rest = live().saturating_sub(start);
    println!(
        "MEMORY_PARTS runtime={runtime} router_bytes={router} codec_bytes={codec} schema_bytes={schema} rest_bytes={rest} router_allocations={router_n} codec_allocations={codec_n} schema_allocations={schema_n}"
    );
    Ok(())
}

/// A router with no bindings, to free a transcoder's.
fn empty_router() -> json2grpc::core::route::router::Router {
    let config = Config::from_json(br#"{"proto_descriptor_bin": ""}"#).expect("an empty configuration");
    json2grpc::core::route::router::Router::build(&config, &Default::default()).expect("an empty router")
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if let Some(path) = &args.memory {
        return memory(&args.runtime, path);
    }
    let read =
        |name: &str| std::fs::read(args.dir.join(name)).map_err(|e| format!("{}/{name}: {e}", args.dir.display()));
    let transcoder = Transcoder::from_json(&read("plugin.json")?).map_err(|e| e.to_string())?;
    let codec = &transcoder.codec;
    let parse = &transcoder.parse_options;
    let print = &transcoder.config.print_options;

    // The reference decoder's pool, from the same descriptor set.
    let pool = prost_reflect::DescriptorPool::decode(transcoder.config.proto_descriptor_bin.as_slice())
        .map_err(|e| e.to_string())?;
    let mut payloads = Vec::new();
    for (name, type_name) in
        [("small", "bench.v1.Order"), ("medium", "bench.v1.Order"), ("large", "bench.v1.BulkOrders")]
    {
        let desc = pool.get_message_by_name(type_name).ok_or(format!("no message {type_name}"))?;
        let index = codec.index_of(type_name).ok_or(format!("{type_name}: not on the fast path"))?;
        let json = read(&format!("{name}.json"))?;
        let binary = read(&format!("{name}.binpb"))?;
        let expected = DynamicMessage::decode(desc.clone(), binary.as_slice()).map_err(|e| e.to_string())?;
        // Checks before timing: JSON -> binary gives the .binpb's message, binary -> JSON parses back to it.
        let mut bytes = Vec::new();
        codec.json_to_binary(index, &json, parse, &mut bytes).map_err(|e| format!("{name} json2bin: {e}"))?;
        let got = DynamicMessage::decode(desc.clone(), bytes.as_slice()).map_err(|e| e.to_string())?;
        if got != expected {
            return Err(format!("{name}: json_to_binary differs from {name}.binpb"));
        }
        let mut out = Vec::new();
        codec.binary_to_json(index, &binary, print, &mut out).map_err(|e| format!("{name} bin2json: {e}"))?;
        let mut back = Vec::new();
        codec.json_to_binary(index, &out, parse, &mut back).map_err(|e| format!("{name} reparse: {e}"))?;
        let got = DynamicMessage::decode(desc.clone(), back.as_slice()).map_err(|e| e.to_string())?;
        if got != expected {
            return Err(format!("{name}: binary_to_json output does not parse back to {name}.binpb"));
        }
        payloads.push(Payload { name, index, json, binary, json_out: out.len() });
    }

    // best[payload][dir] = (ns/op, iters)
    let mut best = vec![[(f64::INFINITY, 0u64); 2]; payloads.len()];
    for _round in 0..args.rounds.max(1) {
        for (i, p) in payloads.iter().enumerate() {
            let (iters, ns) = time_op(args.min_time, || {
                let mut out = Vec::with_capacity(p.json.len() / 2);
                let r = codec.json_to_binary(p.index, black_box(&p.json), parse, &mut out);
                black_box((r.is_ok(), out));
            });
            if ns < best[i][0].0 {
                best[i][0] = (ns, iters);
            }
            let (iters, ns) = time_op(args.min_time, || {
                let mut out = Vec::with_capacity(p.binary.len() * 3);
                let r = codec.binary_to_json(p.index, black_box(&p.binary), print, &mut out);
                black_box((r.is_ok(), out));
            });
            if ns < best[i][1].0 {
                best[i][1] = (ns, iters);
            }
        }
    }
    for (p, cells) in payloads.iter().zip(&best) {
        for (dir, (ns, iters), json_bytes) in [("json2bin", cells[0], p.json.len()), ("bin2json", cells[1], p.json_out)]
        {
            println!(
                "RESULT impl=json2grpc runtime={} payload={} dir={dir} json_bytes={json_bytes} bin_bytes={} iters={iters} ns_op={ns:.0} mb_s={:.2}",
                args.runtime,
                p.name,
                p.binary.len(),
                json_bytes as f64 / ns * 1e3,
            );
        }
    }

    if let Some(path) = &args.configure {
        let config = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut times = Vec::new();
        let mut methods = 0;
        let mut services = 0;
        for _ in 0..=args.configure_runs {
            let start = Instant::now();
            let t = building(|| {
                let parsed = Config::from_json(black_box(&config)).map_err(|e| e.to_string())?;
                Transcoder::for_serving(parsed).map_err(|e| e.to_string())
            })?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            methods = t.router.methods.len();
            services = t.config.services.len();
            drop(black_box(t));
        }
        let first = times.remove(0);
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(first);
        let min = times.first().copied().unwrap_or(first);
        let max = times.last().copied().unwrap_or(first);
        println!(
            "CONFIGURE runtime={} services={services} methods={methods} config_bytes={} first_ms={first:.2} median_ms={median:.2} min_ms={min:.2} max_ms={max:.2} runs={} times_ms={}",
            args.runtime,
            config.len(),
            times.len(),
            times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(","),
        );
    }
    if let Some(path) = &args.configure {
        // A live-descriptor swap (json2grpc.descriptor): what a VM does when a new set arrives:
        // the set's SHA-256 (the fetching VM compares it with the published one) and a
        // transcoder built from the configuration with that set.
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = Config::from_json(&text).map_err(|e| e.to_string())?;
        let mut times = Vec::new();
        for _ in 0..=args.configure_runs {
            let start = Instant::now();
            let digest = sha2::Sha256::digest(black_box(&base.proto_descriptor_bin));
            let t = Transcoder::new(black_box(base.clone())).map_err(|e| e.to_string())?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            drop(black_box((digest, t)));
        }
        let first = times.remove(0);
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(first);
        println!(
            "SWAP runtime={} descriptor_bytes={} first_ms={first:.2} median_ms={median:.2} runs={}",
            args.runtime,
            base.proto_descriptor_bin.len(),
            times.len(),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("json2grpc-bench-core: {e}");
            ExitCode::FAILURE
        }
    }
}
