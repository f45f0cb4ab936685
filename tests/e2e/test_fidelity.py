"""Drop-in fidelity with Envoy's native grpc_json_transcoder (the oracle, in the same Envoy).

(1) Configs. Each variant of CONFIGS is loaded by `envoy --mode validate` twice: with the
    native filter (the typed config exactly as given) and with json2grpc (validate mode loads
    the .wasm and runs its on_configure). Both must accept, or both refuse, except the
    deliberate differences (README, "Differences from the native filter"), asserted as such.
    A binding json2grpc accepts but cannot transcode is logged at warn naming the method and
    the binding, and `json2grpc.strict_config: true` refuses it instead.
(2) Requests. The same request goes through both filters in front of grpc_chaos, which
    records what it received: the same HTTP status, and for a success the same body and the
    same request upstream (the gRPC method and decoded message, or the untouched REST request
    when it is passed through). Error bodies differ by design (json2grpc: JSON
    google.rpc.Status; Envoy: text). DELIBERATE_REQUESTS give json2grpc's outcome where it
    differs on purpose, and check that Envoy still behaves as documented.

The test protos (FID_PROTO) are compiled at run time with json2grpc-tool: one service per
binding variant, so that a config selects a variant by its `services`.
"""

import base64
import json
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness

FID_PROTO = """
syntax = "proto3";
package fid.v1;
import "google/api/annotations.proto";
import "google/api/httpbody.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Inner { string name = 1; int32 n = 2; }
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
message Req {
  string id = 1;
  Inner inner = 2;
  repeated string tags = 3;
  map<string, string> labels = 4;
  repeated Inner items = 5;
  google.protobuf.Timestamp ts = 6;
  string search = 7 [json_name = "search[decoded]"];
  string enc = 8 [json_name = "search%5Bencoded%5D"];
  Color color = 9;
  repeated int32 nums = 10;
  int32 count = 11;
  int32 page_size = 12;
  optional int32 opt = 13;
  google.protobuf.Int32Value w = 14;
}
message Resp { string id = 1; Inner inner = 2; google.api.HttpBody page = 3; }

// ---- binding variants (one per service) ----
service VarUnknown { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-unknown/{nope}" }; } }
service VarDeepUnknown { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-deep/{inner.nope}" }; } }
service VarMessage { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-message/{inner}" }; } }
service VarMap { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-map/{labels}" }; } }
service VarRepeated { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-repeated/{tags}" }; } }
service VarThroughRepeated { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-through/{items.name}" }; } }
service VarJsonName { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-json/{pageSize}" }; } }
service VarTwice { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-twice/{id}/{id}" }; } }
service VarTimestamp { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/var-ts/{ts}" }; } }
service NoPattern {
  rpc M(Req) returns (Resp) { option (google.api.http) = { body: "*" additional_bindings { post: "/fid/no-pattern/{id}" body: "*" } }; }
}
service CustomEmptyKind {
  rpc M(Req) returns (Resp) { option (google.api.http) = { custom { kind: "" path: "/fid/custom-empty" } additional_bindings { post: "/fid/custom-empty-additional" body: "*" } }; }
}
service DupAcross {
  rpc A(Req) returns (Resp) { option (google.api.http) = { get: "/fid/dup-across/{id}" }; }
  rpc B(Req) returns (Resp) { option (google.api.http) = { get: "/fid/dup-across/{id}" }; }
}
service DupWithin { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/dup-within" additional_bindings { get: "/fid/dup-within" } }; } }
service NestedAdditional {
  rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/na1" additional_bindings { get: "/fid/na2" additional_bindings { get: "/fid/na3" } } }; }
}
service BodyUnknown { rpc M(Req) returns (Resp) { option (google.api.http) = { post: "/fid/body-unknown" body: "nope" }; } }
service BodyThroughRepeated { rpc M(Req) returns (Resp) { option (google.api.http) = { post: "/fid/body-through" body: "items.name" }; } }
service BodyJsonName { rpc M(Req) returns (Resp) { option (google.api.http) = { post: "/fid/body-json" body: "inner" additional_bindings { post: "/fid/body-json-name" body: "pageSize" } }; } }
service BodyOnGet { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/body-on-get/{id}" body: "*" }; } }
service RespBodyUnknown { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/rb-unknown" response_body: "nope" }; } }
service RespBodyScalar { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/rb-scalar" response_body: "id" }; } }
service RespBodyHttpBody { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/rb-httpbody" response_body: "page" }; } }
service BadTemplate { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/{id" }; } }
service NoSlash { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "fid/no-slash" }; } }
service SegmentVar { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/seg{id}" }; } }
service DoubleStarThenVar { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/dsv/**/{id}" }; } }
service TrailingSlashTemplate { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "/fid/tst/" }; } }
service EmptyTemplate { rpc M(Req) returns (Resp) { option (google.api.http) = { get: "" }; } }

// ---- request edges ----
service Fine { rpc M(Req) returns (Resp) { option (google.api.http) = { post: "/fid/fine/{id}" body: "*" }; } }
service Verbs {
  rpc Cancel(Req) returns (Resp) { option (google.api.http) = { post: "/fid/items/{id}:cancel" body: "*" }; }
  rpc Get(Req) returns (Resp) { option (google.api.http) = { get: "/fid/items/{id}" }; }
  rpc Query(Req) returns (Resp) { option (google.api.http) = { get: "/fid/q" }; }
  rpc NoBody(Req) returns (Resp) { option (google.api.http) = { post: "/fid/no-body/{id}" }; }
  rpc Color(Req) returns (Resp) { option (google.api.http) = { get: "/fid/color/{color}" }; }
  rpc ListVariable(Req) returns (Resp) { option (google.api.http) = { post: "/fid/list/{tags}" body: "*" }; }
}
service BodyFields {
  rpc Inner(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/inner/{id}" body: "inner" }; }
  rpc InnerName(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/inner-name/{id}" body: "inner.name" }; }
  rpc Count(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/count/{id}" body: "count" }; }
  rpc Tags(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/tags/{id}" body: "tags" }; }
  rpc Items(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/items/{id}" body: "items" }; }
  rpc Labels(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/labels/{id}" body: "labels" }; }
  rpc Ts(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/ts/{id}" body: "ts" }; }
  rpc W(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/w/{id}" body: "w" }; }
  rpc Opt(Req) returns (Resp) { option (google.api.http) = { post: "/fid/b/opt/{id}" body: "opt" }; }
}
"""

