//! Correlator: hop events → packets (with visits), flows, roles and copies.
//!
//! Pure and clock-free: "now" is the newest event timestamp, or what the
//! caller passes to [`Correlator::gc`]. Memory is bounded by
//! [`CorrelatorConfig`]: in-flight packets, flows, visits per packet and the
//! copy index all have caps, and finished packets return their visit buffers
//! to a pool, so steady-state operation does not allocate per event.
//!
//! Kernel facts handled here:
//! - `net_dev_xmit` fires after the driver returned, so on veth it comes
//!   *after* the peer's `netif_rx`. It is folded into the earlier transmit
//!   visit of the same device, not into the current visit.
//! - Bridge flooding, NAT helpers and reallocations make new skbs with the
//!   same L3/L4 identity ("copies"). They get their own packet id and are
//!   linked to the origin by identity within a short window.

pub mod flow;
pub mod outcome;
pub mod path;
pub mod rewrite;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;

pub use flow::{Flow, FlowAlias, FlowId, FlowKey, FlowProto, FlowView, Role};
pub use outcome::Outcome;
pub use rewrite::Rewrite;

use crate::event::drop_reason::DropReasons;
use crate::event::{
    Device, Headers, Hook, HookData, HopEvent, Link, Outer, PacketId, RouteResult, Task, L3, L4,
    NUD_INCOMPLETE,
};

/// Limits that bound the correlator's memory.
#[derive(Debug, Clone, Copy)]
pub struct CorrelatorConfig {
    /// Packets followed at once; the oldest are flushed beyond this.
    pub max_packets: usize,
    /// Flows remembered; the least recently seen are forgotten beyond this.
    pub max_flows: usize,
    /// Visits kept per packet; later ones are counted, not stored.
    pub max_visits: usize,
    /// A packet with no event for this long is flushed as unfinished.
    pub packet_idle_ns: u64,
    /// Window in which a same-identity packet is a copy of another.
    pub copy_window_ns: u64,
    /// cgroup v2 id whose sockets' flows are marked `owned` (0: none).
    pub owner_cgroup: u64,
    /// A packet that reached a socket, or ended while a clone still held
    /// its data, is finished this long after its last event: TCP and UDP
    /// free what they delivered without a tracepoint, and a raw or ping
    /// socket reads its clone after the original is gone. Half a second,
    /// the text mode's reorder window: a loaded machine (or an emulated
    /// CPU) schedules the reader well after 150 ms.
    pub settle_ns: u64,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            max_packets: 65_536,
            max_flows: 16_384,
            max_visits: 64,
            packet_idle_ns: 2_000_000_000,
            copy_window_ns: 50_000_000,
            owner_cgroup: 0,
            settle_ns: 500_000_000,
        }
    }
}

/// Set of hooks, as a bitmask of [`Hook::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookSet(pub u32);

impl HookSet {
    pub fn insert(&mut self, h: Hook) {
        self.0 |= 1 << h.index();
    }
    pub fn contains(self, h: Hook) -> bool {
        self.0 & (1 << h.index()) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Hook> {
        Hook::all().filter(move |h| self.contains(*h))
    }
}

/// Consecutive events of one packet on one device.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    pub device: Device,
    pub hooks: HookSet,
    pub first_ts: u64,
    pub last_ts: u64,
    /// When a capture on this device (tcpdump) sees the packet: on receive
    /// at `netif_receive_skb` (after `netif_rx` queued it, perhaps on
    /// another CPU), else at the visit's first hook (a transmit is tapped
    /// between `net_dev_queue` and the driver).
    pub tap_ts: u64,
    pub len: u32,
    /// Headers as seen on this device (NAT may change them between visits).
    pub headers: Option<Headers>,
    pub xmit_rc: Option<i32>,
    pub task: Option<Task>,
    /// The packet's addresses or ports changed since its previous visit
    /// (NAT between the two).
    pub rewrite: Option<Rewrite>,
    /// The tunnel it travelled in here (an underlay hop).
    pub outer: Option<Outer>,
    /// No tracepoint shows this step: the packet was found here at its end
    /// or at a socket (a macvlan or VLAN device's rx handler, say).
    pub inferred: bool,
}

/// A socket took the packet in (see [`Hook::is_socket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketSeen {
    pub hook: Hook,
    /// It carried data for the socket (not a pure TCP ACK).
    pub data: bool,
}

/// How a packet's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// consume_skb: normal end of life.
    Consumed { ts: u64 },
    /// kfree_skb, with the kernel's drop reason value and code address, and
    /// the id (+1) of its kernel stack with `--drop-stack` (0: none).
    Dropped {
        ts: u64,
        reason: u32,
        location: u64,
        stack: u32,
    },
    /// No end event arrived in time (a free without tracepoint, or lost).
    Unseen,
}

