//! The dataplane process's housekeeping: what its main thread does every
//! [`TICK`] while the workers forward. It follows the ports' carrier and
//! interfaces ([`PortWatch`]), promotes a staged FIB once its activation
//! instant has passed, reclaims retired snapshots, keeps the XDP fast
//! path's liveness, staged instant and counters current
//! ([`FastPublisher::tick`]), and watches the workers' health: a worker
//! that stopped ends the process.
//!
//! Beside [`crate::watch`] rather than in it: the port watcher is one
//! concern with its own tests (carrier, interfaces that go away); this
//! loop only sequences it with the FIB's and the workers' upkeep.

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::fast_publish::FastPublisher;
use crate::shared::Node;
use crate::sys::signal;
use crate::watch::PortWatch;
use orbitmesh_core::time::now_ns;

/// How often the housekeeping runs: how soon a carrier change is seen
/// (readers use a staged FIB at its instant whether or not it has been
/// promoted yet).
pub const TICK: Duration = Duration::from_millis(20);

/// Runs until SIGINT/SIGTERM or until a worker stops; returns the index
/// of a worker that stopped.
pub fn run(
    ports: &mut PortWatch,
    node: &Node,
    workers: &[JoinHandle<()>],
    fast: Option<&Mutex<FastPublisher>>,
) -> Option<usize> {
    let control = fast.map(|f| f.lock().unwrap_or_else(|e| e.into_inner()).control());
    let mut fast_failed = false;
    while !signal::stop_requested() {
        ports.tick(&node.live);
        node.fib.promote_due(now_ns());
        node.fib.reclaim();
        if let (Some(f), Some(control)) = (fast, &control) {
            control.set_live(node.live.mask());
            match control.counters() {
                Ok(c) => {
                    node.fast.store(&c, node.port_names.len());
                    fast_failed = false;
                }
                Err(e) if !fast_failed => {
                    fast_failed = true;
                    tracing::warn!(error = %e, "reading the XDP fast path's counters failed");
                }
                Err(_) => {}
            }
            // Busy writing a FIB: next tick.
            if let Ok(mut p) = f.try_lock() {
                p.tick();
                node.fast.set_off(p.off_reason());
            }
        }
        if let Some(i) = workers.iter().position(|w| w.is_finished()) {
            return Some(i);
        }
        std::thread::sleep(TICK);
    }
    None
}
