//! The explorer's state of the world: flows, the finished packets of each
//! flow, and the counters the status bar shows. It is a pipeline sink
//! ([`Sink`], [`FactSink`]) and nothing else: no I/O, no terminal, no clock
//! ("now" arrives with [`Model::on_tick`]), no lookups (names, links and
//! symbols arrive as facts), so a replayed recording rebuilds exactly the
//! state of the live run that wrote it.
//!
//! Memory is bounded: at most `max_flows` flows (the least recently seen are
//! evicted in batches, so eviction costs O(log n) amortised) and at most
//! `max_packets` finished packets overall (oldest first). Packets enter the
//! model when they end (`consume_skb`, `kfree_skb`, or the correlator's idle
//! flush), so a packet appears once its path is complete.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::correlate::flow::Endpoint;
use crate::correlate::{Flow, FlowId, FlowKey, HopContext, Outcome, Packet, Role, Sink};
use crate::event::drop_reason::DropReasons;
use crate::event::record::Tick;
use crate::event::snapshot::{Snapshot, Snapshots};
use crate::event::{HopEvent, NetnsId, PacketId};
use crate::facts::{Fact, FactSink};
use crate::select::Filter;
use crate::topology::links::LinkInfo;
use crate::topology::TopologyView;

/// Namespace names, links and drop locations kept (beyond, new ones are
/// shown by number).
const MAX_TOPOLOGY_ENTRIES: usize = 65_536;

/// Window of the events-per-second figure.
const RATE_WINDOW_NS: u64 = 3_000_000_000;

/// Transit times kept per flow for its median.
const TRANSIT_WINDOW: usize = 32;

/// How much the model keeps, and what enters it.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub max_flows: usize,
    pub max_packets: usize,
    /// Which hops and packets enter the model at all.
    pub filter: Filter,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            max_flows: 16_384,
            max_packets: 65_536,
            filter: Filter::default(),
        }
    }
}

/// One conversation as the explorer lists it.
#[derive(Debug, Clone)]
pub struct FlowEntry {
    pub id: FlowId,
    pub key: FlowKey,
    pub initiator: Endpoint,
    /// Where the first request was first seen (the initiator's side).
    /// Requests, replies and bytes count packets from their first sighting.
    pub initiator_netns: Option<NetnsId>,
    /// Where the first reply was first seen; until then, where the first
    /// finished request was last seen.
    pub responder_netns: Option<NetnsId>,
    pub first_ts: u64,
    pub last_ts: u64,
    pub requests: u64,
    pub replies: u64,
    pub bytes: u64,
    /// Packets freed by `kfree_skb` for a reason that is not routine.
    pub drops: u64,
    /// TCP resets sent or received, retransmissions, ICMP errors sent.
    pub resets: u64,
    pub retransmits: u64,
    pub icmp_errors: u64,
    /// Drop reasons of this flow and their counts (at most 8 reasons).
    pub drop_reasons: Vec<(u32, u64)>,
    pub owned: bool,
    /// Finished packets still kept, by packet id (oldest first), also
    /// per role.
    pub packets: PacketIndex,
    transit: [u64; TRANSIT_WINDOW],
    transit_len: usize,
    transit_pos: usize,
}

impl FlowEntry {
    fn new(flow: &Flow, ts: u64) -> FlowEntry {
        FlowEntry {
            id: flow.id,
            key: flow.key,
            initiator: flow.initiator,
            initiator_netns: None,
            responder_netns: None,
            first_ts: ts,
            last_ts: ts,
            requests: 0,
            replies: 0,
            bytes: 0,
            drops: 0,
            resets: 0,
            retransmits: 0,
            icmp_errors: 0,
            drop_reasons: Vec::new(),
            owned: flow.owned,
            packets: PacketIndex::default(),
            transit: [0; TRANSIT_WINDOW],
            transit_len: 0,
            transit_pos: 0,
        }
    }

