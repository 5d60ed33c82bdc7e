//! The demo lab: a small docker-like topology built entirely from network
//! namespaces that share one name prefix, used by `hopscope lab
//! up|down|status|traffic`, by the demo and by the privileged tests.
//!
//! Topology for prefix `P`:
//!
//! ```text
//!   P-c1 eth0 ──veth── vc1 ┐
//!                          ├─ br0 (198.18.0.1/24, 2001:2::1/64)   P-host
//!   P-c2 eth0 ──veth── vc2 ┘    forwarding on; vr1 (198.18.1.1/24, 2001:2:0:1::1/64)
//!   P-r1 eth0 ──veth── vr1
//! ```
//!
//! Network safety is absolute: nothing is created in the root namespace, no
//! namespace gets a default route, only 198.18.0.0/15 (RFC 2544 benchmarking)
//! and 2001:2::/48 (RFC 5180 benchmarking) are used, and traffic is only ever
//! sent to addresses on links the lab created.
//!
//! Facts worth knowing:
//! - Everything is built with `ip` (iproute2), one command at a time; every exit
//!   status is checked and errors carry the command line and its stderr.
//! - Veth peers are created straight into their target namespace (`ip -n P-host
//!   link add vc1 type veth peer name eth0 netns P-c1`), so no interface ever
//!   exists in the root namespace, not even briefly.
//! - IPv6 addresses are added with `nodad`, and `accept_dad=0`,
//!   `router_solicitations=0`, `accept_ra=0` are set in every lab namespace
//!   before any link exists, so addresses work at once and the links stay quiet;
//!   the bridge ports `vc1`/`vc2` get `addrgenmode none` (no link-local
//!   address of their own). Forwarding is switched on in `P-host` and
//!   explicitly off in the other three namespaces.
//! - A named netns is a bind mount of an nsfs inode at `/run/netns/NAME`; the
//!   `st_ino` of that path is the kernel's `ns.inum`, the same number BPF
//!   programs read from `net->ns.inum` and that `/proc/<tid>/ns/net` shows.
//! - `/proc/sys/net` resolves against the network namespace of the calling
//!   *thread*, so sysctls are written from a thread that joined the namespace
//!   with `setns(2)` (see [`in_netns`]); `/proc/self/ns/net` names the process'
//!   main thread, use `/proc/thread-self/ns/net` for the current thread.
//! - Deleting a namespace (`ip netns del`) unmounts `/run/netns/NAME`; the
//!   kernel destroys the namespace and its veths asynchronously once the last
//!   reference is gone. New veths always live in new namespaces, so a rebuild
//!   never collides with interfaces still being torn down.

mod traffic;

pub use traffic::{ParseTrafficKindError, TrafficKind, TrafficOpts, TrafficReport};

use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use serde::Serialize;

/// Prefix used when the user does not pick one.
pub const DEFAULT_PREFIX: &str = "hs";

/// UDP echo port served in `P-c2` during `lab traffic`.
pub const UDP_PORT: u16 = 7007;

/// TCP request/reply port served in `P-r1` during `lab traffic`.
pub const TCP_PORT: u16 = 8008;

/// Longest accepted prefix; keeps `P-host` within the 15-byte name limits.
pub const MAX_PREFIX_LEN: usize = 10;

/// Where iproute2 keeps the bind mounts of named network namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Upper bound for links to become operationally up after `up`.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Addresses of the lab. Every one lies in 198.18.0.0/15 or 2001:2::/48.
pub mod addr {
    use std::net::IpAddr;

