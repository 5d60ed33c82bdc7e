//! Decoder: ring-buffer bytes → [`HopEvent`]. Pure, total and heap-free:
//! any byte slice gives either an event or a [`DecodeError`], never a panic.
//!
//! It checks the record size, the ABI version and every enum, so a stale
//! BPF object or a corrupt recording is reported instead of misread.

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::snapshot::{Framing, Snapshot};
use super::{
    Device, Headers, Hook, HookData, HopEvent, IfIndex, Link, NetnsId, Outer, PacketId,
    RouteResult, ShortName, Task, TcpFlags, Tunnel, L3, L4,
};
use crate::bpf::abi::{self, RawEnd, RawEvent, RawOuter, RawSock, RawTuple};
use crate::bpf::skel::types::{hs_event_flags, hs_hook, hs_tunnel, hs_tuple_flags};

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

const L3_IPV4: u8 = 1;
const L3_IPV6: u8 = 2;
const L3_ARP: u8 = 3;
const L3_OTHER: u8 = 4;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("event record is {got} bytes, expected at least {want}")]
    Short { got: usize, want: usize },
    #[error("event ABI version {got}, this hopscope speaks {want}")]
    AbiVersion { got: u16, want: u16 },
    #[error("unknown hook {0}")]
    Hook(u8),
    #[error("unknown network-layer kind {0}")]
    L3(u8),
    #[error("packet id 0 is reserved")]
    NoPacket,
    #[error("unknown tunnel kind {0}")]
    Tunnel(u8),
    #[error("snapshot of {caplen} bytes in a record with room for {room}")]
    SnapshotLength { caplen: u16, room: usize },
}

/// The event ABI of the records in a format-1 recording, which stored
/// `struct hs_event` bytes as the ring buffer carried them (recordings
/// are independent of the ABI since format 2). This module is the only
/// place that knows those bytes, so it converts them: each ABI version a
/// format-1 recording can hold stays decodable here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedAbi {
    version: u16,
}

/// The event ABI versions [`RecordedAbi`] converts, oldest first.
pub const RECORDED_ABI_VERSIONS: [u16; 2] = [abi::ABI_VERSION_1, abi::ABI_VERSION];

/// The longest record of any ABI in [`RECORDED_ABI_VERSIONS`]: a buffer
/// this long holds any of them.
pub const MAX_RECORDED_SIZE: usize = if abi::EVENT_SIZE > abi::EVENT_SIZE_1 {
    abi::EVENT_SIZE
} else {
    abi::EVENT_SIZE_1
};

impl RecordedAbi {
    /// The ABI a format-1 header names by its ABI version and record size,
    /// when this hopscope converts it.
    pub fn from_header(version: u16, record_size: u32) -> Option<RecordedAbi> {
        let known = (version == abi::ABI_VERSION && record_size as usize == abi::EVENT_SIZE)
            || (version == abi::ABI_VERSION_1 && record_size as usize == abi::EVENT_SIZE_1);
        known.then_some(RecordedAbi { version })
    }

    /// Bytes of one record.
    pub fn record_size(self) -> usize {
        if self.version == abi::ABI_VERSION_1 {
            abi::EVENT_SIZE_1
        } else {
            abi::EVENT_SIZE
        }
    }

    /// Decodes one record of this ABI.
    pub fn decode(self, bytes: &[u8]) -> Result<HopEvent, DecodeError> {
        if self.version == abi::ABI_VERSION_1 {
            decode_v1(bytes)
        } else {
            decode(bytes)
        }
    }
}

