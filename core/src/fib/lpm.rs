//! Longest-prefix match for the label edge: IPv4 as DIR-24-8 (Gupta, Lin and
//! McKeown, "Routing lookups in hardware at memory access speeds", INFOCOM
//! 1998; the layout of DPDK's `rte_lpm`), IPv6 as a multibit trie with a
//! 16-bit first stride and 8-bit strides below (the layout of `rte_lpm6`).
//!
//! Both are built once, off the fast path, from a complete route list, and
//! are immutable afterwards. Routes are inserted shortest prefix first, so a
//! longer prefix always lands on top of every shorter one it overlaps and the
//! build never has to re-expand a subtree (controlled prefix expansion).
//!
//! An entry is a `u32`: 0 means no route, `EXT | g` points at group `g` of the
//! next level, anything else is a next-hop group id plus one. A lookup is one
//! memory access for IPv4 prefixes up to /24 (two beyond), and at most 15 for
//! IPv6.

/// Advice for the large zeroed tables (the 64 MiB DIR-24-8 first level),
/// given before they are filled: the runtime installs one that asks for
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`, a syscall this crate
/// may not make), so the table is faulted in 2 MiB at a time and lookups
/// miss the TLB less. Without one (tools, tests) tables are plain memory.
static LARGE_TABLE_ADVICE: std::sync::OnceLock<fn(&mut [u32])> = std::sync::OnceLock::new();

/// Installs the advice for large tables (see [`LARGE_TABLE_ADVICE`]); the
/// first call wins, later ones are ignored.
pub fn set_large_table_advice(advise: fn(&mut [u32])) {
    let _ = LARGE_TABLE_ADVICE.set(advise);
}

fn advise_large_table(t: &mut [u32]) {
    if let Some(advise) = LARGE_TABLE_ADVICE.get() {
        advise(t);
    }
}

const EXT: u32 = 1 << 31;
const GROUP: usize = 256;
/// The largest value a route may carry (31 bits minus the "none" encoding).
pub const MAX_VALUE: u32 = EXT - 2;

/// IPv4 DIR-24-8 table.
#[derive(Clone, Default)]
pub struct Lpm4 {
    tbl24: Box<[u32]>,
    tbl8: Box<[u32]>,
    routes: usize,
}

impl core::fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lpm4")
            .field("routes", &self.routes)
            .field("tbl8_groups", &(self.tbl8.len() / GROUP))
            .finish()
    }
}

impl Lpm4 {
    /// Builds from `(prefix, length, value)`; prefixes must be unique and have
    /// no host bits set, lengths <= 32, values <= [`MAX_VALUE`] (the FIB
    /// builder checks all of this first and names the bad route).
    pub fn build(routes: &[(u32, u8, u32)]) -> Lpm4 {
        if routes.is_empty() {
            return Lpm4::default();
        }
        let mut sorted: Vec<(u32, u8, u32)> = routes.to_vec();
        sorted.sort_unstable_by_key(|r| r.1);
        // Zeroed memory comes straight from the allocator's zeroed pages:
        // untouched parts of the 64 MiB table cost no physical memory.
        let mut tbl24 = vec![0u32; 1 << 24];
        advise_large_table(&mut tbl24);
        let mut tbl8: Vec<u32> = Vec::new();
        for &(prefix, len, value) in &sorted {
            let v = value + 1;
            if len <= 24 {
                let start = (prefix >> 8) as usize;
                let n = 1usize << (24 - len);
                tbl24[start..start + n].fill(v);
            } else {
                let i = (prefix >> 8) as usize;
                let e = tbl24[i];
                let g = if e & EXT != 0 {
                    (e & !EXT) as usize
                } else {
                    let g = tbl8.len() / GROUP;
                    tbl8.resize(tbl8.len() + GROUP, e);
                    tbl24[i] = EXT | g as u32;
                    g
                };
                let start = g * GROUP + (prefix & 0xff) as usize;
                let n = 1usize << (32 - len);
                tbl8[start..start + n].fill(v);
            }
        }
        Lpm4 {
            tbl24: tbl24.into_boxed_slice(),
            tbl8: tbl8.into_boxed_slice(),
            routes: routes.len(),
        }
    }

    /// The value of the longest prefix covering `addr`.
    #[inline(always)]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let e = *self.tbl24.get((addr >> 8) as usize)?;
        let e = if e & EXT == 0 {
            e
        } else {
            self.tbl8[((e & !EXT) as usize) * GROUP + (addr & 0xff) as usize]
        };
        e.checked_sub(1)
    }

    pub fn len(&self) -> usize {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Bytes of table memory (virtual; untouched zero pages cost nothing).
    pub fn table_bytes(&self) -> usize {
        (self.tbl24.len() + self.tbl8.len()) * 4
    }
}

/// IPv6 multibit trie: 2^16 first-level entries, then 8-bit strides.
#[derive(Clone, Default)]
pub struct Lpm6 {
    l0: Box<[u32]>,
    groups: Box<[u32]>,
    routes: usize,
}

impl core::fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lpm6")
            .field("routes", &self.routes)
            .field("groups", &(self.groups.len() / GROUP))
            .finish()
    }
}

impl Lpm6 {
    /// Builds from `(prefix, length, value)`, with the same preconditions as
    /// [`Lpm4::build`] (lengths <= 128).
    pub fn build(routes: &[(u128, u8, u32)]) -> Lpm6 {
        if routes.is_empty() {
            return Lpm6::default();
        }
        let mut sorted: Vec<(u128, u8, u32)> = routes.to_vec();
        sorted.sort_unstable_by_key(|r| r.1);
        let mut l0 = vec![0u32; 1 << 16];
        let mut groups: Vec<u32> = Vec::new();
        for &(prefix, len, value) in &sorted {
            let v = value + 1;
            let len = len as u32;
            if len <= 16 {
                let start = (prefix >> 112) as usize;
                l0[start..start + (1usize << (16 - len))].fill(v);
                continue;
            }
            // Walk (creating groups) down to the level that holds bit `len`.
            let mut slot: (bool, usize) = (true, (prefix >> 112) as usize); // (in l0, index)
            let mut level_end = 16u32;
            loop {
                let e = if slot.0 { l0[slot.1] } else { groups[slot.1] };
                let g = if e & EXT != 0 {
                    (e & !EXT) as usize
                } else {
                    let g = groups.len() / GROUP;
                    groups.resize(groups.len() + GROUP, e);
                    if slot.0 {
                        l0[slot.1] = EXT | g as u32;
                    } else {
                        groups[slot.1] = EXT | g as u32;
                    }
                    g
                };
                let byte = ((prefix >> (120 - level_end)) & 0xff) as usize;
                level_end += 8;
                if len <= level_end {
                    let start = g * GROUP + byte;
                    groups[start..start + (1usize << (level_end - len))].fill(v);
                    break;
                }
                slot = (false, g * GROUP + byte);
            }
        }
        Lpm6 {
            l0: l0.into_boxed_slice(),
            groups: groups.into_boxed_slice(),
            routes: routes.len(),
        }
    }

    #[inline(always)]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        let mut e = *self.l0.get((addr >> 112) as usize)?;
        let mut shift = 104u32;
        while e & EXT != 0 {
            e = self.groups[((e & !EXT) as usize) * GROUP + ((addr >> shift) & 0xff) as usize];
            // A /128 ends at shift 0; groups never nest deeper than that.
            shift = shift.wrapping_sub(8);
        }
        e.checked_sub(1)
    }

    pub fn len(&self) -> usize {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive4(routes: &[(u32, u8, u32)], a: u32) -> Option<u32> {
        routes
            .iter()
            .filter(|(p, l, _)| *l == 0 || (a ^ p) >> (32 - *l as u32) == 0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    }

    fn naive6(routes: &[(u128, u8, u32)], a: u128) -> Option<u32> {
        routes
            .iter()
            .filter(|(p, l, _)| *l == 0 || (a ^ p) >> (128 - *l as u32) == 0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    }

    fn mask4(p: u32, l: u8) -> u32 {
        if l == 0 {
            0
        } else {
            p & (u32::MAX << (32 - l as u32))
        }
    }

    fn mask6(p: u128, l: u8) -> u128 {
        if l == 0 {
            0
        } else {
            p & (u128::MAX << (128 - l as u32))
        }
    }

    #[test]
    fn ipv4_basics() {
        let routes = [
            (0, 0, 1),
            (0x0a00_0000, 8, 2),
            (0x0a01_0000, 16, 3),
            (0x0a01_0200, 24, 4),
            (0x0a01_0280, 25, 5),
            (0x0a01_02ff, 32, 6),
        ];
        let t = Lpm4::build(&routes);
        assert_eq!(t.lookup(0x0b00_0000), Some(1));
        assert_eq!(t.lookup(0x0a02_0000), Some(2));
        assert_eq!(t.lookup(0x0a01_0300), Some(3));
        assert_eq!(t.lookup(0x0a01_0201), Some(4));
        assert_eq!(t.lookup(0x0a01_0281), Some(5));
        assert_eq!(t.lookup(0x0a01_02ff), Some(6));
        assert_eq!(Lpm4::build(&[]).lookup(1), None);
        assert_eq!(
            Lpm4::build(&[(0x0a00_0000, 8, 0)]).lookup(0x0b00_0000),
            None
        );
    }

    #[test]
    fn ipv6_basics() {
        let p = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().to_bits();
        let routes = [
            (p("2001:db8::"), 32, 1),
            (p("2001:db8:1::"), 48, 2),
            (p("2001:db8:1::1"), 128, 3),
            (p("2001:db8:1::"), 127, 4),
            (0, 0, 5),
        ];
        let t = Lpm6::build(&routes);
        assert_eq!(t.lookup(p("2001:db8:1::1")), Some(3));
        assert_eq!(t.lookup(p("2001:db8:1::")), Some(4));
        assert_eq!(t.lookup(p("2001:db8:1::2")), Some(2));
        assert_eq!(t.lookup(p("2001:db8:2::")), Some(1));
        assert_eq!(t.lookup(p("::1")), Some(5));
    }

    proptest! {
        // Each case builds a 64 MiB table: fewer cases, many probes each.
        // PROPTEST_CASES still overrides the 64 (the proptest! macro applies
        // the environment to an explicit config too).
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn ipv4_matches_naive(
            raw in proptest::collection::vec((any::<u32>(), 0u8..=32, 0u32..1000), 0..60),
            probes in proptest::collection::vec(any::<u32>(), 50),
        ) {
            let mut seen = std::collections::HashSet::new();
            let routes: Vec<_> = raw.into_iter()
                .map(|(p, l, v)| (mask4(p, l), l, v))
                .filter(|r| seen.insert((r.0, r.1)))
                .collect();
            let t = Lpm4::build(&routes);
            for &(p, _, _) in &routes {
                prop_assert_eq!(t.lookup(p), naive4(&routes, p));
                prop_assert_eq!(t.lookup(p | 0xff), naive4(&routes, p | 0xff));
            }
            for a in probes {
                prop_assert_eq!(t.lookup(a), naive4(&routes, a));
            }
        }

        #[test]
        fn ipv6_matches_naive(
            raw in proptest::collection::vec((any::<u128>(), 0u8..=128, 0u32..1000), 0..40),
            probes in proptest::collection::vec(any::<u128>(), 50),
        ) {
            let mut seen = std::collections::HashSet::new();
            // Share the top bits often so that prefixes overlap.
            let routes: Vec<_> = raw.into_iter()
                .map(|(p, l, v)| (mask6((p & 0xffff_ffff) | (0x2001_0db8u128 << 96), l), l, v))
                .filter(|r| seen.insert((r.0, r.1)))
                .collect();
            let t = Lpm6::build(&routes);
            for &(p, _, _) in &routes {
                prop_assert_eq!(t.lookup(p), naive6(&routes, p));
                prop_assert_eq!(t.lookup(p | 1), naive6(&routes, p | 1));
            }
            for a in probes {
                let a = (a & 0xffff_ffff) | (0x2001_0db8u128 << 96);
                prop_assert_eq!(t.lookup(a), naive6(&routes, a));
            }
        }
    }
}
