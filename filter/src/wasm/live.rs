//! Live descriptors (`json2grpc.descriptor`): the API read from the running services' gRPC
//! server reflection, or fetched by reference, polled, and swapped in without a restart.
//!
//! One fetch per Envoy. Every VM (one per worker, and the main thread's) runs this from its
//! root's tick, but a lease in shared data lets one VM fetch at a time; the descriptor set it
//! gathered is validated (a transcoder is built from it), then published in shared data under a
//! new version, and every VM builds its own transcoder once when it sees a newer version. A
//! failed or invalid fetch keeps the last good descriptors. Nothing here runs on the request
//! path: requests only clone the root's current `Rc<Filter>`, so the ones in flight finish with
//! the transcoder they started with.
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::host::{self, Buffer, Map, MetricKind};
use super::metrics::{now_micros, Metric};
use crate::core::config::Config;
use crate::core::schema::descriptor_source::{BeforeLoad, DescriptorSource, Origin};
use crate::core::schema::reflection::{self, Gathering, Step, Wanted};
use crate::core::transcoder::{is_grpc_content_type, Transcoder};

/// How much longer than one call's deadline the lease is held: the fetching VM renews it with
/// every call, so a VM that stops (Envoy's short-lived base VM, a VM replaced by a new config)
/// blocks the others for one call's deadline at most.
const LEASE_MARGIN_MS: u64 = 1_000;
/// After a failure, the next attempt comes sooner than the refresh interval (but not in a loop).
const RETRY_MS: u64 = 2_000;

/// The stats of live descriptors (`json2grpc.descriptor.*`).
struct LiveMetrics {
    version: Metric,
    reloads: Metric,
    unchanged: Metric,
    last_load_seconds: Metric,
    unreachable: Metric,
    refused: Metric,
    invalid: Metric,
    too_large: Metric,
    sha256_mismatch: Metric,
}

impl LiveMetrics {
    fn define() -> LiveMetrics {
        let counter = |name: &str| Metric::define(MetricKind::Counter, &format!("json2grpc.descriptor.{name}"));
        let gauge = |name: &str| Metric::define(MetricKind::Gauge, &format!("json2grpc.descriptor.{name}"));
        LiveMetrics {
            version: gauge("version"),
            reloads: counter("reloads"),
            unchanged: counter("unchanged"),
            last_load_seconds: gauge("last_load_unix_seconds"),
            unreachable: counter("failures.unreachable"),
            refused: counter("failures.refused"),
            invalid: counter("failures.invalid"),
            too_large: counter("failures.too_large"),
            sha256_mismatch: counter("failures.sha256_mismatch"),
        }
    }
}

/// Why a fetch failed (each has its counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No answer, an HTTP error, a reset, a timeout.
    Unreachable,
    /// The source answered with an error (a reflection error, an unknown service).
    Refused,
    /// What it answered does not make a valid API (malformed, does not link, no service).
    Invalid,
    TooLarge,
    Sha256Mismatch,
}

/// Shared data keys of one configuration's descriptors (the same in every VM).
struct Keys {
    version: String,
    set: String,
    lease: String,
}

/// A fetch this VM is making.
enum Fetch {
    Reflection {
        token: u32,
        /// Which cluster of the list, and which reflection version (0: v1, 1: v1alpha).
        cluster: usize,
        path: usize,
        gathering: Box<Gathering>,
        /// The body of the call in flight (sent again to v1alpha if v1 is unknown).
        body: Vec<u8>,
        /// Files gathered from the clusters done so far (by name), and their services.
        files: HashMap<String, Vec<u8>>,
        services: Vec<String>,
    },
    Url {
        token: u32,
    },
}

impl Fetch {
    fn token(&self) -> u32 {
        match self {
            Fetch::Reflection { token, .. } | Fetch::Url { token } => *token,
        }
    }
}

/// The live-descriptor state of one VM.
pub struct Live {
    /// The plugin configuration (its `proto_descriptor_bin` empty).
    config: Config,
    source: DescriptorSource,
    keys: Keys,
    /// This VM's lease holder id.
    holder: u64,
    /// The version loaded in this VM (0: none yet).
    loaded: u64,
    /// When `tick` last looked at the shared data (the root ticks every ms while streams flush).
    polled_ms: u64,
    fetch: Option<Fetch>,
    metrics: LiveMetrics,
}

