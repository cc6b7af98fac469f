//! The host under the emulation: once a tick of the live view, how busy
//! the whole machine was (`/proc/stat`) and how much of it the processes
//! outside this emulation's process tree used (someone else's compiler:
//! [`procs`](super::procs), which also finds the processes that started
//! and ended between two readings in their parents' reaped time). An
//! interval where the machine was saturated and others had a large share
//! of it is *overloaded*: the live
//! view's ticks and the test traffic stall there, and the summary counts
//! the packets lost in those intervals against the overload, not against
//! the dataplanes.
//!
//! The same readings split the machine's CPU over the live view
//! ([`CpuSplit`]) so that CPU per packet hop counts the kernel's packet
//! work too, wherever it ran. A veth has no interrupt: a frame sent on it
//! is received (NAPI, softirq: the XDP programs, the fast path's label
//! switching and redirect included) on the sender's CPU, in the sender's
//! process context when the softirq runs as the send returns (then the
//! scheduler charges it to that process: this kernel has no
//! IRQ_TIME_ACCOUNTING), or in ksoftirqd when it runs over its budget. A
//! dataplane's utime + stime therefore holds the receive work its sends
//! caused at the next hops, and what ran in kernel threads is busy time
//! that no process of the emulation was charged for. With the XDP fast
//! path, a transit frame never wakes a dataplane, so all of its work is
//! of that kind: in the context of whoever sent the frame into the chain
//! (a station's dataplane, an agent) or of ksoftirqd. CPU per hop is
//! therefore (the dataplanes' processes + the busy time no process had) /
//! every hop (the workers' and the fast path's), in both modes.

use orbitmesh_lab::cpu;
use serde::Serialize;

use super::procs::{ProcMeter, ProcTicks};
use super::report::{PairTrace, Sample};

/// Machine busy (all CPUs) at or above this share, and ...
pub const BUSY_LIMIT: f64 = 0.9;
/// ... processes outside the emulation using at least this share of all
/// CPUs: overloaded.
pub const OTHERS_LIMIT: f64 = 0.25;
/// A tick covering more than 1 s + this is late.
pub const LATE_S: f64 = 0.5;

/// The host over one tick's interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HostSample {
    /// Wall seconds of the run the interval starts and ends at.
    pub from_s: f64,
    pub to_s: f64,
    /// Share of all CPUs busy, and used by processes outside the emulation.
    pub busy: f64,
    pub others: f64,
}

/// Where the machine's CPU went over the live view, in CPU-seconds summed
/// over the ticks (all CPUs; process times from `/proc/PID/stat`, which
/// the kernel keeps in step with the scheduler's exact run time; idle and
/// steal from `/proc/stat`, idle measured exactly with NO_HZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuSplit {
    /// Wall seconds covered, and CPUs.
    pub wall_s: f64,
    pub cpus: usize,
    /// Wall x CPUs - idle (+ iowait) - steal (time the hypervisor ran
    /// something else: the tasks are not charged for it either).
    pub busy_s: f64,
    /// The steal left out of `busy_s` (`/proc/stat`, sampled at ticks).
    pub steal_s: f64,
    /// The dataplane processes (utime + stime): their own work and the
    /// kernel's done in their context (AF_XDP, veth transmit, and the
    /// receive it runs at the next hop, that hop's XDP included).
    pub dataplanes_s: f64,
    /// The emulation's other processes: the emulator, the control
    /// processes, the traffic agents and ping (with the kernel's work in
    /// their context: UDP, the station's receive of what they send).
    pub emulation_other_s: f64,
    /// User-space processes outside the emulation.
    pub others_s: f64,
}

impl CpuSplit {
    /// Busy time no user-space process was charged for: kernel threads
    /// (ksoftirqd running the receive work the senders left over,
    /// kworkers) and interrupts on idle CPUs. Charged to the dataplanes:
    /// on a quiet machine it is the packet work of the mesh (it also holds
    /// the little the kernel did for anyone else).
    pub fn kernel_s(&self) -> f64 {
        (self.busy_s - self.dataplanes_s - self.emulation_other_s - self.others_s).max(0.0)
    }