/// One skb's life.
#[derive(Debug)]
pub struct Packet {
    pub id: PacketId,
    pub flow: Option<FlowId>,
    pub role: Option<Role>,
    /// Headers at the first sighting that had them.
    pub headers: Option<Headers>,
    pub first_ts: u64,
    pub last_ts: u64,
    pub visits: Vec<Visit>,
    /// Visits beyond `max_visits`, counted only.
    pub visits_dropped: u32,
    pub events: u32,
    pub copy_of: Option<PacketId>,
    /// The task that sent it, when seen in its context.
    pub sender: Option<Task>,
    /// The task that received it from a socket.
    pub receiver: Option<Task>,
    pub end: Option<End>,
    /// The ICMP error (type, code) the kernel sent because of it.
    pub icmp_error: Option<(u8, u8)>,
    /// A failed route lookup for it: (table, error).
    pub route_error: Option<(u32, i32)>,
    /// Its newest headers (NAT may have rewritten the first ones).
    pub current: Option<Headers>,
    /// A socket took it in (or the clone a raw or ping socket got).
    pub socket: Option<SocketSeen>,
    /// A software GSO segment of that packet: (parent, index from 1, count).
    pub segment_of: Option<(PacketId, u16, u16)>,
    /// This GSO packet was cut into that many segments (they carry on).
    pub segmented: Option<u16>,
    /// Where the skb was when it ended, if no visit shows it.
    pub end_device: Option<Device>,
    /// It ended (or reached a socket) outside the kernel's scope.
    pub end_outside: bool,
    /// TCP merged its payload into that packet's before the socket took it
    /// (delivered with it).
    pub coalesced_into: Option<PacketId>,
    /// How it ended, decided once when it finished ([`Outcome::decide`]).
    pub outcome: Outcome,
}

/// Where an annotation belongs: the packet it names (or was matched to),
/// and the device where it happened (the packet's, for a route lookup
/// matched to it; else the event's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Annotation {
    pub packet: Option<PacketId>,
    pub device: Option<Device>,
}

impl Clone for Packet {
    fn clone(&self) -> Self {
        Packet {
            visits: self.visits.clone(),
            ..*self
        }
    }

    /// Reuses `self`'s visit buffer (the model recycles evicted packets).
    fn clone_from(&mut self, src: &Self) {
        let mut visits = std::mem::take(&mut self.visits);
        visits.clear();
        visits.extend_from_slice(&src.visits);
        *self = Packet { visits, ..*src };
    }
}

/// What the correlator tells about one event.
#[derive(Debug, Clone, Copy)]
pub struct HopContext {
    pub flow: Option<FlowId>,
    pub role: Option<Role>,
    /// Index of the visit this event was folded into.
    pub visit: usize,
    pub copy_of: Option<PacketId>,
    /// The flow is marked owned (see [`CorrelatorConfig::owner_cgroup`]).
    pub owned: bool,
    /// This event showed the packet's addresses or ports rewritten (NAT)
    /// since the event before that had headers.
    pub rewrite: Option<Rewrite>,
    /// The visit is inferred (no tracepoint showed the device; see
    /// [`Visit::inferred`]).
    pub inferred: bool,
    /// A software GSO segment: (parent, index from 1, count).
    pub segment_of: Option<(PacketId, u16, u16)>,
}

/// Receives the correlator's output.
pub trait Sink {
    /// Every event, with its packet's context, in arrival order.
    fn hop(&mut self, _ev: &HopEvent, _ctx: &HopContext, _flow: Option<&Flow>) {}
    /// A packet ended (or was flushed); its visits are complete.
    fn packet_done(&mut self, _packet: &Packet, _flow: Option<&Flow>) {}
    /// An annotation (ICMP error sent, TCP reset or retransmission), with
    /// the packet it names if that packet is followed, and its flow.
    fn annotation(&mut self, _ev: &HopEvent, _at: &Annotation, _flow: Option<&Flow>) {}
}

/// Identity of a packet's contents, used to link copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CopyKey {
    l3: L3,
    ip_id: u16,
    flow_label: u32,
    l4: (u8, u32, u32),
}

fn copy_key(h: &Headers) -> CopyKey {
    let l4 = match h.l4 {
        L4::Tcp {
            seq, ack, flags, ..
        } => (6, seq, ack ^ u32::from(flags.0) << 24),
        L4::Udp { sport, dport, len } => (
            17,
            u32::from(sport) << 16 | u32::from(dport),
            u32::from(len),
        ),
        L4::Icmp {
            kind,
            code,
            id,
            seq,
            ..
        } => (
            1,
            u32::from(kind) << 8 | u32::from(code),
            u32::from(id) << 16 | u32::from(seq),
        ),
        L4::Other { proto } | L4::Fragment { proto } => (proto, 0, 0),
        L4::None => (0, 0, 0),
    };
    CopyKey {
        l3: h.l3,
        ip_id: h.ip_id,
        flow_label: h.flow_label,
        l4,
    }
}

/// Running counters of the correlator itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorrelatorStats {
    pub events: u64,
    pub packets: u64,
    pub packets_flushed_unseen: u64,
    pub packets_evicted: u64,
    pub flows: u64,
    pub flows_evicted: u64,
    pub copies: u64,
    /// End events for packets not (or no longer) followed.
    pub orphan_ends: u64,
    /// Socket events for packets not (or no longer) followed.
    pub orphan_sockets: u64,
}

/// The packet last received on one CPU (route lookups follow it there).
#[derive(Debug, Clone, Copy)]
struct LastRx {
    packet: PacketId,
    device: Device,
    ts: u64,
    src: Option<std::net::IpAddr>,
    dst: std::net::IpAddr,
}

/// A route lookup this soon after a receive on the same CPU is for it.
const ROUTE_MATCH_NS: u64 = 200_000;
/// CPUs tracked for route matching.
const MAX_CPUS: usize = 4096;