# Everything under /fid (REST paths) and /fid.v1.* (gRPC paths) goes to grpc_chaos.
ROUTES = [("/fid", "inventory")]
NATIVE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"


@pytest.fixture(scope="module")
def fid(tmp_path_factory):
    """The FID_PROTO descriptor: {"b64", "path" (a .pb file), "Req" (message class)}."""
    work = tmp_path_factory.mktemp("fid")
    (work / "fid" / "v1").mkdir(parents=True)
    (work / "fid" / "v1" / "fid.proto").write_text(FID_PROTO)
    try:
        data = harness.build_descriptor(work, ["fid/v1/fid.proto"], work / "fid.pb")
    except harness.HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    pool = descriptor_pool.DescriptorPool()
    pending = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
    while pending:
        f = next(f for f in pending if all(d not in {p.name for p in pending} for d in f.dependency))
        pool.Add(f)
        pending.remove(f)
    req = message_factory.GetMessageClass(pool.FindMessageTypeByName("fid.v1.Req"))
    return {"b64": base64.b64encode(data).decode(), "path": work / "fid.pb", "Req": req}


def fid_config(fid, *services, **options):
    config = {"proto_descriptor_bin": fid["b64"], "services": [f"fid.v1.{s}" for s in services]}
    config.update(options)
    return config


def render_native(path, config, upstreams):
    """The native oracle's Envoy config with `config` as its typed config, verbatim (render.py
    would drop keys it does not know and needs a descriptor)."""
    safe = {"proto_descriptor_bin": "", "services": []}
    harness.render(harness.NATIVE_TEMPLATE, path, safe, upstreams)
    raw = {"@type": NATIVE_TYPE, **{k: v for k, v in config.items() if k != "json2grpc"}}
    lines = path.read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.lstrip().startswith("typed_config:")
          and "GrpcJsonTranscoder" in line]
    assert len(at) == 1, f"{harness.NATIVE_TEMPLATE}: expected one transcoder typed_config line"
    indent = lines[at[0]][:len(lines[at[0]]) - len(lines[at[0]].lstrip())]
    lines[at[0]] = f"{indent}typed_config: {json.dumps(raw)}\n"
    path.write_text("".join(lines))
    return path


def render_json2grpc(path, config, upstreams):
    return harness.render(harness.TEMPLATE, path, config, upstreams, wasm=harness.WASM)


# ---- (1) configs ---------------------------------------------------------------------------------

A, R = "accept", "refuse"
NULL = object()  # a JSON null in the config (None removes the key)

