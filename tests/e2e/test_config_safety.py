"""Configuration safety in a real Envoy.

(a) An invalid plugin config at startup: Envoy refuses to start (exits non-zero) and its log
    has an error line naming the offending field.
(b) An invalid plugin config pushed later (a new version of a file-based dynamic listener,
    LDS from `path_config_source`) is rejected: `listener_manager.lds.update_rejected` grows,
    the active listener keeps its version and the previous config keeps serving.
(c) A descriptor update (GetItem also bound to GET /v2/items/{sku}, built with json2grpc-tool
    from a modified copy of the flash-sale protos) takes effect without restarting Envoy.
"""

import base64
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
import yaml

import harness

GET_ITEM = "/flashsale.v1.Inventory/GetItem"
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"


def descriptor_b64(data=None):
    return base64.b64encode(data if data is not None else harness.descriptor_bytes()).decode()


def edition_descriptor(edition):
    """The flash-sale descriptor set with its flashsale files marked `edition` ("2023", "2024")."""
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(harness.descriptor_bytes())
    for f in fds.file:
        if f.package == "flashsale.v1":
            f.syntax = "editions"
            f.edition = descriptor_pb2.Edition.Value(f"EDITION_{edition}")
    return fds.SerializeToString()


# ---- (a) refused at startup ----------------------------------------------------------------------

INVALID_AT_STARTUP = [
    # (id, config overrides (None removes a key), words the error line must contain)
    ("unknown-field", {"bogus_option": True}, ["bogus_option"]),
    ("unknown-nested-field", {"print_options": {"add_whitespace": True, "pretty": True}},
     ["pretty"]),
    # (A lone string for `services` and "yes" for a bool are accepted, as Envoy accepts them.)
    ("wrong-type-services", {"services": [1]}, ["services"]),
    ("wrong-type-bool", {"convert_grpc_status": 1}, ["convert_grpc_status"]),
    ("max-request-body-size-zero", {"max_request_body_size": 0}, ["max_request_body_size"]),
    ("unknown-service", {"services": ["flashsale.v1.Nope"]}, ["flashsale.v1.Nope"]),
    ("bad-base64", {"proto_descriptor_bin": "not base64!!"}, ["proto_descriptor_bin"]),
    ("not-a-descriptor", {"proto_descriptor_bin": base64.b64encode(b"\xff\x00garbage").decode()},
     ["proto_descriptor_bin"]),
    ("missing-descriptor", {"proto_descriptor_bin": None}, ["proto_descriptor_bin"]),
    ("descriptor-file-path", {"proto_descriptor_bin": None, "proto_descriptor": "/x.pb"},
     ["proto_descriptor"]),
    ("limit-out-of-range", {"json2grpc": {"limits": {"max_json_depth": 1000}}},
     ["max_json_depth"]),
    # Edition 2023 is read (test_edition_2023_descriptor_is_served); later ones are refused,
    # naming the edition.
    ("edition-2024", "edition-2024", ["proto_descriptor_bin", "edition", "2024"]),
]


def error_lines(text):
    return [line for line in text.splitlines()
            if "[error]" in line or "[critical]" in line]


@pytest.mark.parametrize("overrides,words", [pytest.param(o, w, id=i)
                                              for i, o, w in INVALID_AT_STARTUP])
def test_invalid_config_at_startup_is_refused(services, tmp_path, overrides, words):
    if overrides == "edition-2024":
        overrides = {"proto_descriptor_bin": descriptor_b64(edition_descriptor("2024"))}
    config = harness.base_plugin_config(**overrides)
    path = harness.render(harness.TEMPLATE, tmp_path / "bad.yaml", config, services,
                          wasm=harness.WASM)
    log = tmp_path / "bad.envoy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(harness.ENVOY), "-c", str(path), "--use-dynamic-base-id",
                                 "--concurrency", "1", "--log-level", "info"],
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"Envoy started with an invalid config:\n{harness.log_tail(log)}")
    text = log.read_text(errors="replace")
    assert code != 0, text[-3000:]
    lines = error_lines(text)
    # The filter's own error (wasm log … at error level) names the field; then Envoy's.
    named = [line for line in lines if all(w in line for w in words)]
    assert named, f"no error line naming {words}:\n" + "\n".join(lines)
    assert any("wasm log" in line for line in named), named
    assert "panicked" not in text


