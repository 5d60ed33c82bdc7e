/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hooks_note.h: annotations, events about a packet or connection that
 * are not hops. icmp_send, tcp_send_reset, tcp_receive_reset,
 * tcp_retransmit_skb, the routing decisions fib_table_lookup and
 * fib6_table_lookup, and the neighbour hooks neigh_update,
 * neigh_timer_handler and neigh_event_send_done.
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_HOOKS_NOTE_H
#define HOPSCOPE_HOOKS_NOTE_H

/*
 * Annotations. icmp_send and tcp_send_reset carry the skb that caused them:
 * if it is followed, the event names its packet (and its headers); the
 * socket hooks give the connection's tuple from the socket instead.
 */
static __always_inline struct hs_event *hs_annotation(const struct sk_buff *skb, __u8 hook)
{
	struct hs_pkt_state *st = NULL;
	struct net_device *dev = NULL;
	struct hs_event *e;
	__u64 key = (__u64)skb;

	if (skb) {
		dev = skb->dev;
		/* With a scope, only what happens inside it. */
		if (hs_scoped() && !hs_in_scope(dev))
			return NULL;
		st = bpf_map_lookup_elem(&hs_packets, &key);
		if (st && !hs_same_packet((struct sk_buff *)skb, st, hook))
			st = NULL;
		/* With a filter, only about packets it let through. */
		if (!st && hs_filter_active())
			return NULL;
	}
	e = hs_reserve();
	if (!e)
		return NULL;
	/* Annotations may carry headers from the skb, a socket or a lookup. */
	hs_clear_headers(e);
	e->ts_ns = bpf_ktime_get_ns();
	e->hook = hook;
	if (skb) {
		e->skb_addr = key;
		e->len = skb->len;
		e->flags = hs_parse_skb((struct sk_buff *)skb, hs_parse_buf_of(hook), &e->tuple,
					&e->outer);
		hs_fill_dev(e, dev);
	}
	if (st)
		e->packet_id = st->packet_id;
	return e;
}

/* The connection of sk as a tuple, local side first. 0: not IP. */
static __always_inline int hs_sock_tuple(struct hs_tuple *t, const struct sock *sk)
{
	__u16 family;

	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == 10 /* AF_INET6 */) {
		/* A dual-stack socket talking IPv4: its packets are IPv4. */
		__u8 d6[16];

		BPF_CORE_READ_INTO(&d6, sk, __sk_common.skc_v6_daddr);
		if (!d6[0] && !d6[1] && !d6[2] && !d6[3] && !d6[4] && !d6[5] && !d6[6] && !d6[7] &&
		    !d6[8] && !d6[9] && d6[10] == 0xff && d6[11] == 0xff)
			family = 2;
	}
	t->l4_proto = HS_IPPROTO_TCP;
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == 2 /* AF_INET */) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		t->l3 = HS_L3_IPV4;
		t->ethertype = HS_ETH_P_IP;
		__builtin_memcpy(t->saddr, &s, 4);
		__builtin_memcpy(t->daddr, &d, 4);
	} else if (family == 10 /* AF_INET6 */) {
		t->l3 = HS_L3_IPV6;
		t->ethertype = HS_ETH_P_IPV6;
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	return 1;
}

/*
 * A socket annotation (reset received, retransmission): the connection's
 * tuple and namespace. With a filter, only for flows it let through.
 */
static __always_inline struct hs_event *hs_sock_annotation(const struct sock *sk, __u8 hook)
{
	const struct hs_filter_ctl *ctl = hs_filter_active();
	struct hs_tuple t = {};
	struct hs_event *e;
	int ok = hs_sock_tuple(&t, sk);

	if (ctl && !(ok && hs_flow_known(&t, ctl->epoch)))
		return NULL;
	if (hs_scoped() &&
	    !hs_netns_in_scope(BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum)))
		return NULL;
	e = hs_annotation(NULL, hook);
	if (!e)
		return NULL;
	if (!ok)
		return e;
	e->tuple = t;
	e->flags = HS_F_TUPLE | HS_F_SOCK;
	hs_fill_net(e, sk->__sk_common.skc_net.net);
	return e;
}

