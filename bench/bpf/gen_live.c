// SPDX-License-Identifier: GPL-2.0
/*
 * The harness's in-kernel generator ("--gen live"): run by
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on the generator's
 * core, once per trial, over and over on frames of the kernel's own page
 * pool. Each run either sends one test frame (the flow's template, its
 * stamp written as traffic/frame.rs write_stamp does, redirected through
 * the one-slot DEVMAP to gen0, so it reaches dut0 as an XDP frame, as from
 * a NIC's driver, with no socket buffer and no copy on either core) or,
 * when no frame is due yet, drops the frame (returned to the pool at once:
 * the pacing loop). The schedule is traffic/engine.rs send_paced's: frame
 * g is due when (now - t0) x rate reaches g; a generator more than
 * catch_up frames behind skips the excess (counted); frame g is flow
 * g mod flows with sequence number g / flows (g counts sent frames).
 * User space stops the run with a signal (EINTR) after `end`.
 *
 * Map layout, mirrored by bench/src/sys/gen_live.rs:
 *   live_port[0]   u32                gen0's ifindex (a DEVMAP value)
 *   live_cfg[0]    struct live_cfg    the trial's schedule
 *   live_state[0]  struct live_state  what the runs did (user space zeroes it)
 *   live_tmpl[f]   struct live_tmpl   flow f's frame, stamp zero
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LIVE_FLOWS 4096
#define LIVE_WORDS 32 /* a frame of at most 128 bytes, as 32-bit words */

struct live_cfg {
	__u64 t0;	/* CLOCK_MONOTONIC ns: the schedule's start */
	__u64 end;	/* CLOCK_MONOTONIC ns: no frame from here on */
	__u64 base;	/* CLOCK_MONOTONIC ns of the sink's clock zero (stamps) */
	__u64 rate;	/* frames per ns, 32.32 fixed point */
	__u64 budget;	/* frames to send or skip, at most */
	__u64 catch_up; /* frames the generator may lag and still send */
	__u32 flows;	/* 1 .. LIVE_FLOWS */
	__u32 words;	/* frame length / 4, 1 .. LIVE_WORDS */
	__u32 stamp_at; /* offset of the 14-byte stamp; + 14 <= 4 x words */
	__u32 trial;
};

struct live_state {
	__u64 sent;
	__u64 skipped;
	__u64 runs;
};

struct live_tmpl {
	__u32 w[LIVE_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} live_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct live_cfg);
} live_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct live_state);
} live_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LIVE_FLOWS);
	__type(key, __u32);
	__type(value, struct live_tmpl);
} live_tmpl SEC(".maps");

static __always_inline void be(__u8 *p, __u64 v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = v;
		v >>= 8;
	}
}

SEC("xdp")
int gen_live(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct live_cfg *c = bpf_map_lookup_elem(&live_cfg, &zero);
	struct live_state *s = bpf_map_lookup_elem(&live_state, &zero);

	if (!c || !s)
		return XDP_DROP;
	s->runs++;
	__u64 now = bpf_ktime_get_ns();
	if (now < c->t0 || now >= c->end || c->flows == 0)
		return XDP_DROP;
	__u64 done = s->sent + s->skipped;
	if (done >= c->budget)
		return XDP_DROP;
	/* (now - t0) < 2^37 (a trial under 137 s) and rate < 2^26 (64
	 * frames per ns): no overflow; user space checks both. */
	__u64 due = ((now - c->t0) * c->rate) >> 32;
	if (due <= done)
		return XDP_DROP;
	if (due - done > c->catch_up)
		s->skipped += due - done - c->catch_up;
	__u64 g = s->sent;
	__u32 flow = g % c->flows;
	struct live_tmpl *t = bpf_map_lookup_elem(&live_tmpl, &flow);
	if (!t)
		return XDP_DROP;
	__u32 words = c->words;
	for (__u32 i = 0; i < LIVE_WORDS; i++) {
		if (i >= words || (void *)(data + 4 * i + 4) > end)
			break;
		*(__u32 *)(data + 4 * i) = t->w[i];
	}
	__u8 *st = data + (c->stamp_at & 0x7f);
	if ((void *)(st + 14) > end)
		return XDP_DROP;
	be(st, c->trial, 2);
	be(st + 2, g / c->flows, 4);
	be(st + 6, now - c->base, 8);
	s->sent = g + 1;
	return bpf_redirect_map(&live_port, 0, XDP_DROP);
}

char _license[] SEC("license") = "GPL";
