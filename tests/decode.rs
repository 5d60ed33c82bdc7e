//! Decoder tests, built from the ABI structs the kernel side fills.

use std::net::{Ipv4Addr, Ipv6Addr};

use hopscope::bpf::abi::{event_bytes, RawEvent, ABI_VERSION, EVENT_SIZE};
use hopscope::event::decode::{decode, decode_v1, DecodeError};
use hopscope::event::{Hook, HookData, HopEvent, Link, PacketId, Tunnel, L3, L4};

fn raw_icmp() -> RawEvent {
    let mut e = RawEvent {
        abi_version: ABI_VERSION,
        hook: 1,
        flags: 1 | 2 | 4 | 8,
        cpu: 1,
        ..RawEvent::default()
    };
    e.ts_ns = 123;
    e.packet_id = 42;
    e.skb_addr = 0xffff_8880_0000_1000;
    e.netns_ino = 4026532258;
    e.netns_cookie = 77;
    e.ifindex = 2;
    e.ifname[..4].copy_from_slice(b"eth0");
    e.comm[..4].copy_from_slice(b"ping");
    e.pid = 1000;
    e.tid = 1001;
    e.sk_cgroup = 9;
    e.len = 98;
    e.tuple.l3 = 1;
    e.tuple.ethertype = 0x0800;
    e.tuple.saddr[..4].copy_from_slice(&[198, 18, 0, 2]);
    e.tuple.daddr[..4].copy_from_slice(&[198, 18, 0, 3]);
    e.tuple.l4_proto = 1;
    e.tuple.icmp_type = 8;
    e.tuple.icmp_id = 17146;
    e.tuple.icmp_seq = 1;
    e.tuple.ttl = 64;
    e.tuple.ip_id = 555;
    e
}

#[test]
fn icmp_echo_request_decodes_exactly() {
    let ev = decode(event_bytes(&raw_icmp())).unwrap();
    assert_eq!(ev.hook, Hook::NetDevQueue);
    assert_eq!(ev.packet.0, 42);
    assert!(ev.new_packet);
    let d = ev.device.unwrap();
    assert_eq!(
        (d.netns.0, d.ifindex.0, d.ifname.as_str(), d.netns_cookie),
        (4026532258, 2, "eth0", 77)
    );
    let t = ev.task.unwrap();
    assert_eq!((t.pid, t.tid, t.comm.as_str()), (1000, 1001, "ping"));
    let h = ev.headers.unwrap();
    assert_eq!(
        h.l3,
        L3::Ipv4 {
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 3)
        }
    );
    assert_eq!(
        h.l4,
        L4::Icmp {
            v6: false,
            kind: 8,
            code: 0,
            id: 17146,
            seq: 1
        }
    );
    assert_eq!((h.ttl, h.ip_id, h.from_l2, h.vlan), (64, 555, true, None));
    assert_eq!(ev.sk_cgroup, 9);
}

