//! A fake Envoy for host-side tests of the proxy-wasm callbacks.
//!
//! On a native target the proxy-wasm imports (`env.proxy_*`) are undefined symbols; this module
//! defines every one of them (`#[no_mangle] extern "C"`, the ABI's C types: pointers, `usize`
//! sizes, `u32` statuses and enums) on top of thread-local state, so each test thread has its
//! own Envoy. It follows Envoy's behaviour where the filter depends on it:
//!
//! - header maps keep their order; `replace` sets the first entry and drops duplicates (appends
//!   when absent); a map marked [`Host::release`]d answers BadArgument to every call, as Envoy
//!   does once the headers callback returned Continue;
//! - `proxy_set_buffer_bytes(start = 0, size, bytes)` replaces `size` bytes from 0;
//!   `start >= len` appends; any other splice is BadArgument; an absent buffer is NotFound;
//! - bytes handed to the guest are allocated at exactly their length (the guest frees them with
//!   `Vec::from_raw_parts(p, len, len)`);
//! - local replies, HTTP callouts, logs and stream resumptions are recorded for assertions.
// Host-side only: on wasm32 the ABI functions are the runtime's imports.
#![cfg(not(target_arch = "wasm32"))]
#![allow(unsafe_code)]
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::wasm::host::{self, Buffer, Map};

pub const OK: u32 = 0;
pub const NOT_FOUND: u32 = 1;
pub const BAD_ARGUMENT: u32 = 2;
pub const INTERNAL_FAILURE: u32 = 10;
pub const EMPTY: u32 = 7;
pub const CAS_MISMATCH: u32 = 8;

/// A `proxy_send_local_response` as Envoy received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub grpc_status: i32,
}

/// A `proxy_http_call` as Envoy received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub token: u32,
    pub upstream: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub timeout_ms: u32,
}

/// Number of header map types of the ABI (0..=7).
const MAPS: usize = 8;

/// The state of one fake Envoy (one per test thread).
#[derive(Debug)]
pub struct Host {
    pub maps: [Vec<(String, String)>; MAPS],
    pub released: [bool; MAPS],
    /// Buffers by ABI buffer type; absent = NotFound.
    pub buffers: BTreeMap<u32, Vec<u8>>,
    pub properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub log_level: u32,
    pub logs: Vec<(u32, String)>,
    pub local_replies: Vec<LocalReply>,
    /// What `proxy_send_local_response` answers.
    pub local_reply_status: u32,
    pub http_calls: Vec<HttpCall>,
    /// What `proxy_http_call` answers (e.g. InternalFailure for an unknown cluster).
    pub http_call_status: u32,
    /// `proxy_continue_stream` / `proxy_close_stream` calls (stream type).
    pub continued: Vec<u32>,
    pub closed: Vec<u32>,
    /// `proxy_continue_stream` calls as (effective context, stream type).
    pub resumed: Vec<(u32, u32)>,
    /// The context `proxy_set_effective_context` switched to last (0: none).
    pub effective_context: u32,
    /// The root's tick period, in ms (0: no ticks).
    pub tick_period_ms: u32,
    /// Shared queues (name, items waiting; token = index + 100); registering fails when off.
    pub queues: Vec<(String, u32)>,
    pub queues_enabled: bool,
    pub metrics: Vec<(String, u32, i64)>,
    /// Every host function called, in order (what a request costs in boundary crossings).
    pub host_calls: Vec<&'static str>,
    /// The clock (`proxy_get_current_time_nanoseconds`); tests move it forward.
    pub now_ns: u64,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            maps: Default::default(),
            released: [false; MAPS],
            buffers: BTreeMap::new(),
            properties: BTreeMap::new(),
            log_level: 2,
            logs: Vec::new(),
            local_replies: Vec::new(),
            local_reply_status: OK,
            http_calls: Vec::new(),
            http_call_status: OK,
            continued: Vec::new(),
            closed: Vec::new(),
            resumed: Vec::new(),
            host_calls: Vec::new(),
            effective_context: 0,
            tick_period_ms: 0,
            queues: Vec::new(),
            queues_enabled: true,
            metrics: Vec::new(),
            now_ns: 1_700_000_000_000_000_000,
        }
    }
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

