#!/usr/bin/env bash
# Soak test (make soak): ≥100,000 mixed requests through Envoy + json2grpc + the flash-sale
# services, driven by h2load (Debian's nghttp2-client, installed if missing); see
# scripts/soak.py for the checks. Arguments go to soak.py (e.g. --requests 200000 --keep).
# Expects the build outputs of `make wasm examples descriptors venv` (the Makefile target
# builds them first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

if ! command -v h2load >/dev/null; then
  echo "soak: installing h2load (nghttp2-client)"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get install -y -q nghttp2-client >/dev/null || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q nghttp2-client >/dev/null; }
fi
exec "$PYTHON" "$ROOT/scripts/soak.py" "$@"
