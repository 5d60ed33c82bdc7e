//! Why a packet died, and who decided, on real namespaces through the real
//! binary: netfilter (nft and iptables-legacy) drops with their location
//! and exact counts, closed UDP and TCP ports (the ICMP error and the reset
//! linked to the packet that caused them), unroutable destinations, TTL
//! expiry, reverse-path filtering and unanswered neighbours. Root only;
//! never skipped. Traffic stays inside the test's lab (198.18.0.0/15).

mod common;

use std::process::Command;

use common::*;
use hopscope::lab::{addr, LabGuard};
use serde_json::Value;

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `hopscope trace --json -- ip netns exec NS sh -c CMD`, its records.
fn trace_in(ns: &str, cmd: &str) -> Vec<Value> {
    let out = hopscope(&[
        "trace", "--json", "--", "ip", "netns", "exec", ns, "sh", "-c", cmd,
    ]);
    json_lines(&out.stdout)
}

fn of_type<'a>(recs: &'a [Value], t: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == t).collect()
}

fn lab(tag: &str) -> LabGuard {
    require_root();
    LabGuard::up(&prefix(tag)).expect("building the lab")
}

/// The drop records of packets of protocol `proto` to `dst`.
fn drops_to<'a>(recs: &'a [Value], proto: &str, dst: &str) -> Vec<&'a Value> {
    of_type(recs, "drop")
        .into_iter()
        .filter(|d| d["proto"] == proto && d["dst"] == dst)
        .collect()
}

#[test]
fn nft_drop_in_the_router_namespace() {
    let _s = serial();
    let g = lab("dn");
    let l = &g.lab;
    let host = l.host();
    sh(&format!(
        "ip netns exec {host} nft add table inet hstest && \
         ip netns exec {host} nft add chain inet hstest fdrop '{{ type filter hook forward priority 0; }}' && \
         ip netns exec {host} nft add rule inet hstest fdrop icmp type echo-request counter drop"
    ));
    let recs = trace_in(
        &l.c1(),
        &format!("ping -q -c 3 -i 0.2 -W 1 {} || true", addr::R1_V4),
    );
    let drops = drops_to(&recs, "icmp", addr::R1_V4);
    let ruleset = sh(&format!("ip netns exec {host} nft list ruleset"));
    let counted: u64 = ruleset
        .split("counter packets ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {ruleset}"));
    assert_eq!(counted, 3, "{ruleset}");
    assert_eq!(
        drops.len() as u64,
        counted,
        "one drop per packet the rule counted"
    );
    let host_ino = l.netns_inode(&host).unwrap();
    for d in &drops {
        assert_eq!(d["reason"], "NETFILTER_DROP", "{d}");
        assert_eq!(d["netns"].as_u64(), Some(host_ino), "{d}");
        assert_eq!(d["netns_name"], host.as_str(), "{d}");
        assert_eq!(
            d["ifname"], "br0",
            "last seen on the bridge it came in by: {d}"
        );
        assert!(
            d["location"]
                .as_str()
                .unwrap()
                .starts_with("nft_do_chain+0x"),
            "{d}"
        );
        assert!(
            d["hint"].as_str().unwrap().contains("nft list ruleset"),
            "{d}"
        );
    }
}

