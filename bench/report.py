#!/usr/bin/env python3
"""Tables of one `make bench` run (bench/run.sh): report.py RUN_DIR > summary.md

Reads RUN_DIR/{machine.txt, criterion/, core-native.txt, core-v8.txt, peer.txt, e2e.json} and
prints Markdown: core MB/s with ratios to the peers and V8/native, on_configure, the .wasm size,
the end-to-end tables, and every target of BENCHMARKS.md marked met or missed. Plain python3.
"""
import json
import re
import statistics
import sys
from pathlib import Path

PAYLOADS = ["small", "medium", "large"]
DIRS = ["json2bin", "bin2json"]
WASM_LIMIT = 600 * 1024
CONFIGURE_LIMIT_MS = 50.0


def results(path):
    """RESULT lines -> {(impl, payload, dir): (mb_s, ns_op)}, best (lowest ns) per cell."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line.startswith("RESULT "):
            continue
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        impl = kv["impl"]
        if impl.startswith("cpp"):
            impl = f"{impl}@{kv['lib'].replace('libprotobuf-', '')}"
        key = (impl, kv["payload"], kv["dir"])
        cell = (float(kv["mb_s"]), float(kv["ns_op"]))
        if key not in out or cell[1] < out[key][1]:
            out[key] = cell
    return out


def configure(path):
    """CONFIGURE lines (one per round, each a fresh process) pooled: the median of the first
    (cold) calls and the median of every later call."""
    if not path.exists():
        return None
    lines = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in path.read_text().splitlines()
             if l.startswith("CONFIGURE ")]
    if not lines:
        return None
    warm = sorted(float(t) for l in lines for t in l.get("times_ms", l["median_ms"]).split(","))
    first = sorted(float(l["first_ms"]) for l in lines)
    return {"services": lines[0]["services"], "methods": lines[0]["methods"],
            "config_bytes": lines[0]["config_bytes"], "first_ms": f"{statistics.median(first):.1f}",
            "first_all": "/".join(f"{x:.0f}" for x in first), "median_ms": f"{statistics.median(warm):.1f}",
            "min_ms": f"{warm[0]:.1f}", "max_ms": f"{warm[-1]:.1f}", "runs": f"{len(lines)} x {len(warm) // len(lines)}"}


def criterion(run):
    out = {}
    for d, group in (("json2bin", "fast_json_to_binary"), ("bin2json", "fast_binary_to_json")):
        for p in PAYLOADS:
            base = run / "criterion" / group / p
            try:
                est = json.loads((base / "estimates.json").read_text())
                bench = json.loads((base / "benchmark.json").read_text())
            except (OSError, ValueError):
                continue
            ns = est["median"]["point_estimate"]
            nbytes = bench["throughput"]["BytesDecimal"]
            out[(p, d)] = (nbytes / ns * 1e3, ns)
    return out


def fmt(v, spec="{:,.1f}"):
    return "-" if v is None else spec.format(v)


def ratio(a, b):
    return a / b if a and b else None


def mark(ok):
    return "-" if ok is None else ("**met**" if ok else "**missed**")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    run = Path(sys.argv[1])
    targets = []  # (target, measured, met)
    print(f"# json2grpc benchmark run `{run.name}`\n")
    machine = run / "machine.txt"
    if machine.exists():
        print("```\n" + machine.read_text().strip() + "\n```\n")

    native = results(run / "core-native.txt")
    v8 = results(run / "core-v8.txt")
    peer = results(run / "peer.txt")
    for key, cell in results(run / "peer-cpp.txt").items():  # the interleaved rounds
        if key not in peer or cell[1] < peer[key][1]:
            peer[key] = cell
    crit = criterion(run)

    # ---- core ----
    print("## Core: JSON <-> binary, MB/s of JSON (1 MB = 1e6 B)\n")
    print("`native` and `V8` are bench/wasm-core (same loop as the peers: doubling batches, best "
          "round); `criterion` is `cargo bench` (median). Key peer: libprotobuf 3.21 "
          "`JsonToBinaryString` for json2bin, libprotobuf 27 `BinaryToJsonString` for bin2json.\n")
    rows = []
    for p in PAYLOADS:
        for d in DIRS:
            n = native.get(("json2grpc", p, d), (None, None))[0]
            w = v8.get(("json2grpc", p, d), (None, None))[0]
            c = crit.get((p, d), (None, None))[0]
            p321 = peer.get(("cpp-resolver@3.21.12", p, d), (None, None))[0]
            p27 = peer.get(("cpp-resolver@5.27.2", p, d), (None, None))[0]
            prost = peer.get(("prost-reflect", p, d), (None, None))[0]
            key = p321 if d == "json2bin" else p27
            rows.append([f"{p} {d}", fmt(c), fmt(n), fmt(w), fmt(ratio(w, n), "{:.2f}"), fmt(p321), fmt(p27),
                         fmt(prost), fmt(ratio(n, key), "**{:.2f}x**"), fmt(ratio(w, key), "{:.2f}x")])
            if d == "json2bin" and p in ("medium", "large"):
                want = 8 if p == "medium" else 4
                r = ratio(n, p321)
                targets.append((f"core json2bin native >= {want}x libprotobuf 3.21 ({p})",
                                fmt(r, "{:.2f}x"), None if r is None else r >= want))
            if d == "bin2json":
                r = ratio(n, p27)
                targets.append((f"core bin2json native >= 4x libprotobuf 27 ({p})",
                                fmt(r, "{:.2f}x"), None if r is None else r >= 4))
            r = ratio(w, n)
            targets.append((f"core in V8 >= 0.5x native ({p} {d})", fmt(r, "{:.2f}"), None if r is None else r >= 0.5))
    print(table(["payload dir", "criterion", "native", "V8", "V8/native", "C++ 3.21", "C++ 27",
                 "prost-reflect", "native / key peer", "V8 / key peer"], rows))
    print()

    # ---- on_configure ----
    print("## on_configure: `Transcoder::from_json`, synthetic API\n")
    rows = []
    for name, path in (("native", run / "core-native.txt"), ("V8", run / "core-v8.txt")):
        c = configure(path)
        if c:
            rows.append([name, c["services"], c["methods"], f"{int(c['config_bytes']):,}",
                         f"{c['first_ms']} ({c['first_all']})", c["median_ms"], c["min_ms"], c["max_ms"], c["runs"]])
            if name == "V8":
                med = float(c["median_ms"])
                targets.append((f"on_configure ({c['services']} services, {c['methods']} methods) < "
                                 f"{CONFIGURE_LIMIT_MS:.0f} ms in V8 (median; first, cold call: {c['first_ms']} ms)",
                                 f"{med:.1f} ms", med < CONFIGURE_LIMIT_MS))
    print("`first`: the first call in a fresh process/VM (per round; in V8 it includes the lazy "
          "TurboFan compilation of the code it runs, as Envoy's first on_configure would); `median`: "
          "every later call of every round pooled. Host calls of on_configure (reading the config, "
          "defining metrics) are not included.\n")
    print(table(["runtime", "services", "methods", "config bytes", "first ms (each round)", "median ms",
                 "min ms", "max ms", "rounds x runs"], rows))
    print()

    # ---- wasm size ----
    size = None
    if machine.exists():
        m = re.search(r"json2grpc.wasm: (\d+) bytes", machine.read_text())
        size = int(m.group(1)) if m else None
    if size:
        print(f"## dist/json2grpc.wasm: {size:,} bytes ({size / 1024:,.0f} KiB)\n")
        targets.append(("dist/json2grpc.wasm <= 600 KiB", f"{size / 1024:,.0f} KiB", size <= WASM_LIMIT))

    # ---- end to end ----
    e2e_path = run / "e2e.json"
    if e2e_path.exists():
        e2e = json.loads(e2e_path.read_text())
        s = e2e["settings"]
        print("## End to end: Envoy " + s.get("envoy_version", "?") + ", --concurrency 1\n")
        large = f" (large: -c/-m {s['large_concurrency']})" if s.get("large_concurrency") else ""
        print(f"h2load -c {s['clients']} -m {s['streams']} -t 1{large}; {s['duration']} s per cell in {s.get('rounds', 1)} "
              f"slices of {s['duration'] / s.get('rounds', 1):g} s (each after {s['warmup']} s of warm-up), the "
              f"configs taking turns slice by slice; Envoy pinned to CPU {s['envoy_cpu']}, h2load and bench_upstream to CPU {s['client_cpu']}"
              f" (nice {s.get('nice')}). `CPU` = share of one core used by each process over the measured window; "
              "`Envoy CPU wait` = share of the window Envoy's threads were runnable but waiting for a CPU "
              "(schedstat: other load on the shared machine); "
              "`µs CPU/req` = Envoy CPU time per request (robust to that load). "
              "request = JSON payload in, small Ack out; response = small query in, payload JSON out. In the *wasm/native* rows, req/s is json2grpc / native and µs CPU/req is native / json2grpc: above 1 means json2grpc is better in both.\n")
        rows = []
        cells = {(c["config"], c["payload"], c["direction"]): c for c in e2e["throughput"]}
        for p in PAYLOADS:
            for d in ("request", "response"):
                for cfg in ("native", "wasm", "grpc", "floor"):
                    c = cells.get((cfg, p, d))
                    if not c:
                        continue
                    cpu = c["cpu"]
                    sl = c.get("slice_rps") or []
                    spread = f"{min(sl):,.0f}-{max(sl):,.0f}" if sl else "-"
                    rows.append([f"{p} {d}", cfg, fmt(c["rps"], "{:,.0f}"), spread, fmt(c["p50_us"] and c["p50_us"] / 1e3, "{:.2f}"),
                                 fmt(c["p99_us"] and c["p99_us"] / 1e3, "{:.2f}"), fmt(cpu.get("envoy"), "{:.2f}"),
                                 fmt(c.get("cpu_wait", {}).get("envoy"), "{:.2f}"),
                                 fmt(c.get("envoy_cpu_us_per_req"), "{:,.0f}"), fmt(cpu.get("upstream"), "{:.2f}"),
                                 fmt(cpu.get("h2load"), "{:.2f}"), fmt(c.get("machine_busy_cpus"), "{:.2f}"),
                                 (c["failed"] or 0) + (c["non_2xx"] or 0)])
                nat, was = cells.get(("native", p, d)), cells.get(("wasm", p, d))
                if nat and was:
                    r = ratio(was["rps"], nat["rps"])
                    rc = ratio(nat.get("envoy_cpu_us_per_req"), was.get("envoy_cpu_us_per_req"))
                    rows.append([f"{p} {d}", "*wasm/native*", fmt(r, "*{:.2f}x*"), "", "", "", "", "",
                                 fmt(rc, "*{:.2f}x*"), "", "", "", ""])
                    want = 2.0 if p == "large" else 1.0
                    targets.append((f"e2e json2grpc rps >= {want:g}x native ({p} {d})",
                                    f"{fmt(r, '{:.2f}x')} (CPU/req {fmt(rc, '{:.2f}x')})",
                                    None if r is None else r >= want))
                    # Transcoding CPU: Envoy CPU per request above plain gRPC (issue 15).
                    grpc = cells.get(("grpc", p, d))
                    floor = cells.get(("floor", p, d))
                    us = lambda c: c and c.get("envoy_cpu_us_per_req")  # noqa: E731
                    if grpc and us(grpc) and us(nat) and us(was) and us(nat) > us(grpc):
                        share = (us(was) - us(grpc)) / (us(nat) - us(grpc))
                        limit = {"small": 0.7, "medium": 0.35, "large": 0.2}[p]
                        above = f"; above the empty Wasm filter {us(was) - us(floor):+.1f} µs" if us(floor) else ""
                        targets.append((f"transcoding CPU per request, json2grpc / native <= {limit} ({p} {d})",
                                        f"{share:.2f} ({us(was) - us(grpc):.1f} vs {us(nat) - us(grpc):.1f} µs over gRPC{above})",
                                        share <= limit))
        print(table(["payload dir", "config", "req/s", "slices req/s", "p50 ms", "p99 ms", "Envoy CPU",
                     "Envoy CPU wait", "µs CPU/req",
                     "upstream CPU", "h2load CPU", "machine busy CPUs", "errors"], rows))
        print()
        if e2e.get("latency"):
            print("### Latency without queueing (h2load -c 1 -m 1): added = p50 - p50 of grpc\n")
            lat = {(c["config"], c["payload"], c["direction"]): c for c in e2e["latency"]}
            rows = []
            for p in PAYLOADS:
                for d in ("request", "response"):
                    floor = lat.get(("grpc", p, d))
                    added = {}
                    for cfg in ("native", "wasm", "grpc", "floor"):
                        c = lat.get((cfg, p, d))
                        if not c:
                            continue
                        add = (c["p50_us"] - floor["p50_us"]) / 1e3 if floor and c["p50_us"] is not None else None
                        added[cfg] = add
                        rows.append([f"{p} {d}", cfg, fmt(c["rps"], "{:,.0f}"), fmt(c["p50_us"] / 1e3, "{:.3f}"),
                                     fmt(c["p99_us"] / 1e3, "{:.3f}"), fmt(add, "{:+.3f}")])
                    if added.get("native") is not None and added.get("wasm") is not None:
                        ok = added["wasm"] <= added["native"]
                        targets.append((f"p50 added latency, {p} {d}: json2grpc <= native",
                                        f"{added['wasm'] * 1e3:+.0f} µs vs {added['native'] * 1e3:+.0f} µs", ok))
            print(table(["payload dir", "config", "req/s", "p50 ms", "p99 ms", "added p50 ms"], rows))
            print()
        if e2e.get("paced"):
            print("### Paced load: every config at 80% of native's throughput (h2load --rps)\n")
            paced = {(c["config"], c["payload"], c["direction"]): c for c in e2e["paced"]}
            rows = []
            for p in PAYLOADS:
                for d in ("request", "response"):
                    for cfg in ("native", "wasm", "grpc", "floor"):
                        c = paced.get((cfg, p, d))
                        if c:
                            rows.append([f"{p} {d}", cfg, fmt(c["rps"], "{:,.0f}"), fmt(c["p50_us"] / 1e3, "{:.3f}"),
                                         fmt(c["p99_us"] / 1e3, "{:.3f}"), fmt(c["cpu"]["envoy"], "{:.2f}")])
                    nat, was = paced.get(("native", p, d)), paced.get(("wasm", p, d))
                    if nat and was and nat["p99_us"] and was["p99_us"]:
                        targets.append((f"p99 at 80% of native's throughput, {p} {d}: json2grpc <= native",
                                        f"{was['p99_us'] / 1e3:.2f} ms vs {nat['p99_us'] / 1e3:.2f} ms",
                                        was["p99_us"] <= nat["p99_us"]))
            print(table(["payload dir", "config", "req/s", "p50 ms", "p99 ms", "Envoy CPU"], rows))
            print()

    # ---- where the CPU goes: the empty-filter ladder (bench/ladder.py) ----
    ladder_path = run / "ladder.json"
    if ladder_path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import ladder
        print("## Where json2grpc's CPU goes: host calls on the empty Wasm filter (bench/ladder.py)\n")
        print("Small payload, gRPC through bench/floor-filter making the host calls listed per request, "
              "next to json2grpc and the native transcoder on the JSON path; `step` = CPU over the "
              "rung above (rungs) or over plain gRPC (transcoders).\n")
        print(ladder.table(json.loads(ladder_path.read_text())))
        print()

    # ---- server streams (bench/stream.py) ----
    stream_path = run / "stream.json"
    if stream_path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import stream
        result = json.loads(stream_path.read_text())
        print("## Server streams (bench/stream.py)\n")
        print("One stream of StreamTicks messages (~100 B protobuf), `batch` messages per HTTP/2 DATA "
              "frame, read by curl; the median of the rounds. Then streams of two messages 20 ms apart, "
              "one at a time on one connection: time to the whole first message and to the end.\n")
        print(stream.table(result))
        print()
        for batch in sorted({c["batch"] for c in result["throughput"]}):
            cells = {c["config"]: c for c in result["throughput"] if c["batch"] == batch}
            if {"grpc", "native", "json2grpc"} <= cells.keys():
                grpc = cells["grpc"]["envoy_ns_per_message"]
                w, n = cells["json2grpc"], cells["native"]
                targets.append((f"stream messages/s >= native's (batch {batch})",
                                f"{w['messages_per_s']:,.0f} vs {n['messages_per_s']:,.0f}; CPU/message over grpc "
                                f"{w['envoy_ns_per_message'] - grpc:+,.0f} vs {n['envoy_ns_per_message'] - grpc:+,.0f} ns",
                                w["messages_per_s"] >= n["messages_per_s"]))
        first = {c["config"]: c for c in result["first_message"]}
        if {"native", "json2grpc"} <= first.keys():
            w, n = first["json2grpc"], first["native"]
            targets.append(("stream time to first message p50 <= native's",
                            f"{w['first_p50_us']} µs vs {n['first_p50_us']} µs",
                            w["first_p50_us"] <= n["first_p50_us"]))

    # ---- Envoy's memory and start-up (bench/memory.py), soak (bench/soak.py) ----
    memory_path = run / "envoy-memory.json"
    if memory_path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import memory
        points = json.loads(memory_path.read_text())
        print("## Envoy RSS and start to LIVE (bench/memory.py)\n")
        print(memory.table(points))
        print()
        if any(p["kind"] == "floor" for p in points):
            print("What holds the RSS above no transcoder at the lowest concurrency, MiB "
                  "(bench/memory.py: tcmalloc from admin /memory, the rest from /proc/PID/smaps):\n")
            print(memory.parts_table(points))
            print()
        for api in dict.fromkeys(p["api"] for p in points):
            rows = {(p["kind"], p["concurrency"]): p for p in points if p["api"] == api}
            levels = sorted({c for _, c in rows})
            lo, hi = levels[0], levels[-1]
            if ("wasm", lo) not in rows or ("native", lo) not in rows or hi == lo:
                continue
            w, n = rows[("wasm", lo)], rows[("native", lo)]
            per = (rows[("wasm", hi)]["rss_kib"] - w["rss_kib"]) / (hi - lo) * 1024
            if api == "synthetic":
                limit = 2 * w["descriptor_bytes"]
                targets.append((f"added RSS per worker <= 2x descriptor ({api})",
                                f"{per / 2**20:.2f} MiB vs {limit / 2**20:.2f} MiB", per <= limit))
                fixed = (w["rss_kib"] - n["rss_kib"]) / 1024
                targets.append((f"fixed RSS at concurrency 1 <= native + 15 MiB ({api})",
                                f"native {fixed:+.1f} MiB", fixed <= 15))
            targets.append((f"start to LIVE <= 2x native ({api})",
                            f"{w['live_ms']:.0f} ms vs {n['live_ms']:.0f} ms", w["live_ms"] <= 2 * n["live_ms"]))
    soak_path = run / "soak.txt"
    if soak_path.exists():
        text = soak_path.read_text()
        memory_lines = text[text.find("\nmemory"):].strip().splitlines() if "\nmemory" in text else []
        print("## Soak: `make soak` (scripts/soak.py), Envoy's memory while serving\n")
        print("```\n" + "\n".join(memory_lines) + "\n```\n")
        m = re.search(r"RSS ([\d.]+) -> ([\d.]+) MiB \(peak \+([\d.]+)\)", text)
        if m:
            targets.append(("memory flat over the 100,000-request soak (RSS after warm-up)",
                            f"{m.group(1)} -> {m.group(2)} MiB (peak +{m.group(3)})",
                            float(m.group(3)) <= 16 and "PASS" in text))

    # ---- targets ----
    print("## Targets\n")
    print(table(["target", "measured", "status"], [[t, m, mark(ok)] for t, m, ok in targets]))


if __name__ == "__main__":
    main()
