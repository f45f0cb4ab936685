#!/usr/bin/env python3
"""Where json2grpc's per-request CPU goes in Envoy: a ladder of empty-filter variants.

Envoy is stripped and V8's JIT code has no symbols, so a profile of the real Envoy only splits
"Envoy" from "Wasm code". This splits the host side: the same gRPC request goes through
bench/floor-filter configured to make a given set of host calls per request (the ones
json2grpc makes for a unary call: read and write each header map, buffer and replace each body,
counters), rung by rung, next to plain gRPC (no filter) and json2grpc itself on the JSON path.
Each rung's Envoy CPU per request minus the previous rung's is what those calls cost; json2grpc
minus the rung that makes its host calls is its own Wasm code (the core, header edits,
allocations).

Envoy --concurrency 1 pinned to CPU 0, h2load and the upstream on CPU 1 (as bench/e2e.py), the
configs taking turns slice by slice. Writes JSON to --out and prints a table.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402

# json2grpc's host calls for a unary JSON call (filter/src/testing/callback_tests.rs,
# assert_unary_exchange_host_calls): each header map read once and written once, each body
# buffered, read and replaced, six counter increments.
GETS = "req_headers_get,resp_headers_get,resp_trailers_get"
HEADERS = f"{GETS},req_headers_set,resp_headers_set,resp_trailers_set"
# The same edits as single-header calls (json2grpc changes about four request headers and two
# response headers): the alternative to writing whole maps.
REPLACES = f"{GETS},req_header_replace*4,resp_header_replace*2"
BODIES = "req_body_buffer,req_body_get,req_body_set,resp_body_buffer,resp_body_get,resp_body_set"
RUNGS = [
    ("grpc", None),
    ("floor", ""),
    ("+gets", GETS),
    ("+replaces", REPLACES),
    ("+headers", HEADERS),
    ("+bodies", f"{HEADERS},{BODIES}"),
    ("+metrics", f"{HEADERS},{BODIES},metric*6"),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    e2e.add_run_args(p)
    p.add_argument("--payload", default="small", choices=e2e.PAYLOADS)
    p.add_argument("--compare", action="append", default=[], metavar="NAME=WASM",
                   help="another json2grpc build measured next to --wasm (e.g. before a change)")
    p.add_argument("--rungs", default=",".join(n for n, _ in RUNGS), help="which rungs to run")
    p.add_argument("--duration", type=float, default=9)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--streams", type=int, default=8)
    a = p.parse_args()
    workdir = a.out.resolve().parent / "ladder-work"
    workdir.mkdir(parents=True, exist_ok=True)
    upstream = e2e.Upstream(a.upstream, a.payloads.resolve(), workdir, 1)
    envoys, cells = {}, {}
    builds = {"json2grpc": a.wasm.resolve()} | {n: Path(w).resolve() for n, w in (c.split("=", 1) for c in a.compare)}
    names = [name for name, _ in RUNGS if name in a.rungs.split(",")] + list(builds) + ["native"]
    try:
        for i, name in enumerate(names):
            kind = "wasm" if name in builds else {"grpc": "grpc", "native": "native"}.get(name, "floor")
            ops = dict(RUNGS).get(name) or ""
            config = e2e.envoy_config(kind, upstream.address, a.descriptor.resolve(), builds.get(name, a.wasm.resolve()),
                                      floor=a.floor.resolve(), floor_ops=ops)
            envoys[name] = e2e.Envoy(a.envoy, f"ladder{i}", config, workdir, 0)
            for d in e2e.DIRECTIONS:
                cells[(name, d)] = e2e.Cell(kind, a.payload, d, a.payloads, workdir)
                e2e.check(cells[(name, d)], envoys[name].port, a.payloads, workdir)
        result = []
        for d in e2e.DIRECTIONS:
            slices = {n: [] for n in names}
            for r in range(a.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    env = envoys[name]
                    up0 = env.stat("cluster.bench.upstream_rq_completed")
                    s = e2e.run_h2load(cells[(name, d)], env.port, a.clients, a.streams, a.duration / a.rounds,
                                       1.0, workdir, 1, {"envoy": env.proc.pid, "upstream": upstream.proc.pid})
                    s["upstream_requests"] = env.stat("cluster.bench.upstream_rq_completed") - up0
                    slices[name].append(s)
            for name in names:
                m = e2e.merge(slices[name])
                m.update(rung=name, direction=d, ops=dict(RUNGS).get(name))
                result.append(m)
                e2e.log(f"{d:8} {name:10} {m['rps']:9.0f} req/s  {m['envoy_cpu_us_per_req']} µs CPU/req "
                        f"(wait {m['cpu_wait']['envoy']})")
    finally:
        for env in envoys.values():
            env.stop()
        upstream.stop()
    a.out.write_text(json.dumps(result, indent=1))
    print(table(result))


def table(result):
    """Rungs show their step over the previous rung; transcoders their cost over plain gRPC."""
    rungs = dict(RUNGS)
    lines = ["| direction | config | host calls per request | req/s | Envoy µs CPU/req | step |",
             "|---|---|---|---:|---:|---:|"]
    for d in e2e.DIRECTIONS:
        rows = [r for r in result if r["direction"] == d]
        grpc = next((r["envoy_cpu_us_per_req"] for r in rows if r["rung"] == "grpc"), None)
        prev = None
        for m in rows:
            us, name = m["envoy_cpu_us_per_req"], m["rung"]
            if name in rungs:
                ops = {"grpc": "(no filter)", "floor": "(none)"}.get(name, rungs[name])
                step = f"+{us - prev:.1f}" if prev is not None and us is not None else ""
                prev = us
            else:
                ops = "(Envoy's grpc_json_transcoder)" if name == "native" else "(json2grpc's own)"
                step = f"+{us - grpc:.1f} over grpc" if grpc is not None and us is not None else ""
            lines.append(f"| {d} | {name} | {ops} | {m['rps']:,.0f} | {us} | {step} |")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
