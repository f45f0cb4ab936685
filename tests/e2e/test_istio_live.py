"""Istio-shaped end to end, the storefront variants WITHOUT a descriptor in the manifest
(istio/wasmplugin-storefront-reflection.yaml, istio/wasmplugin-storefront-url.yaml): the real
Envoy with the configuration Istio generates for them, the plugin config delivered by ECDS
from the freshly rendered manifests (as in test_istio.py; tests/istio/istio_envoy.py says what
is reproduced and what is not).

- reflection: the storefront's outbound listener `0.0.0.0_8080` with the reflection
  WasmPlugin. Its clusters `outbound|50051||<fqdn>` (what the plugin config names) and
  `outbound|8080||<fqdn>` lead, as in the mesh, to the services' sidecars — a second Envoy
  with one Istio inbound listener per service (no plugin), in front of the real flash-sale
  services, which serve gRPC reflection. So the reflection calls cross an Envoy HTTP
  connection manager on the server side, which refuses an invalid :authority as a sidecar
  does (the default one, the cluster name `outbound|…`, has the connection reset).
- by reference: the same listener with the url WasmPlugin; its `outbound|80||descriptors…`
  cluster (HTTP/1.1, the Service port `http`) leads to the descriptors pod's sidecar (an
  inbound listener of the sidecars' Envoy, HTTP/1.1) and behind it a local HTTP server
  (standing for the nginx of istio/descriptors.yaml) serving the set of the rendered
  ConfigMap; with the manifest's sha256 the API arrives, with another sha256 it is refused.
"""

import base64
import hashlib
import http.server
import json
import threading

import pytest

import harness
from test_istio import GRPC_PORT, INVENTORY, NS, ORDERS, OUTBOUND, REST_PORT, IstioEnvoy, \
    _render_manifests

import istio_envoy as ie  # noqa: E402  (tests/istio, on sys.path since test_istio)

DESCRIPTORS = f"descriptors.{NS}.svc.cluster.local"
REFLECTION_PATHS = ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
DESCRIPTORS_PORT = 80
# the inbound listeners of the services' sidecars (one Envoy stands for both)
SIDECARS = {INVENTORY: f"inventory_inbound_0.0.0.0_{GRPC_PORT}",
            ORDERS: f"orders_inbound_0.0.0.0_{GRPC_PORT}"}
# and of the descriptors pod's sidecar
DESCRIPTORS_SIDECAR = f"descriptors_inbound_0.0.0.0_{DESCRIPTORS_PORT}"


wait_for = harness.wait_for
descriptor_stats = harness.descriptor_stats


def _json(envoy, method, path, host, body=None):
    return envoy.json_request(method, path, body, {"host": host})


def _loading(status, body):
    return status == 503 and isinstance(body, dict) and body.get("code") == 14 and \
        "loading" in body.get("message", "")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("istio-live")


@pytest.fixture(scope="module")
def manifests(workdir):
    try:
        harness.require_file(harness.WASM, "`make e2e` builds it first: run `make wasm`")
        return ie.load_manifests(_render_manifests(workdir))
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="module")
def file_server(manifests):
    """nginx of descriptors.yaml: what it serves from the ConfigMap."""
    server = FileServer(configmap_files(manifests))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sidecars(services, file_server, workdir):
    """The services' sidecars: Istio's inbound listener for port 50051 in front of each
    service (no plugin: only the storefront transcodes here); the descriptors pod's: its
    inbound listener for port 80 (HTTP/1.1) in front of the file server."""
    listeners, clusters = [], []
    upstreams = [(INVENTORY, SIDECARS[INVENTORY], GRPC_PORT, services.inventory.address, True),
                 (ORDERS, SIDECARS[ORDERS], GRPC_PORT, services.orders.address, True),
                 (DESCRIPTORS, DESCRIPTORS_SIDECAR, DESCRIPTORS_PORT,
                  f"127.0.0.1:{file_server.port}", False)]
    for fqdn, name, port, address, h2 in upstreams:
        # Each pod's sidecar has its own `inbound|PORT||`; here one Envoy has them all.
        inbound = ie.cluster_name("inbound", port) + fqdn.split(".")[0]
        listener = ie.inbound_listener(port, None, cluster=inbound)
        listener["name"] = name
        listeners.append(listener)
        make = ie.h2_cluster if h2 else ie.http1_cluster
        clusters.append(make(inbound, *ie.split_host_port(address)))
    config = ie.write_json(workdir / "sidecars.yaml", ie.bootstrap(listeners, clusters))
    try:
        envoy = IstioEnvoy("istio-sidecars", config, workdir, [],
                           listeners=[listener["name"] for listener in listeners])
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    yield envoy
    envoy.stop()


