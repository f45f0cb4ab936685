//! The proxy-wasm layer: a root context that owns the configured [`Transcoder`] and a small
//! per-request state machine ([`http::Http`]) that moves headers and bytes between Envoy and
//! the core. Every Envoy constraint that shapes it is commented where it bites.
//!
//! [`Transcoder`]: crate::core::transcoder::Transcoder
pub mod abi;
pub mod callout;
pub mod header_map;
pub mod host;
pub mod http;
pub mod live;
pub mod logger;
pub mod metrics;
pub mod openapi;
pub mod rest;
pub mod root;

/// The module's initializer (a WASI reactor): Envoy calls it once per VM, before any other
/// export. Host calls are not allowed here.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
#[no_mangle]
pub extern "C" fn _initialize() {
    extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the linker-generated constructor runner, called once before anything else.
    unsafe { __wasm_call_ctors() };
    logger::install();
    abi::set_root_factory(|| Box::new(root::Root::default()));
}
