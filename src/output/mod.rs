//! Renderers of correlated packets for scripts and terminals: one text line
//! per visit (or per hook), or JSON lines. They write into any `io::Write`
//! and reuse their line buffer; the per-packet work (names, drop reasons
//! and locations) allocates a few small strings per printed packet, never
//! per event that is not printed. They look nothing up: names, links,
//! symbols and reason names are the facts the pipeline's edge gave them
//! ([`crate::facts`]).

pub mod json;
mod json_line;
pub mod pcapng;
pub mod text;

use std::fmt;
use std::fmt::Write as _;

pub use crate::clock::fmt_duration;
pub(crate) use crate::event::{Addr, Sock};
use crate::event::{Headers, Outer, L3, L4};
pub use crate::select::Filter;

/// Protocol name as used in text and JSON output.
pub fn proto_name(h: &Headers) -> &'static str {
    match (h.l3, h.l4) {
        (L3::Arp { .. }, _) => "arp",
        (L3::Other { .. }, _) => "ether",
        (_, L4::Tcp { .. }) => "tcp",
        (_, L4::Udp { .. }) => "udp",
        (_, L4::Icmp { v6: false, .. }) => "icmp",
        (_, L4::Icmp { v6: true, .. }) => "icmp6",
        (L3::Ipv4 { .. }, _) => "ip",
        (L3::Ipv6 { .. }, _) => "ip6",
    }
}

/// Short description of a packet's headers, in the style of the tracepkt
/// seed: `#17146.001 198.18.0.1 -> 198.18.0.2` for ICMP echo,
/// `tcp 198.18.0.1:40000 -> 198.18.0.2:80 [S]` for TCP, and so on.
pub fn describe(h: &Headers, out: &mut String) {
    describe_l3_l4(h, out);
    match h.vlan {
        Some(0) => out.push_str(" vlan 0 (priority tag)"),
        Some(v) => {
            let _ = write!(out, " vlan {v}");
        }
        None => {}
    }
}

fn describe_l3_l4(h: &Headers, out: &mut String) {
    let _ = match (h.l3, h.l4) {
        (L3::Arp { op, sender, target }, _) => match op {
            1 => write!(out, "arp who-has {target} tell {sender}"),
            2 => write!(out, "arp reply {sender} is-at .. to {target}"),
            _ => write!(out, "arp op {op} {sender} -> {target}"),
        },
        (L3::Other { ethertype }, _) => write!(out, "ethertype 0x{ethertype:04x}"),
        (
            l3,
            L4::Icmp {
                v6,
                kind,
                code,
                id,
                seq,
            },
        ) => {
            let (s, d) = (l3.src(), l3.dst());
            let echo = matches!((v6, kind), (false, 0 | 8) | (true, 128 | 129));
            if echo {
                write!(out, "#{id}.{seq:03} {} -> {}", Addr(s), Addr(d))
            } else {
                let name = if v6 { "icmp6" } else { "icmp" };
                write!(
                    out,
                    "{name} {} -> {} type {kind} code {code}",
                    Addr(s),
                    Addr(d)
                )
            }
        }
        (
            l3,
            L4::Tcp {
                sport,
                dport,
                flags,
                seq,
                ..
            },
        ) => write!(
            out,
            "tcp {} -> {} [{flags}] seq {seq}",
            Sock(l3.src(), sport),
            Sock(l3.dst(), dport)
        ),
        (l3, L4::Udp { sport, dport, len }) => {
            write!(
                out,
                "udp {} -> {} len {}",
                Sock(l3.src(), sport),
                Sock(l3.dst(), dport),
                len.saturating_sub(8)
            )
        }
        (l3, L4::Other { proto }) => write!(
            out,
            "ip proto {proto} {} -> {}",
            Addr(l3.src()),
            Addr(l3.dst())
        ),
        (l3, L4::Fragment { proto }) => write!(
            out,
            "ip fragment (proto {proto}) {} -> {}",
            Addr(l3.src()),
            Addr(l3.dst())
        ),
        (l3, L4::None) => write!(out, "ip {} -> {}", Addr(l3.src()), Addr(l3.dst())),
    };
}

/// `in vxlan 42 198.19.0.1:40000 -> 198.19.0.2:4789`: the tunnel around a
/// packet on an underlay hop.
pub fn describe_outer(o: &Outer, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "in {}", o.kind.name());
    if o.vni != 0 {
        let _ = write!(out, " {}", o.vni);
    }
    let _ = if o.sport != 0 || o.dport != 0 {
        write!(
            out,
            " {} -> {}",
            Sock(Some(o.src), o.sport),
            Sock(Some(o.dst), o.dport)
        )
    } else {
        write!(out, " {} -> {}", o.src, o.dst)
    };
}

