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
 * - Tunnels (VXLAN, GENEVE, GRE, IPIP) keep the same sk_buff: the encapsulating
 *   device pushes the outer headers onto it, and the receiving side strips
 *   them off it again. The tuple is always the *inner* packet (what the
 *   fingerprint, the flow and the filter's later sightings need to see the
 *   same packet), and struct hs_outer the tunnel around it.
 * - IPv6 extension headers (hop-by-hop, routing, destination options,
 *   fragment, AH) are walked: MLD reports sit behind a hop-by-hop header.
 *   A non-first fragment (IPv4 or IPv6) has no transport header: HS_T_FRAG.
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

#define HS_ETH_P_TEB 0x6558 /* transparent Ethernet bridging: an Ethernet frame inside */

#define HS_IPPROTO_HOPOPTS 0
#define HS_IPPROTO_ICMP 1
#define HS_IPPROTO_IPIP 4
#define HS_IPPROTO_TCP 6
#define HS_IPPROTO_UDP 17
#define HS_IPPROTO_IPV6 41
#define HS_IPPROTO_ROUTING 43
#define HS_IPPROTO_FRAGMENT 44
#define HS_IPPROTO_GRE 47
#define HS_IPPROTO_AH 51
#define HS_IPPROTO_ICMPV6 58
#define HS_IPPROTO_DSTOPTS 60

#define HS_PORT_VXLAN 4789
#define HS_PORT_VXLAN_LINUX 8472 /* the kernel's default when none is given */
#define HS_PORT_GENEVE 6081

/* IPv6 extension headers walked before the transport header. */
#define HS_IPV6_MAX_EXT 4

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

/* *l4: where the transport header starts (NULL: a non-first fragment). */
static __always_inline int hs_parse_ipv4(const void *p, struct hs_tuple *t, const void **l4)
{
	struct iphdr ip;

	*l4 = NULL;
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
	/* Only the first fragment carries the transport header. */
	if (ip.frag_off & bpf_htons(0x1fff)) {
		t->tflags |= HS_T_FRAG;
		return 0;
	}
	*l4 = p + ip.ihl * 4;
	hs_parse_l4(*l4, ip.protocol, t);
	return 0;
}

/* The 8 bytes every IPv6 extension header we walk starts with. */
struct hs_ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
	__be16 frag_off; /* fragment header: offset << 3 | flags */
	__be32 _rest;
};

