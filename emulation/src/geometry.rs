//! Links follow the geometry: at every schedule instant each emulated link
//! carries frames only while the prediction says it exists (an ISL whose
//! line of sight clears the atmosphere, a ground link within range and
//! above the minimum elevation: the same tests the routing uses,
//! `control::predict::routing`), so a node whose FIB is late or frozen
//! loses what it sends on a link that has gone.
//!
//! Mechanism: the dataplanes' emulation layer (`dataplane::delay_line`)
//! drops every frame sent on a gone link and counts it
//! (`SetLinkGone`, counter `emu_link_gone_drops`), rather than `ip link
//! set down` on the veth: a veth down drops carrier, which the dataplane's
//! fast reroute (backup next hops) and the control process's port watch
//! take as a failure and route around at once; that would hide exactly the
//! harm to be measured (a stale FIB) and make every predicted link change a
//! repair. Laser and radio links that go out of range give no carrier
//! signal a node acts on before its schedule does, so the drop is silent.
//!
//! [`plan`] computes every change of every link over the window (the state
//! at each step), [`Follower`] applies them at their wall instants on a
//! thread of its own, to both ends of each link.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use control::predict::coords::Vec3;
use control::predict::Network;

use super::controller::Clock;
use super::dataplanes::Sockets;
use super::{Names, Topology};

/// Every change of the emulated links over the window.
#[derive(Debug, Clone, Default)]
pub struct Geometry {
    /// Links that do not exist at the window's start.
    pub gone_at_start: BTreeSet<(u32, u32)>,
    /// (schedule ns, link, exists) in time order.
    pub changes: Vec<(i64, (u32, u32), bool)>,
}

/// Whether link `(x, y)` exists with the satellites at `pos`.
fn exists(net: &Network, topo: &Topology, pos: &[Vec3], x: u32, y: u32) -> bool {
    if topo.is_gs(y) {
        let gs = &net.stations[y as usize - topo.n_sats];
        let p = pos[x as usize];
        match net.gsl_max_per_sat.get(x as usize) {
            Some(max) => net.gsl.link_within(gs, p, *max).is_some(),
            None => net.gsl.link(gs, p).is_some(),
        }
    } else {
        net.isls.pairs.contains(&(x, y))
            && net.isls.link(pos[x as usize], pos[y as usize]).is_some()
    }
}

/// The links' state at every step of `[start_ns, end_ns)`.
pub fn plan(net: &Network, topo: &Topology, window: (i64, i64), step_ns: i64) -> Geometry {
    let mut g = Geometry::default();
    let mut pos = Vec::new();
    let mut gone = BTreeSet::new();
    let mut t = window.0;
    let mut first = true;
    while t < window.1 {
        if net.propagator.positions_ecef(t, &mut pos).is_ok() {
            for &(x, y) in &topo.links {
                let up = exists(net, topo, &pos, x, y);
                let was_up = !gone.contains(&(x, y));
                if first {
                    if !up {
                        gone.insert((x, y));
                    }
                } else if up != was_up {
                    g.changes.push((t, (x, y), up));
                    if up {
                        gone.remove(&(x, y));
                    } else {
                        gone.insert((x, y));
                    }
                }
            }
            if first {
                g.gone_at_start = gone.clone();
                first = false;
            }
        }
        t += step_ns.max(1);
    }
    g
}

impl Geometry {
    /// The links gone at schedule time `t`.
    pub fn gone_at(&self, t: i64) -> BTreeSet<(u32, u32)> {
        let mut gone = self.gone_at_start.clone();
        for (_, l, up) in self.changes.iter().take_while(|c| c.0 <= t) {
            if *up {
                gone.remove(l);
            } else {
                gone.insert(*l);
            }
        }
        gone
    }
}

/// Sets link `(x, y)` gone or back at both ends; how many ends took it.
pub fn set(sockets: &Sockets, (x, y): (u32, u32), gone: bool) -> usize {
    [(x, y), (y, x)]
        .into_iter()
        .filter(|(n, nb)| {
            matches!(
                orbitmesh_core::protocol::call(
                    &sockets.of(*n),
                    &orbitmesh_core::protocol::Request::SetLinkGone {
                        port: Names::port(*nb),
                        gone,
                    },
                ),
                Ok(orbitmesh_core::protocol::Response::Ok { .. })
            )
        })
        .count()
}

/// The thread applying a [`Geometry`]'s changes at their instants.
#[derive(Debug)]
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Follower {
    /// Sets the start's state now, then follows the changes on the
    /// emulation's clock.
    pub fn start(geo: Geometry, sockets: Sockets, clock: Clock) -> Follower {
        for l in &geo.gone_at_start {
            set(&sockets, *l, true);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut applied = 0;
            for (t, link, up) in geo.changes {
                let at = clock.zero + (t.max(0) as f64 / clock.time_scale) as u64;
                loop {
                    if s.load(Ordering::Relaxed) {
                        return applied;
                    }
                    let now = super::now_ns();
                    if now >= at {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_nanos((at - now).min(50_000_000)));
                }
                set(&sockets, link, !up);
                applied += 1;
            }
            applied
        });
        Follower {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops following; how many changes were applied.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}
