/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * filter.h: which packets are followed. Three gates, cheapest first:
 *
 * 1. Scope (--netns, --iface, --pid): read-only data set before load. A hop
 *    outside it is not a sighting at all.
 * 2. The pcap filter: classic BPF compiled by libpcap, interpreted here at a
 *    packet's first sighting, in a bpf_loop() callback (verified once,
 *    whatever the program). Userspace swaps programs through maps, so the
 *    filter changes without reloading anything.
 * 3. A rejected skb is remembered in a small direct-mapped cache, so its
 *    later hooks cost one array lookup. Many frees have no tracepoint (TCP
 *    frees acknowledged segments with __kfree_skb), and the slab hands the
 *    same sk_buff and data buffer to the next packet at once: the address
 *    and buffer are not enough to tell packets apart. The entry also keeps
 *    a tag of the packet: its linear length from the network header and
 *    the first 7 bytes of that header (IPv4: lengths and id; IPv6: flow
 *    label and payload length; not the TTL or hop limit, which forwarding
 *    rewrites). The free hooks clear the entry.
 *
 * Kernel facts:
 * - What tcpdump sees on a device starts at the link-layer header on
 *   Ethernet and loopback devices (DLT_EN10MB) and at the IP header on
 *   devices without one (DLT_RAW: tun, ipip, wireguard). On rx hooks
 *   eth_type_trans has pulled the Ethernet header: it starts at
 *   head + mac_header, not at data, and the length tcpdump reports is
 *   skb->len plus what was pulled.
 * - Only the linear part (head .. head + tail) is readable with a plain
 *   probe read; a load past it fails, and a failing load rejects the packet
 *   as in the kernel's own classic BPF (payload of GSO packets, mostly).
 * - In tp_btf programs, skb and dev fields are direct loads, much cheaper
 *   than bpf_probe_read_kernel: the gates use them.
 * - A program run from softirq can interrupt another one on the same CPU,
 *   but not itself: a raw tracepoint program (tp_btf included) that fires
 *   on a CPU where it is running already is skipped (kernel commit "bpf:
 *   Prevent bpf program recursion for raw tracepoint probes", in 6.1 and
 *   stable backports). So the interpreter state, and the headers and flow
 *   key hs_follow decides on, live in a per-CPU scratch slot of the
 *   program's own (hs_scratch, indexed by hook), not on the stack: the
 *   verifier allows 512 bytes of stack to a whole call chain (6.1 counts
 *   each frame rounded up to 32 bytes).
 */
#ifndef HOPSCOPE_FILTER_H
#define HOPSCOPE_FILTER_H

/* Scope, set by userspace before load. 0 entries: no restriction. */
const volatile __u32 hs_cfg_scope_netns[HS_SCOPE_MAX] = {};
const volatile __u32 hs_cfg_scope_n_netns = 0;
/* Interface names as two little-endian words each, zero padded. */
const volatile __u64 hs_cfg_scope_ifnames[HS_SCOPE_MAX][2] = {};
const volatile __u32 hs_cfg_scope_n_ifnames = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hs_filter_ctl);
} hs_filter_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct hs_cbpf_prog);
} hs_filter_progs SEC(".maps");

/* Flows a matching packet started: value is the filter epoch. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hs_flow_key);
	__type(value, __u32);
} hs_flows SEC(".maps");

struct hs_rejected {
	__u64 skb;
	__u64 head;
	__u32 tag;
	__u32 _pad;
};

#define HS_REJECTED_SLOTS 1024
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HS_REJECTED_SLOTS);
	__type(key, __u32);
	__type(value, struct hs_rejected);
} hs_rejected SEC(".maps");

/* Whether the last device sighting on this CPU was of a followed packet. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} hs_last_followed SEC(".maps");

/* Whether a namespace (by inode) is inside the --netns scope (if any). */
static __always_inline int hs_netns_in_scope(__u32 ino)
{
	int i, found = 0;

	if (!hs_cfg_scope_n_netns)
		return 1;
	for (i = 0; i < HS_SCOPE_MAX; i++)
		if (i < hs_cfg_scope_n_netns && ino == hs_cfg_scope_netns[i])
			found = 1;
	return found;
}

