"""Istio-shaped end to end: the real Envoy with the configuration Istio generates for our
manifests (dist/istio, rendered by istio/render.py), against the flash-sale services.

The manifests are rendered afresh by istio/render.py. One Envoy with three listeners, each
carrying one of the manifests' plugin configurations,
delivered as Istio delivers it — by ECDS, an `envoy.extensions.filters.http.wasm.v3.Wasm`
whose `configuration` is a google.protobuf.StringValue holding `pluginConfig` as JSON
(tests/istio/istio_envoy.py says what is reproduced and what is not):

- `0.0.0.0_8080`: the storefront's outbound sidecar listener (WasmPlugin json2grpc-storefront,
  mode CLIENT): route config `8080`, virtual hosts `<fqdn>:8080` routing every path to
  `outbound|8080||<fqdn>` (HTTP/2) — the app's JSON goes out as gRPC;
- `inbound_0.0.0.0_50051`: inventory's inbound listener (WasmPlugin json2grpc-backends, mode
  SERVER) routing to `inbound|50051||`, with the callout override to
  `outbound|50051||inventory.default.svc.cluster.local`;
- `envoyfilter_0.0.0.0_8080`: the same outbound listener with the EnvoyFilter variant's Wasm
  config (allow_on_headers_stop_iteration).
Hosts `chaos:8080` route to the misbehaving upstream (grpc_chaos) for the status test.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness

sys.path.insert(0, str(harness.REPO / "tests" / "istio"))
import istio_envoy as ie  # noqa: E402

NS = "default"
INVENTORY = f"inventory.{NS}.svc.cluster.local"
ORDERS = f"orders.{NS}.svc.cluster.local"
CHAOS = f"chaos.{NS}.svc.cluster.local"
REST_PORT, GRPC_PORT = 8080, 50051
OUTBOUND, INBOUND, HOLD = "0.0.0.0_8080", f"inbound_0.0.0.0_{GRPC_PORT}", "envoyfilter_0.0.0.0_8080"
PRECONDITION_FAILURE = "type.googleapis.com/google.rpc.PreconditionFailure"


def _render_manifests(workdir):
    """istio/render.py run now on the current plugin config (dist/plugin-config.json, as
    `make istio-validate` does, else the harness's), so the manifests are never stale."""
    out = Path(workdir) / "istio"
    config = harness.REPO / "dist" / "plugin-config.json"
    if not config.is_file():
        config = Path(workdir) / "plugin-config.json"
        config.write_text(json.dumps(harness.base_plugin_config()))
    subprocess.run([sys.executable, str(harness.REPO / "istio" / "render.py"),
                    "--plugin-config", str(config), "--out", str(out)],
                   check=True, capture_output=True)
    return out


class IstioEnvoy(harness.ListenerEnvoy):
    """harness.ListenerEnvoy for the Istio-shaped bootstrap: its listeners (by default the
    three of this file's bootstrap) and every ECDS filter config applied."""

    LISTENERS = (OUTBOUND, INBOUND, HOLD)

    def __init__(self, name, config_path, workdir, filters, listeners=None):
        super().__init__(name, config_path, workdir, listeners or self.LISTENERS, filters)


@pytest.fixture(scope="module")
def istio(services, chaos, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("istio")
    try:
        harness.require_file(harness.WASM, "`make e2e` builds it first: run `make wasm`")
        manifests = ie.load_manifests(_render_manifests(workdir))
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    wasm = harness.WASM.resolve()
    storefront, storefront_typed = ie.wasm_from_wasmplugin(
        ie.find(manifests, "WasmPlugin", "json2grpc-storefront"), wasm)
    backends, backends_typed = ie.wasm_from_wasmplugin(
        ie.find(manifests, "WasmPlugin", "json2grpc-backends"), wasm)
    hold, hold_typed, hold_http = ie.wasm_from_extension_config(
        ie.find(manifests, "EnvoyFilter", "json2grpc-storefront"), wasm)
    # The HTTP_FILTER patch as written, its ECDS source a file instead of istiod's ADS.
    hold_http["config_discovery"]["config_source"] = {
        "path_config_source": {"path": str(ie.write_ecds(workdir / "hold.ecds.json", hold,
                                                         hold_typed))},
        "resource_api_version": "V3"}
    addresses = {INVENTORY: services.inventory.address, ORDERS: services.orders.address,
                 CHAOS: chaos.address}
    listeners = [
        ie.outbound_listener(REST_PORT, list(addresses), ie.ecds_filter(
            storefront, ie.write_ecds(workdir / "storefront.ecds.json", storefront,
                                      storefront_typed))),
        ie.inbound_listener(GRPC_PORT, ie.ecds_filter(
            backends, ie.write_ecds(workdir / "backends.ecds.json", backends, backends_typed))),
        ie.outbound_listener(REST_PORT, list(addresses), hold_http),
    ]
    listeners[2]["name"] = HOLD
    clusters = ie.service_clusters(addresses, [REST_PORT, GRPC_PORT])
    # What a Sidecar `defaultEndpoint: 127.0.0.1:50051` gives (Istio's default ORIGINAL_DST
    # cannot be reproduced on loopback).
    host, port = ie.split_host_port(services.inventory.address)
    clusters.append(ie.h2_cluster(ie.cluster_name("inbound", GRPC_PORT), host, port))
    config = ie.write_json(workdir / "istio-sidecar.yaml", ie.bootstrap(listeners, clusters))
    try:
        envoy = IstioEnvoy("istio", config, workdir, [storefront, backends, hold])
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    yield envoy
    envoy.stop()


def _json(envoy, method, path, host, body=None, headers=None):
    headers = {"host": host, **(headers or {})}
    return envoy.json_request(method, path, body, headers)


def _json_response(headers):
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert not any(h.startswith("grpc-") for h in headers), headers


def test_plugin_configs_arrive_by_ecds_as_json_strings(istio):
    stats = istio.stats("^(extension_config_discovery|wasm)")
    for name in istio.filters:
        prefix = f"extension_config_discovery.http_filter.{name}"
        assert stats.get(f"{prefix}.update_success") == 1, stats
        assert stats.get(f"{prefix}.update_rejected") == 0, stats
    assert stats.get("wasm.envoy.wasm.runtime.v8.active", 0) >= 1, stats
    # What the filter logged on_configure with (the JSON of pluginConfig).
    assert "configured 2 service(s)" in istio.log.read_text(errors="replace")


def test_outbound_post_is_transcoded_in_stream(istio, services):
    cluster = f"outbound|{REST_PORT}||{INVENTORY}"
    before, mark = istio.cluster_requests(cluster), services.mark()
    status, headers, body = _json(istio.on(OUTBOUND), "POST", "/v1/inventory/sku-1002:reserve",
                                  f"inventory:{REST_PORT}",
                                  {"quantity": 1, "customerId": "cust-istio"})
    assert status == 200, (status, headers, body)
    _json_response(headers)
    assert body["sku"] == "sku-1002" and body["reservationId"].startswith("res-"), body
    got = services.records(mark)
    assert [r["method"] for r in got] == ["/flashsale.v1.Inventory/Reserve"], got
    assert got[0]["metadata"].get("x-envoy-original-path") == "/v1/inventory/sku-1002:reserve"
    assert istio.cluster_requests(cluster) == before + 1


def test_outbound_get_calls_the_routes_outbound_cluster(istio, services):
    """No body: the filter calls the cluster of the request's route — Istio's
    `outbound|8080||inventory.default.svc.cluster.local` — without any callout override."""
    cluster = f"outbound|{REST_PORT}||{INVENTORY}"
    before, mark = istio.cluster_requests(cluster), services.mark()
    stat = "wasmcustom.json2grpc.method.flashsale.v1.Inventory.GetItem.callouts"
    callouts = istio.stats("^wasmcustom").get(stat, 0)
    status, headers, body = _json(istio.on(OUTBOUND), "GET", "/v1/inventory/sku-1001",
                                  f"inventory.{NS}:{REST_PORT}")
    assert status == 200, (status, headers, body)
    _json_response(headers)
    assert body["sku"] == "sku-1001" and body["status"] == "IN_STOCK", body
    got = services.records(mark)
    assert [(r["method"], r["message"]) for r in got] == [
        ("/flashsale.v1.Inventory/GetItem", {"sku": "sku-1001"})], got
    assert istio.cluster_requests(cluster) == before + 1
    assert istio.stats("^wasmcustom")[stat] == callouts + 1


def test_outbound_orders_create_then_get(istio, services):
    order = {"customerId": "cust-istio", "items": [{"sku": "sku-3001", "quantity": 1}],
             "shippingAddress": {"line1": "1 Mesh Way", "city": "Springfield",
                                 "countryCode": "US"}}
    status, headers, created = _json(istio.on(OUTBOUND), "POST", "/v1/orders",
                                     f"orders:{REST_PORT}", order)
    assert status == 200, (status, headers, created)
    cluster = f"outbound|{REST_PORT}||{ORDERS}"
    before = istio.cluster_requests(cluster)
    status, headers, body = _json(istio.on(OUTBOUND), "GET", f"/v1/orders/{created['orderId']}",
                                  f"{ORDERS}:{REST_PORT}")
    assert status == 200, (status, headers, body)
    assert body["orderId"] == created["orderId"] and body["customerId"] == "cust-istio", body
    assert istio.cluster_requests(cluster) == before + 1


def test_outbound_errors_are_json_with_details(istio):
    status, headers, body = _json(istio.on(OUTBOUND), "POST", "/v1/inventory/sku-1002:reserve",
                                  f"inventory:{REST_PORT}",
                                  {"quantity": 100000, "customerId": "cust-istio"})
    assert status == 400, (status, headers, body)
    _json_response(headers)
    assert body["code"] == 9 and body["message"] == "out of stock", body
    failure = next(d for d in body["details"] if d["@type"] == PRECONDITION_FAILURE)
    assert failure["violations"][0]["subject"] == "sku-1002", body
    # Through the callout too (bodyless): NOT_FOUND -> 404.
    status, headers, body = _json(istio.on(OUTBOUND), "GET", "/v1/inventory/sku-nope",
                                  f"inventory:{REST_PORT}")
    assert status == 404 and body["code"] == 5 and "sku-nope" in body["message"], (status, body)


def test_outbound_unknown_host_is_istios_502(istio):
    """A host with no virtual host falls to the catch-all (REGISTRY_ONLY's block_all)."""
    status, _, _ = istio.on(OUTBOUND).request("GET", "/healthz", headers={"host": "nowhere:8080"})
    assert status == 502


def test_inbound_server_mode_uses_the_callout_override(istio, services):
    """SERVER mode: a POST follows the inbound route; a GET is called by the filter on the
    `json2grpc.callout.clusters` override (the service's outbound cluster), not on the
    inbound route's cluster (ORIGINAL_DST in a real sidecar)."""
    inbound, outbound = ie.cluster_name("inbound", GRPC_PORT), f"outbound|{GRPC_PORT}||{INVENTORY}"
    envoy = istio.on(INBOUND)
    before_in, before_out = istio.cluster_requests(inbound), istio.cluster_requests(outbound)
    status, headers, body = _json(envoy, "POST", "/v1/inventory/sku-1002:reserve",
                                  f"inventory:{REST_PORT}", {"quantity": 1})
    assert status == 200, (status, headers, body)
    assert istio.cluster_requests(inbound) == before_in + 1
    mark = services.mark()
    status, headers, body = _json(envoy, "GET", "/v1/inventory/sku-3002",
                                  f"inventory:{REST_PORT}")
    assert status == 200 and body["sku"] == "sku-3002", (status, headers, body)
    assert [r["method"] for r in services.records(mark)] == ["/flashsale.v1.Inventory/GetItem"]
    assert istio.cluster_requests(outbound) == before_out + 1
    assert istio.cluster_requests(inbound) == before_in + 1


def test_envoyfilter_variant_gives_the_exact_status_of_a_late_error(istio):
    """An error that arrives in trailers after response headers without data: the WasmPlugin
    listener (stock settings) already sent its 200 and has no body to carry the error; the
    EnvoyFilter variant (allow_on_headers_stop_iteration) holds the headers and answers 400
    with the JSON error."""
    request = ("POST", "/v1/inventory/sku-1:reserve", f"chaos:{REST_PORT}", {"quantity": 1},
               {"x-chaos": "headers-then-error"})
    status, headers, body = _json(istio.on(OUTBOUND), *request)
    assert status == 200, (status, headers, body)
    status, headers, body = _json(istio.on(HOLD), *request)
    assert status == 400, (status, headers, body)
    _json_response(headers)
    assert body["code"] == 9, body


def test_envoyfilter_variant_transcodes_both_ways(istio, services):
    envoy = istio.on(HOLD)
    status, headers, body = _json(envoy, "POST", "/v1/inventory/sku-1002:reserve",
                                  f"inventory:{REST_PORT}", {"quantity": 1})
    assert status == 200 and body["quantity"] == 1, (status, headers, body)
    status, headers, body = _json(envoy, "GET", "/v1/inventory/sku-1001", f"inventory:{REST_PORT}")
    assert status == 200 and body["sku"] == "sku-1001", (status, headers, body)


def test_filter_stats_have_the_wasmcustom_prefix(istio):
    """What proxyStatsMatcher `inclusionPrefixes: ["wasmcustom"]` exports from a sidecar."""
    names = istio.stats("^wasmcustom\\.json2grpc\\.")
    assert names.get("wasmcustom.json2grpc.method.flashsale.v1.Inventory.Reserve.requests", 0) >= 1
    assert names.get("wasmcustom.json2grpc.method.flashsale.v1.Inventory.GetItem.callouts", 0) >= 1
    assert names.get("wasmcustom.json2grpc.errors.upstream_status", 0) >= 1
    assert not [n for n in istio.stats("^json2grpc")], "filter stats outside wasmcustom."
