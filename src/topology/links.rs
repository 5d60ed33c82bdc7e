//! Interfaces of several network namespaces, read with rtnetlink, and the
//! links between them: veth peers, stacked devices' lower devices (vlan,
//! macvlan, ipvlan, vxlan, ip tunnels) and bridge/bond masters.
//!
//! hopscope calls [`read_links`] when an unknown `(netns, ifindex)` shows up
//! in an event, to learn what that interface is and what it is wired to. It
//! is not meant for every event: one call over ~10 namespaces costs a few
//! milliseconds (a thread, an `open`, a `setns`, a socket and one dump per
//! namespace, plus one `RTM_GETNSID` round trip per cross-namespace link).
//!
//! How a namespace is read: a short-lived thread enters it with
//! `setns(CLONE_NEWNET)` (per thread, so the caller's own namespace never
//! changes), opens a `NETLINK_ROUTE` socket there (a netlink socket stays
//! bound to the namespace it was created in, whatever the thread does
//! afterwards), dumps `RTM_GETLINK`, asks for the namespace ids it needs,
//! and returns plain data. All namespaces are read in parallel.
//!
//! Kernel facts this relies on:
//! - `IFLA_LINK` is the "iflink": for a veth (and netkit, vxcan) the peer's
//!   ifindex, for vlan/macvlan/ipvlan/macsec the lower device's, for ip
//!   tunnels (gre, ipip, sit, ip6tnl) the underlay device bound with `dev`
//!   (0 when none). The kernel omits it when iflink == ifindex (physical
//!   devices, bridges, ...), *except* when it also sends
//!   `IFLA_LINK_NETNSID`: then it is always present, even if it only
//!   repeats the device's own ifindex (vxlan or geneve moved to another
//!   namespace). So `IFLA_LINK` is trusted only for kinds known to have a
//!   real iflink, and for unknown kinds only when it differs from ifindex.
//! - `IFLA_LINK_NETNSID` says `IFLA_LINK` (and `IFLA_VXLAN_LINK`) lives in
//!   another namespace, the "link net" (`rtnl_link_ops->get_link_net`): the
//!   peer's namespace for veth, the lower device's for vlan/macvlan, the
//!   underlay socket's for vxlan/geneve/ip tunnels. It is absent when that
//!   namespace is the device's own.
//! - An nsid is *not* a global name: each namespace numbers the others it
//!   knows of, on its own (`ip netns list-id`), and the same peer has
//!   different ids as seen from different namespaces. The kernel assigns one
//!   on the fly while filling `IFLA_LINK_NETNSID` in a dump. To map an nsid
//!   of namespace A to a namespace, ask A: `RTM_GETNSID` with `NETNSA_FD` =
//!   an fd of namespace B answers `RTM_NEWNSID` with `NETNSA_NSID` = the id A
//!   uses for B, or -1 (`NETNSA_NSID_NOT_ASSIGNED`) when A has none. There
//!   is no query from an id to a namespace, so every candidate B is asked
//!   (stopping once all ids A uses are known). An id naming a namespace that
//!   is not among the handles stays unresolved: the reference then carries
//!   the ifindex from `IFLA_LINK` with `netns: 0` and an empty name.
//! - `IFLA_MASTER` is the bridge/bond/team/vrf a port is enslaved to; it is
//!   always in the port's own namespace (moving a port to another namespace
//!   releases it first).
//! - `IFLA_LINKINFO` nests `IFLA_INFO_KIND`, the `rtnl_link_ops` name
//!   ("veth", "bridge", "vxlan", "tun", "wireguard", ...) and
//!   `IFLA_INFO_DATA`, whose layout depends on the kind: `IFLA_VLAN_ID`
//!   (u16), `IFLA_VXLAN_ID` (u32, the VNI) and `IFLA_VXLAN_LINK` (u32, the
//!   underlay device, in the link net; vxlan has no iflink of its own).
//!   Devices without `rtnl_link_ops` have no kind: loopback (`lo`,
//!   `ARPHRD_LOOPBACK` and `IFF_LOOPBACK`) and real NICs (virtio, ...),
//!   which are reported as [`LinkKind::Physical`].
//! - tun and tap devices both have kind "tun"; since Linux 4.15 their info
//!   data carries `IFLA_TUN_TYPE` (u8: `IFF_TUN` = 1, `IFF_TAP` = 2), which
//!   6.18 does. Without it, `ARPHRD_ETHER` means tap and anything else
//!   (`ARPHRD_NONE`) tun.
//! - A vxlan (or geneve) moved to another namespace is dumped as `vx@ifN`
//!   with `IFLA_LINK` = its own ifindex and `IFLA_LINK_NETNSID` = where its
//!   socket lives (seen on 6.18); that `IFLA_LINK` is not a lower device.
//! - ifindexes are per namespace (`eth0` is 2 in many namespaces at once)
//!   and are reused after a device is deleted, so `(netns, ifindex)` names a
//!   device only at the time of the read; a device moved to another
//!   namespace keeps its ifindex only when that number is free there.
//! - A dump that raced with a change is flagged `NLM_F_DUMP_INTR` and is
//!   read again (a few times at most).
//! - Namespace inodes (`ns.inum`) are 32-bit; `stat(path).st_ino` on a
//!   namespace file is that inode.
//!
//! Robustness: messages are decoded with `netlink-packet-route`; should it
//! reject a message from a newer kernel (it validates attribute sizes), a
//! small fallback decoder reads the handful of attributes used here, so one
//! odd device never hides the rest of a namespace.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use netlink_packet_core::{
    DecodeError, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NlasIterator,
    Parseable, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    InfoData, InfoTun, InfoVlan, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo,
    LinkMessage,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sched::{setns, CloneFlags};

