//! Reading one control frame: the header checks (magic, version, encoding,
//! reserved bytes, length) before any payload is read, the shared byte
//! [`Budget`] a payload reserves, and a payload buffer that grows only as
//! bytes arrive. Errors are typed ([`FrameError`]).

use super::*;

/// Why a frame could not be read. The messages are what a refused client
/// is told; the server tells "the request", being the one that reads them.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection before a frame began (a client done).
    #[error("connection closed before a message began")]
    Closed,
    /// Nothing arrived within the read timeout.
    #[error("timed out waiting for a message")]
    Idle,
    #[error("connection closed {got} bytes into the {HEADER_LEN}-byte header")]
    ClosedInHeader { got: usize },
    #[error("timed out waiting for the rest of the request (header: {got} of {HEADER_LEN} bytes received)")]
    TimeoutInHeader { got: usize },
    #[error("connection closed after {got} of the {len}-byte payload")]
    ClosedInPayload { got: usize, len: usize },
    #[error(
        "timed out waiting for the rest of the request (payload: {got} of {len} bytes received)"
    )]
    TimeoutInPayload { got: usize, len: usize },
    #[error("not an orbitmesh control message (bad magic)")]
    BadMagic,
    #[error("protocol version {0} not supported (this dataplane speaks 1 and {VERSION})")]
    Version(u8),
    #[error("protocol version 1 carries JSON only (binary FIBs need version 2)")]
    BinaryInVersion1,
    #[error("payload encoding {0} not supported (0 JSON, 1 binary FIB)")]
    Encoding(u8),
    #[error("reserved header bytes must be zero, got {0:#04x} {1:#04x}")]
    Reserved(u8, u8),
    #[error("message of {len} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLarge { len: usize },
    #[error(
        "message of {len} bytes does not fit the control socket's buffer \
         ({free} of {total} bytes free while other requests are read); try again"
    )]
    OverBudget {
        len: usize,
        free: usize,
        total: usize,
    },
    #[error("reading: {0}")]
    Io(#[source] std::io::Error),
}

impl FrameError {
    /// A timeout at any point of the frame.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            FrameError::Idle
                | FrameError::TimeoutInHeader { .. }
                | FrameError::TimeoutInPayload { .. }
        )
    }
}

/// A read that gave up because of a socket timeout (SO_RCVTIMEO reports
/// EAGAIN, i.e. `WouldBlock`).
pub fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Payload bytes buffered across connections: a frame reserves its length
/// before its payload is read ([`read_frame_budgeted`]) and gives it back
/// when the [`Frame`] is dropped.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    used: AtomicUsize,
}

impl Budget {
    pub const fn new(total: usize) -> Budget {
        Budget {
            total,
            used: AtomicUsize::new(0),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved by frames being read or handled.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or says how many are free.
    fn reserve(&self, bytes: usize) -> Result<Grant<'_>, usize> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let free = self.total.saturating_sub(used);
            if bytes > free {
                return Err(free);
            }
            match self.used.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Grant {
                        budget: self,
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }
}

/// Bytes reserved from a [`Budget`], given back on drop.
#[derive(Debug)]
pub(super) struct Grant<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A frame read within a [`Budget`]; its bytes stay reserved until it is
/// dropped.
#[derive(Debug)]
pub struct Frame<'a> {
    pub encoding: u8,
    pub body: Vec<u8>,
    _grant: Grant<'a>,
}

/// Fills `buf` from `r`: the bytes read, and why it stopped short (`Ok`
/// for end of file).
pub(super) fn fill(r: &mut impl Read, buf: &mut [u8]) -> (usize, std::io::Result<()>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
    (got, Ok(()))
}

/// Reads and checks a header: (encoding, payload length).
pub(super) fn read_header(r: &mut impl Read) -> Result<(u8, usize), FrameError> {
    let mut hdr = [0u8; HEADER_LEN];
    match fill(r, &mut hdr) {
        (HEADER_LEN, _) => {}
        (0, Ok(())) => return Err(FrameError::Closed),
        (0, Err(e)) if timed_out(&e) => return Err(FrameError::Idle),
        (got, Ok(())) => return Err(FrameError::ClosedInHeader { got }),
        (got, Err(e)) if timed_out(&e) => return Err(FrameError::TimeoutInHeader { got }),
        (_, Err(e)) => return Err(FrameError::Io(e)),
    }
    if &hdr[..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if hdr[4] == 0 || hdr[4] > VERSION {
        return Err(FrameError::Version(hdr[4]));
    }
    match (hdr[4], hdr[5]) {
        (_, ENC_JSON) | (2.., ENC_BINARY_FIB) => {}
        (1, ENC_BINARY_FIB) => return Err(FrameError::BinaryInVersion1),
        (_, e) => return Err(FrameError::Encoding(e)),
    }
    if hdr[6..8] != [0, 0] {
        return Err(FrameError::Reserved(hdr[6], hdr[7]));
    }
    let len = u32::from_be_bytes(hdr[8..].try_into().expect("4 bytes")) as usize;
    if len > MAX_MESSAGE {
        return Err(FrameError::TooLarge { len });
    }
    Ok((hdr[5], len))
}

/// The payload buffer's first size; it doubles as bytes arrive, up to the
/// announced length, so memory follows what was received, not what was
/// announced.
pub const FIRST_CHUNK: usize = 64 << 10;

/// Reads a `len`-byte payload. No allocation exceeds `len`; the buffer is
/// at most twice what has arrived (and [`FIRST_CHUNK`] before that).
pub(super) fn read_body(r: &mut impl Read, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::new();
    let mut got = 0;
    while got < len {
        if got == body.len() {
            let grow = body.len().max(FIRST_CHUNK).min(len - body.len());
            body.reserve_exact(grow);
            body.resize(body.len() + grow, 0);
        }
        match r.read(&mut body[got..]) {
            Ok(0) => return Err(FrameError::ClosedInPayload { got, len }),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => return Err(FrameError::TimeoutInPayload { got, len }),
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(body)
}

/// Reads one frame's payload, refusing bad headers and sizes (see
/// [`read_frame_enc`]); the error as text.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, String> {
    read_frame_enc(r).map(|(_, b)| b).map_err(|e| e.to_string())
}

/// Reads one frame: (encoding, payload). The header is checked before the
/// payload is read; payloads up to [`MAX_MESSAGE`] are taken, read as they
/// arrive (see [`read_body`]).
pub fn read_frame_enc(r: &mut impl Read) -> Result<(u8, Vec<u8>), FrameError> {
    let (encoding, len) = read_header(r)?;
    Ok((encoding, read_body(r, len)?))
}

/// Reads one frame as [`read_frame_enc`] does, once its announced length is
/// reserved from `budget`; a frame that does not fit is refused before its
/// payload is read. What the server uses: the memory held by the payloads
/// of all connections together stays within the budget.
pub fn read_frame_budgeted<'b>(
    r: &mut impl Read,
    budget: &'b Budget,
) -> Result<Frame<'b>, FrameError> {
    let (encoding, len) = read_header(r)?;
    let grant = budget.reserve(len).map_err(|free| FrameError::OverBudget {
        len,
        free,
        total: budget.total(),
    })?;
    Ok(Frame {
        encoding,
        body: read_body(r, len)?,
        _grant: grant,
    })
}