impl Live {
    /// `config_text`: the plugin configuration as Envoy gave it (its hash names the shared
    /// data, so a changed configuration fetches anew).
    pub fn new(config: Config, source: DescriptorSource, config_text: &[u8]) -> Live {
        // Not a security boundary (the configuration is the operator's): a name per config.
        let prefix = format!("json2grpc.descriptor.{}", hex(Sha256::digest(config_text).get(..8).unwrap_or_default()));
        let keys = Keys {
            version: format!("{prefix}.version"),
            set: format!("{prefix}.set"),
            lease: format!("{prefix}.lease"),
        };
        // Unique enough between the VMs of one Envoy: the time this root started (µs) and this
        // allocation's address.
        let holder = now_micros().rotate_left(20) ^ (std::ptr::from_ref(&keys) as usize as u64);
        Live { config, source, keys, holder, loaded: 0, polled_ms: 0, fetch: None, metrics: LiveMetrics::define() }
    }

    /// What requests get while no descriptors are loaded.
    pub fn before_load(&self) -> BeforeLoad {
        self.source.before_load
    }

    /// How often the root should tick for this (ms).
    pub fn tick_ms(&self) -> u32 {
        if self.loaded == 0 {
            200
        } else {
            1_000
        }
    }

    /// The periodic step: takes a newer published version, or starts a fetch when it is due
    /// and no other VM is fetching. A new transcoder when this VM should swap.
    /// At configure time: only what another VM published already. (Envoy's base VM also
    /// configures, then never ticks: it must not take the lease.)
    pub fn load_published(&mut self) -> Option<Transcoder> {
        self.take_published()
    }

    pub fn tick(&mut self) -> Option<Transcoder> {
        let now = now_ms();
        if self.loaded != 0 && now.saturating_sub(self.polled_ms) < u64::from(self.tick_ms()) {
            return None;
        }
        self.polled_ms = now;
        let swapped = self.take_published();
        if self.fetch.is_none() && self.acquire_lease() {
            self.start_fetch();
        }
        swapped
    }

    /// The answer to one of this VM's calls. A new transcoder when this VM should swap.
    pub fn on_response(&mut self, token: u32, body_size: usize) -> Option<Transcoder> {
        if self.fetch.as_ref().map(Fetch::token) != Some(token) {
            return None;
        }
        let fetch = self.fetch.take()?;
        match self.advance(fetch, body_size) {
            Ok(None) => None,
            Ok(Some((services, set))) => self.finish(services, set),
            Err((failure, reason)) => {
                self.fail(failure, &reason);
                None
            }
        }
    }

    // ---- shared data ------------------------------------------------------------------------

    /// Loads the published version if it is newer than this VM's.
    fn take_published(&mut self) -> Option<Transcoder> {
        let version = host::shared_data(&self.keys.version).and_then(|(v, _)| read_u64(&v, 0)).unwrap_or(0);
        if version <= self.loaded {
            return None;
        }
        let (value, _) = host::shared_data(&self.keys.set)?;
        let (published, _, services, set) = decode_published(&value)?;
        self.loaded = published;
        match self.build(&services, set) {
            Ok(transcoder) => {
                log::debug!("descriptors version {published} loaded ({} services)", services.len());
                self.metrics.version.record(published);
                Some(transcoder)
            }
            Err(e) => {
                log::error!("published descriptors version {published} do not load here: {e}");
                None
            }
        }
    }

    /// Takes the fetch lease if it is free and due (its `until` passed). The key is created
    /// first if absent, so two VMs cannot both take it with an unchecked write.
    fn acquire_lease(&mut self) -> bool {
        let now = now_ms();
        let (value, cas) = match host::shared_data(&self.keys.lease) {
            Some(entry) => entry,
            None => {
                host::set_shared_data(&self.keys.lease, &encode_lease(0, 0), 0);
                match host::shared_data(&self.keys.lease) {
                    Some(entry) => entry,
                    None => return false,
                }
            }
        };
        if read_u64(&value, 8).unwrap_or(0) > now {
            return false;
        }
        host::set_shared_data(&self.keys.lease, &encode_lease(self.holder, self.lease_until()), cas)
    }

    fn lease_until(&self) -> u64 {
        now_ms().saturating_add(u64::from(self.source.timeout_ms)).saturating_add(LEASE_MARGIN_MS)
    }

    /// Keeps the lease for one more call.
    fn renew_lease(&self) {
        let Some((value, cas)) = host::shared_data(&self.keys.lease) else { return };
        if read_u64(&value, 0) == Some(self.holder) {
            host::set_shared_data(&self.keys.lease, &encode_lease(self.holder, self.lease_until()), cas);
        }
    }

    /// Ends this VM's fetch: the next one is due in `after` ms.
    fn release_lease(&self, after: u64) {
        let Some((value, cas)) = host::shared_data(&self.keys.lease) else { return };
        if read_u64(&value, 0) == Some(self.holder) {
            host::set_shared_data(&self.keys.lease, &encode_lease(0, now_ms().saturating_add(after)), cas);
        }
    }

