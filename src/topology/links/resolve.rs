//! From raw links to [`LinkInfo`]s: the kind of each link, and its peer,
//! lower device and master resolved across the namespaces read (which
//! `IFLA_LINK` to trust, in which namespace `IFLA_LINK_NETNSID` puts it).

use std::collections::{HashMap, HashSet};

use super::netns::NsLinks;
use super::parse::RawLink;
use super::{LinkInfo, LinkKind, LinkRef};

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

/// The [`LinkKind`] of a raw link, from its kind name, device type and tun type.
pub(super) fn classify(raw: &RawLink) -> LinkKind {
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
pub(super) fn resolve(read: &[NsLinks]) -> Vec<LinkInfo> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
