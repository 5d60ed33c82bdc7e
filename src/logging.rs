//! A minimal stderr logger for `log` records, enabled by `HOPSCOPE_LOG`
//! (error, warn, info, debug, trace). libbpf's own messages are forwarded
//! into it at debug level, so they never reach the screen unless asked for.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("hopscope: {}: {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    let msg = msg.trim_end();
    match level {
        libbpf_rs::PrintLevel::Warn => log::warn!("libbpf: {msg}"),
        libbpf_rs::PrintLevel::Info => log::info!("libbpf: {msg}"),
        libbpf_rs::PrintLevel::Debug => log::debug!("libbpf: {msg}"),
    }
}

/// Installs the logger and routes libbpf's prints into it.
pub fn init() {
    let level = match std::env::var("HOPSCOPE_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "trace" => LevelFilter::Trace,
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warn" => LevelFilter::Warn,
        "error" => LevelFilter::Error,
        _ => LevelFilter::Off,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
}
