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

/// The running control process.
#[derive(Debug)]
pub struct Controller {
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

/// Starts `orbitmesh-ctl run` in namespace `ns` on the schedules in
/// `out/schedule` with the wiring at `wiring`, its port watch every 100 ms.
pub fn start(
    lab: &mut Lab,
    ns: &str,
    ctl_bin: &Path,
    out: &Path,
    wiring: &Path,
    clock: &Clock,
    extra: &[String],
) -> Result<Controller> {
    let ctl_out = std::fs::File::create(out.join("run.json"))?;
    let ctl_log = std::fs::File::create(out.join("logs/ctl.log"))?;
    let events_path = out.join("events.jsonl");
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
    let ctl = lab.spawn("ctl", ns, &argv, ctl_out.into(), ctl_log.into())?;
    let pid = ctl.id();
    let stop = Arc::new(AtomicBool::new(false));
    let events = follow(events_path, stop.clone())?;
    Ok(Controller { pid, events, stop })
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
