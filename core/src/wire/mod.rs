//! Wire formats as typed, zero-copy views over bytes, in the smoltcp style.
//!
//! Each protocol has its own module with a `mod field` naming byte ranges once,
//! a view `Packet<T: AsRef<[u8]>>` (or `Frame<T>`) whose getters read fields in
//! place and whose setters (on `T: AsMut<[u8]>`) rewrite them in place, a checked
//! constructor that validates lengths before any getter can index out of range,
//! and a small owned `Repr` with `parse`/`emit` for the slow path and for tests.
//! Fixed headers are declared once more as `zerocopy` structs so their layout is
//! checked by the compiler.
//!
//! Covered: Ethernet II with an optional 802.1Q tag (IEEE 802.1Q), MPLS label
//! stack entries (RFC 3032, reserved labels per RFC 7274, entropy labels per
//! RFC 6790), IPv4 (RFC 791, incremental checksum per RFC 1624), IPv6 (RFC 8200)
//! and the TCP/UDP/SCTP port pair used for flow hashing; [`checksum`] is the
//! one Internet checksum (RFC 1071) they and the bench generator use.
//!
//! Malformed input is reported as a [`WireError`]; nothing here panics on
//! untrusted bytes.

pub mod checksum;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod mpls;

/// What is wrong with a frame or header handed to a checked constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header (or the length it declares).
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("malformed {what}: {why}")]
    Malformed {
        what: &'static str,
        why: &'static str,
    },
}

pub(crate) fn need(what: &'static str, need: usize, have: usize) -> Result<(), WireError> {
    if have < need {
        Err(WireError::Truncated { what, need, have })
    } else {
        Ok(())
    }
}

// One bounds check and one unaligned load per field (indexing byte by byte
// costs a check per byte: this was 69 instructions per packet in the ECMP
// hash before).
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    let s: [u8; 2] = b[at..at + 2].try_into().expect("a 2-byte slice");
    u16::from_be_bytes(s)
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    let s: [u8; 4] = b[at..at + 4].try_into().expect("a 4-byte slice");
    u32::from_be_bytes(s)
}

#[inline(always)]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
