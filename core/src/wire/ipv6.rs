//! IPv6 fixed headers (RFC 8200 section 3) as a checked view.
//!
//! The router rewrites only the hop limit (there is no header checksum).
//! Extension headers are not walked: flow hashing uses the addresses, the
//! flow label (RFC 6437) and, when the next header is TCP/UDP/SCTP directly,
//! the ports.

use super::{be16, need, WireError};
use zerocopy::byteorder::{BigEndian, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const HEADER_LEN: usize = 40;

pub mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// The fixed header as a layout checked by zerocopy.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    pub ver_tc_flow: U32<BigEndian>,
    pub payload_len: U16<BigEndian>,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<Header>() == HEADER_LEN);

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

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need("ipv6 header", HEADER_LEN, b.len())?;
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed {
                what: "ipv6 header",
                why: "version is not 6",
            });
        }
        need(
            "ipv6 payload length",
            HEADER_LEN + self.payload_len() as usize,
            b.len(),
        )
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        (be16(self.buffer.as_ref(), 0) >> 4) as u8
    }
    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes(self.buffer.as_ref()[field::VER_TC_FLOW].try_into().unwrap()) & 0xf_ffff
    }
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    pub fn src(&self) -> [u8; 16] {
        self.buffer.as_ref()[field::SRC].try_into().unwrap()
    }
    pub fn dst(&self) -> [u8; 16] {
        self.buffer.as_ref()[field::DST].try_into().unwrap()
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }
}

/// The owned form of a fixed header, for the slow path and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub next_header: u8,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub payload_len: usize,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        Ok(Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
            payload_len: p.payload_len() as usize,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        let h = Header {
            ver_tc_flow: U32::new(
                (6 << 28) | ((self.traffic_class as u32) << 20) | (self.flow_label & 0xf_ffff),
            ),
            payload_len: U16::new(self.payload_len as u16),
            next_header: self.next_header,
            hop_limit: self.hop_limit,
            src: self.src,
            dst: self.dst,
        };
        out.extend_from_slice(h.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Repr {
            src: [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            next_header: 17,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0xabcde,
            payload_len: 8,
        };
        let mut v = Vec::new();
        r.emit(&mut v);
        v.extend_from_slice(&[0; 8]);
        let mut p = Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        p.set_hop_limit(3);
        assert_eq!(p.hop_limit(), 3);
    }

    #[test]
    fn short_or_wrong_version_is_refused() {
        let mut v = [0x60u8; 40];
        v[4] = 0;
        v[5] = 0;
        assert!(Packet::new_checked(&v[..]).is_ok());
        v[5] = 1; // payload length 1, nothing there
        assert!(Packet::new_checked(&v[..]).is_err());
        v[5] = 0;
        v[0] = 0x40;
        assert!(Packet::new_checked(&v[..]).is_err());
        assert!(Packet::new_checked(&v[..39]).is_err());
    }
}
