"""Bad input through the real Envoy: every way a client (or a broken upstream) can send
something json2grpc must refuse, and what the client gets.

For each rejected request the test checks the HTTP status, the JSON `google.rpc.Status` body
(`code`, `message`, `details`), `content-type: application/json`, the filter's error counters,
and that **no upstream received anything** (the flash-sale services' and grpc_chaos' record
files). Where Envoy answers by itself (413, 431) the body is Envoy's text: the filter never saw
the request; the test asserts that and that nothing went upstream.

Three Envoys:
- `envoy`: the default plugin config, flash-sale services behind it;
- `strict`: `max_request_body_size` 256 KiB, `max_response_body_size` 4096,
  `reject_unknown_method`, a 16 MiB listener buffer limit, the chaos upstream behind the `inventory` cluster (orders is real);
- `probe`: a test proto (PROBE_PROTO below) with a field of every kind the flash-sale protos
  lack (uint32, uint64, bytes, bool, Duration, FieldMask, wrappers, maps, floats), served
  by grpc_chaos, whose record file holds the exact protobuf bytes the filter produced.

Decisions and observations documented here:
- Enums are open (proto3): an unknown enum *number* within int32 is accepted and reaches the
  service unchanged (99, -5); a number outside int32 and an unknown *name* are 400s.
- A stray body on a bodyless rule (GET) is read, but a path variable keeps its value.
- The request content-type is not checked: `text/plain` (or none) with a JSON body is
  transcoded like `application/json`; only `application/grpc` passes through.
- An unbound method on a routed path passes through (as Envoy's transcoder) unless
  `reject_unknown_method`: then a 404 JSON error.
- A FieldMask string is checked for its JSON syntax only (an `_` is an error); a path naming
  no field reaches the service, which answers 400 with a BadRequest detail.
- Upstream side, unary: test_errors.py covers every grpc_chaos scenario in three modes
  (truncated frame, compressed without grpc-encoding, garbage message, oversized frame,
  reset mid-stream, …). Here the same scenarios on a **server stream** and
  `max_response_body_size`.

Last test: every Envoy of this module still has all its Wasm VMs and serves a normal request on
each worker.
"""

import base64
import http.client
import json
import select
import socket
import time

import pytest

import harness
from harness import send, status_body

RESERVE = "/flashsale.v1.Inventory/Reserve"
GET_ITEM = "/flashsale.v1.Inventory/GetItem"
LIST_ITEMS = "/flashsale.v1.Inventory/ListItems"
CREATE_ORDER = "/flashsale.v1.Orders/CreateOrder"
UPDATE_ORDER = "/flashsale.v1.Orders/UpdateOrder"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
CHAOS_HEADERS = ["x-chaos", "x-chaos-delay-ms", "x-chaos-size", "x-chaos-count",
                 "x-chaos-message-b64"]
JSON = {"content-type": "application/json"}
VM_DEATH_MARKERS = ("panicked at", "Uncaught", "wasm trap", "Wasm VM failed",
                    "Function: proxy_on")
ERRORS = r"^wasmcustom\.json2grpc\.errors\."

PROBE_PROTO = """
syntax = "proto3";
package probe.v1;
import "google/api/annotations.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
message Nested { Nested child = 1; string s = 2; }
message Scalars {
  int32 i32 = 1; uint32 u32 = 2; int64 i64 = 3; uint64 u64 = 4; sint32 s32 = 5;
  fixed64 f64 = 6; bool flag = 7; string text = 8; bytes data = 9; Color color = 10;
  float f = 11; double d = 12; google.protobuf.Duration dur = 13;
  google.protobuf.Timestamp ts = 14; google.protobuf.FieldMask mask = 15;
  google.protobuf.UInt32Value wu32 = 16; Nested nested = 17; repeated int32 r = 18;
  map<string, int32> counts = 19;
}
service Probe {
  rpc Post(Scalars) returns (google.protobuf.Empty) {
    option (google.api.http) = { post: "/probe" body: "*" };
  }
  rpc Get(Scalars) returns (google.protobuf.Empty) {
    option (google.api.http) = { get: "/probe/{text}" };
  }
}
"""

# Every Envoy used here: name -> (envoy, Wasm stats at first use, normal request check).
USED = {}


def used(envoy, check):
    if envoy.name not in USED:
        USED[envoy.name] = (envoy, envoy.wasm_stats(), check)
    return envoy


# ---- fixtures -----------------------------------------------------------------------------------

class Upstreams:
    """The flash-sale services and grpc_chaos together: mark() / records(mark)."""

    def __init__(self, services, chaos):
        self.parts = (services, chaos)

    def mark(self):
        return [p.mark() for p in self.parts]

    def records(self, mark, settle=0.2):
        time.sleep(settle)
        return [r for p, m in zip(self.parts, mark) for r in p.records(m, settle=0)]


@pytest.fixture
def upstreams(services, chaos):
    return Upstreams(services, chaos)


def check_default(envoy):
    status, _, data, _ = send(envoy, "GET", "/v1/inventory/sku-1001")
    assert status == 200 and json.loads(data)["sku"] == "sku-1001", (status, data)


def check_chaos_inventory(envoy):
    status, _, data, _ = send(envoy, "GET", "/v1/inventory/sku-1", headers={"x-chaos": "ok"})
    assert (status, data) == (200, b"{}"), (status, data)
    status, _, data, _ = send(envoy, "GET", "/v1/customers/cust-alive/orders")
    assert (status, data) == (200, b"{}"), (status, data)


def check_probe(envoy):
    status, _, data, _ = send(envoy, "GET", "/probe/alive")
    assert (status, data) == (200, b"{}"), (status, data)


