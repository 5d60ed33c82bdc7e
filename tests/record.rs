//! Encoder and recording tests: encode is the exact inverse of decode, and
//! recordings replay exactly what was recorded, or fail with a precise error
//! (never a panic) on anything else. Recordings are written in format 2
//! (postcard frames of domain types); format 1 (kernel ABI records) is still
//! read, converted to the same frames.

use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hopscope::bpf::abi::{event_bytes, RawEvent, EVENT_SIZE};
use hopscope::event::decode::{decode, decode_raw, DecodeError};
use hopscope::event::encode::encode_raw;
use hopscope::event::record::{
    Frame, RecordError, Recorder, RecordingInfo, Replay, Tick, FORMAT_VERSION, MAGIC,
};
use hopscope::event::snapshot::{Framing, Snapshot};
use hopscope::event::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, Link, NetnsId, PacketId, RouteResult,
    ShortName, Task, TcpFlags, L3, L4,
};
use hopscope::topology::links::{LinkInfo, LinkKind, LinkRef};

// ---------------------------------------------------------------- fixtures

fn device(netns: u32, ifindex: u32, name: &str) -> Device {
    Device {
        netns: NetnsId(netns),
        netns_cookie: u64::from(netns) * 3,
        ifindex: IfIndex(ifindex),
        ifname: ShortName::from_bytes(name.as_bytes()),
    }
}

fn task(pid: u32, comm: &str) -> Task {
    Task {
        pid,
        tid: pid + 1,
        comm: ShortName::from_bytes(comm.as_bytes()),
    }
}

fn headers(l3: L3, l4: L4) -> Headers {
    Headers {
        l3,
        l4,
        vlan: None,
        ttl: 64,
        ip_id: 0,
        flow_label: 0,
        from_l2: true,
    }
}

fn v4(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("test address")
}

fn event(hook: Hook, packet: u64) -> HopEvent {
    HopEvent {
        ts_ns: packet.wrapping_mul(17).wrapping_add(1_000_000),
        cpu: 3,
        hook,
        packet: PacketId(packet),
        skb: packet
            .wrapping_mul(0x100)
            .wrapping_add(0xffff_8880_1234_0000),
        device: Some(device(4026531840, 1, "lo")),
        len: 84,
        headers: None,
        new_packet: false,
        task: None,
        sk_cgroup: 0,
        data: zero_data(hook),
        outer: None,
        link: None,
        shared: false,
    }
}

/// What a hook reports, all zero (as the kernel sends it for such a hook).
fn zero_data(hook: Hook) -> HookData {
    match hook {
        Hook::NetDevXmit => HookData::Xmit { rc: 0 },
        Hook::TcpRcv => HookData::TcpSegment { payload: 0 },
        Hook::TcpState => HookData::TcpState {
            old: 0,
            new: 0,
            payload: 0,
        },
        Hook::ConsumeSkb => HookData::Consumed { location: 0 },
        Hook::KfreeSkb => HookData::Freed {
            reason: 0,
            location: 0,
            stack: 0,
        },
        Hook::IcmpSend => HookData::IcmpError { kind: 0, code: 0 },
        Hook::FibLookup => HookData::Route {
            table: 0,
            result: RouteResult::Found,
            gw: None,
        },
        Hook::Neigh => HookData::Neigh { old: 0, new: 0 },
        _ => HookData::None,
    }
}

/// A varied set of events, covering every branch of the decoder.
fn varied_events() -> Vec<HopEvent> {
    let mut out = Vec::new();

    // ICMP echo request over IPv4, first sighting, sent by `ping`.
    let mut e = event(Hook::NetDevQueue, 1);
    e.device = Some(device(4026532258, 2, "eth0"));
    e.new_packet = true;
    e.task = Some(task(1000, "ping"));
    e.sk_cgroup = 9;
    e.headers = Some(Headers {
        ip_id: 555,
        ..headers(
            L3::Ipv4 {
                src: v4([198, 18, 0, 2]),
                dst: v4([198, 18, 0, 3]),
            },
            L4::Icmp {
                v6: false,
                kind: 8,
                code: 0,
                id: 17146,
                seq: 1,
            },
        )
    });
    out.push(e);

    // ICMPv6 echo reply on a VLAN, with a flow label, no task.
    let mut e = event(Hook::NetifReceiveSkb, 2);
    e.device = Some(device(4026532300, 7, "veth-b"));
    e.headers = Some(Headers {
        vlan: Some(100),
        ttl: 255,
        flow_label: 0xabcde,
        ..headers(
            L3::Ipv6 {
                src: v6("2001:2::3"),
                dst: v6("2001:2::2"),
            },
            L4::Icmp {
                v6: true,
                kind: 129,
                code: 0,
                id: 4242,
                seq: 65535,
            },
        )
    });
    out.push(e);

    // TCP SYN-ACK, headers read from raw IP (no Ethernet).
    let mut e = event(Hook::NetifRx, 3);
    e.headers = Some(Headers {
        from_l2: false,
        ..headers(
            L3::Ipv4 {
                src: v4([10, 0, 0, 1]),
                dst: v4([10, 0, 0, 2]),
            },
            L4::Tcp {
                sport: 80,
                dport: 40000,
                seq: 0xdead_beef,
                ack: 0x0102_0304,
                flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            },
        )
    });
    out.push(e);

    // TCP over IPv6 with every flag bit, delivered into a socket.
    let mut e = event(Hook::SkbCopyDatagram, 4);
    e.task = Some(task(2000, "curl"));
    e.headers = Some(headers(
        L3::Ipv6 {
            src: v6("fd00::1"),
            dst: v6("fd00::2"),
        },
        L4::Tcp {
            sport: 443,
            dport: 51000,
            seq: 1,
            ack: u32::MAX,
            flags: TcpFlags(0xff),
        },
    ));
    out.push(e);

    // UDP through NAPI/GRO.
    let mut e = event(Hook::NapiGroReceive, 5);
    e.device = Some(device(4026531840, 3, "0123456789abcdef"));
    e.headers = Some(headers(
        L3::Ipv4 {
            src: v4([192, 0, 2, 1]),
            dst: v4([192, 0, 2, 255]),
        },
        L4::Udp {
            sport: 5353,
            dport: 5353,
            len: 120,
        },
    ));
    out.push(e);

    // ARP request and reply.
    for (packet, op) in [(6, 1), (7, 2)] {
        let mut e = event(Hook::NetifReceiveSkb, packet);
        e.headers = Some(headers(
            L3::Arp {
                op,
                sender: v4([198, 18, 0, 1]),
                target: v4([198, 18, 0, 9]),
            },
            L4::None,
        ));
        out.push(e);
    }

    // An ethertype that is not parsed (LLDP).
    let mut e = event(Hook::NetifReceiveSkb, 8);
    e.headers = Some(Headers {
        ttl: 0,
        ..headers(L3::Other { ethertype: 0x88cc }, L4::None)
    });
    out.push(e);

    // Another IP protocol (GRE), and protocol 0.
    for (packet, proto) in [(9, 47), (10, 0)] {
        let mut e = event(Hook::NetDevQueue, packet);
        e.headers = Some(headers(
            L3::Ipv4 {
                src: v4([10, 1, 1, 1]),
                dst: v4([10, 1, 1, 2]),
            },
            L4::Other { proto },
        ));
        out.push(e);
    }

    // No headers at all.
    let mut e = event(Hook::NetifRx, 11);
    e.new_packet = true;
    out.push(e);

    // A device known by ifindex only.
    let mut e = event(Hook::NetifRx, 12);
    e.device = Some(Device {
        netns: NetnsId(0),
        netns_cookie: 0,
        ifindex: IfIndex(5),
        ifname: ShortName::default(),
    });
    out.push(e);

    // Driver refused the packet.
    let mut e = event(Hook::NetDevXmit, 13);
    e.data = HookData::Xmit { rc: -16 };
    e.task = Some(task(3000, "iperf3"));
    out.push(e);

    // Dropped with a reason, with and without headers.
    let mut e = event(Hook::KfreeSkb, 14);
    e.device = None;
    e.data = HookData::Freed {
        reason: 2,
        location: 0xffff_ffff_8100_1234,
        stack: 0,
    };
    out.push(e);
    let mut e = event(Hook::KfreeSkb, 15);
    e.device = None;
    e.data = HookData::Freed {
        reason: u32::MAX,
        location: u64::MAX,
        stack: u32::MAX,
    };
    e.headers = Some(headers(
        L3::Ipv4 {
            src: v4([1, 2, 3, 4]),
            dst: v4([5, 6, 7, 8]),
        },
        L4::Udp {
            sport: 1,
            dport: 2,
            len: 8,
        },
    ));
    out.push(e);

    // Normal end of life: no device.
    let mut e = event(Hook::ConsumeSkb, 16);
    e.device = None;
    e.task = Some(task(1, "systemd"));
    out.push(e);

    // Extremes of the plain numbers.
    let mut e = event(Hook::NetDevXmit, u64::MAX);
    e.ts_ns = u64::MAX;
    e.cpu = u32::MAX;
    e.skb = u64::MAX;
    e.len = u32::MAX;
    e.sk_cgroup = u64::MAX;
    e.data = HookData::Xmit { rc: i32::MIN };
    out.push(e);

    out
}

