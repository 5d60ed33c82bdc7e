//! NAT on real namespaces through the real binary: a docker-style
//! published port (DNAT on the host, TCP and UDP) and container egress
//! through MASQUERADE. One connection is one flow with the right roles,
//! `trace -- CMD` shows the replies, and the hop after each rewrite says
//! what changed. Root only; never skipped. Traffic stays inside the test's
//! lab (198.18.0.0/15).

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

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

/// The lab, with the host publishing c2's port 80 (TCP) and 53 (UDP) on
/// its r1-side address as 8080 and 8053, and masquerading the bridge's
/// containers towards r1: what `docker run -p` sets up.
fn published(tag: &str) -> LabGuard {
    require_root();
    let g = LabGuard::up(&prefix(tag)).expect("building the lab");
    let host = g.lab.host();
    sh(&format!(
        "ip netns exec {host} nft -f - <<'EOF'
table ip hsdocker {{
  chain pre {{
    type nat hook prerouting priority -100;
    iifname \"vr1\" tcp dport 8080 dnat to {c2}:80
    iifname \"vr1\" udp dport 8053 dnat to {c2}:53
  }}
  chain post {{
    type nat hook postrouting priority 100;
    oifname \"vr1\" ip saddr 198.18.0.0/24 masquerade
  }}
}}
EOF",
        c2 = addr::C2_V4
    ));
    g
}

/// A server that echoes what it reads, killed on drop.
struct Server(Child);

