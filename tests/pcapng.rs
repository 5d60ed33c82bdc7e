//! `--pcapng`: every hop of every packet, for Wireshark, through the real
//! binary on the real kernel, read back by `tshark` (Wireshark's own
//! reader) and set against `tcpdump` on each interface in the same run:
//! the same packets in the same order per interface, the packet id at every
//! hop, the drop in a comment, a replay writing what the live run wrote,
//! and bad paths refused. Root only; never skipped. Traffic stays inside
//! the test's lab (198.18.0.0/15).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::field::{client_line, exec_argv, Captured, Serve, Server, Tcpdump};
use common::*;
use hopscope::lab::{addr, LabGuard};

fn lab(tag: &str) -> LabGuard {
    require_root();
    LabGuard::up(&prefix(tag)).expect("building the lab")
}

/// A scratch directory of the test's own, removed in `Drop`.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("hs-pcapng-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Dir(d)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One frame as tshark read it from the pcapng file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shark {
    iface: String,
    packet_id: u64,
    /// `epb_flags`' direction: 1 inbound, 2 outbound.
    direction: Option<u64>,
    src: String,
    dst: String,
    ip_id: Option<u16>,
    icmp: Option<(u8, u16)>,
    tcp_seq: Option<u32>,
    comment: String,
    /// TCP or UDP source and destination ports.
    ports: Option<(u16, u16)>,
    /// TCP flags (tshark's `tcp.flags`: SYN 0x002, ACK 0x010).
    tcp_flags: Option<u16>,
}

/// `tshark -r FILE [-Y FILTER]`, one [`Shark`] per frame (IPv4 ones).
fn tshark(file: &Path, filter: Option<&str>) -> Vec<Shark> {
    let mut args = vec!["-r".to_owned(), file.to_string_lossy().into_owned()];
    if let Some(f) = filter {
        args.extend(["-Y".to_owned(), f.to_owned()]);
    }
    for f in [
        "frame.interface_name",
        "frame.packet_id",
        "frame.packet_flags_direction",
        "ip.src",
        "ip.dst",
        "ip.id",
        "icmp.type",
        "icmp.seq",
        "tcp.seq_raw",
        "frame.comment",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.flags",
    ] {
        args.extend(["-e".to_owned(), f.to_owned()]);
    }
    args.extend(
        ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    let out = Command::new("tshark")
        .args(&args)
        .output()
        .expect("running tshark");
    assert!(
        out.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let num = |s: &str| -> Option<u64> {
                let s = s.trim();
                if let Some(h) = s.strip_prefix("0x") {
                    u64::from_str_radix(h, 16).ok()
                } else {
                    s.parse().ok()
                }
            };
            let field = |i: usize| c.get(i).copied().unwrap_or("");
            Shark {
                iface: field(0).to_owned(),
                packet_id: num(field(1)).unwrap_or(0),
                direction: num(field(2)),
                src: field(3).to_owned(),
                dst: field(4).to_owned(),
                ip_id: num(field(5)).map(|n| n as u16),
                icmp: num(field(6)).map(|t| (t as u8, num(field(7)).unwrap_or(0) as u16)),
                tcp_seq: num(field(8)).map(|n| n as u32),
                comment: field(9).to_owned(),
                ports: num(field(10)).map(|s| (s as u16, num(field(11)).unwrap_or(0) as u16)),
                tcp_flags: num(field(12)).map(|f| f as u16),
            }
        })
        .collect()
}

/// What both sides can say of a packet: addresses, IP id, ICMP type and
/// sequence, TCP sequence number.
type Key = (String, String, Option<u16>, Option<(u8, u16)>, Option<u32>);

fn shark_key(s: &Shark) -> Key {
    (s.src.clone(), s.dst.clone(), s.ip_id, s.icmp, s.tcp_seq)
}

fn tcpdump_keys(c: &Captured) -> Vec<Key> {
    c.frames
        .iter()
        .filter_map(|f| {
            let ip = f.ip()?;
            let v4 = ip.src.is_ipv4();
            v4.then(|| {
                (
                    ip.src.to_string(),
                    ip.dst.to_string(),
                    ip.ip_id,
                    f.icmp().map(|(t, _, s)| (t, s)),
                    f.tcp().map(|(seq, _, _)| seq),
                )
            })
        })
        .collect()
}