#[test]
fn iptables_legacy_drop_in_the_router_namespace() {
    let _s = serial();
    let g = lab("di");
    let l = &g.lab;
    let host = l.host();
    sh(&format!(
        "ip netns exec {host} iptables-legacy -A FORWARD -p icmp --icmp-type echo-request -j DROP"
    ));
    let recs = trace_in(
        &l.c1(),
        &format!("ping -q -c 2 -i 0.2 -W 1 {} || true", addr::R1_V4),
    );
    let drops = drops_to(&recs, "icmp", addr::R1_V4);
    let listing = sh(&format!(
        "ip netns exec {host} iptables-legacy -L FORWARD -v -n -x"
    ));
    let counted: u64 = listing
        .lines()
        .find(|l| l.contains("DROP"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(counted, 2, "{listing}");
    assert_eq!(drops.len() as u64, counted);
    for d in &drops {
        assert_eq!(d["reason"], "NETFILTER_DROP", "{d}");
        assert_eq!(d["netns_name"], host.as_str());
        // x_tables calls back into the netfilter core.
        let at = d["location"].as_str().unwrap();
        assert!(at.starts_with("nf_hook_slow+0x"), "{d}");
    }
}

#[test]
fn udp_to_a_closed_port_no_socket_and_the_port_unreachable_linked() {
    let _s = serial();
    let g = lab("du");
    let l = &g.lab;
    let recs = trace_in(
        &l.c1(),
        &format!("bash -c 'echo x > /dev/udp/{}/9' || true", addr::C2_V4),
    );
    let drops = drops_to(&recs, "udp", addr::C2_V4);
    assert!(!drops.is_empty(), "{recs:#?}");
    let c2 = l.c2();
    for d in &drops {
        assert_eq!(d["reason"], "NO_SOCKET", "{d}");
        assert_eq!(
            d["netns_name"],
            c2.as_str(),
            "in the receiver's namespace: {d}"
        );
        assert!(
            d["hint"].as_str().unwrap().contains("nothing listens"),
            "{d}"
        );
        // The port unreachable names the very datagram.
        let errs: Vec<&Value> = of_type(&recs, "icmp_error")
            .into_iter()
            .filter(|e| e["packet"] == d["packet"])
            .collect();
        assert_eq!(errs.len(), 1, "{d}: {recs:#?}");
        let e = errs[0];
        assert_eq!(
            (e["icmp_type"].as_u64(), e["icmp_code"].as_u64()),
            (Some(3), Some(3))
        );
        assert_eq!(e["what"], "port unreachable");
        assert_eq!(e["netns_name"], c2.as_str());
        assert_eq!(e["dport"], 9);
    }
}

#[test]
fn tcp_to_a_closed_port_the_reset_on_the_flow() {
    let _s = serial();
    let g = lab("dt");
    let l = &g.lab;
    let recs = trace_in(
        &l.c1(),
        &format!(
            "bash -c 'echo > /dev/tcp/{}/9' 2>/dev/null || true",
            addr::C2_V4
        ),
    );
    let syn = recs
        .iter()
        .find(|r| r["type"] == "hop" && r["dport"] == 9 && r["tcp_flags"] == "S")
        .unwrap_or_else(|| panic!("no SYN: {recs:#?}"));
    let resets = of_type(&recs, "tcp_reset");
    let sent: Vec<_> = resets.iter().filter(|r| r["direction"] == "sent").collect();
    let received: Vec<_> = resets
        .iter()
        .filter(|r| r["direction"] == "received")
        .collect();
    assert_eq!(sent.len(), 1, "{resets:#?}");
    assert_eq!(
        sent[0]["packet"], syn["packet"],
        "the reset answers the SYN"
    );
    assert_eq!(sent[0]["flow"], syn["flow"]);
    assert_eq!(sent[0]["netns_name"], l.c2().as_str());
    assert_eq!(received.len(), 1, "{resets:#?}");
    assert_eq!(
        received[0]["flow"], syn["flow"],
        "the client's socket saw it"
    );
    assert_eq!(received[0]["netns_name"], l.c1().as_str());
    let drops = drops_to(&recs, "tcp", addr::C2_V4);
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0]["reason"], "NO_SOCKET");
}

#[test]
fn unroutable_destination_no_route_and_net_unreachable() {
    let _s = serial();
    let g = lab("dr");
    let l = &g.lab;
    // Inside 198.18.0.0/15, which c1 routes to the host namespace; the host
    // has no route for it (and none off the machine).
    let nowhere = "198.19.255.1";
    let recs = trace_in(&l.c1(), &format!("ping -q -c 1 -W 1 {nowhere} || true"));
    let drops = drops_to(&recs, "icmp", nowhere);
    assert_eq!(drops.len(), 1, "{recs:#?}");
    let d = drops[0];
    assert_eq!(d["reason"], "IP_INNOROUTES");
    assert_eq!(d["netns_name"], l.host().as_str());
    assert!(d["hint"].as_str().unwrap().contains("no route"), "{d}");
    let errs: Vec<_> = of_type(&recs, "icmp_error")
        .into_iter()
        .filter(|e| e["packet"] == d["packet"])
        .collect();
    assert_eq!(errs.len(), 1, "{recs:#?}");
    assert_eq!(errs[0]["what"], "net unreachable");
    // The failed lookup, in the router namespace, for that packet.
    let routes: Vec<_> = of_type(&recs, "route")
        .into_iter()
        .filter(|r| r["packet"] == d["packet"] && r["dst"] == nowhere)
        .collect();
    assert!(!routes.is_empty(), "{recs:#?}");
    for r in &routes {
        assert_eq!(r["netns_name"], l.host().as_str(), "{r}");
        assert!(r["error"].is_string(), "no route found: {r}");
        assert!(r.get("oif").is_none(), "{r}");
    }
    // A routable one, for contrast: table, gateway-less on-link route, device.
    let ok = trace_in(
        &l.c1(),
        &format!("ping -q -c 1 -W 1 {} || true", addr::R1_V4),
    );
    let found = of_type(&ok, "route")
        .into_iter()
        .find(|r| {
            r["netns_name"] == l.host().as_str()
                && r["dst"] == addr::R1_V4
                && r["error"].is_null()
                && r.get("error").is_some()
        })
        .unwrap_or_else(|| panic!("{ok:#?}"));
    assert_eq!(found["oif"], "vr1");
    assert!(found["table"].is_u64());
}

