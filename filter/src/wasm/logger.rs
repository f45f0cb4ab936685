//! A `log` backend on `proxy_log` that never panics (the SDK's unwraps the host status).
use std::fmt;

use super::host;

/// The longest line the filter logs, in bytes: a message may quote what a descriptor set
/// holds (a type's name may be as long as the set: 16 MiB from a live source), and Envoy
/// writes every line whole, from every VM.
const MAX_LINE: usize = 4096;

/// `args` formatted up to [`MAX_LINE`] bytes (cut at a character boundary), then how many
/// bytes were left out; what is left out is counted, never kept.
fn capped(args: &fmt::Arguments<'_>) -> String {
    struct Capped {
        out: String,
        left_out: usize,
    }
    impl fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = if self.left_out > 0 { 0 } else { MAX_LINE.saturating_sub(self.out.len()) };
            let mut cut = room.min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.push_str(s.get(..cut).unwrap_or_default());
            self.left_out += s.len() - cut;
            Ok(())
        }
    }
    let mut line = Capped { out: String::new(), left_out: 0 };
    let _ = fmt::write(&mut line, *args);
    if line.left_out > 0 {
        line.out.push_str(&format!("… ({} more bytes)", line.left_out));
    }
    line.out
}

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
        host::log(level, &capped(record.args()));
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

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn a_line_is_cut_at_a_character_boundary_and_says_how_much_was_left_out() {
        assert_eq!(capped(&format_args!("short {}", 1)), "short 1");
        // A name as long as a set, quoted in an error: 4,096 bytes kept, the rest counted.
        let name = "é".repeat(1 << 20);
        let line = capped(&format_args!("invalid: \"{name}\" is defined more than once"));
        let kept = line.split('…').next().unwrap_or_default();
        assert!(kept.len() <= MAX_LINE && kept.len() > MAX_LINE - 2, "{}", kept.len());
        let total = "invalid: \"".len() + name.len() + "\" is defined more than once".len();
        assert!(line.ends_with(&format!("… ({} more bytes)", total - kept.len())), "{}", &line[line.len() - 40..]);
    }
}
