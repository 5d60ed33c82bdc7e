/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hooks_sock.h: the socket hooks, where packets reach a socket. Clone
 * deliveries (hs_clone_delivery), socket hops (hs_socket_hop), and the
 * programs skb_copy_datagram_iovec, tcp_probe, inet_sock_set_state (with the
 * TCP state and flag constants it matches) and sk_data_ready.
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_HOOKS_SOCK_H
#define HOPSCOPE_HOOKS_SOCK_H

/*
 * skb is not followed: when it is a clone of a followed packet (the copy a
 * raw or ping socket got, queued or read after the original was freed), a
 * record naming that packet, with HS_F_CLONE; else NULL. The headers must
 * agree: a data buffer freed and handed to another packet is not a clone.
 */
static __always_inline struct hs_event *hs_clone_delivery(struct sk_buff *skb, __u32 hook)
{
	struct hs_scratch *s = hs_scratch_of(hook);
	struct hs_head_state *h;
	struct hs_event *e;
	__u64 head;

	if (!s || !BPF_CORE_READ_BITFIELD(skb, cloned))
		return NULL;
	head = (__u64)skb->head;
	h = hs_head_of(head);
	if (!h || bpf_ktime_get_ns() - h->ts > hs_cfg_max_packet_age_ns)
		return NULL;
	__builtin_memset(&s->t, 0, sizeof(s->t));
	if (!(hs_parse_skb(skb, &s->p, &s->t, &s->o) & HS_F_TUPLE) ||
	    hs_fingerprint(&s->t) != h->fingerprint)
		return NULL;
	e = hs_reserve();
	if (!e)
		return NULL;
	e->packet_id = h->packet_id;
	e->related = h->packet_id;
	e->flags = HS_F_CLONE;
	return e;
}

/*
 * A record for a hook that names where a packet ended up (a socket), when
 * skb is a followed packet or a clone of one. NULL otherwise.
 */
static __always_inline struct hs_event *hs_socket_hop(struct sk_buff *skb, __u32 hook)
{
	__u64 key = (__u64)skb;
	struct hs_pkt_state *st = hs_nothing_followed() ? NULL : bpf_map_lookup_elem(&hs_packets, &key);
	struct hs_event *e;

	/*
	 * Not followed, or the address is a dead packet's (sk_buffs are
	 * reused at once): maybe a clone of a followed one.
	 */
	if (!st || !hs_same_packet(skb, st, hook))
		return hs_clone_delivery(skb, hook);
	e = hs_reserve();
	if (e)
		e->packet_id = st->packet_id;
	return e;
}

/* Delivered into a socket (read by a task): followed packets and their clones. */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(hs_skb_copy_datagram_iovec, struct sk_buff *skb, int len)
{
	struct hs_event *e = hs_socket_hop(skb, HS_HOOK_SKB_COPY_DATAGRAM);
	__u64 pt;

	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->hook = HS_HOOK_SKB_COPY_DATAGRAM;
	e->skb_addr = (__u64)skb;
	e->len = len;
	{
		struct sock *sk = skb->sk;

		if (sk)
			hs_fill_net(e, sk->__sk_common.skc_net.net);
	}
	/* recvmsg runs in the receiving task's context. */
	pt = bpf_get_current_pid_tgid();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->flags |= HS_F_TASK;
	hs_submit(e);
	return 0;
}

/*
 * A segment reached an established TCP socket (tcp_rcv_established). TCP
 * frees what it took in without a tracepoint: this is where a segment's
 * life ends as far as tracing goes. aux: its payload length (0: a pure
 * ACK, consumed; else data, delivered).
 */