    /// Wall x CPUs - idle: what no process can exceed, whatever the
    /// hypervisor did. `busy_s` is smaller by the steal, which the guest
    /// samples at ticks and keeps out of the tasks' run time only as far as
    /// its paravirtual steal clock reaches (steal during a short idle exit,
    /// or with the clock off, is in both), so the processes' sum can pass
    /// `busy_s` on a host that steals but never this.
    pub fn not_idle_s(&self) -> f64 {
        self.busy_s + self.steal_s
    }

    /// The dataplanes' processes and the kernel work no process was
    /// charged for: what forwarding cost the machine.
    pub fn dataplanes_with_kernel_s(&self) -> f64 {
        self.dataplanes_s + self.kernel_s()
    }

    fn add(&mut self, other: &CpuSplit) {
        self.wall_s += other.wall_s;
        self.cpus = other.cpus;
        self.busy_s += other.busy_s;
        self.steal_s += other.steal_s;
        self.dataplanes_s += other.dataplanes_s;
        self.emulation_other_s += other.emulation_other_s;
        self.others_s += other.others_s;
    }
}

/// `/proc/stat`'s line for all CPUs: idle (+ iowait) and steal, in clock
/// ticks, and when it was read.
#[derive(Debug, Clone, Copy)]
struct MachineTicks {
    idle: u64,
    steal: u64,
    at: std::time::Instant,
}

impl MachineTicks {
    fn read() -> MachineTicks {
        let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let at = std::time::Instant::now();
        MachineTicks::parse(&s, at)
    }

    /// From `/proc/stat`'s text (user nice system idle iowait irq softirq
    /// steal ...); zeros where it has no `cpu ` line.
    fn parse(stat: &str, at: std::time::Instant) -> MachineTicks {
        let v: Vec<u64> = stat
            .lines()
            .find(|l| l.starts_with("cpu "))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        MachineTicks {
            idle: get(3) + get(4),
            steal: get(7),
            at,
        }
    }
}

/// Clock ticks (`/proc/stat`, `/proc/PID/stat`) in seconds.
fn ticks_s(ticks: u64) -> f64 {
    ticks as f64 / cpu::clock_ticks().max(1) as f64
}

