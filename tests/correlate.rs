//! Correlator scenarios: event sequences as the kernel emits them (hook
//! order included) in, packets, visits, flows, roles and copies out.

use std::net::Ipv4Addr;

use hopscope::correlate::{
    Correlator, CorrelatorConfig, End, Flow, HopContext, Packet, Role, Sink,
};
use hopscope::event::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, NetnsId, PacketId, ShortName, TcpFlags, L3,
    L4,
};

const C1: u32 = 4026532258;
const HOST: u32 = 4026532177;
const C2: u32 = 4026532315;

fn dev(ns: u32, idx: u32, name: &str) -> Device {
    Device {
        netns: NetnsId(ns),
        netns_cookie: 0,
        ifindex: IfIndex(idx),
        ifname: ShortName::from_bytes(name.as_bytes()),
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, last)
}

fn icmp(src: u8, dst: u8, kind: u8, id: u16, seq: u16) -> Headers {
    Headers {
        l3: L3::Ipv4 {
            src: ip(src),
            dst: ip(dst),
        },
        l4: L4::Icmp {
            v6: false,
            kind,
            code: 0,
            id,
            seq,
        },
        vlan: None,
        ttl: 64,
        ip_id: seq,
        flow_label: 0,
        from_l2: true,
    }
}

fn tcp(src: u8, sport: u16, dst: u8, dport: u16, flags: u8, seq: u32) -> Headers {
    Headers {
        l3: L3::Ipv4 {
            src: ip(src),
            dst: ip(dst),
        },
        l4: L4::Tcp {
            sport,
            dport,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
        },
        vlan: None,
        ttl: 64,
        ip_id: (seq & 0xffff) as u16,
        flow_label: 0,
        from_l2: true,
    }
}

fn udp(src: u8, sport: u16, dst: u8, dport: u16) -> Headers {
    Headers {
        l3: L3::Ipv4 {
            src: ip(src),
            dst: ip(dst),
        },
        l4: L4::Udp {
            sport,
            dport,
            len: 12,
        },
        vlan: None,
        ttl: 64,
        ip_id: sport,
        flow_label: 0,
        from_l2: true,
    }
}

fn ev(ts: u64, pkt: u64, hook: Hook, d: Option<Device>, h: Option<Headers>) -> HopEvent {
    HopEvent {
        ts_ns: ts,
        cpu: 0,
        hook,
        packet: PacketId(pkt),
        skb: 0xffff_0000 + pkt,
        device: d,
        len: 98,
        headers: if hook == Hook::NetDevXmit { None } else { h },
        new_packet: false,
        task: None,
        sk_cgroup: 0,
        data: match hook {
            Hook::NetDevXmit => HookData::Xmit { rc: 0 },
            _ => HookData::None,
        },
        outer: None,
        link: None,
        shared: false,
    }
}

/// The exact event sequence of one packet crossing c1 eth0 → vc1 → vc2 → c2
/// eth0 on veth, as the kernel orders it (the peer's netif_rx fires inside
/// ndo_start_xmit, before net_dev_xmit).
fn crossing(t0: u64, pkt: u64, h: Headers, forward: bool) -> Vec<HopEvent> {
    let (a, b, c, d) = if forward {
        (
            dev(C1, 2, "eth0"),
            dev(HOST, 3, "vc1"),
            dev(HOST, 4, "vc2"),
            dev(C2, 2, "eth0"),
        )
    } else {
        (
            dev(C2, 2, "eth0"),
            dev(HOST, 4, "vc2"),
            dev(HOST, 3, "vc1"),
            dev(C1, 2, "eth0"),
        )
    };
    let s = Some(h);
    vec![
        ev(t0, pkt, Hook::NetDevQueue, Some(a), s),
        ev(t0 + 1, pkt, Hook::NetifRx, Some(b), s),
        ev(t0 + 2, pkt, Hook::NetDevXmit, Some(a), s),
        ev(t0 + 3, pkt, Hook::NetifReceiveSkb, Some(b), s),
        ev(t0 + 4, pkt, Hook::NetDevQueue, Some(c), s),
        ev(t0 + 5, pkt, Hook::NetifRx, Some(d), s),
        ev(t0 + 6, pkt, Hook::NetDevXmit, Some(c), s),
        ev(t0 + 7, pkt, Hook::NetifReceiveSkb, Some(d), s),
        ev(t0 + 8, pkt, Hook::ConsumeSkb, None, None),
    ]
}

