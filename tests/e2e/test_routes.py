"""Every route kind of the flash-sale services through Envoy + json2grpc (default config).

Each test checks the HTTP answer (status, headers, JSON) and what the gRPC service received
(`services.records`). Routes (proto/flashsale/v1/*.proto):

  GET    /v1/inventory/{sku}                  GetItem       path variable, callout (no body)
  GET    /v1/inventory                        ListItems     query parameters only, callout
  POST   /v1/inventory/{sku}:reserve          Reserve       custom verb, body "*"
  GET    /v1/inventory:export                 Export        google.api.HttpBody response
  POST   /v1/orders                           CreateOrder   body "*"
  GET    /v1/orders/{order_id}                GetOrder      callout
  PATCH  /v1/orders/{order.order_id}          UpdateOrder   nested path variable, body "order",
                                                            ?update_mask (FieldMask) query
  DELETE /v1/orders/{order_id}                DeleteOrder   google.protobuf.Empty response
  GET    /v1/customers/{customer_id}/orders   ListOrders    path variable + query

Map query parameters (`labels[k]=v`) cannot be tested here: no request message of the
flash-sale services has a map field (the only map, Item.attributes, is in a response).
The services keep state for the whole session: stock is only taken from sku-1002 (25 units).
"""

import json

import pytest

GET_ITEM = "/flashsale.v1.Inventory/GetItem"
LIST_ITEMS = "/flashsale.v1.Inventory/ListItems"
RESERVE = "/flashsale.v1.Inventory/Reserve"
EXPORT = "/flashsale.v1.Inventory/Export"
CREATE_ORDER = "/flashsale.v1.Orders/CreateOrder"
GET_ORDER = "/flashsale.v1.Orders/GetOrder"
UPDATE_ORDER = "/flashsale.v1.Orders/UpdateOrder"
DELETE_ORDER = "/flashsale.v1.Orders/DeleteOrder"
LIST_ORDERS = "/flashsale.v1.Orders/ListOrders"


def assert_json_response(headers):
    assert headers.get("content-type", "").startswith("application/json"), headers
    for name in ("grpc-status", "grpc-message", "grpc-accept-encoding", "grpc-encoding"):
        assert name not in headers, headers


def only(records, method):
    """The one record of `method`, after checking nothing else was received."""
    assert [r["method"] for r in records] == [method], records
    return records[0]


def create_order(envoy, customer, items=None, note=""):
    order = {"customerId": customer,
             "items": items or [{"sku": "sku-3001", "quantity": 1}]}
    if note:
        order["note"] = note
    status, headers, body = envoy.json_request("POST", "/v1/orders", order)
    assert status == 200, (status, headers, body)
    return body


# ---- path variables and callouts ------------------------------------------------------------

def test_get_path_variable_via_callout(envoy, services):
    """GET without a body: the filter's own call; the path variable fills `sku`, the original
    method and path travel as x-envoy-original-*, and the call carries its deadline."""
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory/sku-2001")
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body["sku"] == "sku-2001"
    assert body["name"] == "Trail running shoes"
    assert body["tags"] == ["shoes", "sale"]
    assert body["attributes"] == {"size": "42", "color": "orange"}
    assert body["updatedAt"] == "2024-11-29T00:00:00Z"
    assert int(headers["content-length"]) == len(json.dumps(body, separators=(",", ":")))
    rec = only(services.records(mark), GET_ITEM)
    assert rec["message"] == {"sku": "sku-2001"}
    md = rec["metadata"]
    assert md["x-envoy-original-method"] == "GET", md
    assert md["x-envoy-original-path"] == "/v1/inventory/sku-2001", md
    assert md["content-type"] == "application/grpc", md
    assert md["te"] == "trailers", md
    assert md["grpc-timeout"] == "15000m", md  # json2grpc.callout.timeout_ms default