# (id, services, options, native, json2grpc's warning or None). `options` may be a function of
# the fid fixture (for values that need the descriptor). json2grpc's outcome is native's unless
# the id is in DELIBERATE_CONFIG.
CONFIGS = [
    # path variables
    ("variable-names-no-field", ["VarUnknown"], {}, A, 'GET "/fid/var-unknown/{nope}": path variable "nope"'),
    ("variable-names-no-nested-field", ["VarDeepUnknown"], {}, A, 'path variable "inner.nope"'),
    ("variable-names-a-message", ["VarMessage"], {}, A, 'path variable "inner" is a fid.v1.Inner message'),
    ("variable-names-a-map", ["VarMap"], {}, A, 'path variable "labels" is a map field'),
    ("variable-names-a-list", ["VarRepeated"], {}, A, None),
    ("variable-through-a-list", ["VarThroughRepeated"], {}, A, None),
    ("variable-by-json-name", ["VarJsonName"], {}, A, None),
    ("variable-twice", ["VarTwice"], {}, A, None),
    ("variable-timestamp", ["VarTimestamp"], {}, A, None),
    # rules and registrations
    ("rule-without-pattern", ["NoPattern"], {}, A, "rule without a pattern"),
    ("custom-pattern-without-kind", ["CustomEmptyKind"], {}, A, 'custom pattern "/fid/custom-empty" without a kind'),
    ("same-binding-on-two-methods", ["DupAcross"], {}, A, "GET /fid/dup-across/{id} is bound more than once"),
    ("same-binding-twice-in-a-method", ["DupWithin"], {}, A, "GET /fid/dup-within is bound more than once"),
    ("service-listed-twice", ["Fine", "Fine"], {}, A, "POST /fid/fine/{id} is bound more than once"),
    ("nested-additional-bindings", ["NestedAdditional"], {}, A, None),
    # body and response_body
    ("body-names-no-field", ["BodyUnknown"], {}, R, None),
    ("body-through-a-list", ["BodyThroughRepeated"], {}, A, None),
    ("body-by-json-name", ["BodyJsonName"], {}, A, None),
    ("body-star-on-get", ["BodyOnGet"], {}, A, None),
    ("response-body-names-no-field", ["RespBodyUnknown"], {}, R, None),
    ("response-body-http-body", ["RespBodyHttpBody"], {}, A, None),
    ("response-body-not-http-body", ["RespBodyScalar"], {}, R, None),
    # templates
    ("template-unterminated-variable", ["BadTemplate"], {}, R, None),
    ("template-without-leading-slash", ["NoSlash"], {}, R, None),
    ("template-variable-inside-a-segment", ["SegmentVar"], {}, R, None),
    ("template-variable-after-double-star", ["DoubleStarThenVar"], {}, R, None),
    ("template-trailing-slash", ["TrailingSlashTemplate"], {}, R, None),
    ("template-empty", ["EmptyTemplate"], {}, R, None),
    # services and descriptor
    ("no-services", [], {}, A, None),
    ("unknown-service", ["Nope"], {}, R, None),
    ("services-as-one-string", [], {"services": "fid.v1.Fine"}, A, None),
    ("no-descriptor", ["Fine"], {"proto_descriptor_bin": None}, R, None),
    ("descriptor-not-a-descriptor", ["Fine"],
     {"proto_descriptor_bin": base64.b64encode(b"\xff\x00garbage").decode()}, R, None),
    ("descriptor-file-path", ["Fine"],
     lambda fid: {"proto_descriptor_bin": None, "proto_descriptor": str(fid["path"])}, A, None),
    ("descriptor-path-and-bytes", ["Fine"], lambda fid: {"proto_descriptor": str(fid["path"])}, R, None),
    # option values
    ("max_request_body_size-0", ["Fine"], {"max_request_body_size": 0}, R, None),
    ("max_response_body_size-0", ["Fine"], {"max_response_body_size": 0}, R, None),
    ("max_request_body_size-wrapper-object", ["Fine"], {"max_request_body_size": {"value": 5}}, A, None),
    ("max_response_body_size-empty-wrapper", ["Fine"], {"max_response_body_size": {}}, R, None),
    ("max_request_body_size-exponent-string", ["Fine"], {"max_request_body_size": "1e3"}, A, None),
    ("max_request_body_size-fraction", ["Fine"], {"max_request_body_size": 1.5}, R, None),
    ("url_unescape_spec-unknown-name", ["Fine"], {"url_unescape_spec": "SOME"}, R, None),
    ("url_unescape_spec-unknown-number", ["Fine"], {"url_unescape_spec": 7}, R, None),
    ("url_unescape_spec-lower-case", ["Fine"], {"url_unescape_spec": "all_characters"}, A, None),
    ("bool-as-yes-string", ["Fine"], {"auto_mapping": "yes"}, A, None),
    ("bool-as-on-string", ["Fine"], {"auto_mapping": "on"}, R, None),
    ("bool-as-number", ["Fine"], {"auto_mapping": 1}, R, None),
    ("null-values", ["Fine"], {"print_options": NULL, "max_request_body_size": NULL}, A, None),
    ("unknown-option", ["Fine"], {"bogus_option": True}, R, None),
    ("unknown-print-option", ["Fine"], {"print_options": {"pretty": True}}, R, None),
    ("both-spellings-same-value", ["Fine"], {"auto_mapping": True, "autoMapping": True}, A, None),
    ("both-spellings-different-values", ["Fine"], {"auto_mapping": True, "autoMapping": False}, A, None),
]

# Where json2grpc refuses or accepts on purpose (README, "Differences from the native filter").
DELIBERATE_CONFIG = {
    "response-body-not-http-body":
        (A, "json2grpc prints any response field as the body; Envoy only google.api.HttpBody"),
    "descriptor-file-path":
        (R, "a Wasm VM cannot read files: the descriptor must be inline (proto_descriptor_bin)"),
    "both-spellings-different-values":
        (R, "Envoy keeps the spelling written last; JSON key order carries no meaning, so "
            "json2grpc refuses the ambiguity (equal values are accepted)"),
}

UPSTREAMS = types.SimpleNamespace(inventory=types.SimpleNamespace(address="127.0.0.1:9"),
                                  orders=types.SimpleNamespace(address="127.0.0.1:9"))


def config_of(fid, services, options):
    if callable(options):
        options = options(fid)
    config = fid_config(fid, *services)
    for key, value in options.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = None if value is NULL else value
    return config


