"""Istio-shaped authorization end to end: istio/README.md "Authorization", proven with Envoy's
RBAC filter configured as Istio generates it for an AuthorizationPolicy, around json2grpc in
the sidecars of a two-workload mesh (the storefront calling inventory).

Inventory's `Watch` is bound to GET and POST /v1/inventory:watch; every policy here denies it.
A denial holds only if the service records no Watch call (services.records); the other
methods (GetItem by GET, Reserve by POST) must still reach the service.

The mesh — each sidecar its own Envoy process, Istio's listener, route and cluster names
(tests/istio/istio_envoy.py builds them):

- **CLIENT mode** (the recommended placement). The storefront's sidecar: outbound listener
  `0.0.0.0_8080` with the CLIENT WasmPlugin's config (json2grpc-storefront, rendered now by
  istio/render.py, delivered by ECDS as in tests/e2e/test_istio.py); its clusters
  `outbound|8080||inventory…` and `outbound|50051||inventory…` (HTTP/2) lead to inventory's
  sidecar. Inventory's sidecar: inbound listener `inbound_0.0.0.0_50051` WITHOUT json2grpc,
  with the RBAC filter, routing to `inbound|50051||` = the inventory service. Two policies,
  each on its own pair of sidecars:
    (grpc-path)   `to: [{operation: {paths: ["/flashsale.v1.Inventory/Watch"]}}]`;
    (rest-header) `when: [{key: request.headers[x-envoy-original-path],
                          values: ["/v1/inventory:watch*"]}]` (json2grpc sets that header on
                  every call it makes from a REST request).
  Both stop REST callers (GET through the filter's own call, POST transcoded in-stream): the
  server's RBAC sees the gRPC call. Only the gRPC-path rule stops gRPC clients; a gRPC client
  chooses its own headers, so the header rule is for DENY only (README) — shown here too.
- **SERVER mode**. Inventory's sidecar: inbound listener with RBAC first, then json2grpc
  (the SERVER WasmPlugin's config, json2grpc-backends, default phase), routing to
  `inbound|50051||`. One policy with a REST rule (rule[0]: `paths: ["/v1/inventory:watch*"]`)
  and a gRPC rule (rule[1]: `paths: ["/flashsale.v1.Inventory/Watch"]`): RBAC runs before
  json2grpc and answers REST clients itself (403 `RBAC: access denied`, plain text), gRPC
  clients by the gRPC rule. The SERVER config sends GETs' calls to the callout override
  `outbound|50051||inventory.default.svc.cluster.local`; here that cluster leads straight to
  the service, not back through an inbound sidecar as in a mesh. Chosen because it is the
  stricter setup: no second RBAC pass can rescue a missing REST rule (in Istio the call
  would re-enter inventory's sidecar, whose gRPC rule would see it, with the service's own
  identity as the caller), so the first pass alone must deny — which is what
  istio/README.md asks of SERVER mode ("Deny a method by its REST paths … and by its gRPC
  path").

How Istio's RBAC filter is modelled (pilot's authz builder, hand-written here: no istiod):
an HTTP filter `envoy.filters.http.rbac` (RBAC v3) per action, first in the inbound HTTP
chain (before grpc_stats, fault, cors and a WasmPlugin of the default phase); each rule of an
AuthorizationPolicy is a policy `ns[default]-policy[NAME]-rule[N]` whose permission is
`and_rules` of one `or_rules` per field (`paths` -> `url_path: {path: exact|prefix}`, a
trailing `*` making a prefix; `when request.headers[H]` -> `header: {name: H, string_match}`)
and whose principals are `and_ids: [{any: true}]` (no `from`).

Not modelled: istiod (the RBAC config is written by hand in its shape) and xDS (static
listeners and clusters; the plugin configs come by file-based ECDS); mTLS and SPIFFE
identities (no `from: principals/namespaces` rules, the connections are plaintext on
loopback); Istio's own filters absent from stock Envoy (istio_authn, metadata exchange,
stats); iptables capture (the inbound cluster is STATIC, as a Sidecar `defaultEndpoint` makes
it; each sidecar listens on its own loopback port); ALLOW/CUSTOM policies and their ordering
with DENY.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

import harness

sys.path.insert(0, str(harness.REPO / "tests" / "istio"))
import istio_envoy as ie  # noqa: E402

NS = "default"
INVENTORY = f"inventory.{NS}.svc.cluster.local"
ORDERS = f"orders.{NS}.svc.cluster.local"
REST_PORT, GRPC_PORT = 8080, 50051
OUTBOUND, INBOUND = f"0.0.0.0_{REST_PORT}", f"inbound_0.0.0.0_{GRPC_PORT}"
HOST = f"{INVENTORY}:{REST_PORT}"
WATCH_GRPC = "/flashsale.v1.Inventory/Watch"
WATCH_REST = "/v1/inventory:watch"
GET_ITEM, RESERVE = "/flashsale.v1.Inventory/GetItem", "/flashsale.v1.Inventory/Reserve"
PERMISSION_DENIED, FAILED_PRECONDITION = 7, 9


# ---- Istio's RBAC filter for an AuthorizationPolicy ----------------------------------------------

def _string_match(value):
    """Istio's matching of an AuthorizationPolicy value: `x*` prefix, `*x` suffix, exact."""
    if value.endswith("*"):
        return {"prefix": value[:-1]}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    return {"exact": value}


