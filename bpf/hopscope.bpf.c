// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hopscope.bpf.c: the programs. Each one is thin: find the packet's identity,
 * fill one record, submit it to the ring buffer. A packet's headers are read
 * and sent (struct hs_event) at its first sighting and where they changed;
 * its other device hops are 48-byte struct hs_hops, recognised by a hash of
 * the header bytes (hs_win_hash), and a device's name goes once per CPU
 * (struct hs_dev). Plain loads read skb, device and socket fields wherever
 * the pointer is a BTF one; probe reads only where it is a number.
 *
 * Kernel facts:
 * - Everything is tp_btf (typed skb pointers, no tracefs, cheapest hook).
 * - net_dev_xmit fires after the driver returned: the skb may already be
 *   freed (veth hands it to the peer inside ndo_start_xmit), so only its
 *   address is used there, never its contents.
 * - An skb address is reused within microseconds of its free. Identity is
 *   kept here: skb address -> packet id, created at the first sighting on a
 *   non-free hook and deleted at consume_skb/kfree_skb. Some frees have no
 *   tracepoint (GRO merges, TCP coalescing), so a stale entry is detected by
 *   a fingerprint of fields NAT never rewrites (protocol, IP id, ICMP
 *   id/seq, TCP seq, UDP length, IPv6 flow label) and by age.
 * - kfree_skb's arguments are (skb, location, reason[, rx_sk]): reason since
 *   5.17, rx_sk since 6.11; only the first three are read.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "hopscope.h"
#include "parse.h"
#include "filter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Wake the reader once this much data waits. Below it, the reader drains on
 * a short timer while events flow, and sleeps long when idle: the first
 * events into an empty ring wake it, at most once per HS_WAKEUP_GAP_NS (a
 * wakeup is an irq_work, a self-IPI: dear in a VM).
 */
const volatile __u64 hs_cfg_wakeup_bytes = 256 * 1024;
#define HS_WAKEUP_GAP_NS (20ULL * 1000 * 1000) /* IDLE_AFTER in reader.rs is longer */
/* A ring holding at most this much (records and headers) counts as empty. */
#define HS_RING_NEARLY_EMPTY (4 * (sizeof(struct hs_event) + 8))
__u64 hs_last_wakeup_ns = 0;
/* An identity older than this is treated as a reused address. */
const volatile __u64 hs_cfg_max_packet_age_ns = 5ULL * 1000 * 1000 * 1000;
/*
 * Drop reasons (bit per enum skb_drop_reason value of this kernel, set by
 * userspace from BTF) that are routine: an skb never followed and freed
 * with one of them is not reported. Others are, as a packet first seen at
 * its drop (held for a neighbour, dropped before any device hook).
 */
const volatile __u64 hs_cfg_quiet_reasons[4] = { ~0ULL, ~0ULL, ~0ULL, ~0ULL };
/* --drop-stack: record the kernel stack of drops (not routine frees). */
const volatile __u8 hs_cfg_drop_stack = 0;

/* Kernel stacks of drops (--drop-stack); userspace deletes what it read. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} hs_stacks SEC(".maps");

struct hs_pkt_state {
	__u64 packet_id;
	__u64 last_seen;
	/*
	 * skb->head at the last device sighting. The socket and free hooks have
	 * no headers to fingerprint, and a packet freed without a tracepoint
	 * (GRO, TCP pure ACKs) leaves its entry behind; when the slab hands the
	 * same sk_buff to an unrelated skb (a Unix socket's, say), a different
	 * data buffer tells it apart.
	 */
	__u64 head;
	__u32 fingerprint;
	__u8 tx;      /* the last device sighting was a transmit */
	__u8 tcp_ctl; /* a TCP segment with SYN, FIN or RST (see hs_tcp_ctl) */
	__u16 sport;  /* its ports, host order (TCP only) */
	__u16 dport;
	__u16 _pad;
	__u32 win_at;  /* where those bytes start (hs_parse_buf.at) */
	/*
	 * Hash of the header bytes the packet had where its headers were last
	 * sent in full (hs_win_hash; 0: never): an equal hash on a device hop
	 * means an hs_hop will do.
	 */
	__u32 hdr_hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} hs_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct hs_pkt_state);
} hs_packets SEC(".maps");

