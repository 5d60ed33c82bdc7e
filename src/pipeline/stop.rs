//! When a run stops: SIGINT, SIGTERM and SIGHUP each mean "detach and
//! quit", for every runner.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

/// The last of SIGINT, SIGTERM or SIGHUP received: each means "detach and
/// quit".
#[derive(Clone)]
pub struct QuitSignal(Arc<AtomicUsize>);

impl QuitSignal {
    /// The signal's number, once one came.
    pub fn received(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n as i32),
        }
    }
}

/// Installs the handlers of SIGINT, SIGTERM and SIGHUP.
pub fn quit_signals() -> Result<QuitSignal> {
    let got = Arc::new(AtomicUsize::new(0));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(sig, got.clone(), sig as usize)
            .context("installing signal handlers")?;
    }
    Ok(QuitSignal(got))
}
