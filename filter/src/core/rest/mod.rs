//! `json2grpc.rest`, the REST contract controls (all off by default): each hooks into one stage.
//! On requests: the keys a body sets ([`body_keys`]) give PATCH field masks ([`patch_mask`]) and
//! strict bodies ([`body`]); `google.api.field_behavior` REQUIRED and OUTPUT_ONLY
//! ([`field_behavior`]). On responses: the success status ([`success_status`]) and CORS
//! ([`cors`]).
pub mod body;
pub mod body_keys;
pub mod cors;
pub mod field_behavior;
pub mod patch_mask;
pub mod success_status;
