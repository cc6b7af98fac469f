//! The remote control channel: a ground controller reaches a dataplane
//! over the network (TCP, `remote_listen = "ADDR:PORT"` in the
//! configuration or `--remote-listen`; off by default). It speaks the same
//! framed protocol as the unix socket (`orbitmesh_core::protocol`) and is
//! served by the same code with the same limits (connection cap, shared
//! payload budget, idle and request timeouts: `super::server`); only what a
//! peer may ask differs ([`vet`]).
//!
//! A TCP peer has no uid to check, so **every state change must be a signed
//! order**: the listener refuses to start unless the dataplane trusts keys
//! (`trusted_keys`), and on it only `load_schedule` and `clear_schedule`
//! change anything, each verified against the trusted keys, serial and
//! node (`orbitmesh_core::sign`; a refusal is logged and counted as an
//! `order_*` counter). FIB loads, stages, swaps, rollbacks, exchanges and
//! port changes carry no signature and are refused outright on this
//! channel (counted as `order_unsigned`) — they are refused anyway by a
//! dataplane that trusts keys, but the channel does not rely on it.
//!
//! Read-only requests (`version`, `stats`, `show_fib`, `show_schedule`) are
//! served without a signature by default. The choice, argued: a ground
//! controller must be able to read a node's serial, clock state and
//! counters to know what to sign next and to see that an order took effect,
//! also when its signing key lives on another machine than the monitoring;
//! signing reads would need a freshness scheme of its own (a nonce or
//! timestamp per request) to stop replays, for data an eavesdropper on the
//! same path sees anyway (the channel is not encrypted). What an open read
//! gives away is real, though: the FIB and schedule reveal the topology
//! and routes, the counters the traffic. So reads can be closed with
//! `remote_reads = false` (then only signed orders are served, and a
//! controller must remember the serials it issued), and the listener
//! should be bound to a management address only (or reached in-band
//! through the mesh to the node's own address), not to every interface.
//! Confidentiality would take TLS or a tunnel (WireGuard, IPsec) below the
//! channel; authenticity of orders does not depend on it.

use super::*;
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Carries out nothing, or refuses: `Some(refusal)` when `req` may not be
/// served on the remote channel, `None` when it goes on to [`handle`]
/// (which verifies the signature of an order).
pub fn vet(node: &Node, req: &Request, reads: bool) -> Option<Response> {
    let err = |message: String| Some(Response::Error { message });
    match req {
        Request::Version | Request::Stats | Request::ShowFib { .. } | Request::ShowSchedule => {
            if reads {
                None
            } else {
                err("read-only requests are not served on this dataplane's remote channel (remote_reads = false)".into())
            }
        }
        Request::LoadSchedule { .. } | Request::ClearSchedule { .. } => {
            if node.schedule.signed_orders() {
                // Verified (and an unsigned one refused and counted) there.
                None
            } else {
                err("this dataplane trusts no keys: its remote channel takes no orders".into())
            }
        }
        Request::LoadFib { .. }
        | Request::StageFib { .. }
        | Request::Swap
        | Request::Rollback
        | Request::Exchange
        | Request::SetPort { .. }
        | Request::SetPortDelay { .. } => {
            let r = node
                .schedule
                .refuse(orbitmesh_core::sign::Refusal::Unsigned);
            tracing::warn!(node = %node.name, refusal = %r, "remote order refused");
            err(format!(
                "{r}; on the remote channel only signed orders (schedule load, schedule clear) change state"
            ))
        }
    }
}

/// Binds the remote channel at `addr` and serves it until `stop` is set
/// and [`wake_remote`] is called. Refused unless the node trusts keys.
/// Returns the listener's thread and its address (the port chosen when
/// `addr` has port 0).
pub fn serve_remote(
    addr: SocketAddr,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    limits: Limits,
    reads: bool,
) -> std::io::Result<(std::thread::JoinHandle<()>, SocketAddr)> {
    serve_remote_shared(addr, node, stop, Arc::new(Shared::new(limits)), reads)
}

fn serve_remote_shared(
    addr: SocketAddr,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    reads: bool,
) -> std::io::Result<(std::thread::JoinHandle<()>, SocketAddr)> {
    if !node.schedule.signed_orders() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "the remote control channel takes only signed orders: list trusted_keys in the configuration first",
        ));
    }
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let access = Access::Remote { reads };
    let thread = accept_loop(listener, "om-remote", node, stop, shared, access, || {})?;
    Ok((thread, bound))
}

/// Wakes a remote listener blocked in accept() so it sees its stop flag:
/// connects to it (through loopback when it listens on every address).
pub fn wake_remote(bound: SocketAddr) {
    let mut to = bound;
    if to.ip().is_unspecified() {
        to.set_ip(match to {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let _ = TcpStream::connect_timeout(&to, Duration::from_secs(1));
}

/// A remote channel that stops itself when dropped (tests, tools serving
/// a node in-process); the dataplane process uses [`serve_remote`].
#[derive(Debug)]
pub struct RemoteServer {
    addr: SocketAddr,
    pub(super) shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RemoteServer {
    /// Serves `node`'s remote channel at `addr` (port 0: any free port).
    pub fn start(
        addr: SocketAddr,
        node: Arc<Node>,
        limits: Limits,
        reads: bool,
    ) -> std::io::Result<RemoteServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::new(limits));
        let (thread, addr) = serve_remote_shared(addr, node, stop.clone(), shared.clone(), reads)?;
        Ok(RemoteServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.slots().len()
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        wake_remote(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
