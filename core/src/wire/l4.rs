//! Transport ports for flow hashing: TCP (RFC 9293), UDP (RFC 768) and SCTP
//! (RFC 9260) all start with a 16-bit source and destination port.

use super::be16;

pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// The (source, destination) ports when `proto` has them and `l4` is long
/// enough; `None` otherwise (the hash then uses the addresses only).
#[inline(always)]
pub fn ports(proto: u8, l4: &[u8]) -> Option<(u16, u16)> {
    match proto {
        protocol::TCP | protocol::UDP | protocol::SCTP if l4.len() >= 4 => {
            Some((be16(l4, 0), be16(l4, 2)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_only_for_port_protocols() {
        let b = [0x30, 0x39, 0x00, 0x35, 0, 0];
        assert_eq!(super::ports(17, &b), Some((12345, 53)));
        assert_eq!(super::ports(6, &b[..3]), None);
        assert_eq!(super::ports(1, &b), None);
    }
}
