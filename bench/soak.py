#!/usr/bin/env python3
"""Memory over a soak: json2grpc in Envoy (--concurrency 1) serves --requests small JSON calls
(POST /v1/bench/order, the bench API) in --slices h2load runs; Envoy's RSS is read after each.
Flat means no growth per request: no leak in the filter, nothing kept per request or method.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402
import memory  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envoy", required=True)
    p.add_argument("--wasm", required=True, type=Path)
    p.add_argument("--upstream", required=True)
    p.add_argument("--descriptor", required=True, type=Path)
    p.add_argument("--payloads", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--slices", type=int, default=10)
    a = p.parse_args()
    workdir = a.out.resolve().parent / "soak-work"
    workdir.mkdir(parents=True, exist_ok=True)
    upstream = e2e.Upstream(a.upstream, a.payloads.resolve(), workdir, None)
    env = e2e.Envoy(a.envoy, "soak", e2e.envoy_config("wasm", upstream.address, a.descriptor.resolve(),
                                                      a.wasm.resolve()), workdir, None)
    samples = [{"requests": 0, "rss_kib": memory.rss_kib(env.proc.pid)}]
    cell = e2e.Cell("wasm", "small", "request", a.payloads, workdir)
    try:
        e2e.check(cell, env.port, a.payloads, workdir)
        done = 0
        per = a.requests // a.slices
        for _ in range(a.slices):
            argv = ["h2load", "-c", "16", "-m", "8", "-t", "1", "-n", str(per), "-d", str(cell.body)]
            for h in cell.headers:
                argv += ["-H", h]
            out = subprocess.run(argv + [f"http://127.0.0.1:{env.port}{cell.path}"], capture_output=True,
                                 text=True, timeout=600).stdout
            if f"{per} succeeded" not in out.replace(",", ""):
                raise SystemExit(f"h2load: not every request succeeded\n{out[-1500:]}")
            done += per
            samples.append({"requests": done, "rss_kib": memory.rss_kib(env.proc.pid)})
            e2e.log(f"soak: {done:7} requests, RSS {samples[-1]['rss_kib'] / 1024:.1f} MiB")
    finally:
        env.stop()
        upstream.stop()
    a.out.write_text(json.dumps({"samples": samples}, indent=1))


if __name__ == "__main__":
    main()