fn info() -> RecordingInfo {
    RecordingInfo {
        started_realtime_ns: 1_763_000_000_123_456_789,
        started_monotonic_ns: 987_654_321,
        hostname: "h1".to_string(),
        kernel: "6.8.0".to_string(),
    }
}

fn tick(n: u64) -> Tick {
    Tick {
        now_ns: 1_000_000_000 * n,
        emitted: 10 * n,
        lost: n,
        received: 9 * n,
        decode_errors: n / 2,
        channel_dropped: 3,
        reused: u64::MAX - n,
    }
}

fn link() -> LinkInfo {
    LinkInfo {
        netns: 4026532177,
        ifindex: 3,
        ifname: "vc1".to_owned(),
        kind: LinkKind::Veth,
        kind_name: Some("veth".to_owned()),
        master: Some(LinkRef {
            netns: 4026532177,
            ifindex: 2,
            ifname: "br0".to_owned(),
        }),
        peer: Some(LinkRef {
            netns: 4026532246,
            ifindex: 2,
            ifname: "eth0".to_owned(),
        }),
        parent: None,
        vlan_id: None,
        vxlan_id: None,
        mtu: Some(1500),
        up: true,
    }
}

/// One frame of every kind, with events of every branch and ticks between.
/// [`every_kind`] and the kinds added since format 1 (snapshots).
fn every_kind_v2() -> Vec<Frame> {
    let mut frames = every_kind();
    frames.insert(
        3,
        Frame::Snapshot(Snapshot {
            packet: PacketId(7),
            ts_ns: 1_000,
            framing: Framing::Ethernet,
            orig_len: 98,
            bytes: (0..64).collect(),
        }),
    );
    frames.push(Frame::Snapshot(Snapshot {
        packet: PacketId(u64::MAX),
        ts_ns: u64::MAX,
        framing: Framing::RawIp,
        orig_len: 0,
        bytes: Vec::new(),
    }));
    frames
}

fn every_kind() -> Vec<Frame> {
    let events = varied_events();
    let mut frames = vec![
        Frame::Scope {
            netns: vec![4026531840, 4026532258, u32::MAX],
            owner_cgroup: 12345,
            label: "3 namespaces, pods of web".to_owned(),
        },
        Frame::DropReasons(vec![
            (2, "NOT_SPECIFIED".to_owned()),
            (3, "NO_SOCKET".to_owned()),
            (u32::MAX, String::new()),
        ]),
        Frame::Link(link()),
        Frame::Tick(tick(0)),
    ];
    for (i, e) in events.iter().enumerate() {
        frames.push(Frame::Event(*e));
        if i % 4 == 3 {
            frames.push(Frame::Tick(tick(i as u64)));
        }
    }
    frames.extend([
        Frame::NetnsName {
            inode: 4026531840,
            name: "host".to_owned(),
        },
        Frame::NetnsName {
            inode: 7,
            name: String::new(),
        },
        Frame::Symbol {
            addr: 0xffff_ffff_8100_0000,
            name: "tcp_v4_rcv+0x1a2".to_owned(),
        },
        Frame::Link(LinkInfo {
            kind: LinkKind::Other,
            kind_name: None,
            master: None,
            peer: None,
            parent: Some(LinkRef {
                netns: 0,
                ifindex: 9,
                ifname: String::new(),
            }),
            vlan_id: Some(4094),
            vxlan_id: Some(u32::MAX),
            mtu: None,
            up: false,
            ..link()
        }),
        Frame::Tick(Tick::default()),
    ]);
    frames
}

/// A recording of `frames`, written through the public API (format 2).
fn recording(info: &RecordingInfo, frames: &[Frame]) -> Vec<u8> {
    let mut rec = Recorder::new(Vec::new(), info).expect("header");
    for f in frames {
        rec.frame(f).expect("frame");
    }
    assert_eq!(rec.frames(), frames.len() as u64);
    rec.finish().expect("finish")
}

/// A frame as format 2 documents it: kind, length, postcard payload.
fn frame_bytes<T: serde::Serialize + ?Sized>(kind: u8, value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).expect("postcard");
    let mut f = vec![kind];
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&payload);
    f
}

/// Header length of [`info`] in format 2: 42 fixed bytes plus the strings.
const HEADER_LEN: usize = 42 + 2 + 5;

// ------------------------------------------------- format 1, built by hand

/// A format-1 header of `info`: event ABI 2, 272-byte records.
fn v1_header(info: &RecordingInfo) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&(EVENT_SIZE as u32).to_le_bytes());
    b.extend_from_slice(&info.started_realtime_ns.to_le_bytes());
    b.extend_from_slice(&info.started_monotonic_ns.to_le_bytes());
    for s in [&info.hostname, &info.kernel] {
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    b
}

/// A format-1 frame, from the layout format 1 documents.
fn v1_frame(f: &Frame) -> Vec<u8> {
    let mut p = Vec::new();
    let kind = match f {
        Frame::Event(ev) => {
            p.extend_from_slice(event_bytes(&encode_raw(ev)));
            1
        }
        Frame::Tick(t) => {
            for v in [
                t.now_ns,
                t.emitted,
                t.lost,
                t.received,
                t.decode_errors,
                t.channel_dropped,
                t.reused,
            ] {
                p.extend_from_slice(&v.to_le_bytes());
            }
            2
        }
        Frame::NetnsName { inode, name } => {
            p.extend_from_slice(&inode.to_le_bytes());
            p.extend_from_slice(name.as_bytes());
            3
        }
        Frame::DropReasons(r) => {
            for (v, n) in r {
                p.extend_from_slice(&v.to_le_bytes());
                p.extend_from_slice(&(n.len() as u16).to_le_bytes());
                p.extend_from_slice(n.as_bytes());
            }
            4
        }
        Frame::Scope {
            netns,
            owner_cgroup,
            label,
        } => {
            p.extend_from_slice(&owner_cgroup.to_le_bytes());
            p.extend_from_slice(&(label.len() as u16).to_le_bytes());
            p.extend_from_slice(label.as_bytes());
            p.extend_from_slice(&(netns.len() as u32).to_le_bytes());
            for n in netns {
                p.extend_from_slice(&n.to_le_bytes());
            }
            5
        }
        Frame::Link(l) => {
            p = serde_json::to_vec(l).expect("json");
            6
        }
        Frame::Symbol { addr, name } => {
            p.extend_from_slice(&addr.to_le_bytes());
            p.extend_from_slice(name.as_bytes());
            7
        }
        Frame::Snapshot(_) => panic!("format 1 had no snapshot frames"),
    };
    let mut b = vec![kind];
    b.extend_from_slice(&(p.len() as u32).to_le_bytes());
    b.extend_from_slice(&p);
    b
}