/// How hopscope reaches a namespace: a path that can be opened (e.g. /run/netns/NAME, /proc/PID/ns/net), with its inode.
///
/// An `inode` of 0 means "whatever the path names now"; any other value
/// must match the path's inode, else the namespace is skipped with an error
/// (the path was reused, e.g. `/proc/PID` of a new process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsHandle {
    pub inode: u32,
    pub path: std::path::PathBuf,
}

/// What a link is, from `IFLA_INFO_KIND` (or its absence).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Loopback,
    /// No `IFLA_INFO_KIND` and not loopback: a real NIC (or a device whose
    /// driver has no `rtnl_link_ops`).
    Physical,
    Veth,
    Bridge,
    Bond,
    Vlan,
    Vxlan,
    /// macvlan and macvtap.
    Macvlan,
    /// ipvlan and ipvtap.
    Ipvlan,
    Tun,
    Tap,
    Wireguard,
    Geneve,
    /// gre, gretap, ip6gre, ip6gretap, erspan, ip6erspan.
    Gre,
    /// ipip and ip6tnl.
    Ipip,
    Sit,
    Dummy,
    Team,
    /// Any other kind; [`LinkInfo::kind_name`] has the kernel's name.
    Other,
}

impl LinkKind {
    /// Lower-case name: "veth", "bridge", "loopback", "physical", ... "other".
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Loopback => "loopback",
            LinkKind::Physical => "physical",
            LinkKind::Veth => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Bond => "bond",
            LinkKind::Vlan => "vlan",
            LinkKind::Vxlan => "vxlan",
            LinkKind::Macvlan => "macvlan",
            LinkKind::Ipvlan => "ipvlan",
            LinkKind::Tun => "tun",
            LinkKind::Tap => "tap",
            LinkKind::Wireguard => "wireguard",
            LinkKind::Geneve => "geneve",
            LinkKind::Gre => "gre",
            LinkKind::Ipip => "ipip",
            LinkKind::Sit => "sit",
            LinkKind::Dummy => "dummy",
            LinkKind::Team => "team",
            LinkKind::Other => "other",
        }
    }
}

/// A link somewhere: namespace inode (0 when the namespace is not among the
/// handles read), ifindex there, and its name ("" when unknown).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkRef {
    pub netns: u32,
    pub ifindex: u32,
    pub ifname: String,
}

