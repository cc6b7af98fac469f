// SPDX-License-Identifier: GPL-2.0
/*
 * The harness's per-trial watch on dut0's receive: the longest time
 * between two NAPI polls of dut0 (tracepoint napi:napi_poll, which fires
 * as each poll ends) on the DUT's core, and how many polls and frames.
 * Threaded NAPI pins dut0's NAPI thread to that core at SCHED_FIFO, where
 * no task of the guest's can hold it off; so while frames arrive, a long
 * gap means the core itself was away (bench/results/2026-12-01-vcpu-stalls.md)
 * and dut0's 256-frame ring filled meanwhile.
 *
 * Three more programs settle whose a lost frame is:
 *   heartbeat  a cpu-clock perf event on the DUT's core every period (the
 *              program itself does nothing): it keeps an hrtimer
 *              (perf_swevent_hrtimer) firing there, busy or idle; another
 *              on the generator's core, whose missing time is measured
 *              but files no refusals (the generator catches up on its
 *              schedule after it, a burst the DUT's ring must take; the
 *              harness runs a trial again when that alone could fill it);
 *   beat       timer:hrtimer_expire_entry of that timer on the DUT's core
 *              (a raw tracepoint, so that it is never skipped; below):
 *              whatever the interval between two expiries has beyond one
 *              period is time the core was missing: the hypervisor held
 *              its timer interrupt back, which in a guest nothing else
 *              does for long (a trace of 0.3 Mpps: at most 500 us between
 *              two timers, but for the stalls in dut0's polls). In some
 *              stalls the core is not gone outright but crawls: timers
 *              200-350 us late one after another, one frame polled in 2.7 ms;
 *              so the missing time is summed, not just the longest silence;
 *   refused_*  the frames gen0 could not hand to dut0 because its ring was
 *              full, counted on the generator's core where they are refused:
 *              the AF_XDP generator's, freed in veth_xmit (skb:kfree_skb
 *              with a location inside veth_xmit), or the relay's, dropped
 *              by the devmap flush (xdp:xdp_devmap_xmit; the only devmap
 *              on the generator's core, so the core is the filter).
 * Another cpu-clock event on the DUT's core (the harness's `perf record`
 * in its profile trial) adds expiries of the same timer function: the
 * intervals shrink and the missing time is undercounted, which only
 * charges more to the DUT.
 * Each poll of dut0 files the frames refused since the last poll under the
 * gap it ends: a stall's ("refused_stalled", a gap of stall_ns or more),
 * and the testbed's ("refused_away") when the core was missing for at
 * least away_ns of the gap and a quarter of it, however long the gap; the
 * rest are the DUT's. (A DUT that holds its own core, e.g. in a long
 * system call under PREEMPT_NONE, keeps dut0's NAPI thread off it but not
 * the timers: that stall is charged to it.) A gap of the testbed's
 * leaves dut0's ring full behind it, and the poll that ends it may have
 * emptied the ring before the core went (the tracepoint fires as a poll
 * ends, after the core came back): frames refused after it, until the DUT
 * has polled backlog_frames more or a poll found the ring empty (work
 * below budget), are that gap's too ("refused_backlog", also counted in
 * "refused_away"; a stall of the DUT's own ends the backlog). The frames
 * not yet filed when the watch is read count as the DUT's.
 *
 * Map layout, mirrored by bench/src/sys/napi_gap.rs:
 *   gap_cfg[0]    struct gap_cfg    88 bytes: cpu to watch, device name (4 bytes, "dut0"),
 *                                   shortest gap counted as a stall (ns), the generator's
 *                                   cpu, two [lo, hi) address ranges (veth_xmit and its
 *                                   .cold part), missing time that makes a gap the
 *                                   testbed's (ns), perf_swevent_hrtimer's address, the
 *                                   heartbeat's period (ns), frames a testbed's gap
 *                                   leaves to drain (backlog_frames)
 *   gap_state[0]  struct gap_state  168 bytes: last poll, longest gap (ns), polls, frames,
 *                                   stalls (gaps at least that long), their sum (ns),
 *                                   frames refused, of them filed, filed in a stall, filed
 *                                   in a stall with the core missing, last beat, missing
 *                                   time (ns), of it filed, silences of 3 periods or more,
 *                                   their sum (ns), backlog frames still to poll, frames
 *                                   refused in a backlog, beats; on the generator's
 *                                   core: last beat, missing time, longest interval
 *                                   between two beats (ns)
 * Only the watched CPU writes gap_state, but for "refused", which the
 * generator's CPU adds to atomically, and the generator's core's beat
 * fields, which only it writes; user space zeroes it between trials.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct gap_cfg {
	__u32 cpu;
	char dev[4];
	__u64 stall_ns;
	__u32 gen_cpu;
	__u32 pad;
	__u64 xmit_lo, xmit_hi, cold_lo, cold_hi;
	__u64 away_ns;
	__u64 beat_fn;
	__u64 period_ns;
	__u64 backlog_frames;
};

struct gap_state {
	__u64 last_ns;
	__u64 max_gap_ns;
	__u64 polls;
	__u64 frames;
	__u64 stalls;
	__u64 stalled_ns;
	__u64 refused;
	__u64 refused_filed;
	__u64 refused_stalled;
	__u64 refused_away;
	__u64 beat_ns;
	__u64 missing_ns;
	__u64 missing_filed;
	__u64 aways;
	__u64 away_sum_ns;
	__u64 backlog_left;
	__u64 refused_backlog;
	__u64 beats;
	__u64 gen_beat_ns;
	__u64 gen_missing_ns;
	__u64 gen_max_silence_ns;
};

/* The one field of the kernel's struct hrtimer that beat reads; its
 * offset is the running kernel's (a CO-RE relocation, which aya resolves
 * against /sys/kernel/btf/vmlinux when it loads the object). */
