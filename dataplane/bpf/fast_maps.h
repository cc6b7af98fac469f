/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps of the XDP transit fast path (xdp_fast.c): the ONE place their
 * layout is defined. The Rust mirror is dataplane/src/sys/fast_maps.rs
 * (#[repr(C)] structs with size/offset assertions citing this file); the
 * compiler from a FIB snapshot is dataplane/src/fast_path.rs.
 *
 * Two banks (suffix _0 / _1) of FIB maps and an active-bank index: a new FIB
 * is written into the idle bank and published by one update of
 * active_bank[0]. The program reads the index once per frame, so a frame
 * sees one bank only. The writer must not rewrite the bank it just retired
 * until every program run that may have read it is over (XDP runs inside
 * an RCU read-side section of one NAPI poll: a grace period, or in practice
 * a few milliseconds; the publisher is not wired yet, see fast_path.rs).
 *
 *   ilm_B[label]       struct fast_ilm   2^20 entries, zero = unbound
 *   groups_B[g]        struct fast_group members_B[start .. start + len]
 *   members_B[i]       __u32             next-hop index
 *   nhs_B[n]           struct fast_nh    port, MACs, VLAN, labels, backup
 *   params_B[0]        struct fast_params hash seed, egress TTL model, MTUs
 *   active_bank[0]     __u32             0 or 1
 *   live_ports[0]      __u64             bit p: port p is up AND has a
 *                                        tx_ports entry
 *   tx_ports[p]        DEVMAP            port -> ifindex
 *   fast_stats[0]      per CPU struct fast_counters
 */
#ifndef ORBITMESH_FAST_MAPS_H
#define ORBITMESH_FAST_MAPS_H

#include <linux/types.h>

#define FAST_LABELS (1 << 20)
#define FAST_MAX_GROUPS 65536
#define FAST_MAX_MEMBERS 262144
#define FAST_MAX_NHS 65536
#define FAST_MAX_PORTS 64
/* = fib::MAX_PUSH: every next hop a FIB can hold fits the fast path. */
#define FAST_MAX_PUSH 6
/* >= stats::DropReason::COUNT; drops[r] counts DropReason r. */
#define FAST_DROP_SLOTS 16

/* ILM entry, the same encoding as core's IlmEntry: word bits 31..30
 * action (0 none, 1 swap, 2 pop), bit 29 "fast" (ignored here), bits
 * 28..0 group. */
#define FAST_ILM_SWAP 1
#define FAST_ILM_POP 2
#define FAST_ILM_GROUP_MASK ((1u << 29) - 1)
struct fast_ilm {
	__u32 word;
	__u32 out_label;
};

struct fast_group {
	__u32 start;
	__u32 len;
};

#define FAST_UNTAGGED 0xffff
#define FAST_NO_BACKUP 0xffffffffu
struct fast_nh {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u16 port;
	__u16 vlan; /* FAST_UNTAGGED or the 802.1Q VLAN id */
	__u8 n_push;
	__u8 pad[3];
	__u32 push[FAST_MAX_PUSH]; /* top of stack first */
	__u32 backup;		    /* next-hop index or FAST_NO_BACKUP */
};

struct fast_params {
	__u32 hash_seed;
	__u32 egress_uniform; /* 1: RFC 3443 uniform model at egress */
	__u16 mtu[FAST_MAX_PORTS];
};

/* Drop reasons the program decides itself (stats::DropReason values). */
#define FAST_DROP_MALFORMED 0
#define FAST_DROP_TTL_EXPIRED 2
#define FAST_DROP_NO_LABEL_ROUTE 3
#define FAST_DROP_MTU 8

struct fast_counters {
	__u64 forwarded;   /* redirected to a tx port */
	__u64 backup_used; /* of those, by the backup next hop */
	__u64 punted;	   /* handed to the slow path (AF_XDP / steering) */
	__u64 drops[FAST_DROP_SLOTS];
	__u64 tx[FAST_MAX_PORTS]; /* forwarded, by port */
};

#endif
