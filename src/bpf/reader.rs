//! The reader thread: it owns the skeleton, the links and the ring buffer as
//! locals (the skeleton borrows its object storage, so it cannot leave the
//! thread), decodes records into [`HopEvent`]s and hands them over in
//! batches through a bounded channel. It never blocks on the consumer: a
//! full channel drops the batch and counts it.
//!
//! Ring buffer policy (see DESIGN §2.6): programs submit without waking us
//! unless a threshold of data waits, and we drain on a short timer in
//! bounded batches while events flow. With nothing to read the timer
//! stretches to [`IDLE_PERIOD`], so an idle tracer (a filter that matches
//! nothing yet) costs the machine almost no wakeups: the programs wake us
//! for the first events into an empty ring, and [`Reader::stop`] and
//! [`Reader::set_filter`] through an eventfd. At stop, links are destroyed
//! *before* the final drain, so that the kernel counters are final and
//! `emitted == received + lost` holds exactly.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, RingBuffer, RingBufferBuilder};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::abi;
use super::skel::{HopscopeSkel, HopscopeSkelBuilder, OpenHopscopeSkel};
use crate::event::{snapshot::Snapshot, stream::StreamDecoder, Hook, HookData, HopEvent, HOOKS};
use crate::filter::{scope, PacketFilter, Scope};

/// Events per batch handed to the consumer.
pub const BATCH: usize = 1024;
/// How long the programs may take to load and attach before the reader
/// counts as hung. The verifier checks every program at start: a second or
/// two here, over a minute on an emulated CPU (the 6.1 and 6.12 guests).
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Drain period while events flow and no wakeup comes.
const DRAIN_PERIOD: Duration = Duration::from_millis(10);
/// Sleep once nothing came for [`IDLE_AFTER`] (the programs wake us sooner).
const IDLE_PERIOD: Duration = Duration::from_millis(250);
/// Drains in a row that found nothing before the long sleep. Their total
/// must exceed the programs' wakeup gap (`HS_WAKEUP_GAP_NS`, 20 ms): by then
/// the next event into the empty ring is sure to wake us.
const IDLE_AFTER: u32 = 3;
/// How often live kernel counters are sent.
const STATS_PERIOD: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct TracerConfig {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Data waiting in the ring before the programs wake the reader.
    pub wakeup_bytes: u64,
    /// Packets whose identity the kernel side tracks at once.
    pub max_packets: u32,
    /// Capacity of the reader → consumer channel, in batches.
    pub channel_batches: usize,
    /// Record the kernel stack of every drop that is not routine.
    pub drop_stack: bool,
    /// Copy this many first bytes of a packet where its headers are sent in
    /// full (0: none; at most [`abi::SNAPLEN_MAX`]).
    pub snaplen: u32,
    /// Follow only packets this pcap filter accepts at their first sighting.
    pub filter: Option<PacketFilter>,
    /// Look only at hops in these namespaces and interfaces.
    pub scope: Scope,
}

impl Default for TracerConfig {
    fn default() -> Self {
        TracerConfig {
            ring_bytes: 16 << 20,
            wakeup_bytes: 256 << 10,
            max_packets: 65_536,
            channel_batches: 256,
            drop_stack: false,
            snaplen: 0,
            filter: None,
            scope: Scope::default(),
        }
    }
}

/// Kernel-side counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Events the programs tried to emit.
    pub emitted: u64,
    /// Of those, ring buffer reservations that failed.
    pub lost: u64,
    /// Packet identities created.
    pub packets: u64,
    /// skb addresses found reused without a free event.
    pub reused: u64,
    /// First sightings the filter rejected.
    pub filtered: u64,
}

/// What the reader counted itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Records taken off the ring buffer (decoded or not).
    pub received: u64,
    /// Records that failed to decode.
    pub decode_errors: u64,
    /// Decoded events dropped because the consumer lagged.
    pub channel_dropped: u64,
}

/// The counters at `now_ns`, as the model and recordings take them.
pub fn tick(now_ns: u64, kernel: &KernelStats, reader: &ReaderStats) -> crate::event::record::Tick {
    crate::event::record::Tick {
        now_ns,
        emitted: kernel.emitted,
        lost: kernel.lost,
        received: reader.received,
        decode_errors: reader.decode_errors,
        channel_dropped: reader.channel_dropped,
        reused: kernel.reused,
    }
}

