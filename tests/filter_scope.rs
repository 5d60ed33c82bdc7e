//! Filters beyond tcpdump's own view, on real namespaces through the real
//! binary: a packet matched before NAT is followed after masquerade
//! rewrote its source, and so is the rest of its NAT'd connection, replies
//! included (`--flow`: any flow whose packet matched); `--netns`,
//! `--pid` and `--iface` select exactly their hops; bad expressions and
//! flags exit 2 with libpcap's message and load nothing. Root only; never
//! skipped. Traffic stays inside the test's lab (198.18.0.0/15).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use hopscope::lab::{addr, LabGuard};
use serde_json::Value;

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lab(tag: &str) -> LabGuard {
    require_root();
    LabGuard::up(&prefix(tag)).expect("building the lab")
}

fn hops(recs: &[Value]) -> Vec<&Value> {
    recs.iter().filter(|r| r["type"] == "hop").collect()
}

/// Hops of ICMP echo packets (type 8 or 0): the only ones the tests send
/// in their namespaces. (NAT may rewrite the identifier.)
fn echo_hops(recs: &[Value]) -> Vec<&Value> {
    hops(recs)
        .into_iter()
        .filter(|h| h["proto"] == "icmp" && (h["icmp_type"] == 8 || h["icmp_type"] == 0))
        .collect()
}

/// Masquerade in the host namespace for the lab's clients going to r1:
/// r1 sees every request come from the host's address on vr1.
fn masquerade(l: &hopscope::lab::Lab) {
    let host = l.host();
    sh(&format!(
        "ip netns exec {host} nft add table ip hsnat && \
         ip netns exec {host} nft add chain ip hsnat post '{{ type nat hook postrouting priority 100; }}' && \
         ip netns exec {host} nft add rule ip hsnat post oifname vr1 ip saddr 198.18.0.0/24 masquerade"
    ));
}

/// Three pings from c1 to r1.
fn ping_r1(l: &hopscope::lab::Lab) {
    sh(&format!(
        "ip netns exec {} ping -q -c 3 -i 0.2 -W 1 {} >/dev/null",
        l.c1(),
        addr::R1_V4
    ));
}

/// `hopscope trace MODE "icmp and src host c1"` over host, c1 and r1 while
/// c1 pings r1 through the host's masquerade; the records.
fn ping_through_nat(l: &hopscope::lab::Lab, mode: &str) -> Vec<Value> {
    masquerade(l);
    let netns = [l.host(), l.c1(), l.r1()];
    let mut args = vec![mode, "icmp and src host 198.18.0.2"];
    for n in &netns {
        args.extend(["--netns", n.as_str()]);
    }
    let t = Trace::start(&args);
    ping_r1(l);
    t.stop()
}

/// Where packet `p` was seen (net_dev_xmit repeats net_dev_queue), with
/// its address `field` ("src" or "dst") there.
fn path_of<'a>(hops: &[&'a Value], p: u64, field: &str) -> Vec<(&'a str, &'a str, &'a str)> {
    hops.iter()
        .filter(|h| h["packet"].as_u64() == Some(p) && h["hook"] != "net_dev_xmit")
        .map(|h| {
            (
                h["netns_name"].as_str().unwrap(),
                h["ifname"].as_str().unwrap(),
                h[field].as_str().unwrap(),
            )
        })
        .collect()
}

fn packets_of(hops: &[&Value]) -> BTreeSet<u64> {
    hops.iter().map(|h| h["packet"].as_u64().unwrap()).collect()
}

#[test]
fn matched_before_nat_followed_after() {
    let _s = serial();
    let g = lab("fn");
    let l = &g.lab;
    let recs = ping_through_nat(l, "--filter");
    let echo = echo_hops(&recs);

    // Each request is one packet from c1's eth0 to r1's eth0; on r1 its
    // source is the host's address: the filter matched it before NAT.
    let requests: Vec<&Value> = echo
        .iter()
        .copied()
        .filter(|h| h["icmp_type"] == 8)
        .collect();
    let request_packets = packets_of(&requests);
    assert_eq!(request_packets.len(), 3, "three echo requests: {echo:#?}");
    for p in &request_packets {
        let path = path_of(&echo, *p, "src");
        assert_eq!(
            path.first().copied(),
            Some((l.c1().as_str(), "eth0", addr::C1_V4)),
            "{path:?}"
        );
        assert_eq!(
            path.last().copied(),
            Some((l.r1().as_str(), "eth0", addr::HOST_R1_V4)),
            "followed after masquerade: {path:?}"
        );
    }
    // A connection NAT rewrote is followed whole once a packet of it
    // matched (conntrack's tuples before and after the rewrite are learned):
    // the replies too, from r1 to c1, though their own headers do not match.
    let replies: Vec<&Value> = echo
        .iter()
        .copied()
        .filter(|h| h["icmp_type"] == 0)
        .collect();
    let reply_packets = packets_of(&replies);
    assert_eq!(reply_packets.len(), 3, "three replies: {echo:#?}");
    for p in &reply_packets {
        let path = path_of(&replies, *p, "dst");
        assert_eq!(
            path.first().copied(),
            Some((l.r1().as_str(), "eth0", addr::HOST_R1_V4)),
            "{path:?}"
        );
        assert_eq!(
            path.last().copied(),
            Some((l.c1().as_str(), "eth0", addr::C1_V4)),
            "{path:?}"
        );
    }
    assert_no_programs_left();
}

