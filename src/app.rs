//! The explorer's view state and how input changes it (Elm style:
//! `App::update(&mut self, &Model, Input)`, then `ui::render`). Pure: no
//! terminal, no clock.
//!
//! Rows are selected by id (flow id, packet id, visit index), never by row
//! number, so live inserts and re-sorting do not move the cursor to another
//! item. When the selected item disappears (evicted, filtered out), the
//! cursor stays at the same row number, clamped to the list.
//!
//! A frame's cost does not grow with the packets kept: the packets of a
//! flow are a window onto the model's per-flow index, and what must be
//! computed over all of them (a search, another order) is cached between
//! frames ([`lists`]).
//!
//! The kernel's packet filter is edited here too ([`KernelFilter`]): `f`
//! opens a line, Enter compiles it with libpcap (no terminal, no clock:
//! still pure) and leaves the compiled filter in an outbox the runner hands
//! to the reader; the status bar shows a filter once the reader says it is
//! in force ([`App::filter_applied`]).

pub mod lists;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent};

use crate::correlate::path::{dominant_path, PathStats};
use crate::correlate::{FlowId, Packet, Role};
use crate::event::PacketId;
use crate::filter::PacketFilter;
use crate::input::{self, Action};
use crate::model::{DropKey, FlowEntry, Model, Roles};
use crate::output::describe;
use crate::topology::graph::HopGraph;
use lists::{
    sort_key, Detail as Covered, DetailKey, ListKey, PacketList, Rows, SortedRows, ViewCache,
    DETAIL_PACKETS,
};

/// Which list fills the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Flows,
    Packets,
    Hops,
    /// Drops by reason, namespace and device.
    Drops,
}

impl Screen {
    fn index(self) -> usize {
        self as usize
    }
}

/// What the detail area shows (Tab cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    HopList,
    Graph,
    PathStats,
}

impl Detail {
    pub fn name(self) -> &'static str {
        match self {
            Detail::HopList => "hops",
            Detail::Graph => "hop graph",
            Detail::PathStats => "path statistics",
        }
    }
    fn next(self) -> Detail {
        match self {
            Detail::HopList => Detail::Graph,
            Detail::Graph => Detail::PathStats,
            Detail::PathStats => Detail::HopList,
        }
    }
}

/// The order of the flows list (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSort {
    LastSeen,
    Packets,
    Bytes,
    Drops,
    Transit,
    FirstSeen,
}

impl FlowSort {
    pub fn name(self) -> &'static str {
        match self {
            FlowSort::LastSeen => "last seen",
            FlowSort::Packets => "packets",
            FlowSort::Bytes => "bytes",
            FlowSort::Drops => "drops",
            FlowSort::Transit => "median transit",
            FlowSort::FirstSeen => "first seen",
        }
    }
    fn next(self) -> FlowSort {
        match self {
            FlowSort::LastSeen => FlowSort::Packets,
            FlowSort::Packets => FlowSort::Bytes,
            FlowSort::Bytes => FlowSort::Drops,
            FlowSort::Drops => FlowSort::Transit,
            FlowSort::Transit => FlowSort::FirstSeen,
            FlowSort::FirstSeen => FlowSort::LastSeen,
        }
    }
}

/// The order of a flow's packets (`s` cycles); newest and oldest first
/// are by packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketSort {
    Newest,
    Oldest,
    Transit,
    Visits,
}

impl PacketSort {
    pub fn name(self) -> &'static str {
        match self {
            PacketSort::Newest => "newest first",
            PacketSort::Oldest => "oldest first",
            PacketSort::Transit => "transit time",
            PacketSort::Visits => "visits",
        }
    }
    fn next(self) -> PacketSort {
        match self {
            PacketSort::Newest => PacketSort::Oldest,
            PacketSort::Oldest => PacketSort::Transit,
            PacketSort::Transit => PacketSort::Visits,
            PacketSort::Visits => PacketSort::Newest,
        }
    }
}

/// A list cursor that follows an item by id. Until the user moves it, it
/// stays on the first row, so a live list shows its newest items.
#[derive(Debug, Clone)]
pub struct Cursor<T> {
    pub selected: Option<T>,
    /// The user moved it: from then on it follows its item.
    pub touched: bool,
    /// Row of the selection at the last resolve.
    pub index: usize,
    /// First row shown (kept by the renderer).
    pub offset: usize,
}

impl<T> Default for Cursor<T> {
    fn default() -> Self {
        Cursor {
            selected: None,
            touched: false,
            index: 0,
            offset: 0,
        }
    }
}

impl<T: Copy + PartialEq> Cursor<T> {
    /// Finds the selection in `rows`; when it is gone, keeps the row number
    /// (clamped) and selects what is there now. `None` when `rows` is empty.
    pub fn resolve<R: Rows<T> + ?Sized>(&mut self, rows: &R) -> Option<usize> {
        if rows.is_empty() {
            self.index = 0;
            return None;
        }
        let i = if self.touched {
            self.selected
                .and_then(|s| rows.position(s))
                .unwrap_or(self.index.min(rows.len() - 1))
        } else {
            0
        };
        self.index = i;
        self.selected = rows.get(i);
        Some(i)
    }

    fn move_to<R: Rows<T> + ?Sized>(&mut self, rows: &R, i: usize) {
        if rows.is_empty() {
            return;
        }
        let i = i.min(rows.len() - 1);
        self.touched = true;
        self.index = i;
        self.selected = rows.get(i);
    }

