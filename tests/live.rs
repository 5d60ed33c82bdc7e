//! The real thing: the real binary, real BPF on the running kernel, real
//! namespaces built per test (removed on drop, even on failure), traffic
//! only inside them, and exact assertions on the visit sequences, roles and
//! netns inodes of the test's own namespaces. Root only; never skipped.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hopscope::lab::{addr, in_netns, LabGuard, TrafficOpts};

struct Ns {
    host: u64,
    c1: u64,
    c2: u64,
    r1: u64,
}

fn lab(tag: &str) -> (LabGuard, Ns) {
    require_root();
    let g = LabGuard::up(&prefix(tag)).expect("building the lab");
    let l = &g.lab;
    let ns = Ns {
        host: l.netns_inode(&l.host()).unwrap(),
        c1: l.netns_inode(&l.c1()).unwrap(),
        c2: l.netns_inode(&l.c2()).unwrap(),
        r1: l.netns_inode(&l.r1()).unwrap(),
    };
    (g, ns)
}

fn v(ns: u64, ifname: &str) -> (u64, String) {
    (ns, ifname.to_owned())
}

fn trace_json(extra: &[&str], cmd: &[&str]) -> (std::process::Output, Vec<serde_json::Value>) {
    let mut args = vec!["trace", "--json"];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    let out = hopscope(&args);
    let lines = json_lines(&out.stdout);
    (out, lines)
}

fn assert_accounting(lines: &[serde_json::Value]) {
    let s = summary(lines);
    let (e, r, l) = (
        s["emitted"].as_u64().unwrap(),
        s["received"].as_u64().unwrap(),
        s["lost"].as_u64().unwrap(),
    );
    assert_eq!(e, r + l, "emitted = received + lost: {s}");
}

#[test]
fn ping_across_the_bridge_exact_visits_and_roles() {
    let _s = serial();
    let (g, ns) = lab("br");
    let c1 = g.lab.c1();
    let (out, lines) = trace_json(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            addr::C2_V4,
        ],
    );
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    let echo: Vec<&Pkt> = pkts
        .values()
        .filter(|p| p.proto.as_deref() == Some("icmp"))
        .collect();
    let req = vec![
        v(ns.c1, "eth0"),
        v(ns.host, "vc1"),
        v(ns.host, "vc2"),
        v(ns.c2, "eth0"),
    ];
    let rep: Vec<_> = req.iter().rev().cloned().collect();
    for seq in 1..=3u64 {
        let rq: Vec<_> = echo
            .iter()
            .filter(|p| p.icmp_seq == Some(seq) && p.icmp_type == Some(8))
            .collect();
        let rp: Vec<_> = echo
            .iter()
            .filter(|p| p.icmp_seq == Some(seq) && p.icmp_type == Some(0))
            .collect();
        assert_eq!(rq.len(), 1, "one request skb for seq {seq}: {rq:?}");
        assert_eq!(rp.len(), 1, "one reply skb for seq {seq}: {rp:?}");
        assert_eq!(rq[0].visits, req, "request path, seq {seq}");
        assert_eq!(rp[0].visits, rep, "reply path, seq {seq}");
        assert_eq!(rq[0].role.as_deref(), Some("request"));
        assert_eq!(rp[0].role.as_deref(), Some("reply"));
        assert_eq!(rq[0].flow, rp[0].flow, "request and reply share a flow");
        assert_eq!(
            rq[0].end.as_deref(),
            Some("consumed"),
            "the echo request ends consumed in c2"
        );
        assert_eq!(
            rq[0].hooks,
            [
                "net_dev_queue",
                "netif_rx",
                "net_dev_xmit",
                "netif_receive_skb",
                "net_dev_queue",
                "netif_rx",
                "net_dev_xmit",
                "netif_receive_skb"
            ],
            "hook order: veth delivers to the peer before net_dev_xmit returns"
        );
    }
    // Only the command's flow is shown.
    assert!(echo.iter().all(|p| p.icmp_id == echo[0].icmp_id));
    assert_eq!(
        echo.len(),
        6,
        "3 requests + 3 replies, nothing merged or split"
    );
    assert_accounting(&lines);
}

