//! IPv4 headers (RFC 791) as a checked view, with the incremental checksum
//! update of RFC 1624 (equation 3) for the TTL rewrite every hop performs.
//!
//! `Packet::new_checked` refuses a header that a router must not forward:
//! version other than 4, IHL < 5, a header longer than the buffer, a total
//! length shorter than the header or longer than the buffer (RFC 1812
//! section 5.2.2). Options are carried but not interpreted. The header
//! checksum is not verified on the fast path (as in most routers and RFC 1812
//! section 5.2.2 allows); [`Packet::verify_checksum`] is there for tests.

use super::checksum::{adjust, fold, sum};
use super::{be16, need, put16, WireError};
use zerocopy::byteorder::{BigEndian, U16};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Minimum header length (IHL = 5).
pub const MIN_HEADER_LEN: usize = 20;

pub mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// The fixed part of the header as a layout checked by zerocopy.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    pub ver_ihl: u8,
    pub tos: u8,
    pub total_len: U16<BigEndian>,
    pub ident: U16<BigEndian>,
    pub flags_frag: U16<BigEndian>,
    pub ttl: u8,
    pub protocol: u8,
    pub checksum: U16<BigEndian>,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<Header>() == MIN_HEADER_LEN);

/// A view of an IPv4 header (and what follows it) at the start of a buffer.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// The checks of RFC 1812 section 5.2.2 that concern lengths and version.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need("ipv4 header", MIN_HEADER_LEN, b.len())?;
        let what = "ipv4 header";
        if b[0] >> 4 != 4 {
            return Err(WireError::Malformed {
                what,
                why: "version is not 4",
            });
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed {
                what,
                why: "IHL below 5",
            });
        }
        need("ipv4 header with options", hl, b.len())?;
        let tl = self.total_len() as usize;
        if tl < hl {
            return Err(WireError::Malformed {
                what,
                why: "total length shorter than the header",
            });
        }
        need("ipv4 total length", tl, b.len())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    /// True for any fragment but an unfragmented packet (MF set or offset > 0).
    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x3fff != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn src(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        a
    }
    pub fn dst(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        a
    }
    /// True when the header checksum is right (RFC 791: one's complement sum
    /// over the header is 0xffff).
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        fold(sum(0, &b[..self.header_len()])) == 0xffff
    }
    /// Bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Rewrites the TTL and updates the checksum incrementally (RFC 1624).
    #[inline(always)]
    pub fn set_ttl(&mut self, ttl: u8) {
        let b = self.buffer.as_mut();
        set_ttl_in_place(b, ttl);
    }

    /// Recomputes the header checksum from scratch (slow path).
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        put16(b, field::CHECKSUM, 0);
        let c = !fold(sum(0, &b[..hl]));
        put16(b, field::CHECKSUM, c);
    }
}

/// Sets the TTL of the header at the start of `b` and adjusts its checksum
/// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the 16-bit word TTL|protocol).
#[inline(always)]
pub fn set_ttl_in_place(b: &mut [u8], ttl: u8) {
    let old = be16(b, field::TTL);
    let new = ((ttl as u16) << 8) | (old & 0xff);
    let hc = be16(b, field::CHECKSUM);
    b[field::TTL] = ttl;
    put16(b, field::CHECKSUM, adjust(hc, old, new));
}

/// The owned form of a header without options, for the slow path and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub protocol: u8,
    pub ttl: u8,
    pub tos: u8,
    pub payload_len: usize,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        Ok(Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            tos: p.tos(),
            payload_len: p.total_len() as usize - p.header_len(),
        })
    }

    /// Appends a 20-byte header with a correct checksum.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let h = Header {
            ver_ihl: 0x45,
            tos: self.tos,
            total_len: U16::new((MIN_HEADER_LEN + self.payload_len) as u16),
            ident: U16::new(0),
            flags_frag: U16::new(0x4000),
            ttl: self.ttl,
            protocol: self.protocol,
            checksum: U16::new(0),
            src: self.src,
            dst: self.dst,
        };
        let at = out.len();
        out.extend_from_slice(h.as_bytes());
        Packet::new_unchecked(&mut out[at..]).fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ttl: u8, proto: u8) -> Vec<u8> {
        let mut v = Vec::new();
        Repr {
            src: [10, 0, 0, 1],
            dst: [192, 0, 2, 77],
            protocol: proto,
            ttl,
            tos: 0xb8,
            payload_len: 0,
        }
        .emit(&mut v);
        v
    }

    #[test]
    fn emitted_checksum_verifies() {
        let v = header(64, 17);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.dst(), [192, 0, 2, 77]);
    }

    #[test]
    fn incremental_update_equals_recompute_for_every_ttl_and_protocol() {
        for proto in 0..=255u8 {
            for ttl in 0..=255u8 {
                let mut v = header(ttl, proto);
                let new = ttl.wrapping_sub(1);
                Packet::new_unchecked(&mut v[..]).set_ttl(new);
                let mut w = header(new, proto);
                Packet::new_unchecked(&mut w[..]).fill_checksum();
                let p = Packet::new_unchecked(&v[..]);
                assert!(p.verify_checksum(), "ttl {ttl} proto {proto}");
                assert_eq!(
                    p.checksum(),
                    Packet::new_unchecked(&w[..]).checksum(),
                    "ttl {ttl} proto {proto}"
                );
            }
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = header(64, 6);
        let mut v = good.clone();
        v[0] = 0x44; // IHL 4
        assert!(Packet::new_checked(&v[..]).is_err());
        let mut v = good.clone();
        v[0] = 0x65; // version 6
        assert!(Packet::new_checked(&v[..]).is_err());
        let mut v = good.clone();
        v[3] = 19; // total length < header
        assert!(Packet::new_checked(&v[..]).is_err());
        let mut v = good.clone();
        v[3] = 21; // total length > buffer
        assert!(Packet::new_checked(&v[..]).is_err());
        let mut v = good.clone();
        v[0] = 0x46; // IHL 6 but only 20 bytes
        v[3] = 24;
        assert!(Packet::new_checked(&v[..]).is_err());
        assert!(Packet::new_checked(&good[..19]).is_err());
    }
}
