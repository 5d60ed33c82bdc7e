//! The explorer's runners: the live loop (the kernel source and the model
//! as the sink of the [`crate::pipeline`], then the screen) and the replay
//! of a recording (the recording as the source), plus terminal hygiene.
//!
//! - The terminal is put back (raw mode off, main screen, mouse capture
//!   off, cursor shown) by an RAII guard on every exit path, and by a panic
//!   hook before the panic message is printed.
//! - The screen is drawn at most [`FRAME_PERIOD`] apart and only when the
//!   model or the view changed. Input arrives on its own thread, so keys are
//!   handled between event batches (1024 events at most), never after them.
//! - While the explorer owns the screen, log records (libbpf's included) go
//!   to `HOPSCOPE_LOG_FILE` or nowhere, never to the terminal.
//! - SIGINT, SIGTERM and SIGHUP quit like `q`: the reader detaches every
//!   program before the process exits.
//! - The kernel's filter changes while the programs stay attached: the app
//!   compiles what was typed after `f` (libpcap), this loop hands it to the
//!   reader, and the status bar shows it once the reader answers that it is
//!   in force. What is already listed stays.

use std::io::{self, IsTerminal, Stdout, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{select, tick, Receiver};
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::app::{App, FilterSpec, Input, KernelFilter, PcapngExport};
use crate::bpf::reader::{Reader, TracerConfig};
use crate::correlate::{Correlator, CorrelatorConfig};
use crate::facts::Fact;
use crate::filter::expr::COMPILE_TIME_LIMIT;
use crate::filter::Compilation;
use crate::model::{Model, ModelConfig};
use crate::output::lost_phrase;
use crate::output::pcapng::PcapngWriter;
use crate::pipeline::facts::FactService;
use crate::pipeline::source::{self, kernel_scope_label, Recording};
use crate::pipeline::stop::quit_signals;
use crate::pipeline::{Pipeline, Step};
use crate::select::Filter;
use crate::topology::dot::write_dot;
use crate::topology::graph::HopGraph;
use crate::ui::{self, Theme};
use crate::UsageError;

/// At most ~30 frames per second.
pub const FRAME_PERIOD: Duration = Duration::from_millis(33);
/// Clock of the correlator's idle flush and of the model.
const TICK_PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct ExplorerOptions {
    pub tracer: TracerConfig,
    pub correlator: CorrelatorConfig,
    pub model: ModelConfig,
    pub record: Option<PathBuf>,
    /// Overwrite an existing `record` file (never through a link).
    pub force: bool,
    /// Shown in the status bar: what is filtered after correlation (the
    /// kernel's filter and scope are in `tracer`).
    pub filter_label: String,
    /// Quit after this long (scripts and demos); `None`: until asked.
    pub duration: Option<Duration>,
}

type Term = Terminal<CrosstermBackend<Stdout>>;

/// The thread that draws (the panic hook restores the terminal for it only).
static UI_THREAD: std::sync::Mutex<Option<std::thread::ThreadId>> = std::sync::Mutex::new(None);

/// Owns the terminal while the explorer runs; restores it when dropped.
struct TerminalGuard {
    /// Never dropped: ratatui's drop shows the cursor again and prints
    /// "Failed to show the cursor" when the terminal is gone; the guard's
    /// own drop restores the terminal, quietly.
    term: std::mem::ManuallyDrop<Term>,
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard> {
        if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
            return Err(UsageError(
                "the explorer needs a terminal; for scripts use `hopscope trace` (text or --json)"
                    .to_owned(),
            )
            .into());
        }
        // A panic on the screen's thread restores the terminal before the
        // message is printed (panics other threads survive do not).
        static HOOK: Once = Once::new();
        if let Ok(mut t) = UI_THREAD.lock() {
            *t = Some(std::thread::current().id());
        }
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let ui = UI_THREAD
                    .lock()
                    .map(|t| *t == Some(std::thread::current().id()))
                    .unwrap_or(true);
                if ui {
                    restore_terminal();
                }
                previous(info);
            }));
        });
        // Everything fallible before raw mode, so an error leaves the
        // terminal as it was; from raw mode on, the guard restores it.
        let term =
            Terminal::new(CrosstermBackend::new(io::stdout())).context("opening the terminal")?;
        enable_raw_mode().context("switching the terminal to raw mode")?;
        let guard = TerminalGuard {
            term: std::mem::ManuallyDrop::new(term),
        };
        execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
            .context("entering the alternate screen")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Whether the terminal on stdin is gone: hung up (the pty's other side
/// closed, `tmux kill-session`, a dropped ssh), or in error. Waits at most
/// `timeout` for input; `Ok(true)` when some is ready.
fn terminal_input(timeout: Duration) -> Result<bool, &'static str> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, ms) {
        Ok(0) => Ok(false),
        Ok(_) => {
            let ev = fds[0].revents().unwrap_or(PollFlags::empty());
            if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                Err("the terminal went away")
            } else {
                Ok(ev.contains(PollFlags::POLLIN))
            }
        }
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(_) => Err("the terminal cannot be read"),
    }
}