#[test]
fn routed_ping_through_the_host() {
    let _s = serial();
    let (g, ns) = lab("rt");
    let c1 = g.lab.c1();
    let (out, lines) = trace_json(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            addr::R1_V4,
        ],
    );
    assert!(out.status.success());
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    let req = vec![
        v(ns.c1, "eth0"),
        v(ns.host, "vc1"),
        v(ns.host, "br0"),
        v(ns.host, "vr1"),
        v(ns.r1, "eth0"),
    ];
    let rep: Vec<_> = req.iter().rev().cloned().collect();
    let reqs: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(8)).collect();
    let reps: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(0)).collect();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reps.len(), 2);
    for p in reqs {
        assert_eq!(p.visits, req);
        assert_eq!(p.role.as_deref(), Some("request"));
    }
    for p in reps {
        assert_eq!(p.visits, rep);
        assert_eq!(p.role.as_deref(), Some("reply"));
    }
}

#[test]
fn tcp_connect_and_data_roles_from_the_syn() {
    let _s = serial();
    let (g, ns) = lab("tc");
    let listener = in_netns(&g.lab.r1(), || TcpListener::bind((addr::R1_V4, 9009)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = accept_within(&listener, Duration::from_secs(30))?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf)?;
        s.write_all(b"world")
    });
    let c1 = g.lab.c1();
    // The answer goes out in one write: the command shares hopscope's
    // stdout, and a JSON line could land between "world" and its newline.
    let script = format!(
        "exec 3<>/dev/tcp/{}/9009; printf hello >&3; answer=$(head -c 5 <&3); echo \"$answer\"",
        addr::R1_V4
    );
    let (out, lines) = trace_json(&[], &["ip", "netns", "exec", &c1, "bash", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap().expect("the server's one exchange");
    // The command's output goes to stderr; stdout is the trace alone.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| !l.starts_with('{')),
        None
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .any(|l| l == "world"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    let tcp: Vec<_> = pkts
        .values()
        .filter(|p| p.proto.as_deref() == Some("tcp"))
        .collect();
    let fwd = vec![
        v(ns.c1, "eth0"),
        v(ns.host, "vc1"),
        v(ns.host, "br0"),
        v(ns.host, "vr1"),
        v(ns.r1, "eth0"),
    ];
    let back: Vec<_> = fwd.iter().rev().cloned().collect();
    let syn = tcp
        .iter()
        .find(|p| p.tcp_flags.as_deref() == Some("S"))
        .expect("the SYN");
    assert_eq!(syn.role.as_deref(), Some("request"));
    assert_eq!(syn.visits, fwd);
    let synack = tcp
        .iter()
        .find(|p| p.tcp_flags.as_deref() == Some("S."))
        .expect("the SYN-ACK");
    assert_eq!(synack.role.as_deref(), Some("reply"));
    assert_eq!(synack.visits, back);
    let data = tcp
        .iter()
        .find(|p| p.tcp_flags.as_deref() == Some("P.") && p.role.as_deref() == Some("request"))
        .expect("the request's data segment");
    assert_eq!(data.visits, fwd);
    assert_eq!(
        data.hooks.last().map(String::as_str),
        Some("skb_copy_datagram_iovec"),
        "read by the server: the last hop is into its socket"
    );
    assert!(tcp
        .iter()
        .any(|p| p.tcp_flags.as_deref() == Some("P.") && p.role.as_deref() == Some("reply")));
    for p in &tcp {
        let expect = if p.src.as_deref() == Some(addr::C1_V4) {
            "request"
        } else {
            "reply"
        };
        assert_eq!(p.role.as_deref(), Some(expect), "{p:?}");
        assert_eq!(p.flow, syn.flow, "one flow for the connection");
    }
}

#[test]
fn udp_first_sender_is_the_initiator() {
    let _s = serial();
    let (g, ns) = lab("ud");
    let sock = in_netns(&g.lab.c2(), || UdpSocket::bind((addr::C2_V4, 9010)))
        .unwrap()
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        sock.send_to(&buf[..n], from).unwrap();
    });
    let c1 = g.lab.c1();
    let cmd = format!(
        "exec 3<>/dev/udp/{}/9010; printf ping >&3; head -c 4 <&3; echo",
        addr::C2_V4
    );
    let (out, lines) = trace_json(&[], &["ip", "netns", "exec", &c1, "bash", "-c", &cmd]);
    server.join().unwrap();
    assert!(out.status.success());
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    let udp: Vec<_> = pkts
        .values()
        .filter(|p| p.proto.as_deref() == Some("udp"))
        .collect();
    assert_eq!(udp.len(), 2, "datagram and its echo: {udp:?}");
    let (d, e) = (udp[0], udp[1]);
    assert_eq!(d.role.as_deref(), Some("request"));
    assert_eq!(
        d.visits,
        vec![
            v(ns.c1, "eth0"),
            v(ns.host, "vc1"),
            v(ns.host, "vc2"),
            v(ns.c2, "eth0")
        ]
    );
    assert_eq!(e.role.as_deref(), Some("reply"));
    assert_eq!(
        e.visits,
        vec![
            v(ns.c2, "eth0"),
            v(ns.host, "vc2"),
            v(ns.host, "vc1"),
            v(ns.c1, "eth0")
        ]
    );
}

