//! `hopscope trace --filter EXPR` against tcpdump, packet for packet: with
//! mixed traffic (ICMP, ICMPv6, UDP, TCP over IPv4 and IPv6, ARP, neighbour
//! discovery) and each expression below, the packets hopscope reports on
//! each interface are exactly, as a multiset, the packets
//! `tcpdump -i IFACE EXPR` captures there. Root only; never skipped.
//!
//! The lab (own namespaces `PFX-a`, `PFX-r`, `PFX-b`, `PFX-c`, removed on
//! drop even on failure; only 198.18.0.0/15 and 2001:2::/48):
//!
//! ```text
//!   a eth0 198.18.30.2 ──veth── ra 198.18.30.1 ┐
//!   c eth0 198.18.33.2 ──veth── rc 198.18.33.1 ├ r (forwarding)
//!   b eth0 198.18.31.2 ──veth── rb 198.18.31.1 ┘   tun0 198.18.32.1/24: a tun,
//!                                                  raw IP, no link header
//! ```
//!
//! IPv6 mirrors it in 2001:2:0:30::/64 .. 2001:2:0:33::/64. The trace is
//! scoped to a, r and b (`--netns`); c is left out on purpose, so that c's
//! packets are first sighted on an rx hook (r's `rc`) and the filter runs
//! on a received frame, not only on transmitted ones.
//!
//! Per expression: one `hopscope trace --json --filter EXPR`, one tcpdump
//! per interface (a/eth0, r/ra, r/rc, r/rb, r/tun0, b/eth0), the same burst
//! of traffic, then the multisets of packet signatures (protocol,
//! addresses, ports, ICMP type/code and the next 4 bytes, TCP flags, seq
//! and ack, ARP op, IPv4 id, TTL) are compared per interface. Each
//! tcpdump record is one crossing of its interface; each hopscope visit
//! (`packet`, `visit`) on that (netns, ifname) is one too. The test also
//! insists that each expression's captures are non-empty exactly on the
//! interfaces its traffic should reach, so it cannot pass vacuously.
//!
//! Facts that make it deterministic:
//! - The two tools' windows differ: hopscope attaches before the tcpdumps
//!   listen and detaches after they stopped. Only a quiet lab makes that
//!   harmless: no automatic IPv6 link-local addresses (`addrgenmode
//!   none`; r's veths get a fixed fe80::1, which a router needs to solicit
//!   a forwarded packet's next hop), `nodad`, no RA or RS. MLD reports of
//!   the groups joined at setup are repeated within
//!   `mldv2_unsolicited_report_interval`, set to 1 ms before any device
//!   exists, so they are over before the first run. Forwarding is
//!   set before the devices exist too (it joins ff02::2, reported by MLD).
//! - Neighbour tables are flushed before each run, so ARP and ND happen
//!   inside the window. An entry learnt from a request and then used goes
//!   to DELAY and, unconfirmed (ICMP and UDP never confirm), sends a unicast
//!   probe `delay_first_probe_time` (5 s) later, possibly inside the next
//!   run's window but outside its traffic; it is set to 300 s per device.
//! - No node joins the solicited-node group it sends a neighbour
//!   solicitation to (each link has only ::1 and ::2): a looped-back
//!   multicast copy would show on hopscope's rx hooks, and af_packet drops
//!   PACKET_LOOPBACK skbs, so tcpdump would never see it. The loopback
//!   devices stay down.
//! - tcpdump's tx tap (`dev_queue_xmit_nit`) is after the qdisc, hopscope's
//!   `net_dev_queue` before: equal only where nothing is dropped at the
//!   qdisc. A persistent tun without a reader has no carrier and its
//!   `noop` qdisc drops everything, so a `perl` one-liner holds the tun
//!   open (TUNSETIFF; Rust would need `unsafe` for the ioctl) for the
//!   whole test. Packets into it are only ever sent, never read.
//! - On the tun, tcpdump sees raw IP (LINKTYPE_RAW); `arp` then compiles to
//!   "expression rejects all packets" and tcpdump refuses to start: that
//!   capture is empty by definition, and hopscope must report nothing there.
//! - `tcp[tcpflags]` only applies to IPv4 in pcap-filter: IPv6 SYNs must
//!   not be reported for it. `host`/`net`/`dst host` on an IPv4 address
//!   match ARP sender/target addresses too.
//! - tcpdump runs with `--immediate-mode` and writes pcap to its stdout
//!   (`-U -w -`), stopped with SIGINT after the traffic settled (delayed
//!   ACKs are at most 200 ms). Its end-of-run statistics must show every
//!   packet the kernel accepted for it written ("captured" = "received by
//!   filter") and none dropped.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use hopscope::lab::in_netns;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

