//! Path statistics and the hop graph, from packets built by hand.

use hopscope::correlate::path::dominant_path;
use hopscope::correlate::{End, HookSet, Packet, Role, Visit};
use hopscope::event::{Device, IfIndex, NetnsId, PacketId, ShortName};
use hopscope::topology::graph::HopGraph;

const C1: u32 = 10;
const HOST: u32 = 20;
const C2: u32 = 30;

fn dev(ns: u32, idx: u32, name: &str) -> Device {
    Device {
        netns: NetnsId(ns),
        netns_cookie: 0,
        ifindex: IfIndex(idx),
        ifname: ShortName::from_bytes(name.as_bytes()),
    }
}

/// A packet through `hops` (device, time).
fn packet(id: u64, role: Role, hops: &[(Device, u64)], end: Option<End>) -> Packet {
    Packet {
        id: PacketId(id),
        flow: None,
        role: Some(role),
        headers: None,
        first_ts: hops[0].1,
        last_ts: hops[hops.len() - 1].1,
        visits: hops
            .iter()
            .map(|(d, t)| Visit {
                device: *d,
                hooks: HookSet::default(),
                first_ts: *t,
                last_ts: *t,
                tap_ts: *t,
                len: 100,
                headers: None,
                xmit_rc: None,
                task: None,
                rewrite: None,
                outer: None,
                inferred: false,
            })
            .collect(),
        visits_dropped: 0,
        events: hops.len() as u32,
        copy_of: None,
        sender: None,
        receiver: None,
        end,
        icmp_error: None,
        route_error: None,
        current: None,
        socket: None,
        segment_of: None,
        segmented: None,
        end_device: None,
        end_outside: false,
        coalesced_into: None,
        outcome: Default::default(),
    }
}

fn request_path() -> [Device; 4] {
    [
        dev(C1, 2, "eth0"),
        dev(HOST, 5, "vc1"),
        dev(HOST, 6, "vc2"),
        dev(C2, 2, "eth0"),
    ]
}

#[test]
fn dominant_path_counts_packets_that_died_half_way() {
    let p = request_path();
    let full = |id, base: u64, d: [u64; 3]| {
        packet(
            id,
            Role::Request,
            &[
                (p[0], base),
                (p[1], base + d[0]),
                (p[2], base + d[0] + d[1]),
                (p[3], base + d[0] + d[1] + d[2]),
            ],
            Some(End::Consumed { ts: base + 100 }),
        )
    };
    let pkts = [
        full(1, 1000, [10, 20, 30]),
        full(2, 2000, [30, 40, 10]),
        // Died after vc1 (e.g. a netfilter drop in the host namespace).
        packet(
            3,
            Role::Request,
            &[(p[0], 3000), (p[1], 3005)],
            Some(End::Dropped {
                ts: 3010,
                reason: 6,
                location: 0,
                stack: 0,
            }),
        ),
        full(4, 4000, [20, 30, 20]),
        // A reply, which the request statistics ignore.
        packet(5, Role::Reply, &[(p[3], 5000), (p[2], 5010)], None),
    ];
    let st = dominant_path(pkts.iter(), Role::Request).unwrap();
    assert_eq!(st.packets, 4);
    assert_eq!(st.on_path, 4, "the dropped one followed a prefix of it");
    assert_eq!(st.distinct_paths, 2);
    let devs: Vec<_> = st.hops.iter().map(|h| h.device).collect();
    assert_eq!(devs, p.to_vec(), "the full path, not the truncated one");
    let seen: Vec<u64> = st.hops.iter().map(|h| h.seen).collect();
    let lost: Vec<u64> = st.hops.iter().map(|h| h.lost).collect();
    assert_eq!(seen, [4, 4, 3, 3]);
    assert_eq!(lost, [0, 1, 0, 0]);
    assert!((st.hops[1].loss_pct() - 25.0).abs() < 1e-9);
    // Δt into vc1: 10, 30, 5, 20 → last 20 (newest), best 5, worst 30.
    let h = &st.hops[1];
    assert_eq!(
        (h.last_ns, h.best_ns, h.worst_ns, h.samples),
        (20, 5, 30, 4)
    );
    assert_eq!(h.mean_ns(), Some(16));
    assert_eq!(st.hops[0].mean_ns(), None, "no Δt into the first position");
    assert_eq!(st.hops[0].best_ns, 0);

    let reply = dominant_path(pkts.iter(), Role::Reply).unwrap();
    assert_eq!(reply.packets, 1);
    assert_eq!(reply.hops.len(), 2);
    assert!(dominant_path(std::iter::empty(), Role::Request).is_none());
}

#[test]
fn hop_graph_has_veth_wires_bridge_hops_and_roles() {
    let p = request_path();
    let pkts = [
        packet(
            1,
            Role::Request,
            &[(p[0], 0), (p[1], 10), (p[2], 30), (p[3], 60)],
            None,
        ),
        packet(
            2,
            Role::Request,
            &[(p[0], 100), (p[1], 120), (p[2], 150), (p[3], 160)],
            None,
        ),
        packet(
            3,
            Role::Reply,
            &[(p[3], 200), (p[2], 205), (p[1], 215), (p[0], 230)],
            None,
        ),
    ];
    let g = HopGraph::build(pkts.iter());
    assert_eq!(g.namespaces, [NetnsId(C1), NetnsId(HOST), NetnsId(C2)]);
    assert_eq!(g.graph.node_count(), 4);
    assert_eq!(g.graph.edge_count(), 6, "three transitions per role");
    let mut edges: Vec<(String, String, Role, u64, u64, u64, u64)> = g
        .edges()
        .map(|(a, b, e)| {
            (
                format!("{}/{}", a.netns.0, a.ifname),
                format!("{}/{}", b.netns.0, b.ifname),
                e.role,
                e.packets,
                e.min_ns,
                e.max_ns,
                e.mean_ns(),
            )
        })
        .collect();
    edges.sort_by(|x, y| (x.2 as u8, &x.0).cmp(&(y.2 as u8, &y.0)));
    assert_eq!(
        edges,
        [
            (
                "10/eth0".into(),
                "20/vc1".into(),
                Role::Request,
                2,
                10,
                20,
                15
            ),
            (
                "20/vc1".into(),
                "20/vc2".into(),
                Role::Request,
                2,
                20,
                30,
                25
            ),
            (
                "20/vc2".into(),
                "30/eth0".into(),
                Role::Request,
                2,
                10,
                30,
                20
            ),
            (
                "20/vc1".into(),
                "10/eth0".into(),
                Role::Reply,
                1,
                15,
                15,
                15
            ),
            ("20/vc2".into(), "20/vc1".into(), Role::Reply, 1, 10, 10, 10),
            ("30/eth0".into(), "20/vc2".into(), Role::Reply, 1, 5, 5, 5),
        ]
    );
    let host: Vec<_> = g
        .devices_in(NetnsId(HOST))
        .map(|(_, n)| n.ifname.as_str().to_owned())
        .collect();
    assert_eq!(host, ["vc1", "vc2"]);
}
