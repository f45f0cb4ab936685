#!/usr/bin/env bash
# A flash-sale session through Envoy + json2grpc, all on loopback:
#   the two example gRPC services (flashsale --service inventory|orders) on free ports,
#   Envoy with envoy/envoy.yaml.in rendered for those ports and the json2grpc filter,
#   then a few JSON requests with curl, each printed with its response.
# Run it with `make demo` (builds everything first). Everything started here is stopped on exit.
# Environment: ENVOY FLASHSALE WASM PLUGIN_CONFIG PYTHON (paths), DEMO_TIMEOUT (seconds to wait
# for readiness, default 30), DEMO_KEEP=1 keeps the work directory with the logs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENVOY="${ENVOY:-$ROOT/.venv/bin/envoy}"
FLASHSALE="${FLASHSALE:-$ROOT/target/release/flashsale}"
WASM="${WASM:-$ROOT/dist/json2grpc.wasm}"
PLUGIN_CONFIG="${PLUGIN_CONFIG:-$ROOT/dist/plugin-config.json}"
PYTHON="${PYTHON:-python3}"
TIMEOUT="${DEMO_TIMEOUT:-30}"

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
die() { echo "demo: error: $*" >&2; exit 1; }

for f in "$ENVOY" "$FLASHSALE"; do
  [[ -x "$f" ]] || die "$f is missing (run 'make demo', or 'make venv examples')"
done
for f in "$WASM" "$PLUGIN_CONFIG"; do
  [[ -f "$f" ]] || die "$f is missing (run 'make demo', or 'make wasm descriptors')"
done
command -v curl >/dev/null || die "curl is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/json2grpc-demo.XXXXXX")"
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "${DEMO_KEEP:-}" || $rc -ne 0 ]]; then
    echo "demo: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `flashsale --service NAME` on a free port; sets ADDR from its "listening on" line.