static __always_inline int hs_in_scope(struct net_device *dev)
{
	if (hs_cfg_scope_n_netns) {
		__u32 ino = 0;
		int i, found = 0;

		if (dev) {
			struct net *net = BPF_CORE_READ(dev, nd_net.net);

			ino = net ? BPF_CORE_READ(net, ns.inum) : 0;
		}
		for (i = 0; i < HS_SCOPE_MAX; i++)
			if (i < hs_cfg_scope_n_netns && ino == hs_cfg_scope_netns[i])
				found = 1;
		if (!found)
			return 0;
	}
	if (hs_cfg_scope_n_ifnames) {
		__u64 name[2] = {};
		int i, found = 0;

		if (!dev || bpf_probe_read_kernel(name, sizeof(name), dev->name))
			return 0;
		for (i = 0; i < HS_SCOPE_MAX; i++)
			if (i < hs_cfg_scope_n_ifnames && name[0] == hs_cfg_scope_ifnames[i][0] &&
			    name[1] == hs_cfg_scope_ifnames[i][1])
				found = 1;
		if (!found)
			return 0;
	}
	return 1;
}

/* A scope narrows what is seen (--netns, --iface, --pid). */
static __always_inline int hs_scoped(void)
{
	return hs_cfg_scope_n_netns || hs_cfg_scope_n_ifnames;
}

/* The filter in force, or NULL when every packet is followed. */
static __always_inline const struct hs_filter_ctl *hs_filter_active(void)
{
	__u32 zero = 0;
	const struct hs_filter_ctl *ctl = bpf_map_lookup_elem(&hs_filter_ctl, &zero);

	return ctl && ctl->enabled ? ctl : NULL;
}

/*
 * 8 bytes of skb's data buffer at head + off. Since Linux 6.17 a BTF pointer
 * to bytes (skb->head) is read-only untrusted memory: a plain load, which
 * the JIT guards against faults, is much cheaper than a helper call. Older
 * kernels take the probe read; the test is a CO-RE constant, so each kernel
 * verifies only its own branch.
 */
static __always_inline __u64 hs_head_u64(struct sk_buff *skb, __u32 off)
{
	__u64 word = 0;

	if (bpf_core_enum_value_exists(enum bpf_features, BPF_FEAT_RDONLY_CAST_TO_VOID)) {
		const unsigned char *head = skb->head;

		word = *(const __u64 *)(head + off);
	} else {
		bpf_probe_read_kernel(&word, sizeof(word), skb->head + off);
	}
	return word;
}

/* See 3. above; 0 when the network header is unset. */
static __always_inline __u32 hs_rejected_tag(struct sk_buff *skb)
{
	__u16 net = skb->network_header;
	__u32 tail = skb->tail;
	__u64 word;

	if (net == HS_MAC_UNSET || tail <= net)
		return 0;
	word = hs_head_u64(skb, net);
	word &= 0x00ffffffffffffffULL; /* little endian: byte 7 (hop limit) off */
	/*
	 * And bytes 12..19: IPv4's addresses (part of IPv6's source): a packet
	 * NAT rewrote faces the filter again with its new headers.
	 */
	if (tail >= net + 20) {
		__u64 addrs = hs_head_u64(skb, net + 12);

		word ^= addrs * 0x9e3779b97f4a7c15ULL;
	}
	return ((tail - net) << 16) ^ (__u32)word ^ (__u32)(word >> 32) * 2654435761u;
}

/*
 * The slot comes from the tag, not the address: the verifier forbids
 * arithmetic on a pointer, and the tag changes from packet to packet.
 */