/// Turns hop events into packets, flows and annotations for a [`Sink`]
/// (see the module documentation).
///
/// Maps keyed by ids (packet ids from the kernel, flow ids from here) use
/// FxHash; maps keyed by what packets carry (flow keys, copy keys,
/// addresses) keep SipHash, since remote senders choose those keys.
pub struct Correlator {
    cfg: CorrelatorConfig,
    last_rx: Vec<Option<LastRx>>,
    /// The newest flow to each address (neighbour events name an address).
    addr_flows: HashMap<std::net::IpAddr, FlowId>,
    /// When each address last started resolving (the kernel reports it for
    /// every packet that waits).
    resolving: HashMap<std::net::IpAddr, u64>,
    /// Packet ids grow with time, so the first entries are the oldest.
    packets: BTreeMap<PacketId, Packet>,
    /// Every key a flow is known under: its own and the NAT-rewritten ones.
    flow_ids: HashMap<FlowKey, FlowAlias>,
    flows: FxHashMap<FlowId, Flow>,
    copies: HashMap<CopyKey, (PacketId, u64)>,
    visit_pool: Vec<Vec<Visit>>,
    next_flow: u64,
    now: u64,
    stats: CorrelatorStats,
    /// The traced kernel's drop reason names: which frees are routine.
    reasons: DropReasons,
    /// Branches announced (a clone took the packet over; the original skb
    /// goes on under the new id): branch id -> the packet it branched from.
    branches: FxHashMap<PacketId, PacketId>,
    /// In-flight TCP packets by (flow, reply direction, sequence number):
    /// a segment TCP merged into another (backlog or receive queue
    /// coalescing frees it without a tracepoint) is found by its sequence.
    tcp_seqs: BTreeSet<(FlowId, bool, u32, PacketId)>,
    /// The kernel's scope (`--netns`, `--iface`, `--pid`): namespaces and
    /// device names hops are seen in (empty: everywhere).
    scope_netns: Vec<u32>,
    scope_ifnames: Vec<String>,
    /// Packets that reached a socket or ended (held for a read), which
    /// [`Correlator::gc`] ends once they settle: a superset of those in
    /// `packets`, so gc looks at these instead of every packet in flight.
    settling: Vec<PacketId>,
}

/// Branches announced and not seen yet, at most.
const MAX_PENDING_BRANCHES: usize = 4096;

impl Correlator {
    pub fn new(cfg: CorrelatorConfig) -> Correlator {
        Correlator {
            cfg,
            last_rx: Vec::new(),
            addr_flows: HashMap::new(),
            resolving: HashMap::new(),
            packets: BTreeMap::new(),
            flow_ids: HashMap::new(),
            flows: FxHashMap::default(),
            copies: HashMap::new(),
            visit_pool: Vec::new(),
            next_flow: 1,
            now: 0,
            stats: CorrelatorStats::default(),
            reasons: DropReasons::default(),
            branches: FxHashMap::default(),
            tcp_seqs: BTreeSet::new(),
            scope_netns: Vec::new(),
            scope_ifnames: Vec::new(),
            settling: Vec::new(),
        }
    }

    /// The kernel's scope: outside it no hop is seen, so a packet found
    /// there at its end went through steps the scope hid, not through a
    /// step no tracepoint shows (no inferred visit; the end says where).
    pub fn set_scope(&mut self, netns: Vec<u32>, ifnames: Vec<String>) {
        self.scope_netns = netns;
        self.scope_ifnames = ifnames;
    }

    /// The traced kernel's drop reason names (live: from its BTF; replay:
    /// from the recording). Without them every `kfree_skb` is a drop.
    pub fn set_drop_reasons(&mut self, reasons: DropReasons) {
        self.reasons = reasons;
    }

    pub fn stats(&self) -> CorrelatorStats {
        self.stats
    }

    pub fn flow(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(&id)
    }