@pytest.mark.parametrize("kind", ["json2grpc", "native"])
def test_bodyless_calls_carry_every_request_header(envoy, native_envoy, services, kind):
    """A GET reaches the service with the metadata a POST would carry: every request header
    (custom ones such as x-user / x-tenant set by the app or an auth filter, cookies,
    credentials, tracing), as the native filter (the oracle) sends them; not the hop-by-hop
    headers, and not the client's grpc-encoding (the filter's own)."""
    target = envoy if kind == "json2grpc" else native_envoy
    mark = services.mark()
    status, headers, body = target.json_request(
        "GET", "/v1/inventory/sku-1001",
        headers={"authorization": "Bearer e2e-token", "x-request-id": "rid-routes-1",
                 "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                 "cookie": "session=secret", "x-tenant": "acme", "x-user": "alice",
                 "keep-alive": "timeout=5"})
    assert status == 200, (status, headers, body)
    md = only(services.records(mark), GET_ITEM)["metadata"]
    expected = {"authorization": "Bearer e2e-token", "x-request-id": "rid-routes-1",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "cookie": "session=secret", "x-tenant": "acme", "x-user": "alice",
                "x-envoy-original-method": "GET", "x-envoy-original-path": "/v1/inventory/sku-1001",
                "content-type": "application/grpc", "te": "trailers"}
    assert {k: md.get(k) for k in expected} == expected, md
    assert "keep-alive" not in md, md


def test_bodyless_calls_drop_configured_headers(envoy_factory, services):
    """json2grpc.callout.drop_headers keeps named headers (e.g. cookie) off bodyless calls."""
    envoy = envoy_factory.json2grpc(json2grpc={"callout": {"drop_headers": ["Cookie"]}})
    mark = services.mark()
    status, _, body = envoy.json_request(
        "GET", "/v1/inventory/sku-1001", headers={"cookie": "session=secret", "x-user": "alice"})
    assert status == 200, body
    md = only(services.records(mark), GET_ITEM)["metadata"]
    assert "cookie" not in md and md.get("x-user") == "alice", md


def test_request_with_body_forwards_all_headers(envoy, services):
    """With a body, the request itself goes upstream (no callout): Envoy forwards its headers,
    and the filter adds x-envoy-original-path/-method (query string and verb included)."""
    mark = services.mark()
    status, headers, body = envoy.json_request(
        "POST", "/v1/orders?note=from-query",
        {"customerId": "cust-routes-hdr", "items": [{"sku": "sku-1001", "quantity": 1}]},
        headers={"authorization": "Bearer e2e", "x-request-id": "rid-routes-2",
                 "cookie": "c=1", "x-tenant": "acme"})
    assert status == 200, (status, headers, body)
    rec = only(services.records(mark), CREATE_ORDER)
    # The query parameter fills a field the body left unset.
    assert rec["message"]["note"] == "from-query", rec
    md = rec["metadata"]
    assert md["x-envoy-original-path"] == "/v1/orders?note=from-query", md
    assert md["x-envoy-original-method"] == "POST", md
    assert md["authorization"] == "Bearer e2e", md
    assert md["x-request-id"] == "rid-routes-2", md
    assert md["cookie"] == "c=1", md
    assert md["x-tenant"] == "acme", md
    assert md["content-type"] == "application/grpc", md


# ---- query parameters -----------------------------------------------------------------------

def test_query_parameters_of_several_kinds(envoy, services):
    """Repeated (`tags` twice), enum by name, int32 by proto and by JSON name."""
    mark = services.mark()
    status, headers, body = envoy.json_request(
        "GET", "/v1/inventory?tags=audio&tags=sale&status=IN_STOCK&minAvailable=1&page_size=5")
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert [i["sku"] for i in body["items"]] == ["sku-1001"], body
    rec = only(services.records(mark), LIST_ITEMS)
    assert rec["message"] == {"tags": ["audio", "sale"], "status": "IN_STOCK",
                              "min_available": 1, "page_size": 5}
    assert rec["metadata"]["x-envoy-original-path"] == (
        "/v1/inventory?tags=audio&tags=sale&status=IN_STOCK&minAvailable=1&page_size=5")


