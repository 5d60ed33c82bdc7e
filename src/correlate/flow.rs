//! Flow keys and request/reply roles.
//!
//! A flow is one bidirectional conversation, keyed by the canonical
//! (ordered) pair of endpoints plus protocol; for ICMP echo the "port" of
//! both endpoints is the echo id. The initiator is the side that sent the
//! first packet, except where the protocol says otherwise: the TCP SYN
//! sender, the ICMP echo requester, the ARP requester.

use std::net::IpAddr;

use serde::Serialize;

use crate::event::{Headers, L3, L4};

/// Sequential id of a flow within one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FlowId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Request,
    Reply,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Request => "request",
            Role::Reply => "reply",
        }
    }
}

/// Protocol part of a flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowProto {
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Arp,
    Ip(u8),
    Ether(u16),
}

impl FlowProto {
    pub fn name(self) -> &'static str {
        match self {
            FlowProto::Tcp => "tcp",
            FlowProto::Udp => "udp",
            FlowProto::Icmp => "icmp",
            FlowProto::Icmp6 => "icmp6",
            FlowProto::Arp => "arp",
            FlowProto::Ip(_) => "ip",
            FlowProto::Ether(_) => "ether",
        }
    }
}

/// One side of a conversation: address and port (or echo id, or 0).
pub type Endpoint = (Option<IpAddr>, u16);

/// Canonical flow key: `a <= b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: FlowProto,
    pub a: Endpoint,
    pub b: Endpoint,
}

/// What one packet says about its flow: key, its own source endpoint, and
/// the role the protocol itself implies (if it implies one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowView {
    pub key: FlowKey,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub implied_role: Option<Role>,
    /// For TCP: this packet opens the connection (SYN) or answers the opener
    /// (SYN-ACK), which fixes the initiator whatever was seen before.
    pub opener: Option<Role>,
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
const ICMP6_NEIGH_SOLICIT: u8 = 135;
const ICMP6_NEIGH_ADVERT: u8 = 136;
const ICMP6_ROUTER_SOLICIT: u8 = 133;
const ICMP6_ROUTER_ADVERT: u8 = 134;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

fn canonical(proto: FlowProto, src: Endpoint, dst: Endpoint) -> FlowKey {
    if src <= dst {
        FlowKey {
            proto,
            a: src,
            b: dst,
        }
    } else {
        FlowKey {
            proto,
            a: dst,
            b: src,
        }
    }
}

/// Derives the flow view of a packet from its headers.
pub fn flow_view(h: &Headers) -> FlowView {
    let src_ip = h.l3.src();
    let dst_ip = h.l3.dst();
    let (proto, sport, dport, implied_role, opener) = match (h.l3, h.l4) {
        (L3::Arp { op, .. }, _) => {
            let role = match op {
                ARP_REQUEST => Some(Role::Request),
                ARP_REPLY => Some(Role::Reply),
                _ => None,
            };
            (FlowProto::Arp, 0, 0, role, None)
        }
        (L3::Other { ethertype }, _) => (FlowProto::Ether(ethertype), 0, 0, None, None),
        (
            _,
            L4::Tcp {
                sport,
                dport,
                flags,
                ..
            },
        ) => {
            let opener = if flags.is_syn() {
                Some(Role::Request)
            } else if flags.has(crate::event::TcpFlags::SYN) {
                Some(Role::Reply)
            } else {
                None
            };
            (FlowProto::Tcp, sport, dport, None, opener)
        }
        (_, L4::Udp { sport, dport, .. }) => (FlowProto::Udp, sport, dport, None, None),
        (_, L4::Icmp { v6, kind, id, .. }) => {
            let proto = if v6 {
                FlowProto::Icmp6
            } else {
                FlowProto::Icmp
            };
            let role = match (v6, kind) {
                (false, ICMP_ECHO_REQUEST) | (true, ICMP6_ECHO_REQUEST) => Some(Role::Request),
                (false, ICMP_ECHO_REPLY) | (true, ICMP6_ECHO_REPLY) => Some(Role::Reply),
                (true, ICMP6_NEIGH_SOLICIT) | (true, ICMP6_ROUTER_SOLICIT) => Some(Role::Request),
                (true, ICMP6_NEIGH_ADVERT) | (true, ICMP6_ROUTER_ADVERT) => Some(Role::Reply),
                _ => None,
            };
            let echo = matches!(
                (v6, kind),
                (false, ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY)
                    | (true, ICMP6_ECHO_REQUEST | ICMP6_ECHO_REPLY)
            );
            // Echo id names the conversation on both sides; other ICMP
            // messages share one flow per address pair.
            let port = if echo { id } else { 0 };
            (proto, port, port, role, None)
        }
        (_, L4::Other { proto } | L4::Fragment { proto }) => {
            (FlowProto::Ip(proto), 0, 0, None, None)
        }
        (_, L4::None) => (FlowProto::Ip(0), 0, 0, None, None),
    };
    let src = (src_ip, sport);
    let dst = (dst_ip, dport);
    FlowView {
        key: canonical(proto, src, dst),
        src,
        dst,
        implied_role,
        opener,
    }
}

