//! Carrying out one decoded [`Request`] against the node: FIB load, stage,
//! swap and rollback (a refused FIB never replaces the running one), the
//! readable FIB, versions, statistics, and port state.

use super::*;
use orbitmesh_core::schedule::Schedule;
use orbitmesh_core::sign::Signed;

/// Carries out one request against the node; a refusal becomes the
/// `Error` reply its client is told.
pub fn handle(node: &Node, req: Request) -> Response {
    execute(node, req).unwrap_or_else(Response::from)
}

/// Carries out one request against the node: the reply, or why it was
/// refused. Changes by hand are vetted first ([`vet_by_hand`]); then one
/// arm per request, each read-only or one function.
pub fn execute(node: &Node, req: Request) -> Result<Response, CtlError> {
    vet_by_hand(node, &req)?;
    let version = |v| Ok(Response::Ok { version: v });
    match req {
        // Read-only.
        Request::Version => Ok(Response::Version(version_info(node))),
        Request::Stats => Ok(Response::Stats(stats_info(node))),
        Request::ClearCounters => {
            let raw = raw_stats(node);
            *node
                .stats_baseline
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(raw);
            tracing::info!(node = %node.name, "stats counters cleared (the metrics endpoint keeps its totals)");
            version(node.fib.current().version())
        }
        Request::ShowFib { label, prefix } => {
            let view = show_fib(node, label, prefix.as_deref())?;
            Ok(Response::Fib(Box::new(view)))
        }
        Request::ShowSchedule => Ok(Response::Schedule(node.schedule.info(node))),
        // The FIB by hand.
        Request::LoadFib { fib, allow_empty } => {
            let f = build(node, &fib, allow_empty).map_err(CtlError::Fib)?;
            let replaced = node.fib.current().version();
            let v = node.fib.publish(f);
            tracing::info!(node = %node.name, version = v, replaced, "FIB loaded and active");
            version(v)
        }
        Request::StageFib {
            fib,
            at_ns,
            allow_empty,
        } => {
            let f = build(node, &fib, allow_empty).map_err(CtlError::Fib)?;
            let v = f.version();
            let replaced_staged = node.fib.staged().map(|s| s.fib.version());
            node.fib.stage(f, at_ns, now_ns());
            tracing::info!(
                node = %node.name,
                version = v,
                at_ns,
                active = node.fib.current().version(),
                replaced_staged,
                "FIB staged"
            );
            version(v)
        }
        Request::Swap => {
            let replaced = node.fib.current().version();
            let v = node.fib.activate_staged().ok_or(CtlError::NothingStaged)?;
            tracing::info!(node = %node.name, version = v, replaced, "staged FIB swapped in");
            version(v)
        }
        Request::Rollback => {
            // A staged FIB already in force counts as the active one.
            node.fib.promote_due(now_ns());
            let from = node.fib.current().version();
            let dropped_staged = node.fib.staged().map(|s| s.fib.version());
            let v = node.fib.rollback().ok_or(CtlError::NoRollback)?;
            tracing::info!(node = %node.name, version = v, from, dropped_staged, "FIB rolled back");
            version(v)
        }
        Request::Exchange => version(node.fib.exchange().ok_or(CtlError::NoExchange)?),
        // Orders.
        Request::LoadSchedule {
            schedule,
            allow_empty,
            signed,
        } => load_schedule(node, schedule, allow_empty, signed.as_ref()),
        Request::ClearSchedule { serial, signed } => clear_schedule(node, serial, signed.as_ref()),
        // Ports.
        Request::SetPort { port, up } => {
            node.live.set_admin(port_index(node, &port)?, up);
            let admin = if up { "up" } else { "down" };
            tracing::info!(node = %node.name, %port, up, "port administratively {admin}");
            version(node.fib.current().version())
        }
        Request::SetPortDelay { port, delay_ns } => {
            set_port_delay(node, &port, delay_ns)?;
            tracing::info!(node = %node.name, %port, delay_ms = delay_ns as f64 / 1e6, "port delay set");
            version(node.fib.current().version())
        }
        Request::SetLinkGone { port, gone } => {
            node.link_gone[delay_line_port(node, &port)?].store(gone, Ordering::Relaxed);
            tracing::info!(node = %node.name, %port, gone, "emulated link changed");
            version(node.fib.current().version())
        }
    }
}

/// Refuses a change by hand (of the FIB or a port) on a dataplane that
/// takes only signed orders (counted), and a FIB change by hand on one
/// that follows a schedule.
fn vet_by_hand(node: &Node, req: &Request) -> Result<(), CtlError> {
    if changes_forwarding_unsigned(node, req) && node.schedule.signed_orders() {
        let r = node
            .schedule
            .refuse(orbitmesh_core::sign::Refusal::Unsigned);
        tracing::warn!(node = %node.name, request = request_name(req), refusal = %r, "order refused");
        return Err(CtlError::Unsigned(r));
    }
    if changes_the_fib_by_hand(req) {
        if let Some(s) = node.schedule.current() {
            return Err(CtlError::FollowsSchedule { serial: s.serial });
        }
    }
    Ok(())
}