static __always_inline struct hs_rejected *hs_rejected_slot(__u32 tag)
{
	__u32 slot = (tag ^ (tag >> 16) ^ (tag >> 26)) & (HS_REJECTED_SLOTS - 1);

	return bpf_map_lookup_elem(&hs_rejected, &slot);
}

static __always_inline int hs_was_rejected(__u64 skb, __u64 head, __u32 tag)
{
	struct hs_rejected *r = hs_rejected_slot(tag);

	return r && r->skb == skb && r->head == head && r->tag == tag;
}

static __always_inline void hs_remember_rejected(__u64 skb, __u64 head, __u32 tag)
{
	struct hs_rejected *r = hs_rejected_slot(tag);

	if (r) {
		r->skb = skb;
		r->head = head;
		r->tag = tag;
	}
}

/* At a free: the next skb at this address is another packet. */
static __always_inline void hs_forget_rejected(struct sk_buff *skb)
{
	struct hs_rejected *r = hs_rejected_slot(hs_rejected_tag(skb));

	if (r && r->skb == (__u64)skb)
		r->skb = 0;
}

static __always_inline void hs_set_last_followed(__u32 followed)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&hs_last_followed, &zero);

	if (v)
		*v = followed;
}

static __always_inline int hs_last_was_followed(void)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&hs_last_followed, &zero);

	return v && *v;
}

/* Classic BPF opcodes (include/uapi/linux/filter.h). */
#define HS_BPF_CLASS(c) ((c) & 0x07)
#define HS_BPF_SIZE(c) ((c) & 0x18)
#define HS_BPF_MODE(c) ((c) & 0xe0)
#define HS_BPF_OP(c) ((c) & 0xf0)
#define HS_BPF_SRC_X(c) ((c) & 0x08)

/* Bytes copied up front: Ethernet + IPv6 + the ports, in one read. */
#define HS_CBPF_WINDOW 64

struct hs_cbpf_run {
	const unsigned char *pkt; /* first byte tcpdump would see */
	__u32 caplen;             /* readable bytes from pkt */
	__u32 window;             /* of them, copied into win */
	__u32 wirelen;            /* the packet's length as tcpdump reports it */
	__u32 slot;               /* index into hs_filter_progs */
	__u32 pc;
	__u32 a;
	__u32 x;
	__u32 ret;
	__u32 mem[16];
	__u8 win[HS_CBPF_WINDOW];
};

/* bpf_loop() wants its context on the stack: a pointer to the run. */
struct hs_cbpf_loop {
	struct hs_cbpf_run *r;
};

/* One program's scratch (see Kernel facts above). */
struct hs_scratch {
	struct hs_cbpf_run run;
	struct hs_tuple t;     /* headers of the packet hs_follow decides on */
	struct hs_outer o;     /* the tunnel around them (unused there) */
	struct hs_flow_key k;  /* its flow, looked up with whole flows */
	struct hs_parse_buf p; /* the packet's first bytes, and the parser's header buffer */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HS_HOOK_MAX);
	__type(key, __u32);
	__type(value, struct hs_scratch);
} hs_scratch SEC(".maps");

/* The scratch slot of the program of hook. */
static __always_inline struct hs_scratch *hs_scratch_of(__u32 hook)
{
	return bpf_map_lookup_elem(&hs_scratch, &hook);
}

/* The parser's buffer in the scratch slot of hook's program. */
static __always_inline struct hs_parse_buf *hs_parse_buf_of(__u32 hook)
{
	struct hs_scratch *s = hs_scratch_of(hook);

	return s ? &s->p : NULL;
}

