//! JSON lines: one object per hook event (`"type":"hop"`), one per packet end
//! (`"type":"end"`), and a final `"type":"summary"`. Fields that do not apply
//! are left out. The schema is documented in README.md.
//!
//! Each line is formatted into one buffer the sink keeps and written with
//! one `write_all`; names, locations and rewritten endpoints are written
//! where they go (Display, not `String`), so hop, end and annotation
//! records allocate nothing. Drop records allocate their hint (and the
//! stack, with `--drop-stack`).

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use super::json_line::Obj;
use super::{proto_name, DropContext, ErrnoName, Filter, IcmpErrorName, Location, ReasonName};
use crate::correlate::rewrite::Side;
use crate::correlate::Annotation;
use crate::correlate::{Flow, FlowId, HopContext, Outcome, Packet, Rewrite, Role, Sink};
use crate::event::{Device, HookData, HopEvent, RouteResult, TcpFlags, L4};
use crate::facts::{Fact, FactSink, FactTable};
use crate::topology::TopologyView;

/// Written by hand ([`WriteJson`]).
#[derive(Serialize, Default)]
struct HopRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    ts_ns: u64,
    cpu: u32,
    packet: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    visit: usize,
    hook: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_cookie: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ifindex: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ifname: Option<&'a str>,
    #[serde(rename = "kind", skip_serializing_if = "Option::is_none")]
    link_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    master: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_ifname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_netns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_ifname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vxlan_id: Option<u32>,
    len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_seq: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags: Option<TcpFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_seq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_ack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arp_op: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xmit_rc: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    copy_of: Option<u64>,
    /// The destination (DNAT) or the source (SNAT) was rewritten since the
    /// packet's previous hop with headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    dnat: Option<NatChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snat: Option<NatChange>,
    /// A non-first fragment: no transport header (`proto` is the IP one).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fragment: bool,
    /// The tunnel around the packet on this (underlay) hop.
    #[serde(skip_serializing_if = "Option::is_none")]
    outer: Option<OuterRecord>,
    /// No tracepoint showed this device: the packet was found there at a
    /// socket or at its end.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inferred: bool,
    /// A software GSO segment: of that packet, `segment_index` of
    /// `segment_count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_of: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_index: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_count: Option<u16>,
}

/// Field by field in the order of the struct, leaving out what the serde
/// attributes leave out.
impl WriteJson for HopRecord<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, None);
    }
}

impl HopRecord<'_> {
    /// The fields from `netns` to `vxlan_id`: they depend on the device
    /// only.
    fn write_device(&self, o: &mut Obj<'_>) {
        o.opt_u64("netns", self.netns);
        o.opt_u64("netns_cookie", self.netns_cookie);
        o.opt_str("netns_name", self.netns_name);
        o.opt_u64("ifindex", self.ifindex);
        o.opt_str("ifname", self.ifname);
        o.opt_str("kind", self.link_kind);
        o.opt_str("master", self.master);
        o.opt_str("peer_ifname", self.peer_ifname);
        o.opt_u64("peer_netns", self.peer_netns);
        o.opt_str("parent_ifname", self.parent_ifname);
        o.opt_u64("vxlan_id", self.vxlan_id);
    }

    /// The fields from `proto` to `vlan`: they depend on the headers only.
    fn write_headers(&self, o: &mut Obj<'_>) {
        o.opt_str("proto", self.proto);
        o.opt_ip("src", self.src);
        o.opt_ip("dst", self.dst);
        o.opt_u64("sport", self.sport);
        o.opt_u64("dport", self.dport);
        o.opt_u64("icmp_type", self.icmp_type);
        o.opt_u64("icmp_code", self.icmp_code);
        o.opt_u64("icmp_id", self.icmp_id);
        o.opt_u64("icmp_seq", self.icmp_seq);
        o.opt_display("tcp_flags", self.tcp_flags);
        o.opt_u64("tcp_seq", self.tcp_seq);
        o.opt_u64("tcp_ack", self.tcp_ack);
        o.opt_u64("arp_op", self.arp_op);
        o.opt_u64("ip_id", self.ip_id);
        o.opt_u64("ttl", self.ttl);
        o.opt_u64("vlan", self.vlan);
    }

    /// The line. With `cached`, the device fields (see
    /// [`HopRecord::write_device`]) and the header fields (see
    /// [`HopRecord::write_headers`]) are copied from objects written
    /// earlier for the same device and headers, and this record's own
    /// fields of those groups are not read.
    fn write_json_with(&self, out: &mut Vec<u8>, cached: Option<(&[u8], &[u8])>) {
        let mut o = Obj::begin(out);
        o.str("type", self.kind);
        o.u64("ts_ns", self.ts_ns);
        o.u64("cpu", self.cpu.into());
        o.u64("packet", self.packet);
        o.opt_u64("flow", self.flow.map(|f| f.0));
        o.opt_str("role", self.role.map(Role::name));
        o.u64("visit", self.visit as u64);
        o.str("hook", self.hook);
        match cached {
            Some((device, _)) => o.fields_of(device),
            None => self.write_device(&mut o),
        }
        o.u64("len", self.len.into());
        match cached {
            Some((_, headers)) => o.fields_of(headers),
            None => self.write_headers(&mut o),
        }
        if let Some(rc) = self.xmit_rc {
            o.i64("xmit_rc", rc.into());
        }
        o.opt_u64("pid", self.pid);
        o.opt_str("comm", self.comm);
        o.opt_u64("copy_of", self.copy_of);
        for (k, nat) in [("dnat", &self.dnat), ("snat", &self.snat)] {
            if let Some(n) = nat {
                let mut c = o.obj(k);
                c.display("from", n.from);
                c.display("to", n.to);
                c.end();
            }
        }
        if self.fragment {
            o.bool("fragment", true);
        }
        if let Some(t) = &self.outer {
            let mut c = o.obj("outer");
            c.str("kind", t.kind);
            c.str("proto", t.proto);
            c.ip("src", t.src);
            c.ip("dst", t.dst);
            c.opt_u64("sport", t.sport);
            c.opt_u64("dport", t.dport);
            c.opt_u64("vni", t.vni);
            c.end();
        }
        if self.inferred {
            o.bool("inferred", true);
        }
        o.opt_u64("segment_of", self.segment_of);
        o.opt_u64("segment_index", self.segment_index);
        o.opt_u64("segment_count", self.segment_count);
        o.end();
    }
}

