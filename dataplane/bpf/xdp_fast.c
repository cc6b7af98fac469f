// SPDX-License-Identifier: GPL-2.0
/*
 * orbitmesh XDP transit fast path: MPLS label swapping in XDP, exactly as
 * core's pipeline::process does it (RFC 3031/3032, TTL per RFC 3443), for
 * the frames it can finish; every other frame goes to steer() (steer.h),
 * i.e. to the AF_XDP workers, untouched, and the slow path decides.
 *
 * Handled here (maps: fast_maps.h, the one description of their layout):
 *  - untagged Ethernet, EtherType 0x8847, >= one label stack entry;
 *  - top TTL <= 1: drop, TtlExpired (the pipeline drops before anything
 *    else for every untagged labelled frame, so does this program);
 *  - unreserved top label: unbound -> drop NoLabelRoute; Swap -> choose the
 *    path (ECMP by the pipeline's hash: every label of the stack, the
 *    entropy label included, and the inner 5-tuple, RFC 6790 4.3), take the
 *    backup next hop when the primary's port is down and the backup's is
 *    up; write the next hop's labels (up to FAST_MAX_PUSH = fib::MAX_PUSH),
 *    the swapped label (out label 3: penultimate-hop pop of an outer label,
 *    the next entry gets this hop's TTL in the uniform model), MACs and an
 *    optional 802.1Q tag; MTU checked like the pipeline's fit(); redirect
 *    through the tx_ports DEVMAP;
 *  - a malformed PHP (nothing below the popped entry): drop Malformed.
 * Slow path (steer(), unchanged frame): VLAN-tagged input, reserved top
 * labels, Pop, PHP of the bottom entry (exposes IP), primary and backup
 * both down (the pipeline then walks the group), a failed head adjust, and
 * everything that is not MPLS.
 */
#include "steer.h"
#include "fast_maps.h"

#define BANK_MAPS(B)                                                                   \
	struct {                                                                       \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                      \
		__uint(max_entries, FAST_LABELS);                                      \
		__uint(map_flags, BPF_F_MMAPABLE);                                     \
		__type(key, __u32);                                                    \
		__type(value, struct fast_ilm);                                        \
	} ilm_##B SEC(".maps");                                                        \
	struct {                                                                       \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                      \
		__uint(max_entries, FAST_MAX_GROUPS);                                  \
		__uint(map_flags, BPF_F_MMAPABLE);                                     \
		__type(key, __u32);                                                    \
		__type(value, struct fast_group);                                      \
	} groups_##B SEC(".maps");                                                     \
	struct {                                                                       \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                      \
		__uint(max_entries, FAST_MAX_MEMBERS);                                 \
		__uint(map_flags, BPF_F_MMAPABLE);                                     \
		__type(key, __u32);                                                    \
		__type(value, __u32);                                                  \
	} members_##B SEC(".maps");                                                    \
	struct {                                                                       \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                      \
		__uint(max_entries, FAST_MAX_NHS);                                     \
		__uint(map_flags, BPF_F_MMAPABLE);                                     \
		__type(key, __u32);                                                    \
		__type(value, struct fast_nh);                                         \
	} nhs_##B SEC(".maps");                                                        \
	struct {                                                                       \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                      \
		__uint(max_entries, 1);                                                \
		__uint(map_flags, BPF_F_MMAPABLE);                                     \
		__type(key, __u32);                                                    \
		__type(value, struct fast_params);                                     \
	} params_##B SEC(".maps");

BANK_MAPS(0)
BANK_MAPS(1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fast_ctl);
} fast_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, FAST_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fast_counters);
} fast_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FAST_RX_SLOTS);
	__type(key, __u32);
	__type(value, struct fast_rx_port);
} rx_ports SEC(".maps");

/* The bank's map `name`, looked up at `key`. `bank` must be a constant
 * where this is expanded (see switch_in): then each lookup names its map
 * directly and the verifier turns it into an inline array load. With a
 * bank known only at run time, clang merges the two calls into one with a
 * selected map pointer, which the verifier cannot inline: a helper call
 * per lookup. */
#define BANK_LOOKUP(bank, name, key)                                                   \
	((bank) ? bpf_map_lookup_elem(&name##_1, key) : bpf_map_lookup_elem(&name##_0, key))

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))

static __always_inline __u32 rd32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static __always_inline __u32 rd16(const __u8 *p)
{
	return (__u32)p[0] << 8 | p[1];
}

