"""CORS in a real browser (json2grpc.rest.cors): headless Chromium (Debian's chromium, driven by
Debian's chromedriver through selenium) loads a page from one origin that calls the demo API
through Envoy, on another origin, with fetch: a GET, a POST with JSON, a PATCH with a custom
header. The test reads what the page saw (its DOM) and what the services received. The same page
from an origin the policy does not allow fails as the browser enforces it.

`make browser` (part of `make e2e`, and of .ci/run) installs chromium and chromium-driver with
apt-get. Without them the test is skipped, saying so, except under CI (CI=true) or with
JSON2GRPC_REQUIRE_BROWSER=1, where it fails.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

import harness

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]

# The page: three calls with fetch, each reported as what a script on the page can see.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>flash sale</title></head>
<body><h1>flash sale</h1><pre id="out">running</pre>
<script>
async function call(name, url, init) {
  try {
    const r = await fetch(url, init);
    const text = await r.text();
    return {name, status: r.status, location: r.headers.get("location"),
            contentType: r.headers.get("content-type"), body: text ? JSON.parse(text) : null};
  } catch (e) {
    return {name, error: e.name + ": " + e.message};
  }
}
async function run(api) {
  const results = [];
  results.push(await call("get", api + "/v1/inventory/sku-1001"));
  const created = await call("post", api + "/v1/orders", {
    method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({customerId: "cust-browser", items: [{sku: "sku-3001", quantity: 1}]})});
  results.push(created);
  const id = created.body && created.body.orderId ? created.body.orderId : "ord-unknown";
  results.push(await call("patch", api + "/v1/orders/" + id + "?updateMask=note", {
    method: "PATCH", headers: {"content-type": "application/json", "x-client-trace": "trace-7"},
    body: JSON.stringify({note: "from the browser"})}));
  document.getElementById("out").textContent = JSON.stringify(results);
  return results;
}
</script></body></html>
"""


def _tool(name):
    return shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, chromedriver = _tool("chromium"), _tool("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [n for n, found in (("chromium", chromium), ("chromedriver", chromedriver),
                                  ("selenium", webdriver)) if not found]
    if missing:
        why = (f"{', '.join(missing)} not installed: `make browser` installs Debian's chromium and "
               "chromium-driver, `make venv` selenium")
        if os.environ.get("CI") == "true" or os.environ.get("JSON2GRPC_REQUIRE_BROWSER") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    # Selenium must not look for (or download) drivers or browsers: both are given.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def page_server():
    """Serves PAGE at / on 127.0.0.1 (a port of its own: an origin of its own)."""
    return harness.FileServer({"/": PAGE.encode()}, content_type="text/html; charset=utf-8")


@pytest.fixture(scope="module")
def pages():
    allowed, other = page_server(), page_server()
    yield allowed, other
    allowed.stop()
    other.stop()


def run_page(browser, page, envoy):
    """Loads the page from `page`'s origin, runs its calls against Envoy; what the page saw
    (read back from its DOM)."""
    browser.get(page.origin + "/")
    api = f"http://127.0.0.1:{envoy.port}"
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "run(arguments[0]).then(done, e => done(String(e)));", api)
    shown = browser.find_element("id", "out").text
    print(f"the page on {page.origin} saw: {shown}")  # in the report of a failure
    return {r["name"]: r for r in json.loads(shown)}


def test_a_page_on_an_allowed_origin_calls_the_api(browser, pages, envoy_factory, services):
    allowed, _ = pages
    envoy = envoy_factory.json2grpc(json2grpc={"rest": {
        "cors": {"allow_origins": [allowed.origin], "allow_headers": ["content-type", "x-client-trace"],
                 "expose_headers": ["location"], "max_age": 60},
        "success_status": {"flashsale.v1.Orders.CreateOrder": 201}}})
    mark = services.mark()
    seen = run_page(browser, allowed, envoy)
    get, post, patch = seen["get"], seen["post"], seen["patch"]
    assert get["status"] == 200 and get["body"]["sku"] == "sku-1001", seen
    assert get["contentType"].startswith("application/json"), seen
    # The POST's JSON content-type needs a preflight; `location` is readable only because the
    # policy exposes it.
    assert post["status"] == 201 and post["body"]["customerId"] == "cust-browser", seen
    assert post["location"] == "/v1/orders/" + post["body"]["orderId"], seen
    assert patch["status"] == 200 and patch["body"]["note"] == "from the browser", seen
    received = services.records(mark)
    methods = [r["method"] for r in received]
    assert methods == ["/flashsale.v1.Inventory/GetItem", "/flashsale.v1.Orders/CreateOrder",
                       "/flashsale.v1.Orders/UpdateOrder"], methods
    update = received[2]
    assert update["metadata"].get("x-client-trace") == "trace-7", update
    assert update["metadata"].get("origin") == allowed.origin, update
    assert update["message"]["order"]["note"] == "from the browser", update


def test_a_page_on_another_origin_is_stopped_by_the_browser(browser, pages, envoy_factory, services):
    allowed, other = pages
    envoy = envoy_factory.json2grpc(json2grpc={"rest": {
        "cors": {"allow_origins": [allowed.origin], "allow_headers": ["content-type", "x-client-trace"],
                 "expose_headers": ["location"], "max_age": 60},
        "success_status": {"flashsale.v1.Orders.CreateOrder": 201}}})
    mark = services.mark()
    seen = run_page(browser, other, envoy)
    for name in ("get", "post", "patch"):
        assert seen[name].get("error", "").startswith("TypeError"), seen
        assert "status" not in seen[name], seen
    # The GET is a simple request: sent, but its answer kept from the page. The POST and the
    # PATCH need a preflight, which json2grpc refused: they never reached the service.
    methods = [r["method"] for r in services.records(mark)]
    assert methods == ["/flashsale.v1.Inventory/GetItem"], methods
    console = " ".join(entry.get("message", "") for entry in browser.get_log("browser"))
    assert "CORS policy" in console, console