    /// The most frequent drop reason value.
    pub fn dominant_drop(&self) -> Option<u32> {
        self.drop_reasons
            .iter()
            .max_by_key(|(r, n)| (*n, std::cmp::Reverse(*r)))
            .map(|(r, _)| *r)
    }

    /// The side that did not initiate.
    pub fn responder(&self) -> Endpoint {
        if self.key.a == self.initiator {
            self.key.b
        } else {
            self.key.a
        }
    }

    pub fn packets_seen(&self) -> u64 {
        self.requests + self.replies
    }

    /// Median time from a packet's first to its last sighting inside this
    /// host, over the last packets of the flow.
    pub fn median_transit_ns(&self) -> Option<u64> {
        if self.transit_len == 0 {
            return None;
        }
        let mut v = self.transit;
        let s = &mut v[..self.transit_len];
        s.sort_unstable();
        Some(s[s.len() / 2])
    }

    fn add_transit(&mut self, ns: u64) {
        self.transit[self.transit_pos] = ns;
        self.transit_pos = (self.transit_pos + 1) % TRANSIT_WINDOW;
        self.transit_len = (self.transit_len + 1).min(TRANSIT_WINDOW);
    }
}

/// Which roles a list shows (the explorer's `r` and `R`). A packet
/// without a role is listed with the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Roles {
    pub requests: bool,
    pub replies: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        requests: true,
        replies: true,
    };

    /// Whether a packet of role `r` is shown.
    pub fn shows(self, r: Option<Role>) -> bool {
        match r {
            Some(Role::Reply) => self.replies,
            Some(Role::Request) | None => self.requests,
        }
    }
}

/// The kept packets of one flow, sorted by packet id (the order of their
/// first sighting): all of them, and each role apart, so that the
/// explorer finds a flow's newest packet, its n-th packet or a packet's
/// row without looking at the others. Packets mostly finish in id order,
/// so inserting and evicting touch the ends of the lists.
#[derive(Debug, Clone, Default)]
pub struct PacketIndex {
    all: VecDeque<PacketId>,
    /// Requests, and packets without a role.
    requests: VecDeque<PacketId>,
    replies: VecDeque<PacketId>,
    /// The model's change count at the last insertion or removal: equal
    /// values mean the same packets (see [`Model::packet_changes`]).
    version: u64,
}

/// No packet (a list of no role).
static NO_PACKETS: VecDeque<PacketId> = VecDeque::new();

impl PacketIndex {
    /// Packets kept.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Changes whenever a packet enters or leaves (unique over the model,
    /// also across flows).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The ids of the packets of `roles`, oldest first.
    pub fn ids(&self, roles: Roles) -> &VecDeque<PacketId> {
        match (roles.requests, roles.replies) {
            (true, true) => &self.all,
            (true, false) => &self.requests,
            (false, true) => &self.replies,
            (false, false) => &NO_PACKETS,
        }
    }

    /// How many of `roles` have an id up to `upto` (`None`: all of them):
    /// the visible ones are the first that many of [`PacketIndex::ids`].
    pub fn count_upto(&self, roles: Roles, upto: Option<PacketId>) -> usize {
        let ids = self.ids(roles);
        match upto {
            None => ids.len(),
            Some(last) => ids.partition_point(|id| *id <= last),
        }
    }

    /// All packets, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = PacketId> + ExactSizeIterator + '_ {
        self.all.iter().copied()
    }

    fn role_list(&mut self, role: Option<Role>) -> &mut VecDeque<PacketId> {
        match role {
            Some(Role::Reply) => &mut self.replies,
            Some(Role::Request) | None => &mut self.requests,
        }
    }

    fn insert(&mut self, id: PacketId, role: Option<Role>, version: u64) {
        sorted_insert(&mut self.all, id);
        sorted_insert(self.role_list(role), id);
        self.version = version;
    }

    fn remove(&mut self, id: PacketId, role: Option<Role>, version: u64) {
        sorted_remove(&mut self.all, id);
        sorted_remove(self.role_list(role), id);
        self.version = version;
    }
}