def storefront(name, manifests, workdir, plugin_name, clusters, edit=None):
    """The storefront's sidecar: outbound listener 0.0.0.0_8080 with WasmPlugin `plugin_name`
    by ECDS (its pluginConfig changed by `edit` first, if given)."""
    plugin = json.loads(json.dumps(ie.find(manifests, "WasmPlugin", plugin_name)))
    if edit:
        edit(plugin["spec"]["pluginConfig"])
    filter_name, typed = ie.wasm_from_wasmplugin(plugin, harness.WASM.resolve())
    ecds = ie.write_ecds(workdir / f"{name}.ecds.json", filter_name, typed)
    listener = ie.outbound_listener(REST_PORT, [INVENTORY, ORDERS],
                                    ie.ecds_filter(filter_name, ecds))
    config = ie.write_json(workdir / f"{name}.yaml", ie.bootstrap([listener], clusters))
    try:
        return IstioEnvoy(name, config, workdir, [filter_name], listeners=[OUTBOUND])
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)


def service_clusters(sidecars):
    """outbound|8080||… and outbound|50051||… of both services, to their sidecars."""
    out = []
    for fqdn, listener in SIDECARS.items():
        for port in (REST_PORT, GRPC_PORT):
            out.append(ie.h2_cluster(ie.cluster_name("outbound", port, fqdn), "127.0.0.1",
                                     sidecars.ports[listener]))
    return out


def cluster_stat(envoy, cluster, stat):
    name = f"cluster.{cluster}.{stat}"
    return envoy.stats(f"^{name.replace('|', '[|]')}$").get(name, 0)


def wait_for_the_api(envoy, what):
    """Until every worker's VM has the API: each VM swaps on its own next tick (0.2 s while
    loading), so one 200 does not mean the next connection's worker has it. Then a round of
    connections spread over the workers, every one answered."""
    def get_ok(e):
        return _json(e, "GET", "/v1/inventory/sku-1001", f"inventory:{REST_PORT}")[0] == 200

    wait_for(lambda: all(get_ok(envoy) for _ in range(12)), timeout=10, what=what)

    def check(e):
        assert get_ok(e)

    harness.every_worker_serves(envoy, check)