    /// `br0` in `P-host`, gateway of `P-c1` and `P-c2`.
    pub const BR0_V4: &str = "198.18.0.1";
    /// `eth0` in `P-c1`.
    pub const C1_V4: &str = "198.18.0.2";
    /// `eth0` in `P-c2`.
    pub const C2_V4: &str = "198.18.0.3";
    /// `vr1` in `P-host`, gateway of `P-r1`.
    pub const HOST_R1_V4: &str = "198.18.1.1";
    /// `eth0` in `P-r1`.
    pub const R1_V4: &str = "198.18.1.2";
    /// `br0` in `P-host`.
    pub const BR0_V6: &str = "2001:2::1";
    /// `eth0` in `P-c1`.
    pub const C1_V6: &str = "2001:2::2";
    /// `eth0` in `P-c2`.
    pub const C2_V6: &str = "2001:2::3";
    /// `vr1` in `P-host`, gateway of `P-r1`.
    pub const HOST_R1_V6: &str = "2001:2:0:1::1";
    /// `eth0` in `P-r1`.
    pub const R1_V6: &str = "2001:2:0:1::2";
    /// The only IPv4 range the lab uses (RFC 2544 benchmarking).
    pub const LAB_NET_V4: &str = "198.18.0.0/15";
    /// The only IPv6 range the lab uses (RFC 5180 benchmarking).
    pub const LAB_NET_V6: &str = "2001:2::/48";

    /// True if `ip` lies inside the lab's ranges (198.18.0.0/15 or 2001:2::/48).
    pub fn is_lab_addr(ip: &IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                o[0] == 198 && (o[1] & 0xfe) == 18
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0
            }
        }
    }
}

/// One lab, identified by its namespace name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    prefix: String,
}