/* A load of 1, 2 or 4 bytes at off, in network order. -1: out of bounds. */
static __always_inline int hs_cbpf_load(const struct hs_cbpf_run *r, __u32 off, __u32 size,
					__u32 *out)
{
	if (off >= r->caplen || size > r->caplen - off)
		return -1;
	if (off < r->window && size <= r->window - off) {
		/* Masks keep the verifier's bounds; the test above keeps the bytes. */
		__u32 v = r->win[off & (HS_CBPF_WINDOW - 1)];

		if (size >= 2)
			v = v << 8 | r->win[(off + 1) & (HS_CBPF_WINDOW - 1)];
		if (size == 4) {
			v = v << 8 | r->win[(off + 2) & (HS_CBPF_WINDOW - 1)];
			v = v << 8 | r->win[(off + 3) & (HS_CBPF_WINDOW - 1)];
		}
		*out = v;
		return 0;
	}
	if (size == 4) {
		__u32 v;

		if (bpf_probe_read_kernel(&v, 4, r->pkt + off))
			return -1;
		*out = bpf_ntohl(v);
	} else if (size == 2) {
		__u16 v;

		if (bpf_probe_read_kernel(&v, 2, r->pkt + off))
			return -1;
		*out = bpf_ntohs(v);
	} else {
		__u8 v;

		if (bpf_probe_read_kernel(&v, 1, r->pkt + off))
			return -1;
		*out = v;
	}
	return 0;
}

static __always_inline __u32 hs_cbpf_size(__u16 code)
{
	switch (HS_BPF_SIZE(code)) {
	case 0x00: return 4; /* BPF_W */
	case 0x08: return 2; /* BPF_H */
	default: return 1;   /* BPF_B */
	}
}

/* One instruction. Returns 1 to stop (r->ret holds the verdict). */
static long hs_cbpf_step(__u32 i, void *ctx)
{
	struct hs_cbpf_run *r = ((struct hs_cbpf_loop *)ctx)->r;
	const struct hs_cbpf_prog *prog = bpf_map_lookup_elem(&hs_filter_progs, &r->slot);
	const struct hs_cbpf_insn *in;
	__u32 pc = r->pc, k, v, src;
	__u16 code;

	r->ret = 0;
	if (!prog || pc >= prog->len || pc >= HS_FILTER_MAX_INSNS)
		return 1;
	in = &prog->insns[pc];
	code = in->code;
	k = in->k;
	r->pc = pc + 1;
	switch (HS_BPF_CLASS(code)) {
	case 0x00: /* BPF_LD */
		switch (HS_BPF_MODE(code)) {
		case 0x00: r->a = k; break;                              /* IMM */
		case 0x20: if (hs_cbpf_load(r, k, hs_cbpf_size(code), &v)) return 1; /* ABS */
			r->a = v; break;
		case 0x40: if (hs_cbpf_load(r, r->x + k, hs_cbpf_size(code), &v)) return 1; /* IND */
			r->a = v; break;
		case 0x60: if (k >= 16) return 1;                        /* MEM */
			r->a = r->mem[k & 15]; break;
		case 0x80: r->a = r->wirelen; break;                     /* LEN */
		default: return 1;
		}
		break;
	case 0x01: /* BPF_LDX */
		switch (HS_BPF_MODE(code)) {
		case 0x00: r->x = k; break;
		case 0x60: if (k >= 16) return 1;
			r->x = r->mem[k & 15]; break;
		case 0x80: r->x = r->wirelen; break;
		case 0xa0: if (hs_cbpf_load(r, k, 1, &v)) return 1;     /* MSH */
			r->x = (v & 0xf) << 2; break;
		default: return 1;
		}
		break;
	case 0x02: /* BPF_ST */
		if (k >= 16) return 1;
		r->mem[k & 15] = r->a;
		break;
	case 0x03: /* BPF_STX */
		if (k >= 16) return 1;
		r->mem[k & 15] = r->x;
		break;
	case 0x04: /* BPF_ALU */
		src = HS_BPF_SRC_X(code) ? r->x : k;
		switch (HS_BPF_OP(code)) {
		case 0x00: r->a += src; break;
		case 0x10: r->a -= src; break;
		case 0x20: r->a *= src; break;
		case 0x30: if (!src) return 1;
			r->a /= src; break;
		case 0x40: r->a |= src; break;
		case 0x50: r->a &= src; break;
		case 0x60: r->a = src >= 32 ? 0 : r->a << (src & 31); break;
		case 0x70: r->a = src >= 32 ? 0 : r->a >> (src & 31); break;
		case 0x80: r->a = -r->a; break;
		case 0x90: if (!src) return 1;
			r->a %= src; break;
		case 0xa0: r->a ^= src; break;
		default: return 1;
		}
		break;
	case 0x05: /* BPF_JMP: forward only, so the loop bound is the length */
		src = HS_BPF_SRC_X(code) ? r->x : k;
		switch (HS_BPF_OP(code)) {
		case 0x00: r->pc += k; break;
		case 0x10: r->pc += r->a == src ? in->jt : in->jf; break;
		case 0x20: r->pc += r->a > src ? in->jt : in->jf; break;
		case 0x30: r->pc += r->a >= src ? in->jt : in->jf; break;
		case 0x40: r->pc += (r->a & src) ? in->jt : in->jf; break;
		default: return 1;
		}
		break;
	case 0x06: /* BPF_RET */
		r->ret = HS_BPF_SIZE(code) == 0x10 ? r->a : k;
		return 1;
	default: /* BPF_MISC */
		if (HS_BPF_OP(code) == 0x00 && !HS_BPF_SRC_X(code))
			r->x = r->a; /* TAX */
		else
			r->a = r->x; /* TXA */
		break;
	}
	return 0;
}

