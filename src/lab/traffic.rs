//! `hopscope lab traffic`: steady, easily recognisable traffic between lab
//! namespaces, so the tracer has something to show.
//!
//! Per round, for each selected kind:
//! - `icmp`: `ping` from `P-c1` to `P-c2` (bridged) and to `P-r1` (routed
//!   through `P-host`);
//! - `icmp6`: `ping -6` from `P-c1` to `P-c2`;
//! - `udp`: a datagram from `P-c1` to the echo server in `P-c2` on
//!   [`UDP_PORT`](super::UDP_PORT), waiting up to 1 s for the echo;
//! - `tcp`: a connection from `P-c1` to the server in `P-r1` on
//!   [`TCP_PORT`](super::TCP_PORT): one request line, one reply, close.
//!
//! Facts worth knowing:
//! - Servers and clients are plain `std::net` sockets on threads that joined
//!   the namespace with `setns(2)`; a socket stays in the namespace it was
//!   created in, whatever thread uses it later.
//! - Servers start once per run, retry binding for a few seconds while the
//!   port is still held (a child forked by another thread keeps copies of the
//!   process' fds until it execs), report readiness (or their bind error) over
//!   a channel before the first probe, poll a stop flag every 100 ms at most,
//!   and are stopped and joined when the run ends, also on error.
//! - Every probe checks the caller's stop flag at least every 100 ms (pings
//!   are child processes polled with `try_wait` and killed on stop); a probe
//!   cut short by stop counts neither as ok nor as failed, and the round it
//!   was in is not counted.
//! - Every destination is a lab constant and is checked with
//!   [`addr::is_lab_addr`](super::addr::is_lab_addr) before anything is sent;
//!   servers only answer peers inside the lab ranges.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::{addr, command_line, in_netns_scoped, spawn_in_netns, Lab, TCP_PORT, UDP_PORT};

/// How long one probe may wait for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest time between two looks at a stop flag.
const POLL: Duration = Duration::from_millis(50);
/// How long a server may take to bind before the run gives up.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server keeps retrying a bind that fails with "address in use".
const BIND_RETRY: Duration = Duration::from_secs(3);
/// A ping child that has not exited by then is killed and counted as failed.
const PING_HARD_LIMIT: Duration = Duration::from_secs(5);

/// One kind of lab traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrafficKind {
    Icmp,
    Icmp6,
    Udp,
    Tcp,
}

impl TrafficKind {
    /// Every kind, in the order a round runs them.
    pub const ALL: [TrafficKind; 4] = [
        TrafficKind::Icmp,
        TrafficKind::Icmp6,
        TrafficKind::Udp,
        TrafficKind::Tcp,
    ];

    /// The name accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficKind::Icmp => "icmp",
            TrafficKind::Icmp6 => "icmp6",
            TrafficKind::Udp => "udp",
            TrafficKind::Tcp => "tcp",
        }
    }
}

impl fmt::Display for TrafficKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of `TrafficKind::from_str`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown traffic kind `{0}` (expected one of: icmp, icmp6, udp, tcp)")]
pub struct ParseTrafficKindError(pub String);

impl FromStr for TrafficKind {
    type Err = ParseTrafficKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        TrafficKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParseTrafficKindError(s.to_owned()))
    }
}

/// What `lab traffic` sends and for how long.
#[derive(Debug, Clone)]
pub struct TrafficOpts {
    /// Number of rounds; `None` runs until `duration` or the stop flag.
    pub rounds: Option<u64>,
    /// Wall-clock limit, checked before each round and while waiting.
    pub duration: Option<Duration>,
    /// Pause between rounds.
    pub interval: Duration,
    /// Kinds sent each round; duplicates are ignored.
    pub kinds: Vec<TrafficKind>,
}

impl Default for TrafficOpts {
    fn default() -> Self {
        TrafficOpts {
            rounds: None,
            duration: None,
            interval: Duration::from_millis(500),
            kinds: TrafficKind::ALL.to_vec(),
        }
    }
}

/// Counters of one traffic run. ICMP counts both IPv4 and IPv6 pings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrafficReport {
    pub rounds: u64,
    pub icmp_ok: u64,
    pub icmp_fail: u64,
    pub udp_ok: u64,
    pub udp_fail: u64,
    pub tcp_ok: u64,
    pub tcp_fail: u64,
}

