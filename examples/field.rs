//! Holds one field topology of `tests/common/field.rs` up for manual runs
//! (hopscope against the setups people run), with its servers serving, then
//! removes it: on Enter, end of input, SIGINT/SIGTERM/SIGHUP, or after the
//! given number of seconds (600 by default). Root only.
//!
//! ```sh
//! sudo target/release/examples/field published [SECONDS]
//! ```
//! Topologies: published, vxlan, vxlan8472, macvlan, gso-off, gso-on,
//! gso-off-bridge, bridge, v6, busy. The prefix is `hfx` (`HF_PREFIX`
//! changes it); names and addresses are printed.

#[path = "../tests/common/field.rs"]
mod field;

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use field::*;

const USAGE: &str = "usage: field published|vxlan|vxlan8472|macvlan|gso-off|gso-on|gso-off-bridge|bridge|v6|busy [SECONDS]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let secs: u64 = match args.get(1).map(|s| s.parse()) {
        None => 600,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("field: run as root");
        std::process::exit(2);
    }
    let prefix = std::env::var("HF_PREFIX").unwrap_or_else(|_| "hfx".to_owned());
    let held: Box<dyn std::any::Any> = match which.as_str() {
        "published" => Box::new(PublishedPort::build(&prefix)),
        "vxlan" => Box::new(VxlanOverlay::build(&prefix, VxlanOpts::default())),
        "vxlan8472" => Box::new(VxlanOverlay::build(
            &prefix,
            VxlanOpts {
                port: 8472,
                fdb: true,
            },
        )),
        "macvlan" => Box::new(Macvlan::build(&prefix)),
        "gso-off" => Box::new(Gso::build(&prefix, GsoOpts::default())),
        "gso-on" => Box::new(Gso::build(
            &prefix,
            GsoOpts {
                offload: true,
                bridge: false,
            },
        )),
        "gso-off-bridge" => Box::new(Gso::build(
            &prefix,
            GsoOpts {
                offload: false,
                bridge: true,
            },
        )),
        "bridge" => Box::new(BridgeTap::build(&prefix)),
        "v6" => Box::new(V6Router::build(&prefix)),
        "busy" => {
            let mut b = Busy::build(&prefix);
            b.start(500, "0.01");
            Box::new(b)
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let listing = run("ip", &["netns", "list"], SETUP).stdout;
    for line in listing
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
    {
        let name = line.split_whitespace().next().unwrap_or("");
        let ino = std::fs::metadata(format!("/run/netns/{name}"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap_or(0);
        println!("{name} {ino}");
    }
    println!("field: {which} is up; Enter, ^C or {secs} s tears it down");

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone()).expect("signal handler");
    }
    let eof = Arc::new(AtomicBool::new(false));
    let e = eof.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        e.store(true, Ordering::SeqCst);
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !stop.load(Ordering::SeqCst) && !eof.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    println!("field: {which} removed");
}
