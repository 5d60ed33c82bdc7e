//! Userspace pipeline cost: ring-buffer bytes → `HopEvent` → correlator.
//!
//! The input is a synthetic stream of `EVENTS` raw records shaped like what
//! the lab produces: every packet crosses c1 eth0 → vc1 → (br0) → vc2 → c2
//! eth0 (replies the other way), with the hook order veth really gives per
//! device pair (net_dev_queue on the sender, netif_rx on the peer,
//! net_dev_xmit on the sender once the driver returned, netif_receive_skb on
//! the peer), then consume_skb: 9 events per packet. Two packets are in
//! flight at once (one per CPU of a 2-core machine) and their events
//! interleave. Traffic is ~1000 flows: TCP (handshake, then data one way and
//! ACKs back), UDP request/response and ICMP echo request/reply.
//!
//! Before measuring, a counting global allocator checks how many heap
//! allocations decode and decode+correlate make per event in steady state.
//!
//! The explorer's frames are measured on that stream's model and on models
//! of 1000 flows where one flow (one iperf3-like connection) holds most of
//! 8,192 or 65,536 packets kept: a frame must cost the same at both sizes.
//! `trace --json` is measured as decode + correlate + the JSON sink writing
//! through trace's buffered writer to `io::sink`.
//!
//! Run: `cargo bench --bench pipeline` (`-- render` for the frames only;
//! `-- json`, `-- decode`; the topology group needs root).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hopscope::app::{App, Input};
use hopscope::bpf::abi::{
    dev_bytes, event_bytes, hop_bytes, RawDev, RawEvent, RawHop, RawTuple, ABI_VERSION, EVENT_SIZE,
    REC_DEV, REC_HOP,
};
use hopscope::correlate::{Correlator, CorrelatorConfig, Sink};
use hopscope::event::stream::StreamDecoder;
use hopscope::facts::{Fact, FactSink};
use hopscope::model::{Model, ModelConfig};
use hopscope::output::json::JsonSink;
use hopscope::output::Filter;
use hopscope::topology::links::{LinkInfo, LinkKind, LinkRef};
use hopscope::ui::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

// ---------------------------------------------------------------------------
// Allocation counter.

/// `System`, counting every allocation (alloc, alloc_zeroed and realloc).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the arguments it was given,
// so the GlobalAlloc contract (valid, suitably aligned blocks; deallocation
// with the layout of the allocation) is upheld by `System`. The counter is an
// atomic and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller guarantees `layout` has a non-zero size, as
        // System::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence
        // from System) with `layout`, and that `new_size` is valid.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` was allocated by this allocator
        // (hence by System) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Synthetic stream.

const EVENTS: usize = 1_000_000;
const FLOWS: usize = 1000;
/// Mean spacing of events: about 1.4 M events/s, an iperf3-like load.
const EVENT_GAP_NS: u64 = 700;
/// `hopscope trace` calls `Correlator::gc` every 100 ms.
const GC_PERIOD_NS: u64 = 100_000_000;

const HOOK_QUEUE: u8 = 1;
const HOOK_XMIT: u8 = 2;
const HOOK_RX: u8 = 3;
const HOOK_RECEIVE: u8 = 4;
const HOOK_CONSUME: u8 = 7;

const F_TUPLE: u16 = 1;
const F_NEW: u16 = 2;
const F_TASK: u16 = 4;

const L3_IPV4: u8 = 1;
const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;

const C1: [u8; 4] = [198, 18, 0, 2];
const C2: [u8; 4] = [198, 18, 0, 3];

#[derive(Clone, Copy)]
struct Dev {
    netns_ino: u32,
    cookie: u64,
    ifindex: u32,
    name: &'static str,
}

const C1_ETH0: Dev = Dev {
    netns_ino: 4_026_532_301,
    cookie: 4097,
    ifindex: 2,
    name: "eth0",
};
const VC1: Dev = Dev {
    netns_ino: 4_026_532_300,
    cookie: 4096,
    ifindex: 4,
    name: "vc1",
};
const VC2: Dev = Dev {
    netns_ino: 4_026_532_300,
    cookie: 4096,
    ifindex: 5,
    name: "vc2",
};
const C2_ETH0: Dev = Dev {
    netns_ino: 4_026_532_302,
    cookie: 4098,
    ifindex: 2,
    name: "eth0",
};

