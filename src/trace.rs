//! `hopscope trace`: load, attach, correlate and print until told to stop.
//!
//! The main thread waits on the reader's channel for at most `GC_PERIOD` and
//! checks its stop conditions between batches: a signal (SIGINT, SIGTERM,
//! SIGHUP), `--duration`, `--packets`, or the end of `-- COMMAND` plus a
//! short grace period for replies still in flight. Stopping always goes
//! through the reader, which detaches every program before it drains the
//! ring and reports the final counters.

use std::io;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::RecvTimeoutError;
use serde::Serialize;

use crate::bpf::probe;
use crate::bpf::reader::{KernelStats, Reader, ReaderMsg, ReaderStats, TracerConfig};
use crate::cgroup::CommandCgroup;
use crate::correlate::{
    Annotation, Correlator, CorrelatorConfig, CorrelatorStats, Flow, HopContext, Packet, Sink,
};
use crate::event::record::{Recorder, RecordingInfo};
use crate::event::HopEvent;
use crate::output::json::JsonSink;
use crate::output::text::TextSink;
use crate::output::{DropContext, Filter};
use crate::safe_text::Shown;
use crate::topology::graph::HopGraph;
use crate::topology::resolver::Topology;
use crate::UsageError;

/// Time left for replies after `-- COMMAND` exits.
const COMMAND_GRACE: Duration = Duration::from_millis(300);
/// Time `-- COMMAND` has to end after SIGTERM before it gets SIGKILL.
const COMMAND_TERM_GRACE: Duration = Duration::from_millis(1000);
/// How often idle packets are flushed.
const GC_PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    pub json: bool,
    pub all_hooks: bool,
    pub duration: Option<Duration>,
    pub packets: Option<u64>,
    pub command: Vec<String>,
    pub tracer: TracerConfig,
    pub correlator: CorrelatorConfig,
    /// Print only hops in these netns inodes (empty: all).
    pub only_netns: Vec<u32>,
    /// Save the event stream here too.
    pub record: Option<std::path::PathBuf>,
    /// How `only_netns` is described in a recording (e.g. the lab's name).
    pub netns_label: Option<String>,
    /// Inodes and ifindexes only: no names, no rtnetlink.
    pub inodes: bool,
    /// Write the hop graph of what was printed here, as Graphviz DOT.
    pub dot: Option<std::path::PathBuf>,
    /// Write the trace here instead of stdout (`-o`).
    pub output: Option<std::path::PathBuf>,
    /// Overwrite existing output files (never through a link).
    pub force: bool,
}

/// The last JSON line, and the numbers behind the text summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Events the kernel programs tried to emit.
    pub emitted: u64,
    /// Events read from the ring buffer.
    pub received: u64,
    /// Events lost because the ring buffer was full (emitted = received + lost).
    pub lost: u64,
    /// Received events that did not decode.
    pub decode_errors: u64,
    /// Received events dropped because processing lagged.
    pub channel_dropped: u64,
    pub packets: u64,
    pub packets_printed: u64,
    pub flows: u64,
    pub copies: u64,
    pub packets_unfinished: u64,
    pub reused_skb_addresses: u64,
    /// First sightings the kernel filter rejected (0 without a filter).
    pub filtered: u64,
    /// The filter and scope in force ("`icmp` · netns hs-c1"), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub degraded_hooks: Vec<String>,
    pub duration_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_exit: Option<i32>,
}

/// Where the trace goes: stdout or the `-o` file, buffered.
type OutWriter = io::BufWriter<Box<dyn io::Write + Send>>;

enum Out {
    Text(TextSink<OutWriter>),
    Json(JsonSink<OutWriter>),
}