/// Inserts `id` in the sorted `v` (at the back, mostly).
fn sorted_insert(v: &mut VecDeque<PacketId>, id: PacketId) {
    if v.back().is_none_or(|b| *b < id) {
        v.push_back(id);
    } else {
        let i = v.partition_point(|x| *x < id);
        if v.get(i) != Some(&id) {
            v.insert(i, id);
        }
    }
}

/// Removes `id` from the sorted `v` (at the front, mostly).
fn sorted_remove(v: &mut VecDeque<PacketId>, id: PacketId) {
    if v.front() == Some(&id) {
        v.pop_front();
    } else if let Ok(i) = v.binary_search(&id) {
        v.remove(i);
    }
}

/// Where and why packets were dropped: the drops view's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DropKey {
    pub reason: u32,
    pub netns: NetnsId,
    pub ifindex: u32,
}

/// One row of the drops view: how often, and the newest example.
#[derive(Debug, Clone)]
pub struct DropStat {
    pub key: DropKey,
    pub ifname: crate::event::ShortName,
    pub count: u64,
    pub last_ts: u64,
    /// The newest packet dropped there, and its flow.
    pub example: PacketId,
    pub flow: FlowId,
}

/// Distinct (reason, namespace, device) rows kept.
const MAX_DROP_ROWS: usize = 4096;

/// Time from the first to the last device sighting of a packet.
pub fn transit_ns(p: &Packet) -> u64 {
    match (p.visits.first(), p.visits.last()) {
        (Some(a), Some(b)) => b.last_ts.saturating_sub(a.first_ts),
        _ => 0,
    }
}

/// Counters shown in the status bar.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Latest tick (kernel counters and the monotonic time).
    pub tick: Tick,
    /// Events per second over the last tick interval.
    pub events_per_s: f64,
    /// Events applied (after the channel), since start.
    pub events: u64,
    pub packets_finished: u64,
    pub packets_evicted: u64,
    pub flows_evicted: u64,
    /// Packets the correlator follows that have not ended yet.
    pub in_flight: u64,
    /// Hooks that could not be attached.
    pub degraded: Vec<String>,
}

/// A finished packet kept, and when it finished (its place among all
/// packets stored).
struct Stored {
    packet: Packet,
    seq: u64,
}

/// The explorer's state of the world (see the module documentation): a
/// correlator [`Sink`] that keeps flows, finished packets indexed per flow,
/// drops and counters, within [`ModelConfig`]'s bounds.
pub struct Model {
    cfg: ModelConfig,
    flows: FxHashMap<FlowId, FlowEntry>,
    /// Finished packets by id. A hash map (not a B-tree) so that a full
    /// model stores and evicts without allocating.
    packets: FxHashMap<PacketId, Stored>,
    /// Packets stored so far: the next one's place in finish order.
    stored: u64,
    /// Ids in the order packets finished: eviction order. May hold ids
    /// already removed with their flow; those are skipped.
    finished: VecDeque<PacketId>,
    /// Newest packet id stored so far.
    last_packet: Option<PacketId>,
    pub counters: Counters,
    /// (time, events received) at recent ticks, for the event rate.
    rate_samples: VecDeque<(u64, u64)>,
    /// Namespace names learned from outside (live: /run/netns; replay: the
    /// recording).
    netns_names: FxHashMap<u32, String>,
    /// The traced kernel's drop reason names (empty: unknown).
    drop_reasons: DropReasons,
    /// Links of the namespaces (live: rtnetlink; replay: the recording).
    links: FxHashMap<(u32, u32), LinkInfo>,
    /// Drops by reason, namespace and device.
    drops: FxHashMap<DropKey, DropStat>,
    /// Drop locations resolved to `function+0xoff`.
    symbols: FxHashMap<u64, String>,
    /// Bumped on every change that can alter what is shown.
    generation: u64,
    /// Bumped whenever a packet enters or leaves a flow.
    packet_changes: u64,
    /// Bumped whenever a namespace name changes (searches match names).
    names_version: u64,
    /// Packets' first bytes (`--snaplen`), for a pcapng export (bounded).
    snapshots: Snapshots,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Model {
        Model {
            cfg,
            flows: FxHashMap::default(),
            packets: FxHashMap::default(),
            stored: 0,
            finished: VecDeque::new(),
            last_packet: None,
            counters: Counters::default(),
            rate_samples: VecDeque::new(),
            netns_names: FxHashMap::default(),
            drop_reasons: DropReasons::default(),
            links: FxHashMap::default(),
            drops: FxHashMap::default(),
            symbols: FxHashMap::default(),
            generation: 0,
            packet_changes: 0,
            names_version: 0,
            snapshots: Snapshots::default(),
        }
    }

