#!/usr/bin/env python3
"""Render the Istio manifests (istio/*.yaml.in) into dist/istio/ — stdlib only.

The templates are readable YAML with {{NAME}} placeholders; the plugin configuration (which
carries the base64 descriptor set, tens of KB) is only filled in here, from the same
dist/plugin-config.json that envoy/ uses (`make descriptors`). Each manifest gets its
variant of it:

  PLUGIN_CONFIG_CLIENT   outbound sidecar (WasmPlugin mode CLIENT): the config as is (without the
                         plain-Envoy json2grpc.callout.loopback_cluster); bodyless calls go to
                         the route's cluster, already `outbound|8080||<svc FQDN>`
  PLUGIN_CONFIG_SERVER   inbound sidecar (mode SERVER): plus json2grpc.callout.clusters naming
                         each service's `outbound|50051||<svc FQDN>` cluster, because the route's
                         cluster there (`inbound|50051||`) is ORIGINAL_DST and a callout has no
                         original destination
  PLUGIN_CONFIG_GATEWAY  ingress gateway: the config as is (routes name outbound|8080||… clusters)
  PLUGIN_CONFIG_HOLD     EnvoyFilter variant: plus json2grpc.allow_on_headers_stop_iteration,
                         as one JSON string (google.protobuf.StringValue)
  PLUGIN_CONFIG_CLIENT_REFLECTION
                         outbound sidecar without a descriptor in the manifest: no
                         proto_descriptor_bin, json2grpc.descriptor.reflection asking each
                         service's `outbound|<GRPC_PORT>||<svc FQDN>` cluster (its gRPC port
                         serves gRPC reflection)
  PLUGIN_CONFIG_CLIENT_URL
                         outbound sidecar, descriptor by reference: no proto_descriptor_bin,
                         json2grpc.descriptor.url = the descriptors Service's
                         `outbound|80||<FQDN>` cluster, path /<DESCRIPTOR_FILE>, pinned by the
                         set's sha256
  Neither sets `authority`: for an `outbound|PORT||FQDN` cluster the filter sends `FQDN:PORT`
  (a cluster name with `|` would be refused by the receiving sidecar).

Descriptor placeholders (descriptors.yaml.in): DESCRIPTOR_B64 (the plugin config's
proto_descriptor_bin, for a ConfigMap's binaryData), DESCRIPTOR_SHA256, DESCRIPTOR_FILE,
DESCRIPTORS_FQDN, DESCRIPTORS_PORT, DESCRIPTORS_CLUSTER, DESCRIPTORS_IMAGE.

Other placeholders: NAMESPACE, GATEWAY_NAMESPACE, CLUSTER_DOMAIN, WASM_URL, WASM_SHA256,
FLASHSALE_IMAGE, STOREFRONT_IMAGE, REST_PORT, GRPC_PORT, REFRESH_MS, and <SERVICE>_FQDN /
<SERVICE>_OUTBOUND_CLUSTER / <SERVICE>_REST_CLUSTER per service (INVENTORY, ORDERS).

Example:
  istio/render.py --plugin-config dist/plugin-config.json --out dist/istio \\
      --wasm-url oci://ghcr.io/acme/json2grpc:0.1.0 --sha256-file dist/oci/sha256
"""

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
SHA256 = re.compile(r"^[a-f0-9]{64}$")

# gRPC service -> Kubernetes Service (name) of the examples.
DEFAULT_SERVICE_HOSTS = {"flashsale.v1.Inventory": "inventory", "flashsale.v1.Orders": "orders"}
# The Kubernetes Service (descriptors.yaml.in) that serves the descriptor set over HTTP/1.1.
DESCRIPTORS_HOST = "descriptors"
DESCRIPTORS_PORT = 80


def cluster_name(direction, port, fqdn, subset=""):
    """Istio's cluster naming: direction|port|subset|FQDN (e.g. outbound|50051||x.ns.svc.cluster.local)."""
    return f"{direction}|{port}|{subset}|{fqdn}"


def with_json2grpc(config, **options):
    """A copy of the plugin config with keys merged into its `json2grpc` object (one level
    deeper for `callout`)."""
    out = json.loads(json.dumps(config))
    own = out.setdefault("json2grpc", {})
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(own.get(key), dict):
            own[key] = {**own[key], **value}
        else:
            own[key] = value
    return out


