//! Domain types of one kernel observation ("hop event"), independent of the
//! wire format. Every type here is `Copy` and heap-free, so decoding and
//! passing events around never allocates.
//!
//! Kernel facts carried by these types:
//! - A netns is named by its inode (`ns.inum`); inodes can be reused after a
//!   namespace dies, which the net cookie (5.14+) disambiguates.
//! - `ts_ns` is CLOCK_MONOTONIC (bpf_ktime_get_ns), comparable across CPUs.
//!
//! The types derive serde's `Serialize` and `Deserialize`: their compact
//! (postcard) encoding is the event schema of recordings (see
//! [`record`]), so changing a serialized type changes the recording
//! format and bumps [`record::FORMAT_VERSION`]. [`ShortName`] and
//! [`TcpFlags`] read as text for people (JSON) and as raw bytes in compact
//! formats, so that recordings round-trip them exactly.

pub mod decode;
pub mod drop_reason;
pub mod encode;
pub mod record;
pub mod snapshot;
pub mod stream;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Stable id of one skb's life, handed out by the kernel side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PacketId(pub u64);

/// Network namespace inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetnsId(pub u32);

/// Interface index, meaningful only together with a [`NetnsId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IfIndex(pub u32);

/// A NUL-padded kernel name (IFNAMSIZ or TASK_COMM_LEN bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShortName([u8; 16]);

impl ShortName {
    pub fn from_bytes(raw: &[u8]) -> Self {
        let mut b = [0u8; 16];
        let n = raw
            .iter()
            .take(16)
            .position(|&c| c == 0)
            .unwrap_or(raw.len().min(16));
        b[..n].copy_from_slice(&raw[..n]);
        ShortName(b)
    }
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(16);
        // Kernel names are ASCII in practice; fall back to the valid prefix.
        match std::str::from_utf8(&self.0[..n]) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&self.0[..e.valid_up_to()]).unwrap_or(""),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }
    pub fn raw(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Shown through [`crate::safe_text::escape`]: the name comes from the
/// kernel as any process or administrator set it.
impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(16);
        let mut s = String::with_capacity(n);
        crate::safe_text::escape(&self.0[..n], &mut s)?;
        f.pad(&s)
    }
}

/// For people (JSON): the name as a string. For compact formats
/// (recordings): the 16 raw bytes, so that any name round-trips exactly.
impl Serialize for ShortName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.as_str())
        } else {
            self.0.serialize(s)
        }
    }
}

/// The inverse of [`ShortName`]'s `Serialize`: a string (cut to 16 bytes)
/// from human-readable formats, the 16 raw bytes from compact ones. Either
/// way, as [`ShortName::from_bytes`] reads them: what follows the first
/// NUL is zeroed.
impl<'de> Deserialize<'de> for ShortName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Ok(ShortName::from_bytes(s.as_bytes()))
        } else {
            <[u8; 16]>::deserialize(d).map(|b| ShortName::from_bytes(&b))
        }
    }
}

/// The kernel hook an event came from. Its names, class and programs are
/// in [`HOOKS`], the one list of hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Hook {
    NetDevQueue,
    NetDevXmit,
    NetifRx,
    NetifReceiveSkb,
    NapiGroReceive,
    SkbCopyDatagram,
    ConsumeSkb,
    KfreeSkb,
    /// The kernel sends an ICMP error because of this packet.
    IcmpSend,
    /// A TCP reset is sent (the packet, if followed, caused it).
    TcpSendReset,
    /// A TCP reset was received on a socket.
    TcpReceiveReset,
    /// A TCP segment is retransmitted.
    TcpRetransmit,
    /// A routing table lookup (no skb: matched to a packet in userspace).
    FibLookup,
    /// Neighbour resolution started, answered or failed.
    Neigh,
    /// `tcp_probe`: a segment reached an established TCP socket (TCP frees
    /// what it took in without a tracepoint; [`HookData::TcpSegment`]).
    TcpRcv,
    /// `sk_data_ready`: a packet (or the clone a raw or ping socket got)
    /// was queued to a socket.
    SockQueue,
    /// `net_dev_start_xmit`: a software GSO segment enters its driver (its
    /// first sighting; the segment was cut after `net_dev_queue`).
    NetDevStartXmit,
    /// `inet_sock_set_state`: a received TCP segment moved its socket's
    /// state (a SYN-ACK, the handshake's last ACK, a FIN, the ACK of a FIN,
    /// a reset); TCP frees those without a tracepoint
    /// ([`HookData::TcpState`]: a payload means data is delivered).
    TcpState,
}

