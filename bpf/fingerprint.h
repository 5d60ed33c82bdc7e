/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fingerprint.h: whether a sighting is still the packet an identity was
 * made for: a hash of header fields NAT never rewrites (hs_fingerprint) and
 * the checks of age and data buffer around it (hs_same_packet).
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_FINGERPRINT_H
#define HOPSCOPE_FINGERPRINT_H

static __always_inline __u32 hs_fingerprint(const struct hs_tuple *t)
{
	__u32 f = ((__u32)t->l3 << 24) ^ ((__u32)t->l4_proto << 16) ^ t->ip_id;

	f ^= t->tcp_seq * 2654435761u;
	/* Not the echo id: masquerade may rewrite it. */
	f ^= (__u32)t->icmp_seq * 40503u;
	f ^= (__u32)t->l4_len << 8;
	f ^= (__u32)t->arp_op << 4;
	/* IPv6 has no IP id: the flow label tells same-size datagrams of different flows apart. */
	f ^= t->flow_label * 2246822519u;
	/*
	 * 0 means "unknown". Not f | 1: that erased the IP id's low bit, and
	 * a connection's consecutive packets (a pure ACK, then data with the
	 * same sequence number) differ there only.
	 */
	return f ? f : 1;
}

/*
 * Whether st still describes skb at a hook that does not identify packets
 * itself (frees, sockets, annotations): the headers agree wherever they can
 * be read, and the data buffer is the same or (pskb_expand_head() moved it:
 * skb_cow() in forwarding, NAT making the header writable) the headers
 * alone say so. The slab hands a packet freed without a tracepoint (TCP's
 * pure ACKs) to the next skb, sk_buff and data buffer alike: only the
 * headers tell them apart. hook picks the program's scratch slot.
 */
static __always_inline int hs_same_packet(struct sk_buff *skb, struct hs_pkt_state *st,
					  __u32 hook)
{
	struct hs_scratch *s = hs_scratch_of(hook);
	__u64 head = (__u64)skb->head;
	__u32 fp = 0;

	if (!s)
		return 0;
	/* The bytes the last device hop saw, in the same place: no need to parse. */
	hs_win_fill(&s->p, skb, st->hdr_hash ? st->win_at : HS_WIN_FRAME_OF_SKB,
		    st->hdr_hash ? HS_HASH_BYTES : HS_WIN);
	if (s->p.len && st->hdr_hash == hs_win_hash(&s->p) && st->head == head)
		return 1;
	if (st->hdr_hash)
		hs_win_fill(&s->p, skb, HS_WIN_FRAME_OF_SKB, HS_WIN);
	__builtin_memset(&s->t, 0, sizeof(s->t));
	if (hs_parse_win(&s->p, &s->t, &s->o) & HS_F_TUPLE)
		fp = hs_fingerprint(&s->t);
	if (fp && st->fingerprint && fp != st->fingerprint)
		return 0;
	if (st->head == head)
		return 1;
	if (!fp || !st->fingerprint)
		return 0;
	st->head = head;
	return 1;
}

#endif /* HOPSCOPE_FINGERPRINT_H */