/// Decodes one record of the first ABI (192 bytes; recordings made before
/// the second): converted field by field, then decoded as today's.
pub fn decode_v1(bytes: &[u8]) -> Result<HopEvent, DecodeError> {
    let b: &[u8; abi::EVENT_SIZE_1] = bytes
        .get(..abi::EVENT_SIZE_1)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::Short {
            got: bytes.len(),
            want: abi::EVENT_SIZE_1,
        })?;
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
    let arr16 = |o: usize| -> [u8; 16] { b[o..o + 16].try_into().unwrap_or([0; 16]) };
    let version = u16_at(0);
    if version != abi::ABI_VERSION_1 {
        return Err(DecodeError::AbiVersion {
            got: version,
            want: abi::ABI_VERSION_1,
        });
    }
    // The tuple started at byte 120; its vlan_id (34) was 0 for untagged.
    let t = 120;
    let vlan = u16_at(t + 34);
    let tuple = RawTuple {
        saddr: arr16(t),
        daddr: arr16(t + 16),
        ethertype: u16_at(t + 32),
        vlan_tci: vlan,
        l3: b[t + 36],
        l4_proto: b[t + 37],
        ttl: b[t + 38],
        tcp_flags: b[t + 39],
        sport: u16_at(t + 40),
        dport: u16_at(t + 42),
        icmp_type: b[t + 44],
        icmp_code: b[t + 45],
        icmp_id: u16_at(t + 46),
        icmp_seq: u16_at(t + 48),
        ip_id: u16_at(t + 50),
        tcp_seq: u32_at(t + 52),
        tcp_ack: u32_at(t + 56),
        flow_label: u32_at(t + 60),
        l4_len: u16_at(t + 64),
        arp_op: u16_at(t + 66),
        ip_len: u16_at(t + 68),
        tflags: if vlan != 0 { T_VLAN } else { 0 },
        ..RawTuple::default()
    };
    // fib lookups kept the IPv4 gateway in `location`.
    let mut gw = [0u8; 16];
    if hook_of(b[2]) == Some(Hook::FibLookup) {
        gw[..4].copy_from_slice(&(u64_at(40) as u32).to_ne_bytes());
    }
    let raw = RawEvent {
        abi_version: abi::ABI_VERSION,
        hook: b[2],
        gw,
        flags: u16::from(b[3]),
        cpu: u32_at(4),
        ts_ns: u64_at(8),
        packet_id: u64_at(16),
        skb_addr: u64_at(24),
        netns_cookie: u64_at(32),
        location: u64_at(40),
        sk_cgroup: u64_at(48),
        netns_ino: u32_at(56),
        ifindex: u32_at(60),
        len: u32_at(64),
        pid: u32_at(68),
        tid: u32_at(72),
        drop_reason: u32_at(76),
        xmit_rc: u32_at(80) as i32,
        aux: u32_at(84),
        ifname: arr16(88),
        comm: arr16(104),
        tuple,
        ..RawEvent::default()
    };
    decode_raw(&raw)
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<HopEvent, DecodeError> {
    let raw = abi::read_event(bytes).ok_or(DecodeError::Short {
        got: bytes.len(),
        want: abi::EVENT_SIZE,
    })?;
    decode_raw(&raw)
}

/// Decodes an already copied raw event.
pub fn decode_raw(raw: &RawEvent) -> Result<HopEvent, DecodeError> {
    if raw.abi_version != abi::ABI_VERSION {
        return Err(DecodeError::AbiVersion {
            got: raw.abi_version,
            want: abi::ABI_VERSION,
        });
    }
    let hook = hook_of(raw.hook).ok_or(DecodeError::Hook(raw.hook))?;
    if raw.packet_id == 0 && !hook.is_annotation() {
        return Err(DecodeError::NoPacket);
    }
    let headers = if raw.flags & F_TUPLE != 0 {
        Some(decode_tuple(&raw.tuple, raw.flags & F_L2 != 0)?)
    } else {
        None
    };
    let device = if raw.netns_ino != 0 || raw.ifindex != 0 {
        Some(Device {
            netns: NetnsId(raw.netns_ino),
            netns_cookie: raw.netns_cookie,
            ifindex: IfIndex(raw.ifindex),
            ifname: ShortName::from_bytes(&raw.ifname),
        })
    } else {
        None
    };
    let task = (raw.flags & F_TASK != 0).then(|| Task {
        pid: raw.pid,
        tid: raw.tid,
        comm: ShortName::from_bytes(&raw.comm),
    });
    let outer = if raw.flags & F_OUTER != 0 {
        Some(decode_outer(&raw.outer)?)
    } else {
        None
    };
    let related = PacketId(raw.related);
    let link = if raw.flags & F_BRANCH != 0 && raw.related != 0 {
        Some(Link::Branch(related))
    } else if raw.flags & F_CLONE != 0 && raw.related != 0 {
        Some(Link::CloneOf(related))
    } else if raw.flags & F_SEGMENT != 0 && raw.related != 0 {
        Some(Link::SegmentOf {
            parent: related,
            index: raw.seg_index,
            count: raw.seg_count,
        })
    } else if raw.flags & F_SEGMENTED != 0 {
        Some(Link::Segmented {
            count: raw.seg_count,
        })
    } else {
        None
    };
    Ok(HopEvent {
        ts_ns: raw.ts_ns,
        cpu: raw.cpu,
        hook,
        packet: PacketId(raw.packet_id),
        skb: raw.skb_addr,
        device,
        len: raw.len,
        headers,
        new_packet: raw.flags & F_NEW != 0,
        task,
        sk_cgroup: raw.sk_cgroup,
        data: hook_data(hook, raw, headers.as_ref()),
        outer,
        link,
        shared: raw.flags & F_SHARED != 0,
    })
}

