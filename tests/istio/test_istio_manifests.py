"""`make istio-validate`: the rendered Istio manifests (dist/istio/*.yaml) and the OCI image.

1. Every document against the JSON Schema of its kind (tests/istio/schemas/, generated from
   the Istio 1.24 CRD and Kubernetes models on PyPI by gen_schemas.py; unknown fields are
   errors, as with `kubectl apply`'s strict field validation), plus the CRDs' CEL rules that
   concern us (selector XOR targetRefs, url scheme).
2. What istiod would accept but would not work: ports, cluster names, HTTP/2 upstreams, the
   routes for the gRPC paths, the EnvoyFilter's two patches agreeing, the sha256; for the
   variants without a descriptor in the manifest (json2grpc.descriptor), the reflection
   clusters (the services' gRPC ports), the by-reference URL (the descriptors Service, the
   ConfigMap it serves, the set's sha256) and a valid :authority.
3. `envoy --mode validate` of the Envoy config Istio generates for each WasmPlugin (Istio's
   listener/route/cluster shapes, the plugin as Istio's ECDS Wasm config with the module as
   istio-agent leaves it: a local file) and of the EnvoyFilter's Wasm config wrapped in a
   bootstrap. Envoy loads the .wasm and runs the filter's on_configure with each plugin config,
   so a config the filter rejects fails here.
4. The OCI image layout (dist/oci) as Istio's image fetcher reads it.

Paths: JSON2GRPC_ISTIO_MANIFESTS (dist/istio), JSON2GRPC_OCI (dist/oci), JSON2GRPC_WASM,
JSON2GRPC_DESCRIPTOR, JSON2GRPC_ENVOY (the venv's envoy).
"""

import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import istio_envoy as ie  # noqa: E402

MANIFESTS = Path(os.environ.get("JSON2GRPC_ISTIO_MANIFESTS") or REPO / "dist" / "istio")
OCI = Path(os.environ.get("JSON2GRPC_OCI") or REPO / "dist" / "oci")
WASM = Path(os.environ.get("JSON2GRPC_WASM") or REPO / "dist" / "json2grpc.wasm")
DESCRIPTOR = Path(os.environ.get("JSON2GRPC_DESCRIPTOR") or REPO / "dist" / "flashsale.pb")
SCHEMAS = HERE / "schemas"


def _envoy():
    if os.environ.get("JSON2GRPC_ENVOY"):
        return Path(os.environ["JSON2GRPC_ENVOY"])
    beside = Path(sys.executable).parent / "envoy"
    return beside if beside.exists() else Path(shutil.which("envoy") or REPO / ".venv/bin/envoy")


ENVOY = _envoy()
CLUSTER_RE = re.compile(r"^(outbound|inbound)\|(\d+)\|([^|]*)\|(.*)$")
URL_SCHEMES = {"", "http", "https", "file", "oci"}


def _need(path, hint):
    if not Path(path).exists():
        pytest.fail(f"{path} does not exist ({hint})", pytrace=False)


def _manifests():
    _need(MANIFESTS, "`make istio-validate` renders it with istio/render.py")
    out = ie.load_manifests(MANIFESTS)
    if not out:
        pytest.fail(f"no *.yaml in {MANIFESTS}", pytrace=False)
    return out


def _documents():
    if not MANIFESTS.is_dir():
        return [pytest.param(None, id="no-manifests")]
    out = []
    for name, docs in ie.load_manifests(MANIFESTS).items():
        for doc in docs:
            out.append(pytest.param(doc, id=f"{name}:{doc.get('kind')}/"
                                            f"{doc.get('metadata', {}).get('name')}"))
    return out


def _all(manifests, kind):
    return [d for docs in manifests.values() for d in docs if d.get("kind") == kind]


@pytest.fixture(scope="module")
def manifests():
    return _manifests()


@pytest.fixture(scope="module")
def services(manifests):
    """{fqdn: Service} of the Services in the manifests."""
    out = {}
    for svc in _all(manifests, "Service"):
        meta = svc["metadata"]
        out[f"{meta['name']}.{meta.get('namespace', 'default')}.svc.cluster.local"] = svc
    return out


# ---- 1. schemas -----------------------------------------------------------------------------