    fn reset(&mut self) {
        *self = Cursor::default();
    }
}

/// Search of one list.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: String,
    pub editing: bool,
}

impl Search {
    pub fn active(&self) -> bool {
        !self.query.is_empty()
    }

    fn matches(&self, haystack: &str) -> bool {
        self.matcher()(haystack)
    }

    /// [`Search::matches`] for many haystacks (the query is lowered once).
    fn matcher(&self) -> impl Fn(&str) -> bool {
        let query = self.query.to_lowercase();
        move |haystack: &str| query.is_empty() || haystack.to_lowercase().contains(&query)
    }
}

/// An expression and its mode, as the user asked for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// pcap-filter expression; empty: no filter, follow everything.
    pub expr: String,
    /// Follow whole flows (`--flow`), not only the matching packets.
    pub whole_flows: bool,
}

/// The filter input line (`f`).
#[derive(Debug, Clone, Default)]
pub struct FilterEdit {
    pub text: String,
    /// libpcap's refusal of the last Enter; the filter in force stays.
    pub error: Option<String>,
}

/// The packet filter in the kernel, as the explorer knows it.
#[derive(Debug, Clone, Default)]
pub struct KernelFilter {
    /// A live reader can take a new filter (false in a replay).
    pub editable: bool,
    /// What is in force.
    pub current: FilterSpec,
    /// How the filter in force is described (`PacketFilter::label`); None:
    /// no filter.
    pub label: Option<String>,
    /// Where hops are looked at (`--netns`, `--iface`, `--pid`); fixed
    /// for the run.
    pub scope: Option<String>,
    /// The input line, while open.
    pub editing: Option<FilterEdit>,
    /// An expression for the runner to compile, off the screen's thread
    /// and bounded in time (`filter::Compilation`); the answer comes back
    /// through [`App::filter_compiled`].
    pub compile: Option<FilterSpec>,
    /// The newest expression being compiled; answers for older ones are
    /// dropped.
    pub compiling: Option<FilterSpec>,
    /// A compiled filter (None: no filter) for the runner to hand to the
    /// reader (`Reader::set_filter`).
    pub outbox: Option<Option<PacketFilter>>,
    /// Sent to the reader, oldest first, not confirmed yet (the reader
    /// answers each, in order).
    pub pending: VecDeque<FilterSpec>,
}

impl KernelFilter {
    /// What the next change starts from: the newest one asked for.
    pub fn latest(&self) -> &FilterSpec {
        self.pending.back().unwrap_or(&self.current)
    }
}

/// What freezing keeps still: the list of flows, their rows as they were,
/// and the newest packet (later packets are not listed).
#[derive(Debug, Clone)]
pub struct Frozen {
    pub flows: Vec<FlowId>,
    pub entries: std::collections::HashMap<FlowId, FlowEntry>,
    pub last_packet: Option<PacketId>,
}

/// Input the app reacts to.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Key(KeyEvent),
    Mouse(MouseEvent),
}

/// The explorer's view state: which screen, which rows are selected,
/// searches, sorts, freezing and the kernel filter being edited (see the
/// module documentation). [`App::update`] applies input; `ui::render`
/// draws it.
#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub detail: Detail,
    pub show_requests: bool,
    pub show_replies: bool,
    pub flow_sort: FlowSort,
    pub packet_sort: PacketSort,
    pub flows: Cursor<FlowId>,
    pub packets: Cursor<PacketId>,
    pub hops: Cursor<usize>,
    pub drops: Cursor<DropKey>,
    /// One search per screen.
    pub search: [Search; 4],
    pub frozen: Option<Frozen>,
    pub help: bool,
    pub quit: bool,
    /// Rows per page of the main list (set by the renderer).
    pub page_rows: usize,
    /// One-line message for the status bar (e.g. why Enter did nothing).
    pub notice: Option<String>,
    /// What the user is told is filtered after correlation, such as the
    /// demo's lab namespaces (set by the runner).
    pub filter_label: String,
    /// The kernel's packet filter and scope.
    pub filter: KernelFilter,
    /// Where the events come from ("live", "replay FILE").
    pub source_label: String,
    /// The user asked to export this flow's hop graph (the runner writes
    /// the file and says so in `notice`).
    pub export_dot: Option<FlowId>,
    /// Lists, graphs and statistics computed for earlier frames, reused
    /// while their inputs are unchanged.
    pub cache: ViewCache,
}

impl Default for App {
    fn default() -> Self {
        App {
            screen: Screen::Flows,
            detail: Detail::HopList,
            show_requests: true,
            show_replies: true,
            flow_sort: FlowSort::LastSeen,
            packet_sort: PacketSort::Newest,
            flows: Cursor::default(),
            packets: Cursor::default(),
            hops: Cursor::default(),
            drops: Cursor::default(),
            search: Default::default(),
            frozen: None,
            help: false,
            quit: false,
            page_rows: 10,
            notice: None,
            filter_label: EVERYTHING.to_owned(),
            filter: KernelFilter::default(),
            source_label: "live".to_owned(),
            export_dot: None,
            cache: ViewCache::default(),
        }
    }
}

/// `filter_label` when nothing is filtered after correlation.
pub const EVERYTHING: &str = "everything";

