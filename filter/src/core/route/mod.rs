//! HTTP method and path in, a binding and its path variables out: `google.api.http` templates
//! parsed ([`template`]), the routing table built per configuration ([`router`]) and matched
//! per request ([`path_matcher`], with Envoy's percent-decoding rules in [`percent`]); field
//! paths such as `order.id` resolved against the schema ([`field_path`]; while a router is built, names are found through
//! [`field_index`]).
pub mod field_index;
pub mod field_path;
pub mod path_matcher;
pub mod percent;
pub mod router;
pub mod template;