/*
 * Data buffers of followed packets: skb->head -> the packet whose data it
 * is. A clone (skb_clone) shares its original's data buffer, and there is
 * no tracepoint in skb_clone: a clone's first sighting finds its original
 * here. Entries stay after the packet's end (a raw socket's clone is read
 * after the original was freed); the LRU forgets them.
 */
struct hs_head_state {
	__u64 packet_id;  /* whose data it is */
	__u64 skb;        /* the skb that carries that packet now */
	__u64 ts;
	__u32 taken;      /* a clone took the packet over already */
	__u32 fingerprint; /* of its headers: a buffer reused for another packet differs */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct hs_head_state);
} hs_heads SEC(".maps");

/*
 * A followed GSO packet just cut into segments in software on this CPU
 * (validate_xmit_skb consumes it right after skb_gso_segment): the next
 * skbs entering the same device's driver are its segments.
 */
struct hs_gso_state {
	__u64 parent; /* packet id, 0: none pending */
	__u64 ts;
	__u32 ifindex;
	__u16 segs;   /* gso_segs of the parent */
	__u16 next;   /* segments seen so far */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hs_gso_state);
} hs_gso SEC(".maps");

/* Segments follow their parent within this long, or not at all. */
#define HS_GSO_WINDOW_NS (1000ULL * 1000)

/*
 * The followed packet netif_receive_skb last handed to the stack on this
 * CPU: the stack processes it right after, on the same CPU, so a TCP state
 * change that follows at once is this packet's doing (inet_sock_set_state
 * names a socket, not an skb).
 */
struct hs_last_rx {
	__u64 skb;
	__u64 ts;
	__u64 packet_id; /* the packet skb was then: still it if hs_packets agrees */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hs_last_rx);
} hs_last_rx SEC(".maps");

/*
 * A state change belongs to the packet received this recently, or none
 * (tens of microseconds here; an emulated CPU takes 10-20 times longer).
 */
#define HS_STATE_WINDOW_NS (2ULL * 1000 * 1000)

/*
 * The last followed TCP segment with SYN, FIN or RST received in a
 * namespace, by its ports (host order): a socket a task holds gets such
 * segments later, from its backlog, in the task's context on any CPU.
 */
struct hs_tcp_ctl_key {
	__u32 netns;
	__u16 sport;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hs_tcp_ctl_key);
	__type(value, struct hs_last_rx);
} hs_tcp_ctl SEC(".maps");

/* A socket's backlog is processed when its task lets go: this soon. */
#define HS_BACKLOG_WINDOW_NS (100ULL * 1000 * 1000)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hs_stats SEC(".maps");

/* The tuple of a packet whose headers were not read. */
static const struct hs_tuple hs_no_tuple = {};

/* Next packet id; ids start at 1. */
__u64 hs_next_packet_id = 1;
/*
 * Entries created in hs_packets minus entries deleted. LRU evictions and
 * replaced entries are not subtracted, so it only ever overstates; at 0 no
 * packet is followed and the hooks that only care about followed packets
 * return without a lookup (the common case under a filter that matches
 * little).
 */
__s64 hs_followed = 0;

static __always_inline int hs_nothing_followed(void)
{
	return *(volatile __s64 *)&hs_followed <= 0;
}

/*
 * Per-CPU, yet atomic: a program running from softirq can interrupt another
 * one on the same CPU between its load and store, and a plain increment
 * would then lose a count (emitted < received + lost).
 */
static __always_inline void hs_count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hs_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

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
	hs_win_fill(&s->p, skb, st->hdr_hash ? st->win_at : HS_WIN_FRAME_OF_SKB);
	if (s->p.len && st->hdr_hash == hs_win_hash(&s->p) && st->head == head)
		return 1;
	if (st->hdr_hash)
		hs_win_fill(&s->p, skb, HS_WIN_FRAME_OF_SKB);
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