    // ---- fetching ------------------------------------------------------------------------------

    fn start_fetch(&mut self) {
        let fetch = match &self.source.origin {
            Origin::Reflection { .. } => {
                let except = match &self.source.origin {
                    Origin::Reflection { exclude, .. } => exclude.clone(),
                    Origin::Url { .. } => Vec::new(),
                };
                let mut gathering = Box::new(Gathering::new(Wanted::All { except }, self.source.limits));
                match gathering.start() {
                    Ok(Step::Send(body)) => self.call_reflection(0, 0, &body).map(|token| Fetch::Reflection {
                        token,
                        cluster: 0,
                        path: 0,
                        gathering,
                        body,
                        files: HashMap::new(),
                        services: Vec::new(),
                    }),
                    Ok(Step::Done { .. }) | Err(_) => Err((Failure::Invalid, "reflection: nothing to ask".into())),
                }
            }
            Origin::Url { cluster, path, authority, .. } => {
                let authority = authority.clone().unwrap_or_else(|| default_authority(cluster));
                let headers = [(":method", "GET"), (":path", path.as_str()), (":authority", authority.as_str())];
                host::http_call(cluster, &headers, &[], self.source.timeout_ms)
                    .map(|token| Fetch::Url { token })
                    .map_err(|status| {
                        (Failure::Unreachable, format!("cannot call cluster \"{cluster}\" (host status {status})"))
                    })
            }
        };
        match fetch {
            Ok(fetch) => self.fetch = Some(fetch),
            Err((failure, reason)) => self.fail(failure, &reason),
        }
    }

