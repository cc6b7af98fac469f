//! CPU time from /proc: a process's threads (`/proc/PID/task/*/schedstat`,
//! ns on CPU, what the scheduler charged them), a core's or the machine's
//! non-idle time (wall time minus `/proc/stat`'s idle time, which also
//! catches the kernel work done on a process's behalf, e.g. softirq receive
//! on veth), and the CPU time of the user-space processes that are not
//! ours: the bench harness (CPU per packet, disturbed trials) and the
//! emulator (host overload) measure the machine with it.

use std::collections::{BTreeMap, BTreeSet};

/// ns on CPU of every thread of `pid` (0 when it is gone).
pub fn process_ns(pid: u32) -> u64 {
    let dir = format!("/proc/{pid}/task");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The calling thread's schedstat (`/proc/thread-self/schedstat`): ns on
/// CPU and ns waited on a run queue (zeros when unreadable).
pub fn thread_schedstat() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut f = text
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}

/// One reading of a core's idle time (`/proc/stat`: idle + iowait) and the
/// clock. With NO_HZ the kernel measures idle time exactly (from idle
/// entry to exit; an interrupt's and its softirq's time are not idle), while
/// the user/system/softirq fields are only sampled at the tick, which
/// misses short bursts, e.g. softirq receive run from the idle loop. So
/// busy = wall time - idle time.
#[derive(Debug, Clone, Copy)]
pub struct CoreTicks {
    /// idle + iowait, clock ticks.
    pub idle: u64,
    /// Time the hypervisor ran something else on this virtual CPU
    /// (`steal`), clock ticks: counted in busy time, and a stall of
    /// everything on the core.
    pub steal: u64,
    pub at: std::time::Instant,
}

impl Default for CoreTicks {
    fn default() -> Self {
        CoreTicks {
            idle: 0,
            steal: 0,
            at: std::time::Instant::now(),
        }
    }
}

impl CoreTicks {
    /// Busy ns since `earlier`.
    pub fn busy_ns_since(&self, earlier: &CoreTicks) -> u64 {
        let wall = self.at.saturating_duration_since(earlier.at).as_nanos() as u64;
        let idle = self.idle.saturating_sub(earlier.idle) * 1_000_000_000 / clock_ticks();
        wall.saturating_sub(idle)
    }

    /// Stolen ns since `earlier` (clock-tick resolution).
    pub fn steal_ns_since(&self, earlier: &CoreTicks) -> u64 {
        self.steal.saturating_sub(earlier.steal) * 1_000_000_000 / clock_ticks()
    }

    /// Fraction of `cpus` CPUs busy since `earlier`, for a reading of
    /// several together ([`machine`]: all of them).
    pub fn share_busy_since(&self, earlier: &CoreTicks, cpus: usize) -> f64 {
        let wall = self.at.saturating_duration_since(earlier.at).as_nanos() as f64;
        if wall == 0.0 {
            return 0.0;
        }
        let idle = self.idle.saturating_sub(earlier.idle) as f64 * 1e9 / clock_ticks() as f64;
        (1.0 - idle / (wall * cpus.max(1) as f64)).clamp(0.0, 1.0)
    }

    /// Fraction of the interval since `earlier` the core was busy.
    pub fn busy_since(&self, earlier: &CoreTicks) -> f64 {
        let wall = self.at.saturating_duration_since(earlier.at).as_nanos() as u64;
        if wall == 0 {
            0.0
        } else {
            (self.busy_ns_since(earlier) as f64 / wall as f64).min(1.0)
        }
    }
}

/// Reads `/proc/stat` for `cpu`.
pub fn core(cpu: usize) -> CoreTicks {
    ticks_of(&format!("cpu{cpu} "))
}

/// Reads `/proc/stat`'s line starting with `tag`.
fn ticks_of(tag: &str) -> CoreTicks {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let at = std::time::Instant::now();
    let Some(line) = s.lines().find(|l| l.starts_with(tag)) else {
        return CoreTicks {
            idle: 0,
            steal: 0,
            at,
        };
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    CoreTicks {
        idle: get(3) + get(4),
        steal: get(7),
        at,
    }
}

/// USER_HZ (clock ticks per second of /proc/stat).
pub fn clock_ticks() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Load averages and CPU count, to note how quiet the machine was.
pub fn load_note() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let l: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "load average {} (1/5/15 min), {} CPUs",
        l.join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// A user-space process's CPU time so far (`/proc/PID/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCpu {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime, clock ticks.
    pub ticks: u64,
    /// cutime + cstime: its reaped children's (and theirs), clock ticks.
    pub reaped: u64,
}

/// Parses one `/proc/PID/stat` line; `None` for a kernel thread (which
/// does the packet work on veth for everyone) or a line it cannot read.
pub fn parse_stat(stat: &str) -> Option<ProcCpu> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] = state (field 3), ppid = field 4, flags = field 9, utime 14,
    // stime 15, cutime 16, cstime 17.
    let flags: u64 = f.get(6)?.parse().ok()?;
    if flags & PF_KTHREAD != 0 {
        return None;
    }
    let n = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(ProcCpu {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        ticks: n(11)? + n(12)?,
        reaped: n(13)? + n(14)?,
    })
}

