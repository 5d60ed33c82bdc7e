/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hooks_gso.h: software GSO segments. net_dev_start_xmit sees the
 * segments skb_gso_segment made from a parent net_dev_queue saw (hs_gso).
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_HOOKS_GSO_H
#define HOPSCOPE_HOOKS_GSO_H

/*
 * A software GSO segment enters its device's driver: its first sighting
 * (skb_gso_segment made it after net_dev_queue saw its parent). Only while
 * a parent is pending on this CPU (see hs_gso); every other skb costs one
 * lookup.
 */
SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(hs_net_dev_start_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	__u32 zero = 0;
	struct hs_gso_state *g = bpf_map_lookup_elem(&hs_gso, &zero);
	__u64 key = (__u64)skb, now, id, head;
	struct hs_parse_buf *p;
	struct hs_event *e;
	__u8 is_new = 0;
	__u32 fp = 0;
	__u16 flags = 0;

	if (!g || !g->parent)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - g->ts > HS_GSO_WINDOW_NS || BPF_CORE_READ(dev, ifindex) != g->ifindex) {
		g->parent = 0;
		return 0;
	}
	{
		struct hs_pkt_state *st = bpf_map_lookup_elem(&hs_packets, &key);

		/*
		 * A packet net_dev_queue saw just now is no segment; any other
		 * entry is a dead packet's (segments reuse freed sk_buffs).
		 */
		if (st && st->tx && now - st->last_seen < HS_GSO_WINDOW_NS)
			return 0;
		if (st && !bpf_map_delete_elem(&hs_packets, &key))
			__sync_fetch_and_add(&hs_followed, -1);
	}
	e = hs_reserve();
	if (!e)
		return 0;
	p = hs_parse_buf_of(HS_HOOK_NET_DEV_START_XMIT);
	hs_clear_headers(e);
	flags = hs_parse_skb((struct sk_buff *)skb, p, &e->tuple, &e->outer);
	if (flags & HS_F_TUPLE)
		fp = hs_fingerprint(&e->tuple);
	head = (__u64)skb->head;
	id = hs_identify(key, head, fp, now, 1, &is_new, p ? hs_win_hash(p) : 0, p ? p->at : 0,
			 &e->tuple);
	if (!id) {
		bpf_ringbuf_discard(e, 0);
		hs_count(HS_STAT_LOST);
		return 0;
	}
	hs_head_owner(head, key, id, now, fp);
	e->ts_ns = now;
	e->hook = HS_HOOK_NET_DEV_START_XMIT;
	e->packet_id = id;
	e->skb_addr = key;
	e->len = BPF_CORE_READ(skb, len);
	e->flags = flags | HS_F_NEW | HS_F_SEGMENT;
	e->related = g->parent;
	g->next++;
	e->seg_index = g->next;
	e->seg_count = g->segs;
	if (g->next >= g->segs)
		g->parent = 0;
	hs_fill_dev(e, (struct net_device *)dev);
	if (hs_cfg_snaplen && p && p->len)
		hs_send_snap((struct sk_buff *)skb, p->at, id, now);
	hs_submit(e);
	return 0;
}

#endif /* HOPSCOPE_HOOKS_GSO_H */