@pytest.fixture(scope="module")
def validated(fid, tmp_path_factory):
    """Every CONFIGS variant through `envoy --mode validate`, natively and with json2grpc
    (and with json2grpc.strict_config for those json2grpc warns about), in parallel:
    {id: {"native": (ok, output), "json2grpc": …, "strict": …}}."""
    work = tmp_path_factory.mktemp("validate")
    jobs = []
    for name, services, options, _, warning in CONFIGS:
        config = config_of(fid, services, options)
        jobs.append((name, "native", render_native(work / f"{name}.native.yaml", config, UPSTREAMS)))
        jobs.append((name, "json2grpc", render_json2grpc(work / f"{name}.json2grpc.yaml", config, UPSTREAMS)))
        if warning:
            strict = {**config, "json2grpc": {"strict_config": True}}
            jobs.append((name, "strict", render_json2grpc(work / f"{name}.strict.yaml", strict, UPSTREAMS)))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: harness.validate(job[2]), jobs))
    out = {}
    for (name, kind, _), result in zip(jobs, results):
        out.setdefault(name, {})[kind] = result
    return out


def outcome(result):
    return A if result[0] else R


def wasm_lines(output, level):
    return [line for line in output.splitlines() if f"[{level}][wasm]" in line and "wasm log" in line]


@pytest.mark.parametrize("name,native,warning", [pytest.param(n, nat, w, id=n)
                                                 for n, _, _, nat, w in CONFIGS])
def test_config_is_accepted_or_refused_as_by_the_native_filter(validated, name, native, warning):
    got = validated[name]
    assert outcome(got["native"]) == native, f"the native filter changed:\n{got['native'][1][-3000:]}"
    expected, why = DELIBERATE_CONFIG.get(name, (native, None))
    assert outcome(got["json2grpc"]) == expected, (why, got["json2grpc"][1][-3000:])
    output = got["json2grpc"][1]
    assert "panicked" not in output
    warnings = wasm_lines(output, "warning")
    if warning:
        # Accepted with a warning naming the method and the binding; strict_config refuses it.
        assert any(warning in line for line in warnings), (warning, warnings)
        assert any("fid.v1." in line for line in warnings), warnings
        assert outcome(got["strict"]) == R, got["strict"][1][-3000:]
        errors = wasm_lines(got["strict"][1], "error")
        assert any(warning in line and "strict_config" in line for line in errors), errors
    elif expected == A:
        assert warnings == [], warnings
    else:
        assert wasm_lines(output, "error"), f"json2grpc refused without saying why:\n{output[-3000:]}"


# ---- (2) requests --------------------------------------------------------------------------------

REQUEST_SERVICES = ["VarUnknown", "VarDeepUnknown", "VarMessage", "VarMap", "VarRepeated",
                    "VarThroughRepeated", "VarJsonName", "VarTwice", "NoPattern",
                    "CustomEmptyKind", "DupAcross", "DupWithin", "NestedAdditional",
                    "BodyThroughRepeated", "BodyJsonName", "BodyOnGet", "Fine", "Verbs",
                    "BodyFields"]

# Request options of the compared configs (all with REQUEST_SERVICES).
OPTIONS = {
    "default": {},
    "reject": {"request_validation_options": {"reject_unknown_method": True,
                                              "reject_unknown_query_parameters": True}},
    "ignore": {"ignore_unknown_query_parameters": True},
    "collisions": {"request_validation_options": {"reject_binding_body_field_collisions": True}},
}


class Pair:
    """A native and a json2grpc Envoy with the same config, grpc_chaos behind both."""

    def __init__(self, chaos, workdir, config, name):
        upstreams = types.SimpleNamespace(inventory=types.SimpleNamespace(address=chaos.address),
                                          orders=types.SimpleNamespace(address=chaos.address))
        self.envoys = {}
        try:
            for kind, render in (("native", render_native), ("json2grpc", render_json2grpc)):
                path = render(workdir / f"{name}.{kind}.yaml", config, upstreams)
                harness.add_routes(path, ROUTES)
                self.envoys[kind] = harness.Envoy(f"fid-{name}-{kind}", path, workdir)
        except harness.HarnessError as err:
            self.stop()
            pytest.fail(str(err), pytrace=False)

    def stop(self):
        for envoy in self.envoys.values():
            envoy.stop()


@pytest.fixture(scope="module")
def pairs(fid, chaos, tmp_path_factory):
    started = {}
    work = tmp_path_factory.mktemp("fid-envoys")

    def get(options):
        if options not in started:
            config = fid_config(fid, *REQUEST_SERVICES, **OPTIONS[options])
            started[options] = Pair(chaos, work, config, options)
        for envoy in started[options].envoys.values():
            harness._used.append(envoy)
        return started[options]

    yield get
    for pair in started.values():
        pair.stop()


def send(envoy, chaos, fid, method, path, body):
    """(status, body bytes, what grpc_chaos received: [(path, [message as dict or raw])])."""
    headers = {"content-type": "application/json"} if body is not None else {}
    mark = chaos.mark()
    status, _, data = envoy.request(method, path, body, headers)
    from google.protobuf import json_format
    received = []
    for record in chaos.records(mark, settle=0.3):
        messages = []
        for raw in record["messages"]:
            raw = base64.b64decode(raw)
            try:
                messages.append(json_format.MessageToDict(fid["Req"].FromString(raw),
                                                          preserving_proto_field_name=True))
            except Exception:  # not a Req: a request passed through untouched (raw JSON)
                messages.append({"raw": raw.decode("latin-1")})
        received.append((record["path"], messages))
    return status, data, received


