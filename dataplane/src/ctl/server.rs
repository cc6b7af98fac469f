//! The control server: the listening socket (only a stale socket is ever
//! replaced), the connection cap and the eviction of idle connections,
//! timeouts, and one thread per connection reading frames and answering.
//! The same code serves the unix socket and the remote channel
//! (`super::remote`, TCP): it is generic over the stream ([`Conn`],
//! [`Listen`]), and what a peer may ask is the channel's [`Access`].

use super::*;

/// Serves the control socket until `stop` is set and [`wake`] is called,
/// with the default [`Limits`].
pub fn serve(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    serve_with(path, node, stop, Limits::default())
}

/// Removes a socket left at `path` by a run that has ended; refuses a path
/// someone listens on, and anything that is not a socket.
pub(super) fn clear_stale_socket(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(std::io::Error::new(
            ErrorKind::AddrInUse,
            format!("{} is in use by a running dataplane", path.display()),
        )),
        // Nobody listens: a socket left by a previous run.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        // E.g. another user's socket: not ours to remove.
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!(
                "{} exists and cannot be probed ({e}); refusing to replace it",
                path.display()
            ),
        )),
    }
}

/// [`serve`] with the given limits. The listener blocks in accept(), so a
/// request is served at once; each connection is handled on its own
/// thread, at most `limits.max_connections` at a time.
pub fn serve_with(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    serve_shared(path, node, stop, Arc::new(Shared::new(limits)))
}

pub(super) fn serve_shared(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    clear_stale_socket(path)?;
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let access = Access::Local {
        owner: crate::sys::cred::euid(),
    };
    let path = path.to_path_buf();
    accept_loop(
        listener,
        "om-control",
        node,
        stop,
        shared,
        access,
        move || {
            let _ = std::fs::remove_file(&path);
        },
    )
}

/// A stream a control server accepts: the unix socket's or TCP's. Methods
/// take `&self` (both streams read and write through a shared reference),
/// so the accepting thread can shut down a connection another thread
/// serves.
pub trait Conn: Send + Sync + std::fmt::Debug + 'static {
    fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn write_some(&self, buf: &[u8]) -> std::io::Result<usize>;
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
    fn set_write_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()>;
    fn shutdown(&self);
    /// Waits (at most the read timeout) for input without taking it;
    /// `false` at end of file.
    fn wait_for_input(&self) -> std::io::Result<bool>;
    /// Whether input waits, without blocking (see `sys::cred`).
    fn has_pending_input(&self) -> bool;
    /// Who is at the other end.
    fn peer(&self) -> Peer;
}

/// The other end of a control connection.
#[derive(Debug)]
pub enum Peer {
    /// A local process (SO_PEERCRED).
    Process { pid: i32, uid: u32 },
    /// A remote host.
    Host(std::net::SocketAddr),
    /// Not known (the error says why).
    Unknown(std::io::Error),
}

macro_rules! conn_impl {
    ($t:ty, $peer:expr) => {
        impl Conn for $t {
            fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                let mut s = self;
                s.read(buf)
            }
            fn write_some(&self, buf: &[u8]) -> std::io::Result<usize> {
                let mut s = self;
                std::io::Write::write(&mut s, buf)
            }
            fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
                <$t>::set_read_timeout(self, d)
            }
            fn set_write_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
                <$t>::set_write_timeout(self, d)
            }
            fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
                <$t>::set_nonblocking(self, on)
            }
            fn shutdown(&self) {
                let _ = <$t>::shutdown(self, std::net::Shutdown::Both);
            }
            fn wait_for_input(&self) -> std::io::Result<bool> {
                crate::sys::cred::wait_for_input(self)
            }
            fn has_pending_input(&self) -> bool {
                crate::sys::cred::has_pending_input(self)
            }
            fn peer(&self) -> Peer {
                #[allow(clippy::redundant_closure_call)]
                ($peer)(self)
            }
        }
    };
}

conn_impl!(
    UnixStream,
    |s: &UnixStream| match crate::sys::cred::peer_cred(s) {
        Ok((pid, uid, _)) => Peer::Process { pid, uid },
        Err(e) => Peer::Unknown(e),
    }
);
conn_impl!(
    std::net::TcpStream,
    |s: &std::net::TcpStream| match s.peer_addr() {
        Ok(a) => Peer::Host(a),
        Err(e) => Peer::Unknown(e),
    }
);

/// A [`Conn`] as a reader and writer.
pub(super) struct Io<'a>(pub(super) &'a dyn Conn);

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_some(buf)
    }
}

