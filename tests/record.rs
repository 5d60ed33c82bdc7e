//! Encoder and recording tests: encode is the exact inverse of decode, and
//! recordings replay exactly what was recorded, or fail with a precise error
//! (never a panic) on anything else.

use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hopscope::bpf::abi::{event_bytes, RawEvent, EVENT_SIZE};
use hopscope::event::decode::{decode, decode_raw, DecodeError};
use hopscope::event::encode::encode_raw;
use hopscope::event::record::{
    Frame, RecordError, Recorder, RecordingInfo, Replay, Tick, FORMAT_VERSION, MAGIC,
};
use hopscope::event::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, NetnsId, PacketId, RouteResult, ShortName,
    Task, TcpFlags, L3, L4,
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

/// A recording of `frames`, written through the public API.
fn recording(info: &RecordingInfo, frames: &[Frame]) -> Vec<u8> {
    let mut rec = Recorder::new(Vec::new(), info).expect("header");
    for f in frames {
        rec.frame(f).expect("frame");
    }
    assert_eq!(rec.frames(), frames.len() as u64);
    rec.finish().expect("finish")
}

/// An event frame built by hand from the documented layout.
fn event_frame(ev: &HopEvent) -> Vec<u8> {
    let mut f = vec![1u8];
    f.extend_from_slice(&(EVENT_SIZE as u32).to_le_bytes());
    f.extend_from_slice(event_bytes(&encode_raw(ev)));
    f
}

/// Header length of [`info`]: 48 fixed bytes plus the two strings.
const HEADER_LEN: usize = 48 + 2 + 5;

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

// ---------------------------------------------------------------- round trip

#[test]
fn recorder_replay_round_trip() {
    let events = varied_events();
    let mut frames = vec![Frame::Tick(tick(0))];
    for (i, e) in events.iter().enumerate() {
        frames.push(Frame::Event(*e));
        if i % 4 == 3 {
            frames.push(Frame::Tick(tick(i as u64)));
        }
    }
    frames.push(Frame::NetnsName {
        inode: 4026531840,
        name: "host".to_owned(),
    });
    frames.push(Frame::Tick(Tick::default()));
    let ticks = frames.len() - events.len() - 1;

    let bytes = recording(&info(), &frames);
    assert_eq!(
        bytes.len(),
        HEADER_LEN + events.len() * (5 + EVENT_SIZE) + ticks * (5 + 56) + (5 + 4 + 4)
    );

    let mut replay = Replay::new(&bytes[..]).expect("header");
    assert_eq!(replay.info(), &info());
    let mut got = Vec::new();
    while let Some(f) = replay.next_frame().expect("frame") {
        got.push(f);
    }
    assert_eq!(got, frames);
    // The end is sticky.
    assert!(matches!(replay.next_frame(), Ok(None)));

    // Same through the iterator.
    let (got, error) = read_all(&bytes).expect("header");
    assert_eq!(got, frames);
    assert!(error.is_none());
}

#[test]
fn layout_is_as_documented() {
    let ev = varied_events()[0];
    let t = tick(5);
    let bytes = recording(&info(), &[Frame::Event(ev), Frame::Tick(t)]);

    assert_eq!(&MAGIC, b"HOPSCOPE-REC\r\n\x1a\n");
    assert_eq!(&bytes[..16], &MAGIC);
    assert_eq!(&bytes[16..18], &1u16.to_le_bytes());
    assert_eq!(&bytes[18..20], &2u16.to_le_bytes());
    assert_eq!(&bytes[20..24], &272u32.to_le_bytes());
    assert_eq!(&bytes[24..32], &info().started_realtime_ns.to_le_bytes());
    assert_eq!(&bytes[32..40], &info().started_monotonic_ns.to_le_bytes());
    assert_eq!(&bytes[40..44], &2u32.to_le_bytes());
    assert_eq!(&bytes[44..46], b"h1");
    assert_eq!(&bytes[46..50], &5u32.to_le_bytes());
    assert_eq!(&bytes[50..55], b"6.8.0");

    let frames = &bytes[HEADER_LEN..];
    assert_eq!(&frames[..5 + EVENT_SIZE], &event_frame(&ev)[..]);
    let tick_frame = &frames[5 + EVENT_SIZE..];
    assert_eq!(tick_frame[0], 2);
    assert_eq!(&tick_frame[1..5], &56u32.to_le_bytes());
    let fields: Vec<u64> = tick_frame[5..]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    assert_eq!(
        fields,
        [
            t.now_ns,
            t.emitted,
            t.lost,
            t.received,
            t.decode_errors,
            t.channel_dropped,
            t.reused
        ]
    );
}

