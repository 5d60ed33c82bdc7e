//! A packet's first bytes (`--snaplen`), as the kernel copied them where its
//! headers were sent in full: at its first sighting, and again where NAT,
//! encapsulation or decapsulation changed them.
//!
//! A hop's bytes are those of its packet's latest snapshot taken at or
//! before the hop ([`Snapshots::at`]): between two snapshots nothing
//! rewrote the headers (the kernel compared them, `hs_win_hash`).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::PacketId;

/// Where a snapshot's bytes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Framing {
    /// At an Ethernet header.
    Ethernet,
    /// At the network header: devices without a link-layer header (tun,
    /// ipip, wireguard) or a frame not built yet.
    RawIp,
}

/// The first bytes of one packet at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub packet: PacketId,
    /// The `ts_ns` of the event whose headers these bytes are.
    pub ts_ns: u64,
    pub framing: Framing,
    /// The whole frame's length from where `bytes` start (at least
    /// `bytes.len()`; more when the snaplen or the linear data cut it).
    pub orig_len: u32,
    pub bytes: Vec<u8>,
}

/// Snapshots kept per packet, at most this many packets' (oldest go first).
pub const KEPT_PACKETS: usize = 65_536;
/// Snapshots kept of one packet: its first sighting and the rewrites after
/// it (a packet through NAT and a tunnel has four or five).
pub const PER_PACKET: usize = 8;

/// Bytes of snapshots kept, at most (their data and bookkeeping).
pub const MAX_BYTES: usize = 64 << 20;
/// What one snapshot costs besides its bytes (its fields, its place).
const OVERHEAD: usize = 64;

/// The snapshots of recent packets, bounded: [`KEPT_PACKETS`] packets of
/// at most [`PER_PACKET`] snapshots each, and [`MAX_BYTES`] in all (the
/// oldest packets' go first).
#[derive(Debug, Default)]
pub struct Snapshots {
    by_packet: FxHashMap<PacketId, Vec<Snapshot>>,
    /// Packets in the order their first snapshot came (eviction order).
    order: VecDeque<PacketId>,
    /// Bytes kept (see [`MAX_BYTES`]).
    bytes: usize,
}

fn cost(s: &Snapshot) -> usize {
    s.bytes.len() + OVERHEAD
}

impl Snapshots {
    /// Keeps `s`, forgetting the oldest packet's when full.
    pub fn add(&mut self, s: Snapshot) {
        let packet = s.packet;
        self.bytes += cost(&s);
        if let Some(v) = self.by_packet.get_mut(&packet) {
            if v.len() >= PER_PACKET {
                let gone = v.remove(1);
                self.bytes -= cost(&gone);
            }
            v.push(s);
        } else {
            self.order.push_back(packet);
            self.by_packet.insert(packet, vec![s]);
        }
        while self.order.len() > KEPT_PACKETS || self.bytes > MAX_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.forget(old);
        }
    }

    /// The bytes `packet` had at `ts_ns`: its latest snapshot taken at or
    /// before then (its first one, if all are later).
    pub fn at(&self, packet: PacketId, ts_ns: u64) -> Option<&Snapshot> {
        let v = self.by_packet.get(&packet)?;
        v.iter()
            .filter(|s| s.ts_ns <= ts_ns)
            .max_by_key(|s| s.ts_ns)
            .or_else(|| v.iter().min_by_key(|s| s.ts_ns))
    }

    /// Forgets `packet`'s snapshots (it was written out, or ended).
    /// Its entry in the eviction order goes when it reaches the front
    /// (ids are never reused), so this is O(1).
    pub fn forget(&mut self, packet: PacketId) {
        if let Some(v) = self.by_packet.remove(&packet) {
            self.bytes -= v.iter().map(cost).sum::<usize>();
        }
    }

    /// Bytes kept (at most [`MAX_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets with snapshots kept.
    pub fn len(&self) -> usize {
        self.by_packet.len()
    }

    /// No snapshot kept.
    pub fn is_empty(&self) -> bool {
        self.by_packet.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(packet: u64, ts_ns: u64, b: u8) -> Snapshot {
        Snapshot {
            packet: PacketId(packet),
            ts_ns,
            framing: Framing::Ethernet,
            orig_len: 60,
            bytes: vec![b; 4],
        }
    }

    #[test]
    fn a_hop_gets_the_latest_snapshot_at_or_before_it() {
        let mut s = Snapshots::default();
        s.add(snap(1, 100, 1));
        s.add(snap(1, 300, 2));
        assert_eq!(s.at(PacketId(1), 100).unwrap().bytes, vec![1; 4]);
        assert_eq!(s.at(PacketId(1), 299).unwrap().bytes, vec![1; 4]);
        assert_eq!(s.at(PacketId(1), 300).unwrap().bytes, vec![2; 4]);
        assert_eq!(s.at(PacketId(1), 50).unwrap().bytes, vec![1; 4]);
        assert!(s.at(PacketId(2), 100).is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let mut s = Snapshots::default();
        for p in 0..(KEPT_PACKETS as u64 + 10) {
            s.add(snap(p, p, 0));
        }
        assert_eq!(s.len(), KEPT_PACKETS);
        assert!(s.at(PacketId(0), 0).is_none());
        for t in 0..20 {
            s.add(snap(5_000, t, 0));
        }
        assert_eq!(s.by_packet[&PacketId(5_000)].len(), PER_PACKET);
        // The first sighting's bytes stay, and the newest.
        assert_eq!(s.by_packet[&PacketId(5_000)][0].ts_ns, 5_000);
        assert_eq!(s.at(PacketId(5_000), 100).unwrap().ts_ns, 19);
        let kept: usize = s.by_packet.values().flatten().map(cost).sum();
        assert_eq!(s.bytes(), kept);
        // Large snapshots: the byte budget holds.
        let mut s = Snapshots::default();
        for p in 0..100_000u64 {
            s.add(Snapshot {
                bytes: vec![0; 2048],
                ..snap(p, p, 0)
            });
        }
        assert!(s.bytes() <= MAX_BYTES, "{}", s.bytes());
        assert!(s.at(PacketId(99_999), 99_999).is_some());
        assert!(s.at(PacketId(0), 0).is_none());
    }
}
