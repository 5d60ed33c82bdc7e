/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hopscope.h: THE ABI between the BPF programs and userspace.
 *
 * Every struct, enum and constant shared with Rust lives here and nowhere
 * else. Rust never mirrors these by hand: libbpf-cargo generates the Rust
 * types from the object's BTF, and src/bpf/abi.rs checks their sizes.
 *
 * Rules: names carry the hs_ prefix (vmlinux.h owns the common names),
 * fixed-width types only, strings as __u8 arrays, explicit padding, no
 * __packed, and a _Static_assert on every size. Bump HS_ABI_VERSION on any
 * layout change of struct hs_event (recordings hold it); the compact records
 * (struct hs_hop, hs_dev) live only in the ring, and userspace expands them
 * into full events before anything else sees them (src/event/stream.rs).
 */
#ifndef HOPSCOPE_H
#define HOPSCOPE_H

#define HS_ABI_VERSION 2
#define HS_IFNAMSIZ 16
#define HS_COMM_LEN 16

/* Where an event was observed. Values are stable: they go into recordings. */
enum hs_hook {
	HS_HOOK_NONE = 0,
	HS_HOOK_NET_DEV_QUEUE = 1,     /* tx: the packet enters a device */
	HS_HOOK_NET_DEV_XMIT = 2,      /* tx: the driver returned */
	HS_HOOK_NETIF_RX = 3,          /* rx into the backlog (veth, lo, tunnels) */
	HS_HOOK_NETIF_RECEIVE_SKB = 4, /* rx core, every rx path */
	HS_HOOK_NAPI_GRO_RECEIVE = 5,  /* NIC rx through NAPI/GRO */
	HS_HOOK_SKB_COPY_DATAGRAM = 6, /* delivered into a socket */
	HS_HOOK_CONSUME_SKB = 7,       /* normal end of life */
	HS_HOOK_KFREE_SKB = 8,         /* freed with a drop reason */
	/* Annotations: about a packet or a flow, not a hop of it. */
	HS_HOOK_ICMP_SEND = 9,         /* the kernel sends an ICMP error because of skb */
	HS_HOOK_TCP_SEND_RESET = 10,   /* a RST is sent (skb: the segment that caused it) */
	HS_HOOK_TCP_RECEIVE_RESET = 11,/* a RST was received on a socket */
	HS_HOOK_TCP_RETRANSMIT = 12,   /* a segment is retransmitted */
	HS_HOOK_FIB_LOOKUP = 13,       /* a routing table lookup (IPv4 and IPv6) */
	HS_HOOK_NEIGH = 14,            /* neighbour resolution started, answered, failed */
	/* Where a packet ended up: hops without a device of their own. */
	HS_HOOK_TCP_RCV = 15,          /* tcp_probe: a segment reached an established socket */
	HS_HOOK_SOCK_QUEUE = 16,       /* sk_data_ready: queued to a socket (or a clone was) */
	/* A software GSO segment enters the driver (its first sighting). */
	HS_HOOK_NET_DEV_START_XMIT = 17,
	/* inet_sock_set_state: a received TCP segment moved its socket's state. */
	HS_HOOK_TCP_STATE = 18,
	HS_HOOK_MAX = 19,
};

/* Tunnels whose inner packet the parser reads (hs_outer.kind). */
enum hs_tunnel {
	HS_TUNNEL_NONE = 0,
	HS_TUNNEL_VXLAN = 1,  /* UDP 4789 or 8472 (Linux's default) */
	HS_TUNNEL_GENEVE = 2, /* UDP 6081 */
	HS_TUNNEL_GRE = 3,    /* IP protocol 47, gre and gretap */
	HS_TUNNEL_IPIP = 4,   /* IPv4 or IPv6 in IPv4 or IPv6 (ipip, sit, ip6tnl) */
};

/* Which network-layer header the tuple describes. */
enum hs_l3 {
	HS_L3_NONE = 0,
	HS_L3_IPV4 = 1,
	HS_L3_IPV6 = 2,
	HS_L3_ARP = 3,
	HS_L3_OTHER = 4, /* an ethertype we do not parse */
};

