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
 * - Only the linear part (head .. head + tail) holds bytes of this packet.
 *
 * The first HS_WIN bytes of the packet are copied once into a per-CPU
 * window (struct hs_parse_buf): with plain loads where the kernel allows
 * them (6.17+, see hs_head_u64 in filter.h), else with one probe read. The
 * parser then reads every header out of the window by offset, never the
 * skb again: one copy instead of a helper call per header. Offsets are
 * masked for the verifier; the length check keeps the bytes.
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

/* The first 8 bytes of every IPv6 extension header we walk. */
struct hs_ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
	__be16 frag_off; /* fragment header: offset << 3 | flags */
	__be32 _rest;
};

/* The first 8 bytes of a VXLAN or GENEVE header. */
struct hs_tun_hdr {
	__u8 b0;       /* VXLAN: flags (0x08: VNI valid); GENEVE: version << 6 | options length */
	__u8 b1;
	__be16 proto;  /* GENEVE: protocol of the payload */
	__u8 vni[3];
	__u8 _rsvd;
};

/* The fixed part of a GRE header, and its key. */
struct hs_gre_hdr {
	__be16 flags;  /* C 0x8000, K 0x2000, S 0x1000; version in the low 3 bits */
	__be16 proto;
};

/*
 * One header at a time is copied out of the window into this buffer, which
 * bounds the parser's stack whatever the headers (see Kernel facts in
 * filter.h).
 */
union hs_hdr {
	struct ethhdr eth;
	struct hs_vlan_hdr vlan;
	struct iphdr ip;
	struct ipv6hdr ip6;
	struct hs_ipv6_ext ext;
	struct hs_arp_ipv4 arp;
	struct hs_l4_hdr l4;
	struct hs_tun_hdr tun;
	struct hs_gre_hdr gre;
	__be32 word;
	__u8 byte;
};
_Static_assert(sizeof(union hs_hdr) == 40, "hs_wread copies 40 bytes");

/* Bytes of a packet the parser sees: headers past them are not read. */
#define HS_WIN 256
#define HS_WIN_MASK (HS_WIN - 1)
#define HS_WIN_NONE 0xffff

/*
 * The first bytes of one packet and how to read them. Lives in a per-CPU
 * scratch slot (its program's own: see Kernel facts in filter.h).
 */
struct hs_parse_buf {
	union hs_hdr h;    /* 40 bytes: hs_wread copies five words */    /* the header being parsed, copied out of win */
	__u32 len;         /* valid bytes in win (0: nothing to parse) */
	__u16 alt;         /* raw IP's offset in win if the frame does not parse */
	__u8 eth;          /* win starts at an Ethernet frame */
	__u8 vlan_present; /* a tag the driver stripped into the skb */
	__u16 vlan_tci;
	__u16 _pad;
	__u32 at;          /* where win starts in the skb, | 1 << 16: an Ethernet frame */
	__u32 _pad1;
	/* Room past HS_WIN so that a masked offset plus a header stays inside. */
	__u8 win[HS_WIN + 64];
};

/*
 * Copies size bytes (at most sizeof(union hs_hdr)) at off of the window
 * into w->h. 0, or -1 past the packet's bytes. A global function: the
 * verifier checks it once, and in the parser offsets stay plain numbers it
 * need not track precisely (tracking them split the parser's paths until
 * loading took seconds).
 */
__noinline int hs_wread(struct hs_parse_buf *w, __u32 off, __u32 size)
{
	/* Unaligned 8-byte loads: map values need no alignment on x86. */
	const __u64 *src;
	__u64 *dst;

	if (!w || off > HS_WIN || size > w->len || off > w->len - size)
		return -1;
	src = (const __u64 *)&w->win[off & HS_WIN_MASK];
	dst = (__u64 *)&w->h;
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
	dst[4] = src[4];
	return 0;
}

static __always_inline void hs_parse_l4(struct hs_parse_buf *w, __u32 off, __u8 proto,
					struct hs_tuple *t)
{
	union hs_hdr *h = &w->h;