/// Each hook's wire code (`enum hs_hook` of bpf/hopscope.h).
const WIRE: [(Hook, hs_hook); 18] = [
    (Hook::NetDevQueue, hs_hook::HS_HOOK_NET_DEV_QUEUE),
    (Hook::NetDevXmit, hs_hook::HS_HOOK_NET_DEV_XMIT),
    (Hook::NetifRx, hs_hook::HS_HOOK_NETIF_RX),
    (Hook::NetifReceiveSkb, hs_hook::HS_HOOK_NETIF_RECEIVE_SKB),
    (Hook::NapiGroReceive, hs_hook::HS_HOOK_NAPI_GRO_RECEIVE),
    (Hook::SkbCopyDatagram, hs_hook::HS_HOOK_SKB_COPY_DATAGRAM),
    (Hook::ConsumeSkb, hs_hook::HS_HOOK_CONSUME_SKB),
    (Hook::KfreeSkb, hs_hook::HS_HOOK_KFREE_SKB),
    (Hook::IcmpSend, hs_hook::HS_HOOK_ICMP_SEND),
    (Hook::TcpSendReset, hs_hook::HS_HOOK_TCP_SEND_RESET),
    (Hook::TcpReceiveReset, hs_hook::HS_HOOK_TCP_RECEIVE_RESET),
    (Hook::TcpRetransmit, hs_hook::HS_HOOK_TCP_RETRANSMIT),
    (Hook::FibLookup, hs_hook::HS_HOOK_FIB_LOOKUP),
    (Hook::Neigh, hs_hook::HS_HOOK_NEIGH),
    (Hook::TcpRcv, hs_hook::HS_HOOK_TCP_RCV),
    (Hook::SockQueue, hs_hook::HS_HOOK_SOCK_QUEUE),
    (Hook::NetDevStartXmit, hs_hook::HS_HOOK_NET_DEV_START_XMIT),
    (Hook::TcpState, hs_hook::HS_HOOK_TCP_STATE),
];

/// The hook of a wire code.
pub fn hook_of(code: u8) -> Option<Hook> {
    WIRE.iter()
        .find(|(_, w)| w.0 == u32::from(code))
        .map(|(h, _)| *h)
}

/// The wire code of a hook.
pub fn wire_code(hook: Hook) -> u8 {
    WIRE.iter()
        .find(|(h, _)| *h == hook)
        .map_or(0, |(_, w)| w.0 as u8)
}

/// The typed report of one hook, from the record's fields whose meaning
/// depends on the hook (`aux`, `location`, `drop_reason`, `xmit_rc`, `gw`).
fn hook_data(hook: Hook, raw: &RawEvent, h: Option<&Headers>) -> HookData {
    match hook {
        Hook::NetDevXmit => HookData::Xmit { rc: raw.xmit_rc },
        Hook::TcpRcv | Hook::TcpState => socket_data(hook, raw.aux),
        Hook::ConsumeSkb | Hook::KfreeSkb => end_data(hook, raw.location, raw.drop_reason, raw.aux),
        Hook::IcmpSend => HookData::IcmpError {
            kind: (raw.aux >> 8) as u8,
            code: raw.aux as u8,
        },
        Hook::FibLookup => HookData::Route {
            table: raw.aux,
            result: RouteResult::from_errno(raw.xmit_rc),
            gw: gateway(h, &raw.gw),
        },
        Hook::Neigh => HookData::Neigh {
            old: (raw.aux >> 8) as u8,
            new: raw.aux as u8,
        },
        _ => HookData::None,
    }
}

/// A socket hook's report from its `aux`: tcp_probe's payload bytes,
/// inet_sock_set_state's old state << 8 | new state | payload << 16.
fn socket_data(hook: Hook, aux: u32) -> HookData {
    match hook {
        Hook::TcpRcv => HookData::TcpSegment { payload: aux },
        Hook::TcpState => HookData::TcpState {
            old: (aux >> 8) as u8,
            new: aux as u8,
            payload: (aux >> 16) as u16,
        },
        _ => HookData::None,
    }
}