/// The interval from `a` to `b` on `cpus` CPUs, given the CPU ticks the
/// processes used in it: (share of all CPUs busy, steal excluded or not,
/// as the overload test has always read it) and the split.
fn split_between(
    a: &MachineTicks,
    b: &MachineTicks,
    cpus: usize,
    procs: ProcTicks,
) -> (f64, CpuSplit) {
    let wall_s = b.at.saturating_duration_since(a.at).as_secs_f64();
    let capacity = wall_s * cpus.max(1) as f64;
    let idle = ticks_s(b.idle.saturating_sub(a.idle));
    let steal = ticks_s(b.steal.saturating_sub(a.steal));
    let share = if capacity > 0.0 {
        (1.0 - idle / capacity).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let split = CpuSplit {
        wall_s,
        cpus,
        busy_s: (capacity - idle - steal).max(0.0),
        steal_s: steal.min((capacity - idle).max(0.0)),
        dataplanes_s: ticks_s(procs.dataplanes),
        emulation_other_s: ticks_s(procs.emulation),
        others_s: ticks_s(procs.others),
    };
    (share, split)
}

impl HostSample {
    pub fn overloaded(&self) -> bool {
        self.busy >= BUSY_LIMIT && self.others >= OTHERS_LIMIT
    }

    /// The tick came this long after its second was due (0: on time).
    pub fn late_s(&self) -> f64 {
        let late = self.to_s - self.from_s - 1.0;
        if late > LATE_S {
            late
        } else {
            0.0
        }
    }
}

/// Reads the host once a tick.
#[derive(Debug)]
pub struct HostMeter {
    procs: ProcMeter,
    machine: MachineTicks,
    cpus: usize,
    root: u32,
    split: CpuSplit,
}

impl HostMeter {
    /// Starts measuring: this process's tree (dataplanes, control
    /// processes, agents are its children) is the emulation; `dp_pids`
    /// are its dataplanes.
    pub fn start(dp_pids: &[u32]) -> HostMeter {
        let root = std::process::id();
        let mut procs = ProcMeter::default();
        procs.since_last(root, dp_pids);
        HostMeter {
            procs,
            machine: MachineTicks::read(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            root,
            split: CpuSplit::default(),
        }
    }

    /// The interval since the last reading, which the caller places at
    /// wall seconds `from_s`..`to_s`; `dp_pids`: the dataplanes now.
    pub fn read(&mut self, from_s: f64, to_s: f64, dp_pids: &[u32]) -> HostSample {
        let procs = self.procs.since_last(self.root, dp_pids);
        let now = MachineTicks::read();
        let (busy, split) = split_between(&self.machine, &now, self.cpus, procs);
        self.machine = now;
        self.split.add(&split);
        HostSample {
            from_s,
            to_s,
            busy,
            others: (split.others_s / (split.wall_s.max(1e-9) * self.cpus as f64)).min(1.0),
        }
    }

    /// Reads once more (the interval since the last tick) and gives the
    /// split of the whole time measured.
    pub fn finish(&mut self, dp_pids: &[u32]) -> CpuSplit {
        self.read(0.0, 0.0, dp_pids);
        self.split
    }
}

/// The overloaded intervals, each run of consecutive overloaded samples
/// merged into one (wall s from, to).
pub fn overloaded_spans(samples: &[HostSample]) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for s in samples.iter().filter(|s| s.overloaded()) {
        match spans.last_mut() {
            Some(last) if s.from_s <= last.1 + 1e-6 => last.1 = s.to_s,
            _ => spans.push((s.from_s, s.to_s)),
        }
    }
    spans
}

/// What the host did during the run, for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostReport {
    pub cpus: usize,
    /// Overloaded intervals (wall s) and their total length.
    pub overloaded_spans: Vec<(f64, f64)>,
    pub overloaded_s: f64,
    /// Highest and mean share of all CPUs the other processes used.
    pub others_max: f64,
    pub others_mean: f64,
    /// Ticks of the live view that came late (the emulator stalled), and
    /// the longest interval one covered (s).
    pub late_ticks: usize,
    pub longest_tick_s: f64,
    /// Packets lost (all pairs, sequence gaps) in all, in samples that
    /// overlap an overloaded interval (a coincidence, not a cause: faults
    /// fall there too), and of those the ones outside the fault windows.
    pub lost: u64,
    pub lost_while_overloaded: u64,
    pub lost_while_overloaded_outside_faults: u64,
    /// Packets lost in the stalls (late ticks' intervals), and in the
    /// stalls while the host was overloaded: the latter are the
    /// overload's (agents and dataplanes stalled with the emulator).
    pub lost_in_stalls: u64,
    pub lost_in_overloaded_stalls: u64,
    /// Every reading.
    pub samples: Vec<HostSample>,
}