@pytest.fixture
def default(envoy):
    return used(envoy, check_default)


@pytest.fixture
def strict(envoy_factory, chaos):
    return used(envoy_factory.json2grpc(
        inventory=chaos.address, max_request_body_size=256 << 10, max_response_body_size=4096,
        request_validation_options={"reject_unknown_method": True},
        json2grpc={"callout": {"forward_headers": CHAOS_HEADERS}},
        # Envoy reads up to its buffer limit per read: with the default 1 MiB, one read of a
        # fast chunked upload can carry the buffer past 1 MiB before the filter sees 256 KiB,
        # and Envoy's text 413 answers first. A limit far above the filter's keeps its JSON 413.
        listener_buffer_bytes=16 << 20), check_chaos_inventory)


@pytest.fixture(scope="module")
def probe_setup(services, chaos, tmp_path_factory):
    """(Envoy, message class of probe.v1.Scalars): the probe service behind grpc_chaos."""
    work = tmp_path_factory.mktemp("probe")
    (work / "probe" / "v1").mkdir(parents=True)
    (work / "probe" / "v1" / "probe.proto").write_text(PROBE_PROTO)
    try:
        fds_bytes = harness.build_descriptor(work, ["probe/v1/probe.proto"], work / "probe.pb")
        config = {"proto_descriptor_bin": base64.b64encode(fds_bytes).decode(),
                  "services": ["probe.v1.Probe"]}
        path = harness.render(harness.TEMPLATE, work / "probe.yaml", config, services,
                              wasm=harness.WASM, inventory=chaos.address)
        # "/probe" also covers the gRPC paths /probe.v1.Probe/...
        harness.add_routes(path, [("/probe", "inventory")])
        envoy = harness.Envoy("probe", path, work)
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)

    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    pool = descriptor_pool.DescriptorPool()
    fds = descriptor_pb2.FileDescriptorSet.FromString(fds_bytes)
    pending = list(fds.file)
    while pending:
        f = next(f for f in pending if all(d not in {p.name for p in pending}
                                           for d in f.dependency))
        pool.Add(f)
        pending.remove(f)
    scalars = message_factory.GetMessageClass(pool.FindMessageTypeByName("probe.v1.Scalars"))
    yield envoy, scalars
    envoy.stop()


@pytest.fixture
def probe(probe_setup):
    harness._used.append(probe_setup[0])
    return used(probe_setup[0], check_probe)


@pytest.fixture
def scalars(probe_setup):
    return probe_setup[1]


# ---- helpers -------------------------------------------------------------------------------------

def reject(envoy, upstreams, method, path, body=None, headers=None, *, status=400, code=3,
           message=None, counter="invalid_request"):
    """Sends a request the filter must refuse: JSON error, counters, nothing upstream."""
    mark = upstreams.mark()
    before = envoy.stats(ERRORS)
    got, rheaders, data, complete = send(envoy, method, path, body, headers)
    assert complete and got == status, (got, rheaders, data)
    err = status_body(rheaders, data)
    assert err["code"] == code, err
    if message is not None:
        assert message in err["message"], err
    assert int(rheaders["content-length"]) == len(data), rheaders
    assert "grpc-status" not in rheaders, rheaders
    after = envoy.stats(ERRORS)
    prefix = "wasmcustom.json2grpc.errors."
    for stat in (counter, f"status_{status}"):
        assert after[prefix + stat] - before[prefix + stat] == 1, (stat, before, after)
    assert upstreams.records(mark) == [], "a rejected request reached an upstream"
    return err


def accept(envoy, upstreams, method, path, body=None, headers=None):
    """Sends a request that must reach exactly one upstream: (status, body, [record])."""
    mark = upstreams.mark()
    got, rheaders, data, complete = send(envoy, method, path, body, headers)
    assert complete, (got, rheaders, data)
    records = upstreams.records(mark)
    assert len(records) == 1, records
    return got, rheaders, data, records[0]


def probe_message(record, scalars):
    """The probe.v1.Scalars grpc_chaos received (it records raw message bytes)."""
    assert record["path"].startswith("/probe.v1.Probe/"), record
    [message] = record["messages"]
    return scalars.FromString(base64.b64decode(message))


def probe_reject(probe, upstreams, body, message, **kw):
    return reject(probe, upstreams, "POST", "/probe", body, JSON, message=message, **kw)


# ---- 1-4. JSON syntax ----------------------------------------------------------------------------

@pytest.mark.parametrize("body,message", [
    ("{'customerId': 'a'}", "expected a string key at byte 1"),
    ('{"customerId": "a",}', "expected a string key"),
    ('{customerId: "a"}', "expected a string key at byte 1"),
    ('{"customerId" "a"}', "invalid JSON body"),
    ('{"items": [{"sku": "s", "quantity": 01}]}', "invalid JSON body"),
    ('{"items": [{"sku": "s", "quantity": NaN}]}', "invalid JSON body"),
    ('{"note": "a" /* comment */}', "invalid JSON body"),
    ('{"note": "tab\tinside"}', "invalid JSON body"),
    ('{"note": "\\x41"}', "invalid JSON body"),
], ids=["single-quotes", "trailing-comma", "bare-key", "missing-colon", "leading-zero",
        "nan-literal", "comment", "raw-control-char", "bad-escape"])
def test_malformed_json(default, upstreams, body, message):
    reject(default, upstreams, "POST", "/v1/orders", body, JSON, message=message)


@pytest.mark.parametrize("cut", [1, 14, 15, 26, 40, 58])
def test_truncated_json(default, upstreams, cut):
    full = '{"customerId": "cust-x", "items": [{"sku": "sku-3001", "quantity": 1}]}'
    reject(default, upstreams, "POST", "/v1/orders", full[:cut], JSON,
           message="invalid JSON body")


