//! What `--max-flows` and `--max-packets` cost in memory: the explorer's
//! pipeline (correlator and model) is filled with distinct UDP flows of
//! one 4-visit packet each (request and reply), as a scan or a busy server
//! would fill it, and the process's resident set size (VmRSS) is read
//! before and after. Caps equal to the count, so nothing is evicted.
//!
//! Run: `cargo run --release --example cap_memory [FLOWSxPACKETS...]`
//! (default 100000x2 100000x10): FLOWS flows of PACKETS packets each (half
//! requests, half replies). Prints the RSS growth per 1k flows; the
//! difference between two packet counts is what a packet costs.

use std::net::Ipv4Addr;

use hopscope::correlate::{Correlator, CorrelatorConfig};
use hopscope::event::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, NetnsId, PacketId, ShortName, L3, L4,
};
use hopscope::model::{Model, ModelConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn dev(ns: u32, ifindex: u32, name: &str) -> Device {
    Device {
        netns: NetnsId(ns),
        netns_cookie: u64::from(ns),
        ifindex: IfIndex(ifindex),
        ifname: ShortName::from_bytes(name.as_bytes()),
    }
}

fn hop(ts: u64, pkt: u64, hook: Hook, d: Option<Device>, h: Option<Headers>) -> HopEvent {
    HopEvent {
        ts_ns: ts,
        cpu: 0,
        hook,
        packet: PacketId(pkt),
        skb: 0xffff_8880_0000_0000 + pkt * 0x100,
        device: d,
        len: 100,
        headers: h,
        new_packet: hook == Hook::NetDevQueue,
        task: None,
        sk_cgroup: 0,
        data: HookData::None,
        outer: None,
        link: None,
        shared: false,
    }
}

/// RSS growth, in KiB, for `flows` flows of `per_flow` packets.
fn measure(flows: u32, per_flow: u32) -> (u64, usize, usize) {
    let mut corr = Correlator::new(CorrelatorConfig {
        max_packets: (per_flow * flows) as usize,
        max_flows: flows as usize,
        ..CorrelatorConfig::default()
    });
    let mut model = Model::new(ModelConfig {
        max_packets: (per_flow * flows) as usize,
        max_flows: flows as usize,
        ..ModelConfig::default()
    });
    let before = rss_kib();
    let (a, b) = (dev(1, 2, "eth0"), dev(2, 3, "vc1"));
    let mut ts = 1_000_000_000u64;
    let mut pkt = 0u64;
    for i in 0..flows {
        let src = Ipv4Addr::from(0xc612_0000 | (i & 0xffff));
        let dst = Ipv4Addr::new(198, 19, (i >> 16) as u8, 1);
        let port = 1024 + (i % 60000) as u16;
        for n in 0..per_flow {
            let (s, d, sp, dp) = if n % 2 == 0 {
                (src, dst, port, 7000)
            } else {
                (dst, src, 7000, port)
            };
            pkt += 1;
            let h = Headers {
                l3: L3::Ipv4 { src: s, dst: d },
                l4: L4::Udp {
                    sport: sp,
                    dport: dp,
                    len: 72,
                },
                vlan: None,
                ttl: 64,
                ip_id: pkt as u16,
                flow_label: 0,
                from_l2: true,
            };
            for (hook, d) in [
                (Hook::NetDevQueue, a),
                (Hook::NetifRx, b),
                (Hook::NetifReceiveSkb, b),
            ] {
                ts += 1_000;
                corr.on_event(&hop(ts, pkt, hook, Some(d), Some(h)), &mut model);
            }
            ts += 1_000;
            corr.on_event(&hop(ts, pkt, Hook::ConsumeSkb, None, None), &mut model);
        }
    }
    corr.flush(&mut model);
    let grown = rss_kib().saturating_sub(before);
    let kept = (model.flow_count(), model.packet_count());
    drop(model);
    drop(corr);
    (grown, kept.0, kept.1)
}

fn main() {
    let runs: Vec<(u32, u32)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            let (f, p) = a.split_once('x')?;
            Some((f.parse().ok()?, p.parse().ok()?))
        })
        .collect();
    let runs = if runs.is_empty() {
        vec![(100_000, 2), (100_000, 10)]
    } else {
        runs
    };
    for (n, per_flow) in runs {
        let (kib, flows, packets) = measure(n, per_flow);
        println!(
            "{n} flows x {per_flow} packets: {flows} flows and {packets} packets kept, RSS +{:.1} MiB, {:.0} KiB per 1k flows",
            kib as f64 / 1024.0,
            kib as f64 * 1000.0 / f64::from(n.max(1))
        );
    }
}
