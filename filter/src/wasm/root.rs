//! The root context: parses the plugin configuration into a [`Transcoder`] once per VM (one VM
//! per worker) and hands it to every request.
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::abi::{HttpContext, RootContext};
use super::host;
use super::http::Http;
use super::live::Live;
use super::metrics::Metrics;
use crate::core::config::Config;
use crate::core::error::Error;
use crate::core::transcoder::Transcoder;

/// What a configuration gives every request: the transcoder and its stats.
pub struct Filter {
    pub transcoder: Transcoder,
    pub metrics: Metrics,
    /// Whether the host lets the filter add a body to a request that ended at its headers
    /// (proxy-wasm spec issue #86): unknown until the first bodyless request tries; Envoy 1.40
    /// refuses, and the answer is kept so later requests do not ask again.
    pub adds_bodies_to_headers_only: Cell<Option<bool>>,
    /// The OpenAPI document of this transcoder, made on its first request
    /// (`json2grpc.openapi.path`).
    pub openapi: OnceCell<Result<Rc<[u8]>, Error>>,
}

impl std::ops::Deref for Filter {
    type Target = Transcoder;

    fn deref(&self) -> &Transcoder {
        &self.transcoder
    }
}

#[derive(Default)]
pub struct Root {
    /// `None` until a configuration was accepted (and, with live descriptors, until the first
    /// descriptors arrived): requests then pass through, or get 503 while loading.
    filter: Option<Rc<Filter>>,
    flusher: Rc<Flusher>,
    /// Live descriptors (`json2grpc.descriptor`), when the configuration has a source.
    live: Option<Live>,
}

/// The VM's linear memory (what the configuration's build grew it to: it never shrinks, and
/// every worker pays it), for the configure log; 0 off wasm32.
fn linear_memory_kib() -> usize {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) * 64;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

impl Root {
    /// The transcoder serving now (tests look at what it keeps).
    #[cfg(test)]
    pub(crate) fn transcoder(&self) -> Option<&Transcoder> {
        self.filter.as_ref().map(|f| &f.transcoder)
    }

    fn serve(&mut self, mut transcoder: Transcoder) {
        transcoder.release_build_inputs();
        // Logged once, then freed: every worker's VM would keep them.
        for warning in std::mem::take(&mut transcoder.router.warnings) {
            log::warn!("{warning}");
        }
        log::info!(
            "configured {} service(s), {} method(s); this VM's linear memory: {} KiB",
            transcoder.config.services.len(),
            transcoder.router.methods.len(),
            linear_memory_kib()
        );
        let metrics = Metrics::define();
        self.filter = Some(Rc::new(Filter {
            transcoder,
            metrics,
            adds_bodies_to_headers_only: Cell::new(None),
            openapi: OnceCell::new(),
        }));
    }
}

/// The tick period while a wake-up is posted: only a watchdog (the wake-up comes first).
const WATCHDOG_MS: u32 = 20;

/// Resumes paused server streams once Envoy is done with the event that delivered their data.
///
/// A stream's body callback returns Pause so that Envoy keeps a buffer this filter can still
/// write to when the trailers arrive (to close the JSON array, or report an error). Resuming
/// from inside the callback does not flush (Envoy runs the resume before it has processed the
/// Pause), so the root resumes those streams from a later callback of its own: a shared queue
/// of this VM, whose enqueue Envoy answers with `proxy_on_queue_ready` posted to this worker's
/// event loop — it runs right after the upstream read being processed, with no timer (a timer
/// of 1 ms fires 1-4 ms later: libevent's coarse clock follows the kernel's tick, 4 ms at
/// HZ=250). Without the queue, the root's tick does it. Chunks that arrive before the flush
/// are left in Envoy's buffer as gRPC bytes and translated in one pass
/// ([`Flush::before_resume`]), not each by rewriting all the JSON held before it.
#[derive(Default)]
pub struct Flusher {
    /// By stream: a worker can hold thousands of streams, and every body chunk asks.
    pending: RefCell<HashMap<u32, Option<Rc<dyn Flush>>>>,
    /// The tick period set now (ms, 0: none), and the one when no stream waits (live
    /// descriptors poll on it; 0 otherwise: an idle worker costs nothing).
    period: Cell<u32>,
    idle: Cell<u32>,
    /// This VM's wake-up queue, and whether an item is on it (one wake-up at a time).
    wake: Cell<Option<u32>>,
    posted: Cell<bool>,
}

/// What a stream does when flushed (wake-up or tick), before it is resumed (its context is the
/// effective one, so its buffers can be read and written).
pub trait Flush {
    /// False: not ready (e.g. its body could not be read now); it stays pending for the next
    /// tick instead of being resumed.
    fn before_resume(&self) -> bool;
}

impl Flusher {
    /// Asks for `context_id`'s response to be resumed at the next flush (after `flush` ran).
    pub fn schedule(&self, context_id: u32, flush: Option<Rc<dyn Flush>>) {
        self.pending.borrow_mut().insert(context_id, flush);
        if self.posted.get() {
            return;
        }
        match self.wake.get() {
            Some(token) if host::enqueue(token) => {
                self.posted.set(true);
                // A watchdog, should the wake-up be lost (Envoy drops it when the root context
                // is gone or busy): the tick flushes and forgets the post.
                self.tick_every(WATCHDOG_MS);
            }
            _ => self.tick_every(1),
        }
    }