impl TrafficReport {
    /// Total failed probes of every kind.
    pub fn failures(&self) -> u64 {
        self.icmp_fail + self.udp_fail + self.tcp_fail
    }

    /// Total successful probes of every kind.
    pub fn successes(&self) -> u64 {
        self.icmp_ok + self.udp_ok + self.tcp_ok
    }
}

impl fmt::Display for TrafficReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rounds {}: icmp {} ok / {} failed, udp {} ok / {} failed, tcp {} ok / {} failed",
            self.rounds,
            self.icmp_ok,
            self.icmp_fail,
            self.udp_ok,
            self.udp_fail,
            self.tcp_ok,
            self.tcp_fail
        )
    }
}

/// One probe from `P-c1`.
enum Probe {
    /// `ping` to this address.
    Ping(&'static str),
    /// One datagram to the echo server in `P-c2`.
    Udp,
    /// One request to the server in `P-r1`.
    Tcp,
}

/// Result of one probe.
enum Outcome {
    Ok,
    Fail(String),
    /// The stop flag was raised while the probe ran.
    Stopped,
}

impl Lab {
    /// Sends traffic as described by `opts` until the rounds are done, the
    /// duration has elapsed or `stop` becomes true.
    pub fn traffic(&self, opts: &TrafficOpts, stop: &AtomicBool) -> Result<TrafficReport> {
        self.traffic_with(opts, stop, |_| {})
    }

    /// [`Lab::traffic`] that also calls `on_round` with the running totals
    /// after each completed round (for progress output).
    pub fn traffic_with(
        &self,
        opts: &TrafficOpts,
        stop: &AtomicBool,
        mut on_round: impl FnMut(&TrafficReport),
    ) -> Result<TrafficReport> {
        let mut kinds: Vec<TrafficKind> = Vec::new();
        for kind in &opts.kinds {
            if !kinds.contains(kind) {
                kinds.push(*kind);
            }
        }
        if kinds.is_empty() {
            bail!("no traffic kinds selected (choose from icmp, icmp6, udp, tcp)");
        }
        if !self.exists() {
            bail!(
                "lab `{}` is not up (missing some of {}); run `hopscope lab up` first",
                self.prefix(),
                self.namespaces().join(", ")
            );
        }

        let mut servers = Servers::new();
        if kinds.contains(&TrafficKind::Udp) {
            servers.start("udp echo", &self.c2(), udp_echo_server)?;
        }
        if kinds.contains(&TrafficKind::Tcp) {
            servers.start("tcp reply", &self.r1(), tcp_reply_server)?;
        }

        let result = self.run_rounds(opts, &kinds, stop, &mut on_round);
        let server_result = servers.shutdown();
        let report = result?;
        if let Err(err) = server_result {
            log::warn!("lab traffic: {err:#}");
        }
        Ok(report)
    }

    fn run_rounds(
        &self,
        opts: &TrafficOpts,
        kinds: &[TrafficKind],
        stop: &AtomicBool,
        on_round: &mut dyn FnMut(&TrafficReport),
    ) -> Result<TrafficReport> {
        let deadline = opts.duration.map(|d| Instant::now() + d);
        let expired = || deadline.is_some_and(|d| Instant::now() >= d);
        let c1 = self.c1();
        let mut report = TrafficReport::default();
        let mut seq: u64 = 0;

        'rounds: loop {
            if opts.rounds.is_some_and(|r| report.rounds >= r)
                || stop.load(Ordering::Relaxed)
                || expired()
            {
                break;
            }
            for kind in kinds {
                let probes: &[Probe] = match kind {
                    TrafficKind::Icmp => &[Probe::Ping(addr::C2_V4), Probe::Ping(addr::R1_V4)],
                    TrafficKind::Icmp6 => &[Probe::Ping(addr::C2_V6)],
                    TrafficKind::Udp => &[Probe::Udp],
                    TrafficKind::Tcp => &[Probe::Tcp],
                };
                for probe in probes {
                    seq += 1;
                    let outcome = match probe {
                        Probe::Ping(dst) => ping(&c1, dst, stop)?,
                        Probe::Udp => in_netns_scoped(&c1, || udp_probe(seq, stop))??,
                        Probe::Tcp => in_netns_scoped(&c1, || tcp_probe(seq, stop))??,
                    };
                    let (ok, fail) = match probe {
                        Probe::Ping(_) => (&mut report.icmp_ok, &mut report.icmp_fail),
                        Probe::Udp => (&mut report.udp_ok, &mut report.udp_fail),
                        Probe::Tcp => (&mut report.tcp_ok, &mut report.tcp_fail),
                    };
                    match outcome {
                        Outcome::Ok => *ok += 1,
                        Outcome::Fail(reason) => {
                            *fail += 1;
                            log::warn!("lab traffic: {kind} probe failed: {reason}");
                        }
                        Outcome::Stopped => break 'rounds,
                    }
                    if stop.load(Ordering::Relaxed) {
                        break 'rounds;
                    }
                }
            }
            report.rounds += 1;
            log::debug!("lab traffic: {report}");
            on_round(&report);
            if opts.rounds.is_some_and(|r| report.rounds >= r) {
                break;
            }
            // Interruptible pause between rounds.
            let resume = Instant::now() + opts.interval;
            loop {
                let now = Instant::now();
                if now >= resume || stop.load(Ordering::Relaxed) || expired() {
                    break;
                }
                std::thread::sleep(POLL.min(resume - now));
            }
        }
        Ok(report)
    }
}

