//! JSON lines: one object per hook event (`"type":"hop"`), one per packet end
//! (`"type":"end"`), and a final `"type":"summary"`. Fields that do not apply
//! are left out. The schema is documented in README.md.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use super::{proto_name, DropContext, Filter};
use crate::correlate::Annotation;
use crate::correlate::{Flow, FlowId, HopContext, Outcome, Packet, Rewrite, Role, Sink};
use crate::event::{HopEvent, TcpFlags, L4};
use crate::topology::resolver::Topology;

#[derive(Serialize)]
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
    from: String,
    to: String,
}

impl NatChange {
    fn dst(rw: &Rewrite) -> Option<NatChange> {
        rw.dst_changed().then(|| NatChange {
            from: rw.endpoint(rw.from.1),
            to: rw.endpoint(rw.to.1),
        })
    }
    fn src(rw: &Rewrite) -> Option<NatChange> {
        rw.src_changed().then(|| NatChange {
            from: rw.endpoint(rw.from.0),
            to: rw.endpoint(rw.to.0),
        })
    }
}

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
    reason_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    visits: usize,
    duration_ns: u64,
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
    reason: String,
    reason_code: u32,
    location: String,
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
    what: Option<String>,
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
    error: Option<Option<String>>,
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

pub struct JsonSink<W: Write> {
    out: W,
    filter: Filter,
    /// Drop reason names, locations and hints.
    drops: DropContext,
    /// Names and links of what hops cross (absent: inodes and ifindexes only).
    topo: Option<Topology>,
    pub printed: u64,
    /// Packets written since the last flush (counted once it succeeds).
    unflushed: u64,
    pub error: Option<io::Error>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, filter: Filter) -> Self {
        JsonSink {
            out,
            filter,
            drops: DropContext::default(),
            topo: None,
            printed: 0,
            unflushed: 0,
            error: None,
        }
    }

    /// Adds namespace names and link facts to hop records.
    pub fn with_topology(mut self, topo: Topology) -> Self {
        self.topo = Some(topo);
        self
    }

    /// Names drop reasons and locations, and adds `drop` records.
    pub fn with_drops(mut self, drops: DropContext) -> Self {
        self.drops = drops;
        self
    }

    pub fn drops(&self) -> &DropContext {
        &self.drops
    }

    pub fn drops_mut(&mut self) -> &mut DropContext {
        &mut self.drops
    }

    pub fn topology(&self) -> Option<&Topology> {
        self.topo.as_ref()
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes any serializable record as one line (used for the summary).
    pub fn record<T: Serialize>(&mut self, rec: &T) {
        write_line(&mut self.out, &mut self.error, rec);
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

/// One JSON line; the first error stops all later writes.
fn write_line<W: Write, T: Serialize>(out: &mut W, error: &mut Option<io::Error>, rec: &T) {
    if error.is_some() {
        return;
    }
    let r = serde_json::to_writer(&mut *out, rec)
        .map_err(io::Error::from)
        .and_then(|_| out.write_all(b"\n"));
    if let Err(e) = r {
        *error = Some(e);
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn hop(&mut self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) {
        // An end is a hop only where it shows a device no hook did.
        if (ev.hook.is_end() && !ctx.inferred) || !self.filter.hop(ev, flow) {
            return;
        }
        let h = ev.headers;
        let l4 = h.map(|h| h.l4).unwrap_or(L4::None);
        let (sport, dport) = ports(h);
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
        let arp_op = match h.map(|h| h.l3) {
            Some(crate::event::L3::Arp { op, .. }) => Some(op),
            _ => None,
        };
        if let (Some(t), Some(d)) = (self.topo.as_mut(), ev.device) {
            t.observe(&d);
            t.refresh(false);
        }
        let topo = self.topo.as_ref();
        // A socket's namespace without a device is not a place of its own:
        // the hop belongs to the visit it names.
        let device = ev.device.filter(|d| d.ifindex.0 != 0);
        let link = device.and_then(|d| topo.and_then(|t| t.link(d.netns.0, d.ifindex.0)));
        let rec = HopRecord {
            kind: "hop",
            ts_ns: ev.ts_ns,
            cpu: ev.cpu,
            packet: ev.packet.0,
            flow: ctx.flow,
            role: ctx.role,
            visit: ctx.visit,
            hook: ev.hook.name(),
            netns: device.map(|d| d.netns.0),
            netns_cookie: device.and_then(|d| (d.netns_cookie != 0).then_some(d.netns_cookie)),
            netns_name: device.and_then(|d| topo.and_then(|t| t.netns_name(d.netns.0))),
            ifindex: device.map(|d| d.ifindex.0),
            ifname: ev
                .device
                .as_ref()
                .filter(|d| d.ifindex.0 != 0)
                .map(|d| d.ifname.as_str()),
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
            len: ev.len,
            proto: h.as_ref().map(proto_name),
            src: h.and_then(|h| h.l3.src()),
            dst: h.and_then(|h| h.l3.dst()),
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
            ip_id: h.and_then(|h| matches!(h.l3, crate::event::L3::Ipv4 { .. }).then_some(h.ip_id)),
            ttl: h.and_then(|h| {
                matches!(
                    h.l3,
                    crate::event::L3::Ipv4 { .. } | crate::event::L3::Ipv6 { .. }
                )
                .then_some(h.ttl)
            }),
            vlan: h.and_then(|h| h.vlan),
            xmit_rc: (ev.hook == crate::event::Hook::NetDevXmit).then_some(ev.xmit_rc),
            pid: ev.task.map(|t| t.pid),
            comm: ev.task.as_ref().map(|t| t.comm.as_str()),
            copy_of: ctx.copy_of.map(|c| c.0),
            dnat: ctx.rewrite.as_ref().and_then(NatChange::dst),
            snat: ctx.rewrite.as_ref().and_then(NatChange::src),
            fragment: matches!(l4, L4::Fragment { .. }),
            outer: ev.outer.as_ref().map(OuterRecord::of),
            inferred: ctx.inferred,
            segment_of: ctx.segment_of.map(|s| s.0 .0),
            segment_index: ctx.segment_of.map(|s| s.1),
            segment_count: ctx.segment_of.map(|s| s.2),
        };
        write_line(&mut self.out, &mut self.error, &rec);
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
        let icmp = (ev.hook == crate::event::Hook::IcmpSend)
            .then_some(((ev.aux >> 8) as u8, ev.aux as u8));
        let v6 = matches!(h.map(|h| h.l3), Some(crate::event::L3::Ipv6 { .. }));
        if let (Some(t), Some(d)) = (self.topo.as_mut(), at.device) {
            t.observe(&d);
            t.refresh(false);
        }
        let topo = self.topo.as_ref();
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
            netns_name: place.and_then(|d| topo.and_then(|t| t.netns_name(d.netns.0))),
            ifname: place
                .as_ref()
                .map(|d| d.ifname.as_str())
                .filter(|n| !n.is_empty() && !route),
            table: route.then_some(ev.aux),
            gw: ev.gw.filter(|_| route),
            oif: oif
                .as_ref()
                .map(|d| d.ifname.as_str())
                .filter(|n| !n.is_empty()),
            error: route.then(|| (ev.xmit_rc != 0).then(|| super::errno_name(ev.xmit_rc))),
            state: neigh.then(|| super::neigh_state_name(ev.aux)),
            addr: if neigh {
                h.and_then(|h| h.l3.dst())
            } else {
                None
            },
            icmp_type: icmp.map(|i| i.0),
            icmp_code: icmp.map(|i| i.1),
            what: icmp.map(|(t, c)| super::icmp_error_name(v6, t, c)),
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
        write_line(&mut self.out, &mut self.error, &rec);
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
        if let (Some(t), Some(d)) = (self.topo.as_mut(), at) {
            t.observe(&d);
            t.refresh(false);
        }
        let reason_name = reason.map(|r| self.drops.name(r.0));
        let location = reason.map(|r| self.drops.location(r.1));
        let topo = self.topo.as_ref();
        let rec = EndRecord {
            kind: "end",
            packet: p.id.0,
            flow: p.flow,
            role: p.role,
            how: p.outcome.word(),
            netns: at.map(|d| d.netns.0),
            netns_name: at.and_then(|d| topo.and_then(|t| t.netns_name(d.netns.0))),
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
        write_line(&mut self.out, &mut self.error, &rec);
        // Printed once its end record is out (its hops went before it).
        if self.error.is_none() {
            self.unflushed += 1;
        }
        if let (Some((ts, reason, location, stack)), Some(last)) = (dropped, p.visits.last()) {
            let d = last.device;
            if let Some(t) = self.topo.as_mut() {
                t.observe(&d);
                t.refresh(false);
            }
            let h = p.headers;
            let (sport, dport) = ports(h);
            let netns_name = self.topo.as_ref().and_then(|t| t.netns_name(d.netns.0));
            let label = netns_name.map_or_else(|| d.netns.0.to_string(), str::to_owned);
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
                reason: self.drops.name(reason),
                reason_code: reason,
                location: self.drops.location(location),
                hint: self
                    .drops
                    .hint(reason, &label, d.ifname.as_str(), h.and_then(|h| h.vlan)),
                stack: (stack != 0).then(|| self.drops.stack(stack)).flatten(),
                ts_ns: ts,
            };
            write_line(&mut self.out, &mut self.error, &rec);
        }
    }
}
