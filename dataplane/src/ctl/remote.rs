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

/// Carries out nothing, or refuses: `Err(refusal)` when `req` may not be
/// served on the remote channel, `Ok` when it goes on to [`handle`]
/// (which verifies the signature of an order).
pub fn vet(node: &Node, req: &Request, reads: bool) -> Result<(), CtlError> {
    match req {
        Request::Version | Request::Stats | Request::ShowFib { .. } | Request::ShowSchedule => {
            if reads {
                Ok(())
            } else {
                Err(CtlError::ReadsClosed)
            }
        }
        Request::LoadSchedule { .. } | Request::ClearSchedule { .. } => {
            if node.schedule.signed_orders() {
                // Verified (and an unsigned one refused and counted) there.
                Ok(())
            } else {
                Err(CtlError::NoTrustedKeys)
            }
        }
        Request::LoadFib { .. }
        | Request::StageFib { .. }
        | Request::Swap
        | Request::Rollback
        | Request::Exchange
        | Request::SetPort { .. }
        | Request::SetPortDelay { .. }
        | Request::SetLinkGone { .. }
        | Request::ClearCounters => {
            let r = node
                .schedule
                .refuse(orbitmesh_core::sign::Refusal::Unsigned);
            tracing::warn!(node = %node.name, refusal = %r, "remote order refused");
            Err(CtlError::RemoteUnsigned(r))
        }
    }
}

/// A running remote channel's listener: [`Remote::join`] after its stop
/// flag is set.
#[derive(Debug)]
pub struct Remote {
    listener: Arc<TcpListener>,
    addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl Remote {
    /// The address it listens on (the port chosen when it was 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wakes the listener (its stop flag must be set) and waits for it.
    /// Connections being served end on their own (timeouts).
    pub fn join(self) {
        if let Err(e) = crate::sys::cred::shutdown_listener(&*self.listener) {
            tracing::warn!(error = %e, "remote control channel: cannot shut the listener down");
        }
        let _ = self.thread.join();
    }
}

impl Listen for Arc<TcpListener> {
    type Conn = TcpStream;
    fn accept_conn(&self) -> std::io::Result<TcpStream> {
        (**self).accept_conn()
    }
}

/// Binds the remote channel at `addr` and serves it until `stop` is set
/// and [`Remote::join`] is called. Refused unless the node trusts keys.
pub fn serve_remote(
    addr: SocketAddr,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    limits: Limits,
    reads: bool,
) -> std::io::Result<Remote> {
    serve_remote_shared(addr, node, stop, Arc::new(Shared::new(limits)), reads)
}

fn serve_remote_shared(
    addr: SocketAddr,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    reads: bool,
) -> std::io::Result<Remote> {
    if !node.schedule.signed_orders() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "the remote control channel takes only signed orders: list trusted_keys in the configuration first",
        ));
    }
    let listener = Arc::new(TcpListener::bind(addr)?);
    let bound = listener.local_addr()?;
    let access = Access::Remote { reads };
    let l = listener.clone();
    let thread = accept_loop(l, "om-remote", node, stop, shared, access, || {})?;
    Ok(Remote {
        listener,
        addr: bound,
        thread,
    })
}

/// A remote channel that stops itself when dropped (tests, tools serving
/// a node in-process); the dataplane process uses [`serve_remote`].
#[derive(Debug)]
pub struct RemoteServer {
    pub(super) shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    remote: Option<Remote>,
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
        let remote = serve_remote_shared(addr, node, stop.clone(), shared.clone(), reads)?;
        Ok(RemoteServer {
            shared,
            stop,
            remote: Some(remote),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.remote.as_ref().expect("serving until dropped").addr
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.slots().len()
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.remote.take() {
            r.join();
        }
    }
}
