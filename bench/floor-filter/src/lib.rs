//! The floor of the end-to-end benchmark: a proxy-wasm (ABI 0.2.1) HTTP filter that, by default,
//! does nothing (every callback returns Continue, no host call, no allocation on the request
//! path). Its plugin configuration can name host calls to make per request, so that variants of
//! the same module measure what each kind of host call costs in Envoy (V8):
//!
//!   configuration = op[*N], op[*N], ...      (empty or `{}`: no op; `*N` repeats the op N times)
//!
//!   req_headers_get      on_request_headers   proxy_get_header_map_pairs(request headers)
//!   req_headers_set      on_request_headers   proxy_set_header_map_pairs(request headers, the
//!                                             bytes just got; does one get first if no
//!                                             req_headers_get)
//!   req_header_replace   on_request_headers   proxy_replace_header_map_value("x-floor", "1")
//!   req_body_buffer      on_request_body      StopIterationAndBuffer until the body's end
//!   req_body_get         end of request body  proxy_get_buffer_bytes(request body, all of it:
//!                                             the whole body with req_body_buffer, else the
//!                                             last chunk)
//!   req_body_set         end of request body  proxy_set_buffer_bytes(request body, all of it,
//!                                             the bytes just got; one get first if needed)
//!   resp_headers_get, resp_headers_set, resp_header_replace,
//!   resp_body_buffer, resp_body_get, resp_body_set: the same on the response
//!   resp_trailers_get    on_response_trailers proxy_get_header_map_pairs(response trailers)
//!   resp_trailers_set    on_response_trailers proxy_set_header_map_pairs(response trailers, ...)
//!   metric               on_request_headers   proxy_increment_metric(counter floor.requests, 1)
//!                                             (Envoy's stat: wasmcustom.floor.requests)
//!   clock                on_request_headers   proxy_get_current_time_nanoseconds
//!   log_level            on_request_headers   proxy_get_log_level
//!
//! Within a callback the ops run in the order of this table, whatever the configuration's order.
//! "End of body" is the body callback with end_of_stream, or, for a body that ends with trailers
//! (gRPC responses), the trailers callback: there the body is only still readable when it was
//! buffered, so the body ops run in on_*_trailers only with *_body_buffer.
//!
//! Every get/set pair happens within one callback, so nothing is kept per request (no map keyed
//! by context id, no allocation per request when no op needs one): requests interleaving on a
//! worker cannot see each other's state. The configuration is one per VM (the last
//! proxy_on_configure wins): give each variant its own vm_id.
//!
//! Unknown op names or a bad `*N` make proxy_on_configure return 0 (after a proxy_log at error
//! level), so Envoy rejects the configuration. Host call failures are ignored (the request goes
//! on); nothing on the request path can panic.
//!
//! Return values: 0 = Continue, 1 = StopIterationAndBuffer for the body callbacks; 1 = true for
//! on_vm_start / on_configure / on_done.

use std::cell::Cell;
use std::ptr::null_mut;

// ---- ABI 0.2.1 constants (as in filter/src/wasm/host.rs) ----------------------------------------

const OK: u32 = 0;
const CONTINUE: u32 = 0;
const STOP_ITERATION_AND_BUFFER: u32 = 1;
const LOG_ERROR: u32 = 4;

const MAP_REQUEST_HEADERS: u32 = 0;
const MAP_RESPONSE_HEADERS: u32 = 2;
const MAP_RESPONSE_TRAILERS: u32 = 3;

const BUFFER_REQUEST_BODY: u32 = 0;
const BUFFER_RESPONSE_BODY: u32 = 1;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;

const METRIC_COUNTER: u32 = 0;

/// Max size for a whole-buffer read where the callback gave no size (trailers): the host clamps
/// it to the buffer's length.
const WHOLE: usize = u32::MAX as usize;

// The same imports as filter/src/wasm/host.rs declares, on purpose not shared: the floor must
// not link json2grpc's code, or it would no longer be the empty filter it measures.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_set_header_map_pairs(map_type: u32, map_data: *const u8, map_size: usize) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
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
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
}

// ---- configuration ------------------------------------------------------------------------------

