//! Memory per request is bounded by a small multiple of the body: the fast codec builds no
//! message tree, so transcoding the 1 MB peer-bench payload (582 orders) either way must not
//! allocate more than a few times the bytes it reads and writes. A counting allocator measures
//! the peak of live bytes during one conversion.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use json2grpc::core::codec::json::ParseOptions;
use json2grpc::core::codec::Codec;
use json2grpc::core::config::PrintOptions;
use prost_reflect::DescriptorPool;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The tests of this file measure one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }

    /// A growth counted as a move (both blocks at once, as the default does), a shrink as in
    /// place (what allocators do; the default would count a second block).
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let live = LIVE.fetch_add(new_size, Ordering::SeqCst) + new_size;
            PEAK.fetch_max(live, Ordering::SeqCst);
            LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated (above what was live before) while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let result = f();
    (result, PEAK.load(Ordering::SeqCst) - before)
}

fn bench_file(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bench").join(name)).unwrap()
}

fn codec() -> (Codec, usize) {
    let pool = DescriptorPool::decode(bench_file("bench.pb").as_slice()).unwrap();
    let codec = Codec::from_pool(&pool).unwrap();
    let index = codec.index_of("bench.v1.BulkOrders").unwrap();
    (codec, index)
}

#[test]
fn json_to_binary_peak_is_a_small_multiple_of_the_body() {
    let _serial = SERIAL.lock().unwrap();
    let (codec, index) = codec();
    let json = bench_file("large.json");
    let (binary, peak) = peak_during(|| {
        let mut out = Vec::new();
        codec.json_to_binary(index, &json, &ParseOptions::default(), &mut out).unwrap();
        out
    });
    assert_eq!(binary.len(), bench_file("large.binpb").len());
    // The output (with Vec growth slack) and small per-message scratch: well under the JSON.
    eprintln!("json_to_binary: peak {peak} B for a {} B body", json.len());
    assert!(peak <= 2 * json.len(), "peak {peak} B for a {} B body", json.len());
}

#[test]
fn binary_to_json_peak_is_a_small_multiple_of_the_output() {
    let _serial = SERIAL.lock().unwrap();
    let (codec, index) = codec();
    let binary = bench_file("large.binpb");
    let (json, peak) = peak_during(|| {
        let mut out = Vec::new();
        codec.binary_to_json(index, &binary, &PrintOptions::default(), &mut out).unwrap();
        out
    });
    assert!(json.len() > binary.len());
    // The JSON output (with Vec growth slack) plus per-message field lists.
    eprintln!("binary_to_json: peak {peak} B for {} B of JSON", json.len());
    assert!(peak <= 3 * json.len(), "peak {peak} B for {} B of JSON", json.len());
}

/// An amplification attack from the upstream: 2,000,000 empty repeated messages (4 MB), each a
/// whole object in JSON with `always_print_primitive_fields`. Printing stops at the output
/// limit, and memory goes by field changes on the wire, not by occurrences: no list of 2M
/// entries is built first (it took 64 MB natively, 40 MB in the 32-bit VM).
#[test]
fn amplified_printing_peak_is_bounded_by_the_output_limit() {
    use json2grpc::core::codec::OutputLimit;
    let _serial = SERIAL.lock().unwrap();
    let (codec, index) = codec();
    let binary = [0x0a, 0x00].repeat(2_000_000);
    let print = PrintOptions { always_print_primitive_fields: true, ..PrintOptions::default() };
    let limit = OutputLimit::new(1 << 20, "json2grpc.limits.max_response_json_bytes");
    let (result, peak) = peak_during(|| {
        let mut out = Vec::new();
        codec.binary_to_json_limited(index, &binary, &print, limit, &mut out).map(|()| out.len())
    });
    let error = result.unwrap_err();
    assert!(error.message.contains("max_response_json_bytes"), "{error}");
    eprintln!("amplified: peak {peak} B for a 1 MiB output limit");
    assert!(peak <= 3 << 20, "peak {peak} B for a 1 MiB output limit");
}