/// A hook that could not be attached, and why.
#[derive(Debug, Clone)]
pub struct Degraded {
    pub hook: Hook,
    pub error: String,
}

#[derive(Debug)]
pub enum ReaderMsg {
    /// Attached and running; lists the optional hooks that are unavailable.
    Ready {
        degraded: Vec<Degraded>,
    },
    Events(Vec<HopEvent>),
    /// Packets' first bytes (`--snaplen`), sent before the events that
    /// follow them in the ring.
    Snapshots(Vec<Snapshot>),
    Stats {
        kernel: KernelStats,
        reader: ReaderStats,
    },
    /// Kernel stacks of drops (`--drop-stack`), by the id drop events
    /// carry (`HookData::Freed`'s `stack`); sent before the events that refer to them.
    Stacks(Vec<(u32, Vec<u64>)>),
    /// Final counters after detach and drain.
    Done {
        kernel: KernelStats,
        reader: ReaderStats,
    },
    /// Loading or attaching failed; nothing is left attached.
    Failed(String),
    /// A filter sent with [`Reader::set_filter`] is in force (its label,
    /// None for no filter), or could not be installed (Err).
    Filter(Result<Option<String>, String>),
}

/// Changes asked of the running reader.
#[derive(Debug)]
enum Control {
    SetFilter(Option<PacketFilter>),
}

