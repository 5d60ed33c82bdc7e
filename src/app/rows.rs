//! The rows each screen lists, in order: flows (frozen or live, searched,
//! sorted), the selected flow's packets (a window onto its index or cached
//! sorted rows, see [`super::lists`]), the focused packet's hops, and the
//! drops.

use std::sync::Arc;

use crate::correlate::{FlowId, Packet};
use crate::event::PacketId;
use crate::model::{DropKey, FlowEntry, Model, Roles};

use super::lists::{sort_key, ListKey, PacketList, SortedRows};
use super::search::{flow_haystack, packet_haystack};
use super::{App, FlowSort, PacketSort, Screen};

impl App {
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
    pub(super) fn frozen_upto(&self) -> Option<Option<PacketId>> {
        self.frozen.as_ref().map(|f| f.last_packet)
    }

    /// How many of the selected flow's packets of `roles` are listed
    /// (all, or those up to the newest one when frozen): the first that
    /// many of its index.
    pub(super) fn visible_count(&self, f: &FlowEntry, roles: Roles) -> usize {
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
}
