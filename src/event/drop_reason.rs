//! Names of `kfree_skb` drop reasons, read from the running kernel's BTF
//! (`enum skb_drop_reason`). The numbers differ across kernel versions (new
//! reasons are inserted in the middle), so they are never hard-coded: a
//! recording carries the table of the kernel it was made on.
//!
//! Some frees are routine rather than alarms: `SKB_CONSUMED`,
//! `NOT_SPECIFIED` (most frees that never got a reason), and queue purges
//! when a socket or device goes away.

use std::collections::HashMap;

/// Reasons shown as "freed" rather than "dropped".
const BENIGN: [&str; 5] = [
    "NOT_DROPPED_YET",
    "CONSUMED",
    "NOT_SPECIFIED",
    "QUEUE_PURGE",
    "SOCKET_CLOSE",
];

/// value → name, with the `SKB_DROP_REASON_` / `SKB_` prefix removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropReasons {
    names: HashMap<u32, String>,
}

impl DropReasons {
    /// The running kernel's table; `Err` says why it is unavailable.
    pub fn from_kernel() -> Result<DropReasons, String> {
        let btf = libbpf_rs::btf::Btf::from_vmlinux()
            .map_err(|e| format!("reading the kernel's BTF: {e}"))?;
        DropReasons::from_btf(&btf)
    }

    /// The table of a BTF file (raw BTF or an ELF with a .BTF section).
    pub fn from_btf_file(path: &std::path::Path) -> Result<DropReasons, String> {
        let btf = libbpf_rs::btf::Btf::from_path(path)
            .map_err(|e| format!("reading BTF from {}: {e}", path.display()))?;
        DropReasons::from_btf(&btf)
    }

    fn from_btf(btf: &libbpf_rs::btf::Btf<'_>) -> Result<DropReasons, String> {
        let e: libbpf_rs::btf::types::Enum<'_> = btf
            .type_by_name("skb_drop_reason")
            .ok_or("the kernel's BTF has no enum skb_drop_reason")?;
        Ok(DropReasons::from_pairs(e.iter().filter_map(|m| {
            let name = m.name?.to_str()?;
            u32::try_from(m.value).ok().map(|v| (v, name.to_owned()))
        })))
    }

    /// A table from (value, enumerator name) pairs, full kernel names or
    /// already short ones.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, String)>) -> DropReasons {
        let names = pairs
            .into_iter()
            .filter(|(_, n)| n != "SKB_DROP_REASON_MAX")
            .map(|(v, n)| {
                let short = n
                    .strip_prefix("SKB_DROP_REASON_")
                    .or_else(|| n.strip_prefix("SKB_"))
                    .unwrap_or(&n)
                    .to_owned();
                (v, short)
            })
            .collect();
        DropReasons { names }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The short name of a reason value (`NO_SOCKET`, `NETFILTER_DROP`, ...).
    pub fn name(&self, value: u32) -> Option<&str> {
        self.names.get(&value).map(String::as_str)
    }

    /// Routine whatever the packet (see the module doc): the part of
    /// [`DropReasons::is_routine`] the kernel side can apply on its own.
    /// Unknown values are not benign.
    pub fn is_benign(&self, value: u32) -> bool {
        self.name(value).is_some_and(|n| BENIGN.contains(&n))
    }

