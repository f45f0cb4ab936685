#!/usr/bin/env python3
"""Measures json2grpc's server streaming through the real Envoy. Run by hand, not by `make test`:

    make wasm examples descriptors venv
    .venv/bin/python scripts/stream-measure.py [--runs 15] [--unpaced] [--buffer-limit BYTES]

It starts the flash-sale services and an Envoy with dist/json2grpc.wasm exactly as the e2e tests
do (tests/e2e/harness.py; the same JSON2GRPC_* environment overrides apply), then measures

(a) time to first byte of `POST /v1/inventory:watch` streams of 10 and of 10,000 messages
    (min/median/max of --runs runs; the whole body is read and checked every time). Outliers
    of ~40 ms are the example service's Nagle + Envoy's delayed ACK (the services' listener does
    not set TCP_NODELAY), not the filter;
(b) Envoy's memory — admin /memory `allocated` and `heap_size` (tcmalloc) and the process RSS from
    /proc/PID/status — sampled every 20 ms while 10 x 10 KB and 10,000 x 10 KB streams are in
    flight to a slow client (it waits 0.5 s before reading, then reads at most ~16 MB/s, and
    reads everything). The service paces those streams 1 ms apart (`intervalMs: 1`): see
    --unpaced. The inventory routes get `timeout: 0s` (Envoy's default 15 s route timeout would
    cut a stream that long).

--unpaced adds a 10,000 x 10 KB stream produced as fast as the service can: Envoy then holds
more translated output between two flushes (a chunk over half of json2grpc.limits.envoy_buffer_bytes
is sent on at once, README "Streaming"), so memory is higher while the burst lasts (2026-11-30:
41.8 MiB allocated at the peak against 14.2 MiB paced, for 96 MiB streamed to the slow reader).
--buffer-limit BYTES sets the listener's buffer limit.

The plugin config is the e2e tests' default (JSON array streams). Prints two small tables. Everything it starts is stopped at the end.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

E2E = Path(__file__).resolve().parents[1] / "tests" / "e2e"
sys.path.insert(0, str(E2E))

import harness  # noqa: E402
from test_streaming import IncompleteBody, parse_stream, send  # noqa: E402  (the raw HTTP/1.1 client)

WATCH = "/v1/inventory:watch"
MiB = 1024 * 1024


def start(workdir, buffer_limit=None):
    services = harness.Services(workdir)
    try:
        config = Path(workdir) / "envoy.yaml"
        harness.render(harness.TEMPLATE, config, harness.base_plugin_config(), services,
                       wasm=harness.WASM)
        # Envoy's default route timeout (15 s) covers the whole response: it would cut the long
        # streams measured here (the access log shows UT), so the inventory routes get none.
        text = config.read_text()
        route = "route: { cluster: inventory }"
        if text.count(route) < 1:
            raise harness.HarnessError(f"{harness.TEMPLATE}: no `{route}`")
        text = text.replace(route, "route: { cluster: inventory, timeout: 0s }")
        if buffer_limit:
            listener = "  - name: app\n"
            if text.count(listener) != 1:
                raise harness.HarnessError(f"{harness.TEMPLATE}: expected one listener `app`")
            text = text.replace(
                listener, f"{listener}    per_connection_buffer_limit_bytes: {buffer_limit}\n")
        config.write_text(text)
        envoy = harness.Envoy("measure", config, workdir)
    except Exception:
        services.stop()
        raise
    return services, envoy


def stream(envoy, request, slow=False, timeout=120):
    """One streamed request; returns (seconds to headers, seconds to first body byte, seconds to
    the end, bytes, elements). `slow`: wait 0.5 s, then read at most ~16 MB/s."""
    reader = send(envoy, "POST", WATCH, request, timeout=timeout,
                  rcvbuf=65536 if slow else None)
    try:
        headers_at = reader.elapsed()
        if reader.status != 200:
            raise RuntimeError(f"HTTP {reader.status}: {reader.read_all()[:300]!r}")
        if slow:
            time.sleep(0.5)
        first, parts, budget_start, size = None, [], time.monotonic(), 0
        for at, data in reader.pieces():
            first = at if first is None else first
            parts.append(data)
            size += len(data)
            if slow:  # ~16 MB/s at most
                ahead = size / (16 * MiB) - (time.monotonic() - budget_start)
                if ahead > 0:
                    time.sleep(ahead)
        end = reader.elapsed()
    finally:
        reader.close()
    body = b"".join(parts)
    items, error = parse_stream("array", body)
    if error is not None:
        raise RuntimeError(f"stream ended with an error: {error}")
    return headers_at, first, end, len(body), len(items)


def memory(envoy):
    """(allocated, heap_size, rss) in bytes."""
    stats = json.loads(envoy.admin_get("/memory"))
    rss = 0
    for line in Path(f"/proc/{envoy.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return int(stats["allocated"]), int(stats["heap_size"]), rss


class Sampler(threading.Thread):
    """Samples memory(envoy) every `period` seconds until stop()."""

    def __init__(self, envoy, period=0.02):
        super().__init__(daemon=True)
        self.envoy, self.period, self.samples = envoy, period, []
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            try:
                self.samples.append(memory(self.envoy))
            except OSError:
                pass
            self._done.wait(self.period)

    def stop(self):
        self._done.set()
        self.join()
        return self.samples


def measure_ttfb(envoy, runs):
    rows = []
    for limit in (10, 10_000):
        request = {"skus": ["sku-1001"], "limit": limit}
        stream(envoy, request)  # warm-up (connection pool, VM)
        results = [stream(envoy, request) for _ in range(runs)]
        assert all(r[4] == limit for r in results), [r[4] for r in results]
        firsts = [r[1] * 1e3 for r in results]
        rows.append((limit,
                     statistics.median(r[0] for r in results) * 1e3,
                     min(firsts), statistics.median(firsts), max(firsts),
                     statistics.median(r[2] for r in results) * 1e3,
                     results[0][3]))
    print(f"\n(a) time to first byte, POST {WATCH} ({runs} runs; body read whole; ms)")
    print(f"{'messages':>9} {'headers':>8} {'1st byte min':>13} {'median':>7} {'max':>7} "
          f"{'end median':>11} {'body bytes':>11}")
    for limit, headers_ms, fmin, fmed, fmax, end_ms, size in rows:
        print(f"{limit:>9} {headers_ms:>8.2f} {fmin:>13.2f} {fmed:>7.2f} {fmax:>7.2f} "
              f"{end_ms:>11.1f} {size:>11}")


def measure_memory(envoy, unpaced):
    cases = [("10 x 10 KB, paced 1 ms", {"limit": 10, "intervalMs": 1}),
             ("10000 x 10 KB, paced 1 ms", {"limit": 10_000, "intervalMs": 1})]
    if unpaced:
        cases.append(("10000 x 10 KB, unpaced", {"limit": 10_000}))
    time.sleep(1)
    idle = memory(envoy)
    rows = []
    for name, request in cases:
        request = {"skus": ["sku-1001"], "payloadBytes": 10_000, **request}
        sampler = Sampler(envoy)
        sampler.start()
        try:
            _, first, end, size, count = stream(envoy, request, slow=True, timeout=300)
            outcome = f"{count} elements, {size / MiB:.1f} MiB in {end:.1f} s"
        except (IncompleteBody, OSError, RuntimeError, ValueError) as err:
            outcome = f"FAILED: {type(err).__name__}: {err}"[:120]
        samples = sampler.stop()
        alive = envoy.alive()
        if not alive:
            outcome += f" (Envoy exited {envoy.proc.returncode})"
        peak = [max(s[i] for s in samples) if samples else 0 for i in range(3)]
        rows.append((name, len(samples), peak, outcome))
        if not alive:
            break
        time.sleep(0.5)
    print("\n(b) Envoy memory while streaming to a slow reader (peak of the samples, MiB)")
    print(f"{'stream':<27} {'samples':>7} {'allocated':>10} {'heap_size':>10} {'RSS':>8}  outcome")
    print(f"{'idle, before':<27} {1:>7} {idle[0] / MiB:>10.1f} {idle[1] / MiB:>10.1f} "
          f"{idle[2] / MiB:>8.1f}")
    for name, n, (allocated, heap, rss), outcome in rows:
        print(f"{name:<27} {n:>7} {allocated / MiB:>10.1f} {heap / MiB:>10.1f} {rss / MiB:>8.1f}"
              f"  {outcome}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per TTFB case (default 15)")
    parser.add_argument("--unpaced", action="store_true",
                        help="also stream 10,000 x 10 KB as fast as the service can")
    parser.add_argument("--buffer-limit", type=int, metavar="BYTES",
                        help="the listener's per_connection_buffer_limit_bytes (default: Envoy's, 1 MiB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="json2grpc-measure-") as workdir:
        services, envoy = start(workdir, args.buffer_limit)
        try:
            limit = f"{args.buffer_limit} bytes" if args.buffer_limit else "default (1 MiB)"
            print(f"Envoy {harness.ENVOY} (pid {envoy.proc.pid}, --concurrency 2), "
                  f"filter {harness.WASM}, listener buffer limit {limit}")
            measure_ttfb(envoy, args.runs)
            measure_memory(envoy, args.unpaced)
        finally:
            envoy.stop()
            services.stop()


if __name__ == "__main__":
    main()