/* hs_event.flags */
enum hs_event_flags {
	HS_F_TUPLE = 1 << 0,     /* tuple holds parsed headers */
	HS_F_NEW = 1 << 1,       /* first sighting of this packet */
	HS_F_TASK = 1 << 2,      /* pid/comm name the sending task */
	HS_F_L2 = 1 << 3,        /* headers were parsed from an Ethernet frame */
	HS_F_SOCK = 1 << 4,      /* tuple from the socket (TCP hooks): local is src */
	HS_F_OUTER = 1 << 5,     /* outer holds the tunnel headers around tuple */
	/*
	 * This skb is a clone of packet `related` (it shares its data): a
	 * bridge flood's second copy, or on a socket hook the clone a raw or
	 * ping socket got (the event then names `related` itself).
	 */
	HS_F_CLONE = 1 << 6,
	/*
	 * The first clone of a packet took its id on a device hook (a bridge
	 * forwarding a clone while the original goes up to the bridge's own
	 * stack): the original skb goes on as packet `related` from here.
	 */
	HS_F_BRANCH = 1 << 7,
	HS_F_SEGMENT = 1 << 8,   /* a software GSO segment of packet `related` */
	HS_F_SEGMENTED = 1 << 9, /* consume_skb of a GSO packet cut into seg_count segments */
	HS_F_SHARED = 1 << 10,   /* freed while a clone still holds its data */
};

/* hs_tuple.tflags */
enum hs_tuple_flags {
	HS_T_VLAN = 1 << 0, /* an 802.1Q/802.1ad tag was present: vlan_tci is valid */
	HS_T_FRAG = 1 << 1, /* a non-first fragment: no transport header */
};

/* Counter slots of the per-CPU hs_stats array. */
enum hs_stat {
	HS_STAT_EMITTED = 0, /* events the programs tried to emit */
	HS_STAT_LOST = 1,    /* of those, failed reservations (or records discarded) */
	HS_STAT_PACKETS = 2, /* packet ids handed out */
	HS_STAT_REUSED = 3,  /* skb addresses seen reused without a free event */
	HS_STAT_FILTERED = 4, /* first sightings the filter rejected */
	HS_STAT_MAX = 5,
};

/* Parsed headers of one packet as seen at one hop. Numbers in host order. */
struct hs_tuple {
	__u8 saddr[16];    /* IPv4 in the first 4 bytes; ARP: sender IP */
	__u8 daddr[16];    /* ARP: target IP */
	__u16 ethertype;   /* of the L3 header, after VLAN tags */
	__u16 vlan_tci;    /* with HS_T_VLAN: priority, DEI and VLAN id (0: priority tag) */
	__u8 l3;           /* enum hs_l3 */
	__u8 l4_proto;     /* IPPROTO_* */
	__u8 ttl;          /* TTL or hop limit */
	__u8 tcp_flags;    /* FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128 */
	__u16 sport;
	__u16 dport;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 icmp_id;
	__u16 icmp_seq;
	__u16 ip_id;       /* IPv4 identification */
	__u32 tcp_seq;
	__u32 tcp_ack;
	__u32 flow_label;  /* IPv6 */
	__u16 l4_len;      /* UDP length field */
	__u16 arp_op;
	__u16 ip_len;      /* IPv4 total length / IPv6 payload length */
	__u8 tflags;       /* enum hs_tuple_flags */
	__u8 _pad0;
};
_Static_assert(sizeof(struct hs_tuple) == 72, "hs_tuple layout");

/* The outer headers of a tunnelled packet (HS_F_OUTER). Host order. */
struct hs_outer {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;       /* UDP tunnels */
	__u16 dport;
	__u32 vni;         /* VXLAN or GENEVE VNI, GRE key (0: none) */
	__u8 l3;           /* enum hs_l3 */
	__u8 proto;        /* IPPROTO_UDP, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6 */
	__u8 kind;         /* enum hs_tunnel */
	__u8 _pad;
};
_Static_assert(sizeof(struct hs_outer) == 44, "hs_outer layout");

/* One observation of one skb at one hook. */
struct hs_event {
	__u16 abi_version;
	__u8 hook;          /* enum hs_hook */
	__u8 _pad0;
	__u16 flags;        /* enum hs_event_flags */
	__u16 seg_index;    /* HS_F_SEGMENT: which segment, from 1 */
	__u32 cpu;
	__u16 seg_count;    /* HS_F_SEGMENT, HS_F_SEGMENTED: segments made */
	__u16 _pad1;
	__u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 packet_id;    /* stable for the skb's life, never 0 */
	__u64 skb_addr;
	__u64 netns_cookie; /* 0 where the kernel has no net cookie */
	__u64 location;     /* kfree_skb: code address of the free */
	__u64 sk_cgroup;    /* cgroup v2 id of the owning socket, 0 if none */
	__u64 related;      /* HS_F_CLONE, HS_F_BRANCH, HS_F_SEGMENT: the other packet */
	__u32 netns_ino;    /* 0 when the skb has no device (end events) */
	__u32 ifindex;
	__u32 len;          /* skb->len */
	__u32 pid;          /* tgid, valid with HS_F_TASK */
	__u32 tid;
	__u32 drop_reason;  /* kfree_skb: enum skb_drop_reason of this kernel */
	__s32 xmit_rc;      /* net_dev_xmit: driver return code; fib: error (0: found) */
	__u32 aux;          /* icmp_send: type << 8 | code; fib: table id;
	                     * kfree_skb: stack id + 1 with --drop-stack (0: none);
	                     * neigh: old NUD state << 8 | new (0x0001: a packet
	                     * waits for a resolution in progress) */
	__u8 ifname[HS_IFNAMSIZ];
	__u8 comm[HS_COMM_LEN];
	struct hs_tuple tuple;
	struct hs_outer outer;
	__u32 _pad2;
	__u8 gw[16];        /* fib: the gateway found (IPv4 in the first 4 bytes; 0: none) */
};
_Static_assert(sizeof(struct hs_event) == 272, "hs_event layout");