/// How many times each op runs per request (0 = off).
#[derive(Clone, Copy, Default)]
struct Ops {
    req_headers_get: u32,
    req_headers_set: u32,
    req_header_replace: u32,
    req_body_buffer: u32,
    req_body_get: u32,
    req_body_set: u32,
    resp_headers_get: u32,
    resp_headers_set: u32,
    resp_header_replace: u32,
    resp_body_buffer: u32,
    resp_body_get: u32,
    resp_body_set: u32,
    resp_trailers_get: u32,
    resp_trailers_set: u32,
    metric: u32,
    clock: u32,
    log_level: u32,
    /// Id of the `floor.requests` counter (defined in on_configure when `metric` is on).
    metric_id: Option<u32>,
}

impl Ops {
    fn slot(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "req_headers_get" => &mut self.req_headers_get,
            "req_headers_set" => &mut self.req_headers_set,
            "req_header_replace" => &mut self.req_header_replace,
            "req_body_buffer" => &mut self.req_body_buffer,
            "req_body_get" => &mut self.req_body_get,
            "req_body_set" => &mut self.req_body_set,
            "resp_headers_get" => &mut self.resp_headers_get,
            "resp_headers_set" => &mut self.resp_headers_set,
            "resp_header_replace" => &mut self.resp_header_replace,
            "resp_body_buffer" => &mut self.resp_body_buffer,
            "resp_body_get" => &mut self.resp_body_get,
            "resp_body_set" => &mut self.resp_body_set,
            "resp_trailers_get" => &mut self.resp_trailers_get,
            "resp_trailers_set" => &mut self.resp_trailers_set,
            "metric" => &mut self.metric,
            "clock" => &mut self.clock,
            "log_level" => &mut self.log_level,
            _ => return None,
        })
    }

    /// `op[*N], ...`; empty or `{}` = no op. The error names the offending item.
    fn parse(text: &str) -> Result<Ops, String> {
        let mut ops = Ops::default();
        let text = text.trim();
        if text == "{}" {
            return Ok(ops);
        }
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (name, times) = match item.split_once('*') {
                Some((name, n)) => (name.trim(), n.trim().parse::<u32>().map_err(|_| format!("bad count in `{item}`"))?),
                None => (item, 1),
            };
            let slot = ops.slot(name).ok_or_else(|| format!("unknown op `{name}`"))?;
            *slot = slot.saturating_add(times);
        }
        Ok(ops)
    }
}

// Wasm here is single-threaded: a thread_local is one plain global per VM, and a Cell of a Copy
// struct needs no borrow bookkeeping (nothing that could panic).
thread_local! {
    static OPS: Cell<Ops> = Cell::new(Ops::default());
}

fn ops() -> Ops {
    OPS.with(Cell::get)
}

// ---- host calls (failures ignored: the request just goes on) --------------------------------------

/// Takes ownership of bytes the host allocated through `proxy_on_memory_allocate`; dropping the
/// Vec frees them.
fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host allocated exactly `size` bytes with proxy_on_memory_allocate (a Vec of
    // capacity `size`) and hands them over.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

fn log_error(message: &str) {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_log(LOG_ERROR, message.as_ptr(), message.len()) };
}

/// A header map, serialized as the host gives it.
fn get_pairs(map: u32) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out pointers; on OK the host hands over an allocation of `size` bytes.
    if unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) } != OK {
        return None;
    }
    owned(data, size)
}

/// `max` bytes of a buffer from its start (the host clamps to its length). `Some(empty)` for an
/// empty buffer (the host then allocates nothing).
fn get_buffer(buffer: u32, max: usize) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out pointers; on OK the host hands over an allocation of `size` bytes.
    if unsafe { proxy_get_buffer_bytes(buffer, 0, max, &mut data, &mut size) } != OK {
        return None;
    }
    Some(owned(data, size).unwrap_or_default())
}

/// `gets` reads of a header map, then `sets` writes of what was read back into it (one read
/// first if `gets` is 0: the set needs bytes).
fn header_ops(map: u32, gets: u32, sets: u32) {
    let mut got = None;
    for _ in 0..gets.max(u32::from(sets > 0)) {
        got = get_pairs(map);
    }
    if let Some(bytes) = &got {
        for _ in 0..sets {
            // SAFETY: pointer and length of a live buffer.
            unsafe { proxy_set_header_map_pairs(map, bytes.as_ptr(), bytes.len()) };
        }
    }
}

