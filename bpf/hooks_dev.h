/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hooks_dev.h: the device hooks. Device names sent once per CPU
 * (hs_send_dev), compact hops (hs_send_hop), the common path of every hook
 * that sees a live skb on a device (hs_on_skb), and the programs:
 * net_dev_queue, netif_rx, netif_receive_skb, napi_gro_receive_entry,
 * net_dev_xmit.
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_HOOKS_DEV_H
#define HOPSCOPE_HOOKS_DEV_H

/*
 * Devices whose names this CPU sent: a direct-mapped cache, slot by a hash
 * of (netns, ifindex). A miss (first use, a rename, another device in the
 * slot) sends the name again; that costs a small record, while a hash map
 * lookup on every hop cost more than the rest of it.
 */
struct hs_dev_sent {
	__u64 key;  /* netns << 32 | ifindex (0: empty) */
	__u64 name; /* hash of the name sent */
};

#define HS_DEV_SLOTS 256
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HS_DEV_SLOTS);
	__type(key, __u32);
	__type(value, struct hs_dev_sent);
} hs_devs SEC(".maps");

/* dev's name, unless this CPU sent it already: userspace names hs_hops by it. */
static __always_inline void hs_send_dev(struct net_device *dev, __u32 netns, __u32 ifindex)
{
	__u64 key = ((__u64)netns << 32) | ifindex, name[2], nh;
	__u32 slot = (__u32)((key * 0x9e3779b97f4a7c15ULL) >> 56) & (HS_DEV_SLOTS - 1);
	struct hs_dev_sent *c;
	struct hs_dev *d;
	struct net *net;

	if (!dev)
		return;
	/* Plain loads: dev is a BTF pointer, its name a field. */
	name[0] = *(const __u64 *)&dev->name[0];
	name[1] = *(const __u64 *)&dev->name[8];
	nh = name[0] ^ (name[1] * 0x9e3779b97f4a7c15ULL);
	c = bpf_map_lookup_elem(&hs_devs, &slot);
	if (!c || (c->key == key && c->name == nh))
		return;
	d = hs_reserve_bytes(sizeof(*d));
	if (!d)
		return;
	d->kind = HS_REC_DEV;
	d->_pad0 = 0;
	d->netns_ino = netns;
	d->netns_cookie = 0;
	net = dev->nd_net.net;
	if (net && bpf_core_field_exists(net->net_cookie))
		d->netns_cookie = net->net_cookie;
	d->ifindex = ifindex;
	d->_pad1 = 0;
	__builtin_memcpy(d->ifname, name, sizeof(name));
	hs_submit(d);
	c->key = key;
	c->name = nh;
}

/* A hop of packet id on dev, whose headers are the packet's last ones sent. */
static __always_inline void hs_send_hop(__u8 hook, __u64 id, __u64 skb, __u32 len,
					struct net_device *dev, __u64 now, __s32 rc)
{
	struct net *net = dev ? dev->nd_net.net : NULL;
	__u32 netns = net ? net->ns.inum : 0, ifindex = dev ? dev->ifindex : 0;
	struct hs_hop *h;

	hs_send_dev(dev, netns, ifindex);
	h = hs_reserve_bytes(sizeof(*h));
	if (!h)
		return;
	h->kind = HS_REC_HOP;
	h->hook = hook;
	h->_pad0 = 0;
	h->flags = 0;
	h->cpu = bpf_get_smp_processor_id();
	h->ts_ns = now;
	h->packet_id = id;
	h->skb_addr = skb;
	h->netns_ino = netns;
	h->ifindex = ifindex;
	h->len = len;
	h->xmit_rc = rc;
	hs_submit(h);
}

