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
 * libbpf-cargo compiles this one file; the code is in the headers included
 * below, in this order (each relies on the ones before): state.h (maps,
 * configuration, per-packet state), fingerprint.h, records.h (ring
 * records), identity.h (packet identities, clones, filter following), then
 * the programs by family: hooks_dev.h (device hooks), hooks_sock.h (socket
 * deliveries, TCP state), hooks_gso.h (GSO segments), hooks_end.h
 * (consume_skb, kfree_skb), hooks_note.h (icmp, TCP reset and retransmit,
 * routing and neighbour annotations).
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

#include "state.h"
#include "fingerprint.h"
#include "records.h"
#include "identity.h"
#include "hooks_dev.h"
#include "hooks_sock.h"
#include "hooks_gso.h"
#include "hooks_end.h"
#include "hooks_note.h"

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
struct hs_sock _hs_sock_btf = {};
struct hs_end _hs_end_btf = {};
struct hs_snap _hs_snap_btf = {};
enum hs_snap_flags _hs_snap_flags_btf = HS_SNAP_ETHER;
enum hs_snap_limit _hs_snap_limit_btf = HS_SNAPLEN_MAX;
enum hs_rec_kind _hs_rec_kind_btf = HS_REC_HOP;
