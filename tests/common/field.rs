//! Field topologies: the setups people actually debug, built inside network
//! namespaces this module owns, plus the ground truth to check hopscope
//! against.
//!
//! Topologies (each a builder whose value tears everything down in `Drop`,
//! also when a test panics):
//! - [`PublishedPort`]: a docker-style published port (nftables DNAT in
//!   prerouting, TCP and UDP, MASQUERADE in postrouting for container egress)
//!   with a client, a container on a bridge and an outside namespace.
//! - [`VxlanOverlay`]: two nodes joined by an underlay veth, each with a
//!   bridge, a VXLAN device (VNI 42, port 4789 or Linux's 8472) and a pod;
//!   the pods share one L2 subnet, IPv4 and IPv6.
//! - [`Macvlan`]: two macvlan children (mode bridge) of one veth parent,
//!   moved into two namespaces, and the far end of the parent's veth.
//! - [`Gso`]: a TCP bulk sender with TSO/GSO off (software GSO) or on,
//!   across a veth or a bridge.
//! - [`BridgeTap`]: a bridge with two ports, for tcpdump on the bridge.
//! - [`V6Router`]: a router namespace between two dual-stack subnets; MLD on
//!   a link flap; 802.1Q frames (VID 0 priority tags too) injected with a
//!   packet socket.
//! - [`Busy`]: a namespace pair sending UDP to closed ports and pings, the
//!   neighbours of a scoped trace.
//!
//! Ground truth: [`run`] and [`Netns::exec`] run a command with a deadline;
//! [`Server`] is an in-process TCP/UDP server inside a namespace that records
//! the peers it saw (the post-NAT source); [`Tcpdump`] captures on one
//! interface in one namespace (`tcpdump -w -`, read back from the pipe) and
//! [`Frame`] is one captured frame as a comparable record (addresses, IP id,
//! ICMP id/seq, TCP seq/flags in hopscope's notation, ports, VLAN tags, VXLAN
//! VNI and the inner frame). Every wait is bounded by a deadline.
//!
//! Network safety: nothing is created in the root namespace (veth peers are
//! created straight into their namespaces), no namespace gets a default
//! route, and only 198.18.0.0/15 and 2001:2::/48 are used. Names are
//! `PREFIX-role`, with PREFIX from [`field_prefix`].
//!
//! This file uses only std, nix and serde_json, so `examples/field.rs` can
//! include it to hold a topology up for manual runs.
#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Deadline of one setup command (`ip`, `nft`, `sysctl`, `ethtool`).
pub const SETUP: Duration = Duration::from_secs(10);

/// A unique prefix for one test: `hf` + tag + this process's id.
pub fn field_prefix(tag: &str) -> String {
    format!("hf{}{}", tag, std::process::id() % 100_000)
}

/// `HF_TRACE=1` prints each command with its duration, tcpdump's start-up
/// time and each teardown's (to stderr; `--nocapture` shows them).
fn trace() -> bool {
    std::env::var_os("HF_TRACE").is_some()
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "field topologies need root (CI runs as root); refusing to skip"
    );
}

// ---------------------------------------------------------------------------
// Commands with deadlines.

/// A pipe drained on a thread, so a full pipe never blocks the program.
struct Pipe {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
}

impl Pipe {
    fn drain<R: Read + Send + 'static>(mut r: R) -> Pipe {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(AtomicBool::new(false));
        let (b, e) = (buf.clone(), eof.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        Pipe { buf, eof }
    }

    fn bytes(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Done {
    pub cmd: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// Raw stdout (a pcap stream, for tcpdump).
    pub raw: Vec<u8>,
    /// The deadline passed and the process group was killed.
    pub timed_out: bool,
    pub took: Duration,
}

impl Done {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// Panics with the whole story unless the command succeeded in time.
    pub fn ok(self) -> Done {
        assert!(self.success(), "{self}");
        self
    }
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {} after {:?}\n--- stdout\n{}--- stderr\n{}",
            self.cmd,
            if self.timed_out {
                "TIMED OUT".to_owned()
            } else {
                format!("{:?}", self.status)
            },
            self.took,
            self.stdout,
            self.stderr
        )
    }
}