/// Callout tokens are unique in the process: the SDK panics on a token it already registered.
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

/// Starts a fresh Envoy for this thread.
pub fn reset() {
    HOST.with(|h| *h.borrow_mut() = Host::default());
}

/// Reads or edits this thread's Envoy. Do not call the filter from inside `f`.
fn note(function: &'static str) {
    with(|h| h.host_calls.push(function));
}

pub fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

fn owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Host {
    pub fn set_map(&mut self, map: Map, pairs: &[(&str, &str)]) {
        self.maps[map as usize] = owned_pairs(pairs);
    }

    pub fn map(&self, map: Map) -> &[(String, String)] {
        &self.maps[map as usize]
    }

    pub fn get(&self, map: Map, name: &str) -> Option<&str> {
        self.maps[map as usize].iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Makes every later call on `map` answer BadArgument.
    /// A new request on the same Envoy: fresh maps and buffers, the stats kept.
    pub fn new_stream(&mut self) {
        self.maps = Default::default();
        self.released = [false; MAPS];
        self.buffers.clear();
        self.local_replies.clear();
    }

    pub fn release(&mut self, map: Map) {
        self.released[map as usize] = true;
    }

    pub fn set_buffer(&mut self, buffer: Buffer, bytes: &[u8]) {
        self.buffers.insert(buffer as u32, bytes.to_vec());
    }

    /// Appends a chunk, as Envoy buffers a paused body; returns the total size.
    pub fn append_buffer(&mut self, buffer: Buffer, bytes: &[u8]) -> usize {
        let b = self.buffers.entry(buffer as u32).or_default();
        b.extend_from_slice(bytes);
        b.len()
    }

    fn queue_mut(&mut self, token: u32) -> Option<&mut u32> {
        let index = usize::try_from(token.checked_sub(100)?).ok()?;
        self.queues.get_mut(index).map(|(_, items)| items)
    }

    /// The wake-ups waiting on the filter's queue (its `proxy_on_queue_ready` is due).
    pub fn queued(&self) -> u32 {
        self.queues.iter().map(|(_, items)| items).sum()
    }

    pub fn buffer(&self, buffer: Buffer) -> Option<&[u8]> {
        self.buffers.get(&(buffer as u32)).map(Vec::as_slice)
    }

    /// Sends the buffered bytes on (after a Continue or a resume): the next callback's buffer
    /// holds only newer data.
    pub fn drain(&mut self, buffer: Buffer) -> Vec<u8> {
        self.buffers.get_mut(&(buffer as u32)).map(std::mem::take).unwrap_or_default()
    }

    pub fn set_property(&mut self, path: &[&str], value: &[u8]) {
        self.properties.insert(path.iter().map(|p| p.to_string()).collect(), value.to_vec());
    }

    /// Log messages at `level` or above (0 trace … 4 error).
    pub fn logs_at(&self, level: u32) -> Vec<String> {
        self.logs.iter().filter(|(l, _)| *l >= level).map(|(_, m)| m.clone()).collect()
    }

    fn map_mut(&mut self, map_type: u32) -> Result<&mut Vec<(String, String)>, u32> {
        let index = usize::try_from(map_type).map_err(|_| BAD_ARGUMENT)?;
        if *self.released.get(index).ok_or(BAD_ARGUMENT)? {
            return Err(BAD_ARGUMENT);
        }
        self.maps.get_mut(index).ok_or(BAD_ARGUMENT)
    }
}

// --- memory shared with the guest -----------------------------------------------------------

/// The guest's bytes at `data` (null or zero-sized: empty).
unsafe fn read<'a>(data: *const u8, size: usize) -> &'a [u8] {
    if data.is_null() || size == 0 {
        return &[];
    }
    // SAFETY: the guest passes a pointer and length of a live buffer.
    unsafe { std::slice::from_raw_parts(data, size) }
}

unsafe fn read_str(data: *const u8, size: usize) -> String {
    // SAFETY: forwarded from the caller.
    String::from_utf8_lossy(unsafe { read(data, size) }).into_owned()
}

/// Hands `bytes` to the guest in an allocation of exactly their length.
unsafe fn give(bytes: &[u8], return_data: *mut *mut u8, return_size: *mut usize) {
    let boxed: Box<[u8]> = bytes.to_vec().into_boxed_slice();
    let len = boxed.len();
    let ptr = Box::into_raw(boxed).cast::<u8>();
    // SAFETY: the guest passes valid out pointers; it takes ownership of the allocation.
    unsafe {
        *return_data = ptr;
        *return_size = len;
    }
}

/// "Nothing": Ok with a null pointer.
unsafe fn give_none(return_data: *mut *mut u8, return_size: *mut usize) {
    // SAFETY: the guest passes valid out pointers.
    unsafe {
        *return_data = null_mut();
        *return_size = 0;
    }
}

fn pairs_of(bytes: &[u8]) -> Vec<(String, String)> {
    host::deserialize_pairs(bytes)
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

fn serialize(pairs: &[(String, String)]) -> Vec<u8> {
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    host::serialize_pairs(&refs)
}

// --- logging ----------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32 {
    note("proxy_log");
    // SAFETY: guest pointer and length.
    let message = unsafe { read_str(message_data, message_size) };
    with(|h| h.logs.push((level, message)));
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_log_level(return_level: *mut u32) -> u32 {
    note("proxy_get_log_level");
    let level = with(|h| h.log_level);
    // SAFETY: valid out pointer.
    unsafe { *return_level = level };
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32 {
    note("proxy_get_current_time_nanoseconds");
    let now = with(|h| h.now_ns);
    // SAFETY: valid out pointer.
    unsafe { *return_time = now };
    OK
}

#[no_mangle]
pub extern "C" fn proxy_set_tick_period_milliseconds(period: u32) -> u32 {
    note("proxy_set_tick_period_milliseconds");
    with(|h| h.tick_period_ms = period);
    OK
}

// --- buffers ----------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn proxy_get_buffer_bytes(
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_buffer_data: *mut *mut u8,
    return_buffer_size: *mut usize,
) -> u32 {
    note("proxy_get_buffer_bytes");
    let slice = with(|h| {
        let buffer = h.buffers.get(&buffer_type)?;
        // The size is unsigned: usize::MAX means "everything".
        let end = start.saturating_add(max_size).min(buffer.len());
        Some(buffer.get(start..end).unwrap_or_default().to_vec())
    });
    match slice {
        None => NOT_FOUND,
        Some(bytes) if bytes.is_empty() => {
            // SAFETY: valid out pointers.
            unsafe { give_none(return_buffer_data, return_buffer_size) };
            OK
        }
        Some(bytes) => {
            // SAFETY: valid out pointers.
            unsafe { give(&bytes, return_buffer_data, return_buffer_size) };
            OK
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_buffer_bytes(
    buffer_type: u32,
    start: usize,
    size: usize,
    buffer_data: *const u8,
    buffer_size: usize,
) -> u32 {
    note("proxy_set_buffer_bytes");
    // SAFETY: guest pointer and length.
    let data = unsafe { read(buffer_data, buffer_size) }.to_vec();
    with(|h| {
        let Some(buffer) = h.buffers.get_mut(&buffer_type) else {
            return NOT_FOUND;
        };
        if start == 0 {
            // Drain `size` bytes, then prepend.
            let drained = size.min(buffer.len());
            buffer.splice(..drained, data);
            OK
        } else if start >= buffer.len() {
            buffer.extend_from_slice(&data);
            OK
        } else {
            BAD_ARGUMENT
        }
    })
}

// --- header maps ------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn proxy_get_header_map_pairs(
    map_type: u32,
    return_map_data: *mut *mut u8,
    return_map_size: *mut usize,
) -> u32 {
    note("proxy_get_header_map_pairs");
    match with(|h| h.map_mut(map_type).map(|m| serialize(m))) {
        Ok(bytes) => {
            // SAFETY: valid out pointers.
            unsafe { give(&bytes, return_map_data, return_map_size) };
            OK
        }
        Err(status) => status,
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_header_map_pairs(map_type: u32, map_data: *const u8, map_size: usize) -> u32 {
    note("proxy_set_header_map_pairs");
    // SAFETY: guest pointer and length.
    let pairs = pairs_of(unsafe { read(map_data, map_size) });
    with(|h| match h.map_mut(map_type) {
        Ok(map) => {
            *map = pairs;
            OK
        }
        Err(status) => status,
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    note("proxy_get_header_map_value");
    // SAFETY: guest pointer and length.
    let key = unsafe { read_str(key_data, key_size) };
    let value =
        with(|h| h.map_mut(map_type).map(|m| m.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone().into_bytes())));
    match value {
        Ok(Some(bytes)) => {
            // SAFETY: valid out pointers.
            unsafe { give(&bytes, return_value_data, return_value_size) };
            OK
        }
        Ok(None) => NOT_FOUND,
        Err(status) => status,
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_replace_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    note("proxy_replace_header_map_value");
    // SAFETY: guest pointers and lengths.
    let (key, value) = unsafe { (read_str(key_data, key_size), read_str(value_data, value_size)) };
    with(|h| match h.map_mut(map_type) {
        Ok(map) => {
            match map.iter().position(|(k, _)| *k == key) {
                Some(first) => {
                    if let Some(entry) = map.get_mut(first) {
                        entry.1 = value;
                    }
                    let mut index = 0;
                    map.retain(|(k, _)| {
                        let keep = *k != key || index == first;
                        index += 1;
                        keep
                    });
                }
                None => map.push((key, value)),
            }
            OK
        }
        Err(status) => status,
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_add_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> u32 {
    note("proxy_add_header_map_value");
    // SAFETY: guest pointers and lengths.
    let (key, value) = unsafe { (read_str(key_data, key_size), read_str(value_data, value_size)) };
    with(|h| match h.map_mut(map_type) {
        Ok(map) => {
            map.push((key, value));
            OK
        }
        Err(status) => status,
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32 {
    note("proxy_remove_header_map_value");
    // SAFETY: guest pointer and length.
    let key = unsafe { read_str(key_data, key_size) };
    with(|h| match h.map_mut(map_type) {
        Ok(map) => {
            map.retain(|(k, _)| *k != key);
            OK
        }
        Err(status) => status,
    })
}

// --- properties -------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn proxy_get_property(
    path_data: *const u8,
    path_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    note("proxy_get_property");
    // SAFETY: guest pointer and length.
    let raw = unsafe { read(path_data, path_size) };
    // Parts separated (and ended) by NUL.
    let path: Vec<String> = raw
        .strip_suffix(&[0])
        .unwrap_or(raw)
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    match with(|h| h.properties.get(&path).cloned()) {
        Some(value) => {
            // SAFETY: valid out pointers.
            unsafe { give(&value, return_value_data, return_value_size) };
            OK
        }
        None => NOT_FOUND,
    }
}

#[no_mangle]
pub extern "C" fn proxy_set_property(
    _path_data: *const u8,
    _path_size: usize,
    _value_data: *const u8,
    _value_size: usize,
) -> u32 {
    note("proxy_set_property");
    OK
}

// --- shared data (queues unused by the filter) ----------------------------------------------

// Shared data outlives a test thread's Envoy resets within one test (it is the state every VM
// of an Envoy shares): kept per thread, cleared by `reset_shared_data`.
thread_local! {
    static SHARED: RefCell<BTreeMap<String, (Vec<u8>, u32)>> = const { RefCell::new(BTreeMap::new()) };
}

/// Clears the shared data (a new Envoy).
pub fn reset_shared_data() {
    SHARED.with(|s| s.borrow_mut().clear());
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_shared_data(
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
    return_cas: *mut u32,
) -> u32 {
    note("proxy_get_shared_data");
    // SAFETY: guest pointer and length.
    let key = String::from_utf8_lossy(unsafe { read(key_data, key_size) }).into_owned();
    match SHARED.with(|s| s.borrow().get(&key).cloned()) {
        None => NOT_FOUND,
        Some((value, cas)) => {
            // SAFETY: valid out pointers.
            unsafe {
                give(&value, return_value_data, return_value_size);
                *return_cas = cas;
            }
            OK
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_shared_data(
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
    cas: u32,
) -> u32 {
    note("proxy_set_shared_data");
    // SAFETY: guest pointers and lengths.
    let (key, value) = unsafe { (read(key_data, key_size), read(value_data, value_size)) };
    let key = String::from_utf8_lossy(key).into_owned();
    SHARED.with(|s| {
        let mut s = s.borrow_mut();
        let current = s.get(&key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return CAS_MISMATCH;
        }
        s.insert(key, (value.to_vec(), current + 1));
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_register_shared_queue(
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> u32 {
    note("proxy_register_shared_queue");
    // SAFETY: guest pointer and length.
    let name = String::from_utf8_lossy(unsafe { read(name_data, name_size) }).into_owned();
    with(|h| {
        if !h.queues_enabled {
            return INTERNAL_FAILURE;
        }
        let token = match h.queues.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                h.queues.push((name, 0));
                h.queues.len() - 1
            }
        };
        // SAFETY: valid out pointer.
        unsafe { *return_id = token as u32 + 100 };
        OK
    })
}

#[no_mangle]
pub extern "C" fn proxy_resolve_shared_queue(
    _vm_id_data: *const u8,
    _vm_id_size: usize,
    _name_data: *const u8,
    _name_size: usize,
    _return_id: *mut u32,
) -> u32 {
    note("proxy_resolve_shared_queue");
    NOT_FOUND
}

#[no_mangle]
pub extern "C" fn proxy_dequeue_shared_queue(
    queue_id: u32,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    note("proxy_dequeue_shared_queue");
    with(|h| match h.queue_mut(queue_id) {
        Some(items) if *items > 0 => {
            *items -= 1;
            // SAFETY: valid out pointers; an empty value needs no allocation.
            unsafe {
                *return_value_data = std::ptr::null_mut();
                *return_value_size = 0;
            }
            OK
        }
        Some(_) => EMPTY,
        None => NOT_FOUND,
    })
}

#[no_mangle]
pub extern "C" fn proxy_enqueue_shared_queue(queue_id: u32, _value_data: *const u8, _value_size: usize) -> u32 {
    note("proxy_enqueue_shared_queue");
    with(|h| match h.queue_mut(queue_id) {
        Some(items) => {
            *items += 1;
            OK
        }
        None => NOT_FOUND,
    })
}

// --- stream control and local replies ---------------------------------------------------------

#[no_mangle]
pub extern "C" fn proxy_continue_stream(stream_type: u32) -> u32 {
    note("proxy_continue_stream");
    with(|h| {
        h.continued.push(stream_type);
        h.resumed.push((h.effective_context, stream_type));
    });
    OK
}

#[no_mangle]
pub extern "C" fn proxy_close_stream(stream_type: u32) -> u32 {
    note("proxy_close_stream");
    with(|h| h.closed.push(stream_type));
    OK
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn proxy_send_local_response(
    status_code: u32,
    status_code_details_data: *const u8,
    status_code_details_size: usize,
    body_data: *const u8,
    body_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    grpc_status: i32,
) -> u32 {
    note("proxy_send_local_response");
    // SAFETY: guest pointers and lengths.
    let reply = unsafe {
        LocalReply {
            status: status_code,
            details: read_str(status_code_details_data, status_code_details_size),
            headers: pairs_of(read(headers_data, headers_size)),
            body: read(body_data, body_size).to_vec(),
            grpc_status,
        }
    };
    with(|h| {
        h.local_replies.push(reply);
        h.local_reply_status
    })
}

// --- callouts ---------------------------------------------------------------------------------

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn proxy_http_call(
    upstream_data: *const u8,
    upstream_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    body_data: *const u8,
    body_size: usize,
    trailers_data: *const u8,
    trailers_size: usize,
    timeout: u32,
    return_token: *mut u32,
) -> u32 {
    note("proxy_http_call");
    let status = with(|h| h.http_call_status);
    if status != OK {
        return status;
    }
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    // SAFETY: guest pointers and lengths.
    let call = unsafe {
        HttpCall {
            token,
            upstream: read_str(upstream_data, upstream_size),
            headers: pairs_of(read(headers_data, headers_size)),
            body: read(body_data, body_size).to_vec(),
            trailers: pairs_of(read(trailers_data, trailers_size)),
            timeout_ms: timeout,
        }
    };
    with(|h| h.http_calls.push(call));
    // SAFETY: valid out pointer.
    unsafe { *return_token = token };
    OK
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn proxy_grpc_call(
    _upstream_data: *const u8,
    _upstream_size: usize,
    _service_name_data: *const u8,
    _service_name_size: usize,
    _method_name_data: *const u8,
    _method_name_size: usize,
    _initial_metadata_data: *const u8,
    _initial_metadata_size: usize,
    _message_data_data: *const u8,
    _message_data_size: usize,
    _timeout: u32,
    _return_callout_id: *mut u32,
) -> u32 {
    note("proxy_grpc_call");
    INTERNAL_FAILURE
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn proxy_grpc_stream(
    _upstream_data: *const u8,
    _upstream_size: usize,
    _service_name_data: *const u8,
    _service_name_size: usize,
    _method_name_data: *const u8,
    _method_name_size: usize,
    _initial_metadata_data: *const u8,
    _initial_metadata_size: usize,
    _return_stream_id: *mut u32,
) -> u32 {
    note("proxy_grpc_stream");
    INTERNAL_FAILURE
}

/// `end_stream` is a `bool` in the SDK's declaration and a `u32` in ours: not read.
#[no_mangle]
pub extern "C" fn proxy_grpc_send(_token: u32, _message_ptr: *const u8, _message_len: usize, _end_stream: u32) -> u32 {
    note("proxy_grpc_send");
    NOT_FOUND
}

#[no_mangle]
pub extern "C" fn proxy_grpc_cancel(_token_id: u32) -> u32 {
    note("proxy_grpc_cancel");
    NOT_FOUND
}

#[no_mangle]
pub extern "C" fn proxy_grpc_close(_token_id: u32) -> u32 {
    note("proxy_grpc_close");
    NOT_FOUND
}

#[no_mangle]
pub extern "C" fn proxy_get_status(
    _return_code: *mut u32,
    _return_message_data: *mut *mut u8,
    _return_message_size: *mut usize,
) -> u32 {
    note("proxy_get_status");
    NOT_FOUND
}

// --- misc -------------------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn proxy_set_effective_context(context_id: u32) -> u32 {
    note("proxy_set_effective_context");
    with(|h| h.effective_context = context_id);
    OK
}

#[no_mangle]
pub extern "C" fn proxy_call_foreign_function(
    _function_name_data: *const u8,
    _function_name_size: usize,
    _arguments_data: *const u8,
    _arguments_size: usize,
    _results_data: *mut *mut u8,
    _results_size: *mut usize,
) -> u32 {
    note("proxy_call_foreign_function");
    NOT_FOUND
}

#[no_mangle]
pub extern "C" fn proxy_done() -> u32 {
    note("proxy_done");
    OK
}

// --- metrics ----------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn proxy_define_metric(
    metric_type: u32,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> u32 {
    note("proxy_define_metric");
    // SAFETY: guest pointer and length.
    let name = unsafe { read_str(name_data, name_size) };
    let id = with(|h| {
        if let Some(i) = h.metrics.iter().position(|(n, _, _)| *n == name) {
            return u32::try_from(i).unwrap_or(u32::MAX);
        }
        h.metrics.push((name, metric_type, 0));
        u32::try_from(h.metrics.len() - 1).unwrap_or(u32::MAX)
    });
    // SAFETY: valid out pointer.
    unsafe { *return_id = id };
    OK
}

fn with_metric(metric_id: u32, f: impl FnOnce(&mut i64)) -> u32 {
    with(|h| match usize::try_from(metric_id).ok().and_then(|i| h.metrics.get_mut(i)) {
        Some((_, _, value)) => {
            f(value);
            OK
        }
        None => NOT_FOUND,
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32 {
    note("proxy_get_metric");
    let mut current = 0;
    let status = with_metric(metric_id, |v| current = *v);
    // SAFETY: valid out pointer.
    unsafe { *return_value = u64::try_from(current).unwrap_or(0) };
    status
}

#[no_mangle]
pub extern "C" fn proxy_record_metric(metric_id: u32, value: u64) -> u32 {
    note("proxy_record_metric");
    with_metric(metric_id, |v| *v = i64::try_from(value).unwrap_or(i64::MAX))
}

#[no_mangle]
pub extern "C" fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32 {
    note("proxy_increment_metric");
    with_metric(metric_id, |v| *v = v.saturating_add(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_buffer_follows_envoy() {
        reset();
        with(|h| h.set_buffer(Buffer::HttpRequestBody, b"hello world"));
        assert!(host::set_buffer(Buffer::HttpRequestBody, 0, 5, b"HOWDY!"));
        assert_eq!(with(|h| h.buffer(Buffer::HttpRequestBody).map(<[u8]>::to_vec)), Some(b"HOWDY! world".to_vec()));
        // Appending at (or past) the end.
        assert!(host::set_buffer(Buffer::HttpRequestBody, 12, 0, b"!"));
        assert!(host::set_buffer(Buffer::HttpRequestBody, 99, 0, b"?"));
        assert_eq!(host::buffer(Buffer::HttpRequestBody, 0, usize::MAX), b"HOWDY! world!?");
        // A splice in the middle is refused.
        assert!(!host::set_buffer(Buffer::HttpRequestBody, 3, 1, b"x"));
        // Replacing everything.
        assert!(host::set_buffer(Buffer::HttpRequestBody, 0, 14, b"new"));
        assert_eq!(host::buffer(Buffer::HttpRequestBody, 0, usize::MAX), b"new");
        assert_eq!(host::buffer(Buffer::HttpRequestBody, 1, 1), b"e");
        // An absent buffer: nothing to read or replace.
        assert_eq!(host::buffer(Buffer::HttpResponseBody, 0, usize::MAX), b"");
        assert!(!host::set_buffer(Buffer::HttpResponseBody, 0, 0, b"x"));
    }

    #[test]
    fn header_maps_follow_envoy() {
        reset();
        with(|h| h.set_map(Map::RequestHeaders, &[("a", "1"), ("b", "2"), ("a", "3"), ("c", "")]));
        assert_eq!(host::header_str(Map::RequestHeaders, "a").as_deref(), Some("1"));
        assert_eq!(host::header_str(Map::RequestHeaders, "c").as_deref(), Some(""));
        assert_eq!(host::header_str(Map::RequestHeaders, "zz"), None);
        assert!(host::set_header(Map::RequestHeaders, "a", b"x"));
        assert!(host::set_header(Map::RequestHeaders, "d", b"4"));
        assert!(host::remove_header(Map::RequestHeaders, "b"));
        let all: Vec<(Vec<u8>, Vec<u8>)> = host::headers(Map::RequestHeaders);
        assert_eq!(
            all,
            vec![(b"a".to_vec(), b"x".to_vec()), (b"c".to_vec(), b"".to_vec()), (b"d".to_vec(), b"4".to_vec())]
        );
        with(|h| h.release(Map::RequestHeaders));
        assert_eq!(host::header(Map::RequestHeaders, "a"), None);
        assert!(!host::set_header(Map::RequestHeaders, "a", b"y"));
        assert!(!host::remove_header(Map::RequestHeaders, "a"));
        assert!(host::headers(Map::RequestHeaders).is_empty());
        assert_eq!(with(|h| h.get(Map::RequestHeaders, "a").map(str::to_string)), Some("x".into()));
    }

    #[test]
    fn properties_and_logs() {
        reset();
        with(|h| h.set_property(&["xds", "cluster_name"], b"grpc-backend"));
        assert_eq!(host::property(&["xds", "cluster_name"]), Some(b"grpc-backend".to_vec()));
        assert_eq!(host::property(&["cluster_name"]), None);
        host::log(4, "boom");
        assert_eq!(with(|h| h.logs_at(4)), vec!["boom".to_string()]);
        assert_eq!(host::log_level(), Some(2));
    }
}