/// A format-1 recording of `frames`.
fn v1_recording(info: &RecordingInfo, frames: &[Frame]) -> Vec<u8> {
    let mut b = v1_header(info);
    for f in frames {
        b.extend_from_slice(&v1_frame(f));
    }
    b
}

/// Format-1 header length of [`info`]: 48 fixed bytes plus the strings.
const V1_HEADER_LEN: usize = 48 + 2 + 5;

// ------------------------------------------------------------------ reading

/// Reads every frame; the error, if any, comes last.
fn read_all(bytes: &[u8]) -> Result<(Vec<Frame>, Option<RecordError>), RecordError> {
    let mut frames = Vec::new();
    let mut error = None;
    for f in Replay::new(bytes)? {
        match f {
            Ok(f) => frames.push(f),
            Err(e) => {
                assert!(error.is_none(), "the iterator goes on after an error");
                error = Some(e);
            }
        }
    }
    Ok((frames, error))
}

/// The one error reading `bytes` (a valid header, then frames) ends with.
fn frame_error(bytes: &[u8]) -> RecordError {
    let (_, error) = read_all(bytes).expect("header");
    error.expect("an error")
}

/// The `what` and offset of a corrupt-frame error, or a panic.
fn corrupt(e: RecordError) -> (u64, String) {
    match e {
        RecordError::Corrupt { offset, what } => (offset, what),
        other => panic!("not corrupt: {other:?}"),
    }
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

const NOT_A_RECORDING_HINT: &str = "(expected a file written by `hopscope --record`)";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every frame of the recording at `path`, with its header.
fn read_file(path: &Path) -> (u16, RecordingInfo, Vec<Frame>) {
    let replay = Replay::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (version, info) = (replay.format_version(), replay.info().clone());
    let frames = replay
        .map(|f| f.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect();
    (version, info, frames)
}

// ------------------------------------------------------------------ encode

#[test]
fn encode_is_the_inverse_of_decode() {
    for ev in varied_events() {
        let raw = encode_raw(&ev);
        assert_eq!(decode_raw(&raw), Ok(ev), "raw round trip of {ev:?}");
        assert_eq!(decode(event_bytes(&raw)), Ok(ev), "bytes round trip");
    }
}

#[test]
fn encode_covers_every_hook_and_flag_combination() {
    let base = varied_events()[0];
    for hook in Hook::all() {
        for bits in 0..16u8 {
            let mut ev = base;
            ev.hook = hook;
            ev.data = zero_data(hook);
            ev.new_packet = bits & 1 != 0;
            ev.task = (bits & 2 != 0).then(|| task(77, "nc"));
            ev.device = (bits & 4 != 0).then(|| device(1, 2, "br0"));
            ev.headers = (bits & 8 != 0).then(|| Headers {
                from_l2: bits & 1 == 0,
                ..headers(L3::Other { ethertype: 0x8847 }, L4::None)
            });
            assert_eq!(decode_raw(&encode_raw(&ev)), Ok(ev), "{hook} bits {bits}");
        }
    }
}

#[test]
fn encode_writes_what_the_kernel_writes() {
    // The fixture of tests/decode.rs, as the BPF side fills it.
    let mut raw = RawEvent {
        abi_version: hopscope::bpf::abi::ABI_VERSION,
        hook: 1,
        flags: 1 | 2 | 4 | 8,
        cpu: 1,
        ..RawEvent::default()
    };
    raw.ts_ns = 123;
    raw.packet_id = 42;
    raw.skb_addr = 0xffff_8880_0000_1000;
    raw.netns_ino = 4026532258;
    raw.netns_cookie = 77;
    raw.ifindex = 2;
    raw.ifname[..4].copy_from_slice(b"eth0");
    raw.comm[..4].copy_from_slice(b"ping");
    raw.pid = 1000;
    raw.tid = 1001;
    raw.sk_cgroup = 9;
    raw.len = 98;
    raw.tuple.l3 = 1;
    raw.tuple.ethertype = 0x0800;
    raw.tuple.saddr[..4].copy_from_slice(&[198, 18, 0, 2]);
    raw.tuple.daddr[..4].copy_from_slice(&[198, 18, 0, 3]);
    raw.tuple.l4_proto = 1;
    raw.tuple.icmp_type = 8;
    raw.tuple.icmp_id = 17146;
    raw.tuple.icmp_seq = 1;
    raw.tuple.ttl = 64;
    raw.tuple.ip_id = 555;

    let ev = decode_raw(&raw).expect("fixture decodes");
    assert_eq!(event_bytes(&encode_raw(&ev)), event_bytes(&raw));
}

// --------------------------------------------------------------- round trip

#[test]
fn every_frame_kind_round_trips_exactly() {
    let frames = every_kind_v2();
    let bytes = recording(&info(), &frames);
    // Each frame is as documented: kind, length, postcard payload.
    let framed: usize = frames
        .iter()
        .map(|f| recording(&info(), std::slice::from_ref(f)).len() - HEADER_LEN)
        .sum();
    assert_eq!(bytes.len(), HEADER_LEN + framed);

    let mut replay = Replay::new(&bytes[..]).expect("header");
    assert_eq!(replay.info(), &info());
    assert_eq!(replay.format_version(), 2);
    let mut got = Vec::new();
    while let Some(f) = replay.next_frame().expect("frame") {
        got.push(f);
    }
    assert_eq!(got, frames);
    // The end is sticky.
    assert!(matches!(replay.next_frame(), Ok(None)));
    assert!(matches!(replay.next_frame(), Ok(None)));

    // Same through the iterator.
    let (got, error) = read_all(&bytes).expect("header");
    assert_eq!(got, frames);
    assert!(error.is_none());

    // And through the typed writers.
    let mut rec = Recorder::new(Vec::new(), &info()).expect("header");
    for f in &frames {
        match f {
            Frame::Event(e) => rec.event(e),
            Frame::Tick(t) => rec.tick(t),
            Frame::NetnsName { inode, name } => rec.netns_name(*inode, name),
            Frame::DropReasons(r) => {
                let pairs: Vec<(u32, &str)> = r.iter().map(|(v, n)| (*v, n.as_str())).collect();
                rec.drop_reasons(&pairs)
            }
            Frame::Scope {
                netns,
                owner_cgroup,
                label,
            } => rec.scope(netns, *owner_cgroup, label),
            Frame::Link(l) => rec.link(l),
            Frame::Symbol { addr, name } => rec.symbol(*addr, name),
            Frame::Snapshot(snap) => rec.snapshot(snap),
        }
        .expect("frame");
    }
    assert_eq!(rec.frames(), frames.len() as u64);
    assert_eq!(rec.finish().expect("finish"), bytes);
}

#[test]
fn names_and_flags_round_trip_byte_for_byte() {
    // Kernel names are bytes: not UTF-8, control characters, all 16 used.
    let mut e = varied_events()[0];
    let odd = [
        ShortName::from_bytes(b"\xff\xfe\x01tab\there"),
        ShortName::from_bytes(b"0123456789abcdef"),
        ShortName::from_bytes(b""),
    ];
    let mut frames = Vec::new();
    for (i, name) in odd.into_iter().enumerate() {
        e.device = Some(device(1, i as u32, "x"));
        if let Some(d) = e.device.as_mut() {
            d.ifname = name;
        }
        e.task = Some(Task {
            pid: 1,
            tid: 2,
            comm: name,
        });
        for flags in [0u8, 0x02, 0x12, 0xff] {
            let mut h = e.headers.expect("headers");
            h.l4 = L4::Tcp {
                sport: 1,
                dport: 2,
                seq: 3,
                ack: 4,
                flags: TcpFlags(flags),
            };
            e.headers = Some(h);
            frames.push(Frame::Event(e));
        }
    }
    let (got, error) = read_all(&recording(&info(), &frames)).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, frames);
    let raw = |f: &Frame| match f {
        Frame::Event(e) => *e.device.expect("device").ifname.raw(),
        _ => unreachable!(),
    };
    assert_eq!(&raw(&got[0])[..11], b"\xff\xfe\x01tab\there");
    assert_eq!(&raw(&got[4]), b"0123456789abcdef");

    // JSON, for people, is unchanged: names and flags as text.
    assert_eq!(
        serde_json::to_string(&ShortName::from_bytes(b"eth0")).expect("json"),
        r#""eth0""#
    );
    assert_eq!(
        serde_json::to_string(&TcpFlags(0x12)).expect("json"),
        r#""S.""#
    );
    assert_eq!(
        serde_json::to_string(&TcpFlags(0)).expect("json"),
        r#""none""#
    );
    // And reads back from text.
    for flags in [0u8, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f, 0x12] {
        let json = serde_json::to_string(&TcpFlags(flags)).expect("json");
        let back: TcpFlags = serde_json::from_str(&json).expect(&json);
        assert_eq!(back, TcpFlags(flags), "{json}");
    }
    assert!(serde_json::from_str::<TcpFlags>(r#""SX""#).is_err());
    let back: ShortName = serde_json::from_str(r#""veth0""#).expect("name");
    assert_eq!(back, ShortName::from_bytes(b"veth0"));
    // In compact formats, the 16 raw bytes and the flag byte.
    assert_eq!(
        postcard::to_allocvec(&ShortName::from_bytes(b"lo")).expect("postcard"),
        b"lo\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
    );
    assert_eq!(
        postcard::to_allocvec(&TcpFlags(0x12)).expect("postcard"),
        [0x12]
    );
}

#[test]
fn layout_is_as_documented() {
    let ev = varied_events()[0];
    let t = tick(5);
    let frames = every_kind_v2();
    let bytes = recording(&info(), &frames);

    assert_eq!(&MAGIC, b"HOPSCOPE-REC\r\n\x1a\n");
    assert_eq!(FORMAT_VERSION, 2);
    assert_eq!(&bytes[..16], &MAGIC);
    assert_eq!(&bytes[16..18], &2u16.to_le_bytes());
    assert_eq!(&bytes[18..26], &info().started_realtime_ns.to_le_bytes());
    assert_eq!(&bytes[26..34], &info().started_monotonic_ns.to_le_bytes());
    assert_eq!(&bytes[34..38], &2u32.to_le_bytes());
    assert_eq!(&bytes[38..40], b"h1");
    assert_eq!(&bytes[40..44], &5u32.to_le_bytes());
    assert_eq!(&bytes[44..49], b"6.8.0");

    // Each kind's payload is the postcard encoding of the documented type.
    let mut want = Vec::new();
    for f in &frames {
        want.extend(match f {
            Frame::Event(e) => frame_bytes(1, e),
            Frame::Tick(t) => frame_bytes(2, t),
            Frame::NetnsName { inode, name } => frame_bytes(3, &(*inode, name)),
            Frame::DropReasons(r) => frame_bytes(4, r),
            Frame::Scope {
                netns,
                owner_cgroup,
                label,
            } => frame_bytes(5, &(netns, *owner_cgroup, label)),
            Frame::Link(l) => frame_bytes(6, l),
            Frame::Symbol { addr, name } => frame_bytes(7, &(*addr, name)),
            Frame::Snapshot(snap) => frame_bytes(8, snap),
        });
    }
    assert_eq!(&bytes[HEADER_LEN..], &want[..]);

    // Spelled out for one tick and one name: varints, strings after their
    // length.
    let b = recording(
        &info(),
        &[
            Frame::Tick(Tick {
                now_ns: 300,
                emitted: 1,
                ..Tick::default()
            }),
            Frame::NetnsName {
                inode: 5,
                name: "ab".to_owned(),
            },
        ],
    );
    assert_eq!(
        &b[HEADER_LEN..],
        [
            &[2, 8, 0, 0, 0, 0xac, 0x02, 1, 0, 0, 0, 0, 0][..],
            &[3, 4, 0, 0, 0, 5, 2, b'a', b'b'][..]
        ]
        .concat()
    );
    // Events take a fraction of the 272 bytes of the kernel record.
    let one = recording(&info(), &[Frame::Event(ev), Frame::Tick(t)]).len() - HEADER_LEN;
    assert!(one < 5 + EVENT_SIZE / 2, "{one} bytes");
}

#[test]
fn empty_strings_and_long_strings() {
    let empty = RecordingInfo {
        hostname: String::new(),
        kernel: String::new(),
        ..info()
    };
    let bytes = recording(&empty, &[]);
    assert_eq!(bytes.len(), 42);
    let replay = Replay::new(&bytes[..]).expect("header");
    assert_eq!(replay.info(), &empty);

    let longest = RecordingInfo {
        hostname: "h".repeat(4096),
        kernel: "é".repeat(2048),
        ..info()
    };
    let bytes = recording(&longest, &[]);
    assert_eq!(Replay::new(&bytes[..]).expect("header").info(), &longest);

    for (too_long, what) in [
        (
            RecordingInfo {
                hostname: "h".repeat(4097),
                ..info()
            },
            "hostname is 4097 bytes, over the 4096-byte limit",
        ),
        (
            RecordingInfo {
                kernel: "k".repeat(5000),
                ..info()
            },
            "kernel release is 5000 bytes, over the 4096-byte limit",
        ),
    ] {
        let mut out = Vec::new();
        let err = Recorder::new(&mut out, &too_long)
            .err()
            .expect("over the limit");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), what);
        assert!(out.is_empty(), "nothing written");
    }
}

#[test]
fn recording_info_now_describes_this_machine() {
    let i = RecordingInfo::now();
    let proc = |p: &str| fs::read_to_string(p).expect(p).trim_end().to_string();
    assert_eq!(i.hostname, proc("/proc/sys/kernel/hostname"));
    assert_eq!(i.kernel, proc("/proc/sys/kernel/osrelease"));
    // After 2020-01-01, and a monotonic clock that has started.
    assert!(i.started_realtime_ns > 1_577_836_800_000_000_000);
    assert!(i.started_monotonic_ns > 0);
    assert!(i.started_monotonic_ns <= RecordingInfo::now().started_monotonic_ns);
}

// ------------------------------------------------------------- format 1

#[test]
fn format_1_reads_as_the_same_frames() {
    let frames = every_kind();
    let old = v1_recording(&info(), &frames);
    let replay = Replay::new(&old[..]).expect("header");
    assert_eq!(replay.format_version(), 1);
    assert_eq!(replay.info(), &info());
    let got: Vec<Frame> = replay.map(|f| f.expect("frame")).collect();
    assert_eq!(got, frames);
    // Written again, it is format 2, and the same frames.
    let new = recording(&info(), &got);
    assert_eq!(new, recording(&info(), &frames));
    assert_eq!(&new[16..18], &2u16.to_le_bytes());
}

#[test]
fn format_1_fixture_and_its_converted_twin_hold_the_same_frames() {
    let dir = fixtures_dir();
    let (v1, info1, frames1) = read_file(&dir.join("v1/lab.hsrec"));
    let (v2, info2, frames2) = read_file(&dir.join("lab.hsrec"));
    assert_eq!((v1, v2), (1, 2));
    assert_eq!(info1, info2);
    assert_eq!(frames1.len(), frames2.len());
    assert_eq!(frames1, frames2);
    let events = frames1
        .iter()
        .filter(|f| matches!(f, Frame::Event(_)))
        .count();
    assert!(events > 100, "{events} events");
    // Every fixture is in the current format.
    let mut n = 0;
    for e in fs::read_dir(&dir).expect("fixtures") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "hsrec") {
            assert_eq!(read_file(&path).0, FORMAT_VERSION, "{}", path.display());
            n += 1;
        }
    }
    assert_eq!(n, 7);
}

