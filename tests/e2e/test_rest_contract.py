"""The REST contract controls (json2grpc.rest, README "REST contract") through the real Envoy:
PATCH field masks, success statuses and headers from the service, int64 as JSON numbers, strict
bodies, required and output-only fields, CORS. Each test checks the status, headers and body the
client got and what the service received ("nothing" for refused requests). The browser side of
CORS is test_cors_browser.py.
"""

import pytest

import harness

CREATE_ORDER = "/flashsale.v1.Orders/CreateOrder"
UPDATE_ORDER = "/flashsale.v1.Orders/UpdateOrder"
DELETE_ORDER = "/flashsale.v1.Orders/DeleteOrder"
RESERVE = "/flashsale.v1.Inventory/Reserve"
GET_ITEM = "/flashsale.v1.Inventory/GetItem"
LOOPBACK = {"callout": {"loopback_cluster": "json2grpc_loopback"}}

ORIGIN = "http://app.example"
CORS = {"allow_origins": [ORIGIN, "http://*.shop.example"],
        "allow_headers": ["content-type", "x-client-trace"],
        "expose_headers": ["location", "x-request-id"], "allow_credentials": True, "max_age": 600}


def rest_envoy(envoy_factory, extra=None, **rest):
    return envoy_factory.json2grpc(json2grpc={"rest": rest, **(extra or {})})


def chaos_envoy(envoy_factory, chaos, hold_headers=False, **rest):
    return envoy_factory.json2grpc(inventory=chaos.address, hold_headers=hold_headers,
                                   json2grpc={"rest": rest})


def create_order(envoy, customer, **extra):
    order = {"customerId": customer, "items": [{"sku": "sku-3001", "quantity": 1}],
             "shippingAddress": {"line1": "1 Main St", "city": "Springfield", "countryCode": "US"},
             "note": "ring twice", **extra}
    status, headers, body = envoy.json_request("POST", "/v1/orders", order)
    assert status in (200, 201), (status, headers, body)
    return body


def violations(body):
    """The field paths of the google.rpc.BadRequest detail of a JSON error."""
    assert isinstance(body, dict) and body.get("code") == 3, body
    [detail] = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest", detail
    return [v["field"] for v in detail["fieldViolations"]]


# ---- 1. PATCH -> FieldMask --------------------------------------------------------------------------

def test_patch_without_the_option_sends_no_mask(envoy, services):
    """Envoy's native filter fills no mask: the service applies its implied mask (every field
    set in the patch), so a nested object replaces the whole address and an empty note is no
    change."""
    order = create_order(envoy, "cust-mask-off")
    mark = services.mark()
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}",
                                         {"shippingAddress": {"city": "Shelbyville"}, "note": ""})
    assert status == 200, body
    assert body["shippingAddress"] == {"city": "Shelbyville"}, body
    assert body["note"] == "ring twice", body
    [received] = services.records(mark, method=UPDATE_ORDER)
    assert "update_mask" not in received["message"], received


def test_patch_fills_the_mask_from_the_body_keys(envoy_factory, services):
    envoy = rest_envoy(envoy_factory, patch_field_mask=True)
    order = create_order(envoy, "cust-mask-on")
    mark = services.mark()
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}",
                                         {"shippingAddress": {"city": "Shelbyville"}, "note": ""})
    assert status == 200, body
    # Only the city changed; the empty note cleared the note.
    assert body["shippingAddress"] == {"line1": "1 Main St", "city": "Shelbyville",
                                       "countryCode": "US"}, body
    assert "note" not in body, body
    [received] = services.records(mark, method=UPDATE_ORDER)
    # The recorder prints the FieldMask in its JSON form (lowerCamelCase); on the wire the
    # paths are proto names (shipping_address.city), which the service applied above.
    assert received["message"]["update_mask"] == "shippingAddress.city,note", received
    assert received["message"]["order"] == {"order_id": order["orderId"],
                                            "shipping_address": {"city": "Shelbyville"}}, received


def test_an_explicit_mask_wins(envoy_factory, services):
    envoy = rest_envoy(envoy_factory, patch_field_mask=True)
    order = create_order(envoy, "cust-mask-explicit")
    mark = services.mark()
    status, _, body = envoy.json_request(
        "PATCH", f"/v1/orders/{order['orderId']}?updateMask=note",
        {"note": "leave at the door", "shippingAddress": {"city": "Ignored"}})
    assert status == 200, body
    assert body["note"] == "leave at the door" and body["shippingAddress"]["city"] == "Springfield"
    [received] = services.records(mark, method=UPDATE_ORDER)
    assert received["message"]["update_mask"] == "note", received


