//! IP prefixes as text, `address/length` (10.0.0.0/8, 2001:db8::/32): the
//! one parser the FIB spec, the binary FIB encoder, the control socket's
//! route filter, the control plane's schedules and the bench tools share.
//!
//! [`split`] only takes the text apart (the FIB builder then checks lengths
//! and host bits itself, naming the entry); [`Prefix`]'s `FromStr` also
//! refuses a length longer than the family's width and host bits set.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix: no host bits set, length at most the family's
/// width (32 or 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why some text is not a prefix (each reads as the end of a sentence
/// naming the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixError {
    /// No `/` between address and length.
    NoLength,
    /// The part before `/` is not an IPv4 or IPv6 address.
    Address(String),
    /// The part after `/` is not a number from 0 to 255.
    Length(String),
    /// The length is longer than the family's width.
    TooLong { len: u8, width: u8 },
    /// Bits beyond the length are set; `network` has them cleared.
    HostBits { network: IpAddr, len: u8 },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::NoLength => write!(f, "expected address/length, e.g. 10.0.0.0/8"),
            PrefixError::Address(a) => write!(f, "{a:?} is not an IP address"),
            PrefixError::Length(l) => write!(f, "{l:?} is not a prefix length"),
            PrefixError::TooLong { len, width } => {
                write!(f, "prefix length {len} is longer than {width}")
            }
            PrefixError::HostBits { network, len } => write!(
                f,
                "host bits set beyond the prefix length (did you mean {network}/{len}?)"
            ),
        }
    }
}

impl std::error::Error for PrefixError {}

/// Takes `address/length` apart: the address and the length, with no check
/// of the length's range or of host bits.
pub fn split(s: &str) -> Result<(IpAddr, u8), PrefixError> {
    let (a, l) = s.split_once('/').ok_or(PrefixError::NoLength)?;
    let addr = a.parse().map_err(|_| PrefixError::Address(a.into()))?;
    // Digits only: u8's parser would also take a sign ("+8").
    let len = Some(l)
        .filter(|l| l.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| PrefixError::Length(l.into()))?;
    Ok((addr, len))
}

/// The address as a u128 (IPv4 in the low 32 bits) and its width in bits.
fn bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(a) => (u128::from(a.to_bits()), 32),
        IpAddr::V6(a) => (a.to_bits(), 128),
    }
}

impl Prefix {
    /// `addr/len`, refused when `len` exceeds the family's width or `addr`
    /// has bits set beyond `len`.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let (b, width) = bits(addr);
        if len > width {
            return Err(PrefixError::TooLong { len, width });
        }
        let host = (u128::MAX >> (128 - u32::from(width)))
            .checked_shr(u32::from(len))
            .unwrap_or(0);
        if b & host != 0 {
            let network = match addr {
                IpAddr::V4(_) => IpAddr::from(((b & !host) as u32).to_be_bytes()),
                IpAddr::V6(_) => IpAddr::from((b & !host).to_be_bytes()),
            };
            return Err(PrefixError::HostBits { network, len });
        }
        Ok(Prefix { addr, len })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn length(&self) -> u8 {
        self.len
    }

    /// Whether `a` (of the same family) lies inside this prefix.
    pub fn contains(&self, a: IpAddr) -> bool {
        let ((mine, width), (theirs, w)) = (bits(self.addr), bits(a));
        width == w
            && (mine ^ theirs)
                .checked_shr(u32::from(width - self.len))
                .unwrap_or(0)
                == 0
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (addr, len) = split(s)?;
        Prefix::new(addr, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Carried as its text, `address/length`, in TOML and JSON.
impl serde::Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Prefix, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_round_trip() {
        for s in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "10.1.2.3/32",
            "2001:db8::/32",
            "::/0",
        ] {
            let p: Prefix = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        let p: Prefix = "10.1.0.0/16".parse().unwrap();
        assert_eq!((p.addr(), p.length()), ("10.1.0.0".parse().unwrap(), 16));
    }

    #[test]
    fn bad_prefixes_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Prefix>().unwrap_err().to_string();
        assert_eq!(err("10.0.0.0"), "expected address/length, e.g. 10.0.0.0/8");
        assert_eq!(err("10.0.0/8"), "\"10.0.0\" is not an IP address");
        assert_eq!(err("10.0.0.0/x"), "\"x\" is not a prefix length");
        assert_eq!(err("10.0.0.0/+8"), "\"+8\" is not a prefix length");
        assert_eq!(err("10.0.0.0/"), "\"\" is not a prefix length");
        assert_eq!(err("10.0.0.0/33"), "prefix length 33 is longer than 32");
        assert_eq!(err("::/129"), "prefix length 129 is longer than 128");
        assert_eq!(
            err("10.2.0.1/16"),
            "host bits set beyond the prefix length (did you mean 10.2.0.0/16?)"
        );
        assert_eq!(
            err("2001:db8::1/64"),
            "host bits set beyond the prefix length (did you mean 2001:db8::/64?)"
        );
        // split alone leaves range and host bits to the FIB builder.
        assert_eq!(split("10.2.0.1/40"), Ok(("10.2.0.1".parse().unwrap(), 40)));
    }

    #[test]
    fn contains_matches_within_the_family_only() {
        let p: Prefix = "10.1.0.0/16".parse().unwrap();
        assert!(p.contains("10.1.255.3".parse().unwrap()));
        assert!(!p.contains("10.2.0.0".parse().unwrap()));
        assert!(!p.contains("::a01:0".parse().unwrap()));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::".parse().unwrap()));
        let host: Prefix = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains("2001:db8::1".parse().unwrap()));
        assert!(!host.contains("2001:db8::2".parse().unwrap()));
    }
}