def _validator(api_version, kind):
    from jsonschema import Draft202012Validator

    index = json.loads((SCHEMAS / "index.json").read_text())
    name = index["kinds"].get(f"{api_version}/{kind}")
    if name is None:
        pytest.fail(f"no schema for {api_version} {kind} in {SCHEMAS} (gen_schemas.py KINDS)",
                    pytrace=False)
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def _without_nulls(node):
    """The API server treats `field: null` as an absent field."""
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node


def _cel_rules(doc):
    """The CRDs' x-kubernetes-validations that the generated models lack."""
    errors = []
    spec = doc.get("spec") or {}
    if doc["kind"] == "WasmPlugin":
        if sum(k in spec for k in ("selector", "targetRef", "targetRefs")) > 1:
            errors.append("only one of targetRefs or selector can be set")
        for ref in spec.get("targetRefs", []) + ([spec["targetRef"]] if "targetRef" in spec else []):
            if ref.get("namespace"):
                errors.append("cross namespace referencing is not currently supported")
        url = spec.get("url", "")
        scheme = urlparse(url).scheme if "://" in url else ""  # no scheme = oci://
        if scheme not in URL_SCHEMES:
            errors.append(f"url must have schema one of [http, https, file, oci]: {url}")
        for env in (spec.get("vmConfig") or {}).get("env", []):
            if env.get("valueFrom") == "HOST" and "value" in env:
                errors.append("value may only be set when valueFrom is INLINE")
    if doc["kind"] == "EnvoyFilter":
        if "workloadSelector" in spec and "targetRefs" in spec:
            errors.append("only one of targetRefs or workloadSelector can be set")
    return errors


@pytest.mark.parametrize("doc", _documents())
def test_document_matches_schema(doc):
    if doc is None:
        _manifests()
    validator = _validator(doc.get("apiVersion"), doc.get("kind"))
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
              for e in sorted(validator.iter_errors(_without_nulls(doc)),
                              key=lambda e: list(map(str, e.absolute_path)))]
    errors += _cel_rules(doc)
    assert not errors, "\n".join(errors)


def test_schemas_reject_a_misspelt_field():
    """The schemas are strict: a typo is an error, not silently dropped."""
    doc = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
           "metadata": {"name": "x"}, "spec": {"url": "oci://r/x:1", "failStrategey": "FAIL_OPEN"}}
    assert list(_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))
    doc["spec"] = {"url": "oci://r/x:1", "sha256": "sha256:" + "0" * 64}
    assert list(_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))


# ---- 2. what would not work -------------------------------------------------------------------

def _plugin_configs(manifests):
    """(label, plugin config dict) of every WasmPlugin and EnvoyFilter Wasm config."""
    out = []
    for plugin in _all(manifests, "WasmPlugin"):
        out.append((f"WasmPlugin/{plugin['metadata']['name']}", plugin["spec"].get("pluginConfig")))
    for ef in _all(manifests, "EnvoyFilter"):
        for patch in ie.envoyfilter_patches(ef, "EXTENSION_CONFIG"):
            config = patch["patch"]["value"]["typed_config"]["config"]
            out.append((f"EnvoyFilter/{ef['metadata']['name']}",
                        json.loads(config["configuration"]["value"])))
    return out


def _live_source(config):
    """json2grpc.descriptor of a plugin config (None: it carries proto_descriptor_bin)."""
    return (config.get("json2grpc") or {}).get("descriptor")


def test_plugin_configs_carry_the_descriptor_or_a_live_source(manifests):
    """Each plugin config carries either the descriptor set (proto_descriptor_bin, the one of
    `make descriptors`) or a live source (json2grpc.descriptor: reflection or url), never both;
    the shipped variants include both kinds of live source."""
    _need(DESCRIPTOR, "run `make descriptors`")
    configs = _plugin_configs(manifests)
    assert configs, "no WasmPlugin / EnvoyFilter in the manifests"
    kinds = set()
    for label, config in configs:
        assert isinstance(config, dict), label
        assert config.get("services"), label
        live = _live_source(config)
        if live is None:
            assert base64.b64decode(config["proto_descriptor_bin"]) == DESCRIPTOR.read_bytes(), (
                f"{label}: proto_descriptor_bin is not {DESCRIPTOR} (stale manifests?)")
            kinds.add("descriptor")
            continue
        assert "proto_descriptor_bin" not in config, f"{label}: a descriptor AND a live source"
        (origin,) = [k for k in ("reflection", "url") if k in live]
        kinds.add(origin)
        assert 1000 <= live.get("refresh_ms", 30000), label
    assert kinds == {"descriptor", "reflection", "url"}, kinds