/// The outer headers of a tunnelled packet.
#[derive(Serialize)]
struct OuterRecord {
    kind: &'static str,
    proto: &'static str,
    src: IpAddr,
    dst: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dport: Option<u16>,
    /// VXLAN or GENEVE VNI, GRE key.
    #[serde(skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
}

impl OuterRecord {
    fn of(o: &crate::event::Outer) -> OuterRecord {
        let udp = o.proto == 17;
        OuterRecord {
            kind: o.kind.name(),
            proto: match o.proto {
                17 => "udp",
                47 => "gre",
                4 => "ipip",
                41 => "ip6",
                _ => "ip",
            },
            src: o.src,
            dst: o.dst,
            sport: udp.then_some(o.sport),
            dport: udp.then_some(o.dport),
            vni: (o.vni != 0).then_some(o.vni),
        }
    }
}

/// One rewritten side of a packet: `addr:port` (ICMP: the address and echo id).
#[derive(Serialize)]
struct NatChange {
    from: Side,
    to: Side,
}

impl NatChange {
    fn dst(rw: &Rewrite) -> Option<NatChange> {
        rw.dst_changed().then(|| NatChange {
            from: rw.side(rw.from.1),
            to: rw.side(rw.to.1),
        })
    }
    fn src(rw: &Rewrite) -> Option<NatChange> {
        rw.src_changed().then(|| NatChange {
            from: rw.side(rw.from.0),
            to: rw.side(rw.to.0),
        })
    }
}

/// Written by hand ([`WriteJson`]).
#[derive(Serialize)]
struct EndRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    packet: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    how: &'static str,
    /// Where it ended: the namespace and device it was on.
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ifname: Option<&'a str>,
    /// It ended outside the scope (`--netns`, `--iface`, `--pid`): where
    /// is `netns`/`ifname` when known.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    outside_scope: bool,
    /// A GSO packet cut into this many segments (they carry on).
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    copy_of: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_of: Option<u64>,
    /// delivered: TCP merged its payload into that packet's first.
    #[serde(skip_serializing_if = "Option::is_none")]
    coalesced_into: Option<u64>,
    /// delivered: the task that read it from its socket, when seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_name: Option<ReasonName<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location<'a>>,
    visits: usize,
    duration_ns: u64,
}

impl WriteJson for EndRecord<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Obj::begin(out);
        o.str("type", self.kind);
        o.u64("packet", self.packet);
        o.opt_u64("flow", self.flow.map(|f| f.0));
        o.opt_str("role", self.role.map(Role::name));
        o.str("how", self.how);
        o.opt_u64("netns", self.netns);
        o.opt_str("netns_name", self.netns_name);
        o.opt_str("ifname", self.ifname);
        if self.outside_scope {
            o.bool("outside_scope", true);
        }
        o.opt_u64("segments", self.segments);
        o.opt_u64("copy_of", self.copy_of);
        o.opt_u64("segment_of", self.segment_of);
        o.opt_u64("coalesced_into", self.coalesced_into);
        o.opt_u64("pid", self.pid);
        o.opt_str("comm", self.comm);
        o.opt_u64("ts_ns", self.ts_ns);
        o.opt_u64("reason", self.reason);
        o.opt_display("reason_name", self.reason_name);
        o.opt_display("location", self.location);
        o.u64("visits", self.visits as u64);
        o.u64("duration_ns", self.duration_ns);
        o.end();
    }
}