static __always_inline int hs_parse_ipv6(const void *p, struct hs_tuple *t, const void **l4)
{
	struct ipv6hdr ip6;
	__u8 first[4], next;
	int i;

	*l4 = NULL;
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
	next = ip6.nexthdr;
	p += sizeof(ip6);
#pragma unroll
	for (i = 0; i < HS_IPV6_MAX_EXT; i++) {
		struct hs_ipv6_ext x;

		if (next != HS_IPPROTO_HOPOPTS && next != HS_IPPROTO_ROUTING &&
		    next != HS_IPPROTO_DSTOPTS && next != HS_IPPROTO_FRAGMENT && next != HS_IPPROTO_AH)
			break;
		if (bpf_probe_read_kernel(&x, sizeof(x), p))
			return 0;
		if (next == HS_IPPROTO_FRAGMENT) {
			if (x.frag_off & bpf_htons(0xfff8)) {
				t->l4_proto = x.nexthdr;
				t->tflags |= HS_T_FRAG;
				return 0;
			}
			p += 8;
		} else if (next == HS_IPPROTO_AH) {
			p += ((__u32)x.hdrlen + 2) * 4;
		} else {
			p += ((__u32)x.hdrlen + 1) * 8;
		}
		next = x.nexthdr;
	}
	*l4 = p;
	hs_parse_l4(p, next, t);
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

static __always_inline int hs_parse_l3(const void *p, __u16 ethertype, struct hs_tuple *t,
				       const void **l4)
{
	*l4 = NULL;
	if (ethertype == HS_ETH_P_IP)
		return hs_parse_ipv4(p, t, l4);
	if (ethertype == HS_ETH_P_IPV6)
		return hs_parse_ipv6(p, t, l4);
	if (ethertype == HS_ETH_P_ARP)
		return hs_parse_arp(p, t);
	t->l3 = HS_L3_OTHER;
	t->ethertype = ethertype;
	return 0;
}

/* Raw IP at p (the version nibble says which). */
static __always_inline int hs_parse_ip(const void *p, struct hs_tuple *t, const void **l4)
{
	__u8 ver;

	*l4 = NULL;
	if (bpf_probe_read_kernel(&ver, 1, p))
		return -1;
	ver >>= 4;
	if (ver == 4)
		return hs_parse_ipv4(p, t, l4);
	if (ver == 6)
		return hs_parse_ipv6(p, t, l4);
	return -1;
}

/*
 * An Ethernet frame at p: its (up to two) VLAN tags and what they carry.
 * skb, when given, may hold a tag the driver stripped (hw acceleration).
 */
static __always_inline int hs_parse_eth(const void *p, struct sk_buff *skb, struct hs_tuple *t,
					const void **l4)
{
	struct ethhdr eth;
	__u16 proto;
	int i;

	*l4 = NULL;
	if (bpf_probe_read_kernel(&eth, sizeof(eth), p))
		return -1;
	p += sizeof(eth);
	proto = bpf_ntohs(eth.h_proto);
#pragma unroll
	for (i = 0; i < 2; i++) {
		struct hs_vlan_hdr vh;

		if (proto != HS_ETH_P_8021Q && proto != HS_ETH_P_8021AD)
			break;
		if (bpf_probe_read_kernel(&vh, sizeof(vh), p))
			return -1;
		/* The innermost tag is the one that names the VLAN. */
		t->vlan_tci = bpf_ntohs(vh.tci);
		t->tflags |= HS_T_VLAN;
		proto = bpf_ntohs(vh.proto);
		p += sizeof(vh);
	}
	if (skb && !(t->tflags & HS_T_VLAN)) {
		/* A tag the driver stripped into the skb (hw accel). */
		__u16 tci = BPF_CORE_READ(skb, vlan_tci);
		int present = 0;

		if (bpf_core_field_exists(skb->vlan_all))
			present = BPF_CORE_READ(skb, vlan_all) != 0;
		else if (bpf_core_field_exists(((struct sk_buff___hs_old *)skb)->vlan_present))
			present = BPF_CORE_READ_BITFIELD_PROBED((struct sk_buff___hs_old *)skb,
								vlan_present);
		if (present) {
			t->vlan_tci = tci;
			t->tflags |= HS_T_VLAN;
		}
	}
	return hs_parse_l3(p, proto, t, l4);
}

/* The first 8 bytes of a VXLAN or GENEVE header. */
struct hs_tun_hdr {
	__u8 b0;       /* VXLAN: flags (0x08: VNI valid); GENEVE: version << 6 | options length */
	__u8 b1;
	__be16 proto;  /* GENEVE: protocol of the payload */
	__u8 vni[3];
	__u8 _rsvd;
};

/* The fixed part of a GRE header. */
struct hs_gre_hdr {
	__be16 flags;  /* C 0x8000, K 0x2000, S 0x1000; version in the low 3 bits */
	__be16 proto;
};

/*
 * Whether t (just parsed, its transport header at l4) is a tunnel whose
 * inner packet we read: then o describes the outer headers, *inner points
 * at the inner packet and *inner_eth says whether it is an Ethernet frame.
 */
static __always_inline int hs_tunnel(const struct hs_tuple *t, const void *l4,
				     struct hs_outer *o, const void **inner, __u8 *inner_eth)
{
	__u8 kind = HS_TUNNEL_NONE;
	__u32 vni = 0;

	if (!l4 || (t->l3 != HS_L3_IPV4 && t->l3 != HS_L3_IPV6))
		return 0;
	if (t->l4_proto == HS_IPPROTO_UDP) {
		struct hs_tun_hdr h;

		if (t->dport != HS_PORT_VXLAN && t->dport != HS_PORT_VXLAN_LINUX &&
		    t->dport != HS_PORT_GENEVE)
			return 0;
		if (bpf_probe_read_kernel(&h, sizeof(h), l4 + 8))
			return 0;
		vni = ((__u32)h.vni[0] << 16) | ((__u32)h.vni[1] << 8) | h.vni[2];
		if (t->dport == HS_PORT_GENEVE) {
			/* Version 0 only; options are 4-byte words. */
			if (h.b0 >> 6)
				return 0;
			*inner = l4 + 16 + (h.b0 & 0x3f) * 4;
			if (h.proto == bpf_htons(HS_ETH_P_TEB))
				*inner_eth = 1;
			else if (h.proto == bpf_htons(HS_ETH_P_IP) ||
				 h.proto == bpf_htons(HS_ETH_P_IPV6))
				*inner_eth = 0;
			else
				return 0;
			kind = HS_TUNNEL_GENEVE;
		} else {
			if (!(h.b0 & 0x08))
				return 0;
			*inner = l4 + 16;
			*inner_eth = 1;
			kind = HS_TUNNEL_VXLAN;
		}
	} else if (t->l4_proto == HS_IPPROTO_GRE) {
		struct hs_gre_hdr g;
		__u16 flags;
		__u32 off = sizeof(g);

		if (bpf_probe_read_kernel(&g, sizeof(g), l4))
			return 0;
		flags = bpf_ntohs(g.flags);
		if (flags & 0x7)
			return 0; /* PPTP's enhanced GRE (version 1) and others */
		if (flags & 0x8000)
			off += 4;
		if (flags & 0x2000) {
			__be32 key;

			if (bpf_probe_read_kernel(&key, sizeof(key), l4 + off))
				return 0;
			vni = bpf_ntohl(key);
			off += 4;
		}
		if (flags & 0x1000)
			off += 4;
		*inner = l4 + off;
		if (g.proto == bpf_htons(HS_ETH_P_TEB))
			*inner_eth = 1;
		else if (g.proto == bpf_htons(HS_ETH_P_IP) || g.proto == bpf_htons(HS_ETH_P_IPV6))
			*inner_eth = 0;
		else
			return 0;
		kind = HS_TUNNEL_GRE;
	} else if (t->l4_proto == HS_IPPROTO_IPIP || t->l4_proto == HS_IPPROTO_IPV6) {
		*inner = l4;
		*inner_eth = 0;
		kind = HS_TUNNEL_IPIP;
	} else {
		return 0;
	}
	__builtin_memcpy(o->saddr, t->saddr, 16);
	__builtin_memcpy(o->daddr, t->daddr, 16);
	o->sport = t->l4_proto == HS_IPPROTO_UDP ? t->sport : 0;
	o->dport = t->l4_proto == HS_IPPROTO_UDP ? t->dport : 0;
	o->vni = vni;
	o->l3 = t->l3;
	o->proto = t->l4_proto;
	o->kind = kind;
	return 1;
}

/*
 * The headers of what p points at (an Ethernet frame when eth, else raw
 * IP), looking inside one tunnel. Returns HS_F_TUPLE (| HS_F_OUTER) when
 * parsed, 0 otherwise (t is then zero).
 */
static __always_inline __u16 hs_parse_at(const void *p, __u8 eth, struct sk_buff *skb,
					 struct hs_tuple *t, struct hs_outer *o)
{
	const void *l4, *inner = NULL;
	__u8 inner_eth = 0;
	int err;

	err = eth ? hs_parse_eth(p, skb, t, &l4) : hs_parse_ip(p, t, &l4);
	if (err) {
		__builtin_memset(t, 0, sizeof(*t));
		return 0;
	}
	if (!hs_tunnel(t, l4, o, &inner, &inner_eth))
		return HS_F_TUPLE;
	/* The inner packet is the packet; a tag on the underlay stays with it. */
	{
		__u16 tci = t->vlan_tci;
		__u8 vlan = t->tflags & HS_T_VLAN;

		__builtin_memset(t, 0, sizeof(*t));
		err = inner_eth ? hs_parse_eth(inner, NULL, t, &l4) : hs_parse_ip(inner, t, &l4);
		if (!err) {
			if (vlan && !(t->tflags & HS_T_VLAN)) {
				t->vlan_tci = tci;
				t->tflags |= HS_T_VLAN;
			}
			return HS_F_TUPLE | HS_F_OUTER;
		}
	}
	/* An inner packet we cannot read: the outer one is all there is. */
	__builtin_memset(o, 0, sizeof(*o));
	__builtin_memset(t, 0, sizeof(*t));
	return eth ? (hs_parse_eth(p, skb, t, &l4) ? 0 : HS_F_TUPLE)
		   : (hs_parse_ip(p, t, &l4) ? 0 : HS_F_TUPLE);
}

/*
 * Returns HS_F_TUPLE (| HS_F_L2 | HS_F_OUTER) when headers were parsed, 0
 * otherwise. o receives the tunnel around the packet, if any.
 */
static __always_inline __u16 hs_parse_skb(struct sk_buff *skb, struct net_device *dev,
					  struct hs_tuple *t, struct hs_outer *o)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 mac = BPF_CORE_READ(skb, mac_header);
	__u16 net = BPF_CORE_READ(skb, network_header);
	unsigned short type = dev ? BPF_CORE_READ(dev, type) : 0;
	__u16 f, off;

	if (!head)
		return 0;
	/*
	 * Ethernet framing where the device has it and the frame is built;
	 * otherwise (raw IP devices, or a packet still waiting for its link
	 * header, e.g. in a neighbour's queue) the network header.
	 */
	if ((type == HS_ARPHRD_ETHER || type == HS_ARPHRD_LOOPBACK) && mac != HS_MAC_UNSET &&
	    mac != net) {
		f = hs_parse_at(head + mac, 1, skb, t, o);
		if (f)
			return f | HS_F_L2;
	}
	/* Raw IP devices. */
	off = net != HS_MAC_UNSET && net != 0 ? net : mac;
	if (off == HS_MAC_UNSET)
		return 0;
	return hs_parse_at(head + off, 0, NULL, t, o);
}

#endif /* HOPSCOPE_PARSE_H */