/// Parses a lab constant and refuses anything outside the lab ranges.
fn lab_ip(text: &str) -> Result<IpAddr> {
    let ip: IpAddr = text
        .parse()
        .with_context(|| format!("invalid address `{text}`"))?;
    if !addr::is_lab_addr(&ip) {
        bail!("refusing to send to {ip}: outside the lab ranges");
    }
    Ok(ip)
}

/// `ip netns exec NS ping -c 1 -W 1 DST`, polled so that `stop` can cut it short.
fn ping(ns: &str, dst: &str, stop: &AtomicBool) -> Result<Outcome> {
    let ip = lab_ip(dst)?;
    let family = if ip.is_ipv6() { "-6" } else { "-4" };
    let args = [
        "netns", "exec", ns, "ping", family, "-n", "-q", "-c", "1", "-W", "1", dst,
    ];
    let cmdline = command_line("ip", &args);
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to run `{cmdline}`"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{cmdline}`"))?
        {
            if status.success() {
                return Ok(Outcome::Ok);
            }
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                // Best effort: the message only decorates the failure.
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Ok(Outcome::Fail(format!(
                "`{cmdline}` {status} {}",
                stderr.trim()
            )));
        }
        let stopped = stop.load(Ordering::Relaxed);
        if stopped || started.elapsed() >= PING_HARD_LIMIT {
            let _ = child.kill();
            child
                .wait()
                .with_context(|| format!("reaping `{cmdline}`"))?;
            return Ok(if stopped {
                Outcome::Stopped
            } else {
                Outcome::Fail(format!("`{cmdline}` did not finish in time"))
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_timeout(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Runs in `P-c1`: one datagram to the echo server in `P-c2`, waits for it back.
fn udp_probe(seq: u64, stop: &AtomicBool) -> Result<Outcome> {
    let src = SocketAddr::new(lab_ip(addr::C1_V4)?, 0);
    let dst = SocketAddr::new(lab_ip(addr::C2_V4)?, UDP_PORT);
    let payload = format!("hopscope udp {seq}");
    let sock = UdpSocket::bind(src).with_context(|| format!("binding UDP socket to {src}"))?;
    sock.set_read_timeout(Some(POLL))
        .context("setting UDP read timeout")?;
    sock.connect(dst)
        .with_context(|| format!("connecting UDP socket to {dst}"))?;
    if let Err(err) = sock.send(payload.as_bytes()) {
        return Ok(Outcome::Fail(format!("udp send to {dst}: {err}")));
    }
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut buf = [0u8; 512];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Outcome::Stopped);
        }
        match sock.recv(&mut buf) {
            Ok(n) if &buf[..n] == payload.as_bytes() => return Ok(Outcome::Ok),
            Ok(_) => {} // a late echo of something else: keep waiting
            Err(err) if is_timeout(err.kind()) => {}
            Err(err) => return Ok(Outcome::Fail(format!("udp echo from {dst}: {err}"))),
        }
        if Instant::now() >= deadline {
            return Ok(Outcome::Fail(format!(
                "no udp echo from {dst} within {PROBE_TIMEOUT:?}"
            )));
        }
    }
}

/// Runs in `P-c1`: one request line to the server in `P-r1`, reads the reply
/// until the server closes.
fn tcp_probe(seq: u64, stop: &AtomicBool) -> Result<Outcome> {
    let dst = SocketAddr::new(lab_ip(addr::R1_V4)?, TCP_PORT);
    let request = format!("hopscope tcp {seq}\n");
    let deadline = Instant::now() + PROBE_TIMEOUT;

    // Short connect attempts so the stop flag is seen while the peer is silent.
    let mut stream = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Outcome::Stopped);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Outcome::Fail(format!(
                "tcp connect to {dst} timed out after {PROBE_TIMEOUT:?}"
            )));
        }
        match TcpStream::connect_timeout(&dst, left.min(Duration::from_millis(100))) {
            Ok(stream) => break stream,
            Err(err) if is_timeout(err.kind()) => {}
            Err(err) => return Ok(Outcome::Fail(format!("tcp connect to {dst}: {err}"))),
        }
    };
    stream
        .set_read_timeout(Some(POLL))
        .context("setting TCP read timeout")?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .context("setting TCP write timeout")?;
    if let Err(err) = stream.write_all(request.as_bytes()) {
        return Ok(Outcome::Fail(format!("tcp send to {dst}: {err}")));
    }

    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Outcome::Stopped);
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(err) if is_timeout(err.kind()) => {}
            Err(err) => return Ok(Outcome::Fail(format!("tcp reply from {dst}: {err}"))),
        }
        if Instant::now() >= deadline {
            return Ok(Outcome::Fail(format!(
                "tcp reply from {dst} incomplete after {PROBE_TIMEOUT:?}"
            )));
        }
    }
    let expected = tcp_reply_for(request.as_bytes());
    if reply == expected {
        Ok(Outcome::Ok)
    } else {
        Ok(Outcome::Fail(format!(
            "tcp reply from {dst} was {:?}, expected {:?}",
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(&expected)
        )))
    }
}

