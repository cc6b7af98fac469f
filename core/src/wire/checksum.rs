//! The Internet checksum (RFC 1071): the one's-complement sum of 16-bit
//! big-endian words, complemented. IPv4 headers (RFC 791) and UDP over IPv6
//! (RFC 8200 section 8.1, the bench's generator) both use it; [`adjust`] is
//! RFC 1624's incremental update for one changed word or block.

/// `acc` plus the words of `b` (an odd tail padded with zero), with the
/// end-around carry taken at every step, so the result stays at most
/// 0xffff when `acc` does. Sums may be chained; [`fold`] and complement the
/// last one for a checksum.
#[inline]
pub fn sum(acc: u32, b: &[u8]) -> u32 {
    let add = |a: u32, w: u32| {
        let s = a + w;
        (s & 0xffff) + (s >> 16)
    };
    let mut it = b.chunks_exact(2);
    let mut acc = fold(acc) as u32;
    for w in &mut it {
        acc = add(acc, u16::from_be_bytes([w[0], w[1]]) as u32);
    }
    if let [last] = it.remainder() {
        acc = add(acc, (*last as u32) << 8);
    }
    acc
}

/// Folds a 32-bit sum to 16 bits with end-around carry.
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `b` alone: the complemented, folded [`sum`].
pub fn checksum(b: &[u8]) -> u16 {
    !fold(sum(0, b))
}

/// RFC 1624 equation 3, HC' = ~(~HC + ~m + m'): the checksum `hc` after
/// a word (or the folded [`sum`] of an even-aligned block) changes from
/// `old` to `new`.
#[inline(always)]
pub const fn adjust(hc: u16, old: u16, new: u16) -> u16 {
    let sum = (!hc as u32) + (!old as u32) + (new as u32);
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &b)), 0xddf2);
        assert_eq!(checksum(&b), !0xddf2);
        // Chained sums equal one sum; an odd tail is padded with zero.
        assert_eq!(sum(sum(0, &b[..4]), &b[4..]), sum(0, &b));
        assert_eq!(sum(0, &[0xab]), 0xab00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn a_block_with_its_checksum_sums_to_all_ones() {
        let mut b: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
        b.extend_from_slice(&[0, 0]);
        let n = b.len();
        let c = checksum(&b);
        b[n - 2..].copy_from_slice(&c.to_be_bytes());
        assert_eq!(fold(sum(0, &b)), 0xffff);
        // Large starting sums fold first.
        assert_eq!(sum(0x1_fffe, &[]), 0xffff);
    }

    #[test]
    fn adjust_equals_recompute() {
        let mut b = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&b);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        for ttl in [0u8, 1, 63, 255] {
            let old = u16::from_be_bytes([b[8], b[9]]);
            let mut v = b;
            v[8] = ttl;
            let new = u16::from_be_bytes([v[8], v[9]]);
            let inc = adjust(c, old, new);
            v[10..12].copy_from_slice(&[0, 0]);
            assert_eq!(inc, checksum(&v), "ttl {ttl}");
        }
    }
}