/// Veth pairs crossed by a request (c1 → c2); a reply crosses them reversed.
const REQUEST_PATH: [(Dev, Dev); 2] = [(C1_ETH0, VC1), (VC2, C2_ETH0)];
const REPLY_PATH: [(Dev, Dev); 2] = [(C2_ETH0, VC2), (VC1, C1_ETH0)];

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
    Icmp,
}

struct FlowState {
    kind: Kind,
    index: u16,
    packets: u32,
    seq: [u32; 2],
    ip_id: [u16; 2],
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn name16(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn addr16(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a);
    b
}

/// Headers and size of the next packet of `flow`, and whether it is a request.
fn next_packet(flow: &mut FlowState) -> (RawTuple, u32, bool) {
    let n = flow.packets;
    flow.packets += 1;
    let request = n % 2 == 0;
    let dir = usize::from(!request);
    let (src, dst) = if request { (C1, C2) } else { (C2, C1) };
    flow.ip_id[dir] = flow.ip_id[dir].wrapping_add(1);
    let mut t = RawTuple {
        saddr: addr16(src),
        daddr: addr16(dst),
        ethertype: 0x0800,
        l3: L3_IPV4,
        ttl: 64,
        ip_id: flow.ip_id[dir],
        ..RawTuple::default()
    };
    let len = match flow.kind {
        Kind::Tcp => {
            let (client, server) = (40_000 + flow.index, 5201);
            (t.sport, t.dport) = if request {
                (client, server)
            } else {
                (server, client)
            };
            t.l4_proto = TCP;
            t.tcp_flags = match n {
                0 => 0x02,            // SYN
                1 => 0x12,            // SYN-ACK
                _ if request => 0x18, // PSH-ACK, data
                _ => 0x10,            // ACK
            };
            let payload = if request && n >= 2 { 1448 } else { 0 };
            t.tcp_seq = flow.seq[dir];
            t.tcp_ack = flow.seq[1 - dir];
            flow.seq[dir] = flow.seq[dir].wrapping_add(payload.max(u32::from(n < 2)));
            52 + payload
        }
        Kind::Udp => {
            let (client, server) = (50_000 + flow.index, 7000);
            (t.sport, t.dport) = if request {
                (client, server)
            } else {
                (server, client)
            };
            t.l4_proto = UDP;
            t.l4_len = if request { 64 } else { 200 };
            20 + u32::from(t.l4_len)
        }
        Kind::Icmp => {
            t.l4_proto = ICMP;
            t.icmp_type = if request { 8 } else { 0 };
            t.icmp_id = flow.index;
            t.icmp_seq = (n / 2) as u16;
            84
        }
    };
    t.ip_len = len as u16;
    (t, len, request)
}

/// One ring record: a full event, or a compact hop whose headers did not
/// change since the packet's last full one (as the kernel sends them).
// Built by value once per record of the synthetic stream; boxing the full
// event would add an allocation per record to the set-up.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum Rec {
    Full(RawEvent),
    Hop(RawHop),
}

impl Rec {
    fn set_ts(&mut self, ts: u64) {
        match self {
            Rec::Full(e) => e.ts_ns = ts,
            Rec::Hop(h) => h.ts_ns = ts,
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Rec::Full(e) => event_bytes(e),
            Rec::Hop(h) => hop_bytes(h),
        }
    }
}

/// The devices' names, as the kernel sends them before their first hop.
const DEVICES: [Dev; 4] = [C1_ETH0, VC1, VC2, C2_ETH0];

/// Device records at the head of every stream (slots that are no event).
const DEVICE_RECORDS: usize = DEVICES.len();

