//! Text lines in the style of the tracepkt seed, one per visit:
//!
//! ```text
//! [  4026532258]             eth0 request #17146.001 198.18.0.2 -> 198.18.0.3
//! [  4026532260]              vc1 request #17146.001 198.18.0.2 -> 198.18.0.3 +9.1µs
//! ```
//!
//! Lines of one packet are printed together when the packet ends, with the
//! time since the previous visit and the outcome on the last line; its
//! first line names it (`packet 17`), so lines that refer to it ("copy of
//! packet 17", "because of packet 17") can be followed. Blocks are printed
//! in time order (a packet by its first sighting, an annotation by its
//! time) once [`REORDER_WINDOW_NS`] has passed. With `all_hooks`, every
//! hook is printed as it arrives instead.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{describe, describe_outcome, describe_outer, fmt_duration, DropContext, Filter};
use crate::correlate::{Annotation, Flow, HopContext, Outcome, Packet, Role, Sink};
use crate::event::{Device, Hook, HookData, HopEvent, RouteResult};
use crate::facts::{Fact, FactSink, FactTable};
use crate::safe_text::{shown, Shown};
use crate::topology::TopologyView;

/// A packet is printed once this long has passed since its first sighting
/// (and it ended): packets that end out of order are put back in order.
pub const REORDER_WINDOW_NS: u64 = 500_000_000;
/// Blocks held for reordering, at most (the oldest go out beyond).
const MAX_PENDING: usize = 16_384;

