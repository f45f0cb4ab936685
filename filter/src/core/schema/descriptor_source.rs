//! Where the descriptors come from when the config carries none (`json2grpc.descriptor`): the
//! running services' gRPC server reflection, or a FileDescriptorSet fetched over HTTP. The
//! options only; fetching is the proxy layer's (it makes the calls), gathering the core's
//! ([`reflection`](crate::core::schema::reflection)).
use crate::core::schema::reflection;

/// `json2grpc.descriptor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorSource {
    pub origin: Origin,
    /// How often the source is asked again (changes are swapped in).
    pub refresh_ms: u32,
    /// Deadline of each call to the source.
    pub timeout_ms: u32,
    /// What requests get before the first descriptors arrived.
    pub before_load: BeforeLoad,
    /// Bounds of what a source may answer.
    pub limits: reflection::Limits,
}

impl DescriptorSource {
    pub const DEFAULT_REFRESH_MS: u32 = 30_000;
    pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;

    pub fn new(origin: Origin) -> DescriptorSource {
        DescriptorSource {
            origin,
            refresh_ms: Self::DEFAULT_REFRESH_MS,
            timeout_ms: Self::DEFAULT_TIMEOUT_MS,
            before_load: BeforeLoad::Unavailable,
            limits: reflection::Limits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `json2grpc.descriptor.reflection`: the services' own reflection, on these clusters.
    Reflection {
        clusters: Vec<String>,
        /// `:authority` of the calls (default: the cluster name).
        authority: Option<String>,
        /// Every service the servers list (minus `exclude`), instead of the config's `services`.
        all_services: bool,
        exclude: Vec<String>,
    },
    /// `json2grpc.descriptor.url`: a FileDescriptorSet (binary) from `GET path` on `cluster`.
    Url {
        cluster: String,
        path: String,
        authority: Option<String>,
        /// The set's SHA-256, if pinned: any other set is refused.
        sha256: Option<[u8; 32]>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeLoad {
    /// 503 JSON UNAVAILABLE for every request that is not gRPC already.
    Unavailable,
    /// Requests pass through untouched.
    PassThrough,
}

/// Parses a 64-character hex SHA-256 (`json2grpc.descriptor.url.sha256`).
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