/// Handle of a running reader thread.
pub struct Reader {
    pub rx: Receiver<ReaderMsg>,
    recycle: Sender<Vec<HopEvent>>,
    control: Sender<Control>,
    stop: Arc<AtomicBool>,
    /// Wakes the thread out of its sleep for a stop or a control message.
    waker: Arc<EventFd>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Reader {
    /// Starts the thread. Wait for [`ReaderMsg::Ready`] or
    /// [`ReaderMsg::Failed`] before relying on it.
    pub fn spawn(cfg: TracerConfig) -> std::io::Result<Reader> {
        let (tx, rx) = crossbeam_channel::bounded(cfg.channel_batches.max(2));
        let (recycle, recycled) = crossbeam_channel::bounded(cfg.channel_batches.max(2));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        // Unbounded: a filter change is never dropped, and they come at
        // typing speed.
        let (control, control_rx) = crossbeam_channel::unbounded();
        let waker = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
        )?);
        let waker2 = waker.clone();
        let thread = thread::Builder::new()
            .name("hopscope-reader".into())
            .spawn(move || {
                if let Err(e) = run(&cfg, &tx, &recycled, &control_rx, &stop2, &waker2) {
                    let _ = tx.send(ReaderMsg::Failed(format!("{e:#}")));
                }
            })?;
        Ok(Reader {
            rx,
            recycle,
            control,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Gives an emptied batch back for reuse.
    pub fn recycle(&self, mut batch: Vec<HopEvent>) {
        batch.clear();
        let _ = self.recycle.try_send(batch);
    }

    /// Replaces the filter in the kernel without reloading anything; the
    /// thread answers with [`ReaderMsg::Filter`]. Packets already followed
    /// stay followed until they end.
    pub fn set_filter(&self, filter: Option<PacketFilter>) {
        if self.control.send(Control::SetFilter(filter)).is_ok() {
            self.wake();
        }
    }

    /// Asks the thread to detach, drain and send [`ReaderMsg::Done`].
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        // Fails only when the counter is saturated: the thread is awake then.
        let _ = self.waker.write(1);
    }

    /// Stops and waits for the thread (links are gone when this returns).
    pub fn join(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            // Keep draining so the thread is never stuck on a full channel.
            while !t.is_finished() {
                while self.rx.try_recv().is_ok() {}
                thread::sleep(Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.join();
    }
}

/// Batching state shared by the ring buffer callback and the loop.
struct Batcher {
    batch: Vec<HopEvent>,
    stats: ReaderStats,
    /// Stack ids (+1) of drops in `batch`, to read before it is sent.
    stacks: Vec<u32>,
    /// Snapshots (`--snaplen`) of packets in or before `batch`, sent first.
    snapshots: Vec<Snapshot>,
}

fn read_kernel_stats(skel: &HopscopeSkel<'_>) -> KernelStats {
    let mut v = [0u64; 5];
    for (slot, out) in v.iter_mut().enumerate() {
        let key = (slot as u32).to_ne_bytes();
        if let Ok(Some(per_cpu)) = skel.maps.hs_stats.lookup_percpu(&key, MapFlags::ANY) {
            *out = per_cpu
                .iter()
                .filter_map(|b| b.get(..8).and_then(|s| s.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum();
        }
    }
    KernelStats {
        emitted: v[0],
        lost: v[1],
        packets: v[2],
        reused: v[3],
        filtered: v[4],
    }
}

/// Bit per drop reason value that is routine (see `drop_reason`); all bits
/// set (report nothing first seen at a drop) when BTF has no reason names.
fn quiet_reasons() -> [u64; 4] {
    let Ok(reasons) = crate::event::drop_reason::DropReasons::from_kernel() else {
        return [u64::MAX; 4];
    };
    let mut bits = [0u64; 4];
    for (v, _) in reasons.pairs() {
        if v < 256 && reasons.is_benign(v) {
            bits[(v >> 6) as usize] |= 1 << (v & 63);
        }
    }
    // Values the kernel does not name are quiet too.
    for v in 0..256u32 {
        if reasons.name(v).is_none() {
            bits[(v >> 6) as usize] |= 1 << (v & 63);
        }
    }
    bits
}

/// Reads the kernel stacks the batch's drops refer to (and frees their
/// slots), ahead of the batch, so they are there when the drops print.
fn send_stacks(skel: &HopscopeSkel<'_>, b: &mut Batcher, tx: &Sender<ReaderMsg>, block: bool) {
    if b.stacks.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(b.stacks.len());
    for id in b.stacks.drain(..) {
        let key = (id - 1).to_ne_bytes();
        if let Ok(Some(v)) = skel.maps.hs_stacks.lookup(&key, MapFlags::ANY) {
            let ips: Vec<u64> = v
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .take_while(|ip| *ip != 0)
                .collect();
            let _ = skel.maps.hs_stacks.delete(&key);
            out.push((id, ips));
        }
    }
    // Like the batches: never wait on the consumer while tracing.
    let _ = if block {
        tx.send_timeout(ReaderMsg::Stacks(out), Duration::from_secs(2))
            .map_err(|_| ())
    } else {
        tx.try_send(ReaderMsg::Stacks(out)).map_err(|_| ())
    };
}

fn send_batch(
    b: &mut Batcher,
    tx: &Sender<ReaderMsg>,
    recycled: &Receiver<Vec<HopEvent>>,
    block: bool,
) {
    if !b.snapshots.is_empty() {
        let snaps = std::mem::take(&mut b.snapshots);
        let n = snaps.len() as u64;
        let res = if block {
            tx.send_timeout(ReaderMsg::Snapshots(snaps), Duration::from_secs(2))
                .map_err(|_| ())
        } else {
            tx.try_send(ReaderMsg::Snapshots(snaps)).map_err(|_| ())
        };
        if res.is_err() {
            b.stats.channel_dropped += n;
        }
    }
    if b.batch.is_empty() {
        return;
    }
    let next = recycled
        .try_recv()
        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
    let full = std::mem::replace(&mut b.batch, next);
    let n = full.len() as u64;
    let res = if block {
        tx.send_timeout(ReaderMsg::Events(full), Duration::from_secs(2))
            .map_err(|_| ())
    } else {
        tx.try_send(ReaderMsg::Events(full)).map_err(|e| match e {
            TrySendError::Full(_) | TrySendError::Disconnected(_) => (),
        })
    };
    if res.is_err() {
        b.stats.channel_dropped += n;
    }
}

/// Installs `filter` as epoch `epoch`: the programs of the slots that epoch
/// selects first, then the control word the programs read, so a program
/// never sees a half-written filter.
fn install_filter(
    skel: &HopscopeSkel<'_>,
    filter: Option<&PacketFilter>,
    epoch: u32,
) -> anyhow::Result<()> {
    use anyhow::Context;

    if let Some(f) = filter {
        let base = (epoch & 1) * 2;
        for (slot, insns) in [(base, &f.ether), (base + 1, &f.raw)] {
            skel.maps
                .hs_filter_progs
                .update(
                    &slot.to_ne_bytes(),
                    &abi::program_bytes(insns),
                    MapFlags::ANY,
                )
                .context("writing the filter program")?;
        }
    }
    let ctl = abi::filter_ctl_bytes(
        filter.is_some(),
        epoch,
        filter.is_some_and(|f| f.whole_flows),
    );
    skel.maps
        .hs_filter_ctl
        .update(&0u32.to_ne_bytes(), &ctl, MapFlags::ANY)
        .context("switching the filter")?;
    Ok(())
}

/// The BPF program that reports tracepoint `tp` (bpf/hopscope.bpf.c).
fn program_name(tp: &str) -> String {
    format!("hs_{tp}")
}

/// The reader thread's life: open, configure and load the programs,
/// attach them, then drain the ring until told to stop; detach and drain
/// what is left.
fn run(
    cfg: &TracerConfig,
    tx: &Sender<ReaderMsg>,
    recycled: &Receiver<Vec<HopEvent>>,
    control: &Receiver<Control>,
    stop: &AtomicBool,
    waker: &EventFd,
) -> anyhow::Result<()> {
    use anyhow::Context;

    let mut storage = MaybeUninit::uninit();
    let mut open = HopscopeSkelBuilder::default()
        .open(&mut storage)
        .context("opening the BPF object")?;
    configure(&mut open, cfg)?;
    let mut degraded = leave_out_missing(&mut open)?;
    let skel = open.load().map_err(load_error)?;
    // The filter is in force before the first program runs.
    let mut epoch = 0u32;
    install_filter(&skel, cfg.filter.as_ref(), epoch)?;
    let links = attach(&skel, &mut degraded)?;

    let state = Rc::new(RefCell::new(Batcher {
        batch: Vec::with_capacity(BATCH),
        stats: ReaderStats::default(),
        stacks: Vec::new(),
        snapshots: Vec::new(),
    }));
    let ring = ring_reader(&skel, state.clone(), cfg.drop_stack)?;
    let out = Out {
        skel: &skel,
        ring: &ring,
        state: &state,
        tx,
        recycled,
    };

    let _ = tx.send(ReaderMsg::Ready { degraded });
    // Our own epoll set: the ring buffer and the waker.
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("creating an epoll set")?;
    epoll
        .add(
            skel.maps.hs_events.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, 0),
        )
        .and_then(|()| epoll.add(waker, EpollEvent::new(EpollFlags::EPOLLIN, 1)))
        .context("watching the ring buffer")?;
    let mut ready = [EpollEvent::empty(); 2];
    let mut empty_drains = 0u32;
    let mut last_stats = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let period = if empty_drains >= IDLE_AFTER {
            IDLE_PERIOD
        } else {
            DRAIN_PERIOD
        };
        let timeout = EpollTimeout::try_from(period).unwrap_or(EpollTimeout::NONE);
        // EINTR and the like: the loop drains and comes back.
        let _ = epoll.wait(&mut ready, timeout);
        let _ = waker.read();
        while let Ok(Control::SetFilter(f)) = control.try_recv() {
            // The epoch moves only once the new one is complete: a failed
            // install must not leave the next one writing the programs in force.
            let next = epoch.wrapping_add(1);
            let res = install_filter(&skel, f.as_ref(), next)
                .map(|()| {
                    epoch = next;
                    f.as_ref().map(PacketFilter::label)
                })
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send_timeout(ReaderMsg::Filter(res), Duration::from_secs(2));
        }
        empty_drains = if out.drain(false) == 0 {
            empty_drains.saturating_add(1)
        } else {
            0
        };
        if last_stats.elapsed() >= STATS_PERIOD {
            last_stats = Instant::now();
            let reader = state.borrow().stats;
            let _ = tx.try_send(ReaderMsg::Stats {
                kernel: read_kernel_stats(&skel),
                reader,
            });
        }
    }

    // Detach first. An invocation already running on another CPU may still
    // finish after its link is gone, so drain until the counters stop moving:
    // then emitted == received + lost holds exactly.
    drop(links);
    let mut kernel = read_kernel_stats(&skel);
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(5));
        let consumed = out.drain(true);
        let now = read_kernel_stats(&skel);
        if consumed == 0 && now == kernel {
            break;
        }
        kernel = now;
    }
    let reader = state.borrow().stats;
    drop(ring);
    drop(skel);
    let _ = tx.send_timeout(ReaderMsg::Done { kernel, reader }, Duration::from_secs(2));
    Ok(())
}

/// The programs' settings (read-only data) and the sizes of their maps.
fn configure(open: &mut OpenHopscopeSkel<'_>, cfg: &TracerConfig) -> anyhow::Result<()> {
    use anyhow::Context;

    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.hs_cfg_wakeup_bytes = cfg.wakeup_bytes;
        ro.hs_cfg_quiet_reasons = quiet_reasons();
        ro.hs_cfg_drop_stack = u8::from(cfg.drop_stack);
        let snaplen = cfg.snaplen.min(abi::SNAPLEN_MAX);
        ro.hs_cfg_snaplen = snaplen;
        ro.hs_cfg_snap_room = snaplen.div_ceil(8).max(1) * 8;
        for (dst, ino) in ro.hs_cfg_scope_netns.iter_mut().zip(cfg.scope.inodes()) {
            *dst = ino;
        }
        ro.hs_cfg_scope_n_netns = cfg.scope.netns.len().min(scope::MAX) as u32;
        for (dst, words) in ro
            .hs_cfg_scope_ifnames
            .iter_mut()
            .zip(cfg.scope.ifname_words())
        {
            *dst = words;
        }
        ro.hs_cfg_scope_n_ifnames = cfg.scope.ifnames.len().min(scope::MAX) as u32;
    }
    if !cfg.drop_stack {
        open.maps
            .hs_stacks
            .set_max_entries(1)
            .context("sizing the stack map")?;
    }
    open.maps
        .hs_events
        .set_max_entries(cfg.ring_bytes)
        .context("sizing the ring buffer")?;
    open.maps
        .hs_packets
        .set_max_entries(cfg.max_packets)
        .context("sizing the packet map")?;
    Ok(())
}

