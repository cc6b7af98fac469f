//! Baselines measured beside the pipeline in the same run.
//!
//! - [`bare_swap`]: the floor. Reads the top label, indexes a flat table,
//!   writes the new label (TTL - 1) and the MACs. No checks, no verdicts, no
//!   counters: what the ratio "pipeline / bare loop" is taken against.
//! - [`NaiveLsr`]: what a first implementation looks like: a `HashMap` from
//!   label to next hop, one packet at a time, with the basic checks.
//! - [`NaiveLpm`]: longest-prefix match as 33 `HashMap`s probed from /32 down.

use orbitmesh_core::wire::mpls::Lse;
use std::collections::HashMap;

/// One entry of the bare loop's table: out label and MACs.
#[derive(Debug, Clone, Copy, Default)]
pub struct BareEntry {
    pub out_label: u32,
    pub port: u16,
    pub macs: [u8; 12],
}

/// The floor: swap with no checks at all. Returns ports summed (to keep the
/// work observable).
#[inline(never)]
pub fn bare_swap(table: &[BareEntry], frames: &mut [&mut [u8]]) -> u32 {
    let mut ports = 0u32;
    for f in frames.iter_mut() {
        let lse = Lse::read(f, 14);
        let e = table[lse.label() as usize & (table.len() - 1)];
        Lse::new(e.out_label, lse.tc(), lse.bos(), lse.ttl().wrapping_sub(1)).write(f, 14);
        f[..12].copy_from_slice(&e.macs);
        ports += e.port as u32;
    }
    ports
}

/// A next hop in the naive LSR.
#[derive(Debug, Clone, Copy)]
pub struct NaiveNh {
    pub out_label: u32,
    pub port: u16,
    pub macs: [u8; 12],
}

/// A label switch written the obvious way.
#[derive(Debug, Default)]
pub struct NaiveLsr {
    pub ilm: HashMap<u32, NaiveNh>,
    pub dropped: u64,
}

impl NaiveLsr {
    /// Swaps each frame in place; returns the number forwarded.
    #[inline(never)]
    pub fn process(&mut self, frames: &mut [&mut [u8]]) -> u32 {
        let mut fwd = 0;
        for f in frames.iter_mut() {
            if f.len() < 18 || u16::from_be_bytes([f[12], f[13]]) != 0x8847 {
                self.dropped += 1;
                continue;
            }
            let lse = Lse::read(f, 14);
            if lse.ttl() <= 1 {
                self.dropped += 1;
                continue;
            }
            match self.ilm.get(&lse.label()) {
                Some(nh) => {
                    Lse::new(nh.out_label, lse.tc(), lse.bos(), lse.ttl() - 1).write(f, 14);
                    f[..12].copy_from_slice(&nh.macs);
                    fwd += 1;
                }
                None => self.dropped += 1,
            }
        }
        fwd
    }
}

/// Longest-prefix match with one hash map per prefix length.
#[derive(Debug)]
pub struct NaiveLpm {
    by_len: Vec<HashMap<u32, u32>>,
}

impl NaiveLpm {
    pub fn build(routes: &[(u32, u8, u32)]) -> NaiveLpm {
        let mut by_len = vec![HashMap::new(); 33];
        for &(p, l, v) in routes {
            by_len[l as usize].insert(p, v);
        }
        NaiveLpm { by_len }
    }

    #[inline(never)]
    pub fn lookup(&self, a: u32) -> Option<u32> {
        (0..=32usize).rev().find_map(|l| {
            let m = self.by_len[l].get(&if l == 0 {
                0
            } else {
                a & (u32::MAX << (32 - l))
            });
            m.copied()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_lpm_is_longest_match() {
        let t = NaiveLpm::build(&[(0, 0, 1), (0x0a00_0000, 8, 2), (0x0a01_0000, 16, 3)]);
        assert_eq!(t.lookup(0x0a01_0203), Some(3));
        assert_eq!(t.lookup(0x0a02_0203), Some(2));
        assert_eq!(t.lookup(0x0b00_0000), Some(1));
    }

    #[test]
    fn bare_and_naive_swap_agree() {
        let mut f = vec![0u8; 60];
        f[12] = 0x88;
        f[13] = 0x47;
        Lse::new(5, 0, true, 64).write(&mut f, 14);
        let mut g = f.clone();
        let table = vec![
            BareEntry {
                out_label: 7,
                port: 1,
                macs: [9; 12]
            };
            8
        ];
        bare_swap(&table, &mut [&mut f[..]]);
        let mut n = NaiveLsr::default();
        n.ilm.insert(
            5,
            NaiveNh {
                out_label: 7,
                port: 1,
                macs: [9; 12],
            },
        );
        assert_eq!(n.process(&mut [&mut g[..]]), 1);
        assert_eq!(f, g);
    }
}