def test_edition_2023_descriptor_is_served(envoy_factory):
    """The flash-sale files as edition 2023 (what protoc and buf write for new modules):
    the config loads and the REST routes serve."""
    envoy = envoy_factory.json2grpc(proto_descriptor_bin=descriptor_b64(edition_descriptor("2023")))
    status, _, data = envoy.json_request("GET", "/v1/inventory/sku-1001")
    assert status == 200 and data["sku"] == "sku-1001", (status, data)
    assert not envoy.vm_failed()


def test_a_vm_holds_the_descriptor_set_but_not_the_configuration_s_text(envoy_factory):
    """Every worker's VM grows to its configuration's peak and never shrinks. The configuration
    is read from Envoy in pieces and the base64 set decoded as it arrives (its comments dropped
    before the build): with 3 MiB of comments in the set, each VM's linear memory stays near the
    set's size; the whole text (4/3 of the set) or a second copy would add a third of it or
    more. Measured by the filter's own log line (`this VM's linear memory: N KiB`)."""
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(harness.descriptor_bytes())
    location = fds.file[0].source_code_info.location.add()
    location.path.extend([4, 0])
    location.span.extend([0, 0, 1])
    location.leading_comments = "x" * (3 << 20)
    data = fds.SerializeToString()
    text = descriptor_b64(data)
    envoy = envoy_factory.json2grpc(proto_descriptor_bin=text)
    status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
    assert status == 200 and body["sku"] == "sku-1001", (status, body)
    log = envoy.log.read_text(errors="replace")
    sizes = [int(k) for k in re.findall(r"this VM's linear memory: (\d+) KiB", log)]
    assert sizes, envoy.log_text()
    # 1152 KiB before any configuration (the stack and static data), then the set (the build
    # reuses its memory) and a piece of the text; the whole text would be len(data) / 3 more.
    limit = 1152 * 1024 + len(data) + len(data) // 8
    assert max(sizes) * 1024 < limit, (sizes, len(text), len(data))
    assert not envoy.vm_failed()


def _varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_a_template_naming_a_missing_field_thousands_of_times_costs_a_few_log_lines(envoy_factory):
    """A binding Envoy accepts that cannot transcode is logged at `warn` with its template.
    GetItem gets an additional binding whose template names a missing field 8,000 times (a
    56 KB template, a 92 KB set): each variable's warning quoted the whole template, 449 MB
    of warnings kept for the VM's life. Now a few lines and a count, freed once logged: each
    VM's linear memory holds the set and the template's 16,000 segments (parsed, bound and
    matched: ~1.8 MiB at the build's peak, linear in them), and the API serves."""
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(harness.descriptor_bytes())
    method = next(m for f in fds.file for s in f.service if s.name == "Inventory"
                  for m in s.method if m.name == "GetItem")
    template = "/v9/x" + "/{nope}" * 8000
    # google.api.http (72295728) again: merged into the method's rule, it adds an
    # additional binding (HttpRule.additional_bindings = 11, get = 2).
    rule = _len_field(11, _len_field(2, template.encode()))
    method.options.MergeFromString(_len_field(72295728, rule))
    data = fds.SerializeToString()
    envoy = envoy_factory.json2grpc(proto_descriptor_bin=descriptor_b64(data))
    status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
    assert status == 200 and body["sku"] == "sku-1001", (status, body)
    log = envoy.log.read_text(errors="replace")
    warnings = [line for line in log.splitlines() if "[warning][wasm]" in line and "/v9/x" in line]
    # Each configured VM logs the binding's 4 lines and the count of the other 7,996.
    assert warnings and all(len(line) < 2_000 for line in warnings), envoy.log_text()
    vms = sum("7996 more path variables like the above" in line for line in warnings)
    assert vms >= 1 and len(warnings) == 5 * vms, (vms, len(warnings), warnings[-3:])
    sizes = [int(k) for k in re.findall(r"this VM's linear memory: (\d+) KiB", log)]
    assert sizes, envoy.log_text()
    limit = 1152 * 1024 + 2 * len(data) + (4 << 20)
    assert max(sizes) * 1024 < limit, (sizes, len(data))
    assert not envoy.vm_failed()


