//! pcapng, Wireshark's capture format, of every hop of every packet: the
//! same packet on each device it crossed, across namespaces, side by side.
//!
//! Written as the pcapng specification (IETF draft-ietf-opsawg-pcapng)
//! describes it, little-endian:
//! - one Section Header Block (`shb_userappl`: hopscope and its version);
//! - an Interface Description Block per (namespace, device, framing) as it
//!   first appears: link type Ethernet (1) or raw IP (101, devices without
//!   a link-layer header), `if_name` `<namespace>/<device>` (the namespace's
//!   inode where it has no name), `if_description` with the device's kind,
//!   veth peer, master and namespace inode, `if_tsresol` nanoseconds;
//! - an Enhanced Packet Block per visit (a packet on a device), with its
//!   time a capture on the device sees it ([`Visit::tap_ts`], so packets
//!   crossing on one device are in tcpdump's order; CLOCK_MONOTONIC moved
//!   to the wall clock), the bytes
//!   of the packet's snapshot that applies there
//!   ([`crate::event::snapshot`]), `epb_flags` inbound or outbound,
//!   `epb_packetid` the packet id (Wireshark: `frame.packet_id`), and an
//!   `opt_comment` naming the packet, its hop, hooks, flow and role, the
//!   NAT that rewrote it, and on its last hop how it ended.
//!
//! Packets are written when they end, so a packet's hops are held back
//! [`REORDER_WINDOW_NS`] and written in time order, as a capture's are.
//!
//! Pure: it writes into any `io::Write` and reuses its buffers.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rustc_hash::FxHashMap;

use super::{describe_outcome, DropContext};
use crate::correlate::{Flow, Packet, Sink, Visit};
use crate::event::record::Tick;
use crate::event::snapshot::{Framing, Snapshot, Snapshots};
use crate::event::{Device, Hook, HopEvent};
use crate::facts::{Fact, FactSink, FactTable};
use crate::select::Filter;
use crate::topology::TopologyView;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// `LINKTYPE_RAW`: raw IPv4 or IPv6.
pub const LINKTYPE_RAW: u16 = 101;

const BLOCK_SHB: u32 = 0x0A0D_0D0A;
const BLOCK_IDB: u32 = 1;
const BLOCK_EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;
const EPB_PACKETID: u16 = 5;
const EPB_INBOUND: u32 = 1;
const EPB_OUTBOUND: u32 = 2;
/// A hop is written once this long has passed since it (and its packet
/// ended): hops of packets that end out of order are put back in order.
pub const REORDER_WINDOW_NS: u64 = 500_000_000;
/// Hops held for reordering, at most (the oldest go out beyond).
const MAX_PENDING: usize = 65_536;

/// Interfaces per section: past this many a new section starts (interface
/// ids are per section), so the table stays bounded.
const MAX_INTERFACES: usize = 65_536;

/// What a writer wrote and what it could not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapngStats {
    /// Packets written (at least one of their hops had bytes).
    pub packets: u64,
    /// Hops written (Enhanced Packet Blocks).
    pub hops: u64,
    /// Hops left out: no snapshot of their packet was kept (its first
    /// sighting was before the run, or its snapshot was lost).
    pub hops_without_bytes: u64,
}

