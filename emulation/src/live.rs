//! Part 6 of an emulation: the live view. Until every agent has sent its
//! final report it injects the faults as they fall due, collects the
//! agents' reports and the control process's events (repairs are timed
//! from the fault they answer), and once a second prints a line: delivered and
//! lost packets per pair, any change of predicted path, the FIB versions
//! in force; it also updates the links' delays, reads the host's load
//! ([`host`](super::host)) and stops the run if a dataplane or the control
//! process dies. Rows go by wall time: a tick that comes late (the host
//! stalled us) is one row covering the longer interval, said so, with its
//! rates divided by the interval's length, never a burst of catch-up rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Result};

use super::controller::{Clock, Controller, Incarnation};
use super::dataplanes::{cpu_seconds, set_link_delays, Sockets};
use super::faults::{report_for, FaultEvent};
use super::host::{CpuSplit, HostMeter, HostSample};
use super::in_force::{self, Checker};
use super::lab::Lab;
use super::outages::{Outage, OutageReport, Restarts, Target};
use super::predicted::Predicted;
use super::report::{FaultReport, PairTrace, Sample};
use super::traffic::AgentReport;
use super::{now_ns, Names};
use control::events::Event;
use orbitmesh_core::errln;

/// What the live view saw.
#[derive(Debug, Default)]
pub struct Observed {
    /// Each agent's last report, by station index.
    pub latest: BTreeMap<u16, AgentReport>,
    pub faults: Vec<FaultReport>,
    pub ctl_cpu: f64,
    pub dp_cpu: Vec<f64>,
    /// Ctrl-C (or SIGTERM) ended it.
    pub interrupted: bool,
    /// The process faults, in the order given.
    pub outages: Vec<OutageReport>,
    /// What the control processes did, from their events.
    pub activations: Activations,
    /// Whether each node's FIB in force was its schedule's, read once a
    /// second (`None` with `--one-ahead`).
    pub in_force: Option<Checker>,
    /// Every control process started, and whether it was stopped by
    /// `--kill-controller-at` (and so wrote no report).
    pub controllers: Vec<(Incarnation, bool)>,
    /// The host's load, a reading per tick.
    pub host: Vec<HostSample>,
    /// Where the machine's CPU went from the first tick's interval to the
    /// end of the traffic.
    pub cpu: CpuSplit,
}

/// The scheduled activations and repairs the control processes told of
/// in their events, each (node, version) once however many controllers
/// (a redundant pair, or one started again) told it.
#[derive(Debug, Default)]
pub struct Activations {
    pub verified: BTreeSet<(u32, u64)>,
    pub late: BTreeSet<(u32, u64)>,
    pub repairs: BTreeSet<(u32, u64)>,
    /// Orders a dataplane refused, answers that made no sense.
    pub refused: u64,
}

impl Activations {
    /// Counts `e` if it is an activation, a repair or a refusal.
    pub fn add(&mut self, e: &Event) {
        match *e {
            Event::Verified { node, version } => {
                self.verified.insert((node, version));
            }
            Event::Late { node, version, .. } => {
                self.late.insert((node, version));
            }
            Event::RepairPushed { node, version } => {
                self.repairs.insert((node, version));
            }
            Event::Refused { .. } | Event::Unexpected { .. } => self.refused += 1,
            _ => {}
        }
    }

    /// Late ones that no controller verified later.
    pub fn late_only(&self) -> usize {
        self.late.difference(&self.verified).count()
    }
}

/// The live view's inputs and state.
#[derive(Debug)]
pub struct Live<'a> {
    lab: &'a mut Lab,
    pred: &'a mut Predicted,
    names: &'a Names,
    sockets: &'a Sockets,
    clock: Clock,
    faults: &'a [FaultEvent],
    agents: mpsc::Receiver<AgentReport>,
    /// The control process (`ctl`) and, with `--controllers 2`, `ctl-b`.
    controllers: Vec<Controller>,
    /// CPU seconds of control processes that were stopped, and the last
    /// reading of each running one.
    ctl_cpu_stopped: f64,
    ctl_cpu_last: Vec<f64>,
    dp_pids: Vec<u32>,
    /// Delays last set per link; `None` with `--no-delay`.
    delays: Option<BTreeMap<(u32, u32), u64>>,
    out: &'a Path,
    /// Per pair: (delivered, lost, wall s of the reports they came in) at
    /// the last tick, and the path shown.
    prev: Vec<(u64, u64, f64)>,
    shown_paths: Vec<Option<Vec<u32>>>,
    next_fault: usize,
    outages: &'a [Outage],
    /// (wall ns, outage, start) still to do.
    actions: Vec<(u64, usize, bool)>,
    next_action: usize,
    restarts: Restarts,
    seen: Observed,
    host: HostMeter,
    /// Wall s of the last tick (the next row's interval starts there).
    last_tick_s: f64,
}

