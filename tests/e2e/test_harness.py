"""The harness itself: the Envoy configs are valid and the native oracle transcodes."""

import pytest

import harness

COMPOSE_WASM = "/etc/envoy/json2grpc.wasm"


@pytest.mark.parametrize("variant", ["local", "compose", "native"])
def test_envoy_config_validates(variant, services, tmp_path):
    """envoy/envoy.yaml.in rendered for loopback and for docker-compose, and the native
    transcoder template, pass `envoy --mode validate` (which loads the .wasm and runs the
    filter's on_configure with the plugin config)."""
    config = harness.base_plugin_config()
    out = tmp_path / f"{variant}.yaml"
    if variant == "native":
        harness.render(harness.NATIVE_TEMPLATE, out, config, services,
                       descriptor=harness.DESCRIPTOR)
    else:
        harness.require_file(harness.WASM, "`make e2e` builds it first: run `make wasm`")
        if variant == "local":
            harness.render(harness.TEMPLATE, out, config, services, wasm=harness.WASM)
        else:
            # The compose rendering: hostnames and the in-container module path; validation
            # needs the module, so the path is pointed at the local build.
            harness.render(harness.TEMPLATE, out, config, services, wasm=COMPOSE_WASM,
                           extra_args=["--listen-address", "0.0.0.0", "--keep-paths",
                                       "--inventory", "inventory:50051",
                                       "--orders", "orders:50051"])
            text = out.read_text()
            assert "type: STRICT_DNS" in text and "address: inventory," in text
            out.write_text(text.replace(COMPOSE_WASM, str(harness.WASM)))
    ok, output = harness.validate(out)
    assert ok, f"envoy --mode validate -c {out} failed:\n{output}"


def test_native_transcoder_oracle_works(native_envoy, services):
    """The native filter transcodes a REST reservation: proves services, routes and clusters."""
    mark = services.mark()
    status, headers, body = native_envoy.json_request(
        "POST", "/v1/inventory/sku-1002:reserve", {"quantity": 1, "customerId": "cust-oracle"})
    assert status == 200, (status, headers, body)
    assert headers["content-type"].startswith("application/json")
    assert body["sku"] == "sku-1002"
    assert body["quantity"] == 1
    assert body["reservationId"].startswith("res-")
    received = services.records(mark, method="/flashsale.v1.Inventory/Reserve")
    assert [r["message"] for r in received] == [
        {"sku": "sku-1002", "quantity": 1, "customer_id": "cust-oracle"}]
    assert received[0]["metadata"]["x-envoy-original-path"] == "/v1/inventory/sku-1002:reserve"