#[test]
fn format_1_of_another_event_abi_is_refused() {
    let mut bytes = v1_recording(&info(), &[]);
    bytes[18..20].copy_from_slice(&9u16.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::AbiMismatch { abi: 9, size: 272 }) => assert_eq!(
            e.to_string(),
            "recording (format 1) holds events of ABI version 9 (272-byte records), which this \
             hopscope cannot convert (it converts ABI versions 1 and 2)"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    let mut bytes = v1_recording(&info(), &[]);
    bytes[20..24].copy_from_slice(&200u32.to_le_bytes());
    assert!(matches!(
        Replay::new(&bytes[..]),
        Err(RecordError::AbiMismatch { abi: 2, size: 200 })
    ));
    // ABI 1, 192-byte records, is converted (tests/decode.rs checks how).
    let mut bytes = v1_recording(&info(), &[]);
    bytes[18..20].copy_from_slice(&1u16.to_le_bytes());
    bytes[20..24].copy_from_slice(&192u32.to_le_bytes());
    assert_eq!(Replay::new(&bytes[..]).expect("ABI 1").format_version(), 1);
}

#[test]
fn format_1_frames_are_checked() {
    let evs = varied_events();
    let header = || v1_recording(&info(), &[]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            vec![1, 191, 0, 0, 0],
            "frame of kind 1 is 191 bytes, expected 272",
        ),
        (
            vec![1, 0, 0, 0, 0],
            "frame of kind 1 is 0 bytes, expected 272",
        ),
        (
            vec![2, 64, 0, 0, 0],
            "frame of kind 2 is 64 bytes, expected 56",
        ),
        (
            vec![0, 0, 0, 0, 0],
            "frame kind 0 is reserved (zero-filled data?)",
        ),
        // inode 7, name "\xff"
        (
            vec![3, 5, 0, 0, 0, 7, 0, 0, 0, 0xff],
            "namespace name is not UTF-8",
        ),
        (vec![3, 2, 0, 0, 0, 7, 0], "namespace name frame of 2 bytes"),
        (
            vec![4, 8, 0, 0, 0, 1, 0, 0, 0, 200, 0, b'x', b'y'],
            "drop reason name of 200 bytes",
        ),
        (vec![4, 3, 0, 0, 0, 1, 0, 0], "drop reason entry cut short"),
        (
            [&[5, 14, 0, 0, 0][..], &[0; 10], &[7, 0, 0, 0]].concat(),
            "scope frame: namespace count",
        ),
        (vec![6, 2, 0, 0, 0, b'{', b'x'], "link frame: "),
        (
            vec![7, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xc0],
            "symbol name is not UTF-8",
        ),
    ];
    for (frame, what) in cases {
        let mut bytes = header();
        bytes.extend_from_slice(&frame);
        bytes.extend(std::iter::repeat_n(0, 300));
        let (offset, w) = corrupt(frame_error(&bytes));
        assert_eq!(offset, V1_HEADER_LEN as u64, "{what}");
        assert!(w.starts_with(what), "{w:?} is not {what:?}");
    }
    // More drop reasons than any kernel has (and than format 2 allows).
    let table: Vec<(u32, String)> = (0..2049).map(|v| (v, "R".to_owned())).collect();
    let mut bytes = header();
    bytes.extend(v1_frame(&Frame::DropReasons(table.clone())));
    assert_eq!(
        corrupt(frame_error(&bytes)),
        (V1_HEADER_LEN as u64, "over 2048 drop reasons".to_owned())
    );
    let mut bytes = header();
    bytes.extend(v1_frame(&Frame::DropReasons(table[..2048].to_vec())));
    let (got, error) = read_all(&bytes).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, [Frame::DropReasons(table[..2048].to_vec())]);

    // An event record that does not decode names its offset and reason.
    let mut bytes = v1_recording(&info(), &[Frame::Event(evs[0])]);
    let at = bytes.len();
    let mut frame = v1_frame(&Frame::Event(evs[1]));
    frame[5 + 2] = 0; // hook 0
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&v1_frame(&Frame::Event(evs[2])));
    let (got, error) = read_all(&bytes).expect("header");
    assert_eq!(got, [Frame::Event(evs[0])]);
    match error {
        Some(e @ RecordError::Decode { .. }) => {
            assert!(matches!(
                e,
                RecordError::Decode { offset, source: DecodeError::Hook(0) } if offset == at as u64
            ));
            assert_eq!(
                e.to_string(),
                format!("recording corrupt at byte {at}: bad event")
            );
            let source = std::error::Error::source(&e).expect("source");
            assert_eq!(source.to_string(), "unknown hook 0");
        }
        other => panic!("{other:?}"),
    }
}