/// A running program in its own process group, killed (the whole group) in
/// `Drop` if it was not reaped.
pub struct Proc {
    cmd: String,
    child: Child,
    out: Pipe,
    err: Pipe,
    started: Instant,
    reaped: bool,
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(|a| {
            if a.contains(' ') || a.is_empty() {
                format!("'{a}'")
            } else {
                a.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Proc {
    pub fn spawn(program: &str, args: &[&str]) -> Proc {
        let cmd = command_line(program, args);
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{cmd}`: {e}"));
        let out = Pipe::drain(child.stdout.take().expect("piped stdout"));
        let err = Pipe::drain(child.stderr.take().expect("piped stderr"));
        Proc {
            cmd,
            child,
            out,
            err,
            started: Instant::now(),
            reaped: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_now(&self) -> String {
        self.out.text()
    }

    pub fn stderr_now(&self) -> String {
        self.err.text()
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        !self.reaped && matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until stderr contains `needle` (true), the program exits or
    /// `limit` passes (false).
    pub fn wait_stderr(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.err.text().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline || !self.running() {
                return self.err.text().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to the program's process group.
    pub fn signal(&self, sig: Signal) {
        if !self.reaped {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), sig);
        }
    }

    /// Waits for the program to exit, up to `limit`; past it the group is
    /// killed and the result says `timed_out`.
    pub fn finish(mut self, limit: Duration) -> Done {
        self.reap(limit)
    }

    /// Sends `sig`, then [`Proc::finish`] within `limit`.
    pub fn stop(self, sig: Signal, limit: Duration) -> Done {
        self.signal(sig);
        self.finish(limit)
    }

    fn reap(&mut self, limit: Duration) -> Done {
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    timed_out = true;
                    let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
                    break self.child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        self.reaped = true;
        // Children that outlive the program may hold the pipes: bounded.
        let drained = Instant::now() + Duration::from_millis(500);
        while !(self.out.eof.load(Ordering::SeqCst) && self.err.eof.load(Ordering::SeqCst))
            && Instant::now() < drained
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let raw = self.out.bytes();
        if trace() {
            eprintln!("field: {:?} {}", self.started.elapsed(), self.cmd);
        }
        Done {
            cmd: self.cmd.clone(),
            status,
            stdout: String::from_utf8_lossy(&raw).into_owned(),
            stderr: self.err.text(),
            raw,
            timed_out,
            took: self.started.elapsed(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

/// Runs `program args` with no stdin, killed after `limit`.
pub fn run(program: &str, args: &[&str], limit: Duration) -> Done {
    Proc::spawn(program, args).finish(limit)
}

/// Runs a setup command; panics with its stderr unless it succeeds.
pub fn must(program: &str, args: &[&str]) -> String {
    run(program, args, SETUP).ok().stdout
}

/// `ip -n NS ARGS`, which must succeed.
pub fn ipn(ns: &str, args: &[&str]) {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    must("ip", &all);
}

/// `ip netns exec NS ARGS` with a deadline.
pub fn in_ns(ns: &str, args: &[&str], limit: Duration) -> Done {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all, limit)
}

/// `ip netns exec NS sh -c SCRIPT` with a deadline.
pub fn sh_in(ns: &str, script: &str, limit: Duration) -> Done {
    in_ns(ns, &["sh", "-c", script], limit)
}

/// `ip netns exec NS ARGS` in the background.
pub fn spawn_in(ns: &str, args: &[&str]) -> Proc {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    Proc::spawn("ip", &all)
}

/// `ip netns exec NS ARGS` as one argument vector (for `hopscope trace -- ...`).
pub fn exec_argv(ns: &str, args: &[&str]) -> Vec<String> {
    ["ip", "netns", "exec", ns]
        .iter()
        .chain(args.iter())
        .map(|s| (*s).to_owned())
        .collect()
}

/// The `(transmitted, received)` of ping's summary line.
pub fn ping_counts(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let tx = nums.next()?.parse().ok()?;
    let rx = nums.next()?.parse().ok()?;
    Some((tx, rx))
}

// ---------------------------------------------------------------------------
// Namespaces and links.

/// One named network namespace, deleted in `Drop`.
pub struct Netns {
    name: String,
    inode: u64,
}

impl Netns {
    /// Creates `name` (removing a leftover of that name first), brings `lo`
    /// up and makes IPv6 quiet and immediate: no DAD, no router
    /// solicitations, no RAs accepted. `forwarding` turns on IPv4 and IPv6
    /// forwarding (a router or docker host).
    pub fn create(name: &str, forwarding: bool) -> Netns {
        require_root();
        if std::path::Path::new(&format!("/run/netns/{name}")).exists() {
            let _ = run("ip", &["netns", "del", name], SETUP);
        }
        must("ip", &["netns", "add", name]);
        let inode = std::fs::metadata(format!("/run/netns/{name}"))
            .unwrap_or_else(|e| panic!("stat /run/netns/{name}: {e}"))
            .ino();
        let ns = Netns {
            name: name.to_owned(),
            inode,
        };
        let fwd = if forwarding { "1" } else { "0" };
        ns.sysctl(&[
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv6.conf.all.router_solicitations", "0"),
            ("net.ipv6.conf.default.router_solicitations", "0"),
            ("net.ipv6.conf.all.accept_ra", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
            ("net.ipv4.ip_forward", fwd),
            ("net.ipv6.conf.all.forwarding", fwd),
        ]);
        ipn(name, &["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's `ns.inum`, as hopscope reports it.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// `sysctl -w` inside the namespace; each must succeed.
    pub fn sysctl(&self, kv: &[(&str, &str)]) {
        let sets: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["netns", "exec", &self.name, "sysctl", "-q", "-w"];
        args.extend(sets.iter().map(String::as_str));
        must("ip", &args);
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        ipn(&self.name, args)
    }

    pub fn exec(&self, args: &[&str], limit: Duration) -> Done {
        in_ns(&self.name, args, limit)
    }

    pub fn sh(&self, script: &str, limit: Duration) -> Done {
        sh_in(&self.name, script, limit)
    }

    pub fn spawn(&self, args: &[&str]) -> Proc {
        spawn_in(&self.name, args)
    }

    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> [u8; 6] {
        let out = must("ip", &["-n", &self.name, "-o", "link", "show", "dev", dev]);
        let text = out
            .split("link/ether ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("no MAC for {dev} in {}: {out}", self.name));
        parse_mac(text).unwrap_or_else(|| panic!("bad MAC {text}"))
    }

    /// The ifindex of `dev`.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = must("ip", &["-n", &self.name, "-o", "link", "show", "dev", dev]);
        out.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ifindex in {out}"))
    }

    /// Waits until every device in `devs` is operationally UP (or UNKNOWN,
    /// what tunnels report), up to `limit`.
    pub fn wait_up(&self, devs: &[&str], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let out = must("ip", &["-n", &self.name, "-br", "link"]);
            let pending: Vec<String> = devs
                .iter()
                .filter_map(|dev| {
                    let state = out
                        .lines()
                        .find(|l| {
                            l.split_whitespace().next().map(|n| n.split('@').next())
                                == Some(Some(*dev))
                        })
                        .and_then(|l| l.split_whitespace().nth(1))
                        .unwrap_or("MISSING");
                    (state != "UP" && state != "UNKNOWN").then(|| format!("{dev} is {state}"))
                })
                .collect();
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: links not up after {limit:?}: {}",
                self.name,
                pending.join(", ")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let done = run("ip", &["netns", "del", &self.name], SETUP);
        if !done.success() {
            eprintln!("field: removing netns {}: {done}", self.name);
        }
    }
}

/// The namespaces of one topology, removed in `Drop` (newest first).
pub struct Field {
    pub prefix: String,
    ns: Vec<Netns>,
}

impl Field {
    pub fn new(prefix: &str) -> Field {
        require_root();
        assert!(
            prefix.len() <= 20 && prefix.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad field prefix {prefix:?}"
        );
        Field {
            prefix: prefix.to_owned(),
            ns: Vec::new(),
        }
    }

    /// Creates `PREFIX-role` and returns its full name.
    pub fn add(&mut self, role: &str, forwarding: bool) -> String {
        let name = format!("{}-{role}", self.prefix);
        self.ns.push(Netns::create(&name, forwarding));
        name
    }

    /// The namespace called `name` (full name).
    pub fn get(&self, name: &str) -> &Netns {
        self.ns
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no namespace {name} in field {}", self.prefix))
    }

    pub fn names(&self) -> Vec<String> {
        self.ns.iter().map(|n| n.name.clone()).collect()
    }

    pub fn inodes(&self) -> Vec<u64> {
        self.ns.iter().map(|n| n.inode).collect()
    }

    pub fn inode(&self, name: &str) -> u64 {
        self.get(name).inode
    }

    /// A veth pair created inside `a_ns` with its peer straight in `b_ns`.
    pub fn veth(&self, a_ns: &str, a_dev: &str, b_ns: &str, b_dev: &str) {
        ipn(
            a_ns,
            &[
                "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b_ns,
            ],
        );
    }

    /// A bridge without STP and with no forward delay.
    pub fn bridge(&self, ns: &str, name: &str) {
        ipn(
            ns,
            &[
                "link",
                "add",
                name,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ],
        );
    }

    /// Makes `port` a port of `bridge`, without a link-local address.
    pub fn port(&self, ns: &str, port: &str, bridge: &str) {
        ipn(ns, &["link", "set", port, "addrgenmode", "none"]);
        ipn(ns, &["link", "set", port, "master", bridge]);
    }

    /// Adds an address (`nodad` for IPv6).
    pub fn addr(&self, ns: &str, dev: &str, cidr: &str) {
        if cidr.contains(':') {
            ipn(ns, &["addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            ipn(ns, &["addr", "add", cidr, "dev", dev]);
        }
    }

    pub fn up(&self, ns: &str, devs: &[&str]) {
        for dev in devs {
            ipn(ns, &["link", "set", dev, "up"]);
        }
    }

    /// A route inside the lab ranges (never a default route).
    pub fn route(&self, ns: &str, dst: &str, via: &str) {
        assert!(
            dst.starts_with("198.18.") || dst.starts_with("198.19.") || dst.starts_with("2001:2:"),
            "route outside the lab ranges: {dst}"
        );
        let fam = if dst.contains(':') { "-6" } else { "-4" };
        ipn(ns, &[fam, "route", "add", dst, "via", via]);
    }
}

impl Drop for Field {
    fn drop(&mut self) {
        let t0 = Instant::now();
        while let Some(ns) = self.ns.pop() {
            drop(ns);
        }
        if trace() {
            eprintln!("field: teardown {:?}", t0.elapsed());
        }
    }
}

// ---------------------------------------------------------------------------
// In-process servers inside a namespace.

/// What a [`Server`] does with what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Echoes TCP bytes back until the peer closes.
    TcpEcho,
    /// Reads and counts TCP bytes until the peer closes.
    TcpSink,
    /// Echoes each UDP datagram to its sender.
    UdpEcho,
}

/// One peer a server saw: its address as the server saw it (after NAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub peer: SocketAddr,
    pub bytes: u64,
    /// The peer closed (TCP) or the datagram was answered (UDP).
    pub done: bool,
}

/// A server on a thread that joined a namespace (its socket lives there),
/// stopped and joined in `Drop`.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<JoinHandle<()>>,
}

/// Joins the namespace `ns` on the calling thread.
fn enter(ns: &str) {
    let f =
        File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("open netns {ns}: {e}"));
    setns(&f, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {ns}: {e}"));
}

impl Server {
    /// Starts serving `addr` in `ns`; returns once the socket is bound.
    pub fn start(ns: &str, kind: Serve, addr: SocketAddr) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        let (st, se, name) = (stop.clone(), seen.clone(), ns.to_owned());
        let thread = std::thread::spawn(move || {
            enter(&name);
            match kind {
                Serve::TcpEcho | Serve::TcpSink => {
                    let l = match TcpListener::bind(addr).and_then(|l| {
                        l.set_nonblocking(true)?;
                        Ok(l)
                    }) {
                        Ok(l) => l,
                        Err(e) => return drop(tx.send(Err(e.to_string()))),
                    };
                    let _ = tx.send(Ok(()));
                    while !st.load(Ordering::SeqCst) {
                        match l.accept() {
                            Ok((s, peer)) => serve_tcp(s, peer, kind == Serve::TcpEcho, &st, &se),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(2))
                            }
                            Err(_) => break,
                        }
                    }
                }
                Serve::UdpEcho => {
                    let s = match UdpSocket::bind(addr).and_then(|s| {
                        s.set_read_timeout(Some(Duration::from_millis(20)))?;
                        Ok(s)
                    }) {
                        Ok(s) => s,
                        Err(e) => return drop(tx.send(Err(e.to_string()))),
                    };
                    let _ = tx.send(Ok(()));
                    let mut buf = vec![0u8; 65536];
                    while !st.load(Ordering::SeqCst) {
                        match s.recv_from(&mut buf) {
                            Ok((n, peer)) => {
                                let done = s.send_to(&buf[..n], peer).is_ok();
                                se.lock().unwrap().push(Seen {
                                    peer,
                                    bytes: n as u64,
                                    done,
                                });
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                }
            }
        });
        match rx.recv_timeout(SETUP) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("server {kind:?} on {addr} in {ns}: {e}"),
            Err(e) => panic!("server {kind:?} on {addr} in {ns} did not start: {e}"),
        }
        Server {
            addr,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on what the server saw, up to `limit`;
    /// returns what it saw then.
    pub fn wait(&self, pred: impl Fn(&[Seen]) -> bool, limit: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.seen();
            if pred(&seen) || Instant::now() >= deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Forgets what the server saw so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn serve_tcp(
    mut s: TcpStream,
    peer: SocketAddr,
    echo: bool,
    stop: &AtomicBool,
    seen: &Mutex<Vec<Seen>>,
) {
    let idx = {
        let mut v = seen.lock().unwrap();
        v.push(Seen {
            peer,
            bytes: 0,
            done: false,
        });
        v.len() - 1
    };
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => {
                seen.lock().unwrap()[idx].done = true;
                break;
            }
            Ok(n) => {
                seen.lock().unwrap()[idx].bytes += n as u64;
                if echo && s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("an address"), port)
}

/// A shell line that sends `msg` (a newline added) to `ip:port` and prints
/// the answer: TCP with ncat (it half-closes on EOF and exits when the
/// server closes; `-i` would keep it waiting), UDP with a python3 client
/// that waits up to 2 s for the answer (ncat -u races its stdin's EOF
/// against the answer and sometimes exits before it, status 0).
pub fn client_line(msg: &str, ip: &str, port: u16, udp: bool) -> String {
    if udp {
        let fam = if ip.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        format!(
            "/usr/bin/python3 -c 'import socket,sys\n\
             s=socket.socket(socket.{fam},socket.SOCK_DGRAM)\n\
             s.settimeout(2)\n\
             s.sendto(sys.argv[1].encode()+b\"\\n\",(sys.argv[2],int(sys.argv[3])))\n\
             sys.stdout.write(s.recvfrom(65536)[0].decode())' '{msg}' {ip} {port}"
        )
    } else {
        format!("printf '%s\\n' '{msg}' | ncat -w 2 {ip} {port}")
    }
}

// ---------------------------------------------------------------------------
// tcpdump and captured frames.

/// How to capture: interface, namespace, promiscuity, direction and filter.
#[derive(Debug, Clone)]
pub struct Tcpdump {
    ns: String,
    iface: String,
    promisc: bool,
    direction: Option<&'static str>,
    filter: Vec<String>,
}

impl Tcpdump {
    /// On `iface` in `ns`, not promiscuous (`-p`): tcpdump would otherwise
    /// switch the device to promiscuous mode, which changes what a bridge
    /// does with every frame (issue 14); [`Tcpdump::promisc`] asks for it.
    pub fn on(ns: &str, iface: &str) -> Tcpdump {
        Tcpdump {
            ns: ns.to_owned(),
            iface: iface.to_owned(),
            promisc: false,
            direction: None,
            filter: Vec::new(),
        }
    }

    pub fn promisc(mut self) -> Tcpdump {
        self.promisc = true;
        self
    }

    /// Only frames the device received (`-Q in`).
    pub fn inbound(mut self) -> Tcpdump {
        self.direction = Some("in");
        self
    }

    /// Only frames the device sent (`-Q out`).
    pub fn outbound(mut self) -> Tcpdump {
        self.direction = Some("out");
        self
    }

    /// A pcap-filter expression.
    pub fn filter(mut self, expr: &str) -> Tcpdump {
        self.filter = expr.split_whitespace().map(str::to_owned).collect();
        self
    }

    /// Starts tcpdump and waits (bounded) until it is listening.
    pub fn start(self) -> Capture {
        let mut args: Vec<&str> = vec![
            "tcpdump",
            "-i",
            &self.iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            "262",
            "-w",
            "-",
        ];
        if !self.promisc {
            args.push("-p");
        }
        if let Some(d) = self.direction {
            args.extend(["-Q", d]);
        }
        args.extend(self.filter.iter().map(String::as_str));
        let mut proc = spawn_in(&self.ns, &args);
        let t0 = Instant::now();
        let listening = proc.wait_stderr("listening on", SETUP);
        if trace() {
            eprintln!("field: tcpdump listening after {:?}", t0.elapsed());
        }
        assert!(
            listening,
            "tcpdump on {} in {} did not start: {}",
            self.iface,
            self.ns,
            proc.stderr_now()
        );
        Capture {
            proc,
            ns: self.ns,
            iface: self.iface,
        }
    }
}

/// A running capture.
pub struct Capture {
    proc: Proc,
    pub ns: String,
    pub iface: String,
}

/// A finished capture.
#[derive(Debug, Clone)]
pub struct Captured {
    pub ns: String,
    pub iface: String,
    pub frames: Vec<Frame>,
    /// tcpdump's "packets dropped by kernel".
    pub dropped_by_kernel: Option<u64>,
    pub stderr: String,
}

impl Captured {
    /// The frames `pred` selects.
    pub fn select(&self, pred: impl Fn(&Frame) -> bool) -> Vec<&Frame> {
        self.frames.iter().filter(|f| pred(f)).collect()
    }

    /// The identity of each frame (the inner one of a VXLAN frame with
    /// `inner`), in capture order.
    pub fn idents(&self, inner: bool) -> Vec<Ident> {
        self.frames
            .iter()
            .map(|f| {
                if inner {
                    f.innermost().ident()
                } else {
                    f.ident()
                }
            })
            .collect()
    }

    /// One line per frame, for assertion messages.
    pub fn listing(&self) -> String {
        let mut s = format!("capture on {} in {}:\n", self.iface, self.ns);
        for f in &self.frames {
            s.push_str(&format!("  {f}\n"));
        }
        s
    }
}

impl Capture {
    /// The frames captured so far.
    pub fn frames(&self) -> Vec<Frame> {
        parse_pcap(&self.proc.out.bytes())
    }

    /// Waits until `pred` holds on the frames so far, up to `limit`.
    pub fn wait_for(&self, pred: impl Fn(&[Frame]) -> bool, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if pred(&self.frames()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops tcpdump (SIGINT, bounded) and returns what it captured.
    pub fn stop(self) -> Captured {
        // Frames already sent may still be on their way up the tap.
        std::thread::sleep(Duration::from_millis(30));
        let done = self.proc.stop(Signal::SIGINT, Duration::from_secs(5));
        assert!(!done.timed_out, "tcpdump did not stop: {done}");
        let dropped_by_kernel = done
            .stderr
            .lines()
            .find(|l| l.contains("dropped by kernel"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        Captured {
            ns: self.ns,
            iface: self.iface,
            frames: parse_pcap(&done.raw),
            dropped_by_kernel,
            stderr: done.stderr,
        }
    }
}

/// One 802.1Q/802.1ad tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vlan {
    pub tpid: u16,
    pub pcp: u8,
    pub vid: u16,
}

/// One captured Ethernet frame as a comparable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub ts_us: u64,
    /// Length on the wire (pcap `orig_len`): above 1514 for a GSO packet.
    pub wire_len: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Tags, outermost first.
    pub vlans: Vec<Vlan>,
    /// The EtherType after the tags.
    pub ethertype: u16,
    pub l3: L3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L3 {
    Ip(Ip),
    Arp {
        op: u16,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    Other,
    Truncated,
}

/// An IPv4 or IPv6 header and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification.
    pub ip_id: Option<u16>,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 total length, or 40 + IPv6 payload length.
    pub total_len: u32,
    /// IPv6 extension headers walked, in order (0 hop-by-hop, 43 routing,
    /// 44 fragment, 60 destination options).
    pub ext: Vec<u8>,
    /// Fragment offset in bytes and more-fragments, when fragmented.
    pub fragment: Option<(u16, bool)>,
    pub l4: L4,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    /// ICMP or ICMPv6; `id`/`seq` for echo requests and replies.
    Icmp {
        v6: bool,
        ty: u8,
        code: u8,
        id: Option<u16>,
        seq: Option<u16>,
    },
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        /// hopscope's notation: `S`, `S.`, `P.`, `F.`, `FP.`, `R`, `.`.
        flags: String,
        /// Payload bytes by the headers' lengths.
        payload: u32,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: u32,
        /// A VXLAN header (on 4789 or 8472) and the frame inside it.
        vxlan: Option<Box<Vxlan>>,
    },
    /// A non-first fragment: no transport header.
    Fragment,
    Other(u8),
    Truncated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub vni: u32,
    pub inner: Frame,
}

/// The identity hopscope uses for one packet, from a frame or a hop record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident {
    pub proto: String,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_id: Option<u16>,
    pub icmp_seq: Option<u16>,
    pub tcp_seq: Option<u32>,
    pub tcp_flags: Option<String>,
    pub ip_id: Option<u16>,
}

impl Ident {
    /// From one of hopscope's JSON hop records.
    pub fn of_hop(v: &serde_json::Value) -> Ident {
        let u16f = |k: &str| v[k].as_u64().map(|n| n as u16);
        Ident {
            proto: v["proto"].as_str().unwrap_or("").to_owned(),
            src: v["src"].as_str().and_then(|s| s.parse().ok()),
            dst: v["dst"].as_str().and_then(|s| s.parse().ok()),
            sport: u16f("sport"),
            dport: u16f("dport"),
            icmp_type: v["icmp_type"].as_u64().map(|n| n as u8),
            icmp_id: u16f("icmp_id"),
            icmp_seq: u16f("icmp_seq"),
            tcp_seq: v["tcp_seq"].as_u64().map(|n| n as u32),
            tcp_flags: v["tcp_flags"].as_str().map(str::to_owned),
            ip_id: u16f("ip_id"),
        }
    }
}

/// The identities hopscope reported on `ifname` in namespace `netns` (hop
/// records that carry headers), to set against [`Captured::idents`].
pub fn hop_idents(lines: &[serde_json::Value], netns: u64, ifname: &str) -> Vec<Ident> {
    let mut seen = std::collections::BTreeSet::new();
    lines
        .iter()
        .filter(|v| {
            v["type"] == "hop"
                && v["netns"].as_u64() == Some(netns)
                && v["ifname"] == ifname
                && v["proto"].is_string()
        })
        .filter(|v| seen.insert((v["packet"].as_u64(), v["visit"].as_u64())))
        .map(Ident::of_hop)
        .collect()
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

impl Frame {
    pub fn ip(&self) -> Option<&Ip> {
        match &self.l3 {
            L3::Ip(ip) => Some(ip),
            _ => None,
        }
    }

    /// hopscope's protocol word: `icmp`, `icmp6`, `tcp`, `udp`, `arp`, or
    /// `other`.
    pub fn proto(&self) -> &'static str {
        match &self.l3 {
            L3::Arp { .. } => "arp",
            L3::Ip(ip) => match &ip.l4 {
                L4::Icmp { v6: false, .. } => "icmp",
                L4::Icmp { v6: true, .. } => "icmp6",
                L4::Tcp { .. } => "tcp",
                L4::Udp { .. } => "udp",
                _ => "other",
            },
            _ => "other",
        }
    }

    pub fn src(&self) -> Option<IpAddr> {
        self.ip().map(|i| i.src)
    }

    pub fn dst(&self) -> Option<IpAddr> {
        self.ip().map(|i| i.dst)
    }

    pub fn ports(&self) -> Option<(u16, u16)> {
        match &self.ip()?.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => Some((*sport, *dport)),
            _ => None,
        }
    }

    /// `(type, id, seq)` of an ICMP/ICMPv6 message (id/seq 0 unless echo).
    pub fn icmp(&self) -> Option<(u8, u16, u16)> {
        match &self.ip()?.l4 {
            L4::Icmp { ty, id, seq, .. } => Some((*ty, id.unwrap_or(0), seq.unwrap_or(0))),
            _ => None,
        }
    }

    /// `(seq, flags, payload)` of a TCP segment.
    pub fn tcp(&self) -> Option<(u32, &str, u32)> {
        match &self.ip()?.l4 {
            L4::Tcp {
                seq,
                flags,
                payload,
                ..
            } => Some((*seq, flags.as_str(), *payload)),
            _ => None,
        }
    }

    pub fn vxlan(&self) -> Option<&Vxlan> {
        match &self.ip()?.l4 {
            L4::Udp { vxlan, .. } => vxlan.as_deref(),
            _ => None,
        }
    }

    /// The frame inside a VXLAN frame, else the frame itself.
    pub fn innermost(&self) -> &Frame {
        match self.vxlan() {
            Some(v) => v.inner.innermost(),
            None => self,
        }
    }

    pub fn vid(&self) -> Option<u16> {
        self.vlans.first().map(|v| v.vid)
    }

    pub fn ident(&self) -> Ident {
        let ip = self.ip();
        let (icmp_type, icmp_id, icmp_seq) = match ip.map(|i| &i.l4) {
            Some(L4::Icmp { ty, id, seq, .. }) => (Some(*ty), *id, *seq),
            _ => (None, None, None),
        };
        let (tcp_seq, tcp_flags) = match self.tcp() {
            Some((s, f, _)) => (Some(s), Some(f.to_owned())),
            None => (None, None),
        };
        Ident {
            proto: self.proto().to_owned(),
            src: self.src(),
            dst: self.dst(),
            sport: self.ports().map(|p| p.0),
            dport: self.ports().map(|p| p.1),
            icmp_type,
            icmp_id,
            icmp_seq,
            tcp_seq,
            tcp_flags,
            ip_id: ip.and_then(|i| i.ip_id),
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06} {} > {}",
            self.ts_us / 1_000_000,
            self.ts_us % 1_000_000,
            mac_str(&self.src_mac),
            mac_str(&self.dst_mac)
        )?;
        for v in &self.vlans {
            write!(f, " vlan {} p {}", v.vid, v.pcp)?;
        }
        write!(f, " len {}", self.wire_len)?;
        match &self.l3 {
            L3::Arp { op, sender, target } => write!(f, " arp op {op} {sender} > {target}"),
            L3::Other => write!(f, " ethertype {:#06x}", self.ethertype),
            L3::Truncated => write!(f, " truncated"),
            L3::Ip(ip) => {
                write!(f, " {} > {} ttl {}", ip.src, ip.dst, ip.ttl)?;
                if let Some(id) = ip.ip_id {
                    write!(f, " id {id}")?;
                }
                if !ip.ext.is_empty() {
                    write!(f, " ext {:?}", ip.ext)?;
                }
                if let Some((off, more)) = ip.fragment {
                    write!(f, " frag {off}{}", if more { "+" } else { "" })?;
                }
                match &ip.l4 {
                    L4::Icmp {
                        v6,
                        ty,
                        code,
                        id,
                        seq,
                    } => {
                        write!(f, " icmp{} {ty}/{code}", if *v6 { "6" } else { "" })?;
                        if let (Some(id), Some(seq)) = (id, seq) {
                            write!(f, " #{id}.{seq}")?;
                        }
                        Ok(())
                    }
                    L4::Tcp {
                        sport,
                        dport,
                        seq,
                        ack,
                        flags,
                        payload,
                    } => write!(
                        f,
                        " tcp {sport} > {dport} [{flags}] seq {seq} ack {ack} len {payload}"
                    ),
                    L4::Udp {
                        sport,
                        dport,
                        payload,
                        vxlan,
                    } => {
                        write!(f, " udp {sport} > {dport} len {payload}")?;
                        if let Some(v) = vxlan {
                            write!(f, " vxlan {} [{}]", v.vni, v.inner)?;
                        }
                        Ok(())
                    }
                    L4::Fragment => write!(f, " (fragment)"),
                    L4::Other(p) => write!(f, " proto {p}"),
                    L4::Truncated => write!(f, " (truncated)"),
                }
            }
        }
    }
}

/// The UDP ports read as VXLAN: IANA's and Linux's historical default.
pub const VXLAN_PORTS: [u16; 2] = [4789, 8472];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a pcap stream (microsecond or nanosecond, either byte order, DLT
/// EN10MB); a record cut at the end (tcpdump still writing) is left out.
pub fn parse_pcap(b: &[u8]) -> Vec<Frame> {
    if b.len() < 24 {
        return Vec::new();
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => panic!("not a pcap stream: {:02x?}", &b[..4]),
    };
    let u32at = |at: usize| -> u32 {
        let a: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = u32at(20);
    assert_eq!(linktype, 1, "only Ethernet captures (DLT_EN10MB) are read");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let (sec, frac, incl, orig) = (u32at(at), u32at(at + 4), u32at(at + 8), u32at(at + 12));
        let start = at + 16;
        let end = start + incl as usize;
        if end > b.len() {
            break;
        }
        let us = if nanos {
            frac as u64 / 1000
        } else {
            frac as u64
        };
        frames.push(parse_frame(
            &b[start..end],
            orig,
            sec as u64 * 1_000_000 + us,
        ));
        at = end;
    }
    frames
}

/// Parses one Ethernet frame (`wire_len` its length on the wire).
pub fn parse_frame(b: &[u8], wire_len: u32, ts_us: u64) -> Frame {
    let mut f = Frame {
        ts_us,
        wire_len,
        src_mac: [0; 6],
        dst_mac: [0; 6],
        vlans: Vec::new(),
        ethertype: 0,
        l3: L3::Truncated,
    };
    if b.len() < 14 {
        return f;
    }
    f.dst_mac.copy_from_slice(&b[0..6]);
    f.src_mac.copy_from_slice(&b[6..12]);
    let mut at = 12;
    let mut et = be16(b, at).unwrap_or(0);
    at += 2;
    while et == 0x8100 || et == 0x88a8 {
        let Some(tci) = be16(b, at) else { return f };
        f.vlans.push(Vlan {
            tpid: et,
            pcp: (tci >> 13) as u8,
            vid: tci & 0x0fff,
        });
        let Some(next) = be16(b, at + 2) else {
            return f;
        };
        et = next;
        at += 4;
    }
    f.ethertype = et;
    let p = &b[at..];
    f.l3 = match et {
        0x0800 => parse_ipv4(p),
        0x86dd => parse_ipv6(p),
        0x0806 if p.len() >= 28 => L3::Arp {
            op: be16(p, 6).unwrap_or(0),
            sender: Ipv4Addr::new(p[14], p[15], p[16], p[17]),
            target: Ipv4Addr::new(p[24], p[25], p[26], p[27]),
        },
        0x0806 => L3::Truncated,
        _ => L3::Other,
    };
    f
}

fn parse_ipv4(p: &[u8]) -> L3 {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return L3::Truncated;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = be16(p, 2).unwrap_or(0);
    let frag = be16(p, 6).unwrap_or(0);
    let (offset, more) = ((frag & 0x1fff) * 8, frag & 0x2000 != 0);
    let l4_len = u32::from(total).saturating_sub(ihl as u32);
    let l4 = if offset != 0 {
        L4::Fragment
    } else {
        parse_l4(p[9], p.get(ihl..).unwrap_or(&[]), l4_len, false)
    };
    L3::Ip(Ip {
        src: IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])),
        dst: IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])),
        ip_id: be16(p, 4),
        ttl: p[8],
        total_len: u32::from(total),
        ext: Vec::new(),
        fragment: (offset != 0 || more).then_some((offset, more)),
        l4,
    })
}

fn parse_ipv6(p: &[u8]) -> L3 {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return L3::Truncated;
    }
    let addr = |at: usize| {
        let a: [u8; 16] = p[at..at + 16].try_into().unwrap();
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let payload_len = u32::from(be16(p, 4).unwrap_or(0));
    let mut next = p[6];
    let mut at = 40;
    let mut ext = Vec::new();
    let mut fragment = None;
    let mut l4 = None;
    // Walk the extension headers (at most 8).
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let (Some(&nh), Some(&len)) = (p.get(at), p.get(at + 1)) else {
                    l4 = Some(L4::Truncated);
                    break;
                };
                ext.push(next);
                next = nh;
                at += (usize::from(len) + 1) * 8;
            }
            44 => {
                let (Some(&nh), Some(off)) = (p.get(at), be16(p, at + 2)) else {
                    l4 = Some(L4::Truncated);
                    break;
                };
                ext.push(44);
                fragment = Some((off & 0xfff8, off & 1 != 0));
                next = nh;
                at += 8;
                if off & 0xfff8 != 0 {
                    l4 = Some(L4::Fragment);
                    break;
                }
            }
            _ => break,
        }
    }
    let l4_len = (40 + payload_len).saturating_sub(at as u32);
    let l4 = l4.unwrap_or_else(|| parse_l4(next, p.get(at..).unwrap_or(&[]), l4_len, true));
    L3::Ip(Ip {
        src: addr(8),
        dst: addr(24),
        ip_id: None,
        ttl: p[7],
        total_len: 40 + payload_len,
        ext,
        fragment,
        l4,
    })
}

fn parse_l4(proto: u8, t: &[u8], len: u32, v6: bool) -> L4 {
    match proto {
        1 | 58 => {
            if t.len() < 4 {
                return L4::Truncated;
            }
            let ty = t[0];
            let echo = if v6 {
                ty == 128 || ty == 129
            } else {
                ty == 8 || ty == 0
            };
            L4::Icmp {
                v6: proto == 58,
                ty,
                code: t[1],
                id: if echo { be16(t, 4) } else { None },
                seq: if echo { be16(t, 6) } else { None },
            }
        }
        6 => {
            let (Some(sport), Some(dport), Some(seq), Some(ack), Some(&off), Some(&fl)) = (
                be16(t, 0),
                be16(t, 2),
                be32(t, 4),
                be32(t, 8),
                t.get(12),
                t.get(13),
            ) else {
                return L4::Truncated;
            };
            let mut flags = String::new();
            for (bit, c) in [(0x02, 'S'), (0x01, 'F'), (0x08, 'P'), (0x04, 'R')] {
                if fl & bit != 0 {
                    flags.push(c);
                }
            }
            if fl & 0x10 != 0 {
                flags.push('.');
            }
            if flags.is_empty() {
                flags.push_str("none");
            }
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                payload: len.saturating_sub(u32::from(off >> 4) * 4),
            }
        }
        17 => {
            let (Some(sport), Some(dport), Some(ulen)) = (be16(t, 0), be16(t, 2), be16(t, 4))
            else {
                return L4::Truncated;
            };
            let vxlan =
                (VXLAN_PORTS.contains(&dport) && t.len() >= 16 && t[8] & 0x08 != 0).then(|| {
                    let vni = be32(t, 12).unwrap_or(0) >> 8;
                    let inner_len = u32::from(ulen).saturating_sub(16);
                    Box::new(Vxlan {
                        vni,
                        inner: parse_frame(&t[16..], inner_len, 0),
                    })
                });
            L4::Udp {
                sport,
                dport,
                payload: u32::from(ulen).saturating_sub(8),
                vxlan,
            }
        }
        p => L4::Other(p),
    }
}

// ---------------------------------------------------------------------------
// Frames to inject.

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame carrying an ICMP echo request, optionally with one
/// 802.1Q tag `(pcp, vid)` (VID 0 is a priority tag).
#[allow(clippy::too_many_arguments)]
pub fn echo_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    tag: Option<(u8, u16)>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ip_id: u16,
    id: u16,
    seq: u16,
) -> Vec<u8> {
    let payload = b"hopscope-field-vlan-probe";
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&ip_id.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::with_capacity(18 + ip.len() + icmp.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    if let Some((pcp, vid)) = tag {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&((u16::from(pcp) << 13) | (vid & 0x0fff)).to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

/// Sends raw frames out of `dev` in `ns` through an AF_PACKET socket
/// (Debian's python3, which install-deps installs): the kernel has no 802.1Q
/// devices, so tagged frames are written whole.
pub fn inject(ns: &str, dev: &str, frames: &[Vec<u8>]) {
    const SCRIPT: &str = "import socket,sys\n\
        s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
        s.bind((sys.argv[1],0))\n\
        for h in sys.argv[2:]:\n    s.send(bytes.fromhex(h))\n";
    let hex: Vec<String> = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let mut args = vec!["/usr/bin/python3", "-c", SCRIPT, dev];
    args.extend(hex.iter().map(String::as_str));
    in_ns(ns, &args, SETUP).ok();
}

// ---------------------------------------------------------------------------
// 1. A docker-style published port.

/// Addresses of [`PublishedPort`].
pub mod published {
    /// The host's address on the client's link: the published address.
    pub const PUBLISHED: &str = "198.18.20.1";
    pub const PORT: u16 = 8080;
    pub const CLIENT: &str = "198.18.20.2";
    /// `br0`, the container's gateway (docker0).
    pub const BRIDGE: &str = "198.18.10.1";
    pub const CONTAINER: &str = "198.18.10.2";
    pub const CONTAINER_PORT: u16 = 80;
    /// The host's address towards the outside: the MASQUERADE source.
    pub const HOST_OUT: &str = "198.18.30.1";
    pub const OUTSIDE: &str = "198.18.30.2";
    pub const OUTSIDE_PORT: u16 = 9000;
}

/// ```text
///  P-cli eth0 ──veth── eth0 ┐ P-host (forwarding; nft DNAT 198.18.20.1:8080 → 198.18.10.2:80
///  198.18.20.2   198.18.20.1 │          tcp+udp in prerouting, MASQUERADE 198.18.10.0/24 not via br0)
///                            br0 198.18.10.1 ── vethc ──veth── eth0 P-ctr 198.18.10.2 (:80 tcp/udp echo)
///  P-out eth0 ──veth── eth1 198.18.30.1
///  198.18.30.2 (:9000 tcp/udp echo; no route back to 198.18.10.0/24: MASQUERADE or nothing)
/// ```
pub struct PublishedPort {
    pub tcp: Server,
    pub udp: Server,
    pub out_tcp: Server,
    pub out_udp: Server,
    pub host: String,
    pub container: String,
    pub client: String,
    pub outside: String,
    pub field: Field,
}

impl PublishedPort {
    pub fn build(prefix: &str) -> PublishedPort {
        use published::*;
        let mut f = Field::new(prefix);
        let host = f.add("host", true);
        let container = f.add("ctr", false);
        let client = f.add("cli", false);
        let outside = f.add("out", false);
        f.bridge(&host, "br0");
        f.veth(&host, "vethc", &container, "eth0");
        f.port(&host, "vethc", "br0");
        f.veth(&host, "eth0", &client, "eth0");
        f.veth(&host, "eth1", &outside, "eth0");
        f.up(&host, &["br0", "vethc", "eth0", "eth1"]);
        for ns in [&container, &client, &outside] {
            f.up(ns, &["eth0"]);
        }
        f.addr(&host, "br0", &format!("{BRIDGE}/24"));
        f.addr(&host, "eth0", &format!("{PUBLISHED}/24"));
        f.addr(&host, "eth1", &format!("{HOST_OUT}/24"));
        f.addr(&container, "eth0", &format!("{CONTAINER}/24"));
        f.addr(&client, "eth0", &format!("{CLIENT}/24"));
        f.addr(&outside, "eth0", &format!("{OUTSIDE}/24"));
        f.route(&container, "198.18.0.0/15", BRIDGE);
        let rules = format!(
            "table ip hfnat {{\n\
             chain pre {{ type nat hook prerouting priority dstnat; policy accept;\n\
               ip daddr {PUBLISHED} tcp dport {PORT} dnat to {CONTAINER}:{CONTAINER_PORT}\n\
               ip daddr {PUBLISHED} udp dport {PORT} dnat to {CONTAINER}:{CONTAINER_PORT}\n\
             }}\n\
             chain post {{ type nat hook postrouting priority srcnat; policy accept;\n\
               ip saddr 198.18.10.0/24 oifname != \"br0\" masquerade\n\
             }}\n}}\n"
        );
        let done = sh_in(&host, &format!("nft -f - <<'EOF'\n{rules}EOF"), SETUP);
        assert!(done.success(), "nft: {done}");
        f.get(&host)
            .wait_up(&["br0", "vethc", "eth0", "eth1"], SETUP);
        for ns in [&container, &client, &outside] {
            f.get(ns).wait_up(&["eth0"], SETUP);
        }
        PublishedPort {
            tcp: Server::start(&container, Serve::TcpEcho, sa(CONTAINER, CONTAINER_PORT)),
            udp: Server::start(&container, Serve::UdpEcho, sa(CONTAINER, CONTAINER_PORT)),
            out_tcp: Server::start(&outside, Serve::TcpEcho, sa(OUTSIDE, OUTSIDE_PORT)),
            out_udp: Server::start(&outside, Serve::UdpEcho, sa(OUTSIDE, OUTSIDE_PORT)),
            host,
            container,
            client,
            outside,
            field: f,
        }
    }

    /// The client's command: `msg` to the published port, the answer printed.
    pub fn client_argv(&self, msg: &str, udp: bool) -> Vec<String> {
        let line = client_line(msg, published::PUBLISHED, published::PORT, udp);
        exec_argv(&self.client, &["sh", "-c", &line])
    }

    /// The container's command: `msg` to the outside server (MASQUERADE).
    pub fn egress_argv(&self, msg: &str, udp: bool) -> Vec<String> {
        let line = client_line(msg, published::OUTSIDE, published::OUTSIDE_PORT, udp);
        exec_argv(&self.container, &["sh", "-c", &line])
    }

    /// `nft list ruleset` in the host (its counters, for messages).
    pub fn ruleset(&self) -> String {
        self.field
            .get(&self.host)
            .exec(&["nft", "list", "ruleset"], SETUP)
            .stdout
    }
}

/// Runs an argv (from the `*_argv` helpers) with a deadline.
pub fn run_argv(argv: &[String], limit: Duration) -> Done {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    run(&argv[0], &args, limit)
}

// ---------------------------------------------------------------------------
// 2. A two-node VXLAN overlay.

/// Addresses of [`VxlanOverlay`].
pub mod overlay {
    pub const UNDERLAY1: &str = "198.19.0.1";
    pub const UNDERLAY2: &str = "198.19.0.2";
    pub const POD1_V4: &str = "198.18.42.1";
    pub const POD2_V4: &str = "198.18.42.2";
    pub const POD1_V6: &str = "2001:2:0:42::1";
    pub const POD2_V6: &str = "2001:2:0:42::2";
    pub const VNI: u32 = 42;
    /// Inner MTU: the underlay's 1500 less 50 bytes of VXLAN over IPv4.
    pub const MTU: &str = "1450";
    pub const TCP_PORT: u16 = 7042;
}

/// How the overlay is built.
#[derive(Debug, Clone, Copy)]
pub struct VxlanOpts {
    /// 4789 (IANA) or 8472 (Linux's historical default, flannel's).
    pub port: u16,
    /// Flood entries in the FDB (`bridge fdb append 00:00:00:00:00:00 dst
    /// PEER`) instead of a static `remote`.
    pub fdb: bool,
}

impl Default for VxlanOpts {
    fn default() -> Self {
        VxlanOpts {
            port: 4789,
            fdb: false,
        }
    }
}

/// ```text
///  P-pod1 eth0 ──veth── vpod ┐                                  ┌ vpod ──veth── eth0 P-pod2
///  198.18.42.1, 2001:2:0:42::1 br0 ─ vxlan42 ┐      ┌ vxlan42 ─ br0   198.18.42.2, 2001:2:0:42::2
///                       P-node1  eth0 198.19.0.1 ──veth── eth0 198.19.0.2  P-node2
/// ```
/// VNI 42, UDP `opts.port`; MTU 1450 inside.
pub struct VxlanOverlay {
    pub tcp: Server,
    pub node1: String,
    pub node2: String,
    pub pod1: String,
    pub pod2: String,
    pub opts: VxlanOpts,
    pub field: Field,
}

impl VxlanOverlay {
    pub fn build(prefix: &str, opts: VxlanOpts) -> VxlanOverlay {
        use overlay::*;
        let mut f = Field::new(prefix);
        let node1 = f.add("node1", false);
        let node2 = f.add("node2", false);
        let pod1 = f.add("pod1", false);
        let pod2 = f.add("pod2", false);
        f.veth(&node1, "eth0", &node2, "eth0");
        let port = opts.port.to_string();
        let vni = VNI.to_string();
        for (node, pod, local, peer, p4, p6) in [
            (&node1, &pod1, UNDERLAY1, UNDERLAY2, POD1_V4, POD1_V6),
            (&node2, &pod2, UNDERLAY2, UNDERLAY1, POD2_V4, POD2_V6),
        ] {
            f.addr(node, "eth0", &format!("{local}/24"));
            f.up(node, &["eth0"]);
            let mut vx = vec![
                "link", "add", "vxlan42", "type", "vxlan", "id", &vni, "dstport", &port, "local",
                local, "dev", "eth0",
            ];
            if !opts.fdb {
                vx.extend(["remote", peer]);
            }
            ipn(node, &vx);
            if opts.fdb {
                must(
                    "bridge",
                    &[
                        "-n",
                        node,
                        "fdb",
                        "append",
                        "00:00:00:00:00:00",
                        "dev",
                        "vxlan42",
                        "dst",
                        peer,
                    ],
                );
            }
            f.bridge(node, "br0");
            f.veth(node, "vpod", pod, "eth0");
            ipn(node, &["link", "set", "vpod", "mtu", MTU]);
            ipn(pod, &["link", "set", "eth0", "mtu", MTU]);
            f.port(node, "vxlan42", "br0");
            f.port(node, "vpod", "br0");
            ipn(node, &["link", "set", "br0", "addrgenmode", "none"]);
            f.up(node, &["vxlan42", "vpod", "br0"]);
            f.addr(pod, "eth0", &format!("{p4}/24"));
            f.addr(pod, "eth0", &format!("{p6}/64"));
            f.up(pod, &["eth0"]);
        }
        for node in [&node1, &node2] {
            f.get(node)
                .wait_up(&["eth0", "vxlan42", "vpod", "br0"], SETUP);
        }
        for pod in [&pod1, &pod2] {
            f.get(pod).wait_up(&["eth0"], SETUP);
        }
        VxlanOverlay {
            tcp: Server::start(&pod2, Serve::TcpEcho, sa(POD2_V4, TCP_PORT)),
            node1,
            node2,
            pod1,
            pod2,
            opts,
            field: f,
        }
    }
}

// ---------------------------------------------------------------------------
// 3. macvlan in bridge mode.

/// Addresses of [`Macvlan`].
pub mod mv {
    pub const FAR: &str = "198.18.50.1";
    pub const M1: &str = "198.18.50.2";
    pub const M2: &str = "198.18.50.3";
}

/// ```text
///  P-far eth0 ──veth── eth0 (parent, no address)  P-host
///  198.18.50.1          ├─ macvlan bridge ─ eth0 in P-m1 198.18.50.2
///                       └─ macvlan bridge ─ eth0 in P-m2 198.18.50.3
/// ```
pub struct Macvlan {
    pub host: String,
    pub far: String,
    pub m1: String,
    pub m2: String,
    pub field: Field,
}

impl Macvlan {
    pub fn build(prefix: &str) -> Macvlan {
        let mut f = Field::new(prefix);
        let host = f.add("host", false);
        let far = f.add("far", false);
        let m1 = f.add("m1", false);
        let m2 = f.add("m2", false);
        f.veth(&host, "eth0", &far, "eth0");
        ipn(&host, &["link", "set", "eth0", "addrgenmode", "none"]);
        for (child, ns) in [("mv1", &m1), ("mv2", &m2)] {
            ipn(
                &host,
                &[
                    "link", "add", child, "link", "eth0", "type", "macvlan", "mode", "bridge",
                ],
            );
            ipn(&host, &["link", "set", child, "netns", ns]);
            ipn(ns, &["link", "set", child, "name", "eth0"]);
        }
        f.up(&host, &["eth0"]);
        for (ns, a) in [(&far, mv::FAR), (&m1, mv::M1), (&m2, mv::M2)] {
            f.addr(ns, "eth0", &format!("{a}/24"));
            f.up(ns, &["eth0"]);
        }
        f.get(&host).wait_up(&["eth0"], SETUP);
        for ns in [&far, &m1, &m2] {
            f.get(ns).wait_up(&["eth0"], SETUP);
        }
        Macvlan {
            host,
            far,
            m1,
            m2,
            field: f,
        }
    }
}

// ---------------------------------------------------------------------------
// 4. TCP bulk with software GSO or with TSO.

/// Addresses of [`Gso`].
pub mod gso {
    pub const SND: &str = "198.18.80.1";
    pub const RCV: &str = "198.18.80.2";
    pub const PORT: u16 = 5001;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GsoOpts {
    /// TSO and GSO left on (the veth default); off: `ethtool -K eth0 tso
    /// off gso off` on the sender, so the kernel segments in software.
    pub offload: bool,
    /// Across a bridge (`P-sw`) instead of straight across one veth.
    pub bridge: bool,
}

/// ```text
///  P-snd eth0 198.18.80.1 ──veth── eth0 P-rcv 198.18.80.2 (:5001 sink)
///  or with a bridge: P-snd eth0 ── vs ┐ br0 (P-sw) ┌ vr ── eth0 P-rcv
/// ```
pub struct Gso {
    pub sink: Server,
    pub snd: String,
    pub rcv: String,
    pub sw: Option<String>,
    pub opts: GsoOpts,
    pub field: Field,
}

impl Gso {
    pub fn build(prefix: &str, opts: GsoOpts) -> Gso {
        let mut f = Field::new(prefix);
        let snd = f.add("snd", false);
        let rcv = f.add("rcv", false);
        let sw = if opts.bridge {
            let sw = f.add("sw", false);
            f.bridge(&sw, "br0");
            ipn(&sw, &["link", "set", "br0", "addrgenmode", "none"]);
            f.veth(&sw, "vs", &snd, "eth0");
            f.veth(&sw, "vr", &rcv, "eth0");
            f.port(&sw, "vs", "br0");
            f.port(&sw, "vr", "br0");
            f.up(&sw, &["vs", "vr", "br0"]);
            Some(sw)
        } else {
            f.veth(&snd, "eth0", &rcv, "eth0");
            None
        };
        f.addr(&snd, "eth0", &format!("{}/24", gso::SND));
        f.addr(&rcv, "eth0", &format!("{}/24", gso::RCV));
        f.up(&snd, &["eth0"]);
        f.up(&rcv, &["eth0"]);
        if !opts.offload {
            f.get(&snd)
                .exec(
                    &["ethtool", "-K", "eth0", "tso", "off", "gso", "off"],
                    SETUP,
                )
                .ok();
        }
        if let Some(sw) = &sw {
            f.get(sw).wait_up(&["vs", "vr", "br0"], SETUP);
        }
        f.get(&snd).wait_up(&["eth0"], SETUP);
        f.get(&rcv).wait_up(&["eth0"], SETUP);
        Gso {
            sink: Server::start(&rcv, Serve::TcpSink, sa(gso::RCV, gso::PORT)),
            snd,
            rcv,
            sw,
            opts,
            field: f,
        }
    }

    /// The sender's command: `bytes` zero bytes to the sink, then close.
    pub fn bulk_argv(&self, bytes: u64) -> Vec<String> {
        let line = format!(
            "head -c {bytes} /dev/zero | ncat --send-only -w 2 {} {}",
            gso::RCV,
            gso::PORT
        );
        exec_argv(&self.snd, &["sh", "-c", &line])
    }

    /// `ethtool -k eth0` of the sender: `(tso, gso)` on or off.
    pub fn offloads(&self) -> (bool, bool) {
        let out = self
            .field
            .get(&self.snd)
            .exec(&["ethtool", "-k", "eth0"], SETUP)
            .ok()
            .stdout;
        let on = |key: &str| {
            out.lines()
                .find(|l| l.trim_start().starts_with(key))
                .is_some_and(|l| l.contains(": on"))
        };
        (
            on("tcp-segmentation-offload:"),
            on("generic-segmentation-offload:"),
        )
    }
}

// ---------------------------------------------------------------------------
// 5. A bridge for tcpdump.

/// Addresses of [`BridgeTap`].
pub mod tap {
    pub const BR: &str = "198.18.60.1";
    pub const A: &str = "198.18.60.2";
    pub const B: &str = "198.18.60.3";
    pub const PORT: u16 = 7060;
}

/// ```text
///  P-a eth0 198.18.60.2 ──veth── va ┐ br0 198.18.60.1 (P-sw, like docker0)
///  P-b eth0 198.18.60.3 ──veth── vb ┘    (:7060 tcp echo in P-b)
/// ```
pub struct BridgeTap {
    pub tcp: Server,
    pub sw: String,
    pub a: String,
    pub b: String,
    pub field: Field,
}

impl BridgeTap {
    pub fn build(prefix: &str) -> BridgeTap {
        let mut f = Field::new(prefix);
        let sw = f.add("sw", false);
        let a = f.add("a", false);
        let b = f.add("b", false);
        f.bridge(&sw, "br0");
        f.veth(&sw, "va", &a, "eth0");
        f.veth(&sw, "vb", &b, "eth0");
        f.port(&sw, "va", "br0");
        f.port(&sw, "vb", "br0");
        f.up(&sw, &["va", "vb", "br0"]);
        f.addr(&sw, "br0", &format!("{}/24", tap::BR));
        f.addr(&a, "eth0", &format!("{}/24", tap::A));
        f.addr(&b, "eth0", &format!("{}/24", tap::B));
        f.up(&a, &["eth0"]);
        f.up(&b, &["eth0"]);
        f.get(&sw).wait_up(&["va", "vb", "br0"], SETUP);
        f.get(&a).wait_up(&["eth0"], SETUP);
        f.get(&b).wait_up(&["eth0"], SETUP);
        BridgeTap {
            tcp: Server::start(&b, Serve::TcpEcho, sa(tap::B, tap::PORT)),
            sw,
            a,
            b,
            field: f,
        }
    }

    /// tcpdump on the bridge device, promiscuous, as people run it.
    pub fn tcpdump_on_bridge(&self, filter: &str) -> Capture {
        Tcpdump::on(&self.sw, "br0")
            .promisc()
            .filter(filter)
            .start()
    }

    /// Whether `br0` is in promiscuous mode now (`promiscuity N > 0`).
    pub fn bridge_promiscuity(&self) -> u32 {
        let out = must("ip", &["-n", &self.sw, "-d", "link", "show", "dev", "br0"]);
        out.split("promiscuity ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no promiscuity in {out}"))
    }
}

// ---------------------------------------------------------------------------
// 6. An IPv6 router, MLD, 802.1Q frames.

/// Addresses of [`V6Router`].
pub mod v6 {
    pub const LEFT_V6: &str = "2001:2:0:70::2";
    pub const ROUTER_L_V6: &str = "2001:2:0:70::1";
    pub const ROUTER_R_V6: &str = "2001:2:0:71::1";
    pub const RIGHT_V6: &str = "2001:2:0:71::2";
    pub const LEFT_V4: &str = "198.18.70.2";
    pub const ROUTER_L_V4: &str = "198.18.70.1";
    pub const ROUTER_R_V4: &str = "198.18.71.1";
    pub const RIGHT_V4: &str = "198.18.71.2";
}

/// ```text
///  P-left eth0 ──veth── eth0 P-router (forwarding) eth1 ──veth── eth0 P-right
///  2001:2:0:70::2        ::1 / 198.18.70.1   2001:2:0:71::1 / 198.18.71.1   2001:2:0:71::2
///  198.18.70.2                                                               198.18.71.2
/// ```
/// `left`'s eth0 keeps its link-local address, so a flap sends MLD reports.
pub struct V6Router {
    pub left: String,
    pub router: String,
    pub right: String,
    pub field: Field,
}

impl V6Router {
    pub fn build(prefix: &str) -> V6Router {
        use v6::*;
        let mut f = Field::new(prefix);
        let left = f.add("left", false);
        let router = f.add("router", true);
        let right = f.add("right", false);
        f.veth(&router, "eth0", &left, "eth0");
        f.veth(&router, "eth1", &right, "eth0");
        for (ns, dev, a6, a4) in [
            (&left, "eth0", LEFT_V6, LEFT_V4),
            (&router, "eth0", ROUTER_L_V6, ROUTER_L_V4),
            (&router, "eth1", ROUTER_R_V6, ROUTER_R_V4),
            (&right, "eth0", RIGHT_V6, RIGHT_V4),
        ] {
            f.addr(ns, dev, &format!("{a6}/64"));
            f.addr(ns, dev, &format!("{a4}/24"));
            f.up(ns, &[dev]);
        }
        f.route(&left, "2001:2::/48", ROUTER_L_V6);
        f.route(&right, "2001:2::/48", ROUTER_R_V6);
        f.route(&left, "198.18.0.0/15", ROUTER_L_V4);
        f.route(&right, "198.18.0.0/15", ROUTER_R_V4);
        // Quick MLDv2 retransmissions after a flap.
        f.get(&left).sysctl(&[(
            "net.ipv6.conf.eth0.mldv2_unsolicited_report_interval",
            "100",
        )]);
        f.get(&router).wait_up(&["eth0", "eth1"], SETUP);
        f.get(&left).wait_up(&["eth0"], SETUP);
        f.get(&right).wait_up(&["eth0"], SETUP);
        V6Router {
            left,
            router,
            right,
            field: f,
        }
    }

    /// Takes `left`'s eth0 down and up again (MLD reports follow), then
    /// puts back what going down removed: the global IPv6 address
    /// (`keep_addr_on_down` is 0) and the routes through the router.
    pub fn flap(&self) {
        let l = self.field.get(&self.left);
        l.ip(&["link", "set", "eth0", "down"]);
        l.ip(&["link", "set", "eth0", "up"]);
        l.wait_up(&["eth0"], SETUP);
        let a6 = format!("{}/64", v6::LEFT_V6);
        l.ip(&["-6", "addr", "replace", &a6, "dev", "eth0", "nodad"]);
        l.ip(&[
            "-6",
            "route",
            "replace",
            "2001:2::/48",
            "via",
            v6::ROUTER_L_V6,
        ]);
        l.ip(&[
            "-4",
            "route",
            "replace",
            "198.18.0.0/15",
            "via",
            v6::ROUTER_L_V4,
        ]);
    }

    /// An echo request from `left` to the router's 198.18.70.1, tagged
    /// `(pcp, vid)` when asked, with the real MACs of both ends.
    pub fn echo_frame(&self, tag: Option<(u8, u16)>, ip_id: u16, id: u16, seq: u16) -> Vec<u8> {
        echo_frame(
            self.field.get(&self.left).mac("eth0"),
            self.field.get(&self.router).mac("eth0"),
            tag,
            v6::LEFT_V4.parse().unwrap(),
            v6::ROUTER_L_V4.parse().unwrap(),
            ip_id,
            id,
            seq,
        )
    }

    /// Writes frames out of `left`'s eth0.
    pub fn inject(&self, frames: &[Vec<u8>]) {
        inject(&self.left, "eth0", frames);
    }
}

// ---------------------------------------------------------------------------
// 7. Busy neighbours.

/// Addresses of [`Busy`].
pub mod busy {
    pub const N1: &str = "198.18.90.1";
    pub const N2: &str = "198.18.90.2";
    /// UDP goes to closed ports from here up (100 of them, in turn).
    pub const CLOSED_PORT: u16 = 40000;
}

/// What the neighbours sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyCounts {
    pub udp_sent: u64,
    pub ping_tx: u32,
    pub ping_rx: u32,
}

/// ```text
///  P-n1 eth0 198.18.90.1 ──veth── eth0 P-n2 198.18.90.2 (no listener; ICMP errors unlimited)
/// ```
/// `P-n1` sends UDP to closed ports at `udp_per_sec` and pings every
/// `ping_interval` seconds until [`Busy::stop`] or `Drop` (and at most 300 s).
pub struct Busy {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    ping: Option<Proc>,
    pub n1: String,
    pub n2: String,
    pub field: Field,
}

impl Busy {
    pub fn build(prefix: &str) -> Busy {
        let mut f = Field::new(prefix);
        let n1 = f.add("n1", false);
        let n2 = f.add("n2", false);
        f.veth(&n1, "eth0", &n2, "eth0");
        f.addr(&n1, "eth0", &format!("{}/24", busy::N1));
        f.addr(&n2, "eth0", &format!("{}/24", busy::N2));
        f.up(&n1, &["eth0"]);
        f.up(&n2, &["eth0"]);
        f.get(&n2).sysctl(&[
            ("net.ipv4.icmp_ratelimit", "0"),
            ("net.ipv4.icmp_msgs_per_sec", "1000000"),
            ("net.ipv4.icmp_msgs_burst", "1000000"),
        ]);
        f.get(&n1).wait_up(&["eth0"], SETUP);
        f.get(&n2).wait_up(&["eth0"], SETUP);
        Busy {
            stop: Arc::new(AtomicBool::new(false)),
            sent: Arc::new(AtomicU64::new(0)),
            thread: None,
            ping: None,
            n1,
            n2,
            field: f,
        }
    }

    /// Starts the noise.
    pub fn start(&mut self, udp_per_sec: u32, ping_interval: &str) {
        assert!(self.thread.is_none(), "noise already running");
        self.stop.store(false, Ordering::SeqCst);
        self.sent.store(0, Ordering::SeqCst);
        let (stop, sent, ns) = (self.stop.clone(), self.sent.clone(), self.n1.clone());
        let gap = Duration::from_secs(1) / udp_per_sec.max(1);
        let (tx, rx) = mpsc::channel();
        self.thread = Some(std::thread::spawn(move || {
            enter(&ns);
            let s = UdpSocket::bind(sa(busy::N1, 0)).expect("binding the noise socket");
            let _ = tx.send(());
            let t0 = Instant::now();
            let mut i: u64 = 0;
            while !stop.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(300) {
                let port = busy::CLOSED_PORT + (i % 100) as u16;
                if s.send_to(b"busy neighbour", sa(busy::N2, port)).is_ok() {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                i += 1;
                // Paced by the clock, not by the sleeps.
                let next = t0 + gap * (i as u32);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
        }));
        rx.recv_timeout(SETUP).expect("noise socket");
        self.ping = Some(self.field.get(&self.n1).spawn(&[
            "ping",
            "-q",
            "-n",
            "-i",
            ping_interval,
            "-w",
            "300",
            busy::N2,
        ]));
    }

    /// Stops the noise; what was sent (ping's own summary for the pings).
    pub fn stop(&mut self) -> BusyCounts {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let (ping_tx, ping_rx) = match self.ping.take() {
            Some(p) => {
                let done = p.stop(Signal::SIGINT, Duration::from_secs(5));
                ping_counts(&done.stdout).unwrap_or_else(|| panic!("no ping summary: {done}"))
            }
            None => (0, 0),
        };
        BusyCounts {
            udp_sent: self.sent.load(Ordering::SeqCst),
            ping_tx,
            ping_rx,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.ping.take();
    }
}
