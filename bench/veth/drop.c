// SPDX-License-Identifier: GPL-2.0
/* The benchmark sink: drop every frame in XDP; the veth driver counts them
 * (ethtool -S: rx_queue_0_xdp_drops). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