#[test]
fn tcp_udp_ipv6_arp_and_vlan() {
    let mut e = raw_icmp();
    e.tuple.l4_proto = 6;
    e.tuple.sport = 40000;
    e.tuple.dport = 80;
    e.tuple.tcp_flags = 0x12;
    e.tuple.tcp_seq = 7;
    e.tuple.tcp_ack = 8;
    e.tuple.vlan_tci = 0x2000 | 100; // priority 1, VLAN 100
    e.tuple.tflags = 1; // HS_T_VLAN
    let h = decode(event_bytes(&e)).unwrap().headers.unwrap();
    match h.l4 {
        L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
        } => {
            assert_eq!((sport, dport, seq, ack), (40000, 80, 7, 8));
            assert_eq!(flags.to_string(), "S.");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.vlan, Some(100));

    e.tuple.l4_proto = 17;
    e.tuple.l4_len = 12;
    assert_eq!(
        decode(event_bytes(&e)).unwrap().headers.unwrap().l4,
        L4::Udp {
            sport: 40000,
            dport: 80,
            len: 12
        }
    );

    let mut v6 = raw_icmp();
    v6.tuple.l3 = 2;
    v6.tuple.saddr = "2001:2::2".parse::<Ipv6Addr>().unwrap().octets();
    v6.tuple.daddr = "2001:2::3".parse::<Ipv6Addr>().unwrap().octets();
    v6.tuple.l4_proto = 58;
    v6.tuple.icmp_type = 128;
    let h = decode(event_bytes(&v6)).unwrap().headers.unwrap();
    assert_eq!(h.l3.src().unwrap().to_string(), "2001:2::2");
    assert!(matches!(
        h.l4,
        L4::Icmp {
            v6: true,
            kind: 128,
            ..
        }
    ));

    let mut arp = raw_icmp();
    arp.tuple.l3 = 3;
    arp.tuple.arp_op = 1;
    let h = decode(event_bytes(&arp)).unwrap().headers.unwrap();
    assert_eq!(
        h.l3,
        L3::Arp {
            op: 1,
            sender: Ipv4Addr::new(198, 18, 0, 2),
            target: Ipv4Addr::new(198, 18, 0, 3)
        }
    );
    assert_eq!(h.l4, L4::None);
}

#[test]
fn end_and_xmit_events_have_no_headers_or_device() {
    let mut e = RawEvent {
        abi_version: ABI_VERSION,
        hook: 8,
        packet_id: 5,
        ..RawEvent::default()
    };
    e.drop_reason = 3;
    e.location = 0xffff_ffff_8100_0000;
    let ev = decode(event_bytes(&e)).unwrap();
    assert_eq!(ev.hook, Hook::KfreeSkb);
    assert!(ev.device.is_none() && ev.headers.is_none() && ev.task.is_none());
    assert_eq!(
        ev.data,
        HookData::Freed {
            reason: 3,
            location: 0xffff_ffff_8100_0000,
            stack: 0
        }
    );
}

#[test]
fn bad_records_are_errors_not_panics() {
    let good = raw_icmp();
    let bytes = event_bytes(&good);
    assert_eq!(
        decode(&bytes[..100]),
        Err(DecodeError::Short {
            got: 100,
            want: EVENT_SIZE
        })
    );
    assert_eq!(
        decode(&[]),
        Err(DecodeError::Short {
            got: 0,
            want: EVENT_SIZE
        })
    );
    let mut e = good;
    e.abi_version = 9;
    assert_eq!(
        decode(event_bytes(&e)),
        Err(DecodeError::AbiVersion {
            got: 9,
            want: ABI_VERSION
        })
    );
    let mut e = good;
    e.hook = 0;
    assert_eq!(decode(event_bytes(&e)), Err(DecodeError::Hook(0)));
    let mut e = good;
    e.hook = 200;
    assert_eq!(decode(event_bytes(&e)), Err(DecodeError::Hook(200)));
    let mut e = good;
    e.tuple.l3 = 77;
    assert_eq!(decode(event_bytes(&e)), Err(DecodeError::L3(77)));
    let mut e = good;
    e.packet_id = 0;
    assert_eq!(decode(event_bytes(&e)), Err(DecodeError::NoPacket));
}

#[test]
fn arbitrary_bytes_decode_to_events_that_encode_back_or_to_errors() {
    // xorshift: deterministic garbage, with a valid version/hook half the
    // time. Each record goes through the fuzz target's body: an event that
    // decodes must encode back to itself and print without a control
    // character; an error must say why.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; EVENT_SIZE + 8];
    let (mut events, mut short, mut other) = (0, 0, 0);
    for i in 0..20_000 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if i % 2 == 0 {
            buf[0] = ABI_VERSION as u8;
            buf[1] = 0;
            buf[2] = (i % 9) as u8;
        }
        let len = i % (EVENT_SIZE + 8);
        for bytes in [&buf[..len], &buf[..]] {
            hopscope::fuzzing::decode(bytes);
            match decode(bytes) {
                Ok(_) => events += 1,
                Err(DecodeError::Short { got, want }) => {
                    assert_eq!((got, want), (bytes.len(), EVENT_SIZE));
                    short += 1;
                }
                Err(_) => other += 1,
            }
        }
    }
    // Short records are exactly those under the record size.
    assert_eq!(
        short,
        (0..20_000)
            .filter(|i| i % (EVENT_SIZE + 8) < EVENT_SIZE)
            .count()
    );
    assert!(
        events > 1000 && other > 1000,
        "{events} events, {other} errors"
    );
}