// Addresses. a and b talk through r; 198.18.32.0/24 lies behind r's tun.
const A4: &str = "198.18.30.2";
const RA4: &str = "198.18.30.1";
const RB4: &str = "198.18.31.1";
const B4: &str = "198.18.31.2";
const TUN4: &str = "198.18.32.1";
const BEHIND_TUN4: &str = "198.18.32.5";
const RC4: &str = "198.18.33.1";
const C4: &str = "198.18.33.2";
const A6: &str = "2001:2:0:30::2";
const RA6: &str = "2001:2:0:30::1";
const RB6: &str = "2001:2:0:31::1";
const B6: &str = "2001:2:0:31::2";
const TUN6: &str = "2001:2:0:32::1";
const BEHIND_TUN6: &str = "2001:2:0:32::5";
const RC6: &str = "2001:2:0:33::1";
const C6: &str = "2001:2:0:33::2";

/// TCP served in b (IPv4 and IPv6); closed on r.
const TCP_PORT: u16 = 7101;
const TCP_CLOSED: u16 = 7102;
/// UDP echo served in b; closed in b; to the tun.
const UDP_ECHO: u16 = 7201;
const UDP_CLOSED: u16 = 7202;
const UDP_TUN: u16 = 7203;

/// Interfaces compared: (namespace role, device).
const IFACES: [(&str, &str); 6] = [
    ("a", "eth0"),
    ("r", "ra"),
    ("r", "rc"),
    ("r", "rb"),
    ("r", "tun0"),
    ("b", "eth0"),
];

/// Namespaces in hopscope's scope; c is deliberately not.
const TRACED: [&str; 3] = ["a", "r", "b"];

/// Time for the last packets of a burst (delayed ACKs: 200 ms at most).
const SETTLE: Duration = Duration::from_millis(600);

fn label(role: &str, dev: &str) -> String {
    format!("{role}/{dev}")
}

fn signal(child: &Child, sig: Signal) {
    // The child may have exited already; that is checked by its caller.
    let _ = kill(Pid::from_raw(child.id() as i32), sig);
}

/// Sends `sig` and reaps the child, killing it if it is still there after
/// 30 s (a hang must fail the test, not stall it).
fn stop_child(g: &mut Guarded, sig: Signal, what: &str) -> ExitStatus {
    signal(g.child(), sig);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Some(st) = g.child().try_wait().unwrap() {
            // Reaped already: wait() returns the same status at once.
            let _ = g.take().wait();
            return st;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what} still running 30 s after {sig}");
}

/// Reads a pipe to its end on a thread (a full pipe would stall the child).
fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Forwards a pipe's lines to a channel, so a caller can wait for one.
fn lines_of<R: Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A child process killed (SIGKILL) and reaped on drop if still running.
struct Guarded(Option<Child>);