    /// Packets' first bytes kept for a pcapng export (`--snaplen`).
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Changes whenever anything visible may have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn flow(&self, id: FlowId) -> Option<&FlowEntry> {
        self.flows.get(&id)
    }

    pub fn flows(&self) -> impl Iterator<Item = &FlowEntry> {
        self.flows.values()
    }

    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    pub fn packet(&self, id: PacketId) -> Option<&Packet> {
        self.packets.get(&id).map(|s| &s.packet)
    }

    /// The newest finished packet kept.
    pub fn last_packet_id(&self) -> Option<PacketId> {
        self.last_packet
    }

    pub fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// The kept packets of a flow, in the order they finished (one step
    /// per packet, and a sort).
    pub fn flow_packets(&self, id: FlowId) -> impl DoubleEndedIterator<Item = &Packet> {
        let mut stored: Vec<&Stored> = self
            .flows
            .get(&id)
            .into_iter()
            .flat_map(|f| f.packets.iter())
            .filter_map(|p| self.packets.get(&p))
            .collect();
        stored.sort_unstable_by_key(|s| s.seq);
        stored.into_iter().map(|s| &s.packet)
    }

    /// Where a kept packet is in the order packets finished (a higher
    /// value finished later).
    pub fn finish_order(&self, id: PacketId) -> Option<u64> {
        self.packets.get(&id).map(|s| s.seq)
    }

    /// The newest (highest id) kept packet of a flow among `roles`, up to
    /// `upto` (`None`: any).
    pub fn newest_packet(
        &self,
        id: FlowId,
        roles: Roles,
        upto: Option<PacketId>,
    ) -> Option<&Packet> {
        let f = self.flows.get(&id)?;
        let n = f.packets.count_upto(roles, upto);
        let last = *f.packets.ids(roles).get(n.checked_sub(1)?)?;
        self.packet(last)
    }

    /// Changes whenever a packet enters or leaves any flow (each flow's
    /// [`PacketIndex::version`] is the value at its last change).
    pub fn packet_changes(&self) -> u64 {
        self.packet_changes
    }

    /// Changes whenever a namespace name does.
    pub fn names_version(&self) -> u64 {
        self.names_version
    }

    /// Periodic clock and kernel counters (live: the reader's; replay: the
    /// recorded ones).
    pub fn on_tick(&mut self, t: &Tick) {
        // Events per second over the last RATE_WINDOW_NS: the reader reports
        // its counters every 500 ms and traffic comes in bursts, so a
        // shorter window makes the figure jump between 0 and peaks.
        self.rate_samples.push_back((t.now_ns, t.received));
        while self.rate_samples.len() > 2 && self.rate_samples[1].0 + RATE_WINDOW_NS <= t.now_ns {
            self.rate_samples.pop_front();
        }
        if let Some(&(ts, received)) = self.rate_samples.front() {
            let dt = t.now_ns.saturating_sub(ts);
            if dt >= 1_000_000_000 {
                self.counters.events_per_s =
                    t.received.saturating_sub(received) as f64 * 1e9 / dt as f64;
            }
        }
        if self.counters.tick != *t {
            self.generation += 1;
        }
        self.counters.tick = *t;
    }