/// The frames of `file` on each interface, in file order.
fn by_interface(frames: &[Shark]) -> BTreeMap<String, Vec<Key>> {
    let mut m: BTreeMap<String, Vec<Key>> = BTreeMap::new();
    for f in frames {
        m.entry(f.iface.clone()).or_default().push(shark_key(f));
    }
    m
}

#[test]
fn a_lab_ping_and_tcp_exchange_are_on_every_interface_as_tcpdump_saw_them() {
    let _s = serial();
    let g = lab("pc");
    let l = &g.lab;
    let (c1, c2, host) = (l.c1(), l.c2(), l.host());
    let dir = Dir::new("lab");
    let file = dir.file("lab.pcapng");
    let port = 8123;
    let _server = Server::start(
        &c2,
        Serve::TcpEcho,
        SocketAddr::new(addr::C2_V4.parse().unwrap(), port),
    );
    // Every interface of the path, in the order a request crosses them.
    let path = [(&c1, "eth0"), (&host, "vc1"), (&host, "vc2"), (&c2, "eth0")];
    let caps: Vec<_> = path
        .iter()
        .map(|(ns, dev)| {
            Tcpdump::on(ns, dev)
                .filter(&format!("icmp or tcp port {port}"))
                .start()
        })
        .collect();
    let script = format!(
        "ping -c 3 -i 0.2 -W 1 {c2a} >/dev/null && {client}",
        c2a = addr::C2_V4,
        client = client_line("to the pcapng", addr::C2_V4, port, false)
    );
    let file_s = file.to_string_lossy().into_owned();
    let recs = trace_argv(
        &["--pcapng", &file_s],
        &exec_argv(&c1, &["sh", "-c", &script]),
    );
    let captured: Vec<Captured> = caps.into_iter().map(|c| c.stop()).collect();

    let meta = std::fs::symlink_metadata(&file).expect("the pcapng file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let frames = tshark(&file, None);
    let per_if = by_interface(&frames);
    // Interfaces are named <namespace>/<device>, both namespaces' names.
    let names: Vec<String> = path.iter().map(|(ns, d)| format!("{ns}/{d}")).collect();
    assert_eq!(
        per_if.keys().cloned().collect::<Vec<_>>(),
        {
            let mut n = names.clone();
            n.sort();
            n
        },
        "{frames:#?}"
    );
    for (name, cap) in names.iter().zip(&captured) {
        let want = tcpdump_keys(cap);
        assert!(want.len() >= 6 + 6, "{}", cap.listing());
        assert_eq!(
            per_if[name],
            want,
            "{name}: the pcapng's frames, in order, are tcpdump's\n{}",
            cap.listing()
        );
    }

    // One echo request, by its packet id: the same packet at its 4 hops,
    // outbound on c1, in and out of the bridge, inbound on c2.
    let rq: Vec<&Shark> = frames.iter().filter(|f| f.icmp == Some((8, 1))).collect();
    let id = rq[0].packet_id;
    let one = tshark(&file, Some(&format!("frame.packet_id == {id}")));
    assert_eq!(
        one.iter()
            .map(|f| (f.iface.as_str(), f.direction))
            .collect::<Vec<_>>(),
        vec![
            (names[0].as_str(), Some(2)),
            (names[1].as_str(), Some(1)),
            (names[2].as_str(), Some(2)),
            (names[3].as_str(), Some(1)),
        ],
        "{one:#?}"
    );
    assert!(one.iter().all(|f| f.icmp == Some((8, 1))));
    assert!(
        one[0]
            .comment
            .starts_with(&format!("hopscope: packet {id} hop 1/4")),
        "{one:#?}"
    );
    assert!(one[3].comment.ends_with("consumed"), "{one:#?}");
    // The JSON lines of the same run name the same packet.
    assert!(recs
        .iter()
        .any(|r| r["type"] == "hop" && r["packet"] == id && r["icmp_seq"] == 1));
    // And the summary says what went into the file.
    let s = summary(&recs);
    assert_eq!(s["pcapng"]["hops"], frames.len() as u64, "{s}");
    assert_eq!(s["pcapng"]["hops_without_bytes"], 0, "{s}");
}

#[test]
fn an_nft_drop_is_found_by_its_comment() {
    let _s = serial();
    let g = lab("pd");
    let l = &g.lab;
    let host = l.host();
    let nft = |args: &str| {
        let out = Command::new("sh")
            .args(["-c", &format!("ip netns exec {host} nft {args}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nft("add table inet hspcap");
    nft("add chain inet hspcap fdrop '{ type filter hook forward priority 0; }'");
    nft("add rule inet hspcap fdrop icmp type echo-request drop");
    let dir = Dir::new("drop");
    let file = dir.file("drop.pcapng");
    let file_s = file.to_string_lossy().into_owned();
    let out = hopscope(&[
        "trace",
        "--pcapng",
        &file_s,
        "--",
        "ip",
        "netns",
        "exec",
        &l.c1(),
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        addr::R1_V4,
    ]);
    // ping's status: no reply.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dropped = tshark(&file, Some("frame.comment contains \"dropped\""));
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    let d = &dropped[0];
    assert_eq!((d.icmp, d.dst.as_str()), (Some((8, 1)), addr::R1_V4));
    assert!(
        d.comment
            .contains("dropped: NETFILTER_DROP at nft_do_chain+0x"),
        "{d:#?}"
    );
    // The drop is the last hop of its packet, seen first on c1.
    let all = tshark(&file, Some(&format!("frame.packet_id == {}", d.packet_id)));
    assert_eq!(all.last(), Some(d));
    assert_eq!(all[0].iface, format!("{}/eth0", l.c1()));
    assert!(d
        .comment
        .contains(&format!("hop {}/{}", all.len(), all.len())));
}

#[test]
fn a_replay_writes_the_packets_the_live_run_wrote() {
    let _s = serial();
    let g = lab("pr");
    let l = &g.lab;
    let dir = Dir::new("replay");
    let (live, rec, replayed) = (
        dir.file("live.pcapng"),
        dir.file("run.hsrec"),
        dir.file("replayed.pcapng"),
    );
    let out = hopscope(&[
        "trace",
        "--pcapng",
        &live.to_string_lossy(),
        "--record",
        &rec.to_string_lossy(),
        "--",
        "ip",
        "netns",
        "exec",
        &l.c1(),
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        addr::C2_V4,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hopscope(&[
        "replay",
        &rec.to_string_lossy(),
        "--pcapng",
        &replayed.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pcapng: 16 hops of 4 packets in"),
        "{stderr}"
    );
    let (a, b) = (tshark(&live, None), tshark(&replayed, None));
    assert_eq!(a.len(), 16, "{a:#?}");
    assert_eq!(a, b);
}

#[test]
fn bad_paths_and_sizes_exit_2_and_planted_links_are_not_followed() {
    require_root();
    let dir = Dir::new("bad");
    let target = dir.file("victim");
    std::fs::write(&target, "keep me").unwrap();
    let link = dir.file("planted.pcapng");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let existing = dir.file("existing.pcapng");
    std::fs::write(&existing, "old").unwrap();
    let missing_dir = dir.file("no/such/dir.pcapng");
    for (args, says) in [
        (
            vec![
                "trace",
                "--pcapng",
                &*link.to_string_lossy(),
                "--duration",
                "1",
            ],
            "symbolic link",
        ),
        (
            vec![
                "trace",
                "--force",
                "--pcapng",
                &*link.to_string_lossy(),
                "--duration",
                "1",
            ],
            "symbolic link",
        ),
        (
            vec![
                "trace",
                "--pcapng",
                &*existing.to_string_lossy(),
                "--duration",
                "1",
            ],
            "exists",
        ),
        (
            vec![
                "trace",
                "--pcapng",
                &*missing_dir.to_string_lossy(),
                "--duration",
                "1",
            ],
            "pcapng",
        ),
        (
            vec!["trace", "--snaplen", "4096", "--duration", "1"],
            "4096",
        ),
        (
            vec![
                "trace",
                "--snaplen",
                "0",
                "--pcapng",
                "x.pcapng",
                "--duration",
                "1",
            ],
            "--snaplen",
        ),
        (
            vec![
                "replay",
                "/nonexistent.hsrec",
                "--pcapng",
                &*dir.file("r.pcapng").to_string_lossy(),
            ],
            "nonexistent",
        ),
    ] {
        let out = hopscope(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
    assert!(!Path::new("x.pcapng").exists());
    assert_no_programs_left();
}

/// Echoes ICMP echo requests read from a tun device back as replies: a
/// program at the other end of a device without a link-layer header.
const TUN_ECHO: &str = r#"
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"tun0", 0x0001 | 0x1000))
print("ready", file=sys.stderr, flush=True)
def csum(b):
    if len(b) % 2:
        b = b + b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
while True:
    p = bytearray(os.read(fd, 4096))
    ihl = (p[0] & 15) * 4
    if p[0] >> 4 != 4 or p[9] != 1 or p[ihl] != 8:
        continue
    p[12:16], p[16:20] = p[16:20], p[12:16]
    p[ihl] = 0
    p[ihl + 2:ihl + 4] = b"\0\0"
    p[ihl + 2:ihl + 4] = struct.pack("!H", csum(bytes(p[ihl:])))
    os.write(fd, bytes(p))
"#;

/// A tun device (no link-layer header: the kernel hands the program raw IP)
/// with a program answering pings behind it: its frames are raw IP
/// (tshark: encapsulation Raw IP, 7), requests outbound and replies
/// inbound, each echo one packet, and the same packets, in order, as
/// tcpdump wrote on the device.
#[test]
fn a_device_without_a_link_layer_header_is_raw_ip() {
    use common::field::{field_prefix, spawn_in, Field, SETUP};
    let _s = serial();
    require_root();
    let mut f = Field::new(&field_prefix("pt"));
    let ns = f.add("tun", false);
    let mut echo = spawn_in(&ns, &["python3", "-c", TUN_ECHO]);
    assert!(echo.wait_stderr("ready", SETUP), "{}", echo.stderr_now());
    f.addr(&ns, "tun0", "198.18.44.1/24");
    f.up(&ns, &["tun0"]);
    let dir = Dir::new("tun");
    let (file, dumped) = (dir.file("tun.pcapng"), dir.file("tcpdump.pcap"));
    let mut dump = spawn_in(
        &ns,
        &[
            "tcpdump",
            "-i",
            "tun0",
            "-n",
            "-p",
            "-U",
            "--immediate-mode",
            "-w",
            &dumped.to_string_lossy(),
            "icmp",
        ],
    );
    assert!(
        dump.wait_stderr("listening on", SETUP),
        "{}",
        dump.stderr_now()
    );
    trace_argv(
        &["--pcapng", &file.to_string_lossy()],
        &exec_argv(
            &ns,
            &["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.44.2"],
        ),
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    dump.stop(nix::sys::signal::Signal::SIGINT, SETUP);
    drop(echo);

    let frames = tshark(&file, None);
    let tun = format!("{ns}/tun0");
    assert!(frames.iter().all(|f| f.iface == tun), "{frames:#?}");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-T", "fields", "-e", "frame.encap_type"])
        .output()
        .unwrap();
    let encaps: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(encaps, vec!["7"; 4], "{frames:#?}");
    let seen: Vec<_> = frames.iter().map(|f| (f.icmp, f.direction)).collect();
    assert_eq!(
        seen,
        vec![
            (Some((8, 1)), Some(2)),
            (Some((0, 1)), Some(1)),
            (Some((8, 2)), Some(2)),
            (Some((0, 2)), Some(1)),
        ],
        "{frames:#?}"
    );
    let ours: Vec<Key> = frames.iter().map(shark_key).collect();
    let theirs: Vec<Key> = tshark(&dumped, None).iter().map(shark_key).collect();
    assert_eq!(ours, theirs);
}

/// A docker-style published port: the client's SYN is the same packet on
/// every hop, to the published address before the DNAT and to the
/// container after it (the bytes Wireshark shows are rewritten where the
/// kernel rewrote them), the hop after the rewrite says so, and the
/// answer comes back un-DNATed; on the host's outer interface and in the
/// container, tcpdump saw the same packets in the same order.
#[test]
fn a_published_port_shows_the_bytes_before_and_after_the_dnat() {
    use common::field::{published as pp, PublishedPort};
    let _s = serial();
    require_root();
    let p = PublishedPort::build(&common::field::field_prefix("pn"));
    let caps: Vec<_> = [(&p.host, "eth0"), (&p.container, "eth0")]
        .iter()
        .map(|(ns, dev)| Tcpdump::on(ns, dev).filter("tcp").start())
        .collect();
    let dir = Dir::new("nat");
    let file = dir.file("nat.pcapng");
    trace_argv(
        &["--pcapng", &file.to_string_lossy()],
        &p.client_argv("through the nat", false),
    );
    let captured: Vec<Captured> = caps.into_iter().map(|c| c.stop()).collect();
    let frames = tshark(&file, None);
    let syn: Vec<&Shark> = frames
        .iter()
        .filter(|f| f.tcp_flags == Some(0x002))
        .collect();
    let (cli, host, ctr) = (&p.client, &p.host, &p.container);
    let published = (pp::PUBLISHED.to_owned(), pp::PORT);
    let container = (pp::CONTAINER.to_owned(), pp::CONTAINER_PORT);
    let path: Vec<(String, (String, u16))> = syn
        .iter()
        .map(|f| (f.iface.clone(), (f.dst.clone(), f.ports.unwrap().1)))
        .collect();
    assert_eq!(
        path,
        vec![
            (format!("{cli}/eth0"), published.clone()),
            (format!("{host}/eth0"), published.clone()),
            (format!("{host}/br0"), container.clone()),
            (format!("{host}/vethc"), container.clone()),
            (format!("{ctr}/eth0"), container.clone()),
        ],
        "{syn:#?}"
    );
    assert!(syn.iter().all(|f| f.packet_id == syn[0].packet_id));
    let dnat = format!(
        "DNAT {}:{} → {}:{}",
        pp::PUBLISHED,
        pp::PORT,
        pp::CONTAINER,
        pp::CONTAINER_PORT
    );
    assert!(syn[2].comment.contains(&dnat), "{:#?}", syn[2]);
    let synack: Vec<(String, String)> = frames
        .iter()
        .filter(|f| f.tcp_flags == Some(0x012))
        .map(|f| (f.iface.clone(), f.src.clone()))
        .collect();
    assert_eq!(
        synack,
        vec![
            (format!("{ctr}/eth0"), pp::CONTAINER.to_owned()),
            (format!("{host}/vethc"), pp::CONTAINER.to_owned()),
            (format!("{host}/br0"), pp::CONTAINER.to_owned()),
            (format!("{host}/eth0"), pp::PUBLISHED.to_owned()),
            (format!("{cli}/eth0"), pp::PUBLISHED.to_owned()),
        ]
    );
    let per_if = by_interface(&frames);
    for (name, cap) in [format!("{host}/eth0"), format!("{ctr}/eth0")]
        .iter()
        .zip(&captured)
    {
        assert_eq!(per_if[name], tcpdump_keys(cap), "{name}\n{}", cap.listing());
    }
}

/// `tshark -r FILE -T fields` with every occurrence of each field
/// (`occurrence=a`: an encapsulated frame's outer and inner `ip.src`,
/// comma-separated), one row per frame.
fn tshark_all(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    for f in fields {
        cmd.args(["-e", f]);
    }
    cmd.args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]);
    let out = cmd.output().expect("running tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// A VXLAN overlay between two "nodes": one echo request is one packet
/// from pod to pod, in Wireshark as the pod's frame on the pod side of
/// each node and as the VXLAN frame (VNI 42, underlay addresses outside,
/// the pods' inside) on the underlay, under one packet id; the underlay
/// frames are, in order, those tcpdump captured there.
#[test]
fn an_overlay_packet_is_one_packet_inside_and_outside_the_tunnel() {
    use common::field::{overlay as o, VxlanOpts, VxlanOverlay};
    let _s = serial();
    require_root();
    let t = VxlanOverlay::build(&common::field::field_prefix("pv"), VxlanOpts::default());
    let under = Tcpdump::on(&t.node1, "eth0")
        .filter("udp port 4789")
        .start();
    let dir = Dir::new("vxlan");
    let file = dir.file("vxlan.pcapng");
    trace_argv(
        &["--pcapng", &file.to_string_lossy()],
        &exec_argv(&t.pod1, &["ping", "-c", "3", "-i", "0.2", o::POD2_V4]),
    );
    let under = under.stop();
    let fields = [
        "frame.interface_name",
        "frame.packet_id",
        "vxlan.vni",
        "ip.src",
        "ip.dst",
        "ip.id",
        "icmp.type",
        "icmp.seq",
    ];
    let rows = tshark_all(&file, &fields);
    let ours: Vec<&Vec<String>> = rows.iter().filter(|r| r[6] == "8" && r[7] == "1").collect();
    let (p1, n1, n2, p2) = (&t.pod1, &t.node1, &t.node2, &t.pod2);
    let inner = format!("{},{}", o::POD1_V4, o::POD2_V4);
    let wrapped = (
        format!("{},{}", o::UNDERLAY1, o::POD1_V4),
        format!("{},{}", o::UNDERLAY2, o::POD2_V4),
    );
    let seen: Vec<(String, String, String, String)> = ours
        .iter()
        .map(|r| (r[0].clone(), r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    let plain = |i: &str| {
        (
            i.to_owned(),
            String::new(),
            o::POD1_V4.to_owned(),
            o::POD2_V4.to_owned(),
        )
    };
    let tunnelled = |i: &str| {
        (
            i.to_owned(),
            o::VNI.to_string(),
            wrapped.0.clone(),
            wrapped.1.clone(),
        )
    };
    assert_eq!(
        seen,
        vec![
            plain(&format!("{p1}/eth0")),
            plain(&format!("{n1}/vpod")),
            plain(&format!("{n1}/vxlan42")),
            tunnelled(&format!("{n1}/eth0")),
            tunnelled(&format!("{n2}/eth0")),
            plain(&format!("{n2}/vxlan42")),
            plain(&format!("{n2}/vpod")),
            plain(&format!("{p2}/eth0")),
        ],
        "{rows:#?} (inner {inner})"
    );
    assert!(ours.iter().all(|r| r[1] == ours[0][1] && !r[1].is_empty()));
    // The underlay's echoes, frame by frame: outer and inner addresses and
    // IP ids, ICMP seq, as tcpdump saw them on node1's eth0.
    let on_underlay: Vec<(String, String, String, String)> = rows
        .iter()
        .filter(|r| r[0] == format!("{n1}/eth0") && !r[7].is_empty())
        .map(|r| (r[3].clone(), r[4].clone(), r[5].clone(), r[7].clone()))
        .collect();
    let dumped: Vec<(String, String, String, String)> = under
        .frames
        .iter()
        .filter(|f| {
            f.vxlan()
                .and_then(|v| v.inner.icmp())
                .is_some_and(|(ty, _, _)| ty == 8 || ty == 0)
        })
        .map(|f| {
            let outer = f.ip().expect("an IP frame");
            let v = f.vxlan().expect("a VXLAN frame");
            let i = v.inner.ip().expect("an inner IP packet");
            (
                format!("{},{}", outer.src, i.src),
                format!("{},{}", outer.dst, i.dst),
                format!(
                    "0x{:04x},0x{:04x}",
                    outer.ip_id.unwrap_or(0),
                    i.ip_id.unwrap_or(0)
                ),
                v.inner
                    .icmp()
                    .map(|(_, _, s)| s.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(on_underlay, dumped, "{}", under.listing());
    assert_eq!(on_underlay.len(), 6, "3 requests and 3 replies");
}