def live_config(config, descriptor):
    """A copy of the plugin config without proto_descriptor_bin, taking its descriptors from
    `descriptor` (json2grpc.descriptor) instead."""
    out = with_json2grpc(config, descriptor=descriptor)
    out.pop("proto_descriptor_bin", None)
    return out


def descriptor_set(plugin):
    """The binary descriptor set of the plugin config (proto_descriptor_bin, base64)."""
    text = plugin.get("proto_descriptor_bin")
    if not isinstance(text, str) or not text:
        raise SystemExit("istio/render.py: the plugin config has no proto_descriptor_bin "
                         "(descriptors.yaml and the by-reference WasmPlugin serve that set)")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as err:
        raise SystemExit(f"istio/render.py: proto_descriptor_bin is not base64: {err}")


def flow_json(value):
    """JSON is YAML flow style: one line, valid at any indentation."""
    return json.dumps(value, ensure_ascii=True)


def render(template, values):
    missing = set()

    def sub(m):
        if m.group(1) not in values:
            missing.add(m.group(1))
            return m.group(0)
        return str(values[m.group(1)])

    out = PLACEHOLDER.sub(sub, template)
    if missing:
        raise SystemExit(f"istio/render.py: no value for {', '.join(sorted(missing))}")
    return out


def read_sha256(a):
    sha = a.sha256
    if not sha and a.sha256_file:
        path = Path(a.sha256_file)
        if path.is_file():
            sha = path.read_text(encoding="utf-8").strip()
    sha = (sha or "").removeprefix("sha256:")
    if sha and not SHA256.match(sha):
        raise SystemExit(f"istio/render.py: sha256 {sha!r} is not 64 lowercase hex digits")
    return sha


