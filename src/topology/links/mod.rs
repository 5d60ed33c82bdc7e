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
//!
//! Layout: `model` holds what callers get ([`LinkInfo`] and the types in
//! it, [`NetnsHandle`]); `netns` opens and enters namespaces and reads one;
//! `netlink` is the rtnetlink socket (dumps, nsid queries); `parse` turns an
//! `RTM_NEWLINK` into a raw link; `resolve` classifies raw links and
//! resolves their peers, lower devices and masters across namespaces.

mod model;
mod netlink;
mod netns;
mod parse;
mod resolve;

pub use model::{LinkInfo, LinkKind, LinkRef, NetnsHandle};

use netns::{open_netns, read_one, NsLinks, OpenNetns, MAX_THREADS};
use resolve::resolve;

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