# ---- (b), (c): a file-based dynamic listener --------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DynamicEnvoy:
    """Envoy whose listener `app` comes from an LDS file (path_config_source with
    watched_directory): push() replaces the file atomically (temp file + rename)."""

    def __init__(self, services, workdir):
        self.workdir = workdir
        self.services = services
        rendered = harness.render(harness.TEMPLATE, workdir / "static.yaml",
                                  harness.base_plugin_config(), services, wasm=harness.WASM)
        bootstrap = yaml.safe_load(rendered.read_text())
        # `app` comes from LDS; the internal loopback listener stays static.
        statics = bootstrap["static_resources"]["listeners"]
        [listener] = [l for l in statics if l["name"] == "app"]
        statics.remove(listener)
        listener["address"]["socket_address"]["port_value"] = free_port()
        self.listener = listener
        self.lds_dir = workdir / "lds"
        self.lds_dir.mkdir()
        self.lds = self.lds_dir / "lds.yaml"
        self.version = 0
        self.push(harness.base_plugin_config())
        bootstrap["node"] = {"id": "json2grpc-e2e", "cluster": "json2grpc-e2e"}
        bootstrap["dynamic_resources"] = {"lds_config": {
            "resource_api_version": "V3",
            "path_config_source": {"path": str(self.lds),
                                   "watched_directory": {"path": str(self.lds_dir)}}}}
        config = workdir / "dynamic.yaml"
        config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        self.envoy = harness.Envoy("dynamic", config, workdir)

    def push(self, plugin_config, extra_routes=(("/v2/items", "inventory"),)):
        """Writes listener version N+1 with `plugin_config` (a dict, or a raw string) and
        routes `extra_routes` first; returns the version string. (Envoy's config_dump keeps
        showing version_info "1" for the listener after in-place updates from a file, so
        the tests compare the active plugin config instead.)"""
        self.version += 1
        listener = copy.deepcopy(self.listener)
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        routes[:0] = [{"match": {"prefix": p}, "route": {"cluster": c}} for p, c in extra_routes]
        wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
        value = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config)
        wasm["typed_config"]["config"]["configuration"]["value"] = value
        resource = {"@type": LISTENER_TYPE, **listener}
        text = yaml.safe_dump({"version_info": str(self.version), "resources": [resource]},
                              sort_keys=False)
        tmp = self.lds_dir / f".lds.{self.version}.tmp"
        tmp.write_text(text)
        os.rename(tmp, self.lds)
        return str(self.version)

    def lds_stats(self):
        return self.envoy.stats(r"^listener_manager\.(lds\.update_|listener_modified|"
                                r"listener_create_success|total_listeners_active)")

    def wait_for(self, stat, above, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.lds_stats()
            if stats.get(stat, 0) > above:
                return stats
            time.sleep(0.1)
        pytest.fail(f"{stat} did not grow past {above}: {self.lds_stats()}\n"
                    f"{self.envoy.log_text(60)}", pytrace=False)

    def active_plugin_config(self):
        """The plugin configuration string of the active listener `app` (admin /config_dump)."""
        dump = json.loads(self.envoy.admin_get("/config_dump?resource=dynamic_listeners"))
        [entry] = [c for c in dump["configs"] if c.get("name") == "app"]
        hcm = entry["active_state"]["listener"]["filter_chains"][0]["filters"][0]["typed_config"]
        wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
        return wasm["typed_config"]["config"]["configuration"]["value"]

    def wait_active(self, plugin_config, timeout=20):
        value = json.dumps(plugin_config)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.active_plugin_config() == value:
                return
            time.sleep(0.1)
        pytest.fail(f"the pushed plugin config never became active\n{self.envoy.log_text(60)}",
                    pytrace=False)

    def stop(self):
        self.envoy.stop()


@pytest.fixture(scope="module")
def dynamic(services, tmp_path_factory):
    try:
        d = DynamicEnvoy(services, tmp_path_factory.mktemp("dynamic"))
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    yield d
    d.stop()


def serves(envoy, times=16):
    """GET /v1/inventory/sku-1001 on `times` new connections: all 200, and both workers
    served some (a worker whose Wasm plugin failed would answer 503)."""
    workers = r"^listener\.127\.0\.0\.1_\d+\.worker_\d+\.downstream_cx_total$"
    before = envoy.stats(workers)
    for _ in range(times):
        status, _, data = envoy.json_request("GET", "/v1/inventory/sku-1001")
        assert status == 200 and data["sku"] == "sku-1001", (status, data)
    served = {k: v - before.get(k, 0) for k, v in envoy.stats(workers).items()}
    assert len(served) == 2 and all(n > 0 for n in served.values()), served


def v2_get_item(envoy):
    return envoy.request("GET", "/v2/items/sku-1001")


def test_dynamic_listener_serves_version_1(dynamic, services):
    dynamic.wait_active(harness.base_plugin_config())
    serves(dynamic.envoy)
    # /v2/items is routed (to the inventory cluster) but bound to no method yet: pass-through,
    # the gRPC service answers the REST path with UNIMPLEMENTED.
    mark = services.mark()
    status, headers, _ = v2_get_item(dynamic.envoy)
    assert (status, headers.get("grpc-status")) == (200, "12"), (status, headers)
    assert services.records(mark) == []


@pytest.mark.parametrize("name,config,words", [
    ("unknown-field", {"bogus_option": True}, ["bogus_option"]),
    ("unknown-service", {"services": ["flashsale.v1.Nope"]}, ["flashsale.v1.Nope"]),
    ("bad-base64", {"proto_descriptor_bin": "not base64!!"}, ["proto_descriptor_bin"]),
    ("not-json", "{not json", ["JSON"]),
])
def test_invalid_update_keeps_the_previous_config(dynamic, name, config, words):
    active = dynamic.active_plugin_config()
    before = dynamic.lds_stats()
    log_size = dynamic.envoy.log.stat().st_size
    if isinstance(config, dict):
        config = harness.base_plugin_config(**config)
    dynamic.push(config)
    after = dynamic.wait_for("listener_manager.lds.update_rejected",
                             before.get("listener_manager.lds.update_rejected", 0))
    for stat in ("listener_manager.lds.update_success", "listener_manager.listener_modified"):
        assert after.get(stat, 0) == before.get(stat, 0), (stat, before, after)
    with open(dynamic.envoy.log, "rb") as f:
        f.seek(log_size)
        new_log = f.read().decode("utf-8", "replace")
    named = [line for line in error_lines(new_log) if all(w in line for w in words)]
    assert named, f"no error line naming {words}:\n{new_log[-3000:]}"
    assert dynamic.active_plugin_config() == active
    assert dynamic.envoy.alive()
    serves(dynamic.envoy)


def push_rejected(dynamic, data):
    """Pushes the base config with the descriptor set `data`, waits until Envoy rejects the
    update, and returns what Envoy logged meanwhile."""
    before = dynamic.lds_stats()
    log_size = dynamic.envoy.log.stat().st_size
    dynamic.push(harness.base_plugin_config(proto_descriptor_bin=descriptor_b64(data)))
    dynamic.wait_for("listener_manager.lds.update_rejected",
                     before.get("listener_manager.lds.update_rejected", 0))
    with open(dynamic.envoy.log, "rb") as f:
        f.seek(log_size)
        return f.read().decode("utf-8", "replace")


def test_types_without_a_name_are_refused_before_the_vms_spend_memory_on_them(dynamic):
    """A pushed set with a file of 1,000,000 empty message types (2 bytes each, 2 MB; protobuf
    refuses a type without a name). Decoded, each was a record of ~90 bytes in every VM that
    read the update (and the count of them reserved that first), before the set was refused
    for its duplicate names: ~190 MB a VM. Now the first one is refused as it is read: the
    process grows by about the configuration's copies, the update is rejected naming the
    problem, and the previous config keeps serving."""
    hostile = _len_field(1, b"hostile.proto") + _len_field(2, b"h") + _len_field(4, b"") * 1_000_000
    data = harness.descriptor_bytes() + _len_field(1, hostile)
    active = dynamic.active_plugin_config()
    with harness.MemoryWatch(dynamic.envoy) as watch:
        new_log = push_rejected(dynamic, data)
    named = [line for line in error_lines(new_log) if "a message type without a name" in line]
    assert named, new_log[-3000:]
    # The configuration (2.7 MB of base64) in Envoy and in each VM that reads it, and the set
    # each decodes: ~10 MB a VM; the decoded records were ~190 MB a VM.
    assert watch.growth["rss"] < 96 * harness.MiB, watch.report()
    assert dynamic.active_plugin_config() == active
    assert dynamic.envoy.alive()
    serves(dynamic.envoy)


def test_an_error_quoting_a_long_name_is_logged_cut(dynamic):
    """A pushed set defining a type with a 1 MiB name twice: the refusal quotes the name, and
    every VM that reads the update logs it. Each line is cut at 4 KiB and says how much was
    left out (it was written whole: 1 MiB a line, a VM)."""
    name = b"X" * (1 << 20)
    twice = _len_field(4, _len_field(1, name)) * 2
    hostile = _len_field(1, b"long.proto") + _len_field(2, b"h") + twice
    data = harness.descriptor_bytes() + _len_field(1, hostile)
    new_log = push_rejected(dynamic, data)
    quoted = [line for line in error_lines(new_log) if "XXXX" in line]
    assert quoted, new_log[-3000:]
    assert all(len(line) < 4096 + 400 and "more bytes)" in line for line in quoted), \
        [len(line) for line in quoted]
    assert dynamic.envoy.alive()
    serves(dynamic.envoy)


def test_descriptor_update_without_restart(dynamic, services, tmp_path):
    """GetItem gets an additional binding GET /v2/items/{sku} in a modified copy of the
    flash-sale protos; the new descriptor is pushed as a new listener version."""
    proto = tmp_path / "proto"
    shutil.copytree(harness.PROTO_DIR, proto)
    inventory = proto / "flashsale" / "v1" / "inventory.proto"
    text = inventory.read_text()
    old = '      get: "/v1/inventory/{sku}"\n'
    assert text.count(old) == 1
    inventory.write_text(text.replace(
        old, old + '      additional_bindings { get: "/v2/items/{sku}" }\n'))
    files = ["flashsale/v1/inventory.proto", "flashsale/v1/orders.proto",
             "google/rpc/status.proto", "google/rpc/error_details.proto"]
    descriptor = harness.build_descriptor(proto, files, tmp_path / "v2.pb")

    pid = dynamic.envoy.proc.pid
    uptime = dynamic.envoy.stats(r"^server\.uptime$")["server.uptime"]
    before = dynamic.lds_stats()
    new_config = harness.base_plugin_config(proto_descriptor_bin=descriptor_b64(descriptor))
    dynamic.push(new_config)
    dynamic.wait_for("listener_manager.lds.update_success",
                     before["listener_manager.lds.update_success"])
    dynamic.wait_active(new_config)
    assert dynamic.lds_stats()["listener_manager.listener_modified"] == before[
        "listener_manager.listener_modified"] + 1

    # Old listeners drain; new connections get the new config.
    mark = services.mark()
    for _ in range(8):
        status, headers, data = v2_get_item(dynamic.envoy)
        assert status == 200 and headers["content-type"] == "application/json", (status, data)
        assert json.loads(data)["sku"] == "sku-1001", data
    got = services.records(mark)
    assert [r["method"] for r in got] == [GET_ITEM] * 8, got
    assert all(r["message"] == {"sku": "sku-1001"} for r in got), got
    serves(dynamic.envoy)
    assert dynamic.envoy.proc.pid == pid and dynamic.envoy.alive()
    assert dynamic.envoy.stats(r"^server\.uptime$")["server.uptime"] >= uptime
    assert dynamic.envoy.stats(r"^server\.hot_restart_epoch$")["server.hot_restart_epoch"] == 0

    # And an invalid push after it keeps *this* version serving.
    before = dynamic.lds_stats()
    dynamic.push(harness.base_plugin_config(services=["flashsale.v1.Nope"]))
    dynamic.wait_for("listener_manager.lds.update_rejected",
                     before["listener_manager.lds.update_rejected"])
    assert dynamic.active_plugin_config() == json.dumps(new_config)
    status, _, data = v2_get_item(dynamic.envoy)
    assert status == 200 and json.loads(data)["sku"] == "sku-1001", data


def test_no_wasm_vm_failed(dynamic):
    log = dynamic.envoy.log.read_text(errors="replace")
    assert "panicked at" not in log and "Uncaught" not in log
    stats = dynamic.envoy.wasm_stats()
    assert all(v == 0 for k, v in stats.items() if ".vm_reload" in k), stats
