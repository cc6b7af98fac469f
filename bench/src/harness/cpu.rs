//! CPU time from /proc, for CPU time per packet: a process's threads
//! (`/proc/PID/task/*/schedstat`, ns on CPU, what the scheduler charged
//! them) and a core's non-idle time (`/proc/stat`: user, nice, system,
//! irq, softirq, steal; in clock ticks), which also catches the kernel work
//! done on that core on a process's behalf (softirq receive on veth).

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

/// Busy and total time of one core so far, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreTicks {
    pub busy: u64,
    pub total: u64,
}

impl CoreTicks {
    /// Fraction of the interval since `earlier` the core was busy.
    pub fn busy_since(&self, earlier: &CoreTicks) -> f64 {
        let t = self.total.saturating_sub(earlier.total);
        if t == 0 {
            0.0
        } else {
            self.busy.saturating_sub(earlier.busy) as f64 / t as f64
        }
    }

    /// Busy ns since `earlier`.
    pub fn busy_ns_since(&self, earlier: &CoreTicks) -> u64 {
        self.busy.saturating_sub(earlier.busy) * 1_000_000_000 / clock_ticks()
    }
}

/// Reads `/proc/stat` for `cpu`.
pub fn core(cpu: usize) -> CoreTicks {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let tag = format!("cpu{cpu} ");
    let Some(line) = s.lines().find(|l| l.starts_with(&tag)) else {
        return CoreTicks::default();
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    CoreTicks {
        busy,
        total: busy + get(3) + get(4),
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
