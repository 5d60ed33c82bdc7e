/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * parse.h: header parsing of an skb into struct hs_tuple.
 *
 * Kernel facts this relies on:
 * - At net_dev_queue, __dev_queue_xmit has just reset the mac header to
 *   skb->data, where the link-layer header was pushed. On rx hooks
 *   eth_type_trans has set mac_header and pulled it. So on devices with
 *   Ethernet framing (ARPHRD_ETHER, ARPHRD_LOOPBACK) the frame starts at
 *   skb->head + skb->mac_header on every hook we parse at.
 * - Devices without link-layer headers (tun, wireguard, ipip) carry raw IP:
 *   parse at network_header, or at mac_header when network_header is unset;
 *   the IP version nibble says which.
 * - At netif_receive_skb the network header may be stale (it is reset just
 *   after the tracepoint), so Ethernet devices are parsed from mac_header;
 *   only when the frame is not built yet (mac_header unset or equal to
 *   network_header: a packet waiting in a neighbour's queue) from
 *   network_header.
 * - mac_header/network_header are offsets from skb->head; 0xffff is "unset".
 * Each header is fetched with one bpf_probe_read_kernel into a fixed struct:
 * the source address may be anything, the verifier only sees fixed sizes.
 */
#ifndef HOPSCOPE_PARSE_H
#define HOPSCOPE_PARSE_H

#define HS_ETH_P_IP 0x0800
#define HS_ETH_P_IPV6 0x86DD
#define HS_ETH_P_ARP 0x0806
#define HS_ETH_P_8021Q 0x8100
#define HS_ETH_P_8021AD 0x88A8
#define HS_ARPHRD_ETHER 1
#define HS_ARPHRD_LOOPBACK 772
#define HS_MAC_UNSET 0xffff

#define HS_IPPROTO_ICMP 1
#define HS_IPPROTO_TCP 6
#define HS_IPPROTO_UDP 17
#define HS_IPPROTO_ICMPV6 58

/* Kernels before 6.2 (vlan_present bitfield instead of vlan_all). */
struct sk_buff___hs_old {
	__u8 vlan_present: 1;
} __attribute__((preserve_access_index));

struct hs_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct hs_arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 sip[4];
	__u8 tha[6];
	__u8 tip[4];
};

/* The first 20 bytes of TCP, and the first 8 of UDP and ICMP/ICMPv6. */
struct hs_l4_hdr {
	union {
		struct {
			__be16 source;
			__be16 dest;
			__be32 seq;
			__be32 ack_seq;
			__u8 doff;
			__u8 flags;
			__be16 window;
			__be16 check;
			__be16 urg;
		} tcp;
		struct {
			__be16 source;
			__be16 dest;
			__be16 len;
			__be16 check;
		} udp;
		struct {
			__u8 type;
			__u8 code;
			__be16 check;
			__be16 id;
			__be16 seq;
		} icmp;
	};
};

static __always_inline void hs_parse_l4(const void *p, __u8 proto, struct hs_tuple *t)
{
	struct hs_l4_hdr h = {};

	t->l4_proto = proto;
	if (proto == HS_IPPROTO_TCP) {
		if (bpf_probe_read_kernel(&h, sizeof(h.tcp), p))
			return;
		t->sport = bpf_ntohs(h.tcp.source);
		t->dport = bpf_ntohs(h.tcp.dest);
		t->tcp_seq = bpf_ntohl(h.tcp.seq);
		t->tcp_ack = bpf_ntohl(h.tcp.ack_seq);
		t->tcp_flags = h.tcp.flags;
	} else if (proto == HS_IPPROTO_UDP) {
		if (bpf_probe_read_kernel(&h, sizeof(h.udp), p))
			return;
		t->sport = bpf_ntohs(h.udp.source);
		t->dport = bpf_ntohs(h.udp.dest);
		t->l4_len = bpf_ntohs(h.udp.len);
	} else if (proto == HS_IPPROTO_ICMP || proto == HS_IPPROTO_ICMPV6) {
		if (bpf_probe_read_kernel(&h, sizeof(h.icmp), p))
			return;
		t->icmp_type = h.icmp.type;
		t->icmp_code = h.icmp.code;
		t->icmp_id = bpf_ntohs(h.icmp.id);
		t->icmp_seq = bpf_ntohs(h.icmp.seq);
	}
}

static __always_inline int hs_parse_ipv4(const void *p, struct hs_tuple *t)
{
	struct iphdr ip;

	if (bpf_probe_read_kernel(&ip, sizeof(ip), p))
		return -1;
	if (ip.version != 4)
		return -1;
	t->l3 = HS_L3_IPV4;
	t->ethertype = HS_ETH_P_IP;
	__builtin_memcpy(t->saddr, &ip.saddr, 4);
	__builtin_memcpy(t->daddr, &ip.daddr, 4);
	t->ttl = ip.ttl;
	t->ip_id = bpf_ntohs(ip.id);
	t->ip_len = bpf_ntohs(ip.tot_len);
	t->l4_proto = ip.protocol;
	/* Only the first fragment carries the L4 header. */
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0;
	hs_parse_l4(p + ip.ihl * 4, ip.protocol, t);
	return 0;
}