#[derive(Default)]
struct Collect {
    done: Vec<Packet>,
    hops: Vec<HopContext>,
}

impl Sink for Collect {
    fn hop(&mut self, _ev: &HopEvent, ctx: &HopContext, _flow: Option<&Flow>) {
        self.hops.push(*ctx);
    }
    fn packet_done(&mut self, p: &Packet, _flow: Option<&Flow>) {
        self.done.push(p.clone());
    }
}

fn run(events: &[HopEvent], cfg: CorrelatorConfig) -> (Correlator, Collect) {
    let mut c = Correlator::new(cfg);
    let mut sink = Collect::default();
    for e in events {
        c.on_event(e, &mut sink);
    }
    (c, sink)
}

fn names(p: &Packet) -> Vec<(u32, String)> {
    p.visits
        .iter()
        .map(|v| (v.device.netns.0, v.device.ifname.as_str().to_owned()))
        .collect()
}

#[test]
fn icmp_echo_visits_roles_and_one_flow() {
    let mut evs = crossing(1000, 1, icmp(2, 3, 8, 77, 1), true);
    evs.extend(crossing(2000, 2, icmp(3, 2, 0, 77, 1), false));
    let (c, sink) = run(&evs, CorrelatorConfig::default());
    assert_eq!(sink.done.len(), 2);
    let (rq, rp) = (&sink.done[0], &sink.done[1]);
    assert_eq!(
        names(rq),
        [
            (C1, "eth0".into()),
            (HOST, "vc1".into()),
            (HOST, "vc2".into()),
            (C2, "eth0".into())
        ]
    );
    assert_eq!(
        names(rp),
        [
            (C2, "eth0".into()),
            (HOST, "vc2".into()),
            (HOST, "vc1".into()),
            (C1, "eth0".into())
        ]
    );
    // xmit folded into the transmit visit, not a visit of its own.
    assert!(rq.visits[0].hooks.contains(Hook::NetDevXmit));
    assert_eq!(rq.visits[0].xmit_rc, Some(0));
    assert_eq!((rq.role, rp.role), (Some(Role::Request), Some(Role::Reply)));
    assert_eq!(rq.flow, rp.flow);
    assert_eq!(rq.end, Some(End::Consumed { ts: 1008 }));
    assert_eq!(c.stats().flows, 1);
    let f = c.flow(rq.flow.unwrap()).unwrap();
    assert_eq!((f.requests, f.replies), (1, 1));
    // Per-hop contexts give the visit index each event went to.
    let visits: Vec<usize> = sink.hops[..8].iter().map(|h| h.visit).collect();
    assert_eq!(visits, [0, 1, 0, 1, 2, 3, 2, 3]);
}

#[test]
fn tcp_roles_follow_the_syn_even_when_first_seen_mid_handshake() {
    // Tracing started after the SYN: the first packet seen is the SYN-ACK.
    let evs = [
        ev(
            1,
            1,
            Hook::NetDevQueue,
            Some(dev(C2, 2, "eth0")),
            Some(tcp(3, 80, 2, 40000, 0x12, 500)),
        ),
        ev(
            2,
            2,
            Hook::NetDevQueue,
            Some(dev(C1, 2, "eth0")),
            Some(tcp(2, 40000, 3, 80, 0x10, 101)),
        ),
        ev(
            3,
            3,
            Hook::NetDevQueue,
            Some(dev(C1, 2, "eth0")),
            Some(tcp(2, 40000, 3, 80, 0x18, 101)),
        ),
        ev(
            4,
            4,
            Hook::NetDevQueue,
            Some(dev(C2, 2, "eth0")),
            Some(tcp(3, 80, 2, 40000, 0x18, 501)),
        ),
    ];
    let (mut c, mut sink) = run(&evs, CorrelatorConfig::default());
    c.flush(&mut sink);
    let roles: Vec<_> = sink.done.iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            Some(Role::Reply),
            Some(Role::Request),
            Some(Role::Request),
            Some(Role::Reply)
        ]
    );
    assert_eq!(c.stats().flows, 1);
}

