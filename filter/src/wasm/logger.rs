//! A `log` backend on `proxy_log` that never panics (the SDK's unwraps the host status).
use super::host;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        host::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Installs the logger (once per VM). No host call here: Envoy forbids them during
/// `_initialize` ("restricted_callback" fails the VM).
pub fn install() {
    // Err only if a logger is already set: then keep it.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Follows the host's log level, so debug messages are not even formatted when Envoy logs at
/// info. Called from `on_configure`.
pub fn sync_level() {
    let filter = match host::log_level() {
        Some(0) => log::LevelFilter::Trace,
        Some(1) => log::LevelFilter::Debug,
        Some(2) | None => log::LevelFilter::Info,
        Some(3) => log::LevelFilter::Warn,
        Some(4) => log::LevelFilter::Error,
        Some(_) => log::LevelFilter::Off,
    };
    log::set_max_level(filter);
}