impl std::io::Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_some(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A listening socket a control server accepts [`Conn`]s on.
pub trait Listen: Send + 'static {
    type Conn: Conn;
    fn accept_conn(&self) -> std::io::Result<Self::Conn>;
}

impl Listen for UnixListener {
    type Conn = UnixStream;
    fn accept_conn(&self) -> std::io::Result<UnixStream> {
        self.accept().map(|(s, _)| s)
    }
}

impl Listen for std::net::TcpListener {
    type Conn = std::net::TcpStream;
    fn accept_conn(&self) -> std::io::Result<std::net::TcpStream> {
        let (s, _) = self.accept()?;
        // Replies go out whole at once; no reason to wait for more bytes.
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// What the peers of a channel may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The unix socket: a process of the dataplane's owner (or root) may
    /// ask anything; orders are checked against the trusted keys as usual.
    Local { owner: u32 },
    /// The remote channel (`super::remote`): state changes only as signed
    /// orders; read-only requests when `reads`.
    Remote { reads: bool },
}

/// The accepting thread of a control server: one thread per connection,
/// at most `shared.limits.max_connections`; `on_exit` runs when `stop` is
/// seen (after a wake-up connection).
pub(super) fn accept_loop<L: Listen>(
    listener: L,
    name: &str,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    access: Access,
    on_exit: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let limits = shared.limits;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut refusals = Throttle::new(Duration::from_secs(1));
            loop {
                let conn = listener.accept_conn();
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match conn {
                    Ok(s) => {
                        let s: Arc<dyn Conn> = Arc::new(s);
                        let Some(slot) = shared.admit(&s) else {
                            refuse_busy(&*s, limits.max_connections, &mut refusals);
                            continue;
                        };
                        let node = node.clone();
                        let spawned = std::thread::Builder::new()
                            .name("om-control-conn".into())
                            .spawn(move || connection(&*s, &slot, &node, access));
                        if let Err(e) = spawned {
                            tracing::warn!(error = %e, "control connection dropped: no thread");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            on_exit();
        })
}

/// Wakes a server blocked in accept() so it sees `stop`.
pub fn wake(path: &Path) {
    let _ = UnixStream::connect(path);
}

/// A control server that stops itself: dropped, it sets its stop flag,
/// wakes its listener and waits for it, which removes the socket. Tests,
/// the harness and tools that serve a [`Node`] in-process use this; the
/// dataplane process shares one stop flag with its workers and uses
/// [`serve`].
#[derive(Debug)]
pub struct Server {
    path: std::path::PathBuf,
    node: Arc<Node>,
    pub(super) shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `node` at `path` with the default [`Limits`].
    pub fn start(path: &Path, node: Arc<Node>) -> std::io::Result<Server> {
        Server::start_with(path, node, Limits::default())
    }

    /// Serves `node` at `path` with these limits.
    pub fn start_with(path: &Path, node: Arc<Node>, limits: Limits) -> std::io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::new(limits));
        let thread = serve_shared(path, node.clone(), stop.clone(), shared.clone())?;
        Ok(Server {
            path: path.to_path_buf(),
            node,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.slots().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        wake(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the server's threads share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) limits: Limits,
    pub(super) budget: Budget,
    /// The connections being served, one thread each.
    pub(super) slots: Mutex<Vec<Slot>>,
    /// Signalled when a connection's thread ends.
    pub(super) freed: Condvar,
    pub(super) next_id: AtomicU64,
    /// Frames refused before they could be decoded (garbage, stalls,
    /// over the budget) are logged at most once a second.
    pub(super) frame_log: Mutex<Throttle>,
    /// Held while a reply whose size follows the FIB ([`Request::is_bulk`])
    /// is built and written: such replies go out one at a time, so unread
    /// `show_fib` replies of a million-label FIB (50 MB of JSON each) cannot
    /// pile up in memory, one per connection.
    pub(super) bulk: Mutex<()>,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: u64,
    pub(super) stream: Arc<dyn Conn>,
    /// Since when the connection has waited for a request; `None` while
    /// one is read or handled.
    pub(super) idle_since: Option<Instant>,
    /// Shut down to make room for another connection.
    pub(super) evicted: bool,
}

/// How long the accepting thread waits for an evicted connection's thread
/// to end (it ends at once: its read returns end of file).
pub(super) const EVICTION_WAIT: Duration = Duration::from_secs(1);

impl Shared {
    pub(super) fn new(limits: Limits) -> Shared {
        Shared {
            limits,
            budget: Budget::new(limits.max_buffered),
            slots: Mutex::new(Vec::new()),
            freed: Condvar::new(),
            next_id: AtomicU64::new(0),
            frame_log: Mutex::new(Throttle::new(Duration::from_secs(1))),
            bulk: Mutex::new(()),
        }
    }

    pub(super) fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection. When all are taken, the connection
    /// idle the longest, with no request waiting in its socket, is shut
    /// down to make room, so idle connections cannot keep the owner out.
    /// `None` when every connection is busy with a request.
    pub(super) fn admit(self: &Arc<Self>, stream: &Arc<dyn Conn>) -> Option<SlotGuard> {
        let max = self.limits.max_connections;
        let mut slots = self.slots();
        if slots.len() >= max {
            let ending = slots.iter().any(|c| c.evicted);
            let victim = slots
                .iter_mut()
                .filter(|c| !c.evicted && c.idle_since.is_some())
                .filter(|c| !c.stream.has_pending_input())
                .min_by_key(|c| c.idle_since);
            match victim {
                Some(v) => {
                    v.evicted = true;
                    v.stream.shutdown();
                    tracing::debug!(
                        idle_ms = v.idle_since.map_or(0, |t| t.elapsed().as_millis() as u64),
                        "idle control connection closed to make room for a new one"
                    );
                }
                // One closed earlier is still ending: its place is coming.
                None if ending => {}
                None => return None,
            }
            slots = self
                .freed
                .wait_timeout_while(slots, EVICTION_WAIT, |s| s.len() >= max)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if slots.len() >= max {
                return None;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        slots.push(Slot {
            id,
            stream: stream.clone(),
            idle_since: Some(Instant::now()),
            evicted: false,
        });
        Some(SlotGuard {
            shared: self.clone(),
            id,
        })
    }
}

/// A connection's place among the [`Shared::slots`], freed on drop.
#[derive(Debug)]
pub(super) struct SlotGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u64,
}

impl SlotGuard {
    /// Marks the connection busy with a request; false if it was evicted
    /// meanwhile (its socket is shut down).
    pub(super) fn busy(&self) -> bool {
        let mut slots = self.shared.slots();
        match slots.iter_mut().find(|c| c.id == self.id) {
            Some(c) if !c.evicted => {
                c.idle_since = None;
                true
            }
            _ => false,
        }
    }

    /// Marks the connection idle (waiting for its next request).
    pub(super) fn idle(&self) {
        if let Some(c) = self.shared.slots().iter_mut().find(|c| c.id == self.id) {
            c.idle_since = Some(Instant::now());
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared.slots().retain(|c| c.id != self.id);
        self.shared.freed.notify_all();
    }
}

/// At most one log line per `every`; the events in between are counted
/// and reported with the next.
#[derive(Debug)]
pub(super) struct Throttle {
    pub(super) every: Duration,
    pub(super) last: Option<Instant>,
    pub(super) suppressed: u64,
}

impl Throttle {
    pub(super) fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(events suppressed since the last line)` when a line may be
    /// logged now.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Tells a connection beyond the cap to try again, and closes it (on the
/// accepting thread; the socket is new, so its buffer takes the reply).
pub(super) fn refuse_busy(s: &dyn Conn, max: usize, log: &mut Throttle) {
    if let Some(suppressed) = log.allow(Instant::now()) {
        tracing::warn!(
            max,
            refused_since_last_warning = suppressed,
            "control connection refused: every connection is busy with a request"
        );
    }
    let _ = s.set_nonblocking(true);
    let mut w = Io(s);
    let _ = write_msg(
        &mut w,
        &Response::from(CtlError::TooManyConnections { max }),
    );
}

/// Reads from a socket until a deadline: each read waits at most the time
/// left, so a client trickling bytes cannot stretch a request.
pub(super) struct Deadline<'a> {
    pub(super) s: &'a dyn Conn,
    pub(super) until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.s.set_read_timeout(Some(left))?;
        self.s.read_some(buf)
    }
}

/// Waits up to `timeout` for bytes to read, without taking them: `false`
/// at end of file.
pub(super) fn wait_for_request(s: &dyn Conn, timeout: Duration) -> std::io::Result<bool> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.wait_for_input() {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Whether the peer may use this channel at all: on the unix socket, the
/// dataplane's owner or root; on the remote channel anyone (each request
/// is vetted). `false`: refused (logged, told why).
fn admit_peer(s: &dyn Conn, peer: &Peer, access: Access) -> bool {
    let mut w = Io(s);
    match (access, peer) {
        (Access::Remote { .. }, &Peer::Host(addr)) => {
            tracing::debug!(%addr, "remote control connection");
            true
        }
        (Access::Local { owner }, &Peer::Process { pid, uid }) if uid == owner || uid == 0 => {
            tracing::debug!(pid, uid, "control connection");
            true
        }
        (Access::Local { owner }, &Peer::Process { pid, uid }) => {
            tracing::warn!(
                pid,
                uid,
                owner,
                "control request refused: peer uid is not the dataplane's owner"
            );
            let _ = write_msg(&mut w, &Response::from(CtlError::NotOwner { uid, owner }));
            false
        }
        (_, peer) => {
            tracing::warn!(?peer, "control request refused: peer unknown");
            false
        }
    }
}

pub(super) fn connection(s: &dyn Conn, slot: &SlotGuard, node: &Node, access: Access) {
    let limits = slot.shared.limits;
    let mut w = Io(s);
    let _ = s.set_nonblocking(false);
    let _ = s.set_write_timeout(Some(limits.request_timeout));
    let peer = s.peer();
    if !admit_peer(s, &peer, access) {
        return;
    }
    // Every line logged for this connection's requests (the audit trail of
    // what they changed, and refusals) names where they came from.
    let _source = match peer {
        Peer::Process { pid, uid } => tracing::info_span!("ctl", uid, pid).entered(),
        Peer::Host(addr) => tracing::info_span!("ctl", from = %addr).entered(),
        Peer::Unknown(_) => tracing::info_span!("ctl").entered(),
    };
    loop {
        // Wait for a request to begin, leaving its first byte in the socket
        // so that the connection is never taken for an idle one once it
        // has a request (see Shared::admit).
        match wait_for_request(s, limits.idle_timeout) {
            Ok(true) => {}
            // Closed by the client (done), or evicted.
            Ok(false) => return,
            Err(e) if timed_out(&e) => {
                tracing::debug!("idle control connection closed");
                let idle = CtlError::Idle {
                    timeout: limits.idle_timeout,
                };
                let _ = write_msg(&mut w, &Response::from(idle));
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "control connection failed");
                return;
            }
        }
        if !slot.busy() {
            return;
        }
        let mut r = Deadline {
            s,
            until: Instant::now() + limits.request_timeout,
        };
        let frame = match read_frame_budgeted(&mut r, &slot.shared.budget) {
            Ok(f) => f,
            Err(e) => {
                let logged = slot
                    .shared
                    .frame_log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .allow(Instant::now());
                if let Some(suppressed) = logged {
                    tracing::warn!(
                        reason = %e,
                        refused_since_last_warning = suppressed,
                        "control request refused"
                    );
                }
                let _ = write_msg(&mut w, &Response::from(CtlError::Frame(e)));
                return;
            }
        };
        // Kept until the reply is written (the end of this pass).
        let mut _bulk = None;
        let resp = match decode_request(frame.encoding, &frame.body) {
            Ok(req) => {
                if req.is_bulk() {
                    _bulk = Some(
                        slot.shared
                            .bulk
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
                match access {
                    Access::Remote { reads } => super::remote::vet(node, &req, reads)
                        .map_or_else(Response::from, |()| handle(node, req)),
                    Access::Local { .. } => handle(node, req),
                }
            }
            Err(message) => CtlError::Malformed(message).into(),
        };
        // The payload is given back to the budget before the reply goes
        // out, so a client that has its reply can count on it.
        drop(frame);
        if let Response::Error { message } = &resp {
            tracing::warn!(reason = %loggable(message), "control request refused");
        }
        if write_msg(&mut w, &resp).is_err() {
            return;
        }
        slot.idle();
    }
}

/// Longest refusal reason written to the log, in bytes.
pub(super) const MAX_LOGGED_REASON: usize = 1024;

/// A refusal reason as logged: cut to [`MAX_LOGGED_REASON`] bytes (at a
/// character boundary) with the full length noted. Reasons quote what was
/// sent (a prefix, a port name), and a request may be 256 MiB: every
/// refused request is logged, so uncut, a client could fill the disk.
pub(super) fn loggable(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LOGGED_REASON {
        return message.into();
    }
    let mut end = MAX_LOGGED_REASON;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &message[..end], message.len()).into()
}