/// Text a flow is searched by: protocol, endpoints, namespace names.
pub fn flow_haystack(f: &FlowEntry, model: &Model, out: &mut String) {
    out.clear();
    let _ = write!(out, "{} ", f.key.proto.name());
    for (ep, ns) in [
        (f.initiator, f.initiator_netns),
        (f.responder(), f.responder_netns),
    ] {
        if let Some(a) = ep.0 {
            let _ = write!(out, "{a} {a}:{} ", ep.1);
        }
        if let Some(ns) = ns {
            let _ = write!(out, "{} ", ns.0);
            if let Some(n) = model.netns_name(ns) {
                let _ = write!(out, "{n} ");
            }
        }
    }
}

/// Text a packet is searched by: headers, devices, outcome.
pub fn packet_haystack(p: &Packet, model: &Model, out: &mut String) {
    out.clear();
    let _ = write!(out, "{} {} ", p.id.0, p.role.map_or("-", Role::name));
    if let Some(h) = p.headers {
        describe(&h, out);
    }
    for v in &p.visits {
        let _ = write!(out, " {}", v.device.ifname);
        if let Some(n) = model.netns_name(v.device.netns) {
            let _ = write!(out, " {n}");
        }
    }
    out.push(' ');
    out.push_str(p.outcome.word());
    for v in &p.visits {
        if let Some(rw) = v.rewrite {
            let _ = write!(out, " {rw}");
        }
    }
}

impl App {
    pub fn search(&self) -> &Search {
        &self.search[self.screen.index()]
    }

    fn search_mut(&mut self) -> &mut Search {
        &mut self.search[self.screen.index()]
    }

    /// A flow's row: as it was when frozen, else as it is.
    pub fn flow_entry<'a>(&'a self, model: &'a Model, id: FlowId) -> Option<&'a FlowEntry> {
        match &self.frozen {
            Some(fr) => fr.entries.get(&id).or_else(|| model.flow(id)),
            None => model.flow(id),
        }
    }