/// Writes packets' hops as pcapng blocks (see the module doc).
pub struct PcapngWriter<W: Write> {
    out: W,
    /// (netns, ifindex, framing) → interface id in this section.
    interfaces: FxHashMap<(u32, u32, Framing), u32>,
    block: Vec<u8>,
    text: String,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, in ns.
    realtime_offset_ns: i64,
    snaplen: u32,
    /// Enhanced Packet Blocks waiting for their turn, by (time, arrival).
    pending: BTreeMap<(u64, u64), Vec<u8>>,
    seq: u64,
    /// Buffers of blocks written, for the next ones.
    spare: Vec<Vec<u8>>,
    /// What was written so far.
    pub stats: PcapngStats,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a file: its Section Header Block. Times are moved to the wall
    /// clock by `realtime_offset_ns`; `snaplen` goes into every interface.
    pub fn new(out: W, realtime_offset_ns: i64, snaplen: u32) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            interfaces: FxHashMap::default(),
            block: Vec::with_capacity(4096),
            text: String::new(),
            realtime_offset_ns,
            snaplen,
            pending: BTreeMap::new(),
            seq: 0,
            spare: Vec::new(),
            stats: PcapngStats::default(),
        };
        w.section()?;
        Ok(w)
    }

    fn section(&mut self) -> io::Result<()> {
        self.interfaces.clear();
        let b = &mut self.block;
        b.clear();
        put32(b, BLOCK_SHB);
        put32(b, 0);
        put32(b, BYTE_ORDER_MAGIC);
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        // Section length: not given.
        b.extend_from_slice(&(-1i64).to_le_bytes());
        let appl = concat!("hopscope ", env!("CARGO_PKG_VERSION"));
        option(b, SHB_USERAPPL, appl.as_bytes());
        self.finish_block()
    }

    /// Queues the hops of `p` that have bytes in `snaps`, one block per
    /// visit, with names from `topo` and the end's names from `drops`
    /// (written by [`PcapngWriter::release`]).
    pub fn packet(
        &mut self,
        p: &Packet,
        snaps: &Snapshots,
        topo: &dyn TopologyView,
        drops: &DropContext,
    ) -> io::Result<()> {
        let n = p.visits.len();
        let mut wrote = false;
        for (i, v) in p.visits.iter().enumerate() {
            let Some(snap) = snaps.at(p.id, v.first_ts) else {
                self.stats.hops_without_bytes += 1;
                continue;
            };
            let iface = self.interface(&v.device, snap.framing, topo)?;
            self.comment(p, v, i, n, drops);
            self.epb(iface, v, snap, p.id.0)?;
            wrote = true;
        }
        if wrote {
            self.stats.packets += 1;
        }
        Ok(())
    }

    /// Writes the hops at least [`REORDER_WINDOW_NS`] older than `now`
    /// (CLOCK_MONOTONIC; `u64::MAX`: all of them) and flushes.
    pub fn release(&mut self, now: u64) -> io::Result<()> {
        let horizon = now.saturating_sub(REORDER_WINDOW_NS);
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > horizon && now != u64::MAX {
                break;
            }
            let block = entry.remove();
            self.write_pending(block)?;
        }
        self.out.flush()
    }

    fn write_pending(&mut self, block: Vec<u8>) -> io::Result<()> {
        let res = self.out.write_all(&block);
        if self.spare.len() < 64 {
            self.spare.push(block);
        }
        res
    }

    /// The interface id of `dev` with `framing`, its block written first
    /// if it is new.
    fn interface(
        &mut self,
        dev: &Device,
        framing: Framing,
        topo: &dyn TopologyView,
    ) -> io::Result<u32> {
        let key = (dev.netns.0, dev.ifindex.0, framing);
        if let Some(id) = self.interfaces.get(&key) {
            return Ok(*id);
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            self.section()?;
        }
        let id = self.interfaces.len() as u32;
        let name = match topo.netns_name(dev.netns.0) {
            Some(ns) => format!("{ns}/{}", dev.ifname),
            None => format!("{}/{}", dev.netns.0, dev.ifname),
        };
        let mut desc = String::new();
        {
            use std::fmt::Write as _;
            let place = |r: &crate::topology::links::LinkRef| match topo.netns_name(r.netns) {
                Some(ns) => format!("{ns}/{}", r.ifname),
                None => format!("{}/{}", r.netns, r.ifname),
            };
            if let Some(l) = topo.link(dev.netns.0, dev.ifindex.0) {
                if let Some(k) = &l.kind_name {
                    let _ = write!(desc, "{k}, ");
                }
                if let Some(peer) = &l.peer {
                    let _ = write!(desc, "peer {}, ", place(peer));
                }
                if let Some(m) = &l.master {
                    let _ = write!(desc, "master {}, ", m.ifname);
                }
                if let Some(p) = &l.parent {
                    let _ = write!(desc, "lower {}, ", place(p));
                }
            }
            let _ = write!(desc, "ifindex {}, netns {}", dev.ifindex.0, dev.netns.0);
            if framing == Framing::RawIp {
                desc.push_str(", no link-layer header");
            }
        }
        let b = &mut self.block;
        b.clear();
        put32(b, BLOCK_IDB);
        put32(b, 0);
        let link = match framing {
            Framing::Ethernet => LINKTYPE_ETHERNET,
            Framing::RawIp => LINKTYPE_RAW,
        };
        b.extend_from_slice(&link.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        put32(b, self.snaplen);
        option(b, IF_NAME, name.as_bytes());
        option(b, IF_DESCRIPTION, desc.as_bytes());
        option(b, IF_TSRESOL, &[9]);
        self.finish_block()?;
        self.interfaces.insert(key, id);
        Ok(id)
    }

    /// The visit's comment, into `self.text`.
    fn comment(&mut self, p: &Packet, v: &Visit, i: usize, n: usize, drops: &DropContext) {
        use std::fmt::Write as _;
        let t = &mut self.text;
        t.clear();
        let _ = write!(t, "hopscope: packet {} hop {}/{n}", p.id.0, i + 1);
        if let Some(f) = p.flow {
            let _ = write!(t, " · flow {}", f.0);
        }
        if let Some(r) = p.role {
            let _ = write!(t, " {}", r.name());
        }
        t.push_str(" · ");
        for (k, h) in v.hooks.iter().enumerate() {
            if k > 0 {
                t.push('+');
            }
            t.push_str(h.name());
        }
        if let Some(rw) = v.rewrite {
            let _ = write!(t, " · {rw}");
        }
        if v.inferred {
            t.push_str(" · inferred: no tracepoint saw this step");
        }
        if i + 1 == n {
            t.push_str(" · ");
            describe_outcome(p, drops, t);
        }
    }

    fn epb(&mut self, iface: u32, v: &Visit, snap: &Snapshot, packet: u64) -> io::Result<()> {
        let ts = (v.tap_ts as i64)
            .saturating_add(self.realtime_offset_ns)
            .max(0) as u64;
        let bytes = &snap.bytes[..snap.bytes.len().min(self.snaplen.max(1) as usize)];
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        put32(&mut b, BLOCK_EPB);
        put32(&mut b, 0);
        put32(&mut b, iface);
        put32(&mut b, (ts >> 32) as u32);
        put32(&mut b, ts as u32);
        put32(&mut b, bytes.len() as u32);
        put32(&mut b, snap.orig_len.max(bytes.len() as u32));
        b.extend_from_slice(bytes);
        pad(&mut b);
        let tx = [Hook::NetDevQueue, Hook::NetDevXmit, Hook::NetDevStartXmit];
        let rx = [Hook::NetifRx, Hook::NetifReceiveSkb, Hook::NapiGroReceive];
        let dir = if tx.iter().any(|h| v.hooks.contains(*h)) {
            EPB_OUTBOUND
        } else if rx.iter().any(|h| v.hooks.contains(*h)) {
            EPB_INBOUND
        } else {
            0
        };
        if dir != 0 {
            option(&mut b, EPB_FLAGS, &dir.to_le_bytes());
        }
        option(&mut b, EPB_PACKETID, &packet.to_le_bytes());
        option(&mut b, OPT_COMMENT, self.text.as_bytes());
        end_block(&mut b);
        self.stats.hops += 1;
        self.seq += 1;
        self.pending.insert((v.tap_ts, self.seq), b);
        while self.pending.len() > MAX_PENDING {
            if let Some((_, block)) = self.pending.pop_first() {
                self.write_pending(block)?;
            }
        }
        Ok(())
    }

    /// Ends the options and the block in `self.block`, fills in its length
    /// and writes it.
    fn finish_block(&mut self) -> io::Result<()> {
        end_block(&mut self.block);
        self.out.write_all(&self.block)
    }
}

