//! The JSON-lines schema documented in README: every record parses, has its
//! `type`, and carries the documented fields with the documented types.

use std::net::Ipv4Addr;

use hopscope::correlate::{Correlator, CorrelatorConfig};
use hopscope::event::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, NetnsId, PacketId, ShortName, TcpFlags, L3,
    L4,
};
use hopscope::output::json::JsonSink;
use hopscope::output::Filter;
use serde_json::Value;

fn ev(ts: u64, pkt: u64, hook: Hook, ns: u32, name: &str, h: Option<Headers>) -> HopEvent {
    HopEvent {
        ts_ns: ts,
        cpu: 1,
        hook,
        packet: PacketId(pkt),
        skb: 1,
        device: (!hook.is_end()).then(|| Device {
            netns: NetnsId(ns),
            netns_cookie: 5,
            ifindex: IfIndex(2),
            ifname: ShortName::from_bytes(name.as_bytes()),
        }),
        len: 60,
        headers: h,
        new_packet: false,
        task: None,
        sk_cgroup: 0,
        data: match hook {
            Hook::KfreeSkb => HookData::Freed {
                reason: 3,
                location: 0xffffffff81000000,
                stack: 0,
            },
            Hook::NetDevXmit => HookData::Xmit { rc: 0 },
            _ => HookData::None,
        },
        outer: None,
        link: None,
        shared: false,
    }
}

fn records() -> Vec<Value> {
    let tcp = Headers {
        l3: L3::Ipv4 {
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 1, 2),
        },
        l4: L4::Tcp {
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 0,
            flags: TcpFlags(0x02),
        },
        vlan: None,
        ttl: 64,
        ip_id: 9,
        flow_label: 0,
        from_l2: true,
    };
    let icmp = Headers {
        l4: L4::Icmp {
            v6: false,
            kind: 8,
            code: 0,
            id: 7,
            seq: 1,
        },
        ..tcp
    };
    let mut sink = JsonSink::new(Vec::new(), Filter::default());
    let mut c = Correlator::new(CorrelatorConfig::default());
    for e in [
        ev(1, 1, Hook::NetDevQueue, 10, "eth0", Some(tcp)),
        ev(2, 1, Hook::NetDevXmit, 10, "eth0", None),
        ev(3, 1, Hook::ConsumeSkb, 0, "", None),
        ev(4, 2, Hook::NetDevQueue, 10, "eth0", Some(icmp)),
        ev(5, 2, Hook::KfreeSkb, 0, "", None),
    ] {
        c.on_event(&e, &mut sink);
    }
    let out = String::from_utf8(sink.into_inner()).unwrap();
    out.lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn hop_records_have_the_documented_fields() {
    let recs = records();
    let hops: Vec<&Value> = recs.iter().filter(|r| r["type"] == "hop").collect();
    assert_eq!(hops.len(), 3);
    for h in &hops {
        for k in ["ts_ns", "packet", "visit", "len", "netns", "ifindex"] {
            assert!(h[k].is_u64(), "{k} is a number in {h}");
        }
        for k in ["hook", "ifname"] {
            assert!(h[k].is_string(), "{k} is a string in {h}");
        }
    }
    let syn = hops[0];
    assert_eq!(syn["proto"], "tcp");
    assert_eq!(syn["src"], "198.18.0.2");
    assert_eq!(syn["dst"], "198.18.1.2");
    assert_eq!(
        (syn["sport"].as_u64(), syn["dport"].as_u64()),
        (Some(40000), Some(80))
    );
    assert_eq!(syn["tcp_flags"], "S");
    assert_eq!(syn["role"], "request");
    assert_eq!(syn["flow"], 1);
    assert_eq!(syn["hook"], "net_dev_queue");
    assert!(
        syn.get("icmp_type").is_none(),
        "fields that do not apply are absent"
    );
    let xmit = hops[1];
    assert_eq!(xmit["hook"], "net_dev_xmit");
    assert_eq!(xmit["xmit_rc"], 0);
    assert!(xmit.get("src").is_none());
    let echo = hops[2];
    assert_eq!(
        (
            echo["icmp_type"].as_u64(),
            echo["icmp_id"].as_u64(),
            echo["icmp_seq"].as_u64()
        ),
        (Some(8), Some(7), Some(1))
    );
}

#[test]
fn end_records_say_how_the_packet_ended() {
    let recs = records();
    let ends: Vec<&Value> = recs.iter().filter(|r| r["type"] == "end").collect();
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0]["how"], "consumed");
    assert!(ends[0].get("reason").is_none());
    assert_eq!(ends[1]["how"], "dropped");
    assert_eq!(ends[1]["reason"], 3);
    assert_eq!(ends[1]["location"], "0xffffffff81000000");
    for e in ends {
        assert!(e["packet"].is_u64() && e["visits"].is_u64() && e["duration_ns"].is_u64());
    }
}
