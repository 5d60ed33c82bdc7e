//! The correlator and the explorer's model on recordings of the field
//! topologies (`tests/fixtures/field-*.hsrec`, recorded by
//! `scripts/record-fixtures.sh` with the real binary): NAT learning keeps a
//! published port's connection one flow, tunnel stitching keeps an overlay's
//! echo one packet, macvlan's steps are inferred, software GSO segments are
//! linked, and tcpdump's copies on a bridge are no drops. Pure: no root, no
//! BPF; exact counts, since the recordings are fixed.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use hopscope::correlate::{CorrelatorConfig, FlowProto, Outcome, Packet};
use hopscope::model::{FlowEntry, Model, ModelConfig};

fn load(file: &str) -> Model {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    hopscope::tui::load_recording(&p, ModelConfig::default(), CorrelatorConfig::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .0
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// Flows as (proto, initiator address, the far side's port (0 for ICMP,
/// whose endpoints carry the echo id), requests, replies, drops), sorted.
fn flows(m: &Model) -> BTreeSet<(String, Option<IpAddr>, u16, u64, u64, u64)> {
    m.flows()
        .map(|f| {
            let far = if f.key.a == f.initiator {
                f.key.b
            } else {
                f.key.a
            };
            let icmp = matches!(f.key.proto, FlowProto::Icmp | FlowProto::Icmp6);
            (
                format!("{:?}", f.key.proto),
                f.initiator.0,
                if icmp { 0 } else { far.1 },
                f.requests,
                f.replies,
                f.drops,
            )
        })
        .collect()
}

fn flow(m: &Model, proto: FlowProto, port: u16) -> &FlowEntry {
    m.flows()
        .find(|f| f.key.proto == proto && (f.key.a.1 == port || f.key.b.1 == port))
        .unwrap_or_else(|| panic!("no {proto:?} flow with port {port}"))
}

fn packets<'a>(m: &'a Model, f: &FlowEntry) -> Vec<&'a Packet> {
    m.flow_packets(f.id).collect()
}

#[test]
fn a_published_port_and_masquerade_egress_are_one_flow_each() {
    let m = load("field-published.hsrec");
    let cli = ip("198.18.20.2");
    let ctr = ip("198.18.10.2");
    assert_eq!(
        flows(&m),
        [
            ("Tcp".to_owned(), cli, 8080, 6, 4, 0),
            ("Tcp".to_owned(), ctr, 9000, 6, 4, 0),
            ("Udp".to_owned(), cli, 8080, 1, 1, 0),
        ]
        .into()
    );
    // Every request of the published connection crosses DNAT; every reply
    // is rewritten back (un-DNAT, shown as SNAT) on the way out.
    let f = flow(&m, FlowProto::Tcp, 8080);
    for p in packets(&m, f) {
        let rewrites: Vec<String> = p
            .visits
            .iter()
            .filter_map(|v| v.rewrite.map(|r| r.to_string()))
            .collect();
        assert_eq!(rewrites.len(), 1, "packet {}: {rewrites:?}", p.id.0);
        let want = match p.role {
            Some(hopscope::correlate::Role::Request) => "DNAT 198.18.20.1:8080 → 198.18.10.2:80",
            _ => "SNAT 198.18.10.2:80 → 198.18.20.1:8080",
        };
        assert_eq!(rewrites[0], want, "packet {}", p.id.0);
        assert_ne!(p.outcome, Outcome::Unseen, "packet {}", p.id.0);
    }
}

#[test]
fn an_overlay_echo_is_one_packet_through_the_tunnel() {
    let m = load("field-vxlan.hsrec");
    let pod1 = ip("198.18.42.1");
    let pod1_v6 = ip("2001:2:0:42::1");
    // The inner flows only: the underlay's UDP is never a flow of its own.
    assert_eq!(
        flows(&m),
        [
            ("Icmp".to_owned(), pod1, 0, 2, 2, 0),
            ("Icmp6".to_owned(), pod1_v6, 0, 1, 1, 0),
            ("Tcp".to_owned(), pod1, 7042, 6, 4, 0),
        ]
        .into()
    );
    let f = m
        .flows()
        .find(|f| f.key.proto == FlowProto::Icmp)
        .expect("the echo flow");
    for p in packets(&m, f) {
        // pod eth0, vpod, vxlan42, underlay eth0 | eth0, vxlan42, vpod, pod eth0.
        let outer: Vec<bool> = p.visits.iter().map(|v| v.outer.is_some()).collect();
        assert_eq!(
            outer,
            [false, false, false, true, true, false, false, false],
            "packet {}",
            p.id.0
        );
        for v in p.visits.iter().filter_map(|v| v.outer) {
            assert_eq!((v.kind.name(), v.vni, v.dport), ("vxlan", 42, 4789));
        }
    }
    // The hop graph joins the nodes' vxlan devices, once each way.
    let g = hopscope::topology::graph::HopGraph::build(packets(&m, f));
    let tunnels: Vec<String> = g
        .edges()
        .filter_map(|(_, _, e)| e.tunnel.map(|t| format!("{t} {:?} ×{}", e.role, e.packets)))
        .collect();
    assert_eq!(
        tunnels,
        ["vxlan 42 via eth0 Request ×2", "vxlan 42 via eth0 Reply ×2"]
    );
}

#[test]
fn macvlan_children_receive_on_inferred_steps() {
    let m = load("field-macvlan.hsrec");
    assert_eq!(
        flows(&m),
        [
            ("Icmp".to_owned(), ip("198.18.50.1"), 0, 2, 2, 0),
            ("Icmp".to_owned(), ip("198.18.50.2"), 0, 2, 2, 0),
        ]
        .into()
    );
    let inferred = m
        .flows()
        .flat_map(|f| packets(&m, f))
        .filter(|p| p.visits.iter().any(|v| v.inferred))
        .count();
    assert!(inferred >= 4, "every packet into a child: {inferred}");
}

#[test]
fn software_gso_segments_are_linked_to_their_packet() {
    let m = load("field-gso-off.hsrec");
    let f = flow(&m, FlowProto::Tcp, 5001);
    let pkts = packets(&m, f);
    let parents: BTreeSet<u64> = pkts
        .iter()
        .filter(|p| p.segmented.is_some())
        .map(|p| p.id.0)
        .collect();
    let segments: Vec<&&Packet> = pkts.iter().filter(|p| p.segment_of.is_some()).collect();
    assert!(!parents.is_empty() && !segments.is_empty());
    for s in &segments {
        let (parent, k, n) = s.segment_of.unwrap();
        assert!(k >= 1 && k <= n, "segment {k}/{n}");
        let kept = pkts.iter().find(|p| p.id == parent);
        if let Some(parent) = kept {
            assert_eq!(parent.segmented, Some(n), "packet {}", parent.id.0);
        }
    }
    let unseen = pkts.iter().filter(|p| p.outcome == Outcome::Unseen).count();
    assert_eq!(unseen, 0, "every packet of the transfer ends");
}

#[test]
fn tcpdump_copies_on_a_bridge_are_no_drops() {
    let m = load("field-bridge-tcpdump.hsrec");
    let a = ip("198.18.60.2");
    assert_eq!(
        flows(&m),
        [
            ("Icmp".to_owned(), a, 0, 2, 2, 0),
            ("Tcp".to_owned(), a, 7060, 6, 4, 0),
        ]
        .into()
    );
    let copies = m
        .flows()
        .flat_map(|f| packets(&m, f))
        .filter(|p| p.copy_of.is_some())
        .count();
    assert!(copies > 0, "the bridge's own copies are kept, as copies");
}