/// Ends a block's options, and fills in its length at both ends.
fn end_block(b: &mut Vec<u8>) {
    b.extend_from_slice(&OPT_END.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    let len = (b.len() + 4) as u32;
    b[4..8].copy_from_slice(&len.to_le_bytes());
    put32(b, len);
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn pad(b: &mut Vec<u8>) {
    while b.len() % 4 != 0 {
        b.push(0);
    }
}

/// One option: code, length, value padded to 32 bits. Values longer than
/// an option can say are cut (comments, names: never in practice).
fn option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX) - 3)];
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    pad(b);
}

/// The pipeline's pcapng sink: keeps the snapshots and the facts it is
/// given, and writes each packet it shows when it ends.
pub struct PcapngSink<W: Write> {
    writer: PcapngWriter<W>,
    snaps: Snapshots,
    topo: FactTable,
    drops: DropContext,
    filter: Filter,
    /// The first write error; writing stopped there.
    pub error: Option<io::Error>,
}

impl<W: Write> PcapngSink<W> {
    /// A sink writing into `writer` the packets `filter` shows.
    pub fn new(writer: PcapngWriter<W>, filter: Filter) -> Self {
        PcapngSink {
            writer,
            snaps: Snapshots::default(),
            topo: FactTable::default(),
            drops: DropContext::default(),
            filter,
            error: None,
        }
    }