static __always_inline int hs_parse_ipv6(const void *p, struct hs_tuple *t)
{
	struct ipv6hdr ip6;
	__u8 first[4];

	if (bpf_probe_read_kernel(&ip6, sizeof(ip6), p))
		return -1;
	if (ip6.version != 6)
		return -1;
	t->l3 = HS_L3_IPV6;
	t->ethertype = HS_ETH_P_IPV6;
	__builtin_memcpy(t->saddr, &ip6.saddr, 16);
	__builtin_memcpy(t->daddr, &ip6.daddr, 16);
	t->ttl = ip6.hop_limit;
	t->ip_len = bpf_ntohs(ip6.payload_len);
	__builtin_memcpy(first, &ip6, 4);
	t->flow_label = ((__u32)(first[1] & 0x0f) << 16) | ((__u32)first[2] << 8) | first[3];
	/* Extension headers are not walked: nexthdr is reported as is. */
	hs_parse_l4(p + sizeof(ip6), ip6.nexthdr, t);
	return 0;
}

static __always_inline int hs_parse_arp(const void *p, struct hs_tuple *t)
{
	struct hs_arp_ipv4 a;

	if (bpf_probe_read_kernel(&a, sizeof(a), p))
		return -1;
	t->l3 = HS_L3_ARP;
	t->ethertype = HS_ETH_P_ARP;
	t->arp_op = bpf_ntohs(a.op);
	if (a.ptype == bpf_htons(HS_ETH_P_IP) && a.plen == 4) {
		__builtin_memcpy(t->saddr, a.sip, 4);
		__builtin_memcpy(t->daddr, a.tip, 4);
	}
	return 0;
}

static __always_inline int hs_parse_l3(const void *p, __u16 ethertype, struct hs_tuple *t)
{
	if (ethertype == HS_ETH_P_IP)
		return hs_parse_ipv4(p, t);
	if (ethertype == HS_ETH_P_IPV6)
		return hs_parse_ipv6(p, t);
	if (ethertype == HS_ETH_P_ARP)
		return hs_parse_arp(p, t);
	t->l3 = HS_L3_OTHER;
	t->ethertype = ethertype;
	return 0;
}

/* Returns HS_F_TUPLE (| HS_F_L2) when headers were parsed, 0 otherwise. */
static __always_inline __u8 hs_parse_skb(struct sk_buff *skb, struct net_device *dev,
					 struct hs_tuple *t)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 mac = BPF_CORE_READ(skb, mac_header);
	__u16 net = BPF_CORE_READ(skb, network_header);
	unsigned short type = dev ? BPF_CORE_READ(dev, type) : 0;

	if (!head)
		return 0;
	/*
	 * Ethernet framing where the device has it and the frame is built;
	 * otherwise (raw IP devices, or a packet still waiting for its link
	 * header, e.g. in a neighbour's queue) the network header.
	 */
	if ((type == HS_ARPHRD_ETHER || type == HS_ARPHRD_LOOPBACK) && mac != HS_MAC_UNSET &&
	    mac != net) {
		struct ethhdr eth;
		const void *p = head + mac;
		__u16 proto;

		if (!bpf_probe_read_kernel(&eth, sizeof(eth), p)) {
			p += sizeof(eth);
			proto = bpf_ntohs(eth.h_proto);
			if (proto == HS_ETH_P_8021Q || proto == HS_ETH_P_8021AD) {
				struct hs_vlan_hdr vh;

				if (bpf_probe_read_kernel(&vh, sizeof(vh), p))
					return 0;
				t->vlan_id = bpf_ntohs(vh.tci) & 0x0fff;
				proto = bpf_ntohs(vh.proto);
				p += sizeof(vh);
			} else {
				/* A tag the driver stripped into the skb (hw accel). */
				__u16 tci = BPF_CORE_READ(skb, vlan_tci);

				if (bpf_core_field_exists(skb->vlan_all)) {
					if (BPF_CORE_READ(skb, vlan_all))
						t->vlan_id = tci & 0x0fff;
				} else if (bpf_core_field_exists(
						   ((struct sk_buff___hs_old *)skb)->vlan_present)) {
					if (BPF_CORE_READ_BITFIELD_PROBED(
						    (struct sk_buff___hs_old *)skb, vlan_present))
						t->vlan_id = tci & 0x0fff;
				}
			}
			if (!hs_parse_l3(p, proto, t))
				return HS_F_TUPLE | HS_F_L2;
			__builtin_memset(t, 0, sizeof(*t));
		}
	}
	/* Raw IP devices. */
	{
		__u16 off = net != HS_MAC_UNSET && net != 0 ? net : mac;
		__u8 ver;

		if (off == HS_MAC_UNSET)
			return 0;
		if (bpf_probe_read_kernel(&ver, 1, head + off))
			return 0;
		ver >>= 4;
		if (ver == 4 && !hs_parse_ipv4(head + off, t))
			return HS_F_TUPLE;
		if (ver == 6 && !hs_parse_ipv6(head + off, t))
			return HS_F_TUPLE;
	}
	return 0;
}

#endif /* HOPSCOPE_PARSE_H */