// -------------------------------------------------------------- truncation

/// Cuts `bytes` (a recording of `frames` with a header of `header_len`)
/// at every byte: each cut reads as a clean prefix at a frame boundary
/// and as the frames before it plus a truncation anywhere else.
fn check_every_cut(bytes: &[u8], header_len: usize, frames: &[Frame], frame_lens: &[usize]) {
    // Offsets at which a file holds whole frames: (offset, frames before).
    let mut boundaries = vec![(header_len, 0)];
    for (i, len) in frame_lens.iter().enumerate() {
        let last = boundaries[boundaries.len() - 1].0;
        boundaries.push((last + len, i + 1));
    }
    assert_eq!(boundaries[boundaries.len() - 1].0, bytes.len());

    for cut in 0..=bytes.len() {
        let part = &bytes[..cut];
        if cut < MAGIC.len() {
            let why = if cut == 0 {
                "the file is empty"
            } else {
                "the file is too short"
            };
            match Replay::new(part) {
                Err(RecordError::NotARecording { why: w }) => assert_eq!(w, why, "cut {cut}"),
                other => panic!("cut {cut}: {:?}", other.map(|r| r.info().clone())),
            }
            continue;
        }
        if cut < header_len {
            match Replay::new(part) {
                Err(RecordError::Truncated { offset }) => assert_eq!(offset, cut as u64),
                other => panic!("cut {cut}: {:?}", other.map(|r| r.info().clone())),
            }
            continue;
        }
        let (got, error) = read_all(part).expect("whole header");
        match boundaries.iter().find(|(b, _)| *b == cut) {
            Some(&(_, n)) => {
                assert!(error.is_none(), "cut {cut} at a boundary: {error:?}");
                assert_eq!(got, frames[..n], "cut {cut}");
            }
            None => {
                let n = boundaries.iter().filter(|(b, _)| *b < cut).count();
                assert_eq!(got, frames[..n - 1], "cut {cut}");
                match error {
                    Some(RecordError::Truncated { offset }) => assert_eq!(offset, cut as u64),
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn truncation_at_every_byte_is_an_error_or_a_clean_prefix() {
    let evs = varied_events();
    let mut frames = every_kind();
    frames.retain(|f| !matches!(f, Frame::Event(_)));
    frames.insert(1, Frame::Event(evs[0]));
    frames.push(Frame::Event(evs[13]));

    let bytes = recording(&info(), &frames);
    let lens: Vec<usize> = frames
        .iter()
        .map(|f| recording(&info(), std::slice::from_ref(f)).len() - HEADER_LEN)
        .collect();
    check_every_cut(&bytes, HEADER_LEN, &frames, &lens);

    let bytes = v1_recording(&info(), &frames);
    let lens: Vec<usize> = frames.iter().map(|f| v1_frame(f).len()).collect();
    check_every_cut(&bytes, V1_HEADER_LEN, &frames, &lens);
}

#[test]
fn truncation_message() {
    let bytes = recording(&info(), &[Frame::Event(varied_events()[0])]);
    let (got, error) = read_all(&bytes[..HEADER_LEN + 20]).expect("header");
    assert!(got.is_empty());
    assert_eq!(
        error.expect("truncated").to_string(),
        format!(
            "recording truncated at byte {} (the recorder was killed?)",
            HEADER_LEN + 20
        )
    );
    // A frame claiming the largest length, with little after it, is
    // truncated where the data ends.
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[1, 0, 0, 0x10, 0]);
    bytes.extend_from_slice(&[7; 100]);
    assert!(matches!(
        frame_error(&bytes),
        RecordError::Truncated { offset } if offset == bytes.len() as u64
    ));
}

// ------------------------------------------------------------ not recordings

#[test]
fn empty_text_and_random_files_are_not_recordings() {
    let mut rng = xorshift(0x9e37_79b9_7f4a_7c15);
    let random: Vec<u8> = (0..4096).map(|_| rng() as u8).collect();
    let cases: [(&[u8], &str); 4] = [
        (b"", "the file is empty"),
        (b"HOPSCOPE", "the file is too short"),
        (
            b"ts,hook,packet\n1,net_dev_queue,42\n",
            "the file does not start with the recording magic",
        ),
        (&random, "the file does not start with the recording magic"),
    ];
    for (bytes, why) in cases {
        match Replay::new(bytes) {
            Err(e @ RecordError::NotARecording { .. }) => {
                assert_eq!(
                    e.to_string(),
                    format!("not a hopscope recording: {why} {NOT_A_RECORDING_HINT}")
                );
            }
            other => panic!("{why}: {:?}", other.map(|r| r.info().clone())),
        }
    }
}

#[test]
fn other_format_versions_are_refused_by_number() {
    let mut bytes = recording(&info(), &[]);
    bytes[16..18].copy_from_slice(&3u16.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Version { got: 3, want: 2 }) => assert_eq!(
            e.to_string(),
            "recording format version 3 is newer than this hopscope reads (versions 1 to 2): \
             replay it with a newer hopscope"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    // Only the magic and the version need to be there to tell.
    for version in [3u16, 0xffff] {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&version.to_le_bytes());
        assert!(matches!(
            Replay::new(&b[..]),
            Err(RecordError::Version { got, want: 2 }) if got == version
        ));
    }
    bytes[16..18].copy_from_slice(&0u16.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Version { got: 0, want: 2 }) => assert_eq!(
            e.to_string(),
            "recording format version 0 does not exist (this hopscope reads versions 1 to 2): \
             the file is damaged"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
}

#[test]
fn bad_header_strings_are_corrupt() {
    let mut bytes = recording(&info(), &[]);
    bytes[34..38].copy_from_slice(&4097u32.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Corrupt { offset: 34, .. }) => assert_eq!(
            e.to_string(),
            "recording corrupt at byte 34: hostname length 4097 is over the 4096-byte limit"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    let mut bytes = recording(&info(), &[]);
    bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Replay::new(&bytes[..]),
        Err(RecordError::Corrupt { offset: 40, .. })
    ));
    let mut bytes = recording(&info(), &[]);
    bytes[38] = 0xff;
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Corrupt { offset: 38, .. }) => assert_eq!(
            e.to_string(),
            "recording corrupt at byte 38: hostname is not UTF-8"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    // Format 1: the same fields, 6 bytes later.
    let mut bytes = v1_recording(&info(), &[]);
    bytes[40..44].copy_from_slice(&4097u32.to_le_bytes());
    assert!(matches!(
        Replay::new(&bytes[..]),
        Err(RecordError::Corrupt { offset: 40, .. })
    ));
}

// ------------------------------------------------------------------ frames

#[test]
fn unknown_frame_kinds_are_skipped() {
    let evs = varied_events();
    for v1 in [false, true] {
        let (mut bytes, ev_frame): (Vec<u8>, Vec<u8>) = if v1 {
            (
                v1_recording(&info(), &[Frame::Event(evs[0])]),
                v1_frame(&Frame::Event(evs[1])),
            )
        } else {
            (
                recording(&info(), &[Frame::Event(evs[0])]),
                frame_bytes(1, &evs[1]),
            )
        };
        // Empty, small and exactly-1-MiB frames of kinds this reader lacks
        // (format 1 had no snapshots, kind 8).
        let unknown = if v1 { 8u8 } else { 9 };
        for (kind, len) in [(unknown, 0usize), (0x7f, 10), (0xff, 1 << 20)] {
            bytes.push(kind);
            bytes.extend_from_slice(&(len as u32).to_le_bytes());
            bytes.extend(std::iter::repeat_n(0xa5, len));
            bytes.extend_from_slice(&ev_frame);
        }
        let (got, error) = read_all(&bytes).expect("header");
        assert!(error.is_none(), "{error:?}");
        assert_eq!(
            got,
            [evs[0], evs[1], evs[1], evs[1]].map(Frame::Event).to_vec()
        );
    }

    // A skipped frame cut short is still a truncation.
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[9, 100, 0, 0, 0]);
    bytes.extend_from_slice(&[0; 60]);
    let (got, error) = read_all(&bytes).expect("header");
    assert!(got.is_empty());
    assert!(
        matches!(error, Some(RecordError::Truncated { offset }) if offset == bytes.len() as u64)
    );
}

#[test]
fn huge_frame_lengths_are_corrupt_before_any_read() {
    let ev = varied_events()[0];
    for (kind, len) in [(1u8, u32::MAX), (2, (1 << 20) + 1), (0x7f, (1 << 20) + 1)] {
        let mut bytes = recording(&info(), &[Frame::Event(ev)]);
        let at = bytes.len();
        bytes.push(kind);
        bytes.extend_from_slice(&len.to_le_bytes());
        let (got, error) = read_all(&bytes).expect("header");
        assert_eq!(got, [Frame::Event(ev)]);
        match error {
            Some(e @ RecordError::Corrupt { .. }) => {
                assert!(matches!(e, RecordError::Corrupt { offset, .. } if offset == at as u64));
                assert_eq!(
                    e.to_string(),
                    format!(
                        "recording corrupt at byte {at}: frame length {len} is over the 1 MiB limit"
                    )
                );
            }
            other => panic!("kind {kind}: {other:?}"),
        }
    }
}

#[test]
fn bad_payloads_are_corrupt() {
    let ev = varied_events()[0];
    let event = postcard::to_allocvec(&ev).expect("postcard");
    let with_len = |kind: u8, payload: &[u8]| {
        let mut f = vec![kind];
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        f.extend_from_slice(payload);
        f
    };
    let long_name = "x".repeat(4097);
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            vec![0, 0, 0, 0, 0],
            "frame kind 0 is reserved (zero-filled data?)".to_owned(),
        ),
        (
            with_len(1, &event[..event.len() - 1]),
            "event frame: Hit the end of buffer, expected more data".to_owned(),
        ),
        (
            with_len(1, &[&event[..], &[0, 0]].concat()),
            "event frame: 2 bytes after its value".to_owned(),
        ),
        (with_len(1, &[]), "event frame: ".to_owned()),
        (with_len(2, &[0xff; 60]), "tick frame: ".to_owned()),
        (
            frame_bytes(3, &(7u32, &[0xffu8][..])),
            "namespace name frame: ".to_owned(),
        ),
        (
            frame_bytes(3, &(7u32, &long_name)),
            "namespace name over 4096 bytes".to_owned(),
        ),
        (
            frame_bytes(7, &(7u64, &long_name)),
            "symbol name over 4096 bytes".to_owned(),
        ),
        (
            frame_bytes(4, &vec![(1u32, "x".repeat(256))]),
            "drop reason table too large".to_owned(),
        ),
        (
            frame_bytes(4, &vec![(1u32, "x"); 2049]),
            "drop reason table too large".to_owned(),
        ),
        (
            frame_bytes(5, &(vec![1u32; 65_537], 0u64, "")),
            "scope too large".to_owned(),
        ),
        (
            frame_bytes(5, &(Vec::<u32>::new(), 0u64, &long_name)),
            "scope too large".to_owned(),
        ),
        (
            with_len(6, &[0; 4097]),
            "link frame of 4097 bytes".to_owned(),
        ),
        (with_len(6, &[0; 4]), "link frame: ".to_owned()),
        // A sequence claiming more entries than its bytes hold.
        (
            with_len(4, &[0xff, 0xff, 0xff, 0x0f]),
            "drop reasons frame: ".to_owned(),
        ),
    ];
    for (frame, what) in cases {
        let mut bytes = recording(&info(), &[]);
        bytes.extend_from_slice(&frame);
        bytes.extend_from_slice(&frame_bytes(2, &tick(1)));
        let (got, error) = read_all(&bytes).expect("header");
        assert!(got.is_empty(), "{what}: {got:?}");
        let (offset, w) = corrupt(error.expect("an error"));
        assert_eq!(offset, HEADER_LEN as u64, "{what}");
        assert!(w.starts_with(&what), "{w:?} is not {what:?}");
        assert!(w.len() > what.len() || !what.ends_with(": "), "{w:?}");
    }
}

#[test]
fn events_no_kernel_record_gives_are_refused() {
    let evs = varied_events();
    let hop = evs
        .iter()
        .copied()
        .find(|e| !e.hook.is_annotation())
        .expect("a hop");
    let mut annotation = hop;
    annotation.hook = Hook::IcmpSend;
    let mut no_packet = hop;
    no_packet.packet = PacketId(0);
    let mut clone_of_none = hop;
    clone_of_none.link = Some(Link::CloneOf(PacketId(0)));
    let mut segment_of_none = hop;
    segment_of_none.link = Some(Link::SegmentOf {
        parent: PacketId(0),
        index: 1,
        count: 2,
    });
    for (ev, what) in [
        (no_packet, "event of packet id 0, which is reserved"),
        (
            clone_of_none,
            "event linked to packet id 0, which is reserved",
        ),
        (
            segment_of_none,
            "event linked to packet id 0, which is reserved",
        ),
    ] {
        let mut rec = Recorder::new(Vec::new(), &info()).expect("header");
        let err = rec.event(&ev).expect_err(what);
        assert_eq!(
            (err.kind(), err.to_string().as_str()),
            (io::ErrorKind::InvalidInput, what)
        );
        assert_eq!(rec.frames(), 0);
        assert_eq!(rec.finish().expect("finish").len(), HEADER_LEN);

        let mut bytes = recording(&info(), &[]);
        bytes.extend(frame_bytes(1, &ev));
        assert_eq!(
            corrupt(frame_error(&bytes)),
            (HEADER_LEN as u64, what.to_owned())
        );
    }
    // Annotations may name no packet.
    let mut ok = annotation;
    ok.packet = PacketId(0);
    let (got, error) = read_all(&recording(&info(), &[Frame::Event(ok)])).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, [Frame::Event(ok)]);
}

