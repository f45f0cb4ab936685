#!/usr/bin/env python3
"""Server streams through Envoy: messages/s, Envoy CPU per message and time to the first message.

One Envoy per config (--concurrency 1, pinned to CPU 0; the upstream and the client on CPU 1, as
bench/e2e.py): grpc (no filter, the client reads gRPC frames), floor (the empty Wasm filter),
native (Envoy's grpc_json_transcoder: a JSON array), json2grpc (a JSON array, its default), and
any --compare build. The call is bench.v1.Bench/StreamTicks (bench/proto/bench.proto): the
upstream (bench_upstream) answers with `count` Tick messages of --size bytes, `batch` per HTTP/2
DATA frame, as fast as the stream's window lets it.

  * throughput: one stream of --count messages, read by curl (HTTP/2 cleartext) into /dev/null;
    messages/s over the transfer, and the CPU of Envoy, the upstream and curl over it (from
    /proc/PID/task/*/schedstat and the child's rusage): Envoy must be the busy one. Per config
    and batch size, --rounds streams, the configs taking turns (rotating order); each cell keeps
    the median round. Envoy ns/message minus grpc's is what the transcoding costs per message.
  * first message: one HTTP/2 connection (a raw h2 client in this process), --ttfb-requests
    streams of two messages 20 ms apart, one at a time; the time from sending the request to
    having the whole first message (a gRPC frame, or the JSON up to its first `}`), p50 / p99,
    and to the end of the stream minus the 20 ms between the messages (the last message's
    latency, plus the upstream timer's rounding, the same for every config).

Before timing, each config's stream is checked once: every message arrives, in order, intact.
Writes JSON to --out and prints a table.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402

import h2.config  # noqa: E402  (tests/requirements.txt: the venv's h2)
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402

GAP_US = 20_000  # between the two messages of a first-message stream


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def query(count, size, batch, interval_us=0):
    """StreamQuery as JSON (transcoders) and as a gRPC frame (grpc, floor)."""
    fields = {"count": count, "size": size, "batch": batch, "intervalUs": interval_us}
    message = b"".join(varint(tag << 3) + varint(v) for tag, v in
                       ((1, count), (2, size), (3, batch), (4, interval_us)) if v)
    return json.dumps(fields).encode(), e2e.grpc_frame(message)


class Target:
    """One Envoy and how to call StreamTicks through it."""

    def __init__(self, name, kind, envoy):
        self.name, self.kind, self.envoy = name, kind, envoy
        self.grpc = kind in e2e.GRPC_CONFIGS
        self.path = "/bench.v1.Bench/StreamTicks" if self.grpc else "/v1/bench/stream"
        self.content_type = "application/grpc" if self.grpc else "application/json"

    def body(self, count, size, batch, interval_us=0):
        as_json, as_grpc = query(count, size, batch, interval_us)
        return as_grpc if self.grpc else as_json


def curl(target, body_file, out, cpu):
    """One stream read by curl: (fields of -w, curl's CPU seconds)."""
    argv = e2e.pinned(cpu, ["curl", "-sS", "--http2-prior-knowledge", "-o", str(out),
                            "-w", "%{http_code} %{time_pretransfer} %{time_starttransfer} %{time_total} %{size_download}",
                            "-H", f"content-type: {target.content_type}", "-H", "te: trailers",
                            "--data-binary", f"@{body_file}",
                            f"http://127.0.0.1:{target.envoy.port}{target.path}"])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"curl {target.name}: rc={proc.returncode} {stderr}")
    return stdout.split(), usage.ru_utime + usage.ru_stime


def check(target, workdir, size):
    """A 1,000-message stream (7 per DATA frame) arrives whole and in order."""
    count = 1000
    body_file = workdir / f"stream-check-{target.name}.body"
    body_file.write_bytes(target.body(count, size, 7))
    out = workdir / f"stream-check-{target.name}.out"
    fields, _ = curl(target, body_file, out, None)
    data = out.read_bytes()
    if fields[0] != "200":
        raise SystemExit(f"stream check {target.name}: HTTP {fields[0]}: {data[:300]!r}")
    if target.grpc:
        seqs, i = [], 0
        while i < len(data):
            n = int.from_bytes(data[i + 1:i + 5], "big")
            message = data[i + 5:i + 5 + n]
            seqs.append(message)
            i += 5 + n
        ok = len(seqs) == count and all(len(m) >= size - 4 for m in seqs)
    else:
        try:
            items = json.loads(data)
        except ValueError:
            raise SystemExit(f"stream check {target.name}: not a JSON array: {data[:300]!r}")
        ok = (isinstance(items, list) and len(items) == count and
              [it.get("seq") for it in items] == [str(i) for i in range(1, count + 1)] and
              all(set(it.get("data", "")) == {"x"} for it in items))
    if not ok:
        raise SystemExit(f"stream check {target.name}: {count} messages expected ({len(data)} bytes): {data[:300]!r}")


