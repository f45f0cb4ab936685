"""Each plugin option taking effect in a real Envoy (one Envoy per distinct config, cached by
the factory). Every test checks the answer and what the services (or the chaos upstream)
received — "nothing" for rejected requests.
"""

import base64
import http.client
import json
import time

import pytest

import harness

GET_ITEM = "/flashsale.v1.Inventory/GetItem"
LIST_ITEMS = "/flashsale.v1.Inventory/ListItems"
RESERVE = "/flashsale.v1.Inventory/Reserve"
CREATE_ORDER = "/flashsale.v1.Orders/CreateOrder"
UPDATE_ORDER = "/flashsale.v1.Orders/UpdateOrder"
LIST_ORDERS = "/flashsale.v1.Orders/ListOrders"

# Headers the chaos scenarios read; bodyless requests only forward whitelisted headers.
CHAOS_HEADERS = ["x-chaos", "x-chaos-delay-ms", "x-chaos-size", "x-chaos-count",
                 "x-chaos-message-b64"]


def assert_json_error(status, headers, body, http_status, code):
    assert status == http_status, (status, headers, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert isinstance(body, dict) and body.get("code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body


def order_body(customer="cust-options", **extra):
    return {"customerId": customer, "items": [{"sku": "sku-3001", "quantity": 1}], **extra}


def message_b64(type_name, **fields):
    return base64.b64encode(harness.message_class(type_name)(**fields).SerializeToString()).decode()


# ---- print_options ----------------------------------------------------------------------------

def test_print_options_default(envoy):
    """Reference for the print options below: lowerCamelCase names, enums as names, default
    values omitted, compact JSON."""
    status, _, data = envoy.request("GET", "/v1/inventory/sku-2002")
    assert status == 200, data
    body = json.loads(data)
    assert b"\n" not in data and b": " not in data
    assert "available" not in body and "reserved" not in body, body  # both 0
    assert body["status"] == "SOLD_OUT" and "updatedAt" in body, body


@pytest.mark.parametrize("option", ["add_whitespace", "always_print_primitive_fields",
                                    "always_print_enums_as_ints", "preserve_proto_field_names"])
def test_print_option(envoy_factory, services, option):
    """Each flag on its own, on both response paths: the callout (GET) and the in-stream
    translation (POST)."""
    envoy = envoy_factory.json2grpc(print_options={option: True})
    status, headers, data = envoy.request("GET", "/v1/inventory/sku-2002")
    assert status == 200, data
    assert headers["content-type"].startswith("application/json")
    item = json.loads(data)
    status, _, odata = envoy.request("POST", "/v1/orders", order_body(),
                                     {"content-type": "application/json"})
    assert status == 200, odata
    order = json.loads(odata)
    if option == "add_whitespace":
        assert b"\n" in data and b"\n" in odata, data
        assert item["sku"] == "sku-2002" and order["customerId"] == "cust-options"
    elif option == "always_print_primitive_fields":
        assert item["available"] == 0 and item["reserved"] == 0, item
        # Unset scalars print their default; unset messages stay absent.
        assert order["note"] == "" and "shippingAddress" not in order, order
    elif option == "always_print_enums_as_ints":
        assert item["status"] == 3, item  # SOLD_OUT
        assert order["status"] == 1, order  # PENDING
    else:
        assert item["updated_at"] == "2024-11-29T00:00:00Z" and "updatedAt" not in item, item
        assert order["order_id"].startswith("ord-") and order["customer_id"] == "cust-options"


# ---- auto_mapping -----------------------------------------------------------------------------

def descriptor_without_http_rule(method):
    """dist/flashsale.pb with the google.api.http option of Inventory.`method` removed."""
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(harness.descriptor_bytes())
    for f in fds.file:
        for service in f.service:
            if f.package == "flashsale.v1" and service.name == "Inventory":
                for m in service.method:
                    if m.name == method:
                        m.ClearField("options")
    return base64.b64encode(fds.SerializeToString()).decode()


@pytest.mark.parametrize("auto_mapping", [False, True])
def test_auto_mapping(envoy_factory, services, auto_mapping):
    """GetItem without its google.api.http rule: with auto_mapping it is reachable as
    POST /flashsale.v1.Inventory/GetItem with a JSON body; without, that request is not
    transcoded (passed through: the service rejects JSON, nothing reaches GetItem)."""
    envoy = envoy_factory.json2grpc(proto_descriptor_bin=descriptor_without_http_rule("GetItem"),
                                    auto_mapping=auto_mapping)
    mark = services.mark()
    status, headers, data = envoy.request("POST", "/flashsale.v1.Inventory/GetItem",
                                          {"sku": "sku-1001"})
    if auto_mapping:
        assert status == 200, (status, headers, data)
        assert headers["content-type"].startswith("application/json")
        assert json.loads(data)["name"] == "Noise-cancelling headphones"
        got = [r["message"] for r in services.records(mark, method=GET_ITEM)]
        assert got == [{"sku": "sku-1001"}], got
    else:
        assert not headers.get("content-type", "").startswith("application/json"), headers
        assert services.records(mark, method=GET_ITEM) == []
    # The annotated route is gone either way; annotated methods keep theirs.
    status, headers, _ = envoy.request("GET", "/v1/inventory/sku-1001")
    assert not headers.get("content-type", "").startswith("application/json"), headers
    status, _, body = envoy.json_request("GET", "/v1/inventory?tags=limited")
    assert status == 200 and [i["sku"] for i in body["items"]] == ["sku-2002"], body


# ---- query parameters -------------------------------------------------------------------------

def test_ignored_query_parameters(envoy_factory, services):
    """Ignored names are dropped before mapping, even with reject_unknown_query_parameters."""
    envoy = envoy_factory.json2grpc(
        ignored_query_parameters=["api_key", "utm_source"],
        request_validation_options={"reject_unknown_query_parameters": True})
    mark = services.mark()
    status, _, body = envoy.json_request(
        "GET", "/v1/inventory?api_key=secret&tags=limited&utm_source=mail")
    assert status == 200 and [i["sku"] for i in body["items"]] == ["sku-2002"], body
    got = [r["message"] for r in services.records(mark, method=LIST_ITEMS)]
    assert got == [{"tags": ["limited"]}], got
    # Unlike the native filter, the credential does not travel in x-envoy-original-path either.
    original = services.records(mark, settle=0)[0]["metadata"]["x-envoy-original-path"]
    assert original == "/v1/inventory?tags=limited", original


@pytest.mark.parametrize("mode", ["default", "ignore", "reject"])
def test_unknown_query_parameter(envoy_factory, services, mode):
    """`foo` names no field of ListItemsRequest:
    default → pass-through (as the native filter: the request reaches the service as REST and
    gets UNIMPLEMENTED); ignore_unknown_query_parameters → dropped; reject → 400 JSON."""
    overrides = {
        "default": {},
        "ignore": {"ignore_unknown_query_parameters": True},
        "reject": {"request_validation_options": {"reject_unknown_query_parameters": True}},
    }[mode]
    envoy = envoy_factory.json2grpc(**overrides)
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory?foo=1&tags=limited")
    received = services.records(mark, method=LIST_ITEMS, settle=0.4)
    if mode == "default":
        assert status == 200 and headers.get("grpc-status") == "12", (status, headers)
        assert received == []
    elif mode == "ignore":
        assert status == 200 and [i["sku"] for i in body["items"]] == ["sku-2002"], body
        assert [r["message"] for r in received] == [{"tags": ["limited"]}]
    else:
        assert_json_error(status, headers, body, 400, 3)
        assert "foo" in body["message"], body
        assert received == []


def test_query_param_unescape_plus(envoy_factory, services):
    for plus, expected in [(False, "a+b c"), (True, "a b c")]:
        envoy = envoy_factory.json2grpc(query_param_unescape_plus=plus)
        mark = services.mark()
        status, _, body = envoy.json_request("GET", "/v1/inventory?page_token=a+b%20c&page_size=1")
        assert status == 200, body
        got = [r["message"] for r in services.records(mark, method=LIST_ITEMS)]
        assert got == [{"page_token": expected, "page_size": 1}], (plus, got)


@pytest.mark.parametrize("case_insensitive", [False, True])
def test_case_insensitive_enum_parsing(envoy_factory, services, case_insensitive):
    """Lowercase enum names in a query parameter (ListItems.status) and in a body (PATCH
    order.status)."""
    envoy = envoy_factory.json2grpc(case_insensitive_enum_parsing=case_insensitive)
    status, _, order = envoy.json_request("POST", "/v1/orders", order_body())
    assert status == 200, order
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory?status=sold_out")
    if case_insensitive:
        assert status == 200 and [i["sku"] for i in body["items"]] == ["sku-2002"], body
    else:
        assert_json_error(status, headers, body, 400, 3)
    status, headers, body = envoy.json_request(
        "PATCH", f"/v1/orders/{order['orderId']}?update_mask=status", {"status": "cancelled"})
    if case_insensitive:
        assert status == 200 and body["status"] == "CANCELLED", body
        got = [r["message"] for r in services.records(mark)]
        assert got == [{"status": "SOLD_OUT"},
                       {"order": {"order_id": order["orderId"], "status": "CANCELLED"},
                        "update_mask": "status"}], got
    else:
        assert_json_error(status, headers, body, 400, 3)
        assert services.records(mark, settle=0.4) == []


@pytest.mark.parametrize("spec", ["ALL_CHARACTERS_EXCEPT_RESERVED",
                                  "ALL_CHARACTERS_EXCEPT_SLASH", "ALL_CHARACTERS"])
def test_url_unescape_spec_single_segment(envoy_factory, services, spec):
    """The flash-sale protos have no multi-segment (`**` / `{x=a/*}`) variable, so only the
    rule shared by every spec is observable end to end: a single-segment variable is always
    fully percent-decoded (%2F included). The multi-segment differences are unit-tested."""
    envoy = envoy_factory.json2grpc(url_unescape_spec=spec)
    mark = services.mark()
    status, _, body = envoy.json_request("GET", "/v1/customers/cust%2F1%20%3Ax%2B/orders")
    assert (status, body) == (200, {}), body
    got = [r["message"] for r in services.records(mark, method=LIST_ORDERS)]
    assert got == [{"customer_id": "cust/1 :x+"}], got


@pytest.mark.parametrize("match_unregistered", [False, True])
def test_match_unregistered_custom_verb(envoy_factory, services, match_unregistered):
    """`:foo` is no registered verb. Default: it is part of the {sku} segment (GetItem of
    "sku-1001:foo" → 404 from the service). With match_unregistered_custom_verb it is a verb
    no template has → no match → (with reject_unknown_method) 404 from the filter, nothing sent.
    """
    envoy = envoy_factory.json2grpc(
        match_unregistered_custom_verb=match_unregistered,
        request_validation_options={"reject_unknown_method": True})
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory/sku-1001:foo")
    assert_json_error(status, headers, body, 404, 5)
    got = [r["message"] for r in services.records(mark, settle=0.4)]
    if match_unregistered:
        assert got == [], got
        assert body["message"] == "no method is bound to GET /v1/inventory/sku-1001:foo", body
    else:
        assert got == [{"sku": "sku-1001:foo"}], got
        assert body["message"] == "item sku-1001:foo not found", body
    # A registered verb still works.
    status, _, body = envoy.json_request(
        "POST", "/v1/inventory/sku-1002:reserve", {"quantity": 1, "customerId": "cust-verb"})
    assert status == 200 and body["sku"] == "sku-1002", body


# ---- request_validation_options -----------------------------------------------------------------

@pytest.mark.parametrize("reject", [False, True])
def test_reject_unknown_method(envoy_factory, services, reject):
    """PUT /v1/orders: a known path, no binding for PUT."""
    envoy = envoy_factory.json2grpc(request_validation_options={"reject_unknown_method": reject})
    mark = services.mark()
    status, headers, body = envoy.json_request("PUT", "/v1/orders", order_body())
    if reject:
        assert_json_error(status, headers, body, 404, 5)
        assert "PUT" in body["message"], body
    else:
        assert status == 200 and headers.get("grpc-status") == "12", (status, headers, body)
    assert services.records(mark, settle=0.4) == []


def test_binding_body_field_collisions(envoy_factory, services):
    """The path says one value, the body another. Default: the body wins. With
    reject_binding_body_field_collisions: 400 and nothing sent — also when the body uses the
    lowerCamelCase JSON name of the field (PATCH body `order` {"orderId"} vs the path's
    {order.order_id}).

    Oracle: the native filter compares the raw JSON key with the proto field name, so
    lowerCamelCase keys slip past its check (transcoder-reference.md); json2grpc compares
    fields, which is what users of the option expect."""
    default = envoy_factory.json2grpc()
    status, _, created = default.json_request("POST", "/v1/orders", order_body())
    order_id = created["orderId"]
    mark = services.mark()
    status, _, body = default.json_request(
        "POST", "/v1/inventory/sku-1002:reserve",
        {"sku": "sku-nope", "quantity": 1, "customerId": "cust-collide"})
    assert status == 404 and "sku-nope" in body["message"], body  # the body's sku was used
    assert [r["message"]["sku"] for r in services.records(mark)] == ["sku-nope"]

    strict = envoy_factory.json2grpc(
        request_validation_options={"reject_binding_body_field_collisions": True})
    mark = services.mark()
    status, headers, body = strict.json_request(
        "POST", "/v1/inventory/sku-1002:reserve",
        {"sku": "sku-nope", "quantity": 1, "customerId": "cust-collide"})
    assert_json_error(status, headers, body, 400, 3)
    assert "sku" in body["message"], body
    status, headers, body = strict.json_request(
        "PATCH", f"/v1/orders/{order_id}?update_mask=note", {"orderId": "ord-other", "note": "x"})
    assert_json_error(status, headers, body, 400, 3)
    assert services.records(mark, settle=0.4) == []
    # The same value in both places is no collision.
    status, _, body = strict.json_request(
        "PATCH", f"/v1/orders/{order_id}?update_mask=note", {"orderId": order_id, "note": "y"})
    assert status == 200 and body["note"] == "y", body
    assert [r["method"] for r in services.records(mark)] == [UPDATE_ORDER]


# ---- body size limits -----------------------------------------------------------------------

def chunked_post(envoy, path, chunks):
    """POST with `transfer-encoding: chunked` (no content-length)."""
    conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=15)
    try:
        conn.request("POST", path, body=iter(chunks), encode_chunked=True,
                     headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_max_request_body_size(envoy_factory, services):
    envoy = envoy_factory.json2grpc(max_request_body_size=120)
    small = json.dumps(order_body("cust-small")).encode()
    large = json.dumps(order_body("cust-large", note="n" * 200)).encode()
    assert len(small) <= 120 < len(large)
    mark = services.mark()
    # Refused on content-length, before any byte of the body is read…
    status, headers, body = envoy.json_request("POST", "/v1/orders", large)
    assert_json_error(status, headers, body, 413, 8)
    # …and while buffering a chunked body (no content-length).
    status, headers, data = chunked_post(envoy, "/v1/orders", [large[:60], large[60:]])
    assert_json_error(status, headers, json.loads(data), 413, 8)
    assert services.records(mark, settle=0.5) == []
    status, _, body = envoy.json_request("POST", "/v1/orders", small)
    assert status == 200 and body["customerId"] == "cust-small", body
    assert [r["method"] for r in services.records(mark)] == [CREATE_ORDER]


def test_max_response_body_size(envoy_factory, services):
    """An Order is far more than 40 bytes. The callout answers 500; an in-stream response
    whose headers already went downstream (default mode) can only carry the error in the body
    (status 200); in hold mode (allow_on_headers_stop_iteration) it is an exact 500."""
    envoy = envoy_factory.json2grpc(max_response_body_size=40)
    status, _, created = envoy.json_request("POST", "/v1/orders", order_body("cust-resp-limit"))
    assert status == 200, created
    assert created["code"] == 13 and "max_response_body_size" in created["message"], created
    status, headers, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
    assert_json_error(status, headers, body, 500, 13)
    assert "max_response_body_size" in body["message"], body

    held = envoy_factory.json2grpc(max_response_body_size=40, hold_headers=True)
    status, headers, body = held.json_request("POST", "/v1/orders", order_body("cust-resp-held"))
    assert_json_error(status, headers, body, 500, 13)
    assert "max_response_body_size" in body["message"], body
    # Small responses are not affected (a trailers-only NOT_FOUND has no message at all).
    status, _, body = held.json_request("GET", "/v1/orders/ord-none")
    assert status == 404 and body["code"] == 5, body


@pytest.mark.parametrize("held", [False, True], ids=["default", "hold"])
def test_a_refused_body_opens_an_upstream_call_only_in_default_mode(envoy_factory, services, held):
    """Default mode: the rewritten headers go on at once (Envoy gives a filter that pauses them
    no body), so the router has started the upstream request before the body is refused: it is
    reset (stream open) or cancelled (still waiting for this worker's connection); the service
    never gets a message. Hold mode (allow_on_headers_stop_iteration): the headers wait for the
    transcoded body and a refused body starts no upstream request at all."""
    envoy = envoy_factory.json2grpc(hold_headers=held)

    def started_then_dropped():
        stats = envoy.stats("^cluster\\.orders\\.upstream_rq_(tx_reset|cancelled)$")
        return stats["cluster.orders.upstream_rq_tx_reset"] + stats["cluster.orders.upstream_rq_cancelled"]

    before = started_then_dropped()
    status, headers, body = envoy.json_request("POST", "/v1/orders", '{"customerId": ')
    assert_json_error(status, headers, body, 400, 3)
    deadline = time.monotonic() + 2
    while started_then_dropped() == before and not held and time.monotonic() < deadline:
        time.sleep(0.05)  # counted when Envoy tears the upstream request down
    time.sleep(0.2)
    assert started_then_dropped() - before == (0 if held else 1)
    status, _, created = envoy.json_request("POST", "/v1/orders", order_body("cust-held-%s" % held))
    assert status == 200 and created["customerId"] == "cust-held-%s" % held, created


# ---- json2grpc.callout ------------------------------------------------------------------------

def chaos_callout_envoy(envoy_factory, chaos, **callout):
    return envoy_factory.json2grpc(
        inventory=chaos.address,
        json2grpc={"callout": {"forward_headers": CHAOS_HEADERS, **callout}})


def test_callout_timeout_ends_the_call(envoy_factory, chaos):
    """A slow upstream for a bodyless request: Envoy ends the filter's call at
    json2grpc.callout.timeout_ms (the client gets a JSON error well before the upstream would
    answer), and the service was told the deadline in grpc-timeout."""
    envoy = chaos_callout_envoy(envoy_factory, chaos, timeout_ms=300)
    mark = chaos.mark()
    started = time.monotonic()
    status, headers, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1001", headers={"x-chaos": "slow", "x-chaos-delay-ms": "3000"})
    assert time.monotonic() - started < 2, "the callout deadline was not enforced"
    assert status >= 500 and headers["content-type"] == "application/json", (status, body)
    records = chaos.records(mark)
    assert [r["path"] for r in records] == [GET_ITEM], records
    assert records[0]["headers"]["grpc-timeout"] == "300m", records
    assert records[0]["headers"]["x-chaos"] == "slow", records
    # Under the deadline it answers.
    status, _, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1001",
        headers={"x-chaos": "slow", "x-chaos-delay-ms": "50",
                 "x-chaos-message-b64": message_b64("flashsale.v1.Item", sku="sku-slow")})
    assert (status, body) == (200, {"sku": "sku-slow"}), body


def test_callout_timeout_is_504_deadline_exceeded(envoy_factory, chaos):
    envoy = chaos_callout_envoy(envoy_factory, chaos, timeout_ms=300)
    status, headers, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1001", headers={"x-chaos": "slow", "x-chaos-delay-ms": "3000"})
    assert_json_error(status, headers, body, 504, 4)


def test_callout_forward_headers_is_still_accepted(envoy_factory, services):
    """forward_headers (of earlier versions) still loads; every header travels anyway."""
    envoy = envoy_factory.json2grpc(json2grpc={"callout": {"forward_headers": ["X-Tenant"]}})
    mark = services.mark()
    status, _, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1001", headers={"x-tenant": "acme", "x-other": "yes"})
    assert status == 200, body
    md = [r["metadata"] for r in services.records(mark, method=GET_ITEM)][0]
    assert md.get("x-tenant") == "acme" and md.get("x-other") == "yes", md


def test_callout_clusters_override(envoy_factory, services, chaos):
    """json2grpc.callout.clusters sends Orders' bodyless calls to the `inventory` cluster
    (here: the chaos upstream) instead of the route's `orders` cluster."""
    envoy = envoy_factory.json2grpc(
        inventory=chaos.address,
        json2grpc={"callout": {"clusters": {"flashsale.v1.Orders": "inventory"}}})
    mark, chaos_mark = services.mark(), chaos.mark()
    status, headers, body = envoy.json_request("GET", "/v1/orders/ord-anything")
    assert (status, body) == (200, {}), (status, headers, body)  # chaos `ok`: empty Order
    assert services.records(mark) == []
    got = chaos.records(chaos_mark)
    assert [r["path"] for r in got] == ["/flashsale.v1.Orders/GetOrder"], got
    # A request with a body is routed by Envoy as usual (to the orders service).
    status, _, body = envoy.json_request("POST", "/v1/orders", order_body("cust-clusters"))
    assert status == 200 and body["customerId"] == "cust-clusters", body
    assert [r["method"] for r in services.records(mark)] == [CREATE_ORDER]


def test_callout_cluster_that_does_not_exist(envoy_factory, services):
    envoy = envoy_factory.json2grpc(
        json2grpc={"callout": {"clusters": {"flashsale.v1.Inventory": "no-such-cluster"}}})
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory/sku-1001")
    assert_json_error(status, headers, body, 503, 14)
    assert "no-such-cluster" in body["message"], body
    assert services.records(mark, settle=0.4) == []


def test_callout_max_stream_bytes(envoy_factory):
    """A bodyless call to a server stream is buffered, up to max_stream_bytes."""
    envoy = envoy_factory.json2grpc(json2grpc={"callout": {"max_stream_bytes": 200}})
    status, headers, body = envoy.json_request("GET", "/v1/inventory:watch?limit=1")
    assert status == 200 and isinstance(body, list) and len(body) == 1, body
    status, headers, body = envoy.json_request("GET", "/v1/inventory:watch?limit=50")
    assert_json_error(status, headers, body, 500, 13)
    assert "max_stream_bytes" in body["message"], body


# ---- json2grpc.limits -------------------------------------------------------------------------

def test_limit_max_json_depth(envoy_factory, services):
    """{"items": [{…}]} nests 3 deep (object, array, object)."""
    envoy = envoy_factory.json2grpc(json2grpc={"limits": {"max_json_depth": 2}})
    mark = services.mark()
    status, headers, body = envoy.json_request("POST", "/v1/orders", order_body())
    assert_json_error(status, headers, body, 400, 3)
    assert services.records(mark, settle=0.4) == []
    status, _, body = envoy.json_request("POST", "/v1/inventory/sku-nope:reserve", {"quantity": 1})
    assert status == 404, body  # depth 1 is fine (and reaches the service)


def test_limit_max_query_parameters(envoy_factory, services):
    envoy = envoy_factory.json2grpc(json2grpc={"limits": {"max_query_parameters": 3}})
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory?tags=a&tags=b&tags=c&tags=d")
    assert_json_error(status, headers, body, 400, 3)
    assert services.records(mark, settle=0.4) == []
    status, _, body = envoy.json_request("GET", "/v1/inventory?tags=audio&tags=sale&page_size=9")
    assert status == 200 and [i["sku"] for i in body["items"]] == ["sku-1001"], body


@pytest.mark.parametrize("mode", ["callout", "default", "hold"])
def test_limit_max_frame_size(envoy_factory, chaos, mode):
    """A 300-byte message over a 200-byte json2grpc.limits.max_frame_size: 502 from the
    callout and in hold mode; in default mode the headers (200) already left, so the error is
    the body."""
    envoy = envoy_factory.json2grpc(
        inventory=chaos.address, hold_headers=(mode == "hold"),
        json2grpc={"limits": {"max_frame_size": 200}, "callout": {"forward_headers": CHAOS_HEADERS}})
    headers = {"x-chaos": "oversized", "x-chaos-size": "300"}
    if mode == "callout":
        status, rheaders, body = envoy.json_request("GET", "/v1/inventory/sku-1", headers=headers)
    else:
        status, rheaders, body = envoy.json_request("POST", "/v1/inventory/sku-1:reserve",
                                                    {"quantity": 1}, headers=headers)
    expected_status = 200 if mode == "default" else 502
    assert_json_error(status, rheaders, body, expected_status, 13)
    assert "300 bytes exceeds the limit of 200" in body["message"], body
    headers["x-chaos-size"] = "150"
    path = "/v1/inventory/sku-1" if mode == "callout" else "/v1/inventory/sku-1:reserve"
    status, _, body = envoy.json_request("GET" if mode == "callout" else "POST", path,
                                         None if mode == "callout" else {"quantity": 1},
                                         headers=headers)
    assert status == 200 and len(next(iter(body.values()))) > 100, body


# ---- invalid configurations -------------------------------------------------------------------

@pytest.mark.parametrize("overrides,field", [
    ({"print_options": {"add_whitespaces": True}}, "print_options.add_whitespaces"),
    ({"services": ["flashsale.v1.Nope"]}, "services[0]"),
    ({"url_unescape_spec": "SOME_CHARACTERS"}, "url_unescape_spec"),
    ({"max_request_body_size": -1}, "max_request_body_size"),
    ({"json2grpc": {"limits": {"max_json_depth": 0}}}, "json2grpc.limits.max_json_depth"),
    ({"json2grpc": {"callout": {"timeout": 5}}}, "json2grpc.callout.timeout"),
    ({"proto_descriptor": "/etc/api.pb", "proto_descriptor_bin": None}, "proto_descriptor"),
])
def test_invalid_config_makes_envoy_refuse_to_start(services, tmp_path, overrides, field):
    config = harness.base_plugin_config(**overrides)
    path = harness.render(harness.TEMPLATE, tmp_path / "bad.yaml", config, services,
                          wasm=harness.WASM)
    with pytest.raises(harness.HarnessError) as failed:
        envoy = harness.Envoy("bad-config", path, tmp_path)
        envoy.stop()
    assert "exited with status" in str(failed.value), failed.value
    lines = [line for line in (tmp_path / "bad-config.envoy.log").read_text().splitlines()
             if "invalid json2grpc config" in line]
    assert any(f"field `{field}`" in line for line in lines), lines
