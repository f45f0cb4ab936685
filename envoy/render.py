#!/usr/bin/env python3
"""Render an Envoy config template (envoy/*.yaml.in) — stdlib only.

Placeholders are written {{NAME}} in the templates:

  LISTEN_ADDRESS LISTEN_PORT   the listener the local app talks to
  ADMIN_PORT                   admin interface (always on 127.0.0.1)
  INVENTORY_HOST INVENTORY_PORT INVENTORY_TYPE   cluster `inventory`
  ORDERS_HOST ORDERS_PORT ORDERS_TYPE            cluster `orders`
  HC_INTERVAL                  gRPC health-check interval
  WASM_PATH                    the filter module (envoy.yaml.in)
  PLUGIN_CONFIG                the plugin config JSON as one YAML double-quoted string
  TRANSCODER_CONFIG            native grpc_json_transcoder fields (native-transcoder.yaml.in)

A cluster whose host is an IP literal is STATIC, otherwise STRICT_DNS.

Examples:
  render.py envoy/envoy.yaml.in -o dist/envoy.yaml --wasm dist/json2grpc.wasm \
      --plugin-config dist/plugin-config.json \
      --inventory 127.0.0.1:50051 --orders 127.0.0.1:50052
  render.py envoy/native-transcoder.yaml.in -o dist/native.yaml \
      --plugin-config dist/plugin-config.json --descriptor dist/flashsale.pb ...
"""

import argparse
import ipaddress
import json
import os
import re
import sys

# Fields of envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder. json2grpc's
# own extensions (e.g. the `json2grpc` key) are dropped when rendering the native config.
NATIVE_FIELDS = {
    "proto_descriptor",
    "proto_descriptor_bin",
    "services",
    "print_options",
    "match_incoming_request_route",
    "ignored_query_parameters",
    "auto_mapping",
    "ignore_unknown_query_parameters",
    "convert_grpc_status",
    "url_unescape_spec",
    "query_param_unescape_plus",
    "match_unregistered_custom_verb",
    "request_validation_options",
    "case_insensitive_enum_parsing",
    "max_request_body_size",
    "max_response_body_size",
    "capture_unknown_query_parameters",
}

PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def split_host_port(value, what):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SystemExit(f"render.py: --{what} {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def cluster_type(host):
    try:
        ipaddress.ip_address(host)
        return "STATIC"
    except ValueError:
        return "STRICT_DNS"


def yaml_string(text):
    """A YAML double-quoted scalar: JSON string escapes are valid YAML escapes."""
    return json.dumps(text, ensure_ascii=True)


def load_plugin_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise SystemExit(f"render.py: plugin config {path}: {err}")


def native_config(plugin, descriptor):
    cfg = {"@type": "type.googleapis.com/envoy.extensions.filters.http."
                    "grpc_json_transcoder.v3.GrpcJsonTranscoder"}
    dropped = []
    for key, value in plugin.items():
        if key in NATIVE_FIELDS:
            cfg[key] = value
        else:
            dropped.append(key)
    if dropped:
        print(f"render.py: not native transcoder options, left out: {', '.join(dropped)}",
              file=sys.stderr)
    if descriptor:
        cfg.pop("proto_descriptor_bin", None)
        cfg["proto_descriptor"] = os.path.abspath(descriptor)
    if "proto_descriptor" not in cfg and "proto_descriptor_bin" not in cfg:
        raise SystemExit("render.py: native config needs --descriptor or proto_descriptor_bin")
    # JSON is YAML flow style: one line, safe at any indentation.
    return json.dumps(cfg, ensure_ascii=True, sort_keys=False)


DESCRIPTOR_PATH = "/flashsale.pb"

# The by-reference variant's file server, inside Envoy so the example runs alone: a loopback
# listener answering GET /flashsale.pb with the file. Not an internal listener: the first fetch
# may come from the main thread's VM, which cannot connect to one (HTTP 503 until a worker's VM
# takes the lease). In production `descriptors` is your file server's cluster (object storage,
# a ConfigMap behind nginx, an artifact server).
DESCRIPTOR_FILES_LISTENER = """
  # json2grpc.descriptor.url's file server for this example (see the descriptors cluster).
  - name: descriptor_files
    address:
      socket_address: { address: 127.0.0.1, port_value: %(port)d }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: descriptor_files
          route_config:
            # A direct response's body is capped at 4 KiB unless raised here.
            max_direct_response_body_size_bytes: 16777216
            virtual_hosts:
            - name: files
              domains: ["*"]
              routes:
              - match: { path: "%(path)s" }
                direct_response: { status: 200, body: { filename: %(file)s } }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""

DESCRIPTOR_FILES_CLUSTER = """
  # Where json2grpc.descriptor.url fetches the FileDescriptorSet: here the descriptor_files
  # listener; in production, your file server.
  - name: descriptors
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: descriptors
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: %(port)d }
"""


def descriptor_files(path, port, keep_paths):
    file = yaml_string(path if keep_paths else os.path.abspath(path))
    return (DESCRIPTOR_FILES_LISTENER % {"path": DESCRIPTOR_PATH, "file": file, "port": port},
            DESCRIPTOR_FILES_CLUSTER.rstrip("\n") % {"port": port})


def render(template, values):
    missing = set()

    def sub(m):
        name = m.group(1)
        if name not in values:
            missing.add(name)
            return m.group(0)
        return str(values[name])

    out = PLACEHOLDER.sub(sub, template)
    if missing:
        raise SystemExit(f"render.py: no value for {', '.join(sorted(missing))}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("template")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--listen-address", default="127.0.0.1")
    p.add_argument("--listen-port", type=int, default=8080)
    p.add_argument("--admin-port", type=int, default=9901)
    p.add_argument("--inventory", default="127.0.0.1:50051", help="HOST:PORT")
    p.add_argument("--orders", default="127.0.0.1:50052", help="HOST:PORT")
    p.add_argument("--health-check-interval", default="1s")
    p.add_argument("--wasm", default="dist/json2grpc.wasm",
                   help="path of the .wasm as Envoy sees it (made absolute unless --keep-paths)")
    p.add_argument("--plugin-config", required=True, help="plugin config JSON file")
    p.add_argument("--descriptor", help="descriptor set for the native transcoder's proto_descriptor")
    p.add_argument("--serve-descriptor", metavar="FILE",
                   help="add a `descriptors` cluster serving FILE at /flashsale.pb (the by-reference "
                        "variant: json2grpc.descriptor.url)")
    p.add_argument("--descriptor-port", type=int, default=8081,
                   help="the loopback port of --serve-descriptor's listener")
    p.add_argument("--keep-paths", action="store_true",
                   help="use --wasm verbatim (paths inside a container)")
    a = p.parse_args(argv)

    plugin = load_plugin_config(a.plugin_config)
    if not isinstance(plugin, dict):
        raise SystemExit(f"render.py: plugin config {a.plugin_config}: expected a JSON object")
    inv_host, inv_port = split_host_port(a.inventory, "inventory")
    ord_host, ord_port = split_host_port(a.orders, "orders")
    with open(a.template, encoding="utf-8") as f:
        template = f.read()

    values = {
        "LISTEN_ADDRESS": a.listen_address,
        "LISTEN_PORT": a.listen_port,
        "ADMIN_PORT": a.admin_port,
        "INVENTORY_HOST": inv_host,
        "INVENTORY_PORT": inv_port,
        "INVENTORY_TYPE": cluster_type(inv_host),
        "ORDERS_HOST": ord_host,
        "ORDERS_PORT": ord_port,
        "ORDERS_TYPE": cluster_type(ord_host),
        "HC_INTERVAL": a.health_check_interval,
        "WASM_PATH": yaml_string(a.wasm if a.keep_paths else os.path.abspath(a.wasm)),
        "PLUGIN_CONFIG": yaml_string(json.dumps(plugin, ensure_ascii=True,
                                                separators=(",", ":"))),
    }
    values["DESCRIPTOR_FILES_LISTENER"], values["DESCRIPTOR_FILES_CLUSTER"] = (
        descriptor_files(a.serve_descriptor, a.descriptor_port, a.keep_paths) if a.serve_descriptor
        else ("", ""))
    if "{{TRANSCODER_CONFIG}}" in template:
        values["TRANSCODER_CONFIG"] = native_config(plugin, a.descriptor)

    out = render(template, values)
    if a.output:
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        tmp = a.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(out)
        os.replace(tmp, a.output)
    else:
        sys.stdout.write(out)


if __name__ == "__main__":
    main()
