//! The transcoding core. Nothing here calls the proxy-wasm host.
pub mod error;
pub mod status;

#[cfg(test)]
pub(crate) mod testutil;