/// An end's report.
fn end_data(hook: Hook, location: u64, reason: u32, stack: u32) -> HookData {
    match hook {
        Hook::KfreeSkb => HookData::Freed {
            reason,
            location,
            stack,
        },
        Hook::ConsumeSkb => HookData::Consumed { location },
        _ => HookData::None,
    }
}

/// The hook of a typed record, of the kind `fits` accepts, naming a packet
/// (never id 0).
pub(super) fn record_hook(
    code: u8,
    packet: u64,
    fits: fn(Hook) -> bool,
) -> Result<Hook, DecodeError> {
    let hook = hook_of(code)
        .filter(|h| fits(*h))
        .ok_or(DecodeError::Hook(code))?;
    if packet == 0 {
        return Err(DecodeError::NoPacket);
    }
    Ok(hook)
}

/// A socket hop record (`struct hs_sock`) as an event. `name`: the name and
/// namespace cookie of its device, as the stream last named it (unused
/// without a device: the record's own cookie is the socket's namespace's).
pub(super) fn sock_event(r: &RawSock, name: (ShortName, u64)) -> Result<HopEvent, DecodeError> {
    let hook = record_hook(r.hook, r.packet_id, Hook::is_socket)?;
    let device = (r.netns_ino != 0 || r.ifindex != 0).then(|| Device {
        netns: NetnsId(r.netns_ino),
        netns_cookie: r.netns_cookie,
        ifindex: IfIndex(r.ifindex),
        ifname: if r.ifindex != 0 {
            name.0
        } else {
            ShortName::default()
        },
    });
    Ok(HopEvent {
        ts_ns: r.ts_ns,
        cpu: u32::from(r.cpu),
        hook,
        packet: PacketId(r.packet_id),
        skb: r.skb_addr,
        device,
        len: r.len,
        headers: None,
        new_packet: false,
        task: (r.flags & F_TASK != 0).then(|| Task {
            pid: r.pid,
            tid: r.tid,
            comm: ShortName::from_bytes(&r.comm),
        }),
        sk_cgroup: 0,
        data: socket_data(hook, r.aux),
        outer: None,
        link: (r.flags & F_CLONE != 0).then_some(Link::CloneOf(PacketId(r.packet_id))),
        shared: false,
    })
}

/// An end record (`struct hs_end`) as an event; `name` as for [`sock_event`].
pub(super) fn end_event(r: &RawEnd, name: (ShortName, u64)) -> Result<HopEvent, DecodeError> {
    let hook = record_hook(r.hook, r.packet_id, Hook::is_end)?;
    let device = (r.netns_ino != 0 || r.ifindex != 0).then_some(Device {
        netns: NetnsId(r.netns_ino),
        netns_cookie: name.1,
        ifindex: IfIndex(r.ifindex),
        ifname: name.0,
    });
    Ok(HopEvent {
        ts_ns: r.ts_ns,
        cpu: u32::from(r.cpu),
        hook,
        packet: PacketId(r.packet_id),
        skb: r.skb_addr,
        device,
        len: 0,
        headers: None,
        new_packet: false,
        task: None,
        sk_cgroup: 0,
        data: end_data(hook, r.location, r.drop_reason, r.stack),
        outer: None,
        link: (r.flags & F_SEGMENTED != 0).then_some(Link::Segmented { count: r.seg_count }),
        shared: r.flags & F_SHARED != 0,
    })
}

/// A snapshot record (`struct hs_snap` and the bytes after it).
pub(super) fn snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    let (r, data) = abi::read_snap(bytes).ok_or(DecodeError::Short {
        got: bytes.len(),
        want: std::mem::size_of::<abi::RawSnap>(),
    })?;
    if r.packet_id == 0 {
        return Err(DecodeError::NoPacket);
    }
    let caplen = usize::from(r.caplen);
    let Some(data) = data.get(..caplen) else {
        return Err(DecodeError::SnapshotLength {
            caplen: r.caplen,
            room: data.len(),
        });
    };
    Ok(Snapshot {
        packet: PacketId(r.packet_id),
        ts_ns: r.ts_ns,
        framing: if r.flags & abi::SNAP_ETHER != 0 {
            Framing::Ethernet
        } else {
            Framing::RawIp
        },
        orig_len: r.orig_len.max(u32::from(r.caplen)),
        bytes: data.to_vec(),
    })
}