@pytest.mark.parametrize("body,message", [
    ('{"customerId": "a"} x', "trailing characters"),
    ('{}{}', "trailing characters"),
    ('{}]', "trailing characters"),
    ('{}\x00', "trailing characters"),
])
def test_trailing_garbage(default, upstreams, body, message):
    reject(default, upstreams, "POST", "/v1/orders", body, JSON, message=message)


@pytest.mark.parametrize("body", ["[]", '"order"', "5", "null", "true"])
def test_top_level_is_not_an_object(default, upstreams, body):
    reject(default, upstreams, "POST", "/v1/orders", body, JSON,
           message="expected an object at byte 0")


def test_empty_body_is_the_empty_message(default, upstreams):
    """Not an error: a POST with an empty body is the empty request message (as Envoy's
    transcoder); the service decides (CreateOrder wants at least one item)."""
    status, headers, data, record = accept(default, upstreams, "POST", "/v1/orders", b"", JSON)
    assert record["method"] == CREATE_ORDER and record["message"] == {}, record
    assert status == 400 and status_body(headers, data)["details"][0]["@type"] == BAD_REQUEST


# ---- 5-11. wrong JSON types per field kind --------------------------------------------------------

@pytest.mark.parametrize("kind,method,path,body,message", [
    ("string", "POST", "/v1/orders", {"customerId": 5}, 'field "customerId": expected a string'),
    ("string", "POST", "/v1/orders", {"customerId": ["a"]}, "expected a string"),
    ("int", "POST", "/v1/inventory/sku-1001:reserve", {"quantity": "abc"},
     'field "quantity": invalid digit'),
    ("int", "POST", "/v1/inventory/sku-1001:reserve", {"quantity": True}, '"quantity"'),
    ("int", "POST", "/v1/inventory/sku-1001:reserve", {"quantity": 1.5},
     'field "quantity": expected integer value'),
    ("int", "POST", "/v1/inventory/sku-1001:reserve", {"quantity": {}}, "invalid JSON body"),
    ("enum", "PATCH", "/v1/orders/ord-x", {"status": True}, "invalid JSON body"),
    ("enum", "PATCH", "/v1/orders/ord-x", {"status": {"name": "PENDING"}}, "invalid JSON body"),
    ("enum", "PATCH", "/v1/orders/ord-x", {"status": 1.5}, "invalid JSON body"),
    ("message", "POST", "/v1/orders", {"shippingAddress": "Main St"}, "expected an object"),
    ("message", "POST", "/v1/orders", {"shippingAddress": []}, "expected an object"),
    ("message", "POST", "/v1/orders", {"items": [5]}, "expected an object"),
    ("repeated", "POST", "/v1/orders", {"items": {"sku": "sku-3001"}}, "expected an array"),
    ("repeated", "POST", "/v1/orders", {"items": "sku-3001"}, "expected an array"),
    ("repeated", "POST", "/v1/inventory:watch", {"skus": "sku-1001"}, "expected an array"),
    ("repeated", "POST", "/v1/inventory:watch", {"skus": [1]}, "expected a string"),
    ("repeated", "POST", "/v1/inventory:watch", {"skus": [None]}, "null"),
    ("timestamp", "PATCH", "/v1/orders/ord-x", {"createdAt": 5},
     "expected a string for google.protobuf.Timestamp"),
])
def test_wrong_json_type(default, upstreams, kind, method, path, body, message):
    reject(default, upstreams, method, path, json.dumps(body), JSON, message=message)


@pytest.mark.parametrize("body,message", [
    ({"flag": "true"}, 'field "flag": expected true or false'),
    ({"flag": 1}, 'field "flag": expected true or false'),
    ({"counts": []}, "expected an object"),
    ({"counts": {"a": "x"}}, 'field "counts"'),
    ({"counts": {"a": 1.5}}, 'field "counts": expected integer value'),
    ({"counts": {"a": None}}, "null is not a valid value"),
    ({"r": {}}, "expected an array"),
    ({"r": [1, "x"]}, 'field "r"'),
    ({"nested": 5}, "expected an object"),
    ({"d": "abc"}, 'field "d": invalid float literal'),
    ({"f": 1e39}, 'field "f": float value out of range'),
    ({"wu32": "x"}, "invalid digit"),
    ({"data": 5}, 'field "data": expected a base64 string'),
], ids=["bool-string", "bool-number", "map-array", "map-value-string", "map-value-float",
        "map-value-null", "repeated-object", "repeated-element", "message-number",
        "double-string", "float-overflow", "wrapper-string", "bytes-number"])
def test_wrong_json_type_probe(probe, upstreams, body, message):
    probe_reject(probe, upstreams, json.dumps(body), message)


# ---- 12-16. integer overflow per type --------------------------------------------------------------

INT_CASES = [
    # (field, JSON text of the value, accepted value or None for a 400)
    ("i32", "2147483647", 2147483647), ("i32", "-2147483648", -2147483648),
    ("i32", "2147483648", None), ("i32", "-2147483649", None), ("i32", '"2147483648"', None),
    ("i32", "1e10", None), ("i32", "3e9", None), ("i32", "1e2", 100), ("i32", "1.0", 1),
    ("s32", "2147483648", None),
    ("u32", "4294967295", 4294967295), ("u32", "4294967296", None), ("u32", "-1", None),
    ("u32", "4.3e9", None), ("wu32", "4294967296", None),
    ("i64", '"9223372036854775807"', 9223372036854775807),
    ("i64", "9223372036854775807", 9223372036854775807),
    ("i64", '"9223372036854775808"', None), ("i64", "9223372036854775808", None),
    ("i64", '"-9223372036854775809"', None), ("i64", "-9223372036854775809", None),
    ("i64", "1e19", None),
    ("u64", '"18446744073709551615"', 18446744073709551615),
    ("u64", "18446744073709551615", 18446744073709551615),
    ("u64", '"18446744073709551616"', None), ("u64", "18446744073709551616", None),
    ("u64", "-1", None), ("u64", '"-1"', None), ("u64", "1e20", None),
    ("f64", '"18446744073709551616"', None),
]