impl Guarded {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running child")
    }

    fn take(&mut self) -> Child {
        self.0.take().expect("a running child")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The lab: namespaces, the tun's holder and the servers in b, all
/// removed on drop.
struct Lab {
    pfx: String,
    created: Vec<String>,
    tun_holder: Option<(Child, ChildStdin)>,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.pfx)
    }

    fn inode(&self, role: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{}", self.ns(role)))
            .unwrap()
            .ino()
    }

    fn build() -> Lab {
        let mut lab = Lab {
            pfx: prefix("fl"),
            created: Vec::new(),
            tun_holder: None,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
        };
        for role in ["a", "r", "b", "c"] {
            let ns = lab.ns(role);
            // A leftover of a killed run with the same pid would make `add` fail.
            let _ = run("ip", &["netns", "del", &ns]);
            ip(&["netns", "add", &ns]);
            lab.created.push(ns);
        }
        // Before any device exists: new devices copy `default`.
        for role in ["a", "r", "b", "c"] {
            let fwd = if role == "r" { "1" } else { "0" };
            let mut keys = vec![("net/ipv4/ip_forward".to_owned(), fwd)];
            for scope in ["all", "default"] {
                for (k, v) in [
                    ("forwarding", fwd),
                    ("accept_dad", "0"),
                    ("accept_ra", "0"),
                    ("router_solicitations", "0"),
                    ("mldv1_unsolicited_report_interval", "1"),
                    ("mldv2_unsolicited_report_interval", "1"),
                ] {
                    keys.push((format!("net/ipv6/conf/{scope}/{k}"), v));
                }
            }
            sysctls(&lab.ns(role), keys);
        }
        let (a, r, b, c) = (lab.ns("a"), lab.ns("r"), lab.ns("b"), lab.ns("c"));
        for (dev, peer_ns) in [("ra", &a), ("rb", &b), ("rc", &c)] {
            ip(&[
                "-n", &r, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns",
                peer_ns,
            ]);
        }
        ip(&["-n", &r, "tuntap", "add", "dev", "tun0", "mode", "tun"]);
        lab.hold_tun();
        let devices: [(&String, &str); 7] = [
            (&a, "eth0"),
            (&b, "eth0"),
            (&c, "eth0"),
            (&r, "ra"),
            (&r, "rb"),
            (&r, "rc"),
            (&r, "tun0"),
        ];
        for (ns, dev) in devices {
            ip(&["-n", ns, "link", "set", dev, "addrgenmode", "none"]);
            if dev != "tun0" {
                let mut keys = Vec::new();
                for fam in ["ipv4", "ipv6"] {
                    keys.push((
                        format!("net/{fam}/neigh/{dev}/delay_first_probe_time"),
                        "300",
                    ));
                    keys.push((
                        format!("net/{fam}/neigh/{dev}/base_reachable_time_ms"),
                        "300000",
                    ));
                }
                sysctls(ns, keys);
            }
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        for (ns, dev, a4, a6) in [
            (&a, "eth0", A4, A6),
            (&b, "eth0", B4, B6),
            (&c, "eth0", C4, C6),
            (&r, "ra", RA4, RA6),
            (&r, "rb", RB4, RB6),
            (&r, "rc", RC4, RC6),
            (&r, "tun0", TUN4, TUN6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{a4}/24"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{a6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
        }
        // A router solicits a forwarded packet's next hop from a link-local
        // address (the packet's source is not its own): a fixed one, in the
        // same solicited-node group as its other addresses.
        for dev in ["ra", "rb", "rc"] {
            ip(&["-n", &r, "addr", "add", "fe80::1/64", "dev", dev, "nodad"]);
        }
        for (ns, gw4, gw6) in [(&a, RA4, RA6), (&b, RB4, RB6), (&c, RC4, RC6)] {
            ip(&["-n", ns, "route", "add", "198.18.0.0/15", "via", gw4]);
            ip(&["-n", ns, "-6", "route", "add", "2001:2::/48", "via", gw6]);
        }
        lab.wait_carrier();
        lab.start_servers();
        // MLD reports of the groups just joined (1 ms apart) are over.
        std::thread::sleep(Duration::from_millis(300));
        lab
    }

    /// A tun has a carrier only while a file holds it: a perl one-liner
    /// attaches (TUNSETIFF = _IOW('T', 202, int), IFF_TUN | IFF_NO_PI) and
    /// keeps it until its stdin closes.
    fn hold_tun(&mut self) {
        let script = r#"
            open(my $t, "+<", "/dev/net/tun") or die "open /dev/net/tun: $!\n";
            my $ifr = pack("a16 s x22", "tun0", 0x0001 | 0x1000);
            ioctl($t, 0x400454ca, $ifr) or die "TUNSETIFF tun0: $!\n";
            $| = 1;
            print "attached\n";
            1 while <STDIN>;
        "#;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns("r"), "perl", "-e", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running perl (perl-base) to hold the tun open");
        let stdin = child.stdin.take().unwrap();
        let mut first = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
        if first.trim() != "attached" {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "could not attach to tun0: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.tun_holder = Some((child, stdin));
    }

    fn wait_carrier(&self) {
        let t0 = Instant::now();
        loop {
            let out = run("ip", &["-n", &self.ns("r"), "-br", "link", "show", "tun0"]);
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            if s.contains("LOWER_UP") && !s.contains("NO-CARRIER") {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "tun0 has no carrier: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// TCP (read to the end, answer, close) and UDP echo in b, on both
    /// families, until the lab is dropped.
    fn start_servers(&mut self) {
        let b = self.ns("b");
        for addr in [B4, B6] {
            let ip: IpAddr = addr.parse().unwrap();
            let l = in_netns(&b, move || TcpListener::bind((ip, TCP_PORT)))
                .unwrap()
                .unwrap();
            l.set_nonblocking(true).unwrap();
            let stop = self.stop.clone();
            self.servers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            let mut req = Vec::new();
                            let _ = s.read_to_end(&mut req);
                            let _ = s.write_all(b"world");
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }));
            let u = in_netns(&b, move || UdpSocket::bind((ip, UDP_ECHO)))
                .unwrap()
                .unwrap();
            u.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let stop = self.stop.clone();
            self.servers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
            }));
        }
    }

    fn flush_neighbours(&self) {
        for role in ["a", "r", "b", "c"] {
            for fam in ["-4", "-6"] {
                ip(&["-n", &self.ns(role), fam, "neigh", "flush", "all"]);
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
        if let Some((mut child, stdin)) = self.tun_holder.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.created.iter().rev() {
            let out = run("ip", &["netns", "del", ns]);
            if !out.status.success() {
                eprintln!(
                    "cleanup: ip netns del {ns}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// Writes sysctls from a thread inside `ns` (/proc/sys/net is per thread).
fn sysctls(ns: &str, keys: Vec<(String, &'static str)>) {
    let name = ns.to_owned();
    in_netns(ns, move || {
        for (k, v) in &keys {
            std::fs::write(format!("/proc/sys/{k}"), v)
                .unwrap_or_else(|e| panic!("sysctl {k}={v} in {name}: {e}"));
        }
    })
    .unwrap();
}

/// One burst of mixed traffic; the same for every expression.
fn traffic(lab: &Lab) {
    let (a, c) = (lab.ns("a"), lab.ns("c"));
    // (namespace, ping arguments, answered)
    let pings: [(&String, &[&str], bool); 7] = [
        (&a, &["-c", "2", "-i", "0.05", "-W", "2", B4], true),
        (&a, &["-6", "-c", "2", "-i", "0.05", "-W", "2", B6], true),
        (&a, &["-c", "1", "-W", "2", RA4], true),
        (&a, &["-c", "1", "-W", "0.2", BEHIND_TUN4], false),
        (&a, &["-6", "-c", "1", "-W", "0.2", BEHIND_TUN6], false),
        (&c, &["-c", "1", "-W", "2", B4], true),
        (&c, &["-6", "-c", "1", "-W", "2", B6], true),
    ];
    let running: Vec<_> = pings
        .iter()
        .map(|(ns, args, answered)| {
            let mut full = vec!["netns", "exec", ns, "ping", "-q", "-n"];
            full.extend_from_slice(args);
            let child = Command::new("ip")
                .args(&full)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("running ping");
            (full.join(" "), *answered, Guarded(Some(child)))
        })
        .collect();

    in_netns(&a, || {
        for (b, r) in [(B4, RA4), (B6, RA6)] {
            let b: IpAddr = b.parse().unwrap();
            // A whole connection: handshake, data both ways, FINs.
            let mut s =
                TcpStream::connect_timeout(&SocketAddr::new(b, TCP_PORT), Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("connect to {b}:{TCP_PORT}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.write_all(b"hello").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).unwrap();
            assert_eq!(answer, b"world");
            drop(s);
            // A SYN that gets a reset.
            let r: IpAddr = r.parse().unwrap();
            let refused =
                TcpStream::connect_timeout(&SocketAddr::new(r, TCP_CLOSED), Duration::from_secs(3));
            assert!(refused.is_err(), "{r}:{TCP_CLOSED} must be closed");
            // UDP: an echo, a closed port (ICMP port unreachable back).
            let any: IpAddr = if b.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            let u = UdpSocket::bind((any, 0)).unwrap();
            u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            u.send_to(b"echo", (b, UDP_ECHO)).unwrap();
            let mut buf = [0u8; 16];
            let (n, _) = u
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("UDP echo from {b}: {e}"));
            assert_eq!(&buf[..n], b"echo");
            u.send_to(b"closed", (b, UDP_CLOSED)).unwrap();
        }
        // Into the tun (never answered).
        let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        u.send_to(b"tun", (BEHIND_TUN4, UDP_TUN)).unwrap();
    })
    .unwrap();
    in_netns(&c, || {
        let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        u.send_to(b"from c", (B4, UDP_ECHO)).unwrap();
        let mut buf = [0u8; 16];
        u.recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("UDP echo from {B4} to c: {e}"));
    })
    .unwrap();

    for (what, answered, mut g) in running {
        let out = g.take().wait_with_output().unwrap();
        if answered {
            assert!(
                out.status.success(),
                "{what}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// One tcpdump, writing pcap to its stdout.
struct Capture {
    iface: String,
    proc: Guarded,
    pcap: Option<JoinHandle<Vec<u8>>>,
    stderr: mpsc::Receiver<String>,
    stderr_lines: Vec<String>,
    /// tcpdump refused the expression for this link type.
    refused: bool,
}

impl Capture {
    fn start(ns: &str, dev: &str, iface: String, expr: &str) -> Capture {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-i",
                dev,
                "-n",
                "--immediate-mode",
                "-U",
                "-w",
                "-",
                expr,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running tcpdump");
        let pcap = drain(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Capture {
            iface,
            proc: Guarded(Some(child)),
            pcap: Some(pcap),
            stderr,
            stderr_lines: Vec::new(),
            refused: false,
        }
    }

    /// Until "listening on", or tcpdump exited (refused the expression).
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let listening = line.contains("listening on");
                    self.stderr_lines.push(line);
                    if listening {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = self.proc.child().wait().unwrap();
                    let all = self.stderr_lines.join("\n");
                    assert!(
                        all.contains("expression rejects all packets"),
                        "tcpdump on {} exited ({st}) before listening: {all}",
                        self.iface
                    );
                    self.refused = true;
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "tcpdump on {} not listening after 10 s: {}",
                    self.iface,
                    self.stderr_lines.join("\n")
                ),
            }
        }
    }

    /// SIGINT, then the signatures of what it captured (empty if refused).
    fn stop(mut self) -> Result<Vec<String>, String> {
        if self.refused {
            return Ok(Vec::new());
        }
        let st = stop_child(
            &mut self.proc,
            Signal::SIGINT,
            &format!("tcpdump on {}", self.iface),
        );
        let pcap = self.pcap.take().unwrap().join().unwrap();
        self.stderr_lines.extend(self.stderr.iter());
        let err = self.stderr_lines.join("\n");
        if !st.success() {
            return Err(format!("tcpdump on {} exited {st}: {err}", self.iface));
        }
        // "N packets captured", "1 packet captured", ...
        let stat = |what: &str| -> Option<u64> {
            self.stderr_lines.iter().find_map(|l| {
                let (n, rest) = l.split_once(' ')?;
                (rest.replacen("packets", "packet", 1) == what)
                    .then(|| n.parse().ok())
                    .flatten()
            })
        };
        let (captured, received, dropped) = (
            stat("packet captured"),
            stat("packet received by filter"),
            stat("packet dropped by kernel"),
        );
        if dropped != Some(0) || captured.is_none() || captured != received {
            return Err(format!(
                "tcpdump on {} did not write every packet it was given: {err}",
                self.iface
            ));
        }
        let sigs = pcap_signatures(&pcap).map_err(|e| format!("pcap of {}: {e}", self.iface))?;
        if Some(sigs.len() as u64) != captured {
            return Err(format!(
                "tcpdump on {} captured {captured:?} packets, its pcap holds {}",
                self.iface,
                sigs.len()
            ));
        }
        Ok(sigs)
    }
}

/// A packet's identity as both tools can tell it.
#[derive(Default)]
struct Sig {
    proto: String,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    ports: Option<(u16, u16)>,
    /// type, code, and the 4 bytes after the checksum (id/seq for echo).
    icmp: Option<(u64, u64, u64, u64)>,
    tcp: Option<(String, u64, u64)>,
    arp_op: Option<u64>,
    ip_id: Option<u64>,
    ttl: Option<u64>,
}

impl Sig {
    fn render(&self) -> String {
        let mut s = self.proto.clone();
        if let (Some(a), Some(b)) = (self.src, self.dst) {
            s += &format!(" {a} > {b}");
        }
        if let Some((sp, dp)) = self.ports {
            s += &format!(" ports {sp} > {dp}");
        }
        if let Some((t, c, i, q)) = self.icmp {
            s += &format!(" type {t} code {c}");
            // Id and sequence are an echo's (hopscope prints them for
            // echoes only; other types have other fields there).
            if matches!(
                (self.proto.as_str(), t),
                ("icmp", 0 | 8) | ("icmp6", 128 | 129)
            ) {
                s += &format!(" id {i} seq {q}");
            }
        }
        if let Some((f, seq, ack)) = &self.tcp {
            s += &format!(" [{f}] seq {seq} ack {ack}");
        }
        if let Some(op) = self.arp_op {
            s += &format!(" op {op}");
        }
        if let Some(id) = self.ip_id {
            s += &format!(" id {id}");
        }
        if let Some(t) = self.ttl {
            s += &format!(" ttl {t}");
        }
        s
    }
}

/// TCP flags in hopscope's (tcpdump's) notation.
fn tcp_flags(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(0x02, 'S'), (0x01, 'F'), (0x08, 'P'), (0x04, 'R')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if f & 0x10 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// L4 as hopscope parses it: the first header after IP, extension headers
/// not walked (their packets are "ip6").
fn l4_sig(sig: &mut Sig, proto: u8, l4: &[u8], v6: bool) {
    sig.proto = match (proto, v6) {
        (6, _) => "tcp",
        (17, _) => "udp",
        (1, false) => "icmp",
        (58, true) => "icmp6",
        (_, false) => "ip",
        (_, true) => "ip6",
    }
    .to_owned();
    match sig.proto.as_str() {
        "tcp" => {
            sig.ports = be16(l4, 0).zip(be16(l4, 2));
            if let (Some(seq), Some(ack), Some(&fl)) = (be32(l4, 4), be32(l4, 8), l4.get(13)) {
                sig.tcp = Some((tcp_flags(fl), seq.into(), ack.into()));
            }
        }
        "udp" => sig.ports = be16(l4, 0).zip(be16(l4, 2)),
        "icmp" | "icmp6" => {
            if let (Some(&t), Some(&c), Some(i), Some(q)) =
                (l4.first(), l4.get(1), be16(l4, 4), be16(l4, 6))
            {
                sig.icmp = Some((t.into(), c.into(), i.into(), q.into()));
            }
        }
        _ => {}
    }
}

fn l3_sig(ethertype: u16, p: &[u8]) -> Sig {
    let mut sig = Sig::default();
    match ethertype {
        0x0800 if p.len() >= 20 && p[0] >> 4 == 4 => {
            sig.src = Some(Ipv4Addr::new(p[12], p[13], p[14], p[15]).into());
            sig.dst = Some(Ipv4Addr::new(p[16], p[17], p[18], p[19]).into());
            sig.ip_id = be16(p, 4).map(u64::from);
            sig.ttl = Some(p[8].into());
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let first_fragment = be16(p, 6).is_some_and(|f| f & 0x1fff == 0);
            if first_fragment {
                l4_sig(&mut sig, p[9], p.get(ihl..).unwrap_or(&[]), false);
            } else {
                sig.proto = "ip".to_owned();
            }
        }
        0x86dd if p.len() >= 40 && p[0] >> 4 == 6 => {
            let addr = |at: usize| {
                let b: [u8; 16] = p[at..at + 16].try_into().unwrap();
                IpAddr::from(Ipv6Addr::from(b))
            };
            sig.src = Some(addr(8));
            sig.dst = Some(addr(24));
            sig.ttl = Some(p[7].into());
            l4_sig(&mut sig, p[6], &p[40..], true);
        }
        0x0806 if p.len() >= 8 => {
            sig.proto = "arp".to_owned();
            sig.arp_op = be16(p, 6).map(u64::from);
            if be16(p, 2) == Some(0x0800) && p[5] == 4 && p.len() >= 28 {
                sig.src = Some(Ipv4Addr::new(p[14], p[15], p[16], p[17]).into());
                sig.dst = Some(Ipv4Addr::new(p[24], p[25], p[26], p[27]).into());
            }
        }
        _ => sig.proto = "ether".to_owned(),
    }
    sig
}

/// Classic pcap: a 24-byte header (magic, version, ..., linktype), then
/// per packet a 16-byte header (ts_sec, ts_frac, caplen, len) and caplen
/// bytes. Ethernet (1) and raw IP (101, or 12/228/229).
fn pcap_signatures(data: &[u8]) -> Result<Vec<String>, String> {
    let head: [u8; 4] = data.get(..4).ok_or("no pcap header")?.try_into().unwrap();
    let le = match head {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(format!("not a pcap file (magic {head:02x?})")),
    };
    let word = |at: usize| -> Result<u32, String> {
        let b: [u8; 4] = data.get(at..at + 4).ok_or("truncated")?.try_into().unwrap();
        Ok(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let linktype = word(20)? & 0x03ff_ffff;
    let mut sigs = Vec::new();
    let mut off = 24;
    while off < data.len() {
        let caplen = word(off + 8)? as usize;
        let pkt = data
            .get(off + 16..off + 16 + caplen)
            .ok_or("truncated packet record")?;
        let sig = match linktype {
            1 => be16(pkt, 12)
                .map(|et| l3_sig(et, &pkt[14..]))
                .ok_or("short Ethernet frame")?,
            12 | 101 | 228 | 229 => match pkt.first().map(|b| b >> 4) {
                Some(4) => l3_sig(0x0800, pkt),
                Some(6) => l3_sig(0x86dd, pkt),
                _ => Sig {
                    proto: "raw ?".to_owned(),
                    ..Sig::default()
                },
            },
            other => return Err(format!("unexpected linktype {other}")),
        };
        sigs.push(sig.render());
        off += 16 + caplen;
    }
    Ok(sigs)
}

/// The signature of one JSON hop record (None without headers, as on
/// `net_dev_xmit`).
fn json_sig(v: &Value) -> Option<Sig> {
    let proto = v["proto"].as_str()?.to_owned();
    let num = |k: &str| v[k].as_u64();
    let addr = |k: &str| v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
    let mut sig = Sig {
        src: addr("src"),
        dst: addr("dst"),
        ip_id: num("ip_id"),
        ttl: num("ttl"),
        arp_op: num("arp_op"),
        ..Sig::default()
    };
    match proto.as_str() {
        "tcp" | "udp" => {
            sig.ports = num("sport")
                .zip(num("dport"))
                .map(|(s, d)| (s as u16, d as u16));
            if proto == "tcp" {
                sig.tcp = Some((
                    v["tcp_flags"].as_str().unwrap_or("?").to_owned(),
                    num("tcp_seq").unwrap_or(u64::MAX),
                    num("tcp_ack").unwrap_or(u64::MAX),
                ));
            }
        }
        "icmp" | "icmp6" => {
            sig.icmp = Some((
                num("icmp_type").unwrap_or(u64::MAX),
                num("icmp_code").unwrap_or(u64::MAX),
                num("icmp_id").unwrap_or(u64::MAX),
                num("icmp_seq").unwrap_or(u64::MAX),
            ));
        }
        _ => {}
    }
    sig.proto = proto;
    Some(sig)
}

/// One visit as hopscope reported it: signature and the hooks seen.
struct Visit {
    sig: String,
    packet: u64,
    hooks: Vec<String>,
}

/// hopscope's visits per interface label; visits elsewhere under "other".
fn hopscope_visits(lab: &Lab, lines: &[Value]) -> BTreeMap<String, Vec<Visit>> {
    let names: BTreeMap<u64, &str> = ["a", "r", "b", "c"]
        .into_iter()
        .map(|r| (lab.inode(r), r))
        .collect();
    // (packet, visit, interface) -> (signature of its first record with
    // headers, hooks). A visit is on one device; keyed by it all the same.
    type Seen = (Option<String>, Vec<String>);
    let mut visits: BTreeMap<(u64, u64, String), Seen> = BTreeMap::new();
    // What tcpdump can see: not the steps no tracepoint showed (a device
    // a packet was handed to and died at, `inferred`).
    for v in lines
        .iter()
        .filter(|v| v["type"] == "hop" && v["inferred"] != true)
    {
        let Some(ns) = v["netns"].as_u64() else {
            continue; // socket delivery: no device
        };
        let iface = match names.get(&ns) {
            Some(role) => label(role, v["ifname"].as_str().unwrap_or("?")),
            None => format!("other netns {ns} {}", v["ifname"]),
        };
        let key = (
            v["packet"].as_u64().unwrap_or(0),
            v["visit"].as_u64().unwrap_or(0),
            iface,
        );
        let e = visits.entry(key).or_default();
        e.1.push(v["hook"].as_str().unwrap_or("?").to_owned());
        if e.0.is_none() {
            e.0 = json_sig(v).map(|s| s.render());
        }
    }
    let mut out: BTreeMap<String, Vec<Visit>> = BTreeMap::new();
    for ((packet, _, iface), (sig, hooks)) in visits {
        out.entry(iface).or_default().push(Visit {
            sig: sig.unwrap_or_else(|| "<no headers>".to_owned()),
            packet,
            hooks,
        });
    }
    out
}

fn multiset<'a>(sigs: impl IntoIterator<Item = &'a String>) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for s in sigs {
        *m.entry(s.as_str()).or_insert(0) += 1;
    }
    m
}

/// Runs one expression; returns per-interface (tcpdump, hopscope) counts
/// and the failures.
fn run_expression(lab: &Lab, expr: &str, nonempty: &[&str]) -> (String, Vec<String>) {
    let mut failures = Vec::new();
    lab.flush_neighbours();

    let mut args = vec!["trace", "--json", "--filter", expr];
    let traced: Vec<String> = TRACED.iter().map(|r| lab.ns(r)).collect();
    for ns in &traced {
        args.extend(["--netns", ns.as_str()]);
    }
    let mut child = Command::new(bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running hopscope");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let mut trace = Guarded(Some(child));
    if !wait_attached(trace.child().id(), Duration::from_secs(30)) {
        signal(trace.child(), Signal::SIGKILL);
        let st = trace.take().wait().unwrap();
        panic!(
            "`{expr}`: hopscope did not attach within 30 s ({st}): {}",
            String::from_utf8_lossy(&err.join().unwrap())
        );
    }

    let mut caps: Vec<Capture> = IFACES
        .iter()
        .map(|(role, dev)| Capture::start(&lab.ns(role), dev, label(role, dev), expr))
        .collect();
    for c in &mut caps {
        c.wait_listening();
    }

    traffic(lab);
    std::thread::sleep(SETTLE);

    let mut captured: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in caps {
        let iface = c.iface.clone();
        let refused = c.refused;
        match c.stop() {
            Ok(sigs) => {
                captured.insert(iface.clone(), sigs);
            }
            Err(e) => failures.push(format!("`{expr}`: {e}")),
        }
        if refused {
            println!("  `{expr}` on {iface}: tcpdump refuses it (rejects all packets there)");
        }
    }

    let st = stop_child(&mut trace, Signal::SIGINT, "hopscope");
    let stdout = out.join().unwrap();
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert!(st.success(), "`{expr}`: hopscope exited {st}: {stderr}");
    let lines = json_lines(&stdout);
    let s = summary(&lines);
    for (k, want) in [("lost", 0), ("decode_errors", 0), ("channel_dropped", 0)] {
        if s[k].as_u64() != Some(want) {
            failures.push(format!("`{expr}`: summary {k} is {}: {s}", s[k]));
        }
    }
    if s["emitted"].as_u64()
        != Some(s["received"].as_u64().unwrap_or(0) + s["lost"].as_u64().unwrap_or(0))
    {
        failures.push(format!("`{expr}`: emitted != received + lost: {s}"));
    }
    let reported = hopscope_visits(lab, &lines);

    let mut table = format!("{expr:<32}");
    let known: BTreeSet<String> = IFACES.iter().map(|(r, d)| label(r, d)).collect();
    for (iface, visits) in &reported {
        if !known.contains(iface) {
            let v: Vec<String> = visits
                .iter()
                .map(|v| format!("packet {} {} ({})", v.packet, v.sig, v.hooks.join(",")))
                .collect();
            failures.push(format!(
                "`{expr}`: hopscope reported {} visits on {iface}, where nothing was expected: {v:#?}",
                visits.len()
            ));
        }
    }
    for (role, dev) in IFACES {
        let iface = label(role, dev);
        let Some(tcpdump) = captured.get(&iface) else {
            table += &format!(" {iface}=?");
            continue;
        };
        let none = Vec::new();
        let visits = reported.get(&iface).unwrap_or(&none);
        table += &format!(" {iface}={}/{}", tcpdump.len(), visits.len());
        let want = multiset(tcpdump);
        let got = multiset(visits.iter().map(|v| &v.sig));
        if want != got {
            let mut only_tcpdump = Vec::new();
            let mut only_hopscope = Vec::new();
            for (sig, n) in &want {
                let m = got.get(sig).copied().unwrap_or(0);
                if m < *n {
                    only_tcpdump.push(format!("{}x {sig}", n - m));
                }
            }
            for (sig, n) in &got {
                let m = want.get(sig).copied().unwrap_or(0);
                if m < *n {
                    let ids: Vec<String> = visits
                        .iter()
                        .filter(|v| v.sig == *sig)
                        .map(|v| format!("packet {} ({})", v.packet, v.hooks.join(",")))
                        .collect();
                    only_hopscope.push(format!("{}x {sig}  [{}]", n - m, ids.join("; ")));
                }
            }
            // A visit that both received and sent on one device is, in this
            // lab, two packets hopscope took for one (a reused sk_buff).
            let rx = ["netif_rx", "netif_receive_skb", "napi_gro_receive_entry"];
            let merged: Vec<String> = visits
                .iter()
                .filter(|v| {
                    v.hooks.iter().any(|h| rx.contains(&h.as_str()))
                        && v.hooks.iter().any(|h| h == "net_dev_queue")
                })
                .map(|v| format!("packet {} ({}): {}", v.packet, v.hooks.join(","), v.sig))
                .collect();
            failures.push(format!(
                "`{expr}` on {iface}: tcpdump {} packets, hopscope {} visits\n  only tcpdump:\n    {}\n  only hopscope:\n    {}\n  hopscope visits that received and sent (two packets as one?):\n    {}",
                tcpdump.len(),
                visits.len(),
                only_tcpdump.join("\n    "),
                only_hopscope.join("\n    "),
                merged.join("\n    ")
            ));
        }
        let expect_some = nonempty.contains(&iface.as_str());
        if expect_some == tcpdump.is_empty() {
            failures.push(format!(
                "`{expr}` on {iface}: the traffic should {}match there, tcpdump captured {}: {tcpdump:#?}",
                if expect_some { "" } else { "not " },
                tcpdump.len()
            ));
        }
    }
    (table, failures)
}

#[test]
fn kernel_filter_reports_what_tcpdump_captures_on_every_interface() {
    let _s = serial();
    require_root();
    let t0 = Instant::now();
    let lab = Lab::build();

    let all = ["a/eth0", "r/ra", "r/rc", "r/rb", "r/tun0", "b/eth0"];
    let ether = ["a/eth0", "r/ra", "r/rc", "r/rb", "b/eth0"];
    let a_b = ["a/eth0", "r/ra", "r/rb", "b/eth0"];
    let cases: Vec<(String, Vec<&str>)> = vec![
        // Pings everywhere, the port unreachable from b.
        ("icmp".to_owned(), all.to_vec()),
        // b's IPv4 traffic with a and c, and ARP for it; nothing on the tun.
        (format!("host {B4}"), ether.to_vec()),
        // Replies to a (and ARP asking for a, if any) cross a–r and r–b.
        (format!("dst host {A4}"), a_b.to_vec()),
        // a's IPv4 traffic: to b, to r, into the tun; not c's.
        (
            "net 198.18.30.0/24".to_owned(),
            vec!["a/eth0", "r/ra", "r/rb", "r/tun0", "b/eth0"],
        ),
        // The connections to b over both families; not the SYN to r.
        (format!("tcp port {TCP_PORT}"), a_b.to_vec()),
        // The closed port and the tun's UDP; not the echoes (c only echoes).
        (
            format!("udp and not port {UDP_ECHO}"),
            vec!["a/eth0", "r/ra", "r/rb", "r/tun0", "b/eth0"],
        ),
        // IPv4 SYN and SYN-ACK to b, SYN to r's closed port (IPv4 only).
        ("tcp[tcpflags] & tcp-syn != 0".to_owned(), a_b.to_vec()),
        // Pings, TCP, UDP, ND, into the tun.
        ("ip6".to_owned(), all.to_vec()),
        // Every Ethernet link; tcpdump refuses `arp` on the raw tun.
        ("arp".to_owned(), ether.to_vec()),
    ];

    let mut failures = Vec::new();
    let mut tables = Vec::new();
    for (expr, nonempty) in &cases {
        let t = Instant::now();
        let (table, f) = run_expression(&lab, expr, nonempty);
        let verdict = if f.is_empty() { "ok" } else { "FAIL" };
        let line = format!("{verdict:<4} {table}  ({:.1}s)", t.elapsed().as_secs_f64());
        println!("{line}");
        tables.push(line);
        failures.extend(f);
    }
    drop(lab);
    println!(
        "tcpdump/hopscope per interface, {} expressions in {:.1}s",
        cases.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "hopscope's kernel filter and tcpdump disagree:\n{}\n\n{}",
        tables.join("\n"),
        failures.join("\n\n")
    );
    assert_no_programs_left();
}
