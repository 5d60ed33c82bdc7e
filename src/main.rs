//! hopscope's entry point: parse arguments, wire the layers, map errors to
//! exit codes (2 for bad input, 1 for failures). Nothing else lives here.
#![deny(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use hopscope::bpf::reader::TracerConfig;
use hopscope::cli::{Cli, Cmd, DemoArgs, ExploreArgs, LabAction, LabTrafficArgs, TracerArgs};
use hopscope::correlate::CorrelatorConfig;
use hopscope::filter::{compile_bounded, Scope};
use hopscope::lab::{Lab, TrafficKind, TrafficOpts};
use hopscope::model::ModelConfig;
use hopscope::output::Filter;
use hopscope::trace::{self, TraceOptions};
use hopscope::tui::{self, ExplorerOptions};
use hopscope::UsageError;

/// `--snaplen` when `--pcapng` asks for bytes and the user did not say.
const DEFAULT_PCAPNG_SNAPLEN: u32 = 128;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    hopscope::logging::init();
    match run(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            // Messages quote what users and libpcap wrote, and paths.
            let msg = format!("{e:#}");
            eprintln!("hopscope: error: {}", hopscope::safe_text::shown(&msg));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Tracer settings from the command line. A filter libpcap refuses, or a
/// namespace that does not exist, is a usage error: nothing gets loaded.
fn tracer_options(t: &TracerArgs) -> Result<(TracerConfig, CorrelatorConfig)> {
    let filter = match (&t.filter, &t.flow) {
        (Some(e), _) => compile_bounded(e, false),
        (None, Some(e)) => compile_bounded(e, true),
        (None, None) => Ok(None),
    }
    .map_err(|e| UsageError(e.to_string()))?;
    let scope = Scope::resolve(&t.netns, &t.pid, &t.iface)?;
    let tracer = TracerConfig {
        ring_bytes: t.ring_size,
        wakeup_bytes: u64::from(t.ring_size / 16),
        max_packets: t.max_packets,
        filter,
        scope,
        ..TracerConfig::default()
    };
    let corr = CorrelatorConfig {
        max_packets: t.max_packets as usize,
        max_flows: t.max_flows as usize,
        ..CorrelatorConfig::default()
    };
    Ok((tracer, corr))
}

fn explorer_options(
    t: &TracerArgs,
    record: Option<std::path::PathBuf>,
    duration: Option<Duration>,
) -> Result<ExplorerOptions> {
    let (mut tracer, correlator) = tracer_options(t)?;
    tracer.snaplen = t.snaplen.unwrap_or(0);
    Ok(ExplorerOptions {
        tracer,
        correlator,
        model: ModelConfig {
            max_flows: t.max_flows as usize,
            max_packets: t.max_packets as usize,
            filter: Filter::default(),
        },
        record,
        force: false,
        filter_label: "everything".to_owned(),
        duration: duration.filter(|d| !d.is_zero()),
    })
}

fn run(cli: Cli) -> Result<i32> {
    let Some(command) = cli.command else {
        let ExploreArgs {
            record,
            duration,
            force,
            tracer,
        } = cli.explore;
        let mut opts = explorer_options(&tracer, record, duration)?;
        opts.force = force;
        return tui::run_live(opts);
    };
    match command {
        Cmd::Replay(r) if r.pcapng.is_some() => trace::replay_to_pcapng(
            &r.file,
            r.pcapng.as_deref().unwrap_or(std::path::Path::new("")),
            r.force,
            CorrelatorConfig {
                max_packets: r.max_packets as usize,
                max_flows: r.max_flows as usize,
                ..CorrelatorConfig::default()
            },
        ),
        Cmd::Replay(r) => tui::run_replay(
            &r.file,
            ModelConfig {
                max_flows: r.max_flows as usize,
                max_packets: r.max_packets as usize,
                filter: Filter::default(),
            },
            CorrelatorConfig {
                max_packets: r.max_packets as usize,
                max_flows: r.max_flows as usize,
                ..CorrelatorConfig::default()
            },
        ),
        Cmd::Trace(a) => {
            let (mut tracer, correlator) = tracer_options(&a.tracer)?;
            tracer.drop_stack = a.drop_stack;
            tracer.snaplen = match (a.tracer.snaplen, &a.pcapng) {
                (Some(0), Some(_)) => {
                    return Err(UsageError(
                        "--pcapng writes packet bytes: --snaplen must be 1 or more".into(),
                    )
                    .into())
                }
                (Some(n), _) => n,
                (None, Some(_)) => DEFAULT_PCAPNG_SNAPLEN,
                (None, None) => 0,
            };
            trace::run(TraceOptions {
                json: a.json,
                all_hooks: a.all_hooks,
                duration: a.duration,
                packets: a.packets,
                command: a.command,
                tracer,
                correlator,
                only_netns: Vec::new(),
                record: a.record,
                netns_label: None,
                inodes: a.inodes,
                dot: a.dot,
                output: a.output,
                force: a.force,
                pcapng: a.pcapng,
            })
        }
        Cmd::Lab { action } => lab(action),
        Cmd::Demo(d) => demo(d),
    }
}

fn new_lab(prefix: &str) -> Result<Lab> {
    Lab::new(prefix).map_err(|e| UsageError(format!("{e:#}")).into())
}

fn traffic_opts(a: &LabTrafficArgs) -> Result<TrafficOpts> {
    let kinds = a
        .kinds
        .iter()
        .map(|k| {
            k.parse::<TrafficKind>()
                .map_err(|e| UsageError(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrafficOpts {
        rounds: a.rounds,
        duration: a.duration,
        interval: Duration::from_millis(a.interval_ms),
        kinds,
    })
}

fn lab(action: LabAction) -> Result<i32> {
    hopscope::bpf::probe::check_root_for("lab")?;
    match action {
        LabAction::Up(a) => {
            let lab = new_lab(&a.prefix)?;
            lab.up()?;
            print!("{}", lab.status()?);
        }
        LabAction::Down(a) => new_lab(&a.prefix)?.down()?,
        LabAction::Status(a) => print!("{}", new_lab(&a.prefix)?.status()?),
        LabAction::Traffic(a) => {
            let lab = new_lab(&a.lab.prefix)?;
            let opts = traffic_opts(&a)?;
            if !lab.exists() {
                return Err(UsageError(format!(
                    "no lab with prefix {} (run: hopscope lab up --prefix {})",
                    lab.prefix(),
                    lab.prefix()
                ))
                .into());
            }
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ] {
                signal_hook::flag::register(sig, stop.clone())
                    .context("installing signal handlers")?;
            }
            let report = lab.traffic(&opts, &stop)?;
            println!("{report}");
        }
    }
    Ok(0)
}

/// The demo: a lab, its traffic in the background, and a trace of it.
fn demo(d: DemoArgs) -> Result<i32> {
    hopscope::bpf::probe::check_can_trace()?;
    let lab = new_lab(&d.lab.prefix)?;
    eprintln!("hopscope demo: building lab {} ...", lab.prefix());
    lab.up()?;
    let guard = scopeguard(lab.clone(), d.keep);
    eprint!("{}", lab.status()?);
    let stop = Arc::new(AtomicBool::new(false));
    let traffic_lab = lab.clone();
    let traffic_stop = stop.clone();
    let traffic = std::thread::spawn(move || {
        traffic_lab.traffic(
            &TrafficOpts {
                interval: Duration::from_millis(1000),
                ..TrafficOpts::default()
            },
            &traffic_stop,
        )
    });
    let tracer_args = TracerArgs {
        ring_size: 16 << 20,
        max_packets: 65_536,
        max_flows: 16_384,
        filter: None,
        flow: None,
        netns: Vec::new(),
        iface: Vec::new(),
        pid: Vec::new(),
        snaplen: None,
    };
    let inodes: Vec<u32> = lab
        .namespaces()
        .iter()
        .filter_map(|n| lab.netns_inode(n).ok())
        .map(|i| i as u32)
        .collect();
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !(d.json || d.text || terminal) {
        eprintln!("hopscope demo: no terminal for the explorer; printing lines instead (--text)");
    }
    let res = if d.json || d.text || !terminal {
        eprintln!("hopscope demo: tracing lab traffic (Ctrl-C to stop) ...");
        let (tracer, correlator) = tracer_options(&tracer_args)?;
        let duration = d.duration.unwrap_or(Duration::from_secs(10));
        trace::run(TraceOptions {
            json: d.json,
            all_hooks: false,
            duration: (!duration.is_zero()).then_some(duration),
            packets: None,
            command: Vec::new(),
            tracer,
            correlator,
            only_netns: inodes,
            record: d.record,
            netns_label: Some(format!("lab namespaces {}-*", lab.prefix())),
            inodes: false,
            dot: None,
            output: None,
            force: d.force,
            pcapng: None,
        })
    } else {
        let mut opts = explorer_options(&tracer_args, d.record, d.duration)?;
        opts.force = d.force;
        opts.model.filter = Filter {
            only_owned: false,
            netns: inodes,
            kernel_filtered: false,
        };
        opts.filter_label = format!("lab namespaces {}-*", lab.prefix());
        tui::run_live(opts)
    };
    stop.store(true, Ordering::SeqCst);
    match traffic.join() {
        Ok(Ok(report)) => eprintln!("hopscope demo: traffic: {report}"),
        Ok(Err(e)) => eprintln!("hopscope demo: traffic failed: {e:#}"),
        Err(_) => eprintln!("hopscope demo: traffic thread panicked"),
    }
    drop(guard);
    res
}

/// Removes the lab when dropped, unless asked to keep it.
struct LabCleanup(Option<Lab>);

fn scopeguard(lab: Lab, keep: bool) -> LabCleanup {
    LabCleanup((!keep).then_some(lab))
}

impl Drop for LabCleanup {
    fn drop(&mut self) {
        if let Some(lab) = self.0.take() {
            match lab.down() {
                Ok(()) => eprintln!("hopscope demo: lab {} removed", lab.prefix()),
                Err(e) => eprintln!("hopscope demo: removing lab {} failed: {e:#}", lab.prefix()),
            }
        }
    }
}