/// A route lookup's gateway, of the family of the lookup (IPv6 when its
/// headers are; none: zero).
fn gateway(h: Option<&Headers>, gw: &[u8; 16]) -> Option<std::net::IpAddr> {
    match h.map(|h| h.l3) {
        Some(L3::Ipv6 { .. }) => (gw.iter().any(|b| *b != 0)).then(|| Ipv6Addr::from(*gw).into()),
        _ => (gw[..4].iter().any(|b| *b != 0)).then(|| v4(gw).into()),
    }
}

fn ip_of(l3: u8, b: &[u8; 16]) -> Result<std::net::IpAddr, DecodeError> {
    match l3 {
        L3_IPV4 => Ok(v4(b).into()),
        L3_IPV6 => Ok(Ipv6Addr::from(*b).into()),
        other => Err(DecodeError::L3(other)),
    }
}

fn decode_outer(o: &RawOuter) -> Result<Outer, DecodeError> {
    let kind = match o.kind {
        k if k == hs_tunnel::HS_TUNNEL_VXLAN.0 as u8 => Tunnel::Vxlan,
        k if k == hs_tunnel::HS_TUNNEL_GENEVE.0 as u8 => Tunnel::Geneve,
        k if k == hs_tunnel::HS_TUNNEL_GRE.0 as u8 => Tunnel::Gre,
        k if k == hs_tunnel::HS_TUNNEL_IPIP.0 as u8 => Tunnel::Ipip,
        other => return Err(DecodeError::Tunnel(other)),
    };
    Ok(Outer {
        kind,
        src: ip_of(o.l3, &o.saddr)?,
        dst: ip_of(o.l3, &o.daddr)?,
        proto: o.proto,
        sport: o.sport,
        dport: o.dport,
        vni: o.vni,
    })
}

fn v4(b: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn decode_tuple(t: &RawTuple, from_l2: bool) -> Result<Headers, DecodeError> {
    let (l3, is_ip) = match t.l3 {
        L3_IPV4 => (
            L3::Ipv4 {
                src: v4(&t.saddr),
                dst: v4(&t.daddr),
            },
            true,
        ),
        L3_IPV6 => (
            L3::Ipv6 {
                src: Ipv6Addr::from(t.saddr),
                dst: Ipv6Addr::from(t.daddr),
            },
            true,
        ),
        L3_ARP => (
            L3::Arp {
                op: t.arp_op,
                sender: v4(&t.saddr),
                target: v4(&t.daddr),
            },
            false,
        ),
        L3_OTHER => (
            L3::Other {
                ethertype: t.ethertype,
            },
            false,
        ),
        other => return Err(DecodeError::L3(other)),
    };
    let l4 = if !is_ip {
        L4::None
    } else if t.tflags & T_FRAG != 0 {
        L4::Fragment { proto: t.l4_proto }
    } else {
        match t.l4_proto {
            IPPROTO_TCP => L4::Tcp {
                sport: t.sport,
                dport: t.dport,
                seq: t.tcp_seq,
                ack: t.tcp_ack,
                flags: TcpFlags(t.tcp_flags),
            },
            IPPROTO_UDP => L4::Udp {
                sport: t.sport,
                dport: t.dport,
                len: t.l4_len,
            },
            IPPROTO_ICMP | IPPROTO_ICMPV6 => L4::Icmp {
                v6: t.l4_proto == IPPROTO_ICMPV6,
                kind: t.icmp_type,
                code: t.icmp_code,
                id: t.icmp_id,
                seq: t.icmp_seq,
            },
            proto => L4::Other { proto },
        }
    };
    Ok(Headers {
        l3,
        l4,
        vlan: (t.tflags & T_VLAN != 0).then_some(t.vlan_tci & 0x0fff),
        ttl: t.ttl,
        ip_id: t.ip_id,
        flow_label: t.flow_label,
        from_l2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_has_its_own_wire_code() {
        let mut codes: Vec<u8> = Hook::all().map(wire_code).collect();
        assert!(codes
            .iter()
            .all(|&c| c != 0 && u32::from(c) < hs_hook::HS_HOOK_MAX.0));
        for h in Hook::all() {
            assert_eq!(hook_of(wire_code(h)), Some(h));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 18);
        assert_eq!(hook_of(0), None);
        assert_eq!(hook_of(hs_hook::HS_HOOK_MAX.0 as u8), None);
    }
}