#[test]
fn ipv6_ping_across_the_bridge() {
    let _s = serial();
    let (g, ns) = lab("v6");
    let c1 = g.lab.c1();
    let (out, lines) = trace_json(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-6",
            "-c",
            "2",
            "-i",
            "0.2",
            addr::C2_V6,
        ],
    );
    assert!(out.status.success());
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    let req = vec![
        v(ns.c1, "eth0"),
        v(ns.host, "vc1"),
        v(ns.host, "vc2"),
        v(ns.c2, "eth0"),
    ];
    let rep: Vec<_> = req.iter().rev().cloned().collect();
    let reqs: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(128)).collect();
    let reps: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(129)).collect();
    assert_eq!((reqs.len(), reps.len()), (2, 2));
    assert!(reqs
        .iter()
        .all(|p| p.visits == req && p.role.as_deref() == Some("request")));
    assert!(reps
        .iter()
        .all(|p| p.visits == rep && p.role.as_deref() == Some("reply")));
    assert!(reqs
        .iter()
        .all(|p| p.proto.as_deref() == Some("icmp6") && p.src.as_deref() == Some(addr::C1_V6)));
}

#[test]
fn loopback_inside_one_namespace() {
    let _s = serial();
    let (g, ns) = lab("lo");
    let c1 = g.lab.c1();
    let (out, lines) = trace_json(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "127.0.0.1",
        ],
    );
    assert!(out.status.success());
    let pkts = packets(&lines, &[ns.c1]);
    let reqs: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(8)).collect();
    let reps: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(0)).collect();
    assert_eq!((reqs.len(), reps.len()), (2, 2));
    for p in reqs.iter().chain(&reps) {
        assert_eq!(p.visits, vec![v(ns.c1, "lo")]);
        assert_eq!(&p.hooks[..3], ["net_dev_queue", "netif_rx", "net_dev_xmit"]);
    }
    assert!(reqs.iter().all(|p| p.role.as_deref() == Some("request")));
    assert!(reps.iter().all(|p| p.role.as_deref() == Some("reply")));
}