/// How packet `p` ended, for people: `delivered to nc[1234]`, `consumed`,
/// `dropped: NETFILTER_DROP at nft_do_chain+0x1f4` (names from `drops`).
pub fn describe_outcome(p: &crate::correlate::Packet, drops: &DropContext, out: &mut String) {
    use crate::correlate::Outcome;
    use crate::safe_text::Shown;
    let _ = match p.outcome {
        Outcome::Delivered { task: Some(t) } => write!(out, "delivered to {}[{}]", t.comm, t.pid),
        Outcome::Delivered { task: None } => match p.coalesced_into {
            Some(into) => write!(out, "delivered with packet {} (TCP merged it)", into.0),
            None => write!(out, "delivered"),
        },
        Outcome::Consumed => match p.segmented {
            Some(n) => write!(out, "consumed: cut into {n} segments (GSO)"),
            None => write!(out, "consumed"),
        },
        Outcome::Freed { reason, location } => write!(
            out,
            "freed ({}) at {}",
            Shown(&drops.name(reason)),
            Shown(&drops.location(location))
        ),
        Outcome::Dropped {
            reason, location, ..
        } => write!(
            out,
            "dropped: {} at {}",
            Shown(&drops.name(reason)),
            Shown(&drops.location(location))
        ),
        Outcome::Unseen => write!(out, "unseen: no end event"),
    };
}

/// What line mode says about a `kfree_skb`: the reason's name (from the
/// kernel's BTF), whether it is routine, the code location as
/// `function+0xoff`, and a hint. It only reads what the edge gave it
/// ([`crate::facts::Fact`]): reason names, symbols, stacks.
#[derive(Debug, Default)]
pub struct DropContext {
    reasons: crate::event::drop_reason::DropReasons,
    /// Code addresses resolved by the edge, as `function+0xoff`.
    symbols: rustc_hash::FxHashMap<u64, String>,
    /// Kernel stacks of drops (`--drop-stack`), by stack id + 1.
    stacks: std::collections::HashMap<u32, Vec<u64>>,
}

impl DropContext {
    /// Keeps the facts about drops: reason names, symbols, stacks.
    pub fn learn(&mut self, fact: &crate::facts::Fact) {
        use crate::facts::Fact;
        match fact {
            Fact::DropReasons(r) => self.reasons = r.clone(),
            Fact::Symbol { addr, name } => {
                crate::facts::bounded_insert(&mut self.symbols, *addr, name.clone());
            }
            Fact::Stack { id, ips } => {
                // The kernel map holds 1024 stacks; this mirrors at most that many.
                if self.stacks.len() > 4096 {
                    self.stacks.clear();
                }
                self.stacks.insert(*id, ips.clone());
            }
            Fact::NetnsName { .. } | Fact::Link(_) => {}
        }
    }

    /// The kernel's reason names this context knows.
    pub fn reasons(&self) -> &crate::event::drop_reason::DropReasons {
        &self.reasons
    }

    /// `NETFILTER_DROP`, or `reason 77` when unknown.
    pub fn name(&self, reason: u32) -> String {
        self.reason_name(reason).to_string()
    }

    /// [`DropContext::name`], written where it goes instead of allocated.
    pub fn reason_name(&self, reason: u32) -> ReasonName<'_> {
        ReasonName {
            name: self.reasons.name(reason),
            reason,
        }
    }

    /// `nft_do_chain+0x1f4`, or the hex address.
    pub fn location(&self, addr: u64) -> String {
        self.location_of(addr).to_string()
    }

    /// [`DropContext::location`], to write without allocating.
    pub fn location_of(&self, addr: u64) -> Location<'_> {
        match self.symbols.get(&addr) {
            Some(name) => Location::Name(name),
            None => Location::Addr(addr),
        }
    }

    /// The symbolized kernel stack of a drop, innermost first, from the
    /// function that dropped it (the tracing frames above are left out).
    pub fn stack(&self, id: u32) -> Option<Vec<String>> {
        let ips = self.stacks.get(&id)?;
        let frames: Vec<String> = ips.iter().map(|ip| self.location(*ip)).collect();
        let tracing = |f: &String| {
            f.starts_with("bpf_prog_")
                || f.starts_with("bpf_trace_run")
                || f.starts_with("__bpf_trace")
        };
        let skip = frames.iter().position(|f| !tracing(f)).unwrap_or(0);
        Some(frames[skip..].to_vec())
    }

    pub fn hint(
        &self,
        reason: u32,
        netns: &str,
        ifname: &str,
        vlan: Option<u16>,
    ) -> Option<String> {
        crate::event::drop_reason::hint(self.reasons.name(reason)?, netns, ifname, vlan)
    }
}