def test_lists_are_masked_whole(envoy_factory, services):
    envoy = rest_envoy(envoy_factory, patch_field_mask=True)
    order = create_order(envoy, "cust-mask-list")
    mark = services.mark()
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}",
                                         {"items": [{"sku": "sku-1002", "quantity": 2}]})
    assert status == 200, body
    assert [(i["sku"], i["quantity"]) for i in body["items"]] == [("sku-1002", 2)], body
    [received] = services.records(mark, method=UPDATE_ORDER)
    assert received["message"]["update_mask"] == "items", received


# ---- 2. success status and headers from the service --------------------------------------------

def test_configured_success_statuses_and_location(envoy_factory, services):
    """201 for CreateOrder (in-stream POST) with the service's `location`; 204 without a body
    for DeleteOrder (a bodyless DELETE: the filter's own call)."""
    envoy = rest_envoy(envoy_factory, success_status={"flashsale.v1.Orders.CreateOrder": 201,
                                                      "flashsale.v1.Orders.DeleteOrder": 204})
    mark = services.mark()
    order = {"customerId": "cust-201", "items": [{"sku": "sku-3001", "quantity": 1}]}
    status, headers, body = envoy.json_request("POST", "/v1/orders", order)
    assert status == 201, (status, headers, body)
    assert headers["content-type"].startswith("application/json"), headers
    assert headers.get("location") == f"/v1/orders/{body['orderId']}", headers
    status, headers, data = envoy.request("DELETE", f"/v1/orders/{body['orderId']}")
    assert (status, data) == (204, b""), (status, headers, data)
    assert "content-type" not in headers, headers
    # A failure keeps its own status.
    status, _, error = envoy.json_request("DELETE", f"/v1/orders/{body['orderId']}")
    assert status == 404 and error["code"] == 5, error
    got = [r["method"] for r in services.records(mark)]
    assert got == [CREATE_ORDER, DELETE_ORDER, DELETE_ORDER], got


def test_the_default_status_is_200_and_location_passes(envoy):
    status, headers, body = envoy.json_request(
        "POST", "/v1/orders", {"customerId": "cust-200", "items": [{"sku": "sku-3001", "quantity": 1}]})
    assert status == 200, body
    assert headers.get("location") == f"/v1/orders/{body['orderId']}", headers