    pub fn drop_reasons(&self) -> &DropReasons {
        &self.drop_reasons
    }

    pub fn set_drop_reasons(&mut self, reasons: DropReasons) {
        self.drop_reasons = reasons;
        self.generation += 1;
    }

    /// Name of a namespace, when known.
    pub fn netns_name(&self, ns: NetnsId) -> Option<&str> {
        self.netns_names.get(&ns.0).map(String::as_str)
    }

    /// Records (or renames) a namespace's name.
    pub fn set_netns_name(&mut self, ns: NetnsId, name: &str) {
        if self.netns_names.len() >= MAX_TOPOLOGY_ENTRIES && !self.netns_names.contains_key(&ns.0) {
            return;
        }
        if self.netns_names.get(&ns.0).map(String::as_str) != Some(name) {
            self.netns_names.insert(ns.0, name.to_owned());
            self.generation += 1;
            self.names_version += 1;
        }
    }

    /// Records (or updates) what the kernel says about a link.
    pub fn set_link(&mut self, l: LinkInfo) {
        let key = (l.netns, l.ifindex);
        if self.links.len() >= MAX_TOPOLOGY_ENTRIES && !self.links.contains_key(&key) {
            return;
        }
        if self.links.get(&key) != Some(&l) {
            self.links.insert(key, l);
            self.generation += 1;
        }
    }

    /// Drops by reason, namespace and device.
    pub fn drops(&self) -> impl Iterator<Item = &DropStat> {
        self.drops.values()
    }

    pub fn drop_stat(&self, key: DropKey) -> Option<&DropStat> {
        self.drops.get(&key)
    }

    /// `function+0xoff` of a code address, when resolved.
    pub fn symbol(&self, addr: u64) -> Option<&str> {
        self.symbols.get(&addr).map(String::as_str)
    }

    pub fn set_symbol(&mut self, addr: u64, name: &str) {
        if self.symbols.len() >= MAX_TOPOLOGY_ENTRIES && !self.symbols.contains_key(&addr) {
            return;
        }
        self.symbols.insert(addr, name.to_owned());
        self.generation += 1;
    }

    pub fn set_in_flight(&mut self, n: u64) {
        if self.counters.in_flight != n {
            self.counters.in_flight = n;
            self.generation += 1;
        }
    }

    pub fn set_degraded(&mut self, hooks: Vec<String>) {
        self.counters.degraded = hooks;
        self.generation += 1;
    }

    fn entry(&mut self, flow: &Flow, ts: u64) -> &mut FlowEntry {
        self.flows
            .entry(flow.id)
            .or_insert_with(|| FlowEntry::new(flow, ts))
    }

    fn evict_flows(&mut self) {
        if self.flows.len() <= self.cfg.max_flows {
            return;
        }
        let keep = self.cfg.max_flows - self.cfg.max_flows / 10;
        let mut ages: Vec<(u64, FlowId)> = self.flows.values().map(|f| (f.last_ts, f.id)).collect();
        let cut = ages.len() - keep;
        ages.select_nth_unstable(cut - 1);
        for &(_, id) in &ages[..cut] {
            if let Some(f) = self.flows.remove(&id) {
                for p in f.packets.iter() {
                    self.packets.remove(&p);
                }
                self.counters.flows_evicted += 1;
            }
        }
    }

    /// Evicts the oldest packets until `room` more fit; returns the last
    /// one evicted so its buffers can be reused.
    fn evict_packets(&mut self, room: usize) -> Option<Packet> {
        let mut spare = None;
        while self.packets.len() + room > self.cfg.max_packets.max(room) {
            let Some(id) = self.finished.pop_front() else {
                break;
            };
            let Some(Stored { packet: p, .. }) = self.packets.remove(&id) else {
                continue;
            };
            self.counters.packets_evicted += 1;
            self.unindex(&p);
            spare = Some(p);
        }
        spare
    }