@pytest.mark.parametrize("field,text,value", INT_CASES,
                         ids=[f"{f}={t}" for f, t, _ in INT_CASES])
def test_integer_range(probe, upstreams, scalars, field, text, value):
    body = '{"%s": %s}' % (field, text)
    if value is None:
        probe_reject(probe, upstreams, body, f'"{field if field != "wu32" else "value"}"')
        return
    status, _, data, record = accept(probe, upstreams, "POST", "/probe", body, JSON)
    assert (status, data) == (200, b"{}"), (status, data)
    assert getattr(probe_message(record, scalars), field) == value


# A number with a fraction or an exponent is read exactly, not through a double (which would
# round 2^63 - 1 up to 2^63 and 2^64 + 1 down into range): exact in-range values are accepted,
# and anything past the type's range is a 400, never clamped.
@pytest.mark.parametrize("field,text,value", [
    ("i64", "9223372036854775807.0", 9223372036854775807),
    ("i64", "-9.223372036854775808e18", -9223372036854775808),
    ("u64", "1.8446744073709551615e19", 18446744073709551615),
    ("i64", "9.223372036854775808e18", None),
    ("u64", "1.8446744073709552e19", None),
    ("i64", "1.5", None),
])
def test_integers_in_float_form_are_exact(probe, upstreams, scalars, field, text, value):
    body = '{"%s": %s}' % (field, text)
    if value is None:
        probe_reject(probe, upstreams, body, f'"{field}"')
        return
    status, _, data, record = accept(probe, upstreams, "POST", "/probe", body, JSON)
    assert (status, data) == (200, b"{}"), (status, data)
    assert getattr(probe_message(record, scalars), field) == value


def test_int64_overflow_in_float_form_flash_sale(default, upstreams):
    # 2^63 written as a float (a double would make it i64::MAX and the service would get it).
    reject(default, upstreams, "POST", "/v1/orders",
           '{"customerId": "c", "items": [{"sku": "sku-3001", "quantity": 1, '
           '"unitPrice": {"units": 9.223372036854775808e18}}]}', JSON, message='"units"')


@pytest.mark.parametrize("query,message", [
    ("i32=2147483648", "out of range for int32"),
    ("u32=4294967296", "out of range for uint32"),
    ("u32=-1", "out of range for uint32"),
    ("i64=9223372036854775808", "out of range for int64"),
    ("u64=18446744073709551616", "out of range for uint64"),
    ("wu32=4294967296", "out of range for uint32"),
    ("counts%5Ba%5D=x", 'query parameter "counts[a]"'),
    ("flag=yes", "expected true or false"),
])
def test_integer_and_scalar_query_values(probe, upstreams, query, message):
    reject(probe, upstreams, "GET", "/probe/t?" + query, message=message)


def test_int32_overflow_in_flash_sale_fields(default, upstreams):
    reject(default, upstreams, "POST", "/v1/inventory/sku-1001:reserve",
           '{"quantity": 2147483648}', JSON, message='field "quantity": out of range')
    reject(default, upstreams, "PATCH", "/v1/orders/ord-x", '{"version": "9223372036854775808"}',
           JSON, message='field "version": number too large')
    reject(default, upstreams, "GET", "/v1/inventory?page_size=99999999999",
           message="out of range for int32")


# ---- 17-18. enums ---------------------------------------------------------------------------------

def test_unknown_enum_numbers_are_accepted(default, probe, upstreams, scalars):
    """proto3 enums are open: a number naming no value is kept and sent as is."""
    for number in (99, -5):
        _, _, data, record = accept(probe, upstreams, "POST", "/probe",
                                    '{"color": %d}' % number, JSON)
        assert probe_message(record, scalars).color == number and data == b"{}"
    _, _, data, record = accept(probe, upstreams, "GET", "/probe/t?color=99")
    assert probe_message(record, scalars).color == 99
    status, _, data, record = accept(default, upstreams, "GET", "/v1/inventory?status=99")
    assert (status, data) == (200, b"{}"), data
    assert record["message"] == {"status": 99} and record["method"] == LIST_ITEMS
    status, _, data, record = accept(default, upstreams, "PATCH",
                                     "/v1/orders/ord-none?update_mask=status", '{"status": 7}',
                                     JSON)
    assert record["message"]["order"] == {"order_id": "ord-none", "status": 7}, record
    assert status == 404


@pytest.mark.parametrize("method,path,body,message", [
    ("PATCH", "/v1/orders/ord-x", '{"status": "SHIPPED"}',
     '"SHIPPED" is not a value of enum flashsale.v1.OrderStatus'),
    ("PATCH", "/v1/orders/ord-x", '{"status": "pending"}', '"pending" is not a value'),
    ("PATCH", "/v1/orders/ord-x", '{"status": 2147483648}', 'field "status": out of range'),
    ("GET", "/v1/inventory?status=BOGUS", None,
     'query parameter "status": "BOGUS" is not a value of enum flashsale.v1.ItemStatus'),
    ("GET", "/v1/inventory?status=sold_out", None, '"sold_out" is not a value'),
    ("GET", "/v1/inventory?status=", None, "is not a value"),
])
def test_unknown_enum_names(default, upstreams, method, path, body, message):
    reject(default, upstreams, method, path, body, JSON if body else None, message=message)