impl HostReport {
    /// `fault_windows`: the wall-s windows the summary charges to faults.
    pub fn new(
        samples: Vec<HostSample>,
        pairs: &[PairTrace],
        fault_windows: &[(f64, f64)],
    ) -> HostReport {
        let spans = overloaded_spans(&samples);
        let lost_in = |within: &dyn Fn(&Sample) -> bool| -> u64 {
            pairs
                .iter()
                .flat_map(|p| &p.samples)
                .filter(|s| within(s))
                .map(|s| s.lost)
                .sum()
        };
        let in_any = |s: &Sample, w: &[(f64, f64)]| w.iter().any(|&(a, b)| s.overlaps(a, b));
        let stalls: Vec<(f64, f64)> = samples
            .iter()
            .filter(|h| h.late_s() > 0.0)
            .map(|h| (h.from_s, h.to_s))
            .collect();
        let overloaded_stalls: Vec<(f64, f64)> = samples
            .iter()
            .filter(|h| h.late_s() > 0.0 && h.overloaded())
            .map(|h| (h.from_s, h.to_s))
            .collect();
        HostReport {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            overloaded_s: spans.iter().map(|(a, b)| b - a).sum(),
            others_max: samples.iter().map(|s| s.others).fold(0.0, f64::max),
            others_mean: samples.iter().map(|s| s.others).sum::<f64>()
                / samples.len().max(1) as f64,
            late_ticks: stalls.len(),
            longest_tick_s: samples
                .iter()
                .map(|s| s.to_s - s.from_s)
                .fold(0.0, f64::max),
            lost: lost_in(&|_| true),
            lost_while_overloaded: lost_in(&|s| in_any(s, &spans)),
            lost_while_overloaded_outside_faults: lost_in(&|s| {
                in_any(s, &spans) && !in_any(s, fault_windows)
            }),
            lost_in_stalls: lost_in(&|s| in_any(s, &stalls)),
            lost_in_overloaded_stalls: lost_in(&|s| in_any(s, &overloaded_stalls)),
            overloaded_spans: spans,
            samples,
        }
    }

