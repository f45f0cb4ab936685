# syntax=docker/dockerfile:1
# The flash-sale example gRPC services (examples/, binary `flashsale`) for docker-compose.
# Build context: the repository root (see envoy/docker-compose.yaml):
#   docker build -f envoy/flashsale.Dockerfile -t json2grpc/flashsale:dev .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p flashsale-examples --bin flashsale \
 && install -m 0755 target/release/flashsale /usr/local/bin/flashsale

FROM debian:bookworm-slim
COPY --from=build /usr/local/bin/flashsale /usr/local/bin/flashsale
USER 65534:65534
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/flashsale"]
CMD ["--service", "all", "--listen", "0.0.0.0:50051"]
