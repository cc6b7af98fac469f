//! Part 4 of an emulation: the control process, `orbitmesh-ctl run` in the
//! first node's namespace, driving every dataplane's schedule with
//! schedule time `start_ns` at wall time `t_start` (a couple of seconds
//! from now) and the whole run `time_scale` times faster than real time.
//! Its report goes to `OUT/run.json`, its log to `OUT/logs/ctl.log` and,
//! line by line, to the live view.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;

use anyhow::{anyhow, Result};

use super::lab::Lab;
use super::{now_ns, Names};

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
    /// Its log lines, as they come.
    pub lines: mpsc::Receiver<String>,
}

/// Starts `orbitmesh-ctl run` on the schedules in `out/schedule` with the
/// wiring at `wiring`, its port watch every 100 ms.
pub fn start(
    lab: &mut Lab,
    names: &Names,
    ctl_bin: &Path,
    out: &Path,
    wiring: &Path,
    clock: &Clock,
) -> Result<Controller> {
    let ctl_out = std::fs::File::create(out.join("run.json"))?;
    let argv = [
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
    ];
    let ctl = lab
        .spawn(
            "ctl",
            &names.node_ns(0),
            &argv,
            ctl_out.into(),
            Stdio::piped(),
        )
        .map_err(|e| anyhow!(e))?;
    let pid = ctl.id();
    let stderr = ctl.stderr.take().expect("piped");
    let (tx, lines) = mpsc::channel::<String>();
    let mut log = std::fs::File::create(out.join("logs/ctl.log"))?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            let _ = tx.send(format!("control: {line}"));
        }
    });
    Ok(Controller { pid, lines })
}
