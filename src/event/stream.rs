//! The ring buffer's record stream → [`HopEvent`]s.
//!
//! The kernel sends a packet's headers in full only where they change: at
//! its first sighting and where NAT, encapsulation or decapsulation rewrote
//! them. The device hops in between are compact records that name neither
//! headers nor device (`struct hs_hop`), and a device's name comes once, in
//! a record of its own (`struct hs_dev`). [`StreamDecoder`] keeps both, in
//! bounded tables, and gives every hop the headers and the name it had, so
//! that everything above sees whole events. Socket hops (`struct hs_sock`)
//! and ends (`struct hs_end`) carry no headers, as their full records never
//! did; they get their device's name the same way. Snapshots of packets'
//! first bytes (`struct hs_snap`, with `--snaplen`) are kept aside until
//! [`StreamDecoder::take_snapshots`].
//!
//! Pure (no I/O) and, once its tables are warm, allocation-free.

use rustc_hash::FxHashMap;

use super::decode::{decode, end_event, record_hook, snapshot, sock_event, DecodeError};
use super::snapshot::Snapshot;
use super::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, Link, NetnsId, Outer, PacketId, ShortName,
};
use crate::bpf::abi;

/// Packets whose headers are kept: a packet still crossing devices after
/// this many newer packets started loses them (its hops then show none).
pub const CARRIED_PACKETS: usize = 65_536;
/// Device names kept. The kernel sends a name once per CPU (its `hs_devs`
/// cache), so past this many devices in one run the table starts over and
/// hops on a device named before it show no name.
pub const MAX_DEVICES: usize = 65_536;

/// The headers a packet had where they were last sent in full.
#[derive(Debug, Clone, Copy)]
struct Carried {
    packet: u64,
    headers: Headers,
    outer: Option<Outer>,
}

/// Decodes the records of one ring buffer in order (see the module doc).
pub struct StreamDecoder {
    /// Headers by packet, in slots (see `slot_of`).
    carried: Vec<Option<Carried>>,
    /// (namespace inode, ifindex) → name and namespace cookie.
    devices: FxHashMap<(u32, u32), (ShortName, u64)>,
    /// Snapshots decoded since the last [`StreamDecoder::take_snapshots`].
    snapshots: Vec<Snapshot>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    /// An empty decoder, its tables allocated once, here.
    pub fn new() -> StreamDecoder {
        Self::with_slots(CARRIED_PACKETS)
    }

    /// A decoder that keeps the headers of `slots` packets (at least 1):
    /// [`CARRIED_PACKETS`] but in tests and fuzzing.
    pub fn with_slots(slots: usize) -> StreamDecoder {
        let mut devices = FxHashMap::default();
        devices.reserve(256);
        StreamDecoder {
            carried: vec![None; slots.max(1)],
            devices,
            snapshots: Vec::new(),
        }
    }

