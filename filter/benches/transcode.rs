//! `make bench`: the core's JSON ⇄ protobuf speed on the peer benchmark's payloads
//! (testdata/bench: a flash-sale `bench.v1.Order`, small and medium, and a 582-order
//! `bench.v1.BulkOrders`, large), with the peers' descriptor set `bench.pb` (made by protoc).
//!
//! Throughput is in bytes of JSON both ways, as in the peer benchmark: the JSON input for
//! `json_to_binary`, the JSON output (default print options) for `binary_to_json`; decimal
//! units (1 MB = 1e6 B, criterion's `BytesDecimal`) like the peers' tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use json2grpc::core::codec::json::ParseOptions;
use json2grpc::core::codec::Codec;
use json2grpc::core::config::PrintOptions;
use json2grpc::testing::reflect_json::{binary_to_json, json_to_binary};
use prost_reflect::{DescriptorPool, MessageDescriptor};

struct Payload {
    name: &'static str,
    desc: MessageDescriptor,
    json: Vec<u8>,
    binary: Vec<u8>,
}

fn payloads() -> Vec<Payload> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bench");
    let read = |file: &str| std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let pool = DescriptorPool::decode(read("bench.pb").as_slice()).unwrap();
    [("small", "bench.v1.Order"), ("medium", "bench.v1.Order"), ("large", "bench.v1.BulkOrders")]
        .into_iter()
        .map(|(name, type_name)| Payload {
            name,
            desc: pool.get_message_by_name(type_name).unwrap(),
            json: read(&format!("{name}.json")),
            binary: read(&format!("{name}.binpb")),
        })
        .collect()
}

/// Short runs; the 1 MB payload takes tens of milliseconds per op, so fewer, flat samples.
fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, payload: &Payload) {
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    if payload.name == "large" {
        group.sample_size(20);
        group.sampling_mode(SamplingMode::Flat);
    } else {
        group.sample_size(50);
        group.sampling_mode(SamplingMode::Auto);
    }
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    let parse = ParseOptions::default();
    let print = PrintOptions::default();
    let codec = Codec::from_pool(payloads[0].desc.parent_pool()).unwrap();

    // The fast path (what the filter runs): JSON tokens straight to wire format and back.
    let mut group = c.benchmark_group("fast_json_to_binary");
    for p in &payloads {
        let index = codec.index(&p.desc).unwrap();
        let mut bytes = Vec::new();
        codec.json_to_binary(index, &p.json, &parse, &mut bytes).unwrap();
        let decoded = prost_reflect::DynamicMessage::decode(p.desc.clone(), bytes.as_slice()).unwrap();
        let expected = prost_reflect::DynamicMessage::decode(p.desc.clone(), p.binary.as_slice()).unwrap();
        assert!(decoded == expected, "{}: fast json_to_binary differs from {}.binpb", p.name, p.name);
        configure(&mut group, p);
        group.throughput(Throughput::BytesDecimal(p.json.len() as u64));
        group.bench_function(p.name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(p.json.len() / 2);
                codec.json_to_binary(index, black_box(&p.json), &parse, &mut out).unwrap();
                out
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("fast_binary_to_json");
    for p in &payloads {
        let index = codec.index(&p.desc).unwrap();
        let mut out = Vec::new();
        codec.binary_to_json(index, &p.binary, &print, &mut out).unwrap();
        let reparsed = json_to_binary(&p.desc, &out, &parse).unwrap();
        let decoded = prost_reflect::DynamicMessage::decode(p.desc.clone(), reparsed.as_slice()).unwrap();
        let expected = prost_reflect::DynamicMessage::decode(p.desc.clone(), p.binary.as_slice()).unwrap();
        assert!(decoded == expected, "{}: fast binary_to_json does not parse back to {}.binpb", p.name, p.name);
        configure(&mut group, p);
        group.throughput(Throughput::BytesDecimal(out.len() as u64));
        group.bench_function(p.name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(p.binary.len() * 3);
                codec.binary_to_json(index, black_box(&p.binary), &print, &mut out).unwrap();
                out
            })
        });
    }
    group.finish();

    if std::env::var_os("BENCH_REFLECTION").is_none() {
        return;
    }
    // The reflection path (prost-reflect), for comparison: BENCH_REFLECTION=1 make bench.

    let mut group = c.benchmark_group("reflection_json_to_binary");
    for p in &payloads {
        // Check before timing: the JSON must become exactly the peers' binary message.
        let bytes = json_to_binary(&p.desc, &p.json, &parse).unwrap();
        let decoded = prost_reflect::DynamicMessage::decode(p.desc.clone(), bytes.as_slice()).unwrap();
        let expected = prost_reflect::DynamicMessage::decode(p.desc.clone(), p.binary.as_slice()).unwrap();
        assert!(decoded == expected, "{}: json_to_binary differs from {}.binpb", p.name, p.name);
        configure(&mut group, p);
        group.throughput(Throughput::BytesDecimal(p.json.len() as u64));
        group.bench_function(p.name, |b| b.iter(|| json_to_binary(&p.desc, black_box(&p.json), &parse).unwrap()));
    }
    group.finish();

    let mut group = c.benchmark_group("reflection_binary_to_json");
    for p in &payloads {
        let mut out = Vec::new();
        binary_to_json(&p.desc, &p.binary, &print, &mut out).unwrap();
        let reparsed = json_to_binary(&p.desc, &out, &parse).unwrap();
        let decoded = prost_reflect::DynamicMessage::decode(p.desc.clone(), reparsed.as_slice()).unwrap();
        let expected = prost_reflect::DynamicMessage::decode(p.desc.clone(), p.binary.as_slice()).unwrap();
        assert!(decoded == expected, "{}: binary_to_json output does not parse back to {}.binpb", p.name, p.name);
        eprintln!("{}: {} B binary -> {} B JSON (input JSON {} B)", p.name, p.binary.len(), out.len(), p.json.len());
        configure(&mut group, p);
        group.throughput(Throughput::BytesDecimal(out.len() as u64));
        group.bench_function(p.name, |b| {
            b.iter(|| {
                let mut out = Vec::new();
                binary_to_json(&p.desc, black_box(&p.binary), &print, &mut out).unwrap();
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
