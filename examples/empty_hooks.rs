//! The benchmark's control (scripts/bench.sh): attaches a program that
//! returns at once (bpf/empty_hooks.bpf.c) to each tracepoint hopscope's
//! programs use, and holds them until SIGINT or SIGTERM. Throughput with
//! these attached is the floor for any tracer built on the same hooks: the
//! cost of the tracepoints' calls into BPF, before any work is done.
//!
//! ```text
//! sudo target/release/examples/empty_hooks
//! ```

use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

mod skel {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        non_camel_case_types,
        non_upper_case_globals,
        dead_code,
        unused_imports,
        unsafe_code
    )]
    include!(concat!(env!("OUT_DIR"), "/empty_hooks.skel.rs"));
}

fn run() -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let mut storage = MaybeUninit::uninit();
    let open = skel::EmptyHooksSkelBuilder::default().open(&mut storage)?;
    let skel = open.load()?;
    let mut links = Vec::new();
    for prog in skel.object().progs_mut() {
        match prog.attach() {
            Ok(link) => links.push(link),
            Err(e) => eprintln!(
                "empty_hooks: {} not attached: {e}",
                prog.name().to_string_lossy()
            ),
        }
    }
    eprintln!(
        "empty_hooks: {} programs attached; SIGINT or SIGTERM detaches them",
        links.len()
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("empty_hooks: {e:#}");
            ExitCode::FAILURE
        }
    }
}
