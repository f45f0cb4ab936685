"""The Envoy configuration Istio produces for our manifests, for a plain Envoy — stdlib only.

Used by tests/istio/test_istio_manifests.py (`envoy --mode validate` of every Wasm config we ship) and by
tests/e2e/test_istio.py and test_istio_live.py (the same config, running against the example
services).

What is reproduced, from Istio's sources (pilot extensions.go / extensionfilter.go, pkg/wasm):
- a WasmPlugin becomes an HTTP filter named `extensions.istio.io/wasmplugin/<ns>.<name>` whose
  config comes by ECDS (`config_discovery`, type URLs Wasm + RBAC), placed just before the
  router for UNSPECIFIED_PHASE; the ECDS resource is an `envoy.extensions.filters.http.wasm.v3.Wasm`
  with `config.name` `<ns>.<name>`, `root_id` = pluginName, `configuration` = a
  `google.protobuf.StringValue` holding `pluginConfig` as JSON, the V8 runtime, the
  `ISTIO_META_WASM_*` environment variables and the fail strategy as `failure_policy`;
  istio-agent has replaced the remote (oci://) code by a local file before Envoy sees it;
- an EnvoyFilter EXTENSION_CONFIG patch is such an ECDS resource as written (the agent swaps
  its remote code for the local file the same way);
- outbound listener `0.0.0.0_<port>`, route config `<port>`, one virtual host per service
  `<fqdn>:<port>` with Istio's domain list and default route (prefix /, timeout 0s, Istio's
  retry policy) to cluster `outbound|<port>||<fqdn>`; HTTP/2 clusters for gRPC ports; the
  `allow_any`-style catch-all virtual host (here REGISTRY_ONLY's 502 `block_all`);
- inbound: route config `inbound|<port>||` with the `inbound|http|<port>` virtual host to
  cluster `inbound|<port>||`.
Here ECDS is served from files (`path_config_source`) instead of istiod's ADS, clusters are
STATIC (loopback addresses of the test services) instead of EDS, there is no mTLS, and
Istio's own filters that stock Envoy lacks (istio.metadata_exchange, istio.alpn, istio.stats)
are left out. The inbound cluster is STATIC too (what a Sidecar `defaultEndpoint:
127.0.0.1:<port>` gives); Istio's default ORIGINAL_DST inbound cluster cannot be reproduced
on loopback without iptables.
"""

import json
from pathlib import Path

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
TYPED_EXTENSION_CONFIG = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager."
            "v3.HttpConnectionManager")
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FAIL_POLICY = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}
WASMPLUGIN_PREFIX = "extensions.istio.io/wasmplugin/"


# ---- manifests ------------------------------------------------------------------------------

def load_manifests(directory):
    """{file name: [documents]} of every *.yaml in `directory` (PyYAML)."""
    import yaml

    out = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        with open(path, encoding="utf-8") as f:
            out[path.name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return out


def find(manifests, kind, name):
    for docs in manifests.values():
        for doc in docs:
            if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
                return doc
    raise KeyError(f"no {kind} {name} in the manifests")


# ---- what Istio makes of them ----------------------------------------------------------------

def wasm_from_wasmplugin(plugin, wasm_path, resource_version="1"):
    """(filter name, ECDS Wasm typed config) for a WasmPlugin manifest, after istio-agent
    replaced the remote module by `wasm_path`."""
    meta, spec = plugin["metadata"], plugin["spec"]
    resource = f"{meta.get('namespace', 'default')}.{meta['name']}"
    config = {
        "name": resource,
        "root_id": spec.get("pluginName", ""),
        "vm_config": {
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(wasm_path)}},
            "environment_variables": {"key_values": {
                "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": resource_version}},
        },
    }
    if spec.get("imagePullPolicy") not in (None, "UNSPECIFIED_POLICY"):
        config["vm_config"]["environment_variables"]["key_values"][
            "ISTIO_META_WASM_IMAGE_PULL_POLICY"] = spec["imagePullPolicy"]
    if spec.get("pluginConfig"):
        config["configuration"] = {"@type": STRING_VALUE,
                                   "value": json.dumps(spec["pluginConfig"],
                                                       separators=(",", ":"))}
    if spec.get("failStrategy") in FAIL_POLICY:
        config["failure_policy"] = FAIL_POLICY[spec["failStrategy"]]
    return WASMPLUGIN_PREFIX + resource, {"@type": WASM_TYPE, "config": config}


