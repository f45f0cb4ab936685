//! The proxy-wasm ABI (0.2.1) entry points, dispatched to json2grpc's contexts.
//!
//! json2grpc does not use the SDK's dispatcher: it panics when Envoy calls back into the VM
//! while a callback is running (a body write over Envoy's buffer limit makes Envoy destroy the
//! stream right away, calling `proxy_on_log`/`proxy_on_done` re-entrantly — observed to trap
//! the VM and crash Envoy), and on host statuses it does not expect. Here a context is taken
//! out of the table while it runs, never a panic: a re-entrant callback for it finds it busy
//! and is dropped (a stream callback answers Continue); only a re-entrant `proxy_on_delete` is
//! deferred, the context is dropped when its callback returns.
//!
//! Only the callbacks json2grpc uses are exported: Envoy skips a callback the module does not
//! export (proxy-wasm-cpp-host checks each export before calling it), and every call into V8
//! costs about 0.7 µs of Envoy CPU per request (bench/ladder.py, the empty filter). So there is
//! no `proxy_on_log` (the stream's end is `proxy_on_delete`) and no `proxy_on_done` (whose
//! default answer, "done", is the one json2grpc gives).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use super::host;

/// What a callback tells Envoy to do with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    Continue = 0,
    /// Stop iteration: for bodies, buffer (StopIterationAndBuffer).
    Pause = 1,
}

/// The plugin's root context (one per VM and plugin).
pub trait RootContext {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool;
    fn on_tick(&mut self) {}
    fn on_queue_ready(&mut self, _token: u32) {}
    /// The answer to a call the root made itself (e.g. fetching descriptors).
    fn on_http_call_response(&mut self, _token: u32, _num_headers: usize, _body_size: usize, _num_trailers: usize) {}
    fn create_http_context(&self, context_id: u32) -> Box<dyn HttpContext>;
}

/// One HTTP stream's callbacks.
pub trait HttpContext {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        Action::Continue
    }
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_http_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        Action::Continue
    }
    fn on_http_call_response(&mut self, _token: u32, _num_headers: usize, _body_size: usize, _num_trailers: usize) {}
    /// The stream is over: Envoy deletes its context (after its access logs).
    fn on_end(&mut self) {}
}

type RootFactory = fn() -> Box<dyn RootContext>;

enum Slot<T: ?Sized> {
    Ready(Box<T>),
    /// Running a callback; `deleted`: Envoy deleted it meanwhile.
    Busy {
        deleted: bool,
    },
}

#[derive(Default)]
struct Dispatcher {
    factory: Option<RootFactory>,
    roots: HashMap<u32, Slot<dyn RootContext>>,
    streams: HashMap<u32, Slot<dyn HttpContext>>,
    /// Stream context of each stream's root.
    parents: HashMap<u32, u32>,
    /// Callout token → the stream context that made the call.
    callouts: HashMap<u32, u32>,
}

thread_local! {
    static DISPATCHER: RefCell<Dispatcher> = RefCell::new(Dispatcher::default());
}

/// Sets the factory of root contexts (from `_initialize`).
pub fn set_root_factory(factory: RootFactory) {
    DISPATCHER.with(|d| d.borrow_mut().factory = Some(factory));
}

/// Remembers which stream made a callout, to deliver its response there.
pub fn register_callout(token: u32, context_id: u32) {
    DISPATCHER.with(|d| {
        d.borrow_mut().callouts.insert(token, context_id);
    });
}

/// Runs `f` on root `id`, taking it out of the table meanwhile; `None` (the call is dropped)
/// if absent or busy.
fn with_root<R>(id: u32, f: impl FnOnce(&mut dyn RootContext) -> R) -> Option<R> {
    let mut root = DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        match d.roots.insert(id, Slot::Busy { deleted: false }) {
            Some(Slot::Ready(r)) => Some(r),
            Some(busy) => {
                d.roots.insert(id, busy);
                None
            }
            None => {
                d.roots.remove(&id);
                None
            }
        }
    })?;
    let result = f(root.as_mut());
    DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        if let Some(Slot::Busy { deleted: false }) = d.roots.get(&id) {
            d.roots.insert(id, Slot::Ready(root));
        } else {
            d.roots.remove(&id);
        }
    });
    Some(result)
}

/// Runs `f` on stream `id`, taking it out of the table meanwhile; `None` (the call is dropped,
/// a stream callback answers Continue) if absent or busy.
fn with_stream<R>(id: u32, f: impl FnOnce(&mut dyn HttpContext) -> R) -> Option<R> {
    let mut stream = DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        match d.streams.insert(id, Slot::Busy { deleted: false }) {
            Some(Slot::Ready(s)) => Some(s),
            Some(busy) => {
                d.streams.insert(id, busy);
                None
            }
            None => {
                d.streams.remove(&id);
                None
            }
        }
    })?;
    let result = f(stream.as_mut());
    let deleted = DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        match d.streams.get(&id) {
            Some(Slot::Busy { deleted: false }) => {
                d.streams.insert(id, Slot::Ready(stream));
                None
            }
            _ => {
                // Envoy deleted the stream while it ran: drop it now, outside the table.
                d.streams.remove(&id);
                d.parents.remove(&id);
                Some(stream)
            }
        }
    });
    // Deleted while it ran: its end, like proxy_on_delete's, outside the table.
    if let Some(mut stream) = deleted {
        stream.on_end();
    }
    Some(result)
}

fn action(a: Option<Action>) -> u32 {
    a.unwrap_or(Action::Continue) as u32
}