    /// The one routine-or-drop decision: is a `kfree_skb` of this packet
    /// with reason `value` routine (shown "freed") rather than a drop?
    /// Without the kernel's reason names nothing is routine: nothing is
    /// hidden. Routine are:
    /// - the benign reasons ([`DropReasons::is_benign`]);
    /// - `NO_SOCKET` on an ICMP echo reply: the kernel hands every echo
    ///   reply to the raw sockets (ping) as a copy, then looks for an ICMP
    ///   datagram socket (`ping_rcv`), finds none and frees the original;
    /// - `OTHERHOST` ending a copy (`is_copy`): a bridge's own copy of a
    ///   frame it forwarded, as with tcpdump on it;
    /// - a multicast packet for a group nobody here joined
    ///   (`IP_INNOROUTES`, `OTHERHOST`): MLD reports reach every namespace
    ///   on the link.
    pub fn is_routine(&self, value: u32, headers: Option<&super::Headers>, is_copy: bool) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.is_benign(value) {
            return true;
        }
        let name = self.name(value);
        let multicast = headers
            .and_then(|h| h.l3.dst())
            .is_some_and(|d| d.is_multicast());
        if (is_copy && name == Some("OTHERHOST"))
            || (multicast && matches!(name, Some("IP_INNOROUTES" | "OTHERHOST")))
        {
            return true;
        }
        let echo_reply = headers.is_some_and(|h| {
            matches!(
                h.l4,
                super::L4::Icmp {
                    v6: false,
                    kind: 0,
                    ..
                } | super::L4::Icmp {
                    v6: true,
                    kind: 129,
                    ..
                }
            )
        });
        echo_reply && self.name(value) == Some("NO_SOCKET")
    }

    /// All (value, short name) pairs, by value.
    pub fn pairs(&self) -> Vec<(u32, &str)> {
        let mut v: Vec<(u32, &str)> = self.names.iter().map(|(k, n)| (*k, n.as_str())).collect();
        v.sort_unstable();
        v
    }
}

