#!/usr/bin/env bash
# Build the official protobuf conformance_test_runner (protobuf v27.2, as vendored by the
# crates.io crate protobuf-src 2.1.1+27.1) and keep it, with the protobuf sources, in a cache:
#   ${JSON2GRPC_CACHE:-<repo>/.cache}/conformance/
#     src/            protobuf sources (conformance/*.proto, src/google/protobuf/*.proto, ...)
#     build/          CMake build tree
#     bin/conformance_test_runner
#     bin/protoc      (built for the runner's generated code)
#     bin/editions.pb FileDescriptorSet (with imports) of the editions test messages, made by
#                     protoc: protox, which compiles the other test protos, does not read
#                     editions files
# Idempotent: a second run only prints the paths. Installs cmake, ninja-build, libjsoncpp-dev
# with apt-get when missing (CI runs as root on a fresh Debian machine).
# Prints three lines at the end: RUNNER=<path>, PROTOBUF_SRC_DIR=<path>, EDITIONS_SET=<path>.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${JSON2GRPC_CACHE:-$REPO/.cache}/conformance"
PROTOBUF_SRC_VERSION="2.1.1+27.1"
SRC="$CACHE/src"
BUILD="$CACHE/build"
BIN="$CACHE/bin"
RUNNER="$BIN/conformance_test_runner"
PROTOC="$BIN/protoc"
EDITIONS_SET="$BIN/editions.pb"
# The editions test messages the runner sends with --maximum_edition 2023.
EDITIONS_PROTOS=(
  conformance/test_protos/test_messages_edition2023.proto
  editions/golden/test_messages_proto2_editions.proto
  editions/golden/test_messages_proto3_editions.proto
)

log() { echo "[build-conformance] $*" >&2; }

print_paths() {
  echo "RUNNER=$RUNNER"
  echo "PROTOBUF_SRC_DIR=$SRC"
  echo "EDITIONS_SET=$EDITIONS_SET"
}

# The editions descriptor set, from the protoc of the build (a cache made before it existed
# gets it here: protoc is part of the runner's build).
make_editions_set() {
  if [[ ! -x "$PROTOC" ]]; then
    if [[ ! -x "$BUILD/protoc" ]]; then
      log "building protoc"
      cmake --build "$BUILD" --target protoc -j"${JOBS:-$(nproc)}" >"$CACHE/cmake-build-protoc.log" 2>&1 \
        || { tail -n 40 "$CACHE/cmake-build-protoc.log" >&2; exit 1; }
    fi
    mkdir -p "$BIN"
    cp "$BUILD/protoc" "$PROTOC"
  fi
  "$PROTOC" --include_imports --descriptor_set_out="$EDITIONS_SET.tmp" \
    --proto_path="$SRC" --proto_path="$SRC/src" "${EDITIONS_PROTOS[@]}"
  mv "$EDITIONS_SET.tmp" "$EDITIONS_SET"
}

if [[ -x "$RUNNER" && -f "$SRC/.done" && -f "$BIN/.done" ]]; then
  [[ -s "$EDITIONS_SET" ]] || make_editions_set
  print_paths
  exit 0
fi

mkdir -p "$CACHE"

# --- 1. Debian packages ------------------------------------------------------------------
need_pkgs=()
command -v cmake >/dev/null 2>&1 || need_pkgs+=(cmake)
command -v ninja >/dev/null 2>&1 || need_pkgs+=(ninja-build)
[[ -f /usr/include/jsoncpp/json/json.h ]] || need_pkgs+=(libjsoncpp-dev)
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  SUDO=()
  [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- 2. protobuf sources from the protobuf-src crate (no build of the crate) -------------
if [[ ! -f "$SRC/.done" ]]; then
  log "fetching protobuf-src $PROTOBUF_SRC_VERSION from crates.io"
  FETCH="$CACHE/fetch"
  rm -rf "$FETCH" "$SRC"
  mkdir -p "$FETCH/src"
  cat >"$FETCH/Cargo.toml" <<TOML
[package]
name = "fetch-protobuf-src"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
protobuf-src = "=$PROTOBUF_SRC_VERSION"

[workspace]
TOML
  : >"$FETCH/src/lib.rs"
  # `cargo vendor` copies the crate's files into our cache: no dependence on ~/.cargo's
  # extracted sources staying around.
  (cd "$FETCH" && cargo vendor --quiet --versioned-dirs vendor >/dev/null)
  crate_dir="$(ls -d "$FETCH"/vendor/protobuf-src-"${PROTOBUF_SRC_VERSION%%+*}"* | head -n1)"
  [[ -d "$crate_dir/protobuf/conformance" ]] || { log "no protobuf/conformance in $crate_dir"; exit 1; }
  mv "$crate_dir/protobuf" "$SRC"
  rm -rf "$FETCH"
  touch "$SRC/.done"
fi

# --- 3. CMake build of conformance_test_runner ------------------------------------------
log "building conformance_test_runner (about 10 minutes on 2 cores)"
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
JOBS="${JOBS:-$(nproc)}"
cmake -S "$SRC" -B "$BUILD" "${GEN[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-I/usr/include/jsoncpp" \
  -DCMAKE_CXX_STANDARD=17 \
  -Dprotobuf_BUILD_CONFORMANCE=ON \
  -Dprotobuf_BUILD_PROTOC_BINARIES=ON \
  -Dprotobuf_JSONCPP_PROVIDER=package \
  -Dprotobuf_BUILD_TESTS=OFF \
  -Dprotobuf_BUILD_EXAMPLES=OFF \
  -Dprotobuf_BUILD_LIBUPB=OFF \
  -Dprotobuf_BUILD_SHARED_LIBS=OFF \
  -Dprotobuf_ABSL_PROVIDER=module >"$CACHE/cmake-configure.log" 2>&1 \
  || { tail -n 40 "$CACHE/cmake-configure.log" >&2; exit 1; }
cmake --build "$BUILD" --target conformance_test_runner -j"$JOBS" >"$CACHE/cmake-build.log" 2>&1 \
  || { tail -n 60 "$CACHE/cmake-build.log" >&2; exit 1; }
mkdir -p "$BIN"
cp "$BUILD/conformance_test_runner" "$RUNNER"
cp "$BUILD/protoc" "$PROTOC"
make_editions_set
touch "$BIN/.done"
log "done"
print_paths
