#!/usr/bin/env python3
"""End-to-end benchmark: one Envoy binary, four configs, the same upstream and payloads.

  (a) native   Envoy's envoy.filters.http.grpc_json_transcoder
  (b) wasm     json2grpc (dist/json2grpc.wasm, V8)
  (c) grpc     no transcoder: the client sends gRPC itself (the floor)
  (d) floor    gRPC through an empty proxy-wasm filter (bench/floor-filter: every callback
               returns Continue): what any Wasm filter costs per request in this Envoy

Each Envoy runs with --concurrency 1, pinned to CPU 0 (taskset); h2load (nghttp2-client) and
bench_upstream (examples/src/bin/bench_upstream.rs: fixed answers, one thread) are pinned to
CPU 1. The three Envoys run side by side (idle when not measured), so the configs are
interleaved per payload and direction, with a rotating order.

Directions: `request` = the payload's JSON in (POST /v1/bench/order | /v1/bench/bulk), a small
Ack out; `response` = a small JSON query in (POST /v1/bench/{order,bulk}/fetch), the payload's
JSON out. The grpc config sends/receives the same messages as gRPC frames.

Three kinds of cells:
  * throughput: h2load -c C -m M for --duration s after --warmup s; requests/s, p50/p99 latency
    (from h2load's per-request log, warm-up excluded) and the CPU share of each process (utime +
    stime from /proc/PID/stat over the measured window) to show which process is the bottleneck;
  * latency: one connection, one request at a time (-c 1 -m 1), p50/p99: the latency a
    transcoder adds over the grpc floor without queueing;
  * paced: the throughput cell's clients sending at --paced-load (0.8) of native's requests/s
    measured just before (h2load --rps per client), every config at that same rate: p50/p99
    under load that native sustains.

Before timing, every (config, payload, direction) is checked once with nghttp: HTTP 200, the
JSON equals the payload's JSON (response) or the Ack reports the .binpb's size (request).

Writes a JSON document with every cell to --out; prints progress to stderr.
"""

import argparse
import base64
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PAYLOADS = ["small", "medium", "large"]
CONFIGS = ["native", "wasm", "grpc", "floor"]
GRPC_CONFIGS = ("grpc", "floor")  # clients send gRPC themselves
DIRECTIONS = ["request", "response"]
BUFFER_LIMIT = 4 * 1024 * 1024  # listener/cluster buffers and json2grpc envoy_buffer_bytes


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- configs ---------------------------------------------------------------------------------

ENVOY_TEMPLATE = """\
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
  - name: app
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    per_connection_buffer_limit_bytes: {limit}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: app
          codec_type: AUTO
          http2_protocol_options: {{ max_concurrent_streams: 1024 }}
          route_config:
            name: bench
            virtual_hosts:
            - name: bench
              domains: ["*"]
              routes:
              - match: {{ prefix: "/bench.v1.Bench/" }}
                route: {{ cluster: bench, timeout: 0s }}
              - match: {{ prefix: "/v1/bench/" }}
                route: {{ cluster: bench, timeout: 0s }}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: bench
    type: STATIC
    connect_timeout: 1s
    per_connection_buffer_limit_bytes: {limit}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
    load_assignment:
      cluster_name: bench
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {host}, port_value: {port} }}
"""

NATIVE_FILTER = """\
          - name: envoy.filters.http.grpc_json_transcoder
            typed_config: {config}
"""

WASM_FILTER = """\
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: json2grpc
                root_id: json2grpc
                vm_config:
                  vm_id: json2grpc
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {wasm} }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config}
"""


