//! The root context: parses the plugin configuration into a [`Transcoder`] once per VM (one VM
//! per worker) and hands it to every request.
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host;
use super::http::Http;
use crate::core::transcoder::Transcoder;

#[derive(Default)]
pub struct Root {
    /// `None` until a configuration was accepted: requests then pass through untouched.
    transcoder: Option<Rc<Transcoder>>,
}

impl Context for Root {}

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
                self.transcoder = Some(Rc::new(transcoder));
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.transcoder.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