/// What kind of report a hook makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookClass {
    /// A packet on a device (transmit or receive side).
    Device,
    /// A socket took the packet in (read, queued, or TCP processed it).
    Socket,
    /// The skb's end of life: the device is where it was when freed.
    End,
    /// About a packet or a flow, not a hop of it; may name no packet (id 0).
    Annotation,
}

/// Everything hopscope knows about one hook: [`HOOKS`] is the one list.
#[derive(Debug)]
pub struct HookInfo {
    pub hook: Hook,
    /// The tracepoint's name, as `perf list` spells it (text, JSON).
    pub name: &'static str,
    /// The explorer's short name in a hop's hook list.
    pub short: &'static str,
    pub class: HookClass,
    /// The tracepoints whose programs (`hs_<tracepoint>` in
    /// bpf/hopscope.bpf.c) report this hook.
    pub tracepoints: &'static [&'static str],
    /// Tracing refuses to start without it; the others degrade.
    pub required: bool,
}

const fn info(
    hook: Hook,
    name: &'static str,
    short: &'static str,
    class: HookClass,
    tracepoints: &'static [&'static str],
    required: bool,
) -> HookInfo {
    HookInfo {
        hook,
        name,
        short,
        class,
        tracepoints,
        required,
    }
}

use HookClass::{Annotation, Device as Dev, End, Socket};

/// The hooks, in [`Hook`]'s order (checked when compiling).
pub static HOOKS: [HookInfo; 18] = TABLE;

const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].hook as usize == i, "HOOKS is not in Hook's order");
        i += 1;
    }
};

const TABLE: [HookInfo; 18] = [
    info(
        Hook::NetDevQueue,
        "net_dev_queue",
        "queue",
        Dev,
        &["net_dev_queue"],
        true,
    ),
    info(
        Hook::NetDevXmit,
        "net_dev_xmit",
        "xmit",
        Dev,
        &["net_dev_xmit"],
        false,
    ),
    info(Hook::NetifRx, "netif_rx", "rx", Dev, &["netif_rx"], false),
    info(
        Hook::NetifReceiveSkb,
        "netif_receive_skb",
        "receive",
        Dev,
        &["netif_receive_skb"],
        true,
    ),
    info(
        Hook::NapiGroReceive,
        "napi_gro_receive_entry",
        "gro",
        Dev,
        &["napi_gro_receive_entry"],
        false,
    ),
    info(
        Hook::SkbCopyDatagram,
        "skb_copy_datagram_iovec",
        "to-socket",
        Socket,
        &["skb_copy_datagram_iovec"],
        false,
    ),
    info(
        Hook::ConsumeSkb,
        "consume_skb",
        "consume",
        End,
        &["consume_skb"],
        true,
    ),
    info(
        Hook::KfreeSkb,
        "kfree_skb",
        "free",
        End,
        &["kfree_skb"],
        true,
    ),
    info(
        Hook::IcmpSend,
        "icmp_send",
        "icmp-error",
        Annotation,
        &["icmp_send"],
        false,
    ),
    info(
        Hook::TcpSendReset,
        "tcp_send_reset",
        "rst-sent",
        Annotation,
        &["tcp_send_reset"],
        false,
    ),
    info(
        Hook::TcpReceiveReset,
        "tcp_receive_reset",
        "rst-received",
        Annotation,
        &["tcp_receive_reset"],
        false,
    ),
    info(
        Hook::TcpRetransmit,
        "tcp_retransmit_skb",
        "retransmit",
        Annotation,
        &["tcp_retransmit_skb"],
        false,
    ),
    info(
        Hook::FibLookup,
        "fib_table_lookup",
        "route",
        Annotation,
        &["fib_table_lookup", "fib6_table_lookup"],
        false,
    ),
    info(
        Hook::Neigh,
        "neigh",
        "neigh",
        Annotation,
        &[
            "neigh_update",
            "neigh_timer_handler",
            "neigh_event_send_done",
        ],
        false,
    ),
    info(
        Hook::TcpRcv,
        "tcp_probe",
        "tcp",
        Socket,
        &["tcp_probe"],
        false,
    ),
    info(
        Hook::SockQueue,
        "sk_data_ready",
        "to-socket",
        Socket,
        &["sk_data_ready"],
        false,
    ),
    info(
        Hook::NetDevStartXmit,
        "net_dev_start_xmit",
        "segment",
        Dev,
        &["net_dev_start_xmit"],
        false,
    ),
    info(
        Hook::TcpState,
        "inet_sock_set_state",
        "tcp-state",
        Socket,
        &["inet_sock_set_state"],
        false,
    ),
];

