"""Fixtures of the end-to-end tests (see harness.py for the machinery).

- `services`: the two flash-sale gRPC services (one per session) with --record files;
  `services.mark()` then `services.records(mark)` gives what they received meanwhile.
- `envoy_factory.json2grpc(**overrides)` / `.json2grpc(config=dict)`: an Envoy with the
  json2grpc filter for that plugin config (cached per distinct config, restarted if it died).
- `envoy`: the Envoy with the default plugin config (harness.base_plugin_config()).
- `native_envoy`: the oracle, Envoy's native grpc_json_transcoder with the same config.
- `chaos`: the misbehaving gRPC upstream (grpc_chaos, driven by the `x-chaos` header); pass
  `inventory=chaos.address` to the factory to put it behind the `inventory` cluster, and
  `hold_headers=True` for the Wasm filter's `allow_on_headers_stop_iteration` mode.
When a test fails, the logs of the Envoys it used are attached to its report.
"""

import json
from collections import OrderedDict

import pytest

import harness

# Envoys kept running at once (least recently used ones are stopped).
MAX_CACHED_ENVOYS = 4


def _fail(err):
    pytest.fail(str(err), pytrace=False)


def apply_route_edits(config, edits):
    """`edits`: [(prefix, fields)]: the `app` route matching `prefix` gets `fields` merged into
    its `route` action (a timeout, a retry policy, …), or is removed when `fields` is None."""
    routes = harness.app_routes(config)
    for prefix, fields in edits:
        matching = [r for r in routes if r["match"].get("prefix") == prefix]
        if not matching:
            raise harness.HarnessError(f"no route with prefix {prefix}")
        for route in matching:
            if fields is None:
                routes.remove(route)
            else:
                route["route"].update(fields)


class EnvoyFactory:
    def __init__(self, services, workdir):
        self.services = services
        self.workdir = workdir
        self.cache = OrderedDict()
        self.count = 0

    def _get(self, kind, config, inventory=None, hold_headers=False, listener_buffer_bytes=None,
             route_edits=None):
        key = (kind, json.dumps(config, sort_keys=True), inventory, hold_headers, listener_buffer_bytes,
               json.dumps(route_edits))
        envoy = self.cache.get(key)
        if envoy is not None and envoy.alive() and not envoy.vm_failed():
            self.cache.move_to_end(key)
            harness._used.append(envoy)
            return envoy
        if envoy is not None:
            envoy.stop()
            del self.cache[key]
        while len(self.cache) >= MAX_CACHED_ENVOYS:
            _, old = self.cache.popitem(last=False)
            old.stop()
        self.count += 1
        name = f"{kind}-{self.count}"
        path = self.workdir / f"{name}.yaml"
        try:
            if kind == "json2grpc":
                harness.require_file(harness.WASM, "`make e2e` builds it first: run `make wasm`")
                harness.render(harness.TEMPLATE, path, config, self.services, wasm=harness.WASM,
                               inventory=inventory, hold_headers=hold_headers,
                               listener_buffer_bytes=listener_buffer_bytes)
            else:
                harness.render(harness.NATIVE_TEMPLATE, path, config, self.services,
                               descriptor=harness.DESCRIPTOR, inventory=inventory)
            if route_edits:
                harness.edit_config(path, lambda c: apply_route_edits(c, route_edits))
            envoy = harness.Envoy(name, path, self.workdir)
        except harness.HarnessError as err:
            _fail(err)
        self.cache[key] = envoy
        return envoy

    def json2grpc(self, config=None, *, inventory=None, hold_headers=False, listener_buffer_bytes=None,
                  route_edits=None, **overrides):
        """Envoy + json2grpc with `config` (a full plugin config dict) or the default config
        with top-level keys replaced by `overrides`. `inventory`: "HOST:PORT" of the
        `inventory` cluster instead of the Inventory service. `hold_headers`: the Wasm
        PluginConfig gets `allow_on_headers_stop_iteration: true` and the plugin config
        `json2grpc.allow_on_headers_stop_iteration: true`. `listener_buffer_bytes`: the
        listener's `per_connection_buffer_limit_bytes`."""
        try:
            config = config if config is not None else harness.base_plugin_config(**overrides)
        except harness.HarnessError as err:
            _fail(err)
        if hold_headers:
            config = dict(config)
            config["json2grpc"] = {**config.get("json2grpc", {}),
                                   "allow_on_headers_stop_iteration": True}
        return self._get("json2grpc", config, inventory, hold_headers, listener_buffer_bytes,
                         route_edits)

    def native(self, config=None, *, inventory=None, route_edits=None, **overrides):
        """Envoy + native grpc_json_transcoder; json2grpc-only keys are left out."""
        try:
            config = config if config is not None else harness.base_plugin_config(**overrides)
        except harness.HarnessError as err:
            _fail(err)
        return self._get("native", config, inventory, route_edits=route_edits)

    def stop(self):
        for envoy in self.cache.values():
            envoy.stop()
        self.cache.clear()


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    try:
        s = harness.Services(tmp_path_factory.mktemp("services"))
    except harness.HarnessError as err:
        _fail(err)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def chaos(tmp_path_factory):
    """The misbehaving gRPC upstream (one per session)."""
    try:
        c = harness.Chaos(tmp_path_factory.mktemp("chaos"))
    except harness.HarnessError as err:
        _fail(err)
    yield c
    c.stop()


@pytest.fixture(scope="session")
def envoy_factory(services, tmp_path_factory):
    factory = EnvoyFactory(services, tmp_path_factory.mktemp("envoy"))
    yield factory
    factory.stop()


@pytest.fixture
def envoy(envoy_factory):
    """Envoy with the json2grpc filter and the default plugin config."""
    return envoy_factory.json2grpc()


@pytest.fixture
def native_envoy(envoy_factory):
    """The oracle: Envoy's native grpc_json_transcoder with the default config."""
    return envoy_factory.native()


def pytest_runtest_setup(item):
    harness.used_envoys_reset()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for envoy in harness.used_envoys():
            state = "running" if envoy.alive() else f"exited {envoy.proc.returncode}"
            report.sections.append(
                (f"Envoy {envoy.name} ({state}) log {envoy.log}", envoy.log_text()))