    /// The summary's list lines about the host (each ending in a newline).
    pub fn markdown(&self) -> String {
        let mut s = if self.overloaded_spans.is_empty() {
            format!(
                "- host: not overloaded (processes outside the emulation used at most {:.0}% of \
                 the {} CPUs, {:.0}% on average)\n",
                100.0 * self.others_max,
                self.cpus,
                100.0 * self.others_mean
            )
        } else {
            let spans: Vec<String> = self
                .overloaded_spans
                .iter()
                .map(|(a, b)| format!("{a:.0}-{b:.0} s"))
                .collect();
            format!(
                "- **host overloaded** for {:.0} s of the run ({}): the {} CPUs were {:.0}%+ busy and \
                 processes outside the emulation used {:.0}%+ of them (at most {:.0}%, {:.0}% on \
                 average); of the {} packets lost, {} fell in those intervals, {} of them outside \
                 the fault windows\n",
                self.overloaded_s,
                spans.join(", "),
                self.cpus,
                100.0 * BUSY_LIMIT,
                100.0 * OTHERS_LIMIT,
                100.0 * self.others_max,
                100.0 * self.others_mean,
                self.lost,
                self.lost_while_overloaded,
                self.lost_while_overloaded_outside_faults
            )
        };
        s += &if self.late_ticks == 0 {
            "- live view: no tick late (the emulator was never stalled for more than 0.5 s)\n"
                .to_string()
        } else {
            format!(
                "- live view: {} ticks late (the longest covered {:.1} s): the emulator stalled; \
                 {} packets lost in those intervals, {} of them while the host was overloaded \
                 (the overload's, not the mesh's)\n",
                self.late_ticks,
                self.longest_tick_s,
                self.lost_in_stalls,
                self.lost_in_overloaded_stalls
            )
        };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_charges_the_busy_time_no_process_had_to_the_kernel() {
        let hz = cpu::clock_ticks() as f64;
        let t0 = std::time::Instant::now();
        let a = MachineTicks::parse("cpu  10 0 5 1000 20 0 3 7 0 0\ncpu0 1 2 3\n", t0);
        assert_eq!((a.idle, a.steal), (1020, 7));
        // 10 s on 2 CPUs: 5 s idle (+ iowait), 1 s stolen; processes: the
        // dataplanes 6 s, the emulation's others 3 s, others' 2 s.
        let b = MachineTicks {
            idle: a.idle + (5.0 * hz) as u64,
            steal: a.steal + hz as u64,
            at: t0 + std::time::Duration::from_secs(10),
        };
        let procs = ProcTicks {
            dataplanes: (6.0 * hz) as u64,
            emulation: (3.0 * hz) as u64,
            others: (2.0 * hz) as u64,
        };
        let (share, c) = split_between(&a, &b, 2, procs);
        assert!((share - 0.75).abs() < 1e-9, "{share}");
        let near = |x: f64, y: f64| (x - y).abs() < 0.02;
        assert!(near(c.busy_s, 14.0) && near(c.dataplanes_s, 6.0), "{c:?}");
        assert!(near(c.steal_s, 1.0) && near(c.not_idle_s(), 15.0), "{c:?}");
        assert!(
            near(c.emulation_other_s, 3.0) && near(c.others_s, 2.0),
            "{c:?}"
        );
        assert!(
            near(c.kernel_s(), 3.0) && near(c.dataplanes_with_kernel_s(), 9.0),
            "{c:?}"
        );
        // More process time than busy time (rounding): no negative kernel share.
        let over = CpuSplit {
            busy_s: 1.0,
            dataplanes_s: 1.5,
            ..c
        };
        assert_eq!(over.kernel_s(), 0.0);
        assert_eq!(MachineTicks::parse("", t0).idle, 0);
    }

    fn at(from_s: f64, to_s: f64, busy: f64, others: f64) -> HostSample {
        HostSample {
            from_s,
            to_s,
            busy,
            others,
        }
    }

    #[test]
    fn overloaded_spans_merge_runs_and_need_both_conditions() {
        let samples = [
            at(0.0, 1.0, 0.95, 0.5),
            at(1.0, 2.0, 1.0, 0.3),
            at(2.0, 3.0, 1.0, 0.1), // busy, but with our own work
            at(3.0, 4.0, 0.5, 0.4), // others, but room left
            at(4.0, 7.2, 1.0, 0.9), // a late tick, overloaded
        ];
        assert_eq!(overloaded_spans(&samples), vec![(0.0, 2.0), (4.0, 7.2)]);
        assert_eq!(samples[4].late_s(), 7.2 - 4.0 - 1.0);
        assert_eq!(samples[1].late_s(), 0.0);
        assert_eq!(
            at(0.0, 1.4, 0.0, 0.0).late_s(),
            0.0,
            "0.4 s late is on time"
        );
    }

    #[test]
    fn losses_in_overloaded_intervals_are_the_hosts() {
        let samples = vec![at(0.0, 1.0, 0.2, 0.0), at(1.0, 4.0, 1.0, 0.8)];
        let pair = PairTrace {
            samples: vec![
                Sample {
                    from_s: 0.0,
                    to_s: 1.0,
                    delivered: 200,
                    lost: 3,
                },
                Sample {
                    from_s: 1.0,
                    to_s: 4.0,
                    delivered: 100,
                    lost: 500,
                },
            ],
            ..Default::default()
        };
        // A fault window over part of the stall.
        let r = HostReport::new(samples.clone(), std::slice::from_ref(&pair), &[(3.5, 7.0)]);
        assert_eq!((r.lost_while_overloaded, r.lost), (500, 503));
        assert_eq!(
            r.lost_while_overloaded_outside_faults, 0,
            "the stall is in a fault window"
        );
        assert_eq!((r.lost_in_stalls, r.lost_in_overloaded_stalls), (500, 500));
        assert_eq!((r.late_ticks, r.longest_tick_s), (1, 3.0));
        assert_eq!(r.overloaded_s, 3.0);
        let md = r.markdown();
        assert!(md.contains("host overloaded** for 3 s"), "{md}");
        assert!(md.contains("1-4 s"), "{md}");
        assert!(
            md.contains("of the 503 packets lost, 500 fell in those intervals, 0 of them outside"),
            "{md}"
        );
        assert!(md.contains("1 ticks late"), "{md}");
        assert!(
            md.contains(
                "500 packets lost in those intervals, 500 of them while the host was overloaded"
            ),
            "{md}"
        );
        // Without the fault, the same loss is outside the fault windows.
        let r = HostReport::new(samples, &[pair], &[]);
        assert_eq!(r.lost_while_overloaded_outside_faults, 500);
    }
}
