/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps of the XDP transit fast path (xdp_fast.c): the ONE place their
 * layout is defined. The Rust mirror is dataplane/src/sys/fast_maps.rs
 * (#[repr(C)] structs with size/offset assertions citing this file); the
 * compiler from a FIB snapshot is dataplane/src/fast_path.rs.
 *
 * Two banks (suffix _0 / _1) of FIB maps and a control word block: a new
 * FIB is written into the idle bank and published by one 64-bit store to
 * fast_ctl.active, or staged for an instant in fast_ctl.sched. The program
 * reads the block once per frame, so a frame sees one bank only. The writer
 * (dataplane/src/fast_publish.rs) does not rewrite a bank it retired until
 * every program run that may have read it is over: XDP runs inside one NAPI
 * poll, in an RCU read-side section, so the writer waits for an RCU grace
 * period (membarrier(MEMBARRIER_CMD_GLOBAL), i.e. synchronize_rcu()), or,
 * where the kernel refuses that (nohz_full), FAST_GRACE_MS.
 *
 * Every map below except tx_ports and fast_stats is BPF_F_MMAPABLE: user
 * space maps it once and writes values with plain stores (one syscall per
 * entry would take seconds for 2^20 labels), and the control words with
 * single aligned 64-bit atomic stores, which the program reads with
 * READ_ONCE. Array values sit at a stride of their size rounded up to 8
 * bytes (the kernel's elem_size).
 *
 *   ilm_B[label]       struct fast_ilm   2^20 entries, zero = unbound
 *   groups_B[g]        struct fast_group members_B[start .. start + len]
 *   members_B[i]       __u32             next-hop index (stride 8)
 *   nhs_B[n]           struct fast_nh    port, MACs, VLAN, labels, backup
 *   params_B[0]        struct fast_params hash seed, egress TTL model, MTUs
 *   fast_ctl[0]        struct fast_ctl   enabled, active bank, staged bank
 *                                        and instant, live ports, ports
 *                                        that take redirected frames
 *   tx_ports[p]        DEVMAP            port -> ifindex
 *   rx_ports[i & (FAST_RX_SLOTS-1)]  struct fast_rx_port  ifindex -> port
 *                                        (direct-mapped; written once at
 *                                        attach, not per bank)
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
/* Slots of rx_ports, a direct-mapped table from the ingress ifindex to
 * the port (a power of two). A port whose ifindex shares a slot with an
 * earlier port's is not in it; its frames count in rx[FAST_MAX_PORTS]. */
#define FAST_RX_SLOTS 4096
/* How long a retired bank stays untouched before it is rewritten. */
#define FAST_GRACE_MS 10

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

/* The control words, one struct, each written whole by user space. */
#define FAST_SCHED_BANK (1ull << 63)
struct fast_ctl {
	__u64 enabled; /* 0: every frame takes the slow path (start-up; a FIB
			* the fast path cannot hold) */
	__u64 active;  /* the bank in force, 0 or 1 */
	__u64 sched;   /* 0, or a staged bank: bit 63 the bank, bits 62..0 the
			* CLOCK_MONOTONIC instant (bpf_ktime_get_ns) from which
			* it is in force */
	__u64 live;    /* bit p: port p is up (the workers' liveness mask) */
	__u64 tx_ok;   /* bit p: port p has a tx_ports entry AND takes frames
			* redirected in XDP; a frame whose next hop's port is
			* not is left to the slow path */
};

/* An rx_ports slot: ifindex 0 (no interface has it) = empty. */
struct fast_rx_port {
	__u32 ifindex;
	__u32 port;
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
	__u64 tx_bytes[FAST_MAX_PORTS]; /* their bytes as sent */
	/* Frames the program finished (forwarded or dropped; not punted: the
	 * AF_XDP workers count those when they receive them) and their bytes
	 * as received, by ingress port (rx_ports); [FAST_MAX_PORTS]: an
	 * interface not in rx_ports. */
	__u64 rx[FAST_MAX_PORTS + 1];
	__u64 rx_bytes[FAST_MAX_PORTS + 1];
};

#endif