SEC("tp_btf/icmp_send")
int BPF_PROG(hs_icmp_send, const struct sk_buff *skb, int type, int code)
{
	struct hs_event *e = hs_annotation(skb, HS_HOOK_ICMP_SEND);

	if (!e)
		return 0;
	e->aux = ((__u32)(type & 0xff) << 8) | (code & 0xff);
	hs_submit(e);
	return 0;
}

/* Only the first two arguments: the reason came in 6.10. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(hs_tcp_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct hs_event *e = hs_annotation(skb, HS_HOOK_TCP_SEND_RESET);

	if (!e)
		return 0;
	if (!(e->flags & HS_F_TUPLE) && hs_sock_tuple(&e->tuple, sk)) {
		e->flags = HS_F_TUPLE | HS_F_SOCK;
		hs_fill_net(e, sk->__sk_common.skc_net.net);
	}
	hs_submit(e);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(hs_tcp_receive_reset, struct sock *sk)
{
	struct hs_event *e = hs_sock_annotation(sk, HS_HOOK_TCP_RECEIVE_RESET);

	if (!e)
		return 0;
	hs_submit(e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(hs_tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	struct hs_event *e = hs_sock_annotation(sk, HS_HOOK_TCP_RETRANSMIT);

	if (!e)
		return 0;
	hs_submit(e);
	return 0;
}

/*
 * Routing decisions. They carry no skb: userspace matches them to the
 * packet last seen on the same CPU with the same destination. The device
 * is the output device found (none on failure).
 */
SEC("tp_btf/fib_table_lookup")
int BPF_PROG(hs_fib_table_lookup, u32 tb_id, const struct flowi4 *flp,
	     const struct fib_nh_common *nhc, int err)
{
	struct hs_event *e;
	__u32 s, d;

	/*
	 * With a filter or a scope: only right after a followed packet arrived
	 * on this CPU (the lookup names no namespace when it fails), and only
	 * an output device inside the scope.
	 */
	if ((hs_filter_active() || hs_scoped()) && !hs_last_was_followed())
		return 0;
	if (hs_scoped() && nhc && !err && !hs_in_scope(BPF_CORE_READ(nhc, nhc_dev)))
		return 0;
	e = hs_annotation(NULL, HS_HOOK_FIB_LOOKUP);
	if (!e)
		return 0;
	e->aux = tb_id;
	e->xmit_rc = err;
	s = BPF_CORE_READ(flp, saddr);
	d = BPF_CORE_READ(flp, daddr);
	e->tuple.l3 = HS_L3_IPV4;
	e->tuple.ethertype = HS_ETH_P_IP;
	__builtin_memcpy(e->tuple.saddr, &s, 4);
	__builtin_memcpy(e->tuple.daddr, &d, 4);
	e->flags = HS_F_TUPLE;
	if (nhc && !err) {
		hs_fill_dev(e, nhc->nhc_dev);
		if (BPF_CORE_READ(nhc, nhc_gw_family) == 2 /* AF_INET */) {
			__be32 gw = BPF_CORE_READ(nhc, nhc_gw.ipv4);

			__builtin_memcpy(e->gw, &gw, 4);
		}
	}
	hs_submit(e);
	return 0;
}

SEC("tp_btf/fib6_table_lookup")
int BPF_PROG(hs_fib6_table_lookup, const struct net *net, const struct fib6_result *res,
	     struct fib6_table *table, const struct flowi6 *flp)
{
	struct hs_event *e;
	struct fib6_nh *nh;
	__u8 type;

