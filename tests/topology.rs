//! Names and topology on real namespaces, through the real binary: link
//! kinds, bridge masters and veth peers on every hop, namespaces that appear
//! after start, namespaces only a process holds, a name that appears later
//! (bind mount added), and the hop graph as Graphviz DOT. Root only; never
//! skipped. Everything created has a unique prefix and is removed on drop.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use hopscope::lab::{addr, LabGuard};
use serde_json::Value;

/// (netns name, ifname, kind, master, peer ifname, peer netns inode) of a hop.
type Facts = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<u64>,
);

/// Hook events of `lines` in namespace `ns` (by inode).
fn hops_in(lines: &[Value], ns: u64) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "hop" && l["netns"].as_u64() == Some(ns))
        .collect()
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// Removes namespaces (and kills processes) when dropped.
struct Cleanup {
    netns: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.netns {
            let _ = Command::new("ip").args(["netns", "delete", n]).status();
        }
    }
}

fn inode_of(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// Starts `hopscope trace --json` for `secs` and waits until it is attached.
fn start_trace(secs: u32) -> Child {
    let child = Command::new(bin())
        .args(["trace", "--json", "--duration", &secs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_attached(child.id(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    child
}

#[test]
fn every_hop_carries_kind_master_peer_and_names() {
    let _s = serial();
    require_root();
    let g = LabGuard::up(&prefix("tk")).unwrap();
    let l = &g.lab;
    let (host, c1, c2) = (l.host(), l.c1(), l.c2());
    let ino = |n: &str| l.netns_inode(n).unwrap();
    let out = hopscope(&[
        "trace",
        "--json",
        "--",
        "ip",
        "netns",
        "exec",
        &c1,
        "ping",
        "-q",
        "-c",
        "1",
        addr::C2_V4,
    ]);
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    let facts = |ns: u64| -> Vec<Facts> {
        let mut v: Vec<_> = hops_in(&lines, ns)
            .into_iter()
            .map(|h| {
                (
                    h["netns_name"].as_str().unwrap_or("?").to_owned(),
                    h["ifname"].as_str().unwrap().to_owned(),
                    h["kind"].as_str().unwrap_or("?").to_owned(),
                    h["master"].as_str().map(str::to_owned),
                    h["peer_ifname"].as_str().map(str::to_owned),
                    h["peer_netns"].as_u64(),
                )
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        facts(ino(&c1)),
        [(
            c1.clone(),
            "eth0".into(),
            "veth".into(),
            None,
            s("vc1"),
            Some(ino(&host))
        )]
    );
    assert_eq!(
        facts(ino(&host)),
        [
            (
                host.clone(),
                "vc1".into(),
                "veth".into(),
                s("br0"),
                s("eth0"),
                Some(ino(&c1))
            ),
            (
                host.clone(),
                "vc2".into(),
                "veth".into(),
                s("br0"),
                s("eth0"),
                Some(ino(&c2))
            ),
        ]
    );
    assert_eq!(
        facts(ino(&c2)),
        [(
            c2.clone(),
            "eth0".into(),
            "veth".into(),
            None,
            s("vc2"),
            Some(ino(&host))
        )]
    );
    // --inodes: no names, no link facts.
    let out = hopscope(&[
        "trace",
        "--json",
        "--inodes",
        "--",
        "ip",
        "netns",
        "exec",
        &c1,
        "ping",
        "-q",
        "-c",
        "1",
        addr::C2_V4,
    ]);
    let lines = json_lines(&out.stdout);
    let hops = hops_in(&lines, ino(&c1));
    assert!(!hops.is_empty());
    assert!(hops
        .iter()
        .all(|h| h.get("netns_name").is_none() && h.get("kind").is_none()));
}

#[test]
fn namespaces_created_later_or_held_by_a_process_are_named() {
    let _s = serial();
    require_root();
    let p = prefix("tn");
    let (a, b) = (format!("{p}-late-a"), format!("{p}-late-b"));
    let named = format!("{p}-named");
    let mut cleanup = Cleanup {
        netns: vec![a.clone(), b.clone(), named.clone()],
        children: Vec::new(),
    };
    let trace = start_trace(14);

    // 1. Two namespaces created after hopscope started, with a veth pair.
    sh(&format!(
        "ip netns add {a} && ip netns add {b} && \
         ip -n {a} link add eth0 type veth peer name eth0 netns {b} && \
         ip -n {a} addr add 198.18.7.1/30 dev eth0 && ip -n {b} addr add 198.18.7.2/30 dev eth0 && \
         ip -n {a} link set eth0 up && ip -n {b} link set eth0 up && \
         ip netns exec {a} ping -q -c 2 -i 0.2 198.18.7.2 >/dev/null"
    ));
    let (ia, ib) = (
        inode_of(&format!("/run/netns/{a}")),
        inode_of(&format!("/run/netns/{b}")),
    );

    // 2. A namespace only a process holds (no bind mount), loopback traffic
    //    inside it; after 2 s it gets a bind mount, i.e. a name.
    let holder = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && ping -q -c 45 -i 0.2 127.0.0.1 >/dev/null",
        ])
        .spawn()
        .unwrap();
    let holder_pid = holder.id();
    cleanup.children.push(holder);
    std::thread::sleep(Duration::from_millis(300));
    let held = inode_of(&format!("/proc/{holder_pid}/ns/net"));
    // sh, or ping if the shell exec'd it: the lowest pid in the namespace.
    let comm = std::fs::read_to_string(format!("/proc/{holder_pid}/comm")).unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    sh(&format!("ip netns attach {named} {holder_pid}"));
    std::thread::sleep(Duration::from_secs(6));

    let _ = Command::new("kill")
        .args(["-INT", &trace.id().to_string()])
        .status();
    let out = trace.wait_with_output().unwrap();
    let lines = json_lines(&out.stdout);
    let names = |ns: u64| -> Vec<String> {
        let mut v: Vec<String> = hops_in(&lines, ns)
            .iter()
            .map(|h| h["netns_name"].as_str().unwrap_or("?").to_owned())
            .collect();
        v.dedup();
        v
    };
    assert_eq!(names(ia), std::slice::from_ref(&a), "created after start");
    assert_eq!(names(ib), std::slice::from_ref(&b));
    let veth = hops_in(&lines, ia);
    assert!(veth.iter().all(|h| h["kind"] == "veth"
        && h["peer_ifname"] == "eth0"
        && h["peer_netns"].as_u64() == Some(ib)));

    // Named after its process first (sh is the lowest pid in it), then
    // after the bind mount once it appeared.
    let held_names = names(held);
    assert_eq!(
        held_names,
        [format!("{}[{holder_pid}]", comm.trim_end()), named.clone()],
        "process-held, then renamed"
    );
    let lo = hops_in(&lines, held);
    assert!(lo
        .iter()
        .all(|h| h["ifname"] == "lo" && h["kind"] == "loopback"));
    drop(cleanup);
    assert_no_programs_left();
}

#[test]
fn dot_output_parses_and_has_the_veth_wires_and_the_bridge() {
    let _s = serial();
    require_root();
    let g = LabGuard::up(&prefix("td")).unwrap();
    let l = &g.lab;
    let ino = |n: &str| l.netns_inode(n).unwrap();
    let (host, c1, c2) = (ino(&l.host()), ino(&l.c1()), ino(&l.c2()));
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("path.dot");
    let out = hopscope(&[
        "trace",
        "--dot",
        dot.to_str().unwrap(),
        "--",
        "ip",
        "netns",
        "exec",
        &l.c1(),
        "ping",
        "-q",
        "-c",
        "2",
        addr::C2_V4,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&dot).unwrap();
    let svg = Command::new("dot").arg("-Tsvg").arg(&dot).output().unwrap();
    assert!(
        svg.status.success(),
        "dot: {}",
        String::from_utf8_lossy(&svg.stderr)
    );
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));

    // Node ids are "netns:ifindex"; the lab numbers lo 1, then its links.
    let node = |ns: u64, name: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("\"{ns}:")) && l.contains(&format!("label=\"{name}\\n")))
            .unwrap_or_else(|| panic!("no node {name} in {ns}:\n{text}"));
        line.trim().split(' ').next().unwrap().to_owned()
    };
    let (eth_c1, vc1, vc2, eth_c2, br0) = (
        node(c1, "eth0"),
        node(host, "vc1"),
        node(host, "vc2"),
        node(c2, "eth0"),
        node(host, "br0"),
    );
    let has = |s: &str| text.lines().any(|l| l.trim().starts_with(s));
    // veth wires, drawn once per pair, in either direction.
    let wire = |a: &str, b: &str| {
        let n = text
            .lines()
            .filter(|l| l.contains("dir=none, style=bold"))
            .filter(|l| {
                let t = l.trim();
                t.starts_with(&format!("{a} -> {b} ")) || t.starts_with(&format!("{b} -> {a} "))
            })
            .count();
        assert_eq!(n, 1, "one veth wire {a} – {b}:\n{text}");
    };
    wire(&vc1, &eth_c1);
    wire(&vc2, &eth_c2);
    // The bridge, with its ports, though no packet visited br0 itself.
    assert!(
        text.contains("label=\"br0\\nbridge\", shape=box3d"),
        "{text}"
    );
    assert!(has(&format!("{vc1} -> {br0} [style=dashed")), "{text}");
    assert!(has(&format!("{vc2} -> {br0} [style=dashed")), "{text}");
    // What the packets did: requests c1 → c2, replies back.
    assert!(
        has(&format!("{eth_c1} -> {vc1} [color=darkgreen")),
        "{text}"
    );
    assert!(has(&format!("{vc1} -> {vc2} [color=darkgreen")), "{text}");
    assert!(
        has(&format!("{vc2} -> {eth_c2} [color=darkgreen")),
        "{text}"
    );
    assert!(has(&format!("{eth_c2} -> {vc2} [color=magenta3")), "{text}");
    assert!(text.contains("label=\"request ×2 "), "{text}");
}