#[test]
fn writer_limits_match_reader_limits() {
    let mut rec = Recorder::new(Vec::new(), &info()).expect("header");
    let long = "x".repeat(4097);
    let refused = [
        rec.netns_name(1, &long),
        rec.symbol(1, &long),
        rec.scope(&[], 0, &long),
        rec.scope(&vec![1; 65_537], 0, ""),
        rec.drop_reasons(&[(1, &"x".repeat(256))]),
        rec.drop_reasons(&vec![(1, "x"); 2049]),
        rec.link(&LinkInfo {
            ifname: "x".repeat(4090),
            ..link()
        }),
    ];
    for r in refused {
        let err = r.expect_err("over a limit");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
    assert_eq!(rec.frames(), 0);
    // Nothing of the refused frames was written.
    assert_eq!(rec.finish().expect("finish").len(), HEADER_LEN);

    // Just inside every limit, written and read back.
    let frames = vec![
        Frame::NetnsName {
            inode: 1,
            name: "n".repeat(4096),
        },
        Frame::Symbol {
            addr: 1,
            name: "s".repeat(4096),
        },
        Frame::Scope {
            netns: vec![u32::MAX; 65_536],
            owner_cgroup: u64::MAX,
            label: "l".repeat(4096),
        },
        Frame::DropReasons((0..2048).map(|v| (v, "r".repeat(255))).collect()),
        Frame::Link(LinkInfo {
            ifname: "x".repeat(3900),
            ..link()
        }),
    ];
    let (got, error) = read_all(&recording(&info(), &frames)).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, frames);
}