#[test]
fn names_are_cut_at_nul_and_never_invalid_utf8() {
    let mut e = raw_icmp();
    e.ifname = *b"veth\xff\xfeab\0junkjun";
    let ev = decode(event_bytes(&e)).unwrap();
    assert_eq!(ev.device.unwrap().ifname.as_str(), "veth");
    e.ifname = *b"0123456789abcdef";
    assert_eq!(
        decode(event_bytes(&e))
            .unwrap()
            .device
            .unwrap()
            .ifname
            .as_str(),
        "0123456789abcdef"
    );
}

#[test]
fn tunnels_links_fragments_and_priority_tags() {
    // An underlay hop of a VXLAN packet: the tuple is the inner packet.
    let mut e = raw_icmp();
    e.flags |= 1 << 5; // HS_F_OUTER
    e.outer.l3 = 1;
    e.outer.saddr[..4].copy_from_slice(&[198, 19, 0, 1]);
    e.outer.daddr[..4].copy_from_slice(&[198, 19, 0, 2]);
    e.outer.proto = 17;
    e.outer.sport = 40000;
    e.outer.dport = 4789;
    e.outer.vni = 42;
    e.outer.kind = 1; // HS_TUNNEL_VXLAN
    let ev = decode(event_bytes(&e)).unwrap();
    let o = ev.outer.unwrap();
    assert_eq!(o.kind, Tunnel::Vxlan);
    assert_eq!(
        (o.src.to_string(), o.dst.to_string()),
        ("198.19.0.1".into(), "198.19.0.2".into())
    );
    assert_eq!((o.proto, o.sport, o.dport, o.vni), (17, 40000, 4789, 42));
    assert!(matches!(ev.headers.unwrap().l4, L4::Icmp { id: 17146, .. }));
    e.outer.kind = 9;
    assert_eq!(decode(event_bytes(&e)), Err(DecodeError::Tunnel(9)));

    // Links: a branch, a clone, a segment, a GSO packet's end.
    let mut e = raw_icmp();
    e.related = 77;
    e.flags |= 1 << 7; // HS_F_BRANCH
    assert_eq!(
        decode(event_bytes(&e)).unwrap().link,
        Some(Link::Branch(PacketId(77)))
    );
    e.flags = (e.flags & !(1 << 7)) | 1 << 6; // HS_F_CLONE
    assert_eq!(
        decode(event_bytes(&e)).unwrap().link,
        Some(Link::CloneOf(PacketId(77)))
    );
    e.flags = (e.flags & !(1 << 6)) | 1 << 8; // HS_F_SEGMENT
    e.seg_index = 2;
    e.seg_count = 3;
    assert_eq!(
        decode(event_bytes(&e)).unwrap().link,
        Some(Link::SegmentOf {
            parent: PacketId(77),
            index: 2,
            count: 3
        })
    );
    e.flags = (e.flags & !(1 << 8)) | 1 << 9 | 1 << 10; // SEGMENTED, SHARED
    let ev = decode(event_bytes(&e)).unwrap();
    assert_eq!(ev.link, Some(Link::Segmented { count: 3 }));
    assert!(ev.shared);

    // A non-first fragment has no transport header; VID 0 is a priority tag.
    let mut e = raw_icmp();
    e.tuple.tflags = 2 | 1; // HS_T_FRAG | HS_T_VLAN
    e.tuple.vlan_tci = 5 << 13; // priority 5, VLAN 0
    let h = decode(event_bytes(&e)).unwrap().headers.unwrap();
    assert_eq!(h.l4, L4::Fragment { proto: 1 });
    assert_eq!(h.vlan, Some(0));
}