def _url_servers(manifests):
    """FQDNs of the Services that live `url` sources fetch descriptor sets from."""
    out = set()
    for _, config in _plugin_configs(manifests):
        url = (_live_source(config) or {}).get("url")
        if url:
            m = CLUSTER_RE.match(url["cluster"])
            if m:
                out.add(m.group(4))
    return out


def _service_port(services, fqdn, port):
    svc = services.get(fqdn)
    assert svc is not None, f"no Service {fqdn} in the manifests"
    for p in svc["spec"]["ports"]:
        if p["port"] == port:
            return p
    raise AssertionError(f"Service {fqdn} has no port {port}")


def _is_h2(port, fqdn, manifests):
    name = port.get("name", "")
    if port.get("appProtocol") in ("grpc", "http2", "grpc-web") or \
            re.match(r"^(grpc|http2|grpc-web)(-|$)", name):
        return True
    for dr in _all(manifests, "DestinationRule"):
        policy = dr["spec"].get("trafficPolicy", {}).get("connectionPool", {}).get("http", {})
        if dr["spec"]["host"] in (fqdn, fqdn.split(".")[0]) and \
                policy.get("h2UpgradePolicy") == "UPGRADE":
            return True
    return False


def test_callout_clusters_name_existing_http2_service_ports(manifests, services):
    """json2grpc.callout.clusters: Istio's outbound|PORT||FQDN of a Service port in the
    manifests whose upstream is HTTP/2 (gRPC)."""
    seen = 0
    for label, config in _plugin_configs(manifests):
        clusters = config.get("json2grpc", {}).get("callout", {}).get("clusters", {})
        for grpc_service, cluster in clusters.items():
            assert grpc_service in config["services"], (label, grpc_service)
            m = CLUSTER_RE.match(cluster)
            assert m and m.group(1) == "outbound" and not m.group(3), (
                f"{label}: {cluster!r} is not outbound|PORT||FQDN")
            port = _service_port(services, m.group(4), int(m.group(2)))
            assert _is_h2(port, m.group(4), manifests), f"{label}: {cluster} is not HTTP/2"
            seen += 1
    assert seen, "the SERVER-mode WasmPlugin should name its callout clusters"


def test_every_service_port_of_the_services_is_http2(manifests, services):
    """What leaves a transcoding proxy is gRPC: every port of the gRPC services (the JSON port
    too) must give Istio an HTTP/2 upstream. The gRPC services: every Service but the HTTP
    servers of descriptor sets (descriptors.yaml, an HTTP/1.1 port)."""
    file_servers = _url_servers(manifests)
    grpc_services = {f: s for f, s in services.items() if f not in file_servers}
    assert grpc_services and len(grpc_services) + len(file_servers) == len(services), (
        sorted(services), sorted(file_servers))
    for fqdn, svc in grpc_services.items():
        for port in svc["spec"]["ports"]:
            assert _is_h2(port, fqdn, manifests), f"{fqdn} port {port}"


AUTHORITY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$")


def _valid_authority(source, cluster):
    """The :authority the filter sends: `authority`, else (filter/src/wasm/live.rs,
    default_authority) `FQDN:PORT` for an `outbound|PORT|SUBSET|FQDN` cluster, else the cluster
    name. It must be a valid host: the receiving sidecar (Envoy) refuses a `|` in it (HTTP/2: the
    connection is reset, HTTP/1.1: 400)."""
    m = CLUSTER_RE.match(cluster)
    derived = f"{m.group(4)}:{m.group(2)}" if m else cluster
    authority = source.get("authority", derived)
    return bool(AUTHORITY_RE.match(authority)), authority


