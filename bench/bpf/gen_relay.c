// SPDX-License-Identifier: GPL-2.0
/*
 * The harness's relay generator ("--gen relay"): the generator's AF_XDP
 * socket sends on relay-src; this program, attached in native mode to its
 * veth peer relay-in, redirects every frame to gen0 (bpf_redirect_map, one
 * DEVMAP slot), so the frames reach dut0's receive ring as XDP frames
 * (veth_xdp_xmit), as from a NIC's driver, instead of as socket buffers
 * that an XDP program on dut0 must first copy into a page
 * (veth_convert_skb_to_xdp_buff). That copy is still made, once per
 * frame, but in relay-in's NAPI, which runs on the generator's core.
 *
 * Map layout, mirrored by bench/src/sys/gen_relay.rs:
 *   relay_port[0]  u32  gen0's ifindex (a DEVMAP value)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} relay_port SEC(".maps");

SEC("xdp")
int gen_relay(struct xdp_md *ctx)
{
	return bpf_redirect_map(&relay_port, 0, XDP_DROP);
}

char _license[] SEC("license") = "GPL";