impl Hook {
    /// Every hook, in order.
    pub fn all() -> impl Iterator<Item = Hook> {
        HOOKS.iter().map(|i| i.hook)
    }

    /// Its row in [`HOOKS`].
    pub fn info(self) -> &'static HookInfo {
        &HOOKS[self.index()]
    }

    /// Its position in [`HOOKS`] (0..18): a bit in a set of hooks.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The tracepoint's name, as `perf list` spells it.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The explorer's short name.
    pub fn short(self) -> &'static str {
        self.info().short
    }

    /// Annotations tell about a packet or a flow; they are not hops and
    /// may name no packet (id 0).
    pub fn is_annotation(self) -> bool {
        self.info().class == HookClass::Annotation
    }

    /// End-of-life hooks: the device is where the skb was when freed.
    pub fn is_end(self) -> bool {
        self.info().class == HookClass::End
    }

    /// A socket took the packet in (read, queued, or TCP processed it).
    pub fn is_socket(self) -> bool {
        self.info().class == HookClass::Socket
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Network-layer header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum L3 {
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
    },
    Ipv6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
    },
    /// ARP over IPv4: op 1 request, 2 reply.
    Arp {
        op: u16,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    /// An ethertype that is not parsed.
    Other {
        ethertype: u16,
    },
}

impl L3 {
    pub fn src(&self) -> Option<IpAddr> {
        match *self {
            L3::Ipv4 { src, .. } => Some(src.into()),
            L3::Ipv6 { src, .. } => Some(src.into()),
            L3::Arp { sender, .. } => Some(sender.into()),
            L3::Other { .. } => None,
        }
    }
    pub fn dst(&self) -> Option<IpAddr> {
        match *self {
            L3::Ipv4 { dst, .. } => Some(dst.into()),
            L3::Ipv6 { dst, .. } => Some(dst.into()),
            L3::Arp { target, .. } => Some(target.into()),
            L3::Other { .. } => None,
        }
    }
}

/// Transport header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum L4 {
    None,
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
    },
    Udp {
        sport: u16,
        dport: u16,
        len: u16,
    },
    /// ICMP (v4) or ICMPv6, told apart by `v6`.
    Icmp {
        v6: bool,
        kind: u8,
        code: u8,
        id: u16,
        seq: u16,
    },
    /// Another IP protocol.
    Other {
        proto: u8,
    },
    /// A non-first fragment of a datagram of `proto`: no transport header.
    Fragment {
        proto: u8,
    },
}

/// TCP flag bits as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    /// A connection opener: SYN without ACK.
    pub fn is_syn(self) -> bool {
        self.has(Self::SYN) && !self.has(Self::ACK)
    }
}

/// Serialized in tcpdump's notation, written straight into the output, for
/// people (JSON); as the flag byte for compact formats (recordings).
impl Serialize for TcpFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u8(self.0)
        }
    }
}

