//! NAT on real namespaces through the real binary: a docker-style
//! published port (DNAT on the host, TCP and UDP) and container egress
//! through MASQUERADE (tests/common/field.rs builds them). One connection
//! is one flow with the right roles, `trace -- CMD` shows the replies, the
//! hop after each rewrite says what changed, and `--filter` follows a NAT'd
//! connection from its packets' first hops. Root only; never skipped.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::field::{published as pp, run_argv, PublishedPort};
use common::*;

fn published(tag: &str) -> PublishedPort {
    require_root();
    PublishedPort::build(&common::field::field_prefix(tag))
}

/// The namespace prefix of a field topology (its namespaces' common start).
fn prefix_of(p: &PublishedPort) -> String {
    p.host.trim_end_matches("-host").to_owned()
}

#[test]
fn a_published_tcp_port_is_one_flow_with_its_replies_and_the_dnat_shown() {
    let _s = serial();
    let p = published("nt");
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("nat.hsrec");
    let recs = trace_argv(
        &["--record", rec.to_str().unwrap()],
        &p.client_argv("hello", false),
    );
    let pkts = seen_packets(&recs, &prefix_of(&p));
    let tcp: Vec<&SeenPacket> = pkts.values().filter(|s| s.proto == "tcp").collect();
    let flows: BTreeSet<u64> = tcp.iter().map(|s| s.flow).collect();
    assert_eq!(flows.len(), 1, "one connection, one flow: {tcp:#?}");
    let (host, cli, ctr) = (&p.host, &p.client, &p.container);
    let dnat = format!(
        "DNAT {}:{} → {}:{}",
        pp::PUBLISHED,
        pp::PORT,
        pp::CONTAINER,
        pp::CONTAINER_PORT
    );
    let undo = format!(
        "SNAT {}:{} → {}:{}",
        pp::CONTAINER,
        pp::CONTAINER_PORT,
        pp::PUBLISHED,
        pp::PORT
    );
    let request_path = vec![
        at(cli, "eth0", ""),
        at(host, "eth0", ""),
        at(host, "br0", &dnat),
        at(host, "vethc", ""),
        at(ctr, "eth0", ""),
    ];
    let reply_path = vec![
        at(ctr, "eth0", ""),
        at(host, "vethc", ""),
        at(host, "br0", ""),
        at(host, "eth0", &undo),
        at(cli, "eth0", ""),
    ];
    for s in &tcp {
        let (role, path) = if s.visits[0].0 == *cli {
            ("request", &request_path)
        } else {
            ("reply", &reply_path)
        };
        assert_eq!(s.role, role, "{s:#?}");
        assert_eq!(&s.visits, path, "{s:#?}");
    }
    let flags = |role: &str| -> Vec<&str> {
        tcp.iter()
            .filter(|s| s.role == role)
            .map(|s| s.tcp_flags.as_str())
            .collect()
    };
    // The whole connection, replies included: handshake, data both ways, close.
    assert_eq!(flags("request").first(), Some(&"S"));
    assert_eq!(flags("reply").first(), Some(&"S."));
    for role in ["request", "reply"] {
        assert!(flags(role).contains(&"P."), "{role} data: {tcp:#?}");
        assert!(flags(role).contains(&"F."), "{role} close: {tcp:#?}");
        // The data each side read was delivered to its program.
        assert!(
            tcp.iter()
                .any(|s| s.role == role && s.tcp_flags == "P." && s.how == "delivered"),
            "{role} data delivered: {tcp:#?}"
        );
    }
    // The explorer's flow list (its model, rebuilt from the recording): one
    // row for the connection, requests and replies counted on it, each side
    // in its namespace.
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
    let requests = tcp.iter().filter(|s| s.role == "request").count() as u64;
    assert_eq!(
        (rows[0].requests, rows[0].replies),
        (requests, tcp.len() as u64 - requests)
    );
    let client: std::net::IpAddr = pp::CLIENT.parse().unwrap();
    assert_eq!(rows[0].initiator.0, Some(client), "the client initiated");
    let netns =
        |n: Option<hopscope::event::NetnsId>| model.netns_name(n.unwrap()).map(str::to_owned);
    assert_eq!(netns(rows[0].initiator_netns), Some(cli.clone()));
    assert_eq!(netns(rows[0].responder_netns), Some(ctr.clone()));
}

#[test]
fn a_published_udp_port_answers_in_the_same_flow() {
    let _s = serial();
    let p = published("nu");
    let recs = trace_argv(&[], &p.client_argv("hi", true));
    let pkts = seen_packets(&recs, &prefix_of(&p));
    let udp: Vec<&SeenPacket> = pkts.values().filter(|s| s.proto == "udp").collect();
    let (host, cli, ctr) = (&p.host, &p.client, &p.container);
    let got: Vec<(&str, &Vec<SeenVisit>, &str)> = udp
        .iter()
        .map(|s| (s.role.as_str(), &s.visits, s.how.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "request",
                &vec![
                    at(cli, "eth0", ""),
                    at(host, "eth0", ""),
                    at(
                        host,
                        "br0",
                        &format!(
                            "DNAT {}:{} → {}:{}",
                            pp::PUBLISHED,
                            pp::PORT,
                            pp::CONTAINER,
                            pp::CONTAINER_PORT
                        )
                    ),
                    at(host, "vethc", ""),
                    at(ctr, "eth0", ""),
                ],
                "delivered"
            ),
            (
                "reply",
                &vec![
                    at(ctr, "eth0", ""),
                    at(host, "vethc", ""),
                    at(host, "br0", ""),
                    at(
                        host,
                        "eth0",
                        &format!(
                            "SNAT {}:{} → {}:{}",
                            pp::CONTAINER,
                            pp::CONTAINER_PORT,
                            pp::PUBLISHED,
                            pp::PORT
                        )
                    ),
                    at(cli, "eth0", ""),
                ],
                "delivered"
            ),
        ]
    );
    assert_eq!(
        udp[0].flow, udp[1].flow,
        "the answer is in the request's flow"
    );
}

