//! The host under the emulation: once a tick of the live view, how busy
//! the whole machine was (`/proc/stat`) and how much of it the processes
//! outside this emulation's process tree used (someone else's compiler:
//! [`orbitmesh_lab::cpu::OthersCpu`], the readings the bench harness
//! uses to flag disturbed trials). An interval where the machine was
//! saturated and others had a large share of it is *overloaded*: the live
//! view's ticks and the test traffic stall there, and the summary counts
//! the packets lost in those intervals against the overload, not against
//! the dataplanes.

use orbitmesh_lab::cpu::{self, CoreTicks, OthersCpu};
use serde::Serialize;

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
    others: OthersCpu,
    machine: CoreTicks,
    cpus: usize,
    root: u32,
}

impl HostMeter {
    /// Starts measuring: this process's tree (dataplanes, control
    /// processes, agents are its children) is the emulation.
    pub fn start() -> HostMeter {
        let mut others = OthersCpu::default();
        let root = std::process::id();
        others.since_last(root);
        HostMeter {
            others,
            machine: cpu::machine(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            root,
        }
    }

    /// The interval since the last reading, which the caller places at
    /// wall seconds `from_s`..`to_s`.
    pub fn read(&mut self, from_s: f64, to_s: f64) -> HostSample {
        let now = cpu::machine();
        let wall_ns = now.at.saturating_duration_since(self.machine.at).as_nanos() as f64;
        let others_ns = self.others.since_last(self.root) as f64;
        let busy = now.share_busy_since(&self.machine, self.cpus);
        self.machine = now;
        HostSample {
            from_s,
            to_s,
            busy,
            others: (others_ns / (wall_ns.max(1.0) * self.cpus as f64)).min(1.0),
        }
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
