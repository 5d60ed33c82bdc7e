//! Encoder: [`HopEvent`] → raw ABI event, the exact inverse of
//! [`decode_raw`](super::decode::decode_raw). Tests and the fuzz targets
//! use it to build kernel records from readable domain values (recordings
//! of format 1 held such records; format 2 holds the domain values).
//!
//! For every event the decoder can produce,
//! `decode_raw(&encode_raw(&ev)) == Ok(ev)`. Fields the decoder ignores are
//! filled as the BPF side would fill them (the ethertype of IP and ARP
//! headers) or left zero (`ip_len`, padding). Pure and heap-free.

use super::decode::wire_code;
use super::{Headers, HookData, HopEvent, Link, Outer, Tunnel, L3, L4};
use crate::bpf::abi::{self, RawEvent, RawOuter, RawTuple};
use crate::bpf::skel::types::{hs_event_flags, hs_l3, hs_tunnel, hs_tuple_flags};

const F_TUPLE: u16 = hs_event_flags::HS_F_TUPLE.0 as u16;
const F_NEW: u16 = hs_event_flags::HS_F_NEW.0 as u16;
const F_TASK: u16 = hs_event_flags::HS_F_TASK.0 as u16;
const F_L2: u16 = hs_event_flags::HS_F_L2.0 as u16;
const F_OUTER: u16 = hs_event_flags::HS_F_OUTER.0 as u16;
const F_CLONE: u16 = hs_event_flags::HS_F_CLONE.0 as u16;
const F_BRANCH: u16 = hs_event_flags::HS_F_BRANCH.0 as u16;
const F_SEGMENT: u16 = hs_event_flags::HS_F_SEGMENT.0 as u16;
const F_SEGMENTED: u16 = hs_event_flags::HS_F_SEGMENTED.0 as u16;
const F_SHARED: u16 = hs_event_flags::HS_F_SHARED.0 as u16;
const T_VLAN: u8 = hs_tuple_flags::HS_T_VLAN.0 as u8;
const T_FRAG: u8 = hs_tuple_flags::HS_T_FRAG.0 as u8;

const L3_IPV4: u8 = hs_l3::HS_L3_IPV4.0 as u8;
const L3_IPV6: u8 = hs_l3::HS_L3_IPV6.0 as u8;
const L3_ARP: u8 = hs_l3::HS_L3_ARP.0 as u8;
const L3_OTHER: u8 = hs_l3::HS_L3_OTHER.0 as u8;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_ARP: u16 = 0x0806;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

/// Encodes an event as the kernel side would have emitted it.
pub fn encode_raw(ev: &HopEvent) -> RawEvent {
    let mut raw = RawEvent {
        abi_version: abi::ABI_VERSION,
        hook: wire_code(ev.hook),
        cpu: ev.cpu,
        ts_ns: ev.ts_ns,
        packet_id: ev.packet.0,
        skb_addr: ev.skb,
        sk_cgroup: ev.sk_cgroup,
        len: ev.len,
        ..RawEvent::default()
    };
    if ev.new_packet {
        raw.flags |= F_NEW;
    }
    if let Some(d) = ev.device {
        raw.netns_ino = d.netns.0;
        raw.netns_cookie = d.netns_cookie;
        raw.ifindex = d.ifindex.0;
        raw.ifname = *d.ifname.raw();
    }
    if let Some(t) = ev.task {
        raw.flags |= F_TASK;
        raw.pid = t.pid;
        raw.tid = t.tid;
        raw.comm = *t.comm.raw();
    }
    if let Some(h) = ev.headers {
        raw.flags |= F_TUPLE;
        if h.from_l2 {
            raw.flags |= F_L2;
        }
        raw.tuple = encode_tuple(&h);
    }
    if let Some(o) = ev.outer {
        raw.flags |= F_OUTER;
        raw.outer = encode_outer(&o);
    }
    match ev.link {
        Some(Link::CloneOf(p)) => {
            raw.flags |= F_CLONE;
            raw.related = p.0;
        }
        Some(Link::Branch(p)) => {
            raw.flags |= F_BRANCH;
            raw.related = p.0;
        }
        Some(Link::SegmentOf {
            parent,
            index,
            count,
        }) => {
            raw.flags |= F_SEGMENT;
            raw.related = parent.0;
            raw.seg_index = index;
            raw.seg_count = count;
        }
        Some(Link::Segmented { count }) => {
            raw.flags |= F_SEGMENTED;
            raw.seg_count = count;
        }
        None => {}
    }
    if ev.shared {
        raw.flags |= F_SHARED;
    }
    match ev.data {
        HookData::None => {}
        HookData::Xmit { rc } => raw.xmit_rc = rc,
        HookData::TcpSegment { payload } => raw.aux = payload,
        HookData::TcpState { old, new, payload } => {
            raw.aux = u32::from(payload) << 16 | u32::from(old) << 8 | u32::from(new);
        }
        HookData::Consumed { location } => raw.location = location,
        HookData::Freed {
            reason,
            location,
            stack,
        } => {
            raw.drop_reason = reason;
            raw.location = location;
            raw.aux = stack;
        }
        HookData::IcmpError { kind, code } => raw.aux = u32::from(kind) << 8 | u32::from(code),
        HookData::Route { table, result, gw } => {
            raw.aux = table;
            raw.xmit_rc = result.errno();
            if let Some(gw) = gw {
                raw.gw = ip_bytes(gw).1;
            }
        }
        HookData::Neigh { old, new } => raw.aux = u32::from(old) << 8 | u32::from(new),
    }
    raw
}