# ---- 19. bytes / base64 -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["!!!", "a", "YQ=x", "Y Q==", "\u00e9\u00e9"])
def test_invalid_base64(probe, upstreams, value):
    """The flash-sale protos have no bytes field: the probe proto's `data` (bytes)."""
    probe_reject(probe, upstreams, json.dumps({"data": value}), 'field "data": invalid base64')


def test_invalid_base64_query(probe, upstreams):
    reject(probe, upstreams, "GET", "/probe/t?data=%21%21", message='"!!" is not valid base64')


@pytest.mark.parametrize("value,raw", [("YQ", b"a"), ("YQ==", b"a"), ("-_8=", b"\xfb\xff"),
                                       ("+/8=", b"\xfb\xff")])
def test_base64_forms_accepted(probe, upstreams, scalars, value, raw):
    _, _, _, record = accept(probe, upstreams, "POST", "/probe", json.dumps({"data": value}), JSON)
    assert probe_message(record, scalars).data == raw


# ---- 20-22. invalid UTF-8 ------------------------------------------------------------------------

@pytest.mark.parametrize("body,message", [
    (b'{"customerId": "\xff\xfe"}', "invalid UTF-8"),
    (b'{"customerId": "\xc0\xaf"}', "invalid UTF-8"),  # overlong '/'
    (b'{"customerId": "\xed\xa0\x80"}', "invalid UTF-8"),  # an encoded surrogate
    (b'{"custo\xffmerId": "a"}', "invalid UTF-8"),
    (b'{"customerId": "\\ud800"}', "lone surrogate"),
    (b'{"customerId": "\\udc00\\ud800"}', "surrogate"),
])
def test_invalid_utf8_in_body(default, upstreams, body, message):
    reject(default, upstreams, "POST", "/v1/orders", body, JSON, message=message)


@pytest.mark.parametrize("path,message", [
    ("/v1/inventory/%FF", 'path variable "sku" is not valid UTF-8'),
    ("/v1/inventory/%C0%AF", 'path variable "sku" is not valid UTF-8'),
    ("/v1/orders/%ED%A0%80", 'path variable "order_id" is not valid UTF-8'),
    ("/v1/inventory/%E2%82:reserve", 'path variable "sku" is not valid UTF-8'),
])
def test_invalid_utf8_in_path(default, upstreams, path, message):
    body = '{"quantity": 1}' if path.endswith(":reserve") else None
    reject(default, upstreams, "POST" if body else "GET", path, body,
           JSON if body else None, message=message)


@pytest.mark.parametrize("query,message", [
    ("page_token=%FF", 'query parameter "page_token" is not valid UTF-8 once percent-decoded'),
    ("tags=ok&tags=%C0%AF", 'query parameter "tags" is not valid UTF-8'),
    ("%FF=1", 'query parameter "%FF" is not valid UTF-8'),
])
def test_invalid_utf8_in_query(default, upstreams, query, message):
    reject(default, upstreams, "GET", "/v1/inventory?" + query, message=message)


# ---- 23-25. Timestamp, Duration, FieldMask ---------------------------------------------------------

@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
                                   "2024-01-01T25:00:00Z", "2024-01-01 00:00:00",
                                   "10000-01-01T00:00:00Z", "2024-01-01T00:00:00"])
def test_invalid_timestamp(default, upstreams, value):
    reject(default, upstreams, "PATCH", "/v1/orders/ord-x", json.dumps({"createdAt": value}),
           JSON, message="timestamp")


@pytest.mark.parametrize("body,message", [
    ('{"dur": "1x"}', "google.protobuf.Duration"),
    ('{"dur": "1"}', "google.protobuf.Duration"),
    ('{"dur": "315576000001s"}', "out of range"),
    ('{"dur": 5}', "google.protobuf.Duration"),
    ('{"ts": "yesterday"}', "google.protobuf.Timestamp"),
    ('{"mask": "a,b_c"}', "google.protobuf.FieldMask"),
    ('{"mask": 5}', "google.protobuf.FieldMask"),
])
def test_invalid_well_known_strings(probe, upstreams, body, message):
    probe_reject(probe, upstreams, body, message)


@pytest.mark.parametrize("query,message", [
    ("dur=1x", "is not a valid google.protobuf.Duration"),
    ("ts=yesterday", "is not a valid google.protobuf.Timestamp"),
    ("mask=a,b_c", "is not a valid google.protobuf.FieldMask"),
])
def test_invalid_well_known_query(probe, upstreams, query, message):
    reject(probe, upstreams, "GET", "/probe/t?" + query, message=message)


def test_invalid_field_mask_query(default, upstreams):
    """update_mask of PATCH /v1/orders/{id}: the JSON form of a FieldMask is lowerCamelCase,
    so a `_` is a syntax error (400 from the filter); a well-formed path that names no field
    is the service's business (its 400 carries a BadRequest detail)."""
    reject(default, upstreams, "PATCH", "/v1/orders/ord-x?update_mask=customer_id",
           '{"note": "x"}', JSON,
           message='query parameter "update_mask": "customer_id" is not a valid '
                   'google.protobuf.FieldMask')
    status, _, data = default.request("POST", "/v1/orders", {
        "customerId": "cust-mask", "items": [{"sku": "sku-3001", "quantity": 1}]})
    assert status == 200, data
    order_id = json.loads(data)["orderId"]
    status, headers, data, record = accept(default, upstreams, "PATCH",
                                           f"/v1/orders/{order_id}?update_mask=no%20such",
                                           '{"note": "x"}', JSON)
    assert record["message"]["update_mask"] == "no such", record
    err = status_body(headers, data)
    assert status == 400 and err["details"][0]["@type"] == BAD_REQUEST, err