/// A schedule order: accepted (or already held) and logged, or refused
/// and logged.
fn load_schedule(
    node: &Node,
    schedule: Schedule,
    allow_empty: bool,
    signed: Option<&Signed>,
) -> Result<Response, CtlError> {
    match node.schedule.load(node, schedule, allow_empty, signed) {
        Ok(changed) => {
            tracing::info!(
                node = %node.name,
                serial = node.schedule.info(node).serial,
                "schedule {}",
                if changed { "accepted" } else { "already held" }
            );
            Ok(Response::Schedule(node.schedule.info(node)))
        }
        Err(e) => {
            tracing::warn!(node = %node.name, reason = %e, "schedule refused");
            Err(CtlError::Schedule(e))
        }
    }
}

/// An order to drop the schedule (the FIB in force stays).
fn clear_schedule(
    node: &Node,
    serial: Option<u64>,
    signed: Option<&Signed>,
) -> Result<Response, CtlError> {
    match node.schedule.clear(node, serial, signed) {
        Ok(()) => {
            tracing::info!(node = %node.name, "schedule cleared; the FIB in force stays");
            Ok(Response::Schedule(node.schedule.info(node)))
        }
        Err(e) => {
            tracing::warn!(node = %node.name, reason = %e, "schedule clear refused");
            Err(CtlError::Clear(e))
        }
    }
}

/// The emulation's one-way delay on a port, at most [`MAX_DELAY_NS`].
fn set_port_delay(node: &Node, port: &str, delay_ns: u64) -> Result<(), CtlError> {
    let i = delay_line_port(node, port)?;
    if delay_ns > MAX_DELAY_NS {
        return Err(CtlError::DelayTooLong {
            port: port.into(),
            delay_ns,
        });
    }
    node.delay_ns[i].store(delay_ns, Ordering::Relaxed);
    Ok(())
}

/// The index of the port named `port`.
fn port_index(node: &Node, port: &str) -> Result<usize, CtlError> {
    node.port_index(port).ok_or_else(|| CtlError::NoSuchPort {
        port: port.into(),
        ports: node.port_names.clone(),
    })
}

/// The index of the port named `port`, on a dataplane with a delay line
/// (the emulation's link changes).
fn delay_line_port(node: &Node, port: &str) -> Result<usize, CtlError> {
    let i = port_index(node, port)?;
    if !node.delay_line {
        return Err(CtlError::NoDelayLine { port: port.into() });
    }
    Ok(i)
}

/// Validates a FIB for this node: complete, and not empty unless allowed.
pub(super) fn build(
    node: &Node,
    fib: &FibSpec,
    allow_empty: bool,
) -> Result<orbitmesh_core::fib::FibSnapshot, orbitmesh_core::fib::FibError> {
    fib.check_not_empty(allow_empty)?;
    node.build_fib(fib)
}

/// Keeps only the label, or the route for a prefix / address, asked for.
pub(super) fn filter(
    mut spec: FibSpec,
    label: Option<u32>,
    prefix: Option<&str>,
) -> Result<FibSpec, CtlError> {
    if let Some(l) = label {
        spec.labels.retain(|e| e.label == l);
        spec.routes.clear();
    }
    if let Some(p) = prefix {
        spec.labels.clear();
        if p.contains('/') {
            let want: Prefix = p.parse().map_err(|error| CtlError::NotAPrefix {
                text: p.into(),
                error,
            })?;
            spec.routes.retain(|r| r.prefix == want);
        } else {
            let a: std::net::IpAddr = p
                .parse()
                .map_err(|_| CtlError::NotAnAddress { text: p.into() })?;
            // Longest match, as the dataplane would choose it.
            let best = spec
                .routes
                .iter()
                .filter(|r| r.prefix.contains(a))
                .max_by_key(|r| r.prefix.length())
                .cloned();
            spec.routes = best.into_iter().collect();
        }
    }
    Ok(spec)
}

pub(super) fn show_fib(
    node: &Node,
    label: Option<u32>,
    prefix: Option<&str>,
) -> Result<FibView, CtlError> {
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    let active = node.fib.load(now, &g);
    let spec = FibSpec::from_snapshot(active, &node.port_names);
    let staged = match node.fib.staged() {
        Some(s) if s.at > now => {
            let st = FibSpec::from_snapshot(&s.fib, &node.port_names);
            Some((filter(st, label, prefix)?, s.at))
        }
        _ => None,
    };
    Ok(FibView {
        active: filter(spec, label, prefix)?,
        staged,
        previous_version: node.fib.previous().map(|p| p.version()),
    })
}