fn tcp_reply_for(request: &[u8]) -> Vec<u8> {
    let mut reply = b"ack ".to_vec();
    reply.extend_from_slice(request);
    reply
}

/// Background servers of one traffic run; stopped and joined on shutdown or drop.
struct Servers {
    stop: Arc<AtomicBool>,
    running: Vec<(&'static str, JoinHandle<Result<Result<()>>>)>,
}

type ServerFn = fn(ready: mpsc::Sender<Result<()>>, stop: &AtomicBool) -> Result<()>;

impl Servers {
    fn new() -> Servers {
        Servers {
            stop: Arc::new(AtomicBool::new(false)),
            running: Vec::new(),
        }
    }

    /// Starts `server` on a thread in `ns` and waits until it is listening.
    fn start(&mut self, what: &'static str, ns: &str, server: ServerFn) -> Result<()> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::clone(&self.stop);
        let handle = spawn_in_netns(ns, move || server(ready_tx, &stop))
            .with_context(|| format!("starting the {what} server in `{ns}`"))?;
        match ready_rx.recv_timeout(SERVER_READY_TIMEOUT) {
            Ok(Ok(())) => {
                self.running.push((what, handle));
                Ok(())
            }
            Ok(Err(err)) => {
                let _ = handle.join();
                Err(err.context(format!("starting the {what} server in `{ns}`")))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The thread ended before reporting: setns failed or it panicked.
                let err = match handle.join() {
                    Ok(Err(err)) => err,
                    Ok(Ok(Err(err))) => err,
                    Ok(Ok(Ok(()))) => anyhow!("server exited before it was ready"),
                    Err(_) => anyhow!("server thread panicked"),
                };
                Err(err.context(format!("starting the {what} server in `{ns}`")))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.running.push((what, handle));
                bail!("the {what} server in `{ns}` was not ready within {SERVER_READY_TIMEOUT:?}")
            }
        }
    }

