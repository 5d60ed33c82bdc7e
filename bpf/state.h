/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * state.h: what the programs keep between runs. Load-time configuration
 * (const volatile hs_cfg_*, set by userspace), the maps (ring buffer, per-skb
 * packet identities, data buffer owners, GSO parents, the last rx per CPU,
 * TCP control segments, drop stacks, statistics), the global counters, and
 * hs_nothing_followed and hs_count that read and bump them.
 *
 * Part of hopscope.bpf.c, which includes it and the headers after it in
 * order: not self-contained (each relies on the ones before).
 */
#ifndef HOPSCOPE_STATE_H
#define HOPSCOPE_STATE_H

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
/*
 * --snaplen: bytes of a packet to copy where its headers are sent in full
 * (0: none), and the room a struct hs_snap record has for them (the
 * snaplen rounded up to 8; a constant to the verifier: .rodata is frozen).
 */
const volatile __u32 hs_cfg_snaplen = 0;
const volatile __u32 hs_cfg_snap_room = 8;
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
	__u8 is_tcp;  /* a TCP segment (see hs_tcp_rx) */
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
 * after the original was freed) until another buffer takes their slot.
 *
 * Direct-mapped by a hash of the address, not a hash map: every packet's
 * first sighting writes here, and an LRU map update cost ~200 ns of the
 * ~1,200 a first sighting took (bpf_stats, iperf3). At 300,000 new packets
 * a second a slot lives ~0.4 s on average; clones come microseconds after
 * their original. Two CPUs writing one slot at once would leave fields of
 * both: the check word (hs_head_check) makes such a slot read as empty.
 */
#define HS_HEAD_SLOTS (1U << 17)

struct hs_head_state {
	__u64 head;       /* the data buffer (0: empty) */
	__u64 packet_id;  /* whose data it is */
	__u64 skb;        /* the skb that carries that packet now */
	__u64 ts;
	__u32 taken;      /* a clone took the packet over already */
	__u32 fingerprint; /* of its headers: a buffer reused for another packet differs */
	__u64 check;      /* hs_head_check of the fields above (but ts and taken) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HS_HEAD_SLOTS);
	__type(key, __u32);
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
 * The last followed TCP segment received on each connection, by its
 * namespace and ports (host order): a socket a task holds gets segments
 * later, from its backlog, in the task's context on any CPU, and a state
 * change there (a handshake's or a close's last ACK, a FIN) is found here.
 * Every segment is noted, not only SYN, FIN and RST: the ACK that closes a
 * LAST_ACK socket carries none of them. Direct-mapped by a hash of the
 * connection (a write, not a map update, per segment); a slot two CPUs
 * wrote at once fails the checks of what it names (its ports, then the
 * packet's identity), never names another packet.
 */
#define HS_TCP_RX_SLOTS 16384

struct hs_tcp_rx {
	__u32 netns;
	__u16 sport;
	__u16 dport;
	__u64 skb;
	__u64 ts;
	__u64 packet_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HS_TCP_RX_SLOTS);
	__type(key, __u32);
	__type(value, struct hs_tcp_rx);
} hs_tcp_rx SEC(".maps");

static __always_inline __u32 hs_tcp_rx_slot(__u32 netns, __u16 sport, __u16 dport)
{
	__u64 k = ((__u64)netns << 32) | ((__u32)sport << 16) | dport;

	return (__u32)((k * 0x9e3779b97f4a7c15ULL) >> 40) & (HS_TCP_RX_SLOTS - 1);
}

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

#endif /* HOPSCOPE_STATE_H */