/// One link of one namespace, with its references resolved. Serialized
/// (JSON) into recordings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkInfo {
    pub netns: u32,
    pub ifindex: u32,
    pub ifname: String,
    pub kind: LinkKind,
    /// The raw IFLA_INFO_KIND string when there is one (e.g. "veth", "vxlan", "wireguard").
    pub kind_name: Option<String>,
    /// Bridge/bond master (same netns).
    pub master: Option<LinkRef>,
    /// Veth (netkit, vxcan) peer, possibly in another namespace.
    pub peer: Option<LinkRef>,
    /// vlan/macvlan/ipvlan/vxlan/tunnel lower device (IFLA_LINK, or
    /// IFLA_VXLAN_LINK for vxlan), possibly in another netns.
    pub parent: Option<LinkRef>,
    pub vlan_id: Option<u16>,
    pub vxlan_id: Option<u32>,
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

/// Reads every link of each namespace in `handles` and resolves peers/parents/masters across them.
/// A namespace that cannot be entered is skipped and reported in the error list (never a panic).
///
/// Links come out namespace by namespace in the order of `handles` (a
/// namespace given twice is read once), each sorted by ifindex.
pub fn read_links(handles: &[NetnsHandle]) -> (Vec<LinkInfo>, Vec<String>) {
    let mut errors = Vec::new();

    // Open every path once: the fd enters the namespace (setns) and names it
    // in RTM_GETNSID queries made from the other namespaces.
    let mut opened: Vec<OpenNetns> = Vec::new();
    for h in handles {
        match open_netns(h) {
            Ok(o) => {
                if !opened.iter().any(|x| x.inode == o.inode) {
                    opened.push(o);
                }
            }
            Err(e) => errors.push(e),
        }
    }

    // One short-lived thread per namespace, up to MAX_THREADS at once.
    let mut results: Vec<Result<NsLinks, String>> = Vec::new();
    for batch in opened.chunks(MAX_THREADS) {
        std::thread::scope(|scope| {
            let all = &opened[..];
            let threads: Vec<_> = batch
                .iter()
                .map(|ns| {
                    let spawned = std::thread::Builder::new()
                        .name("hopscope-links".into())
                        .spawn_scoped(scope, move || read_one(ns, all));
                    (ns, spawned)
                })
                .collect();
            for (ns, spawned) in threads {
                results.push(match spawned {
                    Ok(handle) => handle.join().unwrap_or_else(|_| {
                        Err(format!("{}: reading links panicked", ns.describe()))
                    }),
                    Err(e) => Err(format!("{}: spawning a thread: {e}", ns.describe())),
                });
            }
        });
    }

    let mut read: Vec<NsLinks> = Vec::new();
    for r in results {
        match r {
            Ok(ns) => {
                errors.extend(ns.warnings.iter().cloned());
                read.push(ns);
            }
            Err(e) => errors.push(e),
        }
    }
    (resolve(&read), errors)
}

/// Namespaces read in parallel (one thread each).
const MAX_THREADS: usize = 16;

/// A handle whose path is open.
struct OpenNetns {
    inode: u32,
    path: PathBuf,
    file: File,
}

impl OpenNetns {
    fn describe(&self) -> String {
        format!("netns {} (inode {})", self.path.display(), self.inode)
    }
}

fn open_netns(h: &NetnsHandle) -> Result<OpenNetns, String> {
    let what = || format!("netns {} (inode {})", h.path.display(), h.inode);
    let file = File::open(&h.path).map_err(|e| format!("{}: open: {e}", what()))?;
    // A dead bind mount (`ip netns` entry whose namespace is gone) is a
    // plain empty file; setns would only say EINVAL.
    let fs = nix::sys::statfs::fstatfs(&file).map_err(|e| format!("{}: fstatfs: {e}", what()))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(format!("{}: not a namespace file (not on nsfs)", what()));
    }
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: fstat: {e}", what()))?;
    let inode = u32::try_from(meta.ino())
        .map_err(|_| format!("{}: inode {} is not a namespace inode", what(), meta.ino()))?;
    if h.inode != 0 && h.inode != inode {
        return Err(format!(
            "{}: the path now names inode {inode}, not the expected namespace; skipped",
            what()
        ));
    }
    Ok(OpenNetns {
        inode,
        path: h.path.clone(),
        file,
    })
}

