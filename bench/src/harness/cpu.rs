//! CPU time from /proc, for CPU time per packet: a process's threads
//! (`/proc/PID/task/*/schedstat`, ns on CPU, what the scheduler charged
//! them) and a core's non-idle time (wall time minus `/proc/stat`'s idle
//! time), which also catches the kernel work done on that core on a
//! process's behalf (softirq receive on veth).

use std::path::Path;

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
    pub at: std::time::Instant,
}

impl Default for CoreTicks {
    fn default() -> Self {
        CoreTicks {
            idle: 0,
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
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let at = std::time::Instant::now();
    let tag = format!("cpu{cpu} ");
    let Some(line) = s.lines().find(|l| l.starts_with(&tag)) else {
        return CoreTicks { idle: 0, at };
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

/// True when `name` is an executable file on PATH (or a path to one).
pub fn have_tool(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// CPU time (ns) used so far by user-space processes other than `ours`
/// (kernel threads, which do the packet work on veth, are not counted):
/// the interference from whatever else runs on the machine.
pub fn foreign_ns(ours: &[u32]) -> u64 {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let ticks: u64 = rd
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            if ours.contains(&pid) {
                return None;
            }
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // Fields after the command name (which may hold spaces).
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] = state (field 3); flags = field 9, utime 14, stime 15.
            let flags: u64 = f.get(6)?.parse().ok()?;
            if flags & PF_KTHREAD != 0 {
                return None;
            }
            let ut: u64 = f.get(11)?.parse().ok()?;
            let st: u64 = f.get(12)?.parse().ok()?;
            Some(ut + st)
        })
        .sum();
    ticks * 1_000_000_000 / clock_ticks()
}