impl Out {
    fn printed(&self) -> u64 {
        match self {
            Out::Text(s) => s.printed,
            Out::Json(s) => s.printed,
        }
    }
    /// The first write error; printing stopped there.
    fn error(&self) -> Option<&io::Error> {
        match self {
            Out::Text(s) => s.error.as_ref(),
            Out::Json(s) => s.error.as_ref(),
        }
    }
    fn flush(&mut self) {
        match self {
            Out::Text(s) => s.flush(),
            Out::Json(s) => s.flush(),
        }
    }
    /// Text blocks whose reorder window passed go out (`u64::MAX`: all).
    fn release(&mut self, now: u64) {
        if let Out::Text(s) = self {
            s.release(now);
        }
    }
    fn drops_mut(&mut self) -> &mut DropContext {
        match self {
            Out::Text(s) => s.drops_mut(),
            Out::Json(s) => s.drops_mut(),
        }
    }
    fn drops(&self) -> &DropContext {
        match self {
            Out::Text(s) => s.drops(),
            Out::Json(s) => s.drops(),
        }
    }
    fn topology(&self) -> Option<&Topology> {
        match self {
            Out::Text(s) => s.topology(),
            Out::Json(s) => s.topology(),
        }
    }
}

/// The printer, plus the hop graph of what it printed (`--dot`).
struct TraceSink {
    out: Out,
    filter: Filter,
    graph: Option<HopGraph>,
}

impl Sink for TraceSink {
    fn hop(&mut self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) {
        match &mut self.out {
            Out::Text(s) => s.hop(ev, ctx, flow),
            Out::Json(s) => s.hop(ev, ctx, flow),
        }
    }

    fn annotation(&mut self, ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) {
        match &mut self.out {
            Out::Text(s) => s.annotation(ev, at, flow),
            Out::Json(s) => s.annotation(ev, at, flow),
        }
    }

    fn packet_done(&mut self, p: &Packet, flow: Option<&Flow>) {
        match &mut self.out {
            Out::Text(s) => s.packet_done(p, flow),
            Out::Json(s) => s.packet_done(p, flow),
        }
        if let Some(g) = self.graph.as_mut() {
            if self.filter.packet(p, flow) {
                g.add(p);
            }
        }
    }
}

/// Writes the graph with what the topology learned while printing (every
/// link of every namespace seen, so masters and veth peers are in), or
/// bare with `--inodes`, into the file created when the run started.
fn write_dot_file(
    path: &std::path::Path,
    file: std::fs::File,
    g: &HopGraph,
    topo: Option<&Topology>,
) -> Result<()> {
    let mut buf = Vec::new();
    let empty = Topology::new();
    crate::topology::dot::write_dot(g, topo.unwrap_or(&empty), &mut buf)?;
    let mut file = file;
    io::Write::write_all(&mut file, &buf)
        .with_context(|| format!("writing {}", Shown(&path.to_string_lossy())))?;
    Ok(())
}

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