def grpc(method, *messages):
    return [(f"/fid.v1.{method}", list(messages))]


# (id, options, method, path, body, expected): the same outcome from both filters, and
# `expected` pins it: ("grpc", method, message) for a transcoded request, ("pass",) for one
# passed through untouched, an int for an error status.
REQUESTS = [
    # bindings Envoy accepts that cannot transcode every request
    ("variable-names-no-field", "default", "GET", "/fid/var-unknown/x?id=1", None, ("pass",)),
    ("variable-names-no-nested-field", "default", "GET", "/fid/var-deep/x", None, ("pass",)),
    ("variable-names-no-field-rejected", "reject", "GET", "/fid/var-unknown/x", None, 400),
    ("variable-names-no-field-ignored", "ignore", "GET", "/fid/var-unknown/x?id=1", None,
     ("grpc", "VarUnknown/M", {"id": "1"})),
    ("variable-names-no-nested-field-ignored", "ignore", "GET", "/fid/var-deep/x", None,
     ("grpc", "VarDeepUnknown/M", {})),
    ("variable-names-a-message", "default", "GET", "/fid/var-message/x", None, 400),
    ("variable-names-a-map", "default", "GET", "/fid/var-map/x", None, 400),
    ("variable-names-a-list", "default", "GET", "/fid/var-repeated/x?tags=y", None,
     ("grpc", "VarRepeated/M", {"tags": ["x", "y"]})),
    ("variable-through-a-list", "default", "GET", "/fid/var-through/x", None,
     ("grpc", "VarThroughRepeated/M", {"items": [{"name": "x"}]})),
    ("variable-by-json-name", "default", "GET", "/fid/var-json/7", None,
     ("grpc", "VarJsonName/M", {"page_size": 7})),
    ("variable-twice", "default", "GET", "/fid/var-twice/a/b", None, ("grpc", "VarTwice/M", {"id": "b"})),
    ("rule-without-pattern", "default", "POST", "/fid.v1.NoPattern/M", "{}", ("pass",)),
    ("rule-without-pattern-additional", "default", "POST", "/fid/no-pattern/1", '{"count": 2}',
     ("grpc", "NoPattern/M", {"id": "1", "count": 2})),
    ("custom-pattern-without-kind", "default", "POST", "/fid/custom-empty", "{}", ("pass",)),
    ("custom-pattern-without-kind-additional", "default", "POST", "/fid/custom-empty-additional",
     '{"id": "z"}', ("grpc", "CustomEmptyKind/M", {"id": "z"})),
    ("same-binding-on-two-methods", "default", "GET", "/fid/dup-across/1", None, ("pass",)),
    ("same-binding-on-two-methods-rejected", "reject", "GET", "/fid/dup-across/1", None, 404),
    ("same-binding-twice-in-a-method", "default", "GET", "/fid/dup-within", None, ("pass",)),
    ("nested-additional-bindings", "default", "GET", "/fid/na2", None, ("grpc", "NestedAdditional/M", {})),
    ("nested-additional-bindings-inner", "default", "GET", "/fid/na3", None, ("grpc", "NestedAdditional/M", {})),
    ("body-by-json-name", "default", "POST", "/fid/body-json", '{"name": "x"}',
     ("grpc", "BodyJsonName/M", {"inner": {"name": "x"}})),
    ("body-through-a-list", "default", "POST", "/fid/body-through", '"x"',
     ("grpc", "BodyThroughRepeated/M", {"items": [{"name": "x"}]})),
    ("unknown-method-rejected", "reject", "GET", "/fid/nothing", None, 404),
    ("unknown-query-parameter-rejected", "reject", "GET", "/fid/q?bogus=1", None, 400),
    # query parameter names
    ("query-json-name-with-brackets", "default", "GET", "/fid/q?search[decoded]=a", None,
     ("grpc", "Verbs/Query", {"search": "a"})),
    ("query-json-name-with-brackets-encoded", "default", "GET", "/fid/q?search%5Bdecoded%5D=a", None,
     ("grpc", "Verbs/Query", {"search": "a"})),
    ("query-json-name-with-escapes-as-sent", "default", "GET", "/fid/q?search%5Bencoded%5D=b", None,
     ("grpc", "Verbs/Query", {"enc": "b"})),
    ("query-json-name-with-escapes-double-encoded", "default", "GET", "/fid/q?search%255Bencoded%255D=b",
     None, ("grpc", "Verbs/Query", {"enc": "b"})),
    ("query-json-name-with-escapes-decoded", "default", "GET", "/fid/q?search[encoded]=b", None, ("pass",)),
    ("query-json-name-both-forms", "default", "GET", "/fid/q?search%5Bdecoded%5D=a&search[decoded]=b", None,
     ("grpc", "Verbs/Query", {"search": "b"})),
    ("query-json-name", "default", "GET", "/fid/q?pageSize=3", None, ("grpc", "Verbs/Query", {"page_size": 3})),
    ("query-percent-encoded-name", "default", "GET", "/fid/q?i%64=x", None, ("grpc", "Verbs/Query", {"id": "x"})),
    ("query-escaped-equals-in-name", "default", "GET", "/fid/q?id%3Dx=y", None, ("pass",)),
    ("query-names-a-message", "default", "GET", "/fid/q?inner=x", None, 400),
    ("query-names-a-map", "default", "GET", "/fid/q?labels=x", None, 400),
    ("query-through-a-list", "default", "GET", "/fid/q?items.name=x&items.n=2", None,
     ("grpc", "Verbs/Query", {"items": [{"name": "x", "n": 2}]})),
    ("query-through-a-list-twice", "default", "GET", "/fid/q?items.name=x&items.name=y", None,
     ("grpc", "Verbs/Query", {"items": [{"name": "y"}]})),
    # query values
    ("query-plus-is-a-plus", "default", "GET", "/fid/q?id=a+b", None, ("grpc", "Verbs/Query", {"id": "a+b"})),
    ("query-escaped-plus", "default", "GET", "/fid/q?id=a%2Bb%20c", None, ("grpc", "Verbs/Query", {"id": "a+b c"})),
    ("query-empty-string", "default", "GET", "/fid/q?id=", None, ("grpc", "Verbs/Query", {})),
    ("query-empty-number", "default", "GET", "/fid/q?count=", None, 400),
    ("query-repeated-singular", "default", "GET", "/fid/q?id=a&id=b&count=1&count=2", None,
     ("grpc", "Verbs/Query", {"id": "b", "count": 2})),
    ("query-repeated-list", "default", "GET", "/fid/q?nums=1&nums=2", None, ("grpc", "Verbs/Query", {"nums": [1, 2]})),
    ("query-without-equals-or-name", "default", "GET", "/fid/q?id&=x&&count=1", None,
     ("grpc", "Verbs/Query", {"count": 1})),
    ("query-malformed-escapes", "default", "GET", "/fid/q?id=%zz%", None, ("grpc", "Verbs/Query", {"id": "%zz%"})),
    ("query-enum-name", "default", "GET", "/fid/q?color=RED", None, ("grpc", "Verbs/Query", {"color": "RED"})),
    ("query-enum-lower-case", "default", "GET", "/fid/q?color=red", None, 400),
    ("query-enum-number", "default", "GET", "/fid/q?color=2", None, ("grpc", "Verbs/Query", {"color": "GREEN"})),
    ("query-int-hex", "default", "GET", "/fid/q?count=0x10", None, 400),
    ("query-int-fraction", "default", "GET", "/fid/q?count=1.0", None, 400),
    ("query-timestamp", "default", "GET", "/fid/q?ts=2024-01-01T00:00:00Z", None,
     ("grpc", "Verbs/Query", {"ts": "2024-01-01T00:00:00Z"})),
    # verbs and trailing slashes
    ("verb", "default", "POST", "/fid/items/1:cancel", "{}", ("grpc", "Verbs/Cancel", {"id": "1"})),
    ("verb-then-trailing-slash", "default", "POST", "/fid/items/1:cancel/", "{}", ("pass",)),
    ("verb-then-two-trailing-slashes", "default", "POST", "/fid/items/1:cancel//", "{}", ("pass",)),
    ("slash-then-verb", "default", "POST", "/fid/items/1/:cancel", "{}", ("grpc", "Verbs/Cancel", {"id": "1"})),
    ("trailing-slash", "default", "GET", "/fid/items/1/", None, ("grpc", "Verbs/Get", {"id": "1"})),
    ("two-trailing-slashes", "default", "GET", "/fid/items/1//", None, ("grpc", "Verbs/Get", {"id": "1"})),
    ("colon-then-trailing-slash", "default", "GET", "/fid/items/a:b/", None, ("grpc", "Verbs/Get", {"id": "a:b"})),
    # empty and whitespace bodies
    ("empty-body-star", "default", "POST", "/fid/fine/1", "", ("grpc", "Fine/M", {"id": "1"})),
    ("whitespace-body-star", "default", "POST", "/fid/fine/1", "   ", 400),
    ("newline-body-star", "default", "POST", "/fid/fine/1", "\n", 400),
    ("empty-body-no-body-rule", "default", "POST", "/fid/no-body/1", "", ("grpc", "Verbs/NoBody", {"id": "1"})),
    ("whitespace-body-no-body-rule", "default", "POST", "/fid/no-body/1", " \t", 400),
    ("whitespace-body-on-get", "default", "GET", "/fid/items/1", " ", 400),
    ("malformed-body-no-body-rule", "default", "POST", "/fid/no-body/1", "not json", 400),
    ("empty-body-message-field", "default", "POST", "/fid/b/inner/1", "", ("grpc", "BodyFields/Inner", {"id": "1", "inner": {}})),
    ("whitespace-body-message-field", "default", "POST", "/fid/b/inner/1", " ", 400),
    ("empty-body-nested-scalar-field", "default", "POST", "/fid/b/inner-name/1", "", 400),
    ("empty-body-scalar-field", "default", "POST", "/fid/b/count/1", "", 400),
    ("empty-body-optional-field", "default", "POST", "/fid/b/opt/1", "", 400),
    ("empty-body-list-field", "default", "POST", "/fid/b/tags/1", "", 400),
    ("empty-body-message-list-field", "default", "POST", "/fid/b/items/1", "",
     ("grpc", "BodyFields/Items", {"id": "1", "items": [{}]})),
    ("empty-body-map-field", "default", "POST", "/fid/b/labels/1", "", ("grpc", "BodyFields/Labels", {"id": "1"})),
    ("empty-body-timestamp-field", "default", "POST", "/fid/b/ts/1", "",
     ("grpc", "BodyFields/Ts", {"id": "1", "ts": "1970-01-01T00:00:00Z"})),
    ("empty-body-wrapper-field", "default", "POST", "/fid/b/w/1", "", ("grpc", "BodyFields/W", {"id": "1", "w": 0})),
    ("null-body-message-field", "default", "POST", "/fid/b/inner/1", "null", ("grpc", "BodyFields/Inner", {"id": "1"})),
    ("null-body-nested-field", "default", "POST", "/fid/b/inner-name/1", "null",
     ("grpc", "BodyFields/InnerName", {"id": "1", "inner": {}})),
    ("null-body-optional-field", "default", "POST", "/fid/b/opt/1", "null", ("grpc", "BodyFields/Opt", {"id": "1"})),
    ("null-body-wrapper-field", "default", "POST", "/fid/b/w/1", "null", ("grpc", "BodyFields/W", {"id": "1"})),
    ("empty-list-body", "default", "POST", "/fid/b/tags/1", "[]", ("grpc", "BodyFields/Tags", {"id": "1"})),
    # lists set by the body and the URL: protobuf merge
    ("list-in-body-and-query", "default", "POST", "/fid/fine/1?tags=q&tags=r", '{"tags": ["b"]}',
     ("grpc", "Fine/M", {"id": "1", "tags": ["b", "q", "r"]})),
    ("same-list-value-in-body-and-query", "default", "POST", "/fid/fine/1?tags=b", '{"tags": ["b"]}',
     ("grpc", "Fine/M", {"id": "1", "tags": ["b", "b"]})),
    ("number-list-in-body-and-query", "default", "POST", "/fid/fine/1?nums=2", '{"nums": [1]}',
     ("grpc", "Fine/M", {"id": "1", "nums": [1, 2]})),
    ("list-body-field-and-query", "default", "POST", "/fid/b/tags/1?tags=q", '["b"]',
     ("grpc", "BodyFields/Tags", {"id": "1", "tags": ["b", "q"]})),
    ("list-in-body-path-and-query", "default", "POST", "/fid/list/p?tags=q", '{"tags": ["b"]}',
     ("grpc", "Verbs/ListVariable", {"tags": ["b", "p", "q"]})),
    ("message-list-in-body-and-query", "default", "POST", "/fid/fine/1?items.name=x", '{"items": [{"name": "b"}]}',
     ("grpc", "Fine/M", {"id": "1", "items": [{"name": "b"}, {"name": "x"}]})),
    ("list-in-body-and-query-collisions", "collisions", "POST", "/fid/fine/1?tags=q", '{"tags": ["b"]}',
     ("grpc", "Fine/M", {"id": "1", "tags": ["b", "q"]})),
    # singular fields set by the body and the URL: the body wins
    ("singular-in-body-and-query", "default", "POST", "/fid/fine/1?count=2", '{"count": 1}',
     ("grpc", "Fine/M", {"id": "1", "count": 1})),
    ("nested-in-body-and-query", "default", "POST", "/fid/fine/1?inner.name=x&inner.n=4", '{"inner": {"name": "b"}}',
     ("grpc", "Fine/M", {"id": "1", "inner": {"name": "b", "n": 4}})),
    ("singular-in-body-and-path", "default", "POST", "/fid/fine/2", '{"id": "1"}', ("grpc", "Fine/M", {"id": "1"})),
    ("singular-in-body-and-query-collisions", "collisions", "POST", "/fid/fine/1?count=2", '{"count": 1}', 400),
    ("singular-in-body-and-path-collisions", "collisions", "POST", "/fid/fine/2", '{"id": "1"}', 400),
    ("same-value-in-body-and-query-collisions", "collisions", "POST", "/fid/fine/1?count=2", '{"count": 2}',
     ("grpc", "Fine/M", {"id": "1", "count": 2})),
    # a body sent to a rule without `body`
    ("get-with-body", "default", "GET", "/fid/items/1", '{"count": 5}', ("grpc", "Verbs/Get", {"id": "1", "count": 5})),
    ("get-with-body-and-query", "default", "GET", "/fid/items/1?count=2&tags=q", '{"count": 5, "tags": ["b"]}',
     ("grpc", "Verbs/Get", {"id": "1", "count": 5, "tags": ["b", "q"]})),
    ("get-with-malformed-body", "default", "GET", "/fid/items/1", "{", 400),
    ("get-body-star-with-body", "default", "GET", "/fid/body-on-get/1", '{"count": 5}',
     ("grpc", "BodyOnGet/M", {"id": "1", "count": 5})),
    ("get-body-star-without-body", "default", "GET", "/fid/body-on-get/1", None, ("grpc", "BodyOnGet/M", {"id": "1"})),
    ("post-no-body-rule-with-body", "default", "POST", "/fid/no-body/1", '{"count": 5}',
     ("grpc", "Verbs/NoBody", {"id": "1", "count": 5})),
    ("get-with-body-vs-path-collisions", "collisions", "GET", "/fid/items/1", '{"id": "7"}', 400),
    # JSON bodies
    ("body-enum-undeclared-number", "default", "POST", "/fid/fine/1", '{"color": 9}',
     ("grpc", "Fine/M", {"id": "1", "color": 9})),
    ("body-enum-lower-case", "default", "POST", "/fid/fine/1", '{"color": "red"}', 400),
]