	t->l4_proto = proto;
	if (proto == HS_IPPROTO_TCP) {
		if (hs_wread(w, off, sizeof(h->l4.tcp)))
			return;
		t->sport = bpf_ntohs(h->l4.tcp.source);
		t->dport = bpf_ntohs(h->l4.tcp.dest);
		t->tcp_seq = bpf_ntohl(h->l4.tcp.seq);
		t->tcp_ack = bpf_ntohl(h->l4.tcp.ack_seq);
		t->tcp_flags = h->l4.tcp.flags;
	} else if (proto == HS_IPPROTO_UDP) {
		if (hs_wread(w, off, sizeof(h->l4.udp)))
			return;
		t->sport = bpf_ntohs(h->l4.udp.source);
		t->dport = bpf_ntohs(h->l4.udp.dest);
		t->l4_len = bpf_ntohs(h->l4.udp.len);
	} else if (proto == HS_IPPROTO_ICMP || proto == HS_IPPROTO_ICMPV6) {
		if (hs_wread(w, off, sizeof(h->l4.icmp)))
			return;
		t->icmp_type = h->l4.icmp.type;
		t->icmp_code = h->l4.icmp.code;
		t->icmp_id = bpf_ntohs(h->l4.icmp.id);
		t->icmp_seq = bpf_ntohs(h->l4.icmp.seq);
	}
}

/* *l4: where the transport header starts (HS_WIN_NONE: a non-first fragment). */
static __always_inline int hs_parse_ipv4(struct hs_parse_buf *w, __u32 off, struct hs_tuple *t,
					 __u32 *l4)
{
	union hs_hdr *h = &w->h;
	__u8 proto, ihl;

	*l4 = HS_WIN_NONE;
	if (hs_wread(w, off, sizeof(h->ip)))
		return -1;
	if (h->ip.version != 4)
		return -1;
	t->l3 = HS_L3_IPV4;
	t->ethertype = HS_ETH_P_IP;
	__builtin_memcpy(t->saddr, &h->ip.saddr, 4);
	__builtin_memcpy(t->daddr, &h->ip.daddr, 4);
	t->ttl = h->ip.ttl;
	t->ip_id = bpf_ntohs(h->ip.id);
	t->ip_len = bpf_ntohs(h->ip.tot_len);
	proto = h->ip.protocol;
	ihl = h->ip.ihl;
	t->l4_proto = proto;
	/* Only the first fragment carries the transport header. */
	if (h->ip.frag_off & bpf_htons(0x1fff)) {
		t->tflags |= HS_T_FRAG;
		return 0;
	}
	*l4 = off + ihl * 4;
	hs_parse_l4(w, *l4, proto, t);
	return 0;
}

static __always_inline int hs_parse_ipv6(struct hs_parse_buf *w, __u32 off, struct hs_tuple *t,
					 __u32 *l4)
{
	union hs_hdr *h = &w->h;
	__u8 next;
	int i;

	*l4 = HS_WIN_NONE;
	if (hs_wread(w, off, sizeof(h->ip6)))
		return -1;
	if (h->ip6.version != 6)
		return -1;
	t->l3 = HS_L3_IPV6;
	t->ethertype = HS_ETH_P_IPV6;
	__builtin_memcpy(t->saddr, &h->ip6.saddr, 16);
	__builtin_memcpy(t->daddr, &h->ip6.daddr, 16);
	t->ttl = h->ip6.hop_limit;
	t->ip_len = bpf_ntohs(h->ip6.payload_len);
	t->flow_label = ((__u32)(h->ip6.flow_lbl[0] & 0x0f) << 16) |
			((__u32)h->ip6.flow_lbl[1] << 8) | h->ip6.flow_lbl[2];
	next = h->ip6.nexthdr;
	off += sizeof(struct ipv6hdr);
#pragma unroll
	for (i = 0; i < HS_IPV6_MAX_EXT; i++) {
		if (next != HS_IPPROTO_HOPOPTS && next != HS_IPPROTO_ROUTING &&
		    next != HS_IPPROTO_DSTOPTS && next != HS_IPPROTO_FRAGMENT && next != HS_IPPROTO_AH)
			break;
		if (hs_wread(w, off, sizeof(h->ext)))
			return 0;
		if (next == HS_IPPROTO_FRAGMENT) {
			if (h->ext.frag_off & bpf_htons(0xfff8)) {
				t->l4_proto = h->ext.nexthdr;
				t->tflags |= HS_T_FRAG;
				return 0;
			}
			off += 8;
		} else if (next == HS_IPPROTO_AH) {
			off += ((__u32)h->ext.hdrlen + 2) * 4;
		} else {
			off += ((__u32)h->ext.hdrlen + 1) * 8;
		}
		next = h->ext.nexthdr;
	}
	*l4 = off;
	hs_parse_l4(w, off, next, t);
	return 0;
}