/// Every user-space process now.
pub fn processes() -> Vec<ProcCpu> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_stat(&s))
        .collect()
}

/// `ticks` clock ticks in ns (u128 inside: ticks x 1e9 overflows u64 on a
/// large, long-running host).
fn ticks_ns(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(clock_ticks().max(1))) as u64
}

/// `root` and every process descended from it, in `procs`.
pub fn tree(procs: &[ProcCpu], root: u32) -> BTreeSet<u32> {
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

/// The CPU time of the processes outside a process tree (someone else's
/// compiler, browser, ...), read again and again: each reading gives the
/// ns they used since the last, summed per process, so that processes
/// that started since count and the ones that ended do not subtract
/// their whole life (their last interval is lost, a slight undercount).
/// A process once seen in our tree stays ours: a child reparented to init
/// when its parent exits would otherwise be charged its whole life at once.
#[derive(Debug, Default)]
pub struct OthersCpu {
    last: BTreeMap<u32, u64>,
    ours_ever: BTreeSet<u32>,
}

impl OthersCpu {
    /// ns the processes outside `root`'s tree used since the last reading
    /// (since they started, on the first).
    pub fn since_last(&mut self, root: u32) -> u64 {
        let procs = processes();
        ticks_ns(self.advance(&procs, &tree(&procs, root)))
    }

    /// As [`OthersCpu::since_last`], with our processes given by PID
    /// (kernel threads and other users' processes are not ours).
    pub fn since_last_of(&mut self, ours: &[u32]) -> u64 {
        let procs = processes();
        ticks_ns(self.advance(&procs, &ours.iter().copied().collect()))
    }

    /// Clock ticks used by the processes of `procs` not in `ours` since
    /// the last call.
    pub fn advance(&mut self, procs: &[ProcCpu], ours: &BTreeSet<u32>) -> u64 {
        let mut used = 0;
        let mut now = BTreeMap::new();
        self.ours_ever.extend(ours);
        for p in procs.iter().filter(|p| !self.ours_ever.contains(&p.pid)) {
            used += p
                .ticks
                .saturating_sub(self.last.get(&p.pid).copied().unwrap_or(0));
            now.insert(p.pid, p.ticks);
        }
        self.last = now;
        used
    }
}

/// Reads `/proc/stat`'s line for all CPUs together (busy = the machine).
pub fn machine() -> CoreTicks {
    ticks_of("cpu ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_threads_cpu_time_grows_while_it_spins() {
        let (on0, _) = thread_schedstat();
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let (on1, _) = thread_schedstat();
        assert!(on1 >= on0 + 5_000_000, "{on0} -> {on1} ns on CPU");
    }

    #[test]
    fn stat_lines_parse_and_kernel_threads_are_left_out() {
        let user =
            "4242 (rustc (x) y) R 17 4242 17 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 1 0 5 0 0";
        assert_eq!(
            parse_stat(user),
            Some(ProcCpu {
                pid: 4242,
                ppid: 17,
                ticks: 280,
                reaped: 0
            })
        );
        let kthread = "12 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 0 900 0 0 20 0 1 0 9 0 0";
        assert_eq!(parse_stat(kthread), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn others_are_what_is_outside_the_tree_per_process() {
        let p = |pid, ppid, ticks| ProcCpu {
            pid,
            ppid,
            ticks,
            reaped: 0,
        };
        // 10 is us; 11 our child, 12 its child; 20 and 21 someone else's.
        let t0 = [
            p(1, 0, 5),
            p(10, 1, 100),
            p(11, 10, 50),
            p(12, 11, 7),
            p(20, 1, 300),
        ];
        let ours = tree(&t0, 10);
        assert_eq!(ours, BTreeSet::from([10, 11, 12]));
        let mut o = OthersCpu::default();
        assert_eq!(
            o.advance(&t0, &ours),
            305,
            "first reading: their whole life"
        );
        // 20 ended (its last interval is lost), 21 started, 1 used 2 ticks,
        // ours used plenty (not counted).
        let t1 = [p(1, 0, 7), p(10, 1, 400), p(11, 10, 90), p(21, 1, 40)];
        assert_eq!(o.advance(&t1, &tree(&t1, 10)), 2 + 40);
        // 11 ended and its child 12 was reparented to init: out of our
        // tree now, but ours, not another's 500 ticks in one interval.
        let t2 = [p(1, 0, 7), p(10, 1, 450), p(12, 1, 500), p(21, 1, 45)];
        assert_eq!(tree(&t2, 10), BTreeSet::from([10]));
        assert_eq!(o.advance(&t2, &tree(&t2, 10)), 5);
    }
}
