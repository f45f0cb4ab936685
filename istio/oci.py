#!/usr/bin/env python3
"""Packages a Wasm module as an OCI image that Istio's Wasm image fetcher accepts — stdlib only,
no Docker.

Format: Istio's "compat" variant (istio pkg/wasm/imagefetcher.go, used by Istio >= 1.12 to
today): an OCI image manifest (`application/vnd.oci.image.manifest.v1+json`) with an OCI image
config and ONE layer `application/vnd.oci.image.layer.v1.tar+gzip` whose tar holds the module
as `plugin.wasm`. Istio takes the last layer, un-gzips it and reads the file named
`plugin.wasm`. This is also what `docker build` of `FROM scratch` + `COPY json2grpc.wasm
./plugin.wasm` produces, so container runtimes and registries treat it as an ordinary image.

Not chosen: the single-layer "Wasm OCI artifact" (`application/vnd.module.wasm.content.layer.v1+wasm`
layer, `application/vnd.module.wasm.config.v1+json` config). Istio's fetcher parses that
media type only in an image with exactly two layers (the old solo.io spec) and rejects a
one-layer artifact ("number of layers must be 2"), so e.g. a plain `oras push` of the .wasm
does not load in Istio.

Output (--out DIR, default dist/oci):
  DIR/oci-layout, DIR/index.json, DIR/blobs/sha256/…   an OCI image layout (tag in index.json)
  DIR/digest          the manifest digest, `sha256:<hex>`: what a registry reports for the push
  DIR/sha256          the same digest without `sha256:` — the value for WasmPlugin `spec.sha256`
                      with an `oci://` url (Istio compares it with the image manifest digest)
  DIR/wasm.sha256     sha256 of the .wasm itself — the value for `spec.sha256` with an
                      `http(s)://` url (Istio hashes the downloaded file)
  --tarball FILE      the layout as one tar (`skopeo copy oci-archive:FILE …`), with a
                      docker-save style manifest.json too (`docker load -i FILE`)

Everything is deterministic (fixed mtimes, gzip without timestamp): the same .wasm always
gives the same digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_NAME = "plugin.wasm"  # the file name Istio looks for in the layer
WASM_MAGIC = b"\x00asm"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(wasm, mtime):
    """An uncompressed tar with one regular file, plugin.wasm (root-owned, 0644)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(WASM_NAME)
        info.size = len(wasm)
        info.mode = 0o644
        info.mtime = mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def build(wasm, tag, mtime, created, source):
    """Returns (blobs {hex: bytes}, manifest descriptor, facts)."""
    tar = layer_tar(wasm, mtime)
    layer = gzip_bytes(tar)
    config = {
        # The conventional platform of Wasm images (as `docker buildx --platform wasi/wasm`).
        "architecture": "wasm",
        "os": "wasip1",
        "created": created,
        "config": {"Labels": {"org.opencontainers.image.title": "json2grpc"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_hex(tar)]},
        "history": [{"created": created, "created_by": "istio/oci.py: plugin.wasm"}],
    }
    config_bytes = canonical_json(config)
    annotations = {
        "org.opencontainers.image.title": "json2grpc",
        "org.opencontainers.image.description":
            "json2grpc proxy-wasm filter (JSON/REST to gRPC transcoder) for Envoy and Istio",
        "org.opencontainers.image.created": created,
    }
    if source:
        annotations["org.opencontainers.image.source"] = source
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": "sha256:" + sha256_hex(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": "sha256:" + sha256_hex(layer),
                    "size": len(layer),
                    "annotations": {"org.opencontainers.image.title": WASM_NAME}}],
        "annotations": annotations,
    }
    manifest_bytes = canonical_json(manifest)
    blobs = {sha256_hex(b): b for b in (layer, config_bytes, manifest_bytes)}
    descriptor = {"mediaType": MANIFEST_TYPE, "digest": "sha256:" + sha256_hex(manifest_bytes),
                  "size": len(manifest_bytes),
                  "annotations": {"org.opencontainers.image.ref.name": tag}}
    facts = {
        "manifest_digest": descriptor["digest"],
        "config_digest": manifest["config"]["digest"],
        "layer_digest": manifest["layers"][0]["digest"],
        "layer_diff_id": config["rootfs"]["diff_ids"][0],
        "wasm_sha256": sha256_hex(wasm),
        "wasm_size": len(wasm),
        "tag": tag,
    }
    return blobs, descriptor, facts


def write_layout(out, blobs, descriptor, facts):
    if out.exists():
        shutil.rmtree(out)
    (out / "blobs" / "sha256").mkdir(parents=True)
    for hexdigest, data in blobs.items():
        (out / "blobs" / "sha256" / hexdigest).write_bytes(data)
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}) + "\n")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [descriptor]}
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    digest = facts["manifest_digest"]
    (out / "digest").write_text(digest + "\n")
    (out / "sha256").write_text(digest.split(":", 1)[1] + "\n")
    (out / "wasm.sha256").write_text(facts["wasm_sha256"] + "\n")
    (out / "image.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")


def write_tarball(path, out, blobs, facts, repo):
    """The layout as a tar (oci-archive) plus manifest.json for `docker load`."""
    manifest = json.loads(blobs[facts["manifest_digest"].split(":", 1)[1]])
    docker_manifest = [{
        "Config": "blobs/sha256/" + manifest["config"]["digest"].split(":", 1)[1],
        "RepoTags": [f"{repo}:{facts['tag']}"],
        "Layers": ["blobs/sha256/" + layer["digest"].split(":", 1)[1]
                   for layer in manifest["layers"]],
    }]
    entries = [("oci-layout", (out / "oci-layout").read_bytes()),
               ("index.json", (out / "index.json").read_bytes()),
               ("manifest.json", canonical_json(docker_manifest))]
    entries += [(f"blobs/sha256/{h}", data) for h, data in sorted(blobs.items())]
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wasm", default="dist/json2grpc.wasm", help="the module to package")
    p.add_argument("--out", default="dist/oci", help="OCI image layout directory (replaced)")
    p.add_argument("--tag", default="latest", help="tag recorded in index.json")
    p.add_argument("--tarball", help="also write the layout as this tar file")
    p.add_argument("--repository", default="json2grpc",
                   help="repository name for the tarball's docker-load tag")
    p.add_argument("--source", default="", help="org.opencontainers.image.source annotation")
    a = p.parse_args(argv)

    wasm_path = Path(a.wasm)
    try:
        wasm = wasm_path.read_bytes()
    except OSError as err:
        raise SystemExit(f"oci.py: {err} (run `make wasm`)")
    if wasm[:4] != WASM_MAGIC:
        raise SystemExit(f"oci.py: {wasm_path} is not a Wasm module (no \\0asm header)")
    # Reproducible: SOURCE_DATE_EPOCH when set, else the epoch.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    import datetime
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    blobs, descriptor, facts = build(wasm, a.tag, epoch, created, a.source)
    out = Path(a.out)
    write_layout(out, blobs, descriptor, facts)
    if a.tarball:
        write_tarball(Path(a.tarball), out, blobs, facts, a.repository)
    print(f"{out}: OCI image layout, tag {a.tag}")
    print(f"  manifest digest {facts['manifest_digest']}  (WasmPlugin sha256 for oci:// urls)")
    print(f"  wasm sha256     {facts['wasm_sha256']}  (sha256 for http(s):// urls)")
    if a.tarball:
        print(f"  tarball         {a.tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