/// Ends `-- COMMAND` after hopscope was told to quit: SIGTERM to every
/// process of its cgroup, SIGKILL to what is left after
/// [`COMMAND_TERM_GRACE`] (also to descendants that outlive the command
/// itself). Returns its exit status.
fn end_command(child: &mut std::process::Child, cgroup: &CommandCgroup) -> Option<i32> {
    cgroup.signal_all(nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + COMMAND_TERM_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                cgroup.signal_all(nix::sys::signal::Signal::SIGKILL);
                return Some(exit_code(st));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    cgroup.signal_all(nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    child.wait().ok().map(exit_code)
}

/// CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// What the kernel was told to follow, for people: the filter and the
/// scope ("`icmp` · netns hs-c1"), or None for everything.
pub fn kernel_scope_label(tracer: &TracerConfig) -> Option<String> {
    let parts: Vec<String> = tracer
        .filter
        .as_ref()
        .map(crate::filter::PacketFilter::label)
        .into_iter()
        .chain(tracer.scope.label())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// Runs the trace; returns the process exit code.
pub fn run(opts: TraceOptions) -> Result<i32> {
    probe::check_can_trace()?;
    let term = quit_signals()?;

    // Every output file exists (safely created) before anything is loaded.
    let record_file = opts
        .record
        .as_deref()
        .map(|p| crate::outfile::create(p, opts.force, "recording"))
        .transpose()
        .map_err(UsageError::from)?;
    let dot_file = opts
        .dot
        .as_deref()
        .map(|p| crate::outfile::create(p, opts.force, "DOT graph"))
        .transpose()
        .map_err(UsageError::from)?;
    let dest: Box<dyn io::Write + Send> = match &opts.output {
        Some(p) => Box::new(
            crate::outfile::create(p, opts.force, "trace output").map_err(UsageError::from)?,
        ),
        None => Box::new(io::stdout()),
    };
    let dest_name = opts.output.as_ref().map_or_else(
        || "stdout".to_owned(),
        |p| Shown(&p.to_string_lossy()).to_string(),
    );

    let cgroup = if opts.command.is_empty() {
        None
    } else {
        Some(CommandCgroup::create()?)
    };
    let mut ccfg = opts.correlator;
    ccfg.owner_cgroup = cgroup.as_ref().map_or(0, CommandCgroup::id);
    let filter = Filter {
        only_owned: cgroup.is_some(),
        netns: opts.only_netns.clone(),
        kernel_filtered: opts.tracer.filter.is_some(),
    };

    let mut recorder = match record_file {
        Some(file) => {
            let mut r = Recorder::new(io::BufWriter::new(file), &RecordingInfo::now())
                .map_err(|e| UsageError(format!("cannot record: {e}")))?;
            // A replay shows what this run printed.
            let label = match (&cgroup, &opts.netns_label) {
                (Some(_), _) => format!("flows of `{}`", opts.command.join(" ")),
                (None, Some(l)) => l.clone(),
                (None, None) if !opts.only_netns.is_empty() => {
                    format!("{} namespaces", opts.only_netns.len())
                }
                (None, None) => {
                    kernel_scope_label(&opts.tracer).unwrap_or_else(|| "everything".to_owned())
                }
            };
            r.scope(&opts.only_netns, ccfg.owner_cgroup, &label)
                .context("writing the recording")?;
            // Replays name drop reasons with the table of this kernel.
            if let Ok(reasons) = crate::event::drop_reason::DropReasons::from_kernel() {
                r.drop_reasons(&reasons.pairs())
                    .context("writing the recording")?;
            }
            Some(r)
        }
        None => None,
    };
    let started = Instant::now();
    let mut reader = Reader::spawn(opts.tracer.clone()).context("starting the reader thread")?;
    let degraded = match reader.rx.recv_timeout(crate::bpf::reader::READY_TIMEOUT) {
        Ok(ReaderMsg::Ready { degraded }) => degraded,
        Ok(ReaderMsg::Failed(e)) => anyhow::bail!("{e}"),
        Ok(_) | Err(_) => anyhow::bail!("the BPF reader did not start"),
    };
    for d in &degraded {
        eprintln!(
            "hopscope: hook {} unavailable, continuing without it: {}",
            d.hook.name(),
            Shown(&d.error.to_string())
        );
    }

    let has_command = !opts.command.is_empty();
    let mut child = match (&cgroup, opts.command.split_first()) {
        (Some(cg), Some((prog, args))) => {
            let mut cmd = Command::new(prog);
            // The command's output never mixes into the trace.
            cmd.args(args).stdout(io::stderr()).stderr(io::stderr());
            Some(
                cg.spawn(&mut cmd)
                    .with_context(|| format!("running {prog}"))?,
            )
        }
        _ => None,
    };

    let stdout: OutWriter = io::BufWriter::with_capacity(64 * 1024, dest);
    let topology = (!opts.inodes).then(Topology::new);
    let drops = DropContext::from_kernel();
    let mut corr = Correlator::new(ccfg);
    corr.set_drop_reasons(drops.reasons().clone());
    corr.set_scope(
        opts.tracer.scope.inodes(),
        opts.tracer.scope.ifnames.clone(),
    );
    let out = match (opts.json, topology) {
        (true, Some(t)) => Out::Json(
            JsonSink::new(stdout, filter.clone())
                .with_topology(t)
                .with_drops(drops),
        ),
        (true, None) => Out::Json(JsonSink::new(stdout, filter.clone()).with_drops(drops)),
        (false, Some(t)) => Out::Text(
            TextSink::new(stdout, opts.all_hooks, filter.clone())
                .with_topology(t)
                .with_drops(drops),
        ),
        (false, None) => {
            Out::Text(TextSink::new(stdout, opts.all_hooks, filter.clone()).with_drops(drops))
        }
    };
    let mut sink = TraceSink {
        out,
        filter,
        graph: opts.dot.as_ref().map(|_| HopGraph::default()),
    };
    let mut last_gc = Instant::now();
    let mut child_done: Option<(Instant, i32)> = None;
    let mut final_stats: Option<(KernelStats, ReaderStats)> = None;
    let mut stopping = false;
    let mut live_stats = (KernelStats::default(), ReaderStats::default());
    let mut written = RecordedTopology::default();

    loop {
        // At most GC_PERIOD between rounds: few wakeups when idle.
        match reader.rx.recv_timeout(GC_PERIOD) {
            Ok(ReaderMsg::Events(batch)) => {
                for ev in &batch {
                    if let Some(r) = recorder.as_mut() {
                        r.event(ev).context("writing the recording")?;
                    }
                    corr.on_event(ev, &mut sink);
                }
                reader.recycle(batch);
            }
            Ok(ReaderMsg::Done { kernel, reader: r }) => {
                final_stats = Some((kernel, r));
                break;
            }
            Ok(ReaderMsg::Failed(e)) => anyhow::bail!("{e}"),
            Ok(ReaderMsg::Stats { kernel, reader: r }) => live_stats = (kernel, r),
            Ok(ReaderMsg::Ready { .. } | ReaderMsg::Filter(_)) => {}
            Ok(ReaderMsg::Stacks(stacks)) => sink.out.drops_mut().add_stacks(stacks),
            Err(RecvTimeoutError::Timeout) => sink.out.flush(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_gc.elapsed() >= GC_PERIOD {
            last_gc = Instant::now();
            let now = monotonic_ns();
            corr.gc(now, &mut sink);
            sink.out.release(now);
            // A steady trickle never lets the receive time out.
            sink.out.flush();
            if let Some(r) = recorder.as_mut() {
                record_tick(
                    r,
                    now,
                    &live_stats.0,
                    &live_stats.1,
                    sink.out.topology(),
                    sink.out.drops(),
                    &mut written,
                )
                .context("writing the recording")?;
            }
        }
        if stopping {
            continue;
        }
        if let (Some(c), None) = (child.as_mut(), child_done) {
            if let Ok(Some(st)) = c.try_wait() {
                child_done = Some((Instant::now(), exit_code(st)));
            }
        }
        let done = term.received().is_some()
            || sink.out.error().is_some()
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
            || opts.packets.is_some_and(|n| sink.out.printed() >= n)
            || child_done.is_some_and(|(t, _)| t.elapsed() >= COMMAND_GRACE);
        if done {
            stopping = true;
            reader.stop();
            // The command ends while the programs detach.
            if let (Some(cg), None) = (&cgroup, child_done) {
                cg.signal_all(nix::sys::signal::Signal::SIGTERM);
            }
        }
    }
    reader.join();
    corr.flush(&mut sink);
    sink.out.release(u64::MAX);
    if let (Some(path), Some(file), Some(g)) = (&opts.dot, dot_file, &sink.graph) {
        write_dot_file(path, file, g, sink.out.topology())?;
    }
    let mut out = sink.out;

    // Stopped before COMMAND finished (a signal, a write error): end it.
    if let (Some(c), Some(cg), None) = (child.as_mut(), &cgroup, child_done) {
        if let Some(code) = end_command(c, cg) {
            child_done = Some((Instant::now(), code));
        }
    }
    let (kernel, rstats) = final_stats.unwrap_or_default();
    if let Some(mut r) = recorder.take() {
        record_tick(
            &mut r,
            monotonic_ns(),
            &kernel,
            &rstats,
            out.topology(),
            out.drops(),
            &mut written,
        )
        .and_then(|()| r.flush())
        .context("writing the recording")?;
    }
    // What was printed counts once it is out.
    out.flush();
    let cstats: CorrelatorStats = corr.stats();
    let summary = Summary {
        kind: "summary",
        emitted: kernel.emitted,
        received: rstats.received,
        lost: kernel.lost,
        decode_errors: rstats.decode_errors,
        channel_dropped: rstats.channel_dropped,
        packets: cstats.packets,
        packets_printed: out.printed(),
        flows: cstats.flows,
        copies: cstats.copies,
        packets_unfinished: cstats.packets_flushed_unseen,
        reused_skb_addresses: kernel.reused,
        filtered: kernel.filtered,
        filter: kernel_scope_label(&opts.tracer),
        degraded_hooks: degraded.iter().map(|d| d.hook.name().to_owned()).collect(),
        duration_s: started.elapsed().as_secs_f64(),
        command_exit: child_done.map(|(_, c)| c),
    };
    match &mut out {
        Out::Json(s) => s.record(&summary),
        Out::Text(_) => {
            // The packets first, then the summary (another stream).
            out.flush();
            eprintln!("{}", text_summary(&summary));
        }
    }
    out.flush();
    drop(cgroup);

    if let Some(e) = out.error() {
        // A reader that went away (`| head`) is a normal end; anything
        // else lost lines the user expected.
        if e.kind() != io::ErrorKind::BrokenPipe {
            if matches!(out, Out::Json(_)) {
                eprintln!("{}", text_summary(&summary));
            }
            anyhow::bail!("writing the trace to {dest_name}: {e}");
        }
    }
    Ok(match (term.received(), child_done) {
        // Interrupted while COMMAND ran: the shell's convention.
        (Some(sig), _) if has_command => 128 + sig,
        (None, Some((_, code))) => code,
        _ => 0,
    })
}

/// Namespace names and links already written to the recording.
#[derive(Default)]
struct RecordedTopology {
    names: std::collections::HashMap<u32, String>,
    links: std::collections::HashMap<(u32, u32), crate::topology::links::LinkInfo>,
    symbols: std::collections::HashSet<u64>,
}

/// One tick into a recording, preceded by the names and links the printer
/// learned since the last one (new or changed).
fn record_tick(
    r: &mut Recorder<io::BufWriter<std::fs::File>>,
    now: u64,
    kernel: &KernelStats,
    reader: &ReaderStats,
    topo: Option<&Topology>,
    drops: &DropContext,
    written: &mut RecordedTopology,
) -> io::Result<()> {
    for (addr, name) in drops.resolved() {
        if written.symbols.insert(addr) {
            r.symbol(addr, name)?;
        }
    }
    // Bounded: beyond a cap, start over (frames are written again).
    if written.links.len() > 65_536
        || written.names.len() > 65_536
        || written.symbols.len() > 65_536
    {
        *written = RecordedTopology::default();
    }
    if let Some(t) = topo {
        for (ino, name) in t.names() {
            if written.names.get(&ino).map(String::as_str) != Some(name) {
                r.netns_name(ino, name)?;
                written.names.insert(ino, name.to_owned());
            }
        }
        for l in t.links() {
            let key = (l.netns, l.ifindex);
            if written.links.get(&key) != Some(l) {
                r.link(l)?;
                written.links.insert(key, l.clone());
            }
        }
    }
    r.tick(&crate::bpf::reader::tick(now, kernel, reader))
}

/// Events lost, as every mode counts them (the explorer's status bar, its
/// exit line, the trace's summary): those the full ring buffer refused plus
/// those dropped while processing lagged, and where they went.
pub fn lost_phrase(ring_full: u64, lagged: u64) -> String {
    let mut s = format!("{} lost", ring_full + lagged);
    match (ring_full, lagged) {
        (0, 0) => {}
        (r, 0) => s.push_str(&format!(
            " ({r} with the ring buffer full: raise --ring-size)"
        )),
        (0, l) => s.push_str(&format!(" ({l} while processing lagged)")),
        (r, l) => s.push_str(&format!(
            " ({r} with the ring buffer full: raise --ring-size; {l} while processing lagged)"
        )),
    }
    s
}

pub fn text_summary(s: &Summary) -> String {
    let mut line = format!(
        "hopscope: {} packets ({} shown), {} flows in {:.1}s; events: {} emitted, {} received, {}",
        s.packets,
        s.packets_printed,
        s.flows,
        s.duration_s,
        s.emitted,
        s.received,
        lost_phrase(s.lost, s.channel_dropped)
    );
    if let Some(f) = &s.filter {
        line.push_str(&format!("; filter {}: {} rejected", Shown(f), s.filtered));
    }
    if !s.degraded_hooks.is_empty() {
        line.push_str(&format!(
            "; unavailable hooks: {}",
            s.degraded_hooks.join(", ")
        ));
    }
    line
}