    /// What was written.
    pub fn stats(&self) -> PcapngStats {
        self.writer.stats
    }

    /// Writes the hops whose reorder window passed at `now` (`u64::MAX`:
    /// all) and flushes, keeping the first error.
    pub fn release(&mut self, now: u64) {
        if self.error.is_none() {
            if let Err(e) = self.writer.release(now) {
                self.error = Some(e);
            }
        }
    }
}

impl<W: Write> FactSink for PcapngSink<W> {
    fn fact(&mut self, fact: &Fact) {
        self.topo.learn(fact);
        self.drops.learn(fact);
    }

    fn shows_hop(
        &self,
        _ev: &HopEvent,
        _ctx: &crate::correlate::HopContext,
        _f: Option<&Flow>,
    ) -> bool {
        false
    }

    fn shows_annotation(
        &self,
        _ev: &HopEvent,
        _at: &crate::correlate::Annotation,
        _f: Option<&Flow>,
    ) -> bool {
        false
    }

    fn shows_packet(&self, p: &Packet, flow: Option<&Flow>) -> bool {
        self.filter.packet(p, flow)
    }

    fn tick(&mut self, tick: &Tick, _in_flight: u64) {
        self.release(tick.now_ns);
    }

    fn snapshot(&mut self, s: &Snapshot) {
        self.snaps.add(s.clone());
    }
}

impl<W: Write> Sink for PcapngSink<W> {
    fn packet_done(&mut self, p: &Packet, flow: Option<&Flow>) {
        if self.error.is_none() && self.filter.packet(p, flow) {
            if let Err(e) = self.writer.packet(p, &self.snaps, &self.topo, &self.drops) {
                self.error = Some(e);
            }
        }
        self.snaps.forget(p.id);
    }
}