/// What to check for a drop, in one line: `netns` and `ifname` are where the
/// packet was last seen. `None` for reasons without specific advice.
/// `vlan`: the packet's VLAN id, when it carried a tag.
pub fn hint(reason: &str, netns: &str, ifname: &str, vlan: Option<u16>) -> Option<String> {
    if let ("OTHERHOST", Some(vid @ 1..)) = (reason, vlan) {
        return Some(format!(
            "tagged for VLAN {vid}, and {ifname} in {netns} has no VLAN {vid} sub-interface: the \
             kernel takes such frames as not for this host (add one with `ip -n {netns} link add \
             link {ifname} name {ifname}.{vid} type vlan id {vid}`, or check the sender's tagging)"
        ));
    }
    let h = match reason {
        "NETFILTER_DROP" => format!(
            "a netfilter rule dropped it: check `ip netns exec {netns} nft list ruleset` (or iptables -L -v -n) for the hook after {ifname}"
        ),
        "NO_SOCKET" => format!(
            "nothing listens on the destination port in {netns} (check `ip netns exec {netns} ss -lntup`)"
        ),
        "IP_INNOROUTES" | "IP_OUTNOROUTES" => format!(
            "no route to the destination in {netns}: check `ip -n {netns} route` (and policy rules)"
        ),
        "NEIGH_FAILED" | "NEIGH_QUEUEFULL" | "NEIGH_DEAD" | "NEIGH_CREATEFAIL" => format!(
            "no ARP/ND answer for the next hop via {ifname} in {netns}: check `ip -n {netns} neigh` and whether the next hop is up"
        ),
        "IP_RPFILTER" => format!(
            "reverse-path filter: the source is not reachable back through {ifname} in {netns} (net.ipv4.conf.{ifname}.rp_filter, routes)"
        ),
        "IP_INHDR" => "bad IP header, or the TTL ran out on the way (look for an ICMP time-exceeded)".to_owned(),
        "IP_INADDRERRORS" | "IP_INVALID_SOURCE" | "IP_INVALID_DEST" | "IP_LOCAL_SOURCE" => format!(
            "invalid source or destination address for {ifname} in {netns} (martian, broadcast, or one of our own)"
        ),
        "OTHERHOST" => format!("addressed to another host's MAC: {ifname} received a frame not for it"),
        "IP_NOPROTO" => format!("no handler for this IP protocol in {netns}"),
        "SOCKET_FILTER" => "a socket filter (BPF on the socket) rejected it".to_owned(),
        "SOCKET_RCVBUFF" | "PROTO_MEM" | "SOCKET_BACKLOG" => {
            "the receiving socket's buffer was full: the application reads too slowly".to_owned()
        }
        "TCP_LISTEN_OVERFLOW" => "the listen backlog is full: the server accepts too slowly".to_owned(),
        "QDISC_DROP" | "QDISC_OVERLIMIT" | "QDISC_CONGESTED" | "FQ_FLOW_LIMIT" | "FQ_BAND_LIMIT" => {
            format!("the queueing discipline of {ifname} dropped it: check `tc -s qdisc show dev {ifname}`")
        }
        "TC_INGRESS" | "TC_EGRESS" => format!("a tc filter on {ifname} dropped it: check `tc filter show dev {ifname}`"),
        "CPU_BACKLOG" => "the per-CPU receive backlog was full (net.core.netdev_max_backlog)".to_owned(),
        "FULL_RING" => format!("the ring of {ifname} was full"),
        "PKT_TOO_BIG" => format!("larger than the MTU of {ifname} and not fragmentable"),
        "TCP_CSUM" | "UDP_CSUM" | "IP_CSUM" | "ICMP_CSUM" | "SKB_CSUM" => "bad checksum".to_owned(),
        "IPV6DISABLED" => format!("IPv6 is disabled on {ifname} in {netns}"),
        "SECURITY_HOOK" => "an LSM (SELinux, AppArmor, ...) refused it".to_owned(),
        "XDP" => format!("an XDP program on {ifname} dropped it"),
        "TCP_RESET" => "the connection was reset".to_owned(),
        "TCP_CLOSE" => "the socket was already closed".to_owned(),
        _ => return None,
    };
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_table_not_from_numbers() {
        // Two kernels that number the same reasons differently.
        let a = DropReasons::from_pairs([
            (1, "SKB_CONSUMED".to_owned()),
            (2, "SKB_DROP_REASON_NOT_SPECIFIED".to_owned()),
            (3, "SKB_DROP_REASON_NO_SOCKET".to_owned()),
            (9, "SKB_DROP_REASON_MAX".to_owned()),
        ]);
        let b = DropReasons::from_pairs([
            (1, "SKB_CONSUMED".to_owned()),
            (2, "SKB_DROP_REASON_NOT_SPECIFIED".to_owned()),
            (3, "SKB_DROP_REASON_PKT_TOO_SMALL".to_owned()),
            (4, "SKB_DROP_REASON_NO_SOCKET".to_owned()),
        ]);
        assert_eq!(a.name(3), Some("NO_SOCKET"));
        assert_eq!(b.name(3), Some("PKT_TOO_SMALL"));
        assert_eq!(b.name(4), Some("NO_SOCKET"));
        assert_eq!(a.name(9), None, "the MAX sentinel is not a reason");
        assert!(a.is_benign(1) && a.is_benign(2) && !a.is_benign(3));
        assert!(!a.is_benign(77), "unknown values are not hidden");
        assert_eq!(
            a.pairs(),
            [(1, "CONSUMED"), (2, "NOT_SPECIFIED"), (3, "NO_SOCKET")]
        );
    }

    #[test]
    fn an_echo_reply_without_a_ping_socket_is_routine() {
        use crate::event::{Headers, L3, L4};
        let r = DropReasons::from_pairs([(3, "SKB_DROP_REASON_NO_SOCKET".to_owned())]);
        let icmp = |kind| Headers {
            l3: L3::Ipv4 {
                src: [198, 18, 0, 3].into(),
                dst: [198, 18, 0, 2].into(),
            },
            l4: L4::Icmp {
                v6: false,
                kind,
                code: 0,
                id: 1,
                seq: 1,
            },
            vlan: None,
            ttl: 64,
            ip_id: 0,
            flow_label: 0,
            from_l2: true,
        };
        assert!(r.is_routine(3, Some(&icmp(0)), false), "echo reply");
        assert!(
            !r.is_routine(3, Some(&icmp(8)), false),
            "an echo request nobody takes is a drop"
        );
        assert!(!r.is_routine(3, None, false));
    }

    #[test]
    fn a_copys_otherhost_and_multicast_nobody_joined_are_routine() {
        use crate::event::{Headers, L3, L4};
        let r = DropReasons::from_pairs([
            (4, "SKB_DROP_REASON_OTHERHOST".to_owned()),
            (5, "SKB_DROP_REASON_IP_INNOROUTES".to_owned()),
        ]);
        let to = |dst: [u8; 4]| Headers {
            l3: L3::Ipv4 {
                src: [198, 18, 0, 3].into(),
                dst: dst.into(),
            },
            l4: L4::None,
            vlan: None,
            ttl: 1,
            ip_id: 0,
            flow_label: 0,
            from_l2: true,
        };
        let unicast = to([198, 18, 0, 2]);
        let group = to([224, 0, 0, 22]);
        assert!(r.is_routine(4, Some(&unicast), true), "a bridge's copy");
        assert!(!r.is_routine(4, Some(&unicast), false), "the packet itself");
        assert!(r.is_routine(5, Some(&group), false));
        assert!(!r.is_routine(5, Some(&unicast), false));
        assert!(
            !DropReasons::default().is_routine(1, None, false),
            "without names nothing is hidden"
        );
    }

    #[test]
    fn hints_name_the_place() {
        let h = hint("NETFILTER_DROP", "hs-r1", "eth0", None).unwrap();
        assert!(h.contains("ip netns exec hs-r1 nft list ruleset"), "{h}");
        assert!(hint("NO_SOCKET", "hs-c2", "eth0", None)
            .unwrap()
            .contains("in hs-c2"));
        assert!(hint("IP_RPFILTER", "hs-host", "vc1", None)
            .unwrap()
            .contains("rp_filter"));
        assert_eq!(hint("SOMETHING_NEW", "x", "y", None), None);
        // A frame for a VLAN with no sub-interface is not "another host's MAC".
        let v = hint("OTHERHOST", "hs-r", "eth0", Some(100)).unwrap();
        assert!(
            v.starts_with("tagged for VLAN 100, and eth0 in hs-r has no VLAN 100"),
            "{v}"
        );
        assert!(hint("OTHERHOST", "hs-r", "eth0", Some(0))
            .unwrap()
            .contains("another host's MAC"));
    }

    /// Raw BTF holding one `enum skb_drop_reason` with `members`.
    fn raw_btf(members: &[(&str, i32)]) -> Vec<u8> {
        let mut strings = b"\0skb_drop_reason\0".to_vec();
        let mut types = Vec::new();
        types.extend_from_slice(&1u32.to_le_bytes()); // name: skb_drop_reason
        types.extend_from_slice(&((6u32 << 24) | members.len() as u32).to_le_bytes()); // ENUM
        types.extend_from_slice(&4u32.to_le_bytes());
        for (name, value) in members {
            types.extend_from_slice(&(strings.len() as u32).to_le_bytes());
            types.extend_from_slice(&value.to_le_bytes());
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]); // version, flags
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn names_are_read_from_btf_whatever_the_numbering() {
        let dir = std::env::temp_dir().join(format!("hopscope-btf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Two "kernels": the same reasons, numbered differently.
        for (file, members, no_socket, netfilter) in [
            (
                "a.btf",
                vec![
                    ("SKB_NOT_DROPPED_YET", 0),
                    ("SKB_CONSUMED", 1),
                    ("SKB_DROP_REASON_NOT_SPECIFIED", 2),
                    ("SKB_DROP_REASON_NO_SOCKET", 3),
                    ("SKB_DROP_REASON_NETFILTER_DROP", 9),
                ],
                3,
                9,
            ),
            (
                "b.btf",
                vec![
                    ("SKB_NOT_DROPPED_YET", 0),
                    ("SKB_CONSUMED", 1),
                    ("SKB_DROP_REASON_NOT_SPECIFIED", 2),
                    ("SKB_DROP_REASON_NETFILTER_DROP", 3),
                    ("SKB_DROP_REASON_NO_SOCKET", 4),
                ],
                4,
                3,
            ),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, raw_btf(&members)).unwrap();
            let r = DropReasons::from_btf_file(&path).unwrap();
            assert_eq!(r.name(no_socket), Some("NO_SOCKET"), "{file}");
            assert_eq!(r.name(netfilter), Some("NETFILTER_DROP"), "{file}");
            assert!(r.is_benign(1) && r.is_benign(2), "{file}");
            assert!(!r.is_benign(no_socket));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn this_kernel_has_the_common_reasons() {
        let r = DropReasons::from_kernel().expect("BTF with enum skb_drop_reason");
        let names: Vec<&str> = r.pairs().into_iter().map(|(_, n)| n).collect();
        for want in ["NOT_SPECIFIED", "NO_SOCKET", "NETFILTER_DROP", "CONSUMED"] {
            assert!(names.contains(&want), "{want} missing");
        }
    }
}
