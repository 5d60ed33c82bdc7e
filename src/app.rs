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
//!
//! One job per file: `screen` and `sort` say where the explorer is and in
//! what order it lists; `cursor` holds the cursors that follow items by id;
//! `search` the per-screen searches; `rows` the rows each screen lists;
//! `detail` the focused packet, hop graph and path statistics; [`lists`]
//! the lists and caches that keep a frame's cost flat; `kernel_filter` the
//! kernel's packet filter and its input line; `update` turns input into
//! actions. This file holds the state itself ([`App`], [`Frozen`]).

mod cursor;
mod detail;
mod kernel_filter;
pub mod lists;
mod rows;
mod screen;
mod search;
mod sort;
mod update;

use crate::correlate::FlowId;
use crate::event::PacketId;
use crate::model::{DropKey, FlowEntry};
use lists::ViewCache;

pub use cursor::Cursor;
pub use kernel_filter::{FilterEdit, FilterSpec, KernelFilter};
pub use screen::{Detail, Screen};
pub use search::{flow_haystack, packet_haystack, Search};
pub use sort::{FlowSort, PacketSort};
pub use update::Input;

/// What freezing keeps still: the list of flows, their rows as they were,
/// and the newest packet (later packets are not listed).
#[derive(Debug, Clone)]
pub struct Frozen {
    pub flows: Vec<FlowId>,
    pub entries: std::collections::HashMap<FlowId, FlowEntry>,
    pub last_packet: Option<PacketId>,
}

/// What a pcapng export (`w`) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcapngExport {
    /// The flow's packets the view shows.
    Flow(FlowId),
    /// One packet.
    Packet(PacketId),
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
    /// A pcapng export asked for (`w`), done by the runner.
    pub export_pcapng: Option<PcapngExport>,
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
            export_pcapng: None,
            cache: ViewCache::default(),
        }
    }
}

/// `filter_label` when nothing is filtered after correlation.
pub const EVERYTHING: &str = "everything";
