//! Compiles a FIB snapshot (core's [`FibSnapshot`]) into the values of the
//! XDP transit fast path's maps (bpf/fast_maps.h, mirrored by
//! [`crate::sys::fast_maps`]): a [`FastFib`], one `(key, value)` list per
//! map, which the loader ([`crate::sys::fast_maps::FastPath::install`])
//! writes into the idle bank. Pure and safe; the FIB's tables follow RFC 3031 (ILM -> group ->
//! NHLFE) and the map values keep that shape.
//!
//! `crate::fast_publish` writes what this makes into the kernel; the
//! differential test (tests/xdp_differential.rs) runs it against
//! `pipeline::process`.

pub use crate::sys::fast_maps::FastFib;
use crate::sys::fast_maps::{
    FastGroup, FastIlm, FastNh, FastParams, FAST_ILM_POP, FAST_ILM_SWAP, FAST_MAX_GROUPS,
    FAST_MAX_MEMBERS, FAST_MAX_NHS, FAST_MAX_PORTS, FAST_MAX_PUSH, FAST_NO_BACKUP, FAST_UNTAGGED,
};
use orbitmesh_core::fib::{FibSnapshot, IlmAction, NhId, NhgId, TtlModel};

/// Why a FIB does not fit the fast path's maps.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("{what}: {n} entries, the XDP fast path's map holds {max}")]
    TooMany {
        what: &'static str,
        n: usize,
        max: u32,
    },
    #[error("next hop {nh}: port {port} is beyond the XDP fast path's {FAST_MAX_PORTS} ports")]
    Port { nh: u32, port: u16 },
    #[error("next hop {nh}: {n} labels to push, the XDP fast path pushes at most {FAST_MAX_PUSH}")]
    Push { nh: u32, n: usize },
}

fn fits(what: &'static str, n: usize, max: u32) -> Result<(), CompileError> {
    if n > max as usize {
        return Err(CompileError::TooMany { what, n, max });
    }
    Ok(())
}

