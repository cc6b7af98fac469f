//! Carrying out one decoded [`Request`] against the node: FIB load, stage,
//! swap and rollback (a refused FIB never replaces the running one), the
//! readable FIB, versions, statistics, and port state.

use super::*;

/// Carries out one request against the node.
pub fn handle(node: &Node, req: Request) -> Response {
    let err = |m: String| Response::Error { message: m };
    if changes_forwarding_unsigned(node, &req) && node.schedule.signed_orders() {
        let r = node
            .schedule
            .refuse(orbitmesh_core::sign::Refusal::Unsigned);
        tracing::warn!(node = %node.name, request = request_name(&req), refusal = %r, "order refused");
        return err(format!(
            "{r}; FIB loads, stages, swaps, rollbacks and port changes by hand are not signed orders: send a signed schedule"
        ));
    }
    if changes_the_fib_by_hand(&req) {
        if let Some(s) = node.schedule.current() {
            return err(format!(
                "this node follows a schedule (serial {}); FIB changes by hand would fight it: `orbitmesh-ctl schedule clear` first",
                s.serial
            ));
        }
    }
    match req {
        Request::LoadFib { fib, allow_empty } => match build(node, &fib, allow_empty) {
            Ok(f) => Response::Ok {
                version: node.fib.publish(f),
            },
            Err(e) => err(format!("FIB refused, the running FIB stays: {e}")),
        },
        Request::StageFib {
            fib,
            at_ns,
            allow_empty,
        } => match build(node, &fib, allow_empty) {
            Ok(f) => {
                let v = f.version();
                node.fib.stage(f, at_ns, now_ns());
                Response::Ok { version: v }
            }
            Err(e) => err(format!("FIB refused, the running FIB stays: {e}")),
        },
        Request::Swap => match node.fib.activate_staged() {
            Some(v) => Response::Ok { version: v },
            None => err("no FIB is staged".into()),
        },
        Request::Rollback => {
            // A staged FIB already in force counts as the active one.
            node.fib.promote_due(now_ns());
            match node.fib.rollback() {
                Some(v) => Response::Ok { version: v },
                None => err("no previous FIB to roll back to (a rollback goes back one FIB, once; load or activate another first)".into()),
            }
        }
        Request::Exchange => match node.fib.exchange() {
            Some(v) => Response::Ok { version: v },
            None => err("no previous FIB to exchange with".into()),
        },
        Request::LoadSchedule {
            schedule,
            allow_empty,
            signed,
        } => match node
            .schedule
            .load(node, schedule, allow_empty, signed.as_ref())
        {
            Ok(changed) => {
                tracing::info!(
                    node = %node.name,
                    serial = node.schedule.info(node).serial,
                    "schedule {}",
                    if changed { "accepted" } else { "already held" }
                );
                Response::Schedule(node.schedule.info(node))
            }
            Err(e) => {
                tracing::warn!(node = %node.name, reason = %e, "schedule refused");
                err(format!("schedule refused, the running one stays: {e}"))
            }
        },
        Request::ShowSchedule => Response::Schedule(node.schedule.info(node)),
        Request::ClearSchedule { serial, signed } => {
            match node.schedule.clear(node, serial, signed.as_ref()) {
                Ok(()) => {
                    tracing::info!(node = %node.name, "schedule cleared; the FIB in force stays");
                    Response::Schedule(node.schedule.info(node))
                }
                Err(e) => {
                    tracing::warn!(node = %node.name, reason = %e, "schedule clear refused");
                    err(e.to_string())
                }
            }
        }
        Request::Version => Response::Version(version_info(node)),
        Request::Stats => Response::Stats(stats_info(node)),
        Request::ShowFib { label, prefix } => match show_fib(node, label, prefix.as_deref()) {
            Ok(v) => Response::Fib(Box::new(v)),
            Err(e) => err(e),
        },
        Request::SetLinkGone { port, gone } => match node.port_index(&port) {
            Some(_) if !node.delay_line => err(format!(
                "port {port}: this dataplane has no delay line (emulation only: start it with --delay-line)"
            )),
            Some(i) => {
                node.link_gone[i].store(gone, Ordering::Relaxed);
                Response::Ok {
                    version: node.fib.current().version(),
                }
            }
            None => err(format!("no port named {port}")),
        },
        Request::SetPortDelay { port, delay_ns } => match node.port_index(&port) {
            Some(_) if !node.delay_line => err(format!(
                "port {port}: this dataplane has no delay line (emulation only: start it with --delay-line)"
            )),
            Some(_) if delay_ns > MAX_DELAY_NS => err(format!(
                "delay {delay_ns} ns on {port}: at most {MAX_DELAY_NS} ns (1 s)"
            )),
            Some(i) => {
                node.delay_ns[i].store(delay_ns, Ordering::Relaxed);
                Response::Ok {
                    version: node.fib.current().version(),
                }
            }
            None => err(format!(
                "no port named {port:?} (ports: {})",
                node.port_names.join(", ")
            )),
        },
        Request::SetPort { port, up } => match node.port_index(&port) {
            Some(i) => {
                node.live.set_admin(i, up);
                Response::Ok {
                    version: node.fib.current().version(),
                }
            }
            None => err(format!(
                "no port named {port:?} (ports: {})",
                node.port_names.join(", ")
            )),
        },
    }
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
) -> Result<FibSpec, String> {
    if let Some(l) = label {
        spec.labels.retain(|e| e.label == l);
        spec.routes.clear();
    }
    if let Some(p) = prefix {
        spec.labels.clear();
        if p.contains('/') {
            let want: Prefix = p
                .parse()
                .map_err(|e| format!("{p:?} is not a prefix: {e}"))?;
            spec.routes.retain(|r| r.prefix == want);
        } else {
            let a: std::net::IpAddr = p
                .parse()
                .map_err(|_| format!("{p:?} is neither an address nor a prefix"))?;
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
) -> Result<FibView, String> {
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

pub fn stats_info(node: &Node) -> StatsInfo {
    let c: Counters = node.counters();
    let totals = node.port_totals();
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    StatsInfo {
        node: node.name.clone(),
        now_ns: now,
        fib_version: node.fib.load(now, &g).version(),
        counters: c
            .named()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .chain([
                (
                    "punt_to_host".to_string(),
                    node.punt.delivered.load(Ordering::Relaxed),
                ),
                (
                    "punt_queue_full".to_string(),
                    node.punt.queue_full.load(Ordering::Relaxed),
                ),
                (
                    "punt_write_failed".to_string(),
                    node.punt.write_failed.load(Ordering::Relaxed),
                ),
                (
                    "emu_link_gone_drops".to_string(),
                    node.gone_drops
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .sum(),
                ),
            ])
            .chain(
                node.schedule
                    .refusals()
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v)),
            )
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
        _ => "other",
    }
}
