// SPDX-License-Identifier: GPL-2.0
/*
 * orbitmesh XDP steering program: every frame goes through steer()
 * (steer.h), which sends MPLS and edge IP to the AF_XDP sockets and the
 * rest to the kernel.
 */
#include "steer.h"

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	return steer(ctx);
}

char _license[] SEC("license") = "GPL";