#[test]
fn whole_flows_follow_replies_through_nat() {
    let _s = serial();
    let g = lab("fw");
    let l = &g.lab;
    let recs = ping_through_nat(l, "--flow");
    let echo = echo_hops(&recs);
    let replies: Vec<&Value> = echo
        .iter()
        .copied()
        .filter(|h| h["icmp_type"] == 0)
        .collect();
    let reply_packets = packets_of(&replies);
    assert_eq!(reply_packets.len(), 3, "three replies followed: {echo:#?}");
    for p in &reply_packets {
        let seen = path_of(&replies, *p, "dst");
        // Sent by r1 to the masquerading address, delivered to c1 after
        // the reverse translation.
        assert_eq!(
            seen.first().copied(),
            Some((l.r1().as_str(), "eth0", addr::HOST_R1_V4)),
            "{seen:?}"
        );
        assert_eq!(
            seen.last().copied(),
            Some((l.c1().as_str(), "eth0", addr::C1_V4)),
            "{seen:?}"
        );
    }
    assert_no_programs_left();
}

/// (netns name, ifname) of every hop of ICMP echo packets of this run.
fn echo_places(recs: &[Value]) -> BTreeSet<(String, String)> {
    echo_hops(recs)
        .iter()
        .map(|h| {
            (
                h["netns_name"].as_str().unwrap().to_owned(),
                h["ifname"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn netns_pid_and_iface_select_exactly_their_hops() {
    let _s = serial();
    let g = lab("fs");
    let l = &g.lab;
    let (host, c1, r1) = (l.host(), l.c1(), l.r1());

    // The router's namespace by name: its two interfaces, nothing else.
    let t = Trace::start(&["--filter", "icmp", "--netns", &host]);
    ping_r1(l);
    let recs = t.stop();
    assert_eq!(
        echo_places(&recs),
        set(&[(&host, "vc1"), (&host, "br0"), (&host, "vr1"),]),
    );
    let host_ino = l.netns_inode(&host).unwrap();
    assert!(
        hops(&recs)
            .iter()
            .all(|h| h["netns"].as_u64() == Some(host_ino)),
        "every hop in {host}"
    );

    // r1 by the pid of a process living there, and by its inode.
    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", &r1, "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let sleeper_pid = sleeper.id().to_string();
    let r1_ino = l.netns_inode(&r1).unwrap().to_string();
    for scope in [
        ["--pid", sleeper_pid.as_str()],
        ["--netns", r1_ino.as_str()],
    ] {
        let t = Trace::start(&["--filter", "icmp", scope[0], scope[1]]);
        ping_r1(l);
        let recs = t.stop();
        assert_eq!(echo_places(&recs), set(&[(&r1, "eth0")]), "{scope:?}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // eth0 everywhere: c1's and r1's, not the host's interfaces.
    let t = Trace::start(&["--filter", "icmp", "--iface", "eth0"]);
    ping_r1(l);
    let recs = t.stop();
    let lab_places: BTreeSet<(String, String)> = echo_places(&recs)
        .into_iter()
        .filter(|(ns, _)| ns.starts_with(&format!("{}-", l.prefix())))
        .collect();
    assert_eq!(lab_places, set(&[(&c1, "eth0"), (&r1, "eth0")]));
    assert!(hops(&recs).iter().all(|h| h["ifname"] == "eth0"));

    // Both: one interface of one namespace.
    let t = Trace::start(&["--filter", "icmp", "--netns", &host, "--iface", "vr1"]);
    ping_r1(l);
    let recs = t.stop();
    assert_eq!(echo_places(&recs), set(&[(&host, "vr1")]));
    assert_no_programs_left();
}

#[test]
fn bad_expressions_and_flags_exit_2_and_load_nothing() {
    let _s = serial();
    require_root();
    // The kernel frees the previous test's programs asynchronously: start
    // from an empty listing, so any program seen below is one of these runs'.
    assert_no_programs_left();
    for (args, wanted) in [
        (
            vec!["trace", "--filter", "tcp port"],
            "invalid filter `tcp port`: can't parse filter expression: syntax error",
        ),
        (
            vec!["trace", "--flow", "net 198.18.0.0/33"],
            "mask length must be <= 32",
        ),
        (
            vec!["--filter", "icmp and and"],
            "invalid filter `icmp and and`",
        ),
        (
            vec!["trace", "--netns", "no-such-namespace-hs"],
            "no network namespace named no-such-namespace-hs",
        ),
        (
            vec!["trace", "--netns", "/etc/hostname"],
            "not a network namespace file",
        ),
        (vec!["trace", "--iface", "a-name-much-too-long"], "--iface"),
        (vec!["trace", "--pid", "4000000000"], "--pid 4000000000"),
        (
            vec!["trace", "--filter", "icmp", "--flow", "udp"],
            "cannot be used with",
        ),
    ] {
        let out = hopscope(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(wanted), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
        assert_eq!(
            hopscope_progs_loaded(),
            Vec::<String>::new(),
            "{args:?} loaded programs"
        );
    }
    assert_no_programs_left();
}