static __always_inline void wr32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* pipeline::mix and pipeline::finish (murmur3's finaliser). */
static __always_inline __u32 mix(__u32 h, __u32 x)
{
	h = (h ^ x) * 0x9e3779b1u;
	return h << 13 | h >> 19;
}

static __always_inline __u32 finish(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static __always_inline int port_proto(__u8 p)
{
	return p == 6 || p == 17 || p == 132; /* TCP, UDP, SCTP: l4::ports */
}

/* pipeline::flow_hash: the IP 5-tuple at `d` mixed into h. */
static __always_inline __u32 flow_hash(__u8 *d, void *end, __u32 h)
{
	if ((void *)(d + 1) > end)
		return h;
	if (d[0] >> 4 == 4) {
		if ((void *)(d + 20) > end)
			return h;
		h = mix(h, rd32(d + 12));
		h = mix(h, rd32(d + 16));
		h = mix(h, d[9]);
		__u32 hl = (d[0] & 15) * 4;
		if ((rd16(d + 6) & 0x3fff) == 0 && hl >= 20 && port_proto(d[9])) {
			__u8 *l4 = d + hl;
			if ((void *)(l4 + 4) <= end)
				h = mix(h, rd16(l4) << 16 | rd16(l4 + 2));
		}
		return h;
	}
	if (d[0] >> 4 == 6) {
		if ((void *)(d + 40) > end)
			return h;
		for (int w = 8; w < 40; w += 4)
			h = mix(h, rd32(d + w));
		h = mix(h, rd32(d) & 0xfffff);
		h = mix(h, d[6]);
		if (port_proto(d[6]) && (void *)(d + 44) <= end)
			h = mix(h, rd16(d + 40) << 16 | rd16(d + 42));
		return h;
	}
	return h;
}

/* pipeline::mpls_hash from the top label at `top`. */
static __always_inline __u32 mpls_hash(__u8 *top, void *end, __u32 seed)
{
	__u32 h = seed;
	__u8 *p = top;
#pragma unroll
	for (int depth = 0; depth < 16; depth++) {
		if ((void *)(p + 4) > end)
			break;
		__u32 lse = rd32(p);
		h = mix(h, lse >> 12);
		p += 4;
		if (lse & 0x100)
			return finish(flow_hash(p, end, h));
	}
	return finish(h);
}

/* Counts a frame the program finished (forwarded or dropped) against
 * its ingress port: `len` bytes as received. */
static __always_inline void count_rx(struct xdp_md *ctx, struct fast_counters *c, __u32 len)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 slot = ifindex & (FAST_RX_SLOTS - 1);
	struct fast_rx_port *rp = bpf_map_lookup_elem(&rx_ports, &slot);
	__u32 p = FAST_MAX_PORTS;
	if (rp && rp->ifindex == ifindex && rp->port < FAST_MAX_PORTS)
		p = rp->port;
	c->rx[p] += 1;
	c->rx_bytes[p] += len;
}

static __always_inline int drop(struct xdp_md *ctx, struct fast_counters *c, __u32 reason)
{
	count_rx(ctx, c, ctx->data_end - ctx->data);
	if (reason < FAST_DROP_SLOTS)
		c->drops[reason] += 1;
	return XDP_DROP;
}

static __always_inline int is_up(__u64 live, __u32 port)
{
	return port < FAST_MAX_PORTS && (live >> port & 1);
}

static __always_inline int punt(struct xdp_md *ctx, struct fast_counters *c)
{
	c->punted += 1;
	return steer(ctx);
}

/* The labelled frame's switching in FIB bank `bank` (a constant in each
 * call, see BANK_LOOKUP) from its top entry `lse` on: a swap redirected
 * to the next hop's port, a drop, or the slow path. */
static __always_inline int switch_in(struct xdp_md *ctx, void *data, void *end,
				     struct fast_counters *c, struct fast_ctl *ctl, __u32 lse,
				     const __u32 bank)
{
	__u32 zero = 0;
	__u8 *top = (__u8 *)data + 14; /* the caller checked data + 18 <= end */
	__u32 label = lse >> 12, tc = lse >> 9 & 7, bos = lse >> 8 & 1, ttl = lse & 0xff;
	struct fast_ilm *e = BANK_LOOKUP(bank, ilm, &label);
	if (!e)
		goto slow;
	__u32 action = e->word >> 30;
	if (action == FAST_ILM_POP)
		goto slow;
	if (action != FAST_ILM_SWAP)
		return drop(ctx, c, FAST_DROP_NO_LABEL_ROUTE);
	__u32 gid = e->word & FAST_ILM_GROUP_MASK, out = e->out_label;
	struct fast_params *prm = BANK_LOOKUP(bank, params, &zero);
	struct fast_group *g = BANK_LOOKUP(bank, groups, &gid);
	if (!prm || !g || g->len == 0)
		goto slow;
	__u64 live = READ_ONCE(ctl->live);
	__u32 idx = 0;
	if (g->len != 1)
		idx = ((__u64)mpls_hash(top, end, prm->hash_seed) * g->len) >> 32;
	__u32 mi = g->start + idx;
	__u32 *m = BANK_LOOKUP(bank, members, &mi);
	if (!m)
		goto slow;
	struct fast_nh *nh = BANK_LOOKUP(bank, nhs, m);
	if (!nh)
		goto slow;
	int backup = 0;
	if (!is_up(live, nh->port)) {
		__u32 b = nh->backup;
		if (b == FAST_NO_BACKUP)
			goto slow;
		nh = BANK_LOOKUP(bank, nhs, &b);
		if (!nh || !is_up(live, nh->port))
			goto slow;
		backup = 1;
	}
	/* A port that cannot take redirected frames (no tx device; a veth
	 * whose peer runs no NAPI): the workers transmit, by the same choice. */
	if (!is_up(READ_ONCE(ctl->tx_ok), nh->port))
		goto slow;
	int php = out == 3;
	if (php && bos)
		goto slow;
	if (php && (void *)(top + 8) > end)
		return drop(ctx, c, FAST_DROP_MALFORMED);
	__u32 n_push = nh->n_push;
	if (n_push > FAST_MAX_PUSH)
		goto slow;
	__u32 port = nh->port & (FAST_MAX_PORTS - 1);
	__u32 n = n_push + !php;
	__u32 l2 = nh->vlan != FAST_UNTAGGED ? 18 : 14;
	__u32 hdr = l2 + 4 * n;
	__u32 len = (__u32)((long)end - (long)data);
	/* pipeline::fit: the L3 part (labels included) must fit the MTU. */
	if (len - 18 + hdr - l2 > prm->mtu[port])
		return drop(ctx, c, FAST_DROP_MTU);
	__u32 new_ttl = ttl - 1;
	__u32 vlan = nh->vlan;
	/* A plain swap keeps the frame's length: no helper call. */
	if (hdr != 18 && bpf_xdp_adjust_head(ctx, (int)18 - (int)hdr))
		goto slow;
	/* From here on the frame is rewritten; nothing below fails for a
	 * frame the checks above let through (the bounds tests are for the
	 * verifier), and the port has a tx device (tx_ok is never set for a
	 * port without one; should it be, the frame is dropped, not
	 * aborted). */
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	__u8 *d = data;
	if ((void *)(d + 18) > end)
		return XDP_ABORTED;
	__builtin_memcpy(d, nh->dst_mac, 6);
	__builtin_memcpy(d + 6, nh->src_mac, 6);
	if (l2 == 18) {
		d[12] = 0x81;
		d[13] = 0x00;
		d[14] = vlan >> 8 & 0x0f;
		d[15] = vlan;
	}
	for (__u32 i = 0; i < FAST_MAX_PUSH + 1; i++) {
		if (i >= n)
			break;
		__u32 v;
		if (i < n_push && i < FAST_MAX_PUSH)
			v = nh->push[i] << 12 | tc << 9 | new_ttl;
		else
			v = out << 12 | tc << 9 | bos << 8 | new_ttl;
		__u8 *p = d + l2 + 4 * i;
		if ((void *)(p + 4) > end)
			return XDP_ABORTED;
		wr32(p, v);
	}
	__u8 *et = d + l2 - 2;
	if ((void *)(et + 2) > end)
		return XDP_ABORTED;
	et[0] = 0x88;
	et[1] = 0x47;
	if (php && prm->egress_uniform) {
		/* PHP of an outer label: the next entry carries this hop's TTL. */
		__u8 *nx = d + (hdr & 0xff);
		if ((void *)(nx + 4) > end)
			return XDP_ABORTED;
		nx[3] = new_ttl;
	}
	count_rx(ctx, c, len);
	c->forwarded += 1;
	c->tx[port] += 1;
	c->tx_bytes[port] += (__u32)((long)end - (long)data);
	if (backup)
		c->backup_used += 1;
	return bpf_redirect_map(&tx_ports, port, XDP_DROP);
slow:
	return punt(ctx, c);
}

SEC("xdp")
int xdp_fast(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fast_counters *c = bpf_map_lookup_elem(&fast_stats, &zero);
	__u8 *eth = data;

	struct fast_ctl *ctl = bpf_map_lookup_elem(&fast_ctl, &zero);

	if (!c || !ctl)
		return steer(ctx);
	if (!READ_ONCE(ctl->enabled))
		goto slow;
	if ((void *)(eth + 18) > end || eth[12] != 0x88 || eth[13] != 0x47)
		goto slow;
	__u8 *top = eth + 14;
	__u32 lse = rd32(top);
	__u32 label = lse >> 12, ttl = lse & 0xff;
	if (ttl <= 1)
		return drop(ctx, c, FAST_DROP_TTL_EXPIRED);
	if (label < 16)
		goto slow;
	/* The bank in force: the staged one from its instant on (per frame,
	 * without waiting for user space), else the active one. sched is
	 * read BEFORE active: user space commits a due staged bank by storing
	 * active, then clearing sched, so a frame that finds sched cleared
	 * finds the committed active bank (loads are not reordered with
	 * each other on x86; other CPUs would need acquire loads). */
	__u64 sched = READ_ONCE(ctl->sched);
	__u32 bank;
	if (sched && bpf_ktime_get_ns() >= (sched & ~FAST_SCHED_BANK))
		bank = sched >> 63;
	else
		bank = READ_ONCE(ctl->active) & 1;
	/* One copy of the rest per bank, each with its maps as constants. */
	if (bank)
		return switch_in(ctx, data, end, c, ctl, lse, 1);
	return switch_in(ctx, data, end, c, ctl, lse, 0);
slow:
	return punt(ctx, c);
}

char _license[] SEC("license") = "GPL";