/// The 9 records of one packet's life, in kernel order: its first sighting
/// and its end in full, its other device hops compact (nothing rewrites
/// its headers on the way).
fn packet_events(
    id: u64,
    skb: u64,
    cpu: u32,
    tuple: RawTuple,
    len: u32,
    request: bool,
    kind: Kind,
) -> Vec<Rec> {
    let base = RawEvent {
        abi_version: ABI_VERSION,
        cpu,
        packet_id: id,
        skb_addr: skb,
        len,
        ..RawEvent::default()
    };
    let on_dev = |hook: u8, dev: Dev, flags: u16| {
        let mut e = base;
        e.hook = hook;
        e.flags = flags;
        e.netns_ino = dev.netns_ino;
        e.netns_cookie = dev.cookie;
        e.ifindex = dev.ifindex;
        e.ifname = name16(dev.name);
        if flags & F_TUPLE != 0 {
            e.tuple = tuple;
        }
        e
    };
    let hop = |hook: u8, dev: Dev| {
        Rec::Hop(RawHop {
            kind: REC_HOP,
            hook,
            cpu: cpu as u16,
            packet_id: id,
            skb_addr: skb,
            netns_ino: dev.netns_ino,
            ifindex: dev.ifindex,
            len,
            ..RawHop::default()
        })
    };
    let path = if request { REQUEST_PATH } else { REPLY_PATH };
    let mut out = Vec::with_capacity(9);
    for (i, (tx, rx)) in path.into_iter().enumerate() {
        if i > 0 {
            out.extend([
                hop(HOOK_QUEUE, tx),
                hop(HOOK_RX, rx),
                hop(HOOK_XMIT, tx),
                hop(HOOK_RECEIVE, rx),
            ]);
            continue;
        }
        let mut queue = on_dev(HOOK_QUEUE, tx, F_TUPLE);
        if i == 0 {
            queue.flags |= F_NEW;
            // Requests are sent by a local task; replies by the kernel.
            if request {
                queue.flags |= F_TASK;
                queue.pid = 4242;
                queue.tid = 4242;
                queue.comm = name16(match kind {
                    Kind::Tcp => "iperf3",
                    Kind::Udp => "dig",
                    Kind::Icmp => "ping",
                });
            }
        }
        out.push(Rec::Full(queue));
        out.extend([hop(HOOK_RX, rx), hop(HOOK_XMIT, tx), hop(HOOK_RECEIVE, rx)]);
    }
    let mut end = base;
    end.hook = HOOK_CONSUME;
    out.push(Rec::Full(end));
    out
}

/// `EVENTS` records, each in a slot of `EVENT_SIZE` bytes (a compact record
/// padded), after the device records: slots keep the stream indexable.
fn synthetic_stream() -> Vec<u8> {
    stream(EVENTS, |rng| Some((rng.next() % FLOWS as u64) as usize))
}

/// Packets kept by the big flow's model: 999 small flows of
/// `SMALL_FLOW_PACKETS` packets each, the rest in one TCP connection.
const SMALL_FLOW_PACKETS: usize = 4;

/// `packets` packets over `FLOWS` flows, one of which (flow 0, TCP, like
/// one iperf3 connection) holds all but `SMALL_FLOW_PACKETS` per other
/// flow. The small flows come first, so the big one is the newest.
fn big_flow_stream(packets: usize) -> Vec<u8> {
    let small = (FLOWS - 1) * SMALL_FLOW_PACKETS;
    assert!(packets > small, "the big flow holds most packets");
    let mut n = 0;
    stream(packets * 9, move |_| {
        let f = match n {
            _ if n < small => 1 + n % (FLOWS - 1),
            _ if n < packets => 0,
            _ => return None,
        };
        n += 1;
        Some(f)
    })
}