    /// Takes a stored packet out of its flow's index.
    fn unindex(&mut self, p: &Packet) {
        if let Some(f) = p.flow.and_then(|f| self.flows.get_mut(&f)) {
            self.packet_changes += 1;
            f.packets.remove(p.id, p.role, self.packet_changes);
        }
    }
}

/// The explorer's sink takes facts into its own tables (what the screens
/// and a `d` export read) and the clock from ticks.
impl FactSink for Model {
    fn fact(&mut self, fact: &Fact) {
        match fact {
            Fact::NetnsName { inode, name } => self.set_netns_name(NetnsId(*inode), name),
            Fact::Link(l) => self.set_link(l.clone()),
            Fact::Symbol { addr, name } => self.set_symbol(*addr, name),
            Fact::DropReasons(r) => self.set_drop_reasons(r.clone()),
            Fact::Stack { .. } => {}
        }
    }

    fn tick(&mut self, tick: &Tick, in_flight: u64) {
        self.on_tick(tick);
        self.set_in_flight(in_flight);
    }

    fn snapshot(&mut self, s: &Snapshot) {
        self.snapshots.add(s.clone());
    }

    /// Hops and annotations are counted, not shown with their places.
    fn shows_hop(&self, _ev: &HopEvent, _ctx: &HopContext, _flow: Option<&Flow>) -> bool {
        false
    }

    fn shows_annotation(
        &self,
        _ev: &HopEvent,
        _at: &crate::correlate::Annotation,
        _flow: Option<&Flow>,
    ) -> bool {
        false
    }

    fn shows_packet(&self, p: &Packet, flow: Option<&Flow>) -> bool {
        flow.is_some() && self.cfg.filter.packet(p, flow)
    }
}

impl Sink for Model {
    fn annotation(
        &mut self,
        ev: &HopEvent,
        at: &crate::correlate::Annotation,
        flow: Option<&Flow>,
    ) {
        let Some(flow) = flow else { return };
        if !self.cfg.filter.annotation(at.device, Some(flow)) {
            return;
        }
        let e = self.entry(flow, ev.ts_ns);
        match ev.hook {
            crate::event::Hook::TcpSendReset | crate::event::Hook::TcpReceiveReset => e.resets += 1,
            crate::event::Hook::TcpRetransmit => e.retransmits += 1,
            crate::event::Hook::IcmpSend => e.icmp_errors += 1,
            _ => {}
        }
        self.generation += 1;
    }

    fn hop(&mut self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) {
        self.counters.events += 1;
        let Some(flow) = flow else { return };
        if !self.cfg.filter.hop(ev, Some(flow)) {
            return;
        }
        let e = self.entry(flow, ev.ts_ns);
        e.last_ts = e.last_ts.max(ev.ts_ns);
        e.owned = flow.owned;
        // Packets count from their first sighting, so a flow's totals and
        // sides show while its packets are still in flight; a copy is the
        // same packet again.
        if ev.new_packet && ctx.copy_of.is_none() {
            let ns = ev.device.map(|d| d.netns);
            match ctx.role {
                Some(Role::Reply) => {
                    e.replies += 1;
                    if e.replies == 1 {
                        e.responder_netns = ns.or(e.responder_netns);
                    }
                }
                Some(Role::Request) | None => {
                    e.requests += 1;
                    if e.initiator_netns.is_none() {
                        e.initiator_netns = ns;
                    }
                }
            }
            e.bytes += u64::from(ev.len);
        }
        self.generation += 1;
    }