pub fn version_info(node: &Node) -> VersionInfo {
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    VersionInfo {
        active: node.fib.load(now, &g).version(),
        staged: node.fib.staged().map(|s| (s.fib.version(), s.at)),
        previous: node.fib.previous().map(|p| p.version()),
        workers: node
            .workers
            .iter()
            .map(|w| w.fib_version.load(Ordering::Relaxed))
            .collect(),
        clock_synchronized: crate::sys::clock::synchronized(),
    }
}

/// The counters as `stats` shows them: since the last `ClearCounters`,
/// or since start.
pub fn stats_info(node: &Node) -> StatsInfo {
    let raw = raw_stats(node);
    let base = node
        .stats_baseline
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match base.as_ref() {
        Some(b) => since(raw, b),
        None => raw,
    }
}

/// `raw` counted from `base` (same node, same ports, taken earlier).
fn since(mut raw: StatsInfo, base: &StatsInfo) -> StatsInfo {
    raw.counters = raw
        .counters
        .known()
        .iter()
        .map(|&(c, v)| (c, v.saturating_sub(base.counters.get(c))))
        .collect();
    for (p, b) in raw.ports.iter_mut().zip(&base.ports) {
        p.counters = p.counters.since(&b.counters);
    }
    // A fast path that started after the clear counts from 0.
    if let Some(f) = raw.fast_path.as_mut() {
        **f = f.since(base.fast_path.as_deref().unwrap_or(&Default::default()));
    }
    raw.cleared_at_ns = Some(base.now_ns);
    raw
}

/// Every counter's total since the dataplane started.
pub fn raw_stats(node: &Node) -> StatsInfo {
    let c: Counters = node.counters();
    let totals = node.port_totals();
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    StatsInfo {
        node: node.name.clone(),
        now_ns: now,
        fib_version: node.fib.load(now, &g).version(),
        counters: Counter::ALL
            .into_iter()
            .map(|k| (k, counter(node, &c, k)))
            .collect(),
        ports: node
            .port_names
            .iter()
            .enumerate()
            .map(|(i, n)| PortInfo {
                name: n.clone(),
                carrier: node.live.carrier(i),
                admin_up: node.live.admin(i),
                gone: node.live.gone(i),
                counters: totals[i],
            })
            .collect(),
        cleared_at_ns: None,
        fast_path: node.fast.load().map(Box::new),
        fast_path_off: node.fast.off(),
    }
}

/// One counter's value: from the workers' sum `c`, or the node's own.
fn counter(node: &Node, c: &Counters, k: Counter) -> u64 {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    match k {
        Counter::Rx => c.rx,
        Counter::Forwarded => c.forwarded,
        Counter::BackupUsed => c.backup_used,
        Counter::Drop(r) => c.drop_count(r),
        Counter::Punt(r) => c.punt_count(r),
        Counter::PuntToHost => load(&node.punt.delivered),
        Counter::PuntQueueFull => load(&node.punt.queue_full),
        Counter::PuntWriteFailed => load(&node.punt.write_failed),
        Counter::EmuLinkGoneDrops => node.gone_drops.iter().map(load).sum(),
        Counter::Order(r) => node.schedule.refused(r),
    }
}

/// Requests that change the FIB outside a schedule.
fn changes_the_fib_by_hand(req: &Request) -> bool {
    matches!(
        req,
        Request::LoadFib { .. }
            | Request::StageFib { .. }
            | Request::Swap
            | Request::Rollback
            | Request::Exchange
    )
}

/// Requests that change forwarding and carry no signature: refused by a
/// dataplane that takes only signed orders.
///
/// Except, on a dataplane started with `--delay-line` (emulation only), a
/// link's delay and its being gone (`set_port_delay`, `set_link_gone`):
/// there they stand for physics the emulator imposes (propagation delay,
/// a link out of sight), not orders a controller gives, and the emulator
/// sets them every second on its own. They still come only from the
/// owner's uid on the unix socket (the remote channel refuses them before
/// this, `super::remote::vet`); a dataplane without a delay line refuses
/// them as unsigned, so nothing is opened on a real node.
fn changes_forwarding_unsigned(node: &Node, req: &Request) -> bool {
    match req {
        Request::SetPortDelay { .. } | Request::SetLinkGone { .. } => !node.delay_line,
        Request::SetPort { .. } => true,
        _ => changes_the_fib_by_hand(req),
    }
}

/// A request's name for logs.
fn request_name(req: &Request) -> &'static str {
    match req {
        Request::LoadFib { .. } => "load_fib",
        Request::StageFib { .. } => "stage_fib",
        Request::Swap => "swap",
        Request::Rollback => "rollback",
        Request::Exchange => "exchange",
        Request::SetPort { .. } => "set_port",
        Request::SetPortDelay { .. } => "set_port_delay",
        Request::SetLinkGone { .. } => "set_link_gone",
        Request::ClearCounters => "clear_counters",
        _ => "other",
    }
}