def to_paths(*paths):
    """`to: [{operation: {paths: [...]}}]` — what Istio makes of the `paths` field."""
    return {"or_rules": {"rules": [{"url_path": {"path": _string_match(p)}} for p in paths]}}


def when_header(name, *values):
    """`when: [{key: request.headers[NAME], values: [...]}]`."""
    return {"or_rules": {"rules": [{"header": {"name": name, "string_match": _string_match(v)}}
                                   for v in values]}}


def authorization_policy(name, rules, action="DENY"):
    """The RBAC HTTP filter Istio emits for AuthorizationPolicy `name` (namespace default, no
    `from`): `rules` is one list of field matchers (to_paths, when_header) per policy rule."""
    policies = {
        f"ns[{NS}]-policy[{name}]-rule[{i}]": {
            "permissions": [{"and_rules": {"rules": list(fields)}}],
            "principals": [{"and_ids": {"ids": [{"any": True}]}}],
        } for i, fields in enumerate(rules)}
    return {"name": "envoy.filters.http.rbac",
            "typed_config": {"@type": ie.RBAC_TYPE,
                             "rules": {"action": action, "policies": policies}}}


# CLIENT mode, at inventory's (server) sidecar.
CLIENT_POLICIES = {
    "grpc-path": authorization_policy("deny-watch-grpc", [[to_paths(WATCH_GRPC)]]),
    "rest-header": authorization_policy(
        "deny-watch-rest", [[when_header("x-envoy-original-path", WATCH_REST + "*")]]),
}
# SERVER mode: a REST rule and a gRPC rule.
SERVER_POLICY = authorization_policy(
    "deny-watch", [[to_paths(WATCH_REST + "*")], [to_paths(WATCH_GRPC)]])


# ---- sidecars ----------------------------------------------------------------------------------

def _http_filters(listener):
    return listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def inbound_listener_with_rbac(rbac, wasm_filter=None):
    """Inventory's inbound listener (ie.inbound_listener) with Istio's RBAC filter first, and
    the WasmPlugin's filter (default phase) only if given."""
    placeholder = {"name": "no-wasm-plugin"}
    listener = ie.inbound_listener(GRPC_PORT, wasm_filter or placeholder)
    filters = _http_filters(listener)
    if wasm_filter is None:
        filters.remove(placeholder)
    filters.insert(0, rbac)
    return listener


def sidecar_bootstrap(workload, listeners, clusters):
    config = ie.bootstrap(listeners, clusters)
    config["node"] = {"id": f"sidecar~127.0.0.1~{workload}.{NS}~{NS}.svc.cluster.local",
                      "cluster": f"{workload}.{NS}"}
    return config


