/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hooks_sock.h: the socket hooks, where packets reach a socket. Clone
 * deliveries (hs_clone_of), the packet at a socket (hs_socket_packet), its
 * record (hs_sock_record, struct hs_sock), and the
 * programs skb_copy_datagram_iovec, tcp_probe, inet_sock_set_state (with the
 * TCP state and flag constants it matches) and sk_data_ready.
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_HOOKS_SOCK_H
#define HOPSCOPE_HOOKS_SOCK_H

/*
 * skb is not followed: when it is a clone of a followed packet (the copy a
 * raw or ping socket got, queued or read after the original was freed),
 * that packet's id, with *flags |= HS_F_CLONE; else 0. The headers must
 * agree: a data buffer freed and handed to another packet is not a clone.
 */
static __always_inline __u64 hs_clone_of(struct sk_buff *skb, __u32 hook, __u16 *flags)
{
	struct hs_scratch *s = hs_scratch_of(hook);
	struct hs_head_state *h;
	__u64 head;

	if (!s || !BPF_CORE_READ_BITFIELD(skb, cloned))
		return 0;
	head = (__u64)skb->head;
	h = hs_head_of(head);
	if (!h || bpf_ktime_get_ns() - h->ts > hs_cfg_max_packet_age_ns)
		return 0;
	__builtin_memset(&s->t, 0, sizeof(s->t));
	if (!(hs_parse_skb(skb, &s->p, &s->t, &s->o) & HS_F_TUPLE) ||
	    hs_fingerprint(&s->t) != h->fingerprint)
		return 0;
	*flags |= HS_F_CLONE;
	return h->packet_id;
}

/*
 * The packet a socket hook's skb is: a followed packet's id, or (see
 * hs_clone_of) the id of the packet it is a clone of. 0: neither.
 */
static __always_inline __u64 hs_socket_packet(struct sk_buff *skb, __u32 hook, __u16 *flags)
{
	__u64 key = (__u64)skb;
	struct hs_pkt_state *st = hs_nothing_followed() ? NULL : bpf_map_lookup_elem(&hs_packets, &key);

	/*
	 * Not followed, or the address is a dead packet's (sk_buffs are
	 * reused at once): maybe a clone of a followed one.
	 */
	if (st && hs_same_packet(skb, st, hook))
		return st->packet_id;
	return hs_clone_of(skb, hook, flags);
}

/*
 * A socket record (struct hs_sock) of packet id at hook: on dev when the
 * skb still has one (its name sent first, see hs_send_dev), else in the
 * socket's namespace net. Its task fields are left to the caller: pid,
 * tid and comm are zero. NULL when the ring is full.
 */
static __always_inline struct hs_sock *hs_sock_record(__u8 hook, __u64 id, __u16 flags, __u64 skb,
						      __u32 len, struct net_device *dev,
						      struct net *net, __u64 now)
{
	__u32 netns, ifindex = 0;
	struct hs_sock *r;

	if (dev) {
		net = dev->nd_net.net;
		ifindex = dev->ifindex;
	}
	netns = net ? net->ns.inum : 0;
	if (dev)
		hs_send_dev(dev, netns, ifindex);
	r = hs_reserve_bytes(sizeof(*r));
	if (!r)
		return NULL;
	r->kind = HS_REC_SOCK;
	r->hook = hook;
	r->_pad0 = 0;
	r->flags = flags;
	r->cpu = bpf_get_smp_processor_id();
	r->ts_ns = now;
	r->packet_id = id;
	r->skb_addr = skb;
	r->netns_cookie = 0;
	if (net && bpf_core_field_exists(net->net_cookie))
		r->netns_cookie = net->net_cookie;
	r->netns_ino = netns;
	r->ifindex = ifindex;
	r->len = len;
	r->aux = 0;
	r->pid = 0;
	r->tid = 0;
	__builtin_memset(r->comm, 0, sizeof(r->comm));
	return r;
}