@pytest.mark.parametrize("hold_headers", [False, True], ids=["default-mode", "held-headers"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_x_http_code_sets_the_status(envoy_factory, chaos, method, hold_headers):
    """x-http-code from the service's initial metadata (grpc_chaos), for the filter's own call
    (GET) and in-stream (POST): in the default mode too, where the response headers go
    downstream before the body (the metadata comes with them)."""
    envoy = chaos_envoy(envoy_factory, chaos, hold_headers=hold_headers, status_from_metadata=True)
    path = "/v1/inventory/sku-1" if method == "GET" else "/v1/inventory/sku-1:reserve"
    body = None if method == "GET" else {"quantity": 1}
    mark = chaos.mark()
    status, headers, data = envoy.json_request(
        method, path, body, headers={"x-chaos-metadata": "x-http-code=202;location=/v1/held/r1"})
    assert status == 202, (status, headers, data)
    assert headers.get("location") == "/v1/held/r1", headers
    assert "x-http-code" not in headers, headers
    assert data == {}, data
    assert len(chaos.records(mark)) == 1
    # 204: no body, no content-type.
    status, headers, data = envoy.request(method, path, b"" if body is None else b'{"quantity": 1}',
                                          headers={"x-chaos-metadata": "x-http-code=204",
                                                   "content-type": "application/json"})
    assert (status, data) == (204, b""), (status, headers, data)
    assert "content-type" not in headers and "x-http-code" not in headers, headers


@pytest.mark.parametrize("value", ["99", "600", "2O1", "abc"])
def test_an_invalid_x_http_code_is_ignored(envoy_factory, chaos, value):
    envoy = chaos_envoy(envoy_factory, chaos, status_from_metadata=True)
    status, headers, data = envoy.json_request("POST", "/v1/inventory/sku-1:reserve", {"quantity": 1},
                                               headers={"x-chaos-metadata": f"x-http-code={value}"})
    assert status == 200 and data == {}, (status, headers, data)
    assert "x-http-code" not in headers, headers


def test_x_http_code_does_not_change_an_error(envoy_factory, chaos):
    envoy = chaos_envoy(envoy_factory, chaos, status_from_metadata=True)
    status, headers, data = envoy.json_request(
        "POST", "/v1/inventory/sku-1:reserve", {"quantity": 1},
        headers={"x-chaos": "no-such-scenario", "x-chaos-metadata": "x-http-code=201"})
    assert status == 400 and data["code"] == 3, (status, data)
    assert "x-http-code" not in headers, headers


def test_without_the_option_x_http_code_is_a_header(envoy_factory, chaos):
    envoy = envoy_factory.json2grpc(inventory=chaos.address)
    status, headers, _ = envoy.json_request("POST", "/v1/inventory/sku-1:reserve", {"quantity": 1},
                                            headers={"x-chaos-metadata": "x-http-code=201"})
    assert status == 200 and headers.get("x-http-code") == "201", headers


# ---- 3. int64 as JSON numbers ----------------------------------------------------------------------

def test_int64_as_numbers(envoy_factory, services):
    default = envoy_factory.json2grpc()
    legacy = rest_envoy(envoy_factory, int64_as_numbers=True)
    for envoy, units in [(default, "199"), (legacy, 199)]:
        status, _, item = envoy.json_request("GET", "/v1/inventory/sku-1001")  # the filter's call
        assert status == 200 and item["price"]["units"] == units, item
    status, _, order = legacy.json_request(
        "POST", "/v1/orders", {"customerId": "cust-int64", "items": [{"sku": "sku-3001", "quantity": 1}]})
    assert status == 200 and order["version"] == 1 and isinstance(order["total"]["units"], int), order


def test_int64_parsing_takes_both_forms(envoy_factory, services):
    for envoy in (envoy_factory.json2grpc(), rest_envoy(envoy_factory, int64_as_numbers=True)):
        mark = services.mark()
        for units in (5, "6"):
            item = {"sku": "sku-3001", "quantity": 1, "unitPrice": {"currencyCode": "EUR", "units": units}}
            status, _, body = envoy.json_request("POST", "/v1/orders",
                                                 {"customerId": "cust-parse", "items": [item]})
            assert status == 200, body
        got = [r["message"]["items"][0]["unit_price"]["units"]
               for r in services.records(mark, method=CREATE_ORDER)]
        assert got == ["5", "6"], got


# ---- 4. strict bodies ----------------------------------------------------------------------------------

def test_unknown_fields_are_dropped_by_default(envoy, services):
    order = create_order(envoy, "cust-lenient")
    mark = services.mark()
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}?updateMask=note",
                                         {"note": "n", "notes2": "typo"})
    assert status == 200 and body["note"] == "n", body
    [received] = services.records(mark, method=UPDATE_ORDER)
    assert received["message"]["order"] == {"order_id": order["orderId"], "note": "n"}, received


def test_unknown_fields_are_refused_naming_each(envoy_factory, services):
    envoy = rest_envoy(envoy_factory, reject_unknown_fields=True)
    order = create_order(envoy, "cust-strict")
    mark = services.mark()
    status, headers, body = envoy.json_request(
        "PATCH", f"/v1/orders/{order['orderId']}?updateMask=note",
        {"note": "n", "notes2": "typo", "shippingAddress": {"citty": "x"}, "items": [{"sku": "s", "qty": 1}]})
    assert status == 400, (status, headers, body)
    assert headers["content-type"].startswith("application/json"), headers
    assert violations(body) == ["order.notes2", "order.shippingAddress.citty", "order.items[0].qty"], body
    assert [d["description"] for d in body["details"][0]["fieldViolations"]] == ["unknown field"] * 3
    # body "*" (POST): paths from the request message.
    status, _, body = envoy.json_request("POST", "/v1/orders", {"customerId": "c", "itemz": []})
    assert status == 400 and violations(body) == ["itemz"], body
    assert services.records(mark) == [], "a refused request reached the service"


# ---- 5. required and output-only fields -------------------------------------------------------------