    /// The flows listed, in order.
    pub fn flow_rows(&self, model: &Model) -> Vec<FlowId> {
        let search = &self.search[Screen::Flows.index()];
        let matches = search.matcher();
        let mut hay = String::new();
        let keep = |f: &FlowEntry, hay: &mut String| {
            if !search.active() {
                return true;
            }
            flow_haystack(f, model, hay);
            matches(hay)
        };
        if let Some(fr) = &self.frozen {
            return fr
                .flows
                .iter()
                .filter_map(|id| fr.entries.get(id))
                .filter(|f| keep(f, &mut hay))
                .map(|f| f.id)
                .collect();
        }
        let mut flows: Vec<&FlowEntry> = model.flows().filter(|f| keep(f, &mut hay)).collect();
        let by_id = |a: &&FlowEntry, b: &&FlowEntry| a.id.cmp(&b.id);
        match self.flow_sort {
            FlowSort::LastSeen => {
                flows.sort_by(|a, b| b.last_ts.cmp(&a.last_ts).then_with(|| by_id(a, b)))
            }
            FlowSort::Packets => flows.sort_by(|a, b| {
                b.packets_seen()
                    .cmp(&a.packets_seen())
                    .then_with(|| by_id(a, b))
            }),
            FlowSort::Bytes => {
                flows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| by_id(a, b)))
            }
            FlowSort::Drops => {
                flows.sort_by(|a, b| b.drops.cmp(&a.drops).then_with(|| by_id(a, b)))
            }
            FlowSort::Transit => flows.sort_by(|a, b| {
                b.median_transit_ns()
                    .cmp(&a.median_transit_ns())
                    .then_with(|| by_id(a, b))
            }),
            FlowSort::FirstSeen => flows.sort_by(by_id),
        }
        flows.into_iter().map(|f| f.id).collect()
    }

    /// The roles shown (`r`, `R`).
    pub fn roles(&self) -> Roles {
        Roles {
            requests: self.show_requests,
            replies: self.show_replies,
        }
    }

    /// When frozen, the newest packet listed (`Some(None)`: none).
    fn frozen_upto(&self) -> Option<Option<PacketId>> {
        self.frozen.as_ref().map(|f| f.last_packet)
    }

    /// How many of the selected flow's packets of `roles` are listed
    /// (all, or those up to the newest one when frozen): the first that
    /// many of its index.
    fn visible_count(&self, f: &FlowEntry, roles: Roles) -> usize {
        match self.frozen_upto() {
            None => f.packets.ids(roles).len(),
            Some(None) => 0,
            Some(upto) => f.packets.count_upto(roles, upto),
        }
    }

    fn packet_visible(&self, p: &Packet) -> bool {
        let frozen_ok = self
            .frozen
            .as_ref()
            .is_none_or(|f| f.last_packet.is_some_and(|l| p.id <= l));
        self.roles().shows(p.role) && frozen_ok
    }

    /// Packets of the selected flow that the graph and path statistics use:
    /// the role toggles and freezing apply, the search does not. All of
    /// them, oldest first (one step per packet: for exports and tests; a
    /// frame uses [`App::flow_graph`] and [`App::path_stats`]).
    pub fn flow_packets<'m>(&self, model: &'m Model) -> Vec<&'m Packet> {
        match self.flows.selected {
            Some(f) => model
                .flow_packets(f)
                .filter(|p| self.packet_visible(p))
                .collect(),
            None => Vec::new(),
        }
    }

    /// What the packet list of the selected flow depends on; `None` when
    /// no flow is selected or it is gone from the model.
    fn list_key(&self, model: &Model) -> Option<ListKey> {
        let flow = self.flows.selected?;
        let f = model.flow(flow)?;
        let search = &self.search[Screen::Packets.index()];
        Some(ListKey {
            flow,
            roles: self.roles(),
            upto: self.frozen_upto(),
            sort: self.packet_sort,
            query: search.query.clone(),
            version: f.packets.version(),
            names: if search.active() {
                model.names_version()
            } else {
                0
            },
        })
    }

    /// The packets listed for the selected flow, in order: a window onto
    /// the flow's index, or (a search, another order than by id) rows
    /// computed once and cached until what they depend on changes.
    pub fn packet_list<'m>(&mut self, model: &'m Model) -> PacketList<'m> {
        let Some(key) = self.list_key(model) else {
            return PacketList::empty();
        };
        if let Some(list) = self.index_list(model, &key) {
            return list;
        }
        let rows = match &self.cache.packets {
            Some((k, rows)) if *k == key => rows.clone(),
            _ => {
                let rows = self.sorted_rows(model, &key);
                self.cache.packets = Some((key.clone(), rows.clone()));
                rows
            }
        };
        PacketList::sorted(rows, key.sort, model)
    }

    /// The packets listed for the selected flow, in order, as a `Vec` (one
    /// step per packet; a frame uses [`App::packet_list`]).
    pub fn packet_rows(&self, model: &Model) -> Vec<PacketId> {
        let Some(key) = self.list_key(model) else {
            return Vec::new();
        };
        if let Some(list) = self.index_list(model, &key) {
            return list.to_vec();
        }
        let rows = match &self.cache.packets {
            Some((k, rows)) if *k == key => rows.clone(),
            _ => self.sorted_rows(model, &key),
        };
        rows.iter().map(|r| r.1).collect()
    }

    /// The list as a window onto the flow's index: without a search, in
    /// id order.
    fn index_list<'m>(&self, model: &'m Model, key: &ListKey) -> Option<PacketList<'m>> {
        if !key.query.is_empty() || !matches!(key.sort, PacketSort::Newest | PacketSort::Oldest) {
            return None;
        }
        let f = model.flow(key.flow)?;
        Some(PacketList::index(
            f.packets.ids(key.roles),
            self.visible_count(f, key.roles),
            key.sort == PacketSort::Newest,
        ))
    }

    /// The rows of a search or of an order other than by id: one step per
    /// packet of the flow, and a sort.
    fn sorted_rows(&self, model: &Model, key: &ListKey) -> SortedRows {
        let Some(f) = model.flow(key.flow) else {
            return Arc::from(Vec::new());
        };
        let n = self.visible_count(f, key.roles);
        let search = &self.search[Screen::Packets.index()];
        let matches = search.matcher();
        let mut hay = String::new();
        let mut rows: Vec<_> = f
            .packets
            .ids(key.roles)
            .iter()
            .take(n)
            .filter_map(|id| model.packet(*id))
            .filter(|p| {
                if !search.active() {
                    return true;
                }
                packet_haystack(p, model, &mut hay);
                matches(&hay)
            })
            .map(|p| (sort_key(key.sort, p), p.id))
            .collect();
        match key.sort {
            // The index is in id order already.
            PacketSort::Oldest => {}
            PacketSort::Newest => rows.reverse(),
            PacketSort::Transit | PacketSort::Visits => rows.sort_unstable(),
        }
        Arc::from(rows)
    }

    /// The packet whose hops are shown: the selected one, or on the flows
    /// screen the newest (highest id) visible packet of the selected flow.
    pub fn focus_packet<'m>(&self, model: &'m Model) -> Option<&'m Packet> {
        match self.screen {
            Screen::Flows => {
                let f = self.flows.selected?;
                match self.frozen_upto() {
                    Some(None) => None,
                    upto => model.newest_packet(f, self.roles(), upto.flatten()),
                }
            }
            Screen::Packets | Screen::Hops => self.packets.selected.and_then(|p| model.packet(p)),
            // The example packet of the selected drop.
            Screen::Drops => {
                let rows = self.drop_rows(model);
                let key = self.drops.selected.filter(|k| rows.contains(k))?;
                model.drop_stat(key).and_then(|d| model.packet(d.example))
            }
        }
    }

    /// What the hop graph and path statistics of the selected flow depend
    /// on.
    fn detail_key(&self, model: &Model) -> Option<DetailKey> {
        let flow = self.flows.selected?;
        let f = model.flow(flow)?;
        Some(DetailKey {
            flow,
            roles: self.roles(),
            upto: self.frozen_upto(),
            version: f.packets.version(),
        })
    }

    /// The newest (highest ids, at most [`DETAIL_PACKETS`]) visible
    /// packets of the selected flow in the order they finished, and how
    /// many are visible.
    fn detail_packets<'m>(&self, model: &'m Model, key: &DetailKey) -> (Vec<&'m Packet>, usize) {
        let Some(f) = model.flow(key.flow) else {
            return (Vec::new(), 0);
        };
        let n = self.visible_count(f, key.roles);
        let ids = f.packets.ids(key.roles);
        let mut packets: Vec<(u64, &Packet)> = ids
            .range(n.saturating_sub(DETAIL_PACKETS)..n)
            .filter_map(|id| Some((model.finish_order(*id)?, model.packet(*id)?)))
            .collect();
        // "last" of the path statistics is the packet that finished last.
        packets.sort_unstable_by_key(|p| p.0);
        (packets.into_iter().map(|p| p.1).collect(), n)
    }

    /// The hop graph of the selected flow's newest visible packets (the
    /// role toggles and freezing apply, the search does not); cached until
    /// the flow's packets, the roles or freezing change.
    pub fn flow_graph(&mut self, model: &Model) -> Option<Covered<HopGraph>> {
        let key = self.detail_key(model)?;
        if let Some((k, d)) = &self.cache.graph {
            if *k == key {
                return Some(d.clone());
            }
        }
        let (packets, visible) = self.detail_packets(model, &key);
        let d = Covered {
            value: Arc::new(HopGraph::build(packets.iter().copied())),
            shown: packets.len(),
            visible,
        };
        self.cache.graph = Some((key, d.clone()));
        Some(d)
    }

    /// The path statistics (requests, then replies) of the selected flow's
    /// newest visible packets; cached like [`App::flow_graph`].
    pub fn path_stats(&mut self, model: &Model) -> Option<Covered<Vec<PathStats>>> {
        let key = self.detail_key(model)?;
        if let Some((k, d)) = &self.cache.paths {
            if *k == key {
                return Some(d.clone());
            }
        }
        let (packets, visible) = self.detail_packets(model, &key);
        let stats = [Role::Request, Role::Reply]
            .into_iter()
            .filter_map(|r| dominant_path(packets.iter().copied(), r))
            .collect();
        let d = Covered {
            value: Arc::new(stats),
            shown: packets.len(),
            visible,
        };
        self.cache.paths = Some((key, d.clone()));
        Some(d)
    }

    /// Visit indexes listed for the focused packet.
    pub fn hop_rows(&self, model: &Model) -> Vec<usize> {
        let Some(p) = self.focus_packet(model) else {
            return Vec::new();
        };
        let search = &self.search[Screen::Hops.index()];
        (0..p.visits.len())
            .filter(|&i| {
                if !search.active() {
                    return true;
                }
                let v = &p.visits[i];
                let mut hay = format!("{} {}", v.device.ifname, v.device.netns.0);
                if let Some(n) = model.netns_name(v.device.netns) {
                    hay.push(' ');
                    hay.push_str(n);
                }
                for h in v.hooks.iter() {
                    hay.push(' ');
                    hay.push_str(h.name());
                }
                search.matches(&hay)
            })
            .collect()
    }

    /// The drops view's rows: most frequent first.
    pub fn drop_rows(&self, model: &Model) -> Vec<DropKey> {
        let search = &self.search[Screen::Drops.index()];
        let mut rows: Vec<&crate::model::DropStat> = model
            .drops()
            .filter(|d| {
                if !search.active() {
                    return true;
                }
                let hay = format!(
                    "{} {} {} {}",
                    model.drop_reasons().name(d.key.reason).unwrap_or_default(),
                    d.key.netns.0,
                    crate::topology::TopologyView::netns_name(model, d.key.netns.0)
                        .unwrap_or_default(),
                    d.ifname
                );
                search.matches(&hay)
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        rows.into_iter().map(|d| d.key).collect()
    }

    /// Re-finds every selection in the current data (call before render).
    pub fn clamp(&mut self, model: &Model) {
        let flows = self.flow_rows(model);
        self.flows.resolve(&flows);
        if self.screen != Screen::Flows {
            let pkts = self.packet_list(model);
            self.packets.resolve(&pkts);
        }
        if self.screen == Screen::Hops {
            let hops = self.hop_rows(model);
            self.hops.resolve(&hops);
        }
        if self.screen == Screen::Drops {
            let drops = self.drop_rows(model);
            self.drops.resolve(&drops);
        }
    }

    /// Applies one input. Sets `quit` when asked to leave.
    pub fn update(&mut self, model: &Model, input: Input) {
        self.notice = None;
        match input {
            Input::Key(key) => self.on_key(model, key),
            Input::Mouse(m) => {
                if let Some((action, n)) = input::mouse_action(&m) {
                    for _ in 0..n {
                        self.on_action(model, action);
                    }
                }
            }
        }
        self.clamp(model);
    }

    fn on_key(&mut self, model: &Model, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        if input::is_interrupt(&key) {
            self.quit = true;
            return;
        }
        if self.filter.editing.is_some() {
            self.on_filter_key(key);
            return;
        }
        if self.search().editing {
            self.on_search_key(key);
            return;
        }
        if self.help {
            // Any key closes the help; quitting still quits.
            self.help = false;
            if input::action_for(&key) == Some(Action::Quit) {
                self.quit = true;
            }
            return;
        }
        if let Some(a) = input::action_for(&key) {
            self.on_action(model, a);
        }
    }

    fn on_search_key(&mut self, key: KeyEvent) {
        let s = self.search_mut();
        match key.code {
            KeyCode::Enter => s.editing = false,
            KeyCode::Esc => {
                s.editing = false;
                s.query.clear();
            }
            KeyCode::Backspace => {
                if s.query.pop().is_none() {
                    s.editing = false;
                }
            }
            KeyCode::Char(c) if !c.is_control() => s.query.push(c),
            _ => return,
        }
        // The first match becomes the selection.
        self.cursor_reset();
    }

    /// Keys while the filter line is open: Enter compiles and applies, Esc
    /// cancels, ^U clears the line.
    fn on_filter_key(&mut self, key: KeyEvent) {
        let Some(edit) = self.filter.editing.as_mut() else {
            return;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => {
                let spec = FilterSpec {
                    expr: edit.text.trim().to_owned(),
                    whole_flows: self.filter.latest().whole_flows,
                };
                // The line stays open until the expression compiled: it
                // closes then, or shows libpcap's refusal.
                if let Some(edit) = self.filter.editing.as_mut() {
                    edit.error = None;
                }
                self.request_filter(spec);
            }
            KeyCode::Esc => {
                // A compilation still running is forgotten with the line.
                self.filter.editing = None;
                self.filter.compile = None;
                if self.filter.compiling.take().is_some() {
                    self.notice = None;
                }
            }
            KeyCode::Backspace => {
                edit.text.pop();
            }
            KeyCode::Char('u') if ctrl => edit.text.clear(),
            KeyCode::Char(c)
                if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) && !c.is_control() =>
            {
                edit.text.push(c)
            }
            _ => {}
        }
    }

    /// Asks the runner to compile `spec` (libpcap, on a worker).
    fn request_filter(&mut self, spec: FilterSpec) {
        self.notice = Some(if spec.expr.is_empty() {
            "removing the filter …".to_owned()
        } else {
            format!("compiling `{}` …", spec.expr)
        });
        self.filter.compile = Some(spec.clone());
        self.filter.compiling = Some(spec);
    }

    /// The runner's answer for `spec`: compiled (queued for the reader; the
    /// filter line closes) or refused (libpcap's message on the line, or in
    /// the notice; nothing changes).
    pub fn filter_compiled(
        &mut self,
        spec: FilterSpec,
        result: Result<Option<PacketFilter>, String>,
    ) {
        if self.filter.compiling.as_ref() != Some(&spec) {
            return;
        }
        self.filter.compiling = None;
        match result {
            Ok(compiled) => {
                self.notice = Some(match &compiled {
                    Some(f) => format!("applying {} …", f.label()),
                    None => "removing the filter …".to_owned(),
                });
                // A newer change replaces one the runner has not sent yet.
                if self.filter.outbox.replace(compiled).is_some() {
                    self.filter.pending.pop_back();
                }
                self.filter.pending.push_back(spec);
                self.filter.editing = None;
            }
            Err(e) => match self.filter.editing.as_mut() {
                Some(edit) => {
                    edit.error = Some(e);
                    self.notice = None;
                }
                None => self.notice = Some(e),
            },
        }
    }

    /// Compiles the expression asked for, here and now (within the time
    /// limit): for tests and callers without a worker loop.
    pub fn compile_requested(&mut self) {
        if let Some(spec) = self.filter.compile.take() {
            let r = crate::filter::compile_bounded(&spec.expr, spec.whole_flows)
                .map_err(|e| e.to_string());
            self.filter_compiled(spec, r);
        }
    }

    /// The reader's answer to the oldest change sent: in force (its label,
    /// None for no filter), or refused by the kernel (the previous filter
    /// stays).
    pub fn filter_applied(&mut self, result: Result<Option<String>, String>) {
        let spec = self.filter.pending.pop_front();
        match result {
            Ok(label) => {
                if let Some(spec) = spec {
                    self.filter.current = spec;
                }
                self.filter.label = label;
                // The status bar shows it now; "applying …" is done unless
                // a newer change is still on its way.
                if self.filter.pending.is_empty() {
                    self.notice = None;
                }
            }
            Err(e) => self.notice = Some(format!("filter not changed: {e}")),
        }
    }

    /// `F`: the same expression again, for whole flows or packets only.
    fn toggle_whole_flows(&mut self) {
        let mut spec = self.filter.latest().clone();
        spec.whole_flows = !spec.whole_flows;
        let mode = if spec.whole_flows {
            "whole flows"
        } else {
            "matching packets only"
        };
        if spec.expr.is_empty() {
            // Nothing to send: the mode waits for the next filter.
            match self.filter.pending.back_mut() {
                Some(p) => p.whole_flows = spec.whole_flows,
                None => self.filter.current.whole_flows = spec.whole_flows,
            }
            self.notice = Some(format!("no filter yet (f sets one); it will follow {mode}"));
        } else {
            self.request_filter(spec);
        }
    }

    /// What the status bar says is filtered: the kernel's filter, the
    /// scope, and what is filtered after correlation.
    pub fn filter_summary(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        parts.extend(self.filter.label.as_deref());
        parts.extend(self.filter.scope.as_deref());
        if parts.is_empty() || self.filter_label != EVERYTHING {
            parts.push(&self.filter_label);
        }
        parts.join(" · ")
    }

    /// Why `f` and `F` do nothing in a replay.
    fn filter_not_editable(&mut self) {
        self.notice = Some("filters apply to live tracing only, not to a replay".to_owned());
    }

    fn cursor_reset(&mut self) {
        match self.screen {
            Screen::Flows => self.flows.reset(),
            Screen::Packets => self.packets.reset(),
            Screen::Hops => self.hops.reset(),
            Screen::Drops => self.drops.reset(),
        }
    }

    fn move_cursor(&mut self, model: &Model, f: impl Fn(usize, usize) -> usize) {
        match self.screen {
            Screen::Flows => {
                let rows = self.flow_rows(model);
                let cur = self.flows.resolve(&rows).unwrap_or(0);
                self.flows.move_to(&rows, f(cur, rows.len()));
            }
            Screen::Packets => {
                let rows = self.packet_list(model);
                let cur = self.packets.resolve(&rows).unwrap_or(0);
                self.packets.move_to(&rows, f(cur, rows.len()));
            }
            Screen::Hops => {
                let rows = self.hop_rows(model);
                let cur = self.hops.resolve(&rows).unwrap_or(0);
                self.hops.move_to(&rows, f(cur, rows.len()));
            }
            Screen::Drops => {
                let rows = self.drop_rows(model);
                let cur = self.drops.resolve(&rows).unwrap_or(0);
                self.drops.move_to(&rows, f(cur, rows.len()));
            }
        }
    }

    fn on_action(&mut self, model: &Model, a: Action) {
        let page = self.page_rows.max(1);
        match a {
            Action::Up => self.move_cursor(model, |c, _| c.saturating_sub(1)),
            Action::Down => self.move_cursor(model, |c, _| c + 1),
            Action::PageUp => self.move_cursor(model, |c, _| c.saturating_sub(page)),
            Action::PageDown => self.move_cursor(model, |c, _| c + page),
            Action::Home => self.move_cursor(model, |_, _| 0),
            Action::End => self.move_cursor(model, |_, n| n.saturating_sub(1)),
            Action::Enter => self.drill_in(model),
            Action::Back => self.back(),
            Action::Tab => self.detail = self.detail.next(),
            Action::ToggleRequests => {
                self.show_requests = !self.show_requests;
                self.keep_a_role(true);
            }
            Action::ToggleReplies => {
                self.show_replies = !self.show_replies;
                self.keep_a_role(false);
            }
            Action::Search => {
                let s = self.search_mut();
                s.editing = true;
                s.query.clear();
            }
            Action::Filter if !self.filter.editable => self.filter_not_editable(),
            Action::Filter => {
                self.filter.editing = Some(FilterEdit {
                    text: self.filter.latest().expr.clone(),
                    error: None,
                });
            }
            Action::WholeFlows if !self.filter.editable => self.filter_not_editable(),
            Action::WholeFlows => self.toggle_whole_flows(),
            Action::Sort => match self.screen {
                Screen::Flows => self.flow_sort = self.flow_sort.next(),
                Screen::Packets => self.packet_sort = self.packet_sort.next(),
                Screen::Hops => self.notice = Some("hops are in path order".to_owned()),
                Screen::Drops => self.notice = Some("drops are by count".to_owned()),
            },
            Action::Freeze => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => {
                        let flows = self.flow_rows(model);
                        let entries = flows
                            .iter()
                            .filter_map(|id| model.flow(*id).map(|f| (*id, f.clone())))
                            .collect();
                        Some(Frozen {
                            flows,
                            entries,
                            last_packet: model.last_packet_id(),
                        })
                    }
                }
            }
            Action::Drops => {
                self.screen = if self.screen == Screen::Drops {
                    Screen::Flows
                } else {
                    Screen::Drops
                };
            }
            Action::ExportDot => match self.flows.selected {
                Some(f) => self.export_dot = Some(f),
                None => self.notice = Some("no flow selected".to_owned()),
            },
            Action::Help => self.help = true,
            Action::Quit => self.quit = true,
        }
    }

    /// Hiding both roles would show nothing; the other one comes back.
    fn keep_a_role(&mut self, toggled_requests: bool) {
        if !self.show_requests && !self.show_replies {
            if toggled_requests {
                self.show_replies = true;
            } else {
                self.show_requests = true;
            }
            self.notice = Some("showing the other role: hiding both would list nothing".to_owned());
        }
    }

    fn drill_in(&mut self, model: &Model) {
        match self.screen {
            Screen::Flows => {
                let rows = self.flow_rows(model);
                if self.flows.resolve(&rows).is_some() {
                    // From now on the cursor follows this flow, not the top.
                    self.flows.touched = true;
                    self.screen = Screen::Packets;
                    self.packets.reset();
                    self.search[Screen::Packets.index()] = Search::default();
                } else {
                    self.notice = Some("no flow selected".to_owned());
                }
            }
            Screen::Packets => {
                let rows = self.packet_list(model);
                if self.packets.resolve(&rows).is_some() {
                    self.packets.touched = true;
                    self.screen = Screen::Hops;
                    self.hops.reset();
                    self.search[Screen::Hops.index()] = Search::default();
                } else {
                    self.notice = Some("no packet selected".to_owned());
                }
            }
            Screen::Hops => {
                self.notice = Some("hops are the deepest level; Tab shows the graph".to_owned())
            }
            Screen::Drops => self.open_drop_example(model),
        }
    }

    /// Enter on a drop: the hops of the newest packet dropped there.
    fn open_drop_example(&mut self, model: &Model) {
        let rows = self.drop_rows(model);
        let Some(i) = self.drops.resolve(&rows) else {
            self.notice = Some("no drop yet".to_owned());
            return;
        };
        let Some(d) = model.drop_stat(rows[i]) else {
            return;
        };
        if model.packet(d.example).is_none() {
            self.notice = Some(format!(
                "packet {} is no longer kept (raise --max-packets)",
                d.example.0
            ));
            return;
        }
        self.frozen = None;
        self.show_requests = true;
        self.show_replies = true;
        self.search = Default::default();
        self.flows = Cursor {
            selected: Some(d.flow),
            touched: true,
            index: 0,
            offset: 0,
        };
        self.packets = Cursor {
            selected: Some(d.example),
            touched: true,
            index: 0,
            offset: 0,
        };
        self.hops.reset();
        self.screen = Screen::Hops;
    }

    fn back(&mut self) {
        let s = self.search_mut();
        if s.active() {
            s.query.clear();
            return;
        }
        self.screen = match self.screen {
            Screen::Flows | Screen::Drops => Screen::Flows,
            Screen::Packets => Screen::Flows,
            Screen::Hops => Screen::Packets,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn key(app: &mut App, model: &Model, code: KeyCode, m: KeyModifiers) {
        app.update(model, Input::Key(KeyEvent::new(code, m)));
    }

    fn typed(app: &mut App, model: &Model, s: &str) {
        for c in s.chars() {
            key(app, model, KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    fn live(expr: &str) -> App {
        App {
            filter: KernelFilter {
                editable: true,
                current: FilterSpec {
                    expr: expr.to_owned(),
                    whole_flows: false,
                },
                label: (!expr.is_empty()).then(|| format!("`{expr}`")),
                scope: Some("netns hs-c1".to_owned()),
                ..KernelFilter::default()
            },
            ..App::default()
        }
    }

    #[test]
    fn f_edits_and_applies_once_the_reader_confirms() {
        let model = Model::new(ModelConfig::default());
        let mut a = live("icmp");
        assert_eq!(a.filter_summary(), "`icmp` · netns hs-c1");
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        assert_eq!(a.filter.editing.as_ref().unwrap().text, "icmp", "prefilled");
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        assert_eq!(a.filter.editing.as_ref().unwrap().text, "");
        // Keys are text while the line is open.
        typed(&mut a, &model, "udp q");
        key(&mut a, &model, KeyCode::Backspace, KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Backspace, KeyModifiers::NONE);
        assert!(!a.quit);
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        assert!(a.filter.editing.is_none());
        let sent = a.filter.outbox.take().expect("a filter for the reader");
        assert_eq!(sent.as_ref().map(|f| f.expr.as_str()), Some("udp"));
        assert!(!sent.unwrap().whole_flows);
        // Not in force until the reader says so.
        assert_eq!(a.filter.label.as_deref(), Some("`icmp`"));
        a.filter_applied(Ok(Some("`udp`".to_owned())));
        assert_eq!(a.filter.current.expr, "udp");
        assert_eq!(a.filter_summary(), "`udp` · netns hs-c1");
        assert!(a.filter.pending.is_empty());
    }

    #[test]
    fn a_refused_expression_shows_libpcap_and_changes_nothing() {
        let model = Model::new(ModelConfig::default());
        let mut a = live("udp");
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        typed(&mut a, &model, "tcp port");
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        let err = a.filter.editing.as_ref().unwrap().error.clone().unwrap();
        assert!(err.starts_with("invalid filter `tcp port`: "), "{err}");
        assert!(a.filter.outbox.is_none() && a.filter.pending.is_empty());
        assert_eq!(a.filter_summary(), "`udp` · netns hs-c1");
        // Esc cancels; the old filter stays.
        key(&mut a, &model, KeyCode::Esc, KeyModifiers::NONE);
        assert!(a.filter.editing.is_none());
        assert_eq!(a.filter.current.expr, "udp");
        assert_eq!(a.screen, Screen::Flows);
    }

    #[test]
    fn empty_removes_and_shift_f_toggles_whole_flows() {
        let model = Model::new(ModelConfig::default());
        let mut a = live("udp");
        key(&mut a, &model, KeyCode::Char('F'), KeyModifiers::SHIFT);
        a.compile_requested();
        let sent = a.filter.outbox.take().unwrap().unwrap();
        assert!(sent.whole_flows && sent.expr == "udp");
        a.filter_applied(Ok(Some(sent.label())));
        assert_eq!(a.filter_summary(), "flows of `udp` · netns hs-c1");
        // The line opens in whole-flows mode and keeps it.
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        typed(&mut a, &model, "icmp");
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        let sent = a.filter.outbox.take().unwrap().unwrap();
        assert!(sent.whole_flows);
        a.filter_applied(Ok(Some(sent.label())));
        // Empty: no filter.
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        assert!(a.filter.outbox.take().unwrap().is_none());
        a.filter_applied(Ok(None));
        assert_eq!(a.filter_summary(), "netns hs-c1");
        // A kernel refusal keeps what was in force.
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        typed(&mut a, &model, "tcp");
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        a.filter_applied(Err("writing the filter program".to_owned()));
        assert_eq!(a.filter_summary(), "netns hs-c1");
        assert_eq!(a.filter.current.expr, "");
        assert!(a.notice.as_deref().unwrap().contains("not changed"));
    }

    #[test]
    fn replays_explain_that_filters_are_live() {
        let model = Model::new(ModelConfig::default());
        let mut a = App::default();
        for (c, m) in [('f', KeyModifiers::NONE), ('F', KeyModifiers::SHIFT)] {
            key(&mut a, &model, KeyCode::Char(c), m);
            assert!(a.filter.editing.is_none() && a.filter.outbox.is_none());
            assert!(a.notice.as_deref().unwrap().contains("live tracing"));
        }
        assert_eq!(a.filter_summary(), "everything");
    }
}