# ---- 26. nesting 10,000 deep ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["unknown-arrays", "unknown-objects", "known-recursive"])
def test_nesting_10000_deep(default, probe, upstreams, shape):
    depth = 10_000
    if shape == "unknown-arrays":  # an unknown field's value is skipped: depth still counts
        envoy, path, body = default, "/v1/orders", '{"zzz":' + "[" * depth + "]" * depth + "}"
    elif shape == "unknown-objects":
        envoy, path, body = default, "/v1/orders", '{"zzz":' + '{"a":' * depth + "1" + "}" * (depth + 1)
    else:  # probe.v1.Nested.child is recursive
        envoy, path, body = probe, "/probe", '{"nested":' + '{"child":' * depth + "{}" + "}" * (depth + 1)
    reject(envoy, upstreams, "POST", path, body, JSON, message="nested deeper than 100 levels")


def test_nesting_within_the_limit_is_accepted(probe, upstreams, scalars):
    depth = 90
    body = '{"nested":' + '{"child":' * depth + '{"s": "deep"}' + "}" * (depth + 1)
    _, _, data, record = accept(probe, upstreams, "POST", "/probe", body, JSON)
    node = probe_message(record, scalars).nested
    for _ in range(depth):
        node = node.child
    assert node.s == "deep" and data == b"{}"


# ---- 27. a 100 MB body ------------------------------------------------------------------------------

def send_large(envoy, path, total, chunked=False, timeout=60):
    """POSTs a `total`-byte JSON body (whitespace, then `{}`), stopping as soon as Envoy
    answers -> (status, headers, body, bytes sent)."""
    harness._used.append(envoy)
    sock = socket.create_connection(("127.0.0.1", envoy.port), timeout=timeout)
    head = f"POST {path} HTTP/1.1\r\nhost: local\r\ncontent-type: application/json\r\n"
    head += "transfer-encoding: chunked\r\n\r\n" if chunked else f"content-length: {total}\r\n\r\n"
    sent = 0
    try:
        sock.sendall(head.encode())
        block = b" " * (256 << 10)
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            piece = block[:total - sent]
            if sent + len(piece) == total:
                piece = piece[:-2] + b"{}"
            wire = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(wire)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(), sent
    finally:
        sock.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100mb_body_gets_413(default, upstreams, chunked):
    """Default config (max_request_body_size unset: json2grpc's default 4 MiB). A declared
    100 MB body gets the filter's JSON 413 from its content-length at once. A chunked one is
    buffered: past the listener's buffer limit (1 MiB, under the filter's default) Envoy answers
    413 itself, in text. Either way long before 100 MB were sent, and nothing reaches the
    service."""
    mark = upstreams.mark()
    status, headers, data, sent = send_large(default, "/v1/orders", 100 << 20, chunked=chunked)
    if chunked:
        assert (status, headers.get("content-type"), data) == (413, "text/plain",
                                                               b"Payload Too Large"), (status, data)
    else:
        assert status == 413, (status, headers, data)
        err = status_body(headers, data)
        assert err["code"] == 8, err
        assert err["message"] == "request body exceeds max_request_body_size (4194304 bytes)", err
    assert sent < 100 << 20, sent
    assert upstreams.records(mark, settle=0.5) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100mb_body_over_max_request_body_size(strict, upstreams, chunked):
    """max_request_body_size (256 KiB, under Envoy's 1 MiB buffer limit, which would answer
    first otherwise): the filter answers 413 JSON, from content-length at once, else while
    buffering."""
    mark = upstreams.mark()
    before = strict.stats(ERRORS)
    status, headers, data, sent = send_large(strict, "/v1/orders", 100 << 20, chunked=chunked)
    assert status == 413, (status, headers, data)
    err = status_body(headers, data)
    assert err["code"] == 8 or err["code"] == 3, err  # RESOURCE_EXHAUSTED (or INVALID_ARGUMENT)
    assert "max_request_body_size" in err["message"] or "too large" in err["message"], err
    assert sent < 100 << 20, sent
    after = strict.stats(ERRORS)
    assert after["wasmcustom.json2grpc.errors.limit"] - before["wasmcustom.json2grpc.errors.limit"] == 1
    assert upstreams.records(mark, settle=0.5) == []


# ---- 28. 10,000 query parameters ---------------------------------------------------------------------

def test_10000_query_parameters(probe, upstreams):
    query = "&".join(["r=1"] * 10_000)  # ~40 KB: under Envoy's 60 KiB header limit
    reject(probe, upstreams, "GET", "/probe/t?" + query, message="more than 1000 query parameters")


def test_1001_query_parameters_on_flash_sale(default, upstreams):
    reject(default, upstreams, "GET", "/v1/inventory?" + "&".join(["tags=a"] * 1001),
           message="more than 1000 query parameters")


def test_query_parameter_limit_holds_even_when_an_unknown_parameter_comes_first(default, upstreams):
    """The parameters are counted before they are mapped: an unknown parameter (which passes
    a request through, as in Envoy) cannot carry 1,000 more past the limit."""
    reject(default, upstreams, "GET", "/v1/inventory?" + "&".join(["x=1"] * 1001),
           message="more than 1000 query parameters")


def test_unknown_query_parameter_passes_through(default, services):
    """Envoy's behaviour: a parameter naming no field makes the request pass through
    untouched. The REST request then reaches the gRPC service as is, which answers
    UNIMPLEMENTED for the path /v1/inventory (records nothing); the client gets that gRPC
    answer. Configure ignore_unknown_query_parameters or reject_unknown_query_parameters to
    avoid it."""
    mark = services.mark()
    status, headers, data, _ = send(default, "GET", "/v1/inventory?x=1")
    assert (status, headers.get("content-type"), headers.get("grpc-status"), data) == (
        200, "application/grpc", "12", b""), (status, headers, data)
    assert services.records(mark) == []