// ---- exports --------------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host copies data into the guest with memory from here; `host::owned` frees it.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    // Envoy asks for room for data it hands over (a body, a header map). A size the VM cannot
    // hold (a huge buffer) gets null, which fails that one host call; `Vec::with_capacity`
    // would trap the VM instead (capacity overflow or allocation failure aborts).
    let mut buffer: Vec<u8> = Vec::new();
    if buffer.try_reserve_exact(size).is_err() {
        return std::ptr::null_mut();
    }
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
    if parent_context_id == 0 {
        let root = DISPATCHER.with(|d| d.borrow().factory.map(|f| f()));
        if let Some(root) = root {
            DISPATCHER.with(|d| {
                d.borrow_mut().roots.insert(context_id, Slot::Ready(root));
            });
        }
        return;
    }
    if let Some(stream) = with_root(parent_context_id, |r| r.create_http_context(context_id)) {
        DISPATCHER.with(|d| {
            let mut d = d.borrow_mut();
            d.streams.insert(context_id, Slot::Ready(stream));
            d.parents.insert(context_id, parent_context_id);
        });
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> u32 {
    u32::from(with_root(context_id, |r| r.on_vm_start(vm_configuration_size)).unwrap_or(false))
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> u32 {
    u32::from(with_root(context_id, |r| r.on_configure(plugin_configuration_size)).unwrap_or(false))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(context_id: u32) {
    with_root(context_id, |r| r.on_tick());
}

#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(context_id: u32, token: u32) {
    with_root(context_id, |r| r.on_queue_ready(token));
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, num_headers: usize, end_of_stream: u32) -> u32 {
    action(with_stream(context_id, |s| s.on_http_request_headers(num_headers, end_of_stream != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    action(with_stream(context_id, |s| s.on_http_request_body(body_size, end_of_stream != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> u32 {
    action(with_stream(context_id, |s| s.on_http_request_trailers(num_trailers)))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, num_headers: usize, end_of_stream: u32) -> u32 {
    action(with_stream(context_id, |s| s.on_http_response_headers(num_headers, end_of_stream != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    action(with_stream(context_id, |s| s.on_http_response_body(body_size, end_of_stream != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(context_id: u32, num_trailers: usize) -> u32 {
    action(with_stream(context_id, |s| s.on_http_response_trailers(num_trailers)))
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) {
    let (target, is_root) = DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        let target = d.callouts.remove(&token).unwrap_or(context_id);
        (target, d.roots.contains_key(&target))
    });
    if is_root {
        with_root(target, |r| r.on_http_call_response(token, num_headers, body_size, num_trailers));
        return;
    }
    // Host calls made from the response (the local reply) must act on that stream.
    host::set_effective_context(target);
    with_stream(target, |s| s.on_http_call_response(token, num_headers, body_size, num_trailers));
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    let ended = DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        // A context deleted while it runs is dropped when its callback returns.
        let busy = |slot: Option<&mut Slot<dyn HttpContext>>| match slot {
            Some(Slot::Busy { deleted }) => {
                *deleted = true;
                true
            }
            _ => false,
        };
        let ended = if busy(d.streams.get_mut(&context_id)) { None } else { d.streams.remove(&context_id) };
        d.parents.remove(&context_id);
        d.callouts.retain(|_, ctx| *ctx != context_id);
        match d.roots.get_mut(&context_id) {
            Some(Slot::Busy { deleted }) => *deleted = true,
            Some(Slot::Ready(_)) => {
                d.roots.remove(&context_id);
            }
            None => {}
        }
        ended
    });
    // Outside the table: its last words may call the host.
    if let Some(Slot::Ready(mut stream)) = ended {
        stream.on_end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u32);

    thread_local! {
        static ENDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    impl HttpContext for Counter {
        fn on_end(&mut self) {
            ENDED.with(|e| e.set(e.get() + 1));
        }

        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            self.0 += 1;
            // Envoy deleting this stream from inside its own callback must not panic.
            proxy_on_delete(7);
            Action::Pause
        }
    }

    struct Root;

    impl RootContext for Root {
        fn on_configure(&mut self, _: usize) -> bool {
            true
        }
        fn create_http_context(&self, _: u32) -> Box<dyn HttpContext> {
            Box::new(Counter(0))
        }
    }

    #[test]
    fn reentrant_deletion_is_deferred_not_a_panic() {
        set_root_factory(|| Box::new(Root));
        proxy_on_context_create(1, 0);
        assert_eq!(proxy_on_configure(1, 0), 1);
        proxy_on_context_create(7, 1);
        assert_eq!(proxy_on_request_headers(7, 3, 0), Action::Pause as u32);
        // Deleted during its callback: gone afterwards (its end seen once), later callbacks
        // are no-ops.
        assert_eq!(ENDED.with(|e| e.get()), 1);
        assert_eq!(proxy_on_request_headers(7, 3, 0), Action::Continue as u32);
        DISPATCHER.with(|d| assert!(!d.borrow().streams.contains_key(&7)));
        // Unknown contexts are ignored.
        assert_eq!(proxy_on_response_body(99, 1, 1), Action::Continue as u32);
        proxy_on_delete(99);
        // A stream deleted between callbacks ends once, at its deletion.
        proxy_on_context_create(8, 1);
        proxy_on_delete(8);
        assert_eq!(ENDED.with(|e| e.get()), 2);
        proxy_on_delete(8);
        assert_eq!(ENDED.with(|e| e.get()), 2);
        proxy_on_delete(1);
        assert_eq!(proxy_on_configure(1, 0), 0);
    }
}