#[test]
fn damaged_recordings_read_consistently() {
    let mut frames: Vec<Frame> = varied_events().into_iter().map(Frame::Event).collect();
    frames.insert(3, Frame::Tick(tick(2)));
    frames.insert(5, Frame::Link(link()));
    let mut rng = xorshift(0x0123_4567_89ab_cdef);
    for (good, header_len) in [
        (recording(&info(), &frames), HEADER_LEN),
        (v1_recording(&info(), &frames), V1_HEADER_LEN),
    ] {
        for round in 0..3000 {
            let mut bytes = good.clone();
            for _ in 0..1 + round % 8 {
                let i = (rng() as usize) % bytes.len();
                bytes[i] = rng() as u8;
            }
            let cut = (rng() as usize) % (bytes.len() + 1);
            // The fuzz target's body: frames read are written again and read
            // back equal, replay respects the caps, names print safely.
            hopscope::fuzzing::recording(&bytes[..cut]);
            if let Ok(replay) = Replay::new(&bytes[..cut]) {
                let read: Vec<_> = replay.take(frames.len() + 1).collect();
                // At most one error, and it ends the stream.
                let errors = read.iter().filter(|f| f.is_err()).count();
                assert!(
                    errors <= 1
                        && read.iter().take_while(|f| f.is_ok()).count() + errors == read.len()
                );
                assert!(read.len() <= frames.len());
            }
            // Garbage after a valid header.
            let mut bytes = good[..header_len].to_vec();
            bytes.extend((0..round % 700).map(|_| rng() as u8));
            hopscope::fuzzing::recording(&bytes);
            let read: Vec<_> = Replay::new(&bytes[..]).expect("header").collect();
            assert!(
                read.len() <= bytes.len() - header_len,
                "every frame takes bytes"
            );
        }
    }
}