def transcodes(envoy, services):
    """GET (the filter's own call on the route's cluster) and POST (in-stream) of both
    services, through the outbound listener, with the expected answers."""
    status, headers, body = _json(envoy, "GET", "/v1/inventory/sku-1001", f"inventory:{REST_PORT}")
    assert status == 200, (status, headers, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert body["sku"] == "sku-1001" and body["status"] == "IN_STOCK", body
    mark = services.mark()
    status, headers, body = _json(envoy, "POST", "/v1/inventory/sku-1002:reserve",
                                  f"inventory.{NS}:{REST_PORT}",
                                  {"quantity": 1, "customerId": "cust-live"})
    assert status == 200, (status, headers, body)
    assert body["sku"] == "sku-1002" and body["reservationId"].startswith("res-"), body
    got = services.records(mark)
    assert [r["method"] for r in got] == ["/flashsale.v1.Inventory/Reserve"], got
    assert got[0]["metadata"].get("x-envoy-original-path") == "/v1/inventory/sku-1002:reserve"
    order = {"customerId": "cust-live", "items": [{"sku": "sku-3001", "quantity": 1}],
             "shippingAddress": {"line1": "1 Mesh Way", "city": "Springfield",
                                 "countryCode": "US"}}
    status, _, created = _json(envoy, "POST", "/v1/orders", f"orders:{REST_PORT}", order)
    assert status == 200 and created["customerId"] == "cust-live", (status, created)
    status, _, body = _json(envoy, "GET", f"/v1/orders/{created['orderId']}",
                            f"{ORDERS}:{REST_PORT}")
    assert status == 200 and body["orderId"] == created["orderId"], (status, body)
    status, _, body = _json(envoy, "GET", "/v1/inventory/sku-nope", f"inventory:{REST_PORT}")
    assert status == 404 and body["code"] == 5, (status, body)


# ---- reflection ------------------------------------------------------------------------------

def test_reflection_variant_transcodes_once_the_api_arrived(manifests, sidecars, services,
                                                            workdir):
    """No descriptor in the WasmPlugin: the first JSON request may get 503 (loading); within a
    few seconds GET and POST of both services are transcoded, the API taken by reflection on
    the manifest's outbound|50051||<fqdn> clusters through the services' sidecars."""
    plugin = ie.find(manifests, "WasmPlugin", "json2grpc-storefront-reflection")
    source = plugin["spec"]["pluginConfig"]["json2grpc"]["descriptor"]["reflection"]
    reflection_clusters = [ie.cluster_name("outbound", GRPC_PORT, f) for f in (INVENTORY, ORDERS)]
    assert sorted(source["clusters"]) == sorted(reflection_clusters), source
    envoy = storefront("storefront-reflection", manifests, workdir,
                       "json2grpc-storefront-reflection", service_clusters(sidecars))
    try:
        status, _, body = _json(envoy, "GET", "/v1/inventory/sku-1001", f"inventory:{REST_PORT}")
        assert status == 200 or _loading(status, body), (status, body)
        wait_for_the_api(envoy, "the API by reflection on every worker")
        transcodes(envoy, services)
        stats = descriptor_stats(envoy)
        assert stats["version"] == 1 and stats["reloads"] == 1, stats
        assert not {k: v for k, v in stats.items() if k.startswith("failures.") and v}, stats
        # The reflection calls went to both services' gRPC port, and their sidecars answered
        # them (a refused :authority resets the connection: no 200, failures.unreachable).
        for cluster in reflection_clusters:
            assert cluster_stat(envoy, cluster, "upstream_rq_200") >= 1, cluster
            assert cluster_stat(envoy, cluster, "upstream_rq_4xx") == 0, cluster
        log = envoy.log.read_text(errors="replace")
        assert "descriptors version 1 from reflection on " + ", ".join(source["clusters"]) in log
        served = sidecars.log.read_text(errors="replace")
        assert any(p in served for p in REFLECTION_PATHS), "no reflection call in the sidecars"
    finally:
        envoy.stop()


# ---- by reference ----------------------------------------------------------------------------

FileServer = harness.FileServer


def configmap_files(manifests):
    """What nginx serves from the ConfigMap of descriptors.yaml: {"/<key>": bytes}."""
    configmap = ie.find(manifests, "ConfigMap", "json2grpc-descriptors")
    return {f"/{k}": base64.b64decode(v) for k, v in configmap["binaryData"].items()}


@pytest.mark.parametrize("pin", ["manifest", "wrong"])
def test_url_variant_fetches_the_pinned_set(manifests, sidecars, file_server, services, workdir,
                                            pin):
    """By reference: the manifest's sha256 → the set served by the descriptors Service is taken
    and requests are transcoded; another sha256 → refused (failures.sha256_mismatch), and JSON
    requests get 503 UNAVAILABLE (loading)."""
    files = configmap_files(manifests)
    assert files == {"/flashsale.pb": harness.descriptor_bytes()}, sorted(files)
    url = ie.find(manifests, "WasmPlugin", "json2grpc-storefront-url")[
        "spec"]["pluginConfig"]["json2grpc"]["descriptor"]["url"]
    cluster = ie.cluster_name("outbound", DESCRIPTORS_PORT, DESCRIPTORS)
    assert url["cluster"] == cluster and url["path"] in files, url
    assert url["sha256"] == hashlib.sha256(files[url["path"]]).hexdigest(), url
    # Istio's cluster for the Service port `http`: HTTP/1.1, to the descriptors pod's sidecar.
    clusters = service_clusters(sidecars) + [
        ie.http1_cluster(cluster, "127.0.0.1", sidecars.ports[DESCRIPTORS_SIDECAR])]
    mark = len(file_server.seen)
    edit = None
    if pin == "wrong":
        def edit(config):
            config["json2grpc"]["descriptor"]["url"]["sha256"] = hashlib.sha256(
                b"another set").hexdigest()
    envoy = storefront(f"storefront-url-{pin}", manifests, workdir, "json2grpc-storefront-url",
                       clusters, edit)
    try:
        status, _, body = _json(envoy, "GET", "/v1/inventory/sku-1001", f"inventory:{REST_PORT}")
        assert status == 200 or _loading(status, body), (status, body)
        if pin == "wrong":
            wait_for(lambda: descriptor_stats(envoy).get("failures.sha256_mismatch", 0) >= 1,
                     what="the refusal")
            for request in (("GET", "/v1/inventory/sku-1001", f"inventory:{REST_PORT}"),
                            ("POST", "/v1/inventory/sku-1002:reserve", f"inventory:{REST_PORT}",
                             {"quantity": 1})):
                status, _, body = _json(envoy, *request)
                assert _loading(status, body), (request, status, body)
            assert descriptor_stats(envoy).get("version", 0) == 0
        else:
            wait_for_the_api(envoy, "the API by reference on every worker")
            transcodes(envoy, services)
            stats = descriptor_stats(envoy)
            assert stats["version"] == 1 and stats["reloads"] == 1, stats
            assert stats.get("failures.sha256_mismatch", 0) == 0, stats
        # Fetched on the manifest's cluster, through the descriptors pod's sidecar, with its
        # path and the Host the filter derives from `outbound|80||FQDN` (a cluster name with
        # `|` would be refused there: 400).
        seen = file_server.seen[mark:]
        assert seen and set(seen) == {(url["path"], f"{DESCRIPTORS}:80")}, seen
        assert cluster_stat(envoy, cluster, "upstream_rq_200") >= 1
        assert cluster_stat(envoy, cluster, "upstream_rq_4xx") == 0
    finally:
        envoy.stop()