#[test]
fn a_new_syn_on_a_reused_tuple_reanchors_the_initiator() {
    let evs = [
        ev(
            1,
            1,
            Hook::NetDevQueue,
            Some(dev(C1, 2, "eth0")),
            Some(tcp(2, 5000, 3, 80, 0x18, 1)),
        ),
        ev(
            2,
            2,
            Hook::NetDevQueue,
            Some(dev(C2, 2, "eth0")),
            Some(tcp(3, 80, 2, 5000, 0x02, 9)),
        ),
        ev(
            3,
            3,
            Hook::NetDevQueue,
            Some(dev(C1, 2, "eth0")),
            Some(tcp(2, 5000, 3, 80, 0x12, 2)),
        ),
    ];
    let (mut c, mut sink) = run(&evs, CorrelatorConfig::default());
    c.flush(&mut sink);
    let roles: Vec<_> = sink.done.iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [Some(Role::Request), Some(Role::Request), Some(Role::Reply)]
    );
}

#[test]
fn udp_first_sender_initiates() {
    let evs = [
        ev(
            1,
            1,
            Hook::NetDevQueue,
            Some(dev(C2, 2, "eth0")),
            Some(udp(3, 53, 2, 3333)),
        ),
        ev(
            2,
            2,
            Hook::NetDevQueue,
            Some(dev(C1, 2, "eth0")),
            Some(udp(2, 3333, 3, 53)),
        ),
    ];
    let (mut c, mut sink) = run(&evs, CorrelatorConfig::default());
    c.flush(&mut sink);
    assert_eq!(sink.done[0].role, Some(Role::Request));
    assert_eq!(sink.done[1].role, Some(Role::Reply));
}

#[test]
fn a_reused_skb_address_is_two_packets() {
    // The kernel hands out a new packet id when an skb address is reused;
    // both packets keep their own visits and ends.
    let mut a = crossing(100, 1, icmp(2, 3, 8, 5, 1), true);
    let mut b = crossing(200, 2, icmp(2, 3, 8, 5, 2), true);
    for e in a.iter_mut().chain(b.iter_mut()) {
        e.skb = 0xffff_8888;
    }
    a.append(&mut b);
    let (c, sink) = run(&a, CorrelatorConfig::default());
    assert_eq!(sink.done.len(), 2);
    assert!(sink
        .done
        .iter()
        .all(|p| p.visits.len() == 4 && p.events == 9));
    assert_eq!(c.stats().copies, 0, "different seq: not copies");
}

#[test]
fn interleaved_packets_keep_their_own_visits() {
    let a = crossing(100, 1, icmp(2, 3, 8, 5, 1), true);
    let b = crossing(100, 2, icmp(2, 3, 8, 6, 1), true);
    let evs: Vec<_> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
    let (_, sink) = run(&evs, CorrelatorConfig::default());
    assert_eq!(sink.done.len(), 2);
    for p in &sink.done {
        assert_eq!(p.visits.len(), 4, "{p:?}");
    }
    assert_ne!(
        sink.done[0].flow, sink.done[1].flow,
        "different echo ids are different flows"
    );
}

#[test]
fn flooded_copies_link_to_their_origin() {
    let arp = Headers {
        l3: L3::Arp {
            op: 1,
            sender: ip(2),
            target: ip(3),
        },
        l4: L4::None,
        vlan: None,
        ttl: 0,
        ip_id: 0,
        flow_label: 0,
        from_l2: true,
    };
    let evs = [
        ev(
            10,
            1,
            Hook::NetDevQueue,
            Some(dev(C1, 2, "eth0")),
            Some(arp),
        ),
        ev(11, 1, Hook::NetifRx, Some(dev(HOST, 3, "vc1")), Some(arp)),
        // The bridge floods clones to the other ports.
        ev(
            12,
            2,
            Hook::NetDevQueue,
            Some(dev(HOST, 4, "vc2")),
            Some(arp),
        ),
        ev(
            13,
            3,
            Hook::NetifReceiveSkb,
            Some(dev(HOST, 1, "br0")),
            Some(arp),
        ),
    ];
    let (mut c, mut sink) = run(&evs, CorrelatorConfig::default());
    c.flush(&mut sink);
    let copy_of: Vec<_> = sink.done.iter().map(|p| p.copy_of.map(|c| c.0)).collect();
    assert_eq!(copy_of, [None, Some(1), Some(1)]);
    assert!(sink.done.iter().all(|p| p.role == Some(Role::Request)));
    assert_eq!(c.stats().copies, 2);
}