def envoy_config(kind, upstream, descriptor, wasm, services=("bench.v1.Bench",), floor=None, floor_ops=""):
    """Envoy's YAML for one config: native, wasm (json2grpc), floor (the empty Wasm filter of
    bench/floor-filter; floor_ops: the host calls it makes per request, e.g.
    "req_headers_get,metric*6", see its src/lib.rs) or grpc (no filter)."""
    host, port = upstream.rsplit(":", 1)
    if kind == "native":
        cfg = {"@type": "type.googleapis.com/envoy.extensions.filters.http."
                        "grpc_json_transcoder.v3.GrpcJsonTranscoder",
               "proto_descriptor": str(descriptor), "services": list(services)}
        filters = NATIVE_FILTER.format(config=json.dumps(cfg))
    elif kind == "wasm":
        plugin = {"proto_descriptor_bin": base64.b64encode(descriptor.read_bytes()).decode(),
                  "services": list(services),
                  "json2grpc": {"limits": {"envoy_buffer_bytes": BUFFER_LIMIT}}}
        filters = WASM_FILTER.format(wasm=json.dumps(str(wasm)), config=json.dumps(json.dumps(plugin)))
    elif kind == "floor":
        filters = WASM_FILTER.replace("json2grpc", "floor").format(wasm=json.dumps(str(floor)),
                                                                   config=json.dumps(floor_ops or "{}"))
    else:
        filters = ""
    return ENVOY_TEMPLATE.format(limit=BUFFER_LIMIT, filters=filters.rstrip("\n"), host=host, port=port)


def add_run_args(p):
    """The arguments bench/ladder.py and bench/stream.py share: what to run, and where."""
    p.add_argument("--envoy", required=True)
    p.add_argument("--wasm", required=True, type=Path)
    p.add_argument("--floor", required=True, type=Path, help="the empty Wasm filter (bench/floor-filter)")
    p.add_argument("--upstream", required=True, help="bench_upstream binary")
    p.add_argument("--descriptor", required=True, type=Path, help="descriptor set of bench/proto/bench.proto")
    p.add_argument("--payloads", required=True, type=Path, help="the payloads (small.json, small.binpb, …)")
    p.add_argument("--out", required=True, type=Path)


# ---- processes ---------------------------------------------------------------------------------

NICE = 0


def pinned(cpu, argv):
    """argv pinned to a CPU (taskset) and at the --nice priority (the machine is shared)."""
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    if NICE:
        argv = ["nice", "-n", str(NICE)] + argv
    return argv


def schedstat(pid):
    """(on-CPU ns, runnable-but-waiting ns) summed over the process's threads; None when gone."""
    on = wait = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                fields = (task / "schedstat").read_text().split()
                on += int(fields[0])
                wait += int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        return None
    return on, wait


def system_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Upstream:
    def __init__(self, binary, payloads, workdir, cpu):
        self.log = open(workdir / "upstream.log", "wb")
        self.proc = subprocess.Popen(
            pinned(cpu, [str(binary), "--listen", "127.0.0.1:0", "--payloads", str(payloads)]),
            stdout=subprocess.PIPE, stderr=self.log)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(b"bench_upstream listening on "):
            self.stop()
            raise SystemExit(f"bench_upstream did not start: {line!r}")
        self.address = line.split()[3].decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


class Envoy:
    def __init__(self, envoy, name, config_text, workdir, cpu, concurrency=1):
        self.name = name
        self.config = workdir / f"{name}.yaml"
        self.config.write_text(config_text)
        self.admin_path = workdir / f"{name}.admin"
        self.admin_path.unlink(missing_ok=True)
        self.log_path = workdir / f"{name}.envoy.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            pinned(cpu, [str(envoy), "-c", str(self.config), "--concurrency", str(concurrency),
                         "--use-dynamic-base-id", "--log-level", "warn",
                         "--admin-address-path", str(self.admin_path)]),
            stdout=self.log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        deadline = started + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"envoy {name} exited: {self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"envoy {name} did not become ready: {self.log_path.read_text()[-3000:]}")
            try:
                self.admin = "http://" + self.admin_path.read_text().strip()
                if self.admin_get("/ready").startswith("LIVE"):
                    listeners = json.loads(self.admin_get("/listeners?format=json"))
                    port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
                    if port:
                        self.port = int(port)
                        self.live_seconds = time.monotonic() - started  # start to LIVE (±10 ms)
                        break
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.01)

    def admin_get(self, path):
        with urllib.request.urlopen(self.admin + path, timeout=5) as r:
            return r.read().decode()

    def stat(self, name):
        text = self.admin_get(f"/stats?filter=^{re.escape(name)}$")
        m = re.search(r": (\d+)", text)
        return int(m.group(1)) if m else 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- requests ----------------------------------------------------------------------------------

