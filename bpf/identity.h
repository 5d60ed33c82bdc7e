/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * identity.h: packet identities. Which data buffer belongs to which
 * packet (hs_head_owner), looking up or creating a packet's id
 * (hs_identify), clones and branches (hs_adopt_clone), following under a
 * filter (hs_follow); and two helpers the device hooks keep off their own
 * frames: the sender of a transmit (hs_fill_sender) and the rx note that
 * TCP and socket hooks match later (hs_note_rx).
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_IDENTITY_H
#define HOPSCOPE_IDENTITY_H

static __always_inline __u32 hs_head_slot(__u64 head)
{
	__u64 v = 0;

	/*
	 * A number: since 6.17 a plain load of skb->head is a read-only
	 * pointer to the verifier, and no part of it may be stored as a key.
	 */
	bpf_probe_read_kernel(&v, sizeof(v), &head);
	return (__u32)((v * 0x9e3779b97f4a7c15ULL) >> 32) & (HS_HEAD_SLOTS - 1);
}

/*
 * The check word of slot h, from its fields as stored (volatile loads:
 * numbers to the verifier, where the addresses written were pointers).
 */
static __always_inline __u64 hs_head_check(const struct hs_head_state *h)
{
	__u64 head = *(volatile const __u64 *)&h->head, skb = *(volatile const __u64 *)&h->skb;

	return ((head ^ skb) * 0x9e3779b97f4a7c15ULL) ^ (h->packet_id * 0xc2b2ae3d27d4eb4fULL) ^
	       h->fingerprint;
}

/* The slot of data buffer head, when it holds that buffer whole. */
static __always_inline struct hs_head_state *hs_head_of(__u64 head)
{
	__u32 slot = hs_head_slot(head);
	struct hs_head_state *h = bpf_map_lookup_elem(&hs_heads, &slot);

	if (!h || h->head != head || h->check != hs_head_check(h))
		return NULL;
	return h;
}

/* Whose data skb's buffer holds from now on (see hs_heads). */
static __always_inline void hs_head_owner(__u64 head, __u64 skb, __u64 id, __u64 now, __u32 fp)
{
	__u32 slot = hs_head_slot(head);
	struct hs_head_state *h = bpf_map_lookup_elem(&hs_heads, &slot);

	if (!h)
		return;
	h->head = head;
	h->packet_id = id;
	h->skb = skb;
	h->ts = now;
	h->taken = 0;
	h->fingerprint = fp;
	h->check = hs_head_check(h);
}

/*
 * Looks up or creates the packet identity of skb. fp is the fingerprint of
 * this sighting (0 if headers were not parsed). Sets *is_new. Returns the
 * packet id, or 0 on failure.
 */
static __always_inline __u64 hs_identify(__u64 skb, __u64 head, __u32 fp, __u64 now, __u8 tx,
					 __u8 *is_new, __u32 hash, __u32 win_at, const struct hs_tuple *t)
{
	struct hs_pkt_state *st = bpf_map_lookup_elem(&hs_packets, &skb);
	struct hs_pkt_state fresh = {};
	__u8 is_tcp = fp && t->l4_proto == HS_IPPROTO_TCP;

	if (st) {
		int reused = (fp && st->fingerprint && fp != st->fingerprint) ||
			     now - st->last_seen > hs_cfg_max_packet_age_ns;
		if (!reused) {
			st->last_seen = now;
			st->tx = tx;
			/* pskb_expand_head() may have moved the data. */
			if (st->head != head)
				hs_head_owner(head, skb, st->packet_id, now, st->fingerprint);
			st->head = head;
			if (!st->fingerprint)
				st->fingerprint = fp;
			st->hdr_hash = hash;
			st->win_at = win_at;
			st->is_tcp = is_tcp;
			st->sport = t->sport;
			st->dport = t->dport;
			*is_new = 0;
			return st->packet_id;
		}
		hs_count(HS_STAT_REUSED);
	}
	fresh.packet_id = __sync_fetch_and_add(&hs_next_packet_id, 1);
	fresh.last_seen = now;
	fresh.head = head;
	fresh.fingerprint = fp;
	fresh.tx = tx;
	fresh.hdr_hash = hash;
	fresh.win_at = win_at;
	fresh.is_tcp = is_tcp;
	fresh.sport = t->sport;
	fresh.dport = t->dport;
	if (bpf_map_update_elem(&hs_packets, &skb, &fresh, BPF_ANY))
		return 0;
	__sync_fetch_and_add(&hs_followed, 1);
	hs_count(HS_STAT_PACKETS);
	*is_new = 1;
	return fresh.packet_id;
}

/*
 * A packet first seen now (id) whose skb is a clone: whose data does it
 * share? The first clone of a followed packet seen on a device takes the
 * packet over (it is what goes on: a bridge forwards a clone and hands the
 * original to its own stack), and the original skb goes on as a branch
 * with the fresh id: returns the packet id to report, with HS_F_BRANCH and
 * *related = the branch. A later clone is a copy: HS_F_CLONE, *related =
 * the packet it copies. 0 flags: no clone of anything followed.
 */