#[test]
fn ttl_expiry_in_the_router_and_time_exceeded_linked() {
    let _s = serial();
    let g = lab("dx");
    let l = &g.lab;
    let recs = trace_in(
        &l.c1(),
        &format!("ping -q -c 1 -t 1 -W 1 {} || true", addr::R1_V4),
    );
    let drops = drops_to(&recs, "icmp", addr::R1_V4);
    assert_eq!(drops.len(), 1, "{recs:#?}");
    let d = drops[0];
    assert_eq!(d["reason"], "IP_INHDR");
    assert_eq!(d["netns_name"], l.host().as_str());
    assert!(
        d["location"].as_str().unwrap().starts_with("ip_forward+0x"),
        "{d}"
    );
    let errs: Vec<_> = of_type(&recs, "icmp_error")
        .into_iter()
        .filter(|e| e["packet"] == d["packet"])
        .collect();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0]["icmp_type"].as_u64(), errs[0]["icmp_code"].as_u64()),
        (Some(11), Some(0))
    );
}

#[test]
fn reverse_path_filter_drops_a_spoofed_source() {
    let _s = serial();
    let g = lab("dp");
    let l = &g.lab;
    let (host, c1) = (l.host(), l.c1());
    // c1 claims an address of r1's subnet; the host expects that source on
    // vr1, not on br0. (rp_filter also ignores c1's ARP from that source,
    // so c1 gets the gateway's MAC statically.)
    let spoofed = "198.18.1.50";
    let mac = sh(&format!(
        "ip -n {host} link show br0 | awk '/link\\/ether/ {{print $2}}'"
    ));
    sh(&format!(
        "ip netns exec {host} sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.br0.rp_filter=1 && \
         ip -n {c1} addr add {spoofed}/32 dev eth0 && \
         ip -n {c1} neigh replace {} lladdr {} dev eth0 nud permanent",
        addr::BR0_V4,
        mac.trim()
    ));
    let recs = trace_in(
        &c1,
        &format!("ping -q -c 1 -W 1 -I {spoofed} {} || true", addr::R1_V4),
    );
    let drops = drops_to(&recs, "icmp", addr::R1_V4);
    assert_eq!(drops.len(), 1, "{recs:#?}");
    assert_eq!(drops[0]["reason"], "IP_RPFILTER");
    assert_eq!(drops[0]["netns_name"], host.as_str());
    assert!(drops[0]["hint"].as_str().unwrap().contains("rp_filter"));
}