    /// Calls reflection version `path` on cluster number `cluster` with `body`.
    fn call_reflection(&self, cluster: usize, path: usize, body: &[u8]) -> Result<u32, (Failure, String)> {
        let Origin::Reflection { clusters, authority, .. } = &self.source.origin else {
            return Err((Failure::Invalid, "not a reflection source".into()));
        };
        let (Some(name), Some(method)) = (clusters.get(cluster), reflection::PATHS.get(path)) else {
            return Err((Failure::Invalid, "no such cluster".into()));
        };
        self.renew_lease();
        let authority = authority.clone().unwrap_or_else(|| default_authority(name));
        let timeout = format!("{}m", self.source.timeout_ms);
        let headers = [
            (":method", "POST"),
            (":path", *method),
            (":authority", authority.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", timeout.as_str()),
        ];
        host::http_call(name, &headers, body, self.source.timeout_ms)
            .map_err(|status| (Failure::Unreachable, format!("cannot call cluster \"{name}\" (host status {status})")))
    }

    /// One answer: the next call (kept in `self.fetch`), or the gathered set.
    #[allow(clippy::type_complexity)]
    fn advance(&mut self, fetch: Fetch, body_size: usize) -> Result<Option<(Vec<String>, Vec<u8>)>, (Failure, String)> {
        let headers = host::headers(Map::HttpCallResponseHeaders);
        let trailers = host::headers(Map::HttpCallResponseTrailers);
        let find = |name: &str| {
            trailers.iter().chain(headers.iter()).find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice())
        };
        if headers.is_empty() {
            return Err((Failure::Unreachable, "no answer (reset, refused or timed out)".into()));
        }
        let status = find(":status").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
        let max = self.source.limits.max_bytes;
        if body_size > max {
            return Err((Failure::TooLarge, format!("an answer of {body_size} bytes (the limit is {max})")));
        }
        match fetch {
            Fetch::Url { .. } => {
                if status != "200" {
                    return Err((Failure::Unreachable, format!("HTTP {status}")));
                }
                let set = host::try_buffer(Buffer::HttpCallResponseBody, 0, body_size)
                    .ok_or((Failure::TooLarge, "the answer could not be read".to_string()))?;
                if let Origin::Url { sha256: Some(pinned), .. } = &self.source.origin {
                    let got: [u8; 32] = Sha256::digest(&set).into();
                    if &got != pinned {
                        return Err((Failure::Sha256Mismatch, format!("sha256 {} is not the pinned one", hex(&got))));
                    }
                }
                Ok(Some((self.config.services.clone(), set)))
            }
            Fetch::Reflection { cluster, path, mut gathering, body, mut files, mut services, .. } => {
                let grpc =
                    find("content-type").and_then(|v| std::str::from_utf8(v).ok()).is_some_and(is_grpc_content_type);
                let code = find("grpc-status").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
                // A server without reflection v1 (HTTP 404, or UNIMPLEMENTED): ask v1alpha.
                if path == 0 && (status == "404" || (grpc && code == "12")) {
                    let token = self.call_reflection(cluster, 1, &body)?;
                    self.fetch = Some(Fetch::Reflection { token, cluster, path: 1, gathering, body, files, services });
                    return Ok(None);
                }
                if status != "200" || !grpc {
                    return Err((Failure::Unreachable, format!("HTTP {status}, not gRPC")));
                }
                if code != "0" {
                    let message =
                        find("grpc-message").map(|m| String::from_utf8_lossy(m).into_owned()).unwrap_or_default();
                    // UNAVAILABLE and DEADLINE_EXCEEDED: Envoy could not reach it (its own answer).
                    let failure = if matches!(code, "14" | "4") { Failure::Unreachable } else { Failure::Refused };
                    return Err((failure, format!("reflection answered gRPC status {code} {message}")));
                }
                let answer = host::try_buffer(Buffer::HttpCallResponseBody, 0, body_size)
                    .ok_or((Failure::TooLarge, "the answer could not be read".to_string()))?;
                let step = gathering.answer(&answer).map_err(|e| (Failure::Invalid, e.message))?;
                match step {
                    Step::Send(next) => {
                        let token = self.call_reflection(cluster, path, &next)?;
                        self.fetch =
                            Some(Fetch::Reflection { token, cluster, path, gathering, body: next, files, services });
                        Ok(None)
                    }
                    Step::Done { services: found, descriptor_set } => {
                        merge_files(&mut files, &descriptor_set);
                        services.extend(found);
                        let Origin::Reflection { clusters, all_services, exclude, .. } = &self.source.origin else {
                            return Err((Failure::Invalid, "not a reflection source".into()));
                        };
                        let next = cluster.saturating_add(1);
                        if next < clusters.len() {
                            let mut gathering =
                                Box::new(Gathering::new(Wanted::All { except: exclude.clone() }, self.source.limits));
                            let Ok(Step::Send(body)) = gathering.start() else {
                                return Err((Failure::Invalid, "reflection: nothing to ask".into()));
                            };
                            let token = self.call_reflection(next, 0, &body)?;
                            self.fetch = Some(Fetch::Reflection {
                                token,
                                cluster: next,
                                path: 0,
                                gathering,
                                body,
                                files,
                                services,
                            });
                            return Ok(None);
                        }
                        let services = if *all_services { services } else { self.config.services.clone() };
                        // Sorted by name: the same API hashes the same whatever the answers' order.
                        let mut names: Vec<&String> = files.keys().collect();
                        names.sort_unstable();
                        let mut set = Vec::new();
                        for bytes in names.into_iter().filter_map(|n| files.get(n)) {
                            length_prefixed_file(bytes, &mut set);
                        }
                        Ok(Some((services, set)))
                    }
                }
            }
        }
    }

    /// A gathered set: published if it differs from the current one and makes a valid API.
    fn finish(&mut self, services: Vec<String>, set: Vec<u8>) -> Option<Transcoder> {
        if services.is_empty() {
            self.fail(Failure::Invalid, "no service to transcode");
            return None;
        }
        let sha256: [u8; 32] = Sha256::digest(&set).into();
        let current = host::shared_data(&self.keys.set).and_then(|(v, _)| decode_published(&v));
        if current.as_ref().is_some_and(|(_, hash, _, _)| *hash == sha256) {
            // The same set as published: nothing to swap.
            self.metrics.unchanged.inc();
            self.release_lease(u64::from(self.source.refresh_ms));
            return None;
        }
        let version = current.map_or(0, |(v, _, _, _)| v).saturating_add(1);
        let transcoder = match self.build(&services, set.clone()) {
            Ok(t) => t,
            Err(e) => {
                self.fail(Failure::Invalid, &e);
                return None;
            }
        };
        let published = encode_published(version, &sha256, &services, &set);
        if !host::set_shared_data(&self.keys.set, &published, 0)
            || !host::set_shared_data(&self.keys.version, &version.to_le_bytes(), 0)
        {
            self.fail(Failure::TooLarge, "the descriptors could not be shared between the VMs");
            return None;
        }
        self.loaded = version;
        self.metrics.reloads.inc();
        self.metrics.version.record(version);
        self.metrics.last_load_seconds.record(now_ms() / 1000);
        log::info!(
            "descriptors version {version} from {}: {} service(s), {} bytes (sha256 {})",
            self.describe_source(),
            services.len(),
            set.len(),
            hex(&sha256)
        );
        self.release_lease(u64::from(self.source.refresh_ms));
        Some(transcoder)
    }

