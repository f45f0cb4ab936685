//! Test-only code, never in the `.wasm`: the references the product is tested against and the
//! fake Envoy the callbacks run in.
//! - [`reflect_json`]: proto3 JSON through prost-reflect (feature `reflection`), the reference
//!   of the fast codec in unit tests, fuzzing, conformance and benchmarks; [`reflect_pool`]
//!   loads its prost-reflect pool.
//! - `request_reference`: the request translator as it was on prost-reflect trees.
//! - `fixtures`: the unit tests' schema and helpers.
//! - `mock_host` and `callback_tests`: the proxy-wasm callbacks driven as Envoy drives them.
#[cfg(test)]
#[cfg(feature = "proxy")]
mod callback_tests;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
#[cfg(feature = "proxy")]
mod mock_host;
#[cfg(feature = "reflection")]
pub mod reflect_json;
#[cfg(feature = "reflection")]
pub mod reflect_pool;
#[cfg(test)]
mod request_reference;
