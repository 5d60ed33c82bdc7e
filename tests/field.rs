//! The field topologies of `tests/common/field.rs` prove themselves: each
//! exchange succeeds as the programs print it, and tcpdump sees the packets
//! on the expected interfaces with the expected (rewritten) headers. These
//! are the ground truth hopscope is checked against; no hopscope here.
//! Root only, never skipped; each test holds `serial()` because tcpdump and
//! traffic would disturb the live BPF tests of other checkouts.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::field::*;
use common::serial;

const T: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ping -c N` in `ns`, its (transmitted, received).
fn ping(ns: &str, args: &[&str]) -> (u32, u32) {
    let mut all = vec!["ping", "-n", "-q", "-i", "0.1", "-W", "2"];
    all.extend_from_slice(args);
    let done = in_ns(ns, &all, T);
    assert!(!done.timed_out, "{done}");
    ping_counts(&done.stdout).unwrap_or_else(|| panic!("{done}"))
}

/// `(seq, flags, payload)` of the TCP frames of one connection in one
/// direction, in capture order.
fn segments(c: &Captured, src: (IpAddr, u16), dst: (IpAddr, u16)) -> Vec<(u32, String, u32)> {
    c.frames
        .iter()
        .filter(|f| {
            f.src() == Some(src.0) && f.dst() == Some(dst.0) && f.ports() == Some((src.1, dst.1))
        })
        .filter_map(|f| f.tcp().map(|(s, fl, p)| (s, fl.to_owned(), p)))
        .collect()
}

/// The client port of the only TCP connection that `c` saw to `dst`.
fn client_port(c: &Captured, dst: (IpAddr, u16)) -> u16 {
    let ports: BTreeSet<u16> = c
        .frames
        .iter()
        .filter(|f| {
            f.proto() == "tcp" && f.dst() == Some(dst.0) && f.ports().map(|p| p.1) == Some(dst.1)
        })
        .map(|f| f.ports().unwrap().0)
        .collect();
    assert_eq!(ports.len(), 1, "one connection to {dst:?}: {}", c.listing());
    ports.into_iter().next().unwrap()
}

#[test]
fn published_port_dnat_tcp_udp_and_masquerade_egress() {
    use published::*;
    let _s = serial();
    let t = PublishedPort::build(&field_prefix("pp"));
    let cli = Tcpdump::on(&t.client, "eth0").filter("tcp or udp").start();
    let ctr = Tcpdump::on(&t.container, "eth0")
        .filter("tcp or udp")
        .start();
    let out = Tcpdump::on(&t.outside, "eth0").filter("tcp or udp").start();

    let tcp = run_argv(&t.client_argv("published-tcp", false), T).ok();
    assert_eq!(tcp.stdout, "published-tcp\n");
    let udp = run_argv(&t.client_argv("published-udp", true), T).ok();
    assert_eq!(udp.stdout, "published-udp\n");
    let etcp = run_argv(&t.egress_argv("egress-tcp", false), T).ok();
    assert_eq!(etcp.stdout, "egress-tcp\n");
    let eudp = run_argv(&t.egress_argv("egress-udp", true), T).ok();
    assert_eq!(eudp.stdout, "egress-udp\n");

    // The servers saw the client unchanged through DNAT, and the host's
    // outside address through MASQUERADE.
    let done = |s: &[Seen]| s.len() == 1 && s[0].done;
    let seen = t.tcp.wait(done, T);
    assert_eq!(
        (seen.len(), seen[0].peer.ip(), seen[0].bytes),
        (1, ip(CLIENT), 14)
    );
    let seen = t.udp.seen();
    assert_eq!(
        (seen.len(), seen[0].peer.ip(), seen[0].bytes),
        (1, ip(CLIENT), 14)
    );
    let seen = t.out_tcp.wait(done, T);
    assert_eq!(
        (seen.len(), seen[0].peer.ip(), seen[0].bytes),
        (1, ip(HOST_OUT), 11)
    );
    let seen = t.out_udp.seen();
    assert_eq!(
        (seen.len(), seen[0].peer.ip(), seen[0].bytes),
        (1, ip(HOST_OUT), 11)
    );

    let (cli, ctr, out) = (cli.stop(), ctr.stop(), out.stop());
    for c in [&cli, &ctr, &out] {
        assert_eq!(c.dropped_by_kernel, Some(0), "{}", c.stderr);
    }
    // The client only ever talks to the published address.
    assert!(!cli.frames.is_empty());
    for f in &cli.frames {
        let peers = [f.src().unwrap(), f.dst().unwrap()];
        assert!(
            peers.contains(&ip(CLIENT)) && peers.contains(&ip(PUBLISHED)),
            "{f}\n{}",
            cli.listing()
        );
    }
    let cport = client_port(&cli, (ip(PUBLISHED), PORT));
    // The container sees the same segments with the DNATed destination.
    let before = segments(&cli, (ip(CLIENT), cport), (ip(PUBLISHED), PORT));
    let after = segments(&ctr, (ip(CLIENT), cport), (ip(CONTAINER), CONTAINER_PORT));
    assert_eq!(before[0].1, "S", "{}", cli.listing());
    assert_eq!(before, after, "{}{}", cli.listing(), ctr.listing());
    let replies_ctr = segments(&ctr, (ip(CONTAINER), CONTAINER_PORT), (ip(CLIENT), cport));
    let replies_cli = segments(&cli, (ip(PUBLISHED), PORT), (ip(CLIENT), cport));
    assert_eq!(replies_ctr[0].1, "S.", "{}", ctr.listing());
    assert_eq!(replies_ctr, replies_cli, "un-DNATed replies");
    assert!(replies_cli.iter().any(|s| s.2 == 14), "the echo");
    // UDP: one datagram each way, rewritten the same way.
    let udp_of = |c: &Captured, a: &str, b: &str| -> Vec<(u16, u16, u32)> {
        c.frames
            .iter()
            .filter(|f| f.proto() == "udp" && f.src() == Some(ip(a)) && f.dst() == Some(ip(b)))
            .map(|f| {
                let (s, d) = f.ports().unwrap();
                let Some(Ip {
                    l4: L4::Udp { payload, .. },
                    ..
                }) = f.ip()
                else {
                    unreachable!()
                };
                (s, d, *payload)
            })
            .collect()
    };
    let q = udp_of(&cli, CLIENT, PUBLISHED);
    assert_eq!(q.len(), 1, "{}", cli.listing());
    let uport = q[0].0;
    assert_eq!(q, vec![(uport, PORT, 14)]);
    assert_eq!(udp_of(&cli, PUBLISHED, CLIENT), vec![(PORT, uport, 14)]);
    assert_eq!(
        udp_of(&ctr, CLIENT, CONTAINER),
        vec![(uport, CONTAINER_PORT, 14)]
    );
    assert_eq!(
        udp_of(&ctr, CONTAINER, CLIENT),
        vec![(CONTAINER_PORT, uport, 14)]
    );
    // Egress: the container's own source inside, the host's outside.
    let eport = client_port(&ctr, (ip(OUTSIDE), OUTSIDE_PORT));
    let inside = segments(&ctr, (ip(CONTAINER), eport), (ip(OUTSIDE), OUTSIDE_PORT));
    let oport = client_port(&out, (ip(OUTSIDE), OUTSIDE_PORT));
    let outside = segments(&out, (ip(HOST_OUT), oport), (ip(OUTSIDE), OUTSIDE_PORT));
    assert_eq!(inside[0].1, "S");
    assert_eq!(inside, outside, "{}{}", ctr.listing(), out.listing());
    assert!(
        out.frames
            .iter()
            .all(|f| f.src() != Some(ip(CONTAINER)) && f.dst() != Some(ip(CONTAINER))),
        "the container's address never leaves the host: {}",
        out.listing()
    );
    assert_eq!(
        udp_of(&out, HOST_OUT, OUTSIDE).len(),
        1,
        "{}",
        out.listing()
    );
    assert_eq!(
        udp_of(&out, OUTSIDE, HOST_OUT).len(),
        1,
        "{}",
        out.listing()
    );
    assert_eq!(
        udp_of(&ctr, CONTAINER, OUTSIDE).len(),
        1,
        "{}",
        ctr.listing()
    );
}

/// Echo requests (id, seq) from `src` to `dst` of ICMP type `ty`, innermost.
fn echoes(frames: &[&Frame], src: &str, dst: &str, ty: u8) -> Vec<(u16, u16)> {
    frames
        .iter()
        .filter(|f| f.src() == Some(ip(src)) && f.dst() == Some(ip(dst)))
        .filter_map(|f| f.icmp())
        .filter(|i| i.0 == ty)
        .map(|i| (i.1, i.2))
        .collect()
}

fn overlay_ping_and_tcp(opts: VxlanOpts, tag: &str) {
    use overlay::*;
    let _s = serial();
    let t = VxlanOverlay::build(&field_prefix(tag), opts);
    let port = opts.port.to_string();
    let under = Tcpdump::on(&t.node1, "eth0")
        .filter(&format!("udp port {port}"))
        .start();
    let pod2 = Tcpdump::on(&t.pod2, "eth0")
        .filter("icmp or icmp6 or tcp")
        .start();

    assert_eq!(ping(&t.pod1, &["-c", "3", POD2_V4]), (3, 3));
    assert_eq!(ping(&t.pod1, &["-c", "3", POD2_V6]), (3, 3));
    let line = client_line("over-the-overlay", POD2_V4, TCP_PORT, false);
    let done = sh_in(&t.pod1, &line, T).ok();
    assert_eq!(done.stdout, "over-the-overlay\n");

    let (under, pod2) = (under.stop(), pod2.stop());
    assert!(!under.frames.is_empty());
    for f in &under.frames {
        let nodes = [ip(UNDERLAY1), ip(UNDERLAY2)];
        assert!(
            nodes.contains(&f.src().unwrap()) && nodes.contains(&f.dst().unwrap()),
            "{f}"
        );
        assert_eq!(f.ports().map(|p| p.1), Some(opts.port), "{f}");
        let v = f.vxlan().unwrap_or_else(|| panic!("not VXLAN: {f}"));
        assert_eq!(v.vni, VNI, "{f}");
        // Sent from node1 to node2 iff the inner frame goes from pod1.
        let inner = &v.inner;
        let pod = |a: &str, b: &str| inner.src() == Some(ip(a)) || inner.src() == Some(ip(b));
        if pod(POD1_V4, POD1_V6) || pod(POD2_V4, POD2_V6) {
            let to_node2 = f.dst() == Some(ip(UNDERLAY2));
            assert_eq!(pod(POD1_V4, POD1_V6), to_node2, "{f}");
        }
    }
    let inner: Vec<&Frame> = under
        .frames
        .iter()
        .map(|f| &f.vxlan().unwrap().inner)
        .collect();
    let at_pod2: Vec<&Frame> = pod2.frames.iter().collect();
    for (src, dst, req, rep) in [(POD1_V4, POD2_V4, 8, 0), (POD1_V6, POD2_V6, 128, 129)] {
        let sent = echoes(&inner, src, dst, req);
        assert_eq!(sent.len(), 3, "{}", under.listing());
        assert_eq!(sent, echoes(&at_pod2, src, dst, req), "{}", pod2.listing());
        assert_eq!(sent, echoes(&inner, dst, src, rep), "replies ride back");
    }
    // The inner IPv4 identity survives the wire: IP ids match too.
    let ids = |fs: &[&Frame]| -> Vec<Option<u16>> {
        fs.iter()
            .filter(|f| f.src() == Some(ip(POD1_V4)) && f.icmp().is_some())
            .map(|f| f.ip().unwrap().ip_id)
            .collect()
    };
    assert_eq!(ids(&inner), ids(&at_pod2));
    // TCP: the same segments inside the tunnel and at the pod.
    let tcp_in = |fs: &[&Frame]| -> Vec<(u32, String)> {
        fs.iter()
            .filter(|f| f.ports().map(|p| p.1) == Some(TCP_PORT))
            .map(|f| {
                let (s, fl, _) = f.tcp().unwrap();
                (s, fl.to_owned())
            })
            .collect()
    };
    let tcp_under = tcp_in(&inner);
    assert_eq!(tcp_under[0].1, "S", "{}", under.listing());
    assert_eq!(tcp_under, tcp_in(&at_pod2));
    assert!(
        inner.iter().all(|f| f.wire_len <= 1464),
        "inner frames fit the overlay MTU"
    );
}

#[test]
fn vxlan_overlay_4789_carries_ping_ping6_and_tcp_between_pods() {
    overlay_ping_and_tcp(VxlanOpts::default(), "vx");
}

#[test]
fn vxlan_overlay_on_linux_port_8472_with_fdb_flood_entries() {
    overlay_ping_and_tcp(
        VxlanOpts {
            port: 8472,
            fdb: true,
        },
        "v8",
    );
}

#[test]
fn macvlan_bridge_mode_child_to_child_and_from_the_wire() {
    use mv::*;
    let _s = serial();
    let t = Macvlan::build(&field_prefix("mv"));
    let m1_mac = t.field.get(&t.m1).mac("eth0");
    let m2_mac = t.field.get(&t.m2).mac("eth0");
    let caps = [
        Tcpdump::on(&t.m1, "eth0").filter("icmp").start(),
        Tcpdump::on(&t.m2, "eth0").filter("icmp").start(),
        Tcpdump::on(&t.host, "eth0").filter("icmp").start(),
        Tcpdump::on(&t.far, "eth0").filter("icmp").start(),
    ];
    assert_eq!(ping(&t.m1, &["-c", "3", M2]), (3, 3));
    assert_eq!(ping(&t.far, &["-c", "3", M1]), (3, 3));
    let [m1, m2, parent, far] = caps.map(Capture::stop);
    // Child to child: both children see the three echoes.
    let sent = echoes(&all(&m1), M1, M2, 8);
    assert_eq!(sent.len(), 3, "{}", m1.listing());
    assert_eq!(sent, echoes(&all(&m2), M1, M2, 8), "{}", m2.listing());
    assert_eq!(sent, echoes(&all(&m2), M2, M1, 0));
    assert_eq!(sent, echoes(&all(&m1), M2, M1, 0));
    // The parent's taps see child-to-child traffic too: macvlan forwards it
    // through the lower device first ("for its network taps").
    assert_eq!(
        sent,
        echoes(&all(&parent), M1, M2, 8),
        "{}",
        parent.listing()
    );
    // It never goes on the wire.
    assert!(
        echoes(&all(&far), M1, M2, 8).is_empty(),
        "{}",
        far.listing()
    );
    // From the far end: addressed to m1's own MAC, seen by the parent and m1.
    let from_far = echoes(&all(&far), FAR, M1, 8);
    assert_eq!(from_far.len(), 3);
    assert_eq!(from_far, echoes(&all(&parent), FAR, M1, 8));
    assert_eq!(from_far, echoes(&all(&m1), FAR, M1, 8));
    assert!(echoes(&all(&m2), FAR, M1, 8).is_empty(), "{}", m2.listing());
    for f in far.select(|f| f.dst() == Some(ip(M1))) {
        assert_eq!(f.dst_mac, m1_mac, "{f}");
    }
    for f in m2.select(|f| f.dst() == Some(ip(M2))) {
        assert_eq!(f.dst_mac, m2_mac, "{f}");
    }
}

fn all(c: &Captured) -> Vec<&Frame> {
    c.frames.iter().collect()
}

fn bulk(opts: GsoOpts, tag: &str) -> Captured {
    let _s = serial();
    let t = Gso::build(&field_prefix(tag), opts);
    assert_eq!(t.offloads(), (opts.offload, opts.offload));
    let cap = Tcpdump::on(&t.snd, "eth0")
        .outbound()
        .filter(&format!("tcp dst port {}", gso::PORT))
        .start();
    const BYTES: u64 = 1_000_000;
    run_argv(&t.bulk_argv(BYTES), T).ok();
    let seen = t.sink.wait(|s| s.len() == 1 && s[0].done, T);
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].bytes, seen[0].done), (BYTES, true));
    let cap = cap.stop();
    assert_eq!(cap.dropped_by_kernel, Some(0));
    let payload: u64 = cap
        .frames
        .iter()
        .filter_map(|f| f.tcp())
        .map(|t| u64::from(t.2))
        .sum();
    assert_eq!(payload, BYTES, "what the sender's tap saw adds up");
    cap
}

#[test]
fn gso_off_segments_in_software_and_tso_on_sends_super_packets() {
    let off = bulk(GsoOpts::default(), "go");
    let max = off.frames.iter().map(|f| f.wire_len).max().unwrap();
    assert!(max <= 1514, "segmented before the tap: max {max}");
    let on = bulk(
        GsoOpts {
            offload: true,
            bridge: false,
        },
        "gn",
    );
    let max = on.frames.iter().map(|f| f.wire_len).max().unwrap();
    assert!(
        max > 1514,
        "TSO keeps GSO packets whole on a veth: max {max}"
    );
    let bridged = bulk(
        GsoOpts {
            offload: false,
            bridge: true,
        },
        "gb",
    );
    let max = bridged.frames.iter().map(|f| f.wire_len).max().unwrap();
    assert!(max <= 1514, "max {max}");
}

#[test]
fn tcpdump_on_a_bridge_sees_pings_and_tcp_crossing_it() {
    use tap::*;
    let _s = serial();
    let t = BridgeTap::build(&field_prefix("bt"));
    assert_eq!(t.bridge_promiscuity(), 0);
    let cap = t.tcpdump_on_bridge(&format!("icmp or tcp port {PORT}"));
    assert!(
        t.bridge_promiscuity() >= 1,
        "tcpdump makes the bridge promiscuous"
    );
    assert_eq!(ping(&t.a, &["-c", "3", B]), (3, 3));
    let line = client_line("across-the-bridge", B, PORT, false);
    assert_eq!(sh_in(&t.a, &line, T).ok().stdout, "across-the-bridge\n");
    let cap = cap.stop();
    assert_eq!(t.bridge_promiscuity(), 0, "promiscuity is given back");
    let all: Vec<&Frame> = cap.frames.iter().collect();
    let req = echoes(&all, A, B, 8);
    assert_eq!(req.len(), 3, "{}", cap.listing());
    assert_eq!(req, echoes(&all, B, A, 0));
    let syn = cap.select(|f| f.tcp().is_some_and(|t| t.1 == "S") && f.dst() == Some(ip(B)));
    let synack = cap.select(|f| f.tcp().is_some_and(|t| t.1 == "S.") && f.src() == Some(ip(B)));
    assert_eq!((syn.len(), synack.len()), (1, 1), "{}", cap.listing());
    let echo_bytes: u32 = cap
        .select(|f| f.src() == Some(ip(B)))
        .iter()
        .filter_map(|f| f.tcp())
        .map(|t| t.2)
        .sum();
    assert_eq!(echo_bytes, 18);
}

#[test]
fn ipv6_router_mld_on_flap_and_vlan_priority_tags() {
    use v6::*;
    let _s = serial();
    let t = V6Router::build(&field_prefix("v6"));
    // Routed IPv6: the hop limit drops by one at the router.
    let right = Tcpdump::on(&t.right, "eth0").filter("icmp6").start();
    assert_eq!(ping(&t.left, &["-c", "3", RIGHT_V6]), (3, 3));
    let right = right.stop();
    let req =
        right.select(|f| f.icmp().is_some_and(|i| i.0 == 128) && f.src() == Some(ip(LEFT_V6)));
    assert_eq!(req.len(), 3, "{}", right.listing());
    assert!(
        req.iter().all(|f| f.ip().unwrap().ttl == 63),
        "{}",
        right.listing()
    );

    // MLD: a flap sends MLDv2 reports (ICMPv6 143) behind a hop-by-hop header.
    let link = Tcpdump::on(&t.router, "eth0").inbound().start();
    t.flap();
    let is_mld = |f: &Frame| {
        f.ip()
            .is_some_and(|i| i.ext == [0] && i.ttl == 1 && i.dst == ip("ff02::16"))
            && f.icmp().map(|i| i.0) == Some(143)
    };
    assert!(
        link.wait_for(|fs| fs.iter().any(is_mld), Duration::from_secs(3)),
        "no MLD report after the flap: {:#?}",
        link.frames()
    );
    let link = link.stop();
    // The routes are back: the left side still reaches the right.
    assert_eq!(ping(&t.left, &["-c", "1", RIGHT_V6]), (1, 1));
    assert_eq!(ping(&t.left, &["-c", "1", RIGHT_V4]), (1, 1));
    let mld = link.select(is_mld);
    assert!(mld.iter().all(|f| matches!(f.src(), Some(IpAddr::V6(a)) if a.segments()[0] == 0xfe80 || a.is_unspecified())));

    // 802.1Q: a priority tag (VID 0) is delivered, VID 100 is not.
    let cap = Tcpdump::on(&t.router, "eth0").start();
    let left_cap = Tcpdump::on(&t.left, "eth0")
        .inbound()
        .filter("icmp")
        .start();
    let id = 0x4846;
    t.inject(&[
        t.echo_frame(Some((5, 0)), 0x1001, id, 1),
        t.echo_frame(Some((0, 100)), 0x1002, id, 2),
        t.echo_frame(None, 0x1003, id, 3),
    ]);
    let replies = |fs: &[Frame]| {
        fs.iter()
            .filter(|f| f.icmp().is_some_and(|i| i.0 == 0 && i.1 == id))
            .count()
    };
    assert!(left_cap.wait_for(|fs| replies(fs) == 2, Duration::from_secs(3)));
    // Anything for VID 100 would have come by now.
    std::thread::sleep(Duration::from_millis(100));
    let (cap, left_cap) = (cap.stop(), left_cap.stop());
    let probes = cap.select(|f| f.icmp().is_some_and(|i| i.0 == 8 && i.1 == id));
    let tags: Vec<(Vec<Vlan>, Option<u16>, u16)> = probes
        .iter()
        .map(|f| (f.vlans.clone(), f.ip().unwrap().ip_id, f.icmp().unwrap().2))
        .collect();
    assert_eq!(
        tags,
        vec![
            (
                vec![Vlan {
                    tpid: 0x8100,
                    pcp: 5,
                    vid: 0
                }],
                Some(0x1001),
                1
            ),
            (
                vec![Vlan {
                    tpid: 0x8100,
                    pcp: 0,
                    vid: 100
                }],
                Some(0x1002),
                2
            ),
            (vec![], Some(0x1003), 3),
        ],
        "{}",
        cap.listing()
    );
    let answered: Vec<(u16, bool)> = left_cap
        .select(|f| f.icmp().is_some_and(|i| i.0 == 0 && i.1 == id))
        .iter()
        .map(|f| (f.icmp().unwrap().2, f.vlans.is_empty()))
        .collect();
    assert_eq!(
        answered,
        vec![(1, true), (3, true)],
        "{}",
        left_cap.listing()
    );
    assert!(cap
        .select(|f| f.src() == Some(ip(ROUTER_L_V4)) && f.icmp().is_some_and(|i| i.2 == 2))
        .is_empty());
}

#[test]
fn ipv4_fragments_cross_the_router_as_three_frames() {
    use v6::*;
    let _s = serial();
    let t = V6Router::build(&field_prefix("fr"));
    let cap = Tcpdump::on(&t.right, "eth0")
        .inbound()
        .filter("icmp")
        .start();
    // 3008 bytes of ICMP: 1480 + 1480 + 48 behind three IPv4 headers.
    assert_eq!(ping(&t.left, &["-c", "1", "-s", "3000", RIGHT_V4]), (1, 1));
    let cap = cap.stop();
    type Frag = (Option<(u16, bool)>, bool, u32);
    let frags: Vec<Frag> = cap
        .select(|f| f.src() == Some(ip(LEFT_V4)))
        .iter()
        .map(|f| {
            let i = f.ip().unwrap();
            (i.fragment, matches!(i.l4, L4::Fragment), i.total_len)
        })
        .collect();
    assert_eq!(
        frags,
        vec![
            (Some((0, true)), false, 1500),
            (Some((1480, true)), true, 1500),
            (Some((2960, false)), true, 68),
        ],
        "{}",
        cap.listing()
    );
    let first = cap.select(|f| f.src() == Some(ip(LEFT_V4)))[0].clone();
    assert_eq!(first.icmp().map(|i| i.0), Some(8));
    let ids: BTreeSet<Option<u16>> = cap
        .select(|f| f.src() == Some(ip(LEFT_V4)))
        .iter()
        .map(|f| f.ip().unwrap().ip_id)
        .collect();
    assert_eq!(ids.len(), 1, "one datagram");
}

#[test]
fn busy_neighbours_send_exactly_what_they_count() {
    use busy::*;
    let _s = serial();
    let mut b = Busy::build(&field_prefix("bz"));
    let cap = Tcpdump::on(&b.n2, "eth0").filter("udp or icmp").start();
    b.start(500, "0.01");
    std::thread::sleep(Duration::from_millis(500));
    let n = b.stop();
    let cap = cap.stop();
    assert_eq!(cap.dropped_by_kernel, Some(0), "{}", cap.stderr);
    assert!(n.udp_sent >= 100, "{n:?}");
    assert!(n.ping_tx >= 10, "{n:?}");
    let udp = cap.select(|f| {
        f.proto() == "udp"
            && f.dst() == Some(ip(N2))
            && f.ports()
                .is_some_and(|p| (CLOSED_PORT..CLOSED_PORT + 100).contains(&p.1))
    });
    assert_eq!(udp.len() as u64, n.udp_sent, "{}", cap.listing());
    let unreachable = cap.select(|f| {
        f.src() == Some(ip(N2))
            && f.ip()
                .is_some_and(|i| matches!(i.l4, L4::Icmp { ty: 3, code: 3, .. }))
    });
    assert_eq!(
        unreachable.len() as u64,
        n.udp_sent,
        "every one answered: port unreachable"
    );
    let all: Vec<&Frame> = cap.frames.iter().collect();
    let req = echoes(&all, N1, N2, 8);
    assert_eq!(req.len() as u32, n.ping_tx);
    assert_eq!(echoes(&all, N2, N1, 0), req);
    // ping may stop between its last request and that reply.
    assert!(
        n.ping_rx + 1 >= n.ping_tx && n.ping_rx <= n.ping_tx,
        "{n:?}"
    );
}

// Pure checks of the frame reader on frames built here.

#[test]
fn frame_reader_reads_tags_ids_and_vxlan() {
    let a = [2, 0, 0, 0, 0, 1];
    let b = [2, 0, 0, 0, 0, 2];
    let src = Ipv4Addr::new(198, 18, 1, 1);
    let dst = Ipv4Addr::new(198, 18, 1, 2);
    let f = echo_frame(a, b, Some((5, 0)), src, dst, 77, 9, 4);
    let p = parse_frame(&f, f.len() as u32, 0);
    assert_eq!(
        p.vlans,
        vec![Vlan {
            tpid: 0x8100,
            pcp: 5,
            vid: 0
        }]
    );
    assert_eq!((p.src_mac, p.dst_mac, p.ethertype), (a, b, 0x0800));
    assert_eq!(p.icmp(), Some((8, 9, 4)));
    assert_eq!(p.ip().unwrap().ip_id, Some(77));
    assert_eq!(p.ident().proto, "icmp");
    // Wrap it in VXLAN 42 over UDP 4789 (checksums are not checked).
    let inner = echo_frame(a, b, None, src, dst, 1, 2, 3);
    let mut udp = vec![0x30, 0x39, 0x12, 0xb5];
    udp.extend_from_slice(&((8 + 8 + inner.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0, 0x08, 0, 0, 0, 0, 0, 42, 0]);
    udp.extend_from_slice(&inner);
    let mut ipv4 = vec![0x45, 0];
    ipv4.extend_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
    ipv4.extend_from_slice(&[0, 5, 0, 0, 64, 17, 0, 0, 198, 19, 0, 1, 198, 19, 0, 2]);
    let mut outer = b.to_vec();
    outer.extend_from_slice(&a);
    outer.extend_from_slice(&[0x08, 0x00]);
    outer.extend_from_slice(&ipv4);
    outer.extend_from_slice(&udp);
    let o = parse_frame(&outer, outer.len() as u32, 0);
    assert_eq!(o.ports(), Some((12345, 4789)));
    let v = o.vxlan().expect("VXLAN");
    assert_eq!(v.vni, 42);
    assert_eq!(o.innermost().icmp(), Some((8, 2, 3)));
    assert_eq!(o.innermost().src(), Some(IpAddr::V4(src)));
    // A pcap stream around it, the last record cut short.
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&262u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes());
    for (sec, fr) in [(7u32, &f), (8, &outer)] {
        pcap.extend_from_slice(&sec.to_le_bytes());
        pcap.extend_from_slice(&5u32.to_le_bytes());
        pcap.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        pcap.extend_from_slice(fr);
    }
    let frames = parse_pcap(&pcap);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].ts_us, 7_000_005);
    assert_eq!(frames[1].vxlan().unwrap().vni, 42);
    assert_eq!(parse_pcap(&pcap[..pcap.len() - 1]).len(), 1);
}

/// Recordings of hopscope on the field topologies (made with `examples/field`
/// and `hopscope trace --record`, scoped to the topology's namespaces) for
/// correlator tests: each reads back whole, with its namespaces named.
#[test]
fn recorded_field_fixtures_read_back() {
    use hopscope::event::record::{Frame as Rec, Replay};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cases: [(&str, &[&str], u64); 5] = [
        ("field-published.hsrec", &["cli", "ctr", "host", "out"], 345),
        (
            "field-vxlan.hsrec",
            &["node1", "node2", "pod1", "pod2"],
            426,
        ),
        ("field-macvlan.hsrec", &["far", "host", "m1", "m2"], 119),
        ("field-gso-off.hsrec", &["rcv", "snd"], 427),
        ("field-bridge-tcpdump.hsrec", &["a", "b", "sw"], 212),
    ];
    for (file, roles, want_events) in cases {
        let mut r = Replay::open(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (mut events, mut names) = (0u64, BTreeSet::new());
        while let Some(f) = r.next_frame().unwrap_or_else(|e| panic!("{file}: {e}")) {
            match f {
                Rec::Event(_) => events += 1,
                Rec::NetnsName { name, .. } if name.starts_with("hfx-") => {
                    names.insert(name);
                }
                _ => {}
            }
        }
        let want: BTreeSet<String> = roles.iter().map(|r| format!("hfx-{r}")).collect();
        assert_eq!(names, want, "{file}");
        assert_eq!(events, want_events, "{file}");
    }
}
