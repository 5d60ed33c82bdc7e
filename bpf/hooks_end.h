/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hooks_end.h: where a packet's life ends. Routine drop reasons
 * (hs_quiet_reason), drop stacks (hs_drop_stack), packets first seen at their
 * drop (hs_first_seen_dropped), the common free path (hs_on_free: a
 * struct hs_end), and the
 * programs consume_skb and kfree_skb.
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_HOOKS_END_H
#define HOPSCOPE_HOOKS_END_H

/* A routine free (see hs_cfg_quiet_reasons). */
static __always_inline int hs_quiet_reason(__u32 reason)
{
	__u64 word;

	if (reason >= 256)
		return 1;
	/* Constant indexes: the verifier bounds a variable one too loosely. */
	switch (reason >> 6) {
	case 0: word = hs_cfg_quiet_reasons[0]; break;
	case 1: word = hs_cfg_quiet_reasons[1]; break;
	case 2: word = hs_cfg_quiet_reasons[2]; break;
	default: word = hs_cfg_quiet_reasons[3]; break;
	}
	return !!(word & (1ULL << (reason & 63)));
}

/* --drop-stack: the kernel stack of a drop, as stack id + 1 (0: none). */
static __always_inline __u32 hs_drop_stack(void *ctx, __u32 reason)
{
	long id;

	if (!hs_cfg_drop_stack || hs_quiet_reason(reason))
		return 0;
	id = bpf_get_stackid(ctx, &hs_stacks, 0);
	return id < 0 ? 0 : (__u32)id + 1;
}

/* An skb never followed, dropped for a reason that is not routine. */
static __always_inline int hs_first_seen_dropped(void *ctx, struct sk_buff *skb, __u64 location,
						 __u32 reason)
{
	struct net_device *dev;
	struct hs_event *e;

	const struct hs_filter_ctl *ctl;

	if (hs_quiet_reason(reason))
		return 0;
	dev = skb->dev;
	if (!dev || !hs_in_scope(dev))
		return 0;
	ctl = hs_filter_active();
	if (ctl) {
		struct hs_scratch *s = hs_scratch_of(HS_HOOK_KFREE_SKB);

		if (!s || !hs_cbpf_match(skb, BPF_CORE_READ(dev, type), ctl->epoch, &s->run))
			return 0;
	}
	e = hs_reserve();
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->hook = HS_HOOK_KFREE_SKB;
	e->packet_id = __sync_fetch_and_add(&hs_next_packet_id, 1);
	hs_count(HS_STAT_PACKETS);
	e->skb_addr = (__u64)skb;
	e->len = BPF_CORE_READ(skb, len);
	hs_clear_headers(e);
	e->flags = hs_parse_skb(skb, hs_parse_buf_of(HS_HOOK_KFREE_SKB), &e->tuple, &e->outer) |
		   HS_F_NEW;
	e->sk_cgroup = hs_sk_cgroup(skb);
	e->location = location;
	e->drop_reason = reason;
	e->aux = hs_drop_stack(ctx, reason);
	hs_fill_dev(e, dev);
	hs_submit(e);
	return 0;
}

static __always_inline int hs_on_free(void *ctx, struct sk_buff *skb, __u8 hook, __u64 location,
				      __u32 reason)
{
	__u64 key = (__u64)skb;
	struct hs_pkt_state *st = hs_nothing_followed() ? NULL : bpf_map_lookup_elem(&hs_packets, &key);
	__u32 netns, ifindex;
	struct net_device *dev;
	struct hs_end *r;
	struct net *net;
	__u8 tx;
	__u64 id;

	if (!st) {
		if (hs_filter_active())
			hs_forget_rejected(skb);
		return hook == HS_HOOK_KFREE_SKB ? hs_first_seen_dropped(ctx, skb, location, reason) : 0;
	}
	id = st->packet_id;
	tx = st->tx;
	if (!hs_same_packet(skb, st, hook)) {
		/* A stale entry: its packet ended unseen, this skb is another. */
		if (!bpf_map_delete_elem(&hs_packets, &key))
			__sync_fetch_and_add(&hs_followed, -1);
		return hook == HS_HOOK_KFREE_SKB ? hs_first_seen_dropped(ctx, skb, location, reason) : 0;
	}
	if (!bpf_map_delete_elem(&hs_packets, &key))
		__sync_fetch_and_add(&hs_followed, -1);
	/* Where it ended: a device no hook showed (macvlan's rx handler) says so. */
	dev = skb->dev;
	net = dev ? dev->nd_net.net : NULL;
	netns = net ? net->ns.inum : 0;
	ifindex = dev ? dev->ifindex : 0;
	if (dev)
		hs_send_dev(dev, netns, ifindex);
	r = hs_reserve_bytes(sizeof(*r));
	if (!r)
		return 0;
	r->kind = HS_REC_END;
	r->hook = hook;
	r->_pad0 = 0;
	r->flags = 0;
	r->cpu = bpf_get_smp_processor_id();
	r->ts_ns = bpf_ktime_get_ns();
	r->packet_id = id;
	r->skb_addr = key;
	r->location = location;
	r->netns_ino = netns;
	r->ifindex = ifindex;
	r->drop_reason = reason;
	r->stack = hook == HS_HOOK_KFREE_SKB ? hs_drop_stack(ctx, reason) : 0;
	r->seg_count = 0;
	r->_pad1 = 0;
	r->_pad2 = 0;
	{
		struct skb_shared_info *sh =
			(void *)(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end));
		__u32 dataref = BPF_CORE_READ(sh, dataref.counter);
		__u16 gso_size = BPF_CORE_READ(sh, gso_size);

		if (BPF_CORE_READ_BITFIELD_PROBED(skb, cloned) && (dataref & 0xffff) > 1)
			r->flags |= HS_F_SHARED;
		/*
		 * Consumed on its way out right after skb_gso_segment cut it: its
		 * segments come next (a GRO packet consumed on receipt is no such).
		 */
		if (hook == HS_HOOK_CONSUME_SKB && gso_size && tx) {
			__u32 zero = 0;
			struct hs_gso_state *g = bpf_map_lookup_elem(&hs_gso, &zero);

			r->flags |= HS_F_SEGMENTED;
			r->seg_count = BPF_CORE_READ(sh, gso_segs);
			if (g && dev) {
				g->parent = id;
				g->ts = r->ts_ns;
				g->ifindex = ifindex;
				g->segs = r->seg_count;
				g->next = 0;
			}
		}
	}
	hs_submit(r);
	return 0;
}

SEC("tp_btf/consume_skb")
int BPF_PROG(hs_consume_skb, struct sk_buff *skb)
{
	return hs_on_free(ctx, skb, HS_HOOK_CONSUME_SKB, 0, 0);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(hs_kfree_skb, struct sk_buff *skb, void *location, int reason)
{
	return hs_on_free(ctx, skb, HS_HOOK_KFREE_SKB, (__u64)location, (__u32)reason);
}

#endif /* HOPSCOPE_HOOKS_END_H */
