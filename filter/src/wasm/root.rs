//! The root context: parses the plugin configuration into a [`Transcoder`] once per VM (one VM
//! per worker) and hands it to every request.
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashSet;
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

impl Root {
    /// The transcoder serving now (tests look at what it keeps).
    #[cfg(test)]
    pub(crate) fn transcoder(&self) -> Option<&Transcoder> {
        self.filter.as_ref().map(|f| &f.transcoder)
    }

    fn serve(&mut self, mut transcoder: Transcoder) {
        transcoder.release_build_inputs();
        for warning in &transcoder.router.warnings {
            log::warn!("{warning}");
        }
        log::info!(
            "configured {} service(s), {} method(s)",
            transcoder.config.services.len(),
            transcoder.router.methods.len()
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

/// Server streams whose converted chunks wait in Envoy's buffer for a resume.
///
/// A stream's body callback returns Pause so that Envoy keeps a buffer this filter can still
/// write to when the trailers arrive (to close the JSON array, or report an error). Resuming
/// from inside the callback does not flush (Envoy runs the resume before it has processed the
/// Pause), so the root resumes those streams on its next tick, 1 ms later.
#[derive(Default)]
pub struct Flusher {
    /// A set: a worker can hold thousands of streams, and every body chunk asks.
    pending: RefCell<HashSet<u32>>,
    /// The tick period set now (ms, 0: none), and the one when no stream waits (live
    /// descriptors poll on it; 0 otherwise: an idle worker costs nothing).
    period: Cell<u32>,
    idle: Cell<u32>,
}

impl Flusher {
    /// Asks for `context_id`'s response to be resumed on the next tick.
    pub fn schedule(&self, context_id: u32) {
        self.pending.borrow_mut().insert(context_id);
        self.tick_every(1);
    }

    /// Whether `context_id` still waits for its resume (its last output is still in Envoy's
    /// buffer, ahead of any newer data).
    pub fn is_pending(&self, context_id: u32) -> bool {
        self.pending.borrow().contains(&context_id)
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

    fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for context_id in pending {
            // False when the request is gone meanwhile: nothing to resume.
            if host::set_effective_context(context_id) {
                host::resume_response();
            }
        }
        if self.pending.borrow().is_empty() {
            self.tick_every(self.idle.get());
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        super::logger::sync_level();
        // The host clamps the size; it must be read as unsigned (usize::MAX = "everything").
        let text = host::buffer(host::Buffer::PluginConfiguration, 0, usize::MAX);
        let config = match Config::from_json(&text) {
            Ok(config) => config,
            Err(e) => {
                // Returning false rejects this configuration: at startup Envoy refuses to start;
                // on an update the previous configuration (still in `self`) keeps serving.
                log::error!("{e}");
                return false;
            }
        };
        let Some(source) = config.descriptor.clone() else {
            // The configuration's text (a descriptor set in base64) is not needed any more:
            // freed before the build, so the build can reuse its memory (a VM's linear memory
            // grows to its peak and never shrinks).
            drop(text);
            return match Transcoder::new(config) {
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
        let mut live = Live::new(config, source, &text);
        if let Some(transcoder) = live.load_published() {
            self.serve(transcoder);
        }
        self.flusher.set_idle(live.tick_ms());
        self.live = Some(live);
        true
    }

    fn on_tick(&mut self) {
        self.flusher.flush();
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