/// The sink of `hopscope trace` without `--json`: one line per packet
/// (its visits, role and outcome), per drop and per annotation, in the
/// order packets started (held up to [`REORDER_WINDOW_NS`]), with
/// `--all-hooks` a line per hop; names come from the facts it was given.
pub struct TextSink<W: Write> {
    out: W,
    all_hooks: bool,
    filter: Filter,
    /// Namespace names and bridge masters, as the edge gave them (none
    /// with `--inodes`: inodes only).
    topo: FactTable,
    /// Drop reason names, locations and hints.
    drops: DropContext,
    line: String,
    /// The lines of the block being rendered.
    block: String,
    /// Rendered blocks waiting for their turn, by (time, arrival), and
    /// whether each is a packet's.
    pending: BTreeMap<(u64, u64), (String, bool)>,
    seq: u64,
    /// Packets printed so far (written and flushed without error).
    pub printed: u64,
    /// Packets written since the last flush (counted once it succeeds).
    unflushed: u64,
    /// First write error; printing stops after one.
    pub error: Option<io::Error>,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, all_hooks: bool, filter: Filter) -> Self {
        TextSink {
            out,
            all_hooks,
            filter,
            topo: FactTable::default(),
            drops: DropContext::default(),
            line: String::with_capacity(256),
            block: String::with_capacity(1024),
            pending: BTreeMap::new(),
            seq: 0,
            printed: 0,
            unflushed: 0,
            error: None,
        }
    }

    /// Prints the blocks whose time is at least [`REORDER_WINDOW_NS`] before
    /// `now` (CLOCK_MONOTONIC; `u64::MAX` prints everything).
    pub fn release(&mut self, now: u64) {
        let horizon = now.saturating_sub(REORDER_WINDOW_NS);
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > horizon && now != u64::MAX {
                break;
            }
            let (text, packet) = entry.remove();
            self.write_block(&text, packet);
        }
    }

    /// Writes; false once a write failed (then nothing more is written).
    fn write(&mut self, bytes: &[u8]) -> bool {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
        self.error.is_none()
    }

    /// Writes a block; a packet's counts as printed only when written.
    fn write_block(&mut self, text: &str, packet: bool) {
        if self.write(text.as_bytes()) && packet {
            self.unflushed += 1;
        }
    }

    /// Queues the rendered block (a packet's, or an annotation's) for its
    /// turn at time `ts`.
    fn queue_block(&mut self, ts: u64, packet: bool) {
        let block = std::mem::take(&mut self.block);
        if block.is_empty() {
            return;
        }
        self.seq += 1;
        self.pending.insert((ts, self.seq), (block, packet));
        while self.pending.len() > MAX_PENDING {
            if let Some((_, (text, packet))) = self.pending.pop_first() {
                self.write_block(&text, packet);
            }
        }
    }

    /// Namespace names and links given so far.
    pub fn topology(&self) -> &FactTable {
        &self.topo
    }

    /// `[netns]` label and device text of one device: the namespace's name
    /// (else its inode), the interface and its bridge or bond master.
    fn place(&self, d: &Device) -> (String, String) {
        let t = &self.topo;
        let ns = t
            .netns_name(d.netns.0)
            .map_or_else(|| d.netns.0.to_string(), |n| shown(n).into_owned());
        let dev = match t
            .link(d.netns.0, d.ifindex.0)
            .and_then(|l| l.master.as_ref())
        {
            Some(m) => format!("{} (br {})", d.ifname, Shown(&m.ifname)),
            None => d.ifname.to_string(),
        };
        (ns, dev)
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// The line goes out at once (`all_hooks`) or into the block.
    fn emit_line(&mut self) {
        self.line.push('\n');
        if self.all_hooks {
            let line = std::mem::take(&mut self.line);
            self.write(line.as_bytes());
            self.line = line;
        } else {
            self.block.push_str(&self.line);
        }
        self.line.clear();
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

fn role_name(r: Option<Role>) -> &'static str {
    r.map_or("-", Role::name)
}

impl<W: Write> FactSink for TextSink<W> {
    fn fact(&mut self, fact: &Fact) {
        self.topo.learn(fact);
        self.drops.learn(fact);
    }

    /// Hops are lines of their own only with `all_hooks`.
    fn shows_hop(&self, ev: &HopEvent, _ctx: &HopContext, flow: Option<&Flow>) -> bool {
        self.all_hooks && self.filter.hop(ev, flow)
    }

    fn shows_annotation(&self, ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) -> bool {
        prints_annotation(ev) && self.filter.annotation(at.device, flow)
    }

    fn shows_packet(&self, p: &Packet, flow: Option<&Flow>) -> bool {
        self.filter.packet(p, flow)
    }
}

/// Route lookups are every routed packet: lines show them (JSON shows all)
/// only where they failed, not for a table without a match, where the next
/// one is tried.
fn prints_annotation(ev: &HopEvent) -> bool {
    !matches!(
        ev.data,
        HookData::Route {
            result: RouteResult::Found | RouteResult::NotInTable,
            ..
        }
    )
}

impl<W: Write> Sink for TextSink<W> {
    fn hop(&mut self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) {
        if !self.all_hooks || !self.filter.hop(ev, flow) {
            return;
        }
        use std::fmt::Write as _;
        let (ns, ifname) = match ev.device {
            Some(d) => self.place(&d),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let _ = write!(
            self.line,
            "[{ns:>12}] {ifname:>16} {:<23} {:<7} pkt {} ",
            ev.hook.name(),
            role_name(ctx.role),
            ev.packet.0
        );
        match ev.headers {
            Some(h) => describe(&h, &mut self.line),
            None => self.line.push_str("..."),
        }
        if let HookData::Freed {
            reason, location, ..
        } = ev.data
        {
            let name = self.drops.name(reason);
            let at = self.drops.location(location);
            let _ = write!(self.line, " {} at {}", Shown(&name), Shown(&at));
        }
        self.emit_line();
    }

    fn annotation(&mut self, ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) {
        if !self.filter.annotation(at.device, flow) {
            return;
        }
        if !prints_annotation(ev) {
            return;
        }
        let packet = at.packet;
        use std::fmt::Write as _;
        let (ns, dev) = match at.device.filter(|d| d.netns.0 != 0) {
            Some(d) => self.place(&d),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let _ = write!(self.line, "[{ns:>12}] {dev:>16} ");
        let v6 = matches!(
            ev.headers.map(|h| h.l3),
            Some(crate::event::L3::Ipv6 { .. })
        );
        let _ = match (ev.hook, ev.data) {
            (_, HookData::IcmpError { kind: t, code: c }) => {
                write!(
                    self.line,
                    "ICMP error sent: {} (type {t} code {c})",
                    super::icmp_error_name(v6, t, c)
                )
            }
            (Hook::TcpSendReset, _) => write!(self.line, "TCP reset sent"),
            (Hook::TcpReceiveReset, _) => write!(self.line, "TCP reset received"),
            (_, HookData::Route { table, result, .. }) => write!(
                self.line,
                "no route in table {table}: {}",
                super::errno_name(result.errno())
            ),
            (_, HookData::Neigh { new, .. }) => write!(
                self.line,
                "neighbour {} {}",
                ev.headers
                    .and_then(|h| h.l3.dst())
                    .map_or_else(|| "?".to_owned(), |a| a.to_string()),
                super::neigh_state_name(new)
            ),
            _ => write!(self.line, "TCP retransmission"),
        };
        if let Some(p) = packet {
            let _ = write!(self.line, " because of packet {}", p.0);
        }
        let ts = ev.ts_ns;
        match (ev.hook, ev.headers) {
            (Hook::Neigh, _) => {}
            (Hook::FibLookup, Some(h)) => {
                let _ = write!(
                    self.line,
                    " for {} -> {}",
                    super::Addr(h.l3.src()),
                    super::Addr(h.l3.dst())
                );
            }
            // From the socket: the connection, no segment (an active reset
            // has no segment that caused it either).
            (Hook::TcpReceiveReset | Hook::TcpRetransmit, Some(h))
            | (Hook::TcpSendReset, Some(h))
                if ev.hook != Hook::TcpSendReset || packet.is_none() =>
            {
                if let crate::event::L4::Tcp { sport, dport, .. } = h.l4 {
                    let _ = write!(
                        self.line,
                        ": tcp {} -> {}",
                        super::Sock(h.l3.src(), sport),
                        super::Sock(h.l3.dst(), dport)
                    );
                }
            }
            (_, Some(h)) => {
                self.line.push_str(": ");
                describe(&h, &mut self.line);
            }
            (_, None) => {}
        }
        self.emit_line();
        if !self.all_hooks {
            self.queue_block(ts, false);
        }
    }

    fn packet_done(&mut self, p: &Packet, flow: Option<&Flow>) {
        if !self.filter.packet(p, flow) {
            return;
        }
        if self.all_hooks {
            // Its lines went out as they came.
            if self.error.is_none() {
                self.unflushed += 1;
            }
            return;
        }
        use std::fmt::Write as _;
        let n = p.visits.len();
        let mut prev_ts = p.first_ts;
        let mut stack_id = 0;
        for (i, v) in p.visits.iter().enumerate() {
            let (ns, dev) = self.place(&v.device);
            let _ = write!(self.line, "[{ns:>12}] {dev:>16} {:<7} ", role_name(p.role));
            match v.headers.or(p.headers) {
                Some(h) => describe(&h, &mut self.line),
                None => self.line.push_str("..."),
            }
            if let Some(o) = v.outer {
                self.line.push(' ');
                describe_outer(&o, &mut self.line);
            }
            if let Some(rw) = v.rewrite {
                let _ = write!(self.line, " ({rw})");
            }
            if v.inferred {
                self.line
                    .push_str(" (inferred: no tracepoint saw this step)");
            }
            if i > 0 {
                self.line.push_str(" +");
                fmt_duration(v.first_ts.saturating_sub(prev_ts), &mut self.line);
            } else {
                let _ = write!(self.line, " · packet {}", p.id.0);
                if let Some(c) = p.copy_of {
                    let _ = write!(self.line, ", copy of packet {}", c.0);
                }
                if let Some((parent, k, n)) = p.segment_of {
                    let _ = write!(self.line, ", segment {k}/{n} of packet {}", parent.0);
                }
            }
            prev_ts = v.first_ts;
            if i + 1 == n {
                self.line.push_str(" → ");
                describe_outcome(p, &self.drops, &mut self.line);
                if let Outcome::Dropped { reason, stack, .. } = p.outcome {
                    stack_id = stack;
                    let vlan = p.headers.and_then(|h| h.vlan);
                    if let Some(h) =
                        self.drops
                            .hint(reason, &ns, &v.device.ifname.to_string(), vlan)
                    {
                        let _ = write!(self.line, "; {h}");
                    }
                }
                if p.end_outside {
                    match p.end_device {
                        Some(d) => {
                            let (ns, dev) = self.place(&d);
                            let _ = write!(self.line, " (in [{ns}] {dev}, outside the scope)");
                        }
                        None => self.line.push_str(" (outside the scope)"),
                    }
                }
            }
            self.emit_line();
        }
        if stack_id != 0 {
            if let Some(frames) = self.drops.stack(stack_id) {
                for f in frames {
                    self.line.push_str("    at ");
                    self.line.push_str(&shown(&f));
                    self.emit_line();
                }
            }
        }
        self.queue_block(p.first_ts, true);
    }
}
