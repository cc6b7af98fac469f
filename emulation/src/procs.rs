//! The CPU time of every user-space process, by whose it is: the
//! emulation's dataplanes, the emulation's other processes (this
//! emulator's process tree: control processes, agents, `ip`, ping), and
//! everyone else's. Read from `/proc/PID/stat` (utime + stime, which the
//! kernel keeps in step with the scheduler's exact run time) again and
//! again, each reading giving the clock ticks each class used since the
//! last.
//!
//! Short-lived processes (a compiler's rustc and build scripts, our `ip`
//! commands) may start and end between two readings and never be seen:
//! their time is found in their parent's reaped-children time (cutime +
//! cstime), which grows by a child's whole life when it is reaped. That
//! growth, less what was already counted of the children seen before
//! they went, is the parent's class's. Kernel threads are left out: their
//! time (ksoftirqd's packet work among it) is what the machine's busy time
//! has beyond the processes ([`host`](super::host)).

use std::collections::{BTreeMap, BTreeSet};

/// A process's `/proc/PID/stat` fields that count here (`ticks`: its own
/// utime + stime; `reaped`: its reaped children's), as orbitmesh-lab reads
/// them for the relay harness too.
pub use orbitmesh_lab::cpu::{parse_stat, processes, ProcCpu as ProcStat};

/// Clock ticks used over an interval, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcTicks {
    pub dataplanes: u64,
    /// The emulation's processes that are not dataplanes.
    pub emulation: u64,
    /// Processes outside the emulation.
    pub others: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Dataplane,
    Emulation,
    Other,
}

/// Reads the processes again and again; see the module doc.
#[derive(Debug, Default)]
pub struct ProcMeter {
    last: BTreeMap<u32, ProcStat>,
    /// Every process once seen in the emulation's tree, and every
    /// dataplane: a process reparented to init when its parent exits stays
    /// the emulation's.
    ours_ever: BTreeSet<u32>,
    dataplanes_ever: BTreeSet<u32>,
}

impl ProcMeter {
    /// Ticks used since the last reading (since each process started, on
    /// the first): `root`'s process tree is the emulation, `dataplanes`
    /// its dataplanes.
    pub fn since_last(&mut self, root: u32, dataplanes: &[u32]) -> ProcTicks {
        let procs = processes();
        self.advance(&procs, root, dataplanes)
    }

    /// As [`ProcMeter::since_last`] on the processes `procs`.
    pub fn advance(&mut self, procs: &[ProcStat], root: u32, dataplanes: &[u32]) -> ProcTicks {
        self.dataplanes_ever.extend(dataplanes);
        self.ours_ever.extend(tree(procs, root));
        // Processes seen last time that are gone: counted up to then, and
        // found again in the reaped time of their nearest ancestor still
        // here (a parent gone too was reaped with theirs inside its own).
        let mut counted_of_gone: BTreeMap<u32, u64> = BTreeMap::new();
        let now: BTreeSet<u32> = procs.iter().map(|p| p.pid).collect();
        for p in self.last.values().filter(|p| !now.contains(&p.pid)) {
            let mut ancestor = p.ppid;
            for _ in 0..self.last.len() {
                match self.last.get(&ancestor) {
                    Some(a) if !now.contains(&ancestor) => ancestor = a.ppid,
                    _ => break,
                }
            }
            *counted_of_gone.entry(ancestor).or_default() += p.ticks + p.reaped;
        }
        let mut used = ProcTicks::default();
        for p in procs {
            let (own, reaped) = match self.last.get(&p.pid) {
                Some(l) => (
                    p.ticks.saturating_sub(l.ticks),
                    p.reaped.saturating_sub(l.reaped),
                ),
                None => (p.ticks, p.reaped),
            };
            let unseen = reaped.saturating_sub(counted_of_gone.get(&p.pid).copied().unwrap_or(0));
            *match self.class(p.pid) {
                Class::Dataplane => &mut used.dataplanes,
                Class::Emulation => &mut used.emulation,
                Class::Other => &mut used.others,
            } += own + unseen;
        }
        self.last = procs.iter().map(|p| (p.pid, *p)).collect();
        used
    }

