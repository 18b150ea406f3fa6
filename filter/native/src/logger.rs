//! The `log` crate's messages (the core logs through it) to Envoy's log, `dynamic_modules` logger.

use crate::ffi::{self, Level};

struct EnvoyLogger;

static LOGGER: EnvoyLogger = EnvoyLogger;

/// Installs the logger once per process (the first `on_program_init`).
pub(crate) fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

fn level(l: log::Level) -> Level {
    match l {
        log::Level::Trace => Level::Trace,
        log::Level::Debug => Level::Debug,
        log::Level::Info => Level::Info,
        log::Level::Warn => Level::Warn,
        log::Level::Error => Level::Error,
    }
}

impl log::Log for EnvoyLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        ffi::log_enabled(level(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let l = level(record.level());
        // Formatting only when Envoy shows the level (debug lines on every refusal otherwise cost).
        if ffi::log_enabled(l) {
            ffi::log(l, &record.args().to_string());
        }
    }

    fn flush(&self) {}
}