/*
 * Whether the pcap filter of this epoch accepts skb as tcpdump on its
 * device (of ARPHRD type dev_type) would see it.
 */
static __noinline int hs_cbpf_match(struct sk_buff *skb, unsigned short dev_type, __u32 epoch,
				    struct hs_cbpf_run *r)
{
	struct hs_cbpf_loop loop = { .r = r };
	unsigned char *head = skb->head;
	unsigned char *data = skb->data;
	__u16 mac = skb->mac_header;
	__u16 net = skb->network_header;
	__u32 tail = skb->tail;
	unsigned short type = dev_type;
	__u32 start, framing = HS_FRAMING_RAW;
	const struct hs_cbpf_prog *prog;

	if ((type == HS_ARPHRD_ETHER || type == HS_ARPHRD_LOOPBACK) && mac != HS_MAC_UNSET &&
	    mac != net) {
		framing = HS_FRAMING_ETHER;
		start = mac;
	} else {
		start = net != HS_MAC_UNSET && net != 0 ? net : mac;
		if (start == HS_MAC_UNSET)
			return 0;
	}
	if (!head || tail <= start)
		return 0;
	r->pkt = head + start;
	r->caplen = tail - start;
	r->wirelen = skb->len + (__u32)(data - r->pkt);
	r->slot = (epoch & 1) * 2 + framing;
	r->a = r->x = r->ret = 0;
	__builtin_memset(r->mem, 0, sizeof(r->mem));
	if (bpf_core_enum_value_exists(enum bpf_features, BPF_FEAT_RDONLY_CAST_TO_VOID)) {
		/*
		 * Plain loads (see hs_head_u64). Bytes past the linear part are
		 * copied too but never used: loads check caplen first.
		 */
		const __u64 *src = (const __u64 *)(head + start);
		__u64 *dst = (__u64 *)r->win;
		int i;

		for (i = 0; i < HS_CBPF_WINDOW / 8; i++)
			dst[i] = src[i];
		r->window = r->caplen < HS_CBPF_WINDOW ? r->caplen : HS_CBPF_WINDOW;
	} else {
		__u32 n = r->caplen < HS_CBPF_WINDOW ? r->caplen : HS_CBPF_WINDOW;

		/* Hide the bound from the compiler so the mask the verifier needs stays. */
		asm volatile("" : "+r"(n));
		n &= HS_CBPF_WINDOW * 2 - 1;
		if (n > HS_CBPF_WINDOW || bpf_probe_read_kernel(r->win, n, r->pkt))
			n = 0;
		r->window = n;
	}
	prog = bpf_map_lookup_elem(&hs_filter_progs, &r->slot);
	if (!prog || !prog->len)
		return 0;
	/*
	 * The start (always 0) comes from the map: to the verifier it is then
	 * an unknown number, and the callback is verified once, not once per
	 * possible instruction index (seconds of load time).
	 */
	r->pc = prog->_pad;
	bpf_loop(HS_FILTER_MAX_INSNS, hs_cbpf_step, &loop, 0);
	return r->ret != 0;
}