/// What the kernel said about one link, before cross-namespace resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct RawLink {
    ifindex: u32,
    ifname: String,
    kind_name: Option<String>,
    loopback: bool,
    /// `ARPHRD_*` of the device.
    link_layer: u16,
    up: bool,
    mtu: Option<u32>,
    /// `IFLA_LINK`.
    link: Option<u32>,
    /// `IFLA_LINK_NETNSID`.
    link_netnsid: Option<i32>,
    /// `IFLA_MASTER`.
    master: Option<u32>,
    vlan_id: Option<u16>,
    vxlan_id: Option<u32>,
    /// `IFLA_VXLAN_LINK`.
    vxlan_link: Option<u32>,
    /// `IFLA_TUN_TYPE`.
    tun_type: Option<u8>,
}

/// Links of one namespace and the nsids it uses for the others.
struct NsLinks {
    inode: u32,
    links: Vec<RawLink>,
    /// nsid (as this namespace numbers them) → namespace inode.
    nsids: HashMap<i32, u32>,
    /// Non-fatal problems (a failed nsid query).
    warnings: Vec<String>,
}

/// Runs on its own thread: enters `ns`, dumps its links and maps the nsids
/// they use. The thread ends right after, so its namespace never leaks.
fn read_one(ns: &OpenNetns, all: &[OpenNetns]) -> Result<NsLinks, String> {
    let what = ns.describe();
    setns(&ns.file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("{what}: setns: {e}"))?;
    let mut sock = RtSocket::open().map_err(|e| format!("{what}: netlink socket: {e}"))?;
    let mut links = sock
        .dump_links()
        .map_err(|e| format!("{what}: RTM_GETLINK dump: {e}"))?;
    links.sort_by_key(|l| l.ifindex);

    // Ask after the dump: filling IFLA_LINK_NETNSID is what assigns an id.
    let mut wanted: BTreeSet<i32> = links
        .iter()
        .filter_map(|l| l.link_netnsid)
        .filter(|&id| id >= 0)
        .collect();
    let mut nsids = HashMap::new();
    let mut warnings = Vec::new();
    for other in all {
        if wanted.is_empty() {
            break;
        }
        if other.inode == ns.inode {
            continue;
        }
        match sock.nsid_of(&other.file) {
            Ok(Some(id)) => {
                if wanted.remove(&id) {
                    nsids.insert(id, other.inode);
                }
            }
            Ok(None) => {}
            Err(e) => warnings.push(format!("{what}: RTM_GETNSID for {}: {e}", other.describe())),
        }
    }
    Ok(NsLinks {
        inode: ns.inode,
        links,
        nsids,
        warnings,
    })
}

/// Kinds whose `IFLA_LINK` is the peer of a pair.
fn is_pair_kind(kind_name: &str) -> bool {
    matches!(kind_name, "veth" | "netkit" | "vxcan")
}

/// Kinds whose `IFLA_LINK` is a lower device even when it equals their own
/// ifindex (possible across namespaces).
fn has_real_iflink(kind_name: &str) -> bool {
    matches!(
        kind_name,
        "vlan"
            | "macvlan"
            | "macvtap"
            | "ipvlan"
            | "ipvtap"
            | "macsec"
            | "gre"
            | "gretap"
            | "ip6gre"
            | "ip6gretap"
            | "erspan"
            | "ip6erspan"
            | "ipip"
            | "ip6tnl"
            | "sit"
            | "vti"
            | "vti6"
            | "ipoib"
    )
}

fn classify(raw: &RawLink) -> LinkKind {
    const ARPHRD_ETHER: u16 = 1;
    const ARPHRD_LOOPBACK: u16 = 772;
    const IFF_TAP: u8 = 2;
    let Some(kind) = raw.kind_name.as_deref() else {
        return if raw.loopback || raw.link_layer == ARPHRD_LOOPBACK {
            LinkKind::Loopback
        } else {
            LinkKind::Physical
        };
    };
    match kind {
        "veth" => LinkKind::Veth,
        "bridge" => LinkKind::Bridge,
        "bond" => LinkKind::Bond,
        "vlan" => LinkKind::Vlan,
        "vxlan" => LinkKind::Vxlan,
        "macvlan" | "macvtap" => LinkKind::Macvlan,
        "ipvlan" | "ipvtap" => LinkKind::Ipvlan,
        "tun" => match raw.tun_type {
            Some(IFF_TAP) => LinkKind::Tap,
            Some(_) => LinkKind::Tun,
            None if raw.link_layer == ARPHRD_ETHER => LinkKind::Tap,
            None => LinkKind::Tun,
        },
        "wireguard" => LinkKind::Wireguard,
        "geneve" => LinkKind::Geneve,
        "gre" | "gretap" | "ip6gre" | "ip6gretap" | "erspan" | "ip6erspan" => LinkKind::Gre,
        "ipip" | "ip6tnl" => LinkKind::Ipip,
        "sit" => LinkKind::Sit,
        "dummy" => LinkKind::Dummy,
        "team" => LinkKind::Team,
        _ => LinkKind::Other,
    }
}