#[test]
fn unanswered_neighbour_neigh_failed() {
    let _s = serial();
    let g = lab("dg");
    let l = &g.lab;
    // On c1's own link, but nobody has it: ARP gives up after 3 probes.
    let silent = "198.18.0.99";
    let recs = trace_in(&l.c1(), &format!("ping -q -c 1 -W 4 {silent}; sleep 1"));
    let drops = drops_to(&recs, "icmp", silent);
    assert_eq!(drops.len(), 1, "{recs:#?}");
    assert_eq!(drops[0]["reason"], "NEIGH_FAILED");
    assert_eq!(drops[0]["netns_name"], l.c1().as_str());
    assert!(drops[0]["hint"].as_str().unwrap().contains("ARP/ND"));
    // The resolution itself given up, on c1's eth0. (Its start comes before
    // the waiting packet is known, so `-- COMMAND` cannot claim it.)
    let neigh: Vec<_> = of_type(&recs, "neigh")
        .into_iter()
        .filter(|n| n["addr"] == silent)
        .collect();
    let states: Vec<&str> = neigh.iter().map(|n| n["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["failed"], "{neigh:#?}");
    for n in &neigh {
        assert_eq!(n["netns_name"], l.c1().as_str());
        assert_eq!(n["ifname"], "eth0");
        assert_eq!(
            n["flow"], drops[0]["flow"],
            "attached to the flow that waited"
        );
    }
}

#[test]
fn text_mode_says_why_and_what_to_check() {
    let _s = serial();
    let g = lab("dm");
    let l = &g.lab;
    let out = hopscope(&[
        "trace",
        "--",
        "ip",
        "netns",
        "exec",
        &l.c1(),
        "sh",
        "-c",
        &format!("ping -q -c 1 -t 1 -W 1 {} || true", addr::R1_V4),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains(
            " br0 ICMP error sent: time exceeded (TTL) (type 11 code 0) because of packet "
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("→ dropped: IP_INHDR at ip_forward+0x")
                && l.contains("; bad IP header, or the TTL ran out")),
        "{text}"
    );
}

#[test]
fn drop_stack_names_the_kernel_path() {
    let _s = serial();
    let g = lab("ds");
    let l = &g.lab;
    let out = hopscope(&[
        "trace",
        "--json",
        "--drop-stack",
        "--",
        "ip",
        "netns",
        "exec",
        &l.c1(),
        "bash",
        "-c",
        &format!("echo x > /dev/udp/{}/9 || true", addr::C2_V4),
    ]);
    let recs = json_lines(&out.stdout);
    let drops = drops_to(&recs, "udp", addr::C2_V4);
    assert_eq!(drops.len(), 1, "{recs:#?}");
    let stack: Vec<&str> = drops[0]["stack"]
        .as_array()
        .unwrap_or_else(|| panic!("no stack: {}", drops[0]))
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    // From the function that dropped it, down the receive path.
    assert!(
        stack[0].starts_with("sk_skb_reason_drop+0x") || stack[0].starts_with("kfree_skb"),
        "{stack:?}"
    );
    assert!(
        stack.iter().any(|f| f.starts_with("__udp4_lib_rcv+0x")),
        "{stack:?}"
    );
    assert!(
        stack.iter().any(|f| f.starts_with("ip_local_deliver")),
        "{stack:?}"
    );
    assert!(
        !stack.iter().any(|f| f.starts_with("bpf_prog_")),
        "{stack:?}"
    );
    // Without the flag: no stack.
    let plain = trace_in(
        &l.c1(),
        &format!("bash -c 'echo x > /dev/udp/{}/9' || true", addr::C2_V4),
    );
    assert!(drops_to(&plain, "udp", addr::C2_V4)
        .iter()
        .all(|d| d.get("stack").is_none()));
}

/// Kills the listener when dropped, even if an assertion fails.
struct Listener(std::process::Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tcp_retransmissions_attach_to_their_flow() {
    let _s = serial();
    let g = lab("dx2");
    let l = &g.lab;
    let host = l.host();
    // The router drops data segments to port 8009 for a moment: the client
    // retransmits until the rule is gone.
    sh(&format!(
        "ip netns exec {host} nft add table inet hsrtx && \
         ip netns exec {host} nft add chain inet hsrtx f '{{ type filter hook forward priority 0; }}' && \
         ip netns exec {host} nft add rule inet hsrtx f tcp dport 8009 tcp flags '&' psh == psh drop"
    ));
    let _listener = Listener(
        Command::new("ip")
            .args(["netns", "exec", &l.r1(), "ncat", "-l", "8009"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The command lifts the rule itself, 0.8 s after sending: however long
    // the tracer took to attach, the first transmissions meet it.
    let recs = trace_in(
        &l.c1(),
        &format!(
            "bash -c 'exec 3<>/dev/tcp/{}/8009; echo hello >&3; sleep 0.8; \
             ip netns exec {host} nft flush table inet hsrtx; sleep 1.7; exec 3>&-'",
            addr::R1_V4
        ),
    );
    let dropped: Vec<_> = of_type(&recs, "drop")
        .into_iter()
        .filter(|d| d["dport"] == 8009)
        .collect();
    assert!(!dropped.is_empty(), "{recs:#?}");
    assert!(dropped.iter().all(|d| d["reason"] == "NETFILTER_DROP"));
    let rtx = of_type(&recs, "tcp_retransmit");
    assert!(!rtx.is_empty(), "{recs:#?}");
    // Every retransmission is the connection's (the server may retransmit
    // too, e.g. its FIN while the client's data is still missing); the
    // client's, from c1 to port 8009, are among them.
    for r in &rtx {
        assert_eq!(r["flow"], dropped[0]["flow"], "the connection's flow: {r}");
    }
    assert!(
        rtx.iter()
            .any(|r| r["netns_name"] == l.c1().as_str() && r["dport"] == 8009),
        "retransmitted by the client: {rtx:#?}"
    );
}
