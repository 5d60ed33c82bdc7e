//! Decoding an `RTM_NEWLINK` message into a [`RawLink`]: with
//! netlink-packet-route, or, when it rejects a message from a newer kernel,
//! with a minimal decoder of the few attributes used here.

use netlink_packet_core::{DecodeError, Nla, NlasIterator, Parseable};
use netlink_packet_route::link::{
    InfoData, InfoTun, InfoVlan, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo,
    LinkMessage,
};

/// What the kernel said about one link, before cross-namespace resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct RawLink {
    pub(super) ifindex: u32,
    pub(super) ifname: String,
    pub(super) kind_name: Option<String>,
    pub(super) loopback: bool,
    /// `ARPHRD_*` of the device.
    pub(super) link_layer: u16,
    pub(super) up: bool,
    pub(super) mtu: Option<u32>,
    /// `IFLA_LINK`.
    pub(super) link: Option<u32>,
    /// `IFLA_LINK_NETNSID`.
    pub(super) link_netnsid: Option<i32>,
    /// `IFLA_MASTER`.
    pub(super) master: Option<u32>,
    pub(super) vlan_id: Option<u16>,
    pub(super) vxlan_id: Option<u32>,
    /// `IFLA_VXLAN_LINK`.
    pub(super) vxlan_link: Option<u32>,
    /// `IFLA_TUN_TYPE`.
    pub(super) tun_type: Option<u8>,
}

/// Decodes an RTM_NEWLINK payload: with netlink-packet-route, or with the
/// minimal decoder if that one rejects the message.
pub(super) fn decode_link(payload: &[u8]) -> Result<RawLink, String> {
    match LinkMessage::parse(payload) {
        Ok(msg) => Ok(raw_from_message(&msg)),
        Err(full) => {
            log::debug!(
                "netlink-packet-route rejected an RTM_NEWLINK ({full}); minimal decoder used"
            );
            decode_link_minimal(payload)
                .map_err(|e| format!("decoding RTM_NEWLINK: {full}; minimal decoder: {e}"))
        }
    }
}