/*
 * Record kinds. A ring record is a struct hs_event (its first field is
 * abi_version, HS_ABI_VERSION), or one of these compact records, whose
 * first field is its kind: the kinds never equal an ABI version.
 */
enum hs_rec_kind {
	HS_REC_HOP = 0x4801,  /* struct hs_hop */
	HS_REC_DEV = 0x4802,  /* struct hs_dev */
	HS_REC_SOCK = 0x4803, /* struct hs_sock */
	HS_REC_END = 0x4804,  /* struct hs_end */
	HS_REC_SNAP = 0x4805, /* struct hs_snap */
};

/*
 * A device hop of a packet whose headers did not change since its last
 * struct hs_event that carried them (the packet's first sighting, or where
 * NAT or a tunnel changed them). Most hops are these: a packet crossing a
 * veth pair and a bridge is one hs_event and three or more hs_hops.
 */
struct hs_hop {
	__u16 kind;         /* HS_REC_HOP */
	__u8 hook;          /* enum hs_hook: a device hook */
	__u8 _pad0;
	__u16 flags;        /* enum hs_event_flags; never HS_F_TUPLE */
	__u16 cpu;
	__u64 ts_ns;
	__u64 packet_id;
	__u64 skb_addr;
	__u32 netns_ino;
	__u32 ifindex;      /* its name: the last struct hs_dev or hs_event for it */
	__u32 len;
	__s32 xmit_rc;      /* net_dev_xmit: the driver's return code */
};
_Static_assert(sizeof(struct hs_hop) == 48, "hs_hop layout");

/*
 * A device's name, sent before the first struct hs_hop on it and again
 * after it was renamed.
 */
struct hs_dev {
	__u16 kind;         /* HS_REC_DEV */
	__u16 _pad0;
	__u32 netns_ino;
	__u64 netns_cookie; /* 0 where the kernel has no net cookie */
	__u32 ifindex;
	__u32 _pad1;
	__u8 ifname[HS_IFNAMSIZ];
};
_Static_assert(sizeof(struct hs_dev) == 40, "hs_dev layout");

/*
 * A followed packet, or a clone of one (HS_F_CLONE), reached a socket:
 * skb_copy_datagram_iovec (a task read it: HS_F_TASK), tcp_probe,
 * sk_data_ready, inet_sock_set_state. No headers: the packet's last ones.
 */
struct hs_sock {
	__u16 kind;         /* HS_REC_SOCK */
	__u8 hook;          /* enum hs_hook: a socket hook */
	__u8 _pad0;
	__u16 flags;        /* HS_F_TASK, HS_F_CLONE */
	__u16 cpu;
	__u64 ts_ns;
	__u64 packet_id;    /* the packet (a clone's: the packet it copies) */
	__u64 skb_addr;
	__u64 netns_cookie; /* of netns_ino (0 where the kernel has none) */
	__u32 netns_ino;    /* the device's namespace, or the socket's */
	__u32 ifindex;      /* 0: no device; its name: the last hs_dev for it */
	__u32 len;
	__u32 aux;          /* tcp_probe: payload bytes; inet_sock_set_state:
	                     * old state << 8 | new, payload (at most 0xffff) << 16 */
	__u32 pid;          /* HS_F_TASK: the reading task */
	__u32 tid;
	__u8 comm[HS_COMM_LEN]; /* HS_F_TASK */
};
_Static_assert(sizeof(struct hs_sock) == 80, "hs_sock layout");

