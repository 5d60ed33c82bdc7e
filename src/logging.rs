//! A minimal logger for `log` records, enabled by `HOPSCOPE_LOG` (error,
//! warn, info, debug, trace). libbpf's own messages are forwarded into it
//! at debug level, so they never reach the screen unless asked for.
//!
//! Records go to stderr, except while the explorer owns the terminal
//! ([`quiet_terminal`]): then they go to `HOPSCOPE_LOG_FILE` if set, and
//! nowhere otherwise, so nothing is painted over the screen.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

static QUIET: AtomicBool = AtomicBool::new(false);
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// From now on, never write log records to the terminal.
pub fn quiet_terminal() {
    if let Some(path) = std::env::var_os("HOPSCOPE_LOG_FILE") {
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            if let Ok(mut g) = LOG_FILE.lock() {
                *g = Some(f);
            }
        }
    }
    QUIET.store(true, Ordering::SeqCst);
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        if !QUIET.load(Ordering::Relaxed) {
            // Records quote names and messages from outside.
            let msg = r.args().to_string();
            eprintln!("hopscope: {}: {}", r.level(), crate::safe_text::shown(&msg));
        } else if let Ok(mut g) = LOG_FILE.lock() {
            if let Some(f) = g.as_mut() {
                let _ = writeln!(f, "hopscope: {}: {}", r.level(), r.args());
            }
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