static __always_inline int hs_parse_arp(struct hs_parse_buf *w, __u32 off, struct hs_tuple *t)
{
	union hs_hdr *h = &w->h;

	if (hs_wread(w, off, sizeof(h->arp)))
		return -1;
	t->l3 = HS_L3_ARP;
	t->ethertype = HS_ETH_P_ARP;
	t->arp_op = bpf_ntohs(h->arp.op);
	if (h->arp.ptype == bpf_htons(HS_ETH_P_IP) && h->arp.plen == 4) {
		__builtin_memcpy(t->saddr, h->arp.sip, 4);
		__builtin_memcpy(t->daddr, h->arp.tip, 4);
	}
	return 0;
}

static __always_inline int hs_parse_l3(struct hs_parse_buf *w, __u32 off, __u16 ethertype,
				       struct hs_tuple *t, __u32 *l4)
{
	*l4 = HS_WIN_NONE;
	if (ethertype == HS_ETH_P_IP)
		return hs_parse_ipv4(w, off, t, l4);
	if (ethertype == HS_ETH_P_IPV6)
		return hs_parse_ipv6(w, off, t, l4);
	if (ethertype == HS_ETH_P_ARP)
		return hs_parse_arp(w, off, t);
	t->l3 = HS_L3_OTHER;
	t->ethertype = ethertype;
	return 0;
}

/* Raw IP at off (the version nibble says which). */
static __always_inline int hs_parse_ip(struct hs_parse_buf *w, __u32 off, struct hs_tuple *t,
				       __u32 *l4)
{
	__u8 ver;

	*l4 = HS_WIN_NONE;
	if (hs_wread(w, off, 1))
		return -1;
	ver = w->h.byte >> 4;
	if (ver == 4)
		return hs_parse_ipv4(w, off, t, l4);
	if (ver == 6)
		return hs_parse_ipv6(w, off, t, l4);
	return -1;
}

/*
 * An Ethernet frame at off: its (up to two) VLAN tags and what they carry.
 * With accel, the skb may hold a tag the driver stripped (w->vlan_present).
 */
static __always_inline int hs_parse_eth(struct hs_parse_buf *w, __u32 off, __u8 accel,
					struct hs_tuple *t, __u32 *l4)
{
	union hs_hdr *h = &w->h;
	__u16 proto;
	int i;

	*l4 = HS_WIN_NONE;
	if (hs_wread(w, off, sizeof(h->eth)))
		return -1;
	off += sizeof(struct ethhdr);
	proto = bpf_ntohs(h->eth.h_proto);
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != HS_ETH_P_8021Q && proto != HS_ETH_P_8021AD)
			break;
		if (hs_wread(w, off, sizeof(h->vlan)))
			return -1;
		/* The innermost tag is the one that names the VLAN. */
		t->vlan_tci = bpf_ntohs(h->vlan.tci);
		t->tflags |= HS_T_VLAN;
		proto = bpf_ntohs(h->vlan.proto);
		off += sizeof(struct hs_vlan_hdr);
	}
	if (accel && !(t->tflags & HS_T_VLAN) && w->vlan_present) {
		t->vlan_tci = w->vlan_tci;
		t->tflags |= HS_T_VLAN;
	}
	return hs_parse_l3(w, off, proto, t, l4);
}