/// The inverse of [`TcpFlags`]' `Serialize`: tcpdump's notation (the five
/// flags shown, or `none`) from human-readable formats, the flag byte from
/// compact ones.
impl<'de> Deserialize<'de> for TcpFlags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return u8::deserialize(d).map(TcpFlags);
        }
        let s = String::deserialize(d)?;
        if s == "none" {
            return Ok(TcpFlags(0));
        }
        let mut bits = 0;
        for c in s.chars() {
            bits |= match c {
                'S' => Self::SYN,
                'F' => Self::FIN,
                'P' => Self::PSH,
                'R' => Self::RST,
                '.' => Self::ACK,
                _ => {
                    return Err(serde::de::Error::custom(format_args!(
                        "TCP flags {s:?}: unknown flag {c:?}"
                    )))
                }
            };
        }
        Ok(TcpFlags(bits))
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump's notation: `S`, `S.`, `P.`, `F.`, `R`, `.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 8];
        let mut n = 0;
        for (bit, c) in [
            (Self::SYN, b'S'),
            (Self::FIN, b'F'),
            (Self::PSH, b'P'),
            (Self::RST, b'R'),
        ] {
            if self.has(bit) {
                buf[n] = c;
                n += 1;
            }
        }
        if self.has(Self::ACK) {
            buf[n] = b'.';
            n += 1;
        }
        if n == 0 {
            return f.write_str("none");
        }
        f.write_str(std::str::from_utf8(&buf[..n]).unwrap_or(""))
    }
}

/// Parsed headers of one packet at one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Headers {
    pub l3: L3,
    pub l4: L4,
    /// The VLAN id of an 802.1Q tag (0: a priority tag), untagged: `None`.
    pub vlan: Option<u16>,
    pub ttl: u8,
    /// IPv4 identification, 0 for other protocols.
    pub ip_id: u16,
    /// IPv6 flow label, 0 for other protocols.
    pub flow_label: u32,
    /// Whether they were read from an Ethernet frame (vs raw IP).
    pub from_l2: bool,
}

/// An optional address for people: the address, or `?`.
pub struct Addr(pub Option<std::net::IpAddr>);

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("?"),
        }
    }
}

/// `addr:port`, with IPv6 in brackets.
pub struct Sock(pub Option<std::net::IpAddr>, pub u16);

impl std::fmt::Display for Sock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(std::net::IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.1),
            Some(a) => write!(f, "{a}:{}", self.1),
            None => write!(f, "?:{}", self.1),
        }
    }
}

/// The task in whose context an event happened (sender or receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub pid: u32,
    pub tid: u32,
    pub comm: ShortName,
}

/// A device as the kernel named it at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Device {
    pub netns: NetnsId,
    pub netns_cookie: u64,
    pub ifindex: IfIndex,
    pub ifname: ShortName,
}

/// A tunnel whose inner packet the kernel side read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tunnel {
    Vxlan,
    Geneve,
    Gre,
    /// IPv4 or IPv6 carried directly in IPv4 or IPv6 (ipip, sit, ip6tnl).
    Ipip,
}

impl Tunnel {
    pub fn name(self) -> &'static str {
        match self {
            Tunnel::Vxlan => "vxlan",
            Tunnel::Geneve => "geneve",
            Tunnel::Gre => "gre",
            Tunnel::Ipip => "ipip",
        }
    }
}

/// The outer headers around a tunnelled packet, on an underlay hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outer {
    pub kind: Tunnel,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol of the outer header (17 for UDP tunnels, 47 GRE, 4 or 41).
    pub proto: u8,
    /// UDP tunnels' ports (0 otherwise).
    pub sport: u16,
    pub dport: u16,
    /// VXLAN or GENEVE VNI, GRE key (0: none).
    pub vni: u32,
}

/// How this event's skb relates to another packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Link {
    /// This skb is a clone of that packet (a flood's further copy). On a
    /// socket hook, the event names that packet itself: a raw or ping
    /// socket got the clone.
    CloneOf(PacketId),
    /// The first clone of this packet took it over here (a bridge forwards
    /// the clone, its own stack gets the original): the original skb goes
    /// on as that packet, a branch of this one.
    Branch(PacketId),
    /// A software GSO segment of that packet: `index` (from 1) of `count`.
    SegmentOf {
        parent: PacketId,
        index: u16,
        count: u16,
    },
    /// This GSO packet was cut into `count` segments (its end).
    Segmented { count: u16 },
}

