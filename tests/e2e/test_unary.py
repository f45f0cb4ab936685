"""Unary JSON <-> gRPC through Envoy with the json2grpc filter (first batch).

The services keep state for the whole session: reservations use items with plenty of stock
(sku-1002: 25, sku-3001: 12) and out-of-stock cases ask for far more than exists.
"""

import json

import pytest

import harness

RESERVE = "/flashsale.v1.Inventory/Reserve"
GET_ITEM = "/flashsale.v1.Inventory/GetItem"
CREATE_ORDER = "/flashsale.v1.Orders/CreateOrder"


def assert_json_response(headers):
    """A transcoded response: JSON, no gRPC headers left for the JSON client."""
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert "grpc-status" not in headers, headers
    assert "grpc-message" not in headers, headers


def assert_status_body(body, code):
    """A google.rpc.Status as JSON."""
    assert isinstance(body, dict), body
    assert body.get("code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body


def test_filter_vm_is_loaded(envoy):
    stats = envoy.wasm_stats()
    active = {k: v for k, v in stats.items() if k.startswith("wasm.envoy.wasm.runtime.v8.")}
    assert active.get("wasm.envoy.wasm.runtime.v8.active", 0) >= 1, stats


def test_post_reserve(envoy, services):
    mark = services.mark()
    status, headers, body = envoy.json_request(
        "POST", "/v1/inventory/sku-1002:reserve", {"quantity": 2, "customerId": "cust-e2e"})
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body["sku"] == "sku-1002"
    assert body["quantity"] == 2
    assert body["reservationId"].startswith("res-")
    assert "expiresAt" in body

    received = services.records(mark)
    assert [r["method"] for r in received] == [RESERVE], received
    assert received[0]["message"] == {"sku": "sku-1002", "quantity": 2, "customer_id": "cust-e2e"}
    metadata = received[0]["metadata"]
    assert metadata.get("x-envoy-original-path") == "/v1/inventory/sku-1002:reserve", metadata
    assert metadata.get("x-envoy-original-method") == "POST", metadata
    assert metadata.get("content-type", "").startswith("application/grpc"), metadata


def test_post_create_order_body_star(envoy, services):
    mark = services.mark()
    order = {
        "customerId": "cust-e2e",
        "items": [{"sku": "sku-3001", "quantity": 1}, {"sku": "sku-1002", "quantity": 2}],
        "shippingAddress": {"line1": "1 Main St", "city": "Springfield", "countryCode": "US"},
        "note": "ring twice",
    }
    status, headers, body = envoy.json_request("POST", "/v1/orders", order)
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body["orderId"].startswith("ord-")
    assert body["customerId"] == "cust-e2e"
    assert body["status"] == "PENDING"
    assert [i["sku"] for i in body["items"]] == ["sku-3001", "sku-1002"]
    assert body["version"] == "1"  # int64 prints as a JSON string

    received = services.records(mark)
    assert [r["method"] for r in received] == [CREATE_ORDER], received
    assert received[0]["message"] == {
        "customer_id": "cust-e2e",
        "items": [{"sku": "sku-3001", "quantity": 1}, {"sku": "sku-1002", "quantity": 2}],
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "country_code": "US"},
        "note": "ring twice",
    }


def test_get_item_callout(envoy, services):
    """A GET has no body: the filter calls Inventory/GetItem itself."""
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v1/inventory/sku-3002")
    assert status == 200, (status, headers, body)
    assert_json_response(headers)
    assert body["sku"] == "sku-3002"
    assert body["name"] == "4K monitor"
    assert body["price"] == {"currencyCode": "USD", "units": "329", "nanos": 990000000}
    assert body["status"] in ("IN_STOCK", "LOW_STOCK")
    received = services.records(mark)
    assert [(r["method"], r["message"]) for r in received] == [(GET_ITEM, {"sku": "sku-3002"})]


def test_get_unknown_sku_is_404_json(envoy):
    status, headers, body = envoy.json_request("GET", "/v1/inventory/sku-nope")
    assert status == 404, (status, headers, body)
    assert_json_response(headers)
    assert_status_body(body, 5)
    assert "sku-nope" in body["message"]


def test_out_of_stock_is_400_with_details(envoy):
    status, headers, body = envoy.json_request(
        "POST", "/v1/inventory/sku-1002:reserve", {"quantity": 100000, "customerId": "cust-e2e"})
    assert status == 400, (status, headers, body)
    assert_json_response(headers)
    assert_status_body(body, 9)  # FAILED_PRECONDITION
    assert body["message"] == "out of stock"
    types = [d.get("@type") for d in body.get("details", [])]
    assert "type.googleapis.com/google.rpc.PreconditionFailure" in types, body
    failure = next(d for d in body["details"]
                   if d["@type"] == "type.googleapis.com/google.rpc.PreconditionFailure")
    assert failure["violations"][0]["subject"] == "sku-1002", failure


def test_malformed_json_is_400_and_not_forwarded(envoy, services):
    mark = services.mark()
    status, headers, data = envoy.request(
        "POST", "/v1/inventory/sku-1002:reserve", b'{"quantity": 1, "customerId": ',
        {"content-type": "application/json"})
    assert status == 400, (status, headers, data)
    assert_json_response(headers)
    body = json.loads(data)
    assert_status_body(body, 3)  # INVALID_ARGUMENT
    assert services.records(mark, settle=0.5) == []


def test_native_grpc_passes_through(envoy, services):
    """A real gRPC client (HTTP/2, application/grpc) through the same listener is untouched."""
    mark = services.mark()
    request_class = harness.message_class("flashsale.v1.GetItemRequest")
    item = envoy.grpc_unary(GET_ITEM, request_class(sku="sku-1001"), "flashsale.v1.Item")
    assert item.sku == "sku-1001"
    assert item.name == "Noise-cancelling headphones"
    received = services.records(mark)
    assert [(r["method"], r["message"]) for r in received] == [(GET_ITEM, {"sku": "sku-1001"})]
    assert "x-envoy-original-path" not in received[0]["metadata"]


def test_unknown_path_passes_through(envoy, services):
    """No template matches: the filter leaves the request alone and Envoy's router answers
    404 (no route for /v2/...)."""
    mark = services.mark()
    status, headers, data = envoy.request("GET", "/v2/nothing/here")
    assert status == 404, (status, headers, data)
    assert not headers.get("content-type", "").startswith("application/json"), (headers, data)
    assert services.records(mark) == []


def test_unknown_path_rejected_with_option(envoy_factory, services):
    envoy = envoy_factory.json2grpc(request_validation_options={"reject_unknown_method": True})
    mark = services.mark()
    status, headers, body = envoy.json_request("GET", "/v2/nothing/here")
    assert status == 404, (status, headers, body)
    assert_json_response(headers)
    assert_status_body(body, 5)
    assert services.records(mark) == []


@pytest.mark.parametrize("path", ["/v1/inventory/sku-1001", "/v1/orders/ord-none"])
def test_known_paths_still_work_with_reject_unknown_method(envoy_factory, path):
    envoy = envoy_factory.json2grpc(request_validation_options={"reject_unknown_method": True})
    status, headers, body = envoy.json_request("GET", path)
    assert status in (200, 404), (status, headers, body)
    assert_json_response(headers)
