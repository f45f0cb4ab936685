//! The proxy-wasm layer: a root context that owns the configured [`Transcoder`] and a small
//! per-request state machine ([`http::Http`]) that moves headers and bytes between Envoy and
//! the core. Every Envoy constraint that shapes it is commented where it bites.
//!
//! [`Transcoder`]: crate::core::transcoder::Transcoder
#[cfg(test)]
mod callback_tests;
pub mod callout;
pub mod host;
pub mod http;
pub mod logger;
pub mod metrics;
#[cfg(test)]
mod mock_host;
pub mod root;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
proxy_wasm::main! {{
    logger::install();
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}}
