/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * records.h: ring records. Reserving ring space, counted as emitted or
 * lost (hs_reserve_bytes, hs_reserve), submitting with the wakeup policy
 * (hs_submit), and filling an event's namespace, device and sender's cgroup.
 *
 * Part of hopscope.bpf.c (see state.h).
 */
#ifndef HOPSCOPE_RECORDS_H
#define HOPSCOPE_RECORDS_H

/*
 * size bytes of the ring for any record, counted as emitted, and as lost
 * when the ring is full. size must fold to a constant (the verifier's rule).
 */
static __always_inline void *hs_reserve_bytes(__u64 size)
{
	void *r;

	hs_count(HS_STAT_EMITTED);
	r = bpf_ringbuf_reserve(&hs_events, size, 0);
	if (!r)
		hs_count(HS_STAT_LOST);
	return r;
}

static __always_inline struct hs_event *hs_reserve(void)
{
	struct hs_event *e = hs_reserve_bytes(sizeof(*e));

	if (!e)
		return NULL;
	/*
	 * The ring buffer does not zero memory, so every byte userspace reads
	 * must be written; it reads comm only with HS_F_TASK (which writes it)
	 * and the headers sections only with their flags (hs_clear_headers).
	 * Leaving them out keeps a record without headers to two cache lines.
	 */
	__builtin_memset(e, 0, offsetof(struct hs_event, comm));
	e->abi_version = HS_ABI_VERSION;
	e->cpu = bpf_get_smp_processor_id();
	return e;
}

/* Zeroes the headers sections (tuple, outer, gw) of a record about to carry them. */
static __always_inline void hs_clear_headers(struct hs_event *e)
{
	__builtin_memset(&e->tuple, 0, sizeof(*e) - offsetof(struct hs_event, tuple));
}

/* Submits any record (struct hs_event, hs_hop, hs_dev, hs_sock, hs_end, hs_snap). */
static __always_inline void hs_submit(void *e)
{
	__u64 avail = bpf_ringbuf_query(&hs_events, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (avail >= hs_cfg_wakeup_bytes) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else if (avail <= HS_RING_NEARLY_EMPTY) {
		/* The reader has caught up and may be in its long sleep. */
		__u64 now = bpf_ktime_get_ns();

		if (now - hs_last_wakeup_ns >= HS_WAKEUP_GAP_NS) {
			hs_last_wakeup_ns = now;
			flags = BPF_RB_FORCE_WAKEUP;
		}
	}
	bpf_ringbuf_submit(e, flags);
}

/*
 * --snaplen: the first bytes of packet id (skb, a BTF pointer) from where
 * hs_win_fill found it starts (at: its w->at), sent with the ts_ns of the
 * struct hs_event that carries its headers. Only the linear part is read:
 * caplen may be shorter than the snaplen where the rest is paged. Not
 * inlined: its locals stay off the stack of the hook that calls it.
 */
static __noinline void hs_send_snap(struct sk_buff *skb, __u32 at, __u64 id, __u64 now)
{
	const unsigned char *head = skb->head;
	__u32 start = at & 0xffff, tail = skb->tail;
	__u64 room = hs_cfg_snap_room, h = 0, d = 0, n;
	__s64 orig;
	struct hs_snap *s;

	if (!head || tail <= start)
		return;
	s = hs_reserve_bytes(sizeof(*s) + hs_cfg_snap_room);
	if (!s)
		return;
	n = (__u64)(tail - start) & 0xffffffff;
	if (n > hs_cfg_snaplen)
		n = hs_cfg_snaplen;
	/* Hide the bound from the compiler so the check the verifier needs stays. */
	asm volatile("" : "+r"(n));
	if (n > room)
		n = room;
	if (bpf_probe_read_kernel(s + 1, n, head + start))
		n = 0;
	/* Numbers, not pointers (since 6.17 plain loads of them are read-only pointers). */
	bpf_probe_read_kernel(&h, sizeof(h), &skb->head);
	bpf_probe_read_kernel(&d, sizeof(d), &skb->data);
	orig = (__s64)skb->len + (__s64)(d - h) - start;
	s->kind = HS_REC_SNAP;
	s->flags = at >> 16 ? HS_SNAP_ETHER : 0;
	s->caplen = n;
	s->_pad0 = 0;
	s->orig_len = orig > n ? orig : n;
	s->_pad1 = 0;
	s->ts_ns = now;
	s->packet_id = id;
	hs_submit(s);
}

/* The event's namespace, unless it has one already. */
static __always_inline void hs_fill_net(struct hs_event *e, struct net *net)
{
	if (!net || e->netns_ino)
		return;
	e->netns_ino = net->ns.inum;
	if (bpf_core_field_exists(net->net_cookie))
		e->netns_cookie = net->net_cookie;
}

/*
 * The device's index, name and namespace. Plain loads: dev (and net above)
 * must be BTF pointers, a tracepoint's argument or a field loaded from one.
 * The name is copied whole: bytes after its NUL are ignored by userspace.
 */
static __always_inline void hs_fill_dev(struct hs_event *e, struct net_device *dev)
{
	__u64 name[2];

	if (!dev)
		return;
	e->ifindex = dev->ifindex;
	name[0] = *(const __u64 *)&dev->name[0];
	name[1] = *(const __u64 *)&dev->name[8];
	__builtin_memcpy(e->ifname, name, sizeof(name));
	hs_fill_net(e, dev->nd_net.net);
}

static __always_inline __u64 hs_sk_cgroup(struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	struct cgroup *cg;

	if (!sk)
		return 0;
	cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 0;
	return cg->kn->id;
}

/*
 * Whether the task running now is plausibly the packet's sender. `current`
 * is whoever was interrupted when tx runs from softirq (an ICMP echo reply
 * is sent on the stack of the task that sent the request), so require a
 * user socket (kernel control sockets have no file) and a task living in
 * the namespace of the device.
 */
static __always_inline int hs_sent_by_current(struct sk_buff *skb, __u32 dev_netns)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct sock *sk = skb->sk;
	struct socket *sock;

	if (!sk || !dev_netns)
		return 0;
	sock = sk->sk_socket;
	if (!sock || !sock->file)
		return 0;
	return task->nsproxy->net_ns->ns.inum == dev_netns;
}

#endif /* HOPSCOPE_RECORDS_H */