#[test]
fn empty_strings_and_long_strings() {
    let empty = RecordingInfo {
        hostname: String::new(),
        kernel: String::new(),
        ..info()
    };
    let bytes = recording(&empty, &[]);
    assert_eq!(bytes.len(), 48);
    let replay = Replay::new(&bytes[..]).expect("header");
    assert_eq!(replay.info(), &empty);

    let longest = RecordingInfo {
        hostname: "h".repeat(4096),
        kernel: "é".repeat(2048),
        ..info()
    };
    let bytes = recording(&longest, &[]);
    assert_eq!(Replay::new(&bytes[..]).expect("header").info(), &longest);

    let too_long = RecordingInfo {
        hostname: "h".repeat(4097),
        ..info()
    };
    let err = Recorder::new(Vec::new(), &too_long)
        .err()
        .expect("over the limit");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "hostname is 4097 bytes, over the 4096-byte limit"
    );
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

// -------------------------------------------------------------- truncation

#[test]
fn truncation_at_every_byte_is_an_error_or_a_clean_prefix() {
    let evs = varied_events();
    let frames = vec![
        Frame::Event(evs[0]),
        Frame::Tick(tick(1)),
        Frame::NetnsName {
            inode: 4026532258,
            name: "web-1".to_owned(),
        },
        Frame::DropReasons(vec![
            (2, "NOT_SPECIFIED".to_owned()),
            (3, "NO_SOCKET".to_owned()),
        ]),
        Frame::Event(evs[13]),
    ];
    let bytes = recording(&info(), &frames);
    let frame_len = |f: &Frame| match f {
        Frame::Event(_) => 5 + EVENT_SIZE,
        Frame::Tick(_) => 5 + 56,
        Frame::NetnsName { name, .. } => 5 + 4 + name.len(),
        Frame::DropReasons(r) => 5 + r.iter().map(|(_, n)| 6 + n.len()).sum::<usize>(),
        Frame::Scope { netns, label, .. } => 5 + 14 + label.len() + 4 * netns.len(),
        Frame::Link(l) => 5 + serde_json::to_vec(l).unwrap().len(),
        Frame::Symbol { name, .. } => 5 + 8 + name.len(),
    };
    // Offsets at which a file holds whole frames: (offset, frames before).
    let mut boundaries = vec![(HEADER_LEN, 0)];
    for (i, f) in frames.iter().enumerate() {
        let last = boundaries[boundaries.len() - 1].0;
        boundaries.push((last + frame_len(f), i + 1));
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
        if cut < HEADER_LEN {
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
fn truncation_message() {
    let bytes = recording(&info(), &[Frame::Event(varied_events()[0])]);
    let (got, error) = read_all(&bytes[..HEADER_LEN + 100]).expect("header");
    assert!(got.is_empty());
    assert_eq!(
        error.expect("truncated").to_string(),
        format!(
            "recording truncated at byte {} (the recorder was killed?)",
            HEADER_LEN + 100
        )
    );
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
fn another_format_version_is_refused_by_number() {
    let mut bytes = recording(&info(), &[]);
    bytes[16..18].copy_from_slice(&2u16.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Version { got: 2, want: 1 }) => assert_eq!(
            e.to_string(),
            "recording format version 2, this hopscope reads 1"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    assert_eq!(FORMAT_VERSION, 1);

    // Only the magic and the version need to be there to tell.
    match Replay::new(&bytes[..18]) {
        Err(RecordError::Version { got: 2, want: 1 }) => {}
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
}

#[test]
fn another_event_abi_is_refused() {
    let mut bytes = recording(&info(), &[]);
    bytes[18..20].copy_from_slice(&9u16.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::AbiMismatch { abi: 9, size: 272 }) => assert_eq!(
            e.to_string(),
            "recording holds ABI version 9 events of 272 bytes, this hopscope reads ABI version \
             2 events of 272 bytes"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    let mut bytes = recording(&info(), &[]);
    bytes[20..24].copy_from_slice(&200u32.to_le_bytes());
    assert!(matches!(
        Replay::new(&bytes[..]),
        Err(RecordError::AbiMismatch { abi: 2, size: 200 })
    ));
}

#[test]
fn bad_header_strings_are_corrupt() {
    let mut bytes = recording(&info(), &[]);
    bytes[40..44].copy_from_slice(&4097u32.to_le_bytes());
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Corrupt { offset: 40, .. }) => assert_eq!(
            e.to_string(),
            "recording corrupt at byte 40: hostname length 4097 is over the 4096-byte limit"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
    let mut bytes = recording(&info(), &[]);
    bytes[46..50].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Replay::new(&bytes[..]),
        Err(RecordError::Corrupt { offset: 46, .. })
    ));
    let mut bytes = recording(&info(), &[]);
    bytes[44] = 0xff;
    match Replay::new(&bytes[..]) {
        Err(e @ RecordError::Corrupt { offset: 44, .. }) => assert_eq!(
            e.to_string(),
            "recording corrupt at byte 44: hostname is not UTF-8"
        ),
        other => panic!("{:?}", other.map(|r| r.info().clone())),
    }
}

// ------------------------------------------------------------------ frames

#[test]
fn unknown_frame_kinds_are_skipped() {
    let evs = varied_events();
    let mut bytes = recording(&info(), &[Frame::Event(evs[0])]);
    // Empty, small and exactly-1-MiB frames of kinds this reader lacks.
    for (kind, len) in [(8u8, 0usize), (0x7f, 10), (0xff, 1 << 20)] {
        bytes.push(kind);
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend(std::iter::repeat_n(0xa5, len));
        bytes.extend_from_slice(&event_frame(&evs[1]));
    }
    let (got, error) = read_all(&bytes).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        got,
        [evs[0], evs[1], evs[1], evs[1]].map(Frame::Event).to_vec()
    );

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
fn wrong_sized_known_frames_and_kind_zero_are_corrupt() {
    let cases: [(u8, u32, &str); 4] = [
        (1, 191, "frame of kind 1 is 191 bytes, expected 272"),
        (1, 0, "frame of kind 1 is 0 bytes, expected 272"),
        (2, 64, "frame of kind 2 is 64 bytes, expected 56"),
        (0, 0, "frame kind 0 is reserved (zero-filled data?)"),
    ];
    for (kind, len, what) in cases {
        let mut bytes = recording(&info(), &[]);
        bytes.push(kind);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend(std::iter::repeat_n(0, len as usize));
        let (got, error) = read_all(&bytes).expect("header");
        assert!(got.is_empty());
        match error {
            Some(RecordError::Corrupt { offset, what: w }) => {
                assert_eq!((offset, w.as_str()), (HEADER_LEN as u64, what));
            }
            other => panic!("kind {kind}: {other:?}"),
        }
    }
}

#[test]
fn undecodable_events_report_their_offset() {
    let evs = varied_events();
    let mut bytes = recording(&info(), &[Frame::Event(evs[0])]);
    let at = bytes.len();
    let mut frame = event_frame(&evs[1]);
    frame[5 + 2] = 0; // hook 0
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&event_frame(&evs[2]));
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

#[test]
fn damaged_recordings_read_consistently() {
    let mut frames: Vec<Frame> = varied_events().into_iter().map(Frame::Event).collect();
    frames.insert(3, Frame::Tick(tick(2)));
    let good = recording(&info(), &frames);
    let mut rng = xorshift(0x0123_4567_89ab_cdef);
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
                errors <= 1 && read.iter().take_while(|f| f.is_ok()).count() + errors == read.len()
            );
            assert!(read.len() <= frames.len());
        }
        // Garbage after a valid header.
        let mut bytes = good[..HEADER_LEN].to_vec();
        bytes.extend((0..round % 700).map(|_| rng() as u8));
        hopscope::fuzzing::recording(&bytes);
        let read: Vec<_> = Replay::new(&bytes[..]).expect("header").collect();
        assert!(
            read.len() <= bytes.len() - HEADER_LEN,
            "every frame takes bytes"
        );
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
    let frames: Vec<Frame> = vec![Frame::Tick(tick(1)), Frame::Event(varied_events()[4])];
    let bytes = recording(&info(), &frames);
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
    assert_eq!(replay.next().map(|f| f.ok()), Some(Some(frames[0].clone())));
    assert!(matches!(
        replay.next(),
        Some(Err(RecordError::Truncated { offset })) if offset == cut as u64
    ));
    assert!(replay.next().is_none());
    assert!(matches!(replay.next_frame(), Ok(None)));
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
        fs::metadata(&old).expect("metadata").len() as usize,
        HEADER_LEN + (5 + 56) + (5 + EVENT_SIZE)
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

#[test]
fn netns_name_frames_are_checked() {
    // inode 7, name "\xff" (not UTF-8)
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[3, 5, 0, 0, 0, 7, 0, 0, 0, 0xff]);
    let (got, error) = read_all(&bytes).expect("header");
    assert!(got.is_empty());
    assert!(
        matches!(&error, Some(RecordError::Corrupt { what, .. }) if what == "namespace name is not UTF-8"),
        "{error:?}"
    );
    // Shorter than its inode.
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[3, 2, 0, 0, 0, 7, 0]);
    let (_, error) = read_all(&bytes).expect("header");
    assert!(
        matches!(error, Some(RecordError::Corrupt { .. })),
        "{error:?}"
    );
    // Too long a name is refused when writing.
    let mut rec = Recorder::new(Vec::new(), &info()).expect("header");
    assert!(rec.netns_name(1, &"x".repeat(4097)).is_err());
}

#[test]
fn drop_reason_frames_round_trip_and_are_checked() {
    let table = vec![
        (1, "CONSUMED".to_owned()),
        (3, "NO_SOCKET".to_owned()),
        (77, "NETFILTER_DROP".to_owned()),
    ];
    let bytes = recording(&info(), &[Frame::DropReasons(table.clone())]);
    let (got, error) = read_all(&bytes).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, [Frame::DropReasons(table)]);
    // An entry that claims more than its frame holds.
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[4, 8, 0, 0, 0, 1, 0, 0, 0, 200, 0, b'x', b'y']);
    let (_, error) = read_all(&bytes).expect("header");
    assert!(
        matches!(&error, Some(RecordError::Corrupt { what, .. }) if what == "drop reason name of 200 bytes"),
        "{error:?}"
    );
    // A frame ending inside an entry header.
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[4, 3, 0, 0, 0, 1, 0, 0]);
    let (_, error) = read_all(&bytes).expect("header");
    assert!(
        matches!(error, Some(RecordError::Corrupt { .. })),
        "{error:?}"
    );
    let mut rec = Recorder::new(Vec::new(), &info()).expect("header");
    assert!(rec.drop_reasons(&[(1, &"x".repeat(256))]).is_err());
}

