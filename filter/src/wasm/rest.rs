//! The proxy side of `json2grpc.rest`: CORS headers on what the filter answers and lets through,
//! and the status of successful responses. The decisions are the core's (`core::cors`,
//! `core::success_status`); this edits header lists.
use crate::core::config::RestOptions;
use crate::core::rest::success_status::{self, FromMetadata, STATUS_METADATA};

/// The status of a successful response of `method`: its `x-http-code` (`value`) when the
/// option reads it, else the method's configured status, else 200. An invalid value is
/// ignored and logged (it is the service's mistake; the client still gets its answer).
pub fn success_status(rest: &RestOptions, method: &str, value: Option<&[u8]>) -> u16 {
    let from = if rest.status_from_metadata { success_status::from_metadata(value) } else { FromMetadata::Absent };
    if from == FromMetadata::Invalid {
        let shown: String = value.map(String::from_utf8_lossy).unwrap_or_default().chars().take(32).collect();
        log::warn!("{method}: ignored {STATUS_METADATA} {shown:?}: not a status from 200 to 599");
    }
    success_status::choose(from, rest.success_status_of(method))
}

/// The service's metadata as reply headers: without `x-http-code` when the option reads it;
/// with a CORS policy, never the service's own `access-control-*` headers (the policy alone
/// decides what a browser may do), and without its `vary` when the filter sets one merging it
/// (`cors`: the filter adds its CORS headers).
pub fn reply_metadata<'m>(
    rest: &RestOptions,
    metadata: &'m [(Vec<u8>, Vec<u8>)],
    cors: bool,
) -> impl Iterator<Item = &'m (Vec<u8>, Vec<u8>)> {
    let status = rest.status_from_metadata;
    let policy = rest.cors.is_some();
    metadata.iter().filter(move |(k, _)| {
        !(status && k.as_slice() == STATUS_METADATA.as_bytes()
            || policy && is_cors_header(k)
            || cors && k.as_slice() == b"vary")
    })
}

/// A CORS response header (`access-control-*`): with a policy, only the filter writes these.
pub fn is_cors_header(name: &[u8]) -> bool {
    name.len() >= 15 && name.get(..15).is_some_and(|p| p.eq_ignore_ascii_case(b"access-control-"))
}

/// The CORS headers of a response to an allowed `origin`, given the response's own `vary`.
pub fn cors_headers(rest: &RestOptions, origin: Option<&str>, vary: Option<&[u8]>) -> Vec<(&'static str, Vec<u8>)> {
    match (&rest.cors, origin) {
        (Some(policy), Some(origin)) => policy.response_headers(origin, vary),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_loses_what_the_filter_sets() {
        let metadata = vec![
            (b"x-http-code".to_vec(), b"201".to_vec()),
            (b"location".to_vec(), b"/v1/x".to_vec()),
            (b"vary".to_vec(), b"accept".to_vec()),
            (b"access-control-allow-origin".to_vec(), b"*".to_vec()),
        ];
        let names = |rest: &RestOptions, cors| {
            reply_metadata(rest, &metadata, cors)
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect::<Vec<_>>()
        };
        let off = RestOptions::default();
        assert_eq!(names(&off, false), ["x-http-code", "location", "vary", "access-control-allow-origin"]);
        let on = RestOptions { status_from_metadata: true, ..Default::default() };
        assert_eq!(names(&on, true), ["location", "access-control-allow-origin"], "no policy: not the filter's");
        let cors = crate::core::config::Config::from_json(
            br#"{"proto_descriptor_bin": "", "json2grpc": {"rest": {"cors": {"allow_origins": ["https://a.test"]}}}}"#,
        )
        .unwrap()
        .rest;
        let with_policy = RestOptions { status_from_metadata: true, ..cors };
        assert_eq!(names(&with_policy, true), ["location"]);
        assert_eq!(
            names(&with_policy, false),
            ["location", "vary"],
            "the service's vary stays when the filter sets none"
        );
        assert_eq!(success_status(&on, "a.B.C", Some(b"201")), 201);
        assert_eq!(success_status(&on, "a.B.C", Some(b"20")), 200);
        assert_eq!(success_status(&off, "a.B.C", Some(b"201")), 200, "the option is off: a header like any other");
    }
}