    fn fail(&mut self, failure: Failure, reason: &str) {
        let counter = match failure {
            Failure::Unreachable => self.metrics.unreachable,
            Failure::Refused => self.metrics.refused,
            Failure::Invalid => self.metrics.invalid,
            Failure::TooLarge => self.metrics.too_large,
            Failure::Sha256Mismatch => self.metrics.sha256_mismatch,
        };
        counter.inc();
        log::warn!("descriptors from {}: {reason}; keeping the previous ones", self.describe_source());
        self.fetch = None;
        self.release_lease(RETRY_MS.min(u64::from(self.source.refresh_ms)));
    }

    fn build(&self, services: &[String], set: Vec<u8>) -> Result<Transcoder, String> {
        // The configuration and what the transcoder keeps, in slots (crate::alloc).
        crate::alloc::building(|| {
            let mut config = self.config.clone();
            config.proto_descriptor_bin = set;
            config.services = services.to_vec();
            Transcoder::for_serving(config)
        })
        .map_err(|e| e.to_string())
    }

    fn describe_source(&self) -> String {
        match &self.source.origin {
            Origin::Reflection { clusters, .. } => format!("reflection on {}", clusters.join(", ")),
            Origin::Url { cluster, path, .. } => format!("{cluster}{path}"),
        }
    }
}

/// The `:authority` of a call to `cluster` when none is configured: `FQDN:PORT` for Istio's
/// `outbound|PORT|SUBSET|FQDN` names (a `|` in a host is refused by the receiving proxy), the
/// cluster name otherwise.
fn default_authority(cluster: &str) -> String {
    let mut parts = cluster.split('|');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("outbound" | "inbound"), Some(port), Some(_), Some(fqdn), None)
            if !fqdn.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{fqdn}:{port}")
        }
        _ => cluster.to_string(),
    }
}

/// Adds the files of a FileDescriptorSet to `files` (the first of a name wins).
fn merge_files(files: &mut HashMap<String, Vec<u8>>, set: &[u8]) {
    for f in crate::core::codec::wire::fields(set).flatten() {
        if f.number != 1 {
            continue;
        }
        let name = crate::core::codec::wire::fields(f.value)
            .flatten()
            .find(|n| n.number == 1)
            .map(|n| String::from_utf8_lossy(n.value).into_owned())
            .unwrap_or_default();
        files.entry(name).or_insert_with(|| f.value.to_vec());
    }
}

fn length_prefixed_file(bytes: &[u8], set: &mut Vec<u8>) {
    crate::core::codec::wire::write_tag(1, 2, set);
    crate::core::codec::wire::write_varint(bytes.len() as u64, set);
    set.extend_from_slice(bytes);
}

fn now_ms() -> u64 {
    now_micros() / 1000
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

fn encode_lease(holder: u64, until_ms: u64) -> Vec<u8> {
    [holder.to_le_bytes(), until_ms.to_le_bytes()].concat()
}

/// `[version u64][sha256 32][service count u32][per service: length u32, name][set]`.
fn encode_published(version: u64, sha256: &[u8; 32], services: &[String], set: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.len().saturating_add(64));
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(sha256);
    out.extend_from_slice(&u32::try_from(services.len()).unwrap_or(0).to_le_bytes());
    for s in services {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(set);
    out
}

#[allow(clippy::type_complexity)]
fn decode_published(bytes: &[u8]) -> Option<(u64, [u8; 32], Vec<String>, Vec<u8>)> {
    let version = read_u64(bytes, 0)?;
    let sha256: [u8; 32] = bytes.get(8..40)?.try_into().ok()?;
    let read_u32 = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = read_u32(40)?;
    let mut at = 44usize;
    let mut services = Vec::new();
    for _ in 0..count.min(bytes.len()) {
        let len = read_u32(at)?;
        at = at.checked_add(4)?;
        services.push(String::from_utf8(bytes.get(at..at.checked_add(len)?)?.to_vec()).ok()?);
        at = at.checked_add(len)?;
    }
    Some((version, sha256, services, bytes.get(at..)?.to_vec()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_cluster_names_give_a_host_authority() {
        assert_eq!(
            default_authority("outbound|50051||inventory.default.svc.cluster.local"),
            "inventory.default.svc.cluster.local:50051"
        );
        assert_eq!(default_authority("outbound|80|v2|files.ns.svc.cluster.local"), "files.ns.svc.cluster.local:80");
        for plain in ["inventory", "outbound|x||a", "outbound|80||", "a|b|c|d|e", ""] {
            assert_eq!(default_authority(plain), plain);
        }
    }
}