# Where json2grpc differs on purpose (README, "Differences from the native filter"):
# (id, options, method, path, body, native's outcome, json2grpc's outcome, why).
DELIBERATE_REQUESTS = [
    ("query-map-key", "default", "GET", "/fid/q?labels[k]=v", None,
     ("pass",), ("grpc", "Verbs/Query", {"labels": {"k": "v"}}),
     "json2grpc sets map entries from `field[key]` query parameters; Envoy has no map syntax"),
    ("query-cannot-override-path", "default", "GET", "/fid/items/1?id=2", None,
     ("grpc", "Verbs/Get", {"id": "2"}), ("grpc", "Verbs/Get", {"id": "1"}),
     "the path names the resource that routes and authorization see; Envoy lets the query re-target it"),
    ("body-cannot-override-path-without-body-rule", "default", "GET", "/fid/items/1", '{"id": "7"}',
     ("grpc", "Verbs/Get", {"id": "7"}), ("grpc", "Verbs/Get", {"id": "1"}),
     "a body the rule does not declare cannot re-target the resource the path names"),
    ("top-level-scalar-body-field", "default", "POST", "/fid/b/count/1", "3",
     ("grpc", "BodyFields/Count"), ("grpc", "BodyFields/Count", {"id": "1", "count": 3}),
     "Envoy sends no request message at all for `body: \"scalar\"` (a service then fails)"),
    ("top-level-scalar-body-field-by-json-name", "default", "POST", "/fid/body-json-name", "3",
     ("grpc", "BodyJsonName/M"), ("grpc", "BodyJsonName/M", {"page_size": 3}),
     "the same: Envoy sends no request message"),
    ("camel-case-body-key-and-query", "default", "POST", "/fid/fine/1?pageSize=2", '{"pageSize": 1}',
     ("grpc", "Fine/M", {"id": "1", "page_size": 2}), ("grpc", "Fine/M", {"id": "1", "page_size": 1}),
     "the body wins for every spelling; Envoy compares the raw JSON key with the proto name"),
    ("query-enum-undeclared-number", "default", "GET", "/fid/q?color=9", None,
     400, ("grpc", "Verbs/Query", {"color": 9}),
     "proto3 enums are open: an undeclared number reaches the service from the URL as from a body"),
    ("path-enum-undeclared-number", "default", "GET", "/fid/color/9", None,
     400, ("grpc", "Verbs/Color", {"color": 9}),
     "the same, for a path variable"),
    ("wrapper-as-object-body", "default", "POST", "/fid/b/w/1", "{}",
     ("grpc", "BodyFields/W", {"id": "1", "w": 0}), 400,
     "a wrapper's JSON form is its value (proto3 JSON); Envoy also takes an object"),
    ("object-for-a-list-body", "default", "POST", "/fid/b/items/1", "{}",
     ("grpc", "BodyFields/Items", {"id": "1", "items": [{}]}), 400,
     "a list's JSON form is an array; Envoy also takes a lone object"),
]