def throughput(target, body_file, count, workdir, client_cpu, upstream_pid):
    envoy0 = e2e.schedstat(target.envoy.proc.pid)
    up0 = e2e.schedstat(upstream_pid)
    fields, curl_cpu = curl(target, body_file, "/dev/null", client_cpu)
    envoy1 = e2e.schedstat(target.envoy.proc.pid)
    up1 = e2e.schedstat(upstream_pid)
    code, pre, _start, total, size = fields
    if code != "200":
        raise SystemExit(f"stream {target.name}: HTTP {code}")
    wall = float(total) - float(pre)
    envoy_cpu = (envoy1[0] - envoy0[0]) / 1e9
    return {"seconds": wall, "messages_per_s": count / wall, "bytes": int(size),
            "envoy_ns_per_message": envoy_cpu * 1e9 / count,
            "cpu": {"envoy": round(envoy_cpu / wall, 3),
                    "upstream": round((up1[0] - up0[0]) / 1e9 / wall, 3),
                    "curl": round(curl_cpu / wall, 3)}}


class H2Client:
    """A raw HTTP/2 client on one connection, for timing the first message of a stream."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        self.conn.increment_flow_control_window(1 << 24)
        self.sock.sendall(self.conn.data_to_send())

    def first_message(self, target, body):
        """(seconds to the whole first message, seconds to the stream's end, status)."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "POST"), (":path", target.path), (":scheme", "http"),
                                     (":authority", "bench"), ("content-type", target.content_type),
                                     ("te", "trailers")])
        self.conn.send_data(sid, body, end_stream=True)
        data, status, first = b"", None, None
        t0 = time.perf_counter()
        self.sock.sendall(self.conn.data_to_send())
        while True:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise SystemExit(f"{target.name}: connection closed")
            now = time.perf_counter()
            for ev in self.conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers).get(b":status")
                elif isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    data += ev.data
                    if first is None and self.complete_first(target, data):
                        first = now - t0
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    self.sock.sendall(self.conn.data_to_send())
                    return first, now - t0, status
            self.sock.sendall(self.conn.data_to_send())

    @staticmethod
    def complete_first(target, data):
        if target.grpc:
            return len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[1:5], "big")
        return b"}" in data

    def close(self):
        self.sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    e2e.add_run_args(p)
    p.add_argument("--compare", action="append", default=[], metavar="NAME=WASM",
                   help="another json2grpc build measured next to --wasm")
    p.add_argument("--count", type=int, default=200_000, help="messages per throughput stream")
    p.add_argument("--size", type=int, default=100, help="bytes per message (protobuf)")
    p.add_argument("--batches", default="1,16", help="messages per DATA frame, one cell each")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ttfb-requests", type=int, default=60, help="first-message streams per config and round")
    a = p.parse_args()
    workdir = a.out.resolve().parent / "stream-work"
    workdir.mkdir(parents=True, exist_ok=True)
    envoy_cpu, client_cpu = (0, 1) if os.cpu_count() >= 2 else (None, None)
    upstream = e2e.Upstream(a.upstream, a.payloads.resolve(), workdir, client_cpu)
    builds = {"json2grpc": a.wasm.resolve()} | {n: Path(w).resolve() for n, w in (c.split("=", 1) for c in a.compare)}
    names = ["grpc", "floor", "native"] + list(builds)
    targets = {}
    result = {"settings": {k: v for k, v in vars(a).items() if not isinstance(v, Path)},
              "throughput": [], "first_message": []}
    try:
        for i, name in enumerate(names):
            kind = "wasm" if name in builds else name
            config = e2e.envoy_config(kind, upstream.address, a.descriptor.resolve(),
                                      builds.get(name, a.wasm.resolve()), floor=a.floor.resolve())
            # One DATA frame per message (batch 1) outruns curl: past Envoy's default of 10,000
            # queued outbound frames it resets the client's connection as a flood
            # (http2.outbound_flood), whichever filter runs.
            config = config.replace("max_concurrent_streams: 1024 }",
                                    "max_concurrent_streams: 1024, max_outbound_frames: 10000000 }", 1)
            assert "max_outbound_frames" in config
            targets[name] = Target(name, kind, e2e.Envoy(a.envoy, f"stream{i}", config, workdir, envoy_cpu))
            check(targets[name], workdir, a.size)
        e2e.log(f"stream checks passed: {', '.join(names)}")

        rotation = 0
        for batch in (int(b) for b in a.batches.split(",")):
            rounds = {n: [] for n in names}
            for name in names:  # warm-up: JIT, connections
                t = targets[name]
                warm = workdir / f"stream-warm-{name}.body"
                warm.write_bytes(t.body(a.count // 10, a.size, batch))
                throughput(t, warm, a.count // 10, workdir, client_cpu, upstream.proc.pid)
            for _ in range(a.rounds):
                order = names[rotation % len(names):] + names[:rotation % len(names)]
                rotation += 1
                for name in order:
                    t = targets[name]
                    body_file = workdir / f"stream-{name}-{batch}.body"
                    body_file.write_bytes(t.body(a.count, a.size, batch))
                    rounds[name].append(throughput(t, body_file, a.count, workdir, client_cpu, upstream.proc.pid))
            for name in names:
                rs = sorted(rounds[name], key=lambda r: r["envoy_ns_per_message"])
                mid = rs[len(rs) // 2]
                cell = dict(mid, config=name, batch=batch, count=a.count, size=a.size,
                            rounds_ns_per_message=[round(r["envoy_ns_per_message"]) for r in rounds[name]],
                            rounds_messages_per_s=[round(r["messages_per_s"]) for r in rounds[name]])
                result["throughput"].append(cell)
                e2e.log(f"batch {batch:3} {name:10}: {mid['messages_per_s']:10,.0f} msg/s  Envoy "
                        f"{mid['envoy_ns_per_message']:7.0f} ns/msg (rounds {cell['rounds_ns_per_message']})  "
                        f"cpu {mid['cpu']}")

        # First message: the client on CPU 1 (with the upstream), one stream at a time.
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        clients = {n: H2Client(targets[n].envoy.port) for n in names}
        samples = {n: {"first": [], "rest": []} for n in names}
        for _ in range(a.rounds):
            order = names[rotation % len(names):] + names[:rotation % len(names)]
            rotation += 1
            for name in order:
                body = targets[name].body(2, a.size, 1, GAP_US)
                for _ in range(a.ttfb_requests):
                    first, total, status = clients[name].first_message(targets[name], body)
                    if status != b"200" or first is None:
                        raise SystemExit(f"first message {name}: status {status!r}, first {first}")
                    samples[name]["first"].append(first)
                    # The upstream sleeps GAP_US (tokio: rounded up to its 1 ms timer) between them.
                    samples[name]["rest"].append(total - GAP_US / 1e6)
        for name in names:
            first = sorted(samples[name]["first"])
            rest = sorted(samples[name]["rest"])
            cell = {"config": name, "requests": len(first),
                    "first_p50_us": round(e2e.percentile(first, 0.5) * 1e6),
                    "first_p99_us": round(e2e.percentile(first, 0.99) * 1e6),
                    "last_p50_us": round(e2e.percentile(rest, 0.5) * 1e6),
                    "last_p99_us": round(e2e.percentile(rest, 0.99) * 1e6)}
            result["first_message"].append(cell)
            e2e.log(f"first message {name:10}: p50 {cell['first_p50_us']} µs p99 {cell['first_p99_us']} µs; "
                    f"last message: p50 {cell['last_p50_us']} µs")
        for c in clients.values():
            c.close()
    finally:
        for t in targets.values():
            t.envoy.stop()
        upstream.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    print(table(result))


def table(result):
    lines = ["| batch | config | messages/s | Envoy ns/message | over grpc | ÷ native's | CPU envoy / upstream / curl |",
             "|---:|---|---:|---:|---:|---:|---|"]
    for batch in sorted({c["batch"] for c in result["throughput"]}):
        cells = {c["config"]: c for c in result["throughput"] if c["batch"] == batch}
        grpc = cells["grpc"]["envoy_ns_per_message"]
        native = cells["native"]["envoy_ns_per_message"] - grpc
        for name, c in cells.items():
            over = c["envoy_ns_per_message"] - grpc
            ratio = f"{over / native:.2f}" if name not in ("grpc", "native") and native > 0 else ""
            lines.append(f"| {batch} | {name} | {c['messages_per_s']:,.0f} | {c['envoy_ns_per_message']:,.0f} | "
                         f"{'' if name == 'grpc' else f'{over:+,.0f}'} | {ratio} | "
                         f"{c['cpu']['envoy']} / {c['cpu']['upstream']} / {c['cpu']['curl']} |")
    lines += ["", "| config | first message p50 µs | p99 µs | last message (end - 20 ms) p50 µs | p99 µs |",
              "|---|---:|---:|---:|---:|"]
    for c in result["first_message"]:
        lines.append(f"| {c['config']} | {c['first_p50_us']} | {c['first_p99_us']} | "
                     f"{c['last_p50_us']} | {c['last_p99_us']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
