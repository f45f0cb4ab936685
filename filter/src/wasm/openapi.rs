//! The OpenAPI document at `json2grpc.openapi.path`: a GET (or HEAD) of that path is answered
//! by the filter itself, from the transcoder serving now, so it follows a live-descriptor swap.
//! It is made on the first such request and kept with that transcoder (one per VM and
//! configuration), bounded by `json2grpc.openapi.max_bytes`.
use std::rc::Rc;

use super::root::Filter;
use crate::core::error::Error;
use crate::core::openapi;

/// The document (or why it cannot be served) when the request asks for it; `None` otherwise.
pub fn answer(filter: &Filter, method: &str, path: &str) -> Option<Result<Rc<[u8]>, Error>> {
    let wanted = filter.config.openapi.path.as_deref()?;
    let path_only = path.split(['?', '#']).next().unwrap_or(path);
    if path_only != wanted || !matches!(method, "GET" | "HEAD") {
        return None;
    }
    let document = filter.openapi.get_or_init(|| {
        let max = usize::try_from(filter.config.openapi.max_bytes).unwrap_or(usize::MAX);
        let document: Result<Rc<[u8]>, Error> = openapi::render(&filter.transcoder, max).map(Rc::from);
        match &document {
            Ok(text) => log::info!("OpenAPI document made: {} bytes", text.len()),
            Err(e) => log::warn!("OpenAPI document: {e}"),
        }
        document
    });
    Some(document.clone())
}
