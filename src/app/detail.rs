//! What the detail area is about: the packet whose hops are shown, and the
//! selected flow's hop graph and path statistics over its newest visible
//! packets (cached in [`super::lists::ViewCache`]).

use std::sync::Arc;

use crate::correlate::path::{dominant_path, PathStats};
use crate::correlate::{Packet, Role};
use crate::model::Model;
use crate::topology::graph::HopGraph;

use super::lists::{Detail as Covered, DetailKey, DETAIL_PACKETS};
use super::{App, Screen};

impl App {
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
}
