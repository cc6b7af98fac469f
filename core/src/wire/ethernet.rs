//! Ethernet II frames (IEEE 802.3 clause 3.2.6) with an optional single 802.1Q
//! VLAN tag (IEEE 802.1Q-2018 clause 9).
//!
//! Only what a label switch needs: addresses, the (inner) EtherType, the VLAN
//! id, and where the payload starts. QinQ (0x88a8 or stacked 0x8100) is not
//! parsed: the EtherType after one tag is reported as is, so a second tag shows
//! up as EtherType 0x8100 and the pipeline drops it as unsupported.

use super::{be16, need, put16, WireError};
use zerocopy::byteorder::{BigEndian, U16};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// EtherType values this crate cares about (IEEE registry).
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast (RFC 3032 section 5).
    pub const MPLS: u16 = 0x8847;
    /// MPLS "multicast" (RFC 5332: upstream-assigned / multicast).
    pub const MPLS_MC: u16 = 0x8848;
}

/// A 48-bit MAC address as the wire carries it (six octets).
pub type MacBytes = [u8; 6];

/// A MAC address as a value: written and read as six colon-separated pairs
/// of hex digits ("02:00:5e:00:53:01", either case when read); serde
/// (TOML/JSON) carries it as that string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub MacBytes);

/// Text that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address like 02:00:00:00:00:01")]
pub struct MacError(pub String);