/// Turns raw links into [`LinkInfo`]s, resolving references across the
/// namespaces that were read.
fn resolve(read: &[NsLinks]) -> Vec<LinkInfo> {
    let names: HashMap<(u32, u32), &str> = read
        .iter()
        .flat_map(|ns| {
            ns.links
                .iter()
                .map(move |l| ((ns.inode, l.ifindex), l.ifname.as_str()))
        })
        .collect();
    let read_inodes: HashSet<u32> = read.iter().map(|ns| ns.inode).collect();
    let link_ref = |netns: u32, ifindex: u32| LinkRef {
        netns,
        ifindex,
        ifname: names
            .get(&(netns, ifindex))
            .map(|s| s.to_string())
            .unwrap_or_default(),
    };

    let mut out = Vec::new();
    for ns in read {
        for raw in &ns.links {
            let kind = classify(raw);
            // The namespace IFLA_LINK / IFLA_VXLAN_LINK live in.
            let link_net = match raw.link_netnsid {
                None => ns.inode,
                Some(id) => ns
                    .nsids
                    .get(&id)
                    .copied()
                    .filter(|i| read_inodes.contains(i))
                    .unwrap_or(0),
            };
            let kind_name = raw.kind_name.as_deref().unwrap_or("");
            let iflink = raw.link.filter(|&l| l != 0);
            let mut peer = None;
            let mut parent = None;
            if is_pair_kind(kind_name) {
                peer = iflink.map(|l| link_ref(link_net, l));
            } else if kind == LinkKind::Vxlan {
                parent = raw
                    .vxlan_link
                    .filter(|&l| l != 0)
                    .map(|l| link_ref(link_net, l));
            } else if let Some(l) = iflink {
                if l != raw.ifindex || has_real_iflink(kind_name) {
                    parent = Some(link_ref(link_net, l));
                }
            }
            out.push(LinkInfo {
                netns: ns.inode,
                ifindex: raw.ifindex,
                ifname: raw.ifname.clone(),
                kind,
                kind_name: raw.kind_name.clone(),
                master: raw
                    .master
                    .filter(|&m| m != 0)
                    .map(|m| link_ref(ns.inode, m)),
                peer,
                parent,
                vlan_id: raw.vlan_id,
                vxlan_id: raw.vxlan_id,
                mtu: raw.mtu,
                up: raw.up,
            });
        }
    }
    out
}

/// A blocking rtnetlink socket of the calling thread's namespace.
struct RtSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// `recv` flag: return a datagram's real length even when it was cut.
const MSG_TRUNC: i32 = 0x20;

/// Attempts at a dump that keeps being interrupted by changes.
const DUMP_ATTEMPTS: usize = 4;