    fn packet_done(&mut self, p: &Packet, flow: Option<&Flow>) {
        let Some(flow) = flow else { return };
        if !self.cfg.filter.packet(p, Some(flow)) {
            return;
        }
        self.counters.packets_finished += 1;
        let first_ns = p.visits.first().map(|v| v.device.netns);
        let last_ns = p.visits.last().map(|v| v.device.netns);
        let transit = transit_ns(p);
        // Routine frees (socket close, ...) are not drops (the correlator
        // decided, with the kernel's reason names).
        let dropped = match p.outcome {
            Outcome::Dropped { reason, .. } => Some(reason),
            _ => None,
        };
        if let (Some(reason), Some(last)) = (dropped, p.visits.last()) {
            let key = DropKey {
                reason,
                netns: last.device.netns,
                ifindex: last.device.ifindex.0,
            };
            if self.drops.len() < MAX_DROP_ROWS || self.drops.contains_key(&key) {
                let d = self.drops.entry(key).or_insert(DropStat {
                    key,
                    ifname: last.device.ifname,
                    count: 0,
                    last_ts: 0,
                    example: p.id,
                    flow: flow.id,
                });
                d.count += 1;
                d.last_ts = p.last_ts;
                d.example = p.id;
                d.flow = flow.id;
            }
        }
        let e = self.entry(flow, p.first_ts);
        e.last_ts = e.last_ts.max(p.last_ts);
        // A GSO packet cut into segments: they are the packets on the wire.
        if p.segmented.is_some() && p.copy_of.is_none() {
            match p.role {
                Some(Role::Reply) => e.replies = e.replies.saturating_sub(1),
                _ => e.requests = e.requests.saturating_sub(1),
            }
            e.bytes = e
                .bytes
                .saturating_sub(p.visits.first().map_or(0, |v| u64::from(v.len)));
        }
        // Until the other side answers, where a request ended is the best
        // guess of where that side lives (and the reverse for replies).
        match p.role {
            Some(Role::Request) | None => {
                e.initiator_netns = e.initiator_netns.or(first_ns);
                e.responder_netns = e.responder_netns.or(last_ns);
            }
            Some(Role::Reply) => {
                e.responder_netns = e.responder_netns.or(first_ns);
                e.initiator_netns = e.initiator_netns.or(last_ns);
            }
        }
        if let Some(reason) = dropped {
            e.drops += 1;
            if let Some((_, n)) = e.drop_reasons.iter_mut().find(|(r, _)| *r == reason) {
                *n += 1;
            } else if e.drop_reasons.len() < 8 {
                e.drop_reasons.push((reason, 1));
            }
        }
        e.add_transit(transit);
        // The same packet again (not expected from the correlator) replaces
        // the one stored, in its flow's index too.
        if let Some(old) = self.packets.remove(&p.id) {
            self.unindex(&old.packet);
        }
        self.packet_changes += 1;
        let version = self.packet_changes;
        // The flow was just found or created above; it is not evicted
        // before the end of this call.
        if let Some(e) = self.flows.get_mut(&flow.id) {
            e.packets.insert(p.id, p.role, version);
        }
        // At the cap, the evicted packet's visit buffer takes the copy, so
        // a full model stores packets without allocating.
        let stored = match self.evict_packets(1) {
            Some(mut old) => {
                old.clone_from(p);
                old
            }
            None => p.clone(),
        };
        self.packets.insert(
            p.id,
            Stored {
                packet: stored,
                seq: self.stored,
            },
        );
        self.stored += 1;
        self.finished.push_back(p.id);
        if self.finished.len() > 2 * self.cfg.max_packets.max(1) {
            // Ids of packets evicted with their flow: drop them in one pass.
            let packets = &self.packets;
            self.finished.retain(|id| packets.contains_key(id));
        }
        self.last_packet = self.last_packet.max(Some(p.id));
        self.generation += 1;
        self.evict_flows();
    }
}

impl TopologyView for Model {
    fn netns_name(&self, netns: u32) -> Option<&str> {
        self.netns_names.get(&netns).map(String::as_str)
    }
    fn link(&self, netns: u32, ifindex: u32) -> Option<&LinkInfo> {
        self.links.get(&(netns, ifindex))
    }
}