#[test]
fn container_egress_through_masquerade_is_one_flow() {
    let _s = serial();
    let p = published("mq");
    for udp in [false, true] {
        let recs = trace_argv(&[], &p.egress_argv("x", udp));
        let proto = if udp { "udp" } else { "tcp" };
        let pkts = seen_packets(&recs, &prefix_of(&p));
        let ours: Vec<&SeenPacket> = pkts.values().filter(|s| s.proto == proto).collect();
        let flows: BTreeSet<u64> = ours.iter().map(|s| s.flow).collect();
        assert_eq!(flows.len(), 1, "{proto}: one flow: {ours:#?}");
        assert!(ours.iter().any(|s| s.role == "reply"), "{proto}: replies");
        let (host, ctr, out) = (&p.host, &p.container, &p.outside);
        for s in &ours {
            let names: Vec<(&str, &str)> = s
                .visits
                .iter()
                .map(|v| (v.0.as_str(), v.1.as_str()))
                .collect();
            let what = |dev: &str| {
                s.visits
                    .iter()
                    .find(|v| v.0 == *host && v.1 == dev)
                    .map(|v| v.2.clone())
                    .unwrap_or_default()
            };
            if s.role == "request" {
                assert_eq!(
                    names,
                    vec![
                        (ctr.as_str(), "eth0"),
                        (host.as_str(), "vethc"),
                        (host.as_str(), "br0"),
                        (host.as_str(), "eth1"),
                        (out.as_str(), "eth0")
                    ],
                    "{s:#?}"
                );
                let rw = what("eth1");
                assert!(
                    rw.starts_with(&format!("SNAT {}:", pp::CONTAINER))
                        && rw.contains(&format!("→ {}:", pp::HOST_OUT)),
                    "{s:#?}"
                );
            } else {
                assert_eq!(
                    names,
                    vec![
                        (out.as_str(), "eth0"),
                        (host.as_str(), "eth1"),
                        (host.as_str(), "br0"),
                        (host.as_str(), "vethc"),
                        (ctr.as_str(), "eth0")
                    ],
                    "{s:#?}"
                );
                let rw = what("br0");
                assert!(
                    rw.starts_with(&format!("DNAT {}:", pp::HOST_OUT))
                        && rw.contains(&format!("→ {}:", pp::CONTAINER)),
                    "{s:#?}"
                );
            }
        }
    }
}

#[test]
fn text_mode_shows_the_replies_and_where_nat_rewrote_them() {
    let _s = serial();
    let p = published("nx");
    let mut args = vec!["trace".to_owned(), "--".to_owned()];
    args.extend(p.client_argv("hello", false));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = hopscope(&args);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let dnat = format!(
        "(DNAT {}:{} → {}:{})",
        pp::PUBLISHED,
        pp::PORT,
        pp::CONTAINER,
        pp::CONTAINER_PORT
    );
    let undo = format!(
        "(SNAT {}:{} → {}:{})",
        pp::CONTAINER,
        pp::CONTAINER_PORT,
        pp::PUBLISHED,
        pp::PORT
    );
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
        assert!(line.contains(" eth0 reply   tcp "), "{line}");
    }
}

#[test]
fn a_filter_follows_a_natd_connection_from_its_first_hop() {
    let _s = serial();
    let p = published("nf");
    // `tcp port 80` matches the container's side only: the client's packets
    // match once DNAT rewrote them. The first (the SYN) is followed from
    // there; conntrack then names the connection before the rewrite too, so
    // every later packet is followed from the client's eth0.
    let t = Trace::start(&["--filter", "tcp port 80"]);
    let done = run_argv(&p.client_argv("hello", false), Duration::from_secs(10));
    assert!(done.success(), "{done}");
    std::thread::sleep(Duration::from_millis(400));
    let recs = t.stop();
    let pkts = seen_packets(&recs, &prefix_of(&p));
    let tcp: Vec<&SeenPacket> = pkts.values().filter(|s| s.proto == "tcp").collect();
    assert!(tcp.len() >= 8, "the whole connection: {tcp:#?}");
    let (host, cli) = (&p.host, &p.client);
    let syn = tcp.iter().find(|s| s.tcp_flags == "S").expect("the SYN");
    assert_eq!(
        syn.visits[0],
        at(host, "br0", ""),
        "matched after DNAT: {syn:#?}"
    );
    for s in tcp.iter().filter(|s| s.tcp_flags != "S") {
        let first = &s.visits[0];
        if s.role == "request" {
            assert_eq!((&first.0, first.1.as_str()), (cli, "eth0"), "{s:#?}");
        } else {
            assert_eq!(
                (&first.0, first.1.as_str()),
                (&p.container, "eth0"),
                "{s:#?}"
            );
        }
    }
    let flows: BTreeSet<u64> = tcp.iter().map(|s| s.flow).collect();
    assert_eq!(flows.len(), 1);
}