def values_for(a, plugin):
    services = plugin.get("services") or []
    hosts = dict(DEFAULT_SERVICE_HOSTS)
    for item in a.service_host:
        grpc_name, sep, host = item.partition("=")
        if not sep:
            raise SystemExit(f"istio/render.py: --service-host {item!r}: expected SERVICE=HOST")
        hosts[grpc_name] = host
    unknown = [s for s in services if s not in hosts]
    if unknown:
        raise SystemExit(f"istio/render.py: no Kubernetes Service for {', '.join(unknown)} "
                         "(--service-host pkg.Service=name)")

    def fqdn(host):
        return f"{host}.{a.namespace}.svc.{a.cluster_domain}"

    server_clusters = {s: cluster_name("outbound", a.grpc_port, fqdn(hosts[s])) for s in services}
    # Each Kubernetes Service once, in the order of `services`: its gRPC port serves reflection.
    reflection_clusters = list(dict.fromkeys(server_clusters.values()))
    descriptors_fqdn = fqdn(DESCRIPTORS_HOST)
    descriptors_cluster = cluster_name("outbound", DESCRIPTORS_PORT, descriptors_fqdn)
    descriptor = descriptor_set(plugin)
    descriptor_sha256 = hashlib.sha256(descriptor).hexdigest()
    values = {
        "NAMESPACE": a.namespace,
        "GATEWAY_NAMESPACE": a.gateway_namespace,
        "CLUSTER_DOMAIN": a.cluster_domain,
        "WASM_URL": a.wasm_url,
        "WASM_SHA256": read_sha256(a),
        "FLASHSALE_IMAGE": a.flashsale_image,
        "STOREFRONT_IMAGE": a.storefront_image,
        "REST_PORT": a.rest_port,
        "GRPC_PORT": a.grpc_port,
        "PLUGIN_CONFIG_CLIENT": flow_json(plugin),
        "PLUGIN_CONFIG_SERVER": flow_json(with_json2grpc(
            plugin, callout={"clusters": server_clusters})),
        "PLUGIN_CONFIG_GATEWAY": flow_json(plugin),
        # A StringValue's value: the config as a JSON string inside a YAML double-quoted
        # scalar (JSON string escapes are valid YAML escapes).
        "PLUGIN_CONFIG_HOLD": json.dumps(json.dumps(
            with_json2grpc(plugin, allow_on_headers_stop_iteration=True), ensure_ascii=True)),
        "PLUGIN_CONFIG_CLIENT_REFLECTION": flow_json(live_config(plugin, {
            "reflection": {"clusters": reflection_clusters},
            "refresh_ms": a.refresh_ms})),
        "PLUGIN_CONFIG_CLIENT_URL": flow_json(live_config(plugin, {
            "url": {"cluster": descriptors_cluster, "path": f"/{a.descriptor_file}",
                    "sha256": descriptor_sha256},
            "refresh_ms": a.refresh_ms})),
        "REFRESH_MS": a.refresh_ms,
        "DESCRIPTOR_B64": base64.b64encode(descriptor).decode("ascii"),
        "DESCRIPTOR_SHA256": descriptor_sha256,
        "DESCRIPTOR_FILE": a.descriptor_file,
        "DESCRIPTORS_FQDN": descriptors_fqdn,
        "DESCRIPTORS_PORT": DESCRIPTORS_PORT,
        "DESCRIPTORS_CLUSTER": descriptors_cluster,
        "DESCRIPTORS_IMAGE": a.descriptors_image,
    }
    for host in sorted(set(hosts.values())):
        key = host.upper().replace("-", "_")
        values[f"{key}_FQDN"] = fqdn(host)
        values[f"{key}_OUTBOUND_CLUSTER"] = cluster_name("outbound", a.grpc_port, fqdn(host))
        values[f"{key}_REST_CLUSTER"] = cluster_name("outbound", a.rest_port, fqdn(host))
    return values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plugin-config", required=True, help="plugin config JSON (dist/plugin-config.json)")
    p.add_argument("--out", default="dist/istio", help="output directory")
    p.add_argument("--templates", default=str(HERE), help="directory of *.yaml.in")
    p.add_argument("--namespace", default="default", help="namespace of the example services")
    p.add_argument("--gateway-namespace", default="istio-system",
                   help="namespace of the ingress gateway deployment")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--wasm-url", default="oci://registry.example.com/json2grpc/json2grpc:dev",
                   help="WasmPlugin url (oci://, https://, file://)")
    p.add_argument("--sha256", default="", help="WasmPlugin sha256 (see istio/README.md)")
    p.add_argument("--sha256-file", default="",
                   help="read the sha256 from this file if it exists (dist/oci/sha256)")
    p.add_argument("--flashsale-image", default="registry.example.com/json2grpc/flashsale:dev",
                   help="image of the example gRPC services (envoy/flashsale.Dockerfile)")
    p.add_argument("--storefront-image", default="curlimages/curl:8.11.1",
                   help="image of the JSON client app (anything with curl)")
    p.add_argument("--rest-port", type=int, default=8080, help="Service port JSON callers use")
    p.add_argument("--grpc-port", type=int, default=50051, help="Service/container gRPC port")
    p.add_argument("--service-host", action="append", default=[],
                   help="pkg.Service=kubernetes-service-name (default: the flashsale examples)")
    p.add_argument("--refresh-ms", type=int, default=30000,
                   help="json2grpc.descriptor.refresh_ms of the reflection / by-reference variants")
    p.add_argument("--descriptor-file", default="flashsale.pb",
                   help="file name of the descriptor set served by descriptors.yaml")
    p.add_argument("--descriptors-image", default="nginx:1.27-alpine",
                   help="image of the HTTP server of descriptors.yaml (serves /usr/share/nginx/html)")
    a = p.parse_args(argv)
    if a.refresh_ms < 1000:
        p.error("--refresh-ms: at least 1000")
    if not re.match(r"^[A-Za-z0-9._-]+$", a.descriptor_file) or a.descriptor_file.startswith("."):
        p.error("--descriptor-file: a plain file name (a ConfigMap key)")

    try:
        plugin = json.loads(Path(a.plugin_config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SystemExit(f"istio/render.py: plugin config {a.plugin_config}: {err} "
                         "(run `make descriptors`)")
    if not isinstance(plugin, dict):
        raise SystemExit(f"istio/render.py: {a.plugin_config}: expected a JSON object")
    # The plain-Envoy config's loopback cluster (an internal listener of envoy/envoy.yaml.in)
    # does not exist in an Istio sidecar: the manifests use direct calls (istio/README.md).
    callout = plugin.get("json2grpc", {}).get("callout", {})
    callout.pop("loopback_cluster", None)
    values = values_for(a, plugin)
    templates = sorted(Path(a.templates).glob("*.yaml.in"))
    if not templates:
        raise SystemExit(f"istio/render.py: no *.yaml.in in {a.templates}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for template in templates:
        target = out / template.name[: -len(".in")]
        target.write_text(render(template.read_text(encoding="utf-8"), values), encoding="utf-8")
        print(f"{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