/// A packet that died for a reason that is not routine.
#[derive(Serialize)]
struct DropRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    packet: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    /// Where it was last seen.
    netns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_name: Option<&'a str>,
    ifname: &'a str,
    /// What the packet was (its headers at the first sighting).
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dport: Option<u16>,
    reason: ReasonName<'a>,
    reason_code: u32,
    location: Location<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// With `--drop-stack`: the kernel stack, innermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<Vec<String>>,
    ts_ns: u64,
}

/// An ICMP error sent, a TCP reset or a retransmission.
#[derive(Serialize)]
struct AnnotationRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// tcp_reset: `sent` or `received`.
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    /// icmp_error: the packet that caused it; tcp_reset (sent): the segment
    /// that caused it, when followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowId>,
    ts_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ifname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    what: Option<IcmpErrorName>,
    /// route: the table looked up, the gateway and output device found, or
    /// the error (`ENETUNREACH`, ...; `EAGAIN`: no match in this table).
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gw: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oif: Option<&'a str>,
    /// `Some(None)` (JSON null) for a route found.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Option<ErrnoName>>,
    /// neigh: the next hop's address and what happened to its resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<IpAddr>,
    /// The headers of the packet (icmp_error, tcp_reset sent) or the
    /// socket's connection, local side first (tcp_reset received,
    /// tcp_retransmit).
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dport: Option<u16>,
}

/// The device fields of hop lines (`netns` to `vxlan_id`), written once per
/// device and copied into each line: a direct-mapped table, so bounded and
/// without allocation once its slots are warm. Emptied whenever a name or
/// link changes.
struct DeviceFields {
    slots: Vec<Option<(Device, Vec<u8>)>>,
}

/// Slots of [`DeviceFields`] (a power of two).
const DEVICE_SLOTS: usize = 256;

impl DeviceFields {
    fn new() -> DeviceFields {
        DeviceFields {
            slots: vec![None; DEVICE_SLOTS],
        }
    }

    fn clear(&mut self) {
        // An index no device has: the next lookup misses, the buffer is
        // kept.
        for (d, _) in self.slots.iter_mut().flatten() {
            d.ifindex.0 = 0;
        }
    }

    /// The fields of `d` as a JSON object, written now if not yet.
    fn of(&mut self, d: &Device, topo: &FactTable) -> &[u8] {
        let h = (u64::from(d.netns.0) << 32 | u64::from(d.ifindex.0))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = &mut self.slots[(h >> 56) as usize % DEVICE_SLOTS];
        if slot.as_ref().is_none_or(|(k, _)| k != d) {
            let mut buf = slot.take().map(|(_, b)| b).unwrap_or_default();
            buf.clear();
            let link = topo.link(d.netns.0, d.ifindex.0);
            let rec = HopRecord {
                netns: Some(d.netns.0),
                netns_cookie: (d.netns_cookie != 0).then_some(d.netns_cookie),
                netns_name: topo.netns_name(d.netns.0),
                ifindex: Some(d.ifindex.0),
                ifname: Some(d.ifname.as_str()),
                link_kind: link.map(|l| l.kind.name()),
                master: link
                    .and_then(|l| l.master.as_ref())
                    .map(|m| m.ifname.as_str()),
                peer_ifname: link
                    .and_then(|l| l.peer.as_ref())
                    .map(|p| p.ifname.as_str()),
                peer_netns: link
                    .and_then(|l| l.peer.as_ref())
                    .and_then(|p| (p.netns != 0).then_some(p.netns)),
                parent_ifname: link
                    .and_then(|l| l.parent.as_ref())
                    .map(|p| p.ifname.as_str()),
                vxlan_id: link.and_then(|l| l.vxlan_id),
                ..HopRecord::default()
            };
            let mut o = Obj::begin(&mut buf);
            rec.write_device(&mut o);
            o.end();
            *slot = Some((*d, buf));
        }
        slot.as_ref().map_or(b"{}", |(_, b)| b.as_slice())
    }
}

