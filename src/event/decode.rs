//! Decoder: ring-buffer bytes → [`HopEvent`]. Pure, total and heap-free:
//! any byte slice gives either an event or a [`DecodeError`], never a panic.
//!
//! It checks the record size, the ABI version and every enum, so a stale
//! BPF object or a corrupt recording is reported instead of misread.

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::{
    Device, Headers, Hook, HopEvent, IfIndex, NetnsId, PacketId, ShortName, Task, TcpFlags, L3, L4,
};
use crate::bpf::abi::{self, RawEvent, RawTuple};

const F_TUPLE: u8 = 1 << 0;
const F_NEW: u8 = 1 << 1;
const F_TASK: u8 = 1 << 2;
const F_L2: u8 = 1 << 3;

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
    let hook = Hook::from_code(raw.hook).ok_or(DecodeError::Hook(raw.hook))?;
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
        drop_reason: raw.drop_reason,
        location: raw.location,
        xmit_rc: raw.xmit_rc,
        aux: raw.aux,
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
        vlan: (t.vlan_id != 0).then_some(t.vlan_id),
        ttl: t.ttl,
        ip_id: t.ip_id,
        flow_label: t.flow_label,
        from_l2,
    })
}
