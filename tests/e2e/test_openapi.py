"""The OpenAPI document (issue 13): valid OpenAPI 3.1 (openapi-spec-validator) for the example
API and for the unit tests' schemas (transcode_test.proto: every mapping shape;
openapi_test.proto: comments, field behaviors, what OpenAPI cannot express) under the print
options that change it, and the document the filter serves at json2grpc.openapi.path is the one
`json2grpc-tool openapi` prints for the same config. schemathesis attacks the served one in
test_schemathesis.py.
"""

import json
import subprocess

import pytest
from openapi_spec_validator import validate

import harness

TESTDATA = harness.REPO / "filter" / "testdata"
OPENAPI_PATH = "/.well-known/openapi.json"


def tool_openapi(descriptor, services, sets=()):
    harness.require_file(harness.TOOL, "run `make examples`")
    args = [str(harness.TOOL), "openapi", "--descriptor", str(descriptor)]
    for s in services:
        args += ["--service", s]
    for s in sets:
        args += ["--set", s]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def descriptors(tmp_path_factory):
    """name -> (descriptor set path, services)."""
    d = tmp_path_factory.mktemp("openapi")

    def build(proto, source_info):
        out = d / proto.replace(".proto", ".pb")
        args = [str(harness.TOOL), "descriptor", "-I", str(TESTDATA), "-I", str(harness.PROTO_DIR),
                "-o", str(out), proto]
        if source_info:
            args.insert(2, "--include_source_info")
        subprocess.run(args, check=True, capture_output=True, timeout=60)
        return out

    harness.require_file(harness.TOOL, "run `make examples`")
    return {
        "flashsale": (harness.DESCRIPTOR, harness.SERVICES),
        "transcode_test": (build("transcode_test.proto", False), ["test.v1.Things", "test.v1.Other"]),
        "openapi_test": (build("openapi_test.proto", True), ["doc.v1.Library"]),
    }


EVERY_PRINT_OPTION = ('print_options={"preserve_proto_field_names": true, "always_print_enums_as_ints": true, '
                      '"always_print_primitive_fields": true, "stream_newline_delimited": true}')
CASES = [
    ("flashsale", []),
    ("flashsale", [EVERY_PRINT_OPTION]),
    ("flashsale", ['print_options={"stream_sse_style_delimited": true}', "auto_mapping=true"]),
    ("transcode_test", ["auto_mapping=true"]),
    ("transcode_test", [EVERY_PRINT_OPTION, 'ignored_query_parameters=["page_token"]']),
    ("openapi_test", []),
]


def operations(doc):
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in methods]


@pytest.mark.parametrize("name,sets", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_documents_are_valid_openapi_3_1(descriptors, name, sets):
    descriptor, services = descriptors[name]
    doc = tool_openapi(descriptor, services, sets)
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    ops = operations(doc)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids)), "operationIds are unique"
    for path, method, op in ops:
        # Every {name} of the path is a path parameter of the operation, and only those.
        in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert in_path == set(harness_placeholders(path)), (method, path)
        # Errors are google.rpc.Status with json2grpc's statuses; no catch-all.
        assert "default" not in op["responses"], (method, path)
        assert {"400", "404", "500", "503"} <= set(op["responses"]), (method, path)


def harness_placeholders(path):
    out, depth, name = [], 0, ""
    for c in path:
        if c == "{":
            depth, name = 1, ""
        elif c == "}" and depth:
            out.append(name)
            depth = 0
        elif depth:
            name += c
    return out


def test_the_example_api_in_numbers(descriptors):
    descriptor, services = descriptors["flashsale"]
    doc = tool_openapi(descriptor, services)
    by_id = {op["operationId"]: (m, p) for p, m, op in operations(doc)}
    # 12 methods, Watch bound twice (GET and POST).
    assert len(by_id) == 13, sorted(by_id)
    assert by_id["flashsale.v1.Inventory.Reserve"] == ("post", "/v1/inventory/{sku}:reserve")
    # GetOrder's /v1/orders/{order_id} came first: one path to OpenAPI, so UpdateOrder's
    # {order.order_id} is written with GetOrder's parameter name, and says which field it sets.
    assert by_id["flashsale.v1.Orders.UpdateOrder"] == ("patch", "/v1/orders/{order_id}")
    update = doc["paths"]["/v1/orders/{order_id}"]["patch"]["parameters"][0]
    assert (update["name"], update["x-json2grpc-field"]) == ("order_id", "order.order_id")
    assert by_id["flashsale.v1.Inventory.Watch_2"] == ("post", "/v1/inventory:watch")
    export = doc["paths"]["/v1/inventory:export"]["get"]["responses"]["200"]["content"]
    assert list(export) == ["*/*"], "HttpBody: the service's content type"
    # The descriptor set carries the protos' comments (make descriptors keeps source info).
    assert doc["paths"]["/v1/inventory/{sku}"]["get"]["description"] == "Reads one item."


def test_the_served_document_is_the_tools(envoy_factory, descriptors):
    options = {"preserve_proto_field_names": True, "stream_newline_delimited": True}
    envoy = envoy_factory.json2grpc(print_options=options, json2grpc={"openapi": {"path": OPENAPI_PATH}})
    status, headers, body = envoy.request("GET", OPENAPI_PATH)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    served = json.loads(body)
    descriptor, services = descriptors["flashsale"]
    printed = tool_openapi(descriptor, services, [
        "convert_grpc_status=true",
        "print_options=" + json.dumps(options),
        "json2grpc=" + json.dumps({"openapi": {"path": OPENAPI_PATH}}),
    ])
    assert served == printed
    # HEAD: the same answer without a body; a query string does not matter; POST is a request
    # like any other (no binding here: passed through to the route, which has none).
    status, headers, body = envoy.request("HEAD", OPENAPI_PATH + "?x=1")
    assert (status, body) == (200, b"")
    status, _, _ = envoy.request("POST", OPENAPI_PATH, body={})
    assert status == 404