    /// Registers this root's wake-up queue (once). Its name must be unique to the VM: Envoy
    /// keeps one queue per (vm_id, name), delivered to the context and thread that registered
    /// it last, and every worker runs its own VM with the same vm_id. Envoy frees queues with
    /// the last VM of their vm_id: a VM keeps one per root it ever had (one per configuration
    /// update), a few hundred bytes each.
    fn register_wake(&self) {
        if self.wake.get().is_some() {
            return;
        }
        // Random per VM: std's hash keys come from WASI random_get.
        let id = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        self.wake.set(host::register_queue(&format!("json2grpc.flush.{id:016x}")));
    }

    /// `proxy_on_queue_ready`: the wake-up posted by [`Flusher::schedule`].
    fn woken(&self, token: u32) -> bool {
        if self.wake.get() != Some(token) {
            return false;
        }
        host::dequeue(token);
        self.posted.set(false);
        self.flush(false);
        true
    }

    /// Whether `context_id` still waits for its resume (its last output is still in Envoy's
    /// buffer, ahead of any newer data).
    pub fn is_pending(&self, context_id: u32) -> bool {
        self.pending.borrow().contains_key(&context_id)
    }

    /// The tick period while no stream waits.
    fn set_idle(&self, ms: u32) {
        self.idle.set(ms);
        if self.pending.borrow().is_empty() {
            self.tick_every(ms);
        }
    }

    fn tick_every(&self, ms: u32) {
        if self.period.get() != ms && host::set_tick_period(ms) {
            self.period.set(ms);
        }
    }

    /// The tick: flushes, and a wake-up still posted is taken as lost (a late one finds
    /// nothing to do).
    fn tick(&self) {
        self.posted.set(false);
        self.flush(true);
    }

    /// Flushes every pending stream. The watchdog tick stays armed after a wake-up's flush (a
    /// busy stream posts again at once; setting a period is a host call and a new Envoy timer):
    /// the tick itself goes idle once nothing waits.
    fn flush(&self, on_tick: bool) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let mut retry = Vec::new();
        for (context_id, flush) in pending {
            // False when the request is gone meanwhile: nothing to resume.
            if !host::set_effective_context(context_id) {
                continue;
            }
            match flush {
                Some(f) if !f.before_resume() => retry.push((context_id, Some(f))),
                _ => {
                    host::resume_response();
                }
            }
        }
        let retrying = !retry.is_empty();
        self.pending.borrow_mut().extend(retry);
        if retrying {
            // Not again at once (it may still be unreadable): on the next tick.
            self.tick_every(1);
        } else if on_tick && self.pending.borrow().is_empty() {
            self.tick_every(self.idle.get());
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        super::logger::sync_level();
        self.flusher.register_wake();
        // Read in pieces: the VM holds the decoded descriptor set, never its base64 text (read
        // whole when it is not plain; the host clamps a read at the end, and `usize::MAX` reads
        // everything).
        let read = |start, len| host::try_buffer(host::Buffer::PluginConfiguration, start, len);
        // The configuration and what the transcoder keeps of it, in slots (crate::alloc).
        let config = match crate::alloc::building(|| Config::from_pieces(plugin_configuration_size, read)) {
            Ok(config) => config,
            Err(e) => {
                // Returning false rejects this configuration: at startup Envoy refuses to start;
                // on an update the previous configuration (still in `self`) keeps serving.
                log::error!("{e}");
                return false;
            }
        };
        let Some(source) = config.descriptor.clone() else {
            return match crate::alloc::building(|| Transcoder::for_serving(config)) {
                Ok(transcoder) => {
                    self.live = None;
                    self.flusher.set_idle(0);
                    self.serve(transcoder);
                    true
                }
                Err(e) => {
                    log::error!("{e}");
                    false
                }
            };
        };
        // Live descriptors: the previous transcoder (if any) serves until the new source's
        // first descriptors arrive, possibly at once (another VM already fetched them).
        log::info!("descriptors: waiting for the first set from the configured source");
        // (Its text names what the VMs share: a configuration with a source has no set.)
        let text = host::buffer(host::Buffer::PluginConfiguration, 0, usize::MAX);
        let mut live = Live::new(config, source, &text);
        if let Some(transcoder) = live.load_published() {
            self.serve(transcoder);
        }
        self.flusher.set_idle(live.tick_ms());
        self.live = Some(live);
        true
    }

    fn on_queue_ready(&mut self, token: u32) {
        self.flusher.woken(token);
    }

    fn on_tick(&mut self) {
        self.flusher.tick();
        let Some(live) = self.live.as_mut() else { return };
        let swapped = live.tick();
        self.flusher.set_idle(live.tick_ms());
        if let Some(transcoder) = swapped {
            self.serve(transcoder);
        }
    }

    fn on_http_call_response(&mut self, token: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(live) = self.live.as_mut() else { return };
        if let Some(transcoder) = live.on_response(token, body_size) {
            self.serve(transcoder);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Box<dyn HttpContext> {
        let loading = match (&self.filter, &self.live) {
            (None, Some(live)) => Some(live.before_load()),
            _ => None,
        };
        Box::new(Http::new(self.filter.clone(), context_id, self.flusher.clone()).loading(loading))
    }
}
