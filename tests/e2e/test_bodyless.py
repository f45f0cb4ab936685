"""Requests without a body (GET, DELETE) and the route's policy.

Envoy 1.40 cannot add a body to a request that ended at its headers, so json2grpc makes the gRPC
call itself (a callout). Two modes:
- **direct** (no `json2grpc.callout.loopback_cluster`): the call goes to the REST route's
  cluster; the gRPC route's policy (timeout, retries, …) does not apply;
- **loopback** (`json2grpc.callout.loopback_cluster: json2grpc_loopback`, as the shipped
  config): the call goes back into Envoy through an internal listener that shares the `app`
  listener's routes and filters, and the router handles it by its gRPC path like a POST.

Oracle: the native transcoder, whose requests all go through the router. The route edits apply
to the gRPC route (`/flashsale.v1.Inventory/`), which in loopback mode serves both POSTs and GETs.
"""

import time
import uuid

import pytest

GET_ITEM = "/flashsale.v1.Inventory/GetItem"
LOOPBACK = {"callout": {"loopback_cluster": "json2grpc_loopback"}}
GRPC_ROUTE = "/flashsale.v1.Inventory/"


def make_envoy(envoy_factory, chaos, kind, edits):
    if kind == "native":
        return envoy_factory.native(inventory=chaos.address, route_edits=edits)
    extra = {"json2grpc": LOOPBACK} if kind == "loopback" else {}
    return envoy_factory.json2grpc(inventory=chaos.address, route_edits=edits, **extra)


def status_code(body):
    return body.get("code") if isinstance(body, dict) else None


RETRY = [(GRPC_ROUTE, {"retry_policy": {"retry_on": "unavailable", "num_retries": 2}})]


@pytest.mark.parametrize("kind,expected", [("loopback", (200, 2)), ("native", (200, 2)),
                                           ("direct", (503, 1))])
def test_route_retry_policy_retries_a_bodyless_call(envoy_factory, chaos, kind, expected):
    """The gRPC route retries UNAVAILABLE twice; the service fails the first call with a given
    key (chaos `unavailable-once`). Loopback: retried like the native filter's GET (200, two
    calls reach the service); direct: the route's retry policy does not apply (503)."""
    envoy = make_envoy(envoy_factory, chaos, kind, RETRY)
    key = uuid.uuid4().hex
    mark = chaos.mark()
    status, headers, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1", headers={"x-chaos": "unavailable-once", "x-chaos-key": key})
    calls = [r for r in chaos.records(mark) if r["headers"].get("x-chaos-key") == key]
    assert (status, len(calls)) == expected, (status, headers, body, calls)
    assert all(r["path"] == GET_ITEM for r in calls), calls
    if status != 200:
        assert status_code(body) == 14, body


@pytest.mark.parametrize("kind", ["loopback", "native", "direct"])
def test_route_timeout_cuts_a_slow_bodyless_call(envoy_factory, chaos, kind):
    """A 300 ms route timeout on the gRPC route; the service takes 2 s. Loopback: cut at the
    route's timeout, 504 DEADLINE_EXCEEDED (JSON), as the native filter cuts its GET; direct:
    the route's timeout does not apply (the call takes the service's 2 s)."""
    envoy = make_envoy(envoy_factory, chaos, kind, [(GRPC_ROUTE, {"timeout": "0.3s"})])
    started = time.monotonic()
    status, headers, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1", headers={"x-chaos": "slow", "x-chaos-delay-ms": "2000"})
    elapsed = time.monotonic() - started
    if kind == "direct":
        assert status == 200 and elapsed >= 1.9, (status, elapsed, body)
        return
    assert status == 504 and elapsed < 1.5, (status, elapsed, headers, body)
    if kind == "loopback":
        assert status_code(body) == 4, body


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_missing_grpc_route_answers_like_native(envoy_factory, chaos, method):
    """No route for the gRPC path (only the REST routes): the native filter's transcoded request
    finds no route: the router's 404. json2grpc answers 404 too: a POST gets the router's own
    404 (passed through as for the native filter); a GET in loopback mode gets a JSON 404 (back
    in Envoy the router answers the gRPC call with UNIMPLEMENTED; the loopback listener's
    local_reply_config keeps the router's HTTP status for the filter). The service receives
    nothing."""
    edits = [(GRPC_ROUTE, None)]
    path = "/v1/inventory/sku-1" if method == "GET" else "/v1/inventory/sku-1:reserve"
    body = None if method == "GET" else {"quantity": 1}
    seen = {}
    for kind in ("native", "loopback"):
        envoy = make_envoy(envoy_factory, chaos, kind, edits)
        mark = chaos.mark()
        status, _, data = envoy.json_request(method, path, body)
        seen[kind] = status
        assert chaos.records(mark) == [], (kind, status, data)
        if kind == "loopback" and method == "GET":
            assert status_code(data) == 12, data  # what a gRPC client gets: UNIMPLEMENTED
            assert data["message"] == "no route for /flashsale.v1.Inventory/GetItem", data
    assert seen["loopback"] == seen["native"] == 404, seen


def test_envoy_140_adds_no_body_to_a_headers_only_request(envoy_factory, services):
    """json2grpc first tries to write the message as the body of the GET (a host that allows
    it, proxy-wasm spec issue #86, would get the call in-stream); Envoy 1.40 refuses, so the
    GET is the filter's own call: counted as a callout, not as an in-stream request."""
    envoy = envoy_factory.json2grpc()
    name = "wasmcustom.json2grpc.method.flashsale.v1.Inventory.GetItem"
    before = envoy.stats(name)
    mark = services.mark()
    for _ in range(3):
        status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
        assert status == 200, body
    after = envoy.stats(name)
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert grew.get(f"{name}.callouts") == 3 and grew.get(f"{name}.requests", 0) == 0, grew
    assert len(services.records(mark, method=GET_ITEM)) == 3
