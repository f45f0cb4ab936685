//! The proxy-wasm layer (root context, per-request state machine).