/// One conversation and its running totals.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: FlowId,
    pub key: FlowKey,
    /// The side that started the conversation.
    pub initiator: Endpoint,
    pub first_ts: u64,
    pub last_ts: u64,
    pub requests: u64,
    pub replies: u64,
    pub bytes: u64,
    pub drops: u64,
    /// TCP resets sent or received, and retransmitted segments.
    pub resets: u64,
    pub retransmits: u64,
    /// ICMP errors the kernel sent because of packets of this flow.
    pub icmp_errors: u64,
    /// A packet of this flow was sent by a socket of the watched cgroup.
    pub owned: bool,
    /// Other keys the flow is known under: the tuples NAT rewrote it to,
    /// oldest first (at most [`MAX_ALIASES`]).
    pub aliases: Vec<FlowKey>,
}

/// Rewritten keys remembered per flow (DNAT and SNAT on one path make two).
pub const MAX_ALIASES: usize = 4;

impl Flow {
    pub fn new(id: FlowId, view: &FlowView, ts: u64) -> Flow {
        let initiator = match (view.implied_role, view.opener) {
            (_, Some(Role::Request)) | (Some(Role::Request), None) => view.src,
            (_, Some(Role::Reply)) | (Some(Role::Reply), None) => view.dst,
            // A TCP connection caught mid-stream: the side on the lower port
            // is taken as the server (clients use high ephemeral ports),
            // until a SYN says otherwise.
            (None, None) if view.key.proto == FlowProto::Tcp && view.src.1 != view.dst.1 => {
                if view.src.1 > view.dst.1 {
                    view.src
                } else {
                    view.dst
                }
            }
            (None, None) => view.src,
        };
        Flow {
            id,
            key: view.key,
            initiator,
            first_ts: ts,
            last_ts: ts,
            requests: 0,
            replies: 0,
            bytes: 0,
            drops: 0,
            resets: 0,
            retransmits: 0,
            icmp_errors: 0,
            owned: false,
            aliases: Vec::new(),
        }
    }

    /// The role of a packet seen under the flow's own key. A TCP SYN
    /// re-anchors the initiator (a new connection on a reused 4-tuple).
    pub fn role_of(&mut self, view: &FlowView) -> Role {
        let mut alias = FlowAlias {
            id: self.id,
            initiator: self.initiator,
        };
        let role = alias.role_of(view);
        self.initiator = alias.initiator;
        role
    }
}

/// A key under which a flow is known: its own, or one NAT rewrote it to
/// (the same connection as conntrack sees it). `initiator` is the side that
/// started the conversation, as this key names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowAlias {
    pub id: FlowId,
    pub initiator: Endpoint,
}

impl FlowAlias {
    /// The role of a packet seen under this key (see [`Flow::role_of`]).
    pub fn role_of(&mut self, view: &FlowView) -> Role {
        if view.opener == Some(Role::Request) {
            self.initiator = view.src;
        }
        if let Some(r) = view.implied_role {
            return r;
        }
        if view.src == self.initiator {
            Role::Request
        } else {
            Role::Reply
        }
    }
}