/* Delivered into a socket (read by a task): followed packets and their clones. */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(hs_skb_copy_datagram_iovec, struct sk_buff *skb, int len)
{
	__u16 flags = HS_F_TASK;
	__u64 id = hs_socket_packet(skb, HS_HOOK_SKB_COPY_DATAGRAM, &flags);
	struct sock *sk;
	struct hs_sock *r;
	__u64 pt;

	if (!id)
		return 0;
	sk = skb->sk;
	r = hs_sock_record(HS_HOOK_SKB_COPY_DATAGRAM, id, flags, (__u64)skb, len, NULL,
			   sk ? sk->__sk_common.skc_net.net : NULL, bpf_ktime_get_ns());
	if (!r)
		return 0;
	/* recvmsg runs in the receiving task's context. */
	pt = bpf_get_current_pid_tgid();
	r->pid = pt >> 32;
	r->tid = (__u32)pt;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	hs_submit(r);
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
	__u16 flags = 0;
	struct hs_sock *r;
	unsigned char *data;
	__u8 doff = 0;
	__u64 id;

	if (hs_nothing_followed())
		return 0;
	id = hs_socket_packet((struct sk_buff *)skb, HS_HOOK_TCP_RCV, &flags);
	if (!id)
		return 0;
	/* Without a device, at least the socket's namespace (scopes check it). */
	r = hs_sock_record(HS_HOOK_TCP_RCV, id, flags, (__u64)skb, skb->len, skb->dev,
			   sk->__sk_common.skc_net.net, bpf_ktime_get_ns());
	if (!r)
		return 0;
	/* skb->data is at the TCP header here. */
	data = skb->data;
	bpf_probe_read_kernel(&doff, 1, data + 12);
	doff = (doff >> 4) * 4;
	r->aux = r->len > doff ? r->len - doff : 0;
	hs_submit(r);
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
	struct hs_sock *rec;
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
		__u32 netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
		__u32 slot = hs_tcp_rx_slot(netns, sport, dport);
		struct hs_tcp_rx *c = bpf_map_lookup_elem(&hs_tcp_rx, &slot);

		if (!c || c->netns != netns || c->sport != sport || c->dport != dport ||
		    now - c->ts > HS_BACKLOG_WINDOW_NS)
			return 0;
		skb = (struct sk_buff *)c->skb;
		id = c->packet_id;
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
	/* No device: TCP reuses skb->dev's word by now. */
	rec = hs_sock_record(HS_HOOK_TCP_STATE, id, 0, (__u64)skb, BPF_CORE_READ(skb, len), NULL,
			     sk->__sk_common.skc_net.net, now);
	if (!rec)
		return 0;
	/* A segment with data is delivered, not only consumed: its length too. */
	rec->aux = ((__u32)oldstate << 8) | (__u32)newstate;
	{
		__u32 payload = hs_tcp_payload(skb);

		rec->aux |= (payload > 0xffff ? 0xffff : payload) << 16;
	}
	hs_submit(rec);
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
	struct hs_sock *r;
	__u16 flags = 0;
	__u64 id;

	if (family == HS_AF_PACKET ||
	    ((family == HS_AF_INET || family == HS_AF_INET6) && sk->sk_protocol == HS_IPPROTO_TCP))
		return 0;
	if (!sk->sk_receive_queue.qlen)
		return 0;
	/* A plain load: skb stays a BTF pointer, as the parser needs. */
	skb = sk->sk_receive_queue.prev;
	if (!skb)
		return 0;
	id = hs_socket_packet(skb, HS_HOOK_SOCK_QUEUE, &flags);
	if (!id)
		return 0;
	r = hs_sock_record(HS_HOOK_SOCK_QUEUE, id, flags, (__u64)skb, skb->len, skb->dev,
			   sk->__sk_common.skc_net.net, bpf_ktime_get_ns());
	if (r)
		hs_submit(r);
	return 0;
}

#endif /* HOPSCOPE_HOOKS_SOCK_H */