fn replace_header(map: u32, times: u32) {
    for _ in 0..times {
        let (name, value) = ("x-floor", "1");
        // SAFETY: pointers and lengths of live strs.
        unsafe { proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    }
}

/// Like header_ops for a body: `gets` whole-body reads, then `sets` replacements of the whole
/// body with the bytes read (Envoy: drain that many bytes, prepend the new ones).
fn body_ops(buffer: u32, max: usize, gets: u32, sets: u32) {
    let mut got = None;
    for _ in 0..gets.max(u32::from(sets > 0)) {
        got = get_buffer(buffer, max);
    }
    if let Some(bytes) = &got {
        for _ in 0..sets {
            // SAFETY: pointer and length of a live buffer.
            unsafe { proxy_set_buffer_bytes(buffer, 0, bytes.len(), bytes.as_ptr(), bytes.len()) };
        }
    }
}

// ---- exports ------------------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host copies buffers (configuration, headers, bodies) into memory it asks for here.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(size);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

/// Reads the op list; 0 (Envoy rejects the plugin) when it is not valid.
#[no_mangle]
pub extern "C" fn proxy_on_configure(_context_id: u32, plugin_configuration_size: usize) -> u32 {
    let bytes = get_buffer(BUFFER_PLUGIN_CONFIGURATION, plugin_configuration_size).unwrap_or_default();
    let parsed = std::str::from_utf8(&bytes).map_err(|_| "configuration is not UTF-8".to_string()).and_then(Ops::parse);
    let mut ops = match parsed {
        Ok(ops) => ops,
        Err(e) => {
            log_error(&format!("floor filter: {e}; ops are op[*N] separated by commas"));
            return 0;
        }
    };
    if ops.metric > 0 {
        let (name, mut id) = ("floor.requests", 0u32);
        // SAFETY: pointer and length of a live str, valid out pointer.
        let status = unsafe { proxy_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id) };
        ops.metric_id = (status == OK).then_some(id);
    }
    OPS.with(|cell| cell.set(ops));
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _num_headers: usize, _end_of_stream: u32) -> u32 {
    let ops = ops();
    header_ops(MAP_REQUEST_HEADERS, ops.req_headers_get, ops.req_headers_set);
    replace_header(MAP_REQUEST_HEADERS, ops.req_header_replace);
    if let Some(id) = ops.metric_id {
        for _ in 0..ops.metric {
            // SAFETY: plain value call.
            unsafe { proxy_increment_metric(id, 1) };
        }
    }
    for _ in 0..ops.clock {
        let mut t = 0u64;
        // SAFETY: valid out pointer.
        unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    }
    for _ in 0..ops.log_level {
        let mut level = 0u32;
        // SAFETY: valid out pointer.
        unsafe { proxy_get_log_level(&mut level) };
    }
    CONTINUE
}

/// With buffering, body_size at end_of_stream is the whole body's (Envoy adds each chunk to the
/// buffered body before the call).
#[no_mangle]
pub extern "C" fn proxy_on_request_body(_context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    let ops = ops();
    if end_of_stream == 0 {
        return if ops.req_body_buffer > 0 { STOP_ITERATION_AND_BUFFER } else { CONTINUE };
    }
    body_ops(BUFFER_REQUEST_BODY, body_size, ops.req_body_get, ops.req_body_set);
    CONTINUE
}

/// A request body that ends with trailers: its end is here (readable only if buffered).
#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(_context_id: u32, _num_trailers: usize) -> u32 {
    let ops = ops();
    if ops.req_body_buffer > 0 {
        body_ops(BUFFER_REQUEST_BODY, WHOLE, ops.req_body_get, ops.req_body_set);
    }
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(_context_id: u32, _num_headers: usize, _end_of_stream: u32) -> u32 {
    let ops = ops();
    header_ops(MAP_RESPONSE_HEADERS, ops.resp_headers_get, ops.resp_headers_set);
    replace_header(MAP_RESPONSE_HEADERS, ops.resp_header_replace);
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(_context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    let ops = ops();
    if end_of_stream == 0 {
        return if ops.resp_body_buffer > 0 { STOP_ITERATION_AND_BUFFER } else { CONTINUE };
    }
    body_ops(BUFFER_RESPONSE_BODY, body_size, ops.resp_body_get, ops.resp_body_set);
    CONTINUE
}

/// gRPC responses end with trailers: the buffered body's end is here, then the trailer ops.
#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(_context_id: u32, _num_trailers: usize) -> u32 {
    let ops = ops();
    if ops.resp_body_buffer > 0 {
        body_ops(BUFFER_RESPONSE_BODY, WHOLE, ops.resp_body_get, ops.resp_body_set);
    }
    header_ops(MAP_RESPONSE_TRAILERS, ops.resp_trailers_get, ops.resp_trailers_set);
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}
