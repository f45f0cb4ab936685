//! The root context: parses the plugin configuration into a [`Transcoder`] once per VM (one VM
//! per worker) and hands it to every request.
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use super::abi::{HttpContext, RootContext};
use super::host;
use super::http::Http;
use super::metrics::Metrics;
use crate::core::transcoder::Transcoder;

/// What a configuration gives every request: the transcoder and its stats.
pub struct Filter {
    pub transcoder: Transcoder,
    pub metrics: Metrics,
    /// Whether the host lets the filter add a body to a request that ended at its headers
    /// (proxy-wasm spec issue #86): unknown until the first bodyless request tries; Envoy 1.40
    /// refuses, and the answer is kept so later requests do not ask again.
    pub adds_bodies_to_headers_only: Cell<Option<bool>>,
}

impl std::ops::Deref for Filter {
    type Target = Transcoder;

    fn deref(&self) -> &Transcoder {
        &self.transcoder
    }
}

#[derive(Default)]
pub struct Root {
    /// `None` until a configuration was accepted: requests then pass through untouched.
    filter: Option<Rc<Filter>>,
    flusher: Rc<Flusher>,
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
    ticking: Cell<bool>,
}

impl Flusher {
    /// Asks for `context_id`'s response to be resumed on the next tick.
    pub fn schedule(&self, context_id: u32) {
        self.pending.borrow_mut().insert(context_id);
        if !self.ticking.get() && host::set_tick_period(1) {
            self.ticking.set(true);
        }
    }

    /// Whether `context_id` still waits for its resume (its last output is still in Envoy's
    /// buffer, ahead of any newer data).
    pub fn is_pending(&self, context_id: u32) -> bool {
        self.pending.borrow().contains(&context_id)
    }

    fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for context_id in pending {
            // False when the request is gone meanwhile: nothing to resume.
            if host::set_effective_context(context_id) {
                host::resume_response();
            }
        }
        // Stop ticking while no stream waits: an idle worker costs nothing.
        if self.pending.borrow().is_empty() && host::set_tick_period(0) {
            self.ticking.set(false);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        super::logger::sync_level();
        // The host clamps the size; it must be read as unsigned (usize::MAX = "everything").
        let config = host::buffer(host::Buffer::PluginConfiguration, 0, usize::MAX);
        match Transcoder::from_json(&config) {
            Ok(transcoder) => {
                for warning in &transcoder.router.warnings {
                    log::warn!("{warning}");
                }
                log::info!(
                    "configured {} service(s), {} method(s)",
                    transcoder.config.services.len(),
                    transcoder.router.methods.len()
                );
                let metrics = Metrics::define();
                self.filter =
                    Some(Rc::new(Filter { transcoder, metrics, adds_bodies_to_headers_only: Cell::new(None) }));
                true
            }
            Err(e) => {
                // Returning false rejects this configuration: at startup Envoy refuses to start;
                // on an update the previous configuration (still in `self`) keeps serving.
                log::error!("{e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.flusher.flush();
    }

    fn create_http_context(&self, context_id: u32) -> Box<dyn HttpContext> {
        Box::new(Http::new(self.filter.clone(), context_id, self.flusher.clone()))
    }
}
