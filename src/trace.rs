//! `hopscope trace`: the [`crate::pipeline`] with the kernel as its source
//! and a printer (text or JSON lines, plus the `--dot` graph) as its sink,
//! until told to stop.
//!
//! The main thread waits on the reader's channel for at most `GC_PERIOD` and
//! checks its stop conditions between batches: a signal (SIGINT, SIGTERM,
//! SIGHUP), `--duration`, `--packets`, or the end of `-- COMMAND` plus a
//! short grace period for replies still in flight. Stopping always goes
//! through the reader, which detaches every program before it drains the
//! ring and reports the final counters.

use std::io;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::RecvTimeoutError;
use serde::Serialize;

use crate::bpf::reader::TracerConfig;
use crate::cgroup::CommandCgroup;
use crate::correlate::{
    Annotation, CorrelatorConfig, CorrelatorStats, Flow, HopContext, Packet, Sink,
};
use crate::event::record::{Frame, Tick};
use crate::event::snapshot::Snapshot;
use crate::event::HopEvent;
use crate::facts::{Fact, FactSink, FactTable};
use crate::output::json::JsonSink;
use crate::output::pcapng::{PcapngSink, PcapngStats, PcapngWriter};
use crate::output::text::TextSink;
use crate::output::{lost_phrase, Filter};
use crate::pipeline::facts::FactService;
use crate::pipeline::source::{self, kernel_scope_label};
use crate::pipeline::stop::quit_signals;
use crate::pipeline::{Pipeline, Step};
use crate::safe_text::Shown;
use crate::topology::graph::HopGraph;
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
    /// Write every hop of the packets printed here, as pcapng.
    pub pcapng: Option<std::path::PathBuf>,
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
    /// What `--pcapng` wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcapng: Option<PcapngSummary>,
}

/// What `--pcapng` wrote, in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct PcapngSummary {
    pub file: String,
    pub packets: u64,
    pub hops: u64,
    /// Hops left out: no bytes of their packet were kept.
    pub hops_without_bytes: u64,
}

impl PcapngSummary {
    fn new(file: &std::path::Path, s: PcapngStats) -> PcapngSummary {
        PcapngSummary {
            file: Shown(&file.to_string_lossy()).to_string(),
            packets: s.packets,
            hops: s.hops,
            hops_without_bytes: s.hops_without_bytes,
        }
    }

    /// `; pcapng: 12 hops of 3 packets in FILE`, for the text summaries.
    pub fn phrase(&self) -> String {
        let mut p = format!(
            "; pcapng: {} hops of {} packets in {}",
            self.hops, self.packets, self.file
        );
        if self.hops_without_bytes > 0 {
            p.push_str(&format!(
                " ({} hops without bytes left out)",
                self.hops_without_bytes
            ));
        }
        p
    }
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
    /// The names and links the printer was given.
    fn topology(&self) -> &FactTable {
        match self {
            Out::Text(s) => s.topology(),
            Out::Json(s) => s.topology(),
        }
    }
}

/// The pcapng file `--pcapng` writes.
type PcapngFile = PcapngSink<io::BufWriter<std::fs::File>>;

/// The printer, plus the hop graph of what it printed (`--dot`) and its
/// packets' bytes (`--pcapng`).
struct TraceSink {
    out: Out,
    filter: Filter,
    graph: Option<HopGraph>,
    pcapng: Option<PcapngFile>,
}

impl FactSink for TraceSink {
    fn fact(&mut self, fact: &Fact) {
        match &mut self.out {
            Out::Text(s) => s.fact(fact),
            Out::Json(s) => s.fact(fact),
        }
        if let Some(p) = self.pcapng.as_mut() {
            p.fact(fact);
        }
    }

    fn snapshot(&mut self, s: &Snapshot) {
        if let Some(p) = self.pcapng.as_mut() {
            p.snapshot(s);
        }
    }

    fn shows_hop(&self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) -> bool {
        match &self.out {
            Out::Text(s) => s.shows_hop(ev, ctx, flow),
            Out::Json(s) => s.shows_hop(ev, ctx, flow),
        }
    }

    fn shows_annotation(&self, ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) -> bool {
        match &self.out {
            Out::Text(s) => s.shows_annotation(ev, at, flow),
            Out::Json(s) => s.shows_annotation(ev, at, flow),
        }
    }