def envoyfilter_patches(envoyfilter, apply_to):
    return [p for p in envoyfilter["spec"]["configPatches"] if p.get("applyTo") == apply_to]


def wasm_from_extension_config(envoyfilter, wasm_path):
    """(ECDS name, typed config, HTTP_FILTER patch value) of an EnvoyFilter that adds a Wasm
    filter by EXTENSION_CONFIG, with the remote module replaced by `wasm_path` as istio-agent
    does (it keeps everything else)."""
    (ext,) = envoyfilter_patches(envoyfilter, "EXTENSION_CONFIG")
    (http,) = envoyfilter_patches(envoyfilter, "HTTP_FILTER")
    value = json.loads(json.dumps(ext["patch"]["value"]))
    typed = value["typed_config"]
    code = typed["config"]["vm_config"]["code"]
    if "remote" in code:
        code.pop("remote")
        code["local"] = {"filename": str(wasm_path)}
    return value["name"], typed, json.loads(json.dumps(http["patch"]["value"]))


def write_ecds(path, name, typed_config, version="1"):
    """An ECDS resource file (a DiscoveryResponse) for `path_config_source`."""
    response = {"version_info": version, "resources": [
        {"@type": TYPED_EXTENSION_CONFIG, "name": name, "typed_config": typed_config}]}
    Path(path).write_text(json.dumps(response, indent=1))
    return path


def ecds_filter(name, ecds_path):
    """The HCM entry Istio emits for a WasmPlugin, with the ECDS source a file."""
    return {"name": name, "config_discovery": {
        "config_source": {"path_config_source": {"path": str(ecds_path)},
                          "resource_api_version": "V3"},
        "type_urls": [WASM_TYPE, RBAC_TYPE]}}


def inline_filter(name, typed_config):
    return {"name": name, "typed_config": typed_config}


# ---- listeners, routes, clusters ---------------------------------------------------------------

def cluster_name(direction, port, fqdn=""):
    return f"{direction}|{port}||{fqdn}"


def vhost_domains(fqdn, port):
    """Istio's domains for a service's virtual host from a pod in the same namespace."""
    short, ns = fqdn.split(".")[:2]
    names = [fqdn, f"{short}.{ns}.svc", f"{short}.{ns}", short]
    return [d for n in names for d in (n, f"{n}:{port}")]


def outbound_route(fqdn, port):
    return {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": cluster_name("outbound", port, fqdn),
            "timeout": "0s",
            "retry_policy": {
                "retry_on": "connect-failure,refused-stream,unavailable,cancelled,"
                            "retriable-status-codes",
                "num_retries": 2,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                          "typed_config": {"@type": "type.googleapis.com/envoy."
                                                           "extensions.retry.host.previous_hosts."
                                                           "v3.PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": "5",
            },
            "max_stream_duration": {"max_stream_duration": "0s",
                                    "grpc_timeout_header_max": "0s"},
        },
        "decorator": {"operation": f"{fqdn}:{port}/*"},
    }


def istio_http_filters(wasm_filter):
    """Istio's sidecar HTTP filter chain (the parts stock Envoy has), the plugin (if any) just
    before the router (phase UNSPECIFIED_PHASE)."""
    filters = [
        {"name": "envoy.filters.http.grpc_stats", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
            "emit_filter_state": True, "stats_for_all_methods": False}},
        {"name": "envoy.filters.http.fault", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
        {"name": "envoy.filters.http.cors", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
        wasm_filter,
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    return [f for f in filters if f is not None]


def hcm(stat_prefix, route_config, http_filters):
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": HCM_TYPE,
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            "route_config": route_config,
            "http_filters": http_filters,
            "use_remote_address": False,
            "normalize_path": True,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
            "upgrade_configs": [{"upgrade_type": "websocket"}],
            "stream_idle_timeout": "0s",
            "access_log": [{"name": "envoy.access_loggers.stdout", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3."
                         "StdoutAccessLog"}}],
        },
    }


