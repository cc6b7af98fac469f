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
 * Map layout, mirrored by bench/src/sys/napi_gap.rs:
 *   gap_cfg[0]    struct gap_cfg    16 bytes: cpu to watch, device name (4 bytes, "dut0"),
 *                                   shortest gap counted as a stall (ns)
 *   gap_state[0]  struct gap_state  48 bytes: last poll, longest gap (ns), polls, frames,
 *                                   stalls (gaps at least that long), their sum (ns)
 * Only the watched CPU writes gap_state; user space zeroes it between trials.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct gap_cfg {
	__u32 cpu;
	char dev[4];
	__u64 stall_ns;
};

struct gap_state {
	__u64 last_ns;
	__u64 max_gap_ns;
	__u64 polls;
	__u64 frames;
	__u64 stalls;
	__u64 stalled_ns;
};

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

SEC("tracepoint/napi/napi_poll")
int napi_gap(struct napi_poll_args *ctx)
{
	__u32 zero = 0;
	struct gap_cfg *c = bpf_map_lookup_elem(&gap_cfg, &zero);
	struct gap_state *s = bpf_map_lookup_elem(&gap_state, &zero);

	if (!c || !s || bpf_get_smp_processor_id() != c->cpu)
		return 0;
	char name[5] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), (char *)ctx + (ctx->dev_name & 0xffff));
	if (name[0] != c->dev[0] || name[1] != c->dev[1] || name[2] != c->dev[2] ||
	    name[3] != c->dev[3] || name[4] != 0)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 gap = s->last_ns ? now - s->last_ns : 0;
	if (gap > s->max_gap_ns)
		s->max_gap_ns = gap;
	if (c->stall_ns && gap >= c->stall_ns) {
		s->stalls++;
		s->stalled_ns += gap;
	}
	s->last_ns = now;
	s->polls++;
	if (ctx->work > 0)
		s->frames += ctx->work;
	return 0;
}

char _license[] SEC("license") = "GPL";