fn ip_bytes(a: std::net::IpAddr) -> (u8, [u8; 16]) {
    let mut b = [0u8; 16];
    match a {
        std::net::IpAddr::V4(v) => {
            b[..4].copy_from_slice(&v.octets());
            (L3_IPV4, b)
        }
        std::net::IpAddr::V6(v) => (L3_IPV6, v.octets()),
    }
}

fn encode_outer(o: &Outer) -> RawOuter {
    let (l3, saddr) = ip_bytes(o.src);
    let (_, daddr) = ip_bytes(o.dst);
    RawOuter {
        saddr,
        daddr,
        sport: o.sport,
        dport: o.dport,
        vni: o.vni,
        l3,
        proto: o.proto,
        kind: match o.kind {
            Tunnel::Vxlan => hs_tunnel::HS_TUNNEL_VXLAN.0 as u8,
            Tunnel::Geneve => hs_tunnel::HS_TUNNEL_GENEVE.0 as u8,
            Tunnel::Gre => hs_tunnel::HS_TUNNEL_GRE.0 as u8,
            Tunnel::Ipip => hs_tunnel::HS_TUNNEL_IPIP.0 as u8,
        },
        ..RawOuter::default()
    }
}

fn encode_tuple(h: &Headers) -> RawTuple {
    let mut t = RawTuple {
        vlan_tci: h.vlan.unwrap_or(0),
        tflags: if h.vlan.is_some() { T_VLAN } else { 0 },
        ttl: h.ttl,
        ip_id: h.ip_id,
        flow_label: h.flow_label,
        ..RawTuple::default()
    };
    match h.l3 {
        L3::Ipv4 { src, dst } => {
            t.l3 = L3_IPV4;
            t.ethertype = ETH_P_IP;
            t.saddr[..4].copy_from_slice(&src.octets());
            t.daddr[..4].copy_from_slice(&dst.octets());
        }
        L3::Ipv6 { src, dst } => {
            t.l3 = L3_IPV6;
            t.ethertype = ETH_P_IPV6;
            t.saddr = src.octets();
            t.daddr = dst.octets();
        }
        L3::Arp { op, sender, target } => {
            t.l3 = L3_ARP;
            t.ethertype = ETH_P_ARP;
            t.arp_op = op;
            t.saddr[..4].copy_from_slice(&sender.octets());
            t.daddr[..4].copy_from_slice(&target.octets());
        }
        L3::Other { ethertype } => {
            t.l3 = L3_OTHER;
            t.ethertype = ethertype;
        }
    }
    // The decoder reads the transport fields only under IP; ARP and other
    // ethertypes always come with `L4::None`.
    match h.l4 {
        L4::None => {}
        L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
        } => {
            t.l4_proto = IPPROTO_TCP;
            t.sport = sport;
            t.dport = dport;
            t.tcp_seq = seq;
            t.tcp_ack = ack;
            t.tcp_flags = flags.0;
        }
        L4::Udp { sport, dport, len } => {
            t.l4_proto = IPPROTO_UDP;
            t.sport = sport;
            t.dport = dport;
            t.l4_len = len;
        }
        L4::Icmp {
            v6,
            kind,
            code,
            id,
            seq,
        } => {
            t.l4_proto = if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
            t.icmp_type = kind;
            t.icmp_code = code;
            t.icmp_id = id;
            t.icmp_seq = seq;
        }
        L4::Other { proto } => t.l4_proto = proto,
        L4::Fragment { proto } => {
            t.l4_proto = proto;
            t.tflags |= T_FRAG;
        }
    }
    t
}