#[test]
fn drops_end_the_packet_and_count_on_the_flow() {
    let mut evs = crossing(100, 1, icmp(2, 3, 8, 5, 1), true);
    let last = evs.last_mut().unwrap();
    last.hook = Hook::KfreeSkb;
    last.data = HookData::Freed {
        reason: 6,
        location: 0xffff_ffff_8123_0000,
        stack: 0,
    };
    let (c, sink) = run(&evs, CorrelatorConfig::default());
    assert_eq!(
        sink.done[0].end,
        Some(End::Dropped {
            ts: 108,
            reason: 6,
            location: 0xffff_ffff_8123_0000,
            stack: 0,
        })
    );
    assert_eq!(c.flow(sink.done[0].flow.unwrap()).unwrap().drops, 1);
}

#[test]
fn memory_is_bounded_by_configuration() {
    let cfg = CorrelatorConfig {
        max_packets: 100,
        max_flows: 50,
        max_visits: 3,
        ..CorrelatorConfig::default()
    };
    let mut c = Correlator::new(cfg);
    let mut sink = Collect::default();
    // 10_000 packets that never end, each in its own flow.
    for i in 0..10_000u64 {
        let h = icmp(2, 3, 8, i as u16, 1);
        c.on_event(
            &ev(
                i,
                i + 1,
                Hook::NetDevQueue,
                Some(dev(C1, 2, "eth0")),
                Some(h),
            ),
            &mut sink,
        );
        assert!(c.packets_in_flight() <= 100);
        assert!(c.flows().count() <= 50);
    }
    assert!(c.stats().packets_evicted >= 9_900);
    // Visits per packet are capped and the rest counted.
    let mut evs = crossing(20_000, 99_999, icmp(2, 3, 8, 1, 1), true);
    evs.pop();
    for e in &evs {
        c.on_event(e, &mut sink);
    }
    c.flush(&mut sink);
    let p = sink.done.iter().find(|p| p.id.0 == 99_999).unwrap();
    assert_eq!((p.visits.len(), p.visits_dropped), (3, 2));
    assert_eq!(p.end, Some(End::Unseen));
}

#[test]
fn idle_packets_are_flushed_as_unseen() {
    let mut evs = crossing(1_000, 1, icmp(2, 3, 8, 5, 1), true);
    evs.pop(); // the free event never comes
    let (mut c, mut sink) = run(&evs, CorrelatorConfig::default());
    c.gc(1_000 + 1_000_000_000, &mut sink);
    assert!(sink.done.is_empty(), "not idle yet");
    c.gc(1_000 + 3_000_000_000, &mut sink);
    assert_eq!(sink.done.len(), 1);
    assert_eq!(sink.done[0].end, Some(End::Unseen));
    assert_eq!(c.packets_in_flight(), 0);
}

#[test]
fn empty_and_orphan_input() {
    let mut c = Correlator::new(CorrelatorConfig::default());
    let mut sink = Collect::default();
    c.flush(&mut sink);
    c.gc(u64::MAX, &mut sink);
    assert!(sink.done.is_empty());
    // An end for a packet never seen is counted, not invented.
    c.on_event(&ev(5, 42, Hook::ConsumeSkb, None, None), &mut sink);
    assert!(sink.done.is_empty());
    assert_eq!(c.stats().orphan_ends, 1);
}

#[test]
fn owned_flows_follow_the_watched_cgroup() {
    let cfg = CorrelatorConfig {
        owner_cgroup: 77,
        ..CorrelatorConfig::default()
    };
    let mut req = crossing(100, 1, icmp(2, 3, 8, 5, 1), true);
    req[0].sk_cgroup = 77;
    let reply = crossing(200, 2, icmp(3, 2, 0, 5, 1), false);
    let other = crossing(300, 3, icmp(2, 3, 8, 6, 1), true);
    let evs: Vec<_> = req.into_iter().chain(reply).chain(other).collect();
    let (c, sink) = run(&evs, cfg);
    let owned: Vec<bool> = sink
        .done
        .iter()
        .map(|p| c.flow(p.flow.unwrap()).unwrap().owned)
        .collect();
    assert_eq!(
        owned,
        [true, true, false],
        "the reply belongs to the owned flow; another ping does not"
    );
}