/* One direction of t's flow. */
static __always_inline void hs_flow_key_of(const struct hs_tuple *t, struct hs_flow_key *k,
					   int reverse)
{
	__u16 sp = t->sport, dp = t->dport;

	if (t->l4_proto == HS_IPPROTO_ICMP || t->l4_proto == HS_IPPROTO_ICMPV6)
		sp = dp = t->icmp_id;
	if (t->l3 == HS_L3_ARP)
		sp = dp = 0;
	if (reverse) {
		__builtin_memcpy(k->saddr, t->daddr, 16);
		__builtin_memcpy(k->daddr, t->saddr, 16);
		k->sport = dp;
		k->dport = sp;
	} else {
		__builtin_memcpy(k->saddr, t->saddr, 16);
		__builtin_memcpy(k->daddr, t->daddr, 16);
		k->sport = sp;
		k->dport = dp;
	}
	k->l3 = t->l3;
	k->proto = t->l3 == HS_L3_ARP ? 0 : t->l4_proto;
}

/*
 * hs_flows values: the epoch, with this bit when the key is a tuple of a
 * NAT'd connection a matching packet belongs to (learned from conntrack):
 * every packet of that connection is followed from its first hop, also
 * under a per-packet filter (its tuple before the rewrite may not match).
 */
#define HS_FLOW_CONN 0x80000000u

/*
 * Keys learned with HS_FLOW_CONN; until the first, a rejected packet's
 * tuple is not worth parsing. Only ever overstates.
 */
__u64 hs_conns_learned = 0;

/*
 * Whether t belongs to a flow a matching packet started in this epoch
 * (whole: any; else only a NAT'd connection's). k: room for the key (a
 * scratch slot in a subprogram).
 */
static __always_inline int hs_flow_known_in(const struct hs_tuple *t, __u32 epoch, int whole,
					   struct hs_flow_key *k)
{
	__u32 *v;

	__builtin_memset(k, 0, sizeof(*k));
	hs_flow_key_of(t, k, 0);
	v = bpf_map_lookup_elem(&hs_flows, k);
	if (!v)
		return 0;
	return whole ? (*v & ~HS_FLOW_CONN) == epoch : *v == (epoch | HS_FLOW_CONN);
}

static __always_inline int hs_flow_known(const struct hs_tuple *t, __u32 epoch)
{
	struct hs_flow_key k;

	return hs_flow_known_in(t, epoch, 1, &k);
}

/*
 * Remembers both directions of t's flow (once per epoch); whether it was
 * new. The key is built in hook's scratch slot.
 */
static __always_inline int hs_flow_learn(const struct hs_tuple *t, __u32 epoch, __u32 hook)
{
	struct hs_scratch *s = hs_scratch_of(hook);
	__u32 *v;

	if (!s)
		return 0;
	__builtin_memset(&s->k, 0, sizeof(s->k));
	hs_flow_key_of(t, &s->k, 0);
	v = bpf_map_lookup_elem(&hs_flows, &s->k);
	if (v && (*v & ~HS_FLOW_CONN) == epoch)
		return 0;
	bpf_map_update_elem(&hs_flows, &s->k, &epoch, BPF_ANY);
	hs_flow_key_of(t, &s->k, 1);
	bpf_map_update_elem(&hs_flows, &s->k, &epoch, BPF_ANY);
	return 1;
}