impl Lab {
    /// Validates `prefix` (1..=10 chars of `[a-z0-9]`, starting with a letter).
    pub fn new(prefix: &str) -> Result<Lab> {
        validate_prefix(prefix)?;
        Ok(Lab {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Namespace holding the bridge and the router ends.
    pub fn host(&self) -> String {
        format!("{}-host", self.prefix)
    }

    /// First container on the bridge.
    pub fn c1(&self) -> String {
        format!("{}-c1", self.prefix)
    }

    /// Second container on the bridge.
    pub fn c2(&self) -> String {
        format!("{}-c2", self.prefix)
    }

    /// Routed peer behind `P-host`.
    pub fn r1(&self) -> String {
        format!("{}-r1", self.prefix)
    }

    /// All lab namespaces: `[host, c1, c2, r1]`.
    pub fn namespaces(&self) -> Vec<String> {
        vec![self.host(), self.c1(), self.c2(), self.r1()]
    }

    /// Builds the lab. Any part of an earlier lab with this prefix is removed
    /// first, so calling this twice leaves one fresh lab. On failure whatever
    /// was built is removed again.
    pub fn up(&self) -> Result<()> {
        if self.namespaces().iter().any(|ns| netns_present(ns)) {
            self.down()
                .with_context(|| format!("removing the existing lab `{}`", self.prefix))?;
        }
        if let Err(err) = self.build() {
            if let Err(cleanup) = self.down() {
                log::warn!("cleaning up after a failed `lab up`: {cleanup:#}");
            }
            return Err(err.context(format!("building lab `{}`", self.prefix)));
        }
        Ok(())
    }

    /// Removes exactly `P-host`, `P-c1`, `P-c2` and `P-r1` where present.
    /// Succeeds when none of them exists.
    pub fn down(&self) -> Result<()> {
        let mut failures = Vec::new();
        for ns in self.namespaces() {
            if netns_present(&ns) {
                if let Err(err) = ip(&["netns", "del", &ns]) {
                    failures.push(format!("{err:#}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "removing lab `{}` failed: {}",
                self.prefix,
                failures.join("; ")
            )
        }
    }

    /// True when all four lab namespaces are present.
    pub fn exists(&self) -> bool {
        self.namespaces().iter().all(|ns| netns_present(ns))
    }

    /// Inode of the namespace `ns` (a full name such as `hs-c1`), which is the
    /// kernel's `ns.inum` for it.
    pub fn netns_inode(&self, ns: &str) -> Result<u64> {
        netns_inode(ns)
    }

    /// Per-namespace inode, interfaces and addresses. Absent namespaces are
    /// reported as such rather than as an error.
    pub fn status(&self) -> Result<LabStatus> {
        let mut namespaces = Vec::new();
        for name in self.namespaces() {
            if !netns_present(&name) {
                namespaces.push(NamespaceStatus {
                    name,
                    present: false,
                    inode: None,
                    interfaces: Vec::new(),
                });
                continue;
            }
            let inode = netns_inode(&name)?;
            let out = ip(&["-n", &name, "-br", "addr"])?;
            namespaces.push(NamespaceStatus {
                name,
                present: true,
                inode: Some(inode),
                interfaces: parse_brief_addr(&out),
            });
        }
        Ok(LabStatus {
            prefix: self.prefix.clone(),
            namespaces,
        })
    }

    fn build(&self) -> Result<()> {
        let (host, c1, c2, r1) = (self.host(), self.c1(), self.c2(), self.r1());
        let leaves = [&c1, &c2, &r1];

        for ns in self.namespaces() {
            ip(&["netns", "add", &ns])?;
        }
        for ns in self.namespaces() {
            configure_sysctls(&ns, ns == host)?;
        }

        // Links. Every veth peer is created directly inside its namespace.
        ip(&["-n", &host, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &host,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ])?;
        for (host_end, peer_ns) in [("vc1", &c1), ("vc2", &c2), ("vr1", &r1)] {
            ip(&[
                "-n", &host, "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
                "netns", peer_ns,
            ])?;
        }
        for port in ["vc1", "vc2"] {
            // Bridge ports need no IPv6 link-local address of their own.
            ip(&["-n", &host, "link", "set", port, "addrgenmode", "none"])?;
            ip(&["-n", &host, "link", "set", port, "master", "br0"])?;
        }
        for dev in ["br0", "vc1", "vc2", "vr1"] {
            ip(&["-n", &host, "link", "set", dev, "up"])?;
        }
        for ns in leaves {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }

        // Addresses.
        let v4 = |a: &str, len: u8| format!("{a}/{len}");
        let addrs: [(&str, &str, String, String); 5] = [
            (&host, "br0", v4(addr::BR0_V4, 24), v4(addr::BR0_V6, 64)),
            (
                &host,
                "vr1",
                v4(addr::HOST_R1_V4, 24),
                v4(addr::HOST_R1_V6, 64),
            ),
            (&c1, "eth0", v4(addr::C1_V4, 24), v4(addr::C1_V6, 64)),
            (&c2, "eth0", v4(addr::C2_V4, 24), v4(addr::C2_V6, 64)),
            (&r1, "eth0", v4(addr::R1_V4, 24), v4(addr::R1_V6, 64)),
        ];
        for (ns, dev, a4, a6) in &addrs {
            ip(&["-n", ns, "addr", "add", a4, "dev", dev])?;
            ip(&["-n", ns, "addr", "add", a6, "dev", dev, "nodad"])?;
        }

        // Routes: only the lab ranges, never a default route.
        let gateways = [
            (&c1, addr::BR0_V4, addr::BR0_V6),
            (&c2, addr::BR0_V4, addr::BR0_V6),
            (&r1, addr::HOST_R1_V4, addr::HOST_R1_V6),
        ];
        for (ns, gw4, gw6) in gateways {
            ip(&[
                "-n",
                ns,
                "-4",
                "route",
                "add",
                addr::LAB_NET_V4,
                "via",
                gw4,
                "dev",
                "eth0",
            ])?;
            ip(&[
                "-n",
                ns,
                "-6",
                "route",
                "add",
                addr::LAB_NET_V6,
                "via",
                gw6,
                "dev",
                "eth0",
            ])?;
        }

        self.wait_links_up(LINK_UP_TIMEOUT)
    }

    /// Polls until every lab link reports operstate UP, or fails after `timeout`.
    fn wait_links_up(&self, timeout: Duration) -> Result<()> {
        let expected: [(String, &[&str]); 4] = [
            (self.host(), &["br0", "vc1", "vc2", "vr1"]),
            (self.c1(), &["eth0"]),
            (self.c2(), &["eth0"]),
            (self.r1(), &["eth0"]),
        ];
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = Vec::new();
            for (ns, devs) in &expected {
                let out = ip(&["-n", ns, "-br", "link"])?;
                let links = parse_brief_addr(&out);
                for dev in devs.iter() {
                    let state = links
                        .iter()
                        .find(|l| l.name == *dev)
                        .map_or("MISSING", |l| l.state.as_str());
                    if state != "UP" {
                        pending.push(format!("{ns}/{dev} is {state}"));
                    }
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "links not operationally up after {:?}: {}",
                    timeout,
                    pending.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Output of [`Lab::status`].
#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub prefix: String,
    pub namespaces: Vec<NamespaceStatus>,
}

impl LabStatus {
    /// True when all lab namespaces are present.
    pub fn is_up(&self) -> bool {
        self.namespaces.iter().all(|ns| ns.present)
    }
}

/// One namespace of a [`LabStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceStatus {
    pub name: String,
    pub present: bool,
    /// `ns.inum`, the `st_ino` of `/run/netns/NAME`.
    pub inode: Option<u64>,
    pub interfaces: Vec<InterfaceStatus>,
}

/// One line of `ip -br addr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceStatus {
    /// Interface name without the `@ifN` peer suffix.
    pub name: String,
    /// Operational state as iproute2 prints it (`UP`, `DOWN`, `UNKNOWN`, ...).
    pub state: String,
    /// Addresses with prefix length, e.g. `198.18.0.2/24`.
    pub addresses: Vec<String>,
}

impl fmt::Display for LabStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = self.namespaces.iter().filter(|ns| ns.present).count();
        let verdict = if self.is_up() {
            "up"
        } else if present == 0 {
            "down"
        } else {
            "partial"
        };
        writeln!(
            f,
            "lab `{}`: {verdict} ({present}/{} namespaces)",
            self.prefix,
            self.namespaces.len()
        )?;

        let mut rows: Vec<[String; 5]> = vec![[
            "NAMESPACE".into(),
            "NETNS INODE".into(),
            "INTERFACE".into(),
            "STATE".into(),
            "ADDRESSES".into(),
        ]];
        for ns in &self.namespaces {
            let inode = ns.inode.map_or_else(|| "-".to_owned(), |i| i.to_string());
            if !ns.present {
                rows.push([
                    ns.name.clone(),
                    inode,
                    "-".into(),
                    "-".into(),
                    "(absent)".into(),
                ]);
                continue;
            }
            if ns.interfaces.is_empty() {
                rows.push([ns.name.clone(), inode, "-".into(), "-".into(), "".into()]);
                continue;
            }
            for (i, iface) in ns.interfaces.iter().enumerate() {
                let (name, ino) = if i == 0 {
                    (ns.name.clone(), inode.clone())
                } else {
                    (String::new(), String::new())
                };
                rows.push([
                    name,
                    ino,
                    iface.name.clone(),
                    iface.state.clone(),
                    iface.addresses.join(" "),
                ]);
            }
        }

        let mut widths = [0usize; 4];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.len());
            }
        }
        for row in &rows {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Builds a lab on creation and always removes it on drop (tests use unique
/// prefixes).
pub struct LabGuard {
    pub lab: Lab,
}

impl LabGuard {
    /// Validates `prefix` and builds the lab (replacing any leftover one).
    pub fn up(prefix: &str) -> Result<LabGuard> {
        let lab = Lab::new(prefix)?;
        lab.up()?;
        Ok(LabGuard { lab })
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = self.lab.down();
    }
}

/// Runs `f` on a fresh thread whose network namespace is `ns` (setns on
/// `/run/netns/NS`), returning its result. A panic in `f` becomes an error.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    in_netns_scoped(ns, f)
}

/// Like [`in_netns`] but returns at once with the thread's handle; for
/// long-running work such as servers. Joining yields `Err` if `setns` failed.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<Result<T>>> {
    let file = open_netns(ns)?;
    let name = ns.to_owned();
    std::thread::Builder::new()
        .name(thread_name(ns))
        .spawn(move || {
            enter_netns(&file, &name)?;
            Ok(f())
        })
        .with_context(|| format!("spawning a thread for netns `{ns}`"))
}

/// [`in_netns`] without the `'static` bound, so `f` may borrow from the
/// caller (a scoped thread is joined before this returns).
pub(crate) fn in_netns_scoped<'a, T: Send>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'a,
) -> Result<T> {
    let file = open_netns(ns)?;
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name(thread_name(ns))
            .spawn_scoped(scope, || -> Result<T> {
                enter_netns(&file, ns)?;
                Ok(f())
            })
            .with_context(|| format!("spawning a thread for netns `{ns}`"))?;
        match handle.join() {
            Ok(result) => result,
            Err(payload) => Err(anyhow!(
                "code running in netns `{ns}` panicked: {}",
                panic_message(payload.as_ref())
            )),
        }
    })
}

fn open_netns(ns: &str) -> Result<File> {
    let path = netns_path(ns)?;
    File::open(&path).with_context(|| format!("opening network namespace {}", path.display()))
}

fn enter_netns(file: &File, ns: &str) -> Result<()> {
    setns(file, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns into network namespace `{ns}`"))
}

fn thread_name(ns: &str) -> String {
    // Linux keeps 15 bytes of a thread name; the namespace is the useful part.
    ns.chars().take(15).collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    let rule = "1 to 10 characters of [a-z0-9], starting with a letter";
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        bail!(
            "invalid lab prefix `{prefix}`: length {} (must be {rule})",
            prefix.len()
        );
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
    {
        bail!("invalid lab prefix `{prefix}`: character {bad:?} not allowed ({rule})");
    }
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!("invalid lab prefix `{prefix}`: must start with a letter ({rule})");
    }
    Ok(())
}

/// `/run/netns/NAME`, refusing names that are not a single path component.
fn netns_path(ns: &str) -> Result<PathBuf> {
    if ns.is_empty() || ns == "." || ns == ".." || ns.contains(['/', '\0']) {
        bail!("invalid network namespace name `{ns}`");
    }
    Ok(PathBuf::from(NETNS_DIR).join(ns))
}

fn netns_present(ns: &str) -> bool {
    netns_path(ns).is_ok_and(|p| p.symlink_metadata().is_ok())
}

fn netns_inode(ns: &str) -> Result<u64> {
    let path = netns_path(ns)?;
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("stat of network namespace {}", path.display()))?;
    // A live namespace is an nsfs inode bind-mounted over the file; a stale
    // file left behind (for example after a reboot) lives on the /run tmpfs.
    let own = std::fs::metadata("/proc/thread-self/ns/net")
        .context("stat of /proc/thread-self/ns/net")?;
    if meta.dev() != own.dev() {
        bail!(
            "{} is not a mounted network namespace (stale file?)",
            path.display()
        );
    }
    Ok(meta.ino())
}

