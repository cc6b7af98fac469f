//! MPLS label stack entries (RFC 3032 section 2.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Label                  | TC  |S|      TTL      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`Lse`] is one entry as a host-order `u32` with accessors; it is `Copy`, four
//! bytes, and converts to and from the wire with `from_bytes`/`to_bytes`.
//! [`Stack`] is a checked view over a whole stack: it finds the bottom-of-stack
//! entry and refuses a stack with no S bit within the buffer or deeper than
//! [`MAX_DEPTH`]. Reserved label values (0-15) follow RFC 3032 and the IANA
//! registry as updated by RFC 7274; the entropy label indicator (7) is RFC 6790.

use super::{be32, need, put32, WireError};

/// A 20-bit label value.
pub type Label = u32;

/// Reserved label values (RFC 3032 section 2.1, RFC 7274, IANA registry).
pub mod label {
    use super::Label;
    /// Pop and forward by the IPv4 header beneath (RFC 3032, RFC 4182).
    pub const IPV4_EXPLICIT_NULL: Label = 0;
    /// Deliver to the local software (punt).
    pub const ROUTER_ALERT: Label = 1;
    /// Pop and forward by the IPv6 header beneath.
    pub const IPV6_EXPLICIT_NULL: Label = 2;
    /// Signalled only; never valid on the wire.
    pub const IMPLICIT_NULL: Label = 3;
    /// Entropy label indicator: the next entry is an entropy label (RFC 6790).
    pub const ELI: Label = 7;
    /// Generic associated channel label (RFC 5586).
    pub const GAL: Label = 13;
    /// OAM alert label (RFC 3429).
    pub const OAM_ALERT: Label = 14;
    /// The first label that a FIB may bind.
    pub const FIRST_UNRESERVED: Label = 16;
    /// The largest 20-bit label.
    pub const MAX: Label = 0xF_FFFF;

    /// True for the reserved range 0..=15.
    pub const fn is_reserved(l: Label) -> bool {
        l < FIRST_UNRESERVED
    }
}

/// Size of one label stack entry on the wire.
pub const LSE_LEN: usize = 4;
/// The deepest stack this crate will walk (for parsing and hashing).
pub const MAX_DEPTH: usize = 16;

/// One label stack entry, held in host order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Lse(pub u32);

impl Lse {
    const LABEL_SHIFT: u32 = 12;
    const TC_SHIFT: u32 = 9;
    const S_BIT: u32 = 1 << 8;

    /// Builds an entry; the label is truncated to 20 bits and TC to 3 bits.
    #[inline(always)]
    pub const fn new(label: Label, tc: u8, bos: bool, ttl: u8) -> Lse {
        Lse(((label & label::MAX) << Self::LABEL_SHIFT)
            | (((tc & 7) as u32) << Self::TC_SHIFT)
            | if bos { Self::S_BIT } else { 0 }
            | ttl as u32)
    }

    #[inline(always)]
    pub const fn from_bytes(b: [u8; 4]) -> Lse {
        Lse(u32::from_be_bytes(b))
    }

    #[inline(always)]
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Reads the entry at `at` (caller has checked the length).
    #[inline(always)]
    pub fn read(b: &[u8], at: usize) -> Lse {
        Lse(be32(b, at))
    }

    #[inline(always)]
    pub fn write(self, b: &mut [u8], at: usize) {
        put32(b, at, self.0)
    }

    #[inline(always)]
    pub const fn label(self) -> Label {
        self.0 >> Self::LABEL_SHIFT
    }
    #[inline(always)]
    pub const fn tc(self) -> u8 {
        ((self.0 >> Self::TC_SHIFT) & 7) as u8
    }
    /// The bottom-of-stack (S) bit.
    #[inline(always)]
    pub const fn bos(self) -> bool {
        self.0 & Self::S_BIT != 0
    }
    #[inline(always)]
    pub const fn ttl(self) -> u8 {
        self.0 as u8
    }
    #[inline(always)]
    pub const fn with_label(self, l: Label) -> Lse {
        Lse((self.0 & 0xfff) | ((l & label::MAX) << Self::LABEL_SHIFT))
    }
    #[inline(always)]
    pub const fn with_ttl(self, ttl: u8) -> Lse {
        Lse((self.0 & !0xff) | ttl as u32)
    }
    #[inline(always)]
    pub const fn with_bos(self, bos: bool) -> Lse {
        Lse((self.0 & !Self::S_BIT) | if bos { Self::S_BIT } else { 0 })
    }
}