/// A hop record with only the fields its headers give (`proto` to `vlan`).
fn header_record(h: &crate::event::Headers) -> HopRecord<'static> {
    let l4 = h.l4;
    let (sport, dport) = ports(Some(*h));
    let icmp = match l4 {
        L4::Icmp {
            kind,
            code,
            id,
            seq,
            ..
        } => Some((kind, code, id, seq)),
        _ => None,
    };
    let echo = matches!(
        l4,
        L4::Icmp {
            v6: false,
            kind: 0 | 8,
            ..
        } | L4::Icmp {
            v6: true,
            kind: 128 | 129,
            ..
        }
    );
    let tcp = match l4 {
        L4::Tcp {
            seq, ack, flags, ..
        } => Some((seq, ack, flags)),
        _ => None,
    };
    let arp_op = match h.l3 {
        crate::event::L3::Arp { op, .. } => Some(op),
        _ => None,
    };
    HopRecord {
        proto: Some(proto_name(h)),
        src: h.l3.src(),
        dst: h.l3.dst(),
        sport,
        dport,
        icmp_type: icmp.map(|i| i.0),
        icmp_code: icmp.map(|i| i.1),
        // The identifier and sequence exist in echo messages only (an
        // advertisement's flags are no id).
        icmp_id: icmp.filter(|_| echo).map(|i| i.2),
        icmp_seq: icmp.filter(|_| echo).map(|i| i.3),
        tcp_flags: tcp.map(|t| t.2),
        tcp_seq: tcp.map(|t| t.0),
        tcp_ack: tcp.map(|t| t.1),
        arp_op,
        ip_id: matches!(h.l3, crate::event::L3::Ipv4 { .. }).then_some(h.ip_id),
        ttl: matches!(
            h.l3,
            crate::event::L3::Ipv4 { .. } | crate::event::L3::Ipv6 { .. }
        )
        .then_some(h.ttl),
        vlan: h.vlan,
        ..HopRecord::default()
    }
}

/// The header fields of hop lines (`proto` to `vlan`), written once per
/// packet and headers: a packet's hops mostly carry the same headers. A
/// direct-mapped table by packet id, bounded, without allocation once warm.
struct HeaderFields {
    slots: Vec<Option<(crate::event::Headers, Vec<u8>)>>,
}

/// Slots of [`HeaderFields`] (a power of two).
const HEADER_SLOTS: usize = 64;

impl HeaderFields {
    fn new() -> HeaderFields {
        HeaderFields {
            slots: vec![None; HEADER_SLOTS],
        }
    }

    /// The fields of `h` as a JSON object, written now unless `packet`'s
    /// slot has them.
    fn of(&mut self, packet: u64, h: &crate::event::Headers) -> &[u8] {
        let slot = &mut self.slots[packet as usize % HEADER_SLOTS];
        if slot.as_ref().is_none_or(|(k, _)| k != h) {
            let mut buf = slot.take().map(|(_, b)| b).unwrap_or_default();
            buf.clear();
            let mut o = Obj::begin(&mut buf);
            header_record(h).write_headers(&mut o);
            o.end();
            *slot = Some((*h, buf));
        }
        slot.as_ref().map_or(b"{}", |(_, b)| b.as_slice())
    }
}

/// The sink of `trace --json`: one JSON line per hop, packet end, drop
/// and annotation, into `W`.
pub struct JsonSink<W: Write> {
    out: W,
    filter: Filter,
    /// Drop reason names, locations and hints.
    drops: DropContext,
    /// Names and links of what hops cross, as the edge gave them (none
    /// with `--inodes`: inodes and ifindexes only).
    topo: FactTable,
    pub printed: u64,
    /// Packets written since the last flush (counted once it succeeds).
    unflushed: u64,
    pub error: Option<io::Error>,
    /// The line being formatted (kept: no allocation per record).
    line: Vec<u8>,
    /// Hop lines' device fields, per device.
    devices: DeviceFields,
    /// Hop lines' header fields, per packet.
    headers: HeaderFields,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, filter: Filter) -> Self {
        JsonSink {
            out,
            filter,
            drops: DropContext::default(),
            topo: FactTable::default(),
            printed: 0,
            unflushed: 0,
            error: None,
            line: Vec::with_capacity(1024),
            devices: DeviceFields::new(),
            headers: HeaderFields::new(),
        }
    }

    /// Namespace names and links given so far.
    pub fn topology(&self) -> &FactTable {
        &self.topo
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes any serializable record as one line (used for the summary).
    pub fn record<T: Serialize>(&mut self, rec: &T) {
        write_line(&mut self.out, &mut self.line, &mut self.error, rec);
    }

    pub fn flush(&mut self) {
        if self.error.is_none() {
            match self.out.flush() {
                Ok(()) => self.printed += std::mem::take(&mut self.unflushed),
                Err(e) => self.error = Some(e),
            }
        }
    }
}

/// TCP/UDP source and destination ports, when the headers have them.
fn ports(h: Option<crate::event::Headers>) -> (Option<u16>, Option<u16>) {
    match h.map(|h| h.l4) {
        Some(L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. }) => {
            (Some(sport), Some(dport))
        }
        _ => (None, None),
    }
}

/// A record written by hand, byte for byte as serde_json writes it (its
/// serde derive is the reference the tests compare with).
trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// One hand-written JSON line, formatted into `line` and written at once;
/// the first error stops all later writes.
fn write_fast<W: Write>(
    out: &mut W,
    line: &mut Vec<u8>,
    error: &mut Option<io::Error>,
    write: impl FnOnce(&mut Vec<u8>),
) {
    if error.is_some() {
        return;
    }
    line.clear();
    write(line);
    line.push(b'\n');
    if let Err(e) = out.write_all(line) {
        *error = Some(e);
    }
}