def test_query_enum_by_number_and_paging(envoy, services):
    mark = services.mark()
    status, _, body = envoy.json_request("GET", "/v1/inventory?status=3&page_size=1")
    assert status == 200, body
    assert [i["sku"] for i in body["items"]] == ["sku-2002"], body
    assert body.get("nextPageToken", "") == "", body
    status, _, body = envoy.json_request("GET", "/v1/inventory?page_size=2&page_token=sku-2001")
    assert status == 200, body
    assert [i["sku"] for i in body["items"]] == ["sku-2002", "sku-3001"], body
    assert body["nextPageToken"] == "sku-3001", body
    got = [r["message"] for r in services.records(mark, method=LIST_ITEMS)]
    assert got == [{"status": "SOLD_OUT", "page_size": 1},
                   {"page_size": 2, "page_token": "sku-2001"}], got


def test_query_value_errors_are_400_json(envoy, services):
    mark = services.mark()
    for query in ("min_available=lots", "status=NOT_A_STATUS", "page_size=99999999999"):
        status, headers, body = envoy.json_request("GET", f"/v1/inventory?{query}")
        assert status == 400, (query, status, body)
        assert_json_response(headers)
        assert body["code"] == 3, body
        assert query.split("=")[0] in body["message"], body
    assert services.records(mark, settle=0.5) == []


# ---- custom verb, body "*" ------------------------------------------------------------------

def test_custom_verb_with_body_star(envoy, services):
    mark = services.mark()
    status, headers, body = envoy.json_request(
        "POST", "/v1/inventory/sku-1002:reserve", {"quantity": 1, "customerId": "cust-routes"})
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body["sku"] == "sku-1002" and body["quantity"] == 1, body
    assert int(headers.get("content-length", len(json.dumps(body)))) > 0
    rec = only(services.records(mark), RESERVE)
    assert rec["message"] == {"sku": "sku-1002", "quantity": 1, "customer_id": "cust-routes"}
    assert rec["metadata"]["x-envoy-original-path"] == "/v1/inventory/sku-1002:reserve"


def test_verb_route_needs_its_method(envoy, services):
    """`:reserve` is a registered verb, so GET /v1/inventory/sku-1002:reserve is the template
    /v1/inventory/{sku} + verb `reserve`, which only POST binds: no match, the request passes
    through untouched (it is not GetItem of a sku "sku-1002:reserve"). The gRPC service
    answers the REST request UNIMPLEMENTED, which reaches the client unchanged."""
    mark = services.mark()
    status, headers, data = envoy.request("GET", "/v1/inventory/sku-1002:reserve")
    assert_passed_through(status, headers, data)
    assert services.records(mark) == []


def assert_passed_through(status, headers, data):
    """What a REST request that reached the gRPC service untouched gets back: tonic's
    trailers-only UNIMPLEMENTED, not transcoded (the filter only translates responses of the
    requests it transcoded)."""
    assert status == 200, (status, headers, data)
    assert headers.get("content-type") == "application/grpc", headers
    assert headers.get("grpc-status") == "12", headers
    assert data == b""


# ---- body "*" with nested objects; body field + nested path variable + FieldMask query ------