def grpc_frame(message):
    return b"\0" + len(message).to_bytes(4, "big") + message


def query_message(payload):
    name = payload.encode()
    return b"\x0a" + bytes([len(name)]) + name  # PayloadQuery { payload = 1 }


class Cell:
    """The request of one (config, payload, direction): path, headers and body file."""

    def __init__(self, config, payload, direction, payloads_dir, workdir):
        big = payload == "large"
        self.config, self.payload, self.direction = config, payload, direction
        if config in GRPC_CONFIGS:
            method = {("request", False): "SubmitOrder", ("request", True): "SubmitBulk",
                      ("response", False): "FetchOrder", ("response", True): "FetchBulk"}[(direction, big)]
            self.path = f"/bench.v1.Bench/{method}"
            self.headers = ["content-type: application/grpc", "te: trailers"]
            message = (payloads_dir / f"{payload}.binpb").read_bytes() if direction == "request" \
                else query_message(payload)
            body = grpc_frame(message)
        else:
            base = "/v1/bench/bulk" if big else "/v1/bench/order"
            self.path = base if direction == "request" else base + "/fetch"
            self.headers = ["content-type: application/json"]
            body = (payloads_dir / f"{payload}.json").read_bytes() if direction == "request" \
                else json.dumps({"payload": payload}).encode()
        self.body = workdir / f"body-{config}-{payload}-{direction}"
        self.body.write_bytes(body)


