//! Host calls that cannot panic. The proxy-wasm SDK's `hostcalls` panic on any status they do
//! not expect (and its trait methods `unwrap` them); a panic traps the VM and fails every later
//! request on the worker. These wrappers declare the ABI imports themselves and return errors.
//!
//! Statuses are read as plain `u32`: an enum return type would be undefined behaviour for a
//! value the enum lacks.
#![allow(unsafe_code)]

use std::ops::Range;
use std::ptr::{null, null_mut};

/// proxy-wasm ABI 0.2.1 status codes.
pub const OK: u32 = 0;
pub const NOT_FOUND: u32 = 1;

/// Header map types of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Map {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    GrpcReceiveInitialMetadata = 4,
    GrpcReceiveTrailingMetadata = 5,
    HttpCallResponseHeaders = 6,
    HttpCallResponseTrailers = 7,
}

/// Buffer types of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Buffer {
    HttpRequestBody = 0,
    HttpResponseBody = 1,
    HttpCallResponseBody = 4,
    GrpcReceiveBuffer = 5,
    PluginConfiguration = 7,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_set_header_map_pairs(map_type: u32, map_data: *const u8, map_size: usize) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_grpc_send(token: u32, message_ptr: *const u8, message_len: usize, end_stream: u32) -> u32;
    fn proxy_grpc_cancel(token: u32) -> u32;
    fn proxy_get_status(
        return_code: *mut u32,
        return_message_data: *mut *mut u8,
        return_message_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(queue_id: u32, return_value_data: *mut *mut u8, return_value_size: *mut usize)
        -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
}

/// Takes ownership of bytes the host allocated through our allocator export.
fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host allocated exactly `size` bytes with `proxy_on_memory_allocate`
    // (the SDK's allocator, a `Vec` of capacity `size`), and hands them to us.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length of a live str.
    unsafe {
        proxy_log(level, message.as_ptr(), message.len());
    }
}

/// The host's log level (0 trace … 5 critical); `None` if it cannot tell.
pub fn log_level() -> Option<u32> {
    let mut level = 0u32;
    // SAFETY: valid out pointer.
    (unsafe { proxy_get_log_level(&mut level) } == OK).then_some(level)
}

/// A header value as bytes; `None` when absent or the map is not available in this callback.
pub fn header(map: Map, name: &str) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: valid pointers; on OK the host hands over an allocation of `size` bytes.
    let status = unsafe { proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size) };
    if status != OK {
        return None;
    }
    owned(data, size)
}

/// A header value as text (lossy for non-UTF-8 bytes).
pub fn header_str(map: Map, name: &str) -> Option<String> {
    header(map, name)
        .map(|v| String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// All headers of a map, as raw bytes.
pub fn headers(map: Map) -> Vec<(Vec<u8>, Vec<u8>)> {
    deserialize_pairs(&header_map_bytes(map))
}

/// A map in the ABI's encoding, as the host wrote it (empty if it is not available): read
/// in place by [`pair_spans`], without a copy per header.
pub fn header_map_bytes(map: Map) -> Vec<u8> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: valid pointers; on OK the host hands over an allocation of `size` bytes.
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    if status != OK {
        return Vec::new();
    }
    owned(data, size).unwrap_or_default()
}

/// Replaces the whole map (Envoy removes every header, then adds these in order); false if
/// the host refused (e.g. the map is gone).
pub fn set_headers(map: Map, pairs: &[(Vec<u8>, Vec<u8>)]) -> bool {
    let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    set_header_map_bytes(map, &serialize_slices(&pairs))
}

/// [`set_headers`] with the map already in the ABI's encoding.
pub fn set_header_map_bytes(map: Map, bytes: &[u8]) -> bool {
    // SAFETY: pointer and length of a live buffer.
    unsafe { proxy_set_header_map_pairs(map as u32, bytes.as_ptr(), bytes.len()) == OK }
}

/// Sets (replaces) a header; false if the host refused (e.g. the map is gone).
pub fn set_header(map: Map, name: &str, value: &[u8]) -> bool {
    // SAFETY: pointers and lengths of live slices.
    unsafe { proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len()) == OK }
}

pub fn remove_header(map: Map, name: &str) -> bool {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) == OK }
}

/// `size` bytes of a buffer from `start`; empty when absent.
pub fn buffer(buffer: Buffer, start: usize, size: usize) -> Vec<u8> {
    try_buffer(buffer, start, size).unwrap_or_default()
}