/// A drop reason's name, or `reason 77` when unknown (Display).
#[derive(Debug, Clone, Copy)]
pub struct ReasonName<'a> {
    name: Option<&'a str>,
    reason: u32,
}

impl fmt::Display for ReasonName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "reason {}", self.reason),
        }
    }
}

/// Written as a JSON string, without an intermediate `String`.
impl serde::Serialize for ReasonName<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A code location: `nft_do_chain+0x1f4`, or the hex address (Display).
#[derive(Debug, Clone, Copy)]
pub enum Location<'a> {
    /// Resolved by the edge, as `function+0xoff`.
    Name(&'a str),
    /// A function and the offset into it.
    Symbol(&'a str, u64),
    Addr(u64),
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::Name(n) => f.write_str(n),
            Location::Symbol(n, off) => write!(f, "{n}+0x{off:x}"),
            Location::Addr(a) => write!(f, "0x{a:x}"),
        }
    }
}

/// Written as a JSON string, without an intermediate `String`.
impl serde::Serialize for Location<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// [`icmp_error_name`], written where it goes (Display).
#[derive(Debug, Clone, Copy)]
pub struct IcmpErrorName {
    pub v6: bool,
    pub kind: u8,
    pub code: u8,
}

impl fmt::Display for IcmpErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match icmp_error_str(self.v6, self.kind, self.code) {
            Some(s) => f.write_str(s),
            None => write!(f, "type {} code {}", self.kind, self.code),
        }
    }
}

impl serde::Serialize for IcmpErrorName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What an ICMP error says, in words (`port unreachable`, `time exceeded`).
pub fn icmp_error_name(v6: bool, kind: u8, code: u8) -> String {
    IcmpErrorName { v6, kind, code }.to_string()
}

/// The words of a known ICMP error.
fn icmp_error_str(v6: bool, kind: u8, code: u8) -> Option<&'static str> {
    let s = match (v6, kind, code) {
        (false, 3, 0) => "net unreachable",
        (false, 3, 1) => "host unreachable",
        (false, 3, 2) => "protocol unreachable",
        (false, 3, 3) => "port unreachable",
        (false, 3, 4) => "fragmentation needed",
        (false, 3, 13) => "administratively prohibited",
        (false, 3, _) => "destination unreachable",
        (false, 11, 0) => "time exceeded (TTL)",
        (false, 11, _) => "time exceeded (reassembly)",
        (false, 5, _) => "redirect",
        (false, 12, _) => "parameter problem",
        (true, 1, 0) => "no route",
        (true, 1, 1) => "administratively prohibited",
        (true, 1, 3) => "address unreachable",
        (true, 1, 4) => "port unreachable",
        (true, 1, _) => "destination unreachable",
        (true, 2, _) => "packet too big",
        (true, 3, _) => "time exceeded (hop limit)",
        (true, 4, _) => "parameter problem",
        _ => return None,
    };
    Some(s)
}

/// `ENETUNREACH` and friends for route lookup errors (negative errno).
pub fn errno_name(err: i32) -> String {
    ErrnoName(err).to_string()
}

/// [`errno_name`], written where it goes (Display).
#[derive(Debug, Clone, Copy)]
pub struct ErrnoName(pub i32);

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.0.checked_neg().unwrap_or(0) {
            101 => "ENETUNREACH",
            113 => "EHOSTUNREACH",
            13 => "EACCES",
            // fib_table_lookup: no route in this table (the next is tried).
            11 => "no match (EAGAIN)",
            22 => "EINVAL",
            1 => "EPERM",
            n => return write!(f, "errno {n}"),
        };
        f.write_str(s)
    }
}

impl serde::Serialize for ErrnoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A neighbour transition in words (`resolving`, `reachable`, `failed`).
pub fn neigh_state_name(state: u8) -> &'static str {
    match state {
        0x01 => "resolving",
        0x02 => "reachable",
        0x04 => "stale",
        0x08 => "delay",
        0x10 => "probe",
        0x20 => "failed",
        0x40 => "noarp",
        0x80 => "permanent",
        _ => "other",
    }
}

/// Events lost, as every mode counts them (the explorer's status bar, its
/// exit line, the trace's summary): those the full ring buffer refused plus
/// those dropped while processing lagged, and where they went.
pub fn lost_phrase(ring_full: u64, lagged: u64) -> String {
    let mut s = format!("{} lost", ring_full + lagged);
    match (ring_full, lagged) {
        (0, 0) => {}
        (r, 0) => s.push_str(&format!(
            " ({r} with the ring buffer full: raise --ring-size)"
        )),
        (0, l) => s.push_str(&format!(" ({l} while processing lagged)")),
        (r, l) => s.push_str(&format!(
            " ({r} with the ring buffer full: raise --ring-size; {l} while processing lagged)"
        )),
    }
    s
}
