//! The hop graph: devices `(netns, ifindex)` as nodes, observed transitions
//! between consecutive visits of a packet as edges, kept apart per role so
//! the request path and the reply path can be drawn differently. Edges carry
//! packet counts and the time between the two visits. Pure.
//!
//! A transition between two namespaces is a veth wire (or another device
//! pair crossing namespaces); a transition inside one namespace is a bridge
//! or a routing decision.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::correlate::{Packet, Role};
use crate::event::{IfIndex, NetnsId, ShortName};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub netns: NetnsId,
    pub ifindex: IfIndex,
    pub ifname: ShortName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub role: Role,
    pub packets: u64,
    pub sum_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
}

impl Edge {
    pub fn mean_ns(&self) -> u64 {
        self.sum_ns / self.packets.max(1)
    }
}

/// The graph of one set of packets (typically one flow's).
#[derive(Debug, Default)]
pub struct HopGraph {
    pub graph: DiGraph<Node, Edge>,
    nodes: HashMap<(NetnsId, IfIndex), NodeIndex>,
    edges: HashMap<(NodeIndex, NodeIndex, Role), EdgeIndex>,
    /// Namespaces in the order packets first reached them (requests first).
    pub namespaces: Vec<NetnsId>,
}

impl HopGraph {
    /// Builds the graph of `packets`; requests are added first so the
    /// namespace order follows the request path.
    pub fn build<'a>(packets: impl IntoIterator<Item = &'a Packet> + Clone) -> HopGraph {
        let mut g = HopGraph::default();
        for role in [Role::Request, Role::Reply] {
            for p in packets.clone() {
                if p.role.unwrap_or(Role::Request) == role {
                    g.add_packet(p, role);
                }
            }
        }
        g
    }

    fn node(&mut self, n: Node) -> NodeIndex {
        if let Some(&i) = self.nodes.get(&(n.netns, n.ifindex)) {
            return i;
        }
        if !self.namespaces.contains(&n.netns) {
            self.namespaces.push(n.netns);
        }
        let i = self.graph.add_node(n);
        self.nodes.insert((n.netns, n.ifindex), i);
        i
    }

    /// Adds one packet's transitions (a packet without role counts as a
    /// request).
    pub fn add(&mut self, p: &Packet) {
        self.add_packet(p, p.role.unwrap_or(Role::Request));
    }

    fn add_packet(&mut self, p: &Packet, role: Role) {
        let mut prev: Option<(NodeIndex, u64)> = None;
        for v in &p.visits {
            let n = self.node(Node {
                netns: v.device.netns,
                ifindex: v.device.ifindex,
                ifname: v.device.ifname,
            });
            if let Some((from, ts)) = prev {
                if from != n {
                    let dt = v.first_ts.saturating_sub(ts);
                    let e = match self.edges.get(&(from, n, role)) {
                        Some(&e) => e,
                        None => {
                            let e = self.graph.add_edge(
                                from,
                                n,
                                Edge {
                                    role,
                                    packets: 0,
                                    sum_ns: 0,
                                    min_ns: u64::MAX,
                                    max_ns: 0,
                                },
                            );
                            self.edges.insert((from, n, role), e);
                            e
                        }
                    };
                    let w = &mut self.graph[e];
                    w.packets += 1;
                    w.sum_ns += dt;
                    w.min_ns = w.min_ns.min(dt);
                    w.max_ns = w.max_ns.max(dt);
                }
            }
            prev = Some((n, v.first_ts));
        }
    }

    /// Devices of one namespace, in the order they were first seen.
    pub fn devices_in(&self, ns: NetnsId) -> impl Iterator<Item = (NodeIndex, &Node)> {
        self.graph
            .node_indices()
            .map(move |i| (i, &self.graph[i]))
            .filter(move |(_, n)| n.netns == ns)
    }

    /// All edges as (source, target, edge).
    pub fn edges(&self) -> impl Iterator<Item = (&Node, &Node, &Edge)> {
        self.graph
            .edge_references()
            .map(move |e| (&self.graph[e.source()], &self.graph[e.target()], e.weight()))
    }
}