/// `size` bytes of a buffer from `start` (empty when absent); `None` when the host failed to
/// hand them over (e.g. `proxy_on_memory_allocate` had no room for them).
pub fn try_buffer(buffer: Buffer, start: usize, size: usize) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut len = 0usize;
    // SAFETY: valid pointers; on OK the host hands over an allocation of `len` bytes.
    let status = unsafe { proxy_get_buffer_bytes(buffer as u32, start, size, &mut data, &mut len) };
    match status {
        OK => Some(owned(data, len).unwrap_or_default()),
        NOT_FOUND => Some(Vec::new()),
        _ => None,
    }
}

/// Replaces `size` bytes from `start` (Envoy supports `start == 0`, and appending at the end).
pub fn set_buffer(buffer: Buffer, start: usize, size: usize, value: &[u8]) -> bool {
    // SAFETY: pointer and length of a live slice.
    unsafe { proxy_set_buffer_bytes(buffer as u32, start, size, value.as_ptr(), value.len()) == OK }
}

/// A host property (`["xds", "cluster_name"]`); `None` when absent.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let mut serialized = Vec::new();
    for part in path {
        serialized.extend_from_slice(part.as_bytes());
        serialized.push(0);
    }
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: valid pointers; on OK the host hands over an allocation of `size` bytes.
    let status = unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    if status != OK {
        return None;
    }
    owned(data, size)
}

/// Replaces the response with a local reply. Works in request callbacks, and in response
/// callbacks until the response headers went downstream.
pub fn send_response(status: u16, headers: &[(&[u8], &[u8])], body: &[u8]) -> bool {
    let serialized = serialize_slices(headers);
    // SAFETY: pointers and lengths of live buffers; -1 means "no grpc-status".
    unsafe {
        proxy_send_local_response(
            u32::from(status),
            null(),
            0,
            body.as_ptr(),
            body.len(),
            serialized.as_ptr(),
            serialized.len(),
            -1,
        ) == OK
    }
}

pub fn grpc_send(token: u32, message: &[u8], end_stream: bool) -> bool {
    // SAFETY: pointer and length of a live slice.
    unsafe { proxy_grpc_send(token, message.as_ptr(), message.len(), u32::from(end_stream)) == OK }
}

pub fn grpc_cancel(token: u32) {
    // SAFETY: plain value call.
    unsafe {
        proxy_grpc_cancel(token);
    }
}

/// The status of the gRPC call being closed (code, message bytes).
pub fn grpc_status() -> Option<(u32, Vec<u8>)> {
    let mut code = 0u32;
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: valid pointers; on OK the host may hand over an allocation of `size` bytes.
    let status = unsafe { proxy_get_status(&mut code, &mut data, &mut size) };
    if status != OK {
        return None;
    }
    Some((code, owned(data, size).unwrap_or_default()))
}

/// Sends an HTTP request to `cluster` (Envoy answers in `proxy_on_http_call_response`);
/// the token, or the host status on failure.
pub fn http_call(cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u32) -> Result<u32, u32> {
    let serialized = serialize_pairs(headers);
    let trailers = serialize_pairs(&[]);
    let mut token = 0u32;
    // SAFETY: pointers and lengths of live buffers, valid out pointer.
    let status = unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            serialized.as_ptr(),
            serialized.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    };
    if status == OK {
        Ok(token)
    } else {
        Err(status)
    }
}

/// A shared data entry (shared by every VM of this plugin's vm_id: all workers of an Envoy):
/// its value and CAS token; `None` when absent (or the host refused).
pub fn shared_data(key: &str) -> Option<(Vec<u8>, u32)> {
    let mut data = null_mut();
    let mut size = 0usize;
    let mut cas = 0u32;
    // SAFETY: valid pointers; on OK the host hands over an allocation of `size` bytes.
    let status = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    if status != OK {
        return None;
    }
    Some((owned(data, size).unwrap_or_default(), cas))
}

/// Sets a shared data entry if its CAS token is still `cas` (0: whatever it is); false when
/// another VM changed it meanwhile (or the host refused).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> bool {
    // SAFETY: pointers and lengths of live slices.
    unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) == OK }
}

/// Resumes a paused response (`proxy_continue_stream`, 1 = response).
pub fn resume_response() -> bool {
    // SAFETY: plain value call.
    unsafe { proxy_continue_stream(1) == OK }
}

/// Acts on behalf of another context (from the root's tick). False if it is gone.
pub fn set_effective_context(context_id: u32) -> bool {
    // SAFETY: plain value call.
    unsafe { proxy_set_effective_context(context_id) == OK }
}