impl RtSocket {
    fn open() -> std::io::Result<RtSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(RtSocket {
            sock,
            seq: 0,
            // Dump chunks are at most 32 KiB (netlink's max_recvmsg_len).
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, String> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock
            .send(&bytes, 0)
            .map_err(|e| format!("send: {e}"))?;
        Ok(self.seq)
    }

    /// One datagram into `self.buf`; returns its length.
    fn recv(&mut self) -> Result<usize, String> {
        loop {
            match self.sock.recv(&mut &mut self.buf[..], MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(format!("datagram of {n} bytes truncated"))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
    }

    fn dump_links(&mut self) -> Result<Vec<RawLink>, String> {
        let mut last_err = String::new();
        for _ in 0..DUMP_ATTEMPTS {
            match self.dump_links_once()? {
                Some(links) => return Ok(links),
                None => last_err = "interrupted by concurrent changes (NLM_F_DUMP_INTR)".into(),
            }
        }
        Err(format!("{last_err}, {DUMP_ATTEMPTS} times"))
    }

    /// `None` when the dump was interrupted and must be redone.
    fn dump_links_once(&mut self) -> Result<Option<Vec<RawLink>>, String> {
        let seq = self.send(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        )?;
        let mut links = Vec::new();
        let mut interrupted = false;
        self.replies(seq, |kind, flags, payload| {
            if flags & NLM_F_DUMP_INTR != 0 {
                interrupted = true;
            }
            match kind {
                NLMSG_DONE => {
                    // DONE carries the dump's status: an i32, < 0 on failure.
                    if let Some(code) = status_code(payload) {
                        if code < 0 {
                            return Err(errno_text(code));
                        }
                    }
                    Ok(Some(()))
                }
                RTM_NEWLINK => {
                    links.push(decode_link(payload)?);
                    Ok(None)
                }
                _ => Ok(None),
            }
        })?;
        Ok((!interrupted).then_some(links))
    }

    /// Reads the replies to request `seq` frame by frame until `on` returns
    /// a result; NLMSG_ERROR ends with an error. Frames of other requests
    /// are skipped.
    fn replies<T>(
        &mut self,
        seq: u32,
        mut on: impl FnMut(u16, u16, &[u8]) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        loop {
            let n = self.recv()?;
            let mut off = 0;
            while off < n {
                let frame = NetlinkBuffer::new_checked(&self.buf[off..n])
                    .map_err(|e| format!("bad netlink frame: {e}"))?;
                let len = frame.length() as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if frame.sequence_number() != seq {
                    continue;
                }
                if frame.message_type() == NLMSG_ERROR {
                    let code = status_code(frame.payload()).unwrap_or(-1);
                    return Err(errno_text(code));
                }
                if let Some(done) = on(frame.message_type(), frame.flags(), frame.payload())? {
                    return Ok(done);
                }
            }
        }
    }

    /// The nsid this socket's namespace uses for the namespace open as
    /// `target`; `None` when it has assigned none.
    fn nsid_of(&mut self, target: &File) -> Result<Option<i32>, String> {
        let mut msg = NsidMessage::default();
        // NETNSA_FD is an fd number of this process (fds are shared by all
        // threads, whatever namespace each is in).
        let fd = u32::try_from(target.as_raw_fd()).map_err(|_| "negative fd".to_string())?;
        msg.attributes.push(NsidAttribute::Fd(fd));
        let seq = self.send(RouteNetlinkMessage::GetNsId(msg), NLM_F_REQUEST)?;
        self.replies(seq, |kind, _, payload| {
            if kind != RTM_NEWNSID {
                return Ok(None);
            }
            let reply =
                NsidMessage::parse(payload).map_err(|e| format!("decoding RTM_NEWNSID: {e}"))?;
            let id = reply.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) => Some(*id),
                _ => None,
            });
            Ok(Some(id.filter(|&id| id >= 0)))
        })
    }
}

const RTM_NEWLINK: u16 = 16;
const RTM_NEWNSID: u16 = 88;