impl core::fmt::Debug for Lse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Lse(label={} tc={} s={} ttl={})",
            self.label(),
            self.tc(),
            self.bos() as u8,
            self.ttl()
        )
    }
}

/// A checked view of a label stack at the start of a buffer.
#[derive(Debug)]
pub struct Stack<T: AsRef<[u8]>> {
    buffer: T,
    depth: usize,
}

impl<T: AsRef<[u8]>> Stack<T> {
    /// Checks that a bottom-of-stack entry is reached within the buffer and
    /// within [`MAX_DEPTH`] entries.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let mut at = 0;
        loop {
            need("mpls label stack entry", at + LSE_LEN, b.len())?;
            let lse = Lse::read(b, at);
            at += LSE_LEN;
            if lse.bos() {
                break;
            }
            if at / LSE_LEN >= MAX_DEPTH {
                return Err(WireError::Malformed {
                    what: "mpls label stack",
                    why: "no bottom-of-stack bit within the maximum depth",
                });
            }
        }
        let depth = at / LSE_LEN;
        Ok(Stack { buffer, depth })
    }

    /// Number of entries, bottom of stack included.
    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn entry(&self, i: usize) -> Lse {
        assert!(i < self.depth);
        Lse::read(self.buffer.as_ref(), i * LSE_LEN)
    }

    pub fn iter(&self) -> impl Iterator<Item = Lse> + '_ {
        (0..self.depth).map(|i| self.entry(i))
    }

    /// Bytes after the bottom of stack.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.depth * LSE_LEN..]
    }
}

/// The owned form of a stack (top first), for the slow path and for tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repr {
    pub entries: Vec<Lse>,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(s: &Stack<T>) -> Repr {
        Repr {
            entries: s.iter().collect(),
        }
    }

    /// Appends the stack; the S bit is set on the last entry and cleared above.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let n = self.entries.len();
        for (i, e) in self.entries.iter().enumerate() {
            out.extend_from_slice(&e.with_bos(i + 1 == n).to_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_pack_exactly() {
        let e = Lse::new(0xABCDE, 5, true, 0x7f);
        assert_eq!(e.to_bytes(), [0xAB, 0xCD, 0xEB, 0x7f]);
        assert_eq!(e.label(), 0xABCDE);
        assert_eq!(e.tc(), 5);
        assert!(e.bos());
        assert_eq!(e.ttl(), 0x7f);
        assert_eq!(Lse::from_bytes(e.to_bytes()), e);
    }

    #[test]
    fn every_field_is_independent() {
        // Exhaustive over TC, S and TTL; labels at the edges and in between.
        for &l in &[0, 1, 3, 7, 15, 16, 0x1234, 0x7FFFF, 0x80000, label::MAX] {
            for tc in 0..8u8 {
                for bos in [false, true] {
                    for ttl in 0..=255u8 {
                        let e = Lse::new(l, tc, bos, ttl);
                        assert_eq!((e.label(), e.tc(), e.bos(), e.ttl()), (l, tc, bos, ttl));
                        let e2 = e.with_label(label::MAX - l).with_ttl(!ttl).with_bos(!bos);
                        assert_eq!(
                            (e2.label(), e2.tc(), e2.bos(), e2.ttl()),
                            (label::MAX - l, tc, !bos, !ttl)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn label_is_truncated_to_20_bits() {
        assert_eq!(Lse::new(0x1_00010, 0, false, 0).label(), 0x10);
        assert_eq!(Lse::new(1, 9, false, 0).tc(), 1);
    }

    #[test]
    fn stack_finds_bottom_and_payload() {
        let r = Repr {
            entries: vec![Lse::new(16001, 0, false, 64), Lse::new(16002, 1, false, 63)],
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        b.extend_from_slice(&[0x45, 0]);
        let s = Stack::new_checked(&b[..]).unwrap();
        assert_eq!(s.depth(), 2);
        assert!(s.entry(1).bos() && !s.entry(0).bos());
        assert_eq!(s.payload(), &[0x45, 0]);
    }

    #[test]
    fn stack_without_bottom_is_an_error() {
        let b = Lse::new(16, 0, false, 1).to_bytes();
        assert!(Stack::new_checked(&b[..]).is_err());
        let deep: Vec<u8> = (0..MAX_DEPTH + 1)
            .flat_map(|_| Lse::new(16, 0, false, 1).to_bytes())
            .collect();
        assert!(matches!(
            Stack::new_checked(&deep[..]),
            Err(WireError::Malformed { .. })
        ));
        assert!(Stack::new_checked(&[0u8; 3][..]).is_err());
    }
}