    /// Stops and joins every server, reporting the first failure.
    fn shutdown(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let mut failures = Vec::new();
        for (what, handle) in self.running.drain(..) {
            match handle.join() {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) | Ok(Err(err)) => {
                    failures.push(format!("{what} server: {err:#}"));
                }
                Err(_) => failures.push(format!("{what} server panicked")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("{}", failures.join("; "))
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Sends the outcome of `setup` on `ready` and passes it on.
fn announce<T>(ready: &mpsc::Sender<Result<()>>, setup: Result<T>) -> Result<T> {
    match setup {
        Ok(value) => {
            let _ = ready.send(Ok(()));
            Ok(value)
        }
        Err(err) => {
            let _ = ready.send(Err(anyhow!("{err:#}")));
            Err(err)
        }
    }
}

/// Retries `bind` while the address is in use, for at most [`BIND_RETRY`].
///
/// A server socket closed a moment ago can still be held by a child process
/// forked by another thread of this program (fds are copied at fork and only
/// dropped at exec, CLOEXEC or not), so "address in use" right after a
/// previous run is expected and short-lived.
fn bind_retrying<S>(mut bind: impl FnMut() -> std::io::Result<S>) -> std::io::Result<S> {
    let deadline = Instant::now() + BIND_RETRY;
    loop {
        match bind() {
            Err(err) if err.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Runs in `P-c2`: echoes every datagram from a lab address back to its sender.
fn udp_echo_server(ready: mpsc::Sender<Result<()>>, stop: &AtomicBool) -> Result<()> {
    let setup = (|| -> Result<UdpSocket> {
        let local = SocketAddr::new(lab_ip(addr::C2_V4)?, UDP_PORT);
        let sock = bind_retrying(|| UdpSocket::bind(local))
            .with_context(|| format!("binding UDP echo socket {local}"))?;
        sock.set_read_timeout(Some(POLL))
            .context("setting UDP server read timeout")?;
        Ok(sock)
    })();
    let sock = announce(&ready, setup)?;
    drop(ready);

    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, peer)) => {
                if !addr::is_lab_addr(&peer.ip()) {
                    continue;
                }
                if let Err(err) = sock.send_to(&buf[..n], peer) {
                    log::debug!("udp echo to {peer}: {err}");
                }
            }
            Err(err) if is_timeout(err.kind()) => {}
            // An ICMP error for an earlier echo surfaces on the next call.
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => {}
            Err(err) => return Err(err).context("udp echo server receive"),
        }
    }
    Ok(())
}

/// Runs in `P-r1`: per connection, reads one request line, writes
/// `ack <request>` and closes.
fn tcp_reply_server(ready: mpsc::Sender<Result<()>>, stop: &AtomicBool) -> Result<()> {
    let setup = (|| -> Result<TcpListener> {
        let local = SocketAddr::new(lab_ip(addr::R1_V4)?, TCP_PORT);
        let listener = bind_retrying(|| TcpListener::bind(local))
            .with_context(|| format!("binding TCP listener {local}"))?;
        listener
            .set_nonblocking(true)
            .context("making the TCP listener non-blocking")?;
        Ok(listener)
    })();
    let listener = announce(&ready, setup)?;
    drop(ready);

    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if !addr::is_lab_addr(&peer.ip()) {
                    continue;
                }
                if let Err(err) = serve_tcp(stream, stop) {
                    log::debug!("tcp server, client {peer}: {err:#}");
                }
            }
            Err(err) if is_timeout(err.kind()) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) if err.kind() == ErrorKind::ConnectionAborted => {}
            Err(err) => return Err(err).context("tcp server accept"),
        }
    }
    Ok(())
}

fn serve_tcp(mut stream: TcpStream, stop: &AtomicBool) -> Result<()> {
    stream
        .set_nonblocking(false)
        .context("making the connection blocking")?;
    stream
        .set_read_timeout(Some(POLL))
        .context("setting read timeout")?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .context("setting write timeout")?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    while !request.contains(&b'\n') && request.len() < 4096 {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            bail!("no complete request within {PROBE_TIMEOUT:?}");
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(err) if is_timeout(err.kind()) => {}
            Err(err) => return Err(err).context("reading request"),
        }
    }
    stream
        .write_all(&tcp_reply_for(&request))
        .context("writing reply")?;
    stream
        .shutdown(std::net::Shutdown::Both)
        .context("closing connection")?;
    Ok(())
}