impl std::str::FromStr for Mac {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Mac, MacError> {
        let bad = || MacError(s.to_string());
        let mut m = [0u8; 6];
        let mut parts = s.split(':');
        for b in m.iter_mut() {
            let p = parts.next().ok_or_else(bad)?;
            // Two hex digits exactly: from_str_radix alone would take "+f".
            if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            None => Ok(Mac(m)),
            Some(_) => Err(bad()),
        }
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl From<MacBytes> for Mac {
    fn from(m: MacBytes) -> Mac {
        Mac(m)
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a MAC address ([`Mac`]'s `FromStr`); `None` for anything else.
pub fn parse_mac(s: &str) -> Option<MacBytes> {
    s.parse::<Mac>().ok().map(|m| m.0)
}

/// Writes a MAC address as [`parse_mac`] reads it ([`Mac`]'s `Display`):
/// "02:00:5e:00:53:01".
pub fn format_mac(m: &MacBytes) -> String {
    Mac(*m).to_string()
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = 14;
/// Length of a header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = 18;

/// Byte ranges of the fields.
pub mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// The untagged header as a fixed layout (checked by zerocopy).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    pub dst: MacBytes,
    pub src: MacBytes,
    pub ethertype: U16<BigEndian>,
}
const _: () = assert!(core::mem::size_of::<Header>() == HEADER_LEN);

/// A read/write view of an Ethernet frame.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it; getters may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer after checking it holds the whole header (tag included).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Frame { buffer };
        f.check_len()?;
        Ok(f)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need("ethernet header", HEADER_LEN, b.len())?;
        if be16(b, field::ETHERTYPE) == ethertype::VLAN {
            need("802.1Q tag", TAGGED_HEADER_LEN, b.len())?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst(&self) -> MacBytes {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    pub fn src(&self) -> MacBytes {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// True when the frame carries an 802.1Q tag.
    pub fn is_tagged(&self) -> bool {
        be16(self.buffer.as_ref(), field::ETHERTYPE) == ethertype::VLAN
    }

    /// The VLAN id (12 bits) when tagged.
    pub fn vlan(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| be16(self.buffer.as_ref(), field::TCI) & 0x0fff)
    }

    /// The EtherType of the payload (after the tag, when tagged).
    pub fn ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        if self.is_tagged() {
            be16(b, field::INNER_ETHERTYPE)
        } else {
            be16(b, field::ETHERTYPE)
        }
    }

    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, mac: MacBytes) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }
    pub fn set_src(&mut self, mac: MacBytes) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }
    /// Sets the payload EtherType (the inner one when tagged).
    pub fn set_ethertype(&mut self, et: u16) {
        let at = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        put16(self.buffer.as_mut(), at, et);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// Writes a header at the start of `buf` and returns its length.
/// `buf` must hold 14 bytes (18 with a VLAN id).
#[inline(always)]
pub fn write_header(
    buf: &mut [u8],
    dst: &MacBytes,
    src: &MacBytes,
    vlan: Option<u16>,
    et: u16,
) -> usize {
    buf[field::DST].copy_from_slice(dst);
    buf[field::SRC].copy_from_slice(src);
    match vlan {
        None => {
            put16(buf, field::ETHERTYPE, et);
            HEADER_LEN
        }
        Some(vid) => {
            put16(buf, field::ETHERTYPE, ethertype::VLAN);
            put16(buf, field::TCI, vid & 0x0fff);
            put16(buf, field::INNER_ETHERTYPE, et);
            TAGGED_HEADER_LEN
        }
    }
}

/// The owned, parsed form of a header, for the slow path and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub dst: MacBytes,
    pub src: MacBytes,
    pub vlan: Option<u16>,
    pub ethertype: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Result<Repr, WireError> {
        f.check_len()?;
        Ok(Repr {
            dst: f.dst(),
            src: f.src(),
            vlan: f.vlan(),
            ethertype: f.ethertype(),
        })
    }

    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Appends the header to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut h = [0u8; TAGGED_HEADER_LEN];
        let n = write_header(&mut h, &self.dst, &self.src, self.vlan, self.ethertype);
        out.extend_from_slice(&h[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_round_trips() {
        for m in [[0u8; 6], [0xff; 6], [0x02, 0x00, 0x5e, 0x00, 0x53, 0x01]] {
            assert_eq!(parse_mac(&format_mac(&m)), Some(m));
        }
        assert_eq!(
            format_mac(&[0x02, 0x6e, 0, 3, 1, 0x2c]),
            "02:6e:00:03:01:2c"
        );
        assert_eq!(
            parse_mac("02:AB:cd:EF:00:01"),
            Some([2, 0xab, 0xcd, 0xef, 0, 1])
        );
    }

    #[test]
    fn mac_text_refuses_anything_else() {
        for bad in [
            "",
            "02:00:5e:00:53",
            "02:00:5e:00:53:01:",
            "02:00:5e:00:53:01:02",
            "2:00:5e:00:53:01",
            "002:00:5e:00:53:01",
            "02-00-5e-00-53-01",
            "0g:00:5e:00:53:01",
            "+2:00:5e:00:53:01",
            "02:00:5e:00:53:+1",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn untagged_round_trip() {
        let r = Repr {
            dst: [2, 0, 0, 0, 0, 1],
            src: [2, 0, 0, 0, 0, 2],
            vlan: None,
            ethertype: ethertype::MPLS,
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        assert_eq!(b.len(), 14);
        let h = Header::ref_from_bytes(&b[..]).unwrap();
        assert_eq!(h.ethertype.get(), 0x8847);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&f).unwrap(), r);
    }

    #[test]
    fn tagged_round_trip_and_setters() {
        let r = Repr {
            dst: [2, 0, 0, 0, 0, 1],
            src: [2, 0, 0, 0, 0, 2],
            vlan: Some(100),
            ethertype: ethertype::IPV4,
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        b.extend_from_slice(&[0xaa; 4]);
        let mut f = Frame::new_checked(&mut b[..]).unwrap();
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xaa; 4]);
        f.set_ethertype(ethertype::MPLS);
        f.set_src([9; 6]);
        assert_eq!(f.ethertype(), ethertype::MPLS);
        assert_eq!(f.vlan(), Some(100));
        assert_eq!(f.src(), [9; 6]);
    }

    #[test]
    fn short_frames_are_errors() {
        assert!(Frame::new_checked(&[0u8; 13][..]).is_err());
        let mut b = [0u8; 16];
        b[12] = 0x81;
        assert!(matches!(
            Frame::new_checked(&b[..]),
            Err(WireError::Truncated { need: 18, .. })
        ));
    }
}
