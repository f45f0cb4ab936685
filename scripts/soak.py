#!/usr/bin/env python3
"""Soak test: ≥100,000 mixed requests through Envoy (concurrency 2) + json2grpc + the
flash-sale services (with --record), driven by concurrent h2load instances (one per kind of
request, so each kind's status counts are exact).

Checks, printed as a summary table (exit status 1 if one fails):
- every h2load request completed (no connection errors or timeouts) with the expected status;
- no Wasm VM failed: no trap/panic in Envoy's log, VM counts unchanged, no VM reload;
- no 5xx at all in Envoy's access log or stats (the services never answer 5xx here, so any
  5xx would be Envoy's or the filter's);
- every valid request reached its service exactly once: records per gRPC method == sent, and
  nothing else was recorded (invalid JSON and unknown paths never reach a service); the
  filter's per-method counters agree;
- Envoy's memory (admin /memory `allocated`, and RSS) is flat after warm-up.

Run by scripts/soak.sh (make soak). Uses tests/e2e/harness.py for the processes.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JSON2GRPC_E2E_ENVOY_LOG_LEVEL", "warning")  # access log still printed
sys.dont_write_bytecode = True  # no __pycache__ in tests/e2e
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import harness  # noqa: E402

MiB = 1 << 20

# kind: (share of the requests, method, path, body or None, h1?, expected status,
#        gRPC method recorded by the service (None: must reach nothing), filter counter)
KINDS = {
    "reserve": (0.15, "POST", "/v1/inventory/sku-1002:reserve",
                '{"quantity": 1, "customerId": "cust-soak"}', False, (200, 400),
                "/flashsale.v1.Inventory/Reserve", "method.flashsale.v1.Inventory.Reserve.requests"),
    "create_order": (0.20, "POST", "/v1/orders",
                     '{"customerId": "cust-soak", "items": [{"sku": "sku-3001", "quantity": 1}]}',
                     True, (200,), "/flashsale.v1.Orders/CreateOrder",
                     "method.flashsale.v1.Orders.CreateOrder.requests"),
    "get_item": (0.15, "GET", "/v1/inventory/sku-1001", None, False, (200,),
                 "/flashsale.v1.Inventory/GetItem", "method.flashsale.v1.Inventory.GetItem.callouts"),
    "list_items": (0.15, "GET", "/v1/inventory?status=IN_STOCK&page_size=2", None, True, (200,),
                   "/flashsale.v1.Inventory/ListItems",
                   "method.flashsale.v1.Inventory.ListItems.callouts"),
    "invalid_json": (0.15, "POST", "/v1/orders", '{"customerId": ', True, (400,), None,
                     "errors.invalid_request"),
    "unknown_path": (0.10, "GET", "/v2/nowhere", None, False, (404,), None, "passthrough"),
    "watch": (0.10, "POST", "/v1/inventory:watch", '{"limit": 3, "skus": ["sku-1001"]}', False,
              (200,), "/flashsale.v1.Inventory/Watch",
              "method.flashsale.v1.Inventory.Watch.requests"),
}

ACCESS = re.compile(r'^\[[^\]]+\] "(\S+) (\S+) (\S+)" (\d+) (\S+) ')


def h2load_counts(text):
    out = {}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        out.update(zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"),
                       map(int, m.groups())))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        out.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups())))
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    if m:
        out["seconds"] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        out["rps"] = float(m.group(3))
    return out


class Sampler(threading.Thread):
    """Envoy memory every `interval` s: (t, admin allocated, heap_size, RSS)."""

    def __init__(self, envoy, interval):
        super().__init__(daemon=True)
        self.envoy, self.interval = envoy, interval
        self.samples, self.stop = [], threading.Event()
        self.t0 = time.monotonic()

    def sample(self):
        mem = json.loads(self.envoy.admin_get("/memory"))
        rss = 0
        for line in Path(f"/proc/{self.envoy.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        return (time.monotonic() - self.t0, int(mem["allocated"]), int(mem["heap_size"]), rss)

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append(self.sample())
            except Exception:  # noqa: BLE001 - a missed sample is not fatal
                pass
            self.stop.wait(self.interval)


def count_records(services, mark):
    counts = Counter()
    for s in services.all():
        with open(s.record, "rb") as f:
            f.seek(mark[s.name])
            for line in f:
                if line.strip():
                    counts[json.loads(line)["method"]] += 1
    return counts


def access_log(envoy, offset):
    statuses, flags = Counter(), Counter()
    with open(envoy.log, "rb") as f:
        f.seek(offset)
        for raw in f:
            m = ACCESS.match(raw.decode("utf-8", "replace"))
            if m:
                method, path, _, status, flag = m.groups()
                statuses[(method, path.split("?")[0], int(status))] += 1
                if int(status) >= 500:
                    flags[flag] += 1
    return statuses, flags


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=100_000, help="total requests (default 100000)")
    p.add_argument("--clients", type=int, default=2, help="h2load clients per kind")
    p.add_argument("--streams", type=int, default=8, help="h2load max streams per h2 client")
    p.add_argument("--interval", type=float, default=0.5, help="memory sample interval, s")
    p.add_argument("--warmup", type=float, default=0.25, help="share of the run that is warm-up")
    p.add_argument("--max-growth-mib", type=float, default=8.0,
                   help="allowed growth of `allocated` after warm-up (MiB)")
    p.add_argument("--max-rss-growth-mib", type=float, default=16.0,
                   help="allowed RSS growth after warm-up (MiB)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    a = p.parse_args()

    h2load = shutil.which("h2load")
    if not h2load:
        sys.exit("soak: h2load not found (apt-get install -y nghttp2-client)")
    work = Path(tempfile.mkdtemp(prefix="json2grpc-soak-"))
    services = envoy = None
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
        return "ok" if ok else "FAIL"

    try:
        services = harness.Services(work)
        config = harness.render(harness.TEMPLATE, work / "envoy.yaml",
                                harness.base_plugin_config(), services, wasm=harness.WASM)
        envoy = harness.Envoy("soak", config, work)
        base = f"http://127.0.0.1:{envoy.port}"
        # Warm the VMs' descriptor caches and the connections once.
        assert envoy.request("GET", "/v1/inventory/sku-1001")[0] == 200

        wasm_before = envoy.wasm_stats()
        custom_before = envoy.stats("^wasmcustom")
        http_before = envoy.stats(r"^(http\.app\.downstream_rq_[1-5]xx|"
                                  r"cluster\.(inventory|orders)\.upstream_rq_[1-5]xx)$")
        mark = services.mark()
        log_offset = envoy.log.stat().st_size

        sampler = Sampler(envoy, a.interval)
        baseline = sampler.sample()
        sampler.start()
        procs = {}
        plan = {}
        for kind, (share, method, path, body, h1, *_rest) in KINDS.items():
            n = int(a.requests * share)
            plan[kind] = n
            cmd = [h2load, "-n", str(n), "-c", str(a.clients), "-T", "30", "-N", "30",
                   "-H", "content-type: application/json"]
            cmd += ["--h1", "-m", "1"] if h1 else ["-m", str(a.streams)]
            if body is not None:
                body_file = work / f"{kind}.json"
                body_file.write_text(body)
                cmd += ["-d", str(body_file)]
            cmd.append(base + path)
            out = open(work / f"{kind}.h2load.txt", "w")
            procs[kind] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out)
        started = time.monotonic()
        for kind, (proc, out) in procs.items():
            proc.wait()
            out.close()
        elapsed = time.monotonic() - started
        time.sleep(2)  # idle samples after the load
        sampler.stop.set()
        sampler.join()
        idle = sampler.sample()

        # ---- results
        results = {k: h2load_counts((work / f"{k}.h2load.txt").read_text()) for k in KINDS}
        records = count_records(services, mark)
        custom_after = envoy.stats("^wasmcustom")
        wasm_after = envoy.wasm_stats()
        http_after = envoy.stats(r"^(http\.app\.downstream_rq_[1-5]xx|"
                                 r"cluster\.(inventory|orders)\.upstream_rq_[1-5]xx)$")
        # Envoy flushes the stdout access log every 10 s (--file-flush-interval-msec).
        deadline = time.monotonic() + 30
        while True:
            statuses, flags5xx = access_log(envoy, log_offset)
            if sum(statuses.values()) >= sum(plan.values()) or time.monotonic() > deadline:
                break
            time.sleep(1)

        def delta(after, before, name):
            return after.get(name, 0) - before.get(name, 0)

        total = sum(plan.values())
        print(f"\njson2grpc soak: {total} requests in {elapsed:.1f} s "
              f"({total / elapsed:.0f} req/s), Envoy --concurrency 2, h2load "
              f"{a.clients} clients/kind (h2: {a.streams} streams each)\n")
        header = (f"{'kind':<13} {'proto':<5} {'sent':>7} {'done':>7} {'2xx':>7} {'4xx':>7} "
                  f"{'5xx':>4} {'err':>4} {'expected':>9} {'service':>8} {'filter':>7}  check")
        print(header)
        print("-" * len(header))
        recorded_valid = Counter()
        for kind, (share, method, path, body, h1, expect, grpc, counter) in KINDS.items():
            r = results[kind]
            n = plan[kind]
            got = records.get(grpc, 0) if grpc else 0
            if grpc:
                recorded_valid[grpc] += n
            fdelta = delta(custom_after, custom_before, f"wasmcustom.json2grpc.{counter}")
            # Invalid JSON bodies are parsed as CreateOrder requests: that counter counts both.
            access = sum(v for (m, pth, st), v in statuses.items()
                         if m == method and pth == path.split("?")[0]
                         and (kind not in ("create_order", "invalid_json")
                              or (st == 400) == (kind == "invalid_json")))
            ok = (r.get("done") == n and r.get("errored", 1) == 0 and r.get("timeout", 1) == 0
                  and r.get("5xx", 1) == 0
                  and sum(r.get(f"{s // 100}xx", 0) for s in set(expect)) == n
                  and (grpc is None or got == n) and access == n)
            if counter.endswith(".requests") and kind == "create_order":
                ok = ok and fdelta == n + plan["invalid_json"]
            else:
                ok = ok and fdelta == n
            print(f"{kind:<13} {'h1' if h1 else 'h2c':<5} {n:>7} {r.get('done', 0):>7} "
                  f"{r.get('2xx', 0):>7} {r.get('4xx', 0):>7} {r.get('5xx', 0):>4} "
                  f"{r.get('errored', 0) + r.get('timeout', 0):>4} "
                  f"{'/'.join(map(str, expect)):>9} {got if grpc else '-':>8} {fdelta:>7}  "
                  f"{check(ok, kind)}")
        print("-" * len(header))
        print("service = messages recorded by the service for that gRPC method; filter = the "
              "filter's counter\n(CreateOrder.requests counts create_order + invalid_json "
              "bodies, errors.invalid_request the invalid ones, passthrough the unknown paths)\n")

        extra = {m: c for m, c in records.items() if m not in recorded_valid}
        print(f"records by method: {dict(sorted(records.items()))}")
        print(f"  unexpected methods recorded: {extra or 'none'}  "
              f"{check(not extra and all(records.get(m) == n for m, n in recorded_valid.items()), 'records')}")

        # 5xx anywhere
        down5 = delta(http_after, http_before, "http.app.downstream_rq_5xx")
        up5 = sum(delta(http_after, http_before, f"cluster.{c}.upstream_rq_5xx")
                  for c in ("inventory", "orders"))
        log5 = sum(v for (_, _, st), v in statuses.items() if st >= 500)
        print(f"5xx: downstream (stats) {down5}, upstream (stats) {up5}, access log {log5}"
              f"{' flags ' + str(dict(flags5xx)) if flags5xx else ''}  "
              f"{check(down5 == 0 and log5 == 0, '5xx')}")
        print(f"access log statuses: "
              f"{dict(sorted(Counter(st for (_, _, st) in statuses.elements()).items()))}, "
              f"{sum(statuses.values())} lines")

        # Wasm VMs
        log_text = envoy.log.read_text(errors="replace")
        markers = [m for m in ("panicked at", "Uncaught", "wasm trap", "Wasm VM failed",
                               "Function: proxy_on") if m in log_text]
        vm_keys = ("wasm.envoy.wasm.runtime.v8.active", "wasm.envoy.wasm.runtime.v8.created",
                   "wasm.wasm_vm_count")
        vm_same = all(wasm_after.get(k) == wasm_before.get(k) for k in vm_keys)
        reloads = {k: v for k, v in wasm_after.items() if ".vm_reload" in k and v}
        print(f"Wasm VMs: {', '.join(f'{k.rsplit(chr(46), 1)[-1]}={wasm_after.get(k)}' for k in vm_keys)}"
              f" (before: {', '.join(str(wasm_before.get(k)) for k in vm_keys)}), "
              f"reloads {reloads or 0}, log markers {markers or 'none'}  "
              f"{check(vm_same and not reloads and not markers and envoy.alive(), 'wasm vm')}")

        # every worker still serves
        workers = r"^listener\.127\.0\.0\.1_\d+\.worker_\d+\.downstream_cx_total$"
        cx0 = envoy.stats(workers)
        ok_after = all(envoy.request("GET", "/v1/inventory/sku-1001")[0] == 200
                       for _ in range(24))
        served = {k.split(".")[-2]: v - cx0.get(k, 0) for k, v in envoy.stats(workers).items()}
        print(f"after the run: 24 new connections all 200: {ok_after}, by worker {served}  "
              f"{check(ok_after and len(served) == 2 and all(served.values()), 'workers')}")

        # memory
        samples = sampler.samples
        warm = [s for s in samples if s[0] >= elapsed * a.warmup and s[0] <= elapsed]
        print(f"\nmemory (every {a.interval:g} s; warm-up = first {a.warmup:.0%} of the run):")
        print(f"{'t (s)':>7} {'allocated MiB':>14} {'heap MiB':>9} {'RSS MiB':>8}")
        step = max(1, len(samples) // 12)
        shown = [baseline] + samples[::step] + [samples[-1], idle] if samples else [baseline, idle]
        for t, alloc, heap, rss in shown:
            print(f"{t:>7.1f} {alloc / MiB:>14.2f} {heap / MiB:>9.2f} {rss / MiB:>8.2f}")
        if len(warm) >= 2:
            first, last = warm[0], warm[-1]
            peak_alloc = max(s[1] for s in warm)
            peak_rss = max(s[3] for s in warm)
            growth = (peak_alloc - first[1]) / MiB
            rss_growth = (peak_rss - first[3]) / MiB
            print(f"after warm-up ({first[0]:.0f}-{last[0]:.0f} s): allocated {first[1] / MiB:.2f}"
                  f" -> {last[1] / MiB:.2f} MiB (peak +{growth:.2f}), RSS {first[3] / MiB:.2f} -> "
                  f"{last[3] / MiB:.2f} MiB (peak +{rss_growth:.2f}); idle after: allocated "
                  f"{idle[1] / MiB:.2f}, RSS {idle[3] / MiB:.2f} MiB  "
                  f"{check(growth <= a.max_growth_mib and rss_growth <= a.max_rss_growth_mib, 'memory')}")
        else:
            print(f"too few samples after warm-up  {check(False, 'memory samples')}")

        print(f"\n{'PASS' if not failures else 'FAIL: ' + ', '.join(failures)}"
              f"  (work directory {work}{'' if a.keep or failures else ', removed'})")
    finally:
        if envoy:
            envoy.stop()
        if services:
            services.stop()
        if not a.keep and not failures:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