/// At most `max_events` records, packet after packet of the flows `pick`
/// names (`None`: no more packets).
fn stream(max_events: usize, mut pick: impl FnMut(&mut Rng) -> Option<usize>) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut flows: Vec<FlowState> = (0..FLOWS)
        .map(|i| FlowState {
            kind: match i % 10 {
                0..=3 => Kind::Tcp,
                4..=6 => Kind::Udp,
                _ => Kind::Icmp,
            },
            index: i as u16,
            packets: 0,
            seq: [1_000_000 + i as u32 * 7919, 2_000_000 + i as u32 * 104_729],
            ip_id: [i as u16 * 31, i as u16 * 17],
        })
        .collect();
    let mut bytes = Vec::with_capacity((max_events + DEVICE_RECORDS) * EVENT_SIZE);
    for d in DEVICES {
        let mut r = RawDev {
            kind: REC_DEV,
            netns_ino: d.netns_ino,
            netns_cookie: d.cookie,
            ifindex: d.ifindex,
            ..RawDev::default()
        };
        r.ifname = name16(d.name);
        push_slot(&mut bytes, dev_bytes(&r));
    }
    let mut ts: u64 = 1_000_000_000;
    let mut next_id: u64 = 1;
    let mut events = 0;
    let mut more = true;
    while events < max_events && more {
        // Two packets in flight, one per CPU; their events interleave.
        let mut pair: [Vec<Rec>; 2] = Default::default();
        for (cpu, slot) in pair.iter_mut().enumerate() {
            let Some(f) = pick(&mut rng) else {
                more = false;
                break;
            };
            let flow = &mut flows[f];
            let kind = flow.kind;
            let (tuple, len, request) = next_packet(flow);
            let id = next_id;
            next_id += 1;
            // skbs come from a slab: addresses are reused.
            let skb = 0xffff_8880_1000_0000 + (id % 4096) * 0x100;
            *slot = packet_events(id, skb, cpu as u32, tuple, len, request, kind);
        }
        for i in 0..9 {
            for evs in pair.iter_mut().filter(|e| !e.is_empty()) {
                if events == max_events {
                    break;
                }
                let ev = &mut evs[i];
                ts += EVENT_GAP_NS / 2 + rng.next() % EVENT_GAP_NS;
                ev.set_ts(ts);
                push_slot(&mut bytes, ev.bytes());
                events += 1;
            }
        }
    }
    bytes
}

/// `rec` in a slot of `EVENT_SIZE` bytes.
fn push_slot(bytes: &mut Vec<u8>, rec: &[u8]) {
    bytes.extend_from_slice(rec);
    bytes.resize(bytes.len() + EVENT_SIZE - rec.len(), 0);
}

/// The events of a stream: its slots less the device records.
fn events_in(stream: &[u8]) -> usize {
    stream.len() / EVENT_SIZE - DEVICE_RECORDS
}

// ---------------------------------------------------------------------------
// Pipeline.

struct Null;
impl Sink for Null {}

/// Decodes and correlates `records`, calling gc like `hopscope trace` does.
fn run_pipeline(dec: &mut StreamDecoder, corr: &mut Correlator, records: &[u8], last_gc: &mut u64) {
    run_into(dec, corr, records, last_gc, &mut Null);
}

/// Decodes (the stream decoder keeps headers and names across calls) and
/// correlates `records` into `sink` (the explorer's model, or nothing).
fn run_into(
    dec: &mut StreamDecoder,
    corr: &mut Correlator,
    records: &[u8],
    last_gc: &mut u64,
    sink: &mut impl Sink,
) {
    for rec in records.chunks_exact(EVENT_SIZE) {
        let ev = match dec.decode(rec) {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(e) => panic!("synthetic record does not decode: {e}"),
        };
        corr.on_event(&ev, sink);
        if ev.ts_ns.saturating_sub(*last_gc) >= GC_PERIOD_NS {
            *last_gc = ev.ts_ns;
            corr.gc(ev.ts_ns, sink);
        }
    }
}

/// A model built from the whole of `stream`, and the correlator that fed it.
fn model_of(stream: &[u8], cfg: ModelConfig) -> (Correlator, Model) {
    let mut corr = Correlator::new(CorrelatorConfig::default());
    let mut model = Model::new(cfg);
    let mut last_gc = 0;
    run_into(
        &mut StreamDecoder::new(),
        &mut corr,
        stream,
        &mut last_gc,
        &mut model,
    );
    (corr, model)
}

