//! Names and shape of what packets cross: namespace names, the links of
//! every namespace (rtnetlink), the resolver that keeps both current, and
//! the hop graph (also as DOT).
//!
//! Kernel facts: a network namespace is named by its inode (`ns.inum`).
//! `ip netns` keeps a bind mount of `/proc/PID/ns/net` under `/run/netns`,
//! so `stat(/run/netns/NAME).st_ino` is that inode; the root namespace is
//! the one of PID 1.

pub mod dot;
pub mod graph;
pub mod links;
pub mod names;
pub mod resolver;

use links::LinkInfo;

/// Read access to what is known about namespaces and links: the live
/// [`resolver::Topology`] in line mode, the explorer's model (which also
/// gets it from recordings) in the explorer.
pub trait TopologyView {
    fn netns_name(&self, netns: u32) -> Option<&str>;
    fn link(&self, netns: u32, ifindex: u32) -> Option<&LinkInfo>;

    /// How a device is described next to its name: `veth ↔ eth0@hs-c1`,
    /// `bridge`, `vxlan 42 on eth0`, plus `· br br0` for a bridge port.
    /// Names are escaped for a terminal ([`crate::safe_text`]).
    fn describe_link(&self, netns: u32, ifindex: u32) -> Option<String> {
        use crate::safe_text::Shown;
        let l = self.link(netns, ifindex)?;
        let place = |r: &links::LinkRef| {
            if r.netns == netns || r.netns == 0 {
                Shown(&r.ifname).to_string()
            } else {
                match self.netns_name(r.netns) {
                    Some(n) => format!("{}@{}", Shown(&r.ifname), Shown(n)),
                    None => format!("{}@{}", Shown(&r.ifname), r.netns),
                }
            }
        };
        let mut s = l.kind.name().to_owned();
        if let Some(id) = l.vxlan_id {
            s.push_str(&format!(" {id}"));
        }
        if let Some(id) = l.vlan_id {
            s.push_str(&format!(" {id}"));
        }
        if let Some(p) = &l.peer {
            s.push_str(&format!(" ↔ {}", place(p)));
        }
        if let Some(p) = &l.parent {
            s.push_str(&format!(" on {}", place(p)));
        }
        if let Some(m) = &l.master {
            let what = match self.link(m.netns, m.ifindex).map(|x| x.kind) {
                Some(links::LinkKind::Bridge) | None => "br",
                Some(k) => k.name(),
            };
            s.push_str(&format!(" · {what} {}", Shown(&m.ifname)));
        }
        Some(s)
    }
}

impl TopologyView for resolver::Topology {
    fn netns_name(&self, netns: u32) -> Option<&str> {
        resolver::Topology::netns_name(self, netns)
    }
    fn link(&self, netns: u32, ifindex: u32) -> Option<&LinkInfo> {
        resolver::Topology::link(self, netns, ifindex)
    }
}
