#!/usr/bin/env python3
"""Regenerates tests/istio/schemas/*.json: JSON Schemas of the Kubernetes/Istio kinds we ship.

Source: the typed models on PyPI that are generated from the Istio CRDs' and Kubernetes'
OpenAPI schemas (`cloudcoil-models-istio` = Istio 1.24 CRDs, `cloudcoil-models-kubernetes`).
They are only needed to regenerate; `make istio-validate` reads the JSON files with
`jsonschema` alone. Run it in a throwaway venv (not the test venv):

    python3 -m venv .cache/schema-venv
    .cache/schema-venv/bin/pip install cloudcoil==0.6.0 cloudcoil-models-istio==1.24.2.1 \
        cloudcoil-models-kubernetes==1.32.1.3
    .cache/schema-venv/bin/python tests/istio/gen_schemas.py

Post-processing, to match what the API server does with `kubectl apply` (strict field
validation) on these structural schemas:
- every object with declared properties gets `additionalProperties: false`, so a misspelt
  field is an error (free-form fields — `pluginConfig`, EnvoyFilter `patch.value`, labels —
  keep their open schema);
- `status` is dropped (never in a manifest);
- `anyOf: [X, null]` (the models' Optional) becomes X: the API server treats a null as an
  absent field, and the validator drops nulls before checking, so errors name the real
  constraint instead of "not valid under any of the given schemas".
The CRDs' CEL rules (x-kubernetes-validations) are not in the models: test_istio_manifests.py
checks the ones that concern our manifests itself.
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "schemas"

# (apiVersion, kind, python module, class)
KINDS = [
    ("extensions.istio.io/v1alpha1", "WasmPlugin",
     "cloudcoil.models.istio.extensions.v1alpha1", "WasmPlugin"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter",
     "cloudcoil.models.istio.networking.v1alpha3", "EnvoyFilter"),
    ("networking.istio.io/v1", "DestinationRule",
     "cloudcoil.models.istio.networking.v1", "DestinationRule"),
    ("networking.istio.io/v1", "Gateway",
     "cloudcoil.models.istio.networking.v1", "Gateway"),
    ("networking.istio.io/v1", "VirtualService",
     "cloudcoil.models.istio.networking.v1", "VirtualService"),
    ("apps/v1", "Deployment", "cloudcoil.models.kubernetes.apps.v1", "Deployment"),
    ("v1", "Service", "cloudcoil.models.kubernetes.core.v1", "Service"),
    ("v1", "ServiceAccount", "cloudcoil.models.kubernetes.core.v1", "ServiceAccount"),
    ("v1", "ConfigMap", "cloudcoil.models.kubernetes.core.v1", "ConfigMap"),
]


def close_objects(node):
    """additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            close_objects(value)
    elif isinstance(node, list):
        for value in node:
            close_objects(value)


def drop_optional_null(node):
    if isinstance(node, dict):
        alts = node.get("anyOf")
        if isinstance(alts, list) and len(alts) == 2 and {"type": "null"} in alts:
            (other,) = [a for a in alts if a != {"type": "null"}]
            del node["anyOf"]
            node.pop("default", None)
            for key, value in other.items():
                node.setdefault(key, value)
        for value in node.values():
            drop_optional_null(value)
    elif isinstance(node, list):
        for value in node:
            drop_optional_null(value)


def file_name(api_version, kind):
    return f"{api_version.replace('/', '_')}_{kind}.json"


def main():
    import importlib
    import importlib.metadata as md

    versions = {p: md.version(p) for p in
                ("cloudcoil", "cloudcoil-models-istio", "cloudcoil-models-kubernetes")}
    OUT.mkdir(parents=True, exist_ok=True)
    index = {"generated_by": "tests/istio/gen_schemas.py", "packages": versions, "kinds": {}}
    for api_version, kind, module, cls in KINDS:
        model = getattr(importlib.import_module(module), cls)
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["properties"].pop("status", None)
        schema["properties"]["apiVersion"] = {"const": api_version}
        schema["properties"]["kind"] = {"const": kind}
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind"})
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        drop_optional_null(schema)
        close_objects(schema)
        name = file_name(api_version, kind)
        (OUT / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        index["kinds"][f"{api_version}/{kind}"] = name
        print(f"{name}: {(OUT / name).stat().st_size} bytes")
    (OUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