/// Root ticks every `ms` milliseconds (0 stops them).
pub fn set_tick_period(ms: u32) -> bool {
    // SAFETY: plain value call.
    unsafe { proxy_set_tick_period_milliseconds(ms) == OK }
}

/// Registers a shared queue of this VM (`proxy_on_queue_ready` of the calling root context
/// runs, on this VM's thread, after each enqueue); its token.
pub fn register_queue(name: &str) -> Option<u32> {
    let mut token = 0u32;
    // SAFETY: pointer and length of a live str, valid out pointer.
    (unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut token) } == OK).then_some(token)
}

/// Enqueues an empty item on queue `token`.
pub fn enqueue(token: u32) -> bool {
    // SAFETY: an empty value (the pointer is not read).
    unsafe { proxy_enqueue_shared_queue(token, [].as_ptr(), 0) == OK }
}

/// Removes the oldest item of queue `token` (its value is dropped).
pub fn dequeue(token: u32) -> bool {
    let mut data = null_mut();
    let mut len = 0usize;
    // SAFETY: valid pointers; on OK the host hands over an allocation of `len` bytes.
    let ok = unsafe { proxy_dequeue_shared_queue(token, &mut data, &mut len) } == OK;
    drop(owned(data, len));
    ok
}

/// The host's wall clock in nanoseconds (0 if unavailable).
pub fn now_nanos() -> u64 {
    let mut t = 0u64;
    // SAFETY: valid out pointer.
    if unsafe { proxy_get_current_time_nanoseconds(&mut t) } == OK {
        t
    } else {
        0
    }
}

/// Metric kinds of the ABI.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

pub fn define_metric(kind: MetricKind, name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: pointer and length of a live str, valid out pointer.
    (unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) } == OK).then_some(id)
}

pub fn increment_metric(id: u32, offset: i64) {
    // SAFETY: plain value call.
    unsafe {
        proxy_increment_metric(id, offset);
    }
}

pub fn record_metric(id: u32, value: u64) {
    // SAFETY: plain value call.
    unsafe {
        proxy_record_metric(id, value);
    }
}

/// The ABI's map encoding: count, then (key length, value length) pairs, then each key and
/// value followed by a NUL.
pub fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    serialize_slices(&pairs)
}

fn serialize_slices(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let size: usize = 4 + pairs.iter().map(|(k, v)| 8 + k.len() + v.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32::try_from(pairs.len()).unwrap_or(0).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&u32::try_from(k.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&u32::try_from(v.len()).unwrap_or(0).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Parses the ABI's map encoding; malformed input yields what could be read.
pub fn deserialize_pairs(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pair_spans(bytes).into_iter().filter_map(|(k, v)| Some((bytes.get(k)?.to_vec(), bytes.get(v)?.to_vec()))).collect()
}

/// Where each name and value of a map in the ABI's encoding lies in `bytes`; a malformed
/// map yields the pairs read before the fault (none if its size table is cut short).
pub fn pair_spans(bytes: &[u8]) -> Vec<(Range<usize>, Range<usize>)> {
    let read_u32 = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        let n = u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]);
        usize::try_from(n).ok()
    };
    let Some(count) = read_u32(0) else {
        return Vec::new();
    };
    // The size table must be there whole: a count the bytes cannot hold is refused before
    // anything is reserved for it.
    let Some(mut at) = count.checked_mul(8).and_then(|n| n.checked_add(4)).filter(|end| *end <= bytes.len()) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let table = 4 + i * 8;
        let (Some(k), Some(v)) = (read_u32(table), read_u32(table + 4)) else { break };
        let key = at..at.saturating_add(k);
        let value = key.end.saturating_add(1)..key.end.saturating_add(1).saturating_add(v);
        if value.end > bytes.len() {
            break;
        }
        at = value.end.saturating_add(1);
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = [("a", "1"), (":path", "/x"), ("empty", "")];
        let bytes = serialize_pairs(&pairs);
        let back = deserialize_pairs(&bytes);
        let back: Vec<(String, String)> =
            back.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())).collect();
        assert_eq!(back, pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
    }

    #[test]
    fn malformed_pairs_do_not_panic() {
        for bytes in
            [&[][..], &[1, 0, 0, 0][..], &[1, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, b'a'][..], &[255, 255, 255, 255][..]]
        {
            let _ = deserialize_pairs(bytes);
        }
    }
}