    pub fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.values()
    }

    pub fn packets_in_flight(&self) -> usize {
        self.packets.len()
    }

    /// Feeds one event.
    pub fn on_event(&mut self, ev: &HopEvent, sink: &mut impl Sink) {
        self.stats.events += 1;
        if self.settling.len() > 2 * self.cfg.max_packets + 1024 {
            // No gc for a long while (a replay without ticks): bounded.
            let packets = &self.packets;
            self.settling.sort_unstable();
            self.settling.dedup();
            self.settling.retain(|id| {
                packets
                    .get(id)
                    .is_some_and(|p| p.socket.is_some() || p.end.is_some())
            });
        }
        self.now = self.now.max(ev.ts_ns);
        if ev.hook.is_end() {
            // A packet first seen when it was dropped (it never reached a
            // device hook, e.g. held for a neighbour that never answered):
            // its one visit is where it died.
            if ev.new_packet && ev.device.is_some() && !self.packets.contains_key(&ev.packet) {
                self.on_hop(ev, sink);
            }
            self.on_end(ev, sink);
            return;
        }
        if ev.hook.is_annotation() {
            self.on_annotation(ev, sink);
            return;
        }
        // A socket only says where a packet followed already ended up.
        if ev.hook.is_socket() && !self.packets.contains_key(&ev.packet) {
            self.stats.orphan_sockets += 1;
            return;
        }
        self.on_hop(ev, sink);
    }

    /// A device hook (or the first sighting of a packet at its drop).
    fn on_hop(&mut self, ev: &HopEvent, sink: &mut impl Sink) {
        if !self.packets.contains_key(&ev.packet) {
            if self.packets.len() >= self.cfg.max_packets {
                self.evict_oldest_packets(sink);
            }
            let visits = self.visit_pool.pop().unwrap_or_default();
            self.stats.packets += 1;
            self.packets.insert(
                ev.packet,
                Packet {
                    id: ev.packet,
                    flow: None,
                    role: None,
                    headers: None,
                    first_ts: ev.ts_ns,
                    last_ts: ev.ts_ns,
                    visits,
                    visits_dropped: 0,
                    events: 0,
                    copy_of: None,
                    sender: None,
                    receiver: None,
                    end: None,
                    icmp_error: None,
                    route_error: None,
                    current: None,
                    socket: None,
                    segment_of: None,
                    segmented: None,
                    end_device: None,
                    end_outside: false,
                    coalesced_into: None,
                    outcome: Outcome::Unseen,
                },
            );
        }
        let Some(pkt) = self.packets.get_mut(&ev.packet) else {
            return;
        };
        pkt.events += 1;
        pkt.last_ts = pkt.last_ts.max(ev.ts_ns);
        if pkt.events == 1 {
            // How the kernel linked this skb to another packet.
            if let Some(orig) = self.branches.remove(&ev.packet) {
                pkt.copy_of = Some(orig);
            }
            match ev.link {
                Some(Link::CloneOf(orig)) if orig != pkt.id => pkt.copy_of = Some(orig),
                Some(Link::SegmentOf {
                    parent,
                    index,
                    count,
                }) => pkt.segment_of = Some((parent, index, count)),
                _ => {}
            }
        }
        if let Some(Link::Branch(branch)) = ev.link {
            if self.branches.len() >= MAX_PENDING_BRANCHES {
                self.branches.clear();
            }
            self.branches.insert(branch, pkt.id);
        }
        if ev.hook.is_socket() {
            // A TCP segment or state change that carried data; datagrams
            // always do.
            let data = ev.data.tcp_payload().is_none_or(|n| n > 0);
            // A read (the task) or data outranks what was seen before.
            if pkt.socket.is_none_or(|s| data && !s.data) || ev.hook == Hook::SkbCopyDatagram {
                if pkt.socket.is_none() {
                    self.settling.push(pkt.id);
                }
                pkt.socket = Some(SocketSeen {
                    hook: ev.hook,
                    data,
                });
            }
        }

        // Classify at the first event that has headers.
        let mut rewrite = None;
        if let Some(h) = ev.headers {
            match pkt.current {
                None => {
                    pkt.headers = Some(h);
                    let view = flow::flow_view(&h);
                    let fid = match self.flow_ids.get(&view.key) {
                        Some(a) => a.id,
                        None => {
                            if self.flows.len() >= self.cfg.max_flows {
                                evict_flows(
                                    &mut self.flows,
                                    &mut self.flow_ids,
                                    self.cfg.max_flows,
                                    &mut self.stats,
                                );
                            }
                            let id = FlowId(self.next_flow);
                            self.next_flow += 1;
                            self.stats.flows += 1;
                            let flow = Flow::new(id, &view, ev.ts_ns);
                            self.flow_ids.insert(
                                view.key,
                                FlowAlias {
                                    id,
                                    initiator: flow.initiator,
                                },
                            );
                            self.flows.insert(id, flow);
                            if self.addr_flows.len() >= 2 * self.cfg.max_flows {
                                self.addr_flows.clear();
                            }
                            // ARP flows are the resolution itself, not what waits.
                            if view.key.proto != FlowProto::Arp {
                                for ep in [view.key.a, view.key.b] {
                                    if let Some(addr) = ep.0 {
                                        self.addr_flows.insert(addr, id);
                                    }
                                }
                            }
                            id
                        }
                    };
                    // Copies: linked by the kernel (a clone shares its
                    // original's data), else the same identity seen
                    // recently in another skb.
                    let ck = copy_key(&h);
                    if pkt.copy_of.is_none() {
                        match self.copies.get(&ck) {
                            Some(&(orig, ts))
                                if orig != pkt.id
                                    && ev.ts_ns.saturating_sub(ts) <= self.cfg.copy_window_ns =>
                            {
                                pkt.copy_of = Some(orig);
                            }
                            _ => {
                                self.copies.insert(ck, (pkt.id, ev.ts_ns));
                            }
                        }
                    }
                    if pkt.copy_of.is_some() {
                        self.stats.copies += 1;
                    }
                    if let (Some(flow), Some(alias)) =
                        (self.flows.get_mut(&fid), self.flow_ids.get_mut(&view.key))
                    {
                        let role = alias.role_of(&view);
                        if flow.key == view.key {
                            flow.initiator = alias.initiator;
                        }
                        // A copy is the same packet again: counted once.
                        if pkt.copy_of.is_none() {
                            match role {
                                Role::Request => flow.requests += 1,
                                Role::Reply => flow.replies += 1,
                            }
                            flow.bytes += u64::from(ev.len);
                        }
                        pkt.role = Some(role);
                    }
                    pkt.flow = Some(fid);
                    if let L4::Tcp { seq, .. } = h.l4 {
                        let dir = pkt.role == Some(Role::Reply);
                        if self.tcp_seqs.len() < self.cfg.max_packets {
                            self.tcp_seqs.insert((fid, dir, seq, pkt.id));
                        }
                    }
                }
                Some(prev) => {
                    rewrite = Rewrite::between(&prev, &h);
                    if let (Some(_), Some(fid)) = (rewrite, pkt.flow) {
                        learn_alias(
                            &mut self.flows,
                            &mut self.flow_ids,
                            fid,
                            pkt.role,
                            &flow::flow_view(&h),
                        );
                    }
                }
            }
            pkt.current = Some(h);
        }
        if let Some(fid) = pkt.flow {
            if let Some(flow) = self.flows.get_mut(&fid) {
                flow.last_ts = flow.last_ts.max(ev.ts_ns);
                if self.cfg.owner_cgroup != 0 && ev.sk_cgroup == self.cfg.owner_cgroup {
                    flow.owned = true;
                }
            }
        }
        if ev.hook == Hook::NetDevQueue && pkt.sender.is_none() {
            pkt.sender = ev.task;
        }
        if ev.hook == Hook::SkbCopyDatagram {
            pkt.receiver = ev.task;
        }
        if matches!(
            ev.hook,
            Hook::NetifReceiveSkb | Hook::NetifRx | Hook::NapiGroReceive
        ) {
            if let (Some(device), Some(dst)) = (ev.device, ev.headers.and_then(|h| h.l3.dst())) {
                let cpu = ev.cpu as usize;
                if cpu < MAX_CPUS {
                    if self.last_rx.len() <= cpu {
                        self.last_rx.resize(cpu + 1, None);
                    }
                    self.last_rx[cpu] = Some(LastRx {
                        packet: ev.packet,
                        device,
                        ts: ev.ts_ns,
                        src: ev.headers.and_then(|h| h.l3.src()),
                        dst,
                    });
                }
            }
        }
        // A transmit completion with no transmit to complete is no hop; a
        // socket outside the scope says nothing about the path.
        let hidden = ev.hook.is_socket()
            && ev
                .device
                .is_some_and(|d| !in_scope(&self.scope_netns, &self.scope_ifnames, &d));
        if hidden {
            pkt.end_outside = true;
            return;
        }
        let Some((visit, inferred)) = fold_visit(pkt, ev, rewrite, self.cfg.max_visits) else {
            return;
        };
        let ctx = HopContext {
            flow: pkt.flow,
            role: pkt.role,
            visit,
            copy_of: pkt.copy_of,
            owned: pkt
                .flow
                .and_then(|f| self.flows.get(&f))
                .is_some_and(|f| f.owned),
            rewrite,
            inferred,
            segment_of: pkt.segment_of,
        };
        // A segment that reached the socket: TCP may have merged the next
        // ones into it (their payload, or for pure ACKs their ACK).
        let merged = match (
            ev.hook,
            pkt.flow,
            pkt.headers.map(|h| h.l4),
            pkt.visits.last(),
        ) {
            (Hook::TcpRcv, Some(fid), Some(L4::Tcp { seq, .. }), Some(v)) => Some((
                fid,
                pkt.role == Some(Role::Reply),
                seq,
                ev.data.tcp_payload().unwrap_or(0),
                pkt.id,
                v.device.netns,
            )),
            _ => None,
        };
        let flow = pkt.flow.and_then(|f| self.flows.get(&f));
        if !ev.hook.is_end() {
            sink.hop(ev, &ctx, flow);
        }
        if let Some((fid, dir, seq, len, into, netns)) = merged {
            self.tcp_seqs.remove(&(fid, dir, seq, into));
            self.coalesced(fid, dir, seq, len, into, netns, ev.ts_ns);
        }
    }

    /// Segments of `fid` (direction `dir`) that arrived where `into` reached
    /// its socket (`netns`) and whose sequence number falls in `into`'s
    /// payload (`seq`, `len` bytes; a pure ACK: its own `seq`) were merged
    /// into it before the socket saw them: they reached the socket with it.
    #[allow(clippy::too_many_arguments)]
    fn coalesced(
        &mut self,
        fid: FlowId,
        dir: bool,
        seq: u32,
        len: u32,
        into: PacketId,
        netns: crate::event::NetnsId,
        ts: u64,
    ) {
        let last = seq.wrapping_add(len.max(1) - 1);
        let mut ids = [PacketId(0); 64];
        let mut n = 0;
        let lo = PacketId(0);
        let hi = PacketId(u64::MAX);
        let packets = &self.packets;
        let mut take = |range: std::ops::RangeInclusive<(FlowId, bool, u32, PacketId)>| {
            for &(_, _, _, id) in self.tcp_seqs.range(range) {
                let arrived = packets.get(&id).is_some_and(|p| {
                    p.socket.is_none()
                        && p.end.is_none()
                        && p.visits.last().is_some_and(|v| v.device.netns == netns)
                });
                if n < ids.len() && id != into && arrived {
                    ids[n] = id;
                    n += 1;
                }
            }
        };
        if seq <= last {
            take((fid, dir, seq, lo)..=(fid, dir, last, hi));
        } else {
            take((fid, dir, seq, lo)..=(fid, dir, u32::MAX, hi));
            take((fid, dir, 0, lo)..=(fid, dir, last, hi));
        }
        for id in &ids[..n] {
            if let Some(p) = self.packets.get_mut(id) {
                if p.socket.is_none() && p.end.is_none() {
                    self.settling.push(*id);
                }
                p.socket = Some(SocketSeen {
                    hook: Hook::TcpRcv,
                    data: len > 0,
                });
                p.coalesced_into = Some(into);
                p.last_ts = p.last_ts.max(ts);
                if let Some(L4::Tcp { seq, .. }) = p.headers.map(|h| h.l4) {
                    self.tcp_seqs.remove(&(fid, dir, seq, *id));
                }
            }
        }
    }

    /// Annotations attach to the packet they name while it is in flight
    /// (a route lookup, which names none, to the packet last received on
    /// the same CPU with the same destination, just before), else to the
    /// flow their headers name (a neighbour: the newest flow to that
    /// address).
    fn on_annotation(&mut self, ev: &HopEvent, sink: &mut impl Sink) {
        if let HookData::Neigh {
            new: NUD_INCOMPLETE,
            ..
        } = ev.data
        {
            // Resolution started: once per address and second, not once
            // per packet waiting for it.
            if let Some(addr) = ev.headers.and_then(|h| h.l3.dst()) {
                if self.resolving.len() >= 1024 {
                    self.resolving.clear();
                }
                let last = self.resolving.insert(addr, ev.ts_ns).unwrap_or(0);
                if last != 0 && ev.ts_ns.saturating_sub(last) < 1_000_000_000 {
                    return;
                }
            }
        }
        let mut at = Annotation {
            packet: None,
            device: ev.device,
        };
        let mut flow = None;
        let mut id = ev.packet;
        if ev.hook == Hook::FibLookup {
            // The packet received just before on this CPU, in the namespace
            // of the lookup (when it names one), with the destination looked
            // up; after DNAT the destination changed, the source did not.
            let (src, dst) = (
                ev.headers.and_then(|h| h.l3.src()),
                ev.headers.and_then(|h| h.l3.dst()),
            );
            if let Some(Some(last)) = self.last_rx.get(ev.cpu as usize) {
                let same_ns = ev.device.is_none_or(|d| d.netns == last.device.netns);
                let same_packet = Some(last.dst) == dst || (src.is_some() && last.src == src);
                if same_ns && same_packet && ev.ts_ns.saturating_sub(last.ts) <= ROUTE_MATCH_NS {
                    id = last.packet;
                    at.device = Some(last.device);
                }
            }
        }
        if let Some(p) = self.packets.get_mut(&id) {
            at.packet = Some(p.id);
            flow = p.flow;
            match ev.data {
                HookData::IcmpError { kind, code } => p.icmp_error = Some((kind, code)),
                // A table without a match only means the next one is tried;
                // a route found later clears an earlier failure.
                HookData::Route {
                    result: RouteResult::Found,
                    ..
                } => p.route_error = None,
                HookData::Route {
                    table,
                    result: RouteResult::Error(err),
                    ..
                } => p.route_error = Some((table, err)),
                _ => {}
            }
        } else if id.0 != 0 {
            at.packet = Some(id);
        }
        if flow.is_none() {
            flow = match ev.hook {
                Hook::Neigh => ev
                    .headers
                    .and_then(|h| h.l3.dst())
                    .and_then(|addr| self.addr_flows.get(&addr).copied())
                    .filter(|f| self.flows.contains_key(f)),
                Hook::FibLookup => None,
                _ => ev
                    .headers
                    .and_then(|h| self.flow_ids.get(&flow::flow_view(&h).key))
                    .map(|a| a.id),
            };
        }
        if let Some(f) = flow.and_then(|f| self.flows.get_mut(&f)) {
            match ev.hook {
                Hook::TcpSendReset | Hook::TcpReceiveReset => f.resets += 1,
                Hook::TcpRetransmit => f.retransmits += 1,
                Hook::IcmpSend => f.icmp_errors += 1,
                _ => {}
            }
        }
        sink.annotation(ev, &at, flow.and_then(|f| self.flows.get(&f)));
    }

    fn on_end(&mut self, ev: &HopEvent, sink: &mut impl Sink) {
        let Some(mut pkt) = self.packets.remove(&ev.packet) else {
            self.stats.orphan_ends += 1;
            return;
        };
        pkt.events += 1;
        pkt.last_ts = pkt.last_ts.max(ev.ts_ns);
        pkt.end = Some(match ev.data {
            HookData::Freed {
                reason,
                location,
                stack,
            } => End::Dropped {
                ts: ev.ts_ns,
                reason,
                location,
                stack,
            },
            _ => End::Consumed { ts: ev.ts_ns },
        });
        if let Some(Link::Segmented { count }) = ev.link {
            pkt.segmented = Some(count);
            self.uncount(&pkt);
        }
        // Where it was when it ended, when no visit shows that device: a
        // step no tracepoint saw (a macvlan's rx handler moved it).
        let elsewhere = ev.device.filter(|d| d.ifindex.0 != 0).filter(|d| {
            pkt.visits
                .last()
                .is_some_and(|v| !same_device(&v.device, d))
        });
        let inferred = elsewhere.filter(|d| in_scope(&self.scope_netns, &self.scope_ifnames, d));
        let mut visit = pkt.visits.len().saturating_sub(1);
        pkt.end_device = elsewhere;
        pkt.end_outside |= elsewhere.is_some() && inferred.is_none();
        if let Some(d) = inferred {
            if pkt.visits.len() < self.cfg.max_visits {
                pkt.visits.push(inferred_visit(ev, d));
                visit = pkt.visits.len() - 1;
            }
        }
        let ctx = HopContext {
            flow: pkt.flow,
            role: pkt.role,
            visit,
            copy_of: pkt.copy_of,
            owned: pkt
                .flow
                .and_then(|f| self.flows.get(&f))
                .is_some_and(|f| f.owned),
            rewrite: None,
            inferred: inferred.is_some(),
            segment_of: pkt.segment_of,
        };
        let flow = pkt.flow.and_then(|f| self.flows.get(&f));
        sink.hop(ev, &ctx, flow);
        // Not read yet: a socket took it in (or a clone, a raw or ping
        // socket's, still holds its data): the read may come yet.
        let unread = pkt.socket.is_some_and(|s| s.hook != Hook::SkbCopyDatagram) || ev.shared;
        if unread && pkt.receiver.is_none() {
            self.settling.push(pkt.id);
            self.packets.insert(pkt.id, pkt);
            return;
        }
        self.finish(pkt, sink);
    }

    /// A GSO packet cut into segments: its segments are the packets on the
    /// wire and count in its flow, it no longer does.
    fn uncount(&mut self, pkt: &Packet) {
        if pkt.copy_of.is_some() {
            return;
        }
        let (Some(f), Some(first)) = (
            pkt.flow.and_then(|f| self.flows.get_mut(&f)),
            pkt.visits.first(),
        ) else {
            return;
        };
        match pkt.role {
            Some(Role::Reply) => f.replies = f.replies.saturating_sub(1),
            _ => f.requests = f.requests.saturating_sub(1),
        }
        f.bytes = f.bytes.saturating_sub(u64::from(first.len));
    }

    fn finish(&mut self, mut pkt: Packet, sink: &mut impl Sink) {
        if let (Some(fid), Some(L4::Tcp { seq, .. })) = (pkt.flow, pkt.headers.map(|h| h.l4)) {
            self.tcp_seqs
                .remove(&(fid, pkt.role == Some(Role::Reply), seq, pkt.id));
        }
        pkt.outcome = Outcome::decide(&pkt, &self.reasons);
        if pkt.outcome.is_drop() {
            if let Some(f) = pkt.flow.and_then(|f| self.flows.get_mut(&f)) {
                f.drops += 1;
            }
        }
        let flow = pkt.flow.and_then(|f| self.flows.get(&f));
        sink.packet_done(&pkt, flow);
        let mut visits = std::mem::take(&mut pkt.visits);
        visits.clear();
        if self.visit_pool.len() < 1024 {
            self.visit_pool.push(visits);
        }
    }

    /// Flushes packets idle for `packet_idle_ns` as [`End::Unseen`] and
    /// forgets stale copy identities. Call it periodically with the current
    /// monotonic time (or the newest event time).
    pub fn gc(&mut self, now: u64, sink: &mut impl Sink) {
        self.now = self.now.max(now);
        let horizon = self.now.saturating_sub(self.cfg.packet_idle_ns);
        let settled = self.now.saturating_sub(self.cfg.settle_ns);
        // Packets that reached a socket (or ended, a clone holding their
        // data) end once nothing more came for the settle time.
        // In id order, as a walk over `packets` would find them.
        self.settling.sort_unstable();
        self.settling.dedup();
        let mut done: Vec<PacketId> = Vec::new();
        let packets = &self.packets;
        self.settling.retain(|id| match packets.get(id) {
            Some(p) if p.socket.is_some() || p.end.is_some() => {
                if p.last_ts < settled {
                    done.push(*id);
                    false
                } else {
                    true
                }
            }
            _ => false,
        });
        for id in done {
            if let Some(p) = self.packets.remove(&id) {
                self.finish(p, sink);
            }
        }
        let stale: Vec<PacketId> = self
            .packets
            .iter()
            .take_while(|(_, p)| p.first_ts < horizon)
            .filter(|(_, p)| p.last_ts < horizon)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(mut p) = self.packets.remove(&id) {
                p.end = Some(End::Unseen);
                self.stats.packets_flushed_unseen += 1;
                self.finish(p, sink);
            }
        }
        let window = self.cfg.copy_window_ns;
        let now = self.now;
        if self.copies.len() > 1024 {
            self.copies
                .retain(|_, (_, ts)| now.saturating_sub(*ts) <= window);
        }
    }

    /// Flushes every packet still in flight (at exit).
    pub fn flush(&mut self, sink: &mut impl Sink) {
        while let Some((_, mut p)) = self.packets.pop_first() {
            if p.end.is_none() && p.socket.is_none() {
                p.end = Some(End::Unseen);
                self.stats.packets_flushed_unseen += 1;
            }
            self.finish(p, sink);
        }
    }

    fn evict_oldest_packets(&mut self, sink: &mut impl Sink) {
        let n = (self.cfg.max_packets / 10).max(1);
        for _ in 0..n {
            let Some((_, mut p)) = self.packets.pop_first() else {
                break;
            };
            p.end = Some(End::Unseen);
            self.stats.packets_evicted += 1;
            self.finish(p, sink);
        }
        if self.copies.len() > self.cfg.max_packets {
            let (now, window) = (self.now, self.cfg.copy_window_ns);
            self.copies
                .retain(|_, (_, ts)| now.saturating_sub(*ts) <= window);
            if self.copies.len() > self.cfg.max_packets {
                self.copies.clear();
            }
        }
    }
}