/// Allocations per event in the second half of the stream, after the first
/// half warmed the correlator's maps and visit pool up.
fn check_allocations(stream: &[u8]) {
    let n = events_in(stream);
    let half = (stream.len() / EVENT_SIZE / 2) * EVENT_SIZE;
    let (warm, measured) = stream.split_at(half);
    let measured_events = (measured.len() / EVENT_SIZE) as f64;

    let mut dec = StreamDecoder::new();
    for rec in warm.chunks_exact(EVENT_SIZE) {
        let _ = black_box(dec.decode(black_box(rec)));
    }
    let before = allocations();
    for rec in measured.chunks_exact(EVENT_SIZE) {
        let _ = black_box(dec.decode(black_box(rec)));
    }
    let decode_allocs = allocations() - before;

    let mut dec = StreamDecoder::new();
    let mut corr = Correlator::new(CorrelatorConfig::default());
    let mut last_gc = 0;
    let before = allocations();
    run_pipeline(&mut dec, &mut corr, warm, &mut last_gc);
    let warm_allocs = allocations() - before;
    let before = allocations();
    run_pipeline(&mut dec, &mut corr, measured, &mut last_gc);
    let pipeline_allocs = allocations() - before;

    // The explorer's model, capped so the warm-up fills it: from then on
    // finished packets reuse the buffers of the ones they evict.
    let mut mcorr = Correlator::new(CorrelatorConfig::default());
    let mut model = Model::new(ModelConfig {
        max_packets: 8192,
        ..ModelConfig::default()
    });
    let mut mgc = 0;
    let mut mdec = StreamDecoder::new();
    run_into(&mut mdec, &mut mcorr, warm, &mut mgc, &mut model);
    let before = allocations();
    run_into(&mut mdec, &mut mcorr, measured, &mut mgc, &mut model);
    let model_allocs = allocations() - before;
    println!(
        "allocations per event with the model (steady state, 8192 packets kept): {:.4} ({model_allocs} in {measured_events} events)",
        model_allocs as f64 / measured_events
    );

    let st = corr.stats();
    println!(
        "synthetic stream: {} events, {} packets, {} flows, {} copies, {} orphan ends, {} in flight",
        st.events,
        st.packets,
        st.flows,
        st.copies,
        st.orphan_ends,
        corr.packets_in_flight()
    );
    assert_eq!(st.events as usize, n, "every record decodes");
    assert_eq!(st.orphan_ends, 0, "every end event matches a packet");
    println!(
        "allocations per event (steady state): {:.4} \
         ({pipeline_allocs} in {measured_events} events of decode+correlate, \
         {decode_allocs} in decode alone; {warm_allocs} while warming up)",
        pipeline_allocs as f64 / measured_events,
    );
}