#[test]
fn scope_frames_round_trip_and_are_checked() {
    let scope = Frame::Scope {
        netns: vec![1, 2, 3],
        owner_cgroup: 0,
        label: "everything".to_owned(),
    };
    let bytes = recording(&info(), std::slice::from_ref(&scope));
    let (got, error) = read_all(&bytes).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, [scope]);
    // A count that does not fill the frame exactly.
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[5, 14, 0, 0, 0]);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&[7, 0, 0, 0]);
    let (_, error) = read_all(&bytes).expect("header");
    assert!(
        matches!(&error, Some(RecordError::Corrupt { what, .. }) if what == "scope frame: namespace count"),
        "{error:?}"
    );
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

#[test]
fn link_frames_round_trip_and_are_checked() {
    let bytes = recording(&info(), &[Frame::Link(link())]);
    let (got, error) = read_all(&bytes).expect("header");
    assert!(error.is_none(), "{error:?}");
    assert_eq!(got, [Frame::Link(link())]);
    let mut bytes = recording(&info(), &[]);
    bytes.extend_from_slice(&[6, 2, 0, 0, 0, b'{', b'x']);
    let (_, error) = read_all(&bytes).expect("header");
    assert!(
        matches!(&error, Some(RecordError::Corrupt { what, .. }) if what.starts_with("link frame:")),
        "{error:?}"
    );
}
