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

/* Submits any record (struct hs_event, hs_hop, hs_dev). */
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