struct hrtimer {
	void *function;
} __attribute__((preserve_access_index));

/* The tracepoint's record (/sys/kernel/tracing/events/napi/napi_poll/format). */
struct napi_poll_args {
	__u64 common;
	void *napi;
	__u32 dev_name; /* __data_loc: offset in the low 16 bits */
	int work;
	int budget;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gap_cfg);
} gap_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gap_state);
} gap_state SEC(".maps");

/* A classic tracepoint program's return value decides whether perf's
 * own events on the same tracepoint are recorded (perf_trace_run_bpf_submit
 * drops them on 0): 1 keeps `perf record -e napi:napi_poll` working while
 * the watch runs. (ftrace's copy of the event is not affected.) */
#define KEEP_EVENT 1

SEC("tracepoint/napi/napi_poll")
int napi_gap(struct napi_poll_args *ctx)
{
	__u32 zero = 0;
	struct gap_cfg *c = bpf_map_lookup_elem(&gap_cfg, &zero);
	struct gap_state *s = bpf_map_lookup_elem(&gap_state, &zero);

	if (!c || !s || bpf_get_smp_processor_id() != c->cpu)
		return KEEP_EVENT;
	char name[5] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), (char *)ctx + (ctx->dev_name & 0xffff));
	if (name[0] != c->dev[0] || name[1] != c->dev[1] || name[2] != c->dev[2] ||
	    name[3] != c->dev[3] || name[4] != 0)
		return KEEP_EVENT;
	__u64 now = bpf_ktime_get_ns();
	__u64 gap = s->last_ns ? now - s->last_ns : 0;
	if (gap > s->max_gap_ns)
		s->max_gap_ns = gap;
	if (c->stall_ns && gap >= c->stall_ns) {
		s->stalls++;
		s->stalled_ns += gap;
	}
	/* The frames refused since the last poll, and the time the core was
	 * missing (including a silence still lasting: the poll may run before
	 * the late timer does), filed under this gap. */
	__u64 refused = s->refused;
	/* (User space zeroes the state between trials, maybe between this
	 * program's reads and writes: never let a difference wrap.) */
	__u64 fresh = refused > s->refused_filed ? refused - s->refused_filed : 0;
	__u64 silent = s->beat_ns ? now - s->beat_ns : 0;
	__u64 missing = s->missing_ns + (silent > c->period_ns ? silent - c->period_ns : 0);
	__u64 missing_here = missing > s->missing_filed ? missing - s->missing_filed : 0;
	s->refused_filed = refused;
	if (missing > s->missing_filed)
		s->missing_filed = missing;
	int stall = s->last_ns && c->stall_ns && gap >= c->stall_ns;
	/* At least away_ns (a timer a whole period late), and a quarter of
	 * the gap: in a long stall of the DUT's own the timers' ordinary
	 * lateness (a few us each) could add up to away_ns; the host's
	 * stalls measured had 31-100% of the gap missing. */
	int away = s->last_ns && c->away_ns && missing_here >= c->away_ns && missing_here * 4 >= gap;
	if (fresh && stall)
		s->refused_stalled += fresh;
	if (fresh && away) {
		s->refused_away += fresh;
	} else if (fresh && s->backlog_left && !stall) {
		s->refused_away += fresh;
		s->refused_backlog += fresh;
	}
	/* The backlog a testbed's gap leaves; this poll's work does not
	 * count against it (it may have been done before the stall). */
	__u64 work = ctx->work > 0 ? ctx->work : 0;
	if (away)
		s->backlog_left = c->backlog_frames;
	else if (stall || ctx->work < ctx->budget || work >= s->backlog_left)
		s->backlog_left = 0;
	else
		s->backlog_left -= work;
	s->last_ns = now;
	s->polls++;
	s->frames += work;
	return KEEP_EVENT;
}