SEC("tp_btf/tcp_probe")
int BPF_PROG(hs_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	struct hs_event *e;
	unsigned char *data;
	__u8 doff = 0;

	if (hs_nothing_followed())
		return 0;
	e = hs_socket_hop((struct sk_buff *)skb, HS_HOOK_TCP_RCV);
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->hook = HS_HOOK_TCP_RCV;
	e->skb_addr = (__u64)skb;
	e->len = BPF_CORE_READ(skb, len);
	/* skb->data is at the TCP header here. */
	data = BPF_CORE_READ(skb, data);
	bpf_probe_read_kernel(&doff, 1, data + 12);
	doff = (doff >> 4) * 4;
	e->aux = e->len > doff ? e->len - doff : 0;
	hs_fill_dev(e, skb->dev);
	/* Without a device, at least the socket's namespace (scopes check it). */
	hs_fill_net(e, sk->__sk_common.skc_net.net);
	hs_submit(e);
	return 0;
}

/* enum tcp_state */
#define HS_TCP_ESTABLISHED 1
#define HS_TCP_SYN_SENT 2
#define HS_TCP_FIN_WAIT1 4
#define HS_TCP_CLOSE 7
#define HS_TCP_CLOSE_WAIT 8
#define HS_TCP_LAST_ACK 9
#define HS_TCP_LISTEN 10
#define HS_TCP_CLOSING 11
#define HS_TCPHDR_FIN 0x01
#define HS_TCPHDR_SYN 0x02
#define HS_TCPHDR_RST 0x04

/*
 * Whether skb's TCP header (read where the stack put it) has these ports
 * (host order); its flags into *flags.
 */
static __always_inline int hs_tcp_ports_flags(struct sk_buff *skb, __u16 sport, __u16 dport,
					      __u8 *flags)
{
	unsigned char *th = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, transport_header);
	__u16 ports[2];

	if (bpf_probe_read_kernel(ports, sizeof(ports), th) ||
	    bpf_probe_read_kernel(flags, 1, th + 13))
		return 0;
	return bpf_ntohs(ports[0]) == sport && bpf_ntohs(ports[1]) == dport;
}

/*
 * The TCP payload skb carries, from its IP and TCP headers (IPv6: the
 * payload length less the TCP header; extension headers are rare on TCP).
 */
static __always_inline __u32 hs_tcp_payload(struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *nh = head + BPF_CORE_READ(skb, network_header);
	unsigned char *th = head + BPF_CORE_READ(skb, transport_header);
	__u8 ip[6] = {}, doff = 0;
	__u32 total, hdrs;

	if (bpf_probe_read_kernel(ip, sizeof(ip), nh) || bpf_probe_read_kernel(&doff, 1, th + 12))
		return 0;
	if ((ip[0] >> 4) == 4) {
		total = ((__u32)ip[2] << 8) | ip[3];
		hdrs = (ip[0] & 0xf) * 4 + (doff >> 4) * 4;
	} else {
		total = ((__u32)ip[4] << 8) | ip[5];
		hdrs = (doff >> 4) * 4;
	}
	return total > hdrs ? total - hdrs : 0;
}