# ---- 29. a huge header ---------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["header", "path"])
def test_huge_header_gets_envoys_431(default, upstreams, where):
    """60 KB in one header value (or in the URL): over Envoy's max_request_headers_kb (60)
    Envoy answers 431 itself; the filter never sees it, nothing goes upstream."""
    mark = upstreams.mark()
    big = "a" * (60 << 10)
    if where == "header":
        status, headers, data, _ = send(default, "GET", "/v1/inventory/sku-1001",
                                        headers={"x-big": big})
    else:
        status, headers, data, _ = send(default, "GET", "/v1/inventory/sku-" + big)
    assert status == 431, (status, headers, data)
    assert data in (b"Request Header Fields Too Large", b""), data
    assert upstreams.records(mark) == []


# ---- 30. duplicate keys ------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    '{"customerId": "a", "customerId": "b"}',
    '{"customerId": "a", "customer_id": "b"}',
    '{"items": [{"sku": "sku-3001", "sku": "sku-3002", "quantity": 1}]}',
    '{"shippingAddress": {"city": "x", "city": "y"}}',
], ids=["same-name", "json-and-proto-name", "nested-in-list", "nested-message"])
def test_duplicate_keys(default, upstreams, body):
    reject(default, upstreams, "POST", "/v1/orders", body, JSON, message="duplicate key")


def test_duplicate_map_keys(probe, upstreams):
    probe_reject(probe, upstreams, '{"counts": {"a": 1, "a": 2}}', "duplicate")


# ---- 31. a body on GET -----------------------------------------------------------------------------

def test_stray_body_on_get(default, upstreams):
    """A body on a bodyless rule is read (no `body:` in the binding still reads a sent body),
    but cannot re-target the path variable; a broken one is a 400."""
    status, _, data, record = accept(default, upstreams, "GET", "/v1/inventory/sku-1001",
                                     '{"sku": "sku-2002"}', JSON)
    assert status == 200 and json.loads(data)["sku"] == "sku-1001", data
    assert (record["method"], record["message"]) == (GET_ITEM, {"sku": "sku-1001"}), record
    status, _, data, record = accept(default, upstreams, "GET", "/v1/inventory",
                                     '{"status": "SOLD_OUT"}', JSON)
    assert (record["method"], record["message"]) == (LIST_ITEMS, {"status": "SOLD_OUT"}), record
    assert [i["sku"] for i in json.loads(data)["items"]] == ["sku-2002"], data
    reject(default, upstreams, "GET", "/v1/inventory/sku-1001", '{"sku": ', JSON,
           message="invalid JSON body")


# ---- 32. content-type --------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded",
                                          "application/json; charset=utf-8"])
def test_content_type_is_not_checked(default, upstreams, content_type):
    """Observed and kept (as Envoy's transcoder): the request content-type is not checked;
    a JSON body is transcoded whatever it says (only application/grpc passes through)."""
    headers = {"content-type": content_type} if content_type else {}
    status, rheaders, data, record = accept(
        default, upstreams, "POST", "/v1/orders",
        '{"customerId": "cust-ct", "items": [{"sku": "sku-3001", "quantity": 1}]}', headers)
    assert status == 200 and rheaders["content-type"] == "application/json", (status, data)
    assert record["method"] == CREATE_ORDER and record["message"]["customer_id"] == "cust-ct"


def test_wrong_content_type_with_invalid_json_is_400(default, upstreams):
    reject(default, upstreams, "POST", "/v1/orders", "customerId=a", {"content-type": "text/plain"},
           message="invalid JSON body")


def test_application_grpc_with_a_json_body_passes_through(default, services):
    """application/grpc is never transcoded: a JSON body sent as gRPC to the gRPC path reaches
    the service as a malformed gRPC frame; the service's gRPC error comes back untouched."""
    mark = services.mark()
    status, headers, data, _ = send(default, "POST", CREATE_ORDER, '{"customerId": "a"}',
                                    {"content-type": "application/grpc", "te": "trailers"})
    assert status == 200 and headers.get("content-type") == "application/grpc", (status, headers)
    assert headers.get("grpc-status") not in (None, "0"), headers
    assert services.records(mark) == []


# ---- 33. unknown method / path -------------------------------------------------------------------------

def test_unbound_method_passes_through_by_default(default, services):
    """PUT /v1/orders matches no binding: passed through (as Envoy), the route sends the REST
    request to the gRPC service, which answers UNIMPLEMENTED in gRPC form. Unrouted paths get
    Envoy's 404 (test_errors.py::test_envoy_404_for_an_unrouted_path_passes_through)."""
    mark = services.mark()
    status, headers, data, _ = send(default, "PUT", "/v1/orders", "{}", JSON)
    assert (status, headers.get("content-type"), headers.get("grpc-status")) == (
        200, "application/grpc", "12"), (status, headers, data)
    assert services.records(mark) == []


@pytest.mark.parametrize("method,path", [("PUT", "/v1/orders"), ("POST", "/v2/orders"),
                                         ("GET", "/v1/inventory/sku-1/extra"),
                                         ("DELETE", "/v1/inventory/sku-1"),
                                         ("POST", "/v1/inventory/sku-1:unknownVerb")])
def test_unknown_method_rejected_with_reject_unknown_method(strict, upstreams, method, path):
    body = "{}" if method in ("PUT", "POST") else None
    reject(strict, upstreams, method, path, body, JSON if body else None, status=404, code=5)