	if ((hs_filter_active() || hs_scoped()) && !hs_last_was_followed())
		return 0;
	if (hs_scoped() && !hs_netns_in_scope(BPF_CORE_READ(net, ns.inum)))
		return 0;
	e = hs_annotation(NULL, HS_HOOK_FIB_LOOKUP);
	if (!e)
		return 0;
	e->aux = table ? BPF_CORE_READ(table, tb6_id) : 0;
	type = BPF_CORE_READ(res, fib6_type);
	/*
	 * No entry in this table (the null entry): the next table is tried,
	 * like IPv4's -EAGAIN. Unicast, local, anycast and multicast routes
	 * are found; unreachable, blackhole and prohibit routes are errors.
	 */
	if (net && BPF_CORE_READ(res, f6i) == BPF_CORE_READ(net, ipv6.fib6_null_entry))
		e->xmit_rc = -11 /* EAGAIN */;
	else if (type >= 1 && type <= 5)
		e->xmit_rc = 0;
	else
		e->xmit_rc = -101 /* ENETUNREACH */;
	e->tuple.l3 = HS_L3_IPV6;
	e->tuple.ethertype = HS_ETH_P_IPV6;
	BPF_CORE_READ_INTO(&e->tuple.saddr, flp, saddr);
	BPF_CORE_READ_INTO(&e->tuple.daddr, flp, daddr);
	e->flags = HS_F_TUPLE;
	nh = res->nh;
	if (nh && !e->xmit_rc) {
		hs_fill_dev(e, nh->nh_common.nhc_dev);
		if (BPF_CORE_READ(nh, nh_common.nhc_gw_family) == 10 /* AF_INET6 */)
			BPF_CORE_READ_INTO(&e->gw, nh, nh_common.nhc_gw.ipv6);
	}
	hs_fill_net(e, (struct net *)net);
	hs_submit(e);
	return 0;
}

/* NUD states (include/uapi/linux/neighbour.h). */
#define HS_NUD_INCOMPLETE 0x01
#define HS_NUD_REACHABLE 0x02
#define HS_NUD_FAILED 0x20

static __always_inline int hs_neigh(struct neighbour *n, __u8 old, __u8 new)
{
	struct neigh_table *tbl = BPF_CORE_READ(n, tbl);
	struct hs_event *e;
	int family = tbl ? BPF_CORE_READ(tbl, family) : 0;

	if (hs_scoped() && !hs_in_scope(BPF_CORE_READ(n, dev)))
		return 0;
	e = hs_annotation(NULL, HS_HOOK_NEIGH);
	if (!e)
		return 0;
	e->aux = ((__u32)old << 8) | new;
	if (family == 2 /* AF_INET */) {
		e->tuple.l3 = HS_L3_IPV4;
		bpf_probe_read_kernel(e->tuple.daddr, 4, n->primary_key);
	} else if (family == 10 /* AF_INET6 */) {
		e->tuple.l3 = HS_L3_IPV6;
		bpf_probe_read_kernel(e->tuple.daddr, 16, n->primary_key);
	}
	if (e->tuple.l3)
		e->flags = HS_F_TUPLE;
	hs_fill_dev(e, n->dev);
	hs_submit(e);
	return 0;
}

/* Only the transitions that answer "did the next hop answer": a
 * resolution that starts, succeeds or fails. */
SEC("tp_btf/neigh_update")
int BPF_PROG(hs_neigh_update, struct neighbour *n, const u8 *lladdr, u8 new, u32 flags,
	     u32 nlmsg_pid)
{
	__u8 old = BPF_CORE_READ(n, nud_state);

	if (new == HS_NUD_FAILED && old != HS_NUD_FAILED)
		return hs_neigh(n, old, new);
	if (old == HS_NUD_INCOMPLETE && (new & ~HS_NUD_INCOMPLETE) && new != HS_NUD_FAILED)
		return hs_neigh(n, old, new);
	return 0;
}

/* The timer gives up on an incomplete entry (no answer). */
SEC("tp_btf/neigh_timer_handler")
int BPF_PROG(hs_neigh_timer_handler, struct neighbour *n, int state)
{
	__u8 now = BPF_CORE_READ(n, nud_state);

	if (now == HS_NUD_FAILED)
		return hs_neigh(n, HS_NUD_INCOMPLETE, HS_NUD_FAILED);
	return 0;
}

SEC("tp_btf/neigh_event_send_done")
int BPF_PROG(hs_neigh_event_send_done, struct neighbour *n, int err)
{
	/*
	 * A packet was queued while the entry resolves (NUD_INCOMPLETE): fires
	 * once per waiting packet; userspace reports one per address and second.
	 */
	if (BPF_CORE_READ(n, nud_state) == HS_NUD_INCOMPLETE && err == 1)
		return hs_neigh(n, 0, HS_NUD_INCOMPLETE);
	return 0;
}

#endif /* HOPSCOPE_HOOKS_NOTE_H */