/*
 * A TCP socket changed state. The changes a received segment causes (a
 * SYN-ACK, the handshake's last ACK, a FIN, the ACK of a FIN, a reset) are
 * where those segments' lives end: TCP frees them without a tracepoint.
 * The segment is the followed packet netif_receive_skb just handed to the
 * stack on this CPU, when its ports are the socket's and its flags fit the
 * change. Changes a task or a timer makes (connect, close, listen) are no
 * packet's. aux: old state << 8 | new state, and the segment's payload
 * length (at most 0xffff) << 16.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(hs_inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct hs_pkt_state *st;
	struct hs_last_rx *r;
	struct sk_buff *skb;
	struct hs_event *e;
	__u16 sport, dport;
	__u32 zero = 0;
	__u8 flags = 0;
	__u64 now, id, key;

	if (hs_nothing_followed() || BPF_CORE_READ(sk, sk_protocol) != HS_IPPROTO_TCP)
		return 0;
	if (oldstate == HS_TCP_CLOSE || newstate == HS_TCP_SYN_SENT || newstate == HS_TCP_FIN_WAIT1 ||
	    newstate == HS_TCP_LAST_ACK || newstate == HS_TCP_LISTEN ||
	    (oldstate == HS_TCP_LISTEN && newstate == HS_TCP_CLOSE))
		return 0;
	now = bpf_ktime_get_ns();
	sport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* Not skc_num: a socket moving to CLOSE gave its port back already. */
	dport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	/* Processed in softirq right after it arrived, or from the backlog. */
	r = bpf_map_lookup_elem(&hs_last_rx, &zero);
	skb = r && now - r->ts <= HS_STATE_WINDOW_NS ? (struct sk_buff *)r->skb : NULL;
	id = r ? r->packet_id : 0;
	if (!skb || !hs_tcp_ports_flags(skb, sport, dport, &flags)) {
		struct hs_tcp_ctl_key k = {
			.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum),
			.sport = sport,
			.dport = dport,
		};

		r = bpf_map_lookup_elem(&hs_tcp_ctl, &k);
		if (!r || now - r->ts > HS_BACKLOG_WINDOW_NS)
			return 0;
		skb = (struct sk_buff *)r->skb;
		id = r->packet_id;
		if (!hs_tcp_ports_flags(skb, sport, dport, &flags))
			return 0;
	}
	if (!(flags & HS_TCPHDR_RST) &&
	    ((oldstate == HS_TCP_SYN_SENT && !(flags & HS_TCPHDR_SYN)) ||
	     ((newstate == HS_TCP_CLOSE_WAIT || newstate == HS_TCP_CLOSING) && !(flags & HS_TCPHDR_FIN))))
		return 0;
	/*
	 * Still that packet: its identity was not handed on (the address is
	 * only a number here, its fields are probe reads; its headers were
	 * checked when noted).
	 */
	key = (__u64)skb;
	st = bpf_map_lookup_elem(&hs_packets, &key);
	if (!st || st->packet_id != id)
		return 0;
	e = hs_reserve();
	if (!e)
		return 0;
	e->packet_id = id;
	e->ts_ns = now;
	e->hook = HS_HOOK_TCP_STATE;
	e->skb_addr = (__u64)skb;
	e->len = BPF_CORE_READ(skb, len);
	/* A segment with data is delivered, not only consumed: its length too. */
	e->aux = ((__u32)oldstate << 8) | (__u32)newstate;
	{
		__u32 payload = hs_tcp_payload(skb);

		e->aux |= (payload > 0xffff ? 0xffff : payload) << 16;
	}
	/* No device: TCP reuses skb->dev's word by now. */
	hs_fill_net(e, sk->__sk_common.skc_net.net);
	hs_submit(e);
	return 0;
}

#define HS_AF_INET 2
#define HS_AF_INET6 10
#define HS_AF_PACKET 17

/*
 * Data was queued to a socket: the receive queue's tail is what was just
 * queued (UDP, ping and raw sockets; TCP is covered by tcp_probe, packet
 * sockets are copies tcpdump takes, not deliveries). UDP copies what it
 * delivers without skb_copy_datagram_iovec: this is its only trace.
 */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(hs_sk_data_ready, const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	struct sk_buff *skb;
	struct hs_event *e;

	if (family == HS_AF_PACKET ||
	    ((family == HS_AF_INET || family == HS_AF_INET6) && sk->sk_protocol == HS_IPPROTO_TCP))
		return 0;
	if (!sk->sk_receive_queue.qlen)
		return 0;
	/* A plain load: skb stays a BTF pointer, as the parser needs. */
	skb = sk->sk_receive_queue.prev;
	if (!skb)
		return 0;
	e = hs_socket_hop(skb, HS_HOOK_SOCK_QUEUE);
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->hook = HS_HOOK_SOCK_QUEUE;
	e->skb_addr = (__u64)skb;
	e->len = BPF_CORE_READ(skb, len);
	hs_fill_dev(e, skb->dev);
	hs_fill_net(e, sk->__sk_common.skc_net.net);
	hs_submit(e);
	return 0;
}

#endif /* HOPSCOPE_HOOKS_SOCK_H */