/// One packet's crossing of client → host (where `rewritten` takes over,
/// NAT between the host's two devices) → server, hook order as on veth.
fn nat_crossing(
    t0: u64,
    pkt: u64,
    before: Headers,
    after: Headers,
    forward: bool,
) -> Vec<HopEvent> {
    let mut evs = crossing(t0, pkt, before, forward);
    // The host's egress (queue, xmit) and the far side carry the rewrite.
    for e in &mut evs[4..8] {
        if e.headers.is_some() {
            e.headers = Some(after);
        }
    }
    evs
}

#[test]
fn a_published_port_is_one_flow_through_dnat_with_roles() {
    // Client .2:40000 connects to the published .9:8080; DNAT sends it to
    // the container .20:80, whose reply is rewritten back on the way out.
    let (c, s, p, srv) = (2, 40000, 9, 20);
    let mut events = nat_crossing(
        1000,
        1,
        tcp(c, s, p, 8080, TcpFlags::SYN, 100),
        tcp(c, s, srv, 80, TcpFlags::SYN, 100),
        true,
    );
    let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
    events.extend(nat_crossing(
        2000,
        2,
        tcp(srv, 80, c, s, syn_ack, 900),
        tcp(p, 8080, c, s, syn_ack, 900),
        false,
    ));
    events.extend(nat_crossing(
        3000,
        3,
        tcp(c, s, p, 8080, TcpFlags::ACK, 101),
        tcp(c, s, srv, 80, TcpFlags::ACK, 101),
        true,
    ));
    let (corr, sink) = run(&events, CorrelatorConfig::default());
    let flows: Vec<&Flow> = corr.flows().collect();
    assert_eq!(flows.len(), 1, "one connection, one flow: {flows:#?}");
    assert_eq!((flows[0].requests, flows[0].replies), (2, 1));
    assert_eq!(flows[0].initiator, (Some(ip(c).into()), s));
    let roles: Vec<_> = sink.done.iter().map(|p| (p.id.0, p.role)).collect();
    assert_eq!(
        roles,
        vec![
            (1, Some(Role::Request)),
            (2, Some(Role::Reply)),
            (3, Some(Role::Request))
        ]
    );
    // The rewrite shows on the first visit after it, once per packet.
    let rw: Vec<Vec<String>> = sink
        .done
        .iter()
        .map(|p| {
            p.visits
                .iter()
                .map(|v| v.rewrite.map(|r| r.to_string()).unwrap_or_default())
                .collect()
        })
        .collect();
    let dnat = "DNAT 198.18.0.9:8080 → 198.18.0.20:80".to_owned();
    let undo = "SNAT 198.18.0.20:80 → 198.18.0.9:8080".to_owned();
    let e = String::new;
    assert_eq!(rw[0], vec![e(), e(), dnat.clone(), e()]);
    assert_eq!(rw[1], vec![e(), e(), undo, e()]);
    assert_eq!(rw[2], vec![e(), e(), dnat, e()]);
    let hop_rewrites = sink.hops.iter().filter(|h| h.rewrite.is_some()).count();
    assert_eq!(hop_rewrites, 3, "one event per packet carries the rewrite");
}

#[test]
fn masqueraded_udp_replies_are_replies_of_the_same_flow() {
    // Container .2:5000 asks .30:53; MASQUERADE makes it .1:61000. The
    // answer comes back to .1:61000 and is rewritten to .2:5000.
    let mut events = nat_crossing(1000, 1, udp(2, 5000, 30, 53), udp(1, 61000, 30, 53), true);
    events.extend(nat_crossing(
        2000,
        2,
        udp(30, 53, 1, 61000),
        udp(30, 53, 2, 5000),
        false,
    ));
    let (corr, sink) = run(&events, CorrelatorConfig::default());
    assert_eq!(corr.flows().count(), 1);
    let f = corr.flows().next().unwrap();
    assert_eq!((f.requests, f.replies), (1, 1));
    assert_eq!(sink.done[0].flow, sink.done[1].flow);
    assert_eq!(sink.done[1].role, Some(Role::Reply));
    assert_eq!(
        sink.done[0].visits[2].rewrite.unwrap().to_string(),
        "SNAT 198.18.0.2:5000 → 198.18.0.1:61000"
    );
    assert_eq!(
        sink.done[1].visits[2].rewrite.unwrap().to_string(),
        "DNAT 198.18.0.1:61000 → 198.18.0.2:5000"
    );
}