/// Terminal input on its own thread (crossterm's read blocks). Dropping it
/// stops and joins the thread, on every exit path. The thread ends, and
/// with it the channel, when the terminal goes away (hangup, EOF, EIO):
/// the runners then quit, since no one can see or steer them.
struct InputThread {
    rx: Receiver<Event>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl InputThread {
    fn spawn() -> Result<InputThread> {
        let (tx, rx) = crossbeam_channel::bounded(256);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("hopscope-input".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // crossterm's own poll spins on a hung-up terminal
                    // (readable, 0 bytes): look at the descriptor first.
                    match terminal_input(Duration::from_millis(50)) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(why) => {
                            log::info!("{why}");
                            return;
                        }
                    }
                    // Everything crossterm has now, parsed or buffered (a
                    // paste is many events from one read of the terminal).
                    // Its poll(2) source reads nothing with a zero timeout.
                    loop {
                        match event::poll(Duration::from_millis(1)) {
                            Ok(true) => match event::read() {
                                Ok(ev) => {
                                    if tx.send(ev).is_err() {
                                        return;
                                    }
                                }
                                Err(_) => return,
                            },
                            Ok(false) => break,
                            Err(_) => return,
                        }
                    }
                }
            })
            .context("starting the input thread")?;
        Ok(InputThread {
            rx,
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for InputThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Redraw policy: only when something changed, at most once per frame
/// period; while frozen, model changes alone do not redraw more than once
/// per second.
struct Painter {
    theme: Theme,
    last_draw: Option<Instant>,
    drawn_generation: u64,
    view_changed: bool,
}

impl Painter {
    fn new() -> Painter {
        Painter {
            theme: Theme::from_env(),
            last_draw: None,
            drawn_generation: u64::MAX,
            view_changed: true,
        }
    }

    fn maybe_draw(&mut self, term: &mut Term, model: &Model, app: &mut App) -> Result<()> {
        let since = self.last_draw.map_or(Duration::MAX, |t| t.elapsed());
        let model_changed = model.generation() != self.drawn_generation;
        let wanted = self.view_changed
            || (model_changed && (app.frozen.is_none() || since >= Duration::from_secs(1)));
        if !wanted || since < FRAME_PERIOD {
            return Ok(());
        }
        term.draw(|f| ui::render(f, model, app, self.theme))
            .context("drawing the screen")?;
        self.last_draw = Some(Instant::now());
        self.drawn_generation = model.generation();
        self.view_changed = false;
        Ok(())
    }
}

/// The live explorer. Returns the exit code.
pub fn run_live(opts: ExplorerOptions) -> Result<i32> {
    source::check_can_trace()?;
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(UsageError(
            "the explorer needs a terminal; for scripts use `hopscope trace` (text or --json)"
                .to_owned(),
        )
        .into());
    }
    let term_flag = quit_signals()?;
    let recorder = opts
        .record
        .as_deref()
        .map(|p| source::create_recording(p, opts.force))
        .transpose()?;
    let corr = source::correlator(opts.correlator, &opts.tracer);
    let model = Model::new(opts.model.clone());
    let mut pipe = Pipeline::new(corr, FactService::live(false), model, recorder);
    if let Some(r) = pipe.recorder() {
        // The filter the run started with (changes made with `f` are not
        // recorded: a replay shows the events, whichever filter chose them).
        let label = match kernel_scope_label(&opts.tracer) {
            Some(k) if opts.filter_label != crate::app::EVERYTHING => {
                format!("{k} · {}", opts.filter_label)
            }
            Some(k) => k,
            None => opts.filter_label.clone(),
        };
        r.scope(&opts.model.filter.netns, 0, &label)
            .context("writing the recording")?;
    }
    crate::logging::quiet_terminal();
    let (mut reader, degraded) = source::start_kernel(&opts.tracer)?;
    let mut unavailable: Vec<String> = degraded.iter().map(|d| d.hook.name().to_owned()).collect();
    if let Err(e) = pipe.kernel_drop_reasons()? {
        log::warn!("drop reasons shown as numbers: {e}");
        unavailable.push("drop reason names".to_owned());
    }
    pipe.sink.set_degraded(unavailable);
    pipe.prime_facts()?;
    let initial = opts.tracer.filter.as_ref();
    let mut app = App {
        filter_label: opts.filter_label.clone(),
        filter: KernelFilter {
            editable: true,
            current: FilterSpec {
                expr: initial.map(|f| f.expr.clone()).unwrap_or_default(),
                whole_flows: initial.is_some_and(|f| f.whole_flows),
            },
            label: initial.map(crate::filter::PacketFilter::label),
            scope: opts.tracer.scope.label(),
            ..KernelFilter::default()
        },
        source_label: match &opts.record {
            Some(p) => format!("live, recording to {}", p.display()),
            None => "live".to_owned(),
        },
        ..App::default()
    };

    let result = (|| -> Result<()> {
        let mut guard = TerminalGuard::enter()?;
        let input = InputThread::spawn()?;
        let ticker = tick(TICK_PERIOD);
        let mut painter = Painter::new();
        let started = Instant::now();
        let mut compiling: Option<(FilterSpec, Compilation)> = None;
        let no_compilation = crossbeam_channel::never();
        let res = loop {
            let compiled = compiling
                .as_ref()
                .map_or(&no_compilation, |(_, c)| c.receiver());
            select! {
                recv(compiled) -> r => {
                    if let Some((spec, _)) = compiling.take() {
                        let r = match r {
                            Ok(r) => r.map_err(|e| e.to_string()),
                            Err(_) => Err("the filter compiler stopped".to_owned()),
                        };
                        app.filter_compiled(spec, r);
                        painter.view_changed = true;
                    }
                },
                recv(reader.rx) -> msg => match msg {
                    Ok(msg) => match pipe.kernel(msg, &reader) {
                        Ok(Step::Filter(res)) => {
                            app.filter_applied(res);
                            painter.view_changed = true;
                        }
                        Ok(Step::Continue | Step::Done(..)) => {}
                        Err(e) => break Err(e),
                    },
                    Err(_) => break Err(anyhow::anyhow!("the BPF reader stopped")),
                },
                recv(input.rx) -> ev => match ev {
                    Ok(ev) => on_terminal_event(
                        &mut app,
                        &pipe.sink,
                        ev,
                        &mut painter,
                        Some(&reader),
                        crate::clock::realtime_offset_ns(),
                    ),
                    // Without input there is no way to quit: stop. A hangup
                    // usually comes with SIGHUP: then it is a quit.
                    Err(_) if term_flag.received().is_some() => break Ok(()),
                    Err(_) => break Err(terminal_gone()),
                },
                recv(ticker) -> _ => pipe.tick_now().map(drop)?,
                default(FRAME_PERIOD) => {},
            }
            pump_filter(&mut app, &mut compiling, &reader, &mut painter);
            if app.quit
                || term_flag.received().is_some()
                || opts.duration.is_some_and(|d| started.elapsed() >= d)
            {
                break Ok(());
            }
            if let Err(e) = painter.maybe_draw(&mut guard.term, &pipe.sink, &mut app) {
                // A lost terminal fails the next draw (EIO), often just
                // before its SIGHUP arrives: a hangup either way.
                break match term_flag.received() {
                    Some(_) => Ok(()),
                    None => Err(e.context(terminal_gone())),
                };
            }
        };
        drop(input);
        drop(guard);
        res
    })();

    // Detach every program first, then flush the recording (it ends with
    // the last tick the screen was drawn from, plus the events after it).
    reader.join();
    let model = pipe.finish(None)?;
    // The summary, also when the terminal went away (then stderr may be
    // gone too: nothing to do about a failed write).
    let s = &model.counters;
    let _ = writeln!(
        io::stderr(),
        "hopscope: {} flows, {} packets finished; events: {} emitted, {} received, {}",
        model.flow_count(),
        s.packets_finished,
        s.tick.emitted,
        s.tick.received,
        lost_phrase(s.tick.lost, s.tick.channel_dropped)
    );
    result?;
    Ok(0)
}

/// The filter the app asked for: compiled on a worker (started here, and
/// refused once it overruns [`COMPILE_TIME_LIMIT`]), then handed to the
/// reader.
fn pump_filter(
    app: &mut App,
    compiling: &mut Option<(FilterSpec, Compilation)>,
    reader: &Reader,
    painter: &mut Painter,
) {
    if let Some(spec) = app.filter.compile.take() {
        let c = Compilation::start(&spec.expr, spec.whole_flows);
        *compiling = Some((spec, c));
    }
    if let Some((spec, c)) = compiling.as_ref() {
        if let Some(e) = c.overrun(COMPILE_TIME_LIMIT) {
            app.filter_compiled(spec.clone(), Err(e.to_string()));
            *compiling = None;
            painter.view_changed = true;
        }
    }
    if let Some(filter) = app.filter.outbox.take() {
        // The reader answers with ReaderMsg::Filter; the model keeps what
        // it has.
        reader.set_filter(filter);
        painter.view_changed = true;
    }
}

/// One key, mouse or resize event; then what the app asked the runner
/// for: a filter for the reader (live runs), a graph to write.
fn on_terminal_event(
    app: &mut App,
    model: &Model,
    ev: Event,
    painter: &mut Painter,
    reader: Option<&Reader>,
    realtime_offset_ns: i64,
) {
    match ev {
        Event::Key(k) => app.update(model, Input::Key(k)),
        Event::Mouse(m) => app.update(model, Input::Mouse(m)),
        Event::Resize(..) => {}
        _ => return,
    }
    if let Some(filter) = app.filter.outbox.take() {
        match reader {
            // The reader answers with ReaderMsg::Filter; the model keeps
            // what it has.
            Some(r) => r.set_filter(filter),
            None => app.filter.pending.clear(),
        }
    }
    if let Some(flow) = app.export_dot.take() {
        app.notice = Some(match export_dot(app, model, flow) {
            Ok(path) => format!("wrote {path}"),
            Err(e) => format!("could not write the graph: {e:#}"),
        });
    }
    if let Some(what) = app.export_pcapng.take() {
        app.notice = Some(match export_pcapng(app, model, what, realtime_offset_ns) {
            Ok(said) => said,
            Err(e) => format!("could not write the pcapng file: {e:#}"),
        });
    }
    painter.view_changed = true;
}

/// `1 hop`, `2 hops`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Writes `what` (the flow's packets the view shows, or one packet), every
/// hop with the bytes the model kept (`--snaplen`), as pcapng in the
/// working directory under a new name no one can plant in advance
/// (`hopscope-flow-N-RANDOM.pcapng`); says what it wrote.
fn export_pcapng(
    app: &App,
    model: &Model,
    what: PcapngExport,
    realtime_offset_ns: i64,
) -> Result<String> {
    let (packets, stem): (Vec<&crate::correlate::Packet>, String) = match what {
        PcapngExport::Flow(f) => (app.flow_packets(model), format!("hopscope-flow-{}", f.0)),
        PcapngExport::Packet(p) => (
            model.packet(p).into_iter().collect(),
            format!("hopscope-packet-{}", p.0),
        ),
    };
    let snaps = model.snapshots();
    if !packets.iter().any(|p| {
        p.visits
            .iter()
            .any(|v| snaps.at(p.id, v.first_ts).is_some())
    }) {
        return Ok("no packet bytes kept: start the explorer with --snaplen 128".to_owned());
    }
    // What the last hop's comment names: reason names and drop locations.
    let mut drops = crate::output::DropContext::default();
    drops.learn(&Fact::DropReasons(model.drop_reasons().clone()));
    for p in &packets {
        if let Some((_, addr)) = p.outcome.reason() {
            if let Some(name) = model.symbol(addr) {
                drops.learn(&Fact::Symbol {
                    addr,
                    name: name.to_owned(),
                });
            }
        }
    }
    let path = crate::outfile::unpredictable_name(&stem, "pcapng");
    let file = crate::outfile::create(Path::new(&path), false, "pcapng file")?;
    let mut w = PcapngWriter::new(
        io::BufWriter::new(file),
        realtime_offset_ns,
        crate::bpf::abi::SNAPLEN_MAX,
    )
    .with_context(|| format!("writing {path}"))?;
    for p in &packets {
        w.packet(p, snaps, model, &drops)
            .with_context(|| format!("writing {path}"))?;
    }
    w.release(u64::MAX)
        .with_context(|| format!("writing {path}"))?;
    let s = w.stats;
    let mut said = format!(
        "wrote {path}: {} of {}",
        plural(s.hops, "hop"),
        plural(s.packets, "packet")
    );
    if s.hops_without_bytes > 0 {
        said.push_str(&format!(
            " ({} hops without bytes left out)",
            s.hops_without_bytes
        ));
    }
    Ok(said)
}

/// Why the explorer ended without being asked: its terminal is gone.
fn terminal_gone() -> anyhow::Error {
    anyhow::anyhow!(
        "the terminal went away (hangup, end of input or I/O error); every program was detached"
    )
}

/// Writes the hop graph of `flow` (the packets the view shows) as DOT in
/// the working directory, under a new name no one can plant in advance
/// (`hopscope-flow-N-RANDOM.dot`, created as [`crate::outfile`] does);
/// returns the file name.
fn export_dot(app: &App, model: &Model, flow: crate::correlate::FlowId) -> Result<String> {
    let graph = HopGraph::build(app.flow_packets(model));
    let path = crate::outfile::unpredictable_name(&format!("hopscope-flow-{}", flow.0), "dot");
    let mut buf = Vec::new();
    write_dot(&graph, model, &mut buf)?;
    let mut file = crate::outfile::create(Path::new(&path), false, "DOT graph")?;
    io::Write::write_all(&mut file, &buf).with_context(|| format!("writing {path}"))?;
    Ok(path)
}

/// Rebuilds the model a recording describes (no root, no BPF): the
/// recording as the source, the model as the sink. Returns it with the
/// words for what it shows.
pub fn load_recording(
    path: &Path,
    model_cfg: ModelConfig,
    corr_cfg: CorrelatorConfig,
) -> Result<(Model, String)> {
    let mut recording = Recording::open(path)?;
    let (mut model_cfg, mut corr_cfg) = (model_cfg, corr_cfg);
    let mut label = "everything".to_owned();
    // The live run's scope, unless the caller narrowed it already.
    let caller_filtered = model_cfg.filter.only_owned || !model_cfg.filter.netns.is_empty();
    if let (Some(scope), false) = (&recording.scope, caller_filtered) {
        model_cfg.filter = Filter {
            only_owned: scope.owner_cgroup != 0,
            netns: scope.netns.clone(),
            kernel_filtered: false,
        };
        corr_cfg.owner_cgroup = scope.owner_cgroup;
        label = format!("as recorded: {}", scope.label);
    }
    let mut pipe = Pipeline::new(
        Correlator::new(corr_cfg),
        FactService::replay(),
        Model::new(model_cfg),
        None,
    );
    while let Some(frame) = recording.next_frame()? {
        pipe.frame(frame)?;
    }
    // The recording is all there is: packets still in flight at its end
    // end there, as a live run's do when it stops.
    pipe.flush()?;
    let mut model = pipe.finish(None)?;
    model.set_in_flight(0);
    Ok((model, label))
}

/// `hopscope replay FILE`: the explorer on a recording.
pub fn run_replay(path: &Path, model_cfg: ModelConfig, corr_cfg: CorrelatorConfig) -> Result<i32> {
    let (model, filter_label) = load_recording(path, model_cfg, corr_cfg)?;
    let realtime_offset_ns = Recording::open(path)?.info().realtime_offset_ns();
    let term_flag = quit_signals()?;
    crate::logging::quiet_terminal();
    let mut app = App {
        source_label: format!("replay {}", path.display()),
        filter_label,
        ..App::default()
    };
    let mut guard = TerminalGuard::enter()?;
    let input = InputThread::spawn()?;
    let mut painter = Painter::new();
    loop {
        if let Err(e) = painter.maybe_draw(&mut guard.term, &model, &mut app) {
            // A lost terminal: see run_live.
            if term_flag.received().is_some() {
                break;
            }
            return Err(e.context(terminal_gone()));
        }
        match input.rx.recv_timeout(FRAME_PERIOD) {
            Ok(ev) => {
                on_terminal_event(&mut app, &model, ev, &mut painter, None, realtime_offset_ns)
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if term_flag.received().is_some() {
                    break;
                }
                return Err(terminal_gone());
            }
        }
        if app.quit || term_flag.received().is_some() {
            break;
        }
    }
    Ok(0)
}