/* A hook that sees a live skb with a device: gate, identify, parse, emit. */
static __always_inline int hs_on_skb(struct sk_buff *skb, __u8 hook)
{
	struct net_device *dev = skb->dev;
	const struct hs_filter_ctl *ctl;
	struct hs_parse_buf *p;
	struct hs_pkt_state *st;
	__u64 now, head, key = (__u64)skb;
	__u8 is_new = 0;
	__u16 flags = 0;
	struct hs_event *e;
	__u32 fp = 0, hash;
	__u8 snap;
	__u64 id;

	if (!hs_in_scope(dev)) {
		if (hook != HS_HOOK_NET_DEV_QUEUE && hs_scoped())
			hs_set_last_followed(0);
		return 0;
	}
	ctl = hs_filter_active();
	if (ctl) {
		__u8 rx = hook != HS_HOOK_NET_DEV_QUEUE;
		__u32 tag = hs_rejected_tag(skb);

		/*
		 * The common case under a filter: a cache hit, and no packet
		 * followed (one check of a global) or none at this address. A
		 * packet rejected under one set of headers and followed since
		 * under another (its outer headers matched, then it was
		 * decapsulated) keeps its cache entry: the followed one wins.
		 * (key, not &skb: older verifiers forget the type of skb's slot.)
		 */
		if (hs_was_rejected((__u64)skb, (__u64)skb->head, tag) &&
		    (hs_nothing_followed() || !bpf_map_lookup_elem(&hs_packets, &key))) {
			if (rx)
				hs_set_last_followed(0);
			return 0;
		}
		if (!hs_follow(skb, ctl, tag, hook))
			return 0;
	}
	if (!ctl && hook != HS_HOOK_NET_DEV_QUEUE && hs_scoped())
		hs_set_last_followed(1);
	p = hs_parse_buf_of(hook);
	if (!p)
		return 0;
	now = bpf_ktime_get_ns();
	head = (__u64)skb->head;
	hs_win_fill(p, skb, HS_WIN_FRAME_OF_SKB, HS_HASH_BYTES);
	hash = hs_win_hash(p);
	/*
	 * A packet followed already, whose header bytes are those it had where
	 * they were last sent: the same packet (an address reused by another
	 * packet has other headers), and a compact hop says all. A local
	 * sender's own transmit keeps the full record (its task and cgroup).
	 */
	st = hs_nothing_followed() ? NULL : bpf_map_lookup_elem(&hs_packets, &key);
	if (st && p->len && st->hdr_hash == hash && st->head == head &&
	    now - st->last_seen <= hs_cfg_max_packet_age_ns &&
	    !(hook == HS_HOOK_NET_DEV_QUEUE && skb->sk)) {
		id = st->packet_id;
		st->last_seen = now;
		st->tx = hook == HS_HOOK_NET_DEV_QUEUE;
		hs_send_hop(hook, id, key, skb->len, dev, now, 0);
		if (hook == HS_HOOK_NETIF_RECEIVE_SKB)
			hs_note_rx(key, id, dev ? dev->nd_net.net->ns.inum : 0,
				   ((__u64)st->is_tcp << 32) | ((__u64)st->sport << 16) | st->dport,
				   now);
		return 0;
	}
	/*
	 * The headers go straight into the record, not through the stack (a
	 * tuple there, and the registers it kept busy, doubled this frame).
	 * Without a record the packet still gets its identity (and no hash: its
	 * next hop sends its headers). The record is tested once: 6.1's
	 * verifier cannot tell that a record proven there is not NULL later.
	 */
	/* A local sender's transmit of bytes sent already needs no snapshot. */
	snap = hs_cfg_snaplen && !(st && p->len && st->hdr_hash == hash && st->head == head);
	e = hs_reserve();
	if (!e) {
		hs_identify(key, head, 0, now, hook == HS_HOOK_NET_DEV_QUEUE, &is_new, 0, p->at,
			    &hs_no_tuple);
		return 0;
	}
	/* The headers are parsed: the whole window (tunnels go deeper). */
	if (p->len == HS_HASH_BYTES)
		hs_win_fill(p, skb, HS_WIN_FRAME_OF_SKB, HS_WIN);
	hs_clear_headers(e);
	flags = hs_parse_win(p, &e->tuple, &e->outer);
	if (flags & HS_F_TUPLE)
		fp = hs_fingerprint(&e->tuple);
	id = hs_identify(key, head, fp, now, hook == HS_HOOK_NET_DEV_QUEUE, &is_new, hash, p->at,
			 &e->tuple);
	if (!id) {
		/* Emitted, never received: counted as lost. */
		bpf_ringbuf_discard(e, 0);
		hs_count(HS_STAT_LOST);
		return 0;
	}
	if (is_new) {
		__u16 clone = hs_adopt_clone(skb, fp, &id, &e->related);

		flags |= clone;
		/* A packet taken over is no new one. */
		if (clone == HS_F_BRANCH)
			is_new = 0;
		else
			hs_head_owner(head, key, id, now, fp);
	}
	/*
	 * Every tuple a followed packet shows (NAT rewrites it) names its flow:
	 * whole flows follow it, socket annotations are kept for it.
	 */
	if (ctl && (flags & HS_F_TUPLE) && hs_flow_learn(&e->tuple, ctl->epoch, hook))
		hs_conn_learn(skb, ctl->epoch);
	e->ts_ns = now;
	e->hook = hook;
	e->packet_id = id;
	e->skb_addr = key;
	e->len = skb->len;
	e->flags = flags | (is_new ? HS_F_NEW : 0);
	hs_fill_dev(e, dev);
	if (hook == HS_HOOK_NET_DEV_QUEUE)
		hs_fill_sender(e, skb, is_new);
	if (snap)
		hs_send_snap(skb, p->at, id, now);
	if (hook == HS_HOOK_NETIF_RECEIVE_SKB)
		hs_note_rx(key, id, e->netns_ino,
			   ((__u64)(fp && e->tuple.l4_proto == HS_IPPROTO_TCP) << 32) |
				   ((__u64)e->tuple.sport << 16) | e->tuple.dport,
			   now);
	hs_submit(e);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(hs_net_dev_queue, struct sk_buff *skb)
{
	return hs_on_skb(skb, HS_HOOK_NET_DEV_QUEUE);
}

SEC("tp_btf/netif_rx")
int BPF_PROG(hs_netif_rx, struct sk_buff *skb)
{
	return hs_on_skb(skb, HS_HOOK_NETIF_RX);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(hs_netif_receive_skb, struct sk_buff *skb)
{
	return hs_on_skb(skb, HS_HOOK_NETIF_RECEIVE_SKB);
}

SEC("tp_btf/napi_gro_receive_entry")
int BPF_PROG(hs_napi_gro_receive_entry, struct sk_buff *skb)
{
	return hs_on_skb(skb, HS_HOOK_NAPI_GRO_RECEIVE);
}

/* The skb may be gone: use its address and the tracepoint's own arguments. */
SEC("tp_btf/net_dev_xmit")
int BPF_PROG(hs_net_dev_xmit, struct sk_buff *skb, int rc, struct net_device *dev,
	     unsigned int skb_len)
{
	__u64 key = (__u64)skb;
	struct hs_pkt_state *st;

	if (hs_nothing_followed())
		return 0;
	st = bpf_map_lookup_elem(&hs_packets, &key);
	if (!st || !hs_in_scope(dev))
		return 0;
	/* No headers here, so none changed: always a compact hop. */
	hs_send_hop(HS_HOOK_NET_DEV_XMIT, st->packet_id, key, skb_len, dev, bpf_ktime_get_ns(), rc);
	return 0;
}

#endif /* HOPSCOPE_HOOKS_DEV_H */