/// Optional hooks whose tracepoint this kernel lacks are not loaded at all
/// (a program for a missing tp_btf target fails the whole load): what is
/// left out, and why.
fn leave_out_missing(open: &mut OpenHopscopeSkel<'_>) -> anyhow::Result<Vec<Degraded>> {
    let vmlinux = libbpf_rs::btf::Btf::from_vmlinux().ok();
    let has_tp = |name: &str| {
        vmlinux.as_ref().is_some_and(|b| {
            b.type_by_name::<libbpf_rs::btf::types::Typedef<'_>>(&format!("btf_trace_{name}"))
                .is_some()
        })
    };
    let mut missing: Vec<Degraded> = Vec::new();
    for info in HOOKS.iter().filter(|i| !i.required) {
        for tp in info.tracepoints.iter().filter(|tp| !has_tp(tp)) {
            let name = program_name(tp);
            let Some(mut prog) = open
                .open_object_mut()
                .progs_mut()
                .find(|p| p.name() == name.as_str())
            else {
                anyhow::bail!("the BPF object has no program {name}");
            };
            prog.set_autoload(false);
            missing.push(Degraded {
                hook: info.hook,
                error: format!("no tracepoint {tp} in this kernel"),
            });
        }
    }
    // tcp_send_reset fires for resets sent without a full socket (to a
    // closed port, from a time-wait socket) only since the kernel gave it an
    // event class of its own (trace_event_raw_tcp_send_reset in BTF; before
    // that it shared tcp_event_sk_skb and needed a socket).
    if has_tp("tcp_send_reset")
        && !vmlinux.as_ref().is_some_and(|b| {
            b.type_by_name::<libbpf_rs::btf::types::Struct<'_>>("trace_event_raw_tcp_send_reset")
                .is_some()
        })
    {
        missing.push(Degraded {
            hook: Hook::TcpSendReset,
            error: "this kernel's tcp_send_reset needs a socket: resets to closed ports \
                    are not seen"
                .into(),
        });
    }
    Ok(missing)
}