/* Kernels whose conntrack is a module that is not loaded have no nf_conn. */
struct nf_conn___hs {
	unsigned long status;
	struct nf_conntrack_tuple_hash tuplehash[2];
} __attribute__((preserve_access_index));

#define HS_IPS_NAT_MASK ((1 << 4) | (1 << 5)) /* IPS_SRC_NAT | IPS_DST_NAT */
#define HS_NFCT_PTRMASK (~7UL)

/* Both directions of one conntrack tuple, with the connection mark. */
static __always_inline void hs_conn_learn_tuple(const struct nf_conntrack_tuple *ct_t, __u32 val)
{
	struct hs_flow_key k = {}, r = {};
	__u16 l3num = BPF_CORE_READ(ct_t, src.l3num);
	__u8 proto = BPF_CORE_READ(ct_t, dst.protonum);
	__u16 sp, dp;

	if (l3num == 2 /* AF_INET */) {
		__be32 a = BPF_CORE_READ(ct_t, src.u3.ip), b = BPF_CORE_READ(ct_t, dst.u3.ip);

		k.l3 = HS_L3_IPV4;
		__builtin_memcpy(k.saddr, &a, 4);
		__builtin_memcpy(k.daddr, &b, 4);
	} else if (l3num == 10 /* AF_INET6 */) {
		k.l3 = HS_L3_IPV6;
		BPF_CORE_READ_INTO(&k.saddr, ct_t, src.u3.ip6);
		BPF_CORE_READ_INTO(&k.daddr, ct_t, dst.u3.ip6);
	} else {
		return;
	}
	k.proto = proto;
	sp = bpf_ntohs(BPF_CORE_READ(ct_t, src.u.all));
	dp = bpf_ntohs(BPF_CORE_READ(ct_t, dst.u.all));
	/* ICMP: the echo id names the conversation on both sides. */
	if (proto == HS_IPPROTO_ICMP || proto == HS_IPPROTO_ICMPV6)
		dp = sp;
	else if (proto != HS_IPPROTO_TCP && proto != HS_IPPROTO_UDP)
		sp = dp = 0;
	k.sport = sp;
	k.dport = dp;
	__builtin_memcpy(r.saddr, k.daddr, 16);
	__builtin_memcpy(r.daddr, k.saddr, 16);
	r.sport = dp;
	r.dport = sp;
	r.l3 = k.l3;
	r.proto = k.proto;
	bpf_map_update_elem(&hs_flows, &k, &val, BPF_ANY);
	bpf_map_update_elem(&hs_flows, &r, &val, BPF_ANY);
}

/*
 * A followed packet of a connection NAT rewrote: both of conntrack's
 * tuples (before and after the rewrite) name the connection from now on,
 * so its packets are followed from their first hop, before any rewrite.
 */
static __noinline void hs_conn_learn(struct sk_buff *skb, __u32 epoch)
{
	struct nf_conn___hs *ct;
	__u32 val = epoch | HS_FLOW_CONN;

	if (!bpf_core_type_exists(struct nf_conn) || !bpf_core_field_exists(skb->_nfct))
		return;
	ct = (void *)(BPF_CORE_READ(skb, _nfct) & HS_NFCT_PTRMASK);
	if (!ct || !(BPF_CORE_READ(ct, status) & HS_IPS_NAT_MASK))
		return;
	hs_conn_learn_tuple(&ct->tuplehash[0].tuple, val);
	hs_conn_learn_tuple(&ct->tuplehash[1].tuple, val);
	__sync_fetch_and_add(&hs_conns_learned, 1);
}

#endif /* HOPSCOPE_FILTER_H */