#[test]
fn command_exit_status_and_only_its_flows_while_lab_traffic_runs() {
    let _s = serial();
    let (g, ns) = lab("cm");
    // Background lab traffic of every kind, in the same namespaces.
    let stop = Arc::new(AtomicBool::new(false));
    let (tl, ts) = (g.lab.clone(), stop.clone());
    let bg = std::thread::spawn(move || {
        tl.traffic(
            &TrafficOpts {
                interval: Duration::from_millis(50),
                ..TrafficOpts::default()
            },
            &ts,
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let c1 = g.lab.c1();
    let (out, lines) = trace_json(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-c",
            "3",
            "-i",
            "0.3",
            addr::C2_V4,
        ],
    );
    // A failing command: its status comes back.
    let (fail, _) = trace_json(&[], &["ip", "netns", "exec", &c1, "sh", "-c", "exit 7"]);
    stop.store(true, Ordering::SeqCst);
    let report = bg.join().unwrap().unwrap();
    assert!(report.successes() > 0, "background traffic ran: {report}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fail.status.code(), Some(7));
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    assert!(!pkts.is_empty());
    let ids: std::collections::BTreeSet<_> = pkts
        .values()
        .map(|p| (p.proto.clone(), p.icmp_id))
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "only the command's own echo flow, not the lab's: {ids:?}"
    );
    assert_eq!(pkts.values().filter(|p| p.icmp_type == Some(8)).count(), 3);
    assert_eq!(pkts.values().filter(|p| p.icmp_type == Some(0)).count(), 3);
    let s = summary(&lines);
    assert_eq!(s["command_exit"], 0);
}

#[test]
fn many_pings_never_merge_reused_skb_addresses() {
    let _s = serial();
    let (g, ns) = lab("ru");
    let c1 = g.lab.c1();
    let (out, lines) = trace_json(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-q",
            "-c",
            "300",
            "-i",
            "0.002",
            addr::C2_V4,
        ],
    );
    assert!(out.status.success());
    let pkts = packets(&lines, &[ns.host, ns.c1, ns.c2, ns.r1]);
    let req = vec![
        v(ns.c1, "eth0"),
        v(ns.host, "vc1"),
        v(ns.host, "vc2"),
        v(ns.c2, "eth0"),
    ];
    let reqs: Vec<_> = pkts.values().filter(|p| p.icmp_type == Some(8)).collect();
    assert_eq!(reqs.len(), 300, "one packet per echo request");
    for p in &reqs {
        assert_eq!(p.visits, req, "packet {} merged or split: {:?}", p.id, p);
        assert_eq!(
            p.hooks.len(),
            8,
            "exactly the 8 hook events of one crossing: {p:?}"
        );
    }
    let seqs: std::collections::BTreeSet<_> = reqs.iter().map(|p| p.icmp_seq).collect();
    assert_eq!(seqs.len(), 300);
    assert_accounting(&lines);
}

#[test]
fn overload_is_counted_exactly() {
    let _s = serial();
    let (g, _ns) = lab("ov");
    let c1 = g.lab.c1();
    // A 4 KiB ring holds about 20 events: a ping flood overflows it. The
    // command shares hopscope's stdout: ping's summary must not land in the
    // middle of a JSON line.
    let flood = format!("exec ping -q -f -c 3000 {} >/dev/null", addr::C2_V4);
    let (_out, lines) = trace_json(
        &["--ring-size", "4096"],
        &["ip", "netns", "exec", &c1, "sh", "-c", &flood],
    );
    let s = summary(&lines);
    let (e, r, l) = (
        s["emitted"].as_u64().unwrap(),
        s["received"].as_u64().unwrap(),
        s["lost"].as_u64().unwrap(),
    );
    assert!(l > 0, "the tiny ring must overflow: {s}");
    assert_eq!(e, r + l, "emitted = received + lost, exactly: {s}");
}

#[test]
fn text_mode_prints_one_line_per_visit() {
    let _s = serial();
    let (g, ns) = lab("tx");
    let c1 = g.lab.c1();
    let ping = |extra: &[&str]| {
        let mut args = vec!["trace"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "--",
            "ip",
            "netns",
            "exec",
            &c1,
            "ping",
            "-c",
            "1",
            addr::C2_V4,
        ]);
        let out = hopscope(&args);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("0 lost"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with('['))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines.len(),
            8,
            "4 visits of the request, 4 of the reply:\n{text}"
        );
        lines
    };

    // Namespace names, and the bridge ports' master.
    let lines = ping(&[]);
    let first = format!("[{:>12}] {:>16} request #", c1, "eth0");
    assert!(lines[0].starts_with(&first), "{}", lines[0]);
    assert!(
        lines[0].contains(&format!(
            ".001 {} -> {} · packet ",
            addr::C1_V4,
            addr::C2_V4
        )),
        "{}",
        lines[0]
    );
    assert!(lines[7].contains("→ delivered to ping["), "{}", lines[7]);
    let host = g.lab.host();
    assert!(
        lines[1].starts_with(&format!("[{:>12}] {:>16} request", host, "vc1 (br br0)")),
        "{}",
        lines[1]
    );
    assert!(lines[3].contains("→ consumed"), "{}", lines[3]);
    assert!(
        lines[4].starts_with(&format!("[{:>12}] {:>16} reply   #", g.lab.c2(), "eth0")),
        "{}",
        lines[4]
    );

    // --inodes: inodes, no lookups.
    let lines = ping(&["--inodes"]);
    let first = format!("[{:>12}] {:>16} request #", ns.c1, "eth0");
    assert!(lines[0].starts_with(&first), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("[{:>12}] {:>16} request", ns.host, "vc1")));
    assert!(lines[4].starts_with(&format!("[{:>12}] {:>16} reply   #", ns.c2, "eth0")));
}

#[test]
fn sigterm_detaches_everything_and_prints_the_summary() {
    let _s = serial();
    require_root();
    let child = Command::new(bin())
        .args(["trace", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until attached: the programs show up in bpftool.
    if !wait_attached(child.id(), Duration::from_secs(20)) {
        let mut child = child;
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "programs were not loaded within 20 s; exit {:?}, stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out.stdout);
    assert_accounting(&lines);
    assert_no_programs_left();
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for args in [
        &["trace", "--bogus"][..],
        &["trace", "--ring-size", "3000"],
        &["trace", "--duration", "soon"],
        &["lab", "up", "--prefix", "Bad_Prefix!"],
    ] {
        let out = hopscope(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}

#[test]
fn unprivileged_run_names_the_missing_capabilities() {
    let _s = serial();
    require_root();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(bin())
        .args(["trace", "--duration", "1"])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON") && err.contains("root"),
        "{err}"
    );
    assert_no_programs_left();
}