    /// Decodes one record: an event, or `Ok(None)` for a record that only
    /// informs the decoder (a device's name) or is kept aside (a snapshot).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Option<HopEvent>, DecodeError> {
        match abi::record_kind(bytes) {
            Some(abi::REC_HOP) => {
                let h = abi::read_hop(bytes).ok_or(DecodeError::Short {
                    got: bytes.len(),
                    want: std::mem::size_of::<abi::RawHop>(),
                })?;
                self.hop(&h).map(Some)
            }
            Some(abi::REC_SOCK) => {
                let r = abi::read_sock(bytes).ok_or(DecodeError::Short {
                    got: bytes.len(),
                    want: std::mem::size_of::<abi::RawSock>(),
                })?;
                sock_event(&r, self.name_of(r.netns_ino, r.ifindex)).map(Some)
            }
            Some(abi::REC_END) => {
                let r = abi::read_end(bytes).ok_or(DecodeError::Short {
                    got: bytes.len(),
                    want: std::mem::size_of::<abi::RawEnd>(),
                })?;
                let ev = end_event(&r, self.name_of(r.netns_ino, r.ifindex))?;
                self.forget(ev.packet.0);
                Ok(Some(ev))
            }
            Some(abi::REC_SNAP) => {
                self.snapshots.push(snapshot(bytes)?);
                Ok(None)
            }
            Some(abi::REC_DEV) => {
                let d = abi::read_dev(bytes).ok_or(DecodeError::Short {
                    got: bytes.len(),
                    want: std::mem::size_of::<abi::RawDev>(),
                })?;
                self.learn_device(
                    d.netns_ino,
                    d.ifindex,
                    ShortName::from_bytes(&d.ifname),
                    d.netns_cookie,
                );
                Ok(None)
            }
            _ => {
                let ev = decode(bytes)?;
                self.learn(&ev);
                Ok(Some(ev))
            }
        }
    }

    /// Moves the snapshots decoded so far to the end of `out`. The caller
    /// takes them after each record that decoded to nothing.
    pub fn take_snapshots(&mut self, out: &mut Vec<Snapshot>) {
        out.append(&mut self.snapshots);
    }

    fn learn_device(&mut self, netns: u32, ifindex: u32, name: ShortName, cookie: u64) {
        if name.is_empty() {
            return;
        }
        if self.devices.len() >= MAX_DEVICES && !self.devices.contains_key(&(netns, ifindex)) {
            // Tens of thousands of devices: start over (see MAX_DEVICES).
            self.devices.clear();
        }
        self.devices.insert((netns, ifindex), (name, cookie));
    }

    /// What a full record tells about later compact ones.
    fn learn(&mut self, ev: &HopEvent) {
        if let Some(d) = ev.device {
            self.learn_device(d.netns.0, d.ifindex.0, d.ifname, d.netns_cookie);
        }
        if ev.packet.0 == 0 || ev.hook.is_annotation() {
            return;
        }
        if ev.hook.is_end() {
            self.forget(ev.packet.0);
            return;
        }
        let Some(headers) = ev.headers else {
            return;
        };
        self.carry(ev.packet.0, headers, ev.outer);
        // The original skb goes on as the branch, with the same data.
        if let Some(Link::Branch(b)) = ev.link {
            self.carry(b.0, headers, ev.outer);
        }
    }

    fn carry(&mut self, packet: u64, headers: Headers, outer: Option<Outer>) {
        let slot = self.slot_of(packet);
        self.carried[slot] = Some(Carried {
            packet,
            headers,
            outer,
        });
    }

    /// A packet ended: its headers go.
    fn forget(&mut self, packet: u64) {
        let i = self.slot_of(packet);
        if self.carried[i].is_some_and(|c| c.packet == packet) {
            self.carried[i] = None;
        }
    }

    /// The name and namespace cookie the stream gave a device (empty: none).
    fn name_of(&self, netns: u32, ifindex: u32) -> (ShortName, u64) {
        self.devices
            .get(&(netns, ifindex))
            .copied()
            .unwrap_or_default()
    }

    fn hop(&self, h: &abi::RawHop) -> Result<HopEvent, DecodeError> {
        let hook = record_hook(h.hook, h.packet_id, |_| true)?;
        let carried = self.carried[self.slot_of(h.packet_id)].filter(|c| c.packet == h.packet_id);
        let device = (h.netns_ino != 0 || h.ifindex != 0).then(|| {
            let (ifname, netns_cookie) = self.name_of(h.netns_ino, h.ifindex);
            Device {
                netns: NetnsId(h.netns_ino),
                netns_cookie,
                ifindex: IfIndex(h.ifindex),
                ifname,
            }
        });
        Ok(HopEvent {
            ts_ns: h.ts_ns,
            cpu: u32::from(h.cpu),
            hook,
            packet: PacketId(h.packet_id),
            skb: h.skb_addr,
            device,
            len: h.len,
            headers: carried.map(|c| c.headers),
            new_packet: false,
            task: None,
            sk_cgroup: 0,
            data: if hook == Hook::NetDevXmit {
                HookData::Xmit { rc: h.xmit_rc }
            } else {
                HookData::None
            },
            outer: carried.and_then(|c| c.outer),
            link: None,
            shared: false,
        })
    }

    /// Slot `id % slots`: ids are handed out in sequence, so a slot is
    /// taken over only by a packet that many ids younger.
    fn slot_of(&self, packet: u64) -> usize {
        (packet % self.carried.len() as u64) as usize
    }
}