start_service() {
  local name=$1 log="$WORK/$1.log" deadline=$((SECONDS + TIMEOUT))
  # Created first: the loop below may read it before the service's shell opened it.
  : >"$log"
  "$FLASHSALE" --service "$name" --listen 127.0.0.1:0 >"$log" 2>&1 &
  PIDS+=($!)
  local pid=$!
  ADDR=""
  while [[ -z "$ADDR" ]]; do
    ADDR="$(sed -n 's/^flashsale listening on \([^ ]*\).*/\1/p' "$log" | head -n1)"
    [[ -n "$ADDR" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "flashsale --service $name exited"; }
    ((SECONDS < deadline)) || { cat "$log" >&2; die "flashsale --service $name did not start"; }
    sleep 0.1
  done
  echo "demo: $name service on $ADDR"
}

start_service inventory; INVENTORY="$ADDR"
start_service orders; ORDERS="$ADDR"

PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
"$PYTHON" "$ROOT/envoy/render.py" "$ROOT/envoy/envoy.yaml.in" -o "$WORK/envoy.yaml" \
  --plugin-config "$PLUGIN_CONFIG" --wasm "$WASM" \
  --listen-port "$PORT" --admin-port "$ADMIN_PORT" \
  --inventory "$INVENTORY" --orders "$ORDERS" --health-check-interval 1s

"$ENVOY" -c "$WORK/envoy.yaml" --use-dynamic-base-id --concurrency 2 \
  --log-level "${ENVOY_LOG_LEVEL:-info}" >"$WORK/envoy.log" 2>&1 &
ENVOY_PID=$!
PIDS+=("$ENVOY_PID")
ADMIN="http://127.0.0.1:$ADMIN_PORT"

envoy_failed() {
  echo "---- last lines of the Envoy log ($WORK/envoy.log) ----" >&2
  tail -n 40 "$WORK/envoy.log" >&2
  die "$*"
}

# Ready = admin /ready says LIVE and both clusters have a healthy (gRPC health-checked) host.
deadline=$((SECONDS + TIMEOUT))
until [[ "$(curl -s --max-time 2 "$ADMIN/ready" 2>/dev/null)" == LIVE* ]]; do
  kill -0 "$ENVOY_PID" 2>/dev/null || envoy_failed "Envoy exited during startup"
  ((SECONDS < deadline)) || envoy_failed "Envoy not ready after ${TIMEOUT}s"
  sleep 0.2
done
for cluster in inventory orders; do
  until curl -s --max-time 2 "$ADMIN/clusters" | grep -q "^$cluster::.*::health_flags::healthy$"; do
    kill -0 "$ENVOY_PID" 2>/dev/null || envoy_failed "Envoy exited during startup"
    ((SECONDS < deadline)) || envoy_failed "cluster $cluster has no healthy host after ${TIMEOUT}s"
    sleep 0.2
  done
done
echo "demo: Envoy ready on 127.0.0.1:$PORT (admin $ADMIN, pid $ENVOY_PID)"
echo

BASE="http://127.0.0.1:$PORT"
FAILED=0
STEPS=0
BODY_FILE="$WORK/response.json"

# call EXPECTED_STATUS METHOD PATH [JSON_BODY] — prints request and response; the response body
# is left in $BODY_FILE.
call() {
  local expect=$1 method=$2 path=$3 body=${4:-}
  local args=(-sS --max-time 10 -X "$method" -o "$BODY_FILE" -D "$WORK/headers"
              -w '%{http_code}' -H 'accept: application/json')
  STEPS=$((STEPS + 1))
  bold "> $method $path"
  if [[ -n "$body" ]]; then
    printf '  %s\n' "$body"
    args+=(-H 'content-type: application/json' --data-binary "$body")
  fi
  local status
  status="$(curl "${args[@]}" "$BASE$path" 2>"$WORK/curl.err")" || status="000"
  local ctype
  ctype="$(sed -n 's/^[Cc]ontent-[Tt]ype: *\([^\r]*\).*/\1/p' "$WORK/headers" 2>/dev/null | tail -n1)"
  bold "< $status ${ctype:-(no content-type)}"
  if [[ $status == 000 ]]; then
    sed 's/^/  /' "$WORK/curl.err"
  elif [[ -s "$BODY_FILE" ]]; then
    "$PYTHON" -m json.tool --indent 2 "$BODY_FILE" 2>/dev/null | sed 's/^/  /' \
      || { sed 's/^/  /' "$BODY_FILE"; echo; }
  fi
  if [[ $status != "$expect" ]]; then
    echo "  !! expected HTTP $expect"
    FAILED=$((FAILED + 1))
  elif [[ $ctype != application/json* ]]; then
    echo "  !! expected content-type application/json"
    FAILED=$((FAILED + 1))
  fi
  echo
}

# stream PATH JSON_BODY — a server stream: curl -N prints each chunk as it arrives, with the time
# since the request; the whole body is left in $BODY_FILE and must be a JSON array.
stream() {
  local path=$1 body=$2
  STEPS=$((STEPS + 1))
  bold "> POST $path   (streamed: each chunk printed as it arrives)"
  printf '  %s\n' "$body"
  curl -sS -N --max-time 20 -X POST -H 'content-type: application/json' --data-binary "$body" \
    -D "$WORK/headers" "$BASE$path" 2>"$WORK/curl.err" | "$PYTHON" -u -c '
import os, sys, time
start, body = time.monotonic(), b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    body += chunk
    print("  +%.2fs  %s" % (time.monotonic() - start, chunk.decode("utf-8", "replace")), flush=True)
open(sys.argv[1], "wb").write(body)' "$BODY_FILE" || true
  local status ctype count
  status="$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$WORK/headers" 2>/dev/null)"
  ctype="$(sed -n 's/^[Cc]ontent-[Tt]ype: *\([^\r]*\).*/\1/p' "$WORK/headers" 2>/dev/null | tail -n1)"
  count="$("$PYTHON" -c 'import json, sys
try: print(len(json.load(open(sys.argv[1]))))
except Exception: print("not a JSON array")' "$BODY_FILE")"
  bold "< ${status:-000} ${ctype:-(no content-type)}: $count elements"
  if [[ $status != 200 || $ctype != application/json* || $count == "not a JSON array" ]]; then
    [[ -s "$WORK/curl.err" ]] && sed 's/^/  /' "$WORK/curl.err"
    echo "  !! expected HTTP 200 and a JSON array"
    FAILED=$((FAILED + 1))
  fi
  echo
}

# json_field NAME — a top-level string field of the last response (empty if absent).
json_field() {
  "$PYTHON" -c 'import json, sys
try: print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))
except Exception: print("")' "$BODY_FILE" "$1"
}

echo "# Check the stock of the headphones (a GET: no body, json2grpc calls Inventory/GetItem itself)"
call 200 GET /v1/inventory/sku-1001

echo "# Items on sale with at least one unit left, two per page (query parameters -> ListItemsRequest)"
call 200 GET '/v1/inventory?tags=sale&min_available=1&page_size=2'

echo "# Watch the headphones' stock live: a POST with a body streams (Inventory/Watch, a server"
echo "# stream), each change is sent on as soon as the service emits it, 300 ms apart"
stream /v1/inventory:watch '{"skus": ["sku-1001"], "limit": 5, "intervalMs": 300}'

echo "# Reserve two headphones for customer cust-42"
call 200 POST /v1/inventory/sku-1001:reserve '{"quantity": 2, "customerId": "cust-42"}'
RESERVATION="$(json_field reservationId)"

echo "# Order them with that reservation"
call 200 POST /v1/orders "{\"customerId\": \"cust-42\", \"reservationId\": \"${RESERVATION:-res-unknown}\",
  \"items\": [{\"sku\": \"sku-1001\", \"quantity\": 2}],
  \"shippingAddress\": {\"line1\": \"1 Main St\", \"city\": \"Springfield\", \"postalCode\": \"12345\", \"countryCode\": \"US\"}}"
