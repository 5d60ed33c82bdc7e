//! The hop graph: devices `(netns, ifindex)` as nodes, observed transitions
//! between consecutive visits of a packet as edges, kept apart per role so
//! the request path and the reply path can be drawn differently. Edges carry
//! packet counts and the time between the two visits. Pure.
//!
//! A transition between two namespaces is a veth wire (or another device
//! pair crossing namespaces); a transition inside one namespace is a bridge
//! or a routing decision. A packet that went through a tunnel also joins
//! the device where it was encapsulated to the one where it came out with
//! a tunnel edge (`vxlan 42 via eth1`), besides the underlay's own edges.

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use rustc_hash::FxHashMap;

use crate::correlate::{Packet, Role};
use crate::event::{IfIndex, NetnsId, ShortName, Tunnel};

/// A device of the hop graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub netns: NetnsId,
    pub ifindex: IfIndex,
    pub ifname: ShortName,
}

/// The tunnel a tunnel edge stands for: its kind, VNI (or key; 0: none)
/// and the underlay device that carried it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelVia {
    pub kind: Tunnel,
    pub vni: u32,
    pub via: ShortName,
}

impl std::fmt::Display for TunnelVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind.name())?;
        if self.vni != 0 {
            write!(f, " {}", self.vni)?;
        }
        write!(f, " via {}", crate::safe_text::Shown(self.via.as_str()))
    }
}

/// Packets of one role that went from one device to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub role: Role,
    /// A tunnel edge: from where the packet was encapsulated to where it
    /// came out (the underlay hops between have edges of their own).
    pub tunnel: Option<TunnelVia>,
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
    nodes: FxHashMap<(NetnsId, IfIndex), NodeIndex>,
    edges: FxHashMap<(NodeIndex, NodeIndex, Role), EdgeIndex>,
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
        // Where the packet went into a tunnel, and which tunnel, while it
        // is in it.
        let mut entered: Option<(NodeIndex, u64, TunnelVia)> = None;
        for v in &p.visits {
            let n = self.node(Node {
                netns: v.device.netns,
                ifindex: v.device.ifindex,
                ifname: v.device.ifname,
            });
            if let Some((from, ts)) = prev {
                if from != n {
                    self.count(from, n, role, None, v.first_ts.saturating_sub(ts));
                }
            }
            match (v.outer, entered) {
                (Some(o), None) => {
                    if let Some((from, ts)) = prev {
                        let via = TunnelVia {
                            kind: o.kind,
                            vni: o.vni,
                            via: v.device.ifname,
                        };
                        entered = Some((from, ts, via));
                    }
                }
                (None, Some((from, ts, via))) => {
                    if from != n {
                        self.count(from, n, role, Some(via), v.first_ts.saturating_sub(ts));
                    }
                    entered = None;
                }
                _ => {}
            }
            prev = Some((n, v.first_ts));
        }
    }

    /// Counts one transition `from` → `to` that took `dt`.
    fn count(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        role: Role,
        tunnel: Option<TunnelVia>,
        dt: u64,
    ) {
        let e = match self.edges.get(&(from, to, role)) {
            Some(&e) => e,
            None => {
                let e = self.graph.add_edge(
                    from,
                    to,
                    Edge {
                        role,
                        tunnel,
                        packets: 0,
                        sum_ns: 0,
                        min_ns: u64::MAX,
                        max_ns: 0,
                    },
                );
                self.edges.insert((from, to, role), e);
                e
            }
        };
        let w = &mut self.graph[e];
        w.packets += 1;
        w.sum_ns += dt;
        w.min_ns = w.min_ns.min(dt);
        w.max_ns = w.max_ns.max(dt);
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
