"""Live descriptors (json2grpc.descriptor): the API taken from the running services instead of
a `proto_descriptor_bin` in the config, through the real Envoy (2 workers) and the built .wasm.

- reflection from the flash-sale services themselves (tonic-reflection): a config with no
  descriptor at all transcodes after the first poll;
- reflection from grpc_chaos `--reflection FILE` (the descriptor set is read anew per request,
  so a test changes the API by replacing the file): a new method and a changed message appear
  without a restart; a broken or oversized set keeps the previous API; the server saw one
  reflection exchange per poll, not one per worker;
- the service down when Envoy starts: 503 JSON (UNAVAILABLE, loading), then recovery;
- by reference (a FileDescriptorSet over HTTP) pinned by sha256: a wrong pin is refused.
"""

import base64
import hashlib
import http.server
import json
import socket
import threading
import time

import pytest

import harness

INVENTORY = "flashsale.v1.Inventory"
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"

# A second version of the Inventory API: Item gains `warehouse`, and a new method with its
# own binding. (Everything the tests call keeps its field numbers.)
INVENTORY_V2_EXTRA = """
  rpc GetWarehouse(GetItemRequest) returns (Item) {
    option (google.api.http) = { get: "/v1/warehouses/{sku}" };
  }
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_config(descriptor, services=(INVENTORY,)):
    """No proto_descriptor_bin; loopback mode, so that GETs of methods that appear later are
    routed by their gRPC path (their REST paths need no route of their own)."""
    config = harness.base_plugin_config(proto_descriptor_bin=None, services=list(services))
    config["json2grpc"] = {"descriptor": descriptor,
                           "callout": {"loopback_cluster": "json2grpc_loopback"}}
    return config


wait_for = harness.wait_for
descriptor_stats = harness.descriptor_stats


def inventory_v2_descriptor(workdir):
    """The flash-sale descriptor set with the Inventory API's v2 (a new field, a new method)."""
    root = workdir / "proto_v2"
    (root / "flashsale" / "v1").mkdir(parents=True, exist_ok=True)
    source = (harness.PROTO_DIR / "flashsale" / "v1" / "inventory.proto").read_text()
    anchor = "message Item {"
    assert anchor in source
    # A new field at a number the services do not use.
    source = source.replace(anchor, anchor + "\n  string warehouse = 99;", 1)
    service = "service Inventory {"
    assert service in source
    source = source.replace(service, service + INVENTORY_V2_EXTRA, 1)
    (root / "flashsale" / "v1" / "inventory.proto").write_text(source)
    out = workdir / "flashsale_v2.pb"
    return harness.build_descriptor(root, [root / "flashsale" / "v1" / "inventory.proto"], out)


def item_message_b64(**fields):
    message = harness.message_class("flashsale.v1.Item")(**fields).SerializeToString()
    return message


def with_warehouse(message, warehouse):
    """Appends field 99 (string) to an encoded Item."""
    data = warehouse.encode()
    tag = bytes([0x9a, 0x06])  # field 99, wire type 2
    return message + tag + bytes([len(data)]) + data


# ---- reflection from the flash-sale services ----------------------------------------------------

def test_a_config_without_descriptor_transcodes_after_the_first_poll(envoy_factory, services):
    """No proto_descriptor_bin: the services' own reflection (tonic-reflection) on the
    inventory and orders clusters. Requests get 503 until the first set arrived, then are
    transcoded; both workers serve it."""
    envoy = envoy_factory.json2grpc(live_config({"reflection": {"clusters": ["inventory", "orders"]}},
                                                services=(INVENTORY, "flashsale.v1.Orders")))

    def served():
        status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
        return status == 200 and body.get("sku") == "sku-1001"

    wait_for(served, what="the first descriptors")
    status, _, body = envoy.json_request("GET", "/v1/customers/nobody/orders")
    assert status == 200, body
    stats = descriptor_stats(envoy)
    assert stats["version"] == 1 and stats["reloads"] == 1, stats
    harness.every_worker_serves(envoy, lambda e: served())


# ---- reflection from grpc_chaos (a file the tests replace) ---------------------------------------

@pytest.fixture
def api_file(tmp_path):
    path = tmp_path / "api.pb"
    path.write_bytes(harness.descriptor_bytes())
    return path


