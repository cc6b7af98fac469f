// SPDX-License-Identifier: GPL-2.0
/*
 * The harness's in-kernel limit peer ("xdp-min"): the least an XDP MPLS
 * transit switch must do, so the fast path has a ceiling to be compared
 * with on the same line (issue 16, "Measured in the harness").
 *
 * Untagged Ethernet, EtherType 0x8847, top label stack entry (RFC 3032):
 * TTL <= 1 -> drop; else the label indexes a 2^20-entry array (out label,
 * next hop); the entry is rewritten with the out label and TTL - 1 (TC and
 * S kept), the MACs are rewritten from the next hop, and the frame is
 * redirected with bpf_redirect() to the next hop's ifindex. Anything else
 * (not MPLS, an unbound label, a short frame) is passed to the stack.
 * No ECMP, no backup, no counters, no VLAN, no PHP: those are what the
 * orbitmesh fast path (dataplane/bpf/xdp_fast.c) adds.
 *
 * Map layout, mirrored by bench/src/sys/xdp_min.rs:
 *   min_labels[label]  struct min_label  nh = next-hop index + 1, 0 = unbound
 *   min_nhs[i]         struct min_nh     16 bytes: dst MAC, src MAC, ifindex
 *
 * xdp_pass is attached to the egress ports, as orbitmesh-dp attaches its
 * program to every port it uses.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MIN_LABELS (1 << 20)
#define MIN_NHS 64

struct min_label {
	__u32 out;
	__u32 nh;
};

struct min_nh {
	__u8 dst[6];
	__u8 src[6];
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MIN_LABELS);
	__type(key, __u32);
	__type(value, struct min_label);
} min_labels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MIN_NHS);
	__type(key, __u32);
	__type(value, struct min_nh);
} min_nhs SEC(".maps");

SEC("xdp")
int xdp_min(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *eth = data;

	if ((void *)(eth + 18) > end || eth[12] != 0x88 || eth[13] != 0x47)
		return XDP_PASS;
	__u8 *p = eth + 14;
	__u32 lse = (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
	__u32 ttl = lse & 0xff;
	if (ttl <= 1)
		return XDP_DROP;
	__u32 label = lse >> 12;
	struct min_label *e = bpf_map_lookup_elem(&min_labels, &label);
	if (!e || !e->nh)
		return XDP_PASS;
	__u32 ni = e->nh - 1;
	struct min_nh *nh = bpf_map_lookup_elem(&min_nhs, &ni);
	if (!nh)
		return XDP_PASS;
	lse = e->out << 12 | (lse & 0xf00) | (ttl - 1);
	p[0] = lse >> 24;
	p[1] = lse >> 16;
	p[2] = lse >> 8;
	p[3] = lse;
	__builtin_memcpy(eth, nh->dst, 6);
	__builtin_memcpy(eth + 6, nh->src, 6);
	return bpf_redirect(nh->ifindex, 0);
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