    /// The graph takes the packets the printer shows.
    fn shows_packet(&self, p: &Packet, flow: Option<&Flow>) -> bool {
        match &self.out {
            Out::Text(s) => s.shows_packet(p, flow),
            Out::Json(s) => s.shows_packet(p, flow),
        }
    }

    /// Idle packets ended before this: text blocks whose reorder window
    /// passed go out, and everything is flushed (a steady trickle never
    /// lets the source's wait time out).
    fn tick(&mut self, tick: &Tick, in_flight: u64) {
        self.out.release(tick.now_ns);
        self.out.flush();
        if let Some(p) = self.pcapng.as_mut() {
            p.tick(tick, in_flight);
        }
    }
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
        if let Some(w) = self.pcapng.as_mut() {
            w.packet_done(p, flow);
        }
    }
}

/// Writes the graph with the facts the printer was given (every link of
/// every namespace seen, so masters and veth peers are in; none with
/// `--inodes`: bare), into the file created when the run started.
fn write_dot_file(
    path: &std::path::Path,
    file: std::fs::File,
    g: &HopGraph,
    topo: &FactTable,
) -> Result<()> {
    let mut buf = Vec::new();
    crate::topology::dot::write_dot(g, topo, &mut buf)?;
    let mut file = file;
    io::Write::write_all(&mut file, &buf)
        .with_context(|| format!("writing {}", Shown(&path.to_string_lossy())))?;
    Ok(())
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

fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Runs the trace; returns the process exit code.
pub fn run(opts: TraceOptions) -> Result<i32> {
    source::check_can_trace()?;
    let term = quit_signals()?;

    // Every output file exists (safely created) before anything is loaded.
    let recorder = opts
        .record
        .as_deref()
        .map(|p| source::create_recording(p, opts.force))
        .transpose()?;
    let dot_file = opts
        .dot
        .as_deref()
        .map(|p| crate::outfile::create(p, opts.force, "DOT graph"))
        .transpose()
        .map_err(UsageError::from)?;
    let pcapng_file = opts
        .pcapng
        .as_deref()
        .map(|p| crate::outfile::create(p, opts.force, "pcapng file"))
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

    // The sink: a printer, plus the hop graph of what it printed.
    let stdout: OutWriter = io::BufWriter::with_capacity(64 * 1024, dest);
    let out = if opts.json {
        Out::Json(JsonSink::new(stdout, filter.clone()))
    } else {
        Out::Text(TextSink::new(stdout, opts.all_hooks, filter.clone()))
    };
    let pcapng = match pcapng_file {
        Some(f) => {
            let w = PcapngWriter::new(
                io::BufWriter::with_capacity(256 * 1024, f),
                crate::clock::realtime_offset_ns(),
                opts.tracer.snaplen,
            )
            .context("writing the pcapng file")?;
            Some(PcapngSink::new(w, filter.clone()))
        }
        None => None,
    };
    let sink = TraceSink {
        out,
        filter,
        graph: opts.dot.as_ref().map(|_| HopGraph::default()),
        pcapng,
    };
    let corr = source::correlator(ccfg, &opts.tracer);
    let mut pipe = Pipeline::new(corr, FactService::live(opts.inodes), sink, recorder);
    if let Some(r) = pipe.recorder() {
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
    }
    // Numbers only, when the kernel's BTF has no names.
    let _ = pipe.kernel_drop_reasons()?;

    let started = Instant::now();
    let (mut reader, degraded) = source::start_kernel(&opts.tracer)?;
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

    let mut last_gc = Instant::now();
    let mut child_done: Option<(Instant, i32)> = None;
    let mut stopping = false;

    loop {
        // At most GC_PERIOD between rounds: few wakeups when idle.
        match reader.rx.recv_timeout(GC_PERIOD) {
            Ok(msg) => match pipe.kernel(msg, &reader)? {
                Step::Done(..) => break,
                Step::Continue | Step::Filter(_) => {}
            },
            Err(RecvTimeoutError::Timeout) => pipe.sink.out.flush(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_gc.elapsed() >= GC_PERIOD {
            last_gc = Instant::now();
            pipe.tick_now()?;
        }
        if stopping {
            continue;
        }
        if let (Some(c), None) = (child.as_mut(), child_done) {
            if let Ok(Some(st)) = c.try_wait() {
                child_done = Some((Instant::now(), exit_code(st)));
            }
        }
        let out = &pipe.sink.out;
        let done = term.received().is_some()
            || out.error().is_some()
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
            || opts.packets.is_some_and(|n| out.printed() >= n)
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
    pipe.flush()?;
    pipe.sink.out.release(u64::MAX);
    if let (Some(path), Some(file), Some(g)) = (&opts.dot, dot_file, &pipe.sink.graph) {
        write_dot_file(path, file, g, pipe.sink.out.topology())?;
    }

    // Stopped before COMMAND finished (a signal, a write error): end it.
    if let (Some(c), Some(cg), None) = (child.as_mut(), &cgroup, child_done) {
        if let Some(code) = end_command(c, cg) {
            child_done = Some((Instant::now(), code));
        }
    }
    let cstats: CorrelatorStats = pipe.correlator_stats();
    let (kernel, rstats) = pipe.kernel_stats();
    let last = crate::bpf::reader::tick(crate::clock::monotonic_ns(), &kernel, &rstats);
    let sink = pipe.finish(Some(&last))?;
    let mut out = sink.out;
    let pcapng = match (sink.pcapng, &opts.pcapng) {
        (Some(mut w), Some(path)) => {
            w.release(u64::MAX);
            if let Some(e) = w.error {
                anyhow::bail!(
                    "writing the pcapng file {}: {e}",
                    Shown(&path.to_string_lossy())
                );
            }
            Some(PcapngSummary::new(path, w.stats()))
        }
        _ => None,
    };
    // What was printed counts once it is out.
    out.flush();
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
        pcapng,
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

/// The summary line of text mode (stderr).
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
    if let Some(p) = &s.pcapng {
        line.push_str(&p.phrase());
    }
    line
}

/// `hopscope replay FILE --pcapng OUT`: every hop of the recording's
/// packets (those the live run showed) with bytes, as pcapng. Returns the
/// exit status.
pub fn replay_to_pcapng(
    path: &std::path::Path,
    out: &std::path::Path,
    force: bool,
    corr_cfg: CorrelatorConfig,
) -> Result<i32> {
    let mut recording = source::Recording::open(path)?;
    let file = crate::outfile::create(out, force, "pcapng file").map_err(UsageError::from)?;
    let mut corr_cfg = corr_cfg;
    let mut filter = Filter::default();
    if let Some(scope) = &recording.scope {
        filter.only_owned = scope.owner_cgroup != 0;
        filter.netns = scope.netns.clone();
        corr_cfg.owner_cgroup = scope.owner_cgroup;
    }
    let w = PcapngWriter::new(
        io::BufWriter::with_capacity(256 * 1024, file),
        recording.info().realtime_offset_ns(),
        crate::bpf::abi::SNAPLEN_MAX,
    )
    .context("writing the pcapng file")?;
    let mut pipe = Pipeline::new(
        crate::correlate::Correlator::new(corr_cfg),
        FactService::replay(),
        PcapngSink::new(w, filter),
        None,
    );
    // The live run recorded a name, link or symbol when it first printed a
    // packet that named it, after that packet's events: every fact goes to
    // the sink first, so each packet is written with its names.
    let mut facts = source::Recording::open(path)?;
    while let Some(frame) = facts.next_frame()? {
        if matches!(
            frame,
            Frame::NetnsName { .. } | Frame::Link(_) | Frame::Symbol { .. } | Frame::DropReasons(_)
        ) {
            pipe.frame(frame)?;
        }
    }
    while let Some(frame) = recording.next_frame()? {
        pipe.frame(frame)?;
    }
    pipe.flush()?;
    let mut sink = pipe.finish(None)?;
    sink.release(u64::MAX);
    let shown = Shown(&out.to_string_lossy()).to_string();
    if let Some(e) = sink.error {
        anyhow::bail!("writing the pcapng file {shown}: {e}");
    }
    let s = PcapngSummary::new(out, sink.stats());
    eprintln!("hopscope: {}", &s.phrase()[2..]);
    if s.hops == 0 && s.hops_without_bytes > 0 {
        eprintln!(
            "hopscope: the recording holds no packet bytes: record with --snaplen N (trace --pcapng sets 128)"
        );
    }
    Ok(0)
}