def test_missing_required_fields_are_refused_before_the_service(envoy_factory, services):
    envoy = rest_envoy(envoy_factory, field_behavior=True)
    mark = services.mark()
    status, _, body = envoy.json_request("POST", "/v1/orders", {"items": [{"sku": "sku-3001"}]})
    assert status == 400, body
    assert violations(body) == ["customerId", "items[0].quantity"], body
    assert body["details"][0]["fieldViolations"][0]["description"] == "required field is missing"
    # The path binds `sku` (REQUIRED) of Reserve; the body must still give `quantity`.
    status, _, body = envoy.json_request("POST", "/v1/inventory/sku-1002:reserve", {"customerId": "c"})
    assert status == 400 and violations(body) == ["quantity"], body
    assert services.records(mark) == [], "a refused request reached the service"
    # Everything given: accepted.
    status, _, body = envoy.json_request("POST", "/v1/inventory/sku-1002:reserve", {"quantity": 1})
    assert status == 200, body
    assert [r["method"] for r in services.records(mark)] == [RESERVE]


def test_required_fields_are_not_checked_by_default(envoy, services):
    mark = services.mark()
    status, _, body = envoy.json_request("POST", "/v1/orders", {"items": [{"sku": "sku-3001"}]})
    # The service's own check answers (its own BadRequest).
    assert status == 400, body
    assert [r["method"] for r in services.records(mark)] == [CREATE_ORDER]


def test_output_only_fields_sent_by_the_client_are_dropped(envoy_factory, services):
    envoy = rest_envoy(envoy_factory, field_behavior=True)
    order = create_order(envoy, "cust-output-only")
    mark = services.mark()
    patch = {"note": "n", "version": "99", "total": {"currencyCode": "USD", "units": "1"},
             "items": [{"sku": "sku-3001", "quantity": 3, "unitPrice": {"units": "0"}}]}
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}?updateMask=note", patch)
    assert status == 200 and body["version"] == "2", body
    [received] = services.records(mark, method=UPDATE_ORDER)
    assert received["message"]["order"] == {"order_id": order["orderId"], "note": "n",
                                            "items": [{"sku": "sku-3001", "quantity": 3}]}, received


def test_a_partial_update_needs_only_the_required_fields_its_mask_covers(envoy_factory, services):
    """AIP-203: an update may omit a REQUIRED field of the resource its mask leaves unchanged
    (LineItem.quantity is REQUIRED; the mask says only `note` changes)."""
    envoy = rest_envoy(envoy_factory, field_behavior=True)
    order = create_order(envoy, "cust-partial")
    patch = {"note": "leave at the door", "items": [{"sku": "sku-3001"}]}
    mark = services.mark()
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}?updateMask=note", patch)
    assert status == 200 and body["note"] == "leave at the door", body
    assert [r["method"] for r in services.records(mark)] == [UPDATE_ORDER]
    # The mask covers the items: their REQUIRED quantity must be there, before the service.
    mark = services.mark()
    status, _, body = envoy.json_request("PATCH", f"/v1/orders/{order['orderId']}?updateMask=items", patch)
    assert status == 400 and violations(body) == ["order.items[0].quantity"], body
    assert services.records(mark) == [], "a refused request reached the service"


# ---- 6. CORS ----------------------------------------------------------------------------------------

def cors_envoy(envoy_factory, extra=None):
    return rest_envoy(envoy_factory, extra, cors=CORS)


def assert_cors(headers, origin=ORIGIN):
    assert headers.get("access-control-allow-origin") == origin, headers
    assert "Origin" in headers.get("vary", ""), headers
    assert headers.get("access-control-allow-credentials") == "true", headers
    assert headers.get("access-control-expose-headers") == "location, x-request-id", headers


def assert_no_cors(headers):
    assert not [h for h in headers if h.startswith("access-control-")], headers


@pytest.mark.parametrize("path,methods", [("/v1/orders/ord-1", "GET, PATCH, DELETE"),
                                          ("/v1/orders?x=1", "POST"),
                                          ("/v1/inventory:watch", "GET, POST")])
