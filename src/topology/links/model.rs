//! What [`read_links`](super::read_links) takes and returns: namespace
//! handles, and links with their kind and resolved references (serialized
//! into recordings).

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