#[test]
fn a_late_transmit_completion_is_no_hop() {
    // A tunnel device returns from its transmit only after the underlay
    // carried the packet and the far side received it (same CPU).
    let h = Some(icmp(2, 3, 8, 7, 1));
    let (vx, u1, u2) = (dev(C1, 5, "vxlan0"), dev(C1, 2, "eth0"), dev(C2, 2, "eth0"));
    let events = [
        ev(100, 1, Hook::NetDevQueue, Some(vx), h),
        ev(101, 1, Hook::NetDevQueue, Some(u1), h),
        ev(102, 1, Hook::NetifRx, Some(u2), h),
        ev(103, 1, Hook::NetDevXmit, Some(u1), h),
        ev(104, 1, Hook::NetifReceiveSkb, Some(u2), h),
        ev(105, 1, Hook::NetDevXmit, Some(vx), h),
        // A completion on a device the packet never queued on: no hop.
        ev(106, 1, Hook::NetDevXmit, Some(dev(HOST, 9, "other")), h),
        ev(107, 1, Hook::ConsumeSkb, None, None),
    ];
    let (_, sink) = run(&events, CorrelatorConfig::default());
    let p = &sink.done[0];
    assert_eq!(
        names(p),
        vec![
            (C1, "vxlan0".to_owned()),
            (C1, "eth0".to_owned()),
            (C2, "eth0".to_owned())
        ]
    );
    assert!(p.visits[0].hooks.contains(Hook::NetDevXmit));
    assert_eq!(p.visits[0].last_ts, 105);
    assert_eq!(
        sink.hops.iter().map(|h| h.visit).collect::<Vec<_>>(),
        vec![0, 1, 2, 1, 2, 0, 2],
        "the stray completion reaches no sink; the end is on the last visit"
    );
}

#[test]
fn segments_tcp_merged_reach_the_socket_with_the_one_they_joined() {
    // Two pure ACKs, then one data segment carrying two more's payload
    // (coalesced in the socket backlog: the others are freed without a
    // tracepoint), arrive in c2; tcp_probe names only the survivors.
    let (tx, rx) = (dev(C1, 2, "eth0"), dev(C2, 2, "eth0"));
    let ack = |seq| Some(tcp(2, 40000, 3, 80, TcpFlags::ACK, seq));
    let mut events = Vec::new();
    let mut arrive = |t: u64, id: u64, h: Option<Headers>| {
        events.push(ev(t, id, Hook::NetDevQueue, Some(tx), h));
        events.push(ev(t + 1, id, Hook::NetifReceiveSkb, Some(rx), h));
    };
    arrive(10, 1, ack(500));
    arrive(20, 2, ack(500));
    arrive(30, 3, ack(1000));
    arrive(40, 4, ack(2000));
    arrive(50, 5, ack(3000));
    let mut probe = |t: u64, id: u64, payload: u32| {
        let mut e = ev(t, id, Hook::TcpRcv, None, None);
        e.data = HookData::TcpSegment { payload };
        events.push(e);
    };
    probe(60, 1, 0);
    probe(70, 3, 3000);
    let cfg = CorrelatorConfig::default();
    let mut c = Correlator::new(cfg);
    let mut sink = Collect::default();
    for e in &events {
        c.on_event(e, &mut sink);
    }
    c.gc(70 + cfg.settle_ns + 1, &mut sink);
    let mut got: Vec<(u64, &str, Option<u64>)> = sink
        .done
        .iter()
        .map(|p| (p.id.0, p.outcome.word(), p.coalesced_into.map(|c| c.0)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (1, "consumed", None),
            (2, "consumed", Some(1)),
            (3, "delivered", None),
            (4, "delivered", Some(3)),
            (5, "delivered", Some(3)),
        ]
    );
}
