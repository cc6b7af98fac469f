//! Part 4 of an emulation: the control process, `orbitmesh-ctl run` in the
//! management namespace (signed, over the nodes' remote channels) or in
//! the first node's namespace (`--unsigned`, over their sockets: see
//! [`mgmt`](super::mgmt)), driving every dataplane's schedule with
//! schedule time `start_ns` at wall time `t_start` (a couple of seconds
//! from now) and the whole run `time_scale` times faster than real time.
//! Its report goes to `OUT/run.json`, its log to `OUT/logs/ctl.log` and
//! its events ([`control::events`]) to `OUT/events.jsonl`, which is followed
//! as it grows and handed to the live view record by record: the emulator
//! reads what the control process did from typed records, not its log.
//!
//! Each process gets files of its own, so that none overwrites another's:
//! a controller started again after `--kill-controller-at` writes
//! `run.2.json`, `logs/ctl.2.log` and `events.2.jsonl` (a third time `.3`),
//! and the second controller of a redundant pair (`--controllers 2`, label
//! `ctl-b`) writes `run-b.json`, `logs/ctl-b.log` and `events-b.jsonl`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Result;

use super::lab::Lab;
use super::now_ns;
use control::events::Record;

/// Schedule time against wall time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Wall ns of schedule time 0 (the window may start later).
    pub zero: u64,
    /// Wall ns of the window's start.
    pub t_start: u64,
    /// Schedule ns of the window's start.
    pub start_ns: i64,
    pub time_scale: f64,
}

impl Clock {
    /// The window's start `lead_ns` from now.
    pub fn starting_in(lead_ns: u64, start_ns: i64, time_scale: f64) -> Clock {
        let t_start = now_ns() + lead_ns;
        Clock {
            zero: t_start - (start_ns as f64 / time_scale) as u64,
            t_start,
            start_ns,
            time_scale,
        }
    }

    /// Wall ns of schedule time `t`.
    pub fn to_wall(&self, t: i64) -> u64 {
        self.zero + (t.max(0) as f64 / self.time_scale) as u64
    }

    /// Schedule ns at wall time `now`.
    pub fn sched_at(&self, now: u64) -> i64 {
        self.start_ns + ((now - self.t_start) as f64 * self.time_scale) as i64
    }

    /// Wall seconds since the window's start.
    pub fn wall_s(&self, now: u64) -> f64 {
        (now - self.t_start) as f64 / 1e9
    }
}

/// Which control process: `ctl` (the first of a pair, the one
/// `--kill-controller-at` stops) or `ctl-b`, and how many times it has
/// been started (1 for the first time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incarnation {
    pub label: &'static str,
    pub n: u32,
}

impl Incarnation {
    /// The first start of `label`.
    pub fn first(label: &'static str) -> Incarnation {
        Incarnation { label, n: 1 }
    }

    /// The next start of the same process.
    pub fn next(&self) -> Incarnation {
        Incarnation {
            label: self.label,
            n: self.n + 1,
        }
    }

    /// This incarnation's name for `base` + `ext`: `run.json`, `run.2.json`,
    /// `run-b.json`, `run-b.2.json`.
    pub fn file(&self, base: &str, ext: &str) -> String {
        let pair = self.label.strip_prefix("ctl").unwrap_or("");
        match self.n {
            1 => format!("{base}{pair}.{ext}"),
            n => format!("{base}{pair}.{n}.{ext}"),
        }
    }

    /// Its log: `logs/ctl.log`, `logs/ctl.2.log`, `logs/ctl-b.log`.
    pub fn log(&self) -> String {
        format!("logs/{}", self.file("ctl", "log"))
    }
}

/// A running control process.
#[derive(Debug)]
pub struct Controller {
    pub which: Incarnation,
    pub pid: u32,
    /// Its events, as they come.
    pub events: mpsc::Receiver<Record>,
    /// Tells the thread following the events file to stop.
    stop: Arc<AtomicBool>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts `orbitmesh-ctl run` (`which`) in namespace `ns` on the schedules
/// in `out/schedule` with the wiring at `wiring`, its port watch every 100 ms.
#[allow(clippy::too_many_arguments)]
pub fn start(
    lab: &mut Lab,
    ns: &str,
    ctl_bin: &Path,
    out: &Path,
    wiring: &Path,
    clock: &Clock,
    extra: &[String],
    which: Incarnation,
) -> Result<Controller> {
    let ctl_out = std::fs::File::create(out.join(which.file("run", "json")))?;
    let ctl_log = std::fs::File::create(out.join(which.log()))?;
    let events_path = out.join(which.file("events", "jsonl"));
    // There before the process starts, so that following it never misses
    // its beginning.
    std::fs::File::create(&events_path)?;
    let mut argv = vec![
        ctl_bin.display().to_string(),
        "run".into(),
        "--schedule".into(),
        out.join("schedule").display().to_string(),
        "--wiring".into(),
        wiring.display().to_string(),
        "--start".into(),
        clock.zero.to_string(),
        "--time-scale".into(),
        clock.time_scale.to_string(),
        "--json".into(),
        "--watch-ports".into(),
        "100ms".into(),
        "--events".into(),
        events_path.display().to_string(),
    ];
    argv.extend(extra.iter().cloned());
    let ctl = lab.spawn(which.label, ns, &argv, ctl_out.into(), ctl_log.into())?;
    let pid = ctl.id();
    let stop = Arc::new(AtomicBool::new(false));
    let events = follow(events_path, stop.clone())?;
    Ok(Controller {
        which,
        pid,
        events,
        stop,
    })
}

/// Follows the JSON-lines file at `path` as it grows (like `tail -f`),
/// sending each complete record, until `stop` is set or nobody listens.
/// A line that is not a record is left out (the file is the control
/// process's, written a line at a time).
fn follow(path: PathBuf, stop: Arc<AtomicBool>) -> Result<mpsc::Receiver<Record>> {
    let mut reader = BufReader::new(std::fs::File::open(&path)?);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if let Ok(r) = serde_json::from_str::<Record>(&line) {
                        if tx.send(r).is_err() {
                            return;
                        }
                    }
                    line.clear();
                }
                // At the end for now (maybe mid-line): wait for more.
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return,
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::Incarnation;

    #[test]
    fn every_incarnation_has_files_of_its_own() {
        let a = Incarnation::first("ctl");
        let b = Incarnation::first("ctl-b");
        assert_eq!(a.file("run", "json"), "run.json");
        assert_eq!(a.next().file("run", "json"), "run.2.json");
        assert_eq!(a.next().next().file("events", "jsonl"), "events.3.jsonl");
        assert_eq!(a.log(), "logs/ctl.log");
        assert_eq!(b.file("run", "json"), "run-b.json");
        assert_eq!(b.next().log(), "logs/ctl-b.2.log");
    }
}