static __noinline __u16 hs_adopt_clone(struct sk_buff *skb, __u32 fp, __u64 *id, __u64 *related)
{
	__u64 head = (__u64)skb->head, now = bpf_ktime_get_ns();
	struct hs_head_state *h;
	struct hs_pkt_state *mine, *orig;
	__u64 key = (__u64)skb, branch;

	if (!BPF_CORE_READ_BITFIELD(skb, cloned))
		return 0;
	h = hs_head_of(head);
	/*
	 * The same headers, or it is a buffer freed (TCP frees without a
	 * tracepoint) and handed to another packet, not a clone.
	 */
	if (!h || h->skb == key || !fp || fp != h->fingerprint ||
	    now - h->ts > hs_cfg_max_packet_age_ns)
		return 0;
	orig = h->taken ? NULL : bpf_map_lookup_elem(&hs_packets, &h->skb);
	if (!orig || orig->packet_id != h->packet_id) {
		*related = h->packet_id;
		return HS_F_CLONE;
	}
	mine = bpf_map_lookup_elem(&hs_packets, &key);
	if (!mine)
		return 0;
	branch = *id;
	mine->packet_id = h->packet_id;
	orig->packet_id = branch;
	*id = h->packet_id;
	*related = branch;
	h->skb = key;
	h->check = hs_head_check(h);
	h->taken = 1;
	h->ts = now;
	return HS_F_BRANCH;
}


/*
 * With a filter, for an skb not in hs_rejected (the caller looked, tag is
 * its tag): whether this sighting is of a packet to follow. Yes for a
 * packet followed already (the same one: same data buffer or headers, not
 * too old), for one the filter accepts, and with whole flows for one of a
 * flow a matching packet started. A no is remembered in hs_rejected. Not
 * inlined: its branches are verified once, not once per path of the caller.
 * Its frame sits under the device hook's in the filter's call chain: it
 * keeps few values live (skb and ctl fields are loaded again where used).
 */
static __noinline int hs_follow(struct sk_buff *skb, const struct hs_filter_ctl *ctl, __u32 tag,
				__u32 hook)
{
	struct hs_scratch *s = hs_scratch_of(hook);
	__u64 key = (__u64)skb;
	struct hs_pkt_state *st;
	int parsed = 0;

	if (!s)
		return 0;
	st = hs_nothing_followed() ? NULL : bpf_map_lookup_elem(&hs_packets, &key);
	/*
	 * Headers, parsed once: for a packet followed already, for whole
	 * flows, and once a NAT'd connection was learned (its other tuple).
	 */
	if (st || ctl->whole_flows || *(volatile __u64 *)&hs_conns_learned) {
		__builtin_memset(&s->t, 0, sizeof(s->t));
		parsed = !!(hs_parse_skb(skb, &s->p, &s->t, &s->o) & HS_F_TUPLE);
	}
	if (st) {
		/*
		 * The same packet only if its headers say so too: the slab hands
		 * a silently freed packet's sk_buff and data buffer to the next
		 * one, which must face the filter itself.
		 */
		__u32 fp = parsed ? hs_fingerprint(&s->t) : 0;

		if (bpf_ktime_get_ns() - st->last_seen <= hs_cfg_max_packet_age_ns &&
		    (!fp || !st->fingerprint || fp == st->fingerprint))
			goto followed;
		/* Stale: later hooks (net_dev_xmit) must not take it for this skb. */
		if (!bpf_map_delete_elem(&hs_packets, &key))
			__sync_fetch_and_add(&hs_followed, -1);
	}
	if (hs_cbpf_match(skb, skb->dev ? skb->dev->type : 0, ctl->epoch, &s->run))
		goto followed;
	if (parsed && hs_flow_known_in(&s->t, ctl->epoch, ctl->whole_flows, &s->k))
		goto followed;
	hs_remember_rejected(key, (__u64)skb->head, tag);
	hs_count(HS_STAT_FILTERED);
	if (hook != HS_HOOK_NET_DEV_QUEUE)
		hs_set_last_followed(0);
	return 0;
followed:
	if (hook != HS_HOOK_NET_DEV_QUEUE)
		hs_set_last_followed(1);
	return 1;
}

/*
 * A transmit: the owning socket's cgroup, and at a packet's first sighting
 * the task sending it when it is plausibly that task. Not inlined: its
 * reads get a frame of their own, off the filter's call chain.
 */
static __noinline void hs_fill_sender(struct hs_event *e, struct sk_buff *skb, __u8 is_new)
{
	e->sk_cgroup = hs_sk_cgroup(skb);
	if (is_new && hs_sent_by_current(skb, e->netns_ino)) {
		__u64 pt = bpf_get_current_pid_tgid();

		e->pid = pt >> 32;
		e->tid = (__u32)pt;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->flags |= HS_F_TASK;
	}
}

/*
 * A followed packet goes up the stack on this CPU (see hs_last_rx), and a
 * TCP segment is noted by its connection (see hs_tcp_rx). tcp: 1 << 32
 * for a TCP segment, | sport << 16 | dport. Not inlined: off the device
 * hooks' frames.
 */
static __noinline void hs_note_rx(__u64 skb, __u64 id, __u32 netns, __u64 tcp, __u64 now)
{
	struct hs_last_rx v = { .skb = skb, .ts = now, .packet_id = id };
	struct hs_last_rx *r;
	struct hs_tcp_rx *c;
	__u16 sport, dport;
	__u32 zero = 0, slot;

	r = bpf_map_lookup_elem(&hs_last_rx, &zero);
	if (r)
		*r = v;
	if (!(tcp >> 32) || !netns)
		return;
	sport = (__u16)(tcp >> 16);
	dport = (__u16)tcp;
	slot = hs_tcp_rx_slot(netns, sport, dport);
	c = bpf_map_lookup_elem(&hs_tcp_rx, &slot);
	if (!c)
		return;
	c->netns = netns;
	c->sport = sport;
	c->dport = dport;
	c->skb = skb;
	c->ts = now;
	c->packet_id = id;
}

#endif /* HOPSCOPE_IDENTITY_H */