impl<'a> Live<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lab: &'a mut Lab,
        pred: &'a mut Predicted,
        names: &'a Names,
        sockets: &'a Sockets,
        clock: Clock,
        faults: &'a [FaultEvent],
        agents: mpsc::Receiver<AgentReport>,
        controllers: Vec<Controller>,
        dp_pids: Vec<u32>,
        delays: Option<BTreeMap<(u32, u32), u64>>,
        out: &'a Path,
        outages: &'a [Outage],
        restarts: Restarts,
    ) -> Live<'a> {
        let n = pred.pairs.len();
        let ctl_cpu_last = vec![0.0; controllers.len()];
        let in_force = restarts
            .window_ns
            .map(|w| Checker::new(&pred.instants, w, clock));
        let seen = Observed {
            controllers: controllers
                .iter()
                .map(|c| (c.which.clone(), false))
                .collect(),
            dp_cpu: vec![0.0; dp_pids.len()],
            outages: outages.iter().map(|o| OutageReport::new(o, 0.0)).collect(),
            in_force,
            ..Default::default()
        };
        let actions = super::outages::actions(outages, |t| clock.to_wall(t));
        let host = HostMeter::start(&dp_pids);
        Live {
            lab,
            pred,
            names,
            sockets,
            clock,
            faults,
            agents,
            controllers,
            ctl_cpu_stopped: 0.0,
            ctl_cpu_last,
            dp_pids,
            delays,
            out,
            prev: vec![(0, 0, 0.0); n],
            shown_paths: vec![None; n],
            next_fault: 0,
            outages,
            actions,
            next_action: 0,
            restarts,
            seen,
            host,
            last_tick_s: 0.0,
        }
    }

    /// Runs until every agent has reported for the last time (or Ctrl-C);
    /// gives what it saw and the control processes, still followed.
    pub fn run(mut self) -> Result<(Observed, Vec<Controller>)> {
        let mut finals = 0;
        let mut next_tick = self.clock.t_start + 1_000_000_000;
        while finals < self.pred.topo.n_gs {
            if crate::os::stop_requested() {
                self.seen.interrupted = true;
                break;
            }
            let now = now_ns();
            self.inject_due_faults(now)?;
            self.inject_due_outages(now)?;
            while let Ok(r) = self.agents.try_recv() {
                if r.is_final {
                    finals += 1;
                }
                let wall = self.clock.wall_s(r.t_ns.max(self.clock.t_start));
                record_latency(&mut self.pred.pairs, &r, wall);
                self.seen.latest.insert(r.id, r);
            }
            self.control_news();
            if now >= next_tick {
                next_tick = next_tick_after(self.clock.t_start, now);
                self.tick(now)?;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.control_news();
        self.seen.cpu = self.host.finish(&self.dp_pids);
        Ok((self.seen, self.controllers))
    }

    /// Takes down (or up) every link whose fault time has come.
    fn inject_due_faults(&mut self, now: u64) -> Result<()> {
        while let Some(f) = self
            .faults
            .get(self.next_fault)
            .filter(|f| self.clock.to_wall(f.at_ns) <= now)
            .copied()
        {
            self.next_fault += 1;
            let (x, y) = f.link;
            let state = if f.up { "up" } else { "down" };
            self.lab.ip_in(
                &self.names.node_ns(x),
                &[format!("link set {} {state}", Names::port(y))],
            )?;
            let wall = self.clock.wall_s(now);
            errln!("   {wall:5.1}s  ** ISL {x}-{y} {state} (injected)");
            let reports = &mut self.seen.faults;
            if f.up {
                if let Some(r) = reports.iter_mut().rev().find(|r| r.link == f.link) {
                    r.restored_at_s = Some(f.at_ns as f64 / 1e9);
                    r.restored_wall_s = Some(wall);
                }
            } else {
                reports.push(report_for(&f, &self.pred.pairs, wall));
            }
        }
        Ok(())
    }

    /// Stops or starts every process whose time has come.
    fn inject_due_outages(&mut self, now: u64) -> Result<()> {
        while let Some(&(_, i, start)) = self.actions.get(self.next_action).filter(|a| a.0 <= now) {
            self.next_action += 1;
            let o = self.outages[i];
            let wall = self.clock.wall_s(now);
            let report = &mut self.seen.outages[i];
            if !start {
                report.wall_s = wall;
                let label = match o.target {
                    Target::Controller => {
                        let c = &self.controllers[0];
                        let last = &mut self.ctl_cpu_last[0];
                        self.ctl_cpu_stopped += cpu_seconds(c.pid).unwrap_or(*last);
                        *last = 0.0;
                        if let Some(k) = self.seen.controllers.iter_mut().find(|k| k.0 == c.which) {
                            k.1 = true;
                        }
                        c.which.label.to_string()
                    }
                    Target::Node(n) => format!("n{n}"),
                };
                let _ = self.lab.stop(&label, Duration::from_secs(1));
                errln!("   {wall:5.1}s  ** {} stopped (injected)", report.what);
                continue;
            }
            if o.target == Target::Controller {
                // What the stopped one wrote before it stopped.
                self.control_news();
            }
            let r = &self.restarts;
            match o.target {
                Target::Controller => {
                    let which = self.controllers[0].which.next();
                    self.controllers[0] = super::controller::start(
                        self.lab,
                        &r.ctl_ns,
                        &r.ctl_bin,
                        self.out,
                        &r.wiring,
                        &self.clock,
                        &r.ctl_extra,
                        which.clone(),
                    )?;
                    self.seen.controllers.push((which, false));
                }
                Target::Node(n) => {
                    let t0 = std::time::Instant::now();
                    let pid = super::dataplanes::spawn_one(
                        self.lab,
                        &self.pred.topo,
                        self.names,
                        &r.dp,
                        self.sockets,
                        self.out,
                        n,
                    )?;
                    self.dp_pids[n as usize] = pid;
                    let after = super::outages::right_fib_after(
                        &self.sockets.of(n),
                        t0,
                        Duration::from_secs(10),
                    );
                    self.seen.outages[i].right_fib_after_ms = after.map(|d| d.as_secs_f64() * 1e3);
                    // Its links' state lived in the process: set it again.
                    let t = self.clock.sched_at(super::now_ns());
                    let gone = r.geometry.gone_at(t);
                    for l in gone.iter().filter(|l| l.0 == n || l.1 == n) {
                        super::geometry::set(self.sockets, *l, true);
                    }
                    if let Some(last) = &mut self.delays {
                        last.retain(|l, _| l.0 != n && l.1 != n);
                    }
                }
            }
            let report = &mut self.seen.outages[i];
            report.back_wall_s = Some(wall);
            report.back_at_s = Some(self.clock.sched_at(now) as f64 / 1e9);
            errln!(
                "   {wall:5.1}s  ** {} started again{}",
                report.what,
                report
                    .right_fib_after_ms
                    .map_or(String::new(), |ms| format!(
                        "; forwarding with the FIB in force after {ms:.0} ms"
                    ))
            );
        }
        Ok(())
    }

    /// The control process's events: a repair is timed from the fault
    /// on a link it found down; what the control process logs is shown,
    /// but for late activations (the summary counts them).
    fn control_news(&mut self) {
        let records: Vec<_> = self
            .controllers
            .iter()
            .flat_map(|c| c.events.try_iter())
            .collect();
        for r in records {
            self.seen.activations.add(&r.event);
            if let Event::LinksDown { links, .. } = &r.event {
                // The control process pushes a repair: time it from the fault.
                let wall = self.clock.wall_s(r.wall_ns.max(self.clock.t_start));
                if let Some(f) = self
                    .seen
                    .faults
                    .iter_mut()
                    .rev()
                    .find(|f| f.repaired_after_s.is_none() && links.contains(&f.link))
                {
                    f.repaired_after_s = Some(wall - f.wall_s);
                }
            }
            if let (false, Some(line)) = (matches!(r.event, Event::Late { .. }), r.event.line()) {
                errln!("          control: {line}");
            }
        }
    }

    /// The once-a-second work: delays, the pairs' line, host, health.
    fn tick(&mut self, now: u64) -> Result<()> {
        let sched_t = self.clock.sched_at(now);
        if let Some(last) = &mut self.delays {
            set_link_delays(&self.pred.net, &self.pred.topo, sched_t, self.sockets, last);
        }
        let wall = self.clock.wall_s(now);
        let host = self.host.read(self.last_tick_s, wall, &self.dp_pids);
        self.seen.host.push(host);
        self.last_tick_s = wall;
        let cells = self.pair_cells(sched_t);
        let topo = &self.pred.topo;
        let mut versions = Vec::new();
        for n in topo.nodes() {
            if let Some(r) = in_force::read(self.sockets, n) {
                versions.push(r.active);
                if let Some(c) = &mut self.seen.in_force {
                    c.during(self.sockets, n, r, wall);
                }
            }
        }
        let (vmin, vmax) = (
            versions.iter().min().copied().unwrap_or(0),
            versions.iter().max().copied().unwrap_or(0),
        );
        errln!(
            "   {:4.0}s {:5.0}s |{}| v{vmin}..v{vmax} ({} of {} answering){}",
            wall,
            sched_t as f64 / 1e9,
            cells.join("|"),
            versions.len(),
            topo.nodes().count(),
            late_note(&host)
        );
        for (c, &pid) in self.seen.dp_cpu.iter_mut().zip(&self.dp_pids) {
            *c = cpu_seconds(pid).unwrap_or(*c);
        }
        // The last reading stays once a process has ended and been reaped.
        for (c, last) in self.controllers.iter().zip(&mut self.ctl_cpu_last) {
            *last = cpu_seconds(c.pid).unwrap_or(*last);
        }
        self.seen.ctl_cpu = self.ctl_cpu_stopped + self.ctl_cpu_last.iter().sum::<f64>();
        self.check_children()
    }

    /// Each pair's delivered and lost packets since the last tick, over
    /// the interval between the agents' reports they came in (recorded in
    /// its trace: reports that queued up while the emulator stalled count
    /// over the time they cover, not as a burst), and a line when its
    /// predicted path changed.
    fn pair_cells(&mut self, sched_t: i64) -> Vec<String> {
        let (start_ns, step_ns) = (self.clock.start_ns, self.pred.step_ns);
        let mut cells = Vec::new();
        for (k, p) in self.pred.pairs.iter_mut().enumerate() {
            let (mut rx, mut lost, mut at_ns) = (0u64, 0u64, 0u64);
            for (me, peer) in [(p.a, p.b), (p.b, p.a)] {
                let Some(r) = self.seen.latest.get(&(me as u16)) else {
                    continue;
                };
                at_ns = at_ns.max(r.t_ns);
                if let Some(f) = r.flows.iter().find(|f| f.src == peer as u16) {
                    rx += f.rx;
                    lost += f.seq_end - f.rx;
                }
            }
            let at_s = self.clock.wall_s(at_ns.max(self.clock.t_start));
            let prev = &mut self.prev[k];
            let sample = (at_s > prev.2 + 1e-3).then(|| Sample {
                from_s: prev.2,
                to_s: at_s,
                delivered: rx - prev.0.min(rx),
                lost: lost.saturating_sub(prev.1),
            });
            if let Some(s) = sample {
                *prev = (rx, lost, at_s);
                p.samples.push(s);
            }
            cells.push(cell(sample.as_ref()));
            let path = p.path_at(sched_t).map(<[u32]>::to_vec);
            if path != self.shown_paths[k] {
                let step = ((sched_t - start_ns) / step_ns).max(0) as usize;
                let step = step.min(p.latency_ms.len().saturating_sub(1));
                let lat = p.latency_ms.get(step).copied().unwrap_or(f64::NAN);
                errln!(
                    "          path {}: {} (predicted {:.1} ms one way)",
                    p.name,
                    path.as_ref().map_or("unreachable".into(), |v| v
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(" > ")),
                    lat
                );
                self.shown_paths[k] = path;
            }
        }
        cells
    }

    /// A dataplane that stopped, or a control process that failed, ends
    /// the run with an error pointing at its log.
    fn check_children(&mut self) -> Result<()> {
        for (label, st) in self.lab.exited() {
            if label.starts_with('n') {
                bail!(
                    "dataplane {label} stopped ({st}) during the run; see {}/logs/{label}.log",
                    self.out.display()
                );
            }
            let ctl = self.controllers.iter().find(|c| c.which.label == label);
            if let (Some(c), false) = (ctl, st.success()) {
                let log = std::fs::read_to_string(self.out.join(c.which.log())).unwrap_or_default();
                bail!(
                    "the control process {label} failed ({st}):\n{}",
                    log.trim_end()
                );
            }
        }
        Ok(())
    }
}

/// The next tick after wall time `now`: the next whole second after the
/// start, however many were missed (no catch-up ticks).
pub fn next_tick_after(t_start: u64, now: u64) -> u64 {
    const S: u64 = 1_000_000_000;
    t_start + (now.saturating_sub(t_start) / S + 1) * S
}

/// A pair's cell of a row: delivered per second over the interval, and
/// the packets lost in it; `None`: no report from its agents since the
/// last row.
pub fn cell(s: Option<&Sample>) -> String {
    match s {
        Some(s) => {
            let rate = s.delivered as f64 / s.secs().max(1e-3);
            format!("{rate:>6.0}/s lost {:>5}", s.lost)
        }
        None => format!("{:>19}", "no new report"),
    }
}

/// What a row says about the host: late (the interval it covers), or
/// overloaded; empty when neither.
pub fn late_note(h: &HostSample) -> String {
    if h.late_s() == 0.0 {
        return if h.overloaded() {
            format!(
                "  <- host overloaded ({:.0}% busy, others {:.0}%)",
                100.0 * h.busy,
                100.0 * h.others
            )
        } else {
            String::new()
        };
    }
    format!(
        "  <- late: this row covers {:.1} s (host {:.0}% busy, others {:.0}%{})",
        h.to_s - h.from_s,
        100.0 * h.busy,
        100.0 * h.others,
        if h.overloaded() { ": overloaded" } else { "" }
    )
}

/// Keeps the median latencies of an agent's report (received by `r.id`
/// from each peer in the second before it) at wall second `wall`.
fn record_latency(pairs: &mut [PairTrace], r: &AgentReport, wall: f64) {
    let me = usize::from(r.id);
    for f in &r.flows {
        let Some(us) = f.recent_p50_us else { continue };
        let (a, b) = (me.min(f.src.into()), me.max(f.src.into()));
        if let Some(p) = pairs.iter_mut().find(|p| (p.a, p.b) == (a, b)) {
            p.measured_ms.push((wall, us / 1e3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::OTHERS_LIMIT;
    use crate::traffic::FlowRx;

    #[test]
    fn ticks_skip_the_seconds_a_stall_missed() {
        let s = 1_000_000_000;
        assert_eq!(next_tick_after(10 * s, 11 * s), 12 * s);
        // Stalled 3.2 s past the tick due at 11 s: the next is at 15 s, not
        // 12, 13, 14 one after the other.
        assert_eq!(next_tick_after(10 * s, 14 * s + s / 5), 15 * s);
        assert_eq!(next_tick_after(10 * s, 5 * s), 11 * s, "before the start");
    }

    #[test]
    fn a_late_row_gives_rates_over_its_interval_and_says_it_is_late() {
        let on_time = Sample {
            from_s: 10.0,
            to_s: 11.0,
            delivered: 400,
            lost: 0,
        };
        assert_eq!(cell(Some(&on_time)), "   400/s lost     0");
        // 3.2 s of traffic in one row: 1280 packets are 400/s, not 1280/s.
        let late = Sample {
            from_s: 11.0,
            to_s: 14.2,
            delivered: 1280,
            lost: 7,
        };
        assert_eq!(cell(Some(&late)), "   400/s lost     7");
        assert_eq!(cell(None), "      no new report");
        assert_eq!(
            cell(None).len(),
            cell(Some(&late)).len(),
            "columns stay aligned"
        );
        let host = |to_s, others| HostSample {
            from_s: 11.0,
            to_s,
            busy: 1.0,
            others,
        };
        assert_eq!(late_note(&host(12.0, 0.1)), "");
        assert_eq!(
            late_note(&host(12.0, 0.9)),
            "  <- host overloaded (100% busy, others 90%)"
        );
        assert_eq!(
            late_note(&host(14.2, 0.9)),
            "  <- late: this row covers 3.2 s (host 100% busy, others 90%: overloaded)"
        );
        assert!(!late_note(&host(14.2, OTHERS_LIMIT / 2.0)).contains("overloaded"));
    }

    #[test]
    fn measured_latency_goes_to_its_pair_at_the_reports_time() {
        let mut pairs = vec![
            PairTrace {
                a: 0,
                b: 1,
                ..Default::default()
            },
            PairTrace {
                a: 1,
                b: 2,
                ..Default::default()
            },
        ];
        let r = AgentReport {
            id: 2,
            flows: vec![FlowRx {
                src: 1,
                recent_p50_us: Some(12_500.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        record_latency(&mut pairs, &r, 7.5);
        assert!(pairs[0].measured_ms.is_empty());
        assert_eq!(pairs[1].measured_ms, vec![(7.5, 12.5)]);
    }
}