def check(cell, port, payloads_dir, workdir):
    """One request with nghttp: the response must be the expected one."""
    out = workdir / "check.out"
    argv = ["nghttp", "-d", str(cell.body)]
    for h in cell.headers:
        argv += ["-H", h]
    # -v prints frames (and the :status / grpc-status headers) to stdout, -o writes the body.
    r = subprocess.run(argv + ["-v", f"http://127.0.0.1:{port}{cell.path}"], capture_output=True, timeout=60)
    trace = r.stdout.decode(errors="replace")
    r2 = subprocess.run(argv + [f"http://127.0.0.1:{port}{cell.path}"], capture_output=True, timeout=60)
    body = r2.stdout
    status = re.search(r":status: (\d+)", trace)
    where = f"{cell.config}/{cell.payload}/{cell.direction}"
    if r.returncode != 0 or not status or status.group(1) != "200":
        raise SystemExit(f"check {where}: HTTP status {status and status.group(1)} rc={r.returncode}\n{trace[-2000:]}")
    binpb = (payloads_dir / f"{cell.payload}.binpb").read_bytes()
    if cell.config in GRPC_CONFIGS:
        if "grpc-status: 0" not in trace:
            raise SystemExit(f"check {where}: no grpc-status 0\n{trace[-2000:]}")
        if cell.direction == "response":
            ok = body == grpc_frame(binpb)
        else:
            ok = body[5:].startswith(b"\x08") and len(body) > 5
        if not ok:
            raise SystemExit(f"check {where}: unexpected gRPC body ({len(body)} bytes)")
        return
    try:
        got = json.loads(body)
    except ValueError:
        raise SystemExit(f"check {where}: not JSON: {body[:300]!r}")
    if cell.direction == "request":
        want = {"receivedBytes": str(len(binpb)), "status": "ACCEPTED"}
    else:
        want = json.loads((payloads_dir / f"{cell.payload}.json").read_bytes())
    if got != want:
        raise SystemExit(f"check {where}: response differs from the expected JSON "
                         f"({len(body)} bytes): {body[:300]!r}")


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def run_h2load(cell, port, clients, streams, duration, warmup, workdir, cpu, watch, rps=None):
    """h2load for warmup + duration seconds (at most `rps` requests/s per client when given);
    returns the cell's measurements."""
    logfile = workdir / "h2load.log"
    logfile.unlink(missing_ok=True)
    argv = ["h2load", "-c", str(clients), "-m", str(streams), "-t", "1",
            "-D", f"{int(duration * 1000)}ms", "--warm-up-time", f"{int(warmup * 1000)}ms",
            "-d", str(cell.body), "--log-file", str(logfile)]
    if rps:
        argv += ["--rps", str(rps)]
    for h in cell.headers:
        argv += ["-H", h]
    argv.append(f"http://127.0.0.1:{port}{cell.path}")
    started = time.time()
    proc = subprocess.Popen(pinned(cpu, argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # CPU of each process over the measured window (leaving small margins at both ends).
    margin = min(0.5, duration * 0.1)
    time.sleep(warmup + margin)
    pids = dict(watch, h2load=proc.pid)
    t0 = time.monotonic()
    before = {k: schedstat(p) for k, p in pids.items()}
    sys0 = system_busy()
    load0 = os.getloadavg()[0]
    time.sleep(max(0.1, duration - 2 * margin))
    after = {k: schedstat(p) for k, p in pids.items()}
    sys1 = system_busy()
    elapsed = time.monotonic() - t0
    out, _ = proc.communicate(timeout=duration + warmup + 120)
    text = out.decode(errors="replace")
    def share(i):
        return {k: (round((after[k][i] - before[k][i]) / 1e9 / elapsed, 3)
                    if before[k] is not None and after[k] is not None else None) for k in pids}

    cpu_share = share(0)
    # Runnable-but-not-running time: well above 0 means the process was short of CPU (other load).
    cpu_wait = share(1)
    machine = round((sys1[0] - sys0[0]) / max(1, sys1[1] - sys0[1]) * os.cpu_count(), 2)

    def grab(pattern, cast=float):
        m = re.search(pattern, text)
        return cast(m.group(1).replace(",", "")) if m else None

    rps = grab(r"finished in [\d.]+\w*, ([\d.]+) req/s")
    done = grab(r"requests: \d+ total, \d+ started, (\d+) done", int)
    succeeded = grab(r"(\d+) succeeded", int)
    failed = grab(r"(\d+) failed", int)
    errored = grab(r"(\d+) errored", int)
    bad_status = (grab(r"(\d+) 4xx", int) or 0) + (grab(r"(\d+) 5xx", int) or 0)
    # Latencies from the per-request log; requests started in the warm-up are left out.
    rows = []
    try:
        for line in logfile.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    except OSError:
        pass
    cut = (started + warmup) * 1e6
    lat = sorted(d for s, st, d in rows if s >= cut and st == 200)
    return {
        "_lat": lat, "_window": elapsed,
        "rps": rps, "done": done, "succeeded": succeeded, "failed": failed, "errored": errored,
        "non_2xx": bad_status,
        "p50_us": percentile(lat, 0.50), "p99_us": percentile(lat, 0.99), "latency_samples": len(lat),
        "log_rows": len(rows), "cpu": cpu_share, "cpu_wait": cpu_wait,
        "envoy_cpu_us_per_req": (round(cpu_share["envoy"] / rps * 1e6, 1) if rps and cpu_share["envoy"] else None), "machine_busy_cpus": machine, "loadavg1": round(load0, 2),
        "h2load_tail": "\n".join(text.strip().splitlines()[-12:]),
    }


def merge(slices):
    """One cell from its slices: requests/s over the summed windows, pooled latencies, CPU shares
    weighted by window."""
    total = sum(r["_window"] for r in slices)
    lat = sorted(x for r in slices for x in r["_lat"])

    def share(field, key):
        vals = [(r[field][key], r["_window"]) for r in slices if r[field].get(key) is not None]
        return round(sum(v * w for v, w in vals) / sum(w for _, w in vals), 3) if vals else None

    keys = slices[0]["cpu"].keys()
    out = {
        "rps": sum(r["rps"] * r["_window"] for r in slices) / total,
        "slice_rps": [r["rps"] for r in slices],
        "done": sum(r["done"] or 0 for r in slices),
        "failed": sum((r["failed"] or 0) + (r["errored"] or 0) for r in slices),
        "non_2xx": sum(r["non_2xx"] or 0 for r in slices),
        "upstream_requests": sum(r["upstream_requests"] for r in slices),
        "p50_us": percentile(lat, 0.50), "p99_us": percentile(lat, 0.99), "latency_samples": len(lat),
        "cpu": {k: share("cpu", k) for k in keys},
        "cpu_wait": {k: share("cpu_wait", k) for k in keys},
        "machine_busy_cpus": round(sum(r["machine_busy_cpus"] * r["_window"] for r in slices) / total, 2),
        "loadavg1": round(sum(r["loadavg1"] for r in slices) / len(slices), 2),
        "slices": len(slices),
    }
    envoy = out["cpu"]["envoy"]
    out["envoy_cpu_us_per_req"] = round(envoy / out["rps"] * 1e6, 1) if envoy and out["rps"] else None
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(p)
    p.add_argument("--concurrency", type=int, default=1, help="Envoy --concurrency (workers)")
    p.add_argument("--duration", type=float, default=12)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--clients", type=int, default=16, help="h2load connections (throughput cells)")
    p.add_argument("--streams", type=int, default=8, help="h2load streams per connection")
    p.add_argument("--large-concurrency", default="8,4", metavar="C,M",
                   help="connections,streams for the 1 MB payload (fewer: each request is 1 MB)")
    p.add_argument("--latency-duration", type=float, default=4)
    p.add_argument("--rounds", type=int, default=3, help="slices per cell, configs taking turns")
    p.add_argument("--paced-load", type=float, default=0.8,
                   help="paced cells: this share of native's throughput (0: no paced cells)")
    p.add_argument("--payload", action="append", choices=PAYLOADS, help="only these payloads")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--nice", type=int, default=-10,
                   help="priority of Envoy, upstream and h2load (root only; 0 = unchanged)")
    a = p.parse_args()
    global NICE
    NICE = a.nice if os.geteuid() == 0 else 0
    for tool in ("h2load", "nghttp"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install nghttp2-client")
    pin = not a.no_pin and os.cpu_count() >= 2 and shutil.which("taskset")
    envoy_cpu, client_cpu = (0, 1) if pin else (None, None)
    payloads = a.payload or PAYLOADS
    workdir = a.out.resolve().parent / "e2e-work"  # configs, logs, request bodies
    workdir.mkdir(parents=True, exist_ok=True)
    descriptor = a.descriptor.resolve()
    wasm = a.wasm.resolve()
    upstream = Upstream(a.upstream, a.payloads.resolve(), workdir, client_cpu)
    envoys = {}
    result = {"settings": {k: v for k, v in vars(a).items() if not isinstance(v, Path)} |
              {"pinned": bool(pin), "envoy_cpu": envoy_cpu, "client_cpu": client_cpu,
               "buffer_limit": BUFFER_LIMIT, "envoy_version": subprocess.run(
                   [a.envoy, "--version"], capture_output=True, text=True).stdout.strip().split("version: ")[-1],
               "h2load_version": subprocess.run(["h2load", "--version"], capture_output=True,
                                                text=True).stdout.strip()},
              "throughput": [], "latency": [], "paced": []}
    try:
        for kind in CONFIGS:
            envoys[kind] = Envoy(a.envoy, kind,
                                 envoy_config(kind, upstream.address, descriptor, wasm, floor=a.floor.resolve()),
                                 workdir, envoy_cpu, a.concurrency)
            log(f"envoy {kind}: port {envoys[kind].port}")
        cells = {(c, pl, d): Cell(c, pl, d, a.payloads, workdir)
                 for c in CONFIGS for pl in payloads for d in DIRECTIONS}
        for (c, pl, d), cell in cells.items():
            check(cell, envoys[c].port, a.payloads, workdir)
        log("checks passed: every config answers every payload correctly")

        # Each cell is measured in --rounds slices; the configs take turns slice by slice (the
        # order rotates), so that the machine's drift hits every config alike.
        rotation = 0
        large_clients, large_streams = (int(x) for x in a.large_concurrency.split(","))
        kinds = [("throughput", a.clients, a.streams, a.duration, a.warmup),
                 ("latency", 1, 1, a.latency_duration, 1.0)]
        if a.paced_load > 0:
            kinds.append(("paced", a.clients, a.streams, a.latency_duration, 1.0))
        for kind, base_clients, base_streams, duration, warmup in kinds:
            for pl in payloads:
                clients, streams = base_clients, base_streams
                if kind in ("throughput", "paced") and pl == "large":
                    clients, streams = large_clients, large_streams
                for d in DIRECTIONS:
                    rate = None
                    if kind == "paced":
                        native = next(r for r in result["throughput"]
                                      if (r["config"], r["payload"], r["direction"]) == ("native", pl, d))
                        rate = max(1, round(native["rps"] * a.paced_load / clients))
                    slices = {c: [] for c in CONFIGS}
                    for _ in range(a.rounds):
                        order = CONFIGS[rotation % len(CONFIGS):] + CONFIGS[:rotation % len(CONFIGS)]
                        rotation += 1
                        for c in order:
                            env = envoys[c]
                            up0 = env.stat("cluster.bench.upstream_rq_completed")
                            r = run_h2load(cells[(c, pl, d)], env.port, clients, streams, duration / a.rounds,
                                           warmup, workdir, client_cpu,
                                           {"envoy": env.proc.pid, "upstream": upstream.proc.pid}, rate)
                            r["upstream_requests"] = env.stat("cluster.bench.upstream_rq_completed") - up0
                            if not r["rps"]:
                                raise SystemExit(f"h2load failed:\n{r['h2load_tail']}")
                            if r["failed"] or r["errored"] or r["non_2xx"]:
                                log(f"  non-2xx or failed requests:\n{r['h2load_tail']}")
                            slices[c].append(r)
                    for c in CONFIGS:
                        r = merge(slices[c])
                        r.update(config=c, payload=pl, direction=d, clients=clients, streams=streams,
                                 rps_per_client=rate)
                        result[kind].append(r)
                        cpu, wait = r["cpu"], r["cpu_wait"]
                        log(f"{kind:10} {pl:6} {d:8} {c:6}: {r['rps']:9.1f} req/s "
                            f"(slices {'/'.join(f'{x:.0f}' for x in r['slice_rps'])})  p50 "
                            f"{(r['p50_us'] or 0) / 1000:8.3f} ms  p99 {(r['p99_us'] or 0) / 1000:8.3f} ms  "
                            f"cpu envoy {cpu['envoy']} upstream {cpu['upstream']} h2load {cpu['h2load']}  "
                            f"wait envoy {wait['envoy']}  errors {r['failed'] + r['non_2xx']}  "
                            f"load {r['loadavg1']}")
        if "wasm" in envoys:
            text = envoys["wasm"].admin_get("/stats?filter=json2grpc")
            result["wasm_stats"] = text
    finally:
        for e in envoys.values():
            e.stop()
        upstream.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    log(f"wrote {a.out} (logs in {workdir})")


if __name__ == "__main__":
    main()