/// Forgets the least recently seen tenth of the flows. Packets still in
/// flight keep their role; their flow id simply no longer resolves.
fn evict_flows(
    flows: &mut FxHashMap<FlowId, Flow>,
    flow_ids: &mut HashMap<FlowKey, FlowAlias>,
    max_flows: usize,
    stats: &mut CorrelatorStats,
) {
    let mut ages: Vec<(u64, FlowId)> = flows.values().map(|f| (f.last_ts, f.id)).collect();
    let n = (max_flows / 10).max(1).min(ages.len());
    if n == 0 {
        return;
    }
    ages.select_nth_unstable(n - 1);
    for &(_, id) in &ages[..n] {
        if let Some(f) = flows.remove(&id) {
            for key in std::iter::once(&f.key).chain(&f.aliases) {
                // A key NAT handed on to a newer flow is that flow's now.
                if flow_ids.get(key).is_some_and(|a| a.id == id) {
                    flow_ids.remove(key);
                }
            }
            stats.flows_evicted += 1;
        }
    }
}

/// A packet of flow `fid` showed rewritten headers (`view`): the flow is
/// also known under their key from now on, its initiator being the
/// rewritten source of a request (the rewritten destination of a reply).
/// The newest rewrite wins a key another flow had (a reused tuple).
fn learn_alias(
    flows: &mut FxHashMap<FlowId, Flow>,
    flow_ids: &mut HashMap<FlowKey, FlowAlias>,
    fid: FlowId,
    role: Option<Role>,
    view: &FlowView,
) {
    if flow_ids.get(&view.key).is_some_and(|a| a.id == fid) {
        return;
    }
    let Some(flow) = flows.get_mut(&fid) else {
        return;
    };
    if flow.aliases.len() >= flow::MAX_ALIASES {
        let old = flow.aliases.remove(0);
        if flow_ids.get(&old).is_some_and(|a| a.id == fid) {
            flow_ids.remove(&old);
        }
    }
    flow.aliases.push(view.key);
    let initiator = match role {
        Some(Role::Reply) => view.dst,
        _ => view.src,
    };
    flow_ids.insert(view.key, FlowAlias { id: fid, initiator });
}