/// Compiles `fib`. Group members are laid out group after group, in group
/// order; next-hop and group ids are the snapshot's.
pub fn compile(fib: &FibSnapshot) -> Result<FastFib, CompileError> {
    fits("next hops", fib.next_hops_len(), FAST_MAX_NHS)?;
    fits("next-hop groups", fib.groups_len(), FAST_MAX_GROUPS)?;
    let mut nhs = Vec::with_capacity(fib.next_hops_len());
    for id in 0..fib.next_hops_len() as u32 {
        let Some(nh) = fib.next_hop(NhId(id)) else {
            continue;
        };
        if nh.port as usize >= FAST_MAX_PORTS {
            return Err(CompileError::Port {
                nh: id,
                port: nh.port,
            });
        }
        if nh.push.len() > FAST_MAX_PUSH {
            return Err(CompileError::Push {
                nh: id,
                n: nh.push.len(),
            });
        }
        let mut push = [0; FAST_MAX_PUSH];
        push[..nh.push.len()].copy_from_slice(&nh.push);
        nhs.push((
            id,
            FastNh {
                dst_mac: nh.dst_mac,
                src_mac: nh.src_mac,
                port: nh.port,
                vlan: nh.vlan.unwrap_or(FAST_UNTAGGED),
                n_push: nh.push.len() as u8,
                pad: [0; 3],
                push,
                backup: nh.backup.map_or(FAST_NO_BACKUP, |b| b.0),
            },
        ));
    }
    let mut groups = Vec::with_capacity(fib.groups_len());
    let mut members = Vec::new();
    for g in 0..fib.groups_len() as u32 {
        let m = fib.group(NhgId(g)).unwrap_or_default();
        groups.push((
            g,
            FastGroup {
                start: members.len() as u32,
                len: m.len() as u32,
            },
        ));
        members.extend(m.iter().map(|id| id.0));
        fits("group members", members.len(), FAST_MAX_MEMBERS)?;
    }
    let members = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| (i as u32, m))
        .collect();
    let ilm = fib
        .ilm_entries()
        .map(|(l, a)| {
            let e = match a {
                IlmAction::Swap { out_label, nhg } => FastIlm {
                    word: FAST_ILM_SWAP << 30 | nhg.0,
                    out_label,
                },
                IlmAction::Pop => FastIlm {
                    word: FAST_ILM_POP << 30,
                    out_label: 0,
                },
            };
            (l, e)
        })
        .collect();
    let mut mtu = [0; FAST_MAX_PORTS];
    for (p, m) in fib.ports() {
        if let Some(slot) = mtu.get_mut(p as usize) {
            *slot = m;
        }
    }
    Ok(FastFib {
        ilm,
        groups,
        members,
        nhs,
        params: FastParams {
            hash_seed: fib.hash_seed(),
            egress_uniform: u32::from(fib.egress_ttl() == TtlModel::Uniform),
            mtu,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitmesh_core::fib::{FibBuilder, NextHop, PortConfig};

    fn nh(port: u16, push: Vec<u32>, vlan: Option<u16>, backup: Option<u32>) -> NextHop {
        NextHop {
            port,
            dst_mac: [2, 0, 0, 0, 0, port as u8],
            src_mac: [2, 0, 0, 0, 1, port as u8],
            vlan,
            push,
            backup: backup.map(NhId),
        }
    }

    #[test]
    fn compiles_every_table() {
        let mut b = FibBuilder::new()
            .hash_seed(0xdead_beef)
            .ttl_models(TtlModel::Uniform, TtlModel::Pipe);
        b.port(0, PortConfig { mtu: 1500 });
        b.port(3, PortConfig { mtu: 9000 });
        b.next_hop(nh(0, vec![], None, Some(1)));
        b.next_hop(nh(3, vec![100, 200], Some(7), None));
        b.group(&[NhId(0)]);
        b.group(&[NhId(1), NhId(0)]);
        b.label(
            16,
            IlmAction::Swap {
                out_label: 3,
                nhg: NhgId(1),
            },
        );
        b.label(1000, IlmAction::Pop);
        let fib = b.build().unwrap();
        let f = compile(&fib).unwrap();
        assert_eq!(
            f.ilm,
            vec![
                (
                    16,
                    FastIlm {
                        word: 1 << 30 | 1,
                        out_label: 3
                    }
                ),
                (
                    1000,
                    FastIlm {
                        word: 2 << 30,
                        out_label: 0
                    }
                ),
            ]
        );
        assert_eq!(
            f.groups,
            vec![
                (0, FastGroup { start: 0, len: 1 }),
                (1, FastGroup { start: 1, len: 2 })
            ]
        );
        assert_eq!(f.members, vec![(0, 0), (1, 1), (2, 0)]);
        assert_eq!(f.nhs.len(), 2);
        let (id, n0) = f.nhs[0];
        assert_eq!(
            (id, n0.port, n0.vlan, n0.n_push, n0.backup),
            (0, 0, FAST_UNTAGGED, 0, 1)
        );
        let (_, n1) = f.nhs[1];
        assert_eq!((n1.port, n1.vlan, n1.n_push), (3, 7, 2));
        assert_eq!(n1.push, [100, 200, 0, 0, 0, 0]);
        assert_eq!(n1.backup, FAST_NO_BACKUP);
        assert_eq!(n1.dst_mac, [2, 0, 0, 0, 0, 3]);
        assert_eq!(f.params.hash_seed, 0xdead_beef);
        assert_eq!(f.params.egress_uniform, 0);
        assert_eq!(
            (f.params.mtu[0], f.params.mtu[3], f.params.mtu[1]),
            (1500, 9000, 0)
        );
    }

    #[test]
    fn the_ilm_word_decodes_like_the_snapshot() {
        // The group and action bits must read back as the FIB's own action.
        let mut b = FibBuilder::new();
        b.port(0, PortConfig { mtu: 1500 });
        for _ in 0..5 {
            b.next_hop(nh(0, vec![], None, None));
        }
        for i in 0..5 {
            b.group(&[NhId(i)]);
        }
        for l in 16..21 {
            b.label(
                l,
                IlmAction::Swap {
                    out_label: l + 1,
                    nhg: NhgId(l - 16),
                },
            );
        }
        let fib = b.build().unwrap();
        for (l, e) in compile(&fib).unwrap().ilm {
            assert_eq!(e.word >> 30, FAST_ILM_SWAP);
            let g = e.word & ((1 << 29) - 1);
            assert_eq!(
                fib.ilm(l),
                Some(IlmAction::Swap {
                    out_label: e.out_label,
                    nhg: NhgId(g)
                })
            );
        }
    }

    #[test]
    fn an_empty_fib_binds_nothing() {
        let f = compile(&FibSnapshot::empty(1)).unwrap();
        assert!(f.ilm.is_empty() && f.nhs.is_empty() && f.members.is_empty());
        assert_eq!(f.params.mtu, [0; FAST_MAX_PORTS]);
    }
}