/* Whose data skb's buffer holds from now on (see hs_heads). */
static __always_inline void hs_head_owner(__u64 head, __u64 skb, __u64 id, __u64 now, __u32 fp)
{
	struct hs_head_state h = {
		.packet_id = id,
		.skb = skb,
		.ts = now,
		.fingerprint = fp,
	};

	bpf_map_update_elem(&hs_heads, &head, &h, BPF_ANY);
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
	__u8 tcp_ctl = fp && t->l4_proto == HS_IPPROTO_TCP && (t->tcp_flags & 0x07);

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
			st->tcp_ctl = tcp_ctl;
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
	fresh.tcp_ctl = tcp_ctl;
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
	h = bpf_map_lookup_elem(&hs_heads, &head);
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
 * TCP segment that may change its socket's state is noted by its ports
 * (see hs_tcp_ctl). tcp: 1 << 32 for such a segment, | sport << 16 |
 * dport. Not inlined: off the device hooks' frames.
 */
static __noinline void hs_note_rx(__u64 skb, __u64 id, __u32 netns, __u64 tcp, __u64 now)
{
	struct hs_last_rx v = { .skb = skb, .ts = now, .packet_id = id };
	struct hs_tcp_ctl_key k = {};
	struct hs_last_rx *r;
	__u32 zero = 0;

	r = bpf_map_lookup_elem(&hs_last_rx, &zero);
	if (r)
		*r = v;
	if (!(tcp >> 32) || !netns)
		return;
	k.netns = netns;
	k.sport = (__u16)(tcp >> 16);
	k.dport = (__u16)tcp;
	bpf_map_update_elem(&hs_tcp_ctl, &k, &v, BPF_ANY);
}

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
	hs_win_fill(p, skb, HS_WIN_FRAME_OF_SKB);
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
				   ((__u64)st->tcp_ctl << 32) | ((__u64)st->sport << 16) | st->dport,
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
	e = hs_reserve();
	if (!e) {
		hs_identify(key, head, 0, now, hook == HS_HOOK_NET_DEV_QUEUE, &is_new, 0, p->at,
			    &hs_no_tuple);
		return 0;
	}
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
	if (hook == HS_HOOK_NETIF_RECEIVE_SKB)
		hs_note_rx(key, id, e->netns_ino,
			   ((__u64)(fp && e->tuple.l4_proto == HS_IPPROTO_TCP &&
				    (e->tuple.tcp_flags & 0x07)) << 32) |
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
	h = bpf_map_lookup_elem(&hs_heads, &head);
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
	hs_submit(e);
	return 0;
}

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
	struct hs_event *e;
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
	e = hs_reserve();
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->hook = hook;
	e->packet_id = id;
	e->skb_addr = key;
	e->location = location;
	e->drop_reason = reason;
	if (hook == HS_HOOK_KFREE_SKB)
		e->aux = hs_drop_stack(ctx, reason);
	/* Where it ended: a device no hook showed (macvlan's rx handler) says so. */
	hs_fill_dev(e, skb->dev);
	{
		struct skb_shared_info *sh =
			(void *)(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end));
		__u32 dataref = BPF_CORE_READ(sh, dataref.counter);
		__u16 gso_size = BPF_CORE_READ(sh, gso_size);

		if (BPF_CORE_READ_BITFIELD_PROBED(skb, cloned) && (dataref & 0xffff) > 1)
			e->flags |= HS_F_SHARED;
		/*
		 * Consumed on its way out right after skb_gso_segment cut it: its
		 * segments come next (a GRO packet consumed on receipt is no such).
		 */
		if (hook == HS_HOOK_CONSUME_SKB && gso_size && tx) {
			__u32 zero = 0;
			struct hs_gso_state *g = bpf_map_lookup_elem(&hs_gso, &zero);
			struct net_device *dev = skb->dev;

			e->flags |= HS_F_SEGMENTED;
			e->seg_count = BPF_CORE_READ(sh, gso_segs);
			if (g && dev) {
				g->parent = id;
				g->ts = e->ts_ns;
				g->ifindex = BPF_CORE_READ(dev, ifindex);
				g->segs = e->seg_count;
				g->next = 0;
			}
		}
	}
	hs_submit(e);
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

/* Keep the ABI types in BTF so libbpf-cargo generates them for Rust. */
struct hs_event _hs_event_btf = {};
enum hs_hook _hs_hook_btf = HS_HOOK_NONE;
enum hs_l3 _hs_l3_btf = HS_L3_NONE;
enum hs_event_flags _hs_flags_btf = HS_F_TUPLE;
enum hs_stat _hs_stat_btf = HS_STAT_EMITTED;
enum hs_tunnel _hs_tunnel_btf = HS_TUNNEL_NONE;
enum hs_tuple_flags _hs_tuple_flags_btf = HS_T_VLAN;
struct hs_hop _hs_hop_btf = {};
struct hs_dev _hs_dev_btf = {};
enum hs_rec_kind _hs_rec_kind_btf = HS_REC_HOP;