class Sidecar(harness.ListenerEnvoy):
    """An Istio-shaped sidecar (ready when its listeners are up and its ECDS configs applied),
    with its RBAC counters."""

    def counter(self, name):
        return self.stats(f"^{name.replace('|', '[|]').replace('.', '[.]')}$").get(name, 0)

    def rbac(self, listener=INBOUND):
        """(allowed, denied) counts of the RBAC filter of `listener`'s HTTP connection manager."""
        return (self.counter(f"http.{listener}.rbac.allowed"),
                self.counter(f"http.{listener}.rbac.denied"))

    def cluster_requests(self, cluster):
        return self.counter(f"cluster.{cluster}.upstream_rq_total")


class ClientMesh:
    """The storefront's sidecar (`caller`, json2grpc CLIENT) and inventory's (`server`, RBAC)."""

    def __init__(self, caller, server):
        self.caller, self.server = caller, server


def _render_manifests(workdir):
    """istio/render.py run now (as tests/e2e/test_istio.py does): never stale manifests."""
    out = Path(workdir) / "istio"
    config = harness.REPO / "dist" / "plugin-config.json"
    if not config.is_file():
        config = Path(workdir) / "plugin-config.json"
        config.write_text(json.dumps(harness.base_plugin_config()))
    subprocess.run([sys.executable, str(harness.REPO / "istio" / "render.py"),
                    "--plugin-config", str(config), "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """{"client"|"server": (filter name, ECDS Wasm config)} of the rendered WasmPlugins."""
    workdir = tmp_path_factory.mktemp("istio-authz-manifests")
    try:
        harness.require_file(harness.WASM, "`make e2e` builds it first: run `make wasm`")
        manifests = ie.load_manifests(_render_manifests(workdir))
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    wasm = harness.WASM.resolve()
    return {"client": ie.wasm_from_wasmplugin(
                ie.find(manifests, "WasmPlugin", "json2grpc-storefront"), wasm),
            "server": ie.wasm_from_wasmplugin(
                ie.find(manifests, "WasmPlugin", "json2grpc-backends"), wasm)}


def _start(name, workdir, config, listeners, ecds_filters=()):
    path = ie.write_json(workdir / f"{name}.json", config)
    try:
        return Sidecar(name, path, workdir, listeners, ecds_filters)
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="module")
def client_mesh(services, plugins, tmp_path_factory):
    """{policy: ClientMesh} for CLIENT_POLICIES."""
    workdir = tmp_path_factory.mktemp("istio-authz-client")
    inventory_host, inventory_port = ie.split_host_port(services.inventory.address)
    storefront, storefront_typed = plugins["client"]
    started, meshes = [], {}
    try:
        for policy, rbac in CLIENT_POLICIES.items():
            server = _start(
                f"inventory-sidecar-{policy}", workdir,
                sidecar_bootstrap("inventory", [inbound_listener_with_rbac(rbac)], [
                    ie.h2_cluster(ie.cluster_name("inbound", GRPC_PORT), inventory_host,
                                  inventory_port)]),
                [INBOUND])
            started.append(server)
            ecds = ie.write_ecds(workdir / f"storefront-{policy}.ecds.json", storefront,
                                 storefront_typed)
            # Both of inventory's service ports target its pod's port 50051, i.e. its sidecar's
            # inbound listener.
            clusters = ie.service_clusters({INVENTORY: server.address,
                                            ORDERS: services.orders.address},
                                           [REST_PORT, GRPC_PORT])
            caller = _start(
                f"storefront-sidecar-{policy}", workdir,
                sidecar_bootstrap("storefront", [ie.outbound_listener(
                    REST_PORT, [INVENTORY, ORDERS], ie.ecds_filter(storefront, ecds))], clusters),
                [OUTBOUND], [storefront])
            started.append(caller)
            meshes[policy] = ClientMesh(caller, server)
        yield meshes
    finally:
        for envoy in started:
            envoy.stop()


@pytest.fixture(scope="module")
def server_sidecar(services, plugins, tmp_path_factory):
    """Inventory's sidecar in SERVER mode: RBAC (SERVER_POLICY), then json2grpc."""
    workdir = tmp_path_factory.mktemp("istio-authz-server")
    backends, backends_typed = plugins["server"]
    ecds = ie.write_ecds(workdir / "backends.ecds.json", backends, backends_typed)
    inventory_host, inventory_port = ie.split_host_port(services.inventory.address)
    # outbound|50051||<fqdn> (the callout override of GETs) straight to the services: see the
    # module docstring.
    clusters = ie.service_clusters({INVENTORY: services.inventory.address,
                                    ORDERS: services.orders.address}, [GRPC_PORT])
    clusters.append(ie.h2_cluster(ie.cluster_name("inbound", GRPC_PORT), inventory_host,
                                  inventory_port))
    envoy = _start("inventory-sidecar-server-mode", workdir, sidecar_bootstrap(
        "inventory", [inbound_listener_with_rbac(SERVER_POLICY, ie.ecds_filter(backends, ecds))],
        clusters), [INBOUND], [backends])
    yield envoy
    envoy.stop()


# ---- clients -----------------------------------------------------------------------------------

def rest(envoy, method, path, body=None):
    return envoy.json_request(method, path, body, {"host": HOST})


def rest_watch(envoy, method):
    """GET or POST /v1/inventory:watch (limit 1)."""
    if method == "GET":
        return rest(envoy, "GET", f"{WATCH_REST}?limit=1")
    return rest(envoy, "POST", WATCH_REST, {"limit": 1})


def grpc_watch(envoy, metadata=None):
    """A native gRPC client of Watch (limit 1) on `envoy`'s listener: the messages, or raises
    grpc.RpcError."""
    request = harness.message_class("flashsale.v1.WatchRequest")(limit=1)
    harness._used.append(envoy)
    with grpc.insecure_channel(envoy.address) as channel:
        call = channel.unary_stream(WATCH_GRPC, request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=lambda b: b)
        return list(call(request, metadata=metadata, timeout=10))


def assert_grpc_denied(envoy, metadata=None):
    with pytest.raises(grpc.RpcError) as denied:
        grpc_watch(envoy, metadata)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, denied.value


def assert_other_methods_pass(envoy, services):
    """GetItem by GET and Reserve by POST reach the service. The reservation asks for more than
    the stock: FAILED_PRECONDITION, nothing reserved (other tests read the stock)."""
    mark = services.mark()
    status, headers, body = rest(envoy, "GET", "/v1/inventory/sku-1001")
    assert status == 200 and body["sku"] == "sku-1001", (status, headers, body)
    status, headers, body = rest(envoy, "POST", "/v1/inventory/sku-1001:reserve",
                                 {"quantity": 100000})
    assert status == 400 and body.get("code") == FAILED_PRECONDITION, (status, headers, body)
    got = services.records(mark)
    assert sorted(r["method"] for r in got) == [GET_ITEM, RESERVE], got


# ---- CLIENT mode -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("policy", list(CLIENT_POLICIES))
def test_client_mode_rest_watch_is_denied_by_the_servers_policy(client_mesh, services, policy,
                                                                method):
    """A REST GET / POST of Watch at the storefront's sidecar becomes a gRPC call to inventory's
    sidecar, whose RBAC denies it (by its gRPC path, or by x-envoy-original-path): 403 with
    the JSON google.rpc.Status PERMISSION_DENIED, and the service never sees the call."""
    mesh = client_mesh[policy]
    mark = services.mark()
    sent = mesh.caller.cluster_requests(f"outbound|{REST_PORT}||{INVENTORY}")
    allowed, denied = mesh.server.rbac()
    status, headers, body = rest_watch(mesh.caller, method)
    assert status == 403, (status, headers, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert isinstance(body, dict) and body.get("code") == PERMISSION_DENIED, body
    assert services.records(mark) == [], services.records(mark)
    # It went through the mesh and the server's RBAC denied it (nothing else answered 403).
    assert mesh.caller.cluster_requests(f"outbound|{REST_PORT}||{INVENTORY}") == sent + 1
    assert mesh.server.rbac() == (allowed, denied + 1)


@pytest.mark.parametrize("policy", list(CLIENT_POLICIES))
def test_client_mode_other_methods_still_pass(client_mesh, services, policy):
    """The policy is precise: GetItem (GET) and Reserve (POST) pass inventory's RBAC and reach
    the service."""
    mesh = client_mesh[policy]
    allowed, denied = mesh.server.rbac()
    assert_other_methods_pass(mesh.caller, services)
    assert mesh.server.rbac() == (allowed + 2, denied)


def test_client_mode_grpc_client_is_denied_by_the_grpc_path_policy(client_mesh, services):
    """A gRPC client calling Watch on inventory's inbound listener is denied by the policy on
    the gRPC path: one rule for REST and gRPC callers alike."""
    mesh = client_mesh["grpc-path"]
    mark = services.mark()
    assert_grpc_denied(mesh.server)
    assert services.records(mark) == []


def test_client_mode_header_policy_is_for_deny_only(client_mesh, services):
    """The x-envoy-original-path rule stops REST callers only: a gRPC client sets its own
    headers — without it, Watch is reached (the control: nothing else in this mesh blocks
    Watch); with it, the client is denied. So such a rule can deny, never allow (README)."""
    mesh = client_mesh["rest-header"]
    mark = services.mark()
    assert len(grpc_watch(mesh.server)) == 1
    assert [r["method"] for r in services.records(mark)] == [WATCH_GRPC]
    mark = services.mark()
    assert_grpc_denied(mesh.server, [("x-envoy-original-path", WATCH_REST)])
    assert services.records(mark) == []


# ---- SERVER mode -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_server_mode_rest_watch_is_denied_before_transcoding(server_sidecar, services, method):
    """RBAC runs before json2grpc and sees the REST request: the REST rule answers 403 itself
    (Envoy's `RBAC: access denied`), json2grpc never transcodes it, the service sees
    nothing."""
    mark = services.mark()
    allowed, denied = server_sidecar.rbac()
    status, headers, body = rest_watch(server_sidecar, method)
    assert status == 403, (status, headers, body)
    if isinstance(body, dict):
        assert body.get("code") == PERMISSION_DENIED, body
    else:
        assert body == "RBAC: access denied", body
    assert services.records(mark) == [], services.records(mark)
    assert server_sidecar.rbac() == (allowed, denied + 1)


def test_server_mode_grpc_client_is_denied(server_sidecar, services):
    """A gRPC client of Watch (passed through by json2grpc) is denied by the gRPC rule."""
    mark = services.mark()
    allowed, denied = server_sidecar.rbac()
    assert_grpc_denied(server_sidecar)
    assert services.records(mark) == []
    assert server_sidecar.rbac() == (allowed, denied + 1)


def test_server_mode_other_methods_still_pass(server_sidecar, services):
    """GetItem (GET, the filter's own call to the override `outbound|50051||inventory…`) and
    Reserve (POST, transcoded in-stream to `inbound|50051||`) pass RBAC and reach the service."""
    callout = f"outbound|{GRPC_PORT}||{INVENTORY}"
    inbound = ie.cluster_name("inbound", GRPC_PORT)
    before = server_sidecar.cluster_requests(callout), server_sidecar.cluster_requests(inbound)
    allowed, denied = server_sidecar.rbac()
    assert_other_methods_pass(server_sidecar, services)
    assert server_sidecar.rbac() == (allowed + 2, denied)
    assert (server_sidecar.cluster_requests(callout),
            server_sidecar.cluster_requests(inbound)) == (before[0] + 1, before[1] + 1)