#[test]
fn first_abi_records_convert() {
    // The 192-byte layout of ABI version 1, as old recordings hold it.
    let mut b = [0u8; 192];
    b[0] = 1; // abi_version
    b[2] = 1; // net_dev_queue
    b[3] = 1 | 2; // tuple, new
    b[4] = 3; // cpu
    b[8..16].copy_from_slice(&555u64.to_le_bytes()); // ts
    b[16..24].copy_from_slice(&9u64.to_le_bytes()); // packet
    b[56..60].copy_from_slice(&4026532258u32.to_le_bytes()); // netns
    b[60..64].copy_from_slice(&2u32.to_le_bytes()); // ifindex
    b[64..68].copy_from_slice(&98u32.to_le_bytes()); // len
    b[88..92].copy_from_slice(b"eth0");
    let t = 120;
    b[t..t + 4].copy_from_slice(&[198, 18, 0, 2]);
    b[t + 16..t + 20].copy_from_slice(&[198, 18, 0, 3]);
    b[t + 34..t + 36].copy_from_slice(&100u16.to_le_bytes()); // vlan_id
    b[t + 36] = 1; // IPv4
    b[t + 37] = 17; // UDP
    b[t + 40..t + 42].copy_from_slice(&5000u16.to_le_bytes());
    b[t + 42..t + 44].copy_from_slice(&53u16.to_le_bytes());
    b[t + 64..t + 66].copy_from_slice(&20u16.to_le_bytes()); // l4_len
    let ev = decode_v1(&b).unwrap();
    assert_eq!(
        (ev.hook, ev.packet.0, ev.ts_ns, ev.cpu, ev.len),
        (Hook::NetDevQueue, 9, 555, 3, 98)
    );
    assert!(ev.new_packet);
    let d = ev.device.unwrap();
    assert_eq!(
        (d.netns.0, d.ifindex.0, d.ifname.as_str()),
        (4026532258, 2, "eth0")
    );
    let h = ev.headers.unwrap();
    assert_eq!(
        h.l4,
        L4::Udp {
            sport: 5000,
            dport: 53,
            len: 20
        }
    );
    assert_eq!(h.vlan, Some(100));
    b[0] = 2;
    assert!(matches!(
        decode_v1(&b),
        Err(DecodeError::AbiVersion { got: 2, .. })
    ));
    assert!(matches!(
        decode_v1(&b[..100]),
        Err(DecodeError::Short { .. })
    ));
}

mod stream {
    //! The ring's record stream: compact hops take the headers and device
    //! names the full records and device records gave.

    use super::raw_icmp;
    use hopscope::bpf::abi::{
        dev_bytes, end_bytes, event_bytes, hop_bytes, snap_bytes, sock_bytes, RawDev, RawEnd,
        RawHop, RawSnap, RawSock, REC_DEV, REC_END, REC_HOP, REC_SNAP, REC_SOCK, SNAP_ETHER,
    };
    use hopscope::event::decode::{wire_code, DecodeError};
    use hopscope::event::snapshot::{Framing, Snapshot};
    use hopscope::event::stream::{StreamDecoder, CARRIED_PACKETS};
    use hopscope::event::{Hook, HookData, Link, PacketId, L4};

    fn hop(packet: u64, hook: Hook, netns: u32, ifindex: u32) -> RawHop {
        RawHop {
            kind: REC_HOP,
            hook: wire_code(hook),
            cpu: 1,
            ts_ns: 200,
            packet_id: packet,
            skb_addr: 0xffff_8880_0000_1000,
            netns_ino: netns,
            ifindex,
            len: 84,
            xmit_rc: 0,
            ..RawHop::default()
        }
    }

    fn dev(netns: u32, ifindex: u32, name: &str) -> RawDev {
        let mut d = RawDev {
            kind: REC_DEV,
            netns_ino: netns,
            netns_cookie: 5,
            ifindex,
            ..RawDev::default()
        };
        d.ifname[..name.len()].copy_from_slice(name.as_bytes());
        d
    }