/*
 * Whether t (just parsed, its transport header at l4) is a tunnel whose
 * inner packet we read: then o describes the outer headers, *inner is
 * where the inner packet starts and *inner_eth says whether it is an
 * Ethernet frame.
 */
static __always_inline int hs_tunnel(struct hs_parse_buf *w, const struct hs_tuple *t, __u32 l4,
				     struct hs_outer *o, __u32 *inner, __u8 *inner_eth)
{
	union hs_hdr *h = &w->h;
	__u8 kind = HS_TUNNEL_NONE;
	__u32 vni = 0;

	if (l4 == HS_WIN_NONE || (t->l3 != HS_L3_IPV4 && t->l3 != HS_L3_IPV6))
		return 0;
	if (t->l4_proto == HS_IPPROTO_UDP) {
		__be16 proto;

		if (t->dport != HS_PORT_VXLAN && t->dport != HS_PORT_VXLAN_LINUX &&
		    t->dport != HS_PORT_GENEVE)
			return 0;
		if (hs_wread(w, l4 + 8, sizeof(h->tun)))
			return 0;
		vni = ((__u32)h->tun.vni[0] << 16) | ((__u32)h->tun.vni[1] << 8) | h->tun.vni[2];
		proto = h->tun.proto;
		if (t->dport == HS_PORT_GENEVE) {
			/* Version 0 only; options are 4-byte words. */
			if (h->tun.b0 >> 6)
				return 0;
			*inner = l4 + 16 + (h->tun.b0 & 0x3f) * 4;
			if (proto == bpf_htons(HS_ETH_P_TEB))
				*inner_eth = 1;
			else if (proto == bpf_htons(HS_ETH_P_IP) || proto == bpf_htons(HS_ETH_P_IPV6))
				*inner_eth = 0;
			else
				return 0;
			kind = HS_TUNNEL_GENEVE;
		} else {
			if (!(h->tun.b0 & 0x08))
				return 0;
			*inner = l4 + 16;
			*inner_eth = 1;
			kind = HS_TUNNEL_VXLAN;
		}
	} else if (t->l4_proto == HS_IPPROTO_GRE) {
		__u16 flags;
		__be16 proto;
		__u32 off = sizeof(struct hs_gre_hdr);

		if (hs_wread(w, l4, sizeof(h->gre)))
			return 0;
		flags = bpf_ntohs(h->gre.flags);
		proto = h->gre.proto;
		if (flags & 0x7)
			return 0; /* PPTP's enhanced GRE (version 1) and others */
		if (flags & 0x8000)
			off += 4;
		if (flags & 0x2000) {
			if (hs_wread(w, l4 + off, sizeof(h->word)))
				return 0;
			vni = bpf_ntohl(h->word);
			off += 4;
		}
		if (flags & 0x1000)
			off += 4;
		*inner = l4 + off;
		if (proto == bpf_htons(HS_ETH_P_TEB))
			*inner_eth = 1;
		else if (proto == bpf_htons(HS_ETH_P_IP) || proto == bpf_htons(HS_ETH_P_IPV6))
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
 * The headers at off (an Ethernet frame when eth, else raw IP), looking
 * inside one tunnel. Returns HS_F_TUPLE (| HS_F_OUTER) when parsed, 0
 * otherwise (t is then zero).
 */
static __always_inline __u16 hs_parse_at(struct hs_parse_buf *w, __u32 off, __u8 eth,
					 struct hs_tuple *t, struct hs_outer *o)
{
	__u32 l4, inner = HS_WIN_NONE;
	__u8 inner_eth = 0, vlan;
	__u16 tci;
	int err;

	err = eth ? hs_parse_eth(w, off, 1, t, &l4) : hs_parse_ip(w, off, t, &l4);
	if (err) {
		__builtin_memset(t, 0, sizeof(*t));
		return 0;
	}
	if (!hs_tunnel(w, t, l4, o, &inner, &inner_eth))
		return HS_F_TUPLE;
	/* The inner packet is the packet; a tag on the underlay stays with it. */
	tci = t->vlan_tci;
	vlan = t->tflags & HS_T_VLAN;
	__builtin_memset(t, 0, sizeof(*t));
	err = inner_eth ? hs_parse_eth(w, inner, 0, t, &l4) : hs_parse_ip(w, inner, t, &l4);
	if (!err) {
		if (vlan && !(t->tflags & HS_T_VLAN)) {
			t->vlan_tci = tci;
			t->tflags |= HS_T_VLAN;
		}
		return HS_F_TUPLE | HS_F_OUTER;
	}
	/* An inner packet we cannot read: the outer one is all there is. */
	__builtin_memset(o, 0, sizeof(*o));
	__builtin_memset(t, 0, sizeof(*t));
	err = eth ? hs_parse_eth(w, off, 1, t, &l4) : hs_parse_ip(w, off, t, &l4);
	return err ? 0 : HS_F_TUPLE;
}

/* hs_win_fill's at: let the skb and its device say where the packet starts. */
#define HS_WIN_FRAME_OF_SKB 0xffffffffu

/* Header bytes the hash covers: every header a hop may rewrite but deep tunnels'. */
#define HS_HASH_WORDS 16
#define HS_HASH_BYTES (HS_HASH_WORDS * 8)

/*
 * Copies the first bytes of skb's packet into w (at most limit: HS_WIN to
 * parse, HS_HASH_BYTES to hash; payload bytes past the headers are often
 * in cache lines no one touched yet), and notes how to read them
 * (w->at: where they start, | 1 << 16 for an Ethernet frame). Where at says
 * (a framing an earlier sighting found: the device may be gone by now, TCP
 * clears skb->dev), or else Ethernet framing where the device has it and
 * the frame is built; otherwise (raw IP devices, or a packet still waiting
 * for its link header, e.g. in a neighbour's queue) from the network header.
 * skb must be a BTF pointer (a tracepoint's argument, or a field loaded from
 * one): its fields are plain loads. Not inlined: one copy for every caller.
 */
static __noinline void hs_win_fill(struct hs_parse_buf *w, struct sk_buff *skb, __u32 at,
				   __u32 limit)
{
	const unsigned char *head = skb->head;
	__u16 mac = skb->mac_header;
	__u16 net = skb->network_header;
	__u32 tail = skb->tail;
	__u32 start, n;
	__u8 eth = 0;

	w->len = 0;
	w->at = 0;
	w->alt = HS_WIN_NONE;
	w->eth = 0;
	w->vlan_present = 0;
	w->vlan_tci = 0;
	if (!head)
		return;
	if (at != HS_WIN_FRAME_OF_SKB) {
		start = at & 0xffff;
		eth = !!(at >> 16);
	} else {
		struct net_device *dev = skb->dev;
		unsigned short type = dev ? dev->type : 0;

		if ((type == HS_ARPHRD_ETHER || type == HS_ARPHRD_LOOPBACK) &&
		    mac != HS_MAC_UNSET && mac != net) {
			start = mac;
			eth = 1;
		} else {
			start = net != HS_MAC_UNSET && net != 0 ? net : mac;
			if (start == HS_MAC_UNSET)
				return;
		}
	}
	if (eth) {
		__u16 raw = net != HS_MAC_UNSET && net != 0 ? net : mac;

		w->eth = 1;
		if (raw >= start && raw - start < HS_WIN)
			w->alt = raw - start;
		/* A tag the driver stripped into the skb (hw accel). */
		if (bpf_core_field_exists(skb->vlan_all))
			w->vlan_present = skb->vlan_all != 0;
		else if (bpf_core_field_exists(((struct sk_buff___hs_old *)skb)->vlan_present))
			w->vlan_present = BPF_CORE_READ_BITFIELD(
				(struct sk_buff___hs_old *)skb, vlan_present);
		w->vlan_tci = skb->vlan_tci;
	}
	if (tail <= start)
		return;
	n = tail - start < HS_WIN ? tail - start : HS_WIN;
	if (n > limit)
		n = limit;
	if (bpf_core_enum_value_exists(enum bpf_features, BPF_FEAT_RDONLY_CAST_TO_VOID)) {
		/*
		 * Plain loads (see hs_head_u64 in filter.h), in blocks of 32
		 * bytes up to n: bytes past n go unused.
		 */
		const __u64 *src = (const __u64 *)(head + start);
		__u64 *dst = (__u64 *)w->win;

#define HS_COPY_BLOCK(k)                                                        \
		if (n > (k) * 32) {                                             \
			dst[(k) * 4] = src[(k) * 4];                            \
			dst[(k) * 4 + 1] = src[(k) * 4 + 1];                    \
			dst[(k) * 4 + 2] = src[(k) * 4 + 2];                    \
			dst[(k) * 4 + 3] = src[(k) * 4 + 3];                    \
		}
		HS_COPY_BLOCK(0)
		HS_COPY_BLOCK(1)
		HS_COPY_BLOCK(2)
		HS_COPY_BLOCK(3)
		HS_COPY_BLOCK(4)
		HS_COPY_BLOCK(5)
		HS_COPY_BLOCK(6)
		HS_COPY_BLOCK(7)
#undef HS_COPY_BLOCK
	} else {
		/* Hide the bound from the compiler so the mask the verifier needs stays. */
		asm volatile("" : "+r"(n));
		n &= HS_WIN * 2 - 1;
		if (n > HS_WIN || bpf_probe_read_kernel(w->win, n, head + start))
			return;
	}
	w->len = n;
	w->at = start | (__u32)eth << 16;
}

/*
 * A hash of the first bytes of the packet in w (and how they are framed):
 * equal for two sightings whose headers nobody rewrote in between. Never 0.
 */
static __always_inline __u32 hs_win_hash(const struct hs_parse_buf *w)
{
	const __u64 *v = (const __u64 *)w->win;
	__u32 n = w->len < HS_HASH_WORDS * 8 ? w->len : HS_HASH_WORDS * 8;
	__u64 h = 0x9e3779b97f4a7c15ULL ^ n ^ ((__u64)w->vlan_tci << 32) ^
		  ((__u64)w->vlan_present << 48) ^ ((__u64)w->eth << 56);
	int i;

#pragma unroll
	for (i = 0; i < HS_HASH_WORDS; i++) {
		__s32 left = (__s32)n - i * 8;
		__u64 x = v[i];

		if (left <= 0)
			x = 0;
		else if (left < 8)
			x &= (1ULL << (left * 8)) - 1;
		h = (h ^ x) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return (__u32)h ? (__u32)h : 1;
}

/*
 * The headers in w (filled by hs_win_fill). Returns HS_F_TUPLE (| HS_F_L2 |
 * HS_F_OUTER) when headers were parsed, 0 otherwise. o receives the tunnel
 * around the packet, if any. A global function: the verifier checks it once
 * per program, on its own, and each caller sees only its result (checked
 * inside every caller's paths, it took 6.1's verifier past its limit).
 */
__noinline __u16 hs_parse_win(struct hs_parse_buf *w, struct hs_tuple *t, struct hs_outer *o)
{
	__u16 f;

	if (!w || !t || !o || !w->len)
		return 0;
	if (!w->eth)
		return hs_parse_at(w, 0, 0, t, o);
	f = hs_parse_at(w, 0, 1, t, o);
	if (f)
		return f | HS_F_L2;
	if (w->alt == HS_WIN_NONE)
		return 0;
	return hs_parse_at(w, w->alt, 0, t, o);
}

/* Fills w from skb (a BTF pointer) and parses it: see the two above. */
static __always_inline __u16 hs_parse_skb(struct sk_buff *skb, struct hs_parse_buf *w,
					  struct hs_tuple *t, struct hs_outer *o)
{
	if (!w)
		return 0;
	hs_win_fill(w, skb, HS_WIN_FRAME_OF_SKB, HS_WIN);
	return hs_parse_win(w, t, o);
}

#endif /* HOPSCOPE_PARSE_H */
