#!/usr/bin/env python3
"""Envoy's memory and start-up time with no transcoder, the native one and json2grpc.

For each API (the example one: dist/flashsale.pb, 2 services; the synthetic one: 200 services,
2,000 methods) x config (none, native, json2grpc) x --concurrency (1, 2, 4): start Envoy, time
start to LIVE (admin /ready), wait for it to settle, then read its RSS from /proc (V8's Wasm
memories are mmap'd outside tcmalloc, so admin /memory alone misses them) and tcmalloc's
allocated bytes from admin /memory. Each point is the median of --runs fresh starts.

Reported per API and config: RSS at concurrency 1 (fixed cost = minus the no-transcoder RSS),
the added RSS per worker (slope from concurrency 1 to 4), start to LIVE, and each Wasm VM's
linear memory as /proc/PID/smaps shows it (resident KiB of its size): the part of a worker's
cost the filter's own data holds, measured per VM instead of as a noisy slope.

With --floor (the empty Wasm filter of bench/floor-filter), a second table splits the fixed
cost at the lowest concurrency by what holds it: Envoy's heap (tcmalloc: in use, and freed but
kept: its page heap and thread caches, where V8's compiler leaves its working memory), V8's
code space (the compiled module: anonymous read-write-execute mappings), Envoy's own code pages
(the V8 compiler and runtime are in Envoy's binary, paged in by any Wasm filter), and the Wasm
VMs' linear memories (Envoy runs a base VM, one for the main thread and one per worker).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402

KINDS = ["none", "native", "floor", "wasm"]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def wasm_memories(pid):
    """(size KiB, resident KiB) of each Wasm linear memory: V8 maps a memory's accessible pages
    right before the guard region it reserves (several GiB), so each is the mapping that ends
    where such a reservation starts."""
    maps = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and ":" not in parts[0]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            maps.append({"lo": lo, "hi": hi, "rss": 0})
        elif parts and parts[0] == "Rss:" and maps:
            maps[-1]["rss"] = int(parts[1])
    return [((m["hi"] - m["lo"]) >> 10, m["rss"]) for m, guard in zip(maps, maps[1:])
            if guard["hi"] - guard["lo"] >= 4 << 30 and m["hi"] == guard["lo"]]


def mapping_rss(pid):
    """(RSS KiB of anonymous rwx mappings: V8's code space, RSS KiB of the process's executable
    mapping of its own binary: Envoy's code, V8's compiler and runtime included)."""
    jit = text = 0
    current = None
    binary = os.readlink(f"/proc/{pid}/exe")
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and ":" not in parts[0]:
            perms, path = parts[1], (parts[5] if len(parts) > 5 else "")
            current = "jit" if perms == "rwxp" and not path else "text" if perms == "r-xp" and path == binary else None
        elif parts and parts[0] == "Rss:" and current:
            if current == "jit":
                jit += int(parts[1])
            else:
                text += int(parts[1])
    return jit, text


def measure(envoy, kind, api, concurrency, upstream, wasm, workdir, settle, floor=None):
    config = e2e.envoy_config("grpc" if kind == "none" else kind, upstream, api["descriptor"], wasm,
                              services=api["services"], floor=floor)
    env = e2e.Envoy(envoy, f"mem-{api['name']}-{kind}-{concurrency}", config, workdir, None, concurrency)
    try:
        live = env.live_seconds
        time.sleep(settle)
        memory = json.loads(env.admin_get("/memory"))
        # The largest: configured VMs (the base VM, never configured, keeps its initial pages).
        vms = wasm_memories(env.proc.pid)
        vm = max(vms, key=lambda m: m[1], default=(0, 0))
        jit, text = mapping_rss(env.proc.pid)
        return {"live_ms": round(live * 1000, 1), "rss_kib": rss_kib(env.proc.pid),
                "wasm_vm_kib": vm[0], "wasm_vm_resident_kib": vm[1],
                "wasm_vms_resident_kib": sum(r for _, r in vms),
                "jit_kib": jit, "envoy_text_kib": text,
                "tcmalloc_allocated": int(memory.get("allocated", 0)),
                "tcmalloc_heap": int(memory.get("heap_size", 0)),
                "tcmalloc_free": int(memory.get("pageheap_free", 0)) + int(memory.get("total_thread_cache", 0))}
    finally:
        env.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envoy", required=True)
    p.add_argument("--wasm", required=True, type=Path)
    p.add_argument("--api", action="append", required=True, metavar="NAME=DESCRIPTOR:SERVICE,SERVICE",
                   help="an API: its name, descriptor set and services")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--concurrency", default="1,2,4")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--settle", type=float, default=1.0, help="seconds after LIVE before reading")
    p.add_argument("--floor", type=Path, help="the empty Wasm filter (bench/floor-filter): measured too")
    a = p.parse_args()
    workdir = a.out.resolve().parent / "memory-work"
    workdir.mkdir(parents=True, exist_ok=True)
    apis = []
    for spec in a.api:
        name, rest = spec.split("=", 1)
        descriptor, services = rest.split(":", 1)
        apis.append({"name": name, "descriptor": Path(descriptor).resolve(), "services": services.split(",")})
    levels = [int(c) for c in a.concurrency.split(",")]
    # No request is sent: the cluster only has to parse (a closed local port).
    upstream = "127.0.0.1:9"
    results = []
    for api in apis:
        for kind in KINDS:
            if kind == "floor" and not a.floor:
                continue
            for c in levels:
                floor = a.floor.resolve() if a.floor else None
                runs = [measure(a.envoy, kind, api, c, upstream, a.wasm.resolve(), workdir, a.settle, floor)
                        for _ in range(a.runs)]
                point = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                point.update(api=api["name"], kind=kind, concurrency=c, runs=runs,
                             descriptor_bytes=api["descriptor"].stat().st_size, services=len(api["services"]))
                results.append(point)
                e2e.log(f"{api['name']:10} {kind:7} c={c}: RSS {point['rss_kib'] / 1024:7.1f} MiB  "
                        f"LIVE {point['live_ms']:7.1f} ms  tcmalloc {point['tcmalloc_allocated'] / 2**20:6.1f} MiB")
    a.out.write_text(json.dumps(results, indent=1))
    print(table(results))
    print()
    print(parts_table(results))


def table(results):
    mib = lambda kib: kib / 1024  # noqa: E731
    lines = ["| API | config | RSS c=1 MiB | c=2 | c=4 | fixed (c=1 − none) MiB | per worker MiB | start to LIVE ms (c=1) "
             "| a VM's linear memory, resident / size KiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for api in dict.fromkeys(r["api"] for r in results):
        rows = {(r["kind"], r["concurrency"]): r for r in results if r["api"] == api}
        levels = sorted({c for _, c in rows})
        lo, hi = levels[0], levels[-1]
        for kind in KINDS:
            if (kind, lo) not in rows:
                continue
            rss = {c: mib(rows[(kind, c)]["rss_kib"]) for c in levels if (kind, c) in rows}
            fixed = rss[lo] - mib(rows[("none", lo)]["rss_kib"]) if ("none", lo) in rows else None
            per = (rss[hi] - rss[lo]) / (hi - lo) if hi > lo else None
            cells = " | ".join(f"{rss[c]:.1f}" if c in rss else "" for c in (1, 2, 4))
            vm = rows[(kind, lo)]
            vm_cell = f"{vm['wasm_vm_resident_kib']:.0f} / {vm['wasm_vm_kib']:.0f}" if vm.get("wasm_vm_kib") else ""
            per_cell = f"{per:+.2f}" if per is not None else ""  # one concurrency level: no slope
            lines.append(f"| {api} | {kind} | {cells} | {fixed:+.1f} | {per_cell} | {vm['live_ms']:.0f} | {vm_cell} |")
    return "\n".join(lines)


def parts_table(results):
    """The RSS above no transcoder at the lowest concurrency, by what holds it (MiB)."""
    mib = lambda b: b / 2**20  # noqa: E731
    lines = ["| API | config | RSS − none | heap in use | heap freed, kept | V8 code space | Envoy's code pages "
             "| Wasm linear memories | rest |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for api in dict.fromkeys(r["api"] for r in results):
        rows = {(r["kind"], r["concurrency"]): r for r in results if r["api"] == api}
        lo = min(c for _, c in rows)
        base = rows.get(("none", lo))
        if not base or "tcmalloc_free" not in base:
            continue
        for kind in KINDS[1:]:
            r = rows.get((kind, lo))
            if not r:
                continue
            total = mib((r["rss_kib"] - base["rss_kib"]) * 1024)
            parts = [mib(r["tcmalloc_allocated"] - base["tcmalloc_allocated"]),
                     mib(r["tcmalloc_free"] - base["tcmalloc_free"]),
                     mib((r["jit_kib"] - base["jit_kib"]) * 1024),
                     mib((r["envoy_text_kib"] - base["envoy_text_kib"]) * 1024),
                     mib(r.get("wasm_vms_resident_kib", 0) * 1024)]
            cells = " | ".join(f"{p:+.1f}" for p in parts)
            lines.append(f"| {api} | {kind} | {total:+.1f} | {cells} | {total - sum(parts):+.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
