// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * empty_hooks.bpf.c: the benchmark's control, not part of the tracer. One
 * program that returns at once on each tracepoint hopscope.bpf.c attaches
 * to, so scripts/bench.sh can measure what the hooks cost before any work
 * is done in them (the tracepoint's call into BPF, which this kind of
 * machine pays with retpolines and return thunks). Used by
 * examples/empty_hooks.rs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define HS_EMPTY(tp)                          \
	SEC("tp_btf/" #tp)                    \
	int hs_empty_##tp(void *ctx)          \
	{                                     \
		return 0;                     \
	}

HS_EMPTY(net_dev_queue)
HS_EMPTY(netif_rx)
HS_EMPTY(netif_receive_skb)
HS_EMPTY(napi_gro_receive_entry)
HS_EMPTY(net_dev_xmit)
HS_EMPTY(skb_copy_datagram_iovec)
HS_EMPTY(consume_skb)
HS_EMPTY(kfree_skb)
HS_EMPTY(icmp_send)
HS_EMPTY(tcp_send_reset)
HS_EMPTY(tcp_receive_reset)
HS_EMPTY(tcp_retransmit_skb)
HS_EMPTY(fib_table_lookup)
HS_EMPTY(fib6_table_lookup)
HS_EMPTY(neigh_update)
HS_EMPTY(neigh_timer_handler)
HS_EMPTY(neigh_event_send_done)
HS_EMPTY(tcp_probe)
HS_EMPTY(sk_data_ready)
HS_EMPTY(net_dev_start_xmit)
HS_EMPTY(inet_sock_set_state)