@pytest.fixture
def reflecting_chaos(tmp_path, api_file):
    chaos = harness.Chaos(tmp_path, extra_args=("--reflection", str(api_file)))
    yield chaos
    chaos.stop()


def reflection_calls(chaos, mark):
    return [r for r in chaos.records(mark, settle=0) if r["path"] == V1]


def chaos_item(envoy, path="/v1/inventory/sku-1", message=b""):
    return envoy.json_request("GET", path, headers={
        "x-chaos": "ok", "x-chaos-message-b64": base64.b64encode(message).decode()})


def test_hot_swap_one_fetch_per_poll_and_failures_keep_the_api(envoy_factory, reflecting_chaos,
                                                               api_file, tmp_path):
    chaos = reflecting_chaos
    envoy = envoy_factory.json2grpc(
        live_config({"reflection": {"cluster": "inventory"}, "refresh_ms": 1000}),
        inventory=chaos.address)
    message = item_message_b64(sku="sku-1")
    item = with_warehouse(message, "north")
    wait_for(lambda: chaos_item(envoy, message=item)[0] == 200, what="the first descriptors")

    # v1 of the API: the new field is unknown (dropped), the new method has no binding.
    status, _, body = chaos_item(envoy, message=item)
    assert status == 200 and body == {"sku": "sku-1"}, body

    # One reflection exchange per poll for the whole Envoy (3 VMs: 2 workers, the main
    # thread), not one per VM: each poll lists the services once.
    mark = chaos.mark()
    time.sleep(4.5)
    lists = [r for r in reflection_calls(chaos, mark) if r["messages"] and
             base64.b64decode(r["messages"][0]).startswith(b"\x3a")]
    assert 2 <= len(lists) <= 6, len(lists)
    assert descriptor_stats(envoy)["unchanged"] >= 2

    # The service is upgraded: a changed message and a new method, without restarting Envoy.
    api_file.write_bytes(inventory_v2_descriptor(tmp_path))
    # Each VM swaps on its own next tick (within a second): wait until every VM (the main
    # thread's and the 2 workers') has logged the new API, then until several connections all
    # see it (8 connections may all land on the worker that swapped first).
    def every_vm_swapped():
        return envoy.log.read_text(errors="replace").count("configured 1 service(s), 8 method(s)") >= 3

    wait_for(lambda: every_vm_swapped() and
             all(chaos_item(envoy, "/v1/warehouses/sku-1", item)[0] == 200 for _ in range(8)),
             what="the new API on every worker")
    status, _, body = chaos_item(envoy, message=item)
    assert status == 200 and body == {"sku": "sku-1", "warehouse": "north"}, body
    status, _, body = chaos_item(envoy, "/v1/warehouses/sku-1", item)
    assert status == 200 and body == {"sku": "sku-1", "warehouse": "north"}, body
    stats = descriptor_stats(envoy)
    assert stats["version"] == 2 and stats["reloads"] == 2, stats
    harness.every_worker_serves(
        envoy, lambda e: chaos_item(e, "/v1/warehouses/sku-1", item)[0] == 200)

    # A broken set (truncated): counted, and the v2 API keeps serving.
    good = api_file.read_bytes()
    api_file.write_bytes(good[:len(good) // 2])
    wait_for(lambda: descriptor_stats(envoy).get("failures.invalid", 0) >= 1, what="a failure")
    status, _, body = chaos_item(envoy, "/v1/warehouses/sku-1", item)
    assert status == 200 and body["warehouse"] == "north", body
    assert descriptor_stats(envoy)["version"] == 2


def test_an_oversized_set_is_refused(envoy_factory, reflecting_chaos):
    envoy = envoy_factory.json2grpc(
        live_config({"reflection": {"cluster": "inventory"}, "max_bytes": 2000}),
        inventory=reflecting_chaos.address)
    wait_for(lambda: descriptor_stats(envoy).get("failures.invalid", 0)
             + descriptor_stats(envoy).get("failures.too_large", 0) >= 1, what="a refusal")
    status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1")
    assert status == 503 and body["code"] == 14 and "loading" in body["message"], body


def test_the_service_down_at_start_then_recovery(tmp_path, services, api_file):
    """Envoy starts while the reflection server is down: Envoy is LIVE and serves other traffic,
    REST requests get 503 JSON UNAVAILABLE (the API is loading); once the server is up, the
    API arrives without a restart."""
    port = free_port()
    config = live_config({"reflection": {"cluster": "inventory"}})
    path = tmp_path / "down.yaml"
    harness.render(harness.TEMPLATE, path, config, services, wasm=harness.WASM,
                   inventory=f"127.0.0.1:{port}")
    # Ready without waiting for the inventory cluster to be healthy (it is down on purpose).
    envoy = harness.ListenerEnvoy("down", path, tmp_path)
    try:
        status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1")
        assert status == 503 and body["code"] == 14 and "loading" in body["message"], body
        # Other traffic: a gRPC client of the orders service is served meanwhile.
        request = harness.message_class("flashsale.v1.ListOrdersRequest")(customer_id="c")
        envoy.grpc_unary("/flashsale.v1.Orders/ListOrders", request, "flashsale.v1.ListOrdersResponse")
        wait_for(lambda: descriptor_stats(envoy).get("failures.unreachable", 0) >= 1,
                 what="a failed poll")
        chaos = harness.Chaos(tmp_path, listen=f"127.0.0.1:{port}",
                              extra_args=("--reflection", str(api_file)))
        try:
            wait_for(lambda: chaos_item(envoy)[0] == 200, timeout=30, what="recovery")
        finally:
            chaos.stop()
    finally:
        envoy.stop()


# ---- by reference ------------------------------------------------------------------------------



def files_cluster(port):
    return {"name": "descriptors", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "descriptors", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                             "port_value": port}}}}]}]}}