    #[test]
    fn a_compact_hop_carries_the_packets_headers_and_its_devices_name() {
        let mut s = StreamDecoder::new();
        let first = s.decode(event_bytes(&raw_icmp())).unwrap().unwrap();
        assert!(s
            .decode(dev_bytes(&dev(4026532001, 3, "vc1")))
            .unwrap()
            .is_none());
        let mut h = hop(42, Hook::NetifRx, 4026532001, 3);
        h.xmit_rc = -1;
        let ev = s.decode(hop_bytes(&h)).unwrap().unwrap();
        assert_eq!(
            (ev.hook, ev.packet, ev.len, ev.ts_ns, ev.cpu),
            (Hook::NetifRx, PacketId(42), 84, 200, 1)
        );
        assert_eq!(ev.headers, first.headers);
        assert_eq!(ev.outer, None);
        assert!(!ev.new_packet && ev.task.is_none() && ev.link.is_none());
        // Only net_dev_xmit reports a driver's return code.
        assert_eq!(ev.data, HookData::None);
        let mut x = hop(42, Hook::NetDevXmit, 4026532001, 3);
        x.xmit_rc = -1;
        let xmit = s.decode(hop_bytes(&x)).unwrap().unwrap();
        assert_eq!(xmit.data, HookData::Xmit { rc: -1 });
        let d = ev.device.unwrap();
        assert_eq!(
            (d.netns.0, d.ifindex.0, d.ifname.as_str(), d.netns_cookie),
            (4026532001, 3, "vc1", 5)
        );
        // The full record's own device is named by it.
        let ev = s
            .decode(hop_bytes(&hop(42, Hook::NetDevXmit, 4026532258, 2)))
            .unwrap()
            .unwrap();
        assert_eq!(ev.device.unwrap().ifname.as_str(), "eth0");
    }