/// Adds `ev` to the packet's visits; returns the visit index it went to,
/// or `None` for a transmit completion that completes no transmit.
/// The visit index goes with whether the visit is inferred.
fn fold_visit(
    pkt: &mut Packet,
    ev: &HopEvent,
    rewrite: Option<Rewrite>,
    max_visits: usize,
) -> Option<(usize, bool)> {
    let last = pkt.visits.len().saturating_sub(1);
    let Some(dev) = ev.device.filter(|d| d.ifindex.0 != 0) else {
        if let Some(v) = pkt.visits.last_mut() {
            v.hooks.insert(ev.hook);
            if ev.task.is_some() && ev.hook.is_socket() {
                v.task = ev.task;
            }
        }
        return Some((last, pkt.visits.last().is_some_and(|v| v.inferred)));
    };
    let same_dev = |v: &Visit| same_device(&v.device, &dev);
    // net_dev_xmit completes the transmit visit it belongs to, which may be
    // long past: veth delivers to the peer before returning, and a tunnel
    // device returns only after the underlay carried the packet (and the
    // far side, on the same CPU, may have received it already). It never
    // starts a visit of its own.
    if ev.hook == Hook::NetDevXmit {
        let open = pkt.visits.iter().rposition(|v| {
            same_dev(v)
                && v.hooks.contains(Hook::NetDevQueue)
                && !v.hooks.contains(Hook::NetDevXmit)
        });
        let i = open.or_else(|| {
            pkt.visits
                .last()
                .filter(|v| same_dev(v))
                .map(|_| pkt.visits.len() - 1)
        })?;
        let v = &mut pkt.visits[i];
        v.hooks.insert(Hook::NetDevXmit);
        v.xmit_rc = ev.data.xmit_rc();
        v.last_ts = v.last_ts.max(ev.ts_ns);
        return Some((i, v.inferred));
    }
    if let Some(last) = pkt.visits.last_mut() {
        // A new queue on the same device after an rx there is a new visit
        // (hairpin, or a packet sent back out where it came in).
        let restart = ev.hook == Hook::NetDevQueue && last.hooks.contains(Hook::NetDevQueue);
        if same_dev(last) && !restart {
            if ev.hook == Hook::NetifReceiveSkb && !last.hooks.contains(Hook::NetifReceiveSkb) {
                last.tap_ts = ev.ts_ns;
            }
            last.hooks.insert(ev.hook);
            last.last_ts = last.last_ts.max(ev.ts_ns);
            if last.headers.is_none() {
                last.headers = ev.headers;
            }
            if let Some(rc) = ev.data.xmit_rc() {
                last.xmit_rc = Some(rc);
            }
            if ev.task.is_some() {
                last.task = ev.task;
            }
            if last.rewrite.is_none() {
                last.rewrite = rewrite;
            }
            if last.outer.is_none() {
                last.outer = ev.outer;
            }
            let inferred = last.inferred;
            return Some((pkt.visits.len() - 1, inferred));
        }
    }
    if pkt.visits.len() >= max_visits {
        pkt.visits_dropped += 1;
        return Some((pkt.visits.len() - 1, false));
    }
    // A socket on another device than the last hop: a step no hook saw.
    if ev.hook.is_socket() && !pkt.visits.is_empty() {
        pkt.visits.push(inferred_visit(ev, dev));
        return Some((pkt.visits.len() - 1, true));
    }
    let mut hooks = HookSet::default();
    hooks.insert(ev.hook);
    pkt.visits.push(Visit {
        device: dev,
        hooks,
        first_ts: ev.ts_ns,
        last_ts: ev.ts_ns,
        tap_ts: ev.ts_ns,
        len: ev.len,
        headers: ev.headers,
        xmit_rc: ev.data.xmit_rc(),
        task: ev.task,
        rewrite,
        outer: ev.outer,
        inferred: false,
    });
    Some((pkt.visits.len() - 1, false))
}

/// Whether the kernel's scope (empty lists: everywhere) covers `d`.
fn in_scope(netns: &[u32], ifnames: &[String], d: &Device) -> bool {
    (netns.is_empty() || netns.contains(&d.netns.0))
        && (ifnames.is_empty() || ifnames.iter().any(|n| n == d.ifname.as_str()))
}

fn same_device(a: &Device, b: &Device) -> bool {
    a.netns == b.netns && a.ifindex == b.ifindex
}

/// A visit no tracepoint showed: where `ev` (a socket or an end) found the
/// packet.
fn inferred_visit(ev: &HopEvent, dev: Device) -> Visit {
    let mut hooks = HookSet::default();
    hooks.insert(ev.hook);
    Visit {
        device: dev,
        hooks,
        first_ts: ev.ts_ns,
        last_ts: ev.ts_ns,
        tap_ts: ev.ts_ns,
        len: ev.len,
        headers: None,
        xmit_rc: None,
        task: ev.task.filter(|_| ev.hook.is_socket()),
        rewrite: None,
        outer: None,
        inferred: true,
    }
}