@pytest.mark.parametrize("pin", ["right", "wrong", "none"])
def test_by_reference_pinned_by_sha256(tmp_path, services, api_file, pin):
    server = harness.FileServer({"/api.pb": api_file})
    digest = hashlib.sha256(api_file.read_bytes()).hexdigest()
    url = {"cluster": "descriptors", "path": "/api.pb"}
    if pin != "none":
        url["sha256"] = digest if pin == "right" else "0" * 64
    config = live_config({"url": url}, services=(INVENTORY, "flashsale.v1.Orders"))
    path = tmp_path / "url.yaml"
    harness.render(harness.TEMPLATE, path, config, services, wasm=harness.WASM)
    harness.edit_config(path, lambda c: c["static_resources"]["clusters"].append(files_cluster(server.port)))
    envoy = harness.Envoy("url", path, tmp_path)
    try:
        if pin == "wrong":
            wait_for(lambda: descriptor_stats(envoy).get("failures.sha256_mismatch", 0) >= 1,
                     what="the refusal")
            status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
            assert status == 503 and "loading" in body["message"], body
        else:
            wait_for(lambda: envoy.json_request("GET", "/v1/inventory/sku-1001")[0] == 200,
                     what="the descriptors by reference")
            assert descriptor_stats(envoy)["version"] == 1
    finally:
        envoy.stop()
        server.stop()


def test_the_envoy_by_reference_variant_fetches_its_file(tmp_path, services, api_file):
    """dist/envoy.url.yaml's shape (envoy/render.py --serve-descriptor): no descriptor in the
    plugin config; the set comes by reference, pinned by its SHA-256, from the `descriptors`
    cluster (here a listener of the same Envoy serving the file)."""
    digest = hashlib.sha256(api_file.read_bytes()).hexdigest()
    url = {"cluster": "descriptors", "path": "/flashsale.pb", "sha256": digest}
    config = live_config({"url": url}, services=(INVENTORY, "flashsale.v1.Orders"))
    path = tmp_path / "url-variant.yaml"
    harness.render(harness.TEMPLATE, path, config, services, wasm=harness.WASM,
                   extra_args=("--serve-descriptor", str(api_file), "--descriptor-port", str(free_port())))
    envoy = harness.Envoy("url-variant", path, tmp_path)
    try:
        wait_for(lambda: envoy.json_request("GET", "/v1/inventory/sku-1001")[0] == 200,
                 what="the descriptors by reference")
        stats = descriptor_stats(envoy)
        assert stats["version"] == 1 and not any(k.startswith("failures.") and v for k, v in stats.items()), stats
        status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
        assert status == 200 and body["sku"] == "sku-1001", body
    finally:
        envoy.stop()