def outbound_listener(port, services, wasm_filter, listen_port=0):
    """Istio's outbound HTTP listener for service port `port` (`0.0.0.0_<port>`), bound on
    loopback. `services`: FQDNs having that port."""
    vhosts = [{"name": f"{fqdn}:{port}", "domains": vhost_domains(fqdn, port),
               "routes": [outbound_route(fqdn, port)], "include_request_attempt_count": True}
              for fqdn in services]
    vhosts.append({"name": "block_all", "domains": ["*"],
                   "routes": [{"name": "block_all", "match": {"prefix": "/"},
                               "direct_response": {"status": 502}}],
                   "include_request_attempt_count": True})
    route_config = {"name": str(port), "virtual_hosts": vhosts, "validate_clusters": False}
    return {
        "name": f"0.0.0.0_{port}",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [hcm(f"outbound_0.0.0.0_{port}", route_config,
                                           istio_http_filters(wasm_filter))]}],
    }


def inbound_listener(port, wasm_filter, listen_port=0, cluster=None):
    """The HTTP part of Istio's `virtualInbound` for a workload port, as its own listener.
    `wasm_filter` None: a sidecar without a plugin. `cluster`: the route's cluster instead of
    `inbound|<port>||` (each pod's sidecar has its own; one Envoy standing for two sidecars
    needs two names)."""
    inbound = cluster or cluster_name("inbound", port)
    route_config = {"name": cluster_name("inbound", port), "validate_clusters": False,
                    "virtual_hosts": [{"name": f"inbound|http|{port}", "domains": ["*"],
                                       "routes": [{"name": "default", "match": {"prefix": "/"},
                                                   "route": {"cluster": inbound,
                                                             "timeout": "0s",
                                                             "max_stream_duration": {
                                                                 "max_stream_duration": "0s",
                                                                 "grpc_timeout_header_max":
                                                                     "0s"}},
                                                   "decorator": {"operation":
                                                                 f"inbound|{port}||:*"}}]}]}
    return {
        "name": f"inbound_0.0.0.0_{port}",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
        "traffic_direction": "INBOUND",
        "filter_chains": [{"filters": [hcm(f"inbound_0.0.0.0_{port}", route_config,
                                           istio_http_filters(wasm_filter))]}],
    }


def h2_cluster(name, host, port):
    """An HTTP/2 cluster as Istio makes for a gRPC service port (STATIC here, EDS there)."""
    cluster = http1_cluster(name, host, port)
    cluster["typed_extension_protocol_options"] = {HTTP_PROTOCOL_OPTIONS: {
        "@type": "type.googleapis.com/" + HTTP_PROTOCOL_OPTIONS,
        "explicit_http_config": {"http2_protocol_options": {}}}}
    return cluster


def http1_cluster(name, host, port):
    """A cluster as Istio makes for an `http` service port: HTTP/1.1 upstream."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {"thresholds": [{"max_connections": 4294967295,
                                             "max_pending_requests": 4294967295,
                                             "max_requests": 4294967295,
                                             "max_retries": 4294967295,
                                             "track_remaining": True}]},
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host,
                                                         "port_value": int(port)}}}}]}]},
    }


def bootstrap(listeners, clusters, admin_port=0):
    return {
        "node": {"id": "sidecar~127.0.0.1~storefront.default~default.svc.cluster.local",
                 "cluster": "storefront.default"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def split_host_port(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def service_clusters(fqdn_to_address, ports):
    """outbound|<port>||<fqdn> for every service and port, all to the service's address."""
    out = []
    for fqdn, address in fqdn_to_address.items():
        host, port = split_host_port(address)
        for p in ports:
            out.append(h2_cluster(cluster_name("outbound", p, fqdn), host, port))
    return out


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=1))
    return path