ORDER="$(json_field orderId)"
ORDER="${ORDER:-ord-unknown}"

echo "# Read the order back"
call 200 GET "/v1/orders/$ORDER"

echo "# Change only the note (body: \"order\", update_mask from the query string)"
call 200 PATCH "/v1/orders/$ORDER?update_mask=note" '{"note": "leave at the door"}'

echo "# Another shopper wants five: more than is left -> FAILED_PRECONDITION as JSON with details"
call 400 POST /v1/inventory/sku-1001:reserve '{"quantity": 5, "customerId": "cust-7"}'

echo "# Cancel: delete the order (a DELETE: no body, another call of json2grpc's own)"
call 200 DELETE "/v1/orders/$ORDER"

echo "# It is gone"
call 404 GET "/v1/orders/$ORDER"

# ---- the API's OpenAPI document, served by the filter --------------------------------------------
OPENAPI_PATH="$("$PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1])).get("json2grpc", {}).get("openapi", {}).get("path", ""))' "$PLUGIN_CONFIG")"
if [[ -n "$OPENAPI_PATH" ]]; then
  echo "# The API's OpenAPI 3.1 document, made by the filter from the descriptors it loaded"
  echo "# (json2grpc.openapi.path; json2grpc-tool openapi prints the same): its operations"
  STEPS=$((STEPS + 1))
  bold "> GET $OPENAPI_PATH"
  status="$(curl -sS --max-time 10 -o "$BODY_FILE" -w '%{http_code}' "$BASE$OPENAPI_PATH" 2>"$WORK/curl.err")" \
    || status=000
  bold "< $status"
  if [[ $status != 200 ]] || ! "$PYTHON" - "$BODY_FILE" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
methods = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ops = [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in methods]
print(f"  OpenAPI {doc['openapi']}, {doc['info']['title']} (version {doc['info']['version']}): "
      f"{len(ops)} operations, {len(doc['components']['schemas'])} schemas")
for path, m, op in sorted(ops, key=lambda o: (o[2]["operationId"], o[1])):
    summary = op.get("summary", "")
    print(f"  {m.upper():6} {path:38} {op['operationId']}" + (f"  ({summary})" if summary else ""))
PY
  then
    echo "  !! expected HTTP 200 and an OpenAPI document"
    FAILED=$((FAILED + 1))
  fi
  echo
fi

# ---- the same API with no descriptor in the config: json2grpc reads it from the services --------
bold "# A second Envoy whose json2grpc config has no descriptor at all: the API comes from the"
bold "# services' gRPC server reflection (json2grpc.descriptor.reflection), polled and hot-swapped"
"$PYTHON" - "$PLUGIN_CONFIG" "$WORK/live-config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config.pop("proto_descriptor_bin", None)
config.setdefault("json2grpc", {})["descriptor"] = {"reflection": {"clusters": ["inventory", "orders"]}}
json.dump(config, open(sys.argv[2], "w"))
PY
echo "  plugin config: $(head -c 300 "$WORK/live-config.json")"
LIVE_PORT="$(free_port)"
LIVE_ADMIN="$(free_port)"
"$PYTHON" "$ROOT/envoy/render.py" "$ROOT/envoy/envoy.yaml.in" -o "$WORK/envoy-live.yaml" \
  --plugin-config "$WORK/live-config.json" --wasm "$WASM" \
  --listen-port "$LIVE_PORT" --admin-port "$LIVE_ADMIN" \
  --inventory "$INVENTORY" --orders "$ORDERS" --health-check-interval 1s
"$ENVOY" -c "$WORK/envoy-live.yaml" --use-dynamic-base-id --concurrency 2 \
  --log-level "${ENVOY_LOG_LEVEL:-info}" >"$WORK/envoy-live.log" 2>&1 &
PIDS+=($!)
BASE="http://127.0.0.1:$LIVE_PORT"
deadline=$((SECONDS + TIMEOUT))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/v1/inventory/sku-2002" 2>/dev/null)" == 200 ]]; do
  ((SECONDS < deadline)) || { tail -n 20 "$WORK/envoy-live.log" >&2; die "no API from reflection after ${TIMEOUT}s"; }
  sleep 0.2
done
grep -o 'descriptors version 1 from [^)]*)' "$WORK/envoy-live.log" | head -n1 | sed 's/^/  envoy log: /'
echo
echo "# The same requests work: the API was read from the running services"
call 200 GET /v1/inventory/sku-2002

if ((FAILED)); then
  echo "demo: $FAILED of $STEPS steps did not get the expected status" >&2
  echo "---- warnings, errors and wasm lines of the Envoy log ----" >&2
  grep -E '\]\[(warning|error|critical)\]|wasm log' "$WORK/envoy.log" | tail -n 20 >&2 || true
  exit 1
fi
echo "demo: all $STEPS steps got the expected status"