    #[test]
    fn headers_change_with_the_next_full_record_and_end_with_the_packet() {
        let mut s = StreamDecoder::new();
        s.decode(event_bytes(&raw_icmp())).unwrap();
        let mut nat = raw_icmp();
        nat.flags = 1; // headers only: not new, no task
        nat.hook = wire_code(Hook::NetifReceiveSkb);
        nat.tuple.daddr[..4].copy_from_slice(&[198, 18, 9, 9]);
        let rewritten = s.decode(event_bytes(&nat)).unwrap().unwrap().headers;
        let ev = s
            .decode(hop_bytes(&hop(42, Hook::NetDevQueue, 1, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(ev.headers, rewritten);
        // An unnamed device stays unnamed; it is not guessed.
        assert_eq!(ev.device.unwrap().ifname.as_str(), "");
        let mut end = raw_icmp();
        end.flags = 0;
        end.hook = wire_code(Hook::ConsumeSkb);
        s.decode(event_bytes(&end)).unwrap();
        let ev = s
            .decode(hop_bytes(&hop(42, Hook::NetDevXmit, 1, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(ev.headers, None);
    }

    #[test]
    fn a_branch_takes_the_headers_and_a_slot_goes_to_the_younger_packet() {
        let mut s = StreamDecoder::new();
        let mut e = raw_icmp();
        e.flags |= 1 << 7; // HS_F_BRANCH
        e.related = 43;
        let ev = s.decode(event_bytes(&e)).unwrap().unwrap();
        assert_eq!(ev.link, Some(Link::Branch(PacketId(43))));
        let b = s
            .decode(hop_bytes(&hop(43, Hook::NetifReceiveSkb, 1, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(b.headers, ev.headers);
        // A packet CARRIED_PACKETS ids younger takes 42's slot.
        let mut young = raw_icmp();
        young.packet_id = 42 + CARRIED_PACKETS as u64;
        young.tuple.l4_proto = 17;
        s.decode(event_bytes(&young)).unwrap();
        let old = s
            .decode(hop_bytes(&hop(42, Hook::NetifRx, 1, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(old.headers, None);
        let y = s
            .decode(hop_bytes(&hop(young.packet_id, Hook::NetifRx, 1, 1)))
            .unwrap()
            .unwrap();
        assert!(matches!(y.headers.unwrap().l4, L4::Udp { .. }));
    }

    fn sock(packet: u64, hook: Hook, netns: u32, ifindex: u32) -> RawSock {
        RawSock {
            kind: REC_SOCK,
            hook: wire_code(hook),
            cpu: 1,
            ts_ns: 300,
            packet_id: packet,
            skb_addr: 0xffff_8880_0000_2000,
            netns_cookie: 9,
            netns_ino: netns,
            ifindex,
            len: 1500,
            ..RawSock::default()
        }
    }

    fn end(packet: u64, hook: Hook, netns: u32, ifindex: u32) -> RawEnd {
        RawEnd {
            kind: REC_END,
            hook: wire_code(hook),
            cpu: 0,
            ts_ns: 400,
            packet_id: packet,
            skb_addr: 0xffff_8880_0000_3000,
            netns_ino: netns,
            ifindex,
            ..RawEnd::default()
        }
    }

    /// A snapshot record: its header, then `room` bytes of which `data` are
    /// the packet's.
    fn snap_record(packet: u64, flags: u16, data: &[u8], orig_len: u32, room: usize) -> Vec<u8> {
        let r = RawSnap {
            kind: REC_SNAP,
            flags,
            caplen: data.len() as u16,
            orig_len,
            ts_ns: 500,
            packet_id: packet,
            ..RawSnap::default()
        };
        let mut b = snap_bytes(&r).to_vec();
        b.extend_from_slice(data);
        b.resize(32 + room, 0xee);
        b
    }

    #[test]
    fn snapshots_are_kept_aside_with_their_bytes_and_framing() {
        let mut s = StreamDecoder::new();
        let frame: Vec<u8> = (0..98).collect();
        // A record with room for 128 bytes, 98 of them the frame's.
        assert!(s
            .decode(&snap_record(42, SNAP_ETHER, &frame, 98, 128))
            .unwrap()
            .is_none());
        assert!(s
            .decode(&snap_record(43, 0, &frame[14..], 1500, 128))
            .unwrap()
            .is_none());
        let mut got = Vec::new();
        s.take_snapshots(&mut got);
        assert_eq!(
            got,
            vec![
                Snapshot {
                    packet: PacketId(42),
                    ts_ns: 500,
                    framing: Framing::Ethernet,
                    orig_len: 98,
                    bytes: frame.clone(),
                },
                Snapshot {
                    packet: PacketId(43),
                    ts_ns: 500,
                    framing: Framing::RawIp,
                    orig_len: 1500,
                    bytes: frame[14..].to_vec(),
                }
            ]
        );
        s.take_snapshots(&mut got);
        assert_eq!(got.len(), 2, "taken once");
        // More bytes than the record holds, packet 0, a short header: errors.
        let mut bad = snap_record(44, 0, &frame, 98, 128);
        bad[4..6].copy_from_slice(&200u16.to_le_bytes());
        assert!(matches!(
            s.decode(&bad),
            Err(DecodeError::SnapshotLength {
                caplen: 200,
                room: 128
            })
        ));
        assert!(matches!(
            s.decode(&snap_record(0, 0, &frame, 98, 128)),
            Err(DecodeError::NoPacket)
        ));
        assert!(matches!(
            s.decode(&snap_record(44, 0, &[], 0, 0)[..20]),
            Err(DecodeError::Short { got: 20, want: 32 })
        ));
    }

    #[test]
    fn socket_records_name_their_device_task_clone_and_tcp_report() {
        let mut s = StreamDecoder::new();
        s.decode(event_bytes(&raw_icmp())).unwrap();
        s.decode(dev_bytes(&dev(4026532001, 3, "eth0"))).unwrap();
        // tcp_probe on a device: its name from the stream, the payload typed.
        let mut r = sock(42, Hook::TcpRcv, 4026532001, 3);
        r.aux = 1448;
        let ev = s.decode(sock_bytes(&r)).unwrap().unwrap();
        assert_eq!(
            (ev.hook, ev.packet, ev.len, ev.ts_ns, ev.cpu, ev.skb),
            (
                Hook::TcpRcv,
                PacketId(42),
                1500,
                300,
                1,
                0xffff_8880_0000_2000
            )
        );
        let d = ev.device.unwrap();
        assert_eq!(
            (d.netns.0, d.ifindex.0, d.ifname.as_str(), d.netns_cookie),
            (4026532001, 3, "eth0", 9)
        );
        assert_eq!(ev.data, HookData::TcpSegment { payload: 1448 });
        assert!(ev.headers.is_none() && ev.task.is_none() && ev.link.is_none());
        // A read by a task, in the socket's namespace (no device).
        let mut r = sock(42, Hook::SkbCopyDatagram, 4026532002, 0);
        r.flags = 1 << 2; // HS_F_TASK
        r.pid = 77;
        r.tid = 78;
        r.comm[..4].copy_from_slice(b"ping");
        let ev = s.decode(sock_bytes(&r)).unwrap().unwrap();
        let t = ev.task.unwrap();
        assert_eq!((t.pid, t.tid, t.comm.as_str()), (77, 78, "ping"));
        let d = ev.device.unwrap();
        assert_eq!(
            (d.netns.0, d.ifindex.0, d.ifname.as_str(), d.netns_cookie),
            (4026532002, 0, "", 9)
        );
        assert_eq!(ev.data, HookData::None);
        // A raw socket's clone names the packet it copies.
        let mut r = sock(42, Hook::SockQueue, 4026532002, 0);
        r.flags = 1 << 6; // HS_F_CLONE
        let ev = s.decode(sock_bytes(&r)).unwrap().unwrap();
        assert_eq!(ev.link, Some(Link::CloneOf(PacketId(42))));
        // inet_sock_set_state: old << 8 | new | payload << 16.
        let mut r = sock(42, Hook::TcpState, 4026532002, 0);
        r.aux = 2 << 8 | 1 | 100 << 16;
        let ev = s.decode(sock_bytes(&r)).unwrap().unwrap();
        assert_eq!(
            ev.data,
            HookData::TcpState {
                old: 2,
                new: 1,
                payload: 100
            }
        );
    }

    #[test]
    fn end_records_say_how_and_where_and_forget_the_headers() {
        let mut s = StreamDecoder::new();
        s.decode(event_bytes(&raw_icmp())).unwrap();
        s.decode(dev_bytes(&dev(4026532001, 3, "vc1"))).unwrap();
        let mut r = end(42, Hook::KfreeSkb, 4026532001, 3);
        r.drop_reason = 6;
        r.location = 0xffff_ffff_8123_0000;
        r.stack = 5;
        r.flags = 1 << 10; // HS_F_SHARED
        let ev = s.decode(end_bytes(&r)).unwrap().unwrap();
        assert_eq!(
            ev.data,
            HookData::Freed {
                reason: 6,
                location: 0xffff_ffff_8123_0000,
                stack: 5
            }
        );
        assert!(ev.shared && ev.headers.is_none() && ev.link.is_none());
        let d = ev.device.unwrap();
        assert_eq!((d.ifname.as_str(), d.netns_cookie), ("vc1", 5));
        // The packet ended: a later hop of its id gets no headers.
        let later = s
            .decode(hop_bytes(&hop(42, Hook::NetifRx, 1, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(later.headers, None);
        // A GSO packet consumed once cut into segments; no device.
        let mut r = end(50, Hook::ConsumeSkb, 0, 0);
        r.flags = 1 << 9; // HS_F_SEGMENTED
        r.seg_count = 3;
        r.location = 0xffff_ffff_8100_0042;
        let ev = s.decode(end_bytes(&r)).unwrap().unwrap();
        assert_eq!(ev.link, Some(Link::Segmented { count: 3 }));
        assert_eq!(
            ev.data,
            HookData::Consumed {
                location: 0xffff_ffff_8100_0042
            }
        );
        assert_eq!(ev.device, None);
    }

    #[test]
    fn typed_records_of_the_wrong_hook_or_size_are_errors() {
        let mut s = StreamDecoder::new();
        let r = sock(7, Hook::NetifRx, 1, 1);
        assert_eq!(
            s.decode(sock_bytes(&r)).unwrap_err(),
            DecodeError::Hook(wire_code(Hook::NetifRx))
        );
        let e = end(7, Hook::TcpRcv, 1, 1);
        assert_eq!(
            s.decode(end_bytes(&e)).unwrap_err(),
            DecodeError::Hook(wire_code(Hook::TcpRcv))
        );
        assert_eq!(
            s.decode(&sock_bytes(&sock(7, Hook::TcpRcv, 1, 1))[..79])
                .unwrap_err(),
            DecodeError::Short { got: 79, want: 80 }
        );
        assert_eq!(
            s.decode(end_bytes(&end(0, Hook::ConsumeSkb, 1, 1)))
                .unwrap_err(),
            DecodeError::NoPacket
        );
    }

    #[test]
    fn bad_compact_records_are_errors_not_panics() {
        let mut s = StreamDecoder::new();
        let h = hop(7, Hook::NetifRx, 1, 1);
        assert_eq!(
            s.decode(&hop_bytes(&h)[..20]).unwrap_err(),
            DecodeError::Short { got: 20, want: 48 }
        );
        assert_eq!(
            s.decode(&dev_bytes(&dev(1, 1, "x"))[..9]).unwrap_err(),
            DecodeError::Short { got: 9, want: 40 }
        );
        let mut bad = h;
        bad.hook = 200;
        assert_eq!(
            s.decode(hop_bytes(&bad)).unwrap_err(),
            DecodeError::Hook(200)
        );
        assert_eq!(
            s.decode(hop_bytes(&hop(0, Hook::NetifRx, 1, 1)))
                .unwrap_err(),
            DecodeError::NoPacket
        );
        assert!(s.decode(&[]).is_err());
        assert!(s.decode(&[1]).is_err());
    }
}

/// Every typed report survives the kernel's record: what a hook's fields
/// mean is decided in the decoder alone.
#[test]
fn every_hook_report_round_trips_through_the_kernel_record() {
    use hopscope::event::encode::encode_raw;
    use hopscope::event::RouteResult;
    let base = decode(event_bytes(&raw_icmp())).unwrap();
    let cases = [
        (Hook::NetDevXmit, HookData::Xmit { rc: -105 }),
        (Hook::TcpRcv, HookData::TcpSegment { payload: 1448 }),
        (
            Hook::TcpState,
            HookData::TcpState {
                old: 2,
                new: 1,
                payload: 65_535,
            },
        ),
        (
            Hook::ConsumeSkb,
            HookData::Consumed {
                location: 0xffff_ffff_8100_0042,
            },
        ),
        (
            Hook::KfreeSkb,
            HookData::Freed {
                reason: 6,
                location: 0xffff_ffff_8123_0000,
                stack: 9,
            },
        ),
        (Hook::IcmpSend, HookData::IcmpError { kind: 3, code: 4 }),
        (
            Hook::FibLookup,
            HookData::Route {
                table: 254,
                result: RouteResult::Found,
                gw: Some("198.18.0.1".parse().unwrap()),
            },
        ),
        (
            Hook::FibLookup,
            HookData::Route {
                table: 100,
                result: RouteResult::NotInTable,
                gw: None,
            },
        ),
        (
            Hook::FibLookup,
            HookData::Route {
                table: 255,
                result: RouteResult::Error(-101),
                gw: None,
            },
        ),
        (
            Hook::Neigh,
            HookData::Neigh {
                old: 0x01,
                new: 0x02,
            },
        ),
        (Hook::NetifRx, HookData::None),
    ];
    for (hook, data) in cases {
        let ev = HopEvent { hook, data, ..base };
        assert_eq!(decode(event_bytes(&encode_raw(&ev))), Ok(ev), "{hook}");
    }
}