def test_reflection_clusters_are_the_services_grpc_ports(manifests, services):
    """json2grpc.descriptor.reflection: each cluster is Istio's outbound|PORT||FQDN of a Service
    port in the manifests that is gRPC (HTTP/2, the port that serves reflection); together they
    are the Services of the configured gRPC services (those the SERVER plugin's callout
    clusters name), each once."""
    server = {c for _, config in _plugin_configs(manifests)
              for c in config.get("json2grpc", {}).get("callout", {}).get("clusters", {}).values()}
    assert server, "no callout clusters to compare with"
    seen = 0
    for label, config in _plugin_configs(manifests):
        source = (_live_source(config) or {}).get("reflection")
        if source is None:
            continue
        assert "cluster" not in source or "clusters" not in source, label
        clusters = source.get("clusters") or [source["cluster"]]
        assert len(set(clusters)) == len(clusters), f"{label}: a cluster twice: {clusters}"
        for cluster in clusters:
            m = CLUSTER_RE.match(cluster)
            assert m and m.group(1) == "outbound" and not m.group(3), (
                f"{label}: {cluster!r} is not outbound|PORT||FQDN")
            port = _service_port(services, m.group(4), int(m.group(2)))
            assert port.get("appProtocol") == "grpc" or port.get("name", "").startswith("grpc"), (
                f"{label}: {cluster} is not a gRPC port: {port}")
            assert _is_h2(port, m.group(4), manifests), f"{label}: {cluster} is not HTTP/2"
            valid, authority = _valid_authority(source, cluster)
            assert valid, f"{label}: :authority {authority!r} is not a valid host"
        assert set(clusters) == server, (f"{label}: reflection asks {sorted(clusters)}, the "
                                         f"services are served by {sorted(server)}")
        assert not source.get("all_services"), f"{label}: transcode `services`, not every one"
        seen += 1
    assert seen, "no WasmPlugin with json2grpc.descriptor.reflection"


def _selected_deployments(manifests, service):
    selector = service["spec"].get("selector") or {}
    namespace = service["metadata"].get("namespace", "default")
    return [d for d in _all(manifests, "Deployment")
            if d["metadata"].get("namespace", "default") == namespace and selector and
            all(d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v
                for k, v in selector.items())]