/// A failed load, with what to do about it.
fn load_error(e: libbpf_rs::Error) -> anyhow::Error {
    let hint = match (e.kind(), nix::unistd::geteuid().is_root()) {
        (libbpf_rs::ErrorKind::PermissionDenied, false) => {
            " (permission denied: hopscope needs root, or CAP_BPF and CAP_PERFMON)"
        }
        (libbpf_rs::ErrorKind::PermissionDenied, true) => {
            " (the verifier rejected a program; HOPSCOPE_LOG=debug shows its log)"
        }
        _ => " (HOPSCOPE_LOG=debug shows libbpf's log)",
    };
    anyhow::anyhow!("loading the BPF programs into the kernel failed{hint}: {e}")
}

/// Attaches the loaded programs one by one, in the hook table's order: the
/// core hooks are required, the others degrade (added to `degraded`).
fn attach(skel: &HopscopeSkel<'_>, degraded: &mut Vec<Degraded>) -> anyhow::Result<Vec<Link>> {
    let mut links: Vec<Link> = Vec::with_capacity(HOOKS.len());
    for info in HOOKS.iter() {
        for tp in info.tracepoints {
            let name = program_name(tp);
            let Some(prog) = skel
                .object()
                .progs_mut()
                .find(|p| p.name() == name.as_str())
            else {
                anyhow::bail!("the BPF object has no program {name}");
            };
            if !prog.autoload() {
                continue;
            }
            match prog.attach() {
                Ok(l) => links.push(l),
                Err(e) if !info.required => degraded.push(Degraded {
                    hook: info.hook,
                    error: e.to_string(),
                }),
                Err(e) => return Err(anyhow::anyhow!("attaching to tracepoint {tp} failed: {e}")),
            }
        }
    }
    Ok(links)
}

