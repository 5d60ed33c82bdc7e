//! The hop graph as Graphviz DOT: one cluster per namespace, a node per
//! device (labelled with its kind), the transitions packets took as edges
//! (green requests, magenta replies, with packet counts and mean latency),
//! and the wiring the kernel reports: veth pairs as bold undirected wires,
//! bridge ports as dashed edges to their bridge, which is a node of its own
//! even when no packet visited it. Tunnel edges (`vxlan 42 via eth1`) are
//! dotted.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::graph::HopGraph;
use super::TopologyView;
use crate::clock::fmt_duration;
use crate::correlate::Role;

/// DOT-quoted string.
fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn node_id(netns: u32, ifindex: u32) -> String {
    q(&format!("{netns}:{ifindex}"))
}

/// Writes `g` with what `topo` knows about its namespaces and devices.
pub fn write_dot(g: &HopGraph, topo: &impl TopologyView, w: &mut impl Write) -> io::Result<()> {
    // Devices: those packets visited, plus the masters and veth peers the
    // kernel reports for them.
    let mut devices: BTreeSet<(u32, u32, String)> = BTreeSet::new();
    for i in g.graph.node_indices() {
        let n = &g.graph[i];
        devices.insert((n.netns.0, n.ifindex.0, n.ifname.as_str().to_owned()));
    }
    let visited: Vec<(u32, u32, String)> = devices.iter().cloned().collect();
    for (ns, idx, _) in &visited {
        if let Some(l) = topo.link(*ns, *idx) {
            for r in [&l.master, &l.peer].into_iter().flatten() {
                if r.netns != 0 {
                    devices.insert((r.netns, r.ifindex, r.ifname.clone()));
                }
            }
        }
    }
    let mut out = String::new();
    out.push_str("digraph hopscope {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n  edge [fontname=\"monospace\", fontsize=10];\n");
    let namespaces: BTreeSet<u32> = devices.iter().map(|d| d.0).collect();
    for ns in &namespaces {
        let name = topo
            .netns_name(*ns)
            .map_or_else(|| ns.to_string(), |n| format!("{n} ({ns})"));
        let _ = writeln!(
            out,
            "  subgraph {} {{\n    label={};",
            q(&format!("cluster_{ns}")),
            q(&name)
        );
        for (_, idx, ifname) in devices.iter().filter(|d| d.0 == *ns) {
            let kind = topo.link(*ns, *idx).map(|l| l.kind.name());
            let label = match kind {
                Some(k) => format!("{ifname}\n{k}"),
                None => ifname.clone(),
            };
            let shape = if kind == Some("bridge") {
                ", shape=box3d"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {} [label={}{shape}];",
                node_id(*ns, *idx),
                q(&label)
            );
        }
        out.push_str("  }\n");
    }
    // Wiring.
    let mut wires = BTreeSet::new();
    for (ns, idx, _) in &devices {
        let Some(l) = topo.link(*ns, *idx) else {
            continue;
        };
        if let Some(p) = l.peer.as_ref().filter(|p| p.netns != 0) {
            let a = (*ns, *idx);
            let b = (p.netns, p.ifindex);
            if wires.insert((a.min(b), a.max(b))) {
                let _ = writeln!(
                    out,
                    "  {} -> {} [dir=none, style=bold, color=gray40, label=\"veth\"];",
                    node_id(a.0, a.1),
                    node_id(b.0, b.1)
                );
            }
        }
        if let Some(m) = &l.master {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed, color=gray40, label=\"port of\"];",
                node_id(*ns, *idx),
                node_id(m.netns, m.ifindex)
            );
        }
    }
    // What packets did.
    for (a, b, e) in g.edges() {
        let (color, role) = match e.role {
            Role::Request => ("darkgreen", "request"),
            Role::Reply => ("magenta3", "reply"),
        };
        let mut mean = String::new();
        fmt_duration(e.mean_ns(), &mut mean);
        // A tunnel edge is dotted, above the underlay's own hops.
        let (style, tunnel) = match e.tunnel {
            Some(t) => (", style=dotted, penwidth=2", format!("{t}\n")),
            None => ("", String::new()),
        };
        let _ = writeln!(
            out,
            "  {} -> {} [color={color}, fontcolor={color}{style}, label={}];",
            node_id(a.netns.0, a.ifindex.0),
            node_id(b.netns.0, b.ifindex.0),
            q(&format!("{tunnel}{role} ×{} {mean}", e.packets))
        );
    }
    out.push_str("}\n");
    w.write_all(out.as_bytes())
}