/// Writes the lab's sysctls from a thread inside `ns`.
fn configure_sysctls(ns: &str, is_host: bool) -> Result<()> {
    let forward = if is_host { "1" } else { "0" };
    let settings: Vec<(&str, &str)> = vec![
        ("net/ipv4/ip_forward", forward),
        ("net/ipv6/conf/all/forwarding", forward),
        ("net/ipv6/conf/default/forwarding", forward),
        ("net/ipv6/conf/all/accept_dad", "0"),
        ("net/ipv6/conf/default/accept_dad", "0"),
        ("net/ipv6/conf/all/router_solicitations", "0"),
        ("net/ipv6/conf/default/router_solicitations", "0"),
        ("net/ipv6/conf/all/accept_ra", "0"),
        ("net/ipv6/conf/default/accept_ra", "0"),
    ];
    in_netns_scoped(ns, || -> Result<()> {
        for (key, value) in &settings {
            let path = format!("/proc/sys/{key}");
            std::fs::write(&path, value)
                .with_context(|| format!("writing {value} to {path} in netns `{ns}`"))?;
        }
        Ok(())
    })?
}

/// Parses `ip -br addr` / `ip -br link` output. For `link` the third column is
/// a MAC address and flags, which end up in `addresses`; callers of the link
/// form only look at names and states.
fn parse_brief_addr(out: &str) -> Vec<InterfaceStatus> {
    out.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let raw = cols.next()?;
            let name = raw.split('@').next().unwrap_or(raw).to_owned();
            let state = cols.next().unwrap_or("").to_owned();
            Some(InterfaceStatus {
                name,
                state,
                addresses: cols.map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// Runs `ip ARGS`, returning stdout; errors name the command and its stderr.
fn ip(args: &[&str]) -> Result<String> {
    run("ip", args)
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let cmdline = command_line(program, args);
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run `{cmdline}`"))?;
    if !out.status.success() {
        bail!(
            "`{cmdline}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}