/// One kernel observation of one skb at one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopEvent {
    pub ts_ns: u64,
    pub cpu: u32,
    pub hook: Hook,
    pub packet: PacketId,
    pub skb: u64,
    /// `None` on end-of-life hooks.
    pub device: Option<Device>,
    pub len: u32,
    /// `None` where the headers could not be (or were not) read.
    pub headers: Option<Headers>,
    /// First sighting of this packet.
    pub new_packet: bool,
    pub task: Option<Task>,
    /// cgroup v2 id of the socket that owns the skb (tx), 0 if none.
    pub sk_cgroup: u64,
    /// What this hook reports beyond the fields above, typed per hook.
    pub data: HookData,
    /// The tunnel around `headers` (underlay hops).
    pub outer: Option<Outer>,
    /// Clones, branches and GSO segments.
    pub link: Option<Link>,
    /// An end while a clone still holds the packet's data.
    pub shared: bool,
}

/// What one hook reports beyond a hop's common fields: one variant per kind
/// of report, each field with one meaning. Decoded from the kernel's record
/// in [`decode`]; nothing else reads the record's raw fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HookData {
    /// Nothing more (most hops and annotations).
    #[default]
    None,
    /// `net_dev_xmit`: the driver's return code (0: sent; a negative
    /// errno or a positive `NETDEV_TX_*`/`NET_XMIT_*` code).
    Xmit { rc: i32 },
    /// `tcp_probe`: the segment's payload bytes (0: a pure ACK).
    TcpSegment { payload: u32 },
    /// `inet_sock_set_state`: the socket's TCP state before and after
    /// (`TCP_ESTABLISHED` = 1 ...), moved by a segment that carried
    /// `payload` bytes (capped at 65,535).
    TcpState { old: u8, new: u8, payload: u16 },
    /// `consume_skb`: the code address of the free.
    Consumed { location: u64 },
    /// `kfree_skb`: the running kernel's `enum skb_drop_reason` value, the
    /// code address of the free, and the id + 1 of its kernel stack with
    /// `--drop-stack` (0: none).
    Freed {
        reason: u32,
        location: u64,
        stack: u32,
    },
    /// `icmp_send`: the ICMP error's type and code.
    IcmpError { kind: u8, code: u8 },
    /// `fib_table_lookup`: the table looked in, what it found, and the
    /// gateway of the route found (none: a direct route, or no route).
    Route {
        table: u32,
        result: RouteResult,
        gw: Option<IpAddr>,
    },
    /// Neighbour resolution: the NUD state before and after (`NUD_*` bits).
    Neigh { old: u8, new: u8 },
}

impl HookData {
    /// `net_dev_xmit`'s driver return code.
    pub fn xmit_rc(&self) -> Option<i32> {
        match *self {
            HookData::Xmit { rc } => Some(rc),
            _ => None,
        }
    }

    /// The payload bytes a socket hook says the segment carried (`None`:
    /// not a TCP socket report; datagrams always carry data).
    pub fn tcp_payload(&self) -> Option<u32> {
        match *self {
            HookData::TcpSegment { payload } => Some(payload),
            HookData::TcpState { payload, .. } => Some(u32::from(payload)),
            _ => None,
        }
    }
}

/// `NUD_INCOMPLETE`: neighbour resolution has started.
pub const NUD_INCOMPLETE: u8 = 0x01;

/// The result of one routing table lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteResult {
    /// A route matched.
    Found,
    /// No route in this table: the next rule's table is tried (the
    /// kernel's `-EAGAIN`); not a failure by itself.
    NotInTable,
    /// The lookup failed with this negative errno (`-ENETUNREACH`, ...).
    Error(i32),
}

impl RouteResult {
    /// From the lookup's return value (0, `-EAGAIN` or another errno).
    pub fn from_errno(err: i32) -> RouteResult {
        const EAGAIN: i32 = 11;
        match err {
            0 => RouteResult::Found,
            e if e == -EAGAIN => RouteResult::NotInTable,
            e => RouteResult::Error(e),
        }
    }

    /// The lookup's return value (0, `-EAGAIN` or the errno).
    pub fn errno(self) -> i32 {
        match self {
            RouteResult::Found => 0,
            RouteResult::NotInTable => -11,
            RouteResult::Error(e) => e,
        }
    }
}