/// A field with a length-delimited payload (protobuf wire format).
fn len_field(number: u32, payload: &[u8], out: &mut Vec<u8>) {
    let varint = |mut v: u64, out: &mut Vec<u8>| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    varint(u64::from(number << 3 | 2), out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

#[test]
fn linking_many_extensions_costs_memory_linear_in_the_set() {
    // A hostile live source's set: one file with a long package and thousands of extensions
    // of nothing but a name (5 bytes each; an empty one is refused now, as protobuf refuses a
    // nameless extension). Each must not copy the package (that cost 65 MB here).
    let _serial = SERIAL.lock().unwrap();
    let mut file = Vec::new();
    len_field(1, b"x.proto", &mut file);
    len_field(2, "p".repeat(16 * 1024).as_bytes(), &mut file);
    len_field(12, b"proto3", &mut file);
    let mut named = Vec::new();
    len_field(1, b"e", &mut named);
    for _ in 0..4096 {
        len_field(7, &named, &mut file);
    }
    let mut set = Vec::new();
    len_field(1, &file, &mut set);
    let (schema, peak) = peak_during(|| json2grpc::core::schema::descriptors::load_schema(&set));
    // Extensions naming no extendee: left out, as unknown fields (as before).
    assert!(schema.is_ok());
    eprintln!("load_schema: peak {peak} B for a {} B set", set.len());
    // ~100 B per decoded extension (4,096 of them here, one file decoded at a time), with its
    // vector's growth, and the built-in types; copying the package per extension was 65 MB.
    assert!(peak <= 48 * set.len(), "peak {peak} B for a {} B set", set.len());
}

/// A 768 KiB set of noise and a configuration with it in base64.
fn config_with_a_set() -> (Vec<u8>, String) {
    use base64::Engine;
    let set: Vec<u8> = (0..768 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&set);
    let text = format!(r#"{{"services": ["a.B"], "proto_descriptor_bin": "{encoded}", "auto_mapping": true}}"#);
    (set, text)
}

#[test]
fn the_filter_decodes_the_descriptor_set_in_the_configuration_s_own_memory() {
    // Every worker's VM holds the configuration's text while parsing it; the base64 set in it
    // must not be decoded into a second buffer (the VM's memory never shrinks below its peak).
    let _serial = SERIAL.lock().unwrap();
    let (set, text) = config_with_a_set();
    let mut in_place = text.clone().into_bytes();
    let (config, peak) = peak_during(|| json2grpc::core::config::Config::from_json_in_place(&mut in_place).unwrap());
    eprintln!("from_json_in_place: peak {peak} B for a {} B text", text.len());
    assert!(config.proto_descriptor_bin == set && config.auto_mapping && in_place.is_empty());
    assert!(peak < text.len() / 20, "peak {peak} B for a {} B text", text.len());
    // A copy (what the tool and the tests use) costs the set's size.
    let (config, peak) = peak_during(|| json2grpc::core::config::Config::from_json(text.as_bytes()).unwrap());
    assert_eq!(config.proto_descriptor_bin, set);
    assert!(peak >= set.len(), "peak {peak} B");
}

#[test]
fn the_filter_reads_its_configuration_in_pieces_and_holds_the_set_not_its_text() {
    // Every worker's VM reads the configuration from the host; read whole, its base64 text
    // (4/3 of the set) would be the VM's peak until the build.
    let _serial = SERIAL.lock().unwrap();
    let (set, text) = config_with_a_set();
    let read =
        |start: usize, len: usize| text.as_bytes().get(start..start + len.min(text.len() - start)).map(<[u8]>::to_vec);
    let (config, peak) = peak_during(|| json2grpc::core::config::Config::from_pieces(text.len(), read).unwrap());
    eprintln!("from_pieces: peak {peak} B for a {} B set in a {} B text", set.len(), text.len());
    assert!(config.proto_descriptor_bin == set && config.auto_mapping);
    // The set, one 64 KiB piece and a run being decoded; the text is 256 KiB more than the set.
    assert!(peak < set.len() + 96 * 1024, "peak {peak} B for a {} B set", set.len());
    // Not plain (an escape in the value): read whole, as before.
    let escaped = text.replacen(r#""proto_descriptor_bin": ""#, r#""proto_descriptor_bin": "\u0041AAA"#, 1);
    let read = |start: usize, len: usize| {
        escaped.as_bytes().get(start..start + len.min(escaped.len() - start)).map(<[u8]>::to_vec)
    };
    let (config, peak) = peak_during(|| json2grpc::core::config::Config::from_pieces(escaped.len(), read));
    assert!(config.is_ok(), "{:?}", config.err());
    assert!(peak >= escaped.len(), "peak {peak} B");
}

#[test]
fn the_filter_drops_a_set_s_comments_before_building_unless_it_serves_openapi() {
    // A set's comments (source_code_info, often half of it) are freed before the schema is
    // built, so the build reuses their memory instead of adding to it (a VM never shrinks).
    use base64::Engine;
    use json2grpc::core::config::Config;
    use json2grpc::core::transcoder::Transcoder;
    let _serial = SERIAL.lock().unwrap();
    let mut set = Vec::new();
    let mut first = true;
    for f in json2grpc::core::codec::wire::fields(include_bytes!("../testdata/openapi_test.pb")) {
        let f = f.unwrap();
        let mut file = f.value.to_vec();
        if first {
            // 1 MiB of comments on the first file.
            len_field(9, &vec![b'c'; 1 << 20], &mut file);
            first = false;
        }
        len_field(f.number, &file, &mut set);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&set);
    let build = |extra: &str| {
        let text = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["doc.v1.Library"]{extra}}}"#);
        let mut text = text.into_bytes();
        let config = Config::from_json_in_place(&mut text).unwrap();
        let (t, peak) = peak_during(|| Transcoder::for_serving(config).unwrap());
        drop(t);
        peak
    };
    // Freed first: the build stays below what the set held on its own.
    let dropped = build("");
    // Kept for the OpenAPI document: the build comes on top of it.
    let kept = build(r#","json2grpc":{"openapi":{"path":"/openapi.json"}}"#);
    eprintln!("for_serving: peak above the configuration {dropped} B (comments dropped), {kept} B (kept)");
    assert!(dropped < 4096, "{dropped} B");
    assert!(kept > 16 * 1024, "{kept} B");
}

/// 100 files of 10 messages of 8 fields and a service each (a protoc-like set: every field
/// has its default `json_name` if `json_names`).
fn hundred_files(json_names: bool) -> Vec<u8> {
    let varint_field = |number: u32, value: u64, out: &mut Vec<u8>| {
        out.push((number << 3) as u8);
        let mut v = value;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    let mut set = Vec::new();
    for f in 0..100 {
        let mut file = Vec::new();
        len_field(1, format!("f{f}.proto").as_bytes(), &mut file);
        len_field(2, format!("p{f}").as_bytes(), &mut file);
        len_field(12, b"proto3", &mut file);
        for m in 0..10 {
            let mut message = Vec::new();
            len_field(1, format!("Message{m}").as_bytes(), &mut message);
            for n in 1..=8u32 {
                let mut field = Vec::new();
                len_field(1, format!("field_number_{n}").as_bytes(), &mut field);
                varint_field(3, n.into(), &mut field);
                varint_field(4, 1, &mut field);
                match n {
                    8 => {
                        varint_field(5, 11, &mut field);
                        len_field(6, format!(".p{f}.Message{}", (m + 1) % 10).as_bytes(), &mut field);
                    }
                    _ => varint_field(5, 9, &mut field),
                }
                if json_names {
                    len_field(10, format!("fieldNumber{n}").as_bytes(), &mut field);
                }
                len_field(2, &field, &mut message);
            }
            len_field(4, &message, &mut file);
        }
        let mut method = Vec::new();
        len_field(1, b"Get", &mut method);
        len_field(2, format!(".p{f}.Message0").as_bytes(), &mut method);
        len_field(3, format!(".p{f}.Message1").as_bytes(), &mut method);
        let mut service = Vec::new();
        len_field(1, b"S", &mut service);
        len_field(2, &method, &mut service);
        len_field(6, &service, &mut file);
        len_field(1, &file, &mut set);
    }
    set
}

#[test]
fn the_filter_links_a_descriptor_set_into_the_memory_the_set_frees() {
    // A worker's VM frees the set file by file as the last pass of linking reads it (fields
    // and services are most of the schema), so the schema grows into that memory instead of
    // on top of the set: its memory never shrinks below the peak.
    let _serial = SERIAL.lock().unwrap();
    let set = hundred_files(true);
    let freed = serving_peak(&set, "");
    // Kept for the OpenAPI document: the schema comes on top of the whole set.
    let kept = serving_peak(&set, r#","json2grpc":{"openapi":{"path":"/openapi.json"}}"#);
    eprintln!("for_serving: peak {freed} B (set freed as linked), {kept} B (kept); set {} B", set.len());
    assert!(freed + set.len() / 2 < kept, "freed {freed} B, kept {kept} B, set {} B", set.len());
}

#[test]
fn the_filter_links_a_protoc_set_without_its_default_json_names() {
    // protoc writes every field's json_name; a worker's VM holds the set at the link's peak,
    // and needs only the names that differ from the default.
    let _serial = SERIAL.lock().unwrap();
    let (with, without) = (hundred_files(true), hundred_files(false));
    let (peak_with, peak_without) = (serving_peak(&with, ""), serving_peak(&without, ""));
    eprintln!(
        "for_serving: peak {peak_with} B for a {} B set with json names, {peak_without} B for the {} B set without",
        with.len(),
        without.len()
    );
    assert!(with.len() > without.len() + 16 * 1024);
    // The set as configured is held whole once, with the rewrite's list of lengths (the peak
    // when the link's is lower); the link itself costs what it does without the names.
    let rewrite = with.len() + with.len() / 25;
    assert!(
        peak_with <= peak_without.max(rewrite) + 1024,
        "{peak_with} B with json names, {peak_without} B without, {rewrite} B to rewrite the set"
    );
}

/// The peak heap while a worker's transcoder is built from `set`, its configuration's included
/// (it holds the set); `extra`: more of the configuration's top-level keys.
fn serving_peak(set: &[u8], extra: &str) -> usize {
    use base64::Engine;
    use json2grpc::core::config::Config;
    use json2grpc::core::transcoder::Transcoder;
    let b64 = base64::engine::general_purpose::STANDARD.encode(set);
    let text = format!(r#"{{"proto_descriptor_bin":"{b64}","services":["p0.S"],"auto_mapping":true{extra}}}"#);
    let mut text = text.into_bytes();
    let config = Config::from_json_in_place(&mut text).unwrap();
    drop(text);
    // (The rest of the configuration is a few bytes.)
    let held = config.proto_descriptor_bin.capacity();
    let (t, peak) = peak_during(|| Transcoder::for_serving(config).unwrap());
    assert_eq!(t.router.methods.len(), 1);
    drop(t);
    held + peak
}

#[test]
fn linking_a_file_of_many_messages_sizes_its_lists_first() {
    // A hostile set: one file of 100,000 empty messages (9 bytes each). The file's list of
    // decoded messages (~170 bytes each natively) grew by doubling: its old halves counted at
    // every growth, and left as holes in a VM's linear memory.
    let _serial = SERIAL.lock().unwrap();
    let mut file = Vec::new();
    len_field(1, b"x.proto", &mut file);
    len_field(2, b"q", &mut file);
    len_field(12, b"proto3", &mut file);
    for i in 0..100_000 {
        let mut message = Vec::new();
        len_field(1, format!("M{i:05x}").as_bytes(), &mut message);
        len_field(4, &message, &mut file);
    }
    let mut set = Vec::new();
    len_field(1, &file, &mut set);
    let (schema, peak) = peak_during(|| json2grpc::core::schema::descriptors::load_schema(&set));
    assert!(schema.unwrap().messages.len() > 100_000);
    eprintln!("load_schema: peak {peak} B for a {} B set of 100,000 empty messages", set.len());
    // 50 MB before, 24 MB now (each pass decodes the file's messages once more).
    assert!(peak <= 30 * set.len(), "peak {peak} B for a {} B set", set.len());
}