#[cfg(test)]
mod tests {
    //! What the writer writes, read back by another implementation of the
    //! format (pcap-parser's reader), block by block and option by option.

    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::PcapReaderIterator;
    use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};

    use super::*;
    use crate::correlate::{FlowId, HookSet, Outcome, Role};
    use crate::event::{IfIndex, NetnsId, PacketId, ShortName};

    fn dev(netns: u32, ifindex: u32, name: &str) -> Device {
        Device {
            netns: NetnsId(netns),
            netns_cookie: 0,
            ifindex: IfIndex(ifindex),
            ifname: ShortName::from_bytes(name.as_bytes()),
        }
    }

    fn visit(d: Device, hooks: &[Hook], ts: u64) -> Visit {
        let mut set = HookSet::default();
        for h in hooks {
            set.insert(*h);
        }
        Visit {
            device: d,
            hooks: set,
            first_ts: ts,
            last_ts: ts,
            tap_ts: ts,
            len: 84,
            headers: None,
            xmit_rc: None,
            task: None,
            rewrite: None,
            outer: None,
            inferred: false,
        }
    }

    fn packet(id: u64, visits: Vec<Visit>, outcome: Outcome) -> Packet {
        Packet {
            id: PacketId(id),
            flow: Some(FlowId(3)),
            role: Some(Role::Request),
            headers: None,
            first_ts: visits[0].first_ts,
            last_ts: visits[visits.len() - 1].last_ts,
            visits,
            visits_dropped: 0,
            events: 0,
            copy_of: None,
            sender: None,
            receiver: None,
            end: None,
            icmp_error: None,
            route_error: None,
            current: None,
            socket: None,
            segment_of: None,
            segmented: None,
            end_device: None,
            end_outside: false,
            coalesced_into: None,
            outcome,
        }
    }

    /// Every block of `bytes`, as pcap-parser reads it: (kind, fields).
    fn read_back(bytes: &[u8]) -> Vec<String> {
        let mut r = PcapNGReader::new(65536, bytes).expect("a pcapng section header");
        let mut out = Vec::new();
        loop {
            match r.next() {
                Ok((n, block)) => {
                    if let PcapBlockOwned::NG(b) = block {
                        out.push(match b {
                            Block::SectionHeader(s) => format!(
                                "shb {}.{} {:?}",
                                s.major_version,
                                s.minor_version,
                                s.options
                                    .iter()
                                    .filter(|o| o.code.0 != OPT_END)
                                    .map(|o| String::from_utf8_lossy(o.as_bytes().unwrap()).into_owned())
                                    .collect::<Vec<_>>()
                            ),
                            Block::InterfaceDescription(i) => format!(
                                "idb {} snaplen {} tsresol {:?} {:?}",
                                i.linktype.0,
                                i.snaplen,
                                i.ts_resolution(),
                                i.options
                                    .iter()
                                    .filter(|o| o.code.0 == IF_NAME || o.code.0 == IF_DESCRIPTION)
                                    .map(|o| String::from_utf8_lossy(o.as_bytes().unwrap()).into_owned())
                                    .collect::<Vec<_>>()
                            ),
                            Block::EnhancedPacket(e) => {
                                let opt = |code: u16| {
                                    e.options
                                        .iter()
                                        .find(|o| o.code.0 == code)
                                        .map(|o| o.as_bytes().unwrap().to_vec())
                                };
                                let flags = opt(EPB_FLAGS).map(|b| u32::from_le_bytes(b[..4].try_into().unwrap()));
                                let id = opt(EPB_PACKETID).map(|b| u64::from_le_bytes(b[..8].try_into().unwrap()));
                                let comment = opt(OPT_COMMENT).map(|b| String::from_utf8(b).unwrap());
                                format!(
                                    "epb if {} ts {} caplen {} origlen {} data {:?} flags {flags:?} id {id:?} {comment:?}",
                                    e.if_id,
                                    (u64::from(e.ts_high) << 32) | u64::from(e.ts_low),
                                    e.caplen,
                                    e.origlen,
                                    &e.data[..e.caplen as usize],
                                )
                            }
                            other => format!("other {other:?}"),
                        });
                    }
                    r.consume(n);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => {
                    r.refill().expect("refill");
                }
                Err(e) => panic!("pcap-parser: {e:?} after {out:#?}"),
            }
        }
        out
    }

    #[test]
    fn blocks_and_options_read_back_as_written() {
        let (c1, br) = (dev(7, 2, "eth0"), dev(8, 5, "vc1"));
        let mut snaps = Snapshots::default();
        // Ethernet at the first sighting; raw IP after a rewrite (3 bytes:
        // the block pads them).
        snaps.add(Snapshot {
            packet: PacketId(42),
            ts_ns: 1_000,
            framing: Framing::Ethernet,
            orig_len: 98,
            bytes: vec![1, 2, 3, 4, 5],
        });
        snaps.add(Snapshot {
            packet: PacketId(42),
            ts_ns: 3_000,
            framing: Framing::RawIp,
            orig_len: 84,
            bytes: vec![9, 9, 9],
        });
        let p = packet(
            42,
            vec![
                visit(c1, &[Hook::NetDevQueue, Hook::NetDevXmit], 1_000),
                visit(br, &[Hook::NetifRx, Hook::NetifReceiveSkb], 2_000),
                visit(br, &[Hook::NetifReceiveSkb], 3_000),
                visit(c1, &[Hook::ConsumeSkb], 4_000),
            ],
            Outcome::Consumed,
        );
        // A hop before any snapshot of its packet is left out, counted.
        let early = packet(
            43,
            vec![visit(c1, &[Hook::NetifRx], 500)],
            Outcome::Consumed,
        );
        let mut topo = FactTable::default();
        topo.learn(&Fact::NetnsName {
            inode: 7,
            name: "hs-c1".to_owned(),
        });
        let mut w = PcapngWriter::new(Vec::new(), 1_000_000_000, 128).unwrap();
        w.packet(&p, &snaps, &topo, &DropContext::default())
            .unwrap();
        w.packet(&early, &snaps, &topo, &DropContext::default())
            .unwrap();
        w.release(u64::MAX).unwrap();
        assert_eq!(
            w.stats,
            PcapngStats {
                packets: 1,
                hops: 4,
                hops_without_bytes: 1
            }
        );
        let got = read_back(&w.out);
        let want = [
            format!("shb 1.0 [\"hopscope {}\"]", env!("CARGO_PKG_VERSION")),
            "idb 1 snaplen 128 tsresol Some(1000000000) [\"hs-c1/eth0\", \"ifindex 2, netns 7\"]".to_owned(),
            "idb 1 snaplen 128 tsresol Some(1000000000) [\"8/vc1\", \"ifindex 5, netns 8\"]".to_owned(),
            "idb 101 snaplen 128 tsresol Some(1000000000) [\"8/vc1\", \"ifindex 5, netns 8, no link-layer header\"]".to_owned(),
            // One interface block per (namespace, device, framing).
            "idb 101 snaplen 128 tsresol Some(1000000000) [\"hs-c1/eth0\", \"ifindex 2, netns 7, no link-layer header\"]".to_owned(),
            "epb if 0 ts 1000001000 caplen 5 origlen 98 data [1, 2, 3, 4, 5] flags Some(2) id Some(42) Some(\"hopscope: packet 42 hop 1/4 · flow 3 request · net_dev_queue+net_dev_xmit\")".to_owned(),
            "epb if 1 ts 1000002000 caplen 5 origlen 98 data [1, 2, 3, 4, 5] flags Some(1) id Some(42) Some(\"hopscope: packet 42 hop 2/4 · flow 3 request · netif_rx+netif_receive_skb\")".to_owned(),
            "epb if 2 ts 1000003000 caplen 3 origlen 84 data [9, 9, 9] flags Some(1) id Some(42) Some(\"hopscope: packet 42 hop 3/4 · flow 3 request · netif_receive_skb\")".to_owned(),
            "epb if 3 ts 1000004000 caplen 3 origlen 84 data [9, 9, 9] flags None id Some(42) Some(\"hopscope: packet 42 hop 4/4 · flow 3 request · consume_skb · consumed\")".to_owned(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn hops_are_written_in_time_order_once_their_window_passed() {
        let d = dev(7, 2, "eth0");
        let mut snaps = Snapshots::default();
        for id in [1u64, 2] {
            snaps.add(Snapshot {
                packet: PacketId(id),
                ts_ns: 0,
                framing: Framing::Ethernet,
                orig_len: 60,
                bytes: vec![id as u8],
            });
        }
        let mut w = PcapngWriter::new(Vec::new(), 0, 128).unwrap();
        let t0 = 10 * REORDER_WINDOW_NS;
        // Packet 2 ends first, though its hop came later.
        let later = packet(
            2,
            vec![visit(d, &[Hook::NetifRx], t0 + 5)],
            Outcome::Consumed,
        );
        let earlier = packet(
            1,
            vec![visit(d, &[Hook::NetifRx], t0 + 1)],
            Outcome::Consumed,
        );
        w.packet(
            &later,
            &snaps,
            &FactTable::default(),
            &DropContext::default(),
        )
        .unwrap();
        w.packet(
            &earlier,
            &snaps,
            &FactTable::default(),
            &DropContext::default(),
        )
        .unwrap();
        w.release(t0 + REORDER_WINDOW_NS).unwrap();
        assert_eq!(read_back(&w.out).len(), 2, "not yet: only the headers");
        w.release(t0 + REORDER_WINDOW_NS + 5).unwrap();
        let ids: Vec<String> = read_back(&w.out)
            .into_iter()
            .filter(|b| b.starts_with("epb"))
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(
            ids[0].contains("data [1]") && ids[1].contains("data [2]"),
            "{ids:#?}"
        );
    }
}