def test_url_source_is_the_descriptor_set_served_in_the_mesh(manifests, services):
    """json2grpc.descriptor.url: the cluster is outbound|PORT||FQDN of a Service port in the
    manifests; its sha256 is the set's (dist/flashsale.pb); the Deployment behind that Service
    mounts a ConfigMap at nginx's document root whose key `path` names holds exactly that
    set; the container listens on the Service's targetPort; the ConfigMap fits Kubernetes'
    1 MiB."""
    _need(DESCRIPTOR, "run `make descriptors`")
    want = DESCRIPTOR.read_bytes()
    seen = 0
    for label, config in _plugin_configs(manifests):
        source = (_live_source(config) or {}).get("url")
        if source is None:
            continue
        cluster = source["cluster"]
        m = CLUSTER_RE.match(cluster)
        assert m and m.group(1) == "outbound" and not m.group(3), (
            f"{label}: {cluster!r} is not outbound|PORT||FQDN")
        fqdn = m.group(4)
        port = _service_port(services, fqdn, int(m.group(2)))
        assert source.get("sha256") == hashlib.sha256(want).hexdigest(), (
            f"{label}: sha256 {source.get('sha256')} is not the one of {DESCRIPTOR}")
        valid, authority = _valid_authority(source, cluster)
        assert valid, f"{label}: :authority {authority!r} is not a valid host"
        assert source["path"].startswith("/") and source["path"].count("/") == 1, source
        key = source["path"][1:]
        (deployment,) = _selected_deployments(manifests, services[fqdn])
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        target = port.get("targetPort", port["port"])
        assert any(p["containerPort"] == target or p.get("name") == target
                   for p in container.get("ports", [])), (label, container.get("ports"), target)
        (mount,) = [v for v in container.get("volumeMounts", [])
                    if v["mountPath"].rstrip("/") == "/usr/share/nginx/html"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        configmap = ie.find(manifests, "ConfigMap", volume["configMap"]["name"])
        served = base64.b64decode(configmap["binaryData"][key], validate=True)
        assert served == want, f"{label}: ConfigMap key {key} is not {DESCRIPTOR}"
        size = sum(len(v) for v in configmap.get("data", {}).values()) + \
            sum(len(base64.b64decode(v)) for v in configmap.get("binaryData", {}).values())
        assert size <= 1 << 20, f"ConfigMap {configmap['metadata']['name']}: {size} bytes > 1 MiB"
        seen += 1
    assert seen, "no WasmPlugin with json2grpc.descriptor.url"


def test_storefront_variants_differ_only_in_where_the_api_comes_from(manifests):
    """The WasmPlugins for the storefront are alternatives: same workload, listener, module and
    behaviour; their pluginConfigs differ only in proto_descriptor_bin vs json2grpc.descriptor."""
    plugins = [p for p in _all(manifests, "WasmPlugin")
               if p["spec"].get("selector") == {"matchLabels": {"app": "storefront"}}]
    assert len(plugins) == 3, [p["metadata"]["name"] for p in plugins]

    def common(plugin):
        spec = json.loads(json.dumps(plugin["spec"]))
        config = spec.pop("pluginConfig")
        config.pop("proto_descriptor_bin", None)
        config.get("json2grpc", {}).pop("descriptor", None)
        return spec, config

    first = common(plugins[0])
    for plugin in plugins[1:]:
        assert common(plugin) == first, plugin["metadata"]["name"]


def test_wasmplugin_match_ports_exist(manifests, services):
    for plugin in _all(manifests, "WasmPlugin"):
        for match in plugin["spec"].get("match", []):
            for p in match.get("ports", []):
                if match.get("mode") == "SERVER":
                    targets = {sp.get("targetPort", sp["port"]) for s in services.values()
                               for sp in s["spec"]["ports"]}
                    assert p["number"] in targets, (plugin["metadata"]["name"], p)
                else:
                    ports = {sp["port"] for s in services.values() for sp in s["spec"]["ports"]}
                    assert p["number"] in ports, (plugin["metadata"]["name"], p)


def test_gateway_routes_rest_and_grpc_paths_to_the_same_destination(manifests):
    """Envoy matches the route again after the filter rewrites :path to /pkg.Service/Method."""
    vss = [vs for vs in _all(manifests, "VirtualService") if vs["spec"].get("gateways")]
    assert vss, "no gateway VirtualService"
    services = {s for _, c in _plugin_configs(manifests) for s in c["services"]}
    for svc in services:
        grpc_dest = rest_dests = None
        for vs in vss:
            for route in vs["spec"]["http"]:
                prefixes = [m.get("uri", {}).get("prefix", "") for m in route.get("match", [])]
                dest = json.dumps(route["route"], sort_keys=True)
                if f"/{svc}/" in prefixes:
                    grpc_dest = dest
                    rest_dests = [p for p in prefixes if p.startswith("/v")]
        assert grpc_dest, f"no gateway route for the gRPC paths /{svc}/"
        assert rest_dests, f"the route of /{svc}/ carries no REST prefix"


def test_envoyfilter_patches_agree(manifests):
    efs = _all(manifests, "EnvoyFilter")
    assert efs
    for ef in efs:
        (http,) = ie.envoyfilter_patches(ef, "HTTP_FILTER")
        (ext,) = ie.envoyfilter_patches(ef, "EXTENSION_CONFIG")
        assert http["patch"]["operation"] == "INSERT_BEFORE"
        assert http["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == \
            "envoy.filters.http.router"
        value, ext_value = http["patch"]["value"], ext["patch"]["value"]
        assert value["name"] == ext_value["name"], "HTTP_FILTER must name the EXTENSION_CONFIG"
        assert ext_value["typed_config"]["@type"] in value["config_discovery"]["type_urls"]
        assert ie.RBAC_TYPE in value["config_discovery"]["type_urls"], (
            "without the RBAC type istio-agent cannot fail closed when the download fails")
        config = ext_value["typed_config"]["config"]
        plugin = json.loads(config["configuration"]["value"])
        assert config.get("allow_on_headers_stop_iteration") is True
        assert plugin["json2grpc"]["allow_on_headers_stop_iteration"] is True


def test_wasm_sha256_is_the_image_manifest_digest(manifests):
    """For oci:// urls Istio compares sha256 with the image manifest digest (not the .wasm's)."""
    _need(OCI / "sha256", "run `make oci`")
    digest = (OCI / "sha256").read_text().strip()
    urls = []
    for plugin in _all(manifests, "WasmPlugin"):
        urls.append((plugin["spec"]["url"], plugin["spec"].get("sha256", "")))
    for ef in _all(manifests, "EnvoyFilter"):
        for patch in ie.envoyfilter_patches(ef, "EXTENSION_CONFIG"):
            remote = patch["patch"]["value"]["typed_config"]["config"]["vm_config"]["code"]["remote"]
            urls.append((remote["http_uri"]["uri"], remote.get("sha256", "")))
    for url, sha in urls:
        if url.startswith("oci://") and sha:
            assert sha == digest, f"{url}: sha256 {sha} is not dist/oci's manifest digest {digest}"


# ---- 3. envoy --mode validate -------------------------------------------------------------------

FAKE_ADDRESSES = {"inventory": "127.0.0.1:50051", "orders": "127.0.0.1:50052"}


def _envoy_validate(config, tmp_path, name):
    _need(ENVOY, "run `make venv`")
    _need(WASM, "run `make wasm`")
    path = ie.write_json(tmp_path / f"{name}.yaml", config)
    p = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path),
                        "--use-dynamic-base-id", "--log-level", "warn"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"envoy --mode validate -c {path}:\n{p.stdout}{p.stderr}"


def _clusters(services, manifests):
    """outbound|PORT||FQDN of every Service port (HTTP/2 or HTTP/1.1 as Istio would make it)
    and inbound|PORT|| of every target port."""
    clusters = []
    for fqdn, svc in services.items():
        host, port = ie.split_host_port(FAKE_ADDRESSES.get(fqdn.split(".")[0], "127.0.0.1:50053"))
        for p in svc["spec"]["ports"]:
            make = ie.h2_cluster if _is_h2(p, fqdn, manifests) else ie.http1_cluster
            clusters.append(make(ie.cluster_name("outbound", p["port"], fqdn), host, port))
    targets = sorted({p.get("targetPort", p["port"]) for s in services.values()
                      for p in s["spec"]["ports"]})
    clusters += [ie.h2_cluster(ie.cluster_name("inbound", t), "127.0.0.1", t) for t in targets]
    return clusters


def _listeners_for(plugin, wasm_filter, services):
    modes = [m.get("mode", "CLIENT_AND_SERVER") for m in plugin["spec"].get("match", [])] or \
        ["CLIENT"]  # a gateway: its listeners are of the CLIENT class
    listeners = []
    for mode in modes:
        ports = [p["number"] for m in plugin["spec"].get("match", []) for p in m.get("ports", [])]
        if mode in ("CLIENT", "CLIENT_AND_SERVER"):
            for port in ports or [80]:
                have = [f for f, s in services.items()
                        if any(p["port"] == port for p in s["spec"]["ports"])] or list(services)
                listeners.append(ie.outbound_listener(port, have, wasm_filter))
        if mode in ("SERVER", "CLIENT_AND_SERVER"):
            for port in ports or [50051]:
                listeners.append(ie.inbound_listener(port, wasm_filter))
    return listeners


def _wasmplugins():
    if not MANIFESTS.is_dir():
        return [pytest.param(None, id="no-manifests")]
    return [pytest.param(p["metadata"]["name"], id=p["metadata"]["name"])
            for docs in ie.load_manifests(MANIFESTS).values() for p in docs
            if p.get("kind") == "WasmPlugin"]


@pytest.mark.parametrize("name", _wasmplugins())
def test_envoy_accepts_what_istio_generates_for_the_wasmplugin(name, manifests, services,
                                                                tmp_path):
    if name is None:
        _manifests()
    plugin = ie.find(manifests, "WasmPlugin", name)
    filter_name, typed = ie.wasm_from_wasmplugin(plugin, WASM.resolve())
    # Inline (what the ECDS resource becomes): --mode validate does not fetch ECDS resources.
    listeners = _listeners_for(plugin, ie.inline_filter(filter_name, typed), services)
    _envoy_validate(ie.bootstrap(listeners, _clusters(services, manifests)), tmp_path, name)


def test_envoy_accepts_the_envoyfilter_wasm_config(manifests, services, tmp_path):
    """The HTTP_FILTER patch as written (config_discovery from ADS), with the EXTENSION_CONFIG's
    Wasm config (module made local, as istio-agent does) as its default_config so that Envoy
    builds it: checks the two patches together, allow_on_headers_stop_iteration included."""
    efs = _all(manifests, "EnvoyFilter")
    assert efs
    for ef in efs:
        name, typed, http = ie.wasm_from_extension_config(ef, WASM.resolve())
        http["config_discovery"]["default_config"] = typed
        http["config_discovery"]["apply_default_config_without_warming"] = True
        (patch,) = ie.envoyfilter_patches(ef, "HTTP_FILTER")
        port = patch["match"]["listener"]["portNumber"]
        have = [f for f, s in services.items()
                if any(p["port"] == port for p in s["spec"]["ports"])]
        listener = ie.outbound_listener(port, have, http)
        _envoy_validate(ie.bootstrap([listener], _clusters(services, manifests)), tmp_path,
                        ef["metadata"]["name"])


# WasmPlugin (+ case) -> (edit of its pluginConfig, the field the refusal names)
BAD_CONFIGS = {
    "json2grpc-storefront": (lambda c: c.update(json2grpc={"callout": {"timeout_msec": 5}}),
                             "json2grpc.callout.timeout_msec"),
    # the live variants: their descriptor source is parsed by on_configure too
    "json2grpc-storefront-reflection": (
        lambda c: c["json2grpc"]["descriptor"].update(reflection={"clusters": []}),
        "json2grpc.descriptor.reflection"),
    "json2grpc-storefront-url": (
        lambda c: c["json2grpc"]["descriptor"]["url"].update(sha256="sha256:" + "0" * 64),
        "json2grpc.descriptor.url.sha256"),
    "json2grpc-storefront-url+descriptor": (
        lambda c: c.update(proto_descriptor_bin="Cg=="), "json2grpc.descriptor`"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_envoy_rejects_a_bad_plugin_config(case, manifests, services, tmp_path):
    """The check above has teeth: Envoy runs the filter's on_configure during validation, and
    the refusal names the field."""
    _need(ENVOY, "run `make venv`")
    plugin = json.loads(json.dumps(ie.find(manifests, "WasmPlugin", case.split("+")[0])))
    edit, field = BAD_CONFIGS[case]
    edit(plugin["spec"]["pluginConfig"])
    filter_name, typed = ie.wasm_from_wasmplugin(plugin, WASM.resolve())
    listeners = _listeners_for(plugin, ie.inline_filter(filter_name, typed), services)
    path = ie.write_json(tmp_path / "bad.yaml",
                         ie.bootstrap(listeners, _clusters(services, manifests)))
    p = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path),
                        "--use-dynamic-base-id", "--log-level", "warn"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0, p.stdout + p.stderr
    assert field in p.stdout + p.stderr, p.stdout + p.stderr


# ---- 4. the OCI image ---------------------------------------------------------------------------

def _blob(digest):
    algo, _, hexdigest = digest.partition(":")
    assert algo == "sha256"
    data = (OCI / "blobs" / "sha256" / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest, f"blob {digest} is corrupt"
    return data


def test_oci_image_is_what_istio_extracts_the_module_from():
    """Read dist/oci the way Istio's fetcher does (compat variant): OCI manifest, last layer
    `application/vnd.oci.image.layer.v1.tar+gzip`, the file whose basename is plugin.wasm —
    and it is byte for byte dist/json2grpc.wasm."""
    _need(OCI / "index.json", "run `make oci`")
    _need(WASM, "run `make wasm`")
    assert json.loads((OCI / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((OCI / "index.json").read_text())
    (desc,) = index["manifests"]
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    manifest_bytes = _blob(desc["digest"])
    assert len(manifest_bytes) == desc["size"]
    manifest = json.loads(manifest_bytes)
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(_blob(manifest["config"]["digest"]))
    layer_desc = manifest["layers"][-1]
    assert len(manifest["layers"]) == 1
    assert layer_desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    layer = _blob(layer_desc["digest"])
    assert len(layer) == layer_desc["size"]
    tar_bytes = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = [m for m in tar.getmembers() if os.path.basename(m.name) == "plugin.wasm"]
        assert len(members) == 1
        module = tar.extractfile(members[0]).read()
    assert module == WASM.read_bytes(), "dist/oci holds another build: run `make oci`"
    assert module[:4] == b"\x00asm"
    # The files the manifests and README use.
    assert (OCI / "digest").read_text().strip() == desc["digest"]
    assert (OCI / "sha256").read_text().strip() == desc["digest"].split(":", 1)[1]
    assert (OCI / "wasm.sha256").read_text().strip() == hashlib.sha256(module).hexdigest()