def test_create_update_get_delete_order(envoy, services):
    mark = services.mark()
    created = create_order(envoy, "cust-routes-crud",
                           [{"sku": "sku-1002", "quantity": 2}], note="first")
    order_id = created["orderId"]
    assert created["total"] == {"currencyCode": "USD", "units": "159"}, created
    assert created["version"] == "1"

    # PATCH: {order.order_id} fills a field of the body field `order`; update_mask from the
    # query (a FieldMask in its string form) limits what changes.
    status, headers, body = envoy.json_request(
        "PATCH", f"/v1/orders/{order_id}?update_mask=note,shippingAddress.city",
        {"note": "second", "status": "CANCELLED",
         "shippingAddress": {"city": "Springfield", "line1": "ignored"}})
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body["orderId"] == order_id
    assert body["note"] == "second"
    assert body["shippingAddress"] == {"city": "Springfield"}, body
    assert body["status"] == "PENDING", body  # not in the mask
    assert body["version"] == "2"

    # GET and DELETE through the callout; DELETE answers google.protobuf.Empty as {}.
    status, _, body = envoy.json_request("GET", f"/v1/orders/{order_id}")
    assert status == 200 and body["note"] == "second", body
    status, headers, body = envoy.json_request("DELETE", f"/v1/orders/{order_id}")
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body == {}
    status, _, body = envoy.json_request("DELETE", f"/v1/orders/{order_id}")
    assert status == 404 and body["code"] == 5, body
    status, _, body = envoy.json_request("GET", f"/v1/orders/{order_id}")
    assert status == 404 and order_id in body["message"], body

    got = [(r["method"], r["message"]) for r in services.records(mark)
           if r["method"] != CREATE_ORDER]
    assert got[0] == (UPDATE_ORDER, {
        "order": {"order_id": order_id, "note": "second", "status": "CANCELLED",
                  "shipping_address": {"city": "Springfield", "line1": "ignored"}},
        "update_mask": "note,shippingAddress.city"}), got[0]
    assert got[1:] == [(GET_ORDER, {"order_id": order_id}),
                       (DELETE_ORDER, {"order_id": order_id}),
                       (DELETE_ORDER, {"order_id": order_id}),
                       (GET_ORDER, {"order_id": order_id})], got
    delete = [r for r in services.records(mark, method=DELETE_ORDER, settle=0)][0]
    assert delete["metadata"]["x-envoy-original-method"] == "DELETE", delete


def test_body_field_path_variable_wins_over_body(envoy, services):
    """The nested path variable order.order_id and a different orderId inside the body:
    the body wins (README: "the body wins over path/query values for the same field")."""
    first = create_order(envoy, "cust-routes-wins")["orderId"]
    second = create_order(envoy, "cust-routes-wins")["orderId"]
    mark = services.mark()
    status, _, body = envoy.json_request(
        "PATCH", f"/v1/orders/{first}?update_mask=note", {"orderId": second, "note": "which"})
    assert status == 200, body
    assert body["orderId"] == second, body
    rec = only(services.records(mark), UPDATE_ORDER)
    assert rec["message"]["order"]["order_id"] == second, rec


def test_list_orders_path_variable_and_query(envoy, services):
    customer = "cust-routes-list"
    ids = [create_order(envoy, customer)["orderId"] for _ in range(3)]
    mark = services.mark()
    status, headers, body = envoy.json_request(
        "GET", f"/v1/customers/{customer}/orders?page_size=2")
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert [o["orderId"] for o in body["orders"]] == ids[:2]
    assert body["nextPageToken"] == ids[1]
    status, _, body = envoy.json_request(
        "GET", f"/v1/customers/{customer}/orders?pageToken={ids[1]}")
    assert [o["orderId"] for o in body["orders"]] == ids[2:], body
    got = [r["message"] for r in services.records(mark, method=LIST_ORDERS)]
    assert got == [{"customer_id": customer, "page_size": 2},
                   {"customer_id": customer, "page_token": ids[1]}], got


def test_unknown_customer_lists_nothing(envoy):
    status, _, body = envoy.json_request("GET", "/v1/customers/nobody/orders")
    assert (status, body) == (200, {}), body


# ---- HttpBody response ----------------------------------------------------------------------

def test_export_http_body_is_raw_csv(envoy, services):
    mark = services.mark()
    status, headers, data = envoy.request("GET", "/v1/inventory:export")
    assert status == 200, (status, headers, data)
    assert headers["content-type"] == "text/csv", headers
    assert "grpc-status" not in headers, headers
    lines = data.decode().splitlines()
    assert lines[0] == "sku,name,available,price_units,currency"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "sku-1001", "sku-1002", "sku-2001", "sku-2002", "sku-3001", "sku-3002"], lines
    assert int(headers["content-length"]) == len(data)

    status, headers, data = envoy.request("GET", "/v1/inventory:export?status=SOLD_OUT")
    assert status == 200 and headers["content-type"] == "text/csv", headers
    assert data == (b"sku,name,available,price_units,currency\n"
                    b"sku-2002,Limited-edition sneakers,0,249,USD\n")
    got = [r["message"] for r in services.records(mark, method=EXPORT)]
    assert got == [{}, {"status": "SOLD_OUT"}], got


