/* SPDX-License-Identifier: GPL-2.0 */
/*
 * orbitmesh XDP steering (shared by xdp_steer.c and xdp_fast.c): decides, per frame and before any kernel
 * processing, whether the frame belongs to the AF_XDP fast path or to the
 * host stack.
 *
 *  - MPLS (0x8847, 0x8848), also behind one 802.1Q/802.1ad tag: to the
 *    AF_XDP socket of this (port, rx queue), found in xsks_map at
 *    slot * MAX_QUEUES + rx_queue_index;
 *  - IPv4/IPv6 on ports configured as edge ports: the same, unless the
 *    destination is one of the box's own addresses (local_v4/local_v6):
 *    those go to the kernel, so ping and ssh to the router keep working;
 *  - everything else (ARP, ND on non-edge ports, LLDP, ...): XDP_PASS.
 *
 * With no socket at the key, bpf_redirect_map falls back to XDP_PASS.
 * Counters (per CPU): 0 redirected, 1 passed, 2 port not configured,
 * 3 passed because addressed to the box.
 */
#ifndef ORBITMESH_STEER_H
#define ORBITMESH_STEER_H
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define P_MPLS_UC 0x8847
#define P_MPLS_MC 0x8848
#define P_8021Q 0x8100
#define P_8021AD 0x88A8
#define P_IP 0x0800
#define P_IPV6 0x86DD
#define MAX_PORTS 64
#define MAX_QUEUES 64

struct port_cfg {
	__u32 slot; /* the dataplane's port index */
	__u32 edge; /* 1: steer IPv4/IPv6 too */
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_PORTS * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32); /* ifindex */
	__type(value, struct port_cfg);
} port_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32); /* IPv4 address, network order */
	__type(value, __u8);
} local_v4 SEC(".maps");

struct in6_key {
	__u8 a[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct in6_key);
	__type(value, __u8);
} local_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 ifindex = ctx->ingress_ifindex;
	struct port_cfg *pc;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	pc = bpf_map_lookup_elem(&port_cfg, &ifindex);
	if (!pc) {
		count(2);
		return XDP_PASS;
	}
	proto = bpf_ntohs(eth->h_proto);
	l3 = eth + 1;
	if (proto == P_8021Q || proto == P_8021AD) {
		struct vlan_hdr_ *vh = l3;
		if ((void *)(vh + 1) > data_end)
			return XDP_PASS;
		proto = bpf_ntohs(vh->proto);
		l3 = vh + 1;
	}
	if (proto == P_MPLS_UC || proto == P_MPLS_MC)
		goto redirect;
	if (!pc->edge)
		goto pass;
	if (proto == P_IP) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			goto pass;
		if (bpf_map_lookup_elem(&local_v4, &ip->daddr)) {
			count(3);
			return XDP_PASS;
		}
		goto redirect;
	}
	if (proto == P_IPV6) {
		struct ipv6hdr *ip6 = l3;
		struct in6_key k;
		if ((void *)(ip6 + 1) > data_end)
			goto pass;
		__builtin_memcpy(k.a, &ip6->daddr, 16);
		/* Link-local and multicast (ND, router solicitations) stay with the kernel. */
		if (k.a[0] == 0xff || (k.a[0] == 0xfe && (k.a[1] & 0xc0) == 0x80) ||
		    bpf_map_lookup_elem(&local_v6, &k)) {
			count(3);
			return XDP_PASS;
		}
		goto redirect;
	}
pass:
	count(1);
	return XDP_PASS;
redirect:
	count(0);
	return bpf_redirect_map(&xsks_map, pc->slot * MAX_QUEUES + ctx->rx_queue_index, XDP_PASS);
}

#endif