def check_outcome(expected, path, status, data, received):
    """`received` is what grpc_chaos got for a request to `path`; `expected` as in REQUESTS."""
    if isinstance(expected, int):
        assert status == expected, (status, data)
        assert received == [], received
        return
    assert status == 200, (status, data)
    if expected[0] == "pass":
        # grpc_chaos got the request as sent: its path, and a JSON body unframed.
        assert len(received) == 1 and received[0][0] == path.split("?")[0], received
        assert all("raw" in m for m in received[0][1]), received
        return
    _, method, *message = expected
    assert received == grpc(method, *message), received


@pytest.mark.parametrize("options,method,path,body,expected", [
    pytest.param(o, m, p, b, e, id=i) for i, o, m, p, b, e in REQUESTS])
def test_request_is_handled_as_by_the_native_filter(pairs, chaos, fid, options, method, path, body,
                                                    expected):
    pair = pairs(options)
    native = send(pair.envoys["native"], chaos, fid, method, path, body)
    ours = send(pair.envoys["json2grpc"], chaos, fid, method, path, body)
    check_outcome(expected, path, *native)
    check_outcome(expected, path, *ours)
    if isinstance(expected, int):
        # Errors: json2grpc answers JSON google.rpc.Status, Envoy plain text (envoy issue 21791).
        error = json.loads(ours[1])
        assert error["code"] != 0 and error["message"], error
    else:
        assert ours == native


@pytest.mark.parametrize("options,method,path,body,native_outcome,ours_outcome,why", [
    pytest.param(*case[1:], id=case[0]) for case in DELIBERATE_REQUESTS])
def test_deliberate_request_differences(pairs, chaos, fid, options, method, path, body, native_outcome,
                                        ours_outcome, why):
    pair = pairs(options)
    check_outcome(native_outcome, path, *send(pair.envoys["native"], chaos, fid, method, path, body))
    check_outcome(ours_outcome, path, *send(pair.envoys["json2grpc"], chaos, fid, method, path, body))