@pytest.mark.parametrize("method,path", [
    ("PUT", "/v1/orders"),              # a known path with a method nobody binds
    ("GET", "/v1/inventory/a/b"),       # {sku} is one segment
    ("POST", "/v1/orders/extra/segment"),
])
def test_unmatched_requests_pass_through(envoy, services, method, path):
    """No binding matches: the filter does not touch the request (Envoy routes it as is), and
    nothing reaches a service method."""
    mark = services.mark()
    status, headers, data = envoy.request(method, path, body=b"{}" if method != "GET" else None,
                                          headers={"content-type": "application/json"})
    assert_passed_through(status, headers, data)
    assert services.records(mark) == []


# ---- where json2grpc and the native filter (oracle) differ ----------------------------------

def test_query_parameter_cannot_override_a_path_variable(envoy, native_envoy, services):
    """GET /v1/inventory/sku-1001?sku=sku-1002: json2grpc keeps the path's sku (README: "a
    query parameter cannot override a path variable"); the native filter lets the query
    parameter win and reads sku-1002. json2grpc's is better for users: the resource is the one
    the URL path names, and a stray query parameter cannot redirect the call."""
    mark = services.mark()
    status, _, body = envoy.json_request("GET", "/v1/inventory/sku-1001?sku=sku-1002")
    assert status == 200 and body["sku"] == "sku-1001", body
    status, _, body = native_envoy.json_request("GET", "/v1/inventory/sku-1001?sku=sku-1002")
    assert status == 200 and body["sku"] == "sku-1002", body
    got = [r["message"] for r in services.records(mark, method=GET_ITEM)]
    assert got == [{"sku": "sku-1001"}, {"sku": "sku-1002"}], got


def test_body_of_a_bodyless_rule_cannot_replace_the_path_variable(envoy, services):
    keep = create_order(envoy, "cust-routes-body-delete")["orderId"]
    target = create_order(envoy, "cust-routes-body-delete")["orderId"]
    mark = services.mark()
    status, _, body = envoy.json_request("DELETE", f"/v1/orders/{target}", {"orderId": keep})
    got = [r["message"] for r in services.records(mark, method=DELETE_ORDER)]
    assert got == [{"order_id": target}], got
    assert (status, body) == (200, {}), body


@pytest.mark.parametrize("path,method,message", [
    ("/v1/inventory/sku-1001/", GET_ITEM, {"sku": "sku-1001"}),
    ("/v1/inventory/", LIST_ITEMS, {}),
])
def test_trailing_slash_is_ignored_like_the_native_filter(envoy, services, path, method, message):
    mark = services.mark()
    status, headers, _ = envoy.request("GET", path)
    assert status == 200 and headers["content-type"] == "application/json", (status, headers)
    got = [(r["method"], r["message"]) for r in services.records(mark)]
    assert got == [(method, message)], got


@pytest.mark.parametrize("scenario,status", [("ok", 200), ("no-such-scenario", 400)],
                         ids=["ok", "trailers-only-error"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_service_metadata_becomes_response_headers_like_native(envoy_factory, chaos, method,
                                                                scenario, status):
    """The service's initial metadata (here x-resp, from grpc_chaos) comes back as response
    headers, for a bodyless GET (the filter's own call) as for a POST, on success and on a
    trailers-only error; its grpc-* headers do not. The native filter is the oracle."""
    path = "/v1/inventory/sku-1" if method == "GET" else "/v1/inventory/sku-1:reserve"
    body = None if method == "GET" else {"quantity": 1}
    request = {"x-chaos": scenario, "x-chaos-metadata": "x-resp=one"}
    seen = {}
    for kind in ("json2grpc", "native"):
        factory = envoy_factory.json2grpc if kind == "json2grpc" else envoy_factory.native
        target = factory(inventory=chaos.address)
        got, headers, _ = target.json_request(method, path, body, headers=request)
        seen[kind] = (got, headers.get("x-resp"), sorted(h for h in headers if h.startswith("grpc-")))
    assert seen["json2grpc"] == (status, "one", []), seen
    assert seen["native"][:2] == seen["json2grpc"][:2], seen