/* The state, when this runs on the generator's core (cfg at *c). */
static struct gap_state *gen_side(struct gap_cfg **c)
{
	__u32 zero = 0;

	*c = bpf_map_lookup_elem(&gap_cfg, &zero);
	if (!*c || bpf_get_smp_processor_id() != (*c)->gen_cpu)
		return 0;
	return bpf_map_lookup_elem(&gap_state, &zero);
}

SEC("perf_event")
int heartbeat(void *ctx)
{
	return 0;
}

/* A beat at `now` on a core whose last beat was at *last: adds what the
 * interval has beyond one period to *missing, and returns the interval
 * (0 for the first beat). */
static __always_inline __u64 beat_on(__u64 *last, __u64 *missing, __u64 now, __u64 period)
{
	__u64 interval = *last ? now - *last : 0;
	if (interval > period)
		*missing += interval - period;
	*last = now;
	return interval;
}

/* Raw tracepoints, not classic ones: a classic tracepoint's program is
 * skipped while any other BPF tracing program runs on the CPU (the
 * kernel's per-CPU bpf_prog_active guard), e.g. when the timer interrupt
 * lands in napi_gap; a skipped beat would read as a period missing. A raw
 * tracepoint's guard is per program, and this program does not nest in
 * itself. The arguments are the tracepoints' TP_PROTO
 * (include/trace/events/timer.h, skb.h, xdp.h). */
SEC("raw_tracepoint/hrtimer_expire_entry")
int beat(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct gap_cfg *c = bpf_map_lookup_elem(&gap_cfg, &zero);
	struct gap_state *s = bpf_map_lookup_elem(&gap_state, &zero);

	if (!c || !s)
		return 0;
	__u32 cpu = bpf_get_smp_processor_id();
	if (cpu != c->cpu && cpu != c->gen_cpu)
		return 0;
	struct hrtimer *t = (struct hrtimer *)ctx->args[0];
	__u64 function = 0;
	if (bpf_core_read(&function, sizeof(function), &t->function) || function != c->beat_fn)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (cpu != c->cpu) {
		/* The generator's core: only how long it went missing. */
		__u64 silence = beat_on(&s->gen_beat_ns, &s->gen_missing_ns, now, c->period_ns);
		if (silence > s->gen_max_silence_ns)
			s->gen_max_silence_ns = silence;
		return 0;
	}
	__u64 gap = beat_on(&s->beat_ns, &s->missing_ns, now, c->period_ns);
	if (gap >= 3 * c->period_ns) {
		s->aways++;
		s->away_sum_ns += gap;
	}
	s->beats++;
	return 0;
}

/* skb:kfree_skb (skb, location, reason, rx_sk). */
SEC("raw_tracepoint/kfree_skb")
int refused_skb(struct bpf_raw_tracepoint_args *ctx)
{
	struct gap_cfg *c;
	struct gap_state *s = gen_side(&c);

	if (!s)
		return 0;
	__u64 at = ctx->args[1];
	if ((at >= c->xmit_lo && at < c->xmit_hi) || (at >= c->cold_lo && at < c->cold_hi))
		__sync_fetch_and_add(&s->refused, 1);
	return 0;
}

/* xdp:xdp_devmap_xmit (from_dev, to_dev, sent, drops, err). */
SEC("raw_tracepoint/xdp_devmap_xmit")
int refused_xdp(struct bpf_raw_tracepoint_args *ctx)
{
	struct gap_cfg *c;
	struct gap_state *s = gen_side(&c);
	int drops = (int)ctx->args[3];

	if (s && drops > 0)
		__sync_fetch_and_add(&s->refused, drops);
	return 0;
}

char _license[] SEC("license") = "GPL";