/// One JSON line, formatted into `line` and written at once; the first
/// error stops all later writes.
fn write_line<W: Write, T: Serialize>(
    out: &mut W,
    line: &mut Vec<u8>,
    error: &mut Option<io::Error>,
    rec: &T,
) {
    if error.is_some() {
        return;
    }
    line.clear();
    let r = serde_json::to_writer(&mut *line, rec)
        .map_err(io::Error::from)
        .and_then(|_| {
            line.push(b'\n');
            out.write_all(line)
        });
    if let Err(e) = r {
        *error = Some(e);
    }
}

impl<W: Write> FactSink for JsonSink<W> {
    fn fact(&mut self, fact: &Fact) {
        let changes_places = match fact {
            Fact::NetnsName { inode, name } => self.topo.netns_name(*inode) != Some(name),
            Fact::Link(l) => self.topo.link(l.netns, l.ifindex) != Some(l),
            _ => false,
        };
        if changes_places {
            self.devices.clear();
        }
        self.topo.learn(fact);
        self.drops.learn(fact);
    }

    /// An end is a hop only where it shows a device no hook did.
    fn shows_hop(&self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) -> bool {
        (!ev.hook.is_end() || ctx.inferred) && self.filter.hop(ev, flow)
    }

    fn shows_annotation(&self, _ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) -> bool {
        self.filter.annotation(at.device, flow)
    }

