//! `topology::links::read_links` on real namespaces built with `ip`.
//!
//! These tests need root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and never skip:
//! without it they fail. Every namespace is named `lk<pid>-<test>-<role>`
//! and deleted by a guard's `Drop`, even when an assertion fails; devices
//! are only ever created inside those namespaces, never in the caller's.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;

use common::{ip, run};
use hopscope::topology::links::{read_links, LinkInfo, LinkKind, LinkRef, NetnsHandle};

/// `ip netns add` racing with itself can trip over the first mount of
/// /run/netns; the tests also time a read, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/links.rs creates network namespaces and must run as root \
         (they do not skip); run `sudo -E cargo test --test links`"
    );
}

/// Namespaces of one test, deleted on drop.
struct Netns {
    prefix: String,
    names: Vec<String>,
}

impl Netns {
    fn new(test: &str) -> Netns {
        Netns {
            prefix: format!("lk{}-{test}", std::process::id()),
            names: Vec::new(),
        }
    }

    /// Creates `PREFIX-role` and returns its name.
    fn add(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        // A leftover of a killed run with the same pid would make `add` fail.
        let _ = run("ip", &["netns", "del", &name]);
        ip(&["netns", "add", &name]);
        self.names.push(name.clone());
        name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let out = run("ip", &["netns", "del", name]);
            if !out.status.success() {
                eprintln!(
                    "cleanup: ip netns del {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

fn path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

fn inode(ns: &str) -> u32 {
    std::fs::metadata(path(ns)).unwrap().ino() as u32
}

fn handle(ns: &str) -> NetnsHandle {
    NetnsHandle {
        inode: inode(ns),
        path: path(ns),
    }
}

/// ifindex of `dev` in `ns`, as `ip -j` reports it.
fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = run("ip", &["-j", "-n", ns, "link", "show", "dev", dev]);
    assert!(out.status.success(), "ip link show {dev} in {ns}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["ifindex"].as_u64().unwrap() as u32
}

fn lref(ns: &str, dev: &str) -> LinkRef {
    LinkRef {
        netns: inode(ns),
        ifindex: ifindex(ns, dev),
        ifname: dev.to_string(),
    }
}

fn find<'a>(links: &'a [LinkInfo], ns: &str, name: &str) -> &'a LinkInfo {
    let ino = inode(ns);
    links
        .iter()
        .find(|l| l.netns == ino && l.ifname == name)
        .unwrap_or_else(|| panic!("no link {name} in {ns}; got {links:#?}"))
}

fn names_in(links: &[LinkInfo], ns: &str) -> Vec<String> {
    let ino = inode(ns);
    let mut v: Vec<String> = links
        .iter()
        .filter(|l| l.netns == ino)
        .map(|l| l.ifname.clone())
        .collect();
    v.sort();
    v
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// host: br0 with ports vA and vB; vA ↔ a:eth0, vB ↔ b:eth0.
fn bridge_lab(ns: &mut Netns) -> (String, String, String) {
    let host = ns.add("host");
    let a = ns.add("a");
    let b = ns.add("b");
    ip(&["-n", &host, "link", "add", "br0", "type", "bridge"]);
    for (dev, peer_ns) in [("vA", &a), ("vB", &b)] {
        ip(&[
            "-n", &host, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns",
            peer_ns,
        ]);
        ip(&["-n", &host, "link", "set", dev, "master", "br0"]);
        ip(&["-n", &host, "link", "set", dev, "up"]);
    }
    ip(&["-n", &host, "link", "set", "br0", "up"]);
    ip(&["-n", &a, "link", "set", "eth0", "up"]);
    // b's eth0 and every lo stay down.
    (host, a, b)
}

#[test]
fn bridge_and_veth_peers_across_namespaces() {
    require_root();
    let _serial = serial();
    let mut ns = Netns::new("br");
    let (host, a, b) = bridge_lab(&mut ns);

    let (links, errors) = read_links(&[handle(&host), handle(&a), handle(&b)]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(names_in(&links, &host), sorted(&["lo", "br0", "vA", "vB"]));
    assert_eq!(names_in(&links, &a), sorted(&["lo", "eth0"]));
    assert_eq!(names_in(&links, &b), sorted(&["lo", "eth0"]));

    let br0 = find(&links, &host, "br0");
    assert_eq!(br0.kind, LinkKind::Bridge);
    assert_eq!(br0.kind_name.as_deref(), Some("bridge"));
    assert_eq!(br0.ifindex, ifindex(&host, "br0"));
    assert_eq!((&br0.master, &br0.peer, &br0.parent), (&None, &None, &None));
    assert!(br0.up);

    for n in [&host, &a, &b] {
        let lo = find(&links, n, "lo");
        assert_eq!(lo.kind, LinkKind::Loopback);
        assert_eq!(lo.kind_name, None);
        assert_eq!(lo.ifindex, 1);
        assert!(!lo.up, "lo of a new namespace is down");
        assert_eq!((&lo.master, &lo.peer, &lo.parent), (&None, &None, &None));
    }

    for (dev, peer_ns, peer_up) in [("vA", &a, true), ("vB", &b, false)] {
        let v = find(&links, &host, dev);
        assert_eq!(v.kind, LinkKind::Veth);
        assert_eq!(v.kind_name.as_deref(), Some("veth"));
        assert_eq!(v.ifindex, ifindex(&host, dev));
        assert_eq!(v.master, Some(lref(&host, "br0")));
        assert_eq!(v.peer, Some(lref(peer_ns, "eth0")));
        assert_eq!(v.parent, None);
        assert!(v.up);
        assert_eq!(v.mtu, Some(1500));

        let e = find(&links, peer_ns, "eth0");
        assert_eq!(e.kind, LinkKind::Veth);
        assert_eq!(e.ifindex, ifindex(peer_ns, "eth0"));
        assert_eq!(e.peer, Some(lref(&host, dev)));
        assert_eq!((&e.master, &e.parent), (&None, &None));
        assert_eq!(e.up, peer_up);
    }
}

#[test]
fn vxlan_macvlan_vlan_tun_tap_ids_and_parents() {
    require_root();
    let _serial = serial();
    let mut ns = Netns::new("stk");
    let h = ns.add("h");
    let x = ns.add("x");
    // u0 ↔ u1, both in h: same-namespace veth peers.
    ip(&[
        "-n", &h, "link", "add", "u0", "type", "veth", "peer", "name", "u1",
    ]);
    ip(&[
        "-n", &h, "link", "add", "vx42", "type", "vxlan", "id", "42", "dev", "u0", "dstport",
        "4789",
    ]);
    ip(&[
        "-n", &h, "link", "add", "mv0", "link", "u0", "type", "macvlan", "mode", "bridge",
    ]);
    // Stacked devices moved away: their lower device stays in h.
    ip(&[
        "-n", &h, "link", "add", "vx7", "type", "vxlan", "id", "7", "dev", "u1", "dstport", "4790",
    ]);
    ip(&[
        "-n", &h, "link", "add", "mvx", "link", "u1", "type", "macvlan",
    ]);
    ip(&["-n", &h, "link", "set", "vx7", "netns", &x]);
    ip(&["-n", &h, "link", "set", "mvx", "netns", &x]);
    ip(&["-n", &h, "tuntap", "add", "dev", "tun0", "mode", "tun"]);
    ip(&["-n", &h, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    // 802.1Q is optional in kernels (CONFIG_VLAN_8021Q): try it, and say so
    // loudly when the kernel cannot; the decoding of vlan ids is also
    // covered by the unit test topology::links::parse::tests::vlan_*.
    let vlan = run(
        "ip",
        &[
            "-n", &h, "link", "add", "link", "u1", "name", "u1.100", "type", "vlan", "id", "100",
        ],
    );
    let have_vlan = vlan.status.success();
    if !have_vlan {
        eprintln!(
            "NOTE: this kernel cannot create vlan devices ({}); the vlan part of \
             this test is not run here",
            String::from_utf8_lossy(&vlan.stderr).trim()
        );
    }

    let (links, errors) = read_links(&[handle(&h), handle(&x)]);
    assert!(errors.is_empty(), "{errors:?}");

    let u0 = find(&links, &h, "u0");
    assert_eq!(u0.kind, LinkKind::Veth);
    assert_eq!(u0.peer, Some(lref(&h, "u1")));
    let u1 = find(&links, &h, "u1");
    assert_eq!(u1.peer, Some(lref(&h, "u0")));

    let vx = find(&links, &h, "vx42");
    assert_eq!(vx.kind, LinkKind::Vxlan);
    assert_eq!(vx.kind_name.as_deref(), Some("vxlan"));
    assert_eq!(vx.vxlan_id, Some(42));
    assert_eq!(vx.vlan_id, None);
    assert_eq!(vx.parent, Some(lref(&h, "u0")));
    assert_eq!(vx.peer, None);

    let mv = find(&links, &h, "mv0");
    assert_eq!(mv.kind, LinkKind::Macvlan);
    assert_eq!(mv.kind_name.as_deref(), Some("macvlan"));
    assert_eq!(mv.parent, Some(lref(&h, "u0")));
    assert_eq!((mv.vlan_id, mv.vxlan_id), (None, None));

    let vx7 = find(&links, &x, "vx7");
    assert_eq!(vx7.kind, LinkKind::Vxlan);
    assert_eq!(vx7.vxlan_id, Some(7));
    assert_eq!(vx7.parent, Some(lref(&h, "u1")));
    let mvx = find(&links, &x, "mvx");
    assert_eq!(mvx.kind, LinkKind::Macvlan);
    assert_eq!(mvx.parent, Some(lref(&h, "u1")));

    let tun = find(&links, &h, "tun0");
    assert_eq!(tun.kind, LinkKind::Tun);
    assert_eq!(tun.kind_name.as_deref(), Some("tun"));
    assert_eq!((&tun.parent, &tun.peer), (&None, &None));
    let tap = find(&links, &h, "tap0");
    assert_eq!(tap.kind, LinkKind::Tap);
    assert_eq!(tap.kind_name.as_deref(), Some("tun"));

    if have_vlan {
        let v = find(&links, &h, "u1.100");
        assert_eq!(v.kind, LinkKind::Vlan);
        assert_eq!(v.kind_name.as_deref(), Some("vlan"));
        assert_eq!(v.vlan_id, Some(100));
        assert_eq!(v.parent, Some(lref(&h, "u1")));
    }
}

#[test]
fn peer_in_a_namespace_not_read_has_netns_zero() {
    require_root();
    let _serial = serial();
    let mut ns = Netns::new("out");
    let p = ns.add("p");
    let q = ns.add("q");
    ip(&[
        "-n", &p, "link", "add", "p0", "type", "veth", "peer", "name", "q0", "netns", &q,
    ]);
    // Make q0's ifindex differ from p0's so a mix-up would show.
    ip(&[
        "-n", &q, "link", "add", "filler", "type", "veth", "peer", "name", "filler2",
    ]);
    ip(&[
        "-n", &p, "link", "add", "p1", "type", "veth", "peer", "name", "q1", "netns", &q,
    ]);
    ip(&[
        "-n", &p, "link", "add", "vxo", "type", "vxlan", "id", "5", "dstport", "4789",
    ]);
    ip(&["-n", &p, "link", "set", "vxo", "netns", &q]);

    let (links, errors) = read_links(&[handle(&p)]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(names_in(&links, &p), sorted(&["lo", "p0", "p1"]));
    for (dev, peer) in [("p0", "q0"), ("p1", "q1")] {
        let l = find(&links, &p, dev);
        assert_eq!(l.kind, LinkKind::Veth);
        assert_eq!(
            l.peer,
            Some(LinkRef {
                netns: 0,
                ifindex: ifindex(&q, peer),
                ifname: String::new(),
            })
        );
    }
    assert_ne!(ifindex(&q, "q1"), ifindex(&p, "p1"));

    // From q's side, the peers in p are unknown as well; vxo has no lower
    // device at all.
    let (links, errors) = read_links(&[handle(&q)]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        find(&links, &q, "q1").peer,
        Some(LinkRef {
            netns: 0,
            ifindex: ifindex(&p, "p1"),
            ifname: String::new(),
        })
    );
    let vxo = find(&links, &q, "vxo");
    assert_eq!(vxo.kind, LinkKind::Vxlan);
    assert_eq!(vxo.parent, None);
    assert_eq!(vxo.vxlan_id, Some(5));
}

#[test]
fn unreadable_handles_are_reported_and_the_rest_is_read() {
    require_root();
    let _serial = serial();
    let mut ns = Netns::new("bad");
    let good = ns.add("good");
    ip(&[
        "-n", &good, "link", "add", "g0", "type", "veth", "peer", "name", "g1",
    ]);
    let missing = PathBuf::from(format!(
        "/run/netns/lk{}-does-not-exist",
        std::process::id()
    ));
    let not_ns = tempfile::NamedTempFile::new().unwrap();
    let wrong_inode = NetnsHandle {
        inode: inode(&good).wrapping_add(1),
        path: path(&good),
    };

    // A namespace file, but not a network namespace: setns(CLONE_NEWNET)
    // refuses it.
    let uts = PathBuf::from("/proc/self/ns/uts");

    let handles = [
        NetnsHandle {
            inode: 4_026_531_000,
            path: missing.clone(),
        },
        handle(&good),
        NetnsHandle {
            inode: 0,
            path: not_ns.path().to_path_buf(),
        },
        wrong_inode,
        NetnsHandle {
            inode: 0,
            path: uts.clone(),
        },
    ];
    let (links, errors) = read_links(&handles);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let has = |path: &str, what: &str| {
        assert!(
            errors.iter().any(|e| e.contains(path) && e.contains(what)),
            "no error about {path} saying {what:?} in {errors:#?}"
        )
    };
    has(&missing.display().to_string(), "open");
    has(&not_ns.path().display().to_string(), "not a namespace");
    has(
        &path(&good).display().to_string(),
        "the path now names inode",
    );
    has("/proc/self/ns/uts", "setns");
    assert_eq!(names_in(&links, &good), sorted(&["lo", "g0", "g1"]));
    assert!(links.iter().all(|l| l.netns == inode(&good)));
    assert_eq!(find(&links, &good, "g0").peer, Some(lref(&good, "g1")));
}

#[test]
fn the_callers_namespace_is_readable_and_unchanged() {
    require_root();
    let _serial = serial();
    let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let self_ino = std::fs::metadata("/proc/self/ns/net").unwrap().ino() as u32;
    // The same namespace twice is read once.
    let h = NetnsHandle {
        inode: self_ino,
        path: "/proc/self/ns/net".into(),
    };
    let (links, errors) = read_links(&[h.clone(), h]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        before,
        std::fs::read_link("/proc/thread-self/ns/net").unwrap()
    );
    let lo: Vec<_> = links.iter().filter(|l| l.ifname == "lo").collect();
    assert_eq!(lo.len(), 1);
    assert_eq!(lo[0].kind, LinkKind::Loopback);
    for l in &links {
        eprintln!(
            "caller's netns: {} ifindex {} kind {} kind_name {:?} up {}",
            l.ifname,
            l.ifindex,
            l.kind.name(),
            l.kind_name,
            l.up
        );
        if l.kind_name.is_none() && l.ifname != "lo" {
            assert_eq!(l.kind, LinkKind::Physical, "{l:?}");
        }
    }
}

#[test]
fn ten_namespaces_are_read_quickly() {
    require_root();
    let _serial = serial();
    let mut ns = Netns::new("time");
    let host = ns.add("host");
    ip(&["-n", &host, "link", "add", "br0", "type", "bridge"]);
    let mut handles = vec![handle(&host)];
    let mut leaves = Vec::new();
    for i in 0..9 {
        let leaf = ns.add(&format!("c{i}"));
        let dev = format!("v{i}");
        ip(&[
            "-n", &host, "link", "add", &dev, "type", "veth", "peer", "name", "eth0", "netns",
            &leaf,
        ]);
        ip(&["-n", &host, "link", "set", &dev, "master", "br0"]);
        handles.push(handle(&leaf));
        leaves.push((leaf, dev));
    }

    let mut times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let (links, errors) = read_links(&handles);
        times.push(t.elapsed());
        assert!(errors.is_empty(), "{errors:?}");
        last = links;
    }
    let first = times[0];
    times.sort();
    eprintln!(
        "read_links over {} namespaces ({} links): min {:?}, median {:?}, max {:?} (first call {:?})",
        handles.len(),
        last.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        first,
    );
    assert!(times[times.len() - 1] < Duration::from_secs(1), "{times:?}");
    assert_eq!(last.len(), 2 + 9 + 2 * 9);
    for (leaf, dev) in &leaves {
        assert_eq!(find(&last, leaf, "eth0").peer, Some(lref(&host, dev)));
        assert_eq!(find(&last, &host, dev).peer, Some(lref(leaf, "eth0")));
        assert_eq!(find(&last, &host, dev).master, Some(lref(&host, "br0")));
    }
}