    fn class(&self, pid: u32) -> Class {
        if self.dataplanes_ever.contains(&pid) {
            Class::Dataplane
        } else if self.ours_ever.contains(&pid) {
            Class::Emulation
        } else {
            Class::Other
        }
    }
}

/// `root` and every process descended from it, in `procs`.
fn tree(procs: &[ProcStat], root: u32) -> BTreeSet<u32> {
    let mut ours = BTreeSet::from([root]);
    loop {
        let before = ours.len();
        for p in procs {
            if ours.contains(&p.ppid) {
                ours.insert(p.pid);
            }
        }
        if ours.len() == before {
            return ours;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, own: u64, reaped: u64) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            ticks: own,
            reaped,
        }
    }

    #[test]
    fn stat_lines_parse_with_reaped_children_and_kernel_threads_are_left_out() {
        let user =
            "4242 (rustc (x) y) R 17 4242 17 0 -1 4194304 100 0 0 0 250 30 12 8 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(user), Some(p(4242, 17, 280, 20)));
        let kthread = "12 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 0 900 0 0 20 0 1 0 9 0 0";
        assert_eq!(parse_stat(kthread), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn each_class_gets_its_processes_and_the_children_they_reaped_unseen() {
        // 10 is the emulator, 11 a dataplane, 12 an agent; 20 someone
        // else's build (cargo), 21 its rustc.
        let mut m = ProcMeter::default();
        let t0 = [
            p(1, 0, 5, 0),
            p(10, 1, 100, 0),
            p(11, 10, 50, 0),
            p(12, 10, 7, 0),
            p(20, 1, 300, 0),
            p(21, 20, 40, 0),
        ];
        m.advance(&t0, 10, &[11]);
        // The dataplane used 30, the emulator 10 and the agent 3; rustc 21
        // ended at 60 (20 of them since the last reading) and was reaped;
        // a rustc 22 started and ended unseen (90 ticks), reaped too;
        // the emulator ran `ip` (4 ticks), unseen and reaped.
        let t1 = [
            p(1, 0, 5, 0),
            p(10, 1, 110, 4),
            p(11, 10, 80, 0),
            p(12, 10, 10, 0),
            p(20, 1, 301, 60 + 90),
        ];
        let u = m.advance(&t1, 10, &[11]);
        assert_eq!(
            u,
            ProcTicks {
                dataplanes: 30,
                emulation: 10 + 4 + 3,
                others: 1 + 20 + 90,
            }
        );
        // The agent ended (15 ticks in all) and the emulator reaped it: its
        // last 5 are the emulation's; a dataplane started again under a
        // new PID counts from its start.
        let t2 = [
            p(1, 0, 5, 0),
            p(10, 1, 110, 4 + 15),
            p(11, 10, 80, 0),
            p(13, 10, 6, 0),
            p(20, 1, 301, 150),
        ];
        let u = m.advance(&t2, 10, &[11, 13]);
        assert_eq!(
            u,
            ProcTicks {
                dataplanes: 6,
                emulation: 15 - 10,
                others: 0,
            }
        );
        // A shell (30) runs cargo (31), which runs rustc (32); all seen.
        // Then rustc ends (reaped by cargo) and cargo ends (reaped by the
        // shell) in the same interval: the shell's reaped time grows by
        // both lives, of which only the last interval is new.
        let t3 = [
            p(1, 0, 5, 0),
            p(30, 1, 2, 0),
            p(31, 30, 10, 100),
            p(32, 31, 50, 0),
        ];
        m.advance(&t3, 10, &[11, 13]);
        let t4 = [p(1, 0, 5, 0), p(30, 1, 2, 12 + 100 + 70)];
        let u = m.advance(&t4, 10, &[11, 13]);
        assert_eq!(u.others, 2 + 20, "cargo's last 2, rustc's last 20: {u:?}");
    }
}