    fn shows_packet(&self, p: &Packet, flow: Option<&Flow>) -> bool {
        self.filter.packet(p, flow)
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn hop(&mut self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) {
        // An end is a hop only where it shows a device no hook did.
        if (ev.hook.is_end() && !ctx.inferred) || !self.filter.hop(ev, flow) {
            return;
        }
        // A socket's namespace without a device is not a place of its own:
        // the hop belongs to the visit it names.
        let device_json = match ev.device.filter(|d| d.ifindex.0 != 0) {
            Some(d) => self.devices.of(&d, &self.topo),
            None => b"{}",
        };
        let headers_json = match &ev.headers {
            Some(h) => self.headers.of(ev.packet.0, h),
            None => b"{}",
        };
        let rec = HopRecord {
            kind: "hop",
            ts_ns: ev.ts_ns,
            cpu: ev.cpu,
            packet: ev.packet.0,
            flow: ctx.flow,
            role: ctx.role,
            visit: ctx.visit,
            hook: ev.hook.name(),
            // The device's and the headers' fields are in `device_json`
            // and `headers_json`.
            len: ev.len,
            xmit_rc: ev.data.xmit_rc(),
            pid: ev.task.map(|t| t.pid),
            comm: ev.task.as_ref().map(|t| t.comm.as_str()),
            copy_of: ctx.copy_of.map(|c| c.0),
            dnat: ctx.rewrite.as_ref().and_then(NatChange::dst),
            snat: ctx.rewrite.as_ref().and_then(NatChange::src),
            fragment: matches!(ev.headers.map(|h| h.l4), Some(L4::Fragment { .. })),
            outer: ev.outer.as_ref().map(OuterRecord::of),
            inferred: ctx.inferred,
            segment_of: ctx.segment_of.map(|s| s.0 .0),
            segment_index: ctx.segment_of.map(|s| s.1),
            segment_count: ctx.segment_of.map(|s| s.2),
            ..HopRecord::default()
        };
        write_fast(&mut self.out, &mut self.line, &mut self.error, |l| {
            rec.write_json_with(l, Some((device_json, headers_json)))
        });
    }

    fn annotation(&mut self, ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) {
        if !self.filter.annotation(at.device, flow) {
            return;
        }
        let packet = at.packet;
        let h = ev.headers;
        let (sport, dport) = ports(h);
        let (kind, direction) = match ev.hook {
            crate::event::Hook::IcmpSend => ("icmp_error", None),
            crate::event::Hook::TcpSendReset => ("tcp_reset", Some("sent")),
            crate::event::Hook::TcpReceiveReset => ("tcp_reset", Some("received")),
            crate::event::Hook::FibLookup => ("route", None),
            crate::event::Hook::Neigh => ("neigh", None),
            _ => ("tcp_retransmit", None),
        };
        let route = ev.hook == crate::event::Hook::FibLookup;
        let neigh = ev.hook == crate::event::Hook::Neigh;
        let icmp = match ev.data {
            HookData::IcmpError { kind, code } => Some((kind, code)),
            _ => None,
        };
        let (table, gw, route_error) = match ev.data {
            HookData::Route { table, result, gw } => (
                Some(table),
                gw,
                Some((result != RouteResult::Found).then_some(ErrnoName(result.errno()))),
            ),
            _ => (None, None, None),
        };
        let state = match ev.data {
            HookData::Neigh { new, .. } => Some(super::neigh_state_name(new)),
            _ => None,
        };
        let v6 = matches!(h.map(|h| h.l3), Some(crate::event::L3::Ipv6 { .. }));
        let topo = &self.topo;
        // A route: where it was decided (at), and the output device found.
        let (place, oif) = if route {
            (at.device, ev.device)
        } else {
            (at.device, None)
        };
        let place = place.filter(|d| d.netns.0 != 0);
        let rec = AnnotationRecord {
            kind,
            direction,
            packet: packet.map(|p| p.0),
            flow: flow.map(|f| f.id),
            ts_ns: ev.ts_ns,
            netns: place.map(|d| d.netns.0),
            netns_name: place.and_then(|d| topo.netns_name(d.netns.0)),
            ifname: place
                .as_ref()
                .map(|d| d.ifname.as_str())
                .filter(|n| !n.is_empty() && !route),
            table,
            gw,
            oif: oif
                .as_ref()
                .map(|d| d.ifname.as_str())
                .filter(|n| !n.is_empty()),
            error: route_error,
            state,
            addr: if neigh {
                h.and_then(|h| h.l3.dst())
            } else {
                None
            },
            icmp_type: icmp.map(|i| i.0),
            icmp_code: icmp.map(|i| i.1),
            what: icmp.map(|(kind, code)| IcmpErrorName { v6, kind, code }),
            proto: if neigh || route {
                None
            } else {
                h.as_ref().map(proto_name)
            },
            src: if neigh {
                None
            } else {
                h.and_then(|h| h.l3.src())
            },
            dst: if neigh {
                None
            } else {
                h.and_then(|h| h.l3.dst())
            },
            sport,
            dport,
        };
        write_line(&mut self.out, &mut self.line, &mut self.error, &rec);
    }

    fn packet_done(&mut self, p: &Packet, flow: Option<&Flow>) {
        if !self.filter.packet(p, flow) {
            return;
        }
        let ts = p.end.and_then(|e| match e {
            crate::correlate::End::Consumed { ts } | crate::correlate::End::Dropped { ts, .. } => {
                Some(ts)
            }
            crate::correlate::End::Unseen => None,
        });
        let task = match p.outcome {
            Outcome::Delivered { task } => task,
            _ => None,
        };
        let reason = p.outcome.reason();
        let at = p.end_device.or(p.visits.last().map(|v| v.device));
        let reason_name = reason.map(|r| self.drops.reason_name(r.0));
        let location = reason.map(|r| self.drops.location_of(r.1));
        let topo = &self.topo;
        let rec = EndRecord {
            kind: "end",
            packet: p.id.0,
            flow: p.flow,
            role: p.role,
            how: p.outcome.word(),
            netns: at.map(|d| d.netns.0),
            netns_name: at.and_then(|d| topo.netns_name(d.netns.0)),
            ifname: at.as_ref().map(|d| d.ifname.as_str()),
            outside_scope: p.end_outside,
            segments: p.segmented,
            copy_of: p.copy_of.map(|c| c.0),
            segment_of: p.segment_of.map(|s| s.0 .0),
            coalesced_into: p.coalesced_into.map(|c| c.0),
            pid: task.map(|t| t.pid),
            comm: task.as_ref().map(|t| t.comm.as_str()),
            ts_ns: ts,
            reason: reason.map(|r| r.0),
            reason_name,
            location,
            visits: p.visits.len(),
            duration_ns: p.last_ts.saturating_sub(p.first_ts),
        };
        let dropped = match p.outcome {
            Outcome::Dropped {
                reason,
                location,
                stack,
            } => ts.map(|ts| (ts, reason, location, stack)),
            _ => None,
        };
        write_fast(&mut self.out, &mut self.line, &mut self.error, |l| {
            rec.write_json(l)
        });
        // Printed once its end record is out (its hops went before it).
        if self.error.is_none() {
            self.unflushed += 1;
        }
        if let (Some((ts, reason, location, stack)), Some(last)) = (dropped, p.visits.last()) {
            let d = last.device;
            let h = p.headers;
            let (sport, dport) = ports(h);
            let netns_name = self.topo.netns_name(d.netns.0);
            let label = netns_name.map_or_else(|| d.netns.0.to_string(), str::to_owned);
            let stack = (stack != 0).then(|| self.drops.stack(stack)).flatten();
            let netns_name = self.topo.netns_name(d.netns.0);
            let rec = DropRecord {
                kind: "drop",
                packet: p.id.0,
                flow: p.flow,
                role: p.role,
                netns: d.netns.0,
                netns_name,
                ifname: d.ifname.as_str(),
                proto: h.as_ref().map(proto_name),
                src: h.and_then(|h| h.l3.src()),
                dst: h.and_then(|h| h.l3.dst()),
                sport,
                dport,
                reason: self.drops.reason_name(reason),
                reason_code: reason,
                location: self.drops.location_of(location),
                hint: self
                    .drops
                    .hint(reason, &label, d.ifname.as_str(), h.and_then(|h| h.vlan)),
                stack,
                ts_ns: ts,
            };
            write_line(&mut self.out, &mut self.line, &mut self.error, &rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::flow::FlowProto;
    use crate::event::{Outer, Tunnel};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// xorshift: deterministic field choices.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn role(&mut self) -> Option<Role> {
            self.some(|r| {
                if r.next() % 2 == 0 {
                    Role::Request
                } else {
                    Role::Reply
                }
            })
        }
        fn some<T>(&mut self, v: impl FnOnce(&mut Rng) -> T) -> Option<T> {
            (self.next() % 3 != 0).then(|| v(self))
        }
        fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
            v[(self.next() % v.len() as u64) as usize]
        }
    }

    #[test]
    fn hop_records_are_written_as_serde_json_writes_them() {
        let names = ["eth0", "vc1", "", "a\"b", "tab\there", "ünï", "\u{1}ctl\\"];
        let ips = [
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc612, 2)),
        ];
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let ip = |r: &mut Rng| ips[(r.next() % ips.len() as u64) as usize];
            let rw = Rewrite {
                proto: [FlowProto::Tcp, FlowProto::Icmp, FlowProto::Udp][(r.next() % 3) as usize],
                from: ((Some(ip(&mut r)), 1), (r.some(ip), 80)),
                to: (
                    (Some(ip(&mut r)), 2),
                    (Some(ip(&mut r)), (r.next() % 3) as u16),
                ),
            };
            let outer = Outer {
                kind: [Tunnel::Vxlan, Tunnel::Gre, Tunnel::Ipip][(r.next() % 3) as usize],
                src: ip(&mut r),
                dst: ip(&mut r),
                proto: [17, 47, 4, 41, 99][(r.next() % 5) as usize],
                sport: r.next() as u16,
                dport: 4789,
                vni: (r.next() % 3) as u32,
            };
            let rec = HopRecord {
                kind: "hop",
                ts_ns: r.next(),
                cpu: r.next() as u32,
                packet: r.next() >> (r.next() % 64),
                flow: r.some(|r| FlowId(r.next() % 1000)),
                role: r.role(),
                visit: (r.next() % 40) as usize,
                hook: r.pick(&["net_dev_queue", "netif_rx"]),
                netns: r.some(|r| r.next() as u32),
                netns_cookie: r.some(|r| r.next()),
                netns_name: r.some(|r| r.pick(&names)),
                ifindex: r.some(|r| r.next() as u32),
                ifname: r.some(|r| r.pick(&names)),
                link_kind: r.some(|r| r.pick(&["veth", "bridge"])),
                master: r.some(|r| r.pick(&names)),
                peer_ifname: r.some(|r| r.pick(&names)),
                peer_netns: r.some(|r| r.next() as u32),
                parent_ifname: r.some(|r| r.pick(&names)),
                vxlan_id: r.some(|r| r.next() as u32),
                len: r.next() as u32,
                proto: r.some(|r| r.pick(&["tcp", "udp"])),
                src: r.some(|r| ip(r)),
                dst: r.some(|r| ip(r)),
                sport: r.some(|r| r.next() as u16),
                dport: r.some(|r| r.next() as u16),
                icmp_type: r.some(|r| r.next() as u8),
                icmp_code: r.some(|r| r.next() as u8),
                icmp_id: r.some(|r| r.next() as u16),
                icmp_seq: r.some(|r| r.next() as u16),
                tcp_flags: r.some(|r| TcpFlags(r.next() as u8)),
                tcp_seq: r.some(|r| r.next() as u32),
                tcp_ack: r.some(|r| r.next() as u32),
                arp_op: r.some(|r| r.next() as u16),
                ip_id: r.some(|r| r.next() as u16),
                ttl: r.some(|r| r.next() as u8),
                vlan: r.some(|r| r.next() as u16),
                xmit_rc: r.some(|r| [0, -1, -105, i32::MIN, 7][(r.next() % 5) as usize]),
                pid: r.some(|r| r.next() as u32),
                comm: r.some(|r| r.pick(&names)),
                copy_of: r.some(|r| r.next()),
                dnat: NatChange::dst(&rw),
                snat: NatChange::src(&rw),
                fragment: r.next() % 2 == 0,
                outer: r.some(|_| OuterRecord::of(&outer)),
                inferred: r.next() % 2 == 0,
                segment_of: r.some(|r| r.next()),
                segment_index: r.some(|r| r.next() as u16),
                segment_count: r.some(|r| r.next() as u16),
            };
            let mut ours = Vec::new();
            rec.write_json(&mut ours);
            let theirs = serde_json::to_vec(&rec).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            // The device and header fields copied from objects written
            // apart, as the sink does: the same line.
            let (mut device, mut headers) = (Vec::new(), Vec::new());
            let mut o = Obj::begin(&mut device);
            rec.write_device(&mut o);
            o.end();
            let mut o = Obj::begin(&mut headers);
            rec.write_headers(&mut o);
            o.end();
            let mut spliced = Vec::new();
            rec.write_json_with(&mut spliced, Some((&device, &headers)));
            assert_eq!(
                String::from_utf8_lossy(&spliced),
                String::from_utf8_lossy(&theirs)
            );
        }
    }

    /// A hop line after a namespace's name or a link changed shows the new
    /// one (the device fields kept per device are written again), and a
    /// packet whose headers changed (NAT) shows the new headers.
    #[test]
    fn kept_device_and_header_fields_follow_changes() {
        use crate::event::{Headers, Hook, IfIndex, NetnsId, PacketId, ShortName, L3};
        let dev = Device {
            netns: NetnsId(10),
            netns_cookie: 5,
            ifindex: IfIndex(2),
            ifname: ShortName::from_bytes(b"eth0"),
        };
        let h = Headers {
            l3: L3::Ipv4 {
                src: Ipv4Addr::new(198, 18, 0, 2),
                dst: Ipv4Addr::new(198, 18, 1, 2),
            },
            l4: L4::Udp {
                sport: 4000,
                dport: 53,
                len: 20,
            },
            vlan: None,
            ttl: 64,
            ip_id: 9,
            flow_label: 0,
            from_l2: true,
        };
        let ev = |ts: u64, h: Headers| HopEvent {
            ts_ns: ts,
            cpu: 1,
            hook: Hook::NetDevQueue,
            packet: PacketId(1),
            skb: 1,
            device: Some(dev),
            len: 60,
            headers: Some(h),
            new_packet: false,
            task: None,
            sk_cgroup: 0,
            data: HookData::None,
            outer: None,
            link: None,
            shared: false,
        };
        let ctx = HopContext {
            flow: None,
            role: None,
            visit: 0,
            copy_of: None,
            owned: false,
            rewrite: None,
            inferred: false,
            segment_of: None,
        };
        let mut sink = JsonSink::new(Vec::new(), Filter::default());
        sink.hop(&ev(1, h), &ctx, None);
        sink.fact(&Fact::NetnsName {
            inode: 10,
            name: "hs-c1".into(),
        });
        sink.hop(&ev(2, h), &ctx, None);
        sink.fact(&Fact::NetnsName {
            inode: 10,
            name: "hs-c2".into(),
        });
        let natted = Headers {
            l3: L3::Ipv4 {
                src: Ipv4Addr::new(198, 18, 0, 2),
                dst: Ipv4Addr::new(198, 18, 9, 9),
            },
            ..h
        };
        sink.hop(&ev(3, natted), &ctx, None);
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].get("netns_name"), None);
        assert_eq!(lines[1]["netns_name"], "hs-c1");
        assert_eq!(lines[2]["netns_name"], "hs-c2");
        assert_eq!(lines[1]["dst"], "198.18.1.2");
        assert_eq!(lines[2]["dst"], "198.18.9.9");
        assert_eq!(lines[2]["ifname"], "eth0");
    }

    #[test]
    fn end_records_are_written_as_serde_json_writes_them() {
        let names = ["eth0", "", "a\"b", "ünï\n"];
        let drops = DropContext::default();
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..5000 {
            let location = match r.next() % 3 {
                0 => Location::Name(r.pick(&["nft_do_chain+0x1f4", "x\"y"])),
                1 => Location::Symbol(r.pick(&["ip_rcv", "tab\t"]), r.next()),
                _ => Location::Addr(r.next()),
            };
            let rec = EndRecord {
                kind: "end",
                packet: r.next(),
                flow: r.some(|r| FlowId(r.next() % 1000)),
                role: r.role(),
                how: r.pick(&["delivered", "dropped"]),
                netns: r.some(|r| r.next() as u32),
                netns_name: r.some(|r| r.pick(&names)),
                ifname: r.some(|r| r.pick(&names)),
                outside_scope: r.next() % 2 == 0,
                segments: r.some(|r| r.next() as u16),
                copy_of: r.some(|r| r.next()),
                segment_of: r.some(|r| r.next()),
                coalesced_into: r.some(|r| r.next()),
                pid: r.some(|r| r.next() as u32),
                comm: r.some(|r| r.pick(&names)),
                ts_ns: r.some(|r| r.next()),
                reason: r.some(|r| r.next() as u32),
                reason_name: r.some(|r| drops.reason_name(r.next() as u32)),
                location: r.some(|_| location),
                visits: (r.next() % 64) as usize,
                duration_ns: r.next(),
            };
            let mut ours = Vec::new();
            rec.write_json(&mut ours);
            let theirs = serde_json::to_vec(&rec).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }
}