# ---- 34-38. the upstream side: broken gRPC on a server stream -------------------------------------------
#
# Unary answers to every grpc_chaos scenario (default, hold and callout modes) are in
# test_errors.py::test_chaos_scenario. Here: the same faults on a server stream (POST
# /v1/inventory:watch), where the 200 and the headers have left before the fault shows, and
# max_response_body_size. The request did reach the upstream (once) in each case.

def watch(envoy, chaos, scenario, **extra):
    mark = chaos.mark()
    message = base64.b64encode(harness.message_class("flashsale.v1.StockChange")(
        sku="sku-s", available=3).SerializeToString()).decode()
    headers = {**JSON, "x-chaos": scenario, "x-chaos-message-b64": message, **extra}
    status, rheaders, data, complete = send(envoy, "POST", "/v1/inventory:watch",
                                            '{"limit": 2}', headers)
    records = chaos.records(mark)
    assert [r["path"] for r in records] == ["/flashsale.v1.Inventory/Watch"], records
    return status, rheaders, data, complete


@pytest.mark.parametrize("scenario,message", [
    ("truncated-frame", "invalid gRPC response: truncated gRPC frame: 15 of 105 bytes"),
    ("compressed-no-encoding", "invalid gRPC response: compressed frame without grpc-encoding"),
    ("unknown-flag", "invalid gRPC response: unknown frame flag 0x80"),
    ("garbage-message", "response is not a valid flashsale.v1.StockChange message"),
    ("oversized", "upstream response message of 5000 bytes exceeds max_response_body_size (4096)"),
])
def test_broken_stream_from_the_upstream(strict, chaos, scenario, message):
    """The fault is in the first message: the stream's 200 already left, no element was
    written, so the body is the google.rpc.Status (code INTERNAL) instead of an array."""
    before = strict.stats(ERRORS)
    status, headers, data, complete = watch(strict, chaos, scenario, **{"x-chaos-size": "5000"})
    assert complete and status == 200, (status, headers, data)
    err = status_body(headers, data)
    assert err["code"] == 13 and message in err["message"], err
    after = strict.stats(ERRORS)
    counter = "limit" if scenario == "oversized" else "upstream_invalid"
    key = "wasmcustom.json2grpc.errors." + counter
    assert after[key] - before[key] == 1, (before, after)


def test_stream_reset_mid_stream(strict, chaos):
    """A reset after one message: the client gets the message and then a broken connection
    (the chunked body never ends) — an unmistakable transport error, no fake success."""
    status, headers, data, complete = watch(strict, chaos, "reset-mid-stream")
    assert status == 200 and not complete, (status, headers, data, complete)
    assert data == b'[{"sku":"sku-s","available":3}', data


def test_stream_error_after_messages_ends_the_array(strict, chaos):
    status, headers, data, complete = watch(strict, chaos, "message-then-error")
    assert complete and status == 200, (status, data)
    assert json.loads(data) == [{"sku": "sku-s", "available": 3}, {"error": {
        "code": 13, "message": "chaos: failed after one message", "details": []}}], data


@pytest.mark.parametrize("path", ["callout", "in-stream"])
def test_unary_response_over_max_response_body_size(strict, chaos, path):
    """5000-byte message over max_response_body_size (4096): 500 JSON on the callout path;
    in-stream (default mode) the headers already left: 200 and the error as the body."""
    mark = chaos.mark()
    headers = {"x-chaos": "oversized", "x-chaos-size": "5000"}
    if path == "callout":
        status, rheaders, data, complete = send(strict, "GET", "/v1/inventory/sku-big",
                                                headers=headers)
        expected = 500
    else:
        status, rheaders, data, complete = send(strict, "POST", "/v1/inventory/sku-big:reserve",
                                                '{"quantity": 1}', {**JSON, **headers})
        expected = 200
    assert complete and status == expected, (status, rheaders, data)
    err = status_body(rheaders, data)
    assert err["code"] == 13 and "exceeds max_response_body_size (4096)" in err["message"], err
    assert len(chaos.records(mark)) == 1


# ---- last: every Wasm VM is alive and every worker serves --------------------------------------------

def test_every_wasm_vm_survived():
    """Runs last in this module. For every Envoy used here: no VM trap or panic in its log,
    the Wasm VM stats unchanged since first use (no VM created, reloaded or lost), and 24 new
    connections — spread by the kernel over both workers — all get a normal answer."""
    assert USED, "no Envoy was used by this module"
    checked = 0
    for name, (envoy, before, check) in USED.items():
        log = envoy.log.read_text(errors="replace")
        for marker in VM_DEATH_MARKERS:
            assert marker not in log, f"{name}: {marker!r} in {envoy.log}"
        if not envoy.alive():
            continue
        after = envoy.wasm_stats()
        for stat in ("wasm.envoy.wasm.runtime.v8.active", "wasm.envoy.wasm.runtime.v8.created",
                     "wasm.wasm_vm_count"):
            assert after.get(stat) == before.get(stat), (name, stat, before, after)
        for stat, value in after.items():
            if stat.startswith("wasm.") and ".vm_reload" in stat:
                assert value == 0, (name, stat, after)
        workers = r"^listener\.127\.0\.0\.1_\d+\.worker_\d+\.downstream_cx_total$"
        cx_before = envoy.stats(workers)
        for _ in range(24):
            check(envoy)
        served = {k: v - cx_before.get(k, 0) for k, v in envoy.stats(workers).items()}
        assert len(served) == 2 and all(n > 0 for n in served.values()), (name, served)
        checked += 1
    assert checked == len(USED), f"only {checked} of {len(USED)} Envoys were still running"