/// A reader that hands out one byte at a time and is interrupted in between:
/// offsets and results must not depend on how reads are split.
struct Trickle<'a> {
    bytes: &'a [u8],
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match (self.bytes.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.bytes = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn short_and_interrupted_reads() {
    let frames = every_kind();
    for bytes in [recording(&info(), &frames), v1_recording(&info(), &frames)] {
        let replay = Replay::new(Trickle {
            bytes: &bytes,
            interrupt: false,
        })
        .expect("header");
        assert_eq!(replay.info(), &info());
        let got: Result<Vec<Frame>, RecordError> = replay.collect();
        assert_eq!(got.expect("frames"), frames);

        let cut = bytes.len() - 7;
        let mut replay = Replay::new(Trickle {
            bytes: &bytes[..cut],
            interrupt: false,
        })
        .expect("header");
        for f in &frames[..frames.len() - 1] {
            assert_eq!(replay.next().map(|f| f.ok()), Some(Some(f.clone())));
        }
        assert!(matches!(
            replay.next(),
            Some(Err(RecordError::Truncated { offset })) if offset == cut as u64
        ));
        assert!(replay.next().is_none());
        assert!(matches!(replay.next_frame(), Ok(None)));
    }
}

// ------------------------------------------------------------------- files

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn create_makes_owner_only_files_and_open_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ev = varied_events()[0];

    // A new file.
    let fresh = dir.path().join("fresh.rec");
    let mut rec = Recorder::create(&fresh, &info()).expect("create");
    rec.event(&ev).expect("event");
    rec.finish().expect("finish");
    assert_eq!(mode(&fresh), 0o600);

    // An old, world-readable file with other contents.
    let old = dir.path().join("old.rec");
    fs::write(&old, vec![b'x'; 10_000]).expect("write");
    fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_eq!(mode(&old), 0o644);
    let mut rec = Recorder::create(&old, &info()).expect("create");
    rec.tick(&tick(1)).expect("tick");
    rec.event(&ev).expect("event");
    assert_eq!(rec.frames(), 2);
    rec.finish().expect("finish");
    assert_eq!(mode(&old), 0o600);
    assert_eq!(
        fs::read(&old).expect("read"),
        recording(&info(), &[Frame::Tick(tick(1)), Frame::Event(ev)])
    );

    let replay = Replay::open(&old).expect("open");
    assert_eq!(replay.info(), &info());
    let got: Vec<Frame> = replay.map(|f| f.expect("frame")).collect();
    assert_eq!(got, [Frame::Tick(tick(1)), Frame::Event(ev)]);

    let got: Vec<Frame> = Replay::open(&fresh)
        .expect("open")
        .map(|f| f.expect("frame"))
        .collect();
    assert_eq!(got, [Frame::Event(ev)]);
}

#[test]
fn create_refuses_a_planted_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target");
    fs::write(&target, b"keep").expect("write");
    let link = dir.path().join("link.hsrec");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    assert!(Recorder::create(&link, &info()).is_err());
    assert_eq!(fs::read(&target).expect("read"), b"keep");
}

#[test]
fn create_leaves_the_mode_of_non_regular_files_alone() {
    // `--record /dev/null` must not chmod the device: a FIFO stands in.
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o644)).expect("chmod");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).expect("read fifo"))
    };
    let rec = Recorder::create(&fifo, &info()).expect("create");
    assert_eq!(mode(&fifo), 0o644);
    drop(rec.finish().expect("finish"));
    let bytes = reader.join().expect("reader");
    assert_eq!(Replay::new(&bytes[..]).expect("header").info(), &info());
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.rec");
    match Replay::open(&missing) {
        Err(e @ RecordError::Io { .. }) => {
            assert_eq!(
                e.to_string(),
                format!(
                    "recording {}: No such file or directory (os error 2)",
                    missing.display()
                )
            );
            let source = std::error::Error::source(&e).expect("source");
            let io = source.downcast_ref::<io::Error>().expect("an io::Error");
            assert_eq!(io.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    let nowhere = dir.path().join("no-such-dir").join("x.rec");
    match Recorder::create(&nowhere, &info()) {
        Err(RecordError::Io { path, source }) => {
            assert_eq!(path.as_deref(), Some(nowhere.as_path()));
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("created a file in a missing directory"),
    }
}

// ---------------------------------------------------------------- fixtures

/// The event frames of a recording of format 1 or 2, walked by their
/// documented layouts: (count, bytes with their frame heads).
fn event_frames(b: &[u8]) -> (usize, usize) {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes")) as usize;
    let mut o = if b[16..18] == 1u16.to_le_bytes() {
        40
    } else {
        34
    };
    o += 4 + u32_at(o);
    o += 4 + u32_at(o);
    let (mut n, mut bytes) = (0, 0);
    while o < b.len() {
        let len = 5 + u32_at(o + 1);
        if b[o] == 1 {
            n += 1;
            bytes += len;
        }
        o += len;
    }
    assert_eq!(o, b.len());
    (n, bytes)
}

/// Rewrites every recording in tests/fixtures (format 1 or 2) in the
/// current format, each through a temporary file renamed over it, keeping
/// its mode. Run after a change of the format (from the format-1 originals
/// when the event schema changed):
///
/// ```text
/// git checkout d0c0d16 -- 'tests/fixtures/*.hsrec'
/// cargo test --test record -- --ignored rewrite_fixtures_in_current_format
/// ```
#[test]
#[ignore = "rewrites tests/fixtures; run by hand after a format change"]
fn rewrite_fixtures_in_current_format() {
    // HS_REWRITE_DIR: another directory of `.hsrec` files (fuzz seeds).
    let dir = std::env::var_os("HS_REWRITE_DIR").map_or_else(fixtures_dir, PathBuf::from);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "hsrec"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    for path in paths {
        let (version, info, frames) = read_file(&path);
        let before = fs::metadata(&path).expect("metadata");
        let (events, old_bytes) = event_frames(&fs::read(&path).expect("read"));
        let tmp = path.with_extension("hsrec.tmp");
        let _ = fs::remove_file(&tmp);
        let mut rec = Recorder::create(&tmp, &info).expect("create");
        for f in &frames {
            rec.frame(f).expect("frame");
        }
        rec.finish().expect("finish");
        fs::set_permissions(&tmp, before.permissions()).expect("chmod");
        // Read back before it replaces the original.
        let (v, i, again) = read_file(&tmp);
        assert_eq!((v, &i, &again), (FORMAT_VERSION, &info, &frames));
        fs::rename(&tmp, &path).expect("rename");
        let after = fs::read(&path).expect("read");
        let (n, new_bytes) = event_frames(&after);
        assert_eq!(n, events);
        println!(
            "{}: format {version} -> {FORMAT_VERSION}: {} -> {} bytes; {} frames, {events} \
             events: {:.1} -> {:.1} bytes per event",
            path.display(),
            before.len(),
            after.len(),
            frames.len(),
            old_bytes as f64 / events.max(1) as f64,
            new_bytes as f64 / events.max(1) as f64,
        );
    }
}