/// The leading i32 of an NLMSG_DONE / NLMSG_ERROR payload.
fn status_code(payload: &[u8]) -> Option<i32> {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn errno_text(code: i32) -> String {
    let errno = nix::errno::Errno::from_raw(code.saturating_neg());
    format!("kernel error {code} ({errno})")
}

/// Decodes an RTM_NEWLINK payload: with netlink-packet-route, or with the
/// minimal decoder if that one rejects the message.
fn decode_link(payload: &[u8]) -> Result<RawLink, String> {
    match LinkMessage::parse(payload) {
        Ok(msg) => Ok(raw_from_message(&msg)),
        Err(full) => {
            log::debug!(
                "netlink-packet-route rejected an RTM_NEWLINK ({full}); minimal decoder used"
            );
            decode_link_minimal(payload)
                .map_err(|e| format!("decoding RTM_NEWLINK: {full}; minimal decoder: {e}"))
        }
    }
}

fn raw_from_message(msg: &LinkMessage) -> RawLink {
    let mut raw = RawLink {
        ifindex: msg.header.index,
        loopback: msg.header.flags.contains(LinkFlags::Loopback),
        link_layer: u16::from(msg.header.link_layer_type),
        up: msg.header.flags.contains(LinkFlags::Up),
        ..RawLink::default()
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => raw.ifname = n.clone(),
            LinkAttribute::Mtu(m) => raw.mtu = Some(*m),
            LinkAttribute::Link(l) => raw.link = Some(*l),
            LinkAttribute::LinkNetNsId(id) => raw.link_netnsid = Some(*id),
            LinkAttribute::Controller(m) => raw.master = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        NlLinkInfo::Kind(k) => raw.kind_name = Some(k.to_string()),
                        NlLinkInfo::Data(d) => read_info_data(d, &mut raw),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    raw
}

fn read_info_data(data: &InfoData, raw: &mut RawLink) {
    const IFLA_TUN_TYPE: u16 = 3;
    match data {
        InfoData::Vlan(v) => {
            for a in v {
                if let InfoVlan::Id(id) = a {
                    raw.vlan_id = Some(*id);
                }
            }
        }
        InfoData::Vxlan(v) => {
            for a in v {
                match a {
                    InfoVxlan::Id(id) => raw.vxlan_id = Some(*id),
                    InfoVxlan::Link(l) => raw.vxlan_link = Some(*l),
                    _ => {}
                }
            }
        }
        InfoData::Tun(v) => {
            for a in v {
                if let InfoTun::Other(nla) = a {
                    if nla.kind() == IFLA_TUN_TYPE && nla.value_len() == 1 {
                        let mut b = [0u8; 1];
                        nla.emit_value(&mut b);
                        raw.tun_type = Some(b[0]);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Reads only the attributes this module uses, straight from the bytes.
fn decode_link_minimal(payload: &[u8]) -> Result<RawLink, DecodeError> {
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MTU: u16 = 4;
    const IFLA_LINK: u16 = 5;
    const IFLA_MASTER: u16 = 10;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_LINK_NETNSID: u16 = 37;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_INFO_DATA: u16 = 2;
    const IFF_UP: u32 = 0x1;
    const IFF_LOOPBACK: u32 = 0x8;
    const HEADER: usize = 16; // struct ifinfomsg

    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u32_of = |v: &[u8]| (v.len() >= 4).then(|| u32_at(v, 0));
    if payload.len() < HEADER {
        return Err(DecodeError::from("ifinfomsg too short"));
    }
    let flags = u32_at(payload, 8);
    let mut raw = RawLink {
        ifindex: u32_at(payload, 4),
        link_layer: u16_at(payload, 2),
        up: flags & IFF_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        ..RawLink::default()
    };
    let mut data: Option<Vec<u8>> = None;
    for nla in NlasIterator::new(&payload[HEADER..]) {
        let nla = nla?;
        let v = nla.value();
        match nla.kind() {
            IFLA_IFNAME => {
                let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
                raw.ifname = String::from_utf8_lossy(&v[..end]).into_owned();
            }
            IFLA_MTU => raw.mtu = u32_of(v),
            IFLA_LINK => raw.link = u32_of(v),
            IFLA_MASTER => raw.master = u32_of(v),
            IFLA_LINK_NETNSID => raw.link_netnsid = u32_of(v).map(|x| x as i32),
            IFLA_LINKINFO => {
                for info in NlasIterator::new(v) {
                    let info = info?;
                    let iv = info.value();
                    match info.kind() {
                        IFLA_INFO_KIND => {
                            let end = iv.iter().position(|&c| c == 0).unwrap_or(iv.len());
                            raw.kind_name = Some(String::from_utf8_lossy(&iv[..end]).into_owned());
                        }
                        IFLA_INFO_DATA => data = Some(iv.to_vec()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let (Some(kind), Some(data)) = (raw.kind_name.clone(), data) {
        for nla in NlasIterator::new(&data[..]) {
            let nla = nla?;
            let v = nla.value();
            match (kind.as_str(), nla.kind()) {
                // IFLA_VLAN_ID
                ("vlan", 1) if v.len() >= 2 => raw.vlan_id = Some(u16_at(v, 0)),
                // IFLA_VXLAN_ID, IFLA_VXLAN_LINK
                ("vxlan", 1) => raw.vxlan_id = u32_of(v),
                ("vxlan", 3) => raw.vxlan_link = u32_of(v),
                // IFLA_TUN_TYPE
                ("tun", 3) if !v.is_empty() => raw.tun_type = Some(v[0]),
                _ => {}
            }
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DefaultNla, Emitable};
    use netlink_packet_route::link::{InfoKind, LinkHeader, LinkLayerType};

    fn emit(msg: &LinkMessage) -> Vec<u8> {
        let mut b = vec![0; msg.buffer_len()];
        msg.emit(&mut b);
        b
    }

    fn message(index: u32, name: &str, attrs: Vec<LinkAttribute>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header = LinkHeader::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.link_layer_type = LinkLayerType::Ether;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.extend(attrs);
        m
    }

    /// Both decoders read the same fields from the same bytes.
    fn both(msg: &LinkMessage) -> RawLink {
        let bytes = emit(msg);
        let full = raw_from_message(&LinkMessage::parse(&bytes[..]).unwrap());
        let minimal = decode_link_minimal(&bytes).unwrap();
        assert_eq!(full, minimal);
        full
    }

    #[test]
    fn vlan_decodes_id_and_lower_device() {
        let raw = both(&message(
            7,
            "v100",
            vec![
                LinkAttribute::Mtu(1500),
                LinkAttribute::Link(3),
                LinkAttribute::LinkInfo(vec![
                    NlLinkInfo::Kind(InfoKind::Vlan),
                    NlLinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)])),
                ]),
            ],
        ));
        assert_eq!(raw.vlan_id, Some(100));
        assert_eq!(raw.link, Some(3));
        assert_eq!(raw.kind_name.as_deref(), Some("vlan"));
        assert_eq!(classify(&raw), LinkKind::Vlan);
    }

    #[test]
    fn vxlan_and_tap_and_cross_netns_veth_decode() {
        let vx = both(&message(
            9,
            "vx0",
            vec![
                LinkAttribute::Link(9),
                LinkAttribute::LinkNetNsId(4),
                LinkAttribute::LinkInfo(vec![
                    NlLinkInfo::Kind(InfoKind::Vxlan),
                    NlLinkInfo::Data(InfoData::Vxlan(vec![InfoVxlan::Id(42), InfoVxlan::Link(2)])),
                ]),
            ],
        ));
        assert_eq!(
            (vx.vxlan_id, vx.vxlan_link, vx.link_netnsid),
            (Some(42), Some(2), Some(4))
        );

        let tap = both(&message(
            5,
            "tap0",
            vec![LinkAttribute::LinkInfo(vec![
                NlLinkInfo::Kind(InfoKind::Tun),
                NlLinkInfo::Data(InfoData::Tun(vec![InfoTun::Other(DefaultNla::new(
                    3,
                    vec![2],
                ))])),
            ])],
        ));
        assert_eq!(classify(&tap), LinkKind::Tap);

        let veth = both(&message(
            4,
            "vA",
            vec![
                LinkAttribute::Link(2),
                LinkAttribute::LinkNetNsId(0),
                LinkAttribute::Controller(3),
                LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(InfoKind::Veth)]),
            ],
        ));
        assert_eq!(
            (veth.link, veth.link_netnsid, veth.master),
            (Some(2), Some(0), Some(3))
        );
    }

    #[test]
    fn moved_vxlan_iflink_is_not_a_parent_but_unknown_nsid_gives_netns_zero() {
        let ns = NsLinks {
            inode: 100,
            links: vec![
                RawLink {
                    ifindex: 9,
                    ifname: "vx0".into(),
                    kind_name: Some("vxlan".into()),
                    link: Some(9),
                    link_netnsid: Some(1),
                    vxlan_link: Some(2),
                    ..RawLink::default()
                },
                RawLink {
                    ifindex: 10,
                    ifname: "gnv0".into(),
                    kind_name: Some("geneve".into()),
                    link: Some(10),
                    link_netnsid: Some(1),
                    ..RawLink::default()
                },
            ],
            nsids: HashMap::new(),
            warnings: vec![],
        };
        let out = resolve(&[ns]);
        assert_eq!(
            out[0].parent,
            Some(LinkRef {
                netns: 0,
                ifindex: 2,
                ifname: String::new()
            })
        );
        assert_eq!(out[1].parent, None);
        assert_eq!(out[1].kind, LinkKind::Geneve);
    }
}