fn raw_from_message(msg: &LinkMessage) -> RawLink {
    let mut raw = RawLink {
        ifindex: msg.header.index,
        loopback: msg.header.flags.contains(LinkFlags::Loopback),
        link_layer: u16::from(msg.header.link_layer_type),
        up: msg.header.flags.contains(LinkFlags::Up),
        ..RawLink::default()
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => raw.ifname = n.clone(),
            LinkAttribute::Mtu(m) => raw.mtu = Some(*m),
            LinkAttribute::Link(l) => raw.link = Some(*l),
            LinkAttribute::LinkNetNsId(id) => raw.link_netnsid = Some(*id),
            LinkAttribute::Controller(m) => raw.master = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        NlLinkInfo::Kind(k) => raw.kind_name = Some(k.to_string()),
                        NlLinkInfo::Data(d) => read_info_data(d, &mut raw),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    raw
}

fn read_info_data(data: &InfoData, raw: &mut RawLink) {
    const IFLA_TUN_TYPE: u16 = 3;
    match data {
        InfoData::Vlan(v) => {
            for a in v {
                if let InfoVlan::Id(id) = a {
                    raw.vlan_id = Some(*id);
                }
            }
        }
        InfoData::Vxlan(v) => {
            for a in v {
                match a {
                    InfoVxlan::Id(id) => raw.vxlan_id = Some(*id),
                    InfoVxlan::Link(l) => raw.vxlan_link = Some(*l),
                    _ => {}
                }
            }
        }
        InfoData::Tun(v) => {
            for a in v {
                if let InfoTun::Other(nla) = a {
                    if nla.kind() == IFLA_TUN_TYPE && nla.value_len() == 1 {
                        let mut b = [0u8; 1];
                        nla.emit_value(&mut b);
                        raw.tun_type = Some(b[0]);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Reads only the attributes this module uses, straight from the bytes.
fn decode_link_minimal(payload: &[u8]) -> Result<RawLink, DecodeError> {
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MTU: u16 = 4;
    const IFLA_LINK: u16 = 5;
    const IFLA_MASTER: u16 = 10;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_LINK_NETNSID: u16 = 37;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_INFO_DATA: u16 = 2;
    const IFF_UP: u32 = 0x1;
    const IFF_LOOPBACK: u32 = 0x8;
    const HEADER: usize = 16; // struct ifinfomsg

    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u32_of = |v: &[u8]| (v.len() >= 4).then(|| u32_at(v, 0));
    if payload.len() < HEADER {
        return Err(DecodeError::from("ifinfomsg too short"));
    }
    let flags = u32_at(payload, 8);
    let mut raw = RawLink {
        ifindex: u32_at(payload, 4),
        link_layer: u16_at(payload, 2),
        up: flags & IFF_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        ..RawLink::default()
    };
    let mut data: Option<Vec<u8>> = None;
    for nla in NlasIterator::new(&payload[HEADER..]) {
        let nla = nla?;
        let v = nla.value();
        match nla.kind() {
            IFLA_IFNAME => {
                let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
                raw.ifname = String::from_utf8_lossy(&v[..end]).into_owned();
            }
            IFLA_MTU => raw.mtu = u32_of(v),
            IFLA_LINK => raw.link = u32_of(v),
            IFLA_MASTER => raw.master = u32_of(v),
            IFLA_LINK_NETNSID => raw.link_netnsid = u32_of(v).map(|x| x as i32),
            IFLA_LINKINFO => {
                for info in NlasIterator::new(v) {
                    let info = info?;
                    let iv = info.value();
                    match info.kind() {
                        IFLA_INFO_KIND => {
                            let end = iv.iter().position(|&c| c == 0).unwrap_or(iv.len());
                            raw.kind_name = Some(String::from_utf8_lossy(&iv[..end]).into_owned());
                        }
                        IFLA_INFO_DATA => data = Some(iv.to_vec()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let (Some(kind), Some(data)) = (raw.kind_name.clone(), data) {
        for nla in NlasIterator::new(&data[..]) {
            let nla = nla?;
            let v = nla.value();
            match (kind.as_str(), nla.kind()) {
                // IFLA_VLAN_ID
                ("vlan", 1) if v.len() >= 2 => raw.vlan_id = Some(u16_at(v, 0)),
                // IFLA_VXLAN_ID, IFLA_VXLAN_LINK
                ("vxlan", 1) => raw.vxlan_id = u32_of(v),
                ("vxlan", 3) => raw.vxlan_link = u32_of(v),
                // IFLA_TUN_TYPE
                ("tun", 3) if !v.is_empty() => raw.tun_type = Some(v[0]),
                _ => {}
            }
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::links::resolve::classify;
    use crate::topology::links::LinkKind;
    use netlink_packet_core::{DefaultNla, Emitable};
    use netlink_packet_route::link::{InfoKind, LinkHeader, LinkLayerType};

    fn emit(msg: &LinkMessage) -> Vec<u8> {
        let mut b = vec![0; msg.buffer_len()];
        msg.emit(&mut b);
        b
    }

    fn message(index: u32, name: &str, attrs: Vec<LinkAttribute>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header = LinkHeader::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.link_layer_type = LinkLayerType::Ether;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.extend(attrs);
        m
    }

    /// Both decoders read the same fields from the same bytes.
    fn both(msg: &LinkMessage) -> RawLink {
        let bytes = emit(msg);
        let full = raw_from_message(&LinkMessage::parse(&bytes[..]).unwrap());
        let minimal = decode_link_minimal(&bytes).unwrap();
        assert_eq!(full, minimal);
        full
    }

    #[test]
    fn vlan_decodes_id_and_lower_device() {
        let raw = both(&message(
            7,
            "v100",
            vec![
                LinkAttribute::Mtu(1500),
                LinkAttribute::Link(3),
                LinkAttribute::LinkInfo(vec![
                    NlLinkInfo::Kind(InfoKind::Vlan),
                    NlLinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)])),
                ]),
            ],
        ));
        assert_eq!(raw.vlan_id, Some(100));
        assert_eq!(raw.link, Some(3));
        assert_eq!(raw.kind_name.as_deref(), Some("vlan"));
        assert_eq!(classify(&raw), LinkKind::Vlan);
    }

    #[test]
    fn vxlan_and_tap_and_cross_netns_veth_decode() {
        let vx = both(&message(
            9,
            "vx0",
            vec![
                LinkAttribute::Link(9),
                LinkAttribute::LinkNetNsId(4),
                LinkAttribute::LinkInfo(vec![
                    NlLinkInfo::Kind(InfoKind::Vxlan),
                    NlLinkInfo::Data(InfoData::Vxlan(vec![InfoVxlan::Id(42), InfoVxlan::Link(2)])),
                ]),
            ],
        ));
        assert_eq!(
            (vx.vxlan_id, vx.vxlan_link, vx.link_netnsid),
            (Some(42), Some(2), Some(4))
        );

        let tap = both(&message(
            5,
            "tap0",
            vec![LinkAttribute::LinkInfo(vec![
                NlLinkInfo::Kind(InfoKind::Tun),
                NlLinkInfo::Data(InfoData::Tun(vec![InfoTun::Other(DefaultNla::new(
                    3,
                    vec![2],
                ))])),
            ])],
        ));
        assert_eq!(classify(&tap), LinkKind::Tap);

        let veth = both(&message(
            4,
            "vA",
            vec![
                LinkAttribute::Link(2),
                LinkAttribute::LinkNetNsId(0),
                LinkAttribute::Controller(3),
                LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(InfoKind::Veth)]),
            ],
        ));
        assert_eq!(
            (veth.link, veth.link_netnsid, veth.master),
            (Some(2), Some(0), Some(3))
        );
    }
}