/// The ring buffer's reader: its callback decodes each record into the
/// batch (no blocking, no allocation once warm) and notes the drops'
/// stacks to read (`--drop-stack`).
fn ring_reader(
    skel: &HopscopeSkel<'_>,
    state: Rc<RefCell<Batcher>>,
    drop_stack: bool,
) -> anyhow::Result<RingBuffer<'static>> {
    use anyhow::Context;

    let mut rbb = RingBufferBuilder::new();
    let mut decoder = StreamDecoder::new();
    rbb.add(&skel.maps.hs_events, move |data: &[u8]| {
        let mut b = state.borrow_mut();
        b.stats.received += 1;
        match decoder.decode(data) {
            Ok(Some(ev)) => {
                if let HookData::Freed {
                    stack: stack @ 1.., ..
                } = ev.data
                {
                    if drop_stack {
                        b.stacks.push(stack);
                    }
                }
                b.batch.push(ev)
            }
            Ok(None) => decoder.take_snapshots(&mut b.snapshots),
            Err(_) => b.stats.decode_errors += 1,
        }
        0
    })?;
    rbb.build().context("setting up the ring buffer reader")
}

/// Where the ring's events go: the channel, with the stacks they name first.
struct Out<'a, 'obj> {
    skel: &'a HopscopeSkel<'obj>,
    ring: &'a RingBuffer<'static>,
    state: &'a Rc<RefCell<Batcher>>,
    tx: &'a Sender<ReaderMsg>,
    recycled: &'a Receiver<Vec<HopEvent>>,
}

impl Out<'_, '_> {
    /// Consumes what the ring holds, batch by batch, sending each batch
    /// (`block`: waiting for room, at the end; else counted as dropped when
    /// the consumer lags). Returns the records consumed.
    fn drain(&self, block: bool) -> i64 {
        let mut consumed = 0i64;
        loop {
            let n = self.ring.consume_raw_n(BATCH);
            consumed += i64::from(n.max(0));
            send_stacks(self.skel, &mut self.state.borrow_mut(), self.tx, block);
            send_batch(&mut self.state.borrow_mut(), self.tx, self.recycled, block);
            if n < BATCH as i32 {
                return consumed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hook table and the BPF object name the same programs: none is
    /// loaded without being attached, none listed is missing.
    #[test]
    fn every_program_is_in_the_hook_table_and_back() {
        let mut storage = MaybeUninit::uninit();
        let mut open = HopscopeSkelBuilder::default()
            .open(&mut storage)
            .expect("opening the BPF object");
        let mut in_object: Vec<String> = open
            .open_object_mut()
            .progs_mut()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        let mut in_table: Vec<String> = HOOKS
            .iter()
            .flat_map(|i| i.tracepoints.iter().map(|tp| program_name(tp)))
            .collect();
        in_object.sort();
        in_table.sort();
        assert_eq!(in_object, in_table);
        assert_eq!(in_table.len(), 21);
    }
}