impl Server {
    fn echo(netns: &str, args: &[&str]) -> Server {
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "ncat", "-k", "-l"])
            .args(args)
            .args(["-e", "/bin/cat"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ncat");
        std::thread::sleep(std::time::Duration::from_millis(300));
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hopscope trace --json [EXTRA] -- ip netns exec NETNS sh -c SCRIPT`:
/// the records (the trace and the command must succeed).
fn trace_cmd(netns: &str, script: &str) -> Vec<Value> {
    trace_cmd_with(&[], netns, script)
}

fn trace_cmd_with(extra: &[&str], netns: &str, script: &str) -> Vec<Value> {
    let mut args = vec!["trace", "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "ip", "netns", "exec", netns, "sh", "-c", script]);
    let out = hopscope(&args);
    assert!(
        out.status.success(),
        "hopscope or the command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = json_lines(&out.stdout);
    let s = summary(&recs);
    assert_eq!(s["lost"], 0, "no event may be lost: {s}");
    recs
}

/// One packet as the records tell it: flow, role, and per visit
/// (namespace name, device, the rewrite seen there).
#[derive(Debug, Default)]
struct Seen {
    flow: u64,
    role: String,
    proto: String,
    flags: String,
    visits: Vec<VisitSeen>,
    how: String,
}

/// Packets of `proto` in the lab's namespaces, by packet id.
fn seen(recs: &[Value], prefix: &str, proto: &str) -> BTreeMap<u64, Seen> {
    let mut map: BTreeMap<u64, Seen> = BTreeMap::new();
    for r in recs {
        let id = r["packet"].as_u64().unwrap_or(0);
        match r["type"].as_str() {
            Some("hop") => {
                let ns = r["netns_name"].as_str().unwrap_or("");
                if !ns.starts_with(prefix) || r["hook"] == "net_dev_xmit" {
                    continue;
                }
                if r["proto"] != proto && !map.contains_key(&id) {
                    continue;
                }
                let p = map.entry(id).or_default();
                p.flow = r["flow"].as_u64().unwrap_or(0);
                p.role = r["role"].as_str().unwrap_or("").to_owned();
                if p.proto.is_empty() {
                    p.proto = r["proto"].as_str().unwrap_or("").to_owned();
                    p.flags = r["tcp_flags"].as_str().unwrap_or("").to_owned();
                }
                let rw = match (&r["dnat"], &r["snat"]) {
                    (Value::Object(d), _) => format!("DNAT {} → {}", d["from"], d["to"]),
                    (_, Value::Object(s)) => format!("SNAT {} → {}", s["from"], s["to"]),
                    _ => String::new(),
                }
                .replace('"', "");
                let key = (ns.to_owned(), r["ifname"].as_str().unwrap_or("").to_owned());
                match p.visits.last_mut() {
                    Some(last) if (&last.0, &last.1) == (&key.0, &key.1) => {
                        if last.2.is_empty() {
                            last.2 = rw;
                        }
                    }
                    _ => p.visits.push((key.0, key.1, rw)),
                }
            }
            Some("end") => {
                if let Some(p) = map.get_mut(&id) {
                    p.how = r["how"].as_str().unwrap_or("").to_owned();
                }
            }
            _ => {}
        }
    }
    map.retain(|_, p| p.proto == proto);
    map
}

/// (namespace name, device, rewrite seen there).
type VisitSeen = (String, String, String);

fn v(ns: &str, dev: &str, rw: &str) -> VisitSeen {
    (ns.to_owned(), dev.to_owned(), rw.to_owned())
}

#[test]
fn a_published_tcp_port_is_one_flow_with_its_replies_and_the_dnat_shown() {
    let _s = serial();
    let g = published("nt");
    let l = &g.lab;
    let _server = Server::echo(&l.c2(), &["80"]);
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("nat.hsrec");
    let recs = trace_cmd_with(
        &["--record", rec.to_str().unwrap()],
        &l.r1(),
        &format!(
            "(echo hello; sleep 0.3) | ncat {} 8080 | grep -qx hello",
            addr::HOST_R1_V4
        ),
    );
    let pkts = seen(&recs, l.prefix(), "tcp");
    let flows: std::collections::BTreeSet<u64> = pkts.values().map(|p| p.flow).collect();
    assert_eq!(flows.len(), 1, "one connection, one flow: {pkts:#?}");
    // The explorer's flow list (its model, rebuilt from the recording): one
    // row for the connection, requests and replies counted on it.
    let (model, _) = hopscope::tui::load_recording(
        &rec,
        hopscope::model::ModelConfig::default(),
        hopscope::correlate::CorrelatorConfig::default(),
    )
    .unwrap();
    let rows: Vec<_> = model
        .flows()
        .filter(|f| f.key.proto == hopscope::correlate::FlowProto::Tcp)
        .collect();
    assert_eq!(rows.len(), 1, "one row in the flow list");
    let requests = pkts.values().filter(|p| p.role == "request").count() as u64;
    assert_eq!(
        (rows[0].requests, rows[0].replies),
        (requests, pkts.len() as u64 - requests)
    );
    let r1_addr: std::net::IpAddr = addr::R1_V4.parse().unwrap();
    assert_eq!(rows[0].initiator.0, Some(r1_addr), "the client initiated");
    let init_ns = rows[0].initiator_netns.expect("initiator's namespace");
    assert_eq!(model.netns_name(init_ns), Some(l.r1().as_str()));
    let resp_ns = rows[0].responder_netns.expect("responder's namespace");
    assert_eq!(model.netns_name(resp_ns), Some(l.c2().as_str()));
    let (host, r1, c2) = (l.host(), l.r1(), l.c2());
    let dnat = format!("DNAT {}:8080 → {}:80", addr::HOST_R1_V4, addr::C2_V4);
    let undo = format!("SNAT {}:80 → {}:8080", addr::C2_V4, addr::HOST_R1_V4);
    let request_path = vec![
        v(&r1, "eth0", ""),
        v(&host, "vr1", ""),
        v(&host, "br0", &dnat),
        v(&host, "vc2", ""),
        v(&c2, "eth0", ""),
    ];
    let reply_path = vec![
        v(&c2, "eth0", ""),
        v(&host, "vc2", ""),
        v(&host, "br0", ""),
        v(&host, "vr1", &undo),
        v(&r1, "eth0", ""),
    ];
    for p in pkts.values() {
        let (role, path) = if p.visits[0].0 == r1 {
            ("request", &request_path)
        } else {
            ("reply", &reply_path)
        };
        assert_eq!(p.role, role, "{p:#?}");
        assert_eq!(&p.visits, path, "{p:#?}");
    }
    let flags = |role: &str| -> Vec<&str> {
        pkts.values()
            .filter(|p| p.role == role)
            .map(|p| p.flags.as_str())
            .collect()
    };
    // The whole connection, replies included: handshake, data both ways, close.
    assert_eq!(flags("request").first(), Some(&"S"));
    assert_eq!(flags("reply").first(), Some(&"S."));
    assert!(
        flags("reply").contains(&"P."),
        "the echo came back: {pkts:#?}"
    );
    assert!(flags("request").contains(&"P."));
    assert!(flags("request").contains(&"F.") && flags("reply").contains(&"F."));
    // The data each side read was delivered to ncat.
    for role in ["request", "reply"] {
        assert!(
            pkts.values()
                .any(|p| p.role == role && p.flags == "P." && p.how == "delivered"),
            "{role} data delivered: {pkts:#?}"
        );
    }
}

#[test]
fn a_published_udp_port_answers_in_the_same_flow() {
    let _s = serial();
    let g = published("nu");
    let l = &g.lab;
    let _server = Server::echo(&l.c2(), &["-u", "53"]);
    let recs = trace_cmd(
        &l.r1(),
        &format!(
            "(echo hi; sleep 0.3) | ncat -u {} 8053 | grep -qx hi",
            addr::HOST_R1_V4
        ),
    );
    let pkts = seen(&recs, l.prefix(), "udp");
    let (host, r1, c2) = (l.host(), l.r1(), l.c2());
    let got: Vec<(String, Vec<VisitSeen>)> = pkts
        .values()
        .map(|p| (p.role.clone(), p.visits.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "request".to_owned(),
                vec![
                    v(&r1, "eth0", ""),
                    v(&host, "vr1", ""),
                    v(
                        &host,
                        "br0",
                        &format!("DNAT {}:8053 → {}:53", addr::HOST_R1_V4, addr::C2_V4)
                    ),
                    v(&host, "vc2", ""),
                    v(&c2, "eth0", ""),
                ]
            ),
            (
                "reply".to_owned(),
                vec![
                    v(&c2, "eth0", ""),
                    v(&host, "vc2", ""),
                    v(&host, "br0", ""),
                    v(
                        &host,
                        "vr1",
                        &format!("SNAT {}:53 → {}:8053", addr::C2_V4, addr::HOST_R1_V4)
                    ),
                    v(&r1, "eth0", ""),
                ]
            ),
        ]
    );
    let flows: Vec<u64> = pkts.values().map(|p| p.flow).collect();
    assert_eq!(flows[0], flows[1], "the answer is in the request's flow");
}

#[test]
fn container_egress_through_masquerade_is_one_flow() {
    let _s = serial();
    let g = published("nm");
    let l = &g.lab;
    let _server = Server::echo(&l.r1(), &["9000"]);
    let recs = trace_cmd(
        &l.c1(),
        &format!(
            "ping -c 2 -i 0.2 -W 1 {r1} >/dev/null && (echo x; sleep 0.3) | ncat {r1} 9000 | grep -qx x",
            r1 = addr::R1_V4
        ),
    );
    let (host, c1, r1) = (l.host(), l.c1(), l.r1());
    for proto in ["icmp", "tcp"] {
        let pkts = seen(&recs, l.prefix(), proto);
        let flows: std::collections::BTreeSet<u64> = pkts.values().map(|p| p.flow).collect();
        assert_eq!(flows.len(), 1, "{proto}: one flow: {pkts:#?}");
        assert!(pkts.values().any(|p| p.role == "reply"), "{proto}: replies");
        for p in pkts.values() {
            let snat_to = |what: &str| format!("SNAT {what}");
            if p.role == "request" {
                assert_eq!(p.visits.first(), Some(&v(&c1, "eth0", "")), "{p:#?}");
                let last = p.visits.last().unwrap();
                assert_eq!((&last.0, last.1.as_str()), (&r1, "eth0"), "{p:#?}");
                let vr1 = p.visits.iter().find(|x| x.1 == "vr1").unwrap();
                assert!(vr1.2.starts_with(&snat_to(addr::C1_V4)), "{p:#?}");
                assert!(vr1.2.contains(addr::HOST_R1_V4), "{p:#?}");
            } else {
                assert_eq!(p.visits.first(), Some(&v(&r1, "eth0", "")), "{p:#?}");
                let last = p.visits.last().unwrap();
                assert_eq!((&last.0, last.1.as_str()), (&c1, "eth0"), "{p:#?}");
                let br0 = p.visits.iter().find(|x| x.1 == "br0").unwrap();
                assert!(br0.2.starts_with("DNAT 198.18.1.1"), "{p:#?}");
                assert_eq!(&p.visits[1], &v(&host, "vr1", ""), "{p:#?}");
            }
        }
    }
}

#[test]
fn text_mode_shows_the_replies_and_where_nat_rewrote_them() {
    let _s = serial();
    let g = published("nx");
    let l = &g.lab;
    let _server = Server::echo(&l.c2(), &["80"]);
    let out = hopscope(&[
        "trace",
        "--",
        "ip",
        "netns",
        "exec",
        &l.r1(),
        "sh",
        "-c",
        &format!(
            "(echo hello; sleep 0.3) | ncat {} 8080 >/dev/null",
            addr::HOST_R1_V4
        ),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let dnat = format!("(DNAT {}:8080 → {}:80)", addr::HOST_R1_V4, addr::C2_V4);
    let undo = format!("(SNAT {}:80 → {}:8080)", addr::C2_V4, addr::HOST_R1_V4);
    let lines = |needle: &str| text.lines().filter(|x| x.contains(needle)).count();
    assert!(
        lines(&dnat) >= 4,
        "every request shows the DNAT once:\n{text}"
    );
    assert!(
        lines(&undo) >= 3,
        "every reply shows its rewrite once:\n{text}"
    );
    for line in text.lines().filter(|x| x.contains(&dnat)) {
        assert!(line.contains(" br0 request tcp "), "{line}");
    }
    for line in text.lines().filter(|x| x.contains(&undo)) {
        assert!(line.contains(" vr1 reply   tcp "), "{line}");
    }
}