fn pipeline(c: &mut Criterion) {
    let stream = synthetic_stream();
    let n = events_in(&stream) as u64;
    check_allocations(&stream);

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(n));
    g.sampling_mode(SamplingMode::Flat);
    let mut dec = StreamDecoder::new();
    g.bench_function("1M events", |b| {
        b.iter(|| {
            for rec in stream.chunks_exact(EVENT_SIZE) {
                let _ = black_box(dec.decode(black_box(rec)));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("decode+correlate");
    g.throughput(Throughput::Elements(n));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("1M events", |b| {
        b.iter(|| {
            let mut corr = Correlator::new(CorrelatorConfig::default());
            let mut last_gc = 0;
            run_pipeline(
                &mut StreamDecoder::new(),
                &mut corr,
                black_box(&stream),
                &mut last_gc,
            );
            black_box(corr.stats().packets)
        })
    });
    g.finish();

    // The explorer's path: the model stores every finished packet (a clone
    // per packet, not per event) and evicts the oldest beyond its cap.
    let mut g = c.benchmark_group("decode+correlate+model");
    g.throughput(Throughput::Elements(n));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("1M events", |b| {
        b.iter(|| {
            let mut corr = Correlator::new(CorrelatorConfig::default());
            let mut model = Model::new(ModelConfig::default());
            let mut last_gc = 0;
            run_into(
                &mut StreamDecoder::new(),
                &mut corr,
                black_box(&stream),
                &mut last_gc,
                &mut model,
            );
            black_box(model.packet_count())
        })
    });
    g.finish();

    // One frame of the explorer over a full model (1000 flows, 65,536
    // packets kept): what each redraw costs, at most 30 times a second.
    let (_, model) = model_of(&stream, ModelConfig::default());
    let mut g = c.benchmark_group("render 160x45");
    for (name, keys) in [
        ("flows", &[][..]),
        ("packets", &[KeyCode::Enter][..]),
        ("hop graph", &[KeyCode::Enter, KeyCode::Tab][..]),
        (
            "path statistics",
            &[KeyCode::Enter, KeyCode::Tab, KeyCode::Tab][..],
        ),
    ] {
        let mut app = App::default();
        for k in keys {
            app.update(&model, Input::Key(KeyEvent::new(*k, KeyModifiers::NONE)));
        }
        let mut term = Terminal::new(TestBackend::new(160, 45)).expect("test backend");
        g.bench_function(name, |b| {
            b.iter(|| {
                term.draw(|f| ui::render(f, &model, &mut app, Theme { color: true }))
                    .expect("draw");
            })
        });
    }
    g.finish();

    big_flow_frames(c);
    json(c, &stream);
}

/// One frame with the cursor on a packet of a flow that holds most of the
/// packets: 1000 flows, and 8,192 or 65,536 packets kept. The frame must not
/// cost more when more packets are kept.
fn big_flow_frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("render big flow 160x45");
    for kept in [8192, 65_536] {
        let stream = big_flow_stream(kept);
        let (mut corr, mut model) = model_of(
            &stream,
            ModelConfig {
                max_packets: kept,
                ..ModelConfig::default()
            },
        );
        corr.flush(&mut model);
        let big = model
            .flows()
            .max_by_key(|f| f.packets.len())
            .expect("flows");
        println!(
            "big-flow model: {} flows, {} packets kept, {} in the big flow",
            model.flow_count(),
            model.packet_count(),
            big.packets.len()
        );
        assert_eq!(model.flow_count(), FLOWS);
        let big = big.id;
        // Packets: the cursor near the bottom of the big flow's list (the
        // oldest packets). Hops: the hops of that packet.
        let to_packet = [KeyCode::Enter, KeyCode::End, KeyCode::Up, KeyCode::Up];
        let to_hops = [
            KeyCode::Enter,
            KeyCode::End,
            KeyCode::Up,
            KeyCode::Up,
            KeyCode::Enter,
        ];
        // The graph and the path statistics are cached while the flow's
        // packets do not change; under load they change before every
        // frame, which "rebuilt" measures (the cache dropped each time).
        let graph = [KeyCode::Enter, KeyCode::Tab];
        let paths = [KeyCode::Enter, KeyCode::Tab, KeyCode::Tab];
        for (name, keys, rebuilt) in [
            ("flows", &[][..], false),
            ("packets", &to_packet[..], false),
            ("hops", &to_hops[..], false),
            ("hop graph rebuilt", &graph[..], true),
            ("path statistics rebuilt", &paths[..], true),
        ] {
            let mut app = App::default();
            app.clamp(&model);
            assert_eq!(app.flows.selected, Some(big), "the big flow is the newest");
            for k in keys {
                app.update(&model, Input::Key(KeyEvent::new(*k, KeyModifiers::NONE)));
            }
            let mut term = Terminal::new(TestBackend::new(160, 45)).expect("test backend");
            g.bench_function(format!("{name}/{kept}"), |b| {
                b.iter(|| {
                    if rebuilt {
                        app.cache = Default::default();
                    }
                    term.draw(|f| ui::render(f, &model, &mut app, Theme { color: true }))
                        .expect("draw");
                })
            });
        }
    }
    g.finish();
}

/// `trace --json`: the synthetic stream decoded, correlated and written
/// as JSON lines into the buffered writer `trace` uses, over `io::sink`
/// (so formatting and buffering count, not the output device). Allocations
/// per event are counted over the second half, after the first half warmed
/// the correlator up.
fn json(c: &mut Criterion, stream: &[u8]) {
    let n = events_in(stream) as u64;
    // What `trace --json` writes to: a 64 KiB BufWriter over a boxed
    // writer (here one that discards what it is given).
    let sink = || {
        let out: Box<dyn io::Write + Send> = Box::new(io::sink());
        let mut s = JsonSink::new(
            io::BufWriter::with_capacity(64 * 1024, out),
            Filter::default(),
        );
        for f in lab_facts() {
            s.fact(&f);
        }
        s
    };
    let half = (stream.len() / EVENT_SIZE / 2) * EVENT_SIZE;
    let (warm, measured) = stream.split_at(half);
    let mut corr = Correlator::new(CorrelatorConfig::default());
    let mut out = sink();
    let mut last_gc = 0;
    let mut dec = StreamDecoder::new();
    run_into(&mut dec, &mut corr, warm, &mut last_gc, &mut out);
    let before = allocations();
    run_into(&mut dec, &mut corr, measured, &mut last_gc, &mut out);
    let allocs = allocations() - before;
    let measured_events = (measured.len() / EVENT_SIZE) as f64;
    println!(
        "allocations per event with the JSON sink (steady state): {:.4} ({allocs} in {measured_events} events)",
        allocs as f64 / measured_events
    );
    // The bytes written, to compare formatters.
    let mut counted = JsonSink::new(Vec::new(), Filter::default());
    for f in lab_facts() {
        counted.fact(&f);
    }
    let mut corr = Correlator::new(CorrelatorConfig::default());
    let mut last_gc = 0;
    run_into(
        &mut StreamDecoder::new(),
        &mut corr,
        &stream[..stream.len().min(10_000 * EVENT_SIZE)],
        &mut last_gc,
        &mut counted,
    );
    println!(
        "JSON of the first 10,000 events: {} bytes",
        counted.into_inner().len()
    );

    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(n));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("decode+correlate+json 1M events", |b| {
        b.iter(|| {
            let mut corr = Correlator::new(CorrelatorConfig::default());
            let mut out = sink();
            let mut last_gc = 0;
            run_into(
                &mut StreamDecoder::new(),
                &mut corr,
                black_box(stream),
                &mut last_gc,
                &mut out,
            );
            black_box(out.error.is_none())
        })
    });
    g.finish();
}

/// What `trace --json` is told of the lab's devices: namespace names and
/// links (the veth pairs and the bridge), so hop records carry names.
fn lab_facts() -> Vec<Fact> {
    let mut t: Vec<Fact> = [
        (C1_ETH0.netns_ino, "hs-c1"),
        (VC1.netns_ino, "hs-br"),
        (C2_ETH0.netns_ino, "hs-c2"),
    ]
    .into_iter()
    .map(|(inode, name)| Fact::NetnsName {
        inode,
        name: name.to_owned(),
    })
    .collect();
    let link = |d: Dev, peer: Dev, master: Option<u32>| LinkInfo {
        netns: d.netns_ino,
        ifindex: d.ifindex,
        ifname: d.name.to_owned(),
        kind: LinkKind::Veth,
        kind_name: Some("veth".to_owned()),
        master: master.map(|ifindex| LinkRef {
            netns: d.netns_ino,
            ifindex,
            ifname: "br0".to_owned(),
        }),
        peer: Some(LinkRef {
            netns: peer.netns_ino,
            ifindex: peer.ifindex,
            ifname: peer.name.to_owned(),
        }),
        parent: None,
        vlan_id: None,
        vxlan_id: None,
        mtu: Some(1500),
        up: true,
    };
    t.push(Fact::Link(link(C1_ETH0, VC1, None)));
    t.push(Fact::Link(link(VC1, C1_ETH0, Some(3))));
    t.push(Fact::Link(link(VC2, C2_ETH0, Some(3))));
    t.push(Fact::Link(link(C2_ETH0, VC2, None)));
    t
}

/// One topology lookup: the namespace scan (/proc and bind mounts) and the
/// rtnetlink dump of every namespace found. Needs root (setns). Nothing is
/// read unless the group is selected (`cargo bench -- render` enters no
/// namespace).
fn topology(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("topology lookups: skipped (needs root)");
        return;
    }
    let mut handles: Option<Vec<hopscope::topology::links::NetnsHandle>> = None;
    let mut handles = move || -> Vec<hopscope::topology::links::NetnsHandle> {
        handles
            .get_or_insert_with(|| {
                let handles: Vec<_> = hopscope::topology::names::scan()
                    .iter()
                    .map(|e| hopscope::topology::links::NetnsHandle {
                        inode: e.inode,
                        path: e.path.clone(),
                    })
                    .collect();
                let (links, _) = hopscope::topology::links::read_links(&handles);
                println!(
                    "topology: {} namespaces, {} links",
                    handles.len(),
                    links.len()
                );
                handles
            })
            .clone()
    };
    let mut g = c.benchmark_group("topology lookup");
    g.bench_function("scan namespace names", |b| {
        b.iter(|| black_box(hopscope::topology::names::scan().len()))
    });
    g.bench_function("read links of every namespace", |b| {
        let handles = handles();
        b.iter(|| black_box(hopscope::topology::links::read_links(&handles).0.len()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = pipeline, topology
}
criterion_main!(benches);