def test_a_preflight_is_answered_with_the_methods_of_the_path(envoy_factory, services, path, methods):
    envoy = cors_envoy(envoy_factory)
    mark = services.mark()
    status, headers, data = envoy.request("OPTIONS", path, headers={
        "origin": "http://eu.shop.example", "access-control-request-method": "PATCH",
        "access-control-request-headers": "content-type,x-client-trace"})
    assert (status, data) == (200, b""), (status, headers, data)
    assert headers["access-control-allow-origin"] == "http://eu.shop.example", headers
    assert headers["access-control-allow-methods"] == methods, headers
    assert headers["access-control-allow-headers"] == "content-type, x-client-trace", headers
    assert headers["access-control-max-age"] == "600", headers
    assert headers["access-control-allow-credentials"] == "true", headers
    assert services.records(mark) == []


def test_a_preflight_from_another_origin_is_refused(envoy_factory, services):
    envoy = cors_envoy(envoy_factory)
    status, headers, body = envoy.json_request("OPTIONS", "/v1/orders/ord-1", headers={
        "origin": "http://evil.example", "access-control-request-method": "PATCH"})
    assert status == 403 and body["code"] == 7, (status, body)
    assert_no_cors(headers)


@pytest.mark.parametrize("callout", [{}, LOOPBACK], ids=["direct", "loopback"])
def test_every_kind_of_answer_carries_cors_headers(envoy_factory, services, callout):
    """A GET (the filter's own call, direct or through the loopback listener), a POST whose
    route Envoy re-matched on the gRPC path, a server stream, the filter's own 400, and a
    service error: each answer to the allowed origin has the CORS headers."""
    envoy = cors_envoy(envoy_factory, callout)
    origin = {"origin": ORIGIN}
    status, headers, item = envoy.json_request("GET", "/v1/inventory/sku-1001", headers=origin)
    assert status == 200 and item["sku"] == "sku-1001", item
    assert_cors(headers)
    status, headers, order = envoy.json_request(
        "POST", "/v1/orders", {"customerId": "cust-cors", "items": [{"sku": "sku-3001", "quantity": 1}]},
        headers=origin)
    assert status == 200 and headers.get("location"), (status, headers)
    assert_cors(headers)
    status, headers, data = envoy.request("POST", "/v1/inventory:watch", {"skus": ["sku-1001"], "limit": 2},
                                          headers=origin)
    assert status == 200 and data.startswith(b"[{"), (status, data)
    assert_cors(headers)
    status, headers, data = envoy.request("GET", "/v1/inventory:watch?skus=sku-1001&limit=2", headers=origin)
    assert status == 200 and data.startswith(b"[{"), (status, data)
    assert_cors(headers)
    status, headers, body = envoy.json_request("POST", "/v1/orders", "{not json", headers=origin)
    assert status == 400 and body["code"] == 3, body
    assert_cors(headers)
    status, headers, body = envoy.json_request("GET", "/v1/orders/ord-none", headers=origin)
    assert status == 404 and body["code"] == 5, body
    assert_cors(headers)


def test_another_origin_gets_its_answer_without_cors_headers(envoy_factory, services):
    """As Envoy's CORS filter does: the request is served, the browser keeps the answer from
    the page."""
    envoy = cors_envoy(envoy_factory)
    mark = services.mark()
    status, headers, item = envoy.json_request("GET", "/v1/inventory/sku-1001",
                                               headers={"origin": "http://evil.example"})
    assert status == 200 and item["sku"] == "sku-1001", item
    assert_no_cors(headers)
    assert [r["method"] for r in services.records(mark)] == [GET_ITEM]


def test_requests_without_an_origin_are_unchanged(envoy_factory):
    envoy = cors_envoy(envoy_factory)
    status, headers, _ = envoy.json_request("GET", "/v1/inventory/sku-1001")
    assert status == 200
    assert_no_cors(headers)
    assert "vary" not in headers, headers


def test_the_controls_are_accepted_by_envoy_and_refused_when_wrong(envoy_factory, tmp_path):
    """A bad option refuses the config naming the field (Envoy does not start)."""
    config = harness.base_plugin_config(json2grpc={"rest": {"success_status": {"flashsale.v1.Orders.Nope": 201}}})
    path = tmp_path / "bad.yaml"
    harness.render(harness.TEMPLATE, path, config, envoy_factory.services, wasm=harness.WASM)
    ok, output = harness.validate(path)
    assert not ok, output
    assert "json2grpc.rest.success_status.flashsale.v1.Orders.Nope" in output, output