/* A followed packet's end: consume_skb or kfree_skb. */
struct hs_end {
	__u16 kind;         /* HS_REC_END */
	__u8 hook;          /* HS_HOOK_CONSUME_SKB or HS_HOOK_KFREE_SKB */
	__u8 _pad0;
	__u16 flags;        /* HS_F_SHARED, HS_F_SEGMENTED */
	__u16 cpu;
	__u64 ts_ns;
	__u64 packet_id;
	__u64 skb_addr;
	__u64 location;     /* code address of the free */
	__u32 netns_ino;    /* where it was (0: no device) */
	__u32 ifindex;      /* its name: the last hs_dev for it */
	__u32 drop_reason;  /* kfree_skb: enum skb_drop_reason of this kernel */
	__u32 stack;        /* kfree_skb: stack id + 1 with --drop-stack (0: none) */
	__u16 seg_count;    /* HS_F_SEGMENTED: segments made */
	__u16 _pad1;
	__u32 _pad2;
};
_Static_assert(sizeof(struct hs_end) == 64, "hs_end layout");

/*
 * --snaplen: the first bytes of a packet where its headers were sent in
 * full (its first sighting, and where NAT or a tunnel changed them), sent
 * just before that struct hs_event and with its ts_ns. A hop's bytes are its
 * packet's latest snapshot taken at or before the hop. The record is
 * sizeof(struct hs_snap) + hs_cfg_snap_room bytes long; caplen of them are
 * the packet's, from its link-layer header (HS_SNAP_ETHER) or else from its
 * network header. Only in the ring: recordings hold the decoded snapshots.
 */
enum hs_snap_limit {
	HS_SNAPLEN_MAX = 2048, /* the largest --snaplen */
};
enum hs_snap_flags {
	HS_SNAP_ETHER = 1 << 0, /* data starts at an Ethernet header */
};

struct hs_snap {
	__u16 kind;         /* HS_REC_SNAP */
	__u16 flags;        /* enum hs_snap_flags */
	__u16 caplen;       /* bytes of data that are the packet's */
	__u16 _pad0;
	__u32 orig_len;     /* the whole frame's length, from where data starts */
	__u32 _pad1;
	__u64 ts_ns;        /* the struct hs_event it goes with */
	__u64 packet_id;
	/* __u8 data[hs_cfg_snap_room] follows */
};
_Static_assert(sizeof(struct hs_snap) == 32, "hs_snap layout");

/*
 * Filters (src/filter). A pcap-filter expression is compiled by libpcap
 * twice, for Ethernet framing and for raw IP, into classic BPF that the
 * programs interpret at a packet's first sighting. Userspace fills the
 * programs of the next epoch, then publishes the epoch in hs_filter_ctl:
 * no program is reloaded when the filter changes.
 */
#define HS_FILTER_MAX_INSNS 512
#define HS_SCOPE_MAX 8

/* One classic BPF instruction, as libpcap emits it (struct bpf_insn). */
struct hs_cbpf_insn {
	__u16 code;
	__u8 jt;
	__u8 jf;
	__u32 k;
};
_Static_assert(sizeof(struct hs_cbpf_insn) == 8, "hs_cbpf_insn layout");

/* A compiled filter for one framing. len 0 rejects every packet. */
struct hs_cbpf_prog {
	__u32 len;
	__u32 _pad;
	struct hs_cbpf_insn insns[HS_FILTER_MAX_INSNS];
};
_Static_assert(sizeof(struct hs_cbpf_prog) == 8 + 8 * HS_FILTER_MAX_INSNS, "hs_cbpf_prog layout");

/* Index into hs_filter_progs: (epoch & 1) * 2 + framing. */
enum hs_framing {
	HS_FRAMING_ETHER = 0, /* DLT_EN10MB: Ethernet and loopback devices */
	HS_FRAMING_RAW = 1,   /* DLT_RAW: tun, ipip, wireguard, frames not built yet */
};

/* hs_filter_ctl[0]: the filter in force. */
struct hs_filter_ctl {
	__u32 enabled;     /* 0: every packet is followed */
	__u32 epoch;       /* bumped on every change; epoch & 1 picks the programs */
	__u32 whole_flows; /* also follow packets of flows a matching packet started */
	__u32 _pad;
};
_Static_assert(sizeof(struct hs_filter_ctl) == 16, "hs_filter_ctl layout");

/* Key of hs_flows: one direction of a flow (both are inserted). */
struct hs_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* ICMP echo: the identifier, in both ports */
	__u16 dport;
	__u8 l3;     /* enum hs_l3 */
	__u8 proto;
	__u16 _pad;
};
_Static_assert(sizeof(struct hs_flow_key) == 40, "hs_flow_key layout");

#endif /* HOPSCOPE_H */
