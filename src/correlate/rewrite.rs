//! Address and port rewrites (NAT) seen between two hops of one packet.
//!
//! Kernel fact: netfilter's DNAT (prerouting, output) and SNAT/MASQUERADE
//! (postrouting) rewrite the *same* sk_buff, so one packet id shows its
//! headers before and after. A connection is then known under two tuples,
//! the original one and the rewritten one, and its replies carry the
//! rewritten tuple reversed until the reverse rewrite restores the
//! original: the correlator learns the second tuple as an alias of the
//! flow (see [`super::Correlator`]).

use std::fmt;

use super::flow::{flow_view, Endpoint, FlowProto};
use crate::event::{Addr, Headers, Sock, L4};

/// Where a packet's addresses or ports changed, and from what to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    pub proto: FlowProto,
    /// Source and destination before the rewrite.
    pub from: (Endpoint, Endpoint),
    /// Source and destination after it.
    pub to: (Endpoint, Endpoint),
}

/// Addresses and L4 ports (or the echo id) of headers: what NAT rewrites.
fn nat_fields(h: &Headers) -> (crate::event::L3, u16, u16) {
    let (sport, dport) = match h.l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => (sport, dport),
        L4::Icmp { id, .. } => (id, id),
        _ => (0, 0),
    };
    (h.l3, sport, dport)
}

impl Rewrite {
    /// The rewrite between two sightings of one packet, if its addresses
    /// or ports differ (TTL and checksums do not count).
    pub fn between(before: &Headers, after: &Headers) -> Option<Rewrite> {
        if nat_fields(before) == nat_fields(after) {
            return None;
        }
        let (a, b) = (flow_view(before), flow_view(after));
        // Another protocol altogether is not a rewrite of this packet.
        if a.key.proto != b.key.proto {
            return None;
        }
        Some(Rewrite {
            proto: a.key.proto,
            from: (a.src, a.dst),
            to: (b.src, b.dst),
        })
    }

    /// The destination changed (DNAT, or a reply's reverse SNAT).
    pub fn dst_changed(&self) -> bool {
        self.from.1 != self.to.1
    }

    /// The source changed (SNAT, MASQUERADE, or a reply's reverse DNAT).
    pub fn src_changed(&self) -> bool {
        self.from.0 != self.to.0
    }

    /// One side as people write it: `addr:port` for TCP and UDP, the
    /// address (and echo id) for ICMP.
    pub fn endpoint(&self, e: Endpoint) -> String {
        self.side(e).to_string()
    }

    /// [`Rewrite::endpoint`], written where it goes.
    pub fn side(&self, e: Endpoint) -> Side {
        Side {
            proto: self.proto,
            endpoint: e,
        }
    }
}

/// One side of a rewrite as people write it (Display; serialized as a
/// string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    proto: FlowProto,
    endpoint: Endpoint,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.endpoint;
        match self.proto {
            FlowProto::Tcp | FlowProto::Udp => write!(f, "{}", Sock(e.0, e.1)),
            FlowProto::Icmp | FlowProto::Icmp6 if e.1 != 0 => {
                write!(f, "{} id {}", Addr(e.0), e.1)
            }
            _ => write!(f, "{}", Addr(e.0)),
        }
    }
}

impl serde::Serialize for Side {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `DNAT 198.18.9.1:8080 → 198.18.2.2:80`, `SNAT ... → ...`, or both.
impl fmt::Display for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if self.dst_changed() {
            write!(
                f,
                "DNAT {} → {}",
                self.endpoint(self.from.1),
                self.endpoint(self.to.1)
            )?;
            sep = ", ";
        }
        if self.src_changed() {
            write!(
                f,
                "{sep}SNAT {} → {}",
                self.endpoint(self.from.0),
                self.endpoint(self.to.0)
            )?;
        }
        Ok(())
    }
}
